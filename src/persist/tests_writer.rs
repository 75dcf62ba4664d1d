//! Unit tests of the AOF writer on the in-memory disk: `always` acks only after the
//! covering fsync (group commit), the ack-before-fsync defect, failure latching and the
//! safe retry, fsync timeouts and backpressure, the `everysec` deadline under load, `no`.

use std::collections::VecDeque;
use std::time::Duration;

use super::tests::{aof_path, append_acked, cmd, open, opts};
use super::*;
use crate::io::mem::{MemFaults, MemIo};

fn faults(f: impl FnOnce(&mut MemFaults)) -> MemFaults {
    let mut faults = MemFaults::default();
    f(&mut faults);
    faults
}

/// Crashes the machine and reopens: the replayed LSNs and the report.
fn crash_and_recover(io: &MemIo, policy: FsyncPolicy) -> (Vec<Lsn>, RecoveryReport) {
    io.crash();
    let (_aof, report, seen) = open(io, opts(policy)).unwrap();
    (seen.iter().map(|r| r.0).collect(), report)
}

#[test]
fn always_acks_only_after_the_covering_fsync() {
    let io = MemIo::new();
    io.set_faults(faults(|f| f.sync_delay = Duration::from_millis(10)));
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    let syncs_before = io.disk_stats().syncs;
    let (a, w) = (aof.clone(), io.clone());
    let (syncs, durable_len, file_len) = io
        .run(async move {
            let lsn = a.append(&cmd(1)).unwrap();
            a.wait_ack(lsn).await.unwrap();
            let path = aof_path();
            (
                w.disk_stats().syncs,
                w.durable_bytes(&path).unwrap().len(),
                w.file_bytes(&path).unwrap().len(),
            )
        })
        .unwrap();
    assert_eq!(syncs, syncs_before + 1);
    assert_eq!(
        durable_len, file_len,
        "acknowledged record must be in the durable image"
    );
    assert_eq!(aof.stats().durable_lsn, 1);
    drop(aof);
    assert_eq!(crash_and_recover(&io, FsyncPolicy::Always).0, vec![1]);
}

#[test]
fn always_group_commit_one_fsync_covers_many_records() {
    let io = MemIo::new();
    io.set_faults(faults(|f| f.sync_delay = Duration::from_millis(5)));
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    let before = io.disk_stats().syncs;
    let a = aof.clone();
    io.run(async move {
        let lsns: Vec<Lsn> = (1..=50).map(|i| a.append(&cmd(i)).unwrap()).collect();
        for lsn in lsns {
            a.wait_ack(lsn).await.unwrap();
        }
    })
    .unwrap();
    let syncs = io.disk_stats().syncs - before;
    assert!((1..=2).contains(&syncs), "50 records needed {syncs} fsyncs");
    assert_eq!(aof.stats().fsyncs, syncs);
    assert_eq!(aof.stats().durable_lsn, 50);
}

#[test]
fn ack_before_fsync_defect_acks_what_a_crash_then_loses() {
    let io = MemIo::new();
    io.set_faults(faults(|f| f.sync_delay = Duration::from_millis(50)));
    let mut o = opts(FsyncPolicy::Always);
    o.ack_before_fsync_defect = true;
    let (aof, _, _) = open(&io, o).unwrap();
    let a = aof.clone();
    let start = io.now();
    let durable_at_ack = io
        .run(async move {
            let lsn = a.append(&cmd(1)).unwrap();
            a.wait_ack(lsn).await.unwrap();
            a.stats().durable_lsn
        })
        .unwrap();
    assert_eq!(
        durable_at_ack, 0,
        "the defect acknowledges before the fsync"
    );
    assert_eq!(io.now(), start);
    drop(aof);
    assert!(
        crash_and_recover(&io, FsyncPolicy::Always).0.is_empty(),
        "the acked write is lost"
    );
}

