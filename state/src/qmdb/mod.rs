//! QMDB: the authenticated, append-only state store (ARCHITECTURE §4, `state/ARCHITECTURE.md`).
//!
//! Sixteen shards by the top 4 bits of the key hash. Each shard appends entries to a log of
//! segment files, keeps its keys in a sorted linked list (each entry names the next key hash, for
//! exclusion proofs), and Merkleizes its entries in twigs of 2048 with an active bit each. The
//! state root is a fixed binary tree over the 16 shard roots. A block's writes are applied to the
//! shards in parallel, in key order within a shard, so the root is a pure function of the
//! sequence of committed blocks (and the compaction settings fixed when the store was created),
//! whatever the thread count.
//!
//! Limits of this implementation, stated where they bind:
//! - Storage wipes: keys are hashed, so an account's slots cannot be enumerated. A wipe is
//!   accepted only for an account that has no code in committed state (after EIP-6780 and
//!   EIP-7610 that is every wipe a Cancun-or-later chain produces); otherwise the commit fails
//!   with [`StateError::Unsupported`]. Replay pre-Cancun history on the memory store.
//! - Reopening rebuilds the index and twigs by scanning the logs (twice) and re-hashing every
//!   entry: it takes time in proportion to the log, and it is what detects a corrupted file.
//! - Pruning deletes log segments that compaction emptied, `keep_heights` blocks after they
//!   emptied; reads and proofs are always of the latest committed state (no historical reads).
//!
//! Reads may run while a block commits ([`SharedCommit`]): each shard sits behind its own lock,
//! which a commit holds only while it writes that shard, so a read waits at most for one shard's
//! share of the block, and a key the block leaves unchanged reads the same throughout.

mod entry;
mod hash;
mod indexer;
mod log;
mod meta;
mod proof;
mod shard;

pub use proof::{verify, EntryProof, ProofError, PROOF_FORMAT_VERSION};

use crate::{
    encode_storage, Account, BlockChanges, KeyHash, SharedCommit, StateCommit, StateError,
    StateKey, StateReader, KECCAK_EMPTY, SHARD_COUNT,
};
use alloy_primitives::{Address, Bytes, B256, U256};
use hash::{hash_node, shard_tree_level, Hash, SHARD_TREE_DEPTH};
use log::{io_error, sync_dir};
use meta::Meta;
use rayon::prelude::*;
use shard::{Op, Shard};
use std::{
    collections::BTreeMap,
    fs::{self, File},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
    thread,
};

/// Block hashes kept for `BLOCKHASH` (the EVM reaches back 256 blocks).
const KEPT_BLOCK_HASHES: usize = 256;

/// Entries a commit appends to a shard before it lets waiting readers in: about 0.1–0.3 ms of
/// work, where a whole block's appends to one shard held them for 1–3 ms.
const APPLY_CHUNK: usize = 128;

/// Settings of a store. The compaction settings shape the entry sequence and so the root: they
/// are fixed when the store is created and read back from its metadata on every open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest segment file in bytes.
    pub segment_size: u64,
    /// A shard compacts only while its region from the cursor holds at least this many entries.
    pub compact_min_entries: u64,
    /// A shard compacts while fewer than this percentage of its region's entries are live.
    pub compact_utilization: u32,
    /// Most entries a shard's compaction examines per block.
    pub compact_batch: u32,
    /// Emptied segments are deleted this many blocks after compaction emptied them.
    pub keep_heights: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            segment_size: 1 << 30,
            compact_min_entries: 1 << 16,
            compact_utilization: 50,
            compact_batch: 4096,
            keep_heights: 64,
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), StateError> {
        let bad = |reason: &str| StateError::Unsupported { reason: reason.to_string() };
        if self.segment_size < 1 << 12 {
            return Err(bad("segment size must be at least 4096 bytes"));
        }
        if !(1..=100).contains(&self.compact_utilization) {
            return Err(bad("compaction utilization must be a percentage from 1 to 100"));
        }
        Ok(())
    }
}

/// Size figures of an open store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QmdbStats {
    /// Live keys, not counting the 16 sentries.
    pub live_keys: u64,
    /// Entries ever appended, sentries included.
    pub total_entries: u64,
    /// Bytes of segment files on disk.
    pub disk_bytes: u64,
    /// Heap bytes of the key index.
    pub index_bytes: u64,
    /// Commits after which deleting the segments compaction had emptied failed (the files stay
    /// on disk holding only dead entries; the blocks themselves committed).
    pub prune_failures: u64,
}

