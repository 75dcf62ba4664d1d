//! Cross-shard dispatch: the bounded, executor-agnostic channels between shards, the
//! request/response types that travel over them, and the bounded waits on both ends.
//!
//! Every shard owns one inbound queue of `cross_shard_queue_len` requests
//! (`async-channel`, which wakes any executor: compio threads in production, the seeded
//! executor in the simulator). A sender waits at most `cross_shard_timeout_ms` for room and
//! as long again for the reply; past that the client gets an error (predecessor bug 5:
//! never an unbounded spin, never a silently dropped command).
//!
//! What can fail here: a full or wedged target shard (timeout error reply), a target shard
//! that has stopped (closed channel error reply).

use std::time::Duration;

use bytes::Bytes;

use crate::io::{with_timeout, Clock};
use crate::resp::Frame;
use crate::server::config::Defects;

/// Per-shard numbers gathered for INFO.
#[derive(Clone, Debug, Default)]
pub struct ShardStats {
    /// Keys in the shard's keyspace.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
    /// Estimated bytes used by keys and values.
    pub used_memory_bytes: u64,
    /// Keys deleted by expiry (lazy and active) since start.
    pub expired_keys: u64,
    /// Commands executed on this shard since start.
    pub commands_processed: u64,
    /// Writes (propagated records) since start, for `rdb_changes_since_last_save`.
    pub dirty: u64,
    /// AOF: whether the last write/fsync succeeded (true when AOF is off).
    pub aof_last_write_ok: bool,
    /// AOF: the latched error, if any.
    pub aof_last_error: Option<String>,
    /// AOF: current file size in bytes.
    pub aof_current_size_bytes: u64,
    /// AOF: bytes buffered, not yet written.
    pub aof_buffer_len_bytes: u64,
    /// AOF: fsyncs done.
    pub aof_fsyncs: u64,
    /// AOF: records replayed at start-up.
    pub aof_loaded_records: u64,
    /// AOF: bytes of torn tail truncated at start-up.
    pub aof_truncated_bytes: u64,
    /// The non-empty databases as (database number, numbers), ascending, for INFO keyspace.
    pub databases: Vec<(usize, DbStats)>,
}

/// Keys sampled per database for INFO keyspace `avg_ttl`.
pub const AVG_TTL_SAMPLE_KEYS: usize = 64;

/// One database's numbers on one shard (INFO keyspace `dbN:keys=…,expires=…,avg_ttl=…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Keys stored.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
    /// Mean remaining TTL in ms (estimate, see `Db::avg_ttl_ms`).
    pub avg_ttl_ms: u64,
}

impl DbStats {
    /// The numbers of `db` at `now_ms`.
    pub fn of(db: &crate::keyspace::Db, now_ms: u64) -> DbStats {
        DbStats {
            keys: db.len() as u64,
            expires: db.expires_len() as u64,
            avg_ttl_ms: db.avg_ttl_ms(now_ms, AVG_TTL_SAMPLE_KEYS),
        }
    }
}

/// INFO keyspace lines (`db3:keys=2,expires=1,avg_ttl=1234\r\n`) for every non-empty database,
/// summed over the shards' [`ShardStats::databases`] (`avg_ttl` weighted by `expires`).
pub fn keyspace_lines(shards: &[&[(usize, DbStats)]]) -> String {
    let mut totals: std::collections::BTreeMap<usize, (DbStats, u128)> = Default::default();
    for (index, stats) in shards.iter().flat_map(|s| s.iter()) {
        let (total, ttl_weighted) = totals.entry(*index).or_default();
        total.keys += stats.keys;
        total.expires += stats.expires;
        *ttl_weighted += u128::from(stats.avg_ttl_ms) * u128::from(stats.expires);
    }
    let mut out = String::new();
    for (index, (total, ttl_weighted)) in totals {
        if total.keys == 0 {
            continue;
        }
        let avg_ttl = ttl_weighted
            .checked_div(u128::from(total.expires))
            .unwrap_or(0);
        out.push_str(&format!(
            "db{index}:keys={},expires={},avg_ttl={avg_ttl}\r\n",
            total.keys, total.expires
        ));
    }
    out
}

/// What one shard asks of another.
pub enum Job {
    /// Execute a data command on the target's keyspace, in database `.0` (the sender's
    /// selected database); reply once acknowledged per the AOF policy.
    Command(crate::shard::state::DbIndex, Vec<Bytes>),
    /// Report [`ShardStats`].
    Stats,
    /// Clone every database at this instant (a consistent point for an RDB save).
    Snapshot,
    /// One step of BGREWRITEAOF (src/server/persistence.rs).
    Rewrite(crate::server::persistence::RewriteJob),
    /// WATCH registration or an atomic EXEC (src/shard/watch.rs).
    Multi(crate::shard::watch::WatchJob),
}

