//! Fixed-base multi-scalar multiplication: `sum_r s_r G_r` against the precomputed tables.
//!
//! Each scalar is cut into signed `c`-bit digits `d_w` in `[-2^(c-1), 2^(c-1)]`, so
//! `s_r G_r = sum_w d_w (2^(c w) G_r)` and every table point `±2^(c w) G_r` goes into bucket
//! `|d_w|`. With the shifts precomputed there is one set of `2^(c-1)` buckets for all windows
//! and no doublings; the answer is `sum_b b * bucket_b`.
//!
//! Buckets are summed in affine coordinates, pairwise, in rounds: each round adds disjoint
//! pairs within every bucket, and all additions of a batch share one field inversion
//! (Montgomery's batch-inversion trick), so an addition costs about 6 field multiplications
//! instead of about 11 for a mixed projective one. Pairs whose `x` coordinates agree (a
//! doubling, or a point and its negation) and the identity are handled on the side in
//! projective form, so the result is exact for every input.
//!
//! The additions run on AVX-512 IFMA, eight at a time, where the CPU has it ([`super::ifma`]),
//! and in arkworks' scalar arithmetic otherwise; both give the same points.

use super::ifma::{self, Point52};
use super::setup::Setup;
use ark_bls12_381::{Fq, G1Affine, G1Projective};
use ark_ec::CurveGroup;
use ark_ff::{AdditiveGroup, Field, Zero};

/// Additions whose inversions are batched together: large enough that the inversion (and, on
/// the IFMA path, the conversions around it) is noise, small enough that the batch's working
/// set (about 3 KB per eight pairs on the IFMA path) stays in L2.
const BATCH: usize = 4096;

/// How many table entries ahead the bucket-order gather prefetches.
const PREFETCH_DISTANCE: usize = 8;

/// Hints the CPU to bring `value` into cache (a no-op off x86-64).
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and never changes memory, and the
    // pointer comes from a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let pointer = (value as *const T).cast::<i8>();
        _mm_prefetch::<_MM_HINT_T0>(pointer);
        _mm_prefetch::<_MM_HINT_T0>(pointer.wrapping_add(64));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Marks a negated table entry in the bucket order (tables hold fewer than 2^31 points).
const NEGATED: u32 = 1 << 31;

/// `sum_r scalars[r] G_r`, for little-endian scalars below `2^bits` (`bits <= 255`) and
/// `scalars.len() <= setup.rows`.
pub fn commit(setup: &Setup, scalars: &[[u64; 4]], bits: u32) -> G1Projective {
    match &setup.table52 {
        Some(table) => commit_with(setup, table, scalars, bits),
        None => commit_with(setup, &setup.table, scalars, bits),
    }
}

/// An affine point representation the bucket sums can run in.
trait BucketPoint: Copy + Send + Sync {
    /// Scratch reused between batches.
    type Scratch: Default;
    fn identity() -> Self;
    fn is_identity(&self) -> bool;
    fn negate(&self) -> Self;
    fn to_affine(&self) -> G1Affine;
    /// `points[a] + points[b] -> next[out]` for every pair.
    fn add_pairs(
        points: &[Self],
        pairs: &[(usize, usize, usize)],
        next: &mut [Self],
        scratch: &mut Self::Scratch,
    );
}

