//! Decoders for the compact payloads Redis stores inside RDB strings: listpacks (Redis 7:
//! RDB_TYPE_HASH_LISTPACK, ZSET_LISTPACK, LIST_QUICKLIST_2 nodes), intsets
//! (RDB_TYPE_SET_INTSET) and ziplists (Redis ≤ 6 dumps: LIST_ZIPLIST, ZSET_ZIPLIST,
//! HASH_ZIPLIST, LIST_QUICKLIST nodes). Formats: the Redis listpack spec (`listpack.md`),
//! the `intset.c` and `ziplist.c` layouts — facts about the bytes, no code carried over.
//!
//! Listpack: `<total-bytes u32 LE> <num-elements u16 LE, 65535 = unknown> <entry>* 0xFF`;
//! each entry is `<encoding+data> <backlen>` where backlen (1–5 bytes) encodes the length
//! of encoding+data, readable right to left. Intset: `<encoding u32 LE: 2|4|8> <length u32
//! LE> <length × encoding bytes, LE signed, strictly increasing>`. Ziplist: `<zlbytes u32
//! LE> <zltail u32 LE> <zllen u16 LE, 65535 = unknown> <entry>* 0xFF`; each entry is
//! `<prevlen: 1 byte < 254, or 0xFE + u32 LE> <encoding> <data>`.
//!
//! What can fail: every bound and count is checked against the payload; violations are
//! `Err(detail)` with the offset inside the payload (the caller adds the file offset).
//! Loops only, no recursion, allocation bounded by the payload size.

use bytes::Bytes;

/// Listpack header: total bytes (4) + element count (2).
const LP_HEADER_LEN_BYTES: usize = 6;
/// The element count value meaning "count it yourself".
const LP_NUMELE_UNKNOWN: u16 = u16::MAX;
const LP_EOF: u8 = 0xFF;
/// Intset header: encoding (4) + length (4).
const INTSET_HEADER_LEN_BYTES: usize = 8;

/// One listpack element: a string or an integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LpItem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl LpItem<'_> {
    /// The element as Redis would return it: integers in decimal.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            LpItem::Str(s) => Bytes::copy_from_slice(s),
            LpItem::Int(v) => Bytes::from(v.to_string()),
        }
    }
}

fn le_uint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The backlen bytes for an entry whose encoding+data is `len` bytes (listpack spec).
fn encode_backlen(len: usize) -> ([u8; 5], usize) {
    let size = match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    let mut out = [0u8; 5];
    for (i, slot) in out.iter_mut().take(size).enumerate() {
        let shift = 7 * (size - 1 - i);
        let group = ((len >> shift) & 127) as u8;
        *slot = if i == 0 { group } else { group | 128 };
    }
    (out, size)
}

/// Decodes every element of the listpack `lp`.
pub(crate) fn decode_listpack(lp: &[u8]) -> Result<Vec<LpItem<'_>>, String> {
    if lp.len() < LP_HEADER_LEN_BYTES + 1 {
        return Err(format!(
            "listpack of {} bytes is shorter than its header",
            lp.len()
        ));
    }
    let total = le_uint(&lp[0..4]);
    if total != lp.len() as u64 {
        return Err(format!(
            "listpack header says {total} bytes but the payload is {}",
            lp.len()
        ));
    }
    let declared = le_uint(&lp[4..6]) as u16;
    let mut items = Vec::new();
    let mut pos = LP_HEADER_LEN_BYTES;
    loop {
        let Some(&b) = lp.get(pos) else {
            return Err(format!(
                "listpack ends at {pos} without its 0xFF terminator"
            ));
        };
        if b == LP_EOF {
            if pos + 1 != lp.len() {
                return Err(format!("listpack terminator at {pos} is not the last byte"));
            }
            break;
        }
        let (item, entry_len) = decode_entry(lp, pos)?;
        let (backlen, size) = encode_backlen(entry_len);
        let back_at = pos + entry_len;
        if lp.get(back_at..back_at + size) != Some(&backlen[..size]) {
            return Err(format!("listpack entry at {pos}: bad or missing backlen"));
        }
        items.push(item);
        pos = back_at + size;
    }
    if declared != LP_NUMELE_UNKNOWN && usize::from(declared) != items.len() {
        return Err(format!(
            "listpack header says {declared} elements but holds {}",
            items.len()
        ));
    }
    Ok(items)
}

