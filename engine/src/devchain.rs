//! A chain of produced blocks on top of a state store.
//!
//! [`DevChain`] builds each next header (number, timestamp, EIP-1559 base fee, parent hash),
//! executes the block's transactions, fills in the outputs (gas used, receipts root, logs bloom,
//! and the store's state root), commits the changes with the block's hash, and moves on. The
//! header's `state_root` is the store's own root (QMDB or in-memory), not a Merkle-Patricia root.

use crate::{
    chain::ChainSpec,
    genesis::{genesis_changes, system_contracts},
    intake::RecoveredTx,
    parallel::{predict, schedule_block, ParallelExecutor, ParallelStats, PredictionMode},
    sequential::{evm_env, execute_block, BlockInput, BlockOutcome},
    trie::ordered_trie_root,
    ExecutionError,
};
use alloy_consensus::{constants::EMPTY_WITHDRAWALS, Header, EMPTY_OMMER_ROOT_HASH};
use alloy_eips::{eip1559::BaseFeeParams, eip2718::Encodable2718, eip7685::EMPTY_REQUESTS_HASH};
use alloy_primitives::{Address, B256};
use std::time::Instant;
use zero_fixtures::GenesisAccount;
use zero_scheduler::{ScheduleMode, ScheduleStats};
use zero_state::{StateCommit, StateReader};

/// Timestamp of the dev chain's genesis block.
pub const GENESIS_TIMESTAMP: u64 = 1_700_000_000;
/// Seconds between blocks.
pub const BLOCK_TIME: u64 = 2;
/// Base fee of the genesis block: 1 gwei.
pub const GENESIS_BASE_FEE: u64 = 1_000_000_000;

/// A produced chain: the state store and the last block's header.
#[derive(Debug, Clone)]
pub struct DevChain<S> {
    chain: ChainSpec,
    state: S,
    parent: Header,
    /// `parent.hash_slow()`, computed once when the parent was sealed.
    parent_hash: B256,
    gas_limit: u64,
}

/// How a block went through the FAFO engine.
#[derive(Debug, Clone)]
pub struct FafoBlockReport {
    /// The transactions in the order FAFO chose (the block's order).
    pub transactions: Vec<RecoveredTx>,
    /// Prediction (ParaLyze) time, in seconds.
    pub predict_seconds: f64,
    /// Task building, framing and planning time, in seconds.
    pub schedule_seconds: f64,
    /// Parallel execution time (system calls, transactions, post-block changes), in seconds.
    pub execute_seconds: f64,
    /// State commit (Merkleization) time, in seconds.
    pub commit_seconds: f64,
    /// Scheduler figures.
    pub schedule: ScheduleStats,
    /// Executor figures.
    pub execution: ParallelStats,
}

/// One produced block.
#[derive(Debug, Clone)]
pub struct ProducedBlock {
    /// The sealed header, outputs filled in.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
    /// Receipts, changes and the rest of the execution outcome.
    pub outcome: BlockOutcome,
}

impl<S: StateReader + StateCommit> DevChain<S> {
    /// Commits `accounts` plus the system contracts as block 0 of `state` and starts a chain
    /// whose blocks have `gas_limit`.
    pub fn genesis(
        chain: ChainSpec,
        mut state: S,
        accounts: &[GenesisAccount],
        gas_limit: u64,
    ) -> Result<Self, ExecutionError> {
        let mut all = system_contracts();
        all.extend_from_slice(accounts);
        let mut header = Header {
            number: 0,
            timestamp: GENESIS_TIMESTAMP,
            gas_limit,
            base_fee_per_gas: Some(GENESIS_BASE_FEE),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            ..Header::default()
        };
        // A header's hash covers its state root, so commit first, then record the hash.
        header.state_root = state.commit_block(&genesis_changes(0, &all, &[]))?;
        let parent_hash = header.hash_slow();
        state.record_block_hash(0, parent_hash)?;
        Ok(Self { chain, state, parent: header, parent_hash, gas_limit })
    }

    /// The last committed header.
    pub fn head(&self) -> &Header {
        &self.parent
    }

