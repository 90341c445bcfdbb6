//! The binary BLAKE3 Merkle tree of the fast profile.
//!
//! Leaves, inner nodes and the root are hashed in separate BLAKE3 `derive_key` domains, so a
//! leaf can never be passed off as a node. A tree over `n` leaves is padded to the next power of
//! two with all-zero hashes; each proof holds `ceil(log2 n)` sibling hashes, leaf level first.
//!
//! A leaf hash can also be computed piece by piece ([`leaf_piece`], [`leaf_from_pieces`]), so
//! that the encoder hashes each stripe of a shard while the stripe is in cache. BLAKE3 is itself
//! a tree over 1 KiB chunks: a piece that starts at a multiple of its own length, a power-of-two
//! number of chunks, is one of its subtrees (as is the shard's last, shorter piece), and merging
//! the pieces' chaining values as the tree does gives the same hash as one pass over the shard.
//!
//! Many inputs of one length (the shards of a small block, the nodes of a tree level) are
//! hashed sixteen at a time, one per SIMD lane, where the CPU allows
//! ([`leaf_hashes_on_this_thread`], [`leaf_pieces`]).

#[cfg(target_arch = "x86_64")]
mod lanes;

use blake3::hazmat::{self, ChainingValue, ContextKey, HasherExt, Mode};
use rayon::prelude::*;
use std::sync::OnceLock;

/// A BLAKE3 digest.
pub type Hash = [u8; 32];

const LEAF_CONTEXT: &str = "zero-svid fast v1 leaf";
const NODE_CONTEXT: &str = "zero-svid fast v1 node";
/// Hash of padding positions past the last leaf.
const EMPTY: Hash = [0u8; 32];

/// Shards at least this long are hashed on all threads of the current rayon pool.
const PARALLEL_LEAF_BYTES: usize = 256 << 10;
/// BLAKE3's chunk.
const CHUNK_LEN: u64 = 1024;
/// Tree levels with more nodes than this are hashed on all threads of the current rayon pool.
const PARALLEL_NODES: usize = 1024;

/// Hash of one chunk's data; long chunks are hashed on all threads of the current rayon pool.
pub fn leaf_hash(data: &[u8]) -> Hash {
    if data.len() < PARALLEL_LEAF_BYTES {
        return leaf_hash_on_this_thread(data);
    }
    let mut hasher = blake3::Hasher::new_from_context_key(leaf_key());
    hasher.update_rayon(data);
    *hasher.finalize().as_bytes()
}

/// [`leaf_hash`] without rayon, for callers that must not yield to other tasks.
pub fn leaf_hash_on_this_thread(data: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new_from_context_key(leaf_key());
    hasher.update(data);
    *hasher.finalize().as_bytes()
}

/// Where inputs sit in their BLAKE3 trees.
#[derive(Clone, Copy, Debug)]
enum Position {
    /// Whole inputs: their hashes.
    Root,
    /// Pieces from chunk `chunk` of longer inputs: their subtrees' chaining values.
    Subtree { chunk: u64 },
}

/// [`leaf_hash_on_this_thread`] of each shard, all of one length, into `out`; many shorter than
/// 16 KiB hash faster together, sixteen at a time, than one by one.
pub fn leaf_hashes_on_this_thread(shards: &[&[u8]], out: &mut [Hash]) {
    hash_many(leaf_key(), shards, Position::Root, out);
}

/// [`leaf_piece`] of each piece, all of one length and at the same `offset`, into `out`.
pub fn leaf_pieces(pieces: &[&[u8]], offset: u64, out: &mut [ChainingValue]) {
    hash_many(leaf_key(), pieces, Position::Subtree { chunk: offset / CHUNK_LEN }, out);
}

