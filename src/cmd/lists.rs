//! List commands (Redis 7.0 t_list.c semantics): LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN
//! LRANGE LINDEX LSET LINSERT LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, and the non-blocking
//! attempt of BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP.
//!
//! A blocking command's handler is its *attempt*: it validates every argument (timeout
//! included, in Redis's order), serves the client at once if a key holds elements, and
//! otherwise replies `*-1` (NullArray), which is also Redis's reply when blocking is not
//! allowed (MULTI) and on timeout. `Shard::run_blocking` (src/shard/blocking.rs) sees that
//! reply, parks the client with [`blocking_wait_spec`] and retries when a key gets ready.
//!
//! AOF propagation is deterministic: pushes, LSET, LINSERT, LREM, LTRIM, LMOVE and
//! RPOPLPUSH log as given; pops log as `LPOP|RPOP key [n]` with the count actually popped
//! (LMPOP/BLMPOP included); BLPOP/BRPOP log `LPOP|RPOP key`; BLMOVE/BRPOPLPUSH log LMOVE.
//! What can fail: syntax, integer/timeout parsing and WRONGTYPE, with Redis's exact text.

use super::static_bytes as b;
use std::time::Duration;

use bytes::Bytes;

use super::table::spec;
use super::{count_reply, int_arg, parse_i64, wrongtype, CommandSpec, ExecCtx, Route, ERR_SYNTAX};
use crate::keyspace::list::{End, ListValue};
use crate::keyspace::longdouble::LongDouble;
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;

/// The list family's table slice (arity, flags, key specs and ACL categories from
/// redis-server 7.0 `COMMAND INFO`).
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!("lpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "list",
          "Prepend one or multiple elements to a list", "1.0.0", ["@write", "@list", "@fast"], Some(lpush)),
    spec!("rpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "list",
          "Append one or multiple elements to a list", "1.0.0", ["@write", "@list", "@fast"], Some(rpush)),
    spec!("lpushx", -3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "list",
          "Prepend an element to a list, only if the list exists", "2.2.0", ["@write", "@list", "@fast"], Some(lpushx)),
    spec!("rpushx", -3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "list",
          "Append an element to a list, only if the list exists", "2.2.0", ["@write", "@list", "@fast"], Some(rpushx)),
    spec!("lpop", -2, ["write", "fast"], 1, 1, 1, Route::Single, "list",
          "Remove and get the first elements in a list", "1.0.0", ["@write", "@list", "@fast"], Some(lpop)),
    spec!("rpop", -2, ["write", "fast"], 1, 1, 1, Route::Single, "list",
          "Remove and get the last elements in a list", "1.0.0", ["@write", "@list", "@fast"], Some(rpop)),
    spec!("llen", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "list",
          "Get the length of a list", "1.0.0", ["@read", "@list", "@fast"], Some(llen)),
    spec!("lrange", 4, ["readonly"], 1, 1, 1, Route::Single, "list",
          "Get a range of elements from a list", "1.0.0", ["@read", "@list", "@slow"], Some(lrange)),
    spec!("lindex", 3, ["readonly"], 1, 1, 1, Route::Single, "list",
          "Get an element from a list by its index", "1.0.0", ["@read", "@list", "@slow"], Some(lindex)),
    spec!("lset", 4, ["write", "denyoom"], 1, 1, 1, Route::Single, "list",
          "Set the value of an element in a list by its index", "1.0.0", ["@write", "@list", "@slow"], Some(lset)),
    spec!("linsert", 5, ["write", "denyoom"], 1, 1, 1, Route::Single, "list",
          "Insert an element before or after another element in a list", "2.2.0", ["@write", "@list", "@slow"], Some(linsert)),
    spec!("lrem", 4, ["write"], 1, 1, 1, Route::Single, "list",
          "Remove elements from a list", "1.0.0", ["@write", "@list", "@slow"], Some(lrem)),
    spec!("ltrim", 4, ["write"], 1, 1, 1, Route::Single, "list",
          "Trim a list to the specified range", "1.0.0", ["@write", "@list", "@slow"], Some(ltrim)),
    spec!("lpos", -3, ["readonly"], 1, 1, 1, Route::Single, "list",
          "Return the index of matching elements on a list", "6.0.6", ["@read", "@list", "@slow"], Some(lpos)),
    spec!("lmove", 5, ["write", "denyoom"], 1, 2, 1, Route::SameShard, "list",
          "Pop an element from a list, push it to another list and return it", "6.2.0", ["@write", "@list", "@slow"], Some(lmove)),
    spec!("rpoplpush", 3, ["write", "denyoom"], 1, 2, 1, Route::SameShard, "list",
          "Remove the last element in a list, prepend it to another list and return it", "1.2.0", ["@write", "@list", "@slow"], Some(rpoplpush)),
    spec!("lmpop", -4, ["write", "movablekeys"], 0, 0, 0, Route::SameShard, "list",
          "Pop elements from a list", "7.0.0", ["@write", "@list", "@slow"], Some(lmpop)),
    spec!("blpop", -3, ["write", "noscript", "blocking"], 1, -2, 1, Route::SameShard, "list",
          "Remove and get the first element in a list, or block until one is available", "2.0.0", ["@write", "@list", "@slow", "@blocking"], Some(blpop)),
    spec!("brpop", -3, ["write", "noscript", "blocking"], 1, -2, 1, Route::SameShard, "list",
          "Remove and get the last element in a list, or block until one is available", "2.0.0", ["@write", "@list", "@slow", "@blocking"], Some(brpop)),
    spec!("blmove", 6, ["write", "denyoom", "noscript", "blocking"], 1, 2, 1, Route::SameShard, "list",
          "Pop an element from a list, push it to another list and return it; or block until one is available", "6.2.0", ["@write", "@list", "@slow", "@blocking"], Some(blmove)),
    spec!("brpoplpush", 4, ["write", "denyoom", "noscript", "blocking"], 1, 2, 1, Route::SameShard, "list",
          "Pop an element from a list, push it to another list and return it; or block until one is available", "2.2.0", ["@write", "@list", "@slow", "@blocking"], Some(brpoplpush)),
    spec!("blmpop", -5, ["write", "blocking", "movablekeys"], 0, 0, 0, Route::SameShard, "list",
          "Pop elements from a list, or block until one is available", "7.0.0", ["@write", "@list", "@slow", "@blocking"], Some(blmpop)),
];

