//! The names the suites give a refusal (`expectException`), and whether a refusal met is one
//! the test expects.
//!
//! The suites name refusals `TransactionException.NAME` or `BlockException.NAME`
//! (execution-spec-tests' vocabulary), several joined by `|` where any will do. A [`Refusal`]
//! lists the names of one refusal met here: revm's `InvalidTransaction` maps to transaction
//! names ([`transaction_names`]), a broken chain rule to block names
//! ([`BlockError::refusal`](super::BlockError::refusal)), and bytes that do not decode meet
//! every decoding name, since the decoder does not say which fault it met. Where fillers of
//! different versions name one refusal differently, each name is accepted. An expectation in
//! the legacy form, with no such name, cannot be matched: any refusal meets it.

use revm::context::result::InvalidTransaction;

/// One refusal, as the suites name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `BlockException` names, without the prefix.
    pub block: &'static [&'static str],
    /// `TransactionException` names, without the prefix.
    pub transaction: &'static [&'static str],
    /// The bytes did not decode, or a signature did not recover: every decoding name.
    pub undecodable: bool,
}

impl Refusal {
    /// A refusal of bytes that do not decode to a block or a signed transaction.
    pub const UNDECODABLE: Self = Self { block: &[], transaction: &[], undecodable: true };

    /// A refusal the suites have no name for.
    pub const UNNAMED: Self = Self { block: &[], transaction: &[], undecodable: false };

    /// A broken block rule with these names.
    pub const fn block(names: &'static [&'static str]) -> Self {
        Self { block: names, transaction: &[], undecodable: false }
    }

    /// A refusal with these transaction names.
    pub const fn named_transaction(names: &'static [&'static str]) -> Self {
        Self { block: &[], transaction: names, undecodable: false }
    }

    /// revm's refusal of a transaction.
    pub fn transaction(invalid: &InvalidTransaction) -> Self {
        Self::named_transaction(transaction_names(invalid))
    }
}

/// Block names of a block that does not decode, beyond every `RLP_*` name.
const DECODING_BLOCK_EXCEPTIONS: &[&str] = &["INCORRECT_BLOCK_FORMAT"];

/// The suite's names for bytes that do not decode to a signed transaction: alloy's decoder
/// does not say which of these it met, so any of them matches a decoding failure.
///
/// `GASLIMIT_PRICE_PRODUCT_OVERFLOW` is among them: the gas limit is a 64-bit field, so a
/// product past 2^256 needs a fee per gas of at least 2^192, which alloy's 128-bit fee fields
/// refuse at decoding (revm would refuse it at validation; the vector fails either way).
const DECODING_TRANSACTION_EXCEPTIONS: &[&str] = &[
    "ADDRESS_TOO_LONG",
    "ADDRESS_TOO_SHORT",
    "EC_RECOVERY_FAIL",
    "GASLIMIT_OVERFLOW",
    "GASLIMIT_PRICE_PRODUCT_OVERFLOW",
    "GASPRICE_OVERFLOW",
    "INVALID_SIGNATURE_VRS",
    "NONCE_OVERFLOW",
    "PRIORITY_OVERFLOW",
    "TYPE_3_TX_CONTRACT_CREATION",
    // An authorization's fields past their sizes (alloy decodes `y_parity` as a byte).
    "TYPE_4_INVALID_AUTHORITY_SIGNATURE",
    "TYPE_4_INVALID_AUTHORITY_SIGNATURE_S_TOO_HIGH",
    "TYPE_4_INVALID_AUTHORIZATION_FORMAT",
    "TYPE_4_TX_CONTRACT_CREATION",
    "TYPE_NOT_SUPPORTED",
    "VALUE_OVERFLOW",
];

