//! Unit tests of AOF recovery on the in-memory disk (`io/mem.rs`): round trips, torn
//! tails at every byte, corruption of fsynced data, LSN continuity, header checks.
//! Shared helpers for `tests_writer.rs` live here too.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::format::{FileHeader, FrameHeader, FILE_HEADER_LEN_BYTES};
use super::*;
use crate::io::mem::MemIo;

pub(super) type Record = (Lsn, Vec<Bytes>);

pub(super) fn opts(fsync: FsyncPolicy) -> AofOptions {
    AofOptions {
        dir: PathBuf::from("data/appendonlydir"),
        shard_id: 0,
        shard_count: 1,
        fsync,
        fsync_timeout: Duration::from_secs(5),
        buffer_bytes_max: BUFFER_BYTES_MAX_DEFAULT,
        ack_before_fsync_defect: false,
        lsn_reuse_defect: false,
        unbounded_ack_wait_defect: false,
        everysec_starved_defect: false,
        append_after_torn_write_defect: false,
    }
}

pub(super) fn aof_path() -> PathBuf {
    opts(FsyncPolicy::Always).path()
}

/// Opens the AOF, collecting the replayed records.
pub(super) fn open(
    io: &MemIo,
    opts: AofOptions,
) -> Result<(Aof<MemIo>, RecoveryReport, Vec<Record>), AofError> {
    let world = io.clone();
    io.run(async move {
        let mut seen = Vec::new();
        let opened = Aof::open(world, opts, &mut |lsn, args| {
            seen.push((lsn, args));
            Ok(())
        })
        .await;
        opened.map(|(aof, report)| (aof, report, seen))
    })
    .expect("open stalled")
}

pub(super) fn cmd(i: u64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"SET"),
        Bytes::from(format!("key:{i}")),
        Bytes::from(format!("value-{i}")),
    ]
}

/// Appends `cmd(i)` for each i and waits for each ack in turn.
pub(super) fn append_acked(io: &MemIo, aof: &Aof<MemIo>, range: std::ops::Range<u64>) -> Vec<Lsn> {
    let aof = aof.clone();
    io.run(async move {
        let mut lsns = Vec::new();
        for i in range {
            let lsn = aof.append(&cmd(i)).expect("append");
            aof.wait_ack(lsn).await.expect("wait_ack");
            lsns.push(lsn);
        }
        lsns
    })
    .expect("append stalled")
}

/// Offsets of the frames in a well-formed log.
pub(super) fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut pos = FILE_HEADER_LEN_BYTES;
    while pos + FRAME_HEADER_LEN_BYTES <= bytes.len() {
        offsets.push(pos);
        pos += FrameHeader::parse(&bytes[pos..]).frame_len() as usize;
    }
    offsets
}

/// A log of `n` records written under `always`, each acknowledged before the next.
fn make_log(n: u64) -> Vec<u8> {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    append_acked(&io, &aof, 1..n + 1);
    io.file_bytes(&aof_path()).unwrap()
}

#[test]
fn new_log_round_trips_records_in_order() {
    let io = MemIo::new();
    let (aof, report, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            records: 0,
            last_lsn: 0,
            bytes: 32,
            truncated_bytes: 0
        }
    );
    assert!(seen.is_empty());
    let odd = vec![
        Bytes::from_static(b"set"),
        Bytes::from_static(b"\r\n\0*$"),
        Bytes::new(),
    ];
    let a = aof.clone();
    let lsns = io
        .run(async move {
            let l1 = a.append(&cmd(1)).unwrap();
            let l2 = a.append(&odd).unwrap();
            let l3 = a.append(&cmd(3)).unwrap();
            a.flush_and_sync().await.unwrap();
            vec![l1, l2, l3]
        })
        .unwrap();
    assert_eq!(lsns, vec![1, 2, 3]);
    let size = aof.stats().current_size_bytes;
    drop(aof);
    let (aof, report, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    let odd = vec![
        Bytes::from_static(b"set"),
        Bytes::from_static(b"\r\n\0*$"),
        Bytes::new(),
    ];
    assert_eq!(seen, vec![(1, cmd(1)), (2, odd), (3, cmd(3))]);
    assert_eq!(
        report,
        RecoveryReport {
            records: 3,
            last_lsn: 3,
            bytes: size,
            truncated_bytes: 0
        }
    );
    assert_eq!(io.file_bytes(&aof_path()).unwrap().len() as u64, size);
    assert_eq!(aof.last_lsn(), 3);
}

