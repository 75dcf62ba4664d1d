//! ZADD ZINCRBY ZREM ZSCORE ZMSCORE ZCARD ZRANK ZREVRANK ZPOPMIN ZPOPMAX ZMPOP
//! ZRANDMEMBER ZSCAN (Redis 7.0 `t_zset.c` semantics, checked against redis-server 7.0.15).
//!
//! What can fail: syntax, float/integer parsing, option conflicts, NaN results, WRONGTYPE;
//! each with Redis's exact error text.

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashSet;

use super::{
    b, elements_reply, get_zset, mutate_zset, score_bulk, score_bytes, ERR_NAN,
    ZRANDMEMBER_REPLY_MAX_ELEMENTS, ZSCAN_WHOLE_MAX_ELEMENTS,
};
use crate::cmd::keys::SCAN_COUNT_DEFAULT;
use crate::cmd::{count_reply, int_arg, parse_i64, ExecCtx, ERR_NOT_FLOAT, ERR_SYNTAX};
use crate::keyspace::glob::glob_match;
use crate::keyspace::zset::score::parse_score;
use crate::keyspace::zset::ZSetValue;
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

/// Parsed ZADD flags.
#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one element of a ZADD did.
enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Present, processed, score unchanged.
    Same(f64),
    Nop,
}

/// Applies one ZADD element to `z` (Redis `zsetAdd`). Err = NaN result.
fn add_one(
    z: &mut ZSetValue,
    f: AddFlags,
    score: f64,
    member: &Bytes,
) -> Result<AddOutcome, Frame> {
    match z.score(member) {
        Some(current) => {
            if f.nx {
                return Ok(AddOutcome::Nop);
            }
            let mut score = score;
            if f.incr {
                score += current;
                if score.is_nan() {
                    return Err(Frame::error(ERR_NAN));
                }
            }
            if (f.lt && score >= current) || (f.gt && score <= current) {
                return Ok(AddOutcome::Nop);
            }
            if score != current {
                z.insert(member.clone(), score);
                Ok(AddOutcome::Updated(score))
            } else {
                Ok(AddOutcome::Same(score))
            }
        }
        None if f.xx => Ok(AddOutcome::Nop),
        None => {
            z.insert(member.clone(), score);
            Ok(AddOutcome::Added(score))
        }
    }
}

fn parse_add_flags(args: &[Bytes]) -> (AddFlags, usize) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        match &opt[..] {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"gt" => f.gt = true,
            b"lt" => f.lt = true,
            b"ch" => f.ch = true,
            b"incr" => f.incr = true,
            _ => break,
        }
        i += 1;
    }
    (f, i)
}

/// The shared body of ZADD and ZINCRBY (Redis `zaddGenericCommand`).
fn zadd_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    key: &Bytes,
    f: AddFlags,
    pairs: &[Bytes],
) -> Frame {
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Frame::error(ERR_SYNTAX);
    }
    if f.nx && f.xx {
        return Frame::error("ERR XX and NX options at the same time are not compatible");
    }
    if [f.gt, f.lt, f.nx].iter().filter(|&&set| set).count() > 1 {
        return Frame::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && pairs.len() > 2 {
        return Frame::error("ERR INCR option supports a single increment-element pair");
    }
    let mut elements = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        match parse_score(&pair[0]) {
            Some(s) => elements.push((s, &pair[1])),
            None => return Frame::error(ERR_NOT_FLOAT),
        }
    }
    let exists = match get_zset(db, ctx, key) {
        Ok(z) => z.is_some(),
        Err(e) => return e,
    };
    let nothing = || {
        if f.incr {
            Frame::Null
        } else {
            Frame::Integer(0)
        }
    };
    if !exists {
        if f.xx {
            return nothing();
        }
        db.insert(key.clone(), Value::ZSet(ZSetValue::new()), None);
    }
    let result = mutate_zset(db, key, |z| {
        let mut outcomes = Vec::with_capacity(elements.len());
        for &(score, member) in &elements {
            outcomes.push((add_one(z, f, score, member)?, member));
        }
        let mut logged = vec![b("ZADD"), key.clone()];
        for (o, m) in &outcomes {
            if let AddOutcome::Added(_) | AddOutcome::Updated(_) = o {
                logged.push(score_bytes(z.score(m).expect("just added")));
                logged.push((*m).clone());
            }
        }
        Ok((outcomes, logged))
    });
    let (outcomes, logged) = match result {
        Ok(r) => r,
        Err(e) => return e,
    };
    if logged.len() > 2 {
        ctx.log(logged);
    }
    let (mut added, mut updated) = (0, 0);
    let mut last = None;
    for (o, _) in &outcomes {
        match o {
            AddOutcome::Added(s) => (added, last) = (added + 1, Some(*s)),
            AddOutcome::Updated(s) => (updated, last) = (updated + 1, Some(*s)),
            AddOutcome::Same(s) => last = Some(*s),
            AddOutcome::Nop => {}
        }
    }
    if f.incr {
        last.map_or(Frame::Null, score_bulk)
    } else {
        Frame::Integer(if f.ch { added + updated } else { added })
    }
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …] → added (or
/// changed with CH) count; with INCR the new score or null. Logged as ZADD of the
/// resulting scores of the changed members.
pub(crate) fn zadd(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (flags, start) = parse_add_flags(args);
    zadd_generic(db, ctx, &args[1], flags, &args[start..])
}

/// ZINCRBY key increment member → the new score. Logged as ZADD key score member.
pub(crate) fn zincrby(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(db, ctx, &args[1], flags, &args[2..])
}

/// ZREM key member [member …] → number removed. Logged as ZREM of the removed members.
pub(crate) fn zrem(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let key = &args[1];
    match get_zset(db, ctx, key) {
        Ok(Some(_)) => {}
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    }
    let removed: Vec<Bytes> = mutate_zset(db, key, |z| {
        args[2..]
            .iter()
            .filter(|m| z.remove(m).is_some())
            .cloned()
            .collect()
    });
    if !removed.is_empty() {
        let mut logged = vec![b("ZREM"), key.clone()];
        logged.extend(removed.iter().cloned());
        ctx.log(logged);
    }
    count_reply(removed.len())
}

/// ZSCORE key member → bulk score or null.
pub(crate) fn zscore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_zset(db, ctx, &args[1]) {
        Ok(z) => z
            .and_then(|z| z.score(&args[2]))
            .map_or(Frame::Null, score_bulk),
        Err(e) => e,
    }
}

