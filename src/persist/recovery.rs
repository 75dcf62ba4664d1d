//! Start-up recovery of one shard's AOF: validate (or create) the file header, replay every
//! valid record in LSN order, then tell a torn tail (truncate it, warn, continue) from
//! corruption in fsynced data (refuse to start).
//!
//! The procedure (docs/formats.md, "Recovery"):
//!
//! 1. If the file is at most one header long and the header is not valid, it was never
//!    synced (a frame is only written after the header's fsync): write a fresh header
//!    (`base_lsn` 0, a new salt) and fsync it. A longer file with a bad header is corrupt.
//! 2. Check the header: a different shard count → `ShardCountMismatch`; another shard's
//!    id or an unknown version → `Corrupt`.
//! 3. Scan frames from offset 32, expecting LSN `base_lsn + 1`. A frame is valid when its
//!    24-byte header is present, `payload_len <= RECORD_PAYLOAD_MAX_BYTES`, the payload is
//!    present, the CRC (salt + bytes after the CRC field) matches and `lsn` is the
//!    previous LSN + 1. Replay each valid record (decode failure → `Corrupt`, replay error
//!    → `Replay`). Stop at the first invalid frame: offset X, last good LSN g.
//! 4. If the file ends exactly at X, the log is clean.
//! 5. Otherwise search the bytes from X on for a frame whose CRC checks, with
//!    `g < durable_lsn < lsn` (candidate offsets advance byte by byte; after a valid frame
//!    they hop over it, so records embedded in payloads are not candidates). If one exists,
//!    the writer knew LSN g+1 — the frame at X — was fsynced when it wrote that frame, so
//!    the bad bytes are corruption of durable data → `Corrupt { offset: X }`.
//! 6. Otherwise the bytes from X on were never fsynced (a torn tail): truncate the file to
//!    X and log it with `tracing::warn!` (path, offset, bytes dropped). Unless two more
//!    reads of the tail differ or find the frame at X valid: a transient read error (a
//!    flipped bit) is refused as an IO error (`Io { op: "read" }`), never truncated.
//! 7. fsync the file (always: makes the truncation and the recovered prefix durable, so the
//!    writer may publish `durable_lsn = g`). The next LSN is g + 1 (predecessor bug 3).
//!
//! Why it is exact under a machine crash: the fsynced prefix survives intact, so g is at
//! least the durable LSN D at the crash, and no frame on disk carries a watermark above D
//! (watermarks are only ever LSNs already fsynced). So step 5 never fires on crash damage
//! and step 6 never cuts below D.
//!
//! What can fail here: IO errors (`AofError::Io`), and the refusals above.

use std::path::Path;

use bytes::Bytes;

use super::format::{
    frame_crc_ok, resp_array_decode, FileHeader, FrameHeader, FILE_FLAG_BASE,
    FILE_HEADER_LEN_BYTES, FORMAT_VERSION, FRAME_HEADER_LEN_BYTES, RECORD_PAYLOAD_MAX_BYTES,
};
use super::{AofError, AofOptions, Lsn};
use crate::io::{Clock, File};

/// The smallest frame: header + `*1\r\n$0\r\n\r\n`.
const FRAME_MIN_BYTES: u64 = FRAME_HEADER_LEN_BYTES as u64 + 10;
/// Recovery reads the file through a window of at least this many bytes.
const RECOVERY_READ_WINDOW_BYTES: usize = 1024 * 1024;

/// The outcome of [`recover`].
pub(crate) struct Recovered {
    pub header: FileHeader,
    pub records: u64,
    pub last_lsn: Lsn,
    /// End of the last valid frame = the file length after recovery.
    pub end_offset: u64,
    pub truncated_bytes: u64,
    /// True if a fresh header was written (the caller syncs the directory).
    pub created: bool,
    /// Why the scan stopped before the end of the file (a torn tail not yet truncated:
    /// the caller decides, see [`truncate_torn`]).
    pub torn_reason: Option<String>,
}

