//! The checkers that run between a restart and the moment clients may resume, and at the
//! end of a run: read every key the model knows through a real client connection
//! (pipelined GETs) and hold each value against the model (the durability oracle).
//!
//! Oracle rules (see docs/simulation.md):
//! - a value that is not one of the key's possible values is a violation — an
//!   acknowledged write was lost, an INCR applied twice, or a value was invented;
//! - keys in the *forgiven* set (everysec + machine crash: written in the loss window)
//!   are re-based on what was read without a check;
//! - the read itself must succeed within `CHECK_DEADLINE` of virtual time (retrying error
//!   replies and broken connections): a node that cannot serve reads is stuck.
//!
//! What can fail here: [`check_keys`] returns a message naming the key, what the model
//! allowed and what was read; or says the keys could not be read in time.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tidemark::resp::Frame;

use crate::executor::{Executor, Owner};
use crate::model::Model;
use crate::net::SimNet;
use crate::world::conn::{ReadError, RespConn};

/// GETs per pipeline of the checker.
pub const CHECK_PIPELINE_KEYS: usize = 32;
/// Longest the checker may take to read every key, in virtual time.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(60);
/// Pause before retrying after an error reply or a broken connection.
pub const CHECK_RETRY_DELAY: Duration = Duration::from_millis(50);

/// What a check did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Keys read and compared with the model.
    pub checked: u64,
    /// Keys re-based without a check (allowed loss window).
    pub forgiven: u64,
}

/// Reads every key of `keys` from the node at `addr`, `pipeline_keys` GETs per write
/// (1 over tiny socket buffers: a client that writes a long pipeline without reading
/// deadlocks against a server blocked writing replies, as over real TCP). Errors: a message saying why the
/// keys could not be read before `CHECK_DEADLINE`.
pub async fn read_keys(
    exec: &Executor,
    net: &SimNet,
    addr: &str,
    keys: &[Vec<u8>],
    pipeline_keys: usize,
) -> Result<Vec<Option<Vec<u8>>>, String> {
    let deadline = exec.now() + CHECK_DEADLINE;
    let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(keys.len());
    let mut conn: Option<RespConn> = None;
    let mut last_problem = String::from("none");
    while values.len() < keys.len() {
        if exec.now() > deadline {
            return Err(format!(
                "the checker could not read {} of {} keys within {CHECK_DEADLINE:?} of virtual time; last problem: {last_problem}",
                keys.len() - values.len(),
                keys.len()
            ));
        }
        let Some(c) = conn.as_mut() else {
            match RespConn::connect(exec, net, Owner::World, addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    last_problem = format!("connect: {e}");
                    exec.sleep(CHECK_RETRY_DELAY).await;
                }
            }
            continue;
        };
        let chunk: Vec<&Vec<u8>> = keys[values.len()..]
            .iter()
            .take(pipeline_keys.max(1))
            .collect();
        let commands: Vec<Vec<Bytes>> = chunk
            .iter()
            .map(|k| vec![Bytes::from_static(b"GET"), Bytes::copy_from_slice(k)])
            .collect();
        if let Err(e) = c.send(&commands, deadline).await {
            last_problem = format!("send: {e}");
            conn = None;
            continue;
        }
        let mut got: Vec<Option<Vec<u8>>> = Vec::with_capacity(chunk.len());
        let mut retry = false;
        for key in &chunk {
            match c.read_reply(deadline).await {
                Ok(Frame::Bulk(v)) => got.push(Some(v.to_vec())),
                Ok(Frame::Null) => got.push(None),
                Ok(Frame::Error(text)) => {
                    // E.g. a read barrier that timed out on a stalled disk: retry later.
                    last_problem = format!("GET {}: {text}", String::from_utf8_lossy(key));
                    retry = true;
                }
                Ok(other) => {
                    return Err(format!(
                        "GET {} returned a reply of the wrong shape: {other:?}",
                        String::from_utf8_lossy(key)
                    ))
                }
                Err(ReadError::Protocol(e)) => {
                    return Err(format!("unparsable reply to the checker's GET: {e}"))
                }
                Err(ReadError::Timeout) => {
                    return Err(format!(
                        "the node did not answer the checker's GET {} within {CHECK_DEADLINE:?}",
                        String::from_utf8_lossy(key)
                    ))
                }
                Err(ReadError::Io(e)) => {
                    last_problem = format!("read: {e}");
                    conn = None;
                    retry = true;
                    break;
                }
            }
        }
        if retry {
            exec.sleep(CHECK_RETRY_DELAY).await;
            continue;
        }
        values.extend(got);
    }
    Ok(values)
}

/// Holds what was read against the model: every key not in `forgiven` must hold one of
/// its possible values (and then holds exactly that); forgiven keys are re-based.
/// `live`: the node was not restarted since the keys were written, so tainted keys are
/// only checked, not re-based (`Model::observe_live`). `context` (e.g. "after machine
/// crash 2") goes into the violation message.
pub fn check_keys(
    model: &mut Model,
    keys: &[Vec<u8>],
    values: Vec<Option<Vec<u8>>>,
    forgiven: &BTreeSet<Vec<u8>>,
    live: bool,
    context: &str,
) -> Result<CheckStats, String> {
    let mut stats = CheckStats::default();
    for (key, value) in keys.iter().zip(values) {
        if forgiven.contains(key) {
            model.forgive(key, value);
            stats.forgiven += 1;
        } else {
            let result = if live {
                model.observe_live(key, value)
            } else {
                model.observe(key, value)
            };
            result.map_err(|v| format!("{context}: {}", v.0))?;
            stats.checked += 1;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Op, Reply};

    #[test]
    fn lost_acknowledged_write_fails_unless_forgiven() {
        let mut model = Model::new();
        model
            .acked(b"k", &Op::Set(b"v".to_vec()), &Reply::Ok)
            .unwrap();
        let keys = vec![b"k".to_vec()];
        let err = check_keys(
            &mut model,
            &keys,
            vec![None],
            &BTreeSet::new(),
            false,
            "after crash 1",
        )
        .unwrap_err();
        assert!(
            err.contains("after crash 1") && err.contains("\"k\""),
            "{err}"
        );
        let forgiven: BTreeSet<Vec<u8>> = keys.iter().cloned().collect();
        let stats = check_keys(&mut model, &keys, vec![None], &forgiven, false, "x").unwrap();
        assert_eq!(
            stats,
            CheckStats {
                checked: 0,
                forgiven: 1
            }
        );
    }
}
