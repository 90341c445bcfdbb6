//! [`DependencyPlan`] (ParaScheduler): for each task in block order, the latest earlier task whose
//! exact access set conflicts with it — its *earliest-executable index*.
//!
//! The plan is exact: it is computed from the exact access sets, never from the Bloom filter. For
//! every key it keeps the last task that wrote it and the last task that read or wrote it; a task's
//! dependency is the latest last-writer of its read keys and the latest last-accessor of its
//! written keys. Together with the done-watermark ([`WatermarkRelease`](crate::WatermarkRelease))
//! that is enough: a task starts only when every task up to and including its dependency is done,
//! which covers *every* earlier conflicting task, not only the latest.
//!
//! Rules on top of conflicts, both expressed as ordinary dependencies:
//! - per-sender order: a sender's key is read-write in each of its tasks ([`Task::new`]), so a
//!   sender's task always depends on (at least) the sender's previous task;
//! - coinbase barrier: a task whose access set holds the coinbase key waits for every earlier task
//!   (its dependency is the previous position), so it sees all fees credited before it;
//! - credits ([`AccessSet::credits`]): a task that only adds to a key gets no dependency from it,
//!   but counts as its latest writer, so a later reader or writer of the key waits for it (and,
//!   through the watermark, for every earlier credit). Payments into one account then run side
//!   by side; the executor adds each to the balance current when it commits.
//!
//! The builder is incremental, so producer mode can plan each flushed frame as it comes out of the
//! [`Framer`](crate::Framer) and hand its tasks to the releaser straight away.

use crate::access_set::{AccessSet, KeyPrefix};
use crate::key_hasher::KeyMap;
use crate::task::Task;

/// What the plan remembers about one key, in 16 bytes so the table stays cache-friendly.
/// Positions are stored as `position + 1`, with 0 for "none"; depths saturate.
#[derive(Clone, Copy, Debug, Default)]
struct KeyHistory {
    /// Latest task that wrote the key (a credit counts).
    last_writer: u32,
    /// Latest task that read or wrote the key.
    last_access: u32,
    /// Conflict depth of `last_writer`; after credits, the deepest of the credits since the
    /// last plain write and that write.
    writer_depth: u32,
    /// Largest conflict depth of the readers since `last_writer`.
    reader_depth: u32,
}

/// Decodes a stored position (see [`KeyHistory`]).
fn stored_position(stored: u32) -> Option<usize> {
    (stored as usize).checked_sub(1)
}

/// Builds a [`DependencyPlan`] one task at a time, in block order.
///
/// ```
/// use zero_scheduler::{AccessSet, PlanBuilder, SenderId, Task};
///
/// let writer = Task::single(SenderId([1; 10]), AccessSet::new([], [[9; 10]]));
/// let reader = Task::single(SenderId([2; 10]), AccessSet::new([[9; 10]], []));
/// let unrelated = Task::single(SenderId([3; 10]), AccessSet::new([[8; 10]], []));
/// let mut builder = PlanBuilder::new(None);
/// assert_eq!(builder.push(&writer), None);
/// assert_eq!(builder.push(&unrelated), None);
/// assert_eq!(builder.push(&reader), Some(0));
/// let plan = builder.finish();
/// assert_eq!(plan.dependencies(), &[None, None, Some(0)]);
/// assert_eq!(plan.critical_path(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct PlanBuilder {
    coinbase: Option<KeyPrefix>,
    histories: KeyMap<KeyPrefix, KeyHistory>,
    dependencies: Vec<Option<usize>>,
    /// `prefix_finish[i]`: latest finish time, in transactions, of tasks `0..=i` when every task
    /// starts as soon as the watermark allows.
    prefix_finish: Vec<u64>,
    /// Largest conflict depth so far.
    deepest_conflict_chain: u64,
    transactions: u64,
}

impl PlanBuilder {
    /// An empty plan; `coinbase` is the key prefix of the block's beneficiary account, if any.
    pub fn new(coinbase: Option<KeyPrefix>) -> Self {
        Self::with_capacity(coinbase, 0, 0)
    }

