//! Command line and config-file parsing, redis-server style: `tidemark [config-file]
//! [--name value ...]`. The optional first positional argument is a redis.conf-style file
//! (`name value...` lines, `#` comments, double- or single-quoted values); flags use
//! redis-server's setting names and override the file. Every setting is described once,
//! in [`SETTINGS`], which drives `--help`, the file parser and the flag parser alike.
//!
//! What can fail here: an unknown flag, a bad value (the error names the flag and the
//! accepted values), an unreadable config file, or a bad config line (the error says
//! `file:line`). Parsing never touches the data directory: reading the config file goes
//! through the caller's `read_config` function (main passes `std::fs::read_to_string`).

use core::net::IpAddr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

use super::config::{Config, FsyncPolicy};

/// Longest config file accepted, in bytes (a redis.conf is ~100 KiB).
pub const CONFIG_FILE_LEN_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Most shard threads `--shards` accepts.
pub const SHARDS_MAX: u64 = 256;
/// Longest `cross-shard-queue-len`, in requests per channel.
pub const CROSS_SHARD_QUEUE_LEN_MAX: u64 = 1 << 20;
/// Smallest `proto-max-bulk-len` Redis 7 accepts: 1 MiB.
pub const PROTO_MAX_BULK_LEN_MIN_BYTES: u64 = 1024 * 1024;
/// Most databases `--databases` accepts (Redis allows up to INT_MAX; each database costs
/// an empty keyspace per shard).
pub const DATABASES_MAX: u64 = 1 << 20;
/// `hz` is clamped into this range, as Redis does (CONFIG_MIN_HZ..=CONFIG_MAX_HZ).
pub const HZ_MIN: u64 = 1;
/// See [`HZ_MIN`].
pub const HZ_MAX: u64 = 500;

/// Why parsing stopped. `Display` gives the text for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// `--help` or `--version` was asked for: print the text to stdout, exit 0.
    Info(String),
    /// A bad flag or flag value: print to stderr, exit 2.
    Usage(String),
    /// The config file is unreadable or has a bad line (`file:line: ...`): exit 2.
    ConfigFile(String),
}

impl CliError {
    /// The process exit code for this outcome: 0 for `Info`, 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Info(_) => 0,
            CliError::Usage(_) | CliError::ConfigFile(_) => 2,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Info(text) | CliError::Usage(text) | CliError::ConfigFile(text) => {
                f.write_str(text.trim_end())
            }
        }
    }
}

impl std::error::Error for CliError {}

/// How a setting checks and stores its values (the words after its name).
type Apply = fn(&mut Config, &[String]) -> Result<(), String>;

/// One setting: its redis.conf / flag name, a placeholder and help for `--help`, whether
/// it takes several words (`save`), and how it is applied.
pub struct Setting {
    /// The name in redis.conf and as a flag (`--name`).
    pub name: &'static str,
    /// Placeholder shown in `--help`.
    pub value_name: &'static str,
    /// One-line description with the default.
    pub help: &'static str,
    /// Takes any number of words (else exactly one).
    pub multi: bool,
    apply: Apply,
}

