//! Pub/Sub commands and a connection's subscribed mode: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
//! PUNSUBSCRIBE, PUBLISH, PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB /
//! HELP, with Redis 7 replies (redis.io/docs/interact/pubsub; checked against 7.0.15).
//!
//! Across shards: subscriptions live in the node-wide registry (`Node::pubsub`,
//! src/server/pubsub_registry.rs), so a PUBLISH on any shard thread reaches subscribers on
//! every shard thread: it pushes into each subscriber's bounded [`Outbox`], and the
//! subscriber's own connection task writes it out ([`read_or_deliver`]).
//!
//! Hooks in src/server/conn.rs: [`handle`] runs before the other commands (refusals in
//! subscribed mode, then the pub/sub commands); [`read_or_deliver`] replaces the idle
//! socket read; the `Client::pubsub` field's drop removes the client's subscriptions.
//!
//! What can fail: bad arguments (Redis error replies); a subscriber over its
//! `client-output-buffer-limit pubsub` is disconnected (its read reports an error).

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use crate::cmd::CommandSpec;
use crate::io::{BufResult, Clock, Stream};
use crate::resp::encode::encode;
use crate::resp::Frame;
use crate::server::conn::READ_CHUNK_BYTES;
use crate::server::pubsub_registry::{Kind, Message, Outbox, Registry};
use crate::server::Node;

/// Most message bytes written to a subscriber's socket in one write; what is in flight is
/// not counted against the output limit, so this bounds the unaccounted memory.
pub const DELIVERY_BATCH_BYTES: u64 = 64 * 1024;

/// Commands a RESP2 client may send while subscribed (Redis 7 `processCommand`).
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];

/// Container commands whose name in errors is `name|subcommand` (Redis 7 `fullname`).
const CONTAINER_COMMANDS: &[&str] = &[
    "client", "config", "command", "slowlog", "function", "script", "object", "pubsub", "memory",
    "acl", "cluster", "latency", "module", "xinfo", "xgroup",
];

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// THE one place where the shape of a pub/sub push is decided: subscribe/unsubscribe
/// confirmations, `message`, `pmessage` and subscribed-mode `pong` all go through here.
/// A Push frame: RESP3 clients get `>`, RESP2 clients an array (the encoder decides).
/// PING under RESP3 is a normal reply and never comes here.
pub fn pubsub_frame(items: Vec<Frame>) -> Frame {
    Frame::Push(items)
}

/// `["message", channel, payload]` or `["pmessage", pattern, channel, payload]`.
pub fn message_frame(message: &Message) -> Frame {
    let mut items = Vec::with_capacity(4);
    match &message.pattern {
        None => items.push(Frame::bulk("message")),
        Some(pattern) => {
            items.push(Frame::bulk("pmessage"));
            items.push(Frame::Bulk(pattern.clone()));
        }
    }
    items.push(Frame::Bulk(message.channel.clone()));
    items.push(Frame::Bulk(message.payload.clone()));
    pubsub_frame(items)
}

/// `[kind, name or nil, subscription count]`, e.g. `["subscribe", "news", 1]`.
fn confirmation(kind: &'static str, name: Option<&Bytes>, count: usize) -> Frame {
    pubsub_frame(vec![
        Frame::bulk(kind),
        name.map_or(Frame::Null, |n| Frame::Bulk(n.clone())),
        Frame::Integer(count as i64),
    ])
}

/// One connection's subscriptions and outbox. Dropping it removes every subscription of
/// the client from the registry (the connection ended).
pub struct ClientPubSub {
    registry: Arc<Registry>,
    client_id: u64,
    outbox: Option<Arc<Outbox>>,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    /// The connection speaks RESP3 (HELLO 3): subscribed mode then allows every command
    /// and PING replies normally, as in Redis 7. Set by the connection before each command.
    pub resp3: bool,
}

impl ClientPubSub {
    /// No subscriptions yet; `registry` is `Node::pubsub`.
    pub fn new(registry: Arc<Registry>, client_id: u64) -> ClientPubSub {
        ClientPubSub {
            registry,
            client_id,
            outbox: None,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            resp3: false,
        }
    }

    /// Channels plus patterns subscribed (Redis `clientSubscriptionsCount`).
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// True in subscribed mode (at least one subscription).
    pub fn is_subscribed(&self) -> bool {
        self.subscriptions() > 0
    }

    /// Channel and pattern counts (CLIENT LIST `sub=`, `psub=`).
    pub fn counts(&self) -> (usize, usize) {
        (self.channels.len(), self.patterns.len())
    }

