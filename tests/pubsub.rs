//! Pub/Sub against the real binary: delivery across shard threads (--shards 4, many
//! connections), patterns, counts, PUBSUB introspection, subscribed-mode refusals (exact
//! Redis 7.0.15 bytes), `client-output-buffer-limit`, and a slow subscriber that is
//! disconnected while the server's memory stays bounded.
//!
//! What can fail here: a message lost between shards, a reply differing from Redis 7, a
//! stalled subscriber that is not dropped or that makes the server's memory grow.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Server;

fn info_field(con: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO lacks {field}"))
        .trim()
        .to_string()
}

/// Resident memory of the server process, in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Reads exactly `want.len()` bytes (5 s timeout) and compares.
fn expect_bytes(raw: &mut std::net::TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    raw.read_exact(&mut got).unwrap_or_else(|e| {
        panic!("reading {:?}: {e}", String::from_utf8_lossy(want));
    });
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

#[test]
fn publish_reaches_subscribers_on_every_shard_thread() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    // 8 subscriber connections: with SO_REUSEPORT over 4 shard threads they spread out.
    let mut connections: Vec<redis::Connection> = (0..8).map(|_| server.client()).collect();
    let mut subscribers: Vec<redis::PubSub<'_>> =
        connections.iter_mut().map(|c| c.as_pubsub()).collect();
    for (i, sub) in subscribers.iter_mut().enumerate() {
        sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sub.subscribe("news").unwrap();
        if i % 2 == 0 {
            sub.psubscribe("n*s").unwrap();
        }
    }
    // Publish from several connections (likely on different shards too).
    let mut publishers: Vec<redis::Connection> = (0..4).map(|_| server.client()).collect();
    for (round, publisher) in publishers.iter_mut().enumerate() {
        let payload = format!("hello {round}");
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("news")
            .arg(&payload)
            .query(publisher)
            .unwrap();
        assert_eq!(receivers, 12, "8 channel + 4 pattern deliveries");
        for (i, sub) in subscribers.iter_mut().enumerate() {
            let msg = sub.get_message().unwrap();
            assert_eq!(msg.get_channel_name(), "news");
            assert_eq!(msg.get_payload::<String>().unwrap(), payload);
            assert!(!msg.from_pattern());
            if i % 2 == 0 {
                let msg = sub.get_message().unwrap();
                assert!(msg.from_pattern());
                assert_eq!(msg.get_pattern::<String>().unwrap(), "n*s");
                assert_eq!(msg.get_payload::<String>().unwrap(), payload);
            }
        }
    }
    let mut other = server.client();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("nobody")
        .arg("x")
        .query(&mut other)
        .unwrap();
    assert_eq!(receivers, 0);
}

#[test]
fn introspection_counts_and_info_follow_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    let mut a = server.client();
    let mut b = server.client();
    let mut sub_a = a.as_pubsub();
    let mut sub_b = b.as_pubsub();
    // One name a call: the sync redis-rs PubSub reads one confirmation per call.
    for channel in ["c1", "c2"] {
        sub_a.subscribe(channel).unwrap();
    }
    for pattern in ["c*", "d?"] {
        sub_a.psubscribe(pattern).unwrap();
    }
    sub_b.subscribe("c1").unwrap();
    sub_b.psubscribe("c*").unwrap();
    let mut con = server.client();
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("c1")
        .arg("c2")
        .arg("zz")
        .query(&mut con)
        .unwrap();
    let numsub: Vec<String> = numsub
        .iter()
        .map(|v| match v {
            redis::Value::BulkString(s) => String::from_utf8_lossy(s).into_owned(),
            redis::Value::Int(n) => n.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(numsub, ["c1", "2", "c2", "1", "zz", "0"]);
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut con).unwrap();
    assert_eq!(numpat, 2);
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query(&mut con)
        .unwrap();
    assert_eq!(channels, ["c1", "c2"]);
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("*2")
        .query(&mut con)
        .unwrap();
    assert_eq!(channels, ["c2"]);
    assert_eq!(info_field(&mut con, "pubsub_channels"), "2");
    assert_eq!(info_field(&mut con, "pubsub_patterns"), "2");
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("c1")
        .arg("m")
        .query(&mut con)
        .unwrap();
    assert_eq!(receivers, 4);
    sub_a.unsubscribe("c1").unwrap();
    sub_a.punsubscribe("c*").unwrap();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("c1")
        .arg("m")
        .query(&mut con)
        .unwrap();
    assert_eq!(receivers, 2);
    drop(sub_b);
    drop(b);
    // The dropped connection's subscriptions go when its task sees the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("c1")
            .arg("m")
            .query(&mut con)
            .unwrap();
        if receivers == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "closed subscriber still counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("c2")
        .query(&mut con)
        .unwrap();
    assert_eq!(numsub[1], redis::Value::Int(1));
}

