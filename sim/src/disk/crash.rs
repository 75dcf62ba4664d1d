//! Machine crash (power loss) for SimDisk: what reaches the platter of everything that
//! was pending.
//!
//! For each inode, its pending operations are replayed over the durable bytes in order;
//! each write survives with `crash_write_survive_rate`, and a surviving write is torn with
//! `crash_torn_rate`. A torn write keeps a prefix, a suffix or a random subset of the
//! *sectors* it covers (sectors are aligned to absolute file offsets, `sector_bytes`
//! wide); the other sectors read as the old data, as zeros, or as garbage. Garbage differs
//! from the written byte at every position, so a torn sector never passes for a written
//! one. With zeros or garbage an appending write extends the file even where its data did
//! not land ("appended ranges may read as zeros or garbage"); and with
//! `crash_append_fill_rate` a *lost* write that extended the file still extends it, the
//! range reading as zeros or garbage (the size reached the platter, the data did not).
//! Each pending `set_len`
//! applies with `crash_set_len_rate`; each unsynced directory operation applies with
//! `crash_dir_op_rate`, in order. Entries whose directory did not survive vanish, and so
//! do inodes no durable name points at.
//!
//! What can fail here: nothing returns an error; the outcome is described by
//! [`CrashReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::Rng;

use super::{apply_op, DiskState, Entry, Inode, PendingOp};
use crate::faults::DiskFaults;

/// What a machine crash did, for traces and test assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Pending writes that reached the platter whole.
    pub writes_kept: usize,
    /// Pending writes that reached it torn.
    pub writes_torn: usize,
    /// Pending writes lost entirely.
    pub writes_lost: usize,
    /// Pending `set_len` operations that applied / were lost.
    pub set_lens_applied: usize,
    /// Pending `set_len` operations that were lost.
    pub set_lens_lost: usize,
    /// Unsynced directory operations that applied.
    pub dir_ops_applied: usize,
    /// Unsynced directory operations that were lost.
    pub dir_ops_lost: usize,
    /// Files (paths) that exist after the crash, sorted.
    pub files_after: Vec<String>,
    /// Lost appending writes whose range still extended the file (zeros or garbage).
    pub appends_filled: usize,
    /// Files whose platter, after the crash, differs from what the server was told is
    /// durable (a misdirected write clobbered or dropped fsynced bytes). Not in the digest.
    pub fsynced_damaged: usize,
}

impl CrashReport {
    /// A compact digest of the counts for the trace hash.
    pub fn digest(&self) -> u64 {
        let counts = [
            self.writes_kept,
            self.writes_torn,
            self.writes_lost,
            self.set_lens_applied,
            self.set_lens_lost,
            self.dir_ops_applied,
            self.dir_ops_lost,
            self.files_after.len(),
        ];
        let h = counts.iter().fold(0u64, |h, c| {
            h.wrapping_mul(1_000_003).wrapping_add(*c as u64)
        });
        // Folded in only when non-zero: digests of runs without the fault are unchanged.
        if self.appends_filled == 0 {
            h
        } else {
            h.wrapping_mul(1_000_003)
                .wrapping_add(self.appends_filled as u64)
        }
    }
}

/// How the sectors of a torn write that did not land read back.
#[derive(Clone, Copy)]
enum TornFill {
    Old,
    Zeros,
    Garbage,
}

/// Applies a machine crash to the whole disk state.
pub(crate) fn crash_machine(
    state: &mut DiskState,
    faults: &DiskFaults,
    rng: &mut impl Rng,
) -> CrashReport {
    let mut report = CrashReport::default();
    // 1. Directory entries: durable ones plus a random subset of the unsynced ops, in order.
    let mut names = state.durable_names.clone();
    for op in std::mem::take(&mut state.dir_ops) {
        if rng.gen_bool(faults.crash_dir_op_rate) {
            op.apply(&mut names);
            report.dir_ops_applied += 1;
        } else {
            report.dir_ops_lost += 1;
        }
    }
    // Parents sort before their children (component-wise order), so one pass suffices.
    let mut kept: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    for (path, entry) in names {
        let parent = path.parent().unwrap_or(Path::new(""));
        if parent.as_os_str().is_empty() || kept.get(parent) == Some(&Entry::Dir) {
            kept.insert(path, entry);
        }
    }
    // 2. File data: only inodes some surviving name points at.
    let live: BTreeSet<u64> = kept
        .values()
        .filter_map(|e| match e {
            Entry::File(ino) => Some(*ino),
            Entry::Dir => None,
        })
        .collect();
    let inodes = std::mem::take(&mut state.inodes);
    for (ino, mut inode) in inodes {
        if !live.contains(&ino) {
            continue;
        }
        let image = crash_image(&inode, faults, rng, &mut report);
        if let Some(believed) = inode.believed_durable.take() {
            if damaged(&believed, &image, &inode.misdirected_ranges) {
                report.fsynced_damaged += 1;
            }
        }
        inode.misdirected_ranges.clear();
        inode.current = image.clone();
        inode.durable = image;
        inode.pending.clear();
        inode.lost_to_eio = false;
        inode.misdirected = false;
        state.inodes.insert(ino, inode);
    }
    report.files_after = kept
        .iter()
        .filter(|(_, e)| matches!(e, Entry::File(_)))
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    state.names = kept.clone();
    state.durable_names = kept;
    report
}