fn commit_with<P: BucketPoint>(
    setup: &Setup,
    table: &[P],
    scalars: &[[u64; 4]],
    bits: u32,
) -> G1Projective {
    let c = setup.window_bits;
    let windows = ((bits as usize + 1).div_ceil(c as usize)).min(setup.windows);
    let buckets = 1usize << (c - 1);
    // Callers size the setup from the commitment's rows and check each chunk's length against
    // them; scalars beyond the setup would silently fall outside the commitment.
    assert!(
        scalars.len() <= setup.rows,
        "{} scalars for a setup of {} rows",
        scalars.len(),
        setup.rows
    );
    let rows = scalars.len();

    // Signed digits, row-major.
    let mut digits = vec![0i32; rows * windows];
    let mut counts = vec![0u32; buckets];
    for (scalar, row_digits) in scalars[..rows].iter().zip(digits.chunks_exact_mut(windows)) {
        let mut carry = 0u64;
        for (window, digit) in row_digits.iter_mut().enumerate() {
            let raw = window_bits(scalar, window * c as usize, c) + carry;
            if raw > (1 << (c - 1)) {
                *digit = raw as i32 - (1 << c);
                carry = 1;
            } else {
                *digit = raw as i32;
                carry = 0;
            }
            if *digit != 0 {
                counts[digit.unsigned_abs() as usize - 1] += 1;
            }
        }
    }

    // Points sorted into buckets: segment b of `points` holds bucket b's points.
    let mut starts = Vec::with_capacity(buckets + 1);
    let mut total = 0usize;
    for count in &counts {
        starts.push(total);
        total += *count as usize;
    }
    starts.push(total);
    // Table entries in bucket order (the top bit marks a negated point), then the points.
    let mut cursor = starts[..buckets].to_vec();
    let mut order = vec![0u32; total];
    for (row, row_digits) in digits.chunks_exact(windows).enumerate() {
        for (window, &digit) in row_digits.iter().enumerate() {
            if digit == 0 {
                continue;
            }
            let bucket = digit.unsigned_abs() as usize - 1;
            let entry = (row * setup.windows + window) as u32;
            order[cursor[bucket]] = if digit < 0 { entry | NEGATED } else { entry };
            cursor[bucket] += 1;
        }
    }
    drop(digits);
    // Bucket order reads the table at random: prefetch a few entries ahead.
    let points: Vec<P> = order
        .iter()
        .enumerate()
        .map(|(index, &entry)| {
            if let Some(&ahead) = order.get(index + PREFETCH_DISTANCE) {
                prefetch(&table[(ahead & !NEGATED) as usize]);
            }
            let point = &table[(entry & !NEGATED) as usize];
            if entry & NEGATED != 0 {
                point.negate()
            } else {
                *point
            }
        })
        .collect();
    drop(order);

    let segments: Vec<(usize, usize)> =
        (0..buckets).map(|b| (starts[b], starts[b + 1] - starts[b])).collect();
    weighted_bucket_sum(&sum_segments(points, segments))
}

/// `sum_b (b + 1) buckets[b]`, mostly in batched affine additions.
///
/// With magnitudes `d = b + 1` split as `d = hi 2^h + lo`, the sum is
/// `sum_lo lo S_lo + 2^h sum_hi hi R_hi`, where `S_lo` sums the buckets with low part `lo` and
/// `R_hi` those with high part `hi`. Both families of sums are independent additions (one
/// batched pass); only the two short weighted sums, about `2^(h+1)` projective additions, remain
/// sequential, instead of two per bucket.
fn weighted_bucket_sum<P: BucketPoint>(buckets: &[P]) -> G1Projective {
    let top = buckets.len();
    let h = (usize::BITS - top.leading_zeros()) / 2;
    let lo_count = 1usize << h;
    let hi_count = (top >> h) + 1;
    let mut points = Vec::with_capacity(2 * top);
    let mut segments = Vec::with_capacity(lo_count + hi_count);
    for lo in 0..lo_count {
        let start = points.len();
        let magnitudes = (lo..=top).step_by(lo_count).filter(|&d| d > 0);
        points.extend(magnitudes.map(|d| buckets[d - 1]).filter(|p| !p.is_identity()));
        segments.push((start, points.len() - start));
    }
    for hi in 0..hi_count {
        let start = points.len();
        let magnitudes = (hi << h).max(1)..=((hi << h) + lo_count - 1).min(top);
        points.extend(magnitudes.map(|d| buckets[d - 1]).filter(|p| !p.is_identity()));
        segments.push((start, points.len() - start));
    }
    let sums: Vec<G1Affine> =
        sum_segments(points, segments).iter().map(BucketPoint::to_affine).collect();
    let (low, high) = sums.split_at(lo_count);
    let mut total = weighted_sum(high);
    for _ in 0..h {
        total.double_in_place();
    }
    total + weighted_sum(low)
}

