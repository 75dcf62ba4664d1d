//! RESP codec microbenchmarks (divan): request parser throughput on a redis-benchmark-like
//! pipeline of 16 SET commands and on one large bulk argument arriving in socket-sized
//! reads, and encoder throughput for replies and commands.
//! Run: `cargo bench -p tidemark --bench resp`.

use bytes::Bytes;
use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use tidemark::resp::{encode, encode_command, Frame, ParseLimits, RequestParser};

fn main() {
    divan::main();
}

/// Typical socket read size.
const READ_CHUNK_BYTES: usize = 16 * 1024;

fn set_pipeline(commands: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..commands {
        let key = Bytes::from(format!("key:{i:012}"));
        let value = Bytes::from(vec![b'x'; 3]);
        encode_command(&[Bytes::from_static(b"SET"), key, value], &mut wire);
    }
    wire
}

fn parse_all(parser: &mut RequestParser, wire: &[u8], chunk: usize) -> usize {
    let mut commands = 0;
    for piece in wire.chunks(chunk) {
        parser.feed(piece);
        while let Some(cmd) = parser.next_command().expect("valid input") {
            commands += black_box(cmd).len();
        }
    }
    commands
}

#[divan::bench]
fn parse_pipeline_16_sets(bencher: Bencher) {
    let wire = set_pipeline(16);
    let mut parser = RequestParser::new(ParseLimits::default());
    bencher
        .counter(BytesCount::new(wire.len()))
        .bench_local(|| parse_all(&mut parser, black_box(&wire), READ_CHUNK_BYTES));
}

#[divan::bench]
fn parse_inline_16_pings(bencher: Bencher) {
    let wire = b"PING\r\n".repeat(16);
    let mut parser = RequestParser::new(ParseLimits::default());
    bencher
        .counter(BytesCount::new(wire.len()))
        .bench_local(|| parse_all(&mut parser, black_box(&wire), READ_CHUNK_BYTES));
}

#[divan::bench(args = [64 * 1024, 8 * 1024 * 1024])]
fn parse_large_bulk(bencher: Bencher, len: usize) {
    let mut wire = Vec::new();
    let value = Bytes::from(vec![b'v'; len]);
    encode_command(
        &[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), value],
        &mut wire,
    );
    let mut parser = RequestParser::new(ParseLimits::default());
    bencher
        .counter(BytesCount::new(wire.len()))
        .bench_local(|| parse_all(&mut parser, black_box(&wire), READ_CHUNK_BYTES));
}

#[divan::bench]
fn encode_reply_array_of_16_bulks(bencher: Bencher) {
    let frame = Frame::Array(
        (0..16)
            .map(|i| Frame::bulk(format!("value:{i:08}")))
            .collect(),
    );
    let mut out = Vec::new();
    encode(&frame, &mut out);
    bencher.counter(BytesCount::new(out.len())).bench_local(|| {
        out.clear();
        encode(black_box(&frame), &mut out);
        out.len()
    });
}

#[divan::bench]
fn encode_16_integers_and_oks(bencher: Bencher) {
    let frames: Vec<Frame> = (0..16)
        .map(|i| {
            if i % 2 == 0 {
                Frame::Integer(i * 1_000_003)
            } else {
                Frame::ok()
            }
        })
        .collect();
    let mut out = Vec::new();
    bencher.bench_local(|| {
        out.clear();
        for frame in black_box(&frames) {
            encode(frame, &mut out);
        }
        out.len()
    });
}

#[divan::bench]
fn encode_command_set(bencher: Bencher) {
    let args = [
        Bytes::from_static(b"SET"),
        Bytes::from_static(b"key:000000000042"),
        Bytes::from(vec![b'x'; 64]),
    ];
    let mut out = Vec::new();
    bencher.bench_local(|| {
        out.clear();
        encode_command(black_box(&args), &mut out);
        out.len()
    });
}
