//! Executor: determinism, timer order, kills, deadlock detection, busy tasks vs timers.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tidemark_sim::executor::{Executor, Owner, RunOutcome};

use crate::limits;

/// Eight tasks that each record their id after a few yields and a sleep; returns the
/// order they finished in and the trace hash.
fn race(seed: u64) -> (Vec<u32>, u64) {
    let exec = Executor::new(seed);
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..8u32 {
        let exec2 = exec.clone();
        let order = order.clone();
        exec.spawn(Owner::Client(i), async move {
            for _ in 0..3 {
                exec2.yield_now().await;
            }
            exec2.sleep(Duration::from_micros(50)).await;
            order.borrow_mut().push(i);
        });
    }
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    let order = order.borrow().clone();
    (order, exec.trace_hash())
}

#[test]
fn same_seed_same_trace() {
    let (order_a, hash_a) = race(42);
    let (order_b, hash_b) = race(42);
    assert_eq!(order_a, order_b);
    assert_eq!(hash_a, hash_b);
    assert_eq!(order_a.len(), 8);
}

#[test]
fn different_seeds_different_interleavings() {
    let orders: BTreeSet<Vec<u32>> = (0..10).map(|s| race(s).0).collect();
    let hashes: BTreeSet<u64> = (0..10).map(|s| race(s).1).collect();
    assert!(
        orders.len() >= 5,
        "only {} distinct orders over 10 seeds",
        orders.len()
    );
    assert_eq!(hashes.len(), 10, "trace hashes must differ between seeds");
}

#[test]
fn timers_fire_in_deadline_order_at_their_time() {
    let exec = Executor::new(7);
    let fired = Rc::new(RefCell::new(Vec::new()));
    for (name, ms) in [("c", 30u64), ("a", 10), ("b", 20), ("d", 40)] {
        let exec2 = exec.clone();
        let fired = fired.clone();
        exec.spawn(Owner::World, async move {
            exec2.sleep(Duration::from_millis(ms)).await;
            fired.borrow_mut().push((name, exec2.now()));
        });
    }
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    let fired = fired.borrow();
    let names: Vec<&str> = fired.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    for ((_, at), ms) in fired.iter().zip([10u64, 20, 30, 40]) {
        assert!(
            *at >= Duration::from_millis(ms),
            "fired early: {at:?} < {ms} ms"
        );
        assert!(*at < Duration::from_millis(ms + 1), "fired late: {at:?}");
    }
}

struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn kill_owner_drops_only_that_nodes_tasks() {
    let exec = Executor::new(1);
    let dropped = Rc::new(Cell::new(false));
    let survivor_ticks = Rc::new(Cell::new(0u32));
    for _ in 0..3 {
        let exec2 = exec.clone();
        let flag = DropFlag(dropped.clone());
        exec.spawn(Owner::Node(1), async move {
            let _flag = flag;
            loop {
                exec2.sleep(Duration::from_millis(1)).await;
            }
        });
    }
    let exec2 = exec.clone();
    let ticks = survivor_ticks.clone();
    exec.spawn(Owner::Node(2), async move {
        for _ in 0..100 {
            exec2.sleep(Duration::from_millis(1)).await;
            ticks.set(ticks.get() + 1);
        }
    });
    let exec2 = exec.clone();
    exec.spawn(Owner::World, async move {
        exec2.sleep(Duration::from_millis(10)).await;
        assert_eq!(exec2.kill_owner(Owner::Node(1)), 3);
    });
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    assert!(dropped.get(), "killed tasks' futures must be dropped");
    assert_eq!(exec.task_count(Owner::Node(1)), 0);
    assert_eq!(survivor_ticks.get(), 100, "other nodes keep running");
}

#[test]
fn a_task_killing_its_own_owner_stops() {
    let exec = Executor::new(3);
    let after = Rc::new(Cell::new(false));
    let exec2 = exec.clone();
    let after2 = after.clone();
    exec.spawn(Owner::Node(5), async move {
        exec2.kill_owner(Owner::Node(5));
        exec2.yield_now().await;
        after2.set(true);
    });
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    assert!(
        !after.get(),
        "a task killed mid-poll must not be polled again"
    );
}

#[test]
fn deadlock_is_reported_with_the_stuck_tasks() {
    let exec = Executor::new(9);
    let id = exec.spawn(Owner::Node(3), std::future::pending::<()>());
    match exec.run_until(limits(), || false) {
        RunOutcome::Deadlock { stuck } => assert_eq!(stuck, vec![(id, Owner::Node(3))]),
        other => panic!("expected deadlock, got {other:?}"),
    }
}

#[test]
fn busy_tasks_cannot_starve_timers() {
    let exec = Executor::new(11);
    let exec2 = exec.clone();
    exec.spawn(Owner::Node(1), async move {
        loop {
            exec2.yield_now().await;
        }
    });
    let exec2 = exec.clone();
    let woke = exec.block_on(Owner::World, limits(), async move {
        exec2.sleep(Duration::from_millis(5)).await;
        exec2.now()
    });
    let woke = woke.expect("the sleeper must finish although another task never blocks");
    assert!(woke >= Duration::from_millis(5));
}

#[test]
fn budgets_stop_the_run() {
    let exec = Executor::new(2);
    let exec2 = exec.clone();
    exec.spawn(Owner::World, async move {
        loop {
            exec2.sleep(Duration::from_secs(1)).await;
        }
    });
    let short = tidemark_sim::executor::RunLimits {
        max_steps: 10,
        max_time: Duration::from_secs(3600),
    };
    assert_eq!(exec.run_until(short, || false), RunOutcome::StepBudget);
    let timed = tidemark_sim::executor::RunLimits {
        max_steps: u64::MAX,
        max_time: Duration::from_secs(60),
    };
    assert_eq!(exec.run_until(timed, || false), RunOutcome::TimeBudget);
    assert!(exec.now() > Duration::from_secs(60));
}

/// A one-shot signal: one task waits, another wakes it (same-thread waker use).
#[derive(Default)]
struct Signal {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

struct Wait(Rc<Signal>);
impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.set.get() {
            Poll::Ready(())
        } else {
            *self.0.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[test]
fn wakers_work_across_tasks() {
    let exec = Executor::new(5);
    let signal = Rc::new(Signal::default());
    let s = signal.clone();
    let exec2 = exec.clone();
    exec.spawn(Owner::Client(1), async move {
        exec2.sleep(Duration::from_millis(3)).await;
        s.set.set(true);
        if let Some(w) = s.waker.borrow_mut().take() {
            w.wake();
        }
    });
    let exec2 = exec.clone();
    let at = exec.block_on(Owner::Client(2), limits(), async move {
        Wait(signal).await;
        exec2.now()
    });
    assert!(at.expect("woken") >= Duration::from_millis(3));
}

#[test]
fn wall_clock_is_seeded_epoch_plus_monotonic() {
    let exec = Executor::new(8);
    let start = exec.wall_clock_ms();
    assert!(start >= 1_700_000_000_000);
    let exec2 = exec.clone();
    exec.block_on(Owner::World, limits(), async move {
        exec2.sleep(Duration::from_millis(1500)).await
    })
    .expect("sleep ends");
    assert!(exec.wall_clock_ms() >= start + 1500);
    assert_eq!(
        Executor::new(8).wall_clock_ms(),
        start,
        "epoch depends only on the seed"
    );
}
