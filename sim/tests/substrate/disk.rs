//! SimDisk: pending vs durable data, names vs sync_dir, process vs machine crash, torn
//! writes at sector boundaries, fsync EIO, ENOSPC, crash points.

use std::io;
use std::path::Path;

use tidemark::io::{Disk, File, OpenMode};
use tidemark_sim::executor::Owner;
use tidemark_sim::faults::DiskFaults;

use crate::disk_support::{disk_with, faults, rng, run, write_file};
use crate::limits;

#[test]
fn unsynced_write_is_lost_by_machine_crash_but_not_by_process_crash() {
    let (exec, disk) = disk_with(1, faults(0.0, 0.0, 1.0));
    run(&exec, &disk, |d| async move {
        let _f = write_file(&d, "a", b"", true).await;
        d.sync_dir(Path::new("")).await.expect("sync_dir");
        let f = d
            .open(Path::new("a"), OpenMode::ReadWrite)
            .await
            .expect("open");
        let (res, _) = f.write_at(b"hello".to_vec(), 0).await;
        res.expect("write");
    });
    // Process crash: the page cache survives.
    exec.kill_owner(Owner::Node(1));
    disk.crash_process();
    assert_eq!(disk.read_now("a").as_deref(), Some(&b"hello"[..]));
    // A new process reads it through the seam too.
    let read = run(&exec, &disk, |d| async move {
        let f = d.open(Path::new("a"), OpenMode::Read).await.expect("open");
        let (res, buf) = f.read_at(Vec::with_capacity(64), 0).await;
        assert_eq!(res.expect("read"), 5);
        buf
    });
    assert_eq!(read, b"hello");
    // Machine crash with survival rate 0: the unsynced write is gone, the name stays.
    let report = disk.crash_machine(&mut rng(1));
    assert_eq!(report.writes_lost, 1);
    assert_eq!(disk.read_now("a").as_deref(), Some(&b""[..]));
}

#[test]
fn unsynced_write_may_survive_machine_crash() {
    let (exec, disk) = disk_with(2, faults(1.0, 0.0, 1.0));
    run(&exec, &disk, |d| async move {
        write_file(&d, "a", b"kept", false).await;
    });
    disk.crash_machine(&mut rng(2));
    assert_eq!(disk.read_now("a").as_deref(), Some(&b"kept"[..]));
}

#[test]
fn fsynced_data_survives_but_a_new_name_needs_sync_dir() {
    for sync_dir in [false, true] {
        let (exec, disk) = disk_with(3, faults(0.0, 0.0, 0.0));
        run(&exec, &disk, move |d| async move {
            d.create_dir_all(Path::new("dir")).await.expect("mkdir");
            d.sync_dir(Path::new("")).await.expect("sync root");
            write_file(&d, "dir/f", b"data", true).await;
            if sync_dir {
                d.sync_dir(Path::new("dir")).await.expect("sync dir");
            }
        });
        assert_eq!(disk.read_durable("dir/f").is_some(), sync_dir);
        disk.crash_machine(&mut rng(3));
        if sync_dir {
            assert_eq!(disk.read_now("dir/f").as_deref(), Some(&b"data"[..]));
        } else {
            assert_eq!(disk.read_now("dir/f"), None, "name was never made durable");
        }
    }
}

#[test]
fn unsynced_directory_loses_its_entries() {
    let (exec, disk) = disk_with(4, faults(1.0, 0.0, 0.0));
    run(&exec, &disk, |d| async move {
        d.create_dir_all(Path::new("x/y")).await.expect("mkdir");
        write_file(&d, "x/y/f", b"1", true).await;
        d.sync_dir(Path::new("x/y")).await.expect("sync leaf only");
    });
    disk.crash_machine(&mut rng(4));
    assert_eq!(
        disk.read_now("x/y/f"),
        None,
        "x was never synced into the root"
    );
    assert!(disk.list_files().is_empty());
}

#[test]
fn rename_replaces_atomically_only_after_sync_dir() {
    for sync_dir in [false, true] {
        let (exec, disk) = disk_with(5, faults(1.0, 0.0, 0.0));
        run(&exec, &disk, move |d| async move {
            write_file(&d, "manifest", b"old", true).await;
            d.sync_dir(Path::new("")).await.expect("sync");
            write_file(&d, "manifest.tmp", b"new", true).await;
            d.rename(Path::new("manifest.tmp"), Path::new("manifest"))
                .await
                .expect("rename");
            if sync_dir {
                d.sync_dir(Path::new("")).await.expect("sync");
            }
        });
        assert_eq!(disk.read_now("manifest").as_deref(), Some(&b"new"[..]));
        disk.crash_machine(&mut rng(5));
        let want: &[u8] = if sync_dir { b"new" } else { b"old" };
        assert_eq!(disk.read_now("manifest").as_deref(), Some(want));
        assert_eq!(disk.read_now("manifest.tmp"), None);
    }
}

