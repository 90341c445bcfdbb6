//! [`FrameFilter`] (ParaBloom): 64 Bloom filters, one per open frame, bit-sliced into `u64` lanes.
//!
//! Each of the two arrays (read-only keys, read-write keys) has [`FILTER_BITS`] words; bit `i` of
//! every word belongs to frame `i`, so frame `i`'s Bloom filter is the 2048-bit column `i`. A key's
//! [`PROBE_COUNT`] probe positions are consecutive 11-bit slices of its prefix (bits 0..55 of the
//! first seven bytes read little-endian): no hashing, because prefixes are SHA-256 output already.
//! ANDing the 5 probed words of an array gives, in one step, the 64-frame mask of frames that may
//! hold the key; a frame is reported only if all 5 of its bits are set, so there are no false
//! negatives. False positives only cost parallelism; `DESIGN.md` gives their probability.

use std::fmt;

use crate::access_set::{AccessSet, KeyPrefix};

/// Number of frames (Bloom filters) one [`FrameFilter`] holds: one per bit of a `u64`.
pub const FRAME_COUNT: usize = 64;

/// Bits per frame filter, and words per array.
pub const FILTER_BITS: usize = 2048;

/// Probes (hash functions) per key.
pub const PROBE_COUNT: usize = 5;

/// Width of one probe slice: log2 of [`FILTER_BITS`].
const PROBE_SLICE_BITS: usize = 11;

/// Mask selecting one probe slice.
const PROBE_SLICE_MASK: u64 = (1 << PROBE_SLICE_BITS) - 1;

/// One of the [`FRAME_COUNT`] frame slots of a [`FrameFilter`] (and of a
/// [`Framer`](crate::Framer)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameSlot(u8);

impl FrameSlot {
    /// The slot with `index`, if `index < FRAME_COUNT`.
    pub const fn new(index: usize) -> Option<Self> {
        if index < FRAME_COUNT {
            Some(Self(index as u8))
        } else {
            None
        }
    }

    /// Slot `index & 63`: for indices computed from a `u64` mask.
    pub(crate) const fn from_lane(index: u32) -> Self {
        Self((index as usize % FRAME_COUNT) as u8)
    }

    /// The slot's index, below [`FRAME_COUNT`].
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The slot's bit in a 64-frame mask.
    pub const fn bit(self) -> u64 {
        1 << self.0
    }
}

/// The [`PROBE_COUNT`] word positions (each below [`FILTER_BITS`]) that `key` sets and tests.
///
/// ```
/// use zero_scheduler::probe_positions;
///
/// let mut key = [0u8; 10];
/// key[0] = 0b0000_0011; // bits 0 and 1
/// key[1] = 0b0000_1000; // bit 11: the first bit of the second slice
/// assert_eq!(probe_positions(&key), [3, 1, 0, 0, 0]);
/// ```
pub fn probe_positions(key: &KeyPrefix) -> [usize; PROBE_COUNT] {
    let mut bytes = [0u8; 8];
    bytes[..7].copy_from_slice(&key[..7]);
    let bits = u64::from_le_bytes(bytes);
    std::array::from_fn(|probe| ((bits >> (probe * PROBE_SLICE_BITS)) & PROBE_SLICE_MASK) as usize)
}

/// The bit-sliced filters of 64 frames; see the module documentation.
///
/// ```
/// use zero_scheduler::{AccessSet, FrameFilter, FrameSlot};
///
/// let mut filter = FrameFilter::new();
/// let slot = FrameSlot::new(3).expect("3 < 64");
/// filter.insert(slot, &AccessSet::new([], [[0x5a; 10]]));
/// // A reader of the key conflicts with frame 3; a reader of another key with nothing.
/// assert_eq!(filter.conflicts(&AccessSet::new([[0x5a; 10]], [])), slot.bit());
/// assert_eq!(filter.conflicts(&AccessSet::new([[0x17; 10]], [])), 0);
/// filter.clear(slot);
/// assert_eq!(filter.conflicts(&AccessSet::new([[0x5a; 10]], [])), 0);
/// ```
#[derive(Clone)]
pub struct FrameFilter {
    read_only: Box<[u64; FILTER_BITS]>,
    read_write: Box<[u64; FILTER_BITS]>,
}

impl Default for FrameFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FrameFilter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FrameFilter")
            .field("occupied_frames", &format_args!("{:#018x}", self.occupied_frames()))
            .finish()
    }
}

/// AND of the probed words of `array`: the frames whose filter has all of `key`'s bits.
#[inline]
fn lanes_holding(array: &[u64; FILTER_BITS], probes: &[usize; PROBE_COUNT]) -> u64 {
    probes.iter().fold(u64::MAX, |lanes, &position| lanes & array[position % FILTER_BITS])
}

impl FrameFilter {
    /// An empty filter: no frame holds any key.
    pub fn new() -> Self {
        Self { read_only: Box::new([0; FILTER_BITS]), read_write: Box::new([0; FILTER_BITS]) }
    }

