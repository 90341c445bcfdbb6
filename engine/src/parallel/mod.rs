//! The parallel engine (ARCHITECTURE §3, §6): ParaLyze prediction, FAFO scheduling, pinned
//! workers, validation and in-order commit.
//!
//! - [`predict`]: access-set prediction (fields for transfers, revm simulation otherwise).
//! - [`ParallelExecutor`]: one block under a dependency plan on pinned workers with
//!   work-stealing deques, committed in block order into a versioned overlay whose final values
//!   become the block's change set.
//! - [`schedule_block`]: prediction → scheduler tasks → order and plan, in producer mode (FAFO
//!   reorders) or replay mode (order kept).
//!
//! Results equal the sequential oracle's over the same order, bit for bit: predictions only
//! decide what may run at once; a run's reads are validated at commit unless it and every run
//! before it stayed inside their predictions (the plan then guarantees them).

mod executor;
mod handler;
pub mod overlay;
mod predict;
pub mod runtime;
mod view;

pub use executor::{ParallelExecutor, ParallelStats};
pub use predict::{predict, Prediction, PredictionMode};
pub use view::CodeCache;

use alloy_primitives::Address;
use zero_scheduler::{schedule_with, FramerOptions, Schedule, ScheduleMode, Task};
use zero_state::StateKey;

/// Schedules a block from its transactions' predictions (whose tasks carry the key prefixes,
/// hashed at prediction): FAFO framing in producer mode, the given order in replay mode. The
/// Bloom filter's false positives are not measured here (production); `zero-producer
/// schedule-stats` measures them.
pub fn schedule_block(
    predictions: &[Prediction],
    beneficiary: Address,
    mode: ScheduleMode,
) -> Schedule {
    let tasks: Vec<&Task> = predictions.iter().map(Prediction::task).collect();
    let coinbase = Some(StateKey::Account(beneficiary).hash().prefix());
    schedule_with(&tasks, mode, coinbase, FramerOptions { measure_false_positives: false })
}
