//! Shared access to collection values (hashes, sets, …) stored under a key: read the live
//! value with a type check, or run an edit that creates the key when absent and deletes it
//! when the edit empties it (Redis never stores an empty collection).
//!
//! What can fail here: a key holding another type → the WRONGTYPE error frame.

use bytes::Bytes;

use super::{wrongtype, ExecCtx};
use crate::keyspace::hash::HashValue;
use crate::keyspace::set::SetValue;
use crate::keyspace::{Db, Value};
use crate::resp::Frame;

/// A collection type that lives in one [`Value`] variant.
pub(crate) trait Collection: Sized {
    /// A new, empty collection.
    fn empty() -> Self;
    /// True when it holds no element.
    fn is_empty(&self) -> bool;
    /// The collection inside `value`, if `value` is this type.
    fn from_value(value: &Value) -> Option<&Self>;
    /// The same, mutable.
    fn from_value_mut(value: &mut Value) -> Option<&mut Self>;
    /// Wraps it in its `Value` variant.
    fn into_value(self) -> Value;
}

impl Collection for HashValue {
    fn empty() -> Self {
        HashValue::new()
    }
    fn is_empty(&self) -> bool {
        HashValue::is_empty(self)
    }
    fn from_value(value: &Value) -> Option<&Self> {
        match value {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }
    fn from_value_mut(value: &mut Value) -> Option<&mut Self> {
        match value {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }
    fn into_value(self) -> Value {
        Value::Hash(self)
    }
}

impl Collection for SetValue {
    fn empty() -> Self {
        SetValue::new()
    }
    fn is_empty(&self) -> bool {
        SetValue::is_empty(self)
    }
    fn from_value(value: &Value) -> Option<&Self> {
        match value {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }
    fn from_value_mut(value: &mut Value) -> Option<&mut Self> {
        match value {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }
    fn into_value(self) -> Value {
        Value::Set(self)
    }
}

/// The live collection at `key`: Ok(None) if absent, Err(WRONGTYPE) for another type.
pub(crate) fn read<'a, C: Collection>(
    db: &'a mut Db,
    ctx: &mut ExecCtx,
    key: &[u8],
) -> Result<Option<&'a C>, Frame> {
    match db.get(ctx, key).map(|e| &e.value) {
        None => Ok(None),
        Some(value) => C::from_value(value).map(Some).ok_or_else(wrongtype),
    }
}

/// Runs `f` on the collection at `key`, creating an empty one if the key is absent (stored
/// only if `f` left it non-empty) and deleting the key if `f` emptied it. Err(WRONGTYPE)
/// for another type. The TTL of an existing key is kept.
pub(crate) fn with_mut<C: Collection, R>(
    db: &mut Db,
    ctx: &mut ExecCtx,
    key: &Bytes,
    f: impl FnOnce(&mut C) -> R,
) -> Result<R, Frame> {
    match db.get(ctx, key).map(|e| C::from_value(&e.value).is_some()) {
        None => {
            let mut fresh = C::empty();
            let out = f(&mut fresh);
            if !fresh.is_empty() {
                db.insert(key.clone(), fresh.into_value(), None);
            }
            Ok(out)
        }
        Some(true) => {
            let (out, now_empty) = db
                .update_value(key, |v| {
                    let c = C::from_value_mut(v).expect("type checked above");
                    let out = f(c);
                    (out, c.is_empty())
                })
                .expect("key checked above");
            if now_empty {
                db.remove_entry(key);
            }
            Ok(out)
        }
        Some(false) => Err(wrongtype()),
    }
}
