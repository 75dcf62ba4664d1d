//! The search for a linearization of one partition: Wing & Gong's algorithm with Lowe's
//! memoization (Lowe, "Testing for linearizability", 2017; as in the Porcupine checker).
//!
//! Call and return events are sorted by time into a doubly linked list. Walking from the
//! head, a call event whose operation can take effect from the current model state is
//! *lifted* (its call and return events are unlinked), pushed on a stack with the state
//! before it, and the walk restarts from the head. Reaching a return event means that
//! operation had to take effect before now but could not: the last lifted operation is
//! popped, *unlifted* (relinked, dancing-links style) and the walk continues after it.
//! A (linearized-set, state) pair seen before is never explored again (memo table with a
//! fixed hasher; the set is a `u64`-word bitset with an incremental Zobrist hash, stored
//! compressed; states are interned as ids and transitions cached). The search succeeds
//! once every completed operation is linearized (pending operations may be left out: they
//! may never take effect). Iterative: no recursion, the stack is a `Vec`.
//!
//! Two sound reductions: within a run of calls with no return between them, operations are
//! tried earliest-return first; and a *pure* operation ([`Model::is_pure`]: a read, a
//! failed compare-and-set) that is legal now is linearized at once with no alternative
//! tried (it can be moved there in any linearization); and a blind write
//! ([`Model::is_blind`]) is never linearized straight after a pending operation (drop
//! the pending one instead: it may never take effect), which keeps many timed-out SETs
//! on one key from costing 2^k configurations.
//!
//! What can fail here: nothing panics on any history; the result is a [`Verdict`]
//! (`Unknown` when a [`Budget`] limit is reached).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::history::Operation;
use super::{mix64, Budget, FixedHasher, Model, Verdict};

/// Operations shown from the end of the longest linearizable prefix in an explanation.
const EXPLANATION_PREFIX_OPS_MAX: usize = 8;

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// A key that is already a good hash: used as its own hash.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The event list: index 0 is the head sentinel, then one entry per call or return event.
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Operation index (into the partition's ops) of each entry.
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// For a call entry, its return entry (`NIL` when pending forever).
    ret_of: Vec<u32>,
}

