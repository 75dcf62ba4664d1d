//! Crash-point enumeration on a toy protocol: the atomic manifest update (write temp,
//! fsync, rename, fsync dir) must recover exactly the old or the new manifest at every
//! crash point, and the new one once the update returned; two broken variants (rename
//! before the temp file's fsync; no dir fsync) must be caught by some crash point.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use tidemark::io::{Disk, File, OpenMode};
use tidemark_sim::crashpoints::{CrashKind, CrashPoint, EnumReport, Enumeration, SimRun};
use tidemark_sim::disk::SimDisk;
use tidemark_sim::executor::{Executor, Owner, RunLimits};
use tidemark_sim::faults::DiskFaults;

const MANIFEST: &str = "appendonlydir/manifest";
const TEMP: &str = "appendonlydir/manifest.tmp";
const DIR: &str = "appendonlydir";

fn old_manifest() -> Vec<u8> {
    b"seq 1 shards 4\n".repeat(40) // 600 bytes: two sectors, so tears are possible
}

fn new_manifest() -> Vec<u8> {
    b"seq 2 shards 4 maxlsn 17\n".repeat(60) // 1500 bytes
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Correct,
    RenameBeforeFsync,
    NoDirFsync,
}

fn limits() -> RunLimits {
    RunLimits {
        max_steps: 1_000_000,
        max_time: Duration::from_secs(600),
    }
}

async fn write_whole<D: Disk>(disk: &D, path: &str, data: Vec<u8>) -> std::io::Result<D::File> {
    let file = disk.open(Path::new(path), OpenMode::CreateTruncate).await?;
    let len = data.len();
    let (res, _) = file.write_at(data, 0).await;
    assert_eq!(res?, len, "no short writes in this test");
    Ok(file)
}

/// The protocol under test, generic over the IO seam like the server's code.
async fn update_manifest<D: Disk>(disk: &D, variant: Variant) -> std::io::Result<()> {
    let temp = write_whole(disk, TEMP, new_manifest()).await?;
    if variant == Variant::RenameBeforeFsync {
        disk.rename(Path::new(TEMP), Path::new(MANIFEST)).await?;
        temp.sync_data().await?;
    } else {
        temp.sync_data().await?;
        disk.rename(Path::new(TEMP), Path::new(MANIFEST)).await?;
    }
    if variant != Variant::NoDirFsync {
        disk.sync_dir(Path::new(DIR)).await?;
    }
    Ok(())
}

/// `build` for the enumerator: a durable old manifest (outside the section), then the
/// update as the protocol section.
fn build(variant: Variant) -> impl FnMut(u64, Option<u64>) -> SimRun {
    move |seed, crash_after_ops| {
        let exec = Executor::new(seed);
        let faults = DiskFaults {
            sector_bytes: 512,
            ..DiskFaults::default()
        };
        let disk = SimDisk::new(&exec, 1, faults);
        let done = Rc::new(Cell::new(false));
        let (d, flag) = (disk.clone(), done.clone());
        exec.spawn(Owner::Node(1), async move {
            d.create_dir_all(Path::new(DIR)).await.expect("mkdir");
            d.sync_dir(Path::new("")).await.expect("sync root");
            let old = write_whole(&d, MANIFEST, old_manifest())
                .await
                .expect("old");
            old.sync_data().await.expect("fsync old");
            d.sync_dir(Path::new(DIR)).await.expect("sync dir");
            d.start_section(crash_after_ops);
            update_manifest(&d, variant).await.expect("update");
            d.end_section();
            flag.set(true);
        });
        SimRun {
            exec,
            disk,
            net: None,
            finished: Box::new(move || done.get()),
        }
    }
}

/// Recovery reads the manifest through the seam in a fresh process.
fn recovered_manifest(run: &SimRun) -> Option<Vec<u8>> {
    let d = run.disk.clone();
    run.exec
        .block_on(Owner::Node(1), limits(), async move {
            let file = d.open(Path::new(MANIFEST), OpenMode::Read).await.ok()?;
            let len = file.len().await.ok()?;
            let (res, buf) = file.read_at(Vec::with_capacity(len as usize), 0).await;
            res.ok()?;
            Some(buf)
        })
        .expect("recovery read finishes")
}

