//! MULTI/EXEC/DISCARD/WATCH/UNWATCH against the real binary: exact Redis 7.0.15 replies
//! (recorded with redis-server 7.0.15 and raw sockets), WATCH invalidation by other clients,
//! expiry, FLUSHALL, RENAME and blocking pops, atomicity against a concurrent client,
//! cross-shard refusal, and a transaction surviving kill -9 under `appendfsync always`.
//!
//! What can fail here: any divergence from Redis 7 replies, a transaction that interleaves
//! with another client, a cross-shard transaction that half-applies, a lost transaction.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use redis::Commands;

/// A raw RESP connection that returns each reply as its exact wire text.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn new(server: &Server) -> Raw {
        Raw {
            stream: server.raw(),
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("read reply");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            self.fill();
        }
    }

    /// Sends one command without reading its reply.
    fn send(&mut self, parts: &[&str]) {
        let mut out = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
        }
        self.stream.write_all(&out).expect("send");
    }

    /// Sends one command and returns exactly one reply, as wire text.
    fn cmd(&mut self, parts: &[&str]) -> String {
        self.send(parts);
        self.reply()
    }

    /// Reads exactly one reply, as wire text.
    fn reply(&mut self) -> String {
        let mut text = String::new();
        let mut need = 1i64;
        while need > 0 {
            let line = self.line();
            text.push_str(&line);
            let body = line.trim_end();
            let n: i64 = body[1..].parse().unwrap_or(0);
            match body.as_bytes()[0] {
                b'$' if n >= 0 => {
                    while self.buf.len() < n as usize + 2 {
                        self.fill();
                    }
                    let bulk: Vec<u8> = self.buf.drain(..n as usize + 2).collect();
                    text.push_str(&String::from_utf8_lossy(&bulk));
                    need -= 1;
                }
                b'*' if n > 0 => need += n - 1,
                _ => need -= 1,
            }
        }
        text
    }

    /// Runs `lines` (space-separated commands) and checks each reply.
    fn expect(&mut self, script: &[(&str, &str)]) {
        for (command, want) in script {
            let parts: Vec<&str> = command.split(' ').collect();
            assert_eq!(self.cmd(&parts), *want, "{command}");
        }
    }
}

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn replies_match_redis_7() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = Raw::new(&server);
    c.expect(&[
        // Nesting is refused but does not flag the transaction.
        ("MULTI", "+OK\r\n"),
        ("MULTI", "-ERR MULTI calls can not be nested\r\n"),
        ("SET a 1", "+QUEUED\r\n"),
        ("EXEC", "*1\r\n+OK\r\n"),
        ("EXEC", "-ERR EXEC without MULTI\r\n"),
        ("DISCARD", "-ERR DISCARD without MULTI\r\n"),
        ("EXEC x", "-ERR wrong number of arguments for 'exec' command\r\n"),
        ("WATCH", "-ERR wrong number of arguments for 'watch' command\r\n"),
        ("UNWATCH", "+OK\r\n"),
        // Queuing errors flag the transaction; nothing runs.
        ("MULTI", "+OK\r\n"),
        ("SET a", "-ERR wrong number of arguments for 'set' command\r\n"),
        ("NOSUCH x", "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"),
        ("SET b 1", "+QUEUED\r\n"),
        ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        ("GET b", "$-1\r\n"),
        // Run-time errors sit in the reply array; the rest runs.
        ("SET s str", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        ("INCR s", "+QUEUED\r\n"),
        ("SET c 1", "+QUEUED\r\n"),
        ("LPUSH s x", "+QUEUED\r\n"),
        ("EXEC", &format!("*3\r\n-ERR value is not an integer or out of range\r\n+OK\r\n{WRONGTYPE}")),
        ("GET c", "$1\r\n1\r\n"),
        // WATCH inside MULTI is an error that does not flag.
        ("MULTI", "+OK\r\n"),
        ("WATCH x", "-ERR WATCH inside MULTI is not allowed\r\n"),
        ("SET a 2", "+QUEUED\r\n"),
        ("EXEC", "*1\r\n+OK\r\n"),
        // DISCARD drops the queue.
        ("MULTI", "+OK\r\n"),
        ("SET z 1", "+QUEUED\r\n"),
        ("DISCARD", "+OK\r\n"),
        ("GET z", "$-1\r\n"),
        ("MULTI", "+OK\r\n"),
        ("EXEC", "*0\r\n"),
        // no_multi commands are refused and flag.
        ("MULTI", "+OK\r\n"),
        ("SAVE", "-ERR Command not allowed inside a transaction\r\n"),
        ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        // A rejected EXEC aborts the transaction at once.
        ("MULTI", "+OK\r\n"),
        ("SET z 1", "+QUEUED\r\n"),
        ("EXEC x", "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"),
        ("DISCARD", "-ERR DISCARD without MULTI\r\n"),
        ("MULTI", "+OK\r\n"),
        ("MULTI x", "-ERR wrong number of arguments for 'multi' command\r\n"),
        ("DISCARD x", "-ERR wrong number of arguments for 'discard' command\r\n"),
        ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        // Blocking commands do not block inside MULTI.
        ("MULTI", "+OK\r\n"),
        ("BLPOP l 0", "+QUEUED\r\n"),
        ("BLMPOP 0 1 l LEFT", "+QUEUED\r\n"),
        ("EXEC", "*2\r\n*-1\r\n*-1\r\n"),
        // Keyless and connection commands keep their places.
        ("MULTI", "+OK\r\n"),
        ("PING", "+QUEUED\r\n"),
        ("SET k v", "+QUEUED\r\n"),
        ("ECHO hi", "+QUEUED\r\n"),
        ("GET k", "+QUEUED\r\n"),
        ("UNWATCH", "+QUEUED\r\n"),
        ("EXEC", "*5\r\n+PONG\r\n+OK\r\n$2\r\nhi\r\n$1\r\nv\r\n+OK\r\n"),
        // QUIT inside MULTI closes at once.
        ("MULTI", "+OK\r\n"),
        ("SET q 1", "+QUEUED\r\n"),
        ("QUIT", "+OK\r\n"),
    ]);
    let mut d = Raw::new(&server);
    d.expect(&[("GET q", "$-1\r\n")]);
}

