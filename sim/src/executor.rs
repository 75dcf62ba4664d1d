//! The deterministic executor: one thread, virtual time, a seeded scheduler.
//!
//! Every simulated task (each shard of each node, each client, the world) runs here. At
//! each step the executor picks a *random* ready task (ChaCha8 seeded from the run seed)
//! and polls it once; each poll costs a small random amount of virtual time, so timers
//! fire even while tasks stay busy (a starving `select!` loop cannot stop the clock).
//! When nothing is ready, virtual time jumps to the next timer. Tasks carry an [`Owner`]
//! tag so a process crash can drop every task of one node at once ([`Executor::kill_owner`]).
//!
//! Every step, timer, spawn, kill and every disk/net operation (via [`Executor::trace`])
//! is folded into a 64-bit FNV-1a trace hash: the same seed must give the same hash.
//!
//! What can fail here: a run ends in [`RunOutcome::Deadlock`] when tasks exist but none is
//! ready and no timer is pending, or hits its step / virtual-time budget. A task that
//! panics aborts the whole simulation (a panic is a bug in the server or the sim).
//! Determinism hygiene: no `HashMap` iteration, no `std::time::Instant`, no threads.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A task's identity, unique for the life of an executor. Assigned in spawn order.
pub type TaskId = u64;

/// Who a task belongs to. Killing an owner drops all of its tasks (a process crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// The simulation driver itself (fault injection, crash/restart, checkers).
    World,
    /// A simulated client, by client number.
    Client(u32),
    /// A simulated server process, by node number.
    Node(u32),
}

impl Owner {
    /// A compact code for the trace hash: kind in the top byte, number below.
    pub fn code(self) -> u64 {
        match self {
            Owner::World => 0,
            Owner::Client(n) => (1 << 56) | u64::from(n),
            Owner::Node(n) => (2 << 56) | u64::from(n),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::World => f.write_str("world"),
            Owner::Client(n) => write!(f, "client{n}"),
            Owner::Node(n) => write!(f, "node{n}"),
        }
    }
}

/// Well-known RNG stream numbers for [`Executor::rng_stream`]; each component draws from
/// its own ChaCha stream of the run seed so adding draws in one does not shift another.
pub mod stream {
    /// The scheduler's own stream.
    pub const SCHEDULER: u64 = 0;
    /// The world's stream (fault choices, crash times).
    pub const WORLD: u64 = 1;
    /// The network's stream.
    pub const NET: u64 = 2;
    /// Per-node disks: `DISK_BASE + node`.
    pub const DISK_BASE: u64 = 1 << 32;
    /// Per-shard entropy: `ENTROPY_BASE + (node << 24) + (boot << 16) + shard`.
    pub const ENTROPY_BASE: u64 = 2 << 32;
    /// Workload / clients: `CLIENT_BASE + n`.
    pub const CLIENT_BASE: u64 = 3 << 32;
}

/// Executor tuning. All times are virtual.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Smallest virtual time one poll costs, in nanoseconds.
    pub poll_cost_min_ns: u64,
    /// Largest virtual time one poll costs, in nanoseconds (inclusive).
    pub poll_cost_max_ns: u64,
    /// Wall-clock time at virtual time 0, in ms since the Unix epoch.
    pub wall_epoch_ms: u64,
}

impl ExecutorConfig {
    /// The default costs with a wall-clock epoch drawn from `seed` (around Nov 2023).
    pub fn for_seed(seed: u64) -> ExecutorConfig {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream::WORLD + 1000);
        ExecutorConfig {
            poll_cost_min_ns: 1_000,
            poll_cost_max_ns: 20_000,
            wall_epoch_ms: 1_700_000_000_000 + rng.gen_range(0..1_000_000_000),
        }
    }
}

/// Why [`Executor::run_until`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The predicate became true.
    Done,
    /// No task exists any more (and the predicate is still false).
    AllTasksFinished,
    /// Tasks exist, none is ready and no timer is pending: nothing can ever happen again.
    /// Lists the stuck tasks as (id, owner).
    Deadlock {
        /// The tasks that are blocked forever.
        stuck: Vec<(TaskId, Owner)>,
    },
    /// The step budget ran out.
    StepBudget,
    /// Virtual time passed the time budget.
    TimeBudget,
}

