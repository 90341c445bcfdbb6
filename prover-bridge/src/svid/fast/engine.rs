//! The GF(2^16) arithmetic under the fast profile's Reed-Solomon code: reed-solomon-simd's
//! FFT-based code, run on GFNI + AVX-512 where the CPU has them.
//!
//! reed-solomon-simd (Leopard-RS) stores each 64-byte block of a shard as the low bytes of 32
//! field elements followed by their high bytes. Its best x86 engine multiplies with AVX2 nibble
//! lookups, about twenty instructions per 32 elements, and passes over the shards once per
//! butterfly. Multiplying by a constant is a GF(2)-linear map, so with GFNI the product of a
//! block held in one 512-bit register is two 8x8 bit-matrix products (`vgf2p8affineqb`), a swap
//! of the register's halves and an XOR: four instructions. This engine also runs two FFT layers
//! per pass, with the four shards they touch in registers. It follows the library's FFT and
//! IFFT step for step (same twiddles, same truncation), so its output is bit-identical to the
//! library's engines: the tests below compare every code path against them.
//!
//! [`CodecEngine::new`] picks this engine only after runtime detection of AVX-512F,
//! AVX-512BW and GFNI; every other CPU, and every other architecture, gets the library's
//! [`DefaultEngine`] (AVX2, SSSE3, NEON or portable).

use reed_solomon_simd::engine::{DefaultEngine, Engine, GfElement, ShardsRefMut, GF_ORDER};

/// The engine the fast profile codes with.
pub enum CodecEngine {
    /// GFNI + AVX-512.
    #[cfg(target_arch = "x86_64")]
    Gfni(gfni::GfniEngine),
    /// reed-solomon-simd's own choice for this CPU.
    Default(DefaultEngine),
}

impl CodecEngine {
    /// The fastest engine this CPU runs.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(engine) = gfni::GfniEngine::detect() {
            return Self::Gfni(engine);
        }
        Self::Default(DefaultEngine::new())
    }

    /// Whether this is the GFNI engine.
    #[cfg(test)]
    pub fn is_gfni(&self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Gfni(_) => true,
            Self::Default(_) => false,
        }
    }
}

impl Default for CodecEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine for CodecEngine {
    fn fft(
        &self,
        data: &mut ShardsRefMut<'_>,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Gfni(engine) => engine.fft(data, pos, size, truncated_size, skew_delta),
            Self::Default(engine) => engine.fft(data, pos, size, truncated_size, skew_delta),
        }
    }

    fn ifft(
        &self,
        data: &mut ShardsRefMut<'_>,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Gfni(engine) => engine.ifft(data, pos, size, truncated_size, skew_delta),
            Self::Default(engine) => engine.ifft(data, pos, size, truncated_size, skew_delta),
        }
    }

    fn mul(&self, x: &mut [[u8; 64]], log_m: GfElement) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Gfni(engine) => engine.mul(x, log_m),
            Self::Default(engine) => engine.mul(x, log_m),
        }
    }

    fn eval_poly(erasures: &mut [GfElement; GF_ORDER], truncated_size: usize) {
        // Decoding only, once per decode call: the library's own detection is fine here.
        DefaultEngine::eval_poly(erasures, truncated_size);
    }
}

#[cfg(target_arch = "x86_64")]
mod gfni {
    use reed_solomon_simd::engine::{
        tables, Engine, GfElement, ShardsRefMut, GF_MODULUS, GF_ORDER,
    };
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    /// Multiplication by one field constant, as four 8x8 GF(2) matrices in `vgf2p8affineqb`
    /// form: `[low <- low, low <- high, high <- low, high <- high]`.
    type Matrices = [u64; 4];

