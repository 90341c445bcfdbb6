//! The bit-sliced filter alone: a 64-frame conflict query, and inserting a frame's tasks then
//! clearing it, on transfer access sets (two read-write keys each).

mod common;

use common::key;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zero_scheduler::{AccessSet, FrameFilter, FrameSlot, FRAME_COUNT};

const SETS: usize = 8192;
/// Transfers per frame: 128 of them hold 256 read-write keys, the frame limit.
const PER_FRAME: usize = 128;

fn transfer_sets(offset: u64) -> Vec<AccessSet> {
    (0..SETS as u64)
        .map(|index| AccessSet::new([], [key(offset + 2 * index), key(offset + 2 * index + 1)]))
        .collect()
}

fn filter(criterion: &mut Criterion) {
    let resident = transfer_sets(0);
    let queries = transfer_sets(1 << 40);
    let mut full = FrameFilter::new();
    for (index, set) in resident.iter().take(FRAME_COUNT * PER_FRAME).enumerate() {
        full.insert(FrameSlot::new(index / PER_FRAME).expect("below 64"), set);
    }

    let mut group = criterion.benchmark_group("frame_filter");
    group.throughput(Throughput::Elements(SETS as u64));
    group.bench_function("query_64_full_frames", |bencher| {
        bencher
            .iter(|| queries.iter().fold(0u64, |mask, set| mask ^ full.conflicts(black_box(set))))
    });

    let mut filter = FrameFilter::new();
    group.bench_function("insert_128_per_frame_then_clear", |bencher| {
        bencher.iter(|| {
            for (index, frame_sets) in resident.chunks(PER_FRAME).enumerate() {
                let slot = FrameSlot::new(index % FRAME_COUNT).expect("below 64");
                for set in frame_sets {
                    filter.insert(slot, black_box(set));
                }
                filter.clear(slot);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, filter);
criterion_main!(benches);
