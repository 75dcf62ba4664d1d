//! Routing one data command: key → hash slot → shard, then run it locally or hop to the
//! owning shard; split multi-key commands by shard and merge their replies; refuse
//! multi-key writes whose keys span shards (never half-applied).
//!
//! What can fail here: cross-shard timeouts (error replies from `dispatch`), and
//! `SameShard` commands whose keys live on different shards (refused before anything runs).

use bytes::Bytes;

use crate::cmd::{CommandSpec, Merge, Route};
use crate::io::Io;
use crate::resp::Frame;
use crate::shard::dispatch::{self, Senders};
use crate::shard::slot::{key_hash_slot, slot_to_shard};
use crate::shard::state::Shard;

/// Bits of a global SCAN cursor that hold the shard-local cursor; the shard id sits above.
pub const SCAN_CURSOR_LOCAL_BITS: u32 = 48;

/// Everything a connection needs to route commands from its shard.
pub struct Router<'a, I: Io> {
    /// The shard serving the connection.
    pub shard: &'a std::rc::Rc<Shard<I>>,
    /// Inbound queues of all shards.
    pub senders: &'a Senders,
    /// Number of shards.
    pub shards: u16,
    /// Bounded wait for cross-shard hops.
    pub timeout: std::time::Duration,
    /// The connection's selected database (SELECT): every command runs in it, here or on
    /// the shard it hops to.
    pub db: std::cell::Cell<crate::shard::state::DbIndex>,
}

/// The shard owning `key`.
pub fn shard_of(key: &[u8], shards: u16) -> u16 {
    if shards == 1 {
        return 0;
    }
    slot_to_shard(key_hash_slot(key), shards)
}

