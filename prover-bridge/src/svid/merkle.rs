//! The binary BLAKE3 Merkle tree of the fast profile.
//!
//! Leaves, inner nodes and the root are hashed in separate BLAKE3 `derive_key` domains, so a
//! leaf can never be passed off as a node. A tree over `n` leaves is padded to the next power of
//! two with all-zero hashes; each proof holds `ceil(log2 n)` sibling hashes, leaf level first.

use rayon::prelude::*;

/// A BLAKE3 digest.
pub type Hash = [u8; 32];

const LEAF_CONTEXT: &str = "zero-svid fast v1 leaf";
const NODE_CONTEXT: &str = "zero-svid fast v1 node";
/// Hash of padding positions past the last leaf.
const EMPTY: Hash = [0u8; 32];

/// Hash of one chunk's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new_derive_key(LEAF_CONTEXT);
    hasher.update(data);
    *hasher.finalize().as_bytes()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new_derive_key(NODE_CONTEXT);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
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
            let level: Vec<Hash> =
                below.par_chunks(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
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