#[test]
fn torn_write_error_latches_and_the_retry_rewrites_from_the_last_good_frame() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    append_acked(&io, &aof, 1..3);
    io.set_faults(faults(|f| {
        f.fail_next_writes = 1;
        f.torn_prefix_bytes = 10;
    }));
    let a = aof.clone();
    let (ack, later) = io
        .run(async move {
            let lsn = a.append(&cmd(3)).unwrap();
            let ack = a.wait_ack(lsn).await;
            (ack, a.append(&cmd(4)))
        })
        .unwrap();
    assert!(matches!(ack, Err(AofError::Failed { .. })), "{ack:?}");
    let refused = later.unwrap_err();
    assert!(
        matches!(&refused.to_reply(), Frame::Error(t) if t.starts_with("MISCONF Errors writing to the AOF file: "))
    );
    assert!(!aof.stats().last_write_ok);
    assert!(aof.writable().is_err());
    // The torn 10 bytes sit at the end of the file until the retry truncates them.
    io.advance(Duration::from_millis(1500)).unwrap();
    let stats = aof.stats();
    assert!(stats.last_write_ok, "{stats:?}");
    assert!(stats.last_error.as_deref().unwrap_or("").contains("write"));
    assert_eq!(stats.durable_lsn, 3);
    assert_eq!(append_acked(&io, &aof, 4..5), vec![4]);
    drop(aof);
    let (lsns, report) = crash_and_recover(&io, FsyncPolicy::Always);
    assert_eq!(lsns, vec![1, 2, 3, 4]);
    assert_eq!(
        report.truncated_bytes, 0,
        "nothing was appended after a torn frame"
    );
}

#[test]
fn failed_fsync_is_never_retried_blindly() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    append_acked(&io, &aof, 1..2);
    io.set_faults(faults(|f| f.fail_next_syncs = 1));
    let a = aof.clone();
    let ack = io
        .run(async move {
            let lsn = a.append(&cmd(2)).unwrap();
            a.wait_ack(lsn).await
        })
        .unwrap();
    assert!(matches!(ack, Err(AofError::Failed { .. })));
    assert_eq!(aof.stats().durable_lsn, 1);
    io.advance(Duration::from_millis(1500)).unwrap();
    assert!(aof.stats().last_write_ok);
    // The failed fsync dropped the dirty pages (mem.rs models Linux): only a rewrite
    // makes record 2 durable.
    drop(aof);
    let (lsns, report) = crash_and_recover(&io, FsyncPolicy::Always);
    assert_eq!(lsns, vec![1, 2]);
    assert_eq!(report.truncated_bytes, 0);
}

#[test]
fn enospc_latches_until_space_returns() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Everysec)).unwrap();
    append_acked(&io, &aof, 1..3);
    io.set_faults(faults(|f| {
        f.fail_writes_with = Some(std::io::ErrorKind::StorageFull)
    }));
    let a = aof.clone();
    let (ack, room) = io
        .run(async move {
            let lsn = a.append(&cmd(3)).unwrap();
            (a.wait_ack(lsn).await, a.wait_room().await)
        })
        .unwrap();
    assert!(matches!(ack, Err(AofError::Failed { .. })));
    assert!(matches!(room, Err(AofError::Failed { .. })));
    io.advance(Duration::from_secs(3)).unwrap();
    assert!(
        !aof.stats().last_write_ok,
        "retries keep failing while the disk is full"
    );
    assert!(aof.append(&cmd(99)).is_err());
    io.set_faults(MemFaults::default());
    io.advance(Duration::from_millis(1100)).unwrap();
    assert!(aof.stats().last_write_ok);
    assert_eq!(append_acked(&io, &aof, 4..5), vec![4]);
    let a = aof.clone();
    io.run(async move { a.flush_and_sync().await })
        .unwrap()
        .unwrap();
    drop(aof);
    assert_eq!(
        crash_and_recover(&io, FsyncPolicy::Everysec).0,
        vec![1, 2, 3, 4]
    );
}

#[test]
fn short_writes_are_continued() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    io.set_faults(faults(|f| f.short_next_write_bytes = Some(7)));
    append_acked(&io, &aof, 1..3);
    assert!(aof.stats().last_write_ok);
    drop(aof);
    assert_eq!(crash_and_recover(&io, FsyncPolicy::Always).0, vec![1, 2]);
}

#[test]
fn stalled_fsync_times_out_instead_of_hanging() {
    let io = MemIo::new();
    let mut o = opts(FsyncPolicy::Always);
    o.fsync_timeout = Duration::from_millis(200);
    o.buffer_bytes_max = 16;
    let (aof, _, _) = open(&io, o).unwrap();
    io.set_faults(faults(|f| f.stall_syncs = true));
    let (a, w) = (aof.clone(), io.clone());
    let (lsn, ack, room, flush, waited) = io
        .run(async move {
            let start = w.now();
            let lsn = a.append(&cmd(1)).unwrap();
            let ack = a.wait_ack(lsn).await;
            let waited = w.now() - start;
            // The writer is stuck in fsync: this record stays buffered.
            a.append(&cmd(2)).unwrap();
            (
                lsn,
                ack,
                a.wait_room().await,
                a.flush_and_sync().await,
                waited,
            )
        })
        .unwrap();
    assert_eq!(ack, Err(AofError::Timeout));
    assert_eq!(waited, Duration::from_millis(200));
    assert_eq!(room, Err(AofError::Timeout));
    assert_eq!(flush, Err(AofError::Timeout));
    assert!(aof.stats().buffer_len_bytes > 16);
    io.set_faults(MemFaults::default());
    let a = aof.clone();
    io.run(async move {
        a.wait_ack(lsn).await.unwrap();
        a.wait_ack(lsn + 1).await.unwrap();
        a.wait_room().await.unwrap();
    })
    .unwrap();
    assert_eq!(aof.stats().durable_lsn, 2);
}

