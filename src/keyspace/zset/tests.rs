//! Tests for the sorted-set structure: a proptest against a naive sorted `Vec` model for
//! every rank/range operation, and score printing/parsing checked against redis-server
//! 7.0.15 output.

use bytes::Bytes;
use proptest::prelude::*;

use super::score::{format_score, parse_range_value, parse_score};
use super::{LexBound, ScoreBound, ZSetValue};

/// The model: (score, member) pairs kept sorted.
fn model_sorted(model: &[(f64, Bytes)]) -> Vec<(f64, Bytes)> {
    let mut v = model.to_vec();
    v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
    v
}

fn member(i: u8) -> Bytes {
    Bytes::from(format!("m{}", i % 24))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn matches_sorted_vec_model(ops in proptest::collection::vec((0u8..4, any::<u8>(), -6i32..6, -8i32..8, -8i32..8), 1..200)) {
        let mut z = ZSetValue::new();
        let mut model: Vec<(f64, Bytes)> = Vec::new();
        for (kind, m, s, a, b) in ops {
            let m = member(m);
            let score = s as f64 / 2.0;
            match kind {
                0 | 1 => {
                    let new = z.insert(m.clone(), score);
                    let pos = model.iter().position(|(_, x)| *x == m);
                    prop_assert_eq!(new, pos.is_none());
                    match pos {
                        Some(p) => model[p].0 = score,
                        None => model.push((score, m)),
                    }
                }
                2 => {
                    let pos = model.iter().position(|(_, x)| *x == m);
                    prop_assert_eq!(z.remove(&m), pos.map(|p| model[p].0));
                    if let Some(p) = pos { model.remove(p); }
                }
                _ => {
                    let (start, end) = ((a.unsigned_abs() as usize) % 30, (b.unsigned_abs() as usize) % 30);
                    let sorted = model_sorted(&model);
                    let removed = z.remove_rank_range(start, end);
                    let expect: Vec<(Bytes, f64)> = sorted.iter().skip(start).take(end.saturating_sub(start)).map(|(s, m)| (m.clone(), *s)).collect();
                    prop_assert_eq!(&removed, &expect);
                    model.retain(|(_, m)| !expect.iter().any(|(x, _)| x == m));
                }
            }
            let sorted = model_sorted(&model);
            prop_assert_eq!(z.len(), sorted.len());
            let ours: Vec<(Bytes, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
            let theirs: Vec<(Bytes, f64)> = sorted.iter().map(|(s, m)| (m.clone(), *s)).collect();
            prop_assert_eq!(&ours, &theirs);
            let rev: Vec<(Bytes, f64)> = z.range(0, z.len(), true).map(|(m, s)| (m.clone(), s)).collect();
            prop_assert_eq!(rev, theirs.iter().rev().cloned().collect::<Vec<_>>());
            for (i, (s, m)) in sorted.iter().enumerate() {
                prop_assert_eq!(z.rank(m), Some(i));
                prop_assert_eq!(z.get_by_rank(i), Some((m, *s)));
            }
            prop_assert_eq!(z.get_by_rank(sorted.len()), None);
            // Score range with both ends drawn from a, b.
            let min = ScoreBound { value: a as f64 / 2.0, exclusive: a % 2 == 0 };
            let max = ScoreBound { value: b as f64 / 2.0, exclusive: b % 3 == 0 };
            let (lo, hi) = z.score_rank_range(min, max);
            let inside: Vec<usize> = (0..sorted.len()).filter(|&i| {
                let s = sorted[i].0;
                (if min.exclusive { s > min.value } else { s >= min.value })
                    && (if max.exclusive { s < max.value } else { s <= max.value })
            }).collect();
            prop_assert_eq!(hi - lo, inside.len());
            if let Some(&first) = inside.first() { prop_assert_eq!(lo, first); }
            // Partial range iteration.
            let (start, end) = ((a.unsigned_abs() as usize) % 12, (b.unsigned_abs() as usize) % 12);
            let part: Vec<Bytes> = z.range(start, end, false).map(|(m, _)| m.clone()).collect();
            let expect: Vec<Bytes> = sorted.iter().skip(start).take(end.saturating_sub(start)).map(|(_, m)| m.clone()).collect();
            prop_assert_eq!(part, expect);
        }
    }

    #[test]
    fn lex_ranges_match_model(members in proptest::collection::btree_set(0u8..40, 0..30), a in 0u8..42, b in 0u8..42, kinds in 0u8..16) {
        let mut z = ZSetValue::new();
        for m in &members { z.insert(Bytes::from(vec![b'a' + m / 4, b'0' + m % 4]), 0.0); }
        let key = |x: u8| Bytes::from(vec![b'a' + x / 4, b'0' + x % 4]);
        let bound = |x: u8, k: u8| match k % 4 { 0 => LexBound::NegInf, 1 => LexBound::PosInf, 2 => LexBound::Inclusive(key(x)), _ => LexBound::Exclusive(key(x)) };
        let (min, max) = (bound(a, kinds), bound(b, kinds / 4));
        let all: Vec<Bytes> = z.iter().map(|(m, _)| m.clone()).collect();
        let ok_min = |m: &Bytes| match &min { LexBound::NegInf => true, LexBound::PosInf => false, LexBound::Inclusive(x) => m >= x, LexBound::Exclusive(x) => m > x };
        let ok_max = |m: &Bytes| match &max { LexBound::NegInf => false, LexBound::PosInf => true, LexBound::Inclusive(x) => m <= x, LexBound::Exclusive(x) => m < x };
        let expect: Vec<Bytes> = all.iter().filter(|m| ok_min(m) && ok_max(m)).cloned().collect();
        let (lo, hi) = z.lex_rank_range(&min, &max);
        let got: Vec<Bytes> = z.range(lo, hi, false).map(|(m, _)| m.clone()).collect();
        prop_assert_eq!(got, expect);
    }

    #[test]
    fn format_round_trips(x in any::<f64>()) {
        prop_assume!(!x.is_nan());
        let text = format_score(x);
        prop_assert_eq!(parse_score(text.as_bytes()).map(f64::to_bits), Some(x.to_bits()));
    }
}

#[test]
fn scores_print_like_redis_7() {
    // Recorded from redis-server 7.0.15 (ZADD then ZRANGE … WITHSCORES).
    let cases: &[(f64, &str)] = &[
        (1.1, "1.1000000000000001"),
        (0.1 + 0.2, "0.30000000000000004"),
        (0.1, "0.10000000000000001"),
        (1e300, "1.0000000000000001e+300"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (1e-5, "1.0000000000000001e-05"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (1e16, "10000000000000000"),
        (1e15, "1000000000000000"),
        (100.0, "100"),
        (0.5, "0.5"),
        (-2.5, "-2.5"),
        (1e-310, "9.9999999999999694e-311"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0.0001, "0.0001"),
    ];
    for &(x, text) in cases {
        assert_eq!(format_score(x), text, "{x:e}");
    }
}

#[test]
fn score_parsing_follows_redis_filters() {
    assert_eq!(parse_score(b"0x10"), Some(16.0));
    assert_eq!(parse_score(b"+5"), Some(5.0));
    assert_eq!(parse_score(b".5"), Some(0.5));
    assert_eq!(parse_score(b"5."), Some(5.0));
    assert_eq!(parse_score(b"Infinity"), Some(f64::INFINITY));
    assert_eq!(parse_score(b"-INF"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_score(b"1e-310"), Some(1e-310));
    for bad in [
        &b"1e400"[..],
        b"1e-400",
        b" 1",
        b"1 ",
        b"nan",
        b"abc",
        b"",
        b"1_0",
        b"1e",
        b".",
    ] {
        assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(parse_range_value(b"1e400"), Some(f64::INFINITY));
    assert_eq!(parse_range_value(b" 1"), Some(1.0));
    assert_eq!(parse_range_value(b""), Some(0.0));
    assert_eq!(parse_range_value(b"x"), None);
    // strtod on a C string: the bound ends at the first NUL (redis-server 7.0.15).
    assert_eq!(parse_range_value(b"1\0"), Some(1.0));
    assert_eq!(parse_range_value(b"2\0zz"), Some(2.0));
    assert_eq!(ScoreBound::parse(b"(1").map(|b| b.exclusive), Some(true));
    assert!(ScoreBound::parse(b"nan").is_none());
    assert!(LexBound::parse(&Bytes::from_static(b"a")).is_none());
    assert!(LexBound::parse(&Bytes::from_static(b"")).is_none());
    assert_eq!(
        LexBound::parse(&Bytes::from_static(b"-")),
        Some(LexBound::NegInf)
    );
}

#[test]
fn negative_zero_is_stored_as_zero_and_size_is_content_only() {
    let mut z = ZSetValue::new();
    assert!(z.insert(Bytes::from_static(b"a"), -0.0));
    assert_eq!(z.score(b"a").map(|s| s.is_sign_negative()), Some(false));
    let mut y = ZSetValue::new();
    for i in 0..100u32 {
        y.insert(Bytes::from(i.to_string()), i as f64);
    }
    for i in 0..100u32 {
        y.remove(i.to_string().as_bytes());
    }
    y.insert(Bytes::from_static(b"a"), 0.0);
    assert_eq!(y, z);
    assert_eq!(y.size_bytes(), z.size_bytes());
}

#[test]
fn large_set_ranks_stay_consistent() {
    let mut z = ZSetValue::new();
    const N: u32 = 20_000;
    for i in 0..N {
        z.insert(
            Bytes::from(format!("{:08}", (i * 7919) % N)),
            ((i * 7919) % N) as f64,
        );
    }
    assert_eq!(z.len(), N as usize);
    for r in [0usize, 1, 777, 12_345, N as usize - 1] {
        let (m, s) = z.get_by_rank(r).expect("in range");
        assert_eq!(s, r as f64);
        assert_eq!(z.rank(&m.clone()), Some(r));
    }
    let removed = z.remove_rank_range(100, 200);
    assert_eq!(removed.len(), 100);
    assert_eq!(z.get_by_rank(100).map(|(_, s)| s), Some(200.0));
}
