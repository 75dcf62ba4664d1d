//! The full fault model (`--faults full`: read bit flips, misdirected writes, latency
//! spikes, crash-filled appends, ENOSPC, network partitions) keeps the oracle honest:
//! corruption the disk really injected and that destroyed fsynced data ends the run as
//! "refused start-up, correctly" (verified by the simulator, not a failure); a transient
//! read bit flip makes a boot refuse and the retried boot recover everything; a refusal
//! the simulator cannot blame on an injected fault stays a failure.

use tidemark::server::config::Defects;
use tidemark_sim::world::{run_seed, CrashKinds, FaultModel, RunOptions};

/// Both crash kinds, the full fault model.
fn full() -> RunOptions {
    RunOptions {
        crash_kinds: Some(CrashKinds::Both),
        faults: FaultModel::Full,
        ..RunOptions::default()
    }
}

/// Seed 43 (seed 21 before the start-up copy changed the disk op sequence): a misdirected
/// write lands on fsynced records of an AOF; a machine crash exposes the platter; recovery
/// finds a bad record followed by one written after it had been fsynced and refuses to
/// start. The world verifies the damage was injected.
#[test]
fn a_misdirected_write_over_fsynced_records_is_refused_correctly() {
    let report = run_seed(43, &full());
    assert_eq!(report.failure, None, "{report}");
    let why = report
        .refused_correctly
        .as_deref()
        .unwrap_or_else(|| panic!("seed 43 must end refused: {report}"));
    assert!(why.contains("AOF recovery refused"), "{why}");
    assert!(why.contains("[verified:"), "{why}");
    assert!(report.misdirected_writes > 0, "{report}");
    assert!(report.fsynced_damage > 0, "{report}");
    assert!(
        !report.lin_checked,
        "a device that destroyed acknowledged data voids the linearizability check: {report}"
    );
}

/// Seeds 7 and 53 (93 and 140 before the start-up copy): read bit flips during recovery make boots refuse (a CRC mismatch);
/// the world retries them (the platter is fine) and every key checks out afterwards.
#[test]
fn transient_read_bit_flips_are_refused_then_recovered_by_a_restart() {
    for seed in [7, 53] {
        let report = run_seed(seed, &full());
        assert_eq!(report.failure, None, "{report}");
        assert!(!report.ended_by_corruption(), "{report}");
        assert!(report.read_bitflips > 0, "{report}");
        assert!(report.read_flip_retries > 0, "{report}");
        assert!(report.keys_checked > 0, "{report}");
    }
}

/// A corruption refusal the simulator did not cause (re-introduced predecessor bug 10:
/// appending after a torn frame) is still a failure under the full fault model, with the
/// reproduction command.
#[test]
fn an_unexplained_corruption_refusal_still_fails_the_run() {
    let opts = RunOptions {
        defects: Defects {
            append_after_torn_write: true,
            ..Defects::default()
        },
        ..full()
    };
    let report = (0..200)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failure.is_some())
        .expect("appending after a torn write must be caught under the full fault model");
    let failure = report.failure.clone().unwrap_or_default();
    let repro = format!(
        "cargo run -p tidemark-sim --release -- run --seed {} --crash both --defect append-after-torn-write --faults full",
        report.seed
    );
    assert!(
        failure.contains(&repro),
        "no reproduction command in: {failure}"
    );
    assert!(report.refused_correctly.is_none(), "{report}");
    assert!(report.device_lost.is_none(), "{report}");
}

/// The full fault model's plans replay bit for bit too.
#[test]
fn a_full_fault_seed_replays_bit_for_bit() {
    let a = run_seed(21, &full());
    let b = run_seed(21, &full());
    assert_eq!(a, b);
}
