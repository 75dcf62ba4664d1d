//! `Frame`: one RESP2 value, used for replies (and AOF payload encoding).
//! Source of the types: the RESP2 section of the Redis protocol spec.

use bytes::Bytes;

/// One RESP value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `+text\r\n`. Must not contain `\r` or `\n`.
    Simple(String),
    /// `-text\r\n`, e.g. `ERR syntax error` or `WRONGTYPE Operation against …`.
    Error(String),
    /// `:n\r\n`.
    Integer(i64),
    /// `$len\r\nbytes\r\n`; binary safe.
    Bulk(Bytes),
    /// `$-1\r\n` (RESP2 null bulk string).
    Null,
    /// `*-1\r\n` (RESP2 null array).
    NullArray,
    /// `*n\r\n` followed by `n` frames.
    Array(Vec<Frame>),
}

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
}
