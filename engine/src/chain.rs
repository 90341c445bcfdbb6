//! Chain specification: which hardfork rules apply to a block.

use alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS;
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, U256};

/// Chain id of the dev chain the workloads run on.
pub const DEV_CHAIN_ID: u64 = 1337;

/// A chain: its id, its hardfork schedule and its deposit contract.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// The EIP-155 chain id.
    pub chain_id: u64,
    hardforks: EthereumChainHardforks,
    deposit_contract: Option<Address>,
}

impl ChainSpec {
    /// Ethereum mainnet, Frontier through today.
    pub fn mainnet() -> Self {
        Self {
            chain_id: 1,
            hardforks: EthereumChainHardforks::mainnet(),
            deposit_contract: Some(MAINNET_DEPOSIT_CONTRACT_ADDRESS),
        }
    }

    /// A post-merge chain with every fork through Prague active from genesis, as a new zone
    /// starts. Its system contracts (EIP-4788, 2935, 7002, 7251) must be in genesis:
    /// [`crate::genesis::system_contracts`].
    pub fn dev(chain_id: u64) -> Self {
        let by_block = [
            EthereumHardfork::Frontier,
            EthereumHardfork::Homestead,
            EthereumHardfork::Tangerine,
            EthereumHardfork::SpuriousDragon,
            EthereumHardfork::Byzantium,
            EthereumHardfork::Constantinople,
            EthereumHardfork::Petersburg,
            EthereumHardfork::Istanbul,
            EthereumHardfork::MuirGlacier,
            EthereumHardfork::Berlin,
            EthereumHardfork::London,
            EthereumHardfork::ArrowGlacier,
            EthereumHardfork::GrayGlacier,
        ]
        .map(|fork| (fork, ForkCondition::Block(0)));
        let merge = (
            EthereumHardfork::Paris,
            ForkCondition::TTD {
                activation_block_number: 0,
                fork_block: Some(0),
                total_difficulty: U256::ZERO,
            },
        );
        let by_time =
            [EthereumHardfork::Shanghai, EthereumHardfork::Cancun, EthereumHardfork::Prague]
                .map(|fork| (fork, ForkCondition::Timestamp(0)));
        Self {
            chain_id,
            hardforks: EthereumChainHardforks::new(
                by_block.into_iter().chain([merge]).chain(by_time),
            ),
            deposit_contract: None,
        }
    }
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.hardforks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainSpec {
    fn deposit_contract_address(&self) -> Option<Address> {
        self.deposit_contract
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revm::primitives::hardfork::SpecId;

    #[test]
    fn dev_chain_is_prague_from_genesis() {
        let spec =
            alloy_evm::spec_by_timestamp_and_block_number(&ChainSpec::dev(DEV_CHAIN_ID), 0, 0);
        assert_eq!(spec, SpecId::PRAGUE);
    }

    #[test]
    fn mainnet_forks_by_block() {
        let mainnet = ChainSpec::mainnet();
        let at = |number| alloy_evm::spec_by_timestamp_and_block_number(&mainnet, 0, number);
        assert_eq!(at(46_147), SpecId::FRONTIER);
        assert_eq!(at(4_370_000), SpecId::BYZANTIUM);
        assert_eq!(at(12_965_000), SpecId::LONDON);
    }
}
