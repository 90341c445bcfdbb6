//! `zero-producer replay`.

use crate::Failure;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use zero_engine::{
    chain::ChainSpec,
    replay::{prepare, replay_sequential, ReplayError, ReplayReport},
};
use zero_fixtures::{discovery, mainnet};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Directory of mainnet block fixtures (default: $ZERO_FIXTURES/mainnet, else
    /// ../shared/fixtures/mainnet).
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Replay only this block (repeatable).
    #[arg(long = "block")]
    blocks: Vec<u64>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    blocks: usize,
    passed: usize,
    failed: usize,
    gas_per_s: f64,
}

pub fn run(args: ReplayArgs) -> Result<(), Failure> {
    let dir = match args.fixtures {
        Some(dir) => dir,
        None => discovery::mainnet_dir()
            .ok_or_else(|| Failure::input(discovery::missing_fixtures_message("replay")))?,
    };
    let mut available = mainnet::list_blocks(&dir).map_err(Failure::input)?;
    if !args.blocks.is_empty() {
        if let Some(missing) =
            args.blocks.iter().find(|number| !available.iter().any(|(n, _)| n == *number))
        {
            return Err(Failure::input(format!("block {missing} is not in {}", dir.display())));
        }
        available.retain(|(number, _)| args.blocks.contains(number));
    }
    if available.is_empty() {
        return Err(Failure::input(format!("no block fixtures in {}", dir.display())));
    }

    let chain = ChainSpec::mainnet();
    let (mut passed, mut failed, mut gas, mut seconds) = (0usize, 0usize, 0u64, 0f64);
    for (_, path) in &available {
        let fixture = mainnet::load_block(path).map_err(Failure::input)?;
        let prepared = prepare(fixture).map_err(|error| match error {
            ReplayError::Fixture(error) => Failure::input(error),
            other => Failure::input(other),
        })?;
        let report = match replay_sequential(&chain, &prepared) {
            Ok((report, _)) => report,
            Err(error) => {
                eprintln!("block {}: {error}", prepared.fixture.number);
                failed += 1;
                continue;
            }
        };
        gas += report.gas_used;
        seconds += report.seconds;
        if report.passed() {
            passed += 1;
        } else {
            failed += 1;
        }
        print_report(&report, args.json);
    }
    let summary = Summary {
        blocks: available.len(),
        passed,
        failed,
        gas_per_s: gas as f64 / seconds.max(1e-9),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary).map_err(Failure::run)?);
    } else {
        println!(
            "{} blocks: {} passed, {} failed; {:.1} Mgas/s",
            summary.blocks,
            summary.passed,
            summary.failed,
            summary.gas_per_s / 1e6
        );
    }
    if failed > 0 {
        return Err(Failure::run(format!("{failed} of {} blocks failed", available.len())));
    }
    Ok(())
}

fn print_report(report: &ReplayReport, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(report) {
            println!("{line}");
        }
        return;
    }
    let mark = |ok: Option<bool>| match ok {
        Some(true) => "ok",
        Some(false) => "MISMATCH",
        None => "n/a",
    };
    println!(
        "block {:>9}: {:>4} txs, gas {:>9} [{}], receipts root [{}], logs bloom [{}], {:.2} ms",
        report.block,
        report.txs,
        report.gas_used,
        mark(Some(report.gas_used_ok)),
        mark(report.receipts_root_ok),
        mark(Some(report.logs_bloom_ok)),
        report.seconds * 1e3
    );
}
