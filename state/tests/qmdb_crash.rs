//! Crash safety: a child process commits blocks and is killed with SIGKILL at random points;
//! every reopen must land exactly on the last committed block, with its root and its data.

use alloy_primitives::B256;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};
use zero_state::{qmdb::Config, KeyHash, Qmdb, StateCommit};

const CHILD_ENV: &str = "ZERO_QMDB_CRASH_CHILD_DIR";
const SEED: u64 = 0xc0ffee;
const OPS_PER_BLOCK: usize = 600;

type Model = BTreeMap<KeyHash, Vec<u8>>;

fn config() -> Config {
    Config {
        segment_size: 64 << 10,
        compact_min_entries: 256,
        compact_utilization: 70,
        compact_batch: 128,
        keep_heights: 3,
    }
}

fn block_ops(height: u64, model: &Model) -> Vec<(KeyHash, Option<Vec<u8>>)> {
    let mut rng = StdRng::seed_from_u64(SEED ^ height);
    let existing: Vec<KeyHash> = model.keys().copied().collect();
    let mut ops = BTreeMap::new();
    for _ in 0..OPS_PER_BLOCK {
        let value = height.to_le_bytes().repeat(rng.random_range(1..5));
        match rng.random_range(0..10) {
            0..4 => ops.insert(KeyHash(rng.random()), Some(value)),
            _ if existing.is_empty() => None,
            4..9 => ops.insert(existing[rng.random_range(0..existing.len())], Some(value)),
            _ => ops.insert(existing[rng.random_range(0..existing.len())], None),
        };
    }
    ops.into_iter().collect()
}

fn apply(model: &mut Model, ops: &[(KeyHash, Option<Vec<u8>>)]) {
    for (key, value) in ops {
        match value {
            Some(value) => model.insert(*key, value.clone()),
            None => model.remove(key),
        };
    }
}

/// The model after blocks `0..=height`.
fn model_at(height: Option<u64>) -> Model {
    let mut model = Model::new();
    if let Some(height) = height {
        for h in 0..=height {
            let ops = block_ops(h, &model);
            apply(&mut model, &ops);
        }
    }
    model
}

/// Runs only as the child of `killed_at_random_points_recovers_the_last_committed_block`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let mut store = Qmdb::open(&dir, config()).expect("child open");
    let mut model = model_at(store.last_height());
    let mut out = std::io::stdout().lock();
    writeln!(out, "opened").unwrap();
    out.flush().unwrap();
    let mut height = store.last_height().map_or(0, |h| h + 1);
    loop {
        let ops = block_ops(height, &model);
        apply(&mut model, &ops);
        let root = store.commit_ops(height, ops).expect("child commit");
        writeln!(out, "committed {height} {root}").unwrap();
        out.flush().unwrap();
        height += 1;
    }
}

#[test]
fn killed_at_random_points_recovers_the_last_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let mut reference = Qmdb::open(reference_dir.path(), config()).unwrap();
    let mut reference_model = Model::new();
    let mut expected_roots: Vec<B256> = Vec::new();
    let mut rng = StdRng::seed_from_u64(42);
    let mut kills_mid_run = 0;
    for round in 0..60 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let committed = |line: &str| -> Option<(u64, B256)> {
            let mut parts = line.strip_prefix("committed ")?.split(' ');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        };
        // Wait until the child has recovered. Most rounds then wait for its first commit, so
        // that the kill lands in a run that is committing however slow the machine is, and let
        // it commit for a random while; one round in six kills it as it starts, commit or not.
        for line in lines.by_ref() {
            if line.unwrap().ends_with("opened") {
                break;
            }
        }
        let at_start = round % 6 == 5;
        let mut printed: Vec<(u64, B256)> = Vec::new();
        if !at_start {
            printed.extend(lines.by_ref().map_while(Result::ok).find_map(|line| committed(&line)));
        }
        let pause = if at_start { 0..2_000 } else { 0..20_000 };
        std::thread::sleep(Duration::from_micros(rng.random_range(pause)));
        child.kill().unwrap();
        child.wait().unwrap();
        printed.extend(lines.map_while(Result::ok).filter_map(|line| committed(&line)));
        if !printed.is_empty() {
            kills_mid_run += 1;
        }

        let store = Qmdb::open(dir.path(), config())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let height = store.last_height();
        // Extend the reference run to the recovered height.
        while height.is_some_and(|h| expected_roots.len() as u64 <= h) {
            let h = expected_roots.len() as u64;
            let ops = block_ops(h, &reference_model);
            apply(&mut reference_model, &ops);
            expected_roots.push(reference.commit_ops(h, ops).unwrap());
        }
        // Every block the child reported committed survived, at most one more (killed after the
        // commit point, before printing), and the printed roots are the reference roots.
        if let Some((last, _)) = printed.last() {
            let h = height.expect("a committed block survived");
            assert!(h == *last || h == last + 1, "round {round}: reported {last}, recovered {h}");
        }
        for (h, root) in &printed {
            assert_eq!(*root, expected_roots[*h as usize], "round {round}: block {h}");
        }
        match height {
            Some(h) => {
                assert_eq!(store.state_root(), expected_roots[h as usize], "round {round}");
                let model = model_at(Some(h));
                for (key, value) in &model {
                    assert_eq!(store.get(key).unwrap().as_ref(), Some(value), "round {round}");
                }
                assert_eq!(store.stats().live_keys, model.len() as u64);
            }
            None => assert!(printed.is_empty()),
        }
    }
    // The 50 rounds that waited for a commit must each have seen one.
    assert!(kills_mid_run >= 50, "only {kills_mid_run} kills landed after a commit");
}
