//! Tests for the sorted-set commands: exact replies (recorded from redis-server 7.0.15),
//! AOF propagation forms, movable key positions, and a replay property test: executing
//! the propagated log on a fresh Db rebuilds the same state.

use bytes::Bytes;
use proptest::prelude::*;

use super::movable_key_indexes;
use crate::cmd::tests::{arr, bulk, err, int, keyspace_state, render, Harness};
use crate::keyspace::Db;
use crate::resp::Frame;

fn bulks(items: &[&str]) -> Frame {
    arr(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn zadd_flags_replies_and_log() {
    let mut h = Harness::new();
    assert_eq!(h.run("ZADD z 1 a 2 b 3 c"), int(3));
    assert_eq!(h.take_log(), vec!["ZADD z 1 a 2 b 3 c"]);
    assert_eq!(
        h.run("ZADD z XX NX 1 a"),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        h.run("ZADD z GT LT 1 a"),
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        h.run("ZADD z INCR 1 a 2 b"),
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(h.run("ZADD z 1 a 2"), err("ERR syntax error"));
    assert_eq!(h.run("ZADD z nan a"), err("ERR value is not a valid float"));
    assert_eq!(h.run("ZADD z GT CH 0 a 5 b 9 new"), int(2));
    assert_eq!(
        h.take_log(),
        vec!["ZADD z 5 b 9 new"],
        "only changes are logged"
    );
    assert_eq!(h.run("ZADD z XX INCR 1 nope"), Frame::Null);
    assert_eq!(h.run("ZADD z NX INCR 1 a"), Frame::Null);
    assert_eq!(h.run("ZADD z INCR 0.1 a"), bulk("1.1000000000000001"));
    assert_eq!(h.run("ZINCRBY z 0.2 a"), bulk("1.3"));
    assert_eq!(h.run("ZINCRBY z 0.1 a"), bulk("1.4000000000000001"));
    assert_eq!(
        h.take_log(),
        vec![
            "ZADD z 1.1000000000000001 a",
            "ZADD z 1.3 a",
            "ZADD z 1.4000000000000001 a"
        ]
    );
    assert_eq!(h.run("ZADD z inf a"), int(0));
    assert_eq!(
        h.run("ZINCRBY z -inf a"),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(h.run("ZADD z 1 b"), int(0), "no-op score update");
    h.take_log();
    assert_eq!(h.run("ZADD z 7 b"), int(0));
    assert_eq!(h.run("ZSCORE z b"), bulk("7"));
    assert_eq!(h.run("ZADD z XX 1 missing"), int(0));
    assert_eq!(h.take_log(), vec!["ZADD z 7 b"]);
    assert_eq!(h.run("ZADD nokey XX 1 a"), int(0));
    assert_eq!(h.run("EXISTS nokey"), int(0), "XX never creates the key");
    h.run("SET s x");
    assert_eq!(
        h.run("ZADD s 1 a"),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(
        h.run("ZRANGE z 1 -2 REV WITHSCORES"),
        bulks(&["d", "4", "c", "3", "b", "2"])
    );
    assert_eq!(
        h.run("ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES"),
        bulks(&["d", "4", "c", "3"])
    );
    assert_eq!(h.run("ZRANGEBYSCORE z (3 +inf"), bulks(&["d", "e"]));
    assert_eq!(h.run("ZRANGE z -inf +inf BYSCORE LIMIT -1 2"), bulks(&[]));
    assert_eq!(h.run("ZCOUNT z (1 3"), int(2));
    assert_eq!(h.run("ZCOUNT z 1 x"), err("ERR min or max is not a float"));
    assert_eq!(
        h.run("ZRANGE z 0 -1 LIMIT 0 1"),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(
        h.run("ZRANGE z - + BYLEX WITHSCORES"),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    h.run("ZADD l 0 a 0 b 0 c 0 d");
    assert_eq!(h.run("ZRANGEBYLEX l [b (d"), bulks(&["b", "c"]));
    assert_eq!(h.run("ZREVRANGEBYLEX l + - LIMIT 1 2"), bulks(&["c", "b"]));
    assert_eq!(
        h.run("ZLEXCOUNT l a b"),
        err("ERR min or max not valid string range item")
    );
    assert_eq!(h.run("ZRANK z c"), int(2));
    assert_eq!(h.run("ZREVRANK z c"), int(2));
    assert_eq!(h.run("ZREVRANK z a"), int(4));
    assert_eq!(h.run("ZRANK z nope"), Frame::Null);
}

#[test]
fn removals_pops_and_their_log() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
    h.take_log();
    assert_eq!(h.run("ZREMRANGEBYRANK z 5 1"), int(0));
    assert_eq!(h.run("ZREMRANGEBYRANK z -1 -1"), int(1));
    assert_eq!(h.run("ZPOPMIN z"), bulks(&["a", "1"]));
    assert_eq!(h.run("ZPOPMAX z 2"), bulks(&["d", "4", "c", "3"]));
    assert_eq!(
        h.run("ZPOPMIN z -1"),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        h.take_log(),
        vec!["ZREMRANGEBYRANK z -1 -1", "ZREM z a", "ZREM z d c"]
    );
    assert_eq!(h.run("ZREM z b nope"), int(1));
    assert_eq!(h.run("EXISTS z"), int(0), "emptied sets are deleted");
    h.run("ZADD z 1 a 2 b");
    assert_eq!(
        h.run("ZMPOP 2 nokey z MAX COUNT 5"),
        arr(vec![
            bulk("z"),
            arr(vec![bulks(&["b", "2"]), bulks(&["a", "1"])])
        ])
    );
    assert_eq!(h.run("ZMPOP 1 z MIN"), Frame::NullArray);
    assert_eq!(
        h.run("ZMPOP 0 z MIN"),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        h.run("ZMPOP 1 z MIN COUNT 0"),
        err("ERR count should be greater than 0")
    );
}

#[test]
fn set_algebra_and_store() {
    let mut h = Harness::new();
    h.run("ZADD z1 1 a 2 b 3 c");
    h.run("ZADD z2 10 b 20 c 30 d");
    assert_eq!(
        h.run("ZUNION 2 z1 z2 WEIGHTS 1 -1 AGGREGATE MAX WITHSCORES"),
        bulks(&["d", "-30", "a", "1", "b", "2", "c", "3"])
    );
    assert_eq!(
        h.run("ZINTER 2 z1 z2 WITHSCORES"),
        bulks(&["b", "12", "c", "23"])
    );
    assert_eq!(h.run("ZDIFF 2 z1 z2 WITHSCORES"), bulks(&["a", "1"]));
    assert_eq!(h.run("ZINTERCARD 2 z1 z2 LIMIT 1"), int(1));
    assert_eq!(
        h.run("ZINTERCARD 2 z1 z2 LIMIT -1"),
        err("ERR LIMIT can't be negative")
    );
    assert_eq!(
        h.run("ZUNION 0 z1"),
        err("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        h.run("ZUNION 1 z1 WEIGHTS x"),
        err("ERR weight value is not a float")
    );
    h.take_log();
    h.run("SET d x EX 100");
    assert_eq!(h.run("ZINTERSTORE d 2 z1 z2 AGGREGATE MIN"), int(2));
    assert_eq!(
        h.run("TTL d"),
        int(-1),
        "the store replaces the old value and TTL"
    );
    assert_eq!(
        h.run("ZRANGE d 0 -1 WITHSCORES"),
        bulks(&["b", "2", "c", "3"])
    );
    assert_eq!(h.run("ZDIFFSTORE d 2 z1 z1"), int(0));
    assert_eq!(h.run("EXISTS d"), int(0));
    assert_eq!(h.run("ZRANGESTORE d z1 + [b BYLEX REV LIMIT 0 1"), int(1));
    assert_eq!(h.run("ZRANGE d 0 -1 WITHSCORES"), bulks(&["c", "3"]));
    assert_eq!(h.run("ZDIFFSTORE nothing 1 nokey"), int(0));
    assert_eq!(
        h.take_log(),
        vec![
            "SET d x PXAT 1700000100000",
            "ZINTERSTORE d 2 z1 z2 AGGREGATE MIN",
            "ZDIFFSTORE d 2 z1 z1",
            "ZRANGESTORE d z1 + [b BYLEX REV LIMIT 0 1",
        ],
        "a store that changes nothing logs nothing"
    );
}

#[test]
fn random_members_and_scan() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c");
    h.take_log();
    for _ in 0..20 {
        let Frame::Bulk(m) = h.run("ZRANDMEMBER z") else {
            panic!("bulk expected")
        };
        assert!([&b"a"[..], b"b", b"c"].contains(&&m[..]));
    }
    let Frame::Array(two) = h.run("ZRANDMEMBER z 2") else {
        panic!("array expected")
    };
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1], "positive count: distinct members");
    let Frame::Array(many) = h.run("ZRANDMEMBER z -7 WITHSCORES") else {
        panic!("array expected")
    };
    assert_eq!(many.len(), 14);
    assert_eq!(h.run("ZRANDMEMBER z 5"), bulks(&["c", "b", "a"]));
    assert!(h.take_log().is_empty(), "ZRANDMEMBER logs nothing");
    assert_eq!(
        h.run("ZSCAN z 0 MATCH [ab]"),
        arr(vec![bulk("0"), bulks(&["a", "1", "b", "2"])])
    );
    for i in 0..300 {
        h.run(&format!("ZADD big {i} m{i}"));
    }
    let mut seen = 0;
    let mut cursor = "0".to_string();
    loop {
        let Frame::Array(reply) = h.run(&format!("ZSCAN big {cursor} COUNT 7")) else {
            panic!("array expected")
        };
        let (Frame::Bulk(next), Frame::Array(items)) = (&reply[0], &reply[1]) else {
            panic!("cursor and items expected")
        };
        seen += items.len() / 2;
        cursor = String::from_utf8(next.to_vec()).expect("ASCII cursor");
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, 300, "a full ZSCAN walk returns every member once");
}

#[test]
fn movable_keys_are_found() {
    let args = |line: &str| -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    };
    assert_eq!(
        movable_key_indexes(&args("ZUNIONSTORE d 2 a b WEIGHTS 1 2")),
        Some(vec![1, 3, 4])
    );
    assert_eq!(
        movable_key_indexes(&args("zinter 3 a b c")),
        Some(vec![2, 3, 4])
    );
    assert_eq!(movable_key_indexes(&args("ZMPOP 1 k MIN")), Some(vec![2]));
    assert_eq!(movable_key_indexes(&args("ZUNION 9 a")), Some(vec![2]));
    assert_eq!(movable_key_indexes(&args("ZADD k 1 a")), None);
    assert_eq!(
        movable_key_indexes(&args("BZMPOP 0 2 a b MIN")),
        Some(vec![3, 4])
    );
}

#[test]
fn blocking_pop_attempts_reply_and_log_like_zrem() {
    let mut h = Harness::new();
    h.run("ZADD z 1 a 2 b 3 c");
    h.take_log();
    assert_eq!(h.run("BZPOPMIN nokey z 0"), bulks(&["z", "a", "1"]));
    assert_eq!(h.run("BZPOPMAX z 0"), bulks(&["z", "c", "3"]));
    assert_eq!(h.take_log(), vec!["ZREM z a", "ZREM z c"]);
    assert_eq!(h.run("BZPOPMIN nokey 0"), Frame::NullArray, "empty: blocks");
    assert_eq!(h.run("BZMPOP 1 1 nokey MIN"), Frame::NullArray);
    assert!(h.take_log().is_empty(), "a blocked attempt logs nothing");
    assert_eq!(
        h.run("BZMPOP 0 1 z MAX COUNT 9"),
        arr(vec![bulk("z"), arr(vec![bulks(&["b", "2"])])])
    );
    assert_eq!(h.take_log(), vec!["ZREM z b"]);
    assert_eq!(h.run("EXISTS z"), int(0));
    assert_eq!(
        h.run("BZPOPMIN z x"),
        err("ERR timeout is not a float or out of range")
    );
    assert_eq!(h.run("BZMPOP -0.5 1 z MIN"), err("ERR timeout is negative"));
}

#[test]
fn blocking_wait_spec_names_keys_and_timeout() {
    use std::time::Duration;
    let args = |line: &str| -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    };
    let spec = super::blocking_wait_spec;
    assert_eq!(
        spec(&args("BZPOPMIN a b 0")),
        Some((args("a b"), None)),
        "0 = forever"
    );
    assert_eq!(
        spec(&args("bzpopmax a 0.25")),
        Some((args("a"), Some(Duration::from_millis(250))))
    );
    assert_eq!(
        spec(&args("BZMPOP 1.5 2 x y MAX COUNT 3")),
        Some((args("x y"), Some(Duration::from_millis(1500))))
    );
    assert_eq!(spec(&args("BZMPOP 1 3 x y MAX")), None, "numkeys too large");
    assert_eq!(spec(&args("BZMPOP 1 0 x MAX")), None);
    assert_eq!(spec(&args("BZPOPMIN a -1")), None);
    assert_eq!(spec(&args("BLPOP a 0")), None, "lists are not ours");
}

/// Every case in `testdata/cases.txt` gets the reply redis-server 7.0.15 gave
/// (`testdata/expected.txt`).
#[test]
fn replies_match_recorded_redis() {
    let cases = include_str!("testdata/cases.txt");
    let mut want = include_str!("testdata/expected.txt").lines();
    let mut h = Harness::new();
    let mut checked = 0;
    for line in cases
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|w| match w {
                "\\e" => Bytes::new(),
                _ => Bytes::copy_from_slice(w.as_bytes()),
            })
            .collect();
        let got = render(&h.run_args(&args));
        assert_eq!(got, want.next().expect("one reply per case"), "{line}");
        checked += 1;
    }
    assert!(checked > 290, "only {checked} cases");
}

