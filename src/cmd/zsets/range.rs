//! ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES), ZRANGESTORE, the legacy ZREVRANGE /
//! Z[REV]RANGEBYSCORE / Z[REV]RANGEBYLEX forms, ZCOUNT, ZLEXCOUNT and ZREMRANGEBY{RANK,
//! SCORE,LEX}. Follows Redis 7.0 `zrangeGenericCommand`: options parsed first, then the
//! range, then the key (so syntax errors win over WRONGTYPE).
//!
//! Every range is resolved to an ascending rank window `lo..hi` and then sliced by
//! LIMIT offset/count and direction. What can fail: syntax, integer/float/lex bounds,
//! WRONGTYPE — with Redis's exact texts.

use bytes::Bytes;

use super::{
    elements_reply, get_zset, mutate_zset, store_result, ERR_NOT_FLOAT_RANGE, ERR_NOT_LEX_RANGE,
};
use crate::cmd::{count_reply, int_arg, ExecCtx, ERR_SYNTAX};
use crate::keyspace::zset::{LexBound, ScoreBound, ZSetValue};
use crate::keyspace::Db;
use crate::resp::Frame;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

struct Request {
    range: Range,
    rev: bool,
    with_scores: bool,
    offset: i64,
    /// Negative = no limit.
    limit: i64,
}

/// Parses `<min> <max> [options…]` starting at `args[at]` (Redis `zrangeGenericCommand`).
/// `fixed` = the kind/direction a legacy command imposes; `store` = ZRANGESTORE (no
/// WITHSCORES).
fn parse_request(
    args: &[Bytes],
    at: usize,
    fixed: Option<(Kind, bool)>,
    store: bool,
) -> Result<Request, Frame> {
    let (mut kind, mut rev) = match fixed {
        Some((k, r)) => (Some(k), Some(r)),
        None => (None, None),
    };
    let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = at + 2;
    while j < args.len() {
        let opt = args[j].to_ascii_lowercase();
        let left = args.len() - j - 1;
        match &opt[..] {
            b"withscores" if !store => with_scores = true,
            b"limit" if left >= 2 => {
                offset = int_arg(&args[j + 1])?;
                limit = int_arg(&args[j + 2])?;
                j += 2;
            }
            b"rev" if rev.is_none() => rev = Some(true),
            b"bylex" if kind.is_none() => kind = Some(Kind::Lex),
            b"byscore" if kind.is_none() => kind = Some(Kind::Score),
            _ => return Err(Frame::error(ERR_SYNTAX)),
        }
        j += 1;
    }
    let (kind, rev) = (kind.unwrap_or(Kind::Rank), rev.unwrap_or(false));
    if limit != -1 && kind == Kind::Rank {
        return Err(Frame::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == Kind::Lex {
        return Err(Frame::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (&args[at], &args[at + 1]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let range = match kind {
        Kind::Rank => Range::Rank(int_arg(min)?, int_arg(max)?),
        Kind::Score => parse_score_range(min, max).map(|(a, b)| Range::Score(a, b))?,
        Kind::Lex => parse_lex_range(min, max).map(|(a, b)| Range::Lex(a, b))?,
    };
    Ok(Request {
        range,
        rev,
        with_scores,
        offset,
        limit,
    })
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), Frame> {
    match (ScoreBound::parse(min), ScoreBound::parse(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Frame::error(ERR_NOT_FLOAT_RANGE)),
    }
}

fn parse_lex_range(min: &Bytes, max: &Bytes) -> Result<(LexBound, LexBound), Frame> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Frame::error(ERR_NOT_LEX_RANGE)),
    }
}

/// Redis's rank normalization (negative = from the end, clamped): the ascending window.
fn rank_window(len: usize, start: i64, end: i64) -> (usize, usize) {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    start = start.max(0);
    if start > end || start >= len {
        return (0, 0);
    }
    end = end.min(len - 1);
    (start as usize, end as usize + 1)
}

/// The selected elements of `z` in reply order: (ascending window, reverse?).
fn select(z: &ZSetValue, req: &Request) -> (usize, usize, bool) {
    let (lo, hi) = match &req.range {
        Range::Rank(start, end) => {
            let (a, b) = rank_window(z.len(), *start, *end);
            // REV on ranks counts from the top: window mirrored.
            return if req.rev {
                (z.len() - b.max(a), z.len() - a, true)
            } else {
                (a, b, false)
            };
        }
        Range::Score(min, max) => z.score_rank_range(*min, *max),
        Range::Lex(min, max) => z.lex_rank_range(min, max),
    };
    let n = hi - lo;
    if req.offset < 0 {
        return (0, 0, req.rev);
    }
    let skip = (req.offset as u64).min(n as u64) as usize;
    let take = if req.limit < 0 {
        n - skip
    } else {
        (req.limit as u64).min((n - skip) as u64) as usize
    };
    if req.rev {
        (hi - skip - take, hi - skip, true)
    } else {
        (lo + skip, lo + skip + take, false)
    }
}

fn range_generic(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    fixed: Option<(Kind, bool)>,
) -> Frame {
    let req = match parse_request(args, 2, fixed, false) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match get_zset(db, ctx, &args[1]) {
        Ok(Some(z)) => {
            let (a, b, rev) = select(z, &req);
            elements_reply(z.range(a, b, rev), req.with_scores)
        }
        Ok(None) => Frame::Array(vec![]),
        Err(e) => e,
    }
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES].
pub(crate) fn zrange(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    range_generic(db, ctx, args, None)
}

/// ZREVRANGE key start stop [WITHSCORES].
pub(crate) fn zrevrange(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    range_generic(db, ctx, args, Some((Kind::Rank, true)))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count].
pub(crate) fn zrangebyscore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    range_generic(db, ctx, args, Some((Kind::Score, false)))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count].
pub(crate) fn zrevrangebyscore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    range_generic(db, ctx, args, Some((Kind::Score, true)))
}

