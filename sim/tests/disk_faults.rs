//! The full SimDisk fault model (issue 3 item 6), one test per fault, each asserting its
//! effect and its `disk.fault.*` count: torn sectors (prefix / suffix / garbage / zeros),
//! lost appends that still extend the file, unsynced rename / unlink that may or may not
//! apply, fsync EIO dropping pages, ENOSPC recovering when space is freed, read bit
//! flips, misdirected writes, latency spikes and stalls, short writes, `draw_full`, and
//! protocol sections (crash points over mutating ops).

use std::path::Path;

use tidemark::io::{Disk, File, OpenMode};
use tidemark_sim::disk::SimDisk;
use tidemark_sim::executor::Owner;
use tidemark_sim::faults::DiskFaults;

mod disk_support;
use disk_support::{disk_limits as limits, disk_with, faults, rng, run, write_file};

/// Writes `old` durably (data + name), then `new` at `pos` without fsync.
async fn durable_then_pending(d: &SimDisk, path: &str, old: &[u8], pos: u64, new: &[u8]) {
    write_file(d, path, old, true).await;
    d.sync_dir(Path::new("")).await.expect("sync_dir");
    let f = d
        .open(Path::new(path), OpenMode::ReadWrite)
        .await
        .expect("open");
    let (res, _) = f.write_at(new.to_vec(), pos).await;
    assert_eq!(res.expect("write"), new.len());
}

#[test]
fn torn_sectors_come_as_prefix_suffix_and_garbage() {
    const SECTOR: usize = 512;
    // One pending overwrite of 4 whole sectors; classify each torn outcome.
    let (mut prefix, mut suffix, mut garbage, mut zeros) = (false, false, false, false);
    for seed in 0..300u64 {
        let (exec, disk) = disk_with(seed, faults(1.0, 1.0, 1.0));
        run(&exec, &disk, |d| async move {
            durable_then_pending(&d, "f", &[0x11; 4 * SECTOR], 0, &[0xEE; 4 * SECTOR]).await;
        });
        let report = disk.crash_machine(&mut rng(seed));
        assert_eq!(report.writes_torn, 1);
        assert_eq!(disk.fault_counts().get("disk.fault.torn_write"), Some(&1));
        let data = disk.read_now("f").expect("file");
        assert_eq!(data.len(), 4 * SECTOR);
        let new: Vec<bool> = data
            .chunks(SECTOR)
            .map(|s| {
                let n = s.iter().filter(|b| **b == 0xEE).count();
                assert!(n == 0 || n == SECTOR, "seed {seed}: torn inside a sector");
                n == SECTOR
            })
            .collect();
        let k = new.iter().filter(|b| **b).count();
        if k > 0 && k < 4 {
            prefix |= new[..k].iter().all(|b| *b);
            suffix |= new[4 - k..].iter().all(|b| *b) && !new[0];
        }
        for s in data.chunks(SECTOR).filter(|s| s[0] != 0xEE) {
            if s.iter().all(|b| *b == 0) {
                zeros = true;
            } else if s.iter().all(|b| *b != 0x11 && *b != 0xEE) {
                garbage = true;
            }
        }
    }
    assert!(
        prefix && suffix && garbage && zeros,
        "{prefix} {suffix} {garbage} {zeros}"
    );
}

#[test]
fn lost_appends_may_still_extend_the_file_with_zeros_or_garbage() {
    let mut f = faults(0.0, 0.0, 1.0);
    f.crash_append_fill_rate = 1.0;
    let (mut saw_zeros, mut saw_garbage) = (false, false);
    for seed in 0..40u64 {
        let (exec, disk) = disk_with(seed, f.clone());
        run(&exec, &disk, |d| async move {
            durable_then_pending(&d, "log", b"head", 4, &[0x5A; 100]).await;
        });
        let report = disk.crash_machine(&mut rng(seed));
        assert_eq!((report.writes_lost, report.appends_filled), (1, 1));
        assert_eq!(disk.fault_counts().get("disk.fault.append_fill"), Some(&1));
        let data = disk.read_now("log").expect("file");
        assert_eq!(data.len(), 104, "the size reached the platter");
        assert_eq!(&data[..4], b"head", "durable prefix intact");
        let tail = &data[4..];
        assert!(
            tail.iter().all(|b| *b != 0x5A),
            "the data itself never landed"
        );
        saw_zeros |= tail.iter().all(|b| *b == 0);
        saw_garbage |= tail.iter().all(|b| *b != 0);
    }
    assert!(saw_zeros && saw_garbage);
    // Off by default: a lost append leaves the durable length.
    let (exec, disk) = disk_with(1, faults(0.0, 0.0, 1.0));
    run(&exec, &disk, |d| async move {
        durable_then_pending(&d, "log", b"head", 4, &[0x5A; 100]).await;
    });
    disk.crash_machine(&mut rng(1));
    assert_eq!(disk.read_now("log").as_deref(), Some(&b"head"[..]));
}

