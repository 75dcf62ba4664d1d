//! Crash-point enumeration of the REAL persistence protocols (issue 3): the tidemark
//! server (`tidemark::server::run_shard`, 2 shards on `SimIo`, `appendfsync always`) is
//! driven through a protocol section by simulated clients over the simulated network, the
//! disk is frozen right after each mutating op of the section (write, fsync, set_len,
//! rename, remove, sync_dir, mkdir, creating open), the node is crashed — one process
//! crash and [`MACHINE_DRAWS`] machine crashes per point (see `tidemark_sim::crashpoints`:
//! draws 0-3 are the extremes lose-all / keep-all / names-only / data-only, 4.. random
//! subsets with torn sectors) — and restarted. The check:
//! - start-up never refuses (every state here is one a correct protocol can produce);
//! - every acknowledged write is present and none is applied twice: INCR counters lie in
//!   [acknowledged, attempted], APPEND strings are exactly the first m tokens with m in
//!   [acknowledged, attempted] (a mix of generations double-applies or loses some);
//! - RDB: the dump loaded is exactly the old or the new snapshot (the new one once the
//!   save was reported done), never a mix;
//! - AOF: a write acknowledged after the restart survives a further power loss (the
//!   recovered log is durable and appends continue it correctly: predecessor bug 3,
//!   limitation C).
//!
//! Protocols: (a) BGREWRITEAOF with writes before and during it, (b) the first boot
//! (manifest creation, generation 1) with its first writes, (c) BGSAVE and SAVE (RDB
//! temp + fsync + rename + dir fsync), (d) a rewrite aborted after the switch (shard 1's
//! base write fails). CI runs one seed per protocol; the full set (more seeds) is
//! `#[ignore]`d: `cargo nextest run -p tidemark-sim --test rewrite_crashpoints
//! --run-ignored only`.
//!
//! What can fail here: a check (the failure text names the seed, crash point, crash
//! kind, and the command that reproduces it), or the enumeration itself (a scenario that
//! does not finish or is not deterministic).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tidemark::io::Disk as _;
use tidemark::resp::Frame;
use tidemark::server::config::{Config, Defects, FsyncPolicy};
use tidemark::server::{run_shard, Node};
use tidemark_sim::crashpoints::{CrashPoint, EnumReport, Enumeration, SimRun};
use tidemark_sim::disk::SimDisk;
use tidemark_sim::executor::{Executor, Owner, RunLimits};
use tidemark_sim::faults::{DiskFaults, NetFaults};
use tidemark_sim::io::SimIo;
use tidemark_sim::net::SimNet;
use tidemark_sim::world::conn::RespConn;

const NODE: u32 = 1;
const PORT: u16 = 6379;
const SHARDS: u16 = 2;
/// Machine crashes per crash point: the 4 extremes and 2 random draws.
const MACHINE_DRAWS: u32 = 6;
/// Machine crashes per crash point in the full (ignored) enumeration.
const MACHINE_DRAWS_FULL: u32 = 12;
/// Concurrent writing clients.
const WRITERS: u32 = 2;
/// Write steps (one INCR + one APPEND) per writer before the section.
const PRE_STEPS: u64 = 3;
/// Write steps per writer during the section.
const DURING_STEPS: u64 = 3;
/// Keys each writer alternates between (per kind), so both shards get writes.
const KEYS_PER_WRITER: u64 = 2;
/// Virtual-time bound on one client request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys written after the restart and checked after a further power loss.
const POST_KEYS: [&str; 4] = ["post:a", "post:b", "post:c", "post:d"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// (a) BGREWRITEAOF across both shards, writes before and during it.
    Rewrite,
    /// (b) The first boot: manifest creation (generation 1) and the first writes.
    FirstBoot,
    /// (c) BGSAVE (background RDB save), AOF off.
    Bgsave,
    /// (c) SAVE (foreground RDB save), AOF off.
    Save,
    /// (d) BGREWRITEAOF aborted after the switch (shard 1's base write fails).
    AbortedRewrite,
}

impl Protocol {
    fn aof(self) -> bool {
        !matches!(self, Protocol::Bgsave | Protocol::Save)
    }
}