    /// An empty plan with room for `tasks` tasks touching `keys` distinct keys, so that planning
    /// a block of known size does not grow its tables on the way.
    pub fn with_capacity(coinbase: Option<KeyPrefix>, tasks: usize, keys: usize) -> Self {
        let mut histories = KeyMap::default();
        histories.reserve(keys);
        Self {
            coinbase,
            histories,
            dependencies: Vec::with_capacity(tasks),
            prefix_finish: Vec::with_capacity(tasks),
            deepest_conflict_chain: 0,
            transactions: 0,
        }
    }

    /// Number of tasks planned so far: the position the next task takes.
    pub fn len(&self) -> usize {
        self.dependencies.len()
    }

    /// Whether no task was planned yet.
    pub fn is_empty(&self) -> bool {
        self.dependencies.is_empty()
    }

    /// Plans the task at the next block position and returns its dependency: the position of the
    /// latest earlier task it must wait for (with everything before it), or `None`.
    pub fn push(&mut self, task: &Task) -> Option<usize> {
        let position = self.dependencies.len();
        let access_set = task.access_set();
        let transactions = task.transaction_count() as u64;
        let coinbase_barrier = self.coinbase.is_some_and(|coinbase| access_set.contains(&coinbase));
        let stored = position.checked_add(1).and_then(|stored| u32::try_from(stored).ok());
        let Some(stored) = stored.filter(|_| !coinbase_barrier) else {
            // A coinbase reader waits for everything earlier. So does every task beyond the
            // 4 294 967 294th, whose position the key table cannot store: serial, still exact.
            let depth = self.deepest_conflict_chain + transactions;
            if coinbase_barrier {
                self.record_keys(access_set, stored.unwrap_or(u32::MAX), depth);
            }
            return self.record(position, position.checked_sub(1), depth, transactions);
        };

        let mut dependency = 0;
        let mut depth_before = 0;
        for key in access_set.read_only() {
            if let Some(history) = self.histories.get(key) {
                dependency = dependency.max(history.last_writer);
                depth_before = depth_before.max(history.writer_depth);
            }
        }
        for key in access_set.read_write() {
            // A credit waits for nothing on its key: credits commute with each other, and with
            // earlier readers, which commit first in any case (see `AccessSet`).
            if access_set.is_credit(key) {
                continue;
            }
            if let Some(history) = self.histories.get(key) {
                dependency = dependency.max(history.last_access);
                depth_before = depth_before.max(history.writer_depth.max(history.reader_depth));
            }
        }
        let depth = u64::from(depth_before) + transactions;
        self.record_keys(access_set, stored, depth);
        self.record(position, stored_position(dependency), depth, transactions)
    }

    /// Updates the key table after the task stored as `stored` with conflict depth `depth`.
    fn record_keys(&mut self, access_set: &AccessSet, stored: u32, depth: u64) {
        let depth = u32::try_from(depth).unwrap_or(u32::MAX);
        for key in access_set.read_only() {
            let history = self.histories.entry(*key).or_default();
            history.last_access = stored;
            history.reader_depth = history.reader_depth.max(depth);
        }
        for key in access_set.read_write() {
            let history = self.histories.entry(*key).or_default();
            history.last_writer = stored;
            history.last_access = stored;
            if access_set.is_credit(key) {
                // Later readers and writers wait for this credit and, through the watermark,
                // for every earlier one: the deepest of them bounds their start.
                history.writer_depth = history.writer_depth.max(depth);
            } else {
                history.writer_depth = depth;
                history.reader_depth = 0;
            }
        }
    }

    /// Appends the task's dependency and updates the chain lengths.
    fn record(
        &mut self,
        position: usize,
        dependency: Option<usize>,
        depth: u64,
        transactions: u64,
    ) -> Option<usize> {
        debug_assert!(dependency.is_none_or(|earlier| earlier < position));
        self.deepest_conflict_chain = self.deepest_conflict_chain.max(depth);
        let start = dependency.map_or(0, |earlier| self.prefix_finish[earlier]);
        let previous_finish = self.prefix_finish.last().copied().unwrap_or(0);
        self.prefix_finish.push(previous_finish.max(start + transactions));
        self.dependencies.push(dependency);
        self.transactions += transactions;
        dependency
    }

    /// The finished plan.
    pub fn finish(self) -> DependencyPlan {
        DependencyPlan {
            critical_path: self.prefix_finish.last().copied().unwrap_or(0),
            conflict_critical_path: self.deepest_conflict_chain,
            dependencies: self.dependencies,
            transactions: self.transactions,
        }
    }
}

