//! The `BlockchainTests` runner: import each test's chain through the engine into a store.
//!
//! Per test: commit the `pre` accounts as the genesis block, then for each block decode the RLP,
//! check the header against its parent and the body's format ([`check_header`]), recover the
//! senders, execute the block with the chosen engine against the store, make the checks the
//! specification makes as it gathers the block's requests ([`check_requests`]), compare the
//! header's commitments with the results and the Merkle-Patricia state root ([`check_outcome`]),
//! and commit. A block marked `expectException` must be rejected, by a rule the expectation
//! names ([`BlockError::refusal`], [`super::exceptions`]), and is then not applied.
//!
//! A block with two faults is judged by the first one met, in that order: header and format,
//! signatures, execution (an invalid transaction), requests, then the commitments in the
//! specification's order. Two departures from the specification's order remain: within the
//! header checks the order is this runner's, and every signature is recovered before any
//! transaction runs, where the specification recovers each sender as its transaction comes.
//!
//! A block whose parent was imported but is not the head starts a side chain: the store, which
//! is linear, is rebuilt from genesis along the parent's branch (so a test alternating between
//! branches costs a re-import per switch). A block imported before is not imported again. After
//! the last block the chain's head is `lastblockhash`, which must be a block imported (no fork
//! choice is checked); the state must equal `postState` (or hash to `postStateHash`), and the
//! store must hold that same state.

use super::{
    exceptions::expected_by,
    execute_block_with, loaded_or_verdict,
    mpt::FullState,
    report::{Suite, SuiteReport, Verdict},
    rules::{check_header, check_outcome, check_requests, BlockError},
    run_files,
    skips::skip_reason,
    store::TestStore,
    ConformanceError, SuiteOptions,
};
use crate::{
    chain::ChainSpec,
    genesis::genesis_changes,
    intake::{self, RecoveredTx},
    sequential::BlockInput,
};
use alloy_consensus::{
    transaction::SignerRecoverable, Block, Header, TxEip4844Variant, TxEnvelope,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{keccak256, Bytes, B256};
use alloy_rlp::Decodable;
use std::{collections::HashMap, path::Path};
use zero_fixtures::ethereum_tests::{
    blockchain::{self, BlockchainTest},
    genesis_accounts, TestState,
};
use zero_state::{StateCommit, KECCAK_EMPTY};

/// Runs every `BlockchainTests` file under `dir`.
pub fn run_blockchain_suite(
    dir: &Path,
    options: &SuiteOptions,
) -> Result<SuiteReport, ConformanceError> {
    Ok(run_blockchain_files(&super::suite_files(dir)?, options))
}

/// Runs the `BlockchainTests` in `files` (in parallel across files; the report keeps file order).
pub fn run_blockchain_files<P: AsRef<Path> + Sync>(
    files: &[P],
    options: &SuiteOptions,
) -> SuiteReport {
    run_files(Suite::Blockchain, files, options, run_file)
}

fn run_file(path: &Path, options: &SuiteOptions) -> Vec<(String, Verdict)> {
    let tests = match loaded_or_verdict(Suite::Blockchain, path, blockchain::load_file(path)) {
        Ok(tests) => tests,
        Err(verdict) => return verdict,
    };
    let skip = skip_reason(Suite::Blockchain, path);
    tests
        .into_iter()
        .filter(|(_, test)| options.fork_selected(&test.network))
        .map(|(name, test)| {
            let verdict = match skip {
                Some(reason) => Verdict::Skipped(reason.to_string()),
                None => run_blockchain_test(&test, options),
            };
            (name, verdict)
        })
        .collect()
}

/// Imports one test's chain and checks the result.
pub fn run_blockchain_test(test: &BlockchainTest, options: &SuiteOptions) -> Verdict {
    let Some(chain) = ChainSpec::for_test_fork(&test.network) else {
        return Verdict::Skipped(format!(
            "network {:?} has no chain specification (unsupported fork or transition)",
            test.network
        ));
    };
    match import_chain(&chain, test, options) {
        Ok(()) => Verdict::Passed,
        Err(difference) => Verdict::Failed(difference),
    }
}

/// The head of the chain being imported.
struct Head {
    header: Header,
    hash: B256,
    state: FullState,
}

/// A block imported so far: its parent, and its place in the test's `blocks` (none for genesis).
#[derive(Clone, Copy)]
struct Known {
    parent: B256,
    index: Option<usize>,
}

/// The genesis of one test, and every block imported on top of it, on any branch.
struct Imported<'a> {
    chain: &'a ChainSpec,
    test: &'a BlockchainTest,
    options: &'a SuiteOptions,
    genesis: Header,
    genesis_hash: B256,
    known: HashMap<B256, Known>,
}

