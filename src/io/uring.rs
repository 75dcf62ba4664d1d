//! Production implementation of the IO seam ([`crate::io`]) on compio's io_uring driver.
//!
//! One [`UringIo`] per shard thread; each shard thread runs its own
//! `compio::runtime::Runtime` (built with [`build_runtime`]) and every operation here must
//! be awaited inside that runtime. Files and sockets are compio's, so reads, writes,
//! fsyncs, renames, accepts and timers are io_uring submissions; the only blocking call is
//! `list_dir` (`read_dir` has no io_uring opcode), which runs on compio's blocking pool.
//!
//! The tidemark build enables compio's `io-uring` driver only (no `polling` fallback), so
//! [`build_runtime`] fails if the kernel refuses io_uring instead of silently degrading;
//! [`driver_kind`] / [`current_driver_kind`] report what the runtime really uses.
//!
//! What can fail here: every disk and network call returns the kernel's `io::Error`
//! unchanged (EIO from fsync, ENOSPC from write, EADDRINUSE from bind, ...). `bind` accepts
//! only numeric `ip:port` / `[ipv6]:port` addresses (no DNS at start-up). If the OS
//! randomness source fails, [`UringIo::new`] falls back to a time/pid-derived seed and logs
//! a warning (entropy here is for sampling, never for secrets).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use compio::buf::{IntoInner, IoBufMut};
use compio::driver::DriverType;
use compio::io::{AsyncRead, AsyncReadAt, AsyncWrite, AsyncWriteAt, AsyncWriteExt};
use compio::runtime::Runtime;

use super::{BufResult, Clock, Disk, Entropy, File, Io, Listener, Net, OpenMode, Spawn, Stream};

/// Listen backlog for bound sockets (Redis's default `tcp-backlog`).
const LISTEN_BACKLOG_CONNECTIONS: i32 = 511;

/// The process-wide origin of [`Clock::monotonic`]; fixed by the first [`UringIo::new`].
static MONOTONIC_ORIGIN: OnceLock<Instant> = OnceLock::new();

fn monotonic_origin() -> Instant {
    *MONOTONIC_ORIGIN.get_or_init(Instant::now)
}

/// Builds the compio runtime for one shard thread. tidemark enables only compio's
/// io_uring driver, so this fails (with the kernel's error, e.g. `ENOSYS` or `EPERM`
/// under a seccomp policy) when io_uring is unavailable, rather than falling back to epoll.
pub fn build_runtime() -> io::Result<Runtime> {
    Runtime::new()
}

/// The driver `runtime` really uses: `"io_uring"`, `"poll"` (epoll) or `"iocp"`.
pub fn driver_kind(runtime: &Runtime) -> &'static str {
    driver_type_name(runtime.driver_type())
}

/// The driver of the runtime this thread is currently inside, or `"none"` outside one.
pub fn current_driver_kind() -> &'static str {
    Runtime::try_with_current(|rt| driver_type_name(rt.driver_type())).unwrap_or("none")
}

fn driver_type_name(driver: DriverType) -> &'static str {
    match driver {
        DriverType::IoUring => "io_uring",
        DriverType::Poll => "poll",
        DriverType::IOCP => "iocp",
    }
}

/// Start-up check: builds a throw-away runtime, runs a real timer and a real file
/// operation through it, and returns the driver name (`"io_uring"` when all is well).
/// `Err` carries a human-readable reason (runtime refused, or an operation failed).
pub fn probe_io_uring() -> Result<&'static str, String> {
    let runtime = build_runtime().map_err(|e| format!("cannot create an io_uring runtime: {e}"))?;
    let kind = driver_kind(&runtime);
    runtime
        .block_on(async {
            compio::time::sleep(Duration::from_millis(1)).await;
            let file = compio::fs::File::open("/dev/null").await?;
            let compio::BufResult(read, _buf) = file.read_at(Vec::with_capacity(16), 0).await;
            read
        })
        .map_err(|e| format!("an io_uring operation failed: {e}"))?;
    Ok(kind)
}

/// Fills `bytes` from the kernel's random source (getrandom(2)).
fn os_random(bytes: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if got < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += got as usize;
    }
    Ok(())
}

