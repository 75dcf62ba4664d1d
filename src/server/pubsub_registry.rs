//! The node-wide Pub/Sub registry and the per-connection outbox.
//!
//! Every shard thread shares one [`Registry`] (a field of `Node`): channel → subscribers
//! and pattern → subscribers, each subscriber being a client id and its [`Outbox`]. PUBLISH
//! on any shard walks the registry under its mutex and pushes a [`Message`] into each
//! matching outbox; the subscriber's own connection task (on whatever shard accepted it)
//! drains its outbox and writes to its socket (src/server/pubsub.rs). Iteration is over
//! `BTreeMap`s, so delivery order depends only on the names and client ids.
//!
//! Bounded memory: an outbox accounts the bytes it holds; a push that takes it past the
//! `client-output-buffer-limit pubsub` hard limit, or keeps it over the soft limit for
//! longer than the soft seconds, *closes* it (Redis's disconnect of a slow subscriber):
//! its queue is freed, later pushes are refused, and its connection task ends the
//! connection. PUBLISH therefore never waits on a subscriber.
//!
//! Executor-agnostic: only `std::sync::Mutex`, atomics and `event_listener`. Lock order:
//! registry, then one outbox. What can fail: nothing returns errors; a poisoned mutex is
//! recovered (the data it guards stays consistent: every critical section is panic-free).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::keyspace::glob::glob_match;
use crate::server::config::OutputBufferLimit;

/// Bytes accounted for one queued message on top of its pattern, channel and payload
/// (the RESP array and bulk headers, roughly, as Redis's reply buffers would hold them).
pub const MESSAGE_OVERHEAD_BYTES: u64 = 48;

/// One published message as a subscriber receives it: `pattern` is set for a delivery
/// through a pattern subscription (`pmessage`), `None` for a channel one (`message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The matching pattern (PSUBSCRIBE), if delivered through one.
    pub pattern: Option<Bytes>,
    /// The channel it was published to.
    pub channel: Bytes,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The bytes this message is accounted for in an outbox.
    pub fn size_bytes(&self) -> u64 {
        let pattern = self.pattern.as_ref().map_or(0, Bytes::len);
        (pattern + self.channel.len() + self.payload.len()) as u64 + MESSAGE_OVERHEAD_BYTES
    }
}

/// Channel or pattern subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: exact channel name.
    Channel,
    /// PSUBSCRIBE: glob pattern (src/keyspace/glob.rs semantics).
    Pattern,
}

#[derive(Default)]
struct OutboxState {
    queue: VecDeque<Message>,
    pending_bytes: u64,
    /// Monotonic time at which the soft limit was first seen exceeded (None: it is not).
    soft_exceeded_since: Option<Duration>,
}

/// A subscriber's bounded queue of messages, filled by publishers on any thread and
/// drained by its connection task. Closed for good once a limit is exceeded.
#[derive(Default)]
pub struct Outbox {
    state: Mutex<OutboxState>,
    closed: AtomicBool,
    event: event_listener::Event,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Outbox {
    /// A new, empty, open outbox.
    pub fn new() -> Arc<Outbox> {
        Arc::new(Outbox::default())
    }

    /// Queues `message` unless the outbox is closed. `now` is the seam's monotonic time.
    /// Returns whether it was accepted (a push that exceeds `limit` is accepted, then the
    /// outbox closes, as Redis counts the receiver and then disconnects it). Redis's
    /// `checkClientOutputBufferLimits`: hard if pending ≥ hard; soft if pending ≥ soft for
    /// more than `soft_seconds` since first seen (0 disables either limit).
    pub fn push(&self, message: Message, limit: &OutputBufferLimit, now: Duration) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut state = lock(&self.state);
        state.pending_bytes += message.size_bytes();
        state.queue.push_back(message);
        let pending = state.pending_bytes;
        let hard = limit.hard_bytes > 0 && pending >= limit.hard_bytes;
        let mut soft = false;
        if limit.soft_bytes > 0 && pending >= limit.soft_bytes {
            match state.soft_exceeded_since {
                None => state.soft_exceeded_since = Some(now),
                Some(since) => {
                    soft = now.saturating_sub(since) > Duration::from_secs(limit.soft_seconds)
                }
            }
        } else {
            state.soft_exceeded_since = None;
        }
        if hard || soft {
            tracing::warn!(
                pending_bytes = pending,
                hard,
                soft,
                "closing pubsub client for overcoming of output buffer limits"
            );
            state.queue = VecDeque::new();
            state.pending_bytes = 0;
            self.closed.store(true, Ordering::SeqCst);
        }
        drop(state);
        self.event.notify(usize::MAX);
        true
    }

    /// Takes queued messages, oldest first, until about `max_bytes` are taken (at least
    /// one if any is queued). Empty when nothing is queued or the outbox is closed.
    pub fn take(&self, max_bytes: u64) -> Vec<Message> {
        let mut state = lock(&self.state);
        let mut taken = Vec::new();
        let mut bytes = 0u64;
        while bytes < max_bytes {
            let Some(message) = state.queue.pop_front() else {
                break;
            };
            bytes += message.size_bytes();
            taken.push(message);
        }
        state.pending_bytes -= bytes;
        if state.queue.is_empty() {
            state.soft_exceeded_since = None;
        }
        taken
    }

