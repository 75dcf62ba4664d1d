//! RESP2 encoder: [`Frame`] → bytes (replies, and the AOF payload / client requests via
//! [`encode_command`]). Format: the RESP2 section of the Redis protocol spec.
//!
//! What can fail: nothing returns an error. Nested arrays are walked with an explicit stack
//! (no recursion). A `Simple` or `Error` text containing CR or LF would break the stream, so
//! those bytes are sent as spaces (what Redis does to error texts).

use bytes::Bytes;

use crate::resp::Frame;

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

/// Appends the RESP2 encoding of `frame` to `out`.
///
/// `Simple` → `+text\r\n`, `Error` → `-text\r\n`, `Integer` → `:n\r\n`,
/// `Bulk` → `$len\r\nbytes\r\n`, `Null` → `$-1\r\n`, `NullArray` → `*-1\r\n`,
/// `Array` → `*n\r\n` then each element. Iterative: arbitrarily deep nesting is fine.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let mut stack: Vec<std::slice::Iter<'_, Frame>> = Vec::new();
    let mut next = Some(frame);
    loop {
        let current = match next.take() {
            Some(current) => current,
            None => match stack.last_mut() {
                None => return,
                Some(items) => match items.next() {
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
            Frame::Bulk(bytes) => {
                push_len_header(out, b'$', bytes.len());
                out.extend_from_slice(bytes);
                out.extend_from_slice(CRLF);
            }
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                push_len_header(out, b'*', items.len());
                stack.push(items.iter());
            }
        }
    }
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
