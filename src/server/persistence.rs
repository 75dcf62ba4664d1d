//! Instance-wide AOF persistence: the manifest at start-up (load or create generation 1,
//! refusals), BGREWRITEAOF across all shards without fork and without stopping service,
//! the automatic rewrite by growth, and the numbers for `INFO persistence`.
//!
//! Rewrite protocol (docs/durability.md has the full argument), run by one coordinator
//! task on the shard that received BGREWRITEAOF, talking to every shard (itself included)
//! through the ordinary bounded cross-shard queues:
//! 1. seq ← next sequence number (above everything in the manifest and on disk);
//! 2. every shard creates `shard-N.<seq>.incr.aof`, writes its header and fsyncs it
//!    (`Job::Rewrite(Prepare)`), answering with its durable LSN;
//! 3. manifest commit #1: every shard's incr list += its new incr (appends do not go there
//!    yet, so an abort after this loses nothing: old base + old incrs + new incr are all
//!    authoritative);
//! 4. every shard, in ONE synchronous step on its own executor (`Job::Rewrite(Switch)`):
//!    clones its keyspace (values are refcounted `Bytes`; the pause is one map clone) and
//!    switches appends to the new incr — every write is in exactly one of {snapshot, new
//!    incr}; then, in the background, writes the new base from the clone and fsyncs it;
//! 5. when ALL shards succeeded: manifest commit #2 names per shard the new base and
//!    [new incr] only, with the base's LSN;
//! 6. only after commit #2 returned (dir fsynced) are the files it no longer names
//!    removed, then the dir is fsynced.
//!
//! Any failure before 5 aborts: new bases are removed, the manifest of step 3 stays.
//! A failed commit (3 or 5) removes nothing: the manifest on disk may be either one.
//!
//! What can fail here: start-up refusals (corrupt manifest, a listed file missing, a
//! changed shard count) as `Err(text)`; rewrite failures are logged and reported as
//! `aof_last_bgrewrite_status:err`, never as lost writes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_listener::Event;

use crate::io::{with_timeout, Disk, Io};
use crate::persist::manifest::{
    self, parse_part_file_name, part_file_name, MANIFEST_TEMP_FILE_NAME,
};
use crate::persist::{
    BaseWritten, Lsn, Manifest, PartKind, ShardParts, BOOT_COPY_TEMP_SUFFIX, FILE_HEADER_LEN_BYTES,
};
use crate::resp::Frame;
use crate::server::config::Config;
use crate::server::Node;
use crate::shard::dispatch::{Job, Request, Response};
use crate::shard::state::Shard;

/// Bound on each wait of the coordinator for one shard's rewrite step (base writing
/// included): past it the rewrite aborts.
pub const REWRITE_STEP_TIMEOUT_MS: u64 = 600_000;
/// How often a shard waiting for shard 0's manifest load re-checks for a failed start.
pub const STARTUP_POLL_INTERVAL_MS: u64 = 100;
/// How often the automatic rewrite checks the AOF's growth.
pub const AUTO_REWRITE_CHECK_INTERVAL_MS: u64 = 1_000;

/// A rewrite step sent to a shard.
#[derive(Debug)]
pub enum RewriteJob {
    /// Step 2: create, header and fsync this new incr (a file name in the AOF dir).
    Prepare { incr: String },
    /// Step 4: snapshot + switch in one synchronous step, then write this base.
    /// `inject_failure` (tests only, via `Persistence::fail_base_of_shard`) makes the
    /// base write fail after the switch. `snapshot_after_await`, `positionless_base` and
    /// `drop_appends_when_full` re-introduce predecessor bugs 7, 15 and 8 (`Defects`,
    /// tests only).
    Switch {
        base: String,
        inject_failure: bool,
        snapshot_after_await: bool,
        positionless_base: bool,
        drop_appends_when_full: bool,
    },
    /// Abort before the switch: forget the prepared incr.
    Discard,
}

