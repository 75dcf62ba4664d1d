//! The connection state machine: accept, read, parse a pipeline, run each command
//! (locally, or hopping to the owning shard), acknowledge the whole batch with one AOF wait
//! (group commit), write the replies, repeat.
//!
//! Steps of one batch:
//! 1. parse up to `PIPELINE_BATCH_COMMANDS_MAX` complete commands from the input buffer;
//! 2. run each in order; local ones return the LSN their reply depends on;
//! 3. wait once for the highest such LSN (`Aof::wait_ack`); if that wait fails, every reply
//!    that depended on it becomes the error (the write's outcome is uncertain);
//! 4. encode and write all replies.
//!
//! What can fail here: protocol errors (the error is sent, then the connection is closed),
//! socket errors (the connection is dropped), AOF errors (error replies).

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cmd::{self, Route};
use crate::io::{Io, Listener, Stream};
use crate::resp::encode::encode_as;
use crate::resp::parse::{ParseLimits, RequestParser};
use crate::resp::{Frame, Protocol};
use crate::server::admin::{self, AdminOutcome};
use crate::server::clients::ClientShared;
use crate::server::Node;
use crate::shard::route::Router;
use crate::shard::state::Shard;

/// Commands run between two socket writes, at most.
pub const PIPELINE_BATCH_COMMANDS_MAX: usize = 1024;
/// Bytes asked of one socket read.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Most bytes one client may have buffered unparsed (Redis `client-query-buffer-limit`,
/// 1 GiB by default); past it the client gets an error and is closed.
pub const QUERY_BUFFER_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
pub const ACCEPT_RETRY_DELAY_MS: u64 = 10;

/// Per-connection state visible to server-level commands.
pub struct Client {
    /// CLIENT ID.
    pub id: u64,
    /// RESP2 until `HELLO 3` (src/resp/resp3.rs reshapes replies for RESP3).
    pub protocol: Protocol,
    /// This client's entry in the node's registry: name, CLIENT LIST fields, kill flag
    /// (src/server/clients.rs).
    pub shared: Arc<ClientShared>,
    /// Whether AUTH succeeded (or no password is set).
    pub authenticated: bool,
    /// Peer address, `ip:port`.
    pub peer: String,
    /// SELECTed database (the router's `db` follows it; `cmd::databases`).
    pub db_index: u32,
    /// Pub/Sub subscriptions and outbox (src/server/pubsub.rs); dropping unsubscribes.
    pub pubsub: crate::server::pubsub::ClientPubSub,
    /// MULTI/EXEC/WATCH state (src/server/multi.rs).
    pub tx: crate::server::multi::TxState,
}

/// Accepts connections forever, one task per connection.
pub async fn accept_loop<I: Io>(shard: Rc<Shard<I>>, node: Arc<Node>, listener: I::Listener) {
    let laddr = listener.local_addr();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let maxclients =
                    node.config.read().map(|c| c.maxclients).unwrap_or(10_000) as usize;
                if node.connected_clients.load(Ordering::SeqCst) >= maxclients {
                    node.rejected_connections.fetch_add(1, Ordering::SeqCst);
                    shard.io.spawn_local(reject(stream));
                    continue;
                }
                node.connected_clients.fetch_add(1, Ordering::SeqCst);
                node.total_connections.fetch_add(1, Ordering::SeqCst);
                let task_shard = shard.clone();
                let task_node = node.clone();
                let laddr = laddr.clone();
                shard.io.spawn_local(async move {
                    serve(task_shard, task_node.clone(), stream, peer, laddr).await;
                    task_node.connected_clients.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                shard
                    .io
                    .sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MS))
                    .await;
            }
        }
    }
}

async fn reject<S: Stream>(mut stream: S) {
    let _ = stream
        .write_all(b"-ERR max number of clients reached\r\n".to_vec())
        .await;
}

/// One reply of a batch, and whether it waits for the batch's AOF acknowledgement.
struct Pending {
    frame: Frame,
    needs_ack: bool,
    /// The client's protocol when the command finished (HELLO switches it mid-batch).
    protocol: Protocol,
}

