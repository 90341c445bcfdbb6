//! The block rules the executor does not check, and the error that names the rule a block broke.
//!
//! alloy-evm's block executor checks each transaction against the state and the block's gas
//! limit, and runs the system calls; it does not look at the header. Importing a block needs the
//! rest of the consensus rules: before execution, the header against its parent and the body's
//! format; after, the header's commitments (gas used, transactions root, state root, receipts
//! root, logs bloom, withdrawals root, blob gas used, requests hash) against what execution
//! produced, in the specification's order. Proof-of-work checks (difficulty, seal, ommer
//! validity) are not checked.

use super::exceptions::Refusal;
use crate::{
    chain::ChainSpec,
    sequential::{blob_params, BlockOutcome},
    ExecutionError,
};
use alloy_consensus::{
    proofs::{calculate_ommers_root, calculate_transaction_root, calculate_withdrawals_root},
    Block, Header, ReceiptEnvelope, TxEnvelope, EMPTY_OMMER_ROOT_HASH,
};
use alloy_eips::{
    eip1559::{BaseFeeParams, INITIAL_BASE_FEE},
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{b256, Address, Bloom, B256, B64, U256};
use zero_state::StateError;

/// Most bytes of `extra_data` a header may carry.
const MAX_EXTRA_DATA: usize = 32;
/// Smallest gas limit a block may have.
const MIN_GAS_LIMIT: u64 = 5000;
/// Largest gas limit a block may have (the yellow paper's 2^63 - 1).
const MAX_GAS_LIMIT: u64 = i64::MAX as u64;
/// A block's gas limit may move by less than `parent / GAS_LIMIT_BOUND_DIVISOR`.
const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;

/// Why a block was rejected. [`BlockError::rule`] names the rule in a word.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The bytes are not an RLP block.
    #[error("block RLP does not decode: {reason}")]
    Decode {
        /// The decoder's message.
        reason: String,
    },
    /// A transaction's signature does not recover to a sender.
    #[error("transaction {index}: invalid signature: {reason}")]
    Signature {
        /// Position in the block.
        index: usize,
        /// The recovery error.
        reason: String,
    },
    /// The parent hash is not the head's hash.
    #[error("parent hash {got} is not the head {expected}")]
    ParentHash {
        /// The head's hash.
        expected: B256,
        /// The header's parent hash.
        got: B256,
    },
    /// The number does not follow the parent's.
    #[error("block number {got} does not follow the parent's {parent}")]
    Number {
        /// The parent's number.
        parent: u64,
        /// The header's number.
        got: u64,
    },
    /// The timestamp is not after the parent's.
    #[error("timestamp {got} is not after the parent's {parent}")]
    Timestamp {
        /// The parent's timestamp.
        parent: u64,
        /// The header's timestamp.
        got: u64,
    },
    /// The gas limit moved too far from the parent's, or is below the minimum.
    #[error("gas limit {got} is out of bounds for a parent gas limit of {parent}")]
    GasLimit {
        /// The parent's gas limit.
        parent: u64,
        /// The header's gas limit.
        got: u64,
    },
    /// The header claims more gas than its limit.
    #[error("gas used {used} exceeds the gas limit {limit}")]
    GasUsedAboveLimit {
        /// The header's gas used.
        used: u64,
        /// The header's gas limit.
        limit: u64,
    },
    /// `extra_data` is longer than 32 bytes.
    #[error("extra data is {length} bytes, more than {MAX_EXTRA_DATA}")]
    ExtraData {
        /// Its length.
        length: usize,
    },
    /// The base fee is not the one EIP-1559 derives from the parent.
    #[error("base fee {got:?}, expected {expected:?}")]
    BaseFee {
        /// Derived from the parent.
        expected: Option<u64>,
        /// In the header.
        got: Option<u64>,
    },
    /// A proof-of-stake header with a difficulty.
    #[error("difficulty {got} after the merge")]
    Difficulty {
        /// The header's difficulty.
        got: U256,
    },
    /// A proof-of-stake header with a nonce.
    #[error("nonce {got} after the merge")]
    Nonce {
        /// The header's nonce.
        got: B64,
    },
    /// A proof-of-stake block with ommers.
    #[error("{count} ommers after the merge")]
    OmmersAfterMerge {
        /// How many.
        count: usize,
    },
    /// An ommers hash that does not match the body.
    #[error("ommers hash {got}, the body's ommers hash to {expected}")]
    Ommers {
        /// The hash of the body's ommers (the empty list's after the merge).
        expected: B256,
        /// In the header.
        got: B256,
    },
    /// The transactions root does not match the body.
    #[error("transactions root {got}, the body's transactions hash to {expected}")]
    TransactionsRoot {
        /// Computed from the body.
        expected: B256,
        /// In the header.
        got: B256,
    },
    /// A body with withdrawals before Shanghai, or without from Shanghai on.
    #[error("withdrawals present: {present}, Shanghai active: {shanghai}")]
    Withdrawals {
        /// The body has a withdrawals list.
        present: bool,
        /// Shanghai is active at the block.
        shanghai: bool,
    },
    /// The header's withdrawals root does not match the body.
    #[error("withdrawals root {got:?}, expected {expected:?}")]
    WithdrawalsRoot {
        /// Computed from the body (`None` before Shanghai).
        expected: Option<B256>,
        /// In the header.
        got: Option<B256>,
    },
    /// `blob_gas_used` missing, unexpected, or not what the block's transactions use.
    #[error("blob gas used {got:?}, expected {expected:?}")]
    BlobGasUsed {
        /// What the transactions use (`None` before Cancun).
        expected: Option<u64>,
        /// In the header.
        got: Option<u64>,
    },
    /// More blob gas than a block may use.
    #[error("blob gas used {used} exceeds the block maximum {max}")]
    BlobGasAboveMax {
        /// In the header.
        used: u64,
        /// The fork's maximum.
        max: u64,
    },
    /// `excess_blob_gas` not the one EIP-4844 derives from the parent.
    #[error("excess blob gas {got:?}, expected {expected:?}")]
    ExcessBlobGas {
        /// Derived from the parent (`None` before Cancun).
        expected: Option<u64>,
        /// In the header.
        got: Option<u64>,
    },
    /// `parent_beacon_block_root` missing from Cancun on, or present before.
    #[error("parent beacon block root {got:?} where Cancun {required}")]
    ParentBeaconBlockRoot {
        /// In the header.
        got: Option<B256>,
        /// "requires one" or "is not active".
        required: &'static str,
    },
    /// Execution rejected the block or one of its transactions.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// The header's gas used is not what execution used.
    #[error("gas used {header} in the header, {executed} executed")]
    GasUsed {
        /// In the header.
        header: u64,
        /// By execution.
        executed: u64,
    },
    /// A deposit contract event whose data is not laid out as EIP-6110 requires (five byte
    /// strings of 48, 32, 8, 96 and 8 bytes at fixed offsets, 576 bytes in all).
    #[error("transaction {transaction}: deposit event {log} is not laid out as EIP-6110 requires: {reason}")]
    DepositLayout {
        /// The transaction whose receipt holds the event.
        transaction: usize,
        /// The log's index in that receipt.
        log: usize,
        /// What is out of place.
        reason: String,
    },
    /// A request contract the block must call at its end (EIP-7002's withdrawal requests,
    /// EIP-7251's consolidation requests) holds no code.
    #[error("the system contract {address} holds no code")]
    SystemContractEmpty {
        /// The contract's address.
        address: Address,
    },
    /// The header has a requests hash before Prague, or none from Prague on: a malformed header,
    /// refused before execution.
    #[error("the header's requests hash is {rule}")]
    RequestsHashField {
        /// The rule broken.
        rule: &'static str,
    },
    /// A block transaction is a blob transaction in its network form, with its blobs (a block
    /// holds only the bare transaction, EIP-4844).
    #[error("transaction {index} is a blob transaction in its network form, with its blobs")]
    FullBlobs {
        /// Position in the block.
        index: usize,
    },
    /// The header's requests hash (EIP-7685, from Prague on) is not the hash of the requests
    /// execution produced, or the field is there before Prague.
    #[error("requests hash {got:?} in the header, {expected:?} executed")]
    RequestsHash {
        /// The hash of the executed requests (`None` before Prague).
        expected: Option<B256>,
        /// In the header.
        got: Option<B256>,
    },
    /// The header's receipts root is not the executed receipts'.
    #[error("receipts root {header} in the header, {executed} executed")]
    ReceiptsRoot {
        /// In the header.
        header: B256,
        /// Of the executed receipts.
        executed: B256,
    },
    /// The header's logs bloom is not the executed receipts'.
    #[error("logs bloom in the header differs from the executed receipts' bloom")]
    LogsBloom {
        /// In the header.
        header: Box<Bloom>,
        /// Of the executed receipts.
        executed: Box<Bloom>,
    },
    /// The header's state root is not the post-state's Merkle-Patricia root.
    #[error("state root {header} in the header, {executed} executed")]
    StateRoot {
        /// In the header.
        header: B256,
        /// Of the executed post-state.
        executed: B256,
    },
    /// The store could not commit the block.
    #[error("commit failed: {0}")]
    Commit(#[from] StateError),
}

impl BlockError {
    /// The rule broken, in a word.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Decode { .. } => "rlp",
            Self::Signature { .. } => "signature",
            Self::ParentHash { .. } => "parent_hash",
            Self::Number { .. } => "number",
            Self::Timestamp { .. } => "timestamp",
            Self::GasLimit { .. } => "gas_limit",
            Self::GasUsedAboveLimit { .. } => "gas_used_above_limit",
            Self::ExtraData { .. } => "extra_data",
            Self::BaseFee { .. } => "base_fee",
            Self::Difficulty { .. } => "difficulty",
            Self::Nonce { .. } => "nonce",
            Self::OmmersAfterMerge { .. } => "ommers_after_merge",
            Self::Ommers { .. } => "ommers",
            Self::TransactionsRoot { .. } => "transactions_root",
            Self::Withdrawals { .. } => "withdrawals",
            Self::WithdrawalsRoot { .. } => "withdrawals_root",
            Self::BlobGasUsed { .. } => "blob_gas_used",
            Self::BlobGasAboveMax { .. } => "blob_gas_above_max",
            Self::ExcessBlobGas { .. } => "excess_blob_gas",
            Self::ParentBeaconBlockRoot { .. } => "parent_beacon_block_root",
            Self::Execution(_) => "execution",
            Self::GasUsed { .. } => "gas_used",
            Self::DepositLayout { .. } => "deposit_layout",
            Self::SystemContractEmpty { .. } => "system_contract_empty",
            Self::RequestsHash { .. } | Self::RequestsHashField { .. } => "requests_hash",
            Self::FullBlobs { .. } => "full_blobs",
            Self::ReceiptsRoot { .. } => "receipts_root",
            Self::LogsBloom { .. } => "logs_bloom",
            Self::StateRoot { .. } => "state_root",
            Self::Commit(_) => "commit",
        }
    }

    /// The names the suites give this refusal (execution-spec-tests' `BlockException` and
    /// `TransactionException`; see [`super::exceptions`]). A transaction refused inside the
    /// block carries revm's reason; an engine or store failure has no name.
    pub fn refusal(&self) -> Refusal {
        use alloy_evm::block::{BlockExecutionError, BlockValidationError};
        match self {
            Self::Decode { .. } | Self::Signature { .. } => Refusal::UNDECODABLE,
            Self::ParentHash { .. } => Refusal::block(&["UNKNOWN_PARENT", "UNKNOWN_PARENT_ZERO"]),
            Self::Number { .. } => Refusal::block(&["INVALID_BLOCK_NUMBER"]),
            Self::Timestamp { .. } => {
                Refusal::block(&["INVALID_BLOCK_TIMESTAMP_OLDER_THAN_PARENT"])
            }
            Self::GasLimit { .. } => Refusal::block(&["INVALID_GASLIMIT", "GASLIMIT_TOO_BIG"]),
            Self::GasUsedAboveLimit { .. } => {
                Refusal::block(&["INVALID_GAS_USED_ABOVE_LIMIT", "GAS_USED_OVERFLOW"])
            }
            Self::ExtraData { .. } => Refusal::block(&["EXTRA_DATA_TOO_BIG"]),
            Self::BaseFee { .. } => Refusal::block(&["INVALID_BASEFEE_PER_GAS"]),
            Self::Difficulty { .. } => {
                Refusal::block(&["INVALID_DIFFICULTY", "IMPORT_IMPOSSIBLE_DIFFICULTY_OVER_PARIS"])
            }
            Self::Nonce { .. } => {
                Refusal::block(&["IMPORT_IMPOSSIBLE_PARIS_WRONG_POW", "INCORRECT_BLOCK_FORMAT"])
            }
            Self::OmmersAfterMerge { .. } => {
                Refusal::block(&["IMPORT_IMPOSSIBLE_UNCLES_OVER_PARIS", "INVALID_UNCLES_HASH"])
            }
            // After the merge a wrong ommers hash is "uncles over Paris" to the suites.
            Self::Ommers { .. } => {
                Refusal::block(&["INVALID_UNCLES_HASH", "IMPORT_IMPOSSIBLE_UNCLES_OVER_PARIS"])
            }
            Self::TransactionsRoot { .. } => Refusal::block(&["INVALID_TRANSACTIONS_ROOT"]),
            Self::Withdrawals { .. } => {
                Refusal::block(&["INCORRECT_BLOCK_FORMAT", "RLP_WITHDRAWALS_NOT_READ"])
            }
            // A field of a fork that is not active, or missing where it is, is a malformed
            // block to the suites; a wrong value is its own refusal.
            Self::WithdrawalsRoot { expected, got } if expected.is_none() || got.is_none() => {
                Refusal::block(&["INCORRECT_BLOCK_FORMAT", "INVALID_WITHDRAWALS_ROOT"])
            }
            Self::WithdrawalsRoot { .. } => Refusal::block(&["INVALID_WITHDRAWALS_ROOT"]),
            Self::BlobGasUsed { expected, got } if expected.is_none() || got.is_none() => {
                Refusal::block(&["INCORRECT_BLOCK_FORMAT", "INCORRECT_BLOB_GAS_USED"])
            }
            Self::BlobGasUsed { .. } => Refusal::block(&["INCORRECT_BLOB_GAS_USED"]),
            // The suites' fixtures put the blobs of every transaction, the refused one too, in
            // the header, so a block with too many blobs fails here before its transaction
            // runs: it meets the transaction's names as well.
            Self::BlobGasAboveMax { .. } => Refusal {
                block: &["BLOB_GAS_USED_ABOVE_LIMIT", "INCORRECT_BLOB_GAS_USED"],
                transaction: &[
                    "TYPE_3_TX_MAX_BLOB_GAS_ALLOWANCE_EXCEEDED",
                    "TYPE_3_TX_BLOB_COUNT_EXCEEDED",
                ],
                undecodable: false,
            },
            Self::ExcessBlobGas { expected, got } if expected.is_none() || got.is_none() => {
                Refusal::block(&["INCORRECT_BLOCK_FORMAT", "INCORRECT_EXCESS_BLOB_GAS"])
            }
            Self::ExcessBlobGas { .. } => Refusal::block(&["INCORRECT_EXCESS_BLOB_GAS"]),
            Self::ParentBeaconBlockRoot { .. } => Refusal::block(&["INCORRECT_BLOCK_FORMAT"]),
            Self::GasUsed { .. } => Refusal::block(&["INVALID_GAS_USED"]),
            Self::DepositLayout { .. } => Refusal::block(&["INVALID_DEPOSIT_EVENT_LAYOUT"]),
            Self::SystemContractEmpty { .. } => Refusal::block(&["SYSTEM_CONTRACT_EMPTY"]),
            // The specification refuses it as it decodes the transaction.
            Self::FullBlobs { .. } => Refusal {
                block: &[],
                transaction: &["TYPE_3_TX_WITH_FULL_BLOBS"],
                undecodable: true,
            },
            Self::RequestsHashField { .. }
            | Self::RequestsHash { expected: None, .. }
            | Self::RequestsHash { got: None, .. } => {
                Refusal::block(&["INCORRECT_BLOCK_FORMAT", "INVALID_REQUESTS"])
            }
            Self::RequestsHash { .. } => Refusal::block(&["INVALID_REQUESTS"]),
            Self::ReceiptsRoot { .. } => Refusal::block(&["INVALID_RECEIPTS_ROOT"]),
            Self::LogsBloom { .. } => Refusal::block(&["INVALID_LOG_BLOOM"]),
            Self::StateRoot { .. } => Refusal::block(&["INVALID_STATE_ROOT"]),
            Self::Execution(ExecutionError::BlobGas { .. }) => Refusal {
                block: &["BLOB_GAS_USED_ABOVE_LIMIT"],
                transaction: &["TYPE_3_TX_MAX_BLOB_GAS_ALLOWANCE_EXCEEDED"],
                undecodable: false,
            },
            Self::Execution(ExecutionError::Block { source, .. }) => match source {
                BlockExecutionError::Validation(BlockValidationError::InvalidTx {
                    error, ..
                }) => error.as_invalid_tx_err().map_or(Refusal::UNNAMED, Refusal::transaction),
                BlockExecutionError::Validation(
                    BlockValidationError::TransactionGasLimitMoreThanAvailableBlockGas { .. },
                ) => Refusal::named_transaction(&["GAS_ALLOWANCE_EXCEEDED"]),
                BlockExecutionError::Validation(BlockValidationError::BlockGasExceeded) => {
                    Refusal::block(&["INVALID_GAS_USED_ABOVE_LIMIT", "GAS_USED_OVERFLOW"])
                }
                BlockExecutionError::Validation(BlockValidationError::DepositRequestDecode(_)) => {
                    Refusal::block(&["INVALID_DEPOSIT_EVENT_LAYOUT"])
                }
                // A request contract that reverted or halted (see `is_rejection`).
                BlockExecutionError::Validation(
                    BlockValidationError::WithdrawalRequestsContractCall { .. }
                    | BlockValidationError::ConsolidationRequestsContractCall { .. },
                ) => Refusal::block(&["SYSTEM_CONTRACT_CALL_FAILED"]),
                _ => Refusal::UNNAMED,
            },
            Self::Execution(_) | Self::Commit(_) => Refusal::UNNAMED,
        }
    }

    /// Whether the block itself broke a rule. An engine or store failure (a read, the schedule,
    /// the commit) is not a rejection and never meets a test's expected exception.
    pub fn is_rejection(&self) -> bool {
        use alloy_evm::block::{BlockExecutionError, BlockValidationError};
        match self {
            Self::Execution(ExecutionError::Block { source, .. }) => match source {
                // alloy-evm files a failed read under `Internal`, or under `Validation::EVM`
                // when it deems it not fatal: neither is the block's fault.
                BlockExecutionError::Internal(_)
                | BlockExecutionError::Validation(BlockValidationError::EVM { .. }) => false,
                // alloy-evm 0.39 raises these two only when the system call itself failed (a
                // read), never for what the contract did.
                BlockExecutionError::Validation(
                    BlockValidationError::BeaconRootContractCall { .. }
                    | BlockValidationError::BlockHashContractCall { .. },
                ) => false,
                // The request contracts: a revert or a halt is the block's fault, a call that
                // could not run ("execution failed: ...", alloy-evm 0.39's wording) is not.
                BlockExecutionError::Validation(
                    BlockValidationError::WithdrawalRequestsContractCall { message }
                    | BlockValidationError::ConsolidationRequestsContractCall { message },
                ) => !message.starts_with("execution failed"),
                _ => true,
            },
            Self::Execution(error) => {
                matches!(error, ExecutionError::BlobGas { .. } | ExecutionError::Transaction { .. })
            }
            Self::Commit(_) => false,
            _ => true,
        }
    }
}

