//! tidemark-sim: the deterministic simulator for tidemark.
//!
//! One thread, one seed, one run: [`executor::Executor`] schedules every task (server
//! shards, clients, the world) in a seeded random order over virtual time;
//! [`disk::SimDisk`] models a page cache over a platter (process vs machine crash, torn
//! writes, fsync EIO, ENOSPC); [`net::SimNet`] models TCP (split reads, resets, node
//! kills); [`io::SimIo`] plugs them into the server's IO seam (`tidemark::io::Io`).
//! [`faults::FaultConfig`] holds the per-seed fault rates (swarm testing).
//! [`world`] runs the real tidemark server under crashes and faults with the simulated
//! clients of [`workload`], the reference model of [`model`] and the checkers of
//! [`check`]: [`world::run_seed`] is one seed = one run. [`scenario`] holds the older toy
//! scenario that exercises the substrate alone.
//!
//! What can fail here: see each module; a run's outcome is a
//! [`executor::RunOutcome`] and the placeholder scenario's a [`scenario::ScenarioResult`].

pub mod check;
pub mod clock;
pub mod crashpoints;
pub mod disk;
pub mod executor;
pub mod faults;
pub mod io;
pub mod linearizability;
pub mod model;
pub mod net;
pub mod scenario;
pub mod workload;
pub mod world;

use executor::{Executor, Owner};

/// Process crash (SIGKILL) of the node owning `disk`: drops every task of the node,
/// removes its listeners and resets its connections; the disk keeps its page cache.
/// Build a fresh `tidemark::server::Node` and fresh `io::SimIo`s (next `boot`) to restart.
pub fn crash_process(exec: &Executor, net: &net::SimNet, disk: &disk::SimDisk) {
    let node = disk.node();
    exec.kill_owner(Owner::Node(node));
    net.kill_node(node);
    disk.crash_process();
}

/// Machine crash (power loss) of the node owning `disk`: a process crash, then the disk
/// loses or tears what was not durable (see `disk::SimDisk::crash_machine`).
pub fn crash_machine(
    exec: &Executor,
    net: &net::SimNet,
    disk: &disk::SimDisk,
    rng: &mut impl rand::Rng,
) -> disk::CrashReport {
    let node = disk.node();
    exec.kill_owner(Owner::Node(node));
    net.kill_node(node);
    disk.crash_machine(rng)
}