/// Budgets for one [`Executor::run_until`] call.
#[derive(Clone, Copy, Debug)]
pub struct RunLimits {
    /// Maximum polls before giving up.
    pub max_steps: u64,
    /// Virtual time (absolute, since 0) after which to give up.
    pub max_time: Duration,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            max_steps: 50_000_000,
            max_time: Duration::from_secs(3600),
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskEntry {
    owner: Owner,
    future: BoxFuture,
    /// Built once at spawn: pushes this task's id into the wake queue.
    waker: Waker,
}

/// Wakers push task ids here. `Arc<Mutex>` only because `Waker` must be `Send + Sync`;
/// everything runs on one thread, so the order of pushes is deterministic.
#[derive(Default)]
struct WakeQueue {
    ids: Mutex<Vec<TaskId>>,
}

struct TaskWaker {
    id: TaskId,
    queue: Arc<WakeQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
    }
}

/// FNV-1a, 64 bit: stable across Rust versions (unlike `DefaultHasher`).
#[derive(Clone, Copy)]
struct TraceHasher(u64);

impl TraceHasher {
    fn new() -> TraceHasher {
        TraceHasher(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

struct Inner {
    seed: u64,
    config: ExecutorConfig,
    now: Cell<Duration>,
    rng: RefCell<ChaCha8Rng>,
    tasks: RefCell<BTreeMap<TaskId, TaskEntry>>,
    next_task: Cell<TaskId>,
    /// Ready tasks in the order they became ready; picked from at random.
    ready: RefCell<Vec<TaskId>>,
    ready_set: RefCell<BTreeSet<TaskId>>,
    wake_queue: Arc<WakeQueue>,
    /// Timers keyed by (deadline, registration number).
    timers: RefCell<BTreeMap<(Duration, u64), Waker>>,
    next_timer: Cell<u64>,
    /// How many times each owner was killed; a task killed while being polled is dropped
    /// after its poll returns.
    kills: RefCell<BTreeMap<Owner, u64>>,
    steps: Cell<u64>,
    trace: Cell<TraceHasher>,
    trace_print: Cell<bool>,
}

/// Handle to the executor; cheap to clone (an `Rc`). Not `Send`: one simulation, one thread.
#[derive(Clone)]
pub struct Executor {
    inner: Rc<Inner>,
}

impl Executor {
    /// A new executor for run `seed` with default costs ([`ExecutorConfig::for_seed`]).
    pub fn new(seed: u64) -> Executor {
        Executor::with_config(seed, ExecutorConfig::for_seed(seed))
    }

    /// A new executor with explicit tuning.
    pub fn with_config(seed: u64, config: ExecutorConfig) -> Executor {
        assert!(
            config.poll_cost_min_ns <= config.poll_cost_max_ns,
            "poll cost range inverted"
        );
        let mut trace = TraceHasher::new();
        trace.u64(seed);
        Executor {
            inner: Rc::new(Inner {
                seed,
                config,
                now: Cell::new(Duration::ZERO),
                rng: RefCell::new(rng_for(seed, stream::SCHEDULER)),
                tasks: RefCell::new(BTreeMap::new()),
                next_task: Cell::new(1),
                ready: RefCell::new(Vec::new()),
                ready_set: RefCell::new(BTreeSet::new()),
                wake_queue: Arc::new(WakeQueue::default()),
                timers: RefCell::new(BTreeMap::new()),
                next_timer: Cell::new(0),
                kills: RefCell::new(BTreeMap::new()),
                steps: Cell::new(0),
                trace: Cell::new(trace),
                trace_print: Cell::new(false),
            }),
        }
    }

    /// The run seed.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// A fresh RNG on stream `stream` of the run seed (see [`stream`] for the numbering).
    pub fn rng_stream(&self, stream: u64) -> ChaCha8Rng {
        rng_for(self.inner.seed, stream)
    }

    /// Virtual monotonic time since the start of the run.
    pub fn now(&self) -> Duration {
        self.inner.now.get()
    }

    /// Wall-clock ms since the Unix epoch: the seeded epoch plus virtual time.
    pub fn wall_clock_ms(&self) -> u64 {
        let ms = u64::try_from(self.now().as_millis()).unwrap_or(u64::MAX);
        self.inner.config.wall_epoch_ms.saturating_add(ms)
    }

    /// Polls taken so far.
    pub fn steps(&self) -> u64 {
        self.inner.steps.get()
    }

    /// Prints every trace event to stdout when `on` (the `--trace` flag).
    pub fn set_trace_print(&self, on: bool) {
        self.inner.trace_print.set(on);
    }

    /// Folds an event into the trace hash (and prints it with `--trace`). `tag` names the
    /// event kind (`"disk.write"`), `a` and `b` are its compact arguments.
    pub fn trace(&self, tag: &str, a: u64, b: u64) {
        let mut h = self.inner.trace.get();
        let now = u64::try_from(self.now().as_nanos()).unwrap_or(u64::MAX);
        h.u64(now);
        h.bytes(tag.as_bytes());
        h.u64(a);
        h.u64(b);
        self.inner.trace.set(h);
        if self.inner.trace_print.get() {
            use std::io::Write as _;
            // A closed stdout (`| head`) must not abort the run.
            let _ = writeln!(std::io::stdout().lock(), "{now:>12}ns {tag} {a:#x} {b:#x}");
        }
    }

    /// The hash of every event so far. Same seed and same code ⇒ same hash.
    pub fn trace_hash(&self) -> u64 {
        self.inner.trace.get().0
    }

    /// Spawns `future` as a task of `owner`; it is ready at once.
    pub fn spawn(&self, owner: Owner, future: impl Future<Output = ()> + 'static) -> TaskId {
        let id = self.inner.next_task.get();
        self.inner.next_task.set(id + 1);
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            queue: self.inner.wake_queue.clone(),
        }));
        let entry = TaskEntry {
            owner,
            future: Box::pin(future),
            waker,
        };
        self.inner.tasks.borrow_mut().insert(id, entry);
        self.make_ready(id);
        self.trace("spawn", id, owner.code());
        id
    }

