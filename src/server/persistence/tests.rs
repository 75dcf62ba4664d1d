//! Whole-node tests of the multi-part AOF on the in-memory world (`io/mem.rs`): real
//! shards (`run_shard`), real cross-shard queues, real BGREWRITEAOF coordinator; only the
//! network is a stub (nothing connects; commands go through `dispatch::call_command`).
//!
//! The crash enumeration freezes the disk after mutating disk op k (every later op fails
//! without effect), for every k through a rewrite with concurrent INCRs, and restarts from
//! both crash images: process crash (every byte written) and machine crash (durable bytes
//! only). Recovery must succeed and every counter must lie in [acknowledged, attempted].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::io::mem::{MemFile, MemIo};
use crate::io::{BufResult, Clock, Disk, Entropy, Io, Listener, Net, OpenMode, Spawn, Stream};
use crate::persist::manifest::MANIFEST_FILE_NAME;
use crate::resp::Frame;
use crate::server::config::{Config, Defects, FsyncPolicy};
use crate::server::{run_shard, Node};
use crate::shard::dispatch::call_command;
use crate::shard::route::shard_of;

/// MemIo plus a network nobody connects to.
#[derive(Clone)]
pub(super) struct TestIo(pub(super) MemIo);

impl Clock for TestIo {
    fn monotonic(&self) -> Duration {
        self.0.monotonic()
    }
    fn wall_clock_ms(&self) -> u64 {
        self.0.wall_clock_ms()
    }
    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> + 'static {
        self.0.sleep(duration)
    }
}
impl Entropy for TestIo {
    fn random_u64(&self) -> u64 {
        self.0.random_u64()
    }
}
impl Spawn for TestIo {
    fn spawn_local(&self, task: impl std::future::Future<Output = ()> + 'static) {
        self.0.spawn_local(task)
    }
}
impl Disk for TestIo {
    type File = MemFile;
    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MemFile> {
        self.0.open(path, mode).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to).await
    }
    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path).await
    }
    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path).await
    }
    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path).await
    }
    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(path).await
    }
}

pub(super) struct NoStream;
impl Stream for NoStream {
    async fn read(&mut self, buf: Vec<u8>) -> BufResult<usize> {
        (Ok(0), buf)
    }
    async fn write_all(&mut self, buf: Vec<u8>) -> BufResult<()> {
        (Err(io::Error::other("no network")), buf)
    }
    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}
pub(super) struct NoListener;
impl Listener for NoListener {
    type Stream = NoStream;
    async fn accept(&self) -> io::Result<(NoStream, String)> {
        std::future::pending().await
    }
    fn local_addr(&self) -> String {
        "127.0.0.1:7000".to_string()
    }
}
impl Net for TestIo {
    type Stream = NoStream;
    type Listener = NoListener;
    async fn bind(&self, _addr: &str) -> io::Result<NoListener> {
        Ok(NoListener)
    }
}
impl Io for TestIo {
    fn driver_name(&self) -> &'static str {
        "mem-test"
    }
}

pub(super) const SHARDS: u16 = 2;
const DIR: &str = "data/appendonlydir";

pub(super) fn config(shards: u16) -> Config {
    Config {
        appendonly: true,
        appendfsync: FsyncPolicy::Always,
        shards,
        dir: PathBuf::from("data"),
        port: 0,
        auto_aof_rewrite_percentage: 0,
        ..Config::default()
    }
}

/// Boots a node; `Err` is the start-up refusal text.
pub(super) fn boot(io: &TestIo, shards: u16) -> Result<Arc<Node>, String> {
    boot_with(io, config(shards))
}

pub(super) fn boot_with(io: &TestIo, config: Config) -> Result<Arc<Node>, String> {
    let shards = config.shards;
    let node = Node::new(config);
    let error: Rc<RefCell<Option<String>>> = Rc::default();
    for id in 0..shards {
        let (n, i, e) = (node.clone(), io.clone(), error.clone());
        io.spawn_local(async move {
            if let Err(err) = run_shard(i, n, id).await {
                e.borrow_mut().get_or_insert(err.0);
            }
        });
    }
    let (n, i) = (node.clone(), io.clone());
    io.0.run(async move {
        while n.bound_port() == 0 && !n.has_failed() {
            i.sleep(Duration::from_millis(1)).await;
        }
    })
    .expect("boot stalled");
    let refusal = error.borrow().clone();
    match refusal {
        Some(e) => Err(e),
        None if node.has_failed() => Err("failed".into()),
        None => Ok(node),
    }
}

