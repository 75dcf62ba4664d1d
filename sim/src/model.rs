//! The reference model and the durability oracle of the simulator.
//!
//! Each workload key has a set of *possible* values (absent, or bytes). An acknowledged
//! operation maps every possible value through the operation and keeps only those whose
//! expected reply equals the reply the server gave; an operation with an unknown outcome
//! (connection reset, timeout, crash) keeps both the old and the new possibilities. After a
//! restart the checker reads every key: the value read must be one of the possibilities
//! (otherwise an acknowledged write was lost, or something applied twice or was invented),
//! and becomes the only possibility.
//!
//! Under `appendfsync everysec` a machine crash may lose the last ~2 s of acknowledged
//! writes; keys written in that window are re-based without a check (`forgive`).
//!
//! Reads after an uncertain write ("tainted" keys): once the server's AOF is latched
//! failed, reads answer from memory without waiting for the log, so they may reveal a
//! write whose record never became durable (its client got an error). A read of a key with
//! an uncertain operation since its last re-base is therefore only *checked* (its reply must
//! be possible) but does not narrow the possibilities. An acknowledged write clears the
//! taint: its acknowledgement covers every earlier record of the shard.
//!
//! What can fail here: `Violation`s, each naming the key, what was expected and what was
//! seen. A key whose possibility set would grow past `POSSIBLE_VALUES_MAX` stops being
//! checked until the next read re-bases it (counted in `unchecked_keys`).

use std::collections::{BTreeMap, BTreeSet};

/// Most possible values tracked per key before the key is left unchecked.
pub const POSSIBLE_VALUES_MAX: usize = 64;

/// One workload operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `SET key value` → `+OK`.
    Set(Vec<u8>),
    /// `GET key` → bulk or null.
    Get,
    /// `INCRBY key n` → integer (the value must hold an integer; the workload keeps
    /// counter keys and string keys apart so the model never needs the error path).
    IncrBy(i64),
    /// `APPEND key value` → new length.
    Append(Vec<u8>),
    /// `DEL key` → 0 or 1.
    Del,
    /// `STRLEN key` → length.
    Strlen,
    /// `EXISTS key` → 0 or 1.
    Exists,
}

/// A reply as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// Bulk string or null.
    Value(Option<Vec<u8>>),
    /// Integer.
    Integer(i64),
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

type Possible = Vec<Option<Vec<u8>>>;

/// Applies `op` to one possible value: the new value and the reply the server must give.
pub fn apply(op: &Op, value: &Option<Vec<u8>>) -> (Option<Vec<u8>>, Reply) {
    match op {
        Op::Set(v) => (Some(v.clone()), Reply::Ok),
        Op::Get => (value.clone(), Reply::Value(value.clone())),
        Op::IncrBy(n) => {
            let current = value
                .as_ref()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
                .unwrap_or(0);
            let next = current.wrapping_add(*n);
            (Some(next.to_string().into_bytes()), Reply::Integer(next))
        }
        Op::Append(v) => {
            let mut next = value.clone().unwrap_or_default();
            next.extend_from_slice(v);
            let len = next.len() as i64;
            (Some(next), Reply::Integer(len))
        }
        Op::Del => (None, Reply::Integer(i64::from(value.is_some()))),
        Op::Strlen => (
            value.clone(),
            Reply::Integer(value.as_ref().map_or(0, |v| v.len() as i64)),
        ),
        Op::Exists => (value.clone(), Reply::Integer(i64::from(value.is_some()))),
    }
}

/// True for operations that do not change the value (their replies only observe it).
pub fn is_read(op: &Op) -> bool {
    matches!(op, Op::Get | Op::Strlen | Op::Exists)
}

/// The possible state of every workload key.
#[derive(Default)]
pub struct Model {
    keys: BTreeMap<Vec<u8>, Option<Possible>>,
    /// Keys with an uncertain operation since their last re-base (see the module comment).
    tainted: BTreeSet<Vec<u8>>,
    /// Keys left unchecked because their possibilities grew too many.
    pub unchecked_keys: u64,
}

impl Model {
    /// An empty model: every key is absent.
    pub fn new() -> Model {
        Model::default()
    }

