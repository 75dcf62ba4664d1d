//! The world: one seed = one run of the REAL tidemark server (`tidemark::server::run_shard`,
//! one task per shard on [`SimIo`]) under faults, crashes and a checked workload.
//!
//! Per seed (swarm testing) the world draws a [`Plan`]: shard count (1–4), `appendfsync`
//! (`always` on most seeds, else `everysec`), which crash kinds are enabled, disk and
//! network fault rates (`FaultConfig::draw`), sometimes a tiny `cross_shard_queue_len`
//! (backpressure), 3–8 clients, a virtual duration of 5–15 s and 1–3 crash instants.
//! At each crash instant it closes the clients' gate, crashes the node (process crash or
//! machine crash), keeps it down a while, boots a fresh `Node` (next `boot`), and — before
//! clients may resume — reads every key the model knows and checks it (`check.rs`). At the
//! end it stops the clients, checks the live node, then crashes and checks once more.
//!
//! Loss window: under `everysec` a machine crash may lose the writes of the last
//! `EVERYSEC_LOSS_WINDOW` (plus the stall length when fsync stalls are on); keys written in
//! that window are forgiven. After any error reply in a boot under `everysec` (the AOF may
//! have latched: its last second never reached the platter) every key written in that boot
//! is forgiven by a machine crash. A process crash keeps the page cache: nothing
//! acknowledged may be lost, in any mode.
//!
//! Full fault model (`RunOptions::faults`, CLI `--faults full`): `FaultConfig::draw_full`
//! (read bit flips, latency spikes, misdirected writes, crash-filled appends) and network
//! partitions (see `partitions` and `client.rs`). A refused boot during which a read bit
//! flip was injected is retried (the flip is transient). After a machine crash that left
//! fsynced data damaged by a misdirected write (the disk verifies it:
//! `disk.fault.fsynced_damage`), a corruption refusal ends the run as
//! [`RunReport::refused_correctly`] and a lost acknowledged write as
//! [`RunReport::device_lost`]: ended early, not failed, never silent.
//!
//! What can fail here: the run's [`RunReport::failure`] — a model violation (wrong reply,
//! lost acknowledged write, double-applied INCR, invented value), a start-up refusal, a
//! stuck client or node, a deadlock or a budget overrun. Every message names the seed and
//! ends with the command that reproduces it.

pub mod client;
pub mod conn;
pub mod lin;
mod node;
pub mod plan;
mod probe;

use node::NodeCtl;
pub use plan::{CrashKind, CrashKinds, FaultModel, Plan, RunOptions};

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tidemark::server::config::{Config, FsyncPolicy};

use crate::check::{check_keys, read_keys};
use crate::disk::SimDisk;
use crate::executor::{stream, Executor, Owner, RunLimits};
use crate::linearizability::tidemark_models::Strings;
use crate::linearizability::Recorder;
use crate::model::{Model, Reply};
use crate::net::SimNet;
use crate::workload::Command;

