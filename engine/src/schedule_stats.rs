//! The figures behind `zero-producer schedule-stats`: how FAFO's producer mode frames a generated
//! workload, without executing it.
//!
//! Method. The workload is generated and goes through intake (decoding, sender recovery); each
//! transaction's access set is predicted from its fields and the workload contracts' storage
//! layout ([`crate::workload_prediction`]) and turned into a scheduler task (key hashing). None of
//! that is timed. Then each block, as generated (`block_txs` transactions), is scheduled in
//! producer mode by [`zero_scheduler::schedule`]: framing, with the Bloom filter's false positives
//! measured against exact sets, and the dependency plan. That call alone is timed
//! (`framing_tx_per_s`); the measurement makes it somewhat slower than production framing, which
//! skips it.
//!
//! Blocks are scheduled independently and run one after the other, so the figures add up: frames
//! and flushes are summed; the false-positive rate is the sum of false positives over the sum of
//! checked non-conflicting (task, open frame) pairs; the critical path is the sum of the blocks'
//! critical paths, and `ideal_speedup = txs / Σ critical_path`.

use crate::{
    intake::{intake, IntakeError},
    parallel::Prediction,
    workload_prediction::predict_workload,
};
use serde::Serialize;
use std::time::Instant;
use zero_fixtures::workload::{Workload, WorkloadConfig, WorkloadError};
use zero_scheduler::{schedule_with, FramerOptions, ScheduleMode, ScheduleStats, Task};
use zero_state::StateKey;

/// Why the figures could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleStatsError {
    /// The workload configuration is invalid.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A generated transaction failed intake (a generator bug).
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

/// One run: one JSON line of `zero-producer schedule-stats --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatsReport {
    /// Workload kind.
    pub workload: &'static str,
    /// Transactions scheduled.
    pub txs: u64,
    /// Frames flushed, summed over blocks.
    pub frames: u64,
    /// `txs / frames`.
    pub txs_per_frame: f64,
    /// Frames flushed because all 64 frames conflicted with a transaction.
    pub forced_flushes: u64,
    /// Bloom-filter false positives per truly non-conflicting (task, open frame) pair, over all
    /// blocks.
    pub false_positive_rate: f64,
    /// Sum over blocks of the plan's critical path under the done-watermark, in transactions.
    pub critical_path: u64,
    /// `txs / critical_path`: the speed-up over sequential execution with unlimited workers and
    /// equal-cost transactions.
    pub ideal_speedup: f64,
    /// Transactions per second through framing and planning (one thread).
    pub framing_tx_per_s: f64,
    /// Framing and planning time, in seconds, summed over blocks.
    pub framing_seconds: f64,
    /// Frames flushed early to keep a sender's transactions in nonce order.
    pub sender_order_flushes: u64,
    /// Sum over blocks of the longest chain of true conflicts, in transactions: the bound of any
    /// exact scheduler.
    pub conflict_critical_path: u64,
    /// Blocks scheduled.
    pub blocks: usize,
    /// Transactions per block.
    pub block_txs: usize,
    /// Accounts in genesis.
    pub accounts: usize,
    /// Fraction of senders and receivers drawn from the hot set (0 when uniform).
    pub hot_fraction: f64,
    /// Size of the hot set (0 when uniform).
    pub hot_accounts: usize,
    /// The workload seed.
    pub seed: u64,
    /// Generation, intake, prediction and task building, in seconds (not part of any figure).
    pub prepare_seconds: f64,
}

