//! Framing throughput on uniform random transfers (sender and receiver both read-write, drawn from
//! a million accounts): the framer alone, framer plus dependency plan (the production path), and
//! the whole `schedule` call with false-positive measurement (the `schedule-stats` path).

mod common;

use common::key;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zero_scheduler::{
    schedule, AccessSet, DependencyPlan, Frame, Framer, PlanBuilder, ScheduleMode, SenderId, Task,
};

const TASKS: usize = 100_000;
const ACCOUNTS: u64 = 1_000_000;

fn transfers() -> Vec<Task> {
    let mut state = 42u64;
    let mut account = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 24) % ACCOUNTS
    };
    (0..TASKS)
        .map(|_| Task::single(SenderId(key(account())), AccessSet::new([], [key(account())])))
        .collect()
}

fn framing(criterion: &mut Criterion) {
    let tasks = transfers();
    let mut group = criterion.benchmark_group("framer");
    group.throughput(Throughput::Elements(TASKS as u64));

    let mut framer = Framer::new();
    group.bench_function("uniform_transfers", |bencher| {
        bencher.iter(|| {
            let mut positions = 0;
            let mut sink = |frame: Frame<'_>| positions += frame.task_ids.len();
            for task in &tasks {
                framer.push(task, &mut sink);
            }
            black_box(framer.finish_block(&mut sink));
            positions
        })
    });

    group.bench_function("uniform_transfers_with_plan", |bencher| {
        bencher.iter(|| {
            let mut plan = PlanBuilder::with_capacity(None, TASKS, 2 * TASKS);
            let mut sink = |frame: Frame<'_>| {
                for &task_id in frame.task_ids {
                    black_box(plan.push(&tasks[task_id]));
                }
            };
            for task in &tasks {
                framer.push(task, &mut sink);
            }
            framer.finish_block(&mut sink);
            plan.finish().critical_path()
        })
    });

    group.bench_function("plan_only", |bencher| {
        bencher.iter(|| DependencyPlan::build(&tasks, None).critical_path())
    });

    group.sample_size(10);
    group.bench_function("schedule_with_false_positive_measurement", |bencher| {
        bencher.iter(|| schedule(&tasks, ScheduleMode::Producer, None).stats.frames)
    });
    group.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
