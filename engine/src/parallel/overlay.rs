//! [`BlockOverlay`]: the state a worker reads while a block executes in parallel — the block's
//! committed writes over the store's block-start state — with a version on every value.
//!
//! A version says which write produced a value: [`BASE`] for the store's value at block start,
//! [`PRE_EXECUTION`] for the block's system calls, and `position + 1` for the transaction at
//! `position`. Writes enter only when a transaction commits, and commits go strictly in block
//! order, so a worker only ever sees values of committed transactions. A read records the version
//! it saw; at commit the executor recomputes the version of each key it read, and a transaction
//! whose every read is still current has seen exactly what the sequential order would have shown
//! it (validation, `executor.rs`).
//!
//! The overlay doubles as the block's read cache: store reads enter as [`BASE`] entries, so each
//! key goes to the store at most once per block however many transactions read it (the store
//! does not change during a block).
//!
//! Every written entry keeps the block-start value it replaced, so at the end of the block the
//! change set is a comparison of final and original values ([`BlockOverlay::changes`]), built in
//! parallel over the shards instead of by replaying each transaction into revm's `State`.

use crate::database::{account_info, store_account, DatabaseError};
use alloy_primitives::{map::B256Map, Address, Bytes, B256, U256};
use rayon::prelude::*;
use revm::{bytecode::Bytecode, state::AccountInfo};
use std::{
    collections::{hash_map::Entry, HashMap},
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher},
    sync::{
        atomic::{AtomicBool, Ordering},
        RwLock,
    },
};
use zero_state::{Account, BlockChanges, StateReader, StorageChange, KECCAK_EMPTY};

/// One account's part of the change set.
struct AccountChange {
    address: Address,
    /// `Some` when the account itself changed (`Some(None)`: it is gone).
    account: Option<Option<Account>>,
    /// Code first deployed under this account's new code hash.
    code: Option<(B256, Bytes)>,
}

/// Which write produced a value (see the module documentation).
pub type Version = u32;
/// The store's value at block start.
pub const BASE: Version = u32::MAX;
/// Written by the block's pre-execution system calls (EIP-2935, EIP-4788).
pub const PRE_EXECUTION: Version = 0;
/// Written after the last transaction: withdrawals, rewards, post-block system calls.
pub const POST_EXECUTION: Version = u32::MAX - 1;

/// The version of the transaction at `position`.
#[inline]
pub fn version_of(position: usize) -> Version {
    // Blocks hold far fewer than 2^31 transactions (the gas limit bounds them).
    u32::try_from(2 * (position + 1)).expect("block position fits in a version")
}

/// The version of the beneficiary's fees credited right after the transaction at `position`
/// committed: between its version and the next transaction's, so a read of the beneficiary
/// taken before the credit is seen as stale.
#[inline]
pub fn fee_version_after(position: usize) -> Version {
    version_of(position) + 1
}

/// Number of lock shards per map: enough that two workers rarely meet on one lock.
const SHARDS: usize = 64;

/// Entries (accounts and slots) from which the change set is worked out on rayon's pool:
/// below it, waking the pool costs more than it saves (the mainnet fixtures' blocks, a few
/// hundred to a few thousand entries, took 8-10 ms in all that way against 5 ms on one thread).
const PARALLEL_CHANGE_SET: usize = 4096;

