//! Tests for the generic key commands, TTL commands, SCAN and COMMAND.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{arr, bulk, err, int, ok, Harness};
use crate::cmd::command_command;
use crate::resp::Frame;

#[test]
fn del_exists_touch_type() {
    let mut h = Harness::new();
    h.run("MSET a 1 b 2");
    h.take_log();
    assert_eq!(h.run("EXISTS a a x b"), int(3), "EXISTS counts repeats");
    assert_eq!(h.run("TOUCH a a x"), int(2));
    assert_eq!(h.run("TYPE a"), Frame::Simple("string".into()));
    assert_eq!(h.run("TYPE x"), Frame::Simple("none".into()));
    assert_eq!(h.run("DEL a x a"), int(1));
    assert_eq!(h.run("UNLINK b"), int(1));
    assert_eq!(h.run("DEL a b"), int(0));
    assert_eq!(
        h.take_log(),
        vec!["DEL a", "DEL b"],
        "only existing keys are logged"
    );
}

#[test]
fn rename_and_renamenx() {
    let mut h = Harness::new();
    assert_eq!(h.run("RENAME a b"), err("ERR no such key"));
    assert_eq!(h.run("RENAMENX a b"), err("ERR no such key"));
    h.run("SET a 1 EX 100");
    h.run("SET c 3");
    h.take_log();
    assert_eq!(h.run("RENAME a a"), ok());
    assert_eq!(h.run("RENAMENX a a"), int(0));
    assert_eq!(h.run("RENAMENX a c"), int(0));
    assert_eq!(h.run("RENAME a b"), ok());
    assert_eq!(h.run("TTL b"), int(100), "the TTL moves with the key");
    assert_eq!(h.run("EXISTS a"), int(0));
    assert_eq!(h.run("RENAMENX b d"), int(1));
    assert_eq!(h.run("RENAME d c"), ok());
    assert_eq!(h.run("GET c"), bulk("1"));
    assert_eq!(
        h.take_log(),
        vec!["RENAME a b", "RENAMENX b d", "RENAME d c"]
    );
}

#[test]
fn expire_family() {
    let mut h = Harness::new();
    let now = h.now_ms;
    assert_eq!(h.run("EXPIRE k 10"), int(0));
    h.run("SET k v");
    h.take_log();
    assert_eq!(h.run("TTL k"), int(-1));
    assert_eq!(h.run("EXPIRE k 10 XX"), int(0));
    assert_eq!(
        h.run("EXPIRE k 10 GT"),
        int(0),
        "no TTL counts as infinite for GT"
    );
    assert_eq!(h.run("EXPIRE k 10 NX"), int(1));
    assert_eq!(h.run("EXPIRE k 20 NX"), int(0));
    assert_eq!(h.run("EXPIRE k 5 GT"), int(0));
    assert_eq!(h.run("EXPIRE k 20 GT"), int(1));
    assert_eq!(h.run("PEXPIRE k 30000 LT"), int(0));
    assert_eq!(h.run("PEXPIRE k 15000 LT XX"), int(1));
    assert_eq!(h.run("PTTL k"), int(15_000));
    assert_eq!(
        h.run("EXPIRETIME k"),
        int(((now + 15_000) as i64 + 500) / 1000)
    );
    assert_eq!(h.run("PEXPIRETIME k"), int((now + 15_000) as i64));
    assert_eq!(h.run(&format!("EXPIREAT k {}", now / 1000 + 50)), int(1));
    assert_eq!(h.run(&format!("PEXPIREAT k {}", now + 60_000)), int(1));
    assert_eq!(h.run("PERSIST k"), int(1));
    assert_eq!(h.run("PERSIST k"), int(0));
    assert_eq!(h.run("PERSIST nope"), int(0));
    assert_eq!(h.run("TTL nope"), int(-2));
    assert_eq!(h.run("PTTL nope"), int(-2));
    assert_eq!(h.run("EXPIRETIME nope"), int(-2));
    assert_eq!(h.run("EXPIRETIME k"), int(-1));
    assert_eq!(
        h.take_log(),
        vec![
            format!("PEXPIREAT k {}", now + 10_000),
            format!("PEXPIREAT k {}", now + 20_000),
            format!("PEXPIREAT k {}", now + 15_000),
            format!("PEXPIREAT k {}", (now / 1000 + 50) * 1000),
            format!("PEXPIREAT k {}", now + 60_000),
            "PERSIST k".to_string(),
        ]
    );
    assert_eq!(h.run("EXPIRE k -1"), int(1), "a past time deletes the key");
    assert_eq!(h.run("EXISTS k"), int(0));
    assert_eq!(h.take_log(), vec!["DEL k"]);
}

