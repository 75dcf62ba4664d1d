//! The set value type (Redis `OBJ_SET`): distinct binary-safe members.
//!
//! Storage is an `IndexSet` with a fixed-seed `foldhash` hasher: iteration order is
//! insertion order as edited by deletes, never process randomness. Integer members are
//! stored as plain strings (no intset encoding, so SMEMBERS of an all-integer set is not
//! sorted as Redis's intset would be). Small sets (at most [`SET_COMPACT_LEN_MAX`]) delete
//! with `shift_remove` (order kept), larger ones in O(1) with `swap_remove`; both keep the
//! cursor guarantee of a downward index walk (SSCAN). The payload size is kept
//! incrementally, so [`SetValue::size_bytes`] is O(1). What can fail: nothing.

use bytes::Bytes;
use foldhash::fast::FixedState;
use indexmap::IndexSet;

/// Members up to which deletes keep order and SSCAN returns the whole set in one call.
pub const SET_COMPACT_LEN_MAX: usize = 128;
/// Rough per-member overhead counted by [`SetValue::size_bytes`]; an estimate.
pub const SET_MEMBER_OVERHEAD_BYTES: usize = 32;
/// Seed of the per-set member hasher (fixed: iteration order never depends on it).
const SET_MEMBER_SEED: u64 = 0xbb67_ae85_84ca_a73b;

/// A set value: members in insertion order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetValue {
    members: IndexSet<Bytes, FixedState>,
    /// Sum of member lengths.
    payload_bytes: usize,
}

impl Default for SetValue {
    fn default() -> SetValue {
        SetValue::new()
    }
}

impl FromIterator<Bytes> for SetValue {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> SetValue {
        let mut set = SetValue::new();
        for m in iter {
            set.insert(m);
        }
        set
    }
}

impl SetValue {
    /// An empty set (never stored empty: callers fill it before inserting it in a Db).
    pub fn new() -> SetValue {
        SetValue {
            members: IndexSet::with_hasher(FixedState::with_seed(SET_MEMBER_SEED)),
            payload_bytes: 0,
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when empty (an empty collection is never stored: the key is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough payload size in bytes (member bytes plus a fixed overhead per member), O(1).
    pub fn size_bytes(&self) -> usize {
        self.payload_bytes + self.members.len() * SET_MEMBER_OVERHEAD_BYTES
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// Adds `member` (last in iteration order); returns true when it was new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        let len = member.len();
        let added = self.members.insert(member);
        if added {
            self.payload_bytes += len;
        }
        added
    }

    /// Removes `member`; returns true when it was present.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = if self.members.len() <= SET_COMPACT_LEN_MAX {
            self.members.shift_remove(member)
        } else {
            self.members.swap_remove(member)
        };
        if removed {
            self.payload_bytes -= member.len();
        }
        removed
    }

    /// The member at position `index` of the iteration order.
    pub fn get_index(&self, index: usize) -> Option<&Bytes> {
        self.members.get_index(index)
    }

    /// Every member in iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.members.iter()
    }

    /// True while the set is small enough that SSCAN returns it whole (like a Redis intset
    /// or listpack).
    pub fn is_compact(&self) -> bool {
        self.members.len() <= SET_COMPACT_LEN_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_tracked() {
        let mut s: SetValue = ["a", "bb", "a"]
            .iter()
            .map(|m| Bytes::copy_from_slice(m.as_bytes()))
            .collect();
        assert_eq!(s.len(), 2);
        assert_eq!(s.size_bytes(), 3 + 2 * SET_MEMBER_OVERHEAD_BYTES);
        assert!(!s.insert(Bytes::from_static(b"bb")));
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
        assert_eq!(s.size_bytes(), 2 + SET_MEMBER_OVERHEAD_BYTES);
        for i in 0..300 {
            s.insert(Bytes::from(format!("m{i}")));
        }
        for i in (0..300).step_by(2) {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        let recount: usize = s.iter().map(|m| m.len() + SET_MEMBER_OVERHEAD_BYTES).sum();
        assert_eq!(s.size_bytes(), recount);
        assert_eq!(s.get_index(0).map(|m| &m[..]), Some(&b"bb"[..]));
    }
}