async fn serve<I: Io>(
    shard: Rc<Shard<I>>,
    node: Arc<Node>,
    mut stream: I::Stream,
    peer: String,
    laddr: String,
) {
    let config = node.config();
    let limits = ParseLimits {
        bulk_len_max_bytes: config.proto_max_bulk_len,
        array_len_max: config.proto_max_multibulk_len,
        ..ParseLimits::default()
    };
    let client_id = node.next_client_id.fetch_add(1, Ordering::SeqCst);
    let now_ms = shard.io.wall_clock_ms();
    let shared = Arc::new(ClientShared::new(client_id, peer.clone(), laddr, now_ms));
    let _registration = node.clients.register(shared.clone());
    let mut client = Client {
        id: client_id,
        protocol: Protocol::Resp2,
        shared,
        authenticated: config.requirepass.is_none(),
        peer,
        db_index: 0,
        pubsub: crate::server::pubsub::ClientPubSub::new(node.pubsub.clone(), client_id),
        tx: crate::server::multi::TxState::default(),
    };
    let router = Router {
        shard: &shard,
        senders: &node.senders,
        shards: node.shards(),
        timeout: config.cross_shard_timeout(),
        db: std::cell::Cell::new(0), // SELECT (databases)
    };
    let mut parser = RequestParser::new(limits);
    let mut input = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut output = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut batch: Vec<Pending> = Vec::new();
    // A blocking command held back until the replies before it are written (lists family).
    let mut deferred: Option<Vec<Bytes>> = None;
    loop {
        // Step 1 and 2: run what is already parsed.
        let mut close = false;
        let mut ack_lsn: Option<u64> = None;
        while batch.len() < PIPELINE_BATCH_COMMANDS_MAX {
            // CLIENT KILL (src/server/clients.rs): write what is done, then close.
            if client.shared.is_killed() {
                close = true;
                break;
            }
            let next = match deferred.take() {
                Some(args) => Ok(Some(args)),
                None => parser.next_command(),
            };
            let args = match next {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(error) => {
                    batch.push(Pending {
                        frame: error.to_frame(),
                        needs_ack: false,
                        protocol: client.protocol,
                    });
                    close = true;
                    break;
                }
            };
            // Lists family: a blocking command (BLPOP & co.) first flushes the replies before
            // it, then waits while watching the socket, so a disconnect unblocks the client
            // (dropping the wait deregisters it, see shard::blocking).
            let blocking = cmd::lookup(&args[0]).is_some_and(crate::shard::blocking::is_blocking);
            if blocking && !batch.is_empty() {
                deferred = Some(args);
                break;
            }
            let outcome = if blocking {
                // CLIENT KILL also ends the wait (src/server/clients.rs).
                let shared = client.shared.clone();
                let run = run_command(&router, &node, &mut client, args);
                let watched = watch_disconnect(run, &mut stream, &mut parser);
                match shared.until_killed(watched).await {
                    Some(Some(outcome)) => outcome,
                    Some(None) | None => return,
                }
            } else {
                run_command(&router, &node, &mut client, args).await
            };
            match outcome {
                Outcome::Reply(frame) => batch.push(Pending {
                    frame,
                    needs_ack: false,
                    protocol: client.protocol,
                }),
                Outcome::Local(frame, lsn) => {
                    ack_lsn = ack_lsn.max(lsn);
                    batch.push(Pending {
                        frame,
                        needs_ack: lsn.is_some(),
                        protocol: client.protocol,
                    });
                }
                // Pub/Sub: several replies ((P)(UN)SUBSCRIBE).
                Outcome::Many(frames) => {
                    batch.extend(frames.into_iter().map(|frame| Pending {
                        frame,
                        needs_ack: false,
                        protocol: client.protocol,
                    }));
                }
                Outcome::Close(frame) => {
                    batch.push(Pending {
                        frame,
                        needs_ack: false,
                        protocol: client.protocol,
                    });
                    close = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            // Step 3: one acknowledgement for the batch.
            if let Err(error) = shard.wait_ack(ack_lsn).await {
                for pending in batch.iter_mut().filter(|p| p.needs_ack) {
                    pending.frame = error.clone();
                }
            }
            // Step 4: write.
            output.clear();
            for pending in batch.drain(..) {
                encode_as(&pending.frame, pending.protocol, &mut output);
            }
            let (result, buf) = stream.write_all(std::mem::take(&mut output)).await;
            output = buf;
            if result.is_err() {
                return;
            }
            if close {
                let _ = stream.shutdown().await;
                return;
            }
            continue;
        }
        if close {
            return;
        }
        // Pub/Sub: a subscriber also receives published messages while idle; CLIENT KILL
        // from any shard wakes the read (src/server/clients.rs).
        let read = crate::server::pubsub::read_or_deliver(
            &client.pubsub,
            &mut stream,
            std::mem::take(&mut input),
        );
        let Some((result, buf)) = client.shared.until_killed(read).await else {
            return;
        };
        input = buf;
        match result {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                parser.feed(&input);
                input.clear();
                if parser.buffered_len() > QUERY_BUFFER_BYTES_MAX {
                    tracing::warn!(client = client.id, peer = %client.peer, "closing client that reached max query buffer length");
                    let error =
                        b"-ERR Protocol error: client query buffer limit exceeded\r\n".to_vec();
                    let _ = stream.write_all(error).await;
                    return;
                }
            }
        }
    }
}

/// What running one command produced.
enum Outcome {
    /// A reply ready to send.
    Reply(Frame),
    /// A reply from the local shard that waits for this LSN (if any).
    Local(Frame, Option<u64>),
    /// A reply after which the connection closes (QUIT).
    Close(Frame),
    /// Several replies, in order (Pub/Sub (P)(UN)SUBSCRIBE).
    Many(Vec<Frame>),
}

/// Runs one command with the CLIENT-registry bookkeeping (src/server/clients.rs) and the
/// RESP3 reply shape (src/resp/resp3.rs) around it.
async fn run_command<I: Io>(
    router: &Router<'_, I>,
    node: &Arc<Node>,
    client: &mut Client,
    args: Vec<Bytes>,
) -> Outcome {
    let shape = crate::resp::resp3::reply_shape(&args);
    client
        .shared
        .begin_command(router.shard.io.wall_clock_ms(), &args);
    let outcome = run_command_unshaped(router, node, client, args).await;
    client.shared.end_command(client);
    if client.protocol != Protocol::Resp3 {
        return outcome;
    }
    match outcome {
        Outcome::Reply(frame) => Outcome::Reply(shape.apply(frame)),
        Outcome::Local(frame, lsn) => Outcome::Local(shape.apply(frame), lsn),
        Outcome::Close(frame) => Outcome::Close(frame),
        // Pub/Sub confirmations and PUBLISH/PUBSUB replies are shaped by src/server/pubsub.rs.
        Outcome::Many(frames) => Outcome::Many(frames),
    }
}

/// Pub/Sub (src/server/pubsub.rs): `Some` when the command was a pub/sub command or was
/// refused in subscribed mode; keeps CLIENT LIST's `sub=`/`psub=` current.
fn pubsub_hook<I: Io>(
    router: &Router<'_, I>,
    node: &Arc<Node>,
    client: &mut Client,
    args: &[Bytes],
) -> Option<Outcome> {
    let spec = cmd::lookup(&args[0])?;
    cmd::check_arity(spec, args.len()).ok()?;
    client.pubsub.resp3 = client.protocol == Protocol::Resp3;
    let io = &router.shard.io;
    let frames = crate::server::pubsub::handle(io, node, &mut client.pubsub, spec, args)?;
    let (sub, psub) = client.pubsub.counts();
    let mut state = client.shared.state();
    (state.sub, state.psub) = (sub, psub);
    Some(Outcome::Many(frames))
}

async fn run_command_unshaped<I: Io>(
    router: &Router<'_, I>,
    node: &Arc<Node>,
    client: &mut Client,
    args: Vec<Bytes>,
) -> Outcome {
    // Redis order: unknown command / arity errors (which also flag a MULTI), NOAUTH,
    // subscribed-mode refusals, then MULTI queuing, then the command itself.
    if !client.authenticated {
        if let Some(spec) = cmd::lookup(&args[0]) {
            let allowed = matches!(spec.name, "auth" | "hello" | "quit" | "reset");
            if cmd::check_arity(spec, args.len()).is_ok() && !allowed {
                return Outcome::Reply(Frame::error("NOAUTH Authentication required."));
            }
        }
    }
    if client.pubsub.is_subscribed() && client.protocol != Protocol::Resp3 {
        if let Some(outcome) = pubsub_hook(router, node, client, &args) {
            return outcome;
        }
    }
    // MULTI/EXEC/WATCH (src/server/multi.rs): transaction commands, and queuing in MULTI.
    let args = match crate::server::multi::divert(router, node, client, args).await {
        Ok(crate::server::multi::Diverted::Reply(frame)) => return Outcome::Reply(frame),
        Ok(crate::server::multi::Diverted::Local(frame, lsn)) => return Outcome::Local(frame, lsn),
        Err(args) => args,
    };
    let Some(spec) = cmd::lookup(&args[0]) else {
        return Outcome::Reply(cmd::unknown_command(&args));
    };
    if let Err(error) = cmd::check_arity(spec, args.len()) {
        return Outcome::Reply(error);
    }
    // Pub/Sub (src/server/pubsub.rs): subscribed-mode refusals, then the pub/sub commands.
    if let Some(outcome) = pubsub_hook(router, node, client, &args) {
        return outcome;
    }
    if spec.route == Route::Connection {
        return match admin::handle(router, node, client, spec, &args).await {
            AdminOutcome::Reply(frame) => Outcome::Reply(frame),
            AdminOutcome::Close(frame) => Outcome::Close(frame),
        };
    }
    if crate::shard::blocking::is_blocking(spec) {
        // Lists family: BLPOP & co. wait on the owning shard; the reply is acknowledged.
        return Outcome::Reply(router.run_blocking(spec, args).await);
    }
    if router.is_local(spec, &args) {
        let (frame, lsn) = router.run_local(spec, &args);
        return Outcome::Local(frame, lsn);
    }
    Outcome::Reply(router.run(spec, args).await)
}

/// Runs `run` (a blocking command) while reading the socket: bytes that arrive are fed to
/// the parser for later; `None` when the peer closed or the read failed (then `run` is
/// dropped, which unblocks and deregisters the client). Added by the lists family.
///
/// The read in flight when `run` finishes is dropped with its own buffer, so `input` is
/// never lent to it; bytes it had already taken come back from the next read (the
/// `Stream::read` cancel-safety contract).
async fn watch_disconnect<S: Stream, T>(
    run: impl std::future::Future<Output = T>,
    stream: &mut S,
    parser: &mut RequestParser,
) -> Option<T> {
    futures_lite::future::or(async { Some(run.await) }, async {
        loop {
            let (result, buf) = stream.read(Vec::with_capacity(READ_CHUNK_BYTES)).await;
            match result {
                Ok(0) | Err(_) => return None,
                Ok(_) => parser.feed(&buf),
            }
        }
    })
    .await
}