pub(super) fn args(list: &[&str]) -> Vec<Bytes> {
    list.iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

pub(super) async fn command(io: &TestIo, node: &Node, list: &[&str]) -> Frame {
    let target = shard_of(list[1].as_bytes(), node.shards());
    call_command(
        io,
        &node.senders,
        target,
        args(list),
        Duration::from_secs(10),
    )
    .await
}

pub(super) fn run_cmd(io: &TestIo, node: &Arc<Node>, list: &[&str]) -> Frame {
    let (i, n) = (io.clone(), node.clone());
    let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    io.0.run(async move {
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        command(&i, &n, &refs).await
    })
    .expect("command stalled")
}

pub(super) fn rewrite_and_wait(io: &TestIo, node: &Arc<Node>) -> Frame {
    let reply = super::bgrewriteaof(node, io);
    let (i, n) = (io.clone(), node.clone());
    io.0.run(async move {
        while n.persistence.rewrite_in_progress() {
            i.sleep(Duration::from_millis(1)).await;
        }
    })
    .expect("rewrite stalled");
    reply
}

/// A fresh world holding `image`'s files (a restart after a crash).
pub(super) fn restart_from(image: Vec<(PathBuf, Vec<u8>)>) -> TestIo {
    let io = TestIo(MemIo::new());
    for (path, bytes) in image {
        io.0.put_file(&path, bytes);
    }
    io
}

fn info_persistence(node: &Node) -> String {
    node.persistence.info_fields(0, 0)
}

#[test]
fn rewrite_round_trip_replaces_the_generation_and_survives_restarts() {
    let io = TestIo(MemIo::new());
    let node = boot(&io, SHARDS).unwrap();
    for i in 0..20 {
        assert_eq!(
            run_cmd(&io, &node, &["SET", &format!("k{i}"), &format!("v{i}")]),
            Frame::ok()
        );
    }
    run_cmd(&io, &node, &["SET", "ttl", "x", "PX", "100000000"]);
    for _ in 0..5 {
        run_cmd(&io, &node, &["INCR", "n"]);
    }
    let before = node.persistence.manifest().unwrap();
    assert_eq!(
        rewrite_and_wait(&io, &node),
        Frame::Simple("Background append only file rewriting started".into())
    );
    assert!(
        info_persistence(&node).contains("aof_last_bgrewrite_status:ok"),
        "{}",
        info_persistence(&node)
    );
    let after = node.persistence.manifest().unwrap();
    assert!(after.seq > before.seq);
    for (id, part) in after.shards.iter().enumerate() {
        assert!(part.base.is_some(), "shard {id} has a base");
        assert_eq!(part.incrs.len(), 1);
    }
    // Old files are gone, new ones exist; the manifest on disk is the new one.
    let names =
        io.0.run({
            let i = io.clone();
            async move { i.list_dir(Path::new(DIR)).await.unwrap() }
        })
        .unwrap();
    for old in before.referenced() {
        assert!(!names.iter().any(|n| n == old), "{old} was pruned");
    }
    for new in after.referenced() {
        assert!(names.iter().any(|n| n == new), "{new} exists");
    }
    run_cmd(&io, &node, &["INCR", "n"]);
    // Restart (machine crash image), check, rewrite again, write, restart again.
    let io2 = restart_from(io.0.disk_image(true));
    let node2 = boot(&io2, SHARDS).unwrap();
    for i in 0..20 {
        assert_eq!(
            run_cmd(&io2, &node2, &["GET", &format!("k{i}")]),
            Frame::bulk(format!("v{i}"))
        );
    }
    assert_eq!(run_cmd(&io2, &node2, &["GET", "n"]), Frame::bulk("6"));
    assert!(matches!(run_cmd(&io2, &node2, &["PTTL", "ttl"]), Frame::Integer(t) if t > 0));
    run_cmd(&io2, &node2, &["INCR", "n"]);
    rewrite_and_wait(&io2, &node2);
    assert!(info_persistence(&node2).contains("aof_last_bgrewrite_status:ok"));
    run_cmd(&io2, &node2, &["INCR", "n"]);
    let io3 = restart_from(io2.0.disk_image(true));
    let node3 = boot(&io3, SHARDS).unwrap();
    assert_eq!(run_cmd(&io3, &node3, &["GET", "n"]), Frame::bulk("8"));
    assert_eq!(run_cmd(&io3, &node3, &["GET", "k19"]), Frame::bulk("v19"));
}

#[test]
fn second_bgrewriteaof_while_one_runs_gets_the_redis_error() {
    let io = TestIo(MemIo::new());
    let node = boot(&io, SHARDS).unwrap();
    run_cmd(&io, &node, &["SET", "a", "1"]);
    let first = super::bgrewriteaof(&node, &io);
    let second = super::bgrewriteaof(&node, &io);
    assert_eq!(
        first,
        Frame::Simple("Background append only file rewriting started".into())
    );
    assert_eq!(
        second,
        Frame::error("ERR Background append only file rewriting already in progress")
    );
    assert!(info_persistence(&node).contains("aof_rewrite_in_progress:1"));
    rewrite_and_wait(&io, &node);
}

#[test]
fn corrupt_manifest_missing_base_and_shard_count_change_refuse_to_start() {
    let io = TestIo(MemIo::new());
    let node = boot(&io, SHARDS).unwrap();
    run_cmd(&io, &node, &["SET", "a", "1"]);
    rewrite_and_wait(&io, &node);
    let image = io.0.disk_image(true);
    let manifest_path = Path::new(DIR).join(MANIFEST_FILE_NAME);

    let mut corrupt = image.clone();
    for (path, bytes) in &mut corrupt {
        if *path == manifest_path {
            bytes[30] ^= 0x04;
        }
    }
    let err = boot(&restart_from(corrupt), SHARDS)
        .err()
        .expect("corrupt manifest refused");
    assert!(
        err.contains("corrupt") && err.contains("check-aof"),
        "{err}"
    );

    let base = node.persistence.manifest().unwrap().shards[1]
        .base
        .clone()
        .unwrap();
    let missing: Vec<_> = image
        .iter()
        .filter(|(p, _)| !p.ends_with(&base))
        .cloned()
        .collect();
    let err = boot(&restart_from(missing), SHARDS)
        .err()
        .expect("missing base refused");
    assert!(err.contains(&base) && err.contains("missing"), "{err}");

    let err = boot(&restart_from(image.clone()), 3)
        .err()
        .expect("shard count change refused");
    assert!(err.contains("--shards 2"), "{err}");

    assert!(
        boot(&restart_from(image), SHARDS).is_ok(),
        "the intact image still starts"
    );
}

#[test]
fn one_shard_failing_its_base_aborts_and_old_generation_plus_new_incr_stay_authoritative() {
    let io = TestIo(MemIo::new());
    let node = boot(&io, SHARDS).unwrap();
    for i in 0..10 {
        run_cmd(&io, &node, &["INCR", &format!("c{i}")]);
    }
    let before = node.persistence.manifest().unwrap();
    node.persistence.fail_base_of_shard(Some(1));
    rewrite_and_wait(&io, &node);
    assert!(info_persistence(&node).contains("aof_last_bgrewrite_status:err"));
    let after = node.persistence.manifest().unwrap();
    for (old, new) in before.shards.iter().zip(&after.shards) {
        assert_eq!(old.base, new.base, "old base kept");
        assert_eq!(
            new.incrs.len(),
            old.incrs.len() + 1,
            "old incrs + the new incr"
        );
        assert_eq!(&new.incrs[..old.incrs.len()], &old.incrs[..]);
    }
    // Writes after the abort go to the new incr and survive a machine crash.
    for i in 0..10 {
        run_cmd(&io, &node, &["INCR", &format!("c{i}")]);
    }
    let io2 = restart_from(io.0.disk_image(true));
    let node2 = boot(&io2, SHARDS).unwrap();
    for i in 0..10 {
        assert_eq!(
            run_cmd(&io2, &node2, &["GET", &format!("c{i}")]),
            Frame::bulk("2")
        );
    }
    // And a later rewrite succeeds and folds everything into one generation.
    node2.persistence.fail_base_of_shard(None);
    rewrite_and_wait(&io2, &node2);
    assert!(info_persistence(&node2).contains("aof_last_bgrewrite_status:ok"));
    let io3 = restart_from(io2.0.disk_image(true));
    let node3 = boot(&io3, SHARDS).unwrap();
    assert_eq!(run_cmd(&io3, &node3, &["GET", "c3"]), Frame::bulk("2"));
}

pub(super) const KEYS: usize = 4;
const INCRS_PER_KEY: usize = 6;

/// Per key: (acknowledged, attempted) INCRs.
pub(super) type Counts = BTreeMap<String, (u64, u64)>;

/// Boots, makes some acknowledged INCRs, freezes the disk `freeze_after` mutating ops
/// later (if given), runs BGREWRITEAOF with INCRs in flight, and returns the world, the
/// counts, and how many disk ops the rewrite phase took.
fn rewrite_under_load(
    freeze_after: Option<u64>,
    fail_base_of: Option<u16>,
) -> (TestIo, Counts, u64) {
    rewrite_under_load_with(&Defects::default(), 1, freeze_after, fail_base_of)
}

/// [`rewrite_under_load`] with test-only defects switched on and `pre_incrs`
/// acknowledged INCRs per key before the rewrite.
pub(super) fn rewrite_under_load_with(
    defects: &Defects,
    pre_incrs: u64,
    freeze_after: Option<u64>,
    fail_base_of: Option<u16>,
) -> (TestIo, Counts, u64) {
    let io = TestIo(MemIo::new());
    let mut cfg = config(SHARDS);
    cfg.defects = defects.clone();
    let node = boot_with(&io, cfg).unwrap();
    node.persistence.fail_base_of_shard(fail_base_of);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("counter:{i}")).collect();
    let counts: Rc<RefCell<Counts>> = Rc::default();
    for key in &keys {
        for n in 1..=pre_incrs {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            assert_eq!(run_cmd(&io, &node, &["INCR", key]), Frame::Integer(n));
        }
        counts
            .borrow_mut()
            .insert(key.clone(), (pre_incrs, pre_incrs));
    }
    let start_ops = io.0.disk_ops();
    io.0.freeze_disk_after_ops(freeze_after.map(|k| start_ops + k));
    let started = super::bgrewriteaof(&node, &io);
    assert_eq!(
        started,
        Frame::Simple("Background append only file rewriting started".into())
    );
    let done = Rc::new(std::cell::Cell::new(0usize));
    for key in keys.clone() {
        let (i, n, c, d) = (io.clone(), node.clone(), counts.clone(), done.clone());
        io.spawn_local(async move {
            for _ in 0..INCRS_PER_KEY {
                c.borrow_mut().get_mut(&key).unwrap().1 += 1;
                if let Frame::Integer(_) = command(&i, &n, &["INCR", &key]).await {
                    c.borrow_mut().get_mut(&key).unwrap().0 += 1;
                }
            }
            d.set(d.get() + 1);
        });
    }
    let (i, n, d) = (io.clone(), node.clone(), done.clone());
    io.0.run(async move {
        while n.persistence.rewrite_in_progress() || d.get() < KEYS {
            i.sleep(Duration::from_millis(1)).await;
        }
    })
    .expect("rewrite under load stalled");
    let ops = io.0.disk_ops() - start_ops;
    let counts = counts.borrow().clone();
    (io, counts, ops)
}

