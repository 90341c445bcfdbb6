//! The `GeneralStateTests` runner: one transaction on a pre-state held in our store.
//!
//! Per test: commit the `pre` accounts (and the suite's `BLOCKHASH` convention,
//! `keccak256(decimal n)` for the 256 blocks before the test's) to a fresh store, once. Per
//! selected fork and vector: decode and recover `txbytes` through [`crate::intake`], check it is
//! the transaction the vector's indexes choose, and execute it with alloy-evm's EVM over a
//! [`StateDatabase`] of the store — a single transaction, with no block-level system calls, as
//! the suite is filled. A transaction rejected as invalid passes exactly when the vector expects
//! that exception: revm's refusal, or a decoding failure, must be one the vector's
//! `expectException` names ([`super::exceptions`]). Two limits: a transaction with two faults is
//! judged by the one revm checks first, which may not be the one the specification's order
//! names; and an expectation in the legacy form, without `TransactionException.` names, is met
//! by any refusal. Otherwise the logs hash is compared with `logs`, the changes are applied to
//! the full state beside the store, and its Merkle-Patricia root is compared with `hash`.
//! Vectors only read the store, so every vector of a test starts from the same committed
//! pre-state.

use super::{
    exceptions::{expected_by, Refusal},
    loaded_or_verdict,
    mpt::{logs_hash, FullState},
    report::{Suite, SuiteReport, Verdict},
    run_files,
    skips::skip_reason,
    store::TestStore,
    ConformanceError, SuiteOptions,
};
use crate::{
    chain::ChainSpec,
    database::StateDatabase,
    genesis::genesis_changes,
    intake::{decode_transaction, recover, RecoveredTx},
    sequential::{changes_from_bundle, evm_env},
};
use alloy_consensus::{Header, Transaction};
use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory};
use alloy_primitives::{keccak256, TxKind, B256, U256};
use revm::{
    context::result::EVMError,
    database::{states::bundle_state::BundleRetention, State},
};
use std::path::Path;
use zero_fixtures::ethereum_tests::{
    genesis_accounts,
    state::{self, PostEntry, StateEnv, StateTest, StateTransaction},
};
use zero_state::StateCommit;

/// How many earlier blocks `BLOCKHASH` can see.
const BLOCK_HASH_WINDOW: u64 = 256;

/// Runs every `GeneralStateTests` file under `dir`.
pub fn run_state_suite(
    dir: &Path,
    options: &SuiteOptions,
) -> Result<SuiteReport, ConformanceError> {
    Ok(run_state_files(&super::suite_files(dir)?, options))
}

/// Runs the `GeneralStateTests` in `files` (in parallel across files; the report keeps file
/// order).
pub fn run_state_files<P: AsRef<Path> + Sync>(files: &[P], options: &SuiteOptions) -> SuiteReport {
    run_files(Suite::State, files, options, run_file)
}

fn run_file(path: &Path, options: &SuiteOptions) -> Vec<(String, Verdict)> {
    let tests = match loaded_or_verdict(Suite::State, path, state::load_file(path)) {
        Ok(tests) => tests,
        Err(verdict) => return verdict,
    };
    let skip = skip_reason(Suite::State, path);
    let mut verdicts = Vec::new();
    for (name, test) in &tests {
        let selected: Vec<(&String, &Vec<PostEntry>)> =
            test.post.iter().filter(|(fork, _)| options.fork_selected(fork)).collect();
        if selected.is_empty() {
            continue;
        }
        let vector_name = |fork: &str, entry: &PostEntry| {
            let indexes = entry.indexes;
            format!("{name}/{fork}/d{}g{}v{}", indexes.data, indexes.gas, indexes.value)
        };
        let mut record_all = |verdict: &Verdict| {
            for (fork, entries) in &selected {
                for entry in entries.iter() {
                    verdicts.push((vector_name(fork, entry), verdict.clone()));
                }
            }
        };
        if let Some(reason) = skip {
            record_all(&Verdict::Skipped(reason.to_string()));
            continue;
        }
        let prepared = env_header(&test.env)
            .and_then(|header| Ok((prepare(test, header.number, options)?, header)));
        let ((store, pre), header) = match prepared {
            Ok(prepared) => prepared,
            Err(difference) => {
                record_all(&Verdict::Failed(difference));
                continue;
            }
        };
        for (fork, entries) in &selected {
            let chain = ChainSpec::for_test_fork(fork);
            let env = chain.as_ref().map(|chain| evm_env(chain, &header));
            for entry in entries.iter() {
                let verdict = match &env {
                    None => Verdict::Skipped(format!(
                        "fork {fork:?} has no chain specification (see ChainSpec::for_test_fork)"
                    )),
                    Some(env) => run_vector(&test.transaction, entry, env, &store, &pre),
                };
                verdicts.push((vector_name(fork, entry), verdict));
            }
        }
    }
    verdicts
}

