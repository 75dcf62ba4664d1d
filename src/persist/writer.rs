//! The AOF writer task (one per shard, spawned by `Aof::open`): group commit, the
//! `appendfsync` policies, and failure latching with a safe retry.
//!
//! Each loop iteration decides one step from the shared state ([`next_step`]):
//! - latched failed → wait ~1 s, then retry: truncate the file back to `base_len` (the end
//!   of the last frame known good: fsynced, or written under `no`), rewrite every frame
//!   kept in memory since then, fsync; only if all of that succeeds clear the latch. An
//!   fsync is never simply retried: the data it failed to persist is always rewritten first.
//! - an fsync is due → fsync and publish `durable_lsn`, waking every waiter it covers (one
//!   fsync covers every record written before it). Due means: `always`, anything written
//!   but unsynced; `everysec`, the 1000 ms deadline (measured from the oldest unsynced
//!   write) has passed, checked on EVERY iteration so no traffic can starve it
//!   (predecessor bug 9), or too much unsynced data is held; any policy, `flush_and_sync`.
//! - records are buffered → take the whole buffer and `write_at` it at the end of the file
//!   (short writes continue; an error latches failed — nothing is appended after a torn
//!   frame, predecessor bug 10).
//! - otherwise sleep until woken by `append`/`flush_and_sync` or the everysec deadline.
//!
//! The task holds only a `Weak` reference while idle, so it ends when every `Aof` handle
//! has been dropped. Waiting uses `event-listener` and the `Clock` seam only, so it runs on
//! compio and on the simulator's executor alike.
//!
//! What can fail here: `write_at`, `sync_data`, `set_len` errors, all of which latch the
//! AOF failed (`AofError::Failed`) until a retry succeeds.

use std::io;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::{Shared, State, EVERYSEC_INTERVAL_MS, FAILED_RETRY_INTERVAL_MS};
use crate::io::write_all_at;
use crate::io::{Clock, Disk, File};
use crate::server::config::FsyncPolicy;

enum Step {
    Retry,
    /// A switch to a new incr is pending: finish the old file, then swap.
    Switch,
    Sync,
    Write,
    /// Nothing to do: sleep until woken, or until this monotonic deadline.
    Idle(Option<Duration>),
}

const EVERYSEC_INTERVAL: Duration = Duration::from_millis(EVERYSEC_INTERVAL_MS);

/// The writer task's body.
pub(crate) async fn run<I: Clock + Disk + 'static>(weak: Weak<Shared<I>>) {
    loop {
        let Some(sh) = weak.upgrade() else { return };
        let now = sh.io.monotonic();
        match next_step(&sh, now) {
            Step::Retry => {
                let pause = sh.io.sleep(Duration::from_millis(FAILED_RETRY_INTERVAL_MS));
                drop(sh);
                pause.await;
                let Some(sh) = weak.upgrade() else { return };
                retry(&sh).await;
            }
            Step::Switch => {
                switch(&sh, now).await;
                drop(sh);
                futures_lite::future::yield_now().await;
            }
            Step::Sync => {
                sync(&sh, now).await;
                drop(sh);
                // Fairness on any executor, even when the disk completes at once.
                futures_lite::future::yield_now().await;
            }
            Step::Write => {
                write_buffered(&sh).await;
                drop(sh);
                futures_lite::future::yield_now().await;
            }
            Step::Idle(deadline) => {
                let listener = sh.work.listen();
                if !matches!(next_step(&sh, now), Step::Idle(_)) {
                    continue;
                }
                let timer = deadline.map(|at| sh.io.sleep(at.saturating_sub(now)));
                drop(sh);
                match timer {
                    Some(timer) => futures_lite::future::or(listener, timer).await,
                    None => listener.await,
                }
            }
        }
    }
}

