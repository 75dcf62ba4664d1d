//! Commands that see every database of a shard (Redis 7.0 db.c semantics): MOVE, SWAPDB,
//! FLUSHALL and COPY … DB n, and [`execute_in`], which runs any data command in one
//! database of a shard's `[Db]` (index = database number).
//!
//! MOVE and COPY … DB stay on one shard (same key, same hash slot). SWAPDB and FLUSHALL
//! run on every shard (Route::AllShards); each shard does its part in one synchronous step.
//!
//! Logged forms (AOF): `MOVE key n`, `SWAPDB a b`, `FLUSHALL`, `COPY src dst DB n
//! [REPLACE]`, in the database the command ran in. A key that expires lazily in ANOTHER
//! database (the target of MOVE/COPY) is logged as `SELECT target`, `DEL key`, `SELECT
//! current`, so replay deletes it where it was (`Shard` splits the records by database).
//!
//! What can fail: the client's arguments (`ERR value is not an integer or out of range`,
//! `ERR DB index is out of range`, `ERR invalid first DB index`, `ERR invalid second DB
//! index`, `ERR source and destination objects are the same`, `ERR syntax error`).

use bytes::Bytes;

use super::table::spec;
use super::{
    check_arity, execute_spec, lookup, parse_i64, static_bytes, unknown_command, CommandSpec,
    ExecCtx, Merge, Route, ERR_NOT_INTEGER, ERR_SYNTAX,
};
use crate::keyspace::Db;
use crate::resp::Frame;

/// `ERR DB index is out of range` (SELECT, MOVE, SWAPDB, COPY).
pub const ERR_DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
/// MOVE/COPY of a key onto itself.
pub const ERR_SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// MOVE and SWAPDB (FLUSHALL and COPY are in the main table; their multi-database form is
/// dispatched by [`execute_spec_in`]). Arity, flags, key specs and ACL categories from
/// redis-server 7.0 `COMMAND INFO`.
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!(
        "move",
        3,
        ["write", "fast"],
        1,
        1,
        1,
        Route::Single,
        "generic",
        "Move a key to another database",
        "1.0.0",
        ["@keyspace", "@write", "@fast"],
        Some(needs_every_database)
    ),
    spec!(
        "swapdb",
        3,
        ["write", "fast"],
        0,
        0,
        0,
        Route::AllShards(Merge::AllOk),
        "server",
        "Swaps two Redis databases",
        "4.0.0",
        ["@keyspace", "@write", "@fast", "@dangerous"],
        Some(needs_every_database)
    ),
];

/// The table handler of MOVE and SWAPDB: they need every database, so only
/// [`execute_spec_in`] runs them; a single-database caller gets this error.
fn needs_every_database(_db: &mut Db, _ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    Frame::error(format!(
        "ERR internal: '{}' needs every database (cmd::databases::execute_in)",
        String::from_utf8_lossy(&args[0])
    ))
}

/// Parses a database index like Redis's `getIntFromObjectOrReply`: a strict 64-bit decimal
/// that fits a C int, else `Err(())`.
fn parse_db_arg(arg: &[u8]) -> Result<i64, ()> {
    parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or(())
}

/// An index that parses as a 64-bit integer but does not fit a C int (SELECT, MOVE, COPY).
pub const ERR_NOT_INT32: &str =
    "ERR value is out of range, value must between -2147483648 and 2147483647";

/// SELECT's, MOVE's and COPY's index check (Redis `getIntFromObjectOrReply` with the
/// default messages, then the range): `Ok(index)`, or the exact Redis error frame.
pub fn db_index_arg(arg: &[u8], databases: usize) -> Result<usize, Frame> {
    let n = parse_i64(arg).ok_or_else(|| Frame::error(ERR_NOT_INTEGER))?;
    if i32::try_from(n).is_err() {
        return Err(Frame::error(ERR_NOT_INT32));
    }
    usize::try_from(n)
        .ok()
        .filter(|&n| n < databases)
        .ok_or_else(|| Frame::error(ERR_DB_OUT_OF_RANGE))
}

/// Runs `args` (any data command, name in any case) in database `db` of `dbs`.
pub fn execute_in(dbs: &mut [Db], db: usize, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let Some(name) = args.first() else {
        return Frame::error("ERR empty command");
    };
    match lookup(name) {
        Some(spec) => execute_spec_in(spec, dbs, db, ctx, args),
        None => unknown_command(args),
    }
}

/// Like [`execute_in`] for a spec the caller already looked up (`spec` is `args[0]`'s).
pub fn execute_spec_in(
    spec: &CommandSpec,
    dbs: &mut [Db],
    db: usize,
    ctx: &mut ExecCtx,
    args: &[Bytes],
) -> Frame {
    assert!(db < dbs.len(), "database {db} of {}", dbs.len());
    if let Err(e) = check_arity(spec, args.len()) {
        return e;
    }
    match spec.name {
        "move" => move_(dbs, db, ctx, args),
        "swapdb" => swapdb(dbs, ctx, args),
        "flushall" => flushall(dbs, ctx, args),
        "copy" if copy_db_option(args).is_some() => copy_to_db(dbs, db, ctx, args),
        _ => execute_spec(spec, &mut dbs[db], ctx, args),
    }
}