#[test]
fn unsynced_rename_and_unlink_may_or_may_not_apply() {
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..60u64 {
        let (exec, disk) = disk_with(seed, faults(1.0, 0.0, 0.5));
        run(&exec, &disk, |d| async move {
            write_file(&d, "m", b"old", true).await;
            write_file(&d, "gone", b"x", true).await;
            d.sync_dir(Path::new("")).await.expect("sync");
            write_file(&d, "m.tmp", b"new", true).await;
            d.sync_dir(Path::new("")).await.expect("sync");
            d.rename(Path::new("m.tmp"), Path::new("m"))
                .await
                .expect("rename");
            d.remove_file(Path::new("gone")).await.expect("unlink");
        });
        disk.crash_machine(&mut rng(seed));
        let m = disk.read_now("m").expect("m always exists");
        assert!(m == b"old" || m == b"new", "{m:?}");
        // A rename is atomic: old name gone iff new content under `m`.
        assert_eq!(disk.read_now("m.tmp").is_some(), m == b"old");
        outcomes.insert((m == b"new", disk.read_now("gone").is_some()));
    }
    assert_eq!(outcomes.len(), 4, "every combination occurs: {outcomes:?}");
}

#[test]
fn fsync_eio_drops_pending_pages_and_is_counted() {
    let mut f = faults(0.0, 0.0, 1.0); // EIO settles nothing onto the platter
    let (exec, disk) = disk_with(21, f.clone());
    f.fsync_eio_rate = 1.0;
    let err = run(&exec, &disk, |d| async move {
        durable_then_pending(&d, "aof", b"", 0, b"SET k v").await;
        d.set_faults(f);
        let file = d
            .open(Path::new("aof"), OpenMode::ReadWrite)
            .await
            .expect("open");
        file.sync_data().await.expect_err("EIO")
    });
    assert_eq!(err.raw_os_error(), Some(5));
    assert_eq!(disk.fault_counts().get("disk.fault.fsync_eio"), Some(&1));
    assert_eq!(disk.pending_summary().pending_ops, 0, "pages dropped");
    // The cache still lies until it is evicted; then the data is gone.
    assert_eq!(disk.read_now("aof").as_deref(), Some(&b"SET k v"[..]));
    disk.evict_page_cache();
    assert_eq!(disk.read_now("aof").as_deref(), Some(&b""[..]));
}

