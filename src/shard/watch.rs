//! The shard side of MULTI/EXEC/WATCH: the per-shard registry of WATCHed keys, the atomic
//! execution of a transaction's data commands, the one-record AOF form of a transaction,
//! and the cross-shard jobs the connection layer (src/server/multi.rs) sends.
//!
//! Design:
//! - Registry: per shard, `key → watchers` (a `BTreeMap`, deterministic). A watcher holds a
//!   `Weak` reference to the client's [`TxWatch`] flag, so UNWATCH, EXEC, DISCARD and a
//!   disconnect only drop the client's `Arc`; dead entries are pruned when their key is
//!   touched and by an amortized sweep every [`PRUNE_INTERVAL_WATCHES`] registrations.
//! - Invalidation: after every local command, `Shard::execute_local` (and active expiry)
//!   hands the records it propagated (the effective writes) to
//!   [`WatchRegistry::after_command`]; every key those records name (legacy key spec plus
//!   movable keys) marks its watchers dirty. A write that changes nothing propagates nothing
//!   and invalidates nothing, as in Redis (DEL of a missing key, PERSIST without a TTL).
//!   FLUSHALL/FLUSHDB propagate a keyless record: [`WatchRegistry::before_command`] notes
//!   the watched keys present before the flush, and only those are invalidated (Redis 7
//!   `touchAllWatchedKeysInDb`).
//! - Expiry (Redis 7.0 `isWatchedKeyExpired` and the `expired` flag of a watched key): a key
//!   that was already logically expired when WATCHed does not invalidate when it is
//!   reclaimed; a key that expires after WATCH aborts EXEC, both while it is still present
//!   (checked at EXEC) and once reclaimed (its logged DEL touches it). Redis 7.0.15 lets EXEC
//!   succeed in the second case (a reclaim does not touch watched keys there), which makes
//!   the outcome depend on active-expiry timing; tidemark always aborts (docs/compatibility.md).
//! - Atomicity: [`Shard::execute_transaction`] checks the watch flag and runs every data
//!   command of the transaction in one synchronous step on the owning shard (no await, so no
//!   other client interleaves). Its propagated records are appended as ONE AOF record
//!   ([`transaction_record`]) so a torn tail drops the whole transaction.
//!
//! What can fail here: a latched AOF (the transaction is refused before anything runs, or
//! its reply becomes the append error after it ran, as for a single write); a malformed
//! transaction record during replay (an error naming what is wrong).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::cmd::{self, CommandSpec};
use crate::io::{Clock, Io};
use crate::keyspace::Db;
use crate::persist::Lsn;
use crate::resp::parse::{ParseLimits, RequestParser};
use crate::resp::Frame;
use crate::shard::dispatch::{self, Job, Response, Senders};
use crate::shard::state::{DbIndex, Shard};

/// Registrations between two sweeps of dead watchers (amortizes the sweep to O(1)).
pub const PRUNE_INTERVAL_WATCHES: usize = 1024;
/// Command name of the AOF record that holds a whole transaction (see [`transaction_record`]).
pub const TRANSACTION_RECORD_NAME: &str = "MULTI";
/// Largest element of a transaction record (one encoded command), as the AOF's own bound.
pub const TRANSACTION_ELEMENT_MAX_BYTES: u64 = 1 << 30;
/// Most arguments one command inside a transaction record may have.
pub const TRANSACTION_ELEMENT_ARGS_MAX: u64 = 1 << 31;

/// One client's "a watched key was touched" flag (Redis `CLIENT_DIRTY_CAS`). Shared with
/// every shard holding one of its watched keys; set by that shard's thread.
#[derive(Debug, Default)]
pub struct TxWatch {
    dirty: AtomicBool,
}

impl TxWatch {
    /// A new, clean flag.
    pub fn new() -> Arc<TxWatch> {
        Arc::new(TxWatch::default())
    }

