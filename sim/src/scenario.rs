//! PLACEHOLDER SCENARIO — exercises the substrate (executor + SimDisk + SimNet + SimIo)
//! end to end until the real world (tidemark server, workload, checkers) exists.
//!
//! A toy "append server" (not tidemark) runs on node 1 with `shards` shard tasks, all
//! bound to the same address: each accepted connection sends lines `c<client>-<n>\n`;
//! the shard appends each line to its own log `log/shard-<i>.log`, fsyncs it, and replies
//! `OK\n` (or `ERR\n` once its log is latched failed). Clients retry through resets and
//! refusals. At a seeded virtual time the world crashes node 1 — a process crash or a
//! machine crash, chosen by the seed — checks that every acknowledged line is on disk,
//! restarts the node, lets the clients finish, and checks again.
//!
//! The defect switch [`PlaceholderDefect::AckBeforeFsync`] makes the toy server reply
//! before fsyncing (predecessor bug 2 in miniature); sweeps must then report machine-crash
//! seeds with lost acknowledged lines — proof that the substrate can catch that class.
//!
//! What can fail here: [`ScenarioResult::failure`] says which check failed, or that the
//! run deadlocked / ran out of budget.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use rand::Rng;
use tidemark::io::{Clock, Disk, File, Listener, Net, OpenMode, Spawn, Stream};

use crate::disk::{SimDisk, SimFile};
use crate::executor::{stream, Executor, Owner, RunLimits, RunOutcome};
use crate::faults::FaultConfig;
use crate::io::SimIo;
use crate::net::{SimNet, SimStream};

/// The node the toy server runs on, and its port.
const NODE: u32 = 1;
const PORT: u16 = 7000;
/// Longest line the toy server accepts, in bytes.
const LINE_LEN_MAX_BYTES: usize = 256;

/// Test-only defects of the toy server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceholderDefect {
    /// Correct: reply only after the fsync.
    None,
    /// Reply `OK` before the line is fsynced.
    AckBeforeFsync,
}

/// What one run of the placeholder scenario did.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// The run seed.
    pub seed: u64,
    /// `None` if every check passed; otherwise what failed.
    pub failure: Option<String>,
    /// The executor's trace hash at the end.
    pub trace_hash: u64,
    /// Polls taken.
    pub steps: u64,
    /// Virtual time at the end.
    pub virtual_time: Duration,
    /// Lines acknowledged to clients.
    pub acked: usize,
    /// Which crash the world injected: `"process"` or `"machine"`.
    pub crash_kind: &'static str,
}

struct ShardLog {
    io: SimIo,
    file: SimFile,
    offset: Cell<u64>,
    failed: Cell<bool>,
    /// Appends are serialized (write + fsync) so no line follows a hole or a torn line.
    busy: Cell<bool>,
}

/// Releases [`ShardLog::busy`] when dropped.
struct Turn<'a>(&'a ShardLog);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
    }
}

impl ShardLog {
    /// Waits (polling every 10 µs of virtual time) until no other append runs.
    async fn turn(&self) -> Turn<'_> {
        while self.busy.get() {
            self.io.sleep(Duration::from_micros(10)).await;
        }
        self.busy.set(true);
        Turn(self)
    }
}

/// Shared between the clients and the world.
#[derive(Default)]
struct Book {
    acked: RefCell<BTreeSet<String>>,
    clients_done: Cell<u32>,
    world_done: Cell<bool>,
    failure: RefCell<Option<String>>,
}

