//! Stripe-parallel encoding and hashing for the fast profile.
//!
//! Reed-Solomon over GF(2^16) acts on each 64-byte column of the shards on its own, so the
//! shards are cut into stripes, the same byte range of every shard, and each stripe is one
//! rayon task: it reads its `k` data pieces straight from the block (only pieces that run past
//! the block's end are padded, in a scratch buffer), encodes the `n - k` recovery pieces, writes
//! all `n` pieces to the output shards and hashes them while they are still in cache. A stripe
//! is a power-of-two number of BLAKE3 chunks, so each piece is a whole subtree of its shard's
//! BLAKE3 tree ([`merkle::leaf_piece`]); the leaf hashes are the pieces' chaining values
//! merged ([`merkle::leaf_from_pieces`]), the same bytes as hashing each shard in one pass.
//!
//! Tasks share the block read-only and write disjoint stripes of the output shards, so no task
//! waits for another: the rayon join at the end is the only synchronisation. Each thread keeps
//! its encoder, and its working space, from one task and one block to the next.

use super::engine::CodecEngine;
use crate::svid::merkle::{self, Hash};
use crate::svid::{Result, SvidError};
use blake3::hazmat::ChainingValue;
use rayon::prelude::*;
use reed_solomon_simd::rate::{DefaultRateEncoder, RateEncoder};
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Largest stripe. Hashing wants long pieces (BLAKE3 hashes 16 chunks at a time with
/// AVX-512), the code wants short ones, so a stripe is coded a few KiB at a time (see
/// [`CODE_WORK`]) and hashed whole.
pub(crate) const MAX_STRIPE: usize = 32 << 10;
/// The encoder's working space, about `n` pieces (rounded up to a power of two) of the bytes it
/// takes from every shard at a time: small enough to stay in L2, so 8 KiB pieces at `n = 256`.
const CODE_WORK: usize = 2 << 20;
/// Recovery scratch space above this is not kept between stripes.
const MAX_KEPT_SCRATCH: usize = 16 << 20;
/// Smallest stripe: one BLAKE3 chunk.
const MIN_STRIPE: usize = 1 << 10;
/// Shortest stripe hashed piece by piece: BLAKE3 hashes 16 chunks at a time. Where the CPU
/// hashes sixteen pieces at a time instead ([`merkle::hashes_in_lanes`]), stripes of any length
/// are.
const MIN_HASHED_STRIPE: usize = 16 << 10;
/// Stripes are halved until each thread has at least this many, so that small blocks use every
/// core and the short last stripe does not leave one idle.
const STRIPES_PER_THREAD: usize = 4;
/// Stripes this short are halved only until each thread has one: every stripe costs an encoder
/// call per `code_piece`, and pieces this short make those calls' fixed costs (twiddle lookups,
/// resets, rayon tasks) count.
const SHORT_STRIPE: usize = 4 << 10;

type Encoder = DefaultRateEncoder<CodecEngine>;

/// What each thread keeps from one stripe to the next.
#[derive(Default)]
struct ThreadState {
    /// `reset` reuses the working space when the shape changes.
    encoder: Option<Encoder>,
    /// A data piece that runs past the block's end, zero-padded.
    padded: Vec<u8>,
    /// Recovery pieces when the caller keeps no shards (`spare_capacity_mut` only).
    recovery: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<ThreadState> = RefCell::new(ThreadState::default());
}

/// How the shards are cut: into stripes of `stripe` bytes (the last may be shorter), each coded
/// `code_piece` bytes at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// A power of two from [`MIN_STRIPE`] to [`MAX_STRIPE`].
    pub(crate) stripe: usize,
    /// A power of two from 64 to `stripe`.
    pub(crate) code_piece: usize,
}

