//! QMDB behaviour: determinism, reads against a model, proofs, reopen, crash recovery,
//! compaction and pruning, and corruption detection.

use alloy_primitives::B256;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use zero_state::{
    qmdb::{verify, Config, EntryProof},
    KeyHash, Qmdb, StateCommit, StateError,
};

type Model = BTreeMap<KeyHash, Vec<u8>>;

fn random_key(rng: &mut StdRng) -> KeyHash {
    KeyHash(rng.random())
}

/// Deterministic blocks of creates, updates and deletes over a growing key set.
fn block_ops(
    seed: u64,
    height: u64,
    model: &Model,
    size: usize,
) -> Vec<(KeyHash, Option<Vec<u8>>)> {
    let mut rng = StdRng::seed_from_u64(seed ^ height.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let existing: Vec<KeyHash> = model.keys().copied().collect();
    let mut ops = BTreeMap::new();
    for _ in 0..size {
        let roll = rng.random_range(0..10);
        let value: Vec<u8> = (0..rng.random_range(1..48)).map(|_| rng.random()).collect();
        if roll < 4 || existing.is_empty() {
            ops.insert(random_key(&mut rng), Some(value));
        } else {
            let key = existing[rng.random_range(0..existing.len())];
            ops.insert(key, if roll < 8 { Some(value) } else { None });
        }
    }
    ops.into_iter().collect()
}

fn apply_model(model: &mut Model, ops: &[(KeyHash, Option<Vec<u8>>)]) {
    for (key, value) in ops {
        match value {
            Some(value) => model.insert(*key, value.clone()),
            None => model.remove(key),
        };
    }
}

fn small_config() -> Config {
    Config {
        segment_size: 16 << 10,
        compact_min_entries: 64,
        compact_utilization: 60,
        compact_batch: 256,
        keep_heights: 2,
    }
}

/// Runs `blocks` blocks into a fresh store in `dir`; returns the model and the root after each.
fn run(
    dir: &std::path::Path,
    config: Config,
    seed: u64,
    blocks: u64,
    size: usize,
) -> (Model, Vec<B256>) {
    let mut store = Qmdb::open(dir, config).unwrap();
    let mut model = Model::new();
    let mut roots = Vec::new();
    for height in 0..blocks {
        let ops = block_ops(seed, height, &model, size);
        apply_model(&mut model, &ops);
        roots.push(store.commit_ops(height, ops).unwrap());
    }
    check_reads(&store, &model);
    (model, roots)
}

fn check_reads(store: &Qmdb, model: &Model) {
    for (key, value) in model {
        assert_eq!(store.get(key).unwrap().as_ref(), Some(value), "key {key:?}");
    }
    assert_eq!(store.stats().live_keys, model.len() as u64);
}

#[test]
fn same_blocks_give_the_same_root_across_runs_and_thread_counts() {
    let roots: Vec<Vec<B256>> = [1usize, 2, 4]
        .iter()
        .map(|threads| {
            let dir = tempfile::tempdir().unwrap();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(*threads).build().unwrap();
            pool.install(|| run(dir.path(), small_config(), 7, 12, 300).1)
        })
        .collect();
    assert_eq!(roots[0], roots[1]);
    assert_eq!(roots[0], roots[2]);
    // Every block changes the root.
    assert!(roots[0].windows(2).all(|pair| pair[0] != pair[1]));
    let other = tempfile::tempdir().unwrap();
    assert_ne!(run(other.path(), small_config(), 8, 12, 300).1, roots[0]);
}

#[test]
fn reads_match_a_model_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (model, roots) = run(dir.path(), Config::default(), 3, 10, 500);
    let reopened = Qmdb::open(dir.path(), Config::default()).unwrap();
    assert_eq!(reopened.state_root(), *roots.last().unwrap());
    assert_eq!(reopened.last_height(), Some(9));
    check_reads(&reopened, &model);
    // Absent keys read as absent.
    let mut rng = StdRng::seed_from_u64(99);
    for _ in 0..100 {
        assert_eq!(reopened.get(&random_key(&mut rng)).unwrap(), None);
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Qmdb::open(dir.path(), Config::default()).unwrap();
    let second = Qmdb::open(dir.path(), Config::default());
    assert!(matches!(second, Err(StateError::Locked { .. })), "{second:?}");
}

#[test]
fn heights_must_follow_each_other_and_keys_must_be_unique() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Qmdb::open(dir.path(), Config::default()).unwrap();
    store.commit_ops(5, vec![(KeyHash([0x11; 32]), Some(vec![1]))]).unwrap();
    let skipped = store.commit_ops(7, vec![]);
    assert!(matches!(skipped, Err(StateError::HeightOutOfOrder { last: 5, got: 7 })));
    let twice =
        store.commit_ops(6, vec![(KeyHash([1; 32]), Some(vec![1])), (KeyHash([1; 32]), None)]);
    assert!(matches!(twice, Err(StateError::InvalidChanges { .. })));
    // The failed attempts changed nothing.
    assert_eq!(store.last_height(), Some(5));
    store.commit_ops(6, vec![]).unwrap();
}