/// A salt for a new file, from the clock (deterministic under the simulator). Not a
/// secret: it only makes frames of other files unlikely to validate.
pub(crate) fn fresh_salt<C: Clock>(clock: &C, shard_id: u16) -> u32 {
    let mut z = clock.wall_clock_ms() ^ (clock.monotonic().as_nanos() as u64).rotate_left(32);
    z ^= u64::from(shard_id) << 48;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// Runs steps 1–7 on `file`.
pub(crate) async fn recover<F: File>(
    file: &F,
    path: &Path,
    opts: &AofOptions,
    prev_lsn: Option<Lsn>,
    fresh_salt: u32,
    replay: &mut dyn FnMut(Lsn, Vec<Bytes>) -> Result<(), String>,
) -> Result<Recovered, AofError> {
    let io_err = |op: &'static str| move |e| AofError::io(path, op, e);
    let file_len = file.len().await.map_err(io_err("len"))?;
    let mut reader = Reader {
        file,
        file_len,
        start: 0,
        window: Vec::new(),
    };
    let header_bytes = reader
        .get(0, FILE_HEADER_LEN_BYTES)
        .await
        .map_err(io_err("read"))?;
    let decoded = header_bytes.map(FileHeader::decode);
    let header = match decoded {
        Some(Ok(header)) => header,
        Some(Err(detail)) if file_len > FILE_HEADER_LEN_BYTES as u64 => {
            return Err(AofError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                detail,
            });
        }
        _ => {
            let mut created = create(file, path, opts, fresh_salt, file_len).await?;
            created.last_lsn = prev_lsn.unwrap_or(0);
            return Ok(created);
        }
    };
    check_header(&header, path, opts)?;
    if header.flags & FILE_FLAG_BASE != 0 {
        let detail = "this is a base file where an incr file was expected".to_string();
        return Err(AofError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail,
        });
    }

    // Step 3: scan and replay. In a multi-part log an incr continues the LSNs of the file
    // before it (`prev_lsn`); a lone file starts after its header's `base_lsn`.
    let mut pos = FILE_HEADER_LEN_BYTES as u64;
    let mut last_lsn = prev_lsn.unwrap_or(header.base_lsn);
    let mut records = 0u64;
    let reason = loop {
        let frame = match reader
            .frame_at(pos, header.salt)
            .await
            .map_err(io_err("read"))?
        {
            Ok(frame) => frame,
            Err(reason) => break reason,
        };
        if frame.0.lsn != last_lsn + 1 {
            break format!("LSN {} where {} was expected", frame.0.lsn, last_lsn + 1);
        }
        let args = resp_array_decode(&frame.1).map_err(|detail| AofError::Corrupt {
            path: path.to_path_buf(),
            offset: pos,
            detail: format!(
                "record LSN {} has a valid CRC but a malformed payload: {detail}",
                frame.0.lsn
            ),
        })?;
        replay(frame.0.lsn, args).map_err(|detail| AofError::Replay {
            path: path.to_path_buf(),
            lsn: frame.0.lsn,
            detail,
        })?;
        last_lsn = frame.0.lsn;
        records += 1;
        pos += frame.0.frame_len();
    };

    // Steps 4-5 (step 6, the truncation, is the caller's: see `truncate_torn`).
    let mut torn_reason = None;
    if pos < file_len {
        if let Some((offset, later)) = find_watermark_above(&mut reader, pos, last_lsn, header.salt)
            .await
            .map_err(io_err("read"))?
        {
            let detail = format!(
                "{reason}; the record at offset {offset} (LSN {}) was written after LSN {} had \
                 been fsynced",
                later.lsn, later.durable_lsn
            );
            return Err(AofError::Corrupt {
                path: path.to_path_buf(),
                offset: pos,
                detail,
            });
        }
        if let Some(unstable) = tail_read_unstable(file, file_len, pos, header.salt)
            .await
            .map_err(io_err("read"))?
        {
            let detail = match unstable {
                TailReread::Differs => format!(
                    "the bytes from offset {pos} on read differently twice ({reason} on the \
                     first read): a transient read error, not a torn tail; refusing to truncate"
                ),
                TailReread::ValidRecord => format!(
                    "a CRC-valid record sits at offset {pos} where the log stops ({reason}): \
                     not a torn tail; refusing to truncate"
                ),
            };
            return Err(AofError::Io {
                path: path.to_path_buf(),
                op: "read",
                detail,
            });
        }
        torn_reason = Some(reason);
    }
    Ok(Recovered {
        header,
        records,
        last_lsn,
        end_offset: pos,
        truncated_bytes: file_len - pos,
        created: false,
        torn_reason,
    })
}

