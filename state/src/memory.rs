//! An in-memory [`StateReader`] + [`StateCommit`] for tests, fixtures and `--state memory`.
//!
//! Its root is an incremental multiset hash, not a Merkle tree: the root is
//! `SHA-256("zero-memory-state" ‖ Σ SHA-256(key hash ‖ value) mod 2^256)` over every live entry.
//! A write subtracts the old entry's digest and adds the new one, so a commit costs time in
//! proportion to its writes, and the root is a pure function of the live key/value set, whatever
//! the order of writes. It supports no proofs; QMDB is the authenticated store.

use crate::{
    encode_storage, Account, BlockChanges, KeyHash, StateCommit, StateError, StateKey, StateReader,
};
use alloy_primitives::{
    map::{AddressMap, B256Map, HashMap},
    Address, Bytes, B256, U256,
};
use sha2::{Digest, Sha256};

/// State held in hash maps, with a multiset-hash root (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    accounts: AddressMap<Account>,
    storage: AddressMap<HashMap<U256, U256>>,
    code: B256Map<Bytes>,
    block_hashes: HashMap<u64, B256>,
    accumulator: U256,
    last_height: Option<u64>,
}

/// Digest of one live entry, added to (or subtracted from) the accumulator.
fn entry_digest(key: &KeyHash, value: &[u8]) -> U256 {
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update(value);
    U256::from_be_bytes::<32>(hasher.finalize().into())
}

impl MemoryState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of accounts held.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    fn add(&mut self, key: StateKey, value: &[u8]) {
        self.accumulator = self.accumulator.wrapping_add(entry_digest(&key.hash(), value));
    }

    fn remove(&mut self, key: StateKey, value: &[u8]) {
        self.accumulator = self.accumulator.wrapping_sub(entry_digest(&key.hash(), value));
    }

    fn write_account(&mut self, address: Address, account: Option<Account>) {
        let old = match account {
            Some(account) => self.accounts.insert(address, account),
            None => self.accounts.remove(&address),
        };
        if let Some(old) = old {
            self.remove(StateKey::Account(address), &old.encode());
        }
        if let Some(account) = account {
            self.add(StateKey::Account(address), &account.encode());
        }
    }

    fn wipe_storage(&mut self, address: Address) {
        if let Some(slots) = self.storage.remove(&address) {
            for (slot, value) in slots {
                self.remove(StateKey::Storage(address, slot), &encode_storage(value));
            }
        }
    }

    fn write_slot(&mut self, address: Address, slot: U256, value: U256) {
        let slots = self.storage.entry(address).or_default();
        let old = if value.is_zero() { slots.remove(&slot) } else { slots.insert(slot, value) };
        if slots.is_empty() {
            self.storage.remove(&address);
        }
        if let Some(old) = old {
            self.remove(StateKey::Storage(address, slot), &encode_storage(old));
        }
        if !value.is_zero() {
            self.add(StateKey::Storage(address, slot), &encode_storage(value));
        }
    }

    fn write_code(&mut self, code_hash: B256, code: &Bytes) {
        if self.code.contains_key(&code_hash) {
            return; // Code is content-addressed: the same hash always holds the same bytes.
        }
        self.add(StateKey::Code(code_hash), code);
        self.code.insert(code_hash, code.clone());
    }
}

impl StateReader for MemoryState {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        Ok(self.accounts.get(&address).copied())
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        Ok(self
            .storage
            .get(&address)
            .and_then(|slots| slots.get(&slot))
            .copied()
            .unwrap_or_default())
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.code.get(&code_hash).cloned())
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        Ok(self.block_hashes.get(&number).copied())
    }
}

