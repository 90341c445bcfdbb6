//! `zero-producer replay`.

use crate::bench::PredictArg;
use crate::Failure;
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use zero_engine::{
    chain::ChainSpec,
    parallel::{ParallelExecutor, PredictionMode},
    replay::{prepare, replay_fafo, replay_sequential, ReplayError, ReplayReport},
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
    /// Engine: sequential, fafo (the block's order kept, parallel under the dependency plan),
    /// or both (compared block by block).
    #[arg(long, value_enum, default_value = "sequential")]
    engine: ReplayEngine,
    /// FAFO workers (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// How FAFO predicts access sets. Replay times prediction inside FAFO's time, and simulating
    /// every contract call costs about one more execution each (0.70-0.73x sequential on 2
    /// cores, against 1.2x from fields), so fields is the default here.
    #[arg(long, value_enum, default_value = "fields")]
    predict: PredictArg,
    /// Run each block this many times and report the middle time. With `--engine both`, each
    /// round runs both engines back to back, and which goes first alternates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReplayEngine {
    Sequential,
    Fafo,
    Both,
}

/// One block under `--engine both`.
#[derive(Serialize)]
struct Compared {
    block: u64,
    txs: usize,
    sequential_seconds: f64,
    fafo_seconds: f64,
    speedup: f64,
    /// FAFO's receipts, gas, logs and state changes equal the sequential engine's.
    outcomes_match: bool,
    /// How FAFO predicted access sets (`--predict`).
    prediction: &'static str,
    #[serde(flatten)]
    fafo: zero_engine::replay::FafoReplayFigures,
}

#[derive(Serialize)]
struct Summary {
    blocks: usize,
    passed: usize,
    failed: usize,
    /// Gas over the blocks' times; with `--engine both`, the sequential engine's.
    gas_per_s: f64,
    /// The sum of the blocks' middle sequential times (`--engine both`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sequential_seconds: Option<f64>,
    /// The sum of the blocks' middle FAFO times (`--engine both`).
    #[serde(skip_serializing_if = "Option::is_none")]
    fafo_seconds: Option<f64>,
    /// `sequential_seconds / fafo_seconds`: the speedup over the whole replay, so large blocks
    /// weigh more than small ones (each block's own is on its line).
    #[serde(skip_serializing_if = "Option::is_none")]
    speedup: Option<f64>,
    /// Every block's FAFO outcome equals the sequential one and passed the header checks
    /// (`--engine both`). Replay has no state root to compare: a fixture holds only the state
    /// the block reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcomes_match: Option<bool>,
}

/// One engine's runs of a block: their timings and the last run's result.
struct Runs<T> {
    seconds: Vec<f64>,
    last: Option<T>,
}

impl<T> Runs<T> {
    fn new() -> Self {
        Self { seconds: Vec::new(), last: None }
    }

    fn push(&mut self, (value, seconds): (T, f64)) {
        self.seconds.push(seconds);
        self.last = Some(value);
    }

