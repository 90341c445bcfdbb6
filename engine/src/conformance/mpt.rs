//! The Ethereum state as the tests see it: every account and slot, and its Merkle-Patricia root.
//!
//! Our stores commit to their own roots (QMDB's binary tree, the memory store's multiset hash), so
//! the Ethereum state root a test expects cannot come from them. [`FullState`] keeps the whole
//! state beside the store — the pre-state plus every committed [`BlockChanges`], applied with the
//! store's own rules — and computes the secure-trie root from it: `keccak(address)` to the RLP
//! account `[nonce, balance, storage_root, code_hash]`, each storage trie `keccak(slot)` to
//! `RLP(value)`. Execution never reads it; [`FullState::check_store`] verifies that the store holds
//! the same values.

use alloy_primitives::{keccak256, Address, Log, B256, U256};
use alloy_trie::{HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH};
use std::collections::{BTreeMap, BTreeSet};
use zero_fixtures::GenesisAccount;
use zero_state::{Account, BlockChanges, StateReader, KECCAK_EMPTY};

/// A whole state: accounts and non-zero storage, by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FullState {
    accounts: BTreeMap<Address, Account>,
    storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    /// Every address and slot ever written, so a check can also look for what must be gone.
    seen_accounts: BTreeSet<Address>,
    seen_slots: BTreeSet<(Address, U256)>,
}

impl FullState {
    /// The state holding exactly `accounts`.
    pub fn from_genesis(accounts: &[GenesisAccount]) -> Self {
        let mut state = Self::default();
        for account in accounts {
            let code_hash = account.code.as_ref().map_or(KECCAK_EMPTY, keccak256);
            let record = Account { nonce: account.nonce, balance: account.balance, code_hash };
            state.accounts.insert(account.address, record);
            state.seen_accounts.insert(account.address);
            for (slot, value) in &account.storage {
                state.write_slot(account.address, *slot, *value);
            }
        }
        state
    }

    /// Applies `changes` as [`zero_state::MemoryState`] commits them: storage wipes first, then
    /// account writes (`None` deletes the account record), then slot writes (zero deletes).
    pub fn apply(&mut self, changes: &BlockChanges) {
        for change in changes.storage.iter().filter(|change| change.wiped) {
            self.storage.remove(&change.address);
        }
        for (address, account) in &changes.accounts {
            self.seen_accounts.insert(*address);
            match account {
                Some(account) => self.accounts.insert(*address, *account),
                None => self.accounts.remove(address),
            };
        }
        for change in &changes.storage {
            for (slot, value) in &change.slots {
                self.write_slot(change.address, *slot, *value);
            }
        }
    }

    fn write_slot(&mut self, address: Address, slot: U256, value: U256) {
        self.seen_slots.insert((address, slot));
        let slots = self.storage.entry(address).or_default();
        if value.is_zero() {
            slots.remove(&slot);
        } else {
            slots.insert(slot, value);
        }
        if slots.is_empty() {
            self.storage.remove(&address);
        }
    }

    /// The account at `address`.
    pub fn account(&self, address: &Address) -> Option<&Account> {
        self.accounts.get(address)
    }

    /// The non-zero storage of `address`.
    pub fn storage(&self, address: &Address) -> impl Iterator<Item = (&U256, &U256)> {
        self.storage.get(address).into_iter().flatten()
    }

    /// Every account, in address order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// The Ethereum state root (secure Merkle-Patricia trie) of this state.
    pub fn state_root(&self) -> B256 {
        let mut leaves: Vec<(B256, TrieAccount)> = self
            .accounts
            .iter()
            .map(|(address, account)| {
                let storage_root = storage_root(self.storage(address).map(|(k, v)| (*k, *v)));
                let leaf = TrieAccount::new(
                    account.nonce,
                    account.balance,
                    storage_root,
                    account.code_hash,
                );
                (keccak256(address), leaf)
            })
            .collect();
        leaves.sort_unstable_by_key(|(key, _)| *key);
        let mut builder = HashBuilder::default();
        let mut encoded = Vec::new();
        for (key, account) in leaves {
            encoded.clear();
            alloy_rlp::Encodable::encode(&account, &mut encoded);
            builder.add_leaf(Nibbles::unpack(key), &encoded);
        }
        builder.root()
    }

