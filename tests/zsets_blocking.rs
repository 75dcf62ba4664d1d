//! Blocking sorted-set commands (BZPOPMIN BZPOPMAX BZMPOP) against the real binary:
//! replies and errors byte for byte as recorded from redis-server 7.0.15, a client
//! unblocked by a ZADD from another connection (one and four shards), timeouts with nil,
//! the first non-empty key served, FIFO order among blocked clients, and a blocked pop
//! that survives kill -9 + restart exactly once (AOF `appendfsync always`).
//!
//! What can fail here: a reply differing from Redis 7, a blocked client never woken or
//! woken out of order, a timeout that does not fire, a pop lost or repeated after restart.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// Reads one RESP2 reply (all its bytes) from `reader`.
fn read_reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut out = String::new();
    let mut remaining = 1u64;
    while remaining > 0 {
        remaining -= 1;
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply line");
        assert!(line.ends_with("\r\n"), "short reply line {line:?}");
        out.push_str(&line);
        let n: i64 = line[1..line.len() - 2].parse().unwrap_or(-1);
        match line.as_bytes()[0] {
            b'*' if n > 0 => remaining += n as u64,
            b'$' if n >= 0 => {
                let mut data = vec![0u8; n as usize + 2];
                reader.read_exact(&mut data).expect("bulk data");
                out.push_str(&String::from_utf8_lossy(&data));
            }
            _ => {}
        }
    }
    out
}

