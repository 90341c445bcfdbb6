//! Reading the state of a block whose commit is still running.
//!
//! With a [`SharedCommit`](zero_state::SharedCommit) store, the dev chain hands block N's changes
//! to a background commit (Merkleization, fsync) and starts block N+1 at once. Block N+1 reads
//! through [`Layered`]: block N's own writes from [`RecentBlock`], everything else from the
//! store, where a key block N did not change reads the same before, during and after its commit.
//! A block the parallel executor ran hands over its final overlay as the [`RecentBlock`]: it is
//! already keyed for reads, so nothing is indexed between the two blocks.

use crate::parallel::overlay::{FrozenOverlay, KeyHashState};
use alloy_primitives::{
    map::{AddressMap, AddressSet, B256Map},
    Address, Bytes, B256, U256,
};
use std::collections::HashMap;
use zero_state::{Account, BlockChanges, StateError, StateReader};

/// The state after one block, for the keys the block decides, and its hash.
#[derive(Debug)]
pub struct RecentBlock {
    number: u64,
    hash: B256,
    writes: Writes,
}

/// Where a [`RecentBlock`]'s values come from.
#[derive(Debug)]
enum Writes {
    /// The block's change set, indexed.
    Indexed {
        accounts: AddressMap<Option<Account>>,
        slots: HashMap<(Address, U256), U256, KeyHashState>,
        /// Accounts whose storage from before the block is gone.
        wiped: AddressSet,
        code: B256Map<Bytes>,
    },
    /// The parallel executor's final overlay: nothing to index, it is already keyed for reads.
    Overlay(FrozenOverlay),
}

impl RecentBlock {
    /// Indexes `changes`, the changes of the block whose hash is `hash`.
    pub fn new(changes: &BlockChanges, hash: B256) -> Self {
        let slot_count = changes.storage.iter().map(|change| change.slots.len()).sum();
        let mut slots = HashMap::with_capacity_and_hasher(slot_count, KeyHashState::default());
        let mut wiped = AddressSet::default();
        for change in &changes.storage {
            if change.wiped {
                wiped.insert(change.address);
            }
            slots
                .extend(change.slots.iter().map(|(slot, value)| ((change.address, *slot), *value)));
        }
        let writes = Writes::Indexed {
            accounts: changes.accounts.iter().copied().collect(),
            slots,
            wiped,
            code: changes.code.iter().cloned().collect(),
        };
        Self { number: changes.height, hash, writes }
    }

    /// Block `number` (hash `hash`) as its final overlay holds it: the overlay must come from a
    /// block whose change set was read from that overlay (so it expresses every write).
    pub fn from_overlay(number: u64, hash: B256, overlay: FrozenOverlay) -> Self {
        Self { number, hash, writes: Writes::Overlay(overlay) }
    }