/// Tests turn lane hashing off to cover the path CPUs without it take. Both paths give the same
/// bytes, so other tests running meanwhile are unaffected.
#[cfg(test)]
pub(crate) static LANES_OFF: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether this CPU hashes inputs sixteen at a time.
pub fn hashes_in_lanes() -> bool {
    #[cfg(test)]
    if LANES_OFF.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    return lanes::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// BLAKE3 in derive-key-material mode under `key` of each input, all of one length and at one
/// `position`, into `out`.
fn hash_many(key: &ContextKey, inputs: &[&[u8]], position: Position, out: &mut [Hash]) {
    assert_eq!(inputs.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    let done = if hashes_in_lanes() { lanes::hash_groups(key, inputs, position, out) } else { 0 };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (input, out) in inputs[done..].iter().zip(&mut out[done..]) {
        let mut hasher = blake3::Hasher::new_from_context_key(key);
        *out = match position {
            Position::Root => *hasher.update(input).finalize().as_bytes(),
            Position::Subtree { chunk } => {
                hasher.set_input_offset(chunk * CHUNK_LEN).update(input).finalize_non_root()
            }
        };
    }
}

/// The leaf domain's BLAKE3 key, derived once.
fn leaf_key() -> &'static ContextKey {
    static KEY: OnceLock<ContextKey> = OnceLock::new();
    KEY.get_or_init(|| hazmat::hash_derive_key_context(LEAF_CONTEXT))
}

/// The node domain's BLAKE3 key, derived once.
fn node_key() -> &'static ContextKey {
    static KEY: OnceLock<ContextKey> = OnceLock::new();
    KEY.get_or_init(|| hazmat::hash_derive_key_context(NODE_CONTEXT))
}

/// The chaining value of `piece`, the bytes of a shard from `offset` on. `offset` must be a
/// multiple of `piece.len()`, a power-of-two multiple of 1 KiB, except for the shard's last
/// piece, which may be shorter; a shard that is one piece is hashed with [`leaf_hash`].
pub fn leaf_piece(piece: &[u8], offset: u64) -> ChainingValue {
    blake3::Hasher::new_from_context_key(leaf_key())
        .set_input_offset(offset)
        .update(piece)
        .finalize_non_root()
}

/// The leaf hash of a shard of `len` bytes from the chaining values of its pieces, `piece_len`
/// bytes each (a power-of-two multiple of 1 KiB) but the last, in order: at least two of them.
pub fn leaf_from_pieces(pieces: &[ChainingValue], piece_len: u64, len: u64) -> Hash {
    debug_assert!(pieces.len() >= 2 && pieces.len() as u64 == len.div_ceil(piece_len));
    let mode = Mode::DeriveKeyMaterial(leaf_key());
    let (left, right) = split_pieces(pieces, piece_len, len);
    *hazmat::merge_subtrees_root(&left, &right, mode).as_bytes()
}

/// The chaining values of the two halves of the BLAKE3 subtree that `pieces` cover.
fn split_pieces(
    pieces: &[ChainingValue],
    piece_len: u64,
    len: u64,
) -> (ChainingValue, ChainingValue) {
    // BLAKE3's left subtree is the largest power-of-two number of chunks short of the whole;
    // with more than one piece that is a whole number of pieces.
    let left_len = hazmat::left_subtree_len(len);
    let left_count = (left_len / piece_len) as usize;
    let (left, right) = pieces.split_at(left_count);
    (subtree(left, piece_len, left_len), subtree(right, piece_len, len - left_len))
}

fn subtree(pieces: &[ChainingValue], piece_len: u64, len: u64) -> ChainingValue {
    if let [piece] = pieces {
        return *piece;
    }
    let (left, right) = split_pieces(pieces, piece_len, len);
    hazmat::merge_subtrees_non_root(&left, &right, Mode::DeriveKeyMaterial(leaf_key()))
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new_from_context_key(node_key());
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

/// The parents of `below`, an even number of nodes: each pair is one 64-byte input.
fn node_hashes(below: &[Hash]) -> Vec<Hash> {
    let pairs: Vec<&[u8]> = below.as_flattened().chunks_exact(64).collect();
    let mut level = vec![EMPTY; pairs.len()];
    hash_many(node_key(), &pairs, Position::Root, &mut level);
    level
}

/// Depth of the tree over `leaves` leaves: the length of every proof.
pub fn depth(leaves: usize) -> usize {
    leaves.next_power_of_two().trailing_zeros() as usize
}

/// All levels of the tree, leaves first, root last.
#[derive(Debug)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over leaf hashes (at least one).
    pub fn new(mut leaves: Vec<Hash>) -> Self {
        leaves.resize(leaves.len().next_power_of_two(), EMPTY);
        let mut levels = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let level: Vec<Hash> = if below.len() > PARALLEL_NODES {
                below.par_chunks(PARALLEL_NODES).flat_map_iter(node_hashes).collect()
            } else {
                node_hashes(below)
            };
            levels.push(level);
        }
        Self { levels }
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.levels.last().and_then(|level| level.first()).copied().unwrap_or(EMPTY)
    }

    /// Sibling hashes from leaf `index` up to the root.
    pub fn proof(&self, index: usize) -> Vec<Hash> {
        let mut position = index;
        let mut proof = Vec::with_capacity(self.levels.len().saturating_sub(1));
        for level in &self.levels[..self.levels.len() - 1] {
            proof.push(level[position ^ 1]);
            position >>= 1;
        }
        proof
    }
}

