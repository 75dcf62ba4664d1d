//! Command table and command execution for one shard's keyspace.
//!
//! `table()` lists every command (name, arity, Redis 7 flags, legacy key spec, routing);
//! `execute` runs a data command against a [`Db`] and builds its exact Redis 7 reply;
//! `command_command` answers COMMAND / COMMAND INFO / DOCS / COUNT / LIST / GETKEYS.
//! One file per family: `strings`, `keys`, `expire`, `introspect` (COMMAND), `table`.
//!
//! Writes push what must go to the AOF onto [`ExecCtx::propagate`], always in a form that
//! replays to the same state (absolute TTLs, INCRBYFLOAT as SET … KEEPTTL, no-op writes
//! log nothing). What can fail: only the client's command (arity, syntax, types, ranges),
//! reported as the exact Redis error frame; nothing panics on input.

mod collection;
pub mod databases;
mod docs;
mod expire;
mod generic_extra;
mod hashes;
mod introspect;
mod keys;
mod lists;
mod multi;
mod pubsub;
pub mod rewrite;
mod sets;
mod strings;
mod table;
pub(crate) mod zsets;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::keyspace::Db;
use crate::resp::Frame;

pub use introspect::command_command;
pub use table::table;
// Lists family hooks for src/shard/blocking.rs (blocked clients) and src/shard/route.rs
// (LMPOP/BLMPOP have movable keys: `numkeys` then the keys).
pub use lists::{blocking_wait_spec, parse_timeout};

/// Longest command name `lookup` considers (longer names are unknown).
pub const COMMAND_NAME_LEN_MAX_BYTES: usize = 32;
/// Largest string value (Redis `proto-max-bulk-len` default, 512 MB).
pub const STRING_LEN_MAX_BYTES: u64 = 512 * 1024 * 1024;

pub(crate) const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
pub(crate) const ERR_SYNTAX: &str = "ERR syntax error";
pub(crate) const ERR_WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
pub(crate) const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";
pub(crate) const ERR_NO_SUCH_KEY: &str = "ERR no such key";
pub(crate) const ERR_STRING_TOO_LONG: &str =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// What a command needs from its surroundings: time, randomness, and where to put the
/// commands the AOF must log.
pub struct ExecCtx<'a> {
    /// Wall clock, ms since the Unix epoch (one value per command, like Redis's
    /// `commandTimeSnapshot`).
    pub now_ms: u64,
    /// Seeded randomness (RANDOMKEY, active-expiry sampling).
    pub random: &'a mut dyn FnMut() -> u64,
    /// Commands to append to the AOF, in order; each is `[name, args…]`. Nothing is pushed
    /// while `replaying`.
    pub propagate: &'a mut Vec<Vec<Bytes>>,
    /// True while replaying the AOF at start-up: nothing expires, nothing is propagated by
    /// lazy expiry, past absolute TTLs are stored as given.
    pub replaying: bool,
}

impl ExecCtx<'_> {
    /// Queues one command for the AOF. Dropped while replaying (the log already holds it).
    pub fn log(&mut self, cmd: Vec<Bytes>) {
        if !self.replaying {
            self.propagate.push(cmd);
        }
    }
}

/// The signature every data command implements; `args[0]` is the command name.
pub(crate) type Handler = fn(&mut Db, &mut ExecCtx, &[Bytes]) -> Frame;

/// One command's static description (Redis `COMMAND INFO` / `COMMAND DOCS` fields) and
/// how the shard layer must route it.
#[derive(Clone)]
pub struct CommandSpec {
    /// Lowercase name, e.g. "get".
    pub name: &'static str,
    /// Redis convention: N = exactly N args incl. the name; -N = at least N.
    pub arity: i32,
    /// Redis 7 flag names as COMMAND INFO shows them ("write", "readonly", "fast", …).
    pub flags: &'static [&'static str],
    /// Legacy key spec: position of the first key (0 = none).
    pub first_key: i32,
    /// Position of the last key; -1 = the last argument.
    pub last_key: i32,
    /// Distance between keys (2 for MSET).
    pub key_step: i32,
    /// How the shard/server layer routes the command.
    pub route: Route,
    /// COMMAND DOCS group: "string", "generic", "connection", "server".
    pub group: &'static str,
    /// COMMAND DOCS one-line summary.
    pub summary: &'static str,
    /// COMMAND DOCS `since` (Redis version that introduced the command).
    pub since: &'static str,
    /// ACL categories as COMMAND INFO shows them ("@read", "@string", "@fast", …).
    pub acl_categories: &'static [&'static str],
    pub(crate) handler: Option<Handler>,
}

/// Where a command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Handled by the server layer, never reaches `execute`: PING ECHO QUIT SELECT INFO
    /// CONFIG COMMAND AUTH HELLO CLIENT.
    Connection,
    /// Exactly one key, at `first_key`.
    Single,
    /// Keys may span shards; split by shard, run each part, merge the replies.
    SplitKeys(Merge),
    /// All keys must live on one shard (else refused by the server layer).
    SameShard,
    /// Run on every shard and merge the replies.
    AllShards(Merge),
}

/// How per-shard replies are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Add the integer replies (DEL, EXISTS, DBSIZE, …).
    SumIntegers,
    /// MGET: put each shard's values back in the order of the original keys.
    MgetOrder,
    /// KEYS: concatenate the arrays.
    ConcatArrays,
    /// FLUSHDB/FLUSHALL: `+OK` if every shard said OK.
    AllOk,
    /// RANDOMKEY: pick one of the non-null replies.
    RandomKey,
    /// SCAN: per-shard cursors (see `keys::scan` for the cursor shape).
    Scan,
}