const KEYS: [&str; 3] = ["z", "y", "{z}w"];

/// One zset command from a random draw (writes of every kind plus a few reads).
fn command(kind: u8, k1: usize, k2: usize, n: i64, m: u8) -> String {
    let (a, b, c) = (KEYS[k1], KEYS[k2], KEYS[(k1 + 1) % KEYS.len()]);
    let s = n as f64 / 4.0;
    let m2 = (m + 3) % 8;
    match kind {
        0 => format!("ZADD {a} {s} m{m} {} m{m2}", s + 1.5),
        1 => format!("ZADD {a} GT CH {s} m{m}"),
        2 => format!("ZADD {a} LT INCR {s} m{m}"),
        3 => format!("ZADD {a} XX {s} m{m}"),
        4 => format!("ZADD {a} NX INCR 0.1 m{m}"),
        5 => format!("ZINCRBY {a} {n}.1 m{m}"),
        6 => format!("ZREM {a} m{m} m{m2}"),
        7 => format!("ZPOPMIN {a} {}", n.rem_euclid(4)),
        8 => format!("ZPOPMAX {a}"),
        9 => format!("ZMPOP 2 {a} {b} MAX COUNT {}", n.rem_euclid(3) + 1),
        10 => format!("ZREMRANGEBYRANK {a} {} {}", n % 3, n % 5),
        11 => format!("ZREMRANGEBYSCORE {a} ({s} +inf"),
        12 => format!("ZREMRANGEBYLEX {a} [m{m} (m{m2}"),
        13 => format!("ZUNIONSTORE {c} 2 {a} {b} WEIGHTS 2 0.5"),
        14 => format!("ZINTERSTORE {c} 2 {a} {b} AGGREGATE MAX"),
        15 => format!("ZDIFFSTORE {c} 2 {a} {b}"),
        16 => format!("ZRANGESTORE {c} {a} {} -1", n % 3),
        17 => format!("ZRANGESTORE {b} {a} ({s} +inf BYSCORE LIMIT 0 2"),
        18 => format!("ZRANDMEMBER {a} -3 WITHSCORES"),
        19 => format!("ZADD {a} INCR inf m{m}"),
        20 => format!("ZADD {a} -inf m{m}"),
        21 => format!("DEL {a}"),
        22 => format!("ZADD {a} -0 m{m}"),
        23 => format!("BZPOPMIN {a} {b} 0"),
        24 => format!("BZPOPMAX {a} 1.5"),
        25 => format!("BZMPOP 0 2 {a} {b} MIN COUNT {}", n.rem_euclid(3) + 1),
        _ => format!("ZRANGE {a} 0 -1 WITHSCORES"),
    }
}

