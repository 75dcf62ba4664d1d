//! Tests of the cross-shard call's bounded wait on the in-memory world (`io::mem`, virtual
//! time): a wedged target shard with a one-request queue must give the caller an error
//! after `timeout`, never an endless retry (predecessor bug 5).

use std::time::Duration;

use super::*;
use crate::io::mem::MemIo;

/// The bound on the call, in virtual ms.
const CALL_TIMEOUT_MS: u64 = 200;
/// How long the test waits for the call before declaring it hung (10× the bound).
const HUNG_AFTER_MS: u64 = 10 * CALL_TIMEOUT_MS;

/// Runs one `Job::Stats` call against shard 0, whose queue (capacity 1,
/// `cross_shard_queue_len = 1`) is already full and whose task never receives (wedged).
/// `Some(result)` if the call returned within [`HUNG_AFTER_MS`] of virtual time.
fn call_a_wedged_shard(defects: Defects) -> Option<Result<(), String>> {
    let io = MemIo::new();
    let (tx, rx) = async_channel::bounded::<Request>(1);
    let (filler_reply, _filler_rx) = async_channel::bounded(1);
    tx.try_send(Request {
        job: Job::Stats,
        reply: filler_reply,
    })
    .unwrap_or_else(|_| panic!("the first request fits"));
    let senders: Senders = vec![tx];
    let clock = io.clone();
    let outcome = io
        .run(async move {
            let call = async {
                let result = call_with_defects(
                    &clock,
                    &senders,
                    0,
                    Job::Stats,
                    Duration::from_millis(CALL_TIMEOUT_MS),
                    &defects,
                )
                .await;
                Some(result.map(|_| ()).map_err(|frame| format!("{frame:?}")))
            };
            let hung = async {
                clock.sleep(Duration::from_millis(HUNG_AFTER_MS)).await;
                None
            };
            futures_lite::future::or(call, hung).await
        })
        .expect("the executor stalled");
    drop(rx);
    outcome
}

/// Predecessor bug 5: with `Defects::unbounded_cross_shard_retry` the caller retries a
/// full queue forever; without it the caller gets the "queue is full" error at the bound.
/// Reproduce: `cargo test -p tidemark --lib predecessor_bug_5` (deterministic, no seed:
/// queue length 1, wedged shard 0, bound 200 ms, hung after 2000 ms of virtual time).
#[test]
fn predecessor_bug_5_unbounded_retry_on_a_full_queue_is_detected() {
    let fixed = call_a_wedged_shard(Defects::default());
    match fixed {
        Some(Err(text)) => assert!(
            text.contains("cross-shard queue of shard 0 is full"),
            "switch off: expected the queue-full error, got {text}"
        ),
        other => panic!(
            "switch off: the call must fail within {CALL_TIMEOUT_MS} ms, got {other:?} \
             (predecessor_bug_5, queue length 1, wedged shard 0)"
        ),
    }
    let buggy = call_a_wedged_shard(Defects {
        unbounded_cross_shard_retry: true,
        ..Defects::default()
    });
    assert!(
        buggy.is_none(),
        "switch on: the test must report the hang (the call still running after \
         {HUNG_AFTER_MS} ms with a {CALL_TIMEOUT_MS} ms bound); it returned {buggy:?}"
    );
}

#[test]
fn keyspace_lines_sum_shards_per_database_and_skip_empty_ones() {
    use crate::shard::dispatch::{keyspace_lines, DbStats};
    let stats = |keys, expires, avg_ttl_ms| DbStats {
        keys,
        expires,
        avg_ttl_ms,
    };
    let shard0 = vec![(0, stats(3, 1, 1000)), (5, stats(1, 0, 0))];
    let shard1 = vec![(0, stats(2, 3, 2000)), (2, stats(0, 0, 0))];
    let lines = keyspace_lines(&[&shard0, &shard1]);
    assert_eq!(
        lines,
        "db0:keys=5,expires=4,avg_ttl=1750\r\ndb5:keys=1,expires=0,avg_ttl=0\r\n"
    );
    assert_eq!(keyspace_lines(&[]), "");
}