    /// Number of live tasks of `owner`.
    pub fn task_count(&self, owner: Owner) -> usize {
        self.inner
            .tasks
            .borrow()
            .values()
            .filter(|t| t.owner == owner)
            .count()
    }

    /// Number of live tasks in total.
    pub fn total_tasks(&self) -> usize {
        self.inner.tasks.borrow().len()
    }

    /// Drops every task of `owner` (a process crash: their futures, buffers, listeners
    /// and streams vanish). Safe to call from inside a task. Returns how many were dropped.
    pub fn kill_owner(&self, owner: Owner) -> usize {
        *self.inner.kills.borrow_mut().entry(owner).or_insert(0) += 1;
        let mut dropped = 0;
        // Dropping a future may spawn or kill (destructors); loop until none are left.
        loop {
            let victims: Vec<TaskEntry> = {
                let mut tasks = self.inner.tasks.borrow_mut();
                let ids: Vec<TaskId> = tasks
                    .iter()
                    .filter(|(_, t)| t.owner == owner)
                    .map(|(id, _)| *id)
                    .collect();
                ids.iter().filter_map(|id| tasks.remove(id)).collect()
            };
            if victims.is_empty() {
                break;
            }
            dropped += victims.len();
            drop(victims); // outside the borrow: destructors may call back into us
        }
        self.trace("kill", owner.code(), dropped as u64);
        dropped
    }