/// Writes the store could not read back are refused: a value over the 16 MiB limit before
/// anything is written, and a block deleting more than 65,535 keys that follow one kept key
/// (one entry would name them all) with the store left to reopen at the block before. Both used
/// to be written, with a value rejected on every read or a count cut to 16 bits, and the store
/// then failed to reopen.
#[test]
fn writes_the_store_could_not_read_back_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Qmdb::open(dir.path(), Config::default()).unwrap();
    let too_long = store.commit_ops(0, vec![(KeyHash([0x22; 32]), Some(vec![0; (1 << 24) + 1]))]);
    assert!(
        matches!(&too_long, Err(StateError::Unsupported { reason }) if reason.contains("limit")),
        "{too_long:?}"
    );
    // Refused before any write: the store goes on at the same height.
    store.commit_ops(0, vec![(KeyHash([0x22; 32]), Some(vec![0; 1 << 24]))]).unwrap();

    // 70,000 keys of shard 1, the only ones there: deleting them all in one block makes the
    // shard's sentry's next entry deactivate every one.
    let mut rng = StdRng::seed_from_u64(41);
    let keys: Vec<KeyHash> = (0..70_000)
        .map(|_| {
            let mut key = random_key(&mut rng);
            key.0[0] = 0x10 | (key.0[0] & 0x0f);
            key
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    store.commit_ops(1, keys.iter().map(|key| (*key, Some(vec![1]))).collect()).unwrap();
    let root = store.state_root();
    let deleted = store.commit_ops(2, keys.iter().map(|key| (*key, None)).collect());
    assert!(
        matches!(&deleted, Err(StateError::Unsupported { reason }) if reason.contains("65535")),
        "{deleted:?}"
    );
    drop(store);
    let mut store = Qmdb::open(dir.path(), Config::default()).unwrap();
    assert_eq!((store.last_height(), store.state_root()), (Some(1), root));
    // In two blocks they fit.
    let (first, second) = keys.split_at(keys.len() / 2);
    store.commit_ops(2, first.iter().map(|key| (*key, None)).collect()).unwrap();
    store.commit_ops(3, second.iter().map(|key| (*key, None)).collect()).unwrap();
    drop(store);
    let store = Qmdb::open(dir.path(), Config::default()).unwrap();
    assert_eq!(store.last_height(), Some(3));
    assert_eq!(store.stats().live_keys, 1);
}

/// A creation stopped before its first metadata record (a crash, or a shard that failed to
/// open) left shard files that made every later open fail; it is now created again. A store
/// holding data whose record is gone is still refused.
#[test]
fn an_interrupted_creation_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    drop(Qmdb::open(dir.path(), Config::default()).unwrap());
    // What a creation leaves before writing its record: every shard with its sentry.
    std::fs::remove_file(dir.path().join("META")).unwrap();
    let mut store = Qmdb::open(dir.path(), Config::default()).unwrap();
    assert_eq!(store.last_height(), None);
    store.commit_ops(0, vec![(KeyHash([0x11; 32]), Some(vec![1]))]).unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join("META")).unwrap();
    let opened = Qmdb::open(dir.path(), Config::default());
    assert!(
        matches!(&opened, Err(StateError::CorruptDatabase { reason, .. }) if reason.contains("hold data")),
        "{opened:?}"
    );
}

