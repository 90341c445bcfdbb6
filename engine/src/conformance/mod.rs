//! Conformance: the community's ethereum/tests run through the engine and our state stores.
//!
//! - [`run_blockchain_suite`]: `BlockchainTests` — each test's blocks are decoded, checked
//!   against the consensus rules the executor leaves to the importer ([`BlockError`] names the
//!   rule a block broke), executed by the engine chosen with [`ConformanceEngine`] against the
//!   store, and committed, side chains included; the post-state and state roots are compared,
//!   and the chain ends at the last block hash.
//! - [`run_state_suite`]: `GeneralStateTests` — each vector's transaction runs on the pre-state
//!   held in the store, and the post-state root and logs hash are compared.
//!
//! Execution always reads our store ([`StoreKind`]: memory or QMDB). The Ethereum state root the
//! tests expect is computed from a full copy of the state kept beside the store ([`FullState`]),
//! because our stores commit to their own roots; at the end of each blockchain test the store is
//! checked to hold that same state.
//!
//! Every skip carries its reason (see [`skips`]); a file that does not load is a failure.

mod blockchain;
mod exceptions;
mod mpt;
mod report;
mod rules;
pub mod skips;
mod state;
mod store;

pub use blockchain::{run_blockchain_files, run_blockchain_suite, run_blockchain_test};
pub use mpt::{logs_hash, storage_root, FullState};
pub use report::{Suite, SuiteReport, SuiteSummary, TestFailure, TestSkip, Verdict};
pub use rules::{check_header, check_outcome, check_requests, BlockError};
pub use state::{run_state_files, run_state_suite};
pub use store::{StoreKind, TestStore};

use crate::{
    chain::ChainSpec,
    sequential::{self, BlockInput, BlockOutcome},
    ExecutionError,
};
use std::path::PathBuf;
use zero_fixtures::FixtureError;
use zero_state::StateReader;

/// The engine that executes blocks in the blockchain suite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConformanceEngine {
    /// alloy-evm's block executor, transaction by transaction: the oracle.
    #[default]
    Sequential,
    /// The FAFO parallel engine in replay mode (the block's order kept), on two workers, with
    /// ParaLyze prediction.
    Fafo,
}

/// Executes `input` on `state` with `engine`: the one place where an engine is chosen.
pub fn execute_block_with<S: StateReader>(
    engine: ConformanceEngine,
    chain: &ChainSpec,
    input: BlockInput<'_>,
    state: &S,
) -> Result<BlockOutcome, ExecutionError> {
    match engine {
        ConformanceEngine::Sequential => sequential::execute_block(chain, input, state),
        ConformanceEngine::Fafo => {
            let executor = crate::parallel::ParallelExecutor::new(Some(2));
            let env = sequential::evm_env(chain, input.header);
            let beneficiary = input.header.beneficiary;
            let predictions = crate::parallel::predict(
                input.transactions,
                crate::parallel::PredictionMode::Simulate,
                &env,
                beneficiary,
                state,
                executor.codes(),
            )?;
            let schedule = crate::parallel::schedule_block(
                &predictions,
                beneficiary,
                zero_scheduler::ScheduleMode::Replay,
            );
            executor
                .execute_block(chain, input, &predictions, &schedule.plan, state)
                .map(|(outcome, _)| outcome)
        }
    }
}

/// How a suite runs.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// The engine executing blocks (blockchain suite; the state suite runs single transactions
    /// on the EVM directly, since a block executor would add system calls the suite excludes).
    pub engine: ConformanceEngine,
    /// The store holding each test's state.
    pub store: StoreKind,
    /// Run only this fork's tests ("Cancun"); `None` runs every fork, skipping those without a
    /// chain specification.
    pub fork: Option<String>,
    /// Where QMDB stores go (default: the system's temporary directory).
    pub scratch_dir: Option<PathBuf>,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            engine: ConformanceEngine::Sequential,
            store: StoreKind::Memory,
            fork: Some("Cancun".to_string()),
            scratch_dir: None,
        }
    }
}

impl SuiteOptions {
    /// Whether tests for the fork (or network) `name` are run at all.
    pub fn fork_selected(&self, name: &str) -> bool {
        self.fork.as_deref().is_none_or(|fork| fork == name)
    }
}

/// A suite could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The fixture directory could not be listed.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The directory holds no `.json` test files.
    #[error("no .json test files under {path}")]
    NoTests {
        /// The directory.
        path: PathBuf,
    },
}

/// The `.json` test files under `dir`; none is an error.
fn suite_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, ConformanceError> {
    let files = zero_fixtures::ethereum_tests::list_json_files(dir)?;
    if files.is_empty() {
        return Err(ConformanceError::NoTests { path: dir.to_path_buf() });
    }
    Ok(files)
}

/// Runs `run_file` over `files` in parallel; the report keeps file order.
fn run_files<P: AsRef<std::path::Path> + Sync>(
    suite: report::Suite,
    files: &[P],
    options: &SuiteOptions,
    run_file: impl Fn(&std::path::Path, &SuiteOptions) -> Vec<(String, report::Verdict)> + Sync,
) -> SuiteReport {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    let verdicts: Vec<Vec<(String, report::Verdict)>> =
        files.par_iter().map(|path| run_file(path.as_ref(), options)).collect();
    let mut report = SuiteReport::new(suite);
    for (name, verdict) in verdicts.into_iter().flatten() {
        report.record(name, verdict);
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// A test file's tests, or the one verdict the whole file gets when it does not load: skipped
/// when the skip list names it, failed otherwise.
fn loaded_or_verdict<T, E: std::fmt::Display>(
    suite: report::Suite,
    path: &std::path::Path,
    loaded: Result<T, E>,
) -> Result<T, Vec<(String, report::Verdict)>> {
    loaded.map_err(|error| {
        let verdict = match skips::skip_reason(suite, path) {
            Some(reason) => report::Verdict::Skipped(reason.to_string()),
            None => report::Verdict::Failed(error.to_string()),
        };
        vec![(path.display().to_string(), verdict)]
    })
}
