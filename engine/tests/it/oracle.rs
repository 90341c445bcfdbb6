//! The oracle on generated workloads: determinism, real effects, and state it can be trusted on.

use alloy_primitives::U256;
use zero_engine::{
    bench::{block_gas_limit, run, EngineKind, StoreKind},
    chain::{ChainSpec, DEV_CHAIN_ID},
    devchain::{DevChain, HeaderRoot},
    intake::intake,
};
use zero_fixtures::workload::{HotSpot, Workload, WorkloadConfig, WorkloadKind, COINBASE};
use zero_state::{MemoryState, StateReader};

fn config(kind: WorkloadKind, seed: u64) -> WorkloadConfig {
    WorkloadConfig { chain_id: DEV_CHAIN_ID, ..WorkloadConfig::new(kind, 300, 600, 200, seed) }
}

#[test]
fn same_seed_same_root_for_every_workload() {
    for kind in
        [WorkloadKind::Transfers, WorkloadKind::Erc20, WorkloadKind::Amm, WorkloadKind::Mixed]
    {
        let qmdb = StoreKind::Qmdb { datadir: None };
        let first = run(&config(kind, 11), EngineKind::Sequential, &qmdb, HeaderRoot::Own).unwrap();
        let second =
            run(&config(kind, 11), EngineKind::Sequential, &qmdb, HeaderRoot::Own).unwrap();
        let other = run(&config(kind, 12), EngineKind::Sequential, &qmdb, HeaderRoot::Own).unwrap();
        assert_eq!(first.state_root, second.state_root, "{kind}");
        assert_ne!(first.state_root, other.state_root, "{kind}");
        // The store changes the root's shape, never what executes.
        let memory =
            run(&config(kind, 11), EngineKind::Sequential, &StoreKind::Memory, HeaderRoot::Own)
                .unwrap();
        assert_eq!((memory.gas_used, memory.failed_txs), (first.gas_used, first.failed_txs));
        assert_ne!(memory.state_root, first.state_root);
        assert_eq!(first.failed_txs, 0, "{kind}: generated transactions must succeed");
        assert_eq!((first.txs, first.blocks), (600, 3));
        assert!(first.gas_used >= 600 * 21_000, "{kind}");
    }
}

#[test]
fn hot_spot_workloads_with_heavy_contention_succeed() {
    let mut config = config(WorkloadKind::Mixed, 5);
    config.hot_spot = Some(HotSpot { fraction: 0.9, accounts: 3 });
    config.pools = 2;
    let report = run(&config, EngineKind::Sequential, &StoreKind::Memory, HeaderRoot::Own).unwrap();
    assert_eq!(report.failed_txs, 0);
}

#[test]
fn transfers_move_exactly_value_and_fees() {
    let workload = Workload::generate(&config(WorkloadKind::Transfers, 3)).unwrap();
    let mut chain = DevChain::genesis(
        ChainSpec::dev(DEV_CHAIN_ID),
        MemoryState::new(),
        &workload.genesis,
        block_gas_limit(200),
    )
    .unwrap();
    let total_before: U256 =
        workload.genesis.iter().map(|account| account.balance).fold(U256::ZERO, |a, b| a + b);
    let mut burnt = U256::ZERO;
    for raw in &workload.blocks {
        let transactions = intake(raw).unwrap();
        let block = chain.produce_sequential(COINBASE, &transactions).unwrap();
        let base_fee = U256::from(block.header.base_fee_per_gas.unwrap());
        burnt += base_fee * U256::from(block.outcome.gas_used);
        assert_eq!(block.outcome.gas_used, 21_000 * transactions.len() as u64);
    }
    // Every wei is accounted for: balances (including the coinbase's tips) plus burnt base fees.
    let state = chain.state();
    let mut total_after = state.account(COINBASE).unwrap().map(|a| a.balance).unwrap_or_default();
    for account in &workload.genesis {
        total_after += state.account(account.address).unwrap().unwrap().balance;
    }
    assert_eq!(total_after + burnt, total_before);
    assert!(state.account(COINBASE).unwrap().unwrap().balance > U256::ZERO);
}