    /// The matrices for every `log_m` (2 MiB), built on first use.
    fn matrices() -> &'static [Matrices] {
        static MATRICES: OnceLock<Box<[Matrices]>> = OnceLock::new();
        MATRICES.get_or_init(|| {
            let exp_log = tables::get_exp_log();
            (0..GF_ORDER)
                .map(|log_m| {
                    let columns: [GfElement; 16] = std::array::from_fn(|bit| {
                        tables::mul(1 << bit, log_m as GfElement, &exp_log.exp, &exp_log.log)
                    });
                    [
                        bit_matrix(&columns, 0, 0),
                        bit_matrix(&columns, 0, 8),
                        bit_matrix(&columns, 8, 0),
                        bit_matrix(&columns, 8, 8),
                    ]
                })
                .collect()
        })
    }

    /// The block of a 16x16 GF(2) matrix (given by its columns) from input bits
    /// `from..from + 8` to output bits `to..to + 8`, laid out as `vgf2p8affineqb` reads it:
    /// the row of output bit `i` in byte `7 - i`, input bit `j` as bit `j` of that row.
    pub(super) fn bit_matrix(columns: &[GfElement; 16], to: usize, from: usize) -> u64 {
        let mut matrix = 0u64;
        for i in 0..8 {
            let mut row = 0u64;
            for j in 0..8 {
                row |= u64::from((columns[from + j] >> (to + i)) & 1) << j;
            }
            matrix |= row << (8 * (7 - i));
        }
        matrix
    }

    /// The GFNI + AVX-512 engine. Only [`GfniEngine::detect`] makes one, so holding one
    /// proves the CPU has the features its `unsafe` calls need.
    #[derive(Clone, Copy)]
    pub struct GfniEngine {
        skew: &'static [GfElement],
        matrices: &'static [Matrices],
    }

    impl GfniEngine {
        /// The engine, if this CPU has AVX-512F, AVX-512BW and GFNI.
        pub fn detect() -> Option<Self> {
            let supported = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("gfni");
            supported.then(|| Self { skew: tables::get_skew().as_slice(), matrices: matrices() })
        }

        /// The multiplier for `log_m`; the library's FFT treats `GF_MODULUS` as "multiply by
        /// zero" (a bare XOR), so it maps to zero matrices.
        #[inline(always)]
        fn multiplier(&self, log_m: GfElement) -> Multiplier {
            if log_m == GF_MODULUS {
                return Multiplier::ZERO;
            }
            Multiplier::from_matrices(&self.matrices[usize::from(log_m)])
        }
    }

    /// One constant's matrices in register form. A block is `[low bytes | high bytes]` in one
    /// 512-bit register; `same` maps each half to itself (`low <- low` in the low half,
    /// `high <- high` in the high half), `crossed` maps the swapped halves.
    #[derive(Clone, Copy)]
    struct Multiplier {
        same: [u64; 8],
        crossed: [u64; 8],
    }

    impl Multiplier {
        const ZERO: Self = Self { same: [0; 8], crossed: [0; 8] };

        fn from_matrices(&[low_low, low_high, high_low, high_high]: &Matrices) -> Self {
            Self {
                same: [
                    low_low, low_low, low_low, low_low, high_high, high_high, high_high, high_high,
                ],
                crossed: [
                    low_high, low_high, low_high, low_high, high_low, high_low, high_low, high_low,
                ],
            }
        }
    }

    /// A [`Multiplier`] loaded into registers.
    #[derive(Clone, Copy)]
    struct Lanes {
        same: __m512i,
        crossed: __m512i,
    }

    impl Lanes {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,gfni")]
        fn load(multiplier: &Multiplier) -> Self {
            // SAFETY: each array is 64 readable bytes; the loads are unaligned.
            unsafe {
                Self {
                    same: _mm512_loadu_si512(multiplier.same.as_ptr().cast()),
                    crossed: _mm512_loadu_si512(multiplier.crossed.as_ptr().cast()),
                }
            }
        }
    }

    /// The 32 field elements of a block times the constant.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn mul_block(value: __m512i, by: Lanes) -> __m512i {
        let swapped = _mm512_shuffle_i64x2::<0b01_00_11_10>(value, value);
        _mm512_xor_si512(
            _mm512_gf2p8affine_epi64_epi8::<0>(value, by.same),
            _mm512_gf2p8affine_epi64_epi8::<0>(swapped, by.crossed),
        )
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn load(block: &[u8; 64]) -> __m512i {
        // SAFETY: `block` is 64 readable bytes; the load is unaligned.
        unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn store(block: &mut [u8; 64], value: __m512i) {
        // SAFETY: `block` is 64 writable bytes; the store is unaligned.
        unsafe { _mm512_storeu_si512(block.as_mut_ptr().cast(), value) }
    }

    /// FFT butterfly: `x ^= y * m; y ^= x`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn fft_butterfly(x: &mut __m512i, y: &mut __m512i, m: Lanes) {
        *x = _mm512_xor_si512(*x, mul_block(*y, m));
        *y = _mm512_xor_si512(*y, *x);
    }

    /// IFFT butterfly: `y ^= x; x ^= y * m`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn ifft_butterfly(x: &mut __m512i, y: &mut __m512i, m: Lanes) {
        *y = _mm512_xor_si512(*y, *x);
        *x = _mm512_xor_si512(*x, mul_block(*y, m));
    }

    impl GfniEngine {
        /// The library's `Avx2::fft`, step for step (same twiddles, same truncation), with
        /// each pair of layers in one pass over the four shards it touches.
        #[target_feature(enable = "avx512f,avx512bw,gfni")]
        fn fft_gfni(
            &self,
            data: &mut ShardsRefMut<'_>,
            pos: usize,
            size: usize,
            truncated_size: usize,
            skew_delta: usize,
        ) {
            let mut dist4 = size;
            let mut dist = size >> 2;
            while dist != 0 {
                let mut r = 0;
                while r < truncated_size {
                    let base = r + dist + skew_delta - 1;
                    let m01 = self.lanes(self.skew[base]);
                    let m02 = self.lanes(self.skew[base + dist]);
                    let m23 = self.lanes(self.skew[base + 2 * dist]);
                    for i in r..r + dist {
                        let (s0, s1, s2, s3) = data.dist4_mut(pos + i, dist);
                        quads::<false>([s0, s1, s2, s3], m01, m02, m23);
                    }
                    r += dist4;
                }
                dist4 = dist;
                dist >>= 2;
            }
            if dist4 == 2 {
                let mut r = 0;
                while r < truncated_size {
                    let m = self.lanes(self.skew[r + skew_delta]);
                    let (x, y) = data.dist2_mut(pos + r, 1);
                    butterflies::<false>(x, y, m);
                    r += 2;
                }
            }
        }

        /// The library's `Avx2::ifft`, step for step, two layers per pass.
        #[target_feature(enable = "avx512f,avx512bw,gfni")]
        fn ifft_gfni(
            &self,
            data: &mut ShardsRefMut<'_>,
            pos: usize,
            size: usize,
            truncated_size: usize,
            skew_delta: usize,
        ) {
            let mut dist = 1;
            let mut dist4 = 4;
            while dist4 <= size {
                let mut r = 0;
                while r < truncated_size {
                    let base = r + dist + skew_delta - 1;
                    let m01 = self.lanes(self.skew[base]);
                    let m02 = self.lanes(self.skew[base + dist]);
                    let m23 = self.lanes(self.skew[base + 2 * dist]);
                    for i in r..r + dist {
                        let (s0, s1, s2, s3) = data.dist4_mut(pos + i, dist);
                        quads::<true>([s0, s1, s2, s3], m01, m02, m23);
                    }
                    r += dist4;
                }
                dist = dist4;
                dist4 <<= 2;
            }
            if dist < size {
                let m = self.lanes(self.skew[dist + skew_delta - 1]);
                for i in 0..dist {
                    let (x, y) = data.dist2_mut(pos + i, dist);
                    butterflies::<true>(x, y, m);
                }
            }
        }

        /// The multiplier for an FFT twiddle in registers.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,gfni")]
        fn lanes(&self, log_m: GfElement) -> Lanes {
            Lanes::load(&self.multiplier(log_m))
        }

        #[target_feature(enable = "avx512f,avx512bw,gfni")]
        fn mul_gfni(&self, x: &mut [[u8; 64]], log_m: GfElement) {
            // Not `multiplier`: outside the FFT, `GF_MODULUS` is a logarithm like any other.
            let m = Lanes::load(&Multiplier::from_matrices(&self.matrices[usize::from(log_m)]));
            for block in x {
                store(block, mul_block(load(block), m));
            }
        }
    }

    /// Two butterfly layers on four shards: the FFT's `(0, 2), (1, 3)` with `m02` then
    /// `(0, 1)` with `m01` and `(2, 3)` with `m23`; the IFFT's the other way round.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn quads<const INVERSE: bool>(
        [s0, s1, s2, s3]: [&mut [[u8; 64]]; 4],
        m01: Lanes,
        m02: Lanes,
        m23: Lanes,
    ) {
        for (((b0, b1), b2), b3) in
            s0.iter_mut().zip(s1.iter_mut()).zip(s2.iter_mut()).zip(s3.iter_mut())
        {
            let (mut v0, mut v1, mut v2, mut v3) = (load(b0), load(b1), load(b2), load(b3));
            if INVERSE {
                ifft_butterfly(&mut v0, &mut v1, m01);
                ifft_butterfly(&mut v2, &mut v3, m23);
                ifft_butterfly(&mut v0, &mut v2, m02);
                ifft_butterfly(&mut v1, &mut v3, m02);
            } else {
                fft_butterfly(&mut v0, &mut v2, m02);
                fft_butterfly(&mut v1, &mut v3, m02);
                fft_butterfly(&mut v0, &mut v1, m01);
                fft_butterfly(&mut v2, &mut v3, m23);
            }
            store(b0, v0);
            store(b1, v1);
            store(b2, v2);
            store(b3, v3);
        }
    }

    /// One FFT (or, if `INVERSE`, IFFT) butterfly per block of two shards.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn butterflies<const INVERSE: bool>(x: &mut [[u8; 64]], y: &mut [[u8; 64]], m: Lanes) {
        for (bx, by) in x.iter_mut().zip(y.iter_mut()) {
            let (mut vx, mut vy) = (load(bx), load(by));
            if INVERSE {
                ifft_butterfly(&mut vx, &mut vy, m);
            } else {
                fft_butterfly(&mut vx, &mut vy, m);
            }
            store(bx, vx);
            store(by, vy);
        }
    }

    impl Engine for GfniEngine {
        fn fft(
            &self,
            data: &mut ShardsRefMut<'_>,
            pos: usize,
            size: usize,
            truncated_size: usize,
            skew_delta: usize,
        ) {
            // SAFETY: a `GfniEngine` exists only after `detect` found AVX-512F, AVX-512BW
            // and GFNI on this CPU.
            unsafe { self.fft_gfni(data, pos, size, truncated_size, skew_delta) }
        }

        fn ifft(
            &self,
            data: &mut ShardsRefMut<'_>,
            pos: usize,
            size: usize,
            truncated_size: usize,
            skew_delta: usize,
        ) {
            // SAFETY: as in `fft`.
            unsafe { self.ifft_gfni(data, pos, size, truncated_size, skew_delta) }
        }

        fn mul(&self, x: &mut [[u8; 64]], log_m: GfElement) {
            // SAFETY: as in `fft`.
            unsafe { self.mul_gfni(x, log_m) }
        }

        fn eval_poly(erasures: &mut [GfElement; GF_ORDER], truncated_size: usize) {
            reed_solomon_simd::engine::DefaultEngine::eval_poly(erasures, truncated_size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use reed_solomon_simd::engine::NoSimd;
    use reed_solomon_simd::rate::{
        DefaultRateDecoder, DefaultRateEncoder, RateDecoder, RateEncoder,
    };

    fn random_shards(count: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                let mut shard = vec![0u8; len];
                rng.fill(&mut shard[..]);
                shard
            })
            .collect()
    }

    fn recovery_with<E: Engine>(engine: E, data: &[Vec<u8>], recovery: usize) -> Vec<Vec<u8>> {
        let mut encoder =
            DefaultRateEncoder::new(data.len(), recovery, data[0].len(), engine, None).unwrap();
        for shard in data {
            encoder.add_original_shard(shard).unwrap();
        }
        let recovery = encoder.encode().unwrap().recovery_iter().map(<[u8]>::to_vec).collect();
        recovery
    }

    /// The engine under test, GFNI, which `CodecEngine::new` picks where the CPU has it;
    /// `None` (and the test says so) elsewhere.
    fn gfni_engine() -> Option<CodecEngine> {
        let engine = CodecEngine::new();
        if !engine.is_gfni() {
            eprintln!("this CPU lacks AVX-512F, AVX-512BW or GFNI: the GFNI engine is not tested");
            return None;
        }
        Some(engine)
    }

    /// Low rate (k below n - k, the fast profile's case), high rate, equal counts, counts off
    /// powers of two, one shard, and shard lengths of one and several 64-byte blocks.
    #[test]
    fn gfni_encoding_equals_the_portable_engine() {
        if gfni_engine().is_none() {
            return;
        }
        for (seed, (k, recovery, len)) in [
            (85, 171, 128),
            (128, 128, 64),
            (200, 56, 192),
            (3, 5, 64),
            (1, 1, 64),
            (1, 255, 128),
            (255, 1, 64),
            (5, 300, 64),
            (700, 300, 64),
        ]
        .into_iter()
        .enumerate()
        {
            let data = random_shards(k, len, seed as u64);
            let expected = recovery_with(NoSimd::new(), &data, recovery);
            let engine = CodecEngine::new();
            assert_eq!(recovery_with(engine, &data, recovery), expected, "k {k} m {recovery}");
        }
    }

    #[test]
    fn gfni_multiplication_equals_the_portable_engine_for_every_constant() {
        let Some(engine) = gfni_engine() else { return };
        let portable = NoSimd::new();
        let blocks: Vec<[u8; 64]> =
            random_shards(3, 64, 7).into_iter().map(|shard| shard.try_into().unwrap()).collect();
        for log_m in 0..=u16::MAX {
            let mut expected = blocks.clone();
            portable.mul(&mut expected, log_m);
            let mut got = blocks.clone();
            engine.mul(&mut got, log_m);
            assert_eq!(got, expected, "log_m {log_m}");
        }
    }

    /// Decoding uses the IFFT, the FFT and `mul` on other sizes than encoding does.
    #[test]
    fn gfni_decoding_restores_the_data() {
        if gfni_engine().is_none() {
            return;
        }
        for (seed, (k, recovery)) in
            [(85usize, 171usize), (128, 128), (10, 4)].into_iter().enumerate()
        {
            let data = random_shards(k, 128, 100 + seed as u64);
            let parity = recovery_with(NoSimd::new(), &data, recovery);
            let mut decoder =
                DefaultRateDecoder::new(k, recovery, 128, CodecEngine::new(), None).unwrap();
            // Every third data shard lost, replaced by parity.
            let lost: Vec<usize> = (0..k).step_by(3).collect();
            for (index, shard) in data.iter().enumerate() {
                if !lost.contains(&index) {
                    decoder.add_original_shard(index, shard).unwrap();
                }
            }
            for (index, shard) in parity.iter().enumerate().take(lost.len()) {
                decoder.add_recovery_shard(index, shard).unwrap();
            }
            let result = decoder.decode().unwrap();
            for &index in &lost {
                assert_eq!(result.restored_original(index).unwrap(), &data[index][..]);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn bit_matrix_layout_is_what_vgf2p8affineqb_reads() {
        // Multiplying by one: the identity blocks on the diagonal, nothing across.
        let identity: [GfElement; 16] = std::array::from_fn(|bit| 1 << bit);
        assert_eq!(gfni::bit_matrix(&identity, 0, 0), 0x0102_0408_1020_4080);
        assert_eq!(gfni::bit_matrix(&identity, 8, 8), 0x0102_0408_1020_4080);
        assert_eq!(gfni::bit_matrix(&identity, 0, 8), 0);
        assert_eq!(gfni::bit_matrix(&identity, 8, 0), 0);
    }
}
