//! The `semi-avid` profile: Semi-AVID-PR (Nazirkhanova, Neu, Tse, arXiv 2111.12323) over
//! BLS12-381.
//!
//! **Encoding.** The block is cut into 31-byte elements (each below 2^248, so always a canonical
//! scalar of BLS12-381's 255-bit group order `r`), zero-padded, and laid out row by row as an
//! `L x k` matrix `D` with `L = ceil(ceil(len / 31) / k)`. Row `r` is read as the coefficients of
//! a polynomial `p_r` of degree `< k` and evaluated at `x_i = omega^i` for `i < n`, where `omega`
//! generates the subgroup of size `N = n.next_power_of_two()`: one radix-2 FFT per row. Chunk `i`
//! is the coded column `(p_0(x_i), ..., p_(L-1)(x_i))`: `L` scalars. The code is Reed-Solomon
//! over the scalar field, so any `k` chunks determine every `p_r`.
//!
//! **Commitment.** Column `j` of `D` is committed with a Pedersen vector commitment
//! `C_j = sum_r D[r][j] G_r` over hash-derived generators (see [`setup`]). The commitment is the
//! header (`n`, `k`, block length, `L`), the `k` points `C_j`, and a BLAKE3 digest of both.
//!
//! **Verification.** The commitment is linear, so chunk `i` is valid exactly when
//! `commit(chunk_i) == sum_j x_i^j C_j`: one `L`-point fixed-base MSM and one `k`-point MSM. No
//! proof travels with a chunk.
//!
//! **Reconstruction** checks all given chunks at once with a random linear combination (the
//! weights are BLAKE3 of the commitment digest and every chunk, Fiat-Shamir style; a batch that
//! fails is re-checked chunk by chunk to name the bad one), then interpolates each row from the
//! first `k` chunks with a precomputed `k x k` Lagrange matrix.
//!
//! **Security assumptions.** Binding of `C_j` rests on the discrete-log assumption in the
//! prime-order subgroup of BLS12-381 G1 (about 2^127 group operations by Pollard rho; since the
//! pairing carries G1 discrete logs into the target group, the usual estimate for BLS12-381 as a
//! whole, about 117-120 bits, is the operative bound) and on nobody knowing discrete-log
//! relations among the generators, which holds because they are outputs of BLAKE3 (modelled as a
//! random oracle) mapped to the curve: there is no trusted setup and no trapdoor. Under these, a
//! producer cannot make two different coded columns pass for the same index, and any `k` chunks
//! that pass decode to the same block, as argued in the Semi-AVID-PR paper. The Fiat-Shamir batch
//! check in reconstruction lets a bad chunk through with probability about 1/r per hash
//! evaluation an attacker makes (BLAKE3 modelled as a random oracle). The commitments hide
//! nothing (no blinding): data availability needs binding only.
//!
//! **Parameters and limits.** `1 <= k < n <= 1024` (interpolation costs O(k^2) per row), rows
//! `L <= 65536` (the setup holds about 1.8 KB per row), blocks of 1 byte
//! up to `65536 * 31 * k` bytes. Chunk size is `32 L` bytes, so the expansion is about
//! `n / k * 32 / 31`. Public parameters for `L` rows are derived once per process (about a
//! second for the paper's 8,388 rows) and cached.
//!
//! **Cost.** Encoding is dominated by the `k` column commitments: `k` MSMs of `L` points. They
//! use fixed-base tables (no doublings) and batched affine additions, on AVX-512 IFMA where the
//! CPU has it ([`msm`], [`ifma`]); columns run in parallel on rayon. Verifying a chunk is one
//! such MSM; reconstruction is one MSM (the batch check) plus `L k^2` scalar multiply-adds.

pub mod field;
pub mod ifma;
pub mod msm;
pub mod setup;

