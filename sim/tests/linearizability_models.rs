//! The tidemark command-family models of the linearizability checker (strings, hashes,
//! lists, sets), on tiny hand-made histories.

mod lin_support;

use lin_support::{check, history};
use tidemark_sim::linearizability::models::{
    Register, RegisterInput as RIn, RegisterOutput as ROut,
};
use tidemark_sim::linearizability::tidemark_models::{
    CollectionReply as CR, HashOp, Hashes, KeyOp, ListOp, Lists, SetOp, Sets, Strings,
};
use tidemark_sim::linearizability::Verdict;
use tidemark_sim::model::{Op, Reply};

#[test]
fn strings_model_follows_redis_replies() {
    let k = |op| KeyOp {
        key: b"s".to_vec(),
        op,
    };
    let h = history::<Strings>(vec![
        (
            1,
            0,
            Some(1),
            k(Op::Append(b"ab".to_vec())),
            Some(Reply::Integer(2)),
        ),
        (1, 2, Some(3), k(Op::Strlen), Some(Reply::Integer(2))),
        (1, 4, Some(5), k(Op::Exists), Some(Reply::Integer(1))),
        (1, 6, Some(7), k(Op::Del), Some(Reply::Integer(1))),
        (1, 8, Some(9), k(Op::IncrBy(5)), Some(Reply::Integer(5))),
        (
            1,
            10,
            Some(11),
            k(Op::Get),
            Some(Reply::Value(Some(b"5".to_vec()))),
        ),
    ]);
    assert_eq!(check(&h), Verdict::Linearizable);
    let double_incr = history::<Strings>(vec![
        (1, 0, Some(1), k(Op::IncrBy(1)), Some(Reply::Integer(1))),
        (2, 2, None, k(Op::IncrBy(1)), None),
        (
            1,
            3,
            Some(4),
            k(Op::Get),
            Some(Reply::Value(Some(b"3".to_vec()))),
        ),
    ]);
    assert!(
        check(&double_incr).is_not_linearizable(),
        "an INCR applied twice"
    );
}

#[test]
fn hashes_model() {
    let k = |op| KeyOp {
        key: b"h".to_vec(),
        op,
    };
    let pair = |f: &str, v: &str| (f.as_bytes().to_vec(), v.as_bytes().to_vec());
    let h = history::<Hashes>(vec![
        (
            1,
            0,
            Some(1),
            k(HashOp::Hset(vec![pair("a", "1"), pair("b", "2")])),
            Some(CR::Integer(2)),
        ),
        (
            1,
            2,
            Some(3),
            k(HashOp::Hset(vec![pair("a", "3")])),
            Some(CR::Integer(0)),
        ),
        (
            1,
            4,
            Some(5),
            k(HashOp::Hget(b"a".to_vec())),
            Some(CR::Value(Some(b"3".to_vec()))),
        ),
        (
            1,
            6,
            Some(7),
            k(HashOp::Hdel(vec![b"a".to_vec(), b"z".to_vec()])),
            Some(CR::Integer(1)),
        ),
        (1, 8, Some(9), k(HashOp::Hlen), Some(CR::Integer(1))),
    ]);
    assert_eq!(check(&h), Verdict::Linearizable);
    let lost = history::<Hashes>(vec![
        (
            1,
            0,
            Some(1),
            k(HashOp::Hset(vec![pair("a", "1")])),
            Some(CR::Integer(1)),
        ),
        (
            2,
            2,
            Some(3),
            k(HashOp::Hget(b"a".to_vec())),
            Some(CR::Value(None)),
        ),
    ]);
    assert!(check(&lost).is_not_linearizable());
}

