//! Real-tools tests for the RDB module (src/persist/rdb): our files must pass the real
//! `redis-check-rdb` (Redis 7.0) and load into a real `redis-server` with the same
//! contents; a dump saved by a real `redis-server` 7 (with its default compact encodings:
//! intsets, listpacks, quicklists, LZF strings, integer strings) must load through
//! `read_rdb` with exactly the contents we put in.
//!
//! What can fail here: redis-tools / redis-server not installed (the tests fail with a
//! message saying what to install), a server that does not start in time, and of course
//! any divergence between our files and Redis's.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tidemark::persist::rdb::{read_rdb, RdbEntry, RdbHeader, RdbValue, RdbWriter};

/// An absolute expire time far in the future (2100-01-01), ms since the epoch.
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A value normalised for comparison: sets, hashes and zsets sorted.
#[derive(Clone, Debug, PartialEq)]
enum Norm {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
}

type Contents = BTreeMap<(u32, Vec<u8>), (Norm, Option<u64>)>;

fn normalise(value: RdbValue) -> Norm {
    let v = |b: bytes::Bytes| b.to_vec();
    match value {
        RdbValue::Str(s) => Norm::Str(v(s)),
        RdbValue::List(l) => Norm::List(l.into_iter().map(v).collect()),
        RdbValue::Set(s) => {
            let mut s: Vec<Vec<u8>> = s.into_iter().map(v).collect();
            s.sort();
            Norm::Set(s)
        }
        RdbValue::Hash(h) => {
            let mut h: Vec<(Vec<u8>, Vec<u8>)> = h.into_iter().map(|(f, x)| (v(f), v(x))).collect();
            h.sort();
            Norm::Hash(h)
        }
        RdbValue::ZSet(z) => {
            let mut z: Vec<(Vec<u8>, f64)> = z.into_iter().map(|(m, s)| (v(m), s)).collect();
            z.sort_by(|a, b| a.0.cmp(&b.0));
            Norm::ZSet(z)
        }
    }
}

fn load(bytes: &[u8]) -> Contents {
    let mut out = Contents::new();
    let summary = read_rdb(bytes, |e: RdbEntry| {
        let prev = out.insert((e.db, e.key.to_vec()), (normalise(e.value), e.expire_ms));
        match prev {
            Some(_) => Err(format!("duplicate key {:?}", e.key)),
            None => Ok(()),
        }
    })
    .unwrap_or_else(|e| panic!("read_rdb failed: {e}"));
    assert!(
        summary.checksum_verified,
        "a Redis 7 / tidemark file carries a checksum"
    );
    out
}

/// The expected contents used by every test: every type, small (compact encodings in
/// Redis) and large (plain encodings), integers, long compressible strings, TTLs, two dbs.
fn expected_contents() -> Contents {
    let s = |x: &str| x.as_bytes().to_vec();
    let mut c = Contents::new();
    let mut put = |db: u32, key: &str, v: Norm, ttl: Option<u64>| {
        c.insert((db, s(key)), (v, ttl));
    };
    put(0, "s:plain", Norm::Str(s("hello")), None);
    put(0, "s:int", Norm::Str(s("12345")), None);
    put(0, "s:neg", Norm::Str(s("-42")), None);
    put(0, "s:i64", Norm::Str(s("9999999999")), None);
    put(0, "s:long", Norm::Str(s("abc").repeat(100)), None);
    put(0, "s:ttl", Norm::Str(s("soon gone")), Some(FAR_FUTURE_MS));
    put(0, "s:bin", Norm::Str(vec![0, 255, 13, 10, 7]), None);
    put(0, "s:empty", Norm::Str(Vec::new()), None);
    put(
        0,
        "l:small",
        Norm::List(vec![s("a"), s("b"), s("1"), s("-3"), s(""), s("70000")]),
        Some(FAR_FUTURE_MS),
    );
    let mut big_list: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!("elem-{i}").into_bytes())
        .collect();
    big_list.push(s("x").repeat(100));
    big_list.push(s("y").repeat(5000));
    big_list.push(s("-1234567890123"));
    put(0, "l:big", Norm::List(big_list), None);
    let mut int_set = vec![s("-5"), s("1"), s("100000"), s("70000000000")];
    int_set.sort();
    put(0, "set:int", Norm::Set(int_set), None);
    let mut str_set = vec![s("apple"), s("banana"), s("7")];
    str_set.sort();
    put(0, "set:str", Norm::Set(str_set), Some(FAR_FUTURE_MS));
    let mut big_set: Vec<Vec<u8>> = (0..600)
        .map(|i| format!("member-{i}").into_bytes())
        .collect();
    big_set.sort();
    put(0, "set:big", Norm::Set(big_set), None);
    let mut small_hash = vec![
        (s("name"), s("tidemark")),
        (s("n"), s("17")),
        (s("neg"), s("-9000")),
    ];
    small_hash.sort();
    put(0, "h:small", Norm::Hash(small_hash), None);
    let mut big_hash: Vec<(Vec<u8>, Vec<u8>)> = (0..600)
        .map(|i| {
            (
                format!("field-{i}").into_bytes(),
                format!("{i}").into_bytes(),
            )
        })
        .collect();
    big_hash.sort();
    put(0, "h:big", Norm::Hash(big_hash), Some(FAR_FUTURE_MS));
    let mut small_z = vec![
        (s("one"), 1.0),
        (s("half"), 2.5),
        (s("neg"), -3.0),
        (s("top"), f64::INFINITY),
    ];
    small_z.sort_by(|a, b| a.0.cmp(&b.0));
    put(0, "z:small", Norm::ZSet(small_z), None);
    let mut big_z: Vec<(Vec<u8>, f64)> = (0..200)
        .map(|i| (format!("m-{i}").into_bytes(), f64::from(i) * 1.25 - 7.0))
        .collect();
    big_z.sort_by(|a, b| a.0.cmp(&b.0));
    put(0, "z:big", Norm::ZSet(big_z), None);
    put(1, "db1:key", Norm::Str(s("in db 1")), None);
    c
}

