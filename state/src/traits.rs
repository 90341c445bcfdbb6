//! The seams between the executor and a store: a shared reader, and a one-block-at-a-time writer.

use crate::{Account, BlockChanges, StateError};
use alloy_primitives::{Address, Bytes, B256, U256};

/// Read access to committed state. `&self` and `Sync`: many workers read at once.
pub trait StateReader: Send + Sync {
    /// The account at `address`, or `None` if it does not exist.
    fn account(&self, address: Address) -> Result<Option<Account>, StateError>;

    /// The value of a storage slot; zero when unset.
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError>;

    /// Contract code by its keccak-256 hash, or `None` if unknown.
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError>;

    /// The hash of block `number`, or `None` if the store does not know it.
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError>;
}

/// Write access: commit one block's changes and return the state root after them.
pub trait StateCommit {
    /// Applies `changes` atomically and returns the new state root. Heights must follow each other
    /// (the first commit may have any height).
    fn commit_block(&mut self, changes: &BlockChanges) -> Result<B256, StateError>;

    /// Records the hash of committed block `number` for `BLOCKHASH`. Block hashes are history,
    /// not state: they are not part of the state root (a header's hash covers its state root,
    /// so the hash can only be known after the commit).
    fn record_block_hash(&mut self, number: u64, hash: B256) -> Result<(), StateError>;

    /// The root after the last committed block (the genesis root before any).
    fn state_root(&self) -> B256;

    /// Height of the last committed block, if any.
    fn last_height(&self) -> Option<u64>;
}

impl<T: StateReader + ?Sized> StateReader for &T {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        (**self).storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        (**self).code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        (**self).block_hash(number)
    }
}
