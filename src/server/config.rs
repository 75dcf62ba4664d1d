//! Server configuration: the settings that exist, their defaults, and their Redis names.
//! Parsing from the command line and from a redis.conf-style file lives in `cli.rs`;
//! `CONFIG GET/SET` reads and writes these through [`Config::get`] / [`Config::set`].
//!
//! What can fail here: a bad value for a known setting is a `ConfigError` naming the
//! setting and the accepted values; nothing is touched on disk while parsing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// When the AOF is fsynced (Redis `appendfsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Reply only after the covering fsync (group commit).
    Always,
    /// fsync at least once a second on a deadline no traffic can starve.
    Everysec,
    /// Never fsync explicitly; the OS decides.
    No,
}

impl FsyncPolicy {
    /// The Redis spelling: `always`, `everysec` or `no`.
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Everysec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    /// Parses the Redis spelling (case-insensitive).
    pub fn parse(text: &str) -> Option<FsyncPolicy> {
        match text.to_ascii_lowercase().as_str() {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::Everysec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }
}

/// Test-only defects that re-introduce known durability bugs so tests can prove the
/// simulator catches them (docs/simulation.md). All off by default; there is no flag or
/// config key that turns them on: only code (the simulator's tests) can.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Reply to writes under `appendfsync always` before the covering fsync (predecessor bug 2).
    pub ack_before_fsync: bool,
    /// Skip AOF replay of this shard at start-up (predecessor bug 1).
    pub skip_replay_of_shard: Option<u16>,
    /// After recovery, hand out the last recovered record's LSN again instead of the
    /// next one: the first write after a restart reuses an LSN (predecessor bug 3).
    pub lsn_reuse_after_recovery: bool,
    /// `wait_ack` waits for its write/fsync without the `aof-fsync-timeout-ms` bound: a
    /// stalled disk hangs the client forever (predecessor bug 4).
    pub unbounded_fsync_wait: bool,
    /// Under `everysec`, the fsync deadline restarts at every write, so sustained
    /// traffic postpones the fsync indefinitely (predecessor bug 9).
    pub everysec_starved_by_traffic: bool,
    /// After a failed write the AOF does not latch: the writer treats the chunk as
    /// written and appends later frames after the torn one (predecessor bug 10).
    pub append_after_torn_write: bool,
    /// Predecessor bug 5: a cross-shard push whose target queue is full is retried every
    /// millisecond forever instead of failing after `cross_shard_timeout_ms`
    /// (`shard::dispatch::call_with_defects`).
    pub unbounded_cross_shard_retry: bool,
    /// Predecessor bug 6: BGREWRITEAOF removes the old generation's files *before* the
    /// manifest commit that names the new one.
    pub prune_before_manifest_commit: bool,
    /// Predecessor bug 7: a shard switches appends to the new incr, then takes the
    /// rewrite snapshot one `.await` later, so writes in between land in both.
    pub snapshot_after_await: bool,
    /// Predecessor bug 8: while a rewrite runs, an append that finds the AOF buffer full
    /// is dropped (drop-on-full) instead of waiting for room (backpressure).
    pub drop_appends_during_rewrite: bool,
    /// Predecessor bug 15: snapshot-then-truncate. BGREWRITEAOF first commits the new base
    /// with the old incrs still listed, and only in a second commit drops them; a crash
    /// between the two replays both.
    pub base_committed_before_log_truncation: bool,
}

/// Every setting of a running server. Field names follow redis.conf where one exists.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `bind`: the address to listen on.
    pub bind: String,
    /// `port`: TCP port; 0 picks a free port (the chosen one is logged).
    pub port: u16,
    /// `dir`: working directory for AOF and RDB files.
    pub dir: PathBuf,
    /// `dbfilename`: RDB file name inside `dir`.
    pub dbfilename: String,
    /// `appendonly`: whether the AOF is on.
    pub appendonly: bool,
    /// `appenddirname`: AOF directory inside `dir`.
    pub appenddirname: String,
    /// `appendfsync`.
    pub appendfsync: FsyncPolicy,
    /// `aof-fsync-timeout-ms`: a write waiting longer than this for its fsync gets an error.
    pub aof_fsync_timeout_ms: u64,
    /// `requirepass`: if set, clients must AUTH first.
    pub requirepass: Option<String>,
    /// `shards`: number of shard threads (tidemark-specific).
    pub shards: u16,
    /// `databases`: number of databases (SELECT 0..databases-1), Redis default 16.
    pub databases: usize,
    /// `maxclients`.
    pub maxclients: u32,
    /// `proto-max-bulk-len`: longest bulk string accepted, in bytes.
    pub proto_max_bulk_len: u64,
    /// `proto-max-multibulk-len` (tidemark name for Redis's fixed 1M limit): longest array.
    pub proto_max_multibulk_len: u64,
    /// `hz`: active expiry cycles per second.
    pub hz: u32,
    /// `cross-shard-timeout-ms`: bounded wait for a command sent to another shard.
    pub cross_shard_timeout_ms: u64,
    /// `cross-shard-queue-len`: capacity of each inter-shard channel, in requests.
    pub cross_shard_queue_len: usize,
    /// `loglevel`: `debug`, `verbose`, `notice` or `warning`.
    pub loglevel: String,
    /// `logfile`: empty for stderr.
    pub logfile: String,
    /// `save`: RDB snapshot points as `(seconds, changes)` pairs; empty disables them.
    /// Stored for the RDB snapshotter; Redis's default is `3600 1 300 100 60 10000`.
    pub save: Vec<(u64, u64)>,
    /// `auto-aof-rewrite-percentage`: rewrite when the AOF grew by this many percent over
    /// its size after the last rewrite; 0 disables the automatic rewrite.
    pub auto_aof_rewrite_percentage: u64,
    /// `auto-aof-rewrite-min-size`: no automatic rewrite below this AOF size, in bytes.
    pub auto_aof_rewrite_min_size: u64,
    /// `client-output-buffer-limit`: per-class output buffer limits (Pub/Sub enforces the
    /// `pubsub` class, src/server/pubsub.rs; the others are stored and reported).
    pub client_output_buffer_limit: ClientOutputBufferLimits,
    /// Other Redis 7 parameters set by CONFIG SET or the config file, stored as given
    /// and reported by CONFIG GET; they have no effect (src/server/config_params.rs).
    pub extra: BTreeMap<String, String>,
    /// Test-only defects; see [`Defects`].
    pub defects: Defects,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: "127.0.0.1".to_string(),
            port: 6379,
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".to_string(),
            appendonly: false,
            appenddirname: "appendonlydir".to_string(),
            appendfsync: FsyncPolicy::Everysec,
            aof_fsync_timeout_ms: 5_000,
            requirepass: None,
            shards: 1,
            databases: 16,
            maxclients: 10_000,
            proto_max_bulk_len: 512 * 1024 * 1024,
            proto_max_multibulk_len: 1024 * 1024,
            hz: 10,
            cross_shard_timeout_ms: 5_000,
            cross_shard_queue_len: 1024,
            loglevel: "notice".to_string(),
            logfile: String::new(),
            save: vec![(3600, 1), (300, 100), (60, 10_000)],
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            client_output_buffer_limit: ClientOutputBufferLimits::default(),
            extra: BTreeMap::new(),
            defects: Defects::default(),
        }
    }
}

