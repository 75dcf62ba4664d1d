//! The tidemark-sim command line: `run --seed S`, `replay --seed S` (run with the event
//! trace printed), `sweep --seeds N [--start S]`. Each runs the real tidemark server in the
//! simulated world (`tidemark_sim::world::run_seed`); flags force the shard count, the
//! `appendfsync` policy, the crash kinds, re-introduce a predecessor defect, stall the
//! disk once for long (`--disk-stall-ms`) or turn on the world's durability probe.
//! Every failure prints the exact command that reproduces it.
//!
//! What can fail here: a failing seed makes the process exit with status 1; a bad flag
//! value exits with status 2 (clap).

// Wall-clock time is only used to report seeds per minute of the sweep itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// `println!` that ignores a closed stdout (`| head` must not abort a sweep).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
use tidemark::server::config::{Defects, FsyncPolicy};
use tidemark_sim::world::{run_seed, CrashKinds, FaultModel, RunOptions, RunReport};

#[derive(Parser)]
#[command(name = "tidemark-sim", about = "Deterministic simulation of tidemark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every subcommand.
#[derive(clap::Args, Clone)]
struct Force {
    /// Force the shard count (1..=64).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    shards: Option<u16>,
    /// Force `appendfsync`: always | everysec | no.
    #[arg(long, value_parser = parse_fsync)]
    appendfsync: Option<FsyncPolicy>,
    /// Force the crash kinds: process | machine | both.
    #[arg(long, value_parser = parse_crash)]
    crash: Option<CrashKinds>,
    /// Re-introduce a predecessor defect: ack-before-fsync (bug 2),
    /// skip-replay-shard-N (bug 1), lsn-reuse (bug 3), unbounded-fsync-wait (bug 4),
    /// everysec-starved (bug 9), append-after-torn-write (bug 10), or the simulator-side
    /// stale-read and reply-before-apply (linearizability check). Repeatable.
    #[arg(long, value_parser = parse_defect)]
    defect: Vec<DefectFlag>,
    /// Allow fsync EIO together with both crash kinds (known server limitation C).
    #[arg(long)]
    fsync_eio_with_mixed_crashes: bool,
    /// With `--faults full`: also draw `appendfsync no` (15% of seeds). Off by default so
    /// that existing full-model seeds keep their plans (it found bug G, docs/simulation.md).
    #[arg(long)]
    draw_appendfsync_no: bool,
    /// Stall the disk for this many ms once, right after the last mid-run crash.
    #[arg(long)]
    disk_stall_ms: Option<u64>,
    /// After every boot write one key that nothing writes again (loss-window probe).
    #[arg(long)]
    durability_probe: bool,
    /// The fault model: classic (`FaultConfig::draw`) or full (every disk fault incl.
    /// read bit flips and misdirected writes, plus network partitions).
    #[arg(long, value_parser = parse_faults, default_value = "classic")]
    faults: FaultModel,
}

#[derive(Clone, Copy)]
enum DefectFlag {
    AckBeforeFsync,
    SkipReplayShard(u16),
    StaleRead,
    LsnReuse,
    UnboundedFsyncWait,
    EverysecStarved,
    AppendAfterTornWrite,
    ReplyBeforeApply,
}

fn parse_fsync(text: &str) -> Result<FsyncPolicy, String> {
    FsyncPolicy::parse(text).ok_or_else(|| format!("{text:?}: expected always, everysec or no"))
}

fn parse_crash(text: &str) -> Result<CrashKinds, String> {
    CrashKinds::parse(text).ok_or_else(|| format!("{text:?}: expected process, machine or both"))
}

fn parse_faults(text: &str) -> Result<FaultModel, String> {
    FaultModel::parse(text).ok_or_else(|| format!("{text:?}: expected classic or full"))
}

