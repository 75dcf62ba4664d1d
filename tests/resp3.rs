//! Integration tests of RESP3 (HELLO 3 with the `redis` crate and raw bytes), AUTH and
//! `requirepass`, the CLIENT registry across shard threads (LIST, KILL), CONFIG with Redis
//! 7 parameter names, and COMMAND DOCS, against the real binary on loopback. Expected
//! bytes were captured from redis-server 7.0.15.
//!
//! What can fail here: any divergence from Redis 7 replies, a killed client that stays
//! connected, a client on another shard missing from CLIENT LIST.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use redis::Value;

/// Encodes a command as a RESP array of bulk strings.
fn command(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        out.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
    }
    out
}

/// Sends one command and reads until the reply is exactly `expected` long (or times out).
fn exchange(stream: &mut TcpStream, words: &[&str], expected_len: usize) -> Vec<u8> {
    stream.write_all(&command(words)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < expected_len {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Sends one command and checks the reply bytes.
fn expect(stream: &mut TcpStream, words: &[&str], expected: &[u8]) {
    let got = exchange(stream, words, expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {words:?}"
    );
}

/// Reads one line-terminated simple reply (`+OK\r\n`, `:3\r\n`, `-ERR …\r\n`).
fn line(stream: &mut TcpStream, words: &[&str]) -> String {
    stream.write_all(&command(words)).unwrap();
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A bulk (or verbatim) reply's body.
fn bulk_body(stream: &mut TcpStream, words: &[&str]) -> String {
    let header = line(stream, words);
    assert!(
        header.starts_with('$') || header.starts_with('='),
        "{header}"
    );
    let len: usize = header[1..].trim_end().parse().unwrap();
    let mut body = vec![0u8; len + 2];
    stream.read_exact(&mut body).unwrap();
    body.truncate(len);
    String::from_utf8_lossy(&body).into_owned()
}

fn resp3_client(server: &Server) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", server.port))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn query(con: &mut redis::Connection, words: &[&str]) -> Value {
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query(con).unwrap()
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn redis_crate_resp3_session_sees_maps_sets_doubles_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let mut con = resp3_client(&server);
    query(&mut con, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        query(&mut con, &["HGETALL", "h"]),
        Value::Map(vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))])
    );
    query(&mut con, &["SADD", "s", "x"]);
    assert_eq!(
        query(&mut con, &["SMEMBERS", "s"]),
        Value::Set(vec![bulk("x")])
    );
    query(&mut con, &["ZADD", "z", "1.5", "m", "2", "n"]);
    assert_eq!(query(&mut con, &["ZSCORE", "z", "m"]), Value::Double(1.5));
    assert_eq!(
        query(&mut con, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        Value::Array(vec![
            Value::Array(vec![bulk("m"), Value::Double(1.5)]),
            Value::Array(vec![bulk("n"), Value::Double(2.0)]),
        ])
    );
    assert_eq!(query(&mut con, &["GET", "missing"]), Value::Nil);
    assert_eq!(query(&mut con, &["INCRBYFLOAT", "f", "1.5"]), bulk("1.5"));
    match query(&mut con, &["CLIENT", "INFO"]) {
        Value::VerbatimString { text, .. } => assert!(text.contains(" resp=3\n"), "{text}"),
        other => panic!("CLIENT INFO gave {other:?}"),
    }
    match query(&mut con, &["CONFIG", "GET", "maxmemory-policy"]) {
        Value::Map(pairs) => {
            assert_eq!(pairs, vec![(bulk("maxmemory-policy"), bulk("noeviction"))])
        }
        other => panic!("CONFIG GET gave {other:?}"),
    }
}

#[test]
fn raw_resp3_bytes_match_redis() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut s = server.raw();
    expect(
        &mut s,
        &["HELLO", "4"],
        b"-NOPROTO unsupported protocol version\r\n",
    );
    expect(
        &mut s,
        &["HELLO", "abc"],
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    let id = line(&mut s, &["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end();
    let hello = format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n\
$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
$7\r\nmodules\r\n*0\r\n"
    );
    expect(&mut s, &["HELLO", "3"], hello.as_bytes());
    expect(&mut s, &["ZADD", "z", "1.1", "a", "2", "b"], b":2\r\n");
    expect(&mut s, &["ZSCORE", "z", "a"], b",1.1000000000000001\r\n");
    expect(&mut s, &["ZSCORE", "z", "nope"], b"_\r\n");
    expect(&mut s, &["ZMSCORE", "z", "b", "nope"], b"*2\r\n,2\r\n_\r\n");
    expect(
        &mut s,
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        b"*2\r\n*2\r\n$1\r\na\r\n,1.1000000000000001\r\n*2\r\n$1\r\nb\r\n,2\r\n",
    );
    expect(&mut s, &["LPOP", "nolist", "2"], b"_\r\n");
    expect(&mut s, &["HSET", "h", "f", "v"], b":1\r\n");
    expect(&mut s, &["HGETALL", "h"], b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    expect(&mut s, &["HGETALL", "missing"], b"%0\r\n");
    expect(&mut s, &["SMEMBERS", "missing"], b"~0\r\n");
    expect(
        &mut s,
        &["ZPOPMIN", "z"],
        b"*2\r\n$1\r\na\r\n,1.1000000000000001\r\n",
    );
    // Back to RESP2 in the same pipeline position: the HELLO reply itself is RESP2.
    let hello2 = format!(
        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:2\r\n\
$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
$7\r\nmodules\r\n*0\r\n"
    );
    expect(&mut s, &["HELLO", "2"], hello2.as_bytes());
    expect(&mut s, &["ZSCORE", "z", "b"], b"$1\r\n2\r\n");
    expect(&mut s, &["GET", "missing"], b"$-1\r\n");
    expect(&mut s, &["HGETALL", "h"], b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

#[test]
fn requirepass_gates_every_command_until_auth() {
    let dir = tempfile::tempdir().unwrap();
    // (`--requirepass` at start-up would also gate the harness's readiness PING.)
    let server = Server::start(dir.path(), &[]);
    let mut setter = server.raw();
    expect(
        &mut setter,
        &["CONFIG", "SET", "requirepass", "sekret"],
        b"+OK\r\n",
    );
    expect(
        &mut setter,
        &["CONFIG", "GET", "requirepass"],
        b"*2\r\n$11\r\nrequirepass\r\n$6\r\nsekret\r\n",
    );
    let mut s = server.raw();
    expect(&mut s, &["PING"], b"-NOAUTH Authentication required.\r\n");
    expect(
        &mut s,
        &["GET", "k"],
        b"-NOAUTH Authentication required.\r\n",
    );
    expect(
        &mut s,
        &["HELLO", "3"],
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n",
    );
    let wrongpass: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    expect(&mut s, &["AUTH", "nope"], wrongpass);
    expect(&mut s, &["AUTH", "nobody", "sekret"], wrongpass);
    expect(
        &mut s,
        &["HELLO", "3", "AUTH", "default", "nope"],
        wrongpass,
    );
    expect(&mut s, &["AUTH", "a", "b", "c"], b"-ERR syntax error\r\n");
    expect(&mut s, &["AUTH", "default", "sekret"], b"+OK\r\n");
    expect(&mut s, &["PING"], b"+PONG\r\n");
    // HELLO AUTH authenticates and switches protocol in one go.
    let mut t = server.raw();
    let reply = exchange(
        &mut t,
        &["HELLO", "3", "AUTH", "default", "sekret", "SETNAME", "x"],
        20,
    );
    assert!(
        reply.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let mut t = server.raw();
    expect(&mut t, &["AUTH", "sekret"], b"+OK\r\n");
    expect(&mut t, &["CONFIG", "SET", "requirepass", ""], b"+OK\r\n");
    let mut u = server.raw();
    expect(&mut u, &["PING"], b"+PONG\r\n");
    expect(
        &mut u,
        &["AUTH", "x"],
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    );
    expect(&mut u, &["AUTH", "default", "x"], b"+OK\r\n");
    expect(
        &mut u,
        &["CONFIG", "SET", "requirepass", "again"],
        b"+OK\r\n",
    );
    let mut v = server.raw();
    expect(&mut v, &["PING"], b"-NOAUTH Authentication required.\r\n");
    // The client that set it stays authenticated, as in Redis.
    expect(&mut u, &["PING"], b"+PONG\r\n");
}

/// True once the peer closed `stream` (EOF) within `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => {}
        }
    }
    false
}

#[test]
fn client_list_and_kill_reach_clients_on_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let mut admin = server.raw();
    expect(&mut admin, &["CLIENT", "SETNAME", "admin"], b"+OK\r\n");
    expect(&mut admin, &["CLIENT", "GETNAME"], b"$5\r\nadmin\r\n");
    // 16 idle clients: with two shard threads some are served by the other shard.
    let mut victims = Vec::new();
    for i in 0..16 {
        let mut s = server.raw();
        let name = format!("victim{i}");
        expect(&mut s, &["CLIENT", "SETNAME", &name], b"+OK\r\n");
        let id: u64 = line(&mut s, &["CLIENT", "ID"])[1..]
            .trim_end()
            .parse()
            .unwrap();
        victims.push((s, id, name));
    }
    let list = bulk_body(&mut admin, &["CLIENT", "LIST"]);
    assert_eq!(list.lines().count(), 17, "{list}");
    for (_, id, name) in &victims {
        let entry = list
            .lines()
            .find(|l| l.starts_with(&format!("id={id} ")))
            .unwrap_or_else(|| panic!("client {id} missing from {list}"));
        assert!(entry.contains(&format!(" name={name} ")), "{entry}");
        assert!(entry.contains(" cmd=client|id "), "{entry}");
        assert!(entry.ends_with(" user=default redir=-1 resp=2"), "{entry}");
    }
    let own = bulk_body(
        &mut admin,
        &["CLIENT", "LIST", "ID", &victims[0].1.to_string()],
    );
    assert_eq!(own.lines().count(), 1);
    expect(
        &mut admin,
        &["CLIENT", "LIST", "TYPE", "foo"],
        b"-ERR Unknown client type 'foo'\r\n",
    );
    expect(
        &mut admin,
        &["CLIENT", "KILL", "ID", "0"],
        b"-ERR client-id should be greater than 0\r\n",
    );
    expect(
        &mut admin,
        &["CLIENT", "KILL", "1.2.3.4:5"],
        b"-ERR No such client\r\n",
    );
    expect(
        &mut admin,
        &["CLIENT", "KILL", "foo", "bar"],
        b"-ERR syntax error\r\n",
    );
    // Kill every victim by id, each while it waits in a socket read.
    for (_, id, _) in &victims[..14] {
        expect(
            &mut admin,
            &["CLIENT", "KILL", "ID", &id.to_string()],
            b":1\r\n",
        );
    }
    // The old form and ADDR take the peer address from CLIENT LIST.
    let addr_of = |id: u64| {
        let entry = list
            .lines()
            .find(|l| l.starts_with(&format!("id={id} ")))
            .unwrap();
        entry
            .split(' ')
            .find_map(|f| f.strip_prefix("addr="))
            .unwrap()
            .to_string()
    };
    let old_form = addr_of(victims[14].1);
    expect(&mut admin, &["CLIENT", "KILL", &old_form], b"+OK\r\n");
    let by_addr = addr_of(victims[15].1);
    expect(
        &mut admin,
        &["CLIENT", "KILL", "ADDR", &by_addr, "SKIPME", "yes"],
        b":1\r\n",
    );
    for (stream, id, _) in &mut victims {
        assert!(
            closed_within(stream, Duration::from_secs(5)),
            "client {id} still open"
        );
    }
    let list = bulk_body(&mut admin, &["CLIENT", "LIST"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    // SKIPME no kills the caller too: it gets its reply, then the connection closes.
    expect(
        &mut admin,
        &[
            "CLIENT",
            "KILL",
            "LADDR",
            &format!("127.0.0.1:{}", server.port),
            "SKIPME",
            "no",
        ],
        b":1\r\n",
    );
    assert!(closed_within(&mut admin, Duration::from_secs(5)));
}

#[test]
fn client_kill_ends_a_blocked_command() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "2"]);
    let mut admin = server.raw();
    let mut blocked = Vec::new();
    for _ in 0..6 {
        let mut s = server.raw();
        let id = line(&mut s, &["CLIENT", "ID"])[1..].trim_end().to_string();
        s.write_all(&command(&["BLPOP", "never", "0"])).unwrap();
        blocked.push((s, id));
    }
    std::thread::sleep(Duration::from_millis(200));
    for (_, id) in &blocked {
        expect(&mut admin, &["CLIENT", "KILL", "ID", id], b":1\r\n");
    }
    for (stream, id) in &mut blocked {
        assert!(
            closed_within(stream, Duration::from_secs(5)),
            "client {id} still open"
        );
    }
}

#[test]
fn config_accepts_redis_7_parameter_names() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "notify-keyspace-events KEA\ntcp-keepalive 60\n").unwrap();
    let server = Server::start(dir.path(), &[conf.to_str().unwrap()]);
    let mut s = server.raw();
    expect(
        &mut s,
        &["CONFIG", "GET", "notify-keyspace-events"],
        b"*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nKEA\r\n",
    );
    expect(
        &mut s,
        &["CONFIG", "GET", "tcp-keepalive"],
        b"*2\r\n$13\r\ntcp-keepalive\r\n$2\r\n60\r\n",
    );
    expect(
        &mut s,
        &[
            "CONFIG",
            "SET",
            "maxmemory-policy",
            "allkeys-lru",
            "hz",
            "20",
        ],
        b"+OK\r\n",
    );
    expect(
        &mut s,
        &["CONFIG", "GET", "maxmemory-policy"],
        b"*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n",
    );
    expect(
        &mut s,
        &["CONFIG", "GET", "hz"],
        b"*2\r\n$2\r\nhz\r\n$2\r\n20\r\n",
    );
    expect(
        &mut s,
        &["CONFIG", "SET", "foo", "bar"],
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n",
    );
    expect(
        &mut s,
        &["CONFIG", "SET", "lazyfree-lazy-eviction", "maybe"],
        b"-ERR CONFIG SET failed (possibly related to argument 'lazyfree-lazy-eviction') - argument must be 'yes' or 'no'\r\n",
    );
    expect(
        &mut s,
        &["CONFIG", "SET", "hz", "20", "hz", "30"],
        b"-ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter\r\n",
    );
    expect(&mut s, &["CONFIG", "GET", "nothing*"], b"*0\r\n");
    expect(&mut s, &["CONFIG", "RESETSTAT"], b"+OK\r\n");
    expect(
        &mut s,
        &["CONFIG", "GET"],
        b"-ERR wrong number of arguments for 'config|get' command\r\n",
    );
}

#[test]
fn command_docs_carry_argument_specs_for_redis_cli_hints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut s = server.raw();
    expect(
        &mut s,
        &["COMMAND", "DOCS", "get"],
        b"*2\r\n$3\r\nget\r\n*10\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n\
$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n\
$9\r\narguments\r\n*1\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n\
$14\r\nkey_spec_index\r\n:0\r\n",
    );
    let mut con = resp3_client(&server);
    match query(&mut con, &["COMMAND", "DOCS", "set"]) {
        Value::Map(entries) => {
            let Value::Map(fields) = &entries[0].1 else {
                panic!("{entries:?}")
            };
            assert!(fields.iter().any(|(k, _)| *k == bulk("arguments")));
        }
        other => panic!("COMMAND DOCS gave {other:?}"),
    }
}
