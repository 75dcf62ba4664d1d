//! Predecessor bugs 6, 7, 8 and 15 re-introduced by their test-only switches
//! (`server::config::Defects`), each with a named test proving the crash enumeration of
//! `tests.rs` reports it: with the switch on the scan finds a crash point where recovery
//! fails (the message names it), and with the switch off the same crash point passes (the
//! full switch-off enumeration is `tests::crash_at_every_disk_op_…`).
//!
//! The scan stops at the first failing state, so a detected bug costs only the states up
//! to its crash point. Everything is deterministic (fixed MemIo seed): a crash point
//! reproduces exactly with `cargo test -p tidemark --lib <test name>`.

use super::tests::{rewrite_under_load_with, try_recovery};
use crate::server::config::Defects;

/// Acknowledged INCRs per key before the rewrite: more than the INCRs in flight during
/// it, so replaying the old log twice pushes a counter above its attempted count even
/// when the in-flight INCRs failed (the check is `acknowledged <= value <= attempted`).
const PRE_INCRS: u64 = 8;

/// Where the disk froze: `None` is no crash at all (the end of the scenario).
type CrashPoint = Option<u64>;

fn describe(point: CrashPoint) -> String {
    match point {
        None => "no crash (end of the scenario)".to_string(),
        Some(k) => format!("crash after disk op {k} of the rewrite phase"),
    }
}

/// Both restart images (process crash, machine crash) at one crash point.
fn check_point(defects: &Defects, point: CrashPoint) -> Result<(), String> {
    let (io, counts, _) = rewrite_under_load_with(defects, PRE_INCRS, point, None);
    for (durable, kind) in [(false, "process"), (true, "machine")] {
        let what = format!("{kind} image, {}", describe(point));
        try_recovery(io.0.disk_image(durable), &counts, &what)?;
    }
    Ok(())
}

/// Scans no-crash, then every crash point 0..=ops. `Ok(states checked)` if all pass,
/// else the first failing point and its failure.
fn first_failing_point(defects: &Defects, crashes_only: bool) -> Result<u64, (CrashPoint, String)> {
    let (_, _, ops) = rewrite_under_load_with(defects, PRE_INCRS, None, None);
    let no_crash = (!crashes_only).then_some(None);
    let points = no_crash.into_iter().chain((0..=ops).map(Some));
    let mut states = 0;
    for point in points {
        check_point(defects, point).map_err(|failure| (point, failure))?;
        states += 2;
    }
    Ok(states)
}

/// The common assertion: switch on ⇒ detected (and the crash point is reported);
/// switch off ⇒ that same crash point recovers exactly.
fn assert_detected(
    bug: u32,
    test: &str,
    defects: Defects,
    crashes_only: bool,
) -> (CrashPoint, String) {
    let (point, failure) = match first_failing_point(&defects, crashes_only) {
        Ok(states) => panic!(
            "predecessor bug {bug} NOT detected: with its switch on ({defects:?}) all {states} \
             crash states recovered correctly; reproduce with `cargo test -p tidemark --lib {test}`"
        ),
        Err(found) => found,
    };
    eprintln!(
        "predecessor bug {bug} detected at {}: {failure} (reproduce: `cargo test -p tidemark --lib {test}`)",
        describe(point)
    );
    if let Err(failure) = check_point(&Defects::default(), point) {
        panic!(
            "predecessor bug {bug}: with the switch OFF the same crash point ({}) must pass, \
             but: {failure}",
            describe(point)
        );
    }
    (point, failure)
}

/// Bug 6: the old generation removed before manifest commit #2 — a crash between the
/// removal and the commit leaves a manifest naming deleted files (recovery refuses).
#[test]
fn predecessor_bug_6_prune_before_manifest_commit_is_detected() {
    let (point, failure) = assert_detected(
        6,
        "predecessor_bug_6",
        Defects {
            prune_before_manifest_commit: true,
            ..Defects::default()
        },
        false,
    );
    assert!(point.is_some(), "bug 6 needs a crash to show");
    assert!(failure.contains("missing"), "{failure}");
}

/// Bug 7: the snapshot taken one `.await` after the switch — INCRs executed in between
/// are in the new base AND the new incr, so a counter exceeds its attempted INCRs.
#[test]
fn predecessor_bug_7_snapshot_after_await_is_detected() {
    let (_, failure) = assert_detected(
        7,
        "predecessor_bug_7",
        Defects {
            snapshot_after_await: true,
            ..Defects::default()
        },
        false,
    );
    assert!(
        failure.contains("acknowledged"),
        "a counter is off: {failure}"
    );
}

