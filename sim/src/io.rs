//! SimIo: the simulator's implementation of the server's IO seam (`tidemark::io::Io`)
//! for one shard of one simulated node.
//!
//! Spawned tasks run on the shared [`Executor`] tagged `Owner::Node(node)`, so a process
//! crash (`Executor::kill_owner`) drops them all; the disk is the node's [`SimDisk`]
//! (which outlives the process); the network is the shared [`SimNet`] as seen from the
//! node; entropy is a ChaCha8 stream of the run seed unique to (node, boot, shard), so a
//! restarted node does not replay the same random choices.
//!
//! What can fail here: nothing beyond what the disk and network return.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use tidemark::io::OpenMode;

use crate::clock::SimClock;
use crate::disk::{SimDisk, SimFile};
use crate::executor::{stream, Executor, Owner};
use crate::net::{NodeNet, SimListener, SimNet, SimStream};

/// Everything one shard of one simulated node sees of the world. `Clone + 'static`.
#[derive(Clone)]
pub struct SimIo {
    exec: Executor,
    clock: SimClock,
    node: u32,
    shard: u16,
    disk: SimDisk,
    net: NodeNet,
    rng: Rc<RefCell<ChaCha8Rng>>,
}

impl SimIo {
    /// The IO of shard `shard` of node `node` in its `boot`-th life (0 for the first
    /// start; bump it on every restart so entropy differs between lives).
    pub fn new(
        exec: &Executor,
        node: u32,
        boot: u32,
        shard: u16,
        disk: &SimDisk,
        net: &SimNet,
    ) -> SimIo {
        assert_eq!(disk.node(), node, "a node's IO must use that node's disk");
        let stream_id = stream::ENTROPY_BASE
            + ((u64::from(node) & 0xff_ffff) << 24)
            + ((u64::from(boot) & 0xff) << 16)
            + u64::from(shard);
        SimIo {
            exec: exec.clone(),
            clock: SimClock::new(exec),
            node,
            shard,
            disk: disk.clone(),
            net: net.for_node(node),
            rng: Rc::new(RefCell::new(exec.rng_stream(stream_id))),
        }
    }

    /// The node this IO belongs to.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The shard this IO belongs to.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// The executor.
    pub fn executor(&self) -> &Executor {
        &self.exec
    }

    /// The node's disk.
    pub fn disk(&self) -> &SimDisk {
        &self.disk
    }
}

impl tidemark::io::Clock for SimIo {
    fn monotonic(&self) -> Duration {
        self.clock.monotonic()
    }

    fn wall_clock_ms(&self) -> u64 {
        self.clock.wall_clock_ms()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + 'static {
        self.clock.sleep(duration)
    }
}

impl tidemark::io::Entropy for SimIo {
    fn random_u64(&self) -> u64 {
        self.rng.borrow_mut().next_u64()
    }
}

impl tidemark::io::Spawn for SimIo {
    fn spawn_local(&self, task: impl Future<Output = ()> + 'static) {
        self.exec.spawn(Owner::Node(self.node), task);
    }
}

impl tidemark::io::Disk for SimIo {
    type File = SimFile;

    fn open(&self, path: &Path, mode: OpenMode) -> impl Future<Output = io::Result<SimFile>> {
        self.disk.open(path, mode)
    }

    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> {
        self.disk.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        self.disk.remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        self.disk.sync_dir(path)
    }

    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        self.disk.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> impl Future<Output = io::Result<Vec<String>>> {
        self.disk.list_dir(path)
    }
}

impl tidemark::io::Net for SimIo {
    type Stream = SimStream;
    type Listener = SimListener;

    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<SimListener>> {
        self.net.bind(addr)
    }
}

impl tidemark::io::Io for SimIo {
    fn driver_name(&self) -> &'static str {
        "sim"
    }
}
