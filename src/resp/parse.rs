//! RESP2 request parser for the server side of a connection: turns the bytes a client
//! sends, split at arbitrary points, into commands (`Vec<Bytes>`, `args[0]` = command name).
//! Semantics follow Redis 7's `processMultibulkBuffer` / `processInlineBuffer`
//! (src/networking.c): arrays of bulk strings (`*N\r\n$L\r\n…\r\n`) and inline commands
//! (any line not starting with `*`, split by [`crate::resp::inline`]).
//!
//! What can fail: malformed or oversized input gives a [`ProtocolError`] carrying Redis's
//! exact text; the parser then stays failed (the connection must reply
//! [`ProtocolError::to_frame`] and close). Nothing recurses, nothing panics on input, and no
//! claimed length is allocated up front: a `$600000000` header costs nothing until bytes
//! arrive, and lengths over [`ParseLimits`] are refused as soon as the header is read.
//!
//! Cost model: every byte is scanned once (the search for a line end resumes where it
//! stopped), consumed bytes are compacted away in amortised O(1), small arguments are copied
//! into their own allocation (so a stored value never pins a whole read buffer), and an
//! argument of at least [`BIG_ARG_MIN_BYTES`] that is still arriving is collected directly
//! into its own buffer, like Redis's `PROTO_MBULK_BIG_ARG` path.

use std::fmt;

use bytes::Bytes;

use crate::resp::inline::split_inline_args;
use crate::resp::Frame;

/// Default [`ParseLimits::bulk_len_max_bytes`]: Redis's `proto-max-bulk-len` (512 MiB).
pub const BULK_LEN_MAX_BYTES_DEFAULT: u64 = 512 * 1024 * 1024;
/// Default [`ParseLimits::array_len_max`] (arguments per command).
pub const ARRAY_LEN_MAX_DEFAULT: u64 = 1_048_576;
/// Default [`ParseLimits::inline_len_max_bytes`]: Redis's `PROTO_INLINE_MAX_SIZE` (64 KiB).
pub const INLINE_LEN_MAX_BYTES_DEFAULT: usize = 64 * 1024;
/// Redis refuses multibulk counts above `INT_MAX` whatever the configuration.
const ARRAY_LEN_HARD_MAX: u64 = i32::MAX as u64;
/// A bulk argument at least this long that is not yet complete is collected into its own
/// buffer (Redis: `PROTO_MBULK_BIG_ARG`, 32 KiB).
pub const BIG_ARG_MIN_BYTES: usize = 32 * 1024;
/// At most this many argument slots are reserved from a `*N` header before arguments arrive.
const ARGS_PREALLOC_MAX: usize = 1024;
/// Consumed bytes at the front of the buffer are compacted away once there are this many
/// and they make up at least half of the buffer.
const COMPACT_MIN_BYTES: usize = 16 * 1024;
/// An empty input buffer whose capacity exceeds this is released instead of kept.
const IDLE_BUFFER_CAPACITY_MAX_BYTES: usize = 1024 * 1024;
/// Longest decimal integer accepted by Redis's `string2ll` (`LONG_STR_SIZE` - 1).
const INTEGER_TEXT_LEN_MAX_BYTES: usize = 20;

/// Bounds on what one request may claim or buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest accepted bulk string length in bytes (`$N`); larger → `invalid bulk length`.
    pub bulk_len_max_bytes: u64,
    /// Largest accepted argument count (`*N`); larger → `invalid multibulk length`.
    pub array_len_max: u64,
    /// Longest inline request line / length header line in bytes still waiting for its
    /// terminator; longer → `too big inline request` (or `too big (m)bulk count string`).
    pub inline_len_max_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            bulk_len_max_bytes: BULK_LEN_MAX_BYTES_DEFAULT,
            array_len_max: ARRAY_LEN_MAX_DEFAULT,
            inline_len_max_bytes: INLINE_LEN_MAX_BYTES_DEFAULT,
        }
    }
}

