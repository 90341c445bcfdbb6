//! The macro-benchmark behind `zero-producer bench`.
//!
//! Method, as FAFO measures: the workload is generated and its genesis committed before any
//! clock starts. Intake (EIP-2718 decoding and parallel sender recovery) is timed on its own
//! (`intake_tps`). The execution figure (`tps`) covers, for every block, executing its
//! transactions and committing its state changes to the store, which returns the block's state
//! root — senders already recovered.

use crate::{
    chain::{ChainSpec, DEV_CHAIN_ID},
    devchain::DevChain,
    intake::{intake, IntakeError, RecoveredTx},
    ExecutionError,
};
use alloy_primitives::B256;
use serde::Serialize;
use std::{
    path::{Path, PathBuf},
    time::Instant,
};
use zero_fixtures::workload::{Workload, WorkloadConfig, WorkloadError, SWAP_GAS};
use zero_state::{MemoryState, Qmdb, QmdbConfig, StateCommit, StateError, StateReader};

/// Which engine executes the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The sequential oracle (alloy-evm's block executor).
    Sequential,
}

impl EngineKind {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
        }
    }
}

/// Which state store the blocks commit to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// QMDB in `datadir`, or in a temporary directory removed afterwards.
    Qmdb {
        /// Directory of the store; it must not hold a store already.
        datadir: Option<PathBuf>,
    },
    /// The in-memory store (multiset-hash root, no disk).
    Memory,
}

impl StoreKind {
    /// Name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Qmdb { .. } => "qmdb",
            Self::Memory => "memory",
        }
    }
}

/// A benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The workload configuration is invalid.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A generated transaction failed intake (a generator bug).
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// A block failed to execute.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// The state store could not be opened.
    #[error(transparent)]
    State(#[from] StateError),
    /// The data directory is unusable for a fresh benchmark.
    #[error("{0}")]
    DataDir(String),
}

/// One benchmark run: one JSON line of `zero-producer bench --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Engine that executed the blocks.
    pub engine: &'static str,
    /// State store the blocks were committed to.
    pub state: &'static str,
    /// Workload kind.
    pub workload: &'static str,
    /// Transactions executed.
    pub txs: usize,
    /// Accounts in genesis.
    pub accounts: usize,
    /// Blocks produced.
    pub blocks: usize,
    /// Execution threads.
    pub threads: usize,
    /// Execution + commit time of all blocks, in seconds.
    pub seconds: f64,
    /// Transactions per second of execution + commit.
    pub tps: f64,
    /// Gas per second of execution + commit.
    pub gas_per_s: f64,
    /// State root after the last block.
    pub state_root: B256,
    /// Total gas used.
    pub gas_used: u64,
    /// Transactions that reverted or halted (a healthy workload has none).
    pub failed_txs: usize,
    /// Intake (decode + sender recovery) time, in seconds.
    pub intake_seconds: f64,
    /// Transactions per second through intake.
    pub intake_tps: f64,
    /// Threads intake ran on.
    pub intake_threads: usize,
    /// Workload generation and signing time, in seconds (not part of any figure).
    pub generate_seconds: f64,
    /// Genesis commit time, in seconds (not part of any figure).
    pub genesis_seconds: f64,
    /// Fraction of senders and receivers drawn from the hot set (0 when uniform).
    pub hot_fraction: f64,
    /// Size of the hot set (0 when uniform).
    pub hot_accounts: usize,
    /// Transactions per block.
    pub block_txs: usize,
    /// The workload seed.
    pub seed: u64,
}

/// Block gas limit for a workload: room for every transaction at its limit, with the EIP-1559
/// target (half the limit) above the block's use, so the base fee never climbs.
pub fn block_gas_limit(block_txs: usize) -> u64 {
    (block_txs as u64).saturating_mul(SWAP_GAS).saturating_mul(2).max(30_000_000)
}

/// Generates the workload `config` describes and runs it on `engine` over `store`.
pub fn run(
    config: &WorkloadConfig,
    engine: EngineKind,
    store: &StoreKind,
) -> Result<BenchReport, BenchError> {
    let config = WorkloadConfig { chain_id: DEV_CHAIN_ID, ..config.clone() };
    match store {
        StoreKind::Memory => run_on(&config, engine, store, MemoryState::new()),
        StoreKind::Qmdb { datadir } => {
            let (_temp, dir) =
                fresh_datadir(datadir.as_deref(), "a benchmark starts from a fresh store")
                    .map_err(BenchError::DataDir)?;
            let store_state = Qmdb::open(&dir, QmdbConfig::default())?;
            run_on(&config, engine, store, store_state)
        }
    }
}

/// The directory a benchmark's fresh store goes in: `datadir`, which must be empty or absent, or
/// a new temporary directory (returned too, so it lives as long as the store and is then removed).
pub(crate) fn fresh_datadir(
    datadir: Option<&Path>,
    why_empty: &str,
) -> Result<(Option<tempfile::TempDir>, PathBuf), String> {
    match datadir {
        Some(dir) => {
            if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(format!("--datadir {} is not empty; {why_empty}", dir.display()));
            }
            Ok((None, dir.to_path_buf()))
        }
        None => {
            let temp = tempfile::tempdir()
                .map_err(|e| format!("cannot create a temporary data dir: {e}"))?;
            let dir = temp.path().join("qmdb");
            Ok((Some(temp), dir))
        }
    }
}

fn run_on<S: StateReader + StateCommit>(
    config: &WorkloadConfig,
    engine: EngineKind,
    store: &StoreKind,
    state: S,
) -> Result<BenchReport, BenchError> {
    let started = Instant::now();
    let workload = Workload::generate(config)?;
    let generate_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut chain = DevChain::genesis(
        ChainSpec::dev(DEV_CHAIN_ID),
        state,
        &workload.genesis,
        block_gas_limit(config.block_txs),
    )?;
    let genesis_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let blocks: Vec<Vec<RecoveredTx>> =
        workload.blocks.iter().map(|raw| intake(raw)).collect::<Result<_, _>>()?;
    let intake_seconds = started.elapsed().as_secs_f64();

    let mut gas_used = 0u64;
    let mut failed_txs = 0usize;
    let started = Instant::now();
    for transactions in &blocks {
        let block = match engine {
            EngineKind::Sequential => chain.produce_sequential(workload.coinbase, transactions)?,
        };
        gas_used += block.outcome.gas_used;
        failed_txs += block.outcome.failed_transactions();
    }
    let seconds = started.elapsed().as_secs_f64();

    let txs = workload.transaction_count();
    Ok(BenchReport {
        engine: engine.name(),
        state: store.name(),
        workload: config.kind.name(),
        txs,
        accounts: config.accounts,
        blocks: blocks.len(),
        threads: 1,
        seconds,
        tps: txs as f64 / seconds,
        gas_per_s: gas_used as f64 / seconds,
        state_root: chain.state().state_root(),
        gas_used,
        failed_txs,
        intake_seconds,
        intake_tps: txs as f64 / intake_seconds,
        intake_threads: rayon::current_num_threads(),
        generate_seconds,
        genesis_seconds,
        hot_fraction: config.hot_spot.map_or(0.0, |hot| hot.fraction),
        hot_accounts: config.hot_spot.map_or(0, |hot| hot.accounts),
        block_txs: config.block_txs,
        seed: config.seed,
    })
}
