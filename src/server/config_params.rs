//! CONFIG GET / SET / RESETSTAT / HELP, and the Redis 7 parameter names tidemark accepts.
//!
//! Two kinds of parameters: tidemark's own settings (fields of [`Config`], which change
//! behaviour), and every other Redis 7.0 parameter (names and defaults recorded from a
//! real redis-server 7.0.15 `CONFIG GET *` in `testdata/redis7_config.txt`): those are
//! accepted by CONFIG SET and the config file, stored as given in [`Config::extra`], and
//! reported back by CONFIG GET, but have no effect. Names that Redis does not know get
//! Redis's error `ERR Unknown option or number of arguments for CONFIG SET - 'foo'`.
//!
//! What can fail: unknown names, bad values (Redis's `ERR CONFIG SET failed (possibly
//! related to argument 'x') - reason`), wrong arity; CONFIG SET is all or nothing.

use bytes::Bytes;

use crate::keyspace::glob::glob_match;
use crate::resp::Frame;
use crate::server::config::Config;
use crate::server::Node;

/// `CONFIG GET *` of redis-server 7.0.15 with default settings: `name value` lines.
const REDIS7_DEFAULTS: &str = include_str!("testdata/redis7_config.txt");

/// Every Redis 7 parameter name with its default value, in name order.
pub fn redis_defaults() -> impl Iterator<Item = (&'static str, &'static str)> {
    REDIS7_DEFAULTS
        .lines()
        .map(|line| line.split_once(' ').unwrap_or((line, "")))
}

/// The Redis 7 default of parameter `name` (lowercase), if Redis 7 has that parameter.
pub fn redis_default(name: &str) -> Option<&'static str> {
    redis_defaults().find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// tidemark's own settings that CONFIG GET reports, with their current value.
fn own_params(config: &Config) -> Vec<(&'static str, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let save = config
        .save
        .iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        ("bind", config.bind.clone()),
        ("port", config.port.to_string()),
        ("dir", config.dir.display().to_string()),
        ("dbfilename", config.dbfilename.clone()),
        ("appendonly", yes_no(config.appendonly)),
        ("appenddirname", config.appenddirname.clone()),
        ("appendfsync", config.appendfsync.as_str().to_string()),
        (
            "aof-fsync-timeout-ms",
            config.aof_fsync_timeout_ms.to_string(),
        ),
        (
            "auto-aof-rewrite-percentage",
            config.auto_aof_rewrite_percentage.to_string(),
        ),
        (
            "auto-aof-rewrite-min-size",
            config.auto_aof_rewrite_min_size.to_string(),
        ),
        (
            "requirepass",
            config.requirepass.clone().unwrap_or_default(),
        ),
        ("maxclients", config.maxclients.to_string()),
        ("proto-max-bulk-len", config.proto_max_bulk_len.to_string()),
        ("hz", config.hz.to_string()),
        ("loglevel", config.loglevel.clone()),
        ("logfile", config.logfile.clone()),
        ("shards", config.shards.to_string()),
        (
            "cross-shard-timeout-ms",
            config.cross_shard_timeout_ms.to_string(),
        ),
        (
            "cross-shard-queue-len",
            config.cross_shard_queue_len.to_string(),
        ),
        ("save", save),
        ("databases", config.databases.to_string()),
        ("maxmemory", "0".to_string()),
        // Pub/Sub output limits (src/server/pubsub.rs).
        (
            "client-output-buffer-limit",
            config.client_output_buffer_limit.to_string(),
        ),
    ]
}

/// Every parameter CONFIG GET can report, with its current value: tidemark's own, then
/// the other Redis 7 parameters (stored value, else Redis's default).
pub fn all_params(config: &Config) -> Vec<(String, String)> {
    let own = own_params(config);
    let mut out: Vec<(String, String)> = own
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    for (name, default) in redis_defaults() {
        if own.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let value = config.extra.get(name).map_or(default, String::as_str);
        out.push((name.to_string(), value.to_string()));
    }
    out
}