/// ZRANGEBYLEX key min max [LIMIT offset count].
pub(crate) fn zrangebylex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    range_generic(db, ctx, args, Some((Kind::Lex, false)))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count].
pub(crate) fn zrevrangebylex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    range_generic(db, ctx, args, Some((Kind::Lex, true)))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] → stored count.
/// An empty result deletes `dst`. Logged as given.
pub(crate) fn zrangestore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let req = match parse_request(args, 3, None, true) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut out = ZSetValue::new();
    match get_zset(db, ctx, &args[2]) {
        Ok(Some(z)) => {
            let (a, b, rev) = select(z, &req);
            for (m, s) in z.range(a, b, rev) {
                out.insert(m.clone(), s);
            }
        }
        Ok(None) => {}
        Err(e) => return e,
    }
    store_result(db, ctx, &args[1], out, args)
}

/// ZCOUNT key min max → elements with a score in range.
pub(crate) fn zcount(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (min, max) = match parse_score_range(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match get_zset(db, ctx, &args[1]) {
        Ok(z) => count_reply(z.map_or(0, |z| {
            let (lo, hi) = z.score_rank_range(min, max);
            hi - lo
        })),
        Err(e) => e,
    }
}

/// ZLEXCOUNT key min max → elements with a member in the lex range.
pub(crate) fn zlexcount(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (min, max) = match parse_lex_range(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match get_zset(db, ctx, &args[1]) {
        Ok(z) => count_reply(z.map_or(0, |z| {
            let (lo, hi) = z.lex_rank_range(&min, &max);
            hi - lo
        })),
        Err(e) => e,
    }
}

/// The shared body of ZREMRANGEBY*: removes the ascending window `window(z)`, deletes the
/// key when emptied, logs the command as given when anything was removed.
fn remrange(
    db: &mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    window: impl FnOnce(&ZSetValue) -> (usize, usize),
) -> Frame {
    let key = &args[1];
    let (lo, hi) = match get_zset(db, ctx, key) {
        Ok(Some(z)) => window(z),
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    };
    if lo >= hi {
        return Frame::Integer(0);
    }
    let removed = mutate_zset(db, key, |z| z.remove_rank_range(lo, hi).len());
    ctx.log(args.to_vec());
    count_reply(removed)
}

/// ZREMRANGEBYRANK key start stop → number removed.
pub(crate) fn zremrangebyrank(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (start, end) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    remrange(db, ctx, args, |z| rank_window(z.len(), start, end))
}

/// ZREMRANGEBYSCORE key min max → number removed.
pub(crate) fn zremrangebyscore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (min, max) = match parse_score_range(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    remrange(db, ctx, args, |z| z.score_rank_range(min, max))
}

/// ZREMRANGEBYLEX key min max → number removed.
pub(crate) fn zremrangebylex(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (min, max) = match parse_lex_range(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    remrange(db, ctx, args, |z| z.lex_rank_range(&min, &max))
}