impl Imported<'_> {
    /// A fresh store holding the pre-state, and the genesis as head.
    fn genesis(&self) -> Result<(TestStore, Head), String> {
        let accounts = genesis_accounts(&self.test.pre);
        let mut store = TestStore::open(self.options.store, self.options.scratch_dir.as_deref())
            .map_err(|error| format!("cannot open the store: {error}"))?;
        let number = self.genesis.number;
        store
            .commit_block(&genesis_changes(number, &accounts, &[(number, self.genesis_hash)]))
            .map_err(|error| format!("cannot commit the pre-state: {error}"))?;
        let state = FullState::from_genesis(&accounts);
        Ok((store, Head { header: self.genesis.clone(), hash: self.genesis_hash, state }))
    }

    /// A fresh store and head at `hash`, a block imported before on another branch: the store
    /// is linear, so the branch is imported again from genesis.
    fn switch_to(&self, hash: B256) -> Result<(TestStore, Head), String> {
        let mut branch = Vec::new();
        let mut at = hash;
        while let Some(Known { parent, index: Some(index) }) = self.known.get(&at).copied() {
            branch.push(index);
            at = parent;
        }
        let (mut store, mut head) = self.genesis()?;
        for &index in branch.iter().rev() {
            head = decode_block(&self.test.blocks[index].rlp)
                .and_then(|block| import_block(self.chain, self.options, &head, block, &mut store))
                .map_err(|error| {
                    format!("block {index}, accepted before, refused on its branch's re-import: {error}")
                })?;
        }
        Ok((store, head))
    }
}

/// Imports the test's blocks in order. A block whose parent is a block imported before but not
/// the head starts from that block (a side chain); at the end the head is `lastblockhash`, which
/// must be a block imported, with its state.
fn import_chain(
    chain: &ChainSpec,
    test: &BlockchainTest,
    options: &SuiteOptions,
) -> Result<(), String> {
    let genesis = decode_block(&test.genesis_rlp).map_err(|error| format!("genesis: {error}"))?;
    let genesis_hash = genesis.header.hash_slow();
    if genesis_hash != test.genesis_block_header.hash {
        return Err(format!(
            "genesis RLP hashes to {genesis_hash}, genesisBlockHeader says {}",
            test.genesis_block_header.hash
        ));
    }
    let mut imported = Imported {
        chain,
        test,
        options,
        genesis: genesis.header,
        genesis_hash,
        known: HashMap::from([(genesis_hash, Known { parent: B256::ZERO, index: None })]),
    };
    let (mut store, mut head) = imported.genesis()?;
    let genesis_root = head.state.state_root();
    if genesis_root != imported.genesis.state_root {
        return Err(format!(
            "pre-state root {genesis_root}, genesis header says {}",
            imported.genesis.state_root
        ));
    }

    for (index, block) in test.blocks.iter().enumerate() {
        let decoded = decode_block(&block.rlp);
        if let Ok(header) = decoded.as_ref().map(|decoded| &decoded.header) {
            if imported.known.contains_key(&header.hash_slow()) {
                if let Some(exception) = &block.expect_exception {
                    return Err(format!(
                        "block {index}: expected {exception}, but it is a block imported before"
                    ));
                }
                continue;
            }
            if header.parent_hash != head.hash && imported.known.contains_key(&header.parent_hash) {
                (store, head) = imported.switch_to(header.parent_hash)?;
            }
        }
        let result =
            decoded.and_then(|decoded| import_block(chain, options, &head, decoded, &mut store));
        match (result, &block.expect_exception) {
            (Ok(next), None) => {
                imported.known.insert(next.hash, Known { parent: head.hash, index: Some(index) });
                head = next;
            }
            (Ok(accepted), Some(exception)) => {
                return Err(format!(
                    "block {index} (number {}): expected {exception}, but it was accepted",
                    accepted.header.number
                ))
            }
            (Err(error), Some(exception)) if !error.is_rejection() => {
                return Err(format!(
                    "block {index}: expected {exception}, but the engine failed ({}): {error}",
                    error.rule()
                ))
            }
            (Err(error), Some(exception)) if !expected_by(exception, &error.refusal()) => {
                return Err(format!(
                    "block {index}: expected {exception}, but it was rejected for another reason \
                     (rule {}): {error}",
                    error.rule()
                ))
            }
            (Err(_), Some(_)) => {}
            (Err(error), None) => {
                return Err(format!("block {index}: rejected by rule {}: {error}", error.rule()))
            }
        }
    }

    if head.hash != test.last_block_hash {
        if !imported.known.contains_key(&test.last_block_hash) {
            return Err(format!(
                "lastblockhash {} is no block imported (the head is {})",
                test.last_block_hash, head.hash
            ));
        }
        (store, head) = imported.switch_to(test.last_block_hash)?;
    }
    if let Some(expected) = &test.post_state {
        compare_post_state(&head.state, expected)?;
    }
    if let Some(expected) = test.post_state_hash {
        let root = head.state.state_root();
        if root != expected {
            return Err(format!("post-state root {root}, postStateHash is {expected}"));
        }
    }
    head.state.check_store(&store)
}

