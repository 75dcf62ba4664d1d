//! LZF (liblzf) decompression and a simple compressor, for RDB strings stored with the
//! `0xC3` special encoding (Redis compresses strings longer than 20 bytes by default,
//! `rdbcompression yes`).
//!
//! Format (liblzf `lzf_d.c`, a fact about the format, not copied code): a sequence of
//! chunks, each starting with a control byte `c`:
//! - `c < 32`: a literal run of `c + 1` bytes follows;
//! - otherwise a back reference: `len = c >> 5` (if 7, add the next byte), offset
//!   `((c & 0x1f) << 8) + next byte + 1` back from the current output end; copy `len + 2`
//!   bytes (byte by byte: source and destination may overlap).
//!
//! What can fail: truncated chunks, references before the output start, output longer or
//! shorter than the declared uncompressed length → `Err(detail)` (the caller adds the
//! offset). Never panics; memory grows only with the output actually produced.

/// Longest back reference `lzf` emits: 7 + 255 + 2 bytes.
const REF_LEN_MAX_BYTES: usize = 264;
/// Largest back-reference distance (13 bits + 1).
const REF_OFFSET_MAX: usize = 8192;
/// Shortest match worth a back reference.
const MATCH_LEN_MIN_BYTES: usize = 3;
/// Longest literal run a control byte can announce.
const LITERAL_RUN_MAX_BYTES: usize = 32;
/// Slots in the compressor's hash table of 3-byte prefixes.
const HASH_SLOTS: usize = 1 << 14;

/// Decompresses `input` into exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    // Grow as output appears: a corrupt header may claim far more than the input yields.
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(input.len().saturating_mul(4)));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let Some(lit) = input.get(ip..ip + run) else {
                return Err(format!(
                    "LZF literal run of {run} bytes runs past the input"
                ));
            };
            if out.len() + run > out_len {
                return Err(format!("LZF output exceeds the declared {out_len} bytes"));
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let Some(&extra) = input.get(ip) else {
                    return Err("LZF back reference length byte missing".to_string());
                };
                len += usize::from(extra);
                ip += 1;
            }
            let Some(&low) = input.get(ip) else {
                return Err("LZF back reference offset byte missing".to_string());
            };
            ip += 1;
            let dist = ((ctrl & 0x1f) << 8) + usize::from(low) + 1;
            len += 2;
            if dist > out.len() {
                return Err(format!(
                    "LZF back reference {dist} bytes before the output start"
                ));
            }
            if out.len() + len > out_len {
                return Err(format!("LZF output exceeds the declared {out_len} bytes"));
            }
            let start = out.len() - dist;
            for i in 0..len {
                let byte = out[start + i];
                out.push(byte);
            }
        }
    }
    if out.len() != out_len {
        return Err(format!(
            "LZF output is {} bytes, declared {out_len}",
            out.len()
        ));
    }
    Ok(out)
}

fn hash3(data: &[u8], at: usize) -> usize {
    let v = (u32::from(data[at]) << 16) | (u32::from(data[at + 1]) << 8) | u32::from(data[at + 2]);
    (v.wrapping_mul(2_654_435_761) >> 18) as usize & (HASH_SLOTS - 1)
}

/// Compresses `input` in the LZF format. Returns `None` when the result would not be
/// smaller than the input (Redis then stores the string raw).
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut table = vec![usize::MAX; HASH_SLOTS];
    let mut lit_start = 0usize;
    let mut ip = 0usize;
    while ip + MATCH_LEN_MIN_BYTES <= input.len() {
        let slot = hash3(input, ip);
        let cand = table[slot];
        table[slot] = ip;
        let is_match = cand != usize::MAX
            && ip - cand <= REF_OFFSET_MAX
            && input[cand..cand + MATCH_LEN_MIN_BYTES] == input[ip..ip + MATCH_LEN_MIN_BYTES];
        if !is_match {
            ip += 1;
            continue;
        }
        let mut len = MATCH_LEN_MIN_BYTES;
        while ip + len < input.len()
            && len < REF_LEN_MAX_BYTES
            && input[cand + len] == input[ip + len]
        {
            len += 1;
        }
        flush_literals(&mut out, &input[lit_start..ip]);
        let dist = ip - cand - 1;
        let code = len - 2;
        if code < 7 {
            out.push(((code << 5) | (dist >> 8)) as u8);
        } else {
            out.push(((7 << 5) | (dist >> 8)) as u8);
            out.push((code - 7) as u8);
        }
        out.push((dist & 0xff) as u8);
        ip += len;
        lit_start = ip;
        if out.len() >= input.len() {
            return None;
        }
    }
    flush_literals(&mut out, &input[lit_start..]);
    (out.len() < input.len()).then_some(out)
}

fn flush_literals(out: &mut Vec<u8>, mut lits: &[u8]) {
    while !lits.is_empty() {
        let run = lits.len().min(LITERAL_RUN_MAX_BYTES);
        out.push((run - 1) as u8);
        out.extend_from_slice(&lits[..run]);
        lits = &lits[run..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_stream_decodes() {
        // literal "ab", then a back reference of length 6 at distance 2: "abababab".
        let stream = [0x01, b'a', b'b', (4 << 5) as u8, 0x01];
        assert_eq!(decompress(&stream, 8).unwrap(), b"abababab");
        assert!(decompress(&stream, 7).is_err());
        assert!(decompress(&stream, 9).is_err());
        assert!(decompress(&[0x05, b'a'], 6).is_err());
        assert!(decompress(&[(1 << 5) as u8, 0x00], 3).is_err());
    }

    #[test]
    fn compress_round_trips() {
        let samples: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello world hello world hello world hello world!".repeat(40),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..3000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ];
        for s in samples {
            match compress(&s) {
                Some(c) => {
                    assert!(c.len() < s.len());
                    assert_eq!(decompress(&c, s.len()).unwrap(), s);
                }
                None => assert!(s.len() < 4000, "repetitive input should compress"),
            }
        }
        assert!(compress(b"abc").is_none());
    }
}
