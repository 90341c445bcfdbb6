//! Intake: raw EIP-2718 bytes in, transactions with recovered senders out.
//!
//! Decoding and sender recovery (one secp256k1 public-key recovery per transaction, the costly
//! part) run in parallel on rayon's pool; the output keeps the input order.

use alloy_consensus::{transaction::SignerRecoverable, Signed, TxEnvelope};
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
    /// A blob transaction's sidecar (its network form) does not match its versioned hashes, or
    /// its KZG proofs do not verify.
    #[error("transaction {index}: invalid blob sidecar: {reason}")]
    Sidecar {
        /// Position in the input.
        index: usize,
        /// What the check found.
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
    without_sidecar(index, envelope)
}

/// A blob transaction as a block holds it: in its network form (EIP-4844) it also carries its
/// blobs, commitments and proofs, which must not reach the block's transactions root (its hash
/// already leaves them out). The sidecar is checked first: its commitments must hash to the
/// transaction's versioned hashes and its KZG proofs (blob proofs, or EIP-7594 cell proofs) must
/// verify, else the transaction is refused, since the data it pays for would not be there.
fn without_sidecar(index: usize, envelope: TxEnvelope) -> Result<TxEnvelope, IntakeError> {
    use alloy_consensus::TxEip4844Variant;
    use alloy_eips::eip4844::env_settings::EnvKzgSettings;
    match envelope {
        TxEnvelope::Eip4844(signed) => {
            if let TxEip4844Variant::TxEip4844WithSidecar(with) = signed.tx() {
                with.sidecar
                    .validate(&with.tx.blob_versioned_hashes, EnvKzgSettings::Default.get())
                    .map_err(|error| IntakeError::Sidecar { index, reason: error.to_string() })?;
            }
            let (tx, signature, hash) = signed.into_parts();
            let (tx, _) = tx.strip_sidecar();
            Ok(TxEnvelope::Eip4844(Signed::new_unchecked(tx, signature, hash)))
        }
        other => Ok(other),
    }
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

    /// A blob transaction sent with its sidecar (the network form) enters without it: encoded
    /// for the block, it is the bare transaction, with the same hash and sender. A sidecar that
    /// does not match the versioned hashes, or whose proof does not verify, is refused.
    #[test]
    fn a_blob_transaction_enters_without_its_sidecar() {
        use alloy_consensus::{TxEip4844, TxEip4844Variant, TxEip4844WithSidecar};
        use alloy_eips::{
            eip2718::Encodable2718,
            eip4844::{Blob, BlobTransactionSidecar, Bytes48},
        };
        use alloy_primitives::B256;
        use zero_fixtures::workload::{derive_key, sign_and_encode};
        let (secret, sender) = derive_key(3, 0);
        // A valid blob: every 32-byte field element below the field's modulus.
        let mut blob = Blob::repeat_byte(7);
        for element in blob.chunks_mut(32) {
            element[0] = 0;
        }
        let settings = alloy_eips::eip4844::env_settings::EnvKzgSettings::Default;
        let sidecar =
            BlobTransactionSidecar::try_from_blobs_with_settings(vec![blob], settings.get())
                .unwrap();
        let tx = TxEip4844 {
            chain_id: 1,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            max_fee_per_blob_gas: 1,
            blob_versioned_hashes: sidecar.versioned_hashes().collect(),
            ..Default::default()
        };
        let bare = sign_and_encode(
            TxEip4844Variant::<BlobTransactionSidecar>::TxEip4844(tx.clone()),
            &secret,
        );
        let network = |tx: TxEip4844, sidecar: BlobTransactionSidecar| {
            sign_and_encode(
                TxEip4844Variant::TxEip4844WithSidecar(TxEip4844WithSidecar::from_tx_and_sidecar(
                    tx, sidecar,
                )),
                &secret,
            )
        };
        let valid = network(tx.clone(), sidecar.clone());
        assert!(valid.len() > bare.len() + 131_072, "the network form carries the blob");
        let entered = intake(&[valid, bare.clone()]).unwrap();
        assert_eq!(entered[0].inner().encoded_2718(), bare.to_vec());
        assert_eq!(entered[0].tx_hash(), entered[1].tx_hash());
        assert_eq!((entered[0].signer(), entered[1].signer()), (sender, sender));

        // A versioned hash the commitment does not give; a proof that does not verify.
        let other_hash =
            TxEip4844 { blob_versioned_hashes: vec![B256::repeat_byte(1)], ..tx.clone() };
        let mut bad_proof = sidecar.clone();
        bad_proof.proofs = vec![Bytes48::repeat_byte(9)];
        for raw in [network(other_hash, sidecar), network(tx, bad_proof)] {
            let error = intake(&[bare.clone(), raw]).unwrap_err();
            assert!(matches!(error, IntakeError::Sidecar { index: 1, .. }), "{error}");
        }
    }

    #[test]
    fn garbage_and_trailing_bytes_are_typed_errors() {
        assert!(matches!(
            intake(&[Bytes::from_static(&[0x02, 0xff])]),
            Err(IntakeError::Decode { index: 0, .. })
        ));
        assert!(matches!(intake(&[Bytes::new()]), Err(IntakeError::Decode { .. })));
    }
}