/// `sum_i i points[i]`, by running sums.
fn weighted_sum(points: &[G1Affine]) -> G1Projective {
    let mut running = G1Projective::zero();
    let mut total = G1Projective::zero();
    for point in points.iter().skip(1).rev() {
        running += point;
        total += running;
    }
    total
}

/// The sum of each segment of `points` (identity for an empty one), by rounds of pairwise
/// batched additions. Two buffers take turns as source and destination.
fn sum_segments<P: BucketPoint>(mut points: Vec<P>, mut segments: Vec<(usize, usize)>) -> Vec<P> {
    let mut scratch = P::Scratch::default();
    let mut next = vec![P::identity(); points.len().div_ceil(2) + segments.len()];
    while segments.iter().any(|&(_, len)| len > 1) {
        segments = halve(&points, &segments, &mut next, &mut scratch);
        std::mem::swap(&mut points, &mut next);
    }
    segments
        .iter()
        .map(|&(start, len)| if len == 1 { points[start] } else { P::identity() })
        .collect()
}

/// Zero test on the limbs (the derived equality compiles to a `memcmp` call).
#[inline(always)]
fn is_zero(value: &Fq) -> bool {
    value.0 .0.iter().fold(0, |acc, limb| acc | limb) == 0
}

/// The `c` bits of `scalar` from bit `offset` (zero past bit 255).
fn window_bits(scalar: &[u64; 4], offset: usize, c: u32) -> u64 {
    let limb = offset / 64;
    if limb >= 4 {
        return 0;
    }
    let shift = offset % 64;
    let mut value = scalar[limb] >> shift;
    if shift + c as usize > 64 && limb + 1 < 4 {
        value |= scalar[limb + 1] << (64 - shift);
    }
    value & ((1u64 << c) - 1)
}

/// One round: adds disjoint pairs inside every segment of `points` into `next`, returning the
/// new segments (each halves, rounding up; an odd last point moves over unchanged).
fn halve<P: BucketPoint>(
    points: &[P],
    segments: &[(usize, usize)],
    next: &mut [P],
    scratch: &mut P::Scratch,
) -> Vec<(usize, usize)> {
    let mut next_segments = Vec::with_capacity(segments.len());
    let mut pairs = Vec::with_capacity(BATCH);
    let mut out = 0usize;
    for &(start, len) in segments {
        next_segments.push((out, len.div_ceil(2)));
        for pair in 0..len / 2 {
            pairs.push((start + 2 * pair, start + 2 * pair + 1, out));
            out += 1;
            if pairs.len() == BATCH {
                P::add_pairs(points, &pairs, next, scratch);
                pairs.clear();
            }
        }
        if len % 2 == 1 {
            next[out] = points[start + len - 1];
            out += 1;
        }
    }
    P::add_pairs(points, &pairs, next, scratch);
    next_segments
}

/// Scratch of the arkworks path: `x_b - x_a` per pair (zero for a pair handled on the side)
/// and the prefix products of the nonzero ones.
#[derive(Default)]
struct ArkScratch {
    denominators: Vec<Fq>,
    prefix: Vec<Fq>,
}

impl BucketPoint for G1Affine {
    type Scratch = ArkScratch;

    fn identity() -> Self {
        G1Affine::identity()
    }

    /// The identity is `(0, 0)` in arkworks' BLS12-381 G1 affine form.
    #[inline(always)]
    fn is_identity(&self) -> bool {
        is_zero(&self.x) && is_zero(&self.y)
    }

    fn negate(&self) -> Self {
        -*self
    }

    fn to_affine(&self) -> G1Affine {
        *self
    }

