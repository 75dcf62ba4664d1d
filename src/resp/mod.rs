//! RESP: the Redis serialization protocol (<https://redis.io/docs/reference/protocol-spec/>).
//! `frame.rs` holds the reply/value type, `parse.rs` the incremental, iterative, bounded
//! request parser (arrays of bulk strings and inline commands, split by `inline.rs`),
//! `reply.rs` the client-side reply parser, `encode.rs` the encoder (RESP2 or RESP3),
//! `resp3.rs` the RESP3 reply shapes of commands.
//!
//! What can fail here: malformed or oversized input yields a `ProtocolError` whose text is
//! sent as `-ERR Protocol error: …` before the connection is closed; nothing panics and no
//! claimed length is allocated up front.

pub mod encode;
pub mod frame;
pub mod inline;
pub mod parse;
pub mod reply;
pub mod resp3;

pub use encode::{encode, encode_as, encode_command};
pub use frame::{Frame, Protocol};
pub use parse::{ParseLimits, ProtocolError, RequestParser};
pub use reply::ReplyParser;

#[cfg(test)]
mod proptests;
