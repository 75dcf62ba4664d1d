//! Crash-point enumeration: crash a protocol section (a manifest update, an AOF rewrite)
//! right after *each* of its mutating disk operations, with both crash kinds, and check
//! what recovers — systematically, instead of hoping a random seed hits the window.
//!
//! How. The caller gives a `build(seed, crash_after_ops)` closure that sets up a fresh
//! executor and [`SimDisk`], spawns the scenario and returns it as a [`SimRun`]; inside,
//! the scenario calls `disk.start_section(crash_after_ops)` where the protocol starts and
//! `disk.end_section()` where it ends. [`Enumeration::run`] first runs it with `None`
//! to count the section's mutating operations `n` (write, fsync, set_len, rename, remove,
//! sync_dir, mkdir, creating/truncating open: [`SimDisk::mutation_count`]), then for
//! every `k` in `0..=n` rebuilds it with `Some(k)`, runs until the disk freezes right
//! after op `k` (`k = 0`: before the first op; `k = n`: after the last), crashes the node
//! and calls `check`:
//! - one process crash (tasks die, the page cache survives);
//! - `machine_draws` machine crashes: draw 0 loses everything not durable (no pending
//!   write, set_len or directory op applies), draw 1 keeps everything whole (all apply,
//!   nothing torn), draw 2 applies the directory ops but loses the pending data (names
//!   reach the disk before data, as with ext4 `data=writeback`), draw 3 the reverse;
//!   draws 4.. use the disk's own crash rates with an RNG seeded from `(seed, k, draw)`
//!   (any subset survives, torn at sectors, appended ranges filled).
//!
//! States checked: `(n + 1) * (1 + machine_draws)`. Runs are deterministic per seed, so
//! a failure names its seed, `k` and kind, and the same call reproduces it.
//!
//! What can fail here: [`Enumeration::run`] returns `Err` when the crash-free run does
//! not finish (budget, deadlock) or a re-run never reaches its crash point (the scenario
//! is not deterministic in its seed); check failures are collected in the report.

use std::fmt;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::disk::SimDisk;
use crate::executor::{Executor, Owner, RunLimits, RunOutcome};
use crate::net::SimNet;

/// One built scenario: the world the enumerator runs and crashes.
pub struct SimRun {
    /// The executor every task of the scenario runs on.
    pub exec: Executor,
    /// The disk whose protocol section is enumerated (its node is the one crashed).
    pub disk: SimDisk,
    /// The network, if the scenario has one (the crashed node's connections reset).
    pub net: Option<SimNet>,
    /// True once the scenario's protocol finished (returned success to its caller).
    pub finished: Box<dyn Fn() -> bool>,
}

/// Which crash hit the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// SIGKILL: tasks die, the page cache survives.
    Process,
    /// Power loss; `draw` 0 = lose all that is not durable, 1 = keep all, 2 = names
    /// only, 3 = data only, 4.. = random (see the module comment).
    Machine {
        /// Which machine-crash draw (see the module comment).
        draw: u32,
    },
}

/// One enumerated state, handed to the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    /// The scenario's seed.
    pub seed: u64,
    /// The crash came right after this many mutating ops of the section (0 = before any).
    pub after_op: u64,
    /// Mutating ops in the whole section (from the crash-free run).
    pub section_ops: u64,
    /// Which crash.
    pub kind: CrashKind,
    /// Whether the scenario reported its protocol finished before the crash.
    pub completed: bool,
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} crash after section op {}/{} ({:?}{})",
            self.seed,
            self.after_op,
            self.section_ops,
            self.kind,
            if self.completed { ", completed" } else { "" }
        )
    }
}

/// What an enumeration did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnumReport {
    /// Mutating ops of the section in the crash-free run.
    pub section_ops: u64,
    /// Crash states built and checked.
    pub states: u64,
    /// Every failed check: the point and the check's message.
    pub failures: Vec<(CrashPoint, String)>,
}

/// Settings of one enumeration.
#[derive(Clone, Copy, Debug)]
pub struct Enumeration {
    /// Seed passed to `build` (each state rebuilds the same scenario).
    pub seed: u64,
    /// Machine crashes per crash point (0 = process crashes only); see the module comment.
    pub machine_draws: u32,
    /// Budget for each run (the crash-free one and each re-run up to its crash).
    pub limits: RunLimits,
}

