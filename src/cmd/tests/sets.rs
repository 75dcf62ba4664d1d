//! Tests for the set commands (exact replies are in `hashes.rs`'s recorded-case test):
//! AOF propagation, SPOP/SRANDMEMBER count semantics, the SSCAN guarantee, memory
//! accounting, and a property test that replaying the propagated log of random hash and
//! set commands rebuilds the same state, in the same iteration order.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;

use crate::cmd::tests::{bulk, err, int, Harness};
use crate::keyspace::{Db, Entry};
use crate::resp::Frame;

fn members(f: &Frame) -> Vec<String> {
    let Frame::Array(v) = f else {
        panic!("array reply, got {f:?}")
    };
    v.iter()
        .map(|m| match m {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("bulk member, got {other:?}"),
        })
        .collect()
}

fn sorted(f: &Frame) -> Vec<String> {
    let mut v = members(f);
    v.sort();
    v
}

#[test]
fn set_writes_log_only_effective_changes() {
    let mut h = Harness::new();
    assert_eq!(h.run("SADD s a b"), int(2));
    assert_eq!(h.run("SADD s a"), int(0));
    assert_eq!(h.run("SREM s zz"), int(0));
    assert_eq!(h.run("SREM s a"), int(1));
    assert_eq!(h.run("SMOVE s t zz"), int(0));
    assert_eq!(h.run("SMOVE s t b"), int(1));
    assert_eq!(h.run("EXISTS s"), int(0));
    assert_eq!(h.run("SMOVE t t b"), int(1));
    assert_eq!(h.run("SRANDMEMBER t -3"), Frame::Array(vec![bulk("b"); 3]));
    assert_eq!(
        h.run("SINTERSTORE d t nokey"),
        int(0),
        "absent d: nothing to log"
    );
    assert_eq!(h.run("SUNIONSTORE d t"), int(1));
    assert_eq!(h.run("SDIFFSTORE d t t"), int(0), "deletes d: logged");
    assert_eq!(
        h.take_log(),
        vec![
            "SADD s a b",
            "SREM s a",
            "SMOVE s t b",
            "SUNIONSTORE d t",
            "SDIFFSTORE d t t",
        ]
    );
}

#[test]
fn spop_logs_srem_of_the_popped_members() {
    let mut h = Harness::new();
    h.run("SADD s a b c d e f");
    h.take_log();
    let Frame::Bulk(one) = h.run("SPOP s") else {
        panic!("one member")
    };
    let one = String::from_utf8(one.to_vec()).unwrap();
    let two = members(&h.run("SPOP s 2"));
    assert_eq!(two.len(), 2);
    assert!(!two.contains(&one));
    assert_eq!(h.run("SCARD s"), int(3));
    assert_eq!(
        h.take_log(),
        vec![format!("SREM s {one}"), format!("SREM s {}", two.join(" "))]
    );
    let rest = sorted(&h.run("SPOP s 3"));
    assert_eq!(rest.len(), 3);
    let mut all: Vec<String> = rest.into_iter().chain(two).chain([one]).collect();
    all.sort();
    assert_eq!(all, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(
        h.take_log(),
        vec!["UNLINK s"],
        "popping everything logs UNLINK"
    );
    assert!(h.db.is_empty());
}

#[test]
fn srandmember_count_semantics() {
    let mut h = Harness::new();
    for i in 0..20 {
        h.run(&format!("SADD s m{i}"));
    }
    h.take_log();
    for _ in 0..30 {
        let v = members(&h.run("SRANDMEMBER s 7"));
        let distinct: BTreeSet<_> = v.iter().collect();
        assert_eq!((v.len(), distinct.len()), (7, 7));
        let v = members(&h.run("SRANDMEMBER s -50"));
        assert_eq!(v.len(), 50);
        assert!(v.iter().all(|m| m.starts_with('m')));
        let Frame::Bulk(m) = h.run("SRANDMEMBER s") else {
            panic!("bulk")
        };
        assert!(m.starts_with(b"m"));
    }
    // Randomness is spread: over many draws every member shows up.
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        seen.extend(members(&h.run("SRANDMEMBER s -20")));
    }
    assert_eq!(seen.len(), 20);
    assert_eq!(members(&h.run("SRANDMEMBER s 20")).len(), 20);
    assert_eq!(
        h.run("SRANDMEMBER s -1048577"),
        err("ERR value is out of range, a negative count may ask for at most 1048576 elements")
    );
    assert_eq!(h.run("SCARD s"), int(20));
    assert!(h.take_log().is_empty(), "SRANDMEMBER logs nothing");
}