fn check(run: &SimRun, point: &CrashPoint) -> Result<(), String> {
    let got = recovered_manifest(run);
    let (old, new) = (old_manifest(), new_manifest());
    match got {
        Some(m) if m == new => Ok(()),
        Some(m) if m == old && !point.completed => Ok(()),
        Some(m) if m == old => Err("update returned but the old manifest came back".into()),
        Some(m) => Err(format!(
            "manifest is neither old nor new ({} bytes)",
            m.len()
        )),
        None => Err("manifest missing".into()),
    }
}

fn enumerate(variant: Variant, seed: u64) -> EnumReport {
    Enumeration {
        seed,
        machine_draws: 8,
        limits: limits(),
    }
    .run(build(variant), check)
    .expect("enumeration runs")
}

#[test]
fn atomic_manifest_update_survives_every_crash_point() {
    let mut states = 0;
    for seed in 0..8 {
        let report = enumerate(Variant::Correct, seed);
        // create temp, write, fsync, rename, sync_dir
        assert_eq!(report.section_ops, 5);
        assert_eq!(report.states, (5 + 1) * (1 + 8));
        assert!(report.failures.is_empty(), "{:#?}", report.failures);
        states += report.states;
    }
    eprintln!("correct manifest update: {states} crash states checked, all recover old or new");
    assert_eq!(states, 8 * 54);
}

#[test]
fn rename_before_fsync_is_caught() {
    let mut failures = Vec::new();
    for seed in 0..4 {
        failures.extend(enumerate(Variant::RenameBeforeFsync, seed).failures);
    }
    assert!(
        !failures.is_empty(),
        "broken protocol passed every crash point"
    );
    // The window is after the rename, before the temp file's fsync (op 3 of 5), and
    // only a machine crash opens it: the page cache survives a process crash.
    for (point, message) in &failures {
        assert_eq!(point.after_op, 3, "{point}: {message}");
        assert!(matches!(point.kind, CrashKind::Machine { .. }), "{point}");
    }
    // Draw 2 (names reach the disk, data does not) catches it deterministically.
    assert!(failures
        .iter()
        .any(|(p, _)| p.kind == CrashKind::Machine { draw: 2 }));
    eprintln!(
        "rename before fsync: {} failing states, e.g. {}: {}",
        failures.len(),
        failures[0].0,
        failures[0].1
    );
}

#[test]
fn missing_dir_fsync_is_caught() {
    let report = enumerate(Variant::NoDirFsync, 7);
    assert_eq!(report.section_ops, 4);
    assert!(!report.failures.is_empty(), "broken protocol passed");
    for (point, message) in &report.failures {
        assert!(
            point.completed,
            "{point}: only a returned update may not be lost"
        );
        assert_eq!(message, "update returned but the old manifest came back");
    }
    let lost_all = CrashKind::Machine { draw: 0 };
    assert!(report.failures.iter().any(|(p, _)| p.kind == lost_all));
}