/// The QMDB store in one directory.
#[derive(Debug)]
pub struct Qmdb {
    dir: PathBuf,
    config: Config,
    /// Each shard behind its own lock, so that reads go on while a commit writes other shards.
    shards: Vec<RwLock<Shard>>,
    head: RwLock<Head>,
    /// Serialises commits, and gives proofs one consistent state.
    commit: Mutex<()>,
    /// Set when a commit failed part-way, or panicked: memory no longer matches disk until
    /// reopened.
    poisoned: AtomicBool,
    /// See [`QmdbStats::prune_failures`].
    prune_failures: AtomicU64,
    /// Held for the store's lifetime: an exclusive lock on `LOCK`.
    _lock: File,
}

/// The last committed block: its height, root and the block hashes `BLOCKHASH` answers.
#[derive(Debug, Default)]
struct Head {
    height: Option<u64>,
    root: B256,
    block_hashes: BTreeMap<u64, B256>,
}

impl Head {
    fn trim_block_hashes(&mut self) {
        while self.block_hashes.len() > KEPT_BLOCK_HASHES {
            self.block_hashes.pop_first();
        }
    }
}

/// Marks the store poisoned if dropped while its thread unwinds.
struct PoisonOnPanic<'a>(&'a AtomicBool);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

// A panic while a lock is held leaves the store marked poisoned by the commit that panicked (or
// unchanged, for a reader), so a poisoned lock's data is still the data to read.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Qmdb {
    /// Opens the store in `dir`, creating it with `config` if the directory holds no store.
    /// An existing store keeps the settings it was created with.
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Self, StateError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(|e| io_error(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked { path: dir.display().to_string() })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&lock_path, e)),
        }
        let meta = Meta::read(&dir)?;
        let config = match &meta {
            Some(meta) => meta.config,
            None => {
                config.validate()?;
                config
            }
        };
        let shards: Vec<RwLock<Shard>> = (0..SHARD_COUNT)
            .into_par_iter()
            .map(|id| {
                let shard_dir = dir.join(format!("shard-{id:02}"));
                Shard::open(id, &shard_dir, &config, meta.as_ref().map(|m| &m.shards[id]))
                    .map(RwLock::new)
            })
            .collect::<Result<_, _>>()?;
        let store = Qmdb {
            dir,
            config,
            shards,
            head: RwLock::new(Head::default()),
            commit: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            prune_failures: AtomicU64::new(0),
            _lock: lock,
        };
        let root = store.compute_root();
        {
            let mut head = write(&store.head);
            head.root = root;
            if let Some(meta) = &meta {
                if root != meta.root {
                    return Err(log::corrupt(
                        &store.dir,
                        "recomputed state root differs from the metadata",
                    ));
                }
                head.height = meta.height;
                head.block_hashes = meta.block_hashes.iter().copied().collect();
            }
        }
        if meta.is_none() {
            store.write_meta()?;
        }
        Ok(store)
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Size figures.
    pub fn stats(&self) -> QmdbStats {
        let mut stats = QmdbStats::default();
        for shard in &self.shards {
            let shard = read(shard);
            stats.live_keys += shard.live_keys() - 1;
            stats.total_entries += shard.total_entries();
            stats.disk_bytes += shard.disk_bytes();
            stats.index_bytes += shard.index_bytes() as u64;
        }
        stats.prune_failures = self.prune_failures.load(Ordering::Relaxed);
        stats
    }

    fn compute_root(&self) -> B256 {
        let mut level = self.shard_roots();
        for height in 1..=SHARD_TREE_DEPTH {
            level = level
                .chunks_exact(2)
                .map(|pair| hash_node(shard_tree_level(height), &pair[0], &pair[1]))
                .collect();
        }
        B256::from(level[0])
    }

    fn shard_roots(&self) -> Vec<Hash> {
        self.shards.iter().map(|shard| read(shard).root()).collect()
    }

    fn write_meta(&self) -> Result<(), StateError> {
        let meta = {
            let head = read(&self.head);
            Meta {
                config: self.config,
                height: head.height,
                root: head.root,
                shards: self.shards.iter().map(|shard| read(shard).meta()).collect(),
                block_hashes: head.block_hashes.iter().map(|(n, h)| (*n, *h)).collect(),
            }
        };
        meta.write(&self.dir)
    }

    fn check_usable(&self) -> Result<(), StateError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StateError::Unsupported {
                reason: format!(
                    "a commit to {} failed part-way; reopen the store to recover the last committed block",
                    self.dir.display()
                ),
            });
        }
        Ok(())
    }

    /// The live value under `key`.
    pub fn get(&self, key: &KeyHash) -> Result<Option<Vec<u8>>, StateError> {
        self.check_usable()?;
        Ok(read(&self.shards[key.shard()]).lookup(key)?.map(|(_, entry)| entry.value))
    }

    /// A proof of `key`'s value (inclusion) or absence (exclusion) against [`Self::state_root`].
    pub fn prove(&self, key: &KeyHash) -> Result<EntryProof, StateError> {
        let _consistent = exclusive(&self.commit);
        self.check_usable()?;
        let mut proof = {
            let shard = read(&self.shards[key.shard()]);
            let position = match shard.lookup(key)? {
                Some((position, _)) => position,
                None => shard.predecessor_position(key)?,
            };
            shard.prove_position(position)?
        };
        let mut level = self.shard_roots();
        let mut index = key.shard();
        for height in 1..=SHARD_TREE_DEPTH {
            proof.shard_path.push(level[index ^ 1]);
            level = level
                .chunks_exact(2)
                .map(|pair| hash_node(shard_tree_level(height), &pair[0], &pair[1]))
                .collect();
            index /= 2;
        }
        Ok(proof)
    }

    /// Applies raw key-value writes as block `height` (the same path [`StateCommit`] uses);
    /// `None` deletes. For benchmarks and tests of the store itself.
    pub fn commit_ops(&mut self, height: u64, ops: Vec<Op>) -> Result<B256, StateError> {
        let _commit = exclusive(&self.commit);
        self.commit_ops_locked(height, ops)
    }

    /// [`Self::commit_ops`] with the commit lock held by the caller.
    fn commit_ops_locked(&self, height: u64, mut ops: Vec<Op>) -> Result<B256, StateError> {
        self.check_usable()?;
        // A panic anywhere below (a worker of the pool, an fsync thread) may leave memory
        // ahead of disk; a caller that catches it must not commit on top.
        let _poison_on_panic = PoisonOnPanic(&self.poisoned);
        if let Some(last) = read(&self.head).height {
            if height != last + 1 {
                return Err(StateError::HeightOutOfOrder { last, got: height });
            }
        }
        ops.sort_unstable_by_key(|op| op.0);
        if let Some(pair) = ops.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(StateError::InvalidChanges {
                height,
                reason: format!("key {:?} written twice", pair[0].0),
            });
        }
        let mut per_shard: Vec<Vec<Op>> = vec![Vec::new(); SHARD_COUNT];
        for op in ops {
            per_shard[op.0.shard()].push(op);
        }
        for (shard, ops) in self.shards.iter().zip(&per_shard) {
            read(shard).check_ops(ops)?;
        }
        let config = self.config;
        let result = thread::scope(|disk| {
            let syncs = self
                .shards
                .par_iter()
                .zip(per_shard.par_iter())
                .map(|(shard, ops)| {
                    // Readers keep the shard while the old entries are looked up and while its
                    // files are fsynced; only the appends, the index updates, the rehash and the
                    // writes hold it exclusively, and the appends only a chunk at a time. (The
                    // next block's workers read through a pipelined commit: the fsync, and then a
                    // shard's appends in one piece, held them for milliseconds.)
                    let mut plan = read(shard).plan(ops)?;
                    while !write(shard).apply_chunk(&mut plan, height, APPLY_CHUNK)? {}
                    let unsynced = {
                        let mut shard = write(shard);
                        shard.compact(&config)?;
                        shard.rehash();
                        shard.write_pending()?
                    };
                    // An fsync waits on the disk, not on a core: each shard's runs on a thread
                    // of its own, so the disk gets them together while the pool goes on.
                    thread::Builder::new()
                        .name("qmdb-fsync".into())
                        .spawn_scoped(disk, move || read(shard).sync(unsynced))
                        .map_err(|error| io_error(&self.dir, error))
                })
                .collect::<Result<Vec<_>, StateError>>()?;
            syncs.into_iter().try_for_each(|sync| {
                sync.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        });
        if let Err(error) = result {
            self.poisoned.store(true, Ordering::Release);
            return Err(error);
        }
        let root = self.compute_root();
        let previous = {
            let mut head = write(&self.head);
            let previous = (head.height, head.root);
            (head.height, head.root) = (Some(height), root);
            previous
        };
        if let Err(error) = self.write_meta() {
            self.poisoned.store(true, Ordering::Release);
            let mut head = write(&self.head);
            (head.height, head.root) = previous;
            return Err(error);
        }
        // The block is durable from here: failing to delete emptied segments (dead entries
        // only) must not report it failed, which would have a caller retry a committed height.
        let mut pruned = true;
        for shard in &self.shards {
            pruned &= write(shard).prune(height, config.keep_heights).is_ok();
        }
        if !pruned {
            self.prune_failures.fetch_add(1, Ordering::Relaxed);
        }
        Ok(root)
    }

    fn ops_from_changes(&self, changes: &BlockChanges) -> Result<Vec<Op>, StateError> {
        let mut ops = Vec::with_capacity(changes.write_count());
        for (address, account) in &changes.accounts {
            ops.push((StateKey::Account(*address).hash(), account.map(|a| a.encode().to_vec())));
        }
        for change in &changes.storage {
            if change.wiped {
                let key = StateKey::Account(change.address).hash();
                if let Some(bytes) = self.get(&key)? {
                    let account =
                        Account::decode(&bytes).map_err(|source| StateError::Corrupted {
                            what: format!("account {}", change.address),
                            source,
                        })?;
                    if account.code_hash != KECCAK_EMPTY {
                        return Err(StateError::Unsupported {
                            reason: format!(
                                "block {} wipes the storage of contract {}, which QMDB cannot enumerate (pre-Cancun SELFDESTRUCT); use the memory store for pre-Cancun history",
                                changes.height, change.address
                            ),
                        });
                    }
                }
            }
            for (slot, value) in &change.slots {
                let key = StateKey::Storage(change.address, *slot).hash();
                let value = (!value.is_zero()).then(|| encode_storage(*value).to_vec());
                ops.push((key, value));
            }
        }
        for (code_hash, code) in &changes.code {
            let key = StateKey::Code(*code_hash).hash();
            if self.get(&key)?.is_none() {
                ops.push((key, Some(code.to_vec())));
            }
        }
        Ok(ops)
    }
}

