//! Integration tests against the real binary on loopback with a real client (the `redis`
//! crate) and raw sockets: basic commands, garbage input, persistence across kill -9,
//! multi-shard routing.
//!
//! What can fail here: any divergence from Redis 7 replies, a server that dies or hangs
//! on bad input, an acknowledged write missing after kill -9.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::Write;

use common::{read_all, Server};
use redis::Commands;

#[test]
fn set_get_incr_expire_with_redis_crate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut con = server.client();
    let _: () = con.set("greeting", "hello").unwrap();
    let value: String = con.get("greeting").unwrap();
    assert_eq!(value, "hello");
    let n: i64 = con.incr("counter", 1).unwrap();
    assert_eq!(n, 1);
    let n: i64 = con.incr("counter", 41).unwrap();
    assert_eq!(n, 42);
    let set: bool = con.expire("greeting", 100).unwrap();
    assert!(set);
    let ttl: i64 = con.ttl("greeting").unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    let err = con.incr::<_, _, i64>("greeting", 1).unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    let missing: Option<String> = con.get("nope").unwrap();
    assert_eq!(missing, None);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 2);
}

#[test]
fn garbage_gets_protocol_errors_and_others_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut bystander = server.client();
    let _: () = bystander.set("safe", "1").unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("huge multibulk", b"*99999999999\r\n".to_vec()),
        ("600 MiB bulk", b"*1\r\n$629145600\r\n".to_vec()),
        ("not a bulk", b"*1\r\n:12\r\n".to_vec()),
        ("inline too long", vec![b'a'; 100 * 1024]),
        ("unbalanced quotes", b"SET \"foo bar\r\n".to_vec()),
    ];
    for (name, bytes) in cases {
        let mut raw = server.raw();
        raw.write_all(&bytes).unwrap();
        let reply = read_all(&mut raw);
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.starts_with("-ERR Protocol error"),
            "{name}: got {text:?}"
        );
    }
    // Random bytes: whatever comes back, the server must stay up.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut raw = server.raw();
        let junk: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = raw.write_all(&junk);
        let _ = raw.shutdown(std::net::Shutdown::Write);
        let _ = read_all(&mut raw);
    }
    let value: String = bystander.get("safe").unwrap();
    assert_eq!(value, "1");
    let mut fresh = server.client();
    let pong: String = redis::cmd("PING").query(&mut fresh).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn acknowledged_writes_survive_kill_9_under_always() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--shards",
        "2",
    ];
    let mut server = Server::start(dir.path(), &flags);
    let port = server.port;
    let mut con = server.client();
    for i in 0..500 {
        let _: () = con.set(format!("key:{i}"), format!("value:{i}")).unwrap();
    }
    for _ in 0..100 {
        let _: i64 = con.incr("counter", 1).unwrap();
    }
    server.kill9();
    drop(con);
    let server = Server::start_on(dir.path(), port, &flags);
    let mut con = server.client();
    for i in 0..500 {
        let value: Option<String> = con.get(format!("key:{i}")).unwrap();
        assert_eq!(
            value.as_deref(),
            Some(format!("value:{i}").as_str()),
            "key:{i}"
        );
    }
    let counter: i64 = con.get("counter").unwrap();
    assert_eq!(counter, 100);
}

#[test]
fn multi_key_commands_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    let mut con = server.client();
    let keys: Vec<String> = (0..32).map(|i| format!("k{i}")).collect();
    for key in &keys {
        let _: () = con.set(key, key).unwrap();
    }
    let values: Vec<Option<String>> = con.mget(&keys).unwrap();
    assert_eq!(
        values,
        keys.iter().map(|k| Some(k.clone())).collect::<Vec<_>>()
    );
    let exists: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
    assert_eq!(exists, 32);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 32);
    // MSET across shards is refused whole; with a hash tag it works.
    let err = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .arg("c")
        .arg("3")
        .arg("d")
        .arg("4")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("crossslot"),
        "{err}"
    );
    let a: Option<String> = con.get("a").unwrap();
    assert_eq!(a, None, "a refused MSET must not be half-applied");
    let _: () = redis::cmd("MSET")
        .arg("{t}a")
        .arg("1")
        .arg("{t}b")
        .arg("2")
        .query(&mut con)
        .unwrap();
    let mut all: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    all.sort();
    assert_eq!(all.len(), 34);
    // SCAN walks every shard.
    let mut cursor: u64 = 0;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(5)
            .query(&mut con)
            .unwrap();
        seen.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 34);
    let deleted: i64 = redis::cmd("DEL").arg(&keys).query(&mut con).unwrap();
    assert_eq!(deleted, 32);
}

#[test]
fn a_second_server_on_a_taken_port_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let other = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--port", &server.port.to_string(), "--dir"])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "a taken port must be an error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Address already in use"), "{stderr}");
    let mut con = server.client();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG", "the first server keeps serving");
}

#[test]
fn save_writes_a_dump_that_loads_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--shards", "2"]);
    let port = server.port;
    let mut con = server.client();
    let _: () = con.set("s", "v").unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("l")
        .arg("a")
        .arg("b")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("st")
        .arg("m")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("z")
        .arg("1.5")
        .arg("m")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg("s")
        .arg(600_000)
        .query(&mut con)
        .unwrap();
    let before: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    let after: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(after >= before);
    assert!(dir.path().join("dump.rdb").exists());
    server.kill9();
    let server = Server::start_on(dir.path(), port, &["--shards", "2"]);
    let mut con = server.client();
    let s: String = con.get("s").unwrap();
    assert_eq!(s, "v");
    let ttl: i64 = con.pttl("s").unwrap();
    assert!(ttl > 0 && ttl <= 600_000, "TTL kept: {ttl}");
    let l: Vec<String> = redis::cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(l, vec!["a", "b"]);
    let h: String = redis::cmd("HGET")
        .arg("h")
        .arg("f")
        .query(&mut con)
        .unwrap();
    assert_eq!(h, "1");
    let m: i64 = redis::cmd("SISMEMBER")
        .arg("st")
        .arg("m")
        .query(&mut con)
        .unwrap();
    assert_eq!(m, 1);
    let z: String = redis::cmd("ZSCORE")
        .arg("z")
        .arg("m")
        .query(&mut con)
        .unwrap();
    assert_eq!(z, "1.5");
}
