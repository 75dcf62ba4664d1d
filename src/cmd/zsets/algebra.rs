//! ZUNION ZINTER ZDIFF, their *STORE forms and ZINTERCARD (Redis 7.0
//! `zunionInterDiffGenericCommand`): numkeys, key lookup (WRONGTYPE before option
//! parsing), then WEIGHTS / AGGREGATE SUM|MIN|MAX / WITHSCORES / LIMIT.
//!
//! Inputs may be sorted sets or plain sets (whose members count with score 1, as in
//! Redis). Inputs are taken smallest first (stable by cardinality, as Redis sorts them),
//! so SUM adds in Redis's order; weight × score and SUM results that are NaN become 0, as
//! in Redis. What can fail: numkeys, syntax, weights, LIMIT, WRONGTYPE.

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashMap;

use super::{elements_reply, store_result};
use crate::cmd::{count_reply, parse_i64, wrongtype, ExecCtx, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::keyspace::set::SetValue;
use crate::keyspace::zset::score::parse_score;
use crate::keyspace::zset::ZSetValue;
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
    InterCard,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = acc + v;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => {
                if v < acc {
                    v
                } else {
                    acc
                }
            }
            Aggregate::Max => {
                if v > acc {
                    v
                } else {
                    acc
                }
            }
        }
    }
}

/// One input: a sorted set, or a plain set whose members all have score 1.
#[derive(Clone, Copy)]
enum Source<'a> {
    Z(&'a ZSetValue),
    S(&'a SetValue),
}

impl<'a> Source<'a> {
    fn len(self) -> usize {
        match self {
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Z(z) => z.score(member),
            Source::S(s) => s.contains(member).then_some(1.0),
        }
    }

    /// Members with their scores, in the input's own order.
    fn for_each(self, mut f: impl FnMut(&'a Bytes, f64)) {
        match self {
            Source::Z(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Source::S(s) => s.iter().for_each(|m| f(m, 1.0)),
        }
    }
}

/// What the command asked for after parsing.
struct Plan<'a> {
    sources: Vec<Option<Source<'a>>>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    limit: usize,
}

/// Parses numkeys, looks up the source sets (lazily expiring them first), then the
/// options. `numkeys_at` is 2 for *STORE, 1 otherwise.
fn plan<'a>(
    db: &'a mut Db,
    ctx: &mut ExecCtx,
    args: &[Bytes],
    numkeys_at: usize,
    op: Op,
    store: bool,
) -> Result<Plan<'a>, Frame> {
    let numkeys = parse_i64(&args[numkeys_at]).ok_or_else(|| Frame::error(ERR_NOT_INTEGER))?;
    if numkeys < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(Frame::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = numkeys_at + 1;
    if numkeys as u64 > (args.len() - first) as u64 {
        return Err(Frame::error(ERR_SYNTAX));
    }
    let numkeys = numkeys as usize;
    let keys = &args[first..first + numkeys];
    for key in keys {
        match db.get(ctx, key).map(|e| &e.value) {
            None | Some(Value::ZSet(_)) | Some(Value::Set(_)) => {}
            Some(_) => return Err(wrongtype()),
        }
    }
    let db: &'a Db = db;
    let sources = keys
        .iter()
        .map(|k| match db.peek(k).map(|e| &e.value) {
            Some(Value::ZSet(z)) => Some(Source::Z(z)),
            Some(Value::Set(s)) => Some(Source::S(s)),
            _ => None,
        })
        .collect();
    let mut p = Plan {
        sources,
        weights: vec![1.0; numkeys],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    let mut j = first + numkeys;
    while j < args.len() {
        let left = args.len() - j;
        let opt = args[j].to_ascii_lowercase();
        match &opt[..] {
            b"weights" if op != Op::Diff && op != Op::InterCard && left > numkeys => {
                for i in 0..numkeys {
                    p.weights[i] = parse_score(&args[j + 1 + i])
                        .ok_or_else(|| Frame::error("ERR weight value is not a float"))?;
                }
                j += numkeys + 1;
            }
            b"aggregate" if op != Op::Diff && op != Op::InterCard && left >= 2 => {
                p.aggregate = match &args[j + 1].to_ascii_lowercase()[..] {
                    b"sum" => Aggregate::Sum,
                    b"min" => Aggregate::Min,
                    b"max" => Aggregate::Max,
                    _ => return Err(Frame::error(ERR_SYNTAX)),
                };
                j += 2;
            }
            b"withscores" if !store && op != Op::InterCard => {
                p.with_scores = true;
                j += 1;
            }
            b"limit" if op == Op::InterCard && left >= 2 => {
                p.limit = match parse_i64(&args[j + 1]) {
                    Some(n) if n >= 0 => n as usize,
                    _ => return Err(Frame::error("ERR LIMIT can't be negative")),
                };
                j += 2;
            }
            _ => return Err(Frame::error(ERR_SYNTAX)),
        }
    }
    Ok(p)
}

fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Sources (with weights) ordered smallest first, stable; absent keys count as empty.
fn by_size<'a>(p: &Plan<'a>) -> Vec<(Source<'a>, f64)> {
    let mut v: Vec<(Source<'a>, f64)> = p
        .sources
        .iter()
        .zip(&p.weights)
        .map(|(s, w)| (s.unwrap_or(Source::Z(empty_set())), *w))
        .collect();
    v.sort_by_key(|(s, _)| s.len());
    v
}

fn empty_set() -> &'static ZSetValue {
    static EMPTY: std::sync::OnceLock<ZSetValue> = std::sync::OnceLock::new();
    EMPTY.get_or_init(ZSetValue::new)
}

/// Computes the result set of `op` (not InterCard).
fn compute(p: &Plan, op: Op) -> ZSetValue {
    let mut out = ZSetValue::new();
    match op {
        Op::Union => {
            let mut acc: HashMap<Bytes, f64, FixedState> =
                HashMap::with_hasher(FixedState::with_seed(3));
            for (set, w) in by_size(p) {
                set.for_each(|m, s| {
                    let v = weighted(s, w);
                    acc.entry(m.clone())
                        .and_modify(|a| *a = p.aggregate.apply(*a, v))
                        .or_insert(v);
                });
            }
            for (m, s) in acc {
                out.insert(m, s);
            }
        }
        Op::Inter => {
            let sets = by_size(p);
            let (first, w0) = sets[0];
            first.for_each(|m, s| {
                let mut score = weighted(s, w0);
                for &(other, w) in &sets[1..] {
                    match other.score(m) {
                        Some(o) => score = p.aggregate.apply(score, weighted(o, w)),
                        None => return,
                    }
                }
                out.insert(m.clone(), score);
            });
        }
        Op::Diff | Op::InterCard => {
            if let Some(first) = p.sources[0] {
                first.for_each(|m, s| {
                    let elsewhere = p.sources[1..]
                        .iter()
                        .any(|o| o.is_some_and(|o| o.score(m).is_some()));
                    if !elsewhere {
                        out.insert(m.clone(), s);
                    }
                });
            }
        }
    }
    out
}

fn read_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], op: Op) -> Frame {
    match plan(db, ctx, args, 1, op, false) {
        Ok(p) => {
            let out = compute(&p, op);
            elements_reply(out.iter(), p.with_scores)
        }
        Err(e) => e,
    }
}