impl Plan {
    /// The plan for `n` shards of `shard` bytes on `threads` threads.
    pub(crate) fn new(shard: usize, n: usize, threads: usize) -> Self {
        let mut stripe = MAX_STRIPE;
        while stripe > MIN_STRIPE {
            let wanted = if stripe > SHORT_STRIPE { STRIPES_PER_THREAD * threads } else { threads };
            if shard.div_ceil(stripe) >= wanted {
                break;
            }
            stripe /= 2;
        }
        Self { stripe, code_piece: (CODE_WORK / n.next_power_of_two()).clamp(64, stripe) }
    }
}

/// What [`encode`] produces.
pub(crate) struct Encoded {
    /// All `n` shards, data then recovery, if asked for.
    pub(crate) shards: Option<Vec<Vec<u8>>>,
    /// Leaf hash of every shard, `None` where not asked for.
    pub(crate) leaves: Vec<Option<Hash>>,
}

/// Encodes `block`, zero-padded to `k` shards of `shard` bytes, into `n` shards, stripe by
/// stripe on the current rayon pool. Returns the shards if `keep_shards`, and the leaf hash of
/// every shard `i` with `hash_leaf[i]`.
///
/// `shard` must be a multiple of 64 with `block.len() <= k * shard`.
pub(crate) fn encode(
    block: &[u8],
    (n, k): (usize, usize),
    shard: usize,
    plan: Plan,
    keep_shards: bool,
    hash_leaf: &[bool],
) -> Result<Encoded> {
    debug_assert!(shard.is_multiple_of(64) && block.len() <= k * shard);
    let stripe = plan.stripe;
    let stripes = shard.div_ceil(stripe);
    // Short pieces hash slowly one by one; unless the CPU hashes them many at a time, shards cut
    // that fine are small enough to hash whole afterwards, from cache.
    let hash_pieces = stripes == 1 || stripe >= MIN_HASHED_STRIPE || merkle::hashes_in_lanes();
    let keep = keep_shards || !hash_pieces;
    let mut shards: Vec<Vec<u8>> =
        if keep { (0..n).map(|_| Vec::with_capacity(shard)).collect() } else { Vec::new() };
    // Stripe `s` of every output shard, for task `s` to write.
    let mut outputs: Vec<Vec<OutputPiece<'_>>> =
        (0..stripes).map(|_| Vec::with_capacity(shards.len())).collect();
    for out in &mut shards {
        for (index, piece) in out.spare_capacity_mut()[..shard].chunks_mut(stripe).enumerate() {
            outputs[index].push(OutputPiece::new(piece));
        }
    }
    let layout = Layout { n, k, shard, stripe, code_piece: plan.code_piece, whole: stripes == 1 };
    let no_leaves = vec![false; n];
    let piece_leaves = if hash_pieces { hash_leaf } else { &no_leaves };
    let pieces: Vec<Vec<Option<ChainingValue>>> = outputs
        .into_par_iter()
        .enumerate()
        .map(|(index, outputs)| layout.encode_stripe(block, index, outputs, piece_leaves))
        .collect::<Result<_>>()?;
    if keep {
        for out in &mut shards {
            // SAFETY: the stripes partition `0..shard`, and every stripe task filled its piece
            // of every output shard: `encode_stripe` returns an error unless all its pieces
            // are full, and an error returned above, before this loop.
            unsafe { out.set_len(shard) };
        }
    }

    let leaves = if hash_pieces {
        (0..n)
            .into_par_iter()
            .map(|index| {
                let chaining_values: Option<Vec<ChainingValue>> =
                    pieces.iter().map(|stripe| stripe[index]).collect();
                Some(match chaining_values?.as_slice() {
                    // One stripe: its piece was hashed as a whole leaf.
                    [whole] => *whole,
                    many => merkle::leaf_from_pieces(many, stripe as u64, shard as u64),
                })
            })
            .collect()
    } else {
        shards
            .par_iter()
            .zip(hash_leaf)
            .map(|(data, &wanted)| wanted.then(|| merkle::leaf_hash(data)))
            .collect()
    };
    Ok(Encoded { shards: keep_shards.then_some(shards), leaves })
}

/// One stripe of one output shard, written front to back.
struct OutputPiece<'a> {
    bytes: &'a mut [MaybeUninit<u8>],
    /// `bytes[..written]` are initialised.
    written: usize,
}

