// The name hash, shared by the generator (codegen/, which searches the seed and displacements)
// and the crate (which looks names up). A perfect hash by "hash and displace", not a minimal one:
// one hash of the name's length and all its eight-byte words (see `words`) picks a bucket; the
// bucket's displacement picks the slot, whose entry is confirmed by comparing the same words.
// The generator sizes the table for the names it has (a power of two of slots, at most 7/8 full:
// 1024 slots for today's 474 names, with 256 buckets). A lookup costs the same for short and long
// names and has no byte loop; the generator fails, naming them, if two names hash alike. Names
// longer than [`COVERED`] bytes (one former name today) are left out of the table and compared
// whole when a lookup misses (`LONG_NAMES`).

/// The eight bytes at `at`, little-endian (0 if fewer remain: callers never ask for those).
#[inline(always)]
const fn read8(s: &[u8], at: usize) -> u64 {
    if at > s.len() {
        return 0;
    }
    match s.split_at(at).1.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => 0,
    }
}

/// The six words a name is hashed and compared by: the eight bytes at offsets 0, 8, 16, 24 and
/// 32 (each clamped to end at the name's end) and its last eight. A name under eight bytes is
/// packed into the first word, the others zero. Together they hold every byte of a name of up to
/// [`COVERED`] bytes, so two such names are equal exactly when their lengths and words are:
/// comparing six words has no branch on where the names differ.
#[inline(always)]
pub(crate) const fn words(s: &[u8]) -> [u64; 6] {
    let len = s.len();
    if len < 8 {
        let mut a = 0u64;
        let mut i = 0;
        while i < len {
            a |= (s[i] as u64) << (8 * i);
            i += 1;
        }
        return [a, 0, 0, 0, 0, 0];
    }
    // The clamps let the compiler see every read is in bounds: no check, no branch.
    let last = len - 8;
    [
        read8(s, 0),
        read8(s, clamp(8, last)),
        read8(s, clamp(16, last)),
        read8(s, clamp(24, last)),
        read8(s, clamp(32, last)),
        read8(s, last),
    ]
}

#[inline(always)]
const fn clamp(offset: usize, last: usize) -> usize {
    if offset < last {
        offset
    } else {
        last
    }
}

/// Names up to this long are equal exactly when their lengths and [`words`] are.
pub(crate) const COVERED: usize = 48;

/// Whether two names' words are all equal.
#[inline(always)]
pub(crate) const fn same_words(x: &[u64; 6], y: &[u64; 6]) -> bool {
    ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5]))
        == 0
}

/// Hashes a name's length and all six of its words, so every byte of a name counts: each word
/// rotated by its own amount, then summed (a sum, unlike XOR, does not cancel the words that
/// coincide in short names; the rotations keep equal words at different offsets apart), mixed by
/// one multiplication by `seed` (odd), whose high bits pick the bucket.
#[inline(always)]
pub(crate) const fn hash(len: usize, words: [u64; 6], seed: u64) -> u64 {
    let [a, b, c, d, e, f] = words;
    let x = a
        .wrapping_add(b.rotate_left(11))
        .wrapping_add(c.rotate_left(22))
        .wrapping_add(d.rotate_left(33))
        .wrapping_add(e.rotate_left(44))
        .wrapping_add(f.rotate_left(55))
        .wrapping_add(len as u64);
    x.wrapping_mul(seed)
}

/// The bucket a hash falls in, among `2^bucket_bits`: its top bits.
#[inline(always)]
pub(crate) const fn bucket(h: u64, bucket_bits: u32) -> usize {
    (h >> (64 - bucket_bits)) as usize
}

/// The slot a hash takes, among `2^slot_bits`, under a bucket's displacement (stored shifted left
/// to the top `slot_bits` of a `u32`, see [`displacement`]): the top bits of the hash's low half,
/// XORed with it. One XOR and one shift, and always in range without a mask.
#[inline(always)]
pub(crate) const fn slot(h: u64, displacement: u32, slot_bits: u32) -> usize {
    (((h as u32) ^ displacement) >> (32 - slot_bits)) as usize
}

/// A displacement as the table stores it, from its value in `0..2^slot_bits` (the generator's
/// side).
#[allow(dead_code)]
pub(crate) const fn displacement(value: u32, slot_bits: u32) -> u32 {
    value << (32 - slot_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_hold_every_byte_of_every_length_up_to_covered() {
        for len in 0..=COVERED {
            let name: Vec<u8> = (0..len).map(|i| b'A' + (i % 26) as u8).collect();
            for at in 0..len {
                let mut changed = name.clone();
                changed[at] = b'_';
                assert_ne!(words(&name), words(&changed), "length {len}, byte {at}");
            }
        }
    }

    #[test]
    fn a_slot_is_in_range_for_any_hash_and_displacement() {
        for bits in [7, 9, 12] {
            for h in [0, 1, u64::MAX, 0x9E37_79B9_7F4A_7C15] {
                for d in [0, 1, (1 << bits) - 1] {
                    assert!(slot(h, displacement(d, bits), bits) < 1 << bits);
                }
                assert!(bucket(h, bits - 2) < 1 << (bits - 2));
            }
        }
    }

    #[test]
    fn every_word_of_a_name_changes_its_hash() {
        let name = b"DATASET_VERSION_EXPORT_IN_PROGRESS";
        let base = hash(name.len(), words(name), 1);
        for at in 0..name.len() {
            let mut changed = *name;
            changed[at] = b'#';
            assert_ne!(hash(name.len(), words(&changed), 1), base, "byte {at}");
        }
    }
}
