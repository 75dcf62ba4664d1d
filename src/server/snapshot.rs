//! RDB snapshots without fork: SAVE, BGSAVE, LASTSAVE, the `save` rules, and loading
//! `dir/dbfilename` at start-up when the AOF is off. Format: `persist::rdb` (Redis RDB 10).
//!
//! Consistent point: each shard clones its keyspace in one synchronous step on its own
//! executor (values are refcounted, so the clone copies the index, not the data); the
//! coordinating shard writes every clone into one file. The file is therefore a
//! consistent snapshot of each shard, taken at slightly different instants across shards
//! (like a non-atomic multi-shard read).
//!
//! Steps of a save (the durability protocol):
//! 1. gather one keyspace clone per shard (bounded cross-shard waits);
//! 2. write `dir/temp-<id>.rdb` in chunks;
//! 3. `sync_all` the temp file;
//! 4. rename it over `dir/dbfilename`;
//! 5. `sync_dir(dir)`; only now is the save reported successful (LASTSAVE moves).
//!
//! What can fail here: a shard not answering (save fails, nothing replaced), disk errors
//! (save fails; the previous dump stays intact because only step 4 replaces it), an
//! unreadable or corrupt dump at start-up (start-up refused with the reason).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::io::{Disk, File, Io, OpenMode};
use crate::keyspace::{Db, Value};
use crate::persist::rdb::{self, RdbHeader, RdbValue, RdbWriter};
use crate::resp::Frame;
use crate::server::Node;
use crate::shard::dispatch::{self, Job, Response};
use crate::shard::route::{shard_of, Router};

/// Bytes read per `read_at` while loading a dump.
pub const SAVE_CHUNK_BYTES: usize = 1024 * 1024;
/// How often the `save` rules are checked.
pub const SAVE_RULES_CHECK_INTERVAL_MS: u64 = 1_000;

/// Node-wide snapshot state (INFO persistence, LASTSAVE).
#[derive(Default)]
pub struct SnapshotState {
    /// A BGSAVE/SAVE is running.
    pub in_progress: AtomicBool,
    /// Unix seconds of the last successful save (start time until the first).
    pub last_save_s: AtomicU64,
    /// Whether the last save succeeded.
    pub last_ok: AtomicBool,
    /// Sum of the shards' write counters when the last successful save started.
    pub dirty_at_last_save: AtomicU64,
    /// Saves attempted.
    pub saves: AtomicU64,
}

/// SAVE / BGSAVE / LASTSAVE.
pub async fn command<I: Io>(
    router: &Router<'_, I>,
    node: &std::sync::Arc<Node>,
    name: &str,
) -> Frame {
    let state = &node.snapshot;
    match name {
        "lastsave" => Frame::Integer(state.last_save_s.load(Ordering::SeqCst) as i64),
        "save" | "bgsave" => {
            if state.in_progress.swap(true, Ordering::SeqCst) {
                return Frame::error("ERR Background save already in progress");
            }
            if name == "save" {
                match save(router, node).await {
                    Ok(()) => Frame::ok(),
                    Err(reason) => {
                        tracing::warn!(%reason, "SAVE failed");
                        Frame::error("ERR")
                    }
                }
            } else {
                let shard = router.shard.clone();
                let senders = router.senders.clone();
                let timeout = router.timeout;
                let node = node.clone();
                router.shard.io.spawn_local(async move {
                    let router = Router {
                        shard: &shard,
                        senders: &senders,
                        shards: node.shards(),
                        timeout,
                        db: Default::default(),
                    };
                    if let Err(reason) = save(&router, &node).await {
                        tracing::warn!(%reason, "BGSAVE failed");
                    }
                });
                Frame::Simple("Background saving started".to_string())
            }
        }
        _ => Frame::error("ERR internal: not a snapshot command"),
    }
}

/// Runs one save; clears `in_progress` at the end whatever happens.
async fn save<I: Io>(router: &Router<'_, I>, node: &Node) -> Result<(), String> {
    let state = &node.snapshot;
    state.saves.fetch_add(1, Ordering::SeqCst);
    let result = save_inner(router, node).await;
    state.last_ok.store(result.is_ok(), Ordering::SeqCst);
    state.in_progress.store(false, Ordering::SeqCst);
    result
}

