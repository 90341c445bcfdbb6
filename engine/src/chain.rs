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
        Self::from_genesis(chain_id, EthereumHardfork::Prague, None, None)
    }

    /// The chain of an ethereum/tests fork name, with chain id 1: every fork through the named one
    /// active from genesis ("Cancun", "Shanghai", "Paris" or "Merge", "London", ..., "EIP150",
    /// "EIP158", "ConstantinopleFix", "Frontier"), or a timestamp transition
    /// `"<A>To<B>AtTime15k"` where B (Shanghai, Cancun or Prague) activates at timestamp 15,000.
    ///
    /// `None` for names this schedule cannot express: "Constantinople" without Petersburg
    /// (alloy-evm's fork-to-spec mapping goes from Petersburg straight to Byzantium, so it would
    /// run as Byzantium), block-number transitions, and forks after Prague (the fixtures hold no
    /// test of them, so the conformance runner does not claim them; mainnet replay does run
    /// them, with their blob parameters: [`crate::sequential::blob_params`]).
    pub fn for_test_fork(name: &str) -> Option<Self> {
        const TEST_CHAIN_ID: u64 = 1;
        let deposit_contract = Some(MAINNET_DEPOSIT_CONTRACT_ADDRESS);
        if let Some(transition) = name.strip_suffix("AtTime15k") {
            let (from, to) = transition.split_once("To")?;
            let (from, to) = (test_fork(from)?, test_fork(to)?);
            let position = |fork| FORKS.iter().position(|candidate| *candidate == fork);
            // Only a timestamp fork can activate at a time, and only the one right after `from`.
            if !is_timestamp_fork(to) || position(to)? != position(from)? + 1 {
                return None;
            }
            let later = (to, ForkCondition::Timestamp(15_000));
            return Some(Self::from_genesis(TEST_CHAIN_ID, from, deposit_contract, Some(later)));
        }
        Some(Self::from_genesis(TEST_CHAIN_ID, test_fork(name)?, deposit_contract, None))
    }

    /// Every fork through `last` active from genesis (block 0, timestamp 0, total difficulty 0),
    /// plus optionally one later fork on its own condition.
    fn from_genesis(
        chain_id: u64,
        last: EthereumHardfork,
        deposit_contract: Option<Address>,
        later: Option<(EthereumHardfork, ForkCondition)>,
    ) -> Self {
        let through = FORKS.iter().position(|fork| *fork == last).map_or(0, |index| index + 1);
        let schedule = FORKS[..through].iter().map(|fork| {
            let condition = match fork {
                EthereumHardfork::Paris => ForkCondition::TTD {
                    activation_block_number: 0,
                    fork_block: Some(0),
                    total_difficulty: U256::ZERO,
                },
                fork if is_timestamp_fork(*fork) => ForkCondition::Timestamp(0),
                _ => ForkCondition::Block(0),
            };
            (*fork, condition)
        });
        Self {
            chain_id,
            hardforks: EthereumChainHardforks::new(schedule.chain(later)),
            deposit_contract,
        }
    }
}

/// The forks a chain built by [`ChainSpec::from_genesis`] can hold, in activation order.
const FORKS: [EthereumHardfork; 17] = [
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
    EthereumHardfork::Paris,
    EthereumHardfork::Shanghai,
    EthereumHardfork::Cancun,
    EthereumHardfork::Prague,
];

fn is_timestamp_fork(fork: EthereumHardfork) -> bool {
    matches!(fork, EthereumHardfork::Shanghai | EthereumHardfork::Cancun | EthereumHardfork::Prague)
}

