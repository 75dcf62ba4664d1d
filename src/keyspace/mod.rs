//! The keyspace of one shard (database 0): values, absolute TTLs, lazy and active expiry,
//! a rough memory estimate, and the index order SCAN and RANDOMKEY walk.
//!
//! Storage is an `IndexMap` (insertion-ordered, `swap_remove` on delete) with a seeded
//! `foldhash` hasher, so iteration order depends only on the seed and the command history,
//! never on process randomness. Keys that carry a TTL are also kept in a second `IndexSet`
//! so active expiry can sample them uniformly, like Redis's `expires` dict.
//!
//! Nothing here reads a clock or OS randomness: "now" and random numbers come in through
//! [`crate::cmd::ExecCtx`]. What can fail: nothing returns an error; internal invariants
//! (the TTL index mirrors the entries that carry a TTL) are `assert!`ed.

pub mod glob;
pub mod hash;
pub mod list;
pub mod longdouble;
pub mod set;
pub mod zset;

use bytes::Bytes;
use foldhash::fast::FixedState;
use indexmap::{IndexMap, IndexSet};

use crate::cmd::ExecCtx;

/// Fixed per-entry overhead (hash-table slot, `Bytes` headers, TTL) counted by
/// [`Db::used_memory_bytes`]; a rough figure, not a measurement.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;
/// Extra overhead counted for a key that is also in the TTL index.
pub const EXPIRE_OVERHEAD_BYTES: usize = 32;
/// Keys sampled per round of [`Db::active_expire_cycle`] (Redis: `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const ACTIVE_EXPIRE_SAMPLE_KEYS: usize = 20;
/// Random probes RANDOMKEY makes before falling back to a linear walk.
pub const RANDOM_KEY_TRIES_MAX: usize = 64;

/// A stored value. Each collection type lives in its own file (`hash.rs`, `list.rs`, …);
/// an empty collection is never stored (the key is deleted, as in Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string (also how integers and floats are stored, as in Redis).
    Str(Bytes),
    /// A hash (field → value).
    Hash(hash::HashValue),
    /// A list.
    List(list::ListValue),
    /// A set.
    Set(set::SetValue),
    /// A sorted set.
    ZSet(zset::ZSetValue),
}

impl Value {
    /// The name TYPE and `SCAN … TYPE` use: "string", …
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Rough payload size in bytes.
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Str(b) => b.len(),
            Value::Hash(h) => h.size_bytes(),
            Value::List(l) => l.size_bytes(),
            Value::Set(s) => s.size_bytes(),
            Value::ZSet(z) => z.size_bytes(),
        }
    }
}

/// One key's value and its absolute expiry time (ms since the Unix epoch), if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Value,
    pub expire_at_ms: Option<u64>,
}

/// One database of one shard's keyspace (a shard owns `databases` of them).
#[derive(Clone, Debug)]
pub struct Db {
    entries: IndexMap<Bytes, Entry, FixedState>,
    expiring: IndexSet<Bytes, FixedState>,
    used_memory_bytes: usize,
    /// Keys deleted because their TTL passed (lazy and active expiry), for INFO.
    expired_keys: u64,
}

fn entry_cost(key: &[u8], entry: &Entry) -> usize {
    let ttl = if entry.expire_at_ms.is_some() {
        EXPIRE_OVERHEAD_BYTES
    } else {
        0
    };
    ENTRY_OVERHEAD_BYTES + key.len() + entry.value.size_bytes() + ttl
}

impl Db {
    /// An empty keyspace whose hash order is fixed by `hash_seed`.
    pub fn new(hash_seed: u64) -> Db {
        let state = FixedState::with_seed(hash_seed);
        Db {
            entries: IndexMap::with_hasher(state),
            expiring: IndexSet::with_hasher(FixedState::with_seed(
                hash_seed ^ 0x9e37_79b9_7f4a_7c15,
            )),
            used_memory_bytes: 0,
            expired_keys: 0,
        }
    }