impl Config {
    /// `aof_fsync_timeout_ms` as a `Duration`.
    pub fn aof_fsync_timeout(&self) -> Duration {
        Duration::from_millis(self.aof_fsync_timeout_ms)
    }

    /// `cross_shard_timeout_ms` as a `Duration`.
    pub fn cross_shard_timeout(&self) -> Duration {
        Duration::from_millis(self.cross_shard_timeout_ms)
    }

    /// The AOF directory: `dir/appenddirname`.
    pub fn aof_dir(&self) -> PathBuf {
        self.dir.join(&self.appenddirname)
    }

    /// The listen address as `ip:port`.
    pub fn listen_addr(&self) -> String {
        if self.bind.contains(':') {
            format!("[{}]:{}", self.bind, self.port)
        } else {
            format!("{}:{}", self.bind, self.port)
        }
    }
}

/// One class's output buffer limit (Redis `client-output-buffer-limit <class> <hard>
/// <soft> <soft seconds>`): a client whose pending output exceeds `hard_bytes`, or stays
/// above `soft_bytes` for more than `soft_seconds`, is disconnected. 0 disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputBufferLimit {
    /// Hard limit, bytes (0 = none).
    pub hard_bytes: u64,
    /// Soft limit, bytes (0 = none).
    pub soft_bytes: u64,
    /// How long the soft limit may be exceeded, seconds.
    pub soft_seconds: u64,
}

/// `client-output-buffer-limit` for the three Redis client classes. Defaults are Redis 7's:
/// `normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOutputBufferLimits {
    /// Ordinary clients (stored only).
    pub normal: OutputBufferLimit,
    /// Replicas (stored only; tidemark has no replication).
    pub replica: OutputBufferLimit,
    /// Clients subscribed to Pub/Sub channels or patterns (enforced).
    pub pubsub: OutputBufferLimit,
}

impl Default for ClientOutputBufferLimits {
    fn default() -> ClientOutputBufferLimits {
        let limit = |hard_bytes, soft_bytes, soft_seconds| OutputBufferLimit {
            hard_bytes,
            soft_bytes,
            soft_seconds,
        };
        ClientOutputBufferLimits {
            normal: limit(0, 0, 0),
            replica: limit(256 * 1024 * 1024, 64 * 1024 * 1024, 60),
            pubsub: limit(32 * 1024 * 1024, 8 * 1024 * 1024, 60),
        }
    }
}

impl std::fmt::Display for ClientOutputBufferLimits {
    /// Redis's CONFIG GET form: `normal 0 0 0 slave … pubsub …` (bytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes = [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ];
        for (i, (name, l)) in classes.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(
                f,
                "{sep}{name} {} {} {}",
                l.hard_bytes, l.soft_bytes, l.soft_seconds
            )?;
        }
        Ok(())
    }
}

impl ClientOutputBufferLimits {
    /// Applies `<class> <hard> <soft> <soft seconds>` groups (words already split, as in
    /// redis.conf or one CONFIG SET value) on top of `self`; all or nothing. Classes:
    /// `normal`, `replica`/`slave`, `pubsub`; sizes accept memory units (`32mb`). Errors
    /// are Redis 7's texts.
    pub fn apply(&mut self, words: &[&str]) -> Result<(), String> {
        if words.is_empty() || words.len() % 4 != 0 {
            return Err("Wrong number of arguments in buffer limit configuration.".to_string());
        }
        let mut updated = *self;
        for group in words.chunks(4) {
            let slot = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut updated.normal,
                "replica" | "slave" => &mut updated.replica,
                "pubsub" => &mut updated.pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".to_string(),
                    )
                }
            };
            let memory = crate::server::cli::parse_memory;
            match (memory(group[1]), memory(group[2]), group[3].parse::<u64>()) {
                (Some(hard_bytes), Some(soft_bytes), Ok(soft_seconds)) => {
                    *slot = OutputBufferLimit {
                        hard_bytes,
                        soft_bytes,
                        soft_seconds,
                    }
                }
                _ => return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .to_string(),
                ),
            }
        }
        *self = updated;
        Ok(())
    }
}