fn replay(log: &[Vec<Bytes>], now_ms: u64) -> Db {
    crate::cmd::tests::replay_log(log, now_ms).0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn replaying_the_zset_log_reproduces_the_state(
        ops in proptest::collection::vec((0u8..28, 0..KEYS.len(), 0..KEYS.len(), -12i64..12, 0u8..8), 1..80)
    ) {
        let mut h = Harness::new();
        for (kind, k1, k2, n, m) in ops {
            h.run(&command(kind, k1, k2, n, m));
        }
        let replayed = replay(&h.log, h.now_ms);
        prop_assert_eq!(keyspace_state(&h.db), keyspace_state(&replayed));
        prop_assert_eq!(h.db.used_memory_bytes(), replayed.used_memory_bytes());
    }
}

/// Plain sets are valid inputs of the set algebra, their members scoring 1 (found by the
/// differential test; expected replies from redis-server 7.0.15).
#[test]
fn plain_sets_are_inputs_with_score_one() {
    let mut h = Harness::new();
    h.run("SADD s a b");
    h.run("ZADD z2 2 a 5 c");
    h.run("SET str x");
    assert_eq!(
        h.run("ZUNION 2 s z2 WITHSCORES"),
        bulks(&["b", "1", "a", "3", "c", "5"])
    );
    assert_eq!(
        h.run("ZINTER 2 s z2 WEIGHTS 3 1 WITHSCORES"),
        bulks(&["a", "5"])
    );
    assert_eq!(h.run("ZDIFF 2 s z2"), bulks(&["b"]));
    assert_eq!(h.run("ZINTERCARD 2 s z2"), int(1));
    assert_eq!(h.run("ZUNIONSTORE d 2 s z2"), int(3));
    assert_eq!(
        h.run("ZUNION 2 s str WEIGHTS x"),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}
