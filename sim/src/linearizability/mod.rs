//! A linearizability checker for client histories (Wing & Gong search with Lowe's
//! memoization, as in Lowe, "Testing for linearizability", 2017, and the Porcupine
//! checker), with P-compositionality: a history is split by key and every key is checked
//! on its own (Herlihy & Wing: a history is linearizable iff each object's is).
//!
//! Pieces: [`history`] (operations, [`History`], the [`Recorder`] a simulated client
//! appends invoke/return events to), [`search`] (the iterative search over one partition),
//! [`models`] (register, key-value map) and [`tidemark_models`] (strings, hashes, lists,
//! sets as tidemark serves them), [`parse_jepsen`] and [`parse_kv`] (the reference
//! histories' formats, see `shared/linearizability-histories/README.md`).
//!
//! Semantics: an operation takes effect atomically at one instant between its call and its
//! return. An operation without a return (timeout, reset, crash) is *pending forever*: it
//! may take effect at any instant after its call, or never. A pending read constrains
//! nothing and is dropped.
//!
//! What can fail here: a check ends in [`Verdict::NotLinearizable`] (naming the partition,
//! the longest linearizable prefix found and the operation that could not be placed) or,
//! when the [`Budget`] runs out, [`Verdict::Unknown`] — never a silent pass.

pub mod history;
pub mod models;
pub mod parse_jepsen;
pub mod parse_kv;
pub mod search;
pub mod tidemark_models;

use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};

pub use history::{Completion, History, HistoryError, OpId, Operation, Recorder};
pub use models::Whole;

/// A sequential specification of an object, checked one partition (key) at a time.
///
/// `State` must be small and cheap to clone and hash: the search memoizes every
/// (set of linearized operations, state) pair it visits.
pub trait Model {
    /// What an operation's partition is named by (usually the key); `()` for one object.
    type Key: Ord + Clone + Hash + Debug;
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;
    /// An operation's input (command and arguments, including the key).
    type Input: Clone + Debug;
    /// An operation's output (the reply).
    type Output: Clone + Debug;

    /// The state before any operation.
    fn init() -> Self::State;

    /// The state after `input` takes effect in `state` and replies `output`, or `None` when
    /// that reply is impossible from `state`. `output` is `None` for an operation whose
    /// reply was never seen (pending forever): any reply is acceptable then.
    fn step(
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// The partition (key) `input` belongs to. Operations in different partitions must
    /// not affect each other (single-key operations only).
    fn partition(input: &Self::Input) -> Self::Key;

    /// True when `input` never changes the state (a read): such an operation without a
    /// reply constrains nothing and is dropped from the history.
    fn is_read_only(_input: &Self::Input) -> bool {
        false
    }

    /// True when an operation with this input and output never changes the state wherever
    /// it is legal (a read, a compare-and-set that failed, a DEL that replied 0). The
    /// search linearizes such an operation as soon as it is legal and tries no
    /// alternative to it: it could be moved to that point in any linearization. Saying
    /// `false` is always safe; saying `true` wrongly makes the checker unsound.
    fn is_pure(input: &Self::Input, _output: Option<&Self::Output>) -> bool {
        Self::is_read_only(input)
    }

    /// True when an operation with this input and output (`None`: unknown) is legal in
    /// every state and leaves a state that does not depend on the one before (SET, a
    /// register write). Saying `false` is always safe; saying `true` wrongly makes the
    /// checker unsound.
    fn is_blind(_input: &Self::Input, _output: Option<&Self::Output>) -> bool {
        false
    }
}

/// A key as raw bytes whose `Debug` form is a readable, escaped string (`"user:1"`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteKey(pub Vec<u8>);

impl Debug for ByteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// How much search a check may do before it gives up with [`Verdict::Unknown`].
/// Deterministic: counted in search steps and memo entries, never in wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Most search steps (call or return events visited) per partition.
    pub steps_max_per_partition: u64,
    /// Most memoized (linearized set, state) entries, and most distinct states, per
    /// partition (bounds memory).
    pub cache_entries_max_per_partition: usize,
}

impl Budget {
    /// Enough for every reference history (their largest needs well under a million
    /// steps) with room to spare.
    pub const DEFAULT: Budget = Budget {
        steps_max_per_partition: 20_000_000,
        cache_entries_max_per_partition: 2_000_000,
    };
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::DEFAULT
    }
}

/// The outcome of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition has a linearization.
    Linearizable,
    /// Some partition has none (the first such partition, in key order).
    NotLinearizable {
        /// The partition's key, `Debug`-formatted.
        partition: String,
        /// The longest linearizable prefix found and the operation that could not follow it.
        explanation: String,
    },
    /// No partition is proven non-linearizable, but the budget ran out on this one.
    Unknown {
        /// The partition's key, `Debug`-formatted.
        partition: String,
        /// Which budget ran out, and after how much work.
        reason: String,
    },
}