/// Whether some byte the server was told is durable (`believed`) and that a misdirected
/// write touched (`ranges`) reads differently (or is gone) in `image`.
fn damaged(believed: &[u8], image: &[u8], ranges: &[(u64, u64)]) -> bool {
    ranges.iter().any(|&(start, end)| {
        let end = usize::try_from(end)
            .unwrap_or(usize::MAX)
            .min(believed.len());
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(end);
        image.len() < end || believed[start..end] != image[start..end]
    })
}

/// fsync EIO: a crash-like subset of the pending ops reaches the platter, the rest is
/// dropped; nothing stays pending. The page cache (`current`) keeps showing everything.
pub(crate) fn settle_partially(inode: &mut Inode, faults: &DiskFaults, rng: &mut impl Rng) {
    let mut ignored = CrashReport::default();
    inode.durable = crash_image(inode, faults, rng, &mut ignored);
    inode.pending.clear();
    inode.lost_to_eio = true;
}

/// The bytes one inode has after power loss.
fn crash_image(
    inode: &Inode,
    faults: &DiskFaults,
    rng: &mut impl Rng,
    report: &mut CrashReport,
) -> Vec<u8> {
    let mut image = inode.durable.clone();
    for op in &inode.pending {
        match op {
            PendingOp::SetLen(_) => {
                if rng.gen_bool(faults.crash_set_len_rate) {
                    apply_op(&mut image, op);
                    report.set_lens_applied += 1;
                } else {
                    report.set_lens_lost += 1;
                }
            }
            PendingOp::Write { pos, data } => {
                if !rng.gen_bool(faults.crash_write_survive_rate) {
                    report.writes_lost += 1;
                    let end = *pos + data.len() as u64;
                    if end > image.len() as u64
                        && faults.crash_append_fill_rate > 0.0
                        && rng.gen_bool(faults.crash_append_fill_rate)
                    {
                        fill_append(&mut image, *pos, data, rng);
                        report.appends_filled += 1;
                    }
                } else if rng.gen_bool(faults.crash_torn_rate) {
                    apply_torn(&mut image, *pos, data, faults.sector_bytes, rng);
                    report.writes_torn += 1;
                } else {
                    apply_op(&mut image, op);
                    report.writes_kept += 1;
                }
            }
        }
    }
    image
}

/// A lost appending write whose size change landed: the file grows to the write's end;
/// the new range reads as zeros, or (half the time) the written range as garbage.
fn fill_append(image: &mut Vec<u8>, pos: u64, data: &[u8], rng: &mut impl Rng) {
    let old_len = image.len() as u64;
    apply_op(image, &PendingOp::SetLen(pos + data.len() as u64));
    if rng.gen_bool(0.5) {
        let from = pos.max(old_len);
        let skip = usize::try_from(from - pos).expect("small");
        let junk = garbage(&data[skip..], rng);
        apply_op(
            image,
            &PendingOp::Write {
                pos: from,
                data: junk,
            },
        );
    }
}

/// Random bytes that differ from `like` at every position.
fn garbage(like: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    like.iter()
        .map(|b| {
            let g: u8 = rng.gen();
            if g == *b {
                !g
            } else {
                g
            }
        })
        .collect()
}

/// Applies `data` at `pos` keeping only some of the sectors it covers.
fn apply_torn(image: &mut Vec<u8>, pos: u64, data: &[u8], sector_bytes: u64, rng: &mut impl Rng) {
    if data.is_empty() {
        return;
    }
    let end = pos + data.len() as u64;
    let first = pos / sector_bytes;
    let count = (end - 1) / sector_bytes - first + 1;
    let keep: Vec<bool> = match rng.gen_range(0..3) {
        0 => {
            let k = rng.gen_range(0..count);
            (0..count).map(|i| i < k).collect()
        }
        1 => {
            let k = rng.gen_range(0..count);
            (0..count).map(|i| i >= count - k).collect()
        }
        _ => (0..count).map(|_| rng.gen_bool(0.5)).collect(),
    };
    let fill = match rng.gen_range(0..3) {
        0 => TornFill::Old,
        1 => TornFill::Zeros,
        _ => TornFill::Garbage,
    };
    for (i, kept) in keep.iter().enumerate() {
        let sector = first + i as u64;
        let lo = pos.max(sector * sector_bytes);
        let hi = end.min((sector + 1) * sector_bytes);
        let part = &data
            [usize::try_from(lo - pos).expect("small")..usize::try_from(hi - pos).expect("small")];
        let bytes: Option<Vec<u8>> = match (kept, fill) {
            (true, _) => Some(part.to_vec()),
            (false, TornFill::Old) => None,
            (false, TornFill::Zeros) => Some(vec![0; part.len()]),
            (false, TornFill::Garbage) => Some(garbage(part, rng)),
        };
        if let Some(bytes) = bytes {
            apply_op(
                image,
                &PendingOp::Write {
                    pos: lo,
                    data: bytes,
                },
            );
        }
    }
}
