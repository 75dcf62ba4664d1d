//! Reconstruction commands for one key: the commands that, replayed on an empty keyspace,
//! rebuild the key exactly — value and absolute TTL. The AOF base files of a rewrite
//! (`crate::persist::write_base`) are made of these (Redis does the same in its
//! `rewriteAppendOnlyFile`: one command per key, TTLs as absolute `PEXPIREAT`).
//!
//! Collections become `RPUSH`/`SADD`/`HSET`/`ZADD` commands of at most
//! [`REWRITE_ITEMS_PER_COMMAND`] elements, followed by `PEXPIREAT` when the key has a TTL.
//!
//! What can fail here: nothing today; the `Result` stays so a future type without a
//! reconstruction aborts the rewrite (the old generation stays authoritative) instead of
//! writing a base that misses keys.

use bytes::Bytes;

use crate::keyspace::zset::score::format_score;
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
    let mut commands = match &entry.value {
        Value::Str(value) => {
            let mut set = vec![Bytes::from_static(b"SET"), key.clone(), value.clone()];
            if let Some(at) = entry.expire_at_ms {
                set.push(Bytes::from_static(b"PXAT"));
                set.push(Bytes::from(at.to_string()));
            }
            return Ok(vec![set]);
        }
        Value::List(list) => chunked(b"RPUSH", key, list.iter().map(|item| vec![item.clone()])),
        Value::Set(set) => chunked(b"SADD", key, set.iter().map(|m| vec![m.clone()])),
        Value::Hash(hash) => chunked(
            b"HSET",
            key,
            hash.iter().map(|(f, v)| vec![f.clone(), v.clone()]),
        ),
        Value::ZSet(zset) => chunked(
            b"ZADD",
            key,
            zset.iter()
                .map(|(m, score)| vec![Bytes::from(format_score(score)), m.clone()]),
        ),
    };
    if let Some(at) = entry.expire_at_ms {
        commands.push(vec![
            Bytes::from_static(b"PEXPIREAT"),
            key.clone(),
            Bytes::from(at.to_string()),
        ]);
    }
    Ok(commands)
}

/// Elements per reconstruction command of a collection (Redis: `AOF_REWRITE_ITEMS_PER_CMD`).
pub const REWRITE_ITEMS_PER_COMMAND: usize = 64;

/// `NAME key e1 e2 …` commands of at most [`REWRITE_ITEMS_PER_COMMAND`] elements each
/// (an element is one or more arguments, e.g. a hash field and its value).
fn chunked(
    name: &'static [u8],
    key: &Bytes,
    elements: impl Iterator<Item = Vec<Bytes>>,
) -> Vec<Vec<Bytes>> {
    let mut commands = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut count = 0;
    for element in elements {
        if count == 0 {
            current = vec![Bytes::from_static(name), key.clone()];
        }
        current.extend(element);
        count += 1;
        if count == REWRITE_ITEMS_PER_COMMAND {
            commands.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if count > 0 {
        commands.push(current);
    }
    commands
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

    #[test]
    fn collections_replay_to_the_same_value() {
        use crate::cmd::{execute, ExecCtx};
        use crate::keyspace::Db;
        let mut source = Db::new(7);
        let mut log = Vec::new();
        let mut random = || 4u64;
        let mut ctx = ExecCtx {
            now_ms: 1_000,
            random: &mut random,
            propagate: &mut log,
            replaying: false,
        };
        let run = |db: &mut Db, ctx: &mut ExecCtx, line: &str| {
            let args: Vec<Bytes> = line
                .split(' ')
                .map(|a| Bytes::from(a.to_string()))
                .collect();
            let reply = execute(db, ctx, &args);
            assert!(!reply.is_error(), "{line}: {reply:?}");
        };
        for i in 0..150 {
            run(&mut source, &mut ctx, &format!("RPUSH l item{i}"));
            run(&mut source, &mut ctx, &format!("SADD s m{i}"));
            run(&mut source, &mut ctx, &format!("HSET h f{i} v{i}"));
            run(&mut source, &mut ctx, &format!("ZADD z {}.25 m{i}", i % 7));
        }
        run(&mut source, &mut ctx, "PEXPIREAT h 900000");
        let mut rebuilt = Db::new(7);
        let mut replay_log = Vec::new();
        let mut replay_ctx = ExecCtx {
            now_ms: 1_000,
            random: &mut random,
            propagate: &mut replay_log,
            replaying: true,
        };
        for key in ["l", "s", "h", "z"] {
            let key = Bytes::from(key);
            let entry = source.peek(&key).expect("key exists").clone();
            let commands = commands_for(&key, &entry, 1_000).unwrap();
            assert!(commands.len() >= 3, "150 elements take several commands");
            for command in commands {
                let reply = execute(&mut rebuilt, &mut replay_ctx, &command);
                assert!(!reply.is_error(), "{command:?}: {reply:?}");
            }
            assert_eq!(rebuilt.peek(&key), Some(&entry), "key {key:?}");
        }
    }
}
