//! Integration tests of `zero-scheduler`: property tests over random blocks under heavy contention,
//! the bit-sliced filter against the `bloomfilter` crate, and the watermark releaser driven by
//! several threads.

mod blocks;
mod filter_oracle;
mod release_threads;
mod schedule_properties;
mod shared_keys;