/// ZMSCORE key member [member …] → array of bulk scores / nulls.
pub(crate) fn zmscore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_zset(db, ctx, &args[1]) {
        Ok(z) => Frame::Array(
            args[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or(Frame::Null, score_bulk))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// ZCARD key → number of elements (0 if absent).
pub(crate) fn zcard(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_zset(db, ctx, &args[1]) {
        Ok(z) => count_reply(z.map_or(0, |z| z.len())),
        Err(e) => e,
    }
}

fn rank_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], rev: bool) -> Frame {
    match get_zset(db, ctx, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some(r) if rev => count_reply(z.len() - 1 - r),
            Some(r) => count_reply(r),
            None => Frame::Null,
        },
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

/// ZRANK key member → 0-based ascending rank or null.
pub(crate) fn zrank(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    rank_generic(db, ctx, args, false)
}

/// ZREVRANK key member → 0-based descending rank or null.
pub(crate) fn zrevrank(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    rank_generic(db, ctx, args, true)
}

/// Pops up to `count` lowest (or highest when `max`) elements of the sorted set at `key`,
/// deleting the key when it empties and logging `ZREM key popped…`. Ok(empty) when the key
/// is absent; Err(WRONGTYPE) for another type. This is what a blocking BZPOPMIN/BZPOPMAX/
/// BZMPOP wrapper calls once the key is ready.
pub(crate) fn zpop(
    db: &mut Db,
    ctx: &mut ExecCtx,
    key: &Bytes,
    max: bool,
    count: usize,
) -> Result<Vec<(Bytes, f64)>, Frame> {
    let len = match get_zset(db, ctx, key)? {
        Some(z) => z.len(),
        None => return Ok(Vec::new()),
    };
    let n = count.min(len);
    if n == 0 {
        return Ok(Vec::new());
    }
    let popped = mutate_zset(db, key, |z| {
        let mut out = z.remove_rank_range(if max { len - n } else { 0 }, if max { len } else { n });
        if max {
            out.reverse();
        }
        out
    });
    let mut logged = vec![b("ZREM"), key.clone()];
    logged.extend(popped.iter().map(|(m, _)| m.clone()));
    ctx.log(logged);
    Ok(popped)
}

fn pop_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], max: bool) -> Frame {
    if args.len() > 3 {
        return Frame::error(ERR_SYNTAX);
    }
    let count = match args.get(2) {
        None => 1,
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => n as usize,
            _ => return Frame::error("ERR value is out of range, must be positive"),
        },
    };
    match zpop(db, ctx, &args[1], max, count) {
        Ok(popped) => elements_reply(popped.iter().map(|(m, s)| (m, *s)), true),
        Err(e) => e,
    }
}

/// ZPOPMIN key [count] → flat [member, score, …] (empty array when absent). Logged as ZREM.
pub(crate) fn zpopmin(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    pop_generic(db, ctx, args, false)
}

/// ZPOPMAX key [count] → flat [member, score, …], highest first. Logged as ZREM.
pub(crate) fn zpopmax(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    pop_generic(db, ctx, args, true)
}

/// ZMPOP numkeys key [key …] MIN|MAX [COUNT count] → [key, [[member, score], …]] from the
/// first non-empty key, or a null array.
pub(crate) fn zmpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    zmpop_at(db, ctx, args, 1)
}

