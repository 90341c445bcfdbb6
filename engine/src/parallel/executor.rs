//! [`ParallelExecutor`]: one block on pinned workers, committed in block order.
//!
//! 1. The block's system calls run first, on alloy-evm's block executor over the store; their
//!    writes seed the [`BlockOverlay`].
//! 2. Tasks are released by the dependency plan ([`WatermarkRelease`]): a task starts once every
//!    task up to its dependency has *committed*. Ready tasks sit in a global injector (the
//!    initial ones, in block order) or in the deque of the worker that released them; an idle
//!    worker steals, from its own NUMA node first.
//! 3. A worker runs its transaction with revm over the overlay, the beneficiary's fee held back
//!    ([`DeferredFeeHandler`]), and records the version of every value it read.
//! 4. Worker 0 (the calling thread) is also the committer: between tasks it commits every
//!    finished transaction from the commit cursor on, in block order (the reorder buffer). Committing
//!    validates the reads — each must still be the latest committed version — and re-executes
//!    the transaction on the spot when one is stale (a misprediction somewhere let it run too
//!    early); at that point every earlier transaction has committed, so the re-run is exact.
//!    It then pays the fee, publishes the writes to the overlay, and hands the result to the
//!    same alloy-evm block executor the sequential oracle uses, which builds the receipt and
//!    accumulates the block's state changes.
//! 5. After the last transaction, that executor's post-block changes (withdrawals, rewards,
//!    requests) and change set come out exactly as in [`crate::sequential::execute_block`].

use super::{
    handler::{credit_fee, DeferredFeeHandler},
    overlay::{version_of, BlockOverlay, Version, PRE_EXECUTION},
    predict::{written_keys, Prediction},
    runtime::Topology,
    view::{account_info, CodeCache, WorkerView},
};
use crate::{
    chain::ChainSpec,
    database::{DatabaseError, StateDatabase},
    intake::RecoveredTx,
    sequential::{
        block_outcome, evm_env, execution_context, executor_factory, BlockInput, BlockOutcome,
    },
    ExecutionError,
};
use alloy_consensus::{Transaction as _, TxType};
use alloy_evm::{
    block::{BlockExecutionError, BlockExecutor, BlockExecutorFactory, BlockValidationError},
    eth::{EthEvmContext, EthTxResult},
    precompiles::PrecompilesMap,
    EthEvmFactory, Evm as _, EvmFactory, FromRecoveredTx,
};
use alloy_primitives::Address;
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use revm::{
    context::{result::HaltReason, ContextSetters, TxEnv},
    context_interface::{
        result::{EVMError, ResultAndState},
        Cfg, ContextTr, JournalTr,
    },
    database::State,
    handler::{instructions::EthInstructions, EthFrame, Handler, MainnetHandler},
    inspector::NoOpInspector,
    interpreter::interpreter::EthInterpreter,
    primitives::hardfork::SpecId,
    state::EvmState,
};
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Mutex,
    },
    time::Instant,
};
use zero_scheduler::{DependencyPlan, WatermarkRelease};
use zero_state::StateReader;

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
    /// Transactions the plan made wait for an earlier one.
    pub dependent: u64,
    /// Longest dependency chain of the plan, in transactions.
    pub critical_path: u64,
    /// Time worker 0 spent committing (validation, re-execution, fee, overlay, receipt and
    /// change-set bookkeeping), in seconds: the serial part of the block.
    pub commit_seconds: f64,
    /// Time all workers spent running transactions, summed, in seconds.
    pub execute_seconds: f64,
}

/// The parallel executor: its workers' placement and the code cache they share across blocks.
pub struct ParallelExecutor {
    topology: Topology,
    codes: CodeCache,
}

/// One finished execution of one transaction, waiting in the reorder buffer.
struct TxRun {
    result: Result<ResultAndState<HaltReason>, EVMError<DatabaseError>>,
    reads: Vec<(super::overlay::ReadKey, Version)>,
    /// The deferred fee, when the run held it back.
    fee: Option<alloy_primitives::U256>,
    /// Run with revm's full handler (beneficiary paid inside).
    full_handler: bool,
}

/// Everything workers and the committer share for one block.
struct BlockShared<'a, S> {
    transactions: &'a [RecoveredTx],
    predictions: &'a [Prediction],
    overlay: &'a BlockOverlay,
    store: &'a S,
    slots: Vec<Mutex<Option<TxRun>>>,
    /// Nanoseconds all workers spent in `run_transaction`.
    busy_nanos: AtomicU64,
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

