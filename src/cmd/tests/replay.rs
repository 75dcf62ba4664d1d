//! Property test: re-executing the propagated AOF log (replaying=true, at a much later
//! time) on a fresh Db reproduces exactly the state the original commands produced.

use bytes::Bytes;
use proptest::prelude::*;

use super::{keyspace_state, Harness};
use crate::cmd::ExecCtx;
use crate::keyspace::Db;

const KEYS: [&str; 4] = ["a", "b", "c", "{x}d"];

fn op() -> impl Strategy<Value = (u8, usize, usize, i64, u64)> {
    (0u8..40, 0..KEYS.len(), 0..KEYS.len(), -3i64..40, 0u64..3000)
}

/// Builds one command from the random draw (covers every write and a few reads).
fn command(kind: u8, k1: usize, k2: usize, n: i64, now_ms: u64) -> String {
    let (a, b) = (KEYS[k1], KEYS[k2]);
    let abs = now_ms as i64 + n * 100 - 500;
    match kind {
        0 => format!("SET {a} v{n}"),
        1 => format!("SET {a} v{n} PX {}", n.max(1) * 100),
        2 => format!("SET {a} v{n} EX {} GET", n.max(1)),
        3 => format!("SET {a} v{n} NX PXAT {}", abs.max(1)),
        4 => format!("SET {a} v{n} XX KEEPTTL"),
        5 => format!("SETNX {a} {n}"),
        6 => format!("SETEX {a} {} s", n.max(1)),
        7 => format!("PSETEX {a} {} p", n.max(1) * 50),
        8 => format!("GETSET {a} {n}"),
        9 => format!("GETDEL {a}"),
        10 => format!("GETEX {a} PX {}", n.max(1) * 100),
        11 => format!("GETEX {a} PXAT {}", abs.max(1)),
        12 => format!("GETEX {a} PERSIST"),
        13 => format!("MSET {a} {n} {b} m"),
        14 => format!("MSETNX {a} {n} {b} m"),
        15 => format!("APPEND {a} x{n}"),
        16 => format!("SETRANGE {a} {} yy", n.max(0) % 5),
        17 => format!("INCR {a}"),
        18 => format!("DECRBY {a} {n}"),
        19 => format!("INCRBYFLOAT {a} {n}.25"),
        20 => format!("DEL {a} {b}"),
        21 => format!("UNLINK {a}"),
        22 => format!("RENAME {a} {b}"),
        23 => format!("RENAMENX {a} {b}"),
        24 => format!("EXPIRE {a} {n}"),
        25 => format!("PEXPIRE {a} {} GT", n * 100),
        26 => format!("EXPIREAT {a} {}", abs / 1000),
        27 => format!("PEXPIREAT {a} {abs} LT"),
        28 => format!("PERSIST {a}"),
        29 => format!("GET {a}"),
        30 => format!("TTL {a}"),
        31 => "RANDOMKEY".to_string(),
        32 => format!("EXISTS {a} {b}"),
        33 if n == 7 => "FLUSHDB".to_string(),
        _ => format!("INCRBY {a} {n}"),
    }
}

fn replay(log: &[Vec<Bytes>], now_ms: u64) -> Db {
    crate::cmd::tests::replay_log(log, now_ms).0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn replaying_the_log_reproduces_the_state(ops in proptest::collection::vec((op(), any::<bool>()), 1..80)) {
        let mut h = Harness::new();
        for ((kind, k1, k2, n, dt), active) in ops {
            h.now_ms += dt;
            h.run(&command(kind, k1, k2, n, h.now_ms));
            if active {
                let mut r = 3u64;
                let mut random = || { r = r.wrapping_mul(6364136223846793005).wrapping_add(1); r >> 11 };
                let mut ctx = ExecCtx { now_ms: h.now_ms, random: &mut random, propagate: &mut h.log, replaying: false };
                h.db.active_expire_cycle(&mut ctx, 40);
            }
        }
        let replayed = replay(&h.log, h.now_ms + 10_000_000);
        prop_assert_eq!(keyspace_state(&h.db), keyspace_state(&replayed));
        prop_assert_eq!(h.db.expires_len(), replayed.expires_len());
        prop_assert_eq!(h.db.used_memory_bytes(), replayed.used_memory_bytes());
    }
}
