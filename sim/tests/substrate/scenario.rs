//! The placeholder scenario end to end: passes when correct, catches ack-before-fsync,
//! and replays bit for bit.

use tidemark_sim::scenario::{run_placeholder, PlaceholderDefect};

#[test]
fn correct_toy_server_passes_every_seed() {
    for seed in 0..40 {
        let r = run_placeholder(seed, false, PlaceholderDefect::None);
        assert_eq!(r.failure, None, "seed {seed}");
    }
}

#[test]
fn ack_before_fsync_is_caught_after_a_machine_crash() {
    let failures: Vec<_> = (0..60)
        .map(|seed| run_placeholder(seed, false, PlaceholderDefect::AckBeforeFsync))
        .filter(|r| r.failure.is_some())
        .collect();
    assert!(!failures.is_empty(), "the sweep must catch the defect");
    for r in &failures {
        assert_eq!(
            r.crash_kind, "machine",
            "seed {}: a process crash keeps the page cache",
            r.seed
        );
        assert!(
            r.failure
                .as_deref()
                .unwrap_or("")
                .contains("acknowledged line"),
            "{r:?}"
        );
    }
}

#[test]
fn a_seed_replays_bit_for_bit() {
    for seed in [3, 17, 99] {
        let a = run_placeholder(seed, false, PlaceholderDefect::None);
        let b = run_placeholder(seed, false, PlaceholderDefect::None);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(
            (a.steps, a.virtual_time, a.acked),
            (b.steps, b.virtual_time, b.acked)
        );
    }
    let hashes: std::collections::BTreeSet<u64> = (0..10)
        .map(|s| run_placeholder(s, false, PlaceholderDefect::None).trace_hash)
        .collect();
    assert_eq!(hashes.len(), 10);
}
