//! The state store a conformance test runs on: the in-memory store or a QMDB in a scratch
//! directory that is deleted with it.

use alloy_primitives::{Address, Bytes, B256, U256};
use std::path::Path;
use tempfile::TempDir;
use zero_state::{
    Account, BlockChanges, MemoryState, Qmdb, QmdbConfig, StateCommit, StateError, StateReader,
};

/// Which store holds a test's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreKind {
    /// [`MemoryState`].
    #[default]
    Memory,
    /// [`Qmdb`] in a fresh scratch directory per test.
    Qmdb,
}

/// A fresh store of one [`StoreKind`].
#[derive(Debug)]
pub enum TestStore {
    /// The in-memory store.
    Memory(MemoryState),
    /// QMDB, and the scratch directory it lives in (removed on drop).
    Qmdb {
        /// The store.
        store: Box<Qmdb>,
        /// Its directory; declared after `store` so the store closes first.
        dir: TempDir,
    },
}

impl TestStore {
    /// Opens an empty store; a QMDB goes in a new directory under `scratch` (else the system's
    /// temporary directory).
    pub fn open(kind: StoreKind, scratch: Option<&Path>) -> Result<Self, StateError> {
        match kind {
            StoreKind::Memory => Ok(Self::Memory(MemoryState::new())),
            StoreKind::Qmdb => {
                let mut builder = tempfile::Builder::new();
                builder.prefix("zero-conformance-");
                let dir = match scratch {
                    Some(scratch) => builder.tempdir_in(scratch),
                    None => builder.tempdir(),
                }
                .map_err(|source| StateError::Io {
                    path: scratch.map_or_else(
                        || std::env::temp_dir().display().to_string(),
                        |path| path.display().to_string(),
                    ),
                    source,
                })?;
                let store = Qmdb::open(dir.path(), QmdbConfig::default())?;
                Ok(Self::Qmdb { store: Box::new(store), dir })
            }
        }
    }

    fn reader(&self) -> &dyn StateReader {
        match self {
            Self::Memory(store) => store,
            Self::Qmdb { store, .. } => store.as_ref(),
        }
    }

    fn committer(&mut self) -> &mut dyn StateCommit {
        match self {
            Self::Memory(store) => store,
            Self::Qmdb { store, .. } => store.as_mut(),
        }
    }
}

impl StateReader for TestStore {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        self.reader().account(address)
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.reader().storage(address, slot)
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.reader().code(code_hash)
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        self.reader().block_hash(number)
    }
}

impl StateCommit for TestStore {
    fn commit_block(&mut self, changes: &BlockChanges) -> Result<B256, StateError> {
        self.committer().commit_block(changes)
    }

    fn record_block_hash(&mut self, number: u64, hash: B256) -> Result<(), StateError> {
        self.committer().record_block_hash(number, hash)
    }

    fn state_root(&self) -> B256 {
        match self {
            Self::Memory(store) => store.state_root(),
            Self::Qmdb { store, .. } => store.state_root(),
        }
    }

    fn last_height(&self) -> Option<u64> {
        match self {
            Self::Memory(store) => store.last_height(),
            Self::Qmdb { store, .. } => store.last_height(),
        }
    }
}
