//! The macro-benchmark behind `zero-producer bench`.
//!
//! Method, as FAFO measures: the workload is generated and its genesis committed before any
//! clock starts. Intake (EIP-2718 decoding and parallel sender recovery) is timed on its own
//! (`intake_tps`). The execution figure (`tps`) covers, for every block, executing its
//! transactions and committing its state changes to the store, which returns the block's state
//! root — senders already recovered.
//!
//! Threads: the sequential engine runs the whole block loop, the store's commit included, on a
//! one-thread pool, so it is the single-core baseline, except that QMDB fsyncs each shard on a
//! thread of its own, for either engine, once the shard's files are written. The FAFO engine
//! runs `threads` pinned workers and gives the store's commit and the prediction a pool of as
//! many threads.
//!
//! FAFO's prediction (ParaLyze) happens when a producer admits a transaction, ahead of block
//! building: every block's transactions are predicted before the clock starts, against the
//! state after genesis (what the validation of each run then checks; a set that later blocks
//! made stale is caught and counted in `mispredicted`). Like intake it is timed apart
//! (`predict_seconds`) and left out of `tps`; `tps_with_prediction` adds it back. Nothing runs
//! in the background while it does. Framing and planning are inside `tps`.
//!
//! Headers carry their parent's state root by default ([`HeaderRoot::Parent`]); then the FAFO
//! engine on QMDB commits each block in the background while the next block executes
//! (`pipelined` in the report), and the clock stops only when the last block's commit has
//! finished. The sequential engine always commits each block before starting the next.

use crate::{
    chain::{ChainSpec, DEV_CHAIN_ID},
    devchain::{DevChain, HeaderRoot},
    intake::{intake, IntakeError, RecoveredTx},
    parallel::{ParallelExecutor, PredictionMode},
    ExecutionError,
};
use alloy_primitives::B256;
use serde::Serialize;
use std::{
    path::{Path, PathBuf},
    sync::{Condvar, Mutex, MutexGuard, PoisonError},
    thread,
    time::Instant,
};
use zero_fixtures::workload::{Workload, WorkloadConfig, WorkloadError, SWAP_GAS};
use zero_state::{MemoryState, Qmdb, QmdbConfig, StateCommit, StateError, StateReader};

/// Which engine executes the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The sequential oracle (alloy-evm's block executor), on one thread.
    Sequential,
    /// The FAFO parallel engine in producer mode.
    Fafo {
        /// Workers (default: one per core).
        threads: Option<usize>,
        /// How access sets are predicted.
        prediction: PredictionMode,
    },
}

impl EngineKind {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Fafo { .. } => "fafo",
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
    /// The operating system refused a thread the benchmark needs.
    #[error("{0}")]
    Threads(String),
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
    /// Execution threads (workers of the FAFO engine; 1 for sequential).
    pub threads: usize,
    /// Runs going at once, this one included: 1, or `threads` for the copies of the sequential
    /// engine that measure the machine's ceiling ([`run_both`]).
    pub copies: usize,
    /// FAFO's prediction mode (absent for sequential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<&'static str>,
    /// Which root the headers carry: `own` or `parent` (module documentation).
    pub header_root: &'static str,
    /// Each block's commit ran in the background while the next block executed.
    pub pipelined: bool,
    /// Prediction time, in seconds, not part of `seconds` (0 for sequential).
    pub predict_seconds: f64,
    /// Transactions per second with prediction time added.
    pub tps_with_prediction: f64,
    /// Framing and planning time, in seconds, part of `seconds` (FAFO; 0 for sequential).
    pub schedule_seconds: f64,
    /// Parallel execution time, in seconds, part of `seconds` (FAFO; 0 for sequential).
    pub execute_seconds: f64,
    /// State commit (Merkleization) time, in seconds, part of `seconds` (FAFO; 0 for
    /// sequential, whose figure does not separate it). When pipelined, the time the block loop
    /// waited for the previous block's background commit (and the wait for the last one).
    pub commit_seconds: f64,
    /// Serial commit time inside execution (validation, fee, overlay, receipts), in seconds
    /// (FAFO).
    pub serial_commit_seconds: f64,
    /// Transaction run time summed over all workers, in seconds (FAFO).
    pub worker_busy_seconds: f64,
    /// Block end inside execution (fee credit, receipts and their root, post-block changes,
    /// change set), in seconds (FAFO).
    pub finish_seconds: f64,
    /// Transactions outside their predicted access set (FAFO).
    pub mispredicted: u64,
    /// Transactions re-executed at commit (FAFO).
    pub reexecuted: u64,
    /// Calls set aside behind an earlier call to the same contract (FAFO, `--predict fields`).
    pub set_aside: u64,
    /// Transactions per frame, averaged over blocks (FAFO).
    pub txs_per_frame: f64,
    /// Transactions over the plan's critical path, averaged over blocks (FAFO).
    pub ideal_speedup: f64,
    /// Execution + commit time of all blocks, in seconds.
    pub seconds: f64,
    /// When the clock started and stopped: the copies' common span runs from the first start to
    /// the last stop.
    #[serde(skip)]
    pub clock: (Instant, Instant),
    /// CPU time the whole process used over `seconds` (every thread, user + system), in
    /// seconds; against `seconds × threads` it shows how busy the cores were, and FAFO's against
    /// sequential's shows the parallel engine's extra work. `None` where the OS cannot say, and
    /// for runs that went at once with others (`copies` above 1): the process's time is theirs
    /// together.
    pub cpu_seconds: Option<f64>,
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
    header_root: HeaderRoot,
) -> Result<BenchReport, BenchError> {
    let mut runs = run_repeated(config, engine, store, header_root, 1)?;
    Ok(runs.swap_remove(0))
}