/// Steps 6-7: truncates a torn tail found by [`recover`] (logged with `tracing::warn!`)
/// and fsyncs the file, so the recovered prefix is durable before the writer publishes it.
pub(crate) async fn truncate_torn<F: File>(
    file: &F,
    path: &Path,
    rec: &Recovered,
) -> Result<(), AofError> {
    let io_err = |op: &'static str| move |e| AofError::io(path, op, e);
    if let Some(reason) = &rec.torn_reason {
        file.set_len(rec.end_offset)
            .await
            .map_err(io_err("set_len"))?;
        tracing::warn!(
            path = %path.display(),
            offset = rec.end_offset,
            bytes_dropped = rec.truncated_bytes,
            last_lsn = rec.last_lsn,
            reason = %reason,
            "AOF ends with a torn (never fsynced) tail: truncated it"
        );
    }
    file.sync_data().await.map_err(io_err("sync_data"))
}

/// Loads a base file (written whole and fsynced before any manifest named it, so every
/// defect is corruption, never a torn tail): header with [`FILE_FLAG_BASE`], then frames
/// numbered 1, 2, … (record indexes, not shard LSNs) up to exactly the end of the file.
/// Calls `replay(0, args)` per record. Returns `(snapshot_lsn, records)`: the shard LSN
/// the base covers (the header's `base_lsn`) and how many records it held.
pub(crate) async fn load_base<F: File>(
    file: &F,
    path: &Path,
    opts: &AofOptions,
    replay: &mut dyn FnMut(Lsn, Vec<Bytes>) -> Result<(), String>,
) -> Result<(Lsn, u64), AofError> {
    let io_err = |op: &'static str| move |e| AofError::io(path, op, e);
    let corrupt = |offset: u64, detail: String| AofError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail: format!("{detail} (base files are fsynced before use: this is corruption)"),
    };
    let file_len = file.len().await.map_err(io_err("len"))?;
    let mut reader = Reader {
        file,
        file_len,
        start: 0,
        window: Vec::new(),
    };
    let head = reader
        .get(0, FILE_HEADER_LEN_BYTES)
        .await
        .map_err(io_err("read"))?;
    let header = match head.map(FileHeader::decode) {
        Some(Ok(header)) => header,
        Some(Err(detail)) => return Err(corrupt(0, detail)),
        None => {
            return Err(corrupt(
                0,
                format!("file is {file_len} bytes, shorter than a header"),
            ))
        }
    };
    check_header(&header, path, opts)?;
    if header.flags & FILE_FLAG_BASE == 0 {
        return Err(corrupt(
            0,
            "an incr file where a base file was expected".to_string(),
        ));
    }
    let mut pos = FILE_HEADER_LEN_BYTES as u64;
    let mut records = 0u64;
    while pos < file_len {
        let (head, payload) = match reader
            .frame_at(pos, header.salt)
            .await
            .map_err(io_err("read"))?
        {
            Ok(frame) => frame,
            Err(reason) => return Err(corrupt(pos, reason)),
        };
        if head.lsn != records + 1 {
            return Err(corrupt(
                pos,
                format!(
                    "record index {} where {} was expected",
                    head.lsn,
                    records + 1
                ),
            ));
        }
        let args = resp_array_decode(&payload)
            .map_err(|d| corrupt(pos, format!("malformed payload: {d}")))?;
        replay(0, args).map_err(|detail| AofError::Replay {
            path: path.to_path_buf(),
            lsn: 0,
            detail,
        })?;
        records += 1;
        pos += head.frame_len();
    }
    Ok((header.base_lsn, records))
}

