//! Key derivation (ARCHITECTURE §4).
//!
//! Every piece of state is stored under the SHA-256 digest of its name:
//! - an account under `SHA-256(address)` (20 bytes hashed),
//! - a storage slot under `SHA-256(address ‖ slot)` (52 bytes hashed, the key shape of QMDB's own
//!   benchmark),
//! - contract code under `SHA-256("code" ‖ code_hash)` (36 bytes hashed).
//!
//! The three pre-images have different lengths, so no two kinds of key can share a pre-image.
//! Hashing spreads keys uniformly over the 16 shards and over the scheduler's Bloom filters.

use alloy_primitives::{Address, B256, U256};
use sha2::{Digest, Sha256};

/// Number of QMDB shards; a key's shard is the top 4 bits of its hash.
pub const SHARD_COUNT: usize = 16;

/// Bytes of the key hash the scheduler uses as an access-set key (80 bits).
pub const KEY_PREFIX_BYTES: usize = 10;

/// The scheduler's 80-bit key: the first [`KEY_PREFIX_BYTES`] bytes of a [`KeyHash`].
pub type KeyPrefix = [u8; KEY_PREFIX_BYTES];

/// Domain tag in front of a code hash, so code keys never collide with account keys.
const CODE_TAG: &[u8; 4] = b"code";

/// The name of one piece of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKey {
    /// An account's nonce, balance and code hash.
    Account(Address),
    /// One storage slot of an account.
    Storage(Address, U256),
    /// Contract code, by its keccak-256 hash.
    Code(B256),
}

impl StateKey {
    /// The SHA-256 key hash the store files this key under.
    pub fn hash(&self) -> KeyHash {
        let mut hasher = Sha256::new();
        match self {
            Self::Account(address) => hasher.update(address.as_slice()),
            Self::Storage(address, slot) => {
                hasher.update(address.as_slice());
                hasher.update(slot.to_be_bytes::<32>());
            }
            Self::Code(code_hash) => {
                hasher.update(CODE_TAG);
                hasher.update(code_hash.as_slice());
            }
        }
        KeyHash(hasher.finalize().into())
    }
}

/// SHA-256 digest of a [`StateKey`]; the order of keys in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The shard this key lives in: its top 4 bits.
    #[inline]
    pub fn shard(&self) -> usize {
        usize::from(self.0[0] >> 4)
    }

    /// The scheduler's 80-bit access-set key.
    #[inline]
    pub fn prefix(&self) -> KeyPrefix {
        let mut prefix = [0u8; KEY_PREFIX_BYTES];
        prefix.copy_from_slice(&self.0[..KEY_PREFIX_BYTES]);
        prefix
    }

    /// The raw 32 bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl core::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyHash({})", B256::from(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256};

    #[test]
    fn account_key_is_sha256_of_address() {
        // SHA-256 of twenty zero bytes.
        let hash = StateKey::Account(Address::ZERO).hash();
        assert_eq!(
            B256::from(hash.0),
            b256!("de47c9b27eb8d300dbb5f2c353e632c393262cf06340c4fa7f1b40c4cbd36f90")
        );
    }

    #[test]
    fn kinds_of_key_do_not_collide() {
        let address = address!("00000000000000000000000000000000000000aa");
        let account = StateKey::Account(address).hash();
        let slot = StateKey::Storage(address, U256::ZERO).hash();
        let code = StateKey::Code(B256::ZERO).hash();
        assert_ne!(account, slot);
        assert_ne!(account, code);
        assert_ne!(slot, code);
    }

    #[test]
    fn shard_and_prefix_come_from_the_top_bytes() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xf3;
        bytes[9] = 0x42;
        let hash = KeyHash(bytes);
        assert_eq!(hash.shard(), 15);
        assert_eq!(hash.prefix()[0], 0xf3);
        assert_eq!(hash.prefix()[9], 0x42);
    }
}
