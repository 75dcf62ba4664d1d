//! One shard's state: its keyspace, its AOF and its counters, and the one place where a
//! data command is executed locally: apply to the keyspace, append what it propagates to
//! the AOF, and return the LSN the reply must wait for.
//!
//! Steps of a local write (the order is the durability protocol):
//! 1. refuse up front if the AOF is latched failed (`MISCONF`): nothing is applied;
//! 2. execute against the keyspace, collecting the commands to propagate;
//! 3. append each propagated command to the AOF buffer (synchronous, never dropped);
//! 4. the caller waits for `Aof::wait_ack(lsn)` before the reply leaves the process.
//!
//! Reads also wait for the AOF's last LSN (a read barrier): a read never reveals a write
//! that a crash could still lose.
//!
//! What can fail here: an AOF append error after the keyspace changed (the reply becomes
//! an error and the write's outcome is uncertain, as with a timed-out fsync).

use std::cell::{Cell, RefCell};

use bytes::Bytes;

use crate::cmd::{self, CommandSpec, ExecCtx};
use crate::io::Io;
use crate::keyspace::Db;
use crate::persist::{Aof, Lsn};
use crate::resp::Frame;
use crate::shard::dispatch::ShardStats;

/// Keys examined per active-expiry cycle at most.
pub const ACTIVE_EXPIRE_SAMPLE_BUDGET_KEYS: usize = 200;

/// The state of one shard, shared by that shard's tasks (single thread).
pub struct Shard<I: Io> {
    /// This shard's id, `0..shards`.
    pub id: u16,
    /// The seam.
    pub io: I,
    /// The keyspace.
    pub db: RefCell<Db>,
    /// The AOF, when `appendonly yes`.
    pub aof: Option<Aof<I>>,
    /// Commands executed here.
    pub commands_processed: Cell<u64>,
    /// Records propagated by writes here (for the `save` rules).
    pub dirty: Cell<u64>,
    /// Records replayed at start-up.
    pub loaded_records: Cell<u64>,
    /// Torn-tail bytes truncated at start-up.
    pub truncated_bytes: Cell<u64>,
    /// Clients blocked on this shard's keys (BLPOP & co., see `shard::blocking`).
    pub blocking: crate::shard::blocking::BlockingRegistry,
    /// WATCHed keys on this shard (MULTI/EXEC, see `shard::watch`).
    pub watch: crate::shard::watch::WatchRegistry,
    /// Test-only (`Defects::drop_appends_during_rewrite`, predecessor bug 8): set by the
    /// rewrite from its switch until its base is written; while set, a record that finds
    /// more than [`DEFECT_BUFFER_FULL_BYTES`] buffered is dropped instead of appended.
    pub drop_appends_when_full: Cell<bool>,
}

/// The "full" threshold of the re-introduced predecessor bug 8 (a small bounded channel).
pub const DEFECT_BUFFER_FULL_BYTES: u64 = 4096;

impl<I: Io> Shard<I> {
    /// A shard with an empty keyspace; the AOF is attached by the caller after recovery.
    pub fn new(id: u16, io: I, db: Db, aof: Option<Aof<I>>) -> Shard<I> {
        Shard {
            id,
            io,
            db: RefCell::new(db),
            aof,
            commands_processed: Cell::new(0),
            dirty: Cell::new(0),
            loaded_records: Cell::new(0),
            truncated_bytes: Cell::new(0),
            blocking: crate::shard::blocking::BlockingRegistry::new(),
            watch: crate::shard::watch::WatchRegistry::new(),
            drop_appends_when_full: Cell::new(false),
        }
    }

    /// Executes a data command here. Returns the reply and the LSN the reply must wait for
    /// (`None` when the AOF is off).
    pub fn execute_local(&self, spec: &CommandSpec, args: &[Bytes]) -> (Frame, Option<Lsn>) {
        self.commands_processed
            .set(self.commands_processed.get() + 1);
        if spec.is_write() {
            if let Some(Err(error)) = self.aof.as_ref().map(|aof| aof.writable()) {
                return (error.to_reply(), None);
            }
        }
        // MULTI/EXEC: FLUSHALL/FLUSHDB invalidate the watched keys present before them.
        let flushed = self.watch.before_command(spec, &self.db.borrow());
        let (reply, propagate) =
            self.with_ctx(false, |db, ctx| cmd::execute_spec(spec, db, ctx, args));
        self.dirty.set(self.dirty.get() + propagate.len() as u64);
        // MULTI/EXEC: keys this command wrote invalidate their watchers (shard::watch).
        self.watch
            .after_command(&propagate, &flushed, &self.db.borrow());
        // Wake clients blocked on keys this command filled (lists family).
        self.blocking.wake_ready(&propagate, &self.db.borrow());
        let lsn = self.append_all(&propagate);
        match lsn {
            Ok(lsn) => (reply, lsn),
            Err(error) => (error, None),
        }
    }

