//! tidemark-sim: the deterministic simulator for tidemark.
//!
//! One thread, one seed, one run: [`executor::Executor`] schedules every task (server
//! shards, clients, the world) in a seeded random order over virtual time;
//! [`disk::SimDisk`] models a page cache over a platter (process vs machine crash, torn
//! writes, fsync EIO, ENOSPC); [`net::SimNet`] models TCP (split reads, resets, node
//! kills); [`io::SimIo`] plugs them into the server's IO seam (`tidemark::io::Io`).
//! [`faults::FaultConfig`] holds the per-seed fault rates (swarm testing).
//! [`scenario`] holds the placeholder scenario the CLI runs until the world exists.
//!
//! What can fail here: see each module; a run's outcome is a
//! [`executor::RunOutcome`] and the placeholder scenario's a [`scenario::ScenarioResult`].

pub mod clock;
pub mod disk;
pub mod executor;
pub mod faults;
pub mod io;
pub mod net;
pub mod scenario;