/// The overlay's key hasher: addresses and slots are mostly hash outputs already (or small
/// integers beside a random address), so a multiply-rotate pass over the words and a final mix
/// spread them well, for a fraction of a general-purpose hasher's work on every lookup.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            self.add(word);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.add(word);
    }

    /// Length prefixes: every key of one map has the same shape, so they carry nothing.
    #[inline]
    fn write_usize(&mut self, _: usize) {}

    #[inline]
    fn finish(&self) -> u64 {
        // MurmurHash3's finaliser: every input bit reaches the top bits (shard, control byte).
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Builds [`KeyHasher`]s.
pub(crate) type KeyHashState = BuildHasherDefault<KeyHasher>;

/// The shard of `key`, from the middle bits of its hash: inside a shard, hashbrown places a key
/// by the low bits and tells the keys of a group apart by the top seven, so both must still vary
/// there.
#[inline]
fn shard_index<K: Hash>(hasher: &KeyHashState, key: &K) -> usize {
    (hasher.hash_one(key) >> 32) as usize % SHARDS
}

/// A hash map split into [`SHARDS`] independently locked parts.
struct ShardedMap<K, V> {
    hasher: KeyHashState,
    shards: Box<[Shard<K, V>]>,
}

/// One shard on cache lines of its own: two workers taking neighbouring shards' locks would
/// otherwise pass the same line back and forth.
#[repr(align(128))]
struct Shard<K, V>(RwLock<HashMap<K, V, KeyHashState>>);

impl<K, V> std::ops::Deref for Shard<K, V> {
    type Target = RwLock<HashMap<K, V, KeyHashState>>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K: Hash + Eq, V: Clone> ShardedMap<K, V> {
    /// A map sized for about `entries` entries, so that a block's first writes do not keep
    /// growing (and rehashing) the shards.
    fn with_capacity(entries: usize) -> Self {
        let per_shard = entries.div_ceil(SHARDS);
        Self {
            hasher: KeyHashState::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    let map = HashMap::with_capacity_and_hasher(per_shard, KeyHashState::default());
                    Shard(RwLock::new(map))
                })
                .collect(),
        }
    }

    #[inline]
    fn shard(&self, key: &K) -> &Shard<K, V> {
        &self.shards[self.shard_index(key)]
    }

    #[inline]
    fn shard_index(&self, key: &K) -> usize {
        shard_index(&self.hasher, key)
    }

    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.read_with(key, V::clone)
    }

    /// `read` applied to the key's value, without cloning it.
    #[inline]
    fn read_with<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        // A poisoned lock means a worker panicked mid-insert; the map itself is still valid.
        let shard = self.shard(key).read().unwrap_or_else(|poison| poison.into_inner());
        shard.get(key).map(read)
    }

    /// Entries in all shards.
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(|poison| poison.into_inner()).len())
            .sum()
    }

    /// `map` over every shard, read-locked, on rayon's pool when `parallel`; the first error
    /// stops it.
    fn map_shards<R: Send, E: Send>(
        &self,
        parallel: bool,
        map: impl Fn(&HashMap<K, V, KeyHashState>) -> Result<R, E> + Sync,
    ) -> Result<Vec<R>, E>
    where
        K: Send + Sync,
        V: Send + Sync,
    {
        let map_shard =
            |shard: &Shard<K, V>| map(&shard.read().unwrap_or_else(|poison| poison.into_inner()));
        if parallel {
            self.shards.par_iter().map(map_shard).collect()
        } else {
            self.shards.iter().map(map_shard).collect()
        }
    }

    /// Inserts `value` unless the key has an entry; returns the entry that is there afterwards.
    #[inline]
    fn get_or_insert(&self, key: K, value: V) -> V {
        let mut shard = self.shard(&key).write().unwrap_or_else(|poison| poison.into_inner());
        shard.entry(key).or_insert(value).clone()
    }

    /// Writes `value` into the key's entry in place with `present`, or inserts `absent(value)`
    /// when it has none: one lookup, and the rest of an existing entry is not copied.
    #[inline]
    fn upsert<T>(
        &self,
        key: K,
        value: T,
        present: impl FnOnce(&mut V, T),
        absent: impl FnOnce(T) -> V,
    ) {
        let mut shard = self.shard(&key).write().unwrap_or_else(|poison| poison.into_inner());
        match shard.entry(key) {
            Entry::Occupied(mut entry) => present(entry.get_mut(), value),
            Entry::Vacant(entry) => {
                entry.insert(absent(value));
            }
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// The shards' maps, unlocked: moved out, not copied.
    fn into_frozen(self) -> FrozenMap<K, V> {
        FrozenMap {
            hasher: self.hasher,
            shards: self
                .shards
                .into_vec()
                .into_iter()
                .map(|shard| shard.0.into_inner().unwrap_or_else(|poison| poison.into_inner()))
                .collect(),
        }
    }
}

/// A [`ShardedMap`] no one writes any more: the same shards, read without locks.
struct FrozenMap<K, V> {
    hasher: KeyHashState,
    shards: Box<[HashMap<K, V, KeyHashState>]>,
}

impl<K: Hash + Eq, V> FrozenMap<K, V> {
    #[inline]
    fn get(&self, key: &K) -> Option<&V> {
        self.shards[shard_index(&self.hasher, key)].get(key)
    }
}

/// An account as the overlay holds it.
#[derive(Clone, Debug)]
pub struct AccountEntry {
    /// The account, `None` when it does not exist. Code is not carried (see
    /// [`BlockOverlay::code`]).
    pub info: Option<AccountInfo>,
    /// Which write produced `info`.
    pub version: Version,
    /// The latest write that wiped the account's storage (selfdestruct, creation, EIP-161
    /// removal), if any: slots not written since read as zero.
    pub cleared_at: Option<Version>,
    /// The account existed and was destroyed at some point in this block (see
    /// [`StorageEffect::Destroyed`]): the change set wipes its storage.
    pub destroyed: bool,
    /// The account at block start, when known without asking the store (`None`: unknown).
    original: Option<Option<AccountInfo>>,
}

#[derive(Clone, Copy, Debug)]
struct SlotEntry {
    value: U256,
    version: Version,
    /// The slot's value at block start, when known without asking the store.
    original: Option<U256>,
}

impl SlotEntry {
    /// What a write over this entry replaces at block start.
    fn original(&self) -> Option<U256> {
        if self.version == BASE {
            Some(self.value)
        } else {
            self.original
        }
    }
}

/// A piece of state a transaction read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadKey {
    /// An account's balance, nonce and code hash.
    Account(Address),
    /// A storage slot.
    Storage(Address, U256),
}

