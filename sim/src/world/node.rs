//! The node's life cycle for the world: boots (one `run_shard` task per shard on
//! [`SimIo`]), waits until it listens, and classifies start-up refusals: retried (an
//! injected IO error, or a read bit flip during recovery: transient), ended correctly
//! (corruption after a machine crash exposed fsynced data damaged by a misdirected write,
//! verified by the disk), or failed (anything else).
//!
//! What can fail here: `NodeCtl::boot` returns the refusal or "node stuck" message.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tidemark::server::config::Config;
use tidemark::server::{run_shard, Node};

use super::{Shared, BOOT_ATTEMPTS_MAX, BOOT_DEADLINE, FLIP_BOOT_ATTEMPTS_MAX, NODE, PORT};
use crate::disk::SimDisk;
use crate::executor::{Executor, Owner};
use crate::io::SimIo;
use crate::net::SimNet;

/// The node's life cycle: boots, crashes, start-up errors.
pub(super) struct NodeCtl {
    pub(super) exec: Executor,
    pub(super) disk: SimDisk,
    pub(super) net: SimNet,
    pub(super) config: Config,
    pub(super) boot: Cell<u32>,
    /// The first start-up error of the current boot.
    pub(super) start_error: Rc<RefCell<Option<String>>>,
    /// Boots refused for an IO error and retried.
    pub(super) boot_retries: Cell<u32>,
    /// Retry a refused boot after a machine crash (power cycle) instead of a process
    /// restart: with fsync EIO on and machine crashes enabled, a process restart would
    /// expose known server limitation C (see `Plan::draw`).
    pub(super) retry_by_machine_crash: bool,
    pub(super) retry_rng: RefCell<ChaCha8Rng>,
    /// Boots refused after a transient read bit flip and retried.
    pub(super) read_flip_retries: Cell<u32>,
    /// `disk.fault.fsynced_damage` count already noted.
    pub(super) damage_count_seen: Cell<u64>,
}

/// True for a start-up refusal (the server returned an error), not a stuck boot.
fn is_refusal(message: &str) -> bool {
    message.starts_with("start-up refused")
}

/// True for a start-up refusal caused by a disk operation failing (not by what was read).
fn is_io_refusal(message: &str) -> bool {
    let io_error = (message.contains("AOF recovery refused: AOF ")
        && message.contains(" failed on "))
        || message.contains("(os error ");
    let corruption = ["orrupt", "Bad AOF", "bad magic", "CRC"]
        .iter()
        .any(|w| message.contains(w));
    io_error && !corruption
}

