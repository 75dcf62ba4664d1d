//! Unit tests of the watch registry and the transaction record (no server, no IO).

use super::*;
use crate::keyspace::Value;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cmd_of(parts: &[&str]) -> Vec<Bytes> {
    parts.iter().map(|p| b(p)).collect()
}

fn db_with(keys: &[(&str, Option<u64>)]) -> Db {
    let mut db = Db::new(7);
    for (key, ttl) in keys {
        db.insert(b(key), Value::Str(b("v")), *ttl);
    }
    db
}

#[test]
fn a_propagated_write_dirties_its_watchers_only() {
    let registry = WatchRegistry::new();
    let db = db_with(&[("k", None), ("other", None)]);
    let mine = TxWatch::new();
    let theirs = TxWatch::new();
    registry.watch(b("k"), &mine, &db, 0);
    registry.watch(b("other"), &theirs, &db, 0);
    registry.after_command(&[cmd_of(&["SET", "k", "1"])], &[], &db);
    assert!(mine.is_dirty());
    assert!(!theirs.is_dirty());
    assert_eq!(registry.watchers(b"k"), 0, "a touched watcher is forgotten");
    // MSET's key step, RENAME's second key.
    registry.after_command(&[cmd_of(&["MSET", "a", "1", "other", "2"])], &[], &db);
    assert!(theirs.is_dirty());
    let renamed = TxWatch::new();
    registry.watch(b("dst"), &renamed, &db, 0);
    registry.after_command(&[cmd_of(&["RENAME", "src", "dst"])], &[], &db);
    assert!(renamed.is_dirty());
}

#[test]
fn flush_dirties_only_watched_keys_that_existed() {
    let registry = WatchRegistry::new();
    let mut db = db_with(&[("present", None)]);
    let on_present = TxWatch::new();
    let on_missing = TxWatch::new();
    registry.watch(b("present"), &on_present, &db, 0);
    registry.watch(b("missing"), &on_missing, &db, 0);
    let spec = cmd::lookup(b"flushall").unwrap();
    let flushed = registry.before_command(spec, &db);
    assert_eq!(flushed, vec![b("present")]);
    db.clear();
    registry.after_command(&[cmd_of(&["FLUSHALL"])], &flushed, &db);
    assert!(on_present.is_dirty());
    assert!(!on_missing.is_dirty());
}

#[test]
fn expiry_rules_follow_redis_7() {
    let registry = WatchRegistry::new();
    // Expired (TTL 5 ≤ now 10) but present when watched: its reclaim is no change.
    let db = db_with(&[("old", Some(5)), ("fresh", Some(100))]);
    let on_old = TxWatch::new();
    registry.watch(b("old"), &on_old, &db, 10);
    assert!(!registry.expired_since_watch(&on_old, &[b("old")], &db, 10));
    let mut reclaimed = db.clone();
    reclaimed.remove_entry(b"old");
    registry.after_command(&[cmd_of(&["DEL", "old"])], &[], &reclaimed);
    assert!(!on_old.is_dirty());
    // ... but being written again afterwards is.
    let rewritten = db_with(&[("old", None)]);
    registry.after_command(&[cmd_of(&["SET", "old", "x"])], &[], &rewritten);
    assert!(on_old.is_dirty());
    // Fresh when watched, expired by EXEC time: EXEC must abort.
    let on_fresh = TxWatch::new();
    registry.watch(b("fresh"), &on_fresh, &db, 10);
    assert!(!registry.expired_since_watch(&on_fresh, &[b("fresh")], &db, 99));
    assert!(registry.expired_since_watch(&on_fresh, &[b("fresh")], &db, 100));
}

