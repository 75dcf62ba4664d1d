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