/// Generates the workload `config` describes and schedules it block by block in producer mode.
pub fn run(config: &WorkloadConfig) -> Result<ScheduleStatsReport, ScheduleStatsError> {
    let started = Instant::now();
    let workload = Workload::generate(config)?;
    let coinbase = workload.coinbase;
    let coinbase_key = StateKey::Account(coinbase).hash().prefix();
    let pools = workload.pools.iter().copied().collect();
    let mut prepare_seconds = started.elapsed().as_secs_f64();

    let mut totals = ScheduleStats::default();
    let mut framing_seconds = 0.0;
    for raw in &workload.blocks {
        let started = Instant::now();
        let transactions = intake(raw)?;
        let predictions = predict_workload(&transactions, &pools, coinbase);
        let tasks: Vec<&Task> = predictions.iter().map(Prediction::task).collect();
        prepare_seconds += started.elapsed().as_secs_f64();

        let started = Instant::now();
        let options = FramerOptions { measure_false_positives: true };
        let scheduled = schedule_with(&tasks, ScheduleMode::Producer, Some(coinbase_key), options);
        framing_seconds += started.elapsed().as_secs_f64();
        add(&mut totals, &scheduled.stats);
    }

    let ratio = |numerator: f64, denominator: f64| {
        if denominator > 0.0 {
            numerator / denominator
        } else {
            0.0
        }
    };
    let txs = totals.txs as f64;
    Ok(ScheduleStatsReport {
        workload: config.kind.name(),
        txs: totals.txs,
        frames: totals.frames,
        txs_per_frame: ratio(txs, totals.frames as f64),
        forced_flushes: totals.forced_flushes,
        false_positive_rate: ratio(totals.false_positives as f64, totals.true_non_conflicts as f64),
        critical_path: totals.critical_path,
        ideal_speedup: ratio(txs, totals.critical_path as f64),
        framing_tx_per_s: ratio(txs, framing_seconds),
        framing_seconds,
        sender_order_flushes: totals.sender_order_flushes,
        conflict_critical_path: totals.conflict_critical_path,
        blocks: workload.blocks.len(),
        block_txs: config.block_txs,
        accounts: config.accounts,
        hot_fraction: config.hot_spot.map_or(0.0, |hot| hot.fraction),
        hot_accounts: config.hot_spot.map_or(0, |hot| hot.accounts),
        seed: config.seed,
        prepare_seconds,
    })
}

/// Adds one block's counts to `totals` (the averages are derived at the end).
fn add(totals: &mut ScheduleStats, block: &ScheduleStats) {
    totals.tasks += block.tasks;
    totals.txs += block.txs;
    totals.frames += block.frames;
    totals.forced_flushes += block.forced_flushes;
    totals.sender_order_flushes += block.sender_order_flushes;
    totals.false_positives += block.false_positives;
    totals.true_non_conflicts += block.true_non_conflicts;
    totals.critical_path += block.critical_path;
    totals.conflict_critical_path += block.conflict_critical_path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::schedule_block;
    use zero_fixtures::workload::{HotSpot, WorkloadKind};

    #[test]
    fn figures_are_the_sums_of_the_production_path_per_block() {
        let config = WorkloadConfig::new(WorkloadKind::Mixed, 400, 1_000, 300, 5);
        let report = run(&config).unwrap();
        // The same blocks through the engine's own prediction-to-schedule step.
        let workload = Workload::generate(&config).unwrap();
        let blocks: Vec<ScheduleStats> = workload
            .blocks
            .iter()
            .map(|raw| {
                let transactions = intake(raw).unwrap();
                let pools = workload.pools.iter().copied().collect();
                let predictions = predict_workload(&transactions, &pools, workload.coinbase);
                schedule_block(&predictions, workload.coinbase, ScheduleMode::Producer).stats
            })
            .collect();
        let sum = |field: fn(&ScheduleStats) -> u64| blocks.iter().map(field).sum::<u64>();
        assert_eq!((report.txs, report.blocks), (1_000, 4));
        assert_eq!(report.frames, sum(|block| block.frames));
        assert_eq!(report.forced_flushes, sum(|block| block.forced_flushes));
        assert_eq!(report.sender_order_flushes, sum(|block| block.sender_order_flushes));
        assert_eq!(report.critical_path, sum(|block| block.critical_path));
        assert_eq!(report.conflict_critical_path, sum(|block| block.conflict_critical_path));
        assert_eq!(report.ideal_speedup, 1_000.0 / report.critical_path as f64);
        assert_eq!(report.txs_per_frame, 1_000.0 / report.frames as f64);
        // Production leaves false-positive measurement off (it changes no framing decision);
        // the report measures them (the rate's arithmetic is tested in the scheduler).
        assert_eq!(sum(|block| block.true_non_conflicts), 0);
        assert!((0.0..1.0).contains(&report.false_positive_rate));
        assert!(report.framing_tx_per_s > 0.0);
    }

    #[test]
    fn a_hot_spot_lengthens_the_critical_path() {
        let uniform = WorkloadConfig::new(WorkloadKind::Erc20, 2_000, 800, 800, 3);
        let hot = WorkloadConfig {
            hot_spot: Some(HotSpot { fraction: 0.5, accounts: 2 }),
            ..uniform.clone()
        };
        let (uniform, hot) = (run(&uniform).unwrap(), run(&hot).unwrap());
        assert!(hot.critical_path > uniform.critical_path, "{hot:?} vs {uniform:?}");
        assert_eq!((hot.hot_fraction, hot.hot_accounts), (0.5, 2));
    }
}