use super::wire::{Reader, Writer, CHUNK_MAGIC, COMMITMENT_MAGIC};
use super::{Profile, Result, SvidError};
use ark_bls12_381::{Fr, G1Affine, G1Projective};
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{Field, PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use field::Domain;
use rayon::prelude::*;

/// Block bytes per field element.
pub const BYTES_PER_ELEMENT: usize = 31;
/// Largest `n`.
pub const MAX_N: usize = 1024;
/// Most rows `L` of the data matrix.
pub const MAX_ROWS: u64 = 1 << 16;
/// Bytes of one compressed G1 point.
pub const POINT_BYTES: usize = 48;
/// Bytes of one scalar on the wire.
pub const SCALAR_BYTES: usize = 32;
/// Data elements are below 2^248.
const DATA_BITS: u32 = 248;
/// Coded elements are any scalar.
const SCALAR_BITS: u32 = 255;
const DIGEST_CONTEXT: &str = "zero-svid semi-avid v1 commitment";
const BATCH_CONTEXT: &str = "zero-svid semi-avid v1 batch weights";

/// What a semi-avid block is committed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemiAvidCommitment {
    /// Chunks in all.
    pub n: u32,
    /// Chunks needed to reconstruct; also the number of matrix columns.
    pub k: u32,
    /// Block length in bytes, before padding.
    pub original_len: u64,
    /// Matrix rows `L`: scalars per chunk.
    pub rows: u32,
    /// Pedersen commitments to the `k` data columns.
    pub columns: Vec<G1Affine>,
    /// BLAKE3 over everything above, as encoded on the wire.
    pub digest: [u8; 32],
}

/// One semi-avid chunk: a coded column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemiAvidChunk {
    /// Position among the `n` chunks (the evaluation point `omega^index`).
    pub index: u32,
    /// The `L` coded scalars.
    pub column: Vec<Fr>,
}

/// Checks `n` and `k` against the code.
pub fn check_params(n: usize, k: usize) -> Result<()> {
    if k == 0 || k >= n {
        return Err(SvidError::InvalidThreshold { n: n as u64, k: k as u64 });
    }
    if n > MAX_N {
        return Err(SvidError::UnsupportedCodeSize {
            profile: Profile::SemiAvid,
            n: n as u64,
            k: k as u64,
            limit: "n <= 1024",
        });
    }
    Ok(())
}

/// Matrix rows for a block of `len` bytes in `k` columns.
pub fn rows_for(len: u64, k: usize) -> u64 {
    len.div_ceil(BYTES_PER_ELEMENT as u64).div_ceil(k as u64)
}

pub(in crate::svid) fn check_len(len: u64, k: usize) -> Result<u64> {
    if len == 0 {
        return Err(SvidError::EmptyBlock);
    }
    let rows = rows_for(len, k);
    if rows > MAX_ROWS {
        return Err(SvidError::BlockTooLarge {
            profile: Profile::SemiAvid,
            size: len,
            max: MAX_ROWS * BYTES_PER_ELEMENT as u64 * k as u64,
            hint: " at this k (65536 rows of k 31-byte elements); raise k or use the fast profile",
        });
    }
    Ok(rows)
}

/// Encodes a block into a commitment and `n` chunks, `k` of which reconstruct it.
pub fn encode(
    block: &[u8],
    n: usize,
    k: usize,
) -> Result<(SemiAvidCommitment, Vec<SemiAvidChunk>)> {
    check_params(n, k)?;
    let rows = check_len(block.len() as u64, k)? as usize;
    let matrix: Vec<[u64; 4]> =
        (0..rows * k).into_par_iter().map(|element| field::element(block, element)).collect();
    encode_matrix(&matrix, n, k, block.len() as u64, DATA_BITS)
}

