//! Generic-key data commands beyond `keys.rs`: OBJECT (ENCODING, FREQ, IDLETIME, REFCOUNT,
//! HELP) and COPY. Replies follow redis-server 7.0 (checked byte for byte against 7.0.15).
//!
//! OBJECT ENCODING reports the encoding Redis 7.0 would use for the value's *current*
//! contents (Redis converts one way only, so a hash that grew past the listpack limits and
//! shrank again still says "hashtable" there; here it says "listpack" again).
//! COPY logs itself to the AOF as given: the TTL it copies is absolute, and replay never
//! expires keys, so the log rebuilds the same state.
//!
//! What can fail: only the client's arguments (arity, syntax, DB index), reported as the
//! exact Redis error frame.

use bytes::Bytes;

use super::table::spec;
use super::{parse_i64, CommandSpec, ExecCtx, Route, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

/// Longest string Redis 7 stores as "embstr" (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const EMBSTR_LEN_MAX_BYTES: usize = 44;
/// Longest text Redis tries to encode as "int" (`tryObjectEncoding`: at most 20 bytes).
pub const INT_TEXT_LEN_MAX_BYTES: usize = 20;
/// Redis 7 default `hash-max-listpack-entries` / `zset-max-listpack-entries`.
pub const LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis 7 default `hash-max-listpack-value` / `zset-max-listpack-value` (bytes).
pub const LISTPACK_VALUE_MAX_BYTES: usize = 64;
/// Redis 7 default `set-max-intset-entries`.
pub const INTSET_ENTRIES_MAX: usize = 512;
/// Integers Redis shares (`OBJ_SHARED_INTEGERS`): 0 ≤ n < this value.
pub const SHARED_INTEGERS_COUNT: i64 = 10_000;
/// The refcount Redis reports for a shared object (`OBJ_SHARED_REFCOUNT`, INT_MAX).
pub const SHARED_REFCOUNT: i64 = i32::MAX as i64;

const ERR_NO_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// OBJECT and COPY. OBJECT's legacy key spec is 2 2 1 (the key of its subcommands; Redis
/// reports 0 0 0 for the container) so that the shard layer routes it to the key's shard.
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!(
        "object",
        -2,
        [],
        2,
        2,
        1,
        Route::SameShard,
        "generic",
        "A container for object introspection commands",
        "2.2.3",
        ["@slow"],
        Some(object)
    ),
    spec!(
        "copy",
        -3,
        ["write", "denyoom"],
        1,
        2,
        1,
        Route::SameShard,
        "generic",
        "Copy a key",
        "6.2.0",
        ["@keyspace", "@write", "@slow"],
        Some(copy)
    ),
];

/// A help reply: one status line per entry, as Redis's `addReplyHelp`.
fn help_reply(lines: &[&str]) -> Frame {
    Frame::Array(
        lines
            .iter()
            .map(|l| Frame::Simple((*l).to_string()))
            .collect(),
    )
}

/// The encoding name Redis 7.0 reports for `value` (OBJECT ENCODING).
pub fn encoding_name(value: &Value) -> &'static str {
    let small = |b: &Bytes| b.len() <= LISTPACK_VALUE_MAX_BYTES;
    match value {
        Value::Str(s) if s.len() <= INT_TEXT_LEN_MAX_BYTES && parse_i64(s).is_some() => "int",
        Value::Str(s) if s.len() <= EMBSTR_LEN_MAX_BYTES => "embstr",
        Value::Str(_) => "raw",
        Value::Hash(h)
            if h.len() <= LISTPACK_ENTRIES_MAX && h.iter().all(|(f, v)| small(f) && small(v)) =>
        {
            "listpack"
        }
        Value::Hash(_) => "hashtable",
        // Redis 7.0 stores every list as a quicklist (listpack lists came in 7.2).
        Value::List(_) => "quicklist",
        Value::Set(s)
            if s.len() <= INTSET_ENTRIES_MAX
                && s.iter()
                    .all(|m| m.len() <= INT_TEXT_LEN_MAX_BYTES && parse_i64(m).is_some()) =>
        {
            "intset"
        }
        Value::Set(_) => "hashtable",
        Value::ZSet(z) if z.len() <= LISTPACK_ENTRIES_MAX && z.iter().all(|(m, _)| small(m)) => {
            "listpack"
        }
        Value::ZSet(_) => "skiplist",
    }
}

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key, OBJECT HELP. Missing key → Null; FREQ on
/// an existing key → the LFU-policy error (tidemark never runs an LFU policy); IDLETIME
/// → 0 (access times are not tracked); REFCOUNT → 1, or INT_MAX for the integers Redis
/// shares (0..9999).
pub(crate) fn object(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    let arity = match &sub[..] {
        b"help" => 2,
        b"encoding" | b"freq" | b"idletime" | b"refcount" => 3,
        _ => {
            return Frame::error(format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                String::from_utf8_lossy(&args[1])
            ))
        }
    };
    if args.len() != arity {
        return Frame::error(format!(
            "ERR wrong number of arguments for 'object|{}' command",
            String::from_utf8_lossy(&sub)
        ));
    }
    if arity == 2 {
        return help_reply(OBJECT_HELP);
    }
    let Some(entry) = db.get(ctx, &args[2]) else {
        return Frame::Null;
    };
    match &sub[..] {
        b"encoding" => Frame::bulk(encoding_name(&entry.value)),
        b"freq" => Frame::error(ERR_NO_LFU),
        b"idletime" => Frame::Integer(0),
        _ => match &entry.value {
            Value::Str(s)
                if parse_i64(s).is_some_and(|n| (0..SHARED_INTEGERS_COUNT).contains(&n)) =>
            {
                Frame::Integer(SHARED_REFCOUNT)
            }
            _ => Frame::Integer(1),
        },
    }
}

