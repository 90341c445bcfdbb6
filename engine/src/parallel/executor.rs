//! [`ParallelExecutor`]: one block on pinned workers, committed in block order.
//!
//! 1. The block's system calls run first, on alloy-evm's block executor over the store; their
//!    writes seed the [`BlockOverlay`].
//! 2. Tasks are released by the dependency plan ([`WatermarkRelease`]): a task starts once every
//!    task up to its dependency has *committed*. Ready tasks sit in a global injector (the
//!    initial ones, in block order) or in the deque of the worker that released them; an idle
//!    worker steals, from its own NUMA node first. A task released at the commit cursor is run
//!    by the committer itself, next: nothing commits before it, so a hand-off to another core
//!    would only add latency to the critical path. A call predicted from its fields alone is
//!    set aside while an earlier call to the same contract that it may share storage with has
//!    not committed, and run once it has, or when nothing else is left to run (a soft order:
//!    two such calls often share storage the prediction does not name). Workers 1.. are threads
//!    of a pinned pool kept across blocks; worker 0 is the calling thread.
//! 3. A worker runs its transaction with revm over the overlay, the beneficiary's fee held back
//!    ([`DeferredFeeHandler`]), records the version of every value it read, and checks the run
//!    against its prediction.
//! 4. Worker 0 (the calling thread) is also the committer: between tasks it commits every
//!    finished transaction from the commit cursor on, in block order (the reorder buffer).
//!    Committing validates the reads — each must still be the latest committed version — and
//!    re-executes the transaction on the spot when one is stale (a misprediction somewhere let it
//!    run too early); at that point every earlier transaction has committed, so the re-run is
//!    exact. It then publishes the writes to the overlay. That is all the serial work per
//!    transaction. Validation is skipped while every run so far, this one included, stayed
//!    inside its prediction: the plan is exact, so such a run can only have read current values
//!    (debug builds check that claim on every commit).
//!    A payment predicted as a credit ([`Prediction::credited`]) ran beside earlier payments
//!    into the same account, so its read of that account is left out of validation: what it
//!    added lands on the balance committed now, provided the recipient still has no code.
//! 5. Fees accumulate and are credited to the beneficiary once: at block end, or just before a
//!    transaction that reads the beneficiary (the coinbase barrier makes it wait for every
//!    earlier one; a run that reads it unannounced is re-executed after the credit), or just
//!    before any re-execution at commit (which pays the beneficiary itself). A zero fee paid
//!    to an existing empty beneficiary is credited on its own: it removes it (EIP-161).
//! 6. Receipts are built as transactions commit, their logs bloom already computed where the
//!    transaction ran; a worker with nothing to run hashes the leaves of the receipts trie for
//!    the receipts committed so far (unless told not to: the pipelined producer has other uses
//!    for idle time). After the last commit, the post-block changes (withdrawals, rewards,
//!    requests) run on alloy-evm's executor over the overlay, then the change set is worked out
//!    straight from the overlay (final against block-start values; accounts destroyed in the
//!    block wipe their storage, as in revm's change set). The rest of the receipts root is
//!    hashed beside them on a helper before Prague; from Prague the post-block changes read the
//!    receipts (deposit requests), so it is hashed first, in parallel.
//! 7. A block that predates EIP-161 runs on [`crate::sequential::execute_block`] instead: the
//!    overlay does not model how revm's `State` treats empty accounts before EIP-161. So does a
//!    block whose post-block changes wipe storage, which no chain rule does today; it is run
//!    again sequentially rather than trusted to the overlay.

use super::{
    handler::{credit_fee, DeferredFeeHandler},
    overlay::{
        fee_version_after, version_of, BlockOverlay, FrozenOverlay, ReadKey, StorageEffect,
        Version, POST_EXECUTION, PRE_EXECUTION,
    },
    predict::{written_keys, Prediction},
    runtime::Topology,
    view::{CodeCache, WorkerView},
};
use crate::{
    chain::ChainSpec,
    database::{account_info, DatabaseError, StateDatabase},
    intake::RecoveredTx,
    sequential::{
        evm_env, execute_block, execution_context, executor_factory, outcome_with_root, BlockInput,
        BlockOutcome,
    },
    trie::OrderedTrie,
    ExecutionError,
};
use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction as _};
use alloy_eips::eip2718::Encodable2718;
use alloy_evm::{
    block::{BlockExecutionError, BlockExecutor, BlockExecutorFactory, BlockValidationError},
    eth::{receipt_builder::ReceiptBuilder, EthBlockExecutor, EthEvmContext},
    precompiles::PrecompilesMap,
    EthEvmFactory, Evm as _, EvmFactory, FromRecoveredTx,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{logs_bloom, Address, Bloom, B256, U256};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use revm::{
    bytecode::Bytecode,
    context::{result::HaltReason, ContextSetters, TxEnv},
    context_interface::{
        result::{EVMError, ExecutionResult},
        Cfg, ContextTr, JournalTr,
    },
    database::{states::bundle_state::BundleRetention, OriginalValuesKnown, State},
    handler::{instructions::EthInstructions, EthFrame, Handler, MainnetHandler},
    inspector::NoOpInspector,
    interpreter::interpreter::EthInterpreter,
    primitives::hardfork::SpecId,
    state::{AccountInfo, EvmState},
};
use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Mutex, OnceLock,
    },
    time::Instant,
};
use zero_fixtures::contracts::TRANSFER_SELECTOR;
use zero_scheduler::{DependencyPlan, WatermarkRelease};
use zero_state::{StateReader, KECCAK_EMPTY};

/// revm as a worker runs it: alloy-evm's Ethereum configuration over a [`WorkerView`].
type WorkerEvm<'a, S> = revm::context::Evm<
    EthEvmContext<WorkerView<'a, S>>,
    NoOpInspector,
    EthInstructions<EthInterpreter, EthEvmContext<WorkerView<'a, S>>>,
    PrecompilesMap,
    EthFrame,
>;

/// What a parallel block did besides its outcome.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ParallelStats {
    /// Workers.
    pub threads: usize,
    /// Transactions whose actual reads or writes left their prediction.
    pub mispredicted: u64,
    /// Transactions re-executed at commit (a stale read, or code that touched the
    /// beneficiary without being predicted to).
    pub reexecuted: u64,
    /// Payments predicted as credits whose recipient changed between their run's read and
    /// their commit (a payment before them committed meanwhile): what they added landed on the
    /// committed balance instead of the run's own value.
    pub landed_credits: u64,
    /// Released tasks a worker set aside for other work because an earlier call to the same
    /// contract, one it may share storage with, had not committed yet (the executor's soft
    /// order; see the module documentation).
    pub set_aside: u64,
    /// Transactions the plan made wait for an earlier one.
    pub dependent: u64,
    /// Longest dependency chain of the plan, in transactions.
    pub critical_path: u64,
    /// Time worker 0 spent committing (validation, re-execution, overlay writes), in seconds:
    /// the serial part of the block.
    #[serde(rename = "serial_commit_seconds")]
    pub commit_seconds: f64,
    /// Time all workers spent running transactions, summed, in seconds.
    #[serde(rename = "worker_busy_seconds")]
    pub execute_seconds: f64,
    /// The block ran on the sequential executor instead (it predates EIP-161, or its post-block
    /// changes wipe storage; see the module documentation).
    pub sequential: bool,
    /// Time from the last commit to the outcome (fee credit, receipts, post-block changes,
    /// change set, receipts root), in seconds.
    pub finish_seconds: f64,
}

/// The parallel executor: its workers' placement and the code cache they share across blocks.
pub struct ParallelExecutor {
    topology: Topology,
    /// The threads of workers 1.. (worker 0 is the calling thread), pinned once and kept across
    /// blocks: starting them for every block cost each block its thread starts and, with
    /// mimalloc, fresh thread heaps.
    helpers: Option<rayon::ThreadPool>,
    codes: CodeCache,
    idle_receipt_hashing: bool,
}