fn decode_block(rlp: &Bytes) -> Result<Block<TxEnvelope>, BlockError> {
    let mut cursor = rlp.as_ref();
    let block = Block::<TxEnvelope>::decode(&mut cursor)
        .map_err(|error| BlockError::Decode { reason: error.to_string() })?;
    if !cursor.is_empty() {
        return Err(BlockError::Decode {
            reason: format!("{} trailing bytes after the block", cursor.len()),
        });
    }
    // alloy's decoder also reads a blob transaction in its network form (with its blobs,
    // commitments and proofs); a block holds only the bare transaction (EIP-4844).
    let full_blobs = block.body.transactions.iter().position(|tx| {
        matches!(tx, TxEnvelope::Eip4844(signed)
            if matches!(signed.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)))
    });
    if let Some(index) = full_blobs {
        return Err(BlockError::FullBlobs { index });
    }
    Ok(block)
}

/// Checks, executes and commits one block on top of `head`.
fn import_block(
    chain: &ChainSpec,
    options: &SuiteOptions,
    head: &Head,
    block: Block<TxEnvelope>,
    store: &mut TestStore,
) -> Result<Head, BlockError> {
    check_header(chain, &head.header, head.hash, &block)?;
    let transactions = recover_senders(chain, &block)?;
    let header = &block.header;
    let input = BlockInput {
        header,
        ommers: &block.body.ommers,
        withdrawals: block.body.withdrawals.as_ref().map(|list| list.as_slice()),
        transactions: &transactions,
    };
    let outcome = execute_block_with(options.engine, chain, input, &*store)?;
    let mut state = head.state.clone();
    state.apply(&outcome.changes);
    let has_code =
        |address| state.account(&address).is_some_and(|account| account.code_hash != KECCAK_EMPTY);
    check_requests(chain, header, &outcome, has_code)?;
    check_outcome(chain, &block, &outcome, state.state_root())?;
    let hash = header.hash_slow();
    let mut changes = outcome.changes;
    changes.block_hashes.push((header.number, hash));
    store.commit_block(&changes)?;
    Ok(Head { header: block.header, hash, state })
}

