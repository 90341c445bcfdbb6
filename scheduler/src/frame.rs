//! A frame: the open frame of one slot while the [`Framer`](crate::Framer) fills it, and the
//! flushed [`Frame`] handed to the caller with its block positions.
//!
//! A frame holds tasks that pairwise do not truly conflict, so once its dependencies are done it
//! can run fully in parallel. It flushes at [`MAX_TASKS_PER_FRAME`] tasks or more than
//! [`MAX_KEYS_PER_FRAME_SET`] keys in either set: the key limit bounds the load of its Bloom
//! filter (`DESIGN.md` §2), the task limit the latency before its tasks can start.

use std::ops::Range;

use crate::access_set::{AccessSet, KeyPrefix};
use crate::frame_filter::FrameSlot;
use crate::key_hasher::KeyMap;
use crate::task::Task;

/// A frame flushes when it holds this many tasks.
pub const MAX_TASKS_PER_FRAME: usize = 256;

/// A frame flushes when either of its sets (read-only keys, read-write keys, counted per task)
/// holds more than this many keys.
pub const MAX_KEYS_PER_FRAME_SET: usize = 256;

/// Why a frame was flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushReason {
    /// It reached [`MAX_TASKS_PER_FRAME`] tasks or more than [`MAX_KEYS_PER_FRAME_SET`] keys.
    Full,
    /// Every frame conflicted with an incoming task, so the fullest was flushed to make room.
    Forced,
    /// A frame holding a later transaction of one of its senders was flushing.
    SenderOrder,
    /// The block ended.
    EndOfBlock,
}

/// A flushed frame, handed to the sink passed to [`Framer::push`](crate::Framer::push) and
/// [`Framer::finish_block`](crate::Framer::finish_block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'frame> {
    /// The slot the frame occupied while open.
    pub slot: FrameSlot,
    /// Block position of `task_ids[0]`; the frame's tasks take consecutive positions from here.
    pub first_position: usize,
    /// The frame's tasks, as their arrival index in the block (0 for the first task pushed).
    pub task_ids: &'frame [usize],
    /// Transactions in the frame's tasks.
    pub transaction_count: usize,
    /// Why the frame flushed.
    pub reason: FlushReason,
}

impl Frame<'_> {
    /// The block positions the frame's tasks take.
    pub fn positions(&self) -> Range<usize> {
        self.first_position..self.first_position + self.task_ids.len()
    }
}

/// The open frame of one slot: its tasks, key counts and exact keys until it flushes.
///
/// The exact keys decide whether a conflict the Bloom filter reports is real. They are copied into
/// two lists on insert (no hashing; the lists' lengths are also the key counts the flush limit
/// reads) and moved into a hash map only when the frame is asked for a confirmation: most frames
/// of a block are never reported as conflicting, so most keys are never hashed.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenFrame {
    /// Arrival indices of the frame's tasks, in insertion order.
    pub(crate) task_ids: Vec<usize>,
    /// Transactions in the frame's tasks.
    pub(crate) transactions: usize,
    /// Incremented at every flush, so that a remembered (slot, generation) of an earlier frame
    /// in this slot is recognised as flushed.
    pub(crate) generation: u64,
    /// The read-only keys of the frame's tasks, per task, in insertion order (with repeats).
    read_only_keys: Vec<KeyPrefix>,
    /// The read-write keys of the frame's tasks, per task, in insertion order (with repeats).
    read_write_keys: Vec<KeyPrefix>,
    /// How many of `read_only_keys` are in `exact_keys` already.
    indexed_read_only: usize,
    /// How many of `read_write_keys` are in `exact_keys` already.
    indexed_read_write: usize,
    /// The keys indexed so far; value: whether some task of the frame writes the key.
    exact_keys: KeyMap<KeyPrefix, bool>,
}