impl<'a> OutputPiece<'a> {
    fn new(bytes: &'a mut [MaybeUninit<u8>]) -> Self {
        Self { bytes, written: 0 }
    }

    /// Appends `data`; panics if it does not fit.
    fn append(&mut self, data: &[u8]) {
        let target = &mut self.bytes[self.written..self.written + data.len()];
        // SAFETY: `target` is a bounds-checked, exclusively borrowed range of `data.len()`
        // bytes, and `data` cannot overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), target.as_mut_ptr().cast(), data.len())
        };
        self.written += data.len();
    }

    fn is_full(&self) -> bool {
        self.written == self.bytes.len()
    }

    fn written(&self) -> &[u8] {
        // SAFETY: `append` initialised `bytes[..written]`, and `MaybeUninit<u8>` has the
        // layout of `u8`.
        unsafe { std::slice::from_raw_parts(self.bytes.as_ptr().cast(), self.written) }
    }
}

/// The shape of one encoding.
struct Layout {
    n: usize,
    k: usize,
    shard: usize,
    stripe: usize,
    /// Bytes of every shard the encoder takes at a time, a power of two.
    code_piece: usize,
    /// One stripe per shard: hash pieces as whole leaves.
    whole: bool,
}

impl Layout {
    /// Encodes stripe `index`: fills its piece of each output shard in `outputs` (all `n`, or
    /// none) and returns the chaining value of each piece asked for by `hash_leaf`.
    fn encode_stripe(
        &self,
        block: &[u8],
        index: usize,
        mut outputs: Vec<OutputPiece<'_>>,
        hash_leaf: &[bool],
    ) -> Result<Vec<Option<ChainingValue>>> {
        let start = index * self.stripe;
        let len = self.stripe.min(self.shard - start);
        let recovery_len = (self.n - self.k) * len;
        // Nothing in here may call into rayon: a task stolen while this thread waited would
        // find the state borrowed.
        STATE.with_borrow_mut(|state| {
            let ThreadState { encoder, padded, recovery } = state;
            let data = DataPieces::new(self, block, start, len, padded);
            if outputs.is_empty() {
                // Recovery pieces go to this thread's scratch space, only to be hashed.
                recovery.clear();
                recovery.reserve(recovery_len);
                let mut scratch: Vec<OutputPiece<'_>> = recovery.spare_capacity_mut()
                    [..recovery_len]
                    .chunks_mut(len)
                    .map(OutputPiece::new)
                    .collect();
                self.code(encoder, &data, &mut scratch)?;
                let chaining_values = self.hash(&data, &scratch, start, hash_leaf);
                if recovery.capacity() > MAX_KEPT_SCRATCH {
                    *recovery = Vec::new();
                }
                Ok(chaining_values)
            } else {
                let mut recovery_outputs = outputs.split_off(self.k);
                for (shard, out) in outputs.iter_mut().enumerate() {
                    out.append(data.piece(shard));
                }
                self.code(encoder, &data, &mut recovery_outputs)?;
                if !outputs.iter().all(OutputPiece::is_full) {
                    return Err(SvidError::Codec("a data stripe was left short".into()));
                }
                Ok(self.hash(&data, &recovery_outputs, start, hash_leaf))
            }
        })
    }

