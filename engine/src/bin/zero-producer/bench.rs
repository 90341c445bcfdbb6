//! `zero-producer bench`.

use crate::Failure;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use zero_engine::bench::{run as run_bench, BenchError, BenchReport, EngineKind, StoreKind};
use zero_fixtures::workload::{HotSpot, WorkloadConfig, WorkloadKind};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EngineArg {
    /// alloy-evm's block executor, one transaction after another.
    Sequential,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StateArg {
    /// QMDB on disk: Merkleized, a root per block, crash-safe.
    Qmdb,
    /// In memory, multiset-hash root; for tests.
    Memory,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// transfers, erc20, amm or mixed.
    #[arg(long, default_value = "mixed")]
    workload: String,
    /// Accounts in genesis.
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Transactions in all.
    #[arg(long, default_value_t = 50_000)]
    txs: usize,
    /// Transactions per block.
    #[arg(long, default_value_t = 5_000)]
    block_txs: usize,
    /// Engine that executes the blocks.
    #[arg(long, value_enum, default_value = "sequential")]
    engine: EngineArg,
    /// State store the blocks commit to.
    #[arg(long, value_enum, default_value = "qmdb")]
    state: StateArg,
    /// Directory for the QMDB store (must be empty or absent); a temporary directory, removed
    /// at exit, when not given.
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// Workload seed; the same seed gives the same blocks and the same state root.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of senders and receivers drawn from the hot accounts.
    #[arg(long, requires = "hot_accounts")]
    hot_fraction: Option<f64>,
    /// Number of hot accounts.
    #[arg(long, requires = "hot_fraction")]
    hot_accounts: Option<usize>,
    /// Constant-product pools for the amm and mixed workloads.
    #[arg(long, default_value_t = 16)]
    pools: usize,
    /// Print one JSON object per line instead of a summary.
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    /// The embedded default job: a mixed workload, summary output.
    pub fn default_job() -> Self {
        Self {
            workload: "mixed".into(),
            accounts: 100_000,
            txs: 50_000,
            block_txs: 5_000,
            engine: EngineArg::Sequential,
            state: StateArg::Qmdb,
            datadir: None,
            seed: 1,
            hot_fraction: None,
            hot_accounts: None,
            pools: 16,
            json: false,
        }
    }
}

pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let kind: WorkloadKind = args.workload.parse().map_err(Failure::input)?;
    let mut config = WorkloadConfig::new(kind, args.accounts, args.txs, args.block_txs, args.seed);
    config.pools = args.pools;
    if let (Some(fraction), Some(accounts)) = (args.hot_fraction, args.hot_accounts) {
        config.hot_spot = Some(HotSpot { fraction, accounts });
    }
    config.validate().map_err(Failure::input)?;
    let engine = match args.engine {
        EngineArg::Sequential => EngineKind::Sequential,
    };
    tracing::info!(workload = %kind, txs = args.txs, accounts = args.accounts, "generating workload");
    let store = match args.state {
        StateArg::Qmdb => StoreKind::Qmdb { datadir: args.datadir },
        StateArg::Memory => {
            if args.datadir.is_some() {
                return Err(Failure::input("--datadir applies only to --state qmdb"));
            }
            StoreKind::Memory
        }
    };
    let report = run_bench(&config, engine, &store).map_err(|error| match error {
        BenchError::Workload(error) => Failure::input(error),
        BenchError::DataDir(error) => Failure::input(error),
        other => Failure::run(other),
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(Failure::run)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn print_summary(report: &BenchReport) {
    println!(
        "{} workload, {} engine, {} state: {} txs in {} blocks over {} accounts",
        report.workload, report.engine, report.state, report.txs, report.blocks, report.accounts
    );
    println!(
        "  execute + commit: {:.3} s, {:.0} tx/s, {:.1} Mgas/s ({} failed txs)",
        report.seconds,
        report.tps,
        report.gas_per_s / 1e6,
        report.failed_txs
    );
    println!(
        "  intake (decode + recover on {} threads): {:.3} s, {:.0} tx/s",
        report.intake_threads, report.intake_seconds, report.intake_tps
    );
    println!("  state root: {}", report.state_root);
}
