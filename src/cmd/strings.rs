//! String commands (Redis 7.0 t_string.c semantics): GET SET SETNX SETEX PSETEX GETSET
//! GETDEL GETEX MGET MSET MSETNX APPEND STRLEN GETRANGE SUBSTR SETRANGE INCR DECR INCRBY
//! DECRBY INCRBYFLOAT.
//!
//! Each handler parses its arguments, applies the change, pushes the AOF form onto
//! `ctx.log` (absolute TTLs only; nothing for a no-op) and returns the reply.
//! What can fail: syntax, integer/float parsing, expire-time range, overflow and the
//! 512 MB string limit, each with Redis's exact error text.

use super::static_bytes as b;
use bytes::{Bytes, BytesMut};

use super::{
    count_reply, int_arg, int_bytes, parse_i64, wrong_args, wrongtype, ExecCtx, ERR_NOT_FLOAT,
    ERR_OVERFLOW, ERR_STRING_TOO_LONG, ERR_SYNTAX, STRING_LEN_MAX_BYTES,
};
use crate::keyspace::longdouble::LongDouble;
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

/// The string payload of a value, or None for other types (→ WRONGTYPE).
pub(crate) fn as_str(v: &Value) -> Option<&Bytes> {
    match v {
        Value::Str(b) => Some(b),
        _ => None,
    }
}

/// The live string at `key`: Ok(None) if absent, Err(WRONGTYPE) for another type.
fn get_string(db: &mut Db, ctx: &mut ExecCtx, key: &[u8]) -> Result<Option<Bytes>, Frame> {
    match db.get(ctx, key) {
        None => Ok(None),
        Some(e) => as_str(&e.value).cloned().map(Some).ok_or_else(wrongtype),
    }
}

fn bulk_or_null(v: Option<Bytes>) -> Frame {
    v.map(Frame::Bulk).unwrap_or(Frame::Null)
}

/// Which expire option was given, and its unit/base.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    Exat,
    Pxat,
}

/// Parsed SET / GETEX options (Redis `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct ExtOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, Bytes)>,
}

/// Parses options from `args[start..]`; `is_set` selects SET (NX XX GET KEEPTTL) versus
/// GETEX (PERSIST). Exclusions follow Redis exactly (e.g. `EX 1 EX 2` is accepted).
fn parse_ext(args: &[Bytes], start: usize, is_set: bool) -> Result<ExtOpts, Frame> {
    let mut o = ExtOpts::default();
    let mut j = start;
    while j < args.len() {
        let opt = &args[j][..];
        let next = args.get(j + 1);
        let kind = o.expire.as_ref().map(|(k, _)| *k);
        let other_expire = |k: ExpireKind| kind.is_some_and(|have| have != k);
        let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
        if is_set && is("nx") && !o.xx {
            o.nx = true;
        } else if is_set && is("xx") && !o.nx {
            o.xx = true;
        } else if is_set && is("get") {
            o.get = true;
        } else if is_set && is("keepttl") && !o.persist && kind.is_none() {
            o.keepttl = true;
        } else if !is_set && is("persist") && kind.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(k), Some(v)) = (expire_kind(opt), next) {
            if o.keepttl || o.persist || other_expire(k) {
                return Err(Frame::error(ERR_SYNTAX));
            }
            o.expire = Some((k, v.clone()));
            j += 1;
        } else {
            return Err(Frame::error(ERR_SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

fn expire_kind(opt: &[u8]) -> Option<ExpireKind> {
    [
        ("ex", ExpireKind::Ex),
        ("px", ExpireKind::Px),
        ("exat", ExpireKind::Exat),
        ("pxat", ExpireKind::Pxat),
    ]
    .into_iter()
    .find(|(n, _)| opt.eq_ignore_ascii_case(n.as_bytes()))
    .map(|(_, k)| k)
}

/// Converts an expire argument to absolute ms (Redis `getExpireMillisecondsOrReply`).
fn expire_at_ms(kind: ExpireKind, arg: &[u8], now_ms: u64, cmd: &str) -> Result<u64, Frame> {
    let invalid = || Frame::error(format!("ERR invalid expire time in '{cmd}' command"));
    let mut ms = int_arg(arg)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::Exat);
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        return Err(invalid());
    }
    if seconds {
        ms *= 1000;
    }
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        ms = ms.checked_add(now_ms as i64).ok_or_else(invalid)?;
    }
    Ok(ms as u64)
}

/// The shared body of SET/SETNX/SETEX/PSETEX (Redis `setGenericCommand`).
/// `replies` = (reply when set, reply when NX/XX aborted); ignored with GET.
fn set_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    opts: ExtOpts,
    cmd: &str,
    replies: (Frame, Frame),
) -> Frame {
    let (key, val) = (&args[1], &args[2]);
    let expire = match &opts.expire {
        Some((kind, arg)) => match expire_at_ms(*kind, arg, ctx.now_ms, cmd) {
            Ok(ms) => Some(ms),
            Err(e) => return e,
        },
        None => None,
    };
    // Only GET reads the old value (WRONGTYPE if not a string); plain SET overwrites any type.
    let (found, old) = if opts.get {
        match get_string(db, ctx, key) {
            Ok(old) => (old.is_some(), old),
            Err(e) => return e,
        }
    } else {
        (db.contains(ctx, key), None)
    };
    if (opts.nx && found) || (opts.xx && !found) {
        return if opts.get {
            bulk_or_null(old)
        } else {
            replies.1
        };
    }
    match expire {
        Some(ms) => {
            db.insert(key.clone(), Value::Str(val.clone()), Some(ms));
            let ms = int_bytes(ms as i64);
            ctx.log(vec![b("SET"), key.clone(), val.clone(), b("PXAT"), ms]);
        }
        None => {
            db.set_value(key.clone(), Value::Str(val.clone()), opts.keepttl);
            let mut logged = vec![b("SET"), key.clone(), val.clone()];
            if opts.keepttl {
                logged.push(b("KEEPTTL"));
            }
            ctx.log(logged);
        }
    }
    if opts.get {
        bulk_or_null(old)
    } else {
        replies.0
    }
}