fn next_step<I: Disk>(sh: &Shared<I>, now: Duration) -> Step {
    let mut st = sh.st.borrow_mut();
    if st.failed.is_some() {
        return Step::Retry;
    }
    if st.switch_pending {
        return Step::Switch;
    }
    // Under `no` after a failed fsync, LSNs above the cap can never become durable.
    let syncable = st
        .durable_cap_lsn
        .map_or(st.written_lsn, |cap| cap.min(st.written_lsn));
    let unsynced = st.durable_lsn < syncable;
    let deadline = st.unsynced_since.map(|since| since + EVERYSEC_INTERVAL);
    let policy_due = match sh.opts.fsync {
        FsyncPolicy::Always => true,
        FsyncPolicy::Everysec => {
            deadline.is_some_and(|at| now >= at) || st.retained.len() > sh.opts.buffer_bytes_max
        }
        FsyncPolicy::No => false,
    };
    let requested = st.sync_requested && st.buf.is_empty();
    if unsynced && (policy_due || requested) {
        return Step::Sync;
    }
    if !st.buf.is_empty() {
        return Step::Write;
    }
    if st.sync_requested {
        // Nothing unsynced: the request is already satisfied.
        st.sync_requested = false;
    }
    let everysec = sh.opts.fsync == FsyncPolicy::Everysec;
    Step::Idle(if everysec && unsynced { deadline } else { None })
}

/// A switch (see `Aof::switch_to_prepared`): write the old file's last frames, fsync it
/// (whatever the policy: the new file must never hold an LSN whose predecessor could be
/// lost), then make the new incr the file appends go to. Any failure latches; the retry
/// finishes the old file and the next iteration switches again.
async fn switch<I: Clock + Disk>(sh: &Rc<Shared<I>>, now: Duration) {
    let (old, last_lsn) = {
        let mut st = sh.st.borrow_mut();
        (std::mem::take(&mut st.old_buf), st.old_last_lsn)
    };
    if !old.is_empty() {
        write_chunk(sh, old, last_lsn).await;
        if sh.st.borrow().failed.is_some() {
            return;
        }
    }
    let unsynced = {
        let st = sh.st.borrow();
        st.durable_lsn < st.written_lsn || !st.retained.is_empty() || st.unsynced_since.is_some()
    };
    if unsynced && !sync(sh, now).await {
        return;
    }
    let Some(next) = sh.switching.borrow_mut().take() else {
        sh.st.borrow_mut().switch_pending = false;
        return;
    };
    {
        let mut st = sh.st.borrow_mut();
        assert!(
            st.old_buf.is_empty() && st.inflight_bytes == 0,
            "old file not finished"
        );
        st.write_pos = crate::persist::FILE_HEADER_LEN_BYTES as u64;
        st.base_len = st.write_pos;
        st.retained.clear();
        st.unsynced_since = None;
        st.switch_pending = false;
    }
    *sh.file.borrow_mut() = next.file;
    *sh.path.borrow_mut() = next.path;
    tracing::info!(path = %sh.path.borrow().display(), lsn = last_lsn, "AOF appends switched to a new incr file");
    sh.progress.notify(usize::MAX);
}

/// Takes the whole buffer and writes it at the end of the file.
async fn write_buffered<I: Clock + Disk>(sh: &Rc<Shared<I>>) {
    let (chunk, last_lsn) = {
        let mut st = sh.st.borrow_mut();
        (std::mem::take(&mut st.buf), st.next_lsn - 1)
    };
    write_chunk(sh, chunk, last_lsn).await;
}

