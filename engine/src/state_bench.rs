//! `zero-producer state-bench`: QMDB on its own, in the shape of QMDB's published benchmark.
//!
//! Keys are storage keys, `SHA-256(address ‖ slot)` over a 52-byte pre-image, and values are 32
//! random bytes. The store is populated with `entries` keys (timed as the `populate` phase), then
//! each phase runs `blocks` blocks of `ops_per_block` operations on random existing keys:
//! `update`, `create`, `delete`, `read` (parallel point reads on the committed state), and
//! `mixed` (per transaction: 15 reads, then 9 updates, 1 create and 1 delete, committed as one
//! block). A write phase's time is the commit: entries appended, Merkleized, fsynced, metadata
//! renamed, root returned. Generating the operations is not timed.
//!
//! `dram_bytes_per_entry` is measured, not estimated: the growth of the process's resident set,
//! less file-backed pages (the log's mapped page cache), from the empty store to the end of the
//! phase, divided by live keys. It counts everything the store keeps (index, twigs, the
//! youngest twig, allocator fragmentation) and nothing the kernel caches; freed memory the allocator still caches is returned first when the caller provides
//! `release_memory` (`zero-producer` asks mimalloc to collect).

use alloy_primitives::{Address, B256, U256};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use std::{
    collections::HashSet,
    path::PathBuf,
    time::{Duration, Instant},
};
use zero_state::{qmdb::Config, KeyHash, Qmdb, StateCommit, StateError, StateKey};

/// Operations per transaction of the `mixed` phase: 15 reads, 9 updates, 1 create, 1 delete.
pub const MIXED_OPS_PER_TX: usize = 26;
/// Most keys one run may create: 2^34, a 2 GiB bitmap of deletions here and far more than one
/// machine's disk holds in QMDB entries.
pub const MAX_KEYS: u64 = 1 << 34;
/// Largest population block, bounding the memory of one block's operations.
const POPULATE_BLOCK: usize = 1 << 16;

/// What to run.
#[derive(Clone, Debug)]
pub struct StateBenchConfig {
    /// Keys to populate.
    pub entries: u64,
    /// Operations per timed block.
    pub ops_per_block: usize,
    /// Timed blocks per phase.
    pub blocks: usize,
    /// Store directory (empty or absent); a temporary one when `None`.
    pub datadir: Option<PathBuf>,
    /// Seed of keys and values.
    pub seed: u64,
    /// Asks the process's allocator to return freed memory to the system before each memory
    /// reading, so that the reading counts what the store holds, not the allocator's caches.
    pub release_memory: Option<fn()>,
}

/// One phase: one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// populate, update, create, delete, read or mixed.
    pub phase: &'static str,
    /// Operations timed.
    pub ops: u64,
    /// Blocks committed (0 for reads).
    pub blocks: u64,
    /// Seconds timed.
    pub seconds: f64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Transactions per second (mixed only).
    pub tx_per_s: Option<f64>,
    /// Live keys after the phase.
    pub entries: u64,
    /// Entries ever appended (live and superseded, before compaction drops them).
    pub total_entries: u64,
    /// Resident-memory growth since the empty store, per live key.
    pub dram_bytes_per_entry: f64,
    /// Heap of the key index alone, per live key.
    pub index_bytes_per_entry: f64,
    /// Segment-file bytes on disk per live key.
    pub disk_bytes_per_entry: f64,
    /// State root after the phase.
    pub root: B256,
    /// Threads the store's shards and the reads ran on.
    pub threads: usize,
}

/// A state benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum StateBenchError {
    /// An impossible configuration.
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A read did not find a key the benchmark wrote: the store lost data.
    #[error("read of key {0} returned nothing; the store lost a committed key")]
    LostKey(u64),
}

/// The key of index `i`: a storage slot of a per-index address (52-byte pre-image).
fn key(index: u64) -> KeyHash {
    let mut address = [0u8; 20];
    address[..8].copy_from_slice(&index.to_le_bytes());
    StateKey::Storage(Address::from(address), U256::from(index)).hash()
}

/// Resident memory the process owns: resident pages less file-backed ones. The store reads its
/// log through file mappings; those pages are the kernel's page cache (dropped under pressure,
/// there just the same when reads use `pread`), not the store's DRAM.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let field = |index: usize| -> u64 {
        statm.split_whitespace().nth(index).and_then(|pages| pages.parse().ok()).unwrap_or(0)
    };
    field(1).saturating_sub(field(2)) * 4096
}

