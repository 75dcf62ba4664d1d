//! Hash commands (Redis 7.0 t_hash.c semantics): HSET HSETNX HGET HMGET HMSET HDEL
//! HEXISTS HLEN HSTRLEN HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, plus
//! the cursor/COUNT/random-count helpers the set commands share.
//!
//! AOF: writes are logged as given when they changed something (HSET, HMSET, HSETNX that
//! set, HDEL that deleted, HINCRBY); HINCRBYFLOAT is logged as `HSET key field result`.
//! HRANDFIELD logs nothing. HSCAN cursor: like SCAN (`keys.rs`), `c` = next index + 1,
//! walking the hash's index order downwards; a compact hash (≤ 128 fields, Redis's
//! listpack) is returned whole with cursor 0, as Redis does.
//! What can fail: arity, syntax, integer/float parsing, overflow, WRONGTYPE — each with
//! Redis's exact error text — and a negative random count beyond
//! [`RANDOM_COUNT_NEGATIVE_MAX`] (a tidemark limit; Redis would try to build the reply).

use super::collection;
use super::static_bytes as b;
use std::collections::BTreeSet;

use bytes::Bytes;

use super::keys::{SCAN_COUNT_DEFAULT, SCAN_VISIT_MAX_KEYS};
use super::table::spec;
use super::{
    count_reply, int_arg, int_bytes, parse_i64, wrong_args, CommandSpec, ExecCtx, Route,
    ERR_NOT_FLOAT, ERR_OVERFLOW, ERR_SYNTAX,
};
use crate::keyspace::glob::glob_match;
use crate::keyspace::hash::HashValue;
use crate::keyspace::longdouble::LongDouble;
use crate::keyspace::Db;
use crate::resp::Frame;

/// Largest |count| a negative HRANDFIELD / SRANDMEMBER count may ask for (the reply
/// repeats elements, so its size is not bounded by the data). Redis has no such limit.
pub const RANDOM_COUNT_NEGATIVE_MAX: u64 = 1 << 20;

#[rustfmt::skip]
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!("hset", -4, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "hash",
          "Set the string value of a hash field", "2.0.0", ["@write", "@hash", "@fast"], Some(hset)),
    spec!("hsetnx", 4, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "hash",
          "Set the value of a hash field, only if the field does not exist", "2.0.0", ["@write", "@hash", "@fast"], Some(hsetnx)),
    spec!("hget", 3, ["readonly", "fast"], 1, 1, 1, Route::Single, "hash",
          "Get the value of a hash field", "2.0.0", ["@read", "@hash", "@fast"], Some(hget)),
    spec!("hmget", -3, ["readonly", "fast"], 1, 1, 1, Route::Single, "hash",
          "Get the values of all the given hash fields", "2.0.0", ["@read", "@hash", "@fast"], Some(hmget)),
    spec!("hmset", -4, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "hash",
          "Set multiple hash fields to multiple values", "2.0.0", ["@write", "@hash", "@fast"], Some(hmset)),
    spec!("hdel", -3, ["write", "fast"], 1, 1, 1, Route::Single, "hash",
          "Delete one or more hash fields", "2.0.0", ["@write", "@hash", "@fast"], Some(hdel)),
    spec!("hexists", 3, ["readonly", "fast"], 1, 1, 1, Route::Single, "hash",
          "Determine if a hash field exists", "2.0.0", ["@read", "@hash", "@fast"], Some(hexists)),
    spec!("hlen", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "hash",
          "Get the number of fields in a hash", "2.0.0", ["@read", "@hash", "@fast"], Some(hlen)),
    spec!("hstrlen", 3, ["readonly", "fast"], 1, 1, 1, Route::Single, "hash",
          "Get the length of the value of a hash field", "3.2.0", ["@read", "@hash", "@fast"], Some(hstrlen)),
    spec!("hkeys", 2, ["readonly"], 1, 1, 1, Route::Single, "hash",
          "Get all the fields in a hash", "2.0.0", ["@read", "@hash", "@slow"], Some(hkeys)),
    spec!("hvals", 2, ["readonly"], 1, 1, 1, Route::Single, "hash",
          "Get all the values in a hash", "2.0.0", ["@read", "@hash", "@slow"], Some(hvals)),
    spec!("hgetall", 2, ["readonly"], 1, 1, 1, Route::Single, "hash",
          "Get all the fields and values in a hash", "2.0.0", ["@read", "@hash", "@slow"], Some(hgetall)),
    spec!("hincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "hash",
          "Increment the integer value of a hash field by the given number", "2.0.0", ["@write", "@hash", "@fast"], Some(hincrby)),
    spec!("hincrbyfloat", 4, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "hash",
          "Increment the float value of a hash field by the given amount", "2.6.0", ["@write", "@hash", "@fast"], Some(hincrbyfloat)),
    spec!("hrandfield", -2, ["readonly"], 1, 1, 1, Route::Single, "hash",
          "Get one or multiple random fields from a hash", "6.2.0", ["@read", "@hash", "@slow"], Some(hrandfield)),
    spec!("hscan", -3, ["readonly"], 1, 1, 1, Route::Single, "hash",
          "Incrementally iterate hash fields and associated values", "2.8.0", ["@read", "@hash", "@slow"], Some(hscan)),
];

