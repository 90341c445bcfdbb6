//! Batched affine point additions on AVX-512 IFMA: eight additions at once, one per 64-bit lane.
//!
//! Base-field elements are held in radix 2^52, eight limbs (416 bits), in Montgomery form with
//! `R = 2^416`. Multiplication is operand-scanning Montgomery (CIOS) built on `vpmadd52luq` /
//! `vpmadd52huq`, which multiply 52-bit limbs into 64-bit accumulators. Because `R` exceeds the
//! modulus `p` (381 bits) by 35 bits, a product of inputs below `2p` comes out below
//! `p (1 + 2^-33)` with no final subtraction, so intermediate values stay lazily reduced (every
//! input to a product in the kernel is below `2p`); only the coordinates of each sum are brought
//! back below `p`, so that equal `x` coordinates and the identity can be recognised by comparing
//! limbs.
//!
//! Points are [`Point52`]: `x` then `y`, canonical (below `p`), the identity as all zeros (as in
//! arkworks' affine form). A pair whose `x` coordinates agree or that holds the identity is not
//! added here: it is reported back and the caller adds it with arkworks. The kernel runs only
//! after [`available`] confirmed the CPU features; every other machine uses the arkworks path.
//! Results are checked against arkworks in the tests.

use ark_bls12_381::{Fq, G1Affine};
use ark_ff::{BigInteger, Field, PrimeField};
use std::sync::OnceLock;

/// An affine point in radix-2^52 Montgomery form: limbs 0..8 are `x`, 8..16 are `y`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point52(pub [u64; 16]);

const MASK52: u64 = (1 << 52) - 1;

/// The BLS12-381 base-field modulus in 52-bit limbs (checked against arkworks in the tests).
const P52: [u64; 8] = [
    0xeffffffffaaab,
    0xfeb153ffffb9f,
    0x6b0f6241eabff,
    0x12bf6730d2a0f,
    0x764774b84f385,
    0x1ba7b6434bacd,
    0x1ea397fe69a4b,
    0x1a011,
];

/// Constants derived once from the modulus.
struct Constants {
    /// `2^416 mod p` as an arkworks element: converts into radix-52 Montgomery form.
    r52: Fq,
    /// Its inverse: converts back.
    r52_inverse: Fq,
}

fn constants() -> &'static Constants {
    static CONSTANTS: OnceLock<Constants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let r52 = Fq::from(2u64).pow([416]);
        Constants { r52, r52_inverse: r52.inverse().unwrap_or(Fq::ONE) }
    })
}

/// Whether this CPU runs the kernel (AVX-512F and AVX-512 IFMA).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Little-endian bytes (at most 52) to 52-bit limbs.
fn split52(bytes: &[u8]) -> [u64; 8] {
    let mut padded = [0u8; 56];
    padded[..bytes.len().min(52)].copy_from_slice(&bytes[..bytes.len().min(52)]);
    std::array::from_fn(|index| {
        let bit = index * 52;
        let mut word = [0u8; 16];
        let start = bit / 8;
        let end = (start + 16).min(padded.len());
        word[..end - start].copy_from_slice(&padded[start..end]);
        ((u128::from_le_bytes(word) >> (bit % 8)) as u64) & MASK52
    })
}

/// 52-bit limbs (each below 2^52 except perhaps the last) to 52 little-endian bytes.
fn join52(limbs: &[u64]) -> [u8; 52] {
    let mut words = [0u64; 7];
    for (index, &limb) in limbs.iter().enumerate() {
        let bit = index * 52;
        let (word, shift) = (bit / 64, bit % 64);
        let wide = u128::from(limb) << shift;
        words[word] |= wide as u64;
        if word + 1 < words.len() {
            words[word + 1] |= (wide >> 64) as u64;
        }
    }
    let mut bytes = [0u8; 52];
    for (chunk, word) in bytes.chunks_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    bytes
}

