//! Node hashing of the QMDB Merkle trees: SHA-256 over a level byte and two children.
//!
//! Level bytes give every tree level its own domain, so a node can never be passed off as a node
//! of another level (or as a leaf):
//! - `1..=11`: a twig's entry tree (leaves are entry hashes, level 11 is its left root);
//! - `0x81..=0x83`: a twig's active-bits tree (leaves are 32-byte chunks of 256 bits);
//! - `12`: the twig root, `H(12 ‖ left root ‖ active root)`;
//! - `13..=12 + UPPER_DEPTH`: a shard's upper tree over twig roots;
//! - above that, the fixed tree over the 16 shard roots, whose top is the state root.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A 32-byte node or leaf hash.
pub type Hash = [u8; 32];

/// Entries per twig (2^11).
pub const TWIG_ENTRIES: u64 = 2048;
/// Height of a twig's entry tree.
pub const TWIG_DEPTH: usize = 11;
/// Leaves of a twig's active-bits tree (2048 bits / 256 bits per leaf).
pub const ACTIVE_LEAVES: usize = 8;
/// Height of a twig's active-bits tree.
pub const ACTIVE_DEPTH: usize = 3;
/// Height of a shard's upper tree: room for 2^24 twigs (2^35 entries) per shard.
pub const UPPER_DEPTH: usize = 24;
/// Height of the tree over the 16 shard roots.
pub const SHARD_TREE_DEPTH: usize = 4;

/// Level byte of a twig root.
pub const TWIG_ROOT_LEVEL: u8 = 12;
/// Level byte of the first active-bits level above its leaves.
const ACTIVE_LEVEL_BASE: u8 = 0x80;

/// `SHA-256(level ‖ left ‖ right)`.
#[inline]
pub fn hash_node(level: u8, left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([level]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// `SHA-256(bytes)`: the leaf hash of a serialized entry.
#[inline]
pub fn hash_leaf(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Level byte of level `level` (1-based) of the active-bits tree.
#[inline]
pub fn active_level(level: usize) -> u8 {
    ACTIVE_LEVEL_BASE + level as u8
}

/// Level byte of level `level` (1-based) of a shard's upper tree.
#[inline]
pub fn upper_level(level: usize) -> u8 {
    TWIG_ROOT_LEVEL + level as u8
}

/// Level byte of level `level` (1-based) of the tree over shard roots.
#[inline]
pub fn shard_tree_level(level: usize) -> u8 {
    TWIG_ROOT_LEVEL + UPPER_DEPTH as u8 + level as u8
}

/// The hash standing in for an entry slot that holds no entry yet.
pub fn null_leaf() -> Hash {
    hash_leaf(b"zero-qmdb null entry")
}

/// Precomputed roots of empty subtrees.
pub struct NullNodes {
    /// `twig[l]`: root of an entry subtree of height `l` with only null leaves.
    pub twig: [Hash; TWIG_DEPTH + 1],
    /// `upper[l]`: root of an upper subtree of height `l` over null twigs (`upper[0]` is the
    /// null twig root).
    pub upper: [Hash; UPPER_DEPTH + 1],
}

/// The null nodes, computed once.
pub fn null_nodes() -> &'static NullNodes {
    static NULLS: OnceLock<NullNodes> = OnceLock::new();
    NULLS.get_or_init(|| {
        let mut twig = [[0u8; 32]; TWIG_DEPTH + 1];
        twig[0] = null_leaf();
        for level in 1..=TWIG_DEPTH {
            twig[level] = hash_node(level as u8, &twig[level - 1], &twig[level - 1]);
        }
        let empty_active_root = active_root(&[0u64; 32]);
        let mut upper = [[0u8; 32]; UPPER_DEPTH + 1];
        upper[0] = hash_node(TWIG_ROOT_LEVEL, &twig[TWIG_DEPTH], &empty_active_root);
        for level in 1..=UPPER_DEPTH {
            upper[level] = hash_node(upper_level(level), &upper[level - 1], &upper[level - 1]);
        }
        NullNodes { twig, upper }
    })
}

/// The 32-byte leaf `index` (0..8) of an active-bits array: 4 words, little-endian.
#[inline]
pub fn active_chunk(bits: &[u64; 32], index: usize) -> Hash {
    let mut chunk = [0u8; 32];
    for (word, out) in bits[index * 4..index * 4 + 4].iter().zip(chunk.chunks_exact_mut(8)) {
        out.copy_from_slice(&word.to_le_bytes());
    }
    chunk
}

/// Root of a twig's active-bits tree.
pub fn active_root(bits: &[u64; 32]) -> Hash {
    let mut level: Vec<Hash> = (0..ACTIVE_LEAVES).map(|i| active_chunk(bits, i)).collect();
    for height in 1..=ACTIVE_DEPTH {
        level = level
            .chunks_exact(2)
            .map(|pair| hash_node(active_level(height), &pair[0], &pair[1]))
            .collect();
    }
    level[0]
}