    fn possible(&mut self, key: &[u8]) -> &mut Option<Possible> {
        self.keys
            .entry(key.to_vec())
            .or_insert_with(|| Some(vec![None]))
    }

    /// An acknowledged operation with its reply.
    pub fn acked(&mut self, key: &[u8], op: &Op, reply: &Reply) -> Result<(), Violation> {
        let tainted_read = is_read(op) && self.tainted.contains(key);
        if !is_read(op) {
            self.tainted.remove(key);
        }
        let Some(possible) = self.possible(key).as_mut() else {
            // Unchecked key: a read re-bases it (unless it may show a non-durable write).
            if let (Op::Get, Reply::Value(v), false) = (op, reply, tainted_read) {
                *self.possible(key) = Some(vec![v.clone()]);
            }
            return Ok(());
        };
        let before = possible.clone();
        let mut next: Possible = Vec::new();
        for value in possible.iter() {
            let (new_value, expected) = apply(op, value);
            if &expected == reply && !next.contains(&new_value) {
                next.push(new_value);
            }
        }
        if next.is_empty() {
            return Err(Violation(format!(
                "key {:?}: {op:?} replied {reply:?}, but the possible values were {}",
                String::from_utf8_lossy(key),
                printable(&before)
            )));
        }
        if !tainted_read {
            *possible = next;
        }
        Ok(())
    }

    /// An operation whose outcome is unknown (it may or may not have taken effect).
    pub fn uncertain(&mut self, key: &[u8], op: &Op) {
        if is_read(op) {
            return;
        }
        self.tainted.insert(key.to_vec());
        let slot = self.possible(key);
        let Some(possible) = slot.as_mut() else {
            return;
        };
        let mut next = possible.clone();
        for value in possible.iter() {
            let (new_value, _) = apply(op, value);
            if !next.contains(&new_value) {
                next.push(new_value);
            }
        }
        if next.len() > POSSIBLE_VALUES_MAX {
            *slot = None;
            self.unchecked_keys += 1;
        } else {
            *possible = next;
        }
    }

    /// A value read after a restart: must be possible; becomes the only possibility.
    pub fn observe(&mut self, key: &[u8], value: Option<Vec<u8>>) -> Result<(), Violation> {
        self.tainted.remove(key);
        let slot = self.possible(key);
        if let Some(possible) = slot.as_ref() {
            if !possible.contains(&value) {
                let seen = match &value {
                    None => "(absent)".to_string(),
                    Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
                };
                return Err(Violation(format!(
                    "key {:?}: read {seen}, but the acknowledged history allows only {}",
                    String::from_utf8_lossy(key),
                    printable(possible)
                )));
            }
        }
        *slot = Some(vec![value]);
        Ok(())
    }

    /// A value read from a LIVE node (no crash since the key was last written): must be
    /// possible; becomes the only possibility unless the key is tainted (the read may show
    /// a write that never became durable, see the module comment).
    pub fn observe_live(&mut self, key: &[u8], value: Option<Vec<u8>>) -> Result<(), Violation> {
        if !self.tainted.contains(key) {
            return self.observe(key, value);
        }
        if !self.is_possible(key, &value) {
            let mut probe = self.clone_key(key);
            return probe.observe(key, value);
        }
        Ok(())
    }

    fn clone_key(&self, key: &[u8]) -> Model {
        let mut one = Model::new();
        if let Some(state) = self.keys.get(key) {
            one.keys.insert(key.to_vec(), state.clone());
        }
        one
    }

    /// Re-bases a key on what was read without checking (allowed loss window).
    pub fn forgive(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        self.tainted.remove(key);
        *self.possible(key) = Some(vec![value]);
    }

    /// Whether `value` is one of the possible values of `key` (true for unchecked keys).
    pub fn is_possible(&self, key: &[u8], value: &Option<Vec<u8>>) -> bool {
        match self.keys.get(key) {
            None => value.is_none(),
            Some(None) => true,
            Some(Some(possible)) => possible.contains(value),
        }
    }

    /// How many values `key` may hold now (0 for an unchecked key).
    pub fn possible_count(&self, key: &[u8]) -> usize {
        match self.keys.get(key) {
            None => 1,
            Some(None) => 0,
            Some(Some(possible)) => possible.len(),
        }
    }

    /// Every key the model has seen, in order.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.keys.keys().cloned().collect()
    }
}

