//! Persistence: the per-shard append-only file (AOF). `format.rs` encodes and decodes the
//! file header and record frames (byte map in docs/formats.md), `writer.rs` is the
//! group-commit writer task with the `appendfsync` policies and failure latching,
//! `recovery.rs` replays a shard's log at start-up, truncating a torn tail and refusing
//! mid-file corruption. This module holds the public API the shard layer calls.
//!
//! What can fail here: disk errors (latched: after the first write or fsync failure no
//! later write is acknowledged, see [`AofError::Failed`]; the writer retries about once a
//! second by truncating to the last known-good frame, rewriting, fsyncing), a stalled
//! fsync (every wait is bounded by `fsync_timeout` → [`AofError::Timeout`]), and corrupt or
//! mismatched files at start-up ([`AofError::Corrupt`], [`AofError::ShardCountMismatch`]).
//!
//! API contract used by the shard layer:
//!
//! ```text
//!   Aof::<I>::open(io, AofOptions, &mut replay) -> Result<(Aof<I>, RecoveryReport), AofError>
//!       1. create the AOF dir if missing; 2. read the shard's log and call
//!       replay(lsn, args) for every valid record in order; 3. truncate a torn tail
//!       (logged with tracing::warn!) or refuse mid-file corruption; 4. fsync, open for
//!       append at the end of the last valid record, next LSN = last LSN + 1; 5. spawn the
//!       writer task (io.spawn_local). The task ends when every Aof handle is dropped.
//!   aof.append(&[Bytes]) -> Result<Lsn, AofError>     buffer one record, synchronous
//!   aof.append_in_db(db, &[Bytes]) -> Result<Lsn, _>  the same, in database `db` (a
//!                                                     SELECT record first if needed, select.rs)
//!   aof.wait_ack(lsn).await -> Result<(), AofError>   Always: covering fsync done;
//!                                                     Everysec/No: record written (write(2))
//!   aof.wait_room().await -> Result<(), AofError>     bounded backpressure before a write
//!   aof.last_lsn() -> Lsn                             last LSN handed out by append
//!   aof.stats() -> AofStats                           for INFO persistence
//!   aof.flush_and_sync().await                        graceful shutdown: write + fsync all
//! ```
//!
//! Multi-part AOF (manifest.rs, parts.rs; docs/formats.md and docs/durability.md):
//!
//! ```text
//!   Aof::open_parts(io, opts, &ShardParts, &mut replay)  recover base + incrs as listed
//!   aof.prepare_incr(name).await                      rewrite step: create + fsync new incr
//!   aof.switch_to_prepared() -> Result<Lsn, _>        synchronous: later appends go to it
//!   aof.discard_prepared()                            abort before the switch
//!   write_base(io, opts, name, &[Db], lsn, now_ms).await  write + fsync a base file
//!   manifest::{load, commit}, check::check_aof          manifest IO, `check-aof` tool
//! ```

pub mod check;
mod format;
pub mod manifest;
mod parts;
pub mod rdb;
mod recovery;
mod select;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_defects;
#[cfg(test)]
mod tests_rewrite;
#[cfg(test)]
mod tests_writer;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use event_listener::Event;

use crate::io::{with_timeout, Clock, Disk, OpenMode, Spawn};
use crate::resp::Frame;
use crate::server::config::{Config, FsyncPolicy};

pub use format::{
    FILE_FLAG_BASE, FILE_HEADER_LEN_BYTES, FRAME_HEADER_LEN_BYTES, RECORD_PAYLOAD_MAX_BYTES,
};
pub use manifest::{Manifest, PartKind, ShardParts};
pub use parts::{boot_copy_temp_path, write_base, BaseWritten, BOOT_COPY_TEMP_SUFFIX};
pub use select::{parse_select, select_record};

/// Log sequence number: the position of a record in its shard's log, starting at 1 and
/// increasing by exactly 1 per record, across restarts.
pub type Lsn = u64;

/// Default for [`AofOptions::buffer_bytes_max`]: 64 MiB of records not yet written.
pub const BUFFER_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Under `everysec`, written data is fsynced at most this long after it was written.
pub const EVERYSEC_INTERVAL_MS: u64 = 1_000;
/// After a latched failure the writer retries (truncate, rewrite, fsync) this often.
pub const FAILED_RETRY_INTERVAL_MS: u64 = 1_000;