/// What an account write does to the account's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageEffect {
    /// The storage stays as it was.
    Kept,
    /// The storage starts empty: a creation, or an account destroyed by the transaction that
    /// created it (it never existed outside that transaction, so nothing is wiped).
    Cleared,
    /// An account that existed was destroyed (selfdestruct, EIP-161 removal of an empty
    /// account). Its storage is gone. revm's `State` moves such an account to a destroyed
    /// status that no later write in the block leaves, and its change set wipes the storage of
    /// every account in that status, except one that neither existed at block start nor exists
    /// at the block's end (it leaves that account out altogether).
    Destroyed,
}

/// The block's committed writes over its block-start state; see the module documentation.
pub struct BlockOverlay {
    accounts: ShardedMap<Address, AccountEntry>,
    storage: ShardedMap<(Address, U256), SlotEntry>,
    /// Code deployed in this block, by hash (content-addressed, so never versioned).
    code: ShardedMap<B256, Bytecode>,
    /// Some write wiped an account's storage: until one does, a slot read need not look up
    /// its account. Set before the wiping write, so the committer (which validates) always
    /// sees it; a worker that misses it read a value that validation will find stale.
    any_cleared: AtomicBool,
}

impl Default for BlockOverlay {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockOverlay {
    /// An overlay with nothing in it.
    pub fn new() -> Self {
        Self::for_transactions(0)
    }

    /// An empty overlay sized for a block of `transactions` (a few accounts and slots each).
    pub fn for_transactions(transactions: usize) -> Self {
        Self {
            accounts: ShardedMap::with_capacity(2 * transactions),
            storage: ShardedMap::with_capacity(2 * transactions),
            code: ShardedMap::with_capacity(0),
            any_cleared: AtomicBool::new(false),
        }
    }

    /// The account's value and version, if the block read or wrote it (what a read needs,
    /// without copying the rest of the entry).
    pub fn account_version(&self, address: Address) -> Option<(Option<AccountInfo>, Version)> {
        self.accounts.read_with(&address, |entry| (entry.info.clone(), entry.version))
    }

    /// Caches the store's value of an account; returns the entry in force (a committed write
    /// that raced ahead of the store read wins).
    pub fn insert_base_account(&self, address: Address, info: Option<AccountInfo>) -> AccountEntry {
        let original = Some(info.clone());
        self.accounts.get_or_insert(
            address,
            AccountEntry { info, version: BASE, cleared_at: None, destroyed: false, original },
        )
    }

