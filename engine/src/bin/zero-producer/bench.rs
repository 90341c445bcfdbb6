//! `zero-producer bench`.

use crate::{workload_args::WorkloadShape, Failure};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use zero_engine::{
    bench::{
        median, run_both, run_repeated, BenchError, BenchReport, Comparison, EngineKind, StoreKind,
    },
    devchain::HeaderRoot,
    parallel::PredictionMode,
    ExecutionError,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EngineArg {
    /// alloy-evm's block executor, one transaction after another, on one thread.
    Sequential,
    /// The FAFO parallel engine (producer mode: FAFO chooses each block's order).
    Fafo,
    /// FAFO, then sequential over FAFO's order, each on a fresh store; ends with a comparison.
    Both,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum PredictArg {
    /// Transfers from their fields, everything else simulated with revm (ParaLyze).
    Simulate,
    /// Every transaction from its fields only; contract calls are left to validation.
    Fields,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StateArg {
    /// QMDB on disk: Merkleized, a root per block, crash-safe.
    Qmdb,
    /// In memory, multiset-hash root; for tests.
    Memory,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HeaderRootArg {
    /// A header carries the root after its parent: FAFO on QMDB then commits each block in the
    /// background while the next one executes.
    Parent,
    /// A header carries the root after its own block, as on Ethereum: every commit finishes
    /// before the next block starts.
    Own,
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
    /// FAFO workers (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// How FAFO predicts access sets.
    #[arg(long, value_enum, default_value = "simulate")]
    predict: PredictArg,
    /// State store the blocks commit to.
    #[arg(long, value_enum, default_value = "qmdb")]
    state: StateArg,
    /// Directory for the QMDB store (must be empty or absent); a temporary directory, removed
    /// at exit, when not given.
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// Which state root a block header carries.
    #[arg(long, value_enum, default_value = "parent")]
    header_root: HeaderRootArg,
    #[command(flatten)]
    shape: WorkloadShape,
    /// Runs of each engine, each on a fresh store. With `--engine both`, each round runs both
    /// engines back to back (which goes first alternates) and the speedup reported is the
    /// median of the rounds' speedups: on a shared machine one pair of runs says little.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// With `--engine both`: each round also runs as many copies of the sequential engine as
    /// FAFO has workers, all at once, to measure what this machine's cores give a job with no
    /// serial part (the comparison's `ceiling`).
    #[arg(long)]
    ceiling: bool,
    /// Print one JSON object per line instead of a summary.
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    /// The embedded default job: a mixed workload through FAFO and sequential, summary output.
    pub fn default_job() -> Self {
        Self {
            workload: "mixed".into(),
            accounts: 100_000,
            txs: 50_000,
            block_txs: 5_000,
            engine: EngineArg::Both,
            threads: None,
            predict: PredictArg::Simulate,
            state: StateArg::Qmdb,
            datadir: None,
            header_root: HeaderRootArg::Parent,
            shape: WorkloadShape::default(),
            repeat: 1,
            ceiling: false,
            json: false,
        }
    }
}

pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let config = args.shape.config(&args.workload, args.accounts, args.txs, args.block_txs)?;
    let kind = config.kind;
    let threads = args.threads.map(usize::from);
    let prediction = match args.predict {
        PredictArg::Simulate => PredictionMode::Simulate,
        PredictArg::Fields => PredictionMode::Fields,
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
    let header_root = match args.header_root {
        HeaderRootArg::Parent => HeaderRoot::Parent,
        HeaderRootArg::Own => HeaderRoot::Own,
    };
    let failure = |error| match error {
        BenchError::Workload(error) => Failure::input(error),
        BenchError::DataDir(error) => Failure::input(error),
        BenchError::Execution(error @ ExecutionError::Threads { .. }) => Failure::input(error),
        other => Failure::run(other),
    };
    let runs = args.repeat as usize;
    if args.ceiling && !matches!(args.engine, EngineArg::Both) {
        return Err(Failure::input("--ceiling applies only to --engine both"));
    }
    let engine = match args.engine {
        EngineArg::Sequential => EngineKind::Sequential,
        EngineArg::Fafo => EngineKind::Fafo { threads, prediction },
        EngineArg::Both => {
            let both =
                run_both(&config, threads, prediction, &store, header_root, runs, args.ceiling)
                    .map_err(failure)?;
            for (round, (fafo, sequential)) in both.fafo.iter().zip(&both.sequential).enumerate() {
                print_report(fafo, args.json)?;
                print_report(sequential, args.json)?;
                for copy in both.copies.get(round).into_iter().flatten() {
                    print_report(copy, args.json)?;
                }
            }
            let comparison = both.comparison;
            if args.json {
                println!("{}", serde_json::to_string(&comparison).map_err(Failure::run)?);
            } else {
                print_comparison(&comparison);
            }
            if !comparison.roots_match {
                return Err(Failure::run("FAFO and sequential ended on different state roots"));
            }
            return Ok(());
        }
    };
    let reports = run_repeated(&config, engine, &store, header_root, runs).map_err(failure)?;
    for report in &reports {
        print_report(report, args.json)?;
    }
    if reports.len() > 1 && !args.json {
        let tps = median(reports.iter().map(|report| report.tps).collect());
        println!("median of {} runs: {tps:.0} tx/s", reports.len());
    }
    Ok(())
}

fn print_report(report: &BenchReport, json: bool) -> Result<(), Failure> {
    if json {
        println!("{}", serde_json::to_string(report).map_err(Failure::run)?);
    } else {
        print_summary(report);
    }
    Ok(())
}

fn print_comparison(comparison: &Comparison) {
    let over = match comparison.rounds {
        1 => String::new(),
        rounds => {
            let each: Vec<String> = comparison.speedups.iter().map(|s| format!("{s:.2}")).collect();
            format!(", median of {rounds} rounds ({})", each.join(" "))
        }
    };
    println!(
        "speedup on {} threads: {:.2}x{over} ({:.2}x counting prediction); roots match: {}",
        comparison.threads,
        comparison.speedup,
        comparison.speedup_with_prediction,
        comparison.roots_match
    );
    if let Some(ratio) = comparison.cpu_ratio {
        println!("FAFO used {ratio:.2}x the CPU time of sequential for the same blocks");
    }
    if let (Some(ceiling), Some(of_ceiling)) = (comparison.ceiling, comparison.speedup_of_ceiling) {
        println!(
            "ceiling: {} sequential runs at once gave {ceiling:.2}x one alone; FAFO's speedup is \
             {:.0}% of it",
            comparison.threads,
            100.0 * of_ceiling
        );
    }
    if !comparison.same_order {
        println!("note: FAFO chose different orders in different rounds; every sequential run executed the first");
    }
}

fn print_summary(report: &BenchReport) {
    println!(
        "{} workload, {} engine, {} state: {} txs in {} blocks over {} accounts{}",
        report.workload,
        report.engine,
        report.state,
        report.txs,
        report.blocks,
        report.accounts,
        match report.copies {
            1 => String::new(),
            copies => format!(" (one of {copies} copies run at once)"),
        }
    );
    println!(
        "  execute + commit: {:.3} s, {:.0} tx/s, {:.1} Mgas/s ({} failed txs); headers carry \
         the {} root{}",
        report.seconds,
        report.tps,
        report.gas_per_s / 1e6,
        report.failed_txs,
        report.header_root,
        if report.pipelined { ", commits pipelined" } else { "" }
    );
    if let Some(cpu) = report.cpu_seconds {
        println!(
            "  CPU time {cpu:.3} s: {:.0}% of {} thread(s) over that time",
            100.0 * cpu / (report.seconds * report.threads as f64),
            report.threads
        );
    }
    if let Some(prediction) = report.prediction {
        println!(
            "  {} threads; prediction ({prediction}) {:.3} s, {:.0} tx/s with it; {} mispredicted, \
             {} re-executed, {} set aside; {:.1} txs/frame, ideal speed-up {:.1}",
            report.threads,
            report.predict_seconds,
            report.tps_with_prediction,
            report.mispredicted,
            report.reexecuted,
            report.set_aside,
            report.txs_per_frame,
            report.ideal_speedup
        );
    }
    println!(
        "  intake (decode + recover on {} threads): {:.3} s, {:.0} tx/s",
        report.intake_threads, report.intake_seconds, report.intake_tps
    );
    println!("  state root: {}", report.state_root);
}
