//! Unit tests for the list family: exact Redis 7.0 replies and errors (recorded from
//! redis-server 7.0.15), AOF propagation, and a replay property test.

use bytes::Bytes;
use proptest::prelude::*;

use crate::cmd::tests::{keyspace_state, Harness};
use crate::cmd::{execute, ExecCtx};
use crate::keyspace::Db;
use crate::resp::Frame;

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn arr(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| bulk(s)).collect())
}

fn ints(items: &[i64]) -> Frame {
    Frame::Array(items.iter().map(|n| Frame::Integer(*n)).collect())
}

fn err(s: &str) -> Frame {
    Frame::error(s)
}

#[test]
fn push_pop_and_null_shapes() {
    let mut h = Harness::new();
    assert_eq!(h.run("RPUSH l a b c"), Frame::Integer(3));
    assert_eq!(h.run("LPUSH l z"), Frame::Integer(4));
    assert_eq!(h.run("LPUSHX nokey a"), Frame::Integer(0));
    assert_eq!(h.run("RPUSHX l d"), Frame::Integer(5));
    assert_eq!(h.run("LPOP nokey 0"), Frame::NullArray);
    assert_eq!(h.run("LPOP nokey 2"), Frame::NullArray);
    assert_eq!(h.run("LPOP nokey"), Frame::Null);
    assert_eq!(h.run("LPOP l 0"), Frame::Array(vec![]));
    assert_eq!(
        h.run("LPOP l -1"),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        h.run("LPOP l abc"),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        h.run("LPOP l 1 2"),
        err("ERR wrong number of arguments for 'lpop' command")
    );
    assert_eq!(h.run("LPOP l"), bulk("z"));
    assert_eq!(h.run("RPOP l 2"), arr(&["d", "c"]));
    assert_eq!(h.run("LLEN l"), Frame::Integer(2));
    assert_eq!(h.run("LPOP l 10"), arr(&["a", "b"]));
    assert_eq!(
        h.run("EXISTS l"),
        Frame::Integer(0),
        "an emptied list is deleted"
    );
    let log = h.take_log();
    assert_eq!(
        log,
        vec![
            "RPUSH l a b c",
            "LPUSH l z",
            "RPUSHX l d",
            "LPOP l",
            "RPOP l 2",
            "LPOP l 2"
        ]
    );
}

#[test]
fn wrongtype_everywhere() {
    let mut h = Harness::new();
    h.run("SET s x");
    let wt = err(crate::cmd::ERR_WRONGTYPE);
    for cmd in [
        "LPUSH s a",
        "RPUSHX s a",
        "LPOP s",
        "LLEN s",
        "LRANGE s 0 -1",
        "LINDEX s 0",
        "LSET s 0 a",
        "LINSERT s BEFORE a b",
        "LREM s 0 a",
        "LTRIM s 0 1",
        "LPOS s a",
        "LMOVE s d LEFT LEFT",
        "LMPOP 1 s LEFT",
        "BLPOP s 1",
        "BLMPOP 1 1 s LEFT",
    ] {
        assert_eq!(h.run(cmd), wt, "{cmd}");
    }
    h.run("RPUSH l a");
    assert_eq!(h.run("LMOVE l s LEFT LEFT"), wt);
    assert_eq!(
        h.run("LLEN l"),
        Frame::Integer(1),
        "nothing popped when the destination is wrong"
    );
    assert_eq!(
        h.run("LINDEX nokey abc"),
        Frame::Null,
        "key read before the index is parsed"
    );
    assert_eq!(
        h.run("LRANGE nokey a 1"),
        err("ERR value is not an integer or out of range")
    );
}