/// The commit side: the reorder cursor and alloy-evm's block executor.
struct Committer<E> {
    executor: E,
    next: usize,
    cumulative_gas: u64,
    mispredicted: u64,
    reexecuted: u64,
    commit_nanos: u64,
    error: Option<ExecutionError>,
}

impl ParallelExecutor {
    /// An executor with `threads` workers (default: one per core).
    pub fn new(threads: Option<usize>) -> Self {
        Self { topology: Topology::detect(threads), codes: CodeCache::default() }
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

        let mut db = State::builder()
            .with_database_ref(StateDatabase::new(state))
            .with_bundle_update()
            .build();
        let factory = executor_factory(chain);
        let evm = factory.evm_factory().create_evm(&mut db, env.clone());
        let mut executor = factory.create_executor(evm, execution_context(&input));
        executor.apply_pre_execution_changes().map_err(block_error)?;

        // The system calls' writes are the first layer every transaction sees.
        let overlay = BlockOverlay::new();
        if let Some(transitions) = executor.evm_mut().db_mut().transition_state.as_ref() {
            for (address, transition) in &transitions.transitions {
                let info = transition.info.clone().map(|mut info| {
                    info.code = None;
                    info
                });
                overlay.write_account(*address, info, PRE_EXECUTION, false);
                for (slot, value) in &transition.storage {
                    overlay.write_storage(*address, *slot, value.present_value, PRE_EXECUTION);
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
        let shared = BlockShared {
            transactions: input.transactions,
            predictions,
            overlay: &overlay,
            store: state,
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            busy_nanos: AtomicU64::new(0),
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
            executor,
            next: 0,
            cumulative_gas: 0,
            mispredicted: 0,
            reexecuted: 0,
            commit_nanos: 0,
            error: None,
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
            std::thread::scope(|scope| {
                for (offset, local) in workers.enumerate() {
                    let index = offset + 1;
                    let (shared, injector, stealers) = (&shared, &injector, &stealers);
                    let env = env.clone();
                    let steal_order = steal_order(index);
                    let core = self.topology.workers[index].0;
                    scope.spawn(move || {
                        let _guard = FailOnPanic(&shared.failed);
                        if let Some(core) = core {
                            core_affinity::set_for_current(core);
                        }
                        let view = WorkerView::new(shared.overlay, shared.store, &self.codes);
                        let mut evm = EthEvmFactory::default().create_evm(view, env).into_inner();
                        let sources = TaskSources {
                            local: &local,
                            injector,
                            stealers,
                            steal_order: &steal_order,
                        };
                        execute_tasks(shared, &mut evm, &sources);
                    });
                }
                // The calling thread is worker 0 and the only committer: alloy-evm's block
                // executor is not `Send`, so the commit stays where it was built.
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
            });
        }

        if let Some(error) = committer.error {
            return Err(error);
        }
        let stats = ParallelStats {
            threads: self.topology.threads(),
            mispredicted: committer.mispredicted,
            reexecuted: committer.reexecuted,
            dependent: plan.dependencies().iter().filter(|d| d.is_some()).count() as u64,
            critical_path: plan.critical_path(),
            commit_seconds: committer.commit_nanos as f64 * 1e-9,
            execute_seconds: shared.busy_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        };
        let (_, result) = committer.executor.finish().map_err(block_error)?;
        Ok((block_outcome(number, result, &mut db), stats))
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
}

/// Runs the task at `position` and leaves its result in the reorder buffer.
fn execute_task<S: StateReader>(
    shared: &BlockShared<'_, S>,
    evm: &mut WorkerEvm<'_, S>,
    position: usize,
) {
    let full_handler = shared.predictions[position].touches_beneficiary;
    let started = Instant::now();
    let run = run_transaction(evm, &shared.transactions[position], full_handler);
    shared.busy_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
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
    while shared.committed.load(Ordering::Acquire) < count && !shared.failed.load(Ordering::Acquire)
    {
        match sources.next() {
            Some(position) => {
                idle = 0;
                execute_task(shared, evm, position);
            }
            None => idle_wait(&mut idle),
        }
    }
}

/// Worker 0's loop: commit whatever is ready at the cursor, else run a task.
fn commit_and_execute<S: StateReader, E>(
    shared: &BlockShared<'_, S>,
    committer: &mut Committer<E>,
    evm: &mut WorkerEvm<'_, S>,
    sources: &TaskSources<'_>,
) where
    E: BlockExecutor<Result = EthTxResult<HaltReason, TxType>>,
{
    let count = shared.transactions.len();
    let mut idle = 0u32;
    loop {
        let before = committer.next;
        let next = committer.commit_ready(shared, evm, sources.local);
        if next >= count || shared.failed.load(Ordering::Acquire) {
            return;
        }
        match sources.next() {
            Some(position) => {
                idle = 0;
                execute_task(shared, evm, position);
            }
            None if next == before => idle_wait(&mut idle),
            None => idle = 0,
        }
    }
}

/// Runs one transaction on a worker's revm: with revm's full handler, or with the fee held back.
fn run_transaction<S: StateReader>(
    evm: &mut WorkerEvm<'_, S>,
    tx: &RecoveredTx,
    full_handler: bool,
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
    let state = evm.ctx.journal_mut().finalize();
    let reads = evm.ctx.journal_mut().db_mut().take_reads();
    TxRun {
        result: outcome.map(|result| ResultAndState::new(result, state)),
        reads,
        fee,
        full_handler,
    }
}

impl<E> Committer<E>
where
    E: BlockExecutor<Result = EthTxResult<HaltReason, TxType>>,
{
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
            // Released tasks go to this worker's deque; idle workers steal them.
            if let Err(error) = shared.release.complete(position, &mut |ready| local.push(ready)) {
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
        let stale =
            run.reads.iter().any(|&(key, version)| shared.overlay.current_version(key) != version);
        let touched_beneficiary = !run.full_handler
            && run.result.as_ref().is_ok_and(|done| done.state.contains_key(&beneficiary));
        if stale || touched_beneficiary {
            // Every earlier transaction has committed: this run sees exactly the sequential state.
            self.reexecuted += 1;
            run = run_transaction(evm, tx, true);
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
        let ResultAndState { result, mut state } = run.result.map_err(|error| {
            ExecutionError::Block { number, source: BlockExecutionError::evm(error, *tx.tx_hash()) }
        })?;

        let written = written_keys(&state);
        if !shared.predictions[position].covers(
            run.reads.iter().map(|(key, _)| *key),
            written.iter().copied(),
            beneficiary,
        ) {
            self.mispredicted += 1;
        }
        if let Some(fee) = run.fee {
            let current = match shared.overlay.account(beneficiary) {
                Some(entry) => entry.info,
                None => shared.store.account(beneficiary)?.map(account_info),
            };
            credit_fee(&mut state, beneficiary, current, fee, shared.spec);
        }
        publish(shared, &state, version_of(position))?;

        self.cumulative_gas += result.gas().tx_gas_used();
        self.executor.commit_transaction(EthTxResult {
            result: ResultAndState::new(result, state),
            blob_gas_used: tx.blob_gas_used().unwrap_or_default(),
            tx_type: tx.tx_type(),
        });
        Ok(())
    }
}

/// Makes a committed transaction's writes visible to later ones, with the meaning revm's
/// `State` gives them: a selfdestructed account is gone with its storage, a created one starts
/// from empty storage, a touched empty account is removed (EIP-161; revm has already normalised
/// pre-EIP-161 blocks). Values that did not change keep their version, so a transaction that
/// read them before stays valid.
fn publish<S: StateReader>(
    shared: &BlockShared<'_, S>,
    state: &EvmState,
    version: Version,
) -> Result<(), ExecutionError> {
    let overlay = shared.overlay;
    for (address, account) in state {
        if !account.is_touched() {
            continue;
        }
        let destroyed = account.is_selfdestructed();
        let created = !destroyed && account.is_created();
        let info = if destroyed || (!created && account.is_empty()) {
            None
        } else {
            let mut info = account.info.clone();
            if let Some(code) = info.code.take() {
                if created {
                    overlay.insert_code(info.code_hash, code);
                }
            }
            Some(info)
        };
        let current = match overlay.account(*address) {
            Some(entry) => entry.info,
            None => shared.store.account(*address)?.map(account_info),
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
            overlay.write_account(*address, info, version, destroyed || created);
        }
        if !destroyed {
            for (slot, value) in account.changed_storage_slots() {
                overlay.write_storage(*address, *slot, value.present_value, version);
            }
        }
    }
    Ok(())
}
