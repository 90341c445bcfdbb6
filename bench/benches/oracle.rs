//! The sequential oracle producing one block (execute + commit to the in-memory store), per
//! workload kind. Each iteration starts from a fresh copy of the genesis state.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use zero_bench::prepare;
use zero_fixtures::workload::WorkloadKind;

const BLOCK_TXS: usize = 2_000;

fn sequential_block(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("sequential_block");
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    group.sample_size(10);
    for kind in [WorkloadKind::Transfers, WorkloadKind::Erc20, WorkloadKind::Amm] {
        let prepared = prepare(kind, 50_000, BLOCK_TXS, BLOCK_TXS);
        group.bench_function(kind.name(), |bencher| {
            bencher.iter_batched(
                || prepared.chain.try_clone().expect("the prepared chain has settled"),
                |mut chain| {
                    chain
                        .produce_sequential(prepared.workload.coinbase, &prepared.blocks[0])
                        .expect("block executes")
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, sequential_block);
criterion_main!(benches);