/// Each task's dependency, in block order, plus the lengths of the plan's longest chains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DependencyPlan {
    dependencies: Vec<Option<usize>>,
    transactions: u64,
    critical_path: u64,
    conflict_critical_path: u64,
}

impl DependencyPlan {
    /// Plans `tasks_in_block_order` in one go; see [`PlanBuilder`].
    pub fn build<'task>(
        tasks_in_block_order: impl IntoIterator<Item = &'task Task>,
        coinbase: Option<KeyPrefix>,
    ) -> Self {
        let tasks = tasks_in_block_order.into_iter();
        let mut builder = PlanBuilder::with_capacity(coinbase, tasks.size_hint().0, 0);
        for task in tasks {
            builder.push(task);
        }
        builder.finish()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.dependencies.len()
    }

    /// Whether the plan has no task.
    pub fn is_empty(&self) -> bool {
        self.dependencies.is_empty()
    }

    /// Per block position: the latest earlier position the task must wait for (together with
    /// every position before it), or `None` if it can start at once.
    pub fn dependencies(&self) -> &[Option<usize>] {
        &self.dependencies
    }

    /// The dependency of the task at `position`; `None` also when `position` is out of range.
    pub fn dependency(&self, position: usize) -> Option<usize> {
        self.dependencies.get(position).copied().flatten()
    }

    /// Transactions in all tasks.
    pub fn transactions(&self) -> u64 {
        self.transactions
    }

    /// Longest chain of the plan as the watermark executes it, in transactions: the finish time of
    /// the last task when each transaction takes one unit, workers are unlimited and a task starts
    /// as soon as every position up to its dependency is done.
    pub fn critical_path(&self) -> u64 {
        self.critical_path
    }

    /// Longest chain of truly conflicting tasks (plus coinbase barriers), in transactions: the
    /// lower bound any exact scheduler has; at most [`critical_path`](Self::critical_path).
    pub fn conflict_critical_path(&self) -> u64 {
        self.conflict_critical_path
    }
}