impl StateCommit for MemoryState {
    fn commit_block(&mut self, changes: &BlockChanges) -> Result<B256, StateError> {
        if let Some(last) = self.last_height {
            if changes.height != last + 1 {
                return Err(StateError::HeightOutOfOrder { last, got: changes.height });
            }
        }
        // Wipes come first: a destroyed-and-recreated account's new slots must survive.
        for change in changes.storage.iter().filter(|change| change.wiped) {
            self.wipe_storage(change.address);
        }
        for (address, account) in &changes.accounts {
            self.write_account(*address, *account);
        }
        for change in &changes.storage {
            for (slot, value) in &change.slots {
                self.write_slot(change.address, *slot, *value);
            }
        }
        for (code_hash, code) in &changes.code {
            self.write_code(*code_hash, code);
        }
        self.block_hashes.extend(changes.block_hashes.iter().copied());
        self.last_height = Some(changes.height);
        Ok(self.state_root())
    }

    fn record_block_hash(&mut self, number: u64, hash: B256) -> Result<(), StateError> {
        self.block_hashes.insert(number, hash);
        Ok(())
    }

    fn state_root(&self) -> B256 {
        let mut hasher = Sha256::new();
        hasher.update(b"zero-memory-state");
        hasher.update(self.accumulator.to_be_bytes::<32>());
        B256::from(<[u8; 32]>::from(hasher.finalize()))
    }

    fn last_height(&self) -> Option<u64> {
        self.last_height
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageChange;
    use alloy_primitives::address;

    const ALICE: Address = address!("00000000000000000000000000000000000000a1");
    const BOB: Address = address!("00000000000000000000000000000000000000b0");

    fn block(height: u64) -> BlockChanges {
        BlockChanges::new(height)
    }

    #[test]
    fn root_depends_on_content_not_on_write_order() {
        let mut forward = block(0);
        forward.accounts = vec![
            (ALICE, Some(Account::with_balance(U256::from(5)))),
            (BOB, Some(Account::with_balance(U256::from(7)))),
        ];
        let mut backward = forward.clone();
        backward.accounts.reverse();

        let mut first = MemoryState::new();
        let mut second = MemoryState::new();
        assert_eq!(first.commit_block(&forward).unwrap(), second.commit_block(&backward).unwrap());
    }

    #[test]
    fn deleting_everything_returns_to_the_empty_root() {
        let empty_root = MemoryState::new().state_root();
        let mut state = MemoryState::new();
        let mut genesis = block(0);
        genesis.accounts = vec![(ALICE, Some(Account::with_balance(U256::from(1))))];
        genesis.storage = vec![StorageChange {
            address: ALICE,
            wiped: false,
            slots: vec![(U256::from(1), U256::from(9))],
        }];
        assert_ne!(state.commit_block(&genesis).unwrap(), empty_root);

        let mut clear = block(1);
        clear.accounts = vec![(ALICE, None)];
        clear.storage = vec![StorageChange { address: ALICE, wiped: true, slots: vec![] }];
        assert_eq!(state.commit_block(&clear).unwrap(), empty_root);
        assert_eq!(state.storage(ALICE, U256::from(1)).unwrap(), U256::ZERO);
        assert_eq!(state.account(ALICE).unwrap(), None);
    }

    #[test]
    fn wipe_then_write_keeps_the_new_slots() {
        let mut state = MemoryState::new();
        let mut genesis = block(0);
        genesis.storage = vec![StorageChange {
            address: ALICE,
            wiped: false,
            slots: vec![(U256::from(1), U256::from(1)), (U256::from(2), U256::from(2))],
        }];
        state.commit_block(&genesis).unwrap();
        let mut recreate = block(1);
        recreate.storage = vec![StorageChange {
            address: ALICE,
            wiped: true,
            slots: vec![(U256::from(2), U256::from(3))],
        }];
        state.commit_block(&recreate).unwrap();
        assert_eq!(state.storage(ALICE, U256::from(1)).unwrap(), U256::ZERO);
        assert_eq!(state.storage(ALICE, U256::from(2)).unwrap(), U256::from(3));
    }

    #[test]
    fn heights_must_follow_each_other() {
        let mut state = MemoryState::new();
        state.commit_block(&block(10)).unwrap();
        let error = state.commit_block(&block(12)).unwrap_err();
        assert!(matches!(error, StateError::HeightOutOfOrder { last: 10, got: 12 }));
        assert_eq!(state.last_height(), Some(10));
    }
}