/// One finished execution of one transaction, waiting in the reorder buffer.
struct TxRun {
    result: Result<ExecutionResult<HaltReason>, EVMError<DatabaseError>>,
    /// The run's state, kept only when its write set could not be worked out where it ran:
    /// otherwise the worker that allocated it frees it.
    state: Option<EvmState>,
    /// The run succeeded and loaded the beneficiary's account, to read or to change it (revm's
    /// full handler pays it inside).
    touched_beneficiary: bool,
    /// The run did not change the beneficiary, or left it an existing account that it neither
    /// created, destroyed nor emptied: crediting its held-back fee afterwards then gives what
    /// revm's full handler gives.
    fee_deferrable: bool,
    reads: Vec<(ReadKey, Version)>,
    /// The deferred fee, when the run held it back.
    fee: Option<U256>,
    /// Run with revm's full handler (beneficiary paid inside).
    full_handler: bool,
    /// The run's reads and writes stayed inside its prediction.
    covered: bool,
    /// Its writes against what it read (`None` when it failed or they are not known).
    writes: Option<WriteSet>,
    /// The predicted credit as it happened, with nothing else about the recipient read or
    /// changed.
    credit: Option<Credit>,
    /// The bloom of its logs, computed where it ran (off the serial path).
    bloom: Bloom,
}

/// A payment that only added to its recipient's balance (see [`Prediction::credited`]).
#[derive(Clone, Copy)]
struct Credit {
    recipient: Address,
    /// The version of the recipient the run read: while it is still current, the run's own
    /// write is exact.
    read_version: Version,
    /// What the run added to the balance it read.
    added: U256,
    /// Whether the recipient was empty when read, where that changes what the payment costs
    /// (EIP-2780 charges state gas for paying into an empty account): the credit then lands
    /// only on a recipient still as empty or not as it was.
    read_empty: Option<bool>,
}

/// A committed transaction's gas, as the block's totals need it.
struct Committed {
    tx_gas_used: u64,
    regular_gas_used: u64,
    blob_gas_used: u64,
}

/// Each transaction's receipt, set when it commits.
type ReceiptCells = [OnceLock<ReceiptEnvelope>];

/// The receipts trie, its leaves hashed by idle workers as receipts are committed.
type ReceiptTrie<'a> =
    OrderedTrie<'a, OnceLock<ReceiptEnvelope>, fn(&OnceLock<ReceiptEnvelope>, &mut Vec<u8>)>;

/// A committed receipt's encoding, as the receipts trie holds it.
fn encode_receipt(cell: &OnceLock<ReceiptEnvelope>, out: &mut Vec<u8>) {
    cell.get().expect("receipts are hashed only once committed").encode_2718(out);
}

/// Everything workers and the committer share for one block.
struct BlockShared<'a, S> {
    transactions: &'a [RecoveredTx],
    predictions: &'a [Prediction],
    overlay: &'a BlockOverlay,
    store: &'a S,
    slots: Vec<Mutex<Option<TxRun>>>,
    receipts: &'a ReceiptCells,
    receipt_trie: &'a ReceiptTrie<'a>,
    idle_receipt_hashing: bool,
    /// Nanoseconds all workers spent in `run_transaction`.
    busy_nanos: AtomicU64,
    /// Per position: the earlier call to the same contract the transaction may share storage
    /// with, when its prediction came from its fields ([`soft_predecessors`]).
    soft_after: Vec<Option<usize>>,
    /// Tasks set aside until their soft predecessor has committed, by position; `aside_count`
    /// is its length, read without the lock on every task taken.
    aside: Mutex<BTreeSet<usize>>,
    aside_count: AtomicUsize,
    /// Tasks set aside so far (the statistic).
    set_aside: AtomicU64,
    ready: Vec<AtomicBool>,
    committed: AtomicUsize,
    failed: AtomicBool,
    release: WatermarkRelease,
    beneficiary: Address,
    spec: SpecId,
    block_gas_limit: u64,
    tx_gas_limit_cap: u64,
    number: u64,
}

/// The commit side: the reorder cursor and what the block's end needs.
#[derive(Default)]
struct Committer {
    next: usize,
    cumulative_gas: u64,
    /// Fees held back since the beneficiary was last credited (`None`: nothing held back).
    pending_fee: Option<U256>,
    committed: Vec<Committed>,
    /// Every transaction committed so far stayed inside its prediction.
    all_covered: bool,
    mispredicted: u64,
    reexecuted: u64,
    landed_credits: u64,
    commit_nanos: u64,
    /// The task at the cursor, released by the last commit, for the committer to run next.
    cursor_task: Option<usize>,
    error: Option<ExecutionError>,
}