    fn add_pairs(
        points: &[Self],
        pairs: &[(usize, usize, usize)],
        next: &mut [Self],
        scratch: &mut ArkScratch,
    ) {
        scratch.denominators.clear();
        scratch.prefix.clear();
        let mut product = Fq::ONE;
        for &(a, b, _) in pairs {
            let (p, q) = (&points[a], &points[b]);
            // x_p == x_q covers doubling, negation and two identities; an identity with a
            // finite point is the other check.
            let denominator = q.x - p.x;
            let special = is_zero(&denominator) || p.is_identity() || q.is_identity();
            let denominator = if special { Fq::ZERO } else { denominator };
            scratch.denominators.push(denominator);
            scratch.prefix.push(product);
            if !special {
                product *= denominator;
            }
        }
        // The product of the nonzero denominators is invertible.
        let mut inverse = product.inverse().unwrap_or(Fq::ONE);
        for (index, &(a, b, out)) in pairs.iter().enumerate().rev() {
            let (p, q) = (&points[a], &points[b]);
            let denominator = scratch.denominators[index];
            next[out] = if is_zero(&denominator) {
                (*p + *q).into_affine()
            } else {
                let denominator_inverse = inverse * scratch.prefix[index];
                inverse *= denominator;
                let lambda = (q.y - p.y) * denominator_inverse;
                let x = lambda.square() - p.x - q.x;
                let y = lambda * (p.x - x) - p.y;
                G1Affine::new_unchecked(x, y)
            };
        }
    }
}

impl BucketPoint for Point52 {
    type Scratch = ();

    fn identity() -> Self {
        Point52::default()
    }

    fn is_identity(&self) -> bool {
        Point52::is_identity(self)
    }

    fn negate(&self) -> Self {
        self.neg()
    }

    fn to_affine(&self) -> G1Affine {
        Point52::to_affine(self)
    }

    fn add_pairs(points: &[Self], pairs: &[(usize, usize, usize)], next: &mut [Self], _: &mut ()) {
        if pairs.is_empty() {
            return;
        }
        for index in ifma::add_pairs(points, pairs, next) {
            let (a, b, out) = pairs[index];
            let sum = points[a].to_affine() + points[b].to_affine();
            next[out] = Point52::from_affine(&sum.into_affine());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svid::semi_avid::setup::generator;
    use ark_bls12_381::Fr;
    use ark_ec::VariableBaseMSM;
    use ark_ff::PrimeField;
    use rand::SeedableRng;

    use crate::svid::semi_avid::field::tests::random_scalar;

    fn naive(scalars: &[[u64; 4]]) -> G1Projective {
        let bases: Vec<G1Affine> = (0..scalars.len()).map(|r| generator(r as u64)).collect();
        let scalars: Vec<Fr> =
            scalars.iter().map(|s| Fr::from_bigint(ark_ff::BigInt::new(*s)).unwrap()).collect();
        G1Projective::msm(&bases, &scalars).unwrap()
    }

    #[test]
    fn matches_the_reference_msm() {
        for ifma_table in [false, true] {
            matches_the_reference_msm_with(&Setup::build_with(40, ifma_table));
        }
    }

    fn matches_the_reference_msm_with(setup: &Setup) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let random: Vec<[u64; 4]> =
            (0..40).map(|_| random_scalar(&mut rng).into_bigint().0).collect();
        let minus_one = (-Fr::from(1u64)).into_bigint().0;
        let mut edge = vec![[0u64; 4], [1, 0, 0, 0], minus_one, [u64::MAX, u64::MAX, u64::MAX, 0]];
        // Many equal scalars: one bucket per window fills up and needs several rounds.
        edge.extend(std::iter::repeat_n([0x5555_5555_5555_5555u64; 4], 30).map(|mut s| {
            s[3] >>= 2;
            s
        }));
        for scalars in [&random[..], &edge[..], &random[..1], &[]] {
            assert_eq!(commit(setup, scalars, 255), naive(scalars));
        }
        assert_eq!(commit(setup, &[[0u64; 4]; 5], 255), G1Projective::zero());
    }

    #[test]
    fn pair_additions_cover_doubling_negation_and_identity() {
        let p = generator(0);
        let q = generator(1);
        let points = vec![p, p, p, -p, G1Affine::identity(), q, p, q, q, G1Affine::identity()];
        let pairs: Vec<(usize, usize, usize)> =
            (0..5).map(|pair| (2 * pair, 2 * pair + 1, pair)).collect();
        let expected = [(p + p).into_affine(), G1Affine::identity(), q, (p + q).into_affine(), q];
        let mut next = vec![G1Affine::identity(); 5];
        G1Affine::add_pairs(&points, &pairs, &mut next, &mut ArkScratch::default());
        assert_eq!(next, expected);
        let points52: Vec<Point52> = points.iter().map(Point52::from_affine).collect();
        let mut next52 = vec![Point52::default(); 5];
        Point52::add_pairs(&points52, &pairs, &mut next52, &mut ());
        let next52: Vec<G1Affine> = next52.iter().map(Point52::to_affine).collect();
        assert_eq!(next52, expected);
    }

    #[test]
    fn ifma_additions_match_arkworks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let points: Vec<G1Affine> =
            (0..203).map(|i| (generator(i % 17) * random_scalar(&mut rng)).into_affine()).collect();
        // 101 pairs: twelve full groups of eight and a short one, some pairs special.
        let mut pairs: Vec<(usize, usize, usize)> =
            (0..101).map(|pair| (2 * pair, 2 * pair + 1, pair)).collect();
        pairs[7] = (3, 3, 7);
        pairs[50] = (4, 4, 50);
        let mut negated = points.clone();
        negated[5] = -points[4];
        pairs[60] = (4, 5, 60);
        let mut expected = vec![G1Affine::identity(); 101];
        G1Affine::add_pairs(&negated, &pairs, &mut expected, &mut ArkScratch::default());
        let points52: Vec<Point52> = negated.iter().map(Point52::from_affine).collect();
        if ifma::available() {
            // The kernel itself adds every pair but the special ones: two doublings and two
            // negations (pair 2 is points 4 and 5 too).
            let mut kernel_only = vec![Point52::default(); 101];
            let mut left_alone = ifma::add_pairs(&points52, &pairs, &mut kernel_only);
            left_alone.sort_unstable();
            assert_eq!(left_alone, [2, 7, 50, 60]);
        } else {
            eprintln!("no AVX-512 IFMA on this CPU: only the fallback is tested");
        }
        let mut next52 = vec![Point52::default(); 101];
        Point52::add_pairs(&points52, &pairs, &mut next52, &mut ());
        for (index, (got, want)) in next52.iter().zip(&expected).enumerate() {
            assert_eq!(got.to_affine(), *want, "pair {index}");
            assert_eq!(*got, Point52::from_affine(want), "pair {index} is not canonical");
        }
        assert!(next52[60].is_identity());
    }

