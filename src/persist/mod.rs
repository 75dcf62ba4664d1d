//! Persistence: the per-shard append-only file (AOF). `frame.rs` encodes and decodes
//! records (byte map in docs/formats.md), `writer.rs` is the group-commit writer task with
//! the `appendfsync` policies, `recovery.rs` replays a shard's log at start-up, truncating a
//! torn tail and refusing mid-file corruption.
//!
//! What can fail here: disk errors (latched: after the first write or fsync failure no
//! later write is acknowledged, see [`AofError::Failed`]), a stalled fsync (bounded by
//! `aof_fsync_timeout_ms`), and corrupt files at start-up ([`AofError::Corrupt`]).

// API contract used by the shard layer. The implementation lives in the submodules.
//
//   Aof::<I>::open(io, AofOptions, &mut replay) -> Result<(Aof<I>, RecoveryReport), AofError>
//       1. create the AOF dir if missing; 2. read the shard's log and call
//       replay(lsn, args) for every valid record in order; 3. truncate a torn tail
//       (logged with tracing::warn!) or refuse mid-file corruption; 4. open for append at
//       the end of the last valid record, next LSN = last LSN + 1; 5. spawn the writer task.
//   aof.append(&[Bytes]) -> Result<Lsn, AofError>     buffer one record, synchronous
//   aof.wait_ack(lsn).await -> Result<(), AofError>   Always: covering fsync done;
//                                                     Everysec/No: record written (write(2))
//   aof.wait_room().await -> Result<(), AofError>     bounded backpressure before a write
//   aof.last_lsn() -> Lsn                             last LSN handed out by append
//   aof.stats() -> AofStats                           for INFO persistence
