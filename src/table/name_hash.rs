// The name hash, shared by build.rs (which searches the seed and displacements) and the crate
// (which looks names up). A minimal perfect hash ("hash and displace"): one hash of the name's
// length and three of its eight-byte words (first, last, and the one before the last) picks a
// bucket; the bucket's displacement picks the slot. Only these few bytes are read, so a lookup
// costs the same for short and long names; build.rs fails if two names hash alike.

/// Bits of the bucket index: 2^7 buckets.
pub(crate) const BUCKET_BITS: u32 = 7;
/// Bits of the slot index: 2^10 slots.
pub(crate) const SLOT_BITS: u32 = 10;

#[inline(always)]
const fn read8(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        s[at],
        s[at + 1],
        s[at + 2],
        s[at + 3],
        s[at + 4],
        s[at + 5],
        s[at + 6],
        s[at + 7],
    ])
}

/// Hashes a name of any length (names under eight bytes are packed into one word).
#[inline(always)]
pub(crate) const fn hash(s: &[u8], seed: u64) -> u64 {
    let len = s.len();
    let (a, b, c) = if len >= 16 {
        (read8(s, 0), read8(s, len - 8), read8(s, len - 16))
    } else if len >= 8 {
        (read8(s, 0), read8(s, len - 8), 0)
    } else {
        let mut a = 0u64;
        let mut i = 0;
        while i < len {
            a |= (s[i] as u64) << (8 * i);
            i += 1;
        }
        (a, 0, 0)
    };
    let x = (a ^ seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(27)
        ^ (b.wrapping_add(seed)).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (c ^ seed.rotate_left(17))
            .wrapping_mul(0x1656_67B1_9E37_79F9)
            .rotate_left(41)
        ^ (len as u64);
    let y = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    y ^ (y >> 29)
}

/// The bucket a hash falls in.
#[inline(always)]
pub(crate) const fn bucket(h: u64) -> usize {
    (h >> (64 - BUCKET_BITS)) as usize
}

/// The slot a hash takes under a bucket's displacement.
#[inline(always)]
pub(crate) const fn slot(h: u64, displacement: u16) -> usize {
    let x = (h ^ (displacement as u64).wrapping_mul(0x94D0_49BB_1331_11EB))
        .wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (x >> (64 - SLOT_BITS)) as usize
}
