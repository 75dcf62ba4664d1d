//! Linearizability of the shared keys: every client reads and writes the keys
//! `shared:…` (`workload::is_shared_key`) concurrently; their operations are recorded with
//! the linearizability [`Recorder`] and the history is checked per key with
//! [`check_history`] and the [`Strings`] model at the end of the run.
//!
//! Recording: `invoke` just before the pipeline is written, `ok` when a well-formed reply
//! is read. An error reply, a reset, a timeout or a crash leaves the operation pending
//! forever (it may have taken effect at any later instant, or never). The history spans
//! crashes and restarts: under `appendfsync always` an acknowledged write survives a
//! crash of either kind, so the whole history must stay linearizable. Under `everysec` a
//! machine crash may lose acknowledged writes: such runs skip the check
//! ([`LinSummary::checked`] false).
//!
//! Test-only defect (`RunOptions::stale_read_defect`): client [`STALE_READ_CLIENT`]
//! answers a GET of a shared key from its own cached earlier reply instead of asking the
//! server ("a read served from a stale copy"); the check must report it.
//!
//! Test-only defect (`RunOptions::reply_before_apply_defect`): client
//! [`EARLY_ACK_CLIENT`] records each SET of a shared key as answered `OK` the moment it
//! calls it — before the request is even on the wire — as a server that replies before
//! applying would, and sends the request only [`EARLY_ACK_APPLY_DELAY`] later (the
//! "apply" comes late); the real reply is then ignored. The check must report it.
//!
//! What can fail here: `NotLinearizable` fails the run (naming the key, the explanation
//! and the reproduction command); `Unknown` (budget exhausted) is only counted.

use std::collections::BTreeMap;

use tidemark::resp::Frame;

use super::Shared;
use crate::linearizability::tidemark_models::{KeyOp, Strings};
use crate::linearizability::{check_history, Budget, History, OpId, Operation, Verdict};
use crate::model::{Op, Reply};
use crate::workload::{is_shared_key, single_reply, Command};

/// The client that serves stale reads under `RunOptions::stale_read_defect`.
pub const STALE_READ_CLIENT: u32 = 0;
/// The client that records early acknowledgements under
/// `RunOptions::reply_before_apply_defect`.
pub const EARLY_ACK_CLIENT: u32 = 1;
/// How long the early-acknowledged SET waits before it is sent (applied) under the defect.
pub const EARLY_ACK_APPLY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);
/// Search budget of one shared key's history (deterministic: steps, not time).
pub const LIN_BUDGET: Budget = Budget {
    steps_max_per_partition: 2_000_000,
    cache_entries_max_per_partition: 500_000,
};
/// Most writes left pending (no reply) in one key's checked history; the history is cut
/// before the next one (see [`check_shared`]).
pub const PENDING_WRITES_MAX: usize = 8;
/// Longest explanation quoted in a failure message, in bytes.
pub const EXPLANATION_LEN_MAX_BYTES: usize = 6_000;

/// What the end-of-run check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinSummary {
    /// Operations recorded (pending reads included).
    pub ops: u64,
    /// Operations in the checked (cut) histories, pending reads dropped.
    pub checked_ops: u64,
    /// Keys whose check ran out of budget.
    pub unknown_keys: u64,
    /// The check ran (false: skipped for a lossy run, or the run had already failed).
    pub checked: bool,
}

impl Shared {
    /// Records the call of `cmd` by client `client` when it is on a shared key.
    pub(super) fn lin_invoke(&self, client: u32, cmd: &Command) -> Option<OpId> {
        match cmd {
            Command::Single { key, op, .. } if is_shared_key(key) => {
                let input = KeyOp {
                    key: key.clone(),
                    op: op.clone(),
                };
                let id = self.lin.borrow_mut().invoke(u64::from(client), input);
                let early = self.reply_before_apply_defect
                    && client == EARLY_ACK_CLIENT
                    && matches!(op, Op::Set(_));
                if !early {
                    return Some(id);
                }
                // The defect: "OK" before the server has applied (or even received) it.
                if let Err(e) = self.lin.borrow_mut().ok(id, Reply::Ok) {
                    self.fail(&format!("linearizability recorder: {e}"));
                }
                self.note_lin_boot(id);
                self.exec.trace("world.early_ack", u64::from(client), 0);
                None
            }
            _ => None,
        }
    }

