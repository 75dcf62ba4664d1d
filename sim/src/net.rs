//! SimNet: the simulated network — listeners, in-memory TCP-like streams, resets.
//!
//! Addressing: node `n` has the IP `10.0.0.n` ([`SimNet::node_ip`]); whatever IP a node
//! binds (`127.0.0.1`, `0.0.0.0`, …) it listens on its own IP and the given port (port 0
//! picks one from 40000 up). Every shard of a node binds the same address: the listeners
//! form a group and each incoming connection goes to a random member. Clients connect
//! with [`SimNet::connect`]; with no listener the result is `ConnectionRefused` (clients
//! retry). A connection is two byte pipes; a read returns a random-length prefix of what
//! has arrived (at least 1 byte) with probability `split_read_rate`, so frames split at
//! any byte. `write_all` waits a random virtual delay, then queues its bytes, waiting
//! while the peer's buffer is full (slow readers exert backpressure).
//!
//! Failures: [`SimNet::kill_node`] (process crash) removes the node's listeners and resets
//! its connections — both sides get `ConnectionReset`. [`SimNet::reset`] resets one
//! connection, and `reset_rate` resets connections at random on writes. Dropping a stream
//! closes both directions: the peer reads EOF, and its writes get `BrokenPipe`.
//! `shutdown` closes only the write side (half-close).
//!
//! What can fail here: `bind` (port held by another node's group is fine — nodes have
//! distinct IPs; bad address ⇒ InvalidInput), `connect` (refused), `accept` after the
//! node was killed (ConnectionAborted), reads/writes (reset, broken pipe).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tidemark::io::BufResult;

use crate::executor::{stream, Executor, Owner};
use crate::faults::NetFaults;

/// One direction of a connection.
#[derive(Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer shut down or dropped its end: the reader sees EOF once drained.
    write_closed: bool,
    /// The reader dropped its end: writes fail with `BrokenPipe`.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn wake_all(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// A connection: `pipes[0]` carries client → server, `pipes[1]` server → client.
struct Conn {
    id: u64,
    pipes: [Pipe; 2],
    reset: bool,
    /// The owner of each end: `[client side, server side]`.
    ends: [Owner; 2],
}

struct Backlog {
    node: u32,
    port: u16,
    queue: VecDeque<(SimStream, String)>,
    waker: Option<Waker>,
    closed: bool,
}

struct NetState {
    rng: ChaCha8Rng,
    faults: NetFaults,
    /// Listener groups: (node, port) → listener ids.
    groups: BTreeMap<(u32, u16), Vec<u64>>,
    backlogs: BTreeMap<u64, Backlog>,
    conns: BTreeMap<u64, Weak<RefCell<Conn>>>,
    next_id: u64,
    next_port: u16,
    /// Nodes cut off from every client: nothing is delivered in either direction.
    partitioned: BTreeSet<u32>,
}

/// The whole simulated network (every node and client). Cheap to clone (an `Rc`).
#[derive(Clone)]
pub struct SimNet {
    exec: Executor,
    state: Rc<RefCell<NetState>>,
}

impl SimNet {
    /// A network with no listeners, drawing randomness from `stream::NET`.
    pub fn new(exec: &Executor, faults: NetFaults) -> SimNet {
        SimNet {
            exec: exec.clone(),
            state: Rc::new(RefCell::new(NetState {
                rng: exec.rng_stream(stream::NET),
                faults,
                groups: BTreeMap::new(),
                backlogs: BTreeMap::new(),
                conns: BTreeMap::new(),
                next_id: 1,
                next_port: 40_000,
                partitioned: BTreeSet::new(),
            })),
        }
    }

    /// The IP address of node `node`: `10.0.0.<node>` (`10.0.<hi>.<lo>` above 255).
    pub fn node_ip(node: u32) -> String {
        format!(
            "10.{}.{}.{}",
            (node >> 16) & 255,
            (node >> 8) & 255,
            node & 255
        )
    }

