//! Intake: raw EIP-2718 bytes in, transactions with recovered senders out.
//!
//! Decoding and sender recovery (one secp256k1 public-key recovery per transaction, the costly
//! part) run in parallel on rayon's pool; the output keeps the input order.

use alloy_consensus::{transaction::SignerRecoverable, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::Bytes;
use rayon::prelude::*;

/// A transaction with its sender recovered.
pub type RecoveredTx = alloy_consensus::transaction::Recovered<TxEnvelope>;

/// A transaction that cannot enter the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The bytes are not an EIP-2718 transaction.
    #[error("transaction {index}: cannot decode: {reason}")]
    Decode {
        /// Position in the input.
        index: usize,
        /// The decoder's message.
        reason: String,
    },
    /// The signature does not recover to a sender.
    #[error("transaction {index}: invalid signature: {reason}")]
    InvalidSignature {
        /// Position in the input.
        index: usize,
        /// The recovery error.
        reason: String,
    },
}

/// Decodes one EIP-2718 transaction; `index` only labels the error.
pub fn decode_transaction(index: usize, raw: &[u8]) -> Result<TxEnvelope, IntakeError> {
    let mut cursor = raw;
    let envelope = TxEnvelope::decode_2718(&mut cursor)
        .map_err(|error| IntakeError::Decode { index, reason: error.to_string() })?;
    if !cursor.is_empty() {
        return Err(IntakeError::Decode {
            index,
            reason: format!("{} trailing bytes after the transaction", cursor.len()),
        });
    }
    Ok(envelope)
}

/// Recovers the sender of `envelope` (EIP-2 low-s rule enforced).
pub fn recover(index: usize, envelope: TxEnvelope) -> Result<RecoveredTx, IntakeError> {
    let sender = envelope
        .recover_signer()
        .map_err(|error| IntakeError::InvalidSignature { index, reason: error.to_string() })?;
    Ok(RecoveredTx::new_unchecked(envelope, sender))
}

/// Decodes and recovers every transaction of `raw`, in parallel, keeping order.
pub fn intake(raw: &[Bytes]) -> Result<Vec<RecoveredTx>, IntakeError> {
    raw.par_iter()
        .enumerate()
        .map(|(index, bytes)| recover(index, decode_transaction(index, bytes)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_trailing_bytes_are_typed_errors() {
        assert!(matches!(
            intake(&[Bytes::from_static(&[0x02, 0xff])]),
            Err(IntakeError::Decode { index: 0, .. })
        ));
        assert!(matches!(intake(&[Bytes::new()]), Err(IntakeError::Decode { .. })));
    }
}
