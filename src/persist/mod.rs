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
//!   aof.wait_ack(lsn).await -> Result<(), AofError>   Always: covering fsync done;
//!                                                     Everysec/No: record written (write(2))
//!   aof.wait_room().await -> Result<(), AofError>     bounded backpressure before a write
//!   aof.last_lsn() -> Lsn                             last LSN handed out by append
//!   aof.stats() -> AofStats                           for INFO persistence
//!   aof.flush_and_sync().await                        graceful shutdown: write + fsync all
//! ```

mod format;
pub mod rdb;
mod recovery;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_writer;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use event_listener::Event;

use crate::io::{with_timeout, Clock, Disk, OpenMode, Spawn};
use crate::resp::Frame;
use crate::server::config::{Config, FsyncPolicy};

pub use format::{FILE_HEADER_LEN_BYTES, FRAME_HEADER_LEN_BYTES, RECORD_PAYLOAD_MAX_BYTES};

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
    path: PathBuf,
    opts: AofOptions,
    salt: u32,
    file: I::File,
    st: RefCell<State>,
    /// Wakes the writer: records were buffered, a sync was requested, handles dropped.
    work: Event,
    /// Wakes waiters: written/durable LSN advanced, the latch was set or cleared.
    progress: Event,
}

impl<I: Disk> Drop for Shared<I> {
    fn drop(&mut self) {
        self.work.notify(usize::MAX);
    }
}

/// Mutable state. Byte offsets are file offsets.
struct State {
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
        let rec = recovery::recover(&file, &path, &opts, fresh_salt, replay).await?;
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
        let state = State {
            next_lsn: rec.last_lsn + 1,
            buf: Vec::new(),
            inflight_bytes: 0,
            base_len: rec.end_offset,
            retained: Vec::new(),
            handed_lsn: rec.last_lsn,
            write_pos: rec.end_offset,
            written_lsn: rec.last_lsn,
            durable_lsn: rec.last_lsn,
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
            path,
            opts,
            salt: rec.header.salt,
            file,
            st: RefCell::new(state),
            work: Event::new(),
            progress: Event::new(),
        });
        io.spawn_local(writer::run(Rc::downgrade(&shared)));
        Ok((Aof { shared }, report))
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
        format::encode_frame(&mut st.buf, sh.salt, lsn, durable, args)
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
        self.wait_until(|st| {
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
        with_timeout(&sh.io, sh.opts.fsync_timeout, wait)
            .await
            .unwrap_or(Err(AofError::Timeout))
    }
}

fn buffered_bytes(st: &State) -> u64 {
    st.buf.len() as u64 + st.inflight_bytes
}
