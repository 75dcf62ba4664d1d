//! Databases against the real binary and the `redis` crate: SELECT, MOVE, SWAPDB, FLUSHDB,
//! FLUSHALL, DBSIZE/KEYS/SCAN/RANDOMKEY and INFO keyspace per database with 1 and 4 shards
//! (replies as redis-server 7.0.15 gives them); blocked clients per database and woken by
//! SWAPDB; `--databases` and the `databases` config directive; persistence of every
//! database through the AOF (kill -9, BGREWRITEAOF) and through an RDB SAVE (which
//! `redis-check-rdb` accepts and a real redis-server loads into the same databases).
//!
//! What can fail here: a command running in the wrong database, a key restored into the
//! wrong database after a restart, an RDB file Redis refuses or reads differently.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use redis::{Commands, RedisResult};

fn select(con: &mut redis::Connection, db: i64) {
    let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
}

fn error_text<T: std::fmt::Debug>(result: RedisResult<T>) -> String {
    let error = result.expect_err("an error reply");
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => error.to_string(),
    }
}

fn dbsize(con: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).unwrap()
}

fn keyspace(con: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("keyspace").query(con).unwrap()
}

/// Keys spread over every shard (20 names hash to all 4 shards).
fn names() -> Vec<String> {
    (0..20).map(|i| format!("key:{i}")).collect()
}

fn scan_all(con: &mut redis::Connection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .clone()
        .iter(con)
        .unwrap()
        .collect();
    keys.sort();
    keys
}

fn per_database_commands(shards: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", shards]);
    let mut con = server.client();
    assert_eq!(
        error_text(redis::cmd("SELECT").arg(16).query::<()>(&mut con)),
        "ERR DB index is out of range"
    );
    assert_eq!(
        error_text(redis::cmd("SELECT").arg("abc").query::<()>(&mut con)),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        error_text(
            redis::cmd("SELECT")
                .arg("99999999999")
                .query::<()>(&mut con)
        ),
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    );
    for name in names() {
        let _: () = con.set(&name, "zero").unwrap();
    }
    select(&mut con, 1);
    assert_eq!(dbsize(&mut con), 0);
    let none: Option<String> = con.get("key:0").unwrap();
    assert_eq!(none, None);
    let random: Option<String> = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
    assert_eq!(random, None);
    for name in names().iter().take(5) {
        let _: () = con.set(name, "one").unwrap();
    }
    assert_eq!(dbsize(&mut con), 5);
    let mut keys: Vec<String> = con.keys("*").unwrap();
    keys.sort();
    let mut first5: Vec<String> = names().into_iter().take(5).collect();
    first5.sort();
    assert_eq!(keys, first5);
    assert_eq!(scan_all(&mut con), first5);
    let value: String = con.get("key:1").unwrap();
    assert_eq!(value, "one");
    select(&mut con, 0);
    assert_eq!(dbsize(&mut con), 20);
    assert_eq!(scan_all(&mut con).len(), 20);
    let value: String = con.get("key:1").unwrap();
    assert_eq!(value, "zero");

    // MOVE: 1 moved; 0 when the target has the key or the source lacks it.
    assert_eq!(
        error_text(
            redis::cmd("MOVE")
                .arg("key:9")
                .arg(0)
                .query::<i64>(&mut con)
        ),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        error_text(
            redis::cmd("MOVE")
                .arg("key:9")
                .arg(16)
                .query::<i64>(&mut con)
        ),
        "ERR DB index is out of range"
    );
    let _: () = con.pexpire("key:9", 100_000).unwrap();
    let moved: i64 = redis::cmd("MOVE")
        .arg("key:9")
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert_eq!(moved, 1);
    let moved: i64 = redis::cmd("MOVE")
        .arg("key:9")
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert_eq!(moved, 0, "no longer in the source");
    let moved: i64 = redis::cmd("MOVE")
        .arg("key:1")
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert_eq!(moved, 0, "exists in the target");
    select(&mut con, 2);
    let ttl: i64 = con.pttl("key:9").unwrap();
    assert!((90_000..=100_000).contains(&ttl), "the TTL moved: {ttl}");
    select(&mut con, 0);

    // INFO keyspace: one line per non-empty database.
    let info = keyspace(&mut con);
    assert!(info.contains("db0:keys=19,expires=0,avg_ttl=0"), "{info}");
    assert!(info.contains("db1:keys=5,expires=0,avg_ttl=0"), "{info}");
    assert!(info.contains("db2:keys=1,expires=1,avg_ttl="), "{info}");
    assert!(!info.contains("db3:"), "{info}");

    // SWAPDB: a second connection in db 0 sees db 1's contents.
    assert_eq!(
        error_text(redis::cmd("SWAPDB").arg("a").arg(1).query::<()>(&mut con)),
        "ERR invalid first DB index"
    );
    assert_eq!(
        error_text(redis::cmd("SWAPDB").arg(0).arg("b").query::<()>(&mut con)),
        "ERR invalid second DB index"
    );
    assert_eq!(
        error_text(redis::cmd("SWAPDB").arg(0).arg(16).query::<()>(&mut con)),
        "ERR DB index is out of range"
    );
    let mut other = server.client();
    let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
    assert_eq!(dbsize(&mut other), 5);
    let value: String = other.get("key:1").unwrap();
    assert_eq!(value, "one");
    select(&mut other, 1);
    assert_eq!(dbsize(&mut other), 19);

    // FLUSHDB empties the selected database only; FLUSHALL every one.
    let _: () = redis::cmd("FLUSHDB").query(&mut other).unwrap();
    assert_eq!(dbsize(&mut other), 0);
    assert_eq!(dbsize(&mut con), 5);
    let info = keyspace(&mut con);
    assert!(
        info.contains("db0:keys=5,") && !info.contains("db1:"),
        "{info}"
    );
    let _: () = redis::cmd("FLUSHALL").query(&mut other).unwrap();
    assert_eq!(dbsize(&mut con), 0);
    select(&mut con, 2);
    assert_eq!(dbsize(&mut con), 0);
    assert_eq!(keyspace(&mut con), "# Keyspace\r\n");
}

