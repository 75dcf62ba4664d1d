//! The crash workload and its ledger: client threads write unique keys and bump
//! per-client counters, recording what was acknowledged; after each restart the ledger is
//! checked against the server and re-based on what actually survived.
//!
//! What can fail here: `verify` returns a description of every violated guarantee.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::thread::JoinHandle;

use crate::client::{Connection, Reply};

/// Acknowledged SETs checked per pipeline during verification.
const VERIFY_BATCH_KEYS: usize = 1000;

/// What one client thread saw in one cycle.
#[derive(Default)]
pub struct ClientOutcome {
    /// Keys whose SET was acknowledged `+OK`, with their values.
    pub acked: Vec<(String, String)>,
    /// INCRs acknowledged.
    pub incr_acked: u64,
    /// INCRs sent (acknowledged or not).
    pub incr_sent: u64,
}

/// Everything the threads of one cycle saw.
pub struct CycleOutcome {
    /// Per client.
    pub clients: Vec<ClientOutcome>,
    /// Total acknowledged SETs.
    pub acked_sets: u64,
    /// The cycle these threads ran in (the middle field of their keys).
    pub cycle: u32,
}

/// Running client threads.
pub struct Workload {
    threads: Vec<JoinHandle<ClientOutcome>>,
    cycle: u32,
}

impl Workload {
    /// Starts `clients` threads writing until the server dies.
    pub fn start(port: u16, clients: u32, cycle: u32, _ledger: &Ledger) -> Workload {
        let threads = (0..clients)
            .map(|client| std::thread::spawn(move || drive(port, client, cycle)))
            .collect();
        Workload { threads, cycle }
    }

    /// Waits for every thread (they stop when the server is killed).
    pub fn finish(self) -> CycleOutcome {
        let clients: Vec<ClientOutcome> = self
            .threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect();
        let acked_sets = clients.iter().map(|c| c.acked.len() as u64).sum();
        CycleOutcome {
            clients,
            acked_sets,
            cycle: self.cycle,
        }
    }
}

fn drive(port: u16, client: u32, cycle: u32) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let Ok(mut con) = Connection::open(port) else {
        return outcome;
    };
    let counter = format!("counter:{client}");
    for seq in 0u64.. {
        let key = format!("key:{cycle}:{client}:{seq}");
        let value = format!("v{seq}");
        match con.call(&[b"SET", key.as_bytes(), value.as_bytes()]) {
            Ok(Reply::Simple(ok)) if ok == "OK" => outcome.acked.push((key, value)),
            _ => break,
        }
        outcome.incr_sent += 1;
        match con.call(&[b"INCR", counter.as_bytes()]) {
            Ok(Reply::Integer(_)) => outcome.incr_acked += 1,
            _ => break,
        }
    }
    outcome
}

/// What must be on the server.
pub struct Ledger {
    acked: Vec<(String, String)>,
    /// Per client: (lowest allowed, highest allowed) counter value.
    counters: Vec<(u64, u64)>,
    /// Per (cycle, client): SETs acknowledged; the client's key with this sequence number
    /// may also exist (its SET was in flight at the kill), no higher one may.
    sets_acked: BTreeMap<(u32, u32), u64>,
    /// Preloaded `fill:<n>` keys: how many (see [`fill_value`]).
    fill_keys: u64,
    /// Length of each preloaded value, in bytes.
    fill_value_bytes: usize,
}

/// What one verification found (see [`Ledger::verify_counts`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Verified {
    /// Acknowledged SETs checked.
    pub total: u64,
    /// Acknowledged SETs missing or with another value.
    pub lost_sets: u64,
    /// Acknowledged INCRs missing (sum over counters of acknowledged minus found, when
    /// positive; only possible without `appendfsync always`, else it is a violation).
    pub lost_incrs: u64,
}

/// Hash tags the preloaded keys are spread over (keys with the same tag share a shard, so
/// one MSET per tag loads them).
pub const FILL_TAGS: u64 = 256;

/// The key of preloaded value `n`: `fill:{<n mod FILL_TAGS>}:<n>`.
pub fn fill_key(n: u64) -> String {
    format!("fill:{{{}}}:{n}", n % FILL_TAGS)
}

