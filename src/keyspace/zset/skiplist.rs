//! An indexable skip list ordered by (score, member), with spans on every link so rank
//! queries, rank → node lookups and predicate seeks are all O(log n) expected. Nodes live
//! in an arena (`Vec`) addressed by `u32` ids; removed slots are reused. Every operation is
//! iterative (no recursion).
//!
//! Levels come from an internal xorshift generator with a fixed seed, so the shape is a
//! function of the operation history only (determinism). The structure follows the
//! classic description (Pugh 1990; spans as described for Redis's `zskiplist`).
//! What can fail: nothing returns an error; invariants are `assert!`ed (e.g. the arena
//! never exceeds `u32::MAX - 1` nodes).

use bytes::Bytes;

/// Maximum number of levels of a node (Redis `ZSKIPLIST_MAXLEVEL`).
pub const LEVEL_MAX: usize = 32;
const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    /// Number of level-0 steps from this node to `next` (to the end when `next` is NIL).
    span: usize,
}

#[derive(Clone, Debug)]
struct Node {
    member: Bytes,
    score: f64,
    prev: u32,
    links: Vec<Link>,
}

/// The skip list. Holds each (score, member) pair at most once; the caller (ZSetValue)
/// keeps the member → score map that guarantees that.
#[derive(Clone, Debug)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    rng: u64,
}

/// Strict (score, member) order: scores never NaN.
fn less(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> bool {
    a_score < b_score || (a_score == b_score && a_member < b_member)
}

impl Default for SkipList {
    fn default() -> Self {
        Self::new()
    }
}

impl SkipList {
    /// An empty list.
    pub fn new() -> SkipList {
        let head = Node {
            member: Bytes::new(),
            score: 0.0,
            prev: NIL,
            links: vec![Link { next: NIL, span: 0 }; LEVEL_MAX],
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            // Probability 1/4 per extra level (Redis ZSKIPLIST_P).
            if self.rng & 3 != 0 || level >= LEVEL_MAX {
                return level;
            }
            level += 1;
        }
    }

    fn alloc(&mut self, member: Bytes, score: f64, level: usize) -> u32 {
        let node = Node {
            member,
            score,
            prev: NIL,
            links: vec![Link { next: NIL, span: 0 }; level],
        };
        if let Some(id) = self.free.pop() {
            self.nodes[id as usize] = node;
            id
        } else {
            assert!(self.nodes.len() < NIL as usize, "skip list arena is full");
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    fn link(&self, x: u32, i: usize) -> Link {
        self.nodes[x as usize].links[i]
    }

    /// Inserts (score, member); the pair must not be present (the caller checks).
    pub fn insert(&mut self, score: f64, member: Bytes) {
        assert!(!score.is_nan(), "NaN score");
        let mut update = [HEAD; LEVEL_MAX];
        let mut rank = [0usize; LEVEL_MAX];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !less(n.score, &n.member, score, &member) {
                    break;
                }
                rank[i] += l.span;
                x = l.next;
            }
            update[i] = x;
        }
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.nodes[HEAD as usize].links[i].span = self.len;
            }
            self.level = level;
        }
        let id = self.alloc(member, score, level);
        for i in 0..level {
            let u = update[i] as usize;
            let before = self.nodes[u].links[i];
            let steps = rank[0] - rank[i];
            self.nodes[id as usize].links[i] = Link {
                next: before.next,
                span: before.span - steps,
            };
            self.nodes[u].links[i] = Link {
                next: id,
                span: steps + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.nodes[u as usize].links[i].span += 1;
        }
        self.nodes[id as usize].prev = if update[0] == HEAD { NIL } else { update[0] };
        let next = self.nodes[id as usize].links[0].next;
        if next == NIL {
            self.tail = id;
        } else {
            self.nodes[next as usize].prev = id;
        }
        self.len += 1;
    }

    /// Removes (score, member). Returns false if absent.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let mut update = [HEAD; LEVEL_MAX];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !less(n.score, &n.member, score, member) {
                    break;
                }
                x = l.next;
            }
            update[i] = x;
        }
        let target = self.link(x, 0).next;
        if target == NIL {
            return false;
        }
        let t = &self.nodes[target as usize];
        if t.score != score || t.member != member {
            return false;
        }
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let l = self.link(u, i);
            if l.next == target {
                let tl = self.link(target, i);
                self.nodes[u as usize].links[i] = Link {
                    next: tl.next,
                    span: l.span + tl.span - 1,
                };
            } else {
                self.nodes[u as usize].links[i].span -= 1;
            }
        }
        let (prev, next) = (self.nodes[target as usize].prev, self.link(target, 0).next);
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        while self.level > 1 && self.link(HEAD, self.level - 1).next == NIL {
            self.level -= 1;
        }
        self.nodes[target as usize] = Node {
            member: Bytes::new(),
            score: 0.0,
            prev: NIL,
            links: Vec::new(),
        };
        self.free.push(target);
        self.len -= 1;
        true
    }

    /// Number of leading elements for which `before(score, member)` holds. `before` must be
    /// monotonic over the order (true for a prefix, false after).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut rank = 0;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !before(n.score, &n.member) {
                    break;
                }
                rank += l.span;
                x = l.next;
            }
        }
        rank
    }

    /// 0-based rank of (score, member), if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let r = self.count_before(|s, m| less(s, m, score, member));
        let (s, m) = self.get(r)?;
        (s == score && m[..] == *member).then_some(r)
    }

    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        // Find the node with 1-based position rank + 1.
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL || traversed + l.span > target {
                    break;
                }
                traversed += l.span;
                x = l.next;
            }
            if traversed == target {
                return x;
            }
        }
        unreachable!("rank {rank} below len {} not found", self.len)
    }

    /// The element at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(f64, &Bytes)> {
        let id = self.node_at(rank);
        (id != NIL).then(|| {
            let n = &self.nodes[id as usize];
            (n.score, &n.member)
        })
    }

    /// Elements with rank in `start..end`, ascending, or descending (from `end - 1` down to
    /// `start`) when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Iter<'_> {
        let end = end.min(self.len);
        let count = end.saturating_sub(start);
        let cursor = match (count, rev) {
            (0, _) => NIL,
            (_, false) => self.node_at(start),
            (_, true) => self.node_at(end - 1),
        };
        Iter {
            list: self,
            cursor,
            left: count,
            rev,
        }
    }

    /// The last element (highest), if any.
    pub fn last(&self) -> Option<(f64, &Bytes)> {
        (self.tail != NIL).then(|| {
            let n = &self.nodes[self.tail as usize];
            (n.score, &n.member)
        })
    }
}

/// Iterator over a rank range (see [`SkipList::range`]).
pub struct Iter<'a> {
    list: &'a SkipList,
    cursor: u32,
    left: usize,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.cursor == NIL {
            return None;
        }
        let n = &self.list.nodes[self.cursor as usize];
        self.left -= 1;
        self.cursor = if self.rev { n.prev } else { n.links[0].next };
        Some((&n.member, n.score))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
