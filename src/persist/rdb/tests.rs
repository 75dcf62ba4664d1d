//! Round-trip and corruption tests for the RDB writer and reader: every value type, TTLs,
//! integer-encoded and LZF strings, binary keys, hand-assembled Redis 7 compact encodings,
//! and a proptest that random mutations of a valid file never panic the reader.

use bytes::Bytes;
use proptest::prelude::*;

use super::crc64::crc64;
use super::writer::put_len;
use super::*;
use crate::keyspace::{Db, Value};

const FAR_FUTURE_MS: u64 = 4_102_444_800_000; // 2100-01-01

fn header(compression: bool) -> RdbHeader {
    RdbHeader {
        ctime_s: 1_700_000_000,
        used_mem_bytes: 1_234_567,
        compression,
        ..RdbHeader::default()
    }
}

fn read_all(bytes: &[u8]) -> Result<(Vec<RdbEntry>, RdbSummary), RdbError> {
    let mut entries = Vec::new();
    let summary = read_rdb(bytes, |e| {
        entries.push(e);
        Ok(())
    })?;
    Ok((entries, summary))
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// A file with one of every type, some with TTLs, written through the public API.
fn sample_file(compression: bool) -> (Vec<u8>, Vec<RdbEntry>) {
    let long = b"compressible ".repeat(30);
    let binary_key: &[u8] = b"\x00bin\xffkey\r\n";
    let strings: Vec<(&[u8], Vec<u8>, Option<u64>)> = vec![
        (b"s:plain", b"hello".to_vec(), None),
        (b"s:int8", b"-100".to_vec(), None),
        (b"s:int16", b"30000".to_vec(), Some(FAR_FUTURE_MS)),
        (b"s:int32", b"-2147483648".to_vec(), None),
        (b"s:notint", b"007".to_vec(), None),
        (b"s:big", b"2147483648".to_vec(), None),
        (b"s:long", long.clone(), Some(1)),
        (b"s:empty", Vec::new(), None),
        (binary_key, b"\x00\x01\x02".to_vec(), None),
        (b"12345", b"key is an int".to_vec(), None),
    ];
    let list: Vec<&[u8]> = vec![b"a", b"", b"42", &long, b"a"];
    let set: Vec<&[u8]> = vec![b"x", b"1", b"-7", b"\xff"];
    let hash: Vec<(&[u8], &[u8])> = vec![(b"f1", b"v1"), (b"n", b"99"), (b"", b"empty field")];
    let zset: Vec<(&[u8], f64)> = vec![
        (b"m1", 1.5),
        (b"m2", -0.0),
        (b"inf", f64::INFINITY),
        (b"ninf", f64::NEG_INFINITY),
        (b"7", 1e300),
    ];

    let mut w = RdbWriter::new(header(compression));
    w.select_db(0, (strings.len() + 4) as u64, 3);
    let mut expected = Vec::new();
    for (k, v, ttl) in &strings {
        w.write_string(k, v, *ttl).unwrap();
        expected.push(RdbEntry {
            db: 0,
            key: b(k),
            value: RdbValue::Str(b(v)),
            expire_ms: *ttl,
        });
    }
    w.write_list(b"l", list.iter().copied(), list.len(), Some(FAR_FUTURE_MS))
        .unwrap();
    expected.push(RdbEntry {
        db: 0,
        key: b(b"l"),
        value: RdbValue::List(list.iter().map(|s| b(s)).collect()),
        expire_ms: Some(FAR_FUTURE_MS),
    });
    w.write_set(b"set", set.iter().copied(), set.len(), None)
        .unwrap();
    expected.push(RdbEntry {
        db: 0,
        key: b(b"set"),
        value: RdbValue::Set(set.iter().map(|s| b(s)).collect()),
        expire_ms: None,
    });
    w.write_hash(b"h", hash.iter().copied(), hash.len(), None)
        .unwrap();
    expected.push(RdbEntry {
        db: 0,
        key: b(b"h"),
        value: RdbValue::Hash(hash.iter().map(|(f, v)| (b(f), b(v))).collect()),
        expire_ms: None,
    });
    w.write_zset(b"z", zset.iter().copied(), zset.len(), None)
        .unwrap();
    expected.push(RdbEntry {
        db: 0,
        key: b(b"z"),
        value: RdbValue::ZSet(zset.iter().map(|(m, s)| (b(m), *s)).collect()),
        expire_ms: None,
    });
    (w.finish(), expected)
}

#[test]
fn every_type_round_trips_with_and_without_compression() {
    for compression in [true, false] {
        let (file, expected) = sample_file(compression);
        assert_eq!(&file[..9], b"REDIS0010");
        let (entries, summary) = read_all(&file).unwrap();
        assert_eq!(entries, expected);
        assert_eq!(summary.version, 10);
        assert_eq!(summary.keys, expected.len() as u64);
        assert_eq!(summary.expires, 3);
        assert!(summary.checksum_verified);
        let aux: Vec<(&[u8], &[u8])> = summary.aux.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(
            aux,
            vec![
                (&b"redis-ver"[..], &b"7.0.0"[..]),
                (b"redis-bits", b"64"),
                (b"ctime", b"1700000000"),
                (b"used-mem", b"1234567"),
                (b"aof-base", b"0"),
            ]
        );
        // The zero-vs-negative-zero score survives bit for bit.
        let RdbValue::ZSet(z) = &entries.last().unwrap().value else {
            panic!("zset expected")
        };
        assert!(z[1].1.is_sign_negative());
    }
    let (small, _) = sample_file(true);
    let (big, _) = sample_file(false);
    assert!(
        small.len() < big.len(),
        "LZF must shrink the repetitive strings"
    );
}

#[test]
fn trailer_is_crc64_of_everything_before_it() {
    let (file, _) = sample_file(true);
    let (body, trailer) = file.split_at(file.len() - 8);
    assert_eq!(
        *body.last().unwrap(),
        0xFF,
        "EOF opcode precedes the trailer"
    );
    assert_eq!(u64::from_le_bytes(trailer.try_into().unwrap()), crc64(body));
}

#[test]
fn integer_strings_use_the_integer_encodings() {
    let encoded = |s: &[u8]| {
        let mut w = RdbWriter::new(header(false));
        let start = w.take_bytes().len();
        assert!(start > 9);
        w.write_string(b"k", s, None).unwrap();
        let bytes = w.take_bytes();
        bytes[3..].to_vec() // skip type byte and the 2-byte key "k"
    };
    assert_eq!(encoded(b"0"), vec![0xC0, 0]);
    assert_eq!(encoded(b"-128"), vec![0xC0, 0x80]);
    assert_eq!(encoded(b"128"), vec![0xC1, 0x80, 0x00]);
    assert_eq!(encoded(b"-32769"), vec![0xC2, 0xFF, 0x7F, 0xFF, 0xFF]);
    for not_canonical in [
        &b"-0"[..],
        b"007",
        b"+1",
        b"1 ",
        b"2147483648",
        b"1e3",
        b"-",
    ] {
        let enc = encoded(not_canonical);
        assert_eq!(
            usize::from(enc[0]),
            not_canonical.len(),
            "{not_canonical:?} stays raw"
        );
    }
}

#[test]
fn length_encodings_at_their_boundaries_round_trip() {
    for len in [0usize, 63, 64, 16383, 16384, 70_000] {
        let value: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = RdbWriter::new(header(false));
        w.write_string(&value, &value, None).unwrap();
        let (entries, _) = read_all(&w.finish()).unwrap();
        assert_eq!(entries[0].key.len(), len);
        assert_eq!(entries[0].value, RdbValue::Str(Bytes::from(value)));
    }
    let mut buf = Vec::new();
    put_len(&mut buf, 1 << 40);
    assert_eq!(buf, [0x81, 0, 0, 1, 0, 0, 0, 0, 0]);
}

#[test]
fn take_bytes_chunks_concatenate_to_the_same_file() {
    let mut whole = RdbWriter::new(header(true));
    let mut chunked = RdbWriter::new(header(true));
    let mut out = chunked.take_bytes();
    for i in 0..50u32 {
        let key = format!("key:{i}");
        let value = format!("value number {i} ").repeat(i as usize % 5 + 1);
        whole
            .write_string(key.as_bytes(), value.as_bytes(), None)
            .unwrap();
        chunked
            .write_string(key.as_bytes(), value.as_bytes(), None)
            .unwrap();
        if i % 7 == 0 {
            out.extend(chunked.take_bytes());
        }
    }
    assert_eq!(chunked.len_bytes(), whole.len_bytes());
    out.extend(chunked.finish());
    assert_eq!(out, whole.finish());
    assert_eq!(read_all(&out).unwrap().1.keys, 50);
}

#[test]
fn bad_writer_input_is_refused_and_rolled_back() {
    let mut w = RdbWriter::new(header(true));
    w.write_string(b"ok", b"1", None).unwrap();
    let none: Vec<&[u8]> = Vec::new();
    let err = w
        .write_list(b"empty", none.iter().copied(), 0, None)
        .unwrap_err();
    assert!(matches!(err, RdbError::InvalidInput(_)), "{err}");
    let two: Vec<&[u8]> = vec![b"a", b"b"];
    assert!(w.write_set(b"short", two.iter().copied(), 3, None).is_err());
    assert!(w.write_set(b"long", two.iter().copied(), 1, None).is_err());
    let nan: Vec<(&[u8], f64)> = vec![(b"m", 1.0), (b"n", f64::NAN)];
    assert!(w
        .write_zset(b"nan", nan.iter().copied(), 2, Some(5))
        .is_err());
    w.write_string(b"after", b"x", None).unwrap();
    let (entries, _) = read_all(&w.finish()).unwrap();
    let keys: Vec<&[u8]> = entries.iter().map(|e| &e.key[..]).collect();
    assert_eq!(keys, vec![&b"ok"[..], b"after"]);
}

#[test]
fn write_db_entries_writes_live_strings_with_ttls() {
    let mut db = Db::new(7);
    db.insert(b(b"a"), Value::Str(b(b"1")), None);
    db.insert(b(b"b"), Value::Str(b(b"two")), Some(FAR_FUTURE_MS));
    db.insert(b(b"gone"), Value::Str(b(b"x")), Some(999));
    let mut w = RdbWriter::new(header(true));
    write_db_entries(&mut w, &db, 1_000).unwrap();
    let (mut entries, summary) = read_all(&w.finish()).unwrap();
    entries.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(summary.keys, 2);
    assert_eq!(
        entries[0],
        RdbEntry {
            db: 0,
            key: b(b"a"),
            value: RdbValue::Str(b(b"1")),
            expire_ms: None
        }
    );
    assert_eq!(entries[1].expire_ms, Some(FAR_FUTURE_MS));
    assert_eq!(entries[1].value, RdbValue::Str(b(b"two")));
}

/// Builds a file by hand: `REDIS<version>`, `body`, EOF, and (version ≥ 5) the CRC.
fn hand_file(version: u32, body: &[u8]) -> Vec<u8> {
    let mut f = format!("REDIS{version:04}").into_bytes();
    f.extend_from_slice(body);
    f.push(0xFF);
    if version >= 5 {
        let crc = crc64(&f);
        f.extend_from_slice(&crc.to_le_bytes());
    }
    f
}

fn raw_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A listpack of string entries (all shorter than 64 bytes) and small uints.
fn listpack(entries: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in entries {
        let enc: Vec<u8> = match super::writer::canonical_i32(e) {
            Some(v) if (0..128).contains(&v) => vec![v as u8],
            _ => [&[0x80 | e.len() as u8][..], e].concat(),
        };
        body.extend_from_slice(&enc);
        body.push(enc.len() as u8);
    }
    let mut lp = ((6 + body.len() + 1) as u32).to_le_bytes().to_vec();
    lp.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    lp.extend_from_slice(&body);
    lp.push(0xFF);
    lp
}

/// A version-10 file with every Redis 7 compact encoding, built by hand.
fn compact_file_v10() -> Vec<u8> {
    let mut body = vec![0xFE, 0x03]; // SELECTDB 3
    body.extend([0xF9, 0x05, 0xF8, 0x40, 0x10]); // FREQ 5, IDLE 4112: skipped
    body.push(11); // SET_INTSET
    raw_string(&mut body, b"is");
    let mut intset = vec![4, 0, 0, 0, 2, 0, 0, 0];
    intset.extend_from_slice(&(-70_000i32).to_le_bytes());
    intset.extend_from_slice(&5i32.to_le_bytes());
    raw_string(&mut body, &intset);
    body.push(16); // HASH_LISTPACK
    raw_string(&mut body, b"hl");
    raw_string(&mut body, &listpack(&[b"f", b"7", b"g", b"text"]));
    body.push(17); // ZSET_LISTPACK
    raw_string(&mut body, b"zl");
    raw_string(&mut body, &listpack(&[b"a", b"3", b"b", b"2.5"]));
    body.extend([0xFD, 0x10, 0, 0, 0]); // EXPIRETIME 16 s
    body.push(18); // LIST_QUICKLIST_2
    raw_string(&mut body, b"ql");
    body.push(2); // two nodes
    body.push(2); // packed
    raw_string(&mut body, &listpack(&[b"x", b"1"]));
    body.push(1); // plain
    raw_string(&mut body, b"plain node");
    body.push(3); // ZSET with text scores
    raw_string(&mut body, b"z3");
    body.push(2);
    raw_string(&mut body, b"m");
    raw_string(&mut body, b"-1.25");
    raw_string(&mut body, b"n");
    body.push(254); // +inf
    hand_file(10, &body)
}

#[test]
fn redis7_compact_encodings_decode() {
    let (entries, summary) = read_all(&compact_file_v10()).unwrap();
    let s = |x: &[u8]| b(x);
    let expected = vec![
        RdbEntry {
            db: 3,
            key: s(b"is"),
            value: RdbValue::Set(vec![s(b"-70000"), s(b"5")]),
            expire_ms: None,
        },
        RdbEntry {
            db: 3,
            key: s(b"hl"),
            value: RdbValue::Hash(vec![(s(b"f"), s(b"7")), (s(b"g"), s(b"text"))]),
            expire_ms: None,
        },
        RdbEntry {
            db: 3,
            key: s(b"zl"),
            value: RdbValue::ZSet(vec![(s(b"a"), 3.0), (s(b"b"), 2.5)]),
            expire_ms: None,
        },
        RdbEntry {
            db: 3,
            key: s(b"ql"),
            value: RdbValue::List(vec![s(b"x"), s(b"1"), s(b"plain node")]),
            expire_ms: Some(16_000),
        },
        RdbEntry {
            db: 3,
            key: s(b"z3"),
            value: RdbValue::ZSet(vec![(s(b"m"), -1.25), (s(b"n"), f64::INFINITY)]),
            expire_ms: None,
        },
    ];
    assert_eq!(entries, expected);
    assert_eq!(summary.expires, 1);
}

/// A ziplist of short strings (< 64 bytes each, so every prevlen is one byte).
fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0u8;
    let mut tail = 10usize;
    for e in entries {
        tail = 10 + body.len();
        body.extend_from_slice(&[prev, e.len() as u8]);
        body.extend_from_slice(e);
        prev = (e.len() + 2) as u8;
    }
    let mut zl = ((10 + body.len() + 1) as u32).to_le_bytes().to_vec();
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

/// A version-9 file with the Redis ≤ 6 ziplist encodings, built by hand.
fn ziplist_file_v9() -> Vec<u8> {
    let mut body = vec![0xFE, 0x00];
    body.push(14); // LIST_QUICKLIST: nodes of ziplists
    raw_string(&mut body, b"q");
    body.push(2);
    raw_string(&mut body, &ziplist(&[b"a", b"b"]));
    raw_string(&mut body, &ziplist(&[b"c"]));
    body.push(10); // LIST_ZIPLIST
    raw_string(&mut body, b"lz");
    raw_string(&mut body, &ziplist(&[b"x"]));
    body.push(13); // HASH_ZIPLIST
    raw_string(&mut body, b"hz");
    raw_string(&mut body, &ziplist(&[b"f", b"v"]));
    body.push(12); // ZSET_ZIPLIST
    raw_string(&mut body, b"zz");
    raw_string(&mut body, &ziplist(&[b"m", b"0.5"]));
    hand_file(9, &body)
}

#[test]
fn redis6_ziplist_encodings_decode() {
    let (entries, summary) = read_all(&ziplist_file_v9()).unwrap();
    assert_eq!(summary.version, 9);
    let values: Vec<RdbValue> = entries.into_iter().map(|e| e.value).collect();
    assert_eq!(
        values,
        vec![
            RdbValue::List(vec![b(b"a"), b(b"b"), b(b"c")]),
            RdbValue::List(vec![b(b"x")]),
            RdbValue::Hash(vec![(b(b"f"), b(b"v"))]),
            RdbValue::ZSet(vec![(b(b"m"), 0.5)]),
        ]
    );
    let mut odd = vec![13];
    raw_string(&mut odd, b"hz");
    raw_string(&mut odd, &ziplist(&[b"f"]));
    let err = read_all(&hand_file(9, &odd)).unwrap_err();
    assert!(err.to_string().contains("odd element count"), "{err}");
}

#[test]
fn old_versions_without_checksum_and_zero_checksums_load() {
    let mut body = vec![0];
    raw_string(&mut body, b"k");
    raw_string(&mut body, b"v");
    let (entries, summary) = read_all(&hand_file(3, &body)).unwrap();
    assert_eq!(entries.len(), 1);
    assert!(!summary.checksum_verified);
    let mut zeroed = hand_file(9, &body);
    let n = zeroed.len();
    zeroed[n - 8..].fill(0);
    let (_, summary) = read_all(&zeroed).unwrap();
    assert!(!summary.checksum_verified);
}

#[test]
fn header_and_trailer_errors_are_clear() {
    let (file, _) = sample_file(true);
    assert_eq!(read_all(b"REDIX0010").unwrap_err(), RdbError::BadMagic);
    assert_eq!(read_all(b"RED").unwrap_err(), RdbError::BadMagic);
    let mut newer = file.clone();
    newer[5..9].copy_from_slice(b"0011");
    let err = read_all(&newer).unwrap_err();
    assert_eq!(err, RdbError::UnsupportedVersion { found: 11 });
    assert!(err.to_string().contains("reads versions 1 to 10"), "{err}");
    let mut flipped = file.clone();
    flipped[40] ^= 0x01;
    let err = read_all(&flipped).unwrap_err();
    let trailer = (file.len() - 8) as u64;
    assert!(
        matches!(err, RdbError::ChecksumMismatch { trailer_offset, .. } if trailer_offset == trailer),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("offset {trailer}")),
        "{err}"
    );
    let err = read_all(&file[..file.len() - 1]).unwrap_err();
    assert!(matches!(err, RdbError::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn structural_errors_name_the_offset() {
    // A string claiming more bytes than remain.
    let mut body = vec![0];
    raw_string(&mut body, b"k");
    body.extend([0x80, 0x00, 0x0F, 0xFF, 0xFF]);
    let err = read_all(&hand_file(10, &body)).unwrap_err();
    assert!(
        matches!(err, RdbError::Truncated { offset: 17, .. }),
        "{err}"
    );
    // An unknown value type.
    let err = read_all(&hand_file(10, &[0x2A])).unwrap_err();
    assert_eq!(
        err,
        RdbError::UnknownType {
            offset: 9,
            type_byte: 0x2A
        }
    );
    // MODULE_AUX (247) and a stream (19) are refused by type, not misread.
    for code in [247u8, 19] {
        let err = read_all(&hand_file(10, &[code, 0x01, b'k'])).unwrap_err();
        assert_eq!(
            err,
            RdbError::UnknownType {
                offset: 9,
                type_byte: code
            }
        );
    }
    // A list claiming 2^40 elements.
    let mut body = vec![1];
    raw_string(&mut body, b"k");
    put_len(&mut body, 1 << 40);
    assert!(matches!(
        read_all(&hand_file(10, &body)).unwrap_err(),
        RdbError::Truncated { .. }
    ));
    // Bytes after EOF (trailer recomputed so only the structure is wrong).
    let mut f = b"REDIS0010\xFF\xFF".to_vec();
    let crc = crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        read_all(&f).unwrap_err(),
        RdbError::Corrupt { offset: 10, .. }
    ));
    // No EOF.
    assert!(matches!(
        read_all(b"REDIS0003").unwrap_err(),
        RdbError::Truncated { .. }
    ));
    // An LZF string claiming an impossible expansion.
    let mut body = vec![0];
    raw_string(&mut body, b"k");
    body.extend([0xC3, 0x02, 0x80, 0x01, 0, 0, 0, 0x00, b'a']);
    assert!(matches!(
        read_all(&hand_file(10, &body)).unwrap_err(),
        RdbError::Corrupt { offset: 12, .. }
    ));
}

#[test]
fn visitor_errors_stop_the_read() {
    let (file, _) = sample_file(true);
    let mut seen = 0;
    let err = read_rdb(&file, |_| {
        seen += 1;
        if seen == 3 {
            Err("no room".to_string())
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(
        matches!(&err, RdbError::Visitor { detail, .. } if detail == "no room"),
        "{err}"
    );
    assert_eq!(seen, 3);
}

/// Rewrites the trailer so mutations reach the parser instead of failing the CRC check.
fn fix_crc(file: &mut [u8]) {
    if file.len() >= 17 {
        let n = file.len() - 8;
        let crc = crc64(&file[..n]);
        file[n..].copy_from_slice(&crc.to_le_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        which in 0u8..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
        recrc in any::<bool>(),
    ) {
        let mut file = match which {
            0 => sample_file(true).0,
            1 => sample_file(false).0,
            2 => compact_file_v10(),
            _ => ziplist_file_v9(),
        };
        for (at, byte, kind) in edits {
            let i = at.index(file.len());
            match kind {
                0 => file[i] = byte,
                1 => file[i] ^= 1 << (byte % 8),
                2 => file.insert(i, byte),
                _ => { file.remove(i); }
            }
        }
        if do_cut {
            let n = cut.index(file.len());
            file.truncate(n);
        }
        if recrc {
            fix_crc(&mut file);
        }
        let result = read_all(&file);
        if let Err(e) = &result {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn arbitrary_strings_round_trip(
        pairs in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 0..200)), 1..20),
        ints in prop::collection::vec(any::<i64>(), 0..10),
    ) {
        let mut w = RdbWriter::new(header(true));
        let mut expected = Vec::new();
        for (k, v) in &pairs {
            w.write_string(k, v, None).unwrap();
            expected.push((b(k), b(v)));
        }
        for n in &ints {
            let v = n.to_string();
            w.write_string(v.as_bytes(), v.as_bytes(), Some(*n as u64)).unwrap();
            expected.push((b(v.as_bytes()), b(v.as_bytes())));
        }
        let (entries, _) = read_all(&w.finish()).unwrap();
        let got: Vec<(Bytes, Bytes)> = entries
            .into_iter()
            .map(|e| match e.value { RdbValue::Str(v) => (e.key, v), other => panic!("{other:?}") })
            .collect();
        prop_assert_eq!(got, expected);
    }
}