/// The simulated server's node number.
pub const NODE: u32 = 1;
/// The port it listens on.
pub const PORT: u16 = 6379;
/// Under `everysec`, a machine crash may lose acknowledged writes this recent.
pub const EVERYSEC_LOSS_WINDOW: Duration = Duration::from_secs(2);
/// Longest a boot may take (recovery included) before the node counts as stuck.
pub const BOOT_DEADLINE: Duration = Duration::from_secs(60);
/// Longest the world waits for clients to settle their in-flight pipelines.
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(300);
/// Boots refused in a row for an IO error before the refusal fails the run. A refusal
/// caused by an injected transient fault (EIO, short write while writing the header) is
/// retried like a supervisor restarting the process; corruption is never retried.
pub const BOOT_ATTEMPTS_MAX: u32 = 5;
/// Boots refused in a row while a read bit flip was injected during their recovery before
/// the refusal fails the run (each flip is transient: the next read is clean).
pub const FLIP_BOOT_ATTEMPTS_MAX: u32 = 20;
/// Step budget of one run (a safety net; a healthy run takes far fewer).
pub const RUN_STEPS_MAX: u64 = 100_000_000;

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// `None` when every check passed; otherwise what failed, ending with the
    /// reproduction command.
    pub failure: Option<String>,
    /// Commands whose reply was checked against the model.
    pub ops_acked: u64,
    /// Commands with an unknown outcome (error reply, reset, crash).
    pub ops_uncertain: u64,
    /// Process crashes injected.
    pub process_crashes: u32,
    /// Machine crashes injected.
    pub machine_crashes: u32,
    /// Keys compared with the model by the checkers (all checks summed).
    pub keys_checked: u64,
    /// Keys forgiven (everysec loss window).
    pub keys_forgiven: u64,
    /// The executor's trace hash at the end.
    pub trace_hash: u64,
    /// Virtual time at the end.
    pub virtual_time: Duration,
    /// Executor polls.
    pub steps: u64,
    /// Shards of the node.
    pub shards: u16,
    /// `appendfsync` of the run.
    pub appendfsync: FsyncPolicy,
    /// Clients of the run.
    pub clients: u32,
    /// Boots refused for an injected IO error and retried.
    pub boot_retries: u32,
    /// The drawn plan (faults, crash instants), for humans.
    pub plan: String,
    /// Operations on shared keys recorded for the linearizability check.
    pub lin_ops: u64,
    /// Operations in the checked shared-key histories (after cuts; pending reads dropped).
    pub lin_ops_checked: u64,
    /// Shared keys whose linearizability check ran out of budget (`Verdict::Unknown`).
    pub lin_unknown_keys: u64,
    /// False when the linearizability check was skipped (`everysec` with a machine crash
    /// while clients ran, or a device that destroyed fsynced data: acknowledged writes may
    /// be lost, see docs/simulation.md).
    pub lin_checked: bool,
    /// The run ended early, correctly: start-up refused with a corruption error after a
    /// machine crash exposed fsynced data that an injected misdirected write destroyed
    /// (verified by the simulator: `disk.fault.fsynced_damage`). Not a failure.
    pub refused_correctly: Option<String>,
    /// The run ended early because acknowledged writes were lost to fsynced data an
    /// injected misdirected write destroyed (verified, as above) and the server could not
    /// tell that loss from a torn tail. Not a failure, but never silent: counted and
    /// printed by the sweep.
    pub device_lost: Option<String>,
    /// Boots refused while a read bit flip (transient: the platter is fine) was injected
    /// during their recovery, and retried.
    pub read_flip_retries: u32,
    /// Network partitions injected.
    pub partitions: u32,
    /// Client requests abandoned after `client::CLIENT_TIMEOUT` during a partition.
    pub client_timeouts: u64,
    /// Injected disk faults of the kinds only the full model draws: read bit flips,
    /// misdirected writes, files with fsynced data damaged by a machine crash.
    pub read_bitflips: u64,
    /// See `read_bitflips`.
    pub misdirected_writes: u64,
    /// See `read_bitflips`.
    pub fsynced_damage: u64,
}

impl RunReport {
    /// True when the run passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// True when the run ended early but correctly (see `refused_correctly`, `device_lost`).
    pub fn ended_by_corruption(&self) -> bool {
        self.refused_correctly.is_some() || self.device_lost.is_some()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} shards={} appendfsync={} clients={} acked={} uncertain={} crashes(process={} machine={}) boot_retries={} checked={} forgiven={} lin_ops={} lin_ops_checked={} lin_unknown_keys={} lin_checked={} steps={} virtual={:.3}s trace={:016x}",
            self.seed,
            self.shards,
            self.appendfsync.as_str(),
            self.clients,
            self.ops_acked,
            self.ops_uncertain,
            self.process_crashes,
            self.machine_crashes,
            self.boot_retries,
            self.keys_checked,
            self.keys_forgiven,
            self.lin_ops,
            self.lin_ops_checked,
            self.lin_unknown_keys,
            self.lin_checked,
            self.steps,
            self.virtual_time.as_secs_f64(),
            self.trace_hash
        )?;
        if self.read_bitflips + self.misdirected_writes + u64::from(self.partitions) > 0 {
            write!(
                f,
                " read_bitflips={} read_flip_retries={} misdirected_writes={} fsynced_damage={} partitions={} client_timeouts={}",
                self.read_bitflips,
                self.read_flip_retries,
                self.misdirected_writes,
                self.fsynced_damage,
                self.partitions,
                self.client_timeouts
            )?;
        }
        if let Some(why) = &self.refused_correctly {
            write!(f, "\n  refused start-up, correctly: {why}")?;
        }
        if let Some(why) = &self.device_lost {
            write!(f, "\n  acknowledged writes destroyed by the device: {why}")?;
        }
        Ok(())
    }
}