    /// A slot's value and version if the overlay decides it without the store: a committed
    /// write, a wipe, or a cached base value. `None`: the store must be asked.
    pub fn storage(&self, address: Address, slot: U256) -> Option<(U256, Version)> {
        let cleared_at = self.cleared_at(address);
        let entry = self.storage.get(&(address, slot));
        resolve_slot(entry, cleared_at)
    }

    /// Caches the store's value of a slot; returns the value and version in force.
    pub fn insert_base_storage(
        &self,
        address: Address,
        slot: U256,
        value: U256,
    ) -> (U256, Version) {
        let entry = self
            .storage
            .get_or_insert((address, slot), SlotEntry { value, version: BASE, original: None });
        let cleared_at = self.cleared_at(address);
        resolve_slot(Some(entry), cleared_at).unwrap_or((value, BASE))
    }

    /// Code deployed in this block.
    pub fn code(&self, code_hash: B256) -> Option<Bytecode> {
        self.code.get(&code_hash)
    }

    /// The latest write that wiped the account's storage in this block, if any.
    fn cleared_at(&self, address: Address) -> Option<Version> {
        self.clearing(address).0
    }

    /// The latest write that wiped the account's storage in this block, if any, and whether
    /// the account was destroyed in it.
    fn clearing(&self, address: Address) -> (Option<Version>, bool) {
        if !self.any_cleared.load(Ordering::Acquire) {
            return (None, false);
        }
        self.accounts
            .read_with(&address, |entry| (entry.cleared_at, entry.destroyed))
            .unwrap_or((None, false))
    }

    /// The version a read of `key` would see now (the validation side of a recorded read).
    pub fn current_version(&self, key: ReadKey) -> Version {
        match key {
            ReadKey::Account(address) => {
                self.accounts.read_with(&address, |entry| entry.version).unwrap_or(BASE)
            }
            ReadKey::Storage(address, slot) => {
                self.storage(address, slot).map_or(BASE, |(_, version)| version)
            }
        }
    }

    /// Commits a new value of an account and what it does to the account's storage.
    /// `original` is the account at block start if the caller knows it (it matters only when
    /// the overlay holds no entry for the account yet).
    pub fn write_account(
        &self,
        address: Address,
        info: Option<AccountInfo>,
        version: Version,
        storage: StorageEffect,
        original: Option<Option<AccountInfo>>,
    ) {
        let cleared = storage != StorageEffect::Kept;
        let destroyed = storage == StorageEffect::Destroyed;
        if cleared {
            self.any_cleared.store(true, Ordering::SeqCst);
        }
        self.accounts.upsert(
            address,
            info,
            |entry, info| {
                entry.info = info;
                entry.version = version;
                if cleared {
                    entry.cleared_at = Some(version);
                }
                entry.destroyed |= destroyed;
            },
            |info| AccountEntry {
                info,
                version,
                cleared_at: cleared.then_some(version),
                destroyed,
                original,
            },
        );
    }

    /// Commits a new value of a slot; `original` as for [`Self::write_account`].
    pub fn write_storage(
        &self,
        address: Address,
        slot: U256,
        value: U256,
        version: Version,
        original: Option<U256>,
    ) {
        self.storage.upsert(
            (address, slot),
            value,
            |entry, value| {
                entry.original = entry.original();
                entry.value = value;
                entry.version = version;
            },
            |value| SlotEntry { value, version, original },
        );
    }

