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
//! Databases: a shard owns `databases` keyspaces (SELECT 0..N-1, index = database number).
//! A command runs against one of them (the connection's selected database, carried by
//! every cross-shard job); MOVE, SWAPDB and FLUSHALL see them all (`cmd::databases`).
//! Each record is appended in its database (`Aof::append_in_db`); a propagated
//! `SELECT n` record (MOVE's lazy expiry in the target) switches the database for the
//! records after it.
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
use crate::shard::dispatch::{DbStats, ShardStats};

/// Keys examined per active-expiry cycle at most, per database.
pub const ACTIVE_EXPIRE_SAMPLE_BUDGET_KEYS: usize = 200;
/// Databases with keys to expire visited per active-expiry cycle at most (Redis
/// `CRON_DBS_PER_CALL`); the next cycle goes on where this one stopped.
pub const ACTIVE_EXPIRE_DBS_PER_CYCLE: usize = 16;

/// A database number, `0..databases`.
pub type DbIndex = usize;

/// The state of one shard, shared by that shard's tasks (single thread).
pub struct Shard<I: Io> {
    /// This shard's id, `0..shards`.
    pub id: u16,
    /// The seam.
    pub io: I,
    /// The keyspaces, one per database (index = database number; never empty).
    pub dbs: RefCell<Vec<Db>>,
    /// The database the start-up replay is in (changed by SELECT records).
    replay_db: Cell<DbIndex>,
    /// The database the next active-expiry cycle starts at.
    expire_cursor: Cell<DbIndex>,
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
    /// Clients blocked on this shard's keys (BLPOP & co., see `shard::blocking`), one
    /// registry per database.
    pub blocking: Vec<crate::shard::blocking::BlockingRegistry>,
    /// WATCHed keys on this shard (MULTI/EXEC, see `shard::watch`), one registry per
    /// database.
    pub watch: Vec<crate::shard::watch::WatchRegistry>,
    /// Test-only (`Defects::drop_appends_during_rewrite`, predecessor bug 8): set by the
    /// rewrite from its switch until its base is written; while set, a record that finds
    /// more than [`DEFECT_BUFFER_FULL_BYTES`] buffered is dropped instead of appended.
    pub drop_appends_when_full: Cell<bool>,
}

/// The "full" threshold of the re-introduced predecessor bug 8 (a small bounded channel).
pub const DEFECT_BUFFER_FULL_BYTES: u64 = 4096;

impl<I: Io> Shard<I> {
    /// A shard with one database (`db`); the AOF is attached by the caller after recovery.
    pub fn new(id: u16, io: I, db: Db, aof: Option<Aof<I>>) -> Shard<I> {
        Shard::with_dbs(id, io, vec![db], aof)
    }

    /// A shard owning `dbs` (index = database number; at least one).
    pub fn with_dbs(id: u16, io: I, dbs: Vec<Db>, aof: Option<Aof<I>>) -> Shard<I> {
        assert!(!dbs.is_empty(), "a shard needs at least one database");
        let blocking = dbs
            .iter()
            .map(|_| crate::shard::blocking::BlockingRegistry::new())
            .collect();
        let watch = dbs
            .iter()
            .map(|_| crate::shard::watch::WatchRegistry::new())
            .collect();
        Shard {
            id,
            io,
            dbs: RefCell::new(dbs),
            replay_db: Cell::new(0),
            expire_cursor: Cell::new(0),
            aof,
            commands_processed: Cell::new(0),
            dirty: Cell::new(0),
            loaded_records: Cell::new(0),
            truncated_bytes: Cell::new(0),
            blocking,
            watch,
            drop_appends_when_full: Cell::new(false),
        }
    }

    /// The number of databases (`databases`).
    pub fn databases(&self) -> usize {
        self.blocking.len()
    }

    /// Executes a data command here in database `db` (`< databases`, checked by SELECT).
    /// Returns the reply and the LSN the reply must wait for (`None` when the AOF is off).
    pub fn execute_local(
        &self,
        db: DbIndex,
        spec: &CommandSpec,
        args: &[Bytes],
    ) -> (Frame, Option<Lsn>) {
        self.commands_processed
            .set(self.commands_processed.get() + 1);
        if spec.is_write() {
            if let Some(Err(error)) = self.aof.as_ref().map(|aof| aof.writable()) {
                return (error.to_reply(), None);
            }
        }
        // MULTI/EXEC: FLUSHALL/FLUSHDB invalidate the watched keys present before them.
        let flushed = self.watch_before(spec, db);
        let (reply, propagate) = self.with_ctx(false, |dbs, ctx| {
            cmd::databases::execute_spec_in(spec, dbs, db, ctx, args)
        });
        let effective = propagate
            .iter()
            .filter(|r| crate::persist::parse_select(r).is_none())
            .count();
        self.dirty.set(self.dirty.get() + effective as u64);
        // MULTI/EXEC: keys this command wrote invalidate their watchers (shard::watch).
        self.watch_after(db, &propagate, &flushed);
        // Wake clients blocked on keys this command filled (lists family).
        self.wake_blocked(db, &propagate);
        let lsn = self.append_all(db, &propagate);
        match lsn {
            Ok(lsn) => (reply, lsn),
            Err(error) => (error, None),
        }
    }