/// The hardfork an ethereum/tests fork name stands for.
fn test_fork(name: &str) -> Option<EthereumHardfork> {
    Some(match name {
        "Frontier" => EthereumHardfork::Frontier,
        "Homestead" => EthereumHardfork::Homestead,
        "EIP150" => EthereumHardfork::Tangerine,
        "EIP158" => EthereumHardfork::SpuriousDragon,
        "Byzantium" => EthereumHardfork::Byzantium,
        "ConstantinopleFix" | "Petersburg" => EthereumHardfork::Petersburg,
        "Istanbul" => EthereumHardfork::Istanbul,
        "Berlin" => EthereumHardfork::Berlin,
        "London" => EthereumHardfork::London,
        "Paris" | "Merge" => EthereumHardfork::Paris,
        "Shanghai" => EthereumHardfork::Shanghai,
        "Cancun" => EthereumHardfork::Cancun,
        "Prague" => EthereumHardfork::Prague,
        _ => return None,
    })
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
    fn test_forks_map_to_their_specs() {
        let spec_of = |name: &str, timestamp| {
            let chain = ChainSpec::for_test_fork(name).unwrap();
            alloy_evm::spec_by_timestamp_and_block_number(&chain, timestamp, 1)
        };
        assert_eq!(spec_of("Cancun", 0), SpecId::CANCUN);
        assert_eq!(spec_of("Shanghai", 0), SpecId::SHANGHAI);
        assert_eq!(spec_of("Merge", 0), SpecId::MERGE);
        assert_eq!(spec_of("London", 0), SpecId::LONDON);
        assert_eq!(spec_of("ConstantinopleFix", 0), SpecId::PETERSBURG);
        assert_eq!(spec_of("EIP150", 0), SpecId::TANGERINE);
        assert_eq!(spec_of("Frontier", 0), SpecId::FRONTIER);
        assert_eq!(spec_of("Prague", 0), SpecId::PRAGUE);
        assert_eq!(spec_of("ShanghaiToCancunAtTime15k", 14_999), SpecId::SHANGHAI);
        assert_eq!(spec_of("ShanghaiToCancunAtTime15k", 15_000), SpecId::CANCUN);
        for unsupported in
            ["Constantinople", "Osaka", "BerlinToLondonAt5", "ShanghaiToPragueAtTime15k", ""]
        {
            assert!(ChainSpec::for_test_fork(unsupported).is_none(), "{unsupported}");
        }
    }

    /// Mainnet's blob parameters change at Cancun, Prague, Osaka and the blob-parameter-only
    /// forks after it: a block after Osaka must not get Prague's (its blob base fee, excess and
    /// maximum all differ).
    #[test]
    fn mainnet_blob_parameters_follow_its_forks() {
        use crate::sequential::blob_params;
        use alloy_eips::eip7840::BlobParams;
        use alloy_hardforks::mainnet::*;
        let mainnet = ChainSpec::mainnet();
        let at = |timestamp| blob_params(&mainnet, timestamp);
        assert_eq!(at(MAINNET_CANCUN_TIMESTAMP - 1), None);
        assert_eq!(at(MAINNET_CANCUN_TIMESTAMP), Some(BlobParams::cancun()));
        assert_eq!(at(MAINNET_PRAGUE_TIMESTAMP - 1), Some(BlobParams::cancun()));
        assert_eq!(at(MAINNET_PRAGUE_TIMESTAMP), Some(BlobParams::prague()));
        assert_eq!(at(MAINNET_OSAKA_TIMESTAMP), Some(BlobParams::osaka()));
        assert_eq!(at(MAINNET_BPO1_TIMESTAMP - 1), Some(BlobParams::osaka()));
        assert_eq!(at(MAINNET_BPO1_TIMESTAMP), Some(BlobParams::bpo1()));
        assert_eq!(at(MAINNET_BPO2_TIMESTAMP), Some(BlobParams::bpo2()));
        assert_eq!(at(u64::MAX), Some(BlobParams::bpo2()));
        assert_eq!(BlobParams::bpo2().max_blob_count, 21, "BPO2 allows 21 blobs a block");
        // The dev chain stays on Prague's.
        assert_eq!(blob_params(&ChainSpec::dev(DEV_CHAIN_ID), 0), Some(BlobParams::prague()));
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
