//! FAFO scheduling for the Zero execution engine: which transactions may run concurrently, and in
//! producer mode, in which order they go into the block.
//!
//! The pieces, in pipeline order (ARCHITECTURE §5; `DESIGN.md` has the math and the protocols):
//!
//! - [`AccessSet`] and [`Task`]: a task is 1 to 4 transactions with one predicted access set of
//!   80-bit [`KeyPrefix`]es, read-only and read-write; each sender's key is read-write. Some
//!   read-write keys may be credits (the task only adds to them), which the plan does not order
//!   against each other.
//! - [`FrameFilter`] (ParaBloom): 64 bit-sliced Bloom filters answering "which open frames may
//!   conflict with this task" in one pass.
//! - [`Framer`] (ParaFramer, producer mode): puts each task into the lowest frame it does not
//!   conflict with and streams out [`Frame`]s with consecutive block positions as they flush,
//!   keeping every sender's transactions in order.
//! - [`PlanBuilder`] / [`DependencyPlan`] (ParaScheduler): the exact dependency of each task — the
//!   latest earlier task whose access set truly conflicts with it (credits to one key excepted)
//!   — with the per-sender chain and the coinbase barrier as ordinary dependencies.
//! - [`WatermarkRelease`]: lock-free release of tasks to workers as the done-watermark passes
//!   their dependency, with a misprediction hook that re-runs a task behind all earlier ones.
//! - [`schedule`]: all of the above for one block at once, with [`ScheduleStats`].
//!
//! The crate depends on nothing of the workspace and does no I/O.
//!
//! Streaming use in producer mode: frames are planned and released as they flush.
//!
//! ```
//! use zero_scheduler::{AccessSet, Framer, PlanBuilder, SenderId, Task, WatermarkRelease};
//!
//! let tasks: Vec<Task> = (0..100u8)
//!     .map(|index| {
//!         let receiver = [index % 7; 10];
//!         Task::single(SenderId([100 + index; 10]), AccessSet::new([], [receiver]))
//!     })
//!     .collect();
//! let release = WatermarkRelease::new(tasks.len());
//! let mut framer = Framer::new();
//! let mut plan = PlanBuilder::new(None);
//! let mut order = Vec::new();
//! let mut ready = Vec::new();
//! let mut sink = |frame: zero_scheduler::Frame<'_>| {
//!     for (position, &task_id) in frame.positions().zip(frame.task_ids) {
//!         order.push(task_id);
//!         let dependency = plan.push(&tasks[task_id]);
//!         release.append(position, dependency, &mut |ready_position| ready.push(ready_position))
//!             .expect("each position is appended once");
//!     }
//! };
//! for task in &tasks {
//!     framer.push(task, &mut sink);
//! }
//! framer.finish_block(&mut sink);
//! // Workers would now run `ready` tasks and call `release.complete`.
//! while let Some(position) = ready.pop() {
//!     release.complete(position, &mut |next| ready.push(next)).expect("released before");
//! }
//! assert!(release.is_finished());
//! assert_eq!(order.len(), 100);
//! ```

mod access_set;
mod flush_order;
mod frame;
mod frame_filter;
mod framer;
mod key_hasher;
mod plan;
mod schedule;
mod task;
mod watermark;

pub use access_set::{AccessSet, KeyPrefix, KEY_PREFIX_BYTES, MAX_CREDITS};
pub use frame::{FlushReason, Frame, MAX_KEYS_PER_FRAME_SET, MAX_TASKS_PER_FRAME};
pub use frame_filter::{
    probe_positions, FrameFilter, FrameSlot, FILTER_BITS, FRAME_COUNT, PROBE_COUNT,
};
pub use framer::{Framer, FramerCounters, FramerOptions};
pub use plan::{conflicting_after, DependencyPlan, PlanBuilder};
pub use schedule::{
    schedule, schedule_with, Schedule, ScheduleMode, ScheduleStats, ScheduledFrame,
};
pub use task::{SenderId, Task, TaskError, MAX_TRANSACTIONS_PER_TASK};
pub use watermark::{ReleaseError, WatermarkRelease};