/// The file name of shard `shard_id`'s log inside the AOF directory: `shard-007.aof`.
pub fn shard_file_name(shard_id: u16) -> String {
    format!("shard-{shard_id:03}.aof")
}

/// How one shard's AOF is opened and run.
#[derive(Clone, Debug)]
pub struct AofOptions {
    /// The AOF directory (created if missing), e.g. `dir/appendonlydir`.
    pub dir: PathBuf,
    /// This shard's id, `< shard_count`.
    pub shard_id: u16,
    /// The server's shard count; a file written with another count is refused.
    pub shard_count: u16,
    /// `appendfsync`.
    pub fsync: FsyncPolicy,
    /// Bound on every wait in `wait_ack`, `wait_room`, `flush_and_sync`.
    pub fsync_timeout: Duration,
    /// Backpressure threshold: `wait_room` waits while more bytes than this are buffered.
    pub buffer_bytes_max: usize,
    /// Test-only defect (predecessor bug 2): under `always`, `wait_ack` does not wait.
    pub ack_before_fsync_defect: bool,
    /// Test-only defect (predecessor bug 3): after recovery the next LSN is the last
    /// recovered LSN (reused) instead of last + 1.
    pub lsn_reuse_defect: bool,
    /// Test-only defect (predecessor bug 4): `wait_ack` ignores `fsync_timeout`.
    pub unbounded_ack_wait_defect: bool,
    /// Test-only defect (predecessor bug 9): under `everysec` the fsync deadline is
    /// measured from the newest write, so steady traffic starves the fsync.
    pub everysec_starved_defect: bool,
    /// Test-only defect (predecessor bug 10): a write error does not latch; the chunk is
    /// treated as written and later frames are appended after the torn one.
    pub append_after_torn_write_defect: bool,
}

impl AofOptions {
    /// The options for shard `shard_id` of a server running `config`.
    pub fn from_config(config: &Config, shard_id: u16) -> AofOptions {
        AofOptions {
            dir: config.aof_dir(),
            shard_id,
            shard_count: config.shards,
            fsync: config.appendfsync,
            fsync_timeout: config.aof_fsync_timeout(),
            buffer_bytes_max: BUFFER_BYTES_MAX_DEFAULT,
            ack_before_fsync_defect: config.defects.ack_before_fsync,
            lsn_reuse_defect: config.defects.lsn_reuse_after_recovery,
            unbounded_ack_wait_defect: config.defects.unbounded_fsync_wait,
            everysec_starved_defect: config.defects.everysec_starved_by_traffic,
            append_after_torn_write_defect: config.defects.append_after_torn_write,
        }
    }

    /// The path of this shard's log: `dir/shard-<id>.aof`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(shard_file_name(self.shard_id))
    }
}

/// Everything that can go wrong with the AOF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AofError {
    /// A disk operation failed at start-up (`op` names it).
    Io {
        path: PathBuf,
        op: &'static str,
        detail: String,
    },
    /// The AOF is latched failed after a write or fsync error; writes are refused until
    /// the writer's retry succeeds. `cause` is the OS error text.
    Failed { cause: String },
    /// The wait for a write/fsync exceeded `fsync_timeout`: the record may or may not be
    /// durable ("uncertain"); it is never reported as written.
    Timeout,
    /// A bad record in data that was already fsynced: start-up is refused.
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// The file was written by a server with a different shard count.
    ShardCountMismatch {
        path: PathBuf,
        found: u16,
        expected: u16,
    },
    /// The replay callback refused record `lsn`.
    Replay {
        path: PathBuf,
        lsn: Lsn,
        detail: String,
    },
    /// A command's encoding exceeds [`RECORD_PAYLOAD_MAX_BYTES`].
    RecordTooLarge { bytes: usize },
    /// Invalid [`AofOptions`] (e.g. `shard_id >= shard_count`).
    InvalidOptions { detail: String },
    /// `append` was given no arguments (a record needs at least the command name).
    EmptyRecord,
    /// A file the manifest names does not exist: start-up is refused.
    MissingFile { path: PathBuf, detail: String },
    /// A rewrite step was asked out of order (no prepared incr, switch already running).
    RewriteState { detail: String },
}