    /// Under the reply-before-apply defect: how long client `client` holds `batch` back
    /// (it holds an early-acknowledged SET of a shared key).
    pub(super) fn early_ack_delay(
        &self,
        client: u32,
        batch: &[Command],
    ) -> Option<std::time::Duration> {
        let early = self.reply_before_apply_defect
            && client == EARLY_ACK_CLIENT
            && batch.iter().any(
                |c| matches!(c, Command::Single { key, op: Op::Set(_), .. } if is_shared_key(key)),
            );
        early.then_some(EARLY_ACK_APPLY_DELAY)
    }

    /// Records the acknowledged reply `frame` of `cmd` (recorded as `id`).
    pub(super) fn lin_ok(&self, client: u32, id: Option<OpId>, cmd: &Command, frame: &Frame) {
        let (Some(id), Command::Single { key, op, .. }) = (id, cmd) else {
            return;
        };
        let Some(reply) = single_reply(op, frame) else {
            return;
        };
        if self.stale_read_defect && client == STALE_READ_CLIENT && *op == Op::Get {
            self.stale_cache
                .borrow_mut()
                .insert(key.clone(), reply.clone());
        }
        if let Err(e) = self.lin.borrow_mut().ok(id, reply) {
            self.fail(&format!("linearizability recorder: {e}"));
        }
        self.note_lin_boot(id);
    }

    /// Notes the boot (crash count) in which `id` completed.
    fn note_lin_boot(&self, id: OpId) {
        let mut boots = self.lin_boot.borrow_mut();
        if boots.len() <= id.0 {
            boots.resize(id.0 + 1, None);
        }
        boots[id.0] = Some(self.crashes.get());
    }

    /// Records that `id` ended without a usable reply (it stays pending forever).
    pub(super) fn lin_unknown(&self, id: Option<OpId>) {
        if let Some(id) = id {
            // Closing an operation twice is harmless here: it is pending either way.
            let _ = self.lin.borrow_mut().unknown(id);
        }
    }

    /// The defect: answers the GETs of `batch` on shared keys this client read before from
    /// its cache (recorded as operations that returned the cached value) and returns the
    /// commands that still go to the server.
    pub(super) fn serve_stale(&self, client: u32, batch: Vec<Command>) -> Vec<Command> {
        if !self.stale_read_defect || client != STALE_READ_CLIENT {
            return batch;
        }
        let mut rest = Vec::with_capacity(batch.len());
        for cmd in batch {
            let cached = match &cmd {
                Command::Single {
                    key, op: Op::Get, ..
                } if is_shared_key(key) => self.stale_cache.borrow().get(key).cloned(),
                _ => None,
            };
            match cached {
                Some(reply) => {
                    if let Some(id) = self.lin_invoke(client, &cmd) {
                        if let Err(e) = self.lin.borrow_mut().ok(id, reply) {
                            self.fail(&format!("linearizability recorder: {e}"));
                        }
                    }
                    self.exec.trace("world.stale_read", u64::from(client), 0);
                }
                None => rest.push(cmd),
            }
        }
        rest
    }
}