/// Decodes the entry at `pos`: the element and the length of its encoding+data.
fn decode_entry(lp: &[u8], pos: usize) -> Result<(LpItem<'_>, usize), String> {
    let b = lp[pos];
    let field = |from: usize, n: usize| {
        lp.get(pos + from..pos + from + n)
            .ok_or_else(|| format!("listpack entry at {pos} runs past the payload"))
    };
    // (header bytes, string length) for strings; (header bytes, value) for integers.
    let (header, str_len) = match b {
        0x00..=0x7F => return Ok((LpItem::Int(i64::from(b)), 1)),
        0x80..=0xBF => (1, usize::from(b & 0x3f)),
        0xC0..=0xDF => {
            let v = (u64::from(b & 0x1f) << 8) | u64::from(field(1, 1)?[0]);
            return Ok((LpItem::Int(sign_extend(v, 13)), 2));
        }
        0xE0..=0xEF => (
            2,
            (usize::from(b & 0x0f) << 8) | usize::from(field(1, 1)?[0]),
        ),
        0xF0 => (5, le_uint(field(1, 4)?) as usize),
        0xF1..=0xF4 => {
            let n = [2usize, 3, 4, 8][usize::from(b - 0xF1)];
            let v = le_uint(field(1, n)?);
            return Ok((LpItem::Int(sign_extend(v, 8 * n as u32)), 1 + n));
        }
        _ => {
            return Err(format!(
                "listpack entry at {pos} has invalid encoding byte {b:#04x}"
            ))
        }
    };
    let s = field(header, str_len)?;
    Ok((LpItem::Str(s), header + str_len))
}

/// Ziplist header: zlbytes (4) + zltail (4) + zllen (2).
const ZL_HEADER_LEN_BYTES: usize = 10;
/// A prevlen first byte announcing a 4-byte prevlen.
const ZL_PREVLEN_BIG: u8 = 0xFE;

/// Decodes every element of the ziplist `zl`, checking zlbytes, zltail, zllen and every
/// entry's prevlen.
pub(crate) fn decode_ziplist(zl: &[u8]) -> Result<Vec<LpItem<'_>>, String> {
    if zl.len() < ZL_HEADER_LEN_BYTES + 1 {
        return Err(format!(
            "ziplist of {} bytes is shorter than its header",
            zl.len()
        ));
    }
    let total = le_uint(&zl[0..4]);
    if total != zl.len() as u64 {
        return Err(format!(
            "ziplist header says {total} bytes but the payload is {}",
            zl.len()
        ));
    }
    let tail = le_uint(&zl[4..8]) as usize;
    let declared = le_uint(&zl[8..10]) as u16;
    let mut items = Vec::new();
    let mut pos = ZL_HEADER_LEN_BYTES;
    let mut prev_len = 0usize;
    let mut last_start = ZL_HEADER_LEN_BYTES;
    loop {
        let Some(&first) = zl.get(pos) else {
            return Err(format!("ziplist ends at {pos} without its 0xFF terminator"));
        };
        if first == LP_EOF {
            if pos + 1 != zl.len() {
                return Err(format!("ziplist terminator at {pos} is not the last byte"));
            }
            break;
        }
        let (prevlen, prevlen_size) = if first == ZL_PREVLEN_BIG {
            let bytes = zl
                .get(pos + 1..pos + 5)
                .ok_or_else(|| format!("ziplist entry at {pos} truncated"))?;
            (le_uint(bytes) as usize, 5)
        } else {
            (usize::from(first), 1)
        };
        if prevlen != prev_len {
            return Err(format!(
                "ziplist entry at {pos}: prevlen {prevlen}, previous entry is {prev_len} bytes"
            ));
        }
        let (item, body_len) = decode_zl_body(zl, pos + prevlen_size)?;
        last_start = pos;
        prev_len = prevlen_size + body_len;
        items.push(item);
        pos += prev_len;
    }
    if tail != last_start {
        return Err(format!(
            "ziplist zltail {tail} does not point at the last entry ({last_start})"
        ));
    }
    if declared != LP_NUMELE_UNKNOWN && usize::from(declared) != items.len() {
        return Err(format!(
            "ziplist header says {declared} elements but holds {}",
            items.len()
        ));
    }
    Ok(items)
}

