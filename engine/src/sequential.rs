//! The sequential oracle: alloy-evm's Ethereum block executor over a block's transactions, in
//! order, on a [`StateReader`]. This is the canonical meaning of a block (ARCHITECTURE §2); every
//! parallel path must reproduce its receipts, gas, logs and state changes exactly.

use crate::{
    chain::ChainSpec,
    database::{store_account, StateDatabase},
    intake::RecoveredTx,
    trie::ordered_trie_root,
    ExecutionError,
};
use alloy_consensus::{Header, ReceiptEnvelope, TxReceipt};
use alloy_eips::{
    eip2718::Encodable2718, eip4895::Withdrawal, eip7685::Requests, eip7840::BlobParams,
};
use alloy_evm::{
    block::{BlockExecutionError, BlockExecutionResult, BlockExecutor, BlockExecutorFactory},
    eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutionCtx, EthBlockExecutorFactory},
    EthEvmFactory, EvmEnv, EvmFactory,
};
use alloy_hardforks::{EthereumHardfork, EthereumHardforks};
use alloy_primitives::{Bloom, B256};
use revm::database::{
    states::bundle_state::BundleRetention, BundleState, OriginalValuesKnown, State,
};
use std::borrow::Cow;
use zero_state::{BlockChanges, StateReader, StorageChange};

/// One block to execute: its header (the fields execution reads), ommers, withdrawals and the
/// transactions in block order with senders recovered.
#[derive(Debug, Clone, Copy)]
pub struct BlockInput<'a> {
    /// The block header. `gas_used`, `receipts_root`, `logs_bloom` and `state_root` are outputs
    /// and are not read.
    pub header: &'a Header,
    /// Ommer headers (their rewards are paid at block end before the merge).
    pub ommers: &'a [Header],
    /// EIP-4895 withdrawals, from Shanghai on.
    pub withdrawals: Option<&'a [Withdrawal]>,
    /// Transactions in block order.
    pub transactions: &'a [RecoveredTx],
}

/// What executing a block produced.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// One receipt per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Gas used by the block.
    pub gas_used: u64,
    /// Blob gas used by the block.
    pub blob_gas_used: u64,
    /// OR of the receipts' blooms.
    pub logs_bloom: Bloom,
    /// Root of the receipts trie (meaningful from Byzantium on; before, receipts held state roots
    /// that only a full Merkle-Patricia state could give).
    pub receipts_root: B256,
    /// The state changes, ready to commit at the block's height.
    pub changes: BlockChanges,
    /// The execution-layer requests the block's post-block system calls returned (EIP-7685;
    /// empty before Prague): what the header's `requests_hash` commits to.
    pub requests: Requests,
}

impl BlockOutcome {
    /// Number of transactions that did not succeed (reverted or halted).
    pub fn failed_transactions(&self) -> usize {
        self.receipts.iter().filter(|receipt| !receipt.status()).count()
    }
}

/// Loads the KZG trusted setup used by the EIP-4844 point-evaluation precompile. It is built
/// once per process (seconds, with precomputed tables); calling this before a clock starts keeps
/// that one-time cost out of the figure of whichever block first verifies a blob proof.
pub fn warm_up_kzg() {
    // An all-zero proof is invalid; verifying it still loads the settings.
    let _ = revm::precompile::kzg_point_evaluation::verify_kzg_proof(
        &[0; 48], &[0; 32], &[0; 32], &[0; 48],
    );
}

/// The blob parameters of the fork active at `timestamp` on `chain` (`None` before Cancun):
/// Cancun's, Prague's (EIP-7691), Osaka's (EIP-7918's blob base cost, EIP-7594's cap per
/// transaction) and those of the blob-parameter-only forks BPO1 and BPO2 (EIP-7892), which
/// mainnet activates after Osaka. BPO3 to BPO5 have no parameters in alloy-eips and no chain
/// here schedules them.
pub fn blob_params(chain: &ChainSpec, timestamp: u64) -> Option<BlobParams> {
    let schedule = [
        (EthereumHardfork::Bpo2, BlobParams::bpo2()),
        (EthereumHardfork::Bpo1, BlobParams::bpo1()),
        (EthereumHardfork::Osaka, BlobParams::osaka()),
        (EthereumHardfork::Prague, BlobParams::prague()),
        (EthereumHardfork::Cancun, BlobParams::cancun()),
    ];
    schedule
        .into_iter()
        .find(|(fork, _)| chain.is_ethereum_fork_active_at_timestamp(*fork, timestamp))
        .map(|(_, params)| params)
}

/// The EVM environment of `header` on `chain`, with the blob parameters of its fork.
pub fn evm_env(chain: &ChainSpec, header: &Header) -> EvmEnv {
    let blob_params = blob_params(chain, header.timestamp);
    EvmEnv::for_eth_block(header, chain, chain.chain_id, blob_params)
}