/// splitmix64 step: expands one seed word into well-mixed state words.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ (Blackman & Vigna): fast, non-cryptographic, 2^256 - 1 period.
#[derive(Clone, Copy, Debug)]
struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    fn from_seed(seed: u64) -> Xoshiro256 {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        assert!(s != [0; 4], "splitmix64 never yields an all-zero state");
        Xoshiro256 { s }
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

/// The production [`Io`]: one value per shard thread (clones share the shard's PRNG).
/// Not `Send`: create it on the shard thread that uses it.
#[derive(Clone, Debug)]
pub struct UringIo {
    shard_id: u16,
    rng: Rc<Cell<Xoshiro256>>,
}

impl UringIo {
    /// The IO for shard `shard_id`, with its PRNG seeded from the OS (getrandom(2)).
    /// Also fixes the process-wide monotonic origin if this is the first call.
    pub fn new(shard_id: u16) -> UringIo {
        let mut bytes = [0u8; 8];
        let seed = match os_random(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(e) => {
                tracing::warn!(shard_id, error = %e, "getrandom failed; seeding from time and pid");
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                nanos ^ (u64::from(std::process::id()) << 32)
            }
        };
        UringIo::with_seed(shard_id, seed ^ u64::from(shard_id))
    }

    /// Like [`UringIo::new`] but with a fixed PRNG seed (reproducible tests).
    pub fn with_seed(shard_id: u16, seed: u64) -> UringIo {
        let _ = monotonic_origin();
        UringIo {
            shard_id,
            rng: Rc::new(Cell::new(Xoshiro256::from_seed(seed))),
        }
    }

    /// The shard this IO belongs to.
    pub fn shard_id(&self) -> u16 {
        self.shard_id
    }
}

impl Clock for UringIo {
    fn monotonic(&self) -> Duration {
        monotonic_origin().elapsed()
    }

    fn wall_clock_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + 'static {
        compio::time::sleep(duration)
    }
}

impl Entropy for UringIo {
    fn random_u64(&self) -> u64 {
        let mut rng = self.rng.get();
        let value = rng.next();
        self.rng.set(rng);
        value
    }
}

impl Spawn for UringIo {
    fn spawn_local(&self, task: impl Future<Output = ()> + 'static) {
        compio::runtime::spawn(task).detach();
    }
}

/// A file opened through [`UringIo`]; every operation is an io_uring submission.
#[derive(Debug)]
pub struct UringFile {
    inner: compio::fs::File,
}

impl File for UringFile {
    async fn read_at(&self, buf: Vec<u8>, pos: u64) -> BufResult<usize> {
        // `uninit()` exposes only the spare capacity, so the read appends after `len`.
        let compio::BufResult(res, buf) = self.inner.read_at(buf.uninit(), pos).await;
        (res, buf.into_inner())
    }

    async fn write_at(&self, buf: Vec<u8>, pos: u64) -> BufResult<usize> {
        let mut file = &self.inner;
        let compio::BufResult(res, buf) = file.write_at(buf, pos).await;
        (res, buf)
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data().await
    }

    async fn sync_all(&self) -> io::Result<()> {
        self.inner.sync_all().await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).await
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.inner.metadata().await?.len())
    }
}

/// `""` (the parent of a bare file name) means the working directory.
fn dir_or_cwd(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

impl Disk for UringIo {
    type File = UringFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<UringFile> {
        let mut options = compio::fs::OpenOptions::new();
        options.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                options.write(true);
            }
            OpenMode::CreateReadWrite => {
                options.write(true).create(true);
            }
            OpenMode::CreateTruncate => {
                options.write(true).create(true).truncate(true);
            }
        }
        let inner = options.open(path).await?;
        Ok(UringFile { inner })
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        compio::fs::rename(from, to).await
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        compio::fs::remove_file(path).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = compio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dir_or_cwd(path))
            .await?;
        dir.sync_all().await
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        compio::fs::create_dir_all(path).await
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path: PathBuf = dir_or_cwd(path).to_path_buf();
        let listing = compio::runtime::spawn_blocking(move || -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&path)? {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        })
        .await;
        listing.map_err(io::Error::from)?
    }
}

/// A read submitted to io_uring that outlives the `read` call that started it.
type PendingRead = Pin<Box<dyn Future<Output = BufResult<usize>>>>;

/// A TCP connection accepted by a [`UringListener`] (TCP_NODELAY is on).
pub struct UringStream {
    inner: compio::net::TcpStream,
    /// Cancel safety (the `Stream::read` contract): the read in flight when a `read`
    /// future was dropped (it lost a race with a pub/sub delivery or a blocking command).
    /// Dropping an io_uring read would cancel it, and bytes the kernel had already copied
    /// into its buffer would be lost; instead it stays here and the next `read` finishes
    /// it and returns its bytes.
    pending_read: Option<PendingRead>,
}

