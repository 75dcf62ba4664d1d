//! An in-memory world for unit tests inside `src/`: a `Disk` + `File` kept in RAM, a
//! virtual `Clock`, seeded `Entropy` and a tiny single-threaded executor (`Spawn`) that
//! advances virtual time only when no task is ready. Everything hangs off one [`MemIo`]
//! value (cheap to clone), so a test can crash the "machine" and re-open its files.
//!
//! The disk is fault-free unless a test asks for a fault through the hooks on [`MemIo`]:
//! fail the next write (optionally after tearing a prefix into the file), make the next
//! write short, fail every write (ENOSPC-style) until cleared, fail the next fsync, delay
//! or stall fsyncs. Durability model (a simplified `docs/simulation.md`): each file keeps
//! its current bytes and a durable image; a successful `sync_data` copies the dirty ranges
//! into the durable image; a failed one marks them clean *without* persisting them (Linux
//! drops dirty pages on fsync EIO), so only a rewrite makes them durable. [`MemIo::crash`]
//! is a machine crash: every file reverts to its durable image. Directory entries are
//! durable at once (no `sync_dir` modelling); the simulator models that, this does not.
//!
//! What can fail here: the IO operations return the errors the hooks inject, plus
//! `NotFound` for missing files and parent directories. [`MemIo::run`] returns
//! [`MemStalled`] when the future cannot finish (no task ready, no timer pending).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use event_listener::Event;

use super::{BufResult, Clock, Disk, Entropy, File, OpenMode, Spawn};

/// The wall clock at virtual time zero, in ms since the Unix epoch (2023-11-14).
pub const MEM_WALL_CLOCK_EPOCH_MS: u64 = 1_700_000_000_000;
/// [`MemIo::run`] gives up (returns [`MemStalled`]) after this many task polls.
pub const MEM_RUN_POLLS_MAX: u64 = 50_000_000;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// One in-memory world: executor, virtual clock, disk and fault hooks. Clones share it.
#[derive(Clone)]
pub struct MemIo {
    world: Rc<World>,
}

struct World {
    tasks: RefCell<Vec<Option<Task>>>,
    ready: Arc<Mutex<VecDeque<usize>>>,
    clock: RefCell<ClockState>,
    disk: RefCell<DiskState>,
    sync_unstall: Event,
    rng_state: Cell<u64>,
}

#[derive(Default)]
struct ClockState {
    now: Duration,
    timers: BTreeMap<(Duration, u64), Waker>,
    next_timer_id: u64,
}

#[derive(Default)]
struct DiskState {
    files: BTreeMap<PathBuf, Rc<RefCell<FileData>>>,
    dirs: BTreeSet<PathBuf>,
    faults: MemFaults,
    stats: MemDiskStats,
}

#[derive(Default)]
struct FileData {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Byte ranges written since the last sync (start, end).
    dirty: Vec<(u64, u64)>,
}

/// Faults the next disk operations will suffer. Set through [`MemIo::set_faults`].
#[derive(Clone, Debug, Default)]
pub struct MemFaults {
    /// The next this-many `write_at` calls fail with EIO ...
    pub fail_next_writes: u32,
    /// ... after writing (tearing) at most this many bytes of their buffer into the file.
    pub torn_prefix_bytes: usize,
    /// The next `write_at` writes at most this many bytes and reports a short write.
    pub short_next_write_bytes: Option<usize>,
    /// Every `write_at` fails with this error kind (e.g. `StorageFull`) until cleared.
    pub fail_writes_with: Option<io::ErrorKind>,
    /// The next this-many `sync_data`/`sync_all` calls fail with EIO (dirty data is dropped).
    pub fail_next_syncs: u32,
    /// While true, every `sync_data`/`sync_all` waits (clear it with `set_faults`).
    pub stall_syncs: bool,
    /// Every successful or failing sync first takes this much virtual time.
    pub sync_delay: Duration,
    /// Every `write_at` first takes this much virtual time.
    pub write_delay: Duration,
}

