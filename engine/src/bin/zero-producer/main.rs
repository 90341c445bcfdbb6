//! `zero-producer`: the Zero execution engine's command-line front end.
//!
//! Exit codes: 0 success; 1 a block failed its checks or could not execute; 2 bad input (an
//! unknown option or workload, an impossible configuration, a missing or malformed fixture).

mod bench;
mod conformance;
mod da;
mod replay;
mod schedule_stats;
mod state_bench;
mod workload_args;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "zero-producer",
    version,
    about = "Zero execution engine: produce, replay and benchmark EVM blocks"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a workload of signed transactions and execute it block by block.
    Bench(bench::BenchArgs),
    /// Re-execute Ethereum mainnet block fixtures and check them against their headers.
    Replay(replay::ReplayArgs),
    /// Benchmark the QMDB state store alone: populate, then time updates, creates, deletes,
    /// reads and a mixed block.
    StateBench(state_bench::StateBenchArgs),
    /// Benchmark SVID data-availability encoding: encode, verify a chunk, reconstruct.
    DaBench(da::DaBenchArgs),
    /// SVID encoding on files: encode a block, verify a chunk, reconstruct a block.
    #[command(subcommand)]
    Da(da::DaCommand),
    /// Run ethereum/tests (BlockchainTests or GeneralStateTests) through the engine and the state
    /// store; one JSON line per failing test with --json, then a summary line.
    Conformance(conformance::ConformanceArgs),
    /// Frame a generated workload in producer mode, without executing it: frames, critical path.
    ScheduleStats(schedule_stats::ScheduleStatsArgs),
}

/// An error with the exit code it deserves.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Bad input: exit code 2.
    pub fn input(message: impl std::fmt::Display) -> Self {
        Self { code: 2, message: message.to_string() }
    }

    /// A failed run: exit code 1.
    pub fn run(message: impl std::fmt::Display) -> Self {
        Self { code: 1, message: message.to_string() }
    }
}

fn main() -> ExitCode {
    // Output piped into `head` and the like: end quietly when the reader goes away, as Unix
    // tools do, instead of panicking on the failed write (Rust ignores SIGPIPE by default).
    // SAFETY: called before any other thread exists; restores the signal's default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // With no subcommand, run the main job on its embedded default: a generated mixed workload.
    let command = cli.command.unwrap_or_else(|| Command::Bench(bench::BenchArgs::default_job()));
    let result = match command {
        Command::Bench(args) => bench::run(args),
        Command::Replay(args) => replay::run(args),
        Command::StateBench(args) => state_bench::run(args),
        Command::DaBench(args) => da::run_bench(args),
        Command::Da(command) => da::run_da(command),
        Command::Conformance(args) => conformance::run(args),
        Command::ScheduleStats(args) => schedule_stats::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
