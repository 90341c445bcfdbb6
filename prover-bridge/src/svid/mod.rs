//! SVID data-availability encoding: the producer turns a block into one small chunk per
//! validator plus a commitment; each validator checks its chunk against the commitment alone,
//! and any `k` valid chunks rebuild the block.
//!
//! Two profiles share one API ([`encode`], [`verify_chunk`], [`reconstruct`]) and one wire
//! format ([`wire`]):
//!
//! - [`fast`]: systematic Reed-Solomon over GF(2^16) (reed-solomon-simd) and a BLAKE3 Merkle
//!   commitment; a chunk carries its Merkle path. Built for throughput.
//! - [`semi_avid`]: Semi-AVID-PR: Reed-Solomon over the BLS12-381 scalar field and homomorphic
//!   (Pedersen) commitments to the `k` data columns; a chunk carries no proof, the commitment's
//!   linearity checks it.
//!
//! Both are deterministic: the same block, `n` and `k` give the same bytes. Every input is
//! checked: bad parameters, bad wire bytes and bad chunks are [`SvidError`]s, never panics.
//!
//! ```
//! use zero_prover_bridge::svid::{encode, reconstruct, verify_chunk, Profile};
//!
//! let block = b"a block body that validators must be able to rebuild".repeat(20);
//! let (commitment, chunks) = encode(Profile::Fast, &block, 12, 4)?;
//! verify_chunk(&commitment, 7, &chunks[7])?;
//! // Any 4 chunks, here all recovery chunks.
//! assert_eq!(reconstruct(&commitment, &chunks[8..])?, block);
//! # Ok::<(), zero_prover_bridge::svid::SvidError>(())
//! ```

pub mod bench;
mod error;
pub mod fast;
pub mod files;
pub mod merkle;
pub mod semi_avid;
pub mod wire;

pub use bench::{da_bench, DaBenchReport};
pub use error::{Result, SvidError};
pub use files::{encode_file, reconstruct_file, verify_file, EncodedFiles};

use std::fmt;
use std::str::FromStr;

/// Which SVID construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// GF(2^16) Reed-Solomon + BLAKE3 Merkle commitment.
    Fast,
    /// Semi-AVID-PR over BLS12-381.
    SemiAvid,
}

impl Profile {
    /// The profile's name: `fast` or `semi-avid`.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::SemiAvid => "semi-avid",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = SvidError;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "fast" => Ok(Profile::Fast),
            "semi-avid" => Ok(Profile::SemiAvid),
            other => Err(SvidError::UnknownProfileName(other.to_owned())),
        }
    }
}

/// A commitment of either profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commitment {
    /// Fast profile.
    Fast(fast::FastCommitment),
    /// Semi-AVID-PR profile.
    SemiAvid(semi_avid::SemiAvidCommitment),
}

/// A chunk of either profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Fast profile.
    Fast(fast::FastChunk),
    /// Semi-AVID-PR profile.
    SemiAvid(semi_avid::SemiAvidChunk),
}

impl Commitment {
    /// The profile.
    pub fn profile(&self) -> Profile {
        match self {
            Commitment::Fast(_) => Profile::Fast,
            Commitment::SemiAvid(_) => Profile::SemiAvid,
        }
    }

    /// Chunks in all.
    pub fn n(&self) -> u32 {
        match self {
            Commitment::Fast(commitment) => commitment.n,
            Commitment::SemiAvid(commitment) => commitment.n,
        }
    }

    /// Length of the wire encoding of each of its chunks (every chunk of a block has the same
    /// shape), so that a reader can refuse a larger file before reading it whole.
    pub fn chunk_wire_len(&self) -> u64 {
        let fixed = wire::CHUNK_FIXED_BYTES;
        match self {
            Commitment::Fast(commitment) => {
                let proof = 32 * merkle::depth(commitment.n as usize) as u64;
                fixed + u64::from(commitment.shard_len) + 1 + proof
            }
            Commitment::SemiAvid(commitment) => {
                fixed + semi_avid::SCALAR_BYTES as u64 * u64::from(commitment.rows)
            }
        }
    }

    /// Chunks needed to reconstruct.
    pub fn k(&self) -> u32 {
        match self {
            Commitment::Fast(commitment) => commitment.k,
            Commitment::SemiAvid(commitment) => commitment.k,
        }
    }

    /// Length of the committed block in bytes.
    pub fn original_len(&self) -> u64 {
        match self {
            Commitment::Fast(commitment) => commitment.original_len,
            Commitment::SemiAvid(commitment) => commitment.original_len,
        }
    }
}

impl Chunk {
    /// The profile.
    pub fn profile(&self) -> Profile {
        match self {
            Chunk::Fast(_) => Profile::Fast,
            Chunk::SemiAvid(_) => Profile::SemiAvid,
        }
    }

    /// The index the chunk carries.
    pub fn index(&self) -> u32 {
        match self {
            Chunk::Fast(chunk) => chunk.index,
            Chunk::SemiAvid(chunk) => chunk.index,
        }
    }
}