/// Checks `block`'s header against its parent and the format of its body, before execution.
pub fn check_header(
    chain: &ChainSpec,
    parent: &Header,
    parent_hash: B256,
    block: &Block<TxEnvelope>,
) -> Result<(), BlockError> {
    let header = &block.header;
    if header.parent_hash != parent_hash {
        return Err(BlockError::ParentHash { expected: parent_hash, got: header.parent_hash });
    }
    if Some(header.number) != parent.number.checked_add(1) {
        return Err(BlockError::Number { parent: parent.number, got: header.number });
    }
    if header.timestamp <= parent.timestamp {
        return Err(BlockError::Timestamp { parent: parent.timestamp, got: header.timestamp });
    }
    let bound = parent.gas_limit / GAS_LIMIT_BOUND_DIVISOR;
    if !(MIN_GAS_LIMIT..=MAX_GAS_LIMIT).contains(&header.gas_limit)
        || header.gas_limit.abs_diff(parent.gas_limit) >= bound
    {
        return Err(BlockError::GasLimit { parent: parent.gas_limit, got: header.gas_limit });
    }
    if header.gas_used > header.gas_limit {
        return Err(BlockError::GasUsedAboveLimit {
            used: header.gas_used,
            limit: header.gas_limit,
        });
    }
    if header.extra_data.len() > MAX_EXTRA_DATA {
        return Err(BlockError::ExtraData { length: header.extra_data.len() });
    }
    check_base_fee(chain, parent, header)?;

    let ommers_root = if chain.is_paris_active_at_block(header.number) {
        if header.difficulty != U256::ZERO {
            return Err(BlockError::Difficulty { got: header.difficulty });
        }
        if header.nonce != B64::ZERO {
            return Err(BlockError::Nonce { got: header.nonce });
        }
        if !block.body.ommers.is_empty() {
            return Err(BlockError::OmmersAfterMerge { count: block.body.ommers.len() });
        }
        EMPTY_OMMER_ROOT_HASH
    } else {
        calculate_ommers_root(&block.body.ommers)
    };
    if header.ommers_hash != ommers_root {
        return Err(BlockError::Ommers { expected: ommers_root, got: header.ommers_hash });
    }

    // The transactions and withdrawals roots are commitments the specification compares after
    // execution (`check_outcome`); here only the withdrawals' presence, a matter of format.
    let shanghai = chain.is_shanghai_active_at_timestamp(header.timestamp);
    match (&block.body.withdrawals, shanghai) {
        (Some(withdrawals), true) => {
            if header.withdrawals_root.is_none() {
                return Err(BlockError::WithdrawalsRoot {
                    expected: Some(calculate_withdrawals_root(withdrawals)),
                    got: None,
                });
            }
        }
        (None, false) if header.withdrawals_root.is_none() => {}
        (None, false) => {
            return Err(BlockError::WithdrawalsRoot {
                expected: None,
                got: header.withdrawals_root,
            })
        }
        (withdrawals, _) => {
            return Err(BlockError::Withdrawals { present: withdrawals.is_some(), shanghai })
        }
    }
    check_blob_fields(chain, parent, header)?;
    let prague = chain.is_prague_active_at_timestamp(header.timestamp);
    match (header.requests_hash, prague) {
        (None, true) => Err(BlockError::RequestsHashField { rule: "required from Prague on" }),
        (Some(_), false) => {
            Err(BlockError::RequestsHashField { rule: "not allowed before Prague" })
        }
        _ => Ok(()),
    }
}