    /// The block's state changes, as revm's `BundleState::to_plain_state` gives them for the
    /// same block (from EIP-161 on): every account whose final value differs from its value at
    /// block start; the code of every account whose code hash changed; for an account destroyed
    /// in the block (see [`StorageEffect::Destroyed`]), a storage wipe and its non-zero slots
    /// written since; for any other, every slot whose final value differs from block start.
    /// Originals the overlay did not see are read from `store`. Runs in parallel over the shards
    /// when the overlay holds 4,096 entries or more (below that, waking rayon's pool costs more).
    pub fn changes<S: StateReader>(
        &self,
        height: u64,
        store: &S,
    ) -> Result<BlockChanges, DatabaseError> {
        let parallel = self.accounts.len() + self.storage.len() >= PARALLEL_CHANGE_SET;
        let accounts: Vec<(Vec<AccountChange>, Vec<Address>)> =
            self.accounts.map_shards(parallel, |shard| {
                let mut changes = Vec::new();
                let mut wiped = Vec::new();
                for (address, entry) in shard.iter().filter(|(_, entry)| entry.version != BASE) {
                    let original = match &entry.original {
                        Some(original) => original.clone(),
                        None => store.account(*address)?.map(account_info),
                    };
                    // revm's change set leaves out an account that neither existed at block
                    // start nor exists at its end, destroyed or not.
                    if entry.destroyed && (original.is_some() || entry.info.is_some()) {
                        wiped.push(*address);
                    }
                    let final_hash = entry.info.as_ref().map(|info| info.code_hash);
                    let new_code = final_hash
                        .filter(|hash| {
                            *hash != KECCAK_EMPTY
                                && Some(*hash) != original.as_ref().map(|info| info.code_hash)
                        })
                        .map(|hash| self.deployed_code(hash, store))
                        .transpose()?;
                    if original != entry.info || new_code.is_some() {
                        changes.push(AccountChange {
                            address: *address,
                            account: (original != entry.info)
                                .then(|| entry.info.as_ref().map(store_account)),
                            code: new_code,
                        });
                    }
                }
                Ok::<_, DatabaseError>((changes, wiped))
            })?;

        let slots: Vec<Vec<(Address, U256, U256)>> =
            self.storage.map_shards(parallel, |shard| {
                let mut changes = Vec::new();
                for (&(address, slot), entry) in
                    shard.iter().filter(|(_, entry)| entry.version != BASE)
                {
                    let (cleared_at, destroyed) = self.clearing(address);
                    // A write from before the account was (re)created is gone with its storage.
                    if cleared_at.is_some_and(|cleared| entry.version < cleared) {
                        continue;
                    }
                    // After a wipe the store holds nothing, so every non-zero value is written.
                    let original = if destroyed {
                        U256::ZERO
                    } else {
                        match entry.original {
                            Some(original) => original,
                            None => store.storage(address, slot)?,
                        }
                    };
                    if entry.value != original {
                        changes.push((address, slot, entry.value));
                    }
                }
                Ok::<_, DatabaseError>(changes)
            })?;

        let mut changes = BlockChanges::new(height);
        let mut codes = B256Map::default();
        let mut wiped = Vec::new();
        for (shard_changes, shard_wiped) in accounts {
            wiped.extend(shard_wiped);
            for change in shard_changes {
                if let Some(account) = change.account {
                    changes.accounts.push((change.address, account));
                }
                if let Some((hash, code)) = change.code {
                    codes.insert(hash, code);
                }
            }
        }
        changes.code = codes.into_iter().collect();
        let mut slots: Vec<(Address, U256, U256)> = slots.into_iter().flatten().collect();
        slots.par_sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (address, slot, value) in slots {
            match changes.storage.last_mut() {
                Some(change) if change.address == address => change.slots.push((slot, value)),
                _ => changes.storage.push(StorageChange {
                    address,
                    wiped: false,
                    slots: vec![(slot, value)],
                }),
            }
        }
        // The slots are sorted by address, so each destroyed account's entry is found by search.
        let written = changes.storage.len();
        for address in wiped {
            match changes.storage[..written].binary_search_by_key(&address, |change| change.address)
            {
                Ok(index) => changes.storage[index].wiped = true,
                Err(_) => {
                    changes.storage.push(StorageChange { address, wiped: true, slots: Vec::new() })
                }
            }
        }
        changes.normalize();
        Ok(changes)
    }

    /// The bytes of code with `code_hash` deployed in this block (or, when the same code
    /// already existed, from the store).
    fn deployed_code<S: StateReader>(
        &self,
        code_hash: B256,
        store: &S,
    ) -> Result<(B256, Bytes), DatabaseError> {
        if let Some(code) = self.code.get(&code_hash) {
            return Ok((code_hash, code.original_bytes()));
        }
        match store.code(code_hash)? {
            Some(code) => Ok((code_hash, code)),
            None => Err(DatabaseError::MissingCode { code_hash }),
        }
    }

