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
use crate::resp::encode::encode;
use crate::resp::parse::{ParseLimits, RequestParser};
use crate::resp::Frame;
use crate::server::admin::{self, AdminOutcome};
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
    /// CLIENT SETNAME.
    pub name: Option<String>,
    /// Whether AUTH succeeded (or no password is set).
    pub authenticated: bool,
    /// Peer address, `ip:port`.
    pub peer: String,
    /// SELECTed database (the router's `db` follows it; `cmd::databases`).
    pub db_index: u32,
}

/// Accepts connections forever, one task per connection.
pub async fn accept_loop<I: Io>(shard: Rc<Shard<I>>, node: Arc<Node>, listener: I::Listener) {
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
                shard.io.spawn_local(async move {
                    serve(task_shard, task_node.clone(), stream, peer).await;
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
}

async fn serve<I: Io>(shard: Rc<Shard<I>>, node: Arc<Node>, mut stream: I::Stream, peer: String) {
    let config = node.config();
    let limits = ParseLimits {
        bulk_len_max_bytes: config.proto_max_bulk_len,
        array_len_max: config.proto_max_multibulk_len,
        ..ParseLimits::default()
    };
    let mut client = Client {
        id: node.next_client_id.fetch_add(1, Ordering::SeqCst),
        name: None,
        authenticated: config.requirepass.is_none(),
        peer,
        db_index: 0,
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
                let run = run_command(&router, &node, &mut client, args);
                match watch_disconnect(run, &mut stream, &mut parser).await {
                    Some(outcome) => outcome,
                    None => return,
                }
            } else {
                run_command(&router, &node, &mut client, args).await
            };
            match outcome {
                Outcome::Reply(frame) => batch.push(Pending {
                    frame,
                    needs_ack: false,
                }),
                Outcome::Local(frame, lsn) => {
                    ack_lsn = ack_lsn.max(lsn);
                    batch.push(Pending {
                        frame,
                        needs_ack: lsn.is_some(),
                    });
                }
                Outcome::Close(frame) => {
                    batch.push(Pending {
                        frame,
                        needs_ack: false,
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
                encode(&pending.frame, &mut output);
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
        let (result, buf) = stream.read(std::mem::take(&mut input)).await;
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
}

async fn run_command<I: Io>(
    router: &Router<'_, I>,
    node: &Arc<Node>,
    client: &mut Client,
    args: Vec<Bytes>,
) -> Outcome {
    let Some(spec) = cmd::lookup(&args[0]) else {
        return Outcome::Reply(cmd::unknown_command(&args));
    };
    if let Err(error) = cmd::check_arity(spec, args.len()) {
        return Outcome::Reply(error);
    }
    if !client.authenticated && !matches!(spec.name, "auth" | "hello" | "quit") {
        return Outcome::Reply(Frame::error("NOAUTH Authentication required."));
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
/// The read in flight when `run` finishes is dropped (cancelled) with its own buffer, so
/// `input` is never lent to it. Caveat: on io_uring, bytes that a cancelled read had
/// already received are lost; clients do not normally send while blocked.
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