/// Runs the placeholder scenario for `seed`. `trace` prints every event.
pub fn run_placeholder(seed: u64, trace: bool, defect: PlaceholderDefect) -> ScenarioResult {
    let exec = Executor::new(seed);
    exec.set_trace_print(trace);
    let mut world_rng = exec.rng_stream(stream::WORLD);
    let faults = FaultConfig::draw(&mut world_rng);
    let shards: u16 = world_rng.gen_range(1..=3);
    let clients: u32 = world_rng.gen_range(1..=4);
    let lines_per_client: u32 = world_rng.gen_range(5..40);
    let machine_crash = world_rng.gen_bool(0.5);
    let crash_at = Duration::from_micros(world_rng.gen_range(500..20_000));

    let disk = SimDisk::new(&exec, NODE, faults.disk.clone());
    let net = SimNet::new(&exec, faults.net.clone());
    let book = Rc::new(Book::default());
    start_node(&exec, &disk, &net, 0, shards, defect);
    for c in 0..clients {
        exec.spawn(
            Owner::Client(c),
            client(exec.clone(), net.clone(), book.clone(), c, lines_per_client),
        );
    }
    let world = World {
        exec: exec.clone(),
        disk: disk.clone(),
        net: net.clone(),
        book: book.clone(),
    };
    let plan = CrashPlan {
        crash_at,
        machine: machine_crash,
        shards,
        clients,
        defect,
    };
    exec.spawn(Owner::World, world.run(plan, world_rng));

    let limits = RunLimits {
        max_steps: 5_000_000,
        max_time: Duration::from_secs(120),
    };
    let outcome = exec.run_until(limits, || {
        book.world_done.get() || book.failure.borrow().is_some()
    });
    let mut failure = book.failure.borrow().clone();
    if failure.is_none() && outcome != RunOutcome::Done {
        failure = Some(format!("run stopped early: {outcome:?}"));
    }
    let acked = book.acked.borrow().len();
    ScenarioResult {
        seed,
        failure,
        trace_hash: exec.trace_hash(),
        steps: exec.steps(),
        virtual_time: exec.now(),
        acked,
        crash_kind: if machine_crash { "machine" } else { "process" },
    }
}

/// Boots node 1: one task per shard, each running the toy server on its own SimIo.
fn start_node(
    exec: &Executor,
    disk: &SimDisk,
    net: &SimNet,
    boot: u32,
    shards: u16,
    defect: PlaceholderDefect,
) {
    for shard in 0..shards {
        let io = SimIo::new(exec, NODE, boot, shard, disk, net);
        exec.spawn(Owner::Node(NODE), toy_shard(io, defect));
    }
}

async fn toy_shard(io: SimIo, defect: PlaceholderDefect) {
    let dir = Path::new("log");
    if io.create_dir_all(dir).await.is_err() || io.sync_dir(Path::new("")).await.is_err() {
        return;
    }
    let path = format!("log/shard-{}.log", io.shard());
    let Ok(file) = io.open(Path::new(&path), OpenMode::CreateReadWrite).await else {
        return;
    };
    if io.sync_dir(dir).await.is_err() {
        return;
    }
    let Some(len) = recover(&file).await else {
        return;
    };
    let log = Rc::new(ShardLog {
        io: io.clone(),
        file,
        offset: Cell::new(len),
        failed: Cell::new(false),
        busy: Cell::new(false),
    });
    let Ok(listener) = io.bind("0.0.0.0:7000").await else {
        return;
    };
    while let Ok((stream, _peer)) = listener.accept().await {
        io.spawn_local(toy_connection(stream, log.clone(), defect));
    }
}

/// Cuts a torn tail (anything after the last `\n`) so new lines start on a boundary;
/// returns the length to append at.
async fn recover(file: &SimFile) -> Option<u64> {
    let len = file.len().await.ok()?;
    let mut data: Vec<u8> = Vec::new();
    while (data.len() as u64) < len {
        data.reserve(4096);
        let pos = data.len() as u64;
        let (res, buf) = file.read_at(data, pos).await;
        data = buf;
        if res.ok()? == 0 {
            break;
        }
    }
    let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) as u64;
    if keep < len {
        file.set_len(keep).await.ok()?;
        file.sync_data().await.ok()?;
    }
    Some(keep)
}

async fn toy_connection(mut stream: SimStream, log: Rc<ShardLog>, defect: PlaceholderDefect) {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(64)).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => pending.extend_from_slice(&buf),
        }
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let ok = append(&log, &line, defect).await;
            let (res, _) = stream
                .write_all(if ok {
                    b"OK\n".to_vec()
                } else {
                    b"ERR\n".to_vec()
                })
                .await;
            if res.is_err() {
                return;
            }
        }
        if pending.len() > LINE_LEN_MAX_BYTES {
            return;
        }
    }
}

