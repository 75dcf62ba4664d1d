//! COMMAND DOCS: per-command documentation (summary, since, group, complexity, argument
//! specs, history, doc flags) as redis-cli 7 uses it for its argument hints.
//!
//! The facts come from redis-server 7.0.15 itself: `testdata/redis7_command_docs.resp3`
//! is its recorded RESP3 `COMMAND DOCS` reply (made by `testdata/record_command_docs.py`),
//! embedded and parsed once. tidemark answers with the recorded entry of each command in
//! its own table, or, for a command Redis lacks, summary/since/group from the table. The
//! reply is a map (flat arrays on RESP2, as Redis sends them).
//!
//! What can fail: nothing at run time; the recorded data not parsing would show as the
//! table-only entries, and a unit test checks that it parses and covers the table.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::{lookup, table, CommandSpec};
use crate::resp::resp3::parse_value;
use crate::resp::Frame;

/// The recorded RESP3 `COMMAND DOCS` reply of redis-server 7.0.15.
const RECORDED: &[u8] = include_bytes!("testdata/redis7_command_docs.resp3");

static DOCS: OnceLock<BTreeMap<String, Frame>> = OnceLock::new();

/// The recorded docs map of every Redis 7 command, by lowercase name.
fn recorded() -> &'static BTreeMap<String, Frame> {
    DOCS.get_or_init(|| {
        let mut out = BTreeMap::new();
        if let Ok((Frame::Map(pairs), _)) = parse_value(RECORDED) {
            for (name, entry) in pairs {
                if let Frame::Bulk(name) = name {
                    out.insert(String::from_utf8_lossy(&name).to_ascii_lowercase(), entry);
                }
            }
        }
        out
    })
}

/// The COMMAND DOCS entry of `spec`: Redis's recorded map, else summary/since/group.
pub fn docs_entry(spec: &CommandSpec) -> Frame {
    if let Some(entry) = recorded().get(spec.name) {
        return entry.clone();
    }
    Frame::map_of([
        ("summary", Frame::bulk(spec.summary)),
        ("since", Frame::bulk(spec.since)),
        ("group", Frame::bulk(spec.group)),
    ])
}

/// `COMMAND DOCS [name ...]`: a map of command name → docs map, for every command in the
/// table (no names) or each named one that exists (unknown names are skipped, as Redis
/// does). `args[0]` is "COMMAND", `args[1]` "DOCS".
pub fn command_docs(args: &[Bytes]) -> Frame {
    let specs: Vec<&CommandSpec> = if args.len() <= 2 {
        table().iter().collect()
    } else {
        args[2..].iter().filter_map(|n| lookup(n)).collect()
    };
    Frame::Map(
        specs
            .into_iter()
            .map(|spec| (Frame::bulk(spec.name), docs_entry(spec)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::encode::encode_to_vec;

    #[test]
    fn recorded_docs_parse_and_cover_the_table() {
        assert!(recorded().len() >= 200, "{} entries", recorded().len());
        let missing: Vec<&str> = table()
            .iter()
            .map(|s| s.name)
            .filter(|n| !recorded().contains_key(*n))
            .collect();
        assert!(missing.is_empty(), "no Redis docs for {missing:?}");
    }

    #[test]
    fn get_docs_match_redis_on_resp2() {
        let args = [
            Bytes::from_static(b"COMMAND"),
            Bytes::from_static(b"DOCS"),
            Bytes::from_static(b"GET"),
        ];
        let expected: &[u8] =
            b"*2\r\n$3\r\nget\r\n*10\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n\
$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n\
$9\r\narguments\r\n*1\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n\
$14\r\nkey_spec_index\r\n:0\r\n";
        assert_eq!(encode_to_vec(&command_docs(&args)), expected);
        let unknown = [
            Bytes::from_static(b"COMMAND"),
            Bytes::from_static(b"DOCS"),
            Bytes::from_static(b"nope"),
        ];
        assert_eq!(command_docs(&unknown), Frame::Map(vec![]));
    }
}
