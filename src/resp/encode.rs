//! RESP encoder: [`Frame`] → bytes for a RESP2 or RESP3 client (replies), and the AOF
//! payload / client requests via [`encode_command`]. Format: the RESP2 and RESP3 sections
//! of the Redis protocol spec; RESP3 types go to RESP2 clients the way Redis 7 writes them.
//!
//! What can fail: nothing returns an error. Nested arrays are walked with an explicit stack
//! (no recursion). A `Simple` or `Error` text containing CR or LF would break the stream, so
//! those bytes are sent as spaces (what Redis does to error texts).

use bytes::Bytes;

use crate::keyspace::zset::score::format_score;
use crate::resp::{Frame, Protocol};

const CRLF: &[u8] = b"\r\n";

fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut text = itoa::Buffer::new();
    out.extend_from_slice(text.format(n).as_bytes());
}

fn push_len_header(out: &mut Vec<u8>, kind: u8, len: usize) {
    out.push(kind);
    let mut text = itoa::Buffer::new();
    out.extend_from_slice(text.format(len).as_bytes());
    out.extend_from_slice(CRLF);
}

/// `+text\r\n` / `-text\r\n`, with CR and LF replaced by spaces.
fn push_line(out: &mut Vec<u8>, kind: u8, text: &str) {
    out.push(kind);
    let bytes = text.as_bytes();
    if memchr::memchr2(b'\r', b'\n', bytes).is_none() {
        out.extend_from_slice(bytes);
    } else {
        out.extend(
            bytes
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(CRLF);
}

/// Appends the RESP2 encoding of `frame` to `out`; same as
/// `encode_as(frame, Protocol::Resp2, out)`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    encode_as(frame, Protocol::Resp2, out);
}

/// The children of a container frame still to be written.
enum Pending<'a> {
    /// Array, set or push elements.
    Items(std::slice::Iter<'a, Frame>),
    /// Map pairs; the value of the pair whose key was just written waits in the option.
    Pairs(std::slice::Iter<'a, (Frame, Frame)>, Option<&'a Frame>),
}

impl<'a> Pending<'a> {
    fn next(&mut self) -> Option<&'a Frame> {
        match self {
            Pending::Items(items) => items.next(),
            Pending::Pairs(pairs, value) => match value.take() {
                Some(value) => Some(value),
                None => pairs.next().map(|(k, v)| {
                    *value = Some(v);
                    k
                }),
            },
        }
    }
}

/// Appends the encoding of `frame` for a client speaking `protocol` to `out`.
///
/// Both: `Simple` → `+text`, `Error` → `-text`, `Integer` → `:n`, `Bulk` → `$len` + bytes,
/// `Array` → `*n` then each element. RESP2: `Null` → `$-1`, `NullArray` → `*-1`, and the
/// RESP3 types written down as Redis 7 does: `Map` → flat `*2n` array, `Set`/`Push` →
/// array, `Double` → bulk `%.17g` text, `Boolean` → `:1`/`:0`, `BigNumber` and `Verbatim`
/// → bulk string. RESP3: `Null`/`NullArray` → `_`, `Map` → `%n`, `Set` → `~n`, `Push` →
/// `>n`, `Double` → `,text`, `Boolean` → `#t`/`#f`, `BigNumber` → `(digits`, `Verbatim`
/// → `=len\r\ntxt:text`. Lines end in CRLF. Iterative: arbitrarily deep nesting is fine.
pub fn encode_as(frame: &Frame, protocol: Protocol, out: &mut Vec<u8>) {
    let resp3 = protocol == Protocol::Resp3;
    let mut stack: Vec<Pending<'_>> = Vec::new();
    let mut next = Some(frame);
    loop {
        let current = match next.take() {
            Some(current) => current,
            None => match stack.last_mut() {
                None => return,
                Some(pending) => match pending.next() {
                    Some(item) => item,
                    None => {
                        stack.pop();
                        continue;
                    }
                },
            },
        };
        match current {
            Frame::Simple(text) => push_line(out, b'+', text),
            Frame::Error(text) => push_line(out, b'-', text),
            Frame::Integer(n) => {
                out.push(b':');
                push_int(out, *n);
                out.extend_from_slice(CRLF);
            }
            Frame::Bulk(bytes) => push_bulk(out, bytes),
            Frame::Null | Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                push_len_header(out, b'*', items.len());
                stack.push(Pending::Items(items.iter()));
            }
            Frame::Set(items) => {
                push_len_header(out, if resp3 { b'~' } else { b'*' }, items.len());
                stack.push(Pending::Items(items.iter()));
            }
            Frame::Push(items) => {
                push_len_header(out, if resp3 { b'>' } else { b'*' }, items.len());
                stack.push(Pending::Items(items.iter()));
            }
            Frame::Map(pairs) => {
                if resp3 {
                    push_len_header(out, b'%', pairs.len());
                } else {
                    push_len_header(out, b'*', pairs.len() * 2);
                }
                stack.push(Pending::Pairs(pairs.iter(), None));
            }
            Frame::Double(x) => {
                let text = format_score(*x);
                if resp3 {
                    push_line(out, b',', &text);
                } else {
                    push_bulk(out, text.as_bytes());
                }
            }
            Frame::Boolean(b) if resp3 => {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" })
            }
            Frame::Boolean(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Frame::BigNumber(digits) if resp3 => push_line(out, b'(', digits),
            Frame::BigNumber(digits) => push_bulk(out, digits.as_bytes()),
            Frame::Verbatim(text) if resp3 => {
                push_len_header(out, b'=', text.len() + 4);
                out.extend_from_slice(b"txt:");
                out.extend_from_slice(text);
                out.extend_from_slice(CRLF);
            }
            Frame::Verbatim(text) => push_bulk(out, text),
        }
    }
}

