//! Property tests of framing and planning: thousands of random blocks, mostly heavily contended.

use std::collections::HashMap;

use proptest::prelude::*;
use zero_scheduler::{
    schedule, DependencyPlan, FlushReason, Framer, FramerOptions, Schedule, ScheduleMode, SenderId,
    Task,
};

use crate::blocks::{blocks, expected_conflict_critical_path, expected_dependencies, task, Block};

/// Every property of one scheduled block.
fn check(block: &Block, mode: ScheduleMode) -> Result<Schedule, TestCaseError> {
    let result = schedule(&block.tasks, mode, block.coinbase);
    let count = block.tasks.len();

    // The order is a permutation of the input; replay mode keeps the input order.
    let mut seen = vec![false; count];
    for &task_id in &result.order {
        prop_assert!(task_id < count && !seen[task_id], "order is not a permutation");
        seen[task_id] = true;
    }
    prop_assert_eq!(result.order.len(), count);
    if mode == ScheduleMode::Replay {
        prop_assert!(result.order.iter().enumerate().all(|(position, &id)| position == id));
    }
    let in_block_order: Vec<&Task> = result.order.iter().map(|&id| &block.tasks[id]).collect();

    // Frames partition the positions, and no two tasks of one frame truly conflict.
    let mut next_position = 0;
    for frame in &result.frames {
        prop_assert_eq!(frame.first_position, next_position);
        prop_assert!(frame.task_count > 0);
        let members =
            &in_block_order[frame.first_position..frame.first_position + frame.task_count];
        let transactions: usize = members.iter().map(|task| task.transaction_count()).sum();
        prop_assert_eq!(frame.transaction_count, transactions);
        for (index, first) in members.iter().enumerate() {
            for second in &members[index + 1..] {
                prop_assert!(!first.conflicts_with(second), "conflict inside a frame");
            }
        }
        next_position += frame.task_count;
    }
    prop_assert_eq!(next_position, count);

    // The plan is exact: the latest earlier conflicting task (coinbase readers: the previous one).
    let expected = expected_dependencies(&in_block_order, block.coinbase);
    prop_assert_eq!(result.plan.dependencies(), &expected[..]);
    prop_assert_eq!(
        result.plan.conflict_critical_path(),
        expected_conflict_critical_path(&in_block_order, block.coinbase)
    );
    prop_assert!(result.plan.critical_path() >= result.plan.conflict_critical_path());

    // Per-sender order: a sender's transactions keep their input order, and each task of a sender
    // depends (through the watermark: its dependency is at or after) on the sender's previous one.
    let mut position_of = vec![0; count];
    for (position, &id) in result.order.iter().enumerate() {
        position_of[id] = position;
    }
    let mut last_position: HashMap<SenderId, usize> = HashMap::new();
    for (id, task) in block.tasks.iter().enumerate() {
        let position = position_of[id];
        for sender in task.senders() {
            if let Some(&previous) = last_position.get(sender) {
                if previous != position {
                    prop_assert!(previous < position, "sender order broken");
                    prop_assert!(result.plan.dependency(position) >= Some(previous));
                }
            }
            last_position.insert(*sender, position);
        }
    }

    // Figures.
    let transactions: u64 = block.tasks.iter().map(|task| task.transaction_count() as u64).sum();
    prop_assert_eq!(result.stats.tasks, count as u64);
    prop_assert_eq!(result.stats.txs, transactions);
    prop_assert_eq!(result.stats.frames, result.frames.len() as u64);
    prop_assert_eq!(result.stats.critical_path, result.plan.critical_path());
    prop_assert!((0.0..=1.0).contains(&result.stats.false_positive_rate));
    Ok(result)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn producer_and_replay_schedules_are_exact_and_keep_sender_order(block in blocks(160)) {
        let produced = check(&block, ScheduleMode::Producer)?;
        // Same input, same output.
        prop_assert_eq!(&produced, &schedule(&block.tasks, ScheduleMode::Producer, block.coinbase));
        check(&block, ScheduleMode::Replay)?;
        // Planning the producer's order again as a replay gives the same plan.
        let reordered: Vec<&Task> = produced.order.iter().map(|&id| &block.tasks[id]).collect();
        prop_assert_eq!(&DependencyPlan::build(reordered, block.coinbase), &produced.plan);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn large_blocks_reach_the_frame_limits(block in blocks(1200)) {
        check(&block, ScheduleMode::Producer)?;
    }
}

#[test]
fn hot_senders_and_hot_keys_flush_in_every_way_and_keep_order() {
    // Four hot senders (30% of the tasks); a fifth of the tasks write one of a few hot keys (a
    // single one in the first round, enough to make all 64 frames conflict), the rest fresh keys.
    let mut state = 3u64;
    let mut next = |bound: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % bound
    };
    let tasks: Vec<Block> = (0..6)
        .map(|round| Block {
            tasks: (0..3000u64)
                .map(|index| {
                    let hot = next(10) < 3;
                    let sender = if hot { next(4) } else { 1000 + round * 10_000 + index };
                    let hot_keys = [1, 2, 8][round as usize % 3];
                    let write = if next(10) < 2 { next(hot_keys) } else { 100 + next(1_000_000) };
                    task(&[sender], &[100 + next(1_000_000)], &[write])
                })
                .collect(),
            coinbase: None,
        })
        .collect();
    let mut reasons = HashMap::new();
    for block in &tasks {
        check(block, ScheduleMode::Producer).expect("properties hold");
        let mut framer = Framer::with_options(FramerOptions { measure_false_positives: true });
        let mut sink = |frame: zero_scheduler::Frame<'_>| {
            *reasons.entry(frame.reason).or_insert(0) += 1;
        };
        for task in &block.tasks {
            framer.push(task, &mut sink);
        }
        let counters = framer.finish_block(&mut sink);
        assert_eq!(counters.false_negatives, 0);
    }
    for reason in
        [FlushReason::Full, FlushReason::Forced, FlushReason::SenderOrder, FlushReason::EndOfBlock]
    {
        assert!(reasons.get(&reason).is_some_and(|&count| count > 0), "{reason:?}: {reasons:?}");
    }
}
