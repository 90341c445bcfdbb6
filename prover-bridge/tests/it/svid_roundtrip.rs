//! Any `k` distinct valid chunks rebuild the block.

use crate::{random_block, rng, PROFILES};
use rand::seq::index::sample;
use rand::Rng;
use zero_prover_bridge::svid::{encode, reconstruct, verify_chunk, Chunk, Profile};

fn subset(chunks: &[Chunk], indices: &[usize]) -> Vec<Chunk> {
    indices.iter().map(|&index| chunks[index].clone()).collect()
}

#[test]
fn every_chunk_verifies_and_random_subsets_reconstruct() {
    for profile in PROFILES {
        for (len, n, k, seed) in
            [(10_000usize, 16usize, 5usize, 1u64), (777, 12, 4, 2), (1, 3, 1, 3)]
        {
            let block = random_block(len, seed);
            let (commitment, chunks) = encode(profile, &block, n, k).unwrap();
            assert_eq!(chunks.len(), n);
            for (index, chunk) in chunks.iter().enumerate() {
                verify_chunk(&commitment, index as u32, chunk).unwrap();
            }
            let mut rng = rng(seed);
            let subsets = if profile == Profile::Fast { 60 } else { 25 };
            for _ in 0..subsets {
                let mut picked = sample(&mut rng, n, k).into_vec();
                if rng.random_bool(0.5) {
                    picked.reverse();
                }
                let rebuilt = reconstruct(&commitment, &subset(&chunks, &picked));
                assert_eq!(rebuilt.unwrap(), block, "{profile} len {len} subset {picked:?}");
            }
            // Data chunks only, parity chunks only (n >= 2k here), and all n chunks.
            let data: Vec<usize> = (0..k).collect();
            let parity: Vec<usize> = (n - k..n).collect();
            for picked in [data, parity] {
                assert_eq!(reconstruct(&commitment, &subset(&chunks, &picked)).unwrap(), block);
            }
            assert_eq!(reconstruct(&commitment, &chunks).unwrap(), block);
        }
    }
}

#[test]
fn encodings_are_deterministic() {
    for profile in PROFILES {
        let block = random_block(3_000, 9);
        let (first_commitment, first_chunks) = encode(profile, &block, 9, 3).unwrap();
        let (second_commitment, second_chunks) = encode(profile, &block, 9, 3).unwrap();
        assert_eq!(first_commitment.to_bytes(), second_commitment.to_bytes());
        for (first, second) in first_chunks.iter().zip(&second_chunks) {
            assert_eq!(first.to_bytes(), second.to_bytes());
        }
        let (other, _) = encode(profile, &block[1..], 9, 3).unwrap();
        assert_ne!(other.to_bytes(), first_commitment.to_bytes());
    }
}

#[test]
fn block_sizes_around_shard_and_element_boundaries() {
    for profile in PROFILES {
        for len in [1usize, 30, 31, 32, 63, 64, 65, 4 * 31 * 3, 4 * 64 * 3 + 1] {
            let block = random_block(len, len as u64);
            let (commitment, chunks) = encode(profile, &block, 7, 3).unwrap();
            assert_eq!(commitment.original_len(), len as u64);
            assert_eq!(reconstruct(&commitment, &chunks[4..]).unwrap(), block, "{profile} {len}");
        }
    }
}

#[test]
fn fast_profile_stripes_a_multi_stripe_block() {
    // Shards of about 24 KiB: several encode stripes and a partial one.
    let block = random_block(100_000, 4);
    let (commitment, chunks) = encode(Profile::Fast, &block, 9, 4).unwrap();
    assert_eq!(reconstruct(&commitment, &chunks[5..]).unwrap(), block);
}

/// The paper's setting and the fast profile at 32 MB, end to end. Minutes in a debug-profile
/// test build on two cores: run with `cargo test --release -- --ignored`.
#[test]
#[ignore = "heavy: 22 MB semi-avid and 32 MB fast round trips; run in release"]
fn large_blocks_round_trip() {
    for (profile, len, n, k) in
        [(Profile::Fast, 32 << 20, 256, 85), (Profile::SemiAvid, 22_100_000, 256, 85)]
    {
        let block = random_block(len, 5);
        let (commitment, chunks) = encode(profile, &block, n, k).unwrap();
        verify_chunk(&commitment, 200, &chunks[200]).unwrap();
        assert_eq!(reconstruct(&commitment, &chunks[n - k..]).unwrap(), block);
    }
}
