//! A chain of produced blocks on top of a state store.
//!
//! [`DevChain`] builds each next header (number, timestamp, EIP-1559 base fee, EIP-4844 excess
//! blob gas, parent hash), refuses a block whose blobs exceed the fork's maximum, executes the
//! block's transactions, fills in the outputs (gas used, blob gas used, receipts root, logs
//! bloom, requests hash, and a state root), commits the changes with the block's hash, and
//! moves on. The header's `state_root` is the store's own root (QMDB or in-memory), not a
//! Merkle-Patricia root.
//!
//! Which root a header carries is a property of the chain ([`HeaderRoot`]). With
//! [`HeaderRoot::Own`], as on Ethereum, it is the root after the block itself, so the next block
//! cannot start until the store has Merkleized this one: the next block's execution reads this
//! block's hash (EIP-2935 history, `BLOCKHASH`, and here also the beacon root and `PREVRANDAO`).
//! With [`HeaderRoot::Parent`] a header carries the root after its parent, as in chains with a
//! delayed state root: every block's root is still computed and committed to (by the next
//! header), but a block's hash is known as soon as it has executed, and with a
//! [`SharedCommit`] store ([`DevChain::pipelined`]) the commit of block N runs in the
//! background while block N+1 executes, reading N's writes from memory ([`crate::pipeline`]).
//!
//! A pipelined block is sealed (its header and hash returned) before its state is durable: the
//! store holds it once the next seal, or [`DevChain::settle`], has returned. After a crash the
//! store reopens at an earlier block, and the blocks after it are executed again from their
//! transactions. A background commit that fails is reported by the next seal or settle, and the
//! chain then refuses every later block (QMDB also marks itself unusable until reopened).

use crate::{
    chain::ChainSpec,
    genesis::{genesis_changes, system_contracts},
    intake::RecoveredTx,
    parallel::{
        overlay::FrozenOverlay, predict, runtime::run_only_when_idle, schedule_block,
        ParallelExecutor, ParallelStats, Prediction, PredictionMode,
    },
    pipeline::{Layered, RecentBlock},
    sequential::{blob_params, evm_env, execute_block, BlockInput, BlockOutcome},
    trie::{ordered_trie_root, OrderedTrie},
    ExecutionError,
};
use alloy_consensus::{
    constants::EMPTY_WITHDRAWALS, Header, Transaction as _, EMPTY_OMMER_ROOT_HASH,
};
use alloy_eips::{eip1559::BaseFeeParams, eip2718::Encodable2718, eip7685::EMPTY_REQUESTS_HASH};
use alloy_primitives::{Address, B256};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::Instant,
};
use zero_fixtures::GenesisAccount;
use zero_scheduler::{ScheduleMode, ScheduleStats};
use zero_state::{BlockChanges, SharedCommit, StateCommit, StateError, StateReader};

/// Timestamp of the dev chain's genesis block.
pub const GENESIS_TIMESTAMP: u64 = 1_700_000_000;
/// Seconds between blocks.
pub const BLOCK_TIME: u64 = 2;
/// Base fee of the genesis block: 1 gwei.
pub const GENESIS_BASE_FEE: u64 = 1_000_000_000;

/// Which state root a header carries (module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeaderRoot {
    /// The root after the block itself.
    #[default]
    Own,
    /// The root after the block's parent, so that Merkleization can overlap the next block.
    Parent,
}

impl HeaderRoot {
    /// Name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Parent => "parent",
        }
    }
}

/// A transaction as the transactions trie holds it.
fn encode_transaction(tx: &RecoveredTx, out: &mut Vec<u8>) {
    tx.inner().encode_2718(out);
}

/// A commit running in the background, and the writes it is committing, for readers meanwhile.
struct InFlight {
    commit: JoinHandle<Result<B256, CommitFailure>>,
    recent: RecentBlock,
}

/// Starts committing a block's changes and then its hash; monomorphised where the store is known
/// to be a [`SharedCommit`].
type SpawnCommit<S> = fn(Arc<S>, BlockChanges, B256) -> JoinHandle<Result<B256, CommitFailure>>;

/// Which step of committing a block failed.
#[derive(Debug)]
enum CommitFailure {
    /// Its changes: the store keeps the block before.
    Changes(StateError),
    /// The record of its hash, after its changes were committed: the store holds the block
    /// without it.
    Hash(StateError),
}

