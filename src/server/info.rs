//! INFO: gathers every shard's numbers and renders Redis's sections and field names
//! (redis.io/commands/info): server, clients, memory, persistence, stats, keyspace.
//!
//! What can fail here: a shard that does not answer within the cross-shard timeout is
//! left out of the sums (and `shards_unreachable` says so); nothing waits forever.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::io::Io;
use crate::resp::Frame;
use crate::server::Node;
use crate::shard::dispatch::{self, Job, Response, ShardStats};
use crate::shard::route::Router;

/// The Redis version tidemark reports (clients gate features on it).
pub const REDIS_VERSION: &str = "7.2.0";

/// Sections printed by `INFO` / `INFO default`.
const DEFAULT_SECTIONS: [&str; 6] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "keyspace",
];

/// Every shard's stats, in shard order; `None` for a shard that did not answer.
pub async fn gather<I: Io>(router: &Router<'_, I>) -> Vec<Option<ShardStats>> {
    let mut all = Vec::with_capacity(usize::from(router.shards));
    for target in 0..router.shards {
        if target == router.shard.id {
            all.push(Some(router.shard.stats()));
            continue;
        }
        let answer = dispatch::call(
            &router.shard.io,
            router.senders,
            target,
            Job::Stats,
            router.timeout,
        )
        .await;
        all.push(match answer {
            Ok(Response::Stats(stats)) => Some(*stats),
            _ => None,
        });
    }
    all
}

/// INFO [section ...].
pub async fn info<I: Io>(router: &Router<'_, I>, node: &Node, args: &[Bytes]) -> Frame {
    let mut sections: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if sections.is_empty()
        || sections
            .iter()
            .any(|s| s == "default" || s == "all" || s == "everything")
    {
        sections = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let stats = gather(router).await;
    let now_ms = router.shard.io.wall_clock_ms();
    let mut out = String::new();
    for section in DEFAULT_SECTIONS {
        if !sections.iter().any(|s| s == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        render(section, &mut out, node, &stats, now_ms);
    }
    Frame::bulk(out)
}

fn sum(stats: &[Option<ShardStats>], field: impl Fn(&ShardStats) -> u64) -> u64 {
    stats.iter().flatten().map(field).sum()
}

fn render(section: &str, out: &mut String, node: &Node, stats: &[Option<ShardStats>], now_ms: u64) {
    let config = node.config();
    let uptime_s = now_ms.saturating_sub(node.start_ms.load(Ordering::SeqCst)) / 1000;
    let _ = match section {
        "server" => write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\ntidemark_version:{}\r\nredis_mode:standalone\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:0\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime_s}\r\nuptime_in_days:{}\r\nhz:{}\r\nshards:{}\r\nshards_unreachable:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            node.bound_port(),
            uptime_s / 86_400,
            config.hz,
            node.shards(),
            stats.iter().filter(|s| s.is_none()).count(),
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
            node.connected_clients.load(Ordering::SeqCst),
            config.maxclients
        ),
        "memory" => {
            let used = sum(stats, |s| s.used_memory_bytes);
            write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{:.2}M\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n",
                used as f64 / (1024.0 * 1024.0)
            )
        }
        "persistence" => render_persistence(out, node, &config, stats, now_ms),
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n",
            node.total_connections.load(Ordering::SeqCst),
            sum(stats, |s| s.commands_processed),
            node.rejected_connections.load(Ordering::SeqCst),
            sum(stats, |s| s.expired_keys),
            node.pubsub.counts().0,
            node.pubsub.counts().1,
        ),
        "keyspace" => {
            // One line per non-empty database (databases: shard::dispatch::keyspace_lines).
            let per_shard: Vec<&[(usize, crate::shard::dispatch::DbStats)]> =
                stats.iter().flatten().map(|s| s.databases.as_slice()).collect();
            let lines = crate::shard::dispatch::keyspace_lines(&per_shard);
            write!(out, "# Keyspace\r\n{lines}")
        }
        _ => Ok(()),
    };
}

fn render_persistence(
    out: &mut String,
    node: &Node,
    config: &crate::server::config::Config,
    stats: &[Option<ShardStats>],
    now_ms: u64,
) -> std::fmt::Result {
    let snapshot = &node.snapshot;
    let all_ok = stats.iter().flatten().all(|s| s.aof_last_write_ok);
    let error = stats
        .iter()
        .flatten()
        .find_map(|s| s.aof_last_error.clone())
        .unwrap_or_default();
    write!(
        out,
        "# Persistence\r\nloading:0\r\naof_enabled:{}\r\n{}aof_last_write_status:{}\r\naof_last_write_error:{}\r\naof_buffer_length:{}\r\naof_fsyncs:{}\r\naof_loaded_records:{}\r\naof_truncated_bytes:{}\r\nappendfsync:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n",
        u8::from(config.appendonly),
        // Rewrite fields, aof_base_size and aof_current_size (persistence.rs).
        node.persistence.info_fields(
            sum(stats, |s| s.aof_current_size_bytes),
            now_ms,
        ),
        if all_ok { "ok" } else { "err" },
        error,
        sum(stats, |s| s.aof_buffer_len_bytes),
        sum(stats, |s| s.aof_fsyncs),
        sum(stats, |s| s.aof_loaded_records),
        sum(stats, |s| s.aof_truncated_bytes),
        config.appendfsync.as_str(),
        sum(stats, |s| s.dirty).saturating_sub(snapshot.dirty_at_last_save.load(Ordering::SeqCst)),
        u8::from(snapshot.in_progress.load(Ordering::SeqCst)),
        snapshot.last_save_s.load(Ordering::SeqCst),
        if snapshot.saves.load(Ordering::SeqCst) == 0 || snapshot.last_ok.load(Ordering::SeqCst) { "ok" } else { "err" },
    )
}