impl fmt::Display for AofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AofError::Io { path, op, detail } => {
                write!(f, "AOF {op} failed on {}: {detail}", path.display())
            }
            AofError::Failed { cause } => write!(f, "AOF write or fsync failed: {cause}"),
            AofError::Timeout => f.write_str(
                "timed out waiting for the AOF write/fsync; the write may or may not be durable",
            ),
            AofError::Corrupt { path, offset, detail } => write!(
                f,
                "Bad AOF record in {} at offset {offset}: {detail}. The damage is in data that \
                 was already fsynced, so this is corruption, not a torn tail: refusing to start. \
                 Inspect and repair it with `tidemark check-aof {}`.",
                path.display(),
                path.display()
            ),
            AofError::ShardCountMismatch { path, found, expected } => write!(
                f,
                "{} was written by a server with {found} shards but this server is configured \
                 with {expected}; restart with `--shards {found}` (resharding an AOF is not supported)",
                path.display()
            ),
            AofError::Replay { path, lsn, detail } => {
                write!(f, "replaying LSN {lsn} of {} failed: {detail}", path.display())
            }
            AofError::RecordTooLarge { bytes } => write!(
                f,
                "command too large for the AOF ({bytes} bytes encoded, limit {RECORD_PAYLOAD_MAX_BYTES})"
            ),
            AofError::InvalidOptions { detail } => write!(f, "invalid AOF options: {detail}"),
            AofError::EmptyRecord => f.write_str("an AOF record needs at least the command name"),
            AofError::MissingFile { path, detail } => write!(
                f,
                "{} is named by the AOF manifest but is missing ({detail}); refusing to start: \
                 replaying the other files would silently lose its writes. Restore the file, or \
                 inspect the directory with `tidemark check-aof {}`",
                path.display(),
                path.parent().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            AofError::RewriteState { detail } => write!(f, "AOF rewrite: {detail}"),
        }
    }
}

impl std::error::Error for AofError {}

impl AofError {
    /// The reply a client gets when its write hits this error. `Failed` gives Redis's
    /// `MISCONF Errors writing to the AOF file: <cause>`; the rest are `ERR …`.
    pub fn to_reply(&self) -> Frame {
        match self {
            AofError::Failed { cause } => {
                Frame::error(format!("MISCONF Errors writing to the AOF file: {cause}"))
            }
            other => Frame::error(format!("ERR {other}")),
        }
    }

    fn io(path: &Path, op: &'static str, error: std::io::Error) -> AofError {
        AofError::Io {
            path: path.to_path_buf(),
            op,
            detail: error.to_string(),
        }
    }
}

/// What start-up recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records: u64,
    /// LSN of the last valid record (0 if none).
    pub last_lsn: Lsn,
    /// Length of the valid log, header included, in bytes (the file size after recovery).
    pub bytes: u64,
    /// Bytes of torn tail cut off (0 if the log ended cleanly).
    pub truncated_bytes: u64,
}

/// Counters for `INFO persistence`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AofStats {
    /// False while latched failed (Redis `aof_last_write_status:err`).
    pub last_write_ok: bool,
    /// The most recent write/fsync error, kept after recovery from it.
    pub last_error: Option<String>,
    /// File size up to the end of the last fully written frame.
    pub current_size_bytes: u64,
    /// Bytes appended but not yet written (buffered or being written).
    pub buffer_len_bytes: u64,
    /// Highest LSN covered by a successful fsync.
    pub durable_lsn: Lsn,
    /// Last LSN handed out by `append`.
    pub last_lsn: Lsn,
    /// Successful fsyncs since open.
    pub fsyncs: u64,
    /// `everysec` fsyncs that started more than 2 × the interval after the data was
    /// written (the loss window was exceeded; Redis `aof_delayed_fsync`).
    pub delayed_fsyncs: u64,
}

/// The shard's AOF: a cheap handle (`Rc`) shared by the shard's tasks. `!Send`.
pub struct Aof<I: Disk> {
    shared: Rc<Shared<I>>,
}

impl<I: Disk> Clone for Aof<I> {
    fn clone(&self) -> Aof<I> {
        Aof {
            shared: self.shared.clone(),
        }
    }
}