/// GET key → bulk or null.
pub(crate) fn get(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_string(db, ctx, &args[1]) {
        Ok(v) => bulk_or_null(v),
        Err(e) => e,
    }
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
pub(crate) fn set(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match parse_ext(args, 3, true) {
        Ok(opts) => set_generic(db, ctx, args, opts, "set", (Frame::ok(), Frame::Null)),
        Err(e) => e,
    }
}

/// SETNX key value → :1 if set, :0 if the key existed.
pub(crate) fn setnx(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let opts = ExtOpts {
        nx: true,
        ..ExtOpts::default()
    };
    set_generic(
        db,
        ctx,
        args,
        opts,
        "setnx",
        (Frame::Integer(1), Frame::Integer(0)),
    )
}

/// SETEX key seconds value / PSETEX key ms value.
fn setex_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    kind: ExpireKind,
    cmd: &str,
) -> Frame {
    let opts = ExtOpts {
        expire: Some((kind, args[2].clone())),
        ..ExtOpts::default()
    };
    let reordered = [args[0].clone(), args[1].clone(), args[3].clone()];
    set_generic(db, ctx, &reordered, opts, cmd, (Frame::ok(), Frame::Null))
}

pub(crate) fn setex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    setex_generic(db, ctx, args, ExpireKind::Ex, "setex")
}

pub(crate) fn psetex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    setex_generic(db, ctx, args, ExpireKind::Px, "psetex")
}