fn write_with_our_writer(contents: &Contents, compression: bool) -> Vec<u8> {
    let header = RdbHeader {
        ctime_s: 1_700_000_000,
        used_mem_bytes: 1 << 20,
        compression,
        ..RdbHeader::default()
    };
    let mut w = RdbWriter::new(header);
    for db in [0u32, 1] {
        let keys: Vec<_> = contents.iter().filter(|((d, _), _)| *d == db).collect();
        let expires = keys.iter().filter(|(_, (_, ttl))| ttl.is_some()).count();
        w.select_db(db, keys.len() as u64, expires as u64);
        for ((_, key), (value, ttl)) in keys {
            match value {
                Norm::Str(v) => w.write_string(key, v, *ttl),
                Norm::List(l) => w.write_list(key, l.iter().map(Vec::as_slice), l.len(), *ttl),
                Norm::Set(m) => w.write_set(key, m.iter().map(Vec::as_slice), m.len(), *ttl),
                Norm::Hash(h) => w.write_hash(
                    key,
                    h.iter().map(|(f, v)| (f.as_slice(), v.as_slice())),
                    h.len(),
                    *ttl,
                ),
                Norm::ZSet(z) => w.write_zset(
                    key,
                    z.iter().map(|(m, s)| (m.as_slice(), *s)),
                    z.len(),
                    *ttl,
                ),
            }
            .unwrap();
        }
    }
    w.finish()
}

fn require_tool(name: &str, package: &str) {
    match Command::new(name).arg("--version").output() {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`{name}` is not installed: install it with `apt-get install -y {package}` (the CI script does)")
        }
        Err(e) => panic!("cannot run `{name}`: {e}"),
    }
}

#[test]
fn redis_check_rdb_accepts_our_files() {
    require_tool("redis-check-rdb", "redis-tools");
    let dir = tempfile::tempdir().unwrap();
    let contents = expected_contents();
    for compression in [true, false] {
        let path = dir.path().join(format!("ours-{compression}.rdb"));
        let bytes = write_with_our_writer(&contents, compression);
        assert_eq!(load(&bytes), contents, "our reader reads our writer");
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new("redis-check-rdb").arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "redis-check-rdb refused {}: {stdout}{stderr}",
            path.display()
        );
        assert!(
            stdout.contains("RDB looks OK"),
            "unexpected redis-check-rdb output: {stdout}{stderr}"
        );
        assert!(stdout.contains("Checksum OK"), "{stdout}");
        assert!(
            stdout.contains(&format!("[info] {} keys read", contents.len())),
            "{stdout}"
        );
        let expires = contents.values().filter(|(_, ttl)| ttl.is_some()).count();
        assert!(
            stdout.contains(&format!("[info] {expires} expires")),
            "{stdout}"
        );
    }
}