    #[test]
    fn ifma_additions_match_arkworks_on_many_points() {
        // A walk of sums gives thousands of distinct points cheaply.
        let steps: Vec<G1Projective> = (0..17).map(|i| generator(i).into()).collect();
        let mut walk = Vec::with_capacity(6_001);
        let mut point = G1Projective::from(generator(99));
        for index in 0..6_001 {
            point += steps[index * 7 % 17];
            walk.push(point);
        }
        let points = G1Projective::normalize_batch(&walk);
        let pairs: Vec<(usize, usize, usize)> =
            (0..3_000).map(|pair| (2 * pair + 1, 2 * pair, pair)).collect();
        let mut expected = vec![G1Affine::identity(); pairs.len()];
        G1Affine::add_pairs(&points, &pairs, &mut expected, &mut ArkScratch::default());
        let points52: Vec<Point52> = points.iter().map(Point52::from_affine).collect();
        let mut next52 = vec![Point52::default(); pairs.len()];
        Point52::add_pairs(&points52, &pairs, &mut next52, &mut ());
        for (index, (got, want)) in next52.iter().zip(&expected).enumerate() {
            assert_eq!(*got, Point52::from_affine(want), "pair {index}");
        }
    }

    #[test]
    fn both_arithmetic_paths_agree_on_a_larger_commitment() {
        let rows = 300;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let scalars: Vec<[u64; 4]> =
            (0..rows).map(|_| random_scalar(&mut rng).into_bigint().0).collect();
        let scalar_path = commit(&Setup::build_with(rows, false), &scalars, 255);
        assert_eq!(commit(&Setup::build_with(rows, true), &scalars, 255), scalar_path);
    }
}
