//! Sorted-set microbenchmarks (divan) on a 1M-member set: ZADD of new members and score
//! updates through `cmd::execute`, and ZRANGE by rank / by score (100 elements from the
//! middle) plus ZRANK. Run: `cargo bench -p tidemark --bench zset`.

use std::sync::OnceLock;

use bytes::Bytes;
use divan::{black_box, Bencher};
use tidemark::cmd::{execute, ExecCtx};
use tidemark::keyspace::zset::ZSetValue;
use tidemark::keyspace::{Db, Value};
use tidemark::resp::Frame;

fn main() {
    divan::main();
}

/// Members in the benchmarked set.
const MEMBERS: usize = 1_000_000;

fn member(i: usize) -> Bytes {
    Bytes::from(format!("member:{i:09}"))
}

/// Score of member `i`: a fixed permutation so inserts land all over the list.
fn score(i: usize) -> f64 {
    ((i * 7_919) % MEMBERS) as f64
}

fn million() -> &'static ZSetValue {
    static SET: OnceLock<ZSetValue> = OnceLock::new();
    SET.get_or_init(|| {
        let mut z = ZSetValue::new();
        for i in 0..MEMBERS {
            z.insert(member(i), score(i));
        }
        z
    })
}

fn db_with_million() -> Db {
    let mut db = Db::new(1);
    db.insert(
        Bytes::from_static(b"z"),
        Value::ZSet(million().clone()),
        None,
    );
    db
}

fn run(db: &mut Db, args: &[Bytes]) -> Frame {
    let mut random = || 4u64;
    let mut log = Vec::new();
    let mut ctx = ExecCtx {
        now_ms: 0,
        random: &mut random,
        propagate: &mut log,
        replaying: false,
    };
    execute(db, &mut ctx, args)
}

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// ZADD of a new member into the 1M set (each iteration adds a fresh one).
#[divan::bench(sample_count = 20, sample_size = 1000)]
fn zadd_new_member_into_1m(bencher: Bencher) {
    let mut db = db_with_million();
    let mut next = MEMBERS;
    bencher.bench_local(|| {
        next += 1;
        let cmd = vec![
            Bytes::from_static(b"ZADD"),
            Bytes::from_static(b"z"),
            Bytes::from(format!("{}.5", next % MEMBERS)),
            member(next),
        ];
        black_box(run(&mut db, &cmd))
    });
}

/// ZADD that moves an existing member to a new score in the 1M set.
#[divan::bench(sample_count = 20, sample_size = 1000)]
fn zadd_update_score_in_1m(bencher: Bencher) {
    let mut db = db_with_million();
    let mut i = 0usize;
    bencher.bench_local(|| {
        i = (i + 104_729) % MEMBERS;
        let cmd = vec![
            Bytes::from_static(b"ZADD"),
            Bytes::from_static(b"z"),
            Bytes::from(format!("{}.25", (i * 31) % MEMBERS)),
            member(i),
        ];
        black_box(run(&mut db, &cmd))
    });
}

/// ZRANGE z 500000 500099 WITHSCORES on the 1M set.
#[divan::bench(sample_count = 20, sample_size = 100)]
fn zrange_rank_100_of_1m(bencher: Bencher) {
    let mut db = db_with_million();
    let cmd = args(&["ZRANGE", "z", "500000", "500099", "WITHSCORES"]);
    bencher.bench_local(|| black_box(run(&mut db, &cmd)));
}

/// ZRANGE z 250000 +inf BYSCORE LIMIT 0 100 on the 1M set.
#[divan::bench(sample_count = 20, sample_size = 100)]
fn zrange_byscore_100_of_1m(bencher: Bencher) {
    let mut db = db_with_million();
    let cmd = args(&[
        "ZRANGE", "z", "250000", "+inf", "BYSCORE", "LIMIT", "0", "100",
    ]);
    bencher.bench_local(|| black_box(run(&mut db, &cmd)));
}

/// ZRANK of a member in the 1M set.
#[divan::bench(sample_count = 20, sample_size = 1000)]
fn zrank_in_1m(bencher: Bencher) {
    let mut db = db_with_million();
    let cmd = args(&["ZRANK", "z", "member:000123456"]);
    bencher.bench_local(|| black_box(run(&mut db, &cmd)));
}

/// Direct `ZSetValue::insert` moving an existing member (no command parsing).
#[divan::bench(sample_count = 20, sample_size = 1000)]
fn zset_value_update_direct(bencher: Bencher) {
    let mut z = million().clone();
    let mut i = 0usize;
    bencher.bench_local(|| {
        i = (i + 104_729) % MEMBERS;
        black_box(z.insert(member(i), ((i * 31) % MEMBERS) as f64 + 0.25))
    });
}
