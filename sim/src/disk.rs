//! SimDisk: one simulated node's file system, with the durability semantics of a real
//! disk behind a page cache.
//!
//! Model. Files are inodes holding `durable` bytes (on the platter) and `pending`
//! operations (writes / `set_len` since the last successful fsync); `current` is what
//! reads see (durable + every pending op, i.e. the page cache). Names live in two
//! namespaces: `names` (what processes see) and `durable_names` (what survives power
//! loss); creates, renames, removes and mkdirs are pending directory operations until
//! `sync_dir` of their parent directory.
//!
//! - `sync_data` / `sync_all` make one inode's pending ops durable (not its name).
//! - process crash ([`SimDisk::crash_process`]): nothing changes — the page cache survives.
//! - machine crash ([`SimDisk::crash_machine`]): every pending write survives with some
//!   probability, possibly torn at sector granularity (see `disk/crash.rs`); pending
//!   `set_len`s and directory operations each may or may not apply. Unnamed inodes vanish.
//! - runtime faults ([`DiskFaults`]): latency (every op sleeps in virtual time), latency
//!   spikes on any op, stalls on syncs, fsync EIO (pending data then only partly reached
//!   the platter and is no longer pending: the Linux "clean pages" behaviour), write EIO,
//!   short writes, ENOSPC at a capacity (space returns when files shrink or are removed),
//!   read bit flips (the stored data stays intact), misdirected writes (the page cache
//!   shows the write, the device put it at another sector-aligned offset of the file or
//!   lost it: visible after a machine crash or [`SimDisk::evict_page_cache`]). Every
//!   injected fault emits a `disk.fault.*` trace event.
//! - crash points: [`SimDisk::crash_after_ops`] freezes the disk after the n-th completed
//!   operation (later ops never complete) so the world can crash the node at exactly that
//!   point of a protocol; [`SimDisk::start_section`] does the same counting only the
//!   mutating operations of one protocol section (see `crashpoints.rs`).
//!
//! Simplifications: directories cannot be renamed or removed; paths are relative to the
//! node's root (`..` is refused, a leading `/` is ignored); hard links do not exist.
//!
//! What can fail here: every operation returns the errno Linux would (ENOENT, EISDIR,
//! ENOTDIR, EBADF, EIO, ENOSPC, EFBIG); internal invariants are asserted.

mod crash;
mod file;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tidemark::io::OpenMode;

use crate::executor::{stream, Executor};
use crate::faults::DiskFaults;

pub use crash::CrashReport;
pub use file::SimFile;

/// Largest file the simulator keeps in memory, in bytes; beyond it writes fail EFBIG.
pub const FILE_LEN_MAX_BYTES: u64 = 1 << 30;

const EIO: i32 = 5;
const ENOENT: i32 = 2;
const EBADF: i32 = 9;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EFBIG: i32 = 27;
const ENOSPC: i32 = 28;
const EEXIST: i32 = 17;

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// A pending (written, not yet fsynced) operation on one inode.
#[derive(Clone, Debug)]
pub(crate) enum PendingOp {
    /// `data` written at byte offset `pos`.
    Write { pos: u64, data: Vec<u8> },
    /// Truncated or extended to `len` bytes.
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Inode {
    pub(crate) durable: Vec<u8>,
    pub(crate) current: Vec<u8>,
    pub(crate) pending: Vec<PendingOp>,
    /// An fsync failed: some data shown by the page cache never reaches the platter.
    pub(crate) lost_to_eio: bool,
    /// A misdirected write: the page cache shows data the device put elsewhere (or lost).
    pub(crate) misdirected: bool,
    /// Tracked from the first misdirected write on (until the next machine crash or
    /// page-cache eviction): the bytes the server was told are durable (the page cache at
    /// the last clean fsync). A machine crash that leaves other bytes in that range damaged
    /// fsynced data (`disk.fault.fsynced_damage`): no log format can always detect that.
    pub(crate) believed_durable: Option<Vec<u8>>,
    /// Byte ranges `[start, end)` misdirected writes touched (where the data belonged and
    /// where it landed): the only bytes whose damage is blamed on the device.
    pub(crate) misdirected_ranges: Vec<(u64, u64)>,
}

impl Inode {
    /// What the device holds for this inode: platter + pending ops, ignoring the page
    /// cache. Equals `current` unless an fsync EIO or a misdirected write diverged them.
    pub(crate) fn device_view(&self) -> Vec<u8> {
        let mut image = self.durable.clone();
        for op in &self.pending {
            apply_op(&mut image, op);
        }
        image
    }
}

/// What a name points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    File(u64),
    Dir,
}

