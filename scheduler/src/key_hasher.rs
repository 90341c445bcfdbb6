//! A fast hasher for hash maps keyed by [`KeyPrefix`](crate::KeyPrefix) or
//! [`SenderId`](crate::SenderId).
//!
//! Key prefixes are already SHA-256 output, so the default SipHash only costs time. The hasher
//! still mixes every byte (multiply-rotate, as FxHash, with a final avalanche) so that hand-written
//! test keys that differ only in their last bytes spread over the table as well as real ones do.
//! Not resistant to chosen keys: prefixes cannot be chosen without breaking SHA-256.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Odd 64-bit multiplier with well-mixed bits (the golden-ratio constant).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// Multiply-rotate hasher over the bytes written; see the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyHasher {
    state: u64,
}

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let remainder = chunks.remainder();
        if !remainder.is_empty() {
            let mut word = [0u8; 8];
            word[..remainder.len()].copy_from_slice(remainder);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        let mixed = (self.state ^ (self.state >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed ^ (mixed >> 32)
    }
}

/// A `HashMap` using [`KeyHasher`].
pub(crate) type KeyMap<Key, Value> = HashMap<Key, Value, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    fn hash_of(key: &[u8; 10]) -> u64 {
        BuildHasherDefault::<KeyHasher>::default().hash_one(key)
    }

    #[test]
    fn keys_differing_in_one_byte_spread_over_low_and_high_bits() {
        for byte in 0..10 {
            let mut low_bits = HashSet::new();
            let mut high_bits = HashSet::new();
            for value in 0..=255u8 {
                let mut key = [0u8; 10];
                key[byte] = value;
                let hash = hash_of(&key);
                low_bits.insert(hash & 0xff);
                high_bits.insert(hash >> 57);
            }
            assert!(low_bits.len() > 120, "byte {byte}: {} low-bit values", low_bits.len());
            assert!(high_bits.len() > 100, "byte {byte}: {} high-bit values", high_bits.len());
        }
    }

    #[test]
    fn map_works_as_a_map() {
        let mut map: KeyMap<[u8; 10], usize> = KeyMap::default();
        for value in 0..1000usize {
            let mut key = [0u8; 10];
            key[8..].copy_from_slice(&(value as u16).to_le_bytes());
            map.insert(key, value);
        }
        assert_eq!(map.len(), 1000);
        let mut probe = [0u8; 10];
        probe[8..].copy_from_slice(&777u16.to_le_bytes());
        assert_eq!(map.get(&probe), Some(&777));
    }
}
