//! The hash value type (Redis `OBJ_HASH`): field → value, both binary-safe strings.
//!
//! Storage is an `IndexMap` with a fixed-seed `foldhash` hasher, so iteration order is
//! insertion order as edited by deletes and never depends on process randomness. Small
//! hashes (at most [`HASH_COMPACT_LEN_MAX`] fields, Redis's `hash-max-listpack-entries`)
//! delete with `shift_remove`, keeping Redis's listpack order (HGETALL replies match
//! redis-server byte for byte); larger ones delete in O(1) with `swap_remove`. Both keep
//! the cursor guarantee of a downward index walk (see `cmd::hashes` HSCAN).
//! The payload size is kept incrementally, so [`HashValue::size_bytes`] is O(1).
//! What can fail: nothing returns an error.

use bytes::Bytes;
use foldhash::fast::FixedState;
use indexmap::IndexMap;

/// Fields up to which deletes keep order, like a Redis listpack-encoded hash (default
/// `hash-max-listpack-entries`).
pub const HASH_COMPACT_LEN_MAX: usize = 128;
/// Rough per-field overhead counted by [`HashValue::size_bytes`] (two `Bytes` headers and
/// a table slot); an estimate, not a measurement.
pub const HASH_FIELD_OVERHEAD_BYTES: usize = 48;
/// Seed of the per-hash field hasher (fixed: iteration order never depends on it).
const HASH_FIELD_SEED: u64 = 0x6a09_e667_f3bc_c908;

/// A hash value: fields in insertion order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashValue {
    fields: IndexMap<Bytes, Bytes, FixedState>,
    /// Sum of field and value lengths.
    payload_bytes: usize,
}

impl Default for HashValue {
    fn default() -> HashValue {
        HashValue::new()
    }
}

impl HashValue {
    /// An empty hash (never stored empty: callers fill it before inserting it in a Db).
    pub fn new() -> HashValue {
        HashValue {
            fields: IndexMap::with_hasher(FixedState::with_seed(HASH_FIELD_SEED)),
            payload_bytes: 0,
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when empty (an empty collection is never stored: the key is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough payload size in bytes (field and value bytes plus a fixed overhead per field),
    /// O(1).
    pub fn size_bytes(&self) -> usize {
        self.payload_bytes + self.fields.len() * HASH_FIELD_OVERHEAD_BYTES
    }

    /// The value of `field`, if present.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.fields.get(field)
    }

    /// True when `field` is present.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.fields.contains_key(field)
    }

    /// Sets `field` to `value`; a new field goes last, an existing one keeps its place.
    /// Returns true when the field is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        let added = field.len() + value.len();
        match self.fields.get_mut(&field[..]) {
            Some(old) => {
                self.payload_bytes = self.payload_bytes - old.len() + value.len();
                *old = value;
                false
            }
            None => {
                self.payload_bytes += added;
                self.fields.insert(field, value);
                true
            }
        }
    }

    /// Removes `field`; returns true when it was present. Order is kept for compact hashes.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = if self.fields.len() <= HASH_COMPACT_LEN_MAX {
            self.fields.shift_remove_entry(field)
        } else {
            self.fields.swap_remove_entry(field)
        };
        match removed {
            Some((f, v)) => {
                self.payload_bytes -= f.len() + v.len();
                true
            }
            None => false,
        }
    }

    /// The field and value at position `index` of the iteration order.
    pub fn get_index(&self, index: usize) -> Option<(&Bytes, &Bytes)> {
        self.fields.get_index(index)
    }

    /// Every field and value in iteration order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.fields.iter()
    }

    /// True while the hash is small enough to behave like a Redis listpack (HSCAN returns
    /// it whole).
    pub fn is_compact(&self) -> bool {
        self.fields.len() <= HASH_COMPACT_LEN_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn size_is_tracked_and_order_kept() {
        let mut h = HashValue::new();
        assert!(h.insert(b("a"), b("1")));
        assert!(h.insert(b("bb"), b("22")));
        assert!(h.insert(b("c"), b("3")));
        assert!(!h.insert(b("a"), b("1111")));
        assert_eq!(h.size_bytes(), 5 + 4 + 2 + 3 * HASH_FIELD_OVERHEAD_BYTES);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        let keys: Vec<_> = h.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![b("bb"), b("c")], "compact deletes keep order");
        assert_eq!(h.size_bytes(), 4 + 2 + 2 * HASH_FIELD_OVERHEAD_BYTES);
        assert!(h.remove(b"bb") && h.remove(b"c"));
        assert!(h.is_empty());
        assert_eq!(h.size_bytes(), 0);
    }

    #[test]
    fn large_hash_size_matches_recount() {
        let mut h = HashValue::new();
        for i in 0..500 {
            h.insert(b(&format!("f{i}")), b(&"x".repeat(i % 7)));
        }
        for i in (0..500).step_by(3) {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        let recount: usize = h
            .iter()
            .map(|(k, v)| k.len() + v.len() + HASH_FIELD_OVERHEAD_BYTES)
            .sum();
        assert_eq!(h.size_bytes(), recount);
        assert!(!h.is_compact());
    }
}
