//! `da-bench`: times encode, per-chunk verification and reconstruction of one block.
//!
//! The block is pseudo-random bytes (SplitMix64, fixed seed), generated before any timing.
//! Untimed warm-up first, inside the pool: for fast, one encode of the same block (tables built
//! on first use, each thread's encoder and working space, the allocator's pages: what a producer
//! that encodes block after block has warm); for semi-avid, a small encode and the public
//! parameters for the block's row count, which a validator derives once per process. Then, inside a rayon pool of the requested size:
//!
//! - `encode_gb_per_s`: block bytes / the median seconds of [`super::encode`] calls made back
//!   to back, each building and dropping its own chunks, for about [`ENCODE_BUDGET_SECONDS`]
//!   (at least one call, at most [`MAX_ENCODE_RUNS`]): how a producer encoding block after block
//!   runs. One call of a small block lasts under a millisecond, too short to time alone: any
//!   other process running on a core in that window can halve it;
//! - `verify_chunk_us`: median microseconds of [`super::verify_chunk`] over up to 16 chunks
//!   spread across data and parity indices, one at a time;
//! - `reconstruct_gb_per_s`: block bytes / seconds of one [`super::reconstruct`] from the last
//!   `k` chunks (all parity whenever `n >= 2k`), checks and consistency proof included;
//! - `expansion`: bytes of all `n` chunks on the wire / block bytes.

use super::{encode, reconstruct, verify_chunk, Chunk, Profile, Result, SvidError};
use std::time::Instant;

/// Seconds of back-to-back encode calls one run times, at least one call.
pub const ENCODE_BUDGET_SECONDS: f64 = 0.25;
/// Most encode calls one run times.
pub const MAX_ENCODE_RUNS: usize = 64;

/// One `da-bench` run, printed as one JSON line.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DaBenchReport {
    /// `fast` or `semi-avid`.
    pub profile: Profile,
    /// Block bytes.
    pub size: u64,
    /// Chunks in all.
    pub n: usize,
    /// Chunks needed to reconstruct.
    pub k: usize,
    /// Encode throughput, 10^9 block bytes per second, over the median encode call.
    pub encode_gb_per_s: f64,
    /// Encode calls timed; `encode_gb_per_s` is their median.
    pub encode_runs: usize,
    /// Median time to verify one chunk, microseconds.
    pub verify_chunk_us: f64,
    /// Reconstruct throughput, 10^9 block bytes per second.
    pub reconstruct_gb_per_s: f64,
    /// Chunk bytes on the wire, all `n` of them, per block byte.
    pub expansion: f64,
}

/// Pseudo-random block bytes (SplitMix64).
pub fn pseudo_random_block(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut block = Vec::with_capacity(size.next_multiple_of(8));
    while block.len() < size {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        block.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    block.truncate(size);
    block
}

/// Runs one benchmark of `profile` on a `size`-byte block with `n` chunks, `k` to reconstruct,
/// on `threads` threads (all cores when `None`).
pub fn da_bench(
    profile: Profile,
    size: usize,
    n: usize,
    k: usize,
    threads: Option<usize>,
) -> Result<DaBenchReport> {
    match profile {
        Profile::Fast => super::fast::check_params(n, k)?,
        Profile::SemiAvid => super::semi_avid::check_params(n, k)?,
    }
    // Before the block is allocated: a size past the profile's maximum is refused here.
    super::check_block_len(profile, size as u64, k)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|error| SvidError::ThreadPool(error.to_string()))?;
    let block = pseudo_random_block(size, 0x5eed);
    pool.install(|| {
        let warm_up = match profile {
            Profile::Fast => &block[..],
            Profile::SemiAvid => &block[..block.len().min(4096)],
        };
        drop(encode(profile, warm_up, n, k)?);
        if profile == Profile::SemiAvid {
            super::semi_avid::check_params(n, k)?;
            let rows = super::semi_avid::rows_for(size as u64, k);
            if rows <= super::semi_avid::MAX_ROWS {
                super::semi_avid::setup::setup(rows as usize);
            }
        }

        let mut encode_seconds = Vec::new();
        let budget = Instant::now();
        let (commitment, chunks) = loop {
            let start = Instant::now();
            let encoded = encode(profile, &block, n, k)?;
            encode_seconds.push(start.elapsed().as_secs_f64());
            if encode_seconds.len() >= MAX_ENCODE_RUNS
                || budget.elapsed().as_secs_f64() >= ENCODE_BUDGET_SECONDS
            {
                break encoded;
            }
        };
        let encode_runs = encode_seconds.len();
        encode_seconds.sort_by(f64::total_cmp);

        let samples = n.min(16);
        let mut verify_us: Vec<f64> = (0..samples)
            .map(|sample| {
                let index = sample * n / samples;
                let start = Instant::now();
                verify_chunk(&commitment, index as u32, &chunks[index])?;
                Ok(start.elapsed().as_secs_f64() * 1e6)
            })
            .collect::<Result<_>>()?;
        verify_us.sort_by(f64::total_cmp);

        let start = Instant::now();
        let rebuilt = reconstruct(&commitment, &chunks[n - k..])?;
        let reconstruct_seconds = start.elapsed().as_secs_f64();
        if rebuilt != block {
            return Err(SvidError::InconsistentEncoding {
                reason: "benchmark round trip returned different bytes",
            });
        }

        let wire_bytes: u64 = chunks.iter().map(Chunk::wire_len).sum();
        Ok(DaBenchReport {
            profile,
            size: size as u64,
            n,
            k,
            encode_gb_per_s: size as f64 / encode_seconds[encode_runs / 2] / 1e9,
            encode_runs,
            verify_chunk_us: verify_us[verify_us.len() / 2],
            reconstruct_gb_per_s: size as f64 / reconstruct_seconds / 1e9,
            expansion: wire_bytes as f64 / size as f64,
        })
    })
}
