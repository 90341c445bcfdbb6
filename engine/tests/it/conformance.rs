//! ethereum/tests through the engine: a fast subset of both suites on every run, the full suites
//! with `cargo test -- --ignored`.

use alloy_consensus::{Block, Header, TxEnvelope};
use alloy_rlp::{Decodable, Encodable};
use std::path::{Path, PathBuf};
use zero_engine::conformance::{
    run_blockchain_files, run_blockchain_suite, run_blockchain_test, run_state_files,
    run_state_suite, ConformanceEngine, StoreKind, SuiteOptions, SuiteReport, Verdict,
};
use zero_fixtures::{
    discovery,
    ethereum_tests::{blockchain, list_json_files},
};

/// Blockchain test directories run on every `cargo test` (about 100 tests).
const FAST_BLOCKCHAIN_DIRS: &[&str] = &[
    "bcEIP4844-blobtransactions",
    "bcEIP1559",
    "bcValidBlockTest",
    "bcEIP1153-transientStorage",
    "bcStateTests",
];

/// State test directories run on every `cargo test` (about 2,000 Cancun vectors, under a second;
/// the full suite's time goes to a few heavy files such as `CALLBlake2f_MaxRounds`).
const FAST_STATE_DIRS: &[&str] =
    &["Cancun/stEIP4844-blobtransactions", "stChainId", "stEIP1559", "stCreate2", "stLogTests"];

fn ethereum_tests(what: &str) -> Option<PathBuf> {
    let dir = discovery::ethereum_tests_dir();
    if dir.is_none() {
        eprintln!("{}", discovery::missing_fixtures_message(what));
    }
    dir
}