#[test]
fn lists_model() {
    let k = |op| KeyOp {
        key: b"l".to_vec(),
        op,
    };
    let e = |s: &str| s.as_bytes().to_vec();
    let h = history::<Lists>(vec![
        (
            1,
            0,
            Some(1),
            k(ListOp::Lpush(vec![e("a"), e("b")])),
            Some(CR::Integer(2)),
        ),
        (
            1,
            2,
            Some(3),
            k(ListOp::Rpush(vec![e("c")])),
            Some(CR::Integer(3)),
        ),
        (
            1,
            4,
            Some(5),
            k(ListOp::LrangeAll),
            Some(CR::Array(vec![e("b"), e("a"), e("c")])),
        ),
        (
            1,
            6,
            Some(7),
            k(ListOp::Lpop),
            Some(CR::Value(Some(e("b")))),
        ),
        (
            1,
            8,
            Some(9),
            k(ListOp::Rpop),
            Some(CR::Value(Some(e("c")))),
        ),
        (1, 10, Some(11), k(ListOp::Llen), Some(CR::Integer(1))),
    ]);
    assert_eq!(check(&h), Verdict::Linearizable);
    // Two concurrent pops cannot both get the single element.
    let twice = history::<Lists>(vec![
        (
            1,
            0,
            Some(1),
            k(ListOp::Rpush(vec![e("x")])),
            Some(CR::Integer(1)),
        ),
        (
            1,
            2,
            Some(5),
            k(ListOp::Lpop),
            Some(CR::Value(Some(e("x")))),
        ),
        (
            2,
            3,
            Some(4),
            k(ListOp::Rpop),
            Some(CR::Value(Some(e("x")))),
        ),
    ]);
    assert!(check(&twice).is_not_linearizable());
}

#[test]
fn sets_model() {
    let k = |op| KeyOp {
        key: b"s".to_vec(),
        op,
    };
    let e = |s: &str| s.as_bytes().to_vec();
    let h = history::<Sets>(vec![
        (
            1,
            0,
            Some(1),
            k(SetOp::Sadd(vec![e("b"), e("a"), e("a")])),
            Some(CR::Integer(2)),
        ),
        (
            1,
            2,
            Some(3),
            k(SetOp::Smembers),
            Some(CR::Array(vec![e("b"), e("a")])),
        ),
        (
            1,
            4,
            Some(5),
            k(SetOp::Srem(vec![e("a"), e("q")])),
            Some(CR::Integer(1)),
        ),
        (
            1,
            6,
            Some(7),
            k(SetOp::Sismember(e("a"))),
            Some(CR::Integer(0)),
        ),
        (1, 8, Some(9), k(SetOp::Scard), Some(CR::Integer(1))),
    ]);
    assert_eq!(check(&h), Verdict::Linearizable);
    let wrong = history::<Sets>(vec![
        (
            1,
            0,
            Some(1),
            k(SetOp::Sadd(vec![e("a")])),
            Some(CR::Integer(1)),
        ),
        (
            1,
            2,
            Some(3),
            k(SetOp::Smembers),
            Some(CR::Array(vec![e("a"), e("a")])),
        ),
    ]);
    assert!(check(&wrong).is_not_linearizable());
}

#[test]
fn writing_the_current_value_is_not_a_pure_operation() {
    // Client 1's write of 2 (while the value is already 2) must be placeable after client
    // 2's write of 3: it leaves the state unchanged only where it is first tried.
    let h = history::<Register>(vec![
        (0, 0, Some(1), RIn::Write(2), Some(ROut::Ok)),
        (1, 2, Some(20), RIn::Write(2), Some(ROut::Ok)),
        (2, 3, Some(4), RIn::Write(3), Some(ROut::Ok)),
        (3, 5, Some(6), RIn::Read, Some(ROut::Read(Some(2)))),
    ]);
    assert_eq!(check(&h), Verdict::Linearizable);
    // A failed compare-and-set is pure: taken early, it still allows every order.
    let h = history::<Register>(vec![
        (0, 0, Some(1), RIn::Write(2), Some(ROut::Ok)),
        (1, 2, Some(20), RIn::Cas(5, 6), Some(ROut::CasFailed)),
        (2, 3, Some(4), RIn::Write(5), Some(ROut::Ok)),
        (3, 5, Some(6), RIn::Read, Some(ROut::Read(Some(5)))),
    ]);
    assert_eq!(check(&h), Verdict::Linearizable);
}
