//! Helpers shared by the SimDisk tests (`disk_faults.rs`, `substrate/disk.rs`): a disk on a
//! fresh executor, running a disk task to completion, crash-rate fault configs, a file
//! written (and maybe fsynced) in one call. What can fail here: a helper's `expect` when
//! the disk refuses an operation the test assumed would succeed.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tidemark::io::{Disk, File, OpenMode};
use tidemark_sim::disk::SimDisk;
use tidemark_sim::executor::{Executor, Owner, RunLimits};
use tidemark_sim::faults::DiskFaults;

/// A file of the simulated disk.
pub type SimFileHandle = tidemark_sim::disk::SimFile;

/// Step and virtual-time bounds for one disk task.
pub fn disk_limits() -> RunLimits {
    RunLimits {
        max_steps: 1_000_000,
        max_time: Duration::from_secs(600),
    }
}

/// A SimDisk of node 1 on a fresh executor seeded with `seed`.
pub fn disk_with(seed: u64, faults: DiskFaults) -> (Executor, SimDisk) {
    let exec = Executor::new(seed);
    let disk = SimDisk::new(&exec, 1, faults);
    (exec, disk)
}

/// Runs `f(disk)` as a task of node 1 to completion.
pub fn run<T: 'static, F: std::future::Future<Output = T> + 'static>(
    exec: &Executor,
    disk: &SimDisk,
    f: impl FnOnce(SimDisk) -> F,
) -> T {
    exec.block_on(Owner::Node(1), disk_limits(), f(disk.clone()))
        .expect("disk task finishes")
}

/// Default faults with the given machine-crash survival, torn-write and dir-op rates.
pub fn faults(survive: f64, torn: f64, dir_ops: f64) -> DiskFaults {
    DiskFaults {
        crash_write_survive_rate: survive,
        crash_torn_rate: torn,
        crash_dir_op_rate: dir_ops,
        crash_set_len_rate: 0.5,
        ..DiskFaults::default()
    }
}

/// Creates `path` holding `data` (fsynced if `fsync`).
pub async fn write_file(disk: &SimDisk, path: &str, data: &[u8], fsync: bool) -> SimFileHandle {
    let file = disk
        .open(Path::new(path), OpenMode::CreateReadWrite)
        .await
        .expect("open");
    let (res, _) = file.write_at(data.to_vec(), 0).await;
    assert_eq!(res.expect("write"), data.len());
    if fsync {
        file.sync_data().await.expect("fsync");
    }
    file
}

/// A deterministic RNG for crash draws.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