/// Runs `CONFIG <sub> ...`.
pub fn command(node: &Node, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    let n = args.len();
    let arity_ok = match sub.as_slice() {
        b"get" => n >= 3,
        b"set" => n >= 4,
        b"resetstat" | b"rewrite" | b"help" => n == 2,
        _ => {
            return Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&args[1])
            ))
        }
    };
    if !arity_ok {
        return Frame::error(format!(
            "ERR wrong number of arguments for 'config|{}' command",
            String::from_utf8_lossy(&sub)
        ));
    }
    match sub.as_slice() {
        b"get" => get(&node.config(), &args[2..]),
        b"set" => set(node, &args[2..]),
        b"resetstat" => Frame::ok(),
        b"rewrite" => Frame::error("ERR The server is running without a config file"),
        _ => help(),
    }
}

/// CONFIG GET pattern...: a map (flat array on RESP2) of every matching parameter.
fn get(config: &Config, patterns: &[Bytes]) -> Frame {
    let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
    let pairs = all_params(config)
        .into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
        .map(|(name, value)| (Frame::bulk(name), Frame::bulk(value)))
        .collect();
    Frame::Map(pairs)
}

fn set_failed(name: &str, reason: &str) -> Frame {
    Frame::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

/// CONFIG SET name value [name value ...]: all or nothing.
fn set(node: &Node, pairs: &[Bytes]) -> Frame {
    if pairs.len() % 2 != 0 {
        return Frame::error("ERR wrong number of arguments for 'config|set' command");
    }
    let Ok(mut guard) = node.config.write() else {
        return Frame::error("ERR internal: configuration lock poisoned");
    };
    let mut updated = guard.clone();
    let mut seen: Vec<String> = Vec::new();
    for pair in pairs.chunks(2) {
        let given = String::from_utf8_lossy(&pair[0]).into_owned();
        let name = given.to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let own = own_params(&updated).iter().any(|(n, _)| *n == name);
        if !own && redis_default(&name).is_none() {
            return Frame::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{given}'"
            ));
        }
        if seen.contains(&name) {
            return set_failed(&name, "duplicate parameter");
        }
        seen.push(name.clone());
        let result = if own {
            set_own(&mut updated, &name, &value)
        } else {
            set_redis(&mut updated, &name, &value)
        };
        if let Err(reason) = result {
            return set_failed(&name, &reason);
        }
    }
    *guard = updated;
    Frame::ok()
}

/// Stores a Redis parameter tidemark does not act on, after the checks Redis makes on
/// yes/no switches and `maxmemory-policy`.
pub fn set_redis(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
    let default = redis_default(name).ok_or_else(|| "unknown parameter".to_string())?;
    if matches!(default, "yes" | "no")
        && !matches!(value.to_ascii_lowercase().as_str(), "yes" | "no")
    {
        return Err("argument must be 'yes' or 'no'".to_string());
    }
    const POLICIES: &[&str] = &[
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "noeviction",
    ];
    if name == "maxmemory-policy" && !POLICIES.contains(&value.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "argument(s) must be one of the following: {}",
            POLICIES.join(", ")
        ));
    }
    let stored = if matches!(default, "yes" | "no") || name == "maxmemory-policy" {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    };
    config.extra.insert(name.to_string(), stored);
    Ok(())
}

