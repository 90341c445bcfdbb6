//! [`Framer`] (ParaFramer): producer-mode ordering of a block's tasks into conflict-free frames.
//!
//! Up to 64 frames are open at once, one per [`FrameSlot`] of a [`FrameFilter`]. Each pushed task
//! goes to the lowest frame the filter does not report as conflicting (and that per-sender order
//! allows, see below). A frame flushes when it holds
//! [`MAX_TASKS_PER_FRAME`](crate::MAX_TASKS_PER_FRAME) tasks or more than
//! [`MAX_KEYS_PER_FRAME_SET`](crate::MAX_KEYS_PER_FRAME_SET) keys in either set; if all 64 frames
//! are unavailable, the fullest frame (the lowest among equals) flushes and the task goes into
//! it, emptied.
//!
//! Flushing assigns the frame's tasks the next consecutive block positions and hands the [`Frame`]
//! to the caller's sink at once, so execution can start while later tasks are still being framed.
//! A flushed frame's tasks precede every task framed later: later tasks may conflict with them and
//! then merely depend on them (the [`DependencyPlan`](crate::DependencyPlan) decides exactly).
//! Tasks inside one frame never truly conflict, because the filter has no false negatives.
//!
//! The filter's answer is confirmed before placement: each frame it reports (and that order
//! allows) is checked against the frame's exact keys, and dropped from the conflict mask if it
//! does not truly conflict. Without this, a key many tasks hold (an ERC20 token's account, read by
//! every transfer of the token) that one frame's filter falsely covers would exclude that frame for
//! every later such task until it flushes. The check runs only for reported frames, so a block
//! without conflicts costs no hashing (`OpenFrame` hashes a frame's keys on its first check).
//!
//! Per-sender order: a task never lands in a frame that flushes before the frame of a same-sender
//! predecessor. Placement respects the recorded "must flush before" relation between open frames
//! (`flush_order.rs`, `DESIGN.md`), and every flush first flushes the frames recorded as before
//! it (reason [`FlushReason::SenderOrder`]). At the end of a block the open frames flush
//! lowest-index first among those with no open predecessor frame, so the output is a pure
//! function of the input sequence.

use crate::access_set::AccessSet;
use crate::flush_order::{slots_of, FlushOrder};
use crate::frame::{FlushReason, Frame, OpenFrame};
use crate::frame_filter::{FrameFilter, FrameSlot, FRAME_COUNT};
use crate::key_hasher::KeyMap;
use crate::task::{SenderId, Task, MAX_TRANSACTIONS_PER_TASK};

/// The first slot: the one flushed when every frame conflicts.
const FIRST_SLOT: FrameSlot = FrameSlot::from_lane(0);

/// Reported frames confirmed against exact keys per placement, at most (see
/// `Framer::confirmed_conflicts`).
const MAX_CONFIRMATIONS: usize = 8;

/// Options of a [`Framer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramerOptions {
    /// Check the filter's answer for every open frame, not only the reported ones, against the
    /// frame's exact keys, to count false positives. Costs a hash-map lookup per key and open
    /// frame; off for production.
    pub measure_false_positives: bool,
}

/// What a [`Framer`] did in one block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FramerCounters {
    /// Tasks pushed.
    pub tasks: u64,
    /// Transactions in the tasks pushed.
    pub transactions: u64,
    /// Frames flushed (for any reason).
    pub frames: u64,
    /// Frames flushed because they were full.
    pub full_flushes: u64,
    /// Frames flushed because all 64 frames conflicted with a task.
    pub forced_flushes: u64,
    /// Frames flushed early to keep a sender's transactions in order.
    pub sender_order_flushes: u64,
    /// Frames flushed at the end of the block.
    pub end_of_block_flushes: u64,
    /// (task, open frame) pairs checked against exact sets; only when measuring.
    pub filter_checks: u64,
    /// Checked pairs that truly do not conflict.
    pub true_non_conflicts: u64,
    /// Checked pairs the filter reported as conflicting although they do not truly conflict: what
    /// the filter alone says, before the exact confirmation drops them.
    pub false_positives: u64,
    /// Checked pairs the placement decision treated as conflicting although they do not truly
    /// conflict, below the frame it chose: false positives the exact confirmation let through.
    /// 0 unless more than `MAX_CONFIRMATIONS` (8) reported frames below the chosen one had to be
    /// checked (the tests assert 0 on their blocks).
    pub placement_false_positives: u64,
    /// Checked pairs the filter missed although they truly conflict; always 0 (tests assert it).
    pub false_negatives: u64,
}