const ERR_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
const ERR_COUNT: &str = "ERR count should be greater than 0";
const ERR_TIMEOUT_FLOAT: &str = "ERR timeout is not a float or out of range";
const ERR_TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";

fn end_name(end: End, pop: bool) -> Bytes {
    match (end, pop) {
        (End::Left, true) => b("LPOP"),
        (End::Right, true) => b("RPOP"),
        (End::Left, false) => b("LEFT"),
        (End::Right, false) => b("RIGHT"),
    }
}

fn parse_end(arg: &[u8]) -> Result<End, Frame> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Left)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Right)
    } else {
        Err(Frame::error(ERR_SYNTAX))
    }
}

/// The live list at `key`: Ok(None) if absent, Err(WRONGTYPE) for another type.
fn get_list<'a>(
    db: &'a mut Db,
    ctx: &mut ExecCtx,
    key: &[u8],
) -> Result<Option<&'a ListValue>, Frame> {
    match db.get(ctx, key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(wrongtype()),
        },
    }
}

/// Applies `f` to the list at `key` (which must exist), deleting the key if it empties.
fn with_list<R>(db: &mut Db, key: &[u8], f: impl FnOnce(&mut ListValue) -> R) -> R {
    let (out, empty) = db
        .update_value(key, |v| match v {
            Value::List(l) => {
                let out = f(l);
                (out, l.is_empty())
            }
            _ => unreachable!("type checked by the caller"),
        })
        .expect("key checked by the caller");
    if empty {
        db.remove_entry(key);
    }
    out
}

/// Pushes `items` at `end` of the list at `key`, creating it; the type was checked.
fn push_items(db: &mut Db, key: &Bytes, end: End, items: &[Bytes]) -> usize {
    if db.peek(key).is_none() {
        db.insert(key.clone(), Value::List(ListValue::new()), None);
    }
    with_list(db, key, |l| {
        for item in items {
            l.push(end, item.clone());
        }
        l.len()
    })
}

/// Pops up to `n` elements from `end` of the (existing, type-checked) list at `key`.
fn pop_items(db: &mut Db, key: &[u8], end: End, n: usize) -> Vec<Bytes> {
    with_list(db, key, |l| (0..n).map_while(|_| l.pop(end)).collect())
}

