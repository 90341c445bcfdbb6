//! `zero-producer da-bench` and `zero-producer da encode|verify|reconstruct`: SVID
//! data-availability encoding (prover-bridge `svid`).

use crate::Failure;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use zero_prover_bridge::svid::{self, da_bench, Profile, SvidError};

#[derive(Args, Debug)]
pub struct DaBenchArgs {
    /// fast or semi-avid.
    #[arg(long, default_value = "fast")]
    profile: String,
    /// Block size in bytes (pseudo-random bytes, generated before timing).
    #[arg(long, default_value_t = 32 << 20)]
    size: usize,
    /// Chunks in all (one per validator).
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Chunks that reconstruct the block.
    #[arg(long, default_value_t = 85)]
    k: usize,
    /// Worker threads; all cores when absent.
    #[arg(long)]
    threads: Option<usize>,
    /// Runs, one report each.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Print one JSON object per run instead of a summary line.
    #[arg(long)]
    json: bool,
}

pub fn run_bench(args: DaBenchArgs) -> Result<(), Failure> {
    let profile: Profile = args.profile.parse().map_err(svid_failure)?;
    for _ in 0..args.repeat {
        let report =
            da_bench(profile, args.size, args.n, args.k, args.threads).map_err(svid_failure)?;
        if args.json {
            println!("{}", serde_json::to_string(&report).map_err(Failure::run)?);
        } else {
            println!(
                "{} {} B n={} k={}: encode {:.3} GB/s (median of {}), verify {:.0} us/chunk, reconstruct {:.3} GB/s, expansion {:.3}",
                report.profile, report.size, report.n, report.k, report.encode_gb_per_s,
                report.encode_runs,
                report.verify_chunk_us, report.reconstruct_gb_per_s, report.expansion
            );
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum DaCommand {
    /// Encode a block file into DIR/commitment.bin and DIR/chunk-00000.bin ...
    Encode {
        #[arg(long, default_value = "fast")]
        profile: String,
        #[arg(long)]
        n: usize,
        #[arg(long)]
        k: usize,
        /// The block.
        #[arg(long)]
        input: PathBuf,
        /// Output directory (created if missing); one already holding an encoding is refused.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check one chunk file against a commitment file.
    Verify {
        #[arg(long)]
        commitment: PathBuf,
        #[arg(long)]
        chunk: PathBuf,
        /// The index to check it as; default: the index the chunk carries.
        #[arg(long)]
        index: Option<u32>,
    },
    /// Rebuild the block from chunk files (any k distinct; every one is checked).
    Reconstruct {
        #[arg(long)]
        commitment: PathBuf,
        /// Where to write the block.
        #[arg(long)]
        out: PathBuf,
        /// Chunk files.
        #[arg(required = true)]
        chunks: Vec<PathBuf>,
    },
}

pub fn run_da(command: DaCommand) -> Result<(), Failure> {
    match command {
        DaCommand::Encode { profile, n, k, input, out } => {
            let profile: Profile = profile.parse().map_err(svid_failure)?;
            let files = svid::encode_file(profile, &input, &out, n, k).map_err(svid_failure)?;
            println!(
                "{} ({} chunks in {})",
                files.commitment.display(),
                files.chunks.len(),
                out.display()
            );
        }
        DaCommand::Verify { commitment, chunk, index } => {
            let index = svid::verify_file(&commitment, &chunk, index).map_err(svid_failure)?;
            println!("chunk {index}: valid");
        }
        DaCommand::Reconstruct { commitment, out, chunks } => {
            let len = svid::reconstruct_file(&commitment, &chunks, &out).map_err(svid_failure)?;
            println!("{len} bytes written to {}", out.display());
        }
    }
    Ok(())
}

/// Exit 1 when well-formed input failed a check (bad chunk, inconsistent encoding, altered
/// commitment); exit 2 for everything else (bad numbers, malformed bytes, missing files).
fn svid_failure(error: SvidError) -> Failure {
    if error.is_verification_failure() {
        Failure::run(error)
    } else {
        Failure::input(error)
    }
}
