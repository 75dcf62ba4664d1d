//! Tests for blocked clients: the registry on its own, then two or more "clients" on one
//! shard run by `io::mem`'s executor with its virtual clock (no real time passes).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::task::{Context, Waker};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::io::mem::{MemFile, MemIo};
use crate::io::{BufResult, Disk, Entropy, Listener, Net, OpenMode, Spawn, Stream};
use crate::keyspace::Db;

/// `MemIo` plus a network that refuses everything, so a `Shard` can run on it.
#[derive(Clone)]
struct TestIo(MemIo);

struct NoStream;
struct NoListener;

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "no network in this test")
}

impl Stream for NoStream {
    async fn read(&mut self, buf: Vec<u8>) -> BufResult<usize> {
        (Err(refused()), buf)
    }
    async fn write_all(&mut self, buf: Vec<u8>) -> BufResult<()> {
        (Err(refused()), buf)
    }
    async fn shutdown(&mut self) -> io::Result<()> {
        Err(refused())
    }
}

impl Listener for NoListener {
    type Stream = NoStream;
    async fn accept(&self) -> io::Result<(NoStream, String)> {
        Err(refused())
    }
    fn local_addr(&self) -> String {
        String::new()
    }
}

impl Net for TestIo {
    type Stream = NoStream;
    type Listener = NoListener;
    async fn bind(&self, _addr: &str) -> io::Result<NoListener> {
        Err(refused())
    }
}

impl Clock for TestIo {
    fn monotonic(&self) -> Duration {
        self.0.monotonic()
    }
    fn wall_clock_ms(&self) -> u64 {
        self.0.wall_clock_ms()
    }
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + 'static {
        self.0.sleep(duration)
    }
}

impl Entropy for TestIo {
    fn random_u64(&self) -> u64 {
        self.0.random_u64()
    }
}

impl Spawn for TestIo {
    fn spawn_local(&self, task: impl Future<Output = ()> + 'static) {
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

impl Io for TestIo {
    fn driver_name(&self) -> &'static str {
        "mem-test"
    }
}

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn pair(k: &str, v: &str) -> Frame {
    Frame::Array(vec![bulk(k), bulk(v)])
}

struct World {
    io: MemIo,
    shard: Rc<Shard<TestIo>>,
}

fn world() -> World {
    let io = MemIo::new();
    let shard = Rc::new(Shard::new(0, TestIo(io.clone()), Db::new(1), None));
    World { io, shard }
}

type Slot = Rc<RefCell<Option<(Frame, Duration)>>>;

impl World {
    /// A client task running `line` as a (possibly blocking) command; the slot receives
    /// its reply and the virtual time it arrived.
    fn client(&self, line: &str) -> Slot {
        let slot: Slot = Rc::new(RefCell::new(None));
        let (shard, out, a) = (self.shard.clone(), slot.clone(), args(line));
        let io = self.io.clone();
        self.io.spawn_local(async move {
            let spec = cmd::lookup(&a[0]).expect("known command");
            let reply = shard.run_blocking(0, spec, &a).await;
            *out.borrow_mut() = Some((reply, io.now()));
        });
        slot
    }

    /// Runs a non-blocking command right now.
    fn exec(&self, line: &str) -> Frame {
        let a = args(line);
        self.shard
            .execute_local(0, cmd::lookup(&a[0]).expect("known command"), &a)
            .0
    }

