//! The `fast` profile: systematic Reed-Solomon over GF(2^16) and a BLAKE3 Merkle commitment.
//!
//! **Encoding.** The block is zero-padded to `k` data shards of `shard_len` bytes (the smallest
//! multiple of 64 that holds `ceil(len / k)`, at least 64); reed-solomon-simd (Leopard-RS, an
//! FFT-based code over GF(2^16)) extends them with `n - k` recovery shards. Chunk `i < k` is data
//! shard `i` verbatim; chunk `i >= k` is recovery shard `i - k`. The code acts independently on
//! each 64-byte column of the shards, so the shards are cut into stripes and each stripe is
//! encoded, and hashed, on its own rayon task (module `stripes`): all cores encode one block, and
//! each task's working set stays in cache. The field arithmetic runs on GFNI + AVX-512 where
//! the CPU has them (module `engine`); the bytes are the same on every CPU and any thread count.
//!
//! **Commitment.** Each chunk is hashed to a leaf; the root is BLAKE3 over the commitment header
//! (version, profile, `n`, `k`, block length, shard length) and the Merkle root, so flipping any
//! header field or root bit invalidates every proof. A chunk carries its Merkle path.
//!
//! **Reconstruction** verifies every chunk, decodes the missing data shards from any `k`, then
//! re-encodes and recomputes the root. A Merkle root alone does not prove that the chunks form
//! one codeword; the re-encoding does: if it matches, every honest reader of every `k`-subset
//! gets the same block, and if it does not, every reader gets [`SvidError::InconsistentEncoding`].
//!
//! **Limits.** `1 <= k < n <= 65536`, and reed-solomon-simd's own: one of `k` and `n - k`,
//! rounded up to a power of two, plus the other must not exceed 65536 (so any `n <= 32768`
//! works). Blocks of 1 byte to [`MAX_BLOCK_BYTES`].

mod engine;
mod stripes;

use super::merkle::{self, Hash, MerkleTree};
use super::wire::{Reader, Writer, CHUNK_MAGIC, COMMITMENT_MAGIC, WIRE_VERSION};
use super::{Profile, Result, SvidError};
use engine::CodecEngine;
use rayon::prelude::*;
use reed_solomon_simd::rate::{DefaultRateDecoder, RateDecoder};
use reed_solomon_simd::ReedSolomonEncoder;

/// Largest block the fast profile encodes: 2 GiB.
pub const MAX_BLOCK_BYTES: u64 = 1 << 31;
/// Largest `n` (GF(2^16) has 65536 points).
pub const MAX_N: usize = 1 << 16;
/// Decoding has a fixed cost per call (an FWHT over all 65536 field points), so decode stripes
/// are longer than encode stripes.
const DECODE_STRIPE: usize = 64 << 10;
const ROOT_CONTEXT: &str = "zero-svid fast v1 root";

/// What a fast-profile block is committed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastCommitment {
    /// Chunks in all.
    pub n: u32,
    /// Chunks needed to reconstruct.
    pub k: u32,
    /// Block length in bytes, before padding.
    pub original_len: u64,
    /// Bytes in every chunk.
    pub shard_len: u32,
    /// BLAKE3 over the header and the Merkle root of the `n` chunks.
    pub root: Hash,
}

/// One fast-profile chunk: a shard and its Merkle path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastChunk {
    /// Position among the `n` chunks; `< k` are data shards, the rest recovery shards.
    pub index: u32,
    /// The shard, `shard_len` bytes.
    pub data: Vec<u8>,
    /// Sibling hashes from the leaf up, `ceil(log2 n)` of them.
    pub proof: Vec<Hash>,
}

