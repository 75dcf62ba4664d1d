//! Unit tests of the test-only AOF defect switches (predecessor bugs 3, 4, 9, 10) on the
//! in-memory disk: each switch really re-introduces its bug, and the same scenario without
//! it is safe. The simulator tests (`sim/tests/world/defects.rs`) prove the world reports
//! each one; these pin down the mechanism.

use std::time::Duration;

use super::tests::{append_acked, cmd, open, opts};
use super::*;
use crate::io::mem::{MemFaults, MemIo};

/// Predecessor bug 3: with the switch, the first append after a reopen reuses the last
/// LSN, and the next recovery refuses the log (or loses acknowledged records).
#[test]
fn lsn_reuse_defect_reuses_the_last_lsn_and_recovery_refuses_it() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(append_acked(&io, &aof, 1..3), vec![1, 2]);
    drop(aof);
    let mut o = opts(FsyncPolicy::Always);
    o.lsn_reuse_defect = true;
    let (aof, _, _) = open(&io, o).unwrap();
    assert_eq!(append_acked(&io, &aof, 3..6), vec![2, 3, 4], "LSN 2 reused");
    drop(aof);
    match open(&io, opts(FsyncPolicy::Always)) {
        Err(AofError::Corrupt { detail, .. }) => {
            assert!(detail.contains("LSN 2 where 3 was expected"), "{detail}")
        }
        Ok((_, _, seen)) => assert!(seen.len() < 5, "5 acknowledged records all replayed"),
        Err(other) => panic!("unexpected error {other:?}"),
    }
    // Without the switch LSNs continue: 1, 2 then 3.
    let clean = MemIo::new();
    let (aof, _, _) = open(&clean, opts(FsyncPolicy::Always)).unwrap();
    append_acked(&clean, &aof, 1..3);
    drop(aof);
    let (aof, _, _) = open(&clean, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(append_acked(&clean, &aof, 3..4), vec![3]);
}

/// Predecessor bug 4: with the switch, `wait_ack` on a stalled fsync outlives its
/// `fsync_timeout` many times over.
#[test]
fn unbounded_wait_defect_hangs_on_a_stalled_fsync() {
    let io = MemIo::new();
    let mut o = opts(FsyncPolicy::Always);
    o.fsync_timeout = Duration::from_millis(200);
    o.unbounded_ack_wait_defect = true;
    let (aof, _, _) = open(&io, o).unwrap();
    io.set_faults(MemFaults {
        stall_syncs: true,
        ..MemFaults::default()
    });
    let (a, w) = (aof.clone(), io.clone());
    let waited = io
        .run(async move {
            let lsn = a.append(&cmd(1)).unwrap();
            with_timeout(&w, Duration::from_secs(10), a.wait_ack(lsn)).await
        })
        .unwrap();
    assert!(
        waited.is_none(),
        "wait_ack returned {waited:?} despite the stall"
    );
}

/// Predecessor bug 9: with the switch, appends every 100 ms keep the `everysec` fsync
/// from ever running; without it the deadline holds.
#[test]
fn everysec_starved_defect_never_fsyncs_under_steady_appends() {
    for defect in [true, false] {
        let io = MemIo::new();
        let mut o = opts(FsyncPolicy::Everysec);
        o.everysec_starved_defect = defect;
        let (aof, _, _) = open(&io, o).unwrap();
        let (a, w) = (aof.clone(), io.clone());
        io.run(async move {
            for i in 0..50 {
                let lsn = a.append(&cmd(i)).unwrap();
                a.wait_ack(lsn).await.unwrap();
                w.sleep(Duration::from_millis(100)).await;
            }
        })
        .unwrap();
        let stats = aof.stats();
        if defect {
            assert_eq!(stats.fsyncs, 0, "{stats:?}");
            assert_eq!(stats.durable_lsn, 0);
        } else {
            assert!(stats.fsyncs >= 4, "{stats:?}");
            assert!(stats.durable_lsn >= 40, "{stats:?}");
        }
    }
}

/// Predecessor bug 10: with the switch, a torn write does not latch; the next frame goes
/// after the torn one and the next recovery refuses the log (or loses acknowledged
/// records).
#[test]
fn append_after_torn_write_defect_corrupts_the_log() {
    let io = MemIo::new();
    let mut o = opts(FsyncPolicy::Always);
    o.append_after_torn_write_defect = true;
    let (aof, _, _) = open(&io, o).unwrap();
    append_acked(&io, &aof, 1..3);
    io.set_faults(MemFaults {
        fail_next_writes: 1,
        torn_prefix_bytes: 10,
        ..MemFaults::default()
    });
    assert_eq!(append_acked(&io, &aof, 3..5), vec![3, 4], "no latch");
    assert!(aof.stats().last_write_ok);
    drop(aof);
    io.crash();
    match open(&io, opts(FsyncPolicy::Always)) {
        Err(AofError::Corrupt { .. }) => {}
        Ok((_, _, seen)) => assert!(seen.len() < 4, "4 acknowledged records all replayed"),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}