fn push_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    end: End,
    only_existing: bool,
) -> Frame {
    let key = &args[1];
    match get_list(db, ctx, key) {
        Err(e) => return e,
        Ok(None) if only_existing => return Frame::Integer(0),
        Ok(_) => {}
    }
    let len = push_items(db, key, end, &args[2..]);
    ctx.log(args.to_vec());
    count_reply(len)
}

/// LPUSH key element… → new length.
pub(crate) fn lpush(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    push_generic(db, ctx, args, End::Left, false)
}

/// RPUSH key element… → new length.
pub(crate) fn rpush(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    push_generic(db, ctx, args, End::Right, false)
}

/// LPUSHX key element… → new length, 0 when the key is missing.
pub(crate) fn lpushx(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    push_generic(db, ctx, args, End::Left, true)
}

/// RPUSHX key element… → new length, 0 when the key is missing.
pub(crate) fn rpushx(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    push_generic(db, ctx, args, End::Right, true)
}

fn pop_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], end: End) -> Frame {
    if args.len() > 3 {
        return super::wrong_args(if end == End::Left { "lpop" } else { "rpop" });
    }
    let count = match args.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Frame::error(ERR_NOT_POSITIVE),
        },
    };
    let key = &args[1];
    match get_list(db, ctx, key) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Frame::NullArray
            } else {
                Frame::Null
            }
        }
        Ok(Some(_)) => {}
    }
    match count {
        None => {
            let item = pop_items(db, key, end, 1)
                .pop()
                .expect("stored lists are non-empty");
            ctx.log(vec![end_name(end, true), key.clone()]);
            Frame::Bulk(item)
        }
        Some(0) => Frame::Array(Vec::new()),
        Some(n) => {
            let items = pop_items(db, key, end, n);
            let popped = super::int_bytes(items.len() as i64);
            ctx.log(vec![end_name(end, true), key.clone(), popped]);
            Frame::Array(items.into_iter().map(Frame::Bulk).collect())
        }
    }
}

/// LPOP key [count] → element / null, or with count an array / `*-1`.
pub(crate) fn lpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    pop_generic(db, ctx, args, End::Left)
}

/// RPOP key [count] → element / null, or with count an array / `*-1`.
pub(crate) fn rpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    pop_generic(db, ctx, args, End::Right)
}

/// LLEN key → length (0 when missing).
pub(crate) fn llen(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_list(db, ctx, &args[1]) {
        Ok(l) => count_reply(l.map_or(0, ListValue::len)),
        Err(e) => e,
    }
}

/// LRANGE key start stop → elements (indexes parsed before the key is read).
pub(crate) fn lrange(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (start, stop) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match get_list(db, ctx, &args[1]) {
        Err(e) => e,
        Ok(None) => Frame::Array(Vec::new()),
        Ok(Some(l)) => match l.clamp_range(start, stop) {
            None => Frame::Array(Vec::new()),
            Some((from, to)) => Frame::Array(l.range(from, to).cloned().map(Frame::Bulk).collect()),
        },
    }
}

/// LINDEX key index → element or null (the key is read before the index is parsed).
pub(crate) fn lindex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let list = match get_list(db, ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Frame::Null,
        Ok(Some(l)) => l,
    };
    match int_arg(&args[2]) {
        Ok(i) => list.get(i).cloned().map_or(Frame::Null, Frame::Bulk),
        Err(e) => e,
    }
}

/// LSET key index element → OK; `ERR no such key`, `ERR index out of range`.
pub(crate) fn lset(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let list = match get_list(db, ctx, key) {
        Err(e) => return e,
        Ok(None) => return Frame::error(super::ERR_NO_SUCH_KEY),
        Ok(Some(l)) => l,
    };
    let index = match int_arg(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    if list.resolve(index).is_none() {
        return Frame::error("ERR index out of range");
    }
    with_list(db, key, |l| l.set(index, args[3].clone()));
    ctx.log(args.to_vec());
    Frame::ok()
}

/// LINSERT key BEFORE|AFTER pivot element → new length, -1 without pivot, 0 without key.
pub(crate) fn linsert(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return Frame::error(ERR_SYNTAX);
    };
    let key = &args[1];
    let pos = match get_list(db, ctx, key) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(l)) => l.position(&args[3]),
    };
    let Some(pos) = pos else {
        return Frame::Integer(-1);
    };
    let len = with_list(db, key, |l| {
        l.insert_at(pos + usize::from(after), args[4].clone());
        l.len()
    });
    ctx.log(args.to_vec());
    count_reply(len)
}