/// The body of ZMPOP / the BZMPOP attempt: `numkeys` at `args[numkeys_at]`, then the keys,
/// MIN|MAX and an optional COUNT.
pub(crate) fn zmpop_at(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], numkeys_at: usize) -> Frame {
    let numkeys = match args.get(numkeys_at).and_then(|n| parse_i64(n)) {
        Some(n) if n >= 1 => n as usize,
        _ => return Frame::error("ERR numkeys should be greater than 0"),
    };
    let where_at = match numkeys.checked_add(numkeys_at + 1) {
        Some(w) if w < args.len() => w,
        _ => return Frame::error(ERR_SYNTAX),
    };
    let max = match &args[where_at].to_ascii_lowercase()[..] {
        b"min" => false,
        b"max" => true,
        _ => return Frame::error(ERR_SYNTAX),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => return Frame::error("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return Frame::error(ERR_SYNTAX);
        }
    }
    for key in &args[numkeys_at + 1..where_at] {
        match zpop(db, ctx, key, max, count.unwrap_or(1)) {
            Ok(popped) if popped.is_empty() => continue,
            Ok(popped) => {
                let pairs = popped
                    .into_iter()
                    .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), score_bulk(s)]))
                    .collect();
                return Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(pairs)]);
            }
            Err(e) => return e,
        }
    }
    Frame::NullArray
}

/// ZRANDMEMBER key [count [WITHSCORES]] → a random member (bulk/null), or an array of
/// distinct members (count > 0) or of |count| members with repeats (count < 0).
/// Randomness only via `ctx.random`; nothing is logged.
pub(crate) fn zrandmember(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let mut count = None;
    let mut with_scores = false;
    if let Some(c) = args.get(2) {
        let n = match int_arg(c) {
            Ok(i64::MIN) => {
                return Frame::error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Ok(n) => n,
            Err(e) => return e,
        };
        if args.len() > 4 || (args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withscores")) {
            return Frame::error(ERR_SYNTAX);
        }
        with_scores = args.len() == 4;
        if (with_scores && n < -i64::MAX / 2)
            || (n < 0 && n.unsigned_abs() > ZRANDMEMBER_REPLY_MAX_ELEMENTS)
        {
            return Frame::error("ERR value is out of range");
        }
        count = Some(n);
    }
    let z = match get_zset(db, ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return count.map_or(Frame::Null, |_| Frame::Array(vec![])),
        Err(e) => return e,
    };
    let len = z.len() as u64;
    let mut pick = || ((ctx.random)() % len) as usize;
    let Some(count) = count else {
        return Frame::Bulk(z.get_by_rank(pick()).expect("rank below len").0.clone());
    };
    let ranks: Vec<usize> = if count < 0 {
        (0..count.unsigned_abs()).map(|_| pick()).collect()
    } else if count as u64 >= len {
        // The whole set, highest first (what redis-server 7.0 replies).
        (0..len as usize).rev().collect()
    } else {
        distinct_ranks(len as usize, count as usize, &mut pick)
    };
    let items = ranks
        .into_iter()
        .map(|r| z.get_by_rank(r).expect("rank below len"));
    elements_reply(items, with_scores)
}

/// `count` (< len) distinct ranks in `0..len`, drawn with `pick` (uniform in `0..len`).
fn distinct_ranks(len: usize, count: usize, pick: &mut impl FnMut() -> usize) -> Vec<usize> {
    if count * 3 > len {
        // Partial Fisher–Yates over all ranks.
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..count {
            let j = i + pick() % (len - i);
            all.swap(i, j);
        }
        all.truncate(count);
        return all;
    }
    let mut seen: HashSet<usize, FixedState> = HashSet::with_hasher(FixedState::with_seed(1));
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let r = pick();
        if seen.insert(r) {
            out.push(r);
        }
    }
    out
}

/// Parses a SCAN cursor like Redis `parseScanCursorOrReply` (`strtoul`: decimal, a
/// leading '-' wraps around).
fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count] → [next-cursor, [member, score, …]].
/// Sets up to [`ZSCAN_WHOLE_MAX_ELEMENTS`] come back whole (cursor 0, like Redis's
/// listpack); larger ones are walked in rank order, the cursor being the next rank.
pub(crate) fn zscan(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return Frame::error("ERR invalid cursor");
    };
    let empty = || Frame::Array(vec![Frame::Bulk(b("0")), Frame::Array(vec![])]);
    let z = match get_zset(db, ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return empty(),
        Err(e) => return e,
    };
    let mut count = SCAN_COUNT_DEFAULT;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Frame::error(ERR_SYNTAX);
        }
        if args[i].eq_ignore_ascii_case(b"count") {
            match int_arg(&args[i + 1]) {
                Ok(n) if n >= 1 => count = n as usize,
                Ok(_) => return Frame::error(ERR_SYNTAX),
                Err(e) => return e,
            }
        } else if args[i].eq_ignore_ascii_case(b"match") {
            pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else {
            return Frame::error(ERR_SYNTAX);
        }
        i += 2;
    }
    let len = z.len();
    let (start, end) = if len <= ZSCAN_WHOLE_MAX_ELEMENTS {
        (0, len)
    } else {
        let start = cursor.min(len as u64) as usize;
        (start, start.saturating_add(count).min(len))
    };
    let next = if end >= len { 0 } else { end };
    let items = z
        .range(start, end, false)
        .filter(|(m, _)| pattern.is_none_or(|p| glob_match(p, m)));
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        elements_reply(items, true),
    ])
}
