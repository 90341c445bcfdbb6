//! `zero-state`: the state boundary of the Zero execution engine.
//!
//! The engine reads state through [`StateReader`] (`&self`, safe to share between worker threads)
//! and writes one block at a time through [`StateCommit`], which returns the state root of the
//! block. Both the in-memory store ([`MemoryState`]) and QMDB implement the same pair of traits, so
//! the executor is never bound to one store, and the store never depends on revm: the engine owns
//! the small adapter that presents a [`StateReader`] to revm as a `DatabaseRef`.
//!
//! Keys and values have one canonical encoding, shared by every store and by the scheduler's
//! access sets:
//! - [`StateKey`] names an account, a storage slot or a piece of code, and [`KeyHash`] is its
//!   SHA-256 digest (ARCHITECTURE §4), whose first 10 bytes are the scheduler's key prefix and
//!   whose top 4 bits choose one of 16 shards.
//! - [`Account`] encodes to 72 bytes (nonce, balance, code hash); a storage value to 32 bytes.

mod changes;
mod error;
mod keys;
mod memory;
pub mod qmdb;
mod traits;
mod value;

pub use changes::{BlockChanges, StorageChange};
pub use error::StateError;
pub use keys::{KeyHash, KeyPrefix, StateKey, KEY_PREFIX_BYTES, SHARD_COUNT};
pub use memory::MemoryState;
pub use qmdb::{Config as QmdbConfig, Qmdb};
pub use traits::{Locked, SharedCommit, StateCommit, StateReader};
pub use value::{
    decode_storage, encode_storage, Account, ValueError, ACCOUNT_ENCODED_LEN, KECCAK_EMPTY,
};
