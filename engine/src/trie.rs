//! Merkle-Patricia roots of ordered lists — a block's transactions and receipts — built in
//! parallel.
//!
//! The trie maps `rlp(index)` to the item's encoding. RLP encodings of integers are prefix-free,
//! so no key is a prefix of another and no branch node carries a value; each subtree under a
//! branch is independent and is built on its own rayon task when it is large enough. The result
//! equals `alloy_trie`'s `ordered_trie_root_with_encoder` (tested below), which builds the same
//! trie on one thread; inside a one-thread pool this one does too.

use alloy_primitives::{keccak256, B256};
use alloy_trie::EMPTY_ROOT_HASH;
use rayon::prelude::*;

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
    if items.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    let u32_max = u32::MAX as usize;
    assert!(items.len() <= u32_max, "an ordered trie holds at most 2^32 items");
    let mut leaves: Vec<Leaf> = (0..items.len()).map(Leaf::new).collect();
    leaves.sort_unstable_by(|a, b| a.path().cmp(b.path()));
    let builder = Builder { items, encode: &encode };
    let mut root = Vec::new();
    builder.node(&leaves, 0, &mut root);
    keccak256(&root)
}

struct Builder<'a, T, F> {
    items: &'a [T],
    encode: &'a F,
}

impl<T: Sync, F: Fn(&T, &mut Vec<u8>) + Sync> Builder<'_, T, F> {
    /// Writes the RLP of the node holding `leaves` (sorted, sharing their first `depth` nibbles).
    fn node(&self, leaves: &[Leaf], depth: usize, out: &mut Vec<u8>) {
        if let [leaf] = leaves {
            let mut value = Vec::new();
            (self.encode)(&self.items[leaf.index], &mut value);
            let mut payload = Vec::with_capacity(value.len() + 16);
            encode_string(&hex_prefix(&leaf.path()[depth..], true), &mut payload);
            encode_string(&value, &mut payload);
            encode_list(&payload, out);
            return;
        }
        let first = leaves[0].path();
        let last = leaves[leaves.len() - 1].path();
        let shared = first[depth..].iter().zip(&last[depth..]).take_while(|(a, b)| a == b).count();
        if shared > 0 {
            let mut branch = Vec::new();
            self.branch(leaves, depth + shared, &mut branch);
            let mut payload = Vec::with_capacity(40);
            encode_string(&hex_prefix(&first[depth..depth + shared], false), &mut payload);
            reference(&branch, &mut payload);
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
        let child = |leaves: &[Leaf]| {
            let mut node = Vec::new();
            self.node(leaves, depth + 1, &mut node);
            let mut child = Vec::with_capacity(33);
            reference(&node, &mut child);
            child
        };
        let children: Vec<Vec<u8>> = if leaves.len() >= PARALLEL_LEAVES {
            groups.par_iter().map(|(_, group)| child(group)).collect()
        } else {
            groups.iter().map(|(_, group)| child(group)).collect()
        };
        let mut payload = Vec::with_capacity(17 + 33 * groups.len());
        let mut next = groups.iter().zip(&children).peekable();
        for nibble in 0..16u8 {
            match next.peek() {
                Some(((at, _), child)) if *at == nibble => {
                    payload.extend_from_slice(child);
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

/// A child as its parent holds it: the node itself when its RLP is shorter than a hash, else
/// the hash of that RLP.
fn reference(node: &[u8], out: &mut Vec<u8>) {
    if node.len() < 32 {
        out.extend_from_slice(node);
    } else {
        out.push(EMPTY_STRING + 32);
        out.extend_from_slice(keccak256(node).as_slice());
    }
}

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

    #[test]
    fn single_byte_and_empty_values() {
        for value in [vec![], vec![0x00], vec![0x7f], vec![0x80], vec![0xff]] {
            let items = vec![value.clone(); 20];
            let root = ordered_trie_root(&items, |item, out| out.extend_from_slice(item));
            assert_eq!(root, expected(&items), "value {value:?}");
        }
    }
}