/// Step 1: a missing, empty or never-synced file gets a fresh header.
async fn create<F: File>(
    file: &F,
    path: &Path,
    opts: &AofOptions,
    salt: u32,
    old_len: u64,
) -> Result<Recovered, AofError> {
    let io_err = |op: &'static str| move |e| AofError::io(path, op, e);
    if old_len > 0 {
        tracing::warn!(path = %path.display(), bytes = old_len, "AOF header was never synced: rewriting it");
    }
    let header = FileHeader {
        version: FORMAT_VERSION,
        shard_id: opts.shard_id,
        shard_count: opts.shard_count,
        flags: 0,
        base_lsn: 0,
        salt,
    };
    file.set_len(0).await.map_err(io_err("set_len"))?;
    let bytes = header.encode().to_vec();
    let (result, _) = crate::io::write_all_at(file, bytes, 0).await;
    result.map_err(|e| AofError::io(path, "write_at", e))?;
    file.sync_data().await.map_err(io_err("sync_data"))?;
    Ok(Recovered {
        header,
        records: 0,
        last_lsn: 0,
        end_offset: FILE_HEADER_LEN_BYTES as u64,
        truncated_bytes: old_len,
        created: true,
        torn_reason: None,
    })
}

/// Step 2.
fn check_header(header: &FileHeader, path: &Path, opts: &AofOptions) -> Result<(), AofError> {
    if header.shard_count != opts.shard_count {
        return Err(AofError::ShardCountMismatch {
            path: path.to_path_buf(),
            found: header.shard_count,
            expected: opts.shard_count,
        });
    }
    if header.shard_id != opts.shard_id {
        let detail = format!(
            "the file belongs to shard {}, not shard {}; was it renamed or copied?",
            header.shard_id, opts.shard_id
        );
        return Err(AofError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail,
        });
    }
    Ok(())
}

/// Step 6's guard: a bit flipped on the way from the platter (a transient read error)
/// must not pass for a torn tail, or truncating would destroy fsynced records. Reads the
/// tail from `pos` twice more (up to `RECOVERY_READ_WINDOW_BYTES`): it is unstable when
/// the two reads differ or the frame at `pos` is valid after all.
/// Why the tail at the scan's stop is not treated as torn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TailReread {
    /// Two more reads disagree: a transient read error (e.g. a bit flip on read).
    Differs,
    /// The record there is CRC-valid (e.g. an LSN out of sequence): not a torn write.
    ValidRecord,
}

async fn tail_read_unstable<F: File>(
    file: &F,
    file_len: u64,
    pos: u64,
    salt: u32,
) -> std::io::Result<Option<TailReread>> {
    let len = (file_len - pos).min(RECOVERY_READ_WINDOW_BYTES as u64) as usize;
    let mut reads = Vec::with_capacity(2);
    for _ in 0..2 {
        let mut reader = Reader {
            file,
            file_len,
            start: 0,
            window: Vec::new(),
        };
        let bytes = reader.get(pos, len).await?.map(<[u8]>::to_vec);
        let valid = reader.frame_at(pos, salt).await?.is_ok();
        reads.push((bytes, valid));
    }
    if reads[0] != reads[1] {
        return Ok(Some(TailReread::Differs));
    }
    Ok(reads[0].1.then_some(TailReread::ValidRecord))
}

