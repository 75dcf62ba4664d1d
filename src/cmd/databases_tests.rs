//! Tests of MOVE, SWAPDB, FLUSHALL, COPY … DB and per-database execution, with replies
//! checked against redis-server 7.0, and a replay proptest: the logged records, split by
//! SELECT records, rebuild every database.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::cmd::tests::keyspace_state;

const DATABASES: usize = 4;

struct Multi {
    dbs: Vec<Db>,
    db: usize,
    now_ms: u64,
    /// (database, record) pairs, split like the shard does.
    log: Vec<(usize, Vec<Bytes>)>,
}

impl Multi {
    fn new() -> Multi {
        Multi {
            dbs: (0..DATABASES as u64).map(Db::new).collect(),
            db: 0,
            now_ms: 1_700_000_000_000,
            log: Vec::new(),
        }
    }

    fn run(&mut self, line: &str) -> Frame {
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        if let Some(select) = crate::persist::parse_select(&args) {
            self.db = select.expect("test SELECTs are valid");
            return Frame::ok();
        }
        let mut propagate = Vec::new();
        let mut random = || 7u64;
        let mut ctx = ExecCtx {
            now_ms: self.now_ms,
            random: &mut random,
            propagate: &mut propagate,
            replaying: false,
        };
        let reply = execute_in(&mut self.dbs, self.db, &mut ctx, &args);
        let mut current = self.db;
        for record in propagate {
            match crate::persist::parse_select(&record) {
                Some(Ok(next)) => current = next,
                _ => self.log.push((current, record)),
            }
        }
        reply
    }

    fn len(&self, db: usize) -> usize {
        self.dbs[db].len()
    }
}

fn err(text: &str) -> Frame {
    Frame::error(text)
}

#[test]
fn move_follows_redis() {
    let mut m = Multi::new();
    assert_eq!(
        m.run("MOVE k 0"),
        err(ERR_SAME_OBJECT),
        "checked before the key"
    );
    assert_eq!(m.run("MOVE k 1"), Frame::Integer(0), "missing key");
    m.run("SET k v");
    assert_eq!(m.run("MOVE k abc"), err(ERR_NOT_INTEGER));
    assert_eq!(m.run("MOVE k 1.5"), err(ERR_NOT_INTEGER));
    assert_eq!(m.run("MOVE k 99999999999"), err(ERR_NOT_INT32));
    assert_eq!(m.run("MOVE k -0"), err(ERR_NOT_INTEGER));
    assert_eq!(m.run("MOVE k -1"), err(ERR_DB_OUT_OF_RANGE));
    assert_eq!(m.run("MOVE k 4"), err(ERR_DB_OUT_OF_RANGE));
    m.run("PEXPIRE k 100000");
    assert_eq!(m.run("MOVE k 2"), Frame::Integer(1));
    assert_eq!((m.len(0), m.len(2)), (0, 1));
    m.run("SELECT 2");
    assert_eq!(
        m.run("PTTL k"),
        Frame::Integer(100_000),
        "the TTL moves too"
    );
    m.run("SELECT 0");
    m.run("SET k other");
    assert_eq!(m.run("MOVE k 2"), Frame::Integer(0), "exists in the target");
    assert_eq!(m.run("GET k"), Frame::bulk("other"));
}

#[test]
fn move_over_an_expired_target_logs_its_delete_in_the_target() {
    let mut m = Multi::new();
    m.run("SELECT 1");
    m.run("SET k old");
    m.run("PEXPIRE k 10");
    m.run("SELECT 0");
    m.run("SET k new");
    m.log.clear();
    m.now_ms += 20;
    assert_eq!(m.run("MOVE k 1"), Frame::Integer(1));
    let log: Vec<(usize, String)> = m
        .log
        .iter()
        .map(|(db, r)| (*db, String::from_utf8_lossy(&r.join(&b' ')).into_owned()))
        .collect();
    assert_eq!(
        log,
        vec![(1, "DEL k".to_string()), (0, "MOVE k 1".to_string())]
    );
}

#[test]
fn swapdb_follows_redis() {
    let mut m = Multi::new();
    assert_eq!(m.run("SWAPDB a 1"), err("ERR invalid first DB index"));
    assert_eq!(m.run("SWAPDB 1 a"), err("ERR invalid second DB index"));
    assert_eq!(m.run("SWAPDB a b"), err("ERR invalid first DB index"));
    assert_eq!(m.run("SWAPDB 0 4"), err(ERR_DB_OUT_OF_RANGE));
    assert_eq!(m.run("SWAPDB -1 0"), err(ERR_DB_OUT_OF_RANGE));
    assert_eq!(m.run("SWAPDB 4 x"), err("ERR invalid second DB index"));
    assert_eq!(
        m.run("SWAPDB 99999999999 1"),
        err("ERR invalid first DB index")
    );
    m.run("SET a 1");
    m.run("SET b 2");
    assert_eq!(m.run("SWAPDB 0 3"), Frame::ok());
    assert_eq!((m.len(0), m.len(3)), (0, 2));
    assert_eq!(m.run("SWAPDB 2 2"), Frame::ok());
    assert_eq!(
        m.log.last().map(|(_, r)| r[0].clone()),
        Some(Bytes::from("SWAPDB"))
    );
    assert_eq!(swapped(&m.log.last().unwrap().1), Some((0, 3)));
}

