//! Public parameters of the semi-avid profile: one G1 generator per matrix row, derived by
//! hashing, each with its fixed-base table.
//!
//! **Generators.** `G_r` is found by try-and-increment: for counter 0, 1, ... the BLAKE3 XOF of
//! (context, r, counter) gives 64 bytes reduced to a base-field element `x`; the first `x` on
//! the curve `y^2 = x^3 + 4` gives the point with the smaller `y`, and clearing the cofactor
//! (multiplying by `1 - z`, the effective cofactor) puts it in the prime-order subgroup. Nobody
//! chose these points, so nobody knows a discrete-log relation among them: the commitment is
//! binding under the discrete-log assumption in G1, with no trusted setup and no trapdoor.
//!
//! **Tables.** With window `c`, row `r`'s table holds `2^(c w) G_r` for every window `w`, so a
//! commitment is one bucket pass with no doublings (see [`super::msm`]).
//!
//! **Cache.** Deriving the parameters for the paper's 8,389 rows takes about a second, so they
//! are built once per process and shared. The lock only guards the swap of an `Arc`: it is never
//! held while building (which runs on rayon), so a rayon worker that waits for the lock can
//! never be the one another worker needs to finish. Two callers that miss at once both build,
//! and the larger result is kept.

use super::ifma::{self, Point52};
use ark_bls12_381::{Fq, G1Affine, G1Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{AdditiveGroup, PrimeField};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

const GENERATOR_CONTEXT: &str = "zero-svid semi-avid v1 generator";

/// Scalars are below 2^255; signed windows need one bit more.
const SCALAR_BITS_WITH_SIGN: usize = 256;

/// Generators and fixed-base tables for the first `rows` rows.
#[derive(Debug)]
pub struct Setup {
    /// Bits per window, `c`.
    pub window_bits: u32,
    /// Windows per row: enough for any scalar.
    pub windows: usize,
    /// Rows covered.
    pub rows: usize,
    /// `table[r * windows + w] = 2^(c w) G_r`.
    pub table: Vec<G1Affine>,
    /// The same table in radix-2^52 form, where the CPU runs the AVX-512 IFMA path.
    pub table52: Option<Vec<Point52>>,
}

/// Generator `G_row`.
pub fn generator(row: u64) -> G1Affine {
    let mut counter = 0u32;
    loop {
        let mut hasher = blake3::Hasher::new_derive_key(GENERATOR_CONTEXT);
        hasher.update(&row.to_le_bytes());
        hasher.update(&counter.to_le_bytes());
        let mut wide = [0u8; 64];
        hasher.finalize_xof().fill(&mut wide);
        let x = Fq::from_le_bytes_mod_order(&wide);
        if let Some((smaller, _)) = G1Affine::get_ys_from_x_unchecked(x) {
            let point = G1Affine::new_unchecked(x, smaller).clear_cofactor();
            if !point.is_zero() {
                return point;
            }
        }
        counter += 1;
    }
}

/// The window that minimises the cost of a commitment to `rows` scalars: bucket additions
/// (one per nonzero window digit) against the final weighted bucket sum (about two additions
/// per bucket); both are batched affine additions of about 6 field multiplications.
pub fn window_bits_for(rows: usize) -> u32 {
    (2u32..=16)
        .min_by_key(|&bits| {
            let windows = SCALAR_BITS_WITH_SIGN.div_ceil(bits as usize);
            rows * windows + (1usize << bits)
        })
        .unwrap_or(8)
}

impl Setup {
    /// Builds the parameters for `rows` rows (in parallel), with the IFMA table where the CPU
    /// supports it.
    pub fn build(rows: usize) -> Self {
        Self::build_with(rows, ifma::available())
    }

    /// Builds the parameters, with or without the IFMA table.
    pub fn build_with(rows: usize, ifma_table: bool) -> Self {
        let window_bits = window_bits_for(rows);
        let windows = SCALAR_BITS_WITH_SIGN.div_ceil(window_bits as usize);
        let table = (0..rows)
            .into_par_iter()
            .flat_map_iter(|row| {
                let mut point = G1Projective::from(generator(row as u64));
                let mut powers = Vec::with_capacity(windows);
                for _ in 0..windows {
                    powers.push(point);
                    for _ in 0..window_bits {
                        point.double_in_place();
                    }
                }
                G1Projective::normalize_batch(&powers)
            })
            .collect::<Vec<_>>();
        let table52 =
            ifma_table.then(|| table.par_iter().map(Point52::from_affine).collect::<Vec<_>>());
        Self { window_bits, windows, rows, table, table52 }
    }
}

static CACHE: Mutex<Option<Arc<Setup>>> = Mutex::new(None);

fn cached() -> Option<Arc<Setup>> {
    CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// Parameters covering at least `rows` rows, built on first use and cached.
pub fn setup(rows: usize) -> Arc<Setup> {
    if let Some(setup) = cached().filter(|setup| setup.rows >= rows) {
        return setup;
    }
    let built = Arc::new(Setup::build(rows));
    let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match cache.as_ref() {
        Some(current) if current.rows >= built.rows => current.clone(),
        _ => {
            *cache = Some(built.clone());
            built
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_distinct_subgroup_points() {
        let points: Vec<G1Affine> = (0..8).map(generator).collect();
        for (index, point) in points.iter().enumerate() {
            assert!(point.is_on_curve());
            assert!(point.is_in_correct_subgroup_assuming_on_curve());
            assert!(points[..index].iter().all(|other| other != point));
        }
        assert_eq!(generator(3), points[3], "derivation is deterministic");
    }

    #[test]
    fn table_holds_shifted_generators() {
        let setup = Setup::build(3);
        let shift = ark_bls12_381::Fr::from(1u64 << setup.window_bits);
        for row in 0..3 {
            let mut expected = G1Projective::from(generator(row as u64));
            for window in 0..setup.windows {
                assert_eq!(setup.table[row * setup.windows + window], expected.into_affine());
                expected *= shift;
            }
        }
    }
}