#[test]
fn torn_writes_tear_only_at_sector_boundaries() {
    const SECTOR: usize = 512;
    let (mut saw_mixed, mut saw_extended) = (false, false);
    for seed in 0..200u64 {
        let (exec, disk) = disk_with(seed, faults(1.0, 1.0, 1.0));
        run(&exec, &disk, |d| async move {
            write_file(&d, "f", &[0x55; 4096], true).await;
            d.sync_dir(Path::new("")).await.expect("sync");
            let f = d
                .open(Path::new("f"), OpenMode::ReadWrite)
                .await
                .expect("open");
            // Overwrite 100..3100 and append 4000..5000.
            for (pos, len) in [(100u64, 3000usize), (4000, 1000)] {
                let (res, _) = f.write_at(vec![0xAA; len], pos).await;
                assert_eq!(res.expect("write"), len);
            }
        });
        let report = disk.crash_machine(&mut rng(seed));
        assert_eq!(report.writes_torn, 2);
        let data = disk.read_now("f").expect("file survives");
        assert!(data.len() == 4096 || (4096..=5000).contains(&data.len()));
        saw_extended |= data.len() == 5000;
        let first = &data[100..3100];
        saw_mixed |= first.contains(&0xAA) && first.iter().any(|b| *b != 0xAA);
        // Outside the written ranges nothing changes (beyond EOF a hole reads as zeros).
        for (i, b) in data.iter().enumerate() {
            let written = (100..3100).contains(&i) || (4000..5000).contains(&i);
            if !written {
                let want = if i < 4096 { 0x55 } else { 0 };
                assert_eq!(*b, want, "seed {seed}: byte {i} outside the writes changed");
            }
        }
        // Inside, every sector is all new data or has no new byte at all.
        for sector in 0..data.len().div_ceil(SECTOR) {
            let lo = sector * SECTOR;
            let hi = (lo + SECTOR).min(data.len());
            let idx: Vec<usize> = (lo..hi)
                .filter(|i| (100..3100).contains(i) || (4000..5000).contains(i))
                .collect();
            let new = idx.iter().filter(|i| data[**i] == 0xAA).count();
            assert!(
                new == 0 || new == idx.len(),
                "seed {seed}: sector {sector} torn inside ({new}/{})",
                idx.len()
            );
        }
    }
    assert!(saw_mixed, "some crash must keep part of a write");
    assert!(
        saw_extended,
        "some crash must extend the file with a torn append"
    );
}

#[test]
fn fsync_eio_reports_error_and_data_is_not_durable() {
    let mut f = faults(0.0, 0.0, 1.0);
    f.fsync_eio_rate = 1.0;
    let (exec, disk) = disk_with(6, f);
    let err = run(&exec, &disk, |d| async move {
        let file = write_file(&d, "log", b"", false).await;
        let (res, _) = file.write_at(b"record".to_vec(), 0).await;
        res.expect("write");
        file.sync_data().await.expect_err("fsync must fail")
    });
    assert_eq!(err.raw_os_error(), Some(5));
    assert_eq!(
        disk.read_now("log").as_deref(),
        Some(&b"record"[..]),
        "page cache still shows it"
    );
    assert_eq!(
        disk.pending_summary().pending_ops,
        0,
        "pages are clean after EIO"
    );
    let mut f = disk.faults();
    f.crash_write_survive_rate = 1.0; // would keep any still-pending write
    disk.set_faults(f);
    disk.crash_machine(&mut rng(6));
    assert_eq!(
        disk.read_now("log").as_deref(),
        Some(&b""[..]),
        "EIO lost the data for good"
    );
}

