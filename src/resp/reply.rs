//! RESP2 reply parser for the client side (simulator clients, tests, tools): turns a
//! server's reply bytes, split at arbitrary points, into [`Frame`]s. Handles `+ - : $ *`
//! including nested arrays, `$-1` (→ [`Frame::Null`]) and `*-1` (→ [`Frame::NullArray`]).
//! Format: the RESP2 section of the Redis protocol spec.
//!
//! What can fail: malformed or oversized replies give a [`ProtocolError`] (texts of our own,
//! e.g. `invalid bulk length`, `unknown reply type '?'`, `expected CRLF`); the parser then
//! stays failed. Lines must end in CRLF and bulk bodies must be followed by CRLF (stricter
//! than the server side, which mirrors Redis's leniency). Nesting is handled with an
//! explicit stack bounded by [`REPLY_NESTING_DEPTH_MAX`]; no claimed length is allocated
//! up front; non-UTF-8 status texts are decoded lossily.

use bytes::Bytes;

use crate::resp::parse::{parse_redis_int, ParseLimits, ProtocolError};
use crate::resp::Frame;

/// Deepest accepted array nesting in a reply.
pub const REPLY_NESTING_DEPTH_MAX: usize = 1024;
/// At most this many element slots are reserved from a `*N` header before elements arrive.
const ELEMENTS_PREALLOC_MAX: usize = 1024;
/// Consumed bytes are compacted away once there are this many and they are at least half.
const COMPACT_MIN_BYTES: usize = 16 * 1024;

/// An array whose elements are still arriving.
#[derive(Debug)]
struct PartialArray {
    items: Vec<Frame>,
    remaining: usize,
}

/// Incremental, iterative, bounded RESP2 reply parser.
#[derive(Debug)]
pub struct ReplyParser {
    limits: ParseLimits,
    buf: Vec<u8>,
    pos: usize,
    scan_from: usize,
    stack: Vec<PartialArray>,
    bulk_len: Option<usize>,
    failed: Option<ProtocolError>,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// A parser with [`ParseLimits::default`] (line length bounds simple/error/integer lines).
    pub fn new() -> Self {
        Self::with_limits(ParseLimits::default())
    }