/// Counters of disk operations, for assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemDiskStats {
    /// `write_at` calls (including failed ones).
    pub writes: u64,
    /// Successful `sync_data`/`sync_all` calls.
    pub syncs: u64,
    /// Failed `sync_data`/`sync_all` calls.
    pub failed_syncs: u64,
    /// `set_len` calls.
    pub set_lens: u64,
}

/// [`MemIo::run`] could not finish its future: nothing was ready and no timer was pending
/// (a deadlock), or the poll budget [`MEM_RUN_POLLS_MAX`] ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemStalled {
    /// Virtual time when it gave up.
    pub at: Duration,
}

impl Default for MemIo {
    fn default() -> MemIo {
        MemIo::new()
    }
}

impl MemIo {
    /// An empty world at virtual time zero with an empty disk.
    pub fn new() -> MemIo {
        MemIo {
            world: Rc::new(World {
                tasks: RefCell::new(Vec::new()),
                ready: Arc::new(Mutex::new(VecDeque::new())),
                clock: RefCell::new(ClockState::default()),
                disk: RefCell::new(DiskState::default()),
                sync_unstall: Event::new(),
                rng_state: Cell::new(0x9E37_79B9_7F4A_7C15),
            }),
        }
    }

    /// Runs the executor until `fut` completes, advancing virtual time whenever no task is
    /// ready. Background tasks stay in the world and keep running in later `run` calls.
    pub fn run<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> Result<T, MemStalled> {
        let out: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let slot = out.clone();
        self.spawn_task(Box::pin(async move {
            let value = fut.await;
            *slot.borrow_mut() = Some(value);
        }));
        let mut polls: u64 = 0;
        loop {
            while let Some(id) = self.pop_ready() {
                polls += 1;
                self.poll_task(id);
                if polls > MEM_RUN_POLLS_MAX {
                    return Err(MemStalled { at: self.now() });
                }
            }
            if let Some(value) = out.borrow_mut().take() {
                return Ok(value);
            }
            if !self.fire_next_timers() {
                return Err(MemStalled { at: self.now() });
            }
        }
    }

    /// Runs background tasks for `duration` of virtual time.
    pub fn advance(&self, duration: Duration) -> Result<(), MemStalled> {
        let sleep = self.sleep(duration);
        self.run(sleep)
    }

    /// Tasks spawned and not finished yet (including ones waiting on a timer or event).
    pub fn live_tasks(&self) -> usize {
        self.world
            .tasks
            .borrow()
            .iter()
            .filter(|t| t.is_some())
            .count()
    }

    /// The current virtual time.
    pub fn now(&self) -> Duration {
        self.world.clock.borrow().now
    }

    /// Replaces the fault plan; clearing `stall_syncs` releases stalled syncs.
    pub fn set_faults(&self, faults: MemFaults) {
        self.world.disk.borrow_mut().faults = faults;
        self.world.sync_unstall.notify(usize::MAX);
    }

    /// The current fault plan (hooks count down as faults fire).
    pub fn faults(&self) -> MemFaults {
        self.world.disk.borrow().faults.clone()
    }

    /// Disk operation counters.
    pub fn disk_stats(&self) -> MemDiskStats {
        self.world.disk.borrow().stats
    }

    /// Machine crash (power loss): every file reverts to its durable image.
    pub fn crash(&self) {
        let disk = self.world.disk.borrow();
        for file in disk.files.values() {
            let mut file = file.borrow_mut();
            file.data = file.durable.clone();
            file.dirty.clear();
        }
    }