    /// `node_ip(node):port`.
    pub fn node_addr(node: u32, port: u16) -> String {
        format!("{}:{port}", SimNet::node_ip(node))
    }

    /// The network as seen from node `node` (implements [`tidemark::io::Net`]).
    pub fn for_node(&self, node: u32) -> NodeNet {
        NodeNet {
            net: self.clone(),
            node,
        }
    }

    /// Replaces the fault configuration.
    pub fn set_faults(&self, faults: NetFaults) {
        self.state.borrow_mut().faults = faults;
    }

    /// Whether `node` has at least one listener on `port` (clients can connect).
    pub fn is_listening(&self, node: u32, port: u16) -> bool {
        self.state
            .borrow()
            .groups
            .get(&(node, port))
            .is_some_and(|g| !g.is_empty())
    }

    /// Number of live connections (both ends not yet dropped, not reset).
    pub fn open_connections(&self) -> usize {
        let state = self.state.borrow();
        state
            .conns
            .values()
            .filter_map(Weak::upgrade)
            .filter(|c| !c.borrow().reset)
            .count()
    }

    /// Connects `from` (a client) to `addr` (`ip:port` of a node). Fails with
    /// `ConnectionRefused` when nothing listens there.
    /// While `node` is partitioned, connecting waits (a SYN that gets no answer: use a
    /// timeout).
    pub async fn connect(&self, from: Owner, addr: &str) -> io::Result<SimStream> {
        let (node, port) = parse_node_addr(addr)?;
        self.exec.sleep(self.draw_latency()).await;
        while self.is_partitioned(node) {
            self.exec.sleep(Duration::from_millis(1)).await;
        }
        let mut state = self.state.borrow_mut();
        let members = state.groups.get(&(node, port)).cloned().unwrap_or_default();
        if members.is_empty() {
            drop(state);
            self.exec
                .trace("net.refused", u64::from(node), u64::from(port));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused",
            ));
        }
        let listener = members[state.rng.gen_range(0..members.len())];
        let id = state.next_id;
        state.next_id += 1;
        let conn = Rc::new(RefCell::new(Conn {
            id,
            pipes: [Pipe::default(), Pipe::default()],
            reset: false,
            ends: [from, Owner::Node(node)],
        }));
        if id % 64 == 0 {
            state.conns.retain(|_, weak| weak.strong_count() > 0);
        }
        state.conns.insert(id, Rc::downgrade(&conn));
        let client = SimStream {
            net: self.clone(),
            conn: conn.clone(),
            side: 0,
        };
        let server = SimStream {
            net: self.clone(),
            conn,
            side: 1,
        };
        let peer = format!(
            "192.168.{}.{}:{}",
            (id >> 8) & 255,
            id & 255,
            10_000 + (id % 50_000)
        );
        let backlog = state
            .backlogs
            .get_mut(&listener)
            .expect("group members have backlogs");
        backlog.queue.push_back((server, peer));
        if let Some(w) = backlog.waker.take() {
            w.wake();
        }
        drop(state);
        self.exec
            .trace("net.connect", id, (u64::from(node) << 16) | u64::from(port));
        Ok(client)
    }

    /// Process crash of `node`: its listeners vanish and every connection with an end on
    /// it is reset (the peers get `ConnectionReset`). Returns how many were reset.
    pub fn kill_node(&self, node: u32) -> usize {
        let listeners: Vec<u64> = {
            let mut state = self.state.borrow_mut();
            let ports: Vec<(u32, u16)> = state
                .groups
                .keys()
                .filter(|(n, _)| *n == node)
                .copied()
                .collect();
            ports
                .iter()
                .filter_map(|k| state.groups.remove(k))
                .flatten()
                .collect()
        };
        for id in listeners {
            self.close_backlog(id);
        }
        let conns: Vec<Rc<RefCell<Conn>>> = {
            let state = self.state.borrow();
            state.conns.values().filter_map(Weak::upgrade).collect()
        };
        let mut reset = 0;
        for conn in conns {
            let on_node = conn.borrow().ends.contains(&Owner::Node(node));
            if on_node && !conn.borrow().reset {
                reset_conn(&conn);
                reset += 1;
            }
        }
        self.exec
            .trace("net.kill_node", u64::from(node), reset as u64);
        reset
    }

    /// Partitions `node` from its clients (`true`) or heals it (`false`). While
    /// partitioned, bytes already sent or sent later stay in flight (writers still fill
    /// the buffers), reads on both sides wait, and new connections wait. Nothing errors:
    /// only timeouts notice a partition.
    pub fn set_partitioned(&self, node: u32, partitioned: bool) {
        let changed = {
            let mut state = self.state.borrow_mut();
            if partitioned {
                state.partitioned.insert(node)
            } else {
                state.partitioned.remove(&node)
            }
        };
        if changed && !partitioned {
            let conns: Vec<Rc<RefCell<Conn>>> = self
                .state
                .borrow()
                .conns
                .values()
                .filter_map(Weak::upgrade)
                .collect();
            for conn in conns {
                let mut c = conn.borrow_mut();
                if c.ends[1] == Owner::Node(node) {
                    for pipe in &mut c.pipes {
                        pipe.wake_all();
                    }
                }
            }
        }
        self.exec
            .trace("net.partition", u64::from(node), u64::from(partitioned));
    }

    /// Whether `node` is partitioned from its clients.
    pub fn is_partitioned(&self, node: u32) -> bool {
        self.state.borrow().partitioned.contains(&node)
    }

    /// Whether some end of connection `id` is still open (not yet dropped by its owner).
    /// After the client dropped its end, false means the server's task let go of it too.
    pub fn conn_alive(&self, id: u64) -> bool {
        self.state
            .borrow()
            .conns
            .get(&id)
            .is_some_and(|weak| weak.strong_count() > 0)
    }

    /// Resets connection `id` (both sides get `ConnectionReset`). Returns whether it existed.
    pub fn reset(&self, id: u64) -> bool {
        let conn = self.state.borrow().conns.get(&id).and_then(Weak::upgrade);
        match conn {
            Some(conn) => {
                reset_conn(&conn);
                self.exec.trace("net.reset", id, 0);
                true
            }
            None => false,
        }
    }

    fn draw_latency(&self) -> Duration {
        let mut state = self.state.borrow_mut();
        let max = state.faults.latency_max_us;
        Duration::from_micros(state.rng.gen_range(0..=max))
    }

    /// Removes listener `id`; connections still in its backlog are reset.
    fn close_backlog(&self, id: u64) {
        let backlog = {
            let mut state = self.state.borrow_mut();
            for members in state.groups.values_mut() {
                members.retain(|m| *m != id);
            }
            state.groups.retain(|_, members| !members.is_empty());
            state.backlogs.get_mut(&id).map(|b| {
                b.closed = true;
                (std::mem::take(&mut b.queue), b.waker.take())
            })
        };
        if let Some((queue, waker)) = backlog {
            for (stream, _) in &queue {
                reset_conn(&stream.conn);
            }
            drop(queue); // outside the borrow: SimStream's Drop touches the conn only
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    fn bind_node(&self, node: u32, addr: &str) -> io::Result<SimListener> {
        let port = parse_port(addr)?;
        let mut state = self.state.borrow_mut();
        let port = if port == 0 {
            state.next_port += 1;
            state.next_port
        } else {
            port
        };
        let id = state.next_id;
        state.next_id += 1;
        state.groups.entry((node, port)).or_default().push(id);
        state.backlogs.insert(
            id,
            Backlog {
                node,
                port,
                queue: VecDeque::new(),
                waker: None,
                closed: false,
            },
        );
        drop(state);
        self.exec
            .trace("net.bind", u64::from(node), (id << 16) | u64::from(port));
        Ok(SimListener {
            net: self.clone(),
            id,
            addr: SimNet::node_addr(node, port),
        })
    }
}

fn reset_conn(conn: &Rc<RefCell<Conn>>) {
    let mut c = conn.borrow_mut();
    c.reset = true;
    for pipe in &mut c.pipes {
        pipe.wake_all();
    }
}

fn parse_port(addr: &str) -> io::Result<u16> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {addr:?}"));
    let (_, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    port.parse().map_err(|_| bad())
}

/// `10.a.b.c:port` → (node, port).
fn parse_node_addr(addr: &str) -> io::Result<(u32, u16)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a node address {addr:?}"),
        )
    };
    let port = parse_port(addr)?;
    let (ip, _) = addr.rsplit_once(':').ok_or_else(bad)?;
    let octets: Vec<u32> = ip
        .split('.')
        .map(|o| o.parse::<u8>().map(u32::from))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    match octets.as_slice() {
        [10, a, b, c] => Ok(((a << 16) | (b << 8) | c, port)),
        _ => Err(bad()),
    }
}