/// Encodes a row-major `rows x k` matrix of canonical scalars below `2^bits`.
fn encode_matrix(
    matrix: &[[u64; 4]],
    n: usize,
    k: usize,
    original_len: u64,
    bits: u32,
) -> Result<(SemiAvidCommitment, Vec<SemiAvidChunk>)> {
    let rows = matrix.len() / k;
    let setup = setup::setup(rows);
    let domain = domain(n)?;

    // Column commitments, one MSM per column, columns in parallel.
    let commitments: Vec<G1Projective> = (0..k)
        .into_par_iter()
        .map(|column| {
            let scalars: Vec<[u64; 4]> = matrix.iter().skip(column).step_by(k).copied().collect();
            msm::commit(&setup, &scalars, bits)
        })
        .collect();

    // Row evaluations, row-major, rows in parallel.
    let mut evaluations = vec![Fr::zero(); rows * n];
    evaluations.par_chunks_mut(n).zip(matrix.par_chunks(k)).for_each_init(
        || vec![Fr::zero(); domain.size()],
        |buffer, (out, row)| {
            buffer.fill(Fr::zero());
            for (coefficient, limbs) in buffer.iter_mut().zip(row) {
                *coefficient = field::scalar(*limbs).unwrap_or_default();
            }
            domain.fft(buffer);
            out.copy_from_slice(&buffer[..n]);
        },
    );
    let chunks = (0..n)
        .into_par_iter()
        .map(|index| SemiAvidChunk {
            index: index as u32,
            column: evaluations.iter().skip(index).step_by(n).copied().collect(),
        })
        .collect();

    let mut commitment = SemiAvidCommitment {
        n: n as u32,
        k: k as u32,
        original_len,
        rows: rows as u32,
        columns: G1Projective::normalize_batch(&commitments),
        digest: [0; 32],
    };
    commitment.digest = digest(&commitment.body());
    Ok((commitment, chunks))
}

fn domain(n: usize) -> Result<Domain> {
    Domain::new(n).ok_or(SvidError::UnsupportedCodeSize {
        profile: Profile::SemiAvid,
        n: n as u64,
        k: 0,
        limit: "n <= 2^32 (the scalar field's two-adicity)",
    })
}

fn digest(body: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

impl SemiAvidCommitment {
    /// Checks that the digest covers the fields (a commitment changed in memory after it was
    /// made or read is refused: the digest also seeds the batch check's weights) and that the
    /// header fields agree with each other and with the code's limits.
    pub fn validate(&self) -> Result<()> {
        if digest(&self.body()) != self.digest {
            return Err(SvidError::CommitmentDigestMismatch);
        }
        check_params(self.n as usize, self.k as usize)?;
        let rows = check_len(self.original_len, self.k as usize)?;
        if rows != u64::from(self.rows) {
            return Err(SvidError::InvalidCommitment {
                reason: format!(
                    "{} rows do not match {} bytes in k = {} columns (expected {rows})",
                    self.rows, self.original_len, self.k
                ),
            });
        }
        if self.columns.len() != self.k as usize {
            return Err(SvidError::InvalidCommitment {
                reason: format!("{} column commitments for k = {}", self.columns.len(), self.k),
            });
        }
        Ok(())
    }

    /// The wire bytes before the digest.
    fn body(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(32 + POINT_BYTES * self.columns.len());
        writer.header(COMMITMENT_MAGIC, Profile::SemiAvid);
        writer.u32(self.n);
        writer.u32(self.k);
        writer.u64(self.original_len);
        writer.u32(self.rows);
        for point in &self.columns {
            // Writing to a Vec cannot fail.
            let _ = point.serialize_compressed(&mut writer.bytes);
        }
        writer.bytes
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.body();
        bytes.extend_from_slice(&self.digest);
        bytes
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let (n, k) = (reader.u32()?, reader.u32()?);
        let original_len = reader.u64()?;
        let rows = reader.u32()?;
        check_params(n as usize, k as usize)?;
        let points = reader.take(POINT_BYTES as u64 * u64::from(k))?;
        let columns = points
            .chunks_exact(POINT_BYTES)
            .enumerate()
            .map(|(column, bytes)| {
                G1Affine::deserialize_compressed(bytes)
                    .map_err(|_| SvidError::InvalidPoint { column })
            })
            .collect::<Result<Vec<_>>>()?;
        let commitment = Self { n, k, original_len, rows, columns, digest: reader.array()? };
        commitment.validate()?;
        Ok(commitment)
    }

    /// `sum_j coefficients[j] C_j`.
    fn combine(&self, coefficients: &[Fr]) -> G1Projective {
        G1Projective::msm_unchecked(&self.columns, coefficients)
    }
}

/// `1, x, x^2, ..., x^(k-1)`.
fn powers(x: Fr, k: usize) -> Vec<Fr> {
    let mut powers = Vec::with_capacity(k);
    let mut power = Fr::ONE;
    for _ in 0..k {
        powers.push(power);
        power *= x;
    }
    powers
}

impl SemiAvidChunk {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(16 + SCALAR_BYTES * self.column.len());
        writer.header(CHUNK_MAGIC, Profile::SemiAvid);
        writer.u32(self.index);
        writer.u32(self.column.len() as u32);
        for value in &self.column {
            for limb in value.into_bigint().0 {
                writer.u64(limb);
            }
        }
        writer.bytes
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let index = reader.u32()?;
        let rows = reader.u32()?;
        let bytes = reader.take(SCALAR_BYTES as u64 * u64::from(rows))?;
        let column = bytes
            .chunks_exact(SCALAR_BYTES)
            .enumerate()
            .map(|(position, bytes)| {
                let mut limbs = [0u64; 4];
                for (limb, word) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(word);
                    *limb = u64::from_le_bytes(le);
                }
                field::scalar(limbs).ok_or(SvidError::NonCanonicalScalar { index, position })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { index, column })
    }

    fn scalars(&self) -> Vec<[u64; 4]> {
        self.column.iter().map(|value| value.into_bigint().0).collect()
    }
}

