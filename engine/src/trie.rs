//! Merkle-Patricia roots of ordered lists — a block's transactions and receipts — built in
//! parallel.
//!
//! The trie maps `rlp(index)` to the item's encoding. RLP encodings of integers are prefix-free,
//! so no key is a prefix of another and no branch node carries a value. Where each leaf sits
//! depends only on the number of items, so leaf nodes — most of the hashing — can be hashed
//! ahead, in any order and on any thread ([`OrderedTrie::hash_leaves`], or
//! [`OrderedTrie::hash_ready`] while the list is still filling in order); the rest are hashed
//! when the root is asked for, each large subtree on its own rayon task. The result equals
//! `alloy_trie`'s `ordered_trie_root_with_encoder` (tested below), which builds the same trie on
//! one thread; inside a one-thread pool this one does too.

use alloy_primitives::{keccak256, B256};
use alloy_trie::EMPTY_ROOT_HASH;
use rayon::prelude::*;
use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    OnceLock,
};

/// Subtrees with fewer leaves than this are built on the current thread: below it a rayon task
/// costs more than it saves.
const PARALLEL_LEAVES: usize = 256;

/// A leaf's key as nibbles: `rlp(index)` is at most 5 bytes for an index below 2^32.
#[derive(Clone, Copy)]
struct Leaf {
    nibbles: [u8; 10],
    len: u8,
    index: usize,
}

impl Leaf {
    fn new(index: usize) -> Self {
        let mut key = Vec::with_capacity(5);
        alloy_rlp::Encodable::encode(&index, &mut key);
        let mut nibbles = [0u8; 10];
        for (position, byte) in key.iter().enumerate() {
            nibbles[2 * position] = byte >> 4;
            nibbles[2 * position + 1] = byte & 0x0f;
        }
        Self { nibbles, len: (2 * key.len()) as u8, index }
    }

    #[inline]
    fn path(&self) -> &[u8] {
        &self.nibbles[..self.len as usize]
    }
}

/// The root of the trie of `items` keyed by `rlp(index)`, each value written by `encode`.
pub fn ordered_trie_root<T: Sync>(items: &[T], encode: impl Fn(&T, &mut Vec<u8>) + Sync) -> B256 {
    OrderedTrie::new(items, encode).root()
}

/// Leaves per unit of leaf hashing: large enough that claiming one costs nothing next to
/// hashing it, small enough that a thread stopping early finishes its unit quickly. A unit
/// stopped half-way is hashed again whole by [`OrderedTrie::root`]: with 64 leaves, workers
/// interrupted by new tasks wasted 1.5% of ERC20's CPU that way.
const CHUNK: usize = 16;

/// A child as its parent holds it: the node itself when its RLP is shorter than a hash, else
/// `0xa0 ‖ keccak(node)`.
#[derive(Clone, Copy)]
struct NodeRef {
    bytes: [u8; 33],
    len: u8,
}

