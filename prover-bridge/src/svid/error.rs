//! The one error type of SVID encoding, verification, reconstruction and the wire formats.

use super::Profile;
use std::path::PathBuf;

/// Everything that can go wrong with SVID input. Every variant names the value at fault, so a
/// person reading the message knows what to change; none of them is ever a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// An empty block has nothing to make available.
    #[error("the block is empty: SVID encodes blocks of at least one byte")]
    EmptyBlock,

    /// The block is larger than the profile accepts.
    #[error("the block is {size} bytes, over the {profile} profile's limit of {max} bytes{hint}")]
    BlockTooLarge { profile: Profile, size: u64, max: u64, hint: &'static str },

    /// `k` must be at least 1 and below `n`.
    #[error("k = {k} with n = {n}: the data threshold k must satisfy 1 <= k < n")]
    InvalidThreshold { n: u64, k: u64 },

    /// `n` and `k` are beyond what the profile's code supports.
    #[error("n = {n}, k = {k} is beyond the {profile} profile's code: {limit}")]
    UnsupportedCodeSize { profile: Profile, n: u64, k: u64, limit: &'static str },

    /// A chunk index at or past `n`.
    #[error("chunk index {index} is out of range: the commitment has n = {n} chunks (0..{n})")]
    IndexOutOfRange { index: u64, n: u64 },

    /// A chunk checked at one index carries another.
    #[error("the chunk carries index {claimed} but was checked as chunk {expected}")]
    IndexMismatch { claimed: u32, expected: u32 },

    /// The same chunk index was given twice to reconstruction.
    #[error("chunk {index} was given more than once; reconstruction takes distinct chunks")]
    DuplicateChunk { index: u32 },

    /// Fewer than `k` distinct chunks.
    #[error("{got} distinct chunks given; reconstruction needs at least k = {need}")]
    NotEnoughChunks { got: usize, need: usize },

    /// A chunk of one profile checked against a commitment of the other.
    #[error("the commitment is for the {commitment} profile but the chunk is for {chunk}")]
    ProfileMismatch { commitment: Profile, chunk: Profile },

    /// A chunk whose payload has the wrong length for its commitment.
    #[error("chunk {index} carries {got} {unit}; the commitment says each chunk has {expected}")]
    ChunkSizeMismatch { index: u32, expected: u64, got: u64, unit: &'static str },

    /// A Merkle proof with the wrong number of hashes for the tree.
    #[error(
        "chunk {index} has a proof of {got} hashes; a tree over n = {n} chunks needs {expected}"
    )]
    ProofLengthMismatch { index: u32, n: u64, expected: usize, got: usize },

    /// The chunk does not open the commitment at its index: a corrupted chunk, proof or
    /// commitment, or a chunk from another block.
    #[error(
        "chunk {index} does not match the commitment ({what} check failed): it is corrupt, \
             belongs to another block, or the commitment was altered"
    )]
    InvalidChunk { index: u32, what: &'static str },

    /// Every chunk opened the commitment, but together they are not one codeword of the
    /// committed block: the producer encoded dishonestly.
    #[error(
        "the chunks each match the commitment but do not decode to a block consistent with \
             it ({reason}): the producer's encoding is invalid"
    )]
    InconsistentEncoding { reason: &'static str },

    /// A commitment whose header fields contradict each other.
    #[error("invalid commitment: {reason}")]
    InvalidCommitment { reason: String },

    /// Wire input ended early.
    #[error(
        "{what} is truncated: {needed} more bytes needed at offset {offset}, {available} left"
    )]
    Truncated { what: &'static str, offset: usize, needed: u64, available: usize },

    /// Wire input continues past the end of its encoding.
    #[error("{what} has {extra} unexpected bytes after its end (oversize input)")]
    TrailingBytes { what: &'static str, extra: usize },

    /// Wire input does not start with the expected magic bytes.
    #[error("{what} does not start with the magic {expected:?} (found {found:02x?}): not an SVID {what}")]
    BadMagic { what: &'static str, expected: &'static str, found: [u8; 4] },

    /// A wire format version this build does not read.
    #[error("{what} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion { what: &'static str, found: u8, supported: u8 },

    /// A profile byte on the wire that names no profile.
    #[error("{what} names profile byte {found}, which is neither fast (1) nor semi-avid (2)")]
    UnknownProfile { what: &'static str, found: u8 },

    /// A profile name that is neither `fast` nor `semi-avid`.
    #[error("unknown SVID profile `{0}`: expected `fast` or `semi-avid`")]
    UnknownProfileName(String),

    /// A coded-column element that is not a canonical BLS12-381 scalar.
    #[error(
        "chunk {index}: element {position} is not a canonical BLS12-381 scalar (it is not \
             below the group order)"
    )]
    NonCanonicalScalar { index: u32, position: usize },

    /// A column commitment that is not a point of the prime-order subgroup of G1.
    #[error(
        "commitment column {column} is not a compressed BLS12-381 G1 point in the prime-order \
             subgroup"
    )]
    InvalidPoint { column: usize },

    /// The semi-avid commitment's integrity digest does not match its contents.
    #[error(
        "the commitment's digest does not match its contents: the commitment bytes were altered"
    )]
    CommitmentDigestMismatch,

    /// The Reed-Solomon library refused parameters that were checked beforehand. A bug.
    #[error("internal Reed-Solomon error (a bug: parameters were checked first): {0}")]
    Codec(String),

    /// An output directory that already holds an encoding: chunks of two encodings would mix.
    #[error(
        "{path} already holds an encoding ({found}); encode into a new or empty directory, so \
             that its chunks cannot mix with another block's"
    )]
    OutputHoldsEncoding { path: PathBuf, found: String },

    /// The benchmark's thread pool could not be built.
    #[error("could not build a thread pool: {0}")]
    ThreadPool(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SvidError {
    /// True when well-formed input failed a check (a chunk or encoding that does not match its
    /// commitment, a commitment whose digest is broken): `zero-producer` exits 1 for these and
    /// 2 for every other error (bad parameters, malformed bytes, files).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            Self::InvalidChunk { .. }
                | Self::InconsistentEncoding { .. }
                | Self::CommitmentDigestMismatch
                | Self::IndexMismatch { .. }
                | Self::ProfileMismatch { .. }
                | Self::ChunkSizeMismatch { .. }
                | Self::ProofLengthMismatch { .. }
        )
    }
}

impl From<reed_solomon_simd::Error> for SvidError {
    fn from(error: reed_solomon_simd::Error) -> Self {
        Self::Codec(error.to_string())
    }
}

/// `Result` with [`SvidError`].
pub type Result<T, E = SvidError> = std::result::Result<T, E>;