#[test]
fn index_commands() {
    let mut h = Harness::new();
    h.run("RPUSH l a b c a b c");
    assert_eq!(h.run("LRANGE l 1 -2"), arr(&["b", "c", "a", "b"]));
    assert_eq!(
        h.run("LRANGE l -100 100").clone(),
        arr(&["a", "b", "c", "a", "b", "c"])
    );
    assert_eq!(h.run("LRANGE l 5 2"), arr(&[]));
    assert_eq!(h.run("LRANGE nokey 0 -1"), arr(&[]));
    assert_eq!(h.run("LINDEX l -1"), bulk("c"));
    assert_eq!(h.run("LINDEX l 6"), Frame::Null);
    assert_eq!(h.run("LSET nokey 0 x"), err("ERR no such key"));
    assert_eq!(h.run("LSET l 100 x"), err("ERR index out of range"));
    assert_eq!(h.run("LSET l -1 C"), Frame::ok());
    assert_eq!(h.run("LINSERT l middle a x"), err("ERR syntax error"));
    assert_eq!(h.run("LINSERT nokey before a x"), Frame::Integer(0));
    assert_eq!(h.run("LINSERT l before zz x"), Frame::Integer(-1));
    assert_eq!(h.run("LINSERT l AFTER b B"), Frame::Integer(7));
    assert_eq!(
        h.run("LRANGE l 0 -1"),
        arr(&["a", "b", "B", "c", "a", "b", "C"])
    );
    assert_eq!(h.run("LREM l -1 b"), Frame::Integer(1));
    assert_eq!(h.run("LREM l 0 a"), Frame::Integer(2));
    assert_eq!(h.run("LREM l 0 nothere"), Frame::Integer(0));
    assert_eq!(h.run("LRANGE l 0 -1"), arr(&["b", "B", "c", "C"]));
    assert_eq!(h.run("LTRIM l 1 -2"), Frame::ok());
    assert_eq!(h.run("LRANGE l 0 -1"), arr(&["B", "c"]));
    assert_eq!(h.run("LTRIM l 5 1"), Frame::ok());
    assert_eq!(h.run("EXISTS l"), Frame::Integer(0));
    assert_eq!(h.run("LTRIM nokey 0 1"), Frame::ok());
    let log = h.take_log();
    assert_eq!(
        log[1..],
        [
            "LSET l -1 C",
            "LINSERT l AFTER b B",
            "LREM l -1 b",
            "LREM l 0 a",
            "LTRIM l 1 -2",
            "LTRIM l 5 1"
        ]
    );
}