    /// Appends the recovery pieces of `data` to `recovery`, `code_piece` bytes at a time, and
    /// checks that it filled them.
    fn code(
        &self,
        encoder: &mut Option<Encoder>,
        data: &DataPieces<'_>,
        recovery: &mut [OutputPiece<'_>],
    ) -> Result<()> {
        let (n, k) = (self.n, self.k);
        let mut offset = 0;
        while offset < data.len {
            let piece = self.code_piece.min(data.len - offset);
            let encoder = match encoder {
                Some(encoder) => {
                    encoder.reset(k, n - k, piece)?;
                    encoder
                }
                None => encoder.insert(Encoder::new(k, n - k, piece, CodecEngine::new(), None)?),
            };
            for shard in 0..k {
                encoder.add_original_shard(&data.piece(shard)[offset..offset + piece])?;
            }
            let result = encoder.encode()?;
            for (out, coded) in recovery.iter_mut().zip(result.recovery_iter()) {
                out.append(coded);
            }
            offset += piece;
        }
        if recovery.len() != n - k || !recovery.iter().all(OutputPiece::is_full) {
            return Err(SvidError::Codec("the encoder left a recovery stripe short".into()));
        }
        Ok(())
    }

    /// The chaining values of the stripe's pieces asked for by `hash_leaf`, data then recovery.
    fn hash(
        &self,
        data: &DataPieces<'_>,
        recovery: &[OutputPiece<'_>],
        start: usize,
        hash_leaf: &[bool],
    ) -> Vec<Option<ChainingValue>> {
        let data = (0..self.k).map(|shard| data.piece(shard));
        let (wanted, pieces): (Vec<usize>, Vec<&[u8]>) = data
            .chain(recovery.iter().map(OutputPiece::written))
            .enumerate()
            .filter(|&(shard, _)| hash_leaf[shard])
            .unzip();
        // All pieces have one length, so they hash many at a time ([`merkle::leaf_pieces`]).
        let mut hashes = vec![[0; 32]; pieces.len()];
        if self.whole {
            merkle::leaf_hashes_on_this_thread(&pieces, &mut hashes);
        } else {
            merkle::leaf_pieces(&pieces, start as u64, &mut hashes);
        }
        let mut chaining_values = vec![None; self.n];
        for (shard, hash) in wanted.into_iter().zip(hashes) {
            chaining_values[shard] = Some(hash);
        }
        chaining_values
    }
}

/// One stripe of the `k` data shards: slices of the block, but for the pieces that run past its
/// end, which are zero-padded copies.
struct DataPieces<'a> {
    block: &'a [u8],
    shard: usize,
    start: usize,
    len: usize,
    /// Data shards from this one on run past the block's end and live in `padded`.
    padded_from: usize,
    padded: &'a [u8],
}

impl<'a> DataPieces<'a> {
    fn new(
        layout: &Layout,
        block: &'a [u8],
        start: usize,
        len: usize,
        padded: &'a mut Vec<u8>,
    ) -> Self {
        let shard = layout.shard;
        let padded_from = (0..layout.k)
            .find(|index| index * shard + start + len > block.len())
            .unwrap_or(layout.k);
        padded.clear();
        for index in padded_from..layout.k {
            let from = (index * shard + start).min(block.len());
            let to = (from + len).min(block.len());
            padded.extend_from_slice(&block[from..to]);
            padded.resize((index - padded_from + 1) * len, 0);
        }
        Self { block, shard, start, len, padded_from, padded }
    }