fn parse_defect(text: &str) -> Result<DefectFlag, String> {
    if text == "ack-before-fsync" {
        return Ok(DefectFlag::AckBeforeFsync);
    }
    if text == "stale-read" {
        return Ok(DefectFlag::StaleRead);
    }
    match text {
        "lsn-reuse" => return Ok(DefectFlag::LsnReuse),
        "unbounded-fsync-wait" => return Ok(DefectFlag::UnboundedFsyncWait),
        "everysec-starved" => return Ok(DefectFlag::EverysecStarved),
        "append-after-torn-write" => return Ok(DefectFlag::AppendAfterTornWrite),
        "reply-before-apply" => return Ok(DefectFlag::ReplyBeforeApply),
        _ => {}
    }
    if let Some(n) = text.strip_prefix("skip-replay-shard-") {
        if let Ok(shard) = n.parse() {
            return Ok(DefectFlag::SkipReplayShard(shard));
        }
    }
    Err(format!(
        "{text:?}: expected ack-before-fsync, skip-replay-shard-N, lsn-reuse, \
         unbounded-fsync-wait, everysec-starved, append-after-torn-write, stale-read or \
         reply-before-apply"
    ))
}

impl Force {
    fn options(&self, trace: bool) -> RunOptions {
        let mut defects = Defects::default();
        let mut stale_read = false;
        let mut reply_before_apply = false;
        for d in &self.defect {
            match d {
                DefectFlag::AckBeforeFsync => defects.ack_before_fsync = true,
                DefectFlag::SkipReplayShard(n) => defects.skip_replay_of_shard = Some(*n),
                DefectFlag::StaleRead => stale_read = true,
                DefectFlag::LsnReuse => defects.lsn_reuse_after_recovery = true,
                DefectFlag::UnboundedFsyncWait => defects.unbounded_fsync_wait = true,
                DefectFlag::EverysecStarved => defects.everysec_starved_by_traffic = true,
                DefectFlag::AppendAfterTornWrite => defects.append_after_torn_write = true,
                DefectFlag::ReplyBeforeApply => reply_before_apply = true,
            }
        }
        RunOptions {
            defects,
            shards: self.shards,
            appendfsync: self.appendfsync,
            crash_kinds: self.crash,
            trace,
            fsync_eio_with_mixed_crashes: self.fsync_eio_with_mixed_crashes,
            draw_appendfsync_no: self.draw_appendfsync_no,
            stale_read_defect: stale_read,
            disk_stall_ms: self.disk_stall_ms,
            durability_probe: self.durability_probe,
            faults: self.faults,
            reply_before_apply_defect: reply_before_apply,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs one seed and reports its outcome and trace hash.
    Run {
        /// The run seed.
        #[arg(long)]
        seed: u64,
        /// Print every simulation event.
        #[arg(long)]
        trace: bool,
        /// Run the seed twice and fail if the reports (trace hash included) differ.
        #[arg(long)]
        check_determinism: bool,
        #[command(flatten)]
        force: Force,
    },
    /// Runs one seed with the event trace printed (same as `run --trace`).
    Replay {
        /// The run seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        force: Force,
    },
    /// Runs seeds `start .. start + seeds` and reports every failure.
    Sweep {
        /// How many seeds.
        #[arg(long)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[command(flatten)]
        force: Force,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { seed, force } => run_one(seed, &force.options(true), false),
        Command::Run {
            seed,
            trace,
            check_determinism,
            force,
        } => run_one(seed, &force.options(trace), check_determinism),
        Command::Sweep {
            seeds,
            start,
            force,
        } => sweep(start, seeds, &force.options(false)),
    }
}

fn sweep(start: u64, seeds: u64, opts: &RunOptions) -> ExitCode {
    let began = Instant::now();
    let mut failures: Vec<RunReport> = Vec::new();
    let (mut acked, mut uncertain, mut steps, mut virtual_secs) = (0u64, 0u64, 0u64, 0f64);
    let mut faults = FaultTotals::default();
    let progress_every = (seeds / 20).max(1);
    for (i, seed) in (start..start.saturating_add(seeds)).enumerate() {
        let report = run_seed(seed, opts);
        acked += report.ops_acked;
        uncertain += report.ops_uncertain;
        steps += report.steps;
        virtual_secs += report.virtual_time.as_secs_f64();
        faults.add(&report);
        if report.failure.is_none() && report.ended_by_corruption() {
            say!("ENDED {report}");
        }
        if let Some(failure) = &report.failure {
            say!("FAIL {report}\n  {failure}");
            failures.push(report);
        }
        let done = i as u64 + 1;
        if done % progress_every == 0 || done == seeds {
            let secs = began.elapsed().as_secs_f64();
            say!(
                "progress: {done}/{seeds} seeds, {} failed, {:.1} seeds/min",
                failures.len(),
                done as f64 * 60.0 / secs.max(1e-9)
            );
        }
    }
    let secs = began.elapsed().as_secs_f64().max(1e-9);
    say!(
        "sweep: {seeds} seeds from {start}, {} failed; {:.1} s wall, {:.1} seeds/min, {:.0} simulated ops/s (acked {acked}, uncertain {uncertain}), {:.0} steps/s, {:.0} s virtual",
        failures.len(),
        secs,
        seeds as f64 * 60.0 / secs,
        (acked + uncertain) as f64 / secs,
        steps as f64 / secs,
        virtual_secs
    );
    say!("{faults}");
    for report in &failures {
        say!("  reproduce: {}", opts.repro_command(report.seed));
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one seed; prints the report and, on failure, the reproduction command.
fn run_one(seed: u64, opts: &RunOptions, check_determinism: bool) -> ExitCode {
    let report = run_seed(seed, opts);
    say!("{report}");
    if opts.trace || report.failure.is_some() {
        say!("plan: {}", report.plan);
    }
    if check_determinism {
        let quiet = RunOptions {
            trace: false,
            ..opts.clone()
        };
        let again = run_seed(seed, &quiet);
        if again != report {
            say!("FAIL: nondeterminism: second run gave\n{again}");
            return ExitCode::FAILURE;
        }
        say!("deterministic: the second run gave the same report and trace hash");
    }
    match report.failure {
        None => {
            say!("ok");
            ExitCode::SUCCESS
        }
        Some(failure) => {
            say!("FAIL: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// What a sweep's runs injected and how they ended, summed.
#[derive(Default)]
struct FaultTotals {
    refused_correctly: u64,
    device_lost: u64,
    read_flip_retries: u64,
    boot_retries: u64,
    read_bitflips: u64,
    misdirected_writes: u64,
    fsynced_damage: u64,
    partitions: u64,
    client_timeouts: u64,
    lin_checked_runs: u64,
    lin_ops: u64,
    lin_ops_checked: u64,
    lin_unknown_keys: u64,
}

impl FaultTotals {
    fn add(&mut self, r: &RunReport) {
        self.refused_correctly += u64::from(r.refused_correctly.is_some());
        self.device_lost += u64::from(r.device_lost.is_some());
        self.read_flip_retries += u64::from(r.read_flip_retries);
        self.boot_retries += u64::from(r.boot_retries);
        self.read_bitflips += r.read_bitflips;
        self.misdirected_writes += r.misdirected_writes;
        self.fsynced_damage += r.fsynced_damage;
        self.partitions += u64::from(r.partitions);
        self.client_timeouts += r.client_timeouts;
        self.lin_checked_runs += u64::from(r.lin_checked);
        self.lin_ops += r.lin_ops;
        self.lin_ops_checked += r.lin_ops_checked;
        self.lin_unknown_keys += r.lin_unknown_keys;
    }
}

impl std::fmt::Display for FaultTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ended correctly: {} refused start-up (verified corruption), {} lost to a device that destroyed fsynced data; \
             boots retried: {} after an IO error, {} after a transient read bit flip; \
             injected: {} read bit flips, {} misdirected writes, {} files with fsynced data damaged, {} partitions ({} client timeouts); \
             linearizability: {} runs checked, {} ops recorded, {} ops checked, {} keys unknown",
            self.refused_correctly,
            self.device_lost,
            self.boot_retries,
            self.read_flip_retries,
            self.read_bitflips,
            self.misdirected_writes,
            self.fsynced_damage,
            self.partitions,
            self.client_timeouts,
            self.lin_checked_runs,
            self.lin_ops,
            self.lin_ops_checked,
            self.lin_unknown_keys
        )
    }
}