async fn save_inner<I: Io>(router: &Router<'_, I>, node: &Node) -> Result<(), String> {
    let config = node.config();
    let io = &router.shard.io;
    let started_ms = io.wall_clock_ms();
    // Step 1: one clone per shard.
    let mut dbs = Vec::with_capacity(usize::from(router.shards));
    let mut dirty = 0u64;
    for target in 0..router.shards {
        let (db, shard_dirty) = if target == router.shard.id {
            (router.shard.dbs.borrow().clone(), router.shard.dirty.get())
        } else {
            match dispatch::call(io, router.senders, target, Job::Snapshot, router.timeout).await {
                Ok(Response::Snapshot(db, shard_dirty)) => (*db, shard_dirty),
                Ok(_) => return Err(format!("shard {target}: unexpected answer")),
                Err(frame) => return Err(format!("shard {target}: {frame:?}")),
            }
        };
        dirty += shard_dirty;
        dbs.push(db);
    }
    // Step 2..5.
    let now_ms = io.wall_clock_ms();
    let mut writer = RdbWriter::new(RdbHeader {
        ctime_s: now_ms / 1000,
        used_mem_bytes: dbs
            .iter()
            .flatten()
            .map(|d| d.used_memory_bytes() as u64)
            .sum(),
        ..RdbHeader::default()
    });
    // Per database (SELECTDB/RESIZEDB sections, databases: cmd::databases).
    let per_shard: Vec<&[Db]> = dbs.iter().map(Vec::as_slice).collect();
    rdb::write_databases(&mut writer, &per_shard, now_ms).map_err(|e| e.to_string())?;
    let bytes = writer.finish();
    let temp = config.dir.join(format!(
        "temp-{}-{}.rdb",
        router.shard.id,
        state_counter(node)
    ));
    let target = config.dir.join(&config.dbfilename);
    write_durably(io, &temp, &target, &config.dir, bytes).await?;
    let state = &node.snapshot;
    state.last_save_s.store(now_ms / 1000, Ordering::SeqCst);
    state.dirty_at_last_save.store(dirty, Ordering::SeqCst);
    tracing::info!(
        path = %target.display(),
        elapsed_ms = io.wall_clock_ms().saturating_sub(started_ms),
        "DB saved on disk"
    );
    Ok(())
}

fn state_counter(node: &Node) -> u64 {
    node.snapshot.saves.load(Ordering::SeqCst)
}

/// Steps 2–5 of the save protocol: temp file, sync, rename, sync dir.
async fn write_durably<D: Disk>(
    disk: &D,
    temp: &Path,
    target: &Path,
    dir: &Path,
    bytes: Vec<u8>,
) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", temp.display());
    let file = disk
        .open(temp, OpenMode::CreateTruncate)
        .await
        .map_err(|e| fail("create", e))?;
    let (result, _) = crate::io::write_all_at(&file, bytes, 0).await;
    if let Err(e) = result {
        let _ = disk.remove_file(temp).await;
        return Err(fail("write", e));
    }
    if let Err(e) = file.sync_all().await {
        let _ = disk.remove_file(temp).await;
        return Err(fail("fsync", e));
    }
    drop(file);
    disk.rename(temp, target)
        .await
        .map_err(|e| format!("rename {} to {}: {e}", temp.display(), target.display()))?;
    disk.sync_dir(dir)
        .await
        .map_err(|e| format!("fsync dir {}: {e}", dir.display()))
}

/// The `save` rules: every second, if some rule `(seconds, changes)` holds — at least
/// `changes` writes since the last save and at least `seconds` since it — start a BGSAVE.
/// Runs on shard 0 only.
pub async fn save_rules_loop<I: Io>(router_parts: RouterParts<I>, node: std::sync::Arc<Node>) {
    let RouterParts {
        shard,
        senders,
        timeout,
    } = router_parts;
    loop {
        shard
            .io
            .sleep(Duration::from_millis(SAVE_RULES_CHECK_INTERVAL_MS))
            .await;
        let rules = node.config().save;
        if rules.is_empty() || node.snapshot.in_progress.load(Ordering::SeqCst) {
            continue;
        }
        let router = Router {
            shard: &shard,
            senders: &senders,
            shards: node.shards(),
            timeout,
            db: Default::default(),
        };
        let stats = crate::server::info::gather(&router).await;
        let dirty: u64 = stats.iter().flatten().map(|s| s.dirty).sum();
        let changes = dirty.saturating_sub(node.snapshot.dirty_at_last_save.load(Ordering::SeqCst));
        let elapsed_s = (shard.io.wall_clock_ms() / 1000)
            .saturating_sub(node.snapshot.last_save_s.load(Ordering::SeqCst));
        let due = rules
            .iter()
            .any(|&(seconds, wanted)| changes >= wanted.max(1) && elapsed_s >= seconds);
        if due && !node.snapshot.in_progress.swap(true, Ordering::SeqCst) {
            tracing::info!(
                changes,
                elapsed_s,
                "save rule met: background saving started"
            );
            if let Err(reason) = save(&router, &node).await {
                tracing::warn!(%reason, "background save failed");
            }
        }
    }
}