/// A directory operation not yet made durable by `sync_dir`.
#[derive(Clone, Debug)]
pub(crate) enum DirOp {
    Create {
        path: PathBuf,
        entry: Entry,
    },
    Remove {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: u64,
    },
}

impl DirOp {
    fn touches_dir(&self, dir: &Path) -> bool {
        let parent_is = |p: &Path| p.parent().unwrap_or(Path::new("")) == dir;
        match self {
            DirOp::Create { path, .. } | DirOp::Remove { path } => parent_is(path),
            DirOp::Rename { from, to, .. } => parent_is(from) || parent_is(to),
        }
    }

    pub(crate) fn apply(&self, names: &mut BTreeMap<PathBuf, Entry>) {
        match self {
            DirOp::Create { path, entry } => {
                names.insert(path.clone(), *entry);
            }
            DirOp::Remove { path } => {
                names.remove(path);
            }
            DirOp::Rename { from, to, ino } => {
                if names.get(from) == Some(&Entry::File(*ino)) {
                    names.remove(from);
                }
                names.insert(to.clone(), Entry::File(*ino));
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct DiskState {
    pub(crate) inodes: BTreeMap<u64, Inode>,
    pub(crate) next_ino: u64,
    pub(crate) names: BTreeMap<PathBuf, Entry>,
    pub(crate) durable_names: BTreeMap<PathBuf, Entry>,
    pub(crate) dir_ops: Vec<DirOp>,
}

impl DiskState {
    /// Bytes in use: the lengths of the files that have a name (an unlinked file's space
    /// returns at once: the simulator does not track open handles).
    fn used_bytes(&self) -> u64 {
        self.names
            .values()
            .filter_map(|e| match e {
                Entry::File(ino) => self.inodes.get(ino),
                Entry::Dir => None,
            })
            .map(|i| i.current.len() as u64)
            .sum()
    }

    fn dir_exists(&self, path: &Path) -> bool {
        path.as_os_str().is_empty() || self.names.get(path) == Some(&Entry::Dir)
    }

    fn parent_must_exist(&self, path: &Path) -> io::Result<()> {
        let parent = path.parent().unwrap_or(Path::new(""));
        if self.dir_exists(parent) {
            Ok(())
        } else if self.names.contains_key(parent) {
            Err(errno(ENOTDIR))
        } else {
            Err(errno(ENOENT))
        }
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.names.get(path) {
            Some(Entry::File(ino)) => Ok(*ino),
            Some(Entry::Dir) => Err(errno(EISDIR)),
            None => Err(errno(ENOENT)),
        }
    }

    fn create_file(&mut self, path: &Path) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.names.insert(path.to_path_buf(), Entry::File(ino));
        self.dir_ops.push(DirOp::Create {
            path: path.to_path_buf(),
            entry: Entry::File(ino),
        });
        ino
    }
}

/// Normalizes a path to the node root: drops `.` and a leading `/`, refuses `..`.
pub(crate) fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "'..' not supported",
                ))
            }
        }
    }
    Ok(out)
}

fn write_into(buf: &mut Vec<u8>, pos: u64, data: &[u8]) {
    let start = usize::try_from(pos).expect("checked against FILE_LEN_MAX_BYTES");
    let end = start + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[start..end].copy_from_slice(data);
}

pub(crate) fn apply_op(buf: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::Write { pos, data } => write_into(buf, *pos, data),
        PendingOp::SetLen(len) => buf.resize(usize::try_from(*len).expect("bounded"), 0),
    }
}

struct DiskInner {
    exec: Executor,
    node: u32,
    state: RefCell<DiskState>,
    rng: RefCell<ChaCha8Rng>,
    faults: RefCell<DiskFaults>,
    ops_done: Cell<u64>,
    /// Completed mutating operations (see [`SimDisk::mutation_count`]).
    mutations: Cell<u64>,
    /// `mutations` when the current protocol section started, while one is open.
    section_start: Cell<Option<u64>>,
    /// Mutating operations of the last (or current) section.
    section_ops: Cell<u64>,
    /// Freeze after this many mutating operations of the current section.
    section_crash_after: Cell<Option<u64>>,
    freeze_after: Cell<Option<u64>>,
    frozen: Cell<bool>,
    stalled_until: Cell<Duration>,
    /// How many times each `disk.fault.*` fired.
    fault_counts: RefCell<BTreeMap<&'static str, u64>>,
}

