//! The bit-sliced `FrameFilter` against exact sets, against a one-frame model of itself, and
//! against the `bloomfilter` crate as a reference Bloom filter of the same size and probe count.

use bloomfilter::Bloom;
use proptest::collection::vec;
use proptest::prelude::*;
use zero_scheduler::{
    probe_positions, schedule, AccessSet, FrameFilter, FrameSlot, KeyPrefix, ScheduleMode,
    FILTER_BITS, PROBE_COUNT,
};

use crate::blocks::{key, task};

/// The textbook false-positive probability of one membership query: `(1 - (1 - 1/m)^(k n))^k`.
fn theoretical_rate(keys: usize) -> f64 {
    let bits = FILTER_BITS as f64;
    let probes = PROBE_COUNT as i32;
    (1.0 - (1.0 - 1.0 / bits).powf(f64::from(probes) * keys as f64)).powi(probes)
}

#[test]
fn false_positive_rate_matches_the_reference_filter_and_the_formula() {
    // 2048 bits = 256 bytes; 284 expected items makes the reference choose k = round(m/n ln 2) = 5.
    let seed: [u8; 32] =
        std::array::from_fn(|index| (index as u8).wrapping_mul(37).wrapping_add(11));
    for (round, inserted) in [32usize, 64, 128, 192, 256].into_iter().enumerate() {
        let mut reference: Bloom<KeyPrefix> =
            Bloom::new_with_seed(FILTER_BITS / 8, 284, &seed).expect("valid reference filter");
        assert_eq!(reference.number_of_hash_functions(), PROBE_COUNT as u32);
        assert_eq!(reference.len(), FILTER_BITS as u64);
        let mut filter = FrameFilter::new();
        let slot = FrameSlot::new(round * 11).expect("in range");
        let keys: Vec<KeyPrefix> =
            (0..inserted as u64).map(|index| key(round as u64 * 1_000_000 + index)).collect();
        filter.insert(slot, &AccessSet::new([], keys.iter().copied()));
        for key in &keys {
            reference.set(key);
            assert_eq!(filter.frames_maybe_writing(key), slot.bit(), "false negative");
            assert!(reference.check(key));
        }
        let trials = 200_000u64;
        let (mut ours, mut theirs) = (0u64, 0u64);
        for index in 0..trials {
            let probe = key(round as u64 * 1_000_000 + 500_000 + index);
            ours += u64::from(filter.frames_maybe_writing(&probe) != 0);
            theirs += u64::from(reference.check(&probe));
        }
        let (ours, theirs) = (ours as f64 / trials as f64, theirs as f64 / trials as f64);
        let expected = theoretical_rate(inserted);
        // Binomial standard deviation of the estimate, plus a floor for tiny rates.
        let tolerance = 5.0 * (expected * (1.0 - expected) / trials as f64).sqrt() + 2e-5;
        assert!(
            (ours - expected).abs() < tolerance + 0.1 * expected,
            "n={inserted}: ours {ours}, formula {expected}"
        );
        assert!(
            (theirs - expected).abs() < tolerance + 0.1 * expected,
            "n={inserted}: reference {theirs}, formula {expected}"
        );
    }
}

#[test]
fn transfer_workload_stays_within_the_documented_budget() {
    // Uniform random transfers among a million accounts: two read-write keys per task.
    let mut state = 99u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 24) % 1_000_000
    };
    let tasks: Vec<_> = (0..30_000).map(|_| task(&[next()], &[], &[next()])).collect();
    let result = schedule(&tasks, ScheduleMode::Producer, None);
    // DESIGN.md: about 0.9% per (task, open frame) pair for this workload; budget 2%.
    assert!(result.stats.false_positive_rate < 0.02, "{:?}", result.stats);
    assert!(result.stats.false_positive_rate > 0.0, "the filter is not exact: some must show");
    let stats = &result.stats;
    let ratio = stats.false_positives as f64 / stats.true_non_conflicts as f64;
    assert_eq!(stats.false_positive_rate, ratio, "the counts behind the rate are reported");
}

/// One frame's filter as plain bitmaps (read-only, read-write): the model of one lane.
struct OneFrame {
    read_only: Vec<bool>,
    read_write: Vec<bool>,
}

impl OneFrame {
    fn new(set: &AccessSet) -> Self {
        let mut frame =
            Self { read_only: vec![false; FILTER_BITS], read_write: vec![false; FILTER_BITS] };
        for key in set.read_only() {
            probe_positions(key).iter().for_each(|&position| frame.read_only[position] = true);
        }
        for key in set.read_write() {
            probe_positions(key).iter().for_each(|&position| frame.read_write[position] = true);
        }
        frame
    }

    fn conflicts(&self, query: &AccessSet) -> bool {
        let holds = |bits: &[bool], key: &KeyPrefix| probe_positions(key).iter().all(|&p| bits[p]);
        query.read_only().iter().any(|key| holds(&self.read_write, key))
            || query
                .read_write()
                .iter()
                .any(|key| holds(&self.read_write, key) || holds(&self.read_only, key))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Lanes are independent: the 64-frame answer equals, frame by frame, a filter holding only
    /// that frame; and nothing truly conflicting is ever missed.
    #[test]
    fn bit_slices_are_independent_filters_without_false_negatives(
        frames in vec((vec(0u64..400, 0..40), vec(0u64..400, 0..40)), 1..=64),
        queries in vec((vec(0u64..400, 0..4), vec(0u64..400, 0..4)), 1..20),
        cleared in 0usize..64,
    ) {
        let sets: Vec<AccessSet> = frames
            .iter()
            .map(|(reads, writes)| {
                AccessSet::new(reads.iter().map(|&i| key(i)), writes.iter().map(|&i| key(i)))
            })
            .collect();
        let mut filter = FrameFilter::new();
        for (index, set) in sets.iter().enumerate() {
            filter.insert(FrameSlot::new(index).expect("at most 64"), set);
        }
        let models: Vec<OneFrame> = sets.iter().map(OneFrame::new).collect();
        let cleared_slot = FrameSlot::new(cleared).expect("below 64");
        filter.clear(cleared_slot);
        for (reads, writes) in &queries {
            let query =
                AccessSet::new(reads.iter().map(|&i| key(i)), writes.iter().map(|&i| key(i)));
            let mask = filter.conflicts(&query);
            prop_assert_eq!(mask & cleared_slot.bit(), 0);
            for (index, set) in sets.iter().enumerate() {
                if index == cleared {
                    continue;
                }
                let slot = FrameSlot::new(index).expect("at most 64");
                prop_assert_eq!(mask & slot.bit() != 0, models[index].conflicts(&query));
                if set.conflicts_with(&query) {
                    prop_assert_ne!(mask & slot.bit(), 0, "false negative");
                }
            }
        }
    }
}