impl StateReader for Qmdb {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        let Some(bytes) = self.get(&StateKey::Account(address).hash())? else { return Ok(None) };
        Account::decode(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupted { what: format!("account {address}"), source })
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        let Some(bytes) = self.get(&StateKey::Storage(address, slot).hash())? else {
            return Ok(U256::ZERO);
        };
        crate::decode_storage(&bytes).map_err(|source| StateError::Corrupted {
            what: format!("slot {slot} of {address}"),
            source,
        })
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.get(&StateKey::Code(code_hash).hash())?.map(Bytes::from))
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        Ok(read(&self.head).block_hashes.get(&number).copied())
    }
}

impl StateCommit for Qmdb {
    fn commit_block(&mut self, changes: &BlockChanges) -> Result<B256, StateError> {
        self.commit_block_shared(changes)
    }

    fn record_block_hash(&mut self, number: u64, hash: B256) -> Result<(), StateError> {
        self.record_block_hash_shared(number, hash)
    }

    fn state_root(&self) -> B256 {
        read(&self.head).root
    }

    fn last_height(&self) -> Option<u64> {
        read(&self.head).height
    }
}

impl SharedCommit for Qmdb {
    fn commit_block_shared(&self, changes: &BlockChanges) -> Result<B256, StateError> {
        let _commit = exclusive(&self.commit);
        self.check_usable()?;
        let ops = self.ops_from_changes(changes)?;
        let saved = {
            let mut head = write(&self.head);
            let saved = head.block_hashes.clone();
            head.block_hashes.extend(changes.block_hashes.iter().copied());
            head.trim_block_hashes();
            saved
        };
        let result = self.commit_ops_locked(changes.height, ops);
        if result.is_err() {
            write(&self.head).block_hashes = saved;
        }
        result
    }

    fn record_block_hash_shared(&self, number: u64, hash: B256) -> Result<(), StateError> {
        let _commit = exclusive(&self.commit);
        self.check_usable()?;
        {
            let mut head = write(&self.head);
            head.block_hashes.insert(number, hash);
            head.trim_block_hashes();
        }
        self.write_meta()
    }
}

/// Removes a store directory's files (for benchmarks that want a fresh store).
pub fn destroy(dir: &Path) -> Result<(), StateError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    if let Some(parent) = dir.parent() {
        if parent.exists() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}