    /// The state store.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The header of the next block, outputs not yet filled in.
    pub fn next_header(&self, beneficiary: Address, transactions: &[RecoveredTx]) -> Header {
        let parent = &self.parent;
        let parent_hash = self.parent_hash;
        let base_fee = BaseFeeParams::ethereum().next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            parent.base_fee_per_gas.unwrap_or(GENESIS_BASE_FEE),
        );
        Header {
            parent_hash,
            number: parent.number + 1,
            timestamp: parent.timestamp + BLOCK_TIME,
            beneficiary,
            gas_limit: self.gas_limit,
            base_fee_per_gas: Some(base_fee),
            transactions_root: ordered_trie_root(transactions, |tx, buf| {
                tx.inner().encode_2718(buf)
            }),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            // A zone has no beacon chain; the parent hash stands in for the beacon root.
            parent_beacon_block_root: Some(parent_hash),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            mix_hash: parent_hash,
            ..Header::default()
        }
    }

    /// Executes `transactions` as the next block with the sequential oracle and commits it.
    pub fn produce_sequential(
        &mut self,
        beneficiary: Address,
        transactions: &[RecoveredTx],
    ) -> Result<ProducedBlock, ExecutionError> {
        let header = self.next_header(beneficiary, transactions);
        let input =
            BlockInput { header: &header, ommers: &[], withdrawals: Some(&[]), transactions };
        let outcome = execute_block(&self.chain, input, &self.state)?;
        self.seal_and_commit(header, outcome)
    }

    /// Produces the next block with the FAFO engine: predicts each transaction's access set
    /// against the current state, lets the framer choose the order (each sender's transactions
    /// keep their nonce order), executes in parallel under the dependency plan and commits. The
    /// block records the chosen order; executing that order sequentially gives the same block.
    pub fn produce_fafo(
        &mut self,
        beneficiary: Address,
        transactions: &[RecoveredTx],
        executor: &ParallelExecutor,
        prediction: PredictionMode,
    ) -> Result<(ProducedBlock, FafoBlockReport), ExecutionError> {
        let started = Instant::now();
        let provisional = self.next_header(beneficiary, &[]);
        let env = evm_env(&self.chain, &provisional);
        let predictions =
            predict(transactions, prediction, &env, beneficiary, &self.state, executor.codes())?;
        let predict_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let schedule =
            schedule_block(transactions, &predictions, beneficiary, ScheduleMode::Producer);
        let ordered: Vec<RecoveredTx> =
            schedule.order.iter().map(|&index| transactions[index].clone()).collect();
        let ordered_predictions: Vec<_> =
            schedule.order.iter().map(|&index| predictions[index].clone()).collect();
        let schedule_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let header = self.next_header(beneficiary, &ordered);
        let input = BlockInput {
            header: &header,
            ommers: &[],
            withdrawals: Some(&[]),
            transactions: &ordered,
        };
        let (outcome, execution) = executor.execute_block(
            &self.chain,
            input,
            &ordered_predictions,
            &schedule.plan,
            &self.state,
        )?;
        let execute_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let block = self.seal_and_commit(header, outcome)?;
        let commit_seconds = started.elapsed().as_secs_f64();
        let report = FafoBlockReport {
            transactions: ordered,
            predict_seconds,
            schedule_seconds,
            execute_seconds,
            commit_seconds,
            schedule: schedule.stats,
            execution,
        };
        Ok((block, report))
    }

    /// Fills the header's outputs from `outcome`, commits the changes and the parent's hash, and
    /// makes the block the new head.
    pub fn seal_and_commit(
        &mut self,
        mut header: Header,
        outcome: BlockOutcome,
    ) -> Result<ProducedBlock, ExecutionError> {
        header.gas_used = outcome.gas_used;
        header.receipts_root = outcome.receipts_root;
        header.logs_bloom = outcome.logs_bloom;
        header.state_root = self.state.commit_block(&outcome.changes)?;
        let hash = header.hash_slow();
        self.state.record_block_hash(header.number, hash)?;
        self.parent = header.clone();
        self.parent_hash = hash;
        Ok(ProducedBlock { header, hash, outcome })
    }
}
