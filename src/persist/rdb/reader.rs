//! [`read_rdb`]: validates an RDB file (versions 1–10) and hands every key to a visitor.
//!
//! Order of checks: magic and version; then (version ≥ 5, non-zero trailer) the CRC-64 of
//! everything before the 8-byte trailer, so nothing from a corrupt file reaches the
//! visitor; then every opcode and value, which must end with EOF exactly at the trailer.
//! Read: AUX, SELECTDB, RESIZEDB, EXPIRETIME(_MS), FREQ/IDLE (skipped), FUNCTION2 (skipped),
//! EOF; strings raw / int8-16-32 / LZF; values STRING, LIST, SET, ZSET, HASH, ZSET_2,
//! SET_INTSET, HASH_LISTPACK, ZSET_LISTPACK, LIST_QUICKLIST_2 (Redis 7), and the Redis ≤ 6
//! ziplist forms LIST_ZIPLIST, ZSET_ZIPLIST, HASH_ZIPLIST, LIST_QUICKLIST.
//!
//! What can fail: anything malformed → an [`RdbError`] with the byte offset. Every claimed
//! length is checked against the bytes that remain before anything is allocated; no
//! recursion; no panics on any input.

use bytes::Bytes;

use super::crc64::crc64;
use super::listpack::{decode_intset, decode_listpack, decode_ziplist, LpItem};
use super::{
    lzf, op, ty, RdbEntry, RdbError, RdbSummary, RdbValue, RDB_CHECKSUM_LEN_BYTES,
    RDB_HEADER_LEN_BYTES, RDB_STRING_LEN_MAX_BYTES, RDB_VERSION,
};

/// First version with the CRC-64 trailer.
const CHECKSUM_SINCE_VERSION: u32 = 5;
/// Quicklist node container kinds (Redis `quicklist.h`).
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;
/// The value types [`read_value`] decodes.
const KNOWN_TYPES: [u8; 14] = [
    ty::STRING,
    ty::LIST,
    ty::SET,
    ty::ZSET,
    ty::HASH,
    ty::ZSET_2,
    ty::SET_INTSET,
    ty::LIST_ZIPLIST,
    ty::ZSET_ZIPLIST,
    ty::HASH_ZIPLIST,
    ty::LIST_QUICKLIST,
    ty::HASH_LISTPACK,
    ty::ZSET_LISTPACK,
    ty::LIST_QUICKLIST_2,
];
/// Most collection slots reserved up front; beyond this vectors grow with the data read,
/// so a corrupt count cannot reserve memory out of proportion to the input.
const PREALLOC_ITEMS_MAX: usize = 4096;
/// Largest output LZF can produce per input byte (a 3-byte reference yields 264 bytes).
const LZF_EXPANSION_MAX: u64 = 88;

/// Reads the RDB file `bytes`, calling `visit` for every non-empty key in file order.
/// Expire times come out absolute in ms; keys already past their expire time are passed
/// on too (the caller drops them, as a Redis master does on load). Nothing reaches the
/// visitor before the CRC-64 trailer has been checked. Errors: see [`RdbError`]; a
/// visitor `Err` aborts the read as [`RdbError::Visitor`].
pub fn read_rdb(
    bytes: &[u8],
    mut visit: impl FnMut(RdbEntry) -> Result<(), String>,
) -> Result<RdbSummary, RdbError> {
    let version = parse_header(bytes)?;
    let mut summary = RdbSummary {
        version,
        ..RdbSummary::default()
    };
    let body = checked_body(bytes, version, &mut summary)?;
    let mut cur = Cursor {
        data: body,
        pos: RDB_HEADER_LEN_BYTES,
    };
    let mut db = 0u32;
    let mut expire_ms: Option<u64> = None;
    loop {
        let at = cur.pos;
        let code = cur.u8("an opcode or value type")?;
        match code {
            op::EOF => break,
            op::AUX => {
                let name = cur.string()?;
                let value = cur.string()?;
                summary.aux.push((name, value));
            }
            op::SELECTDB => {
                let n = cur.plain_len("SELECTDB index")?;
                db = u32::try_from(n)
                    .map_err(|_| cur.corrupt(at, format!("database index {n} out of range")))?;
            }
            op::RESIZEDB => {
                cur.plain_len("RESIZEDB db size")?;
                cur.plain_len("RESIZEDB expires size")?;
            }
            op::EXPIRETIME_MS => {
                expire_ms = Some(u64::from_le_bytes(cur.array::<8>("EXPIRETIME_MS")?))
            }
            op::EXPIRETIME => {
                // Seconds as a signed 32-bit value (Redis `rdbLoadTime`); negative is long past.
                let secs = i32::from_le_bytes(cur.array::<4>("EXPIRETIME")?);
                expire_ms = Some(u64::try_from(secs).unwrap_or(0) * 1000);
            }
            op::FREQ => {
                cur.u8("FREQ value")?;
            }
            op::IDLE => {
                cur.plain_len("IDLE value")?;
            }
            op::FUNCTION2 => {
                cur.string()?;
                summary.functions_skipped += 1;
            }
            // MODULE_AUX (247), the pre-GA FUNCTION opcode (246), streams, modules, zipmaps.
            _ if !KNOWN_TYPES.contains(&code) => {
                return Err(RdbError::UnknownType {
                    offset: at as u64,
                    type_byte: code,
                });
            }
            _ => {
                let key = cur.string()?;
                let value = read_value(&mut cur, code, at)?;
                if is_empty(&value) {
                    summary.empty_keys_skipped += 1;
                } else {
                    summary.keys += 1;
                    summary.expires += u64::from(expire_ms.is_some());
                    let entry = RdbEntry {
                        db,
                        key,
                        value,
                        expire_ms,
                    };
                    visit(entry).map_err(|detail| RdbError::Visitor {
                        offset: at as u64,
                        detail,
                    })?;
                }
                expire_ms = None;
            }
        }
    }
    if cur.pos != body.len() {
        let detail = format!("{} bytes after the EOF opcode", body.len() - cur.pos);
        return Err(RdbError::Corrupt {
            offset: cur.pos as u64,
            detail,
        });
    }
    Ok(summary)
}