impl NodeCtl {
    /// Boots the node (`boot` numbers lives) with one task per shard.
    pub(super) fn start(&self) {
        let boot = self.boot.get();
        self.start_error.replace(None);
        let node: Arc<Node> = Node::new(self.config.clone());
        self.exec.trace("world.boot", u64::from(boot), 0);
        for shard in 0..self.config.shards {
            let io = SimIo::new(&self.exec, NODE, boot, shard, &self.disk, &self.net);
            let node = node.clone();
            let errors = self.start_error.clone();
            self.exec.spawn(Owner::Node(NODE), async move {
                if let Err(e) = run_shard(io, node, shard).await {
                    let mut slot = errors.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(e.to_string());
                    }
                }
            });
        }
    }

    /// The operator's part: the data directory exists and its name is durable before the
    /// server first starts (what the server creates inside it is the server's job).
    pub(super) async fn provision(&self) -> Result<(), String> {
        use tidemark::io::Disk as _;
        let dir = self.config.dir.clone();
        let parent = dir.parent().map(PathBuf::from).unwrap_or_default();
        let disk = self.disk.clone();
        let faults = disk.faults();
        disk.set_faults(crate::faults::DiskFaults::default());
        let made = disk.create_dir_all(&dir).await;
        let synced = disk.sync_dir(&parent).await;
        disk.set_faults(faults);
        made.and(synced)
            .map_err(|e| format!("provisioning {} failed: {e}", dir.display()))
    }

    /// Notes a machine crash that damaged fsynced data since the last call.
    fn note_damage(&self, shared: &Shared) {
        let damaged = self.fault_count("disk.fault.fsynced_damage");
        if damaged > self.damage_count_seen.get() {
            self.damage_count_seen.set(damaged);
            shared.damage_exposed.set(true);
            shared.damage_seen.set(true);
        }
    }

    /// How many times the disk injected `tag` (`disk.fault.*`) so far.
    pub(super) fn fault_count(&self, tag: &str) -> u64 {
        self.disk.fault_counts().get(tag).copied().unwrap_or(0)
    }

    /// Boots the node and waits until it listens, retrying start-up refusals caused by
    /// IO errors up to `BOOT_ATTEMPTS_MAX` times in a row (each retry is a new boot).
    ///
    /// A refusal of a boot during which a read bit flip was injected is retried too (by a
    /// process restart: the flip was transient, the platter is fine). A corruption refusal
    /// after a machine crash that damaged fsynced data (`shared.damage_exposed`, verified
    /// by the disk) is the correct answer to a device that destroyed data: it is recorded
    /// in `shared.refused_correctly` and returned as Err (the run ends, not failed).
    pub(super) async fn boot(&self, shared: &Shared) -> Result<(), String> {
        let mut attempt = 1;
        let mut flip_attempt = 1;
        loop {
            let flips_before = self.fault_count("disk.fault.read_bitflip");
            self.start();
            let ready = self.wait_ready().await;
            self.note_damage(shared);
            let flipped = self.fault_count("disk.fault.read_bitflip") > flips_before;
            match ready {
                Ok(()) => return Ok(()),
                Err(e) if flip_attempt < FLIP_BOOT_ATTEMPTS_MAX && flipped && is_refusal(&e) => {
                    flip_attempt += 1;
                    self.read_flip_retries.set(self.read_flip_retries.get() + 1);
                    self.exec
                        .trace("world.boot_retry_flip", u64::from(self.boot.get()), 0);
                    crate::crash_process(&self.exec, &self.net, &self.disk);
                    self.boot.set(self.boot.get() + 1);
                    self.exec.sleep(Duration::from_millis(100)).await;
                }
                Err(e) if shared.damage_exposed.get() && is_refusal(&e) && !is_io_refusal(&e) => {
                    let misdirected = self.fault_count("disk.fault.misdirected_write");
                    let damaged = self.fault_count("disk.fault.fsynced_damage");
                    shared.refused_correctly.replace(Some(format!(
                        "{e} [verified: {misdirected} misdirected write(s) injected, {damaged} file(s) with fsynced data damaged by a machine crash]"
                    )));
                    self.exec
                        .trace("world.refused_correctly", u64::from(self.boot.get()), 0);
                    return Err(e);
                }
                Err(e) if attempt < BOOT_ATTEMPTS_MAX && is_io_refusal(&e) => {
                    attempt += 1;
                    self.boot_retries.set(self.boot_retries.get() + 1);
                    self.exec
                        .trace("world.boot_retry", u64::from(self.boot.get()), 0);
                    if self.retry_by_machine_crash {
                        let mut rng = self.retry_rng.borrow_mut();
                        crate::crash_machine(&self.exec, &self.net, &self.disk, &mut *rng);
                    } else {
                        crate::crash_process(&self.exec, &self.net, &self.disk);
                    }
                    self.boot.set(self.boot.get() + 1);
                    self.exec.sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the node listens; a start-up error or a boot past `BOOT_DEADLINE` is Err.
    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = self.exec.now() + BOOT_DEADLINE;
        loop {
            if let Some(e) = self.start_error.borrow().clone() {
                return Err(format!("start-up refused (boot {}): {e}", self.boot.get()));
            }
            if self.net.is_listening(NODE, PORT) {
                return Ok(());
            }
            if self.exec.now() > deadline {
                return Err(format!(
                    "node stuck: boot {} did not listen within {BOOT_DEADLINE:?} of virtual time",
                    self.boot.get()
                ));
            }
            self.exec.sleep(Duration::from_millis(1)).await;
        }
    }
}