/// LREM key count element → removed count (count < 0 scans from the tail, 0 = all).
pub(crate) fn lrem(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let count = match int_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let key = &args[1];
    match get_list(db, ctx, key) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(_)) => {}
    }
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = with_list(db, key, |l| l.remove_matching(&args[3], limit, count < 0));
    if removed > 0 {
        ctx.log(args.to_vec());
    }
    count_reply(removed)
}

/// LTRIM key start stop → OK (indexes parsed before the key is read).
pub(crate) fn ltrim(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (start, stop) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let key = &args[1];
    match get_list(db, ctx, key) {
        Err(e) => return e,
        Ok(None) => return Frame::ok(),
        Ok(Some(_)) => {}
    }
    with_list(db, key, |l| {
        let keep = l.clamp_range(start, stop);
        l.retain_range(keep)
    });
    ctx.log(args.to_vec());
    Frame::ok()
}

/// LPOS key element [RANK r] [COUNT n] [MAXLEN m] → index / null, or with COUNT an array.
pub(crate) fn lpos(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i][..];
        // Redis checks the option name (and that a value follows) before the value; COUNT
        // and MAXLEN report a non-integer value with their own "can't be negative" text.
        let Some(value) = args.get(i + 1) else {
            return Frame::error(ERR_SYNTAX);
        };
        let own_error = if opt.eq_ignore_ascii_case(b"count") {
            Some("ERR COUNT can't be negative")
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            Some("ERR MAXLEN can't be negative")
        } else if opt.eq_ignore_ascii_case(b"rank") {
            None
        } else {
            return Frame::error(ERR_SYNTAX);
        };
        let n = match (int_arg(value), own_error) {
            (Ok(n), _) => n,
            (Err(_), Some(text)) => return Frame::error(text),
            (Err(e), None) => return e,
        };
        if opt.eq_ignore_ascii_case(b"rank") {
            if n == 0 {
                return Frame::error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            rank = n;
        } else if opt.eq_ignore_ascii_case(b"count") {
            if n < 0 {
                return Frame::error("ERR COUNT can't be negative");
            }
            count = Some(n);
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            if n < 0 {
                return Frame::error("ERR MAXLEN can't be negative");
            }
            maxlen = n;
        } else {
            return Frame::error(ERR_SYNTAX);
        }
        i += 2;
    }
    let list = match get_list(db, ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Frame::Array(Vec::new())
            } else {
                Frame::Null
            }
        }
        Ok(Some(l)) => l,
    };
    let len = list.len();
    let scan_max = if maxlen == 0 {
        len
    } else {
        (maxlen as u64).min(len as u64) as usize
    };
    // Redis: RANK i64::MIN behaves like -1 (skip nothing, scan from the tail).
    let skip = if rank == i64::MIN {
        0
    } else {
        rank.unsigned_abs() - 1
    };
    let want = match count {
        None => 1,
        Some(0) => u64::MAX,
        Some(n) => n as u64,
    };
    let from_tail = rank < 0;
    let (mut seen, mut found) = (0u64, Vec::new());
    let positions: Box<dyn Iterator<Item = (usize, &Bytes)>> = if from_tail {
        Box::new(list.iter().enumerate().rev().take(scan_max))
    } else {
        Box::new(list.iter().enumerate().take(scan_max))
    };
    for (pos, item) in positions {
        if item[..] != args[2][..] {
            continue;
        }
        seen += 1;
        if seen > skip {
            found.push(Frame::Integer(pos as i64));
            if found.len() as u64 >= want {
                break;
            }
        }
    }
    match count {
        Some(_) => Frame::Array(found),
        None => found.pop().unwrap_or(Frame::Null),
    }
}