fn set_own(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
    let number = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| "argument couldn't be parsed into an integer".to_string())
    };
    match name {
        "hz" => config.hz = number(value)?.clamp(1, 500) as u32,
        "maxclients" => config.maxclients = number(value)?.min(u64::from(u32::MAX)) as u32,
        "requirepass" => config.requirepass = (!value.is_empty()).then(|| value.to_string()),
        "loglevel" => match value {
            "debug" | "verbose" | "notice" | "warning" | "nothing" => config.loglevel = value.to_string(),
            _ => return Err("argument(s) must be one of the following: debug, verbose, notice, warning, nothing".to_string()),
        },
        "proto-max-bulk-len" => config.proto_max_bulk_len = number(value)?.max(1024),
        "cross-shard-timeout-ms" => config.cross_shard_timeout_ms = number(value)?.max(1),
        "auto-aof-rewrite-percentage" => config.auto_aof_rewrite_percentage = number(value)?,
        "auto-aof-rewrite-min-size" => {
            config.auto_aof_rewrite_min_size = crate::server::cli::parse_memory(value)
                .ok_or_else(|| "argument must be a memory value".to_string())?
        }
        "save" => config.save = parse_save(value)?,
        "maxmemory" => {
            crate::server::cli::parse_memory(value)
                .ok_or_else(|| "argument must be a memory value".to_string())?;
        }
        "client-output-buffer-limit" => {
            let words: Vec<&str> = value.split_whitespace().collect();
            config.client_output_buffer_limit.apply(&words)?
        }
        _ => return Err("can't set immutable config".to_string()),
    }
    Ok(())
}

/// `save` text: `seconds changes` pairs separated by spaces, or empty.
fn parse_save(value: &str) -> Result<Vec<(u64, u64)>, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.len() % 2 != 0 {
        return Err("Invalid save parameters".to_string());
    }
    words
        .chunks(2)
        .map(|pair| match (pair[0].parse(), pair[1].parse()) {
            (Ok(seconds), Ok(changes)) => Ok((seconds, changes)),
            _ => Err("Invalid save parameters".to_string()),
        })
        .collect()
}

fn help() -> Frame {
    const LINES: &[&str] = &[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    ];
    Frame::Array(LINES.iter().map(|l| Frame::Simple(l.to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_defaults_cover_common_redis_parameters() {
        for name in [
            "maxmemory-policy",
            "lazyfree-lazy-eviction",
            "notify-keyspace-events",
            "tcp-keepalive",
            "client-output-buffer-limit",
        ] {
            assert!(redis_default(name).is_some(), "{name}");
        }
        assert_eq!(redis_default("maxmemory-policy"), Some("noeviction"));
        assert_eq!(redis_default("notify-keyspace-events"), Some(""));
        assert_eq!(redis_default("foo"), None);
        assert!(redis_defaults().count() > 150);
    }

    #[test]
    fn redis_parameters_are_stored_as_given_and_checked_like_redis() {
        let mut config = Config::default();
        set_redis(&mut config, "notify-keyspace-events", "KEA").expect("accepted");
        set_redis(&mut config, "lazyfree-lazy-eviction", "YES").expect("accepted");
        assert_eq!(
            set_redis(&mut config, "lazyfree-lazy-eviction", "maybe"),
            Err("argument must be 'yes' or 'no'".to_string())
        );
        assert!(set_redis(&mut config, "maxmemory-policy", "bogus").is_err());
        let all = all_params(&config);
        let value = |n: &str| all.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(value("notify-keyspace-events").as_deref(), Some("KEA"));
        assert_eq!(value("lazyfree-lazy-eviction").as_deref(), Some("yes"));
        assert_eq!(value("tcp-keepalive").as_deref(), Some("300"));
        assert_eq!(value("save").as_deref(), Some("3600 1 300 100 60 10000"));
        // Own settings are listed once, with their live value.
        assert_eq!(all.iter().filter(|(k, _)| k == "port").count(), 1);
        assert_eq!(value("port").as_deref(), Some("6379"));
    }

    #[test]
    fn save_parses_pairs_or_nothing() {
        assert_eq!(parse_save(""), Ok(vec![]));
        assert_eq!(parse_save("10 1 20 2"), Ok(vec![(10, 1), (20, 2)]));
        assert!(parse_save("10 1 abc").is_err());
        assert!(parse_save("10").is_err());
    }
}