impl Enumeration {
    /// Enumeration of `seed` with 6 machine-crash draws per point (the 4 extremes and 2
    /// random) and default limits.
    pub fn new(seed: u64) -> Enumeration {
        Enumeration {
            seed,
            machine_draws: 6,
            limits: RunLimits::default(),
        }
    }

    /// Runs the enumeration (see the module comment). `check(run, point)` sees the
    /// crashed world (tasks of the node killed, disk crashed) and may run recovery on
    /// `run.exec`; it returns `Err(message)` when the recovered state is wrong.
    pub fn run(
        &self,
        mut build: impl FnMut(u64, Option<u64>) -> SimRun,
        mut check: impl FnMut(&SimRun, &CrashPoint) -> Result<(), String>,
    ) -> Result<EnumReport, String> {
        let base = build(self.seed, None);
        let finished = &base.finished;
        match base.exec.run_until(self.limits, finished) {
            RunOutcome::Done => {}
            other => return Err(format!("seed {}: crash-free run: {other:?}", self.seed)),
        }
        let n = base.disk.section_ops();
        drop(base);
        let mut report = EnumReport {
            section_ops: n,
            ..EnumReport::default()
        };
        for k in 0..=n {
            let kinds = std::iter::once(CrashKind::Process)
                .chain((0..self.machine_draws).map(|draw| CrashKind::Machine { draw }));
            for kind in kinds {
                let run = build(self.seed, Some(k));
                let completed = self.run_to_crash(&run, k)?;
                let point = CrashPoint {
                    seed: self.seed,
                    after_op: k,
                    section_ops: n,
                    kind,
                    completed,
                };
                crash(&run, &point);
                report.states += 1;
                if let Err(message) = check(&run, &point) {
                    report.failures.push((point, message));
                }
            }
        }
        Ok(report)
    }

    /// Runs a re-built scenario until its crash point; returns whether it had finished.
    fn run_to_crash(&self, run: &SimRun, k: u64) -> Result<bool, String> {
        let disk = run.disk.clone();
        let finished = &run.finished;
        let outcome = run
            .exec
            .run_until(self.limits, || disk.crash_point_reached() || finished());
        if outcome != RunOutcome::Done || !disk.crash_point_reached() {
            return Err(format!(
                "seed {}: crash point {k} not reached ({outcome:?}, {} section ops): \
                 is the scenario deterministic in its seed?",
                self.seed,
                disk.section_ops()
            ));
        }
        Ok(finished())
    }
}

/// Crashes the node of `run.disk` as `point` says.
fn crash(run: &SimRun, point: &CrashPoint) {
    let node = run.disk.node();
    run.exec.kill_owner(Owner::Node(node));
    if let Some(net) = &run.net {
        net.kill_node(node);
    }
    match point.kind {
        CrashKind::Process => run.disk.crash_process(),
        CrashKind::Machine { draw } => {
            let saved = run.disk.faults();
            let mut faults = saved.clone();
            // (data survives, names apply) for the extreme draws; 4.. keep the disk's rates.
            let extreme = match draw {
                0 => Some((false, false)),
                1 => Some((true, true)),
                2 => Some((false, true)),
                3 => Some((true, false)),
                _ => None,
            };
            if let Some((data, names)) = extreme {
                let rate = |on: bool| if on { 1.0 } else { 0.0 };
                faults.crash_write_survive_rate = rate(data);
                faults.crash_torn_rate = 0.0;
                faults.crash_set_len_rate = rate(data);
                faults.crash_append_fill_rate = 0.0;
                faults.crash_dir_op_rate = rate(names);
            }
            run.disk.set_faults(faults);
            let mix = point
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(point.after_op.wrapping_mul(0xBF58_476D_1CE4_E5B9))
                .wrapping_add(u64::from(draw));
            run.disk.crash_machine(&mut ChaCha8Rng::seed_from_u64(mix));
            run.disk.set_faults(saved);
        }
    }
}