/// Bug 15: snapshot-then-truncate — a plain snapshot (no log position) committed with the
/// old incrs still listed, then a second commit drops them; a crash between the two
/// replays both, so an INCR is applied twice. Only crash points are scanned: the
/// re-introduced defect also breaks the end state (tidemark's LSN chain cannot follow a
/// positionless base), which is not the bug under test.
#[test]
fn predecessor_bug_15_base_committed_before_log_truncation_is_detected() {
    let (point, failure) = assert_detected(
        15,
        "predecessor_bug_15",
        Defects {
            base_committed_before_log_truncation: true,
            ..Defects::default()
        },
        true,
    );
    assert!(point.is_some(), "bug 15 needs a crash between the commits");
    assert!(
        failure.contains("acknowledged"),
        "expected a double-applied INCR at {point:?}: {failure}"
    );
}

/// Clients writing concurrently during the slow rewrite of the bug 8 scenario.
const BUG8_CLIENTS: usize = 48;
/// SETs per client.
const BUG8_SETS_PER_CLIENT: usize = 4;
/// Value size: enough that the clients' records together exceed the defect's 4 KiB.
const BUG8_VALUE_BYTES: usize = 300;
/// Virtual time every fsync takes (the slow disk that makes the rewrite long).
const BUG8_SYNC_DELAY_MS: u64 = 20;

/// Bug 8 scenario: a rewrite on a slow disk (every fsync takes
/// [`BUG8_SYNC_DELAY_MS`]) under write load, then a machine crash and restart. Returns
/// the acknowledged SETs missing after the restart, and how many were acknowledged.
fn acknowledged_sets_missing_after_slow_rewrite(defects: Defects) -> (Vec<String>, usize) {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use super::tests::{boot, boot_with, command, config, restart_from, run_cmd, TestIo, SHARDS};
    use crate::io::mem::{MemFaults, MemIo};
    use crate::io::{Clock, Spawn};
    use crate::resp::Frame;

    let io = TestIo(MemIo::new());
    let mut cfg = config(SHARDS);
    cfg.defects = defects;
    let node = boot_with(&io, cfg).expect("boot");
    io.0.set_faults(MemFaults {
        sync_delay: Duration::from_millis(BUG8_SYNC_DELAY_MS),
        ..MemFaults::default()
    });
    let value = "v".repeat(BUG8_VALUE_BYTES);
    assert_eq!(
        super::bgrewriteaof(&node, &io),
        Frame::Simple("Background append only file rewriting started".into())
    );
    let acked: Rc<RefCell<Vec<String>>> = Rc::default();
    let done = Rc::new(std::cell::Cell::new(0usize));
    for c in 0..BUG8_CLIENTS {
        let (i, n, a, d, v) = (
            io.clone(),
            node.clone(),
            acked.clone(),
            done.clone(),
            value.clone(),
        );
        io.spawn_local(async move {
            for w in 0..BUG8_SETS_PER_CLIENT {
                let key = format!("w:{c}:{w}");
                if command(&i, &n, &["SET", &key, &v]).await == Frame::ok() {
                    a.borrow_mut().push(key);
                }
            }
            d.set(d.get() + 1);
        });
    }
    let (i, n, d) = (io.clone(), node.clone(), done.clone());
    io.0.run(async move {
        while n.persistence.rewrite_in_progress() || d.get() < BUG8_CLIENTS {
            i.sleep(Duration::from_millis(1)).await;
        }
    })
    .expect("slow rewrite under load stalled");
    let io2 = restart_from(io.0.disk_image(true));
    let node2 = boot(&io2, SHARDS).expect("restart");
    let acked = acked.borrow().clone();
    let missing = acked
        .iter()
        .filter(|key| run_cmd(&io2, &node2, &["GET", key]) != Frame::bulk(value.clone()))
        .cloned()
        .collect();
    (missing, acked.len())
}

/// Bug 8: while a rewrite runs, appends finding the buffer "full" are dropped instead of
/// waiting — acknowledged SETs are missing after a restart. Deterministic scenario (no
/// seed): 2 shards, `appendfsync always`, fsync 20 ms, 48 clients × 4 SETs of 300 bytes.
#[test]
fn predecessor_bug_8_drop_on_full_during_a_rewrite_is_detected() {
    let (missing, acked) = acknowledged_sets_missing_after_slow_rewrite(Defects::default());
    assert!(
        acked == BUG8_CLIENTS * BUG8_SETS_PER_CLIENT && missing.is_empty(),
        "switch off: all {acked} acknowledged SETs must survive; missing {missing:?} \
         (reproduce: `cargo test -p tidemark --lib predecessor_bug_8`)"
    );
    let (missing, acked) = acknowledged_sets_missing_after_slow_rewrite(Defects {
        drop_appends_during_rewrite: true,
        ..Defects::default()
    });
    assert!(
        !missing.is_empty(),
        "predecessor bug 8 NOT detected: with drop-on-full all {acked} acknowledged SETs \
         survived the slow rewrite + machine crash (reproduce: `cargo test -p tidemark --lib \
         predecessor_bug_8`)"
    );
    eprintln!(
        "predecessor bug 8 detected: {} of {acked} acknowledged SETs missing after the slow \
         rewrite + machine crash, first {} (reproduce: `cargo test -p tidemark --lib predecessor_bug_8`)",
        missing.len(),
        missing[0]
    );
}