/// What the clients did: per key (acknowledged, attempted) writes, and the RDB states.
#[derive(Clone, Debug, Default)]
struct Model {
    counters: BTreeMap<String, (u64, u64)>,
    appends: BTreeMap<String, (u64, u64)>,
    /// The keyspace saved before the section (RDB protocols).
    rdb_old: BTreeMap<String, Option<String>>,
    /// The keyspace the section's save writes.
    rdb_new: BTreeMap<String, Option<String>>,
    /// The section's save was reported successful.
    save_acked: bool,
}

fn tokens(n: u64) -> String {
    (1..=n).map(|t| format!("t{t};")).collect()
}

impl Model {
    /// The keyspace if every attempted write was acknowledged (RDB protocols: they are).
    fn expected(&self) -> BTreeMap<String, Option<String>> {
        let counters = self.counters.iter().map(|(k, (acked, _))| {
            let v = (*acked > 0).then(|| acked.to_string());
            (k.clone(), v)
        });
        let appends = self
            .appends
            .iter()
            .map(|(k, (acked, _))| (k.clone(), (*acked > 0).then(|| tokens(*acked))));
        counters.chain(appends).collect()
    }
}

fn config(protocol: Protocol, defects: &Defects) -> Config {
    Config {
        port: PORT,
        dir: PathBuf::from("/data"),
        appendonly: protocol.aof(),
        appendfsync: FsyncPolicy::Always,
        aof_fsync_timeout_ms: 1_000,
        shards: SHARDS,
        save: Vec::new(),
        auto_aof_rewrite_percentage: 0,
        defects: defects.clone(),
        ..Config::default()
    }
}

fn limits() -> RunLimits {
    RunLimits {
        max_steps: 20_000_000,
        max_time: Duration::from_secs(3_000),
    }
}

/// The node's world: executor, disk, network, server config.
#[derive(Clone)]
struct Ctx {
    exec: Executor,
    disk: SimDisk,
    net: SimNet,
    config: Config,
}

impl Ctx {
    /// Starts life `boot` of the node (one task per shard); start-up errors land in the
    /// returned slot.
    fn start_node(&self, boot: u32) -> (Arc<Node>, Rc<RefCell<Option<String>>>) {
        let node = Node::new(self.config.clone());
        let errors: Rc<RefCell<Option<String>>> = Rc::default();
        for shard in 0..self.config.shards {
            let io = SimIo::new(&self.exec, NODE, boot, shard, &self.disk, &self.net);
            let (node, errors) = (node.clone(), errors.clone());
            self.exec.spawn(Owner::Node(NODE), async move {
                if let Err(e) = run_shard(io, node, shard).await {
                    errors.borrow_mut().get_or_insert(e.to_string());
                }
            });
        }
        (node, errors)
    }

    /// Waits until the node listens; `Err` with the start-up refusal.
    async fn wait_ready(&self, errors: &Rc<RefCell<Option<String>>>) -> Result<(), String> {
        let deadline = self.exec.now() + Duration::from_secs(60);
        loop {
            if let Some(e) = errors.borrow().clone() {
                return Err(format!("start-up refused: {e}"));
            }
            if self.net.is_listening(NODE, PORT) {
                return Ok(());
            }
            if self.exec.now() > deadline {
                return Err("start-up did not finish within 60 s of virtual time".into());
            }
            self.exec.sleep(Duration::from_millis(1)).await;
        }
    }

    async fn connect(&self, owner: Owner) -> Result<Client, String> {
        let addr = SimNet::node_addr(NODE, PORT);
        let conn = RespConn::connect(&self.exec, &self.net, owner, &addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        Ok(Client {
            conn,
            exec: self.exec.clone(),
        })
    }

    /// The operator's part: the data directory exists and is durable.
    async fn provision(&self) {
        self.disk
            .create_dir_all(&self.config.dir)
            .await
            .expect("mkdir /data");
        self.disk
            .sync_dir(std::path::Path::new(""))
            .await
            .expect("sync root");
    }
}

struct Client {
    conn: RespConn,
    exec: Executor,
}

impl Client {
    async fn call(&mut self, args: &[&str]) -> Result<Frame, String> {
        let cmd: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        let deadline = self.exec.now() + REQUEST_TIMEOUT;
        self.conn
            .send(&[cmd], deadline)
            .await
            .map_err(|e| format!("send: {e}"))?;
        self.conn
            .read_reply(deadline)
            .await
            .map_err(|e| format!("{args:?}: {e:?}"))
    }