fn push_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    push_len_header(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(CRLF);
}

/// Appends a command as a RESP2 array of bulk strings (`*N\r\n$L\r\narg\r\n…`): the form
/// clients send and the AOF stores. Binary safe.
pub fn encode_command(args: &[Bytes], out: &mut Vec<u8>) {
    let body: usize = args.iter().map(|a| a.len() + 16).sum();
    out.reserve(body + 16);
    push_len_header(out, b'*', args.len());
    for arg in args {
        push_len_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(CRLF);
    }
}

/// The RESP2 encoding of `frame` as a new vector (convenience for tests and tools).
pub fn encode_to_vec(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_kind() {
        let frame = Frame::Array(vec![
            Frame::ok(),
            Frame::error("ERR syntax error"),
            Frame::Integer(-42),
            Frame::Integer(i64::MIN),
            Frame::bulk(&b"a\r\nb"[..]),
            Frame::bulk(Bytes::new()),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![]),
            Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![Frame::Null])]),
        ]);
        let expected: &[u8] =
            b"*10\r\n+OK\r\n-ERR syntax error\r\n:-42\r\n:-9223372036854775808\r\n\
$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n:1\r\n*1\r\n$-1\r\n";
        assert_eq!(encode_to_vec(&frame), expected);
    }

    #[test]
    fn newlines_in_status_texts_become_spaces() {
        assert_eq!(encode_to_vec(&Frame::error("ERR a\r\nb")), b"-ERR a  b\r\n");
        assert_eq!(encode_to_vec(&Frame::Simple("x\ny".into())), b"+x y\r\n");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut frame = Frame::Null;
        for _ in 0..200_000 {
            frame = Frame::Array(vec![frame]);
        }
        let out = encode_to_vec(&frame);
        assert_eq!(out.len(), 200_000 * 4 + 5);
        assert!(out.ends_with(b"*1\r\n$-1\r\n"));
        // Dropping a deeply nested Frame recurses in Drop; unwind it iteratively here.
        let mut current = frame;
        while let Frame::Array(mut items) = current {
            current = items.pop().unwrap_or(Frame::Null);
        }
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(
            &[Bytes::from_static(b"SET"), Bytes::from_static(b"k\0")],
            &mut out,
        );
        assert_eq!(out, b"*2\r\n$3\r\nSET\r\n$2\r\nk\0\r\n");
        out.clear();
        encode_command(&[], &mut out);
        assert_eq!(out, b"*0\r\n");
    }
}
