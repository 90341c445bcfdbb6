//! ParaLyze: the access set each transaction is predicted to have, before it runs.
//!
//! - A plain transfer (no input, a recipient without code, no access list or authorizations) is
//!   predicted from its fields: it writes its sender, and writes its recipient when it moves
//!   value (reads it otherwise). A payment to an account with code (a contract, or an EIP-7702
//!   delegation) runs that code, so it is simulated: one account read decides, where a
//!   prediction from fields would miss whatever the code touches and cost a re-run.
//! - The recipient of a plain transfer that moves value, other than the sender and the
//!   beneficiary, is *credited* ([`Prediction::credited`]): nothing the payment does depends on
//!   its balance, so the plan lets payments into one account run side by side and the executor
//!   adds each one to the balance current at its commit. Whether the recipient really has no
//!   code is checked where the payment runs and again at its commit, so a prediction from fields
//!   alone may name a contract: that run is then a misprediction, validated as any other.
//! - Anything else is simulated with revm against the state the block starts from (in parallel
//!   across rayon's pool), recording every account and slot it reads and which of them it
//!   changes. The simulation ignores nonce and balance checks, so a sender's later transactions
//!   and senders funded earlier in the block are still simulated; one that fails anyway falls
//!   back to the prediction from fields.
//!
//! A prediction may be wrong: the block may change what a transaction touches (a pointer in
//! storage, a balance that decides a branch). Execution never trusts it for correctness — every
//! read is validated at commit — it only decides what runs concurrently; a wrong prediction
//! costs one re-execution, counted as a misprediction.

use super::{
    handler::DeferredFeeHandler,
    overlay::{BlockOverlay, ReadKey},
    view::{CodeCache, WorkerView},
};
use crate::{intake::RecoveredTx, ExecutionError};
use alloy_consensus::Transaction as _;
use alloy_evm::{EvmEnv, EvmFactory, FromRecoveredTx};
use alloy_primitives::Address;
use rayon::prelude::*;
use revm::{
    context::{ContextSetters, TxEnv},
    context_interface::{result::EVMError, ContextTr, JournalTr},
    handler::{EthFrame, Handler},
    state::EvmState,
};
use zero_scheduler::{AccessSet, KeyPrefix, SenderId, Task};
use zero_state::{StateKey, StateReader};

/// How access sets are predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PredictionMode {
    /// Plain transfers from their fields, everything else by simulation (ParaLyze).
    #[default]
    Simulate,
    /// Every transaction from its fields only (sender and recipient): no simulation cost, and
    /// contract calls are left to validation — optimistic execution.
    Fields,
}

impl PredictionMode {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Simulate => "simulate",
            Self::Fields => "fields",
        }
    }
}

/// The predicted access set of one transaction, as exact keys, and the scheduler's task for it.
///
/// The task's key prefixes are SHA-256 hashes of the keys (ARCHITECTURE §5), so they are
/// computed here, once, where a producer admits the transaction, rather than on the block's
/// path. The fields are private so the task always describes the same keys: the executor skips
/// validating a run that stayed inside its prediction only because the plan, built from the
/// task, kept it apart from every conflicting run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    accessed: Vec<ReadKey>,
    written: Vec<ReadKey>,
    touches_beneficiary: bool,
    simulated: bool,
    credited: Option<Address>,
    task: Task,
}

impl Prediction {
    /// The prediction from a transaction's fields alone.
    pub fn from_fields(tx: &RecoveredTx, beneficiary: Address) -> Self {
        let sender = tx.signer();
        let mut accessed = vec![ReadKey::Account(sender)];
        let mut written = vec![ReadKey::Account(sender)];
        if let Some(to) = tx.to() {
            accessed.push(ReadKey::Account(to));
            if !tx.value().is_zero() {
                written.push(ReadKey::Account(to));
            }
        }
        let touches_beneficiary = accessed.contains(&ReadKey::Account(beneficiary));
        let credited = tx.to().filter(|&to| {
            !tx.value().is_zero() && to != sender && to != beneficiary && is_plain_transfer(tx)
        });
        Self::build(sender, beneficiary, accessed, written, touches_beneficiary, false, credited)
    }

    /// A prediction from keys in any order, with duplicates allowed: `accessed` must include
    /// every key of `written`. `touches_beneficiary` puts `beneficiary` in the task as a read.
    pub(crate) fn new(
        sender: Address,
        beneficiary: Address,
        accessed: Vec<ReadKey>,
        written: Vec<ReadKey>,
        touches_beneficiary: bool,
        simulated: bool,
    ) -> Self {
        Self::build(sender, beneficiary, accessed, written, touches_beneficiary, simulated, None)
    }