/// The value of preloaded key `n`: `bytes` long, derived from `n` only.
pub fn fill_value(n: u64, bytes: usize) -> String {
    let stem = format!("f{n}-");
    stem.chars().cycle().take(bytes.max(stem.len())).collect()
}

impl Ledger {
    /// An empty ledger for `clients` clients.
    pub fn new(clients: u32) -> Ledger {
        Ledger {
            acked: Vec::new(),
            counters: vec![(0, 0); clients as usize],
            sets_acked: BTreeMap::new(),
            fill_keys: 0,
            fill_value_bytes: 0,
        }
    }

    /// Records `keys` preloaded `fill:<n>` keys (n in 0..keys) of `value_bytes` each
    /// ([`fill_value`]), all acknowledged.
    pub fn add_fill(&mut self, keys: u64, value_bytes: usize) {
        self.fill_keys = keys;
        self.fill_value_bytes = value_bytes;
        self.acked
            .extend((0..keys).map(|n| (fill_key(n), fill_value(n, value_bytes))));
    }

    /// Adds a cycle's acknowledgements.
    pub fn absorb(&mut self, cycle: CycleOutcome) {
        for (i, client) in cycle.clients.into_iter().enumerate() {
            self.sets_acked
                .insert((cycle.cycle, i as u32), client.acked.len() as u64);
            self.acked.extend(client.acked);
            let (low, high) = self.counters[i];
            self.counters[i] = (low + client.incr_acked, high + client.incr_sent);
        }
    }

    /// Checks the server against the ledger, then re-bases on what survived.
    pub fn verify(&mut self, port: u16, appendfsync: &str) -> Result<String, String> {
        let v = self.verify_counts(port, appendfsync)?;
        Ok(format!(
            "verified_sets={} lost_sets={}",
            v.total, v.lost_sets
        ))
    }

    /// [`Ledger::verify`] with the figures.
    pub fn verify_counts(&mut self, port: u16, appendfsync: &str) -> Result<Verified, String> {
        let mut con = Connection::open(port).map_err(|e| format!("connect for verify: {e}"))?;
        let mut missing = Vec::new();
        for chunk in self.acked.chunks(VERIFY_BATCH_KEYS) {
            for ((key, value), got) in chunk.iter().zip(mget(&mut con, chunk)?) {
                match got {
                    Reply::Bulk(got) if got == value.as_bytes() => {}
                    other => missing.push(format!("{key}={value} got {other:?}")),
                }
            }
        }
        let mut counter_errors = Vec::new();
        let mut lost_incrs = 0u64;
        for (i, (low, high)) in self.counters.iter_mut().enumerate() {
            let key = format!("counter:{i}");
            let value = match con
                .call(&[b"GET", key.as_bytes()])
                .map_err(|e| format!("verify read: {e}"))?
            {
                Reply::Bulk(v) => String::from_utf8_lossy(&v)
                    .parse::<u64>()
                    .unwrap_or(u64::MAX),
                Reply::Null => 0,
                other => return Err(format!("{key}: unexpected {other:?}")),
            };
            lost_incrs += low.saturating_sub(value);
            let floor = if appendfsync == "always" { *low } else { 0 };
            if value < floor || value > *high {
                counter_errors.push(format!("{key}={value}, allowed [{floor}, {high}]"));
            }
            *low = value;
            *high = value;
        }
        let total = self.acked.len();
        let lost = missing.len();
        let lost_allowed = if appendfsync == "always" {
            0
        } else {
            total / 100
        };
        if lost > lost_allowed || !counter_errors.is_empty() {
            let sample: Vec<&String> = missing.iter().take(5).collect();
            return Err(format!(
                "{lost} of {total} acknowledged SETs missing (allowed {lost_allowed}), e.g. {sample:?}; counter errors: {counter_errors:?}"
            ));
        }
        let missing_keys: std::collections::BTreeSet<String> = missing
            .iter()
            .map(|m| m.split('=').next().unwrap_or("").to_string())
            .collect();
        self.acked.retain(|(k, _)| !missing_keys.contains(k));
        Ok(Verified {
            total: total as u64,
            lost_sets: lost as u64,
            lost_incrs,
        })
    }

