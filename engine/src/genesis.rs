//! Turning a list of starting accounts into the first committed block of a store.

use alloy_eips::{
    eip2935::{HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE},
    eip4788::{BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CODE},
    eip7002::{WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_PREDEPLOY_CODE},
    eip7251::{CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_CODE},
};
use alloy_primitives::{keccak256, B256, U256};
use zero_fixtures::GenesisAccount;
use zero_state::{Account, BlockChanges, StorageChange, KECCAK_EMPTY};

/// The system contracts a Prague chain calls every block, as deployed on mainnet.
pub fn system_contracts() -> Vec<GenesisAccount> {
    [
        (BEACON_ROOTS_ADDRESS, &BEACON_ROOTS_CODE),
        (HISTORY_STORAGE_ADDRESS, &HISTORY_STORAGE_CODE),
        (WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, &WITHDRAWAL_REQUEST_PREDEPLOY_CODE),
        (CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, &CONSOLIDATION_REQUEST_PREDEPLOY_CODE),
    ]
    .into_iter()
    .map(|(address, code)| GenesisAccount {
        address,
        nonce: 1,
        balance: U256::ZERO,
        code: Some(code.clone()),
        storage: Vec::new(),
    })
    .collect()
}

/// The change set that creates `accounts` (and records `block_hashes`) at `height`.
pub fn genesis_changes(
    height: u64,
    accounts: &[GenesisAccount],
    block_hashes: &[(u64, B256)],
) -> BlockChanges {
    let mut changes = BlockChanges::new(height);
    for account in accounts {
        let code_hash = match &account.code {
            Some(code) => {
                let hash = keccak256(code);
                changes.code.push((hash, code.clone()));
                hash
            }
            None => KECCAK_EMPTY,
        };
        changes.accounts.push((
            account.address,
            Some(Account { nonce: account.nonce, balance: account.balance, code_hash }),
        ));
        if !account.storage.is_empty() {
            changes.storage.push(StorageChange {
                address: account.address,
                wiped: false,
                slots: account.storage.clone(),
            });
        }
    }
    changes.code.sort_unstable_by_key(|(hash, _)| *hash);
    changes.code.dedup_by_key(|(hash, _)| *hash);
    changes.block_hashes = block_hashes.to_vec();
    changes
}