    /// Makes code deployed in this block readable.
    pub fn insert_code(&self, code_hash: B256, code: Bytecode) {
        self.code.get_or_insert(code_hash, code);
    }
}

/// A finished block's overlay, kept to serve the state after the block while its commit to the
/// store still runs (`crate::pipeline::RecentBlock`): every key the block read or wrote, at its
/// final value. Freezing moves the shards' maps out of their locks, so it costs nothing per
/// entry, and reads take no lock.
pub struct FrozenOverlay {
    accounts: FrozenMap<Address, AccountEntry>,
    storage: FrozenMap<(Address, U256), SlotEntry>,
    code: FrozenMap<B256, Bytecode>,
    any_cleared: bool,
}

impl std::fmt::Debug for FrozenOverlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts: usize = self.accounts.shards.iter().map(HashMap::len).sum();
        let slots: usize = self.storage.shards.iter().map(HashMap::len).sum();
        f.debug_struct("FrozenOverlay")
            .field("accounts", &accounts)
            .field("slots", &slots)
            .finish_non_exhaustive()
    }
}

impl BlockOverlay {
    /// The overlay as it stands, read-only from now on.
    pub fn freeze(self) -> FrozenOverlay {
        FrozenOverlay {
            any_cleared: self.any_cleared.load(Ordering::Acquire),
            accounts: self.accounts.into_frozen(),
            storage: self.storage.into_frozen(),
            code: self.code.into_frozen(),
        }
    }
}

impl FrozenOverlay {
    /// The account after the block, if the block read or wrote it (`Some(None)`: it does not
    /// exist). `None`: the store's value stands.
    pub fn account(&self, address: Address) -> Option<Option<Account>> {
        self.accounts.get(&address).map(|entry| entry.info.as_ref().map(store_account))
    }

    /// The slot after the block, if the block decides it: read or written, or its account's
    /// storage wiped. `None`: the store's value stands.
    pub fn storage(&self, address: Address, slot: U256) -> Option<U256> {
        let cleared_at = if self.any_cleared {
            self.accounts.get(&address).and_then(|entry| entry.cleared_at)
        } else {
            None
        };
        resolve_slot(self.storage.get(&(address, slot)).copied(), cleared_at)
            .map(|(value, _)| value)
    }

    /// Code deployed in the block.
    pub fn code(&self, code_hash: B256) -> Option<Bytes> {
        self.code.get(&code_hash).map(Bytecode::original_bytes)
    }
}

