//! Blocked clients (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP; BZPOPMIN BZPOPMAX BZMPOP on
//! sorted sets): the per-shard registry of waiters and the wait loop `Shard::run_blocking`.
//!
//! Design:
//! - Registry: per shard and database, `key → FIFO of waiters` (a `BTreeMap`, deterministic). A waiter
//!   blocked on several keys sits in each key's queue, once. Notification is a flag plus a
//!   stored `Waker`, so it works on any executor (compio in production, the simulator's
//!   seeded executor, `io::mem`'s test executor).
//! - Ready keys: after every local command, `Shard::execute_local` calls
//!   [`BlockingRegistry::wake_ready`] with the commands it propagated (the effective
//!   writes). Every key those records write (legacy key spec of the logged command: pushes,
//!   LINSERT, LMOVE/RPOPLPUSH destinations, RENAME targets, ZADD, …) that has waiters and
//!   now holds a non-empty list or sorted set gets its FIRST waiter notified (Redis serves
//!   blocked clients in FIFO order). No command has to remember to mark keys ready.
//! - Serving: a notified waiter re-runs the command's non-blocking attempt (the handler in
//!   src/cmd/lists.rs, src/cmd/zsets/blocking.rs). If another client took the element first (the attempt replies `*-1`)
//!   it keeps its queue position and waits again. On success it leaves every queue and
//!   notifies the next waiter of each of its keys that still holds elements, so one RPUSH
//!   of three elements serves three waiters in turn. The pop's AOF record is appended when
//!   the element is actually popped, and the reply waits for the AOF ack like any write.
//! - Timeout: the seam's clock (`io::with_timeout`), never std time; `None` = forever
//!   (timeout 0). On timeout the reply is `*-1` (Redis 7.0 uses a null array for all five
//!   commands), after a read barrier.
//! - Drop safety: a [`Registration`] leaves every queue when dropped (client disconnected,
//!   timeout, task cancelled). If it had been notified but never served, it passes the
//!   notification on, so no element is left with a waiter that will never come.
//! - Cross-shard: a blocking command whose keys live on another shard is sent there as a
//!   normal `Job::Command`; that shard's request server runs `run_blocking` in a task of its
//!   own (the queue keeps flowing). The requester waits for the reply for the blocking
//!   timeout PLUS `cross_shard_timeout` (forever when the timeout is 0), see
//!   [`call_blocking`]. The owning shard checks before every pop attempt whether the
//!   requester is still there (`Sender::is_closed`) and polls that every
//!   [`BLOCKED_REQUESTER_POLL_MS`] while waiting, so a gone client never pops an element
//!   and does not hold a FIFO place forever.
//!
//! Known differences from Redis: a woken client retries the keys in argument order (Redis
//! serves it from the key that became ready), and the wake-up runs as a task after the
//! pushing command, so a non-blocking LPOP pipelined right after the push can take the
//! element first. A waiter is woken when its key becomes a non-empty list OR sorted set,
//! whatever it waits for, so a BLPOP client whose key becomes a sorted set (or a BZPOPMIN
//! client whose key becomes a list) gets WRONGTYPE where Redis 7.0 keeps it blocked.
//! What can fail here: cross-shard send/reply errors (error frames).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;

use crate::cmd::{self, CommandSpec};
use crate::io::{with_timeout, Clock, Io};
use crate::keyspace::{Db, Value};
use crate::resp::Frame;
use crate::shard::dispatch::{Job, Request, Response, Senders};
use crate::shard::route::Router;
use crate::shard::state::{DbIndex, Shard};

/// How often a shard serving a remote blocked client checks that the client is still
/// waiting for the answer.
pub const BLOCKED_REQUESTER_POLL_MS: u64 = 1000;

struct Waiter {
    keys: Vec<Bytes>,
    notified: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The per-shard registry of blocked clients: key → FIFO of waiters.
#[derive(Default)]
pub struct BlockingRegistry {
    queues: RefCell<BTreeMap<Bytes, VecDeque<Rc<Waiter>>>>,
}

impl BlockingRegistry {
    /// An empty registry.
    pub fn new() -> BlockingRegistry {
        BlockingRegistry::default()
    }

    /// True when no client is blocked on this shard.
    pub fn is_empty(&self) -> bool {
        self.queues.borrow().is_empty()
    }

    /// Clients blocked on `key`.
    pub fn waiters(&self, key: &[u8]) -> usize {
        self.queues.borrow().get(key).map_or(0, VecDeque::len)
    }

