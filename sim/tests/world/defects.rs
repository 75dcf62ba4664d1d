//! The checkers can fail: each test re-introduces a predecessor bug through
//! `tidemark::server::config::Defects` and requires a sweep of at most `SEEDS_MAX` seeds to
//! report it, with a reproduction command in the failure message.

use tidemark::server::config::{Defects, FsyncPolicy};
use tidemark_sim::world::{run_seed, CrashKinds, RunOptions, RunReport};

/// Most seeds a defect sweep may need.
const SEEDS_MAX: u64 = 200;

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
    let failure = report.failure.unwrap_or_default();
    let repro = format!(
        "cargo run -p tidemark-sim --release -- run --seed {} --appendfsync always --crash machine --defect ack-before-fsync",
        report.seed
    );
    assert!(
        failure.contains(&repro),
        "no reproduction command in: {failure}"
    );
    assert!(
        failure.contains("acknowledged history allows only"),
        "expected a lost acknowledged write: {failure}"
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
    let failure = report.failure.unwrap_or_default();
    let repro = format!(
        "cargo run -p tidemark-sim --release -- run --seed {} --shards 2 --crash both --defect skip-replay-shard-1",
        report.seed
    );
    assert!(
        failure.contains(&repro),
        "no reproduction command in: {failure}"
    );
    assert!(
        failure.contains("acknowledged history allows only"),
        "expected a lost acknowledged write: {failure}"
    );
}