/// State shared between the handles and the writer task.
struct Shared<I: Disk> {
    io: I,
    /// The file appends go to (the shard's last incr). Replaced only by the writer, at a
    /// switch, once the old file is fully written and fsynced.
    path: RefCell<PathBuf>,
    opts: AofOptions,
    /// The salt `append` encodes new frames with (the newest file's).
    salt: Cell<u32>,
    file: RefCell<Rc<I::File>>,
    /// Files whose start-up copy (parts.rs rule 6) failed; while non-empty the AOF is
    /// latched failed and the writer's retry copies them first.
    boot_copies: RefCell<Vec<PathBuf>>,
    /// A new incr created by `prepare_incr`, not yet switched to.
    prepared: RefCell<Option<NextIncr<I::File>>>,
    /// The incr a switch is moving to (set by `switch_to_prepared`, taken by the writer).
    switching: RefCell<Option<NextIncr<I::File>>>,
    st: RefCell<State>,
    /// Wakes the writer: records were buffered, a sync was requested, handles dropped.
    work: Event,
    /// Wakes waiters: written/durable LSN advanced, the latch was set or cleared.
    progress: Event,
    /// The database the log is in (SELECT records, `select.rs`).
    selected_db: select::SelectedDb,
}

impl<I: Disk> Drop for Shared<I> {
    fn drop(&mut self) {
        self.work.notify(usize::MAX);
    }
}

/// A new incr file with its header written and fsynced.
pub(crate) struct NextIncr<F> {
    file: Rc<F>,
    path: PathBuf,
    salt: u32,
}

/// Mutable state. Byte offsets are file offsets.
struct State {
    /// During a switch: frames for the OLD file appended before the switch and not yet
    /// handed to the writer (LSNs up to `old_last_lsn`). `buf` then holds new-file frames.
    old_buf: Vec<u8>,
    /// The last LSN that belongs to the old file during a switch.
    old_last_lsn: Lsn,
    /// A switch is in progress (`switching` is set).
    switch_pending: bool,
    next_lsn: Lsn,
    /// Encoded frames appended but not yet handed to the writer: LSNs
    /// `handed_lsn + 1 ..= next_lsn - 1`.
    buf: Vec<u8>,
    /// Bytes handed to `write_at` and not finished yet.
    inflight_bytes: u64,
    /// The file content up to here is settled: fsynced (always/everysec), or written
    /// (`no`). A retry after a failure truncates back to it.
    base_len: u64,
    /// Frames handed to `write_at` after `base_len`, kept to be rewritten after a failure.
    retained: Vec<u8>,
    /// Last LSN handed to `write_at` (the last record in `retained` or before).
    handed_lsn: Lsn,
    /// End of the last fully written frame.
    write_pos: u64,
    /// Last LSN whose frame was fully written.
    written_lsn: Lsn,
    /// Last LSN covered by a successful fsync.
    durable_lsn: Lsn,
    /// Under `no`, after a failed fsync: data after this LSN may be lost and is never
    /// reported durable (it was not kept in memory to be rewritten).
    durable_cap_lsn: Option<Lsn>,
    /// When the oldest written-but-unsynced data was written (everysec deadline base).
    unsynced_since: Option<Duration>,
    failed: Option<String>,
    last_error: Option<String>,
    fsyncs: u64,
    delayed_fsyncs: u64,
    sync_requested: bool,
}