#[test]
fn flushdb_is_one_database_and_flushall_every_one() {
    let mut m = Multi::new();
    for db in 0..DATABASES {
        m.run(&format!("SELECT {db}"));
        m.run("SET k v");
    }
    m.run("SELECT 1");
    assert_eq!(m.run("FLUSHDB"), Frame::ok());
    assert_eq!((m.len(0), m.len(1), m.len(2)), (1, 0, 1));
    assert_eq!(m.run("DBSIZE"), Frame::Integer(0));
    assert_eq!(m.run("FLUSHALL x"), err(ERR_SYNTAX));
    assert_eq!(m.run("FLUSHALL ASYNC"), Frame::ok());
    assert!(m.dbs.iter().all(Db::is_empty));
}

#[test]
fn copy_to_another_database() {
    let mut m = Multi::new();
    m.run("SET k v");
    assert_eq!(m.run("COPY k k DB 0"), err(ERR_SAME_OBJECT));
    assert_eq!(m.run("COPY k k DB 9"), err(ERR_DB_OUT_OF_RANGE));
    assert_eq!(m.run("COPY k k DB x"), err(ERR_NOT_INTEGER));
    assert_eq!(m.run("COPY k k DB 1"), Frame::Integer(1));
    assert_eq!(m.run("COPY k k DB 1"), Frame::Integer(0));
    assert_eq!(m.run("COPY k k DB 1 REPLACE"), Frame::Integer(1));
    assert_eq!(m.run("COPY k k DB 99 DB 1"), err(ERR_DB_OUT_OF_RANGE));
    assert_eq!(m.run("COPY k k DB 1 foo"), err(ERR_SYNTAX));
    assert_eq!(m.run("COPY k k DB"), err(ERR_SYNTAX));
    assert_eq!(m.run("COPY k k DB 0 DB 1"), Frame::Integer(0));
    assert_eq!(m.run("COPY k k2 DB 0"), Frame::Integer(1));
    assert_eq!((m.len(0), m.len(1)), (2, 1));
}

fn op() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["a", "b", "c"]);
    let db = 0..DATABASES;
    prop_oneof![
        (key.clone(), 0..100u32).prop_map(|(k, v)| format!("SET {k} {v}")),
        (key.clone(), 1..50u32).prop_map(|(k, ms)| format!("PEXPIRE {k} {ms}")),
        key.clone().prop_map(|k| format!("DEL {k}")),
        (key.clone(), db.clone()).prop_map(|(k, d)| format!("MOVE {k} {d}")),
        (key.clone(), db.clone()).prop_map(|(k, d)| format!("COPY {k} {k} DB {d}")),
        (db.clone(), db.clone()).prop_map(|(a, b)| format!("SWAPDB {a} {b}")),
        db.clone().prop_map(|d| format!("SELECT {d}")),
        Just("FLUSHDB".to_string()),
        (0..20u32).prop_map(|n| if n == 0 {
            "FLUSHALL".to_string()
        } else {
            "DBSIZE".to_string()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn replaying_the_split_log_rebuilds_every_database(
        ops in proptest::collection::vec((op(), 0..30u64), 1..60)
    ) {
        let mut m = Multi::new();
        for (line, dt) in ops {
            m.now_ms += dt;
            m.run(&line);
        }
        let mut replayed: Vec<Db> = (0..DATABASES as u64).map(|s| Db::new(s + 50)).collect();
        for (db, record) in &m.log {
            let mut sink = Vec::new();
            let mut random = || 3u64;
            let mut ctx = ExecCtx {
                now_ms: m.now_ms + 1_000_000,
                random: &mut random,
                propagate: &mut sink,
                replaying: true,
            };
            let reply = execute_in(&mut replayed, *db, &mut ctx, record);
            prop_assert!(!reply.is_error(), "replayed {:?} failed: {:?}", record, reply);
        }
        for (db, (ours, theirs)) in m.dbs.iter().zip(&replayed).enumerate() {
            prop_assert_eq!(keyspace_state(ours), keyspace_state(theirs), "database {}", db);
        }
    }
}
