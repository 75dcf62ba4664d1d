//! Server-level (connection-route) commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO,
//! CLIENT, CONFIG, INFO, COMMAND. Replies follow Redis 7 (redis.io/commands).
//!
//! What can fail here: bad arguments (Redis error replies); cross-shard INFO gathering
//! (a shard that does not answer in time is reported as missing, not waited for forever).

use bytes::Bytes;

use crate::cmd::{self, CommandSpec};
use crate::io::Io;
use crate::resp::{Frame, Protocol};
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
        // CLIENT registry (src/server/clients.rs).
        "client" => {
            let now_ms = router.shard.io.wall_clock_ms();
            crate::server::clients::command(&node.clients, client, args, now_ms)
        }
        // CONFIG GET/SET with Redis 7 parameter names (src/server/config_params.rs).
        "config" => crate::server::config_params::command(node, args),
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

/// Checks `password` for the default user. Without `requirepass` the default user takes
/// any password in the two-word `AUTH default <pass>` / HELLO form (Redis 7 `nopass`), but
/// the one-word `AUTH <pass>` is an error there.
fn check_password(node: &Node, with_user: bool, password: &[u8]) -> Result<(), Frame> {
    let required = node.config.read().ok().and_then(|c| c.requirepass.clone());
    match required {
        None if with_user => Ok(()),
        None => Err(Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
        Some(expected) if expected.as_bytes() == password => Ok(()),
        Some(_) => Err(Frame::error(ERR_WRONGPASS)),
    }
}

const ERR_WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(node: &Node, client: &mut Client, args: &[Bytes]) -> Frame {
    let (user, password) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1]), &args[2]),
        _ => return Frame::error("ERR syntax error"),
    };
    if user.is_some_and(|u| u.as_ref() != b"default") {
        return Frame::error(ERR_WRONGPASS);
    }
    match check_password(node, user.is_some(), password) {
        Ok(()) => {
            client.authenticated = true;
            Frame::ok()
        }
        Err(error) => error,
    }
}

/// HELLO [protover [AUTH user pass] [SETNAME name]]: switches the protocol (2 or 3) and
/// replies with the server map (a flat array on RESP2), as Redis 7.0 does. Nothing
/// changes unless every option succeeds.
fn hello(node: &Node, client: &mut Client, args: &[Bytes]) -> Frame {
    let mut protocol = client.protocol;
    if let Some(version) = args.get(1) {
        match std::str::from_utf8(version)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(2) => protocol = Protocol::Resp2,
            Some(3) => protocol = Protocol::Resp3,
            Some(_) => return Frame::error("NOPROTO unsupported protocol version"),
            None => return Frame::error("ERR Protocol version is not an integer or out of range"),
        }
    }
    let mut i = 2;
    let mut credentials = None;
    let mut name = None;
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        if option == b"auth" && i + 2 < args.len() {
            credentials = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if option == b"setname" && i + 1 < args.len() {
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return Frame::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if let Some((user, password)) = credentials {
        if user.as_ref() != b"default" {
            return Frame::error(ERR_WRONGPASS);
        }
        if let Err(error) = check_password(node, true, password) {
            return error;
        }
        client.authenticated = true;
    }
    if !client.authenticated {
        return Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = name {
        if let Err(error) = crate::server::clients::set_name(client, name) {
            return error;
        }
    }
    client.protocol = protocol;
    Frame::map_of([
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(info::REDIS_VERSION)),
        ("proto", Frame::Integer(protocol.number())),
        ("id", Frame::Integer(client.id as i64)),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(Vec::new())),
    ])
}
