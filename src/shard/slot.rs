//! Key → hash slot → shard routing, with Redis Cluster's hash slot function: CRC16
//! (XMODEM variant: polynomial 0x1021, initial value 0, no reflection, no final XOR) of the
//! key, or of its `{hash tag}`, modulo 16384 (Redis Cluster specification, "Keys
//! distribution model"). Slots map to shards in contiguous ranges.
//!
//! What can fail: nothing on input (any byte string has a slot). `slot_to_shard` asserts its
//! internal preconditions (`shards > 0`, `slot < HASH_SLOTS`): those come from
//! configuration and from `key_hash_slot`, never from clients.

/// Number of hash slots, as in Redis Cluster.
pub const HASH_SLOTS: u16 = 16384;

/// CRC16/XMODEM lookup table, built at compile time (one entry per high-byte value).
const CRC16_TABLE: [u16; 256] = build_crc16_table();

const fn build_crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// CRC16/XMODEM of `data` (`crc16(b"123456789") == 0x31C3`).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// The part of `key` that is hashed: the bytes between the first `{` and the first `}`
/// after it, if that is non-empty; otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = memchr::memchr(b'{', key) else {
        return key;
    };
    match memchr::memchr(b'}', &key[open + 1..]) {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

/// Redis Cluster hash slot of `key`, in `0..HASH_SLOTS`: `crc16(hash_tag(key)) % 16384`.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (HASH_SLOTS - 1)
}

/// The shard owning `slot` when `shards` shards split the slots into contiguous ranges:
/// `slot * shards / 16384`, in `0..shards`.
///
/// Panics (internal invariant) if `shards == 0` or `slot >= HASH_SLOTS`.
pub fn slot_to_shard(slot: u16, shards: u16) -> u16 {
    assert!(shards > 0, "slot_to_shard: shard count must be positive");
    assert!(slot < HASH_SLOTS, "slot_to_shard: slot {slot} out of range");
    (u32::from(slot) * u32::from(shards) / u32::from(HASH_SLOTS)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_test_vectors() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
        assert_eq!(crc16(b"A"), 0x58E5);
    }

    #[test]
    fn known_slots() {
        // Values as reported by `redis-cli cluster keyslot` / the cluster spec.
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"bar"), 5061);
        assert_eq!(key_hash_slot(b"hello"), 866);
        assert_eq!(key_hash_slot(b""), 0);
    }

    #[test]
    fn hash_tags() {
        let a = key_hash_slot(b"{user1000}.following");
        assert_eq!(a, key_hash_slot(b"{user1000}.followers"));
        assert_eq!(a, key_hash_slot(b"user1000"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{bar"), b"{bar");
        assert_eq!(hash_tag(b"}{x}"), b"x");
        assert_eq!(key_hash_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
    }

    #[test]
    fn slots_map_to_contiguous_shard_ranges() {
        assert_eq!(slot_to_shard(0, 1), 0);
        assert_eq!(slot_to_shard(16383, 1), 0);
        assert_eq!(slot_to_shard(8191, 2), 0);
        assert_eq!(slot_to_shard(8192, 2), 1);
        assert_eq!(slot_to_shard(16383, 3), 2);
        let mut previous = 0;
        for slot in 0..HASH_SLOTS {
            let shard = slot_to_shard(slot, 7);
            assert!(shard < 7 && shard >= previous && shard <= previous + 1);
            previous = shard;
        }
        assert_eq!(previous, 6);
    }
}