    /// True once a watched key was written (EXEC must then reply a null array).
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }

    /// Marks the transaction as doomed.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }
}

struct Watcher {
    flag: Weak<TxWatch>,
    /// The key was logically expired (present, TTL passed) when WATCHed (Redis `wk->expired`).
    expired_at_watch: Cell<bool>,
}

/// The per-shard registry of WATCHed keys: key → watchers.
#[derive(Default)]
pub struct WatchRegistry {
    keys: RefCell<BTreeMap<Bytes, Vec<Watcher>>>,
    since_prune: Cell<usize>,
}

fn expired_now(db: &Db, key: &[u8], now_ms: u64) -> bool {
    db.peek(key)
        .and_then(|e| e.expire_at_ms)
        .is_some_and(|t| t <= now_ms)
}

fn is_flush(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"flushall") || name.eq_ignore_ascii_case(b"flushdb")
}

/// Key positions of a command: the legacy key spec plus the movable keys (LMPOP, ZUNIONSTORE,
/// SINTERCARD, …), as the router uses them.
pub fn command_keys(spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    let mut keys: Vec<usize> = spec.key_indexes(args.len()).collect();
    if spec.flags.contains(&"movablekeys") {
        keys.extend(cmd::movable_key_indexes(args));
    }
    keys
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> WatchRegistry {
        WatchRegistry::default()
    }

    /// True when no key is watched on this shard (dead entries included).
    pub fn is_empty(&self) -> bool {
        self.keys.borrow().is_empty()
    }

    /// Keys in the registry (dead watchers not yet pruned included).
    pub fn keys_len(&self) -> usize {
        self.keys.borrow().len()
    }

    /// Live watchers of `key`.
    pub fn watchers(&self, key: &[u8]) -> usize {
        self.keys.borrow().get(key).map_or(0, |list| {
            list.iter().filter(|w| w.flag.strong_count() > 0).count()
        })
    }

    /// Registers `flag` as a watcher of `key` (a no-op if it already watches it: the first
    /// WATCH's expired state is kept, as in Redis).
    pub fn watch(&self, key: Bytes, flag: &Arc<TxWatch>, db: &Db, now_ms: u64) {
        let expired = expired_now(db, &key, now_ms);
        {
            let mut keys = self.keys.borrow_mut();
            let list = keys.entry(key).or_default();
            let mine = Arc::downgrade(flag);
            if !list.iter().any(|w| Weak::ptr_eq(&w.flag, &mine)) {
                list.push(Watcher {
                    flag: mine,
                    expired_at_watch: Cell::new(expired),
                });
            }
        }
        let since = self.since_prune.get() + 1;
        self.since_prune.set(since);
        if since >= PRUNE_INTERVAL_WATCHES {
            self.prune();
        }
    }

    /// Drops every watcher whose client has gone (or unwatched).
    pub fn prune(&self) {
        self.since_prune.set(0);
        self.keys.borrow_mut().retain(|_, list| {
            list.retain(|w| w.flag.strong_count() > 0);
            !list.is_empty()
        });
    }

    /// Before a command runs: for FLUSHALL/FLUSHDB, the watched keys physically present
    /// (only those are invalidated by the flush). Empty otherwise.
    pub fn before_command(&self, spec: &CommandSpec, db: &Db) -> Vec<Bytes> {
        if self.is_empty() || !is_flush(spec.name.as_bytes()) {
            return Vec::new();
        }
        self.keys
            .borrow()
            .keys()
            .filter(|k| db.peek(k).is_some())
            .cloned()
            .collect()
    }

    /// After a command ran: every key written by a propagated record invalidates its
    /// watchers; a propagated flush invalidates the keys `flushed` (from `before_command`).
    pub fn after_command(&self, propagated: &[Vec<Bytes>], flushed: &[Bytes], db: &Db) {
        if self.is_empty() {
            return;
        }
        for record in propagated {
            let Some(name) = record.first() else {
                continue;
            };
            if is_flush(name) {
                for key in flushed {
                    self.touch(key, db);
                }
                continue;
            }
            let Some(spec) = cmd::lookup(name) else {
                continue;
            };
            for i in command_keys(spec, record) {
                self.touch(&record[i], db);
            }
        }
    }

    /// Marks the watchers of `key` dirty, as a write to it does (MOVE/COPY into this
    /// registry's database).
    pub fn touch_key(&self, key: &[u8], db: &Db) {
        self.touch(key, db);
    }

    /// Marks dirty the watchers of every watched key present in one of `dbs` (SWAPDB:
    /// Redis `touchAllWatchedKeysInDb`).
    pub fn touch_present(&self, dbs: &[&Db]) {
        let keys: Vec<Bytes> = self
            .keys
            .borrow()
            .keys()
            .filter(|k| dbs.iter().any(|db| db.peek(k).is_some()))
            .cloned()
            .collect();
        for key in keys {
            let mut registry = self.keys.borrow_mut();
            if let Some(list) = registry.remove(&key) {
                for w in list {
                    if let Some(flag) = w.flag.upgrade() {
                        flag.mark_dirty();
                    }
                }
            }
        }
    }

    /// Marks the watchers of `key` dirty (Redis `touchWatchedKey`) and forgets them.
    fn touch(&self, key: &[u8], db: &Db) {
        let mut keys = self.keys.borrow_mut();
        let Some(list) = keys.get_mut(key) else {
            return;
        };
        let gone = db.peek(key).is_none();
        list.retain(|w| {
            let Some(flag) = w.flag.upgrade() else {
                return false;
            };
            if w.expired_at_watch.get() && gone {
                // Expired when watched, now reclaimed: logically no change.
                w.expired_at_watch.set(false);
                return true;
            }
            flag.mark_dirty();
            false
        });
        if list.is_empty() {
            keys.remove(key);
        }
    }

    /// True when one of `keys` watched by `flag` has expired since it was WATCHed but is
    /// still present (Redis 7 `isWatchedKeyExpired`, checked at EXEC).
    pub fn expired_since_watch(
        &self,
        flag: &Arc<TxWatch>,
        keys: &[Bytes],
        db: &Db,
        now_ms: u64,
    ) -> bool {
        let registry = self.keys.borrow();
        let mine = Arc::downgrade(flag);
        keys.iter().any(|key| {
            let watched_fresh = registry.get(key).is_some_and(|list| {
                list.iter()
                    .any(|w| Weak::ptr_eq(&w.flag, &mine) && !w.expired_at_watch.get())
            });
            watched_fresh && expired_now(db, key, now_ms)
        })
    }
}