    fn account(&self, address: Address) -> Option<Option<Account>> {
        match &self.writes {
            Writes::Indexed { accounts, .. } => accounts.get(&address).copied(),
            Writes::Overlay(overlay) => overlay.account(address),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Option<U256> {
        match &self.writes {
            Writes::Indexed { slots, wiped, .. } => slots
                .get(&(address, slot))
                .copied()
                .or_else(|| wiped.contains(&address).then_some(U256::ZERO)),
            Writes::Overlay(overlay) => overlay.storage(address, slot),
        }
    }

    fn code(&self, code_hash: B256) -> Option<Bytes> {
        match &self.writes {
            Writes::Indexed { code, .. } => code.get(&code_hash).cloned(),
            Writes::Overlay(overlay) => overlay.code(code_hash),
        }
    }
}

/// The state after `recent` (when present) over `store`.
#[derive(Debug, Clone, Copy)]
pub struct Layered<'a, S> {
    recent: Option<&'a RecentBlock>,
    store: &'a S,
}

impl<'a, S> Layered<'a, S> {
    /// `store`, with `recent`'s writes on top.
    pub fn new(recent: Option<&'a RecentBlock>, store: &'a S) -> Self {
        Self { recent, store }
    }
}

impl<S: StateReader> StateReader for Layered<'_, S> {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        if let Some(account) = self.recent.and_then(|recent| recent.account(address)) {
            return Ok(account);
        }
        self.store.account(address)
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        if let Some(value) = self.recent.and_then(|recent| recent.storage(address, slot)) {
            return Ok(value);
        }
        self.store.storage(address, slot)
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        if let Some(code) = self.recent.and_then(|recent| recent.code(code_hash)) {
            return Ok(Some(code));
        }
        self.store.code(code_hash)
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        match self.recent {
            Some(recent) if recent.number == number => Ok(Some(recent.hash)),
            _ => self.store.block_hash(number),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::overlay::{version_of, BlockOverlay, StorageEffect};
    use revm::{bytecode::Bytecode, state::AccountInfo};
    use zero_state::{MemoryState, StateCommit, StorageChange, KECCAK_EMPTY};

    fn account(balance: u64) -> Account {
        Account { nonce: 1, balance: U256::from(balance), code_hash: KECCAK_EMPTY }
    }

    /// Every kind of write in the recent block shadows the store, whether the block is indexed
    /// from its change set or served from the parallel executor's final overlay; everything
    /// else reads through.
    #[test]
    fn recent_writes_shadow_the_store_and_the_rest_reads_through() {
        let (a, b, c) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let mut store = MemoryState::new();
        let mut base = BlockChanges::new(1);
        base.accounts = vec![(a, Some(account(1))), (b, Some(account(2))), (c, Some(account(3)))];
        base.storage = vec![
            StorageChange {
                address: a,
                wiped: false,
                slots: vec![(U256::from(1), U256::from(10))],
            },
            StorageChange {
                address: b,
                wiped: false,
                slots: vec![(U256::from(1), U256::from(20))],
            },
        ];
        store.commit_block(&base).unwrap();
        store.record_block_hash(1, B256::repeat_byte(1)).unwrap();

        let mut next = BlockChanges::new(2);
        next.accounts = vec![(a, Some(account(5))), (c, None)];
        next.storage = vec![
            StorageChange { address: a, wiped: false, slots: vec![(U256::from(2), U256::from(7))] },
            StorageChange { address: b, wiped: true, slots: vec![(U256::from(3), U256::from(9))] },
        ];
        next.code = vec![(B256::repeat_byte(0xcc), Bytes::from_static(&[0x60, 0x00]))];
        let recent = RecentBlock::new(&next, B256::repeat_byte(2));
        let view = Layered::new(Some(&recent), &store);

        assert_eq!(view.account(a).unwrap(), Some(account(5)));
        assert_eq!(view.account(b).unwrap(), Some(account(2)), "unchanged: from the store");
        assert_eq!(view.account(c).unwrap(), None, "deleted in the recent block");
        assert_eq!(view.storage(a, U256::from(1)).unwrap(), U256::from(10));
        assert_eq!(view.storage(a, U256::from(2)).unwrap(), U256::from(7));
        assert_eq!(view.storage(b, U256::from(1)).unwrap(), U256::ZERO, "wiped");
        assert_eq!(view.storage(b, U256::from(3)).unwrap(), U256::from(9));
        assert!(view.code(B256::repeat_byte(0xcc)).unwrap().is_some());
        assert_eq!(view.block_hash(2).unwrap(), Some(B256::repeat_byte(2)));
        assert_eq!(view.block_hash(1).unwrap(), Some(B256::repeat_byte(1)));

        // The same block as the parallel executor's final overlay holds it.
        let overlay = BlockOverlay::new();
        let info = |balance: u64| AccountInfo {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: KECCAK_EMPTY,
            account_id: None,
            code: None,
        };
        overlay.insert_base_account(b, Some(info(2)));
        overlay.write_account(a, Some(info(5)), version_of(0), StorageEffect::Kept, None);
        overlay.write_account(c, None, version_of(1), StorageEffect::Kept, None);
        overlay.insert_base_storage(a, U256::from(1), U256::from(10));
        overlay.write_storage(a, U256::from(2), U256::from(7), version_of(0), None);
        overlay.write_account(b, Some(info(2)), version_of(2), StorageEffect::Cleared, None);
        overlay.write_storage(b, U256::from(3), U256::from(9), version_of(2), None);
        overlay.insert_code(B256::repeat_byte(0xcc), Bytecode::new_raw(next.code[0].1.clone()));
        let recent = RecentBlock::from_overlay(2, B256::repeat_byte(2), overlay.freeze());
        let view = Layered::new(Some(&recent), &store);
        assert_eq!(view.account(a).unwrap(), Some(account(5)));
        assert_eq!(view.account(b).unwrap(), Some(account(2)), "read, not changed");
        assert_eq!(view.account(c).unwrap(), None, "deleted in the recent block");
        assert_eq!(view.storage(a, U256::from(1)).unwrap(), U256::from(10));
        assert_eq!(view.storage(a, U256::from(2)).unwrap(), U256::from(7));
        assert_eq!(view.storage(a, U256::from(3)).unwrap(), U256::ZERO, "from the store");
        assert_eq!(view.storage(b, U256::from(1)).unwrap(), U256::ZERO, "wiped");
        assert_eq!(view.storage(b, U256::from(3)).unwrap(), U256::from(9));
        assert_eq!(view.code(B256::repeat_byte(0xcc)).unwrap(), Some(next.code[0].1.clone()));
        assert_eq!(view.block_hash(2).unwrap(), Some(B256::repeat_byte(2)));
        assert_eq!(view.block_hash(1).unwrap(), Some(B256::repeat_byte(1)));

        let plain = Layered::new(None, &store);
        assert_eq!(plain.account(a).unwrap(), Some(account(1)));
        assert_eq!(plain.storage(b, U256::from(1)).unwrap(), U256::from(20));
        assert_eq!(plain.block_hash(2).unwrap(), None);
    }
}