fn store_generic(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes], op: Op) -> Frame {
    let out = match plan(db, ctx, args, 2, op, true) {
        Ok(p) => compute(&p, op),
        Err(e) => return e,
    };
    store_result(db, ctx, &args[1], out, args)
}

/// ZUNION numkeys key… [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES].
pub(crate) fn zunion(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    read_generic(db, ctx, args, Op::Union)
}

/// ZINTER numkeys key… [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES].
pub(crate) fn zinter(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    read_generic(db, ctx, args, Op::Inter)
}

/// ZDIFF numkeys key… [WITHSCORES].
pub(crate) fn zdiff(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    read_generic(db, ctx, args, Op::Diff)
}

/// ZUNIONSTORE dst numkeys key… [WEIGHTS w…] [AGGREGATE …] → stored cardinality.
pub(crate) fn zunionstore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    store_generic(db, ctx, args, Op::Union)
}

/// ZINTERSTORE dst numkeys key… [WEIGHTS w…] [AGGREGATE …] → stored cardinality.
pub(crate) fn zinterstore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    store_generic(db, ctx, args, Op::Inter)
}

/// ZDIFFSTORE dst numkeys key… → stored cardinality.
pub(crate) fn zdiffstore(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    store_generic(db, ctx, args, Op::Diff)
}

/// ZINTERCARD numkeys key… [LIMIT limit] → size of the intersection (stops at LIMIT when
/// it is not 0).
pub(crate) fn zintercard(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let p = match plan(db, ctx, args, 1, Op::InterCard, false) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let sets = by_size(&p);
    let mut n = 0usize;
    sets[0].0.for_each(|m, _| {
        if (p.limit == 0 || n < p.limit) && sets[1..].iter().all(|(o, _)| o.score(m).is_some()) {
            n += 1;
        }
    });
    count_reply(n)
}
