//! The non-blocking attempts of BZPOPMIN, BZPOPMAX and BZMPOP (Redis 7.0 `t_zset.c`
//! `blockingGenericZpopCommand` / `bzmpopCommand` semantics), and what a blocked client of
//! theirs waits on ([`blocking_wait_spec`]).
//!
//! Like the blocking list commands (src/cmd/lists.rs), a handler is the command's
//! *attempt*: it parses the timeout first (`ERR timeout is not a float or out of range`,
//! `ERR timeout is negative`), then the other arguments, serves the client at once from
//! the first non-empty key in argument order (WRONGTYPE for a key of another type met
//! before it), and otherwise replies `*-1`. `Shard::run_blocking` (src/shard/blocking.rs)
//! parks the client on that reply and retries when a ZADD (or any write) makes one of its
//! keys a non-empty sorted set; clients are served FIFO per key.
//!
//! AOF: the pop is logged when it happens, as `ZREM key member…` of the popped members (the
//! form ZPOPMIN/ZPOPMAX/ZMPOP use here: deterministic, replays to the same state).
//! What can fail: only the client's command (timeout, numkeys, syntax, count, WRONGTYPE).

use std::time::Duration;

use bytes::Bytes;

use super::basic::{zmpop_at, zpop};
use super::score_bulk;
use crate::cmd::{parse_i64, parse_timeout, ExecCtx};
use crate::keyspace::Db;
use crate::resp::Frame;

/// BZPOPMIN/BZPOPMAX attempt: pops one member from the first non-empty key.
fn bzpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], max: bool) -> Frame {
    if let Err(e) = parse_timeout(&args[args.len() - 1]) {
        return e;
    }
    for key in &args[1..args.len() - 1] {
        match zpop(db, ctx, key, max, 1) {
            Err(e) => return e,
            Ok(popped) => {
                if let Some((member, score)) = popped.into_iter().next() {
                    return Frame::Array(vec![
                        Frame::Bulk(key.clone()),
                        Frame::Bulk(member),
                        score_bulk(score),
                    ]);
                }
            }
        }
    }
    Frame::NullArray
}

/// BZPOPMIN key… timeout (attempt) → `[key, member, score]`, or `*-1` when every key is
/// empty (also the reply on timeout).
pub(crate) fn bzpopmin(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    bzpop(db, ctx, args, false)
}

/// BZPOPMAX key… timeout (attempt) → `[key, member, score]`, or `*-1`.
pub(crate) fn bzpopmax(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    bzpop(db, ctx, args, true)
}

/// BZMPOP timeout numkeys key… MIN|MAX [COUNT n] (attempt) → `[key, [[member, score]…]]`
/// from the first non-empty key, or `*-1`.
pub(crate) fn bzmpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if let Err(e) = parse_timeout(&args[1]) {
        return e;
    }
    zmpop_at(db, ctx, args, 2)
}

/// What a client blocked in BZPOPMIN/BZPOPMAX/BZMPOP waits on: its keys (in argument
/// order) and its timeout (`None` = forever). `None` for any other command, or for
/// arguments the attempt refused (it has already replied with the error).
pub fn blocking_wait_spec(args: &[Bytes]) -> Option<(Vec<Bytes>, Option<Duration>)> {
    let name = args.first()?;
    let (keys, timeout): (Vec<Bytes>, &Bytes) =
        if name.eq_ignore_ascii_case(b"bzpopmin") || name.eq_ignore_ascii_case(b"bzpopmax") {
            let (timeout, keys) = args[1..].split_last()?;
            (keys.to_vec(), timeout)
        } else if name.eq_ignore_ascii_case(b"bzmpop") {
            let numkeys = parse_i64(args.get(2)?).filter(|n| *n >= 1)? as u64;
            // The keys, then MIN|MAX at least.
            if numkeys.checked_add(3)? >= args.len() as u64 {
                return None;
            }
            (args[3..3 + numkeys as usize].to_vec(), args.get(1)?)
        } else {
            return None;
        };
    let timeout = parse_timeout(timeout).ok()?;
    (!keys.is_empty()).then_some((keys, timeout))
}
