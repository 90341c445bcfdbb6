//! Bad input is a typed error, never a panic.

use crate::{random_block, PROFILES};
use zero_prover_bridge::svid::{
    encode, fast, reconstruct, semi_avid, verify_chunk, Chunk, Commitment, Profile, SvidError,
};

fn encoded(profile: Profile) -> (Vec<u8>, Commitment, Vec<Chunk>) {
    let block = random_block(2_000, 11);
    let (commitment, chunks) = encode(profile, &block, 10, 4).unwrap();
    (block, commitment, chunks)
}

#[test]
fn parameters_out_of_range() {
    for profile in PROFILES {
        let block = [1u8; 100];
        for (n, k) in [(4, 4), (4, 5), (4, 0), (1, 1)] {
            assert!(
                matches!(encode(profile, &block, n, k), Err(SvidError::InvalidThreshold { .. })),
                "{profile} n {n} k {k}"
            );
        }
        assert!(matches!(encode(profile, &[], 4, 2), Err(SvidError::EmptyBlock)));
    }
    for (n, k) in [(70_000, 100), (65_537, 1), (65_536, 40_000)] {
        assert!(
            matches!(
                encode(Profile::Fast, &[1; 10], n, k),
                Err(SvidError::UnsupportedCodeSize { profile: Profile::Fast, .. })
            ),
            "n {n} k {k}"
        );
    }
    assert!(fast::check_params(65_536, 32_768).is_ok());
    assert!(fast::check_params(65_536, 1).is_ok());
    assert!(matches!(
        encode(Profile::SemiAvid, &[1; 10], semi_avid::MAX_N + 1, 10),
        Err(SvidError::UnsupportedCodeSize { profile: Profile::SemiAvid, .. })
    ));
    // More rows than the semi-avid setup covers.
    let too_many_rows = vec![0u8; (semi_avid::MAX_ROWS as usize) * 31 + 1];
    assert!(matches!(
        encode(Profile::SemiAvid, &too_many_rows, 2, 1),
        Err(SvidError::BlockTooLarge { profile: Profile::SemiAvid, .. })
    ));
}

#[test]
fn wrong_index() {
    for profile in PROFILES {
        let (_, commitment, chunks) = encoded(profile);
        assert!(matches!(
            verify_chunk(&commitment, 4, &chunks[3]),
            Err(SvidError::IndexMismatch { claimed: 3, expected: 4 })
        ));
        assert!(matches!(
            verify_chunk(&commitment, 10, &chunks[3]),
            Err(SvidError::IndexOutOfRange { index: 10, n: 10 })
        ));
        // A chunk relabelled as another index fails its proof.
        let mut relabelled = chunks[3].clone();
        match &mut relabelled {
            Chunk::Fast(chunk) => chunk.index = 4,
            Chunk::SemiAvid(chunk) => chunk.index = 4,
        }
        assert!(matches!(
            verify_chunk(&commitment, 4, &relabelled),
            Err(SvidError::InvalidChunk { index: 4, .. })
        ));
        let mut set: Vec<Chunk> = chunks[5..8].to_vec();
        set.push(relabelled);
        assert!(matches!(
            reconstruct(&commitment, &set),
            Err(SvidError::InvalidChunk { index: 4, .. })
        ));
    }
}

#[test]
fn duplicate_and_missing_chunks() {
    for profile in PROFILES {
        let (_, commitment, chunks) = encoded(profile);
        let duplicated =
            vec![chunks[1].clone(), chunks[2].clone(), chunks[1].clone(), chunks[3].clone()];
        assert!(matches!(
            reconstruct(&commitment, &duplicated),
            Err(SvidError::DuplicateChunk { index: 1 })
        ));
        assert!(matches!(
            reconstruct(&commitment, &chunks[..3]),
            Err(SvidError::NotEnoughChunks { got: 3, need: 4 })
        ));
        assert!(matches!(
            reconstruct(&commitment, &[]),
            Err(SvidError::NotEnoughChunks { got: 0, need: 4 })
        ));
    }
}