    fn advance_ms(&self, ms: u64) {
        self.io
            .advance(Duration::from_millis(ms))
            .expect("not stalled");
    }
}

fn reply(slot: &Slot) -> Option<Frame> {
    slot.borrow().as_ref().map(|(f, _)| f.clone())
}

fn poll_once(fut: &mut Notified<'_>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(fut).poll(&mut cx).is_ready()
}

#[test]
fn registry_notifies_first_waiter_and_passes_the_turn_on_drop() {
    let reg = BlockingRegistry::new();
    let k = Bytes::from_static(b"k");
    let first = reg.register(&[k.clone(), k.clone()]);
    let second = reg.register(std::slice::from_ref(&k));
    assert_eq!(reg.waiters(b"k"), 2, "duplicate keys register once");
    {
        let (mut n1, mut n2) = (first.notified(), second.notified());
        assert!(!poll_once(&mut n1) && !poll_once(&mut n2));
        reg.notify_first(b"k");
        assert!(!poll_once(&mut n2), "only the first waiter is notified");
    }
    drop(first); // notified but never served: the turn goes to the second waiter
    assert!(poll_once(&mut second.notified()));
    drop(second);
    assert!(reg.is_empty() && reg.waiters(b"k") == 0);
}

#[test]
fn push_wakes_a_blocked_pop() {
    let w = world();
    let a = w.client("BLPOP l 0");
    w.advance_ms(50);
    assert_eq!(reply(&a), None, "blocked while the list is empty");
    assert_eq!(w.shard.blocking[0].waiters(b"l"), 1);
    assert_eq!(w.exec("RPUSH l x y"), Frame::Integer(2));
    w.advance_ms(1);
    assert_eq!(reply(&a), Some(pair("l", "x")));
    assert_eq!(w.exec("LRANGE l 0 -1"), Frame::Array(vec![bulk("y")]));
    assert!(w.shard.blocking[0].is_empty());
}

#[test]
fn timeouts_fire_on_virtual_time() {
    let w = world();
    let a = w.client("BLPOP l 0.2");
    let b = w.client("BLMOVE s d LEFT RIGHT 1.5");
    let forever = w.client("BRPOP l 0");
    w.advance_ms(3_600_000);
    let (frame, at) = a.borrow().clone().expect("timed out");
    assert_eq!((frame, at), (Frame::NullArray, Duration::from_millis(200)));
    let (frame, at) = b.borrow().clone().expect("timed out");
    assert_eq!((frame, at), (Frame::NullArray, Duration::from_millis(1500)));
    assert_eq!(reply(&forever), None, "timeout 0 waits forever");
    assert_eq!(w.shard.blocking[0].waiters(b"l"), 1);
    assert_eq!(w.shard.blocking[0].waiters(b"s"), 0);
}

#[test]
fn waiters_are_served_in_fifo_order() {
    let w = world();
    let a = w.client("BLPOP l 0");
    w.advance_ms(1);
    let b = w.client("BRPOP l 0");
    w.advance_ms(1);
    let c = w.client("BLPOP l 0");
    w.advance_ms(1);
    w.exec("RPUSH l x");
    w.advance_ms(1);
    assert_eq!(
        (reply(&a), reply(&b), reply(&c)),
        (Some(pair("l", "x")), None, None)
    );
    w.exec("RPUSH l y z");
    w.advance_ms(1);
    assert_eq!(
        reply(&b),
        Some(pair("l", "z")),
        "one push serves several waiters in turn"
    );
    assert_eq!(reply(&c), Some(pair("l", "y")));
    assert!(w.shard.blocking[0].is_empty());
    assert_eq!(w.exec("EXISTS l"), Frame::Integer(0));
}

#[test]
fn several_keys_and_chained_moves() {
    let w = world();
    let a = w.client("BLPOP a b 0");
    let mover = w.client("BLMOVE src dst RIGHT LEFT 0");
    let c = w.client("BLMPOP 0 1 dst LEFT COUNT 5");
    w.advance_ms(1);
    w.exec("LPUSH b v");
    w.exec("RPUSH src m1");
    w.advance_ms(1);
    assert_eq!(
        reply(&a),
        Some(pair("b", "v")),
        "served by the key that became ready"
    );
    assert_eq!(reply(&mover), Some(bulk("m1")));
    let expect = Frame::Array(vec![bulk("dst"), Frame::Array(vec![bulk("m1")])]);
    assert_eq!(
        reply(&c),
        Some(expect),
        "the move's destination wakes its waiter"
    );
    assert!(w.shard.blocking[0].is_empty());
}

#[test]
fn a_dropped_waiter_deregisters_and_pops_nothing() {
    let w = world();
    let shard = w.shard.clone();
    let io = w.io.clone();
    // A client that disconnects after 10 ms: its blocking future is dropped.
    w.io.spawn_local(async move {
        let a = args("BLPOP l 0");
        let spec = cmd::lookup(&a[0]).expect("known");
        let done = with_timeout(
            &io,
            Duration::from_millis(10),
            shard.run_blocking(0, spec, &a),
        )
        .await;
        assert!(done.is_none());
    });
    let b = w.client("BLPOP l 0");
    w.advance_ms(5);
    assert_eq!(w.shard.blocking[0].waiters(b"l"), 2);
    w.advance_ms(10);
    assert_eq!(
        w.shard.blocking[0].waiters(b"l"),
        1,
        "the gone client left the queue"
    );
    w.exec("RPUSH l x");
    w.advance_ms(1);
    assert_eq!(
        reply(&b),
        Some(pair("l", "x")),
        "the next client is served instead"
    );
}

#[test]
fn a_gone_requester_never_pops() {
    let w = world();
    let gone = Rc::new(std::cell::Cell::new(false));
    let (shard, flag) = (w.shard.clone(), gone.clone());
    let slot: Slot = Rc::new(RefCell::new(None));
    let out = slot.clone();
    w.io.spawn_local(async move {
        let a = args("BLPOP l 0");
        let spec = cmd::lookup(&a[0]).expect("known");
        let reply = shard.run_blocking_while(0, spec, &a, || flag.get()).await;
        *out.borrow_mut() = Some((reply, Duration::ZERO));
    });
    w.advance_ms(5);
    gone.set(true);
    w.exec("RPUSH l x");
    w.advance_ms(1);
    assert_eq!(reply(&slot), Some(Frame::NullArray));
    assert_eq!(
        w.exec("LLEN l"),
        Frame::Integer(1),
        "the element stays in the list"
    );
    assert!(w.shard.blocking[0].is_empty());
}

#[test]
fn immediate_and_error_replies_do_not_block() {
    let w = world();
    w.exec("SET s x");
    let a = w.client("BLPOP s 0");
    let b = w.client("BLPOP l -1");
    w.exec("RPUSH l v");
    let c = w.client("BRPOPLPUSH l d 0");
    w.advance_ms(1);
    assert_eq!(reply(&a), Some(Frame::error(crate::cmd::ERR_WRONGTYPE)));
    assert_eq!(reply(&b), Some(Frame::error("ERR timeout is negative")));
    assert_eq!(reply(&c), Some(bulk("v")));
    assert!(w.shard.blocking[0].is_empty());
}

/// Opens shard 0's AOF (`appendfsync always`) on `io`, replaying records into `shard`'s Db
/// when given; returns the opened AOF.
fn open_aof(io: &MemIo, replay_into: Option<Rc<Shard<TestIo>>>) -> crate::persist::Aof<TestIo> {
    use crate::server::config::{Config, FsyncPolicy};
    let config = Config {
        dir: "data".into(),
        appendonly: true,
        appendfsync: FsyncPolicy::Always,
        ..Config::default()
    };
    let options = crate::persist::AofOptions::from_config(&config, 0);
    let test_io = TestIo(io.clone());
    io.run(async move {
        let mut replay = |_lsn: u64, args: Vec<Bytes>| match &replay_into {
            Some(shard) => shard.replay(&args),
            None => Ok(()),
        };
        crate::persist::Aof::open(test_io, options, &mut replay)
            .await
            .map(|(aof, _)| aof)
    })
    .expect("open stalled")
    .expect("AOF opens")
}

#[test]
fn a_served_pop_is_logged_when_popped_and_replays() {
    let io = MemIo::new();
    let aof = open_aof(&io, None);
    let shard = Rc::new(Shard::new(0, TestIo(io.clone()), Db::new(1), Some(aof)));
    let w = World {
        io: io.clone(),
        shard,
    };
    let a = w.client("BLPOP l 0");
    let b = w.client("BLMOVE l d RIGHT LEFT 0");
    w.advance_ms(5);
    w.exec("RPUSH l x y z");
    w.advance_ms(5);
    assert_eq!(reply(&a), Some(pair("l", "x")));
    assert_eq!(reply(&b), Some(bulk("z")));
    // Crash: only what was fsynced survives; every acknowledged pop must replay.
    io.crash();
    let fresh = Rc::new(Shard::new(0, TestIo(io.clone()), Db::new(2), None));
    open_aof(&io, Some(fresh.clone()));
    let recovered = World { io, shard: fresh };
    assert_eq!(
        recovered.exec("LRANGE l 0 -1"),
        Frame::Array(vec![bulk("y")])
    );
    assert_eq!(
        recovered.exec("LRANGE d 0 -1"),
        Frame::Array(vec![bulk("z")])
    );
}
