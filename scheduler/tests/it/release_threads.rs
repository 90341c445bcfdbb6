//! The watermark releaser driven by several threads completing tasks in random order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zero_scheduler::{schedule, ReleaseError, ScheduleMode, WatermarkRelease};

use crate::blocks::blocks;

const WORKERS: usize = 4;

/// Shared bookkeeping of one run.
struct Run<'plan> {
    dependencies: &'plan [Option<usize>],
    release: WatermarkRelease,
    ready: Mutex<Vec<usize>>,
    done: Vec<AtomicBool>,
    mispredicted: Vec<AtomicBool>,
    releases: Vec<AtomicUsize>,
    completed: AtomicUsize,
    violations: Mutex<Vec<String>>,
}

impl Run<'_> {
    /// Checks that every task the release must wait for is done, then queues `position`.
    fn on_release(&self, position: usize) {
        let required = if self.mispredicted[position].load(Ordering::SeqCst) {
            position
        } else {
            self.dependencies[position].map_or(0, |dependency| dependency + 1)
        };
        if let Some(missing) =
            (0..required).find(|&earlier| !self.done[earlier].load(Ordering::SeqCst))
        {
            self.violations.lock().unwrap().push(format!("{position} released before {missing}"));
        }
        self.releases[position].fetch_add(1, Ordering::SeqCst);
        self.ready.lock().unwrap().push(position);
    }

    fn worker(&self, seed: u64, misprediction_per_mille: u64) {
        let mut state = seed;
        let mut next = |bound: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % bound.max(1)
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.completed.load(Ordering::SeqCst) < self.done.len() {
            assert!(Instant::now() < deadline, "no progress: release is stuck");
            let picked = {
                let mut ready = self.ready.lock().unwrap();
                let count = ready.len() as u64;
                (count > 0).then(|| ready.swap_remove(next(count) as usize))
            };
            let Some(position) = picked else {
                std::thread::yield_now();
                continue;
            };
            if next(4) == 0 {
                std::thread::yield_now();
            }
            let mut on_release = |released| self.on_release(released);
            if next(1000) < misprediction_per_mille
                && !self.mispredicted[position].load(Ordering::SeqCst)
            {
                self.mispredicted[position].store(true, Ordering::SeqCst);
                self.release.report_misprediction(position, &mut on_release).expect("running");
            } else {
                self.done[position].store(true, Ordering::SeqCst);
                self.completed.fetch_add(1, Ordering::SeqCst);
                self.release.complete(position, &mut on_release).expect("running");
            }
        }
    }
}

/// Runs a block's plan through the releaser with `WORKERS` threads plus, when `stream`, a thread
/// appending the tasks in a scrambled order while the workers run.
fn run(dependencies: &[Option<usize>], seed: u64, misprediction_per_mille: u64, stream: bool) {
    let count = dependencies.len();
    let run = Run {
        dependencies,
        release: WatermarkRelease::new(count),
        ready: Mutex::new(Vec::new()),
        done: (0..count).map(|_| AtomicBool::new(false)).collect(),
        mispredicted: (0..count).map(|_| AtomicBool::new(false)).collect(),
        releases: (0..count).map(|_| AtomicUsize::new(0)).collect(),
        completed: AtomicUsize::new(0),
        violations: Mutex::new(Vec::new()),
    };
    let mut append_order: Vec<usize> = (0..count).collect();
    if stream {
        // Mostly in order, with local shuffles, like frames arriving while others finish.
        for index in 0..count {
            let swap_with = (index + (seed as usize >> (index % 7)) % 5).min(count - 1);
            append_order.swap(index, swap_with);
        }
    }
    let append_all = |run: &Run<'_>| {
        for &position in &append_order {
            run.release
                .append(position, run.dependencies[position], &mut |released| {
                    run.on_release(released)
                })
                .expect("appended once");
        }
    };
    std::thread::scope(|scope| {
        if stream {
            scope.spawn(|| append_all(&run));
        } else {
            append_all(&run);
        }
        for worker in 0..WORKERS {
            let run = &run;
            scope.spawn(move || {
                run.worker(seed ^ ((worker as u64 + 1) * 0x9e37), misprediction_per_mille)
            });
        }
    });
    let violations = run.violations.lock().unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    for position in 0..count {
        let expected = 1 + usize::from(run.mispredicted[position].load(Ordering::SeqCst));
        assert_eq!(run.releases[position].load(Ordering::SeqCst), expected, "task {position}");
    }
    assert!(run.release.is_finished());
    let mispredicted = run.mispredicted.iter().filter(|flag| flag.load(Ordering::SeqCst)).count();
    assert_eq!(run.release.mispredictions(), mispredicted as u64);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn threads_completing_in_random_order_release_each_task_once_after_its_dependencies(
        block in blocks(300),
        seed in any::<u64>(),
        producer in any::<bool>(),
        stream in any::<bool>(),
        misprediction_per_mille in prop_oneof![Just(0u64), 1u64..150],
    ) {
        let mode = if producer { ScheduleMode::Producer } else { ScheduleMode::Replay };
        let plan = schedule(&block.tasks, mode, block.coinbase).plan;
        run(plan.dependencies(), seed, misprediction_per_mille, stream);
    }
}

#[test]
fn long_chains_and_wide_blocks_under_threads() {
    let chain: Vec<Option<usize>> =
        (0..3000).map(|position: usize| position.checked_sub(1)).collect();
    run(&chain, 1, 0, true);
    let wide = vec![None; 3000];
    run(&wide, 2, 20, false);
    let strided: Vec<Option<usize>> =
        (0..3000).map(|position: usize| position.checked_sub(1 + position % 97)).collect();
    run(&strided, 3, 5, true);
}

#[test]
fn bad_calls_are_errors_not_panics() {
    let release = WatermarkRelease::new(3);
    let mut ignore = |_| {};
    assert_eq!(
        release.append(3, None, &mut ignore),
        Err(ReleaseError::PositionOutOfRange { position: 3, capacity: 3 })
    );
    assert_eq!(
        release.append(1, Some(1), &mut ignore),
        Err(ReleaseError::DependencyNotEarlier { position: 1, dependency: 1 })
    );
    assert_eq!(release.complete(0, &mut ignore), Err(ReleaseError::NotReleased { position: 0 }));
    release.append(0, None, &mut ignore).unwrap();
    assert_eq!(
        release.append(0, None, &mut ignore),
        Err(ReleaseError::AlreadyAppended { position: 0 })
    );
    release.append(1, Some(0), &mut ignore).unwrap();
    assert_eq!(release.complete(1, &mut ignore), Err(ReleaseError::NotReleased { position: 1 }));
    assert_eq!(
        release.report_misprediction(1, &mut ignore),
        Err(ReleaseError::NotReleased { position: 1 })
    );
    release.complete(0, &mut ignore).unwrap();
    assert_eq!(release.complete(0, &mut ignore), Err(ReleaseError::NotReleased { position: 0 }));
    assert_eq!(release.watermark(), 1);
    assert!(release.is_done(0) && !release.is_done(1) && !release.is_done(7));
    assert!(!release.is_finished());
}