    /// Appends a waiter for `keys` (duplicates ignored) to the back of each key's queue.
    pub fn register(&self, keys: &[Bytes]) -> Registration<'_> {
        let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(key) {
                unique.push(key.clone());
            }
        }
        let waiter = Rc::new(Waiter {
            keys: unique,
            notified: Cell::new(false),
            waker: RefCell::new(None),
        });
        let mut queues = self.queues.borrow_mut();
        for key in &waiter.keys {
            queues
                .entry(key.clone())
                .or_default()
                .push_back(waiter.clone());
        }
        Registration {
            registry: self,
            waiter,
        }
    }

    /// Notifies the first waiter of `key` (no-op without waiters, or if it is already
    /// notified and will pass the turn on itself).
    pub fn notify_first(&self, key: &[u8]) {
        let first = self
            .queues
            .borrow()
            .get(key)
            .and_then(|q| q.front().cloned());
        if let Some(waiter) = first {
            if !waiter.notified.replace(true) {
                if let Some(waker) = waiter.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
        }
    }

    /// Notifies the first waiter of every key in `keys` that holds a non-empty list.
    pub fn notify_if_ready<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>, db: &Db) {
        for key in keys {
            let ready = match db.peek(key).map(|e| &e.value) {
                Some(Value::List(l)) => !l.is_empty(),
                // BZPOPMIN BZPOPMAX BZMPOP waiters.
                Some(Value::ZSet(z)) => !z.is_empty(),
                _ => false,
            };
            if ready && self.waiters(key) > 0 {
                self.notify_first(key);
            }
        }
    }

    /// After a SWAPDB: every key with waiters that now holds a non-empty list in `db`
    /// wakes its first waiter.
    pub fn wake_all_ready(&self, db: &Db) {
        let keys: Vec<Bytes> = self.queues.borrow().keys().cloned().collect();
        self.notify_if_ready(keys.iter().map(|k| &k[..]), db);
    }

    /// Called after a command ran: every key written by a propagated record that now holds
    /// a non-empty list wakes its first waiter.
    pub fn wake_ready(&self, propagated: &[Vec<Bytes>], db: &Db) {
        if self.is_empty() {
            return;
        }
        for record in propagated {
            let Some(spec) = record.first().and_then(|name| cmd::lookup(name)) else {
                continue;
            };
            let keys = spec.key_indexes(record.len()).map(|i| &record[i][..]);
            self.notify_if_ready(keys, db);
        }
    }

    fn remove(&self, waiter: &Rc<Waiter>) {
        let mut queues = self.queues.borrow_mut();
        for key in &waiter.keys {
            if let Some(queue) = queues.get_mut(&key[..]) {
                queue.retain(|w| !Rc::ptr_eq(w, waiter));
                if queue.is_empty() {
                    queues.remove(&key[..]);
                }
            }
        }
    }
}

/// One blocked client's place in the registry; leaves every queue when dropped.
pub struct Registration<'a> {
    registry: &'a BlockingRegistry,
    waiter: Rc<Waiter>,
}

impl Registration<'_> {
    /// Completes once this waiter is notified (consuming the notification).
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            waiter: &self.waiter,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.remove(&self.waiter);
        if self.waiter.notified.get() {
            // Notified but never served: hand the turn to the next waiter of each key.
            for key in &self.waiter.keys {
                self.registry.notify_first(key);
            }
        }
    }
}

/// Future returned by [`Registration::notified`].
pub struct Notified<'a> {
    waiter: &'a Waiter,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiter.notified.replace(false) {
            return Poll::Ready(());
        }
        *self.waiter.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// What a blocked client waits on: keys and timeout of a blocking list command
/// ([`cmd::blocking_wait_spec`]) or sorted-set command (BZPOPMIN BZPOPMAX BZMPOP).
fn wait_spec(args: &[Bytes]) -> Option<(Vec<Bytes>, Option<Duration>)> {
    cmd::blocking_wait_spec(args).or_else(|| cmd::zsets::blocking_wait_spec(args))
}

/// True for the commands `run_blocking` must handle (flag "blocking" in the table).
pub fn is_blocking(spec: &CommandSpec) -> bool {
    spec.flags.contains(&"blocking")
}

impl<I: Io> Shard<I> {
    /// Runs a command here and, for a blocking list command whose keys are all empty,
    /// blocks until it is served or times out. The reply is acknowledged per the AOF
    /// policy. Non-blocking commands just run and wait for their ack.
    pub async fn run_blocking(&self, db: DbIndex, spec: &CommandSpec, args: &[Bytes]) -> Frame {
        self.run_blocking_while(db, spec, args, || false).await
    }