    fn set(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    /// Messages already queued, as frames: sent before a (un)subscribe confirmation so
    /// that nothing published before an UNSUBSCRIBE arrives after its confirmation.
    fn drain_frames(&self) -> Vec<Frame> {
        let Some(outbox) = &self.outbox else {
            return Vec::new();
        };
        outbox.take(u64::MAX).iter().map(message_frame).collect()
    }

    fn subscribe(&mut self, kind: Kind, names: &[Bytes]) -> Vec<Frame> {
        let mut frames = self.drain_frames();
        let outbox = self.outbox.get_or_insert_with(Outbox::new).clone();
        let reply = match kind {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
        };
        for name in names {
            if self.set(kind).insert(name.clone()) {
                self.registry.subscribe(kind, name, self.client_id, &outbox);
            }
            frames.push(confirmation(reply, Some(name), self.subscriptions()));
        }
        frames
    }

    /// Unsubscribes first, then drains the outbox, then confirms: whatever was published
    /// before the unsubscription took effect is sent before its confirmation.
    fn unsubscribe(&mut self, kind: Kind, names: &[Bytes]) -> Vec<Frame> {
        let reply = match kind {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
        };
        let names: Vec<Bytes> = if names.is_empty() {
            self.set(kind).iter().cloned().collect()
        } else {
            names.to_vec()
        };
        let mut removed = Vec::with_capacity(names.len());
        for name in &names {
            let was_there = self.set(kind).remove(name);
            if was_there {
                self.registry.unsubscribe(kind, name, self.client_id);
            }
            removed.push(was_there);
        }
        let mut frames = self.drain_frames();
        // Each confirmation carries the count right after its own name was dropped.
        let mut count = self.subscriptions() + removed.iter().filter(|r| **r).count();
        for (name, was_there) in names.iter().zip(removed) {
            count -= usize::from(was_there);
            frames.push(confirmation(reply, Some(name), count));
        }
        if names.is_empty() {
            frames.push(confirmation(reply, None, count));
        }
        frames
    }
}

impl Drop for ClientPubSub {
    fn drop(&mut self) {
        for channel in &self.channels {
            self.registry
                .unsubscribe(Kind::Channel, channel, self.client_id);
        }
        for pattern in &self.patterns {
            self.registry
                .unsubscribe(Kind::Pattern, pattern, self.client_id);
        }
    }
}

/// The conn.rs hook, run after the arity and AUTH checks: `None` lets the command run as
/// usual; `Some(replies)` are its replies, in order (several for (P)(UN)SUBSCRIBE). In
/// subscribed mode (RESP2) only (P|S)(UN)SUBSCRIBE, PING, QUIT and RESET are allowed;
/// PING then replies `["pong", message or ""]`. `clock` is the seam's (soft-limit timing).
pub fn handle<C: Clock>(
    clock: &C,
    node: &Node,
    pubsub: &mut ClientPubSub,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Option<Vec<Frame>> {
    if !pubsub.is_subscribed() && spec.group != "pubsub" {
        return None; // the common case, kept cheap: not subscribed, not a pub/sub command
    }
    if pubsub.is_subscribed() && !pubsub.resp3 {
        if !ALLOWED_WHILE_SUBSCRIBED.contains(&spec.name) {
            return Some(vec![Frame::error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                full_name(spec, args)
            ))]);
        }
        if spec.name == "ping" && args.len() <= 2 {
            let message = args.get(1).cloned().unwrap_or_default();
            return Some(vec![pubsub_frame(vec![
                Frame::bulk("pong"),
                Frame::Bulk(message),
            ])]);
        }
    }
    let frames = match spec.name {
        "subscribe" => pubsub.subscribe(Kind::Channel, &args[1..]),
        "psubscribe" => pubsub.subscribe(Kind::Pattern, &args[1..]),
        "unsubscribe" => pubsub.unsubscribe(Kind::Channel, &args[1..]),
        "punsubscribe" => pubsub.unsubscribe(Kind::Pattern, &args[1..]),
        "publish" => vec![publish(clock, node, &args[1], &args[2])],
        "pubsub" => vec![pubsub_command(&node.pubsub, args)],
        _ => return None,
    };
    Some(frames)
}

/// `get`, or `config|get` for a container command (as Redis 7 names it in errors).
fn full_name(spec: &CommandSpec, args: &[Bytes]) -> String {
    match args.get(1) {
        Some(sub) if CONTAINER_COMMANDS.contains(&spec.name) => format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(&sub.to_ascii_lowercase())
        ),
        _ => spec.name.to_string(),
    }
}

/// PUBLISH channel message: the number of deliveries (channel plus pattern matches).
fn publish<C: Clock>(clock: &C, node: &Node, channel: &Bytes, payload: &Bytes) -> Frame {
    let limit = match node.config.read() {
        Ok(config) => config.client_output_buffer_limit.pubsub,
        Err(poisoned) => poisoned.into_inner().client_output_buffer_limit.pubsub,
    };
    let receivers = node
        .pubsub
        .publish(channel, payload, &limit, clock.monotonic());
    Frame::Integer(receivers as i64)
}