    /// Adds a task's keys to frame `slot`: read-only keys to its read-only filter, read-write keys
    /// to its read-write filter.
    pub fn insert(&mut self, slot: FrameSlot, access_set: &AccessSet) {
        let bit = slot.bit();
        for key in access_set.read_only() {
            for position in probe_positions(key) {
                self.read_only[position % FILTER_BITS] |= bit;
            }
        }
        for key in access_set.read_write() {
            for position in probe_positions(key) {
                self.read_write[position % FILTER_BITS] |= bit;
            }
        }
    }

    /// The 64-frame mask of frames a task with `access_set` may conflict with: frames that may
    /// write one of its read keys, and frames that may read or write one of its written keys.
    /// Never misses a true conflict.
    #[inline]
    pub fn conflicts(&self, access_set: &AccessSet) -> u64 {
        let mut mask = 0;
        for key in access_set.read_only() {
            mask |= lanes_holding(&self.read_write, &probe_positions(key));
        }
        for key in access_set.read_write() {
            let probes = probe_positions(key);
            mask |=
                lanes_holding(&self.read_write, &probes) | lanes_holding(&self.read_only, &probes);
        }
        mask
    }

    /// Frames whose read-only filter may hold `key`.
    pub fn frames_maybe_reading(&self, key: &KeyPrefix) -> u64 {
        lanes_holding(&self.read_only, &probe_positions(key))
    }

    /// Frames whose read-write filter may hold `key`.
    pub fn frames_maybe_writing(&self, key: &KeyPrefix) -> u64 {
        lanes_holding(&self.read_write, &probe_positions(key))
    }

    /// Empties frame `slot`'s filters, leaving the other 63 frames untouched.
    pub fn clear(&mut self, slot: FrameSlot) {
        let keep = !slot.bit();
        for word in self.read_only.iter_mut().chain(self.read_write.iter_mut()) {
            *word &= keep;
        }
    }

    /// Mask of frames with at least one bit set.
    pub fn occupied_frames(&self) -> u64 {
        self.read_only.iter().chain(self.read_write.iter()).fold(0, |mask, word| mask | word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniformly distributed prefixes (splitmix64).
    fn keys(seed: u64, count: usize) -> Vec<KeyPrefix> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                let mut key = [0u8; 10];
                for chunk in key.chunks_mut(5) {
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut mixed = state;
                    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    mixed ^= mixed >> 31;
                    chunk.copy_from_slice(&mixed.to_le_bytes()[..5]);
                }
                key
            })
            .collect()
    }

    #[test]
    fn slot_bounds() {
        assert_eq!(FrameSlot::new(63).map(FrameSlot::bit), Some(1 << 63));
        assert_eq!(FrameSlot::new(64), None);
        assert_eq!(FrameSlot::from_lane(5).index(), 5);
    }

    #[test]
    fn probes_are_eleven_bit_slices_below_the_filter_size() {
        let key = [0xff; 10];
        assert_eq!(probe_positions(&key), [2047; 5]);
        for key in keys(1, 1000) {
            assert!(probe_positions(&key).iter().all(|&position| position < FILTER_BITS));
        }
    }

    #[test]
    fn read_read_is_no_conflict_but_write_conflicts_both_ways() {
        let key = keys(2, 1)[0];
        let mut filter = FrameFilter::new();
        let reader_slot = FrameSlot::new(0).unwrap();
        filter.insert(reader_slot, &AccessSet::new([key], []));
        assert_eq!(filter.conflicts(&AccessSet::new([key], [])), 0);
        assert_eq!(filter.conflicts(&AccessSet::new([], [key])), reader_slot.bit());
        let writer_slot = FrameSlot::new(9).unwrap();
        filter.insert(writer_slot, &AccessSet::new([], [key]));
        assert_eq!(filter.conflicts(&AccessSet::new([key], [])), writer_slot.bit());
        assert_eq!(filter.conflicts(&AccessSet::new([], [key])), writer_slot.bit() | 1);
        assert_eq!(filter.frames_maybe_reading(&key), 1);
        assert_eq!(filter.frames_maybe_writing(&key), writer_slot.bit());
    }

    #[test]
    fn no_false_negatives_and_frames_stay_separate() {
        let mut filter = FrameFilter::new();
        let all_keys = keys(3, 64 * 40);
        for (index, frame_keys) in all_keys.chunks(40).enumerate() {
            let slot = FrameSlot::new(index).unwrap();
            filter.insert(
                slot,
                &AccessSet::new(frame_keys[..20].to_vec(), frame_keys[20..].to_vec()),
            );
        }
        assert_eq!(filter.occupied_frames(), u64::MAX);
        for (index, frame_keys) in all_keys.chunks(40).enumerate() {
            let bit = 1u64 << index;
            for key in &frame_keys[..20] {
                assert_ne!(filter.frames_maybe_reading(key) & bit, 0);
            }
            for key in &frame_keys[20..] {
                assert_ne!(filter.frames_maybe_writing(key) & bit, 0);
            }
        }
        let cleared = FrameSlot::new(17).unwrap();
        filter.clear(cleared);
        assert_eq!(filter.occupied_frames(), !cleared.bit());
        for key in &all_keys[17 * 40..18 * 40] {
            assert_eq!(filter.conflicts(&AccessSet::new([], [*key])) & cleared.bit(), 0);
        }
    }
}