/// State shared by the world task and the clients (one thread).
pub struct Shared {
    exec: Executor,
    net: SimNet,
    addr: String,
    seed: u64,
    repro: String,
    model: RefCell<Model>,
    /// The node is up and checked: clients may connect.
    up: Cell<bool>,
    /// Crashes so far.
    crashes: Cell<u64>,
    /// Clients must stop after their current pipeline.
    stopping: Cell<bool>,
    clients_running: Cell<u32>,
    /// Clients with a pipeline in flight.
    busy: Cell<u32>,
    failure: RefCell<Option<String>>,
    acked: Cell<u64>,
    uncertain: Cell<u64>,
    /// Virtual time each key's last write was settled (acked or uncertain).
    last_write: RefCell<BTreeMap<Vec<u8>, Duration>>,
    boot_started: Cell<Duration>,
    /// An error reply was seen in this boot.
    degraded: Cell<bool>,
    /// Clients may send pipelines (socket buffers are large enough).
    pipelines: bool,
    /// The history of the shared keys (`workload::is_shared_key`).
    lin: RefCell<Recorder<Strings>>,
    /// Test-only defect: client `lin::STALE_READ_CLIENT` answers GETs of shared keys from
    /// its own earlier replies.
    stale_read_defect: bool,
    /// That client's earlier GET replies, by key.
    stale_cache: RefCell<BTreeMap<Vec<u8>, Reply>>,
    /// A machine crash hit a run under `everysec` while clients ran.
    lossy_crash: Cell<bool>,
    /// Per recorded shared-key operation (`OpId` index): the crash count when it completed.
    lin_boot: RefCell<Vec<Option<u64>>>,
    /// Crash counts (boots) in which some command got an error reply.
    lin_degraded_boots: RefCell<BTreeSet<u64>>,
    /// Test-only defect: `RunOptions::reply_before_apply_defect`.
    reply_before_apply_defect: bool,
    /// The plan has network partitions: clients give up on a request after
    /// `client::CLIENT_TIMEOUT` when a partition overlapped it.
    partitions_on: bool,
    /// Partitions started so far (clients compare it to see whether one overlapped).
    partition_epoch: Cell<u64>,
    /// Requests clients abandoned because of a partition.
    client_timeouts: Cell<u64>,
    /// Why the run ended early but correctly (corruption verified, see `RunReport`).
    refused_correctly: RefCell<Option<String>>,
    /// See `RunReport::device_lost`.
    device_lost: RefCell<Option<String>>,
    /// A machine crash damaged fsynced data (verified by the disk) and no check has
    /// passed since: a start-up refusal for corruption or a lost write is explained.
    damage_exposed: Cell<bool>,
    /// Some crash of the run damaged fsynced data: the linearizability check is skipped.
    damage_seen: Cell<bool>,
}

impl Shared {
    fn failed(&self) -> bool {
        self.failure.borrow().is_some()
    }

    /// The run ended early and correctly (see `RunReport::ended_by_corruption`).
    fn ended(&self) -> bool {
        self.refused_correctly.borrow().is_some() || self.device_lost.borrow().is_some()
    }

