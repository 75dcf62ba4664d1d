//! Redis RDB snapshots (format version 10, as Redis 7.0 writes it): a writer that builds a
//! file `redis-check-rdb` accepts, and a reader that loads our files and Redis 7 dumps.
//! Byte map: docs/formats.md, section "RDB snapshots". Sources: the Redis RDB file format
//! (Redis `rdb.h`/`rdb.c` constants, the listpack and intset specs), checked against the
//! real `redis-check-rdb` 7.0 and real `redis-server` 7.0 dumps (tests/rdb_check.rs).
//!
//! - `writer.rs`: [`RdbWriter`] — header, AUX fields, SELECTDB/RESIZEDB, entries with
//!   optional EXPIRETIME_MS, EOF and the CRC-64 trailer, built incrementally.
//! - `reader.rs`: [`read_rdb`] — validates and visits every entry.
//! - `listpack.rs`: listpack, intset and ziplist payload decoding (compact encodings).
//! - `crc64.rs`, `lzf.rs`: the trailer checksum and string compression.
//!
//! What can fail: writing refuses empty collections, NaN scores, iterators that do not
//! yield the declared length, and value types this module is not wired to
//! ([`RdbError::Unsupported`]); reading refuses anything malformed with an [`RdbError`]
//! naming the byte offset. Nothing here panics on bad input or touches the OS.

pub mod crc64;
mod listpack;
pub mod lzf;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;

use bytes::Bytes;

use crate::keyspace::{Db, Value};

pub use reader::read_rdb;
pub use writer::{RdbHeader, RdbWriter};

/// The format version we write (Redis 7.0) and the newest we read.
pub const RDB_VERSION: u32 = 10;
/// Length of `REDIS` + 4 ASCII version digits.
pub const RDB_HEADER_LEN_BYTES: usize = 9;
/// Length of the CRC-64 trailer (versions ≥ 5).
pub const RDB_CHECKSUM_LEN_BYTES: usize = 8;
/// Largest string (key, value, element) we read or write: Redis `proto-max-bulk-len`.
pub const RDB_STRING_LEN_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Opcodes (Redis `rdb.h`).
pub(crate) mod op {
    pub const FUNCTION2: u8 = 245;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Value type bytes (Redis `rdb.h`, `RDB_TYPE_*`).
pub(crate) mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
}

/// One key read from an RDB file. `expire_ms` is absolute, ms since the Unix epoch
/// (EXPIRETIME in seconds is converted).
#[derive(Clone, Debug, PartialEq)]
pub struct RdbEntry {
    /// The database index from the last SELECTDB (0 before any).
    pub db: u32,
    pub key: Bytes,
    pub value: RdbValue,
    pub expire_ms: Option<u64>,
}

/// A value read from an RDB file, whatever its on-disk encoding. Collections keep the
/// file's element order (Redis writes ZSET_2 members from the highest score down).
#[derive(Clone, Debug, PartialEq)]
pub enum RdbValue {
    Str(Bytes),
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    /// (field, value) pairs.
    Hash(Vec<(Bytes, Bytes)>),
    /// (member, score) pairs.
    ZSet(Vec<(Bytes, f64)>),
}

/// What [`read_rdb`] found besides the entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdbSummary {
    /// The file's format version (1..=10).
    pub version: u32,
    /// Entries handed to the visitor.
    pub keys: u64,
    /// Of those, entries with an expire time.
    pub expires: u64,
    /// AUX fields (e.g. `redis-ver` → `7.0.15`), in file order.
    pub aux: Vec<(Bytes, Bytes)>,
    /// Empty collections skipped (Redis skips them too).
    pub empty_keys_skipped: u64,
    /// FUNCTION2 records (Redis 7 function libraries) skipped: we do not load functions.
    pub functions_skipped: u64,
    /// False when the file carries no checksum (version < 5, or a zero trailer: Redis
    /// writes zeros when `rdbchecksum no`).
    pub checksum_verified: bool,
}

