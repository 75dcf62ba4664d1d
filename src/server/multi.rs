//! The connection side of MULTI/EXEC/DISCARD/WATCH/UNWATCH (Redis 7.0 semantics,
//! redis.io/docs/interact/transactions, checked against redis-server 7.0.15).
//!
//! `conn::run_command` first offers every command to [`divert`]:
//! - outside MULTI it takes MULTI, EXEC, DISCARD, WATCH and UNWATCH (when known, with a good
//!   arity and an authenticated client; otherwise the normal path replies the error);
//! - inside MULTI it takes everything except QUIT: EXEC, DISCARD, MULTI and WATCH act at
//!   once; an unknown command, an arity error or a `no_multi` command (SAVE …) replies its
//!   error and flags the transaction (EXEC then replies `EXECABORT`); anything else is
//!   queued (`+QUEUED`).
//!
//! EXEC: the queued data commands must all live on one shard, together with every WATCHed
//! key (else `CROSSSLOT …`, nothing runs). They run on that shard in one synchronous step
//! (`Shard::execute_transaction`, or a `Job::Multi` to another shard), after the watch
//! check, and their AOF records are one record. Connection-level commands queued in the
//! transaction (PING, ECHO, TIME, INFO, CONFIG, CLIENT …) run afterwards on the connection,
//! in queue order; each reply sits at its queued position. The EXEC reply waits for the AOF
//! acknowledgement of the transaction's record (group commit in `conn`).
//!
//! What can fail here: cross-shard calls (error replies), everything else is a Redis error
//! reply. Nothing panics on client input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::cmd::{self, CommandSpec, Route};
use crate::io::Io;
use crate::resp::Frame;
use crate::server::admin::{self, AdminOutcome};
use crate::server::conn::Client;
use crate::server::Node;
use crate::shard::route::{shard_of, Router};
use crate::shard::state::DbIndex;
use crate::shard::watch::{self, ShardTx, TxOutcome, TxWatch, WatchAnswer, WatchJob};

/// Most bytes of arguments one transaction may queue (as `client-query-buffer-limit`);
/// past it the command is refused and the transaction flagged.
pub const MULTI_QUEUE_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Most keys one client may WATCH at once; past it WATCH replies an error.
pub const WATCHED_KEYS_MAX: usize = 1024 * 1024;

/// `+QUEUED`.
pub const QUEUED: &str = "QUEUED";
/// EXEC after a queuing error.
pub const ERR_EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
/// EXEC outside MULTI.
pub const ERR_EXEC_WITHOUT_MULTI: &str = "ERR EXEC without MULTI";
/// DISCARD outside MULTI.
pub const ERR_DISCARD_WITHOUT_MULTI: &str = "ERR DISCARD without MULTI";
/// MULTI inside MULTI.
pub const ERR_NESTED: &str = "ERR MULTI calls can not be nested";
/// WATCH inside MULTI.
pub const ERR_WATCH_IN_MULTI: &str = "ERR WATCH inside MULTI is not allowed";
/// A `no_multi` command (SAVE, SHUTDOWN …) inside MULTI.
pub const ERR_NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";

/// One connection's transaction state (the `Client::tx` field).
#[derive(Default)]
pub struct TxState {
    /// `Some` between MULTI and EXEC/DISCARD: the queued commands.
    queued: Option<Vec<Vec<Bytes>>>,
    queued_bytes: usize,
    /// A command was refused while queuing (EXEC replies EXECABORT).
    flagged: bool,
    /// Set while the client WATCHes keys; shards hold `Weak` references to it.
    watch: Option<Arc<TxWatch>>,
    /// The watched keys with their owning shard and database.
    watched: BTreeSet<(u16, DbIndex, Bytes)>,
}

impl TxState {
    /// True between MULTI and EXEC/DISCARD.
    pub fn in_multi(&self) -> bool {
        self.queued.is_some()
    }

