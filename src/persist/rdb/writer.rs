//! [`RdbWriter`]: builds an RDB version 10 file (what Redis 7.0 writes) incrementally in
//! memory, keeping a running CRC-64 so a large snapshot can be drained to disk in pieces
//! ([`RdbWriter::take_bytes`]) and closed with [`RdbWriter::finish`].
//!
//! Encodings written (byte map in docs/formats.md "RDB snapshots"): lengths in the 6/14/32/
//! 64-bit forms; strings raw, as 8/16/32-bit integers when the string is a canonical
//! integer, or LZF-compressed (`0xC3`) when longer than 20 bytes, compression is on and it
//! saves space; values as STRING (0), LIST (1), SET (2), HASH (4) and ZSET_2 (5, binary
//! little-endian double scores) — the plain encodings every Redis version loads.
//!
//! What can fail: an empty collection, a NaN score, an iterator yielding a different
//! number of items than declared, or a string over [`RDB_STRING_LEN_MAX_BYTES`] →
//! `RdbError::InvalidInput`; the half-written entry is rolled back, the file stays valid.

use super::crc64::crc64_update;
use super::{lzf, op, ty, RdbError, RDB_STRING_LEN_MAX_BYTES, RDB_VERSION};

/// Strings longer than this are tried with LZF when compression is on (Redis: 20).
const COMPRESS_MIN_LEN_BYTES: usize = 21;
/// Longest string that can be a canonical 32-bit integer ("-2147483648").
const INT_STRING_LEN_MAX_BYTES: usize = 11;

/// The file-level facts written as AUX fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdbHeader {
    /// `redis-ver` AUX value; Redis 7.0 tools print it. Default "7.0.0".
    pub redis_ver: String,
    /// `ctime` AUX value: creation time, seconds since the Unix epoch.
    pub ctime_s: u64,
    /// `used-mem` AUX value, bytes.
    pub used_mem_bytes: u64,
    /// LZF-compress strings longer than 20 bytes when it saves space (Redis
    /// `rdbcompression yes`).
    pub compression: bool,
}

impl Default for RdbHeader {
    fn default() -> RdbHeader {
        RdbHeader {
            redis_ver: "7.0.0".to_string(),
            ctime_s: 0,
            used_mem_bytes: 0,
            compression: true,
        }
    }
}

/// An RDB file under construction. Usage: `new` (header + AUX), `select_db`, any number of
/// `write_*`, optionally `take_bytes` between them, then `finish` (EOF + CRC-64 trailer).
/// The concatenation of every `take_bytes` result and the `finish` result is the file.
#[derive(Debug)]
pub struct RdbWriter {
    buf: Vec<u8>,
    /// CRC-64 of every byte produced before `buf[crc_pos..]`.
    crc: u64,
    crc_pos: usize,
    taken_bytes: u64,
    compression: bool,
}

impl RdbWriter {
    /// Starts a file: `REDIS0010` and the AUX fields `redis-ver`, `redis-bits` (64),
    /// `ctime`, `used-mem`, `aof-base` (0).
    pub fn new(header: RdbHeader) -> RdbWriter {
        let mut w = RdbWriter {
            buf: Vec::new(),
            crc: 0,
            crc_pos: 0,
            taken_bytes: 0,
            compression: header.compression,
        };
        w.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let aux: [(&str, String); 5] = [
            ("redis-ver", header.redis_ver),
            ("redis-bits", "64".to_string()),
            ("ctime", header.ctime_s.to_string()),
            ("used-mem", header.used_mem_bytes.to_string()),
            ("aof-base", "0".to_string()),
        ];
        for (name, value) in aux {
            w.buf.push(op::AUX);
            w.put_string(name.as_bytes());
            w.put_string(value.as_bytes());
        }
        w.commit();
        w
    }

