//! The multi-part log of one shard: recovery of base + incrs as the manifest lists them,
//! creation of a new incr, and writing a new base from a keyspace snapshot.
//!
//! Recovery rules (docs/formats.md, "Multi-part recovery"):
//! 1. every listed file must exist (`AofError::MissingFile`): an incr without its base, or
//!    a lost incr, refuses start-up rather than silently dropping writes;
//! 2. the base (if any) is loaded whole; any defect is corruption (it was fsynced before
//!    the manifest named it); its header's `base_lsn` S is the LSN it covers;
//! 3. each incr is replayed in order, its first record carrying the previous file's last
//!    LSN + 1 (the base's S, or the header's `base_lsn` for the first incr of generation 1);
//! 4. a torn tail is accepted only in the last incr that holds records: a torn tail in an
//!    earlier incr followed by records in a later one is corruption (the writer fsyncs a
//!    file completely before it writes a byte to the next one);
//! 5. torn tails are truncated and every incr fsynced; the shard's last LSN must reach the
//!    LSN the manifest recorded as durable, else files were lost → `Corrupt`;
//! 6. the incr files from the last one that holds records to the end (normally just the
//!    last incr) are copied to fresh inodes: `<name>.tmp` written, fsynced, renamed over
//!    `<name>`, then the directory is fsynced — before any append. An fsync that failed
//!    before a restart left frames in the page cache that are not on the platter (Linux
//!    marks the pages clean; a later fsync of the same file does not write them back),
//!    and recovery cannot tell them from durable ones. The copy's pages are new dirty
//!    pages, so its fsync really writes every recovered byte; nothing acknowledged after
//!    a restart can sit after a frame that might not be durable (limitation C,
//!    docs/durability.md). The old inode is never overwritten in place (a torn in-place
//!    rewrite could damage durable sectors); a crash before the rename leaves it as it
//!    was, after it the copy. A leftover `<name>.tmp` is an orphan.
//!
//! What can fail here: IO errors, the refusals above, and base writing errors (returned
//! to the rewrite, which aborts; the old generation stays authoritative).

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::format::{
    encode_frame, FileHeader, FILE_FLAG_BASE, FILE_HEADER_LEN_BYTES, FORMAT_VERSION,
};
use super::manifest::ShardParts;
use super::recovery::{self, Recovered};
use super::{AofError, AofOptions, Lsn, NextIncr, RecoveryReport};
use crate::io::{Clock, Disk, File, OpenMode};
use crate::keyspace::Db;

/// A base file is written in chunks of about this many bytes, yielding between chunks so
/// the shard keeps serving while its base is written.
pub const BASE_WRITE_CHUNK_BYTES: usize = 1024 * 1024;
/// The start-up copy of rule 6 reads and writes in chunks of at most this many bytes.
pub const BOOT_COPY_CHUNK_BYTES: usize = 1024 * 1024;
/// Reads of one chunk of the start-up copy before two in a row must have agreed.
pub const BOOT_COPY_READ_ATTEMPTS_MAX: usize = 8;
/// Suffix of the temporary name a start-up copy is written under before its rename.
pub const BOOT_COPY_TEMP_SUFFIX: &str = ".tmp";

/// The shard's files after recovery: the last incr, open for appends.
pub(crate) struct Opened<F> {
    pub path: PathBuf,
    pub file: F,
    pub salt: u32,
    pub report: RecoveryReport,
    /// Rule 6 failed (e.g. ENOSPC): the files still to copy and the error text. The AOF
    /// starts latched failed; the writer's retry copies them before the latch clears.
    pub copy_pending: Option<(Vec<PathBuf>, String)>,
}

async fn open_listed<D: Disk>(io: &D, path: &Path, mode: OpenMode) -> Result<D::File, AofError> {
    match io.open(path, mode).await {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AofError::MissingFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(e) => Err(AofError::io(path, "open", e)),
    }
}

