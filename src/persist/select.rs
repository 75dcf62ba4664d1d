//! Which database an AOF record belongs to: `SELECT <db>` records, as Redis writes them
//! into its AOF. The frame format is unchanged; a record `SELECT n` (a RESP array
//! `["SELECT", "n"]` like any other payload) switches the database for every record after
//! it in the shard's log, across file boundaries (base, then each incr, in order), starting
//! at database 0. A log without SELECT records (every log written before databases existed,
//! and every log of a database-0-only workload) is entirely database 0.
//!
//! Writer rules (`Aof::append_in_db`): a SELECT is appended before a record whose database
//! differs from the one the log is in. After a rewrite switch the log's database is
//! unknown (the base may end anywhere), so the first record of the new incr gets a SELECT —
//! unless the log never used a database other than 0, in which case nothing changes and no
//! SELECT is ever written. At open, the database is the one the replay ended in.
//!
//! What can fail here: appending the SELECT record (the same errors as any append).

use std::cell::Cell;

use bytes::Bytes;

use super::{Aof, AofError, Lsn};
use crate::io::{Clock, Disk, Spawn};

/// The record that switches the log to database `db`: `SELECT <db>`.
pub fn select_record(db: usize) -> Vec<Bytes> {
    vec![Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())]
}

/// `Some(Ok(db))` when `args` is a SELECT record, `Some(Err(text))` for a malformed one
/// (wrong arity or a non-decimal index), `None` for any other record.
pub fn parse_select(args: &[Bytes]) -> Option<Result<usize, String>> {
    let name = args.first()?;
    if !name.eq_ignore_ascii_case(b"select") {
        return None;
    }
    let parsed = match args {
        [_, index] => std::str::from_utf8(index)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok()),
        _ => None,
    };
    Some(parsed.ok_or_else(|| {
        format!(
            "malformed SELECT record ({} arguments)",
            args.len().saturating_sub(1)
        )
    }))
}

/// The writer's view of the log's current database.
#[derive(Debug)]
pub(crate) struct SelectedDb {
    /// The database the log is in after the last appended record; `None`: unknown (a
    /// SELECT must come first).
    current: Cell<Option<usize>>,
    /// True once the log (replayed or appended) used a database other than 0.
    used_nonzero: Cell<bool>,
}

impl Default for SelectedDb {
    fn default() -> SelectedDb {
        SelectedDb {
            current: Cell::new(Some(0)),
            used_nonzero: Cell::new(false),
        }
    }
}

impl SelectedDb {
    /// Follows the replayed records (start-up): call for each, in order.
    pub(crate) fn observe(&self, args: &[Bytes]) {
        if let Some(Ok(db)) = parse_select(args) {
            self.current.set(Some(db));
            if db != 0 {
                self.used_nonzero.set(true);
            }
        }
    }

    /// Takes over what a replay observed (start-up, before any append).
    pub(crate) fn restore(&self, observed: &SelectedDb) {
        self.current.set(observed.current.get());
        self.used_nonzero.set(observed.used_nonzero.get());
    }

    /// At a rewrite switch: the new incr follows a base that may end in any database.
    pub(crate) fn on_switch(&self) {
        if self.used_nonzero.get() {
            self.current.set(None);
        }
    }
}

impl<I: Clock + Disk + Spawn + Clone + 'static> Aof<I> {
    /// Appends `args` as a record of database `db`, preceded by a `SELECT db` record when
    /// the log is in another database (see the module doc). Returns the LSN of `args`'s
    /// record. Errors: as [`Aof::append`] (a SELECT already appended stays; harmless).
    pub fn append_in_db(&self, db: usize, args: &[Bytes]) -> Result<Lsn, AofError> {
        let selected = &self.shared.selected_db;
        if selected.current.get() != Some(db) {
            self.append(&select_record(db))?;
            selected.current.set(Some(db));
            if db != 0 {
                selected.used_nonzero.set(true);
            }
        }
        self.append(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_records_parse_and_round_trip() {
        assert_eq!(parse_select(&select_record(7)), Some(Ok(7)));
        let lower = vec![Bytes::from_static(b"select"), Bytes::from_static(b"0")];
        assert_eq!(parse_select(&lower), Some(Ok(0)));
        let set = vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k")];
        assert_eq!(parse_select(&set), None);
        for bad in [&b"-1"[..], b"x", b"", b"1.0"] {
            let record = vec![Bytes::from_static(b"SELECT"), Bytes::copy_from_slice(bad)];
            assert!(matches!(parse_select(&record), Some(Err(_))), "{bad:?}");
        }
        assert!(matches!(
            parse_select(&[Bytes::from_static(b"SELECT")]),
            Some(Err(_))
        ));
    }

    /// Appends `(db, i)` records in order and syncs them.
    fn append_in(
        io: &crate::io::mem::MemIo,
        aof: &Aof<crate::io::mem::MemIo>,
        records: &[(usize, u64)],
    ) {
        let aof = aof.clone();
        let records = records.to_vec();
        io.run(async move {
            for (db, i) in records {
                aof.append_in_db(db, &crate::persist::tests::cmd(i))
                    .expect("append");
            }
            aof.flush_and_sync().await.expect("sync");
        })
        .expect("append stalled");
    }

    fn names(seen: &[(Lsn, Vec<Bytes>)]) -> Vec<String> {
        seen.iter()
            .map(|(_, args)| String::from_utf8_lossy(&args.join(&b' ')).into_owned())
            .collect()
    }

    #[test]
    fn the_log_selects_only_when_the_database_changes_and_resumes_after_reopen() {
        use crate::persist::tests::{open, opts};
        use crate::server::config::FsyncPolicy;
        let io = crate::io::mem::MemIo::new();
        let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
        append_in(&io, &aof, &[(0, 1), (0, 2)]);
        assert_eq!(aof.last_lsn(), 2, "database 0 only: no SELECT record");
        append_in(&io, &aof, &[(3, 3), (3, 4), (0, 5), (3, 6)]);
        drop(aof);
        let (aof, _, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
        assert_eq!(
            names(&seen),
            [
                "SET key:1 value-1",
                "SET key:2 value-2",
                "SELECT 3",
                "SET key:3 value-3",
                "SET key:4 value-4",
                "SELECT 0",
                "SET key:5 value-5",
                "SELECT 3",
                "SET key:6 value-6",
            ]
        );
        // Reopened in database 3: a database-3 record needs no SELECT, a database-0 one does.
        append_in(&io, &aof, &[(3, 7), (0, 8)]);
        drop(aof);
        let (_, _, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
        assert_eq!(
            names(&seen[9..]),
            ["SET key:7 value-7", "SELECT 0", "SET key:8 value-8"]
        );
    }

    #[test]
    fn switch_forgets_the_database_only_after_a_nonzero_one() {
        let selected = SelectedDb::default();
        selected.on_switch();
        assert_eq!(
            selected.current.get(),
            Some(0),
            "db-0-only logs never SELECT"
        );
        selected.observe(&select_record(3));
        assert_eq!(selected.current.get(), Some(3));
        selected.observe(&select_record(0));
        selected.on_switch();
        assert_eq!(selected.current.get(), None);
    }
}