fn files_under(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|dir| {
            let path = root.join(dir);
            list_json_files(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .collect()
}

/// Suite options for `store`. QMDB stores go to a tmpfs where there is one: a store per test
/// fsyncs a few times, which on a disk costs more than running the test.
fn options(store: StoreKind) -> SuiteOptions {
    let tmpfs = Path::new("/dev/shm");
    let scratch_dir = (store == StoreKind::Qmdb && tmpfs.is_dir()).then(|| tmpfs.to_path_buf());
    SuiteOptions { store, scratch_dir, ..SuiteOptions::default() }
}

/// Prints the report and fails, naming the first failures, if any test failed.
fn assert_all_passed(report: &SuiteReport) {
    eprintln!(
        "{} suite: {} total, {} passed, {} failed, {} skipped in {:.1} s",
        report.suite, report.total, report.passed, report.failed, report.skipped, report.seconds
    );
    let first: Vec<String> = report
        .failures
        .iter()
        .take(10)
        .map(|failure| format!("{}: {}", failure.name, failure.difference))
        .collect();
    assert_eq!(report.failed, 0, "failures:\n{}", first.join("\n"));
}

#[test]
fn blockchain_subset_passes_on_both_stores() {
    let Some(root) = ethereum_tests("blockchain conformance subset") else { return };
    let files = files_under(&root.join("BlockchainTests/ValidBlocks"), FAST_BLOCKCHAIN_DIRS);
    for (store, engine) in [
        (StoreKind::Memory, ConformanceEngine::Sequential),
        (StoreKind::Qmdb, ConformanceEngine::Sequential),
        (StoreKind::Memory, ConformanceEngine::Fafo),
        (StoreKind::Qmdb, ConformanceEngine::Fafo),
    ] {
        let report = run_blockchain_files(&files, &SuiteOptions { engine, ..options(store) });
        assert_all_passed(&report);
        assert_eq!(report.skipped, 0);
        assert!(report.total >= 100, "only {} blockchain tests in the subset", report.total);
    }
}

#[test]
fn state_subset_passes_on_both_stores() {
    let Some(root) = ethereum_tests("state conformance subset") else { return };
    let files = files_under(&root.join("GeneralStateTests"), FAST_STATE_DIRS);
    for store in [StoreKind::Memory, StoreKind::Qmdb] {
        let report = run_state_files(&files, &options(store));
        assert_all_passed(&report);
        // The four vectors of the two stCreate2 files on the skip list.
        assert_eq!(report.skipped, 4, "{:?}", report.skips);
        assert!(report.total >= 2000, "only {} state vectors in the subset", report.total);
    }
}

/// A block whose header lies (about its gas used, or its state root) is rejected by the rule
/// that names the lie, and the test passes exactly when the fixture says the block is invalid.
#[test]
fn a_tampered_block_is_rejected_by_its_rule() {
    type Lie = fn(&mut Header);
    let Some(root) = ethereum_tests("tampered block") else { return };
    let path = root.join("BlockchainTests/ValidBlocks/bcValidBlockTest/SimpleTx.json");
    let (_, original) = blockchain::load_file(&path).unwrap().remove(0);
    let tampered = |lie: Lie| {
        let mut test = original.clone();
        let mut block = decode_block(&test.blocks.last().unwrap().rlp);
        lie(&mut block.header);
        let mut rlp = Vec::new();
        block.encode(&mut rlp);
        test.blocks.last_mut().unwrap().rlp = rlp.into();
        end_before_last_block(&mut test);
        test
    };
    let options = SuiteOptions::default();
    // Each lie, the rule that catches it, its name in the suites and another one.
    let lies: [(Lie, &str, &str, &str); 2] = [
        (|header| header.gas_used += 1, "rule gas_used", "INVALID_GAS_USED", "INVALID_STATE_ROOT"),
        (
            |header| header.state_root.0[0] ^= 1,
            "rule state_root",
            "INVALID_STATE_ROOT",
            "INVALID_GAS_USED",
        ),
    ];
    let expecting = |test: &mut blockchain::BlockchainTest, exception: &str| {
        test.blocks.last_mut().unwrap().expect_exception = Some(exception.into());
        run_blockchain_test(test, &options)
    };
    for (lie, rule, name, other) in lies {
        let mut test = tampered(lie);
        let Verdict::Failed(difference) = run_blockchain_test(&test, &options) else {
            panic!("a block breaking {rule} was accepted");
        };
        assert!(difference.contains(rule), "{difference}");
        // An expectation in the legacy form is met by any rule.
        assert_eq!(expecting(&mut test, "invalid header"), Verdict::Passed);
        let named = format!("BlockException.{name}");
        assert_eq!(expecting(&mut test, &named), Verdict::Passed);
        let either = format!("BlockException.{other}|{named}");
        assert_eq!(expecting(&mut test, &either), Verdict::Passed);
        let Verdict::Failed(difference) = expecting(&mut test, &format!("BlockException.{other}"))
        else {
            panic!("{rule} met the expectation of {other}");
        };
        assert!(difference.contains("another reason"), "{difference}");
    }
}

fn decode_block(rlp: &[u8]) -> Block<TxEnvelope> {
    Block::<TxEnvelope>::decode(&mut &rlp[..]).unwrap()
}

/// Makes `test` end at its last block's parent, with the parent's state: the ending of a chain
/// whose last block is refused.
fn end_before_last_block(test: &mut blockchain::BlockchainTest) {
    test.last_block_hash = decode_block(&test.blocks.last().unwrap().rlp).header.parent_hash;
    test.post_state = None;
    test.post_state_hash = Some(match test.blocks.len() {
        1 => test.genesis_block_header.state_root,
        blocks => decode_block(&test.blocks[blocks - 2].rlp).header.state_root,
    });
}

fn test_block(block: &Block<TxEnvelope>, expect_exception: Option<&str>) -> blockchain::TestBlock {
    let mut rlp = Vec::new();
    block.encode(&mut rlp);
    blockchain::TestBlock { rlp: rlp.into(), expect_exception: expect_exception.map(Into::into) }
}

/// A block carrying an invalid transaction, whose header was built without it (so its
/// transactions root is wrong too, as in ethereum/tests' invalid blocks), is refused for the
/// transaction: the specification executes the block before it compares the commitments.
#[test]
fn an_invalid_transaction_is_named_before_the_transactions_root() {
    let Some(root) = ethereum_tests("invalid transaction in a block") else { return };
    let path = root.join("BlockchainTests/ValidBlocks/bcValidBlockTest/SimpleTx.json");
    let (_, mut test) = blockchain::load_file(&path).unwrap().remove(0);
    let mut block = decode_block(&test.blocks.last().unwrap().rlp);
    // The same transaction again: its nonce is then one too low.
    let again = block.body.transactions[0].clone();
    block.body.transactions.push(again);
    end_before_last_block(&mut test);
    let options = SuiteOptions::default();
    let mut expecting = |exception: &str| {
        *test.blocks.last_mut().unwrap() = test_block(&block, Some(exception));
        run_blockchain_test(&test, &options)
    };
    assert_eq!(expecting("TransactionException.NONCE_MISMATCH_TOO_LOW"), Verdict::Passed);
    let Verdict::Failed(difference) = expecting("BlockException.INVALID_TRANSACTIONS_ROOT") else {
        panic!("the transactions root was named before the invalid transaction");
    };
    assert!(difference.contains("another reason"), "{difference}");
}

/// Prague's request contracts must hold code: SimpleTx's block under Prague, on a chain whose
/// pre-state lacks them, is refused as `SYSTEM_CONTRACT_EMPTY` end to end (no Prague blockchain
/// fixture ships).
#[test]
fn a_prague_block_without_request_contracts_is_refused() {
    let Some(root) = ethereum_tests("Prague request contracts") else { return };
    let path = root.join("BlockchainTests/ValidBlocks/bcValidBlockTest/SimpleTx.json");
    let (_, mut test) = blockchain::load_file(&path).unwrap().remove(0);
    test.network = "Prague".into();
    let mut block = decode_block(&test.blocks[0].rlp);
    block.header.requests_hash = Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH);
    end_before_last_block(&mut test);
    for engine in [ConformanceEngine::Sequential, ConformanceEngine::Fafo] {
        let options = SuiteOptions { engine, ..SuiteOptions::default() };
        let mut expecting = |exception: Option<&str>| {
            test.blocks = vec![test_block(&block, exception)];
            run_blockchain_test(&test, &options)
        };
        assert_eq!(expecting(Some("BlockException.SYSTEM_CONTRACT_EMPTY")), Verdict::Passed);
        let Verdict::Failed(difference) = expecting(None) else {
            panic!("a Prague block was accepted without request contracts");
        };
        assert!(difference.contains("system_contract_empty"), "{difference}");
    }
}

/// A block whose parent was imported but is not the head starts a side chain from that parent,
/// and the chain ends at `lastblockhash`, on whichever branch, with that block's state (as in
/// ethereum/tests' `UncleFromSideChain`).
#[test]
fn side_chains_are_imported_from_their_fork_point() {
    let Some(root) = ethereum_tests("side chains") else { return };
    let path = root.join("BlockchainTests/ValidBlocks/bcValidBlockTest/timeDiff12.json");
    let (_, original) = blockchain::load_file(&path).unwrap().remove(0);
    let [a1, a2] = [0, 1].map(|index| decode_block(&original.blocks[index].rlp));
    // B1 is A1 with other extra data: the same state under another hash. B2 is A2 on B1 (the
    // blocks read no block hash, so its state is A2's).
    let mut b1 = a1.clone();
    b1.header.extra_data = b"side chain".as_slice().into();
    let mut b2 = a2.clone();
    b2.header.parent_hash = b1.header.hash_slow();
    let mut b2_invalid = b2.clone();
    b2_invalid.header.gas_used += 1;
    let mut a2_invalid = a2.clone();
    a2_invalid.header.gas_used += 1;
    let options = SuiteOptions::default();
    let run = |blocks: &[blockchain::TestBlock], last: &Block<TxEnvelope>, state_root| {
        let mut test = original.clone();
        test.blocks = blocks.to_vec();
        test.last_block_hash = last.header.hash_slow();
        test.post_state = None;
        test.post_state_hash = Some(state_root);
        run_blockchain_test(&test, &options)
    };
    let valid = |block| test_block(block, None);
    let (a1_root, a2_root) = (a1.header.state_root, a2.header.state_root);
    let both = [valid(&a1), valid(&a2), valid(&b1), valid(&b2)];
    assert_eq!(run(&both, &b2, a2_root), Verdict::Passed);
    // Back to the first branch at the end, and to a block below its tip.
    assert_eq!(run(&both, &a2, a2_root), Verdict::Passed);
    assert_eq!(run(&both, &b1, a1_root), Verdict::Passed);
    assert_eq!(run(&both[..3], &a1, a1_root), Verdict::Passed);
    // The state is the branch's: B1's is not A2's.
    let Verdict::Failed(difference) = run(&both, &b1, a2_root) else {
        panic!("B1's state passed for A2's");
    };
    assert!(difference.contains("post-state root"), "{difference}");
    // A block on a side chain rejected, then its valid sibling imported.
    let invalid = test_block(&b2_invalid, Some("BlockException.INVALID_GAS_USED"));
    let blocks = [valid(&a1), valid(&a2), valid(&b1), invalid, valid(&b2)];
    assert_eq!(run(&blocks, &b2, a2_root), Verdict::Passed);
    // A rejected block on the first branch while the head is on the second, then back.
    let invalid = test_block(&a2_invalid, Some("BlockException.INVALID_GAS_USED"));
    let blocks = [valid(&a1), valid(&a2), valid(&b1), invalid, valid(&b2)];
    assert_eq!(run(&blocks, &b2, a2_root), Verdict::Passed);
    // A block sent again is not imported again, and cannot be the invalid one expected.
    let blocks = [valid(&a1), valid(&a2), valid(&a1)];
    assert_eq!(run(&blocks, &a2, a2_root), Verdict::Passed);
    let blocks = [valid(&a1), test_block(&a1, Some("BlockException.INVALID_GAS_USED"))];
    let Verdict::Failed(difference) = run(&blocks, &a1, a1_root) else {
        panic!("a block imported before met an expected exception");
    };
    assert!(difference.contains("imported before"), "{difference}");
    // A head that was never imported.
    let Verdict::Failed(difference) = run(&both, &b2_invalid, a2_root) else {
        panic!("a chain ended at a block never imported");
    };
    assert!(difference.contains("no block imported"), "{difference}");
}

#[test]
fn unloadable_files_are_failures_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"t\": {\"env\": 1}}").unwrap();
    let report = run_state_files(&[&bad], &SuiteOptions::default());
    assert_eq!((report.total, report.failed), (1, 1));
    assert!(report.failures[0].difference.contains("malformed"), "{:?}", report.failures);
    let report = run_blockchain_files(&[&bad], &SuiteOptions::default());
    assert_eq!((report.total, report.failed), (1, 1));
    assert!(run_state_suite(&dir.path().join("absent"), &SuiteOptions::default()).is_err());
}

