//! [`WatermarkRelease`]: releases planned tasks to workers as the done-watermark advances.
//!
//! The done-watermark is the length of the longest prefix of block positions whose tasks are all
//! done. A task whose [`DependencyPlan`] dependency is `d` needs the watermark to reach `d + 1`
//! (its *required prefix*); a task with no dependency needs 0 and is released as soon as it is
//! appended. Because the dependency is the latest earlier conflicting task, the prefix covers every
//! earlier conflicting task, so the release is exact.
//!
//! # Who waits for whom
//!
//! Nobody blocks in here. Waiting tasks sit in bucket `p` (a lock-free list per required prefix
//! `p`). A worker that completes a task marks it done and tries to advance the watermark over the
//! done prefix with a compare-and-swap; the thread whose CAS moves the watermark from `w` to `w'`
//! owns buckets `w + 1 ..= w'`: it closes each one (swaps in a `CLOSED` marker) and releases the
//! tasks that were in it. A task appended to an already closed bucket is released by the appender.
//! Each bucket is closed exactly once (watermark ranges won by CAS are disjoint), each task is in
//! exactly one bucket at a time, and a task leaves `Waiting` for `Released` by CAS, so every task
//! is released exactly once per time it is enqueued. A task waits only for lower positions and
//! position 0 waits for nothing, so by induction every task is released as long as every released
//! task is eventually completed or reported as mispredicted — there is no cycle to deadlock on.
//!
//! # Misprediction
//!
//! [`report_misprediction`](WatermarkRelease::report_misprediction) sends a released task back to
//! waiting with required prefix = its own position: it is released again once *every* earlier
//! task is done, and it is never dropped (ARCHITECTURE §3.4). Later tasks that may have run
//! without its real writes are the executor's to re-validate ([`conflicting_after`]).
//!
//! # Memory orderings
//!
//! Task states and the watermark use `SeqCst`: completing is "store my state, then load the
//! watermark", advancing is "CAS the watermark, then load the next state" — a store-then-load
//! pattern on two locations (Dekker), where acquire/release alone would let both threads miss each
//! other's write and leave the watermark stuck behind a done task. In the single total order one
//! of the two always sees the other. Bucket lists are a Treiber stack that is only pushed to and
//! then drained once: the push CAS is `Release` (publishing the link written just before it), the
//! draining swap `AcqRel`; all pushes are RMWs on the head, so the drain acquires every link.
//!
//! [`DependencyPlan`]: crate::DependencyPlan
//! [`conflicting_after`]: crate::conflicting_after

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use thiserror::Error;

use crate::plan::DependencyPlan;

/// Bucket head of an empty, still open bucket; also the end of a list.
const EMPTY: usize = usize::MAX;
/// Bucket head of a bucket whose prefix the watermark has reached.
const CLOSED: usize = usize::MAX - 1;

/// Task states.
const ABSENT: u8 = 0;
const WAITING: u8 = 1;
const RELEASED: u8 = 2;
const DONE: u8 = 3;

/// A call to [`WatermarkRelease`] did not fit the task's state.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReleaseError {
    /// The position is not below the capacity given at construction.
    #[error("position {position} is out of range: the block holds {capacity} tasks")]
    PositionOutOfRange {
        /// Position given.
        position: usize,
        /// Tasks the releaser was built for.
        capacity: usize,
    },
    /// A dependency must be an earlier position.
    #[error("task {position} cannot depend on position {dependency}, which is not earlier")]
    DependencyNotEarlier {
        /// Position given.
        position: usize,
        /// Dependency given.
        dependency: usize,
    },
    /// The task was appended before.
    #[error("task {position} was already appended")]
    AlreadyAppended {
        /// Position given.
        position: usize,
    },
    /// Only a released (running) task can be completed or reported as mispredicted.
    #[error("task {position} is not released (it is waiting, absent or already done)")]
    NotReleased {
        /// Position given.
        position: usize,
    },
}

/// Releases the tasks of one block as their dependencies complete; see the module documentation.
///
/// ```
/// use zero_scheduler::WatermarkRelease;
///
/// let release = WatermarkRelease::new(3);
/// let mut ready = Vec::new();
/// release.append(0, None, &mut |position| ready.push(position))?;
/// release.append(1, None, &mut |position| ready.push(position))?;
/// release.append(2, Some(1), &mut |position| ready.push(position))?;
/// assert_eq!(ready, vec![0, 1]);
/// release.complete(1, &mut |position| ready.push(position))?;
/// assert_eq!(ready, vec![0, 1], "2 also waits for 0: the watermark is still 0");
/// release.complete(0, &mut |position| ready.push(position))?;
/// assert_eq!(ready, vec![0, 1, 2]);
/// # Ok::<(), zero_scheduler::ReleaseError>(())
/// ```
#[derive(Debug)]
pub struct WatermarkRelease {
    states: Box<[AtomicU8]>,
    /// `bucket_heads[p]`: first task waiting for prefix `p`, `EMPTY`, or `CLOSED`.
    bucket_heads: Box<[AtomicUsize]>,
    /// Next task in the same bucket, or `EMPTY`.
    next_in_bucket: Box<[AtomicUsize]>,
    watermark: AtomicUsize,
    mispredictions: AtomicU64,
}

