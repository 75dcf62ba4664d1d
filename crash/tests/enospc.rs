//! ENOSPC against the real binary: the data dir on an 8 MiB tmpfs that `tidemark-crash
//! enospc` fills to ENOSPC mid-run (writes get `MISCONF … No space left on device`, reads
//! work, INFO shows the failure, freeing space brings writes back without a restart, no
//! acknowledged write lost, also after kill -9 + restart). Needs `mount -t tmpfs` (root):
//! where that fails the test says so on stderr and passes without checking anything.
//! `scripts/enospc.sh` runs more configurations (loop-mounted ext4 too).
//!
//! What can fail here: any of the checks above (the mode exits non-zero).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{profile_dir, tidemark_binary};

/// Unmounts and removes the mount point when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn full_filesystem_gives_misconf_keeps_reads_and_recovers_without_losing_acknowledged_writes() {
    let binary = tidemark_binary();
    let point = profile_dir().join(format!("enospc-test-{}", std::process::id()));
    std::fs::create_dir_all(&point).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&point)
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        other => {
            let _ = std::fs::remove_dir(&point);
            eprintln!(
                "SKIPPED: `mount -t tmpfs -o size=8m tmpfs {}` failed ({other:?}); run \
                 scripts/enospc.sh as root instead",
                point.display()
            );
            return;
        }
    }
    let mount = Mount(point);
    let output = Command::new(env!("CARGO_BIN_EXE_tidemark-crash"))
        .args(["enospc", "--binary"])
        .arg(&binary)
        .arg("--dir")
        .arg(mount.0.join("data"))
        .args(["--shards", "2", "--appendfsync", "always"])
        .output()
        .expect("run tidemark-crash enospc");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    drop(mount);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "enospc check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "MISCONF Errors writing to the AOF file: No space left on device",
        "aof_last_write_status:err",
        "BGREWRITEAOF while full: aof_last_bgrewrite_status:err",
        "BGREWRITEAOF after recovery: aof_last_bgrewrite_status:ok",
        "writes accepted again",
        "after kill -9 and restart: all",
        "PASS enospc",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}