fn check_recovery(image: Vec<(PathBuf, Vec<u8>)>, counts: &Counts, what: &str) {
    if let Err(failure) = try_recovery(image, counts, what) {
        panic!("{failure}");
    }
}

/// Restarts from `image`; `Err` names `what` (the crash point) and the broken invariant:
/// a refused recovery, or a counter outside [acknowledged, attempted].
pub(super) fn try_recovery(
    image: Vec<(PathBuf, Vec<u8>)>,
    counts: &Counts,
    what: &str,
) -> Result<(), String> {
    let io = restart_from(image);
    let node = boot(&io, SHARDS).map_err(|e| format!("{what}: recovery refused: {e}"))?;
    for (key, (acked, attempted)) in counts {
        let value = match run_cmd(&io, &node, &["GET", key]) {
            Frame::Bulk(b) => String::from_utf8_lossy(&b)
                .parse::<u64>()
                .unwrap_or(u64::MAX),
            Frame::Null => 0,
            other => return Err(format!("{what}: GET {key}: {other:?}")),
        };
        if !(*acked <= value && value <= *attempted) {
            return Err(format!(
                "{what}: {key} = {value}, acknowledged {acked}, attempted {attempted}"
            ));
        }
    }
    Ok(())
}

#[test]
fn writes_during_a_rewrite_land_exactly_once() {
    let (io, counts, _) = rewrite_under_load(None, None);
    for (key, (acked, attempted)) in &counts {
        assert_eq!(
            acked, attempted,
            "{key}: every INCR acknowledged without faults"
        );
    }
    check_recovery(io.0.disk_image(true), &counts, "no crash, machine image");
}

