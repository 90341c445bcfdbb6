//! The adapter that lets revm read a [`StateReader`].

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    database_interface::{DBErrorMarker, DatabaseRef},
    state::AccountInfo,
};
use zero_state::{StateError, StateReader, KECCAK_EMPTY};

/// A state read failed while revm was executing.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// An account names code the store does not hold.
    #[error("code {code_hash} is not in the state")]
    MissingCode {
        /// The missing hash.
        code_hash: B256,
    },
    /// `BLOCKHASH` asked for a block the store does not know.
    #[error("hash of block {number} is not in the state")]
    MissingBlockHash {
        /// The block number asked for.
        number: u64,
    },
}

impl DBErrorMarker for DatabaseError {}

/// Presents a [`StateReader`] as revm's [`DatabaseRef`].
#[derive(Clone, Copy)]
pub struct StateDatabase<S> {
    state: S,
}

// revm's database bound asks for Debug; the store behind it need not provide one.
impl<S> std::fmt::Debug for StateDatabase<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDatabase").finish_non_exhaustive()
    }
}

impl<S: StateReader> StateDatabase<S> {
    /// Wraps `state`.
    pub fn new(state: S) -> Self {
        Self { state }
    }
}

impl<S: StateReader> DatabaseRef for StateDatabase<S> {
    type Error = DatabaseError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        Ok(self.state.account(address)?.map(account_info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        stored_code(&self.state, code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Self::Error> {
        Ok(self.state.storage(address, index)?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        self.state.block_hash(number)?.ok_or(DatabaseError::MissingBlockHash { number })
    }
}

/// Stored code, analysed for revm. Bytes that start like an EIP-7702 delegation but are not one
/// (a pre-state may hold them; EIP-3541 stopped new code starting with 0xEF) are ordinary code,
/// whose first byte halts a call, as other clients run them: revm's `Bytecode::new_raw` would
/// panic on them.
fn analysed(code: alloy_primitives::Bytes) -> Bytecode {
    Bytecode::new_raw_checked(code.clone()).unwrap_or_else(|_| Bytecode::new_legacy(code))
}

/// The code `state` holds under `code_hash` (not the empty code's), analysed for revm: what
/// both engines' databases serve.
pub(crate) fn stored_code<S: StateReader>(
    state: &S,
    code_hash: B256,
) -> Result<Bytecode, DatabaseError> {
    match state.code(code_hash)? {
        Some(code) => Ok(analysed(code)),
        None => Err(DatabaseError::MissingCode { code_hash }),
    }
}

/// A store account as revm sees it (code is fetched by hash when needed).
pub(crate) fn account_info(account: zero_state::Account) -> AccountInfo {
    // Every field spelled out: `AccountInfo::default()` clones a process-wide empty `Bytecode`,
    // whose reference count workers on different cores would pass back and forth.
    AccountInfo {
        balance: account.balance,
        nonce: account.nonce,
        code_hash: account.code_hash,
        account_id: None,
        code: None,
    }
}

/// An account as the store holds it (code lives apart, by hash).
pub(crate) fn store_account(info: &AccountInfo) -> zero_state::Account {
    zero_state::Account { nonce: info.nonce, balance: info.balance, code_hash: info.code_hash }
}
