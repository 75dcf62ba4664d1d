//! The tidemark-sim command line: `run --seed S [--trace]`, `sweep --seeds N [--start S]`.
//!
//! Until the world (tidemark server + workload + checkers) lands, both commands run the
//! PLACEHOLDER scenario (`tidemark_sim::scenario`), which exercises the executor, SimDisk,
//! SimNet and SimIo with a toy append server. Every failure prints the exact command that
//! reproduces it.
//!
//! What can fail here: a failing seed makes the process exit with status 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tidemark_sim::scenario::{run_placeholder, PlaceholderDefect, ScenarioResult};

#[derive(Parser)]
#[command(name = "tidemark-sim", about = "Deterministic simulation of tidemark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Defect {
    /// The toy server replies before fsyncing (placeholder for predecessor bug 2).
    AckBeforeFsync,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one seed (placeholder scenario) and reports its outcome and trace hash.
    Run {
        /// The run seed.
        #[arg(long)]
        seed: u64,
        /// Print every simulation event.
        #[arg(long)]
        trace: bool,
        /// Re-introduce a defect in the toy server.
        #[arg(long, value_enum)]
        defect: Option<Defect>,
        /// Run the seed twice and fail if the trace hashes differ.
        #[arg(long)]
        check_determinism: bool,
    },
    /// Runs one seed with the event trace printed (same as `run --trace`).
    Replay {
        /// The run seed.
        #[arg(long)]
        seed: u64,
        /// Re-introduce a defect in the toy server.
        #[arg(long, value_enum)]
        defect: Option<Defect>,
    },
    /// Runs seeds `start .. start + seeds` and reports every failure.
    Sweep {
        /// How many seeds.
        #[arg(long)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Re-introduce a defect in the toy server.
        #[arg(long, value_enum)]
        defect: Option<Defect>,
    },
}

fn placeholder_defect(defect: Option<Defect>) -> PlaceholderDefect {
    match defect {
        None => PlaceholderDefect::None,
        Some(Defect::AckBeforeFsync) => PlaceholderDefect::AckBeforeFsync,
    }
}

fn repro(seed: u64, defect: Option<Defect>) -> String {
    let flag = match defect {
        None => "",
        Some(Defect::AckBeforeFsync) => " --defect ack-before-fsync",
    };
    format!("cargo run -p tidemark-sim --release -- run --seed {seed}{flag}")
}

fn describe(r: &ScenarioResult) -> String {
    format!(
        "seed {} [placeholder scenario] crash={} acked={} steps={} virtual_time={:?} trace_hash={:016x}",
        r.seed, r.crash_kind, r.acked, r.steps, r.virtual_time, r.trace_hash
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { seed, defect } => run_one(seed, true, defect, false),
        Command::Run {
            seed,
            trace,
            defect,
            check_determinism,
        } => run_one(seed, trace, defect, check_determinism),
        Command::Sweep {
            seeds,
            start,
            defect,
        } => {
            let mut failures = 0u64;
            for seed in start..start.saturating_add(seeds) {
                let result = run_placeholder(seed, false, placeholder_defect(defect));
                if let Some(failure) = &result.failure {
                    failures += 1;
                    println!("FAIL {}: {failure}", describe(&result));
                    println!("  reproduce: {}", repro(seed, defect));
                }
            }
            println!("sweep [placeholder scenario]: {seeds} seeds from {start}, {failures} failed");
            if failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs one seed; prints the outcome, the trace hash and, on failure, the repro command.
fn run_one(seed: u64, trace: bool, defect: Option<Defect>, check_determinism: bool) -> ExitCode {
    let result = run_placeholder(seed, trace, placeholder_defect(defect));
    println!("{}", describe(&result));
    if check_determinism {
        let again = run_placeholder(seed, false, placeholder_defect(defect));
        if again.trace_hash != result.trace_hash {
            println!(
                "FAIL: nondeterminism: trace hash {:016x} then {:016x}",
                result.trace_hash, again.trace_hash
            );
            return ExitCode::FAILURE;
        }
        println!("deterministic: second run has the same trace hash");
    }
    match result.failure {
        None => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Some(failure) => {
            println!("FAIL: {failure}");
            println!("reproduce: {}", repro(seed, defect));
            ExitCode::FAILURE
        }
    }
}
