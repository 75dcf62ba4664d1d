//! The AOF's on-disk byte formats (docs/formats.md has the byte maps): the 32-byte file
//! header, the 24-byte record frame header, and the record payload — a command encoded as
//! a RESP array of bulk strings by a small private encoder/decoder (`resp_array_*`).
//!
//! Everything is little endian. A frame's CRC (crc32fast, IEEE) covers the file's 4-byte
//! salt followed by every byte of the frame after the CRC field, so a frame copied from
//! another file (or embedded in a value) does not validate here.
//!
//! What can fail here: decoding returns a `String` naming what is wrong (bad magic, header
//! CRC mismatch, unsupported version, malformed payload); nothing panics on bad input and
//! no claimed length is allocated before it is checked against the bytes present.

use bytes::Bytes;

use super::Lsn;

/// The 8 magic bytes that open every AOF file.
pub const FILE_MAGIC: [u8; 8] = *b"TDMKAOF1";
/// The file format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the file header.
pub const FILE_HEADER_LEN_BYTES: usize = 32;
/// Size of a record frame's header (before the payload).
pub const FRAME_HEADER_LEN_BYTES: usize = 24;
/// Largest record payload accepted when writing or reading (1 GiB).
pub const RECORD_PAYLOAD_MAX_BYTES: usize = 1 << 30;

/// The fixed-size header at offset 0 of a shard's AOF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version (`FORMAT_VERSION`).
    pub version: u16,
    /// The shard that owns the file.
    pub shard_id: u16,
    /// The shard count of the server that created the file.
    pub shard_count: u16,
    /// Reserved, 0 in version 1.
    pub flags: u16,
    /// The LSN just before the first frame: the first frame carries `base_lsn + 1`.
    pub base_lsn: Lsn,
    /// Mixed into every frame CRC of this file.
    pub salt: u32,
}

impl FileHeader {
    /// The 32 header bytes, CRC included.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN_BYTES] {
        let mut out = [0u8; FILE_HEADER_LEN_BYTES];
        out[0..8].copy_from_slice(&FILE_MAGIC);
        out[8..10].copy_from_slice(&self.version.to_le_bytes());
        out[10..12].copy_from_slice(&self.shard_id.to_le_bytes());
        out[12..14].copy_from_slice(&self.shard_count.to_le_bytes());
        out[14..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.base_lsn.to_le_bytes());
        out[24..28].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks a header; `Err` says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<FileHeader, String> {
        if bytes.len() < FILE_HEADER_LEN_BYTES {
            return Err(format!(
                "file header is {} bytes, expected {FILE_HEADER_LEN_BYTES}",
                bytes.len()
            ));
        }
        if bytes[0..8] != FILE_MAGIC {
            return Err("not a tidemark AOF file (bad magic, expected TDMKAOF1)".to_string());
        }
        let stored = le_u32(&bytes[28..32]);
        let actual = crc32fast::hash(&bytes[0..28]);
        if stored != actual {
            return Err(format!(
                "file header CRC mismatch (stored {stored:#010x}, computed {actual:#010x})"
            ));
        }
        let header = FileHeader {
            version: le_u16(&bytes[8..10]),
            shard_id: le_u16(&bytes[10..12]),
            shard_count: le_u16(&bytes[12..14]),
            flags: le_u16(&bytes[14..16]),
            base_lsn: le_u64(&bytes[16..24]),
            salt: le_u32(&bytes[24..28]),
        };
        if header.version != FORMAT_VERSION {
            return Err(format!(
                "unsupported AOF format version {} (this build reads version {FORMAT_VERSION})",
                header.version
            ));
        }
        Ok(header)
    }
}

/// The fixed part of a record frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// CRC stored in the frame.
    pub crc: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// The record's LSN.
    pub lsn: Lsn,
    /// Highest LSN the writer knew to be fsynced when it encoded this frame.
    pub durable_lsn: Lsn,
}

impl FrameHeader {
    /// Parses the first 24 bytes of `bytes` (the caller guarantees at least 24).
    pub fn parse(bytes: &[u8]) -> FrameHeader {
        FrameHeader {
            crc: le_u32(&bytes[0..4]),
            payload_len: le_u32(&bytes[4..8]),
            lsn: le_u64(&bytes[8..16]),
            durable_lsn: le_u64(&bytes[16..24]),
        }
    }

    /// Total frame length (header + payload) in bytes.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN_BYTES as u64 + u64::from(self.payload_len)
    }
}

/// The CRC of a frame: crc32 over `salt` (LE) then `frame[4..]`.
pub fn frame_crc(salt: u32, frame_after_crc: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(frame_after_crc);
    hasher.finalize()
}

/// True if `frame` (a whole frame: header + payload) carries a matching CRC.
pub fn frame_crc_ok(salt: u32, frame: &[u8]) -> bool {
    frame.len() >= FRAME_HEADER_LEN_BYTES && le_u32(&frame[0..4]) == frame_crc(salt, &frame[4..])
}

/// Appends one whole frame for `args` to `out`. Returns the frame length, or the payload
/// length if it exceeds [`RECORD_PAYLOAD_MAX_BYTES`] (nothing is appended then).
pub fn encode_frame(
    out: &mut Vec<u8>,
    salt: u32,
    lsn: Lsn,
    durable_lsn: Lsn,
    args: &[Bytes],
) -> Result<usize, usize> {
    let payload_len = resp_array_encoded_len(args);
    if payload_len > RECORD_PAYLOAD_MAX_BYTES {
        return Err(payload_len);
    }
    let start = out.len();
    out.reserve(FRAME_HEADER_LEN_BYTES + payload_len);
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&durable_lsn.to_le_bytes());
    resp_array_encode(out, args);
    assert_eq!(
        out.len() - start,
        FRAME_HEADER_LEN_BYTES + payload_len,
        "payload length mismatch"
    );
    let crc = frame_crc(salt, &out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out.len() - start)
}

