//! Integration tests of the small server and generic commands against the real binary on
//! loopback with a real client: TIME, WAIT, DEBUG SLEEP, OBJECT ENCODING, COPY (also
//! across shards, where OBJECT must be routed to the key's shard).
//!
//! What can fail here: a reply that differs from Redis 7, TIME far from the system clock,
//! DEBUG SLEEP not sleeping (or sleeping far too long).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Server;
use redis::Commands;

#[test]
fn time_wait_and_debug_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut con = server.client();

    let (secs, micros): (String, String) = redis::cmd("TIME").query(&mut con).unwrap();
    let secs: u64 = secs.parse().unwrap();
    let micros: u64 = micros.parse().unwrap();
    assert!(micros < 1_000_000, "microseconds {micros}");
    let system = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(system) <= 2, "TIME {secs} vs system {system}");

    let acked: i64 = redis::cmd("WAIT").arg(1).arg(100).query(&mut con).unwrap();
    assert_eq!(acked, 0);
    let err = redis::cmd("WAIT")
        .arg(0)
        .arg(-1)
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("timeout is negative"), "{err}");

    let start = Instant::now();
    let ok: String = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.1")
        .query(&mut con)
        .unwrap();
    let took = start.elapsed();
    assert_eq!(ok, "OK");
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_secs(2),
        "DEBUG SLEEP 0.1 took {took:?}"
    );

    let log: Vec<String> = redis::cmd("SLOWLOG").arg("GET").query(&mut con).unwrap();
    assert!(log.is_empty());
    let ok: String = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
}

#[test]
fn object_encoding_and_copy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut con = server.client();
    let _: () = con.set("int", "12345").unwrap();
    let _: () = con.set("short", "hello").unwrap();
    let _: () = con.set("long", "x".repeat(45)).unwrap();
    for (key, want) in [("int", "int"), ("short", "embstr"), ("long", "raw")] {
        let got: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(&mut con)
            .unwrap();
        assert_eq!(got, want, "{key}");
    }
    let missing: Option<String> = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("nokey")
        .query(&mut con)
        .unwrap();
    assert_eq!(missing, None);

    let copied: i64 = redis::cmd("COPY")
        .arg("short")
        .arg("dst")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    let value: String = con.get("dst").unwrap();
    assert_eq!(value, "hello");
    let copied: i64 = redis::cmd("COPY")
        .arg("long")
        .arg("dst")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 0, "destination exists, no REPLACE");
    let value: String = con.get("dst").unwrap();
    assert_eq!(value, "hello");
    let copied: i64 = redis::cmd("COPY")
        .arg("long")
        .arg("dst")
        .arg("REPLACE")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    let value: String = con.get("dst").unwrap();
    assert_eq!(value, "x".repeat(45));
}

#[test]
fn object_finds_keys_on_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    let mut con = server.client();
    for i in 0..16 {
        let _: () = con.set(format!("k{i}"), i + 100).unwrap();
    }
    for i in 0..16 {
        let got: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(format!("k{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(got, "int", "k{i}");
    }
    let copied: i64 = redis::cmd("COPY")
        .arg("{t}a")
        .arg("{t}b")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 0, "missing source");
}

#[test]
fn copy_into_a_key_wakes_a_blocked_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut waiter = server.client();
    let blocked = std::thread::spawn(move || {
        let got: Option<(String, String)> = redis::cmd("BLPOP")
            .arg("dst")
            .arg(5)
            .query(&mut waiter)
            .unwrap();
        got
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut con = server.client();
    let _: () = con.rpush("src", "v").unwrap();
    let copied: i64 = redis::cmd("COPY")
        .arg("src")
        .arg("dst")
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    let got = blocked.join().unwrap();
    assert_eq!(got, Some(("dst".to_string(), "v".to_string())));
    let left: i64 = con.llen("src").unwrap();
    assert_eq!(left, 1, "the source keeps its element");
}