    /// Checks that the server holds nothing that was never written: every key (`KEYS *`)
    /// is a preloaded `fill:<n>` with its value, a `counter:<client>` of this run, or a
    /// workload key `key:<cycle>:<client>:<seq>` with value `v<seq>` whose SET was
    /// acknowledged or in flight at the kill (seq ≤ the acknowledged count). Returns the
    /// number of keys examined.
    pub fn check_nothing_unwritten(&self, port: u16) -> Result<u64, String> {
        let mut con = Connection::open(port).map_err(|e| format!("connect for scan: {e}"))?;
        let keys = match con
            .call(&[b"KEYS", b"*"])
            .map_err(|e| format!("KEYS *: {e}"))?
        {
            Reply::Array(items) => items,
            other => return Err(format!("KEYS *: unexpected {other:?}")),
        };
        let acked: std::collections::HashSet<&str> =
            self.acked.iter().map(|(k, _)| k.as_str()).collect();
        let mut to_fetch: Vec<(String, String)> = Vec::new();
        let mut foreign = Vec::new();
        for key in &keys {
            let Reply::Bulk(raw) = key else {
                return Err(format!("KEYS *: unexpected item {key:?}"));
            };
            let key = String::from_utf8_lossy(raw).into_owned();
            if acked.contains(key.as_str()) {
                continue; // value checked by verify
            }
            match self.expected_value(&key) {
                Some(value) => to_fetch.push((key, value)),
                None => foreign.push(key),
            }
        }
        for chunk in to_fetch.chunks(VERIFY_BATCH_KEYS) {
            for ((key, value), got) in chunk.iter().zip(mget(&mut con, chunk)?) {
                match got {
                    Reply::Bulk(got) if got == value.as_bytes() => {}
                    Reply::Bulk(_) if key.starts_with("counter:") => {} // bounds: verify
                    other => foreign.push(format!("{key} = {other:?} (expected {value})")),
                }
            }
        }
        if foreign.is_empty() {
            Ok(keys.len() as u64)
        } else {
            let sample: Vec<&String> = foreign.iter().take(5).collect();
            Err(format!(
                "{} keys or values that were never written, e.g. {sample:?}",
                foreign.len()
            ))
        }
    }

    /// The only value key `key` may hold if it exists without being in the ledger, or
    /// `None` if it must not exist at all.
    fn expected_value(&self, key: &str) -> Option<String> {
        if let Some(rest) = key.strip_prefix("fill:{") {
            let (_, n) = rest.split_once("}:")?;
            let n: u64 = n.parse().ok()?;
            return (n < self.fill_keys && fill_key(n) == key)
                .then(|| fill_value(n, self.fill_value_bytes));
        }
        if let Some(i) = key.strip_prefix("counter:") {
            let i: usize = i.parse().ok()?;
            return (i < self.counters.len()).then(String::new);
        }
        let mut parts = key.strip_prefix("key:")?.split(':');
        let cycle: u32 = parts.next()?.parse().ok()?;
        let client: u32 = parts.next()?.parse().ok()?;
        let seq: u64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let acked = *self.sets_acked.get(&(cycle, client))?;
        (seq <= acked).then(|| format!("v{seq}"))
    }
}

/// `MGET` of the keys of `pairs`, one reply per key.
fn mget(con: &mut Connection, pairs: &[(String, String)]) -> Result<Vec<Reply>, String> {
    let mut command: Vec<&[u8]> = vec![b"MGET"];
    command.extend(pairs.iter().map(|(k, _)| k.as_bytes()));
    match con
        .call(&command)
        .map_err(|e| format!("verify MGET: {e}"))?
    {
        Reply::Array(items) if items.len() == pairs.len() => Ok(items),
        other => Err(format!(
            "MGET of {} keys: unexpected {:?}",
            pairs.len(),
            format!("{other:?}").chars().take(200).collect::<String>()
        )),
    }
}