#[test]
fn per_database_commands_on_one_shard() {
    per_database_commands("1");
}

#[test]
fn per_database_commands_on_four_shards() {
    per_database_commands("4");
}

#[test]
fn blocked_clients_wait_per_database_and_swapdb_wakes_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards", "4"]);
    let port = server.port;
    let blocked = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        select(&mut con, 2);
        let popped: Option<(String, String)> = con.blpop("queue", 10.0).unwrap();
        popped
    });
    let mut con = server.client();
    // Give the client time to block, then push in database 0: it must not be served.
    std::thread::sleep(Duration::from_millis(500));
    let _: () = con.rpush("queue", "db0").unwrap();
    select(&mut con, 3);
    let _: () = con.rpush("queue", "db3").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!blocked.is_finished(), "served from the wrong database");
    let _: () = redis::cmd("SWAPDB").arg(2).arg(3).query(&mut con).unwrap();
    let popped = blocked.join().unwrap();
    assert_eq!(popped, Some(("queue".to_string(), "db3".to_string())));
    select(&mut con, 0);
    let left: Vec<String> = con.lrange("queue", 0, -1).unwrap();
    assert_eq!(left, vec!["db0".to_string()]);
}

#[test]
fn databases_flag_and_config_directive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--databases", "4"]);
    let mut con = server.client();
    select(&mut con, 3);
    assert_eq!(
        error_text(redis::cmd("SELECT").arg(4).query::<()>(&mut con)),
        "ERR DB index is out of range"
    );
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("databases")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, vec!["databases".to_string(), "4".to_string()]);
    drop(server);

    let conf = dir.path().join("tidemark.conf");
    std::fs::write(&conf, "databases 2\n").unwrap();
    let conf = conf.display().to_string();
    let server = Server::start(dir.path(), &[conf.as_str()]);
    let mut con = server.client();
    select(&mut con, 1);
    assert_eq!(
        error_text(redis::cmd("SELECT").arg(2).query::<()>(&mut con)),
        "ERR DB index is out of range"
    );
    let default = Server::start(dir.path(), &[]);
    let mut con = default.client();
    select(&mut con, 15);
    assert_eq!(
        error_text(redis::cmd("SELECT").arg(16).query::<()>(&mut con)),
        "ERR DB index is out of range"
    );
}