struct Bench {
    store: Qmdb,
    rng: StdRng,
    /// Keys `0..next_index` were created; `deleted` marks those deleted since.
    next_index: u64,
    deleted: Vec<u64>,
    height: u64,
    baseline_rss: u64,
    release_memory: Option<fn()>,
}

impl Bench {
    fn resident(&self) -> u64 {
        if let Some(release) = self.release_memory {
            release();
        }
        resident_bytes()
    }

    fn is_live(&self, index: u64) -> bool {
        index < self.next_index && self.deleted[(index / 64) as usize] & (1 << (index % 64)) == 0
    }

    fn mark_deleted(&mut self, index: u64) {
        self.deleted[(index / 64) as usize] |= 1 << (index % 64);
    }

    fn value(&mut self) -> Vec<u8> {
        self.rng.random::<[u8; 32]>().to_vec()
    }

    /// `count` distinct live key indices, none in `taken`.
    fn pick_live(&mut self, count: usize, taken: &mut HashSet<u64>) -> Vec<u64> {
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let index = self.rng.random_range(0..self.next_index);
            if self.is_live(index) && taken.insert(index) {
                picked.push(index);
            }
        }
        picked
    }

    fn new_indices(&mut self, count: usize) -> Vec<u64> {
        let start = self.next_index;
        self.next_index += count as u64;
        let words = self.next_index.div_ceil(64) as usize;
        if self.deleted.len() < words {
            self.deleted.resize(words, 0);
        }
        (start..self.next_index).collect()
    }

    fn commit(&mut self, ops: Vec<(KeyHash, Option<Vec<u8>>)>) -> Result<Duration, StateError> {
        let started = Instant::now();
        self.store.commit_ops(self.height, ops)?;
        self.height += 1;
        Ok(started.elapsed())
    }

    /// Reads the keys of `indices` in parallel. Their hashes are computed before the clock
    /// starts, as the write phases' are: the store is given key hashes.
    fn read(&self, indices: &[u64]) -> Result<Duration, StateBenchError> {
        let keys: Vec<(u64, KeyHash)> = indices.iter().map(|index| (*index, key(*index))).collect();
        let started = Instant::now();
        keys.par_iter().try_for_each(|(index, key)| match self.store.get(key)? {
            Some(_) => Ok(()),
            None => Err(StateBenchError::LostKey(*index)),
        })?;
        Ok(started.elapsed())
    }

    fn report(&self, phase: &'static str, ops: u64, blocks: u64, elapsed: Duration) -> PhaseReport {
        let stats = self.store.stats();
        let live = stats.live_keys.max(1) as f64;
        let seconds = elapsed.as_secs_f64();
        PhaseReport {
            phase,
            ops,
            blocks,
            seconds,
            ops_per_s: ops as f64 / seconds,
            tx_per_s: None,
            entries: stats.live_keys,
            total_entries: stats.total_entries,
            dram_bytes_per_entry: self.resident().saturating_sub(self.baseline_rss) as f64 / live,
            index_bytes_per_entry: stats.index_bytes as f64 / live,
            disk_bytes_per_entry: stats.disk_bytes as f64 / live,
            root: self.store.state_root(),
            threads: rayon::current_num_threads(),
        }
    }
}

