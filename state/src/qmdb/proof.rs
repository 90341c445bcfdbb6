//! Inclusion and exclusion proofs against the state root, and their I/O-free verifier.
//!
//! A proof is one entry with the sibling hashes from its leaf to the state root:
//! - the entry tree of its twig (11 siblings), giving the twig's left root;
//! - the 32-byte active-bits chunk holding its bit (which must be set) and 3 siblings, giving the
//!   active root; the twig root is `H(12 ‖ left root ‖ active root)`;
//! - the shard's upper tree (24 siblings) and the tree over shard roots (4 siblings).
//!
//! The entry's serial number fixes every left/right choice and its key fixes the shard, so a
//! proof cannot be moved to another position. For a key that is present the entry is its own;
//! for an absent key it is the predecessor, whose `key < k < next` shows that nothing lies
//! between. [`verify`] uses no I/O, threads or clocks, so it can run inside a zkVM guest.

use super::{
    entry::Entry,
    hash::{
        active_level, hash_leaf, hash_node, shard_tree_level, upper_level, Hash, ACTIVE_DEPTH,
        SHARD_TREE_DEPTH, TWIG_DEPTH, TWIG_ENTRIES, TWIG_ROOT_LEVEL, UPPER_DEPTH,
    },
};
use crate::KeyHash;
use alloy_primitives::B256;

/// Version byte of the proof wire format.
pub const PROOF_FORMAT_VERSION: u8 = 1;

/// Sibling hashes in a proof.
const SIBLINGS: usize = TWIG_DEPTH + ACTIVE_DEPTH + UPPER_DEPTH + SHARD_TREE_DEPTH;

/// One entry and the path from it to the state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryProof {
    /// The entry's wire bytes.
    pub entry: Vec<u8>,
    /// Siblings in the twig's entry tree, leaf level first.
    pub left_path: Vec<Hash>,
    /// The 256 active bits around the entry's bit.
    pub active_chunk: Hash,
    /// Siblings in the active-bits tree, lowest first.
    pub active_path: Vec<Hash>,
    /// Siblings in the shard's upper tree, lowest first.
    pub upper_path: Vec<Hash>,
    /// Siblings in the tree over shard roots, lowest first.
    pub shard_path: Vec<Hash>,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof bytes or the entry inside do not decode.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The entry is not marked active: it is an old version.
    #[error("the proven entry is inactive (an outdated version)")]
    Inactive,
    /// The path does not lead to the given root.
    #[error("proof does not lead to state root {expected}; it gives {computed}")]
    RootMismatch {
        /// The trusted root.
        expected: B256,
        /// The root the proof computes.
        computed: B256,
    },
    /// The entry neither is the key nor brackets it.
    #[error("the proven entry neither holds key {0:?} nor shows it absent")]
    KeyNotCovered(KeyHash),
}

fn fold(mut node: Hash, mut index: u64, path: &[Hash], level: impl Fn(usize) -> u8) -> Hash {
    for (height, sibling) in path.iter().enumerate() {
        node = if index & 1 == 0 {
            hash_node(level(height + 1), &node, sibling)
        } else {
            hash_node(level(height + 1), sibling, &node)
        };
        index >>= 1;
    }
    node
}

/// Verifies `proof` for `key` against `root`: `Some(value)` if the key is present with that
/// value, `None` if the proof shows it absent.
pub fn verify(
    root: B256,
    key: &KeyHash,
    proof: &EntryProof,
) -> Result<Option<Vec<u8>>, ProofError> {
    if proof.left_path.len() != TWIG_DEPTH
        || proof.active_path.len() != ACTIVE_DEPTH
        || proof.upper_path.len() != UPPER_DEPTH
        || proof.shard_path.len() != SHARD_TREE_DEPTH
    {
        return Err(ProofError::Malformed("wrong number of sibling hashes".into()));
    }
    let (entry, len) =
        Entry::decode(&proof.entry).map_err(|e| ProofError::Malformed(e.to_string()))?;
    if len != proof.entry.len() {
        return Err(ProofError::Malformed("trailing bytes after the entry".into()));
    }
    let twig = entry.serial / TWIG_ENTRIES;
    if twig >= 1 << UPPER_DEPTH {
        return Err(ProofError::Malformed("serial number beyond the tree".into()));
    }
    let leaf = entry.serial % TWIG_ENTRIES;
    let bit = (leaf % 256) as usize;
    if proof.active_chunk[bit / 8] >> (bit % 8) & 1 == 0 {
        return Err(ProofError::Inactive);
    }
    let left_root = fold(hash_leaf(&proof.entry), leaf, &proof.left_path, |h| h as u8);
    let active_root = fold(proof.active_chunk, leaf / 256, &proof.active_path, active_level);
    let twig_root = hash_node(TWIG_ROOT_LEVEL, &left_root, &active_root);
    let shard_root = fold(twig_root, twig, &proof.upper_path, upper_level);
    let shard = entry.key.shard() as u64;
    let computed = B256::from(fold(shard_root, shard, &proof.shard_path, shard_tree_level));
    if computed != root {
        return Err(ProofError::RootMismatch { expected: root, computed });
    }
    if entry.key == *key {
        return Ok(Some(entry.value));
    }
    if key.shard() as u64 == shard && entry.key < *key && *key < entry.next {
        return Ok(None);
    }
    Err(ProofError::KeyNotCovered(*key))
}

impl EntryProof {
    /// Wire form: version byte, entry length (u32 LE), entry, then every sibling hash in the
    /// order of the fields.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.entry.len() + 32 * (SIBLINGS + 1));
        out.push(PROOF_FORMAT_VERSION);
        out.extend_from_slice(&(self.entry.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.entry);
        for hash in self.left_path.iter() {
            out.extend_from_slice(hash);
        }
        out.extend_from_slice(&self.active_chunk);
        for hash in self.active_path.iter().chain(&self.upper_path).chain(&self.shard_path) {
            out.extend_from_slice(hash);
        }
        out
    }

    /// Parses the wire form, checking version and exact length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        let malformed = |what: &str| ProofError::Malformed(what.to_string());
        let (&version, rest) = bytes.split_first().ok_or_else(|| malformed("empty proof"))?;
        if version != PROOF_FORMAT_VERSION {
            return Err(malformed(&format!("unknown proof format version {version}")));
        }
        let len_bytes: [u8; 4] =
            rest.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(|| malformed("truncated"))?;
        let entry_len = u32::from_le_bytes(len_bytes) as usize;
        let rest = &rest[4..];
        let expected = entry_len.checked_add(32 * (SIBLINGS + 1));
        if expected != Some(rest.len()) {
            return Err(malformed("proof length does not match its entry length"));
        }
        let (entry, hashes) = rest.split_at(entry_len);
        let mut hashes = hashes.chunks_exact(32).map(|c| Hash::try_from(c).expect("32 bytes"));
        let mut take = |n: usize| hashes.by_ref().take(n).collect::<Vec<Hash>>();
        let left_path = take(TWIG_DEPTH);
        let active_chunk = take(1)[0];
        Ok(EntryProof {
            entry: entry.to_vec(),
            left_path,
            active_chunk,
            active_path: take(ACTIVE_DEPTH),
            upper_path: take(UPPER_DEPTH),
            shard_path: take(SHARD_TREE_DEPTH),
        })
    }
}