    /// Commands queued so far.
    pub fn queued_len(&self) -> usize {
        self.queued.as_ref().map_or(0, Vec::len)
    }

    /// Keys currently WATCHed.
    pub fn watched_len(&self) -> usize {
        self.watched.len()
    }

    /// Leaves MULTI (if in it) and forgets every watched key.
    pub fn reset(&mut self) {
        self.queued = None;
        self.queued_bytes = 0;
        self.flagged = false;
        self.unwatch();
    }

    /// UNWATCH: dropping the flag is enough, the shards' weak references die with it.
    pub fn unwatch(&mut self) {
        self.watch = None;
        self.watched.clear();
    }
}

/// What [`divert`] did with a command.
pub enum Diverted {
    /// Send this reply.
    Reply(Frame),
    /// Send this reply after the AOF acknowledges this LSN (a local EXEC).
    Local(Frame, Option<u64>),
}

fn is_transaction_command(name: &str) -> bool {
    matches!(name, "multi" | "exec" | "discard" | "watch" | "unwatch")
}

/// Offers a command to the transaction layer. `Ok` when it handled it (the reply is in
/// [`Diverted`]); `Err(args)` hands the command back to the normal path.
pub async fn divert<I: Io>(
    router: &Router<'_, I>,
    node: &Arc<Node>,
    client: &mut Client,
    args: Vec<Bytes>,
) -> Result<Diverted, Vec<Bytes>> {
    let Some(name) = args.first() else {
        return Err(args);
    };
    let spec = cmd::lookup(name);
    if !client.tx.in_multi() {
        let Some(spec) = spec.filter(|s| is_transaction_command(s.name)) else {
            return Err(args);
        };
        if cmd::check_arity(spec, args.len()).is_err() || !client.authenticated {
            return Err(args);
        }
        let reply = match spec.name {
            "multi" => {
                client.tx.queued = Some(Vec::new());
                Frame::ok()
            }
            "exec" => Frame::error(ERR_EXEC_WITHOUT_MULTI),
            "discard" => Frame::error(ERR_DISCARD_WITHOUT_MULTI),
            "watch" => watch_keys(router, client, &args[1..]).await,
            _ => {
                client.tx.unwatch();
                Frame::ok()
            }
        };
        return Ok(Diverted::Reply(reply));
    }
    // Inside MULTI.
    let Some(spec) = spec else {
        client.tx.flagged = true;
        return Ok(Diverted::Reply(cmd::unknown_command(&args)));
    };
    if let Err(error) = cmd::check_arity(spec, args.len()) {
        if spec.name == "exec" {
            client.tx.reset();
            return Ok(Diverted::Reply(watch::exec_abort_because(&error)));
        }
        client.tx.flagged = true;
        return Ok(Diverted::Reply(error));
    }
    let reply = match spec.name {
        "exec" => return Ok(exec(router, node, client).await),
        "discard" => {
            client.tx.reset();
            Frame::ok()
        }
        "multi" => Frame::error(ERR_NESTED),
        "watch" => Frame::error(ERR_WATCH_IN_MULTI),
        "quit" => return Err(args),
        _ if spec.flags.contains(&"no_multi") => {
            client.tx.flagged = true;
            Frame::error(ERR_NOT_ALLOWED)
        }
        _ => queue(&mut client.tx, args),
    };
    Ok(Diverted::Reply(reply))
}

fn queue(tx: &mut TxState, args: Vec<Bytes>) -> Frame {
    let bytes: usize = args.iter().map(Bytes::len).sum();
    if tx.queued_bytes.saturating_add(bytes) > MULTI_QUEUE_BYTES_MAX {
        tx.flagged = true;
        return Frame::error(format!(
            "ERR transaction too large: the queued commands exceed {MULTI_QUEUE_BYTES_MAX} bytes"
        ));
    }
    tx.queued_bytes += bytes;
    if let Some(queued) = tx.queued.as_mut() {
        queued.push(args);
    }
    Frame::Simple(QUEUED.to_string())
}