    /// [`Shard::run_blocking`] for a requester that may go away: `gone()` is checked before
    /// every pop attempt and every [`BLOCKED_REQUESTER_POLL_MS`]; once true the client is
    /// unblocked without popping anything (the reply is then `*-1`, and nobody reads it).
    pub async fn run_blocking_while(
        &self,
        db: DbIndex,
        spec: &CommandSpec,
        args: &[Bytes],
        gone: impl Fn() -> bool,
    ) -> Frame {
        let (reply, lsn) = self.execute_local(db, spec, args);
        let wait = if is_blocking(spec) && reply == Frame::NullArray {
            wait_spec(args)
        } else {
            None
        };
        let Some((keys, timeout)) = wait else {
            return self.acked(reply, lsn).await;
        };
        let registry = &self.blocking[db];
        let registration = registry.register(&keys);
        // `None`: forever (timeout 0, or a deadline past what a Duration holds).
        let deadline = timeout.and_then(|t| self.io.monotonic().checked_add(t));
        loop {
            let left = deadline.map(|d| d.saturating_sub(self.io.monotonic()));
            if left.is_some_and(|l| l.is_zero()) || gone() {
                break;
            }
            let poll = left
                .unwrap_or(Duration::MAX)
                .min(Duration::from_millis(BLOCKED_REQUESTER_POLL_MS));
            if with_timeout(&self.io, poll, registration.notified())
                .await
                .is_none()
                || gone()
            {
                continue;
            }
            let (reply, lsn) = self.execute_local(db, spec, args);
            if reply == Frame::NullArray {
                continue;
            }
            drop(registration);
            registry.notify_if_ready(keys.iter().map(|k| &k[..]), &self.dbs.borrow()[db]);
            return self.acked(reply, lsn).await;
        }
        drop(registration);
        // A notification consumed just before the timeout or the requester leaving goes on.
        registry.notify_if_ready(keys.iter().map(|k| &k[..]), &self.dbs.borrow()[db]);
        let barrier = self.read_barrier();
        self.acked(Frame::NullArray, barrier).await
    }

    async fn acked(&self, reply: Frame, lsn: Option<u64>) -> Frame {
        let lsn = lsn.or_else(|| self.read_barrier());
        match self.wait_ack(lsn).await {
            Ok(()) => reply,
            Err(error) => error,
        }
    }
}

impl<I: Io> Router<'_, I> {
    /// Runs a blocking list command on the shard owning its keys: here via
    /// [`Shard::run_blocking`], elsewhere via [`call_blocking`]. Keys on several shards are
    /// refused (CROSSSLOT) before anything runs.
    pub async fn run_blocking(&self, spec: &CommandSpec, args: Vec<Bytes>) -> Frame {
        match self.same_shard(spec, &args) {
            None => self.run(spec, args).await,
            Some(target) if target == self.shard.id => {
                self.shard.run_blocking(self.db.get(), spec, &args).await
            }
            Some(target) => {
                let db = self.db.get();
                call_blocking(&self.shard.io, self.senders, target, db, args, self.timeout).await
            }
        }
    }
}

/// Sends a blocking command to shard `target` and waits for its answer: the send waits at
/// most `cross_shard_timeout`; the answer at most the command's blocking timeout plus
/// `cross_shard_timeout`, or forever for timeout 0 (the owner unblocks the client when this
/// future is dropped, see the module doc).
pub async fn call_blocking<C: Clock>(
    clock: &C,
    senders: &Senders,
    target: u16,
    db: DbIndex,
    args: Vec<Bytes>,
    cross_shard_timeout: Duration,
) -> Frame {
    let wait = wait_spec(&args).map(|(_, t)| t);
    let (reply_tx, reply_rx) = async_channel::bounded(1);
    let request = Request {
        job: Job::Command(db, args),
        reply: reply_tx,
    };
    match with_timeout(clock, cross_shard_timeout, senders[usize::from(target)].send(request)).await {
        None => {
            return Frame::error(format!(
                "ERR cross-shard queue of shard {target} is full (waited {} ms); the command was not executed",
                cross_shard_timeout.as_millis()
            ))
        }
        Some(Err(_)) => return Frame::error(format!("ERR shard {target} is not running; the command was not executed")),
        Some(Ok(())) => {}
    }
    let answer = match wait {
        Some(None) => Some(reply_rx.recv().await),
        Some(Some(t)) => {
            with_timeout(
                clock,
                t.saturating_add(cross_shard_timeout),
                reply_rx.recv(),
            )
            .await
        }
        None => with_timeout(clock, cross_shard_timeout, reply_rx.recv()).await,
    };
    match answer {
        Some(Ok(Response::Reply(frame))) => frame,
        Some(Ok(_)) => Frame::error("ERR internal: unexpected response to a blocking command"),
        Some(Err(_)) => Frame::error(format!(
            "ERR shard {target} stopped before answering; the outcome is unknown"
        )),
        None => Frame::error(format!(
            "ERR shard {target} did not answer in time; the outcome is unknown"
        )),
    }
}

/// Serves one blocking request from another shard (spawned by the request server so its
/// queue keeps flowing).
pub async fn serve_blocking_request<I: Io>(
    shard: Rc<Shard<I>>,
    db: DbIndex,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    reply: async_channel::Sender<Response>,
) {
    let frame = shard
        .run_blocking_while(db, spec, &args, || reply.is_closed())
        .await;
    let _ = reply.try_send(Response::Reply(frame));
}

#[cfg(test)]
#[path = "blocking_tests.rs"]
mod tests;
