//! Generic keyspace commands (Redis 7.0 db.c semantics): DEL UNLINK EXISTS TOUCH TYPE
//! RENAME RENAMENX KEYS SCAN RANDOMKEY DBSIZE FLUSHDB FLUSHALL.
//!
//! SCAN cursor (per shard): 0 starts a scan and 0 ends it; any other value `c` means "the
//! next index to visit is `c - 1`", walking the keyspace's index order DOWNWARDS. Deletes
//! use `swap_remove`, which moves the last (already visited) entry into the hole, so every
//! key present for the whole scan is returned at least once. A returned cursor is at most
//! the shard's key count, so callers may pack a shard id into the high 16 bits.
//! What can fail: syntax, cursor and COUNT parsing, RENAME of a missing key.

use bytes::Bytes;

use super::{count_reply, int_arg, ExecCtx, ERR_NO_SUCH_KEY, ERR_SYNTAX};
use crate::keyspace::glob::glob_match;
use crate::keyspace::Db;
use crate::resp::Frame;

/// Default SCAN COUNT (Redis: 10).
pub const SCAN_COUNT_DEFAULT: usize = 10;
/// Upper bound on the index slots one SCAN call visits, whatever COUNT says.
pub const SCAN_VISIT_MAX_KEYS: usize = 100_000;

/// DEL / UNLINK key… → number of keys removed; logs one DEL of the keys that existed.
pub(crate) fn del(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let mut logged = vec![Bytes::from_static(b"DEL")];
    for key in &args[1..] {
        db.expire_if_needed(ctx, key);
        if let Some((k, _)) = db.remove_entry(key) {
            logged.push(k);
        }
    }
    let removed = logged.len() - 1;
    if removed > 0 {
        ctx.log(logged);
    }
    count_reply(removed)
}

/// EXISTS / TOUCH key… → how many of the keys exist, counting repeats.
pub(crate) fn exists(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let n = args[1..].iter().filter(|k| db.contains(ctx, k)).count();
    count_reply(n)
}

/// TYPE key → +string / +none ….
pub(crate) fn type_(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let name = db
        .get(ctx, &args[1])
        .map_or("none", |e| e.value.type_name());
    Frame::Simple(name.to_string())
}

/// Shared body of RENAME / RENAMENX (Redis `renameGenericCommand`).
fn rename_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], nx: bool) -> Frame {
    let (src, dst) = (&args[1], &args[2]);
    if !db.contains(ctx, src) {
        return Frame::error(ERR_NO_SUCH_KEY);
    }
    let done = if nx { Frame::Integer(1) } else { Frame::ok() };
    if src == dst {
        return if nx { Frame::Integer(0) } else { done };
    }
    if nx && db.contains(ctx, dst) {
        return Frame::Integer(0);
    }
    let (_, entry) = db.remove_entry(src).expect("checked above");
    db.insert(dst.clone(), entry.value, entry.expire_at_ms);
    ctx.log(args.to_vec());
    done
}

pub(crate) fn rename(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    rename_generic(db, ctx, args, false)
}

pub(crate) fn renamenx(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    rename_generic(db, ctx, args, true)
}

/// KEYS pattern → every live key matching the glob (expired keys are skipped, not deleted).
pub(crate) fn keys(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let out = db
        .iter()
        .filter(|(k, e)| !Db::is_expired(e, ctx) && (all || glob_match(pattern, k)))
        .map(|(k, _)| Frame::Bulk(k.clone()))
        .collect();
    Frame::Array(out)
}

/// Parses a SCAN cursor like Redis's `strtoul` check: optional sign, decimal digits,
/// wrapping negatives; "" is 0.
fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() && !s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type] → [next-cursor, [keys…]].
pub(crate) fn scan(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let Some(cursor) = parse_cursor(&args[1]) else {
        return Frame::error("ERR invalid cursor");
    };
    let mut count = SCAN_COUNT_DEFAULT;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i][..];
        let has_value = i + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            match int_arg(&args[i + 1]) {
                Ok(n) if n >= 1 => count = n.min(SCAN_VISIT_MAX_KEYS as i64) as usize,
                Ok(_) => return Frame::error(ERR_SYNTAX),
                Err(e) => return e,
            }
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else if opt.eq_ignore_ascii_case(b"type") && has_value {
            type_name = Some(&args[i + 1][..]);
        } else {
            return Frame::error(ERR_SYNTAX);
        }
        i += 2;
    }
    let (keys, next) = scan_step(db, ctx, cursor, count, pattern, type_name);
    let keys = keys.into_iter().map(Frame::Bulk).collect();
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(keys),
    ])
}

/// Visits up to `count` index slots below the cursor; returns matching live keys and the
/// next cursor (0 when the walk reached index 0).
pub fn scan_step(
    db: &Db,
    ctx: &ExecCtx,
    cursor: u64,
    count: usize,
    pattern: Option<&[u8]>,
    type_name: Option<&[u8]>,
) -> (Vec<Bytes>, u64) {
    let len = db.len() as u64;
    // Next index to visit, plus one (so 0 means "nothing left").
    let mut pos = if cursor == 0 { len } else { cursor.min(len) };
    let mut out = Vec::new();
    let mut visited = 0usize;
    while pos > 0 && visited < count {
        pos -= 1;
        visited += 1;
        let (k, e) = db.get_index(pos as usize).expect("index below len");
        if Db::is_expired(e, ctx) {
            continue;
        }
        if pattern.is_some_and(|p| !glob_match(p, k)) {
            continue;
        }
        if type_name.is_some_and(|t| !t.eq_ignore_ascii_case(e.value.type_name().as_bytes())) {
            continue;
        }
        out.push(k.clone());
    }
    (out, pos)
}

/// RANDOMKEY → a random live key, or null when the shard holds none. Expired keys met on
/// the way are deleted (and logged as DEL), like Redis.
pub(crate) fn randomkey(db: &mut Db, ctx: &mut ExecCtx, _args: &[Bytes]) -> Frame {
    for _ in 0..crate::keyspace::RANDOM_KEY_TRIES_MAX {
        if db.is_empty() {
            return Frame::Null;
        }
        let idx = ((ctx.random)() % db.len() as u64) as usize;
        let key = db
            .get_index(idx)
            .map(|(k, _)| k.clone())
            .expect("index below len");
        if !db.expire_if_needed(ctx, &key) {
            return Frame::Bulk(key);
        }
    }
    // Mostly expired keys: fall back to a bounded linear walk that deletes nothing.
    db.iter()
        .find(|(_, e)| !Db::is_expired(e, ctx))
        .map_or(Frame::Null, |(k, _)| Frame::Bulk(k.clone()))
}

/// DBSIZE → number of keys in this shard (expired but not yet reclaimed keys included).
pub(crate) fn dbsize(db: &mut Db, _ctx: &mut ExecCtx, _args: &[Bytes]) -> Frame {
    count_reply(db.len())
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC] → OK.
pub(crate) fn flush(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if args.len() > 2 {
        return Frame::error(ERR_SYNTAX);
    }
    if let Some(mode) = args.get(1) {
        if !mode.eq_ignore_ascii_case(b"async") && !mode.eq_ignore_ascii_case(b"sync") {
            return Frame::error(ERR_SYNTAX);
        }
    }
    db.clear();
    ctx.log(args.to_vec());
    Frame::ok()
}
