//! Shards: key → CRC16 hash slot → shard routing (`slot`, `route`), one shard's state and
//! local execution (`state`), and bounded cross-shard dispatch (`dispatch`).
//!
//! What can fail here: see each submodule; cross-shard waits are always bounded.

pub mod blocking; // blocked list clients (lists family)
pub mod dispatch;
pub mod route;
pub mod slot;
pub mod state;
pub mod watch; // WATCHed keys and atomic EXEC (MULTI/EXEC)