impl std::fmt::Debug for UringStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringStream")
            .field("inner", &self.inner)
            .field("pending_read", &self.pending_read.is_some())
            .finish()
    }
}

impl UringStream {
    fn new(inner: compio::net::TcpStream) -> UringStream {
        UringStream {
            inner,
            pending_read: None,
        }
    }
}

impl Stream for UringStream {
    async fn read(&mut self, buf: Vec<u8>) -> BufResult<usize> {
        // 1. Without a leftover read, submit one into the caller's buffer (a clone of the
        //    socket handle lets the read own everything it needs).
        let mut fresh = Some(buf);
        if self.pending_read.is_none() {
            let mut socket = self.inner.clone();
            let buf = fresh.take().expect("set above");
            self.pending_read = Some(Box::pin(async move {
                let compio::BufResult(res, buf) = socket.read(buf.uninit()).await;
                (res, buf.into_inner())
            }));
        }
        // 2. Wait for it; if this future is dropped here, the read stays pending.
        let pending = self.pending_read.as_mut().expect("set above");
        let (res, data) = pending.await;
        self.pending_read = None;
        // 3. A leftover read filled an earlier caller's buffer: move its new bytes over.
        match (fresh, res) {
            (None, res) => (res, data),
            (Some(mut buf), Ok(n)) => {
                buf.extend_from_slice(&data[data.len() - n..]);
                (Ok(n), buf)
            }
            (Some(buf), Err(error)) => (Err(error), buf),
        }
    }

    async fn write_all(&mut self, buf: Vec<u8>) -> BufResult<()> {
        let compio::BufResult(res, buf) = self.inner.write_all(buf).await;
        (res, buf)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        AsyncWrite::shutdown(&mut self.inner).await
    }
}

/// A listening TCP socket bound with SO_REUSEADDR + SO_REUSEPORT.
#[derive(Debug)]
pub struct UringListener {
    inner: compio::net::TcpListener,
    local_addr: String,
}

impl Listener for UringListener {
    type Stream = UringStream;

    async fn accept(&self) -> io::Result<(UringStream, String)> {
        let (stream, peer) = self.inner.accept().await?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        Ok((UringStream::new(stream), peer.to_string()))
    }

    fn local_addr(&self) -> String {
        self.local_addr.clone()
    }
}

/// Creates a listening socket on `addr` with SO_REUSEADDR and SO_REUSEPORT (and
/// IPV6_V6ONLY for IPv6, like Redis), so every shard thread can bind the same address.
fn reuseport_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG_CONNECTIONS)?;
    Ok(socket.into())
}

/// A port held for the life of the process so that every shard can bind it: a socket bound
/// (SO_REUSEADDR + SO_REUSEPORT) but not listening, so it takes no connections.
#[derive(Debug)]
pub struct PortReservation {
    _socket: socket2::Socket,
    /// The reserved port.
    pub port: u16,
}

/// Resolves `port 0` once for all shards: asks the kernel for a free port on `ip` and holds
/// it. Without this each shard's `bind("ip:0")` would get a different port. `ip` is a
/// numeric IPv4 or IPv6 address (no brackets).
pub fn reserve_free_port(ip: &str) -> io::Result<PortReservation> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ip: std::net::IpAddr = ip.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{ip}' is not an IP address"),
        )
    })?;
    let addr = SocketAddr::new(ip, 0);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    let port = socket
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
    Ok(PortReservation {
        _socket: socket,
        port,
    })
}

impl Net for UringIo {
    type Stream = UringStream;
    type Listener = UringListener;

    async fn bind(&self, addr: &str) -> io::Result<UringListener> {
        let parsed: SocketAddr = addr.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot bind '{addr}': expected a numeric ip:port or [ipv6]:port"),
            )
        })?;
        let std_listener = reuseport_listener(parsed)?;
        let local_addr = std_listener.local_addr()?.to_string();
        let inner = compio::net::TcpListener::from_std(std_listener)?;
        Ok(UringListener { inner, local_addr })
    }
}

impl Io for UringIo {
    fn driver_name(&self) -> &'static str {
        current_driver_kind()
    }
}

#[cfg(test)]
mod tests;