/// A slot's value and version given its entry and its account's latest wipe.
#[inline]
fn resolve_slot(entry: Option<SlotEntry>, cleared_at: Option<Version>) -> Option<(U256, Version)> {
    match (entry, cleared_at) {
        // Written at or after the wipe (a constructor writes after its account is created).
        (Some(entry), Some(cleared)) if entry.version != BASE && entry.version >= cleared => {
            Some((entry.value, entry.version))
        }
        (_, Some(cleared)) => Some((U256::ZERO, cleared)),
        (Some(entry), None) => Some((entry.value, entry.version)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Address = Address::repeat_byte(0xa);

    /// Slots 0..20,000 of one contract (the worst case: one address, small integers) spread
    /// evenly over the shards, and inside each shard the bits hashbrown uses still vary. Taking
    /// the shard from the top bits, as an earlier version did, left the top seven bits almost
    /// constant in a shard and made every lookup compare keys it did not need to.
    #[test]
    fn shards_leave_the_in_map_hash_bits_free() {
        let map: ShardedMap<(Address, U256), ()> = ShardedMap::with_capacity(0);
        let mut per_shard = vec![Vec::new(); SHARDS];
        for slot in 0..20_000u64 {
            let key = (A, U256::from(slot));
            per_shard[map.shard_index(&key)].push(map.hasher.hash_one(key));
        }
        let mean = 20_000 / SHARDS;
        for (shard, hashes) in per_shard.iter().enumerate() {
            assert!(
                hashes.len() > mean / 2 && hashes.len() < mean * 3 / 2,
                "shard {shard} holds {} keys, expected about {mean}",
                hashes.len()
            );
            let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xff).collect();
            assert!(top.len() >= 100, "shard {shard}: {} distinct top-7 values", top.len());
            assert!(low.len() >= 150, "shard {shard}: {} distinct low bytes", low.len());
        }
    }

    #[test]
    fn base_values_are_cached_and_writes_win() {
        let overlay = BlockOverlay::new();
        assert!(overlay.account_version(A).is_none());
        assert_eq!(overlay.current_version(ReadKey::Account(A)), BASE);
        let entry = overlay.insert_base_account(A, None);
        assert_eq!(entry.version, BASE);
        overlay.write_account(
            A,
            Some(AccountInfo::default()),
            version_of(3),
            StorageEffect::Kept,
            None,
        );
        // A late base insert does not overwrite the committed write.
        let entry = overlay.insert_base_account(A, None);
        assert_eq!(entry.version, version_of(3));
        assert!(entry.info.is_some());
    }

    #[test]
    fn a_wipe_hides_older_slots_and_shows_newer_ones() {
        let overlay = BlockOverlay::new();
        let one = U256::from(1);
        assert_eq!(overlay.storage(A, one), None);
        assert_eq!(overlay.insert_base_storage(A, one, U256::from(7)), (U256::from(7), BASE));
        overlay.write_storage(A, U256::from(2), U256::from(9), version_of(0), None);
        overlay.write_account(
            A,
            Some(AccountInfo::default()),
            version_of(1),
            StorageEffect::Cleared,
            None,
        );
        assert_eq!(overlay.storage(A, one), Some((U256::ZERO, version_of(1))), "base slot wiped");
        assert_eq!(
            overlay.storage(A, U256::from(2)),
            Some((U256::ZERO, version_of(1))),
            "older write wiped"
        );
        overlay.write_storage(A, one, U256::from(5), version_of(1), None);
        assert_eq!(
            overlay.storage(A, one),
            Some((U256::from(5), version_of(1))),
            "constructor write"
        );
        assert_eq!(overlay.current_version(ReadKey::Storage(A, U256::from(3))), version_of(1));
    }

    /// Destroyed accounts in the change set, as revm's `State` reports them: a wipe for one
    /// that existed at block start, and for one that exists at the block's end; nothing for
    /// one that did neither.
    #[test]
    fn destroyed_accounts_wipe_their_storage_in_the_change_set() {
        use zero_state::{Account, BlockChanges, MemoryState, StateCommit, StorageChange};
        let (existing, recreated, transient) =
            (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let mut store = MemoryState::new();
        let mut genesis = BlockChanges::new(0);
        genesis.accounts.push((existing, Some(Account { nonce: 1, ..Account::default() })));
        genesis.storage.push(StorageChange {
            address: existing,
            wiped: false,
            slots: vec![(U256::from(1), U256::from(5))],
        });
        store.commit_block(&genesis).unwrap();

        let overlay = BlockOverlay::new();
        let funded = || Some(AccountInfo { balance: U256::from(3), ..AccountInfo::default() });
        overlay.write_account(existing, None, version_of(0), StorageEffect::Destroyed, None);
        overlay.write_account(recreated, funded(), version_of(0), StorageEffect::Kept, None);
        overlay.write_account(recreated, None, version_of(1), StorageEffect::Destroyed, None);
        overlay.write_account(recreated, funded(), version_of(2), StorageEffect::Kept, None);
        overlay.write_account(transient, funded(), version_of(0), StorageEffect::Kept, None);
        overlay.write_account(transient, None, version_of(1), StorageEffect::Destroyed, None);

        let changes = overlay.changes(1, &store).unwrap();
        let wipe = |address| StorageChange { address, wiped: true, slots: Vec::new() };
        assert_eq!(changes.storage, vec![wipe(existing), wipe(recreated)]);
        let accounts: Vec<Address> = changes.accounts.iter().map(|(address, _)| *address).collect();
        assert_eq!(accounts, vec![existing, recreated], "the transient account is left out");
        assert_eq!(changes.accounts[0].1, None, "the existing account is gone");
    }
}