fn flip_each_byte_fails(root: B256, key: &KeyHash, proof: &EntryProof) {
    let bytes = proof.to_bytes();
    for index in 0..bytes.len() {
        for bit in [0u8, 7] {
            let mut tampered = bytes.clone();
            tampered[index] ^= 1 << bit;
            let outcome = EntryProof::from_bytes(&tampered).and_then(|p| verify(root, key, &p));
            assert!(outcome.is_err(), "flipping bit {bit} of byte {index} still verified");
        }
    }
}

#[test]
fn proofs_verify_for_present_and_absent_keys_and_fail_when_tampered() {
    let dir = tempfile::tempdir().unwrap();
    // Enough entries for several twigs, so old (on-disk) twigs are proven too.
    let (model, _) = run(dir.path(), small_config(), 11, 6, 3000);
    let store = Qmdb::open(dir.path(), small_config()).unwrap();
    let root = store.state_root();
    let mut rng = StdRng::seed_from_u64(5);
    let keys: Vec<KeyHash> = model.keys().copied().collect();
    for round in 0..40 {
        let key = keys[rng.random_range(0..keys.len())];
        let proof = EntryProof::from_bytes(&store.prove(&key).unwrap().to_bytes()).unwrap();
        assert_eq!(verify(root, &key, &proof).unwrap().as_ref(), model.get(&key));
        let absent = random_key(&mut rng);
        let exclusion = store.prove(&absent).unwrap();
        assert_eq!(verify(root, &absent, &exclusion).unwrap(), None);
        // A proof for one key does not prove another.
        assert!(verify(root, &absent, &proof).is_err());
        // Nor does it hold against another root.
        assert!(verify(B256::repeat_byte(1), &key, &proof).is_err());
        if round < 3 {
            flip_each_byte_fails(root, &key, &proof);
            flip_each_byte_fails(root, &absent, &exclusion);
        }
    }
}

