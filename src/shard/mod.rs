//! Shards: key → CRC16 hash slot → shard routing, the shard loop, cross-shard dispatch.

pub mod slot;
