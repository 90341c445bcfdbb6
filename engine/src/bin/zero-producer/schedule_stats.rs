//! `zero-producer schedule-stats`.

use crate::{workload_args::WorkloadShape, Failure};
use clap::Args;
use zero_engine::{
    chain::DEV_CHAIN_ID,
    schedule_stats::{run as run_schedule_stats, ScheduleStatsError, ScheduleStatsReport},
};

#[derive(Args, Debug)]
#[command(after_help = "Each block is framed and planned on its own. The figures add up over \
                        blocks: frames and flushes are summed, critical_path is the sum of the \
                        blocks' critical paths and ideal_speedup = txs / that sum. \
                        framing_tx_per_s times framing and planning only: not generation, intake \
                        or prediction.")]
pub struct ScheduleStatsArgs {
    /// transfers, erc20, amm or mixed.
    #[arg(long)]
    workload: String,
    /// Transactions in all.
    #[arg(long)]
    txs: usize,
    /// Accounts in genesis.
    #[arg(long)]
    accounts: usize,
    /// Transactions per block; each block is framed on its own.
    #[arg(long, default_value_t = 10_000)]
    block_txs: usize,
    #[command(flatten)]
    shape: WorkloadShape,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ScheduleStatsArgs) -> Result<(), Failure> {
    let mut config = args.shape.config(&args.workload, args.accounts, args.txs, args.block_txs)?;
    config.chain_id = DEV_CHAIN_ID;
    let kind = config.kind;
    tracing::info!(workload = %kind, txs = args.txs, accounts = args.accounts, "generating workload");
    let report = run_schedule_stats(&config).map_err(|error| match error {
        ScheduleStatsError::Workload(error) => Failure::input(error),
        other => Failure::run(other),
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(Failure::run)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(report: &ScheduleStatsReport) {
    println!(
        "{:<10} {:>10} {:>8} {:>10} {:>7} {:>9} {:>9} {:>8} {:>13}",
        "workload",
        "txs",
        "frames",
        "txs/frame",
        "forced",
        "false+ %",
        "critical",
        "ideal x",
        "framing tx/s"
    );
    println!(
        "{:<10} {:>10} {:>8} {:>10.1} {:>7} {:>9.3} {:>9} {:>8.1} {:>13.0}",
        report.workload,
        report.txs,
        report.frames,
        report.txs_per_frame,
        report.forced_flushes,
        report.false_positive_rate * 100.0,
        report.critical_path,
        report.ideal_speedup,
        report.framing_tx_per_s
    );
}