/// Rules 1-5 of the module docs.
pub(crate) async fn recover_parts<I: Clock + Disk>(
    io: &I,
    opts: &AofOptions,
    parts: &ShardParts,
    replay: &mut dyn FnMut(Lsn, Vec<Bytes>) -> Result<(), String>,
) -> Result<Opened<I::File>, AofError> {
    if opts.shard_count == 0 || opts.shard_id >= opts.shard_count || parts.incrs.is_empty() {
        let detail = format!(
            "shard {} of {} with {} incr files",
            opts.shard_id,
            opts.shard_count,
            parts.incrs.len()
        );
        return Err(AofError::InvalidOptions { detail });
    }
    let mut prev: Option<Lsn> = None;
    let mut records = 0u64;
    if let Some(base) = &parts.base {
        let path = opts.dir.join(base);
        let file = open_listed(io, &path, OpenMode::Read).await?;
        let (lsn, n) = recovery::load_base(&file, &path, opts, replay).await?;
        prev = Some(lsn);
        records += n;
    }
    let mut opened: Vec<(PathBuf, I::File, Recovered)> = Vec::with_capacity(parts.incrs.len());
    for name in &parts.incrs {
        let path = opts.dir.join(name);
        let file = open_listed(io, &path, OpenMode::ReadWrite).await?;
        let salt = recovery::fresh_salt(io, opts.shard_id);
        let rec = recovery::recover(&file, &path, opts, prev, salt, replay).await?;
        if rec.records > 0 {
            if let Some((torn_path, torn)) = opened
                .iter()
                .find_map(|(p, _, r)| r.torn_reason.as_ref().map(|t| (p, t)))
            {
                return Err(AofError::Corrupt {
                    path: torn_path.clone(),
                    offset: 0,
                    detail: format!(
                        "{torn}, but the later incr {} holds records: a file is fsynced \
                         completely before the next one is written, so this is corruption",
                        path.display()
                    ),
                });
            }
        }
        records += rec.records;
        prev = Some(rec.last_lsn);
        opened.push((path, file, rec));
    }
    for (path, file, rec) in &opened {
        recovery::truncate_torn(file, path, rec).await?;
    }
    // Rule 6: the files appends will follow are copied to fresh inodes and fsynced
    // (their page-cache copy may hold frames whose fsync failed before a restart).
    let first_copied = opened
        .iter()
        .rposition(|(_, _, r)| r.records > 0)
        .unwrap_or(opened.len() - 1);
    let mut copy_failure = None;
    for (path, file, rec) in &mut opened[first_copied..] {
        match copy_durably(io, path, file, rec.end_offset).await {
            Ok(copy) => *file = copy,
            Err(error) => {
                copy_failure = Some(error);
                break;
            }
        }
    }
    if copy_failure.is_none() {
        if let Err(e) = io.sync_dir(&opts.dir).await {
            copy_failure = Some(AofError::io(&opts.dir, "sync_dir", e));
        }
    }
    let copy_pending = copy_failure.map(|error| {
        tracing::warn!(%error, "AOF start-up copy failed: refusing writes until it succeeds");
        let paths = opened[first_copied..].iter().map(|(p, _, _)| p.clone());
        let cause = match &error {
            AofError::Io { detail, .. } => detail.clone(),
            other => other.to_string(),
        };
        (paths.collect(), cause)
    });
    let truncated_bytes: u64 = opened
        .iter()
        .filter(|(_, _, r)| r.torn_reason.is_some())
        .map(|(_, _, r)| r.truncated_bytes)
        .sum();
    let (path, file, rec) = opened.pop().expect("at least one incr");
    if rec.last_lsn < parts.lsn {
        return Err(AofError::Corrupt {
            path,
            offset: rec.end_offset,
            detail: format!(
                "the shard's log ends at LSN {} but the manifest recorded LSN {} as durable: \
                 fsynced data is missing",
                rec.last_lsn, parts.lsn
            ),
        });
    }
    Ok(Opened {
        path,
        file,
        salt: rec.header.salt,
        report: RecoveryReport {
            records,
            last_lsn: rec.last_lsn,
            bytes: rec.end_offset,
            truncated_bytes,
        },
        copy_pending,
    })
}