/// COPY source destination [DB n] [REPLACE] → 1 copied, 0 not (missing source, or the
/// destination exists without REPLACE). The TTL is copied. tidemark has database 0 only:
/// any other DB index is "ERR DB index is out of range" (Redis accepts 0..databases-1).
pub(crate) fn copy(db: &mut Db, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            match parse_i64(&args[i + 1]) {
                None => return Frame::error(ERR_NOT_INTEGER),
                Some(0) => {}
                Some(_) => return Frame::error("ERR DB index is out of range"),
            }
            i += 1;
        } else {
            return Frame::error(ERR_SYNTAX);
        }
        i += 1;
    }
    if src == dst {
        return Frame::error("ERR source and destination objects are the same");
    }
    let Some(entry) = db.get(ctx, src).cloned() else {
        return Frame::Integer(0);
    };
    if !replace && db.contains(ctx, dst) {
        return Frame::Integer(0);
    }
    db.insert(dst.clone(), entry.value, entry.expire_at_ms);
    ctx.log(args.to_vec());
    Frame::Integer(1)
}

#[cfg(test)]
mod tests {
    use super::super::tests::Harness;
    use crate::resp::Frame;

    fn err(text: &str) -> Frame {
        Frame::error(text)
    }

    fn bulk(text: &str) -> Frame {
        Frame::bulk(text.to_string())
    }

    #[test]
    fn object_encoding_of_strings() {
        let mut h = Harness::new();
        h.run("SET i 123");
        h.run("SET n -9223372036854775808");
        h.run("SET z 007");
        h.run("SET e hello");
        h.run(&format!("SET e44 {}", "x".repeat(44)));
        h.run(&format!("SET r {}", "x".repeat(45)));
        assert_eq!(h.run("OBJECT ENCODING i"), bulk("int"));
        assert_eq!(h.run("object encoding n"), bulk("int"));
        assert_eq!(h.run("OBJECT ENCODING z"), bulk("embstr"));
        assert_eq!(h.run("OBJECT ENCODING e"), bulk("embstr"));
        assert_eq!(h.run("OBJECT ENCODING e44"), bulk("embstr"));
        assert_eq!(h.run("OBJECT ENCODING r"), bulk("raw"));
        assert_eq!(h.run("OBJECT ENCODING nokey"), Frame::Null);
        assert!(h.log.len() == 6, "OBJECT logs nothing");
    }

    #[test]
    fn object_encoding_of_collections() {
        let mut h = Harness::new();
        h.run("RPUSH l a");
        h.run("SADD s 1 2");
        h.run("SADD s2 a");
        h.run("HSET h a b");
        h.run("ZADD zz 1 a");
        assert_eq!(h.run("OBJECT ENCODING l"), bulk("quicklist"));
        assert_eq!(h.run("OBJECT ENCODING s"), bulk("intset"));
        assert_eq!(h.run("OBJECT ENCODING s2"), bulk("hashtable"));
        assert_eq!(h.run("OBJECT ENCODING h"), bulk("listpack"));
        assert_eq!(h.run("OBJECT ENCODING zz"), bulk("listpack"));
        h.run(&format!("HSET h big {}", "v".repeat(65)));
        assert_eq!(h.run("OBJECT ENCODING h"), bulk("hashtable"));
        h.run(&format!("ZADD zz 2 {}", "m".repeat(65)));
        assert_eq!(h.run("OBJECT ENCODING zz"), bulk("skiplist"));
        for i in 0..513 {
            h.run(&format!("SADD s {}", i + 10));
        }
        assert_eq!(h.run("OBJECT ENCODING s"), bulk("hashtable"));
    }

