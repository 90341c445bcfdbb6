//! A key every task reads (an ERC20 token's account): once one open frame's read-write filter
//! falsely covers it, the filter reports that frame to every later task. The framer confirms
//! reported conflicts against the frame's exact keys, so such false positives never reach
//! placement.

use zero_scheduler::{Frame, Framer, FramerCounters, FramerOptions, Task};

use crate::blocks::task;

/// Pool index of the key every task reads in the shared-key blocks.
const SHARED_KEY: u64 = 0;

/// `count` transfers among a million accounts: a sender and two written balance keys each, plus
/// [`SHARED_KEY`] read by every task when `shared_read` is set.
fn token_transfers(count: usize, shared_read: bool, seed: u64) -> Vec<Task> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        1 + (state >> 24) % 1_000_000
    };
    let reads: &[u64] = if shared_read { &[SHARED_KEY] } else { &[] };
    (0..count).map(|_| task(&[next()], reads, &[next(), next()])).collect()
}

/// Frames 5 blocks of 10 000 tasks with false-positive measurement; the summed counters.
fn counters_over_blocks(shared_read: bool) -> FramerCounters {
    let mut framer = Framer::with_options(FramerOptions { measure_false_positives: true });
    let mut totals = FramerCounters::default();
    for block in 0..5 {
        let mut sink = |_: Frame<'_>| {};
        for task in &token_transfers(10_000, shared_read, 7 + block) {
            framer.push(task, &mut sink);
        }
        let counters = framer.finish_block(&mut sink);
        totals.transactions += counters.transactions;
        totals.frames += counters.frames;
        totals.true_non_conflicts += counters.true_non_conflicts;
        totals.false_positives += counters.false_positives;
        totals.placement_false_positives += counters.placement_false_positives;
        totals.false_negatives += counters.false_negatives;
    }
    totals
}

#[test]
fn filter_false_positives_on_a_key_every_task_reads_never_reach_placement() {
    let plain = counters_over_blocks(false);
    let shared = counters_over_blocks(true);
    // The filter alone reports more frames falsely with the shared key: each time a frame's
    // read-write filter comes to cover it, every later task until the frame flushes.
    assert!(shared.false_positives > plain.false_positives, "{shared:?}\n{plain:?}");
    // The placement decision: none of them, and frames as dense as without the shared key.
    assert_eq!((shared.placement_false_positives, shared.false_negatives), (0, 0), "{shared:?}");
    assert_eq!(plain.placement_false_positives, 0);
    let density = |counters: &FramerCounters| counters.transactions as f64 / counters.frames as f64;
    assert!(
        density(&shared) >= 0.99 * density(&plain),
        "{:.2} txs per frame with the shared key, {:.2} without",
        density(&shared),
        density(&plain)
    );
}
