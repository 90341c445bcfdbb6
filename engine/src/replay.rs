//! Replay of Ethereum mainnet block fixtures.
//!
//! Each block runs on an in-memory state holding exactly its fixture pre-state, and is checked
//! against its own header: gas used, logs bloom, and (from Byzantium on, when receipts stopped
//! carrying intermediate state roots) the receipts root. The fixtures hold only the accessed
//! pre-state, so the post-state root cannot be checked here; ommer headers are not in the
//! fixtures either, so ommer rewards (which touch only state) are not applied: blocks 1,796,867,
//! 5,283,152 and 8,889,776 have uncles, and their change sets, in both engines, lack the rewards.

use crate::{
    chain::ChainSpec,
    genesis::genesis_changes,
    intake::RecoveredTx,
    sequential::{execute_block, warm_up_kzg, BlockInput, BlockOutcome},
    ExecutionError,
};
use alloy_consensus::transaction::SignerRecoverable;
use alloy_hardforks::EthereumHardforks;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;
use zero_fixtures::{mainnet::MainnetBlock, FixtureError};
use zero_state::{MemoryState, StateCommit};

/// Why a block could not be replayed at all (as opposed to replayed with a mismatch).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The fixture could not be read.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The fixture is inconsistent.
    #[error("block {block}: {reason}")]
    Inconsistent {
        /// The block number.
        block: u64,
        /// What is wrong.
        reason: String,
    },
    /// Execution failed.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
}

/// The result of replaying one block: one JSON line of `zero-producer replay`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// Block number.
    pub block: u64,
    /// Transactions in the block.
    pub txs: usize,
    /// Gas used as executed.
    pub gas_used: u64,
    /// Receipts root matches the header; `None` before Byzantium (not checkable).
    pub receipts_root_ok: Option<bool>,
    /// Logs bloom matches the header.
    pub logs_bloom_ok: bool,
    /// Gas used matches the header.
    pub gas_used_ok: bool,
    /// Blob gas used (EIP-4844) matches the header; `None` before Cancun (no such field).
    pub blob_gas_used_ok: Option<bool>,
    /// The hash of the block's requests (EIP-7685) matches the header; `None` before Prague
    /// (no such field; every fixture block is older, so no recorded block has checked it).
    pub requests_hash_ok: Option<bool>,
    /// Execution time in seconds (state setup and sender recovery excluded).
    pub seconds: f64,
}

impl ReplayReport {
    /// Whether every check that applies passed.
    pub fn passed(&self) -> bool {
        self.receipts_root_ok.unwrap_or(true)
            && self.logs_bloom_ok
            && self.gas_used_ok
            && self.blob_gas_used_ok.unwrap_or(true)
            && self.requests_hash_ok.unwrap_or(true)
    }
}

/// A block ready to execute: recovered transactions and the state it starts from.
pub struct PreparedBlock {
    /// The fixture.
    pub fixture: MainnetBlock,
    /// Transactions with senders recovered (and checked against the fixture's `from`).
    pub transactions: Vec<RecoveredTx>,
    /// The pre-state, committed at the parent's height.
    pub state: MemoryState,
}