/// The file without its CRC-64 trailer (versions ≥ 5), after checking the trailer; a zero
/// trailer (`rdbchecksum no`) is accepted unverified.
fn checked_body<'a>(
    bytes: &'a [u8],
    version: u32,
    summary: &mut RdbSummary,
) -> Result<&'a [u8], RdbError> {
    if version < CHECKSUM_SINCE_VERSION {
        return Ok(bytes);
    }
    if bytes.len() < RDB_HEADER_LEN_BYTES + 1 + RDB_CHECKSUM_LEN_BYTES {
        let detail = "no room for the EOF opcode and the 8-byte checksum".to_string();
        let offset = bytes.len() as u64;
        return Err(RdbError::Truncated { offset, detail });
    }
    let trailer_offset = bytes.len() - RDB_CHECKSUM_LEN_BYTES;
    let (body, trailer) = bytes.split_at(trailer_offset);
    let stored = u64::from_le_bytes(trailer.try_into().unwrap_or([0; 8]));
    if stored != 0 {
        let computed = crc64(body);
        if computed != stored {
            let trailer_offset = trailer_offset as u64;
            return Err(RdbError::ChecksumMismatch {
                trailer_offset,
                stored,
                computed,
            });
        }
        summary.checksum_verified = true;
    }
    Ok(body)
}

/// Checks `REDIS` + 4 ASCII digits and returns the version (1..=10).
fn parse_header(bytes: &[u8]) -> Result<u32, RdbError> {
    let Some(header) = bytes.get(..RDB_HEADER_LEN_BYTES) else {
        return Err(RdbError::BadMagic);
    };
    if &header[..5] != b"REDIS" || !header[5..].iter().all(u8::is_ascii_digit) {
        return Err(RdbError::BadMagic);
    }
    let version = header[5..]
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    if version == 0 || version > RDB_VERSION {
        return Err(RdbError::UnsupportedVersion { found: version });
    }
    Ok(version)
}

fn is_empty(value: &RdbValue) -> bool {
    match value {
        RdbValue::Str(_) => false,
        RdbValue::List(v) | RdbValue::Set(v) => v.is_empty(),
        RdbValue::Hash(v) => v.is_empty(),
        RdbValue::ZSet(v) => v.is_empty(),
    }
}

/// A length field: a plain length, or the special string encoding in the low 6 bits.
enum Len {
    Plain(u64),
    Special(u8),
}