#[test]
fn process_crash_keeps_the_page_cache_at_every_point() {
    let report = Enumeration {
        seed: 3,
        machine_draws: 0,
        limits: limits(),
    }
    .run(build(Variant::Correct), |run, point| {
        assert_eq!(point.kind, CrashKind::Process);
        let want = if point.after_op >= 4 {
            new_manifest() // renamed in the page cache: visible after SIGKILL
        } else {
            old_manifest()
        };
        if recovered_manifest(run) == Some(want) {
            Ok(())
        } else {
            Err("process crash lost page-cache state".into())
        }
    })
    .expect("runs");
    assert_eq!(report.states, 6);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

#[test]
fn enumeration_is_deterministic() {
    let a = enumerate(Variant::RenameBeforeFsync, 11);
    let b = enumerate(Variant::RenameBeforeFsync, 11);
    assert_eq!(a, b);
    assert!(!a.failures.is_empty());
}

// ---- Predecessor bug 6: the old generation deleted before the manifest names the new.

const GEN_MANIFEST: &str = "gen";

fn base_name(generation: u8) -> String {
    format!("base-{generation}")
}

fn base_data(generation: u8) -> Vec<u8> {
    vec![generation; 700]
}

/// Rewrite: new base (durable), then commit the manifest naming it, then prune the old
/// base — or, broken, prune first (predecessor bug 6).
async fn rewrite<D: Disk>(disk: &D, prune_first: bool) -> std::io::Result<()> {
    let base = write_whole(disk, &base_name(2), base_data(2)).await?;
    base.sync_data().await?;
    disk.sync_dir(Path::new("")).await?;
    let prune = || async {
        disk.remove_file(Path::new(&base_name(1))).await?;
        disk.sync_dir(Path::new("")).await
    };
    if prune_first {
        prune().await?;
    }
    let tmp = write_whole(disk, "gen.tmp", vec![2]).await?;
    tmp.sync_data().await?;
    disk.rename(Path::new("gen.tmp"), Path::new(GEN_MANIFEST))
        .await?;
    disk.sync_dir(Path::new("")).await?;
    if !prune_first {
        prune().await?;
    }
    Ok(())
}

fn build_rewrite(prune_first: bool) -> impl FnMut(u64, Option<u64>) -> SimRun {
    move |seed, crash_after_ops| {
        let exec = Executor::new(seed);
        let disk = SimDisk::new(&exec, 1, DiskFaults::default());
        let done = Rc::new(Cell::new(false));
        let (d, flag) = (disk.clone(), done.clone());
        exec.spawn(Owner::Node(1), async move {
            for (name, data) in [(base_name(1), base_data(1)), (GEN_MANIFEST.into(), vec![1])] {
                let f = write_whole(&d, &name, data).await.expect("setup");
                f.sync_data().await.expect("setup fsync");
            }
            d.sync_dir(Path::new("")).await.expect("setup sync_dir");
            d.start_section(crash_after_ops);
            rewrite(&d, prune_first).await.expect("rewrite");
            d.end_section();
            flag.set(true);
        });
        SimRun {
            exec,
            disk,
            net: None,
            finished: Box::new(move || done.get()),
        }
    }
}

/// Recovery: the manifest names a generation whose base must exist, whole.
fn check_rewrite(run: &SimRun, point: &CrashPoint) -> Result<(), String> {
    let d = run.disk.clone();
    let generation = d
        .read_now(GEN_MANIFEST)
        .and_then(|m| m.first().copied())
        .ok_or("manifest missing or empty")?;
    if point.completed && generation != 2 {
        return Err(format!(
            "rewrite returned but generation {generation} recovered"
        ));
    }
    match d.read_now(&base_name(generation)) {
        Some(b) if b == base_data(generation) => Ok(()),
        Some(_) => Err(format!("base of generation {generation} is damaged")),
        None => Err(format!(
            "manifest names generation {generation}, its base is gone"
        )),
    }
}

#[test]
fn pruning_the_old_generation_before_the_commit_is_caught() {
    let run = |prune_first| {
        Enumeration {
            seed: 5,
            machine_draws: 6,
            limits: limits(),
        }
        .run(build_rewrite(prune_first), check_rewrite)
        .expect("enumeration runs")
    };
    let correct = run(false);
    assert_eq!(correct.section_ops, 11);
    assert!(correct.failures.is_empty(), "{:#?}", correct.failures);
    let broken = run(true);
    assert!(!broken.failures.is_empty(), "bug 6 not caught");
    let (point, message) = &broken.failures[0];
    assert!(message.contains("its base is gone"), "{point}: {message}");
    eprintln!(
        "bug 6: {} of {} states fail, first {point}: {message}",
        broken.failures.len(),
        broken.states
    );
}