#[test]
fn subscribed_mode_replies_match_redis_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let mut raw = server.raw();
    let cases: &[(&str, &str)] = &[
        ("UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"),
        ("PUNSUBSCRIBE", "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"),
        ("SUBSCRIBE c1 c2 c1", "*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:2\r\n"),
        ("PSUBSCRIBE c*", "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:3\r\n"),
        ("GET x", "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"),
        ("CONFIG GET maxclients", "-ERR Can't execute 'config|get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"),
        ("GET", "-ERR wrong number of arguments for 'get' command\r\n"),
        ("PING", "*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        ("PING hi", "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"),
        ("UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$2\r\nc2\r\n:1\r\n"),
        ("PUNSUBSCRIBE", "*3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:0\r\n"),
        ("PING", "+PONG\r\n"),
    ];
    for (command, want) in cases {
        raw.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        expect_bytes(&mut raw, want.as_bytes());
    }
    // Messages published on another connection arrive while the subscriber is idle.
    raw.write_all(b"PSUBSCRIBE n*\r\n").unwrap();
    expect_bytes(&mut raw, b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n");
    let mut publisher = server.client();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(receivers, 1);
    expect_bytes(
        &mut raw,
        b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n",
    );
}

#[test]
fn client_output_buffer_limit_in_flags_config_get_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--client-output-buffer-limit", "pubsub 2mb 1mb 30"],
    );
    let mut con = server.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        got,
        [
            "client-output-buffer-limit",
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 2097152 1048576 30"
        ]
    );
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 1mb 512kb")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Wrong number of arguments in buffer limit configuration."),
        "{err}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("replica 1 1 1 normal 5 6 7")
        .query(&mut con)
        .unwrap();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query(&mut con)
        .unwrap();
    assert_eq!(got[1], "normal 5 6 7 slave 1 1 1 pubsub 2097152 1048576 30");
}

#[test]
fn slow_subscriber_is_disconnected_and_memory_stays_bounded() {
    const PAYLOAD_BYTES: usize = 100 * 1024;
    const PUBLISHES_MAX: usize = 2000; // 200 MiB if the subscriber were never dropped
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let mut publisher = server.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 1mb 512kb 60")
        .query(&mut publisher)
        .unwrap();
    // A subscriber that reads its confirmation and then never reads again.
    let mut slow = server.raw();
    slow.write_all(b"SUBSCRIBE firehose\r\n").unwrap();
    expect_bytes(
        &mut slow,
        b"*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n",
    );
    // A healthy subscriber on the same channel keeps receiving throughout.
    let mut healthy_con = server.client();
    let mut healthy = healthy_con.as_pubsub();
    healthy.subscribe("firehose").unwrap();
    healthy
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(info_field(&mut publisher, "connected_clients"), "3");
    let rss_before = rss_kib(&server);
    let payload = vec![b'x'; PAYLOAD_BYTES];
    let mut dropped_after = None;
    for i in 0..PUBLISHES_MAX {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("firehose")
            .arg(&payload)
            .query(&mut publisher)
            .unwrap();
        let msg = healthy.get_message().unwrap();
        assert_eq!(msg.get_payload_bytes().len(), PAYLOAD_BYTES);
        if receivers == 1 {
            dropped_after = Some(i);
            break;
        }
        assert_eq!(receivers, 2);
    }
    let dropped_after = dropped_after.expect("the slow subscriber was never dropped");
    // Kernel socket buffers absorb some megabytes before the 1 MiB limit is reached.
    assert!(
        dropped_after < 400,
        "dropped only after {dropped_after} messages"
    );
    let rss_after = rss_kib(&server);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "server RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The connection is closed: after what was already in the kernel buffers, EOF.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0usize;
    loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
        assert!(Instant::now() < deadline, "slow subscriber not closed");
    }
    eprintln!("slow subscriber dropped after {dropped_after} messages; it had received {received} bytes; RSS {rss_before} -> {rss_after} KiB");
    assert!(received <= (dropped_after + 1) * (PAYLOAD_BYTES + 64));
    assert_eq!(info_field(&mut publisher, "connected_clients"), "2");
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("firehose")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numsub[1], redis::Value::Int(1));
}

/// A subscriber's half-sent command survives deliveries that arrive in between: the
/// unparsed input is never lent to a read that can lose a race with the outbox, and a
/// dropped io_uring read loses no bytes (`Stream::read` cancel safety; the exact race is
/// pinned by the io layer's `a_dropped_read_loses_no_bytes`, which hangs without it).
#[test]
fn a_half_sent_command_survives_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut publisher = server.client();
    let mut raw = server.raw();
    raw.write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n")
        .unwrap();
    expect_bytes(&mut raw, b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
    for round in 0..10 {
        raw.write_all(b"*2\r\n$4\r\nPI").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("c")
            .arg("m")
            .query(&mut publisher)
            .unwrap();
        assert_eq!(receivers, 1, "round {round}");
        expect_bytes(&mut raw, b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n");
        raw.write_all(b"NG\r\n$2\r\nhi\r\n").unwrap();
        expect_bytes(&mut raw, b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    }
}