/// The network as seen from one node: implements [`tidemark::io::Net`].
#[derive(Clone)]
pub struct NodeNet {
    net: SimNet,
    node: u32,
}

impl tidemark::io::Net for NodeNet {
    type Stream = SimStream;
    type Listener = SimListener;

    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<SimListener>> {
        let result = self.net.bind_node(self.node, addr);
        async move { result }
    }
}

/// A listening socket of one shard. Dropping it leaves the group.
pub struct SimListener {
    net: SimNet,
    id: u64,
    addr: String,
}

struct Accept<'a> {
    listener: &'a SimListener,
}

impl Future for Accept<'_> {
    type Output = io::Result<(SimStream, String)>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.listener.net.state.borrow_mut();
        let Some(backlog) = state.backlogs.get_mut(&self.listener.id) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        };
        if let Some(next) = backlog.queue.pop_front() {
            return Poll::Ready(Ok(next));
        }
        if backlog.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "listener closed: node killed",
            )));
        }
        backlog.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl tidemark::io::Listener for SimListener {
    type Stream = SimStream;

    fn accept(&self) -> impl Future<Output = io::Result<(SimStream, String)>> {
        let net = self.net.clone();
        let id = self.id;
        async move {
            let accepted = Accept { listener: self }.await;
            if let Ok((stream, _)) = &accepted {
                net.exec.trace("net.accept", id, stream.conn.borrow().id);
            }
            accepted
        }
    }

    fn local_addr(&self) -> String {
        self.addr.clone()
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        self.net.close_backlog(self.id);
        let removed = self.net.state.borrow_mut().backlogs.remove(&self.id);
        if let Some(b) = removed {
            self.net
                .exec
                .trace("net.unbind", u64::from(b.node), u64::from(b.port));
        }
    }
}