fn check_base_fee(chain: &ChainSpec, parent: &Header, header: &Header) -> Result<(), BlockError> {
    let expected = if !chain.is_london_active_at_block(header.number) {
        None
    } else if chain.is_london_active_at_block(parent.number) {
        parent.next_block_base_fee(BaseFeeParams::ethereum())
    } else {
        Some(INITIAL_BASE_FEE)
    };
    if header.base_fee_per_gas != expected {
        return Err(BlockError::BaseFee { expected, got: header.base_fee_per_gas });
    }
    Ok(())
}

fn check_blob_fields(
    chain: &ChainSpec,
    parent: &Header,
    header: &Header,
) -> Result<(), BlockError> {
    let Some(params) = blob_params(chain, header.timestamp) else {
        if header.blob_gas_used.is_some() {
            return Err(BlockError::BlobGasUsed { expected: None, got: header.blob_gas_used });
        }
        if header.excess_blob_gas.is_some() {
            return Err(BlockError::ExcessBlobGas { expected: None, got: header.excess_blob_gas });
        }
        if header.parent_beacon_block_root.is_some() {
            return Err(BlockError::ParentBeaconBlockRoot {
                got: header.parent_beacon_block_root,
                required: "is not active",
            });
        }
        return Ok(());
    };
    // The first Cancun block's parent has no blob fields: its excess counts as zero.
    let expected_excess = parent.next_block_excess_blob_gas(params).unwrap_or(0);
    if header.excess_blob_gas != Some(expected_excess) {
        return Err(BlockError::ExcessBlobGas {
            expected: Some(expected_excess),
            got: header.excess_blob_gas,
        });
    }
    // Whether it matches the transactions is checked after execution.
    let Some(used) = header.blob_gas_used else {
        return Err(BlockError::BlobGasUsed { expected: None, got: None });
    };
    if used > params.max_blob_gas_per_block() {
        return Err(BlockError::BlobGasAboveMax { used, max: params.max_blob_gas_per_block() });
    }
    if header.parent_beacon_block_root.is_none() {
        return Err(BlockError::ParentBeaconBlockRoot { got: None, required: "requires one" });
    }
    Ok(())
}

