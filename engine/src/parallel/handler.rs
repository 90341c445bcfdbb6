//! Running one transaction on a worker: revm's mainnet handler with the beneficiary's fee held
//! back ([`DeferredFeeHandler`]), and [`credit_fee`], which pays it at commit exactly as revm
//! would have.
//!
//! Every transaction pays the block's beneficiary, so executed as is, every pair of
//! transactions would conflict on one account. revm warms the beneficiary lazily, so a
//! transaction that runs without the reward step never loads the beneficiary unless its own code
//! touches it; the fee is computed with revm's formula and credited when the transaction commits,
//! in block order. A transaction whose code does touch the beneficiary cannot use a deferred fee:
//! it runs with the full mainnet handler at a point where every earlier transaction has committed
//! (the coinbase barrier, ARCHITECTURE §3.5).

use alloy_primitives::{Address, U256};
use revm::{
    context::{result::HaltReason, ContextTr},
    context_interface::{result::InvalidTransaction, Block, Cfg, Transaction as _},
    handler::{EvmTr, EvmTrError, FrameResult, FrameTr, Handler},
    interpreter::{interpreter_action::FrameInit, Gas},
    primitives::hardfork::SpecId,
    state::{Account, AccountInfo, EvmState, TransactionId},
};
use std::{cell::Cell, marker::PhantomData};

/// revm's mainnet handler, except that the beneficiary is not paid: the fee it would have
/// received is kept in [`DeferredFeeHandler::fee`] (`None` when fee charging is disabled and
/// revm would not have touched the beneficiary at all).
pub struct DeferredFeeHandler<EVM, ERROR, FRAME> {
    fee: Cell<Option<U256>>,
    _phantom: PhantomData<(EVM, ERROR, FRAME)>,
}

impl<EVM, ERROR, FRAME> DeferredFeeHandler<EVM, ERROR, FRAME> {
    /// A handler with no fee recorded.
    pub fn new() -> Self {
        Self { fee: Cell::new(None), _phantom: PhantomData }
    }

    /// The fee of the last run.
    pub fn fee(&self) -> Option<U256> {
        self.fee.get()
    }
}

impl<EVM, ERROR, FRAME> Handler for DeferredFeeHandler<EVM, ERROR, FRAME>
where
    EVM: EvmTr<
        Context: ContextTr<Journal: revm::context::JournalTr<State = EvmState>>,
        Frame = FRAME,
    >,
    ERROR: EvmTrError<EVM> + From<InvalidTransaction>,
    FRAME: FrameTr<FrameResult = FrameResult, FrameInit = FrameInit>,
{
    type Evm = EVM;
    type Error = ERROR;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        self.fee.set(beneficiary_fee(evm.ctx(), exec_result.gas()));
        Ok(())
    }
}

/// The fee revm's `reward_beneficiary` pays for a transaction that used `gas`, or `None` when it
/// would not touch the beneficiary.
fn beneficiary_fee<CTX: ContextTr>(context: &CTX, gas: &Gas) -> Option<U256> {
    if context.cfg().is_fee_charge_disabled() {
        return None;
    }
    let basefee = context.block().basefee() as u128;
    let effective_gas_price = context.tx().effective_gas_price(basefee);
    let coinbase_gas_price = if context.cfg().spec().into().is_enabled_in(SpecId::LONDON) {
        effective_gas_price.saturating_sub(basefee)
    } else {
        effective_gas_price
    };
    let effective_used = gas.used().saturating_sub(gas.reservoir());
    Some(U256::from(coinbase_gas_price * effective_used as u128))
}

/// Pays `fee` to `beneficiary` in a transaction's final state, as revm's journal would have at
/// the end of the transaction: load the account (`current`: its committed value), touch it, add
/// the fee (an overflowing credit is skipped, as revm skips it), then apply revm's pre-EIP-161
/// normalisation to it. The beneficiary must not be in `state` already (the caller re-executes
/// such transactions with the full handler instead).
pub fn credit_fee(
    state: &mut EvmState,
    beneficiary: Address,
    current: Option<AccountInfo>,
    fee: U256,
    spec: SpecId,
) {
    debug_assert!(!state.contains_key(&beneficiary));
    let mut account = match current {
        Some(info) => Account::from(info),
        None => Account::new_not_existing(TransactionId::ZERO),
    };
    account.mark_touch();
    if let Some(balance) = account.info.balance.checked_add(fee) {
        account.info.balance = balance;
    }
    if !spec.is_enabled_in(SpecId::SPURIOUS_DRAGON)
        && account.is_empty()
        && !account.is_selfdestructed()
        && !account.is_created()
    {
        if account.is_loaded_as_not_existing() {
            account.mark_created();
        } else {
            account.unmark_touch();
        }
    }
    state.insert(beneficiary, account);
}