    /// A parser with explicit limits.
    pub fn with_limits(limits: ParseLimits) -> Self {
        ReplyParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan_from: 0,
            stack: Vec::new(),
            bulk_len: None,
            failed: None,
        }
    }

    /// Appends received bytes. Bytes fed after an error are dropped.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() || data.is_empty() {
            return;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.scan_from = 0;
        } else if self.pos >= COMPACT_MIN_BYTES && self.pos * 2 >= self.buf.len() {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.scan_from = self.scan_from.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Unparsed bytes held (not counting elements of an incomplete array).
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Next complete reply, `Ok(None)` if more bytes are needed.
    /// Errors: a [`ProtocolError`]; every later call returns it again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.parse_next();
        if let Err(err) = &result {
            self.failed = Some(err.clone());
            self.buf = Vec::new();
            self.pos = 0;
            self.stack = Vec::new();
        }
        result
    }

    fn parse_next(&mut self) -> Result<Option<Frame>, ProtocolError> {
        loop {
            let Some(frame) = self.parse_token()? else {
                return Ok(None);
            };
            // `None` here means the token was an array or bulk header: keep reading.
            let Some(mut frame) = frame else {
                continue;
            };
            loop {
                let Some(top) = self.stack.last_mut() else {
                    return Ok(Some(frame));
                };
                top.items.push(frame);
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let done = self.stack.pop().map(|a| a.items).unwrap_or_default();
                frame = Frame::Array(done);
            }
        }
    }

    /// Reads one line or bulk body. `Ok(None)`: incomplete. `Ok(Some(None))`: an array
    /// or bulk header was read. `Ok(Some(Some(frame)))`: a complete value.
    fn parse_token(&mut self) -> Result<Option<Option<Frame>>, ProtocolError> {
        if let Some(len) = self.bulk_len {
            if self.buf.len() - self.pos < len + 2 {
                return Ok(None);
            }
            let body_end = self.pos + len;
            if &self.buf[body_end..body_end + 2] != b"\r\n" {
                return Err(ProtocolError::new("expected CRLF after bulk string"));
            }
            let body = Bytes::copy_from_slice(&self.buf[self.pos..body_end]);
            self.consume_to(body_end + 2);
            self.bulk_len = None;
            return Ok(Some(Some(Frame::Bulk(body))));
        }
        let Some(cr) = self.find_line_end()? else {
            return Ok(None);
        };
        if cr == self.pos {
            return Err(ProtocolError::new("empty reply line"));
        }
        let kind = self.buf[self.pos];
        let text = &self.buf[self.pos + 1..cr];
        let token = match kind {
            b'+' => Some(Frame::Simple(String::from_utf8_lossy(text).into_owned())),
            b'-' => Some(Frame::Error(String::from_utf8_lossy(text).into_owned())),
            b':' => Some(Frame::Integer(
                parse_redis_int(text).ok_or_else(|| ProtocolError::new("invalid integer"))?,
            )),
            b'$' => match parse_redis_int(text) {
                Some(-1) => Some(Frame::Null),
                Some(n) if n >= 0 && n as u64 <= self.limits.bulk_len_max_bytes => {
                    self.bulk_len = Some(
                        usize::try_from(n)
                            .map_err(|_| ProtocolError::new("invalid bulk length"))?,
                    );
                    None
                }
                _ => return Err(ProtocolError::new("invalid bulk length")),
            },
            b'*' => match parse_redis_int(text) {
                Some(-1) => Some(Frame::NullArray),
                Some(0) => Some(Frame::Array(Vec::new())),
                Some(n) if n > 0 && n as u64 <= self.limits.array_len_max => {
                    if self.stack.len() >= REPLY_NESTING_DEPTH_MAX {
                        return Err(ProtocolError::new("reply nested too deeply"));
                    }
                    let count = usize::try_from(n)
                        .map_err(|_| ProtocolError::new("invalid multibulk length"))?;
                    self.stack.push(PartialArray {
                        items: Vec::with_capacity(count.min(ELEMENTS_PREALLOC_MAX)),
                        remaining: count,
                    });
                    None
                }
                _ => return Err(ProtocolError::new("invalid multibulk length")),
            },
            other => {
                let shown = if other.is_ascii_graphic() {
                    char::from(other)
                } else {
                    '?'
                };
                return Err(ProtocolError(format!("unknown reply type '{shown}'")));
            }
        };
        self.consume_to(cr + 2);
        Ok(Some(token))
    }

    /// Index of the `\r` of a complete `…\r\n` line at `pos`, `Ok(None)` if incomplete.
    fn find_line_end(&mut self) -> Result<Option<usize>, ProtocolError> {
        let start = self.scan_from.max(self.pos);
        let Some(offset) = memchr::memchr(b'\r', &self.buf[start..]) else {
            self.scan_from = self.buf.len();
            if self.buf.len() - self.pos > self.limits.inline_len_max_bytes {
                return Err(ProtocolError::new("too big reply line"));
            }
            return Ok(None);
        };
        let cr = start + offset;
        self.scan_from = cr;
        if cr - self.pos > self.limits.inline_len_max_bytes {
            return Err(ProtocolError::new("too big reply line"));
        }
        match self.buf.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some(cr)),
            Some(_) => Err(ProtocolError::new("expected CRLF")),
        }
    }

    fn consume_to(&mut self, new_pos: usize) {
        assert!(new_pos <= self.buf.len() && new_pos >= self.pos);
        self.pos = new_pos;
        self.scan_from = new_pos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut parser = ReplyParser::new();
        parser.feed(input);
        let mut frames = Vec::new();
        while let Some(frame) = parser.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn parses_every_kind() {
        let got = parse(b"+OK\r\n-ERR x\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n")
            .unwrap();
        assert_eq!(
            got,
            vec![
                Frame::ok(),
                Frame::error("ERR x"),
                Frame::Integer(-7),
                Frame::bulk(&b"a\r\n"[..]),
                Frame::Null,
                Frame::NullArray,
                Frame::Array(vec![]),
                Frame::Array(vec![
                    Frame::Array(vec![Frame::Integer(1)]),
                    Frame::bulk(Bytes::new())
                ]),
            ]
        );
    }

    #[test]
    fn incomplete_input_waits() {
        let mut parser = ReplyParser::new();
        for piece in [&b"*2\r"[..], b"\n$5\r\nhel", b"lo\r", b"\n:4", b"2\r\n"] {
            assert_eq!(parser.next_frame(), Ok(None));
            parser.feed(piece);
        }
        let expected = Frame::Array(vec![Frame::bulk("hello"), Frame::Integer(42)]);
        assert_eq!(parser.next_frame(), Ok(Some(expected)));
        assert_eq!(parser.buffered_len(), 0);
    }

    #[test]
    fn errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"?x\r\n", "unknown reply type '?'"),
            (b"\r\n", "empty reply line"),
            (b"+OK\rX", "expected CRLF"),
            (b":1x\r\n", "invalid integer"),
            (b"$-2\r\n", "invalid bulk length"),
            (b"$600000000\r\n", "invalid bulk length"),
            (b"$1\r\nabc", "expected CRLF after bulk string"),
            (b"*-2\r\n", "invalid multibulk length"),
            (b"*99999999999\r\n", "invalid multibulk length"),
        ];
        for (input, text) in cases {
            assert_eq!(parse(input).unwrap_err().0, *text, "{input:?}");
        }
        let mut long = b"+".to_vec();
        long.resize(ParseLimits::default().inline_len_max_bytes + 2, b'a');
        assert_eq!(parse(&long).unwrap_err().0, "too big reply line");
    }

    #[test]
    fn nesting_is_bounded_and_errors_are_sticky() {
        let mut parser = ReplyParser::new();
        parser.feed(&b"*1\r\n".repeat(REPLY_NESTING_DEPTH_MAX + 1));
        let err = parser.next_frame().unwrap_err();
        assert_eq!(err.0, "reply nested too deeply");
        parser.feed(b"+OK\r\n");
        assert_eq!(parser.next_frame(), Err(err));
        assert_eq!(parser.buffered_len(), 0);

        let mut parser = ReplyParser::new();
        parser.feed(&b"*1\r\n".repeat(REPLY_NESTING_DEPTH_MAX));
        parser.feed(b":5\r\n");
        let mut frame = parser.next_frame().unwrap().unwrap();
        let mut depth = 0;
        while let Frame::Array(mut items) = frame {
            depth += 1;
            frame = items.pop().unwrap();
        }
        assert_eq!((depth, frame), (REPLY_NESTING_DEPTH_MAX, Frame::Integer(5)));
    }
}