    /// Records the first failure of the run (later ones are consequences).
    fn fail(&self, what: &str) {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(format!(
                "seed {}: {what}\n  reproduce: {}",
                self.seed, self.repro
            ));
            self.exec.trace("world.fail", self.seed, 0);
        }
    }

    fn note_writes(&self, cmd: &Command) {
        let now = self.exec.now();
        let mut last = self.last_write.borrow_mut();
        for key in cmd.written_keys() {
            last.insert(key, now);
        }
    }

    fn note_acked(&self, cmd: &Command) {
        self.acked.set(self.acked.get() + 1);
        self.note_writes(cmd);
    }

    fn note_error_reply(&self, cmd: &Command, _text: &str) {
        self.uncertain.set(self.uncertain.get() + 1);
        self.degraded.set(true);
        self.lin_degraded_boots
            .borrow_mut()
            .insert(self.crashes.get());
        self.note_writes(cmd);
    }

    fn settle_uncertain(&self, cmd: &Command) {
        cmd.uncertain(&mut self.model.borrow_mut());
        self.uncertain.set(self.uncertain.get() + 1);
        self.note_writes(cmd);
    }
}

struct World {
    shared: Rc<Shared>,
    node: NodeCtl,
    plan: Plan,
    rng: RefCell<ChaCha8Rng>,
    process_crashes: Cell<u32>,
    machine_crashes: Cell<u32>,
    keys_checked: Cell<u64>,
    keys_forgiven: Cell<u64>,
    done: Cell<bool>,
    /// `RunOptions::disk_stall_ms`.
    disk_stall_ms: Option<u64>,
    /// `RunOptions::durability_probe`.
    durability_probe: bool,
}

impl World {
    async fn run(self: Rc<World>) {
        if let Err(e) = self.node.provision().await {
            self.shared.fail(&e);
            return;
        }
        if let Err(e) = self.node.boot(&self.shared).await {
            self.end_or_fail(&e);
            return;
        }
        self.shared.boot_started.set(self.shared.exec.now());
        if self.durability_probe {
            probe::write_probe(&self.shared, self.node.boot.get()).await;
        }
        self.shared.up.set(true);
        if !self.plan.partitions.is_empty() {
            let exec = self.shared.exec.clone();
            exec.spawn(Owner::World, self.clone().partitions());
        }
        let crashes = self.plan.crashes.clone();
        for (i, (at, kind, down)) in crashes.into_iter().enumerate() {
            self.shared.exec.sleep_until(at).await;
            if self.shared.failed() {
                return;
            }
            let context = format!("check after crash {} ({kind:?} crash at {at:?})", i + 1);
            if let Err(e) = self.crash_and_recover(kind, down, &context).await {
                self.end_or_fail(&e);
                return;
            }
        }
        let mut end = self.plan.duration;
        if let Some(ms) = self.disk_stall_ms {
            let exec = &self.shared.exec;
            let until = exec.now() + Duration::from_millis(ms);
            self.node.disk.stall_until(until);
            end = end.max(until);
        }
        self.shared.exec.sleep_until(end).await;
        self.shared.stopping.set(true);
        if let Err(e) = self.wait_clients_stopped().await {
            self.shared.fail(&e);
            return;
        }
        self.node.net.set_partitioned(NODE, false);
        if let Err(e) = self
            .check(&BTreeSet::new(), true, "final check of the live node")
            .await
        {
            self.shared.fail(&e);
            return;
        }
        let kind = self.plan.final_crash;
        let context = format!("final check after a {kind:?} crash");
        let down = Duration::from_millis(10);
        if let Err(e) = self.crash_and_recover(kind, down, &context).await {
            self.end_or_fail(&e);
            return;
        }
        self.done.set(true);
    }

    /// Ends the run on `error`: done when the run ended correctly (a verified corruption
    /// outcome, see `RunReport::ended_by_corruption`), failed otherwise.
    fn end_or_fail(&self, error: &str) {
        if self.shared.ended() && !self.shared.failed() {
            self.shared.stopping.set(true);
            self.done.set(true);
        } else {
            self.shared.fail(error);
        }
    }