/// Every setting tidemark understands, in `--help` order. docs/configuration.md mirrors it.
pub const SETTINGS: &[Setting] = &[
    s("port", "PORT", "TCP port to listen on; 0 picks a free one [default: 6379]", set_port),
    s("bind", "ADDR", "IP address to listen on ('*' = all IPv4) [default: 127.0.0.1]", set_bind),
    s("dir", "DIR", "Directory for AOF and RDB files, created if missing [default: .]", set_dir),
    s("dbfilename", "NAME", "RDB file name inside dir [default: dump.rdb]", set_dbfilename),
    s("appendonly", "yes|no", "Turn the append-only file (AOF) on [default: no]", set_appendonly),
    s(
        "appendfsync",
        "always|everysec|no",
        "When the AOF is fsynced [default: everysec]",
        set_appendfsync,
    ),
    s(
        "appenddirname",
        "NAME",
        "AOF directory inside dir [default: appendonlydir]",
        set_appenddirname,
    ),
    s(
        "aof-fsync-timeout-ms",
        "MS",
        "A write waiting longer than this for its fsync gets an error [default: 5000]",
        set_aof_fsync_timeout_ms,
    ),
    s(
        "auto-aof-rewrite-percentage",
        "PERCENT",
        "Rewrite the AOF when it grew by this much since the last rewrite; 0 = off [default: 100]",
        set_auto_aof_rewrite_percentage,
    ),
    s(
        "auto-aof-rewrite-min-size",
        "BYTES",
        "No automatic AOF rewrite below this size; units like 64mb accepted [default: 64mb]",
        set_auto_aof_rewrite_min_size,
    ),
    s("requirepass", "PASSWORD", "Clients must AUTH with this password [default: none]", set_requirepass),
    s("maxclients", "N", "Most simultaneous clients [default: 10000]", set_maxclients),
    s(
        "proto-max-bulk-len",
        "BYTES",
        "Longest bulk string; units like 512mb accepted, at least 1mb [default: 512mb]",
        set_proto_max_bulk_len,
    ),
    s(
        "proto-max-multibulk-len",
        "N",
        "Most elements in one request array [default: 1048576]",
        set_proto_max_multibulk_len,
    ),
    s("hz", "N", "Active expiry cycles per second, clamped to 1..500 [default: 10]", set_hz),
    s("loglevel", "LEVEL", "debug, verbose, notice or warning [default: notice]", set_loglevel),
    s("logfile", "PATH", "Log to this file; empty logs to stderr [default: \"\"]", set_logfile),
    Setting {
        name: "save",
        value_name: "SECONDS CHANGES",
        help: "RDB save points, e.g. \"3600 1 300 100\"; \"\" disables [default: 3600 1 300 100 60 10000]",
        multi: true,
        apply: set_save,
    },
    s("shards", "N", "Number of shard threads, 1..256 [default: 1]", set_shards),
    s("databases", "N", "Number of databases (SELECT 0..N-1), 1..1048576 [default: 16]", set_databases),
    s(
        "cross-shard-timeout-ms",
        "MS",
        "Longest wait for a command sent to another shard [default: 5000]",
        set_cross_shard_timeout_ms,
    ),
    Setting {
        name: "client-output-buffer-limit",
        value_name: "CLASS HARD SOFT SECONDS",
        help: "Disconnect clients whose output exceeds HARD, or SOFT for SECONDS; classes normal, replica, pubsub [default: pubsub 32mb 8mb 60]",
        multi: true,
        apply: set_client_output_buffer_limit,
    },
    s(
        "cross-shard-queue-len",
        "N",
        "Capacity of each inter-shard channel, in requests [default: 1024]",
        set_cross_shard_queue_len,
    ),
];

const fn s(
    name: &'static str,
    value_name: &'static str,
    help: &'static str,
    apply: Apply,
) -> Setting {
    Setting {
        name,
        value_name,
        help,
        multi: false,
        apply,
    }
}

/// Finds a setting by name (case-insensitive, like redis.conf).
pub fn find_setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The clap command: a positional config file plus one `--name value` flag per setting.
pub fn command() -> Command {
    let mut cmd = Command::new("tidemark")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A Redis-compatible, sharded key-value server")
        .override_usage("tidemark [CONFIG-FILE] [--name value ...]")
        .after_help(
            "The optional config file uses redis.conf syntax (`name value` lines, # comments, \
             quoted values). Flags override the file. See docs/configuration.md.",
        )
        .args_override_self(true)
        .arg(
            Arg::new("config-file")
                .value_name("CONFIG-FILE")
                .help("redis.conf-style file read before the flags")
                .index(1),
        );
    for setting in SETTINGS {
        let mut arg = Arg::new(setting.name)
            .long(setting.name)
            .value_name(setting.value_name)
            .help(setting.help)
            .action(ArgAction::Set);
        if setting.multi {
            // Like redis-server, repeated `--save` flags accumulate.
            arg = arg
                .num_args(1..)
                .value_names([setting.value_name])
                .action(ArgAction::Append);
        } else {
            // `--requirepass -x` and `--port -5` reach the setting's own check.
            arg = arg.allow_hyphen_values(true);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Parses `args` (as from `std::env::args()`, including the program name first) into a
/// [`Config`]: defaults, then the config file named by the first positional argument (read
/// with `read_config`), then the flags. Nothing on disk is touched except `read_config`.
///
/// Errors: [`CliError::Info`] for `--help`/`--version`; [`CliError::Usage`] naming the
/// flag and its accepted values; [`CliError::ConfigFile`] with `file:line`.
pub fn parse_args<I, F>(args: I, read_config: F) -> Result<Config, CliError>
where
    I: IntoIterator<Item = String>,
    F: FnOnce(&Path) -> io::Result<String>,
{
    let matches = command()
        .try_get_matches_from(args)
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                CliError::Info(e.to_string())
            }
            _ => CliError::Usage(e.to_string()),
        })?;
    let mut config = Config::default();
    if let Some(file) = matches.get_one::<String>("config-file") {
        let path = PathBuf::from(file);
        let text = read_config(&path)
            .map_err(|e| CliError::ConfigFile(format!("cannot read config file '{file}': {e}")))?;
        if text.len() > CONFIG_FILE_LEN_MAX_BYTES {
            return Err(CliError::ConfigFile(format!(
                "config file '{file}' is larger than {CONFIG_FILE_LEN_MAX_BYTES} bytes"
            )));
        }
        parse_config_text(file, &text, &mut config)?;
    }
    for setting in SETTINGS {
        let Some(values) = matches.get_many::<String>(setting.name) else {
            continue;
        };
        let values: Vec<String> = values.cloned().collect();
        (setting.apply)(&mut config, &values)
            .map_err(|msg| CliError::Usage(format!("error: --{}: {msg}", setting.name)))?;
    }
    Ok(config)
}

