//! One seed = one run, bit for bit: the same seed twice gives the same report, trace hash
//! included; different seeds give different traces.

use tidemark_sim::world::{run_seed, RunOptions};

#[test]
fn a_seed_replays_bit_for_bit() {
    let opts = RunOptions::default();
    for seed in [3, 10_001] {
        let a = run_seed(seed, &opts);
        let b = run_seed(seed, &opts);
        assert_eq!(a, b, "seed {seed} is not deterministic");
        assert!(a.ops_acked > 0, "seed {seed} did nothing: {a}");
    }
    let c = run_seed(4, &opts);
    let d = run_seed(5, &opts);
    assert_ne!(c.trace_hash, d.trace_hash, "different seeds, same trace");
}