/// Writes `chunk` (frames up to `last_lsn`) at the end of the current file.
async fn write_chunk<I: Clock + Disk>(sh: &Rc<Shared<I>>, chunk: Vec<u8>, last_lsn: u64) {
    let pos = {
        let mut st = sh.st.borrow_mut();
        st.inflight_bytes = chunk.len() as u64;
        st.write_pos
    };
    let chunk_len = chunk.len() as u64;
    let file = sh.file.borrow().clone();
    let (result, chunk) = write_all_at(&*file, chunk, pos).await;
    let now = sh.io.monotonic();
    {
        let mut st = sh.st.borrow_mut();
        let st = &mut *st;
        st.inflight_bytes = 0;
        st.handed_lsn = last_lsn;
        append_retained(st, chunk);
        match result {
            Ok(()) => {
                st.write_pos += chunk_len;
                st.written_lsn = last_lsn;
                if sh.opts.fsync == FsyncPolicy::No {
                    // Under `no` a completed write is the commit point.
                    st.base_len = st.write_pos;
                    st.retained.clear();
                } else if st.unsynced_since.is_none() || sh.opts.everysec_starved_defect {
                    // (Predecessor bug 9, test-only defect: every write restarts the
                    // everysec deadline, so steady traffic never lets it expire.)
                    st.unsynced_since = Some(now);
                }
            }
            Err(error) if sh.opts.append_after_torn_write_defect => {
                // Predecessor bug 10 (test-only defect): no latch; the next frames go
                // after the torn chunk as if it had been written whole.
                tracing::warn!(%error, "AOF write failed; continuing (defect)");
                st.write_pos += chunk_len;
                st.written_lsn = last_lsn;
                if st.unsynced_since.is_none() {
                    st.unsynced_since = Some(now);
                }
            }
            Err(error) => latch(sh, st, "write", &error),
        }
    }
    sh.progress.notify(usize::MAX);
}

fn append_retained(st: &mut State, chunk: Vec<u8>) {
    if st.retained.is_empty() {
        st.retained = chunk;
    } else {
        st.retained.extend_from_slice(&chunk);
    }
}

/// fsyncs and publishes `durable_lsn`; false if the fsync failed (latched).
async fn sync<I: Clock + Disk>(sh: &Rc<Shared<I>>, now: Duration) -> bool {
    let (target_lsn, target_pos) = {
        let mut st = sh.st.borrow_mut();
        let late = st
            .unsynced_since
            .is_some_and(|since| now >= since + 2 * EVERYSEC_INTERVAL);
        if sh.opts.fsync == FsyncPolicy::Everysec && late {
            st.delayed_fsyncs += 1;
        }
        (st.written_lsn, st.write_pos)
    };
    let file = sh.file.borrow().clone();
    let result = file.sync_data().await;
    let ok = result.is_ok();
    {
        let mut st = sh.st.borrow_mut();
        let st = &mut *st;
        match result {
            Ok(()) => {
                st.fsyncs += 1;
                publish_durable(st, target_lsn);
                if sh.opts.fsync != FsyncPolicy::No {
                    // The writer is sequential: nothing was written during the fsync.
                    assert_eq!(st.write_pos, target_pos, "write during fsync");
                    assert_eq!(
                        st.retained.len() as u64,
                        target_pos - st.base_len,
                        "retained bytes"
                    );
                    st.base_len = target_pos;
                    st.retained.clear();
                }
                st.unsynced_since = None;
            }
            Err(error) => {
                cap_durable_after_failed_fsync(sh.opts.fsync, st);
                latch(sh, st, "fsync", &error);
            }
        }
    }
    sh.progress.notify(usize::MAX);
    ok
}

/// After a failed fsync (in `sync` or in the latch retry): under `no` the frames written
/// since the last good fsync are not kept, so pages the failure dropped can never be
/// rewritten, and a later fsync that succeeds proves nothing about them: never claim an
/// LSN above today's durable one durable again. Other policies keep those bytes and
/// rewrite them, so they need no cap.
fn cap_durable_after_failed_fsync(policy: FsyncPolicy, st: &mut State) {
    if policy == FsyncPolicy::No {
        st.durable_cap_lsn.get_or_insert(st.durable_lsn);
    }
}

fn publish_durable(st: &mut State, lsn: u64) {
    let capped = st.durable_cap_lsn.map_or(lsn, |cap| lsn.min(cap));
    st.durable_lsn = st.durable_lsn.max(capped);
}