/// The checks the specification makes as it gathers the block's requests (EIP-7685, from Prague
/// on), after the transactions and before the comparisons of [`check_outcome`]: every deposit
/// contract event must have EIP-6110's layout, then the withdrawal and consolidation request
/// contracts (EIP-7002, EIP-7251) must hold code, else their calls would run nothing and the
/// block would carry no requests where the chain demands the contracts. `has_code` answers for
/// the state after the whole block, which at these addresses is the state after the
/// transactions (neither withdrawals nor system calls change code): a contract deployed in this
/// very block counts.
///
/// alloy-evm makes the request contracts' calls inside execution, before these checks, so a
/// block with two faults there (an empty withdrawal contract and a consolidation call that
/// reverts, or a deposit layout only this check refuses and a failing call) is named by the
/// failed call, where the specification names the first of its steps.
pub fn check_requests(
    chain: &ChainSpec,
    header: &Header,
    outcome: &BlockOutcome,
    has_code: impl Fn(Address) -> bool,
) -> Result<(), BlockError> {
    if !chain.is_prague_active_at_timestamp(header.timestamp) {
        return Ok(());
    }
    if let Some(contract) = chain.deposit_contract_address() {
        check_deposit_layouts(contract, &outcome.receipts)?;
    }
    for address in [WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS] {
        if !has_code(address) {
            return Err(BlockError::SystemContractEmpty { address });
        }
    }
    Ok(())
}