impl ParallelExecutor {
    /// An executor with `threads` workers (default: one per core).
    ///
    /// # Panics
    ///
    /// If the operating system will not start the worker threads; [`Self::try_new`] returns
    /// that as an error instead.
    pub fn new(threads: Option<usize>) -> Self {
        Self::try_new(threads).unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`Self::new`], with a refusal of the worker threads as an error.
    pub fn try_new(threads: Option<usize>) -> Result<Self, ExecutionError> {
        let topology = Topology::detect(threads);
        let cores: Vec<_> = topology.workers.iter().skip(1).map(|(core, _)| *core).collect();
        let workers = topology.threads();
        let helpers = (!cores.is_empty())
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cores.len())
                    .thread_name(|index| format!("fafo-worker-{}", index + 1))
                    .start_handler(move |index| {
                        if let Some(core) = cores[index] {
                            core_affinity::set_for_current(core);
                        }
                    })
                    .build()
                    .map_err(|error| ExecutionError::Threads {
                        threads: workers,
                        reason: error.to_string(),
                    })
            })
            .transpose()?;
        Ok(Self { topology, helpers, codes: CodeCache::default(), idle_receipt_hashing: true })
    }

    /// Whether workers with nothing to run hash the leaves of the committed receipts (on by
    /// default). Off where idle worker time already has a use: in the pipelined producer it goes
    /// to the previous block's commit and the transactions trie, and taking it cost ERC20 about
    /// 3% there; the receipts root is then hashed whole after the last commit, in parallel.
    pub fn with_idle_receipt_hashing(mut self, on: bool) -> Self {
        self.idle_receipt_hashing = on;
        self
    }

    /// Number of workers.
    pub fn threads(&self) -> usize {
        self.topology.threads()
    }

    /// Where the workers run.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The code cache (shared with prediction).
    pub fn codes(&self) -> &CodeCache {
        &self.codes
    }

    /// Executes `input` on `state` in parallel under `plan` (one task per transaction, in block
    /// order), with `predictions` deciding who runs the full handler. The outcome equals
    /// [`crate::sequential::execute_block`] on the same input, whatever the thread count.
    pub fn execute_block<S: StateReader>(
        &self,
        chain: &ChainSpec,
        input: BlockInput<'_>,
        predictions: &[Prediction],
        plan: &DependencyPlan,
        state: &S,
    ) -> Result<(BlockOutcome, ParallelStats), ExecutionError> {
        self.execute_block_keeping_overlay(chain, input, predictions, plan, state)
            .map(|(outcome, stats, _)| (outcome, stats))
    }

    /// [`Self::execute_block`], also handing back the block's final overlay when the change set
    /// came from it (it then holds the state after the block for every key the block read or
    /// wrote: what the next block reads while this one's commit runs).
    pub fn execute_block_keeping_overlay<S: StateReader>(
        &self,
        chain: &ChainSpec,
        input: BlockInput<'_>,
        predictions: &[Prediction],
        plan: &DependencyPlan,
        state: &S,
    ) -> Result<(BlockOutcome, ParallelStats, Option<FrozenOverlay>), ExecutionError> {
        let number = input.header.number;
        let block_error = |source: BlockExecutionError| ExecutionError::Block { number, source };
        let count = input.transactions.len();
        if predictions.len() != count || plan.len() != count {
            return Err(ExecutionError::Schedule(format!(
                "block {number}: {count} transactions but {} predictions and a plan of {}",
                predictions.len(),
                plan.len()
            )));
        }
        let env = evm_env(chain, input.header);
        if !env.cfg_env.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
            return Self::sequentially(chain, input, state, self.threads());
        }

        let mut db = State::builder()
            .with_database_ref(StateDatabase::new(state))
            .with_bundle_update()
            .build();
        let factory = executor_factory(chain);
        let evm = factory.evm_factory().create_evm(&mut db, env.clone());
        let mut executor = factory.create_executor(evm, execution_context(&input));
        executor.apply_pre_execution_changes().map_err(block_error)?;

        // The system calls' writes are the first layer every transaction sees.
        let overlay = BlockOverlay::for_transactions(count);
        if let Some(transitions) = executor.evm_mut().db_mut().transition_state.as_ref() {
            for (address, transition) in &transitions.transitions {
                let without_code = |info: &AccountInfo| AccountInfo { code: None, ..info.clone() };
                overlay.write_account(
                    *address,
                    transition.info.as_ref().map(without_code),
                    PRE_EXECUTION,
                    StorageEffect::Kept,
                    Some(transition.previous_info.as_ref().map(without_code)),
                );
                for (slot, value) in &transition.storage {
                    overlay.write_storage(
                        *address,
                        *slot,
                        value.present_value,
                        PRE_EXECUTION,
                        Some(value.previous_or_original_value),
                    );
                }
            }
        }

        let injector = Injector::new();
        let release = WatermarkRelease::new(count);
        for (position, dependency) in plan.dependencies().iter().enumerate() {
            release
                .append(position, *dependency, &mut |ready| injector.push(ready))
                .map_err(|error| ExecutionError::Schedule(format!("block {number}: {error}")))?;
        }
        let receipts: Vec<OnceLock<ReceiptEnvelope>> =
            (0..count).map(|_| OnceLock::new()).collect();
        let receipt_trie: ReceiptTrie<'_> = OrderedTrie::new(&receipts, encode_receipt);
        let shared = BlockShared {
            transactions: input.transactions,
            predictions,
            overlay: &overlay,
            store: state,
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            receipts: &receipts,
            receipt_trie: &receipt_trie,
            idle_receipt_hashing: self.idle_receipt_hashing,
            busy_nanos: AtomicU64::new(0),
            soft_after: soft_predecessors(input.transactions, predictions),
            aside: Mutex::new(BTreeSet::new()),
            aside_count: AtomicUsize::new(0),
            set_aside: AtomicU64::new(0),
            ready: (0..count).map(|_| AtomicBool::new(false)).collect(),
            committed: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            release,
            beneficiary: input.header.beneficiary,
            spec: env.cfg_env.spec,
            block_gas_limit: input.header.gas_limit,
            tx_gas_limit_cap: Cfg::tx_gas_limit_cap(&env.cfg_env),
            number,
        };
        let mut committer = Committer {
            all_covered: true,
            committed: Vec::with_capacity(count),
            ..Committer::default()
        };

        if count > 0 {
            let threads = self.topology.threads().min(count);
            let workers: Vec<Worker<usize>> = (0..threads).map(|_| Worker::new_fifo()).collect();
            let stealers: Vec<Stealer<usize>> = workers.iter().map(Worker::stealer).collect();
            let steal_order = |index: usize| -> Vec<usize> {
                let order = self.topology.steal_order(index);
                order.into_iter().filter(|&other| other < threads).collect()
            };
            let mut workers = workers.into_iter();
            let main_local = workers.next().expect("at least one worker");
            // Helper `i` (worker `i + 1`) takes the deque and steal order of its pool thread.
            let helper_locals: Vec<Mutex<Option<Worker<usize>>>> =
                workers.map(|local| Mutex::new(Some(local))).collect();
            let run_helper = |index: usize| {
                let Some(local) = helper_locals.get(index - 1).and_then(|cell| {
                    cell.lock().unwrap_or_else(|poison| poison.into_inner()).take()
                }) else {
                    return;
                };
                let _guard = FailOnPanic(&shared.failed);
                let view = WorkerView::new(shared.overlay, shared.store, &self.codes);
                let mut evm = EthEvmFactory::default().create_evm(view, env.clone()).into_inner();
                let order = steal_order(index);
                let sources = TaskSources {
                    local: &local,
                    injector: &injector,
                    stealers: &stealers,
                    steal_order: &order,
                };
                execute_tasks(&shared, &mut evm, &sources);
            };
            let mut run_committer = || {
                // The calling thread is worker 0 and the only committer: alloy-evm's block
                // executor is not `Send`, so the block's end stays where it was built.
                let _guard = FailOnPanic(&shared.failed);
                let view = WorkerView::new(shared.overlay, shared.store, &self.codes);
                let mut evm = EthEvmFactory::default().create_evm(view, env.clone()).into_inner();
                let order = steal_order(0);
                let sources = TaskSources {
                    local: &main_local,
                    injector: &injector,
                    stealers: &stealers,
                    steal_order: &order,
                };
                commit_and_execute(&shared, &mut committer, &mut evm, &sources);
            };
            match &self.helpers {
                Some(helpers) if threads > 1 => helpers.in_place_scope(|scope| {
                    scope.spawn_broadcast(|_, context| run_helper(context.index() + 1));
                    run_committer();
                }),
                _ => run_committer(),
            }
        }

        if let Some(error) = committer.error {
            return Err(error);
        }
        let finish_started = Instant::now();
        if count > 0 {
            committer.credit_fees(&shared, fee_version_after(count - 1))?;
        }
        let mut stats = ParallelStats {
            threads: self.topology.threads(),
            mispredicted: committer.mispredicted,
            reexecuted: committer.reexecuted,
            landed_credits: committer.landed_credits,
            set_aside: shared.set_aside.load(Ordering::Relaxed),
            dependent: plan.dependencies().iter().filter(|d| d.is_some()).count() as u64,
            critical_path: plan.critical_path(),
            commit_seconds: committer.commit_nanos as f64 * 1e-9,
            execute_seconds: shared.busy_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            sequential: false,
            finish_seconds: 0.0,
        };

        let cancun = chain.is_cancun_active_at_timestamp(input.header.timestamp);
        let totals = BlockTotals::of(&committer.committed, cancun);
        if receipts.iter().any(|cell| cell.get().is_none()) {
            return Err(ExecutionError::Schedule(format!("block {number}: a receipt is missing")));
        }
        drop(shared);

        // Post-block changes on alloy-evm's executor over the final overlay, then the change
        // set. From Prague they read the receipts (deposit requests), which must then be whole
        // first; before it they do not, and a helper hashes whatever receipt leaves idle
        // workers did not hash meanwhile, beside them.
        let finish = |receipts: Vec<ReceiptEnvelope>| {
            let view = WorkerView::new(&overlay, state, &self.codes);
            let mut finish_db = State::builder().with_database(view).with_bundle_update().build();
            let evm = factory.evm_factory().create_evm(&mut finish_db, env.clone());
            let mut finisher = factory.create_executor(evm, execution_context(&input));
            totals.set_on(&mut finisher, receipts);
            let (_, result) = finisher.finish().map_err(block_error)?;
            finish_db.merge_transitions(BundleRetention::PlainState);
            let post = finish_db.take_bundle().to_plain_state(OriginalValuesKnown::Yes);
            if post.storage.iter().any(|change| change.wipe_storage) {
                return Ok(None);
            }
            for (address, info) in post.accounts {
                overlay.write_account(address, info, POST_EXECUTION, StorageEffect::Kept, None);
            }
            for change in post.storage {
                for (slot, value) in change.storage {
                    overlay.write_storage(change.address, slot, value, POST_EXECUTION, None);
                }
            }
            for (code_hash, code) in post.contracts {
                overlay.insert_code(code_hash, code);
            }
            Ok::<_, ExecutionError>(Some((result, overlay.changes(number, state)?)))
        };
        let prague = chain.is_prague_active_at_timestamp(input.header.timestamp);
        let (receipts_root, finished, receipts) = match &self.helpers {
            Some(helpers) if !prague && count > 1 => {
                let mut root = B256::ZERO;
                let finished = helpers.in_place_scope(|scope| {
                    scope.spawn(|_| root = receipt_trie.root());
                    finish(Vec::new())
                });
                drop(receipt_trie);
                let receipts = receipts.into_iter().filter_map(OnceLock::into_inner).collect();
                (root, finished, Some(receipts))
            }
            _ => {
                // Whatever leaves idle workers did not hash are hashed here, in parallel.
                let root = receipt_trie.root();
                drop(receipt_trie);
                let receipts = receipts.into_iter().filter_map(OnceLock::into_inner).collect();
                (root, finish(receipts), None)
            }
        };
        let Some((mut result, changes)) = finished? else {
            return Self::sequentially(chain, input, state, self.threads());
        };
        if let Some(receipts) = receipts {
            result.receipts = receipts;
        }
        let outcome = outcome_with_root(result, changes, receipts_root);
        stats.finish_seconds = finish_started.elapsed().as_secs_f64();
        Ok((outcome, stats, Some(overlay.freeze())))
    }

    /// Runs the block on the sequential executor (see the module documentation).
    fn sequentially<S: StateReader>(
        chain: &ChainSpec,
        input: BlockInput<'_>,
        state: &S,
        threads: usize,
    ) -> Result<(BlockOutcome, ParallelStats, Option<FrozenOverlay>), ExecutionError> {
        let outcome = execute_block(chain, input, state)?;
        let stats = ParallelStats { threads, sequential: true, ..ParallelStats::default() };
        Ok((outcome, stats, None))
    }
}