    /// True once a limit closed this outbox (its client must be disconnected).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Bytes currently queued.
    pub fn pending_bytes(&self) -> u64 {
        lock(&self.state).pending_bytes
    }

    fn has_work(&self) -> bool {
        self.is_closed() || !lock(&self.state).queue.is_empty()
    }

    /// Completes when a message is queued or the outbox is closed.
    pub async fn wait_ready(&self) {
        self.wait_until(Outbox::has_work).await;
    }

    /// Completes when the outbox is closed.
    pub async fn wait_closed(&self) {
        self.wait_until(Outbox::is_closed).await;
    }

    async fn wait_until(&self, done: fn(&Outbox) -> bool) {
        loop {
            if done(self) {
                return;
            }
            let listener = self.event.listen();
            if done(self) {
                return;
            }
            listener.await;
        }
    }
}

type Subscribers = BTreeMap<u64, Arc<Outbox>>;

#[derive(Default)]
struct Inner {
    channels: BTreeMap<Bytes, Subscribers>,
    patterns: BTreeMap<Bytes, Subscribers>,
}

impl Inner {
    fn map(&mut self, kind: Kind) -> &mut BTreeMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }
}

/// Live subscribers of a set (closed outboxes are on their way out and not counted).
fn live(subscribers: &Subscribers) -> usize {
    subscribers.values().filter(|o| !o.is_closed()).count()
}

/// Channel and pattern subscriptions of every client of the node. `Send + Sync`.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    /// Adds client `client_id` (with its outbox) to `name`; false if it was there already.
    pub fn subscribe(
        &self,
        kind: Kind,
        name: &Bytes,
        client_id: u64,
        outbox: &Arc<Outbox>,
    ) -> bool {
        let mut inner = lock(&self.inner);
        let subscribers = inner.map(kind).entry(name.clone()).or_default();
        subscribers.insert(client_id, outbox.clone()).is_none()
    }

    /// Removes client `client_id` from `name`; false if it was not there. A name left
    /// without subscribers is removed (PUBSUB CHANNELS lists only active channels).
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], client_id: u64) -> bool {
        let mut inner = lock(&self.inner);
        let map = inner.map(kind);
        let Some(subscribers) = map.get_mut(name) else {
            return false;
        };
        let removed = subscribers.remove(&client_id).is_some();
        if subscribers.is_empty() {
            map.remove(name);
        }
        removed
    }

    /// Delivers `payload` to the subscribers of `channel` (`message`), then to those of
    /// every matching pattern (`pmessage`), in name and client-id order. Returns the number
    /// of deliveries (Redis's PUBLISH reply: a client subscribed both ways counts twice).
    /// Never waits: a full outbox closes instead (see [`Outbox::push`]).
    pub fn publish(
        &self,
        channel: &Bytes,
        payload: &Bytes,
        limit: &OutputBufferLimit,
        now: Duration,
    ) -> usize {
        let inner = lock(&self.inner);
        let mut receivers = 0;
        if let Some(subscribers) = inner.channels.get(channel) {
            let message = Message {
                pattern: None,
                channel: channel.clone(),
                payload: payload.clone(),
            };
            for outbox in subscribers.values() {
                receivers += usize::from(outbox.push(message.clone(), limit, now));
            }
        }
        for (pattern, subscribers) in &inner.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            let message = Message {
                pattern: Some(pattern.clone()),
                channel: channel.clone(),
                payload: payload.clone(),
            };
            for outbox in subscribers.values() {
                receivers += usize::from(outbox.push(message.clone(), limit, now));
            }
        }
        receivers
    }

    /// PUBSUB CHANNELS: active channels (at least one live subscriber), sorted, optionally
    /// only those matching the glob `pattern`.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let inner = lock(&self.inner);
        inner
            .channels
            .iter()
            .filter(|(name, subscribers)| {
                live(subscribers) > 0 && pattern.is_none_or(|p| glob_match(p, name))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// PUBSUB NUMSUB for one channel: its live subscribers (patterns not counted).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        lock(&self.inner).channels.get(channel).map_or(0, live)
    }

    /// PUBSUB NUMPAT: distinct patterns with at least one live subscriber.
    pub fn numpat(&self) -> usize {
        let inner = lock(&self.inner);
        inner.patterns.values().filter(|s| live(s) > 0).count()
    }

    /// INFO `pubsub_channels`, `pubsub_patterns`: active channels and patterns.
    pub fn counts(&self) -> (usize, usize) {
        let inner = lock(&self.inner);
        let active =
            |map: &BTreeMap<Bytes, Subscribers>| map.values().filter(|s| live(s) > 0).count();
        (active(&inner.channels), active(&inner.patterns))
    }
}

#[cfg(test)]
#[path = "pubsub_registry_tests.rs"]
mod tests;
