//! `tidemark-crash history`: records a client history from many concurrent real clients
//! against the real `tidemark` binary over loopback (`--appendonly yes --appendfsync
//! always`), optionally with kill -9 + restart cycles (the history spans the restarts), and
//! checks it with the simulator's linearizability checker (`tidemark_sim::linearizability`,
//! Wing & Gong / Lowe search, per key) and its tidemark models.
//!
//! Workload: `--clients` threads, each with its own blocking connection, run random
//! single-key commands over a small shared key set: counter keys (`ctr:*`: INCR, INCRBY,
//! GET, SET of an integer, DEL), string keys (`str:*`: SET of a unique value, GET, APPEND,
//! DEL, STRLEN, EXISTS), hash keys (`hash:*`: HSET, HGET, HDEL, HLEN) and list keys
//! (`list:*`: LPUSH, RPUSH, LPOP, RPOP, LLEN, LRANGE 0 -1). Families stay on disjoint keys
//! (the models have no WRONGTYPE path). Each command's call time is read from the monotonic
//! clock just before the request is written, its return time just after the reply is read.
//!
//! Unknown outcomes: a command whose connection dies (the server was killed) or that gets an
//! error reply has no return: it is pending forever (it may have taken effect at any later
//! instant, or never). Each epoch (server life) gets fresh client ids, so a client never has
//! two operations open.
//!
//! Verdict: `linearizable` only if every key's history has a linearization; `unknown`
//! (search budget exhausted) is reported as such and is not a pass.
//!
//! Test-only corruption (`--corrupt-stale-get`): after recording, one GET's reply is
//! replaced by a value that was certainly overwritten before the GET was called (a stale
//! read); the check must then say `not-linearizable`.
//!
//! What can fail here: the server not starting or a connection refused at an epoch's start
//! (setup error, exit 2), a non-linearizable or undecided history (exit 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tidemark_sim::linearizability::tidemark_models::{
    CollectionReply, HashOp, Hashes, KeyOp, ListOp, Lists, Strings,
};
use tidemark_sim::linearizability::{
    check_history_report, Budget, Completion, History, Model, Operation, Report, Verdict,
};
use tidemark_sim::model::{Op, Reply as StrReply};

use crate::client::{Connection, Reply};

/// Keys per family (counter, string, hash, list).
pub const FAMILY_KEYS: u32 = 3;
/// Fields a hash key's commands pick from.
const HASH_FIELDS: u32 = 3;
/// Longest explanation printed for a non-linearizable history, in bytes.
const EXPLANATION_LEN_MAX_BYTES: usize = 4000;

/// Options of the `history` subcommand.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "tidemark-crash history",
    about = "Record a concurrent client history against the real binary and check it for linearizability"
)]
pub struct HistoryOptions {
    /// Path of the tidemark binary.
    #[arg(long, default_value = "target/release/tidemark")]
    pub binary: PathBuf,
    /// Data directory (wiped at start); under `target/` by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Shards of the server.
    #[arg(long, default_value_t = 1)]
    pub shards: u16,
    /// Concurrent client threads (one connection each).
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// Operations to record (at least; in-flight ones at the end are added).
    #[arg(long, default_value_t = 10_000)]
    pub ops: u64,
    /// kill -9 + restart cycles spread over the run (0: one server life, no kill).
    #[arg(long, default_value_t = 0)]
    pub kills: u32,
    /// Seed of the workload and the kill instants.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Search budget per key, in search steps (exhausted → verdict `unknown`).
    #[arg(long, default_value_t = 20_000_000)]
    pub budget_steps: u64,
    /// Test-only: corrupt one GET into a stale read before checking (must fail).
    #[arg(long)]
    pub corrupt_stale_get: bool,
}

/// A string-family operation as recorded.
type StrOperation = Operation<KeyOp<Op>, StrReply>;
/// A collection operation as recorded.
type CollOperation<O> = Operation<KeyOp<O>, CollectionReply>;

