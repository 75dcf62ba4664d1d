//! The keyspace of one shard: values, TTLs, lazy and active expiry.