impl NodeRef {
    fn of(node: &[u8]) -> Self {
        let mut bytes = [0u8; 33];
        if node.len() < 32 {
            bytes[..node.len()].copy_from_slice(node);
            Self { bytes, len: node.len() as u8 }
        } else {
            bytes[0] = EMPTY_STRING + 32;
            bytes[1..].copy_from_slice(keccak256(node).as_slice());
            Self { bytes, len: 33 }
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The trie of an ordered list, whose leaves can be hashed ahead of the root.
///
/// Where a leaf sits depends only on how many items there are, so every leaf node (most of the
/// hashing: each holds a whole transaction or receipt) can be hashed as soon as its item is
/// known, in any order, on any thread: [`Self::hash_leaves`] does so in chunks, for a thread
/// that would otherwise idle, and [`Self::root`] hashes whatever chunks are left, in parallel,
/// then the branches above them.
pub struct OrderedTrie<'a, T, F> {
    items: &'a [T],
    encode: F,
    /// Every leaf, sorted by path.
    leaves: Vec<Leaf>,
    /// Nibbles of each item's path above its leaf node, by item index.
    depths: Vec<u8>,
    /// Leaf references by item index, [`CHUNK`] per cell, set by whichever thread finishes
    /// first.
    chunks: Vec<OnceLock<Vec<NodeRef>>>,
    /// The next chunk [`Self::hash_ready`] hands out.
    next_ready: AtomicUsize,
}

impl<'a, T: Sync, F: Fn(&T, &mut Vec<u8>) + Sync> OrderedTrie<'a, T, F> {
    /// The trie of `items`, each value written by `encode`; nothing is hashed yet.
    pub fn new(items: &'a [T], encode: F) -> Self {
        let u32_max = u32::MAX as usize;
        assert!(items.len() <= u32_max, "an ordered trie holds at most 2^32 items");
        let mut leaves: Vec<Leaf> = (0..items.len()).map(Leaf::new).collect();
        leaves.sort_unstable_by(|a, b| a.path().cmp(b.path()));
        // A leaf hangs below the deepest branch on its path: the one at the longest prefix it
        // shares with a neighbour in path order (keys are prefix-free, so it has a next nibble).
        let mut depths = vec![0u8; items.len()];
        if leaves.len() > 1 {
            let shared = |a: &Leaf, b: &Leaf| {
                a.path().iter().zip(b.path()).take_while(|(x, y)| x == y).count()
            };
            for (position, leaf) in leaves.iter().enumerate() {
                let before = position.checked_sub(1).map_or(0, |p| shared(&leaves[p], leaf));
                let after = leaves.get(position + 1).map_or(0, |next| shared(leaf, next));
                depths[leaf.index] = (before.max(after) + 1) as u8;
            }
        }
        let chunks = (0..items.len().div_ceil(CHUNK)).map(|_| OnceLock::new()).collect();
        Self { items, encode, leaves, depths, chunks, next_ready: AtomicUsize::new(0) }
    }

    /// Hashes leaf nodes chunk by chunk, in item order, until every chunk is done or `stop` is
    /// set; the root then reuses them. `stop` is checked before every leaf, so a thread at the
    /// lowest priority, once stopped, has at most one leaf left to finish.
    pub fn hash_leaves(&self, stop: &AtomicBool) {
        for chunk in 0..self.chunks.len() {
            if !self.chunk(chunk, &|| stop.load(Ordering::Relaxed)) {
                return;
            }
        }
    }

    /// Hashes the leaves of one chunk whose items all lie below `ready` (the items from
    /// `ready` on may not exist yet), unless every such chunk has been handed out; returns
    /// whether it took one. `stop` is asked before every leaf: once it says yes, the chunk is
    /// left for [`Self::root`]. For a list filled in order while threads with nothing else to
    /// do hash what is there.
    pub fn hash_ready(&self, ready: usize, stop: &impl Fn() -> bool) -> bool {
        let mut chunk = self.next_ready.load(Ordering::Relaxed);
        loop {
            if chunk >= self.chunks.len() || self.chunk_items(chunk).end > ready {
                return false;
            }
            match self.next_ready.compare_exchange_weak(
                chunk,
                chunk + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.chunk(chunk, stop);
                    return true;
                }
                Err(current) => chunk = current,
            }
        }
    }

    /// The root. Leaves not hashed yet are hashed here, in parallel when there are many.
    pub fn root(&self) -> B256 {
        match self.items.len() {
            0 => return EMPTY_ROOT_HASH,
            // The root is hashed whatever its length, and is then the whole trie.
            1 => {
                let mut node = Vec::new();
                self.leaf_node(0, &mut node);
                return keccak256(&node);
            }
            count if count >= PARALLEL_LEAVES => {
                (0..self.chunks.len()).into_par_iter().for_each(|chunk| {
                    self.chunk(chunk, &|| false);
                });
            }
            _ => self.hash_leaves(&AtomicBool::new(false)),
        }
        let mut root = Vec::new();
        self.node(&self.leaves, 0, &mut root);
        keccak256(&root)
    }

    /// Hashes the leaves of chunk `chunk` unless they are already there; returns `false` if
    /// `stop` said so first (it is asked before every leaf). It never waits for a chunk
    /// another thread is hashing: it hashes that one too, and the first result stays.
    fn chunk(&self, chunk: usize, stop: &impl Fn() -> bool) -> bool {
        if self.chunks[chunk].get().is_some() {
            return true;
        }
        let mut node = Vec::new();
        let mut refs = Vec::with_capacity(CHUNK);
        for index in self.chunk_items(chunk) {
            if stop() {
                return false;
            }
            refs.push(self.leaf_ref(index, &mut node));
        }
        let _ = self.chunks[chunk].set(refs);
        true
    }

    fn chunk_items(&self, chunk: usize) -> std::ops::Range<usize> {
        chunk * CHUNK..self.items.len().min((chunk + 1) * CHUNK)
    }

    /// The reference of the leaf node of the item at `index`; `node` is scratch space.
    fn leaf_ref(&self, index: usize, node: &mut Vec<u8>) -> NodeRef {
        node.clear();
        self.leaf_node(index, node);
        NodeRef::of(node)
    }

    /// Writes the RLP of the leaf node of the item at `index`.
    fn leaf_node(&self, index: usize, out: &mut Vec<u8>) {
        let leaf = Leaf::new(index);
        let mut value = Vec::new();
        (self.encode)(&self.items[index], &mut value);
        let mut payload = Vec::with_capacity(value.len() + 16);
        encode_string(
            &hex_prefix(&leaf.path()[usize::from(self.depths[index])..], true),
            &mut payload,
        );
        encode_string(&value, &mut payload);
        encode_list(&payload, out);
    }

    /// Writes the RLP of the node holding `leaves` (sorted, at least two, sharing their first
    /// `depth` nibbles).
    fn node(&self, leaves: &[Leaf], depth: usize, out: &mut Vec<u8>) {
        let first = leaves[0].path();
        let last = leaves[leaves.len() - 1].path();
        let shared = first[depth..].iter().zip(&last[depth..]).take_while(|(a, b)| a == b).count();
        if shared > 0 {
            let mut branch = Vec::new();
            self.branch(leaves, depth + shared, &mut branch);
            let mut payload = Vec::with_capacity(40);
            encode_string(&hex_prefix(&first[depth..depth + shared], false), &mut payload);
            payload.extend_from_slice(NodeRef::of(&branch).as_slice());
            encode_list(&payload, out);
        } else {
            self.branch(leaves, depth, out);
        }
    }

    /// Writes the RLP of the branch node splitting `leaves` on nibble `depth`.
    fn branch(&self, leaves: &[Leaf], depth: usize, out: &mut Vec<u8>) {
        let mut groups: Vec<(u8, &[Leaf])> = Vec::with_capacity(16);
        let mut start = 0;
        while start < leaves.len() {
            let nibble = leaves[start].path()[depth];
            let end = start + leaves[start..].partition_point(|leaf| leaf.path()[depth] == nibble);
            groups.push((nibble, &leaves[start..end]));
            start = end;
        }
        let child = |leaves: &[Leaf]| match leaves {
            [leaf] => {
                debug_assert_eq!(usize::from(self.depths[leaf.index]), depth + 1);
                self.chunks[leaf.index / CHUNK].get().expect("leaf hashed before its branches")
                    [leaf.index % CHUNK]
            }
            _ => {
                let mut node = Vec::new();
                self.node(leaves, depth + 1, &mut node);
                NodeRef::of(&node)
            }
        };
        let children: Vec<NodeRef> = if leaves.len() >= PARALLEL_LEAVES {
            groups.par_iter().map(|(_, group)| child(group)).collect()
        } else {
            groups.iter().map(|(_, group)| child(group)).collect()
        };
        let mut payload = Vec::with_capacity(17 + 33 * groups.len());
        let mut next = groups.iter().zip(&children).peekable();
        for nibble in 0..16u8 {
            match next.peek() {
                Some(((at, _), child)) if *at == nibble => {
                    payload.extend_from_slice(child.as_slice());
                    next.next();
                }
                _ => payload.push(EMPTY_STRING),
            }
        }
        // No key ends at a branch (keys are prefix-free): the value slot is empty.
        payload.push(EMPTY_STRING);
        encode_list(&payload, out);
    }
}

const EMPTY_STRING: u8 = 0x80;

/// The compact (hex-prefix) encoding of a path, flagged as a leaf's or an extension's.
fn hex_prefix(nibbles: &[u8], leaf: bool) -> Vec<u8> {
    let flag = if leaf { 0x20 } else { 0x00 };
    let mut out = Vec::with_capacity(nibbles.len() / 2 + 1);
    let rest = if nibbles.len() % 2 == 1 {
        out.push(flag | 0x10 | nibbles[0]);
        &nibbles[1..]
    } else {
        out.push(flag);
        nibbles
    };
    out.extend(rest.chunks_exact(2).map(|pair| (pair[0] << 4) | pair[1]));
    out
}

fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    if let [byte] = bytes {
        if *byte < EMPTY_STRING {
            out.push(*byte);
            return;
        }
    }
    encode_header(bytes.len(), 0x80, out);
    out.extend_from_slice(bytes);
}