#[test]
fn expire_errors() {
    let mut h = Harness::new();
    h.run("SET k v");
    let incompatible = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_eq!(h.run("EXPIRE k 10 NX XX"), err(incompatible));
    assert_eq!(h.run("EXPIRE k 10 NX GT"), err(incompatible));
    assert_eq!(h.run("EXPIRE k 10 LT NX"), err(incompatible));
    assert_eq!(
        h.run("EXPIRE k 10 GT LT"),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(h.run("EXPIRE k 10 foo"), err("ERR Unsupported option foo"));
    assert_eq!(
        h.run("EXPIRE k x"),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        h.run("EXPIRE k 9223372036854775"),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        h.run("PEXPIRE k 9223372036854775807"),
        err("ERR invalid expire time in 'pexpire' command")
    );
    assert_eq!(
        h.run("EXPIRE k"),
        err("ERR wrong number of arguments for 'expire' command")
    );
}

#[test]
fn lazy_expiry_deletes_and_logs() {
    let mut h = Harness::new();
    h.run("SET k v PX 100");
    h.run("SET j v PX 100");
    h.take_log();
    h.now_ms += 100;
    assert_eq!(h.run("GET k"), Frame::Null);
    assert_eq!(h.run("TTL j"), int(-2));
    assert_eq!(h.take_log(), vec!["DEL k", "DEL j"]);
    assert_eq!(h.db.len(), 0);
    assert_eq!(h.db.expires_len(), 0);
}

#[test]
fn replaying_never_expires() {
    let mut h = Harness::new();
    h.replaying = true;
    assert_eq!(h.run("SET k v PXAT 5"), ok());
    assert_eq!(h.run("GET k"), bulk("v"));
    assert_eq!(h.run("PEXPIREAT k 7"), int(1));
    assert_eq!(h.run("PTTL k"), int(0));
    assert!(
        h.take_log().is_empty(),
        "nothing is propagated while replaying"
    );
    h.replaying = false;
    assert_eq!(h.run("GET k"), Frame::Null);
    assert_eq!(h.take_log(), vec!["DEL k"]);
}

#[test]
fn keys_and_dbsize_and_flush() {
    let mut h = Harness::new();
    h.run("MSET hello 1 hallo 2 hxllo 3 world 4");
    h.run("SET gone 1 PX 1");
    h.now_ms += 5;
    let keys = |f: Frame| -> BTreeSet<String> {
        match f {
            Frame::Array(v) => v
                .into_iter()
                .map(|x| match x {
                    Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        keys(h.run("KEYS h[ae]llo")),
        ["hallo", "hello"].map(String::from).into()
    );
    assert_eq!(
        keys(h.run("KEYS *")).len(),
        4,
        "expired keys are not listed"
    );
    assert_eq!(
        h.run("DBSIZE"),
        int(5),
        "DBSIZE counts unreclaimed keys like Redis"
    );
    assert_eq!(h.run("FLUSHDB FOO"), err("ERR syntax error"));
    assert_eq!(h.run("FLUSHALL ASYNC"), ok());
    assert_eq!(h.run("DBSIZE"), int(0));
    assert_eq!(h.db.used_memory_bytes(), 0);
    assert_eq!(h.take_log().last().unwrap(), "FLUSHALL ASYNC");
}

#[test]
fn randomkey() {
    let mut h = Harness::new();
    assert_eq!(h.run("RANDOMKEY"), Frame::Null);
    h.run("SET only 1");
    assert_eq!(h.run("RANDOMKEY"), bulk("only"));
    h.run("SET soon 1 PX 1");
    h.run("DEL only");
    h.now_ms += 10;
    h.take_log();
    assert_eq!(h.run("RANDOMKEY"), Frame::Null);
    assert_eq!(h.take_log(), vec!["DEL soon"]);
}

fn scan_reply(f: Frame) -> (u64, Vec<Bytes>) {
    let Frame::Array(v) = f else { panic!("{f:?}") };
    let Frame::Bulk(c) = &v[0] else { panic!() };
    let Frame::Array(keys) = &v[1] else { panic!() };
    let keys = keys
        .iter()
        .map(|k| {
            if let Frame::Bulk(b) = k {
                b.clone()
            } else {
                panic!()
            }
        })
        .collect();
    (std::str::from_utf8(c).unwrap().parse().unwrap(), keys)
}

#[test]
fn scan_options_and_errors() {
    let mut h = Harness::new();
    for i in 0..30 {
        h.run(&format!("SET key:{i} v"));
    }
    assert_eq!(h.run("SCAN abc"), err("ERR invalid cursor"));
    assert_eq!(h.run("SCAN 0 COUNT 0"), err("ERR syntax error"));
    assert_eq!(
        h.run("SCAN 0 COUNT x"),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(h.run("SCAN 0 MATCH"), err("ERR syntax error"));
    assert_eq!(h.run("SCAN 0 FOO bar"), err("ERR syntax error"));
    let (c, keys) = scan_reply(h.run("SCAN 0 COUNT 1000 MATCH key:1*"));
    assert_eq!(c, 0);
    assert_eq!(keys.len(), 11);
    let (_, keys) = scan_reply(h.run("SCAN 0 COUNT 1000 TYPE hash"));
    assert!(keys.is_empty());
    let (c, keys) = scan_reply(h.run("SCAN 0"));
    assert_eq!((c, keys.len()), (20, 10));
}

#[test]
fn scan_returns_every_stable_key_despite_deletes() {
    let mut h = Harness::new();
    let n = 200;
    for i in 0..n {
        h.run(&format!("SET k{i} v"));
    }
    // Keys k0..k99 stay for the whole scan; k100.. get deleted and new keys added as we go.
    let mut seen = BTreeSet::new();
    let mut cursor = 0u64;
    let mut step = 0;
    loop {
        let (next, keys) = scan_reply(h.run(&format!("SCAN {cursor} COUNT 7")));
        seen.extend(keys);
        h.run(&format!("DEL k{}", 100 + (step * 37) % 100));
        h.run(&format!("DEL k{}", 100 + (step * 11) % 100));
        h.run(&format!("SET new{step} v"));
        step += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(step < 1000, "scan must terminate");
    }
    for i in 0..100 {
        assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
    }
}

#[test]
fn command_introspection() {
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let Frame::Integer(n) = command_command(&[b("COMMAND"), b("COUNT")]) else {
        panic!()
    };
    assert_eq!(n as usize, crate::cmd::table().len());
    let Frame::Array(info) = command_command(&[b("COMMAND"), b("INFO"), b("get"), b("nosuch")])
    else {
        panic!()
    };
    assert_eq!(info[1], Frame::Null);
    let Frame::Array(get) = &info[0] else {
        panic!()
    };
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], int(2));
    assert_eq!(
        get[2],
        arr(vec![
            Frame::Simple("readonly".into()),
            Frame::Simple("fast".into())
        ])
    );
    assert_eq!((&get[3], &get[4], &get[5]), (&int(1), &int(1), &int(1)));
    // A map (flat on RESP2) of name → docs (src/cmd/docs.rs).
    let Frame::Map(docs) = command_command(&[b("COMMAND"), b("DOCS"), b("set")]) else {
        panic!()
    };
    assert_eq!(docs[0].0, bulk("set"));
    assert_eq!(
        command_command(&[
            b("COMMAND"),
            b("GETKEYS"),
            b("MSET"),
            b("a"),
            b("1"),
            b("b"),
            b("2")
        ]),
        arr(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(
        command_command(&[b("COMMAND"), b("GETKEYS"), b("PING")]),
        err("ERR The command has no key arguments")
    );
    assert_eq!(
        command_command(&[
            b("COMMAND"),
            b("LIST"),
            b("FILTERBY"),
            b("PATTERN"),
            b("pexpire*")
        ]),
        arr(vec![
            bulk("pexpire"),
            bulk("pexpireat"),
            bulk("pexpiretime")
        ])
    );
    assert_eq!(
        command_command(&[b("COMMAND"), b("FOO")]),
        err("ERR unknown subcommand 'FOO'. Try COMMAND HELP.")
    );
}