/// The writer's retry of a failed rule-6 copy: copies each of `paths` (as they are now)
/// and fsyncs the directory. Returns the copy of `current` (the file appends go to).
pub(crate) async fn copy_again<I: Disk>(
    io: &I,
    dir: &Path,
    paths: &[PathBuf],
    current: &Path,
) -> Result<Option<I::File>, AofError> {
    let mut current_copy = None;
    for path in paths {
        let file = open_listed(io, path, OpenMode::Read).await?;
        let len = file.len().await.map_err(|e| AofError::io(path, "len", e))?;
        let copy = copy_durably(io, path, &file, len).await?;
        if path == current {
            current_copy = Some(copy);
        }
    }
    io.sync_dir(dir)
        .await
        .map_err(|e| AofError::io(dir, "sync_dir", e))?;
    Ok(current_copy)
}

/// The temporary name of `path`'s start-up copy (rule 6): `<name>.tmp`. A leftover is an
/// orphan the next start-up removes (`server::persistence`).
pub fn boot_copy_temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(BOOT_COPY_TEMP_SUFFIX);
    PathBuf::from(name)
}

/// Rule 6: copies the first `len` bytes of `file` (the recovered, truncated log at
/// `path`) to `<path>.tmp`, fsyncs the copy and renames it over `path`; the caller
/// fsyncs the directory. Returns the copy, open for appends. A failure leaves `path`
/// untouched (the temp file is removed, best effort) and refuses this start-up.
async fn copy_durably<I: Disk>(
    io: &I,
    path: &Path,
    file: &I::File,
    len: u64,
) -> Result<I::File, AofError> {
    let tmp = boot_copy_temp_path(path);
    let copied = async {
        let out = io
            .open(&tmp, OpenMode::CreateTruncate)
            .await
            .map_err(|e| AofError::io(&tmp, "create", e))?;
        let mut pos = 0u64;
        while pos < len {
            let want = usize::try_from(len - pos)
                .unwrap_or(usize::MAX)
                .min(BOOT_COPY_CHUNK_BYTES);
            let buf = read_stable(file, path, want, pos).await?;
            if buf.is_empty() {
                let e = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("file ends before the recovered length {len}"),
                );
                return Err(AofError::io(path, "read", e));
            }
            let n = buf.len() as u64;
            write_all(&out, &tmp, buf, pos).await?;
            pos += n;
        }
        out.sync_data()
            .await
            .map_err(|e| AofError::io(&tmp, "sync_data", e))?;
        io.rename(&tmp, path)
            .await
            .map_err(|e| AofError::io(&tmp, "rename", e))?;
        Ok(out)
    }
    .await;
    if copied.is_err() {
        let _ = io.remove_file(&tmp).await;
    }
    copied
}

/// Reads up to `want` bytes at `pos` until two reads in a row agree, at most
/// [`BOOT_COPY_READ_ATTEMPTS_MAX`] times: a transient read error (a bit flip on read) must
/// not be copied into the fsynced copy, where it would become real corruption. Recovery
/// already checked these bytes' CRCs, but through reads of its own.
async fn read_stable<F: File>(
    file: &F,
    path: &Path,
    want: usize,
    pos: u64,
) -> Result<Vec<u8>, AofError> {
    let mut previous: Option<Vec<u8>> = None;
    for _ in 0..BOOT_COPY_READ_ATTEMPTS_MAX {
        let (res, buf) = file.read_at(Vec::with_capacity(want), pos).await;
        res.map_err(|e| AofError::io(path, "read", e))?;
        if previous.as_ref() == Some(&buf) {
            return Ok(buf);
        }
        previous = Some(buf);
    }
    let e = std::io::Error::other(format!(
        "{BOOT_COPY_READ_ATTEMPTS_MAX} reads at offset {pos} never agreed twice in a row"
    ));
    Err(AofError::io(path, "read", e))
}

/// Creates `dir/name` (truncating a leftover), writes an incr header and fsyncs it.
pub(crate) async fn create_incr<I: Clock + Disk>(
    io: &I,
    opts: &AofOptions,
    name: &str,
) -> Result<NextIncr<I::File>, AofError> {
    let path = opts.dir.join(name);
    let file = io
        .open(&path, OpenMode::CreateTruncate)
        .await
        .map_err(|e| AofError::io(&path, "create", e))?;
    let salt = recovery::fresh_salt(io, opts.shard_id) ^ 0x5bd1_e995;
    let header = FileHeader {
        version: FORMAT_VERSION,
        shard_id: opts.shard_id,
        shard_count: opts.shard_count,
        flags: 0,
        base_lsn: 0,
        salt,
    };
    write_all(&file, &path, header.encode().to_vec(), 0).await?;
    file.sync_data()
        .await
        .map_err(|e| AofError::io(&path, "sync_data", e))?;
    Ok(NextIncr {
        file: std::rc::Rc::new(file),
        path,
        salt,
    })
}