/// One end of a simulated connection: implements [`tidemark::io::Stream`].
pub struct SimStream {
    net: SimNet,
    conn: Rc<RefCell<Conn>>,
    /// 0 = client end, 1 = server end. Writes go to `pipes[side]`.
    side: usize,
}

impl SimStream {
    /// The connection id (for [`SimNet::reset`] and traces).
    pub fn conn_id(&self) -> u64 {
        self.conn.borrow().id
    }

    fn reset_error() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
    }
}

struct ReadFuture<'a> {
    stream: &'a SimStream,
    buf: Option<Vec<u8>>,
}

impl Future for ReadFuture<'_> {
    type Output = BufResult<usize>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let stream = self.stream;
        let mut buf = self.buf.take().expect("polled after completion");
        let mut conn = stream.conn.borrow_mut();
        if conn.reset {
            return Poll::Ready((Err(SimStream::reset_error()), buf));
        }
        let want = buf.capacity() - buf.len();
        let cut_off = match conn.ends[1] {
            Owner::Node(node) => stream.net.is_partitioned(node),
            _ => false,
        };
        let pipe = &mut conn.pipes[1 - stream.side];
        if want == 0 {
            return Poll::Ready((Ok(0), buf));
        }
        if pipe.bytes.is_empty() && pipe.write_closed && !cut_off {
            return Poll::Ready((Ok(0), buf));
        }
        if pipe.bytes.is_empty() || cut_off {
            pipe.reader = Some(cx.waker().clone());
            drop(conn);
            self.buf = Some(buf);
            return Poll::Pending;
        }
        let most = want.min(pipe.bytes.len());
        let n = {
            let mut state = stream.net.state.borrow_mut();
            let split = state.faults.split_read_rate;
            if most > 1 && split > 0.0 && state.rng.gen_bool(split) {
                state.rng.gen_range(1..=most)
            } else {
                most
            }
        };
        buf.extend(pipe.bytes.drain(..n));
        if let Some(w) = pipe.writer.take() {
            w.wake();
        }
        Poll::Ready((Ok(n), buf))
    }
}