/// An environment number a header cannot hold fails its vectors as malformed; clamped to
/// 2^64 - 1, it would have run another test.
#[test]
fn an_environment_beyond_64_bits_is_malformed() {
    let Some(root) = ethereum_tests("malformed environment") else { return };
    let path = root.join("GeneralStateTests/stChainId/chainId.json");
    let mut tests: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for test in tests.as_object_mut().unwrap().values_mut() {
        test["env"]["currentNumber"] = "0x010000000000000000".into();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chainId.json");
    std::fs::write(&file, tests.to_string()).unwrap();
    let report = run_state_files(&[&file], &SuiteOptions::default());
    assert!(report.total > 0);
    assert_eq!(report.failed, report.total, "{:?}", report.failures);
    assert!(report.failures[0].difference.contains("currentNumber"), "{:?}", report.failures);
}

/// A vector passes only when the transaction fails for the reason its `expectException`
/// names: the same intrinsic-gas failure expected as a lack of funds is a failure, and any of
/// several alternatives will do.
#[test]
fn a_rejection_must_be_the_expected_one() {
    let Some(root) = ethereum_tests("expected exceptions") else { return };
    let path = root.join("GeneralStateTests/stExample/invalidTr.json");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let with_expectation = |expected: &str| {
        let mut tests = original.clone();
        for test in tests.as_object_mut().unwrap().values_mut() {
            for vectors in test["post"].as_object_mut().unwrap().values_mut() {
                for vector in vectors.as_array_mut().unwrap() {
                    vector["expectException"] = expected.into();
                }
            }
        }
        let file = dir.path().join("invalidTr.json");
        std::fs::write(&file, tests.to_string()).unwrap();
        run_state_files(&[&file], &SuiteOptions::default())
    };
    let intrinsic = "TransactionException.INTRINSIC_GAS_TOO_LOW";
    let funds = "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS";
    let report = with_expectation(intrinsic);
    assert!(report.total > 0 && report.failed == 0, "{:?}", report.failures);
    let report = with_expectation(funds);
    assert_eq!(report.failed, report.total, "{:?}", report.failures);
    assert!(report.failures[0].difference.contains("another reason"), "{:?}", report.failures);
    let report = with_expectation(&format!("{funds}|{intrinsic}"));
    assert!(report.total > 0 && report.failed == 0, "{:?}", report.failures);
}

/// Every fork's tests, not only Cancun's (the default of [`SuiteOptions`]).
fn every_fork(store: StoreKind) -> SuiteOptions {
    SuiteOptions { fork: None, ..options(store) }
}

#[test]
#[ignore = "the full BlockchainTests suite; run with --ignored"]
fn blockchain_full_suite() {
    let Some(root) = ethereum_tests("blockchain conformance") else { return };
    for (store, engine) in [
        (StoreKind::Memory, ConformanceEngine::Sequential),
        (StoreKind::Qmdb, ConformanceEngine::Sequential),
        (StoreKind::Qmdb, ConformanceEngine::Fafo),
    ] {
        let options = SuiteOptions { engine, ..every_fork(store) };
        let report = run_blockchain_suite(&root.join("BlockchainTests"), &options).unwrap();
        assert_all_passed(&report);
    }
}

#[test]
#[ignore = "the full GeneralStateTests suite; run with --ignored"]
fn state_full_suite() {
    let Some(root) = ethereum_tests("state conformance") else { return };
    for store in [StoreKind::Memory, StoreKind::Qmdb] {
        let report = run_state_suite(&root.join("GeneralStateTests"), &every_fork(store)).unwrap();
        for failure in &report.failures {
            eprintln!("FAILED {}: {}", failure.name, failure.difference);
        }
        for skip in &report.skips {
            eprintln!("SKIPPED {}: {}", skip.name, skip.reason);
        }
        assert_all_passed(&report);
    }
}

use crate::cli::producer;

/// `zero-producer conformance`: JSON lines, skips file, and exit codes 0 (all passed), 1 (a test
/// failed) and 2 (bad input).
#[test]
fn the_conformance_command_reports_and_exits_by_outcome() {
    let scratch = tempfile::tempdir().unwrap();
    let bad = scratch.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("broken.json"), "{\"t\": ").unwrap();
    let bad = bad.to_str().unwrap();
    let (code, stdout, stderr) =
        producer(&["conformance", "--suite", "state", "--path", bad, "--json"]);
    assert_eq!(code, 1, "a failing test exits 1; stderr: {stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(lines[0]["name"].as_str().unwrap().ends_with("broken.json"), "{stdout}");
    assert!(lines[0]["difference"].as_str().unwrap().contains("malformed"), "{stdout}");
    assert_eq!(lines[1]["failed"], 1);

    let absent = scratch.path().join("absent");
    let (code, _, stderr) =
        producer(&["conformance", "--suite", "blockchain", "--path", absent.to_str().unwrap()]);
    assert_eq!(code, 2, "a missing directory is bad input; stderr: {stderr}");
    assert!(stderr.contains("not found"), "{stderr}");

    let not_a_dir = scratch.path().join("absent-scratch");
    let (code, _, stderr) = producer(&[
        "conformance",
        "--suite",
        "state",
        "--path",
        bad,
        "--state",
        "qmdb",
        "--scratch-dir",
        not_a_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "a scratch directory that is not one is bad input; stderr: {stderr}");
    assert!(stderr.contains("--scratch-dir"), "{stderr}");

    let Some(root) = ethereum_tests("conformance command") else { return };
    let misspelt = root.join("GeneralStateTests/stChainId");
    let (code, _, stderr) = producer(&[
        "conformance",
        "--suite",
        "state",
        "--path",
        misspelt.to_str().unwrap(),
        "--fork",
        "Cancn",
    ]);
    assert_eq!(code, 2, "a fork no test names is bad input; stderr: {stderr}");
    assert!(stderr.contains("--fork Cancn"), "{stderr}");
    let path = root.join("GeneralStateTests/stCreate2");
    let skips = scratch.path().join("skips.jsonl");
    let tmpfs = Path::new("/dev/shm");
    let stores = if tmpfs.is_dir() { tmpfs } else { scratch.path() };
    let (code, stdout, stderr) = producer(&[
        "conformance",
        "--suite",
        "state",
        "--path",
        path.to_str().unwrap(),
        "--state",
        "qmdb",
        "--scratch-dir",
        stores.to_str().unwrap(),
        "--json",
        "--skips-file",
        skips.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["suite"], "state");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["skipped"], 4);
    let skipped = std::fs::read_to_string(&skips).unwrap();
    assert_eq!(skipped.lines().count(), 4);
    assert!(skipped.contains("EIP-7610"), "{skipped}");
}
