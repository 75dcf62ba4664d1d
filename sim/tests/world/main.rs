//! Simulation sweeps of the REAL tidemark server (`tidemark_sim::world::run_seed`):
//! seeds that must pass, determinism, proof that the checkers catch re-introduced
//! predecessor bugs, and regression seeds for server bugs the simulator found.
//!
//! Scale with `TIDEMARK_SIM_SEEDS=<seeds per sweep test>` (default `DEFAULT_SEEDS`).
//! One test binary (one link); nextest runs each `#[test]` in its own process, in parallel.

mod corruption;
mod defects;
mod determinism;
mod linearizability;
mod regressions;
mod sweep;

/// Seeds per sweep test function when `TIDEMARK_SIM_SEEDS` is unset.
pub const DEFAULT_SEEDS: u64 = 25;

/// Seeds per sweep test function.
pub fn seeds_per_test() -> u64 {
    std::env::var("TIDEMARK_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEEDS)
}
