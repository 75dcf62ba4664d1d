//! tidemark: a Redis-compatible, sharded key-value server whose durability is proven in a
//! deterministic simulator. See docs/architecture.md for the map of this crate.
//!
//! Only `io` (and `main.rs`) touch the operating system; everything else is generic over
//! the [`io::Io`] seam so the same code runs over io_uring and inside the simulator.

pub mod cmd;
pub mod io;
pub mod keyspace;
pub mod persist;
pub mod resp;
pub mod server;
pub mod shard;