/// Checks the header's commitments against what executing `block` produced (`state_root` is the
/// post-state's Merkle-Patricia root, which the caller holds), in the order of the
/// specification's `state_transition`: gas used, transactions root, state root, receipts root,
/// logs bloom, withdrawals root, blob gas used, requests hash. A block with an invalid
/// transaction is therefore refused for that transaction even where its header, built without
/// it, also commits to other transactions, as ethereum/tests' invalid blocks expect.
pub fn check_outcome(
    chain: &ChainSpec,
    block: &Block<TxEnvelope>,
    outcome: &BlockOutcome,
    state_root: B256,
) -> Result<(), BlockError> {
    let header = &block.header;
    let prague = chain.is_prague_active_at_timestamp(header.timestamp);
    if header.gas_used != outcome.gas_used {
        return Err(BlockError::GasUsed { header: header.gas_used, executed: outcome.gas_used });
    }
    let transactions_root = calculate_transaction_root(&block.body.transactions);
    if header.transactions_root != transactions_root {
        return Err(BlockError::TransactionsRoot {
            expected: transactions_root,
            got: header.transactions_root,
        });
    }
    if header.state_root != state_root {
        return Err(BlockError::StateRoot { header: header.state_root, executed: state_root });
    }
    // Before Byzantium receipts carry intermediate state roots, which only a Merkle-Patricia
    // state computed after every transaction could give.
    if chain.is_byzantium_active_at_block(header.number)
        && header.receipts_root != outcome.receipts_root
    {
        return Err(BlockError::ReceiptsRoot {
            header: header.receipts_root,
            executed: outcome.receipts_root,
        });
    }
    if header.logs_bloom != outcome.logs_bloom {
        return Err(BlockError::LogsBloom {
            header: Box::new(header.logs_bloom),
            executed: Box::new(outcome.logs_bloom),
        });
    }
    if let Some(withdrawals) = &block.body.withdrawals {
        let expected = calculate_withdrawals_root(withdrawals);
        if header.withdrawals_root != Some(expected) {
            return Err(BlockError::WithdrawalsRoot {
                expected: Some(expected),
                got: header.withdrawals_root,
            });
        }
    }
    if chain.is_cancun_active_at_timestamp(header.timestamp)
        && header.blob_gas_used != Some(outcome.blob_gas_used)
    {
        return Err(BlockError::BlobGasUsed {
            expected: Some(outcome.blob_gas_used),
            got: header.blob_gas_used,
        });
    }
    let requests_hash = prague.then(|| outcome.requests.requests_hash());
    if header.requests_hash != requests_hash {
        return Err(BlockError::RequestsHash {
            expected: requests_hash,
            got: header.requests_hash,
        });
    }
    Ok(())
}

/// The topic of the deposit contract's `DepositEvent(bytes,bytes,bytes,bytes,bytes)`.
const DEPOSIT_EVENT_TOPIC: B256 =
    b256!("649bbc62d0e31342afea4e5cd82d4049e7e1ee912fc0889aa790803be39038c5");

/// The offset and length of each of a deposit event's byte strings, in its data (EIP-6110):
/// public key, withdrawal credentials, amount, signature, index.
const DEPOSIT_FIELDS: [(usize, usize); 5] = [(160, 48), (256, 32), (320, 8), (384, 96), (512, 8)];