/// An arkworks element in radix-52 Montgomery form.
pub fn to52(value: &Fq) -> [u64; 8] {
    split52(&(*value * constants().r52).into_bigint().to_bytes_le())
}

/// Back to arkworks (the limbs may be any value below 2^416, reduced or not).
pub fn from52(limbs: &[u64]) -> Fq {
    Fq::from_le_bytes_mod_order(&join52(limbs)) * constants().r52_inverse
}

impl Point52 {
    /// From an arkworks affine point (the identity maps to all zeros).
    pub fn from_affine(point: &G1Affine) -> Self {
        let mut limbs = [0u64; 16];
        limbs[..8].copy_from_slice(&to52(&point.x));
        limbs[8..].copy_from_slice(&to52(&point.y));
        Self(limbs)
    }

    /// To an arkworks affine point.
    pub fn to_affine(&self) -> G1Affine {
        if self.is_identity() {
            return G1Affine::identity();
        }
        G1Affine::new_unchecked(from52(&self.0[..8]), from52(&self.0[8..]))
    }

    /// The identity, all zeros.
    pub fn is_identity(&self) -> bool {
        self.0.iter().all(|&limb| limb == 0)
    }

    /// `-P`: `y` becomes `p - y` (zero stays zero).
    #[inline]
    pub fn neg(&self) -> Self {
        let mut out = *self;
        if self.0[8..].iter().fold(0, |acc, limb| acc | limb) == 0 {
            return out;
        }
        let mut borrow = 0i64;
        for (limb, modulus) in out.0[8..].iter_mut().zip(P52) {
            let value = modulus as i64 - *limb as i64 + borrow;
            *limb = (value as u64) & MASK52;
            borrow = value >> 52;
        }
        out
    }
}

