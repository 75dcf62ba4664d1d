//! The crash workload and its ledger: client threads write unique keys and bump
//! per-client counters, recording what was acknowledged; after each restart the ledger is
//! checked against the server and re-based on what actually survived.
//!
//! What can fail here: `verify` returns a description of every violated guarantee.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

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
}

/// Running client threads.
pub struct Workload {
    threads: Vec<JoinHandle<ClientOutcome>>,
}

impl Workload {
    /// Starts `clients` threads writing until the server dies.
    pub fn start(port: u16, clients: u32, cycle: u32, _ledger: &Ledger) -> Workload {
        let threads = (0..clients)
            .map(|client| std::thread::spawn(move || drive(port, client, cycle)))
            .collect();
        Workload { threads }
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
}

impl Ledger {
    /// An empty ledger for `clients` clients.
    pub fn new(clients: u32) -> Ledger {
        Ledger {
            acked: Vec::new(),
            counters: vec![(0, 0); clients as usize],
        }
    }

    /// Adds a cycle's acknowledgements.
    pub fn absorb(&mut self, cycle: CycleOutcome) {
        for (i, client) in cycle.clients.into_iter().enumerate() {
            self.acked.extend(client.acked);
            let (low, high) = self.counters[i];
            self.counters[i] = (low + client.incr_acked, high + client.incr_sent);
        }
    }

    /// Checks the server against the ledger, then re-bases on what survived.
    pub fn verify(&mut self, port: u16, appendfsync: &str) -> Result<String, String> {
        let mut con = Connection::open(port).map_err(|e| format!("connect for verify: {e}"))?;
        let mut missing = Vec::new();
        for chunk in self.acked.chunks(VERIFY_BATCH_KEYS) {
            let commands: Vec<Vec<Vec<u8>>> = chunk
                .iter()
                .map(|(k, _)| vec![b"GET".to_vec(), k.as_bytes().to_vec()])
                .collect();
            con.send(&commands)
                .map_err(|e| format!("verify send: {e}"))?;
            for (key, value) in chunk {
                match con.read().map_err(|e| format!("verify read: {e}"))? {
                    Reply::Bulk(got) if got == value.as_bytes() => {}
                    other => missing.push(format!("{key}={value} got {other:?}")),
                }
            }
        }
        let mut counter_errors = Vec::new();
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
        Ok(format!("verified_sets={total} lost_sets={lost}"))
    }
}
