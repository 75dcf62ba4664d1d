//! Unit tests of RESP3 encoding, reply shapes and the RESP3 value parser. Expected bytes
//! were captured from redis-server 7.0.15 after `HELLO 3` (and on RESP2 for the
//! write-downs).

use bytes::Bytes;

use super::*;
use crate::resp::encode::{encode_as, encode_to_vec};

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn resp3(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_as(frame, Protocol::Resp3, &mut out);
    out
}

fn shaped3(line: &str, frame: Frame) -> Vec<u8> {
    resp3(&shape_reply(Protocol::Resp3, &args(line), frame))
}

#[test]
fn resp3_types_encode_like_redis() {
    let frame = Frame::Array(vec![
        Frame::Null,
        Frame::NullArray,
        Frame::Double(1.1),
        Frame::Double(f64::INFINITY),
        Frame::Double(-2.0),
        Frame::Boolean(true),
        Frame::Boolean(false),
        Frame::BigNumber("-123".into()),
        Frame::Verbatim(Bytes::from_static(b"a\nb")),
        Frame::Set(vec![bulk("x")]),
        Frame::Push(vec![bulk("message")]),
        Frame::Map(vec![(bulk("k"), Frame::Integer(1))]),
    ]);
    let expected: &[u8] = b"*12\r\n_\r\n_\r\n,1.1000000000000001\r\n,inf\r\n,-2\r\n#t\r\n#f\r\n\
(-123\r\n=7\r\ntxt:a\nb\r\n~1\r\n$1\r\nx\r\n>1\r\n$7\r\nmessage\r\n%1\r\n$1\r\nk\r\n:1\r\n";
    assert_eq!(resp3(&frame), expected);
}

#[test]
fn resp3_types_write_down_to_resp2() {
    let frame = Frame::Array(vec![
        Frame::Double(1.1),
        Frame::Double(f64::NEG_INFINITY),
        Frame::Boolean(true),
        Frame::Boolean(false),
        Frame::BigNumber("12".into()),
        Frame::Verbatim(Bytes::from_static(b"ab")),
        Frame::Set(vec![bulk("x")]),
        Frame::Push(vec![]),
        Frame::Map(vec![
            (bulk("k"), Frame::Null),
            (bulk("j"), Frame::NullArray),
        ]),
    ]);
    let expected: &[u8] = b"*9\r\n$18\r\n1.1000000000000001\r\n$4\r\n-inf\r\n:1\r\n:0\r\n\
$2\r\n12\r\n$2\r\nab\r\n*1\r\n$1\r\nx\r\n*0\r\n*4\r\n$1\r\nk\r\n$-1\r\n$1\r\nj\r\n*-1\r\n";
    assert_eq!(encode_to_vec(&frame), expected);
}

#[test]
fn hello_map_matches_redis_on_both_protocols() {
    let map = Frame::map_of([
        ("server", bulk("redis")),
        ("proto", Frame::Integer(3)),
        ("modules", Frame::Array(vec![])),
    ]);
    assert_eq!(
        resp3(&map),
        b"%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n"
    );
    assert_eq!(
        encode_to_vec(&map),
        b"*6\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n"
    );
}

#[test]
fn command_replies_take_redis_7_shapes() {
    let flat = |items: &[&str]| Frame::Array(items.iter().map(|s| bulk(s)).collect());
    assert_eq!(
        shaped3("HGETALL h", flat(&["a", "1", "b", "2"])),
        b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        shaped3("smembers s", flat(&["y", "x"])),
        b"~2\r\n$1\r\ny\r\n$1\r\nx\r\n"
    );
    assert_eq!(
        shaped3("srandmember s 2", flat(&["y"])),
        b"*1\r\n$1\r\ny\r\n"
    );
    assert_eq!(shaped3("spop s 1", flat(&["x"])), b"~1\r\n$1\r\nx\r\n");
    assert_eq!(
        shaped3("zscore z a", bulk("1.1000000000000001")),
        b",1.1000000000000001\r\n"
    );
    assert_eq!(shaped3("zscore z nope", Frame::Null), b"_\r\n");
    assert_eq!(shaped3("zadd z incr 1 a", bulk("3.5")), b",3.5\r\n");
    assert_eq!(shaped3("zadd z 1 a", Frame::Integer(1)), b":1\r\n");
    assert_eq!(
        shaped3(
            "zmscore z a nope",
            Frame::Array(vec![bulk("2"), Frame::Null])
        ),
        b"*2\r\n,2\r\n_\r\n"
    );
    assert_eq!(
        shaped3("zrange z 0 -1 WITHSCORES", flat(&["b", "2", "a", "2.5"])),
        b"*2\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\na\r\n,2.5\r\n"
    );
    assert_eq!(shaped3("zrange z 0 -1", flat(&["b"])), b"*1\r\n$1\r\nb\r\n");
    assert_eq!(
        shaped3("zpopmin z", flat(&["b", "2"])),
        b"*2\r\n$1\r\nb\r\n,2\r\n"
    );
    assert_eq!(
        shaped3("zpopmin z 1", flat(&["a", "1"])),
        b"*1\r\n*2\r\n$1\r\na\r\n,1\r\n"
    );
    assert_eq!(
        shaped3("bzpopmin z 0", flat(&["z", "a", "3"])),
        b"*3\r\n$1\r\nz\r\n$1\r\na\r\n,3\r\n"
    );
    assert_eq!(
        shaped3(
            "zmpop 1 z min count 2",
            Frame::Array(vec![bulk("z"), flat(&["a", "1", "b", "2"])])
        ),
        b"*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n"
    );
    assert_eq!(shaped3("zmpop 1 z min", Frame::NullArray), b"_\r\n");
    assert_eq!(
        shaped3("hrandfield h 1 withvalues", flat(&["a", "1"])),
        b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(shaped3("incrbyfloat f 1.5", bulk("1.5")), b"$3\r\n1.5\r\n");
    assert_eq!(shaped3("info", bulk("# x\r\n")), b"=9\r\ntxt:# x\r\n\r\n");
    let wrongtype =
        Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(
        shape_reply(Protocol::Resp3, &args("hgetall z"), wrongtype.clone()),
        wrongtype
    );
    // RESP2 clients get exactly what the command returned.
    assert_eq!(
        shape_reply(Protocol::Resp2, &args("hgetall h"), flat(&["a", "1"])),
        flat(&["a", "1"])
    );
}

#[test]
fn parser_reads_back_every_type() {
    let frame = Frame::Array(vec![
        Frame::Null,
        Frame::Double(1.5),
        Frame::Double(f64::NEG_INFINITY),
        Frame::Boolean(true),
        Frame::BigNumber("7".into()),
        Frame::Verbatim(Bytes::from_static(b"ab")),
        Frame::Set(vec![bulk("x"), Frame::Integer(3)]),
        Frame::Push(vec![]),
        Frame::Map(vec![(bulk("k"), Frame::Array(vec![Frame::Map(vec![])]))]),
        Frame::error("ERR x"),
        Frame::ok(),
    ]);
    let bytes = resp3(&frame);
    let (parsed, used) = parse_value(&bytes).expect("valid");
    assert_eq!(used, bytes.len());
    assert_eq!(parsed, frame);
    for cut in 0..bytes.len() {
        assert!(parse_value(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
    }
    assert!(parse_value(b"?x\r\n").is_err());
    let deep = "*1\r\n".repeat(PARSE_DEPTH_MAX + 1) + ":1\r\n";
    assert!(parse_value(deep.as_bytes()).is_err());
}
