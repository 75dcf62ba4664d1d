//! Blocking list commands against the real binary with real clients (the `redis` crate):
//! a BLPOP unblocked by an RPUSH from another connection (one shard and four shards, so the
//! key may live on another shard than the blocked connection), a BLPOP timeout, and a
//! blocked client that disconnects (the pushed element must not be lost).
//!
//! What can fail here: a blocked client never woken, a timeout that does not fire, an
//! element popped for a client that had already gone.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::Server;

fn blpop_unblocked_by_rpush(shards: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", shards]);
    let mut pusher = server.client();
    for (key, also) in [
        ("queue", "{queue}b"),
        ("{t}other", "{t}x"),
        ("third", "{third}c"),
    ] {
        let mut blocked = server.client();
        let key_owned = key.to_string();
        let started = Instant::now();
        let waiter = std::thread::spawn(move || {
            let reply: Option<(String, String)> = redis::cmd("BLPOP")
                .arg(&key_owned)
                .arg(also)
                .arg(10)
                .query(&mut blocked)
                .unwrap();
            (reply, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        let n: i64 = redis::cmd("RPUSH")
            .arg(key)
            .arg("job-1")
            .query(&mut pusher)
            .unwrap();
        assert_eq!(n, 1);
        let (reply, elapsed) = waiter.join().unwrap();
        assert_eq!(
            reply,
            Some((key.to_string(), "job-1".to_string())),
            "shards {shards}"
        );
        common::assert_woken_by_the_write(elapsed);
        let len: i64 = redis::cmd("LLEN").arg(key).query(&mut pusher).unwrap();
        assert_eq!(len, 0, "the element went to the blocked client");
    }
}

#[test]
fn blpop_is_unblocked_by_rpush_from_another_connection() {
    blpop_unblocked_by_rpush("1");
}

#[test]
fn blpop_is_unblocked_across_shards() {
    blpop_unblocked_by_rpush("4");
}

#[test]
fn blpop_times_out_with_nil() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let mut con = server.client();
    for key in ["empty", "empty2{z}"] {
        let started = Instant::now();
        let reply: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(key)
            .arg(0.2)
            .query(&mut con)
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(reply, None);
        assert!(
            elapsed >= Duration::from_millis(190),
            "timed out too early: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(2),
            "timed out too late: {elapsed:?}"
        );
    }
    // The connection still works after a timeout.
    let n: i64 = redis::cmd("RPUSH")
        .arg("empty")
        .arg("a")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_disconnected_blocked_client_pops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    let mut con = server.client();
    for key in ["gone-a", "gone-b", "gone-c", "gone-d"] {
        let mut raw = server.raw();
        let cmd = format!(
            "*3\r\n$5\r\nBLPOP\r\n${}\r\n{key}\r\n$1\r\n0\r\n",
            key.len()
        );
        raw.write_all(cmd.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(raw);
        std::thread::sleep(Duration::from_millis(200));
        let _: i64 = redis::cmd("RPUSH")
            .arg(key)
            .arg("kept")
            .query(&mut con)
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let items: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        assert_eq!(items, vec!["kept".to_string()], "key {key}");
    }
}