/// Checks a chunk's shape against the commitment (index, length), not its content.
fn check_shape(commitment: &SemiAvidCommitment, index: u32, chunk: &SemiAvidChunk) -> Result<()> {
    crate::svid::check_chunk_shape(
        commitment.n,
        index,
        chunk.index,
        chunk.column.len(),
        commitment.rows.into(),
        "scalars",
    )
}

/// Checks that `chunk` is chunk `index` of the block committed to by `commitment`.
pub fn verify_chunk(
    commitment: &SemiAvidCommitment,
    index: u32,
    chunk: &SemiAvidChunk,
) -> Result<()> {
    commitment.validate()?;
    check_shape(commitment, index, chunk)?;
    let setup = setup::setup(commitment.rows as usize);
    let domain = domain(commitment.n as usize)?;
    let left = msm::commit(&setup, &chunk.scalars(), SCALAR_BITS);
    let right = commitment.combine(&powers(domain.point(index as usize), commitment.k as usize));
    if left != right {
        return Err(SvidError::InvalidChunk { index, what: "homomorphic column commitment" });
    }
    Ok(())
}

/// Checks all chunks with one random linear combination; on failure, names the first bad one.
fn verify_batch(commitment: &SemiAvidCommitment, chunks: &[&SemiAvidChunk]) -> Result<()> {
    let (k, rows) = (commitment.k as usize, commitment.rows as usize);
    let domain = domain(commitment.n as usize)?;
    // Fiat-Shamir weights: fixed only after every chunk is.
    let mut hasher = blake3::Hasher::new_derive_key(BATCH_CONTEXT);
    hasher.update(&commitment.digest);
    for chunk in chunks {
        hasher.update(&chunk.index.to_le_bytes());
        for value in &chunk.column {
            for limb in value.0 .0 {
                hasher.update(&limb.to_le_bytes());
            }
        }
    }
    let mut xof = hasher.finalize_xof();
    let weights: Vec<Fr> = chunks
        .iter()
        .map(|_| {
            let mut wide = [0u8; 64];
            xof.fill(&mut wide);
            Fr::from_le_bytes_mod_order(&wide)
        })
        .collect();

    let combined: Vec<[u64; 4]> = (0..rows)
        .into_par_iter()
        .map(|row| {
            let mut sum = Fr::zero();
            for (chunk, weight) in chunks.iter().zip(&weights) {
                sum += chunk.column[row] * weight;
            }
            sum.into_bigint().0
        })
        .collect();
    let mut coefficients = vec![Fr::zero(); k];
    for (chunk, weight) in chunks.iter().zip(&weights) {
        for (coefficient, power) in
            coefficients.iter_mut().zip(powers(domain.point(chunk.index as usize), k))
        {
            *coefficient += power * weight;
        }
    }
    let setup = setup::setup(rows);
    if msm::commit(&setup, &combined, SCALAR_BITS) == commitment.combine(&coefficients) {
        return Ok(());
    }
    chunks.par_iter().try_for_each(|chunk| verify_chunk(commitment, chunk.index, chunk))?;
    Err(SvidError::InconsistentEncoding { reason: "batch check failed though every chunk passed" })
}

