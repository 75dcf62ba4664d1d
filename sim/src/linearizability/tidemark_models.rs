//! Per-key models of tidemark's command families, for checking simulated client
//! histories: strings (SET/GET/INCRBY/APPEND/DEL/STRLEN/EXISTS, reusing
//! [`crate::model::Op`] / [`crate::model::Reply`] / [`crate::model::apply`]), hashes
//! (HSET/HGET/HDEL/HLEN), lists (LPUSH/RPUSH/LPOP/RPOP/LLEN/LRANGE 0 -1) and sets
//! (SADD/SREM/SISMEMBER/SCARD/SMEMBERS). Semantics follow the Redis 7 command docs; an
//! empty collection is an absent key. The workload must keep families on disjoint keys
//! (no WRONGTYPE replies are modelled) and send single-key commands only.
//!
//! What can fail here: nothing; `step` returns `None` for an impossible reply.

use std::fmt;

use crate::model::{apply, Op, Reply};

use super::{ByteKey, Model};

/// A command on one key (`Debug`: `Set([..]) on "key"`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyOp<O> {
    /// The key.
    pub key: Vec<u8>,
    /// The command (without the key).
    pub op: O,
}

impl<O: fmt::Debug> fmt::Debug for KeyOp<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} on \"{}\"", self.op, self.key.escape_ascii())
    }
}

/// The strings family: one key's value (`None` = absent).
#[derive(Clone, Copy, Debug)]
pub struct Strings;

impl Model for Strings {
    type Key = ByteKey;
    type State = Option<Vec<u8>>;
    type Input = KeyOp<Op>;
    type Output = Reply;

    fn init() -> Option<Vec<u8>> {
        None
    }

    fn step(
        state: &Option<Vec<u8>>,
        input: &KeyOp<Op>,
        output: Option<&Reply>,
    ) -> Option<Option<Vec<u8>>> {
        let (next, expected) = apply(&input.op, state);
        match output {
            Some(reply) if *reply != expected => None,
            _ => Some(next),
        }
    }

    fn partition(input: &KeyOp<Op>) -> ByteKey {
        ByteKey(input.key.clone())
    }

    fn is_read_only(input: &KeyOp<Op>) -> bool {
        matches!(input.op, Op::Get | Op::Strlen | Op::Exists)
    }

    fn is_blind(input: &KeyOp<Op>, output: Option<&Reply>) -> bool {
        matches!(input.op, Op::Set(_)) && matches!(output, None | Some(Reply::Ok))
    }

    fn is_pure(input: &KeyOp<Op>, output: Option<&Reply>) -> bool {
        Self::is_read_only(input) || (input.op == Op::Del && output == Some(&Reply::Integer(0)))
    }
}

/// A reply of a collection command.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CollectionReply {
    /// Integer reply (counts, lengths, 0/1).
    Integer(i64),
    /// Bulk string or null (HGET, LPOP, RPOP).
    Value(Option<Vec<u8>>),
    /// Array of bulk strings (LRANGE in order; SMEMBERS in any order).
    Array(Vec<Vec<u8>>),
}

fn count(n: usize) -> CollectionReply {
    CollectionReply::Integer(n as i64)
}

/// Applies a deterministic command, then compares the reply (any reply if unknown).
fn check<S>(next: S, expected: CollectionReply, output: Option<&CollectionReply>) -> Option<S> {
    match output {
        Some(reply) if *reply != expected => None,
        _ => Some(next),
    }
}

/// A hash command (the key is in [`KeyOp`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashOp {
    /// `HSET key field value [field value ...]` → number of fields added.
    Hset(Vec<(Vec<u8>, Vec<u8>)>),
    /// `HGET key field` → value or null.
    Hget(Vec<u8>),
    /// `HDEL key field [field ...]` → number of fields removed.
    Hdel(Vec<Vec<u8>>),
    /// `HLEN key` → number of fields.
    Hlen,
}

/// The hashes family: one key's fields, sorted by field.
#[derive(Clone, Copy, Debug)]
pub struct Hashes;

impl Model for Hashes {
    type Key = ByteKey;
    type State = Vec<(Vec<u8>, Vec<u8>)>;
    type Input = KeyOp<HashOp>;
    type Output = CollectionReply;

    fn init() -> Self::State {
        Vec::new()
    }

    fn step(
        state: &Self::State,
        input: &KeyOp<HashOp>,
        output: Option<&CollectionReply>,
    ) -> Option<Self::State> {
        let find =
            |fields: &Self::State, f: &[u8]| fields.binary_search_by(|(k, _)| k.as_slice().cmp(f));
        match &input.op {
            HashOp::Hset(pairs) => {
                let mut next = state.clone();
                let mut added = 0;
                for (field, value) in pairs {
                    match find(&next, field) {
                        Ok(at) => next[at].1 = value.clone(),
                        Err(at) => {
                            next.insert(at, (field.clone(), value.clone()));
                            added += 1;
                        }
                    }
                }
                check(next, count(added), output)
            }
            HashOp::Hget(field) => {
                let value = find(state, field).ok().map(|at| state[at].1.clone());
                check(state.clone(), CollectionReply::Value(value), output)
            }
            HashOp::Hdel(fields) => {
                let mut next = state.clone();
                let mut removed = 0;
                for field in fields {
                    if let Ok(at) = find(&next, field) {
                        next.remove(at);
                        removed += 1;
                    }
                }
                check(next, count(removed), output)
            }
            HashOp::Hlen => check(state.clone(), count(state.len()), output),
        }
    }

    fn partition(input: &KeyOp<HashOp>) -> ByteKey {
        ByteKey(input.key.clone())
    }