    fn piece(&self, index: usize) -> &'a [u8] {
        if index < self.padded_from {
            let from = index * self.shard + self.start;
            &self.block[from..from + self.len]
        } else {
            let from = (index - self.padded_from) * self.len;
            &self.padded[from..from + self.len]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svid::bench::pseudo_random_block;

    /// The oracle: the block padded and cut into `k` whole shards, encoded in one call by
    /// reed-solomon-simd's own engine, and every shard hashed in one pass.
    fn whole_shard_encoding(
        block: &[u8],
        (n, k): (usize, usize),
        shard: usize,
    ) -> (Vec<Vec<u8>>, Vec<Hash>) {
        let mut padded = block.to_vec();
        padded.resize(k * shard, 0);
        let mut shards: Vec<Vec<u8>> = padded.chunks(shard).map(<[u8]>::to_vec).collect();
        shards.extend(reed_solomon_simd::encode(k, n - k, &shards).unwrap());
        let leaves = shards.iter().map(|shard| merkle::leaf_hash(shard)).collect();
        (shards, leaves)
    }

    /// Stripes of one chunk, of two, below and at the piece-hashing threshold, and of the
    /// largest size, each coded in one piece and in several; shards of one stripe and of
    /// several with a short last one (down to one 64-byte block); blocks of odd lengths, not a
    /// multiple of `k`, and shorter than `k` shards (whole zero shards).
    #[test]
    fn striped_encoding_equals_whole_shard_encoding() {
        striped_equals_whole();
    }

    /// The same on the path of CPUs that cannot hash sixteen pieces at a time.
    #[test]
    fn striped_encoding_without_lane_hashing_equals_whole_shard_encoding() {
        use std::sync::atomic::Ordering;
        merkle::LANES_OFF.store(true, Ordering::Relaxed);
        let result = std::panic::catch_unwind(striped_equals_whole);
        merkle::LANES_OFF.store(false, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    fn striped_equals_whole() {
        let cases = [
            // (block length, n, k, stripe)
            (1, 3, 1, MIN_STRIPE),
            (100, 12, 10, MIN_STRIPE),
            (4 * 1024 + 64 * 4 - 1, 7, 4, MIN_STRIPE),
            (12_345, 9, 4, 2 << 10),
            (3 * (5 << 10) + 1, 10, 3, 2 << 10),
            (2 * (2 * MIN_HASHED_STRIPE + 64), 6, 2, MIN_HASHED_STRIPE),
            (3 * (2 * MAX_STRIPE + 5 * 64) - 17, 8, 3, MAX_STRIPE),
            (5 * MAX_STRIPE / 2, 9, 5, MAX_STRIPE),
            (100_001, 40, 13, MAX_STRIPE),
        ];
        for (len, n, k, stripe) in cases {
            let block = pseudo_random_block(len, len as u64);
            let shard = super::super::shard_len(len as u64, k) as usize;
            let (shards, leaves) = whole_shard_encoding(&block, (n, k), shard);
            for code_piece in [stripe, stripe / 4, 64] {
                let plan = Plan { stripe, code_piece };
                let encoded = encode(&block, (n, k), shard, plan, true, &vec![true; n]).unwrap();
                assert_eq!(encoded.shards.unwrap(), shards, "len {len} {plan:?}");
                let got: Vec<Hash> = encoded.leaves.into_iter().map(Option::unwrap).collect();
                assert_eq!(got, leaves, "len {len} {plan:?}");

                // Leaves only, some of them, as reconstruction asks.
                let wanted: Vec<bool> = (0..n).map(|index| index % 3 != 1).collect();
                let encoded = encode(&block, (n, k), shard, plan, false, &wanted).unwrap();
                assert!(encoded.shards.is_none());
                for (index, leaf) in encoded.leaves.iter().enumerate() {
                    assert_eq!(*leaf, wanted[index].then_some(leaves[index]), "leaf {index}");
                }
            }
        }
    }

    #[test]
    fn plans_split_small_shards_for_every_thread() {
        // 1 MiB blocks at k = 128 on two threads: one 4 KiB stripe each.
        assert_eq!(Plan::new(8192, 256, 2).stripe, SHORT_STRIPE);
        for threads in [1, 2, 3, 16] {
            for shard in [64, 1024, 8192, 12_352, 100_000, 1 << 20, 1 << 24] {
                let Plan { stripe, code_piece } = Plan::new(shard, 256, threads);
                assert!(code_piece.is_power_of_two() && (64..=stripe).contains(&code_piece));
                assert!(stripe.is_power_of_two() && (MIN_STRIPE..=MAX_STRIPE).contains(&stripe));
                // Stripes wanted at a given length: several per thread, one for short ones.
                let wanted = |stripe: usize| {
                    if stripe > SHORT_STRIPE {
                        STRIPES_PER_THREAD * threads
                    } else {
                        threads
                    }
                };
                assert!(
                    stripe == MIN_STRIPE || shard.div_ceil(stripe) >= wanted(stripe),
                    "shard {shard} threads {threads}: stripe {stripe}"
                );
                assert!(
                    stripe == MAX_STRIPE || shard.div_ceil(2 * stripe) < wanted(2 * stripe),
                    "shard {shard} threads {threads}: stripe {stripe}"
                );
            }
        }
    }
}
