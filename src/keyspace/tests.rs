//! Unit tests for the keyspace: TTL index bookkeeping, memory estimate, active expiry.

use bytes::Bytes;

use super::*;

fn ctx_parts() -> (u64, Vec<Vec<Bytes>>) {
    (0x9e37_79b9, Vec::new())
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i}"))
}

#[test]
fn insert_remove_keeps_ttl_index_and_memory_in_sync() {
    let mut db = Db::new(1);
    db.insert(key(1), Value::Str(Bytes::from_static(b"abc")), Some(10));
    db.insert(key(2), Value::Str(Bytes::from_static(b"abcdef")), None);
    assert_eq!(db.len(), 2);
    assert_eq!(db.expires_len(), 1);
    let expected = 2 * ENTRY_OVERHEAD_BYTES + 5 + 3 + 5 + 6 + EXPIRE_OVERHEAD_BYTES;
    assert_eq!(db.used_memory_bytes(), expected);
    db.insert(key(1), Value::Str(Bytes::from_static(b"x")), None);
    assert_eq!(db.expires_len(), 0);
    assert!(db.set_expire(&key(2), Some(5)));
    assert!(!db.set_expire(&key(9), Some(5)));
    assert_eq!(db.expires_len(), 1);
    db.set_value(key(2), Value::Str(Bytes::from_static(b"y")), true);
    assert_eq!(
        db.peek(&key(2)).unwrap().expire_at_ms,
        Some(5),
        "keep_ttl keeps it"
    );
    db.remove_entry(&key(2));
    db.remove_entry(&key(1));
    assert_eq!(
        (db.len(), db.expires_len(), db.used_memory_bytes()),
        (0, 0, 0)
    );
}

#[test]
fn active_expire_deletes_expired_keys_and_logs_them() {
    let mut db = Db::new(3);
    for i in 0..100 {
        let ttl = if i < 60 { Some(1_000) } else { Some(10_000) };
        db.insert(key(i), Value::Str(Bytes::from_static(b"v")), ttl);
    }
    for i in 100..150 {
        db.insert(key(i), Value::Str(Bytes::from_static(b"v")), None);
    }
    let (mut state, mut log) = ctx_parts();
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ctx = ExecCtx {
        now_ms: 5_000,
        random: &mut random,
        propagate: &mut log,
        replaying: false,
    };
    let mut total = 0;
    for _ in 0..50 {
        total += db.active_expire_cycle(&mut ctx, 200);
    }
    assert!(
        total >= 50,
        "most of the 60 expired keys are reclaimed, got {total}"
    );
    assert_eq!(log.len(), total);
    assert!(log.iter().all(|c| c[0] == "DEL" && c.len() == 2));
    assert_eq!(db.len(), 150 - total);
    for (_, e) in db.iter() {
        assert!(e.expire_at_ms.is_none_or(|t| t > 5_000) || total < 60);
    }
}

#[test]
fn active_expire_respects_budget_and_replaying() {
    let mut db = Db::new(3);
    for i in 0..100 {
        db.insert(key(i), Value::Str(Bytes::from_static(b"v")), Some(1));
    }
    let mut n = 0u64;
    let mut random = move || {
        n += 1;
        n * 7919
    };
    let mut log = Vec::new();
    let mut ctx = ExecCtx {
        now_ms: 5_000,
        random: &mut random,
        propagate: &mut log,
        replaying: true,
    };
    assert_eq!(
        db.active_expire_cycle(&mut ctx, 1000),
        0,
        "nothing expires while replaying"
    );
    ctx.replaying = false;
    let deleted = db.active_expire_cycle(&mut ctx, 30);
    assert!(deleted <= 30 && deleted > 0);
    assert_eq!(db.len(), 100 - deleted);
}

#[test]
fn same_seed_same_order() {
    let build = |seed| {
        let mut db = Db::new(seed);
        for i in 0..50 {
            db.insert(key(i), Value::Str(Bytes::new()), None);
        }
        for i in (0..50).step_by(3) {
            db.remove_entry(&key(i));
        }
        db.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    };
    assert_eq!(build(5), build(5));
}