/// A transaction's part for one shard: its data commands in queue order, and the watch
/// flag and watched keys to check first.
pub struct ShardTx {
    /// The database the data commands run in (the client's SELECTed one at EXEC).
    pub db: DbIndex,
    /// Data commands (route != Connection), `args[0]` the name; arity already checked.
    pub commands: Vec<Vec<Bytes>>,
    /// The client's watch flag, if it WATCHed anything.
    pub watch: Option<Arc<TxWatch>>,
    /// The client's watched keys that live on this shard, with their database.
    pub watched_keys: Vec<(DbIndex, Bytes)>,
}

/// What running a [`ShardTx`] produced.
#[derive(Debug)]
pub enum TxOutcome {
    /// A watched key was touched: nothing ran; EXEC replies a null array.
    Aborted,
    /// The EXEC reply is this error (refused before anything ran, or the AOF append failed
    /// after it ran: the outcome is then uncertain, as for any write).
    Error(Frame),
    /// Every command ran: replies in order, and the LSN the EXEC reply must wait for.
    Ran(Vec<Frame>, Option<Lsn>),
}

impl<I: Io> Shard<I> {
    /// Runs a transaction's data commands here in one synchronous step: check the watch
    /// flag and watched-key expiry, refuse writes while the AOF is latched failed, run every
    /// command (run-time errors such as WRONGTYPE become that command's reply), then append
    /// all propagated records as one AOF record. Blocking commands do not block (Redis runs
    /// them non-blocking inside MULTI).
    pub fn execute_transaction(&self, tx: &ShardTx) -> TxOutcome {
        let now_ms = self.io.wall_clock_ms();
        if let Some(flag) = &tx.watch {
            let dbs = self.dbs.borrow();
            let expired = tx.watched_keys.iter().any(|(db, key)| {
                self.watch.get(*db).is_some_and(|registry| {
                    registry.expired_since_watch(flag, std::slice::from_ref(key), &dbs[*db], now_ms)
                })
            });
            drop(dbs);
            if flag.is_dirty() || expired {
                return TxOutcome::Aborted;
            }
        }
        let specs: Vec<Option<&'static CommandSpec>> = tx
            .commands
            .iter()
            .map(|args| cmd::lookup(&args[0]))
            .collect();
        if specs.iter().flatten().any(|spec| spec.is_write()) {
            if let Some(Err(error)) = self.aof.as_ref().map(|aof| aof.writable()) {
                return TxOutcome::Error(exec_abort_because(&error.to_reply()));
            }
        }
        let mut replies = Vec::with_capacity(tx.commands.len());
        let mut all: Vec<Vec<Bytes>> = Vec::new();
        for (args, spec) in tx.commands.iter().zip(specs) {
            self.commands_processed
                .set(self.commands_processed.get() + 1);
            let Some(spec) = spec else {
                replies.push(cmd::unknown_command(args));
                continue;
            };
            let flushed = self.watch_before(spec, tx.db);
            let (reply, propagate) = self.with_ctx(false, |dbs, ctx| {
                cmd::databases::execute_spec_in(spec, dbs, tx.db, ctx, args)
            });
            self.watch_after(tx.db, &propagate, &flushed);
            self.wake_blocked(tx.db, &propagate);
            replies.push(reply);
            all.extend(propagate);
        }
        let effective = all
            .iter()
            .filter(|r| crate::persist::parse_select(r).is_none())
            .count();
        self.dirty.set(self.dirty.get() + effective as u64);
        let logged = if effective > 1 {
            self.append_all(tx.db, &[transaction_record(&all)])
        } else {
            self.append_all(tx.db, &all)
        };
        match logged {
            Ok(lsn) => TxOutcome::Ran(replies, lsn.or_else(|| self.read_barrier())),
            Err(error) => TxOutcome::Error(error),
        }
    }
}

