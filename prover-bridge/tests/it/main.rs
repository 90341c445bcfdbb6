//! Integration tests of `zero-prover-bridge`: SVID for both profiles.

mod svid_bench;
mod svid_errors;
mod svid_files;
mod svid_roundtrip;
mod svid_wire;

use rand::{Rng, SeedableRng};
use zero_prover_bridge::svid::Profile;

/// Both profiles, for tests that hold for each.
pub const PROFILES: [Profile; 2] = [Profile::Fast, Profile::SemiAvid];

/// Seeded random bytes.
pub fn random_block(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut block = vec![0u8; len];
    rng.fill(&mut block[..]);
    block
}

/// A seeded random generator.
pub fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}