impl FramerCounters {
    /// False positives per truly non-conflicting (task, open frame) pair, if any were measured.
    pub fn false_positive_rate(&self) -> Option<f64> {
        (self.true_non_conflicts > 0)
            .then(|| self.false_positives as f64 / self.true_non_conflicts as f64)
    }
}

/// Where a sender's latest task was placed: its slot, and the slot's generation at that time.
#[derive(Clone, Copy, Debug)]
struct SenderPlacement {
    slot: FrameSlot,
    generation: u64,
}

/// Producer-mode framer; see the module documentation.
///
/// ```
/// use zero_scheduler::{AccessSet, Framer, SenderId, Task};
///
/// let tasks: Vec<Task> = (0..4u8)
///     .map(|index| Task::single(SenderId([index; 10]), AccessSet::new([], [[0xaa; 10]])))
///     .collect();
/// let mut framer = Framer::new();
/// let mut order = Vec::new();
/// let mut sink = |frame: zero_scheduler::Frame<'_>| order.extend_from_slice(frame.task_ids);
/// for task in &tasks {
///     framer.push(task, &mut sink);
/// }
/// let counters = framer.finish_block(&mut sink);
/// // All four write one key: each opens its own frame; they flush in frame order.
/// assert_eq!(counters.frames, 4);
/// assert_eq!(order, vec![0, 1, 2, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct Framer {
    filter: FrameFilter,
    frames: Vec<OpenFrame>,
    occupied: u64,
    flush_order: FlushOrder,
    /// Index in `sender_placements` of each sender seen in the block: one lookup per sender.
    sender_indices: KeyMap<SenderId, usize>,
    sender_placements: Vec<Option<SenderPlacement>>,
    next_task_id: usize,
    next_position: usize,
    counters: FramerCounters,
    options: FramerOptions,
    flush_sequence: Vec<FrameSlot>,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer with default options (no false-positive measurement).
    pub fn new() -> Self {
        Self::with_options(FramerOptions::default())
    }

    /// A framer with `options`.
    pub fn with_options(options: FramerOptions) -> Self {
        Self {
            filter: FrameFilter::new(),
            frames: vec![OpenFrame::default(); FRAME_COUNT],
            occupied: 0,
            flush_order: FlushOrder::new(),
            sender_indices: KeyMap::default(),
            sender_placements: Vec::new(),
            next_task_id: 0,
            next_position: 0,
            counters: FramerCounters::default(),
            options,
            flush_sequence: Vec::with_capacity(FRAME_COUNT),
        }
    }

    /// Counters of the current block so far.
    pub fn counters(&self) -> &FramerCounters {
        &self.counters
    }

    /// Frames the next task of the block and returns its arrival index (its task id). Frames that
    /// flush on the way are handed to `sink`, in block order.
    pub fn push(&mut self, task: &Task, sink: &mut impl FnMut(Frame<'_>)) -> usize {
        let task_id = self.next_task_id;
        self.next_task_id += 1;
        self.counters.tasks += 1;
        self.counters.transactions += task.transaction_count() as u64;
        let access_set = task.access_set();
        let mut sender_indices = [0; MAX_TRANSACTIONS_PER_TASK];
        for (index, sender) in sender_indices.iter_mut().zip(task.senders()) {
            let next = self.sender_placements.len();
            *index = *self.sender_indices.entry(*sender).or_insert(next);
            if *index == next {
                self.sender_placements.push(None);
            }
        }
        let sender_indices = &sender_indices[..task.transaction_count()];

        let mut predecessor_frames = self.predecessor_frames(sender_indices);
        let mut forbidden = self.flush_order.forbidden(predecessor_frames);
        let reported = self.filter.conflicts(access_set);
        let mut conflicts = self.confirmed_conflicts(access_set, reported & !forbidden, forbidden);
        let mut available = !(conflicts | forbidden);
        if self.options.measure_false_positives {
            self.measure(access_set, reported, available, forbidden);
        }
        if available == 0 {
            // Every frame conflicts or must precede a predecessor's frame: flush the fullest frame
            // (and what must precede it). Always flushing frame 0 made a contended workload
            // thrash: with 16 AMM pools the other 63 frames each held one swap per pool and
            // never flushed, while frame 0 flushed at its first repeated pool, 6 swaps on
            // average. The emptied frame conflicts with nothing and follows nothing, so the task
            // fits there whatever it conflicts with among the remaining frames: those will flush
            // later and their tasks merely come after it in the block.
            let fullest = self.fullest_frame();
            self.flush_with_predecessors(fullest, FlushReason::Forced, sink);
            predecessor_frames = self.predecessor_frames(sender_indices);
            forbidden = self.flush_order.forbidden(predecessor_frames);
            let reported = self.filter.conflicts(access_set);
            conflicts = self.confirmed_conflicts(access_set, reported & !forbidden, forbidden);
            available = !(conflicts | forbidden);
            debug_assert_ne!(available & fullest.bit(), 0, "the emptied frame must be free");
        }
        let slot = FrameSlot::from_lane(available.trailing_zeros());

        self.flush_order.require_before(slot, predecessor_frames);
        self.filter.insert(slot, access_set);
        self.occupied |= slot.bit();
        let frame = &mut self.frames[slot.index()];
        frame.add(task_id, task);
        let placement = SenderPlacement { slot, generation: frame.generation };
        let full = frame.is_full();
        for &index in sender_indices {
            self.sender_placements[index] = Some(placement);
        }
        if full {
            self.flush_with_predecessors(slot, FlushReason::Full, sink);
        }
        task_id
    }

    /// Ends the block: flushes every open frame to `sink` (never one before a frame it must
    /// follow; otherwise lowest slot first), returns the block's counters and resets the framer
    /// for the next block (task ids and positions start again at 0).
    pub fn finish_block(&mut self, sink: &mut impl FnMut(Frame<'_>)) -> FramerCounters {
        while let Some(slot) = self.flush_order.next_ready(self.occupied) {
            self.flush_one(slot, FlushReason::EndOfBlock, sink);
        }
        self.flush_order.reset();
        self.sender_indices.clear();
        self.sender_placements.clear();
        self.next_task_id = 0;
        self.next_position = 0;
        std::mem::take(&mut self.counters)
    }

    /// The open frame with the most tasks, the lowest slot among equals (every frame is open when
    /// none is available).
    fn fullest_frame(&self) -> FrameSlot {
        slots_of(self.occupied)
            .min_by_key(|slot| (std::cmp::Reverse(self.frames[slot.index()].task_ids.len()), *slot))
            .unwrap_or(FIRST_SLOT)
    }

    /// Mask of open frames holding an unflushed earlier task of one of the senders (given by their
    /// index in `sender_placements`).
    fn predecessor_frames(&self, sender_indices: &[usize]) -> u64 {
        sender_indices.iter().fold(0, |mask, &index| match self.sender_placements[index] {
            Some(placement)
                if self.frames[placement.slot.index()].generation == placement.generation =>
            {
                mask | placement.slot.bit()
            }
            _ => mask,
        })
    }

    /// `candidates` (frames the filter reports, order allowing) with the false positives that
    /// could change the placement removed. Placement takes the lowest free frame, so only reported
    /// frames below the lowest frame the filter leaves free matter, lowest first, and the first one
    /// that does not truly conflict ends the search. At most [`MAX_CONFIRMATIONS`] are checked: a
    /// task that truly conflicts with most open frames (a hot AMM pool) must not pay a hash lookup
    /// per frame, while the false positives that matter — one or two frames whose filter covers a
    /// key many tasks share — are found in the first few.
    fn confirmed_conflicts(
        &mut self,
        access_set: &AccessSet,
        candidates: u64,
        forbidden: u64,
    ) -> u64 {
        let free = !(candidates | forbidden);
        let below_free = if free == 0 { u64::MAX } else { (free & free.wrapping_neg()) - 1 };
        let mut confirmed = candidates;
        for slot in slots_of(candidates & below_free).take(MAX_CONFIRMATIONS) {
            if !self.frames[slot.index()].truly_conflicts_with(access_set) {
                confirmed &= !slot.bit();
                break;
            }
        }
        confirmed
    }

    /// Checks, for every open frame, the filter's answer `reported` against the frame's exact
    /// keys, and whether a false positive pushed the task above a frame it could have joined (the
    /// placement takes the lowest frame of `available`; frames `forbidden` by sender order are no
    /// conflict claim).
    fn measure(&mut self, access_set: &AccessSet, reported: u64, available: u64, forbidden: u64) {
        let chosen = available.trailing_zeros() as usize;
        for slot in slots_of(self.occupied) {
            let truly = self.frames[slot.index()].truly_conflicts_with(access_set);
            let reported = reported & slot.bit() != 0;
            let placed_around = forbidden & slot.bit() == 0 && slot.index() < chosen;
            self.counters.filter_checks += 1;
            match (truly, reported) {
                (false, reported) => {
                    self.counters.true_non_conflicts += 1;
                    self.counters.false_positives += u64::from(reported);
                    self.counters.placement_false_positives += u64::from(placed_around);
                }
                (true, false) => self.counters.false_negatives += 1,
                (true, true) => {}
            }
        }
    }

    /// Flushes every frame that must precede `slot`, then `slot`.
    fn flush_with_predecessors(
        &mut self,
        slot: FrameSlot,
        reason: FlushReason,
        sink: &mut impl FnMut(Frame<'_>),
    ) {
        let mut sequence = std::mem::take(&mut self.flush_sequence);
        sequence.clear();
        self.flush_order.flush_sequence(slot, &mut sequence);
        for &frame in &sequence {
            let frame_reason = if frame == slot { reason } else { FlushReason::SenderOrder };
            self.flush_one(frame, frame_reason, sink);
        }
        self.flush_sequence = sequence;
    }

    /// Assigns positions to `slot`'s tasks, hands the frame to `sink` and empties the slot.
    fn flush_one(
        &mut self,
        slot: FrameSlot,
        reason: FlushReason,
        sink: &mut impl FnMut(Frame<'_>),
    ) {
        let frame = &mut self.frames[slot.index()];
        if frame.task_ids.is_empty() {
            return;
        }
        sink(Frame {
            slot,
            first_position: self.next_position,
            task_ids: &frame.task_ids,
            transaction_count: frame.transactions,
            reason,
        });
        self.next_position += frame.task_ids.len();
        frame.empty();
        self.filter.clear(slot);
        self.occupied &= !slot.bit();
        self.flush_order.remove(slot);
        let counters = &mut self.counters;
        counters.frames += 1;
        match reason {
            FlushReason::Full => counters.full_flushes += 1,
            FlushReason::Forced => counters.forced_flushes += 1,
            FlushReason::SenderOrder => counters.sender_order_flushes += 1,
            FlushReason::EndOfBlock => counters.end_of_block_flushes += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_set::KeyPrefix;
    use crate::frame::MAX_TASKS_PER_FRAME;
    use crate::frame_filter::{probe_positions, PROBE_COUNT};

    fn key(index: u64) -> KeyPrefix {
        let mixed = index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut key = [0u8; 10];
        key[..8].copy_from_slice(&(mixed ^ (mixed >> 31)).to_le_bytes());
        key[8..].copy_from_slice(&(index as u16).to_le_bytes());
        key
    }

    fn task(sender: u64, writes: &[u64]) -> Task {
        Task::single(
            SenderId(key(1 << 40 | sender)),
            AccessSet::new([], writes.iter().map(|&k| key(k))),
        )
    }

    /// Frames every task and returns the flushed frames as (slot, reason, task ids).
    fn frame_all(framer: &mut Framer, tasks: &[Task]) -> Vec<(usize, FlushReason, Vec<usize>)> {
        let mut frames = Vec::new();
        let mut sink = |frame: Frame<'_>| {
            assert_eq!(
                frame.first_position,
                frames.iter().map(|(_, _, ids): &(_, _, Vec<_>)| ids.len()).sum()
            );
            frames.push((frame.slot.index(), frame.reason, frame.task_ids.to_vec()));
        };
        for (index, task) in tasks.iter().enumerate() {
            assert_eq!(framer.push(task, &mut sink), index);
        }
        framer.finish_block(&mut sink);
        frames
    }

    /// A key other than `target` that shares `target`'s probe number `probe` and takes its other
    /// probes from `key(index)`: a few of them make a filter falsely report `target`.
    fn key_sharing_probe(target: &KeyPrefix, probe: usize, index: u64) -> KeyPrefix {
        let low_bits = |key: &KeyPrefix| {
            let mut bytes = [0u8; 8];
            bytes[..7].copy_from_slice(&key[..7]);
            u64::from_le_bytes(bytes)
        };
        let mask = 0x7ff << (11 * probe);
        let mut shared = key(index);
        let bits = (low_bits(&shared) & !mask) | (low_bits(target) & mask);
        shared[..7].copy_from_slice(&bits.to_le_bytes()[..7]);
        assert_ne!(&shared, target);
        assert_eq!(probe_positions(&shared)[probe], probe_positions(target)[probe]);
        shared
    }

    #[test]
    fn a_false_positive_on_a_key_every_task_reads_does_not_exclude_the_frame() {
        // Task 0 writes five keys that together cover every probe bit of `token` in frame 0's
        // read-write filter; each later task reads `token` and writes a key of its own.
        let token = key(1 << 30);
        let covering =
            (0..PROBE_COUNT).map(|probe| key_sharing_probe(&token, probe, 2000 + probe as u64));
        let mut tasks = vec![Task::single(SenderId(key(1 << 41)), AccessSet::new([], covering))];
        tasks.extend((0..100).map(|sender| {
            Task::single(
                SenderId(key(1 << 40 | sender)),
                AccessSet::new([token], [key(3000 + sender)]),
            )
        }));
        let mut filter = FrameFilter::new();
        filter.insert(FIRST_SLOT, tasks[0].access_set());
        assert_eq!(filter.conflicts(tasks[1].access_set()), FIRST_SLOT.bit(), "false positive");

        // None truly conflicts with another: one frame holds them all, as without `token`.
        let options = FramerOptions { measure_false_positives: true };
        let mut framer = Framer::with_options(options);
        let frames = frame_all(&mut framer, &tasks);
        assert_eq!(frames, vec![(0, FlushReason::EndOfBlock, (0..101).collect())]);
    }

    #[test]
    fn a_hot_key_forces_frame_zero_out() {
        let tasks: Vec<Task> = (0..65).map(|sender| task(sender, &[7])).collect();
        let mut framer = Framer::new();
        let frames = frame_all(&mut framer, &tasks);
        assert_eq!(frames[0], (0, FlushReason::Forced, vec![0]));
        assert_eq!(frames[1], (0, FlushReason::EndOfBlock, vec![64]));
        let rest: Vec<usize> = frames[2..].iter().flat_map(|(_, _, ids)| ids.clone()).collect();
        assert_eq!(rest, (1..64).collect::<Vec<_>>());
    }

    /// Three hot keys fill every frame with three tasks; a task on a hot key then forces the
    /// fullest frame out (the lowest among equals), and so does the next one, though the frame
    /// its predecessor emptied holds a single task: flushing that one, as frame 0 always was,
    /// made contended blocks thrash one small frame.
    #[test]
    fn a_forced_flush_takes_the_fullest_frame() {
        let hot = [7, 8, 9];
        let mut tasks: Vec<Task> = Vec::new();
        for (round, key) in hot.iter().enumerate() {
            tasks.extend((0..64).map(|frame| task((round * 64 + frame) as u64, &[*key])));
        }
        tasks.push(task(192, &[7]));
        tasks.push(task(193, &[7]));
        let mut framer = Framer::new();
        let frames = frame_all(&mut framer, &tasks);
        assert_eq!(frames[0], (0, FlushReason::Forced, vec![0, 64, 128]));
        assert_eq!(frames[1], (1, FlushReason::Forced, vec![1, 65, 129]), "not frame 0's one task");
        assert_eq!(frames[2], (0, FlushReason::EndOfBlock, vec![192]));
        assert_eq!(frames[3], (1, FlushReason::EndOfBlock, vec![193]));
        for (index, frame) in frames[4..].iter().enumerate() {
            let slot = index + 2;
            assert_eq!(frame, &(slot, FlushReason::EndOfBlock, vec![slot, 64 + slot, 128 + slot]));
        }
        assert_eq!(framer.counters().tasks, 0, "the block is finished");
    }

    #[test]
    fn frames_flush_at_the_task_and_key_limits() {
        let single_key: Vec<Task> = (0..300).map(|sender| task(sender, &[])).collect();
        let mut framer = Framer::new();
        let frames = frame_all(&mut framer, &single_key);
        assert_eq!(frames[0].1, FlushReason::Full);
        assert_eq!(frames[0].2.len(), MAX_TASKS_PER_FRAME);
        assert_eq!(frames[1].2.len(), 44);

        let two_keys: Vec<Task> = (0..300).map(|sender| task(sender, &[1000 + sender])).collect();
        let frames = frame_all(&mut framer, &two_keys);
        // 129 tasks hold 258 read-write keys: more than 256.
        assert_eq!((frames[0].1, frames[0].2.len()), (FlushReason::Full, 129));
        assert_eq!(frames[0].2[..3], [0, 1, 2], "ids restart with each block");
    }

    #[test]
    fn a_sender_successor_never_flushes_before_its_predecessor() {
        // Task 0 holds key 5 in frame 0; the sender's first task (1) writes key 5 too, so it goes
        // to frame 1; its second task (2) conflicts only with frame 1 and lands in frame 0.
        let mut tasks = vec![task(100, &[5]), task(1, &[5]), task(1, &[])];
        // Fill frame 0 up: it must take frame 1 (the predecessor's) out with it, first.
        tasks.extend((200..800).map(|sender| task(sender, &[])));
        let mut framer = Framer::new();
        let frames = frame_all(&mut framer, &tasks);
        assert_eq!((frames[0].0, frames[0].1, frames[0].2[0]), (1, FlushReason::SenderOrder, 1));
        assert_eq!(frames[1].0, 0);
        assert_eq!(frames[1].1, FlushReason::Full);
        assert_eq!(frames[1].2[..2], [0, 2]);
    }

    #[test]
    fn measured_filter_answers_have_no_false_negatives() {
        let mut state = 5u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state >> 20
        };
        let tasks: Vec<Task> = (0..5000).map(|_| task(next() % 3000, &[next() % 3000])).collect();
        let options = FramerOptions { measure_false_positives: true };
        let mut framer = Framer::with_options(options);
        let mut framed = 0;
        for task in &tasks {
            framer.push(task, &mut |frame| framed += frame.task_ids.len());
        }
        assert_eq!(framer.counters().tasks, 5000);
        let counters = framer.finish_block(&mut |frame| framed += frame.task_ids.len());
        assert_eq!(framed, 5000);
        assert_eq!(framer.counters(), &FramerCounters::default());
        assert_eq!(counters.false_negatives, 0);
        assert_eq!(counters.placement_false_positives, 0);
        assert!(counters.filter_checks > 0);
        assert!(counters.false_positive_rate().is_some_and(|rate| rate < 0.05), "{counters:?}");
    }
}