/// Redis 7's reply when EXEC itself is rejected (`execCommandAbort`):
/// `EXECABORT Transaction discarded because of: <error without its "ERR " prefix>`.
pub fn exec_abort_because(error: &Frame) -> Frame {
    let text = match error {
        Frame::Error(text) => text.as_str(),
        _ => "",
    };
    Frame::error(format!(
        "EXECABORT Transaction discarded because of: {}",
        text.strip_prefix("ERR ").unwrap_or(text)
    ))
}

/// The AOF record of a transaction: `["MULTI", c1, c2, …]` where each `cN` is one
/// propagated command encoded as a RESP array of bulk strings (docs/formats.md). One record,
/// one frame, one CRC: a torn tail drops the whole transaction, never a part of it.
pub fn transaction_record(records: &[Vec<Bytes>]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(records.len() + 1);
    out.push(Bytes::from_static(TRANSACTION_RECORD_NAME.as_bytes()));
    for record in records {
        let mut encoded = Vec::new();
        crate::resp::encode::encode_command(record, &mut encoded);
        out.push(Bytes::from(encoded));
    }
    out
}

/// The commands inside a transaction record, `None` when `args` is not one (any other
/// record). `Err` names what is malformed.
pub fn transaction_records(args: &[Bytes]) -> Option<Result<Vec<Vec<Bytes>>, String>> {
    let name = args.first()?;
    if args.len() < 2 || !name.eq_ignore_ascii_case(TRANSACTION_RECORD_NAME.as_bytes()) {
        return None;
    }
    let limits = ParseLimits {
        bulk_len_max_bytes: TRANSACTION_ELEMENT_MAX_BYTES,
        array_len_max: TRANSACTION_ELEMENT_ARGS_MAX,
        ..ParseLimits::default()
    };
    let mut commands = Vec::with_capacity(args.len() - 1);
    for (index, element) in args[1..].iter().enumerate() {
        if element.first() != Some(&b'*') {
            return Some(Err(format!(
                "transaction record element {index} is not a RESP array"
            )));
        }
        let mut parser = RequestParser::new(limits);
        parser.feed(element);
        match parser.next_command() {
            Ok(Some(command)) if parser.buffered_len() == 0 => commands.push(command),
            Ok(_) => {
                return Some(Err(format!(
                    "transaction record element {index} is not exactly one command"
                )))
            }
            Err(error) => {
                return Some(Err(format!(
                    "transaction record element {index}: {}",
                    error.0
                )))
            }
        }
    }
    Some(Ok(commands))
}