fn encode_list(payload: &[u8], out: &mut Vec<u8>) {
    encode_header(payload.len(), 0xc0, out);
    out.extend_from_slice(payload);
}

fn encode_header(len: usize, offset: u8, out: &mut Vec<u8>) {
    if len < 56 {
        out.push(offset + len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|byte| **byte == 0).count();
        out.push(offset + 55 + (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::proofs::ordered_trie_root_with_encoder;
    use rand::{Rng, SeedableRng};

    fn items(count: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                // Short values give embedded (< 32 byte) nodes, long ones hashed nodes.
                let len = match rng.random_range(0..4) {
                    0 => rng.random_range(0..4),
                    1 => rng.random_range(4..40),
                    2 => rng.random_range(40..120),
                    _ => rng.random_range(120..700),
                };
                (0..len).map(|_| rng.random()).collect()
            })
            .collect()
    }

    fn expected(items: &[Vec<u8>]) -> B256 {
        ordered_trie_root_with_encoder(items, |item, out| out.extend_from_slice(item))
    }

    #[test]
    fn equals_the_serial_builder_for_every_small_size() {
        for count in 0..=300 {
            let items = items(count, count as u64);
            let root = ordered_trie_root(&items, |item, out| out.extend_from_slice(item));
            assert_eq!(root, expected(&items), "{count} items");
        }
    }

    #[test]
    fn equals_the_serial_builder_for_large_lists() {
        for count in [1_000, 4_097, 20_000, 70_000] {
            let items = items(count, 7);
            let root = ordered_trie_root(&items, |item, out| out.extend_from_slice(item));
            assert_eq!(root, expected(&items), "{count} items");
        }
    }

    /// Leaves hashed ahead — some, all, or by another thread while the root is taken — give
    /// the same root.
    #[test]
    fn leaves_hashed_ahead_give_the_same_root() {
        for count in [1, 2, 17, 64, 65, 300, 5_000] {
            let items = items(count, 11);
            let encode = |item: &Vec<u8>, out: &mut Vec<u8>| out.extend_from_slice(item);
            let want = expected(&items);

            let all = OrderedTrie::new(&items, encode);
            all.hash_leaves(&AtomicBool::new(false));
            assert_eq!(all.root(), want, "{count} items, all leaves ahead");

            let stopped = OrderedTrie::new(&items, encode);
            stopped.hash_leaves(&AtomicBool::new(true));
            assert_eq!(stopped.root(), want, "{count} items, none ahead");

            let racing = OrderedTrie::new(&items, encode);
            let stop = AtomicBool::new(false);
            let root = std::thread::scope(|scope| {
                scope.spawn(|| racing.hash_leaves(&stop));
                let root = racing.root();
                stop.store(true, Ordering::Relaxed);
                root
            });
            assert_eq!(root, want, "{count} items, hashed while the root is taken");
        }
    }

    /// Chunks hashed as the list fills in order — by another thread, or stopped half-way —
    /// give the same root, and no item at or past the ready mark is ever read.
    #[test]
    fn leaves_hashed_as_items_arrive_give_the_same_root() {
        for count in [1, 63, 64, 65, 300, 5_000] {
            let values = items(count, 13);
            let want = expected(&values);
            let indexed: Vec<(usize, Vec<u8>)> = values.into_iter().enumerate().collect();
            let ready = AtomicUsize::new(0);
            let encode = |item: &(usize, Vec<u8>), out: &mut Vec<u8>| {
                assert!(item.0 < ready.load(Ordering::SeqCst), "item {} read early", item.0);
                out.extend_from_slice(&item.1);
            };

            let taken = OrderedTrie::new(&indexed, encode);
            let mut chunks = 0;
            for mark in (0..count).step_by(37).chain([count]) {
                ready.store(mark, Ordering::SeqCst);
                while taken.hash_ready(mark, &|| false) {
                    chunks += 1;
                }
            }
            assert_eq!(chunks, count.div_ceil(CHUNK), "{count} items: each chunk handed out once");
            assert_eq!(taken.root(), want, "{count} items, every chunk ahead");

            let stopped = OrderedTrie::new(&indexed, encode);
            assert!(stopped.hash_ready(count, &|| true) || count == 0);
            assert_eq!(stopped.root(), want, "{count} items, a chunk stopped at once");

            ready.store(0, Ordering::SeqCst);
            let racing = OrderedTrie::new(&indexed, encode);
            std::thread::scope(|scope| {
                scope.spawn(|| loop {
                    let mark = ready.load(Ordering::SeqCst);
                    racing.hash_ready(mark, &|| false);
                    if mark == count {
                        break;
                    }
                });
                for mark in 1..=count {
                    ready.store(mark, Ordering::SeqCst);
                }
            });
            assert_eq!(racing.root(), want, "{count} items, hashed by a thread as they arrive");
        }
    }

    #[test]
    fn single_byte_and_empty_values() {
        for value in [vec![], vec![0x00], vec![0x7f], vec![0x80], vec![0xff]] {
            let items = vec![value.clone(); 20];
            let root = ordered_trie_root(&items, |item, out| out.extend_from_slice(item));
            assert_eq!(root, expected(&items), "value {value:?}");
        }
    }
}
