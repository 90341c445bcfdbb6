//! [`WorkerView`]: revm's database for one worker — the [`BlockOverlay`] over the store — that
//! records the version of every account and slot it serves, and [`CodeCache`], contract code
//! analysed once and kept across blocks (until [`CodeCache::clear`]).

use super::overlay::{BlockOverlay, ReadKey, Version};
use crate::database::{account_info, stored_code, DatabaseError};
use alloy_primitives::{map::B256Map, Address, B256, U256};
use revm::{bytecode::Bytecode, state::AccountInfo, Database};
use std::sync::RwLock;
use zero_state::{StateReader, KECCAK_EMPTY};

/// Analysed contract code by hash, shared by all workers and kept across blocks: code is
/// content-addressed, so an entry never goes stale, and the jump-table analysis is paid once
/// (replay clears it before each run, so that FAFO pays it as the sequential engine does).
#[derive(Default)]
pub struct CodeCache {
    codes: RwLock<B256Map<Bytecode>>,
}

impl CodeCache {
    /// Forgets every analysed code, so that the next block pays for its analyses again (as a
    /// run of the sequential engine does: it analyses each contract once per block).
    pub fn clear(&self) {
        self.codes.write().unwrap_or_else(|poison| poison.into_inner()).clear();
    }

    /// The code with `code_hash`, from the cache or else from `load`.
    pub fn get_or_load(
        &self,
        code_hash: B256,
        load: impl FnOnce() -> Result<Bytecode, DatabaseError>,
    ) -> Result<Bytecode, DatabaseError> {
        if let Some(code) =
            self.codes.read().unwrap_or_else(|poison| poison.into_inner()).get(&code_hash)
        {
            return Ok(code.clone());
        }
        let code = load()?;
        let mut codes = self.codes.write().unwrap_or_else(|poison| poison.into_inner());
        Ok(codes.entry(code_hash).or_insert(code).clone())
    }
}

/// One worker's window on the block: reads go to the overlay, then to the store (cached in the
/// overlay), and each read's version is recorded for validation at commit.
pub struct WorkerView<'a, S> {
    overlay: &'a BlockOverlay,
    store: &'a S,
    codes: &'a CodeCache,
    reads: Vec<(ReadKey, Version)>,
    /// The accounts served since the last [`Self::clear_reads`], as served: what a transaction's
    /// writes are compared against to tell which accounts it changed.
    loaded: Vec<(Address, Option<AccountInfo>)>,
}

// revm's database bound asks for Debug.
impl<S> std::fmt::Debug for WorkerView<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerView").field("reads", &self.reads.len()).finish_non_exhaustive()
    }
}

impl<'a, S: StateReader> WorkerView<'a, S> {
    /// A view of `overlay` over `store`.
    pub fn new(overlay: &'a BlockOverlay, store: &'a S, codes: &'a CodeCache) -> Self {
        Self { overlay, store, codes, reads: Vec::with_capacity(16), loaded: Vec::with_capacity(8) }
    }

    /// The reads recorded since the last call, leaving the log empty for the next transaction.
    pub fn take_reads(&mut self) -> Vec<(ReadKey, Version)> {
        std::mem::replace(&mut self.reads, Vec::with_capacity(16))
    }

    /// Forgets the reads recorded so far.
    pub fn clear_reads(&mut self) {
        self.reads.clear();
        self.loaded.clear();
    }

    /// The account `address` as this view last served it since [`Self::clear_reads`].
    pub fn loaded(&self, address: Address) -> Option<&Option<AccountInfo>> {
        self.loaded.iter().rev().find(|(loaded, _)| *loaded == address).map(|(_, info)| info)
    }
}

impl<S: StateReader> Database for WorkerView<'_, S> {
    type Error = DatabaseError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let (info, version) = match self.overlay.account_version(address) {
            Some(found) => found,
            None => {
                let info = self.store.account(address)?.map(account_info);
                let entry = self.overlay.insert_base_account(address, info);
                (entry.info, entry.version)
            }
        };
        self.reads.push((ReadKey::Account(address), version));
        self.loaded.push((address, info.clone()));
        Ok(info)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.overlay.code(code_hash) {
            return Ok(code);
        }
        self.codes.get_or_load(code_hash, || stored_code(self.store, code_hash))
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Self::Error> {
        let (value, version) = match self.overlay.storage(address, index) {
            Some(found) => found,
            None => {
                let value = self.store.storage(address, index)?;
                self.overlay.insert_base_storage(address, index, value)
            }
        };
        self.reads.push((ReadKey::Storage(address, index), version));
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.store.block_hash(number)?.ok_or(DatabaseError::MissingBlockHash { number })
    }
}
