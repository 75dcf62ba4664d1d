//! Harness for `rewrite_crashpoints.rs`: the real tidemark server (2 shards on `SimIo`,
//! `appendfsync always`) driven through one persistence protocol section by simulated
//! clients, the `build` closure for `tidemark_sim::crashpoints::Enumeration`, and the
//! recovery check (restart, acknowledged writes present and not applied twice, RDB old or
//! new snapshot, post-restart writes surviving a power loss).
//!
//! What can fail here: the checks return `Err(text)` naming the broken invariant; a
//! scenario step the crash-free run must pass (first boot, SAVE) panics.

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

/// The simulated node's number.
pub const NODE: u32 = 1;
/// The port the server listens on.
pub const PORT: u16 = 6379;
/// Shards of the server (the rewrite and its abort span both).
pub const SHARDS: u16 = 2;
/// Machine crashes per crash point: the 4 extremes and 2 random draws.
pub const MACHINE_DRAWS: u32 = 6;
/// Machine crashes per crash point in the full (ignored) enumeration.
pub const MACHINE_DRAWS_FULL: u32 = 12;
/// Concurrent writing clients.
pub const WRITERS: u32 = 2;
/// Write steps (one INCR + one APPEND) per writer before the section.
pub const PRE_STEPS: u64 = 3;
/// Write steps per writer during the section.
pub const DURING_STEPS: u64 = 3;
/// Keys each writer alternates between (per kind), so both shards get writes.
pub const KEYS_PER_WRITER: u64 = 2;
/// Virtual-time bound on one client request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys written after the restart and checked after a further power loss.
pub const POST_KEYS: [&str; 4] = ["post:a", "post:b", "post:c", "post:d"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
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
    pub fn aof(self) -> bool {
        !matches!(self, Protocol::Bgsave | Protocol::Save)
    }
}

/// What the clients did: per key (acknowledged, attempted) writes, and the RDB states.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub counters: BTreeMap<String, (u64, u64)>,
    pub appends: BTreeMap<String, (u64, u64)>,
    /// The keyspace saved before the section (RDB protocols).
    pub rdb_old: BTreeMap<String, Option<String>>,
    /// The keyspace the section's save writes.
    pub rdb_new: BTreeMap<String, Option<String>>,
    /// The section's save was reported successful.
    pub save_acked: bool,
}

pub fn tokens(n: u64) -> String {
    (1..=n).map(|t| format!("t{t};")).collect()
}

impl Model {
    /// The keyspace if every attempted write was acknowledged (RDB protocols: they are).
    pub fn expected(&self) -> BTreeMap<String, Option<String>> {
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

pub fn config(protocol: Protocol, defects: &Defects) -> Config {
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

pub fn limits() -> RunLimits {
    RunLimits {
        max_steps: 20_000_000,
        max_time: Duration::from_secs(3_000),
    }
}

/// The node's world: executor, disk, network, server config.
#[derive(Clone)]
pub struct Ctx {
    pub exec: Executor,
    pub disk: SimDisk,
    pub net: SimNet,
    pub config: Config,
}

impl Ctx {
    /// Starts life `boot` of the node (one task per shard); start-up errors land in the
    /// returned slot.
    pub fn start_node(&self, boot: u32) -> (Arc<Node>, Rc<RefCell<Option<String>>>) {
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
    pub async fn wait_ready(&self, errors: &Rc<RefCell<Option<String>>>) -> Result<(), String> {
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

    pub async fn connect(&self, owner: Owner) -> Result<Client, String> {
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
    pub async fn provision(&self) {
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

pub struct Client {
    pub conn: RespConn,
    pub exec: Executor,
}

impl Client {
    pub async fn call(&mut self, args: &[&str]) -> Result<Frame, String> {
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

    pub async fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.call(&["GET", key]).await? {
            Frame::Bulk(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Frame::Null => Ok(None),
            other => Err(format!("GET {key}: {other:?}")),
        }
    }
}

/// One write step of writer `w`: INCR one of its counters, APPEND the next token to one
/// of its strings. `Err` at the first write not acknowledged (the writer stops).
pub async fn write_step(
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

/// Where `build` leaves the latest scenario's world and model for the check.
pub type Slot = Rc<RefCell<Option<(Ctx, Rc<RefCell<Model>>)>>>;

/// Shared progress of one scenario run.
#[derive(Default)]
pub struct Progress {
    /// 0: pre-section writes; 1: the section's writes may start.
    pub phase: Cell<u32>,
    pub pre_done: Cell<u32>,
    pub during_done: Cell<u32>,
    pub finished: Cell<bool>,
}

pub async fn wait_for(exec: &Executor, cond: impl Fn() -> bool) {
    while !cond() {
        exec.sleep(Duration::from_millis(1)).await;
    }
}

/// A writer: `PRE_STEPS` steps, then (once the section started) `DURING_STEPS` steps.
pub async fn writer(ctx: Ctx, model: Rc<RefCell<Model>>, progress: Rc<Progress>, w: u32) {
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
pub async fn coordinator(
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
pub async fn rdb_section(
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
pub fn build(
    protocol: Protocol,
    defects: Defects,
    slot: Slot,
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
pub async fn read_all(
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
pub fn check_aof_state(
    model: &Model,
    got: &BTreeMap<String, Option<String>>,
) -> Result<(), String> {
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
pub async fn restart_and_check(ctx: Ctx, model: Model, protocol: Protocol) -> Result<(), String> {
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
pub fn enumerate(
    protocol: Protocol,
    defects: &Defects,
    seed: u64,
    machine_draws: u32,
    test: &str,
) -> (EnumReport, Vec<String>) {
    let slot: Slot = Rc::default();
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
pub fn reproduction(protocol: Protocol, point: &CrashPoint, message: &str, test: &str) -> String {
    format!(
        "{protocol:?}: {point}: {message}\n  reproduce: cargo nextest run -p tidemark-sim \
         --test rewrite_crashpoints --run-ignored all -E 'test({test})' (seed {}, crash after \
         section op {} of {}, {:?})",
        point.seed, point.after_op, point.section_ops, point.kind
    )
}
