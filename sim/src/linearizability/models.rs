//! Models for the reference histories: a single register with read / write /
//! compare-and-set (Jepsen's etcd test), a key-value map with get / put / append
//! (Porcupine's kv test), and [`Whole`], which turns any per-key model into one model of
//! the whole keyspace (one partition), to test P-compositionality.
//!
//! What can fail here: nothing; `step` returns `None` for an impossible reply.

use std::fmt;
use std::marker::PhantomData;

use super::{ByteKey, Model};

/// A register command (Jepsen `:read`, `:write v`, `:cas [old new]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read the value.
    Read,
    /// Set the value.
    Write(i64),
    /// Set the value to `.1` if it is `.0`.
    Cas(i64, i64),
}

/// A register reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// The value read (`None` = unset, Jepsen `nil`).
    Read(Option<i64>),
    /// A write or a successful compare-and-set (Jepsen `:ok`).
    Ok,
    /// A compare-and-set whose compare failed: no effect (Jepsen `:fail :cas`).
    CasFailed,
}

/// One register, initially unset.
#[derive(Clone, Copy, Debug)]
pub struct Register;

impl Model for Register {
    type Key = ();
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init() -> Option<i64> {
        None
    }

    fn step(
        state: &Option<i64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Option<i64>> {
        match (input, output) {
            (RegisterInput::Read, None) => Some(*state),
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) => (v == state).then_some(*state),
            (RegisterInput::Write(v), None | Some(RegisterOutput::Ok)) => Some(Some(*v)),
            (RegisterInput::Cas(old, new), None) => Some(if *state == Some(*old) {
                Some(*new)
            } else {
                *state
            }),
            (RegisterInput::Cas(old, new), Some(RegisterOutput::Ok)) => {
                (*state == Some(*old)).then_some(Some(*new))
            }
            (RegisterInput::Cas(old, _), Some(RegisterOutput::CasFailed)) => {
                (*state != Some(*old)).then_some(*state)
            }
            _ => None,
        }
    }

    fn partition(_input: &RegisterInput) {}

    fn is_read_only(input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }

    fn is_blind(input: &RegisterInput, output: Option<&RegisterOutput>) -> bool {
        matches!(
            (input, output),
            (RegisterInput::Write(_), None | Some(RegisterOutput::Ok))
        )
    }

    fn is_pure(input: &RegisterInput, output: Option<&RegisterOutput>) -> bool {
        matches!(
            (input, output),
            (RegisterInput::Read, _) | (RegisterInput::Cas(..), Some(RegisterOutput::CasFailed))
        )
    }
}

/// A key-value command (Porcupine kv: `get`, `put`, `append`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// The whole value (empty when unset).
    Get,
    /// Replace the value.
    Put(Vec<u8>),
    /// Concatenate to the value.
    Append(Vec<u8>),
}

/// A command on one key (`Debug`: `append("1", "x 4 0 y")`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KvInput {
    /// The key.
    pub key: Vec<u8>,
    /// The command.
    pub op: KvOp,
}

impl fmt::Debug for KvInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.escape_ascii();
        match &self.op {
            KvOp::Get => write!(f, "get(\"{key}\")"),
            KvOp::Put(v) => write!(f, "put(\"{key}\", \"{}\")", v.escape_ascii()),
            KvOp::Append(v) => write!(f, "append(\"{key}\", \"{}\")", v.escape_ascii()),
        }
    }
}

/// A key-value reply (`Debug`: the value as a string, or `ok`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// What `get` returned.
    Value(Vec<u8>),
    /// `put` / `append` done.
    Ok,
}

impl fmt::Debug for KvOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOutput::Value(v) => write!(f, "\"{}\"", v.escape_ascii()),
            KvOutput::Ok => write!(f, "ok"),
        }
    }
}

/// A map from keys to strings; unset reads as empty.
#[derive(Clone, Copy, Debug)]
pub struct KvMap;

impl Model for KvMap {
    type Key = ByteKey;
    type State = Vec<u8>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init() -> Vec<u8> {
        Vec::new()
    }

    fn step(state: &Vec<u8>, input: &KvInput, output: Option<&KvOutput>) -> Option<Vec<u8>> {
        match (&input.op, output) {
            (KvOp::Get, None) => Some(state.clone()),
            (KvOp::Get, Some(KvOutput::Value(v))) => (v == state).then(|| state.clone()),
            (KvOp::Put(v), None | Some(KvOutput::Ok)) => Some(v.clone()),
            (KvOp::Append(v), None | Some(KvOutput::Ok)) => {
                let mut next = Vec::with_capacity(state.len() + v.len());
                next.extend_from_slice(state);
                next.extend_from_slice(v);
                Some(next)
            }
            _ => None,
        }
    }

    fn partition(input: &KvInput) -> ByteKey {
        ByteKey(input.key.clone())
    }

    fn is_blind(input: &KvInput, output: Option<&KvOutput>) -> bool {
        matches!(input.op, KvOp::Put(_)) && matches!(output, None | Some(KvOutput::Ok))
    }

    fn is_read_only(input: &KvInput) -> bool {
        input.op == KvOp::Get
    }
}

/// Model `M` over the whole keyspace as one object: the state maps each touched key to its
/// `M` state (sorted by key); every operation is in the single partition `()`.
#[derive(Clone, Copy, Debug)]
pub struct Whole<M>(PhantomData<M>);

impl<M: Model> Model for Whole<M> {
    type Key = ();
    type State = Vec<(M::Key, M::State)>;
    type Input = M::Input;
    type Output = M::Output;

    fn init() -> Self::State {
        Vec::new()
    }

    fn step(
        state: &Self::State,
        input: &M::Input,
        output: Option<&M::Output>,
    ) -> Option<Self::State> {
        let key = M::partition(input);
        match state.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => {
                let next = M::step(&state[at].1, input, output)?;
                let mut whole = state.clone();
                whole[at].1 = next;
                Some(whole)
            }
            Err(at) => {
                let next = M::step(&M::init(), input, output)?;
                let mut whole = state.clone();
                whole.insert(at, (key, next));
                Some(whole)
            }
        }
    }

    fn partition(_input: &M::Input) {}

    fn is_read_only(input: &M::Input) -> bool {
        M::is_read_only(input)
    }

    fn is_pure(input: &M::Input, output: Option<&M::Output>) -> bool {
        M::is_pure(input, output)
    }

    // Not blind: a write to one key leaves the other keys' states as they were.
}