/// Length of a deposit event's data.
const DEPOSIT_EVENT_BYTES: usize = 576;

/// Checks every deposit event of `contract` in `receipts` against EIP-6110's layout: alloy-evm's
/// decoder reads the byte strings wherever their offsets point and whatever their lengths, where
/// the EIP makes any other layout invalidate the block.
fn check_deposit_layouts(
    contract: Address,
    receipts: &[ReceiptEnvelope],
) -> Result<(), BlockError> {
    let word = |data: &[u8], at: usize| U256::from_be_slice(&data[at..at + 32]);
    for (transaction, receipt) in receipts.iter().enumerate() {
        let deposits = receipt.logs().iter().enumerate().filter(|(_, log)| {
            log.address == contract && log.topics().first() == Some(&DEPOSIT_EVENT_TOPIC)
        });
        for (log, event) in deposits {
            let data = &event.data.data;
            let refused = |reason: String| BlockError::DepositLayout { transaction, log, reason };
            if data.len() != DEPOSIT_EVENT_BYTES {
                return Err(refused(format!(
                    "{} bytes of data, not {DEPOSIT_EVENT_BYTES}",
                    data.len()
                )));
            }
            for (field, &(offset, length)) in DEPOSIT_FIELDS.iter().enumerate() {
                let found = word(data, 32 * field);
                if found != U256::from(offset) {
                    return Err(refused(format!("field {field} at offset {found}, not {offset}")));
                }
                let found = word(data, offset);
                if found != U256::from(length) {
                    return Err(refused(format!("field {field} of {found} bytes, not {length}")));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::exceptions::expected_by;
    use alloy_consensus::{BlockBody, EMPTY_ROOT_HASH};
    use alloy_eips::eip4895::Withdrawals;

    /// A Cancun genesis and a consistent empty block on it.
    fn cancun_parent_and_block() -> (Header, Block<TxEnvelope>) {
        let cancun_fields = Header {
            gas_limit: 30_000_000,
            withdrawals_root: Some(EMPTY_ROOT_HASH),
            excess_blob_gas: Some(0),
            blob_gas_used: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            ..Header::default()
        };
        let parent = Header { timestamp: 1, base_fee_per_gas: Some(7), ..cancun_fields.clone() };
        let header = Header {
            parent_hash: parent.hash_slow(),
            number: 1,
            timestamp: 13,
            base_fee_per_gas: parent.next_block_base_fee(BaseFeeParams::ethereum()),
            ..cancun_fields
        };
        let body = BlockBody {
            transactions: Vec::new(),
            ommers: Vec::new(),
            withdrawals: Some(Withdrawals::default()),
        };
        (parent, Block { header, body })
    }

    #[test]
    fn a_consistent_header_passes_and_each_lie_names_its_rule() {
        type Lie = fn(&mut Block<TxEnvelope>);
        let chain = ChainSpec::for_test_fork("Cancun").unwrap();
        let (parent, block) = cancun_parent_and_block();
        let parent_hash = parent.hash_slow();
        check_header(&chain, &parent, parent_hash, &block).unwrap();
        // Each lie, the rule that names it, and the suites' name for that refusal.
        let lies: [(Lie, &str, &str); 12] = [
            (|block| block.header.parent_hash = B256::ZERO, "parent_hash", "UNKNOWN_PARENT"),
            (|block| block.header.number = 2, "number", "INVALID_BLOCK_NUMBER"),
            (
                |block| block.header.timestamp = 1,
                "timestamp",
                "INVALID_BLOCK_TIMESTAMP_OLDER_THAN_PARENT",
            ),
            (|block| block.header.gas_limit *= 2, "gas_limit", "INVALID_GASLIMIT"),
            (
                |block| block.header.gas_used = u64::MAX,
                "gas_used_above_limit",
                "INVALID_GAS_USED_ABOVE_LIMIT",
            ),
            (
                |block| block.header.extra_data = vec![0; 33].into(),
                "extra_data",
                "EXTRA_DATA_TOO_BIG",
            ),
            (
                |block| block.header.base_fee_per_gas = Some(1),
                "base_fee",
                "INVALID_BASEFEE_PER_GAS",
            ),
            (|block| block.header.difficulty = U256::from(1), "difficulty", "INVALID_DIFFICULTY"),
            (|block| block.body.withdrawals = None, "withdrawals", "INCORRECT_BLOCK_FORMAT"),
            (
                |block| block.header.excess_blob_gas = Some(1),
                "excess_blob_gas",
                "INCORRECT_EXCESS_BLOB_GAS",
            ),
            (
                |block| block.header.parent_beacon_block_root = None,
                "parent_beacon_block_root",
                "INCORRECT_BLOCK_FORMAT",
            ),
            (
                |block| block.header.requests_hash = Some(B256::ZERO),
                "requests_hash",
                "INCORRECT_BLOCK_FORMAT",
            ),
        ];
        for (lie, rule, name) in lies {
            let mut block = block.clone();
            lie(&mut block);
            let error = check_header(&chain, &parent, parent_hash, &block).unwrap_err();
            assert_eq!(error.rule(), rule, "{error}");
            let refusal = error.refusal();
            assert!(expected_by(&format!("BlockException.{name}"), &refusal), "{error}");
            assert!(!expected_by("BlockException.INVALID_STATE_ROOT", &refusal), "{error}");
        }
    }

    /// A gas limit above 2^63 - 1 is refused even where the parent's is close enough to allow
    /// the step.
    #[test]
    fn a_gas_limit_above_the_maximum_is_refused() {
        let chain = ChainSpec::for_test_fork("Cancun").unwrap();
        let (mut parent, mut block) = cancun_parent_and_block();
        parent.gas_limit = MAX_GAS_LIMIT;
        block.header.parent_hash = parent.hash_slow();
        block.header.gas_limit = MAX_GAS_LIMIT;
        check_header(&chain, &parent, block.header.parent_hash, &block).unwrap();
        block.header.gas_limit = MAX_GAS_LIMIT + 1;
        let error = check_header(&chain, &parent, block.header.parent_hash, &block).unwrap_err();
        assert_eq!(error.rule(), "gas_limit", "{error}");
    }

    /// From Prague the header commits to the executed requests; before it, it carries no hash.
    #[test]
    fn the_requests_hash_is_checked_from_prague_on() {
        let outcome = |requests: alloy_eips::eip7685::Requests| BlockOutcome {
            receipts: Vec::new(),
            gas_used: 0,
            blob_gas_used: 0,
            logs_bloom: Bloom::ZERO,
            receipts_root: EMPTY_ROOT_HASH,
            changes: Default::default(),
            requests,
        };
        let mut requests = alloy_eips::eip7685::Requests::default();
        requests.push_request_with_type(1, [0xaa; 76]);
        let made = requests.requests_hash();
        let block = |hash| {
            let mut block = cancun_parent_and_block().1;
            block.header.requests_hash = hash;
            block
        };
        let prague = ChainSpec::for_test_fork("Prague").unwrap();
        let cancun = ChainSpec::for_test_fork("Cancun").unwrap();
        let root = EMPTY_ROOT_HASH;
        check_outcome(&prague, &block(Some(made)), &outcome(requests.clone()), root).unwrap();
        check_outcome(&cancun, &block(None), &outcome(Default::default()), root).unwrap();
        for (chain, hash, executed) in [
            // A request the header leaves out, a Prague header without the field, a Cancun one
            // with it.
            (&prague, Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH), requests.clone()),
            (&prague, None, Default::default()),
            (&cancun, Some(made), Default::default()),
        ] {
            let error = check_outcome(chain, &block(hash), &outcome(executed), root).unwrap_err();
            assert_eq!(error.rule(), "requests_hash", "{error}");
        }
    }

    /// After execution the header's commitments are compared in the specification's order: with
    /// every lie from the n-th on told at once, the n-th is the one named.
    #[test]
    fn commitments_are_checked_in_the_specifications_order() {
        type Lie = fn(&mut Block<TxEnvelope>, &mut BlockOutcome, &mut B256);
        let prague = ChainSpec::for_test_fork("Prague").unwrap();
        let mut block = cancun_parent_and_block().1;
        block.header.requests_hash = Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH);
        let outcome = BlockOutcome {
            receipts: Vec::new(),
            gas_used: 0,
            blob_gas_used: 0,
            logs_bloom: Bloom::ZERO,
            receipts_root: EMPTY_ROOT_HASH,
            changes: Default::default(),
            requests: Default::default(),
        };
        let state_root = block.header.state_root;
        check_outcome(&prague, &block, &outcome, state_root).unwrap();
        let lies: [(Lie, &str); 8] = [
            (|_, outcome, _| outcome.gas_used = 1, "gas_used"),
            (|block, _, _| block.header.transactions_root = B256::ZERO, "transactions_root"),
            (|_, _, root| *root = B256::repeat_byte(1), "state_root"),
            (|_, outcome, _| outcome.receipts_root = B256::ZERO, "receipts_root"),
            (|_, outcome, _| outcome.logs_bloom = Bloom::repeat_byte(1), "logs_bloom"),
            (|block, _, _| block.header.withdrawals_root = Some(B256::ZERO), "withdrawals_root"),
            (|_, outcome, _| outcome.blob_gas_used = 1, "blob_gas_used"),
            (|_, outcome, _| outcome.requests.push_request_with_type(1, [1]), "requests_hash"),
        ];
        for first in 0..lies.len() {
            let (mut block, mut outcome, mut root) = (block.clone(), outcome.clone(), state_root);
            for (lie, _) in &lies[first..] {
                lie(&mut block, &mut outcome, &mut root);
            }
            let error = check_outcome(&prague, &block, &outcome, root).unwrap_err();
            assert_eq!(error.rule(), lies[first].1, "{error}");
        }
    }

    /// From Prague the request contracts must hold code; before it they are not looked at.
    #[test]
    fn a_request_contract_without_code_invalidates_a_prague_block() {
        let outcome = BlockOutcome {
            receipts: Vec::new(),
            gas_used: 0,
            blob_gas_used: 0,
            logs_bloom: Bloom::ZERO,
            receipts_root: EMPTY_ROOT_HASH,
            changes: Default::default(),
            requests: Default::default(),
        };
        let header = cancun_parent_and_block().1.header;
        let prague = ChainSpec::for_test_fork("Prague").unwrap();
        let cancun = ChainSpec::for_test_fork("Cancun").unwrap();
        check_requests(&prague, &header, &outcome, |_| true).unwrap();
        check_requests(&cancun, &header, &outcome, |_| false).unwrap();
        for empty in [WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS]
        {
            let error =
                check_requests(&prague, &header, &outcome, |address| address != empty).unwrap_err();
            assert!(
                matches!(error, BlockError::SystemContractEmpty { address } if address == empty),
                "{error}"
            );
            assert!(expected_by("BlockException.SYSTEM_CONTRACT_EMPTY", &error.refusal()));
            assert!(error.is_rejection());
        }
    }

    /// An engine or store failure is not the block breaking a rule.
    #[test]
    fn engine_failures_are_not_rejections() {
        use alloy_evm::block::{
            BlockExecutionError, BlockValidationError, InternalBlockExecutionError,
        };
        let block = |source: BlockExecutionError| {
            BlockError::Execution(ExecutionError::Block { number: 1, source })
        };
        let read_failed = || StateError::Unsupported { reason: "a read failed".into() };
        let rejections = [
            BlockError::GasUsed { header: 1, executed: 2 },
            BlockError::Execution(ExecutionError::BlobGas { number: 1, used: 2, max: 1 }),
            block(
                BlockValidationError::TransactionGasLimitMoreThanAvailableBlockGas {
                    transaction_gas_limit: 2,
                    block_available_gas: 1,
                }
                .into(),
            ),
        ];
        assert!(rejections.iter().all(BlockError::is_rejection));
        let failures = [
            BlockError::Execution(ExecutionError::Schedule("a task out of range".into())),
            BlockError::Execution(ExecutionError::Pipeline("busy".into())),
            BlockError::Commit(StateError::Unsupported { reason: "full disk".into() }),
            // A failed read inside a transaction, as alloy-evm files it either way.
            block(InternalBlockExecutionError::other(read_failed()).into()),
            block(
                BlockValidationError::EVM { hash: B256::ZERO, error: Box::new(read_failed()) }
                    .into(),
            ),
        ];
        assert!(!failures.iter().any(BlockError::is_rejection));
    }

    /// Deposit events must have EIP-6110's layout; other contracts' logs are not looked at.
    #[test]
    fn deposit_events_must_have_eip_6110s_layout() {
        use alloy_consensus::{Eip658Value, Receipt, ReceiptWithBloom};
        use alloy_primitives::Log;
        let signature = "DepositEvent(bytes,bytes,bytes,bytes,bytes)";
        assert_eq!(alloy_primitives::keccak256(signature), DEPOSIT_EVENT_TOPIC);
        let contract = alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS;
        let receipt = |address: Address, data: Vec<u8>| {
            let log = Log::new_unchecked(address, vec![DEPOSIT_EVENT_TOPIC], data.into());
            let receipt = Receipt {
                status: Eip658Value::Eip658(true),
                cumulative_gas_used: 0,
                logs: vec![log],
            };
            ReceiptEnvelope::Eip1559(ReceiptWithBloom::new(receipt, Bloom::ZERO))
        };
        let mut good = vec![0u8; DEPOSIT_EVENT_BYTES];
        for (field, &(offset, length)) in DEPOSIT_FIELDS.iter().enumerate() {
            good[32 * field..32 * field + 32]
                .copy_from_slice(&U256::from(offset).to_be_bytes::<32>());
            good[offset..offset + 32].copy_from_slice(&U256::from(length).to_be_bytes::<32>());
        }
        check_deposit_layouts(contract, &[receipt(contract, good.clone())]).unwrap();
        let mut short_key = good.clone();
        short_key[160 + 31] = 47;
        let mut moved = good.clone();
        moved[31] = 161;
        let truncated = good[..DEPOSIT_EVENT_BYTES - 1].to_vec();
        for bad in [short_key, moved, truncated] {
            let error =
                check_deposit_layouts(contract, &[receipt(contract, bad.clone())]).unwrap_err();
            assert_eq!(error.rule(), "deposit_layout", "{error}");
            assert!(expected_by("BlockException.INVALID_DEPOSIT_EVENT_LAYOUT", &error.refusal()));
            // The same bytes from another contract are none of the chain's business.
            check_deposit_layouts(contract, &[receipt(Address::ZERO, bad)]).unwrap();
        }
        // From Prague the block is refused for it, before the empty request contracts.
        let prague = ChainSpec::for_test_fork("Prague").unwrap();
        let outcome = BlockOutcome {
            receipts: vec![receipt(contract, good[..100].to_vec())],
            gas_used: 0,
            blob_gas_used: 0,
            logs_bloom: Bloom::ZERO,
            receipts_root: EMPTY_ROOT_HASH,
            changes: Default::default(),
            requests: Default::default(),
        };
        let header = cancun_parent_and_block().1.header;
        let error = check_requests(&prague, &header, &outcome, |_| false).unwrap_err();
        assert_eq!(error.rule(), "deposit_layout", "{error}");
    }

    /// The system contracts: a request contract that reverted rejects the block; a call that
    /// could not run, or a failed beacon-root or block-hash call (a read), is the engine's.
    #[test]
    fn only_a_system_contract_that_failed_rejects_the_block() {
        use alloy_evm::block::BlockValidationError as Invalid;
        let block = |error: Invalid| {
            BlockError::Execution(ExecutionError::Block { number: 1, source: error.into() })
        };
        let reverted = block(Invalid::WithdrawalRequestsContractCall {
            message: "execution reverted: 0x".into(),
        });
        assert!(reverted.is_rejection());
        assert!(expected_by("BlockException.SYSTEM_CONTRACT_CALL_FAILED", &reverted.refusal()));
        let halted = block(Invalid::ConsolidationRequestsContractCall {
            message: "execution halted: OutOfGas".into(),
        });
        assert!(halted.is_rejection());
        for failure in [
            block(Invalid::WithdrawalRequestsContractCall {
                message: "execution failed: a read failed".into(),
            }),
            block(Invalid::BeaconRootContractCall {
                parent_beacon_block_root: Box::new(B256::ZERO),
                message: "a read failed".into(),
            }),
            block(Invalid::BlockHashContractCall { message: "a read failed".into() }),
        ] {
            assert!(!failure.is_rejection(), "{failure}");
        }
    }

    /// Fields of a fork that is not active are a malformed block; too many blobs in the header
    /// also meets the names of the transaction that brought them; a wrong ommers hash after the
    /// merge is "uncles over Paris".
    #[test]
    fn misplaced_fields_and_blob_counts_meet_the_suites_names() {
        let meets = |error: BlockError, name: &str| expected_by(name, &error.refusal());
        let format = "BlockException.INCORRECT_BLOCK_FORMAT";
        assert!(meets(BlockError::BlobGasUsed { expected: None, got: Some(0) }, format));
        assert!(meets(BlockError::ExcessBlobGas { expected: None, got: Some(0) }, format));
        assert!(meets(
            BlockError::WithdrawalsRoot { expected: None, got: Some(B256::ZERO) },
            format
        ));
        assert!(meets(BlockError::RequestsHash { expected: None, got: Some(B256::ZERO) }, format));
        assert!(!meets(BlockError::BlobGasUsed { expected: Some(1), got: Some(0) }, format));
        let too_many = || BlockError::BlobGasAboveMax { used: 2, max: 1 };
        assert!(meets(
            too_many(),
            "TransactionException.TYPE_3_TX_MAX_BLOB_GAS_ALLOWANCE_EXCEEDED"
        ));
        assert!(meets(too_many(), "BlockException.BLOB_GAS_USED_ABOVE_LIMIT"));
        let ommers = BlockError::Ommers { expected: B256::ZERO, got: B256::repeat_byte(1) };
        assert!(meets(ommers, "BlockException.IMPORT_IMPOSSIBLE_UNCLES_OVER_PARIS"));
    }
}