impl CommandSpec {
    /// True for commands with the "write" flag.
    pub fn is_write(&self) -> bool {
        self.flags.contains(&"write")
    }

    /// Positions (into the full args, name at 0) of the key arguments of a call with `argc`
    /// arguments, from the legacy key spec. Empty for keyless commands.
    pub fn key_indexes(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (
            self.first_key.max(0) as usize,
            self.key_step.max(1) as usize,
        );
        let last = if self.first_key <= 0 {
            0
        } else if self.last_key < 0 {
            (argc as i64 + self.last_key as i64).max(0) as usize
        } else {
            (self.last_key as usize).min(argc.saturating_sub(1))
        };
        let range = if first == 0 || first > last {
            0..0
        } else {
            first..last + 1
        };
        range.step_by(step)
    }
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > COMMAND_NAME_LEN_MAX_BYTES {
        return None;
    }
    let mut lowercase = [0u8; COMMAND_NAME_LEN_MAX_BYTES];
    let lowercase = &mut lowercase[..name.len()];
    lowercase.copy_from_slice(name);
    lowercase.make_ascii_lowercase();
    table::index_of(lowercase).map(|i| &table()[i])
}

/// Checks the argument count (`argc` includes the name). Err is the exact Redis error,
/// e.g. `ERR wrong number of arguments for 'get' command`.
pub fn check_arity(spec: &CommandSpec, argc: usize) -> Result<(), Frame> {
    let argc = argc as i64;
    let arity = spec.arity as i64;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(wrong_args(spec.name));
    }
    Ok(())
}

pub(crate) fn wrong_args(name: &str) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Executes a data command (route != Connection) on this shard's keyspace; `args[0]` is
/// the name in any case. Unknown commands get Redis 7's
/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `.
pub fn execute(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let Some(name) = args.first() else {
        return Frame::error("ERR empty command");
    };
    match lookup(name) {
        Some(spec) => execute_spec(spec, db, ctx, args),
        None => unknown_command(args),
    }
}

/// Like [`execute`] for a spec the caller already looked up (saves the second lookup on
/// the hot path). `spec` must be the entry for `args[0]`.
pub fn execute_spec(spec: &CommandSpec, db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    if let Err(e) = check_arity(spec, args.len()) {
        return e;
    }
    match spec.handler {
        Some(handler) => handler(db, ctx, args),
        None => Frame::error(format!(
            "ERR '{}' is handled by the connection layer",
            spec.name
        )),
    }
}

/// Redis 7's unknown-command error (name and args truncated to 128 bytes, each argument
/// cut at its first NUL byte, newlines blanked). Bytes that are not UTF-8 are shown as
/// U+FFFD (Redis sends them raw: a known difference, docs/compatibility.md).
pub fn unknown_command(args: &[Bytes]) -> Frame {
    const SHOWN_MAX_BYTES: usize = 128;
    let name = args
        .first()
        .map(|n| &n[..n.len().min(SHOWN_MAX_BYTES)])
        .unwrap_or(b"");
    let mut shown = String::new();
    for a in args.iter().skip(1) {
        if shown.len() >= SHOWN_MAX_BYTES {
            break;
        }
        let room = SHOWN_MAX_BYTES - shown.len();
        // Redis formats each argument with `%.*s`: it ends at the first NUL byte.
        let a = &a[..a.iter().position(|&c| c == 0).unwrap_or(a.len())];
        shown.push('\'');
        shown.push_str(&String::from_utf8_lossy(&a[..a.len().min(room)]));
        shown.push_str("' ");
    }
    let text = format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(name),
        shown
    );
    Frame::error(text.replace(['\r', '\n'], " "))
}

/// Parses a signed 64-bit integer exactly like Redis's `string2ll`: optional `-`, no `+`,
/// no leading zeros or spaces, no "-0", at most 20 bytes.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    const I64_TEXT_LEN_MAX_BYTES: usize = 20;
    if s.is_empty() || s.len() > I64_TEXT_LEN_MAX_BYTES {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// `parse_i64` or the Redis "not an integer" error frame.
pub(crate) fn int_arg(s: &[u8]) -> Result<i64, Frame> {
    parse_i64(s).ok_or_else(|| Frame::error(ERR_NOT_INTEGER))
}

/// The integer as decimal text in a `Bytes`.
pub(crate) fn int_bytes(n: i64) -> Bytes {
    Bytes::from(n.to_string())
}

/// The integer reply for a count.
pub(crate) fn count_reply(n: usize) -> Frame {
    Frame::Integer(n as i64)
}

pub(crate) fn wrongtype() -> Frame {
    Frame::error(ERR_WRONGTYPE)
}

/// Positions of the keys that a `movablekeys` command's legacy key spec cannot describe
/// (a `numkeys` argument followed by that many keys): SINTERCARD, LMPOP, BLMPOP, ZUNION,
/// ZINTER, ZDIFF, ZINTERCARD, ZMPOP and the Z*STORE forms (destination included). Empty
/// for every other command. Used by the shard layer to route such commands.
pub fn movable_key_indexes(args: &[Bytes]) -> Vec<usize> {
    if let Some(keys) = zsets::movable_key_indexes(args) {
        return keys;
    }
    if args
        .first()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"sintercard"))
    {
        let numkeys = args.get(1).and_then(|n| parse_i64(n)).unwrap_or(0).max(0) as usize;
        return (2..(2 + numkeys).min(args.len())).collect();
    }
    lists::movable_key_indexes(args)
}

/// `Bytes` of a static string (command names and keywords in propagated commands).
pub(crate) fn static_bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}
