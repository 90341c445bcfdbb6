//! `zero-producer state-bench`.

use crate::Failure;
use clap::Args;
use std::path::PathBuf;
use zero_engine::state_bench::{
    run as run_state_bench, PhaseReport, StateBenchConfig, StateBenchError,
};

#[derive(Args, Debug)]
pub struct StateBenchArgs {
    /// Keys to populate before the timed phases.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Operations per timed block.
    #[arg(long, default_value_t = 100_000)]
    ops_per_block: usize,
    /// Timed blocks per phase.
    #[arg(long, default_value_t = 5)]
    blocks: usize,
    /// Directory for the store (must be empty or absent); a temporary directory when not given.
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// Seed of keys and values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object per phase instead of a table.
    #[arg(long)]
    json: bool,
}

/// Returns the memory mimalloc holds for freed blocks to the system.
fn release_memory() {
    // SAFETY: `mi_collect` only walks mimalloc's own heaps; it is safe to call at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

pub fn run(args: StateBenchArgs) -> Result<(), Failure> {
    let config = StateBenchConfig {
        entries: args.entries,
        ops_per_block: args.ops_per_block,
        blocks: args.blocks,
        datadir: args.datadir,
        seed: args.seed,
        release_memory: Some(release_memory),
    };
    let json = args.json;
    let emit = |report: &PhaseReport| {
        if json {
            match serde_json::to_string(report) {
                Ok(line) => println!("{line}"),
                Err(error) => eprintln!("error: cannot encode the report: {error}"),
            }
        } else {
            println!(
                "{:<9} {:>10.0} ops/s  {:>11} live  {:>6.1} B DRAM/key ({:.1} index)  {:>6.1} B disk/key  {}",
                report.phase,
                report.ops_per_s,
                report.entries,
                report.dram_bytes_per_entry,
                report.index_bytes_per_entry,
                report.disk_bytes_per_entry,
                report.root
            );
        }
    };
    run_state_bench(&config, emit).map_err(|error| match error {
        StateBenchError::Config(message) => Failure::input(message),
        other => Failure::run(other),
    })
}