/// Adds `points[a] + points[b]` into `next[out]` for every pair, eight at a time. Returns the
/// indices (into `pairs`) of the pairs it left alone: equal `x` coordinates or an identity;
/// without the CPU features, every pair. The points must be canonical, as
/// [`Point52::from_affine`] and this function make them: the kernel reads 52 bits per limb and
/// compares coordinates limb by limb, so other limbs give wrong sums (never undefined
/// behaviour: every access is bounds-checked or a 64-byte load from a local array).
pub fn add_pairs(
    points: &[Point52],
    pairs: &[(usize, usize, usize)],
    next: &mut [Point52],
) -> Vec<usize> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available` checked that the CPU has AVX-512F and AVX-512 IFMA.
        return unsafe { kernel::add_pairs(points, pairs, next) };
    }
    let _ = (points, next);
    (0..pairs.len()).collect()
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    //! The AVX-512 IFMA arithmetic. Each `__m512i` holds one limb of eight elements; an element
    //! vector is eight of them.

    use super::{constants, join52, split52, Point52, MASK52, P52};
    use ark_bls12_381::Fq;
    use ark_ff::{BigInteger, Field, PrimeField, Zero};
    use std::arch::x86_64::*;

    type Vector = [__m512i; 8];

    /// The inverse, in radix-52 Montgomery form, of each of eight lazily reduced elements: one
    /// field inversion for all eight (Montgomery's trick again).
    fn invert_lanes(lanes: &[[u64; 8]; 8]) -> Option<[[u64; 8]; 8]> {
        // A lane holds P = x R; its inverse in the same form is x^-1 R = P^-1 R^2.
        let mut values: [Fq; 8] =
            std::array::from_fn(|lane| Fq::from_le_bytes_mod_order(&join52(&lanes[lane])));
        if values.iter().any(|value| value.is_zero()) {
            return None;
        }
        ark_ff::batch_inversion(&mut values);
        let r52_squared = constants().r52.square();
        Some(std::array::from_fn(|lane| {
            split52(&(values[lane] * r52_squared).into_bigint().to_bytes_le())
        }))
    }

    /// Constants in vector form.
    struct Lanes {
        p: Vector,
        two_p: Vector,
        /// `-p^-1 mod 2^52`.
        p_inverse: __m512i,
        /// One in radix-52 Montgomery form (`2^416 mod p`).
        one: Vector,
        mask: __m512i,
    }

    /// `a * m` for a small `m`, in normalised 52-bit limbs.
    fn small_multiple(a: &[u64; 8], m: u64) -> [u64; 8] {
        let mut out = [0u64; 8];
        let mut carry = 0u64;
        for (limb, value) in out.iter_mut().zip(a) {
            let total = value * m + carry;
            *limb = total & MASK52;
            carry = total >> 52;
        }
        out
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn splat(limbs: &[u64; 8]) -> Vector {
        std::array::from_fn(|index| _mm512_set1_epi64(limbs[index] as i64))
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn lanes() -> Lanes {
        let p = P52;
        // -p^-1 mod 2^52 by Newton iteration on the low limb.
        let low = p[0];
        let mut inverse = 1u64;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(low.wrapping_mul(inverse)));
        }
        let p_inverse = inverse.wrapping_neg() & MASK52;
        let one = super::to52(&<ark_bls12_381::Fq as ark_ff::Field>::ONE);
        Lanes {
            p: splat(&p),
            two_p: splat(&small_multiple(&p, 2)),
            p_inverse: _mm512_set1_epi64(p_inverse as i64),
            one: splat(&one),
            mask: _mm512_set1_epi64(MASK52 as i64),
        }
    }

    /// Propagates carries (signed) so every limb but the top one is below 2^52.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn normalize(mut t: Vector, mask: __m512i) -> Vector {
        for index in 0..7 {
            let carry = _mm512_srai_epi64::<52>(t[index]);
            t[index] = _mm512_and_si512(t[index], mask);
            t[index + 1] = _mm512_add_epi64(t[index + 1], carry);
        }
        t
    }

    /// Montgomery product `a b 2^-416 mod p`, below `p (1 + 2^-33)` for inputs below `2p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul(a: &Vector, b: &Vector, c: &Lanes) -> Vector {
        let zero = _mm512_setzero_si512();
        let mut t = [zero; 9];
        for a_limb in a {
            for j in 0..8 {
                t[j] = _mm512_madd52lo_epu64(t[j], *a_limb, b[j]);
                t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], *a_limb, b[j]);
            }
            let m = _mm512_madd52lo_epu64(zero, t[0], c.p_inverse);
            for j in 0..8 {
                t[j] = _mm512_madd52lo_epu64(t[j], m, c.p[j]);
                t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], m, c.p[j]);
            }
            let carry = _mm512_srli_epi64::<52>(t[0]);
            for j in 0..8 {
                t[j] = t[j + 1];
            }
            t[8] = zero;
            t[0] = _mm512_add_epi64(t[0], carry);
        }
        normalize([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]], c.mask)
    }

    /// `a + k - b` for a multiple `k` of `p` above `b`, normalised.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn add_sub(a: &Vector, k: &Vector, b: &Vector, mask: __m512i) -> Vector {
        let t: Vector = std::array::from_fn(|index| {
            _mm512_sub_epi64(_mm512_add_epi64(a[index], k[index]), b[index])
        });
        normalize(t, mask)
    }

    /// `v - m` where that is not negative, else `v`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn subtract_if_not_below(v: &Vector, m: &Vector, mask: __m512i) -> Vector {
        let t: Vector = std::array::from_fn(|index| _mm512_sub_epi64(v[index], m[index]));
        let t = normalize(t, mask);
        let negative = _mm512_cmplt_epi64_mask(t[7], _mm512_setzero_si512());
        std::array::from_fn(|index| _mm512_mask_blend_epi64(negative, t[index], v[index]))
    }

    /// Reduces a normalised value below `4p` to below `p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn canonical(v: &Vector, c: &Lanes) -> Vector {
        let v = subtract_if_not_below(v, &c.two_p, c.mask);
        subtract_if_not_below(&v, &c.p, c.mask)
    }

    /// Lanes where two canonical elements are equal.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn equal(a: &Vector, b: &Vector) -> __mmask8 {
        let mut mask = 0xff;
        for index in 0..8 {
            mask &= _mm512_cmpeq_epi64_mask(a[index], b[index]);
        }
        mask
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn is_zero(a: &Vector) -> __mmask8 {
        let zero = _mm512_setzero_si512();
        let mut mask = 0xff;
        for limb in a {
            mask &= _mm512_cmpeq_epi64_mask(*limb, zero);
        }
        mask
    }

    /// Limbs `offset..offset + 8` of eight points, one point per lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn load(points: &[&Point52; 8], offset: usize) -> Vector {
        std::array::from_fn(|limb| {
            let lanes: [u64; 8] = std::array::from_fn(|lane| points[lane].0[offset + limb]);
            // SAFETY: `lanes` is 64 readable bytes; the load is unaligned.
            unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
        })
    }

    /// One `[u64; 8]` of limbs per lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn store(value: &Vector) -> [[u64; 8]; 8] {
        let mut limbs = [[0u64; 8]; 8];
        for (limb, vector) in value.iter().enumerate() {
            let mut lanes = [0u64; 8];
            // SAFETY: `lanes` is 64 writable bytes; the store is unaligned.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), *vector) };
            for (lane, word) in lanes.iter().enumerate() {
                limbs[lane][limb] = *word;
            }
        }
        limbs
    }

    struct Group {
        x1: Vector,
        y1: Vector,
        x2: Vector,
        y2: Vector,
        denominator: Vector,
        prefix: Vector,
        special: __mmask8,
        /// Pairs in this group (8, or fewer in the last).
        len: usize,
    }

    /// See [`super::add_pairs`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512 IFMA.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn add_pairs(
        points: &[Point52],
        pairs: &[(usize, usize, usize)],
        next: &mut [Point52],
    ) -> Vec<usize> {
        let c = lanes();
        let mut special_pairs = Vec::new();
        let mut groups = Vec::with_capacity(pairs.len().div_ceil(8));
        let mut product = c.one;
        for group_pairs in pairs.chunks(8) {
            // A short last group repeats its first pair in the spare lanes.
            let pick = |lane: usize| group_pairs.get(lane).unwrap_or(&group_pairs[0]);
            let left: [&Point52; 8] = std::array::from_fn(|lane| &points[pick(lane).0]);
            let right: [&Point52; 8] = std::array::from_fn(|lane| &points[pick(lane).1]);
            let (x1, y1) = (load(&left, 0), load(&left, 8));
            let (x2, y2) = (load(&right, 0), load(&right, 8));
            let special =
                equal(&x1, &x2) | (is_zero(&x1) & is_zero(&y1)) | (is_zero(&x2) & is_zero(&y2));
            let difference = add_sub(&x2, &c.p, &x1, c.mask);
            let denominator: Vector = std::array::from_fn(|index| {
                _mm512_mask_blend_epi64(special, difference[index], c.one[index])
            });
            groups.push(Group {
                x1,
                y1,
                x2,
                y2,
                denominator,
                prefix: product,
                special,
                len: group_pairs.len(),
            });
            product = mul(&product, &denominator, &c);
        }
        let Some(inverses) = invert_lanes(&store(&product)) else {
            return (0..pairs.len()).collect();
        };
        let mut inverse: Vector = std::array::from_fn(|limb| {
            let lanes: [u64; 8] = std::array::from_fn(|lane| inverses[lane][limb]);
            // SAFETY: `lanes` is 64 readable bytes; the load is unaligned.
            unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
        });
        for (group_index, group) in groups.iter().enumerate().rev() {
            let denominator_inverse = mul(&inverse, &group.prefix, &c);
            inverse = mul(&inverse, &group.denominator, &c);
            let rise = add_sub(&group.y2, &c.p, &group.y1, c.mask);
            let slope = mul(&rise, &denominator_inverse, &c);
            let slope_squared = mul(&slope, &slope, &c);
            // slope^2 < p (1 + 2^-33) and x1 + x2 < 2p, so x lies in (0, 3p + 1): below 4p.
            let x: Vector = std::array::from_fn(|index| {
                _mm512_sub_epi64(
                    _mm512_sub_epi64(
                        _mm512_add_epi64(slope_squared[index], c.two_p[index]),
                        group.x1[index],
                    ),
                    group.x2[index],
                )
            });
            let x = canonical(&normalize(x, c.mask), &c);
            let run = add_sub(&group.x1, &c.p, &x, c.mask);
            // slope * run < p (1 + 2^-33), so y lies in (0, 2p + 1): below 4p.
            let y = canonical(&add_sub(&mul(&slope, &run, &c), &c.p, &group.y1, c.mask), &c);
            let (xs, ys) = (store(&x), store(&y));
            for lane in 0..group.len {
                let pair_index = group_index * 8 + lane;
                if group.special & (1 << lane) != 0 {
                    special_pairs.push(pair_index);
                    continue;
                }
                let out = &mut next[pairs[pair_index].2];
                out.0[..8].copy_from_slice(&xs[lane]);
                out.0[8..].copy_from_slice(&ys[lane]);
            }
        }
        special_pairs
    }

    #[cfg(test)]
    mod tests {
        //! The vector field arithmetic against arkworks, lane by lane, on edge values (0, 1,
        //! 2, p - 1, p - 2) and random ones, canonical and lazily reduced (plus p). Run only
        //! where the CPU has AVX-512 IFMA; elsewhere they say so and pass.

        use super::super::{available, from52, to52};
        use super::*;
        use ark_bls12_381::Fq;
        use ark_ff::{Field, PrimeField};
        use rand::{Rng, SeedableRng};

        fn values() -> Vec<Fq> {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(52);
            let mut values =
                vec![Fq::from(0u64), Fq::ONE, Fq::from(2u64), -Fq::ONE, -Fq::from(2u64)];
            values.extend((0..27).map(|_| {
                let mut bytes = [0u8; 64];
                rng.fill(&mut bytes[..]);
                Fq::from_le_bytes_mod_order(&bytes)
            }));
            values
        }

        /// `limbs + p`, normalised: the same element, lazily reduced.
        fn plus_p(limbs: &[u64; 8]) -> [u64; 8] {
            let mut out = [0u64; 8];
            let mut carry = 0;
            for (index, limb) in out.iter_mut().enumerate() {
                let total = limbs[index] + P52[index] + carry;
                *limb = total & MASK52;
                carry = total >> 52;
            }
            out
        }

        /// Normalised limbs, compared as integers.
        fn below(a: &[u64; 8], b: &[u64; 8]) -> bool {
            a.iter().rev().cmp(b.iter().rev()).is_lt()
        }

        /// Eight elements per vector, one per lane.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn vector(lanes: &[[u64; 8]; 8]) -> Vector {
            std::array::from_fn(|limb| {
                let words: [u64; 8] = std::array::from_fn(|lane| lanes[lane][limb]);
                // SAFETY: `words` is 64 readable bytes; the load is unaligned.
                unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
            })
        }

        /// Inputs in groups of eight lanes: every value canonical and plus p, in both operands.
        fn lanes_of(values: &[Fq], lazy: bool) -> Vec<[[u64; 8]; 8]> {
            let limbs: Vec<[u64; 8]> = values
                .iter()
                .map(|value| if lazy { plus_p(&to52(value)) } else { to52(value) })
                .collect();
            limbs
                .chunks(8)
                .map(|group| std::array::from_fn(|lane| group[lane % group.len()]))
                .collect()
        }

        #[test]
        fn kernel_multiplication_matches_arkworks() {
            if !available() {
                eprintln!("no AVX-512 IFMA on this CPU: the kernel is not tested");
                return;
            }
            let values = values();
            let two_p = small_multiple(&P52, 2);
            for (left_lazy, right_lazy) in [(false, false), (true, false), (true, true)] {
                for shift in 0..values.len() {
                    let right_values: Vec<Fq> =
                        (0..values.len()).map(|i| values[(i + shift) % values.len()]).collect();
                    let left = lanes_of(&values, left_lazy);
                    let right = lanes_of(&right_values, right_lazy);
                    for (group, (a, b)) in left.iter().zip(&right).enumerate() {
                        // SAFETY: `available()` confirmed AVX-512F and AVX-512 IFMA.
                        let product = unsafe { store(&mul(&vector(a), &vector(b), &lanes())) };
                        for (lane, product) in product.iter().enumerate() {
                            let index = (group * 8 + lane) % values.len();
                            let expected = values[index] * right_values[index];
                            assert_eq!(from52(product), expected, "lane {index}");
                            assert!(below(product, &two_p), "product not below 2p");
                            assert!(product[..7].iter().all(|&limb| limb <= MASK52));
                        }
                    }
                }
            }
        }

        #[test]
        fn kernel_reduction_and_subtraction_match_arkworks() {
            if !available() {
                eprintln!("no AVX-512 IFMA on this CPU: the kernel is not tested");
                return;
            }
            let values = values();
            let canonical_lanes = lanes_of(&values, false);
            let lazy_lanes = lanes_of(&values, true);
            let reversed: Vec<Fq> = values.iter().rev().copied().collect();
            let reversed_lanes = lanes_of(&reversed, false);
            for (group, (a, lazy)) in canonical_lanes.iter().zip(&lazy_lanes).enumerate() {
                let b = &reversed_lanes[group];
                // SAFETY: `available()` confirmed AVX-512F and AVX-512 IFMA.
                let (reduced, difference, from_three_p) = unsafe {
                    let c = lanes();
                    let lazy = vector(lazy);
                    // x + p + 2p lies in [3p, 4p): both subtractions of `canonical` are taken.
                    let three_p = add_sub(&lazy, &c.two_p, &zero_vector(), c.mask);
                    (
                        store(&canonical(&lazy, &c)),
                        store(&canonical(&add_sub(&vector(a), &c.p, &vector(b), c.mask), &c)),
                        store(&canonical(&three_p, &c)),
                    )
                };
                for lane in 0..8 {
                    let index = (group * 8 + lane) % values.len();
                    assert_eq!(reduced[lane], a[lane], "canonical(x + p), lane {index}");
                    assert_eq!(from_three_p[lane], a[lane], "canonical(x + 3p), lane {index}");
                    assert_eq!(
                        from52(&difference[lane]),
                        values[index] - reversed[index],
                        "x - y, lane {index}"
                    );
                    assert!(below(&difference[lane], &P52), "x - y not canonical");
                }
            }
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn zero_vector() -> Vector {
            [_mm512_setzero_si512(); 8]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::Zero;

    #[test]
    fn modulus_limbs_match_arkworks() {
        assert_eq!(P52, split52(&Fq::MODULUS.to_bytes_le()));
    }

    #[test]
    fn limb_conversions_round_trip() {
        let bytes: Vec<u8> = (0..52u8).map(|b| b.wrapping_mul(37).wrapping_add(11)).collect();
        let limbs = split52(&bytes);
        assert!(limbs.iter().all(|&limb| limb <= MASK52));
        assert_eq!(join52(&limbs).to_vec(), bytes);
        for value in [Fq::zero(), Fq::ONE, -Fq::ONE, Fq::from(123_456_789u64)] {
            assert_eq!(from52(&to52(&value)), value);
        }
    }
}