fn send(stream: &mut TcpStream, command: &str) {
    let args: Vec<&str> = command.split_whitespace().collect();
    let mut msg = format!("*{}\r\n", args.len());
    for a in args {
        msg.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(msg.as_bytes()).expect("send");
}

/// (command, exact reply) as redis-server 7.0.15 answers them on a fresh server.
const CASES: &[(&str, &str)] = &[
    ("ZADD z 1 a 2 b 3 c", ":3\r\n"),
    ("BZPOPMIN z 0", "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n"),
    ("BZPOPMAX z 0", "*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n"),
    (
        "BZPOPMIN nokey z 1",
        "*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ),
    (
        "BZPOPMIN z abc",
        "-ERR timeout is not a float or out of range\r\n",
    ),
    ("BZPOPMIN z -1", "-ERR timeout is negative\r\n"),
    ("BZPOPMIN z inf", "-ERR timeout is negative\r\n"),
    (
        "BZPOPMIN z nan",
        "-ERR timeout is not a float or out of range\r\n",
    ),
    ("BZPOPMIN z 1e400", "-ERR timeout is negative\r\n"),
    ("SET s x", "+OK\r\n"),
    (
        "BZPOPMIN s z 1",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
    (
        "BZPOPMIN nokey s 0.01",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
    (
        "BZPOPMAX s 0",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
    ("BZPOPMIN nokey 0.01", "*-1\r\n"),
    (
        "BZPOPMIN z",
        "-ERR wrong number of arguments for 'bzpopmin' command\r\n",
    ),
    ("ZADD z 1 a 2 b 3 c 4 d", ":4\r\n"),
    ("BZMPOP 0.01 1 nokey MIN", "*-1\r\n"),
    (
        "BZMPOP abc 1 z MIN",
        "-ERR timeout is not a float or out of range\r\n",
    ),
    (
        "BZMPOP 0 0 z MIN",
        "-ERR numkeys should be greater than 0\r\n",
    ),
    ("BZMPOP 0 1 z foo", "-ERR syntax error\r\n"),
    (
        "BZMPOP 0 1 z min count 0",
        "-ERR count should be greater than 0\r\n",
    ),
    (
        "BZMPOP 0 1 z min count -3",
        "-ERR count should be greater than 0\r\n",
    ),
    (
        "BZMPOP 0 1 z min count 2",
        "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ),
    (
        "BZMPOP 0 2 nokey z max count 5",
        "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nd\r\n$1\r\n4\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n",
    ),
    (
        "BZMPOP 0 1 s min",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
    ("BZMPOP 0 3 z min", "-ERR syntax error\r\n"),
    (
        "BZMPOP 0 2 z",
        "-ERR wrong number of arguments for 'bzmpop' command\r\n",
    ),
    ("BZMPOP -1 1 z min", "-ERR timeout is negative\r\n"),
    (
        "BZMPOP 0 x z min",
        "-ERR numkeys should be greater than 0\r\n",
    ),
    ("BZMPOP 0 1 z min count 1 count 1", "-ERR syntax error\r\n"),
    ("ZADD z 1.5 x -inf y", ":2\r\n"),
    ("BZPOPMIN z 0", "*3\r\n$1\r\nz\r\n$1\r\ny\r\n$4\r\n-inf\r\n"),
    (
        "BZPOPMAX z 0.5",
        "*3\r\n$1\r\nz\r\n$1\r\nx\r\n$3\r\n1.5\r\n",
    ),
    ("EXISTS z", ":0\r\n"),
    (
        "BZMPOP 0.01 2 s z MIN",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
    (
        "BZPOPMAX nokey z s 0.01",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
];

#[test]
fn replies_match_redis_7_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "1"]);
    let mut stream = server.raw();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for (command, want) in CASES {
        send(&mut stream, command);
        assert_eq!(read_reply(&mut reader), *want, "{command}");
    }
}

/// Blocks `command` on a fresh connection in a thread; returns the reply and how long it took.
fn blocked(server: &Server, command: &'static str) -> std::thread::JoinHandle<(String, Duration)> {
    let mut stream = server.raw();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        send(&mut stream, command);
        (read_reply(&mut reader), started.elapsed())
    })
}

fn bzpopmin_unblocked_by_zadd(shards: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", shards]);
    let mut con = server.client();
    for (command, key) in [
        ("BZPOPMIN zq {zq}b 10", "zq"),
        ("BZPOPMIN {t}other {t}x 10", "{t}other"),
        ("BZPOPMAX third {third}c 0", "third"),
    ] {
        let waiter = blocked(&server, command);
        std::thread::sleep(Duration::from_millis(300));
        let added: i64 = redis::cmd("ZADD")
            .arg(key)
            .arg(7)
            .arg("job")
            .query(&mut con)
            .unwrap();
        assert_eq!(added, 1);
        let (reply, elapsed) = waiter.join().unwrap();
        assert_eq!(
            reply,
            format!("*3\r\n${}\r\n{key}\r\n$3\r\njob\r\n$1\r\n7\r\n", key.len()),
            "shards {shards}"
        );
        common::assert_woken_by_the_write(elapsed);
        let card: i64 = redis::cmd("ZCARD").arg(key).query(&mut con).unwrap();
        assert_eq!(card, 0, "the member went to the blocked client");
    }
}

#[test]
fn bzpopmin_is_unblocked_by_zadd_from_another_connection() {
    bzpopmin_unblocked_by_zadd("1");
}

#[test]
fn bzpopmin_is_unblocked_across_shards() {
    bzpopmin_unblocked_by_zadd("4");
}

/// Sends `command` on a new connection and returns its reply.
fn call(server: &Server, command: &str) -> String {
    let mut stream = server.raw();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    send(&mut stream, command);
    read_reply(&mut reader)
}

#[test]
fn bzmpop_is_unblocked_with_count_from_the_first_nonempty_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let waiter = blocked(&server, "BZMPOP 0 2 {m}a {m}b MAX COUNT 2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(call(&server, "ZADD {m}b 1 x 2 y 3 z"), ":3\r\n");
    let (reply, _) = waiter.join().unwrap();
    assert_eq!(
        reply,
        "*2\r\n$4\r\n{m}b\r\n*2\r\n*2\r\n$1\r\nz\r\n$1\r\n3\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n"
    );
    assert_eq!(call(&server, "ZRANGE {m}b 0 -1"), "*1\r\n$1\r\nx\r\n");
}

#[test]
fn blocked_clients_are_served_in_fifo_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "1"]);
    let mut waiters = Vec::new();
    for _ in 0..3 {
        waiters.push(blocked(&server, "BZPOPMIN fifo 10"));
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(call(&server, "ZADD fifo 1 a 2 b 3 c"), ":3\r\n");
    let replies: Vec<String> = waiters.into_iter().map(|w| w.join().unwrap().0).collect();
    let member =
        |m: &str, score: &str| format!("*3\r\n$4\r\nfifo\r\n$1\r\n{m}\r\n$1\r\n{score}\r\n");
    assert_eq!(
        replies,
        vec![member("a", "1"), member("b", "2"), member("c", "3")],
        "the first client blocked gets the lowest member"
    );
    assert_eq!(call(&server, "EXISTS fifo"), ":0\r\n");
}

#[test]
fn a_blocked_pop_survives_kill9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--shards",
        "2",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ];
    let mut server = Server::start(dir.path(), &flags);
    let waiter = blocked(&server, "BZPOPMAX durable 0");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(call(&server, "ZADD durable 1 a 2 b 3 c"), ":3\r\n");
    let (reply, _) = waiter.join().unwrap();
    assert_eq!(reply, "*3\r\n$7\r\ndurable\r\n$1\r\nc\r\n$1\r\n3\r\n");
    let bzmpop = call(&server, "BZMPOP 0 1 durable MIN COUNT 1");
    assert_eq!(
        bzmpop,
        "*2\r\n$7\r\ndurable\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    let port = server.port;
    server.kill9();
    let server = Server::start_on(dir.path(), port, &flags);
    assert_eq!(
        call(&server, "ZRANGE durable 0 -1 WITHSCORES"),
        "*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
        "popped members stay popped after replaying the AOF"
    );
}

#[test]
fn blocking_zset_pops_time_out_with_nil() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    for command in [
        "BZPOPMIN empty 0.2",
        "BZPOPMAX empty2{z} 0.2",
        "BZMPOP 0.2 1 empty3 MIN",
    ] {
        let (reply, elapsed) = blocked(&server, command).join().unwrap();
        assert_eq!(reply, "*-1\r\n", "{command}");
        assert!(
            elapsed >= Duration::from_millis(190),
            "{command}: too early {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(2),
            "{command}: too late {elapsed:?}"
        );
    }
}