impl CommitFailure {
    /// Why the chain cannot go on after block `number` failed so, and what to do.
    fn refusal(&self, number: u64) -> String {
        match self {
            Self::Changes(error) => format!(
                "the commit of block {number} failed ({error}), so the chain cannot go on; \
                 reopen the store, which recovers its last committed block, and build from there"
            ),
            Self::Hash(error) => format!(
                "block {number} was committed but its hash was not recorded ({error}), so the \
                 chain cannot go on: blocks after it would not find that hash; start again from \
                 a copy of the store taken before block {number}"
            ),
        }
    }

    fn into_error(self) -> StateError {
        match self {
            Self::Changes(error) | Self::Hash(error) => error,
        }
    }
}

fn spawn_commit<S: SharedCommit + 'static>(
    state: Arc<S>,
    changes: BlockChanges,
    hash: B256,
) -> JoinHandle<Result<B256, CommitFailure>> {
    thread::spawn(move || {
        let root = state.commit_block_shared(&changes).map_err(CommitFailure::Changes)?;
        state.record_block_hash_shared(changes.height, hash).map_err(CommitFailure::Hash)?;
        Ok(root)
    })
}

/// A produced chain: the state store and the last block's header.
pub struct DevChain<S> {
    chain: ChainSpec,
    /// Shared with the background commit while one runs; otherwise held only here.
    state: Arc<S>,
    parent: Header,
    /// `parent.hash_slow()`, computed once when the parent was sealed.
    parent_hash: B256,
    gas_limit: u64,
    header_root: HeaderRoot,
    /// Set by [`DevChain::pipelined`].
    spawn_commit: Option<SpawnCommit<S>>,
    in_flight: Option<InFlight>,
    /// Why no block may be built any more, once a block's commit failed (in the background, or
    /// its hash record after a synchronous commit): the store and the head disagree.
    failed_commit: Option<String>,
}

impl<S> std::fmt::Debug for DevChain<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevChain")
            .field("head", &self.parent.number)
            .field("header_root", &self.header_root)
            .field("pipelined", &self.spawn_commit.is_some())
            .field("commit_in_flight", &self.in_flight.is_some())
            .finish_non_exhaustive()
    }
}

// A commit left running would outlive the chain, and perhaps the directory its store is in.
impl<S> Drop for DevChain<S> {
    fn drop(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            // Its result has no one left to go to; a failure poisons only the store it wrote.
            let _ = in_flight.commit.join();
        }
    }
}

impl<S: Clone> DevChain<S> {
    /// A copy of the chain with its own copy of the store, for forking a prepared state (not
    /// pipelined). Refused while a commit runs in the background: the store is then mid-block.
    pub fn try_clone(&self) -> Result<Self, ExecutionError> {
        if self.in_flight.is_some() {
            return Err(ExecutionError::Pipeline(
                "cannot copy a chain while a block commits in the background; settle it first"
                    .into(),
            ));
        }
        Ok(Self {
            chain: self.chain.clone(),
            state: Arc::new(S::clone(&self.state)),
            parent: self.parent.clone(),
            parent_hash: self.parent_hash,
            gas_limit: self.gas_limit,
            header_root: self.header_root,
            spawn_commit: self.spawn_commit,
            in_flight: None,
            failed_commit: None,
        })
    }
}

impl<S: SharedCommit + 'static> DevChain<S> {
    /// Commits each block in the background while the next one executes. Needs
    /// [`HeaderRoot::Parent`]: with `Own`, the next block needs this block's root first.
    pub fn pipelined(mut self) -> Result<Self, ExecutionError> {
        if self.header_root != HeaderRoot::Parent {
            return Err(ExecutionError::Pipeline(
                "pipelined commits need headers that carry their parent's state root".into(),
            ));
        }
        self.spawn_commit = Some(spawn_commit::<S>);
        Ok(self)
    }
}

/// How a block went through the FAFO engine.
#[derive(Debug, Clone)]
pub struct FafoBlockReport {
    /// The transactions in the order FAFO chose (the block's order).
    pub transactions: Vec<RecoveredTx>,
    /// Prediction (ParaLyze) time, in seconds.
    pub predict_seconds: f64,
    /// Task building, framing and planning time, in seconds.
    pub schedule_seconds: f64,
    /// Parallel execution time (system calls, transactions, post-block changes, and the
    /// transactions root, whose leaves are hashed in idle time during execution), in seconds.
    pub execute_seconds: f64,
    /// State commit (Merkleization) time, in seconds.
    pub commit_seconds: f64,
    /// Scheduler figures.
    pub schedule: ScheduleStats,
    /// Executor figures.
    pub execution: ParallelStats,
}

