//! Random blocks and brute-force oracles shared by the property tests.

use proptest::collection::vec;
use proptest::prelude::*;
use zero_scheduler::{AccessSet, KeyPrefix, SenderId, Task};

/// A uniformly distributed key prefix for `index` (splitmix64), like a SHA-256 prefix.
pub fn key(index: u64) -> KeyPrefix {
    let mut state = index;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    };
    let mut key = [0u8; 10];
    key[..8].copy_from_slice(&next().to_le_bytes());
    key[8..].copy_from_slice(&next().to_le_bytes()[..2]);
    key
}

/// Sender keys live apart from state keys.
pub fn sender(index: u64) -> SenderId {
    SenderId(key(1 << 48 | index))
}

/// A task from pool indices.
pub fn task(senders: &[u64], reads: &[u64], writes: &[u64]) -> Task {
    let senders: Vec<SenderId> = senders.iter().map(|&index| sender(index)).collect();
    let access_set = AccessSet::new(
        reads.iter().map(|&index| key(index)),
        writes.iter().map(|&index| key(index)),
    );
    Task::new(&senders, access_set).expect("1 to 4 senders")
}

/// A random block: tasks over a pool of keys and senders; `None` or a coinbase key that some tasks
/// read (pool index 0).
#[derive(Clone, Debug)]
pub struct Block {
    pub tasks: Vec<Task>,
    pub coinbase: Option<KeyPrefix>,
}

/// Blocks of up to `max_tasks` tasks; pools are small (heavy contention) as often as large.
pub fn blocks(max_tasks: usize) -> impl Strategy<Value = Block> {
    let key_pool = prop_oneof![1u64..6, 6u64..40, 40u64..3000];
    let sender_pool = prop_oneof![1u64..4, 4u64..64, 64u64..100_000];
    (key_pool, sender_pool, any::<bool>()).prop_flat_map(move |(keys, senders, with_coinbase)| {
        let one_task = (vec(0..senders, 1..=4), vec(0..keys, 0..4), vec(0..keys, 0..3));
        vec(one_task, 0..=max_tasks).prop_map(move |specs| Block {
            tasks: specs
                .iter()
                .map(|(task_senders, reads, writes)| task(task_senders, reads, writes))
                .collect(),
            coinbase: with_coinbase.then(|| key(0)),
        })
    })
}

/// Brute force: the dependency each position must have — the latest earlier truly conflicting
/// task, or the previous position for a coinbase reader.
pub fn expected_dependencies(
    in_block_order: &[&Task],
    coinbase: Option<KeyPrefix>,
) -> Vec<Option<usize>> {
    (0..in_block_order.len())
        .map(|later| {
            let task = in_block_order[later];
            if coinbase.is_some_and(|coinbase| task.access_set().contains(&coinbase)) {
                return later.checked_sub(1);
            }
            (0..later).rev().find(|&earlier| in_block_order[earlier].conflicts_with(task))
        })
        .collect()
}

/// Brute force: the longest chain of true conflicts (and coinbase barriers), in transactions.
pub fn expected_conflict_critical_path(
    in_block_order: &[&Task],
    coinbase: Option<KeyPrefix>,
) -> u64 {
    let mut depths: Vec<u64> = Vec::with_capacity(in_block_order.len());
    for (later, task) in in_block_order.iter().enumerate() {
        let barrier = coinbase.is_some_and(|coinbase| task.access_set().contains(&coinbase));
        let before = (0..later)
            .filter(|&earlier| barrier || in_block_order[earlier].conflicts_with(task))
            .map(|earlier| depths[earlier])
            .max()
            .unwrap_or(0);
        depths.push(before + task.transaction_count() as u64);
    }
    depths.into_iter().max().unwrap_or(0)
}