/// What the save-rules loop needs to build a [`Router`].
pub struct RouterParts<I: Io> {
    /// The shard it runs on.
    pub shard: std::rc::Rc<crate::shard::state::Shard<I>>,
    /// Every shard's queue.
    pub senders: crate::shard::dispatch::Senders,
    /// Bounded cross-shard wait.
    pub timeout: Duration,
}

/// Loads this shard's keys from `dir/dbfilename` if it exists (AOF off), each into its
/// database (`dbs[n]` for SELECTDB n). Keys of other shards are skipped; a database index
/// at or above `dbs.len()` refuses the load (like Redis with too few `databases`).
/// Returns the number of keys loaded.
pub async fn load_dump<I: Io>(
    io: &I,
    dbs: &mut [Db],
    dir: &Path,
    dbfilename: &str,
    shard_id: u16,
    shards: u16,
) -> Result<u64, String> {
    let path: PathBuf = dir.join(dbfilename);
    let file = match io.open(&path, OpenMode::Read).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("open {}: {e}", path.display())),
    };
    let len = file
        .len()
        .await
        .map_err(|e| format!("stat {}: {e}", path.display()))?;
    let mut bytes = Vec::with_capacity(len as usize);
    while (bytes.len() as u64) < len {
        let want = ((len as usize) - bytes.len()).min(SAVE_CHUNK_BYTES);
        let mut chunk = Vec::with_capacity(want);
        let (result, buf) = file
            .read_at(std::mem::take(&mut chunk), bytes.len() as u64)
            .await;
        let n = result.map_err(|e| format!("read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let now_ms = io.wall_clock_ms();
    let mut loaded = 0u64;
    rdb::read_rdb(&bytes, |entry| {
        let Some(db) = usize::try_from(entry.db).ok().and_then(|n| dbs.get_mut(n)) else {
            return Err(format!(
                "the file uses database {} but the server has {} databases; restart with `--databases {}` or more",
                entry.db,
                dbs.len(),
                u64::from(entry.db) + 1
            ));
        };
        if shard_of(&entry.key, shards) != shard_id {
            return Ok(());
        }
        if entry.expire_ms.is_some_and(|t| t <= now_ms) {
            return Ok(());
        }
        let value = value_from_rdb(entry.value)?;
        db.insert(entry.key, value, entry.expire_ms);
        loaded += 1;
        Ok(())
    })
    .map_err(|e| format!("loading {}: {e}", path.display()))?;
    Ok(loaded)
}

/// Converts a loaded RDB value into a keyspace value.
fn value_from_rdb(value: RdbValue) -> Result<Value, String> {
    use crate::keyspace::{hash::HashValue, list::ListValue, set::SetValue, zset::ZSetValue};
    Ok(match value {
        RdbValue::Str(bytes) => Value::Str(bytes),
        RdbValue::List(items) => {
            let mut list = ListValue::new();
            for item in items {
                list.push(crate::keyspace::list::End::Right, item);
            }
            Value::List(list)
        }
        RdbValue::Set(members) => {
            let mut set = SetValue::new();
            for member in members {
                set.insert(member);
            }
            Value::Set(set)
        }
        RdbValue::Hash(pairs) => {
            let mut hash = HashValue::new();
            for (field, value) in pairs {
                hash.insert(field, value);
            }
            Value::Hash(hash)
        }
        RdbValue::ZSet(pairs) => {
            let mut zset = ZSetValue::new();
            for (member, score) in pairs {
                if score.is_nan() {
                    return Err("a sorted set score is NaN".to_string());
                }
                zset.insert(member, score);
            }
            Value::ZSet(zset)
        }
    })
}