impl<I: Io> Router<'_, I> {
    /// Runs a data command (route != Connection) wherever it belongs. The reply is ready to
    /// send: local writes have already been acknowledged per the AOF policy unless the
    /// caller batches acknowledgement, see [`Router::run_local`].
    pub async fn run(&self, spec: &CommandSpec, args: Vec<Bytes>) -> Frame {
        match spec.route {
            Route::Connection => Frame::error("ERR internal: connection command routed as data"),
            Route::Single => {
                let key = &args[spec.first_key as usize];
                let target = shard_of(key, self.shards);
                self.run_on(target, spec, args).await
            }
            Route::SameShard => match self.same_shard(spec, &args) {
                Some(target) => self.run_on(target, spec, args).await,
                None => Frame::error(format!(
                    "CROSSSLOT Keys in request don't hash to the same shard: '{}' with keys on different shards is refused (tidemark runs {} shards); use a {{hash tag}} to keep the keys together",
                    spec.name, self.shards
                )),
            },
            Route::SplitKeys(merge) => self.run_split(spec, args, merge).await,
            Route::AllShards(merge) => self.run_all(spec, args, merge).await,
        }
    }

    /// Runs on this shard and waits for the acknowledgement.
    async fn run_on(&self, target: u16, spec: &CommandSpec, args: Vec<Bytes>) -> Frame {
        if target == self.shard.id {
            let (reply, lsn) = self.run_local(spec, &args);
            return match self.shard.wait_ack(lsn).await {
                Ok(()) => reply,
                Err(error) => error,
            };
        }
        let db = self.db.get();
        dispatch::call_command_in(&self.shard.io, self.senders, target, db, args, self.timeout)
            .await
    }

    /// Executes on the local shard without waiting; returns the LSN to wait for. Used by
    /// the connection to acknowledge a whole pipeline with one wait (group commit).
    pub fn run_local(&self, spec: &CommandSpec, args: &[Bytes]) -> (Frame, Option<u64>) {
        let (reply, lsn) = self.shard.execute_local(self.db.get(), spec, args);
        let lsn = lsn.or_else(|| self.shard.read_barrier());
        (reply, lsn)
    }

    /// True when every key of the command lives on this connection's shard.
    pub fn is_local(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        if self.shards == 1 {
            return true;
        }
        match spec.route {
            Route::Single | Route::SameShard | Route::SplitKeys(_) => {
                route_keys(spec, args).all(|i| shard_of(&args[i], self.shards) == self.shard.id)
            }
            Route::AllShards(_) | Route::Connection => false,
        }
    }

    /// The one shard owning every key (`None`: keys span shards). Also used by
    /// `shard::blocking` (lists family).
    pub(crate) fn same_shard(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<u16> {
        let mut target = None;
        for i in route_keys(spec, args) {
            let shard = shard_of(&args[i], self.shards);
            match target {
                None => target = Some(shard),
                Some(t) if t != shard => return None,
                Some(_) => {}
            }
        }
        Some(target.unwrap_or(self.shard.id))
    }

    async fn run_split(&self, spec: &CommandSpec, args: Vec<Bytes>, merge: Merge) -> Frame {
        // Group key positions by shard, in shard order (deterministic).
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); usize::from(self.shards)];
        for i in spec.key_indexes(args.len()) {
            groups[usize::from(shard_of(&args[i], self.shards))].push(i);
        }
        let mut replies: Vec<(Vec<usize>, Frame)> = Vec::new();
        for (target, positions) in groups.into_iter().enumerate() {
            if positions.is_empty() {
                continue;
            }
            let mut sub = Vec::with_capacity(positions.len() + 1);
            sub.push(args[0].clone());
            sub.extend(positions.iter().map(|&i| args[i].clone()));
            let reply = self.run_on(target as u16, spec, sub).await;
            if reply.is_error() {
                return reply;
            }
            replies.push((positions, reply));
        }
        merge_split(merge, args.len(), replies)
    }

    async fn run_all(&self, spec: &CommandSpec, args: Vec<Bytes>, merge: Merge) -> Frame {
        if merge == Merge::Scan {
            return self.run_scan(spec, args).await;
        }
        let mut replies = Vec::with_capacity(usize::from(self.shards));
        for target in 0..self.shards {
            let reply = self.run_on(target, spec, args.clone()).await;
            if reply.is_error() {
                return reply;
            }
            replies.push(reply);
        }
        match merge {
            Merge::SumIntegers => Frame::Integer(
                replies
                    .iter()
                    .map(|r| if let Frame::Integer(n) = r { *n } else { 0 })
                    .sum(),
            ),
            Merge::AllOk => Frame::ok(),
            Merge::ConcatArrays => {
                let mut all = Vec::new();
                for reply in replies {
                    if let Frame::Array(items) = reply {
                        all.extend(items);
                    }
                }
                Frame::Array(all)
            }
            Merge::RandomKey => {
                let found: Vec<Frame> = replies
                    .into_iter()
                    .filter(|r| matches!(r, Frame::Bulk(_)))
                    .collect();
                if found.is_empty() {
                    Frame::Null
                } else {
                    let pick = self.shard.io_random() as usize % found.len();
                    found.into_iter().nth(pick).unwrap_or(Frame::Null)
                }
            }
            Merge::MgetOrder | Merge::Scan => {
                Frame::error("ERR internal: bad merge for all-shards")
            }
        }
    }

    /// SCAN across shards: the global cursor is `shard << 48 | local cursor`; when a shard's
    /// local scan ends, continue at the next shard's start.
    async fn run_scan(&self, spec: &CommandSpec, mut args: Vec<Bytes>) -> Frame {
        let Some(cursor) = args
            .get(1)
            .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok())
        else {
            return Frame::error("ERR invalid cursor");
        };
        let target = (cursor >> SCAN_CURSOR_LOCAL_BITS) as u16;
        if target >= self.shards {
            return Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())]);
        }
        let local = cursor & ((1u64 << SCAN_CURSOR_LOCAL_BITS) - 1);
        args[1] = Bytes::from(local.to_string());
        let reply = self.run_on(target, spec, args).await;
        let Frame::Array(mut parts) = reply else {
            return reply;
        };
        if parts.len() != 2 {
            return Frame::Array(parts);
        }
        let next_local = match &parts[0] {
            Frame::Bulk(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0),
            _ => 0,
        };
        let next = if next_local != 0 {
            (u64::from(target) << SCAN_CURSOR_LOCAL_BITS) | next_local
        } else if target + 1 < self.shards {
            u64::from(target + 1) << SCAN_CURSOR_LOCAL_BITS
        } else {
            0
        };
        parts[0] = Frame::bulk(next.to_string());
        Frame::Array(parts)
    }
}

impl<I: Io> Shard<I> {
    fn io_random(&self) -> u64 {
        crate::io::Entropy::random_u64(&self.io)
    }
}

/// Key positions used for routing: the legacy key spec, plus the movable keys of
/// LMPOP/BLMPOP (`numkeys` then keys; their legacy spec is 0 0 0). Added by the lists family.
fn route_keys<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> impl Iterator<Item = usize> + 'a {
    let movable = if spec.flags.contains(&"movablekeys") {
        crate::cmd::movable_key_indexes(args)
    } else {
        Vec::new()
    };
    spec.key_indexes(args.len()).chain(movable)
}

/// Merges per-shard replies of a split multi-key command.
fn merge_split(merge: Merge, argc: usize, replies: Vec<(Vec<usize>, Frame)>) -> Frame {
    match merge {
        Merge::SumIntegers => Frame::Integer(
            replies
                .iter()
                .map(|(_, r)| if let Frame::Integer(n) = r { *n } else { 0 })
                .sum(),
        ),
        Merge::MgetOrder => {
            let mut out = vec![Frame::Null; argc];
            for (positions, reply) in replies {
                if let Frame::Array(items) = reply {
                    for (pos, item) in positions.into_iter().zip(items) {
                        out[pos] = item;
                    }
                }
            }
            out.remove(0);
            Frame::Array(out)
        }
        _ => Frame::error("ERR internal: bad merge for split keys"),
    }
}
