//! THE IO SEAM. Every byte of IO the server does — disk, network, clock, task spawning,
//! randomness — goes through the traits in this module. Production wires them to compio's
//! io_uring driver (`uring.rs`); the simulator (`sim/`) wires them to a seeded,
//! single-threaded world that can tear writes, drop unsynced data, fail fsync and split
//! network reads. Unit tests inside `src/` may use the fault-free in-memory disk (`mem.rs`).
//!
//! Style: completion-based with owned buffers (`io_uring` semantics), so one trait fits
//! both worlds: an operation takes a `Vec<u8>` and hands it back with its result,
//! `(io::Result<T>, Vec<u8>)`.
//!
//! Nothing outside `src/io` and `src/main.rs` may touch the OS; `clippy.toml` enforces it.
//!
//! What can fail here: every disk and network operation returns `io::Result`; callers must
//! treat an error from `write_at` or `sync_data` as "the data may or may not be on disk"
//! and never retry an fsync as if earlier data were safe.

pub mod mem;
pub mod uring;

use std::future::Future;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The result of an owned-buffer operation: the outcome and the buffer, handed back.
pub type BufResult<T> = (io::Result<T>, Vec<u8>);

/// Time: a monotonic clock for deadlines, a wall clock for TTLs, and a timer.
pub trait Clock {
    /// Monotonic time since an arbitrary origin fixed for the life of the process.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time in milliseconds since the Unix epoch (used for absolute TTLs).
    fn wall_clock_ms(&self) -> u64;
    /// Completes once `duration` of monotonic time has passed.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + 'static;
}

/// Randomness. Production seeds from the OS; the simulator from the run's seed.
pub trait Entropy {
    /// A uniformly random `u64`.
    fn random_u64(&self) -> u64;
}

/// Spawning a task on the current shard's executor. Tasks may be `!Send`.
pub trait Spawn {
    /// Runs `task` to completion in the background on this shard's executor.
    fn spawn_local(&self, task: impl Future<Output = ()> + 'static);
}

/// How [`Disk::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; create the file (length 0) if it is missing, keep it otherwise.
    CreateReadWrite,
    /// Read and write; create the file or truncate it to length 0.
    CreateTruncate,
}

/// One open file. Offsets and lengths are in bytes.
///
/// Contract (the simulator models exactly this, see docs/simulation.md):
/// - `write_at` returns how many bytes it wrote; fewer than asked is a short write and the
///   caller must treat the rest as unwritten. Written data is "pending": readable, but lost
///   by a machine crash until `sync_data`/`sync_all` succeeds.
/// - `sync_data` makes every earlier write to this file durable, or fails; after a failure
///   the pending data must be considered lost (Linux drops dirty pages on fsync EIO).
/// - A newly created file's *name* is durable only after `Disk::sync_dir` on its parent.
#[allow(clippy::len_without_is_empty)]
pub trait File: 'static {
    /// Reads up to `buf.capacity() - buf.len()` bytes at `pos`, appending them to `buf`.
    /// Returns the number of bytes read; 0 means end of file.
    fn read_at(&self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<usize>>;
    /// Writes `buf` (all of `buf[..len]`) at `pos`; returns bytes written (may be short).
    fn write_at(&self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<usize>>;
    /// Makes written data durable (fdatasync).
    fn sync_data(&self) -> impl Future<Output = io::Result<()>>;
    /// Makes written data and metadata durable (fsync).
    fn sync_all(&self) -> impl Future<Output = io::Result<()>>;
    /// Truncates or extends the file to `len` bytes. Pending until synced.
    fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>>;
    /// The current length in bytes (including pending writes).
    fn len(&self) -> impl Future<Output = io::Result<u64>>;
}

/// A file system. Paths are relative to the process's working directory (production) or
/// to the node's root (simulator).
pub trait Disk {
    /// The file type this disk opens.
    type File: File;
    /// Opens `path` as `mode` says.
    fn open(&self, path: &Path, mode: OpenMode) -> impl Future<Output = io::Result<Self::File>>;
    /// Renames `from` to `to`, replacing `to`. Durable only after `sync_dir` of the parent.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>>;
    /// Removes a file. Durable only after `sync_dir` of the parent.
    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>>;
    /// Creates a directory and its parents if missing.
    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>>;
    /// The names (not paths) of the entries of a directory, sorted ascending.
    fn list_dir(&self, path: &Path) -> impl Future<Output = io::Result<Vec<String>>>;
}

/// A connected byte stream (TCP in production, an in-memory pipe in the simulator).
pub trait Stream: 'static {
    /// Reads up to `buf.capacity() - buf.len()` bytes, appending them to `buf`. Returns the
    /// number of bytes read; 0 means the peer closed its side. Reads may be split at any
    /// byte boundary.
    ///
    /// Cancel safety: if the future is dropped before it completes, no received byte is
    /// lost: bytes the read had already taken come back from the next `read` (into that
    /// call's buffer). The dropped call's `buf` itself is gone, so a caller that races a
    /// read against something else passes a fresh buffer, not one holding data it needs.
    fn read(&mut self, buf: Vec<u8>) -> impl Future<Output = BufResult<usize>>;
    /// Writes all of `buf`, or fails.
    fn write_all(&mut self, buf: Vec<u8>) -> impl Future<Output = BufResult<()>>;
    /// Closes the write side.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// A listening socket.
pub trait Listener: 'static {
    /// The stream type it accepts.
    type Stream: Stream;
    /// Waits for the next connection; returns it with the peer address as `ip:port`.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, String)>>;
    /// The bound address as `ip:port`.
    fn local_addr(&self) -> String;
}

/// The network.
pub trait Net {
    /// Connected stream type.
    type Stream: Stream;
    /// Listener type.
    type Listener: Listener<Stream = Self::Stream>;
    /// Binds `addr` (`ip:port`). Every shard binds the same address: production uses
    /// `SO_REUSEPORT` so the kernel spreads connections; the simulator spreads them itself.
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>>;
}

/// Everything one shard needs from the outside world. One value per shard; cheap to clone.
pub trait Io: Clock + Entropy + Spawn + Disk + Net + Clone + 'static {
    /// A name for logs, e.g. `io_uring` or `sim`.
    fn driver_name(&self) -> &'static str;
}

/// Races `fut` against a timer: `None` if `timeout` passes first. Executor-agnostic.
pub async fn with_timeout<C: Clock, T>(
    clock: &C,
    timeout: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let timer = clock.sleep(timeout);
    futures_lite::future::or(async { Some(fut.await) }, async {
        timer.await;
        None
    })
    .await
}

/// Writes all of `buf` at `pos`, continuing after short writes (`File::write_at` may write
/// fewer bytes than asked). A write of 0 bytes is an error (`WriteZero`). Returns the
/// buffer. On error, some prefix of `buf` may have been written.
pub async fn write_all_at<F: File>(file: &F, buf: Vec<u8>, pos: u64) -> BufResult<()> {
    let total = buf.len();
    let (result, buf) = file.write_at(buf, pos).await;
    let mut done = match result {
        Ok(n) => n,
        Err(error) => return (Err(error), buf),
    };
    while done < total {
        let rest = buf[done..].to_vec();
        match file.write_at(rest, pos + done as u64).await.0 {
            Ok(0) => {
                let error = io::Error::new(io::ErrorKind::WriteZero, "write_at wrote 0 bytes");
                return (Err(error), buf);
            }
            Ok(n) => done += n,
            Err(error) => return (Err(error), buf),
        }
    }
    (Ok(()), buf)
}
