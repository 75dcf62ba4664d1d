//! Property tests for the RESP codec: any split of a valid pipeline parses like the whole,
//! encode → parse round trips (requests and replies), and garbage never panics nor
//! buffers beyond the limits.

use bytes::Bytes;
use proptest::prelude::*;

use super::encode::{encode, encode_command};
use super::parse::{ParseLimits, RequestParser};
use super::reply::ReplyParser;
use super::Frame;

/// One request as written on the wire, and the arguments it must parse to.
#[derive(Debug, Clone)]
struct WireCommand {
    bytes: Vec<u8>,
    args: Vec<Bytes>,
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        "[a-zA-Z0-9]{1,12}".prop_map(String::into_bytes),
    ]
}

/// Writes `arg` for an inline line: bare if alphanumeric, else double-quoted with `\xHH`
/// escapes (or single-quoted when that is safe), so any binary argument is expressible.
fn inline_arg(arg: &[u8], quote_style: u8, out: &mut Vec<u8>) {
    if !arg.is_empty() && arg.iter().all(u8::is_ascii_alphanumeric) && quote_style == 0 {
        out.extend_from_slice(arg);
    } else if quote_style == 1 && arg.iter().all(|b| b.is_ascii_alphanumeric() || *b == b' ') {
        out.push(b'\'');
        out.extend_from_slice(arg);
        out.push(b'\'');
    } else {
        out.push(b'"');
        for &b in arg {
            if b.is_ascii_alphanumeric() {
                out.push(b);
            } else {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            }
        }
        out.push(b'"');
    }
}

fn wire_command() -> impl Strategy<Value = WireCommand> {
    let array = proptest::collection::vec(arg(), 1..5).prop_map(|args| {
        let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
        let mut bytes = Vec::new();
        encode_command(&args, &mut bytes);
        WireCommand { bytes, args }
    });
    let inline = (
        proptest::collection::vec(
            (
                arg(),
                0u8..3,
                prop_oneof![Just(" "), Just("\t"), Just("  ")],
            ),
            1..4,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parts, crlf, leading_space)| {
            let mut bytes = Vec::new();
            if leading_space {
                bytes.push(b' ');
            }
            for (i, (arg, style, sep)) in parts.iter().enumerate() {
                if i > 0 {
                    bytes.extend_from_slice(sep.as_bytes());
                }
                inline_arg(arg, *style, &mut bytes);
            }
            bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            let args = parts.into_iter().map(|(a, _, _)| Bytes::from(a)).collect();
            WireCommand { bytes, args }
        });
    // Requests that produce no command.
    let skipped = proptest::sample::select(vec![&b"\r\n"[..], b"\n", b"*0\r\n", b"*-1\r\n"])
        .prop_map(|bytes| WireCommand {
            bytes: bytes.to_vec(),
            args: Vec::new(),
        });
    prop_oneof![4 => array, 3 => inline, 1 => skipped]
}

/// Feeds `input` cut at `cuts` (positions, any order) and collects every command.
fn parse_split(input: &[u8], cuts: &[usize]) -> Vec<Vec<Bytes>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parser = RequestParser::new(ParseLimits::default());
    let mut commands = Vec::new();
    let mut start = 0;
    for end in cuts.into_iter().chain([input.len()]) {
        parser.feed(&input[start..end]);
        start = end;
        while let Some(cmd) = parser.next_command().expect("valid pipeline") {
            commands.push(cmd);
        }
    }
    assert_eq!(parser.buffered_len(), 0);
    commands
}

fn scalar_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        "[^\r\n]{0,16}".prop_map(Frame::Simple),
        "[^\r\n]{0,16}".prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Frame::Bulk(b.into())),
        Just(Frame::Null),
        Just(Frame::NullArray),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    scalar_frame().prop_recursive(4, 48, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(Frame::Array)
    })
}

fn protocolish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => proptest::sample::select(b"*$+-:\r\n0123456789 \"'\\x".to_vec()),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..400)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_split_parses_like_the_whole(
        commands in proptest::collection::vec(wire_command(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input: Vec<u8> = commands.iter().flat_map(|c| c.bytes.clone()).collect();
        let expected: Vec<Vec<Bytes>> =
            commands.iter().filter(|c| !c.args.is_empty()).map(|c| c.args.clone()).collect();
        prop_assert_eq!(&parse_split(&input, &[]), &expected);
        prop_assert_eq!(&parse_split(&input, &cuts), &expected);
        let every_byte: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&parse_split(&input, &every_byte), &expected);
    }

    #[test]
    fn encoded_commands_round_trip(args in proptest::collection::vec(arg(), 1..8)) {
        let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
        let mut wire = Vec::new();
        encode_command(&args, &mut wire);
        prop_assert_eq!(parse_split(&wire, &[wire.len() / 2]), vec![args]);
    }

    #[test]
    fn replies_round_trip_under_any_split(
        frames in proptest::collection::vec(frame(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire = Vec::new();
        for f in &frames {
            encode(f, &mut wire);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = ReplyParser::new();
        let mut got = Vec::new();
        let mut start = 0;
        for end in cuts.into_iter().chain([wire.len()]) {
            parser.feed(&wire[start..end]);
            start = end;
            while let Some(f) = parser.next_frame().expect("valid replies") {
                got.push(f);
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert_eq!(parser.buffered_len(), 0);
    }

    #[test]
    fn garbage_never_panics_nor_overbuffers(
        garbage in protocolish_bytes(),
        chunk in 1usize..64,
    ) {
        let limits = ParseLimits { bulk_len_max_bytes: 64, array_len_max: 8, inline_len_max_bytes: 32 };
        // Held at most: all but one argument, one bulk body + CRLF, one pending line.
        let bound = (limits.array_len_max as usize) * (limits.bulk_len_max_bytes as usize)
            + limits.inline_len_max_bytes + 2;
        let mut requests = RequestParser::new(limits);
        let mut replies = ReplyParser::with_limits(limits);
        for piece in garbage.chunks(chunk) {
            requests.feed(piece);
            replies.feed(piece);
            while let Ok(Some(cmd)) = requests.next_command() {
                prop_assert!(!cmd.is_empty());
                prop_assert!(cmd.len() as u64 <= limits.array_len_max);
                prop_assert!(cmd.iter().all(|a| a.len() as u64 <= limits.bulk_len_max_bytes));
            }
            while let Ok(Some(_)) = replies.next_frame() {}
            prop_assert!(requests.buffered_len() <= bound, "{}", requests.buffered_len());
            prop_assert!(replies.buffered_len() <= bound, "{}", replies.buffered_len());
        }
    }
}
