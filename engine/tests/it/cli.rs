//! The `zero-producer` binary: exit codes and one-line errors for bad input.

use std::process::Command;

/// Runs the binary; returns its exit code, stdout and stderr.
pub(crate) fn producer(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_zero-producer"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run zero-producer");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_bad_input(args: &[&str], expected: &str) {
    let (code, _, stderr) = producer(args);
    assert_eq!(code, 2, "{args:?} should exit 2; stderr: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr:?} should mention {expected:?}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
}

#[test]
fn bench_rejects_bad_configurations() {
    assert_bad_input(&["bench", "--workload", "swaps"], "unknown workload \"swaps\"");
    assert_bad_input(&["bench", "--accounts", "0"], "--accounts 0");
    assert_bad_input(&["bench", "--txs", "0"], "--txs 0");
    assert_bad_input(&["bench", "--txs", "100000000000"], "--txs 100000000000");
    assert_bad_input(&["bench", "--txs", "-5"], "-5");
    assert_bad_input(&["bench", "--txs", "99999999999999999999999"], "99999999999999999999999");
    assert_bad_input(&["bench", "--block-txs", "0"], "--block-txs 0");
    assert_bad_input(&["bench", "--engine", "warp"], "warp");
    assert_bad_input(
        &["bench", "--accounts", "10", "--hot-fraction", "0.5", "--hot-accounts", "11"],
        "--hot-accounts 11",
    );
    assert_bad_input(&["bench", "--state", "rocks"], "rocks");
    assert_bad_input(
        &["bench", "--state", "memory", "--datadir", "/tmp/x"],
        "--datadir applies only to --state qmdb",
    );
    let full = tempfile::tempdir().unwrap();
    std::fs::write(full.path().join("something"), b"x").unwrap();
    assert_bad_input(
        &["bench", "--datadir", full.path().to_str().unwrap(), "--txs", "10"],
        "is not empty",
    );
    // Runs that keep their stores in subdirectories check the directory itself too.
    let full_dir = full.path().to_str().unwrap();
    assert_bad_input(&["bench", "--engine", "both", "--datadir", full_dir], "is not empty");
    assert_bad_input(&["bench", "--repeat", "2", "--datadir", full_dir], "is not empty");
    let file = full.path().join("something");
    assert_bad_input(&["bench", "--datadir", file.to_str().unwrap()], "is a file");
    assert_bad_input(&["bench", "--workload", "amm", "--pools", "1000000000000"], "--pools");
}

#[test]
fn state_bench_rejects_bad_configurations() {
    assert_bad_input(&["state-bench", "--entries", "0"], "--entries 0");
    assert_bad_input(&["state-bench", "--ops-per-block", "0"], "--ops-per-block 0");
    assert_bad_input(&["state-bench", "--blocks", "0"], "--blocks 0");
    let full = tempfile::tempdir().unwrap();
    std::fs::write(full.path().join("something"), b"x").unwrap();
    assert_bad_input(&["state-bench", "--datadir", full.path().to_str().unwrap()], "is not empty");
    let file = full.path().join("something");
    assert_bad_input(&["state-bench", "--datadir", file.to_str().unwrap()], "is a file");
    // Fewer keys than a mixed block takes used to loop for ever picking them.
    assert_bad_input(
        &["state-bench", "--entries", "10", "--ops-per-block", "10", "--blocks", "1"],
        "at least 25 keys",
    );
    assert_bad_input(&["state-bench", "--entries", "100000000000000"], "more than the");
    assert_bad_input(
        &["state-bench", "--blocks", "18446744073709551615", "--ops-per-block", "2"],
        "more than the",
    );
}

#[test]
fn state_bench_reports_every_phase() {
    let (code, stdout, stderr) = producer(&[
        "state-bench",
        "--entries",
        "20000",
        "--ops-per-block",
        "2000",
        "--blocks",
        "2",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let phases: Vec<&str> = lines.iter().map(|l| l["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["populate", "update", "create", "delete", "read", "mixed"]);
    for line in &lines {
        for field in
            ["ops_per_s", "entries", "dram_bytes_per_entry", "disk_bytes_per_entry", "root"]
        {
            assert!(line.get(field).is_some(), "missing {field} in {line}");
        }
        assert!(line["ops_per_s"].as_f64().unwrap() > 0.0);
    }
    // Creates and deletes of 2 x 2000 keys each cancel out; mixed adds 2000/26 x 2 creates
    // and as many deletes.
    assert_eq!(lines[0]["entries"], 20000);
    assert_eq!(lines[5]["entries"], 20000);
}

#[test]
fn bench_json_is_one_line_per_run_and_deterministic() {
    let args = [
        "bench",
        "--workload",
        "erc20",
        "--accounts",
        "50",
        "--txs",
        "40",
        "--block-txs",
        "20",
        "--json",
    ];
    let (code, first, stderr) = producer(&args);
    assert_eq!(code, 0, "{stderr}");
    let (_, second, _) = producer(&args);
    let parse = |text: &str| -> serde_json::Value { serde_json::from_str(text.trim()).unwrap() };
    let (first, second) = (parse(&first), parse(&second));
    for field in [
        "engine",
        "state",
        "workload",
        "txs",
        "accounts",
        "blocks",
        "threads",
        "seconds",
        "tps",
        "gas_per_s",
        "state_root",
        "intake_tps",
    ] {
        assert!(first.get(field).is_some(), "missing {field}");
    }
    assert_eq!(first["state_root"], second["state_root"]);
    assert_eq!(first["txs"], 40);
    assert_eq!(first["failed_txs"], 0);
}

#[test]
fn replay_rejects_missing_and_malformed_fixtures() {
    let scratch = std::env::temp_dir().join(format!("zero-cli-{}", std::process::id()));
    let block_dir = scratch.join("100");
    std::fs::create_dir_all(&block_dir).unwrap();
    let dir = scratch.to_str().unwrap();

    assert_bad_input(&["replay", "--fixtures", "/nonexistent/fixtures"], "/nonexistent/fixtures");
    assert_bad_input(&["replay", "--fixtures", dir], "block.json is missing");
    std::fs::write(block_dir.join("block.json"), "{\"number\": ").unwrap();
    assert_bad_input(&["replay", "--fixtures", dir], "malformed fixture");
    assert_bad_input(&["replay", "--fixtures", dir, "--block", "7"], "block 7 is not in");
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn replay_one_block_passes() {
    if zero_fixtures::discovery::mainnet_dir().is_none() {
        eprintln!("{}", zero_fixtures::discovery::missing_fixtures_message("replay CLI"));
        return;
    }
    let (code, stdout, stderr) = producer(&["replay", "--block", "4370000", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["receipts_root_ok"], true);
    assert_eq!(lines[1]["passed"], 1);
    assert_eq!(lines[1]["failed"], 0);
}

#[test]
fn da_files_round_trip_and_bad_chunks_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let block: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let input = dir.path().join("block.bin");
    std::fs::write(&input, &block).unwrap();
    let chunks = dir.path().join("chunks");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (code, _, stderr) = producer(&[
        "da",
        "encode",
        "--profile",
        "fast",
        "--n",
        "8",
        "--k",
        "3",
        "--input",
        &path(&input),
        "--out",
        &path(&chunks),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // Encoding again into the same directory is refused: with a smaller n, the first
    // encoding's higher chunks would stay beside the second's commitment.
    let encode_again = ["--n", "4", "--k", "2", "--input", &path(&input), "--out", &path(&chunks)];
    assert_bad_input(&[&["da", "encode"][..], &encode_again].concat(), "already holds");
    // An output path that is a file cannot be checked for an encoding: refused before encoding.
    let onto_file = ["--n", "4", "--k", "2", "--input", &path(&input), "--out", &path(&input)];
    assert_bad_input(&[&["da", "encode"][..], &onto_file].concat(), "Not a directory");
    let commitment = path(&chunks.join("commitment.bin"));
    let chunk = |i: usize| path(&chunks.join(format!("chunk-{i:05}.bin")));
    let (code, stdout, stderr) =
        producer(&["da", "verify", "--commitment", &commitment, "--chunk", &chunk(5)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("chunk 5: valid"), "{stdout}");
    // Any three chunks, here all parity, rebuild the block.
    let out = path(&dir.path().join("rebuilt.bin"));
    let (code, _, stderr) = producer(&[
        "da",
        "reconstruct",
        "--commitment",
        &commitment,
        "--out",
        &out,
        &chunk(5),
        &chunk(6),
        &chunk(7),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), block);
    // A chunk file far larger than its commitment's chunks (sparse, 3 GiB) is refused after
    // reading no more than one chunk's bytes.
    let huge_chunk = dir.path().join("huge-chunk.bin");
    std::fs::File::create(&huge_chunk).unwrap().set_len(3 << 30).unwrap();
    let args = ["da", "reconstruct", "--commitment", &commitment, "--out", &out, &chunk(5)];
    let huge = path(&huge_chunk);
    assert_bad_input(
        &[&args[..], &[huge.as_str(), &chunk(7)]].concat(),
        "a chunk of this commitment has",
    );
    // A flipped bit fails verification (exit 1); a chunk checked as another index too.
    let mut bytes = std::fs::read(chunk(2)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(chunk(2), &bytes).unwrap();
    let (code, _, stderr) =
        producer(&["da", "verify", "--commitment", &commitment, "--chunk", &chunk(2)]);
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = producer(&[
        "da",
        "verify",
        "--commitment",
        &commitment,
        "--chunk",
        &chunk(3),
        "--index",
        "4",
    ]);
    assert_ne!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Impossible parameters are bad input.
    assert_bad_input(&["da-bench", "--n", "4", "--k", "4", "--size", "1000"], "k");
    assert_bad_input(&["da-bench", "--profile", "slow"], "slow");
    // No runs would print nothing and succeed.
    assert_bad_input(&["da-bench", "--repeat", "0"], "repeat");
    // Sizes past the profile's maximum are refused before the block is allocated (this one
    // used to abort on a 10^15-byte allocation).
    assert_bad_input(&["da-bench", "--size", "1000000000000000"], "1000000000000000");
    // So is a file that large, before it is read (a sparse 3 GiB file).
    let huge = dir.path().join("huge.bin");
    std::fs::File::create(&huge).unwrap().set_len(3 << 30).unwrap();
    let huge_out = dir.path().join("huge-chunks");
    assert_bad_input(
        &[
            "da",
            "encode",
            "--profile",
            "fast",
            "--input",
            &path(&huge),
            "--out",
            &path(&huge_out),
            "--n",
            "8",
            "--k",
            "3",
        ],
        "3221225472",
    );
}

/// Runs `bench` with `args` and `--json`, expects success, and returns its JSON lines.
fn bench_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = producer(&all);
    assert_eq!(code, 0, "{stderr}");
    stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// `bench --engine both` on `txs` transactions of `workload` over 200 accounts, blocks of 100,
/// 2 threads, stores under `datadir/d`, plus `extra`; its JSON lines.
fn bench_both_json(
    workload: &str,
    txs: &str,
    extra: &[&str],
    datadir: &std::path::Path,
) -> Vec<serde_json::Value> {
    let datadir = datadir.join("d");
    let mut args = vec!["--workload", workload, "--engine", "both", "--threads", "2"];
    args.extend(["--accounts", "200", "--txs", txs, "--block-txs", "100"]);
    args.extend(["--datadir", datadir.to_str().unwrap()]);
    args.extend_from_slice(extra);
    bench_json(&args)
}

#[test]
fn bench_both_engines_compare_on_the_same_order() {
    let datadir = tempfile::tempdir().unwrap();
    let lines = bench_both_json("mixed", "400", &[], datadir.path());
    assert_eq!(lines.len(), 3, "fafo, sequential, comparison: {lines:?}");
    assert_eq!(lines[0]["engine"], "fafo");
    assert_eq!(lines[0]["threads"], 2);
    assert_eq!(lines[0]["prediction"], "simulate");
    assert_eq!(lines[1]["engine"], "sequential");
    assert_eq!(lines[0]["state_root"], lines[1]["state_root"]);
    assert_eq!(lines[2]["roots_match"], true);
    assert_eq!(lines[2]["rounds"], 1);
    assert_eq!(lines[2]["speedups"].as_array().unwrap().len(), 1);
    assert!(lines[2]["speedup"].as_f64().unwrap() > 0.0);
    // Each engine got its own fresh store under the data dir.
    assert!(datadir.path().join("d/fafo").is_dir() && datadir.path().join("d/sequential").is_dir());
    assert_bad_input(&["bench", "--threads", "0"], "0");
    assert_bad_input(&["bench", "--predict", "guess"], "guess");
    assert_bad_input(&["bench", "--repeat", "0"], "0");
}

#[test]
fn bench_rounds_give_the_median_speedup() {
    let datadir = tempfile::tempdir().unwrap();
    let lines = bench_both_json("erc20", "300", &["--repeat", "3"], datadir.path());
    assert_eq!(lines.len(), 7, "three rounds of fafo and sequential, then the comparison");
    for round in lines[..6].chunks(2) {
        assert_eq!(round[0]["engine"], "fafo");
        assert_eq!(round[1]["engine"], "sequential");
        assert_eq!(round[0]["state_root"], lines[0]["state_root"]);
        assert_eq!(round[1]["state_root"], lines[0]["state_root"]);
    }
    let comparison = &lines[6];
    assert_eq!(comparison["rounds"], 3);
    assert_eq!(comparison["roots_match"], true);
    assert_eq!(comparison["same_order"], true, "FAFO chose one order in every round");
    let mut speedups: Vec<f64> = comparison["speedups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|speedup| speedup.as_f64().unwrap())
        .collect();
    for (round, speedup) in lines[..6].chunks(2).zip(&speedups) {
        let ratio = round[0]["tps"].as_f64().unwrap() / round[1]["tps"].as_f64().unwrap();
        assert!((ratio - speedup).abs() < 1e-9 * ratio, "round speedup {speedup} vs {ratio}");
    }
    speedups.sort_by(f64::total_cmp);
    assert_eq!(comparison["speedup"].as_f64().unwrap(), speedups[1], "the median round");
    for store in ["fafo", "sequential", "fafo-2", "sequential-2", "fafo-3", "sequential-3"] {
        assert!(datadir.path().join("d").join(store).is_dir(), "a fresh store per run: {store}");
    }

    // One engine, several runs: one report per run, each in its own store.
    let datadir = tempfile::tempdir().unwrap();
    let datadir_arg = datadir.path().join("d");
    let lines = bench_json(&[
        "--workload",
        "transfers",
        "--accounts",
        "200",
        "--txs",
        "200",
        "--block-txs",
        "100",
        "--repeat",
        "2",
        "--datadir",
        datadir_arg.to_str().unwrap(),
    ]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["state_root"], lines[1]["state_root"]);
    assert!(datadir.path().join("d/run-1").is_dir() && datadir.path().join("d/run-2").is_dir());
}

/// `--ceiling`: each round also runs one sequential copy per FAFO worker, at once; the
/// comparison's ceiling is their transactions over the time from the first one's start to the
/// last one's stop, against the round's single sequential run.
#[test]
fn bench_ceiling_runs_sequential_copies_at_once() {
    let datadir = tempfile::tempdir().unwrap();
    let extra = ["--repeat", "2", "--ceiling"];
    let lines = bench_both_json("transfers", "300", &extra, datadir.path());
    assert_eq!(lines.len(), 9, "two rounds of fafo, sequential and two copies; the comparison");
    let comparison = &lines[8];
    let mut ceilings = Vec::new();
    for (round, runs) in lines[..8].chunks(4).enumerate() {
        assert_eq!(runs[0]["engine"], "fafo");
        assert_eq!(runs[1]["engine"], "sequential");
        assert_eq!(runs[1]["copies"], 1);
        for copy in &runs[2..] {
            assert_eq!(copy["engine"], "sequential");
            assert_eq!(copy["copies"], 2);
            assert_eq!(copy["state_root"], lines[0]["state_root"], "round {round}");
            assert!(copy.get("cpu_seconds").unwrap().is_null(), "the process's time is shared");
        }
        // Their span, from the first start to the last stop, is at least the slowest copy's
        // own time (more by however far apart the copies woke).
        let slowest = runs[2..].iter().map(|copy| copy["seconds"].as_f64().unwrap());
        let slowest = slowest.fold(0.0, f64::max);
        let at_most = 600.0 / slowest / runs[1]["tps"].as_f64().unwrap();
        let reported = comparison["ceilings"][round].as_f64().unwrap();
        assert!(reported > 0.0 && reported <= at_most * (1.0 + 1e-9), "round {round}: {reported}");
        ceilings.push(reported);
    }
    assert_eq!(comparison["roots_match"], true);
    let mean = (ceilings[0] + ceilings[1]) / 2.0;
    assert!((comparison["ceiling"].as_f64().unwrap() - mean).abs() < 1e-9 * mean);
    assert!(comparison["speedup_of_ceiling"].as_f64().unwrap() > 0.0);
    for store in ["copy-1", "copy-2", "copy-2-1", "copy-2-2"] {
        assert!(datadir.path().join("d").join(store).is_dir(), "a fresh store per copy: {store}");
    }
    // Without `--ceiling` the comparison carries no ceiling; alone it is bad input.
    let lines = bench_json(&[
        "--workload",
        "transfers",
        "--engine",
        "both",
        "--accounts",
        "100",
        "--txs",
        "100",
        "--block-txs",
        "100",
    ]);
    assert!(lines[2].get("ceiling").is_none(), "{}", lines[2]);
    assert_bad_input(&["bench", "--ceiling"], "--ceiling applies only to --engine both");
}

#[test]
fn replay_both_engines_agree_on_a_fixture_block() {
    let Some(dir) = zero_fixtures::discovery::mainnet_dir() else {
        eprintln!("{}", zero_fixtures::discovery::missing_fixtures_message("replay --engine both"));
        return;
    };
    let blocks = zero_fixtures::mainnet::list_blocks(&dir).unwrap();
    let (number, _) = blocks.last().unwrap();
    let number = number.to_string();
    let (code, stdout, stderr) =
        producer(&["replay", "--engine", "both", "--threads", "2", "--block", &number, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["outcomes_match"], true);
    assert_eq!(lines[0]["prediction"], "fields", "replay predicts from fields by default");
    assert_eq!(lines[1]["outcomes_match"], true);
    assert_eq!(lines[1]["passed"], 1);
    assert_bad_input(&["replay", "--engine", "fast"], "fast");
}

/// Runs `schedule-stats --json` on `args` and returns its one JSON line.
fn schedule_stats(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["schedule-stats", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = producer(&all);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn schedule_stats_frames_uniform_transfers_in_parallel() {
    let args = ["--workload", "transfers", "--txs", "5000", "--accounts", "20000", "--seed", "4"];
    let stats = schedule_stats(&args);
    for field in [
        "workload",
        "txs",
        "frames",
        "txs_per_frame",
        "forced_flushes",
        "false_positive_rate",
        "critical_path",
        "ideal_speedup",
        "framing_tx_per_s",
    ] {
        assert!(stats.get(field).is_some(), "missing {field} in {stats}");
    }
    assert_eq!(stats["workload"], "transfers");
    assert_eq!(stats["txs"], 5000);
    assert!(stats["ideal_speedup"].as_f64().unwrap() > 10.0, "{stats}");
    assert!(stats["txs_per_frame"].as_f64().unwrap() > 1.0, "{stats}");
    let ideal = 5000.0 / stats["critical_path"].as_f64().unwrap();
    assert_eq!(stats["ideal_speedup"].as_f64().unwrap(), ideal);
    assert!(stats["framing_tx_per_s"].as_f64().unwrap() > 0.0);

    // Without --json: a header row and a row of figures.
    let (code, stdout, stderr) = producer(&[&["schedule-stats"], &args[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].contains("ideal x") && rows[1].starts_with("transfers"), "{stdout}");
}

#[test]
fn schedule_stats_hot_spot_lowers_the_ideal_speedup() {
    let uniform = ["--workload", "erc20", "--txs", "3000", "--accounts", "5000", "--seed", "9"];
    let hot = [&uniform[..], &["--hot-fraction", "0.5", "--hot-accounts", "2"]].concat();
    let (uniform, hot) = (schedule_stats(&uniform), schedule_stats(&hot));
    let speedup = |stats: &serde_json::Value| stats["ideal_speedup"].as_f64().unwrap();
    assert!(speedup(&hot) < speedup(&uniform), "hot {hot} vs uniform {uniform}");
    assert_eq!(hot["hot_accounts"], 2);
}

#[test]
fn schedule_stats_blocks_add_up() {
    let args = ["--workload", "mixed", "--txs", "1000", "--accounts", "2000", "--block-txs", "300"];
    let stats = schedule_stats(&args);
    assert_eq!(stats["blocks"], 4);
    assert!(stats["critical_path"].as_u64().unwrap() >= 4, "one transaction per block at least");
}

#[test]
fn schedule_stats_rejects_bad_input() {
    let base = ["schedule-stats", "--workload", "transfers", "--accounts", "100"];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    assert_bad_input(&with(&["--txs", "0"]), "--txs 0");
    assert_bad_input(&with(&["--txs", "10", "--block-txs", "0"]), "--block-txs 0");
    assert_bad_input(
        &with(&["--txs", "10", "--hot-fraction", "1.5", "--hot-accounts", "2"]),
        "--hot-fraction 1.5 must be between 0 and 1",
    );
    assert_bad_input(
        &with(&["--txs", "10", "--hot-fraction=-0.1", "--hot-accounts", "2"]),
        "--hot-fraction -0.1",
    );
    assert_bad_input(
        &with(&["--txs", "10", "--hot-fraction", "NaN", "--hot-accounts", "2"]),
        "--hot-fraction NaN",
    );
    assert_bad_input(
        &with(&["--txs", "10", "--hot-fraction", "0.5", "--hot-accounts", "101"]),
        "--hot-accounts 101 must be between 1 and --accounts (100)",
    );
    assert_bad_input(
        &with(&["--txs", "10", "--hot-fraction", "0.5", "--hot-accounts", "0"]),
        "--hot-accounts 0",
    );
    assert_bad_input(&with(&["--txs", "10", "--hot-fraction", "0.5"]), "--hot-accounts");
    assert_bad_input(&with(&["--txs", "ten"]), "ten");
    assert_bad_input(
        &[
            "schedule-stats",
            "--workload",
            "amm",
            "--txs",
            "10",
            "--accounts",
            "100",
            "--pools",
            "0",
        ],
        "--pools 0",
    );
    assert_bad_input(
        &["schedule-stats", "--workload", "swaps", "--txs", "10", "--accounts", "100"],
        "unknown workload \"swaps\"",
    );
    assert_bad_input(
        &["schedule-stats", "--workload", "erc20", "--txs", "10", "--accounts", "1"],
        "--accounts 1",
    );
    assert_bad_input(&["schedule-stats", "--txs", "10", "--accounts", "100"], "--workload");
}

/// A reader that goes away (`zero-producer … | head -1`) ends the run quietly, as with any Unix
/// tool, rather than with a panic on the failed write.
#[test]
fn closed_output_pipe_ends_the_run_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_zero-producer"))
        .args(["bench", "--state", "memory", "--accounts", "100", "--txs", "200", "--json"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zero-producer");
    // Nothing is read: the first line the run prints meets a closed pipe.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for zero-producer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "panicked on a closed pipe: {stderr}");
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "status {:?}", output.status);
}