#[test]
fn file_header_names_shard_and_shard_count() {
    let io = MemIo::new();
    let mut o = opts(FsyncPolicy::Everysec);
    o.shard_id = 2;
    o.shard_count = 4;
    let (_aof, _, _) = open(&io, o.clone()).unwrap();
    let bytes = io.durable_bytes(&o.path()).unwrap();
    assert!(o.path().ends_with("shard-002.aof"));
    let header = FileHeader::decode(&bytes).unwrap();
    assert_eq!(
        (header.shard_id, header.shard_count, header.base_lsn),
        (2, 4, 0)
    );
}

#[test]
fn watermark_in_each_frame_is_the_last_fsynced_lsn() {
    let bytes = make_log(4);
    let marks: Vec<(Lsn, Lsn)> = frame_offsets(&bytes)
        .iter()
        .map(|&o| FrameHeader::parse(&bytes[o..]))
        .map(|h| (h.lsn, h.durable_lsn))
        .collect();
    assert_eq!(marks, vec![(1, 0), (2, 1), (3, 2), (4, 3)]);
}

#[test]
fn torn_tail_at_every_byte_of_the_last_frame_is_truncated() {
    let bytes = make_log(3);
    let last = frame_offsets(&bytes)[2];
    for cut in last..bytes.len() {
        for zero_fill in [false, true] {
            let io = MemIo::new();
            let mut torn = bytes[..cut].to_vec();
            if zero_fill {
                torn.resize(bytes.len(), 0);
            }
            let torn_len = torn.len();
            io.put_file(&aof_path(), torn);
            let (aof, report, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
            assert_eq!(seen, vec![(1, cmd(1)), (2, cmd(2))], "cut at {cut}");
            assert_eq!(report.last_lsn, 2);
            assert_eq!(
                report.truncated_bytes,
                (torn_len - last) as u64,
                "cut at {cut}"
            );
            assert_eq!(
                io.durable_bytes(&aof_path()).unwrap(),
                bytes[..last].to_vec()
            );
            // The next record reuses no LSN on disk: it is last good + 1.
            assert_eq!(append_acked(&io, &aof, 7..8), vec![3]);
        }
    }
}

#[test]
fn bit_flip_in_fsynced_middle_frame_refuses_to_start() {
    let bytes = make_log(5);
    let offsets = frame_offsets(&bytes);
    // Payload byte, LSN byte and length byte of frame 2 (LSN 2).
    for delta in [30, 9, 5] {
        let io = MemIo::new();
        let mut bad = bytes.clone();
        bad[offsets[1] + delta] ^= 0x10;
        io.put_file(&aof_path(), bad.clone());
        let error = open(&io, opts(FsyncPolicy::Always))
            .err()
            .expect("must refuse");
        match &error {
            AofError::Corrupt { path, offset, .. } => {
                assert_eq!(*offset, offsets[1] as u64);
                assert_eq!(path, &aof_path());
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let text = error.to_string();
        assert!(
            text.contains("shard-000.aof") && text.contains("check-aof"),
            "{text}"
        );
        assert!(text.contains(&format!("offset {}", offsets[1])), "{text}");
        assert_eq!(
            io.file_bytes(&aof_path()).unwrap(),
            bad,
            "a refused file is not modified"
        );
    }
}

#[test]
fn bit_flip_in_unsynced_tail_with_old_watermarks_is_a_torn_tail() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::No)).unwrap();
    append_acked(&io, &aof, 1..3);
    let a = aof.clone();
    io.run(async move { a.flush_and_sync().await })
        .unwrap()
        .unwrap();
    append_acked(&io, &aof, 3..6);
    assert_eq!(aof.stats().durable_lsn, 2);
    drop(aof);
    let mut bytes = io.file_bytes(&aof_path()).unwrap();
    let offsets = frame_offsets(&bytes);
    for &o in &offsets[2..] {
        assert_eq!(FrameHeader::parse(&bytes[o..]).durable_lsn, 2);
    }
    bytes[offsets[2] + 30] ^= 0x01;
    let total = bytes.len();
    io.put_file(&aof_path(), bytes);
    let (_aof, report, seen) = open(&io, opts(FsyncPolicy::No)).unwrap();
    assert_eq!(seen, vec![(1, cmd(1)), (2, cmd(2))]);
    assert_eq!(report.truncated_bytes, (total - offsets[2]) as u64);
    assert_eq!(io.file_bytes(&aof_path()).unwrap().len(), offsets[2]);
}