/// The shared body of LMOVE / RPOPLPUSH / their blocking attempts: pops from `src` at
/// `from`, pushes onto `dst` at `to`. `None` when `src` is missing (caller picks the reply).
fn move_element(
    db: &mut Db,
    ctx: &mut ExecCtx,
    src: &Bytes,
    dst: &Bytes,
    from: End,
    to: End,
) -> Result<Option<Bytes>, Frame> {
    if get_list(db, ctx, src)?.is_none() {
        return Ok(None);
    }
    get_list(db, ctx, dst)?;
    // Moving the only element of a list onto itself pops (deleting the key) then pushes:
    // keep the TTL, as Redis does (found by the differential test).
    let same_key_ttl = if src == dst {
        db.peek(src).and_then(|e| e.expire_at_ms)
    } else {
        None
    };
    let item = pop_items(db, src, from, 1)
        .pop()
        .expect("stored lists are non-empty");
    push_items(db, dst, to, std::slice::from_ref(&item));
    if let Some(at) = same_key_ttl {
        db.set_expire(dst, Some(at));
    }
    ctx.log(vec![
        b("LMOVE"),
        src.clone(),
        dst.clone(),
        end_name(from, false),
        end_name(to, false),
    ]);
    Ok(Some(item))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT → the moved element or null.
pub(crate) fn lmove(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (from, to) = match (parse_end(&args[3]), parse_end(&args[4])) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match move_element(db, ctx, &args[1], &args[2], from, to) {
        Ok(item) => item.map_or(Frame::Null, Frame::Bulk),
        Err(e) => e,
    }
}

/// RPOPLPUSH source destination → the moved element or null.
pub(crate) fn rpoplpush(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match move_element(db, ctx, &args[1], &args[2], End::Right, End::Left) {
        Ok(item) => item.map_or(Frame::Null, Frame::Bulk),
        Err(e) => e,
    }
}

/// Parsed `numkeys key… LEFT|RIGHT [COUNT n]` starting at `args[at]` (LMPOP/BLMPOP).
struct MpopArgs {
    keys: std::ops::Range<usize>,
    end: End,
    count: usize,
}

fn parse_mpop(args: &[Bytes], at: usize) -> Result<MpopArgs, Frame> {
    let numkeys = match parse_i64(&args[at]) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(Frame::error(ERR_NUMKEYS)),
    };
    let where_at = (at as u64 + 1).saturating_add(numkeys);
    if where_at >= args.len() as u64 {
        return Err(Frame::error(ERR_SYNTAX));
    }
    let where_at = where_at as usize;
    let end = parse_end(&args[where_at])?;
    // Redis parses options left to right: a COUNT (once, with a value) is checked before
    // anything after it, so `COUNT x extra` reports the count, `COUNT 1 extra` the syntax.
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                Some(n) if n > 0 => count = Some(n as usize),
                _ => return Err(Frame::error(ERR_COUNT)),
            }
            j += 2;
        } else {
            return Err(Frame::error(ERR_SYNTAX));
        }
    }
    let count = count.unwrap_or(1);
    Ok(MpopArgs {
        keys: at + 1..where_at,
        end,
        count,
    })
}

/// Pops from the first non-empty list among `keys` → `[key, [elements…]]` or `*-1`.
fn mpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], parsed: MpopArgs) -> Frame {
    for key in &args[parsed.keys] {
        match get_list(db, ctx, key) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        let items = pop_items(db, key, parsed.end, parsed.count);
        let popped = super::int_bytes(items.len() as i64);
        ctx.log(vec![end_name(parsed.end, true), key.clone(), popped]);
        let items = items.into_iter().map(Frame::Bulk).collect();
        return Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(items)]);
    }
    Frame::NullArray
}

/// LMPOP numkeys key… LEFT|RIGHT [COUNT n] → `[key, [elements…]]` or `*-1`.
pub(crate) fn lmpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match parse_mpop(args, 1) {
        Ok(parsed) => mpop(db, ctx, args, parsed),
        Err(e) => e,
    }
}