/// Rebuilds the block from any `k` distinct chunks (more are checked, then ignored).
pub fn reconstruct<'a>(
    commitment: &SemiAvidCommitment,
    chunks: impl IntoIterator<Item = &'a SemiAvidChunk>,
) -> Result<Vec<u8>> {
    commitment.validate()?;
    let (n, k, rows) = (commitment.n as usize, commitment.k as usize, commitment.rows as usize);
    let chunks = super::distinct_chunks(chunks, n, k, |chunk| chunk.index)?;
    for chunk in &chunks {
        check_shape(commitment, chunk.index, chunk)?;
    }
    verify_batch(commitment, &chunks)?;

    let chosen = &chunks[..k];
    let domain = domain(n)?;
    let points: Vec<Fr> = chosen.iter().map(|chunk| domain.point(chunk.index as usize)).collect();
    // Rows of the Lagrange matrix, zero-padded to whole groups of 8 for `sum_of_products`,
    // which reduces once per group instead of once per product.
    let padded = k.next_multiple_of(8);
    let matrix: Vec<Vec<Fr>> = field::interpolation_matrix(&points)
        .into_iter()
        .map(|mut row| {
            row.resize(padded, Fr::zero());
            row
        })
        .collect();
    let row_bytes = k * BYTES_PER_ELEMENT;
    let mut block = vec![0u8; rows * row_bytes];
    block.par_chunks_mut(row_bytes).enumerate().try_for_each_init(
        || vec![Fr::zero(); padded],
        |values, (row, out)| -> Result<()> {
            for (value, chunk) in values.iter_mut().zip(chosen) {
                *value = chunk.column[row];
            }
            for (coefficients, element) in
                matrix.iter().zip(out.chunks_exact_mut(BYTES_PER_ELEMENT))
            {
                let sum: Fr = coefficients
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .zip(values.as_chunks::<8>().0)
                    .map(|(a, y)| Fr::sum_of_products(a, y))
                    .sum();
                field::element_bytes(&sum, element).ok_or(SvidError::InconsistentEncoding {
                    reason: "a committed element does not fit in 31 bytes",
                })?;
            }
            Ok(())
        },
    )?;
    super::strip_padding(block, commitment.original_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commitment changed in memory, here its block length (within the same rows, so the
    /// fields still agree), is refused by every check rather than reconstructing a longer block
    /// padded with zeros.
    #[test]
    fn a_commitment_changed_after_it_was_made_is_refused() {
        let block: Vec<u8> = (0..2000u32).map(|i| (i * 31 + 7) as u8).collect();
        let (commitment, chunks) = encode(&block, 8, 4).unwrap();
        assert_eq!(reconstruct(&commitment, &chunks[..4]).unwrap(), block);
        let mut longer = commitment.clone();
        longer.original_len = 2100;
        assert_eq!(rows_for(2100, 4), u64::from(commitment.rows));
        for error in [
            longer.validate().unwrap_err(),
            verify_chunk(&longer, 0, &chunks[0]).unwrap_err(),
            reconstruct(&longer, &chunks[..4]).unwrap_err(),
        ] {
            assert!(matches!(error, SvidError::CommitmentDigestMismatch), "{error}");
        }
    }

    /// A producer that commits to elements that are not 31-byte values is caught at
    /// reconstruction, by every reader.
    #[test]
    fn elements_beyond_31_bytes_are_rejected() {
        let (n, k) = (6, 2);
        let mut matrix = vec![[1u64, 2, 3, 4]; 3 * k];
        matrix[4] = (-Fr::ONE).into_bigint().0;
        let (commitment, chunks) = encode_matrix(&matrix, n, k, 3 * 31 * k as u64, 255).unwrap();
        for chunk in &chunks {
            verify_chunk(&commitment, chunk.index, chunk).unwrap();
        }
        assert!(matches!(
            reconstruct(&commitment, &chunks[3..5]),
            Err(SvidError::InconsistentEncoding { .. })
        ));
    }
}
