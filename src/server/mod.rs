//! The server: configuration, start-up of one shard (`run_shard`), the connection state
//! machine (`conn`), and server-level commands (`admin`, `info`).
//!
//! Start-up steps of one shard (every shard runs them concurrently):
//! 1. build an empty keyspace seeded from the seam's entropy;
//! 2. if `appendonly yes`, recover the shard's AOF (replay every record; torn tail
//!    truncated; corruption refuses start-up and marks the node failed);
//! 3. mark this shard ready and wait until every shard is ready (or one failed);
//! 4. start the cross-shard request server and the active-expiry timer;
//! 5. bind the listener (shard 0 first, so `--port 0` resolves to one port for all) and
//!    serve connections.
//!
//! What can fail here: recovery refusal and bind errors end `run_shard` with `StartError`.

pub mod admin;
pub mod cli;
pub mod clients;
pub mod config;
pub mod config_params;
pub mod conn;
pub mod info;
pub mod misc;
pub mod multi;
pub mod persistence;
pub mod pubsub;
pub mod pubsub_registry;
pub mod snapshot;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use config::Config;

use crate::io::{Io, Listener};
use crate::keyspace::Db;
use crate::persist::{Aof, AofOptions};
use crate::shard::dispatch::{Job, Request, Response, Senders};
use crate::shard::state::Shard;

/// State shared by every shard of one server process: the configuration, the cross-shard
/// queues, the start-up gates and process-wide counters. `Send + Sync`; one per process
/// (or per simulated boot of a node).
pub struct Node {
    /// The configuration; `CONFIG SET` writes through this lock.
    pub config: RwLock<Config>,
    /// Sending ends of every shard's inbound queue.
    pub senders: Senders,
    receivers: Mutex<Vec<Option<async_channel::Receiver<Request>>>>,
    shards: u16,
    ready: Gate,
    bound: Gate,
    failed: AtomicBool,
    port: AtomicU16,
    /// Connected clients, all shards.
    pub connected_clients: AtomicUsize,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Next client id (CLIENT ID).
    pub next_client_id: AtomicU64,
    /// Every connected client, for CLIENT LIST / KILL (src/server/clients.rs).
    pub clients: clients::Registry,
    /// Wall-clock ms of the start (for INFO uptime), set by shard 0.
    pub start_ms: AtomicU64,
    /// RDB snapshot state (SAVE/BGSAVE/LASTSAVE, INFO persistence).
    pub snapshot: snapshot::SnapshotState,
    /// AOF manifest and rewrite state (src/server/persistence.rs).
    pub persistence: persistence::Persistence,
    /// Pub/Sub subscriptions of every client on every shard (src/server/pubsub.rs).
    pub pubsub: Arc<pubsub_registry::Registry>,
    /// This node itself, so a command handler holding `&Node` can start a background task
    /// (BGREWRITEAOF) that outlives it.
    me: std::sync::Weak<Node>,
}

/// A one-way start-up gate counting arrivals; executor-agnostic.
struct Gate {
    count: AtomicUsize,
    event: event_listener::Event,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            count: AtomicUsize::new(0),
            event: event_listener::Event::new(),
        }
    }

    fn arrive(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Waits until `target` arrivals or `abort()` is true.
    async fn wait(&self, target: usize, abort: impl Fn() -> bool) {
        loop {
            if self.count.load(Ordering::SeqCst) >= target || abort() {
                return;
            }
            let listener = self.event.listen();
            if self.count.load(Ordering::SeqCst) >= target || abort() {
                return;
            }
            listener.await;
        }
    }
}

impl Node {
    /// Builds the shared state for `config.shards` shards (the queues are created here).
    pub fn new(config: Config) -> Arc<Node> {
        let shards = config.shards.max(1);
        let queue_len = config.cross_shard_queue_len.max(1);
        let mut senders = Vec::with_capacity(usize::from(shards));
        let mut receivers = Vec::with_capacity(usize::from(shards));
        for _ in 0..shards {
            let (tx, rx) = async_channel::bounded(queue_len);
            senders.push(tx);
            receivers.push(Some(rx));
        }
        Arc::new_cyclic(|me| Node {
            me: me.clone(),
            config: RwLock::new(config),
            senders,
            receivers: Mutex::new(receivers),
            shards,
            ready: Gate::new(),
            bound: Gate::new(),
            failed: AtomicBool::new(false),
            port: AtomicU16::new(0),
            connected_clients: AtomicUsize::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            next_client_id: AtomicU64::new(1),
            clients: clients::Registry::default(),
            start_ms: AtomicU64::new(0),
            snapshot: snapshot::SnapshotState::default(),
            persistence: persistence::Persistence::default(),
            pubsub: Arc::default(),
        })
    }

