//! The sorted-set value type: a member → score hash map (seeded `foldhash`, so iteration
//! is deterministic) plus an indexable skip list ordered by (score, member) for O(log n)
//! rank, range and seek operations. Score text parsing/printing lives in `score`.
//!
//! Semantics follow Redis 7 `t_zset.c`: scores are never NaN; members are binary-safe; a
//! score of -0 is stored as 0 (as Redis's default listpack encoding does). Range bounds are
//! [`ScoreBound`] / [`LexBound`] pairs resolved to rank ranges. What can fail: parsing of
//! bounds (returns None); internal invariants are `assert!`ed.

pub mod score;
pub mod skiplist;

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashMap;

use skiplist::SkipList;

/// Per-element bookkeeping counted by [`ZSetValue::size_bytes`] (map slot + skip-list node,
/// a rough figure).
pub const ZSET_ELEMENT_OVERHEAD_BYTES: usize = 64;
/// Seed of the member → score map's hasher (only lookups use it; nothing iterates it).
const MAP_HASH_SEED: u64 = 0x5a17_3e0d_9c2b_4f61;

/// A sorted set.
#[derive(Clone, Debug)]
pub struct ZSetValue {
    scores: HashMap<Bytes, f64, FixedState>,
    list: SkipList,
    member_bytes: usize,
}

impl Default for ZSetValue {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for ZSetValue {
    /// Same members with bit-identical scores (the skip-list shape is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((m1, s1), (m2, s2))| m1 == m2 && s1.to_bits() == s2.to_bits())
    }
}

impl Eq for ZSetValue {}

/// One end of a score range (`ZRANGEBYSCORE` syntax: `1.5`, `(1.5`, `-inf`, `+inf`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

impl ScoreBound {
    /// Parses `[(]float` like Redis `zslParseRange`; None → "ERR min or max is not a float".
    pub fn parse(text: &[u8]) -> Option<ScoreBound> {
        let (exclusive, rest) = match text.first() {
            Some(b'(') => (true, &text[1..]),
            _ => (false, text),
        };
        let value = score::parse_range_value(rest)?;
        (!value.is_nan()).then_some(ScoreBound { value, exclusive })
    }
}

/// One end of a lexicographic range (`ZRANGEBYLEX` syntax: `-`, `+`, `[a`, `(a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    /// Parses a lex bound; None → "ERR min or max not valid string range item".
    pub fn parse(text: &Bytes) -> Option<LexBound> {
        match text.first()? {
            b'-' if text.len() == 1 => Some(LexBound::NegInf),
            b'+' if text.len() == 1 => Some(LexBound::PosInf),
            b'[' => Some(LexBound::Inclusive(text.slice(1..))),
            b'(' => Some(LexBound::Exclusive(text.slice(1..))),
            _ => None,
        }
    }
}

fn normalize(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

impl ZSetValue {
    /// An empty sorted set.
    pub fn new() -> ZSetValue {
        ZSetValue {
            scores: HashMap::with_hasher(FixedState::with_seed(MAP_HASH_SEED)),
            list: SkipList::new(),
            member_bytes: 0,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when empty (an empty collection is never stored: the key is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough payload size in bytes (for the memory estimate), O(1): member bytes plus
    /// [`ZSET_ELEMENT_OVERHEAD_BYTES`] per element. Depends only on the contents.
    pub fn size_bytes(&self) -> usize {
        self.member_bytes + self.len() * ZSET_ELEMENT_OVERHEAD_BYTES
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score (NaN is refused by the callers; asserted). -0 is stored as 0.
    /// Returns true when the member is new.
    pub fn insert(&mut self, member: Bytes, score: f64) -> bool {
        assert!(!score.is_nan(), "NaN score");
        let score = normalize(score);
        match self.scores.get_mut(&member[..]) {
            Some(old) => {
                if old.to_bits() != score.to_bits() {
                    let removed = self.list.remove(*old, &member);
                    assert!(removed, "zset map and skip list out of sync");
                    *old = score;
                    self.list.insert(score, member);
                }
                false
            }
            None => {
                self.member_bytes += member.len();
                self.scores.insert(member.clone(), score);
                self.list.insert(score, member);
                true
            }
        }
    }

    /// Removes `member`; returns its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?;
        let removed = self.list.remove(score, member);
        assert!(removed, "zset map and skip list out of sync");
        self.member_bytes -= member.len();
        Some(score)
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let rank = self.list.rank(score, member);
        assert!(rank.is_some(), "zset map and skip list out of sync");
        rank
    }

    /// The element at 0-based ascending `rank`.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&Bytes, f64)> {
        self.list.get(rank).map(|(s, m)| (m, s))
    }

    /// The highest element.
    pub fn last(&self) -> Option<(&Bytes, f64)> {
        self.list.last().map(|(s, m)| (m, s))
    }

    /// Elements with ascending rank in `start..end`; from `end - 1` down when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> skiplist::Iter<'_> {
        self.list.range(start, end, rev)
    }

    /// Every element in ascending order.
    pub fn iter(&self) -> skiplist::Iter<'_> {
        self.list.range(0, self.len(), false)
    }

    /// The ascending rank range `start..end` of elements with `min <= score <= max`
    /// (honouring exclusive ends). Empty ranges come back with `start >= end`.
    pub fn score_rank_range(&self, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
        let start = self
            .list
            .count_before(|s, _| s < min.value || (min.exclusive && s <= min.value));
        let end = self
            .list
            .count_before(|s, _| s < max.value || (!max.exclusive && s <= max.value));
        (start, end.max(start))
    }

    /// The ascending rank range of members between `min` and `max` (meaningful when all
    /// scores are equal, as in Redis).
    pub fn lex_rank_range(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        let start = self.list.count_before(|_, m| match min {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(b) => m < &b[..],
            LexBound::Exclusive(b) => m <= &b[..],
        });
        let end = self.list.count_before(|_, m| match max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(b) => m <= &b[..],
            LexBound::Exclusive(b) => m < &b[..],
        });
        (start, end.max(start))
    }

    /// Removes the elements with ascending rank in `start..end`; returns them in order.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> Vec<(Bytes, f64)> {
        let doomed: Vec<(Bytes, f64)> = self
            .range(start, end, false)
            .map(|(m, s)| (m.clone(), s))
            .collect();
        for (m, _) in &doomed {
            self.remove(m);
        }
        doomed
    }
}

#[cfg(test)]
mod tests;
