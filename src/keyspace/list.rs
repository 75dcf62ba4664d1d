//! The list value type: a `VecDeque` of binary-safe elements with an O(1) running payload
//! size, plus the index arithmetic Redis list commands share (negative indexes count from
//! the tail, ranges are clamped like `LRANGE`/`LTRIM` in Redis 7.0 t_list.c).
//!
//! An empty list is never stored (the command layer deletes the key). What can fail:
//! nothing returns an error; out-of-range indexes yield `None`.

use std::collections::VecDeque;

use bytes::Bytes;

/// Per-element overhead counted by [`ListValue::size_bytes`] (slot + `Bytes` header).
pub const LIST_ELEMENT_OVERHEAD_BYTES: usize = 16;

/// Which end of a list (Redis `LEFT` = head, `RIGHT` = tail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LPUSH/LPOP side).
    Left,
    /// The tail (RPUSH/RPOP side).
    Right,
}

/// A list value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListValue {
    items: VecDeque<Bytes>,
    payload_bytes: usize,
}

impl ListValue {
    /// An empty list.
    pub fn new() -> ListValue {
        ListValue::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty (an empty collection is never stored: the key is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough payload size in bytes (for the memory estimate); O(1).
    pub fn size_bytes(&self) -> usize {
        self.payload_bytes + self.items.len() * LIST_ELEMENT_OVERHEAD_BYTES
    }

    /// Pushes one element at `end`.
    pub fn push(&mut self, end: End, item: Bytes) {
        self.payload_bytes += item.len();
        match end {
            End::Left => self.items.push_front(item),
            End::Right => self.items.push_back(item),
        }
    }

    /// Pops one element from `end`.
    pub fn pop(&mut self, end: End) -> Option<Bytes> {
        let item = match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }?;
        self.payload_bytes -= item.len();
        Some(item)
    }

    /// Resolves a Redis index (negative = from the tail) to a position, if in range.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 {
            index.checked_add(len)?
        } else {
            index
        };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// The element at Redis index `index`.
    pub fn get(&self, index: i64) -> Option<&Bytes> {
        self.resolve(index).map(|i| &self.items[i])
    }

    /// Replaces the element at Redis index `index`; false if out of range.
    pub fn set(&mut self, index: i64, item: Bytes) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        self.payload_bytes = self.payload_bytes - self.items[i].len() + item.len();
        self.items[i] = item;
        true
    }

    /// Inserts `item` at position `pos` (0..=len).
    pub fn insert_at(&mut self, pos: usize, item: Bytes) {
        self.payload_bytes += item.len();
        self.items.insert(pos, item);
    }

    /// Position of the first element equal to `pivot`.
    pub fn position(&self, pivot: &[u8]) -> Option<usize> {
        self.items.iter().position(|x| x[..] == *pivot)
    }

    /// Clamps Redis `start`/`stop` (inclusive, negative from the tail) to a position range
    /// exactly as LRANGE/LTRIM do; `None` when the range is empty.
    pub fn clamp_range(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let start = if start < 0 {
            (start.saturating_add(len)).max(0)
        } else {
            start
        };
        let stop = if stop < 0 {
            stop.saturating_add(len)
        } else {
            stop
        };
        if start > stop || start >= len {
            return None;
        }
        Some((start as usize, stop.min(len - 1) as usize))
    }

    /// Elements in positions `from..=to`.
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = &Bytes> {
        self.items.range(from..=to)
    }

    /// Keeps only positions `from..=to` (`None` clears the list).
    pub fn retain_range(&mut self, keep: Option<(usize, usize)>) {
        match keep {
            None => {
                self.items.clear();
                self.payload_bytes = 0;
            }
            Some((from, to)) => {
                self.items.truncate(to + 1);
                for _ in 0..from {
                    self.pop(End::Left);
                }
                self.payload_bytes = self.items.iter().map(Bytes::len).sum();
            }
        }
    }

    /// Removes up to `limit` elements equal to `item` (0 = all), scanning from the head, or
    /// from the tail when `from_tail`. Returns how many were removed (Redis LREM).
    pub fn remove_matching(&mut self, item: &[u8], limit: usize, from_tail: bool) -> usize {
        let len = self.items.len();
        let mut removed = 0usize;
        let mut keep = vec![true; len];
        let order: Box<dyn Iterator<Item = usize>> = if from_tail {
            Box::new((0..len).rev())
        } else {
            Box::new(0..len)
        };
        for i in order {
            if limit != 0 && removed == limit {
                break;
            }
            if self.items[i][..] == *item {
                keep[i] = false;
                removed += 1;
            }
        }
        if removed > 0 {
            let mut i = 0;
            self.items.retain(|_| {
                i += 1;
                keep[i - 1]
            });
            self.payload_bytes -= removed * item.len();
        }
        removed
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> ListValue {
        let mut l = ListValue::new();
        for i in items {
            l.push(End::Right, Bytes::copy_from_slice(i.as_bytes()));
        }
        l
    }

    #[test]
    fn size_tracks_payload() {
        let mut l = list(&["ab", "cde"]);
        assert_eq!(l.size_bytes(), 5 + 2 * LIST_ELEMENT_OVERHEAD_BYTES);
        l.set(0, Bytes::from_static(b"x"));
        assert_eq!(l.size_bytes(), 4 + 2 * LIST_ELEMENT_OVERHEAD_BYTES);
        assert_eq!(l.pop(End::Right).as_deref(), Some(&b"cde"[..]));
        l.retain_range(None);
        assert_eq!(l.size_bytes(), 0);
    }

    #[test]
    fn ranges_clamp_like_redis() {
        let l = list(&["a", "b", "c"]);
        assert_eq!(l.clamp_range(0, -1), Some((0, 2)));
        assert_eq!(l.clamp_range(-100, 100), Some((0, 2)));
        assert_eq!(l.clamp_range(2, 1), None);
        assert_eq!(l.clamp_range(3, 5), None);
        assert_eq!(l.clamp_range(i64::MIN, i64::MIN), None);
        assert_eq!(l.get(-1).map(|b| &b[..]), Some(&b"c"[..]));
        assert_eq!(l.get(i64::MIN), None);
    }

    #[test]
    fn remove_matching_from_either_end() {
        let mut l = list(&["a", "b", "a", "a"]);
        assert_eq!(l.remove_matching(b"a", 1, true), 1);
        let all: Vec<_> = l.iter().map(|b| b.to_vec()).collect();
        assert_eq!(all, vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()]);
        assert_eq!(l.remove_matching(b"a", 0, false), 2);
        assert_eq!(l.len(), 1);
        assert_eq!(l.size_bytes(), 1 + LIST_ELEMENT_OVERHEAD_BYTES);
    }
}