    /// An owning handle to this node (`None` only while it is being dropped).
    pub fn arc(&self) -> Option<Arc<Node>> {
        self.me.upgrade()
    }

    /// Number of shards.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> Config {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The TCP port actually bound (after `--port 0`), 0 before binding.
    pub fn bound_port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    /// True once some shard's start-up failed.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.ready.event.notify(usize::MAX);
        self.bound.event.notify(usize::MAX);
    }
}

/// Why a shard could not start (recovery refused, bind failed, …). The text is for humans.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs shard `shard_id` of `node` on `io` until its listener fails: recovers the shard's
/// AOF, waits for every shard to finish recovery, then binds and serves clients and
/// cross-shard requests. In production one call per shard thread; in the simulator one
/// task per shard. Returns `Err` if start-up is refused (corrupt AOF, bind failure).
pub async fn run_shard<I: Io>(io: I, node: Arc<Node>, shard_id: u16) -> Result<(), StartError> {
    let result = start_shard(io, node.clone(), shard_id).await;
    if result.is_err() {
        node.fail();
    }
    result
}

async fn start_shard<I: Io>(io: I, node: Arc<Node>, shard_id: u16) -> Result<(), StartError> {
    let config = node.config();
    let receiver = node
        .receivers
        .lock()
        .ok()
        .and_then(|mut r| r.get_mut(usize::from(shard_id)).and_then(Option::take))
        .ok_or_else(|| StartError(format!("shard {shard_id} started twice or out of range")))?;
    // Step 1 and 2: keyspace and recovery.
    let shard = Rc::new(recover_shard(&io, &node, &config, shard_id).await?);
    // Step 3: wait for every shard.
    node.ready.arrive();
    node.ready
        .wait(usize::from(node.shards), || node.has_failed())
        .await;
    if node.has_failed() {
        return Err(StartError(format!(
            "shard {shard_id}: another shard failed to start"
        )));
    }
    // Step 4: background tasks.
    io.spawn_local(serve_requests(shard.clone(), receiver));
    io.spawn_local(active_expiry(shard.clone(), config.hz));
    if shard_id == 0 {
        node.snapshot
            .last_save_s
            .store(io.wall_clock_ms() / 1000, Ordering::SeqCst);
        let parts = snapshot::RouterParts {
            shard: shard.clone(),
            senders: node.senders.clone(),
            timeout: config.cross_shard_timeout(),
        };
        io.spawn_local(snapshot::save_rules_loop(parts, node.clone()));
    }
    if shard_id == 0 && config.appendonly {
        // AOF automatic rewrite by growth (persistence.rs).
        io.spawn_local(persistence::auto_rewrite(node.clone(), shard.clone()));
    }
    // Step 5: bind (shard 0 first) and serve.
    let listener = bind_listener(&io, &node, &config, shard_id).await?;
    conn::accept_loop(shard, node, listener).await;
    Ok(())
}

async fn recover_shard<I: Io>(
    io: &I,
    node: &Node,
    config: &Config,
    shard_id: u16,
) -> Result<Shard<I>, StartError> {
    let shards = node.shards;
    // Databases: one keyspace per database (SELECT 0..databases-1, cmd::databases).
    let new_dbs = || -> Vec<Db> {
        (0..config.databases)
            .map(|_| Db::new(io.random_u64()))
            .collect()
    };
    let shard = Shard::with_dbs(shard_id, io.clone(), new_dbs(), None);
    if !config.appendonly {
        let mut dbs = new_dbs();
        let loaded = snapshot::load_dump(
            io,
            &mut dbs,
            &config.dir,
            &config.dbfilename,
            shard_id,
            shards,
        )
        .await
        .map_err(|e| StartError(format!("shard {shard_id}: {e}")))?;
        *shard.dbs.borrow_mut() = dbs;
        if loaded > 0 {
            tracing::info!(shard = shard_id, keys = loaded, "DB loaded from disk");
        }
        return Ok(shard);
    }
    let mut options = AofOptions::from_config(config, shard_id);
    options.shard_count = shards;
    let skip = config.defects.skip_replay_of_shard == Some(shard_id);
    let mut replay = |_lsn: u64, args: Vec<bytes::Bytes>| -> Result<(), String> {
        if skip {
            return Ok(());
        }
        shard.replay(&args)
    };
    let started = io.monotonic();
    // Multi-part AOF: the instance manifest (loaded/created once, by shard 0) names this
    // shard's base and incr files (persistence.rs, persist/parts.rs).
    let parts = node
        .persistence
        .shard_parts(io, config, shard_id, &|| node.has_failed())
        .await
        .map_err(|e| StartError(format!("shard {shard_id}: AOF recovery refused: {e}")))?;
    let (aof, report) = Aof::open_parts(io.clone(), options, &parts, &mut replay)
        .await
        .map_err(|e| StartError(format!("shard {shard_id}: AOF recovery refused: {e}")))?;
    tracing::info!(
        shard = shard_id,
        records = report.records,
        last_lsn = report.last_lsn,
        truncated_bytes = report.truncated_bytes,
        elapsed_ms = (io.monotonic() - started).as_millis() as u64,
        "AOF loaded"
    );
    let Shard { dbs, .. } = shard;
    let recovered = Shard::with_dbs(shard_id, io.clone(), dbs.into_inner(), Some(aof));
    recovered.loaded_records.set(report.records);
    recovered.truncated_bytes.set(report.truncated_bytes);
    Ok(recovered)
}

