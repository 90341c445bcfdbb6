//! BLAKE3 of sixteen equal-length inputs at once, one per 32-bit lane of AVX-512 registers.
//!
//! The `blake3` crate hashes the chunks of *one* input in parallel, so an 8 KiB shard (eight
//! chunks) fills only half of AVX-512's sixteen lanes, and a 64-byte Merkle node just one. The
//! fast profile hashes many inputs of the same length (all `n` shards, every node of a tree
//! level), and equal lengths give equal BLAKE3 trees, so here lane `i` of every register
//! carries input `i`: each compression step runs on sixteen inputs, and no lane ever waits for
//! another. Only what the fast profile needs is here: derive-key-material mode and inputs that
//! are a non-zero multiple of 64 bytes (whole blocks). The tests compare it with `blake3`.

use super::{Hash, Position};

/// Inputs hashed together.
const LANES: usize = 16;

/// Inputs this long hash as fast on their own: BLAKE3 hashes 16 chunks at a time.
const MAX_INPUT: usize = 16 << 10;

/// Hashes whole groups of [`LANES`] inputs from the front of `inputs` into `out`, where this
/// CPU has AVX-512F and the inputs are all of one length, whole 64-byte blocks and shorter than
/// [`MAX_INPUT`]; returns how many it hashed. A group costs as much however few lanes it fills,
/// so the rest is left to the caller.
pub(super) fn hash_groups(
    key: &[u8; 32],
    inputs: &[&[u8]],
    position: Position,
    out: &mut [Hash],
) -> usize {
    let len = inputs.first().map_or(0, |input| input.len());
    let fits = (1..MAX_INPUT).contains(&len)
        && len.is_multiple_of(BLOCK_LEN)
        && inputs.iter().all(|input| input.len() == len);
    if !fits || !available() {
        return 0;
    }
    let done = inputs.len().min(out.len()) / LANES * LANES;
    for (group, out) in inputs[..done].chunks_exact(LANES).zip(out.chunks_exact_mut(LANES)) {
        let rows: &[&[u8]; LANES] = group.try_into().expect("a group of LANES inputs");
        // SAFETY: `available` found AVX-512F on this CPU; `rows` are `len` bytes each, a
        // non-zero multiple of 64, as checked above.
        let hashes = unsafe { avx512::hash(key, rows, len, position) };
        out.copy_from_slice(&hashes);
    }
    done
}

/// Whether this CPU has AVX-512F.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];
const CHUNK_LEN: usize = 1024;
const BLOCK_LEN: usize = 64;
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const PARENT: u32 = 4;
const ROOT: u32 = 8;
const DERIVE_KEY_MATERIAL: u32 = 64;

/// Which message word each round reads in each position: BLAKE3 permutes the words between
/// rounds with `PERMUTATION`.
const SCHEDULE: [[usize; 16]; 7] = {
    const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
    let mut schedule = [[0; 16]; 7];
    let mut word = 0;
    while word < 16 {
        schedule[0][word] = word;
        word += 1;
    }
    let mut round = 1;
    while round < 7 {
        let mut word = 0;
        while word < 16 {
            schedule[round][word] = schedule[round - 1][PERMUTATION[word]];
            word += 1;
        }
        round += 1;
    }
    schedule
};

mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    /// Eight chaining-value words, word `w` of every lane in register `w`.
    type Cv = [__m512i; 8];

    /// One BLAKE3 compression on every lane: `cv` becomes the output chaining value.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn compress(cv: &mut Cv, m: &[__m512i; 16], counter: u64, flags: u32) {
        let splat = |word: u32| _mm512_set1_epi32(word as i32);
        let mut v = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            splat(IV[0]),
            splat(IV[1]),
            splat(IV[2]),
            splat(IV[3]),
            splat(counter as u32),
            splat((counter >> 32) as u32),
            splat(BLOCK_LEN as u32),
            splat(flags),
        ];
        // One call per round, so that every message index is a constant.
        round::<0>(&mut v, m);
        round::<1>(&mut v, m);
        round::<2>(&mut v, m);
        round::<3>(&mut v, m);
        round::<4>(&mut v, m);
        round::<5>(&mut v, m);
        round::<6>(&mut v, m);
        for word in 0..8 {
            cv[word] = _mm512_xor_si512(v[word], v[word + 8]);
        }
    }

    /// Round `R` of the compression function.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn round<const R: usize>(v: &mut [__m512i; 16], m: &[__m512i; 16]) {
        let s = |i: usize| m[SCHEDULE[R][i]];
        g(v, [0, 4, 8, 12], s(0), s(1));
        g(v, [1, 5, 9, 13], s(2), s(3));
        g(v, [2, 6, 10, 14], s(4), s(5));
        g(v, [3, 7, 11, 15], s(6), s(7));
        g(v, [0, 5, 10, 15], s(8), s(9));
        g(v, [1, 6, 11, 12], s(10), s(11));
        g(v, [2, 7, 8, 13], s(12), s(13));
        g(v, [3, 4, 9, 14], s(14), s(15));
    }

    /// BLAKE3's quarter-round on state words `a, b, c, d`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn g(v: &mut [__m512i; 16], [a, b, c, d]: [usize; 4], x: __m512i, y: __m512i) {
        v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), x);
        v[d] = _mm512_ror_epi32::<16>(_mm512_xor_si512(v[d], v[a]));
        v[c] = _mm512_add_epi32(v[c], v[d]);
        v[b] = _mm512_ror_epi32::<12>(_mm512_xor_si512(v[b], v[c]));
        v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), y);
        v[d] = _mm512_ror_epi32::<8>(_mm512_xor_si512(v[d], v[a]));
        v[c] = _mm512_add_epi32(v[c], v[d]);
        v[b] = _mm512_ror_epi32::<7>(_mm512_xor_si512(v[b], v[c]));
    }

    /// The 64-byte block at `offset` of every row, transposed: word `w` of every lane in
    /// register `w`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load_block(rows: &[&[u8]; LANES], offset: usize) -> [__m512i; 16] {
        let a: [__m512i; 16] = std::array::from_fn(|lane| {
            let block = &rows[lane][offset..offset + BLOCK_LEN];
            // SAFETY: `block` is 64 readable bytes; the load is unaligned.
            unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
        });
        // Within each 128-bit quarter: interleave words, then pairs of words, so that
        // `c[4 * i + j]` holds word `j` of the quarter for rows `4 * i .. 4 * i + 4`.
        let b: [__m512i; 16] = std::array::from_fn(|i| {
            let (x, y) = (a[i & !1], a[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_epi32(x, y)
            } else {
                _mm512_unpackhi_epi32(x, y)
            }
        });
        let c: [__m512i; 16] = std::array::from_fn(|i| {
            let base = i & !3;
            let (x, y) = (b[base + (i & 2) / 2], b[base + 2 + (i & 2) / 2]);
            if i % 2 == 0 {
                _mm512_unpacklo_epi64(x, y)
            } else {
                _mm512_unpackhi_epi64(x, y)
            }
        });
        // Then move the quarters: word `4 * q + j` is quarter `q` of `c[j], c[4 + j],
        // c[8 + j], c[12 + j]`.
        let mut out = [_mm512_setzero_si512(); 16];
        for j in 0..4 {
            let (x0, x1, x2, x3) = (c[j], c[4 + j], c[8 + j], c[12 + j]);
            let d0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(x0, x1);
            let d1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(x0, x1);
            let d2 = _mm512_shuffle_i32x4::<0b01_00_01_00>(x2, x3);
            let d3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(x2, x3);
            out[j] = _mm512_shuffle_i32x4::<0b10_00_10_00>(d0, d2);
            out[4 + j] = _mm512_shuffle_i32x4::<0b11_01_11_01>(d0, d2);
            out[8 + j] = _mm512_shuffle_i32x4::<0b10_00_10_00>(d1, d3);
            out[12 + j] = _mm512_shuffle_i32x4::<0b11_01_11_01>(d1, d3);
        }
        out
    }

    /// The hashes (or subtree chaining values) of sixteen inputs of `len` bytes each (a
    /// non-zero multiple of 64).
    ///
    /// # Safety
    ///
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn hash(
        key: &[u8; 32],
        rows: &[&[u8]; LANES],
        len: usize,
        position: Position,
    ) -> [Hash; LANES] {
        debug_assert!(len > 0 && len.is_multiple_of(BLOCK_LEN));
        let key: Cv = std::array::from_fn(|word| {
            let bytes = [key[4 * word], key[4 * word + 1], key[4 * word + 2], key[4 * word + 3]];
            _mm512_set1_epi32(u32::from_le_bytes(bytes) as i32)
        });
        let chunks = len.div_ceil(CHUNK_LEN);
        let (first_chunk, root) = match position {
            Position::Root => (0, ROOT),
            Position::Subtree { chunk } => (chunk, 0),
        };
        let cvs: Vec<Cv> = (0..chunks)
            .map(|chunk| {
                let start = chunk * CHUNK_LEN;
                let blocks = (len - start).min(CHUNK_LEN) / BLOCK_LEN;
                let mut cv = key;
                for block in 0..blocks {
                    let mut flags = DERIVE_KEY_MATERIAL;
                    if block == 0 {
                        flags |= CHUNK_START;
                    }
                    if block == blocks - 1 {
                        flags |= CHUNK_END | if chunks == 1 { root } else { 0 };
                    }
                    let m = load_block(rows, start + block * BLOCK_LEN);
                    compress(&mut cv, &m, first_chunk + chunk as u64, flags);
                }
                cv
            })
            .collect();
        let root = if let [cv] = cvs[..] { cv } else { subtree(&key, &cvs, root) };
        let mut words = [[0u32; LANES]; 8];
        for (word, vector) in words.iter_mut().zip(root) {
            // SAFETY: `word` is 64 writable bytes; the store is unaligned.
            unsafe { _mm512_storeu_si512(word.as_mut_ptr().cast(), vector) };
        }
        std::array::from_fn(|lane| {
            let mut hash = [0u8; 32];
            for (bytes, word) in hash.chunks_exact_mut(4).zip(&words) {
                bytes.copy_from_slice(&word[lane].to_le_bytes());
            }
            hash
        })
    }

    /// The chaining value of the BLAKE3 subtree over chunks with chaining values `cvs` (at
    /// least two), `ROOT` in `root` if it is the whole tree: BLAKE3's left subtree is the
    /// largest power-of-two number of chunks short of the whole.
    #[target_feature(enable = "avx512f")]
    fn subtree(key: &Cv, cvs: &[Cv], root: u32) -> Cv {
        let (left, right) = cvs.split_at(cvs.len().next_power_of_two() / 2);
        let half = |side: &[Cv]| if let [cv] = side { *cv } else { subtree(key, side, 0) };
        let (left, right) = (half(left), half(right));
        let m: [__m512i; 16] =
            std::array::from_fn(|word| if word < 8 { left[word] } else { right[word - 8] });
        let mut cv = *key;
        compress(&mut cv, &m, 0, DERIVE_KEY_MATERIAL | PARENT | root);
        cv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blake3::hazmat::HasherExt;

    #[test]
    fn lanes_equal_blake3() {
        if !available() {
            eprintln!("this CPU lacks AVX-512F: lane hashing is not tested");
            return;
        }
        let key = blake3::hazmat::hash_derive_key_context("zero-svid lanes test");
        // Every length the lanes take: each number of blocks in a chunk, each number of chunks.
        for len in (BLOCK_LEN..MAX_INPUT).step_by(BLOCK_LEN) {
            for count in [16usize, 32, 21] {
                let inputs: Vec<Vec<u8>> = (0..count)
                    .map(|input| (0..len).map(|i| (i * 31 + input * 7) as u8).collect())
                    .collect();
                let rows: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                let mut out = vec![[0u8; 32]; count];
                let grouped = count / LANES * LANES;
                assert_eq!(hash_groups(&key, &rows, Position::Root, &mut out), grouped);
                for (input, hash) in inputs.iter().zip(&out[..grouped]) {
                    let mut hasher = blake3::Hasher::new_from_context_key(&key);
                    hasher.update(input);
                    assert_eq!(hash, hasher.finalize().as_bytes(), "len {len} count {count}");
                }
                // As a subtree at a multiple of its length (in chunks, rounded up to a power of
                // two): the chaining value `blake3` gives the piece.
                let chunk = 3 * len.div_ceil(CHUNK_LEN).next_power_of_two() as u64;
                let at = Position::Subtree { chunk };
                assert_eq!(hash_groups(&key, &rows, at, &mut out), grouped);
                for (input, cv) in inputs.iter().zip(&out[..grouped]) {
                    let expected = blake3::Hasher::new_from_context_key(&key)
                        .set_input_offset(chunk * CHUNK_LEN as u64)
                        .update(input)
                        .finalize_non_root();
                    assert_eq!(*cv, expected, "len {len} count {count} at chunk {chunk}");
                }
            }
        }
    }
}