    /// Runs one active-expiry cycle over up to [`ACTIVE_EXPIRE_DBS_PER_CYCLE`] databases
    /// holding keys with a TTL, and logs the deletes in their databases.
    pub fn active_expire(&self) {
        let count = self.databases();
        let start = self.expire_cursor.get() % count;
        let mut visited = 0;
        for step in 0..count {
            let db = (start + step) % count;
            if self.dbs.borrow()[db].expires_len() == 0 {
                continue;
            }
            let (_, propagate) = self.with_ctx(false, |dbs, ctx| {
                dbs[db].active_expire_cycle(ctx, ACTIVE_EXPIRE_SAMPLE_BUDGET_KEYS)
            });
            // MULTI/EXEC: a watched key reclaimed by expiry invalidates its watchers.
            self.watch[db].after_command(&propagate, &[], &self.dbs.borrow()[db]);
            if let Err(error) = self.append_all(db, &propagate) {
                tracing::warn!(
                    shard = self.id,
                    ?error,
                    "active expiry could not log its deletes"
                );
            }
            visited += 1;
            if visited == ACTIVE_EXPIRE_DBS_PER_CYCLE {
                self.expire_cursor.set(db + 1);
                return;
            }
        }
        self.expire_cursor.set(start);
    }

    /// Runs `f` on the keyspace with an execution context (the seam's clock and entropy);
    /// returns its result and the commands it propagated.
    pub(crate) fn with_ctx<R>(
        &self,
        replaying: bool,
        f: impl FnOnce(&mut [Db], &mut ExecCtx) -> R,
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
        let result = f(&mut self.dbs.borrow_mut(), &mut ctx);
        (result, propagate)
    }

