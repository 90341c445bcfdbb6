//! The seams between the executor and a store: a shared reader, and a one-block-at-a-time writer.

use crate::{Account, BlockChanges, StateError};
use alloy_primitives::{Address, Bytes, B256, U256};
use std::sync::{PoisonError, RwLock};

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

/// A store that commits a block while other threads read it, so that the Merkleization of one
/// block can overlap the execution of the next.
///
/// While `commit_block_shared` runs, a read of a key the block leaves unchanged returns its value
/// (the same before and after); a read of a key the block changes may return either value, so a
/// reader that needs the new state during the commit answers the block's own keys from its
/// changes first. Commits still follow each other one at a time, in height order.
pub trait SharedCommit: StateReader + StateCommit {
    /// [`StateCommit::commit_block`] through a shared reference.
    fn commit_block_shared(&self, changes: &BlockChanges) -> Result<B256, StateError>;

    /// [`StateCommit::record_block_hash`] through a shared reference.
    fn record_block_hash_shared(&self, number: u64, hash: B256) -> Result<(), StateError>;
}

/// Any store behind one lock. A commit holds the lock for its whole length, so readers wait
/// for it: correct, but nothing overlaps. It lets stores without finer locking (the in-memory
/// store) run the same pipelined code as QMDB. A commit that panics part way leaves the lock
/// poisoned, and every later read or commit is refused with [`StateError::Poisoned`].
#[derive(Debug, Default)]
pub struct Locked<S>(RwLock<S>);

impl<S> Locked<S> {
    /// Puts `store` behind a lock.
    pub fn new(store: S) -> Self {
        Self(RwLock::new(store))
    }

    /// The store back, even from a lock a panicked commit left (the store as it stands).
    pub fn into_inner(self) -> S {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// A guard for reading; an error once a commit panicked while holding the lock, since the
    /// store may then hold half a block.
    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, S>, StateError> {
        self.0.read().map_err(|_| StateError::Poisoned)
    }

    /// A guard for committing; an error once a commit panicked (see [`Self::read`]).
    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, S>, StateError> {
        self.0.write().map_err(|_| StateError::Poisoned)
    }

    /// A guard for the answers that cannot fail (root, height): those of a store left part
    /// way through a commit are its state as it stands, and every read or commit after it
    /// fails, so nothing builds on them.
    fn read_anyway(&self) -> std::sync::RwLockReadGuard<'_, S> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: StateReader> StateReader for Locked<S> {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        self.read()?.account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.read()?.storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.read()?.code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        self.read()?.block_hash(number)
    }
}

impl<S: StateCommit> StateCommit for Locked<S> {
    fn commit_block(&mut self, changes: &BlockChanges) -> Result<B256, StateError> {
        self.write()?.commit_block(changes)
    }
    fn record_block_hash(&mut self, number: u64, hash: B256) -> Result<(), StateError> {
        self.write()?.record_block_hash(number, hash)
    }
    fn state_root(&self) -> B256 {
        self.read_anyway().state_root()
    }
    fn last_height(&self) -> Option<u64> {
        self.read_anyway().last_height()
    }
}

impl<S: StateReader + StateCommit> SharedCommit for Locked<S> {
    fn commit_block_shared(&self, changes: &BlockChanges) -> Result<B256, StateError> {
        self.write()?.commit_block(changes)
    }
    fn record_block_hash_shared(&self, number: u64, hash: B256) -> Result<(), StateError> {
        self.write()?.record_block_hash(number, hash)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose commits panic half way.
    struct PanickingCommit;

    impl StateReader for PanickingCommit {
        fn account(&self, _: Address) -> Result<Option<Account>, StateError> {
            Ok(None)
        }
        fn storage(&self, _: Address, _: U256) -> Result<U256, StateError> {
            Ok(U256::ZERO)
        }
        fn code(&self, _: B256) -> Result<Option<Bytes>, StateError> {
            Ok(None)
        }
        fn block_hash(&self, _: u64) -> Result<Option<B256>, StateError> {
            Ok(None)
        }
    }

    impl StateCommit for PanickingCommit {
        fn commit_block(&mut self, _: &BlockChanges) -> Result<B256, StateError> {
            panic!("a commit that fails half way");
        }
        fn record_block_hash(&mut self, _: u64, _: B256) -> Result<(), StateError> {
            Ok(())
        }
        fn state_root(&self) -> B256 {
            B256::ZERO
        }
        fn last_height(&self) -> Option<u64> {
            None
        }
    }

    #[test]
    fn a_store_left_by_a_panicking_commit_answers_nothing_more() {
        let store = Locked::new(PanickingCommit);
        assert!(store.account(Address::ZERO).unwrap().is_none());
        let changes = BlockChanges { height: 1, ..BlockChanges::default() };
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.commit_block_shared(&changes);
        }));
        assert!(panicked.is_err());
        assert!(matches!(store.account(Address::ZERO), Err(StateError::Poisoned)));
        assert!(matches!(store.storage(Address::ZERO, U256::ZERO), Err(StateError::Poisoned)));
        assert!(matches!(store.commit_block_shared(&changes), Err(StateError::Poisoned)));
        assert!(matches!(store.record_block_hash_shared(1, B256::ZERO), Err(StateError::Poisoned)));
        let message = store.account(Address::ZERO).unwrap_err().to_string();
        assert!(message.contains("cannot be trusted"), "{message}");
    }
}
