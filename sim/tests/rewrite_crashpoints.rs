//! Crash-point enumeration of the REAL persistence protocols (issue 3): the tidemark
//! server (`tidemark::server::run_shard`, 2 shards on `SimIo`, `appendfsync always`) is
//! driven through a protocol section by simulated clients over the simulated network, the
//! disk is frozen right after each mutating op of the section (write, fsync, set_len,
//! rename, remove, sync_dir, mkdir, creating open), the node is crashed — one process
//! crash and [`MACHINE_DRAWS`] machine crashes per point (see `tidemark_sim::crashpoints`:
//! draws 0-3 are the extremes lose-all / keep-all / names-only / data-only, 4.. random
//! subsets with torn sectors) — and restarted. The check:
//! - start-up never refuses (every state here is one a correct protocol can produce);
//! - every acknowledged write is present and none is applied twice: INCR counters lie in
//!   [acknowledged, attempted], APPEND strings are exactly the first m tokens with m in
//!   [acknowledged, attempted] (a mix of generations double-applies or loses some);
//! - RDB: the dump loaded is exactly the old or the new snapshot (the new one once the
//!   save was reported done), never a mix;
//! - AOF: a write acknowledged after the restart survives a further power loss (the
//!   recovered log is durable and appends continue it correctly: predecessor bug 3,
//!   limitation C).
//!
//! Protocols: (a) BGREWRITEAOF with writes before and during it, (b) the first boot
//! (manifest creation, generation 1) with its first writes, (c) BGSAVE and SAVE (RDB
//! temp + fsync + rename + dir fsync), (d) a rewrite aborted after the switch (shard 1's
//! base write fails). CI runs one seed per protocol; the full set (more seeds) is
//! `#[ignore]`d: `cargo nextest run -p tidemark-sim --test rewrite_crashpoints
//! --run-ignored only`.
//!
//! What can fail here: a check (the failure text names the seed, crash point, crash
//! kind, and the command that reproduces it), or the enumeration itself (a scenario that
//! does not finish or is not deterministic).

mod crash_support;

use std::rc::Rc;

use crash_support::{
    build, config, enumerate, limits, Ctx, Protocol, Slot, DURING_STEPS, MACHINE_DRAWS,
    MACHINE_DRAWS_FULL, NODE, POST_KEYS, PRE_STEPS, SHARDS, WRITERS,
};
use tidemark::resp::Frame;
use tidemark::server::config::Defects;
use tidemark_sim::disk::SimDisk;
use tidemark_sim::executor::{Executor, Owner};
use tidemark_sim::faults::{DiskFaults, NetFaults};
use tidemark_sim::net::SimNet;

/// Enumerates `protocol` on `seeds`, asserts no failure; returns (states, section ops).
fn assert_all_recover(
    protocol: Protocol,
    seeds: std::ops::Range<u64>,
    machine_draws: u32,
    test: &str,
) -> (u64, Vec<u64>) {
    let mut states = 0;
    let mut ops = Vec::new();
    for seed in seeds {
        let (report, failures) =
            enumerate(protocol, &Defects::default(), seed, machine_draws, test);
        assert!(
            failures.is_empty(),
            "{} of {} states fail:\n{}",
            failures.len(),
            report.states,
            failures.join("\n")
        );
        assert_eq!(
            report.states,
            (report.section_ops + 1) * u64::from(1 + machine_draws)
        );
        assert!(report.section_ops > 0, "the section does disk work");
        states += report.states;
        ops.push(report.section_ops);
    }
    eprintln!(
        "{protocol:?}: {states} crash states (section ops per seed {ops:?}, 1 process + \
         {machine_draws} machine crashes per point), all recover"
    );
    (states, ops)
}

#[test]
fn bgrewriteaof_with_writes_before_and_during_recovers_at_every_crash_point() {
    assert_all_recover(
        Protocol::Rewrite,
        1..2,
        MACHINE_DRAWS,
        "bgrewriteaof_with_writes",
    );
}

#[test]
fn first_boot_manifest_commit_recovers_at_every_crash_point() {
    assert_all_recover(
        Protocol::FirstBoot,
        1..2,
        MACHINE_DRAWS,
        "first_boot_manifest",
    );
}

#[test]
fn bgsave_loads_the_old_or_the_new_snapshot_at_every_crash_point() {
    assert_all_recover(Protocol::Bgsave, 1..2, MACHINE_DRAWS, "bgsave_loads");
}

#[test]
fn save_loads_the_old_or_the_new_snapshot_at_every_crash_point() {
    assert_all_recover(Protocol::Save, 1..2, MACHINE_DRAWS, "save_loads");
}