impl<I: Clock + Disk + Spawn + Clone + 'static> Aof<I> {
    /// Recovers the shard's log (calling `replay(lsn, args)` for each valid record, in
    /// order; a replay `Err` aborts start-up), truncates a torn tail, fsyncs, opens for
    /// append and spawns the writer task via `io.spawn_local`. Recovery rules: see
    /// `recovery.rs` and docs/formats.md.
    pub async fn open(
        io: I,
        opts: AofOptions,
        replay: &mut dyn FnMut(Lsn, Vec<Bytes>) -> Result<(), String>,
    ) -> Result<(Aof<I>, RecoveryReport), AofError> {
        if opts.shard_count == 0 || opts.shard_id >= opts.shard_count {
            let detail = format!(
                "shard id {} with shard count {}",
                opts.shard_id, opts.shard_count
            );
            return Err(AofError::InvalidOptions { detail });
        }
        let path = opts.path();
        io.create_dir_all(&opts.dir)
            .await
            .map_err(|e| AofError::io(&opts.dir, "create_dir_all", e))?;
        let file = io
            .open(&path, OpenMode::CreateReadWrite)
            .await
            .map_err(|e| AofError::io(&path, "open", e))?;
        let fresh_salt = recovery::fresh_salt(&io, opts.shard_id);
        let selected = select::SelectedDb::default();
        let mut observed = |lsn: Lsn, args: Vec<Bytes>| {
            selected.observe(&args);
            replay(lsn, args)
        };
        let rec = recovery::recover(&file, &path, &opts, None, fresh_salt, &mut observed).await?;
        recovery::truncate_torn(&file, &path, &rec).await?;
        if rec.created {
            // Make the new file's name durable, and the AOF dir's own entry in case
            // create_dir_all just made it.
            io.sync_dir(&opts.dir)
                .await
                .map_err(|e| AofError::io(&opts.dir, "sync_dir", e))?;
            if let Some(parent) = opts.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                io.sync_dir(parent)
                    .await
                    .map_err(|e| AofError::io(parent, "sync_dir", e))?;
            }
        }
        let report = RecoveryReport {
            records: rec.records,
            last_lsn: rec.last_lsn,
            bytes: rec.end_offset,
            truncated_bytes: rec.truncated_bytes,
        };
        let aof = Aof::start(io, opts, path, file, rec.header.salt, &report);
        aof.shared.selected_db.restore(&selected);
        Ok((aof, report))
    }

    /// Opens a shard's multi-part log as the manifest lists it (`parts`): loads the base,
    /// then replays every incr in order, LSNs continuing across files; appends go to the
    /// last incr. See `parts.rs` for the rules (missing file, torn tails, LSN floor).
    pub async fn open_parts(
        io: I,
        opts: AofOptions,
        parts: &ShardParts,
        replay: &mut dyn FnMut(Lsn, Vec<Bytes>) -> Result<(), String>,
    ) -> Result<(Aof<I>, RecoveryReport), AofError> {
        let selected = select::SelectedDb::default();
        let mut observed = |lsn: Lsn, args: Vec<Bytes>| {
            selected.observe(&args);
            replay(lsn, args)
        };
        let opened = parts::recover_parts(&io, &opts, parts, &mut observed).await?;
        let aof = Aof::start(
            io,
            opts,
            opened.path,
            opened.file,
            opened.salt,
            &opened.report,
        );
        aof.shared.selected_db.restore(&selected);
        if let Some((paths, cause)) = opened.copy_pending {
            // Parts rule 6 failed: no write is accepted until the writer's retry copied
            // these files (`writer::retry`).
            let mut st = aof.shared.st.borrow_mut();
            st.last_error = Some(format!("start-up copy: {cause}"));
            st.failed = Some(cause);
            drop(st);
            *aof.shared.boot_copies.borrow_mut() = paths;
        }
        Ok((aof, opened.report))
    }

    /// Builds the handle after recovery and spawns the writer task.
    fn start(
        io: I,
        opts: AofOptions,
        path: PathBuf,
        file: I::File,
        salt: u32,
        report: &RecoveryReport,
    ) -> Aof<I> {
        // Predecessor bug 3 (test-only defect): reuse the last recovered LSN.
        let reuse = opts.lsn_reuse_defect && report.last_lsn > 0;
        let next_lsn = if reuse {
            report.last_lsn
        } else {
            report.last_lsn + 1
        };
        let state = State {
            old_buf: Vec::new(),
            old_last_lsn: 0,
            switch_pending: false,
            next_lsn,
            buf: Vec::new(),
            inflight_bytes: 0,
            base_len: report.bytes,
            retained: Vec::new(),
            handed_lsn: next_lsn - 1,
            write_pos: report.bytes,
            written_lsn: next_lsn - 1,
            durable_lsn: next_lsn - 1,
            durable_cap_lsn: None,
            unsynced_since: None,
            failed: None,
            last_error: None,
            fsyncs: 0,
            delayed_fsyncs: 0,
            sync_requested: false,
        };
        let shared = Rc::new(Shared {
            io: io.clone(),
            path: RefCell::new(path),
            opts,
            salt: Cell::new(salt),
            file: RefCell::new(Rc::new(file)),
            boot_copies: RefCell::new(Vec::new()),
            prepared: RefCell::new(None),
            switching: RefCell::new(None),
            st: RefCell::new(state),
            work: Event::new(),
            progress: Event::new(),
            selected_db: select::SelectedDb::default(),
        });
        io.spawn_local(writer::run(Rc::downgrade(&shared)));
        Aof { shared }
    }

    /// Rewrite step (a): creates the new incr `name` in the AOF dir, writes its header and
    /// fsyncs it, and keeps it for [`Aof::switch_to_prepared`]. Appends still go to the
    /// current file. The caller makes the name durable (manifest commit step 1).
    pub async fn prepare_incr(&self, name: &str) -> Result<(), AofError> {
        let sh = &self.shared;
        if sh.prepared.borrow().is_some() || sh.switching.borrow().is_some() {
            let detail = "a new incr is already prepared or being switched to".to_string();
            return Err(AofError::RewriteState { detail });
        }
        let next = parts::create_incr(&sh.io, &sh.opts, name).await?;
        *sh.prepared.borrow_mut() = Some(next);
        Ok(())
    }

    /// Drops a prepared incr (aborted rewrite before the switch). Its file stays on disk
    /// (the manifest may name it); the caller removes it only if no manifest does.
    pub fn discard_prepared(&self) {
        self.shared.prepared.borrow_mut().take();
    }

    /// Rewrite step (b), synchronous — call it in the same step as the keyspace snapshot,
    /// with no `.await` in between: every record appended so far belongs to the old files
    /// (LSNs up to the returned LSN, which the snapshot covers), every later one to the
    /// prepared incr. The writer finishes the old file (write + fsync) before it writes a
    /// byte to the new one, so the LSNs on disk never have a hole.
    pub fn switch_to_prepared(&self) -> Result<Lsn, AofError> {
        let sh = &self.shared;
        let Some(next) = sh.prepared.borrow_mut().take() else {
            let detail = "switch without a prepared incr".to_string();
            return Err(AofError::RewriteState { detail });
        };
        let mut st = sh.st.borrow_mut();
        assert!(
            !st.switch_pending,
            "prepare_incr refuses while a switch runs"
        );
        st.old_buf = std::mem::take(&mut st.buf);
        st.old_last_lsn = st.next_lsn - 1;
        st.switch_pending = true;
        sh.salt.set(next.salt);
        sh.selected_db.on_switch();
        *sh.switching.borrow_mut() = Some(next);
        let lsn = st.old_last_lsn;
        drop(st);
        sh.work.notify(1);
        Ok(lsn)
    }

    /// The options this AOF was opened with.
    pub fn options(&self) -> &AofOptions {
        &self.shared.opts
    }

    /// True while a switch has not completed (the old file is still being finished).
    pub fn switch_pending(&self) -> bool {
        self.shared.st.borrow().switch_pending
    }

    /// The path of the file appends go to (after a switch completes: the new incr).
    pub fn current_path(&self) -> PathBuf {
        self.shared.path.borrow().clone()
    }

    /// Encodes one record (`args[0]` is the command name) into the in-memory buffer and
    /// returns its LSN. Synchronous; the writer task writes it. `Err(Failed)` while the
    /// AOF is latched failed: the caller must not apply the command (reply MISCONF).
    pub fn append(&self, args: &[Bytes]) -> Result<Lsn, AofError> {
        let sh = &self.shared;
        let mut st = sh.st.borrow_mut();
        if let Some(cause) = &st.failed {
            return Err(AofError::Failed {
                cause: cause.clone(),
            });
        }
        if args.is_empty() {
            return Err(AofError::EmptyRecord);
        }
        let lsn = st.next_lsn;
        let durable = st.durable_lsn;
        format::encode_frame(&mut st.buf, sh.salt.get(), lsn, durable, args)
            .map_err(|bytes| AofError::RecordTooLarge { bytes })?;
        st.next_lsn += 1;
        drop(st);
        sh.work.notify(1);
        Ok(lsn)
    }

    /// `Ok` if `append` would currently accept a record (not latched failed).
    pub fn writable(&self) -> Result<(), AofError> {
        match &self.shared.st.borrow().failed {
            Some(cause) => Err(AofError::Failed {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Waits until record `lsn` is acknowledged: under `always` until an fsync covering it
    /// succeeded; under `everysec`/`no` until it was written (`write_at` returned). Bounded
    /// by `fsync_timeout` → `Err(Timeout)`. `Err(Failed)` if the AOF latched failed before
    /// the record was covered: the record is uncertain (it may still become durable when
    /// the writer's retry succeeds). With `ack_before_fsync_defect` under `always` it
    /// returns at once (test-only defect).
    pub async fn wait_ack(&self, lsn: Lsn) -> Result<(), AofError> {
        let sh = &self.shared;
        if sh.opts.ack_before_fsync_defect && sh.opts.fsync == FsyncPolicy::Always {
            return Ok(());
        }
        let always = sh.opts.fsync == FsyncPolicy::Always;
        let bounded = !sh.opts.unbounded_ack_wait_defect;
        self.wait_until_maybe_bounded(bounded, |st| {
            let covered = if always {
                st.durable_lsn
            } else {
                st.written_lsn
            };
            if lsn <= covered {
                Some(Ok(()))
            } else {
                st.failed.as_ref().map(|cause| {
                    Err(AofError::Failed {
                        cause: cause.clone(),
                    })
                })
            }
        })
        .await
    }

    /// Backpressure: waits (bounded by `fsync_timeout` → `Err(Timeout)`) while more than
    /// `buffer_bytes_max` bytes are buffered or being written. `Err(Failed)` when latched.
    pub async fn wait_room(&self) -> Result<(), AofError> {
        let max = self.shared.opts.buffer_bytes_max as u64;
        self.wait_until(|st| {
            if let Some(cause) = &st.failed {
                Some(Err(AofError::Failed {
                    cause: cause.clone(),
                }))
            } else if buffered_bytes(st) <= max {
                Some(Ok(()))
            } else {
                None
            }
        })
        .await
    }

    /// The last LSN handed out by `append` (0 if none, ever).
    pub fn last_lsn(&self) -> Lsn {
        self.shared.st.borrow().next_lsn - 1
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AofStats {
        let st = self.shared.st.borrow();
        AofStats {
            last_write_ok: st.failed.is_none(),
            last_error: st.last_error.clone(),
            current_size_bytes: st.write_pos,
            buffer_len_bytes: buffered_bytes(&st),
            durable_lsn: st.durable_lsn,
            last_lsn: st.next_lsn - 1,
            fsyncs: st.fsyncs,
            delayed_fsyncs: st.delayed_fsyncs,
        }
    }

    /// For graceful shutdown (any policy): writes everything appended so far and fsyncs
    /// it. Bounded by `fsync_timeout`. Afterwards the handles may simply be dropped; the
    /// writer task exits when the last handle is gone.
    pub async fn flush_and_sync(&self) -> Result<(), AofError> {
        let sh = &self.shared;
        let target = self.last_lsn();
        sh.st.borrow_mut().sync_requested = true;
        sh.work.notify(1);
        self.wait_until(|st| {
            if st.durable_lsn >= target {
                Some(Ok(()))
            } else if let Some(cap) = st.durable_cap_lsn.filter(|cap| *cap < target) {
                let cause =
                    format!("an earlier fsync failed; records after LSN {cap} may not be durable");
                Some(Err(AofError::Failed { cause }))
            } else {
                st.failed.as_ref().map(|cause| {
                    Err(AofError::Failed {
                        cause: cause.clone(),
                    })
                })
            }
        })
        .await
    }

    /// Waits until `check` returns `Some`, re-checking whenever the writer reports
    /// progress; `Err(Timeout)` after `fsync_timeout`.
    async fn wait_until(
        &self,
        check: impl Fn(&State) -> Option<Result<(), AofError>>,
    ) -> Result<(), AofError> {
        self.wait_until_maybe_bounded(true, check).await
    }

    /// [`Aof::wait_until`]; unbounded only under the test-only defect of predecessor bug 4.
    async fn wait_until_maybe_bounded(
        &self,
        bounded: bool,
        check: impl Fn(&State) -> Option<Result<(), AofError>>,
    ) -> Result<(), AofError> {
        let sh = &self.shared;
        let wait = async {
            loop {
                if let Some(done) = check(&sh.st.borrow()) {
                    return done;
                }
                let listener = sh.progress.listen();
                if let Some(done) = check(&sh.st.borrow()) {
                    return done;
                }
                listener.await;
            }
        };
        if !bounded {
            return wait.await;
        }
        with_timeout(&sh.io, sh.opts.fsync_timeout, wait)
            .await
            .unwrap_or(Err(AofError::Timeout))
    }
}

fn buffered_bytes(st: &State) -> u64 {
    st.buf.len() as u64 + st.old_buf.len() as u64 + st.inflight_bytes
}