impl WatermarkRelease {
    /// A releaser for a block of `capacity` tasks, none appended yet.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(CLOSED - 1);
        let bucket_heads: Box<[AtomicUsize]> = (0..=capacity)
            .map(|prefix| AtomicUsize::new(if prefix == 0 { CLOSED } else { EMPTY }))
            .collect();
        Self {
            states: (0..capacity).map(|_| AtomicU8::new(ABSENT)).collect(),
            bucket_heads,
            next_in_bucket: (0..capacity).map(|_| AtomicUsize::new(EMPTY)).collect(),
            watermark: AtomicUsize::new(0),
            mispredictions: AtomicU64::new(0),
        }
    }

    /// A releaser with every task of `plan` appended; `on_release` gets the tasks that can start.
    pub fn from_plan(plan: &DependencyPlan, on_release: &mut impl FnMut(usize)) -> Self {
        let release = Self::new(plan.len());
        for (position, dependency) in plan.dependencies().iter().enumerate() {
            // Cannot fail: positions are in range, appended once, dependencies earlier.
            let _ = release.append(position, *dependency, on_release);
        }
        release
    }

    /// Number of tasks the releaser was built for.
    pub fn capacity(&self) -> usize {
        self.states.len()
    }

    /// The done-watermark: every task below it is done.
    pub fn watermark(&self) -> usize {
        self.watermark.load(Ordering::SeqCst)
    }

    /// Whether every task is done.
    pub fn is_finished(&self) -> bool {
        self.watermark() == self.capacity()
    }

    /// Mispredictions reported so far.
    pub fn mispredictions(&self) -> u64 {
        self.mispredictions.load(Ordering::Relaxed)
    }

    /// Whether the task at `position` is done.
    pub fn is_done(&self, position: usize) -> bool {
        self.states.get(position).is_some_and(|state| state.load(Ordering::SeqCst) == DONE)
    }

    /// Adds the task at `position` with its plan `dependency`; if that is already satisfied the
    /// task is released at once through `on_release`. Tasks may be appended in any order (for
    /// instance frame by frame, while workers complete earlier tasks) and from any thread.
    pub fn append(
        &self,
        position: usize,
        dependency: Option<usize>,
        on_release: &mut impl FnMut(usize),
    ) -> Result<(), ReleaseError> {
        let state = self.state(position)?;
        if let Some(dependency) = dependency.filter(|&dependency| dependency >= position) {
            return Err(ReleaseError::DependencyNotEarlier { position, dependency });
        }
        state
            .compare_exchange(ABSENT, WAITING, Ordering::SeqCst, Ordering::SeqCst)
            .map_err(|_| ReleaseError::AlreadyAppended { position })?;
        self.enqueue(position, dependency.map_or(0, |earlier| earlier + 1), on_release);
        Ok(())
    }

    /// Marks the released task at `position` done, advances the watermark and passes every task
    /// this releases to `on_release` (on the calling thread).
    pub fn complete(
        &self,
        position: usize,
        on_release: &mut impl FnMut(usize),
    ) -> Result<(), ReleaseError> {
        self.state(position)?
            .compare_exchange(RELEASED, DONE, Ordering::SeqCst, Ordering::SeqCst)
            .map_err(|_| ReleaseError::NotReleased { position })?;
        self.advance(on_release);
        Ok(())
    }

    /// The released task at `position` touched keys outside its predicted access set: its result
    /// is discarded and it is released again (through `on_release`, possibly at once) when every
    /// earlier task is done.
    pub fn report_misprediction(
        &self,
        position: usize,
        on_release: &mut impl FnMut(usize),
    ) -> Result<(), ReleaseError> {
        self.state(position)?
            .compare_exchange(RELEASED, WAITING, Ordering::SeqCst, Ordering::SeqCst)
            .map_err(|_| ReleaseError::NotReleased { position })?;
        self.mispredictions.fetch_add(1, Ordering::Relaxed);
        self.enqueue(position, position, on_release);
        Ok(())
    }

    fn state(&self, position: usize) -> Result<&AtomicU8, ReleaseError> {
        self.states
            .get(position)
            .ok_or(ReleaseError::PositionOutOfRange { position, capacity: self.capacity() })
    }

    /// Puts the waiting task at `position` into bucket `required_prefix`, or releases it if that
    /// bucket is closed already.
    fn enqueue(&self, position: usize, required_prefix: usize, on_release: &mut impl FnMut(usize)) {
        let head = &self.bucket_heads[required_prefix.min(position)];
        let mut current = head.load(Ordering::Acquire);
        loop {
            if current == CLOSED {
                self.release(position, on_release);
                return;
            }
            self.next_in_bucket[position].store(current, Ordering::Relaxed);
            match head.compare_exchange_weak(
                current,
                position,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    fn release(&self, position: usize, on_release: &mut impl FnMut(usize)) {
        let transition = self.states[position].compare_exchange(
            WAITING,
            RELEASED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        debug_assert!(transition.is_ok(), "task {position} released twice");
        if transition.is_ok() {
            on_release(position);
        }
    }

    /// Moves the watermark over the done prefix and releases the buckets it passes.
    fn advance(&self, on_release: &mut impl FnMut(usize)) {
        let capacity = self.capacity();
        loop {
            let start = self.watermark.load(Ordering::SeqCst);
            let mut end = start;
            while end < capacity && self.states[end].load(Ordering::SeqCst) == DONE {
                end += 1;
            }
            if end == start {
                return;
            }
            if self
                .watermark
                .compare_exchange(start, end, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                continue;
            }
            for prefix in start + 1..=end {
                let mut node = self.bucket_heads[prefix].swap(CLOSED, Ordering::AcqRel);
                while node != EMPTY && node != CLOSED {
                    // Read the link before releasing: once released, the task may be re-enqueued.
                    let next = self.next_in_bucket[node].load(Ordering::Relaxed);
                    self.release(node, on_release);
                    node = next;
                }
            }
        }
    }
}