/// A `redis-server` child on a free loopback port with `dir`; killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(dir: &Path, dbfilename: &str) -> RedisServer {
        require_tool("redis-server", "redis-server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--dir",
                &dir.display().to_string(),
                "--dbfilename",
                dbfilename,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = RedisServer { child, port };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server exited early with {status}");
            }
            if let Ok(mut con) = server.try_client() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_client(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fill(con: &mut redis::Connection, contents: &Contents) {
    let mut current_db = u32::MAX;
    for ((db, key), (value, ttl)) in contents {
        if *db != current_db {
            redis::cmd("SELECT").arg(*db).exec(con).unwrap();
            current_db = *db;
        }
        let cmd = match value {
            Norm::Str(v) => redis::cmd("SET").arg(key).arg(v).clone(),
            Norm::List(l) => redis::cmd("RPUSH").arg(key).arg(l).clone(),
            Norm::Set(m) => redis::cmd("SADD").arg(key).arg(m).clone(),
            Norm::Hash(h) => {
                let mut c = redis::cmd("HSET");
                c.arg(key);
                for (f, v) in h {
                    c.arg(f).arg(v);
                }
                c
            }
            Norm::ZSet(z) => {
                let mut c = redis::cmd("ZADD");
                c.arg(key);
                for (m, s) in z {
                    let score = if s.is_infinite() {
                        if *s > 0.0 {
                            "+inf".into()
                        } else {
                            "-inf".into()
                        }
                    } else {
                        s.to_string()
                    };
                    c.arg(score).arg(m);
                }
                c
            }
        };
        cmd.exec(con).unwrap();
        if let Some(at) = ttl {
            let set: i64 = redis::cmd("PEXPIREAT")
                .arg(key)
                .arg(*at)
                .query(con)
                .unwrap();
            assert_eq!(set, 1);
        }
    }
}

fn encoding(con: &mut redis::Connection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(con)
        .unwrap()
}

#[test]
fn we_load_a_real_redis_dump() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path(), "dump.rdb");
    let mut con = server.try_client().unwrap();
    // Compress every quicklist node but the ends in memory: saved as raw LZF blobs.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("list-compress-depth")
        .arg(1)
        .exec(&mut con)
        .unwrap();
    let contents = expected_contents();
    fill(&mut con, &contents);
    redis::cmd("SELECT").arg(0).exec(&mut con).unwrap();
    // The dump really uses Redis 7's compact encodings, so the reader's decoders run.
    assert_eq!(encoding(&mut con, "set:int"), "intset");
    assert_eq!(encoding(&mut con, "h:small"), "listpack");
    assert_eq!(encoding(&mut con, "z:small"), "listpack");
    assert_eq!(encoding(&mut con, "l:big"), "quicklist");
    assert_eq!(encoding(&mut con, "h:big"), "hashtable");
    assert_eq!(encoding(&mut con, "z:big"), "skiplist");
    // A function library makes Redis write a FUNCTION2 record, which the reader skips.
    let library = "#!lua name=rdbtest\nredis.register_function('one', function() return 1 end)";
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query(&mut con)
        .unwrap();
    assert_eq!(name, "rdbtest");
    // allkeys-lfu makes Redis write a FREQ opcode before every key, allkeys-lru an IDLE one.
    let mut sizes = Vec::new();
    for policy in ["allkeys-lfu", "allkeys-lru", "noeviction"] {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .exec(&mut con)
            .unwrap();
        let reply: String = redis::cmd("SAVE").query(&mut con).unwrap();
        assert_eq!(reply, "OK");
        let bytes = std::fs::read(dir.path().join("dump.rdb")).unwrap();
        check_real_dump(&bytes, &contents);
        sizes.push(bytes.len());
    }
    // Every key carried a FREQ (2 bytes) or IDLE (≥ 2 bytes) record; the AUX fields
    // (used-mem) may differ by a few bytes between saves.
    let min_extra = 2 * contents.len() - 8;
    assert!(
        sizes[0] >= sizes[2] + min_extra,
        "no FREQ records? sizes {sizes:?}"
    );
    assert!(
        sizes[1] >= sizes[2] + min_extra,
        "no IDLE records? sizes {sizes:?}"
    );
}

fn check_real_dump(bytes: &[u8], contents: &Contents) {
    assert_eq!(&bytes[..9], b"REDIS0010");
    let summary = read_rdb(bytes, |_| Ok(())).unwrap();
    assert_eq!(summary.functions_skipped, 1);
    assert!(summary
        .aux
        .iter()
        .any(|(k, v)| &k[..] == b"redis-ver" && v.starts_with(b"7.")));
    let abc = b"abc".repeat(100);
    assert!(
        !bytes.windows(abc.len()).any(|w| w == abc.as_slice()),
        "the long string should be LZF-compressed in the dump"
    );
    let loaded = load(bytes);
    assert_eq!(loaded.len(), contents.len());
    for (key, want) in contents {
        assert_eq!(
            loaded.get(key),
            Some(want),
            "key {:?}",
            String::from_utf8_lossy(&key.1)
        );
    }
}

#[test]
fn redis_server_loads_our_file_with_the_same_contents() {
    let dir = tempfile::tempdir().unwrap();
    let contents = expected_contents();
    std::fs::write(
        dir.path().join("ours.rdb"),
        write_with_our_writer(&contents, true),
    )
    .unwrap();
    let server = RedisServer::start(dir.path(), "ours.rdb");
    let mut con = server.try_client().unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(
        n as usize,
        contents.len() - 1,
        "db 0 holds every key but the db-1 one"
    );
    // Round trip through Redis: SAVE again and compare what it wrote with what we wrote.
    let reply: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(reply, "OK");
    let ttl: i64 = redis::cmd("PEXPIRETIME")
        .arg("h:big")
        .query(&mut con)
        .unwrap();
    assert_eq!(ttl as u64, FAR_FUTURE_MS);
    let score: f64 = redis::cmd("ZSCORE")
        .arg("z:small")
        .arg("half")
        .query(&mut con)
        .unwrap();
    assert_eq!(score, 2.5);
    let saved = std::fs::read(dir.path().join("ours.rdb")).unwrap();
    drop(server);
    assert_eq!(load(&saved), contents);
}
