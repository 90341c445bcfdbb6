//! The scalar-field side of the semi-avid profile: packing bytes into elements, the evaluation
//! domain, and interpolation from any `k` evaluation points.

use super::BYTES_PER_ELEMENT;
use ark_bls12_381::Fr;
use ark_ff::{BigInt, FftField, Field, PrimeField, Zero};

/// Element `index` of the block, as the little-endian integer of its 31 bytes (zero-padded past
/// the end). Always below 2^248, so always a canonical scalar.
pub fn element(block: &[u8], index: usize) -> [u64; 4] {
    let start = (index * BYTES_PER_ELEMENT).min(block.len());
    let end = (start + BYTES_PER_ELEMENT).min(block.len());
    let mut bytes = [0u8; 32];
    bytes[..end - start].copy_from_slice(&block[start..end]);
    let mut limbs = [0u64; 4];
    for (limb, word) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        *limb = u64::from_le_bytes(le);
    }
    limbs
}

/// The scalar with these little-endian limbs (must be below the modulus; data elements are).
pub fn scalar(limbs: [u64; 4]) -> Option<Fr> {
    Fr::from_bigint(BigInt::new(limbs))
}

/// Writes a reconstructed element back as 31 bytes; `None` if it does not fit in 31 bytes.
pub fn element_bytes(value: &Fr, out: &mut [u8]) -> Option<()> {
    let limbs = value.into_bigint().0;
    if limbs[3] >> 56 != 0 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (word, limb) in bytes.chunks_exact_mut(8).zip(limbs) {
        word.copy_from_slice(&limb.to_le_bytes());
    }
    out.copy_from_slice(&bytes[..BYTES_PER_ELEMENT]);
    Some(())
}

/// The multiplicative subgroup of size `N = n.next_power_of_two()`; chunk `i` is the evaluation
/// at `omega^i`, so the `n` points are distinct and the encoding is one radix-2 FFT per row.
#[derive(Debug, Clone)]
pub struct Domain {
    size: usize,
    omega: Fr,
    /// `omega^j` for `j < size / 2`.
    twiddles: Vec<Fr>,
}

impl Domain {
    /// The domain for `n` chunks (`n <= 2^32`, BLS12-381's two-adicity).
    pub fn new(n: usize) -> Option<Self> {
        let size = n.next_power_of_two();
        let omega = Fr::get_root_of_unity(size as u64)?;
        let mut twiddles = Vec::with_capacity(size / 2);
        let mut power = Fr::ONE;
        for _ in 0..size / 2 {
            twiddles.push(power);
            power *= omega;
        }
        Some(Self { size, omega, twiddles })
    }

    /// Domain size (a power of two).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The evaluation point of chunk `index`.
    pub fn point(&self, index: usize) -> Fr {
        self.omega.pow([index as u64])
    }

    /// In place: coefficients (`size` of them, low degree first) to evaluations at
    /// `omega^0 .. omega^(size-1)`. Iterative radix-2 decimation in time.
    pub fn fft(&self, values: &mut [Fr]) {
        let size = self.size;
        debug_assert_eq!(values.len(), size);
        let bits = size.trailing_zeros();
        if bits == 0 {
            return;
        }
        for index in 0..size {
            let reversed = index.reverse_bits() >> (usize::BITS - bits);
            if index < reversed {
                values.swap(index, reversed);
            }
        }
        let mut half = 1;
        while half < size {
            let stride = size / (2 * half);
            for block in values.chunks_exact_mut(2 * half) {
                let (low, high) = block.split_at_mut(half);
                for (j, (a, b)) in low.iter_mut().zip(high.iter_mut()).enumerate() {
                    let t = *b * self.twiddles[j * stride];
                    *b = *a - t;
                    *a += t;
                }
            }
            half *= 2;
        }
    }
}