/// Step 5: the first CRC-valid frame at or after `from` with `g < durable_lsn < lsn`.
async fn find_watermark_above<F: File>(
    reader: &mut Reader<'_, F>,
    from: u64,
    g: Lsn,
    salt: u32,
) -> std::io::Result<Option<(u64, FrameHeader)>> {
    let mut pos = from;
    while pos + FRAME_HEADER_LEN_BYTES as u64 <= reader.file_len {
        let Some(head) = reader.get(pos, FRAME_HEADER_LEN_BYTES).await? else {
            break;
        };
        let head = FrameHeader::parse(head);
        // Cheap plausibility first: zeros and random garbage fail here.
        // A frame takes at least FRAME_MIN_BYTES, which bounds how far its LSN can be
        // past g; random bytes almost never pass, so the CRC runs on few candidates.
        let lsn_max = g + (reader.file_len - from) / FRAME_MIN_BYTES + 1;
        let plausible = (head.payload_len as usize) <= RECORD_PAYLOAD_MAX_BYTES
            && pos + head.frame_len() <= reader.file_len
            && head.lsn > g
            && head.lsn <= lsn_max;
        if plausible {
            if let Ok((frame, _)) = reader.frame_at(pos, salt).await? {
                if frame.durable_lsn > g && frame.durable_lsn < frame.lsn {
                    return Ok(Some((pos, frame)));
                }
                pos += frame.frame_len();
                continue;
            }
        }
        pos += 1;
    }
    Ok(None)
}

/// Reads the file through a moving window so a byte-by-byte search stays cheap.
struct Reader<'a, F> {
    file: &'a F,
    file_len: u64,
    start: u64,
    window: Vec<u8>,
}

impl<F: File> Reader<'_, F> {
    /// The `len` bytes at `pos`, or `None` if the file ends before `pos + len`.
    async fn get(&mut self, pos: u64, len: usize) -> std::io::Result<Option<&[u8]>> {
        let end = pos + len as u64;
        if end > self.file_len {
            return Ok(None);
        }
        let window_end = self.start + self.window.len() as u64;
        if pos < self.start || end > window_end {
            let want =
                (len.max(RECOVERY_READ_WINDOW_BYTES) as u64).min(self.file_len - pos) as usize;
            let mut buf = std::mem::take(&mut self.window);
            buf.clear();
            buf.reserve_exact(want);
            while buf.len() < want {
                let at = pos + buf.len() as u64;
                let (result, back) = self.file.read_at(buf, at).await;
                buf = back;
                if result? == 0 {
                    break;
                }
            }
            self.start = pos;
            self.window = buf;
            if self.window.len() < len {
                return Ok(None);
            }
        }
        let offset = (pos - self.start) as usize;
        Ok(Some(&self.window[offset..offset + len]))
    }

    /// The CRC-valid frame at `pos` (header and payload), or why there is none.
    async fn frame_at(
        &mut self,
        pos: u64,
        salt: u32,
    ) -> std::io::Result<Result<(FrameHeader, Vec<u8>), String>> {
        let Some(head) = self.get(pos, FRAME_HEADER_LEN_BYTES).await? else {
            let left = self.file_len - pos;
            return Ok(Err(format!(
                "short frame header ({left} of {FRAME_HEADER_LEN_BYTES} bytes)"
            )));
        };
        let head = FrameHeader::parse(head);
        if head.payload_len as usize > RECORD_PAYLOAD_MAX_BYTES {
            return Ok(Err(format!(
                "payload length {} over the limit",
                head.payload_len
            )));
        }
        let Some(frame) = self.get(pos, head.frame_len() as usize).await? else {
            return Ok(Err(format!(
                "truncated payload (frame needs {} bytes)",
                head.frame_len()
            )));
        };
        if !frame_crc_ok(salt, frame) {
            return Ok(Err("CRC mismatch".to_string()));
        }
        Ok(Ok((head, frame[FRAME_HEADER_LEN_BYTES..].to_vec())))
    }
}
