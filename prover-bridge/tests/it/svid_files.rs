//! `da encode|verify|reconstruct` on files.

use crate::{random_block, PROFILES};
use zero_prover_bridge::svid::{encode_file, files, reconstruct_file, verify_file, SvidError};

#[test]
fn encode_verify_reconstruct_through_files() {
    for profile in PROFILES {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("block.bin");
        let block = random_block(5_000, 31);
        std::fs::write(&input, &block).unwrap();
        let out = dir.path().join("chunks");
        let written = encode_file(profile, &input, &out, 8, 3).unwrap();
        assert_eq!(written.chunks.len(), 8);
        assert_eq!(written.chunks[5], out.join(files::chunk_file_name(5)));
        for (index, chunk) in written.chunks.iter().enumerate() {
            assert_eq!(verify_file(&written.commitment, chunk, None).unwrap(), index as u32);
        }
        assert!(matches!(
            verify_file(&written.commitment, &written.chunks[2], Some(3)),
            Err(SvidError::IndexMismatch { .. })
        ));
        let rebuilt = dir.path().join("rebuilt.bin");
        let len = reconstruct_file(&written.commitment, &written.chunks[5..], &rebuilt).unwrap();
        assert_eq!(len, block.len() as u64);
        assert_eq!(std::fs::read(&rebuilt).unwrap(), block);

        // A damaged chunk file is rejected by verify and by reconstruct.
        let mut bytes = std::fs::read(&written.chunks[6]).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 4;
        std::fs::write(&written.chunks[6], &bytes).unwrap();
        assert!(verify_file(&written.commitment, &written.chunks[6], None).is_err());
        assert!(reconstruct_file(&written.commitment, &written.chunks[5..], &rebuilt).is_err());
    }
}

#[test]
fn missing_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.bin");
    match verify_file(&missing, &missing, None) {
        Err(SvidError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(matches!(
        encode_file(PROFILES[0], &missing, &dir.path().join("out"), 4, 2),
        Err(SvidError::Io { .. })
    ));
}