/// The `k x k` matrix taking evaluations at `points` to the coefficients of the unique
/// polynomial of degree `< k` through them: row `j` holds coefficient `j` of each Lagrange basis
/// polynomial. O(k^2): the vanishing polynomial, one synthetic division per point, and one
/// batch inversion of the denominators.
pub fn interpolation_matrix(points: &[Fr]) -> Vec<Vec<Fr>> {
    let k = points.len();
    // vanishing(X) = prod (X - x_m), coefficients low degree first, degree k.
    let mut vanishing = vec![Fr::zero(); k + 1];
    vanishing[0] = Fr::ONE;
    for (degree, point) in points.iter().enumerate() {
        for j in (0..=degree).rev() {
            let lower = vanishing[j];
            vanishing[j + 1] += lower;
            vanishing[j] = -lower * point;
        }
    }
    let mut matrix = vec![vec![Fr::zero(); k]; k];
    let mut denominators = Vec::with_capacity(k);
    let mut quotients = Vec::with_capacity(k);
    for point in points {
        // quotient = vanishing / (X - point), by synthetic division from the top.
        let mut quotient = vec![Fr::zero(); k];
        let mut carry = vanishing[k];
        for j in (0..k).rev() {
            quotient[j] = carry;
            carry = vanishing[j] + carry * point;
        }
        // The denominator is quotient(point) = prod over the other points of (point - x_l).
        let mut value = Fr::zero();
        for coefficient in quotient.iter().rev() {
            value = value * point + coefficient;
        }
        denominators.push(value);
        quotients.push(quotient);
    }
    ark_ff::batch_inversion(&mut denominators);
    for (m, (quotient, inverse)) in quotients.iter().zip(&denominators).enumerate() {
        for (j, coefficient) in quotient.iter().enumerate() {
            matrix[j][m] = *coefficient * inverse;
        }
    }
    matrix
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A uniformly random scalar, for tests here and in `msm`.
    pub(crate) fn random_scalar(rng: &mut impl Rng) -> Fr {
        let mut bytes = [0u8; 64];
        rng.fill(&mut bytes[..]);
        Fr::from_le_bytes_mod_order(&bytes)
    }

    fn naive_evaluate(coefficients: &[Fr], point: Fr) -> Fr {
        coefficients.iter().rev().fold(Fr::zero(), |acc, c| acc * point + c)
    }

    #[test]
    fn fft_matches_naive_evaluation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for n in [2usize, 3, 8, 13] {
            let domain = Domain::new(n).unwrap();
            let coefficients: Vec<Fr> =
                (0..domain.size()).map(|_| random_scalar(&mut rng)).collect();
            let mut values = coefficients.clone();
            domain.fft(&mut values);
            for (index, value) in values.iter().enumerate() {
                assert_eq!(*value, naive_evaluate(&coefficients, domain.point(index)));
            }
        }
    }

    #[test]
    fn interpolation_inverts_evaluation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let domain = Domain::new(16).unwrap();
        let coefficients: Vec<Fr> = (0..5).map(|_| random_scalar(&mut rng)).collect();
        let points: Vec<Fr> = [3usize, 9, 0, 15, 7].iter().map(|&i| domain.point(i)).collect();
        let values: Vec<Fr> = points.iter().map(|&p| naive_evaluate(&coefficients, p)).collect();
        let matrix = interpolation_matrix(&points);
        for (j, row) in matrix.iter().enumerate() {
            let coefficient: Fr = row.iter().zip(&values).map(|(a, y)| *a * y).sum();
            assert_eq!(coefficient, coefficients[j]);
        }
    }

    #[test]
    fn elements_round_trip_through_bytes() {
        let block: Vec<u8> = (0..70u8).collect();
        let mut out = [0u8; 93];
        for index in 0..3 {
            let value = scalar(element(&block, index)).unwrap();
            element_bytes(&value, &mut out[index * 31..(index + 1) * 31]).unwrap();
        }
        assert_eq!(&out[..70], &block[..]);
        assert!(out[70..].iter().all(|&b| b == 0));
        assert!(element_bytes(&-Fr::ONE, &mut [0u8; 31]).is_none());
    }
}
