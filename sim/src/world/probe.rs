//! The durability probe (`RunOptions::durability_probe`): right after every boot the world
//! itself writes one key, `probe:<boot>`, that nothing writes again. A machine crash more
//! than `EVERYSEC_LOSS_WINDOW` later must not lose it (under `everysec` the fsync deadline
//! is 1 s whatever the traffic), so a server whose periodic fsync is starved by the
//! clients' sustained load (predecessor bug 9) is caught even though every client key is
//! written again and again (and so always falls inside the forgiven window).
//!
//! What can fail here: nothing is reported by the probe itself; an unacknowledged or
//! failed probe write is recorded as uncertain, and the checks after crashes do the rest.

use std::time::Duration;

use bytes::Bytes;
use tidemark::resp::Frame;

use super::conn::RespConn;
use super::Shared;
use crate::executor::Owner;
use crate::model::{Op, Reply};

/// How long the probe write may take before it is given up (recorded as uncertain).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// Writes `probe:<boot>` once and records the outcome in the model.
pub(super) async fn write_probe(shared: &Shared, boot: u32) {
    let exec = &shared.exec;
    let key = format!("probe:{boot}").into_bytes();
    let value = format!("boot-{boot}").into_bytes();
    let op = Op::Set(value.clone());
    let deadline = exec.now() + PROBE_DEADLINE;
    let Ok(mut conn) = RespConn::connect(exec, &shared.net, Owner::World, &shared.addr).await
    else {
        return;
    };
    let args = vec![
        Bytes::from_static(b"SET"),
        Bytes::from(key.clone()),
        Bytes::from(value),
    ];
    let sent = conn.send(&[args], deadline).await;
    let acked = match sent {
        Ok(()) => matches!(conn.read_reply(deadline).await, Ok(Frame::Simple(s)) if s == "OK"),
        Err(_) => false,
    };
    // Like the clients: the write counts from when its reply arrived.
    let now = exec.now();
    shared.last_write.borrow_mut().insert(key.clone(), now);
    let mut model = shared.model.borrow_mut();
    if acked {
        if let Err(v) = model.acked(&key, &op, &Reply::Ok) {
            drop(model);
            shared.fail(&format!("durability probe: {}", v.0));
            return;
        }
        exec.trace("world.probe", u64::from(boot), 1);
    } else {
        model.uncertain(&key, &op);
        exec.trace("world.probe", u64::from(boot), 0);
    }
}