/// What the connection layer asks of the shard owning a transaction's keys.
pub enum WatchJob {
    /// Register `flag` as a watcher of `keys` (all owned by the target shard).
    Watch {
        /// The database the keys are in.
        db: DbIndex,
        /// The keys.
        keys: Vec<Bytes>,
        /// The client's flag.
        flag: Arc<TxWatch>,
    },
    /// Run a transaction's data commands atomically; answer once acknowledged.
    Exec(ShardTx),
}

/// The answer to a [`WatchJob`].
pub enum WatchAnswer {
    /// The keys are watched.
    Watched,
    /// The transaction's outcome (already acknowledged per the AOF policy).
    Exec(TxOutcome),
}

/// Serves one [`WatchJob`] on this shard (called by the shard's request server).
pub fn serve_job<I: Io>(
    shard: &Rc<Shard<I>>,
    job: WatchJob,
    reply: async_channel::Sender<Response>,
) {
    match job {
        WatchJob::Watch { db, keys, flag } => {
            let now_ms = shard.io.wall_clock_ms();
            let dbs = shard.dbs.borrow();
            if let (Some(registry), Some(keys_db)) = (shard.watch.get(db), dbs.get(db)) {
                for key in keys {
                    registry.watch(key, &flag, keys_db, now_ms);
                }
            }
            let _ = reply.try_send(Response::Multi(WatchAnswer::Watched));
        }
        WatchJob::Exec(tx) => {
            let outcome = shard.execute_transaction(&tx);
            let acker = shard.clone();
            shard.io.spawn_local(async move {
                let outcome = match outcome {
                    TxOutcome::Ran(replies, lsn) => match acker.wait_ack(lsn).await {
                        Ok(()) => TxOutcome::Ran(replies, None),
                        Err(error) => TxOutcome::Error(error),
                    },
                    other => other,
                };
                let _ = reply.try_send(Response::Multi(WatchAnswer::Exec(outcome)));
            });
        }
    }
}

/// Sends a [`WatchJob`] to shard `target` and waits (bounded by `timeout`) for the answer;
/// errors are reply frames (see `dispatch::call`).
pub async fn call<C: Clock>(
    clock: &C,
    senders: &Senders,
    target: u16,
    job: WatchJob,
    timeout: Duration,
) -> Result<WatchAnswer, Frame> {
    match dispatch::call(clock, senders, target, Job::Multi(job), timeout).await? {
        Response::Multi(answer) => Ok(answer),
        _ => Err(Frame::error(
            "ERR internal: unexpected response to a transaction job",
        )),
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
