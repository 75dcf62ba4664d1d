//! The Pub/Sub command family's table entries (SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
//! PUNSUBSCRIBE, PUBLISH, PUBSUB), with the arity, flags, key specs, ACL categories and
//! docs fields redis-server 7.0 reports in `COMMAND INFO`/`DOCS`. They run in the server
//! layer (src/server/pubsub.rs), never against a keyspace, so they have no handler.
//! Nothing here can fail.

use super::table::spec;
use super::{CommandSpec, Route};

/// The Pub/Sub commands (route `Connection`: handled by src/server/pubsub.rs).
#[rustfmt::skip]
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!("subscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, Route::Connection, "pubsub",
          "Listen for messages published to the given channels", "2.0.0", ["@pubsub", "@slow"], None),
    spec!("unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, Route::Connection, "pubsub",
          "Stop listening for messages posted to the given channels", "2.0.0", ["@pubsub", "@slow"], None),
    spec!("psubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, Route::Connection, "pubsub",
          "Listen for messages published to channels matching the given patterns", "2.0.0", ["@pubsub", "@slow"], None),
    spec!("punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, Route::Connection, "pubsub",
          "Stop listening for messages posted to channels matching the given patterns", "2.0.0", ["@pubsub", "@slow"], None),
    spec!("publish", 3, ["pubsub", "loading", "stale", "fast"], 0, 0, 0, Route::Connection, "pubsub",
          "Post a message to a channel", "2.0.0", ["@pubsub", "@fast"], None),
    spec!("pubsub", -2, [], 0, 0, 0, Route::Connection, "pubsub",
          "A container for Pub/Sub commands", "2.8.0", ["@slow"], None),
];