    /// SELECTDB `db`, then RESIZEDB with the number of keys and of keys with an expire
    /// that follow (sizing hints for the loader).
    pub fn select_db(&mut self, db: u32, keys: u64, expires: u64) {
        self.buf.push(op::SELECTDB);
        put_len(&mut self.buf, u64::from(db));
        self.buf.push(op::RESIZEDB);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, expires);
        self.commit();
    }

    /// A string entry; `expire_ms` is absolute, ms since the Unix epoch.
    pub fn write_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        self.entry(key, expire_ms, ty::STRING, |w| w.put_checked_string(value))
    }

    /// A list entry (RDB_TYPE_LIST): `len` elements, head to tail.
    pub fn write_list<'a>(
        &mut self,
        key: &[u8],
        items: impl Iterator<Item = &'a [u8]>,
        len: usize,
        expire_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        self.entry(key, expire_ms, ty::LIST, |w| w.put_items(items, len))
    }

    /// A set entry (RDB_TYPE_SET): `len` distinct members (Redis refuses duplicates).
    pub fn write_set<'a>(
        &mut self,
        key: &[u8],
        members: impl Iterator<Item = &'a [u8]>,
        len: usize,
        expire_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        self.entry(key, expire_ms, ty::SET, |w| w.put_items(members, len))
    }

    /// A hash entry (RDB_TYPE_HASH): `len` (field, value) pairs with distinct fields.
    pub fn write_hash<'a>(
        &mut self,
        key: &[u8],
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        len: usize,
        expire_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        self.entry(key, expire_ms, ty::HASH, |w| {
            w.put_count(pairs, len, |w, (field, value)| {
                w.put_checked_string(field)?;
                w.put_checked_string(value)
            })
        })
    }

    /// A sorted-set entry (RDB_TYPE_ZSET_2): `len` (member, score) pairs, scores as 8-byte
    /// little-endian IEEE doubles. NaN scores are refused (Redis refuses them on load).
    pub fn write_zset<'a>(
        &mut self,
        key: &[u8],
        items: impl Iterator<Item = (&'a [u8], f64)>,
        len: usize,
        expire_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        self.entry(key, expire_ms, ty::ZSET_2, |w| {
            w.put_count(items, len, |w, (member, score)| {
                if score.is_nan() {
                    return Err(RdbError::InvalidInput(
                        "a sorted-set score is NaN".to_string(),
                    ));
                }
                w.put_checked_string(member)?;
                w.buf.extend_from_slice(&score.to_le_bytes());
                Ok(())
            })
        })
    }

    /// Drains the bytes produced so far (all complete entries) for writing to disk.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        assert_eq!(
            self.crc_pos,
            self.buf.len(),
            "take_bytes between entries only"
        );
        self.taken_bytes += self.buf.len() as u64;
        self.crc_pos = 0;
        std::mem::take(&mut self.buf)
    }

    /// Bytes produced so far, drained or not.
    pub fn len_bytes(&self) -> u64 {
        self.taken_bytes + self.buf.len() as u64
    }

    /// Ends the file: EOF opcode, then the CRC-64 of every byte before the trailer, as 8
    /// little-endian bytes. Returns the bytes not yet drained by `take_bytes`.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(op::EOF);
        self.commit();
        let crc = self.crc;
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }

    /// Folds the new bytes into the running CRC.
    fn commit(&mut self) {
        self.crc = crc64_update(self.crc, &self.buf[self.crc_pos..]);
        self.crc_pos = self.buf.len();
    }

    /// Writes one entry (expire, type, key, value); on error rolls the buffer back.
    fn entry(
        &mut self,
        key: &[u8],
        expire_ms: Option<u64>,
        type_byte: u8,
        value: impl FnOnce(&mut RdbWriter) -> Result<(), RdbError>,
    ) -> Result<(), RdbError> {
        let start = self.buf.len();
        if let Some(at) = expire_ms {
            self.buf.push(op::EXPIRETIME_MS);
            self.buf.extend_from_slice(&at.to_le_bytes());
        }
        self.buf.push(type_byte);
        let result = self.put_checked_string(key).and_then(|()| value(self));
        match result {
            Ok(()) => self.commit(),
            Err(_) => self.buf.truncate(start),
        }
        result
    }

    fn put_items<'a>(
        &mut self,
        items: impl Iterator<Item = &'a [u8]>,
        len: usize,
    ) -> Result<(), RdbError> {
        self.put_count(items, len, |w, item| w.put_checked_string(item))
    }

    /// Writes the length `len`, then each item with `put`, checking the iterator yields
    /// exactly `len` items (at least one).
    fn put_count<T>(
        &mut self,
        items: impl Iterator<Item = T>,
        len: usize,
        mut put: impl FnMut(&mut RdbWriter, T) -> Result<(), RdbError>,
    ) -> Result<(), RdbError> {
        if len == 0 {
            return Err(RdbError::InvalidInput(
                "empty collections are never stored".to_string(),
            ));
        }
        put_len(&mut self.buf, len as u64);
        let mut count = 0usize;
        for item in items {
            count += 1;
            if count > len {
                break;
            }
            put(self, item)?;
        }
        if count != len {
            let detail = format!(
                "declared {len} items but the iterator yielded {}",
                if count > len {
                    "more".to_string()
                } else {
                    count.to_string()
                }
            );
            return Err(RdbError::InvalidInput(detail));
        }
        Ok(())
    }

    fn put_checked_string(&mut self, s: &[u8]) -> Result<(), RdbError> {
        if s.len() as u64 > RDB_STRING_LEN_MAX_BYTES {
            let detail = format!(
                "string of {} bytes exceeds {RDB_STRING_LEN_MAX_BYTES}",
                s.len()
            );
            return Err(RdbError::InvalidInput(detail));
        }
        self.put_string(s);
        Ok(())
    }

    /// A string in the smallest encoding: integer, LZF or raw.
    fn put_string(&mut self, s: &[u8]) {
        if let Some(v) = canonical_i32(s) {
            put_int(&mut self.buf, v);
            return;
        }
        if self.compression && s.len() >= COMPRESS_MIN_LEN_BYTES {
            if let Some(packed) = lzf::compress(s) {
                self.buf.push(0xC3);
                put_len(&mut self.buf, packed.len() as u64);
                put_len(&mut self.buf, s.len() as u64);
                self.buf.extend_from_slice(&packed);
                return;
            }
        }
        put_len(&mut self.buf, s.len() as u64);
        self.buf.extend_from_slice(s);
    }
}