    /// Number of keys physically present (including expired keys not yet reclaimed, as
    /// Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys that carry a TTL (INFO keyspace `expires=`).
    pub fn expires_len(&self) -> usize {
        self.expiring.len()
    }

    /// Rough memory estimate in bytes (keys + values + fixed per-entry overhead), kept
    /// incrementally.
    pub fn used_memory_bytes(&self) -> usize {
        self.used_memory_bytes
    }

    /// True when `entry` is logically gone at `now_ms`. Never true while replaying the AOF
    /// (replay does not expire on its own; expiry is logged as DEL).
    pub fn is_expired(entry: &Entry, ctx: &ExecCtx) -> bool {
        !ctx.replaying && entry.expire_at_ms.is_some_and(|t| t <= ctx.now_ms)
    }

    /// Lazy expiry: if `key` exists and is expired, delete it and push `["DEL", key]` onto
    /// `ctx.propagate` (nothing is pushed while replaying, and nothing expires then).
    /// Returns true when the key was deleted.
    pub fn expire_if_needed(&mut self, ctx: &mut ExecCtx, key: &[u8]) -> bool {
        let expired = match self.entries.get(key) {
            Some(e) => Self::is_expired(e, ctx),
            None => false,
        };
        if expired {
            if let Some((k, _)) = self.remove_entry(key) {
                self.expired_keys += 1;
                ctx.log(vec![Bytes::from_static(b"DEL"), k]);
            }
        }
        expired
    }

    /// Keys deleted so far because their TTL passed (INFO `expired_keys`).
    pub fn expired_keys(&self) -> u64 {
        self.expired_keys
    }

    /// The live entry for `key` (lazily expiring it first), or None.
    pub fn get(&mut self, ctx: &mut ExecCtx, key: &[u8]) -> Option<&Entry> {
        let index = self.entries.get_index_of(key)?;
        if Self::is_expired(&self.entries[index], ctx) {
            self.expire_if_needed(ctx, key);
            return None;
        }
        Some(&self.entries[index])
    }

    /// True when `key` exists and is live (lazily expiring it first).
    pub fn contains(&mut self, ctx: &mut ExecCtx, key: &[u8]) -> bool {
        self.get(ctx, key).is_some()
    }

