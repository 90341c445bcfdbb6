//! [`schedule`]: a whole block in one call — framed order, dependency plan and statistics. The
//! engine frames each block this way before executing it, then feeds the plan to
//! [`WatermarkRelease`](crate::WatermarkRelease); `schedule-stats` prints the statistics. The
//! [`Framer`] and [`PlanBuilder`] also work incrementally, for a caller that streams frames into
//! execution (the engine does not yet: on 2 cores the framing already overlaps the previous
//! block's commit).

use std::borrow::Borrow;

use crate::access_set::KeyPrefix;
use crate::frame::Frame;
use crate::framer::{Framer, FramerOptions};
use crate::plan::{DependencyPlan, PlanBuilder};
use crate::task::Task;

/// Who chooses the block order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleMode {
    /// Block producer: the framer chooses the order (FAFO reordering).
    Producer,
    /// Replay or validation: the order is given; only the dependency plan is computed.
    Replay,
}

/// A run of consecutive block positions whose tasks do not truly conflict with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduledFrame {
    /// Block position of the frame's first task.
    pub first_position: usize,
    /// Tasks in the frame.
    pub task_count: usize,
    /// Transactions in the frame's tasks.
    pub transaction_count: usize,
}

/// Figures of one scheduled block, as plain numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScheduleStats {
    /// Tasks in the block.
    pub tasks: u64,
    /// Transactions in the block.
    pub txs: u64,
    /// Frames: flushed frames in producer mode; in replay mode, maximal runs of consecutive tasks
    /// free of true conflicts among themselves.
    pub frames: u64,
    /// Average tasks per frame (0 without frames).
    pub tasks_per_frame: f64,
    /// Average transactions per frame (0 without frames).
    pub txs_per_frame: f64,
    /// Frames flushed because all 64 frames conflicted (producer mode).
    pub forced_flushes: u64,
    /// Frames flushed early to keep a sender's transactions in nonce order (producer mode).
    pub sender_order_flushes: u64,
    /// Bloom-filter false positives per truly non-conflicting (task, open frame) pair, measured
    /// against exact sets (producer mode; 0 in replay mode, which uses no filter). What the filter
    /// alone says: the framer confirms reported frames against exact keys before placing, so none
    /// of these false positives affects the order.
    pub false_positive_rate: f64,
    /// The numerator of `false_positive_rate`: (task, open frame) pairs reported as conflicting
    /// that do not truly conflict. Kept with the denominator so rates of several blocks combine.
    pub false_positives: u64,
    /// The denominator of `false_positive_rate`: (task, open frame) pairs checked that truly do
    /// not conflict.
    pub true_non_conflicts: u64,
    /// Longest chain of the plan under the done-watermark, in transactions
    /// ([`DependencyPlan::critical_path`]).
    pub critical_path: u64,
    /// Longest chain of true conflicts, in transactions
    /// ([`DependencyPlan::conflict_critical_path`]).
    pub conflict_critical_path: u64,
    /// `txs / critical_path`: the speed-up over sequential execution with unlimited workers and
    /// equal-cost transactions (0 for an empty block).
    pub ideal_speedup: f64,
}

/// The result of [`schedule`].
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// The block order: `order[position]` is the index in the input of the task at `position`.
    pub order: Vec<usize>,
    /// The frames, in block order; they partition the positions.
    pub frames: Vec<ScheduledFrame>,
    /// The dependency plan, per block position.
    pub plan: DependencyPlan,
    /// Figures.
    pub stats: ScheduleStats,
}

/// Schedules one block: in producer mode frames `tasks` (false positives measured), in replay mode
/// keeps their order; then plans dependencies with the coinbase barrier on `coinbase`.
///
/// ```
/// use zero_scheduler::{schedule, AccessSet, ScheduleMode, SenderId, Task};
///
/// let tasks: Vec<Task> = (0..10u8)
///     .map(|index| Task::single(SenderId([index; 10]), AccessSet::new([], [[0xee; 10]])))
///     .collect();
/// let result = schedule(&tasks, ScheduleMode::Replay, None);
/// assert_eq!(result.order, (0..10).collect::<Vec<_>>());
/// assert_eq!(result.stats.critical_path, 10, "everyone writes one key");
/// assert_eq!(result.stats.ideal_speedup, 1.0);
/// ```
pub fn schedule(tasks: &[Task], mode: ScheduleMode, coinbase: Option<KeyPrefix>) -> Schedule {
    schedule_with(tasks, mode, coinbase, FramerOptions { measure_false_positives: true })
}