#[test]
fn enospc_gives_short_write_then_error() {
    let f = DiskFaults {
        capacity_bytes: Some(100),
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(7, f);
    let (first, second) = run(&exec, &disk, |d| async move {
        let file = d
            .open(Path::new("big"), OpenMode::CreateReadWrite)
            .await
            .expect("open");
        let (a, _) = file.write_at(vec![1; 150], 0).await;
        let (b, _) = file.write_at(vec![2; 10], 100).await;
        // Overwriting inside the file needs no space.
        let (c, _) = file.write_at(vec![3; 10], 0).await;
        assert_eq!(c.expect("overwrite"), 10);
        (a, b)
    });
    assert_eq!(first.expect("short write"), 100);
    let err: io::Error = second.expect_err("no space left");
    assert_eq!(err.raw_os_error(), Some(28));
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
}

#[test]
fn short_writes_and_write_eio_write_a_prefix() {
    let f = DiskFaults {
        short_write_rate: 1.0,
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(8, f);
    let n = run(&exec, &disk, |d| async move {
        let file = d
            .open(Path::new("s"), OpenMode::CreateReadWrite)
            .await
            .expect("open");
        let (res, _) = file.write_at(b"0123456789".to_vec(), 0).await;
        res.expect("short write is Ok")
    });
    assert!((1..10).contains(&n));
    assert_eq!(disk.read_now("s").expect("exists"), &b"0123456789"[..n]);
}

#[test]
fn crash_point_freezes_the_disk_after_n_ops() {
    let (exec, disk) = disk_with(9, DiskFaults::default());
    let at = disk.op_count() + 2; // open + write complete, the fsync never does
    disk.crash_after_ops(Some(at));
    let d = disk.clone();
    exec.spawn(Owner::Node(1), async move {
        let file = d
            .open(Path::new("f"), OpenMode::CreateReadWrite)
            .await
            .expect("open");
        let (res, _) = file.write_at(b"x".to_vec(), 0).await;
        res.expect("write");
        file.sync_data().await.expect("never returns");
        panic!("fsync completed after the crash point");
    });
    let d = disk.clone();
    let outcome = exec.run_until(limits(), move || d.crash_point_reached());
    assert_eq!(outcome, tidemark_sim::executor::RunOutcome::Done);
    let outcome = exec.run_until(limits(), || false);
    assert!(
        matches!(outcome, tidemark_sim::executor::RunOutcome::Deadlock { .. }),
        "{outcome:?}"
    );
    assert_eq!(disk.op_count(), at);
    assert_eq!(
        disk.pending_summary().pending_ops,
        1,
        "the write is pending, never synced"
    );
    exec.kill_owner(Owner::Node(1));
    disk.crash_process();
    assert!(!disk.crash_point_reached());
}

#[test]
fn list_dir_is_sorted_and_remove_is_pending_until_sync_dir() {
    let (exec, disk) = disk_with(10, faults(1.0, 0.0, 0.0));
    let names = run(&exec, &disk, |d| async move {
        for name in ["b", "a", "c"] {
            write_file(&d, name, name.as_bytes(), true).await;
        }
        d.create_dir_all(Path::new("sub")).await.expect("mkdir");
        d.sync_dir(Path::new("")).await.expect("sync");
        d.remove_file(Path::new("b")).await.expect("remove");
        let err = d
            .open(Path::new("b"), OpenMode::Read)
            .await
            .err()
            .expect("gone");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        d.list_dir(Path::new("")).await.expect("list")
    });
    assert_eq!(names, ["a", "c", "sub"]);
    disk.crash_machine(&mut rng(10));
    assert_eq!(
        disk.read_now("b").as_deref(),
        Some(&b"b"[..]),
        "unsynced remove undone"
    );
}

#[test]
fn write_eio_writes_a_prefix_and_fails() {
    let f = DiskFaults {
        write_eio_rate: 1.0,
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(12, f);
    let err = run(&exec, &disk, |d| async move {
        let file = d
            .open(Path::new("w"), OpenMode::CreateReadWrite)
            .await
            .expect("open");
        let (res, _) = file.write_at(b"0123456789".to_vec(), 0).await;
        res.expect_err("EIO")
    });
    assert_eq!(err.raw_os_error(), Some(5));
    let now = disk.read_now("w").expect("exists");
    assert!(now.len() < 10 && b"0123456789".starts_with(&now), "{now:?}");
}

#[test]
fn unnamed_inodes_vanish_and_pending_truncate_may_be_undone() {
    let mut saw = [false; 2];
    for seed in 0..40 {
        let (exec, disk) = disk_with(seed, faults(1.0, 0.0, 1.0));
        run(&exec, &disk, |d| async move {
            write_file(&d, "t", b"0123456789", true).await;
            d.sync_dir(Path::new("")).await.expect("sync");
            let f = d
                .open(Path::new("t"), OpenMode::ReadWrite)
                .await
                .expect("open");
            f.set_len(4).await.expect("truncate");
            write_file(&d, "never-synced", b"x", true).await;
        });
        disk.crash_machine(&mut rng(seed));
        let t = disk.read_now("t").expect("durable name");
        assert!(t == b"0123" || t == b"0123456789", "{t:?}");
        saw[usize::from(t.len() == 4)] = true;
        assert_eq!(
            disk.list_files().len(),
            1 + usize::from(disk.read_now("never-synced").is_some())
        );
    }
    assert_eq!(
        saw,
        [true, true],
        "both outcomes of a pending truncate must occur"
    );
}

#[test]
fn stall_holds_every_op_until_its_end() {
    let (exec, disk) = disk_with(13, DiskFaults::default());
    disk.stall_until(std::time::Duration::from_secs(10));
    let e = exec.clone();
    let done_at = run(&exec, &disk, move |d| async move {
        let f = write_file(&d, "s", b"x", true).await;
        drop(f);
        e.now()
    });
    assert!(done_at >= std::time::Duration::from_secs(10), "{done_at:?}");
    assert_eq!(disk.read_durable("s"), None, "name not synced");
}
