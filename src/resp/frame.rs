//! `Frame`: one RESP value (RESP2 types plus the RESP3 ones), used for replies (and AOF
//! payload encoding), and [`Protocol`], the version a client speaks. Source of the types:
//! the RESP2 and RESP3 sections of the Redis protocol spec
//! (<https://redis.io/docs/reference/protocol-spec/>).
//!
//! RESP3-only variants (`Map`, `Set`, `Double`, `Boolean`, `BigNumber`, `Verbatim`,
//! `Push`) may be built for any client: the encoder writes them down to RESP2 the way
//! Redis 7 does for a RESP2 client (see `encode.rs`). Nothing here can fail.

use bytes::Bytes;

/// The protocol a connection speaks (`HELLO 2` / `HELLO 3`); every connection starts on
/// RESP2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2: the default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The protocol number HELLO reports: 2 or 3.
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One RESP value.
///
/// `Eq` holds because replies never carry a NaN `Double` (Redis commands refuse to
/// produce NaN scores).
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text\r\n`. Must not contain `\r` or `\n`.
    Simple(String),
    /// `-text\r\n`, e.g. `ERR syntax error` or `WRONGTYPE Operation against …`.
    Error(String),
    /// `:n\r\n`.
    Integer(i64),
    /// `$len\r\nbytes\r\n`; binary safe.
    Bulk(Bytes),
    /// A null where a string was expected: `$-1\r\n` on RESP2, `_\r\n` on RESP3.
    Null,
    /// A null where an array was expected: `*-1\r\n` on RESP2, `_\r\n` on RESP3.
    NullArray,
    /// `*n\r\n` followed by `n` frames.
    Array(Vec<Frame>),
    /// RESP3 map `%n\r\n` then `n` key/value pairs; RESP2: a flat array of `2n` frames.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set `~n\r\n`; RESP2: an array.
    Set(Vec<Frame>),
    /// RESP3 double `,text\r\n` (text like Redis 7.0's `%.17g`: `1.1000000000000001`,
    /// `inf`, `-inf`); RESP2: a bulk string of the same text.
    Double(f64),
    /// RESP3 boolean `#t\r\n` / `#f\r\n`; RESP2: the integer 1 or 0.
    Boolean(bool),
    /// RESP3 big number `(digits\r\n` (decimal text, optional leading `-`); RESP2: a bulk
    /// string of the digits.
    BigNumber(String),
    /// RESP3 verbatim string of format `txt`: `=len\r\ntxt:text\r\n`; RESP2: a bulk
    /// string of the text alone (INFO, CLIENT LIST and CLIENT INFO use it).
    Verbatim(Bytes),
    /// RESP3 out-of-band push `>n\r\n` (Pub/Sub messages, invalidations); RESP2: an array.
    Push(Vec<Frame>),
}

impl Eq for Frame {}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".to_string())
    }

    /// An error reply; `text` is the whole message including its code, e.g. `ERR syntax error`.
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(text.into())
    }

    /// A bulk string copied from `bytes`.
    pub fn bulk(bytes: impl Into<Bytes>) -> Frame {
        Frame::Bulk(bytes.into())
    }

    /// True for `Frame::Error`.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// A map from `(key, value)` pairs with bulk-string keys.
    pub fn map_of(pairs: impl IntoIterator<Item = (&'static str, Frame)>) -> Frame {
        Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Frame::Bulk(Bytes::from_static(k.as_bytes())), v))
                .collect(),
        )
    }
}
