//! Set commands (Redis 7.0 t_set.c semantics): SADD SREM SISMEMBER SMISMEMBER SMEMBERS
//! SCARD SPOP SRANDMEMBER SMOVE SINTER SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE
//! SDIFFSTORE SSCAN.
//!
//! AOF: SADD/SREM/SMOVE are logged as given when they changed something; SPOP is logged
//! as `SREM key popped…` (or `UNLINK key` when it popped the whole set, as Redis does with
//! lazyfree; not DEL, which the shard counts as a lazy expiry);
//! the *STORE commands are logged as given (deterministic: any lazily expired source was
//! logged as DEL just before) when they wrote or deleted the destination; SRANDMEMBER logs
//! nothing. Multi-key commands are routed `SameShard`: the shard layer refuses keys on
//! different shards before anything runs. Result order: SINTER walks the smallest set,
//! SUNION/SDIFF the first; sets keep insertion order (no intset sorting).
//! SINTERCARD has movable keys (Redis's legacy key spec is 0 0 0, kept for COMMAND INFO),
//! so the shard layer cannot see its keys from the spec: it needs `numkeys`-aware key
//! extraction to route it (see the family's report).
//! What can fail: arity, syntax, integer parsing, WRONGTYPE (any key of a multi-key
//! command, checked before anything is computed), with Redis's exact error text.

use super::collection;
use super::static_bytes as b;
use bytes::Bytes;

use super::hashes::{
    check_negative_count, parse_cursor, parse_random_count, parse_scan_opts, random_index,
    sample_distinct, scan_reply, scan_walk,
};
use super::table::spec;
use super::{count_reply, int_arg, wrongtype, CommandSpec, ExecCtx, Route, ERR_SYNTAX};
use crate::keyspace::glob::glob_match;
use crate::keyspace::set::SetValue;
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

#[rustfmt::skip]
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!("sadd", -3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "set",
          "Add one or more members to a set", "1.0.0", ["@write", "@set", "@fast"], Some(sadd)),
    spec!("srem", -3, ["write", "fast"], 1, 1, 1, Route::Single, "set",
          "Remove one or more members from a set", "1.0.0", ["@write", "@set", "@fast"], Some(srem)),
    spec!("sismember", 3, ["readonly", "fast"], 1, 1, 1, Route::Single, "set",
          "Determine if a given value is a member of a set", "1.0.0", ["@read", "@set", "@fast"], Some(sismember)),
    spec!("smismember", -3, ["readonly", "fast"], 1, 1, 1, Route::Single, "set",
          "Returns the membership associated with the given elements for a set", "6.2.0", ["@read", "@set", "@fast"], Some(smismember)),
    spec!("smembers", 2, ["readonly"], 1, 1, 1, Route::Single, "set",
          "Get all the members in a set", "1.0.0", ["@read", "@set", "@slow"], Some(smembers)),
    spec!("scard", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "set",
          "Get the number of members in a set", "1.0.0", ["@read", "@set", "@fast"], Some(scard)),
    spec!("spop", -2, ["write", "fast"], 1, 1, 1, Route::Single, "set",
          "Remove and return one or multiple random members from a set", "1.0.0", ["@write", "@set", "@fast"], Some(spop)),
    spec!("srandmember", -2, ["readonly"], 1, 1, 1, Route::Single, "set",
          "Get one or multiple random members from a set", "1.0.0", ["@read", "@set", "@slow"], Some(srandmember)),
    spec!("smove", 4, ["write", "fast"], 1, 2, 1, Route::SameShard, "set",
          "Move a member from one set to another", "1.0.0", ["@write", "@set", "@fast"], Some(smove)),
    spec!("sinter", -2, ["readonly"], 1, -1, 1, Route::SameShard, "set",
          "Intersect multiple sets", "1.0.0", ["@read", "@set", "@slow"], Some(sinter)),
    spec!("sintercard", -3, ["readonly", "movablekeys"], 0, 0, 0, Route::SameShard, "set",
          "Intersect multiple sets and return the cardinality of the result", "7.0.0", ["@read", "@set", "@slow"], Some(sintercard)),
    spec!("sunion", -2, ["readonly"], 1, -1, 1, Route::SameShard, "set",
          "Add multiple sets", "1.0.0", ["@read", "@set", "@slow"], Some(sunion)),
    spec!("sdiff", -2, ["readonly"], 1, -1, 1, Route::SameShard, "set",
          "Subtract multiple sets", "1.0.0", ["@read", "@set", "@slow"], Some(sdiff)),
    spec!("sinterstore", -3, ["write", "denyoom"], 1, -1, 1, Route::SameShard, "set",
          "Intersect multiple sets and store the resulting set in a key", "1.0.0", ["@write", "@set", "@slow"], Some(sinterstore)),
    spec!("sunionstore", -3, ["write", "denyoom"], 1, -1, 1, Route::SameShard, "set",
          "Add multiple sets and store the resulting set in a key", "1.0.0", ["@write", "@set", "@slow"], Some(sunionstore)),
    spec!("sdiffstore", -3, ["write", "denyoom"], 1, -1, 1, Route::SameShard, "set",
          "Subtract multiple sets and store the resulting set in a key", "1.0.0", ["@write", "@set", "@slow"], Some(sdiffstore)),
    spec!("sscan", -3, ["readonly"], 1, 1, 1, Route::Single, "set",
          "Incrementally iterate Set elements", "2.8.0", ["@read", "@set", "@slow"], Some(sscan)),
];

