//! `zero-producer conformance`: ethereum/tests through the engine and the state store.

use crate::Failure;
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::{io::Write, path::PathBuf};
use zero_engine::conformance::{
    run_blockchain_suite, run_state_suite, ConformanceEngine, StoreKind, SuiteOptions, SuiteReport,
};
use zero_fixtures::discovery;

#[derive(Args, Debug)]
pub struct ConformanceArgs {
    /// Which suite: BlockchainTests or GeneralStateTests.
    #[arg(long, value_enum)]
    suite: SuiteArg,
    /// Directory of test files, searched recursively (default: BlockchainTests or
    /// GeneralStateTests under $ZERO_FIXTURES/ethereum-tests, else
    /// ../shared/fixtures/ethereum-tests).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Engine executing the blocks of the blockchain suite (the state suite runs single
    /// transactions on the EVM).
    #[arg(long, value_enum, default_value = "sequential")]
    engine: EngineArg,
    /// Store holding each test's state.
    #[arg(long, value_enum, default_value = "memory")]
    state: StateArg,
    /// Run the tests of this fork (or blockchain network) only; "all" runs every fork and
    /// skips those without a chain specification.
    #[arg(long, default_value = "Cancun")]
    fork: String,
    /// Directory for the per-test QMDB stores (default: the system's temporary directory; a
    /// tmpfs such as /dev/shm avoids the cost of fsync).
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
    /// Print one JSON object per failing test, then a JSON summary line.
    #[arg(long)]
    json: bool,
    /// Write every skipped test with its reason to this file (JSON lines with --json, else
    /// `name<TAB>reason` lines).
    #[arg(long)]
    skips_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SuiteArg {
    /// BlockchainTests.
    Blockchain,
    /// GeneralStateTests.
    State,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EngineArg {
    /// alloy-evm's block executor, transaction by transaction.
    Sequential,
    /// The FAFO parallel engine in replay mode (blockchain suite).
    Fafo,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StateArg {
    /// The in-memory store.
    Memory,
    /// QMDB, a fresh store per test.
    Qmdb,
}

#[derive(Serialize)]
struct FailureLine<'a> {
    name: &'a str,
    difference: &'a str,
}

pub fn run(args: ConformanceArgs) -> Result<(), Failure> {
    let subdirectory = match args.suite {
        SuiteArg::Blockchain => "BlockchainTests",
        SuiteArg::State => "GeneralStateTests",
    };
    let dir = match args.path {
        Some(path) => path,
        None => discovery::ethereum_tests_dir()
            .map(|root| root.join(subdirectory))
            .ok_or_else(|| Failure::input(discovery::missing_fixtures_message("conformance")))?,
    };
    let options = SuiteOptions {
        engine: match args.engine {
            EngineArg::Sequential => ConformanceEngine::Sequential,
            EngineArg::Fafo => ConformanceEngine::Fafo,
        },
        store: match args.state {
            StateArg::Memory => StoreKind::Memory,
            StateArg::Qmdb => StoreKind::Qmdb,
        },
        fork: (args.fork != "all").then_some(args.fork.clone()),
        scratch_dir: args.scratch_dir,
    };
    if let Some(scratch) = &options.scratch_dir {
        if !scratch.is_dir() {
            return Err(Failure::input(format!(
                "--scratch-dir {} is not a directory; give an existing one, such as /dev/shm",
                scratch.display()
            )));
        }
    }
    let report = match args.suite {
        SuiteArg::Blockchain => run_blockchain_suite(&dir, &options),
        SuiteArg::State => run_state_suite(&dir, &options),
    }
    .map_err(Failure::input)?;
    // A misspelt fork selects nothing: say so rather than pass an empty run.
    if report.total == 0 && options.fork.is_some() {
        return Err(Failure::input(format!(
            "no test under {} is for --fork {}; forks are named as in ethereum/tests (Cancun, \
             Shanghai, ShanghaiToCancunAtTime15k, ...), or \"all\"",
            dir.display(),
            args.fork
        )));
    }

    print_report(&report, args.json)?;
    if let Some(path) = &args.skips_file {
        write_skips(&report, path, args.json)?;
    } else if report.skipped > 0 {
        eprintln!(
            "{} tests skipped; list them with their reasons with --skips-file",
            report.skipped
        );
    }
    if report.failed > 0 {
        return Err(Failure::run(format!(
            "{} of {} {} tests failed",
            report.failed, report.total, report.suite
        )));
    }
    Ok(())
}

fn print_report(report: &SuiteReport, json: bool) -> Result<(), Failure> {
    for failure in &report.failures {
        if json {
            let line = FailureLine { name: &failure.name, difference: &failure.difference };
            println!("{}", serde_json::to_string(&line).map_err(Failure::run)?);
        } else {
            println!("FAIL {}: {}", failure.name, failure.difference);
        }
    }
    if json {
        println!("{}", serde_json::to_string(&report.summary()).map_err(Failure::run)?);
    } else {
        println!(
            "{}: {} total, {} passed, {} failed, {} skipped ({:.2}% passed) in {:.1} s",
            report.suite,
            report.total,
            report.passed,
            report.failed,
            report.skipped,
            report.pass_rate() * 100.0,
            report.seconds
        );
    }
    Ok(())
}

fn write_skips(report: &SuiteReport, path: &PathBuf, json: bool) -> Result<(), Failure> {
    let cannot_write =
        |error: std::io::Error| Failure::input(format!("cannot write {}: {error}", path.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(cannot_write)?);
    for skip in &report.skips {
        if json {
            let line = serde_json::to_string(skip).map_err(Failure::run)?;
            writeln!(out, "{line}").map_err(cannot_write)?;
        } else {
            writeln!(out, "{}\t{}", skip.name, skip.reason).map_err(cannot_write)?;
        }
    }
    out.flush().map_err(cannot_write)
}