/// [`run`] `runs` times (at least once) over one generated workload, each run on a fresh
/// store. With a data directory and more than one run, run `k` goes in its subdirectory
/// `run-k`.
pub fn run_repeated(
    config: &WorkloadConfig,
    engine: EngineKind,
    store: &StoreKind,
    header_root: HeaderRoot,
    runs: usize,
) -> Result<Vec<BenchReport>, BenchError> {
    check_parent_datadir(store, "each run gets a fresh store in a subdirectory")?;
    let prepared = Prepared::generate(config)?;
    (1..=runs.max(1))
        .map(|k| {
            let label = if runs > 1 { format!("run-{k}") } else { "run".to_string() };
            Ok(run_prepared(&prepared, engine, store, header_root, &label, None, Gates::none())?.0)
        })
        .collect()
}

/// `bench --engine both`: the same workload through FAFO, then through the sequential engine
/// over the order FAFO chose, each on a fresh store; the two must end on the same root. With
/// several rounds, the figures are medians over the rounds (see [`run_both`]).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Workload kind.
    pub workload: &'static str,
    /// State store.
    pub state: &'static str,
    /// Transactions.
    pub txs: usize,
    /// FAFO's workers.
    pub threads: usize,
    /// Rounds run (one FAFO run and one sequential run each).
    pub rounds: usize,
    /// Sequential transactions per second (execute + commit), median over the rounds.
    pub sequential_tps: f64,
    /// FAFO transactions per second (frame + execute + commit), median over the rounds.
    pub fafo_tps: f64,
    /// Median over the rounds of each round's `fafo_tps / sequential_tps`.
    pub speedup: f64,
    /// Each round's speedup, in the order the rounds ran.
    pub speedups: Vec<f64>,
    /// The same with FAFO's prediction time counted (median over the rounds).
    pub speedup_with_prediction: f64,
    /// FAFO's CPU time over sequential's for the same blocks (median over the rounds): 1.0 is
    /// no extra work. With every core busy in both runs, the speedup on `threads` cores is
    /// `threads / cpu_ratio`. A worker with nothing to run spins, then yields, and the OS counts
    /// that as CPU time too, so this is an upper bound on the extra work (`worker_busy_seconds`
    /// counts only transaction runs).
    pub cpu_ratio: Option<f64>,
    /// With the ceiling measured: the median over the rounds of what `threads` copies of the
    /// sequential engine, run at once on fresh stores, executed together (all their
    /// transactions over the time from the first one's start to the last one's end) over the same
    /// round's single sequential run. It is what `threads` cores of this machine
    /// give a job with no serial part and nothing shared, at the time of the round: a speedup
    /// near it is as much as the machine gives. Busy neighbours on a shared machine lower it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<f64>,
    /// Each round's ceiling, in the order the rounds ran (empty when not measured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ceilings: Vec<f64>,
    /// Median over the rounds of each round's speedup over its ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_of_ceiling: Option<f64>,
    /// Every run of both engines (and of the copies) ended on the same state root.
    pub roots_match: bool,
    /// Every round's FAFO run chose the same order (the one every sequential run executed).
    pub same_order: bool,
}