/// WATCH outside MULTI: registers every key on its owning shard before replying `+OK`.
async fn watch_keys<I: Io>(router: &Router<'_, I>, client: &mut Client, keys: &[Bytes]) -> Frame {
    if client.tx.watched.len().saturating_add(keys.len()) > WATCHED_KEYS_MAX {
        return Frame::error(format!(
            "ERR too many watched keys (at most {WATCHED_KEYS_MAX})"
        ));
    }
    let flag = client.tx.watch.get_or_insert_with(TxWatch::new).clone();
    let mut by_shard: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
    for key in keys {
        by_shard
            .entry(shard_of(key, router.shards))
            .or_default()
            .push(key.clone());
    }
    for (target, keys) in by_shard {
        let db = router.db.get();
        if target == router.shard.id {
            let now_ms = router.shard.io.wall_clock_ms();
            let dbs = router.shard.dbs.borrow();
            for key in &keys {
                router.shard.watch[db].watch(key.clone(), &flag, &dbs[db], now_ms);
            }
        } else {
            let job = WatchJob::Watch {
                db,
                keys: keys.clone(),
                flag: flag.clone(),
            };
            let answer = watch::call(
                &router.shard.io,
                router.senders,
                target,
                job,
                router.timeout,
            )
            .await;
            if let Err(error) = answer {
                return error;
            }
        }
        client
            .tx
            .watched
            .extend(keys.into_iter().map(|key| (target, db, key)));
    }
    Frame::ok()
}

/// The CROSSSLOT refusal of a transaction whose keys span shards.
fn cross_shard_error(shards: u16) -> Frame {
    Frame::error(format!(
        "CROSSSLOT Keys in request don't hash to the same slot: a transaction's keys (WATCHed keys included) must live on one shard (tidemark runs {shards} shards); nothing was executed; use a {{hash tag}} to keep the keys together"
    ))
}

/// A queued command split off for its place in the EXEC reply.
struct ConnectionCommand {
    position: usize,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
}

