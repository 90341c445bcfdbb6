//! [`FlushOrder`]: which open frames must flush before which, so that per-sender order survives
//! FAFO's reordering.
//!
//! The hazard: a sender's task `A` sits in open frame `f`; the sender's next task `B` conflicts
//! with `f` (the sender key is read-write in both) and goes to another frame `g`. Frames flush when
//! they fill, in no fixed order, and flushing assigns block positions, so if `g` flushed first `B`
//! would precede `A` in the block and break nonce order.
//!
//! The rule: placing `B` in `g` records "`f` flushes before `g`". Flushing any frame first flushes,
//! in a deterministic topological order, every open frame recorded as before it. To keep that
//! relation acyclic, a task may not go into a frame that must itself flush before one of its
//! predecessors' frames. The relation is kept transitively closed as 64 masks, so both the check
//! and the cascade are a few mask operations. A frame that has just been emptied has no relation to
//! any other, so after a forced flush the task always fits into the emptied frame.

use crate::frame_filter::{FrameSlot, FRAME_COUNT};

/// The transitively closed "must flush before" relation between open frames.
#[derive(Clone, Debug)]
pub(crate) struct FlushOrder {
    /// `before[g]`: mask of open frames that must flush before frame `g`.
    before: [u64; FRAME_COUNT],
}

/// Iterates over the slots of a 64-frame mask, lowest first.
pub(crate) fn slots_of(mask: u64) -> impl Iterator<Item = FrameSlot> {
    let mut remaining = mask;
    std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        let slot = FrameSlot::from_lane(remaining.trailing_zeros());
        remaining &= remaining - 1;
        Some(slot)
    })
}

impl FlushOrder {
    /// No frame is ordered after any other.
    pub(crate) fn new() -> Self {
        Self { before: [0; FRAME_COUNT] }
    }

    /// Frames that must flush before frame `slot`.
    #[cfg(test)]
    pub(crate) fn before(&self, slot: FrameSlot) -> u64 {
        self.before[slot.index()]
    }

    /// For a task whose senders have unflushed predecessors in `predecessor_frames`: the frames it
    /// may not be placed in — the predecessors' frames and every frame that must flush before them.
    #[inline]
    pub(crate) fn forbidden(&self, predecessor_frames: u64) -> u64 {
        slots_of(predecessor_frames)
            .fold(predecessor_frames, |forbidden, frame| forbidden | self.before[frame.index()])
    }

    /// Records that frame `slot` now holds a task with predecessors in `predecessor_frames`: those
    /// frames (and everything before them) must flush before `slot` and before everything that
    /// already had to follow `slot`. `slot` must not be in [`forbidden`](Self::forbidden).
    pub(crate) fn require_before(&mut self, slot: FrameSlot, predecessor_frames: u64) {
        if predecessor_frames == 0 {
            return;
        }
        let added = self.forbidden(predecessor_frames);
        debug_assert_eq!(added & slot.bit(), 0, "flush order would become cyclic");
        let added = added & !slot.bit();
        self.before[slot.index()] |= added;
        for before in &mut self.before {
            if *before & slot.bit() != 0 {
                *before |= added;
            }
        }
    }

    /// Appends to `sequence` the frames to flush, in order, so that `slot` can flush: every frame
    /// required before it (a ready frame — one with nothing pending before it — at a time, lowest
    /// index first), then `slot` itself.
    pub(crate) fn flush_sequence(&self, slot: FrameSlot, sequence: &mut Vec<FrameSlot>) {
        let mut pending = self.before[slot.index()];
        while pending != 0 {
            let ready = slots_of(pending)
                .find(|frame| self.before[frame.index()] & pending == 0)
                // Unreachable while the relation is acyclic; lowest-first keeps it total anyway.
                .unwrap_or(FrameSlot::from_lane(pending.trailing_zeros()));
            sequence.push(ready);
            pending &= !ready.bit();
        }
        sequence.push(slot);
    }

    /// The lowest frame of `occupied` that no other frame of `occupied` must precede: the next
    /// frame to flush at the end of a block.
    pub(crate) fn next_ready(&self, occupied: u64) -> Option<FrameSlot> {
        slots_of(occupied)
            .find(|frame| self.before[frame.index()] & occupied == 0)
            .or_else(|| slots_of(occupied).next())
    }

    /// Forgets frame `slot` after it flushed: it is no longer before or after anything.
    pub(crate) fn remove(&mut self, slot: FrameSlot) {
        for before in &mut self.before {
            *before &= !slot.bit();
        }
        self.before[slot.index()] = 0;
    }

    /// Forgets every relation.
    pub(crate) fn reset(&mut self) {
        self.before = [0; FRAME_COUNT];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(index: usize) -> FrameSlot {
        FrameSlot::new(index).unwrap()
    }

    #[test]
    fn slots_of_lists_bits_lowest_first() {
        let listed: Vec<usize> = slots_of(0b1001_0110 | 1 << 63).map(FrameSlot::index).collect();
        assert_eq!(listed, vec![1, 2, 4, 7, 63]);
    }

    #[test]
    fn chains_are_closed_transitively_and_flushed_in_order() {
        let mut order = FlushOrder::new();
        // 5 before 3, then 3 before 1: 5 must also precede 1, and 1 may not precede 5 or 3.
        order.require_before(slot(3), slot(5).bit());
        order.require_before(slot(1), slot(3).bit());
        assert_eq!(order.before(slot(1)), slot(3).bit() | slot(5).bit());
        assert_eq!(order.forbidden(slot(1).bit()), 0b10_1010);
        // A frame that had to follow 3 now also follows anything added before 3.
        order.require_before(slot(3), slot(7).bit());
        assert_eq!(order.before(slot(1)), 1 << 3 | 1 << 5 | 1 << 7);
        let mut sequence = Vec::new();
        order.flush_sequence(slot(1), &mut sequence);
        let indices: Vec<usize> = sequence.iter().map(|frame| frame.index()).collect();
        assert_eq!(indices, vec![5, 7, 3, 1]);
        assert_eq!(order.next_ready(1 << 1 | 1 << 3 | 1 << 5 | 1 << 7), Some(slot(5)));
        order.remove(slot(5));
        order.remove(slot(7));
        assert_eq!(order.before(slot(1)), 1 << 3);
        assert_eq!(order.next_ready(1 << 1 | 1 << 3), Some(slot(3)));
        order.reset();
        assert_eq!(order.forbidden(u64::MAX), u64::MAX);
        assert_eq!(order.before(slot(1)), 0);
    }

    #[test]
    fn random_requirements_stay_acyclic_and_closed() {
        let mut state = 11u64;
        let mut next = |bound: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % bound
        };
        let mut order = FlushOrder::new();
        for _ in 0..5000 {
            let predecessors = (0..3).fold(0u64, |mask, _| mask | 1 << next(64));
            let allowed = !order.forbidden(predecessors);
            if allowed != 0 {
                let target = FrameSlot::from_lane(allowed.trailing_zeros());
                order.require_before(target, predecessors);
            }
            if next(4) == 0 {
                order.remove(FrameSlot::from_lane(next(64) as u32));
            }
            for frame in 0..FRAME_COUNT {
                let before = order.before[frame];
                assert_eq!(before & 1 << frame, 0, "cycle through {frame}");
                for earlier in slots_of(before) {
                    assert_eq!(order.before[earlier.index()] & !before, 0, "not closed");
                }
            }
        }
    }
}
