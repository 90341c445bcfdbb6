//! One block's worth of state changes, in the shape every store commits.

use crate::Account;
use alloy_primitives::{Address, Bytes, B256, U256};

/// The storage writes of one account within a block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageChange {
    /// The account whose storage changed.
    pub address: Address,
    /// The account was destroyed (or destroyed and re-created) in this block: every slot it had
    /// before the block is gone before `slots` are written.
    pub wiped: bool,
    /// Slot writes; a zero value deletes the slot.
    pub slots: Vec<(U256, U256)>,
}

/// Everything a block changed, ready to be committed as one unit.
///
/// Order inside each list does not matter: a store must produce the same root for any order,
/// and each account, slot or code hash appears at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockChanges {
    /// Height of the block these changes belong to.
    pub height: u64,
    /// Account writes; `None` deletes the account (EIP-161 empty-account clearing, selfdestruct).
    pub accounts: Vec<(Address, Option<Account>)>,
    /// Storage writes, per account.
    pub storage: Vec<StorageChange>,
    /// Code first deployed in this block, by keccak-256 hash.
    pub code: Vec<(B256, Bytes)>,
    /// Block hashes the store should answer from now on (`BLOCKHASH` history), by number.
    pub block_hashes: Vec<(u64, B256)>,
}

impl BlockChanges {
    /// An empty change set for `height`.
    pub fn new(height: u64) -> Self {
        Self { height, ..Self::default() }
    }

    /// Number of individual key writes (accounts, slots, code), a measure of the commit's size.
    pub fn write_count(&self) -> usize {
        self.accounts.len()
            + self.storage.iter().map(|change| change.slots.len()).sum::<usize>()
            + self.code.len()
    }

    /// Sorts every list by key, so that two change sets holding the same writes compare equal.
    pub fn normalize(&mut self) {
        self.accounts.sort_unstable_by_key(|(address, _)| *address);
        self.storage.sort_unstable_by_key(|change| change.address);
        for change in &mut self.storage {
            change.slots.sort_unstable_by_key(|(slot, _)| *slot);
        }
        self.code.sort_unstable_by_key(|(hash, _)| *hash);
        self.block_hashes.sort_unstable_by_key(|(number, _)| *number);
    }
}