/// EXEC inside MULTI: see the module doc for the steps.
async fn exec<I: Io>(router: &Router<'_, I>, node: &Arc<Node>, client: &mut Client) -> Diverted {
    let queued = client.tx.queued.take().unwrap_or_default();
    let flagged = client.tx.flagged;
    let watch = client.tx.watch.take();
    let watched = std::mem::take(&mut client.tx.watched);
    client.tx.reset();
    if flagged {
        return Diverted::Reply(Frame::error(ERR_EXECABORT));
    }
    let total = queued.len();
    // RESP3: each queued reply takes its own command's shape (src/resp/resp3.rs).
    let protocol = client.protocol;
    let shapes: Vec<crate::resp::resp3::Shape> = queued
        .iter()
        .map(|args| crate::resp::resp3::reply_shape(args))
        .collect();
    let mut data = Vec::new();
    let mut data_positions = Vec::new();
    let mut connection = Vec::new();
    let mut shards: BTreeSet<u16> = watched.iter().map(|(shard, _, _)| *shard).collect();
    for (position, args) in queued.into_iter().enumerate() {
        let Some(spec) = cmd::lookup(&args[0]) else {
            continue; // Unknown commands flag the transaction; never queued.
        };
        match spec.route {
            Route::Connection => {
                connection.push(ConnectionCommand {
                    position,
                    spec,
                    args,
                });
                continue;
            }
            Route::AllShards(_) => shards.extend(0..router.shards),
            _ => shards.extend(
                watch::command_keys(spec, &args)
                    .into_iter()
                    .map(|i| shard_of(&args[i], router.shards)),
            ),
        }
        data.push(args);
        data_positions.push(position);
    }
    if shards.len() > 1 {
        return Diverted::Reply(cross_shard_error(router.shards));
    }
    let mut replies: Vec<Option<Frame>> = vec![None; total];
    let mut local_lsn = None;
    let mut local = true;
    let target = shards.first().copied().or_else(|| {
        // Keyless data commands only (e.g. none at all): run here.
        (!data.is_empty()).then_some(router.shard.id)
    });
    if let Some(target) = target {
        let tx = ShardTx {
            db: router.db.get(),
            commands: data,
            watched_keys: watched.into_iter().map(|(_, db, key)| (db, key)).collect(),
            watch,
        };
        let outcome = if target == router.shard.id {
            router.shard.execute_transaction(&tx)
        } else {
            local = false;
            let job = WatchJob::Exec(tx);
            match watch::call(
                &router.shard.io,
                router.senders,
                target,
                job,
                router.timeout,
            )
            .await
            {
                Ok(WatchAnswer::Exec(outcome)) => outcome,
                Ok(WatchAnswer::Watched) => {
                    TxOutcome::Error(Frame::error("ERR internal: unexpected answer to EXEC"))
                }
                Err(error) => TxOutcome::Error(error),
            }
        };
        match outcome {
            TxOutcome::Aborted => return Diverted::Reply(Frame::NullArray),
            TxOutcome::Error(error) => return Diverted::Reply(error),
            TxOutcome::Ran(frames, lsn) => {
                local_lsn = lsn;
                for (position, frame) in data_positions.into_iter().zip(frames) {
                    replies[position] = Some(frame);
                }
            }
        }
    }
    for command in connection {
        if command.spec.name == "unwatch" {
            // Queued UNWATCH: the watched keys are already forgotten by EXEC.
            replies[command.position] = Some(Frame::ok());
            continue;
        }
        let outcome = admin::handle(router, node, client, command.spec, &command.args).await;
        replies[command.position] = Some(match outcome {
            AdminOutcome::Reply(frame) | AdminOutcome::Close(frame) => frame,
        });
    }
    let frame = Frame::Array(
        replies
            .into_iter()
            .zip(shapes)
            .map(|(r, shape)| {
                let frame = r
                    .unwrap_or_else(|| Frame::error("ERR internal: no reply for a queued command"));
                match protocol {
                    crate::resp::Protocol::Resp3 => shape.apply(frame),
                    crate::resp::Protocol::Resp2 => frame,
                }
            })
            .collect(),
    );
    if local {
        Diverted::Local(frame, local_lsn)
    } else {
        Diverted::Reply(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_resets_and_unwatches() {
        let mut tx = TxState::default();
        assert!(!tx.in_multi());
        tx.queued = Some(Vec::new());
        assert_eq!(
            queue(&mut tx, vec![Bytes::from_static(b"PING")]),
            Frame::Simple("QUEUED".into())
        );
        assert_eq!(tx.queued_len(), 1);
        tx.watch = Some(TxWatch::new());
        tx.watched.insert((0, 0, Bytes::from_static(b"k")));
        tx.flagged = true;
        tx.reset();
        assert!(!tx.in_multi());
        assert!(!tx.flagged);
        assert_eq!(tx.watched_len(), 0);
        assert!(tx.watch.is_none());
    }

    #[test]
    fn queue_refuses_past_the_byte_limit_and_flags() {
        let mut tx = TxState {
            queued: Some(Vec::new()),
            queued_bytes: MULTI_QUEUE_BYTES_MAX - 2,
            ..TxState::default()
        };
        let reply = queue(
            &mut tx,
            vec![Bytes::from_static(b"ECHO"), Bytes::from_static(b"x")],
        );
        assert!(reply.is_error());
        assert!(tx.flagged);
        assert_eq!(tx.queued_len(), 0);
    }

    #[test]
    fn only_the_five_are_transaction_commands() {
        for name in ["multi", "exec", "discard", "watch", "unwatch"] {
            assert!(is_transaction_command(name));
            let spec = cmd::lookup(name.as_bytes()).expect("in the table");
            assert_eq!(spec.route, Route::Connection);
        }
        assert!(!is_transaction_command("quit"));
        assert!(cmd::lookup(b"save").unwrap().flags.contains(&"no_multi"));
    }
}