    /// [`Self::new`] with `credited`, one of the written accounts, marked as a credit.
    fn build(
        sender: Address,
        beneficiary: Address,
        mut accessed: Vec<ReadKey>,
        mut written: Vec<ReadKey>,
        touches_beneficiary: bool,
        simulated: bool,
        credited: Option<Address>,
    ) -> Self {
        accessed.sort_unstable();
        accessed.dedup();
        written.sort_unstable();
        written.dedup();
        let task =
            task_from_keys(&accessed, &written, touches_beneficiary, credited, sender, beneficiary);
        Self { accessed, written, touches_beneficiary, simulated, credited, task }
    }

    /// Every key predicted to be read or written, sorted.
    pub fn accessed(&self) -> &[ReadKey] {
        &self.accessed
    }

    /// The keys predicted to change, sorted (a subset of [`accessed`](Self::accessed)).
    pub fn written(&self) -> &[ReadKey] {
        &self.written
    }

    /// The transaction's own code or fields touch the block's beneficiary: it must see every
    /// earlier fee, so it waits for all earlier transactions (the coinbase barrier).
    pub fn touches_beneficiary(&self) -> bool {
        self.touches_beneficiary
    }

    /// The prediction came from a simulation (not from the fields alone).
    pub fn simulated(&self) -> bool {
        self.simulated
    }

    /// The account this transaction is predicted only to pay value into, without code to run
    /// and without reading it otherwise: the scheduler's task marks it as a credit
    /// ([`AccessSet::credits`]). It is also among [`written`](Self::written).
    pub fn credited(&self) -> Option<Address> {
        self.credited
    }

    /// The scheduler's task: read-only and read-write key prefixes, the sender's key, and the
    /// beneficiary's key as a read when the barrier applies.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Whether an execution that read `reads` and changed `writes` stayed inside this
    /// prediction; `beneficiary` is left out on both sides (its fee is handled apart).
    pub fn covers(
        &self,
        reads: impl IntoIterator<Item = ReadKey>,
        writes: impl IntoIterator<Item = ReadKey>,
        beneficiary: Address,
    ) -> bool {
        let skip = ReadKey::Account(beneficiary);
        // A handful of keys is the common case: comparing for equality beats ordering them.
        let contains = |keys: &[ReadKey], key: &ReadKey| {
            if keys.len() <= 16 {
                keys.contains(key)
            } else {
                keys.binary_search(key).is_ok()
            }
        };
        reads.into_iter().all(|key| key == skip || contains(&self.accessed, &key))
            && writes.into_iter().all(|key| key == skip || contains(&self.written, &key))
    }
}

/// The task for sorted, deduplicated `accessed` and `written` keys; `credited`, one of the
/// written accounts, becomes a credit.
fn task_from_keys(
    accessed: &[ReadKey],
    written: &[ReadKey],
    touches_beneficiary: bool,
    credited: Option<Address>,
    sender: Address,
    beneficiary: Address,
) -> Task {
    let prefix = |key: &ReadKey| match *key {
        ReadKey::Account(address) => StateKey::Account(address).hash().prefix(),
        ReadKey::Storage(address, slot) => StateKey::Storage(address, slot).hash().prefix(),
    };
    let read_only = accessed
        .iter()
        .filter(|key| written.binary_search(key).is_err())
        .map(prefix)
        .chain(touches_beneficiary.then(|| StateKey::Account(beneficiary).hash().prefix()));
    let mut read_write: Vec<KeyPrefix> = written.iter().map(prefix).collect();
    // The sender is almost always among the written keys: its hash is already there.
    let sender_key = match written.binary_search(&ReadKey::Account(sender)) {
        Ok(index) => read_write[index],
        Err(_) => StateKey::Account(sender).hash().prefix(),
    };
    let credit = credited
        .and_then(|account| written.binary_search(&ReadKey::Account(account)).ok())
        .map(|index| read_write.remove(index));
    Task::single(SenderId(sender_key), AccessSet::with_credits(read_only, read_write, credit))
}

/// Whether `tx` is a plain value transfer by its fields (the recipient's code is checked apart,
/// in [`has_code`]).
fn is_plain_transfer(tx: &RecoveredTx) -> bool {
    tx.to().is_some()
        && tx.input().is_empty()
        && tx.access_list().is_none_or(|list| list.is_empty())
        && tx.authorization_list().is_none_or(|list| list.is_empty())
}

