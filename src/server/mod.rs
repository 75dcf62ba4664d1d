//! The server: configuration, the connection state machine, and server-level commands.

pub mod cli;
pub mod config;

use std::sync::Arc;

use crate::io::Io;
use config::Config;

/// State shared by every shard of one server process: the configuration and the
/// cross-shard channels. `Send + Sync`; one per process (or per simulated node boot).
pub struct Node {
    /// The configuration the node was started with.
    pub config: Config,
}

impl Node {
    /// Builds the shared state for `config.shards` shards (channels are created here).
    pub fn new(config: Config) -> Arc<Node> {
        Arc::new(Node { config })
    }
}

/// Why a shard could not start (recovery refused, bind failed, …). The text is for humans.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs shard `shard_id` of `node` on `io` until its listener fails: recovers the shard's
/// AOF, waits for every shard to finish recovery, then binds and serves clients and
/// cross-shard requests. In production one call per shard thread; in the simulator one
/// task per shard. Returns `Err` if start-up is refused (corrupt AOF, bind failure).
pub async fn run_shard<I: Io>(io: I, node: Arc<Node>, shard_id: u16) -> Result<(), StartError> {
    let _ = (io, node, shard_id);
    Err(StartError("not built yet".to_string()))
}