/// Checks that a block of `len` bytes can be encoded by `profile` with `k` data chunks
/// (`k` itself is checked with `n` by the encoders): what callers run before they allocate it.
pub fn check_block_len(profile: Profile, len: u64, k: usize) -> Result<()> {
    match profile {
        Profile::Fast => fast::check_len(len),
        Profile::SemiAvid => semi_avid::check_len(len, k.max(1)).map(|_| ()),
    }
}

/// Encodes `block` into a commitment and `n` chunks, any `k` of which rebuild it.
pub fn encode(
    profile: Profile,
    block: &[u8],
    n: usize,
    k: usize,
) -> Result<(Commitment, Vec<Chunk>)> {
    Ok(match profile {
        Profile::Fast => {
            let (commitment, chunks) = fast::encode(block, n, k)?;
            (Commitment::Fast(commitment), chunks.into_iter().map(Chunk::Fast).collect())
        }
        Profile::SemiAvid => {
            let (commitment, chunks) = semi_avid::encode(block, n, k)?;
            (Commitment::SemiAvid(commitment), chunks.into_iter().map(Chunk::SemiAvid).collect())
        }
    })
}

/// Checks that `chunk` is chunk `index` of the block `commitment` commits to.
pub fn verify_chunk(commitment: &Commitment, index: u32, chunk: &Chunk) -> Result<()> {
    match (commitment, chunk) {
        (Commitment::Fast(commitment), Chunk::Fast(chunk)) => {
            fast::verify_chunk(commitment, index, chunk)
        }
        (Commitment::SemiAvid(commitment), Chunk::SemiAvid(chunk)) => {
            semi_avid::verify_chunk(commitment, index, chunk)
        }
        _ => Err(SvidError::ProfileMismatch {
            commitment: commitment.profile(),
            chunk: chunk.profile(),
        }),
    }
}

/// Rebuilds the block from at least `k` distinct chunks, checking every chunk first. Errors:
/// a chunk of another profile, an index out of range, a duplicate index, fewer than `k`
/// chunks, any chunk that fails verification, or chunks that are not one honest encoding.
pub fn reconstruct(commitment: &Commitment, chunks: &[Chunk]) -> Result<Vec<u8>> {
    let mismatch = |chunk: &Chunk| SvidError::ProfileMismatch {
        commitment: commitment.profile(),
        chunk: chunk.profile(),
    };
    match commitment {
        Commitment::Fast(commitment) => {
            let chunks = chunks
                .iter()
                .map(|chunk| match chunk {
                    Chunk::Fast(chunk) => Ok(chunk),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<Vec<_>>>()?;
            fast::reconstruct(commitment, chunks)
        }
        Commitment::SemiAvid(commitment) => {
            let chunks = chunks
                .iter()
                .map(|chunk| match chunk {
                    Chunk::SemiAvid(chunk) => Ok(chunk),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<Vec<_>>>()?;
            semi_avid::reconstruct(commitment, chunks)
        }
    }
}

/// Checks a chunk's shape against its commitment: `index` below `n`, the chunk labelled with
/// `index`, and `len` units (`unit` names them in the error) where `expected` are due.
pub(crate) fn check_chunk_shape(
    n: u32,
    index: u32,
    label: u32,
    len: usize,
    expected: u64,
    unit: &'static str,
) -> Result<()> {
    if index >= n {
        return Err(SvidError::IndexOutOfRange { index: index.into(), n: n.into() });
    }
    if label != index {
        return Err(SvidError::IndexMismatch { claimed: label, expected: index });
    }
    if len as u64 != expected {
        return Err(SvidError::ChunkSizeMismatch { index, expected, got: len as u64, unit });
    }
    Ok(())
}

/// The block of `original_len` bytes from its decoded, padded form: the padding must be zero,
/// since the encoder wrote zeros there.
pub(crate) fn strip_padding(mut block: Vec<u8>, original_len: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(original_len).unwrap_or(usize::MAX);
    match block.get(len..) {
        Some(padding) if padding.iter().all(|&byte| byte == 0) => {
            block.truncate(len);
            Ok(block)
        }
        Some(_) => {
            Err(SvidError::InconsistentEncoding { reason: "padding after the block is not zero" })
        }
        None => Err(SvidError::InconsistentEncoding {
            reason: "the decoded block is shorter than the committed length",
        }),
    }
}

/// The given chunks, in order, after checking that every index is below `n`, none repeats,
/// and there are at least `k`.
pub(crate) fn distinct_chunks<'a, T>(
    chunks: impl IntoIterator<Item = &'a T>,
    n: usize,
    k: usize,
    index_of: impl Fn(&T) -> u32,
) -> Result<Vec<&'a T>>
where
    T: 'a,
{
    let mut seen = vec![false; n];
    let mut distinct = Vec::new();
    for chunk in chunks {
        let index = index_of(chunk);
        let slot = seen
            .get_mut(index as usize)
            .ok_or(SvidError::IndexOutOfRange { index: index.into(), n: n as u64 })?;
        if std::mem::replace(slot, true) {
            return Err(SvidError::DuplicateChunk { index });
        }
        distinct.push(chunk);
    }
    if distinct.len() < k {
        return Err(SvidError::NotEnoughChunks { got: distinct.len(), need: k });
    }
    Ok(distinct)
}