    #[test]
    fn object_other_subcommands_and_errors() {
        let mut h = Harness::new();
        h.run("SET i 5");
        h.run("SET big 10000");
        h.run("SET s hello");
        assert_eq!(h.run("OBJECT REFCOUNT i"), Frame::Integer(i32::MAX as i64));
        assert_eq!(h.run("OBJECT REFCOUNT big"), Frame::Integer(1));
        assert_eq!(h.run("OBJECT REFCOUNT s"), Frame::Integer(1));
        assert_eq!(h.run("OBJECT IDLETIME s"), Frame::Integer(0));
        assert_eq!(h.run("OBJECT IDLETIME nokey"), Frame::Null);
        assert_eq!(h.run("OBJECT FREQ nokey"), Frame::Null);
        assert_eq!(h.run("OBJECT FREQ s"), err(super::ERR_NO_LFU));
        assert_eq!(
            h.run("OBJECT foo"),
            err("ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        );
        assert_eq!(
            h.run("OBJECT ENCODING"),
            err("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(
            h.run("OBJECT HELP x"),
            err("ERR wrong number of arguments for 'object|help' command")
        );
        assert_eq!(
            h.run("OBJECT"),
            err("ERR wrong number of arguments for 'object' command")
        );
        let Frame::Array(help) = h.run("OBJECT HELP") else {
            panic!("help is an array");
        };
        assert_eq!(help.len(), 15);
        assert_eq!(help[1], Frame::Simple("ENCODING <key>".to_string()));
    }

    #[test]
    fn copy_semantics_and_errors() {
        let mut h = Harness::new();
        h.run("SET a v PX 100000");
        h.run("SET b old");
        h.log.clear();
        assert_eq!(h.run("COPY a c"), Frame::Integer(1));
        assert_eq!(h.run("GET c"), bulk("v"));
        assert_eq!(h.run("PTTL c"), Frame::Integer(100_000));
        assert_eq!(h.run("COPY a b"), Frame::Integer(0));
        assert_eq!(h.run("GET b"), bulk("old"));
        assert_eq!(h.run("COPY a b db 0 REPLACE"), Frame::Integer(1));
        assert_eq!(h.run("GET b"), bulk("v"));
        assert_eq!(h.run("COPY nokey x"), Frame::Integer(0));
        assert_eq!(h.log.len(), 2, "only effective copies are logged");
        assert_eq!(&h.log[1][0][..], b"COPY");
        let same = err("ERR source and destination objects are the same");
        assert_eq!(h.run("COPY a a"), same);
        assert_eq!(h.run("COPY nokey nokey"), same);
        assert_eq!(h.run("COPY a d db 1"), err("ERR DB index is out of range"));
        assert_eq!(h.run("COPY a d db -1"), err("ERR DB index is out of range"));
        assert_eq!(h.run("COPY a d db x"), err(super::ERR_NOT_INTEGER));
        assert_eq!(h.run("COPY a d db"), err("ERR syntax error"));
        assert_eq!(h.run("COPY a d foo"), err("ERR syntax error"));
        assert_eq!(
            h.run("COPY a"),
            err("ERR wrong number of arguments for 'copy' command")
        );
        // The copy is independent of the source.
        h.run("RPUSH l x y");
        h.run("COPY l l2");
        h.run("RPOP l");
        assert_eq!(h.run("LLEN l2"), Frame::Integer(2));
    }

    #[test]
    fn copy_log_replays_to_the_same_state() {
        let mut h = Harness::new();
        h.run("HSET h f v");
        h.run("SET s x EX 50");
        h.run("COPY h h2");
        h.run("COPY s h2 REPLACE");
        let mut replay = Harness::new();
        replay.replaying = true;
        for cmd in h.log.clone() {
            replay.run_args(&cmd);
        }
        assert_eq!(replay.run("GET h2"), bulk("x"));
        assert_eq!(replay.run("PTTL h2"), h.run("PTTL h2"));
        assert_eq!(replay.run("HGET h f"), bulk("v"));
    }
}