#[test]
fn everysec_deadline_holds_under_continuous_appends() {
    // Writes take 3 ms and a record arrives every 1 ms: the writer always finds a full
    // buffer, so an fsync that only ran when idle would never run (predecessor bug 9).
    let io = MemIo::new();
    io.set_faults(faults(|f| f.write_delay = Duration::from_millis(3)));
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Everysec)).unwrap();
    let (a, w) = (aof.clone(), io.clone());
    let (worst_lag, busy_iterations) = io
        .run(async move {
            let mut pending: VecDeque<(Duration, Lsn)> = VecDeque::new();
            let (mut worst, mut busy) = (Duration::ZERO, 0);
            for i in 0..5_000 {
                let lsn = a.append(&cmd(i)).unwrap();
                let now = w.now();
                pending.push_back((now, lsn));
                let stats = a.stats();
                busy += u32::from(stats.buffer_len_bytes > 0);
                while pending
                    .front()
                    .is_some_and(|&(_, l)| l <= stats.durable_lsn)
                {
                    pending.pop_front();
                }
                if let Some(&(at, _)) = pending.front() {
                    worst = worst.max(now - at);
                }
                w.sleep(Duration::from_millis(1)).await;
            }
            (worst, busy)
        })
        .unwrap();
    let stats = aof.stats();
    assert!(
        busy_iterations > 4_000,
        "the writer was idle too often ({busy_iterations})"
    );
    assert!(
        worst_lag <= Duration::from_millis(1_010),
        "unsynced for {worst_lag:?}"
    );
    assert!(stats.fsyncs >= 4, "{stats:?}");
    assert_eq!(stats.delayed_fsyncs, 0);
}

#[test]
fn everysec_acks_on_write_and_fsyncs_an_idle_tail_within_a_second() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Everysec)).unwrap();
    let start = io.now();
    append_acked(&io, &aof, 1..4);
    assert_eq!(
        io.now(),
        start,
        "everysec acks once written, without waiting"
    );
    assert_eq!(aof.stats().durable_lsn, 0);
    io.advance(Duration::from_millis(1000)).unwrap();
    assert_eq!(aof.stats().durable_lsn, 3);
}

#[test]
fn policy_no_never_fsyncs_until_flush_and_sync() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::No)).unwrap();
    let before = io.disk_stats().syncs;
    append_acked(&io, &aof, 1..20);
    io.advance(Duration::from_secs(5)).unwrap();
    assert_eq!(io.disk_stats().syncs, before);
    let a = aof.clone();
    io.run(async move { a.flush_and_sync().await })
        .unwrap()
        .unwrap();
    assert_eq!(io.disk_stats().syncs, before + 1);
    assert_eq!(aof.stats().durable_lsn, 19);
}

#[test]
fn policy_no_never_claims_data_a_failed_fsync_dropped() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::No)).unwrap();
    append_acked(&io, &aof, 1..4);
    io.set_faults(faults(|f| f.fail_next_syncs = 1));
    let a = aof.clone();
    assert!(io
        .run(async move { a.flush_and_sync().await })
        .unwrap()
        .is_err());
    io.advance(Duration::from_millis(1500)).unwrap();
    assert!(aof.stats().last_write_ok, "the latch clears");
    let a = aof.clone();
    let again = io.run(async move { a.flush_and_sync().await }).unwrap();
    assert!(matches!(again, Err(AofError::Failed { .. })), "{again:?}");
    assert_eq!(aof.stats().durable_lsn, 0);
}

#[test]
fn writer_task_ends_when_the_last_handle_is_dropped() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Everysec)).unwrap();
    append_acked(&io, &aof, 1..3);
    assert_eq!(
        io.live_tasks(),
        1,
        "the writer task runs while a handle exists"
    );
    assert_eq!(aof.append(&[]), Err(AofError::EmptyRecord));
    let second = aof.clone();
    drop(aof);
    io.run(async {}).unwrap();
    assert_eq!(io.live_tasks(), 1, "a clone keeps it alive");
    drop(second);
    io.run(async {}).unwrap();
    assert_eq!(io.live_tasks(), 0);
}