impl OpenFrame {
    /// Adds a task (its arrival index and set).
    pub(crate) fn add(&mut self, task_id: usize, task: &Task) {
        let access_set = task.access_set();
        self.task_ids.push(task_id);
        self.transactions += task.transaction_count();
        self.read_only_keys.extend_from_slice(access_set.read_only());
        self.read_write_keys.extend_from_slice(access_set.read_write());
    }

    /// Whether the frame must flush: [`MAX_TASKS_PER_FRAME`] tasks, or more than
    /// [`MAX_KEYS_PER_FRAME_SET`] keys in either set.
    pub(crate) fn is_full(&self) -> bool {
        self.task_ids.len() >= MAX_TASKS_PER_FRAME
            || self.read_only_keys.len() > MAX_KEYS_PER_FRAME_SET
            || self.read_write_keys.len() > MAX_KEYS_PER_FRAME_SET
    }

    /// Whether a task with `access_set` truly conflicts with the frame's tasks: it writes a key
    /// the frame holds, or reads a key the frame writes. Hashes the keys added since the last call
    /// first.
    pub(crate) fn truly_conflicts_with(&mut self, access_set: &AccessSet) -> bool {
        // A written key stays written whichever order the keys are indexed in.
        for key in &self.read_only_keys[self.indexed_read_only..] {
            self.exact_keys.entry(*key).or_insert(false);
        }
        for key in &self.read_write_keys[self.indexed_read_write..] {
            self.exact_keys.insert(*key, true);
        }
        self.indexed_read_only = self.read_only_keys.len();
        self.indexed_read_write = self.read_write_keys.len();
        access_set.read_only().iter().any(|key| self.exact_keys.get(key) == Some(&true))
            || access_set.read_write().iter().any(|key| self.exact_keys.contains_key(key))
    }

    /// Empties the frame after it flushed, opening the slot's next generation.
    pub(crate) fn empty(&mut self) {
        self.task_ids.clear();
        self.transactions = 0;
        self.generation += 1;
        self.read_only_keys.clear();
        self.read_write_keys.clear();
        self.indexed_read_only = 0;
        self.indexed_read_write = 0;
        self.exact_keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::SenderId;

    #[test]
    fn limits_exact_keys_and_emptying() {
        let mut frame = OpenFrame::default();
        let task = Task::single(SenderId([1; 10]), AccessSet::new([[2; 10]], [[3; 10]]));
        frame.add(0, &task);
        assert_eq!((frame.task_ids.as_slice(), frame.transactions), (&[0][..], 1));
        assert!(frame.truly_conflicts_with(&AccessSet::new([[3; 10]], [])));
        assert!(frame.truly_conflicts_with(&AccessSet::new([], [[2; 10]])));
        assert!(!frame.truly_conflicts_with(&AccessSet::new([[2; 10]], [])));
        assert!(!frame.is_full());
        let wide =
            Task::single(SenderId([4; 10]), AccessSet::new([], (0..=255u8).map(|b| [b; 10])));
        frame.add(1, &wide);
        assert!(frame.truly_conflicts_with(&AccessSet::new([[7; 10]], [])), "added after a check");
        assert!(frame.is_full(), "2 + 257 read-write keys");
        frame.empty();
        assert!(frame.task_ids.is_empty() && !frame.is_full());
        assert_eq!(frame.generation, 1);
        assert!(!frame.truly_conflicts_with(&AccessSet::new([], [[2; 10]])));
        for task_id in 0..MAX_TASKS_PER_FRAME {
            frame.add(task_id, &Task::single(SenderId([5; 10]), AccessSet::default()));
        }
        assert!(frame.is_full());
        let flushed = Frame {
            slot: FrameSlot::new(2).expect("below 64"),
            first_position: 10,
            task_ids: &frame.task_ids,
            transaction_count: frame.transactions,
            reason: FlushReason::Full,
        };
        assert_eq!(flushed.positions(), 10..10 + MAX_TASKS_PER_FRAME);
    }
}