impl Verdict {
    /// True only for [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    /// True only for [`Verdict::NotLinearizable`].
    pub fn is_not_linearizable(&self) -> bool {
        matches!(self, Verdict::NotLinearizable { .. })
    }
}

/// A verdict with the work it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The outcome.
    pub verdict: Verdict,
    /// Partitions (keys) in the history.
    pub partitions: usize,
    /// Search steps over every partition checked.
    pub steps: u64,
    /// Largest memo table of one partition.
    pub memo_entries_max: usize,
}

/// Step budget of the first round of [`check_history_report`]; each later round
/// multiplies it by [`ROUND_STEPS_GROWTH`] up to [`Budget::steps_max_per_partition`].
pub const ROUND_STEPS_FIRST: u64 = 10_000;
/// Growth of the per-partition step budget between rounds.
pub const ROUND_STEPS_GROWTH: u64 = 8;

/// Checks `history` key by key (P-compositionality): [`Verdict::NotLinearizable`] for a
/// non-linearizable partition, else [`Verdict::Unknown`] for the first partition (in key
/// order) whose budget ran out, else [`Verdict::Linearizable`].
pub fn check_history<M: Model>(history: &History<M>, budget: Budget) -> Verdict {
    check_history_report(history, budget).verdict
}

/// [`check_history`], also reporting the work done. Partitions are checked in rounds of
/// growing step budgets (iterative deepening), so one cheap violation is found even when
/// another key's search is expensive; a partition left undecided by a round is checked
/// again from scratch with the next budget (at most ~1/7 extra work).
pub fn check_history_report<M: Model>(history: &History<M>, budget: Budget) -> Report {
    let mut partitions: std::collections::BTreeMap<M::Key, Vec<usize>> = Default::default();
    for (index, op) in history.operations().iter().enumerate() {
        partitions
            .entry(M::partition(&op.input))
            .or_default()
            .push(index);
    }
    let mut report = Report {
        verdict: Verdict::Linearizable,
        partitions: partitions.len(),
        steps: 0,
        memo_entries_max: 0,
    };
    let mut undecided: Vec<(&M::Key, &Vec<usize>)> = partitions.iter().collect();
    let mut round_steps = ROUND_STEPS_FIRST.min(budget.steps_max_per_partition);
    loop {
        let round = Budget {
            steps_max_per_partition: round_steps,
            ..budget
        };
        let mut still = Vec::new();
        let mut first_unknown = None;
        for (key, indexes) in undecided {
            let ops: Vec<&Operation<M::Input, M::Output>> =
                indexes.iter().map(|&i| &history.operations()[i]).collect();
            let (verdict, stats) = search::check_partition::<M>(&ops, round);
            report.steps += stats.steps;
            report.memo_entries_max = report.memo_entries_max.max(stats.memo_entries);
            match verdict {
                Verdict::Linearizable => {}
                Verdict::NotLinearizable { explanation, .. } => {
                    report.verdict = Verdict::NotLinearizable {
                        partition: format!("{key:?}"),
                        explanation,
                    };
                    return report;
                }
                Verdict::Unknown { reason, .. } => {
                    if first_unknown.is_none() {
                        first_unknown = Some(Verdict::Unknown {
                            partition: format!("{key:?}"),
                            reason,
                        });
                    }
                    still.push((key, indexes));
                }
            }
        }
        let Some(unknown) = first_unknown else {
            return report;
        };
        if round_steps >= budget.steps_max_per_partition {
            report.verdict = unknown;
            return report;
        }
        undecided = still;
        round_steps = round_steps
            .saturating_mul(ROUND_STEPS_GROWTH)
            .min(budget.steps_max_per_partition);
    }
}

/// Checks `history` as one partition (the whole keyspace as one object, via [`Whole`]):
/// slower than [`check_history`], and must give the same verdict when neither runs out of
/// budget. Exists to test P-compositionality.
pub fn check_history_whole<M: Model>(history: &History<M>, budget: Budget) -> Report {
    let ops: Vec<&Operation<M::Input, M::Output>> = history.operations().iter().collect();
    let (verdict, stats) = search::check_partition::<Whole<M>>(&ops, budget);
    Report {
        verdict,
        partitions: 1,
        steps: stats.steps,
        memo_entries_max: stats.memo_entries,
    }
}

/// A small, fixed (unseeded, deterministic) 64-bit hasher for the search's memo table:
/// multiply-rotate over 8-byte words with a splitmix64 finish.
#[derive(Clone, Copy, Default)]
pub struct FixedHasher {
    state: u64,
}

const HASH_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl FixedHasher {
    fn add_word(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(HASH_MULTIPLIER);
    }
}

impl Hasher for FixedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add_word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add_word(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add_word(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add_word(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add_word(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add_word(n as u64);
    }

    fn finish(&self) -> u64 {
        mix64(self.state)
    }
}

/// `BuildHasher` for [`FixedHasher`].
pub type FixedState = BuildHasherDefault<FixedHasher>;

/// The splitmix64 finalizer: a bijective avalanche of a 64-bit word.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