/// Shared body of HSET (reply: fields added) and HMSET (reply: OK).
fn hset_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], name: &str) -> Frame {
    if args.len() % 2 == 1 {
        return wrong_args(name);
    }
    let added = collection::with_mut::<HashValue, _>(db, ctx, &args[1], |h| {
        args[2..]
            .chunks(2)
            .filter(|pair| h.insert(pair[0].clone(), pair[1].clone()))
            .count()
    });
    match added {
        Ok(added) => {
            ctx.log(args.to_vec());
            if name == "hset" {
                count_reply(added)
            } else {
                Frame::ok()
            }
        }
        Err(e) => e,
    }
}

/// HSET key field value [field value …] → number of new fields.
pub(crate) fn hset(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    hset_generic(db, ctx, args, "hset")
}

/// HMSET key field value [field value …] → OK.
pub(crate) fn hmset(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    hset_generic(db, ctx, args, "hmset")
}

/// HSETNX key field value → :1 if set, :0 if the field existed.
pub(crate) fn hsetnx(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let set = collection::with_mut::<HashValue, _>(db, ctx, &args[1], |h| {
        !h.contains(&args[2]) && h.insert(args[2].clone(), args[3].clone())
    });
    match set {
        Ok(true) => {
            ctx.log(args.to_vec());
            Frame::Integer(1)
        }
        Ok(false) => Frame::Integer(0),
        Err(e) => e,
    }
}

/// HGET key field → bulk or null.
pub(crate) fn hget(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(h) => h
            .and_then(|h| h.get(&args[2]))
            .map_or(Frame::Null, |v| Frame::Bulk(v.clone())),
        Err(e) => e,
    }
}

/// HMGET key field… → one bulk or null per field.
pub(crate) fn hmget(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(h) => Frame::Array(
            args[2..]
                .iter()
                .map(|f| {
                    h.and_then(|h| h.get(f))
                        .map_or(Frame::Null, |v| Frame::Bulk(v.clone()))
                })
                .collect(),
        ),
        Err(e) => e,
    }
}

/// HDEL key field… → number of fields removed; the key goes when the hash empties.
pub(crate) fn hdel(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    // On an absent key the closure sees an empty hash, removes nothing, stores nothing.
    let removed = collection::with_mut::<HashValue, _>(db, ctx, &args[1], |h| {
        args[2..].iter().filter(|f| h.remove(f)).count()
    });
    match removed {
        Ok(n) => {
            if n > 0 {
                ctx.log(args.to_vec());
            }
            count_reply(n)
        }
        Err(e) => e,
    }
}

/// HEXISTS key field → :1 or :0.
pub(crate) fn hexists(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(h) => Frame::Integer(h.is_some_and(|h| h.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

/// HLEN key → number of fields (0 if absent).
pub(crate) fn hlen(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(h) => count_reply(h.map_or(0, |h| h.len())),
        Err(e) => e,
    }
}

/// HSTRLEN key field → length of the value (0 if absent).
pub(crate) fn hstrlen(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(h) => count_reply(h.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len())),
        Err(e) => e,
    }
}

/// Shared body of HKEYS / HVALS / HGETALL: fields and/or values in hash order.
fn hget_all_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    fields: bool,
    values: bool,
) -> Frame {
    let h = match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return Frame::Array(vec![]),
        Err(e) => return e,
    };
    let mut out = Vec::with_capacity(h.len() * (fields as usize + values as usize));
    for (f, v) in h.iter() {
        if fields {
            out.push(Frame::Bulk(f.clone()));
        }
        if values {
            out.push(Frame::Bulk(v.clone()));
        }
    }
    Frame::Array(out)
}

