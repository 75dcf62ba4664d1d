//! Linearizability of the shared keys (`shared:…`, written by every client at once,
//! recorded with the linearizability `Recorder` and checked per key at the end of each
//! run): healthy seeds pass with the check on, the test-only stale-read defect is caught
//! with a reproduction command, and `everysec` runs with machine crashes skip the check.

use tidemark::server::config::FsyncPolicy;
use tidemark_sim::world::{run_seed, CrashKinds, FaultModel, RunOptions, RunReport};

/// Seeds of the passing sweep.
const SWEEP_SEEDS: u64 = 30;
/// First seed of the passing sweep (a block no other sweep uses).
const SWEEP_FIRST_SEED: u64 = 50_000;
/// Most seeds the defect sweep may need.
const DEFECT_SEEDS_MAX: u64 = 200;

#[test]
fn shared_key_histories_are_linearizable() {
    let opts = RunOptions {
        crash_kinds: Some(CrashKinds::Both),
        ..RunOptions::default()
    };
    let reports: Vec<RunReport> = (SWEEP_FIRST_SEED..SWEEP_FIRST_SEED + SWEEP_SEEDS)
        .map(|seed| run_seed(seed, &opts))
        .collect();
    let failures: Vec<&str> = reports
        .iter()
        .filter_map(|r| r.failure.as_deref())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing seed(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    let checked: Vec<&RunReport> = reports.iter().filter(|r| r.lin_checked).collect();
    assert!(
        checked.len() as u64 >= SWEEP_SEEDS / 2,
        "only {} of {SWEEP_SEEDS} runs were checked for linearizability",
        checked.len()
    );
    let ops: u64 = checked.iter().map(|r| r.lin_ops).sum();
    assert!(
        ops >= 100 * checked.len() as u64,
        "too few shared-key operations: {ops}"
    );
    let unknown: u64 = reports.iter().map(|r| r.lin_unknown_keys).sum();
    assert!(
        unknown <= SWEEP_SEEDS / 10,
        "{unknown} shared keys ran out of the search budget in {SWEEP_SEEDS} runs"
    );
}

#[test]
fn a_stale_read_is_caught_with_a_reproduction_command() {
    let opts = RunOptions {
        stale_read_defect: true,
        ..RunOptions::default()
    };
    let report = (0..DEFECT_SEEDS_MAX)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failure.is_some())
        .expect("the stale-read defect must be caught");
    let failure = report.failure.clone().unwrap_or_default();
    assert!(
        failure.contains("is not linearizable"),
        "expected a linearizability failure: {failure}"
    );
    assert!(failure.contains("shared key \"shared:"), "{failure}");
    let repro = format!(
        "cargo run -p tidemark-sim --release -- run --seed {} --defect stale-read",
        report.seed
    );
    assert!(
        failure.contains(&repro),
        "no reproduction command in: {failure}"
    );
    assert_eq!(
        run_seed(report.seed, &opts),
        report,
        "the failing run must replay bit for bit"
    );
}

/// Test-only defect "reply before applying" (simulator side: client 1 records each SET of
/// a shared key as answered `OK` when it calls it), under the full fault model (network
/// partitions, read splits, resets, delays): reported as not linearizable, with the
/// reproduction command.
#[test]
fn a_reply_before_apply_is_caught_with_a_reproduction_command() {
    let opts = RunOptions {
        reply_before_apply_defect: true,
        faults: FaultModel::Full,
        ..RunOptions::default()
    };
    let report = (0..DEFECT_SEEDS_MAX)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failure.is_some())
        .expect("the reply-before-apply defect must be caught");
    let failure = report.failure.clone().unwrap_or_default();
    assert!(
        failure.contains("is not linearizable"),
        "expected a linearizability failure: {failure}"
    );
    let repro = format!(
        "cargo run -p tidemark-sim --release -- run --seed {} --faults full --defect reply-before-apply",
        report.seed
    );
    assert!(
        failure.contains(&repro),
        "no reproduction command in: {failure}"
    );
    let control = RunOptions {
        reply_before_apply_defect: false,
        ..opts
    };
    assert_eq!(
        run_seed(report.seed, &control).failure,
        None,
        "the same seed without the defect must pass"
    );
}

/// Network faults reach the linearizability check: under the full fault model the plans
/// draw partitions (clients time out: unknown outcomes), resets and split reads, and the
/// checked histories stay linearizable.
#[test]
fn histories_stay_linearizable_under_network_partitions() {
    let opts = RunOptions {
        crash_kinds: Some(CrashKinds::Both),
        faults: FaultModel::Full,
        ..RunOptions::default()
    };
    let reports: Vec<RunReport> = (SWEEP_FIRST_SEED..SWEEP_FIRST_SEED + SWEEP_SEEDS / 2)
        .map(|seed| run_seed(seed, &opts))
        .collect();
    for r in &reports {
        assert_eq!(r.failure, None, "{r}");
    }
    let partitions: u32 = reports.iter().map(|r| r.partitions).sum();
    let timeouts: u64 = reports.iter().map(|r| r.client_timeouts).sum();
    assert!(partitions > 0, "no partition was injected");
    assert!(timeouts > 0, "no client timed out during a partition");
    let checked = reports
        .iter()
        .filter(|r| r.lin_checked && r.partitions > 0 && r.lin_ops_checked > 0)
        .count();
    assert!(checked > 0, "no partitioned run had its history checked");
}

#[test]
fn everysec_with_machine_crashes_skips_the_check() {
    let opts = RunOptions {
        appendfsync: Some(FsyncPolicy::Everysec),
        crash_kinds: Some(CrashKinds::Machine),
        ..RunOptions::default()
    };
    let report = run_seed(1, &opts);
    assert_eq!(report.failure, None, "{report}");
    assert!(report.machine_crashes > 0, "{report}");
    assert!(!report.lin_checked, "{report}");
    let always = RunOptions {
        appendfsync: Some(FsyncPolicy::Always),
        ..opts
    };
    let report = run_seed(1, &always);
    assert_eq!(report.failure, None, "{report}");
    assert!(report.lin_checked, "{report}");
}