/// Recovers every sender; Frontier accepted high-s signatures, later forks do not (EIP-2).
fn recover_senders(
    chain: &ChainSpec,
    block: &Block<TxEnvelope>,
) -> Result<Vec<RecoveredTx>, BlockError> {
    let homestead = chain.is_homestead_active_at_block(block.header.number);
    block
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            if homestead {
                intake::recover(index, tx.clone())
                    .map_err(|error| BlockError::Signature { index, reason: error.to_string() })
            } else {
                let sender = tx
                    .recover_signer_unchecked()
                    .map_err(|error| BlockError::Signature { index, reason: error.to_string() })?;
                Ok(RecoveredTx::new_unchecked(tx.clone(), sender))
            }
        })
        .collect()
}

/// The first difference between the executed post-state and the expected one.
fn compare_post_state(actual: &FullState, expected: &TestState) -> Result<(), String> {
    for (address, account) in expected {
        let Some(ours) = actual.account(address) else {
            return Err(format!("post-state: account {address} is missing"));
        };
        if ours.nonce != account.nonce {
            return Err(format!(
                "post-state: {address} nonce {}, expected {}",
                ours.nonce, account.nonce
            ));
        }
        if ours.balance != account.balance {
            return Err(format!(
                "post-state: {address} balance {}, expected {}",
                ours.balance, account.balance
            ));
        }
        let code_hash = keccak256(&account.code);
        if ours.code_hash != code_hash {
            return Err(format!(
                "post-state: {address} code hash {}, expected {code_hash}",
                ours.code_hash
            ));
        }
        let expected_slots: Vec<_> =
            account.storage.iter().filter(|(_, value)| !value.is_zero()).collect();
        let our_slots: Vec<_> = actual.storage(address).collect();
        if our_slots != expected_slots {
            let first = our_slots
                .iter()
                .zip(&expected_slots)
                .find(|(ours, theirs)| ours != theirs)
                .map_or_else(
                    || format!("{} slots, expected {}", our_slots.len(), expected_slots.len()),
                    |(ours, theirs)| {
                        format!(
                            "slot {} = {}, expected slot {} = {}",
                            ours.0, ours.1, theirs.0, theirs.1
                        )
                    },
                );
            return Err(format!("post-state: {address} storage differs: {first}"));
        }
    }
    if let Some((address, _)) =
        actual.accounts().find(|(address, _)| !expected.contains_key(*address))
    {
        return Err(format!("post-state: account {address} exists but is not expected"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{BlockBody, TxEip4844, TxEip4844WithSidecar};
    use alloy_eips::eip2718::Decodable2718;
    use alloy_eips::eip4844::BlobTransactionSidecar;
    use alloy_rlp::Encodable;
    use zero_fixtures::workload::{derive_key, sign_and_encode};

    /// A block holding a blob transaction in its network form (with its sidecar) is malformed:
    /// alloy's decoder reads it, the importer refuses it as ethereum/tests expect.
    #[test]
    fn a_blob_transaction_with_its_blobs_makes_a_block_malformed() {
        let (secret, _) = derive_key(3, 0);
        let tx = TxEip4844 { chain_id: 1, gas_limit: 21_000, ..Default::default() };
        let bare = TxEip4844Variant::<BlobTransactionSidecar>::TxEip4844(tx.clone());
        let bare = sign_and_encode(bare, &secret);
        let sidecar = BlobTransactionSidecar::default();
        let network = TxEip4844Variant::TxEip4844WithSidecar(
            TxEip4844WithSidecar::from_tx_and_sidecar(tx, sidecar),
        );
        let network = sign_and_encode(network, &secret);
        let block = |raw: &Bytes| {
            let tx = TxEnvelope::decode_2718(&mut raw.as_ref()).unwrap();
            let body = BlockBody { transactions: vec![tx], ommers: Vec::new(), withdrawals: None };
            let mut rlp = Vec::new();
            Block { header: Header::default(), body }.encode(&mut rlp);
            Bytes::from(rlp)
        };
        decode_block(&block(&bare)).unwrap();
        let error = decode_block(&block(&network)).unwrap_err();
        assert!(error.to_string().contains("network form"), "{error}");
        for name in [
            "BlockException.RLP_STRUCTURES_ENCODING",
            "TransactionException.TYPE_3_TX_WITH_FULL_BLOBS",
        ] {
            assert!(expected_by(name, &error.refusal()), "{name}");
        }
    }
}