    /// Applies one replayed AOF record (start-up); nothing is logged. A transaction record
    /// (`shard::watch::transaction_record`) applies each of its commands in order. A
    /// `SELECT n` record switches the database the following records replay into.
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
        if let Some(select) = crate::persist::parse_select(args) {
            let db = select?;
            if db >= self.databases() {
                return Err(format!(
                    "the AOF uses database {db} but the server has {} databases; restart with `--databases {}` or more",
                    self.databases(),
                    db + 1
                ));
            }
            self.replay_db.set(db);
            return Ok(());
        }
        let db = self.replay_db.get();
        let (reply, _) = self.with_ctx(true, |dbs, ctx| {
            cmd::databases::execute_in(dbs, db, ctx, args)
        });
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
        let dbs = self.dbs.borrow();
        let now_ms = self.io.wall_clock_ms();
        let mut stats = ShardStats {
            keys: dbs.iter().map(|d| d.len() as u64).sum(),
            expires: dbs.iter().map(|d| d.expires_len() as u64).sum(),
            used_memory_bytes: dbs.iter().map(|d| d.used_memory_bytes() as u64).sum(),
            expired_keys: dbs.iter().map(Db::expired_keys).sum(),
            databases: (dbs.iter().enumerate())
                .filter(|(_, d)| !d.is_empty())
                .map(|(index, d)| (index, DbStats::of(d, now_ms)))
                .collect(),
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

    /// Appends the propagated records, the first in database `db`; a `SELECT n` record in
    /// `propagate` switches the database of the records after it.
    pub(crate) fn append_all(
        &self,
        db: DbIndex,
        propagate: &[Vec<Bytes>],
    ) -> Result<Option<Lsn>, Frame> {
        let Some(aof) = &self.aof else {
            return Ok(None);
        };
        let mut last = None;
        for (db, record) in records_by_db(db, propagate) {
            if self.drop_appends_when_full.get()
                && aof.stats().buffer_len_bytes > DEFECT_BUFFER_FULL_BYTES
            {
                continue; // Predecessor bug 8 (test-only switch): drop-on-full.
            }
            last = Some(aof.append_in_db(db, record).map_err(|e| e.to_reply())?);
        }
        // No record: the caller applies the read barrier (which skips a latched AOF, so
        // reads keep working while writes are refused).
        Ok(last)
    }

    /// MULTI/EXEC, before a command runs: for FLUSHALL (every database) or FLUSHDB (`db`),
    /// the watched keys physically present, per database; empty otherwise.
    pub(crate) fn watch_before(
        &self,
        spec: &CommandSpec,
        db: DbIndex,
    ) -> Vec<(DbIndex, Vec<Bytes>)> {
        let dbs = self.dbs.borrow();
        let all = spec.name == "flushall";
        (0..dbs.len())
            .filter(|&i| all || i == db)
            .map(|i| (i, self.watch[i].before_command(spec, &dbs[i])))
            .filter(|(_, keys)| !keys.is_empty())
            .collect()
    }

    /// MULTI/EXEC, after a command ran: every key written by a propagated record (in its
    /// database) invalidates its watchers; a flush invalidates the keys `flushed` held;
    /// SWAPDB invalidates every watched key present in either database (Redis
    /// `touchAllWatchedKeysInDb`); MOVE and COPY … DB also touch the target database.
    pub(crate) fn watch_after(
        &self,
        db: DbIndex,
        propagate: &[Vec<Bytes>],
        flushed: &[(DbIndex, Vec<Bytes>)],
    ) {
        let dbs = self.dbs.borrow();
        for (db, record) in records_by_db(db, propagate) {
            let name = record.first().map(|n| n.to_ascii_lowercase());
            match name.as_deref() {
                Some(b"flushall") | Some(b"flushdb") => {
                    for (index, keys) in flushed {
                        self.watch[*index].after_command(
                            std::slice::from_ref(record),
                            keys,
                            &dbs[*index],
                        );
                    }
                }
                _ => {
                    if let Some((a, b)) = cmd::databases::swapped(record) {
                        for index in [a, b] {
                            if let Some(registry) = self.watch.get(index) {
                                registry.touch_present(&[&dbs[a], &dbs[b]]);
                            }
                        }
                        continue;
                    }
                    self.watch[db].after_command(std::slice::from_ref(record), &[], &dbs[db]);
                    if let Some((target, key)) = moved_to(record) {
                        if let (Some(registry), Some(keys)) =
                            (self.watch.get(target), dbs.get(target))
                        {
                            registry.touch_key(key, keys);
                        }
                    }
                }
            }
        }
    }

    /// Wakes clients blocked on keys the propagated records filled; after a SWAPDB, every
    /// ready key of both databases (their contents changed wholesale).
    pub(crate) fn wake_blocked(&self, db: DbIndex, propagate: &[Vec<Bytes>]) {
        let dbs = self.dbs.borrow();
        for (db, record) in records_by_db(db, propagate) {
            if let Some((a, b)) = cmd::databases::swapped(record) {
                for index in [a, b] {
                    if let (Some(registry), Some(keys)) = (self.blocking.get(index), dbs.get(index))
                    {
                        registry.wake_all_ready(keys);
                    }
                }
                continue;
            }
            self.blocking[db].wake_ready(std::slice::from_ref(record), &dbs[db]);
        }
    }
}

/// The propagated records with their database: the first in `db`, a `SELECT n` record
/// switches the database for the ones after it (and is not itself returned).
/// MOVE key db / COPY src dst … DB db: the database and key written in the target.
fn moved_to(record: &[Bytes]) -> Option<(DbIndex, &Bytes)> {
    let name = record.first()?;
    let parse = |b: &Bytes| std::str::from_utf8(b).ok()?.parse::<DbIndex>().ok();
    if name.eq_ignore_ascii_case(b"move") && record.len() == 3 {
        return Some((parse(&record[2])?, &record[1]));
    }
    if name.eq_ignore_ascii_case(b"copy") && record.len() >= 3 {
        let at = record[3..]
            .iter()
            .position(|a| a.eq_ignore_ascii_case(b"db"))?;
        return Some((parse(record.get(3 + at + 1)?)?, &record[2]));
    }
    None
}

fn records_by_db(
    db: DbIndex,
    propagate: &[Vec<Bytes>],
) -> impl Iterator<Item = (DbIndex, &Vec<Bytes>)> {
    let mut current = db;
    propagate
        .iter()
        .filter_map(move |record| match crate::persist::parse_select(record) {
            Some(Ok(next)) => {
                current = next;
                None
            }
            Some(Err(_)) => None,
            None => Some((current, record)),
        })
}
