//! RESP3 reply shapes: command implementations return RESP2-shaped frames (flat arrays of
//! bulk strings); for a client that said `HELLO 3`, [`shape_reply`] reshapes the reply the
//! way Redis 7.0 does (checked byte for byte against redis-server 7.0.15 with HELLO 3):
//! HGETALL → map, SMEMBERS/SINTER/SUNION/SDIFF/SPOP count → set, ZSCORE/ZINCRBY/ZADD INCR →
//! double, ZMSCORE → array of doubles, WITHSCORES ranges and ZPOPMIN/ZPOPMAX count,
//! ZRANDMEMBER WITHSCORES → array of `[member, double]` pairs, HRANDFIELD WITHVALUES →
//! `[field, value]` pairs, INFO → verbatim string. Nulls become `_` in the encoder.
//! INCRBYFLOAT and HINCRBYFLOAT stay bulk strings, as in Redis.
//!
//! Also [`parse_value`], a client-side RESP3 value parser (every type, iterative, bounded)
//! used to load recorded replies (COMMAND DOCS) and by tests.
//!
//! What can fail: a reply not in the expected shape (an error, a null, a wrong count) is
//! passed through unchanged; `parse_value` returns an error text for malformed input.

use bytes::Bytes;

use crate::resp::{Frame, Protocol};

/// How a command's RESP2-shaped reply becomes its RESP3 shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Unchanged (only nulls differ, which the encoder handles).
    Plain,
    /// Flat `[k, v, k, v…]` array → map.
    Map,
    /// Array → set.
    Set,
    /// Bulk string score → double.
    Double,
    /// Array of bulk scores or nulls → array of doubles or nulls.
    Doubles,
    /// Flat `[a, b, a, b…]` → `[[a, b], …]`; with `score` the second of each pair is a double.
    Pairs {
        /// Whether the second element of each pair is a score (double).
        score: bool,
    },
    /// Flat `[member, score, …]` kept flat, scores as doubles (ZPOPMIN/ZPOPMAX without count).
    FlatScores,
    /// `[key, member, score]` (BZPOPMIN/BZPOPMAX): the third becomes a double.
    KeyMemberScore,
    /// `[key, [member, score, …]]` (ZMPOP/BZMPOP): the inner array becomes score pairs.
    KeyScorePairs,
    /// Bulk string → verbatim `txt` string (INFO).
    Verbatim,
}

fn has_word(args: &[Bytes], word: &[u8]) -> bool {
    args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word))
}

/// The RESP3 shape of the reply to `args` (`args[0]` is the command name, any case).
/// Only the name and option words are looked at; arguments are not validated.
pub fn reply_shape(args: &[Bytes]) -> Shape {
    let Some(name) = args.first() else {
        return Shape::Plain;
    };
    let mut lower = [0u8; 16];
    if name.len() > lower.len() {
        return Shape::Plain;
    }
    for (dst, src) in lower.iter_mut().zip(name.iter()) {
        *dst = src.to_ascii_lowercase();
    }
    match &lower[..name.len()] {
        b"hgetall" => Shape::Map,
        b"smembers" | b"sinter" | b"sunion" | b"sdiff" => Shape::Set,
        b"spop" if args.len() == 3 => Shape::Set,
        b"zscore" | b"zincrby" => Shape::Double,
        b"zadd" if has_word(args, b"incr") => Shape::Double,
        b"zmscore" => Shape::Doubles,
        b"zrange" | b"zrangebyscore" | b"zrevrange" | b"zrevrangebyscore" | b"zunion"
        | b"zinter" | b"zdiff" | b"zrandmember"
            if has_word(args, b"withscores") =>
        {
            Shape::Pairs { score: true }
        }
        b"zpopmin" | b"zpopmax" if args.len() >= 3 => Shape::Pairs { score: true },
        b"zpopmin" | b"zpopmax" => Shape::FlatScores,
        b"bzpopmin" | b"bzpopmax" => Shape::KeyMemberScore,
        b"zmpop" | b"bzmpop" => Shape::KeyScorePairs,
        b"hrandfield" if has_word(args, b"withvalues") => Shape::Pairs { score: false },
        b"info" => Shape::Verbatim,
        _ => Shape::Plain,
    }
}

/// `frame` as a client speaking `protocol` gets it in reply to `args`: unchanged for
/// RESP2, reshaped by [`reply_shape`] for RESP3. For MULTI/EXEC, apply it to each queued
/// command's reply inside the EXEC array.
pub fn shape_reply(protocol: Protocol, args: &[Bytes], frame: Frame) -> Frame {
    match protocol {
        Protocol::Resp2 => frame,
        Protocol::Resp3 => reply_shape(args).apply(frame),
    }
}

/// A bulk score text as a double; anything else unchanged.
fn to_double(frame: Frame) -> Frame {
    match frame {
        Frame::Bulk(text) => match std::str::from_utf8(&text).ok().and_then(|t| t.parse().ok()) {
            Some(x) => Frame::Double(x),
            None => Frame::Bulk(text),
        },
        other => other,
    }
}

/// `[a, b, a, b…]` → `[[a, b], …]`; `None` if the count is odd.
fn pairs(items: Vec<Frame>, score: bool) -> Result<Frame, Vec<Frame>> {
    if items.len() % 2 != 0 {
        return Err(items);
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(a), Some(b)) = (iter.next(), iter.next()) {
        out.push(Frame::Array(vec![a, if score { to_double(b) } else { b }]));
    }
    Ok(Frame::Array(out))
}