/// Gas totals of the committed transactions, set on an alloy-evm executor as its own
/// `commit_transaction` would have left them.
struct BlockTotals {
    cumulative: u64,
    regular: u64,
    blob: u64,
}

impl BlockTotals {
    fn of(committed: &[Committed], cancun: bool) -> Self {
        let mut totals = Self { cumulative: 0, regular: 0, blob: 0 };
        for tx in committed {
            totals.cumulative += tx.tx_gas_used;
            totals.regular += tx.regular_gas_used;
            if cancun {
                totals.blob = totals.blob.saturating_add(tx.blob_gas_used);
            }
        }
        totals
    }

    fn set_on<E, S, R>(
        &self,
        executor: &mut EthBlockExecutor<'_, E, S, R>,
        receipts: Vec<R::Receipt>,
    ) where
        R: ReceiptBuilder,
    {
        executor.receipts = receipts;
        executor.cumulative_tx_gas_used = self.cumulative;
        executor.block_regular_gas_used = self.regular;
        executor.blob_gas_used = self.blob;
    }
}

/// Marks the block failed if a worker unwinds, so the others stop waiting for its task (the
/// scope then re-raises the panic).
struct FailOnPanic<'a>(&'a AtomicBool);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// Where a worker finds tasks: its own deque, then the injector, then other workers' deques
/// (same NUMA node first).
struct TaskSources<'a> {
    local: &'a Worker<usize>,
    injector: &'a Injector<usize>,
    stealers: &'a [Stealer<usize>],
    steal_order: &'a [usize],
}