/// Executes `input` sequentially on `state` and returns its receipts and state changes.
/// `state` is only read; committing [`BlockOutcome::changes`] is the caller's choice.
pub fn execute_block<S: StateReader>(
    chain: &ChainSpec,
    input: BlockInput<'_>,
    state: &S,
) -> Result<BlockOutcome, ExecutionError> {
    let number = input.header.number;
    let block_error = |source: BlockExecutionError| ExecutionError::Block { number, source };

    let mut db =
        State::builder().with_database_ref(StateDatabase::new(state)).with_bundle_update().build();
    let factory = executor_factory(chain);
    let evm = factory.evm_factory().create_evm(&mut db, evm_env(chain, input.header));
    let mut executor = factory.create_executor(evm, execution_context(&input));
    executor.apply_pre_execution_changes().map_err(block_error)?;
    for tx in input.transactions {
        executor.execute_transaction(tx).map_err(block_error)?;
    }
    let (_, result) = executor.finish().map_err(block_error)?;
    Ok(block_outcome(number, result, &mut db))
}

/// alloy-evm's Ethereum block-executor factory for `chain`, as the oracle configures it.
pub(crate) fn executor_factory(
    chain: &ChainSpec,
) -> EthBlockExecutorFactory<AlloyReceiptBuilder, ChainSpec, EthEvmFactory> {
    EthBlockExecutorFactory::new(
        AlloyReceiptBuilder::default(),
        chain.clone(),
        EthEvmFactory::default(),
    )
}

/// The block-level context alloy-evm's executor needs for `input`.
pub(crate) fn execution_context<'a>(input: &BlockInput<'a>) -> EthBlockExecutionCtx<'a> {
    EthBlockExecutionCtx {
        parent_hash: input.header.parent_hash,
        parent_beacon_block_root: input.header.parent_beacon_block_root,
        ommers: input.ommers,
        withdrawals: input.withdrawals.map(Cow::Borrowed),
        extra_data: input.header.extra_data.clone(),
        tx_count_hint: Some(input.transactions.len()),
        slot_number: None,
    }
}

/// Assembles a block's outcome from alloy-evm's result and the `State` that accumulated its
/// transitions: the change set, logs bloom and receipts root.
pub(crate) fn block_outcome<DB: revm::Database>(
    height: u64,
    result: BlockExecutionResult<ReceiptEnvelope>,
    db: &mut State<DB>,
) -> BlockOutcome {
    outcome_from(result, state_changes(height, db))
}

/// The change set of the transitions `db` accumulated (taken out of it).
pub(crate) fn state_changes<DB: revm::Database>(height: u64, db: &mut State<DB>) -> BlockChanges {
    db.merge_transitions(BundleRetention::PlainState);
    changes_from_bundle(height, &db.take_bundle())
}

/// A block's outcome from alloy-evm's result and the change set: the logs bloom and the receipts
/// root (built in parallel when the rayon pool has threads).
pub(crate) fn outcome_from(
    result: BlockExecutionResult<ReceiptEnvelope>,
    changes: BlockChanges,
) -> BlockOutcome {
    let receipts_root =
        ordered_trie_root(&result.receipts, |receipt, out| receipt.encode_2718(out));
    outcome_with_root(result, changes, receipts_root)
}

/// [`outcome_from`] with the root of `result`'s receipts already known.
pub(crate) fn outcome_with_root(
    result: BlockExecutionResult<ReceiptEnvelope>,
    changes: BlockChanges,
    receipts_root: B256,
) -> BlockOutcome {
    let logs_bloom =
        result.receipts.iter().fold(Bloom::ZERO, |bloom, receipt| bloom | receipt.bloom());
    BlockOutcome {
        receipts_root,
        receipts: result.receipts,
        gas_used: result.gas_used,
        blob_gas_used: result.blob_gas_used,
        logs_bloom,
        changes,
        requests: result.requests,
    }
}

/// Converts revm's bundle (original values known) into the store's change set.
pub fn changes_from_bundle(height: u64, bundle: &BundleState) -> BlockChanges {
    let plain = bundle.to_plain_state(OriginalValuesKnown::Yes);
    let mut changes = BlockChanges::new(height);
    changes.accounts = plain
        .accounts
        .into_iter()
        .map(|(address, info)| (address, info.as_ref().map(store_account)))
        .collect();
    changes.storage = plain
        .storage
        .into_iter()
        .map(|change| StorageChange {
            address: change.address,
            wiped: change.wipe_storage,
            slots: change.storage,
        })
        .collect();
    changes.code =
        plain.contracts.into_iter().map(|(hash, code)| (hash, code.original_bytes())).collect();
    changes.normalize();
    changes
}
