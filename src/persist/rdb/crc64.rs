//! CRC-64/Jones as Redis uses it for the RDB trailer (Redis `crc64.c`): reflected input
//! and output, polynomial 0xad93d23594c935a9 (reflected form 0x95ac9329ac4bc9b5), initial
//! value 0, no final xor. Check value: `crc64(b"123456789") == 0xe9c6d914c4b8d9ca`.
//!
//! The 256-entry table is computed at compile time. Nothing here can fail.

/// The Jones polynomial in reflected (LSB-first) form.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

const fn make_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u64; 256] = make_table();

/// Continues a CRC-64/Jones over `data`, starting from `crc` (0 for a fresh CRC).
pub fn crc64_update(mut crc: u64, data: &[u8]) -> u64 {
    for &byte in data {
        crc = TABLE[((crc ^ u64::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The CRC-64/Jones of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    crc64_update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_matches_redis() {
        // Redis crc64.c self-test: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data = b"This is a test of the emergency broadcast system.";
        let split = crc64_update(crc64_update(0, &data[..10]), &data[10..]);
        assert_eq!(split, crc64(data));
        assert_ne!(crc64(data), crc64(&data[1..]));
    }
}
