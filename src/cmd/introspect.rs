//! COMMAND and its subcommands (COUNT, INFO, DOCS, LIST, GETKEYS, HELP), built from the
//! command table in the RESP2 shapes redis-server 7.0 uses (redis-cli calls COMMAND DOCS
//! on connect). What can fail: unknown subcommands and bad GETKEYS input, each with the
//! Redis error text.

use bytes::Bytes;

use super::{check_arity, lookup, table, wrong_args, CommandSpec};
use crate::keyspace::glob::glob_match;
use crate::resp::Frame;

fn simple(s: &str) -> Frame {
    Frame::Simple(s.to_string())
}

fn bulk_str(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// One COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL categories,
/// tips, key specs, subcommands (the last three empty).
fn info_entry(c: &CommandSpec) -> Frame {
    Frame::Array(vec![
        bulk_str(c.name),
        Frame::Integer(c.arity as i64),
        Frame::Array(c.flags.iter().map(|f| simple(f)).collect()),
        Frame::Integer(c.first_key as i64),
        Frame::Integer(c.last_key as i64),
        Frame::Integer(c.key_step as i64),
        Frame::Array(c.acl_categories.iter().map(|f| simple(f)).collect()),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ])
}

/// Replies for `COMMAND`, `COMMAND COUNT`, `COMMAND INFO [name…]`, `COMMAND DOCS [name…]`,
/// `COMMAND LIST [FILTERBY PATTERN p|ACLCAT c]`, `COMMAND GETKEYS cmd args…`, `COMMAND HELP`.
/// `args[0]` is "COMMAND".
pub fn command_command(args: &[Bytes]) -> Frame {
    let Some(sub) = args.get(1) else {
        return Frame::Array(table().iter().map(info_entry).collect());
    };
    let sub_lc = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match sub_lc.as_str() {
        "count" if args.len() == 2 => Frame::Integer(table().len() as i64),
        "count" => wrong_args("command|count"),
        "info" if args.len() == 2 => Frame::Array(table().iter().map(info_entry).collect()),
        "info" => Frame::Array(
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Frame::Null, info_entry))
                .collect(),
        ),
        // Recorded Redis 7 docs with argument specs (src/cmd/docs.rs).
        "docs" => super::docs::command_docs(args),
        "list" => command_list(args),
        "getkeys" => command_getkeys(args),
        "help" => Frame::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| simple(l))
            .collect(),
        ),
        _ => Frame::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        )),
    }
}

/// COMMAND LIST [FILTERBY MODULE m|ACLCAT c|PATTERN p].
fn command_list(args: &[Bytes]) -> Frame {
    let names = |keep: &dyn Fn(&CommandSpec) -> bool| {
        Frame::Array(
            table()
                .iter()
                .filter(|c| keep(c))
                .map(|c| bulk_str(c.name))
                .collect(),
        )
    };
    match args.len() {
        2 => names(&|_| true),
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let (kind, val) = (&args[3], &args[4][..]);
            if kind.eq_ignore_ascii_case(b"pattern") {
                names(&|c| glob_match(&val.to_ascii_lowercase(), c.name.as_bytes()))
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                let cat = [b"@".as_slice(), val].concat().to_ascii_lowercase();
                names(&|c| c.acl_categories.iter().any(|a| a.as_bytes() == cat))
            } else if kind.eq_ignore_ascii_case(b"module") {
                Frame::Array(vec![])
            } else {
                Frame::error("ERR syntax error")
            }
        }
        _ => Frame::error("ERR syntax error"),
    }
}

/// COMMAND GETKEYS cmd args… → the key arguments of that call.
fn command_getkeys(args: &[Bytes]) -> Frame {
    let Some(spec) = args.get(2).and_then(|n| lookup(n)) else {
        return Frame::error("ERR Invalid command specified");
    };
    let call = &args[2..];
    if check_arity(spec, call.len()).is_err() {
        return Frame::error("ERR Invalid number of arguments specified for command");
    }
    let keys: Vec<Frame> = spec
        .key_indexes(call.len())
        .map(|i| Frame::Bulk(call[i].clone()))
        .collect();
    if keys.is_empty() {
        return Frame::error("ERR The command has no key arguments");
    }
    Frame::Array(keys)
}