/// [`schedule`] with the framer's options: production leaves false-positive measurement off
/// (it keeps exact key sets per open frame and checks every filter answer against them), and
/// its `false_positive_rate` is then 0. The tasks may be borrowed from where they were built.
pub fn schedule_with<T: Borrow<Task>>(
    tasks: &[T],
    mode: ScheduleMode,
    coinbase: Option<KeyPrefix>,
    options: FramerOptions,
) -> Schedule {
    let mut order = Vec::with_capacity(tasks.len());
    let mut frames = Vec::new();
    let keys = tasks.iter().map(|task| task.borrow().access_set().len()).sum();
    let mut builder = PlanBuilder::with_capacity(coinbase, tasks.len(), keys);
    let mut stats = ScheduleStats::default();
    match mode {
        ScheduleMode::Producer => {
            let mut framer = Framer::with_options(options);
            let mut sink = |frame: Frame<'_>| {
                for &task_id in frame.task_ids {
                    order.push(task_id);
                    builder.push(tasks[task_id].borrow());
                }
                frames.push(ScheduledFrame {
                    first_position: frame.first_position,
                    task_count: frame.task_ids.len(),
                    transaction_count: frame.transaction_count,
                });
            };
            for task in tasks {
                framer.push(task.borrow(), &mut sink);
            }
            let counters = framer.finish_block(&mut sink);
            stats.forced_flushes = counters.forced_flushes;
            stats.sender_order_flushes = counters.sender_order_flushes;
            stats.false_positive_rate = counters.false_positive_rate().unwrap_or(0.0);
            stats.false_positives = counters.false_positives;
            stats.true_non_conflicts = counters.true_non_conflicts;
        }
        ScheduleMode::Replay => {
            for (position, task) in tasks.iter().enumerate() {
                let task = task.borrow();
                order.push(position);
                let dependency = builder.push(task);
                // A task joins the current run unless it depends on a task inside it.
                let current = frames.last_mut().filter(|frame: &&mut ScheduledFrame| {
                    dependency.is_none_or(|earlier| earlier < frame.first_position)
                });
                match current {
                    Some(frame) => {
                        frame.task_count += 1;
                        frame.transaction_count += task.transaction_count();
                    }
                    None => frames.push(ScheduledFrame {
                        first_position: position,
                        task_count: 1,
                        transaction_count: task.transaction_count(),
                    }),
                }
            }
        }
    }
    let plan = builder.finish();
    stats.tasks = plan.len() as u64;
    stats.txs = plan.transactions();
    stats.frames = frames.len() as u64;
    if stats.frames > 0 {
        stats.tasks_per_frame = stats.tasks as f64 / stats.frames as f64;
        stats.txs_per_frame = stats.txs as f64 / stats.frames as f64;
    }
    stats.critical_path = plan.critical_path();
    stats.conflict_critical_path = plan.conflict_critical_path();
    if stats.critical_path > 0 {
        stats.ideal_speedup = stats.txs as f64 / stats.critical_path as f64;
    }
    Schedule { order, frames, plan, stats }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_set::AccessSet;
    use crate::task::SenderId;

    /// A uniformly distributed prefix, as real (SHA-256) ones are.
    fn key(index: u8) -> KeyPrefix {
        let mixed = (u64::from(index) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mixed = (mixed ^ (mixed >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let mut key = [index; 10];
        key[..8].copy_from_slice(&(mixed ^ (mixed >> 32)).to_le_bytes());
        key
    }

    fn transfer(sender: u8, receiver: u8) -> Task {
        Task::single(SenderId(key(sender)), AccessSet::new([], [key(receiver)]))
    }

    #[test]
    fn empty_block() {
        for mode in [ScheduleMode::Producer, ScheduleMode::Replay] {
            let result = schedule(&[], mode, None);
            assert!(result.order.is_empty() && result.frames.is_empty() && result.plan.is_empty());
            assert_eq!(result.stats, ScheduleStats::default());
        }
    }

    #[test]
    fn replay_keeps_the_order_and_counts_conflict_free_runs() {
        // 0: 1 -> 2, 1: 3 -> 4, 2: 5 -> 2 (conflicts with 0: new run), 3: 6 -> 7.
        let tasks = [transfer(1, 2), transfer(3, 4), transfer(5, 2), transfer(6, 7)];
        let result = schedule(&tasks, ScheduleMode::Replay, None);
        assert_eq!(result.order, vec![0, 1, 2, 3]);
        assert_eq!(result.plan.dependencies(), &[None, None, Some(0), None]);
        let runs: Vec<(usize, usize)> =
            result.frames.iter().map(|frame| (frame.first_position, frame.task_count)).collect();
        assert_eq!(runs, vec![(0, 2), (2, 2)]);
        assert_eq!(result.stats.frames, 2);
        assert_eq!(result.stats.txs_per_frame, 2.0);
        assert_eq!(result.stats.critical_path, 2);
        assert_eq!(result.stats.ideal_speedup, 2.0);
    }

    #[test]
    fn producer_reorders_conflicts_apart() {
        // Two independent chains on keys 2 and 4, interleaved with independent transfers.
        let tasks =
            [transfer(1, 2), transfer(3, 2), transfer(5, 4), transfer(6, 4), transfer(7, 8)];
        let result = schedule(&tasks, ScheduleMode::Producer, None);
        // Frame 0 takes 0, 2, 4; frame 1 takes 1 and 3.
        assert_eq!(result.order, vec![0, 2, 4, 1, 3]);
        assert_eq!(result.stats.frames, 2);
        assert_eq!(result.plan.dependencies(), &[None, None, None, Some(0), Some(1)]);
        assert_eq!(result.stats.conflict_critical_path, 2);
        assert_eq!(result.stats.critical_path, 2);
        assert_eq!(result.stats.forced_flushes, 0);
    }
}