/// Applies redis.conf-style `text` (from `source`, used in messages) on top of `config`.
/// Errors name `source:line`, the line itself, and what is wrong with it.
/// A multi-word setting (`save`) repeated in one file accumulates, as in Redis 7: the
/// first line replaces the default, later lines add to it.
pub fn parse_config_text(source: &str, text: &str, config: &mut Config) -> Result<(), CliError> {
    let mut seen_multi: Vec<&'static str> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |msg: String| {
            CliError::ConfigFile(format!("{source}:{}: {msg}\n>>> '{line}'", index + 1))
        };
        let words = split_config_line(line).map_err(&fail)?;
        let Some((name, values)) = words.split_first() else {
            continue;
        };
        // Other Redis 7 parameters are stored as given (src/server/config_params.rs).
        if find_setting(name).is_none()
            && super::config_params::redis_default(&name.to_ascii_lowercase()).is_some()
        {
            let name = name.to_ascii_lowercase();
            super::config_params::set_redis(config, &name, &values.join(" "))
                .map_err(|msg| fail(format!("'{name}': {msg}")))?;
            continue;
        }
        let setting = find_setting(name).ok_or_else(|| {
            fail(format!(
                "unknown setting '{name}' (run `tidemark --help` for the list)"
            ))
        })?;
        let fail_value = |msg: String| fail(format!("'{}': {msg}", setting.name));
        if setting.multi && seen_multi.contains(&setting.name) {
            let mut more = config.clone();
            (setting.apply)(&mut more, values).map_err(fail_value)?;
            append_multi(setting.name, config, more);
        } else {
            (setting.apply)(config, values).map_err(fail_value)?;
            if setting.multi {
                seen_multi.push(setting.name);
            }
        }
    }
    Ok(())
}

/// Adds the values of multi-word setting `name`, parsed into `more`, to `config`.
fn append_multi(name: &str, config: &mut Config, more: Config) {
    if name == "client-output-buffer-limit" {
        // Each line sets its own classes on top of the earlier ones (already in `more`).
        config.client_output_buffer_limit = more.client_output_buffer_limit;
        return;
    }
    assert_eq!(name, "save", "save is the only other multi-word setting");
    if more.save.is_empty() {
        config.save.clear();
    } else {
        config.save.extend(more.save);
    }
}