/// A shard whose last twig is exactly full when the store reopens still proves that twig's
/// entries (recovery keeps only a full twig's root, and proofs used to read its entry tree from
/// an empty youngest twig).
#[test]
fn proofs_verify_after_reopen_with_a_full_last_twig() {
    const TWIG_ENTRIES: u64 = 2048;
    // Shards other than shard 0 hold only their sentry: every key here has its top four bits
    // clear, so shard 0's entry count is the store's less 15.
    const OTHER_SENTRIES: u64 = 15;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Qmdb::open(dir.path(), Config::default()).unwrap();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(31);
    let shard_entries = |store: &Qmdb| store.stats().total_entries - OTHER_SENTRIES;
    let mut height = 0u64;
    while shard_entries(&store) < TWIG_ENTRIES {
        // An insertion appends at most two entries (the key, and its predecessor's new link),
        // an update one: insert at most half of what is left, and finish with an update to
        // land on the twig's last slot exactly.
        let left = TWIG_ENTRIES - shard_entries(&store);
        let keys: Vec<KeyHash> = match model.keys().next() {
            Some(existing) if left < 2 => vec![*existing],
            _ => (0..(left / 2).min(256))
                .map(|_| {
                    let mut key = random_key(&mut rng);
                    key.0[0] &= 0x0f;
                    key
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        let ops: Vec<_> =
            keys.into_iter().map(|key| (key, Some(height.to_le_bytes().to_vec()))).collect();
        apply_model(&mut model, &ops);
        store.commit_ops(height, ops).unwrap();
        height += 1;
    }
    assert_eq!(shard_entries(&store), TWIG_ENTRIES, "shard 0's last twig is exactly full");
    let prove_all = |store: &Qmdb| {
        for (key, value) in &model {
            let proof = store.prove(key).unwrap();
            assert_eq!(verify(store.state_root(), key, &proof).unwrap().as_ref(), Some(value));
        }
    };
    prove_all(&store);
    drop(store);
    let reopened = Qmdb::open(dir.path(), Config::default()).unwrap();
    prove_all(&reopened);
}

#[test]
fn compaction_and_pruning_keep_reads_and_reproduce_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Qmdb::open(dir.path(), small_config()).unwrap();
    let mut model = Model::new();
    // A small key set updated over and over: most entries become garbage.
    let mut rng = StdRng::seed_from_u64(21);
    let keys: Vec<KeyHash> = (0..2000).map(|_| random_key(&mut rng)).collect();
    for height in 0..120u64 {
        let ops: Vec<_> = keys
            .iter()
            .filter(|_| rng.random_bool(0.5))
            .map(|key| (*key, Some(height.to_le_bytes().repeat(4))))
            .collect();
        apply_model(&mut model, &ops);
        store.commit_ops(height, ops).unwrap();
    }
    let stats = store.stats();
    check_reads(&store, &model);
    // Compaction kept the log near its live size, and pruning deleted emptied segments.
    assert!(stats.total_entries > 10 * stats.live_keys, "{stats:?}");
    let first_segment = std::fs::read_dir(dir.path().join("shard-00"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .min()
        .unwrap();
    assert_ne!(first_segment, "seg-0000000000000000.log", "no segment was pruned");
    // Every entry here is 130 bytes (32-byte value, one deactivated serial).
    assert!(stats.disk_bytes * 2 < stats.total_entries * 130, "{stats:?}");
    // Proofs still verify after old segments are gone.
    for key in keys.iter().take(50) {
        let proof = store.prove(key).unwrap();
        assert_eq!(verify(store.state_root(), key, &proof).unwrap().as_ref(), model.get(key));
    }
    // Reopening after compaction and pruning reproduces the root and the reads.
    let root = store.state_root();
    drop(store);
    let reopened = Qmdb::open(dir.path(), small_config()).unwrap();
    assert_eq!(reopened.state_root(), root);
    check_reads(&reopened, &model);
}

#[test]
fn corrupted_files_give_typed_errors_on_open() {
    let build = || {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), small_config(), 4, 4, 400);
        dir
    };
    // Metadata: every single-byte change is caught.
    let dir = build();
    let meta = dir.path().join("META");
    let original = std::fs::read(&meta).unwrap();
    for index in (0..original.len()).step_by(7) {
        let mut bytes = original.clone();
        bytes[index] ^= 0x40;
        std::fs::write(&meta, &bytes).unwrap();
        let opened = Qmdb::open(dir.path(), small_config());
        assert!(
            matches!(opened, Err(StateError::CorruptDatabase { .. })),
            "byte {index}: {opened:?}"
        );
    }
    std::fs::write(&meta, &original[..original.len() / 2]).unwrap();
    assert!(matches!(
        Qmdb::open(dir.path(), small_config()),
        Err(StateError::CorruptDatabase { .. })
    ));
    std::fs::remove_file(&meta).unwrap();
    assert!(matches!(
        Qmdb::open(dir.path(), small_config()),
        Err(StateError::CorruptDatabase { .. })
    ));

    // Entry files: a flipped byte anywhere in a segment is caught.
    let dir = build();
    let shard = dir.path().join("shard-03");
    let mut segments: Vec<_> = std::fs::read_dir(&shard)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .collect();
    segments.sort();
    let segment = segments.last().unwrap().clone();
    let original = std::fs::read(&segment).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..40 {
        let index = rng.random_range(0..original.len());
        let mut bytes = original.clone();
        bytes[index] ^= 1 << rng.random_range(0..8);
        std::fs::write(&segment, &bytes).unwrap();
        let opened = Qmdb::open(dir.path(), small_config());
        assert!(
            matches!(opened, Err(StateError::CorruptDatabase { .. })),
            "byte {index}: {opened:?}"
        );
    }
    // A truncated segment is caught too.
    std::fs::write(&segment, &original[..original.len() - 10]).unwrap();
    assert!(matches!(
        Qmdb::open(dir.path(), small_config()),
        Err(StateError::CorruptDatabase { .. })
    ));
    std::fs::write(&segment, &original).unwrap();
    Qmdb::open(dir.path(), small_config()).unwrap();
}

/// Reads go on while other threads commit through a shared reference: a key the blocks leave
/// unchanged reads the same throughout, even as compaction moves its entry and segments are
/// pruned; a key they change reads a value it had at some height; and the roots equal those of
/// the same blocks committed one at a time. Each block writes over a hundred keys per shard, so
/// a shard's appends go in several chunks with readers let in between.
#[test]
fn reads_during_shared_commits_see_unchanged_keys_unchanged() {
    use alloy_primitives::{Address, U256};
    use zero_state::{Account, BlockChanges, SharedCommit, StateReader, KECCAK_EMPTY};

    let account =
        |balance: u64| Account { nonce: 0, balance: U256::from(balance), code_hash: KECCAK_EMPTY };
    let address = |index: u64| Address::left_padding_from(&index.to_be_bytes());
    let (stable, changing) = (0..400u64, 400..4400u64);
    let mut genesis = BlockChanges::new(0);
    genesis.accounts = (0..4400).map(|i| (address(i), Some(account(i)))).collect();
    let blocks: Vec<BlockChanges> = (1..=40u64)
        .map(|height| {
            let mut changes = BlockChanges::new(height);
            changes.accounts = changing
                .clone()
                .map(|i| {
                    let deleted = (i + height) % 7 == 0;
                    (address(i), (!deleted).then(|| account(i * 1000 + height)))
                })
                .collect();
            changes
        })
        .collect();

    let dirs = tempfile::tempdir().unwrap();
    let mut serial = Qmdb::open(dirs.path().join("serial"), small_config()).unwrap();
    serial.commit_block(&genesis).unwrap();
    let serial_roots: Vec<B256> = blocks.iter().map(|b| serial.commit_block(b).unwrap()).collect();

    let shared = Qmdb::open(dirs.path().join("shared"), small_config()).unwrap();
    shared.commit_block_shared(&genesis).unwrap();
    let (roots, reads) = std::thread::scope(|scope| {
        let committer = scope.spawn(|| {
            blocks.iter().map(|b| shared.commit_block_shared(b).unwrap()).collect::<Vec<_>>()
        });
        let mut reads = 0u64;
        while !committer.is_finished() {
            for i in stable.clone() {
                assert_eq!(shared.account(address(i)).unwrap(), Some(account(i)));
                reads += 1;
            }
            for i in changing.clone().step_by(7) {
                if let Some(read) = shared.account(address(i)).unwrap() {
                    let balance = read.balance.to::<u64>();
                    let height = balance % 1000;
                    assert!(
                        balance == i || (balance / 1000 == i && (1..=40).contains(&height)),
                        "key {i} read {balance}, a value it never had"
                    );
                }
            }
        }
        (committer.join().unwrap(), reads)
    });
    assert!(reads > 0);
    assert_eq!(roots, serial_roots);
    assert_eq!(shared.state_root(), serial.state_root());
    assert!(shared.stats().total_entries > 2 * 4400, "the blocks appended entries");
}