    /// Runs one active-expiry cycle and logs the deletes.
    pub fn active_expire(&self) {
        let (_, propagate) = self.with_ctx(false, |db, ctx| {
            db.active_expire_cycle(ctx, ACTIVE_EXPIRE_SAMPLE_BUDGET_KEYS)
        });
        // MULTI/EXEC: a watched key reclaimed by expiry invalidates its watchers.
        self.watch.after_command(&propagate, &[], &self.db.borrow());
        if let Err(error) = self.append_all(&propagate) {
            tracing::warn!(
                shard = self.id,
                ?error,
                "active expiry could not log its deletes"
            );
        }
    }

    /// Runs `f` on the keyspace with an execution context (the seam's clock and entropy);
    /// returns its result and the commands it propagated.
    pub(crate) fn with_ctx<R>(
        &self,
        replaying: bool,
        f: impl FnOnce(&mut Db, &mut ExecCtx) -> R,
    ) -> (R, Vec<Vec<Bytes>>) {
        let mut propagate: Vec<Vec<Bytes>> = Vec::new();
        let io = &self.io;
        let mut random = || io.random_u64();
        let mut ctx = ExecCtx {
            now_ms: io.wall_clock_ms(),
            random: &mut random,
            propagate: &mut propagate,
            replaying,
        };
        let result = f(&mut self.db.borrow_mut(), &mut ctx);
        (result, propagate)
    }

    /// Applies one replayed AOF record (start-up); nothing is logged. A transaction record
    /// (`shard::watch::transaction_record`) applies each of its commands in order.
    pub fn replay(&self, args: &[Bytes]) -> Result<(), String> {
        if let Some(commands) = crate::shard::watch::transaction_records(args) {
            for command in commands? {
                self.replay_one(&command)?;
            }
            return Ok(());
        }
        self.replay_one(args)
    }

    fn replay_one(&self, args: &[Bytes]) -> Result<(), String> {
        let (reply, _) = self.with_ctx(true, |db, ctx| cmd::execute(db, ctx, args));
        match reply {
            Frame::Error(text) => Err(format!(
                "replaying {:?} failed: {text}",
                String::from_utf8_lossy(args.first().map(|a| &a[..]).unwrap_or(b""))
            )),
            _ => Ok(()),
        }
    }

    /// The LSN a read must wait for (everything it may have observed is then acknowledged).
    /// While the AOF is latched failed, reads do not wait (they keep working).
    pub fn read_barrier(&self) -> Option<Lsn> {
        let aof = self.aof.as_ref()?;
        aof.writable().ok()?;
        Some(aof.last_lsn())
    }

    /// Waits until `lsn` is acknowledged per the AOF policy; an error frame otherwise.
    pub async fn wait_ack(&self, lsn: Option<Lsn>) -> Result<(), Frame> {
        match (&self.aof, lsn) {
            (Some(aof), Some(lsn)) => aof.wait_ack(lsn).await.map_err(|e| e.to_reply()),
            _ => Ok(()),
        }
    }

    /// This shard's numbers for INFO.
    pub fn stats(&self) -> ShardStats {
        let db = self.db.borrow();
        let mut stats = ShardStats {
            keys: db.len() as u64,
            expires: db.expires_len() as u64,
            used_memory_bytes: db.used_memory_bytes() as u64,
            expired_keys: db.expired_keys(),
            commands_processed: self.commands_processed.get(),
            dirty: self.dirty.get(),
            aof_last_write_ok: true,
            aof_loaded_records: self.loaded_records.get(),
            aof_truncated_bytes: self.truncated_bytes.get(),
            ..ShardStats::default()
        };
        if let Some(aof) = &self.aof {
            let aof_stats = aof.stats();
            stats.aof_last_write_ok = aof_stats.last_write_ok;
            stats.aof_last_error = aof_stats.last_error;
            stats.aof_current_size_bytes = aof_stats.current_size_bytes;
            stats.aof_buffer_len_bytes = aof_stats.buffer_len_bytes;
            stats.aof_fsyncs = aof_stats.fsyncs;
        }
        stats
    }

    pub(crate) fn append_all(&self, propagate: &[Vec<Bytes>]) -> Result<Option<Lsn>, Frame> {
        let Some(aof) = &self.aof else {
            return Ok(None);
        };
        let mut last = None;
        for record in propagate {
            if self.drop_appends_when_full.get()
                && aof.stats().buffer_len_bytes > DEFECT_BUFFER_FULL_BYTES
            {
                continue; // Predecessor bug 8 (test-only switch): drop-on-full.
            }
            last = Some(aof.append(record).map_err(|e| e.to_reply())?);
        }
        // No record: the caller applies the read barrier (which skips a latched AOF, so
        // reads keep working while writes are refused).
        Ok(last)
    }
}