    /// The last run's result and the middle timing (the upper of the two middle ones for an
    /// even count, so that it is a time one run took); `None` when the engine did not run.
    fn middle(mut self) -> Option<(T, f64)> {
        self.seconds.sort_by(f64::total_cmp);
        let middle = *self.seconds.get(self.seconds.len() / 2)?;
        Some((self.last?, middle))
    }
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
    let executor =
        ParallelExecutor::try_new(args.threads.map(usize::from)).map_err(Failure::input)?;
    let prediction = match args.predict {
        PredictArg::Simulate => PredictionMode::Simulate,
        PredictArg::Fields => PredictionMode::Fields,
    };
    let (mut passed, mut failed, mut gas, mut seconds) = (0usize, 0usize, 0u64, 0f64);
    let (mut sequential_total, mut fafo_total, mut all_match) = (0f64, 0f64, true);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|error| Failure::input(format!("could not start a thread: {error}")))?;
    for (_, path) in &available {
        let fixture = mainnet::load_block(path).map_err(Failure::input)?;
        let prepared = prepare(fixture).map_err(|error| match error {
            ReplayError::Fixture(error) => Failure::input(error),
            other => Failure::input(other),
        })?;
        let number = prepared.fixture.number;
        let (mut sequential, mut fafo) = (Runs::new(), Runs::new());
        let ran = (0..args.repeat).try_for_each(|round| {
            // Which engine goes first alternates, so that neither always runs on the caches the
            // other has just warmed.
            let fafo_first = round % 2 == 1;
            for fafo_turn in [fafo_first, !fafo_first] {
                if fafo_turn && args.engine != ReplayEngine::Sequential {
                    let (report, outcome, figures) =
                        replay_fafo(&chain, &prepared, &executor, prediction)?;
                    let seconds = report.seconds;
                    fafo.push(((report, outcome, figures), seconds));
                } else if !fafo_turn && args.engine != ReplayEngine::Fafo {
                    // On one thread: the receipts root is otherwise built on every core.
                    let (report, outcome) =
                        one_thread.install(|| replay_sequential(&chain, &prepared))?;
                    let seconds = report.seconds;
                    sequential.push(((report, outcome), seconds));
                }
            }
            Ok::<_, ReplayError>(())
        });
        if let Err(error) = ran {
            eprintln!("block {number}: {error}");
            failed += 1;
            all_match = false;
            continue;
        }
        let (sequential, fafo) = (sequential.middle(), fafo.middle());
        let (report, seconds_used) = match (sequential, fafo) {
            (
                Some(((report, expected), sequential_seconds)),
                Some(((fafo, outcome, figures), fafo_seconds)),
            ) => {
                let outcomes_match = outcome.receipts == expected.receipts
                    && outcome.changes == expected.changes
                    && outcome.gas_used == expected.gas_used
                    && outcome.logs_bloom == expected.logs_bloom
                    && outcome.requests == expected.requests;
                all_match &= outcomes_match && fafo.passed();
                sequential_total += sequential_seconds;
                fafo_total += fafo_seconds;
                let compared = Compared {
                    block: number,
                    txs: report.txs,
                    sequential_seconds,
                    fafo_seconds,
                    speedup: sequential_seconds / fafo_seconds,
                    outcomes_match,
                    prediction: prediction.name(),
                    fafo: figures,
                };
                if args.json {
                    println!("{}", serde_json::to_string(&compared).map_err(Failure::run)?);
                } else {
                    print_report(
                        &ReplayReport { seconds: sequential_seconds, ..report.clone() },
                        false,
                    );
                    println!(
                        "  fafo: {:.2} ms, speed-up {:.2}x, outcomes match: {}, {} mispredicted, {} re-executed, {} set aside",
                        fafo_seconds * 1e3,
                        compared.speedup,
                        outcomes_match,
                        compared.fafo.stats.mispredicted,
                        compared.fafo.stats.reexecuted,
                        compared.fafo.stats.set_aside
                    );
                }
                let passed_both = report.passed() && fafo.passed() && outcomes_match;
                (ReplayReport { seconds: sequential_seconds, ..report }, Some(passed_both))
            }
            (Some(((report, _), seconds)), None) => {
                print_report(&ReplayReport { seconds, ..report.clone() }, args.json);
                (ReplayReport { seconds, ..report }, None)
            }
            (None, Some(((report, _, _), seconds))) => {
                print_report(&ReplayReport { seconds, ..report.clone() }, args.json);
                (ReplayReport { seconds, ..report }, None)
            }
            (None, None) => unreachable!("an engine always runs"),
        };
        gas += report.gas_used;
        seconds += report.seconds;
        if seconds_used.unwrap_or_else(|| report.passed()) {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let summary = Summary {
        blocks: available.len(),
        passed,
        failed,
        gas_per_s: gas as f64 / seconds.max(1e-9),
        sequential_seconds: (args.engine == ReplayEngine::Both).then_some(sequential_total),
        fafo_seconds: (args.engine == ReplayEngine::Both).then_some(fafo_total),
        speedup: (args.engine == ReplayEngine::Both).then(|| sequential_total / fafo_total),
        outcomes_match: (args.engine == ReplayEngine::Both).then_some(all_match),
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
        if let (Some(speedup), Some(outcomes_match)) = (summary.speedup, summary.outcomes_match) {
            println!(
                "fafo speed-up over all blocks: {speedup:.2}x; outcomes match: {outcomes_match}"
            );
        }
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
        "block {:>9}: {:>4} txs, gas {:>9} [{}], blob gas [{}], requests [{}], receipts root \
         [{}], logs bloom [{}], {:.2} ms",
        report.block,
        report.txs,
        report.gas_used,
        mark(Some(report.gas_used_ok)),
        mark(report.blob_gas_used_ok),
        mark(report.requests_hash_ok),
        mark(report.receipts_root_ok),
        mark(Some(report.logs_bloom_ok)),
        report.seconds * 1e3
    );
}