/// Checks `n` and `k` against the code.
pub fn check_params(n: usize, k: usize) -> Result<()> {
    if k == 0 || k >= n {
        return Err(SvidError::InvalidThreshold { n: n as u64, k: k as u64 });
    }
    if n > MAX_N || !ReedSolomonEncoder::supports(k, n - k) {
        return Err(SvidError::UnsupportedCodeSize {
            profile: Profile::Fast,
            n: n as u64,
            k: k as u64,
            limit: "n <= 65536, and one of k and n - k, rounded up to a power of two, plus the \
                    other must not exceed 65536",
        });
    }
    Ok(())
}

pub(super) fn check_len(len: u64) -> Result<()> {
    if len == 0 {
        return Err(SvidError::EmptyBlock);
    }
    if len > MAX_BLOCK_BYTES {
        return Err(SvidError::BlockTooLarge {
            profile: Profile::Fast,
            size: len,
            max: MAX_BLOCK_BYTES,
            hint: "",
        });
    }
    Ok(())
}

/// Bytes per shard for a block of `len` bytes in `k` data shards.
pub fn shard_len(len: u64, k: usize) -> u64 {
    len.div_ceil(k as u64).next_multiple_of(64).max(64)
}

/// Encodes a block into a commitment and `n` chunks, `k` of which reconstruct it.
pub fn encode(block: &[u8], n: usize, k: usize) -> Result<(FastCommitment, Vec<FastChunk>)> {
    check_params(n, k)?;
    check_len(block.len() as u64)?;
    let shard = shard_len(block.len() as u64, k) as usize;
    let plan = stripes::Plan::new(shard, n, rayon::current_num_threads());
    let encoded = stripes::encode(block, (n, k), shard, plan, true, &vec![true; n])?;
    let leaves = encoded
        .leaves
        .into_iter()
        .map(|leaf| leaf.ok_or_else(missing_leaf))
        .collect::<Result<_>>()?;
    let shards = encoded.shards.ok_or_else(|| SvidError::Codec("encoder kept no shards".into()))?;
    Ok(commit(shards, leaves, k, block.len() as u64))
}

fn missing_leaf() -> SvidError {
    SvidError::Codec("encoder skipped a leaf hash".into())
}

/// Commits to `n` shards of equal length (the first `k` data) given their leaf hashes, and
/// attaches their proofs.
fn commit(
    shards: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
    k: usize,
    original_len: u64,
) -> (FastCommitment, Vec<FastChunk>) {
    let tree = MerkleTree::new(leaves);
    let mut commitment = FastCommitment {
        n: shards.len() as u32,
        k: k as u32,
        original_len,
        shard_len: shards.first().map_or(0, Vec::len) as u32,
        root: [0; 32],
    };
    commitment.root = commitment.bind_root(&tree.root());
    let chunks = shards
        .into_iter()
        .enumerate()
        .map(|(index, data)| FastChunk { index: index as u32, data, proof: tree.proof(index) })
        .collect();
    (commitment, chunks)
}

impl FastCommitment {
    /// Checks that the header fields agree with each other and with the code's limits.
    pub fn validate(&self) -> Result<()> {
        check_params(self.n as usize, self.k as usize)?;
        check_len(self.original_len)?;
        let expected = shard_len(self.original_len, self.k as usize);
        if u64::from(self.shard_len) != expected {
            return Err(SvidError::InvalidCommitment {
                reason: format!(
                    "shard length {} does not match {} bytes in k = {} shards (expected {expected})",
                    self.shard_len, self.original_len, self.k
                ),
            });
        }
        Ok(())
    }

    fn header(&self) -> Writer {
        let mut writer = Writer::with_capacity(64);
        writer.header(COMMITMENT_MAGIC, Profile::Fast);
        writer.u32(self.n);
        writer.u32(self.k);
        writer.u64(self.original_len);
        writer.u32(self.shard_len);
        writer
    }

