//! Access sets of generated workload transactions, predicted from their fields and the workload
//! contracts' storage layout, without executing them.
//!
//! Producer mode frames transactions by their access sets before any of them runs. ParaLyze
//! ([`predict`](crate::parallel::predict)) finds a contract call's set by simulating it with
//! revm; for the calls of [`zero_fixtures::workload`] the keys follow from the call itself,
//! because the generator fixes the contracts' storage layout ([`zero_fixtures::contracts`]) and
//! every pool trades `token0` = [`TOKEN_X`] for `token1` = [`TOKEN_Y`]:
//!
//! - `Token.transfer(to, amount)`: reads the token's account (its code); reads and writes
//!   `balanceOf[sender]` and `balanceOf[to]`.
//! - `Pair.swap(amountIn, zeroForOne, minAmountOut)`: reads the pool's account, `token0` and
//!   `token1`, and both tokens' accounts; reads and writes both reserves; in the input token
//!   reads `allowance[sender][pool]` (genesis approves the maximum, which `transferFrom` never
//!   lowers) and writes `balanceOf[sender]` and `balanceOf[pool]`; in the output token writes the
//!   same two balances.
//! - Anything else, plain transfers included: [`Prediction::from_fields`].
//!
//! Every transaction writes its sender's account (nonce and gas). For transactions as the
//! generator makes them (non-zero amounts, balances and approvals in genesis) the prediction is
//! key for key what a revm simulation records; the tests check that against
//! [`predict`](crate::parallel::predict) in [`PredictionMode::Simulate`](crate::parallel::PredictionMode::Simulate).

use crate::{
    intake::RecoveredTx,
    parallel::{overlay::ReadKey, Prediction},
};
use alloy_consensus::Transaction as _;
use alloy_primitives::{map::AddressSet, Address, U256};
use rayon::prelude::*;
use zero_fixtures::{
    contracts::{
        allowance_slot, balance_slot, PAIR_RESERVE0_SLOT, PAIR_RESERVE1_SLOT, PAIR_TOKEN0_SLOT,
        PAIR_TOKEN1_SLOT, SWAP_SELECTOR, TRANSFER_SELECTOR,
    },
    workload::{TOKEN_X, TOKEN_Y},
};

/// Length of `transfer(address,uint256)` calldata: selector and two words.
const TRANSFER_INPUT_BYTES: usize = 4 + 2 * 32;
/// Length of `swap(uint256,bool,uint256)` calldata: selector and three words.
const SWAP_INPUT_BYTES: usize = 4 + 3 * 32;

/// Predicts every transaction of a workload whose pools are `pools`, in parallel, in order.
/// A set, built once per workload: there may be up to 2^20 pools, and every swap looks its pool
/// up.
pub fn predict_workload(
    transactions: &[RecoveredTx],
    pools: &AddressSet,
    beneficiary: Address,
) -> Vec<Prediction> {
    transactions.par_iter().map(|tx| predict_transaction(tx, pools, beneficiary)).collect()
}

/// Predicts one transaction; see the module documentation.
pub fn predict_transaction(
    tx: &RecoveredTx,
    pools: &AddressSet,
    beneficiary: Address,
) -> Prediction {
    let sender = tx.signer();
    let plain_call = tx.value().is_zero()
        && tx.access_list().is_none_or(|list| list.is_empty())
        && tx.authorization_list().is_none_or(|list| list.is_empty());
    let input = tx.input();
    match tx.to() {
        Some(token)
            if plain_call
                && (token == TOKEN_X || token == TOKEN_Y)
                && input.len() == TRANSFER_INPUT_BYTES
                && input[..4] == TRANSFER_SELECTOR =>
        {
            match address_word(&input[4..36]) {
                Some(recipient) => token_transfer(sender, beneficiary, token, recipient),
                None => Prediction::from_fields(tx, beneficiary),
            }
        }
        Some(pool)
            if plain_call
                && pools.contains(&pool)
                && input.len() == SWAP_INPUT_BYTES
                && input[..4] == SWAP_SELECTOR =>
        {
            match bool_word(&input[36..68]) {
                Some(zero_for_one) => swap(sender, beneficiary, pool, zero_for_one),
                None => Prediction::from_fields(tx, beneficiary),
            }
        }
        _ => Prediction::from_fields(tx, beneficiary),
    }
}

/// An ABI address argument: 12 zero bytes, then the address (Solidity rejects anything else).
fn address_word(word: &[u8]) -> Option<Address> {
    word[..12].iter().all(|&byte| byte == 0).then(|| Address::from_slice(&word[12..32]))
}

/// An ABI bool argument: 0 or 1 (Solidity rejects anything else).
fn bool_word(word: &[u8]) -> Option<bool> {
    match U256::from_be_slice(word) {
        value if value.is_zero() => Some(false),
        value if value == U256::from(1) => Some(true),
        _ => None,
    }
}

/// `token.transfer(recipient, amount)` sent by `sender`.
fn token_transfer(
    sender: Address,
    beneficiary: Address,
    token: Address,
    recipient: Address,
) -> Prediction {
    let written = vec![
        ReadKey::Account(sender),
        ReadKey::Storage(token, balance_slot(sender)),
        ReadKey::Storage(token, balance_slot(recipient)),
    ];
    let mut accessed = written.clone();
    accessed.push(ReadKey::Account(token));
    Prediction::new(sender, beneficiary, accessed, written, false, false)
}