struct WriteFuture<'a> {
    stream: &'a SimStream,
    buf: Option<Vec<u8>>,
    written: usize,
}

impl Future for WriteFuture<'_> {
    type Output = BufResult<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let stream = self.stream;
        let buf = self.buf.take().expect("polled after completion");
        let capacity = stream.net.state.borrow().faults.pipe_capacity_bytes;
        let mut conn = stream.conn.borrow_mut();
        if conn.reset {
            return Poll::Ready((Err(SimStream::reset_error()), buf));
        }
        let pipe = &mut conn.pipes[stream.side];
        if pipe.read_closed {
            return Poll::Ready((Err(io::ErrorKind::BrokenPipe.into()), buf));
        }
        if pipe.write_closed {
            return Poll::Ready((
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "write after shutdown",
                )),
                buf,
            ));
        }
        let room = capacity.saturating_sub(pipe.bytes.len());
        let n = room.min(buf.len() - self.written);
        pipe.bytes.extend(&buf[self.written..self.written + n]);
        if n > 0 {
            if let Some(w) = pipe.reader.take() {
                w.wake();
            }
        }
        let written = self.written + n;
        if written == buf.len() {
            return Poll::Ready((Ok(()), buf));
        }
        pipe.writer = Some(cx.waker().clone());
        drop(conn);
        self.written = written;
        self.buf = Some(buf);
        Poll::Pending
    }
}

impl tidemark::io::Stream for SimStream {
    fn read(&mut self, buf: Vec<u8>) -> impl Future<Output = BufResult<usize>> {
        let this: &SimStream = self;
        async move {
            let (result, buf) = ReadFuture {
                stream: this,
                buf: Some(buf),
            }
            .await;
            let n = result.as_ref().map_or(u64::MAX, |n| *n as u64);
            this.net
                .exec
                .trace("net.read", this.conn_id() * 2 + this.side as u64, n);
            (result, buf)
        }
    }

    fn write_all(&mut self, buf: Vec<u8>) -> impl Future<Output = BufResult<()>> {
        let this: &SimStream = self;
        async move {
            this.net.exec.sleep(this.net.draw_latency()).await;
            let reset = {
                let mut state = this.net.state.borrow_mut();
                let rate = state.faults.reset_rate;
                rate > 0.0 && state.rng.gen_bool(rate)
            };
            if reset {
                this.net.reset(this.conn_id());
            }
            let len = buf.len() as u64;
            let out = WriteFuture {
                stream: this,
                buf: Some(buf),
                written: 0,
            }
            .await;
            let code = if out.0.is_ok() { len } else { u64::MAX };
            this.net
                .exec
                .trace("net.write", this.conn_id() * 2 + this.side as u64, code);
            out
        }
    }

    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        let result = {
            let mut conn = self.conn.borrow_mut();
            if conn.reset {
                Err(SimStream::reset_error())
            } else {
                let pipe = &mut conn.pipes[self.side];
                pipe.write_closed = true;
                pipe.wake_all();
                Ok(())
            }
        };
        async move { result }
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        let mut conn = self.conn.borrow_mut();
        let side = self.side;
        conn.pipes[side].write_closed = true;
        conn.pipes[side].wake_all();
        conn.pipes[1 - side].read_closed = true;
        conn.pipes[1 - side].bytes.clear();
        conn.pipes[1 - side].wake_all();
    }
}
