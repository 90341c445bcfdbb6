//! Errors of the state layer.

use crate::ValueError;

/// A state store could not answer or could not commit.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A stored value does not decode: the database is corrupted.
    #[error("corrupted value for {what}: {source}")]
    Corrupted {
        /// Which key was being read.
        what: String,
        /// What was wrong with it.
        source: ValueError,
    },
    /// A block was committed out of order.
    #[error("block {got} committed after block {last}; heights must increase by one")]
    HeightOutOfOrder {
        /// Last committed height.
        last: u64,
        /// Height of the rejected block.
        got: u64,
    },
    /// The change set is malformed (a key written twice, say).
    #[error("invalid change set for block {height}: {reason}")]
    InvalidChanges {
        /// Height of the rejected block.
        height: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A persistent store's files are damaged or inconsistent with its metadata.
    #[error("state database at {path} is corrupted: {reason}; restore the directory from a backup or rebuild it")]
    CorruptDatabase {
        /// The file or directory involved.
        path: String,
        /// What check failed.
        reason: String,
    },
    /// Another process holds the database directory.
    #[error("state database at {path} is in use by another process; stop it or choose another --datadir")]
    Locked {
        /// The directory.
        path: String,
    },
    /// The store cannot apply this change (see the message for the alternative).
    #[error("unsupported by this state store: {reason}")]
    Unsupported {
        /// What was asked and what to do instead.
        reason: String,
    },
    /// A commit panicked part way through while holding the store's lock ([`crate::Locked`]):
    /// the store may hold half a block, so it refuses every later read and commit.
    #[error("the state store was left part way through a commit that panicked; its state cannot be trusted: start again from the last block a persistent store committed, or from genesis")]
    Poisoned,
    /// An I/O failure in a persistent store.
    #[error("state store I/O error at {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}