    /// The committed root for a Merkle root under this header.
    fn bind_root(&self, tree_root: &Hash) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key(ROOT_CONTEXT);
        hasher.update(&[WIRE_VERSION]);
        hasher.update(&self.header().bytes);
        hasher.update(tree_root);
        *hasher.finalize().as_bytes()
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut writer = self.header();
        writer.bytes(&self.root);
        writer.bytes
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let commitment = Self {
            n: reader.u32()?,
            k: reader.u32()?,
            original_len: reader.u64()?,
            shard_len: reader.u32()?,
            root: reader.array()?,
        };
        commitment.validate()?;
        Ok(commitment)
    }
}

impl FastChunk {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(self.data.len() + 32 * self.proof.len() + 24);
        writer.header(CHUNK_MAGIC, Profile::Fast);
        writer.u32(self.index);
        writer.u32(self.data.len() as u32);
        writer.bytes(&self.data);
        writer.u8(self.proof.len() as u8);
        for hash in &self.proof {
            writer.bytes(hash);
        }
        writer.bytes
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let index = reader.u32()?;
        let len = reader.u32()?;
        let data = reader.take(u64::from(len))?.to_vec();
        let proof_len = reader.u8()?;
        let proof = reader
            .take(u64::from(proof_len) * 32)?
            .chunks_exact(32)
            .map(|hash| {
                let mut out = [0u8; 32];
                out.copy_from_slice(hash);
                out
            })
            .collect();
        Ok(Self { index, data, proof })
    }
}

/// Checks that `chunk` is chunk `index` of the block committed to by `commitment`.
pub fn verify_chunk(commitment: &FastCommitment, index: u32, chunk: &FastChunk) -> Result<()> {
    check_chunk(commitment, index, chunk).map(|_| ())
}

/// Checks a chunk and returns its leaf hash.
fn check_chunk(commitment: &FastCommitment, index: u32, chunk: &FastChunk) -> Result<Hash> {
    commitment.validate()?;
    super::check_chunk_shape(
        commitment.n,
        index,
        chunk.index,
        chunk.data.len(),
        commitment.shard_len.into(),
        "bytes",
    )?;
    let depth = merkle::depth(commitment.n as usize);
    if chunk.proof.len() != depth {
        return Err(SvidError::ProofLengthMismatch {
            index,
            n: commitment.n.into(),
            expected: depth,
            got: chunk.proof.len(),
        });
    }
    let leaf = merkle::leaf_hash(&chunk.data);
    let tree_root = merkle::root_from_proof(leaf, index as usize, &chunk.proof);
    if commitment.bind_root(&tree_root) != commitment.root {
        return Err(SvidError::InvalidChunk { index, what: "Merkle path" });
    }
    Ok(leaf)
}

/// Rebuilds the block from any `k` distinct chunks (more are checked, then ignored).
pub fn reconstruct<'a>(
    commitment: &FastCommitment,
    chunks: impl IntoIterator<Item = &'a FastChunk>,
) -> Result<Vec<u8>> {
    commitment.validate()?;
    let (n, k) = (commitment.n as usize, commitment.k as usize);
    let chunks = super::distinct_chunks(chunks, n, k, |chunk| chunk.index)?;
    let leaves: Vec<Hash> = chunks
        .par_iter()
        .map(|chunk| check_chunk(commitment, chunk.index, chunk))
        .collect::<Result<_>>()?;
    let chosen = &chunks[..k];
    let shard = commitment.shard_len as usize;

    // Data shards, given or restored, laid end to end: the padded block.
    let mut block = vec![0u8; k * shard];
    let mut slots: Vec<Option<&mut [u8]>> = block.chunks_mut(shard).map(Some).collect();
    let mut given = Vec::with_capacity(k);
    for chunk in chosen {
        let index = chunk.index as usize;
        if let Some(slot) = slots.get_mut(index).and_then(Option::take) {
            slot.copy_from_slice(&chunk.data);
        }
        given.push((index, chunk.data.as_slice()));
    }
    let missing: Vec<(usize, &mut [u8])> = slots
        .into_iter()
        .enumerate()
        .filter_map(|(index, slot)| slot.map(|slot| (index, slot)))
        .collect();
    if !missing.is_empty() {
        restore_data(n, k, shard, &given, missing)?;
    }

    // Re-encode and recompute the root: the chunks must be one codeword of the commitment.
    // Only the leaves of chunks not given need hashing, and no recovery shard is kept.
    let mut known: Vec<Option<Hash>> = vec![None; n];
    for (chunk, leaf) in chosen.iter().zip(&leaves) {
        known[chunk.index as usize] = Some(*leaf);
    }
    let unknown: Vec<bool> = known.iter().map(Option::is_none).collect();
    let plan = stripes::Plan::new(shard, n, rayon::current_num_threads());
    let encoded = stripes::encode(&block, (n, k), shard, plan, false, &unknown)?;
    let all_leaves = known
        .into_iter()
        .zip(encoded.leaves)
        .map(|(known, computed)| known.or(computed).ok_or_else(missing_leaf))
        .collect::<Result<Vec<Hash>>>()?;
    if commitment.bind_root(&MerkleTree::new(all_leaves).root()) != commitment.root {
        return Err(SvidError::InconsistentEncoding {
            reason: "re-encoded chunks change the root",
        });
    }
    super::strip_padding(block, commitment.original_len)
}