/// `pool.swap(amountIn, zero_for_one, minAmountOut)` sent by `sender`.
fn swap(sender: Address, beneficiary: Address, pool: Address, zero_for_one: bool) -> Prediction {
    let (token_in, token_out) = if zero_for_one { (TOKEN_X, TOKEN_Y) } else { (TOKEN_Y, TOKEN_X) };
    let pool_slot = |slot: u64| ReadKey::Storage(pool, U256::from(slot));
    let written = vec![
        ReadKey::Account(sender),
        pool_slot(PAIR_RESERVE0_SLOT),
        pool_slot(PAIR_RESERVE1_SLOT),
        ReadKey::Storage(token_in, balance_slot(sender)),
        ReadKey::Storage(token_in, balance_slot(pool)),
        ReadKey::Storage(token_out, balance_slot(pool)),
        ReadKey::Storage(token_out, balance_slot(sender)),
    ];
    let mut accessed = written.clone();
    accessed.extend([
        ReadKey::Account(pool),
        pool_slot(PAIR_TOKEN0_SLOT),
        pool_slot(PAIR_TOKEN1_SLOT),
        ReadKey::Account(TOKEN_X),
        ReadKey::Account(TOKEN_Y),
        ReadKey::Storage(token_in, allowance_slot(sender, pool)),
    ]);
    Prediction::new(sender, beneficiary, accessed, written, false, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bench::block_gas_limit,
        chain::{ChainSpec, DEV_CHAIN_ID},
        devchain::DevChain,
        intake::intake,
        parallel::{predict, CodeCache, PredictionMode},
        sequential::evm_env,
    };
    use zero_fixtures::workload::{HotSpot, Workload, WorkloadConfig, WorkloadKind};
    use zero_state::MemoryState;

    /// Generates `kind` on the dev chain, predicts every transaction both ways against genesis
    /// and returns how many were simulated contract calls.
    fn compare_with_simulation(kind: WorkloadKind, hot_spot: Option<HotSpot>) -> usize {
        let mut config = WorkloadConfig::new(kind, 60, 300, 300, 11);
        config.chain_id = DEV_CHAIN_ID;
        config.hot_spot = hot_spot;
        let workload = Workload::generate(&config).unwrap();
        let chain = ChainSpec::dev(DEV_CHAIN_ID);
        let dev = DevChain::genesis(
            chain.clone(),
            MemoryState::new(),
            &workload.genesis,
            block_gas_limit(config.block_txs),
        )
        .unwrap();
        let transactions = intake(&workload.blocks[0]).unwrap();
        let env = evm_env(&chain, &dev.next_header(workload.coinbase, &[]));
        let simulated = predict(
            &transactions,
            PredictionMode::Simulate,
            &env,
            workload.coinbase,
            dev.state(),
            &CodeCache::default(),
        )
        .unwrap();
        let pools = workload.pools.iter().copied().collect();
        let from_layout = predict_workload(&transactions, &pools, workload.coinbase);
        assert_eq!(simulated.len(), 300);
        for (index, (simulated, from_layout)) in simulated.iter().zip(&from_layout).enumerate() {
            assert_eq!(simulated.accessed(), from_layout.accessed(), "{kind} tx {index}: reads");
            assert_eq!(simulated.written(), from_layout.written(), "{kind} tx {index}: writes");
            assert_eq!(simulated.touches_beneficiary(), from_layout.touches_beneficiary());
            assert_eq!(simulated.task(), from_layout.task(), "{kind} tx {index}: task");
        }
        simulated.iter().filter(|prediction| prediction.simulated()).count()
    }

    #[test]
    fn erc20_prediction_equals_the_simulated_access_set() {
        assert_eq!(compare_with_simulation(WorkloadKind::Erc20, None), 300);
    }

    #[test]
    fn swap_prediction_equals_the_simulated_access_set() {
        assert_eq!(compare_with_simulation(WorkloadKind::Amm, None), 300);
        let hot = HotSpot { fraction: 0.5, accounts: 3 };
        assert_eq!(compare_with_simulation(WorkloadKind::Amm, Some(hot)), 300);
    }

    #[test]
    fn mixed_and_transfer_predictions_equal_the_simulated_access_sets() {
        let calls = compare_with_simulation(WorkloadKind::Mixed, None);
        // About half the mixed workload are contract calls (30% ERC20, 20% swaps).
        assert!((100..200).contains(&calls), "{calls} simulated calls");
        assert_eq!(compare_with_simulation(WorkloadKind::Transfers, None), 0);
    }

    #[test]
    fn abi_words_outside_their_type_are_not_decoded() {
        let mut word = [0u8; 32];
        assert_eq!(bool_word(&word), Some(false));
        word[31] = 1;
        assert_eq!(bool_word(&word), Some(true));
        word[31] = 2;
        assert_eq!(bool_word(&word), None);
        word[12] = 0xaa;
        assert!(address_word(&word).is_some());
        word[11] = 1;
        assert_eq!(address_word(&word), None);
    }
}