    /// Checks that `store` holds this state: every account ever written reads back as here (and
    /// its code is there), and so does every slot ever written. The first disagreement is
    /// returned as a sentence.
    pub fn check_store<S: StateReader>(&self, store: &S) -> Result<(), String> {
        for address in &self.seen_accounts {
            let stored = store.account(*address).map_err(|error| error.to_string())?;
            let expected = self.accounts.get(address).copied();
            if stored != expected {
                return Err(format!(
                    "store holds account {address} as {stored:?}, not {expected:?}"
                ));
            }
            if let Some(account) = expected.filter(|account| account.code_hash != KECCAK_EMPTY) {
                if store.code(account.code_hash).map_err(|error| error.to_string())?.is_none() {
                    return Err(format!("store lacks code {} of {address}", account.code_hash));
                }
            }
        }
        for (address, slot) in &self.seen_slots {
            let stored = store.storage(*address, *slot).map_err(|error| error.to_string())?;
            let expected = self
                .storage
                .get(address)
                .and_then(|slots| slots.get(slot))
                .copied()
                .unwrap_or_default();
            if stored != expected {
                return Err(format!(
                    "store holds slot {slot} of {address} as {stored}, not {expected}"
                ));
            }
        }
        Ok(())
    }
}

/// The root of a storage trie: `keccak(slot)` to `RLP(value)` over the non-zero slots.
pub fn storage_root(slots: impl IntoIterator<Item = (U256, U256)>) -> B256 {
    let mut leaves: Vec<(B256, U256)> = slots
        .into_iter()
        .filter(|(_, value)| !value.is_zero())
        .map(|(slot, value)| (keccak256(B256::from(slot)), value))
        .collect();
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    leaves.sort_unstable_by_key(|(key, _)| *key);
    let mut builder = HashBuilder::default();
    for (key, value) in leaves {
        builder.add_leaf(Nibbles::unpack(key), &alloy_rlp::encode(value));
    }
    builder.root()
}

/// keccak-256 of the RLP list of `logs`: the `logs` field of a state test.
pub fn logs_hash(logs: &[Log]) -> B256 {
    let mut encoded = Vec::with_capacity(alloy_rlp::list_length(logs));
    alloy_rlp::encode_list(logs, &mut encoded);
    keccak256(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, bytes};
    use zero_state::StorageChange;

    #[test]
    fn the_empty_state_has_the_empty_trie_root() {
        let root = FullState::default().state_root();
        assert_eq!(root, b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"));
        assert_eq!(storage_root([(U256::from(1), U256::ZERO)]), EMPTY_ROOT_HASH);
    }

    #[test]
    fn no_logs_hash_to_the_empty_list_hash() {
        // keccak256(rlp([])) = keccak256(0xc0), the empty ommers hash.
        assert_eq!(
            logs_hash(&[]),
            b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")
        );
    }

    /// The pre-state and genesis state root of ethereum/tests `BlockchainTests/ValidBlocks/
    /// bcStateTests/ZeroValue_TransactionCALLwithData_OOGRevert.json`: the EIP-4788 contract with
    /// one slot, and one funded account.
    #[test]
    fn a_fixture_genesis_root() {
        let accounts = [
            GenesisAccount {
                address: address!("000f3df6d732807ef1319fb7b8bb8522d0beac02"),
                nonce: 1,
                balance: U256::ZERO,
                code: Some(bytes!("3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500")),
                storage: vec![(U256::from(0x03e8), U256::from(0x03e8))],
            },
            GenesisAccount {
                address: address!("a94f5374fce5edbc8e2a8697c15331677e6ebf0b"),
                nonce: 0,
                balance: U256::from(0xe8d4a51000u64),
                code: None,
                storage: Vec::new(),
            },
        ];
        assert_eq!(
            FullState::from_genesis(&accounts).state_root(),
            b256!("b5b9761f384ac2a59ac3e8a2c02fd01c31ea953acd472d04ff47fc4a4c49f527")
        );
    }

    #[test]
    fn apply_follows_the_store_rules() {
        let owner = address!("1000000000000000000000000000000000000001");
        let mut state = FullState::from_genesis(&[GenesisAccount {
            address: owner,
            nonce: 1,
            balance: U256::from(5),
            code: None,
            storage: vec![(U256::from(1), U256::from(7)), (U256::from(2), U256::from(8))],
        }]);
        let with_slots = state.state_root();
        let mut changes = BlockChanges::new(1);
        changes.storage.push(StorageChange {
            address: owner,
            wiped: true,
            slots: vec![(U256::from(3), U256::from(9))],
        });
        state.apply(&changes);
        assert_eq!(state.storage(&owner).collect::<Vec<_>>(), [(&U256::from(3), &U256::from(9))]);
        assert_ne!(state.state_root(), with_slots);

        let mut delete = BlockChanges::new(2);
        delete.accounts.push((owner, None));
        delete.storage.push(StorageChange { address: owner, wiped: true, slots: Vec::new() });
        state.apply(&delete);
        assert_eq!(state.state_root(), FullState::default().state_root());
    }
}