    /// The current bytes of `path` (what a read sees), if it exists.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.world.disk.borrow();
        disk.files.get(path).map(|f| f.borrow().data.clone())
    }

    /// The durable image of `path` (what survives [`MemIo::crash`]), if it exists.
    pub fn durable_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.world.disk.borrow();
        disk.files.get(path).map(|f| f.borrow().durable.clone())
    }

    /// Creates or replaces `path` with `bytes`, durable at once; creates its parent dirs.
    pub fn put_file(&self, path: &Path, bytes: Vec<u8>) {
        let mut disk = self.world.disk.borrow_mut();
        if let Some(parent) = path.parent() {
            add_dirs(&mut disk.dirs, parent);
        }
        let data = FileData {
            data: bytes.clone(),
            durable: bytes,
            dirty: Vec::new(),
        };
        disk.files
            .insert(path.to_path_buf(), Rc::new(RefCell::new(data)));
    }

    fn spawn_task(&self, task: Task) {
        let id = {
            let mut tasks = self.world.tasks.borrow_mut();
            tasks.push(Some(task));
            tasks.len() - 1
        };
        lock(&self.world.ready).push_back(id);
    }

    fn pop_ready(&self) -> Option<usize> {
        lock(&self.world.ready).pop_front()
    }

    fn poll_task(&self, id: usize) {
        let task = self
            .world
            .tasks
            .borrow_mut()
            .get_mut(id)
            .and_then(Option::take);
        let Some(mut task) = task else { return };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            ready: self.world.ready.clone(),
        }));
        let mut cx = Context::from_waker(&waker);
        if task.as_mut().poll(&mut cx).is_pending() {
            self.world.tasks.borrow_mut()[id] = Some(task);
        }
    }

    /// Moves virtual time to the earliest timer and wakes every timer due then.
    fn fire_next_timers(&self) -> bool {
        let wakers: Vec<Waker> = {
            let mut clock = self.world.clock.borrow_mut();
            let Some((&(deadline, _), _)) = clock.timers.first_key_value() else {
                return false;
            };
            if deadline > clock.now {
                clock.now = deadline;
            }
            let now = clock.now;
            let due: Vec<(Duration, u64)> = clock
                .timers
                .range(..=(now, u64::MAX))
                .map(|(k, _)| *k)
                .collect();
            due.iter().filter_map(|k| clock.timers.remove(k)).collect()
        };
        for waker in wakers {
            waker.wake();
        }
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", path.display()),
    )
}

fn add_dirs(dirs: &mut BTreeSet<PathBuf>, path: &Path) {
    for ancestor in path.ancestors() {
        if !ancestor.as_os_str().is_empty() {
            dirs.insert(ancestor.to_path_buf());
        }
    }
}

struct TaskWaker {
    id: usize,
    ready: Arc<Mutex<VecDeque<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        lock(&self.ready).push_back(self.id);
    }
}

/// The future returned by [`MemIo::sleep`].
pub struct MemSleep {
    world: Rc<World>,
    deadline: Duration,
    id: u64,
}