#[test]
fn enospc_at_capacity_recovers_when_space_is_freed() {
    let f = DiskFaults {
        capacity_bytes: Some(1000),
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(22, f);
    run(&exec, &disk, |d| async move {
        let a = write_file(&d, "a", &[1; 600], false).await;
        let b = write_file(&d, "b", &[2; 400], false).await;
        let (res, _) = b.write_at(vec![3; 10], 400).await;
        assert_eq!(res.expect_err("full").raw_os_error(), Some(28));
        // Truncate frees space.
        a.set_len(100).await.expect("truncate");
        let (res, _) = b.write_at(vec![3; 10], 400).await;
        assert_eq!(res.expect("space returned"), 10);
        // Fill up again, then remove a file to free space.
        let (res, _) = b.write_at(vec![4; 490], 410).await;
        assert_eq!(res.expect("fits exactly"), 490);
        let err = b.set_len(901).await.expect_err("extend past capacity");
        assert_eq!(err.raw_os_error(), Some(28));
        d.remove_file(Path::new("a")).await.expect("unlink");
        b.set_len(1000).await.expect("space returned after unlink");
    });
    assert!(disk.fault_counts()["disk.fault.enospc"] >= 2);
}

#[test]
fn read_bitflips_corrupt_the_read_not_the_data() {
    let f = DiskFaults {
        read_bitflip_rate: 1.0,
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(23, f);
    let data: Vec<u8> = (0..=255u8).collect();
    let want = data.clone();
    let reads = run(&exec, &disk, |d| async move {
        let file = write_file(&d, "r", &data, true).await;
        let mut reads = Vec::new();
        for _ in 0..3 {
            let (res, buf) = file.read_at(Vec::with_capacity(256), 0).await;
            assert_eq!(res.expect("read"), 256);
            reads.push(buf);
        }
        reads
    });
    for read in &reads {
        let flipped: u32 = read
            .iter()
            .zip(&want)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(flipped, 1, "exactly one bit flipped per read");
    }
    assert_eq!(
        disk.read_now("r").as_deref(),
        Some(&want[..]),
        "stored data intact"
    );
    assert_eq!(disk.fault_counts()["disk.fault.read_bitflip"], 3);
}

#[test]
fn misdirected_writes_land_elsewhere_or_nowhere_and_report_success() {
    const SECTOR: usize = 512;
    let mut f = faults(1.0, 0.0, 1.0);
    f.misdirected_write_rate = 1.0;
    let (mut moved, mut lost) = (false, false);
    for seed in 0..40u64 {
        let (exec, disk) = disk_with(seed, f.clone());
        let mut clean = f.clone();
        clean.misdirected_write_rate = 0.0;
        let d2 = disk.clone();
        let n = run(&exec, &disk, move |d| async move {
            d2.set_faults(clean.clone());
            write_file(&d, "m", &[0u8; 8 * SECTOR], true).await;
            d.sync_dir(Path::new("")).await.expect("sync");
            let mut bad = clean;
            bad.misdirected_write_rate = 1.0;
            d2.set_faults(bad);
            let file = d
                .open(Path::new("m"), OpenMode::ReadWrite)
                .await
                .expect("open");
            let (res, _) = file.write_at(vec![0xAB; 100], 3 * SECTOR as u64 + 7).await;
            file.sync_data().await.expect("fsync succeeds");
            res.expect("misdirected write reports success")
        });
        assert_eq!(n, 100);
        assert_eq!(disk.fault_counts()["disk.fault.misdirected_write"], 1);
        // The page cache shows the write where it was meant to go…
        let cached = disk.read_now("m").expect("file");
        assert!(cached[3 * SECTOR + 7..3 * SECTOR + 107]
            .iter()
            .all(|b| *b == 0xAB));
        // …the platter does not.
        disk.crash_machine(&mut rng(seed));
        let data = disk.read_now("m").expect("file");
        assert_eq!(data.len(), 8 * SECTOR);
        assert!(data[3 * SECTOR + 7..3 * SECTOR + 107]
            .iter()
            .all(|b| *b == 0));
        let at: Vec<usize> = (0..data.len()).filter(|i| data[*i] == 0xAB).collect();
        if at.is_empty() {
            lost = true;
        } else {
            assert_eq!(at.len(), 100, "moved whole");
            assert_eq!(at[0] % SECTOR, 7, "sector-aligned shift");
            moved = true;
        }
    }
    assert!(moved && lost, "moved {moved} lost {lost}");
}

#[test]
fn latency_spikes_and_sync_stalls_take_long_virtual_time() {
    let f = DiskFaults {
        latency_spike_rate: 1.0,
        latency_spike_ms: 500,
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(24, f);
    let e = exec.clone();
    let took = run(&exec, &disk, move |d| async move {
        let t0 = e.now();
        d.create_dir_all(Path::new("x")).await.expect("mkdir");
        e.now() - t0
    });
    assert!(took >= std::time::Duration::from_millis(500), "{took:?}");
    assert_eq!(disk.fault_counts()["disk.fault.latency_spike"], 1);

    let f = DiskFaults {
        stall_rate: 1.0,
        stall_ms: 300,
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(25, f);
    let e = exec.clone();
    let (write_took, sync_took) = run(&exec, &disk, move |d| async move {
        let file = write_file(&d, "s", b"", false).await;
        let t0 = e.now();
        let (res, _) = file.write_at(b"x".to_vec(), 0).await;
        res.expect("write");
        let t1 = e.now();
        file.sync_data().await.expect("fsync");
        (t1 - t0, e.now() - t1)
    });
    assert!(
        write_took < std::time::Duration::from_millis(1),
        "{write_took:?}"
    );
    assert!(
        sync_took >= std::time::Duration::from_millis(300),
        "{sync_took:?}"
    );
    assert_eq!(disk.fault_counts()["disk.fault.stall"], 1);
}

#[test]
fn short_writes_are_counted() {
    let f = DiskFaults {
        short_write_rate: 1.0,
        ..DiskFaults::default()
    };
    let (exec, disk) = disk_with(26, f);
    run(&exec, &disk, |d| async move {
        let file = d
            .open(Path::new("s"), OpenMode::CreateReadWrite)
            .await
            .expect("open");
        let (res, _) = file.write_at(vec![7; 64], 0).await;
        assert!(res.expect("short") < 64);
    });
    assert_eq!(disk.fault_counts()["disk.fault.short_write"], 1);
}

#[test]
fn draw_full_turns_each_new_fault_on_in_some_seeds_and_draw_never() {
    use tidemark_sim::faults::FaultConfig;
    let mut on = [0usize; 5];
    for seed in 0..200u64 {
        let plain = FaultConfig::draw(&mut rng(seed));
        let full = FaultConfig::draw_full(&mut rng(seed));
        assert_eq!(plain.net, full.net, "draw_full extends draw");
        assert_eq!(plain.disk.fsync_eio_rate, full.disk.fsync_eio_rate);
        assert_eq!(plain.disk.read_bitflip_rate, 0.0);
        assert_eq!(plain.disk.misdirected_write_rate, 0.0);
        assert_eq!(plain.disk.latency_spike_rate, 0.0);
        assert_eq!(plain.disk.crash_append_fill_rate, 0.0);
        let d = &full.disk;
        for (i, rate) in [
            d.read_bitflip_rate,
            d.misdirected_write_rate,
            d.latency_spike_rate,
            d.crash_append_fill_rate,
        ]
        .iter()
        .enumerate()
        {
            on[i] += usize::from(*rate > 0.0);
        }
        on[4] += usize::from(d.capacity_bytes.is_some());
        assert!(d.misdirected_write_rate <= 0.002, "misdirection stays rare");
        let disk_only = DiskFaults::draw_full(&mut rng(seed));
        assert_eq!(&disk_only, d);
    }
    for (i, n) in on.iter().enumerate() {
        assert!((40..=160).contains(n), "fault {i} on in {n}/200 seeds");
    }
}

#[test]
fn sections_count_only_mutating_ops_and_freeze_after_the_kth() {
    let (exec, disk) = disk_with(27, DiskFaults::default());
    let n = run(&exec, &disk, |d| async move {
        write_file(&d, "a", b"1", true).await; // outside the section
        d.start_section(None);
        let f = d
            .open(Path::new("a"), OpenMode::ReadWrite)
            .await
            .expect("open"); // not counted
        let (res, _) = f.read_at(Vec::with_capacity(4), 0).await; // not counted
        res.expect("read");
        let (res, _) = f.write_at(b"2".to_vec(), 0).await; // 1
        res.expect("write");
        f.sync_data().await.expect("fsync"); // 2
        d.rename(Path::new("a"), Path::new("b"))
            .await
            .expect("rename"); // 3
        d.sync_dir(Path::new("")).await.expect("sync_dir"); // 4
        d.end_section()
    });
    assert_eq!(n, 4);
    assert_eq!(disk.section_ops(), 4);
    assert_eq!(
        disk.mutation_count(),
        7,
        "create, write, fsync before the section"
    );
    // Armed at 2: the rename never happens.
    let (exec, disk) = disk_with(27, DiskFaults::default());
    let d = disk.clone();
    exec.spawn(Owner::Node(1), async move {
        d.start_section(Some(2));
        write_file(&d, "a", b"1", true).await; // create (1), write (2): freeze
        panic!("fsync after the crash point completed");
    });
    let d = disk.clone();
    exec.run_until(limits(), move || d.crash_point_reached());
    assert!(disk.crash_point_reached());
    assert_eq!(disk.section_ops(), 2);
    exec.kill_owner(Owner::Node(1));
    disk.crash_process();
    assert!(!disk.crash_point_reached());
    // The section is closed by the crash: recovery's ops do not freeze again.
    let n = run(&exec, &disk, |d| async move {
        write_file(&d, "c", b"3", true).await;
        d.section_ops()
    });
    assert_eq!(n, 2);
}