/// Runs the enumeration for one scenario; returns the number of crash states checked.
fn enumerate_crashes(fail_base_of: Option<u16>) -> u64 {
    let (_, _, total_ops) = rewrite_under_load(None, fail_base_of);
    assert!(
        total_ops > 20,
        "the rewrite does real disk work ({total_ops} ops)"
    );
    let mut states = 0u64;
    for k in 0..=total_ops {
        let (io, counts, _) = rewrite_under_load(Some(k), fail_base_of);
        let what =
            |kind: &str| format!("{kind} crash after op {k} (failing base: {fail_base_of:?})");
        check_recovery(io.0.disk_image(false), &counts, &what("process"));
        check_recovery(io.0.disk_image(true), &counts, &what("machine"));
        states += 2;
    }
    eprintln!(
        "{fail_base_of:?}: enumerated {states} crash states ({total_ops} disk ops x 2 crash kinds)"
    );
    assert_eq!(states, 2 * (total_ops + 1));
    states
}

/// Crash after every mutating disk op of the rewrite (and of both manifest commits, and
/// of the appends that run concurrently), with both crash images.
#[test]
fn crash_at_every_disk_op_of_the_rewrite_recovers_exactly_the_acknowledged_state() {
    enumerate_crashes(None);
}

/// The same through an aborted rewrite (shard 1's base write fails after its switch):
/// old generation + new incr must recover exactly, at every crash point.
#[test]
fn crash_at_every_disk_op_of_an_aborted_rewrite_recovers_exactly_the_acknowledged_state() {
    enumerate_crashes(Some(1));
}