/// Splits one config line into words like Redis's `sdssplitargs`: spaces separate words;
/// `"..."` supports `\n \r \t \b \a \\ \" \xHH` escapes; `'...'` supports `\'`. A closing
/// quote must be followed by a space or the end of the line. Iterative, no recursion.
pub fn split_config_line(line: &str) -> Result<Vec<String>, String> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word: Vec<u8> = Vec::new();
        let quote = match bytes[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        loop {
            let Some(&c) = bytes.get(i) else {
                if quote.is_some() {
                    return Err("unbalanced quotes".to_string());
                }
                break;
            };
            match quote {
                None if c.is_ascii_whitespace() => break,
                None => word.push(c),
                Some(q) if c == q => {
                    i += 1;
                    if bytes.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".to_string());
                    }
                    break;
                }
                Some(b'"') if c == b'\\' && i + 1 < bytes.len() => {
                    let (byte, used) = unescape_double(&bytes[i + 1..]);
                    word.push(byte);
                    i += used;
                }
                Some(_) if c == b'\\' && bytes.get(i + 1) == Some(&b'\'') => {
                    word.push(b'\'');
                    i += 1;
                }
                Some(_) => word.push(c),
            }
            i += 1;
        }
        words.push(String::from_utf8(word).map_err(|_| "value is not valid UTF-8".to_string())?);
    }
    Ok(words)
}

/// Decodes the escape after a `\` inside double quotes (`rest` starts after the
/// backslash): the byte, and how many bytes of `rest` it used.
fn unescape_double(rest: &[u8]) -> (u8, usize) {
    let hex = |b: u8| (b as char).to_digit(16);
    if rest[0] == b'x' && rest.len() >= 3 {
        if let (Some(hi), Some(lo)) = (hex(rest[1]), hex(rest[2])) {
            return ((hi * 16 + lo) as u8, 3);
        }
    }
    let byte = match rest[0] {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    };
    (byte, 1)
}

fn one(values: &[String]) -> Result<&str, String> {
    match values {
        [value] => Ok(value.as_str()),
        [] => Err("needs a value".to_string()),
        _ => Err(format!("takes exactly one value, got {}", values.len())),
    }
}

/// Parses a decimal integer in `min..=max`.
fn int_in(values: &[String], min: u64, max: u64) -> Result<u64, String> {
    let text = one(values)?;
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not an integer between {min} and {max}"
        )),
    }
}

/// Parses a Redis memory value: digits with an optional unit `b`, `k` (1000), `kb` (1024),
/// `m`, `mb`, `g`, `gb` (case-insensitive), as redis.conf documents.
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

fn yes_no(values: &[String]) -> Result<bool, String> {
    let text = one(values)?;
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("'{text}' is not valid; accepted values: yes, no")),
    }
}

fn file_name(values: &[String], what: &str) -> Result<String, String> {
    let text = one(values)?;
    if text.is_empty() || text.contains('/') || text == "." || text == ".." {
        return Err(format!(
            "'{text}' is not valid; {what} must be a plain file name, not a path"
        ));
    }
    Ok(text.to_string())
}

fn set_port(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.port = int_in(v, 0, u64::from(u16::MAX))? as u16;
    Ok(())
}

fn set_bind(c: &mut Config, v: &[String]) -> Result<(), String> {
    if v.len() > 1 {
        return Err(format!(
            "tidemark listens on one address, got {}: {}",
            v.len(),
            v.join(" ")
        ));
    }
    let text = one(v)?;
    // Redis: a leading '-' marks an optional address; '*' / '::*' mean every interface.
    let addr = match text.trim_start_matches('-') {
        "*" => "0.0.0.0",
        "::*" => "::",
        other => other,
    };
    addr.parse::<IpAddr>()
        .map_err(|_| format!("'{text}' is not an IPv4 or IPv6 address (or '*')"))?;
    c.bind = addr.to_string();
    Ok(())
}

fn set_dir(c: &mut Config, v: &[String]) -> Result<(), String> {
    let text = one(v)?;
    if text.is_empty() {
        return Err("the directory must not be empty".to_string());
    }
    c.dir = PathBuf::from(text);
    Ok(())
}

fn set_dbfilename(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.dbfilename = file_name(v, "dbfilename")?;
    Ok(())
}

fn set_appendonly(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.appendonly = yes_no(v)?;
    Ok(())
}

fn set_appendfsync(c: &mut Config, v: &[String]) -> Result<(), String> {
    let text = one(v)?;
    c.appendfsync = FsyncPolicy::parse(text)
        .ok_or_else(|| format!("'{text}' is not valid; accepted values: always, everysec, no"))?;
    Ok(())
}

fn set_appenddirname(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.appenddirname = file_name(v, "appenddirname")?;
    Ok(())
}

fn set_aof_fsync_timeout_ms(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.aof_fsync_timeout_ms = int_in(v, 1, i64::MAX as u64)?;
    Ok(())
}