/// Possible values shown in a violation message, at most.
const PRINTED_VALUES_MAX: usize = 6;

fn printable(possible: &Possible) -> String {
    let shown: Vec<String> = possible
        .iter()
        .take(PRINTED_VALUES_MAX)
        .map(|v| match v {
            None => "(absent)".to_string(),
            Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        })
        .collect();
    let more = possible.len().saturating_sub(PRINTED_VALUES_MAX);
    if more > 0 {
        format!("[{}, … {more} more]", shown.join(", "))
    } else {
        format!("[{}]", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_writes_must_survive() {
        let mut model = Model::new();
        model
            .acked(b"k", &Op::Set(b"1".to_vec()), &Reply::Ok)
            .unwrap();
        assert!(
            model.observe(b"k", None).is_err(),
            "a lost acknowledged SET is a violation"
        );
        assert!(model.observe(b"k", Some(b"1".to_vec())).is_ok());
    }

    #[test]
    fn uncertain_ops_may_or_may_not_apply() {
        let mut model = Model::new();
        model
            .acked(b"c", &Op::IncrBy(1), &Reply::Integer(1))
            .unwrap();
        model.uncertain(b"c", &Op::IncrBy(1));
        assert!(model.observe(b"c", Some(b"2".to_vec())).is_ok());
        model.uncertain(b"c", &Op::IncrBy(1));
        let mut again = Model::new();
        again
            .acked(b"c", &Op::IncrBy(1), &Reply::Integer(1))
            .unwrap();
        again.uncertain(b"c", &Op::IncrBy(1));
        assert!(
            again.observe(b"c", Some(b"3".to_vec())).is_err(),
            "double-applied INCR is a violation"
        );
    }

    #[test]
    fn replies_filter_possibilities() {
        let mut model = Model::new();
        model.uncertain(b"k", &Op::Set(b"a".to_vec()));
        // An acknowledged write's reply tells which possibility was real.
        model
            .acked(b"k", &Op::Append(b"b".to_vec()), &Reply::Integer(2))
            .unwrap();
        assert!(
            model.observe(b"k", Some(b"b".to_vec())).is_err(),
            "the reply fixed the value"
        );
        // A read of an untainted key narrows too.
        model.observe(b"k", Some(b"ab".to_vec())).unwrap();
        model.acked(b"k", &Op::Exists, &Reply::Integer(1)).unwrap();
        assert!(model.acked(b"k", &Op::Strlen, &Reply::Integer(5)).is_err());
        let mut model = Model::new();
        assert!(model
            .acked(b"k", &Op::Get, &Reply::Value(Some(b"x".to_vec())))
            .is_err());
    }

    #[test]
    fn reads_of_tainted_keys_check_but_do_not_narrow() {
        let mut model = Model::new();
        model
            .acked(b"k", &Op::Set(b"a".to_vec()), &Reply::Ok)
            .unwrap();
        model.uncertain(b"k", &Op::Set(b"b".to_vec()));
        // The read may reveal a write that never became durable.
        model
            .acked(b"k", &Op::Get, &Reply::Value(Some(b"b".to_vec())))
            .unwrap();
        assert!(model.is_possible(b"k", &Some(b"a".to_vec())));
        assert!(model
            .acked(b"k", &Op::Get, &Reply::Value(Some(b"z".to_vec())))
            .is_err());
        // An acknowledged write clears the taint: reads narrow again.
        model
            .acked(b"k", &Op::Append(b"c".to_vec()), &Reply::Integer(2))
            .unwrap();
        model
            .acked(b"k", &Op::Get, &Reply::Value(Some(b"bc".to_vec())))
            .unwrap();
        assert_eq!(model.possible_count(b"k"), 1);
        assert!(model.observe(b"k", Some(b"ac".to_vec())).is_err());
    }

    #[test]
    fn too_many_possibilities_leave_the_key_unchecked_until_read() {
        let mut model = Model::new();
        for i in 0..10 {
            model.uncertain(b"k", &Op::Append(vec![b'a' + i]));
        }
        assert_eq!(model.unchecked_keys, 1);
        assert!(model.observe(b"k", Some(b"anything".to_vec())).is_ok());
        assert!(model.observe(b"k", None).is_err());
    }
}