/// Predecessor bug 14: sequence numbers resume above every file on disk, so a leftover
/// file is never reused (or overwritten) by a later rewrite.
#[test]
fn sequence_numbers_resume_above_files_on_disk() {
    let io = TestIo(MemIo::new());
    let node = boot(&io, SHARDS).unwrap();
    run_cmd(&io, &node, &["SET", "a", "1"]);
    let mut image = io.0.disk_image(true);
    let leftover = Path::new(DIR).join("shard-001.50.base.aof");
    image.push((leftover.clone(), b"leftover of an aborted rewrite".to_vec()));
    let io2 = restart_from(image);
    let node2 = boot(&io2, SHARDS).unwrap();
    assert!(
        io2.0.file_bytes(&leftover).is_none(),
        "unreferenced leftover removed at start-up"
    );
    rewrite_and_wait(&io2, &node2);
    let m = node2.persistence.manifest().unwrap();
    assert!(m.seq > 50, "seq {} resumed above the leftover's 50", m.seq);
    assert_eq!(run_cmd(&io2, &node2, &["GET", "a"]), Frame::bulk("1"));
}

#[test]
fn automatic_rewrite_starts_on_growth_past_the_minimum_size() {
    let io = TestIo(MemIo::new());
    let mut cfg = config(SHARDS);
    cfg.auto_aof_rewrite_percentage = 100;
    cfg.auto_aof_rewrite_min_size = 4096;
    let node = boot_with(&io, cfg).unwrap();
    run_cmd(&io, &node, &["SET", "small", "x"]);
    let idle = io.clone();
    io.0.run(async move { idle.sleep(Duration::from_millis(2500)).await })
        .unwrap();
    assert!(
        node.persistence.manifest().unwrap().shards[0]
            .base
            .is_none(),
        "below min size: no rewrite"
    );
    let value = "v".repeat(100);
    for i in 0..100 {
        run_cmd(&io, &node, &["SET", &format!("key:{i}"), &value]);
    }
    let (i, n) = (io.clone(), node.clone());
    io.0.run(async move {
        while n.persistence.manifest().unwrap().shards[0].base.is_none() {
            i.sleep(Duration::from_millis(100)).await;
        }
    })
    .expect("no automatic rewrite");
    rewrite_and_wait(&io, &node);
    assert!(info_persistence(&node).contains("aof_last_bgrewrite_status:ok"));
}