#[test]
fn garbage_and_frames_of_another_file_after_the_tail_are_torn() {
    // A tail of random-looking bytes, then a well-formed frame from ANOTHER file (other
    // salt) claiming a high watermark: the salt keeps it from validating here.
    let bytes = make_log(3);
    let mut foreign = Vec::new();
    let foreign_args = cmd(9);
    super::format::encode_frame(&mut foreign, 0x1234_5678, 4, 3, &foreign_args).unwrap();
    let mut tail: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    tail.extend_from_slice(&foreign);
    let mut file = bytes.clone();
    file.extend_from_slice(&tail);
    let io = MemIo::new();
    io.put_file(&aof_path(), file);
    let (_aof, report, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(report.truncated_bytes, tail.len() as u64);
    assert_eq!(io.file_bytes(&aof_path()).unwrap(), bytes);
}

#[test]
fn lsns_continue_after_restart() {
    let io = MemIo::new();
    let (aof, _, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(append_acked(&io, &aof, 1..4), vec![1, 2, 3]);
    drop(aof);
    let (aof, report, _) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!((report.last_lsn, aof.last_lsn()), (3, 3));
    assert_eq!(append_acked(&io, &aof, 4..6), vec![4, 5]);
    drop(aof);
    let (_aof, _, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
    let lsns: Vec<Lsn> = seen.iter().map(|r| r.0).collect();
    assert_eq!(lsns, vec![1, 2, 3, 4, 5]);
}

#[test]
fn shard_count_mismatch_refuses_with_an_actionable_error() {
    let io = MemIo::new();
    let mut o = opts(FsyncPolicy::Always);
    o.shard_count = 2;
    drop(open(&io, o.clone()).unwrap());
    o.shard_count = 4;
    let error = open(&io, o).err().expect("must refuse");
    assert_eq!(
        error,
        AofError::ShardCountMismatch {
            path: aof_path(),
            found: 2,
            expected: 4
        }
    );
    assert!(error.to_string().contains("--shards 2"));
}

#[test]
fn file_of_another_shard_is_refused() {
    let io = MemIo::new();
    let mut shard0 = opts(FsyncPolicy::Always);
    shard0.shard_count = 2;
    drop(open(&io, shard0.clone()).unwrap());
    let mut shard1 = shard0.clone();
    shard1.shard_id = 1;
    io.put_file(&shard1.path(), io.file_bytes(&shard0.path()).unwrap());
    match open(&io, shard1) {
        Err(AofError::Corrupt {
            offset: 0, detail, ..
        }) => assert!(detail.contains("shard 0"), "{detail}"),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn never_synced_header_is_rewritten_but_a_bad_header_before_frames_refuses() {
    for stub in [vec![], b"TDMK".to_vec(), vec![0u8; 32]] {
        let io = MemIo::new();
        io.put_file(&aof_path(), stub);
        let (_aof, report, seen) = open(&io, opts(FsyncPolicy::Always)).unwrap();
        assert!(seen.is_empty());
        assert_eq!(report.bytes, 32);
        assert!(FileHeader::decode(&io.durable_bytes(&aof_path()).unwrap()).is_ok());
    }
    let mut bytes = make_log(2);
    bytes[3] ^= 0xFF;
    let io = MemIo::new();
    io.put_file(&aof_path(), bytes);
    assert!(matches!(
        open(&io, opts(FsyncPolicy::Always)),
        Err(AofError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn replay_error_aborts_start_up() {
    let io = MemIo::new();
    io.put_file(&aof_path(), make_log(3));
    let world = io.clone();
    let result = io
        .run(async move {
            let mut replay = |lsn: Lsn, _args: Vec<Bytes>| {
                if lsn == 2 {
                    Err("boom".to_string())
                } else {
                    Ok(())
                }
            };
            Aof::open(world, opts(FsyncPolicy::Always), &mut replay)
                .await
                .map(|_| ())
        })
        .unwrap();
    assert_eq!(
        result,
        Err(AofError::Replay {
            path: aof_path(),
            lsn: 2,
            detail: "boom".to_string()
        })
    );
}

#[test]
fn invalid_options_are_refused() {
    let io = MemIo::new();
    let mut o = opts(FsyncPolicy::Always);
    o.shard_id = 1;
    assert!(matches!(open(&io, o), Err(AofError::InvalidOptions { .. })));
}

#[test]
fn error_replies_match_redis() {
    let failed = AofError::Failed {
        cause: "No space left on device".to_string(),
    };
    assert_eq!(
        failed.to_reply(),
        Frame::error("MISCONF Errors writing to the AOF file: No space left on device")
    );
    assert!(matches!(AofError::Timeout.to_reply(), Frame::Error(text) if text.starts_with("ERR ")));
    let enospc = std::io::Error::from_raw_os_error(28);
    assert_eq!(
        super::writer::strerror_text(&enospc),
        "No space left on device"
    );
    let custom = std::io::Error::other("injected (EIO)");
    assert_eq!(super::writer::strerror_text(&custom), "injected (EIO)");
}

/// A small deterministic generator for the crash property test.
fn next_rand(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn sized_cmd(i: u64, len: usize) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"SET"),
        Bytes::from(format!("k{i}")),
        Bytes::from(vec![b'a' + (i % 26) as u8; len]),
    ]
}

/// The image a machine crash could leave: the durable prefix intact; every 512-byte
/// sector of the unsynced region independently new, old (zeros) or garbage; any length
/// between the durable and the current length.
fn crash_image(durable: &[u8], current: &[u8], rng: &mut u64) -> Vec<u8> {
    const SECTOR_BYTES: usize = 512;
    let durable_len = durable.len();
    let span = (current.len() - durable_len) as u64;
    let len = durable_len + (next_rand(rng) % (span + 1)) as usize;
    let mut image = current[..len].to_vec();
    let mut sector_start = durable_len - durable_len % SECTOR_BYTES;
    while sector_start < len {
        let from = sector_start.max(durable_len);
        let to = (sector_start + SECTOR_BYTES).min(len);
        match next_rand(rng) % 3 {
            0 => {}
            1 => image[from..to].fill(0),
            _ => image[from..to]
                .iter_mut()
                .for_each(|b| *b = next_rand(rng) as u8),
        }
        sector_start += SECTOR_BYTES;
    }
    image
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
    #[test]
    fn machine_crash_never_reads_as_corruption_and_keeps_every_synced_record(seed in proptest::prelude::any::<u64>()) {
        let mut rng = seed;
        let policy = if seed % 2 == 0 { FsyncPolicy::Everysec } else { FsyncPolicy::No };
        let io = MemIo::new();
        let (aof, _, _) = open(&io, opts(policy)).unwrap();
        let mut written: Vec<Vec<Bytes>> = Vec::new();
        let rounds = 1 + next_rand(&mut rng) % 4;
        for _ in 0..rounds {
            let n = next_rand(&mut rng) % 6;
            let mut batch: Vec<Vec<Bytes>> = Vec::new();
            for _ in 0..n {
                let c = sized_cmd(written.len() as u64, (next_rand(&mut rng) % 700) as usize);
                written.push(c.clone());
                batch.push(c);
            }
            let a = aof.clone();
            let sync = next_rand(&mut rng) % 2 == 0;
            io.run(async move {
                for c in batch {
                    let lsn = a.append(&c).unwrap();
                    a.wait_ack(lsn).await.unwrap();
                }
                if sync {
                    a.flush_and_sync().await.unwrap();
                }
            }).unwrap();
        }
        let durable_lsn = aof.stats().durable_lsn;
        drop(aof);
        let durable = io.durable_bytes(&aof_path()).unwrap();
        let current = io.file_bytes(&aof_path()).unwrap();
        let image = crash_image(&durable, &current, &mut rng);
        let after = MemIo::new();
        after.put_file(&aof_path(), image);
        let (_aof, report, seen) = open(&after, opts(policy)).expect("a crash is never corruption");
        proptest::prop_assert!(report.last_lsn >= durable_lsn);
        let expected: Vec<Record> = written.iter().cloned().enumerate().map(|(i, c)| (i as Lsn + 1, c)).take(seen.len()).collect();
        proptest::prop_assert_eq!(seen, expected);
    }
}
