//! tidemark-crash: SIGKILL crash checks against the real `tidemark` binary.
//!
//! Each cycle: start the server on a loopback port with a data dir, drive a workload from
//! several client threads (SET of unique keys and INCR of per-client counters, recording
//! every acknowledged reply), SIGKILL the server at a random instant, restart it on the same
//! dir and check:
//! - `appendfsync always`: every acknowledged SET is present with its value; every counter
//!   is ≥ its acknowledged INCRs and ≤ the INCRs sent (exact within the unacknowledged window);
//! - `everysec`: at least 99% of acknowledged SETs are present, counters never exceed the
//!   INCRs sent.
//!
//! Other modes: `matrix` (shards × appendfsync × rewrite/BGSAVE in flight, src/matrix.rs)
//! and `enospc` (the data dir's filesystem runs full, src/enospc.rs).
//!
//! What can fail here: the server not starting (exit 2), a check failing (exit 1, with the
//! seed that reproduces the schedule). The crash instants come from `--seed`; the OS
//! scheduler still varies between runs, so a seed reproduces the schedule, not the run.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod client;
mod enospc;
mod history;
mod matrix;
mod workload;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

use workload::{Ledger, Workload};

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "tidemark-crash",
    about = "SIGKILL crash checks against the real tidemark binary"
)]
struct Options {
    /// Path of the tidemark binary.
    #[arg(long, default_value = "target/release/tidemark")]
    binary: PathBuf,
    /// Data directory (wiped at start); a temp dir under the working directory by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Shards of the server.
    #[arg(long, default_value_t = 1)]
    shards: u16,
    /// appendfsync policy: always or everysec.
    #[arg(long, default_value = "always")]
    appendfsync: String,
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 5)]
    cycles: u32,
    /// Client threads.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Longest run before the kill, in ms (the kill instant is drawn in [50, this]).
    #[arg(long, default_value_t = 1500)]
    run_ms_max: u64,
    /// Seed for the kill instants.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also run redis-benchmark (SET, 50 clients, -P 16) against the server during each
    /// cycle, so the kill lands in the middle of a benchmark.
    #[arg(long)]
    with_benchmark: bool,
    /// Extra flags passed to the server (e.g. "--hz 100").
    #[arg(long, allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Another mode instead of the single run above.
    #[command(subcommand)]
    mode: Option<Mode>,
}

/// Modes other than the single run.
#[derive(clap::Subcommand, Debug, Clone)]
enum Mode {
    /// The crash matrix: shards × appendfsync × {plain, rewrite, bgsave in flight}, with a
    /// table (src/matrix.rs).
    Matrix(matrix::MatrixOptions),
    /// The data dir's filesystem runs full mid-run, then space is freed (src/enospc.rs;
    /// scripts/enospc.sh mounts the small filesystem).
    Enospc(enospc::EnospcOptions),
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("history") {
        history::main(std::env::args().skip(2).collect());
    }
    let options = Options::parse();
    match &options.mode {
        Some(Mode::Matrix(matrix_options)) => std::process::exit(matrix::main(matrix_options)),
        Some(Mode::Enospc(enospc_options)) => std::process::exit(enospc::main(enospc_options)),
        None => {}
    }
    match run(&options) {
        Ok(summary) => println!("PASS {summary}"),
        Err(Failure::Check(message)) => {
            eprintln!("FAIL: {message}");
            eprintln!("reproduce: {}", reproduce_command(&options));
            std::process::exit(1);
        }
        Err(Failure::Setup(message)) => {
            eprintln!("setup error: {message}");
            std::process::exit(2);
        }
    }
}

enum Failure {
    Check(String),
    Setup(String),
}

fn reproduce_command(options: &Options) -> String {
    format!(
        "cargo run -p tidemark-crash --release -- --binary {} --shards {} --appendfsync {} --cycles {} --clients {} --run-ms-max {} --seed {}{}",
        options.binary.display(),
        options.shards,
        options.appendfsync,
        options.cycles,
        options.clients,
        options.run_ms_max,
        options.seed,
        if options.with_benchmark { " --with-benchmark" } else { "" }
    )
}

fn run(options: &Options) -> Result<String, Failure> {
    let dir = options.dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "target/crash-{}-{}",
            std::process::id(),
            options.seed
        ))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Setup(format!("create {}: {e}", dir.display())))?;
    let port = free_port()?;
    let mut rng = options.seed.max(1);
    let mut ledger = Ledger::new(options.clients);
    let mut acked_total = 0u64;
    for cycle in 0..options.cycles {
        let mut server = start(options, &dir, port)?;
        ledger
            .verify(port, &options.appendfsync)
            .map_err(Failure::Check)?;
        let kill_after = Duration::from_millis(50 + next(&mut rng) % options.run_ms_max.max(51));
        let mut benchmark = options
            .with_benchmark
            .then(|| start_benchmark(port))
            .transpose()?;
        let workload = Workload::start(port, options.clients, cycle, &ledger);
        std::thread::sleep(kill_after);
        let _ = server.kill();
        let _ = server.wait();
        if let Some(benchmark) = benchmark.as_mut() {
            let _ = benchmark.kill();
            let _ = benchmark.wait();
        }
        let outcome = workload.finish();
        acked_total += outcome.acked_sets;
        ledger.absorb(outcome);
        eprintln!(
            "cycle {cycle}: killed after {} ms; {} SETs acknowledged so far",
            kill_after.as_millis(),
            acked_total
        );
    }
    let mut server = start(options, &dir, port)?;
    let checked = ledger
        .verify(port, &options.appendfsync)
        .map_err(Failure::Check);
    let _ = server.kill();
    let _ = server.wait();
    let report = checked?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!(
        "shards={} appendfsync={} cycles={} acknowledged_sets={} {report}",
        options.shards, options.appendfsync, options.cycles, acked_total
    ))
}

/// redis-benchmark as background load (SET on random keys, 50 clients, pipeline 16).
fn start_benchmark(port: u16) -> Result<Child, Failure> {
    Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "set",
            "-n",
            "100000000",
            "-r",
            "1000000",
            "-c",
            "50",
            "-P",
            "16",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::Setup(format!("spawn redis-benchmark: {e}")))
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn free_port() -> Result<u16, Failure> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Failure::Setup(format!("bind: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Failure::Setup(format!("local addr: {e}")))
}

fn start(options: &Options, dir: &std::path::Path, port: u16) -> Result<Child, Failure> {
    let mut command = Command::new(&options.binary);
    command
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .arg("--appendonly")
        .arg("yes")
        .arg("--appendfsync")
        .arg(&options.appendfsync)
        .arg("--shards")
        .arg(options.shards.to_string())
        .args(&options.server_args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .map_err(|e| Failure::Setup(format!("spawn {}: {e}", options.binary.display())))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure::Check(format!(
                "server exited during start-up with {status}"
            )));
        }
        if client::ping(port) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    Err(Failure::Setup(
        "server did not accept connections within 30 s".to_string(),
    ))
}
