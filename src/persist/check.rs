//! `tidemark check-aof DIR [--fix]`: validates an AOF directory offline — the manifest
//! (its CRC, file names, every listed file present), every base and incr header and every
//! record CRC and LSN, in replay order — and prints per file `OK` or the first bad offset
//! and why. With `--fix` it truncates a torn tail (bytes after the last valid record that
//! were never fsynced), but only in the last incr of a shard that holds records — never
//! corruption in the middle of a log, never a base. It asks nothing (it is a tool).
//!
//! Verdicts per file: `OK`, `TORN` (a torn tail: start-up would truncate it; `--fix` does
//! it now), `BAD` (corruption or a missing file: start-up refuses). The exit status is 0
//! when everything is `OK` (or was fixed), 1 otherwise.
//!
//! What can fail here: IO errors (reported as `BAD` lines); nothing panics on bad input.

use std::path::Path;
use std::time::Duration;

use super::format::FILE_HEADER_LEN_BYTES;
use super::manifest;
use super::recovery;
use super::{AofError, AofOptions, Lsn, BUFFER_BYTES_MAX_DEFAULT};
use crate::io::{Clock, Disk, File, OpenMode};
use crate::server::config::FsyncPolicy;

/// The outcome of [`check_aof`]: human-readable lines and the verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// One line per checked item (manifest, then each file in replay order).
    pub lines: Vec<String>,
    /// True if everything is valid (after `--fix`, if given).
    pub ok: bool,
}

/// Checks `dir` (the AOF directory, e.g. `data/appendonlydir`); see the module docs.
pub async fn check_aof<D: Disk + Clock>(disk: &D, dir: &Path, fix: bool) -> CheckReport {
    let mut report = CheckReport {
        lines: Vec::new(),
        ok: true,
    };
    let manifest = match manifest::load(disk, dir).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            report.ok = false;
            report.lines.push(format!(
                "{}: BAD: no manifest found",
                dir.join(manifest::MANIFEST_FILE_NAME).display()
            ));
            return report;
        }
        Err(detail) => {
            report.ok = false;
            report.lines.push(format!(
                "{}: BAD: {detail}",
                dir.join(manifest::MANIFEST_FILE_NAME).display()
            ));
            return report;
        }
    };
    report.lines.push(format!(
        "{}: OK (seq {}, {} shards)",
        dir.join(manifest::MANIFEST_FILE_NAME).display(),
        manifest.seq,
        manifest.shards.len()
    ));
    let shard_count = manifest.shards.len() as u16;
    for (id, parts) in manifest.shards.iter().enumerate() {
        let opts = AofOptions {
            dir: dir.to_path_buf(),
            shard_id: id as u16,
            shard_count,
            fsync: FsyncPolicy::Always,
            fsync_timeout: Duration::from_secs(60),
            buffer_bytes_max: BUFFER_BYTES_MAX_DEFAULT,
            ack_before_fsync_defect: false,
            lsn_reuse_defect: false,
            unbounded_ack_wait_defect: false,
            everysec_starved_defect: false,
            append_after_torn_write_defect: false,
        };
        check_shard(disk, &opts, parts, fix, &mut report).await;
    }
    report
}

async fn check_shard<D: Disk + Clock>(
    disk: &D,
    opts: &AofOptions,
    parts: &manifest::ShardParts,
    fix: bool,
    report: &mut CheckReport,
) {
    let mut noop = |_: Lsn, _: Vec<bytes::Bytes>| Ok(());
    let mut prev: Option<Lsn> = None;
    if let Some(base) = &parts.base {
        let path = opts.dir.join(base);
        let result = match disk.open(&path, OpenMode::Read).await {
            Ok(file) => recovery::load_base(&file, &path, opts, &mut noop).await,
            Err(e) => Err(AofError::MissingFile {
                path: path.clone(),
                detail: e.to_string(),
            }),
        };
        match result {
            Ok((lsn, records)) => {
                report.lines.push(format!(
                    "{}: OK (base, {records} records, covers LSN {lsn})",
                    path.display()
                ));
                prev = Some(lsn);
            }
            Err(e) => return bad(report, &path, &e),
        }
    }
    // A torn incr must be the last one holding records: remember it until a later file
    // proves otherwise.
    let mut torn: Option<(std::path::PathBuf, D::File, u64, u64, String)> = None;
    for name in &parts.incrs {
        let path = opts.dir.join(name);
        let mode = if fix {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        let file = match disk.open(&path, mode).await {
            Ok(file) => file,
            Err(e) => {
                return bad(
                    report,
                    &path,
                    &AofError::MissingFile {
                        path: path.clone(),
                        detail: e.to_string(),
                    },
                )
            }
        };
        // A file shorter than a header was created but never written: recovery would
        // write its header; a read-only check must not call it.
        match file.len().await {
            Ok(len) if len < FILE_HEADER_LEN_BYTES as u64 => {
                report.lines.push(format!(
                    "{}: OK (incr, empty: header not yet written)",
                    path.display()
                ));
                continue;
            }
            Ok(_) => {}
            Err(e) => return bad(report, &path, &AofError::io(&path, "len", e)),
        }
        let salt = recovery::fresh_salt(disk, opts.shard_id);
        let rec = match recovery::recover(&file, &path, opts, prev, salt, &mut noop).await {
            Ok(rec) => rec,
            Err(e) => return bad(report, &path, &e),
        };
        if rec.records > 0 {
            if let Some((torn_path, _, offset, _, why)) = torn.take() {
                report.ok = false;
                report.lines.push(format!(
                    "{}: BAD at offset {offset}: {why}, but a later incr holds records (corruption, not a torn tail)",
                    torn_path.display()
                ));
                return;
            }
        }
        prev = Some(rec.last_lsn);
        match &rec.torn_reason {
            None => report.lines.push(format!(
                "{}: OK (incr, {} records, last LSN {})",
                path.display(),
                rec.records,
                rec.last_lsn
            )),
            Some(why) => {
                torn = Some((
                    path.clone(),
                    file,
                    rec.end_offset,
                    rec.truncated_bytes,
                    why.clone(),
                ))
            }
        }
    }
    // The torn tail is in the last incr holding records: fixable.
    let Some((path, file, offset, bytes, why)) = torn else {
        return;
    };
    if !fix {
        report.ok = false;
        report.lines.push(format!(
            "{}: TORN at offset {offset}: {why}; {bytes} bytes were never fsynced (run with --fix to truncate them)",
            path.display()
        ));
        return;
    }
    match file.set_len(offset).await.and(file.sync_data().await) {
        Ok(()) => report.lines.push(format!(
            "{}: FIXED: truncated a torn tail of {bytes} bytes at offset {offset} ({why})",
            path.display()
        )),
        Err(e) => bad(report, &path, &AofError::io(&path, "truncate", e)),
    }
}

fn bad(report: &mut CheckReport, path: &Path, error: &AofError) {
    report.ok = false;
    let at = match error {
        AofError::Corrupt { offset, .. } => format!(" at offset {offset}"),
        _ => String::new(),
    };
    report
        .lines
        .push(format!("{}: BAD{at}: {error}", path.display()));
}