/// Checks the shared keys' history key by key; a non-linearizable key fails the run.
/// `lossy`: acknowledged writes may have been lost (everysec + machine crash): skipped.
///
/// Known server limitation (docs/simulation.md, "Linearizability"): while a shard's AOF
/// is latched after a write error, the server still serves reads from memory, and those
/// reads can see a write that was answered with an error and that a restart then loses.
/// So in a boot with any error reply (a *degraded* boot), only SET replies (which reveal
/// nothing) are kept; every other reply of that boot is treated as unknown.
///
/// A key's history is cut before the operation that would make more than
/// [`PENDING_WRITES_MAX`] writes pending (each one multiplies the states the search must
/// consider): ops called after the cut are dropped, replies that came after it become
/// unknown. A cut history of a linearizable history is linearizable, so this is sound.
pub(super) fn check_shared(shared: &Shared, lossy: bool) -> LinSummary {
    let recorder = shared.lin.borrow();
    let mut summary = LinSummary {
        ops: recorder.len() as u64,
        ..LinSummary::default()
    };
    if lossy {
        return summary;
    }
    let degraded = shared.lin_degraded_boots.borrow();
    let boots = shared.lin_boot.borrow();
    let mut by_key: BTreeMap<Vec<u8>, Vec<Operation<KeyOp<Op>, Reply>>> = BTreeMap::new();
    for (index, op) in recorder.operations().iter().enumerate() {
        let mut op = op.clone();
        let boot = boots.get(index).copied().flatten();
        if boot.is_some_and(|b| degraded.contains(&b)) && !matches!(op.input.op, Op::Set(_)) {
            op.completion = None;
        }
        by_key.entry(op.input.key.clone()).or_default().push(op);
    }
    summary.checked = true;
    for (key, ops) in by_key {
        let part = match cut_history(ops) {
            Ok(part) => part,
            Err(e) => {
                shared.fail(&format!("linearizability recorder: {e}"));
                return summary;
            }
        };
        summary.checked_ops += part.len() as u64;
        match check_history(&part, LIN_BUDGET) {
            Verdict::Linearizable => {}
            Verdict::Unknown { .. } => summary.unknown_keys += 1,
            Verdict::NotLinearizable { explanation, .. } => {
                let mut explanation = explanation;
                if explanation.len() > EXPLANATION_LEN_MAX_BYTES {
                    let mut cut = EXPLANATION_LEN_MAX_BYTES;
                    while !explanation.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    explanation.truncate(cut);
                    explanation.push_str(" …");
                }
                shared.fail(&format!(
                    "history of shared key {:?} is not linearizable ({} operations): {explanation}",
                    String::from_utf8_lossy(&key),
                    part.len()
                ));
                return summary;
            }
        }
    }
    summary
}

/// One key's operations (in call order) as a history, cut before the operation that would
/// make more than [`PENDING_WRITES_MAX`] writes pending.
fn cut_history(
    ops: Vec<Operation<KeyOp<Op>, Reply>>,
) -> Result<History<Strings>, crate::linearizability::HistoryError> {
    let mut pending_writes = 0;
    let mut cut_at = u64::MAX;
    for op in &ops {
        if op.completion.is_none() && !crate::model::is_read(&op.input.op) {
            pending_writes += 1;
            if pending_writes > PENDING_WRITES_MAX {
                cut_at = op.call;
                break;
            }
        }
    }
    let mut history = History::new();
    for mut op in ops {
        if op.call >= cut_at {
            break;
        }
        if op.completion.as_ref().is_some_and(|c| c.ret >= cut_at) {
            op.completion = None;
        }
        history.push(op)?;
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::Completion;

    fn op(call: u64, ret: Option<u64>, what: Op, reply: Reply) -> Operation<KeyOp<Op>, Reply> {
        Operation {
            client: call,
            call,
            input: KeyOp {
                key: b"shared:n0".to_vec(),
                op: what,
            },
            completion: ret.map(|ret| Completion { ret, output: reply }),
        }
    }

    #[test]
    fn histories_are_cut_before_too_many_pending_writes() {
        let mut ops = Vec::new();
        let mut t = 0;
        for _ in 0..=PENDING_WRITES_MAX {
            t += 10;
            ops.push(op(t, None, Op::IncrBy(1), Reply::Integer(0)));
        }
        let cut = ops.last().map(|o| o.call).unwrap_or_default();
        // A read called before the cut that returns after it becomes pending (dropped);
        // one called after the cut is dropped too.
        ops.insert(1, op(15, Some(cut + 1), Op::Get, Reply::Value(None)));
        ops.push(op(cut + 2, Some(cut + 3), Op::Get, Reply::Value(None)));
        let history = cut_history(ops).expect("valid history");
        assert_eq!(history.len(), PENDING_WRITES_MAX);
        assert!(history
            .operations()
            .iter()
            .all(|o| o.call < cut && o.completion.is_none()));
    }

    #[test]
    fn a_short_history_is_kept_whole() {
        let ops = vec![
            op(1, Some(2), Op::IncrBy(5), Reply::Integer(5)),
            op(3, None, Op::IncrBy(1), Reply::Integer(0)),
            op(4, Some(5), Op::Get, Reply::Value(Some(b"6".to_vec()))),
        ];
        let history = cut_history(ops).expect("valid history");
        assert_eq!(history.len(), 3);
        assert!(check_history(&history, LIN_BUDGET).is_linearizable());
    }
}