    fn is_read_only(input: &KeyOp<HashOp>) -> bool {
        matches!(input.op, HashOp::Hget(_) | HashOp::Hlen)
    }

    fn is_pure(input: &KeyOp<HashOp>, output: Option<&CollectionReply>) -> bool {
        Self::is_read_only(input)
            || (matches!(input.op, HashOp::Hdel(_)) && output == Some(&CollectionReply::Integer(0)))
    }
}

/// A list command (the key is in [`KeyOp`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListOp {
    /// `LPUSH key e [e ...]`: each pushed at the head in turn → new length.
    Lpush(Vec<Vec<u8>>),
    /// `RPUSH key e [e ...]` → new length.
    Rpush(Vec<Vec<u8>>),
    /// `LPOP key` → head or null.
    Lpop,
    /// `RPOP key` → tail or null.
    Rpop,
    /// `LLEN key` → length.
    Llen,
    /// `LRANGE key 0 -1` → every element, head first.
    LrangeAll,
}

/// The lists family: one key's elements, head first.
#[derive(Clone, Copy, Debug)]
pub struct Lists;

impl Model for Lists {
    type Key = ByteKey;
    type State = Vec<Vec<u8>>;
    type Input = KeyOp<ListOp>;
    type Output = CollectionReply;

    fn init() -> Self::State {
        Vec::new()
    }

    fn step(
        state: &Self::State,
        input: &KeyOp<ListOp>,
        output: Option<&CollectionReply>,
    ) -> Option<Self::State> {
        match &input.op {
            ListOp::Lpush(elements) => {
                let mut next: Vec<Vec<u8>> = elements.iter().rev().cloned().collect();
                next.extend(state.iter().cloned());
                let len = next.len();
                check(next, count(len), output)
            }
            ListOp::Rpush(elements) => {
                let mut next = state.clone();
                next.extend(elements.iter().cloned());
                let len = next.len();
                check(next, count(len), output)
            }
            ListOp::Lpop => {
                let head = state.first().cloned();
                let next = state.get(1..).unwrap_or_default().to_vec();
                check(next, CollectionReply::Value(head), output)
            }
            ListOp::Rpop => {
                let mut next = state.clone();
                let tail = next.pop();
                check(next, CollectionReply::Value(tail), output)
            }
            ListOp::Llen => check(state.clone(), count(state.len()), output),
            ListOp::LrangeAll => {
                check(state.clone(), CollectionReply::Array(state.clone()), output)
            }
        }
    }

    fn partition(input: &KeyOp<ListOp>) -> ByteKey {
        ByteKey(input.key.clone())
    }

    fn is_read_only(input: &KeyOp<ListOp>) -> bool {
        matches!(input.op, ListOp::Llen | ListOp::LrangeAll)
    }

    fn is_pure(input: &KeyOp<ListOp>, output: Option<&CollectionReply>) -> bool {
        Self::is_read_only(input)
            || (matches!(input.op, ListOp::Lpop | ListOp::Rpop)
                && output == Some(&CollectionReply::Value(None)))
    }
}

/// A set command (the key is in [`KeyOp`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetOp {
    /// `SADD key m [m ...]` → number of members added.
    Sadd(Vec<Vec<u8>>),
    /// `SREM key m [m ...]` → number of members removed.
    Srem(Vec<Vec<u8>>),
    /// `SISMEMBER key m` → 1 or 0.
    Sismember(Vec<u8>),
    /// `SCARD key` → number of members.
    Scard,
    /// `SMEMBERS key` → every member, in any order.
    Smembers,
}

/// The sets family: one key's members, sorted.
#[derive(Clone, Copy, Debug)]
pub struct Sets;

impl Model for Sets {
    type Key = ByteKey;
    type State = Vec<Vec<u8>>;
    type Input = KeyOp<SetOp>;
    type Output = CollectionReply;

    fn init() -> Self::State {
        Vec::new()
    }

    fn step(
        state: &Self::State,
        input: &KeyOp<SetOp>,
        output: Option<&CollectionReply>,
    ) -> Option<Self::State> {
        match &input.op {
            SetOp::Sadd(members) => {
                let mut next = state.clone();
                let mut added = 0;
                for member in members {
                    if let Err(at) = next.binary_search(member) {
                        next.insert(at, member.clone());
                        added += 1;
                    }
                }
                check(next, count(added), output)
            }
            SetOp::Srem(members) => {
                let mut next = state.clone();
                let mut removed = 0;
                for member in members {
                    if let Ok(at) = next.binary_search(member) {
                        next.remove(at);
                        removed += 1;
                    }
                }
                check(next, count(removed), output)
            }
            SetOp::Sismember(member) => {
                let found = state.binary_search(member).is_ok();
                check(state.clone(), count(usize::from(found)), output)
            }
            SetOp::Scard => check(state.clone(), count(state.len()), output),
            SetOp::Smembers => match output {
                Some(CollectionReply::Array(members)) => {
                    let mut sorted = members.clone();
                    sorted.sort_unstable();
                    (sorted == *state).then(|| state.clone())
                }
                Some(_) => None,
                None => Some(state.clone()),
            },
        }
    }

    fn partition(input: &KeyOp<SetOp>) -> ByteKey {
        ByteKey(input.key.clone())
    }

    fn is_read_only(input: &KeyOp<SetOp>) -> bool {
        matches!(
            input.op,
            SetOp::Sismember(_) | SetOp::Scard | SetOp::Smembers
        )
    }

    fn is_pure(input: &KeyOp<SetOp>, output: Option<&CollectionReply>) -> bool {
        Self::is_read_only(input)
            || (matches!(input.op, SetOp::Sadd(_) | SetOp::Srem(_))
                && output == Some(&CollectionReply::Integer(0)))
    }
}