impl TaskSources<'_> {
    fn next(&self) -> Option<usize> {
        if let Some(position) = self.local.pop() {
            return Some(position);
        }
        loop {
            let mut retry = false;
            match self.injector.steal_batch_and_pop(self.local) {
                Steal::Success(position) => return Some(position),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            for &victim in self.steal_order {
                match self.stealers[victim].steal() {
                    Steal::Success(position) => return Some(position),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether a task is waiting anywhere this worker takes tasks from.
    fn has_work(&self) -> bool {
        !self.local.is_empty()
            || !self.injector.is_empty()
            || self.steal_order.iter().any(|&victim| !self.stealers[victim].is_empty())
    }
}

/// Per position, the last earlier call to the same contract that the transaction may share
/// storage with, for calls whose prediction came from their fields (no simulation): such a
/// prediction names the contract's account but none of its storage, so two calls to one
/// contract run side by side and the later one, when they share a slot, is re-executed on the
/// serial path. In the mainnet fixtures' replay, three re-executions in four had such an earlier
/// call behind their stale read (a pool or a token called twice).
///
/// ERC-20 `transfer`, `transferFrom` and `approve` calls change the balances and allowances of
/// the parties they name (the sender, the addresses in the call data), so two of them are paired
/// only when they name a party in common: pairing every transfer of one token made a generated
/// ERC-20 block nearly serial. Any other call is paired with the last call to the contract.
///
/// The plan does not order them: ordering every pair of calls to one contract cut the replay's
/// re-executions by two thirds but gained no time. [`next_task`] only prefers other work while
/// the earlier call has not committed.
fn soft_predecessors(
    transactions: &[RecoveredTx],
    predictions: &[Prediction],
) -> Vec<Option<usize>> {
    use alloy_primitives::map::{AddressMap, HashMap};
    let unsimulated_call = |(tx, prediction): (&RecoveredTx, &Prediction)| {
        tx.to().is_some() && !tx.input().is_empty() && !prediction.simulated()
    };
    // Simulated blocks (a producer's) skip the maps: nothing in them is paired.
    if !transactions.iter().zip(predictions).any(unsimulated_call) {
        return vec![None; transactions.len()];
    }
    // Per contract: the last call, the last call other than a token call, and the last token
    // call naming each party.
    let mut last_call = AddressMap::<usize>::default();
    let mut last_other = AddressMap::<usize>::default();
    let mut last_party = HashMap::<(Address, Address), usize>::default();
    let mut predecessors = Vec::with_capacity(transactions.len());
    for (position, (tx, prediction)) in transactions.iter().zip(predictions).enumerate() {
        let Some(contract) = tx.to().filter(|_| !tx.input().is_empty()) else {
            predecessors.push(None);
            continue;
        };
        let predecessor = match token_parties(tx) {
            Some(parties) => {
                // A party named twice (a transfer to oneself) must not pair the call with itself.
                let by_party = parties
                    .iter()
                    .filter_map(|&party| last_party.insert((contract, party), position))
                    .filter(|&earlier| earlier != position)
                    .max();
                by_party.max(last_other.get(&contract).copied())
            }
            None => {
                last_other.insert(contract, position);
                last_call.get(&contract).copied()
            }
        };
        last_call.insert(contract, position);
        // A simulated call names its storage, so the plan orders later calls that read what it
        // writes; it is still the call a later unsimulated one may meet.
        predecessors.push(predecessor.filter(|_| !prediction.simulated()));
    }
    predecessors
}

/// `transferFrom(address,address,uint256)` selector.
const TRANSFER_FROM_SELECTOR: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// `approve(address,uint256)` selector.
const APPROVE_SELECTOR: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];

/// The two parties whose balances or allowances an ERC-20 `transfer`, `transferFrom` or
/// `approve` call changes, read from its call data; `None` for any other call.
fn token_parties(tx: &RecoveredTx) -> Option<[Address; 2]> {
    let input = tx.input();
    let address = |word: usize| {
        let start = 4 + 32 * word;
        input.get(start + 12..start + 32).map(Address::from_slice)
    };
    match (<[u8; 4]>::try_from(input.get(..4)?).ok()?, input.len()) {
        (TRANSFER_SELECTOR | APPROVE_SELECTOR, 68) => Some([tx.signer(), address(0)?]),
        (TRANSFER_FROM_SELECTOR, 100) => Some([address(0)?, address(1)?]),
        _ => None,
    }
}

/// How many of the earliest set-aside tasks [`next_task`] looks at for one that is clear.
const SET_ASIDE_SCAN: usize = 8;

/// The next task for a worker: a set-aside task whose soft predecessor has committed, else a
/// released one (setting aside those whose soft predecessor has not), else the first task set
/// aside, run anyway rather than idle.
fn next_task<S>(shared: &BlockShared<'_, S>, sources: &TaskSources<'_>) -> Option<usize> {
    let aside = || shared.aside.lock().unwrap_or_else(|poison| poison.into_inner());
    let committed = |q: usize| q < shared.committed.load(Ordering::Acquire);
    if shared.aside_count.load(Ordering::Acquire) > 0 {
        let mut set = aside();
        // The earliest are likeliest clear (their predecessors are earliest); looking further
        // would cost a scan of every set-aside task per call when many wait on one chain.
        let clear = set
            .iter()
            .copied()
            .take(SET_ASIDE_SCAN)
            .find(|&p| shared.soft_after[p].is_none_or(committed));
        if let Some(position) = clear {
            set.remove(&position);
            shared.aside_count.store(set.len(), Ordering::Release);
            return Some(position);
        }
    }
    while let Some(position) = sources.next() {
        match shared.soft_after[position] {
            Some(before) if !committed(before) => {
                let mut set = aside();
                set.insert(position);
                shared.aside_count.store(set.len(), Ordering::Release);
                shared.set_aside.fetch_add(1, Ordering::Relaxed);
            }
            _ => return Some(position),
        }
    }
    if shared.aside_count.load(Ordering::Acquire) > 0 {
        let mut set = aside();
        let first = set.pop_first();
        shared.aside_count.store(set.len(), Ordering::Release);
        return first;
    }
    None
}

/// Runs the task at `position` and leaves its result in the reorder buffer.
fn execute_task<S: StateReader>(
    shared: &BlockShared<'_, S>,
    evm: &mut WorkerEvm<'_, S>,
    position: usize,
    busy_nanos: &mut u64,
) {
    let prediction = &shared.predictions[position];
    let full_handler = prediction.touches_beneficiary();
    let started = Instant::now();
    let run = run_transaction(
        evm,
        &shared.transactions[position],
        full_handler,
        prediction,
        shared.beneficiary,
    );
    *busy_nanos += started.elapsed().as_nanos() as u64;
    *shared.slots[position].lock().unwrap_or_else(|poison| poison.into_inner()) = Some(run);
    shared.ready[position].store(true, Ordering::Release);
}

/// Backs off a little while nothing is runnable.
fn idle_wait(idle: &mut u32) {
    *idle += 1;
    if *idle < 128 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// A helper worker's loop: run released tasks until the block has committed or failed.
fn execute_tasks<S: StateReader>(
    shared: &BlockShared<'_, S>,
    evm: &mut WorkerEvm<'_, S>,
    sources: &TaskSources<'_>,
) {
    let count = shared.transactions.len();
    let mut idle = 0u32;
    // Summed here and added once: a counter both workers bump per task would bounce its cache
    // line between their cores.
    let mut busy_nanos = 0;
    while shared.committed.load(Ordering::Acquire) < count && !shared.failed.load(Ordering::Acquire)
    {
        match next_task(shared, sources) {
            Some(position) => {
                idle = 0;
                execute_task(shared, evm, position, &mut busy_nanos);
            }
            None if hash_receipts(shared, &|| sources.has_work()) => idle = 0,
            None => idle_wait(&mut idle),
        }
    }
    shared.busy_nanos.fetch_add(busy_nanos, Ordering::Relaxed);
}

/// Hashes one chunk of committed receipts' leaves for a worker with nothing to run, until
/// `stop` (work arrived); returns whether there was a chunk to take.
fn hash_receipts<S>(shared: &BlockShared<'_, S>, stop: &impl Fn() -> bool) -> bool {
    shared.idle_receipt_hashing
        && shared.receipt_trie.hash_ready(shared.committed.load(Ordering::Acquire), stop)
}

/// Worker 0's loop: commit whatever is ready at the cursor, else run a task.
fn commit_and_execute<S: StateReader>(
    shared: &BlockShared<'_, S>,
    committer: &mut Committer,
    evm: &mut WorkerEvm<'_, S>,
    sources: &TaskSources<'_>,
) {
    let count = shared.transactions.len();
    let mut idle = 0u32;
    let mut busy_nanos = 0;
    loop {
        let before = committer.next;
        let next = committer.commit_ready(shared, evm, sources.local);
        if next >= count || shared.failed.load(Ordering::Acquire) {
            shared.busy_nanos.fetch_add(busy_nanos, Ordering::Relaxed);
            return;
        }
        // Idle unless something committed, a task arrived or the cursor's run is ready.
        let cursor_ready = || shared.ready[next].load(Ordering::Acquire);
        match committer.cursor_task.take().or_else(|| next_task(shared, sources)) {
            Some(position) => {
                idle = 0;
                execute_task(shared, evm, position, &mut busy_nanos);
            }
            None if next != before => idle = 0,
            None if hash_receipts(shared, &|| cursor_ready() || sources.has_work()) => idle = 0,
            None => idle_wait(&mut idle),
        }
    }
}

/// Runs one transaction on a worker's revm: with revm's full handler, or with the fee held back;
/// checks the run against `prediction`.
fn run_transaction<S: StateReader>(
    evm: &mut WorkerEvm<'_, S>,
    tx: &RecoveredTx,
    full_handler: bool,
    prediction: &Prediction,
    beneficiary: Address,
) -> TxRun {
    evm.ctx.journal_mut().db_mut().clear_reads();
    evm.ctx.set_tx(TxEnv::from_recovered_tx(tx.inner(), tx.signer()));
    let (outcome, fee) = if full_handler {
        (MainnetHandler::<_, EVMError<DatabaseError>, EthFrame>::default().run(evm), None)
    } else {
        let mut handler = DeferredFeeHandler::<_, EVMError<DatabaseError>, EthFrame>::new();
        let outcome = handler.run(evm);
        (outcome, handler.fee())
    };
    let emptiness_costs = evm.ctx.cfg().is_amsterdam_eip2780_enabled();
    let state = evm.ctx.journal_mut().finalize();
    let view = evm.ctx.journal_mut().db_mut();
    // What it changed, against what it read: valid at commit exactly when its reads are.
    let writes = outcome
        .is_ok()
        .then(|| write_set(&state, |address| Ok(view.loaded(address).cloned())).ok().flatten())
        .flatten();
    let reads = view.take_reads();
    let credit = prediction.credited().and_then(|recipient| {
        let before = view.loaded(recipient)?;
        let added = credit_of(writes.as_ref()?, recipient, before)?;
        let key = ReadKey::Account(recipient);
        let &(_, read_version) = reads.iter().rev().find(|(read, _)| *read == key)?;
        let read_empty =
            emptiness_costs.then(|| before.as_ref().is_none_or(|info| info.is_empty()));
        Some(Credit { recipient, read_version, added, read_empty })
    });
    let bloom = outcome.as_ref().map_or(Bloom::ZERO, |result| logs_bloom(result.logs()));
    // Whether it stayed inside its prediction decides whether later commits may skip
    // validation; a failed run changed nothing. Its writes are what it will publish, when known.
    // A predicted credit must have been one: the plan let it run beside other payments into
    // the account, so its read of the account may be stale.
    let read_keys = reads.iter().map(|(key, _)| *key);
    let covered = outcome.is_err()
        || (match &writes {
            Some(writes) => prediction.covers(read_keys, writes.keys(), beneficiary),
            None => prediction.covers(read_keys, written_keys(&state), beneficiary),
        } && (prediction.credited().is_none() || credit.is_some()));
    let beneficiary_account = state.get(&beneficiary);
    let touched_beneficiary = outcome.is_ok() && beneficiary_account.is_some();
    let fee_deferrable = beneficiary_account.is_none_or(|account| {
        !account.is_touched()
            || !(account.is_selfdestructed() || account.is_created() || account.is_empty())
    });
    TxRun {
        result: outcome,
        state: writes.is_none().then_some(state),
        touched_beneficiary,
        fee_deferrable,
        reads,
        fee,
        full_handler,
        covered,
        writes,
        credit,
        bloom,
    }
}

/// What a run whose `writes` pay into `recipient` added to its balance, when that is all it did
/// to it: the recipient had no code (nothing ran there, so nothing depended on its balance) and
/// keeps its nonce, code and storage. `before` is the account as the run read it.
fn credit_of(writes: &WriteSet, recipient: Address, before: &Option<AccountInfo>) -> Option<U256> {
    let (balance, nonce, code_hash) = before
        .as_ref()
        .map_or((U256::ZERO, 0, KECCAK_EMPTY), |info| (info.balance, info.nonce, info.code_hash));
    let (_, after, storage) = writes.accounts.iter().find(|(address, ..)| *address == recipient)?;
    let after = after.as_ref()?;
    let untouched = code_hash == KECCAK_EMPTY
        && after.code_hash == KECCAK_EMPTY
        && after.nonce == nonce
        && *storage == StorageEffect::Kept
        && !writes.slots.iter().any(|(address, ..)| *address == recipient);
    after.balance.checked_sub(balance).filter(|added| untouched && !added.is_zero())
}

/// The recipient's balance and nonce once `credit` lands on its committed value `now`; `None`
/// when it cannot stand for the run: the recipient has code now (a payment would run it), its
/// emptiness changed where that costs gas, or the sum passes 2^256 wei. The run is then
/// executed again.
fn credited_account(now: Option<AccountInfo>, credit: &Credit) -> Option<(U256, u64)> {
    let empty_now = now.as_ref().is_none_or(|info| info.is_empty());
    if credit.read_empty.is_some_and(|read_empty| read_empty != empty_now) {
        return None;
    }
    match now {
        None => Some((credit.added, 0)),
        Some(info) if info.code_hash == KECCAK_EMPTY => {
            Some((info.balance.checked_add(credit.added)?, info.nonce))
        }
        Some(_) => None,
    }
}

impl Committer {
    /// Commits ready transactions from the cursor on; returns the new cursor.
    fn commit_ready<S: StateReader>(
        &mut self,
        shared: &BlockShared<'_, S>,
        evm: &mut WorkerEvm<'_, S>,
        local: &Worker<usize>,
    ) -> usize {
        let count = shared.transactions.len();
        while self.error.is_none()
            && self.next < count
            && shared.ready[self.next].load(Ordering::Acquire)
        {
            let position = self.next;
            let started = Instant::now();
            let committed = self.commit_one(shared, evm, position);
            self.commit_nanos += started.elapsed().as_nanos() as u64;
            if let Err(error) = committed {
                self.error = Some(error);
                shared.failed.store(true, Ordering::SeqCst);
                break;
            }
            self.next += 1;
            shared.committed.store(self.next, Ordering::Release);
            // Released tasks go to this worker's deque, where idle workers steal them, except
            // the one at the new cursor: nothing commits until it has run, so the committer
            // runs it next itself rather than pay a hand-off to another core on the critical
            // path (a nonce chain is one such hand-off per transaction).
            let cursor = self.next;
            let mut at_cursor = None;
            let released = shared.release.complete(position, &mut |ready| {
                if ready == cursor {
                    at_cursor = Some(ready);
                } else {
                    local.push(ready);
                }
            });
            self.cursor_task = at_cursor;
            if let Err(error) = released {
                self.error = Some(ExecutionError::Schedule(error.to_string()));
                shared.failed.store(true, Ordering::SeqCst);
            }
        }
        self.next
    }

    fn commit_one<S: StateReader>(
        &mut self,
        shared: &BlockShared<'_, S>,
        evm: &mut WorkerEvm<'_, S>,
        position: usize,
    ) -> Result<(), ExecutionError> {
        let number = shared.number;
        let tx = &shared.transactions[position];
        let beneficiary = shared.beneficiary;
        let mut run = shared.slots[position]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
            .ok_or_else(|| ExecutionError::Schedule(format!("transaction {position} vanished")))?;
        let touched_beneficiary = run.touched_beneficiary;
        let read_beneficiary = touched_beneficiary
            || run.reads.iter().any(|(key, _)| *key == ReadKey::Account(beneficiary));
        let credited = self.pending_fee.is_some() && read_beneficiary;
        if credited {
            // It saw the beneficiary without the fees held back since the last credit.
            self.credit_fees(shared, fee_version_after(position - 1))?;
        }
        // A run inside its prediction, after every earlier commit stayed inside its own, read
        // only values the plan ordered it after: they are current without looking (the plan is
        // exact). The beneficiary is outside every prediction (fees are credited behind the
        // plan's back), so a run that read it is always checked.
        let planned = run.covered && self.all_covered && !read_beneficiary;
        // A credit's read of its recipient may be stale by design (earlier payments into it ran
        // beside it): it is left out of validation, and the credit lands on the balance now,
        // as long as the recipient still has no code.
        let credit_key = run.credit.map(|credit| ReadKey::Account(credit.recipient));
        let current = |run: &TxRun| {
            run.reads.iter().all(|&(key, version)| {
                Some(key) == credit_key || shared.overlay.current_version(key) == version
            })
        };
        debug_assert!(!planned || current(&run), "transaction {position} read a stale value");
        let mut landed = match run.credit {
            Some(credit) => {
                // Most often nothing was paid in since it read the recipient: the write stands.
                let key = ReadKey::Account(credit.recipient);
                if shared.overlay.current_version(key) == credit.read_version {
                    None
                } else {
                    let now = current_account(shared, credit.recipient)?;
                    Some((credit.recipient, credited_account(now, &credit)))
                }
            }
            None => None,
        };
        let credit_refused = matches!(landed, Some((_, None)));
        let stale = credited || credit_refused || (!planned && !current(&run));
        // A run that held its fee back and reached the beneficiary unannounced saw it without
        // any fee held back (else it was credited above and the run is stale); its own fee can
        // still follow it, unless the run created, destroyed or emptied the beneficiary.
        if stale || (!run.full_handler && touched_beneficiary && !run.fee_deferrable) {
            // Every earlier transaction has committed: this run sees exactly the sequential state
            // once the fees held back are in. It pays the beneficiary itself and may now read
            // it; without them it could see it empty and remove it (EIP-161) on a zero fee.
            if self.pending_fee.is_some() {
                self.credit_fees(shared, fee_version_after(position - 1))?;
            }
            self.reexecuted += 1;
            run = run_transaction(evm, tx, true, &shared.predictions[position], beneficiary);
            // It read the recipient's committed value: its write is exact as it stands.
            landed = None;
        }
        if !run.covered {
            self.mispredicted += 1;
            // Its writes may reach keys the plan did not order later transactions behind.
            self.all_covered = false;
        }

        // The block's gas limit, checked as alloy-evm checks it before executing.
        let available = shared.block_gas_limit - self.cumulative_gas;
        if tx.gas_limit().min(shared.tx_gas_limit_cap) > available {
            return Err(ExecutionError::Block {
                number,
                source: BlockValidationError::TransactionGasLimitMoreThanAvailableBlockGas {
                    transaction_gas_limit: tx.gas_limit(),
                    block_available_gas: available,
                }
                .into(),
            });
        }
        let result = run.result.map_err(|error| ExecutionError::Block {
            number,
            source: BlockExecutionError::evm(error, *tx.tx_hash()),
        })?;
        if let Some(fee) = run.fee {
            // Saturating: a sum past 2^256 wei cannot occur, and revm skips such a credit too.
            self.pending_fee = Some(self.pending_fee.unwrap_or_default().saturating_add(fee));
        }
        let mut writes = match (run.writes, &run.state) {
            (Some(writes), _) => writes,
            (None, Some(state)) => {
                write_set(state, |address| current_account(shared, address).map(Some))?.ok_or_else(
                    || ExecutionError::Schedule("unknown account in a write set".into()),
                )?
            }
            (None, None) => {
                return Err(ExecutionError::Schedule(format!(
                    "transaction {position} left neither its writes nor its state"
                )))
            }
        };
        if let Some((recipient, Some((balance, nonce)))) = landed {
            self.landed_credits += 1;
            if let Some((_, Some(info), _)) =
                writes.accounts.iter_mut().find(|(address, ..)| *address == recipient)
            {
                info.balance = balance;
                info.nonce = nonce;
            }
        }
        publish(shared.overlay, writes, version_of(position));
        // A zero fee paid to an existing empty beneficiary touches it, and EIP-161 removes it
        // (revm's `State` then wipes its storage, even if later fees bring it back): pay this
        // one now, as revm does, instead of folding it into a later credit. Only while nothing
        // is held back, since any fee held back leaves the beneficiary non-empty.
        if run.fee.is_some()
            && self.pending_fee.is_some_and(|fee| fee.is_zero())
            && current_account(shared, beneficiary)?.is_some_and(|account| account.is_empty())
        {
            self.credit_fees(shared, fee_version_after(position))?;
        }
        let tx_gas_used = result.gas().tx_gas_used();
        self.cumulative_gas += tx_gas_used;
        self.committed.push(Committed {
            tx_gas_used,
            regular_gas_used: result.gas().block_regular_gas_used(),
            blob_gas_used: tx.blob_gas_used().unwrap_or_default(),
        });
        let receipt = ReceiptWithBloom::new(
            Receipt {
                status: Eip658Value::Eip658(result.is_success()),
                cumulative_gas_used: self.cumulative_gas,
                logs: result.into_logs(),
            },
            run.bloom,
        );
        // Set once: the cursor passes each position once.
        let _ = shared.receipts[position].set(ReceiptEnvelope::from_typed(tx.tx_type(), receipt));
        // The next transaction reads the beneficiary and runs only after this commit (the
        // coinbase barrier): credit the fees it must see.
        if shared.predictions.get(position + 1).is_some_and(|next| next.touches_beneficiary()) {
            self.credit_fees(shared, fee_version_after(position))?;
        }
        Ok(())
    }

    /// Credits the fees held back so far to the beneficiary, as one write at `version`.
    ///
    /// One credit stands for the per-transaction credits revm makes; the final balance is the
    /// same. One corner differs in form only: a sum past 2^256 wei saturates where revm skips
    /// each overflowing credit (unreachable with real balances). The other corner, a zero fee
    /// paid to an existing empty beneficiary (which removes it), is credited on its own when
    /// it commits ([`Self::commit_one`]).
    fn credit_fees<S: StateReader>(
        &mut self,
        shared: &BlockShared<'_, S>,
        version: Version,
    ) -> Result<(), ExecutionError> {
        let Some(fee) = self.pending_fee.take() else {
            return Ok(());
        };
        let beneficiary = shared.beneficiary;
        let current = current_account(shared, beneficiary)?;
        let mut state = EvmState::default();
        credit_fee(&mut state, beneficiary, current.clone(), fee, shared.spec);
        let writes = write_set(&state, |_| Ok(Some(current.clone())))?
            .ok_or_else(|| ExecutionError::Schedule("unknown beneficiary in a write set".into()))?;
        publish(shared.overlay, writes, version);
        Ok(())
    }
}

/// A transaction's effect on the overlay, worked out where it ran (off the serial path).
#[derive(Default)]
struct WriteSet {
    /// Accounts whose value changed: the new value (`None`: gone) and what the write did to
    /// the account's storage.
    accounts: Vec<(Address, Option<AccountInfo>, StorageEffect)>,
    slots: Vec<(Address, U256, U256)>,
    /// Code that became reachable: a creation, or an EIP-7702 delegation.
    codes: Vec<(B256, Bytecode)>,
}

impl WriteSet {
    /// The keys it changes, as predictions name them. The slots of an account it destroys or
    /// clears go with the account's key: reading a slot loads the account first.
    fn keys(&self) -> impl Iterator<Item = ReadKey> + '_ {
        let accounts = self.accounts.iter().map(|(address, ..)| ReadKey::Account(*address));
        accounts.chain(self.slots.iter().map(|&(address, slot, _)| ReadKey::Storage(address, slot)))
    }
}

/// The writes of `state`, with the meaning revm's `State` gives them: a selfdestructed account
/// is gone with its storage, a created one starts from empty storage, a touched empty account is
/// removed (EIP-161; revm has already normalised pre-EIP-161 blocks). `current` gives each
/// account's value before the transaction (`None`: not known, and then neither is the write
/// set). Accounts whose value did not change are left out, so a transaction that read them
/// stays valid.
fn write_set(
    state: &EvmState,
    current: impl Fn(Address) -> Result<Option<Option<AccountInfo>>, ExecutionError>,
) -> Result<Option<WriteSet>, ExecutionError> {
    let mut writes = WriteSet::default();
    for (address, account) in state {
        if !account.is_touched() {
            continue;
        }
        let Some(current) = current(*address)? else {
            return Ok(None);
        };
        let destroyed = account.is_selfdestructed();
        let created = !destroyed && account.is_created();
        let removed = !destroyed && !created && account.is_empty();
        // Destroying an account that exists (in revm's `State`: one not loaded as missing)
        // wipes its storage in the change set; one created and destroyed by this transaction
        // never existed.
        let storage = if (destroyed || removed) && current.is_some() {
            StorageEffect::Destroyed
        } else if destroyed || created || removed {
            StorageEffect::Cleared
        } else {
            StorageEffect::Kept
        };
        let info = if destroyed || removed {
            None
        } else {
            // Code is copied only where it is new: cloning a contract's shared `Bytecode` on
            // every write would pass its reference count between the workers' cores.
            let info = account.info.copy_without_code();
            if let Some(code) = &account.info.code {
                if created || current.as_ref().is_none_or(|old| old.code_hash != info.code_hash) {
                    writes.codes.push((info.code_hash, code.clone()));
                }
            }
            Some(info)
        };
        let changed = destroyed
            || created
            || match (&current, &info) {
                (Some(old), Some(new)) => {
                    old.balance != new.balance
                        || old.nonce != new.nonce
                        || old.code_hash != new.code_hash
                }
                (None, None) => false,
                _ => true,
            };
        if changed {
            writes.accounts.push((*address, info, storage));
        }
        if !destroyed {
            writes.slots.extend(
                account
                    .changed_storage_slots()
                    .map(|(slot, value)| (*address, *slot, value.present_value)),
            );
        }
    }
    Ok(Some(writes))
}

/// The account's committed value now: the overlay's, else the store's.
fn current_account<S: StateReader>(
    shared: &BlockShared<'_, S>,
    address: Address,
) -> Result<Option<AccountInfo>, ExecutionError> {
    Ok(match shared.overlay.account_version(address) {
        Some((info, _)) => info,
        None => shared.store.account(address)?.map(account_info),
    })
}

/// Makes a committed transaction's writes visible to later ones, at `version`.
fn publish(overlay: &BlockOverlay, writes: WriteSet, version: Version) {
    publish_watched(overlay, writes, version, |_| {});
}

/// [`publish`], calling `after_each` after every write (the tests look at each step).
///
/// Workers read while it runs, each write on its own, so every step must keep this true: a
/// read that returns `version` returns the value the whole publication leaves. Slots go
/// before accounts for that reason. A wipe (a creation, or an account destroyed) gives every
/// slot of its account the wipe's version, which is also the version of the constructor's own
/// slot writes: published after the wipe, a slot read between the two would get zero at the
/// final version, and pass validation with the wrong value. Published first, a slot read
/// before the account's write gets the new value, or an older version that fails validation;
/// and a run that read the account before its write, as every slot read does first, fails on
/// the account.
fn publish_watched(
    overlay: &BlockOverlay,
    writes: WriteSet,
    version: Version,
    mut after_each: impl FnMut(&BlockOverlay),
) {
    for (code_hash, code) in writes.codes {
        overlay.insert_code(code_hash, code);
        after_each(overlay);
    }
    for (address, slot, value) in writes.slots {
        overlay.write_storage(address, slot, value, version, None);
        after_each(overlay);
    }
    for (address, info, storage) in writes.accounts {
        overlay.write_account(address, info, version, storage, None);
        after_each(overlay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::intake;
    use alloy_consensus::TxEip1559;
    use alloy_primitives::{Bytes, TxKind};
    use zero_fixtures::{
        contracts::selector,
        workload::{derive_key, sign_and_encode},
    };

    /// A contract created with a constructor that writes two slots, over an address whose
    /// storage an earlier transaction wrote: at every step of the publication, a read that
    /// returns the creation's version returns the final value (the race a worker reading
    /// mid-publication would otherwise win with a wrong value that passes validation).
    #[test]
    fn a_version_read_mid_publication_names_its_final_value() {
        use super::super::overlay::ReadKey;
        const CONTRACT: Address = Address::repeat_byte(0xc);
        let overlay = BlockOverlay::for_transactions(4);
        // Written by transaction 0: slot 1 = 5, slot 3 = 9 (an address funded and written
        // before; a wipe must hide both).
        overlay.write_account(
            CONTRACT,
            Some(AccountInfo::default()),
            version_of(0),
            StorageEffect::Kept,
            Some(None),
        );
        for (slot, value) in [(1u64, 5u64), (3, 9)] {
            let (slot, value) = (U256::from(slot), U256::from(value));
            overlay.write_storage(CONTRACT, slot, value, version_of(0), Some(U256::ZERO));
        }
        let code = Bytecode::new_raw(alloy_primitives::Bytes::from_static(&[0x00]));
        let info = AccountInfo { nonce: 1, code_hash: code.hash_slow(), ..Default::default() };
        let writes = WriteSet {
            accounts: vec![(CONTRACT, Some(info.clone()), StorageEffect::Cleared)],
            slots: vec![
                (CONTRACT, U256::from(1), U256::from(7)),
                (CONTRACT, U256::from(2), U256::from(8)),
            ],
            codes: vec![(info.code_hash, code)],
        };
        let creation = version_of(1);
        let final_slots = [(1, 7), (2, 8), (3, 0), (4, 0)];
        let mut steps = 0;
        publish_watched(&overlay, writes, creation, |overlay| {
            steps += 1;
            for (slot, final_value) in final_slots {
                if let Some((value, version)) = overlay.storage(CONTRACT, U256::from(slot)) {
                    assert!(
                        version != creation || value == U256::from(final_value),
                        "step {steps}: slot {slot} reads {value} at the creation's version, \
                         which finally names {final_value}"
                    );
                }
            }
            let account = overlay.current_version(ReadKey::Account(CONTRACT));
            if account == creation {
                for (slot, final_value) in final_slots {
                    assert_eq!(
                        overlay.storage(CONTRACT, U256::from(slot)),
                        Some((U256::from(final_value), creation)),
                        "step {steps}: the account is published, so its slots must be"
                    );
                }
            }
        });
        assert_eq!(steps, 4, "a code, two slots and an account");
        for (slot, value) in final_slots {
            assert_eq!(
                overlay.storage(CONTRACT, U256::from(slot)),
                Some((U256::from(value), creation))
            );
        }
    }

    #[test]
    fn a_credit_lands_only_where_the_payment_would_not_change() {
        let recipient = Address::repeat_byte(7);
        let credit =
            |read_empty| Credit { recipient, read_version: 0, added: U256::from(5), read_empty };
        let funded = |balance: u64, nonce| AccountInfo {
            balance: U256::from(balance),
            nonce,
            ..AccountInfo::default()
        };
        // Before EIP-2780 the recipient's emptiness does not matter.
        assert_eq!(credited_account(None, &credit(None)), Some((U256::from(5), 0)));
        assert_eq!(credited_account(Some(funded(10, 3)), &credit(None)), Some((U256::from(15), 3)));
        // Code arrived: a payment would run it.
        let coded = AccountInfo { code_hash: B256::repeat_byte(1), ..funded(10, 0) };
        assert_eq!(credited_account(Some(coded), &credit(None)), None);
        // The sum passes 2^256.
        let rich = AccountInfo { balance: U256::MAX, ..AccountInfo::default() };
        assert_eq!(credited_account(Some(rich), &credit(None)), None);
        // With EIP-2780, paying into an empty account costs more: emptiness must not change.
        assert_eq!(credited_account(Some(funded(10, 0)), &credit(Some(true))), None);
        assert_eq!(credited_account(None, &credit(Some(false))), None);
        assert_eq!(credited_account(None, &credit(Some(true))), Some((U256::from(5), 0)));
        assert_eq!(
            credited_account(Some(funded(10, 0)), &credit(Some(false))),
            Some((U256::from(15), 0))
        );
    }

    #[test]
    fn token_selectors_are_the_abi_ones() {
        assert_eq!(TRANSFER_SELECTOR, selector("transfer(address,uint256)"));
        assert_eq!(TRANSFER_FROM_SELECTOR, selector("transferFrom(address,address,uint256)"));
        assert_eq!(APPROVE_SELECTOR, selector("approve(address,uint256)"));
    }

    fn call(sender: u32, to: Address, input: &[u8]) -> RecoveredTx {
        let (secret, _) = derive_key(7, sender);
        let tx = TxEip1559 {
            chain_id: 1,
            gas_limit: 100_000,
            max_fee_per_gas: 10,
            to: TxKind::Call(to),
            input: Bytes::copy_from_slice(input),
            ..Default::default()
        };
        intake(&[sign_and_encode(tx, &secret)]).unwrap().remove(0)
    }

    #[test]
    fn calls_are_paired_with_the_last_earlier_call_to_their_contract() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let beneficiary = Address::repeat_byte(0xc);
        let transactions = [
            call(0, a, &[1]),
            call(1, a, &[]), // no call data: a plain transfer, outside the pairing
            call(2, b, &[2]),
            call(3, a, &[3]),
            call(4, a, &[4]), // simulated below: its prediction names its storage
            call(5, a, &[5]),
        ];
        let mut predictions: Vec<Prediction> =
            transactions.iter().map(|tx| Prediction::from_fields(tx, beneficiary)).collect();
        let sender = transactions[4].signer();
        let keys = vec![ReadKey::Account(sender), ReadKey::Account(a)];
        predictions[4] = Prediction::new(sender, beneficiary, keys.clone(), keys, false, true);
        assert_eq!(
            soft_predecessors(&transactions, &predictions),
            [None, None, None, Some(0), None, Some(4)]
        );
    }

    /// ERC-20 call data: `selector` then each address as a word, then an amount.
    fn token_call(selector: [u8; 4], addresses: &[Address]) -> Vec<u8> {
        let mut input = selector.to_vec();
        for address in addresses {
            input.extend_from_slice(&[0; 12]);
            input.extend_from_slice(address.as_slice());
        }
        input.extend_from_slice(&[7; 32]);
        input
    }

    #[test]
    fn token_calls_are_paired_only_through_a_common_party() {
        let token = Address::repeat_byte(0x70);
        let holder = |byte: u8| Address::repeat_byte(byte);
        let transactions = [
            call(10, token, &token_call(TRANSFER_SELECTOR, &[holder(1)])),
            call(11, token, &token_call(TRANSFER_SELECTOR, &[holder(2)])), // nothing in common
            call(12, token, &token_call(TRANSFER_SELECTOR, &[holder(1)])), // same recipient as 0
            call(13, token, &token_call(TRANSFER_FROM_SELECTOR, &[holder(2), holder(3)])), // 2 as in 1
            call(14, token, &[0xde, 0xad, 0xbe, 0xef]), // another call: after all
            call(15, token, &token_call(TRANSFER_SELECTOR, &[holder(4)])), // after the other call
        ];
        let predictions: Vec<Prediction> = transactions
            .iter()
            .map(|tx| Prediction::from_fields(tx, Address::repeat_byte(0xc)))
            .collect();
        assert_eq!(
            soft_predecessors(&transactions, &predictions),
            [None, None, Some(0), Some(1), Some(3), Some(4)]
        );
    }
}
