//! Server-level (connection-route) commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO,
//! CLIENT, CONFIG, INFO, COMMAND. Replies follow Redis 7 (redis.io/commands).
//!
//! What can fail here: bad arguments (Redis error replies); cross-shard INFO gathering
//! (a shard that does not answer in time is reported as missing, not waited for forever).

use bytes::Bytes;

use crate::cmd::{self, CommandSpec};
use crate::io::Io;
use crate::resp::Frame;
use crate::server::config::Config;
use crate::server::conn::Client;
use crate::server::{info, Node};
use crate::shard::route::Router;

/// What a server-level command produced.
pub enum AdminOutcome {
    /// Send this reply and go on.
    Reply(Frame),
    /// Send this reply, then close the connection.
    Close(Frame),
}

/// Runs one connection-route command.
pub async fn handle<I: Io>(
    router: &Router<'_, I>,
    node: &std::sync::Arc<Node>,
    client: &mut Client,
    spec: &CommandSpec,
    args: &[Bytes],
) -> AdminOutcome {
    let reply = match spec.name {
        "ping" => match args.len() {
            1 => Frame::Simple("PONG".to_string()),
            2 => Frame::Bulk(args[1].clone()),
            _ => Frame::error("ERR wrong number of arguments for 'ping' command"),
        },
        "echo" => Frame::Bulk(args[1].clone()),
        "quit" => return AdminOutcome::Close(Frame::ok()),
        "select" => select(router, client, &args[1]),
        "auth" => auth(node, client, args),
        "hello" => hello(node, client, args),
        "client" => client_command(client, args),
        "config" => config_command(node, args),
        "info" => info::info(router, node, args).await,
        "command" => cmd::command_command(args),
        "save" | "bgsave" | "lastsave" => {
            crate::server::snapshot::command(router, node, spec.name).await
        }
        // AOF rewrite (src/server/persistence.rs).
        "bgrewriteaof" => match node.arc() {
            Some(node) => crate::server::persistence::bgrewriteaof(&node, &router.shard.io),
            None => Frame::error("ERR server is shutting down"),
        },
        "time" => crate::server::misc::time(router),
        "wait" => crate::server::misc::wait(args),
        "debug" => crate::server::misc::debug(router, args).await,
        "slowlog" => crate::server::misc::slowlog(args),
        "function" => crate::server::misc::function(args),
        "script" => crate::server::misc::script(args),
        other => Frame::error(format!("ERR internal: no handler for '{other}'")),
    };
    AdminOutcome::Reply(reply)
}

/// SELECT index (databases: `cmd::databases`): the client and its router switch together.
fn select<I: Io>(router: &Router<'_, I>, client: &mut Client, index: &[u8]) -> Frame {
    match cmd::databases::db_index_arg(index, router.shard.databases()) {
        Ok(db) => {
            client.db_index = db as u32;
            router.db.set(db);
            Frame::ok()
        }
        Err(error) => error,
    }
}

fn check_password(node: &Node, password: &[u8]) -> Result<(), Frame> {
    let required = node.config.read().ok().and_then(|c| c.requirepass.clone());
    match required {
        None => Err(Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
        Some(expected) if expected.as_bytes() == password => Ok(()),
        Some(_) => Err(Frame::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        )),
    }
}

fn auth(node: &Node, client: &mut Client, args: &[Bytes]) -> Frame {
    let (user, password) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1]), &args[2]),
        _ => return Frame::error("ERR syntax error"),
    };
    if user.is_some_and(|u| !u.eq_ignore_ascii_case(b"default")) {
        return Frame::error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    match check_password(node, password) {
        Ok(()) => {
            client.authenticated = true;
            Frame::ok()
        }
        Err(error) => error,
    }
}

fn hello(node: &Node, client: &mut Client, args: &[Bytes]) -> Frame {
    let mut i = 1;
    if let Some(version) = args.get(1) {
        match std::str::from_utf8(version)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(2) => {}
            Some(_) | None => {
                return Frame::error("NOPROTO sorry, this protocol version is not supported")
            }
        }
        i = 2;
    }
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        if option == b"auth" && i + 2 < args.len() {
            let password = &args[i + 2];
            if let Err(error) = check_password(node, password) {
                return error;
            }
            client.authenticated = true;
            i += 3;
        } else if option == b"setname" && i + 1 < args.len() {
            client.name = Some(String::from_utf8_lossy(&args[i + 1]).into_owned());
            i += 2;
        } else {
            return Frame::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if !client.authenticated {
        return Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    let pairs: Vec<(&str, Frame)> = vec![
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(info::REDIS_VERSION)),
        ("proto", Frame::Integer(2)),
        ("id", Frame::Integer(client.id as i64)),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(Vec::new())),
    ];
    let mut out = Vec::with_capacity(pairs.len() * 2);
    for (name, value) in pairs {
        out.push(Frame::bulk(name));
        out.push(value);
    }
    Frame::Array(out)
}

fn client_command(client: &mut Client, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"id", 2) => Frame::Integer(client.id as i64),
        (b"getname", 2) => match &client.name {
            Some(name) => Frame::bulk(name.clone()),
            None => Frame::Null,
        },
        (b"setname", 3) => {
            let name = &args[2];
            if name.iter().any(|&b| b <= b' ' || b > b'~') {
                return Frame::error("ERR Client names cannot contain spaces, newlines or special characters.");
            }
            client.name = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
            Frame::ok()
        }
        (b"setinfo", 4) => Frame::ok(),
        (b"info", 2) | (b"list", 2) => Frame::bulk(format!(
            "id={} addr={} laddr= fd=0 name={} age=0 idle=0 flags=N db={} sub=0 psub=0 multi=-1 qbuf=0 obl=0 oll=0 omem=0 cmd=client|{}\n",
            client.id,
            client.peer,
            client.name.as_deref().unwrap_or(""),
            client.db_index,
            String::from_utf8_lossy(&sub)
        )),
        _ => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// Settings that CONFIG GET reports, with their current value.
fn config_params(config: &Config) -> Vec<(&'static str, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
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
        ("save", String::new()),
        ("databases", config.databases.to_string()),
        ("maxmemory", "0".to_string()),
    ]
}

fn config_command(node: &Node, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"get" if args.len() >= 3 => {
            let config = node.config();
            let mut out = Vec::new();
            for (name, value) in config_params(&config) {
                let wanted = args[2..].iter().any(|p| {
                    crate::keyspace::glob::glob_match(&p.to_ascii_lowercase(), name.as_bytes())
                });
                if wanted {
                    out.push(Frame::bulk(name));
                    out.push(Frame::bulk(value));
                }
            }
            Frame::Array(out)
        }
        b"set" if args.len() >= 4 && args.len() % 2 == 0 => config_set(node, &args[2..]),
        b"resetstat" if args.len() == 2 => Frame::ok(),
        _ => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// CONFIG SET name value [name value ...]: all or nothing.
fn config_set(node: &Node, pairs: &[Bytes]) -> Frame {
    let Ok(mut guard) = node.config.write() else {
        return Frame::error("ERR internal: configuration lock poisoned");
    };
    let mut updated = guard.clone();
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        if !config_params(&updated).iter().any(|(n, _)| *n == name) {
            return Frame::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
        if let Err(reason) = set_one(&mut updated, &name, &value) {
            return Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
            ));
        }
    }
    *guard = updated;
    Frame::ok()
}

fn set_one(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
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
        "save" => {}
        _ => return Err("can't set immutable config".to_string()),
    }
    Ok(())
}