async fn write_all<F: File>(
    file: &F,
    path: &Path,
    bytes: Vec<u8>,
    pos: u64,
) -> Result<(), AofError> {
    let (result, _) = crate::io::write_all_at(file, bytes, pos).await;
    result.map_err(|e| AofError::io(path, "write_at", e))
}

/// What [`write_base`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseWritten {
    /// The base's file name.
    pub name: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Reconstruction records written.
    pub records: u64,
}

/// Rewrite step (c): writes `snapshot` (the shard's databases, index = database number,
/// at LSN `snapshot_lsn`; a `SELECT n` record precedes each non-empty database but 0) as
/// the base file `dir/name` — header with [`FILE_FLAG_BASE`] and `base_lsn =
/// snapshot_lsn`, then one frame per reconstruction command
/// (`crate::cmd::rewrite::commands_for`), numbered 1..n — yielding every
/// [`BASE_WRITE_CHUNK_BYTES`], then fsyncs it. `now_ms` lets keys already expired be
/// skipped. `Err` (text) aborts the rewrite; the caller removes the partial file.
pub async fn write_base<I: Clock + Disk>(
    io: &I,
    opts: &AofOptions,
    name: &str,
    snapshot: &[Db],
    snapshot_lsn: Lsn,
    now_ms: u64,
) -> Result<BaseWritten, String> {
    let path = opts.dir.join(name);
    let text = |e: AofError| e.to_string();
    let file = io
        .open(&path, OpenMode::CreateTruncate)
        .await
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    let salt = recovery::fresh_salt(io, opts.shard_id) ^ 0x27d4_eb2f;
    let header = FileHeader {
        version: FORMAT_VERSION,
        shard_id: opts.shard_id,
        shard_count: opts.shard_count,
        flags: FILE_FLAG_BASE,
        base_lsn: snapshot_lsn,
        salt,
    };
    let mut pos = 0u64;
    let mut chunk = header.encode().to_vec();
    let mut records = 0u64;
    // Databases in index order; a SELECT record before each non-empty one other than the
    // database the log is in (replay starts at 0; src/persist/select.rs).
    let mut selected = 0usize;
    let keys = snapshot
        .iter()
        .enumerate()
        .flat_map(|(index, db)| db.iter().map(move |(key, entry)| (index, key, entry)));
    for (index, key, entry) in keys {
        if index != selected {
            selected = index;
            records += 1;
            let select = super::select_record(index);
            encode_frame(&mut chunk, salt, records, 0, &select)
                .map_err(|bytes| format!("SELECT record of {bytes} bytes"))?;
        }
        for command in crate::cmd::rewrite::commands_for(key, entry, now_ms)? {
            records += 1;
            encode_frame(&mut chunk, salt, records, 0, &command).map_err(|bytes| {
                format!("key {key:?}: record of {bytes} bytes is over the limit")
            })?;
        }
        if chunk.len() >= BASE_WRITE_CHUNK_BYTES {
            let len = chunk.len() as u64;
            write_all(&file, &path, std::mem::take(&mut chunk), pos)
                .await
                .map_err(text)?;
            pos += len;
            futures_lite::future::yield_now().await;
        }
    }
    if selected != 0 {
        // End in database 0, so the incr after the base starts where a replay expects.
        records += 1;
        encode_frame(&mut chunk, salt, records, 0, &super::select_record(0))
            .map_err(|bytes| format!("SELECT record of {bytes} bytes"))?;
    }
    let len = chunk.len() as u64;
    if len > 0 {
        write_all(&file, &path, chunk, pos).await.map_err(text)?;
        pos += len;
    }
    file.sync_data()
        .await
        .map_err(|e| format!("fsync {}: {e}", path.display()))?;
    debug_assert!(pos >= FILE_HEADER_LEN_BYTES as u64);
    Ok(BaseWritten {
        name: name.to_string(),
        size_bytes: pos,
        records,
    })
}