async fn bind_listener<I: Io>(
    io: &I,
    node: &Node,
    config: &Config,
    shard_id: u16,
) -> Result<I::Listener, StartError> {
    if shard_id != 0 {
        node.bound.wait(1, || node.has_failed()).await;
        if node.has_failed() {
            return Err(StartError(format!(
                "shard {shard_id}: shard 0 failed to bind"
            )));
        }
    }
    let mut cfg = config.clone();
    if shard_id != 0 {
        cfg.port = node.bound_port();
    }
    let addr = cfg.listen_addr();
    let listener = io
        .bind(&addr)
        .await
        .map_err(|e| StartError(format!("could not bind {addr}: {e}")))?;
    if shard_id == 0 {
        let local = listener.local_addr();
        let port = local
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(cfg.port);
        node.port.store(port, Ordering::SeqCst);
        node.start_ms.store(io.wall_clock_ms(), Ordering::SeqCst);
        node.bound.arrive();
        tracing::info!(addr = %local, shards = node.shards, driver = io.driver_name(), "Ready to accept connections tcp");
    }
    Ok(listener)
}

/// Serves requests from other shards: executes each in arrival order, then acknowledges
/// and answers it in a task of its own (a slow fsync never blocks the queue).
async fn serve_requests<I: Io>(shard: Rc<Shard<I>>, receiver: async_channel::Receiver<Request>) {
    while let Ok(request) = receiver.recv().await {
        match request.job {
            Job::Stats => {
                let _ = request
                    .reply
                    .try_send(Response::Stats(Box::new(shard.stats())));
            }
            Job::Snapshot => {
                let db = shard.dbs.borrow().clone();
                let dirty = shard.dirty.get();
                let _ = request
                    .reply
                    .try_send(Response::Snapshot(Box::new(db), dirty));
            }
            Job::Rewrite(job) => persistence::serve_rewrite_job(&shard, job, request.reply),
            Job::Multi(job) => crate::shard::watch::serve_job(&shard, job, request.reply),
            Job::Command(db, args) => {
                let Some(spec) = args.first().and_then(|name| crate::cmd::lookup(name)) else {
                    let _ = request
                        .reply
                        .try_send(Response::Reply(crate::cmd::unknown_command(&args)));
                    continue;
                };
                if db >= shard.databases() {
                    let _ = request
                        .reply
                        .try_send(Response::Reply(crate::resp::Frame::error(
                            crate::cmd::databases::ERR_DB_OUT_OF_RANGE,
                        )));
                    continue;
                }
                if crate::shard::blocking::is_blocking(spec) {
                    // Blocking list command: wait in a task of its own (lists family).
                    let task = crate::shard::blocking::serve_blocking_request(
                        shard.clone(),
                        db,
                        spec,
                        args,
                        request.reply,
                    );
                    shard.io.spawn_local(task);
                    continue;
                }
                let (reply, lsn) = shard.execute_local(db, spec, &args);
                let lsn = lsn.or_else(|| shard.read_barrier());
                let acker = shard.clone();
                shard.io.spawn_local(async move {
                    let reply = match acker.wait_ack(lsn).await {
                        Ok(()) => reply,
                        Err(error) => error,
                    };
                    let _ = request.reply.try_send(Response::Reply(reply));
                });
            }
        }
    }
}

/// Active expiry: `hz` cycles a second, each sampling keys with a TTL.
async fn active_expiry<I: Io>(shard: Rc<Shard<I>>, hz: u32) {
    let period = Duration::from_millis(1000 / u64::from(hz.clamp(1, 500)));
    loop {
        shard.io.sleep(period).await;
        shard.active_expire();
    }
}