impl Shape {
    /// Reshapes a RESP2-shaped reply; frames not in the expected form pass unchanged.
    pub fn apply(self, frame: Frame) -> Frame {
        match (self, frame) {
            (Shape::Plain, frame) => frame,
            (Shape::Map, Frame::Array(items)) if items.len() % 2 == 0 => {
                let mut out = Vec::with_capacity(items.len() / 2);
                let mut iter = items.into_iter();
                while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
                    out.push((k, v));
                }
                Frame::Map(out)
            }
            (Shape::Set, Frame::Array(items)) => Frame::Set(items),
            (Shape::Double, frame) => to_double(frame),
            (Shape::Doubles, Frame::Array(items)) => {
                Frame::Array(items.into_iter().map(to_double).collect())
            }
            (Shape::Pairs { score }, Frame::Array(items)) => {
                pairs(items, score).unwrap_or_else(Frame::Array)
            }
            (Shape::FlatScores, Frame::Array(items)) => Frame::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| if i % 2 == 1 { to_double(f) } else { f })
                    .collect(),
            ),
            (Shape::KeyMemberScore, Frame::Array(mut items)) if items.len() == 3 => {
                let score = items.pop().map(to_double).unwrap_or(Frame::Null);
                items.push(score);
                Frame::Array(items)
            }
            (Shape::KeyScorePairs, Frame::Array(mut items)) if items.len() == 2 => {
                if let Some(Frame::Array(inner)) = items.pop() {
                    items.push(pairs(inner, true).unwrap_or_else(Frame::Array));
                }
                Frame::Array(items)
            }
            (Shape::Verbatim, Frame::Bulk(text)) => Frame::Verbatim(text),
            (_, frame) => frame,
        }
    }
}

/// Deepest nesting [`parse_value`] accepts.
pub const PARSE_DEPTH_MAX: usize = 64;
/// Most elements one aggregate may claim in [`parse_value`].
pub const PARSE_AGGREGATE_LEN_MAX: usize = 1 << 20;

/// An aggregate whose elements are still being read.
struct Open {
    kind: u8,
    want: usize,
    items: Vec<Frame>,
}

fn close(open: Open) -> Frame {
    match open.kind {
        b'%' => {
            let mut pairs = Vec::with_capacity(open.items.len() / 2);
            let mut iter = open.items.into_iter();
            while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
                pairs.push((k, v));
            }
            Frame::Map(pairs)
        }
        b'~' => Frame::Set(open.items),
        b'>' => Frame::Push(open.items),
        _ => Frame::Array(open.items),
    }
}

fn line(input: &[u8], pos: usize) -> Result<(&str, usize), String> {
    let rest = input.get(pos..).unwrap_or_default();
    let end = memchr::memmem::find(rest, b"\r\n").ok_or("incomplete line")?;
    let text = std::str::from_utf8(&rest[..end]).map_err(|_| "non-UTF-8 line")?;
    Ok((text, pos + end + 2))
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("bad number '{text}'"))
}

/// Parses one complete RESP2/RESP3 value from the start of `input`: the frame and the
/// bytes it used. Attributes (`|`) are not supported; `=` verbatim strings lose their
/// 3-byte format. Errors: incomplete or malformed input, nesting deeper than
/// [`PARSE_DEPTH_MAX`], aggregates longer than [`PARSE_AGGREGATE_LEN_MAX`].
pub fn parse_value(input: &[u8]) -> Result<(Frame, usize), String> {
    let mut stack: Vec<Open> = Vec::new();
    let mut pos = 0;
    loop {
        let kind = *input.get(pos).ok_or("incomplete value")?;
        let (text, after) = line(input, pos + 1)?;
        pos = after;
        let mut frame = match kind {
            b'+' => Frame::Simple(text.to_string()),
            b'-' => Frame::Error(text.to_string()),
            b':' => Frame::Integer(number(text)?),
            b',' => Frame::Double(match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => number(text)?,
            }),
            b'#' => Frame::Boolean(text == "t"),
            b'(' => Frame::BigNumber(text.to_string()),
            b'_' => Frame::Null,
            b'$' | b'=' if text == "-1" => Frame::Null,
            b'$' | b'=' => {
                let len: usize = number(text)?;
                let body = input.get(pos..pos + len).ok_or("incomplete bulk")?;
                if input.get(pos + len..pos + len + 2) != Some(b"\r\n") {
                    return Err("bulk not followed by CRLF".to_string());
                }
                pos += len + 2;
                match kind {
                    b'=' => {
                        Frame::Verbatim(Bytes::copy_from_slice(body.get(4..).unwrap_or_default()))
                    }
                    _ => Frame::Bulk(Bytes::copy_from_slice(body)),
                }
            }
            b'*' if text == "-1" => Frame::NullArray,
            b'*' | b'%' | b'~' | b'>' => {
                let len: usize = number(text)?;
                if len > PARSE_AGGREGATE_LEN_MAX || stack.len() >= PARSE_DEPTH_MAX {
                    return Err("aggregate too long or too deep".to_string());
                }
                let want = if kind == b'%' { len * 2 } else { len };
                let open = Open {
                    kind,
                    want,
                    items: Vec::with_capacity(want.min(1024)),
                };
                if want > 0 {
                    stack.push(open);
                    continue;
                }
                close(open)
            }
            other => return Err(format!("unknown type byte {other:#04x}")),
        };
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok((frame, pos));
            };
            top.items.push(frame);
            if top.items.len() < top.want {
                break;
            }
            let done = stack.pop().expect("stack has a top");
            frame = close(done);
        }
    }
}

#[cfg(test)]
#[path = "resp3_tests.rs"]
mod tests;
