//! The `BlockchainTests` runner: import each test's chain through the engine into a store.
//!
//! Per test: commit the `pre` accounts as the genesis block, then for each block decode the RLP,
//! recover the senders, check the header against its parent and body ([`check_header`]),
//! execute it with the chosen engine against the store, check the results against the header
//! ([`check_outcome`] and the Merkle-Patricia state root), and commit. A block marked
//! `expectException` must be rejected, by a rule the expectation names
//! ([`BlockError::refusal`], [`super::exceptions`]), and is then not applied. Checks run in
//! this runner's order, so a block with two faults is judged by the first one met. After the
//! last block: the head must be `lastblockhash`, the state must equal `postState` (or hash to
//! `postStateHash`), and the store must hold that same state.

use super::{
    exceptions::expected_by,
    execute_block_with, loaded_or_verdict,
    mpt::FullState,
    report::{Suite, SuiteReport, Verdict},
    rules::{check_header, check_outcome, BlockError},
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
use alloy_consensus::{transaction::SignerRecoverable, Block, Header, TxEnvelope};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{keccak256, Bytes, B256};
use alloy_rlp::Decodable;
use std::path::Path;
use zero_fixtures::ethereum_tests::{
    blockchain::{self, BlockchainTest},
    genesis_accounts, TestState,
};
use zero_state::StateCommit;

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
    let accounts = genesis_accounts(&test.pre);
    let state = FullState::from_genesis(&accounts);
    let genesis_root = state.state_root();
    if genesis_root != genesis.header.state_root {
        return Err(format!(
            "pre-state root {genesis_root}, genesis header says {}",
            genesis.header.state_root
        ));
    }
    let mut store = TestStore::open(options.store, options.scratch_dir.as_deref())
        .map_err(|error| format!("cannot open the store: {error}"))?;
    let number = genesis.header.number;
    store
        .commit_block(&genesis_changes(number, &accounts, &[(number, genesis_hash)]))
        .map_err(|error| format!("cannot commit the pre-state: {error}"))?;

    let mut head = Head { header: genesis.header, hash: genesis_hash, state };
    for (index, block) in test.blocks.iter().enumerate() {
        match (import_block(chain, options, &head, &block.rlp, &mut store), &block.expect_exception)
        {
            (Ok(imported), None) => head = imported,
            (Ok(imported), Some(exception)) => {
                return Err(format!(
                    "block {index} (number {}): expected {exception}, but it was accepted",
                    imported.header.number
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
        return Err(format!("head is {}, lastblockhash is {}", head.hash, test.last_block_hash));
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
    Ok(block)
}

/// Decodes, checks, executes and commits one block on top of `head`.
fn import_block(
    chain: &ChainSpec,
    options: &SuiteOptions,
    head: &Head,
    rlp: &Bytes,
    store: &mut TestStore,
) -> Result<Head, BlockError> {
    let block = decode_block(rlp)?;
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
    check_outcome(chain, header, &outcome)?;

    let mut state = head.state.clone();
    state.apply(&outcome.changes);
    let root = state.state_root();
    if root != header.state_root {
        return Err(BlockError::StateRoot { header: header.state_root, executed: root });
    }
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