/// One engine's run in every round of [`run_both`], in the order the rounds ran.
#[derive(Debug, Clone)]
pub struct BothRuns {
    /// FAFO's run in each round.
    pub fafo: Vec<BenchReport>,
    /// The sequential engine's run in each round.
    pub sequential: Vec<BenchReport>,
    /// The copies of the sequential engine run at once in each round, when the ceiling was
    /// measured (else empty).
    pub copies: Vec<Vec<BenchReport>>,
    /// The figures compared.
    pub comparison: Comparison,
}

/// Runs FAFO and the sequential engine over FAFO's order for `rounds` rounds (at least one),
/// each run on a fresh store; see [`Comparison`].
///
/// On a shared machine the speed of one run drifts by tens of percent from one second to the
/// next, so one pair of runs says little. A round is one run of each engine, back to back; the
/// first engine alternates between rounds (FAFO first in the first round, since the sequential
/// engine runs FAFO's order), so a steady drift favours neither. The speedup reported is the
/// median of the rounds' speedups.
///
/// With `ceiling`, each round then runs as many copies of the sequential engine as FAFO has
/// workers, at once, each on its own thread and fresh store, their clocks started together
/// ([`Comparison::ceiling`]).
pub fn run_both(
    config: &WorkloadConfig,
    threads: Option<usize>,
    prediction: PredictionMode,
    store: &StoreKind,
    header_root: HeaderRoot,
    rounds: usize,
    ceiling: bool,
) -> Result<BothRuns, BenchError> {
    check_parent_datadir(store, "each engine gets a fresh store in a subdirectory")?;
    let prepared = Prepared::generate(config)?;
    let fafo_engine = EngineKind::Fafo { threads, prediction };
    let mut fafo_runs = Vec::with_capacity(rounds);
    let mut sequential_runs = Vec::with_capacity(rounds);
    let mut copy_runs = Vec::new();
    let label = |engine: &str, round: usize| match round {
        0 => engine.to_string(),
        _ => format!("{engine}-{}", round + 1),
    };
    let run_fafo = |round| {
        let label = label("fafo", round);
        run_prepared(&prepared, fafo_engine, store, header_root, &label, None, Gates::none())
    };
    let run_sequential = |round, orders: &[Vec<RecoveredTx>]| {
        let label = label("sequential", round);
        let engine = EngineKind::Sequential;
        run_prepared(&prepared, engine, store, header_root, &label, Some(orders), Gates::none())
            .map(|(report, _)| report)
    };
    let (first, orders) = run_fafo(0)?;
    let copies = first.threads;
    fafo_runs.push(first);
    sequential_runs.push(run_sequential(0, &orders)?);
    // FAFO's order depends only on the transactions and the state, so every round's FAFO run
    // must choose the first round's order, which all sequential runs execute.
    let mut same_order = true;
    for round in 0..rounds.max(1) {
        if round > 0 {
            let sequential_first = round % 2 == 1;
            if sequential_first {
                sequential_runs.push(run_sequential(round, &orders)?);
            }
            let (fafo, chosen) = run_fafo(round)?;
            same_order &= chosen == orders;
            fafo_runs.push(fafo);
            if !sequential_first {
                sequential_runs.push(run_sequential(round, &orders)?);
            }
        }
        if ceiling {
            let label = label("copy", round);
            copy_runs.push(run_copies(&prepared, store, header_root, &label, &orders, copies)?);
        }
    }
    let comparison = compare(&fafo_runs, &sequential_runs, &copy_runs, same_order);
    Ok(BothRuns { fafo: fafo_runs, sequential: sequential_runs, copies: copy_runs, comparison })
}