/// `A` WATCHes `key`, `setup` ran before, `touch` runs on `B`; EXEC's reply says whether
/// the transaction ran.
fn watch_case(server: &Server, setup: &[&str], key: &str, touch: &[&str]) -> String {
    let mut a = Raw::new(server);
    let mut b = Raw::new(server);
    for command in setup {
        a.cmd(&command.split(' ').collect::<Vec<_>>());
    }
    assert_eq!(a.cmd(&["WATCH", key]), "+OK\r\n");
    for command in touch {
        b.cmd(&command.split(' ').collect::<Vec<_>>());
    }
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["PING"]), "+QUEUED\r\n");
    a.cmd(&["EXEC"])
}

const ABORTED: &str = "*-1\r\n";
const RAN: &str = "*1\r\n+PONG\r\n";

#[test]
fn watch_is_invalidated_by_any_effective_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let cases: &[(&str, &[&str], &[&str], &str)] = &[
        ("set by another client", &["SET k 1"], &["SET k 2"], ABORTED),
        ("same value", &["SET k 1"], &["SET k 1"], ABORTED),
        ("created", &["DEL k"], &["SET k 1"], ABORTED),
        ("deleted", &["SET k 1"], &["DEL k"], ABORTED),
        ("DEL of a missing key", &["DEL k"], &["DEL k"], RAN),
        ("EXPIRE", &["SET k 1"], &["EXPIRE k 100"], ABORTED),
        ("PERSIST without TTL", &["SET k 1"], &["PERSIST k"], RAN),
        ("a read", &["SET k 1"], &["GET k"], RAN),
        (
            "FLUSHALL, key present",
            &["SET k 1"],
            &["FLUSHALL"],
            ABORTED,
        ),
        ("FLUSHDB, key present", &["SET k 1"], &["FLUSHDB"], ABORTED),
        ("FLUSHALL, key missing", &["DEL k"], &["FLUSHALL"], RAN),
        (
            "RENAME onto it",
            &["DEL k", "SET src 1"],
            &["RENAME src k"],
            ABORTED,
        ),
        (
            "RENAME away",
            &["SET k 1", "DEL dst"],
            &["RENAME k dst"],
            ABORTED,
        ),
        ("HSET", &["DEL k"], &["HSET k f v"], ABORTED),
        (
            "blocking pop",
            &["DEL k", "RPUSH k a"],
            &["BLPOP k 0"],
            ABORTED,
        ),
        ("another key", &["SET k 1"], &["SET other 1"], RAN),
    ];
    for (name, setup, touch, want) in cases {
        let got = watch_case(&server, setup, "k", touch);
        assert_eq!(&got, want, "{name}");
    }
    // A blocked client served by another client's push writes the watched key: BLMOVE's
    // destination is only written by the pop, not by the push.
    let mut a = Raw::new(&server);
    let mut blocked = Raw::new(&server);
    let mut pusher = Raw::new(&server);
    a.expect(&[("DEL bk bsrc", ":0\r\n"), ("WATCH bk", "+OK\r\n")]);
    blocked.send(&["BLMOVE", "bsrc", "bk", "LEFT", "RIGHT", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    pusher.expect(&[("RPUSH bsrc a", ":1\r\n")]);
    assert_eq!(blocked.reply(), "$1\r\na\r\n");
    a.expect(&[
        ("MULTI", "+OK\r\n"),
        ("PING", "+QUEUED\r\n"),
        ("EXEC", ABORTED),
    ]);
    // The watching client's own write counts too.
    let mut a = Raw::new(&server);
    a.expect(&[
        ("SET k 1", "+OK\r\n"),
        ("WATCH k", "+OK\r\n"),
        ("SET k 1", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        ("GET k", "+QUEUED\r\n"),
        ("EXEC", ABORTED),
        // EXEC, DISCARD, UNWATCH and an aborted EXEC all forget the watched keys.
        ("WATCH k", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        ("DISCARD", "+OK\r\n"),
        ("SET k 2", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        ("EXEC", "*0\r\n"),
        ("WATCH k", "+OK\r\n"),
        ("UNWATCH", "+OK\r\n"),
        ("SET k 3", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        ("EXEC", "*0\r\n"),
        ("WATCH k", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        (
            "NOSUCH",
            "-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
        ),
        (
            "EXEC",
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        ),
        ("SET k 4", "+OK\r\n"),
        ("MULTI", "+OK\r\n"),
        ("EXEC", "*0\r\n"),
    ]);
    // With the redis crate: a watched key changed by another client aborts (nil).
    let mut con = server.client();
    let mut other = server.client();
    let _: () = con.set("balance", 10).unwrap();
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut con).unwrap();
    let _: () = other.set("balance", 20).unwrap();
    let result: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("balance", 1)
        .query(&mut con)
        .unwrap();
    assert_eq!(result, None);
    let result: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("balance", 1)
        .query(&mut con)
        .unwrap();
    assert_eq!(result, Some((21,)));
}

#[test]
fn watch_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // Expires after WATCH and is reclaimed (lazily, by another client's read) or not: abort.
    let got = watch_case(&server, &["SET k 1 PX 100"], "k", &[]);
    assert_eq!(got, RAN, "not yet expired at EXEC");
    let mut a = Raw::new(&server);
    let mut b = Raw::new(&server);
    a.expect(&[("SET k 1 PX 150", "+OK\r\n"), ("WATCH k", "+OK\r\n")]);
    std::thread::sleep(Duration::from_millis(400));
    a.expect(&[
        ("MULTI", "+OK\r\n"),
        ("PING", "+QUEUED\r\n"),
        ("EXEC", ABORTED),
    ]);
    a.expect(&[("SET k 1 PX 150", "+OK\r\n"), ("WATCH k", "+OK\r\n")]);
    std::thread::sleep(Duration::from_millis(400));
    b.expect(&[("GET k", "$-1\r\n")]);
    a.expect(&[
        ("MULTI", "+OK\r\n"),
        ("PING", "+QUEUED\r\n"),
        ("EXEC", ABORTED),
    ]);
    // Already gone when WATCHed: its reclaim is no change (Redis 7 `wk->expired`).
    a.expect(&[("SET k 1 PX 20", "+OK\r\n")]);
    std::thread::sleep(Duration::from_millis(100));
    a.expect(&[("WATCH k", "+OK\r\n")]);
    b.expect(&[("GET k", "$-1\r\n")]);
    a.expect(&[("MULTI", "+OK\r\n"), ("PING", "+QUEUED\r\n"), ("EXEC", RAN)]);
}

#[test]
fn exec_is_atomic_against_a_concurrent_client() {
    for shards in ["1", "4"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &["--shards", shards]);
        let stop = Arc::new(AtomicBool::new(false));
        let mut checkers = Vec::new();
        for _ in 0..2 {
            let mut con = server.client();
            let stop = stop.clone();
            checkers.push(std::thread::spawn(move || {
                let mut checks = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let (x, y): (Option<i64>, Option<i64>) = con.mget(&["{t}x", "{t}y"]).unwrap();
                    assert_eq!(x, y, "a reader saw half a transaction");
                    checks += 1;
                }
                checks
            }));
        }
        let mut writers = Vec::new();
        for _ in 0..2 {
            let mut con = server.client();
            writers.push(std::thread::spawn(move || {
                for _ in 0..300 {
                    let (x, y): (i64, i64) = redis::pipe()
                        .atomic()
                        .incr("{t}x", 1)
                        .incr("{t}y", 1)
                        .query(&mut con)
                        .unwrap();
                    assert_eq!(x, y);
                }
            }));
        }
        for writer in writers {
            writer.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        for checker in checkers {
            assert!(checker.join().unwrap() > 0);
        }
        let mut con = server.client();
        let (x, y): (i64, i64) = con.mget(&["{t}x", "{t}y"]).unwrap();
        assert_eq!((x, y), (600, 600), "--shards {shards}");
    }
}

#[test]
fn cross_shard_transactions_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    // Several connections: each may be served by a different shard.
    for round in 0..6 {
        let mut c = Raw::new(&server);
        assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
        let keys: Vec<String> = (0..16).map(|i| format!("r{round}k{i}")).collect();
        for key in &keys {
            assert_eq!(c.cmd(&["SET", key, "1"]), "+QUEUED\r\n");
        }
        let reply = c.cmd(&["EXEC"]);
        assert!(
            reply.starts_with("-CROSSSLOT Keys in request don't hash to the same slot"),
            "{reply}"
        );
        for key in &keys {
            assert_eq!(c.cmd(&["EXISTS", key]), ":0\r\n", "nothing ran");
        }
        // Keys sharing a hash tag live together and run.
        let reply = c.cmd(&["MULTI"]);
        assert_eq!(reply, "+OK\r\n");
        for i in 0..4 {
            assert_eq!(
                c.cmd(&["INCR", &format!("{{r{round}}}n{i}")]),
                "+QUEUED\r\n"
            );
        }
        assert_eq!(c.cmd(&["EXEC"]), "*4\r\n:1\r\n:1\r\n:1\r\n:1\r\n");
        // WATCH of a key elsewhere counts as one of the transaction's keys.
        let watched = (0..64)
            .map(|i| format!("w{round}_{i}"))
            .find(|k| {
                // A key on another shard than {r<round>}: probe with a two-key MSET.
                let probe = c.cmd(&["MSET", k, "1", &format!("{{r{round}}}n0"), "1"]);
                probe.starts_with("-CROSSSLOT")
            })
            .expect("some key lives on another shard");
        assert_eq!(c.cmd(&["WATCH", &watched]), "+OK\r\n");
        assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(
            c.cmd(&["SET", &format!("{{r{round}}}n0"), "9"]),
            "+QUEUED\r\n"
        );
        assert!(c.cmd(&["EXEC"]).starts_with("-CROSSSLOT"));
        assert_eq!(c.cmd(&["GET", &format!("{{r{round}}}n0")]), "$1\r\n1\r\n");
        // Keyless commands and a key on one shard are fine; FLUSHALL spans every shard.
        c.expect(&[
            ("MULTI", "+OK\r\n"),
            ("PING", "+QUEUED\r\n"),
            ("EXEC", RAN),
            ("MULTI", "+OK\r\n"),
            ("FLUSHALL", "+QUEUED\r\n"),
        ]);
        assert!(c.cmd(&["EXEC"]).starts_with("-CROSSSLOT"));
    }
    // WATCH invalidation works whichever shards serve the two clients.
    for round in 0..6 {
        let key = format!("{{w}}k{round}");
        let got = watch_case(&server, &["SET {w}k0 1"], &key, &[&format!("SET {key} 2")]);
        assert_eq!(got, ABORTED, "round {round}");
        let got = watch_case(&server, &[], &key, &["SET {w}other 2"]);
        assert_eq!(got, RAN, "round {round}");
    }
}

#[test]
fn transactions_survive_kill_9_as_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--appendonly", "yes", "--appendfsync", "always"];
    let mut server = Server::start(dir.path(), &flags);
    let port = server.port;
    let mut con = server.client();
    for _ in 0..50 {
        let _: (i64, i64, i64) = redis::pipe()
            .atomic()
            .incr("n", 1)
            .rpush("list", "x")
            .incr("m", 2)
            .query(&mut con)
            .unwrap();
    }
    server.kill9();
    drop(con);
    // The transactions are in the log as MULTI records.
    let mut found = false;
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        found |= bytes.windows(9).any(|w| w == b"$5\r\nMULTI");
    }
    assert!(found, "no transaction record in the AOF");
    let server = Server::start_on(dir.path(), port, &flags);
    let mut con = server.client();
    let n: i64 = con.get("n").unwrap();
    let m: i64 = con.get("m").unwrap();
    let len: i64 = con.llen("list").unwrap();
    assert_eq!((n, m, len), (50, 100, 50));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
