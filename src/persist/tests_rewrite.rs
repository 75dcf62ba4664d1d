//! Unit tests of the multi-part log on the in-memory disk: the switch to a new incr keeps
//! LSNs continuous and every record in exactly one file; the torn-tail rule across incrs;
//! the manifest's LSN floor; base files; `check-aof` verdicts and `--fix`.

use std::path::PathBuf;

use bytes::Bytes;

use super::tests::{append_acked, cmd, opts, Record};
use super::*;
use crate::io::mem::MemIo;
use crate::keyspace::{hash::HashValue, Db, Value};

const INCR_A: &str = "shard-000.1.incr.aof";
const INCR_B: &str = "shard-000.2.incr.aof";

fn parts(incrs: &[&str], lsn: Lsn) -> ShardParts {
    ShardParts {
        base: None,
        incrs: incrs.iter().map(|s| s.to_string()).collect(),
        lsn,
    }
}

fn path(name: &str) -> PathBuf {
    opts(FsyncPolicy::Always).dir.join(name)
}

fn open_parts(
    io: &MemIo,
    p: ShardParts,
) -> Result<(Aof<MemIo>, RecoveryReport, Vec<Record>), AofError> {
    let world = io.clone();
    io.run(async move {
        world
            .create_dir_all(&opts(FsyncPolicy::Always).dir)
            .await
            .unwrap();
        for name in &p.incrs {
            let _ = world
                .open(&path(name), OpenMode::CreateReadWrite)
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let opened = Aof::open_parts(world, opts(FsyncPolicy::Always), &p, &mut |lsn, args| {
            seen.push((lsn, args));
            Ok(())
        })
        .await;
        opened.map(|(aof, report)| (aof, report, seen))
    })
    .expect("open stalled")
}

/// Writes 1..=5 into A, switches to B, writes 6..=10 into B.
fn two_incrs(io: &MemIo) -> Aof<MemIo> {
    let (aof, _, _) = open_parts(io, parts(&[INCR_A], 0)).unwrap();
    append_acked(io, &aof, 1..6);
    let a = aof.clone();
    io.run(async move { a.prepare_incr(INCR_B).await })
        .unwrap()
        .unwrap();
    // Records appended before the switch but not yet written go to A.
    let before = aof.append(&cmd(100)).unwrap();
    assert_eq!(aof.switch_to_prepared().unwrap(), before);
    append_acked(io, &aof, 6..10);
    assert!(!aof.switch_pending());
    assert_eq!(aof.current_path(), path(INCR_B));
    aof
}

#[test]
fn switch_keeps_lsns_continuous_and_each_record_in_one_file() {
    let io = MemIo::new();
    let aof = two_incrs(&io);
    drop(aof);
    io.crash();
    let (_, report, seen) = open_parts(&io, parts(&[INCR_A, INCR_B], 0)).unwrap();
    let lsns: Vec<Lsn> = seen.iter().map(|(l, _)| *l).collect();
    assert_eq!(lsns, (1..=10).collect::<Vec<_>>());
    assert_eq!(
        seen[5].1,
        cmd(100),
        "the pre-switch record is in A, before B's records"
    );
    assert_eq!(report.last_lsn, 10);
    // B alone starts at LSN 7: it never holds A's records.
    let b = io.durable_bytes(&path(INCR_B)).unwrap();
    let first = format::FrameHeader::parse(&b[FILE_HEADER_LEN_BYTES..]);
    assert_eq!(first.lsn, 7);
}

#[test]
fn torn_tail_in_an_earlier_incr_is_truncated_only_if_later_incrs_are_empty() {
    let io = MemIo::new();
    let (aof, _, _) = open_parts(&io, parts(&[INCR_A], 0)).unwrap();
    append_acked(&io, &aof, 1..4);
    drop(aof);
    // A torn tail on A, then an empty (header-only) B: accepted, truncated.
    let mut a = io.durable_bytes(&path(INCR_A)).unwrap();
    let good_len = a.len();
    a.extend_from_slice(&[0xAB; 40]);
    io.put_file(&path(INCR_A), a);
    let (aof, report, seen) = open_parts(&io, parts(&[INCR_A, INCR_B], 0)).unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(report.truncated_bytes, 40);
    assert_eq!(io.file_bytes(&path(INCR_A)).unwrap().len(), good_len);
    // Appends continue in B at LSN 4.
    assert_eq!(append_acked(&io, &aof, 4..5), vec![4]);
    drop(aof);
    // Now B holds a record: a torn tail in A would be corruption.
    let mut a = io.durable_bytes(&path(INCR_A)).unwrap();
    a.extend_from_slice(&[0xAB; 40]);
    io.put_file(&path(INCR_A), a);
    let err = open_parts(&io, parts(&[INCR_A, INCR_B], 0))
        .err()
        .expect("refused");
    assert!(
        matches!(&err, AofError::Corrupt { path: p, .. } if *p == path(INCR_A)),
        "{err}"
    );
}

#[test]
fn a_log_ending_below_the_manifest_lsn_is_refused() {
    let io = MemIo::new();
    let (aof, _, _) = open_parts(&io, parts(&[INCR_A], 0)).unwrap();
    append_acked(&io, &aof, 1..4);
    drop(aof);
    assert!(open_parts(&io, parts(&[INCR_A], 3)).is_ok());
    let err = open_parts(&io, parts(&[INCR_A], 9)).err().expect("refused");
    assert!(err.to_string().contains("manifest recorded LSN 9"), "{err}");
}

#[test]
fn base_round_trips_and_collections_become_commands() {
    let io = MemIo::new();
    let mut db = Db::new(7);
    db.insert(Bytes::from("a"), Value::Str(Bytes::from("1")), None);
    db.insert(
        Bytes::from("b"),
        Value::Str(Bytes::from("2")),
        Some(u64::MAX / 2),
    );
    let o = opts(FsyncPolicy::Always);
    let world = io.clone();
    let (o2, db2) = (o.clone(), db.clone());
    let written = io
        .run(async move {
            world.create_dir_all(&o2.dir).await.unwrap();
            write_base(
                &world,
                &o2,
                "shard-000.3.base.aof",
                std::slice::from_ref(&db2),
                42,
                0,
            )
            .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(written.records, 2);
    // Recovery: base covers LSN 42, the incr continues at 43.
    let mut p = parts(&[INCR_B], 0);
    p.base = Some("shard-000.3.base.aof".into());
    let (aof, report, seen) = open_parts(&io, p.clone()).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].1[0], Bytes::from("SET"));
    assert_eq!(report.last_lsn, 42);
    assert_eq!(append_acked(&io, &aof, 0..1), vec![43]);
    drop(aof);
    // A damaged base is corruption (never a torn tail).
    let mut base = io.durable_bytes(&path("shard-000.3.base.aof")).unwrap();
    let last = base.len() - 1;
    base[last] ^= 1;
    io.put_file(&path("shard-000.3.base.aof"), base);
    assert!(matches!(
        open_parts(&io, p).err(),
        Some(AofError::Corrupt { .. })
    ));
    // Collections are written as reconstruction commands (HSET … in chunks).
    let mut hash = HashValue::default();
    hash.insert(Bytes::from("f"), Bytes::from("v"));
    db.insert(Bytes::from("h"), Value::Hash(hash), None);
    let world = io.clone();
    let written = io
        .run(async move {
            write_base(
                &world,
                &o,
                "shard-000.4.base.aof",
                std::slice::from_ref(&db),
                1,
                0,
            )
            .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(written.records, 3, "two strings and one HSET");
}

#[test]
fn check_aof_reports_torn_tails_and_fixes_only_them() {
    let io = MemIo::new();
    let dir = opts(FsyncPolicy::Always).dir;
    let m = Manifest {
        seq: 2,
        shards: vec![parts(&[INCR_A, INCR_B], 0)],
    };
    let (world, d, m2) = (io.clone(), dir.clone(), m.clone());
    let aof = two_incrs(&io);
    drop(aof);
    io.run(async move { manifest::commit(&world, &d, &m2).await })
        .unwrap()
        .unwrap();
    let check = |fix: bool| {
        let (world, d) = (io.clone(), dir.clone());
        io.run(async move { check::check_aof(&world, &d, fix).await })
            .unwrap()
    };
    let good = check(false);
    assert!(good.ok, "{:?}", good.lines);
    assert_eq!(good.lines.len(), 3);
    // Torn tail on the last incr: TORN (exit 1), --fix truncates, then OK.
    let mut b = io.file_bytes(&path(INCR_B)).unwrap();
    let good_len = b.len();
    b.extend_from_slice(&[0u8; 30]);
    io.put_file(&path(INCR_B), b);
    let torn = check(false);
    assert!(
        !torn.ok && torn.lines.iter().any(|l| l.contains("TORN")),
        "{:?}",
        torn.lines
    );
    let fixed = check(true);
    assert!(
        fixed.ok && fixed.lines.iter().any(|l| l.contains("FIXED")),
        "{:?}",
        fixed.lines
    );
    assert_eq!(io.file_bytes(&path(INCR_B)).unwrap().len(), good_len);
    // Corruption in the middle of A: BAD, and --fix leaves it alone.
    let mut a = io.file_bytes(&path(INCR_A)).unwrap();
    let len = a.len();
    a[FILE_HEADER_LEN_BYTES + 30] ^= 0x10;
    io.put_file(&path(INCR_A), a);
    let bad = check(true);
    assert!(
        !bad.ok && bad.lines.iter().any(|l| l.contains("BAD")),
        "{:?}",
        bad.lines
    );
    assert_eq!(io.file_bytes(&path(INCR_A)).unwrap().len(), len);
}