/// `Some((a, b))` when `record` is a logged `SWAPDB a b` (blocked clients of both databases
/// must be looked at again).
pub fn swapped(record: &[Bytes]) -> Option<(usize, usize)> {
    match record {
        [name, a, b] if name.eq_ignore_ascii_case(b"swapdb") => {
            let index = |arg: &[u8]| usize::try_from(parse_i64(arg)?).ok();
            Some((index(a)?, index(b)?))
        }
        _ => None,
    }
}

/// Whether `key` exists in database `target` (≠ `current`), expiring it lazily there; the
/// DEL of such an expiry is logged inside `SELECT target` … `SELECT current`.
fn contains_in(
    dbs: &mut [Db],
    target: usize,
    current: usize,
    ctx: &mut ExecCtx,
    key: &[u8],
) -> bool {
    let before = ctx.propagate.len();
    let exists = dbs[target].contains(ctx, key);
    if !ctx.replaying && ctx.propagate.len() > before {
        ctx.propagate
            .insert(before, crate::persist::select_record(target));
        ctx.propagate.push(crate::persist::select_record(current));
    }
    exists
}

/// MOVE key db → 1 moved; 0 when the key is missing here or exists in the target. The TTL
/// moves with the key.
fn move_(dbs: &mut [Db], db: usize, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let target = match db_index_arg(&args[2], dbs.len()) {
        Ok(target) => target,
        Err(error) => return error,
    };
    if target == db {
        return Frame::error(ERR_SAME_OBJECT);
    }
    if !dbs[db].contains(ctx, key) {
        return Frame::Integer(0);
    }
    if contains_in(dbs, target, db, ctx, key) {
        return Frame::Integer(0);
    }
    let (key, entry) = dbs[db].remove_entry(key).expect("checked above");
    dbs[target].insert(key.clone(), entry.value, entry.expire_at_ms);
    ctx.log(vec![
        static_bytes("MOVE"),
        key,
        Bytes::from(target.to_string()),
    ]);
    Frame::Integer(1)
}

/// SWAPDB index1 index2 → OK; the two databases exchange their contents (on this shard).
fn swapdb(dbs: &mut [Db], ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let Ok(a) = parse_db_arg(&args[1]) else {
        return Frame::error("ERR invalid first DB index");
    };
    let Ok(b) = parse_db_arg(&args[2]) else {
        return Frame::error("ERR invalid second DB index");
    };
    let in_range = |n: i64| usize::try_from(n).ok().filter(|&n| n < dbs.len());
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        return Frame::error(ERR_DB_OUT_OF_RANGE);
    };
    if a != b {
        dbs.swap(a, b);
        ctx.log(vec![
            static_bytes("SWAPDB"),
            Bytes::from(a.to_string()),
            Bytes::from(b.to_string()),
        ]);
    }
    Frame::ok()
}

/// FLUSHALL [ASYNC|SYNC] → OK; every database of this shard is emptied.
fn flushall(dbs: &mut [Db], ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    match args.get(1) {
        None => {}
        Some(mode)
            if args.len() == 2
                && (mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync")) => {}
        Some(_) => return Frame::error(ERR_SYNTAX),
    }
    for db in dbs.iter_mut() {
        db.clear();
    }
    ctx.log(args.to_vec());
    Frame::ok()
}

/// The argument after a `DB` option of COPY, if any (the last one wins, as in Redis).
fn copy_db_option(args: &[Bytes]) -> Option<&Bytes> {
    let mut found = None;
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            found = Some(&args[i + 1]);
            i += 1;
        }
        i += 1;
    }
    found
}

/// COPY source destination DB n [REPLACE] → 1 copied, 0 not (missing source, or the
/// destination exists in database n without REPLACE). The TTL is copied.
fn copy_to_db(dbs: &mut [Db], db: usize, ctx: &mut ExecCtx, args: &[Bytes]) -> Frame {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut target = db;
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if args[i].eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            target = match db_index_arg(&args[i + 1], dbs.len()) {
                Ok(target) => target,
                Err(error) => return error,
            };
            i += 1;
        } else {
            return Frame::error(ERR_SYNTAX);
        }
        i += 1;
    }
    if target == db {
        // Same database: the single-database COPY (generic_extra.rs).
        let spec = lookup(b"copy").expect("COPY is in the table");
        let mut same: Vec<Bytes> = vec![args[0].clone(), src.clone(), dst.clone()];
        if replace {
            same.push(static_bytes("REPLACE"));
        }
        return execute_spec(spec, &mut dbs[db], ctx, &same);
    }
    let Some(entry) = dbs[db].get(ctx, src).cloned() else {
        return Frame::Integer(0);
    };
    if contains_in(dbs, target, db, ctx, dst) && !replace {
        return Frame::Integer(0);
    }
    dbs[target].insert(dst.clone(), entry.value, entry.expire_at_ms);
    let mut logged = vec![
        static_bytes("COPY"),
        src.clone(),
        dst.clone(),
        static_bytes("DB"),
        Bytes::from(target.to_string()),
    ];
    if replace {
        logged.push(static_bytes("REPLACE"));
    }
    ctx.log(logged);
    Frame::Integer(1)
}

#[cfg(test)]
#[path = "databases_tests.rs"]
mod tests;