/// Parses a blocking timeout in seconds like Redis 7.0 `getTimeoutFromObjectOrReply`:
/// a `strtold` float, times 1000, rounded up to whole ms; 0 ms means "forever" (`None`).
/// Errors: `ERR timeout is not a float or out of range`, `ERR timeout is negative` (also for
/// values past `i64::MAX` ms, which overflow negative in Redis).
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Frame> {
    let value = LongDouble::parse(arg).ok_or_else(|| Frame::error(ERR_TIMEOUT_FLOAT))?;
    let seconds: f64 = if value.is_finite() {
        value
            .to_human_string()
            .parse()
            .map_err(|_| Frame::error(ERR_TIMEOUT_FLOAT))?
    } else {
        f64::INFINITY
    };
    let ms = (seconds * 1000.0).ceil();
    // ms is never NaN here (LongDouble::parse refuses NaN); 2^63 ms overflows in Redis.
    if ms >= i64::MAX as f64 || ms < 0.0 {
        return Err(Frame::error(ERR_TIMEOUT_NEGATIVE));
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// BLPOP/BRPOP attempt: pops one element from the first non-empty key.
fn bpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], end: End) -> Frame {
    if let Err(e) = parse_timeout(&args[args.len() - 1]) {
        return e;
    }
    for key in &args[1..args.len() - 1] {
        match get_list(db, ctx, key) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        let item = pop_items(db, key, end, 1)
            .pop()
            .expect("stored lists are non-empty");
        ctx.log(vec![end_name(end, true), key.clone()]);
        return Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(item)]);
    }
    Frame::NullArray
}

/// BLPOP key… timeout (attempt) → `[key, element]`, or `*-1` when every key is empty.
pub(crate) fn blpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    bpop(db, ctx, args, End::Left)
}

/// BRPOP key… timeout (attempt) → `[key, element]`, or `*-1` when every key is empty.
pub(crate) fn brpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    bpop(db, ctx, args, End::Right)
}

fn bmove(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    from: End,
    to: End,
    timeout: &[u8],
) -> Frame {
    if let Err(e) = parse_timeout(timeout) {
        return e;
    }
    match move_element(db, ctx, &args[1], &args[2], from, to) {
        Ok(item) => item.map_or(Frame::NullArray, Frame::Bulk),
        Err(e) => e,
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout (attempt) → element or `*-1`.
pub(crate) fn blmove(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match (parse_end(&args[3]), parse_end(&args[4])) {
        (Ok(from), Ok(to)) => bmove(db, ctx, args, from, to, &args[5]),
        (Err(e), _) | (_, Err(e)) => e,
    }
}

/// BRPOPLPUSH source destination timeout (attempt) → element or `*-1`.
pub(crate) fn brpoplpush(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    bmove(db, ctx, args, End::Right, End::Left, &args[3])
}

/// BLMPOP timeout numkeys key… LEFT|RIGHT [COUNT n] (attempt) → `[key, [elements…]]`/`*-1`.
pub(crate) fn blmpop(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if let Err(e) = parse_timeout(&args[1]) {
        return e;
    }
    match parse_mpop(args, 2) {
        Ok(parsed) => mpop(db, ctx, args, parsed),
        Err(e) => e,
    }
}

/// What a blocked client waits on: its keys (in argument order) and its timeout (`None` =
/// forever). `None` if `args` is not a valid blocking list command (the attempt, which has
/// already run, replied with the error).
pub fn blocking_wait_spec(args: &[Bytes]) -> Option<(Vec<Bytes>, Option<Duration>)> {
    let name = args.first()?;
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let (keys, timeout): (Vec<Bytes>, &Bytes) = if is("blpop") || is("brpop") {
        let (timeout, keys) = args[1..].split_last()?;
        (keys.to_vec(), timeout)
    } else if is("blmove") {
        (vec![args.get(1)?.clone()], args.get(5)?)
    } else if is("brpoplpush") {
        (vec![args.get(1)?.clone()], args.get(3)?)
    } else if is("blmpop") {
        let parsed = parse_mpop(args, 2).ok()?;
        (args[parsed.keys].to_vec(), args.get(1)?)
    } else {
        return None;
    };
    let timeout = parse_timeout(timeout).ok()?;
    (!keys.is_empty()).then_some((keys, timeout))
}

/// Keys of LMPOP/BLMPOP (movable keys: `numkeys` at 1 or 2), for routing. Empty if the
/// command is not one of them or its numkeys is invalid (the handler then reports it).
pub fn movable_key_indexes(args: &[Bytes]) -> Vec<usize> {
    let at = match args.first() {
        Some(n) if n.eq_ignore_ascii_case(b"lmpop") => 1,
        Some(n) if n.eq_ignore_ascii_case(b"blmpop") => 2,
        _ => return Vec::new(),
    };
    let Some(n) = args.get(at).and_then(|n| parse_i64(n)).filter(|n| *n > 0) else {
        return Vec::new();
    };
    let last = (at as u64)
        .saturating_add(n as u64)
        .min(args.len() as u64 - 1) as usize;
    (at + 1..=last).collect()
}
