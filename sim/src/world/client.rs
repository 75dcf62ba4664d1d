//! One simulated client: waits for the world's gate (node up and checked), connects,
//! sends its workload one pipeline at a time, and feeds every reply into the model.
//!
//! Pipelines (2–8 commands in one write) are sent only when the network's socket
//! buffers hold at least `PIPELINE_PIPE_BYTES_MIN`: this client writes a whole pipeline
//! before reading, which over tiny buffers deadlocks against a server blocked writing
//! replies (real clients read concurrently; real buffers are large).
//!
//! Commands on shared keys are also recorded for the linearizability check (`lin.rs`):
//! invoked before the pipeline is written, completed by a well-formed reply, pending
//! forever otherwise.
//!
//! Rules: a reply → `Command::apply_reply` (a violation fails the run); an error reply or
//! a connection error → the command and every later one of the pipeline are uncertain.
//! After a connection error the client waits for the gate again. A reply that does not
//! arrive within `STUCK_REPLY_TIMEOUT` per outstanding command while the node stayed up
//! fails the run (predecessor bugs 4 and 5: nothing may hang).
//!
//! Network partitions (full fault model): a request with no reply after `CLIENT_TIMEOUT`
//! while a partition overlapped the wait is abandoned like a real client's timeout: the
//! rest of the pipeline is uncertain (pending forever in the linearizability history),
//! the connection is aborted (reset: bytes still in flight are dropped) and the client
//! waits until the server's task has let go of it (a command it had already read may
//! still be waiting on backpressure or a stalled fsync) before it reconnects, so an
//! abandoned command cannot land after the client's next one.
//!
//! What can fail here: wrong replies, unparsable replies, stuck requests (all reported
//! through `Shared::fail`).

use std::rc::Rc;
use std::time::Duration;

use rand::Rng;

use super::conn::{ReadError, RespConn};
use super::Shared;
use crate::executor::{stream, Owner};
use crate::workload::{Command, Outcome, Workload};

/// Longest a client waits for one reply with the node up before calling it stuck (per
/// outstanding command of its pipeline: replies of a pipeline leave together).
pub const STUCK_REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// With network partitions in the plan: a client abandons a request (outcome unknown,
/// connection dropped, reconnect) when no reply came for this long and a partition
/// overlapped the wait — a real client's read timeout. Without a partition it keeps
/// waiting up to `STUCK_REPLY_TIMEOUT` (a stuck server stays a failure).
pub const CLIENT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Smallest socket buffer (`NetFaults::pipe_capacity_bytes`) over which clients pipeline.
pub const PIPELINE_PIPE_BYTES_MIN: usize = 4096;
/// Longest think time between two pipelines, in µs (drawn per pipeline).
pub const THINK_TIME_MAX_US: u64 = 20_000;

/// Runs client `id` until the world says stop (or the run failed).
pub async fn client_task(shared: Rc<Shared>, id: u32) {
    let exec = shared.exec.clone();
    let mut rng = exec.rng_stream(stream::CLIENT_BASE + u64::from(id));
    let workload = Workload::new(id);
    // The connection and the crash count when it was opened.
    let mut conn: Option<(RespConn, u64)> = None;
    loop {
        if shared.stopping.get() || shared.failed() {
            break;
        }
        if conn
            .as_ref()
            .is_some_and(|(_, crashes)| *crashes != shared.crashes.get())
        {
            conn = None; // the node died under this connection
        }
        let Some((c, _)) = conn.as_mut() else {
            if !shared.up.get() {
                exec.sleep(Duration::from_millis(1)).await;
                continue;
            }
            let crashes = shared.crashes.get();
            match RespConn::connect(&exec, &shared.net, Owner::Client(id), &shared.addr).await {
                Ok(c) => conn = Some((c, crashes)),
                Err(_) => {
                    exec.sleep(Duration::from_micros(rng.gen_range(100..5_000)))
                        .await
                }
            }
            continue;
        };
        exec.sleep(Duration::from_micros(rng.gen_range(0..THINK_TIME_MAX_US)))
            .await;
        if shared.stopping.get() || shared.failed() {
            break;
        }
        let batch = if shared.pipelines {
            workload.next_batch(&mut rng)
        } else {
            vec![workload.next_command(&mut rng)]
        };
        let batch = shared.serve_stale(id, batch);
        if batch.is_empty() {
            continue;
        }
        shared.busy.set(shared.busy.get() + 1);
        let aborts = shared.client_timeouts.get();
        let conn_id = c.conn_id();
        let ok = run_batch(&shared, c, id, &batch).await;
        shared.busy.set(shared.busy.get() - 1);
        if !ok {
            conn = None;
            if shared.client_timeouts.get() != aborts {
                wait_server_let_go(&shared, id, conn_id).await;
            }
        }
    }
    shared.clients_running.set(shared.clients_running.get() - 1);
}

