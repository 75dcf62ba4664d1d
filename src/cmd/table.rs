//! The command table: every command tidemark knows, with Redis 7 arity, flags, legacy key
//! spec, ACL categories and docs fields (taken from redis-server 7.0 `COMMAND INFO`/`DOCS`),
//! the shard routing, and the handler that `execute` calls. Nothing here can fail.

use std::sync::OnceLock;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use super::{expire, keys, strings, CommandSpec, Merge, Route};

macro_rules! spec {
    ($name:expr, $arity:expr, [$($flag:expr),*], $first:expr, $last:expr, $step:expr, $route:expr, $group:expr,
     $summary:expr, $since:expr, [$($acl:expr),*], $handler:expr) => {
        CommandSpec {
            name: $name, arity: $arity, flags: &[$($flag),*], first_key: $first, last_key: $last,
            key_step: $step, route: $route, group: $group, summary: $summary, since: $since,
            acl_categories: &[$($acl),*], handler: $handler,
        }
    };
}

#[allow(unused_imports)]
pub(crate) use spec;

/// The string, generic-key, connection and server commands. Other families keep their
/// own slice in their own file (`COMMANDS`) and are listed in [`FAMILIES`].
static TABLE: &[CommandSpec] = &[
    spec!("get", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "string",
          "Get the value of a key", "1.0.0", ["@read", "@string", "@fast"], Some(strings::get)),
    spec!("set", -3, ["write", "denyoom"], 1, 1, 1, Route::Single, "string",
          "Set the string value of a key", "1.0.0", ["@write", "@string", "@slow"], Some(strings::set)),
    spec!("setnx", 3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Set the value of a key, only if the key does not exist", "1.0.0", ["@write", "@string", "@fast"], Some(strings::setnx)),
    spec!("setex", 4, ["write", "denyoom"], 1, 1, 1, Route::Single, "string",
          "Set the value and expiration of a key", "2.0.0", ["@write", "@string", "@slow"], Some(strings::setex)),
    spec!("psetex", 4, ["write", "denyoom"], 1, 1, 1, Route::Single, "string",
          "Set the value and expiration in milliseconds of a key", "2.6.0", ["@write", "@string", "@slow"], Some(strings::psetex)),
    spec!("getset", 3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Set the string value of a key and return its old value", "1.0.0", ["@write", "@string", "@fast"], Some(strings::getset)),
    spec!("getdel", 2, ["write", "fast"], 1, 1, 1, Route::Single, "string",
          "Get the value of a key and delete the key", "6.2.0", ["@write", "@string", "@fast"], Some(strings::getdel)),
    spec!("getex", -2, ["write", "fast"], 1, 1, 1, Route::Single, "string",
          "Get the value of a key and optionally set its expiration", "6.2.0", ["@write", "@string", "@fast"], Some(strings::getex)),
    spec!("mget", -2, ["readonly", "fast"], 1, -1, 1, Route::SplitKeys(Merge::MgetOrder), "string",
          "Get the values of all the given keys", "1.0.0", ["@read", "@string", "@fast"], Some(strings::mget)),
    spec!("mset", -3, ["write", "denyoom"], 1, -1, 2, Route::SameShard, "string",
          "Set multiple keys to multiple values", "1.0.1", ["@write", "@string", "@slow"], Some(strings::mset)),
    spec!("msetnx", -3, ["write", "denyoom"], 1, -1, 2, Route::SameShard, "string",
          "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1", ["@write", "@string", "@slow"], Some(strings::msetnx)),
    spec!("append", 3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Append a value to a key", "2.0.0", ["@write", "@string", "@fast"], Some(strings::append)),
    spec!("strlen", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "string",
          "Get the length of the value stored in a key", "2.2.0", ["@read", "@string", "@fast"], Some(strings::strlen)),
    spec!("getrange", 4, ["readonly"], 1, 1, 1, Route::Single, "string",
          "Get a substring of the string stored at a key", "2.4.0", ["@read", "@string", "@slow"], Some(strings::getrange)),
    spec!("substr", 4, ["readonly"], 1, 1, 1, Route::Single, "string",
          "Get a substring of the string stored at a key", "1.0.0", ["@read", "@string", "@slow"], Some(strings::getrange)),
    spec!("setrange", 4, ["write", "denyoom"], 1, 1, 1, Route::Single, "string",
          "Overwrite part of a string at key starting at the specified offset", "2.2.0", ["@write", "@string", "@slow"], Some(strings::setrange)),
    spec!("incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Increment the integer value of a key by one", "1.0.0", ["@write", "@string", "@fast"], Some(strings::incr)),
    spec!("decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Decrement the integer value of a key by one", "1.0.0", ["@write", "@string", "@fast"], Some(strings::decr)),
    spec!("incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Increment the integer value of a key by the given amount", "1.0.0", ["@write", "@string", "@fast"], Some(strings::incrby)),
    spec!("decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Decrement the integer value of a key by the given number", "1.0.0", ["@write", "@string", "@fast"], Some(strings::decrby)),
    spec!("incrbyfloat", 3, ["write", "denyoom", "fast"], 1, 1, 1, Route::Single, "string",
          "Increment the float value of a key by the given amount", "2.6.0", ["@write", "@string", "@fast"], Some(strings::incrbyfloat)),
    spec!("del", -2, ["write"], 1, -1, 1, Route::SplitKeys(Merge::SumIntegers), "generic",
          "Delete a key", "1.0.0", ["@keyspace", "@write", "@slow"], Some(keys::del)),
    spec!("unlink", -2, ["write", "fast"], 1, -1, 1, Route::SplitKeys(Merge::SumIntegers), "generic",
          "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", "4.0.0", ["@keyspace", "@write", "@fast"], Some(keys::del)),
    spec!("exists", -2, ["readonly", "fast"], 1, -1, 1, Route::SplitKeys(Merge::SumIntegers), "generic",
          "Determine if a key exists", "1.0.0", ["@keyspace", "@read", "@fast"], Some(keys::exists)),
    spec!("touch", -2, ["readonly", "fast"], 1, -1, 1, Route::SplitKeys(Merge::SumIntegers), "generic",
          "Alters the last access time of a key(s). Returns the number of existing keys specified.", "3.2.1", ["@keyspace", "@read", "@fast"], Some(keys::exists)),
    spec!("type", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "generic",
          "Determine the type stored at key", "1.0.0", ["@keyspace", "@read", "@fast"], Some(keys::type_)),
    spec!("rename", 3, ["write"], 1, 2, 1, Route::SameShard, "generic",
          "Rename a key", "1.0.0", ["@keyspace", "@write", "@slow"], Some(keys::rename)),
    spec!("renamenx", 3, ["write", "fast"], 1, 2, 1, Route::SameShard, "generic",
          "Rename a key, only if the new key does not exist", "1.0.0", ["@keyspace", "@write", "@fast"], Some(keys::renamenx)),
    spec!("keys", 2, ["readonly"], 0, 0, 0, Route::AllShards(Merge::ConcatArrays), "generic",
          "Find all keys matching the given pattern", "1.0.0", ["@keyspace", "@read", "@slow", "@dangerous"], Some(keys::keys)),
    spec!("scan", -2, ["readonly"], 0, 0, 0, Route::AllShards(Merge::Scan), "generic",
          "Incrementally iterate the keys space", "2.8.0", ["@keyspace", "@read", "@slow"], Some(keys::scan)),
    spec!("randomkey", 1, ["readonly"], 0, 0, 0, Route::AllShards(Merge::RandomKey), "generic",
          "Return a random key from the keyspace", "1.0.0", ["@keyspace", "@read", "@slow"], Some(keys::randomkey)),
    spec!("dbsize", 1, ["readonly", "fast"], 0, 0, 0, Route::AllShards(Merge::SumIntegers), "server",
          "Return the number of keys in the selected database", "1.0.0", ["@keyspace", "@read", "@fast"], Some(keys::dbsize)),
    spec!("flushdb", -1, ["write"], 0, 0, 0, Route::AllShards(Merge::AllOk), "server",
          "Remove all keys from the current database", "1.0.0", ["@keyspace", "@write", "@slow", "@dangerous"], Some(keys::flush)),
    spec!("flushall", -1, ["write"], 0, 0, 0, Route::AllShards(Merge::AllOk), "server",
          "Remove all keys from all databases", "1.0.0", ["@keyspace", "@write", "@slow", "@dangerous"], Some(keys::flush)),
    spec!("expire", -3, ["write", "fast"], 1, 1, 1, Route::Single, "generic",
          "Set a key's time to live in seconds", "1.0.0", ["@keyspace", "@write", "@fast"], Some(expire::expire)),
    spec!("pexpire", -3, ["write", "fast"], 1, 1, 1, Route::Single, "generic",
          "Set a key's time to live in milliseconds", "2.6.0", ["@keyspace", "@write", "@fast"], Some(expire::pexpire)),
    spec!("expireat", -3, ["write", "fast"], 1, 1, 1, Route::Single, "generic",
          "Set the expiration for a key as a UNIX timestamp", "1.2.0", ["@keyspace", "@write", "@fast"], Some(expire::expireat)),
    spec!("pexpireat", -3, ["write", "fast"], 1, 1, 1, Route::Single, "generic",
          "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0", ["@keyspace", "@write", "@fast"], Some(expire::pexpireat)),
    spec!("ttl", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "generic",
          "Get the time to live for a key in seconds", "1.0.0", ["@keyspace", "@read", "@fast"], Some(expire::ttl)),
    spec!("pttl", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "generic",
          "Get the time to live for a key in milliseconds", "2.6.0", ["@keyspace", "@read", "@fast"], Some(expire::pttl)),
    spec!("expiretime", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "generic",
          "Get the expiration Unix timestamp for a key", "7.0.0", ["@keyspace", "@read", "@fast"], Some(expire::expiretime)),
    spec!("pexpiretime", 2, ["readonly", "fast"], 1, 1, 1, Route::Single, "generic",
          "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0", ["@keyspace", "@read", "@fast"], Some(expire::pexpiretime)),
    spec!("persist", 2, ["write", "fast"], 1, 1, 1, Route::Single, "generic",
          "Remove the expiration from a key", "2.2.0", ["@keyspace", "@write", "@fast"], Some(expire::persist)),
    spec!("ping", -1, ["fast"], 0, 0, 0, Route::Connection, "connection",
          "Ping the server", "1.0.0", ["@fast", "@connection"], None),
    spec!("echo", 2, ["loading", "stale", "fast"], 0, 0, 0, Route::Connection, "connection",
          "Echo the given string", "1.0.0", ["@fast", "@connection"], None),
    spec!("quit", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Route::Connection, "connection",
          "Close the connection", "1.0.0", ["@fast", "@connection"], None),
    spec!("select", 2, ["loading", "stale", "fast"], 0, 0, 0, Route::Connection, "connection",
          "Change the selected database for the current connection", "1.0.0", ["@fast", "@connection"], None),
    spec!("auth", -2, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Route::Connection, "connection",
          "Authenticate to the server", "1.0.0", ["@fast", "@connection"], None),
    spec!("hello", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Route::Connection, "connection",
          "Handshake with Redis", "6.0.0", ["@fast", "@connection"], None),
    spec!("client", -2, [], 0, 0, 0, Route::Connection, "connection",
          "A container for client connection commands", "2.4.0", ["@slow"], None),
    spec!("info", -1, ["loading", "stale"], 0, 0, 0, Route::Connection, "server",
          "Get information and statistics about the server", "1.0.0", ["@slow", "@dangerous"], None),
    spec!("config", -2, [], 0, 0, 0, Route::Connection, "server",
          "A container for server configuration commands", "2.0.0", ["@slow"], None),
    spec!("save", 1, ["admin", "noscript", "no_async_loading", "no_multi"], 0, 0, 0, Route::Connection, "server",
          "Synchronously save the dataset to disk", "1.0.0", ["@admin", "@slow", "@dangerous"], None),
    spec!("bgsave", -1, ["admin", "noscript", "no_async_loading"], 0, 0, 0, Route::Connection, "server",
          "Asynchronously save the dataset to disk", "1.0.0", ["@admin", "@slow", "@dangerous"], None),
    spec!("lastsave", 1, ["loading", "stale", "fast"], 0, 0, 0, Route::Connection, "server",
          "Get the UNIX time stamp of the last successful save to disk", "1.0.0", ["@admin", "@fast", "@dangerous"], None),
    spec!("command", -1, ["loading", "stale"], 0, 0, 0, Route::Connection, "server",
          "Get array of Redis command details", "2.8.13", ["@slow", "@connection"], None),
    spec!("bgrewriteaof", 1, ["admin", "noscript", "no_async_loading"], 0, 0, 0, Route::Connection, "server",
          "Asynchronously rewrite the append-only file", "1.0.0", ["@admin", "@slow", "@dangerous"], None),
    spec!("time", 1, ["loading", "stale", "fast"], 0, 0, 0, Route::Connection, "server",
          "Return the current server time", "2.6.0", ["@fast"], None),
    spec!("wait", 3, ["noscript"], 0, 0, 0, Route::Connection, "generic",
          "Wait for the synchronous replication of all the write commands sent in the context of the current connection", "3.0.0", ["@slow", "@connection"], None),
    spec!("debug", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0, Route::Connection, "server",
          "A container for debugging commands", "1.0.0", ["@admin", "@slow", "@dangerous"], None),
    spec!("slowlog", -2, [], 0, 0, 0, Route::Connection, "server",
          "A container for slow log commands", "2.2.12", ["@slow"], None),
    spec!("function", -2, [], 0, 0, 0, Route::Connection, "scripting",
          "A container for function commands", "7.0.0", ["@slow"], None),
    spec!("script", -2, [], 0, 0, 0, Route::Connection, "scripting",
          "A container for Lua scripts management commands", "2.6.0", ["@slow"], None),
];

/// Every family's slice of the table, in `COMMAND` order.
static FAMILIES: &[&[CommandSpec]] = &[
    TABLE,
    super::hashes::COMMANDS,
    super::sets::COMMANDS,
    super::lists::COMMANDS,
    super::zsets::COMMANDS,
    super::generic_extra::COMMANDS,
    super::pubsub::COMMANDS,
    super::multi::COMMANDS,
    super::databases::COMMANDS,
];

static ALL: OnceLock<Vec<CommandSpec>> = OnceLock::new();
static BY_NAME: OnceLock<HashMap<&'static [u8], usize, FixedState>> = OnceLock::new();

/// Every command, including the Connection-route ones the server layer handles.
pub fn table() -> &'static [CommandSpec] {
    ALL.get_or_init(|| FAMILIES.iter().flat_map(|f| f.iter().cloned()).collect())
}

/// Index into [`table`] of the command named `lowercase_name` (already lowercased).
pub(crate) fn index_of(lowercase_name: &[u8]) -> Option<usize> {
    let by_name = BY_NAME.get_or_init(|| {
        let mut map = HashMap::with_hasher(FixedState::with_seed(0x7d3e_a1c9));
        for (i, spec) in table().iter().enumerate() {
            let previous = map.insert(spec.name.as_bytes(), i);
            assert!(
                previous.is_none(),
                "command '{}' is in the table twice",
                spec.name
            );
        }
        map
    });
    by_name.get(lowercase_name).copied()
}