/// One node's simulated disk. Cheap to clone (an `Rc`); survives the node's process
/// crashes and restarts. Implements [`tidemark::io::Disk`].
#[derive(Clone)]
pub struct SimDisk {
    inner: Rc<DiskInner>,
}

/// Counts of what is not yet durable, for checkers and traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingSummary {
    /// Files with pending (unsynced) data operations.
    pub files_with_pending: usize,
    /// Pending data operations (writes and set_len) over all files.
    pub pending_ops: usize,
    /// Directory operations not yet made durable by `sync_dir`.
    pub pending_dir_ops: usize,
}

impl SimDisk {
    /// An empty disk for `node`, drawing its randomness from the executor's
    /// `stream::DISK_BASE + node` stream.
    pub fn new(exec: &Executor, node: u32, faults: DiskFaults) -> SimDisk {
        SimDisk {
            inner: Rc::new(DiskInner {
                exec: exec.clone(),
                node,
                state: RefCell::new(DiskState::default()),
                rng: RefCell::new(exec.rng_stream(stream::DISK_BASE + u64::from(node))),
                faults: RefCell::new(faults),
                ops_done: Cell::new(0),
                mutations: Cell::new(0),
                section_start: Cell::new(None),
                section_ops: Cell::new(0),
                section_crash_after: Cell::new(None),
                freeze_after: Cell::new(None),
                frozen: Cell::new(false),
                stalled_until: Cell::new(Duration::ZERO),
                fault_counts: RefCell::new(BTreeMap::new()),
            }),
        }
    }

    /// The node this disk belongs to.
    pub fn node(&self) -> u32 {
        self.inner.node
    }

    /// The fault configuration in force.
    pub fn faults(&self) -> DiskFaults {
        self.inner.faults.borrow().clone()
    }

    /// Replaces the fault configuration (e.g. make space return after ENOSPC).
    pub fn set_faults(&self, faults: DiskFaults) {
        self.inner.faults.replace(faults);
    }

    /// Completed operations so far (open, read, write, sync, rename, …; not `len`).
    pub fn op_count(&self) -> u64 {
        self.inner.ops_done.get()
    }

    /// Crash point: after the `n`-th completed operation (counted by [`op_count`]),
    /// every later operation blocks forever. `None` disarms it.
    ///
    /// [`op_count`]: SimDisk::op_count
    pub fn crash_after_ops(&self, n: Option<u64>) {
        self.inner.freeze_after.set(n);
        self.inner
            .frozen
            .set(n.is_some_and(|n| self.op_count() >= n));
    }

    /// Stalls the disk: every operation that would complete before virtual time `until`
    /// waits until then (a hung device; predecessor bugs 4 and 8). Earlier calls are
    /// replaced; `Duration::ZERO` ends a stall.
    pub fn stall_until(&self, until: Duration) {
        self.inner.stalled_until.set(until);
        self.inner.exec.trace(
            "disk.stall",
            u64::from(self.inner.node),
            until.as_micros() as u64,
        );
    }

    /// Completed *mutating* operations so far: `write_at`, `sync_data`/`sync_all`,
    /// `set_len`, `rename`, `remove_file`, `sync_dir`, `create_dir_all`, and an `open`
    /// that created or truncated a file (even when they failed). A crash between two
    /// other operations is the same state as a crash right after the last mutating one,
    /// so crash points are enumerated over these (see `crashpoints.rs`).
    pub fn mutation_count(&self) -> u64 {
        self.inner.mutations.get()
    }

    /// Opens a protocol section (e.g. one manifest update): from now on mutating
    /// operations are counted in [`SimDisk::section_ops`]. With `Some(k)` the disk
    /// freezes right after the section's `k`-th mutating operation completes (every later
    /// operation blocks forever, as with [`SimDisk::crash_after_ops`]); `Some(0)` freezes
    /// at once. A section left open runs to the end of the run.
    pub fn start_section(&self, crash_after_ops: Option<u64>) {
        self.inner.section_start.set(Some(self.mutation_count()));
        self.inner.section_ops.set(0);
        self.inner.section_crash_after.set(crash_after_ops);
        self.inner.exec.trace(
            "disk.section_start",
            u64::from(self.inner.node),
            crash_after_ops.map_or(u64::MAX, |k| k),
        );
        if crash_after_ops == Some(0) {
            self.inner.frozen.set(true);
        }
    }

