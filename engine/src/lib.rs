//! `zero-engine`: the execution engine of a block producer.
//!
//! What exists today (see the crate map in README.md for what is planned):
//! - [`chain`]: the chain specification (mainnet, or a dev chain with every fork through Prague
//!   active from genesis) that decides the hardfork of each block.
//! - [`database`]: the adapter that presents any [`zero_state::StateReader`] to revm.
//! - [`intake`]: EIP-2718 decoding and parallel sender recovery.
//! - [`sequential`]: the oracle — alloy-evm's Ethereum block executor run over a block's
//!   transactions in order. Every faster path is compared against it.
//! - [`parallel`]: the FAFO parallel engine — ParaLyze prediction, scheduling, pinned workers,
//!   validation and in-order commit; equal to the oracle bit for bit.
//! - [`devchain`]: a chain of produced blocks on top of a state store: headers, base fee, state
//!   root and block hashes per block; optionally each block's commit overlapping the next block.
//! - [`pipeline`]: the layered read of a block whose commit is still running.
//! - [`replay`]: re-execution of Ethereum mainnet block fixtures, checked against their headers.
//! - [`conformance`]: ethereum/tests (`BlockchainTests`, `GeneralStateTests`) through the engine
//!   and our state stores, with Ethereum state roots computed beside the store.
//! - [`trie`]: Merkle-Patricia roots of transaction and receipt lists, built in parallel.
//! - [`bench`]: the macro-benchmark behind `zero-producer bench`.
//! - [`workload_prediction`]: access sets of generated workload transactions from their fields
//!   and the workload contracts' storage layout, without executing them.
//! - [`schedule_stats`]: producer-mode framing figures of a generated workload, behind
//!   `zero-producer schedule-stats`.

pub mod bench;
pub mod chain;
pub mod conformance;
pub mod database;
pub mod devchain;
mod error;
pub mod genesis;
pub mod intake;
pub mod parallel;
pub mod pipeline;
pub mod replay;
pub mod schedule_stats;
pub mod sequential;
pub mod state_bench;
pub mod trie;
pub mod workload_prediction;

pub use error::ExecutionError;
