//! Tests not run, each with its reason.
//!
//! Every entry is also on revm's own state-test skip list (`bins/revme/src/cmd/statetest/
//! runner.rs`), and each was checked to fail here for that reason; nothing else is skipped. The
//! storage-collision files are skipped in both forms: ethereum/tests ships each state test also
//! as a blockchain test (`BlockchainTests/GeneralStateTests`), where the filler's collision shows
//! as a header gas used of the whole gas limit.

use super::report::Suite;
use std::path::Path;

/// One skipped fixture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The suites whose copy of the file is skipped.
    pub suites: &'static [Suite],
    /// Its file name.
    pub file: &'static str,
    /// Why its tests are not run.
    pub reason: &'static str,
}

/// EIP-7610's storage case, which revm does not model.
const STORAGE_COLLISION: &str = "creates a contract at an address whose pre-state holds storage \
    but no code and nonce 0; EIP-7610 makes that a collision, which revm does not detect (it does \
    not check storage emptiness) — such accounts cannot arise on a chain, and revm skips this file";

/// Both suites.
const BOTH: &[Suite] = &[Suite::State, Suite::Blockchain];

/// Every skipped file.
pub const SKIPS: &[Skip] = &[
    Skip { suites: BOTH, file: "InitCollisionParis.json", reason: STORAGE_COLLISION },
    Skip { suites: BOTH, file: "create2collisionStorageParis.json", reason: STORAGE_COLLISION },
    Skip {
        suites: BOTH,
        file: "dynamicAccountOverwriteEmpty_Paris.json",
        reason: STORAGE_COLLISION,
    },
    Skip { suites: BOTH, file: "RevertInCreateInInit_Paris.json", reason: STORAGE_COLLISION },
    Skip { suites: BOTH, file: "RevertInCreateInInitCreate2Paris.json", reason: STORAGE_COLLISION },
    Skip {
        suites: &[Suite::State],
        file: "ValueOverflowParis.json",
        reason: "its value field is a 257-bit \"0x:bigint\" literal, which no 256-bit loader \
            reads (revm's included); the file cannot load, and revm skips it",
    },
];

/// Why the tests in `path` are skipped, if they are.
pub fn skip_reason(suite: Suite, path: &Path) -> Option<&'static str> {
    let file = path.file_name()?.to_str()?;
    SKIPS
        .iter()
        .find(|skip| skip.suites.contains(&suite) && skip.file == file)
        .map(|skip| skip.reason)
}