    /// Closes the protocol section; returns its count of mutating operations. Later
    /// operations no longer count (a freeze already reached stays).
    pub fn end_section(&self) -> u64 {
        self.inner.section_start.set(None);
        self.inner.section_crash_after.set(None);
        self.inner.section_ops.get()
    }

    /// Mutating operations of the current (or last closed) section.
    pub fn section_ops(&self) -> u64 {
        self.inner.section_ops.get()
    }

    /// How many times each injected fault fired so far, by trace tag (`disk.fault.stall`,
    /// `latency_spike`, `read_bitflip`, `enospc`, `write_eio`, `short_write`,
    /// `misdirected_write`, `fsync_eio`; machine crashes add `torn_write`, `append_fill`,
    /// `crash_lost_ops` and `fsynced_damage` (files whose fsynced bytes a misdirected write
    /// changed on the platter) with their counts).
    pub fn fault_counts(&self) -> BTreeMap<&'static str, u64> {
        self.inner.fault_counts.borrow().clone()
    }

    /// Drops the page cache: every file then reads what the device holds (platter plus
    /// pending operations). Only differs from before where an fsync EIO or a misdirected
    /// write made the cache lie. (Memory pressure, `echo 3 > drop_caches`.)
    pub fn evict_page_cache(&self) {
        let mut state = self.inner.state.borrow_mut();
        let mut changed = 0u64;
        for inode in state.inodes.values_mut() {
            let view = inode.device_view();
            if view != inode.current {
                changed += 1;
                inode.current = view;
            }
            inode.lost_to_eio = false;
            inode.misdirected = false;
            inode.believed_durable = None;
            inode.misdirected_ranges.clear();
        }
        self.inner
            .exec
            .trace("disk.evict_page_cache", u64::from(self.inner.node), changed);
    }

    /// Whether the crash point set by [`SimDisk::crash_after_ops`] has been reached.
    pub fn crash_point_reached(&self) -> bool {
        self.inner.frozen.get()
    }

    /// Process crash (SIGKILL): the disk is untouched — the page cache survives. Only
    /// disarms a crash point (and closes a protocol section). (Kill the node's tasks on the executor separately.)
    pub fn crash_process(&self) {
        self.crash_after_ops(None);
        self.end_section();
        self.inner
            .exec
            .trace("disk.crash_process", u64::from(self.inner.node), 0);
    }

    /// Machine crash (power loss): see the module comment and `disk/crash.rs`. Afterwards
    /// the page cache equals the platter and nothing is pending. Kill the node's tasks
    /// first: open handles of the old process become stale (EBADF).
    pub fn crash_machine(&self, rng: &mut impl Rng) -> CrashReport {
        self.crash_after_ops(None);
        self.end_section();
        let faults = self.faults();
        let report = crash::crash_machine(&mut self.inner.state.borrow_mut(), &faults, rng);
        self.inner.exec.trace(
            "disk.crash_machine",
            u64::from(self.inner.node),
            report.digest(),
        );
        let lost = report.writes_lost + report.set_lens_lost + report.dir_ops_lost;
        for (tag, count) in [
            ("disk.fault.torn_write", report.writes_torn),
            ("disk.fault.append_fill", report.appends_filled),
            ("disk.fault.fsynced_damage", report.fsynced_damaged),
            ("disk.fault.crash_lost_ops", lost),
        ] {
            if count > 0 {
                self.fault(tag, 0, count as u64);
                // `fault` counted one event; count each op.
                *self.inner.fault_counts.borrow_mut().entry(tag).or_insert(0) += count as u64 - 1;
            }
        }
        report
    }

    /// What a read of `path` would see now (page cache), or `None` if it is not a file.
    pub fn read_now(&self, path: &str) -> Option<Vec<u8>> {
        let path = normalize(Path::new(path)).ok()?;
        let state = self.inner.state.borrow();
        let ino = state.file(&path).ok()?;
        Some(state.inodes[&ino].current.clone())
    }

    /// What is on the platter for `path` (durable name and durable bytes), or `None`.
    /// A machine crash that lost every pending operation would leave exactly this.
    pub fn read_durable(&self, path: &str) -> Option<Vec<u8>> {
        let path = normalize(Path::new(path)).ok()?;
        let state = self.inner.state.borrow();
        match state.durable_names.get(&path) {
            Some(Entry::File(ino)) => Some(state.inodes[ino].durable.clone()),
            _ => None,
        }
    }

    /// Every file visible now as (path with `/` separators, current length), sorted.
    pub fn list_files(&self) -> Vec<(String, u64)> {
        let state = self.inner.state.borrow();
        let mut files: Vec<(String, u64)> = state
            .names
            .iter()
            .filter_map(|(path, entry)| match entry {
                Entry::File(ino) => {
                    Some((path_string(path), state.inodes[ino].current.len() as u64))
                }
                Entry::Dir => None,
            })
            .collect();
        files.sort();
        files
    }

    /// Writes `data` at `pos` of an existing file straight to the platter and the page
    /// cache (no latency, no faults): corruption injection and test fixtures.
    pub fn poke(&self, path: &str, pos: u64, data: &[u8]) -> io::Result<()> {
        let path = normalize(Path::new(path))?;
        let mut state = self.inner.state.borrow_mut();
        let ino = state.file(&path)?;
        let inode = state.inodes.get_mut(&ino).expect("named inode exists");
        write_into(&mut inode.durable, pos, data);
        write_into(&mut inode.current, pos, data);
        Ok(())
    }

    /// How much is not yet durable.
    pub fn pending_summary(&self) -> PendingSummary {
        let state = self.inner.state.borrow();
        PendingSummary {
            files_with_pending: state
                .inodes
                .values()
                .filter(|i| !i.pending.is_empty())
                .count(),
            pending_ops: state.inodes.values().map(|i| i.pending.len()).sum(),
            pending_dir_ops: state.dir_ops.len(),
        }
    }

    /// Waits the op's virtual latency, then blocks forever if the crash point is reached.
    async fn begin(&self, tag: &str, a: u64, b: u64, is_sync: bool) {
        let latency = {
            let faults = self.inner.faults.borrow();
            let mut rng = self.inner.rng.borrow_mut();
            let mut us = rng.gen_range(faults.latency_min_us..=faults.latency_max_us);
            if is_sync && faults.stall_rate > 0.0 && rng.gen_bool(faults.stall_rate) {
                us += faults.stall_ms * 1000;
                self.fault("disk.fault.stall", a, faults.stall_ms);
            }
            if faults.latency_spike_rate > 0.0 && rng.gen_bool(faults.latency_spike_rate) {
                us += faults.latency_spike_ms * 1000;
                self.fault("disk.fault.latency_spike", a, faults.latency_spike_ms);
            }
            Duration::from_micros(us)
        };
        self.inner.exec.sleep(latency).await;
        let stalled_until = self.inner.stalled_until.get();
        if stalled_until > self.inner.exec.now() {
            self.inner.exec.sleep_until(stalled_until).await;
        }
        if self.inner.frozen.get() {
            std::future::pending::<()>().await;
        }
        self.inner
            .exec
            .trace(tag, (u64::from(self.inner.node) << 32) | a, b);
    }

    fn end(&self) {
        let done = self.inner.ops_done.get() + 1;
        self.inner.ops_done.set(done);
        if self.inner.freeze_after.get().is_some_and(|n| done >= n) {
            self.inner.frozen.set(true);
        }
    }

    /// `end` for a mutating operation: also counts it for crash-point sections.
    fn end_mutation(&self) {
        self.end();
        let inner = &self.inner;
        inner.mutations.set(inner.mutations.get() + 1);
        if let Some(start) = inner.section_start.get() {
            let n = inner.mutations.get() - start;
            inner.section_ops.set(n);
            if inner.section_crash_after.get().is_some_and(|k| n >= k) {
                inner.frozen.set(true);
                inner
                    .exec
                    .trace("disk.crash_point", u64::from(inner.node), n);
            }
        }
    }

    /// Emits the trace event of an injected fault (`tag` is `disk.fault.*`) and counts it.
    fn fault(&self, tag: &'static str, a: u64, b: u64) {
        *self.inner.fault_counts.borrow_mut().entry(tag).or_insert(0) += 1;
        self.inner.exec.trace(
            tag,
            (u64::from(self.inner.node) << 32) | (a & 0xffff_ffff),
            b,
        );
    }

    fn chance(&self, rate: f64) -> bool {
        rate > 0.0 && self.inner.rng.borrow_mut().gen_bool(rate.min(1.0))
    }

    async fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        let path = normalize(path)?;
        self.begin("disk.open", mode as u64, 0, false).await;
        let mut mutated = false;
        let result = {
            let mut state = self.inner.state.borrow_mut();
            match (state.file(&path), mode) {
                (Ok(ino), OpenMode::CreateTruncate) => {
                    let inode = state.inodes.get_mut(&ino).expect("named inode exists");
                    inode.current.clear();
                    inode.pending.push(PendingOp::SetLen(0));
                    mutated = true;
                    Ok(ino)
                }
                (Ok(ino), _) => Ok(ino),
                (Err(e), OpenMode::CreateReadWrite | OpenMode::CreateTruncate)
                    if e.raw_os_error() == Some(ENOENT) =>
                {
                    mutated = true;
                    state
                        .parent_must_exist(&path)
                        .map(|()| state.create_file(&path))
                }
                (Err(e), _) => Err(e),
            }
        };
        if mutated {
            self.end_mutation();
        } else {
            self.end();
        }
        let writable = mode != OpenMode::Read;
        result.map(|ino| SimFile {
            disk: self.clone(),
            ino,
            writable,
        })
    }

    async fn rename_path(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (normalize(from)?, normalize(to)?);
        self.begin("disk.rename", 0, 0, false).await;
        let result = (|| {
            let mut state = self.inner.state.borrow_mut();
            let ino = state.file(&from)?;
            state.parent_must_exist(&to)?;
            if state.names.get(&to) == Some(&Entry::Dir) {
                return Err(errno(EISDIR));
            }
            state.names.remove(&from);
            state.names.insert(to.clone(), Entry::File(ino));
            state.dir_ops.push(DirOp::Rename { from, to, ino });
            Ok(())
        })();
        self.end_mutation();
        result
    }

    async fn remove_path(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path)?;
        self.begin("disk.remove", 0, 0, false).await;
        let result = (|| {
            let mut state = self.inner.state.borrow_mut();
            state.file(&path)?;
            state.names.remove(&path);
            state.dir_ops.push(DirOp::Remove { path });
            Ok(())
        })();
        self.end_mutation();
        result
    }

    async fn sync_directory(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path)?;
        self.begin("disk.sync_dir", 0, 0, true).await;
        let result = (|| {
            let mut state = self.inner.state.borrow_mut();
            if !state.dir_exists(&path) {
                return Err(if state.names.contains_key(&path) {
                    errno(ENOTDIR)
                } else {
                    errno(ENOENT)
                });
            }
            let ops = std::mem::take(&mut state.dir_ops);
            let (now, later): (Vec<DirOp>, Vec<DirOp>) =
                ops.into_iter().partition(|op| op.touches_dir(&path));
            for op in &now {
                op.apply(&mut state.durable_names);
            }
            state.dir_ops = later;
            Ok(())
        })();
        self.end_mutation();
        result
    }

    async fn mkdir_all(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path)?;
        self.begin("disk.mkdir", 0, 0, false).await;
        let result = (|| {
            let mut state = self.inner.state.borrow_mut();
            let mut prefix = PathBuf::new();
            for part in path.components() {
                prefix.push(part);
                match state.names.get(&prefix) {
                    Some(Entry::Dir) => {}
                    Some(Entry::File(_)) => return Err(errno(EEXIST)),
                    None => {
                        state.names.insert(prefix.clone(), Entry::Dir);
                        state.dir_ops.push(DirOp::Create {
                            path: prefix.clone(),
                            entry: Entry::Dir,
                        });
                    }
                }
            }
            Ok(())
        })();
        self.end_mutation();
        result
    }

    async fn list_directory(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = normalize(path)?;
        self.begin("disk.list_dir", 0, 0, false).await;
        let result = (|| {
            let state = self.inner.state.borrow();
            if !state.dir_exists(&path) {
                return Err(if state.names.contains_key(&path) {
                    errno(ENOTDIR)
                } else {
                    errno(ENOENT)
                });
            }
            let mut names: Vec<String> = state
                .names
                .keys()
                .filter(|p| {
                    p.parent().unwrap_or(Path::new("")) == path && !p.as_os_str().is_empty()
                })
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            names.sort();
            Ok(names)
        })();
        self.end();
        result
    }
}

fn path_string(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

impl tidemark::io::Disk for SimDisk {
    type File = SimFile;

    fn open(&self, path: &Path, mode: OpenMode) -> impl Future<Output = io::Result<SimFile>> {
        self.open_file(path, mode)
    }

    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> {
        self.rename_path(from, to)
    }

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        self.remove_path(path)
    }

    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        self.sync_directory(path)
    }

    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        self.mkdir_all(path)
    }

    fn list_dir(&self, path: &Path) -> impl Future<Output = io::Result<Vec<String>>> {
        self.list_directory(path)
    }
}