fn bulk_array<'a>(members: impl Iterator<Item = &'a Bytes>) -> Frame {
    Frame::Array(members.map(|m| Frame::Bulk(m.clone())).collect())
}

/// SADD key member… → number of new members.
pub(crate) fn sadd(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::with_mut::<SetValue, _>(db, ctx, &args[1], |s| {
        args[2..].iter().filter(|m| s.insert((*m).clone())).count()
    }) {
        Ok(n) => {
            if n > 0 {
                ctx.log(args.to_vec());
            }
            count_reply(n)
        }
        Err(e) => e,
    }
}

/// SREM key member… → number of members removed; the key goes when the set empties.
pub(crate) fn srem(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::with_mut::<SetValue, _>(db, ctx, &args[1], |s| {
        args[2..].iter().filter(|m| s.remove(m)).count()
    }) {
        Ok(n) => {
            if n > 0 {
                ctx.log(args.to_vec());
            }
            count_reply(n)
        }
        Err(e) => e,
    }
}

/// SISMEMBER key member → :1 or :0.
pub(crate) fn sismember(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<SetValue>(db, ctx, &args[1]) {
        Ok(s) => Frame::Integer(s.is_some_and(|s| s.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

/// SMISMEMBER key member… → one :1/:0 per member.
pub(crate) fn smismember(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<SetValue>(db, ctx, &args[1]) {
        Ok(s) => Frame::Array(
            args[2..]
                .iter()
                .map(|m| Frame::Integer(s.is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// SMEMBERS key → every member (empty array if absent).
pub(crate) fn smembers(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<SetValue>(db, ctx, &args[1]) {
        Ok(Some(s)) => bulk_array(s.iter()),
        Ok(None) => Frame::Array(vec![]),
        Err(e) => e,
    }
}

/// SCARD key → number of members (0 if absent).
pub(crate) fn scard(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<SetValue>(db, ctx, &args[1]) {
        Ok(s) => count_reply(s.map_or(0, |s| s.len())),
        Err(e) => e,
    }
}

/// SPOP key [count]: no count → one random member (or null), logged as `SREM key m`;
/// with count ≥ 0 → up to count distinct members, logged as SREM of them, or `UNLINK key`
/// when the whole set went.
pub(crate) fn spop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return Frame::error(ERR_SYNTAX);
    }
    let count = match args.get(2).map(|c| int_arg(c)) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n as u64),
        Some(_) => return Frame::error("ERR value is out of range, must be positive"),
    };
    let key = &args[1];
    let s = match collection::read::<SetValue>(db, ctx, key) {
        Ok(Some(s)) => s,
        Ok(None) if count.is_some() => return Frame::Array(vec![]),
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    let Some(count) = count else {
        let member = s
            .get_index(random_index(ctx, s.len()))
            .expect("in range")
            .clone();
        // Cannot fail: the set exists (checked above).
        let _ = collection::with_mut::<SetValue, _>(db, ctx, key, |s| s.remove(&member));
        ctx.log(vec![b("SREM"), key.clone(), member.clone()]);
        return Frame::Bulk(member);
    };
    if count == 0 {
        return Frame::Array(vec![]);
    }
    if count >= s.len() as u64 {
        let reply = bulk_array(s.iter());
        db.remove_entry(key);
        ctx.log(vec![b("UNLINK"), key.clone()]);
        return reply;
    }
    let picked: Vec<Bytes> = sample_distinct(ctx, s.len(), count as usize)
        .into_iter()
        .map(|i| s.get_index(i).expect("in range").clone())
        .collect();
    let _ = collection::with_mut::<SetValue, _>(db, ctx, key, |s| {
        picked.iter().for_each(|m| assert!(s.remove(m)))
    });
    let mut logged = Vec::with_capacity(picked.len() + 2);
    logged.extend([b("SREM"), key.clone()]);
    logged.extend(picked.iter().cloned());
    ctx.log(logged);
    bulk_array(picked.iter())
}

/// SRANDMEMBER key [count]: no count → one random member or null; count ≥ 0 → up to
/// count distinct members; count < 0 → |count| members, repeats allowed. Logs nothing.
pub(crate) fn srandmember(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return Frame::error(ERR_SYNTAX);
    }
    let count = match args.get(2).map(|c| parse_random_count(c)) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return e,
    };
    let s = match collection::read::<SetValue>(db, ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) if count.is_some() => return Frame::Array(vec![]),
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    let Some(count) = count else {
        let m = s.get_index(random_index(ctx, s.len())).expect("in range");
        return Frame::Bulk(m.clone());
    };
    if let Err(e) = check_negative_count(count) {
        return e;
    }
    let pick = |i: usize| Frame::Bulk(s.get_index(i).expect("in range").clone());
    if count < 0 {
        let n = count.unsigned_abs();
        return Frame::Array((0..n).map(|_| pick(random_index(ctx, s.len()))).collect());
    }
    if count as u64 >= s.len() as u64 {
        return bulk_array(s.iter());
    }
    let picked = sample_distinct(ctx, s.len(), count as usize);
    Frame::Array(picked.into_iter().map(pick).collect())
}

/// SMOVE source destination member → :1 if moved (logged as given), :0 otherwise.
pub(crate) fn smove(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    // Redis looks both keys up (expiring them) before any check.
    let src_is_set = db.get(ctx, src).map(|e| matches!(e.value, Value::Set(_)));
    let dst_ok = db
        .get(ctx, dst)
        .is_none_or(|e| matches!(e.value, Value::Set(_)));
    match src_is_set {
        None => return Frame::Integer(0),
        Some(false) => return wrongtype(),
        Some(true) if !dst_ok => return wrongtype(),
        Some(true) => {}
    }
    if src == dst {
        let present =
            matches!(collection::read::<SetValue>(db, ctx, src), Ok(Some(s)) if s.contains(member));
        return Frame::Integer(present as i64);
    }
    if !matches!(
        collection::with_mut::<SetValue, _>(db, ctx, src, |s| s.remove(member)),
        Ok(true)
    ) {
        return Frame::Integer(0);
    }
    let added = collection::with_mut::<SetValue, _>(db, ctx, dst, |s| s.insert(member.clone()));
    assert!(added.is_ok(), "destination type checked above");
    ctx.log(args.to_vec());
    Frame::Integer(1)
}

/// Looks every key up (expiring it if needed) and type-checks it, as Redis does before
/// computing anything. Ok(true) when every key holds a set, Ok(false) when one is absent.
fn check_sets(db: &mut Db, ctx: &mut ExecCtx, keys: &[Bytes]) -> Result<bool, Frame> {
    let mut all_present = true;
    for k in keys {
        all_present &= collection::read::<SetValue>(db, ctx, k)?.is_some();
    }
    Ok(all_present)
}

/// The sets at `keys` (None for absent keys), without expiry checks: call after
/// [`check_sets`].
fn peek_sets<'a>(db: &'a Db, keys: &[Bytes]) -> Vec<Option<&'a SetValue>> {
    keys.iter()
        .map(|k| match db.peek(k).map(|e| &e.value) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// Members of the intersection of `keys`, walking the smallest set; stops after `limit`
/// members (0 = no limit). Call after [`check_sets`] returned true.
fn intersection<'a>(db: &'a Db, keys: &[Bytes], limit: usize) -> Vec<&'a Bytes> {
    let mut sets: Vec<&SetValue> = peek_sets(db, keys)
        .into_iter()
        .map(|s| s.expect("checked present"))
        .collect();
    sets.sort_by_key(|s| s.len());
    let (first, rest) = sets.split_first().expect("at least one key");
    let mut out = Vec::new();
    for m in first.iter() {
        if rest.iter().all(|s| s.contains(m)) {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

/// The union (`diff` false) or difference (`diff` true: first minus the rest) of `keys`.
fn union_or_diff(db: &Db, keys: &[Bytes], diff: bool) -> SetValue {
    let sets = peek_sets(db, keys);
    if diff {
        let Some(first) = sets[0] else {
            return SetValue::new();
        };
        first
            .iter()
            .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m)))
            .cloned()
            .collect()
    } else {
        sets.iter()
            .flatten()
            .flat_map(|s| s.iter())
            .cloned()
            .collect()
    }
}

/// Which set operation a SINTER/SUNION/SDIFF(STORE) computes.
#[derive(Clone, Copy)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

/// The result of `op` over `keys` (all type-checked and expired first).
fn compute(db: &mut Db, ctx: &mut ExecCtx, keys: &[Bytes], op: SetOp) -> Result<SetValue, Frame> {
    let all_present = check_sets(db, ctx, keys)?;
    Ok(match op {
        SetOp::Inter if !all_present => SetValue::new(),
        SetOp::Inter => intersection(db, keys, 0).into_iter().cloned().collect(),
        SetOp::Union => union_or_diff(db, keys, false),
        SetOp::Diff => union_or_diff(db, keys, true),
    })
}

fn read_op(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], op: SetOp) -> Frame {
    match compute(db, ctx, &args[1..], op) {
        Ok(s) => bulk_array(s.iter()),
        Err(e) => e,
    }
}

/// Stores the result of `op` over `args[2..]` at `args[1]` (replacing any value and TTL;
/// an empty result deletes it) → the result's size.
fn store_op(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], op: SetOp) -> Frame {
    let result = match compute(db, ctx, &args[2..], op) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let dst = &args[1];
    let n = result.len();
    let changed = if result.is_empty() {
        db.remove_entry(dst).is_some()
    } else {
        db.insert(dst.clone(), Value::Set(result), None);
        true
    };
    if changed {
        ctx.log(args.to_vec());
    }
    count_reply(n)
}

