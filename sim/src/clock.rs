//! SimClock: the simulated clock, read from the executor's virtual time.
//!
//! Monotonic time starts at 0 when the run starts and only moves when the executor
//! advances it (poll costs, jumps to the next timer). The wall clock is a seeded epoch
//! (ms since the Unix epoch, around Nov 2023) plus monotonic time. Clock skew and jumps
//! are not modelled yet.
//!
//! What can fail here: nothing; a sleep whose task is killed simply never completes.

use std::future::Future;
use std::time::Duration;

use crate::executor::Executor;

/// The simulated clock. Cheap to clone.
#[derive(Clone)]
pub struct SimClock {
    exec: Executor,
}

impl SimClock {
    /// The clock of `exec`.
    pub fn new(exec: &Executor) -> SimClock {
        SimClock { exec: exec.clone() }
    }
}

impl tidemark::io::Clock for SimClock {
    fn monotonic(&self) -> Duration {
        self.exec.now()
    }

    fn wall_clock_ms(&self) -> u64 {
        self.exec.wall_clock_ms()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + 'static {
        self.exec.sleep(duration)
    }
}