pub(crate) fn hkeys(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    hget_all_generic(db, ctx, args, true, false)
}

pub(crate) fn hvals(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    hget_all_generic(db, ctx, args, false, true)
}

pub(crate) fn hgetall(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    hget_all_generic(db, ctx, args, true, true)
}

/// HINCRBY key field increment → the new value; logged as given.
pub(crate) fn hincrby(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let incr = match int_arg(&args[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let result = collection::with_mut::<HashValue, _>(db, ctx, &args[1], |h| {
        let cur = match h.get(&args[2]) {
            None => 0,
            Some(v) => parse_i64(v).ok_or("ERR hash value is not an integer")?,
        };
        let new = cur.checked_add(incr).ok_or(ERR_OVERFLOW)?;
        h.insert(args[2].clone(), int_bytes(new));
        Ok::<i64, &str>(new)
    });
    match result {
        Ok(Ok(new)) => {
            ctx.log(args.to_vec());
            Frame::Integer(new)
        }
        Ok(Err(text)) => Frame::error(text),
        Err(e) => e,
    }
}

/// HINCRBYFLOAT key field increment → the new value as Redis formats it (x87 long double,
/// `%.17Lf` trimmed); logged as `HSET key field result`.
pub(crate) fn hincrbyfloat(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let Some(incr) = LongDouble::parse(&args[3]) else {
        return Frame::error(ERR_NOT_FLOAT);
    };
    if !incr.is_finite() {
        return Frame::error("ERR value is NaN or Infinity");
    }
    let result = collection::with_mut::<HashValue, _>(db, ctx, &args[1], |h| {
        let cur = match h.get(&args[2]) {
            None => LongDouble::ZERO,
            Some(v) => LongDouble::parse(v).ok_or("ERR hash value is not a float")?,
        };
        let sum = cur.plus(incr);
        if !sum.is_finite() {
            return Err("ERR increment would produce NaN or Infinity");
        }
        let text = Bytes::from(sum.to_human_string());
        h.insert(args[2].clone(), text.clone());
        Ok(text)
    });
    match result {
        Ok(Ok(text)) => {
            ctx.log(vec![
                b("HSET"),
                args[1].clone(),
                args[2].clone(),
                text.clone(),
            ]);
            Frame::Bulk(text)
        }
        Ok(Err(text)) => Frame::error(text),
        Err(e) => e,
    }
}

/// Parses a random-element count like Redis `getRangeLongFromObjectOrReply(-LONG_MAX,
/// LONG_MAX)` (HRANDFIELD, SRANDMEMBER).
pub(super) fn parse_random_count(arg: &[u8]) -> Result<i64, Frame> {
    match int_arg(arg)? {
        i64::MIN => Err(Frame::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        n => Ok(n),
    }
}

/// Refuses a negative count whose reply would exceed [`RANDOM_COUNT_NEGATIVE_MAX`].
pub(super) fn check_negative_count(count: i64) -> Result<(), Frame> {
    if count < 0 && count.unsigned_abs() > RANDOM_COUNT_NEGATIVE_MAX {
        return Err(Frame::error(format!(
            "ERR value is out of range, a negative count may ask for at most {RANDOM_COUNT_NEGATIVE_MAX} elements"
        )));
    }
    Ok(())
}

/// A random index below `len` (> 0) from the command's seeded randomness.
pub(super) fn random_index(ctx: &mut ExecCtx, len: usize) -> usize {
    ((ctx.random)() % len as u64) as usize
}

/// `k` distinct random indexes below `n` (k < n), by Floyd's sampling: O(k log k).
pub(super) fn sample_distinct(ctx: &mut ExecCtx, n: usize, k: usize) -> Vec<usize> {
    assert!(k < n, "sample of {k} from {n}");
    let mut chosen = BTreeSet::new();
    let mut order = Vec::with_capacity(k);
    for j in n - k..n {
        let t = random_index(ctx, j + 1);
        let pick = if chosen.insert(t) { t } else { j };
        chosen.insert(pick);
        order.push(pick);
    }
    order
}

/// HRANDFIELD key [count [WITHVALUES]]: no count → one field or null; count ≥ 0 → up to
/// count distinct fields; count < 0 → |count| fields, repeats allowed. Logs nothing.
pub(crate) fn hrandfield(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let mut count = None;
    let mut with_values = false;
    if args.len() >= 3 {
        let n = match parse_random_count(&args[2]) {
            Ok(n) => n,
            Err(e) => return e,
        };
        if args.len() > 4 || (args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withvalues")) {
            return Frame::error(ERR_SYNTAX);
        }
        with_values = args.len() == 4;
        if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Frame::error("ERR value is out of range");
        }
        count = Some(n);
    }
    let h = match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) if count.is_some() => return Frame::Array(vec![]),
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    let Some(count) = count else {
        let (f, _) = h.get_index(random_index(ctx, h.len())).expect("in range");
        return Frame::Bulk(f.clone());
    };
    if let Err(e) = check_negative_count(count) {
        return e;
    }
    let indexes: Vec<usize> = if count < 0 {
        (0..count.unsigned_abs())
            .map(|_| random_index(ctx, h.len()))
            .collect()
    } else if count as u64 >= h.len() as u64 {
        (0..h.len()).collect()
    } else {
        sample_distinct(ctx, h.len(), count as usize)
    };
    let mut out = Vec::with_capacity(indexes.len() * (1 + with_values as usize));
    for i in indexes {
        let (f, v) = h.get_index(i).expect("in range");
        out.push(Frame::Bulk(f.clone()));
        if with_values {
            out.push(Frame::Bulk(v.clone()));
        }
    }
    Frame::Array(out)
}

/// Parses a SCAN-family cursor like Redis's `strtoul` check: optional sign, decimal
/// digits, wrapping negatives, at most u64.
pub(super) fn parse_cursor(s: &[u8]) -> Result<u64, Frame> {
    let invalid = || Frame::error("ERR invalid cursor");
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() && !s.is_empty() {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// HSCAN / SSCAN options: `[MATCH pattern] [COUNT n]` from `args[3..]`. Returns (count,
/// pattern; None = match everything). COUNT < 1 is a syntax error, as in Redis.
pub(super) fn parse_scan_opts(args: &[Bytes]) -> Result<(usize, Option<&[u8]>), Frame> {
    let mut count = SCAN_COUNT_DEFAULT;
    let mut pattern = None;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i][..];
        let has_value = i + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            match int_arg(&args[i + 1])? {
                n if n >= 1 => count = n.min(SCAN_VISIT_MAX_KEYS as i64) as usize,
                _ => return Err(Frame::error(ERR_SYNTAX)),
            }
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else {
            return Err(Frame::error(ERR_SYNTAX));
        }
        i += 2;
    }
    Ok((count, pattern))
}

/// The index walk behind HSCAN / SSCAN: a compact collection is visited whole, in order,
/// and the cursor is 0; otherwise up to `count` indexes below the cursor are visited
/// downwards (cursor = next index + 1, 0 = done). Calls `visit` with each index.
pub(super) fn scan_walk(
    len: usize,
    compact: bool,
    cursor: u64,
    count: usize,
    mut visit: impl FnMut(usize),
) -> u64 {
    if compact {
        (0..len).for_each(visit);
        return 0;
    }
    let len = len as u64;
    let mut pos = if cursor == 0 { len } else { cursor.min(len) };
    let mut visited = 0;
    while pos > 0 && visited < count {
        pos -= 1;
        visited += 1;
        visit(pos as usize);
    }
    pos
}

/// The `[cursor, [elements…]]` reply of the SCAN family.
pub(super) fn scan_reply(cursor: u64, elements: Vec<Frame>) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(cursor.to_string())),
        Frame::Array(elements),
    ])
}

/// HSCAN key cursor [MATCH pattern] [COUNT n] → [next-cursor, [field, value, …]]. Every
/// field present for the whole scan is returned at least once.
pub(crate) fn hscan(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let cursor = match parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let h = match collection::read::<HashValue>(db, ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return scan_reply(0, vec![]),
        Err(e) => return e,
    };
    let (count, pattern) = match parse_scan_opts(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    let next = scan_walk(h.len(), h.is_compact(), cursor, count, |i| {
        let (f, v) = h.get_index(i).expect("index below len");
        if pattern.is_none_or(|p| glob_match(p, f)) {
            out.push(Frame::Bulk(f.clone()));
            out.push(Frame::Bulk(v.clone()));
        }
    });
    scan_reply(next, out)
}

#[cfg(test)]
#[path = "tests/hashes.rs"]
mod tests;