#[test]
fn aborted_rewrite_recovers_at_every_crash_point() {
    assert_all_recover(
        Protocol::AbortedRewrite,
        1..2,
        MACHINE_DRAWS,
        "aborted_rewrite",
    );
}

/// The full set: 16 seeds per protocol (different interleavings of the writers with the
/// rewrite) and [`MACHINE_DRAWS_FULL`] machine crashes per point (6 more random draws).
#[test]
#[ignore = "full enumeration (minutes): run with --run-ignored only"]
fn full_enumeration_of_every_protocol() {
    let mut total = 0;
    for protocol in [
        Protocol::Rewrite,
        Protocol::FirstBoot,
        Protocol::Bgsave,
        Protocol::Save,
        Protocol::AbortedRewrite,
    ] {
        total += assert_all_recover(protocol, 1..17, MACHINE_DRAWS_FULL, "full_enumeration").0;
    }
    eprintln!("full enumeration: {total} crash states");
}

/// Asserts the enumeration reports predecessor bug `bug` with its switch on.
fn assert_caught(
    bug: u32,
    protocol: Protocol,
    defects: Defects,
    test: &str,
    needle: &str,
) -> Vec<String> {
    let (report, failures) = enumerate(protocol, &defects, 1, MACHINE_DRAWS, test);
    assert!(
        !failures.is_empty(),
        "predecessor bug {bug} NOT caught: all {} states recovered with {defects:?}",
        report.states
    );
    for failure in &failures {
        assert!(
            failure.contains("reproduce: cargo nextest run -p tidemark-sim"),
            "{failure}"
        );
        assert!(failure.contains("crash after section op"), "{failure}");
    }
    assert!(
        failures.iter().any(|f| f.contains(needle)),
        "bug {bug}: no failure mentions {needle:?}: {}",
        failures.join("\n")
    );
    eprintln!(
        "predecessor bug {bug} caught: {} of {} states fail; first:\n{}",
        failures.len(),
        report.states,
        failures[0]
    );
    failures
}

/// Bug 6: the old generation removed before the manifest commit naming the new one; a
/// crash in between leaves a manifest naming deleted files (start-up refused).
#[test]
fn predecessor_bug_6_prune_before_manifest_commit_is_caught() {
    let defects = Defects {
        prune_before_manifest_commit: true,
        ..Defects::default()
    };
    let failures = assert_caught(
        6,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_6",
        "missing",
    );
    assert!(failures.iter().all(|f| f.contains("start-up refused")));
}

/// Bug 3: the first write after recovery reuses the last recovered LSN; the next recovery
/// stops at the duplicate: a CRC-valid record out of sequence, which recovery refuses
/// rather than truncating it as a torn tail (it would otherwise lose the acknowledged
/// post-restart write).
#[test]
fn predecessor_bug_3_lsn_reuse_after_recovery_is_caught() {
    let defects = Defects {
        lsn_reuse_after_recovery: true,
        ..Defects::default()
    };
    let failures = assert_caught(
        3,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_3",
        "a CRC-valid record sits at offset",
    );
    // Every state breaks: the duplicate LSN is written after any recovery.
    assert!(failures.iter().any(|f| f.contains("Process")));
    assert!(failures.iter().any(|f| f.contains("Machine")));
}

/// The rewrite scenario really overlaps writes with the switch: after a crash-free run
/// the new generation's incr files hold records (writes after the switch), the base files
/// exist, and the old generation's files are gone.
#[test]
fn rewrite_scenario_writes_land_on_both_sides_of_the_switch() {
    let slot: Slot = Rc::default();
    let run = build(Protocol::Rewrite, Defects::default(), slot.clone())(1, None);
    let finished = &run.finished;
    let outcome = run.exec.run_until(limits(), finished);
    assert_eq!(outcome, tidemark_sim::executor::RunOutcome::Done);
    let files = run.disk.list_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let header = tidemark::persist::FILE_HEADER_LEN_BYTES as u64;
    let bases = files
        .iter()
        .filter(|(n, _)| n.ends_with(".base.aof"))
        .count();
    assert_eq!(bases, usize::from(SHARDS), "{names:?}");
    let incrs: Vec<&(String, u64)> = files
        .iter()
        .filter(|(n, _)| n.ends_with(".incr.aof"))
        .collect();
    assert_eq!(
        incrs.len(),
        usize::from(SHARDS),
        "old incrs pruned: {names:?}"
    );
    assert!(
        incrs.iter().any(|(_, len)| *len > header),
        "some write landed after the switch: {files:?}"
    );
    let (_, model) = slot.borrow().clone().expect("built");
    let model = model.borrow();
    let during = u64::from(WRITERS) * (PRE_STEPS + DURING_STEPS);
    let acked: u64 = model.counters.values().map(|(a, _)| a).sum();
    assert_eq!(acked, during, "every INCR acknowledged without a crash");
}