/// Everything recorded, by family.
#[derive(Default)]
pub struct Recorded {
    /// Counter and string keys (the strings model).
    pub strings: Vec<StrOperation>,
    /// Hash keys.
    pub hashes: Vec<CollOperation<HashOp>>,
    /// List keys.
    pub lists: Vec<CollOperation<ListOp>>,
    /// Operations without a reply (connection died).
    pub unknown: u64,
    /// Operations answered with an error reply (recorded as unknown).
    pub errors: u64,
    /// Server restarts after a kill -9.
    pub restarts: u32,
}

impl Recorded {
    fn absorb(&mut self, other: Recorded) {
        self.strings.extend(other.strings);
        self.hashes.extend(other.hashes);
        self.lists.extend(other.lists);
        self.unknown += other.unknown;
        self.errors += other.errors;
    }

    /// Operations recorded.
    pub fn len(&self) -> usize {
        self.strings.len() + self.hashes.len() + self.lists.len()
    }
}

/// Entry point of the subcommand (`args` without the program name and `history`).
pub fn main(args: Vec<String>) -> ! {
    let options = HistoryOptions::parse_from(
        std::iter::once("tidemark-crash history".to_string()).chain(args),
    );
    match run(&options) {
        Ok(verdict) if verdict.is_linearizable() => std::process::exit(0),
        Ok(_) => std::process::exit(1),
        Err(message) => {
            eprintln!("setup error: {message}");
            std::process::exit(2);
        }
    }
}

/// Records and checks; prints the summary line. The verdict of the first family that is
/// not linearizable (else the first unknown, else `Linearizable`).
pub fn run(options: &HistoryOptions) -> Result<Verdict, String> {
    let started = Instant::now();
    let mut recorded = record(options)?;
    let record_ms = started.elapsed().as_millis();
    if options.corrupt_stale_get {
        let what = corrupt_stale_get(&mut recorded.strings);
        eprintln!("history: corrupted {what}");
    }
    let checked = Instant::now();
    let budget = Budget {
        steps_max_per_partition: options.budget_steps,
        ..Budget::DEFAULT
    };
    let reports = [
        ("strings", check::<Strings>(&recorded.strings, budget)?),
        ("hashes", check::<Hashes>(&recorded.hashes, budget)?),
        ("lists", check::<Lists>(&recorded.lists, budget)?),
    ];
    let check_ms = checked.elapsed().as_millis();
    let verdict = combine(reports.iter().map(|(_, r)| &r.verdict));
    let keys: usize = reports.iter().map(|(_, r)| r.partitions).sum();
    let steps: u64 = reports.iter().map(|(_, r)| r.steps).sum();
    println!(
        "history: clients={} ops={} unknown={} errors={} keys={} kills={} restarts={} record_ms={} check_ms={} steps={} verdict={}",
        options.clients,
        recorded.len(),
        recorded.unknown,
        recorded.errors,
        keys,
        options.kills,
        recorded.restarts,
        record_ms,
        check_ms,
        steps,
        verdict_name(&verdict)
    );
    for (family, report) in &reports {
        println!(
            "history:   {family}: keys={} steps={} verdict={}",
            report.partitions,
            report.steps,
            verdict_name(&report.verdict)
        );
    }
    match &verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable {
            partition,
            explanation,
        } => println!(
            "history: key {partition} is not linearizable: {}",
            clip(explanation)
        ),
        Verdict::Unknown { partition, reason } => {
            println!("history: key {partition} undecided: {reason}")
        }
    }
    println!(
        "history: reproduce: tidemark-crash history --binary {} --shards {} --clients {} --ops {} --kills {} --seed {}{}",
        options.binary.display(),
        options.shards,
        options.clients,
        options.ops,
        options.kills,
        options.seed,
        if options.corrupt_stale_get { " --corrupt-stale-get" } else { "" }
    );
    Ok(verdict)
}

/// `linearizable`, `not-linearizable` or `unknown`.
pub fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable { .. } => "not-linearizable",
        Verdict::Unknown { .. } => "unknown",
    }
}

