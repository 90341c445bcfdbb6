//! `zero-bench`: criterion benches and shared setup for them.
//!
//! The macro benchmark is `zero-producer bench` (in `zero-engine`); this crate holds the
//! micro benchmarks (`cargo bench -p zero-bench`) and `RESULTS.md`, where every measured figure
//! is recorded with its machine, command and date.

use zero_engine::{
    bench::block_gas_limit,
    chain::{ChainSpec, DEV_CHAIN_ID},
    devchain::DevChain,
    intake::{intake, RecoveredTx},
};
use zero_fixtures::workload::{Workload, WorkloadConfig, WorkloadKind};
use zero_state::MemoryState;

/// A generated workload, its genesis committed, its blocks through intake: ready to time.
pub struct PreparedWorkload {
    /// The chain at genesis.
    pub chain: DevChain<MemoryState>,
    /// The blocks, senders recovered.
    pub blocks: Vec<Vec<RecoveredTx>>,
    /// The generated workload.
    pub workload: Workload,
}

/// Generates `txs` transactions of `kind` over `accounts` accounts in blocks of `block_txs`.
///
/// # Panics
/// If the configuration is invalid: benches choose their own parameters.
pub fn prepare(
    kind: WorkloadKind,
    accounts: usize,
    txs: usize,
    block_txs: usize,
) -> PreparedWorkload {
    let config = WorkloadConfig {
        chain_id: DEV_CHAIN_ID,
        ..WorkloadConfig::new(kind, accounts, txs, block_txs, 1)
    };
    let workload = Workload::generate(&config).expect("valid bench workload");
    let chain = DevChain::genesis(
        ChainSpec::dev(DEV_CHAIN_ID),
        MemoryState::new(),
        &workload.genesis,
        block_gas_limit(block_txs),
    )
    .expect("genesis commits");
    let blocks = workload.blocks.iter().map(|raw| intake(raw).expect("valid")).collect();
    PreparedWorkload { chain, blocks, workload }
}