/// One produced block.
#[derive(Debug, Clone)]
pub struct ProducedBlock {
    /// The sealed header, outputs filled in.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
    /// Receipts, changes and the rest of the execution outcome.
    pub outcome: BlockOutcome,
}

impl<S: StateReader + StateCommit> DevChain<S> {
    /// Commits `accounts` plus the system contracts as block 0 of `state` and starts a chain
    /// whose blocks have `gas_limit`.
    pub fn genesis(
        chain: ChainSpec,
        state: S,
        accounts: &[GenesisAccount],
        gas_limit: u64,
    ) -> Result<Self, ExecutionError> {
        Self::genesis_with(chain, state, accounts, gas_limit, HeaderRoot::Own)
    }

    /// [`DevChain::genesis`] for a chain whose headers carry `header_root`. The genesis header
    /// carries the genesis root either way.
    pub fn genesis_with(
        chain: ChainSpec,
        mut state: S,
        accounts: &[GenesisAccount],
        gas_limit: u64,
        header_root: HeaderRoot,
    ) -> Result<Self, ExecutionError> {
        let mut all = system_contracts();
        all.extend_from_slice(accounts);
        let cancun = blob_params(&chain, GENESIS_TIMESTAMP).is_some();
        let mut header = Header {
            number: 0,
            timestamp: GENESIS_TIMESTAMP,
            gas_limit,
            base_fee_per_gas: Some(GENESIS_BASE_FEE),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            blob_gas_used: cancun.then_some(0),
            excess_blob_gas: cancun.then_some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            ..Header::default()
        };
        // A header's hash covers its state root, so commit first, then record the hash.
        header.state_root = state.commit_block(&genesis_changes(0, &all, &[]))?;
        let parent_hash = header.hash_slow();
        state.record_block_hash(0, parent_hash)?;
        Ok(Self {
            chain,
            state: Arc::new(state),
            parent: header,
            parent_hash,
            gas_limit,
            header_root,
            spawn_commit: None,
            in_flight: None,
            failed_commit: None,
        })
    }

    /// The last sealed header.
    pub fn head(&self) -> &Header {
        &self.parent
    }