/// The root implied by a leaf hash at `index` and its proof.
pub fn root_from_proof(leaf: Hash, index: usize, proof: &[Hash]) -> Hash {
    let mut hash = leaf;
    let mut position = index;
    for sibling in proof {
        hash =
            if position & 1 == 0 { node_hash(&hash, sibling) } else { node_hash(sibling, &hash) };
        position >>= 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_is_blake3_derive_key() {
        for len in [0usize, 1, 1024, PARALLEL_LEAF_BYTES - 1, PARALLEL_LEAF_BYTES + 4097] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(leaf_hash(&data), blake3::derive_key(LEAF_CONTEXT, &data), "{len}");
        }
    }

    /// Pieces of 1, 2 and 8 KiB, shards that are a whole number of pieces and shards whose
    /// last piece is short (down to one 64-byte block), powers of two and not.
    #[test]
    fn pieces_merge_to_the_leaf_hash() {
        for piece_len in [1024usize, 2048, 8192] {
            for len in [
                piece_len + 64,
                2 * piece_len,
                3 * piece_len,
                3 * piece_len + 960,
                5 * piece_len + 64,
                8 * piece_len,
                13 * piece_len + 512,
            ] {
                let shard: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
                let pieces: Vec<ChainingValue> = shard
                    .chunks(piece_len)
                    .enumerate()
                    .map(|(index, piece)| leaf_piece(piece, (index * piece_len) as u64))
                    .collect();
                assert_eq!(
                    leaf_from_pieces(&pieces, piece_len as u64, len as u64),
                    leaf_hash(&shard),
                    "pieces of {piece_len}, shard of {len}"
                );
            }
        }
    }

    /// Groups of sixteen and the rest, lengths of whole blocks (hashed on lanes where the CPU
    /// has them) and not.
    #[test]
    fn many_hashes_equal_one_by_one() {
        for (count, len) in [(1usize, 64usize), (16, 64), (40, 8192), (33, 1088), (17, 100)] {
            let shards: Vec<Vec<u8>> = (0..count)
                .map(|shard| (0..len).map(|i| (i * 13 + shard * 101) as u8).collect())
                .collect();
            let inputs: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
            let mut out = vec![EMPTY; count];
            leaf_hashes_on_this_thread(&inputs, &mut out);
            for (shard, hash) in shards.iter().zip(&out) {
                assert_eq!(*hash, leaf_hash(shard), "{count} shards of {len}");
            }
            if len.is_multiple_of(64) {
                let offset = 4 * (len as u64).div_ceil(CHUNK_LEN).next_power_of_two() * CHUNK_LEN;
                leaf_pieces(&inputs, offset, &mut out);
                for (shard, cv) in shards.iter().zip(&out) {
                    assert_eq!(*cv, leaf_piece(shard, offset), "{count} pieces of {len}");
                }
            }
        }
    }

    /// Levels hashed in lanes and in parallel batches give the tree of pairwise node hashes.
    #[test]
    fn trees_are_pairwise_node_hashes() {
        for leaves in [2usize, 31, 32, 300, 3000] {
            let hashes: Vec<Hash> = (0..leaves).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let mut level = hashes.clone();
            level.resize(leaves.next_power_of_two(), EMPTY);
            while level.len() > 1 {
                level = level.chunks(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
            }
            assert_eq!(MerkleTree::new(hashes).root(), level[0], "{leaves} leaves");
        }
    }

    #[test]
    fn every_proof_opens_the_root() {
        for leaves in [1usize, 2, 3, 5, 8, 13] {
            let hashes: Vec<Hash> = (0..leaves).map(|i| leaf_hash(&[i as u8])).collect();
            let tree = MerkleTree::new(hashes.clone());
            for (index, leaf) in hashes.iter().enumerate() {
                let proof = tree.proof(index);
                assert_eq!(proof.len(), depth(leaves));
                assert_eq!(root_from_proof(*leaf, index, &proof), tree.root());
                if leaves > 1 {
                    assert_ne!(root_from_proof(*leaf, index ^ 1, &proof), tree.root());
                }
            }
        }
    }
}