/// Runs `copies` copies of the sequential engine over `orders` at once, each on its own thread
/// and fresh store (`label-1`, `label-2`, …), their clocks started together; none frees its
/// store before every clock has stopped.
fn run_copies(
    prepared: &Prepared,
    store: &StoreKind,
    header_root: HeaderRoot,
    label: &str,
    orders: &[Vec<RecoveredTx>],
    copies: usize,
) -> Result<Vec<BenchReport>, BenchError> {
    let (start, finish) = (StartLine::new(copies), StartLine::new(copies));
    let runs: Vec<Result<BenchReport, BenchError>> = thread::scope(|scope| {
        let handles: Vec<_> = (1..=copies)
            .map(|copy| {
                let (start, finish) = (&start, &finish);
                let run = move || {
                    let gates = Gates { start: Gate(Some(start)), finish: Gate(Some(finish)) };
                    let label = format!("{label}-{copy}");
                    let engine = EngineKind::Sequential;
                    let (mut report, _) = run_prepared(
                        prepared,
                        engine,
                        store,
                        header_root,
                        &label,
                        Some(orders),
                        gates,
                    )?;
                    report.copies = copies;
                    // The process's CPU time is every copy's together.
                    report.cpu_seconds = None;
                    Ok(report)
                };
                thread::Builder::new().spawn_scoped(scope, run).map_err(|error| {
                    // The copies already started wait for this one: count it in.
                    start.arrive();
                    finish.arrive();
                    BenchError::Threads(format!("cannot start a sequential copy: {error}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle?.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    runs.into_iter().collect()
}

/// Holds runs that go at once at their clock start until all of them have arrived.
struct StartLine {
    expected: usize,
    arrived: Mutex<usize>,
    all_in: Condvar,
}

impl StartLine {
    fn new(expected: usize) -> Self {
        Self { expected, arrived: Mutex::new(0), all_in: Condvar::new() }
    }

    fn count_in(&self) -> MutexGuard<'_, usize> {
        let mut arrived = self.arrived.lock().unwrap_or_else(PoisonError::into_inner);
        *arrived += 1;
        if *arrived >= self.expected {
            self.all_in.notify_all();
        }
        arrived
    }

    /// Counts one run in without waiting: one that will never come.
    fn arrive(&self) {
        drop(self.count_in());
    }

    /// Counts one run in and waits for the others.
    fn arrive_and_wait(&self) {
        let arrived = self.count_in();
        let _all = self
            .all_in
            .wait_while(arrived, |arrived| *arrived < self.expected)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// A run's place at a [`StartLine`], taken once (as its clock starts, or after it stops). A run
/// that fails before then takes it as it is dropped, so that it holds none of the others.
struct Gate<'a>(Option<&'a StartLine>);

/// Where a run waits for the runs going at once with it: at its clock's start, and after its
/// clock stops, so that no run frees its store (files or memory) while another is timed.
struct Gates<'a> {
    start: Gate<'a>,
    finish: Gate<'a>,
}

impl Gates<'_> {
    /// A run that waits for nobody.
    fn none() -> Gates<'static> {
        Gates { start: Gate::none(), finish: Gate::none() }
    }
}

// A run that fails before its start must pass the start line before the finish line, or the
// others, held at the start, would never reach the finish: the order is spelled out rather than
// left to the fields' drop order.
impl Drop for Gates<'_> {
    fn drop(&mut self) {
        self.start.pass();
        self.finish.pass();
    }
}

impl Gate<'_> {
    /// A run that waits for nobody.
    fn none() -> Gate<'static> {
        Gate(None)
    }

    fn pass(&mut self) {
        if let Some(start) = self.0.take() {
            start.arrive_and_wait();
        }
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        self.pass();
    }
}

/// The comparison of rounds of paired runs (at least one) and of the rounds' copies (none, or
/// one set per round); `same_order`: FAFO chose one order in every round.
fn compare(
    fafo: &[BenchReport],
    sequential: &[BenchReport],
    copies: &[Vec<BenchReport>],
    same_order: bool,
) -> Comparison {
    let pairs = || fafo.iter().zip(sequential);
    let speedups: Vec<f64> = pairs().map(|(fafo, seq)| fafo.tps / seq.tps).collect();
    let cpu_ratios: Option<Vec<f64>> = pairs()
        .map(|(fafo, seq)| fafo.cpu_seconds.zip(seq.cpu_seconds).map(|(f, s)| f / s))
        .collect();
    let ceilings: Vec<f64> = copies
        .iter()
        .zip(sequential)
        .map(|(copies, seq)| {
            // Released together, they ran from the first one's start to the last one's stop.
            let txs: usize = copies.iter().map(|copy| copy.txs).sum();
            let first = copies.iter().map(|copy| copy.clock.0).min();
            let last = copies.iter().map(|copy| copy.clock.1).max();
            let seconds = match first.zip(last) {
                Some((first, last)) => (last - first).as_secs_f64(),
                None => f64::NAN,
            };
            txs as f64 / seconds / seq.tps
        })
        .collect();
    let measured = !ceilings.is_empty();
    let of_ceiling = speedups.iter().zip(&ceilings).map(|(speedup, ceiling)| speedup / ceiling);
    let root = &fafo[0].state_root;
    Comparison {
        workload: fafo[0].workload,
        state: fafo[0].state,
        txs: fafo[0].txs,
        threads: fafo[0].threads,
        rounds: speedups.len(),
        sequential_tps: median(sequential.iter().map(|run| run.tps).collect()),
        fafo_tps: median(fafo.iter().map(|run| run.tps).collect()),
        speedup: median(speedups.clone()),
        speedup_with_prediction: median(
            pairs().map(|(fafo, seq)| fafo.tps_with_prediction / seq.tps).collect(),
        ),
        cpu_ratio: cpu_ratios.map(median),
        ceiling: measured.then(|| median(ceilings.clone())),
        speedup_of_ceiling: measured.then(|| median(of_ceiling.collect())),
        ceilings,
        speedups,
        roots_match: pairs().all(|(fafo, seq)| fafo.state_root == *root && seq.state_root == *root)
            && copies.iter().flatten().all(|copy| copy.state_root == *root),
        same_order,
    }
}

/// The median of `values` (the mean of the middle two for an even count; NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A generated workload with its transactions through intake.
struct Prepared {
    config: WorkloadConfig,
    workload: Workload,
    blocks: Vec<Vec<RecoveredTx>>,
    generate_seconds: f64,
    intake_seconds: f64,
}

impl Prepared {
    fn generate(config: &WorkloadConfig) -> Result<Self, BenchError> {
        let config = WorkloadConfig { chain_id: DEV_CHAIN_ID, ..config.clone() };
        let started = Instant::now();
        let workload = Workload::generate(&config)?;
        let generate_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let blocks: Vec<Vec<RecoveredTx>> =
            workload.blocks.iter().map(|raw| intake(raw)).collect::<Result<_, _>>()?;
        let intake_seconds = started.elapsed().as_secs_f64();
        Ok(Self { config, workload, blocks, generate_seconds, intake_seconds })
    }
}

/// Runs `prepared` on a fresh store of kind `store` (`label` names its subdirectory when two
/// runs share a `--datadir`); `orders` replaces the blocks' transaction order; the clock
/// starts as the run passes `gates.start`, and the run passes `gates.finish` once it stops.
/// Returns the report and each block's final order.
fn run_prepared(
    prepared: &Prepared,
    engine: EngineKind,
    store: &StoreKind,
    header_root: HeaderRoot,
    label: &str,
    orders: Option<&[Vec<RecoveredTx>]>,
    gates: Gates<'_>,
) -> Result<(BenchReport, Vec<Vec<RecoveredTx>>), BenchError> {
    match store {
        StoreKind::Memory => {
            let chain = Chain { header_root, pipeline: None };
            run_on(prepared, engine, store, MemoryState::new(), chain, orders, gates)
        }
        StoreKind::Qmdb { datadir } => {
            let datadir = datadir.as_ref().map(|dir| match label {
                "run" => dir.clone(),
                _ => dir.join(label),
            });
            let (_temp, dir) =
                fresh_datadir(datadir.as_deref(), "a benchmark starts from a fresh store")
                    .map_err(BenchError::DataDir)?;
            let store_state = Qmdb::open(&dir, QmdbConfig::default())?;
            let pipelined =
                matches!(engine, EngineKind::Fafo { .. }) && header_root == HeaderRoot::Parent;
            let pipeline = pipelined.then_some(DevChain::pipelined as fn(_) -> _);
            let chain = Chain { header_root, pipeline };
            run_on(prepared, engine, store, store_state, chain, orders, gates)
        }
    }
}

/// How a run's chain is set up: the root its headers carry and, for a store that can commit
/// in the background, the step that turns pipelining on.
struct Chain<S> {
    header_root: HeaderRoot,
    pipeline: Option<Pipeline<S>>,
}

/// [`DevChain::pipelined`], for a store known to support it.
type Pipeline<S> = fn(DevChain<S>) -> Result<DevChain<S>, ExecutionError>;

/// `dir` may hold a fresh store: it is absent or an empty directory.
fn check_datadir(dir: &Path, why_empty: &str) -> Result<(), String> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(format!("--datadir {} is not empty; {why_empty}", dir.display())),
        Ok(false) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => {
            Err(format!("--datadir {} is a file, not a directory", dir.display()))
        }
        Err(error) => Err(format!("--datadir {} cannot be read: {error}", dir.display())),
    }
}