/// Runs every phase, calling `emit` as each one ends.
pub fn run(
    config: &StateBenchConfig,
    mut emit: impl FnMut(&PhaseReport),
) -> Result<(), StateBenchError> {
    if config.entries == 0 {
        return Err(StateBenchError::Config("--entries 0: populate at least one key".into()));
    }
    if config.ops_per_block == 0 {
        return Err(StateBenchError::Config("--ops-per-block 0: a block needs operations".into()));
    }
    if config.blocks == 0 {
        return Err(StateBenchError::Config("--blocks 0: run at least one block".into()));
    }
    // A mixed block reads, updates and deletes this many distinct live keys at the least.
    let mixed_keys = MIXED_OPS_PER_TX as u64 - 1;
    if config.entries < mixed_keys {
        return Err(StateBenchError::Config(format!(
            "--entries {}: the mixed phase needs at least {mixed_keys} keys",
            config.entries
        )));
    }
    // Keys ever created: the populated ones and two per timed operation (create, mixed).
    let keys_ever = (config.blocks as u64)
        .checked_mul(config.ops_per_block as u64)
        .and_then(|ops| ops.checked_mul(2))
        .and_then(|created| created.checked_add(config.entries))
        .filter(|&keys| keys <= MAX_KEYS);
    let Some(keys_ever) = keys_ever else {
        return Err(StateBenchError::Config(format!(
            "--entries {} with --blocks {} of --ops-per-block {} creates more than the {MAX_KEYS} \
             keys a run may",
            config.entries, config.blocks, config.ops_per_block
        )));
    };
    if config.ops_per_block as u64 > config.entries {
        return Err(StateBenchError::Config(format!(
            "--ops-per-block {} exceeds --entries {}: a delete block needs that many keys",
            config.ops_per_block, config.entries
        )));
    }
    let (_temp, dir) = crate::bench::fresh_datadir(
        config.datadir.as_deref(),
        "state-bench populates a fresh store",
    )
    .map_err(StateBenchError::Config)?;
    // Everything the benchmark itself keeps is allocated before the baseline.
    let capacity_words = keys_ever.div_ceil(64) as usize;
    let mut deleted = Vec::with_capacity(capacity_words);
    deleted.resize(1, 0);
    let store = Qmdb::open(&dir, Config::default())?;
    let mut bench = Bench {
        store,
        rng: StdRng::seed_from_u64(config.seed),
        next_index: 0,
        deleted,
        height: 0,
        baseline_rss: 0,
        release_memory: config.release_memory,
    };
    bench.baseline_rss = bench.resident();

    // Populate.
    let mut elapsed = Duration::ZERO;
    let mut blocks = 0;
    while bench.next_index < config.entries {
        let count = ((config.entries - bench.next_index) as usize).min(POPULATE_BLOCK);
        let indices = bench.new_indices(count);
        let ops: Vec<_> = indices.iter().map(|i| (key(*i), Some(bench.value()))).collect();
        elapsed += bench.commit(ops)?;
        blocks += 1;
    }
    emit(&bench.report("populate", config.entries, blocks, elapsed));

    let per_block = config.ops_per_block;
    let total = (config.blocks * per_block) as u64;
    let timed_blocks = config.blocks as u64;
    for phase in ["update", "create", "delete"] {
        let mut elapsed = Duration::ZERO;
        for _ in 0..config.blocks {
            let ops: Vec<_> = match phase {
                "update" => bench
                    .pick_live(per_block, &mut HashSet::new())
                    .into_iter()
                    .map(|i| (key(i), Some(bench.value())))
                    .collect(),
                "create" => bench
                    .new_indices(per_block)
                    .into_iter()
                    .map(|i| (key(i), Some(bench.value())))
                    .collect(),
                _ => {
                    let picked = bench.pick_live(per_block, &mut HashSet::new());
                    picked.iter().for_each(|i| bench.mark_deleted(*i));
                    picked.into_iter().map(|i| (key(i), None)).collect()
                }
            };
            elapsed += bench.commit(ops)?;
        }
        emit(&bench.report(phase, total, timed_blocks, elapsed));
    }

    let mut elapsed = Duration::ZERO;
    for _ in 0..config.blocks {
        let picked = bench.pick_live(per_block, &mut HashSet::new());
        elapsed += bench.read(&picked)?;
    }
    emit(&bench.report("read", total, 0, elapsed));

    let txs_per_block = (per_block / MIXED_OPS_PER_TX).max(1);
    let mut elapsed = Duration::ZERO;
    for _ in 0..config.blocks {
        let mut taken = HashSet::new();
        let reads = bench.pick_live(15 * txs_per_block, &mut taken);
        let updates = bench.pick_live(9 * txs_per_block, &mut taken);
        let deletes = bench.pick_live(txs_per_block, &mut taken);
        let creates = bench.new_indices(txs_per_block);
        let mut ops = Vec::with_capacity(11 * txs_per_block);
        for index in updates.iter().chain(&creates) {
            let value = bench.value();
            ops.push((key(*index), Some(value)));
        }
        for index in &deletes {
            bench.mark_deleted(*index);
            ops.push((key(*index), None));
        }
        elapsed += bench.read(&reads)?;
        elapsed += bench.commit(ops)?;
    }
    let txs = (txs_per_block * config.blocks) as u64;
    let mut report = bench.report("mixed", txs * MIXED_OPS_PER_TX as u64, timed_blocks, elapsed);
    report.tx_per_s = Some(txs as f64 / elapsed.as_secs_f64());
    emit(&report);
    Ok(())
}