/// For the misprediction path: the positions after `position` whose predicted access set conflicts
/// with `actual`, the access set the task at `position` really had. Those tasks may have run
/// without seeing the mispredicted task's writes; the engine re-validates them.
pub fn conflicting_after<'task>(
    tasks_in_block_order: impl IntoIterator<Item = &'task Task>,
    position: usize,
    actual: &AccessSet,
) -> Vec<usize> {
    tasks_in_block_order
        .into_iter()
        .enumerate()
        .skip(position.saturating_add(1))
        .filter(|(_, task)| task.access_set().conflicts_with(actual))
        .map(|(later, _)| later)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::SenderId;

    fn task(sender: u8, reads: &[u8], writes: &[u8]) -> Task {
        let key = |byte: &u8| [*byte; 10];
        let access_set = AccessSet::new(reads.iter().map(key), writes.iter().map(key));
        Task::single(SenderId([200 + sender; 10]), access_set)
    }

    #[test]
    fn dependency_is_the_latest_conflicting_task() {
        let tasks = [
            task(0, &[], &[1]), // 0
            task(1, &[2], &[]), // 1
            task(2, &[1], &[]), // 2: reads 1, written by 0
            task(3, &[], &[2]), // 3: writes 2, read by 1
            task(4, &[1], &[]), // 4: reads 1: only 0 wrote it (2 merely read it)
            task(5, &[], &[1]), // 5: writes 1: readers 2 and 4, writer 0 -> 4
            task(6, &[3], &[]), // 6: nothing
            task(0, &[], &[]),  // 7: sender 0 again -> 0
        ];
        let plan = DependencyPlan::build(&tasks, None);
        assert_eq!(
            plan.dependencies(),
            &[None, None, Some(0), Some(1), Some(0), Some(4), None, Some(0)]
        );
        assert_eq!(plan.dependency(5), Some(4));
        assert_eq!(plan.dependency(99), None);
        assert_eq!(plan.transactions(), 8);
        // Longest conflict chain: 0 -> 2 -> 5 (or 0 -> 4 -> 5): three transactions.
        assert_eq!(plan.conflict_critical_path(), 3);
        // Watermark: 5 waits for 0..=4, and 4 for 0, 3 for 0..=1: also 3.
        assert_eq!(plan.critical_path(), 3);
    }

    #[test]
    fn watermark_chain_can_exceed_the_conflict_chain() {
        // 0 -> 1 -> 2 is a conflict chain of 3; 4 depends only on 3, but the watermark makes it
        // wait for 0..=3, so it finishes at 4.
        let tasks = [
            task(0, &[], &[1]),
            task(1, &[], &[1]),
            task(2, &[], &[1]),
            task(3, &[], &[2]),
            task(4, &[2], &[]),
        ];
        let plan = DependencyPlan::build(&tasks, None);
        assert_eq!(plan.dependencies(), &[None, Some(0), Some(1), None, Some(3)]);
        assert_eq!(plan.conflict_critical_path(), 3);
        assert_eq!(plan.critical_path(), 4);
        // 3 conflicts with 1 (key 1) and 2 (key 2): the latest, 2, is its dependency.
        let chained =
            [task(0, &[], &[1]), task(1, &[], &[1]), task(2, &[], &[2]), task(3, &[1], &[2])];
        let plan = DependencyPlan::build(&chained, None);
        assert_eq!(plan.dependencies(), &[None, Some(0), None, Some(2)]);
        assert_eq!(plan.conflict_critical_path(), 3);
    }

    #[test]
    fn coinbase_reader_waits_for_everything_earlier() {
        let coinbase = [77; 10];
        let tasks =
            [task(0, &[], &[1]), task(1, &[], &[2]), task(2, &[77], &[]), task(3, &[], &[3])];
        let plan = DependencyPlan::build(&tasks, Some(coinbase));
        assert_eq!(plan.dependencies(), &[None, None, Some(1), None]);
        assert_eq!(DependencyPlan::build(&tasks[2..3], Some(coinbase)).dependencies(), &[None]);
        assert_eq!(DependencyPlan::build(&tasks, None).dependencies(), &[None; 4]);
    }

    #[test]
    fn credits_to_one_key_run_side_by_side_and_readers_wait_for_them() {
        let key = |byte: u8| [byte; 10];
        let credit = |sender: u8, to: u8| {
            Task::single(SenderId([200 + sender; 10]), AccessSet::with_credits([], [], [key(to)]))
        };
        let tasks = [
            task(0, &[], &[1]), // 0: writes 1
            credit(1, 1),       // 1: credits 1: no wait, even for the writer
            credit(2, 1),       // 2: credits 1: no wait for the other credit
            task(3, &[1], &[]), // 3: reads 1: after the latest credit, 2
            credit(4, 1),       // 4: credits 1: no wait for the reader
            task(5, &[], &[1]), // 5: writes 1: after 4
            credit(6, 9),       // 6
            task(7, &[], &[9]), // 7: writes 9: after the credit 6
        ];
        let plan = DependencyPlan::build(&tasks, None);
        assert_eq!(plan.dependencies(), &[None, None, None, Some(2), None, Some(4), None, Some(6)]);
        // Chains: {0, 1, 2} -> 3 -> 5 and 4 -> 5: three transactions.
        assert_eq!(plan.conflict_critical_path(), 3);
        // The same block with the credits as plain writes is one chain through key 1.
        let plain: Vec<Task> = tasks
            .iter()
            .map(|task| {
                let set = task.access_set();
                Task::single(
                    task.senders()[0],
                    AccessSet::new(set.read_only().to_vec(), set.read_write().to_vec()),
                )
            })
            .collect();
        let plan = DependencyPlan::build(&plain, None);
        assert_eq!(plan.conflict_critical_path(), 6);
    }

    #[test]
    fn later_conflicts_of_an_actual_set() {
        let tasks = [task(0, &[5], &[]), task(1, &[5], &[]), task(2, &[], &[6]), task(3, &[], &[])];
        // Task 0 really read key 6 and wrote key 5.
        let actual = AccessSet::new([[6; 10]], [[5; 10]]);
        assert_eq!(conflicting_after(&tasks, 0, &actual), vec![1, 2]);
        assert_eq!(conflicting_after(&tasks, 3, &actual), Vec::<usize>::new());
        assert_eq!(conflicting_after(&tasks, usize::MAX, &actual), Vec::<usize>::new());
    }
}