#[test]
fn set_algebra_orders_and_results() {
    let mut h = Harness::new();
    h.run("SADD a 1 2 3 4 5");
    h.run("SADD b 5 4 9");
    h.run("SADD c 4 5 6 7");
    assert_eq!(
        members(&h.run("SINTER a c b")),
        ["5", "4"],
        "walks the smallest set"
    );
    assert_eq!(
        members(&h.run("SUNION b a")),
        ["5", "4", "9", "1", "2", "3"]
    );
    assert_eq!(members(&h.run("SDIFF a b")), ["1", "2", "3"]);
    assert_eq!(h.run("SINTERCARD 3 a b c"), int(2));
    assert_eq!(h.run("SINTERCARD 3 a b c LIMIT 1"), int(1));
    assert_eq!(
        h.run("SDIFFSTORE a a c"),
        int(3),
        "destination may be a source"
    );
    assert_eq!(members(&h.run("SMEMBERS a")), ["1", "2", "3"]);
    h.run("EXPIRE b 100");
    h.run("SUNIONSTORE b b c");
    assert_eq!(
        h.run("TTL b"),
        int(-1),
        "a STORE replaces the destination's TTL"
    );
}

#[test]
fn sscan_returns_every_stable_member_under_churn() {
    let mut h = Harness::new();
    for i in 0..500 {
        h.run(&format!("SADD s keep{i} drop{i}"));
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let Frame::Array(parts) = h.run(&format!("SSCAN s {cursor} COUNT 29")) else {
            panic!("scan reply")
        };
        seen.extend(members(&parts[1]));
        h.run(&format!("SREM s drop{} drop{}", calls * 5, calls * 5 + 2));
        h.run(&format!("SADD s late{calls}"));
        calls += 1;
        let Frame::Bulk(c) = &parts[0] else {
            panic!("cursor")
        };
        cursor = String::from_utf8(c.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
        assert!(calls < 200, "scan must terminate");
    }
    for i in 0..500 {
        assert!(seen.contains(&format!("keep{i}")), "keep{i}");
    }
    let Frame::Array(parts) = h.run("SSCAN s 0 MATCH keep4?? COUNT 100000") else {
        panic!("scan reply")
    };
    assert_eq!(parts[0], bulk("0"));
    assert_eq!(members(&parts[1]).len(), 100);
}

#[test]
fn set_memory_is_accounted() {
    let mut h = Harness::new();
    h.run("SADD other x");
    let base = h.db.used_memory_bytes();
    h.run("SADD s abc");
    let one = h.db.used_memory_bytes();
    h.run("SADD s defg");
    h.run("SREM s defg");
    assert_eq!(h.db.used_memory_bytes(), one);
    h.run("SPOP s");
    assert_eq!(h.db.used_memory_bytes(), base);
    h.run("SADD a 1 2 3");
    h.run("SUNIONSTORE d a");
    h.run("DEL a d");
    assert_eq!(h.db.used_memory_bytes(), base);
}

#[test]
fn string_commands_reject_hashes_and_sets() {
    let mut h = Harness::new();
    h.run("HSET h f v");
    h.run("SADD s m");
    let wrongtype = err(crate::cmd::ERR_WRONGTYPE);
    for cmd in [
        "GET h",
        "GET s",
        "APPEND h x",
        "INCR s",
        "STRLEN h",
        "GETRANGE s 0 1",
        "GETDEL h",
        "SETRANGE s 0 x",
        "INCRBYFLOAT h 1",
        "SET h v GET",
        "GETSET s v",
        "HGET s f",
        "SADD h m",
        "SINTER s h",
    ] {
        assert_eq!(h.run(cmd), wrongtype, "{cmd}");
    }
    assert_eq!(h.run("TYPE h"), Frame::Simple("hash".into()));
    assert_eq!(h.run("TYPE s"), Frame::Simple("set".into()));
    assert_eq!(
        h.run("SET h v"),
        Frame::ok(),
        "plain SET overwrites any type"
    );
    assert_eq!(h.run("TYPE h"), Frame::Simple("string".into()));
}

const KEYS: [&str; 4] = ["a", "b", "{x}c", "d"];

/// Builds one hash or set command from a random draw (every write, some reads, TTLs).
fn command(kind: u8, k1: usize, k2: usize, n: i64) -> String {
    let (a, b) = (KEYS[k1], KEYS[k2]);
    let m = n.rem_euclid(6);
    match kind {
        0 => format!("HSET {a} f{m} v{n} f{} w", (m + 1) % 6),
        1 => format!("HSETNX {a} f{m} n{n}"),
        2 => format!("HDEL {a} f{m} f{}", (m + 2) % 6),
        3 => format!("HINCRBY {a} i{m} {n}"),
        4 => format!("HINCRBYFLOAT {a} fl{m} {n}.1"),
        5 => format!("HMSET {a} f{m} {n}"),
        6 => format!("SADD {a} m{m} m{}", (m + 3) % 6),
        7 => format!("SREM {a} m{m}"),
        8 => format!("SPOP {a}"),
        9 => format!("SPOP {a} {}", m % 4),
        10 => format!("SMOVE {a} {b} m{m}"),
        11 => format!("SINTERSTORE {a} {b} {}", KEYS[(k1 + 1) % 4]),
        12 => format!("SUNIONSTORE {a} {b} {}", KEYS[(k2 + 1) % 4]),
        13 => format!("SDIFFSTORE {b} {a} {}", KEYS[(k1 + 2) % 4]),
        14 => format!("PEXPIRE {a} {}", (n.max(0) + 1) * 100),
        15 => format!("SRANDMEMBER {a} {n}"),
        16 => format!("HRANDFIELD {a} {n} WITHVALUES"),
        17 => format!("DEL {a}"),
        18 => format!("SET {a} s{n}"),
        19 => format!("SINTER {a} {b}"),
        _ => format!("HGETALL {a}"),
    }
}

/// The whole keyspace, with each collection's iteration order made visible.
fn state(db: &Db) -> BTreeMap<Bytes, (Entry, String)> {
    db.iter()
        .map(|(k, e)| {
            let order = match &e.value {
                crate::keyspace::Value::Hash(h) => format!("{:?}", h.iter().collect::<Vec<_>>()),
                crate::keyspace::Value::Set(s) => format!("{:?}", s.iter().collect::<Vec<_>>()),
                _ => String::new(),
            };
            (k.clone(), (e.clone(), order))
        })
        .collect()
}

fn replay(log: &[Vec<Bytes>], now_ms: u64) -> Db {
    let (db, sink) = crate::cmd::tests::replay_log(log, now_ms);
    assert!(sink.is_empty(), "replay propagates nothing");
    db
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn replaying_hash_and_set_log_reproduces_the_state(
        ops in proptest::collection::vec((0u8..22, 0..KEYS.len(), 0..KEYS.len(), -3i64..12, 0u64..400), 1..80)
    ) {
        let mut h = Harness::new();
        for (kind, k1, k2, n, dt) in ops {
            h.now_ms += dt;
            h.run(&command(kind, k1, k2, n));
        }
        let replayed = replay(&h.log, h.now_ms + 10_000_000);
        // Keys whose TTL passed but were never touched again are still stored in both.
        prop_assert_eq!(state(&h.db), state(&replayed));
        prop_assert_eq!(h.db.used_memory_bytes(), replayed.used_memory_bytes());
    }
}
