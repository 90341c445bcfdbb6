//! Wire formats: round trips, truncation, oversize input, and arbitrary bytes.

use crate::{random_block, PROFILES};
use proptest::prelude::*;
use zero_prover_bridge::svid::{encode, Chunk, Commitment, SvidError};

#[test]
fn commitments_and_chunks_round_trip() {
    for profile in PROFILES {
        let (commitment, chunks) = encode(profile, &random_block(1_500, 21), 6, 2).unwrap();
        assert_eq!(Commitment::from_bytes(&commitment.to_bytes()).unwrap(), commitment);
        for chunk in &chunks {
            let wire = chunk.to_bytes();
            assert_eq!(wire.len() as u64, chunk.wire_len());
            // What a reader bounds chunk files by, from the commitment alone.
            assert_eq!(wire.len() as u64, commitment.chunk_wire_len(), "{profile}");
            assert_eq!(&Chunk::from_bytes(&wire).unwrap(), chunk);
        }
    }
}

#[test]
fn truncated_and_oversize_input() {
    for profile in PROFILES {
        let (commitment, chunks) = encode(profile, &random_block(700, 22), 6, 2).unwrap();
        let commitment = commitment.to_bytes();
        let chunk = chunks[3].to_bytes();
        for cut in 0..commitment.len() {
            assert!(
                matches!(
                    Commitment::from_bytes(&commitment[..cut]),
                    Err(SvidError::Truncated { .. })
                ),
                "{profile} commitment cut at {cut}"
            );
        }
        for cut in 0..chunk.len() {
            assert!(
                matches!(Chunk::from_bytes(&chunk[..cut]), Err(SvidError::Truncated { .. })),
                "{profile} chunk cut at {cut}"
            );
        }
        for (bytes, what) in [(commitment, "commitment"), (chunk, "chunk")] {
            let mut longer = bytes.clone();
            longer.push(0);
            let result = if what == "commitment" {
                Commitment::from_bytes(&longer).map(|_| ())
            } else {
                Chunk::from_bytes(&longer).map(|_| ())
            };
            assert!(
                matches!(result, Err(SvidError::TrailingBytes { extra: 1, .. })),
                "{profile} {what}"
            );
        }
    }
}

#[test]
fn bad_magic_version_and_profile() {
    let (commitment, chunks) = encode(PROFILES[0], &random_block(300, 23), 4, 2).unwrap();
    let wire = commitment.to_bytes();
    let mut bad = wire.clone();
    bad[0] = b'X';
    assert!(matches!(Commitment::from_bytes(&bad), Err(SvidError::BadMagic { .. })));
    assert!(matches!(
        Commitment::from_bytes(&chunks[0].to_bytes()),
        Err(SvidError::BadMagic { .. })
    ));
    let mut bad = wire.clone();
    bad[4] = 2;
    assert!(matches!(
        Commitment::from_bytes(&bad),
        Err(SvidError::UnsupportedVersion { found: 2, supported: 1, .. })
    ));
    let mut bad = wire;
    bad[5] = 9;
    assert!(matches!(
        Commitment::from_bytes(&bad),
        Err(SvidError::UnknownProfile { found: 9, .. })
    ));
}

#[test]
fn non_canonical_scalars_are_rejected() {
    let (_, chunks) = encode(PROFILES[1], &random_block(300, 24), 4, 2).unwrap();
    let mut wire = chunks[0].to_bytes();
    // The first scalar starts after magic, version, profile, index and row count.
    wire[14..46].fill(0xff);
    assert!(matches!(
        Chunk::from_bytes(&wire),
        Err(SvidError::NonCanonicalScalar { index: 0, position: 0 })
    ));
}

/// Headers of valid encodings with a random tail, so the decoders get past the magic.
fn prefixed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<Vec<u8>> = PROFILES
        .iter()
        .flat_map(|&profile| {
            let (commitment, chunks) = encode(profile, &random_block(200, 25), 4, 2).unwrap();
            [commitment.to_bytes()[..6].to_vec(), chunks[0].to_bytes()[..6].to_vec()]
        })
        .collect();
    (prop::sample::select(prefixes), prop::collection::vec(any::<u8>(), 0..400)).prop_map(
        |(mut prefix, tail)| {
            prefix.extend(tail);
            prefix
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Commitment::from_bytes(&bytes);
        let _ = Chunk::from_bytes(&bytes);
    }

    #[test]
    fn decoders_never_panic_past_a_valid_header(bytes in prefixed_bytes()) {
        let _ = Commitment::from_bytes(&bytes);
        let _ = Chunk::from_bytes(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_damaged_encodings(
        profile in prop::sample::select(PROFILES.to_vec()),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let (commitment, chunks) = encode(profile, &random_block(150, 26), 4, 2).unwrap();
        for mut wire in [commitment.to_bytes(), chunks[1].to_bytes()] {
            for (position, value) in &edits {
                let at = position.index(wire.len());
                wire[at] = *value;
            }
            if let (Ok(commitment), Ok(chunk)) = (Commitment::from_bytes(&wire), Chunk::from_bytes(&chunks[1].to_bytes())) {
                let _ = zero_prover_bridge::svid::verify_chunk(&commitment, 1, &chunk);
            }
            let _ = Chunk::from_bytes(&wire);
        }
    }
}
