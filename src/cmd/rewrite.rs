//! Reconstruction commands for one key: the commands that, replayed on an empty keyspace,
//! rebuild the key exactly — value and absolute TTL. The AOF base files of a rewrite
//! (`crate::persist::write_base`) are made of these (Redis does the same in its
//! `rewriteAppendOnlyFile`: one command per key, TTLs as absolute `PEXPIREAT`).
//!
//! What can fail here: a value type whose reconstruction is not written yet returns `Err`
//! (the rewrite then aborts and the old generation stays authoritative — never a base
//! missing keys).

use bytes::Bytes;

use crate::keyspace::{Entry, Value};

/// The commands that rebuild `key` holding `entry`, in replay order. Strings:
/// `SET key value [PXAT expire_at_ms]`. A key whose TTL is at or before `now_ms` yields no
/// command (it is logically gone; replay would delete it anyway).
///
/// `Err` names the value type whose reconstruction is missing.
pub fn commands_for(key: &Bytes, entry: &Entry, now_ms: u64) -> Result<Vec<Vec<Bytes>>, String> {
    if entry.expire_at_ms.is_some_and(|at| at <= now_ms) {
        return Ok(Vec::new());
    }
    let mut command = match &entry.value {
        Value::Str(value) => vec![Bytes::from_static(b"SET"), key.clone(), value.clone()],
        // INTEGRATOR: fill each arm as the collection types land (e.g. RPUSH for lists,
        // HSET for hashes, SADD for sets, ZADD for sorted sets, in chunks of at most a few
        // thousand elements per command), then append the PEXPIREAT below.
        Value::Hash(_) | Value::List(_) | Value::Set(_) | Value::ZSet(_) => {
            return Err(format!(
                "AOF rewrite does not support {} values yet (key {:?})",
                entry.value.type_name(),
                String::from_utf8_lossy(key)
            ))
        }
    };
    if let Some(at) = entry.expire_at_ms {
        command.push(Bytes::from_static(b"PXAT"));
        command.push(Bytes::from(at.to_string()));
    }
    Ok(vec![command])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_become_set_with_absolute_ttl() {
        let key = Bytes::from_static(b"k");
        let plain = Entry {
            value: Value::Str(Bytes::from_static(b"v")),
            expire_at_ms: None,
        };
        assert_eq!(
            commands_for(&key, &plain, 10).unwrap(),
            vec![vec![Bytes::from("SET"), key.clone(), Bytes::from("v")]]
        );
        let ttl = Entry {
            value: Value::Str(Bytes::from_static(b"v")),
            expire_at_ms: Some(500),
        };
        assert_eq!(
            commands_for(&key, &ttl, 10).unwrap(),
            vec![vec![
                Bytes::from("SET"),
                key.clone(),
                Bytes::from("v"),
                Bytes::from("PXAT"),
                Bytes::from("500")
            ]]
        );
        assert!(
            commands_for(&key, &ttl, 500).unwrap().is_empty(),
            "expired keys are skipped"
        );
    }
}