/// SINTER key… → members in every set.
pub(crate) fn sinter(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    read_op(db, ctx, args, SetOp::Inter)
}

/// SUNION key… → members in any set.
pub(crate) fn sunion(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    read_op(db, ctx, args, SetOp::Union)
}

/// SDIFF key… → members of the first set in none of the others.
pub(crate) fn sdiff(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    read_op(db, ctx, args, SetOp::Diff)
}

/// SINTERSTORE destination key… → size of the stored intersection.
pub(crate) fn sinterstore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    store_op(db, ctx, args, SetOp::Inter)
}

/// SUNIONSTORE destination key… → size of the stored union.
pub(crate) fn sunionstore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    store_op(db, ctx, args, SetOp::Union)
}

/// SDIFFSTORE destination key… → size of the stored difference.
pub(crate) fn sdiffstore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    store_op(db, ctx, args, SetOp::Diff)
}

/// SINTERCARD numkeys key… [LIMIT limit] → size of the intersection, counting stops at
/// `limit` (0 = no limit).
pub(crate) fn sintercard(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let numkeys = match super::parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Frame::error("ERR numkeys should be greater than 0"),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Frame::error("ERR Number of keys can't be greater than number of args");
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut i = keys_end;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"limit") && i + 1 < args.len() {
            match super::parse_i64(&args[i + 1]) {
                Some(n) if n >= 0 => limit = n as u64,
                _ => return Frame::error("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return Frame::error(ERR_SYNTAX);
        }
    }
    let keys = &args[2..keys_end];
    match check_sets(db, ctx, keys) {
        Ok(false) => Frame::Integer(0),
        Ok(true) => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            count_reply(intersection(db, keys, limit).len())
        }
        Err(e) => e,
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT n] → [next-cursor, [member…]]. Every member
/// present for the whole scan is returned at least once.
pub(crate) fn sscan(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let cursor = match parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let s = match collection::read::<SetValue>(db, ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return scan_reply(0, vec![]),
        Err(e) => return e,
    };
    let (count, pattern) = match parse_scan_opts(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    let next = scan_walk(s.len(), s.is_compact(), cursor, count, |i| {
        let m = s.get_index(i).expect("index below len");
        if pattern.is_none_or(|p| glob_match(p, m)) {
            out.push(Frame::Bulk(m.clone()));
        }
    });
    scan_reply(next, out)
}

#[cfg(test)]
#[path = "tests/sets.rs"]
mod tests;