    async fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.call(&["GET", key]).await? {
            Frame::Bulk(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Frame::Null => Ok(None),
            other => Err(format!("GET {key}: {other:?}")),
        }
    }
}

/// One write step of writer `w`: INCR one of its counters, APPEND the next token to one
/// of its strings. `Err` at the first write not acknowledged (the writer stops).
async fn write_step(
    client: &mut Client,
    model: &RefCell<Model>,
    w: u32,
    step: u64,
) -> Result<(), ()> {
    let j = step % KEYS_PER_WRITER;
    let counter = format!("c{w}:{j}");
    model
        .borrow_mut()
        .counters
        .entry(counter.clone())
        .or_default()
        .1 += 1;
    match client.call(&["INCR", &counter]).await {
        Ok(Frame::Integer(_)) => model.borrow_mut().counters.get_mut(&counter).ok_or(())?.0 += 1,
        _ => return Err(()),
    }
    let key = format!("a{w}:{j}");
    let token = {
        let mut m = model.borrow_mut();
        let entry = m.appends.entry(key.clone()).or_default();
        entry.1 += 1;
        format!("t{};", entry.1)
    };
    match client.call(&["APPEND", &key, &token]).await {
        Ok(Frame::Integer(_)) => model.borrow_mut().appends.get_mut(&key).ok_or(())?.0 += 1,
        _ => return Err(()),
    }
    Ok(())
}

/// Shared progress of one scenario run.
#[derive(Default)]
struct Progress {
    /// 0: pre-section writes; 1: the section's writes may start.
    phase: Cell<u32>,
    pre_done: Cell<u32>,
    during_done: Cell<u32>,
    finished: Cell<bool>,
}

async fn wait_for(exec: &Executor, cond: impl Fn() -> bool) {
    while !cond() {
        exec.sleep(Duration::from_millis(1)).await;
    }
}

/// A writer: `PRE_STEPS` steps, then (once the section started) `DURING_STEPS` steps.
async fn writer(ctx: Ctx, model: Rc<RefCell<Model>>, progress: Rc<Progress>, w: u32) {
    wait_for(&ctx.exec, || ctx.net.is_listening(NODE, PORT)).await;
    let Ok(mut client) = ctx.connect(Owner::Client(w)).await else {
        return;
    };
    for step in 0..PRE_STEPS {
        if write_step(&mut client, &model, w, step).await.is_err() {
            return;
        }
    }
    progress.pre_done.set(progress.pre_done.get() + 1);
    wait_for(&ctx.exec, || progress.phase.get() >= 1).await;
    for step in PRE_STEPS..PRE_STEPS + DURING_STEPS {
        if write_step(&mut client, &model, w, step).await.is_err() {
            return;
        }
    }
    progress.during_done.set(progress.during_done.get() + 1);
}

/// The coordinator (client 0): boots the node and runs the protocol section.
async fn coordinator(
    ctx: Ctx,
    protocol: Protocol,
    model: Rc<RefCell<Model>>,
    progress: Rc<Progress>,
    k: Option<u64>,
) {
    ctx.provision().await;
    if protocol == Protocol::FirstBoot {
        ctx.disk.start_section(k);
    }
    let (node, errors) = ctx.start_node(0);
    ctx.wait_ready(&errors).await.expect("first boot");
    if protocol == Protocol::FirstBoot {
        progress.phase.set(1);
        wait_for(&ctx.exec, || progress.during_done.get() == WRITERS).await;
        ctx.disk.end_section();
        progress.finished.set(true);
        return;
    }
    let mut client = ctx.connect(Owner::Client(0)).await.expect("connect");
    if !protocol.aof() {
        rdb_section(&ctx, protocol, &node, &mut client, &model, k).await;
        progress.finished.set(true);
        return;
    }
    wait_for(&ctx.exec, || progress.pre_done.get() == WRITERS).await;
    ctx.disk.start_section(k);
    let aborted = protocol == Protocol::AbortedRewrite;
    node.persistence.fail_base_of_shard(aborted.then_some(1));
    let reply = client.call(&["BGREWRITEAOF"]).await.expect("BGREWRITEAOF");
    assert_eq!(
        reply,
        Frame::Simple("Background append only file rewriting started".into())
    );
    progress.phase.set(1);
    wait_for(&ctx.exec, || {
        !node.persistence.rewrite_in_progress() && progress.during_done.get() == WRITERS
    })
    .await;
    ctx.disk.end_section();
    progress.finished.set(true);
}

/// RDB protocols: writes, SAVE (the old snapshot), more writes, then the section: BGSAVE
/// (waited for) or SAVE.
async fn rdb_section(
    ctx: &Ctx,
    protocol: Protocol,
    node: &Arc<Node>,
    client: &mut Client,
    model: &Rc<RefCell<Model>>,
    k: Option<u64>,
) {
    for step in 0..PRE_STEPS {
        write_step(client, model, 0, step)
            .await
            .expect("acknowledged");
    }
    assert_eq!(client.call(&["SAVE"]).await, Ok(Frame::ok()));
    let old = model.borrow().expected();
    model.borrow_mut().rdb_old = old;
    for step in PRE_STEPS..PRE_STEPS + DURING_STEPS {
        write_step(client, model, 0, step)
            .await
            .expect("acknowledged");
    }
    let new = model.borrow().expected();
    model.borrow_mut().rdb_new = new;
    ctx.disk.start_section(k);
    if protocol == Protocol::Save {
        let reply = client.call(&["SAVE"]).await.expect("SAVE");
        assert_eq!(reply, Frame::ok());
    } else {
        let reply = client.call(&["BGSAVE"]).await.expect("BGSAVE");
        assert_eq!(reply, Frame::Simple("Background saving started".into()));
        let state = &node.snapshot;
        wait_for(&ctx.exec, || {
            !state.in_progress.load(std::sync::atomic::Ordering::SeqCst)
        })
        .await;
        assert!(state.last_ok.load(std::sync::atomic::Ordering::SeqCst));
    }
    model.borrow_mut().save_acked = true;
    ctx.disk.end_section();
}

/// `build` for the enumerator; the model of the latest build is left in `slot`.
fn build(
    protocol: Protocol,
    defects: Defects,
    slot: Rc<RefCell<Option<(Ctx, Rc<RefCell<Model>>)>>>,
) -> impl FnMut(u64, Option<u64>) -> SimRun {
    move |seed, k| {
        let exec = Executor::new(seed);
        let faults = DiskFaults {
            crash_append_fill_rate: 0.3,
            ..DiskFaults::default()
        };
        let disk = SimDisk::new(&exec, NODE, faults);
        let net = SimNet::new(&exec, NetFaults::default());
        let ctx = Ctx {
            exec: exec.clone(),
            disk: disk.clone(),
            net: net.clone(),
            config: config(protocol, &defects),
        };
        let model: Rc<RefCell<Model>> = Rc::default();
        let progress: Rc<Progress> = Rc::default();
        if protocol.aof() {
            for w in 1..=WRITERS {
                let task = writer(ctx.clone(), model.clone(), progress.clone(), w);
                exec.spawn(Owner::Client(w), task);
            }
        }
        let task = coordinator(ctx.clone(), protocol, model.clone(), progress.clone(), k);
        exec.spawn(Owner::Client(0), task);
        *slot.borrow_mut() = Some((ctx, model));
        SimRun {
            exec,
            disk,
            net: Some(net),
            finished: Box::new(move || progress.finished.get()),
        }
    }
}

/// The recovered value of every model key.
async fn read_all(
    client: &mut Client,
    model: &Model,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut out = BTreeMap::new();
    for key in model.counters.keys().chain(model.appends.keys()) {
        out.insert(key.clone(), client.get(key).await?);
    }
    Ok(out)
}

/// Acknowledged writes present, none applied twice.
fn check_aof_state(model: &Model, got: &BTreeMap<String, Option<String>>) -> Result<(), String> {
    for (key, (acked, attempted)) in &model.counters {
        let value = got[key].as_deref().map_or(Ok(0), str::parse::<u64>);
        match value {
            Ok(v) if *acked <= v && v <= *attempted => {}
            _ => {
                return Err(format!(
                    "counter {key} = {:?}: acknowledged {acked}, attempted {attempted} INCRs",
                    got[key]
                ))
            }
        }
    }
    for (key, (acked, attempted)) in &model.appends {
        let value = got[key].clone().unwrap_or_default();
        if !(*acked..=*attempted).any(|m| tokens(m) == value) {
            return Err(format!(
                "string {key} = {value:?}: acknowledged {acked}, attempted {attempted} APPENDs"
            ));
        }
    }
    Ok(())
}

/// Restarts the crashed node (life `boot`) and checks what it recovered.
async fn restart_and_check(ctx: Ctx, model: Model, protocol: Protocol) -> Result<(), String> {
    let (_node, errors) = ctx.start_node(1);
    ctx.wait_ready(&errors).await?;
    let mut client = ctx.connect(Owner::Client(100)).await?;
    let got = read_all(&mut client, &model).await?;
    if !protocol.aof() {
        if got == model.rdb_new {
            return Ok(());
        }
        if got == model.rdb_old && !model.save_acked {
            return Ok(());
        }
        let which = if got == model.rdb_old {
            "the old snapshot although the save was reported done"
        } else {
            "neither the old nor the new snapshot (a mix, or damage)"
        };
        return Err(format!("RDB recovery loaded {which}: {got:?}"));
    }
    check_aof_state(&model, &got)?;
    // A write acknowledged after the restart survives a further power loss.
    for key in POST_KEYS {
        match client.call(&["INCR", key]).await {
            Ok(Frame::Integer(1)) => {}
            other => return Err(format!("post-restart INCR {key}: {other:?}")),
        }
    }
    tidemark_sim::crash_process(&ctx.exec, &ctx.net, &ctx.disk);
    let saved = ctx.disk.faults();
    ctx.disk.set_faults(DiskFaults {
        crash_write_survive_rate: 0.0,
        crash_set_len_rate: 0.0,
        crash_dir_op_rate: 0.0,
        crash_append_fill_rate: 0.0,
        ..saved.clone()
    });
    let mut rng = ctx.exec.rng_stream(0xC4A5_0001);
    ctx.disk.crash_machine(&mut rng);
    ctx.disk.set_faults(saved);
    let (_node, errors) = ctx.start_node(2);
    ctx.wait_ready(&errors)
        .await
        .map_err(|e| format!("after post-restart writes and a power loss: {e}"))?;
    let mut client = ctx.connect(Owner::Client(101)).await?;
    for key in POST_KEYS {
        let value = client.get(key).await?;
        if value.as_deref() != Some("1") {
            return Err(format!(
                "INCR {key} acknowledged after the restart, then a power loss: GET gives {value:?}"
            ));
        }
    }
    let again = read_all(&mut client, &model).await?;
    check_aof_state(&model, &again).map_err(|e| format!("after a second power loss: {e}"))
}

/// Runs the enumeration of `protocol` for `seed`; failures carry the reproduction text.
fn enumerate(
    protocol: Protocol,
    defects: &Defects,
    seed: u64,
    machine_draws: u32,
    test: &str,
) -> (EnumReport, Vec<String>) {
    let slot: Rc<RefCell<Option<(Ctx, Rc<RefCell<Model>>)>>> = Rc::default();
    let check_slot = slot.clone();
    let check = move |run: &SimRun, _point: &CrashPoint| -> Result<(), String> {
        let (ctx, model) = check_slot.borrow().clone().expect("built");
        for id in 0..=WRITERS {
            run.exec.kill_owner(Owner::Client(id));
        }
        let model = model.borrow().clone();
        run.exec
            .block_on(
                Owner::World,
                limits(),
                restart_and_check(ctx, model, protocol),
            )
            .unwrap_or_else(|outcome| Err(format!("restart did not finish: {outcome:?}")))
    };
    let report = Enumeration {
        seed,
        machine_draws,
        limits: limits(),
    }
    .run(build(protocol, defects.clone(), slot), check)
    .unwrap_or_else(|e| panic!("{protocol:?}: enumeration did not run: {e}"));
    let failures = report
        .failures
        .iter()
        .map(|(point, message)| reproduction(protocol, point, message, test))
        .collect();
    (report, failures)
}

/// A failure as reported: the crash point, the broken invariant, how to reproduce.
fn reproduction(protocol: Protocol, point: &CrashPoint, message: &str, test: &str) -> String {
    format!(
        "{protocol:?}: {point}: {message}\n  reproduce: cargo nextest run -p tidemark-sim \
         --test rewrite_crashpoints --run-ignored all -E 'test({test})' (seed {}, crash after \
         section op {} of {}, {:?})",
        point.seed, point.after_op, point.section_ops, point.kind
    )
}

/// Enumerates `protocol` on `seeds`, asserts no failure; returns (states, section ops).
fn assert_all_recover(
    protocol: Protocol,
    seeds: std::ops::Range<u64>,
    machine_draws: u32,
    test: &str,
) -> (u64, Vec<u64>) {
    let mut states = 0;
    let mut ops = Vec::new();
    for seed in seeds {
        let (report, failures) =
            enumerate(protocol, &Defects::default(), seed, machine_draws, test);
        assert!(
            failures.is_empty(),
            "{} of {} states fail:\n{}",
            failures.len(),
            report.states,
            failures.join("\n")
        );
        assert_eq!(
            report.states,
            (report.section_ops + 1) * u64::from(1 + machine_draws)
        );
        assert!(report.section_ops > 0, "the section does disk work");
        states += report.states;
        ops.push(report.section_ops);
    }
    eprintln!(
        "{protocol:?}: {states} crash states (section ops per seed {ops:?}, 1 process + \
         {machine_draws} machine crashes per point), all recover"
    );
    (states, ops)
}

#[test]
fn bgrewriteaof_with_writes_before_and_during_recovers_at_every_crash_point() {
    assert_all_recover(
        Protocol::Rewrite,
        1..2,
        MACHINE_DRAWS,
        "bgrewriteaof_with_writes",
    );
}

#[test]
fn first_boot_manifest_commit_recovers_at_every_crash_point() {
    assert_all_recover(
        Protocol::FirstBoot,
        1..2,
        MACHINE_DRAWS,
        "first_boot_manifest",
    );
}

#[test]
fn bgsave_loads_the_old_or_the_new_snapshot_at_every_crash_point() {
    assert_all_recover(Protocol::Bgsave, 1..2, MACHINE_DRAWS, "bgsave_loads");
}

#[test]
fn save_loads_the_old_or_the_new_snapshot_at_every_crash_point() {
    assert_all_recover(Protocol::Save, 1..2, MACHINE_DRAWS, "save_loads");
}

#[test]
fn aborted_rewrite_recovers_at_every_crash_point() {
    assert_all_recover(
        Protocol::AbortedRewrite,
        1..2,
        MACHINE_DRAWS,
        "aborted_rewrite",
    );
}

/// The full set: 16 seeds per protocol (different interleavings of the writers with the
/// rewrite) and [`MACHINE_DRAWS_FULL`] machine crashes per point (6 more random draws).
#[test]
#[ignore = "full enumeration (minutes): run with --run-ignored only"]
fn full_enumeration_of_every_protocol() {
    let mut total = 0;
    for protocol in [
        Protocol::Rewrite,
        Protocol::FirstBoot,
        Protocol::Bgsave,
        Protocol::Save,
        Protocol::AbortedRewrite,
    ] {
        total += assert_all_recover(protocol, 1..17, MACHINE_DRAWS_FULL, "full_enumeration").0;
    }
    eprintln!("full enumeration: {total} crash states");
}

/// Asserts the enumeration reports predecessor bug `bug` with its switch on.
fn assert_caught(
    bug: u32,
    protocol: Protocol,
    defects: Defects,
    test: &str,
    needle: &str,
) -> Vec<String> {
    let (report, failures) = enumerate(protocol, &defects, 1, MACHINE_DRAWS, test);
    assert!(
        !failures.is_empty(),
        "predecessor bug {bug} NOT caught: all {} states recovered with {defects:?}",
        report.states
    );
    for failure in &failures {
        assert!(
            failure.contains("reproduce: cargo nextest run -p tidemark-sim"),
            "{failure}"
        );
        assert!(failure.contains("crash after section op"), "{failure}");
    }
    assert!(
        failures.iter().any(|f| f.contains(needle)),
        "bug {bug}: no failure mentions {needle:?}: {}",
        failures.join("\n")
    );
    eprintln!(
        "predecessor bug {bug} caught: {} of {} states fail; first:\n{}",
        failures.len(),
        report.states,
        failures[0]
    );
    failures
}

/// Bug 6: the old generation removed before the manifest commit naming the new one; a
/// crash in between leaves a manifest naming deleted files (start-up refused).
#[test]
fn predecessor_bug_6_prune_before_manifest_commit_is_caught() {
    let defects = Defects {
        prune_before_manifest_commit: true,
        ..Defects::default()
    };
    let failures = assert_caught(
        6,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_6",
        "missing",
    );
    assert!(failures.iter().all(|f| f.contains("start-up refused")));
}

/// Bug 3: the first write after recovery reuses the last recovered LSN; the next recovery
/// stops at the duplicate, so the acknowledged post-restart write is lost.
#[test]
fn predecessor_bug_3_lsn_reuse_after_recovery_is_caught() {
    let defects = Defects {
        lsn_reuse_after_recovery: true,
        ..Defects::default()
    };
    let failures = assert_caught(
        3,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_3",
        "acknowledged after the restart",
    );
    // Every state breaks: the duplicate LSN is written after any recovery.
    assert!(failures.iter().any(|f| f.contains("Process")));
    assert!(failures.iter().any(|f| f.contains("Machine")));
}

/// The rewrite scenario really overlaps writes with the switch: after a crash-free run
/// the new generation's incr files hold records (writes after the switch), the base files
/// exist, and the old generation's files are gone.
#[test]
fn rewrite_scenario_writes_land_on_both_sides_of_the_switch() {
    let slot: Rc<RefCell<Option<(Ctx, Rc<RefCell<Model>>)>>> = Rc::default();
    let run = build(Protocol::Rewrite, Defects::default(), slot.clone())(1, None);
    let finished = &run.finished;
    let outcome = run.exec.run_until(limits(), finished);
    assert_eq!(outcome, tidemark_sim::executor::RunOutcome::Done);
    let files = run.disk.list_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let header = tidemark::persist::FILE_HEADER_LEN_BYTES as u64;
    let bases = files
        .iter()
        .filter(|(n, _)| n.ends_with(".base.aof"))
        .count();
    assert_eq!(bases, usize::from(SHARDS), "{names:?}");
    let incrs: Vec<&(String, u64)> = files
        .iter()
        .filter(|(n, _)| n.ends_with(".incr.aof"))
        .collect();
    assert_eq!(
        incrs.len(),
        usize::from(SHARDS),
        "old incrs pruned: {names:?}"
    );
    assert!(
        incrs.iter().any(|(_, len)| *len > header),
        "some write landed after the switch: {files:?}"
    );
    let (_, model) = slot.borrow().clone().expect("built");
    let model = model.borrow();
    let during = u64::from(WRITERS) * (PRE_STEPS + DURING_STEPS);
    let acked: u64 = model.counters.values().map(|(a, _)| a).sum();
    assert_eq!(acked, during, "every INCR acknowledged without a crash");
}

/// Bug 7 (bonus): the snapshot taken one `.await` after the switch — writes in between
/// are in the new base AND the new incr, so a counter exceeds its attempted INCRs.
#[test]
fn predecessor_bug_7_snapshot_after_await_is_caught() {
    let defects = Defects {
        snapshot_after_await: true,
        ..Defects::default()
    };
    assert_caught(
        7,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_7",
        "attempted",
    );
}

/// Bug 15 (bonus): the new base committed while the old incrs are still listed, the
/// truncation in a second commit: a crash between them replays both.
#[test]
fn predecessor_bug_15_base_committed_before_log_truncation_is_caught() {
    let defects = Defects {
        base_committed_before_log_truncation: true,
        ..Defects::default()
    };
    assert_caught(
        15,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_15",
        "attempted",
    );
}

/// Limitation C, deterministically: an fsync EIO (nothing of the failed write reaches the
/// platter, the page cache keeps showing it), a process crash before the writer's retry,
/// a restart, writes acknowledged after it, then a power loss. Without the start-up copy
/// the restart appended after frames that were never on the platter, and the power loss
/// left a hole before fsynced records (start-up refused). With it, everything
/// acknowledged survives.
#[test]
fn fsync_eio_then_process_crash_then_power_loss_keeps_acknowledged_writes() {
    let exec = Executor::new(1);
    let disk = SimDisk::new(&exec, NODE, DiskFaults::default());
    let net = SimNet::new(&exec, NetFaults::default());
    let ctx = Ctx {
        exec: exec.clone(),
        disk,
        net,
        config: config(Protocol::Rewrite, &Defects::default()),
    };
    let keys: Vec<String> = (0..4).map(|i| format!("k:{i}")).collect();
    let c = ctx.clone();
    let result = exec.block_on(Owner::World, limits(), async move {
        c.provision().await;
        let (_node, errors) = c.start_node(0);
        c.wait_ready(&errors).await?;
        let mut client = c.connect(Owner::Client(1)).await?;
        for key in &keys {
            assert_eq!(client.call(&["INCR", key]).await?, Frame::Integer(1));
        }
        let saved = c.disk.faults();
        c.disk.set_faults(DiskFaults {
            fsync_eio_rate: 1.0,
            crash_write_survive_rate: 0.0,
            crash_torn_rate: 0.0,
            ..saved.clone()
        });
        let mut failed = 0;
        for key in &keys {
            if let Frame::Error(_) = client.call(&["INCR", key]).await? {
                failed += 1;
            }
        }
        assert_eq!(
            failed,
            keys.len(),
            "every INCR hit the fsync EIO or the latch"
        );
        tidemark_sim::crash_process(&c.exec, &c.net, &c.disk);
        c.disk.set_faults(saved.clone());
        let (_node, errors) = c.start_node(1);
        c.wait_ready(&errors).await?;
        let mut client = c.connect(Owner::Client(2)).await?;
        for key in POST_KEYS {
            assert_eq!(client.call(&["INCR", key]).await?, Frame::Integer(1));
        }
        tidemark_sim::crash_process(&c.exec, &c.net, &c.disk);
        c.disk.set_faults(DiskFaults {
            crash_write_survive_rate: 0.0,
            crash_set_len_rate: 0.0,
            crash_dir_op_rate: 0.0,
            ..saved.clone()
        });
        c.disk.crash_machine(&mut c.exec.rng_stream(0xC4A5_0002));
        c.disk.set_faults(saved);
        let (_node, errors) = c.start_node(2);
        c.wait_ready(&errors).await?;
        let mut client = c.connect(Owner::Client(3)).await?;
        for key in POST_KEYS {
            let value = client.get(key).await?;
            if value.as_deref() != Some("1") {
                return Err(format!(
                    "{key} acknowledged after the restart, now {value:?}"
                ));
            }
        }
        for key in &keys {
            let value = client.get(key).await?;
            if !matches!(value.as_deref(), Some("1") | Some("2")) {
                return Err(format!(
                    "{key}: acknowledged once, attempted twice, now {value:?}"
                ));
            }
        }
        Ok::<(), String>(())
    });
    let result = result.unwrap_or_else(|outcome| Err(format!("did not finish: {outcome:?}")));
    assert_eq!(result, Ok(()));
}
