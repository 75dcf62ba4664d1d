//! The transaction commands MULTI, EXEC, DISCARD, WATCH and UNWATCH: table entries only.
//! They are connection-route commands (no handler here); src/server/multi.rs runs them and
//! src/shard/watch.rs keeps the shard side (watched keys, atomic execution). Arity, flags,
//! key specs and ACL categories are those of redis-server 7.0.15 `COMMAND INFO`.
//!
//! Nothing here can fail.

use super::table::spec;
use super::{CommandSpec, Route};

/// MULTI EXEC DISCARD WATCH UNWATCH (group "transactions").
#[rustfmt::skip]
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!("multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, Route::Connection, "transactions",
          "Mark the start of a transaction block", "1.2.0", ["@fast", "@transaction"], None),
    spec!("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], 0, 0, 0, Route::Connection, "transactions",
          "Execute all commands issued after MULTI", "1.2.0", ["@slow", "@transaction"], None),
    spec!("discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, Route::Connection, "transactions",
          "Discard all commands issued after MULTI", "2.0.0", ["@fast", "@transaction"], None),
    spec!("watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], 1, -1, 1, Route::Connection, "transactions",
          "Watch the given keys to determine execution of the MULTI/EXEC block", "2.2.0", ["@fast", "@transaction"], None),
    spec!("unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, Route::Connection, "transactions",
          "Forget about all watched keys", "2.2.0", ["@fast", "@transaction"], None),
];