/// GETSET key value → old value or null; the key loses its TTL.
pub(crate) fn getset(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let old = match get_string(db, ctx, &args[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    db.set_value(args[1].clone(), Value::Str(args[2].clone()), false);
    ctx.log(vec![b("SET"), args[1].clone(), args[2].clone()]);
    bulk_or_null(old)
}

/// GETDEL key → value (and the key is deleted) or null.
pub(crate) fn getdel(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_string(db, ctx, &args[1]) {
        Ok(Some(v)) => {
            db.remove_entry(&args[1]);
            ctx.log(vec![b("DEL"), args[1].clone()]);
            Frame::Bulk(v)
        }
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST].
pub(crate) fn getex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let opts = match parse_ext(args, 2, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &args[1];
    let v = match get_string(db, ctx, key) {
        Ok(Some(v)) => v,
        Ok(None) => return Frame::Null,
        Err(e) => return e,
    };
    if let Some((kind, arg)) = &opts.expire {
        let ms = match expire_at_ms(*kind, arg, ctx.now_ms, "getex") {
            Ok(ms) => ms,
            Err(e) => return e,
        };
        let absolute = matches!(kind, ExpireKind::Exat | ExpireKind::Pxat);
        if absolute && ms <= ctx.now_ms && !ctx.replaying {
            db.remove_entry(key);
            ctx.log(vec![b("DEL"), key.clone()]);
        } else {
            db.set_expire(key, Some(ms));
            ctx.log(vec![b("PEXPIREAT"), key.clone(), int_bytes(ms as i64)]);
        }
    } else if opts.persist && db.peek(key).is_some_and(|e| e.expire_at_ms.is_some()) {
        db.set_expire(key, None);
        ctx.log(vec![b("PERSIST"), key.clone()]);
    }
    Frame::Bulk(v)
}

/// MGET key… → one bulk or null per key (null for non-strings too).
pub(crate) fn mget(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let out = args[1..]
        .iter()
        .map(|k| match get_string(db, ctx, k) {
            Ok(Some(v)) => Frame::Bulk(v),
            _ => Frame::Null,
        })
        .collect();
    Frame::Array(out)
}

/// MSET key value [key value …] → OK; every key loses its TTL.
pub(crate) fn mset(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if args.len() % 2 == 0 {
        return wrong_args("mset");
    }
    for pair in args[1..].chunks(2) {
        db.expire_if_needed(ctx, &pair[0]);
        db.set_value(pair[0].clone(), Value::Str(pair[1].clone()), false);
    }
    ctx.log(args.to_vec());
    Frame::ok()
}

/// MSETNX key value [key value …] → :1 if all were set, :0 (nothing set) if any existed.
pub(crate) fn msetnx(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if args.len() % 2 == 0 {
        return wrong_args("msetnx");
    }
    let mut any_exists = false;
    for pair in args[1..].chunks(2) {
        any_exists |= db.contains(ctx, &pair[0]);
    }
    if any_exists {
        return Frame::Integer(0);
    }
    for pair in args[1..].chunks(2) {
        db.set_value(pair[0].clone(), Value::Str(pair[1].clone()), false);
    }
    ctx.log(args.to_vec());
    Frame::Integer(1)
}

/// APPEND key value → new length; keeps the TTL. Appends in place when the stored buffer
/// is not shared, so repeated APPENDs cost amortized O(appended bytes).
pub(crate) fn append(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (key, tail) = (&args[1], &args[2]);
    let old_len = match db.get(ctx, key) {
        None => None,
        Some(e) => match as_str(&e.value) {
            Some(s) => Some(s.len()),
            None => return wrongtype(),
        },
    };
    let len = match old_len {
        None => {
            db.insert(key.clone(), Value::Str(tail.clone()), None);
            tail.len()
        }
        Some(old_len) => {
            if old_len as u64 + tail.len() as u64 > STRING_LEN_MAX_BYTES {
                return Frame::error(ERR_STRING_TOO_LONG);
            }
            let edit = |buf: &mut BytesMut| buf.extend_from_slice(tail);
            db.update_value(key, |v| edit_str(v, edit))
                .expect("key checked above")
        }
    };
    ctx.log(args.to_vec());
    count_reply(len)
}

/// Edits a string value in place (no copy when its buffer is unshared); returns the new
/// length.
fn edit_str(v: &mut Value, edit: impl FnOnce(&mut BytesMut)) -> usize {
    let Value::Str(b) = v else {
        // Callers check the type first; a non-string here is a logic error.
        panic!("edit_str on a non-string value");
    };
    let mut buf = std::mem::take(b)
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    edit(&mut buf);
    *b = buf.freeze();
    b.len()
}

/// STRLEN key → length (0 if absent).
pub(crate) fn strlen(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match get_string(db, ctx, &args[1]) {
        Ok(v) => count_reply(v.map_or(0, |v| v.len())),
        Err(e) => e,
    }
}

/// GETRANGE key start end (and SUBSTR): inclusive, negative offsets from the end.
pub(crate) fn getrange(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (start, end) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let s = match get_string(db, ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Bulk(Bytes::new()),
        Err(e) => return e,
    };
    if start < 0 && end < 0 && start > end {
        return Frame::Bulk(Bytes::new());
    }
    let len = s.len() as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Frame::Bulk(Bytes::new());
    }
    Frame::Bulk(s.slice(start as usize..end as usize + 1))
}

/// SETRANGE key offset value → new length; zero-pads; 512 MB limit.
pub(crate) fn setrange(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (key, value) = (&args[1], &args[3]);
    let offset = match int_arg(&args[2]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if offset < 0 {
        return Frame::error("ERR offset is out of range");
    }
    // Only the length is kept, so the stored buffer stays unshared for the in-place edit.
    let old_len = match get_string(db, ctx, key) {
        Ok(v) => v.map(|o| o.len()),
        Err(e) => return e,
    };
    if value.is_empty() {
        return count_reply(old_len.unwrap_or(0));
    }
    if offset as u64 + value.len() as u64 > STRING_LEN_MAX_BYTES {
        return Frame::error(ERR_STRING_TOO_LONG);
    }
    let offset = offset as usize;
    let edit = |buf: &mut BytesMut| {
        if buf.len() < offset + value.len() {
            buf.resize(offset + value.len(), 0);
        }
        buf[offset..offset + value.len()].copy_from_slice(value);
    };
    let len = match db.update_value(key, |v| edit_str(v, edit)) {
        Some(len) => len,
        None => {
            let mut buf = BytesMut::new();
            edit(&mut buf);
            let len = buf.len();
            db.insert(key.clone(), Value::Str(buf.freeze()), None);
            len
        }
    };
    ctx.log(args.to_vec());
    count_reply(len)
}

/// Shared body of INCR/DECR/INCRBY/DECRBY: adds `delta`, keeps the TTL.
fn incr_by(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], delta: i64) -> Frame {
    let key = &args[1];
    let cur = match get_string(db, ctx, key) {
        Ok(None) => 0,
        Ok(Some(s)) => match parse_i64(&s) {
            Some(n) => n,
            None => return Frame::error(super::ERR_NOT_INTEGER),
        },
        Err(e) => return e,
    };
    let Some(new) = cur.checked_add(delta) else {
        return Frame::error(ERR_OVERFLOW);
    };
    db.set_value(key.clone(), Value::Str(int_bytes(new)), true);
    ctx.log(args.to_vec());
    Frame::Integer(new)
}

pub(crate) fn incr(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    incr_by(db, ctx, args, 1)
}

pub(crate) fn decr(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    incr_by(db, ctx, args, -1)
}

pub(crate) fn incrby(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match int_arg(&args[2]) {
        Ok(d) => incr_by(db, ctx, args, d),
        Err(e) => e,
    }
}

pub(crate) fn decrby(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match int_arg(&args[2]) {
        Ok(i64::MIN) => Frame::error("ERR decrement would overflow"),
        Ok(d) => incr_by(db, ctx, args, -d),
        Err(e) => e,
    }
}

/// INCRBYFLOAT key increment: x87 80-bit long double arithmetic and `%.17Lf`-trimmed
/// output, exactly as Redis on x86-64; logged as `SET key result KEEPTTL`.
pub(crate) fn incrbyfloat(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let cur = match get_string(db, ctx, key) {
        Ok(None) => Some(LongDouble::ZERO),
        Ok(Some(s)) => LongDouble::parse(&s),
        Err(e) => return e,
    };
    let (Some(cur), Some(incr)) = (cur, LongDouble::parse(&args[2])) else {
        return Frame::error(ERR_NOT_FLOAT);
    };
    let sum = cur.plus(incr);
    if !sum.is_finite() {
        return Frame::error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(sum.to_human_string());
    db.set_value(key.clone(), Value::Str(text.clone()), true);
    ctx.log(vec![b("SET"), key.clone(), text.clone(), b("KEEPTTL")]);
    Frame::Bulk(text)
}