#[test]
fn dropped_flags_are_pruned() {
    let registry = WatchRegistry::new();
    let db = Db::new(1);
    let flag = TxWatch::new();
    registry.watch(b("k"), &flag, &db, 0);
    registry.watch(b("k"), &flag, &db, 0);
    assert_eq!(registry.watchers(b"k"), 1, "watching twice is one watch");
    drop(flag);
    assert_eq!(registry.watchers(b"k"), 0);
    assert!(!registry.is_empty());
    registry.prune();
    assert!(registry.is_empty());
    // The amortized sweep runs by itself.
    for i in 0..PRUNE_INTERVAL_WATCHES {
        let gone = TxWatch::new();
        registry.watch(Bytes::from(format!("key{i}")), &gone, &db, 0);
    }
    // Only the last registration's flag was alive during the sweep.
    assert_eq!(registry.keys_len(), 1);
}

#[test]
fn transaction_record_round_trips_and_rejects_garbage() {
    let records = vec![
        cmd_of(&["SET", "k", "v\r\n*1"]),
        cmd_of(&["INCR", "n"]),
        vec![b("DEL"), Bytes::new()],
    ];
    let record = transaction_record(&records);
    assert_eq!(record[0], b("MULTI"));
    assert_eq!(record.len(), 4);
    assert_eq!(transaction_records(&record).unwrap().unwrap(), records);
    assert!(transaction_records(&cmd_of(&["SET", "k", "v"])).is_none());
    assert!(transaction_records(&cmd_of(&["MULTI"])).is_none());
    for bad in [
        "PING",
        "*2\r\n$3\r\nGET\r\n",
        "*1\r\n$3\r\nGET\r\n*1\r\n$1\r\nx\r\n",
        "*1\r\n$x\r\n",
    ] {
        let args = vec![b("MULTI"), b(bad)];
        assert!(transaction_records(&args).unwrap().is_err(), "{bad:?}");
    }
}

/// A transaction is one AOF record: cutting the log anywhere inside it drops all of it,
/// never a part (the recovered commands are a prefix of whole transactions).
#[test]
fn a_torn_transaction_record_drops_the_whole_transaction() {
    use crate::io::mem::MemIo;
    use crate::persist::{Aof, AofOptions};
    use crate::server::config::{Config, FsyncPolicy};

    let config = Config {
        appendfsync: FsyncPolicy::Always,
        ..Config::default()
    };
    let options = AofOptions::from_config(&config, 0);
    let path = options.path();
    let single = cmd_of(&["SET", "a", "1"]);
    let transaction = vec![cmd_of(&["SET", "b", "1"]), cmd_of(&["INCR", "n"])];
    let io = MemIo::new();
    let world = io.clone();
    let (opts, record) = (options.clone(), transaction_record(&transaction));
    let before_len = io
        .run(async move {
            let (aof, _) = Aof::open(world.clone(), opts, &mut |_, _| Ok(()))
                .await
                .expect("open");
            let lsn = aof.append(&single).expect("append");
            aof.wait_ack(lsn).await.expect("ack");
            let len = world.file_bytes(&path).expect("file").len();
            let lsn = aof.append(&record).expect("append");
            aof.wait_ack(lsn).await.expect("ack");
            len
        })
        .expect("write stalled");
    let full = io.file_bytes(&options.path()).expect("file");
    for cut in (before_len..=full.len()).step_by(7).chain([full.len()]) {
        let io = MemIo::new();
        io.put_file(&options.path(), full[..cut].to_vec());
        let world = io.clone();
        let opts = options.clone();
        let replayed = io
            .run(async move {
                let mut seen: Vec<Vec<Bytes>> = Vec::new();
                Aof::open(world, opts, &mut |_, args| {
                    match transaction_records(&args) {
                        Some(inner) => seen.extend(inner?),
                        None => seen.push(args),
                    }
                    Ok(())
                })
                .await
                .expect("recovery accepts a torn tail");
                seen
            })
            .expect("recovery stalled");
        let mut want = vec![cmd_of(&["SET", "a", "1"])];
        if cut == full.len() {
            want.extend(transaction.clone());
        }
        assert_eq!(replayed, want, "cut at {cut} of {}", full.len());
    }
}