    /// A future that completes once virtual time reaches `now + duration`.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep {
            exec: self.clone(),
            deadline: self.now() + duration,
            key: None,
        }
    }

    /// A future that completes once virtual time reaches `deadline`.
    pub fn sleep_until(&self, deadline: Duration) -> Sleep {
        Sleep {
            exec: self.clone(),
            deadline,
            key: None,
        }
    }

    /// Yields once: the task goes back to the ready set and another may run first.
    pub fn yield_now(&self) -> YieldNow {
        YieldNow { yielded: false }
    }

    /// Runs until `done()` is true (checked before every step), a budget runs out, every
    /// task finished, or nothing can ever happen again (deadlock).
    pub fn run_until(&self, limits: RunLimits, mut done: impl FnMut() -> bool) -> RunOutcome {
        let mut steps_here = 0u64;
        loop {
            if done() {
                return RunOutcome::Done;
            }
            if steps_here >= limits.max_steps {
                return RunOutcome::StepBudget;
            }
            if self.now() > limits.max_time {
                return RunOutcome::TimeBudget;
            }
            self.drain_wakes();
            if self.inner.ready.borrow().is_empty() {
                if let Some(outcome) = self.advance_to_next_timer() {
                    return outcome;
                }
                continue;
            }
            self.step();
            steps_here += 1;
        }
    }

    /// Spawns `future` as a task of `owner` and runs until it completes; returns its
    /// output, or the outcome that stopped the run first.
    pub fn block_on<T: 'static>(
        &self,
        owner: Owner,
        limits: RunLimits,
        future: impl Future<Output = T> + 'static,
    ) -> Result<T, RunOutcome> {
        let slot: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let out = slot.clone();
        self.spawn(owner, async move {
            let value = future.await;
            *out.borrow_mut() = Some(value);
        });
        match self.run_until(limits, || slot.borrow().is_some()) {
            RunOutcome::Done => Ok(slot.borrow_mut().take().expect("checked by predicate")),
            other => Err(other),
        }
    }

    fn make_ready(&self, id: TaskId) {
        if self.inner.ready_set.borrow_mut().insert(id) {
            self.inner.ready.borrow_mut().push(id);
        }
    }

    fn drain_wakes(&self) {
        let ids = std::mem::take(
            &mut *self
                .inner
                .wake_queue
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for id in ids {
            if self.inner.tasks.borrow().contains_key(&id) {
                self.make_ready(id);
            }
        }
    }

    /// Nothing is ready: jump to the next timer, or report why the run cannot go on.
    fn advance_to_next_timer(&self) -> Option<RunOutcome> {
        let next = self
            .inner
            .timers
            .borrow()
            .keys()
            .next()
            .map(|(deadline, _)| *deadline);
        match next {
            Some(deadline) => {
                if deadline > self.now() {
                    self.inner.now.set(deadline);
                }
                self.fire_due_timers();
                None
            }
            None => {
                let tasks = self.inner.tasks.borrow();
                if tasks.is_empty() {
                    Some(RunOutcome::AllTasksFinished)
                } else {
                    let stuck = tasks.iter().map(|(id, t)| (*id, t.owner)).collect();
                    Some(RunOutcome::Deadlock { stuck })
                }
            }
        }
    }

    fn fire_due_timers(&self) {
        let now = self.now();
        let due: Vec<((Duration, u64), Waker)> = {
            let mut timers = self.inner.timers.borrow_mut();
            let later = timers.split_off(&(now + Duration::from_nanos(1), 0));
            std::mem::replace(&mut *timers, later).into_iter().collect()
        };
        for ((deadline, seq), waker) in due {
            self.trace(
                "timer",
                u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX),
                seq,
            );
            waker.wake();
        }
    }

    /// Polls one random ready task, then charges the poll's virtual cost.
    fn step(&self) {
        let id = {
            let mut ready = self.inner.ready.borrow_mut();
            let index = self.inner.rng.borrow_mut().gen_range(0..ready.len());
            ready.swap_remove(index)
        };
        self.inner.ready_set.borrow_mut().remove(&id);
        let entry = self.inner.tasks.borrow_mut().remove(&id);
        let Some(mut entry) = entry else { return };
        let kills_before = self.kill_count(entry.owner);
        self.inner.steps.set(self.inner.steps.get() + 1);
        self.trace("poll", id, entry.owner.code());
        let waker = entry.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let poll = entry.future.as_mut().poll(&mut cx);
        let killed_meanwhile = self.kill_count(entry.owner) != kills_before;
        match poll {
            Poll::Pending if !killed_meanwhile => {
                self.inner.tasks.borrow_mut().insert(id, entry);
            }
            Poll::Pending => drop(entry),
            Poll::Ready(()) => {
                drop(entry);
                self.trace("done", id, 0);
            }
        }
        let cost = {
            let c = &self.inner.config;
            self.inner
                .rng
                .borrow_mut()
                .gen_range(c.poll_cost_min_ns..=c.poll_cost_max_ns)
        };
        self.inner.now.set(self.now() + Duration::from_nanos(cost));
        self.fire_due_timers();
    }

    fn kill_count(&self, owner: Owner) -> u64 {
        self.inner.kills.borrow().get(&owner).copied().unwrap_or(0)
    }

    fn register_timer(
        &self,
        deadline: Duration,
        key: Option<(Duration, u64)>,
        waker: &Waker,
    ) -> (Duration, u64) {
        let mut timers = self.inner.timers.borrow_mut();
        if let Some(key) = key {
            if let Some(existing) = timers.get_mut(&key) {
                if !existing.will_wake(waker) {
                    *existing = waker.clone();
                }
                return key;
            }
        }
        let seq = self.inner.next_timer.get();
        self.inner.next_timer.set(seq + 1);
        timers.insert((deadline, seq), waker.clone());
        (deadline, seq)
    }

    fn cancel_timer(&self, key: (Duration, u64)) {
        self.inner.timers.borrow_mut().remove(&key);
    }
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The future returned by [`Executor::sleep`]: completes at its virtual deadline.
/// Dropping it cancels the timer.
pub struct Sleep {
    exec: Executor,
    deadline: Duration,
    key: Option<(Duration, u64)>,
}

impl Sleep {
    /// The virtual time at which this sleep completes.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.exec.now() >= self.deadline {
            if let Some(key) = self.key.take() {
                self.exec.cancel_timer(key);
            }
            return Poll::Ready(());
        }
        let key = self
            .exec
            .register_timer(self.deadline, self.key, cx.waker());
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.exec.cancel_timer(key);
        }
    }
}

/// The future returned by [`Executor::yield_now`].
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