/// Everything that can go wrong writing or reading an RDB file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RdbError {
    /// The writer has no encoding wired up for this value type yet (`type` is the
    /// `TYPE` name, e.g. "list").
    Unsupported(&'static str),
    /// A writer input was invalid (empty collection, NaN score, wrong declared length).
    InvalidInput(String),
    /// The file does not start with `REDIS` + 4 digits.
    BadMagic,
    /// The file's version is not one we read (1..=10).
    UnsupportedVersion { found: u32 },
    /// The CRC-64 trailer at `trailer_offset` does not match the CRC of bytes
    /// `0..trailer_offset`.
    ChecksumMismatch {
        trailer_offset: u64,
        stored: u64,
        computed: u64,
    },
    /// The input ended inside a structure that starts before `offset`.
    Truncated { offset: u64, detail: String },
    /// Malformed content at byte `offset`.
    Corrupt { offset: u64, detail: String },
    /// A value type or opcode byte we cannot read, at `offset`.
    UnknownType { offset: u64, type_byte: u8 },
    /// The visitor refused the entry whose key starts at `offset`.
    Visitor { offset: u64, detail: String },
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbError::Unsupported(t) => write!(f, "RDB writer: value type '{t}' is not supported yet"),
            RdbError::InvalidInput(d) => write!(f, "RDB writer: {d}"),
            RdbError::BadMagic => f.write_str("not an RDB file: it does not start with 'REDIS' and a 4-digit version"),
            RdbError::UnsupportedVersion { found } => write!(
                f,
                "RDB format version {found} is not supported: this build reads versions 1 to {RDB_VERSION} (Redis 7.0); \
                 save the file with Redis 7.0 or older"
            ),
            RdbError::ChecksumMismatch { trailer_offset, stored, computed } => write!(
                f,
                "RDB checksum mismatch: the trailer at offset {trailer_offset} holds {stored:#018x} but bytes \
                 0..{trailer_offset} have CRC-64 {computed:#018x}; the file is corrupt"
            ),
            RdbError::Truncated { offset, detail } => write!(f, "RDB file truncated at offset {offset}: {detail}"),
            RdbError::Corrupt { offset, detail } => write!(f, "corrupt RDB file at offset {offset}: {detail}"),
            RdbError::UnknownType { offset, type_byte } => {
                write!(f, "RDB file has unknown or unsupported value type/opcode {type_byte} at offset {offset}")
            }
            RdbError::Visitor { offset, detail } => {
                write!(f, "loading the RDB entry at offset {offset} failed: {detail}")
            }
        }
    }
}

impl std::error::Error for RdbError {}

/// Writes SELECTDB 0, RESIZEDB and every live entry of `db` (expire time > `now_ms` or
/// none) with its absolute TTL, in `db`'s index order. Only strings are wired up so far:
/// any other value type returns `Err(RdbError::Unsupported(type name))` (the collection
/// encodings exist as [`RdbWriter::write_list`] etc. for the integrator to call).
pub fn write_db_entries(writer: &mut RdbWriter, db: &Db, now_ms: u64) -> Result<(), RdbError> {
    write_dbs_entries(writer, &[db], now_ms)
}

/// Like [`write_db_entries`] for several keyspaces written as one database 0 (one per
/// shard): one SELECTDB/RESIZEDB with the totals, then every shard's live entries.
pub fn write_dbs_entries(writer: &mut RdbWriter, dbs: &[&Db], now_ms: u64) -> Result<(), RdbError> {
    write_db_section(writer, 0, dbs, now_ms)
}

/// Writes every database of every shard: `shards[s][n]` is database `n` of shard `s`. For
/// each database number with live keys, in order, one SELECTDB n / RESIZEDB section with
/// the keys of all shards (Redis skips empty databases the same way).
pub fn write_databases(
    writer: &mut RdbWriter,
    shards: &[&[Db]],
    now_ms: u64,
) -> Result<(), RdbError> {
    let count = shards.iter().map(|s| s.len()).max().unwrap_or(0);
    for index in 0..count {
        let dbs: Vec<&Db> = shards.iter().filter_map(|s| s.get(index)).collect();
        let live = dbs.iter().any(|db| {
            db.iter()
                .any(|(_, e)| e.expire_at_ms.is_none_or(|t| t > now_ms))
        });
        if live {
            let index = u32::try_from(index)
                .map_err(|_| RdbError::InvalidInput(format!("database index {index}")))?;
            write_db_section(writer, index, &dbs, now_ms)?;
        }
    }
    Ok(())
}

/// One SELECTDB `index` / RESIZEDB section with the live entries of `dbs`.
fn write_db_section(
    writer: &mut RdbWriter,
    index: u32,
    dbs: &[&Db],
    now_ms: u64,
) -> Result<(), RdbError> {
    let live = |expire: Option<u64>| expire.is_none_or(|t| t > now_ms);
    let mut keys = 0u64;
    let mut expires = 0u64;
    for db in dbs {
        for (_, entry) in db.iter().filter(|(_, e)| live(e.expire_at_ms)) {
            keys += 1;
            expires += u64::from(entry.expire_at_ms.is_some());
        }
    }
    writer.select_db(index, keys, expires);
    for db in dbs {
        for (key, entry) in db.iter() {
            if !live(entry.expire_at_ms) {
                continue;
            }
            let ttl = entry.expire_at_ms;
            match &entry.value {
                Value::Str(v) => writer.write_string(key, v, ttl)?,
                Value::List(l) => writer.write_list(key, l.iter().map(|b| &b[..]), l.len(), ttl)?,
                Value::Set(s) => writer.write_set(key, s.iter().map(|b| &b[..]), s.len(), ttl)?,
                Value::Hash(h) => {
                    writer.write_hash(key, h.iter().map(|(f, v)| (&f[..], &v[..])), h.len(), ttl)?
                }
                Value::ZSet(z) => {
                    writer.write_zset(key, z.iter().map(|(m, s)| (&m[..], s)), z.len(), ttl)?
                }
            }
        }
    }
    Ok(())
}