/// Writes a known layout: `key:i` in databases 0, 1 and 5 with different values, one key
/// moved to 7, databases 3 and 4 swapped (4 ends up holding what 3 had).
fn write_layout(con: &mut redis::Connection) {
    for db in [0, 1, 5, 3] {
        select(con, db);
        for name in names() {
            let _: () = con.set(&name, format!("db{db}")).unwrap();
        }
    }
    select(con, 5);
    let _: () = con.pexpire("key:2", 1_000_000).unwrap();
    let moved: i64 = redis::cmd("MOVE").arg("key:3").arg(7).query(con).unwrap();
    assert_eq!(moved, 1);
    let _: () = redis::cmd("SWAPDB").arg(3).arg(4).query(con).unwrap();
    select(con, 0);
}

fn check_layout(con: &mut redis::Connection) {
    for (db, value, count) in [
        (0, "db0", 20),
        (1, "db1", 20),
        (5, "db5", 19),
        (4, "db3", 20),
    ] {
        select(con, db);
        assert_eq!(dbsize(con), count, "database {db}");
        for name in names().iter().filter(|n| db != 5 || *n != "key:3") {
            let got: String = con.get(name).unwrap();
            assert_eq!(got, value, "{name} in database {db}");
        }
    }
    for (db, count) in [(3, 0), (2, 0), (7, 1)] {
        select(con, db);
        assert_eq!(dbsize(con), count, "database {db}");
    }
    select(con, 7);
    let got: String = con.get("key:3").unwrap();
    assert_eq!(got, "db5");
    select(con, 5);
    let ttl: i64 = con.pttl("key:2").unwrap();
    assert!(ttl > 900_000, "the TTL survived: {ttl}");
    select(con, 0);
}

const AOF_FLAGS: [&str; 6] = [
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--shards",
    "2",
];

fn wait_rewrite_done(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
        if info.contains("aof_rewrite_in_progress:0") && !info.contains("aof_rewrite_scheduled:1") {
            return;
        }
        assert!(Instant::now() < deadline, "rewrite did not finish: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn aof_restores_every_database_after_kill9_and_after_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &AOF_FLAGS);
    let port = server.port;
    let mut con = server.client();
    write_layout(&mut con);
    check_layout(&mut con);
    server.kill9();
    let mut server = Server::start_on(dir.path(), port, &AOF_FLAGS);
    let mut con = server.client();
    check_layout(&mut con);

    // A rewrite: the base holds every database; writes after it land in the right one.
    let _: () = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_rewrite_done(&mut con);
    select(&mut con, 9);
    let _: () = con.set("late", "nine").unwrap();
    select(&mut con, 0);
    let _: () = con.set("late", "zero").unwrap();
    server.kill9();
    let mut server = Server::start_on(dir.path(), port, &AOF_FLAGS);
    let mut con = server.client();
    let late: String = con.get("late").unwrap();
    assert_eq!(late, "zero");
    let _: () = con.del("late").unwrap();
    select(&mut con, 9);
    let late: String = con.get("late").unwrap();
    assert_eq!(late, "nine");
    let _: () = con.del("late").unwrap();
    check_layout(&mut con);
    // A second rewrite right away, then a write in database 0 only: still in 0.
    let _: () = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_rewrite_done(&mut con);
    let _: () = con.set("after", "0").unwrap();
    server.kill9();
    let server = Server::start_on(dir.path(), port, &AOF_FLAGS);
    let mut con = server.client();
    let after: String = con.get("after").unwrap();
    assert_eq!(after, "0");
    let _: () = con.del("after").unwrap();
    check_layout(&mut con);
}

/// A `redis-server` on a free port loading `dir/dump.rdb`; killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(dir: &std::path::Path) -> RedisServer {
        let port = common::free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .args(["--dbfilename", "dump.rdb"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        // Owned at once, so a failed start below still kills and reaps it (Drop).
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) {
                if let Ok(mut con) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        return server;
                    }
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rdb_save_restores_every_database_and_redis_reads_it_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--appendonly", "no", "--shards", "2"];
    let mut server = Server::start(dir.path(), &flags);
    let port = server.port;
    let mut con = server.client();
    write_layout(&mut con);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    server.kill9();
    let server = Server::start_on(dir.path(), port, &flags);
    let mut con = server.client();
    check_layout(&mut con);
    drop(server);

    let rdb = dir.path().join("dump.rdb");
    let out = Command::new("redis-check-rdb").arg(&rdb).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("RDB looks OK"),
        "{stdout}"
    );
    let keys = 20 + 20 + 19 + 20 + 1;
    assert!(
        stdout.contains(&format!("[info] {keys} keys read")),
        "{stdout}"
    );

    let real = RedisServer::start(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", real.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    check_layout(&mut con);
}