/// A fresh store holding the test's pre-state and the hashes of the blocks before `number`,
/// and the same state in full.
fn prepare(
    test: &StateTest,
    number: u64,
    options: &SuiteOptions,
) -> Result<(TestStore, FullState), String> {
    let accounts = genesis_accounts(&test.pre);
    let block_hashes: Vec<(u64, B256)> = (number.saturating_sub(BLOCK_HASH_WINDOW)..number)
        .map(|n| (n, keccak256(n.to_string())))
        .collect();
    let mut store = TestStore::open(options.store, options.scratch_dir.as_deref())
        .map_err(|error| format!("cannot open the store: {error}"))?;
    store
        .commit_block(&genesis_changes(0, &accounts, &block_hashes))
        .map_err(|error| format!("cannot commit the pre-state: {error}"))?;
    Ok((store, FullState::from_genesis(&accounts)))
}

/// The header a state test's environment describes (the fields the EVM environment reads). A
/// number a header cannot hold is malformed: clamped, it would run another test.
fn env_header(env: &StateEnv) -> Result<Header, String> {
    let word = |name: &str, value: U256| {
        u64::try_from(value)
            .map_err(|_| format!("malformed environment: {name} {value} does not fit in 64 bits"))
    };
    Ok(Header {
        beneficiary: env.current_coinbase,
        difficulty: env.current_difficulty,
        number: word("currentNumber", env.current_number)?,
        gas_limit: word("currentGasLimit", env.current_gas_limit)?,
        timestamp: word("currentTimestamp", env.current_timestamp)?,
        base_fee_per_gas: env
            .current_base_fee
            .map(|fee| word("currentBaseFee", fee))
            .transpose()?,
        mix_hash: env.current_random.unwrap_or_default(),
        excess_blob_gas: env
            .current_excess_blob_gas
            .map(|gas| word("currentExcessBlobGas", gas))
            .transpose()?,
        ..Header::default()
    })
}

/// Runs one vector: the transaction `entry.txbytes` on the pre-state in `store`.
fn run_vector(
    template: &StateTransaction,
    entry: &PostEntry,
    env: &EvmEnv,
    store: &TestStore,
    pre: &FullState,
) -> Verdict {
    let rejected = |reason: String, refusal: Refusal| match &entry.expect_exception {
        Some(expected) if expected_by(expected, &refusal) => Verdict::Passed,
        Some(expected) => Verdict::Failed(format!(
            "expected {expected}, but the transaction was rejected for another reason: {reason}"
        )),
        None => Verdict::Failed(format!("transaction rejected: {reason}")),
    };
    let tx = match decode_transaction(0, &entry.txbytes).and_then(|envelope| recover(0, envelope)) {
        Ok(tx) => tx,
        Err(error) => return rejected(error.to_string(), Refusal::UNDECODABLE),
    };
    if let Err(difference) = check_template(&tx, template, entry) {
        return Verdict::Failed(difference);
    }

    let mut db =
        State::builder().with_database_ref(StateDatabase::new(store)).with_bundle_update().build();
    let result = EthEvmFactory::default().create_evm(&mut db, env.clone()).transact_commit(&tx);
    let result = match result {
        Ok(result) => result,
        Err(EVMError::Transaction(invalid)) => {
            return rejected(invalid.to_string(), Refusal::transaction(&invalid))
        }
        Err(error) => return Verdict::Failed(format!("execution failed: {error}")),
    };
    if let Some(exception) = &entry.expect_exception {
        return Verdict::Failed(format!(
            "expected {exception}, but the transaction executed (success: {})",
            result.is_success()
        ));
    }
    let logs = logs_hash(result.logs());
    if logs != entry.logs {
        return Verdict::Failed(format!("logs hash {logs}, expected {}", entry.logs));
    }
    db.merge_transitions(BundleRetention::PlainState);
    let mut post = pre.clone();
    post.apply(&changes_from_bundle(1, &db.take_bundle()));
    let root = post.state_root();
    if root != entry.hash {
        return Verdict::Failed(format!("state root {root}, expected {}", entry.hash));
    }
    Verdict::Passed
}

/// Checks that `tx` is the transaction the vector's indexes choose from `template`.
fn check_template(
    tx: &RecoveredTx,
    template: &StateTransaction,
    entry: &PostEntry,
) -> Result<(), String> {
    let indexes = entry.indexes;
    let (Some(data), Some(gas_limit), Some(value)) = (
        template.data.get(indexes.data),
        template.gas_limit.get(indexes.gas),
        template.value.get(indexes.value),
    ) else {
        return Err(format!("indexes {indexes:?} are out of range of the transaction's vectors"));
    };
    let to = match tx.kind() {
        TxKind::Call(to) => Some(to),
        TxKind::Create => None,
    };
    let mismatch = if tx.input() != data {
        Some("data")
    } else if U256::from(tx.gas_limit()) != *gas_limit {
        Some("gas limit")
    } else if tx.value() != *value {
        Some("value")
    } else if U256::from(tx.nonce()) != template.nonce {
        Some("nonce")
    } else if to != template.to {
        Some("recipient")
    } else if template.sender.is_some_and(|sender| sender != tx.signer()) {
        Some("sender")
    } else {
        None
    };
    match mismatch {
        Some(field) => Err(format!("txbytes differ from the transaction's {field} at {indexes:?}")),
        None => Ok(()),
    }
}