impl Events {
    fn build<I, O>(ops: &[&Operation<I, O>]) -> Events {
        // (time, 0 = call / 1 = return, op index): calls first at equal times.
        let mut sorted: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            sorted.push((op.call, 0, i as u32));
            if let Some(done) = &op.completion {
                sorted.push((done.ret, 1, i as u32));
            }
        }
        sorted.sort_unstable();
        // Within a run of calls with no return between them the order is free (real time
        // does not order them): try the operation that must return first, first.
        let deadline = |op: u32| {
            ops[op as usize]
                .completion
                .as_ref()
                .map_or(u64::MAX, |d| d.ret)
        };
        for run in sorted.chunk_by_mut(|a, b| a.1 == 0 && b.1 == 0) {
            run.sort_unstable_by_key(|&(_, _, op)| (deadline(op), op));
        }
        let n = sorted.len() + 1;
        let mut events = Events {
            next: Vec::with_capacity(n),
            prev: Vec::with_capacity(n),
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            ret_of: vec![NIL; n],
        };
        let mut call_entry = vec![NIL; ops.len()];
        events.op.push(NIL);
        events.is_call.push(false);
        for (position, &(_, kind, op)) in sorted.iter().enumerate() {
            let entry = position as u32 + 1;
            events.op.push(op);
            events.is_call.push(kind == 0);
            if kind == 0 {
                call_entry[op as usize] = entry;
            } else {
                events.ret_of[call_entry[op as usize] as usize] = entry;
            }
        }
        for entry in 0..n as u32 {
            events.prev.push(entry.wrapping_sub(1)); // head's prev is NIL (u32::MAX)
            events.next.push(if entry as usize + 1 < n {
                entry + 1
            } else {
                NIL
            });
        }
        events
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.ret_of[call as usize];
        if ret != NIL {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, call: u32) {
        let ret = self.ret_of[call as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// The set of linearized operations, with an incremental (Zobrist) hash.
struct Linearized {
    words: Vec<u64>,
    hash: u64,
}

impl Linearized {
    fn zobrist(op: u32) -> u64 {
        mix64(u64::from(op) ^ 0x5851_f42d_4c95_7f2d)
    }

    fn flip(&mut self, op: u32) {
        self.words[(op / 64) as usize] ^= 1 << (op % 64);
        self.hash ^= Linearized::zobrist(op);
    }
}

/// Every distinct model state seen, interned as a `u32` id, and a cache of transitions
/// (state id, operation) → state id, so repeated steps cost one table lookup.
struct States<S> {
    list: Vec<S>,
    chain: Vec<u32>,
    heads: IdMap,
    transitions: IdMap,
}

type IdMap = HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>;

/// Most cached transitions per search (beyond it, steps are recomputed).
const TRANSITIONS_CACHED_MAX: usize = 1 << 20;

impl<S: Eq + Hash + Clone> States<S> {
    fn intern(&mut self, state: S) -> u32 {
        let mut hasher = FixedHasher::default();
        state.hash(&mut hasher);
        let key = hasher.finish();
        let head = self.heads.get(&key).copied().unwrap_or(NIL);
        let mut at = head;
        while at != NIL {
            if self.list[at as usize] == state {
                return at;
            }
            at = self.chain[at as usize];
        }
        assert!(
            self.list.len() < (NIL / 2) as usize,
            "state ids must fit 31 bits"
        );
        self.list.push(state);
        self.chain.push(head);
        let id = (self.list.len() - 1) as u32;
        self.heads.insert(key, id);
        id
    }

    /// The state after `op` from state `from` (`NIL` when impossible).
    fn step<M: Model<State = S>>(
        &mut self,
        from: u32,
        op_index: u32,
        op: &Operation<M::Input, M::Output>,
    ) -> u32 {
        let key = mix64((u64::from(from) << 32) | u64::from(op_index));
        if let Some(&to) = self.transitions.get(&key) {
            return to;
        }
        let output = op.completion.as_ref().map(|done| &done.output);
        let to = match M::step(&self.list[from as usize], &op.input, output) {
            Some(next) => self.intern(next),
            None => NIL,
        };
        if self.transitions.len() < TRANSITIONS_CACHED_MAX {
            self.transitions.insert(key, to);
        }
        to
    }
}

/// Memo of visited (linearized set, state id) pairs: buckets by combined hash, chained
/// through an arena. Sets are stored compressed (count of leading all-ones words, then
/// the words up to the last non-zero one): linearized sets are mostly a prefix.
#[derive(Default)]
struct Memo {
    heads: IdMap,
    arena: Vec<(Box<[u64]>, u32, u32)>,
}

fn compressed_bounds(words: &[u64]) -> (usize, usize) {
    let lead = words.iter().take_while(|&&w| w == u64::MAX).count();
    let end = words
        .iter()
        .rposition(|&w| w != 0)
        .map_or(lead, |i| (i + 1).max(lead));
    (lead, end)
}

impl Memo {
    /// Inserts the pair; false when it was already there.
    fn insert(&mut self, set: &Linearized, state: u32) -> bool {
        let key = mix64(set.hash ^ mix64(u64::from(state) ^ 0x2545_f491_4f6c_dd1d));
        let (lead, end) = compressed_bounds(&set.words);
        let rest = &set.words[lead..end];
        let head = self.heads.get(&key).copied().unwrap_or(NIL);
        let mut at = head;
        while at != NIL {
            let (stored, seen, next) = &self.arena[at as usize];
            if *seen == state && stored[0] == lead as u64 && stored[1..] == *rest {
                return false;
            }
            at = *next;
        }
        let mut stored = Vec::with_capacity(rest.len() + 1);
        stored.push(lead as u64);
        stored.extend_from_slice(rest);
        self.arena.push((stored.into_boxed_slice(), state, head));
        self.heads.insert(key, (self.arena.len() - 1) as u32);
        true
    }
}

/// How much work one search did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Call or return events visited.
    pub steps: u64,
    /// Memoized (linearized set, state) pairs.
    pub memo_entries: usize,
}

/// Checks one partition: `ops` must all belong to it. The returned verdict's `partition`
/// field is left empty for the caller to fill.
pub fn check_partition<M: Model>(
    ops: &[&Operation<M::Input, M::Output>],
    budget: Budget,
) -> (Verdict, SearchStats) {
    let mut stats = SearchStats::default();
    let verdict = search::<M>(ops, budget, &mut stats);
    (verdict, stats)
}

fn search<M: Model>(
    ops: &[&Operation<M::Input, M::Output>],
    budget: Budget,
    stats: &mut SearchStats,
) -> Verdict {
    assert!(
        ops.len() < (NIL / 4) as usize,
        "partition too large for u32 indexes"
    );
    let mut events = Events::build(ops);
    let mut set = Linearized {
        words: vec![0; ops.len().div_ceil(64)],
        hash: 0,
    };
    let mut memo = Memo::default();
    let mut states: States<M::State> = States {
        list: Vec::new(),
        chain: Vec::new(),
        heads: IdMap::default(),
        transitions: IdMap::default(),
    };
    let remaining = ops.iter().filter(|op| op.completion.is_some()).count();
    let state = states.intern(M::init());
    let mut walk = Walk {
        stack: Vec::new(),
        state,
        remaining,
    };
    let mut best: Vec<u32> = Vec::new();
    let mut blocked: Option<u32> = None;
    let mut steps: u64 = 0;
    let mut entry = events.next[HEAD as usize];
    while walk.remaining > 0 {
        steps += 1;
        stats.steps = steps;
        stats.memo_entries = memo.arena.len();
        if steps > budget.steps_max_per_partition {
            return unknown(format!(
                "search steps exceeded {}",
                budget.steps_max_per_partition
            ));
        }
        if memo.arena.len().max(states.list.len()) > budget.cache_entries_max_per_partition {
            return unknown(format!(
                "memo entries exceeded {} after {steps} steps",
                budget.cache_entries_max_per_partition
            ));
        }
        assert!(entry != NIL, "the walk passed every return event");
        let op_index = events.op[entry as usize];
        let op = ops[op_index as usize];
        let mut dead_end = !events.is_call[entry as usize];
        if !dead_end {
            let output = op.completion.as_ref().map(|done| &done.output);
            // A blind write straight after a pending operation: never needed, since the
            // pending one could as well never have happened (it is tried without it from
            // an earlier configuration). The memo keeps "top is pending" apart.
            let top_pending = walk.stack.last().is_some_and(|f| {
                ops[events.op[f.entry as usize] as usize]
                    .completion
                    .is_none()
            });
            let next_state = if top_pending && M::is_blind(&op.input, output) {
                NIL
            } else {
                states.step::<M>(walk.state, op_index, op)
            };
            if next_state != NIL {
                // A pure operation (`Model::is_pure`) can be linearized now without loss
                // of generality: the configuration with it linearized has a completion iff
                // this one has (move it to the front of any completion: it changes no
                // state anywhere, and it is called before every remaining return). So no
                // alternative to it needs trying.
                let forced = next_state == walk.state && M::is_pure(&op.input, output);
                set.flip(op_index);
                let memo_state = next_state * 2 + u32::from(op.completion.is_none());
                if memo.insert(&set, memo_state) {
                    walk.stack.push(Frame {
                        entry,
                        previous: walk.state,
                        forced,
                    });
                    walk.state = next_state;
                    if op.completion.is_some() {
                        walk.remaining -= 1;
                    }
                    if walk.stack.len() > best.len() {
                        best = walk
                            .stack
                            .iter()
                            .map(|f| events.op[f.entry as usize])
                            .collect();
                        blocked = None;
                    }
                    events.lift(entry);
                    entry = first_pure_candidate::<M>(&events, &mut states, walk.state, ops);
                    continue;
                }
                set.flip(op_index);
                // Seen before, so it has no completion: nor has this configuration.
                dead_end = forced;
            }
        }
        if !dead_end {
            entry = events.next[entry as usize];
            continue;
        }
        if walk.stack.len() == best.len() && blocked.is_none() && !events.is_call[entry as usize] {
            blocked = Some(op_index);
        }
        match walk.backtrack(&mut events, &mut set, ops) {
            Some(next) => entry = next,
            None => {
                return Verdict::NotLinearizable {
                    partition: String::new(),
                    explanation: explain::<M>(ops, &best, blocked),
                };
            }
        }
    }
    Verdict::Linearizable
}

/// Where the walk restarts after a linearization: the first candidate (a call before the
/// first remaining return) that is pure and legal now, else the head. Taking pure
/// operations first (each forced, see `search`) keeps configurations with a pending legal
/// read out of the search entirely.
fn first_pure_candidate<M: Model>(
    events: &Events,
    states: &mut States<M::State>,
    state: u32,
    ops: &[&Operation<M::Input, M::Output>],
) -> u32 {
    let mut entry = events.next[HEAD as usize];
    while entry != NIL && events.is_call[entry as usize] {
        let op_index = events.op[entry as usize];
        let op = ops[op_index as usize];
        let output = op.completion.as_ref().map(|done| &done.output);
        if M::is_pure(&op.input, output) && states.step::<M>(state, op_index, op) == state {
            return entry;
        }
        entry = events.next[entry as usize];
    }
    events.next[HEAD as usize]
}

/// One linearized operation on the search stack.
struct Frame {
    /// Its call entry.
    entry: u32,
    /// The state id before it.
    previous: u32,
    /// Linearized without loss of generality: no alternative needs trying at this level.
    forced: bool,
}

/// The search's current path.
struct Walk {
    stack: Vec<Frame>,
    state: u32,
    /// Completed operations not linearized yet.
    remaining: usize,
}

impl Walk {
    /// Undoes the last linearization that has alternatives left (undoing forced ones on
    /// the way); returns the entry to continue the walk from, or `None` when the stack
    /// runs out (no linearization exists).
    fn backtrack<I, O>(
        &mut self,
        events: &mut Events,
        set: &mut Linearized,
        ops: &[&Operation<I, O>],
    ) -> Option<u32> {
        loop {
            let frame = self.stack.pop()?;
            self.state = frame.previous;
            let op = events.op[frame.entry as usize];
            set.flip(op);
            if ops[op as usize].completion.is_some() {
                self.remaining += 1;
            }
            events.unlift(frame.entry);
            if !frame.forced {
                return Some(events.next[frame.entry as usize]);
            }
        }
    }
}

fn unknown(reason: String) -> Verdict {
    Verdict::Unknown {
        partition: String::new(),
        reason,
    }
}

fn describe<I: std::fmt::Debug, O: std::fmt::Debug>(index: u32, op: &Operation<I, O>) -> String {
    match &op.completion {
        Some(done) => format!(
            "#{index} client {} {:?} -> {:?} (t {}..{})",
            op.client, op.input, done.output, op.call, done.ret
        ),
        None => format!(
            "#{index} client {} {:?} -> pending (t {}..)",
            op.client, op.input, op.call
        ),
    }
}

/// "Linearized k of n operations ...; state ...; op #j could not be placed."
fn explain<M: Model>(
    ops: &[&Operation<M::Input, M::Output>],
    best: &[u32],
    blocked: Option<u32>,
) -> String {
    let mut state = M::init();
    for &i in best {
        let op = ops[i as usize];
        let output = op.completion.as_ref().map(|done| &done.output);
        // The prefix was linearized by the search, so every step succeeds.
        state = M::step(&state, &op.input, output).unwrap_or(state);
    }
    let mut text = format!(
        "longest linearizable prefix: {} of {} operations",
        best.len(),
        ops.len()
    );
    let shown = best.len().saturating_sub(EXPLANATION_PREFIX_OPS_MAX);
    if shown > 0 {
        let _ = write!(text, ", ending ...");
    } else if !best.is_empty() {
        let _ = write!(text, ":");
    }
    for &i in &best[shown..] {
        let _ = write!(text, " {};", describe(i, ops[i as usize]));
    }
    let _ = write!(text, " state after it: {state:?}");
    if let Some(i) = blocked {
        let _ = write!(
            text,
            "; then {} could not be linearized (no order of the operations concurrent with it \
             is consistent with the model)",
            describe(i, ops[i as usize])
        );
    }
    text
}