    /// The state store. While a background commit runs, it may not yet hold the last block:
    /// [`DevChain::state_view`] reads the state after it, [`DevChain::settle`] waits for it.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state after the last sealed block, whether or not its commit has finished.
    pub fn state_view(&self) -> Layered<'_, S> {
        Layered::new(self.in_flight.as_ref().map(|f| &f.recent), &self.state)
    }

    /// Waits for the background commit, if one runs, and returns the root after the last sealed
    /// block. A failed commit is returned here (and the chain cannot go on).
    pub fn settle(&mut self) -> Result<B256, ExecutionError> {
        self.check_usable()?;
        if let Some(in_flight) = self.in_flight.take() {
            let committed = in_flight.commit.join();
            if let Err(error) = committed.unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
                self.failed_commit = Some(error.refusal(self.parent.number));
                return Err(error.into_error().into());
            }
        }
        Ok(self.state.state_root())
    }

    /// Refuses to build on a head whose commit failed (see [`Self::settle`] and
    /// [`Self::record_hash`]).
    fn check_usable(&self) -> Result<(), ExecutionError> {
        match &self.failed_commit {
            Some(refusal) => Err(ExecutionError::Pipeline(refusal.clone())),
            None => Ok(()),
        }
    }

    /// Records a block's hash after its synchronous commit. The store then already holds the
    /// block, so a failure here stops the chain as a failed background commit does: a retry of
    /// the block would be refused by the store, and a next block would lack this one's hash.
    fn record_hash(&mut self, number: u64, hash: B256) -> Result<(), ExecutionError> {
        let recorded = self.state_mut()?.record_block_hash(number, hash);
        recorded.map_err(|error| {
            let failure = CommitFailure::Hash(error);
            self.failed_commit = Some(failure.refusal(number));
            failure.into_error().into()
        })
    }

    /// The store for a synchronous commit: no background commit may hold it.
    fn state_mut(&mut self) -> Result<&mut S, ExecutionError> {
        Arc::get_mut(&mut self.state).ok_or_else(|| {
            ExecutionError::Pipeline("the store is still shared with a background commit".into())
        })
    }

    /// The header of the next block, outputs not yet filled in.
    pub fn next_header(&self, beneficiary: Address, transactions: &[RecoveredTx]) -> Header {
        Header {
            transactions_root: ordered_trie_root(transactions, encode_transaction),
            ..self.header_without_transactions(beneficiary)
        }
    }

    /// [`Self::next_header`] before its transactions root is known (it is left zero).
    fn header_without_transactions(&self, beneficiary: Address) -> Header {
        let parent = &self.parent;
        let parent_hash = self.parent_hash;
        let base_fee = BaseFeeParams::ethereum().next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            parent.base_fee_per_gas.unwrap_or(GENESIS_BASE_FEE),
        );
        let timestamp = parent.timestamp + BLOCK_TIME;
        // EIP-4844 / EIP-7691: the excess follows the parent's blob gas against the target (a
        // parent without blob fields counts as zero); no blob fields before Cancun.
        let excess_blob_gas = blob_params(&self.chain, timestamp)
            .map(|params| parent.next_block_excess_blob_gas(params).unwrap_or(0));
        Header {
            parent_hash,
            number: parent.number + 1,
            timestamp,
            beneficiary,
            gas_limit: self.gas_limit,
            base_fee_per_gas: Some(base_fee),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            // Filled in from the block's transactions when it is sealed.
            blob_gas_used: excess_blob_gas.map(|_| 0),
            excess_blob_gas,
            // A zone has no beacon chain; the parent hash stands in for the beacon root.
            parent_beacon_block_root: Some(parent_hash),
            // Filled in from the block's requests when it is sealed.
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            mix_hash: parent_hash,
            ..Header::default()
        }
    }

    /// Refuses a block whose transactions carry more blob gas than `header`'s fork allows
    /// (neither revm nor alloy-evm checks the block's total; a producer must), before it runs.
    fn check_blob_gas(
        &self,
        header: &Header,
        transactions: &[RecoveredTx],
    ) -> Result<(), ExecutionError> {
        let used = transactions.iter().filter_map(|tx| tx.blob_gas_used()).sum();
        self.check_blob_gas_used(header, used)
    }

    /// Refuses `used` blob gas above the maximum of `header`'s fork (0 before Cancun).
    fn check_blob_gas_used(&self, header: &Header, used: u64) -> Result<(), ExecutionError> {
        let max = blob_params(&self.chain, header.timestamp)
            .map_or(0, |params| params.max_blob_gas_per_block());
        if used > max {
            return Err(ExecutionError::BlobGas { number: header.number, used, max });
        }
        Ok(())
    }

    /// Executes `transactions` as the next block with the sequential oracle and commits it.
    pub fn produce_sequential(
        &mut self,
        beneficiary: Address,
        transactions: &[RecoveredTx],
    ) -> Result<ProducedBlock, ExecutionError> {
        self.check_usable()?;
        let header = self.next_header(beneficiary, transactions);
        self.check_blob_gas(&header, transactions)?;
        let input =
            BlockInput { header: &header, ommers: &[], withdrawals: Some(&[]), transactions };
        let outcome = execute_block(&self.chain, input, &self.state_view())?;
        self.seal_and_commit(header, outcome)
    }

    /// Produces the next block with the FAFO engine: predicts each transaction's access set
    /// against the current state, lets the framer choose the order (each sender's transactions
    /// keep their nonce order), executes in parallel under the dependency plan and commits. The
    /// block records the chosen order; executing that order sequentially gives the same block.
    pub fn produce_fafo(
        &mut self,
        beneficiary: Address,
        transactions: &[RecoveredTx],
        executor: &ParallelExecutor,
        prediction: PredictionMode,
    ) -> Result<(ProducedBlock, FafoBlockReport), ExecutionError> {
        // Before the simulations: a block over the blob maximum is refused at once.
        self.check_usable()?;
        self.check_blob_gas(&self.header_without_transactions(beneficiary), transactions)?;
        let started = Instant::now();
        let predictions = self.predict_next(beneficiary, transactions, executor, prediction)?;
        let predict_seconds = started.elapsed().as_secs_f64();
        let (block, mut report) =
            self.produce_fafo_predicted(beneficiary, transactions.to_vec(), predictions, executor)?;
        report.predict_seconds = predict_seconds;
        Ok((block, report))
    }

    /// Predicts the access sets of `transactions` (ParaLyze) against the state after the last
    /// sealed block, in the next block's environment: what a producer does as it admits them.
    pub fn predict_next(
        &self,
        beneficiary: Address,
        transactions: &[RecoveredTx],
        executor: &ParallelExecutor,
        prediction: PredictionMode,
    ) -> Result<Vec<Prediction>, ExecutionError> {
        let provisional = self.next_header(beneficiary, &[]);
        let env = evm_env(&self.chain, &provisional);
        predict(transactions, prediction, &env, beneficiary, &self.state_view(), executor.codes())
    }

    /// [`DevChain::produce_fafo`] with the access sets already predicted (one per transaction,
    /// in the same order; from any earlier state: validation catches what they miss). The
    /// transactions are taken, as a producer moves the ones it admitted into its block, and put
    /// in the block's order in place: a copy of a large block costs its scheduling step
    /// milliseconds (fresh memory to fault in) that the sequential engine never pays.
    pub fn produce_fafo_predicted(
        &mut self,
        beneficiary: Address,
        mut transactions: Vec<RecoveredTx>,
        mut predictions: Vec<Prediction>,
        executor: &ParallelExecutor,
    ) -> Result<(ProducedBlock, FafoBlockReport), ExecutionError> {
        if predictions.len() != transactions.len() {
            return Err(ExecutionError::Schedule(format!(
                "{} predictions for {} transactions",
                predictions.len(),
                transactions.len()
            )));
        }
        self.check_usable()?;
        let mut header = self.header_without_transactions(beneficiary);
        self.check_blob_gas(&header, &transactions)?;
        let state = self.state_view();
        let started = Instant::now();
        let schedule = schedule_block(&predictions, beneficiary, ScheduleMode::Producer);
        if !arrange(&schedule.order, transactions.len(), |a, b| {
            transactions.swap(a, b);
            predictions.swap(a, b);
        }) {
            return Err(ExecutionError::Schedule(format!(
                "the schedule's order of {} transactions is not a permutation of them",
                transactions.len()
            )));
        }
        let (ordered, ordered_predictions) = (transactions, predictions);
        let schedule_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        // Execution does not read the transactions root: its leaves are hashed while the block
        // executes, by a thread that runs only when a core would otherwise wait (on a
        // dependency, or for the block's last commits), and the root is finished after.
        let transactions = OrderedTrie::new(&ordered, encode_transaction);
        let stop = AtomicBool::new(false);
        let executed = thread::scope(|scope| {
            scope.spawn(|| {
                run_only_when_idle();
                transactions.hash_leaves(&stop);
            });
            let input = BlockInput {
                header: &header,
                ommers: &[],
                withdrawals: Some(&[]),
                transactions: &ordered,
            };
            let executed = executor.execute_block_keeping_overlay(
                &self.chain,
                input,
                &ordered_predictions,
                &schedule.plan,
                &state,
            );
            stop.store(true, Ordering::Relaxed);
            executed
        });
        let (outcome, execution, overlay) = executed?;
        header.transactions_root = transactions.root();
        let execute_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let block = self.seal_and_commit_with(header, outcome, overlay)?;
        let commit_seconds = started.elapsed().as_secs_f64();
        let report = FafoBlockReport {
            transactions: ordered,
            predict_seconds: 0.0,
            schedule_seconds,
            execute_seconds,
            commit_seconds,
            schedule: schedule.stats,
            execution,
        };
        Ok((block, report))
    }

    /// Fills the header's outputs from `outcome`, commits the changes and the block's hash (in
    /// the background when pipelined), and makes the block the new head.
    pub fn seal_and_commit(
        &mut self,
        header: Header,
        outcome: BlockOutcome,
    ) -> Result<ProducedBlock, ExecutionError> {
        self.seal_and_commit_with(header, outcome, None)
    }

    /// [`Self::seal_and_commit`]; `overlay`, the parallel executor's final overlay of the block
    /// when its change set came from it, serves the next block's reads while the commit runs
    /// (else the change set is indexed for them).
    fn seal_and_commit_with(
        &mut self,
        mut header: Header,
        outcome: BlockOutcome,
        overlay: Option<FrozenOverlay>,
    ) -> Result<ProducedBlock, ExecutionError> {
        self.check_usable()?;
        header.gas_used = outcome.gas_used;
        if header.blob_gas_used.is_some() {
            // The producers checked their transactions; an outcome sealed directly is checked here.
            self.check_blob_gas_used(&header, outcome.blob_gas_used)?;
            header.blob_gas_used = Some(outcome.blob_gas_used);
        }
        header.receipts_root = outcome.receipts_root;
        header.logs_bloom = outcome.logs_bloom;
        if header.requests_hash.is_some() {
            header.requests_hash = Some(outcome.requests.requests_hash());
        }
        let hash = match self.header_root {
            HeaderRoot::Own => {
                header.state_root = self.state_mut()?.commit_block(&outcome.changes)?;
                let hash = header.hash_slow();
                self.record_hash(header.number, hash)?;
                hash
            }
            HeaderRoot::Parent => {
                header.state_root = self.settle()?;
                let hash = header.hash_slow();
                match self.spawn_commit {
                    Some(spawn) => {
                        // The commit starts first, so that it runs on another core while this
                        // one readies the block's writes for the next block's reads (the
                        // parallel executor's overlay needs no work; a change set is indexed).
                        let commit = spawn(Arc::clone(&self.state), outcome.changes.clone(), hash);
                        let recent = match overlay {
                            Some(overlay) => {
                                RecentBlock::from_overlay(header.number, hash, overlay)
                            }
                            None => RecentBlock::new(&outcome.changes, hash),
                        };
                        self.in_flight = Some(InFlight { commit, recent });
                    }
                    None => {
                        self.state_mut()?.commit_block(&outcome.changes)?;
                        self.record_hash(header.number, hash)?;
                    }
                }
                hash
            }
        };
        self.parent = header.clone();
        self.parent_hash = hash;
        Ok(ProducedBlock { header, hash, outcome })
    }
}

