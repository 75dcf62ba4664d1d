//! Tests of the simulation substrate: executor, SimDisk, SimNet, SimIo plumbing.
//! One test binary (fewer links); each module covers one component.

mod disk;
#[path = "../disk_support/mod.rs"]
mod disk_support;
mod executor;
mod net;
mod scenario;
mod smoke;

use std::time::Duration;

use tidemark_sim::executor::RunLimits;

/// Generous budgets for unit-sized runs.
pub fn limits() -> RunLimits {
    RunLimits {
        max_steps: 1_000_000,
        max_time: Duration::from_secs(600),
    }
}