/// The answer to a [`Job`].
pub enum Response {
    /// The reply frame of a `Job::Command`.
    Reply(Frame),
    /// The answer to `Job::Stats`.
    Stats(Box<ShardStats>),
    /// The answer to `Job::Snapshot`: the databases' clones (index = database number) and
    /// the shard's write counter.
    Snapshot(Box<Vec<crate::keyspace::Db>>, u64),
    /// The answer to `Job::Rewrite`.
    Rewrite(Result<crate::server::persistence::RewriteAnswer, String>),
    /// The answer to `Job::Multi`.
    Multi(crate::shard::watch::WatchAnswer),
}

/// One request in a shard's inbound queue, with the channel its answer goes back on.
pub struct Request {
    /// What to do.
    pub job: Job,
    /// Where to send the answer (capacity 1).
    pub reply: async_channel::Sender<Response>,
}

/// The sending ends of every shard's inbound queue, indexed by shard id.
pub type Senders = Vec<async_channel::Sender<Request>>;

/// Sends `job` to `target` and waits for the answer, each wait bounded by `timeout`.
///
/// Errors are returned as reply frames: `ERR cross-shard queue of shard N is full …`
/// (nothing was sent: the command did not run) or `ERR shard N did not answer …` (it may
/// or may not have run: the outcome is unknown).
pub async fn call<C: Clock>(
    clock: &C,
    senders: &Senders,
    target: u16,
    job: Job,
    timeout: Duration,
) -> Result<Response, Frame> {
    call_with_defects(clock, senders, target, job, timeout, &Defects::default()).await
}

/// Retry interval of the re-introduced predecessor bug 5 (test-only switch).
pub const DEFECT_RETRY_INTERVAL_MS: u64 = 1;

/// [`call`] with test-only defects: `unbounded_cross_shard_retry` re-introduces
/// predecessor bug 5 (a full queue is retried every [`DEFECT_RETRY_INTERVAL_MS`] forever
/// instead of failing after `timeout`). With `Defects::default()` this is [`call`].
pub async fn call_with_defects<C: Clock>(
    clock: &C,
    senders: &Senders,
    target: u16,
    job: Job,
    timeout: Duration,
    defects: &Defects,
) -> Result<Response, Frame> {
    let (reply_tx, reply_rx) = async_channel::bounded(1);
    let mut request = Request {
        job,
        reply: reply_tx,
    };
    let sender = &senders[usize::from(target)];
    if defects.unbounded_cross_shard_retry {
        loop {
            match sender.try_send(request) {
                Ok(()) => break,
                Err(async_channel::TrySendError::Full(back)) => request = back,
                Err(async_channel::TrySendError::Closed(_)) => {
                    return Err(Frame::error(format!(
                        "ERR shard {target} is not running; the command was not executed"
                    )))
                }
            }
            clock
                .sleep(Duration::from_millis(DEFECT_RETRY_INTERVAL_MS))
                .await;
        }
        return wait_reply(clock, target, reply_rx, timeout).await;
    }
    match with_timeout(clock, timeout, sender.send(request)).await {
        None => {
            return Err(Frame::error(format!(
                "ERR cross-shard queue of shard {target} is full (waited {} ms); the command was not executed",
                timeout.as_millis()
            )))
        }
        Some(Err(_)) => {
            return Err(Frame::error(format!(
                "ERR shard {target} is not running; the command was not executed"
            )))
        }
        Some(Ok(())) => {}
    }
    wait_reply(clock, target, reply_rx, timeout).await
}

/// The bounded wait for the answer to a request already queued on `target`.
async fn wait_reply<C: Clock>(
    clock: &C,
    target: u16,
    reply_rx: async_channel::Receiver<Response>,
    timeout: Duration,
) -> Result<Response, Frame> {
    match with_timeout(clock, timeout, reply_rx.recv()).await {
        Some(Ok(response)) => Ok(response),
        Some(Err(_)) => Err(Frame::error(format!(
            "ERR shard {target} stopped before answering; the outcome is unknown"
        ))),
        None => Err(Frame::error(format!(
            "ERR shard {target} did not answer within {} ms; the outcome is unknown",
            timeout.as_millis()
        ))),
    }
}

/// Sends a data command to `target`, to run in database 0, and returns its reply frame
/// (errors as frames). See [`call_command_in`] for another database.
pub async fn call_command<C: Clock>(
    clock: &C,
    senders: &Senders,
    target: u16,
    args: Vec<Bytes>,
    timeout: Duration,
) -> Frame {
    call_command_in(clock, senders, target, 0, args, timeout).await
}

/// Sends a data command to `target`, to run in database `db`, and returns its reply frame
/// (errors as frames).
pub async fn call_command_in<C: Clock>(
    clock: &C,
    senders: &Senders,
    target: u16,
    db: crate::shard::state::DbIndex,
    args: Vec<Bytes>,
    timeout: Duration,
) -> Frame {
    match call(clock, senders, target, Job::Command(db, args), timeout).await {
        Ok(Response::Reply(frame)) => frame,
        Ok(_) => Frame::error("ERR internal: unexpected response to a command"),
        Err(frame) => frame,
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
