//! Value encoding (ARCHITECTURE §4): how an account and a storage slot are laid out as bytes in
//! the store. The encoding is fixed-width so that a corrupted or truncated value is always caught.

use alloy_primitives::{b256, B256, U256};

/// keccak-256 of the empty byte string: the code hash of an account without code.
pub const KECCAK_EMPTY: B256 =
    b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

/// Encoded length of an [`Account`]: nonce (8) ‖ balance (32) ‖ code hash (32).
pub const ACCOUNT_ENCODED_LEN: usize = 72;

/// An account as the store keeps it. Code lives apart, under its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Account {
    /// Transactions sent (or contracts created) by this account.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// keccak-256 of the account's code; [`KECCAK_EMPTY`] when it has none.
    pub code_hash: B256,
}

impl Default for Account {
    fn default() -> Self {
        Self { nonce: 0, balance: U256::ZERO, code_hash: KECCAK_EMPTY }
    }
}

/// A stored value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The bytes have the wrong length for the kind of value.
    #[error("encoded {kind} is {found} bytes, expected {expected}")]
    Length {
        /// What was being decoded.
        kind: &'static str,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
}

impl Account {
    /// An account holding `balance` wei, no code and nonce 0.
    pub fn with_balance(balance: U256) -> Self {
        Self { balance, ..Self::default() }
    }

    /// Whether the account has code.
    pub fn has_code(&self) -> bool {
        self.code_hash != KECCAK_EMPTY && self.code_hash != B256::ZERO
    }

    /// Fixed-width encoding: nonce big-endian ‖ balance big-endian ‖ code hash.
    pub fn encode(&self) -> [u8; ACCOUNT_ENCODED_LEN] {
        let mut out = [0u8; ACCOUNT_ENCODED_LEN];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..].copy_from_slice(self.code_hash.as_slice());
        out
    }

    /// Inverse of [`Account::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        if bytes.len() != ACCOUNT_ENCODED_LEN {
            return Err(ValueError::Length {
                kind: "account",
                expected: ACCOUNT_ENCODED_LEN,
                found: bytes.len(),
            });
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&bytes[..8]);
        Ok(Self {
            nonce: u64::from_be_bytes(nonce),
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..]),
        })
    }
}

/// Encodes a storage value as 32 big-endian bytes.
pub fn encode_storage(value: U256) -> [u8; 32] {
    value.to_be_bytes::<32>()
}

/// Inverse of [`encode_storage`].
pub fn decode_storage(bytes: &[u8]) -> Result<U256, ValueError> {
    if bytes.len() != 32 {
        return Err(ValueError::Length { kind: "storage value", expected: 32, found: bytes.len() });
    }
    Ok(U256::from_be_slice(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn account_round_trips(nonce: u64, balance: [u8; 32], code_hash: [u8; 32]) {
            let account = Account {
                nonce,
                balance: U256::from_be_bytes(balance),
                code_hash: B256::from(code_hash),
            };
            prop_assert_eq!(Account::decode(&account.encode()).unwrap(), account);
        }

        #[test]
        fn storage_round_trips(value: [u8; 32]) {
            let value = U256::from_be_bytes(value);
            prop_assert_eq!(decode_storage(&encode_storage(value)).unwrap(), value);
        }
    }

    #[test]
    fn wrong_lengths_are_typed_errors() {
        assert_eq!(
            Account::decode(&[0u8; 71]),
            Err(ValueError::Length { kind: "account", expected: 72, found: 71 })
        );
        assert!(decode_storage(&[0u8; 33]).is_err());
    }
}