#[test]
fn chunks_of_another_block_or_profile() {
    for profile in PROFILES {
        let (_, commitment, _) = encoded(profile);
        let (_, other_chunks) = encode(profile, &random_block(2_000, 12), 10, 4).unwrap();
        assert!(matches!(
            verify_chunk(&commitment, 2, &other_chunks[2]),
            Err(SvidError::InvalidChunk { index: 2, .. })
        ));
        // Same shape but from a block of another length: wrong size, or a failed check.
        let (_, shorter) = encode(profile, &random_block(1_000, 12), 10, 4).unwrap();
        assert!(verify_chunk(&commitment, 2, &shorter[2]).is_err());
    }
    let (_, fast_commitment, fast_chunks) = encoded(Profile::Fast);
    let (_, semi_commitment, semi_chunks) = encoded(Profile::SemiAvid);
    assert!(matches!(
        verify_chunk(&fast_commitment, 0, &semi_chunks[0]),
        Err(SvidError::ProfileMismatch { commitment: Profile::Fast, chunk: Profile::SemiAvid })
    ));
    assert!(matches!(
        reconstruct(&semi_commitment, &fast_chunks),
        Err(SvidError::ProfileMismatch { .. })
    ));
}

#[test]
fn a_flipped_bit_in_a_chunk_or_proof_is_rejected() {
    for profile in PROFILES {
        let (_, commitment, chunks) = encoded(profile);
        let wire = chunks[6].to_bytes();
        // Every bit of the fast chunk (data and proof); a sample spread over the semi-avid one.
        let step = if profile == Profile::Fast { 1 } else { 13 };
        for bit in (0..wire.len() * 8).step_by(step) {
            let mut damaged = wire.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let rejected =
                Chunk::from_bytes(&damaged).and_then(|chunk| verify_chunk(&commitment, 6, &chunk));
            assert!(rejected.is_err(), "{profile}: flipping bit {bit} went unnoticed");
        }
    }
}

#[test]
fn a_flipped_bit_in_the_commitment_is_rejected() {
    for profile in PROFILES {
        let (_, commitment, chunks) = encoded(profile);
        let wire = commitment.to_bytes();
        // Every header bit; then a sample of the points and digest for semi-avid.
        let step = |bit: usize| if profile == Profile::SemiAvid && bit >= 26 * 8 { 7 } else { 1 };
        let mut bit = 0;
        while bit < wire.len() * 8 {
            let mut damaged = wire.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let rejected = Commitment::from_bytes(&damaged)
                .and_then(|commitment| verify_chunk(&commitment, 1, &chunks[1]));
            assert!(rejected.is_err(), "{profile}: flipping commitment bit {bit} went unnoticed");
            bit += step(bit);
        }
    }
}

#[test]
fn a_bad_chunk_among_many_is_named() {
    for profile in PROFILES {
        let (_, commitment, mut chunks) = encoded(profile);
        match &mut chunks[7] {
            Chunk::Fast(chunk) => chunk.data[0] ^= 0x80,
            Chunk::SemiAvid(chunk) => chunk.column[0] += ark_bls12_381::Fr::from(1u64),
        }
        assert!(matches!(
            reconstruct(&commitment, &chunks[2..]),
            Err(SvidError::InvalidChunk { index: 7, .. })
        ));
        // Without the bad chunk, reconstruction goes through.
        assert!(reconstruct(&commitment, &chunks[..7]).is_ok());
    }
}

#[test]
fn unknown_profile_names() {
    assert_eq!("fast".parse::<Profile>().unwrap(), Profile::Fast);
    assert_eq!("semi-avid".parse::<Profile>().unwrap(), Profile::SemiAvid);
    assert!(
        matches!("avid".parse::<Profile>(), Err(SvidError::UnknownProfileName(name)) if name == "avid")
    );
}

#[test]
fn commitments_claiming_oversize_blocks_are_rejected() {
    for profile in PROFILES {
        let (_, commitment, _) = encoded(profile);
        let mut wire = commitment.to_bytes();
        // The block length sits after magic, version, profile, n and k.
        wire[14..22].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let result = Commitment::from_bytes(&wire);
        match profile {
            Profile::Fast => assert!(
                matches!(result, Err(SvidError::BlockTooLarge { profile: Profile::Fast, .. })),
                "{result:?}"
            ),
            // The digest covers the length, so the altered commitment fails that check first.
            Profile::SemiAvid => {
                assert!(matches!(result, Err(SvidError::CommitmentDigestMismatch)), "{result:?}")
            }
        }
    }
}