/// A read position in the file body (trailer excluded).
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn corrupt(&self, offset: usize, detail: String) -> RdbError {
        RdbError::Corrupt {
            offset: offset as u64,
            detail,
        }
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], RdbError> {
        if n > self.remaining() as u64 {
            let detail = format!("{what} needs {n} bytes, {} remain", self.remaining());
            return Err(RdbError::Truncated {
                offset: self.pos as u64,
                detail,
            });
        }
        let slice = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, RdbError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], RdbError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn len(&mut self, what: &str) -> Result<Len, RdbError> {
        let at = self.pos;
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8(what)?)),
            2 if b == 0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array::<4>(what)?))),
            2 if b == 0x81 => Len::Plain(u64::from_be_bytes(self.array::<8>(what)?)),
            2 => {
                return Err(self.corrupt(at, format!("unknown length encoding {b:#04x} for {what}")))
            }
            _ => Len::Special(b & 0x3f),
        })
    }

    fn plain_len(&mut self, what: &str) -> Result<u64, RdbError> {
        let at = self.pos;
        match self.len(what)? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => {
                Err(self.corrupt(at, format!("{what} uses a string encoding, not a length")))
            }
        }
    }

    /// A count of items that each take at least one byte: bounded by the input left.
    fn count(&mut self, what: &str) -> Result<usize, RdbError> {
        let at = self.pos;
        let n = self.plain_len(what)?;
        if n > self.remaining() as u64 {
            let detail = format!(
                "{what} claims {n} items but only {} bytes remain",
                self.remaining()
            );
            return Err(RdbError::Truncated {
                offset: at as u64,
                detail,
            });
        }
        Ok(n as usize)
    }

    /// An RDB string in any encoding.
    fn string(&mut self) -> Result<Bytes, RdbError> {
        let at = self.pos;
        match self.len("a string length")? {
            Len::Plain(n) => {
                if n > RDB_STRING_LEN_MAX_BYTES {
                    return Err(self.corrupt(
                        at,
                        format!("string length {n} exceeds {RDB_STRING_LEN_MAX_BYTES}"),
                    ));
                }
                Ok(Bytes::copy_from_slice(self.take(n, "a string")?))
            }
            Len::Special(0) => Ok(Bytes::from(
                i8::from_le_bytes(self.array::<1>("an int8 string")?).to_string(),
            )),
            Len::Special(1) => Ok(Bytes::from(
                i16::from_le_bytes(self.array::<2>("an int16 string")?).to_string(),
            )),
            Len::Special(2) => Ok(Bytes::from(
                i32::from_le_bytes(self.array::<4>("an int32 string")?).to_string(),
            )),
            Len::Special(3) => self.lzf_string(at),
            Len::Special(e) => Err(self.corrupt(at, format!("unknown string encoding {e}"))),
        }
    }

    fn lzf_string(&mut self, at: usize) -> Result<Bytes, RdbError> {
        let clen = self.plain_len("an LZF compressed length")?;
        let ulen = self.plain_len("an LZF uncompressed length")?;
        if ulen > RDB_STRING_LEN_MAX_BYTES || ulen > clen.saturating_mul(LZF_EXPANSION_MAX) {
            return Err(self.corrupt(
                at,
                format!("LZF string claims {ulen} bytes from {clen} compressed"),
            ));
        }
        let packed = self.take(clen, "an LZF string")?;
        let out = lzf::decompress(packed, ulen as usize).map_err(|d| self.corrupt(at, d))?;
        Ok(Bytes::from(out))
    }

    fn binary_double(&mut self, what: &str) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.array::<8>(what)?))
    }

    /// ZSET (type 3) score: length byte (253 NaN, 254 +inf, 255 -inf) + ASCII digits.
    fn text_double(&mut self) -> Result<f64, RdbError> {
        let at = self.pos;
        match self.u8("a score length")? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(u64::from(n), "a score")?;
                parse_score(text).ok_or_else(|| self.corrupt(at, "unparsable score".to_string()))
            }
        }
    }
}

fn parse_score(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse::<f64>().ok()
}

fn check_score(cur: &Cursor<'_>, at: usize, score: f64) -> Result<f64, RdbError> {
    if score.is_nan() {
        return Err(cur.corrupt(at, "sorted-set score is NaN".to_string()));
    }
    Ok(score)
}