/// After a latch: truncate to `base_len`, rewrite the kept frames, fsync; clear the latch
/// only if all of that succeeded.
async fn retry<I: Clock + Disk>(sh: &Rc<Shared<I>>) {
    if !sh.boot_copies.borrow().is_empty() && !retry_boot_copy(sh).await {
        return;
    }
    let (base, data, last_lsn) = {
        let mut st = sh.st.borrow_mut();
        let st = &mut *st;
        if st.switch_pending {
            // Mid-switch: only the old file's frames belong here; `buf` holds new-file
            // frames (another salt), written after the switch completes.
            let old = std::mem::take(&mut st.old_buf);
            append_retained(st, old);
            st.handed_lsn = st.old_last_lsn;
        } else if !st.buf.is_empty() {
            // Records appended before the latch: write them in the same pass.
            let buf = std::mem::take(&mut st.buf);
            append_retained(st, buf);
            st.handed_lsn = st.next_lsn - 1;
        }
        (st.base_len, std::mem::take(&mut st.retained), st.handed_lsn)
    };
    let len = data.len() as u64;
    let file = sh.file.borrow().clone();
    let (result, data) = rewrite(&*file, base, data).await;
    let mut guard = sh.st.borrow_mut();
    let st = &mut *guard;
    match result {
        Ok(()) => {
            st.write_pos = base + len;
            st.base_len = st.write_pos;
            st.written_lsn = last_lsn;
            st.fsyncs += 1;
            publish_durable(st, last_lsn);
            st.unsynced_since = None;
            st.failed = None;
            tracing::info!(path = %sh.path.borrow().display(), lsn = last_lsn, "AOF write error cleared: log rewritten and fsynced");
        }
        Err(error) => {
            st.retained = data;
            // Bug G: the retry's own fsync may be what failed.
            cap_durable_after_failed_fsync(sh.opts.fsync, st);
            st.last_error = Some(format!("retry: {error}"));
            tracing::warn!(path = %sh.path.borrow().display(), %error, "AOF retry failed; still refusing writes");
        }
    }
    drop(guard);
    sh.progress.notify(usize::MAX);
}

/// A start-up copy (parts.rs rule 6) failed: copy the files again before anything is
/// appended. True once done (the ordinary retry then clears the latch).
async fn retry_boot_copy<I: Clock + Disk>(sh: &Rc<Shared<I>>) -> bool {
    let paths = sh.boot_copies.borrow().clone();
    let current = sh.path.borrow().clone();
    match super::parts::copy_again(&sh.io, &sh.opts.dir, &paths, &current).await {
        Ok(copy) => {
            if let Some(copy) = copy {
                *sh.file.borrow_mut() = Rc::new(copy);
            }
            sh.boot_copies.borrow_mut().clear();
            true
        }
        Err(error) => {
            sh.st.borrow_mut().last_error = Some(format!("retry: {error}"));
            tracing::warn!(%error, "AOF start-up copy failed again; still refusing writes");
            false
        }
    }
}

/// Latch retry: 1. write the retained frames again IN PLACE at `base` (the same bytes
/// they already had, so a crash at any point never removes acknowledged frames from the
/// page cache); 2. cut whatever lies past them (a torn frame); 3. fsync.
/// (Truncating first would drop acknowledged-but-unsynced frames if the process died
/// before the rewrite — found by the simulator, `regressions::everysec_retry…`.)
async fn rewrite<F: File>(file: &F, base: u64, data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let len = data.len() as u64;
    let (result, data) = if data.is_empty() {
        (Ok(()), data)
    } else {
        write_all_at(file, data, base).await
    };
    if let Err(error) = result {
        return (Err(error), data);
    }
    if let Err(error) = file.set_len(base + len).await {
        return (Err(error), data);
    }
    (file.sync_data().await, data)
}

fn latch<I: Disk>(sh: &Shared<I>, st: &mut State, op: &str, error: &io::Error) {
    tracing::error!(path = %sh.path.borrow().display(), op, %error, "AOF {op} failed: refusing writes until a retry succeeds");
    st.failed = Some(strerror_text(error));
    st.last_error = Some(format!("{op}: {error}"));
}

/// The error text as Redis prints it (`strerror`): without Rust's ` (os error N)` suffix.
pub(crate) fn strerror_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}