/// A protocol error. The string is the text after `ERR Protocol error: `, exactly as Redis 7
/// words it: `invalid multibulk length`, `invalid bulk length`, `expected '$', got 'x'`,
/// `too big mbulk count string`, `too big bulk count string`, `too big inline request`,
/// `unbalanced quotes in request`. Client-side reply errors use their own texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    /// The reply a server sends before closing: `-ERR Protocol error: <text>`.
    pub fn to_frame(&self) -> Frame {
        Frame::Error(format!("ERR Protocol error: {}", self.0))
    }

    pub(crate) fn new(text: &str) -> Self {
        ProtocolError(text.to_string())
    }

    /// `expected '$', got 'c'`; like Redis, CR/LF in the message become spaces. A byte
    /// outside ASCII is shown as the Latin-1 character (Redis sends the raw byte).
    fn expected_dollar(got: u8) -> Self {
        let shown = match got {
            b'\r' | b'\n' => ' ',
            other => char::from(other),
        };
        ProtocolError(format!("expected '$', got '{shown}'"))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Redis's `string2ll`: optional `-`, no `+`, no leading zeros (except `0` itself), no
/// spaces, at most 20 characters, must fit an `i64`. `None` when invalid.
pub(crate) fn parse_redis_int(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > INTEGER_TEXT_LEN_MAX_BYTES {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

/// Incremental, iterative, bounded RESP2 request parser (see the module docs).
///
/// Use: [`feed`](Self::feed) bytes as they arrive, then call
/// [`next_command`](Self::next_command) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct RequestParser {
    limits: ParseLimits,
    /// Received bytes; `buf[pos..]` is not yet consumed.
    buf: Vec<u8>,
    pos: usize,
    /// Absolute index in `buf` up to which the current line's terminator was searched.
    scan_from: usize,
    /// Inside a `*N` request: arguments still to read.
    remaining_args: u64,
    /// Arguments of the request being read.
    args: Vec<Bytes>,
    /// Total bytes in `args`.
    args_bytes: usize,
    /// Length of the bulk argument whose `$L` header has been read but not its body.
    bulk_len: Option<usize>,
    /// Body of a big bulk argument being collected outside `buf`.
    big_arg: Option<Vec<u8>>,
    /// Set once a protocol error was returned; the parser stays failed.
    failed: Option<ProtocolError>,
}

impl Default for RequestParser {
    /// A parser with [`ParseLimits::default`].
    fn default() -> Self {
        Self::new(ParseLimits::default())
    }
}

impl RequestParser {
    /// A parser with the given limits and an empty buffer.
    pub fn new(limits: ParseLimits) -> Self {
        RequestParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan_from: 0,
            remaining_args: 0,
            args: Vec::new(),
            args_bytes: 0,
            bulk_len: None,
            big_arg: None,
            failed: None,
        }
    }

    /// Appends bytes received from the socket. Bytes fed after a protocol error are dropped.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let mut data = data;
        if let (Some(big), Some(len)) = (self.big_arg.as_mut(), self.bulk_len) {
            let take = (len - big.len()).min(data.len());
            reserve_capped(big, take, len);
            big.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if data.is_empty() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// Bytes held for commands not yet returned: unparsed input plus the arguments already
    /// read of an incomplete command. A server compares this with its query-buffer limit.
    pub fn buffered_len(&self) -> usize {
        (self.buf.len() - self.pos) + self.big_arg.as_ref().map_or(0, Vec::len) + self.args_bytes
    }

    /// Next complete command (`args[0]` = command name), `Ok(None)` if more bytes are needed.
    /// Empty inline lines and `*0` / `*-1` requests are skipped, as Redis does.
    ///
    /// Errors: a [`ProtocolError`] with Redis's text; every later call returns it again.
    pub fn next_command(&mut self) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.parse_next();
        if let Err(err) = &result {
            self.failed = Some(err.clone());
            // Release everything: a failed connection only sends the error and closes.
            self.buf = Vec::new();
            self.pos = 0;
            self.scan_from = 0;
            self.args = Vec::new();
            self.args_bytes = 0;
            self.bulk_len = None;
            self.big_arg = None;
        }
        result
    }

    fn parse_next(&mut self) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining_args == 0 {
                let Some(&first) = self.buf.get(self.pos) else {
                    return Ok(None);
                };
                if first != b'*' {
                    match self.parse_inline()? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
                match self.parse_array_header()? {
                    None => return Ok(None),
                    Some(0) => continue,
                    Some(count) => {
                        self.remaining_args = count;
                        let prealloc = count.min(ARGS_PREALLOC_MAX as u64) as usize;
                        self.args = Vec::with_capacity(prealloc);
                        self.args_bytes = 0;
                    }
                }
            }
            while self.remaining_args > 0 {
                let Some(arg) = self.parse_bulk_arg()? else {
                    return Ok(None);
                };
                self.args_bytes += arg.len();
                self.args.push(arg);
                self.remaining_args -= 1;
            }
            self.args_bytes = 0;
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }

    /// Drops consumed bytes from the front of `buf` when that is cheap (amortised O(1)).
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            if self.buf.capacity() > IDLE_BUFFER_CAPACITY_MAX_BYTES {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.pos = 0;
            self.scan_from = 0;
        } else if self.pos >= COMPACT_MIN_BYTES && self.pos * 2 >= self.buf.len() {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.scan_from = self.scan_from.saturating_sub(self.pos);
            self.pos = 0;
        }
    }

    /// Finds `needle` in the unconsumed bytes, resuming where the last search stopped.
    fn find_from_scan(&mut self, needle: u8) -> Option<usize> {
        let start = self.scan_from.max(self.pos);
        match memchr::memchr(needle, &self.buf[start..]) {
            Some(offset) => {
                self.scan_from = start + offset;
                Some(start + offset)
            }
            None => {
                self.scan_from = self.buf.len();
                None
            }
        }
    }

    /// Marks everything up to `new_pos` consumed.
    fn consume_to(&mut self, new_pos: usize) {
        assert!(new_pos <= self.buf.len() && new_pos >= self.pos);
        self.pos = new_pos;
        self.scan_from = new_pos;
    }

    /// Reads an inline request line. `Ok(Some(vec![]))` for a blank line.
    fn parse_inline(&mut self) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(newline) = self.find_from_scan(b'\n') else {
            if self.buf.len() - self.pos > self.limits.inline_len_max_bytes {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        let mut line_end = newline;
        if line_end > self.pos && self.buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let args = split_inline_args(&self.buf[self.pos..line_end])
            .map_err(|_| ProtocolError::new("unbalanced quotes in request"))?;
        // The argument-count limit holds for inline commands too (with the defaults, 64 KiB
        // of inline text can never reach it; found by the garbage proptest with tiny limits).
        if args.len() as u64 > self.limits.array_len_max {
            return Err(ProtocolError::new("invalid multibulk length"));
        }
        self.consume_to(newline + 1);
        Ok(Some(args))
    }

    /// Reads a length header line (`*N\r\n` or `$N\r\n`); returns the index of its `\r`.
    /// Like Redis, the line ends at the first `\r` and the byte after it is skipped unread.
    /// `Ok(None)` while incomplete (the caller must then wait for the byte after `\r`).
    fn find_header_end(&mut self, too_big: &str) -> Result<Option<usize>, ProtocolError> {
        match self.find_from_scan(b'\r') {
            Some(cr) => Ok(Some(cr)),
            None if self.buf.len() - self.pos > self.limits.inline_len_max_bytes => {
                Err(ProtocolError::new(too_big))
            }
            None => Ok(None),
        }
    }

    /// Reads `*N\r\n`. Returns the argument count (0 for `*0` / negative counts).
    fn parse_array_header(&mut self) -> Result<Option<u64>, ProtocolError> {
        let Some(cr) = self.find_header_end("too big mbulk count string")? else {
            return Ok(None);
        };
        let count = parse_redis_int(&self.buf[self.pos + 1..cr])
            .filter(|&n| n < 0 || n as u64 <= self.limits.array_len_max.min(ARRAY_LEN_HARD_MAX))
            .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
        if cr + 1 >= self.buf.len() {
            return Ok(None); // Valid so far; wait for the byte after '\r'.
        }
        self.consume_to(cr + 2);
        Ok(Some(count.max(0) as u64))
    }

    /// Reads one `$L\r\n<L bytes>\r\n` argument, or `Ok(None)` if incomplete.
    fn parse_bulk_arg(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let len = match self.bulk_len {
            Some(len) => len,
            None => {
                let Some(cr) = self.find_header_end("too big bulk count string")? else {
                    return Ok(None);
                };
                let first = self.buf[self.pos];
                if first != b'$' {
                    return Err(ProtocolError::expected_dollar(first));
                }
                let len = parse_redis_int(&self.buf[self.pos + 1..cr])
                    .filter(|&n| n >= 0 && n as u64 <= self.limits.bulk_len_max_bytes)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| ProtocolError::new("invalid bulk length"))?;
                if cr + 1 >= self.buf.len() {
                    return Ok(None);
                }
                self.consume_to(cr + 2);
                self.bulk_len = Some(len);
                self.start_big_arg_if_needed(len);
                len
            }
        };
        let available = self.buf.len() - self.pos;
        let arg = match self.big_arg.as_mut() {
            Some(big) => {
                // `feed` fills `big` first; the 2 bytes after the body come through `buf`.
                if big.len() < len || available < 2 {
                    return Ok(None);
                }
                Bytes::from(std::mem::take(big))
            }
            None => {
                if available < len + 2 {
                    return Ok(None);
                }
                Bytes::copy_from_slice(&self.buf[self.pos..self.pos + len])
            }
        };
        // Like Redis, the two bytes after the body are skipped without being checked.
        let skip = if self.big_arg.take().is_some() {
            2
        } else {
            len + 2
        };
        self.consume_to(self.pos + skip);
        self.bulk_len = None;
        Ok(Some(arg))
    }

    /// For a big argument whose body has not fully arrived, moves the part that has into a
    /// buffer of its own, so later bytes go straight there (see [`Self::feed`]).
    fn start_big_arg_if_needed(&mut self, len: usize) {
        let available = self.buf.len() - self.pos;
        if len < BIG_ARG_MIN_BYTES || available >= len + 2 {
            return;
        }
        let have = available.min(len);
        let mut big = Vec::new();
        reserve_capped(&mut big, have.max(BIG_ARG_MIN_BYTES), len);
        big.extend_from_slice(&self.buf[self.pos..self.pos + have]);
        self.consume_to(self.pos + have);
        self.big_arg = Some(big);
        self.compact();
    }
}

/// Makes room for `additional` more bytes in `v`, growing geometrically but never beyond
/// `cap_total` bytes (the argument's declared length, which is already within limits and
/// is only reached as bytes actually arrive).
fn reserve_capped(v: &mut Vec<u8>, additional: usize, cap_total: usize) {
    if v.capacity() - v.len() >= additional {
        return;
    }
    let target = (v.len() + additional)
        .max(v.capacity().saturating_mul(2))
        .min(cap_total)
        .max(v.len() + additional);
    v.reserve_exact(target - v.len());
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
