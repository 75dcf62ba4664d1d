//! The checkers can fail: each test re-introduces a predecessor bug through
//! `tidemark::server::config::Defects` and requires a sweep of at most `SEEDS_MAX` seeds to
//! report it, with a reproduction command in the failure message.

use tidemark::server::config::{Defects, FsyncPolicy};
use tidemark_sim::world::{run_seed, CrashKinds, RunOptions, RunReport};

/// Most seeds a defect sweep may need.
const SEEDS_MAX: u64 = 200;

/// The reproduction command a failing run must print for `seed` with these CLI `flags`.
fn repro(seed: u64, flags: &str) -> String {
    format!("cargo run -p tidemark-sim --release -- run --seed {seed} {flags}")
}

/// The same seed without the defect (only the extra run options) must pass, so the
/// failure comes from the defect.
fn assert_control_passes(report: &RunReport, base: &RunOptions, what: &str) {
    let control = run_seed(report.seed, base);
    assert_eq!(control.failure, None, "{what} alone must not fail the run");
}

/// The first failing report of seeds `0..SEEDS_MAX`, if any.
fn first_failure(opts: &RunOptions) -> Option<RunReport> {
    (0..SEEDS_MAX)
        .map(|seed| run_seed(seed, opts))
        .find(|report| report.failure.is_some())
}

/// Predecessor bug 2: `+OK` before the fsync under `appendfsync always`; a machine crash
/// right after the reply loses an acknowledged write.
#[test]
fn predecessor_bug_2_ack_before_fsync_is_caught() {
    let opts = RunOptions {
        defects: Defects {
            ack_before_fsync: true,
            ..Defects::default()
        },
        appendfsync: Some(FsyncPolicy::Always),
        crash_kinds: Some(CrashKinds::Machine),
        ..RunOptions::default()
    };
    let report = first_failure(&opts).expect("ack-before-fsync must be caught");
    assert_reported(
        &report,
        &repro(
            report.seed,
            "--appendfsync always --crash machine --defect ack-before-fsync",
        ),
        "acknowledged history allows only",
    );
}

/// Predecessor bug 1: start-up skips replay of one shard's log with shards >= 2; a
/// restart loses that shard's acknowledged writes.
#[test]
fn predecessor_bug_1_skip_replay_of_shard_is_caught() {
    let opts = RunOptions {
        defects: Defects {
            skip_replay_of_shard: Some(1),
            ..Defects::default()
        },
        shards: Some(2),
        crash_kinds: Some(CrashKinds::Both),
        ..RunOptions::default()
    };
    let report = first_failure(&opts).expect("skipped replay must be caught");
    assert_reported(
        &report,
        &repro(
            report.seed,
            "--shards 2 --crash both --defect skip-replay-shard-1",
        ),
        "acknowledged history allows only",
    );
}

/// Asserts that `report` failed with a message holding `repro` (the reproduction command
/// with the defect flag) and `expected`.
fn assert_reported(report: &RunReport, repro: &str, expected: &str) {
    let failure = report.failure.clone().unwrap_or_default();
    assert!(
        failure.contains(repro),
        "no reproduction command `{repro}` in: {failure}"
    );
    assert!(
        failure.contains(expected),
        "expected `{expected}` in: {failure}"
    );
}

/// Predecessor bug 3: the first write after recovery reuses the last record's LSN. The
/// next recovery finds LSN N where N + 1 was expected, with fsynced records after it:
/// start-up is refused as corruption (or, if nothing later was fsynced, the tail is cut
/// and acknowledged writes are lost). Needed 1 seed (seed 0) when written.
#[test]
fn predecessor_bug_3_lsn_reuse_after_recovery_is_caught() {
    let opts = RunOptions {
        defects: Defects {
            lsn_reuse_after_recovery: true,
            ..Defects::default()
        },
        ..RunOptions::default()
    };
    let report = first_failure(&opts).expect("LSN reuse after recovery must be caught");
    let repro = repro(report.seed, "--defect lsn-reuse");
    let failure = report.failure.clone().unwrap_or_default();
    let expected = if failure.contains("start-up refused") {
        "was expected"
    } else {
        "acknowledged history allows only"
    };
    assert_reported(&report, &repro, expected);
}

/// Predecessor bug 4: `wait_ack` has no timeout. A disk stalled for 10 minutes (far past
/// the 1 s `aof-fsync-timeout-ms` and the clients' 30 s stuck limit) leaves a client
/// waiting forever instead of getting an error. The same seed without the defect passes
/// (the writes time out with an error, the run goes on). Needed 1 seed (seed 0).
#[test]
fn predecessor_bug_4_unbounded_fsync_wait_is_caught() {
    let stall = RunOptions {
        disk_stall_ms: Some(600_000),
        ..RunOptions::default()
    };
    let opts = RunOptions {
        defects: Defects {
            unbounded_fsync_wait: true,
            ..Defects::default()
        },
        ..stall.clone()
    };
    let report = first_failure(&opts).expect("an unbounded fsync wait must be caught");
    let repro = repro(
        report.seed,
        "--defect unbounded-fsync-wait --disk-stall-ms 600000",
    );
    assert_reported(&report, &repro, "stuck");
    assert_control_passes(&report, &stall, "the stall");
}

/// Predecessor bug 9: under `everysec` the fsync deadline restarts at every write, so
/// the clients' sustained load starves it. The world's durability probe (a key written
/// once after each boot) is lost by a machine crash more than 2 s later. The same seed
/// without the defect passes. Needed 2 seeds (seed 1) when written.
#[test]
fn predecessor_bug_9_everysec_starved_by_traffic_is_caught() {
    let probe = RunOptions {
        appendfsync: Some(FsyncPolicy::Everysec),
        crash_kinds: Some(CrashKinds::Machine),
        durability_probe: true,
        ..RunOptions::default()
    };
    let opts = RunOptions {
        defects: Defects {
            everysec_starved_by_traffic: true,
            ..Defects::default()
        },
        ..probe.clone()
    };
    let report = first_failure(&opts).expect("a starved everysec fsync must be caught");
    let repro = repro(
        report.seed,
        "--appendfsync everysec --crash machine --defect everysec-starved --durability-probe",
    );
    assert_reported(&report, &repro, "acknowledged history allows only");
    assert_control_passes(&report, &probe, "the probe");
}

/// Predecessor bug 10: after a write error the writer does not latch and appends later
/// frames after the torn one. A restart then finds a bad frame followed by fsynced ones
/// (corruption refusal) or loses acknowledged writes. Needed 1 seed (seed 0).
#[test]
fn predecessor_bug_10_append_after_torn_write_is_caught() {
    let opts = RunOptions {
        defects: Defects {
            append_after_torn_write: true,
            ..Defects::default()
        },
        ..RunOptions::default()
    };
    let report = first_failure(&opts).expect("appending after a torn write must be caught");
    let repro = repro(report.seed, "--defect append-after-torn-write");
    let failure = report.failure.clone().unwrap_or_default();
    let expected = if failure.contains("start-up refused") {
        "Bad AOF record"
    } else {
        "acknowledged history allows only"
    };
    assert_reported(&report, &repro, expected);
}