/// Restores missing data shards from `k` given shards (data or recovery), stripe by stripe.
fn restore_data(
    n: usize,
    k: usize,
    shard: usize,
    given: &[(usize, &[u8])],
    missing: Vec<(usize, &mut [u8])>,
) -> Result<()> {
    let stripe = DECODE_STRIPE.min(shard);
    let mut pieces: Vec<Vec<(usize, &mut [u8])>> =
        (0..shard.div_ceil(stripe)).map(|_| Vec::with_capacity(missing.len())).collect();
    for (index, out) in missing {
        for (stripe_index, piece) in out.chunks_mut(stripe).enumerate() {
            pieces[stripe_index].push((index, piece));
        }
    }
    pieces.into_par_iter().enumerate().try_for_each_init(
        || None::<DefaultRateDecoder<CodecEngine>>,
        |decoder, (stripe_index, outputs)| -> Result<()> {
            let start = stripe_index * stripe;
            let len = outputs.first().map_or(0, |(_, piece)| piece.len());
            let decoder = match decoder {
                Some(decoder) => {
                    decoder.reset(k, n - k, len)?;
                    decoder
                }
                None => decoder.insert(DefaultRateDecoder::new(
                    k,
                    n - k,
                    len,
                    CodecEngine::new(),
                    None,
                )?),
            };
            for &(index, data) in given {
                let piece = &data[start..start + len];
                if index < k {
                    decoder.add_original_shard(index, piece)?;
                } else {
                    decoder.add_recovery_shard(index - k, piece)?;
                }
            }
            let result = decoder.decode()?;
            for (index, out) in outputs {
                let restored = result.restored_original(index).ok_or_else(|| {
                    SvidError::Codec(format!("decoder did not restore data shard {index}"))
                })?;
                out.copy_from_slice(restored);
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svid::bench::pseudo_random_block;

    /// Commits to arbitrary shards, hashed in one pass each.
    fn commit_shards(
        shards: Vec<Vec<u8>>,
        k: usize,
        original_len: u64,
    ) -> (FastCommitment, Vec<FastChunk>) {
        let leaves = shards.iter().map(|shard| merkle::leaf_hash(shard)).collect();
        commit(shards, leaves, k, original_len)
    }

    /// Roots and chunk bytes written by the encoder before it was striped and hashed piece by
    /// piece: the wire format and the commitment have not changed.
    #[test]
    fn commitments_match_the_first_encoder() {
        for (len, n, k, expected_root, chunks_hash) in [
            (
                1,
                3,
                1,
                "c3a5364b29d16c23482b0abe96f477416c29c23d434b6ef292614d468726e5ff",
                "3bd416eb4031f6bb427300455afff0ea3b52433cf8908c5ae2fc0a11170a41e5",
            ),
            (
                1000,
                8,
                3,
                "f79b15884b402b947ad73b3f1ba4b903f2869224eb735f81b5f991a52dfdd3d5",
                "15dbf849c2f1944f3ff96039fc2944e51e1a2703193eb627a75d98f959cb2aa4",
            ),
            (
                12_345,
                9,
                4,
                "3243b1afcfe5ada905a03252bca956beefec9d24dd9dac61af03a0462e7aeba5",
                "6714d2126041184dfd34a7776dd5bd4329b96e0495788dc077d36155c20619df",
            ),
            (
                100_000,
                256,
                85,
                "b4f6febb55fd0d58a478fcf2f7deb70bc64c36efb16c0acca6d00aff79c963a8",
                "97db16f1acc9e4918a14e70b20a6cf578b310b6ce7e17a12c6e4e75557bd440c",
            ),
            (
                2_000_000,
                256,
                85,
                "5e3c71990018de46a516eeb20e37526b515e9ed497ddc3abde1f5b27014c3923",
                "40ae835704216c9f665417937902f1a68d214ff3ed3efd4669438a81343d12f5",
            ),
        ] {
            let block = pseudo_random_block(len, 42);
            let (commitment, chunks) = encode(&block, n, k).unwrap();
            let root: String = commitment.root.iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(root, expected_root, "len {len}");
            let wire: Vec<u8> = chunks.iter().flat_map(FastChunk::to_bytes).collect();
            assert_eq!(blake3::hash(&wire).to_hex().as_str(), chunks_hash, "len {len}");
        }
    }

    /// The same block gives the same bytes on any number of threads, though the stripe length
    /// follows the thread count.
    #[test]
    fn encoding_does_not_depend_on_the_thread_count() {
        let block = pseudo_random_block(300_001, 3);
        let encode_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| encode(&block, 40, 13).unwrap())
        };
        let (commitment, chunks) = encode_on(1);
        for threads in [2, 3, 8] {
            assert_eq!(encode_on(threads), (commitment.clone(), chunks.clone()), "{threads}");
        }
    }

    /// A producer that commits to shards which are not one codeword is caught by every reader,
    /// whichever `k` chunks it holds.
    #[test]
    fn dishonest_encoding_is_rejected_from_every_subset() {
        let (n, k) = (8, 3);
        let block: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (_, honest) = encode(&block, n, k).unwrap();
        let mut shards: Vec<Vec<u8>> = honest.into_iter().map(|chunk| chunk.data).collect();
        shards[6][10] ^= 1;
        let (commitment, chunks) = commit_shards(shards, k, block.len() as u64);
        for chunk in &chunks {
            verify_chunk(&commitment, chunk.index, chunk).unwrap();
        }
        for subset in [[0usize, 1, 2], [0, 1, 6], [3, 4, 5], [5, 6, 7]] {
            let picked: Vec<&FastChunk> = subset.iter().map(|&i| &chunks[i]).collect();
            assert!(
                matches!(
                    reconstruct(&commitment, picked),
                    Err(SvidError::InconsistentEncoding { .. })
                ),
                "subset {subset:?}"
            );
        }
    }

    #[test]
    fn nonzero_padding_is_rejected() {
        let (n, k) = (6, 2);
        let block = vec![9u8; 100];
        let (_, honest) = encode(&block, n, k).unwrap();
        let mut data: Vec<Vec<u8>> = honest.into_iter().take(k).map(|chunk| chunk.data).collect();
        data[1][63] = 1; // byte 127, past the 100-byte block
        let mut shards = data.clone();
        shards.extend(reed_solomon_simd::encode(k, n - k, &data).unwrap());
        let (commitment, chunks) = commit_shards(shards, k, block.len() as u64);
        assert!(matches!(
            reconstruct(&commitment, &chunks[2..4]),
            Err(SvidError::InconsistentEncoding { .. })
        ));
    }
}