/// Whether the recipient of `tx` has code (a contract, or an EIP-7702 delegation) at the block's
/// start: a payment to it runs that code, which its fields do not predict.
fn has_code<S: StateReader>(state: &S, tx: &RecoveredTx) -> Result<bool, ExecutionError> {
    let Some(to) = tx.to() else { return Ok(false) };
    Ok(state.account(to)?.is_some_and(|account| account.has_code()))
}

/// Keys a finished execution changed: accounts whose value changed (or that were created,
/// destroyed or cleared as empty) and slots whose value changed.
pub(crate) fn written_keys(state: &EvmState) -> impl Iterator<Item = ReadKey> + '_ {
    state.iter().filter(|(_, account)| account.is_touched()).flat_map(|(address, account)| {
        // `is_changed` compares balance, nonce and code hash in place; `original_info()` would
        // clone the account's shared `Bytecode`.
        let changed = account.is_created()
            || account.is_selfdestructed()
            || account.is_empty()
            || account.is_changed();
        changed.then_some(ReadKey::Account(*address)).into_iter().chain(
            account.changed_storage_slots().map(|(slot, _)| ReadKey::Storage(*address, *slot)),
        )
    })
}

/// Predicts the access sets of `transactions` against `state` (the block's starting state).
pub fn predict<S: StateReader>(
    transactions: &[RecoveredTx],
    mode: PredictionMode,
    env: &EvmEnv,
    beneficiary: Address,
    state: &S,
    codes: &CodeCache,
) -> Result<Vec<Prediction>, ExecutionError> {
    if mode == PredictionMode::Fields {
        // Hashing the keys is most of the work; small blocks stay on this thread.
        return Ok(transactions
            .par_iter()
            .with_min_len(256)
            .map(|tx| Prediction::from_fields(tx, beneficiary))
            .collect());
    }
    // Simulations see the block-start state: one overlay, used only as the read cache.
    let cache = BlockOverlay::new();
    let mut env = env.clone();
    env.cfg_env.disable_nonce_check = true;
    env.cfg_env.disable_balance_check = true;
    transactions
        .par_iter()
        .map_init(
            || {
                alloy_evm::EthEvmFactory::default()
                    .create_evm(WorkerView::new(&cache, state, codes), env.clone())
                    .into_inner()
            },
            |evm, tx| {
                if is_plain_transfer(tx) && !has_code(state, tx)? {
                    return Ok(Prediction::from_fields(tx, beneficiary));
                }
                // Each simulation starts with an empty log of loaded accounts, as a worker's
                // run does: otherwise it grows with every simulation on this thread.
                evm.ctx.journal_mut().db_mut().clear_reads();
                evm.ctx.set_tx(TxEnv::from_recovered_tx(tx.inner(), tx.signer()));
                let mut handler = DeferredFeeHandler::<_, EVMError<_>, EthFrame>::new();
                let outcome = handler.run(evm);
                let state = evm.ctx.journal_mut().finalize();
                let reads = evm.ctx.journal_mut().db_mut().take_reads();
                match outcome {
                    Ok(_) => {
                        let written = written_keys(&state).collect();
                        let touches = state.contains_key(&beneficiary);
                        let accessed = reads.into_iter().map(|(key, _)| key).collect();
                        Ok(Prediction::new(
                            tx.signer(),
                            beneficiary,
                            accessed,
                            written,
                            touches,
                            true,
                        ))
                    }
                    // A store failure is real; an invalid transaction is judged at execution.
                    Err(EVMError::Database(error)) => Err(ExecutionError::from(error)),
                    Err(_) => Ok(Prediction::from_fields(tx, beneficiary)),
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;

    #[test]
    fn coverage_ignores_the_beneficiary_and_checks_writes() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let coinbase = Address::repeat_byte(0xcb);
        let prediction = Prediction::new(
            a,
            coinbase,
            vec![ReadKey::Account(a), ReadKey::Account(b)],
            vec![ReadKey::Account(a)],
            false,
            false,
        );
        assert!(prediction.covers([ReadKey::Account(b)], [ReadKey::Account(a)], coinbase));
        assert!(prediction.covers([ReadKey::Account(coinbase)], [], coinbase));
        assert!(!prediction.covers([], [ReadKey::Account(b)], coinbase), "b predicted read-only");
        assert!(!prediction.covers([ReadKey::Storage(a, U256::ZERO)], [], coinbase));
    }
}