/// A shard's answer to a [`RewriteJob`].
#[derive(Debug)]
pub enum RewriteAnswer {
    /// Prepared; the shard's durable LSN at that moment.
    Prepared { durable_lsn: Lsn },
    /// The base was written and fsynced; it covers LSNs up to `lsn`.
    BaseWritten { base: BaseWritten, lsn: Lsn },
    /// Discarded.
    Discarded,
}

/// Instance-wide persistence state (one per [`Node`]). `Send + Sync`.
pub struct Persistence {
    manifest: Mutex<Option<Manifest>>,
    startup: Mutex<Option<Result<(), String>>>,
    startup_done: Event,
    next_seq: AtomicU64,
    in_progress: AtomicBool,
    last_ok: AtomicBool,
    last_time_sec: AtomicI64,
    started_ms: AtomicU64,
    base_size_bytes: AtomicU64,
    /// Test hook: the shard whose base write fails (`u16::MAX`: none).
    fail_base_of_shard: std::sync::atomic::AtomicU16,
}

impl Default for Persistence {
    fn default() -> Persistence {
        Persistence {
            manifest: Mutex::new(None),
            startup: Mutex::new(None),
            startup_done: Event::new(),
            next_seq: AtomicU64::new(1),
            in_progress: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            last_time_sec: AtomicI64::new(-1),
            started_ms: AtomicU64::new(0),
            base_size_bytes: AtomicU64::new(0),
            fail_base_of_shard: std::sync::atomic::AtomicU16::new(u16::MAX),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Persistence {
    /// Start-up: shard 0 loads (or, on a first start, creates) the manifest; every shard
    /// then gets its files. `Err` is the actionable refusal text. The other shards wait
    /// for shard 0, re-checking `abort` (another shard failed) every
    /// [`STARTUP_POLL_INTERVAL_MS`], so a failed shard 0 never leaves them hanging.
    pub async fn shard_parts<I: Io>(
        &self,
        io: &I,
        config: &Config,
        shard_id: u16,
        abort: &dyn Fn() -> bool,
    ) -> Result<ShardParts, String> {
        if shard_id == 0 {
            let result = self.load_or_create(io, config).await;
            *lock(&self.startup) = Some(result);
            self.startup_done.notify(usize::MAX);
        }
        loop {
            let listener = self.startup_done.listen();
            if let Some(result) = lock(&self.startup).clone() {
                result?;
                break;
            }
            if abort() {
                return Err("another shard failed to start".to_string());
            }
            let poll = io.sleep(Duration::from_millis(STARTUP_POLL_INTERVAL_MS));
            futures_lite::future::or(listener, poll).await;
        }
        let manifest = lock(&self.manifest);
        let parts = manifest
            .as_ref()
            .and_then(|m| m.shards.get(usize::from(shard_id)).cloned());
        parts.ok_or_else(|| format!("the AOF manifest has no entry for shard {shard_id}"))
    }

    async fn load_or_create<I: Io>(&self, io: &I, config: &Config) -> Result<(), String> {
        let dir = config.aof_dir();
        let shards = config.shards.max(1);
        io.create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            io.sync_dir(parent)
                .await
                .map_err(|e| format!("cannot fsync {}: {e}", parent.display()))?;
        }
        let names = io
            .list_dir(&dir)
            .await
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let max_seq_on_disk = names
            .iter()
            .filter_map(|n| parse_part_file_name(n))
            .map(|p| p.1)
            .max()
            .unwrap_or(0);
        let manifest_path = dir.join(manifest::MANIFEST_FILE_NAME);
        let loaded = manifest::load(io, &dir).await.map_err(|detail| {
            format!(
                "the AOF manifest {} is corrupt or unreadable: {detail}. Refusing to start: it is \
                 the only record of which files hold the data, and starting without it could \
                 overwrite them. Inspect with `tidemark check-aof {}`; restore the manifest from \
                 a backup, or move the directory away to start empty.",
                manifest_path.display(),
                dir.display()
            )
        })?;
        let manifest = match loaded {
            Some(m) => {
                check_loaded(&m, &names, shards, &dir)?;
                remove_orphans(io, &dir, &names, &m).await;
                m
            }
            None => create_first_generation(io, &dir, &names, shards, max_seq_on_disk + 1).await?,
        };
        self.next_seq
            .store(manifest.seq.max(max_seq_on_disk) + 1, Ordering::SeqCst);
        self.base_size_bytes
            .store(base_sizes(io, &dir, &manifest).await, Ordering::SeqCst);
        *lock(&self.manifest) = Some(manifest);
        Ok(())
    }

    /// A copy of the current manifest (`None` before start-up or with AOF off).
    pub fn manifest(&self) -> Option<Manifest> {
        lock(&self.manifest).clone()
    }

    /// Test hook (unit tests and the simulator's aborted-rewrite crash enumeration,
    /// `sim/tests/rewrite_crashpoints.rs`): make shard `shard`'s next base writes fail
    /// after its switch, so the rewrite aborts. Never set by the server itself.
    #[doc(hidden)]
    pub fn fail_base_of_shard(&self, shard: Option<u16>) {
        self.fail_base_of_shard
            .store(shard.unwrap_or(u16::MAX), Ordering::SeqCst);
    }

    /// True while a rewrite runs.
    pub fn rewrite_in_progress(&self) -> bool {
        self.in_progress.load(Ordering::SeqCst)
    }

    /// `INFO persistence` lines for the rewrite (Redis 7 names), given the summed size of
    /// the shards' current incr files and the wall clock.
    pub fn info_fields(&self, incr_size_bytes: u64, now_ms: u64) -> String {
        let running = self.rewrite_in_progress();
        let current = if running {
            let started = self.started_ms.load(Ordering::SeqCst);
            (now_ms.saturating_sub(started) / 1000) as i64
        } else {
            -1
        };
        let base = self.base_size_bytes.load(Ordering::SeqCst);
        format!(
            "aof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:{}\r\n\
             aof_current_rewrite_time_sec:{current}\r\naof_last_bgrewrite_status:{}\r\naof_base_size:{base}\r\n\
             aof_current_size:{}\r\n",
            u8::from(running),
            self.last_time_sec.load(Ordering::SeqCst),
            if self.last_ok.load(Ordering::SeqCst) { "ok" } else { "err" },
            base + incr_size_bytes,
        )
    }
}

fn check_loaded(m: &Manifest, names: &[String], shards: u16, dir: &Path) -> Result<(), String> {
    if m.shards.len() != usize::from(shards) {
        return Err(format!(
            "the AOF in {} was written by a server with {} shards but this server is configured \
             with {shards}; restart with `--shards {}` (resharding an AOF is not supported)",
            dir.display(),
            m.shards.len(),
            m.shards.len()
        ));
    }
    for (id, part) in m.shards.iter().enumerate() {
        for name in part.base.iter().chain(part.incrs.iter()) {
            if !names.iter().any(|n| n == name) {
                let what = if part.base.as_deref() == Some(name.as_str()) {
                    "base"
                } else {
                    "incr"
                };
                return Err(format!(
                    "the AOF manifest names {what} file {name} of shard {id} but it is missing from {}; \
                     refusing to start: replaying the other files (an incr without its base) would \
                     silently lose data. Restore the file, or inspect with `tidemark check-aof {}`",
                    dir.display(),
                    dir.display()
                ));
            }
        }
    }
    Ok(())
}

/// The summed size of the manifest's base files (0 for a missing or unreadable one:
/// recovery reports those).
async fn base_sizes<I: Io>(io: &I, dir: &Path, m: &Manifest) -> u64 {
    let mut total = 0;
    for base in m.shards.iter().filter_map(|p| p.base.as_ref()) {
        if let Ok(file) = io.open(&dir.join(base), crate::io::OpenMode::Read).await {
            total += crate::io::File::len(&file).await.unwrap_or(0);
        }
    }
    total
}

/// Removes data files no manifest names (an aborted rewrite's leftovers) and a stray
/// manifest temp file. Best effort: a failure only leaves garbage.
async fn remove_orphans<I: Io>(io: &I, dir: &Path, names: &[String], m: &Manifest) {
    let mut removed = false;
    for name in names {
        // A start-up copy interrupted before its rename (persist/parts.rs rule 6).
        let boot_copy = name
            .strip_suffix(BOOT_COPY_TEMP_SUFFIX)
            .is_some_and(|n| parse_part_file_name(n).is_some());
        let orphan = (parse_part_file_name(name).is_some() && !m.referenced().any(|r| r == name))
            || name == MANIFEST_TEMP_FILE_NAME
            || boot_copy;
        if orphan && io.remove_file(&dir.join(name)).await.is_ok() {
            tracing::info!(file = %name, "removed a file no AOF manifest names");
            removed = true;
        }
    }
    if removed {
        let _ = io.sync_dir(dir).await;
    }
}

async fn create_first_generation<I: Io>(
    io: &I,
    dir: &Path,
    names: &[String],
    shards: u16,
    seq: u64,
) -> Result<Manifest, String> {
    // Files without a manifest are only acceptable when they hold no record (a first
    // start that crashed before its manifest commit).
    for name in names.iter().filter(|n| parse_part_file_name(n).is_some()) {
        let path = dir.join(name);
        let file = io
            .open(&path, crate::io::OpenMode::Read)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = crate::io::File::len(&file)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if len > FILE_HEADER_LEN_BYTES as u64 {
            return Err(format!(
                "{} holds AOF records but {} has no manifest; refusing to start rather than \
                 ignore them. Restore {} or move the directory away.",
                path.display(),
                dir.display(),
                manifest::MANIFEST_FILE_NAME
            ));
        }
    }
    let mut m = Manifest {
        seq,
        shards: Vec::with_capacity(usize::from(shards)),
    };
    for id in 0..shards {
        let name = part_file_name(id, seq, PartKind::Incr);
        let path = dir.join(&name);
        io.open(&path, crate::io::OpenMode::CreateTruncate)
            .await
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        m.shards.push(ShardParts {
            base: None,
            incrs: vec![name],
            lsn: 0,
        });
    }
    manifest::commit(io, dir, &m).await?;
    tracing::info!(dir = %dir.display(), seq, shards, "created AOF manifest (generation 1)");
    Ok(m)
}

/// BGREWRITEAOF: starts the rewrite in the background on this shard's executor.
pub fn bgrewriteaof<I: Io>(node: &Arc<Node>, io: &I) -> Frame {
    if !node.config().appendonly {
        return Frame::error(
            "ERR BGREWRITEAOF needs appendonly yes in tidemark (the AOF is the only log)",
        );
    }
    if node.persistence.in_progress.swap(true, Ordering::SeqCst) {
        return Frame::error("ERR Background append only file rewriting already in progress");
    }
    start(node.clone(), io.clone());
    Frame::Simple("Background append only file rewriting started".to_string())
}

fn start<I: Io>(node: Arc<Node>, io: I) {
    node.persistence
        .started_ms
        .store(io.wall_clock_ms(), Ordering::SeqCst);
    let task_io = io.clone();
    io.spawn_local(async move {
        let p = &node.persistence;
        let started = task_io.monotonic();
        let result = rewrite_all(&node, &task_io).await;
        let secs = (task_io.monotonic() - started).as_secs() as i64;
        p.last_time_sec.store(secs, Ordering::SeqCst);
        match result {
            Ok(base_size) => {
                p.base_size_bytes.store(base_size, Ordering::SeqCst);
                p.last_ok.store(true, Ordering::SeqCst);
                tracing::info!(base_size, "Background AOF rewrite finished successfully");
            }
            Err(error) => {
                p.last_ok.store(false, Ordering::SeqCst);
                tracing::warn!(%error, "Background AOF rewrite failed; the previous generation stays authoritative");
            }
        }
        p.in_progress.store(false, Ordering::SeqCst);
    });
}

/// Sends one job to every shard (all sends first, so the shards work concurrently), then
/// collects the answers in shard order. Every wait is bounded.
async fn on_every_shard<I: Io>(
    node: &Node,
    io: &I,
    jobs: Vec<RewriteJob>,
) -> Vec<Result<RewriteAnswer, String>> {
    let timeout = Duration::from_millis(REWRITE_STEP_TIMEOUT_MS);
    let mut pending = Vec::with_capacity(jobs.len());
    for (target, job) in jobs.into_iter().enumerate() {
        let (tx, rx) = async_channel::bounded(1);
        let request = Request {
            job: Job::Rewrite(job),
            reply: tx,
        };
        let sent = with_timeout(io, timeout, node.senders[target].send(request)).await;
        pending.push(match sent {
            Some(Ok(())) => Ok(rx),
            _ => Err(format!("shard {target}: could not queue the rewrite step")),
        });
    }
    let mut answers = Vec::with_capacity(pending.len());
    for (target, rx) in pending.into_iter().enumerate() {
        let answer = match rx {
            Ok(rx) => match with_timeout(io, timeout, rx.recv()).await {
                Some(Ok(Response::Rewrite(answer))) => {
                    answer.map_err(|e| format!("shard {target}: {e}"))
                }
                Some(Ok(_)) => Err(format!("shard {target}: unexpected answer")),
                Some(Err(_)) => Err(format!("shard {target} stopped")),
                None => Err(format!(
                    "shard {target} did not answer within {REWRITE_STEP_TIMEOUT_MS} ms"
                )),
            },
            Err(e) => Err(e),
        };
        answers.push(answer);
    }
    answers
}

/// Steps 1-6 of the module docs. `Ok(total base bytes)`.
async fn rewrite_all<I: Io>(node: &Node, io: &I) -> Result<u64, String> {
    let p = &node.persistence;
    let dir = node.config().aof_dir();
    let shards = node.shards();
    let old = p.manifest().ok_or("no AOF manifest loaded")?;
    // Step 1.
    let seq = p.next_seq.fetch_add(1, Ordering::SeqCst);
    let incrs: Vec<String> = (0..shards)
        .map(|s| part_file_name(s, seq, PartKind::Incr))
        .collect();
    let bases: Vec<String> = (0..shards)
        .map(|s| part_file_name(s, seq, PartKind::Base))
        .collect();
    // Step 2.
    let jobs = incrs
        .iter()
        .map(|incr| RewriteJob::Prepare { incr: incr.clone() })
        .collect();
    let answers = on_every_shard(node, io, jobs).await;
    let mut step3 = old.clone();
    step3.seq = seq;
    let mut failure = None;
    for (id, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(RewriteAnswer::Prepared { durable_lsn }) => {
                let part = &mut step3.shards[id];
                part.incrs.push(incrs[id].clone());
                part.lsn = part.lsn.max(durable_lsn);
            }
            Ok(_) => failure = Some(format!("shard {id}: unexpected answer")),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(error) = failure {
        discard_everywhere(node, io).await;
        remove_files(io, &dir, &incrs).await;
        return Err(error);
    }
    // Step 3.
    if let Err(error) = manifest::commit(io, &dir, &step3).await {
        discard_everywhere(node, io).await;
        return Err(error);
    }
    *lock(&p.manifest) = Some(step3.clone());
    // Step 4.
    let failing = p.fail_base_of_shard.load(Ordering::SeqCst);
    let late_snapshot = node.config().defects.snapshot_after_await;
    let snapshot_then_truncate = node.config().defects.base_committed_before_log_truncation;
    let drop_on_full = node.config().defects.drop_appends_during_rewrite;
    let jobs = (0..shards)
        .map(|id| RewriteJob::Switch {
            base: bases[usize::from(id)].clone(),
            inject_failure: id == failing,
            snapshot_after_await: late_snapshot,
            positionless_base: snapshot_then_truncate,
            drop_appends_when_full: drop_on_full,
        })
        .collect();
    let answers = on_every_shard(node, io, jobs).await;
    let mut step5 = step3.clone();
    let mut total = 0u64;
    let mut failure = None;
    for (id, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(RewriteAnswer::BaseWritten { base, lsn }) => {
                total += base.size_bytes;
                step5.shards[id] = ShardParts {
                    base: Some(base.name),
                    incrs: vec![incrs[id].clone()],
                    lsn,
                };
            }
            Ok(_) => failure = Some(format!("shard {id}: unexpected answer")),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(error) = failure {
        remove_files(io, &dir, &bases).await;
        return Err(error);
    }
    let stale: Vec<String> = step3
        .referenced()
        .filter(|name| !step5.referenced().any(|n| n == *name))
        .map(str::to_string)
        .collect();
    let defects = node.config().defects.clone();
    if defects.prune_before_manifest_commit {
        // Predecessor bug 6 (test-only switch): the old generation goes first.
        remove_files(io, &dir, &stale).await;
    }
    if defects.base_committed_before_log_truncation {
        // Predecessor bug 15 (test-only switch): the new base is committed while the
        // old incrs are still listed ("snapshot written, log not yet truncated").
        let mut untruncated = step5.clone();
        for (part, old_part) in untruncated.shards.iter_mut().zip(&step3.shards) {
            part.incrs = old_part.incrs.clone();
        }
        manifest::commit(io, &dir, &untruncated).await?;
    }
    // Step 5.
    manifest::commit(io, &dir, &step5).await?;
    *lock(&p.manifest) = Some(step5.clone());
    // Step 6.
    if !defects.prune_before_manifest_commit {
        remove_files(io, &dir, &stale).await;
    }
    Ok(total)
}

async fn discard_everywhere<I: Io>(node: &Node, io: &I) {
    let jobs = (0..node.shards()).map(|_| RewriteJob::Discard).collect();
    for answer in on_every_shard(node, io, jobs).await {
        if let Err(error) = answer {
            tracing::warn!(%error, "AOF rewrite abort: discarding a prepared incr failed");
        }
    }
}

async fn remove_files<I: Disk>(io: &I, dir: &Path, names: &[String]) {
    for name in names {
        let path = dir.join(name);
        if let Err(error) = io.remove_file(&path).await {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), %error, "could not remove an AOF file");
            }
        }
    }
    let _ = io.sync_dir(dir).await;
}

/// A shard's side of the rewrite: runs `job` and answers on `reply`. `Switch` takes the
/// snapshot and switches the AOF in this call, synchronously, before any `.await`.
pub fn serve_rewrite_job<I: Io>(
    shard: &std::rc::Rc<Shard<I>>,
    job: RewriteJob,
    reply: async_channel::Sender<Response>,
) {
    let Some(aof) = shard.aof.clone() else {
        let _ = reply.try_send(Response::Rewrite(Err("the AOF is off".to_string())));
        return;
    };
    match job {
        RewriteJob::Prepare { incr } => shard.io.spawn_local(async move {
            let answer = match aof.prepare_incr(&incr).await {
                Ok(()) => Ok(RewriteAnswer::Prepared {
                    durable_lsn: aof.stats().durable_lsn,
                }),
                Err(e) => Err(e.to_string()),
            };
            let _ = reply.try_send(Response::Rewrite(answer));
        }),
        RewriteJob::Discard => {
            aof.discard_prepared();
            let _ = reply.try_send(Response::Rewrite(Ok(RewriteAnswer::Discarded)));
        }
        RewriteJob::Switch {
            base,
            inject_failure,
            snapshot_after_await,
            positionless_base,
            drop_appends_when_full,
        } => {
            // Predecessor bug 8 (test-only switch): drop-on-full while the base is written.
            shard.drop_appends_when_full.set(drop_appends_when_full);
            // One synchronous step: snapshot and switch (predecessor bugs 7 and 15).
            let snapshot = (!snapshot_after_await).then(|| shard.dbs.borrow().clone());
            let lsn = match aof.switch_to_prepared() {
                Ok(lsn) => lsn,
                Err(e) => {
                    let _ = reply.try_send(Response::Rewrite(Err(e.to_string())));
                    return;
                }
            };
            let io = shard.io.clone();
            let late_shard = shard.clone();
            shard.io.spawn_local(async move {
                let snapshot = match snapshot {
                    Some(snapshot) => snapshot,
                    None => {
                        // Predecessor bug 7 (test-only switch): the snapshot is taken one
                        // `.await` (a 1 ms timer, like opening the base file on a slow
                        // disk) after the switch; writes in between land in both.
                        io.sleep(Duration::from_millis(1)).await;
                        late_shard.dbs.borrow().clone()
                    }
                };
                let now_ms = io.wall_clock_ms();
                let written = if inject_failure {
                    Err("injected base write failure (test hook)".to_string())
                } else {
                    // Predecessor bug 15 (test-only switch): a plain snapshot that does not
                    // record which log position it covers (header LSN 0).
                    let base_lsn = if positionless_base { 0 } else { lsn };
                    crate::persist::write_base(
                        &io,
                        aof.options(),
                        &base,
                        &snapshot,
                        base_lsn,
                        now_ms,
                    )
                    .await
                };
                late_shard.drop_appends_when_full.set(false);
                if written.is_err() {
                    let _ = io.remove_file(&aof.options().dir.join(&base)).await;
                }
                let answer = written.map(|base| RewriteAnswer::BaseWritten { base, lsn });
                let _ = reply.try_send(Response::Rewrite(answer));
            });
        }
    }
}

/// Automatic rewrite (Redis `auto-aof-rewrite-percentage` / `-min-size`): checks every
/// [`AUTO_REWRITE_CHECK_INTERVAL_MS`] whether the AOF (incr bytes beyond the base) grew
/// past both thresholds and starts a rewrite if none runs. Runs on shard 0 only.
pub async fn auto_rewrite<I: Io>(node: Arc<Node>, shard: std::rc::Rc<Shard<I>>) {
    loop {
        shard
            .io
            .sleep(Duration::from_millis(AUTO_REWRITE_CHECK_INTERVAL_MS))
            .await;
        let config = node.config();
        if !config.appendonly
            || config.auto_aof_rewrite_percentage == 0
            || node.persistence.rewrite_in_progress()
        {
            continue;
        }
        let mut incr = 0u64;
        for target in 0..node.shards() {
            let stats = if target == shard.id {
                Some(shard.stats())
            } else {
                match crate::shard::dispatch::call(
                    &shard.io,
                    &node.senders,
                    target,
                    Job::Stats,
                    config.cross_shard_timeout(),
                )
                .await
                {
                    Ok(Response::Stats(stats)) => Some(*stats),
                    _ => None,
                }
            };
            incr += stats.map_or(0, |s| s.aof_current_size_bytes);
        }
        let base = node.persistence.base_size_bytes.load(Ordering::SeqCst);
        let current = base + incr;
        let reference = base.max(1);
        let growth_percent = current.saturating_mul(100) / reference;
        if current >= config.auto_aof_rewrite_min_size
            && growth_percent >= 100 + config.auto_aof_rewrite_percentage
            && !node.persistence.in_progress.swap(true, Ordering::SeqCst)
        {
            tracing::info!(
                current,
                base,
                "Starting automatic rewriting of AOF on {}% growth",
                growth_percent - 100
            );
            start(node.clone(), shard.io.clone());
        }
    }
}

#[cfg(test)]
mod defect_tests;
#[cfg(test)]
mod tests;