/// PUBSUB <subcommand> (Redis 7 arities: CHANNELS/SHARDCHANNELS -2 with at most one
/// pattern, NUMSUB/SHARDNUMSUB -2, NUMPAT 2, HELP 2). Shard channels (SSUBSCRIBE) do not
/// exist in tidemark, so SHARDCHANNELS is empty and SHARDNUMSUB counts 0.
fn pubsub_command(registry: &Registry, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    let typed = String::from_utf8_lossy(&args[1]);
    let exact = |n: usize, name: &str| -> Result<(), Frame> {
        if args.len() == n {
            Ok(())
        } else {
            Err(Frame::error(format!(
                "ERR wrong number of arguments for 'pubsub|{name}' command"
            )))
        }
    };
    let syntax = || {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{typed}'. Try PUBSUB HELP."
        ))
    };
    let result = match sub.as_slice() {
        b"channels" | b"shardchannels" if args.len() > 3 => Err(syntax()),
        b"channels" => {
            let pattern = args.get(2).map(|p| p.as_ref());
            let names = registry.channels(pattern);
            Ok(Frame::Array(names.into_iter().map(Frame::Bulk).collect()))
        }
        b"shardchannels" => Ok(Frame::Array(Vec::new())),
        b"numsub" | b"shardnumsub" => {
            let shard = sub.as_slice() == b"shardnumsub";
            let mut out = Vec::with_capacity((args.len() - 2) * 2);
            for channel in &args[2..] {
                let count = if shard { 0 } else { registry.numsub(channel) };
                out.push(Frame::Bulk(channel.clone()));
                out.push(Frame::Integer(count as i64));
            }
            Ok(Frame::Array(out))
        }
        b"numpat" => exact(2, "numpat").map(|()| Frame::Integer(registry.numpat() as i64)),
        b"help" => exact(2, "help").map(|()| {
            Frame::Array(
                PUBSUB_HELP
                    .iter()
                    .map(|line| Frame::Simple((*line).to_string()))
                    .collect(),
            )
        }),
        _ => Err(Frame::error(format!(
            "ERR unknown subcommand '{typed}'. Try PUBSUB HELP."
        ))),
    };
    result.unwrap_or_else(|error| error)
}

/// The conn.rs idle-read hook: reads the socket into `input` like `Stream::read`, and
/// meanwhile, for a client with an outbox, writes published messages as they arrive.
/// Returns the read's result; an `Err` when the outbox was closed by the output limit
/// (the caller drops the connection) or a write failed.
///
/// A read raced by a delivery is dropped and re-issued; no byte is lost (the `Stream::read`
/// cancel-safety contract; the unparsed input is never lent to the racing read).
pub async fn read_or_deliver<S: Stream>(
    pubsub: &ClientPubSub,
    stream: &mut S,
    input: Vec<u8>,
) -> BufResult<usize> {
    let Some(outbox) = pubsub.outbox.clone() else {
        return stream.read(input).await;
    };
    let mut input = Some(input);
    loop {
        if outbox.is_closed() {
            return (Err(output_limit_error()), input.unwrap_or_default());
        }
        let messages = outbox.take(DELIVERY_BATCH_BYTES);
        if !messages.is_empty() {
            let mut out = Vec::new();
            for message in &messages {
                encode(&message_frame(message), &mut out);
            }
            drop(messages);
            let written =
                futures_lite::future::or(async { Some(stream.write_all(out).await) }, async {
                    outbox.wait_closed().await;
                    None
                })
                .await;
            match written {
                Some((Ok(()), _)) => continue,
                Some((Err(error), _)) => return (Err(error), input.unwrap_or_default()),
                None => continue,
            }
        }
        if !pubsub.is_subscribed() {
            // Nothing more can arrive: a plain read, never cancelled.
            let buf = input
                .take()
                .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK_BYTES));
            return stream.read(buf).await;
        }
        // The read races deliveries: it gets a fresh buffer (a dropped read loses its
        // buffer, not its bytes: the `Stream::read` contract) and the unparsed `input` is
        // kept here until the read wins.
        let fresh = Vec::with_capacity(READ_CHUNK_BYTES);
        let read = futures_lite::future::or(async { Some(stream.read(fresh).await) }, async {
            outbox.wait_ready().await;
            None
        })
        .await;
        if let Some((result, fresh)) = read {
            let mut buf = input.take().unwrap_or_default();
            buf.extend_from_slice(&fresh);
            return (result, buf);
        }
    }
}

fn output_limit_error() -> io::Error {
    io::Error::other("client-output-buffer-limit pubsub exceeded")
}

#[cfg(test)]
#[path = "pubsub_tests.rs"]
mod tests;
