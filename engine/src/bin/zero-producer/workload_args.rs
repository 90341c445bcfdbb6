//! Workload flags shared by `bench` and `schedule-stats`.

use crate::Failure;
use clap::Args;
use zero_fixtures::workload::{HotSpot, WorkloadConfig, WorkloadKind};

/// A generated workload's shape beyond its size: seed, hot spot and pools.
#[derive(Args, Clone, Debug)]
pub struct WorkloadShape {
    /// Workload seed; the same seed gives the same transactions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of senders and receivers drawn from the hot accounts, in [0, 1] (the rest are
    /// drawn from all accounts); the same fraction of swaps goes to pool 0, the one hot pool.
    #[arg(long, requires = "hot_accounts")]
    pub hot_fraction: Option<f64>,
    /// Number of hot accounts (at most --accounts).
    #[arg(long, requires = "hot_fraction")]
    pub hot_accounts: Option<usize>,
    /// Constant-product pools for the amm and mixed workloads.
    #[arg(long, default_value_t = 16)]
    pub pools: usize,
}

impl Default for WorkloadShape {
    fn default() -> Self {
        Self { seed: 1, hot_fraction: None, hot_accounts: None, pools: 16 }
    }
}

impl WorkloadShape {
    /// The checked configuration of the workload named `workload` with this shape; an unknown
    /// name or an impossible configuration is bad input.
    pub fn config(
        &self,
        workload: &str,
        accounts: usize,
        txs: usize,
        block_txs: usize,
    ) -> Result<WorkloadConfig, Failure> {
        let kind: WorkloadKind = workload.parse().map_err(Failure::input)?;
        let mut config = WorkloadConfig::new(kind, accounts, txs, block_txs, self.seed);
        config.pools = self.pools;
        if let (Some(fraction), Some(accounts)) = (self.hot_fraction, self.hot_accounts) {
            config.hot_spot = Some(HotSpot { fraction, accounts });
        }
        config.validate().map_err(Failure::input)?;
        Ok(config)
    }
}
