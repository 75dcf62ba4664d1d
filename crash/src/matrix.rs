//! The crash matrix: shards × `appendfsync` × what is in flight at the SIGKILL (nothing, a
//! BGREWRITEAOF, a BGSAVE), each cell a series of kill/restart cycles against the real
//! binary, with a table of what was acknowledged, lost and where the kills landed.
//!
//! Per cell: start the server on a fresh data dir, preload `--fill-keys` values (so that a
//! rewrite or a save takes long enough to be hit), time one BGREWRITEAOF / BGSAVE on it
//! (the first estimate of how long one runs), then per cycle: verify, start the workload
//! threads, wait a random time, issue the operation from a side connection, kill at a random
//! instant within the estimated duration — the last `INFO persistence` before the kill
//! (polled every millisecond) says whether the kill landed mid-operation — and restart.
//! After every restart (and once more at the end) the ledger is checked: under `always`
//! every acknowledged SET present with its value and INCR counters within [acknowledged,
//! sent]; under `everysec` at least 99% of acknowledged SETs present; under both, no key or
//! value that was never written (`Ledger::check_nothing_unwritten`) and the server starts.
//!
//! What can fail here: a violated check or a refused start marks the cell FAIL (the run
//! goes on with the next cell and exits 1 at the end, printing the seed); a setup error
//! (binary missing, port, data dir) exits 2.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::client::{Connection, Reply};
use crate::workload::{fill_key, fill_value, Ledger, Workload, FILL_TAGS};
use crate::{free_port, next, start, Failure, Options};

/// MSETs sent per pipeline while preloading.
const FILL_PIPELINE_COMMANDS: usize = 16;
/// Pause between two `INFO persistence` polls while waiting to kill, in ms.
const POLL_INTERVAL_MS: u64 = 1;
/// Longest wait for a calibration rewrite or save to finish, in ms.
const CALIBRATION_TIMEOUT_MS: u64 = 120_000;

/// `tidemark-crash matrix` options.
#[derive(Args, Debug, Clone)]
pub struct MatrixOptions {
    /// Path of the tidemark binary.
    #[arg(long, default_value = "target/release/tidemark")]
    pub binary: PathBuf,
    /// Cells to run, comma separated, each `SHARDS:FSYNC:MODE` with MODE one of plain,
    /// rewrite, bgsave (e.g. `2:always:rewrite,1:everysec:bgsave`); the full matrix
    /// ({1,2,4} × {always,everysec} × {plain,rewrite,bgsave}) by default.
    #[arg(long)]
    pub cells: Option<String>,
    /// Kill/restart cycles per cell.
    #[arg(long, default_value_t = 6)]
    pub cycles: u32,
    /// Client threads of the workload.
    #[arg(long, default_value_t = 4)]
    pub clients: u32,
    /// Longest run before the operation is issued (or, for plain, before the kill), in ms;
    /// the instant is drawn in [50, this].
    #[arg(long, default_value_t = 800)]
    pub run_ms_max: u64,
    /// Values preloaded before the first cycle, so a rewrite/save takes a while.
    #[arg(long, default_value_t = 200_000)]
    pub fill_keys: u64,
    /// Size of each preloaded value, in bytes.
    #[arg(long, default_value_t = 64)]
    pub fill_value_bytes: usize,
    /// Seed for the instants (each cell derives its own from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Parent of the cells' data dirs (each wiped at start, removed after a pass).
    #[arg(long, default_value = "target/crash-matrix")]
    pub dir: PathBuf,
}

