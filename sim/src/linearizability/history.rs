//! Client histories: operations with call and return times, and the [`Recorder`] a
//! simulated client appends invoke/return events to.
//!
//! Times are any monotone `u64` (the recorder uses its own event counter, so the order in
//! which the single-threaded simulator observed events is kept exactly). An operation whose
//! return time equals another's call time counts as concurrent with it (permissive: it
//! can only hide a violation, never invent one).
//!
//! What can fail here: [`History::push`] refuses an operation that returns before its call,
//! or a history longer than [`HISTORY_OPS_MAX`]; the recorder refuses to complete an
//! unknown or already-completed operation ([`HistoryError`]).

use std::fmt;

use super::Model;

/// Most operations in one history (the search indexes operations with `u32`).
pub const HISTORY_OPS_MAX: usize = 1 << 24;

/// The return of a completed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion<O> {
    /// Return time (same unit as the call time, `>=` it).
    pub ret: u64,
    /// The reply.
    pub output: O,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (process) that issued it; a client has at most one operation open.
    pub client: u64,
    /// Call time.
    pub call: u64,
    /// The command.
    pub input: I,
    /// The return, or `None` when the outcome is unknown (pending forever: it may take
    /// effect at any time after `call`, or never).
    pub completion: Option<Completion<O>>,
}

/// Why a history or recorder refused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// The operation returns before it is called.
    ReturnBeforeCall {
        /// Call time.
        call: u64,
        /// Return time.
        ret: u64,
    },
    /// More than [`HISTORY_OPS_MAX`] operations.
    TooManyOperations,
    /// The recorder has no open operation with this id.
    NotOpen(OpId),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::ReturnBeforeCall { call, ret } => {
                write!(f, "operation returns at {ret}, before its call at {call}")
            }
            HistoryError::TooManyOperations => {
                write!(f, "history longer than {HISTORY_OPS_MAX} operations")
            }
            HistoryError::NotOpen(id) => write!(f, "operation {} is not open", id.0),
        }
    }
}

impl std::error::Error for HistoryError {}

/// A history of operations on objects of model `M`.
pub struct History<M: Model> {
    ops: Vec<Operation<M::Input, M::Output>>,
}

impl<M: Model> Clone for History<M> {
    fn clone(&self) -> Self {
        History {
            ops: self.ops.clone(),
        }
    }
}

impl<M: Model> fmt::Debug for History<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History").field("ops", &self.ops).finish()
    }
}

impl<M: Model> Default for History<M> {
    fn default() -> Self {
        History { ops: Vec::new() }
    }
}

impl<M: Model> History<M> {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Adds one operation. A pending read-only operation ([`Model::is_read_only`]) is
    /// dropped: it constrains nothing.
    pub fn push(&mut self, op: Operation<M::Input, M::Output>) -> Result<(), HistoryError> {
        if let Some(done) = &op.completion {
            if done.ret < op.call {
                return Err(HistoryError::ReturnBeforeCall {
                    call: op.call,
                    ret: done.ret,
                });
            }
        } else if M::is_read_only(&op.input) {
            return Ok(());
        }
        if self.ops.len() >= HISTORY_OPS_MAX {
            return Err(HistoryError::TooManyOperations);
        }
        self.ops.push(op);
        Ok(())
    }

    /// Every operation, in the order pushed.
    pub fn operations(&self) -> &[Operation<M::Input, M::Output>] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there is no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Names one recorded operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

/// Records a history as simulated clients see it. Each event gets the next value of the
/// recorder's own counter as its time, so the recorded order is exactly the order in which
/// the (single-threaded, deterministic) simulator called [`Recorder::invoke`] and
/// [`Recorder::ok`]. Call `invoke` before sending the request and `ok` after the reply is
/// read; an operation never completed (or given up with [`Recorder::unknown`]) is pending
/// forever.
pub struct Recorder<M: Model> {
    ops: Vec<Operation<M::Input, M::Output>>,
    open: Vec<bool>,
    clock: u64,
}

impl<M: Model> Default for Recorder<M> {
    fn default() -> Self {
        Recorder {
            ops: Vec::new(),
            open: Vec::new(),
            clock: 0,
        }
    }
}

impl<M: Model> Recorder<M> {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder::default()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Client `client` calls `input`; returns the id to complete it with.
    pub fn invoke(&mut self, client: u64, input: M::Input) -> OpId {
        let call = self.tick();
        self.ops.push(Operation {
            client,
            call,
            input,
            completion: None,
        });
        self.open.push(true);
        OpId(self.ops.len() - 1)
    }

    /// Operation `id` returned `output` (its effect happened, or for a failed
    /// compare-style command, was observed not to).
    pub fn ok(&mut self, id: OpId, output: M::Output) -> Result<(), HistoryError> {
        if !self.open.get(id.0).copied().unwrap_or(false) {
            return Err(HistoryError::NotOpen(id));
        }
        let ret = self.tick();
        self.open[id.0] = false;
        self.ops[id.0].completion = Some(Completion { ret, output });
        Ok(())
    }

    /// Operation `id` ended without a reply (timeout, reset, crash): it stays pending
    /// forever. Equivalent to never completing it; closes it for [`Recorder::ok`].
    pub fn unknown(&mut self, id: OpId) -> Result<(), HistoryError> {
        if !self.open.get(id.0).copied().unwrap_or(false) {
            return Err(HistoryError::NotOpen(id));
        }
        self.open[id.0] = false;
        Ok(())
    }

    /// Number of operations recorded so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every operation recorded so far, indexed by [`OpId`] (pending reads included).
    pub fn operations(&self) -> &[Operation<M::Input, M::Output>] {
        &self.ops
    }

    /// The history recorded so far (pending reads dropped).
    pub fn history(&self) -> Result<History<M>, HistoryError> {
        let mut history = History::new();
        for op in &self.ops {
            history.push(op.clone())?;
        }
        Ok(history)
    }
}