fn set_auto_aof_rewrite_percentage(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.auto_aof_rewrite_percentage = int_in(v, 0, i64::MAX as u64)?;
    Ok(())
}

fn set_auto_aof_rewrite_min_size(c: &mut Config, v: &[String]) -> Result<(), String> {
    let text = one(v)?;
    c.auto_aof_rewrite_min_size = parse_memory(text).ok_or_else(|| {
        format!("'{text}' is not valid; accepted: a byte count, optionally with a unit (b, k, kb, m, mb, g, gb)")
    })?;
    Ok(())
}

fn set_requirepass(c: &mut Config, v: &[String]) -> Result<(), String> {
    let text = one(v)?;
    c.requirepass = (!text.is_empty()).then(|| text.to_string());
    Ok(())
}

fn set_maxclients(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.maxclients = int_in(v, 1, u64::from(u32::MAX))? as u32;
    Ok(())
}

fn set_proto_max_bulk_len(c: &mut Config, v: &[String]) -> Result<(), String> {
    let text = one(v)?;
    let max = i64::MAX as u64;
    match parse_memory(text) {
        Some(n) if (PROTO_MAX_BULK_LEN_MIN_BYTES..=max).contains(&n) => {
            c.proto_max_bulk_len = n;
            Ok(())
        }
        _ => Err(format!(
            "'{text}' is not valid; accepted: a byte count between 1mb ({PROTO_MAX_BULK_LEN_MIN_BYTES}) \
             and {max}, optionally with a unit (b, k, kb, m, mb, g, gb)"
        )),
    }
}

fn set_proto_max_multibulk_len(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.proto_max_multibulk_len = int_in(v, 1, i32::MAX as u64)?;
    Ok(())
}

fn set_hz(c: &mut Config, v: &[String]) -> Result<(), String> {
    let hz = int_in(v, 0, i32::MAX as u64)?;
    c.hz = hz.clamp(HZ_MIN, HZ_MAX) as u32;
    Ok(())
}

fn set_loglevel(c: &mut Config, v: &[String]) -> Result<(), String> {
    let text = one(v)?;
    let level = text.to_ascii_lowercase();
    if !["debug", "verbose", "notice", "warning"].contains(&level.as_str()) {
        return Err(format!(
            "'{text}' is not valid; accepted values: debug, verbose, notice, warning"
        ));
    }
    c.loglevel = level;
    Ok(())
}

fn set_logfile(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.logfile = one(v)?.to_string();
    Ok(())
}

fn set_save(c: &mut Config, v: &[String]) -> Result<(), String> {
    let joined = v.join(" ");
    let words: Vec<&str> = joined.split_whitespace().collect();
    if words.len() % 2 != 0 {
        return Err(format!(
            "'{joined}' is not valid; accepted: pairs of <seconds> <changes>, or \"\" to disable"
        ));
    }
    let mut points = Vec::with_capacity(words.len() / 2);
    for pair in words.chunks(2) {
        let (Ok(seconds), Ok(changes)) = (pair[0].parse::<u64>(), pair[1].parse::<u64>()) else {
            return Err(format!(
                "'{} {}' is not a save point; accepted: <seconds> <changes> as integers",
                pair[0], pair[1]
            ));
        };
        points.push((seconds, changes));
    }
    c.save = points;
    Ok(())
}

fn set_databases(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.databases = int_in(v, 1, DATABASES_MAX)? as usize;
    Ok(())
}

fn set_shards(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.shards = int_in(v, 1, SHARDS_MAX)? as u16;
    Ok(())
}

fn set_cross_shard_timeout_ms(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.cross_shard_timeout_ms = int_in(v, 1, i64::MAX as u64)?;
    Ok(())
}

fn set_cross_shard_queue_len(c: &mut Config, v: &[String]) -> Result<(), String> {
    c.cross_shard_queue_len = int_in(v, 1, CROSS_SHARD_QUEUE_LEN_MAX)? as usize;
    Ok(())
}

fn set_client_output_buffer_limit(c: &mut Config, v: &[String]) -> Result<(), String> {
    let joined = v.join(" ");
    let words: Vec<&str> = joined.split_whitespace().collect();
    c.client_output_buffer_limit.apply(&words)
}

#[cfg(test)]
mod tests;
