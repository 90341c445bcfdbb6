//! Inputs shared by the scheduler benches.

use zero_scheduler::KeyPrefix;

/// Uniformly distributed key prefix for `index` (splitmix64), like a SHA-256 prefix.
pub fn key(index: u64) -> KeyPrefix {
    let mut mixed = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    let mut key = [0u8; 10];
    key[..8].copy_from_slice(&mixed.to_le_bytes());
    key[8..].copy_from_slice(&(index as u16).to_le_bytes());
    key
}