    /// The entry for `key` without any expiry check (for snapshots and tests).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Stores `key` → `value` with the given absolute expiry, replacing any old entry.
    pub fn insert(&mut self, key: Bytes, value: Value, expire_at_ms: Option<u64>) {
        let entry = Entry {
            value,
            expire_at_ms,
        };
        self.used_memory_bytes += entry_cost(&key, &entry);
        if expire_at_ms.is_some() {
            self.expiring.insert(key.clone());
        }
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            self.used_memory_bytes -= entry_cost(&key, &old);
            if old.expire_at_ms.is_some() && expire_at_ms.is_none() {
                let removed = self.expiring.swap_remove(&key[..]);
                assert!(removed, "TTL index out of sync with entries");
            }
        }
    }

    /// Replaces the value of an existing or new key; `keep_ttl` keeps an existing TTL
    /// (SET … KEEPTTL, APPEND, INCR …), otherwise the key becomes persistent.
    pub fn set_value(&mut self, key: Bytes, value: Value, keep_ttl: bool) {
        let ttl = if keep_ttl {
            self.entries.get(&key[..]).and_then(|e| e.expire_at_ms)
        } else {
            None
        };
        self.insert(key, value, ttl);
    }

    /// Applies `f` to the value of an existing key in place, keeping the TTL and adjusting
    /// the memory estimate. Returns None (without calling `f`) if the key is absent; no
    /// expiry check is made here.
    pub fn update_value<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Value) -> R) -> Option<R> {
        let (_, _, entry) = self.entries.get_full_mut(key)?;
        let before = entry.value.size_bytes();
        let out = f(&mut entry.value);
        self.used_memory_bytes = self.used_memory_bytes - before + entry.value.size_bytes();
        Some(out)
    }

    /// Sets or clears the absolute expiry of an existing key. Returns false if the key is
    /// absent (no expiry check is made here).
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: Option<u64>) -> bool {
        let Some((_, k, entry)) = self.entries.get_full_mut(key) else {
            return false;
        };
        match (entry.expire_at_ms.is_some(), expire_at_ms.is_some()) {
            (false, true) => {
                self.expiring.insert(k.clone());
                self.used_memory_bytes += EXPIRE_OVERHEAD_BYTES;
            }
            (true, false) => {
                let removed = self.expiring.swap_remove(key);
                assert!(removed, "TTL index out of sync with entries");
                self.used_memory_bytes -= EXPIRE_OVERHEAD_BYTES;
            }
            _ => {}
        }
        entry.expire_at_ms = expire_at_ms;
        true
    }

    /// Deletes `key` (no expiry check, nothing propagated). Returns the stored key and entry.
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Bytes, Entry)> {
        let (k, entry) = self.entries.swap_remove_entry(key)?;
        self.used_memory_bytes -= entry_cost(&k, &entry);
        if entry.expire_at_ms.is_some() {
            let removed = self.expiring.swap_remove(key);
            assert!(removed, "TTL index out of sync with entries");
        }
        Some((k, entry))
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.expiring.clear();
        self.used_memory_bytes = 0;
    }

    /// The key and entry at position `index` of the iteration order (SCAN, RANDOMKEY).
    pub fn get_index(&self, index: usize) -> Option<(&Bytes, &Entry)> {
        self.entries.get_index(index)
    }

    /// INFO keyspace `avg_ttl`: the mean remaining TTL in ms of the first `sample_keys` keys
    /// with a TTL (index order; keys already past their TTL count as 0), 0 when none.
    /// An estimate, like Redis's (which averages samples taken by active expiry).
    pub fn avg_ttl_ms(&self, now_ms: u64, sample_keys: usize) -> u64 {
        let ttls: Vec<u64> = self
            .expiring
            .iter()
            .take(sample_keys)
            .filter_map(|key| self.entries.get(key)?.expire_at_ms)
            .map(|at| at.saturating_sub(now_ms))
            .collect();
        if ttls.is_empty() {
            return 0;
        }
        (ttls.iter().map(|&t| u128::from(t)).sum::<u128>() / ttls.len() as u128) as u64
    }

    /// Every stored key and entry in index order, expired or not (snapshots, AOF rewrite).
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.entries.iter()
    }

    /// Redis-style active expiry: sample up to [`ACTIVE_EXPIRE_SAMPLE_KEYS`] keys with a TTL,
    /// delete the expired ones, repeat while more than 25% of the sample was expired; stop
    /// after `sample_budget` keys examined. Each deleted key is pushed onto `ctx.propagate`
    /// as `["DEL", key]`. Does nothing while `ctx.replaying`. Returns keys deleted.
    pub fn active_expire_cycle(&mut self, ctx: &mut ExecCtx, sample_budget: usize) -> usize {
        if ctx.replaying {
            return 0;
        }
        let mut examined = 0usize;
        let mut deleted = 0usize;
        while !self.expiring.is_empty() && examined < sample_budget {
            let sample = ACTIVE_EXPIRE_SAMPLE_KEYS.min(sample_budget - examined);
            let mut expired_in_sample = 0usize;
            for _ in 0..sample {
                if self.expiring.is_empty() {
                    break;
                }
                examined += 1;
                let idx = ((ctx.random)() % self.expiring.len() as u64) as usize;
                let key = self
                    .expiring
                    .get_index(idx)
                    .cloned()
                    .expect("index in range");
                if self.expire_if_needed(ctx, &key) {
                    expired_in_sample += 1;
                    deleted += 1;
                }
            }
            if expired_in_sample * 4 <= sample {
                break;
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests;