    /// The plan's network partitions: each starts only while the node is up and the
    /// clients run, cuts the node off from every client for its length, then heals (a
    /// crash heals it earlier: see `crash_and_recover`).
    async fn partitions(self: Rc<World>) {
        let shared = &self.shared;
        for (at, len) in self.plan.partitions.clone() {
            shared.exec.sleep_until(at).await;
            if !shared.up.get() || shared.stopping.get() || shared.failed() {
                continue;
            }
            shared.partition_epoch.set(shared.partition_epoch.get() + 1);
            self.node.net.set_partitioned(NODE, true);
            shared.exec.sleep(len).await;
            self.node.net.set_partitioned(NODE, false);
        }
    }

    /// Crashes the node, keeps it down for `down`, boots it again and checks every key.
    async fn crash_and_recover(
        &self,
        kind: CrashKind,
        down: Duration,
        context: &str,
    ) -> Result<(), String> {
        let shared = &self.shared;
        let exec = &shared.exec;
        shared.up.set(false);
        self.node.net.set_partitioned(NODE, false);
        shared.crashes.set(shared.crashes.get() + 1);
        let crash_at = exec.now();
        match kind {
            CrashKind::Process => {
                self.process_crashes.set(self.process_crashes.get() + 1);
                crate::crash_process(exec, &self.node.net, &self.node.disk);
            }
            CrashKind::Machine => {
                self.machine_crashes.set(self.machine_crashes.get() + 1);
                if self.plan.appendfsync != FsyncPolicy::Always {
                    shared.lossy_crash.set(true);
                }
                crate::crash_machine(
                    exec,
                    &self.node.net,
                    &self.node.disk,
                    &mut *self.rng.borrow_mut(),
                );
            }
        }
        exec.trace("world.crash", kind as u64, shared.crashes.get());
        exec.sleep(down).await;
        self.wait_clients_settled().await?;
        let forgiven = self.forgiven(kind, crash_at);
        self.node.boot.set(self.node.boot.get() + 1);
        self.node.boot(shared).await?;
        if let Err(e) = self.check(&forgiven, false, context).await {
            if shared.damage_exposed.get() && !shared.failed() {
                let misdirected = self.node.fault_count("disk.fault.misdirected_write");
                shared.device_lost.replace(Some(format!(
                    "{e} [verified: the machine crash left fsynced data damaged by {misdirected} injected misdirected write(s); the server cannot tell that loss from a torn tail]"
                )));
                exec.trace("world.device_lost", u64::from(self.node.boot.get()), 0);
            }
            return Err(e);
        }
        shared.damage_exposed.set(false);
        shared.boot_started.set(exec.now());
        shared.degraded.set(false);
        if self.durability_probe {
            probe::write_probe(shared, self.node.boot.get()).await;
        }
        shared.up.set(true);
        Ok(())
    }

