//! `zero-producer da encode|verify|reconstruct`: the wire formats on files, so they can be
//! produced, inspected and damaged by hand.
//!
//! `encode_file` writes `commitment.bin` and `chunk-00000.bin` ... `chunk-NNNNN.bin` (one per
//! chunk, numbered by index) into a directory.

use super::{
    encode, fast, reconstruct, verify_chunk, Chunk, Commitment, Profile, Result, SvidError,
};
use std::fs;
use std::path::{Path, PathBuf};

/// The files `encode_file` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFiles {
    /// The commitment.
    pub commitment: PathBuf,
    /// The chunks, by index.
    pub chunks: Vec<PathBuf>,
}

/// Largest file read: no block, chunk or commitment of either profile is larger (the fast
/// profile's blocks stop at 2 GiB). Reading stops there, so a device such as /dev/zero or a
/// huge file is refused instead of filling memory.
const MAX_FILE_BYTES: u64 = fast::MAX_BLOCK_BYTES + (1 << 20);

fn read(path: &Path) -> Result<Vec<u8>> {
    read_at_most(path, MAX_FILE_BYTES, "any block, chunk or commitment may have")
}

/// Reads `path`, refusing it once it passes `max` bytes (`what` says whose limit that is).
fn read_at_most(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |source| SvidError::Io { path: path.to_owned(), source };
    let mut bytes = Vec::new();
    fs::File::open(path).map_err(io)?.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(io(std::io::Error::other(format!("larger than the {max} bytes {what}"))));
    }
    Ok(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|source| SvidError::Io { path: path.to_owned(), source })
}

/// File name of chunk `index`.
pub fn chunk_file_name(index: u32) -> String {
    format!("chunk-{index:05}.bin")
}

/// Encodes the block in `input` and writes the commitment and chunks into `out_dir` (created
/// if missing; refused if it already holds an encoding).
pub fn encode_file(
    profile: Profile,
    input: &Path,
    out_dir: &Path,
    n: usize,
    k: usize,
) -> Result<EncodedFiles> {
    check_out_dir(out_dir)?;
    // A block too large for the profile is refused before it is read.
    if let Ok(metadata) = fs::metadata(input) {
        if metadata.is_file() {
            super::check_block_len(profile, metadata.len(), k)?;
        }
    }
    let block = read(input)?;
    let (commitment, chunks) = encode(profile, &block, n, k)?;
    fs::create_dir_all(out_dir)
        .map_err(|source| SvidError::Io { path: out_dir.to_owned(), source })?;
    let commitment_path = out_dir.join("commitment.bin");
    write(&commitment_path, &commitment.to_bytes())?;
    let chunk_paths = chunks
        .iter()
        .map(|chunk| {
            let path = out_dir.join(chunk_file_name(chunk.index()));
            write(&path, &chunk.to_bytes())?;
            Ok(path)
        })
        .collect::<Result<_>>()?;
    Ok(EncodedFiles { commitment: commitment_path, chunks: chunk_paths })
}

/// Refuses an output directory holding a commitment or chunk files: a smaller `n` would leave
/// the old encoding's higher chunks beside the new commitment.
fn check_out_dir(out_dir: &Path) -> Result<()> {
    let io = |source| SvidError::Io { path: out_dir.to_owned(), source };
    let entries = match fs::read_dir(out_dir) {
        Ok(entries) => entries,
        // Missing: it is created.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Unreadable, or a file: whether it holds an encoding cannot be known.
        Err(error) => return Err(io(error)),
    };
    for entry in entries {
        let name = entry.map_err(io)?.file_name();
        let name = name.to_string_lossy();
        let chunk = name.starts_with("chunk-") && name.ends_with(".bin");
        if chunk || name == "commitment.bin" {
            return Err(SvidError::OutputHoldsEncoding {
                path: out_dir.to_owned(),
                found: name.into_owned(),
            });
        }
    }
    Ok(())
}

/// Reads and decodes a commitment file.
pub fn read_commitment(path: &Path) -> Result<Commitment> {
    Commitment::from_bytes(&read(path)?)
}

/// Reads and decodes a chunk file.
pub fn read_chunk(path: &Path) -> Result<Chunk> {
    Chunk::from_bytes(&read(path)?)
}

/// Verifies the chunk in `chunk` as chunk `index` (default: the index it carries) of the
/// commitment in `commitment`; returns the index verified.
pub fn verify_file(commitment: &Path, chunk: &Path, index: Option<u32>) -> Result<u32> {
    let commitment = read_commitment(commitment)?;
    let chunk = read_chunk(chunk)?;
    let index = index.unwrap_or(chunk.index());
    verify_chunk(&commitment, index, &chunk)?;
    Ok(index)
}

/// Rebuilds the block from chunk files and writes it to `out`; returns its length.
pub fn reconstruct_file(commitment: &Path, chunks: &[PathBuf], out: &Path) -> Result<u64> {
    let commitment = read_commitment(commitment)?;
    // Each file is read only up to the size of the chunks the commitment describes.
    let max = commitment.chunk_wire_len();
    let chunks = chunks
        .iter()
        .map(|path| Chunk::from_bytes(&read_at_most(path, max, "a chunk of this commitment has")?))
        .collect::<Result<Vec<_>>>()?;
    let block = reconstruct(&commitment, &chunks)?;
    write(out, &block)?;
    Ok(block.len() as u64)
}
