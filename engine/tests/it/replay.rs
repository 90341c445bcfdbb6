//! The sequential oracle against the chain's own headers, on every mainnet fixture.

use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_primitives::B256;
use zero_engine::{
    chain::ChainSpec,
    replay::{prepare, replay_sequential},
};
use zero_fixtures::{discovery, mainnet};

#[test]
fn every_mainnet_fixture_matches_its_header() {
    let Some(dir) = discovery::mainnet_dir() else {
        eprintln!("{}", discovery::missing_fixtures_message("mainnet replay"));
        return;
    };
    let blocks = mainnet::list_blocks(&dir).unwrap();
    assert_eq!(blocks.len(), 51, "expected the 51 mainnet fixtures in {}", dir.display());
    let chain = ChainSpec::mainnet();
    let mut receipts_roots_checked = 0;
    let mut blob_gas_checked = 0;
    for (number, path) in blocks {
        let prepared = prepare(mainnet::load_block(&path).unwrap()).unwrap();
        let (report, outcome) = replay_sequential(&chain, &prepared).unwrap();
        assert!(report.gas_used_ok, "block {number}: gas used {} differs", report.gas_used);
        assert!(report.logs_bloom_ok, "block {number}: logs bloom differs");
        assert_ne!(report.receipts_root_ok, Some(false), "block {number}: receipts root differs");
        assert_ne!(report.blob_gas_used_ok, Some(false), "block {number}: blob gas differs");
        // Every fixture is older than Prague, whose headers carry the requests hash.
        assert_eq!(report.requests_hash_ok, None, "block {number}");
        receipts_roots_checked += usize::from(report.receipts_root_ok.is_some());
        blob_gas_checked += usize::from(report.blob_gas_used_ok.is_some());
        assert_eq!(outcome.receipts.len(), prepared.transactions.len());
    }
    // Byzantium (4,370,000) and later: 39 of the 51 blocks.
    assert_eq!(receipts_roots_checked, 39);
    // Cancun (timestamp 1,710,338,135) and later: 6 of the 51.
    assert_eq!(blob_gas_checked, 6);
}

#[test]
fn a_tampered_header_is_caught() {
    let Some(dir) = discovery::mainnet_dir() else {
        eprintln!("{}", discovery::missing_fixtures_message("tampered header"));
        return;
    };
    let mut fixture = mainnet::load_block(&dir.join("14029313")).unwrap();
    fixture.block.header.inner.gas_used += 1;
    fixture.block.header.inner.receipts_root.0[0] ^= 1;
    let prepared = prepare(fixture).unwrap();
    let (report, _) = replay_sequential(&ChainSpec::mainnet(), &prepared).unwrap();
    assert!(!report.gas_used_ok);
    assert_eq!(report.receipts_root_ok, Some(false));
    assert!(!report.passed());

    // A blob gas figure that is off by one blob.
    let mut fixture = mainnet::list_blocks(&dir)
        .unwrap()
        .into_iter()
        .map(|(_, path)| mainnet::load_block(&path).unwrap())
        .find(|fixture| fixture.block.header.inner.blob_gas_used.is_some_and(|used| used > 0))
        .expect("a fixture block with blob transactions");
    let used = fixture.block.header.inner.blob_gas_used.as_mut().unwrap();
    *used -= alloy_eips::eip4844::DATA_GAS_PER_BLOB;
    let prepared = prepare(fixture).unwrap();
    let (report, _) = replay_sequential(&ChainSpec::mainnet(), &prepared).unwrap();
    assert!(report.gas_used_ok);
    assert_eq!(report.blob_gas_used_ok, Some(false));
    assert!(!report.passed());

    // A requests hash (no fixture is from Prague on, so one is put on an older header): the
    // block made no requests, so only the empty hash matches.
    let mut fixture = mainnet::load_block(&dir.join("14029313")).unwrap();
    for (hash, matches) in [(EMPTY_REQUESTS_HASH, true), (B256::repeat_byte(7), false)] {
        fixture.block.header.inner.requests_hash = Some(hash);
        let prepared = prepare(fixture.clone()).unwrap();
        let (report, _) = replay_sequential(&ChainSpec::mainnet(), &prepared).unwrap();
        assert_eq!(report.requests_hash_ok, Some(matches), "{hash}");
        assert_eq!(report.passed(), matches, "{hash}");
    }
}