/// The RDB length encoding: 6-bit (`00`), 14-bit (`01`, big-endian), 32-bit (`0x80` + BE
/// u32) or 64-bit (`0x81` + BE u64).
pub(crate) fn put_len(buf: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        buf.push(len as u8);
    } else if len < 1 << 14 {
        buf.push(0x40 | (len >> 8) as u8);
        buf.push((len & 0xff) as u8);
    } else if let Ok(l32) = u32::try_from(len) {
        buf.push(0x80);
        buf.extend_from_slice(&l32.to_be_bytes());
    } else {
        buf.push(0x81);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// Integer-encoded string: `0xC0` + i8, `0xC1` + LE i16, `0xC2` + LE i32.
fn put_int(buf: &mut Vec<u8>, v: i32) {
    if let Ok(b) = i8::try_from(v) {
        buf.push(0xC0);
        buf.extend_from_slice(&b.to_le_bytes());
    } else if let Ok(h) = i16::try_from(v) {
        buf.push(0xC1);
        buf.extend_from_slice(&h.to_le_bytes());
    } else {
        buf.push(0xC2);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// `Some(v)` when `s` is exactly the decimal form of a 32-bit integer (no sign `+`, no
/// leading zeros, no `-0`), so the integer encoding reads back as the same bytes.
pub(crate) fn canonical_i32(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > INT_STRING_LEN_MAX_BYTES {
        return None;
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    let canonical_digits = match digits {
        [] => false,
        [b'0'] => s.len() == 1,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !canonical_digits {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<i32>().ok()
}