/// Decodes a ziplist entry's encoding+data at `pos`: the element and its byte length.
fn decode_zl_body(zl: &[u8], pos: usize) -> Result<(LpItem<'_>, usize), String> {
    let field = |from: usize, n: usize| {
        zl.get(pos + from..pos + from + n)
            .ok_or_else(|| format!("ziplist entry at {pos} runs past the payload"))
    };
    let b = field(0, 1)?[0];
    let (header, str_len) = match b {
        0x00..=0x3F => (1, usize::from(b)),
        0x40..=0x7F => (
            2,
            (usize::from(b & 0x3f) << 8) | usize::from(field(1, 1)?[0]),
        ),
        0x80..=0xBF => {
            let len = field(1, 4)?
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
            (5, len)
        }
        0xF1..=0xFD => return Ok((LpItem::Int(i64::from(b & 0x0f) - 1), 1)),
        0xC0 | 0xD0 | 0xE0 | 0xF0 | 0xFE => {
            let n = match b {
                0xC0 => 2,
                0xD0 => 4,
                0xE0 => 8,
                0xF0 => 3,
                _ => 1,
            };
            let v = le_uint(field(1, n)?);
            return Ok((LpItem::Int(sign_extend(v, 8 * n as u32)), 1 + n));
        }
        _ => {
            return Err(format!(
                "ziplist entry at {pos} has invalid encoding byte {b:#04x}"
            ))
        }
    };
    Ok((LpItem::Str(field(header, str_len)?), header + str_len))
}