/// Recovers senders and builds the pre-state of `fixture` (and loads the KZG setup, so no
/// block's time includes it).
pub fn prepare(fixture: MainnetBlock) -> Result<PreparedBlock, ReplayError> {
    warm_up_kzg();
    let block = fixture.number;
    let transactions = fixture
        .block
        .transactions
        .as_transactions()
        .ok_or_else(|| ReplayError::Inconsistent {
            block,
            reason: "block.json holds transaction hashes, not full transactions".into(),
        })?
        .par_iter()
        .enumerate()
        .map(|(index, tx)| {
            let envelope = tx.inner.inner().clone();
            // Frontier allowed high-s signatures, so recover without the EIP-2 check.
            let sender = envelope.recover_signer_unchecked().map_err(|error| {
                ReplayError::Inconsistent { block, reason: format!("transaction {index}: {error}") }
            })?;
            if sender != tx.inner.signer() {
                return Err(ReplayError::Inconsistent {
                    block,
                    reason: format!(
                        "transaction {index}: signature recovers to {sender}, fixture says {}",
                        tx.inner.signer()
                    ),
                });
            }
            Ok(RecoveredTx::new_unchecked(envelope, sender))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut state = MemoryState::new();
    let parent = block.checked_sub(1).ok_or_else(|| ReplayError::Inconsistent {
        block,
        reason: "the genesis block cannot be replayed".into(),
    })?;
    state
        .commit_block(&genesis_changes(parent, &fixture.pre_state, &fixture.block_hashes))
        .map_err(ExecutionError::from)?;
    Ok(PreparedBlock { fixture, transactions, state })
}

/// Executes a prepared block with the sequential oracle and checks it against its header.
pub fn replay_sequential(
    chain: &ChainSpec,
    prepared: &PreparedBlock,
) -> Result<(ReplayReport, BlockOutcome), ReplayError> {
    let header = &prepared.fixture.block.header.inner;
    let withdrawals = prepared.fixture.block.withdrawals.as_ref().map(|list| list.as_slice());
    let input =
        BlockInput { header, ommers: &[], withdrawals, transactions: &prepared.transactions };
    let started = Instant::now();
    let outcome = execute_block(chain, input, &prepared.state)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((check(chain, header, &outcome, prepared.transactions.len(), seconds), outcome))
}

/// Timings and figures of one block replayed with the FAFO engine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FafoReplayFigures {
    /// Prediction time, in seconds (part of the report's `seconds`).
    pub predict_seconds: f64,
    /// Planning time, in seconds (part of the report's `seconds`).
    pub schedule_seconds: f64,
    /// Parallel execution time, in seconds (part of the report's `seconds`).
    pub execute_seconds: f64,
    /// Executor figures.
    #[serde(flatten)]
    pub stats: crate::parallel::ParallelStats,
}

/// Executes a prepared block with the FAFO engine in replay mode (the block's order is kept;
/// the dependency plan decides what runs at once) and checks it against its header. The
/// report's `seconds` covers prediction, planning and execution. The executor's code cache is
/// emptied first: the block's contracts are analysed inside its time, as in a sequential
/// replay, and not served from an earlier run of the same block.
pub fn replay_fafo(
    chain: &ChainSpec,
    prepared: &PreparedBlock,
    executor: &crate::parallel::ParallelExecutor,
    prediction: crate::parallel::PredictionMode,
) -> Result<(ReplayReport, BlockOutcome, FafoReplayFigures), ReplayError> {
    let header = &prepared.fixture.block.header.inner;
    let withdrawals = prepared.fixture.block.withdrawals.as_ref().map(|list| list.as_slice());
    let transactions = &prepared.transactions;
    let input = BlockInput { header, ommers: &[], withdrawals, transactions };
    executor.codes().clear();
    let started = Instant::now();
    let env = crate::sequential::evm_env(chain, header);
    let predictions = crate::parallel::predict(
        transactions,
        prediction,
        &env,
        header.beneficiary,
        &prepared.state,
        executor.codes(),
    )?;
    let predict_seconds = started.elapsed().as_secs_f64();
    let planned = Instant::now();
    let schedule = crate::parallel::schedule_block(
        &predictions,
        header.beneficiary,
        zero_scheduler::ScheduleMode::Replay,
    );
    let schedule_seconds = planned.elapsed().as_secs_f64();
    let executed = Instant::now();
    let (outcome, stats) =
        executor.execute_block(chain, input, &predictions, &schedule.plan, &prepared.state)?;
    let execute_seconds = executed.elapsed().as_secs_f64();
    let seconds = started.elapsed().as_secs_f64();
    let report = check(chain, header, &outcome, transactions.len(), seconds);
    Ok((
        report,
        outcome,
        FafoReplayFigures { predict_seconds, schedule_seconds, execute_seconds, stats },
    ))
}

/// Compares an outcome with the header the chain recorded.
pub fn check(
    chain: &ChainSpec,
    header: &alloy_consensus::Header,
    outcome: &BlockOutcome,
    txs: usize,
    seconds: f64,
) -> ReplayReport {
    let byzantium = chain.is_byzantium_active_at_block(header.number);
    ReplayReport {
        block: header.number,
        txs,
        gas_used: outcome.gas_used,
        receipts_root_ok: byzantium.then(|| outcome.receipts_root == header.receipts_root),
        logs_bloom_ok: outcome.logs_bloom == header.logs_bloom,
        gas_used_ok: outcome.gas_used == header.gas_used,
        blob_gas_used_ok: header.blob_gas_used.map(|used| used == outcome.blob_gas_used),
        requests_hash_ok: header.requests_hash.map(|hash| hash == outcome.requests.requests_hash()),
        seconds,
    }
}