    /// Keys a crash of `kind` at `crash_at` may lose without a violation.
    fn forgiven(&self, kind: CrashKind, crash_at: Duration) -> BTreeSet<Vec<u8>> {
        if kind == CrashKind::Process || self.plan.appendfsync == FsyncPolicy::Always {
            return BTreeSet::new();
        }
        let disk = &self.plan.faults.disk;
        let mut window = EVERYSEC_LOSS_WINDOW;
        if disk.stall_rate > 0.0 {
            window += Duration::from_millis(disk.stall_ms);
        }
        let mut since = crash_at.saturating_sub(window);
        if self.plan.appendfsync == FsyncPolicy::No {
            // `appendfsync no`: the OS decides when pages reach the disk, so a machine
            // crash may lose any write (the recovered state is still a prefix per shard).
            since = Duration::ZERO;
        }
        if self.shared.degraded.get() {
            since = since.min(self.shared.boot_started.get());
        }
        self.shared
            .last_write
            .borrow()
            .iter()
            .filter(|(_, at)| **at >= since)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Waits until no client has a pipeline in flight (their connections were reset).
    async fn wait_clients_settled(&self) -> Result<(), String> {
        let exec = &self.shared.exec;
        let deadline = exec.now() + SETTLE_DEADLINE;
        while self.shared.busy.get() > 0 {
            if exec.now() > deadline || self.shared.failed() {
                return Err(format!(
                    "{} client(s) still waiting for replies {SETTLE_DEADLINE:?} after a crash",
                    self.shared.busy.get()
                ));
            }
            exec.sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    async fn wait_clients_stopped(&self) -> Result<(), String> {
        let exec = &self.shared.exec;
        let deadline = exec.now() + SETTLE_DEADLINE;
        while self.shared.clients_running.get() > 0 {
            if exec.now() > deadline || self.shared.failed() {
                return Err(format!(
                    "{} client(s) did not stop within {SETTLE_DEADLINE:?}",
                    self.shared.clients_running.get()
                ));
            }
            exec.sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Reads every key the model knows and holds it against the model.
    async fn check(
        &self,
        forgiven: &BTreeSet<Vec<u8>>,
        live: bool,
        context: &str,
    ) -> Result<(), String> {
        let shared = &self.shared;
        let keys = shared.model.borrow().keys();
        let pipeline_keys = if shared.pipelines {
            crate::check::CHECK_PIPELINE_KEYS
        } else {
            1
        };
        let values = read_keys(
            &shared.exec,
            &shared.net,
            &shared.addr,
            &keys,
            pipeline_keys,
        )
        .await
        .map_err(|e| format!("{context}: {e}"))?;
        let stats = check_keys(
            &mut shared.model.borrow_mut(),
            &keys,
            values,
            forgiven,
            live,
            context,
        )?;
        self.keys_checked
            .set(self.keys_checked.get() + stats.checked);
        self.keys_forgiven
            .set(self.keys_forgiven.get() + stats.forgiven);
        shared
            .exec
            .trace("world.check", stats.checked, stats.forgiven);
        Ok(())
    }
}

/// The server configuration of a run.
fn server_config(plan: &Plan, opts: &RunOptions) -> Config {
    Config {
        port: PORT,
        dir: PathBuf::from("/data"),
        appendonly: true,
        appendfsync: plan.appendfsync,
        aof_fsync_timeout_ms: 1_000,
        shards: plan.shards,
        cross_shard_timeout_ms: 2_000,
        cross_shard_queue_len: plan.cross_shard_queue_len,
        save: Vec::new(),
        defects: opts.defects.clone(),
        ..Config::default()
    }
}

/// Runs seed `seed` with `opts`: draws the plan, runs the real server under it with the
/// workload and the checkers, and reports.
pub fn run_seed(seed: u64, opts: &RunOptions) -> RunReport {
    let exec = Executor::new(seed);
    exec.set_trace_print(opts.trace);
    let mut rng = exec.rng_stream(stream::WORLD);
    let plan = Plan::draw(&mut rng, opts);
    let config = server_config(&plan, opts);
    let disk = SimDisk::new(&exec, NODE, plan.faults.disk.clone());
    let net = SimNet::new(&exec, plan.faults.net.clone());
    let shared = Rc::new(Shared {
        exec: exec.clone(),
        net: net.clone(),
        addr: SimNet::node_addr(NODE, PORT),
        seed,
        repro: opts.repro_command(seed),
        model: RefCell::new(Model::new()),
        up: Cell::new(false),
        crashes: Cell::new(0),
        stopping: Cell::new(false),
        clients_running: Cell::new(plan.clients),
        busy: Cell::new(0),
        failure: RefCell::new(None),
        acked: Cell::new(0),
        uncertain: Cell::new(0),
        last_write: RefCell::new(BTreeMap::new()),
        boot_started: Cell::new(Duration::ZERO),
        degraded: Cell::new(false),
        pipelines: plan.faults.net.pipe_capacity_bytes >= client::PIPELINE_PIPE_BYTES_MIN,
        lin: RefCell::new(Recorder::new()),
        stale_read_defect: opts.stale_read_defect,
        stale_cache: RefCell::new(BTreeMap::new()),
        lossy_crash: Cell::new(false),
        lin_boot: RefCell::new(Vec::new()),
        lin_degraded_boots: RefCell::new(BTreeSet::new()),
        reply_before_apply_defect: opts.reply_before_apply_defect,
        partitions_on: !plan.partitions.is_empty(),
        partition_epoch: Cell::new(0),
        client_timeouts: Cell::new(0),
        refused_correctly: RefCell::new(None),
        device_lost: RefCell::new(None),
        damage_exposed: Cell::new(false),
        damage_seen: Cell::new(false),
    });
    let world = Rc::new(World {
        shared: shared.clone(),
        node: NodeCtl {
            exec: exec.clone(),
            disk,
            net,
            config,
            boot: Cell::new(0),
            start_error: Rc::new(RefCell::new(None)),
            boot_retries: Cell::new(0),
            retry_by_machine_crash: plan.faults.disk.fsync_eio_rate > 0.0
                && plan.crash_kinds != CrashKinds::Process
                && !opts.fsync_eio_with_mixed_crashes,
            retry_rng: RefCell::new(exec.rng_stream(stream::WORLD + 7)),
            read_flip_retries: Cell::new(0),
            damage_count_seen: Cell::new(0),
        },
        plan: plan.clone(),
        rng: RefCell::new(rng),
        process_crashes: Cell::new(0),
        machine_crashes: Cell::new(0),
        keys_checked: Cell::new(0),
        keys_forgiven: Cell::new(0),
        done: Cell::new(false),
        disk_stall_ms: opts.disk_stall_ms,
        durability_probe: opts.durability_probe,
    });
    for id in 0..plan.clients {
        exec.spawn(Owner::Client(id), client::client_task(shared.clone(), id));
    }
    exec.spawn(Owner::World, world.clone().run());
    let limits = RunLimits {
        max_steps: RUN_STEPS_MAX,
        max_time: plan.duration + Duration::from_secs(3600),
    };
    let outcome = exec.run_until(limits, || world.done.get() || shared.failed());
    if !world.done.get() && !shared.failed() {
        shared.fail(&format!("the run stopped early: {outcome:?}"));
    }
    // Tasks hold executor handles (an `Rc` cycle): drop them all so nothing leaks.
    exec.kill_owner(Owner::World);
    exec.kill_owner(Owner::Node(NODE));
    for id in 0..plan.clients {
        exec.kill_owner(Owner::Client(id));
    }
    let lossy = shared.lossy_crash.get()
        || shared.damage_seen.get()
        || (world.node.retry_by_machine_crash
            && world.node.boot_retries.get() > 0
            && plan.appendfsync != FsyncPolicy::Always);
    let lin = if shared.failed() {
        lin::LinSummary::default()
    } else {
        lin::check_shared(&shared, lossy)
    };
    let failure = shared.failure.borrow().clone();
    let refused_correctly = shared.refused_correctly.borrow().clone();
    let device_lost = shared.device_lost.borrow().clone();
    let counts = world.node.disk.fault_counts();
    let count = |tag: &str| counts.get(tag).copied().unwrap_or(0);
    RunReport {
        seed,
        failure,
        ops_acked: shared.acked.get(),
        ops_uncertain: shared.uncertain.get(),
        process_crashes: world.process_crashes.get(),
        machine_crashes: world.machine_crashes.get(),
        keys_checked: world.keys_checked.get(),
        keys_forgiven: world.keys_forgiven.get(),
        trace_hash: exec.trace_hash(),
        virtual_time: exec.now(),
        steps: exec.steps(),
        shards: plan.shards,
        appendfsync: plan.appendfsync,
        clients: plan.clients,
        boot_retries: world.node.boot_retries.get(),
        plan: format!("{plan:?}"),
        lin_ops: lin.ops,
        lin_ops_checked: lin.checked_ops,
        lin_unknown_keys: lin.unknown_keys,
        lin_checked: lin.checked,
        refused_correctly,
        device_lost,
        read_flip_retries: world.node.read_flip_retries.get(),
        partitions: u32::try_from(shared.partition_epoch.get()).unwrap_or(u32::MAX),
        client_timeouts: shared.client_timeouts.get(),
        read_bitflips: count("disk.fault.read_bitflip"),
        misdirected_writes: count("disk.fault.misdirected_write"),
        fsynced_damage: count("disk.fault.fsynced_damage"),
    }
}
