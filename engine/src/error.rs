//! Errors of block execution.

use alloy_primitives::B256;

/// A block could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] zero_state::StateError),
    /// A read during execution failed (the store, or code or a block hash it lacks).
    #[error(transparent)]
    Database(#[from] crate::database::DatabaseError),
    /// The schedule handed to the parallel executor does not fit the block (an engine bug).
    #[error("schedule: {0}")]
    Schedule(String),
    /// alloy-evm rejected the block or one of its transactions.
    #[error("block {number}: {source}")]
    Block {
        /// The block number.
        number: u64,
        /// What alloy-evm reported.
        source: alloy_evm::block::BlockExecutionError,
    },
    /// The dev chain's commit pipeline was misused (an engine bug or a wrong setting), or a
    /// background commit failed and the chain cannot go on.
    #[error("commit pipeline: {0}")]
    Pipeline(String),
    /// The operating system would not start the parallel executor's worker threads.
    #[error("cannot start {threads} worker threads: {reason}; ask for fewer with --threads")]
    Threads {
        /// Workers asked for, the calling thread included.
        threads: usize,
        /// What the thread pool reported.
        reason: String,
    },
    /// The block's blob transactions carry more blob gas than its fork allows per block.
    #[error(
        "block {number}: its transactions carry {used} blob gas ({} blobs), above the fork's \
         maximum of {max} ({} blobs); leave some blob transactions for a later block",
        used / alloy_eips::eip4844::DATA_GAS_PER_BLOB,
        max / alloy_eips::eip4844::DATA_GAS_PER_BLOB
    )]
    BlobGas {
        /// The block number.
        number: u64,
        /// Blob gas its transactions carry.
        used: u64,
        /// The fork's maximum per block (0 before Cancun).
        max: u64,
    },
    /// A transaction the block depends on is invalid.
    #[error("block {number}, transaction {index} ({hash}): {reason}")]
    Transaction {
        /// The block number.
        number: u64,
        /// Position of the transaction in the block.
        index: usize,
        /// Its hash.
        hash: B256,
        /// Why it was rejected.
        reason: String,
    },
}