fn combine<'a>(verdicts: impl Iterator<Item = &'a Verdict> + Clone) -> Verdict {
    if let Some(bad) = verdicts.clone().find(|v| v.is_not_linearizable()) {
        return bad.clone();
    }
    verdicts
        .into_iter()
        .find(|v| !v.is_linearizable())
        .cloned()
        .unwrap_or(Verdict::Linearizable)
}

fn clip(text: &str) -> String {
    let mut cut = text.len().min(EXPLANATION_LEN_MAX_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

fn check<M: Model>(
    ops: &[Operation<M::Input, M::Output>],
    budget: Budget,
) -> Result<Report, String> {
    let mut history = History::<M>::new();
    for op in ops {
        history
            .push(op.clone())
            .map_err(|e| format!("history: {e}"))?;
    }
    Ok(check_history_report(&history, budget))
}

/// Replaces one completed GET's reply by the value of a SET that certainly took effect
/// before another SET that returned before the GET was called (a stale read). Falls back
/// to a value never written. Returns a description.
pub fn corrupt_stale_get(ops: &mut [StrOperation]) -> String {
    let mut sets: Vec<(Vec<u8>, u64, u64, Vec<u8>)> = Vec::new(); // key, call, ret, value
    for op in ops.iter() {
        if let (Op::Set(value), Some(done)) = (&op.input.op, &op.completion) {
            if done.output == StrReply::Ok {
                sets.push((op.input.key.clone(), op.call, done.ret, value.clone()));
            }
        }
    }
    for op in ops.iter_mut().rev() {
        if op.input.op != Op::Get {
            continue;
        }
        let Some(done) = op.completion.as_mut() else {
            continue;
        };
        let key = &op.input.key;
        // s2 returned before the GET was called; s1 returned before s2 was called.
        let stale = sets
            .iter()
            .filter(|s2| s2.0 == *key && s2.2 < op.call)
            .find_map(|s2| {
                sets.iter()
                    .filter(|s1| s1.0 == *key && s1.2 < s2.1)
                    .max_by_key(|s1| s1.2)
            });
        if let Some(s1) = stale {
            let was = format!("{:?}", done.output);
            done.output = StrReply::Value(Some(s1.3.clone()));
            return format!(
                "GET {} at {}: {was} → stale {:?}",
                String::from_utf8_lossy(key),
                op.call,
                String::from_utf8_lossy(&s1.3)
            );
        }
    }
    for op in ops.iter_mut() {
        if let (Op::Get, Some(done)) = (&op.input.op, op.completion.as_mut()) {
            done.output = StrReply::Value(Some(b"never-written".to_vec()));
            return format!("GET at {}: → never-written", op.call);
        }
    }
    "nothing (no completed GET)".to_string()
}

/// Runs the server (with `options.kills` kill -9 + restart cycles) and the clients; returns
/// every operation recorded.
pub fn record(options: &HistoryOptions) -> Result<Recorded, String> {
    let dir = options.dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "target/history-{}-{}",
            std::process::id(),
            options.seed
        ))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let port = free_port()?;
    let clock = Instant::now();
    let epochs = u64::from(options.kills) + 1;
    let per_epoch = options.ops.div_ceil(epochs);
    let mut rng = options.seed.max(1);
    let mut recorded = Recorded::default();
    for epoch in 0..epochs {
        let mut server = start(options, &dir, port)?;
        let issued = Arc::new(AtomicU64::new(0));
        let killing = epoch + 1 < epochs;
        // A killed epoch runs until the kill (at 50..100% of its share of `ops`); the last
        // one runs until `ops` operations were recorded in all, then stops the server.
        let limit = if killing {
            u64::MAX
        } else {
            options.ops.saturating_sub(recorded.len() as u64).max(1)
        };
        let threads: Vec<_> = (0..options.clients)
            .map(|i| {
                let issued = issued.clone();
                let client = epoch * u64::from(options.clients) + u64::from(i);
                let seed = next(&mut rng) ^ client;
                std::thread::spawn(move || drive(port, client, seed, clock, &issued, limit))
            })
            .collect();
        if killing {
            let kill_at = per_epoch / 2 + next(&mut rng) % (per_epoch / 2).max(1);
            while issued.load(Ordering::Relaxed) < kill_at
                && !threads.iter().all(|t| t.is_finished())
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = server.kill();
            let _ = server.wait();
            recorded.restarts += 1;
        }
        for thread in threads {
            let got = thread
                .join()
                .map_err(|_| "client thread panicked".to_string())??;
            recorded.absorb(got);
        }
        if !killing {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(recorded)
}

/// One random command, as sent and as recorded.
enum Planned {
    Str(KeyOp<Op>),
    Hash(KeyOp<HashOp>),
    List(KeyOp<ListOp>),
}

fn plan(rng: &mut u64, client: u64, seq: u64) -> (Vec<Vec<u8>>, Planned) {
    let family = next(rng) % 10;
    let key_no = next(rng) % u64::from(FAMILY_KEYS);
    let roll = next(rng) % 100;
    let unique = format!("c{client}s{seq}").into_bytes();
    let b = |s: &str| s.as_bytes().to_vec();
    match family {
        0..=2 => {
            let key = format!("ctr:{key_no}").into_bytes();
            let (args, op) = match roll {
                0..=34 => (vec![b("INCR"), key.clone()], Op::IncrBy(1)),
                35..=49 => {
                    let n = (next(rng) % 21) as i64 - 10;
                    (
                        vec![b("INCRBY"), key.clone(), b(&n.to_string())],
                        Op::IncrBy(n),
                    )
                }
                50..=89 => (vec![b("GET"), key.clone()], Op::Get),
                90..=95 => {
                    let n = (next(rng) % 100).to_string();
                    (vec![b("SET"), key.clone(), b(&n)], Op::Set(b(&n)))
                }
                _ => (vec![b("DEL"), key.clone()], Op::Del),
            };
            (args, Planned::Str(KeyOp { key, op }))
        }
        3..=5 => {
            let key = format!("str:{key_no}").into_bytes();
            let (args, op) = match roll {
                0..=24 => (vec![b("SET"), key.clone(), unique.clone()], Op::Set(unique)),
                25..=59 => (vec![b("GET"), key.clone()], Op::Get),
                60..=74 => {
                    let tail = format!("+{client}").into_bytes();
                    (
                        vec![b("APPEND"), key.clone(), tail.clone()],
                        Op::Append(tail),
                    )
                }
                75..=84 => (vec![b("DEL"), key.clone()], Op::Del),
                85..=92 => (vec![b("STRLEN"), key.clone()], Op::Strlen),
                _ => (vec![b("EXISTS"), key.clone()], Op::Exists),
            };
            (args, Planned::Str(KeyOp { key, op }))
        }
        6..=7 => {
            let key = format!("hash:{key_no}").into_bytes();
            let field = format!("f{}", next(rng) % u64::from(HASH_FIELDS)).into_bytes();
            let (args, op) = match roll {
                0..=34 => (
                    vec![b("HSET"), key.clone(), field.clone(), unique.clone()],
                    HashOp::Hset(vec![(field, unique)]),
                ),
                35..=69 => (
                    vec![b("HGET"), key.clone(), field.clone()],
                    HashOp::Hget(field),
                ),
                70..=84 => (
                    vec![b("HDEL"), key.clone(), field.clone()],
                    HashOp::Hdel(vec![field]),
                ),
                _ => (vec![b("HLEN"), key.clone()], HashOp::Hlen),
            };
            (args, Planned::Hash(KeyOp { key, op }))
        }
        _ => {
            let key = format!("list:{key_no}").into_bytes();
            let (args, op) = match roll {
                0..=19 => (
                    vec![b("LPUSH"), key.clone(), unique.clone()],
                    ListOp::Lpush(vec![unique]),
                ),
                20..=39 => (
                    vec![b("RPUSH"), key.clone(), unique.clone()],
                    ListOp::Rpush(vec![unique]),
                ),
                40..=59 => (vec![b("LPOP"), key.clone()], ListOp::Lpop),
                60..=79 => (vec![b("RPOP"), key.clone()], ListOp::Rpop),
                80..=89 => (vec![b("LLEN"), key.clone()], ListOp::Llen),
                _ => (
                    vec![b("LRANGE"), key.clone(), b("0"), b("-1")],
                    ListOp::LrangeAll,
                ),
            };
            (args, Planned::List(KeyOp { key, op }))
        }
    }
}

fn str_reply(op: &Op, reply: &Reply) -> Option<StrReply> {
    match (op, reply) {
        (Op::Set(_), Reply::Simple(ok)) if ok == "OK" => Some(StrReply::Ok),
        (Op::Get, Reply::Bulk(v)) => Some(StrReply::Value(Some(v.clone()))),
        (Op::Get, Reply::Null) => Some(StrReply::Value(None)),
        (Op::Set(_) | Op::Get, _) => None,
        (_, Reply::Integer(n)) => Some(StrReply::Integer(*n)),
        _ => None,
    }
}

fn collection_reply(reply: &Reply) -> Option<CollectionReply> {
    match reply {
        Reply::Integer(n) => Some(CollectionReply::Integer(*n)),
        Reply::Bulk(v) => Some(CollectionReply::Value(Some(v.clone()))),
        Reply::Null => Some(CollectionReply::Value(None)),
        Reply::Array(items) => items
            .iter()
            .map(|item| match item {
                Reply::Bulk(v) => Some(v.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(CollectionReply::Array),
        Reply::Simple(_) | Reply::Error(_) => None,
    }
}

/// One client thread: runs commands until `limit` commands were issued by all clients
/// together, or its connection dies (the server was killed).
fn drive(
    port: u16,
    client: u64,
    seed: u64,
    clock: Instant,
    issued: &AtomicU64,
    limit: u64,
) -> Result<Recorded, String> {
    let mut out = Recorded::default();
    let mut con = Connection::open(port).map_err(|e| format!("client {client} connect: {e}"))?;
    let mut rng = seed.max(1);
    let now = || clock.elapsed().as_nanos() as u64;
    for seq in 0u64.. {
        if issued.fetch_add(1, Ordering::Relaxed) >= limit {
            break;
        }
        let (args, planned) = plan(&mut rng, client, seq);
        let call = now();
        let reply = con.send(&[args]).and_then(|()| con.read());
        let ret = now();
        let alive = reply.is_ok();
        if let Ok(Reply::Error(_)) = &reply {
            out.errors += 1;
        } else if reply.is_err() {
            out.unknown += 1;
        }
        let reply = reply.ok();
        match planned {
            Planned::Str(input) => {
                let output = reply.as_ref().and_then(|r| str_reply(&input.op, r));
                out.strings
                    .push(operation(client, call, ret, input, output));
            }
            Planned::Hash(input) => {
                let output = reply.as_ref().and_then(collection_reply);
                out.hashes.push(operation(client, call, ret, input, output));
            }
            Planned::List(input) => {
                let output = reply.as_ref().and_then(collection_reply);
                out.lists.push(operation(client, call, ret, input, output));
            }
        }
        if !alive {
            break;
        }
    }
    Ok(out)
}

fn operation<I, O>(
    client: u64,
    call: u64,
    ret: u64,
    input: I,
    output: Option<O>,
) -> Operation<I, O> {
    Operation {
        client,
        call,
        input,
        completion: output.map(|output| Completion { ret, output }),
    }
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local addr: {e}"))
}

fn start(options: &HistoryOptions, dir: &Path, port: u16) -> Result<Child, String> {
    let mut child = Command::new(&options.binary)
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .arg("--appendonly")
        .arg("yes")
        .arg("--appendfsync")
        .arg("always")
        .arg("--shards")
        .arg(options.shards.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", options.binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("server exited during start-up with {status}"));
        }
        if crate::client::ping(port) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("server did not accept connections within 30 s".to_string())
}