/// Appends one line (one append at a time); any write or fsync error latches the log.
async fn append(log: &ShardLog, line: &[u8], defect: PlaceholderDefect) -> bool {
    let _turn = log.turn().await;
    if log.failed.get() {
        return false;
    }
    let pos = log.offset.get();
    log.offset.set(pos + line.len() as u64);
    let mut done = 0;
    while done < line.len() {
        let (res, _) = log
            .file
            .write_at(line[done..].to_vec(), pos + done as u64)
            .await;
        match res {
            Ok(n) if n > 0 => done += n,
            _ => {
                log.failed.set(true);
                return false;
            }
        }
    }
    if defect == PlaceholderDefect::AckBeforeFsync {
        return true;
    }
    if log.file.sync_data().await.is_err() {
        log.failed.set(true);
        return false;
    }
    // Another connection's fsync on this file may have failed meanwhile: Linux reports an
    // fsync error once per open file, so our "Ok" may cover pages that were dropped.
    !log.failed.get()
}

async fn client(exec: Executor, net: SimNet, book: Rc<Book>, id: u32, lines: u32) {
    let addr = SimNet::node_addr(NODE, PORT);
    let mut next = 0;
    'connect: while next < lines {
        let mut stream = match net.connect(Owner::Client(id), &addr).await {
            Ok(s) => s,
            Err(_) => {
                exec.sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        while next < lines {
            let line = format!("c{id}-{next}");
            next += 1; // a line whose reply is lost stays uncertain; never resent
            let (res, _) = stream.write_all(format!("{line}\n").into_bytes()).await;
            if res.is_err() {
                continue 'connect;
            }
            let mut reply = Vec::new();
            while !reply.ends_with(b"\n") && reply.len() <= 8 {
                reply.reserve(8);
                let (res, buf) = stream.read(reply).await;
                reply = buf;
                match res {
                    Ok(n) if n > 0 => {}
                    _ => continue 'connect,
                }
            }
            if reply == b"OK\n" {
                book.acked.borrow_mut().insert(line);
            }
        }
    }
    book.clients_done.set(book.clients_done.get() + 1);
}

/// What the world does to node 1.
struct CrashPlan {
    crash_at: Duration,
    machine: bool,
    shards: u16,
    clients: u32,
    defect: PlaceholderDefect,
}

struct World {
    exec: Executor,
    disk: SimDisk,
    net: SimNet,
    book: Rc<Book>,
}

impl World {
    async fn run(self, plan: CrashPlan, mut rng: rand_chacha::ChaCha8Rng) {
        let CrashPlan {
            crash_at,
            machine,
            shards,
            clients,
            defect,
        } = plan;
        self.exec.sleep(crash_at).await;
        if machine {
            crate::crash_machine(&self.exec, &self.net, &self.disk, &mut rng);
        } else {
            crate::crash_process(&self.exec, &self.net, &self.disk);
        }
        if let Some(missing) = self.missing_acked() {
            *self.book.failure.borrow_mut() = Some(format!(
                "after a {} crash at {crash_at:?}: acknowledged line {missing:?} is not on disk",
                if machine { "machine" } else { "process" }
            ));
            return;
        }
        self.exec
            .sleep(Duration::from_millis(rng.gen_range(1..20)))
            .await;
        start_node(&self.exec, &self.disk, &self.net, 1, shards, defect);
        while self.book.clients_done.get() < clients {
            self.exec.sleep(Duration::from_millis(1)).await;
        }
        if let Some(missing) = self.missing_acked() {
            *self.book.failure.borrow_mut() = Some(format!(
                "after restart: acknowledged line {missing:?} is not in the page cache"
            ));
            return;
        }
        self.book.world_done.set(true);
    }

    /// The first acknowledged line that no shard log holds, if any.
    fn missing_acked(&self) -> Option<String> {
        let mut present: BTreeSet<Vec<u8>> = BTreeSet::new();
        for (path, _) in self.disk.list_files() {
            if let Some(data) = self.disk.read_now(&path) {
                present.extend(data.split(|b| *b == b'\n').map(<[u8]>::to_vec));
            }
        }
        self.book
            .acked
            .borrow()
            .iter()
            .find(|line| !present.contains(line.as_bytes()))
            .cloned()
    }
}