/// What is in flight when the SIGKILL lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Rewrite,
    Bgsave,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Rewrite => "rewrite",
            Mode::Bgsave => "bgsave",
        }
    }

    /// The command and its `INFO persistence` in-progress field.
    fn command(self) -> Option<(&'static [u8], &'static str)> {
        match self {
            Mode::Plain => None,
            Mode::Rewrite => Some((b"BGREWRITEAOF", "aof_rewrite_in_progress")),
            Mode::Bgsave => Some((b"BGSAVE", "rdb_bgsave_in_progress")),
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
struct Cell {
    shards: u16,
    appendfsync: String,
    mode: Mode,
}

impl Cell {
    fn label(&self) -> String {
        format!("{}:{}:{}", self.shards, self.appendfsync, self.mode.name())
    }
}

/// What one cell measured.
#[derive(Debug, Default)]
struct CellResult {
    cycles: u32,
    acked_sets: u64,
    acked_incrs: u64,
    lost_sets: u64,
    lost_incrs: u64,
    kills_mid: u32,
    ops_issued: u32,
    op_estimate_ms: u64,
    seconds: f64,
    failure: Option<String>,
}

fn parse_cells(spec: Option<&str>) -> Result<Vec<Cell>, String> {
    let Some(spec) = spec else {
        let mut cells = Vec::new();
        for shards in [1, 2, 4] {
            for appendfsync in ["always", "everysec"] {
                for mode in [Mode::Plain, Mode::Rewrite, Mode::Bgsave] {
                    cells.push(Cell {
                        shards,
                        appendfsync: appendfsync.to_string(),
                        mode,
                    });
                }
            }
        }
        return Ok(cells);
    };
    spec.split(',')
        .map(|one| {
            let parts: Vec<&str> = one.trim().split(':').collect();
            let [shards, fsync, mode] = parts[..] else {
                return Err(format!("cell {one:?}: expected SHARDS:FSYNC:MODE"));
            };
            let shards: u16 = shards
                .parse()
                .map_err(|_| format!("cell {one:?}: bad shard count"))?;
            if !matches!(fsync, "always" | "everysec") {
                return Err(format!(
                    "cell {one:?}: appendfsync must be always or everysec"
                ));
            }
            let mode = match mode {
                "plain" => Mode::Plain,
                "rewrite" => Mode::Rewrite,
                "bgsave" => Mode::Bgsave,
                _ => {
                    return Err(format!(
                        "cell {one:?}: mode must be plain, rewrite or bgsave"
                    ))
                }
            };
            Ok(Cell {
                shards,
                appendfsync: fsync.to_string(),
                mode,
            })
        })
        .collect()
}

/// Runs the matrix, prints the table; the process exit code (0 pass, 1 violation, 2 setup).
pub fn main(options: &MatrixOptions) -> i32 {
    let cells = match parse_cells(options.cells.as_deref()) {
        Ok(cells) => cells,
        Err(message) => {
            eprintln!("setup error: {message}");
            return 2;
        }
    };
    let mut rows = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        let seed = options
            .seed
            .wrapping_mul(1000)
            .wrapping_add(index as u64 + 1);
        eprintln!("== cell {} (seed {seed})", cell.label());
        let mut result = CellResult::default();
        let started = Instant::now();
        match run_cell(options, cell, seed, &mut result) {
            Ok(()) => {}
            Err(Failure::Check(message)) => {
                eprintln!("FAIL {}: {message}", cell.label());
                eprintln!(
                    "reproduce: tidemark-crash matrix --binary {} --cells {} --cycles {} --clients {} --run-ms-max {} --fill-keys {} --fill-value-bytes {} --seed {} (cell seed {seed})",
                    options.binary.display(),
                    cell.label(),
                    options.cycles,
                    options.clients,
                    options.run_ms_max,
                    options.fill_keys,
                    options.fill_value_bytes,
                    options.seed,
                );
                result.failure = Some(message);
            }
            Err(Failure::Setup(message)) => {
                eprintln!("setup error in {}: {message}", cell.label());
                return 2;
            }
        }
        result.seconds = started.elapsed().as_secs_f64();
        rows.push((cell.clone(), result));
    }
    print_table(&rows);
    if rows.iter().any(|(_, r)| r.failure.is_some()) {
        1
    } else {
        0
    }
}

fn print_table(rows: &[(Cell, CellResult)]) {
    println!(
        "| cell (shards:appendfsync:in flight) | cycles | acked SETs | acked INCRs | lost SETs | lost INCRs | kills mid-op | op est. ms | s | result |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (cell, r) in rows {
        let mid = if cell.mode == Mode::Plain {
            "—".to_string()
        } else {
            format!(
                "{}/{} ({:.0}%)",
                r.kills_mid,
                r.ops_issued,
                100.0 * f64::from(r.kills_mid) / f64::from(r.ops_issued.max(1))
            )
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            cell.label(),
            r.cycles,
            r.acked_sets,
            r.acked_incrs,
            r.lost_sets,
            r.lost_incrs,
            mid,
            if cell.mode == Mode::Plain {
                0
            } else {
                r.op_estimate_ms
            },
            r.seconds,
            if r.failure.is_some() { "FAIL" } else { "PASS" }
        );
    }
}

/// One cell: preload, calibrate, kill/restart cycles, final check.
fn run_cell(
    options: &MatrixOptions,
    cell: &Cell,
    seed: u64,
    result: &mut CellResult,
) -> Result<(), Failure> {
    let dir = options.dir.join(format!(
        "{}-{}-{}",
        cell.shards,
        cell.appendfsync,
        cell.mode.name()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Setup(format!("create {}: {e}", dir.display())))?;
    let port = free_port()?;
    let server_options = server_options(options, cell);
    let mut rng = seed.max(1);
    let mut ledger = Ledger::new(options.clients);
    let mut server = start(&server_options, &dir, port)?;
    let t = Instant::now();
    preload(port, options.fill_keys, options.fill_value_bytes)?;
    ledger.add_fill(options.fill_keys, options.fill_value_bytes);
    let mut estimate_ms = match cell.mode.command() {
        Some((command, field)) => calibrate(port, command, field)?,
        None => 0,
    };
    result.op_estimate_ms = estimate_ms;
    eprintln!(
        "  preloaded {} keys, {} took {estimate_ms} ms on the idle server ({} ms in all)",
        options.fill_keys,
        cell.mode.name(),
        t.elapsed().as_millis()
    );
    let _ = server.kill();
    let _ = server.wait();
    for cycle in 0..options.cycles {
        let mut server = start(&server_options, &dir, port)?;
        check(&mut ledger, port, &cell.appendfsync, result)?;
        let workload = Workload::start(port, options.clients, cycle, &ledger);
        std::thread::sleep(Duration::from_millis(
            50 + next(&mut rng) % options.run_ms_max.max(51),
        ));
        let mut landed = String::new();
        if let Some((command, field)) = cell.mode.command() {
            // Within 1.25× the estimate: most kills land mid-operation, some just after.
            let delay_ms = next(&mut rng) % (estimate_ms + estimate_ms / 4).max(1);
            let outcome = issue_and_wait(port, command, field, delay_ms)?;
            result.ops_issued += 1;
            if outcome.in_progress_at_kill {
                result.kills_mid += 1;
            }
            if let Some(took_ms) = outcome.finished_after_ms {
                // Finished before the planned instant: the estimate was too long (the
                // calibration ran on a busier machine) — the measured time is the new one.
                estimate_ms = took_ms.max(1);
            }
            landed = format!(
                "; {} issued, kill {} ms later, {}",
                String::from_utf8_lossy(command),
                delay_ms,
                if outcome.in_progress_at_kill {
                    "mid-operation"
                } else {
                    "after it finished"
                }
            );
        }
        let _ = server.kill();
        let _ = server.wait();
        let outcome = workload.finish();
        result.acked_sets += outcome.acked_sets;
        result.acked_incrs += outcome.clients.iter().map(|c| c.incr_acked).sum::<u64>();
        ledger.absorb(outcome);
        result.cycles += 1;
        eprintln!(
            "  cycle {cycle}: {} SETs acknowledged so far{landed}",
            result.acked_sets
        );
    }
    let mut server = start(&server_options, &dir, port)?;
    let checked = check(&mut ledger, port, &cell.appendfsync, result);
    let _ = server.kill();
    let _ = server.wait();
    checked?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The single-run options `start` takes, for this cell.
fn server_options(options: &MatrixOptions, cell: &Cell) -> Options {
    Options {
        binary: options.binary.clone(),
        dir: None,
        shards: cell.shards,
        appendfsync: cell.appendfsync.clone(),
        cycles: options.cycles,
        clients: options.clients,
        run_ms_max: options.run_ms_max,
        seed: options.seed,
        with_benchmark: false,
        server_args: vec!["--loglevel".to_string(), "warning".to_string()],
        mode: None,
    }
}

/// Ledger check plus the never-written check; adds the losses to `result`.
fn check(
    ledger: &mut Ledger,
    port: u16,
    appendfsync: &str,
    result: &mut CellResult,
) -> Result<(), Failure> {
    let t = Instant::now();
    let verified = ledger
        .verify_counts(port, appendfsync)
        .map_err(Failure::Check)?;
    result.lost_sets += verified.lost_sets;
    result.lost_incrs += verified.lost_incrs;
    let t_scan = Instant::now();
    let keys = ledger
        .check_nothing_unwritten(port)
        .map_err(Failure::Check)?;
    eprintln!(
        "  verified {} acknowledged SETs ({} lost) in {} ms, {keys} keys for never-written values in {} ms",
        verified.total,
        verified.lost_sets,
        t_scan.duration_since(t).as_millis(),
        t_scan.elapsed().as_millis()
    );
    Ok(())
}

/// Loads `fill:{t}:<n>` for n in 0..keys: one MSET per hash tag `t` (so each goes to one
/// shard), pipelined; every reply must be `+OK`.
fn preload(port: u16, keys: u64, value_bytes: usize) -> Result<(), Failure> {
    let mut con = Connection::open(port).map_err(|e| Failure::Setup(format!("preload: {e}")))?;
    let commands: Vec<Vec<Vec<u8>>> = (0..FILL_TAGS.min(keys))
        .map(|tag| {
            let mut command = vec![b"MSET".to_vec()];
            for n in (tag..keys).step_by(FILL_TAGS as usize) {
                command.push(fill_key(n).into_bytes());
                command.push(fill_value(n, value_bytes).into_bytes());
            }
            command
        })
        .collect();
    for batch in commands.chunks(FILL_PIPELINE_COMMANDS) {
        con.send(batch)
            .map_err(|e| Failure::Setup(format!("preload: {e}")))?;
        for _ in batch {
            match con.read() {
                Ok(Reply::Simple(ok)) if ok == "OK" => {}
                other => return Err(Failure::Check(format!("preload MSET: {other:?}"))),
            }
        }
    }
    Ok(())
}

/// Runs `command` once on the idle server and returns how long it ran, in ms (≥ 1).
fn calibrate(port: u16, command: &[u8], field: &str) -> Result<u64, Failure> {
    let mut con = Connection::open(port).map_err(|e| Failure::Setup(format!("calibrate: {e}")))?;
    let started = Instant::now();
    issue(&mut con, command)?;
    loop {
        if !in_progress(&mut con, field)? {
            return Ok((started.elapsed().as_millis() as u64).max(1));
        }
        if started.elapsed() > Duration::from_millis(CALIBRATION_TIMEOUT_MS) {
            return Err(Failure::Check(format!(
                "{} still running after {CALIBRATION_TIMEOUT_MS} ms on an idle server",
                String::from_utf8_lossy(command)
            )));
        }
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
    }
}

/// Where the kill landed relative to the operation.
struct Landing {
    /// The last `INFO persistence` before the kill showed the operation running.
    in_progress_at_kill: bool,
    /// The operation was seen finished this many ms after it was issued (before the
    /// planned kill instant).
    finished_after_ms: Option<u64>,
}

/// Issues `command`, then polls `field` until `delay_ms` passed or the operation ended;
/// returns right after the last poll (the caller kills at once).
fn issue_and_wait(
    port: u16,
    command: &[u8],
    field: &str,
    delay_ms: u64,
) -> Result<Landing, Failure> {
    let mut con = Connection::open(port)
        .map_err(|e| Failure::Check(format!("side connection for {field}: {e}")))?;
    let started = Instant::now();
    issue(&mut con, command)?;
    loop {
        let running = in_progress(&mut con, field)?;
        if !running {
            return Ok(Landing {
                in_progress_at_kill: false,
                finished_after_ms: Some(started.elapsed().as_millis() as u64),
            });
        }
        if started.elapsed() >= Duration::from_millis(delay_ms) {
            return Ok(Landing {
                in_progress_at_kill: true,
                finished_after_ms: None,
            });
        }
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
    }
}

/// Sends BGREWRITEAOF / BGSAVE; the reply must say it started.
fn issue(con: &mut Connection, command: &[u8]) -> Result<(), Failure> {
    match con.call(&[command]) {
        Ok(Reply::Simple(text)) if text.starts_with("Background") => Ok(()),
        other => Err(Failure::Check(format!(
            "{}: unexpected reply {other:?}",
            String::from_utf8_lossy(command)
        ))),
    }
}

/// Reads `field` from `INFO persistence`.
fn in_progress(con: &mut Connection, field: &str) -> Result<bool, Failure> {
    let text = match con.call(&[b"INFO", b"persistence"]) {
        Ok(Reply::Bulk(text)) => String::from_utf8_lossy(&text).into_owned(),
        other => return Err(Failure::Check(format!("INFO persistence: {other:?}"))),
    };
    info_field(&text, field)
        .map(|v| v == "1")
        .ok_or_else(|| Failure::Check(format!("INFO persistence has no {field}")))
}

/// The value of `field` in an INFO reply.
pub fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}