/// Length of the RESP array-of-bulk-strings encoding of `args`.
fn resp_array_encoded_len(args: &[Bytes]) -> usize {
    let mut len = 1 + decimal_len(args.len()) + 2;
    for arg in args {
        len += 1 + decimal_len(arg.len()) + 2 + arg.len() + 2;
    }
    len
}

fn decimal_len(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Private RESP encoder: `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
fn resp_array_encode(out: &mut Vec<u8>, args: &[Bytes]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Private RESP decoder, the inverse of the encoder: the payload must be exactly one array
/// of bulk strings with at least one element. Iterative; allocation bounded by the input.
pub fn resp_array_decode(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut pos = 0;
    let count = read_prefixed_decimal(payload, &mut pos, b'*')?;
    // Each element takes at least 6 bytes ("$0\r\n\r\n"): bound the allocation.
    if count == 0 || count > (payload.len() - pos) / 6 {
        return Err(format!(
            "array length {count} does not fit a payload of {} bytes",
            payload.len()
        ));
    }
    let mut args = Vec::with_capacity(count);
    for index in 0..count {
        let len = read_prefixed_decimal(payload, &mut pos, b'$')?;
        let end = pos.checked_add(len).filter(|end| end + 2 <= payload.len());
        let Some(end) = end else {
            return Err(format!(
                "element {index}: bulk length {len} runs past the payload"
            ));
        };
        if &payload[end..end + 2] != b"\r\n" {
            return Err(format!("element {index}: bulk string not followed by CRLF"));
        }
        args.push(Bytes::copy_from_slice(&payload[pos..end]));
        pos = end + 2;
    }
    if pos != payload.len() {
        return Err(format!(
            "{} trailing bytes after the array",
            payload.len() - pos
        ));
    }
    Ok(args)
}

/// Reads `<prefix><decimal>\r\n` at `*pos`, advancing it.
fn read_prefixed_decimal(bytes: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, String> {
    const DIGITS_MAX: usize = 19;
    if bytes.get(*pos) != Some(&prefix) {
        return Err(format!(
            "expected '{}' at payload offset {}",
            prefix as char, *pos
        ));
    }
    let start = *pos + 1;
    let mut end = start;
    while end < bytes.len() && bytes[end].is_ascii_digit() && end - start < DIGITS_MAX {
        end += 1;
    }
    if end == start || bytes.get(end..end + 2) != Some(b"\r\n".as_slice()) {
        return Err(format!(
            "bad length after '{}' at payload offset {}",
            prefix as char, *pos
        ));
    }
    let mut value: usize = 0;
    for &digit in &bytes[start..end] {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(usize::from(digit - b'0')))
            .ok_or_else(|| format!("length overflows at payload offset {}", *pos))?;
    }
    *pos = end + 2;
    Ok(value)
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[0..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = FileHeader {
            version: 1,
            shard_id: 3,
            shard_count: 8,
            flags: 0,
            base_lsn: 41,
            salt: 0xDEAD_BEEF,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[0..8], b"TDMKAOF1");
        assert_eq!(FileHeader::decode(&bytes), Ok(h));
        let mut flipped = bytes;
        flipped[12] ^= 1;
        assert!(FileHeader::decode(&flipped).unwrap_err().contains("CRC"));
        let mut magic = bytes;
        magic[0] = b'X';
        assert!(FileHeader::decode(&magic).unwrap_err().contains("magic"));
        assert!(FileHeader::decode(&bytes[..31]).is_err());
    }

    #[test]
    fn frame_layout_matches_the_byte_map() {
        let mut out = vec![0xAA];
        let n = encode_frame(&mut out, 7, 5, 4, &args(&[b"SET", b"k", b""])).unwrap();
        let frame = &out[1..];
        assert_eq!(n, frame.len());
        let payload = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
        let h = FrameHeader::parse(frame);
        assert_eq!(h.payload_len as usize, payload.len());
        assert_eq!((h.lsn, h.durable_lsn), (5, 4));
        assert_eq!(&frame[24..], payload);
        assert!(frame_crc_ok(7, frame));
        assert!(!frame_crc_ok(8, frame), "the salt is part of the CRC");
        assert_eq!(
            resp_array_decode(&frame[24..]).unwrap(),
            args(&[b"SET", b"k", b""])
        );
    }

    #[test]
    fn decoder_rejects_malformed_payloads() {
        for bad in [
            &b""[..],
            b"*0\r\n",
            b"*1\r\n$3\r\nab\r\n",
            b"*1\r\n$2\r\nab\r\nX",
            b"*1\r\n$-1\r\n",
            b"*99999999999999999999\r\n",
            b"*1\r\n$99999999999999999\r\nab\r\n",
            b"+OK\r\n",
        ] {
            assert!(resp_array_decode(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn payload_round_trips(list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6)) {
            let a: Vec<Bytes> = list.into_iter().map(Bytes::from).collect();
            let mut out = Vec::new();
            encode_frame(&mut out, 1, 1, 0, &a).unwrap();
            prop_assert_eq!(resp_array_decode(&out[24..]).unwrap(), a);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = resp_array_decode(&bytes);
        }
    }
}