/// Whether `refusal` meets `expected`, a test's `expectException`.
pub fn expected_by(expected: &str, refusal: &Refusal) -> bool {
    // Each class: its prefix, the refusal's names in it, and its decoding names beyond `RLP_*`.
    let classes = [
        ("TransactionException.", refusal.transaction, DECODING_TRANSACTION_EXCEPTIONS),
        ("BlockException.", refusal.block, DECODING_BLOCK_EXCEPTIONS),
    ];
    let mut named = false;
    for name in expected.split('|').map(str::trim) {
        for (prefix, met, decoding_names) in classes {
            let Some(name) = name.strip_prefix(prefix) else { continue };
            named = true;
            let decoding = name.starts_with("RLP_") || decoding_names.contains(&name);
            if met.contains(&name) || (refusal.undecodable && decoding) {
                return true;
            }
        }
    }
    !named
}

/// The suite's names (`TransactionException.NAME` without its prefix) for a transaction revm
/// refuses; empty for a refusal the suite has no name for. Where fillers of different
/// versions name one refusal differently, each name is accepted.
pub fn transaction_names(invalid: &InvalidTransaction) -> &'static [&'static str] {
    use InvalidTransaction as Invalid;
    match invalid {
        Invalid::PriorityFeeGreaterThanMaxFee => {
            &["PRIORITY_GREATER_THAN_MAX_FEE_PER_GAS", "PRIORITY_GREATER_THAN_MAX_FEE_PER_GAS_2"]
        }
        Invalid::GasPriceLessThanBasefee => &["INSUFFICIENT_MAX_FEE_PER_GAS"],
        Invalid::CallerGasLimitMoreThanBlock => &["GAS_ALLOWANCE_EXCEEDED"],
        Invalid::CallGasCostMoreThanGasLimit { .. } => &["INTRINSIC_GAS_TOO_LOW"],
        // Fillers before the floor's own name used the intrinsic one.
        Invalid::GasFloorMoreThanGasLimit { .. } => {
            &["INTRINSIC_GAS_BELOW_FLOOR_GAS_COST", "INTRINSIC_GAS_TOO_LOW"]
        }
        Invalid::RejectCallerWithCode => &["SENDER_NOT_EOA"],
        Invalid::LackOfFundForMaxFee { .. } => &["INSUFFICIENT_ACCOUNT_FUNDS"],
        // revm refuses a cost past 128 bits, or a cost plus value past 256 bits; the
        // specification's unbounded arithmetic calls both a lack of funds (a product past
        // 2^256 cannot reach revm: see `DECODING_TRANSACTION_EXCEPTIONS`).
        Invalid::OverflowPaymentInTransaction => &[
            "INSUFFICIENT_ACCOUNT_FUNDS",
            "GASLIMIT_PRICE_PRODUCT_OVERFLOW",
            "VALUE_OVERFLOW",
            "GASPRICE_OVERFLOW",
            "PRIORITY_OVERFLOW",
        ],
        Invalid::NonceOverflowInTransaction => &["NONCE_IS_MAX", "NONCE_OVERFLOW"],
        Invalid::NonceTooHigh { .. } => &["NONCE_MISMATCH_TOO_HIGH", "NONCE_TOO_BIG"],
        Invalid::NonceTooLow { .. } => &["NONCE_MISMATCH_TOO_LOW"],
        Invalid::CreateInitCodeSizeLimit => &["INITCODE_SIZE_EXCEEDED"],
        Invalid::InvalidChainId | Invalid::MissingChainId => &["INVALID_CHAINID"],
        Invalid::TxGasLimitGreaterThanCap { .. } => &["GAS_LIMIT_EXCEEDS_MAXIMUM"],
        Invalid::BlobGasPriceGreaterThanMax { .. } => &["INSUFFICIENT_MAX_FEE_PER_BLOB_GAS"],
        Invalid::EmptyBlobs => &["TYPE_3_TX_ZERO_BLOBS"],
        Invalid::BlobCreateTransaction => &["TYPE_3_TX_CONTRACT_CREATION"],
        Invalid::TooManyBlobs { .. } => {
            &["TYPE_3_TX_BLOB_COUNT_EXCEEDED", "TYPE_3_TX_MAX_BLOB_GAS_ALLOWANCE_EXCEEDED"]
        }
        Invalid::BlobVersionNotSupported => &["TYPE_3_TX_INVALID_BLOB_VERSIONED_HASH"],
        Invalid::Eip4844NotSupported
        | Invalid::BlobVersionedHashesNotSupported
        | Invalid::MaxFeePerBlobGasNotSupported => &["TYPE_3_TX_PRE_FORK", "TYPE_NOT_SUPPORTED"],
        Invalid::Eip7702NotSupported | Invalid::AuthorizationListNotSupported => {
            &["TYPE_4_TX_PRE_FORK", "TYPE_NOT_SUPPORTED"]
        }
        Invalid::EmptyAuthorizationList => &["TYPE_4_EMPTY_AUTHORIZATION_LIST"],
        Invalid::AuthorizationListInvalidFields => &[
            "TYPE_4_INVALID_AUTHORIZATION_FORMAT",
            "TYPE_4_INVALID_AUTHORITY_SIGNATURE",
            "TYPE_4_INVALID_AUTHORITY_SIGNATURE_S_TOO_HIGH",
        ],
        Invalid::Eip2930NotSupported | Invalid::AccessListNotSupported => {
            &["TYPE_1_TX_PRE_FORK", "TYPE_NOT_SUPPORTED"]
        }
        Invalid::Eip1559NotSupported => &["TYPE_2_TX_PRE_FORK", "TYPE_NOT_SUPPORTED"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_meet_only_the_names_expected() {
        let expected = "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS|TransactionException.INTRINSIC_GAS_TOO_LOW";
        let intrinsic = InvalidTransaction::CallGasCostMoreThanGasLimit {
            initial_gas: 21_000,
            gas_limit: 1_000,
        };
        assert!(expected_by(expected, &Refusal::transaction(&intrinsic)));
        assert!(!expected_by(
            "TransactionException.NONCE_IS_MAX",
            &Refusal::transaction(&intrinsic)
        ));
        // A cost past 128 bits is a lack of funds to the specification.
        let overflow = Refusal::transaction(&InvalidTransaction::OverflowPaymentInTransaction);
        assert!(expected_by("TransactionException.INSUFFICIENT_ACCOUNT_FUNDS", &overflow));
        // Decoding failures meet decoding names only.
        assert!(expected_by("TransactionException.RLP_INVALID_VALUE", &Refusal::UNDECODABLE));
        assert!(expected_by(
            "TransactionException.GASLIMIT_PRICE_PRODUCT_OVERFLOW",
            &Refusal::UNDECODABLE
        ));
        assert!(!expected_by("TransactionException.INTRINSIC_GAS_TOO_LOW", &Refusal::UNDECODABLE));
        // A refusal the suite has no name for meets no name.
        assert!(!expected_by("TransactionException.INTRINSIC_GAS_TOO_LOW", &Refusal::UNNAMED));
        // The legacy form names nothing that can be matched.
        assert!(expected_by("TR_IntrinsicGas", &Refusal::UNNAMED));
        // Block names meet block refusals only, and decoding failures of blocks too.
        let gas_used = Refusal::block(&["INVALID_GAS_USED"]);
        assert!(expected_by("BlockException.INVALID_GAS_USED", &gas_used));
        assert!(!expected_by("BlockException.INVALID_STATE_ROOT", &gas_used));
        assert!(!expected_by("TransactionException.INVALID_GAS_USED", &gas_used));
        assert!(expected_by("BlockException.RLP_STRUCTURES_ENCODING", &Refusal::UNDECODABLE));
        assert!(expected_by("BlockException.INCORRECT_BLOCK_FORMAT", &Refusal::UNDECODABLE));
        assert!(!expected_by("BlockException.INVALID_GAS_USED", &Refusal::UNDECODABLE));
    }
}