#[test]
fn lpos_options() {
    let mut h = Harness::new();
    h.run("RPUSH l a b c a b c");
    assert_eq!(h.run("LPOS l a"), Frame::Integer(0));
    assert_eq!(h.run("LPOS l a RANK 2"), Frame::Integer(3));
    assert_eq!(h.run("LPOS l a RANK -1"), Frame::Integer(3));
    assert_eq!(
        h.run("LPOS l a RANK -9223372036854775808"),
        Frame::Integer(3)
    );
    assert_eq!(h.run("LPOS l a COUNT 0"), ints(&[0, 3]));
    assert_eq!(h.run("LPOS l c COUNT 0 RANK -1"), ints(&[5, 2]));
    assert_eq!(h.run("LPOS l c COUNT 1 MAXLEN 3"), ints(&[2]));
    assert_eq!(h.run("LPOS l c MAXLEN 2"), Frame::Null);
    assert_eq!(h.run("LPOS l z"), Frame::Null);
    assert_eq!(h.run("LPOS l z COUNT 0"), ints(&[]));
    assert_eq!(h.run("LPOS nokey z COUNT 0"), ints(&[]));
    assert_eq!(h.run("LPOS l a RANK 0"), err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
    assert_eq!(
        h.run("LPOS l a COUNT -1"),
        err("ERR COUNT can't be negative")
    );
    assert_eq!(
        h.run("LPOS l a MAXLEN -1"),
        err("ERR MAXLEN can't be negative")
    );
    assert_eq!(
        h.run("LPOS l a RANK abc"),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(h.run("LPOS l a foo"), err("ERR syntax error"));
    // Found by the differential test: the option name is checked before its value, and
    // COUNT/MAXLEN report a non-integer with their own text (redis-server 7.0.15).
    assert_eq!(h.run("LPOS l a FOO x"), err("ERR syntax error"));
    assert_eq!(
        h.run("LPOS l a COUNT x"),
        err("ERR COUNT can't be negative")
    );
    assert_eq!(
        h.run("LPOS l a MAXLEN x"),
        err("ERR MAXLEN can't be negative")
    );
}

#[test]
fn move_and_mpop() {
    let mut h = Harness::new();
    h.run("RPUSH l a b c");
    assert_eq!(h.run("LMOVE l l2 up left"), err("ERR syntax error"));
    assert_eq!(h.run("LMOVE l l LEFT RIGHT"), bulk("a"));
    assert_eq!(h.run("LRANGE l 0 -1"), arr(&["b", "c", "a"]));
    assert_eq!(h.run("RPOPLPUSH l d"), bulk("a"));
    assert_eq!(h.run("LMOVE nokey d LEFT LEFT"), Frame::Null);
    assert_eq!(h.run("RPOPLPUSH nokey d"), Frame::Null);
    assert_eq!(
        h.run("LMPOP 0 l left"),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        h.run("LMPOP abc l left"),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(h.run("LMPOP 1 l middle"), err("ERR syntax error"));
    assert_eq!(h.run("LMPOP 2 l left"), err("ERR syntax error"));
    assert_eq!(
        h.run("LMPOP 1 l left count 0"),
        err("ERR count should be greater than 0")
    );
    assert_eq!(
        h.run("LMPOP 1 l left count 1 count 2"),
        err("ERR syntax error")
    );
    assert_eq!(h.run("LMPOP 1 l left foo 1"), err("ERR syntax error"));
    // Found by the differential test: COUNT is parsed before anything after it.
    assert_eq!(
        h.run("LMPOP 1 l left count x extra"),
        err("ERR count should be greater than 0")
    );
    assert_eq!(
        h.run("LMPOP 1 l left count 1 extra"),
        err("ERR syntax error")
    );
    assert_eq!(h.run("LMPOP 1 nokey left"), Frame::NullArray);
    let expect = Frame::Array(vec![bulk("l"), arr(&["c", "b"])]);
    assert_eq!(h.run("LMPOP 2 nokey l RIGHT COUNT 5"), expect);
    let log = h.take_log();
    assert_eq!(
        log[1..],
        ["LMOVE l l LEFT RIGHT", "LMOVE l d RIGHT LEFT", "RPOP l 2"]
    );
}

#[test]
fn blocking_attempts_and_timeouts() {
    let mut h = Harness::new();
    assert_eq!(h.run("BLPOP l -1"), err("ERR timeout is negative"));
    assert_eq!(
        h.run("BLPOP l abc"),
        err("ERR timeout is not a float or out of range")
    );
    assert_eq!(
        h.run("BLPOP l nan"),
        err("ERR timeout is not a float or out of range")
    );
    assert_eq!(h.run("BLPOP l inf"), err("ERR timeout is negative"));
    assert_eq!(h.run("BLPOP l 1e400"), err("ERR timeout is negative"));
    assert_eq!(
        h.run("BLPOP l 9223372036854776"),
        err("ERR timeout is negative")
    );
    assert_eq!(h.run("BLPOP l 0.5"), Frame::NullArray);
    assert_eq!(h.run("BLMOVE l d LEFT LEFT 0"), Frame::NullArray);
    assert_eq!(h.run("BRPOPLPUSH l d 0"), Frame::NullArray);
    assert_eq!(h.run("BLMPOP 0 1 l LEFT"), Frame::NullArray);
    h.run("RPUSH b x y z");
    assert_eq!(h.run("BLPOP l b 0"), arr(&["b", "x"]));
    assert_eq!(h.run("BRPOP l b 0"), arr(&["b", "z"]));
    assert_eq!(h.run("BLMOVE b d RIGHT LEFT 1"), bulk("y"));
    assert_eq!(h.run("BRPOPLPUSH d e 1"), bulk("y"));
    assert_eq!(
        h.run("BLMPOP 1 2 l e LEFT COUNT 3"),
        Frame::Array(vec![bulk("e"), arr(&["y"])])
    );
    let log = h.take_log();
    assert_eq!(
        log[1..],
        [
            "LPOP b",
            "RPOP b",
            "LMOVE b d RIGHT LEFT",
            "LMOVE d e RIGHT LEFT",
            "LPOP e 1"
        ]
    );
}

#[test]
fn timeout_parsing() {
    use crate::cmd::parse_timeout;
    use std::time::Duration;
    assert_eq!(parse_timeout(b"0").unwrap(), None);
    assert_eq!(
        parse_timeout(b"-0.0001").unwrap(),
        None,
        "rounds up to 0 ms: forever"
    );
    assert_eq!(
        parse_timeout(b"1e-9").unwrap(),
        Some(Duration::from_millis(1))
    );
    assert_eq!(
        parse_timeout(b"0.2").unwrap(),
        Some(Duration::from_millis(200))
    );
    assert_eq!(
        parse_timeout(b"0x10").unwrap(),
        Some(Duration::from_secs(16))
    );
    assert!(parse_timeout(b" 1").is_err());
}

#[test]
fn wait_spec_and_movable_keys() {
    let args = |s: &str| -> Vec<Bytes> {
        s.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    };
    let (keys, t) = crate::cmd::blocking_wait_spec(&args("BLPOP a b 0")).unwrap();
    assert_eq!((keys.len(), t), (2, None));
    let (keys, _) = crate::cmd::blocking_wait_spec(&args("BLMPOP 1 2 x y LEFT COUNT 2")).unwrap();
    assert_eq!(keys, args("x y"));
    assert!(crate::cmd::blocking_wait_spec(&args("BLMPOP 1 5 x y LEFT")).is_none());
    assert_eq!(
        crate::cmd::movable_key_indexes(&args("LMPOP 2 a b LEFT")),
        vec![2, 3]
    );
    assert_eq!(
        crate::cmd::movable_key_indexes(&args("BLMPOP 0 9 a b LEFT")),
        vec![3, 4, 5]
    );
    assert_eq!(
        crate::cmd::movable_key_indexes(&args("LMPOP x a")),
        Vec::<usize>::new()
    );
}

fn command(kind: u8, k1: &str, k2: &str, n: i64) -> String {
    match kind {
        0 => format!("LPUSH {k1} v{n} w{n}"),
        1 => format!("RPUSH {k1} v{n}"),
        2 => format!("LPUSHX {k1} x{n}"),
        3 => format!("RPUSHX {k1} x{n}"),
        4 => format!("LPOP {k1}"),
        5 => format!("RPOP {k1} {}", n.max(0) % 4),
        6 => format!("LSET {k1} {} s{n}", n % 3),
        7 => format!("LINSERT {k1} BEFORE v{n} i{n}"),
        8 => format!("LREM {k1} {} v{n}", n % 3),
        9 => format!("LTRIM {k1} {} {}", n % 3, -(n % 4)),
        10 => format!("LMOVE {k1} {k2} LEFT RIGHT"),
        11 => format!("RPOPLPUSH {k1} {k2}"),
        12 => format!("LMPOP 2 {k1} {k2} RIGHT COUNT {}", n.max(1)),
        13 => format!("BLPOP {k1} {k2} 0"),
        14 => format!("BLMOVE {k1} {k2} RIGHT LEFT 1"),
        15 => format!("BLMPOP 0 1 {k1} LEFT COUNT 2"),
        16 => format!("SET {k1} str"),
        17 => format!("DEL {k1}"),
        18 => format!("RENAME {k1} {k2}"),
        _ => format!("BRPOPLPUSH {k1} {k2} 0"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn replaying_the_list_log_reproduces_the_state(ops in proptest::collection::vec((0u8..20, 0usize..3, 0usize..3, -3i64..8), 1..80)) {
        const KEYS: [&str; 3] = ["a", "b", "{a}c"];
        let mut h = Harness::new();
        for (kind, k1, k2, n) in ops {
            h.run(&command(kind, KEYS[k1], KEYS[k2], n));
        }
        let mut db = Db::new(99);
        let mut random = || 4u64;
        let mut sink = Vec::new();
        for cmd in &h.log {
            let mut ctx = ExecCtx { now_ms: h.now_ms, random: &mut random, propagate: &mut sink, replaying: true };
            let reply = execute(&mut db, &mut ctx, cmd);
            prop_assert!(!reply.is_error(), "replayed {:?} failed: {:?}", cmd, reply);
        }
        prop_assert_eq!(keyspace_state(&h.db), keyspace_state(&db));
        prop_assert_eq!(h.db.used_memory_bytes(), db.used_memory_bytes());
    }
}

#[test]
fn lmove_of_a_single_element_onto_its_own_list_keeps_the_ttl() {
    let mut h = Harness::new();
    h.run("RPUSH l e");
    h.run("EXPIRE l 1000");
    assert_eq!(
        h.run("LMOVE l l LEFT RIGHT"),
        Frame::Bulk(bytes::Bytes::from("e"))
    );
    assert_eq!(h.run("TTL l"), Frame::Integer(1000));
    assert_eq!(h.run("RPOPLPUSH l l"), Frame::Bulk(bytes::Bytes::from("e")));
    assert_eq!(h.run("TTL l"), Frame::Integer(1000));
}
