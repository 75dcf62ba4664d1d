//! TTL commands (Redis 7.0 expire.c semantics): EXPIRE PEXPIRE EXPIREAT PEXPIREAT
//! [NX|XX|GT|LT], TTL PTTL EXPIRETIME PEXPIRETIME PERSIST.
//!
//! TTLs are absolute ms since the epoch. A successful EXPIRE-family call is logged as
//! `PEXPIREAT key <abs ms>`, or as `DEL key` when the time is already past (the key is
//! deleted, as Redis does outside of loading). What can fail: option syntax/compatibility,
//! integer parsing, and overflow of the time computation ("invalid expire time").

use bytes::Bytes;

use super::{int_arg, int_bytes, ExecCtx};
use crate::keyspace::Db;
use crate::resp::Frame;

/// Parsed NX/XX/GT/LT flags.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_flags(args: &[Bytes]) -> Result<ExpireFlags, Frame> {
    let mut f = ExpireFlags::default();
    for opt in &args[3..] {
        let o = &opt[..];
        if o.eq_ignore_ascii_case(b"nx") {
            f.nx = true;
        } else if o.eq_ignore_ascii_case(b"xx") {
            f.xx = true;
        } else if o.eq_ignore_ascii_case(b"gt") {
            f.gt = true;
        } else if o.eq_ignore_ascii_case(b"lt") {
            f.lt = true;
        } else {
            return Err(Frame::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(o)
            )));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Frame::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(Frame::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

/// Shared body (Redis `expireGenericCommand`): `relative` adds now, `seconds` scales by 1000.
fn expire_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    relative: bool,
    seconds: bool,
) -> Frame {
    let flags = match parse_flags(args) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let mut when = match int_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let invalid = || Frame::error(format!("ERR invalid expire time in '{name}' command"));
    if seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return invalid(),
        }
    }
    if relative {
        match when.checked_add(ctx.now_ms as i64) {
            Some(ms) => when = ms,
            None => return invalid(),
        }
    }
    let key = &args[1];
    let current = match db.get(ctx, key) {
        None => return Frame::Integer(0),
        Some(e) => e.expire_at_ms.map(|t| t as i64),
    };
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|cur| when <= cur))
        || (flags.lt && current.is_some_and(|cur| when >= cur));
    if refused {
        return Frame::Integer(0);
    }
    if when <= ctx.now_ms as i64 && !ctx.replaying {
        db.remove_entry(key);
        ctx.log(vec![Bytes::from_static(b"DEL"), key.clone()]);
    } else {
        let at = when.max(0) as u64;
        db.set_expire(key, Some(at));
        ctx.log(vec![
            Bytes::from_static(b"PEXPIREAT"),
            key.clone(),
            int_bytes(at as i64),
        ]);
    }
    Frame::Integer(1)
}

pub(crate) fn expire(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    expire_generic(db, ctx, args, true, true)
}

pub(crate) fn pexpire(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    expire_generic(db, ctx, args, true, false)
}

pub(crate) fn expireat(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    expire_generic(db, ctx, args, false, true)
}

pub(crate) fn pexpireat(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    expire_generic(db, ctx, args, false, false)
}

/// The live key's expiry: Err(-2) missing, Ok(None) persistent, Ok(Some(ms)) absolute.
fn expiry_of(db: &mut Db, ctx: &mut ExecCtx, key: &[u8]) -> Result<Option<u64>, Frame> {
    match db.get(ctx, key) {
        None => Err(Frame::Integer(-2)),
        Some(e) => Ok(e.expire_at_ms),
    }
}

/// TTL / PTTL key → remaining time (rounded to the nearest second for TTL), -1, or -2.
fn ttl_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], ms: bool) -> Frame {
    match expiry_of(db, ctx, &args[1]) {
        Err(missing) => missing,
        Ok(None) => Frame::Integer(-1),
        Ok(Some(at)) => {
            // u64 arithmetic: no overflow for TTLs near i64::MAX (Redis rounds the same way).
            let left = at.saturating_sub(ctx.now_ms);
            Frame::Integer(if ms { left } else { (left + 500) / 1000 } as i64)
        }
    }
}

pub(crate) fn ttl(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    ttl_generic(db, ctx, args, false)
}

pub(crate) fn pttl(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    ttl_generic(db, ctx, args, true)
}

/// EXPIRETIME / PEXPIRETIME key → absolute expiry (seconds rounded, or ms), -1, or -2.
fn expiretime_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], ms: bool) -> Frame {
    match expiry_of(db, ctx, &args[1]) {
        Err(missing) => missing,
        Ok(None) => Frame::Integer(-1),
        Ok(Some(at)) => Frame::Integer(if ms { at } else { (at + 500) / 1000 } as i64),
    }
}

pub(crate) fn expiretime(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    expiretime_generic(db, ctx, args, false)
}

pub(crate) fn pexpiretime(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    expiretime_generic(db, ctx, args, true)
}

/// PERSIST key → :1 if a TTL was removed, else :0.
pub(crate) fn persist(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match expiry_of(db, ctx, &args[1]) {
        Ok(Some(_)) => {
            db.set_expire(&args[1], None);
            ctx.log(args.to_vec());
            Frame::Integer(1)
        }
        _ => Frame::Integer(0),
    }
}