impl Future for MemSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut clock = self.world.clock.borrow_mut();
        if clock.now >= self.deadline {
            clock.timers.remove(&(self.deadline, self.id));
            Poll::Ready(())
        } else {
            clock
                .timers
                .insert((self.deadline, self.id), cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for MemSleep {
    fn drop(&mut self) {
        if let Ok(mut clock) = self.world.clock.try_borrow_mut() {
            clock.timers.remove(&(self.deadline, self.id));
        }
    }
}

impl Clock for MemIo {
    fn monotonic(&self) -> Duration {
        self.now()
    }
    fn wall_clock_ms(&self) -> u64 {
        MEM_WALL_CLOCK_EPOCH_MS + self.now().as_millis() as u64
    }
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + 'static {
        let mut clock = self.world.clock.borrow_mut();
        clock.next_timer_id += 1;
        MemSleep {
            world: self.world.clone(),
            deadline: clock.now + duration,
            id: clock.next_timer_id,
        }
    }
}

impl Entropy for MemIo {
    /// splitmix64 from a fixed seed: deterministic across runs.
    fn random_u64(&self) -> u64 {
        let state = self
            .world
            .rng_state
            .get()
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.world.rng_state.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Spawn for MemIo {
    fn spawn_local(&self, task: impl Future<Output = ()> + 'static) {
        self.spawn_task(Box::pin(task));
    }
}

/// An open in-memory file. Stays usable after its name is removed.
pub struct MemFile {
    io: MemIo,
    data: Rc<RefCell<FileData>>,
}

impl MemFile {
    async fn sync(&self) -> io::Result<()> {
        let world = &self.io.world;
        loop {
            let listener = world.sync_unstall.listen();
            if !world.disk.borrow().faults.stall_syncs {
                break;
            }
            listener.await;
        }
        let delay = world.disk.borrow().faults.sync_delay;
        if !delay.is_zero() {
            self.io.sleep(delay).await;
        }
        let mut disk = world.disk.borrow_mut();
        let mut file = self.data.borrow_mut();
        if disk.faults.fail_next_syncs > 0 {
            disk.faults.fail_next_syncs -= 1;
            disk.stats.failed_syncs += 1;
            file.dirty.clear();
            return Err(io::Error::other("injected fsync failure (EIO)"));
        }
        let file = &mut *file;
        let len = file.data.len();
        file.durable.resize(len, 0);
        for (start, end) in file.dirty.drain(..) {
            let (start, end) = (start as usize, (end as usize).min(len));
            if start < end {
                file.durable[start..end].copy_from_slice(&file.data[start..end]);
            }
        }
        disk.stats.syncs += 1;
        Ok(())
    }
}

impl File for MemFile {
    async fn read_at(&self, mut buf: Vec<u8>, pos: u64) -> BufResult<usize> {
        let file = self.data.borrow();
        let len = file.data.len() as u64;
        if pos >= len {
            return (Ok(0), buf);
        }
        let want = buf.capacity() - buf.len();
        let n = want.min((len - pos) as usize);
        buf.extend_from_slice(&file.data[pos as usize..pos as usize + n]);
        (Ok(n), buf)
    }

    async fn write_at(&self, buf: Vec<u8>, pos: u64) -> BufResult<usize> {
        let delay = self.io.world.disk.borrow().faults.write_delay;
        if !delay.is_zero() {
            self.io.sleep(delay).await;
        }
        let mut disk = self.io.world.disk.borrow_mut();
        disk.stats.writes += 1;
        let (count, error) = if let Some(kind) = disk.faults.fail_writes_with {
            (0, Some(io::Error::new(kind, "injected write failure")))
        } else if disk.faults.fail_next_writes > 0 {
            disk.faults.fail_next_writes -= 1;
            let torn = disk.faults.torn_prefix_bytes.min(buf.len());
            (torn, Some(io::Error::other("injected write failure (EIO)")))
        } else if let Some(max) = disk.faults.short_next_write_bytes.take() {
            (max.min(buf.len()), None)
        } else {
            (buf.len(), None)
        };
        let mut file = self.data.borrow_mut();
        if count > 0 {
            let start = pos as usize;
            let end = start + count;
            if file.data.len() < end {
                file.data.resize(end, 0);
            }
            file.data[start..end].copy_from_slice(&buf[..count]);
            file.dirty.push((pos, end as u64));
        }
        match error {
            Some(error) => (Err(error), buf),
            None => (Ok(count), buf),
        }
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.sync().await
    }

    async fn sync_all(&self) -> io::Result<()> {
        self.sync().await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.io.world.disk.borrow_mut().stats.set_lens += 1;
        let mut file = self.data.borrow_mut();
        file.data.resize(len as usize, 0);
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.data.borrow().data.len() as u64)
    }
}

impl Disk for MemIo {
    type File = MemFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MemFile> {
        let mut disk = self.world.disk.borrow_mut();
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !disk.dirs.contains(parent) {
                return Err(not_found(parent));
            }
        }
        let existing = disk.files.get(path).cloned();
        let data = match (existing, mode) {
            (None, OpenMode::Read | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, OpenMode::CreateReadWrite | OpenMode::CreateTruncate) => {
                let data = Rc::new(RefCell::new(FileData::default()));
                disk.files.insert(path.to_path_buf(), data.clone());
                data
            }
            (Some(data), OpenMode::CreateTruncate) => {
                data.borrow_mut().data.clear();
                data
            }
            (Some(data), _) => data,
        };
        Ok(MemFile {
            io: self.clone(),
            data,
        })
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.world.disk.borrow_mut();
        let data = disk.files.remove(from).ok_or_else(|| not_found(from))?;
        disk.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.world.disk.borrow_mut();
        disk.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let disk = self.world.disk.borrow();
        if disk.dirs.contains(path) {
            Ok(())
        } else {
            Err(not_found(path))
        }
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        add_dirs(&mut self.world.disk.borrow_mut().dirs, path);
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let disk = self.world.disk.borrow();
        if !disk.dirs.contains(path) {
            return Err(not_found(path));
        }
        let files = disk.files.keys().map(PathBuf::as_path);
        let dirs = disk.dirs.iter().map(PathBuf::as_path);
        let names: BTreeSet<String> = files
            .chain(dirs)
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        Ok(names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_advances_virtual_time_and_tasks_run() {
        let io = MemIo::new();
        let flag = Rc::new(Cell::new(false));
        let seen = flag.clone();
        let bg = io.clone();
        io.spawn_local(async move {
            bg.sleep(Duration::from_millis(50)).await;
            seen.set(true);
        });
        let clock = io.clone();
        io.run(async move { clock.sleep(Duration::from_millis(100)).await })
            .unwrap();
        assert_eq!(io.now(), Duration::from_millis(100));
        assert!(flag.get());
    }

    #[test]
    fn run_reports_a_deadlock() {
        let io = MemIo::new();
        let event = Rc::new(Event::new());
        let waiting = event.clone();
        let result = io.run(async move { waiting.listen().await });
        assert!(result.is_err());
    }

    #[test]
    fn crash_keeps_only_synced_bytes_and_failed_sync_drops_dirty_data() {
        let io = MemIo::new();
        let path = PathBuf::from("d/f");
        let t = io.clone();
        let p = path.clone();
        io.run(async move {
            t.create_dir_all(Path::new("d")).await.unwrap();
            let f = t.open(&p, OpenMode::CreateReadWrite).await.unwrap();
            f.write_at(b"abc".to_vec(), 0).await.0.unwrap();
            f.sync_data().await.unwrap();
            f.write_at(b"def".to_vec(), 3).await.0.unwrap();
            t.set_faults(MemFaults {
                fail_next_syncs: 1,
                ..MemFaults::default()
            });
            assert!(f.sync_data().await.is_err());
            // A later successful sync does not persist the dropped pages.
            f.sync_data().await.unwrap();
        })
        .unwrap();
        assert_eq!(io.file_bytes(&path).unwrap(), b"abcdef");
        assert_eq!(io.durable_bytes(&path).unwrap(), b"abc\0\0\0");
        io.crash();
        assert_eq!(io.file_bytes(&path).unwrap(), b"abc\0\0\0");
        assert_eq!(io.disk_stats().syncs, 2);
        assert_eq!(io.disk_stats().failed_syncs, 1);
    }

    #[test]
    fn read_at_appends_into_spare_capacity_and_open_needs_parent() {
        let io = MemIo::new();
        let t = io.clone();
        io.put_file(Path::new("x/y"), b"hello".to_vec());
        let out = io
            .run(async move {
                assert!(t
                    .open(Path::new("nodir/f"), OpenMode::CreateReadWrite)
                    .await
                    .is_err());
                let f = t.open(Path::new("x/y"), OpenMode::Read).await.unwrap();
                let mut buf = Vec::with_capacity(8);
                buf.push(b'>');
                let (n, buf) = f.read_at(buf, 1).await;
                let names = t.list_dir(Path::new("x")).await.unwrap();
                (n.unwrap(), buf, names)
            })
            .unwrap();
        assert_eq!(out.0, 4);
        assert_eq!(out.1, b">ello");
        assert_eq!(out.2, vec!["y".to_string()]);
    }
}