/// Bug 7 (bonus): the snapshot taken one `.await` after the switch — writes in between
/// are in the new base AND the new incr, so a counter exceeds its attempted INCRs.
#[test]
fn predecessor_bug_7_snapshot_after_await_is_caught() {
    let defects = Defects {
        snapshot_after_await: true,
        ..Defects::default()
    };
    assert_caught(
        7,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_7",
        "attempted",
    );
}

/// Bug 15 (bonus): the new base committed while the old incrs are still listed, the
/// truncation in a second commit: a crash between them replays both.
#[test]
fn predecessor_bug_15_base_committed_before_log_truncation_is_caught() {
    let defects = Defects {
        base_committed_before_log_truncation: true,
        ..Defects::default()
    };
    assert_caught(
        15,
        Protocol::Rewrite,
        defects,
        "predecessor_bug_15",
        "attempted",
    );
}

/// Limitation C, deterministically: an fsync EIO (nothing of the failed write reaches the
/// platter, the page cache keeps showing it), a process crash before the writer's retry,
/// a restart, writes acknowledged after it, then a power loss. Without the start-up copy
/// the restart appended after frames that were never on the platter, and the power loss
/// left a hole before fsynced records (start-up refused). With it, everything
/// acknowledged survives.
#[test]
fn fsync_eio_then_process_crash_then_power_loss_keeps_acknowledged_writes() {
    let exec = Executor::new(1);
    let disk = SimDisk::new(&exec, NODE, DiskFaults::default());
    let net = SimNet::new(&exec, NetFaults::default());
    let ctx = Ctx {
        exec: exec.clone(),
        disk,
        net,
        config: config(Protocol::Rewrite, &Defects::default()),
    };
    let keys: Vec<String> = (0..4).map(|i| format!("k:{i}")).collect();
    let c = ctx.clone();
    let result = exec.block_on(Owner::World, limits(), async move {
        c.provision().await;
        let (_node, errors) = c.start_node(0);
        c.wait_ready(&errors).await?;
        let mut client = c.connect(Owner::Client(1)).await?;
        for key in &keys {
            assert_eq!(client.call(&["INCR", key]).await?, Frame::Integer(1));
        }
        let saved = c.disk.faults();
        c.disk.set_faults(DiskFaults {
            fsync_eio_rate: 1.0,
            crash_write_survive_rate: 0.0,
            crash_torn_rate: 0.0,
            ..saved.clone()
        });
        let mut failed = 0;
        for key in &keys {
            if let Frame::Error(_) = client.call(&["INCR", key]).await? {
                failed += 1;
            }
        }
        assert_eq!(
            failed,
            keys.len(),
            "every INCR hit the fsync EIO or the latch"
        );
        tidemark_sim::crash_process(&c.exec, &c.net, &c.disk);
        c.disk.set_faults(saved.clone());
        let (_node, errors) = c.start_node(1);
        c.wait_ready(&errors).await?;
        let mut client = c.connect(Owner::Client(2)).await?;
        for key in POST_KEYS {
            assert_eq!(client.call(&["INCR", key]).await?, Frame::Integer(1));
        }
        tidemark_sim::crash_process(&c.exec, &c.net, &c.disk);
        c.disk.set_faults(DiskFaults {
            crash_write_survive_rate: 0.0,
            crash_set_len_rate: 0.0,
            crash_dir_op_rate: 0.0,
            ..saved.clone()
        });
        c.disk.crash_machine(&mut c.exec.rng_stream(0xC4A5_0002));
        c.disk.set_faults(saved);
        let (_node, errors) = c.start_node(2);
        c.wait_ready(&errors).await?;
        let mut client = c.connect(Owner::Client(3)).await?;
        for key in POST_KEYS {
            let value = client.get(key).await?;
            if value.as_deref() != Some("1") {
                return Err(format!(
                    "{key} acknowledged after the restart, now {value:?}"
                ));
            }
        }
        for key in &keys {
            let value = client.get(key).await?;
            if !matches!(value.as_deref(), Some("1") | Some("2")) {
                return Err(format!(
                    "{key}: acknowledged once, attempted twice, now {value:?}"
                ));
            }
        }
        Ok::<(), String>(())
    });
    let result = result.unwrap_or_else(|outcome| Err(format!("did not finish: {outcome:?}")));
    assert_eq!(result, Ok(()));
}