/// Decodes an intset into its members as decimal strings, in (ascending) stored order.
pub(crate) fn decode_intset(blob: &[u8]) -> Result<Vec<Bytes>, String> {
    if blob.len() < INTSET_HEADER_LEN_BYTES {
        return Err(format!(
            "intset of {} bytes is shorter than its header",
            blob.len()
        ));
    }
    let width = le_uint(&blob[0..4]);
    let count = le_uint(&blob[4..8]);
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("intset encoding {width} is not 2, 4 or 8"));
    }
    let body = &blob[INTSET_HEADER_LEN_BYTES..];
    if count.checked_mul(width) != Some(body.len() as u64) {
        return Err(format!(
            "intset says {count} × {width} bytes but holds {}",
            body.len()
        ));
    }
    if count == 0 {
        return Err("intset is empty".to_string());
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut prev: Option<i64> = None;
    for chunk in body.chunks_exact(width as usize) {
        let v = sign_extend(le_uint(chunk), 8 * width as u32);
        if prev.is_some_and(|p| p >= v) {
            return Err(format!("intset members are not strictly increasing at {v}"));
        }
        prev = Some(v);
        out.push(Bytes::from(v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listpack(entries: &[&[u8]], count: u16) -> Vec<u8> {
        let mut body: Vec<u8> = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            let (bl, n) = encode_backlen(e.len());
            body.extend_from_slice(&bl[..n]);
        }
        let total = (LP_HEADER_LEN_BYTES + body.len() + 1) as u32;
        let mut lp = total.to_le_bytes().to_vec();
        lp.extend_from_slice(&count.to_le_bytes());
        lp.extend_from_slice(&body);
        lp.push(LP_EOF);
        lp
    }

    #[test]
    fn every_entry_encoding_decodes() {
        let long = vec![b'x'; 300];
        let mut e12 = vec![0xE0 | (300 >> 8) as u8, (300 & 0xff) as u8];
        e12.extend_from_slice(&long);
        let entries: Vec<&[u8]> = vec![
            &[0x05],                            // 7-bit uint 5
            &[0x83, b'a', b'b', b'c'],          // 6-bit string "abc"
            &[0xDF, 0xFF],                      // 13-bit int -1
            &[0xC0 | 0x0F, 0xFF],               // 13-bit int 4095
            &e12,                               // 12-bit string
            &[0xF1, 0x00, 0x80],                // i16 -32768
            &[0xF2, 0xFF, 0xFF, 0x7F],          // i24 8388607
            &[0xF3, 0xFE, 0xFF, 0xFF, 0xFF],    // i32 -2
            &[0xF4, 1, 0, 0, 0, 0, 0, 0, 0x80], // i64 i64::MIN + 1
            &[0xF0, 2, 0, 0, 0, b'h', b'i'],    // 32-bit string "hi"
        ];
        let lp = listpack(&entries, entries.len() as u16);
        let items = decode_listpack(&lp).unwrap();
        assert_eq!(
            items,
            vec![
                LpItem::Int(5),
                LpItem::Str(b"abc"),
                LpItem::Int(-1),
                LpItem::Int(4095),
                LpItem::Str(&long),
                LpItem::Int(-32768),
                LpItem::Int(8_388_607),
                LpItem::Int(-2),
                LpItem::Int(i64::MIN + 1),
                LpItem::Str(b"hi"),
            ]
        );
        assert_eq!(
            decode_listpack(&listpack(&entries, LP_NUMELE_UNKNOWN))
                .unwrap()
                .len(),
            10
        );
        assert!(decode_listpack(&listpack(&entries, 3)).is_err());
    }

    #[test]
    fn backlen_matches_spec_examples() {
        assert_eq!(encode_backlen(127), ([127, 0, 0, 0, 0], 1));
        // 500 = 3 * 128 + 116: the byte nearest the entry holds the high bits.
        assert_eq!(encode_backlen(500), ([3, 116 | 128, 0, 0, 0], 2));
    }

    #[test]
    fn corrupt_listpacks_are_refused() {
        let good = listpack(&[&[0x83, b'a', b'b', b'c']], 1);
        assert!(decode_listpack(&good).is_ok());
        let mut bad_total = good.clone();
        bad_total[0] += 1;
        assert!(decode_listpack(&bad_total).is_err());
        let mut bad_backlen = good.clone();
        bad_backlen[10] = 9;
        assert!(decode_listpack(&bad_backlen).is_err());
        let mut long_str = good.clone();
        long_str[6] = 0xBF;
        assert!(decode_listpack(&long_str).is_err());
        let mut bad_enc = good;
        bad_enc[6] = 0xF7;
        assert!(decode_listpack(&bad_enc).is_err());
    }

    fn ziplist(bodies: &[&[u8]]) -> Vec<u8> {
        let mut entries = Vec::new();
        let mut prev = 0usize;
        let mut tail = ZL_HEADER_LEN_BYTES;
        for body in bodies {
            tail = ZL_HEADER_LEN_BYTES + entries.len();
            let mut e = if prev < 254 {
                vec![prev as u8]
            } else {
                [&[0xFE][..], &(prev as u32).to_le_bytes()].concat()
            };
            e.extend_from_slice(body);
            prev = e.len();
            entries.extend_from_slice(&e);
        }
        let total = (ZL_HEADER_LEN_BYTES + entries.len() + 1) as u32;
        let mut zl = total.to_le_bytes().to_vec();
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&(bodies.len() as u16).to_le_bytes());
        zl.extend_from_slice(&entries);
        zl.push(LP_EOF);
        zl
    }

    #[test]
    fn every_ziplist_encoding_decodes() {
        let long = vec![b'z'; 300];
        let s14 = [&[0x40 | 1u8, 44][..], &long].concat(); // 14-bit length 300
        let entries: Vec<&[u8]> = vec![
            &[0x03, b'a', b'b', b'c'],          // 6-bit string
            &s14, // 14-bit string (pushes the next prevlen to 5 bytes)
            &[0x80, 0, 0, 0, 2, b'h', b'i'], // 32-bit BE length string
            &[0xF1], // immediate 0
            &[0xFD], // immediate 12
            &[0xFE, 0x80], // i8 -128
            &[0xC0, 0x00, 0x80], // i16 -32768
            &[0xF0, 0xFF, 0xFF, 0x7F], // i24 8388607
            &[0xD0, 0xFE, 0xFF, 0xFF, 0xFF], // i32 -2
            &[0xE0, 0, 0, 0, 0, 0, 0, 0, 0x80], // i64 MIN
        ];
        let zl = ziplist(&entries);
        let items = decode_ziplist(&zl).unwrap();
        assert_eq!(
            items,
            vec![
                LpItem::Str(b"abc"),
                LpItem::Str(&long),
                LpItem::Str(b"hi"),
                LpItem::Int(0),
                LpItem::Int(12),
                LpItem::Int(-128),
                LpItem::Int(-32768),
                LpItem::Int(8_388_607),
                LpItem::Int(-2),
                LpItem::Int(i64::MIN),
            ]
        );
        let mut bad_tail = zl.clone();
        bad_tail[4] ^= 1;
        assert!(decode_ziplist(&bad_tail).is_err());
        let mut bad_prevlen = zl.clone();
        bad_prevlen[ZL_HEADER_LEN_BYTES + 5] = 9;
        assert!(decode_ziplist(&bad_prevlen).is_err());
        let mut bad_enc = zl;
        bad_enc[ZL_HEADER_LEN_BYTES + 1] = 0xC1;
        assert!(decode_ziplist(&bad_enc).is_err());
    }

    #[test]
    fn intsets_decode_and_validate() {
        let mut blob = vec![2, 0, 0, 0, 3, 0, 0, 0];
        for v in [-5i16, 7, 300] {
            blob.extend_from_slice(&v.to_le_bytes());
        }
        let members = decode_intset(&blob).unwrap();
        assert_eq!(
            members,
            vec![Bytes::from("-5"), Bytes::from("7"), Bytes::from("300")]
        );
        let mut unsorted = blob.clone();
        unsorted.swap(8, 10);
        unsorted.swap(9, 11);
        assert!(decode_intset(&unsorted).is_err());
        assert!(decode_intset(&blob[..11]).is_err());
        let mut bad_width = blob;
        bad_width[0] = 3;
        assert!(decode_intset(&bad_width).is_err());
    }
}