/// Puts items in `order` in place (`order[i]` is the current position of the item that goes to
/// position `i`) through `swap`, which exchanges two positions of every slice being arranged: one
/// walk along each cycle of the permutation, nothing copied. `false`, with nothing moved, when
/// `order` is not a permutation of `0..len`.
fn arrange(order: &[usize], len: usize, mut swap: impl FnMut(usize, usize)) -> bool {
    if order.len() != len {
        return false;
    }
    let mut pending = vec![false; len];
    for &index in order {
        if index >= len || std::mem::replace(&mut pending[index], true) {
            return false;
        }
    }
    // Every position is pending now; walking a cycle settles each of its positions.
    for start in 0..len {
        let mut at = start;
        while std::mem::replace(&mut pending[at], false) {
            let from = order[at];
            if from == start {
                break;
            }
            swap(at, from);
            at = from;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::arrange;

    /// `arrange` puts every item where the order says, for every permutation of up to five
    /// items, and moves nothing when the order is not a permutation.
    #[test]
    fn arrange_applies_a_permutation_in_place() {
        fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items];
            }
            (0..items.len())
                .flat_map(|first| {
                    let mut rest = items.clone();
                    let head = rest.remove(first);
                    permutations(rest).into_iter().map(move |mut tail| {
                        tail.insert(0, head);
                        tail
                    })
                })
                .collect()
        }
        for len in 0..=5 {
            for order in permutations((0..len).collect()) {
                let original: Vec<char> = (0..len).map(|i| (b'a' + i as u8) as char).collect();
                let (mut letters, mut numbers) = (original.clone(), (0..len).collect::<Vec<_>>());
                assert!(arrange(&order, len, |a, b| {
                    letters.swap(a, b);
                    numbers.swap(a, b);
                }));
                let expected: Vec<char> = order.iter().map(|&i| original[i]).collect();
                assert_eq!(letters, expected, "{order:?}");
                assert_eq!(numbers, order);
            }
        }
        for (order, len) in [(vec![0, 0, 1], 3), (vec![0, 3, 1], 3), (vec![1, 0], 3)] {
            let mut swaps = 0;
            assert!(!arrange(&order, len, |_, _| swaps += 1), "{order:?}");
            assert_eq!(swaps, 0);
        }
    }
}