/// Checks, before the first of several runs, the data directory their stores' subdirectories
/// go in: each run checks only its own.
fn check_parent_datadir(store: &StoreKind, why_empty: &str) -> Result<(), BenchError> {
    match store {
        StoreKind::Qmdb { datadir: Some(dir) } => {
            check_datadir(dir, why_empty).map_err(BenchError::DataDir)
        }
        _ => Ok(()),
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
            check_datadir(dir, why_empty)?;
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
    prepared: &Prepared,
    engine: EngineKind,
    store: &StoreKind,
    state: S,
    setup: Chain<S>,
    orders: Option<&[Vec<RecoveredTx>]>,
    mut gates: Gates<'_>,
) -> Result<(BenchReport, Vec<Vec<RecoveredTx>>), BenchError> {
    let config = &prepared.config;
    let workload = &prepared.workload;
    let started = Instant::now();
    let mut chain = DevChain::genesis_with(
        ChainSpec::dev(DEV_CHAIN_ID),
        state,
        &workload.genesis,
        block_gas_limit(config.block_txs),
        setup.header_root,
    )?;
    if let Some(pipeline) = setup.pipeline {
        chain = pipeline(chain)?;
    }
    let genesis_seconds = started.elapsed().as_secs_f64();
    let blocks = orders.unwrap_or(&prepared.blocks);

    let (threads, executor) = match engine {
        EngineKind::Sequential => (1, None),
        EngineKind::Fafo { threads, .. } => {
            // Idle workers leave their time to the previous block's commit and the
            // transactions trie, which the producer runs beside them.
            let executor = ParallelExecutor::try_new(threads)?.with_idle_receipt_hashing(false);
            (executor.threads(), Some(executor))
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|error| BenchError::Threads(format!("cannot start a thread pool: {error}")))?;

    let mut totals = Totals::default();
    let mut final_orders = Vec::with_capacity(blocks.len());
    let mut predictions = Vec::new();
    if let (EngineKind::Fafo { prediction, .. }, Some(executor)) = (engine, &executor) {
        let started = Instant::now();
        predictions = pool.install(|| {
            blocks
                .iter()
                .map(|transactions| {
                    chain.predict_next(workload.coinbase, transactions, executor, prediction)
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        totals.predict_seconds = started.elapsed().as_secs_f64();
    }
    let mut predictions = predictions.into_iter();
    // A producer owns the transactions it admitted and moves them into its blocks, where FAFO
    // puts them in its order in place; this copy, made before the clock starts, stands for that
    // ownership.
    let mut owned = match engine {
        EngineKind::Fafo { .. } => blocks.to_vec(),
        EngineKind::Sequential => Vec::new(),
    }
    .into_iter();
    gates.start.pass();
    let cpu_started = process_cpu_seconds();
    let started = Instant::now();
    pool.install(|| -> Result<(), BenchError> {
        for transactions in blocks {
            match (engine, &executor) {
                (EngineKind::Fafo { .. }, Some(executor)) => {
                    let predicted = predictions.next().unwrap_or_default();
                    let (block, report) = chain.produce_fafo_predicted(
                        workload.coinbase,
                        owned.next().unwrap_or_default(),
                        predicted,
                        executor,
                    )?;
                    totals.gas_used += block.outcome.gas_used;
                    totals.failed_txs += block.outcome.failed_transactions();
                    totals.commit_seconds += report.commit_seconds;
                    totals.schedule_seconds += report.schedule_seconds;
                    totals.execute_seconds += report.execute_seconds;
                    totals.mispredicted += report.execution.mispredicted;
                    totals.serial_commit_seconds += report.execution.commit_seconds;
                    totals.worker_busy_seconds += report.execution.execute_seconds;
                    totals.finish_seconds += report.execution.finish_seconds;
                    totals.reexecuted += report.execution.reexecuted;
                    totals.set_aside += report.execution.set_aside;
                    totals.txs_per_frame += report.schedule.txs_per_frame;
                    totals.ideal_speedup += report.schedule.ideal_speedup;
                    final_orders.push(report.transactions);
                }
                _ => {
                    let block = chain.produce_sequential(workload.coinbase, transactions)?;
                    totals.gas_used += block.outcome.gas_used;
                    totals.failed_txs += block.outcome.failed_transactions();
                }
            }
        }
        let started = Instant::now();
        chain.settle()?;
        totals.commit_seconds += started.elapsed().as_secs_f64();
        Ok(())
    })?;
    // Prediction happened at admission, before the clock started (module documentation).
    let stopped = Instant::now();
    let seconds = (stopped - started).as_secs_f64();
    let cpu_seconds = cpu_started.zip(process_cpu_seconds()).map(|(from, to)| to - from);
    gates.finish.pass();
    if matches!(engine, EngineKind::Sequential) {
        // The order is the one given; copied after the clock stops, as FAFO's costs no copy.
        final_orders = blocks.to_vec();
    }

    let txs = workload.transaction_count();
    let block_count = blocks.len().max(1) as f64;
    let report = BenchReport {
        engine: engine.name(),
        state: store.name(),
        workload: config.kind.name(),
        txs,
        accounts: config.accounts,
        blocks: blocks.len(),
        threads,
        copies: 1,
        prediction: match engine {
            EngineKind::Fafo { prediction, .. } => Some(prediction.name()),
            EngineKind::Sequential => None,
        },
        header_root: setup.header_root.name(),
        pipelined: setup.pipeline.is_some(),
        predict_seconds: totals.predict_seconds,
        tps_with_prediction: txs as f64 / (seconds + totals.predict_seconds),
        schedule_seconds: totals.schedule_seconds,
        execute_seconds: totals.execute_seconds,
        commit_seconds: totals.commit_seconds,
        serial_commit_seconds: totals.serial_commit_seconds,
        worker_busy_seconds: totals.worker_busy_seconds,
        finish_seconds: totals.finish_seconds,
        mispredicted: totals.mispredicted,
        reexecuted: totals.reexecuted,
        set_aside: totals.set_aside,
        txs_per_frame: totals.txs_per_frame / block_count,
        ideal_speedup: totals.ideal_speedup / block_count,
        seconds,
        clock: (started, stopped),
        cpu_seconds,
        tps: txs as f64 / seconds,
        gas_per_s: totals.gas_used as f64 / seconds,
        state_root: chain.state().state_root(),
        gas_used: totals.gas_used,
        failed_txs: totals.failed_txs,
        intake_seconds: prepared.intake_seconds,
        intake_tps: txs as f64 / prepared.intake_seconds,
        intake_threads: rayon::current_num_threads(),
        generate_seconds: prepared.generate_seconds,
        genesis_seconds,
        hot_fraction: config.hot_spot.map_or(0.0, |hot| hot.fraction),
        hot_accounts: config.hot_spot.map_or(0, |hot| hot.accounts),
        block_txs: config.block_txs,
        seed: config.seed,
    };
    Ok((report, final_orders))
}

/// CPU time this process has used so far, all threads, user and system, in seconds.
fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` only writes the struct it is given, which is large enough.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: it returned success, so it filled the struct.
    let usage = unsafe { usage.assume_init() };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 * 1e-6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Sums over a run's blocks.
#[derive(Default)]
struct Totals {
    gas_used: u64,
    failed_txs: usize,
    predict_seconds: f64,
    schedule_seconds: f64,
    execute_seconds: f64,
    commit_seconds: f64,
    mispredicted: u64,
    serial_commit_seconds: f64,
    worker_busy_seconds: f64,
    finish_seconds: f64,
    reexecuted: u64,
    set_aside: u64,
    txs_per_frame: f64,
    ideal_speedup: f64,
}

#[cfg(test)]
mod tests {
    use super::{median, Gate, StartLine};
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        thread,
    };

    /// Three runs wait at the line until the fourth, which never starts, is counted in; one that
    /// fails before its clock starts is counted as its gate drops.
    #[test]
    fn the_start_line_holds_runs_until_every_one_is_counted() {
        let line = StartLine::new(5);
        let passed = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    Gate(Some(&line)).pass();
                    passed.fetch_add(1, Ordering::SeqCst);
                });
            }
            scope.spawn(|| drop(Gate(Some(&line))));
            while *line.arrived.lock().unwrap() < 4 {
                thread::yield_now();
            }
            assert_eq!(passed.load(Ordering::SeqCst), 0, "one run is still missing");
            line.arrive();
        });
        assert_eq!(passed.load(Ordering::SeqCst), 3);
        Gate::none().pass();
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
        assert!(median(Vec::new()).is_nan());
    }
}