/// After aborting connection `conn_id` on a timeout: waits until the server's task has
/// dropped its end too (or the node crashed), so no abandoned command can still be
/// applied after this client's next one (a command the server read before the abort may
/// be waiting for backpressure or a stalled fsync). The model settles abandoned commands
/// as applied-or-not *now*; this wait makes that true. A server that keeps an aborted
/// connection for `SETTLE_TIMEOUT` fails the run.
async fn wait_server_let_go(shared: &Shared, id: u32, conn_id: u64) {
    let exec = &shared.exec;
    let crashes = shared.crashes.get();
    let deadline = exec.now() + super::SETTLE_DEADLINE;
    while shared.net.conn_alive(conn_id) && shared.crashes.get() == crashes {
        if shared.failed() || shared.stopping.get() && exec.now() > deadline {
            return;
        }
        if exec.now() > deadline {
            shared.fail(&format!(
                "client {id}: the server kept aborted connection {conn_id} open for {:?} of virtual time",
                super::SETTLE_DEADLINE
            ));
            return;
        }
        exec.sleep(Duration::from_millis(1)).await;
    }
}

/// Sends one pipeline and settles every command's outcome. Returns false when the
/// connection is unusable afterwards.
async fn run_batch(shared: &Shared, conn: &mut RespConn, id: u32, batch: &[Command]) -> bool {
    let exec = &shared.exec;
    let crashes_before = shared.crashes.get();
    let epoch_before = shared.partition_epoch.get();
    let args: Vec<_> = batch.iter().map(Command::args).collect();
    let lin_ids: Vec<_> = batch.iter().map(|c| shared.lin_invoke(id, c)).collect();
    if let Some(delay) = shared.early_ack_delay(id, batch) {
        exec.sleep(delay).await; // the test-only defect: "applied" late
    }
    let send_deadline = exec.now() + STUCK_REPLY_TIMEOUT;
    if let Err(e) = conn.send(&args, send_deadline).await {
        if e.kind() == std::io::ErrorKind::TimedOut && shared.crashes.get() == crashes_before {
            shared.fail(&format!(
                "client {id} stuck: the server did not read `{}` for {STUCK_REPLY_TIMEOUT:?} of virtual time while the node was up",
                batch[0].describe()
            ));
            return false;
        }
        for cmd in batch {
            shared.settle_uncertain(cmd);
        }
        return false;
    }
    let mut next = 0;
    let mut waited_from = exec.now();
    while next < batch.len() {
        let outstanding = u32::try_from(batch.len() - next).unwrap_or(u32::MAX);
        let deadline = waited_from + STUCK_REPLY_TIMEOUT * outstanding;
        let slice_end = if shared.partitions_on {
            deadline.min(exec.now() + CLIENT_TIMEOUT)
        } else {
            deadline
        };
        match conn.read_reply(slice_end).await {
            Err(ReadError::Timeout) if exec.now() < deadline => {
                let partitioned = shared.partition_epoch.get() != epoch_before
                    || shared.net.is_partitioned(super::NODE);
                if partitioned && exec.now() >= waited_from + CLIENT_TIMEOUT {
                    shared.client_timeouts.set(shared.client_timeouts.get() + 1);
                    exec.trace("world.client_timeout", u64::from(id), next as u64);
                    // Abort the connection (RST): requests still in flight are dropped, so
                    // an abandoned command cannot reach the server after the client has
                    // moved on (the model settles it as applied-or-not, now).
                    shared.net.reset(conn.conn_id());
                    break;
                }
            }
            Ok(frame) => {
                let cmd = &batch[next];
                let result = cmd.apply_reply(&mut shared.model.borrow_mut(), &frame);
                match result {
                    Ok(Outcome::Acked) => {
                        shared.lin_ok(id, lin_ids[next], cmd, &frame);
                        shared.note_acked(cmd);
                    }
                    Ok(Outcome::Uncertain(text)) => {
                        shared.lin_unknown(lin_ids[next]);
                        shared.note_error_reply(cmd, &text);
                    }
                    Err(violation) => {
                        shared.fail(&format!(
                            "client {id}: wrong reply (at {:?} virtual): {}",
                            exec.now(),
                            violation.0
                        ));
                        return false;
                    }
                }
                next += 1;
                waited_from = exec.now();
            }
            Err(ReadError::Timeout) => {
                if shared.crashes.get() == crashes_before && shared.up.get() {
                    shared.fail(&format!(
                        "client {id} stuck: no reply to `{}` for {:?} of virtual time (since {waited_from:?}) while the node was up; {} command(s) of the pipeline outstanding",
                        batch[next].describe(),
                        STUCK_REPLY_TIMEOUT * outstanding,
                        outstanding
                    ));
                    return false;
                }
                break;
            }
            Err(ReadError::Protocol(e)) => {
                shared.fail(&format!(
                    "client {id}: unparsable reply to `{}`: {e}",
                    batch[next].describe()
                ));
                return false;
            }
            Err(ReadError::Io(_)) => break,
        }
    }
    if next == batch.len() {
        return true;
    }
    for cmd in &batch[next..] {
        shared.settle_uncertain(cmd);
    }
    false
}