/// Reads the value of type `code` (the entry started at `entry_at`).
fn read_value(cur: &mut Cursor<'_>, code: u8, entry_at: usize) -> Result<RdbValue, RdbError> {
    match code {
        ty::STRING => Ok(RdbValue::Str(cur.string()?)),
        ty::LIST | ty::SET => {
            let n = cur.count("a list/set length")?;
            let mut items = Vec::with_capacity(n.min(PREALLOC_ITEMS_MAX));
            for _ in 0..n {
                items.push(cur.string()?);
            }
            Ok(if code == ty::LIST {
                RdbValue::List(items)
            } else {
                RdbValue::Set(items)
            })
        }
        ty::HASH => {
            let n = cur.count("a hash length")?;
            let mut pairs = Vec::with_capacity(n.min(PREALLOC_ITEMS_MAX));
            for _ in 0..n {
                pairs.push((cur.string()?, cur.string()?));
            }
            Ok(RdbValue::Hash(pairs))
        }
        ty::ZSET | ty::ZSET_2 => {
            let n = cur.count("a sorted-set length")?;
            let mut items = Vec::with_capacity(n.min(PREALLOC_ITEMS_MAX));
            for _ in 0..n {
                let member = cur.string()?;
                let at = cur.pos;
                let score = if code == ty::ZSET {
                    cur.text_double()?
                } else {
                    cur.binary_double("a score")?
                };
                items.push((member, check_score(cur, at, score)?));
            }
            Ok(RdbValue::ZSet(items))
        }
        ty::SET_INTSET => {
            let at = cur.pos;
            let blob = cur.string()?;
            let members = decode_intset(&blob).map_err(|d| payload_error(cur, at, "intset", d))?;
            Ok(RdbValue::Set(members))
        }
        ty::HASH_LISTPACK | ty::ZSET_LISTPACK | ty::HASH_ZIPLIST | ty::ZSET_ZIPLIST => {
            read_pairs_blob(cur, code)
        }
        ty::LIST_ZIPLIST => {
            let at = cur.pos;
            let blob = cur.string()?;
            let items = decode_ziplist(&blob).map_err(|d| payload_error(cur, at, "ziplist", d))?;
            Ok(RdbValue::List(items.iter().map(LpItem::to_bytes).collect()))
        }
        ty::LIST_QUICKLIST => read_quicklist_v1(cur),
        ty::LIST_QUICKLIST_2 => read_quicklist(cur),
        _ => Err(RdbError::UnknownType {
            offset: entry_at as u64,
            type_byte: code,
        }),
    }
}

fn payload_error(cur: &Cursor<'_>, at: usize, kind: &str, detail: String) -> RdbError {
    cur.corrupt(
        at,
        format!("bad {kind} payload in the string starting here: {detail}"),
    )
}

/// HASH_LISTPACK / HASH_ZIPLIST (field, value, …) or ZSET_LISTPACK / ZSET_ZIPLIST
/// (member, score, …).
fn read_pairs_blob(cur: &mut Cursor<'_>, code: u8) -> Result<RdbValue, RdbError> {
    let at = cur.pos;
    let blob = cur.string()?;
    let (kind, decoded) = if code == ty::HASH_ZIPLIST || code == ty::ZSET_ZIPLIST {
        ("ziplist", decode_ziplist(&blob))
    } else {
        ("listpack", decode_listpack(&blob))
    };
    let items = decoded.map_err(|d| payload_error(cur, at, kind, d))?;
    if items.len() % 2 != 0 {
        let detail = format!("odd element count {}", items.len());
        return Err(payload_error(cur, at, kind, detail));
    }
    let pairs = items.chunks_exact(2);
    if code == ty::HASH_LISTPACK || code == ty::HASH_ZIPLIST {
        return Ok(RdbValue::Hash(
            pairs.map(|p| (p[0].to_bytes(), p[1].to_bytes())).collect(),
        ));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    for pair in pairs {
        let score = match &pair[1] {
            LpItem::Int(v) => *v as f64,
            LpItem::Str(s) => parse_score(s)
                .ok_or_else(|| payload_error(cur, at, kind, "unparsable score".to_string()))?,
        };
        out.push((pair[0].to_bytes(), check_score(cur, at, score)?));
    }
    Ok(RdbValue::ZSet(out))
}

/// LIST_QUICKLIST_2: node count, then per node a container kind (1 plain: the string is
/// one element; 2 packed: the string is a listpack) and a string.
fn read_quicklist(cur: &mut Cursor<'_>) -> Result<RdbValue, RdbError> {
    let nodes = cur.count("a quicklist node count")?;
    let mut items = Vec::new();
    for _ in 0..nodes {
        let at = cur.pos;
        let container = cur.plain_len("a quicklist container kind")?;
        let blob = cur.string()?;
        match container {
            QUICKLIST_NODE_PLAIN => items.push(blob),
            QUICKLIST_NODE_PACKED => {
                let lp =
                    decode_listpack(&blob).map_err(|d| payload_error(cur, at, "listpack", d))?;
                items.extend(lp.iter().map(LpItem::to_bytes));
            }
            other => {
                return Err(cur.corrupt(at, format!("unknown quicklist container kind {other}")))
            }
        }
    }
    Ok(RdbValue::List(items))
}

/// LIST_QUICKLIST (Redis 3.2–6): node count, then per node a string holding a ziplist.
fn read_quicklist_v1(cur: &mut Cursor<'_>) -> Result<RdbValue, RdbError> {
    let nodes = cur.count("a quicklist node count")?;
    let mut items = Vec::new();
    for _ in 0..nodes {
        let at = cur.pos;
        let blob = cur.string()?;
        let zl = decode_ziplist(&blob).map_err(|d| payload_error(cur, at, "ziplist", d))?;
        items.extend(zl.iter().map(LpItem::to_bytes));
    }
    Ok(RdbValue::List(items))
}
