//! The FAFO parallel engine against the sequential oracle, over the same final order: identical
//! receipts, gas, logs, state changes and roots — on every workload, under contention, with
//! nonce chains, forced mispredictions and beneficiary readers, on 1, 2 and 8 threads, several
//! runs each, and on the mainnet fixture blocks in replay mode; and with each block's commit
//! running in the background while the next block executes (headers carrying the parent's root).

use alloy_consensus::{Header, TxEip1559, TxEip4844, TxEip7702};
use alloy_eips::{
    eip2930::{AccessList, AccessListItem},
    eip4844::DATA_GAS_PER_BLOB,
    eip7702::{Authorization, SignedAuthorization},
};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use zero_engine::{
    bench::block_gas_limit,
    chain::{ChainSpec, DEV_CHAIN_ID},
    conformance::{check_header, check_outcome},
    devchain::{DevChain, HeaderRoot, GENESIS_BASE_FEE},
    intake::{intake, RecoveredTx},
    parallel::{predict, schedule_block, ParallelExecutor, PredictionMode},
    replay::{prepare, replay_fafo, replay_sequential},
    sequential::{evm_env, execute_block, BlockInput},
};
use zero_fixtures::{
    discovery, mainnet,
    workload::{
        derive_key, sign_and_encode, sign_authorization, HotSpot, Workload, WorkloadConfig,
        WorkloadKind, COINBASE,
    },
    GenesisAccount,
};
use zero_scheduler::ScheduleMode;
use zero_state::{
    Account, BlockChanges, Locked, MemoryState, Qmdb, QmdbConfig, SharedCommit, StateCommit,
    StateError, StateReader,
};

/// What the parallel runs of [`differential`] did, summed over blocks.
#[derive(Default)]
struct Counts {
    mispredicted: u64,
    /// Tasks set aside behind an earlier call to the same contract.
    set_aside: u64,
    /// Blocks the parallel executor handed to the sequential one.
    sequential: u64,
    /// Accounts whose storage the blocks' change sets wipe (destroyed accounts).
    wiped: u64,
}

/// Runs every block of `workload` through FAFO (producer mode) on one chain and through the
/// oracle, over FAFO's order, on another; asserts the blocks are identical.
fn differential(
    genesis: &[GenesisAccount],
    blocks: &[Vec<RecoveredTx>],
    threads: usize,
    prediction: PredictionMode,
) -> Counts {
    differential_paying(genesis, blocks, threads, prediction, COINBASE)
}

/// [`differential`] with the blocks' fees paid to `beneficiary`.
fn differential_paying(
    genesis: &[GenesisAccount],
    blocks: &[Vec<RecoveredTx>],
    threads: usize,
    prediction: PredictionMode,
    beneficiary: Address,
) -> Counts {
    let gas_limit = block_gas_limit(blocks.iter().map(Vec::len).max().unwrap_or(1));
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let fafo = DevChain::genesis(chain.clone(), MemoryState::new(), genesis, gas_limit).unwrap();
    let oracle = DevChain::genesis(chain, MemoryState::new(), genesis, gas_limit).unwrap();
    differential_on(fafo, oracle, blocks, threads, prediction, beneficiary)
}

/// [`differential_paying`] on two given chains (same genesis, same header kind).
fn differential_on<S: StateReader + StateCommit>(
    mut fafo: DevChain<S>,
    mut oracle: DevChain<S>,
    blocks: &[Vec<RecoveredTx>],
    threads: usize,
    prediction: PredictionMode,
    beneficiary: Address,
) -> Counts {
    let executor = ParallelExecutor::new(Some(threads));
    let mut counts = Counts::default();
    let mut parent = (fafo.head().clone(), fafo.head().hash_slow());
    // FAFO's blocks back to back, so that a pipelined chain's next block starts while the
    // previous block's commit runs; then the oracle over the same orders.
    let produced: Vec<_> = blocks
        .iter()
        .map(|transactions| {
            let (block, report) =
                fafo.produce_fafo(beneficiary, transactions, &executor, prediction).unwrap();
            assert_eq!(report.transactions.len(), transactions.len());
            (block, report)
        })
        .collect();
    let spec = ChainSpec::dev(DEV_CHAIN_ID);
    for (block, report) in produced {
        let expected = oracle.produce_sequential(beneficiary, &report.transactions).unwrap();
        assert_eq!(block.outcome.receipts, expected.outcome.receipts, "receipts");
        assert_eq!(block.outcome.changes, expected.outcome.changes, "state changes");
        assert_eq!(block.header, expected.header, "header: roots, gas, bloom");
        assert_eq!(block.hash, expected.hash);
        // And the header passes Ethereum's own rules against its parent: base fee, blob gas and
        // its excess, gas used, transactions root, receipts root, bloom, withdrawals root.
        let body = alloy_consensus::BlockBody {
            transactions: report.transactions.iter().map(|tx| tx.inner().clone()).collect(),
            ommers: Vec::new(),
            withdrawals: Some(Default::default()),
        };
        let sealed = alloy_consensus::Block { header: block.header.clone(), body };
        check_header(&spec, &parent.0, parent.1, &sealed).unwrap();
        // The dev chain's state root is the store's (checked against the oracle's above), not a
        // Merkle-Patricia root this check could recompute: the header's own is passed.
        check_outcome(&spec, &sealed, &block.outcome, block.header.state_root).unwrap();
        parent = (block.header.clone(), block.hash);
        counts.mispredicted += report.execution.mispredicted;
        counts.set_aside += report.execution.set_aside;
        counts.sequential += u64::from(report.execution.sequential);
        counts.wiped +=
            block.outcome.changes.storage.iter().filter(|change| change.wiped).count() as u64;
    }
    assert_eq!(fafo.settle().unwrap(), oracle.settle().unwrap());
    assert_eq!(fafo.state().state_root(), oracle.state().state_root());
    counts
}

/// Blocks whose commit runs in the background while the next block executes, reading the
/// committing block's writes from memory: QMDB (reads go on during the commit) and the memory
/// store behind one lock (reads wait for it), against the oracle committing each block before
/// the next, both with headers that carry the parent's root.
#[test]
fn pipelined_commits_match_the_oracle() {
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let contended = Some(HotSpot { fraction: 0.5, accounts: 20 });
    for (index, kind) in
        [WorkloadKind::Transfers, WorkloadKind::Erc20, WorkloadKind::Amm, WorkloadKind::Mixed]
            .into_iter()
            .enumerate()
    {
        let (workload, blocks) = workload(kind, contended, 40 + index as u64);
        let genesis = &workload.genesis;
        let dirs = tempfile::tempdir().unwrap();
        let qmdb = |name: &str| Qmdb::open(dirs.path().join(name), QmdbConfig::default()).unwrap();
        let gas_limit = block_gas_limit(blocks.iter().map(Vec::len).max().unwrap_or(1));
        let open = |state| parent_root_chain(&chain, state, genesis, gas_limit);
        let mut fafo = open(qmdb("fafo")).pipelined().unwrap();
        let mut oracle = open(qmdb("oracle"));
        let genesis_root = oracle.head().state_root;
        let mut headers = Vec::new();
        let executor = ParallelExecutor::new(Some(2));
        let produced: Vec<_> = blocks
            .iter()
            .map(|transactions| {
                fafo.produce_fafo(COINBASE, transactions, &executor, PredictionMode::Simulate)
                    .unwrap()
            })
            .collect();
        for (block, report) in produced {
            let expected = oracle.produce_sequential(COINBASE, &report.transactions).unwrap();
            assert_eq!(block.outcome.receipts, expected.outcome.receipts, "{kind}: receipts");
            assert_eq!(block.outcome.changes, expected.outcome.changes, "{kind}: changes");
            assert_eq!(block.header, expected.header, "{kind}: header");
            headers.push((block.header, oracle.state().state_root()));
        }
        assert_eq!(fafo.settle().unwrap(), oracle.settle().unwrap(), "{kind}: final root");
        // Each header carries the root after its parent: the genesis root, then each block's.
        assert_eq!(headers[0].0.state_root, genesis_root);
        for pair in headers.windows(2) {
            assert_eq!(pair[1].0.state_root, pair[0].1, "{kind}: header {}", pair[1].0.number);
        }

        let memory = |state| parent_root_chain(&chain, state, genesis, gas_limit);
        let fafo = memory(Locked::new(MemoryState::new())).pipelined().unwrap();
        let oracle = memory(Locked::new(MemoryState::new()));
        differential_on(fafo, oracle, &blocks, 2, PredictionMode::Simulate, COINBASE);

        // A commit that starts late: the next block certainly executes while the store still
        // holds the state before the committing block, so every read of that block's writes
        // must come from memory.
        let late = || FaultyStore::late(Locked::new(MemoryState::new()));
        let fafo = parent_root_chain(&chain, late(), genesis, gas_limit).pipelined().unwrap();
        let oracle = parent_root_chain(&chain, late(), genesis, gas_limit);
        differential_on(fafo, oracle, &blocks, 2, PredictionMode::Simulate, COINBASE);
    }
}

fn parent_root_chain<S: StateReader + StateCommit>(
    chain: &ChainSpec,
    state: S,
    genesis: &[GenesisAccount],
    gas_limit: u64,
) -> DevChain<S> {
    DevChain::genesis_with(chain.clone(), state, genesis, gas_limit, HeaderRoot::Parent).unwrap()
}

/// A store whose background commits wait before they start, and which fails (as a full disk
/// would) the commit, or the hash record, of the block at the height given, if any.
struct FaultyStore<S> {
    inner: S,
    failing_commit: Option<u64>,
    failing_hash: Option<u64>,
}

impl<S> FaultyStore<S> {
    fn late(inner: S) -> Self {
        Self { inner, failing_commit: None, failing_hash: None }
    }

    fn check(failing: Option<u64>, height: u64) -> Result<(), StateError> {
        match failing == Some(height) {
            true => Err(StateError::Unsupported { reason: "no space left on the device".into() }),
            false => Ok(()),
        }
    }
}

impl<S: StateReader> StateReader for FaultyStore<S> {
    fn account(&self, address: Address) -> Result<Option<Account>, StateError> {
        self.inner.account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.inner.storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.inner.code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        self.inner.block_hash(number)
    }
}

impl<S: StateCommit> StateCommit for FaultyStore<S> {
    fn commit_block(&mut self, changes: &BlockChanges) -> Result<B256, StateError> {
        self.inner.commit_block(changes)
    }
    fn record_block_hash(&mut self, number: u64, hash: B256) -> Result<(), StateError> {
        Self::check(self.failing_hash, number)?;
        self.inner.record_block_hash(number, hash)
    }
    fn state_root(&self) -> B256 {
        self.inner.state_root()
    }
    fn last_height(&self) -> Option<u64> {
        self.inner.last_height()
    }
}

impl<S: SharedCommit> SharedCommit for FaultyStore<S> {
    fn commit_block_shared(&self, changes: &BlockChanges) -> Result<B256, StateError> {
        std::thread::sleep(std::time::Duration::from_millis(30));
        Self::check(self.failing_commit, changes.height)?;
        self.inner.commit_block_shared(changes)
    }
    fn record_block_hash_shared(&self, number: u64, hash: B256) -> Result<(), StateError> {
        Self::check(self.failing_hash, number)?;
        self.inner.record_block_hash_shared(number, hash)
    }
}

/// A background commit that fails stops the chain: the failure is reported once the next block
/// seals, and no block is built after it (the head's block never reached the store, so one
/// built on it would read the state before it and carry a wrong root).
#[test]
fn a_failed_background_commit_stops_the_chain() {
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let genesis = funded(2);
    let store = FaultyStore {
        failing_commit: Some(1),
        ..FaultyStore::late(Locked::new(MemoryState::new()))
    };
    let mut fafo = parent_root_chain(&chain, store, &genesis, 30_000_000).pipelined().unwrap();
    let executor = ParallelExecutor::new(Some(2));
    let block = |nonce| vec![signed(0, nonce, Address::repeat_byte(0x5), 1, Bytes::new())];
    let produce = |chain: &mut DevChain<_>, nonce| {
        chain.produce_fafo(COINBASE, &block(nonce), &executor, PredictionMode::Simulate)
    };
    // Block 1 seals; its commit fails in the background.
    produce(&mut fafo, 0).unwrap();
    // Block 2 needs block 1's root for its header: the failure surfaces there.
    let error = produce(&mut fafo, 1).unwrap_err();
    assert!(error.to_string().contains("no space left"), "{error}");
    // And every later attempt says why the chain stopped, instead of building on a store that
    // lacks block 1.
    for attempt in [
        produce(&mut fafo, 1).map(|_| ()),
        fafo.produce_sequential(COINBASE, &block(1)).map(|_| ()),
    ] {
        let error = attempt.unwrap_err();
        assert!(error.to_string().contains("the commit of block 1"), "{error}");
    }
    assert!(fafo.settle().is_err());
    assert_eq!(fafo.head().number, 1);
}

/// A block whose hash cannot be recorded after its commit stops the chain, however it commits:
/// the store then holds the block, so the head may not stay behind it (a retry would be refused
/// as out of order, and a next block would lack its parent's hash).
#[test]
fn a_block_whose_hash_was_not_recorded_stops_the_chain() {
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let genesis = funded(2);
    let executor = ParallelExecutor::new(Some(2));
    let block = |nonce| vec![signed(0, nonce, Address::repeat_byte(0x5), 1, Bytes::new())];
    let store = || FaultyStore {
        failing_hash: Some(1),
        ..FaultyStore::late(Locked::new(MemoryState::new()))
    };
    let own = DevChain::genesis(chain.clone(), store(), &genesis, 30_000_000).unwrap();
    let parent = parent_root_chain(&chain, store(), &genesis, 30_000_000);
    let pipelined = parent_root_chain(&chain, store(), &genesis, 30_000_000).pipelined().unwrap();
    for (name, mut dev, fails_at_once) in
        [("own", own, true), ("parent", parent, true), ("pipelined", pipelined, false)]
    {
        let first = dev.produce_fafo(COINBASE, &block(0), &executor, PredictionMode::Simulate);
        if fails_at_once {
            let error = first.unwrap_err();
            assert!(error.to_string().contains("no space left"), "{name}: {error}");
        } else {
            // The pipelined chain learns of it when block 2 needs block 1's root.
            first.unwrap();
            assert!(dev.settle().is_err(), "{name}");
        }
        assert_eq!(dev.state().last_height(), Some(1), "{name}: the store holds block 1");
        for nonce in [0, 1] {
            let error = dev.produce_sequential(COINBASE, &block(nonce)).unwrap_err();
            let expected = "block 1 was committed but its hash was not recorded";
            assert!(error.to_string().contains(expected), "{name}: {error}");
        }
    }
}

/// Code that starts like an EIP-7702 delegation but is not one (a pre-state may hold it) is
/// ordinary code whose first byte is an invalid opcode: a call to it halts, in both engines.
/// revm's analysis used to panic on it.
#[test]
fn code_that_only_looks_like_a_delegation_halts_the_call() {
    let mut genesis = funded(2);
    let odd = [Address::repeat_byte(0xe1), Address::repeat_byte(0xe2)];
    let codes: [&'static [u8]; 2] = [&[0xef, 0x01, 0x01], &[0xef, 0x01, 0x00, 0x12, 0x34]];
    genesis.extend(odd.into_iter().zip(codes).map(|(address, code)| contract(address, code)));
    let blocks = vec![vec![
        signed(0, 0, odd[0], 0, Bytes::from_static(&[1])),
        signed(1, 0, odd[1], 1, Bytes::new()),
    ]];
    for threads in [1, 2] {
        for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
            differential(&genesis, &blocks, threads, prediction);
        }
    }
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let mut oracle = DevChain::genesis(chain, MemoryState::new(), &genesis, 30_000_000).unwrap();
    let block = oracle.produce_sequential(COINBASE, &blocks[0]).unwrap();
    assert_eq!(block.outcome.failed_transactions(), 2, "both calls halt");
}

/// Pipelining needs headers that do not carry their own block's root: a typed error otherwise.
#[test]
fn pipelining_with_own_root_headers_is_refused() {
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let own = DevChain::genesis(chain, Locked::new(MemoryState::new()), &[], 30_000_000).unwrap();
    let error = own.pipelined().unwrap_err();
    assert!(error.to_string().contains("parent's state root"), "{error}");
}

fn workload(
    kind: WorkloadKind,
    hot_spot: Option<HotSpot>,
    seed: u64,
) -> (Workload, Vec<Vec<RecoveredTx>>) {
    let mut config =
        WorkloadConfig { chain_id: DEV_CHAIN_ID, ..WorkloadConfig::new(kind, 400, 900, 300, seed) };
    config.hot_spot = hot_spot;
    if hot_spot.is_some() {
        config.pools = 2;
    }
    let workload = Workload::generate(&config).unwrap();
    let blocks = workload.blocks.iter().map(|raw| intake(raw).unwrap()).collect();
    (workload, blocks)
}

#[test]
fn every_workload_at_every_contention_matches_the_oracle() {
    let contention = [
        None,
        Some(HotSpot { fraction: 0.1, accounts: 100 }),
        Some(HotSpot { fraction: 0.5, accounts: 20 }),
        // A single hot pair: nearly everything conflicts.
        Some(HotSpot { fraction: 1.0, accounts: 2 }),
    ];
    for kind in
        [WorkloadKind::Transfers, WorkloadKind::Erc20, WorkloadKind::Amm, WorkloadKind::Mixed]
    {
        for (seed, hot_spot) in contention.iter().enumerate() {
            let (workload, blocks) = workload(kind, *hot_spot, seed as u64 + 1);
            for threads in [1, 2, 8] {
                differential(&workload.genesis, &blocks, threads, PredictionMode::Simulate);
            }
        }
    }
}

#[test]
fn optimistic_prediction_from_fields_matches_the_oracle() {
    // Contract calls are predicted from their fields alone: they miss their storage, and
    // calls to one contract are set aside while an earlier one has not committed.
    for kind in [WorkloadKind::Erc20, WorkloadKind::Amm, WorkloadKind::Mixed] {
        let (workload, blocks) = workload(kind, Some(HotSpot { fraction: 0.5, accounts: 10 }), 9);
        let mut set_aside = 0;
        for threads in [1, 2, 8] {
            let counts = differential(&workload.genesis, &blocks, threads, PredictionMode::Fields);
            assert!(counts.mispredicted > 0, "{kind}: contract calls are not covered by fields");
            set_aside += counts.set_aside;
        }
        assert!(set_aside > 0, "{kind}: no call was set aside behind an earlier one");
    }
}

#[test]
fn repeated_runs_agree() {
    // Races show up as run-to-run differences; every run must equal the oracle.
    let (workload, blocks) =
        workload(WorkloadKind::Mixed, Some(HotSpot { fraction: 0.5, accounts: 5 }), 21);
    for _ in 0..5 {
        differential(&workload.genesis, &blocks, 8, PredictionMode::Simulate);
        differential(&workload.genesis, &blocks, 2, PredictionMode::Simulate);
    }
}

/// What a transaction is besides its EIP-1559 fields.
enum TxType {
    Eip1559,
    /// EIP-7702, carrying these authorizations (its recipient must be an account, not a
    /// creation).
    Eip7702(Vec<SignedAuthorization>),
    /// EIP-4844, carrying this many blobs (their versioned hashes: a block holds the hashes, not
    /// the blobs; its recipient must be an account).
    Eip4844(u8),
}

/// A signed EIP-1559 transaction from key `index` of seed 99, paying `tip` per gas, with an
/// EIP-2930 access list.
fn transaction(
    index: u32,
    nonce: u64,
    to: TxKind,
    value: u64,
    input: Bytes,
    tip: u128,
    access_list: AccessList,
) -> RecoveredTx {
    typed_transaction(index, nonce, to, value, input, tip, access_list, TxType::Eip1559)
}

/// [`transaction`] of any type.
#[allow(clippy::too_many_arguments)]
fn typed_transaction(
    index: u32,
    nonce: u64,
    to: TxKind,
    value: u64,
    input: Bytes,
    tip: u128,
    access_list: AccessList,
    tx_type: TxType,
) -> RecoveredTx {
    let (secret, _) = derive_key(99, index);
    let (chain_id, gas_limit) = (DEV_CHAIN_ID, 200_000);
    let (max_fee_per_gas, max_priority_fee_per_gas) = (u128::from(GENESIS_BASE_FEE) * 4, tip);
    let value = U256::from(value);
    let raw = match tx_type {
        TxType::Eip1559 => sign_and_encode(
            TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to,
                value,
                access_list,
                input,
            },
            &secret,
        ),
        TxType::Eip7702(authorization_list) => sign_and_encode(
            TxEip7702 {
                to: to.into_to().expect("an EIP-7702 transaction calls an account"),
                authorization_list,
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                value,
                access_list,
                input,
            },
            &secret,
        ),
        TxType::Eip4844(blobs) => {
            let blob_versioned_hashes = (0..blobs)
                .map(|blob| {
                    let mut hash = alloy_primitives::keccak256([blob, nonce as u8]);
                    hash.0[0] = alloy_eips::eip4844::VERSIONED_HASH_VERSION_KZG;
                    hash
                })
                .collect();
            let tx = TxEip4844 {
                to: to.into_to().expect("an EIP-4844 transaction calls an account"),
                blob_versioned_hashes,
                max_fee_per_blob_gas: 1_000_000,
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                value,
                access_list,
                input,
            };
            sign_and_encode(tx, &secret)
        }
    };
    intake(&[raw]).unwrap().remove(0)
}

/// An EIP-4844 transfer from key `index` to `to` carrying `blobs` blobs.
fn blob_carrying(index: u32, nonce: u64, to: Address, tip: u128, blobs: u8) -> RecoveredTx {
    let (to, access_list) = (TxKind::Call(to), AccessList::default());
    typed_transaction(index, nonce, to, 1, Bytes::new(), tip, access_list, TxType::Eip4844(blobs))
}

/// A call from key `index`, its tip varied by sender.
fn signed(index: u32, nonce: u64, to: Address, value: u64, input: Bytes) -> RecoveredTx {
    let tip = 1_000_000_000 + u128::from(index);
    transaction(index, nonce, TxKind::Call(to), value, input, tip, AccessList::default())
}

/// A contract at `address` running `code`, with nonce 1, no balance and no storage.
fn contract(address: Address, code: &'static [u8]) -> GenesisAccount {
    GenesisAccount {
        address,
        nonce: 1,
        balance: U256::ZERO,
        code: Some(Bytes::from_static(code)),
        storage: Vec::new(),
    }
}

fn funded(count: u32) -> Vec<GenesisAccount> {
    (0..count)
        .map(|index| GenesisAccount::funded(derive_key(99, index).1, U256::from(10u128.pow(24))))
        .collect()
}

#[test]
fn one_sender_with_hundreds_of_chained_transactions() {
    let genesis = funded(4);
    let sink = Address::repeat_byte(0x5);
    let mut block = Vec::new();
    for nonce in 0..300 {
        block.push(signed(0, nonce, sink, 1 + nonce, Bytes::new()));
        if nonce % 3 == 0 {
            // Other senders interleaved, some paying into the same sink.
            block.push(signed(1 + (nonce as u32 % 3), nonce / 3, sink, 7, Bytes::new()));
        }
    }
    for threads in [1, 2, 8] {
        for _ in 0..3 {
            differential(&genesis, std::slice::from_ref(&block), threads, PredictionMode::Simulate);
        }
    }
}

/// Calldata `x != 0` sets the pointer (slot 0) to `x`; `x == 0` increments the slot the pointer
/// names. What an increment writes depends on the setters before it in the block.
const POINTER: Address = Address::repeat_byte(0xb0);
const POINTER_CODE: &[u8] = &[
    0x5f, 0x35, 0x80, 0x15, 0x60, 0x0b, 0x57, 0x5f, 0x55, 0x00, 0x00, 0x5b, 0x50, 0x5f, 0x54, 0x80,
    0x54, 0x60, 0x01, 0x01, 0x90, 0x55, 0x00,
];
/// Stores the beneficiary's balance under the caller's address: it must see every earlier fee.
const TIP_READER: Address = Address::repeat_byte(0xb1);
const TIP_READER_CODE: &[u8] = &[0x41, 0x31, 0x33, 0x55, 0x00];
/// Forwards its call value to the beneficiary: code that pays the beneficiary unannounced.
const TIPPER: Address = Address::repeat_byte(0xb4);
const TIPPER_CODE: &[u8] = &[0x5f, 0x5f, 0x5f, 0x5f, 0x34, 0x41, 0x5a, 0xf1, 0x00];

fn contracts_genesis(senders: u32) -> Vec<GenesisAccount> {
    let mut genesis = funded(senders);
    genesis.push(GenesisAccount {
        storage: vec![(U256::ZERO, U256::from(100))],
        ..contract(POINTER, POINTER_CODE)
    });
    genesis.push(contract(TIP_READER, TIP_READER_CODE));
    genesis.push(contract(TIPPER, TIPPER_CODE));
    genesis
}

fn word(value: u64) -> Bytes {
    Bytes::from(U256::from(value).to_be_bytes::<32>().to_vec())
}

#[test]
fn accesses_that_depend_on_earlier_transactions_are_mispredicted_and_rerun() {
    let genesis = contracts_genesis(60);
    let mut block = Vec::new();
    for round in 0..20u32 {
        let base = round * 3;
        block.push(signed(base, 0, POINTER, 0, word(200 + u64::from(round % 4))));
        block.push(signed(base + 1, 0, POINTER, 0, word(0)));
        block.push(signed(base + 2, 0, POINTER, 0, word(0)));
    }
    let mut total_mispredicted = 0;
    for threads in [1, 2, 8] {
        for _ in 0..3 {
            total_mispredicted += differential(
                &genesis,
                std::slice::from_ref(&block),
                threads,
                PredictionMode::Simulate,
            )
            .mispredicted;
        }
    }
    assert!(total_mispredicted > 0, "the pointer moves, so predictions from block start miss");
}

/// Payments without calldata to accounts with code (a contract, an EIP-7702 delegation) run
/// that code: simulated, they are predicted exactly, where their fields alone miss the storage
/// they touch and, for the tipper, the beneficiary.
#[test]
fn payments_to_code_are_simulated_not_predicted_from_fields() {
    let genesis = random_genesis(false);
    let payees = [party(10), POINTER, COPIER, TIPPER];
    let block: Vec<RecoveredTx> = (0..u32::from(RANDOM_SENDERS))
        .flat_map(|sender| {
            (0..payees.len()).map(move |nth| {
                let to = payees[(sender as usize + nth) % payees.len()];
                signed(sender, nth as u64, to, 1, Bytes::new())
            })
        })
        .collect();
    let blocks = [block];
    for threads in [1, 2, 8] {
        let simulated = differential(&genesis, &blocks, threads, PredictionMode::Simulate);
        assert_eq!(simulated.mispredicted, 0, "{threads} threads");
        let from_fields = differential(&genesis, &blocks, threads, PredictionMode::Fields);
        assert!(from_fields.mispredicted > 0, "fields cannot see the code a payment runs");
    }
}

#[test]
fn transactions_that_read_the_beneficiary_see_every_earlier_fee() {
    let genesis = contracts_genesis(81);
    // First, code that creates the beneficiary by paying it, with no fee held back yet: its
    // own fee can follow it. Then readers, payers by value and by code (some paying nothing,
    // which touches without changing), and plain transfers.
    let mut block = vec![signed(80, 0, TIPPER, 7, Bytes::new())];
    for index in 0..80u32 {
        let tx = match index % 5 {
            0 => signed(index, 0, TIP_READER, 0, Bytes::new()),
            1 => signed(index, 0, COINBASE, 5, Bytes::new()),
            2 => signed(index, 0, TIPPER, u64::from(index % 2) * 7, Bytes::new()),
            _ => signed(index, 0, Address::repeat_byte(0x77), 3, Bytes::new()),
        };
        block.push(tx);
    }
    // An existing empty beneficiary touched by code before any fee: taken as it ran, the run
    // would remove the account (EIP-161), where revm's full handler pays it first.
    let mut empty_beneficiary = contracts_genesis(81);
    empty_beneficiary.push(GenesisAccount::funded(COINBASE, U256::ZERO));
    let touch_first = vec![
        signed(80, 0, TIPPER, 0, Bytes::new()),
        signed(0, 0, Address::repeat_byte(0x77), 3, Bytes::new()),
    ];
    for threads in [1, 2, 8] {
        for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
            differential(&genesis, std::slice::from_ref(&block), threads, prediction);
            differential(
                &empty_beneficiary,
                std::slice::from_ref(&touch_first),
                threads,
                prediction,
            );
        }
    }
}

/// Calldata `(slot, value)` stores `value` at `slot`.
const SETTER: Address = Address::repeat_byte(0xb2);
const SETTER_CODE: &[u8] = &[0x60, 0x20, 0x35, 0x5f, 0x35, 0x55, 0x00];
/// An existing empty account: touching it removes it (EIP-161).
const EMPTY: Address = Address::repeat_byte(0xb3);
/// Init code: stores 1 at slot 0 and deploys the one-byte runtime `STOP`.
const DEPLOYER_INIT: &[u8] =
    &[0x60, 0x01, 0x5f, 0x55, 0x60, 0x00, 0x5f, 0x53, 0x60, 0x01, 0x5f, 0xf3];
/// Init code: selfdestructs to the caller (created and destroyed in one transaction).
const SUICIDE_INIT: &[u8] = &[0x33, 0xff];

fn set(index: u32, nonce: u64, slot: u64, value: u64) -> RecoveredTx {
    let mut calldata = word(slot).to_vec();
    calldata.extend_from_slice(&word(value));
    signed(index, nonce, SETTER, 0, Bytes::from(calldata))
}

fn create(index: u32, nonce: u64, value: u64, init: &'static [u8]) -> RecoveredTx {
    let init = Bytes::from_static(init);
    transaction(index, nonce, TxKind::Create, value, init, 1_000_000_000, AccessList::default())
}

#[test]
fn restored_values_creations_and_destroyed_accounts_match_the_oracle() {
    let mut genesis = funded(40);
    genesis.push(GenesisAccount {
        address: SETTER,
        nonce: 1,
        balance: U256::ZERO,
        code: Some(Bytes::from_static(SETTER_CODE)),
        storage: vec![(U256::from(2), U256::from(7))],
    });
    genesis.push(GenesisAccount::funded(EMPTY, U256::ZERO));
    // Slots written and written back within the block are not changes; a real change is; a
    // contract created in the block brings its code and storage. Nothing here destroys an
    // account, so the change set comes from the overlay.
    let restores = vec![
        set(0, 0, 1, 5),
        set(1, 0, 2, 9),
        signed(2, 0, Address::repeat_byte(0x66), 10, Bytes::new()),
        set(3, 0, 1, 0),
        set(4, 0, 2, 7),
        set(5, 0, 3, 4),
        create(6, 0, 0, DEPLOYER_INIT),
        create(7, 0, 3, DEPLOYER_INIT),
        set(8, 0, 3, 4),
    ];
    // Destroyed accounts, their change set built from the overlay too:
    // - a contract that selfdestructs in its constructor never existed: nothing is wiped;
    // - a touch of an existing empty account removes it (EIP-161): its storage is wiped;
    // - the same constructor at an address funded earlier in the block destroys an account
    //   that did not exist at block start; funded again after, it exists at the block's end,
    //   and revm's change set wipes its storage (without the second payment it would leave
    //   the address out).
    let destroyed_between_payments = derive_key(99, 13).1.create(0);
    let destroys = vec![
        create(10, 0, 5, SUICIDE_INIT),
        signed(11, 0, EMPTY, 0, Bytes::new()),
        set(12, 0, 4, 1),
        signed(14, 0, destroyed_between_payments, 3, Bytes::new()),
        create(13, 0, 0, SUICIDE_INIT),
        signed(15, 0, destroyed_between_payments, 2, Bytes::new()),
    ];
    for threads in [1, 2, 8] {
        for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
            let counts =
                differential(&genesis, std::slice::from_ref(&restores), threads, prediction);
            assert_eq!((counts.sequential, counts.wiped), (0, 0), "no account is destroyed");
            let counts =
                differential(&genesis, std::slice::from_ref(&destroys), threads, prediction);
            assert_eq!(counts.sequential, 0, "the block ran in parallel");
            assert_eq!(counts.wiped, 2, "the empty account and the address paid again");
        }
    }
}

/// Replay mode on one block: FAFO with the given order against the oracle on the same state,
/// at 1, 2 and 8 threads in both prediction modes; returns the credits that landed on a
/// changed balance, summed over the runs.
fn replay_differential(state: &MemoryState, header: &Header, transactions: &[RecoveredTx]) -> u64 {
    let mut landed_credits = 0;
    let chain = ChainSpec::dev(DEV_CHAIN_ID);
    let input = BlockInput { header, ommers: &[], withdrawals: Some(&[]), transactions };
    let expected = execute_block(&chain, input, state).unwrap();
    for threads in [1, 2, 8] {
        let executor = ParallelExecutor::new(Some(threads));
        for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
            let env = evm_env(&chain, header);
            let predictions = predict(
                transactions,
                prediction,
                &env,
                header.beneficiary,
                state,
                executor.codes(),
            )
            .unwrap();
            let schedule = schedule_block(&predictions, header.beneficiary, ScheduleMode::Replay);
            let (outcome, stats) =
                executor.execute_block(&chain, input, &predictions, &schedule.plan, state).unwrap();
            assert_eq!(outcome.receipts, expected.receipts);
            assert_eq!(outcome.changes, expected.changes);
            assert_eq!(outcome.gas_used, expected.gas_used);
            landed_credits += stats.landed_credits;
        }
    }
    landed_credits
}

#[test]
fn replay_mode_keeps_the_order_and_matches_the_oracle() {
    let genesis = contracts_genesis(60);
    let chain =
        DevChain::genesis(ChainSpec::dev(DEV_CHAIN_ID), MemoryState::new(), &genesis, 30_000_000)
            .unwrap();
    let mut block = Vec::new();
    for round in 0..20u32 {
        let base = round * 3;
        block.push(signed(base, 0, POINTER, 0, word(0)));
        block.push(signed(base + 1, 0, POINTER, 0, word(300 + u64::from(round))));
        block.push(signed(base + 2, 0, TIP_READER, 0, Bytes::new()));
    }
    let header = chain.next_header(COINBASE, &block);
    replay_differential(chain.state(), &header, &block);
}

/// Payments into one account are credits: the plan runs them side by side and each lands on
/// the balance current at its commit. Around them: a recipient that then spends what it was
/// paid (a plain write, after every payment before it); a contract reading a recipient's
/// balance (unpredicted from fields); payments into a precompile; an EIP-7702 authorization
/// giving a recipient code in the middle of its payments; and payments into an address before
/// and after a contract is created there. A payment into code runs it, so it must not land as
/// a credit on a balance read before the code arrived.
#[test]
fn payments_into_one_account_run_side_by_side_and_match_the_oracle() {
    let mut genesis = funded(130);
    genesis.push(contract(BALANCE_READER, BALANCE_READER_CODE));
    genesis.push(contract(SETTER, SETTER_CODE));
    let chain =
        DevChain::genesis(ChainSpec::dev(DEV_CHAIN_ID), MemoryState::new(), &genesis, 30_000_000)
            .unwrap();
    // Neither exists until paid: the spender (key 201) spends what it is paid, the authority
    // (key 200) delegates itself to the setter.
    let (spender_key, spender) = (201, derive_key(99, 201).1);
    let (authority_key, authority) = (200, derive_key(99, 200).1);
    let precompile = Address::with_last_byte(3);
    // Key 129 creates a contract (runtime `STOP`) at its nonce 0's address.
    let created = derive_key(99, 129).1.create(0);
    let wei = 10u64.pow(15);
    let pay =
        |sender: u32, to: Address| signed(sender, 0, to, wei + u64::from(sender), Bytes::new());

    // Only payments into one account: no payment waits for another.
    let credits: Vec<RecoveredTx> = (1..=100).map(|sender| pay(sender, spender)).collect();
    let header = chain.next_header(COINBASE, &credits);
    let env = evm_env(&ChainSpec::dev(DEV_CHAIN_ID), &header);
    let executor = ParallelExecutor::new(Some(2));
    for mode in [PredictionMode::Simulate, PredictionMode::Fields] {
        let predictions =
            predict(&credits, mode, &env, COINBASE, chain.state(), executor.codes()).unwrap();
        let plan = schedule_block(&predictions, COINBASE, ScheduleMode::Replay).plan;
        assert_eq!(plan.critical_path(), 1, "{mode:?}: credits were ordered");
    }
    let mut landed = replay_differential(chain.state(), &header, &credits);

    let mut block = Vec::new();
    for sender in 1..=30 {
        block.push(pay(sender, spender));
        block.push(pay(sender + 30, if sender % 3 == 0 { precompile } else { authority }));
    }
    block.push(pay(121, created));
    // Twenty payments fund this one: it must see them all.
    block.push(signed(spender_key, 0, authority, 20 * wei, Bytes::new()));
    let balance_of = |account: Address| Bytes::from(account.into_word().to_vec());
    block.push(signed(61, 0, BALANCE_READER, 0, balance_of(authority)));
    block.push(create(129, 0, 0, DEPLOYER_INIT));
    for sender in 62..=90 {
        let to = match sender % 3 {
            0 => spender,
            1 => authority,
            _ => created,
        };
        block.push(pay(sender, to));
    }
    block.push(signed(91, 0, BALANCE_READER, 0, balance_of(spender)));
    // The authority delegates to the setter: later payments into it run the setter's code.
    let authorization =
        Authorization { chain_id: U256::from(DEV_CHAIN_ID), address: SETTER, nonce: 0 };
    let signed_authorization = sign_authorization(authorization, &derive_key(99, authority_key).0);
    block.push(typed_transaction(
        92,
        0,
        TxKind::Call(authority),
        0,
        Bytes::new(),
        1_000_000_000,
        AccessList::default(),
        TxType::Eip7702(vec![signed_authorization]),
    ));
    for sender in 93..=120 {
        block.push(pay(sender, authority));
    }
    let header = chain.next_header(COINBASE, &block);
    for _ in 0..3 {
        landed += replay_differential(chain.state(), &header, &block);
    }
    // Runs on 2 and 8 threads run payments into one account before the one ahead commits.
    assert!(landed > 0, "no credit ever landed on a balance changed since its read");
}

#[test]
fn mainnet_fixtures_replay_in_parallel_exactly() {
    let Some(dir) = discovery::mainnet_dir() else {
        eprintln!("{}", discovery::missing_fixtures_message("parallel mainnet replay"));
        return;
    };
    let blocks = mainnet::list_blocks(&dir).unwrap();
    assert!(!blocks.is_empty());
    let chain = ChainSpec::mainnet();
    let executors = [ParallelExecutor::new(Some(2)), ParallelExecutor::new(Some(8))];
    let (mut sequential_runs, mut wiping_runs) = (0, 0);
    for (number, path) in &blocks {
        let prepared = prepare(mainnet::load_block(path).unwrap()).unwrap();
        let (sequential, expected) = replay_sequential(&chain, &prepared).unwrap();
        assert!(sequential.passed(), "block {number}: the oracle disagrees with the header");
        for executor in &executors {
            for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
                let (report, outcome, figures) =
                    replay_fafo(&chain, &prepared, executor, prediction).unwrap();
                assert!(report.passed(), "block {number}: {report:?}");
                assert_eq!(outcome.receipts, expected.receipts, "block {number}");
                assert_eq!(outcome.changes, expected.changes, "block {number}");
                sequential_runs += usize::from(figures.stats.sequential);
                wiping_runs += usize::from(
                    !figures.stats.sequential
                        && outcome.changes.storage.iter().any(|change| change.wiped),
                );
            }
        }
    }
    // Blocks before EIP-161 run sequentially; the overlay must still have built most change
    // sets, and among them ones that wipe a destroyed account's storage.
    let runs = blocks.len() * executors.len() * 2;
    eprintln!(
        "of {runs} parallel runs, {sequential_runs} ran sequentially (before EIP-161) and \
         {wiping_runs} wiped a destroyed account's storage from the overlay"
    );
    assert!(sequential_runs < runs / 2, "most mainnet blocks must run in parallel");
    assert!(wiping_runs > 0, "no mainnet block wiped a destroyed account from the overlay");
}

/// Copies slot `a` to slot `b` (calldata `(a, b)`): what it writes depends on earlier writers.
const COPIER: Address = Address::repeat_byte(0xc0);
const COPIER_CODE: &[u8] = &[0x60, 0x20, 0x35, 0x5f, 0x35, 0x54, 0x90, 0x55, 0x00];
/// Stores the balance of the account its calldata names under that account's address.
const BALANCE_READER: Address = Address::repeat_byte(0xc1);
const BALANCE_READER_CODE: &[u8] = &[0x5f, 0x35, 0x31, 0x5f, 0x35, 0x55, 0x00];
/// Writes slot 1, then reverts: the write and the call value must vanish, the gas stays spent.
const REVERTER: Address = Address::repeat_byte(0xc2);
const REVERTER_CODE: &[u8] = &[0x60, 0x01, 0x60, 0x01, 0x55, 0x5f, 0x5f, 0xfd];
/// Jumps back to its start until the gas runs out.
const LOOPER: Address = Address::repeat_byte(0xc3);
const LOOPER_CODE: &[u8] = &[0x5b, 0x5f, 0x56];
/// Sends its whole balance to the caller by `SELFDESTRUCT` (it existed before the transaction,
/// so since EIP-6780 it stays, emptied).
const DESTRUCTOR: Address = Address::repeat_byte(0xc4);
const DESTRUCTOR_CODE: &[u8] = &[0x33, 0xff];
/// Calls the setter with its calldata's first two words, then reverts if the third is not zero:
/// a write made one call down, kept or undone by the caller.
const PROXY: Address = Address::repeat_byte(0xc5);
const PROXY_CODE: &[u8] = &[
    0x36, 0x5f, 0x5f, 0x37, // copy the calldata to memory
    0x5f, 0x5f, 0x60, 0x40, 0x5f, 0x5f, // no return data, 64 bytes of arguments, no value
    0x73, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2,
    0xb2, 0xb2, 0xb2, 0xb2, 0xb2, // SETTER
    0x5a, 0xf1, 0x50, // CALL with all gas, its result dropped
    0x60, 0x40, 0x35, 0x15, 0x60, 0x2c, 0x57, // third word zero: jump to the STOP
    0x5f, 0x5f, 0xfd, // REVERT
    0x5b, 0x00,
];
/// An EIP-7702 delegation designator: the code of an account delegated to `target`.
fn delegation_to(target: Address) -> Bytes {
    [&[0xef, 0x01, 0x00], target.as_slice()].concat().into()
}
/// Senders of the random blocks: few, so that nonce chains and shared balances are common.
const RANDOM_SENDERS: u8 = 6;
/// Keys of two accounts that never send a transaction but sign EIP-7702 authorizations: the
/// first is delegated to the setter at genesis, the second does not exist until delegated.
const AUTHORITY_KEYS: [u32; 2] = [10, 11];
/// Code an authorization delegates to: contracts whose accesses depend on earlier transactions,
/// the setter, the self-destructing contract (hands the authority's balance to the caller; never
/// for a sender, whose later transactions it would leave unfunded), or nothing (clears it).
const DELEGATION_TARGETS: [Address; 6] =
    [SETTER, COPIER, POINTER, BALANCE_READER, Address::ZERO, DESTRUCTOR];
/// Blobs a block may carry since Prague (EIP-7691).
const MAX_BLOBS: u8 = 9;

/// What a random transaction does; small slot and value ranges make conflicts the rule.
#[derive(Clone, Debug)]
enum RandomCall {
    Transfer {
        to: u8,
        value: u8,
    },
    Set {
        slot: u8,
        value: u8,
    },
    Copy {
        from: u8,
        to: u8,
    },
    /// 0 increments the slot the pointer names; anything else moves the pointer.
    Pointer(u8),
    ReadBalance(u8),
    ReadTips,
    Tip(u8),
    Revert(u8),
    Loop,
    Create {
        value: u8,
        destroy: bool,
    },
    TouchEmpty,
    Destruct,
    Proxy {
        slot: u8,
        value: u8,
        revert: bool,
    },
    /// Calls a party with the setter's calldata: whatever code it has or is delegated to runs.
    CallParty {
        to: u8,
        slot: u8,
        value: u8,
    },
    /// An EIP-7702 transaction to the authority, carrying one authorization: by the sender itself
    /// (`authority` 0, its nonce one past the transaction's) or by an authority key (1 or 2, with
    /// `nonce`, so that it is skipped unless it matches the authority's nonce at that point of
    /// the block). `chain` 0 signs for any chain, 1 for this one, 2 for another (skipped). The
    /// calldata is the setter's `(slot, 1)`.
    Delegate {
        authority: u8,
        target: u8,
        nonce: u8,
        chain: u8,
        slot: u8,
    },
    /// An EIP-4844 transfer carrying blobs (a plain transfer where the block is full of them).
    Blob {
        to: u8,
        blobs: u8,
    },
}

/// A sender, the beneficiary, a plain account, the self-destructing contract, a precompile
/// (RIPEMD-160, created by the first payment to it) or an authority, by `index`.
fn party(index: u8) -> Address {
    match index % 12 {
        sender @ 0..6 => derive_key(99, u32::from(sender)).1,
        6 => COINBASE,
        7 => Address::repeat_byte(0x66),
        8 => DESTRUCTOR,
        9 => Address::with_last_byte(3),
        authority => derive_key(99, AUTHORITY_KEYS[usize::from(authority - 10)]).1,
    }
}

fn random_call() -> impl proptest::strategy::Strategy<Value = RandomCall> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (any::<u8>(), 0..4u8).prop_map(|(to, value)| RandomCall::Transfer { to, value }),
        3 => (0..4u8, 0..3u8).prop_map(|(slot, value)| RandomCall::Set { slot, value }),
        2 => (0..4u8, 0..4u8).prop_map(|(from, to)| RandomCall::Copy { from, to }),
        2 => (0..3u8).prop_map(|target| RandomCall::Pointer(target * 2)),
        2 => any::<u8>().prop_map(RandomCall::ReadBalance),
        1 => Just(RandomCall::ReadTips),
        1 => (0..3u8).prop_map(RandomCall::Tip),
        1 => (0..3u8).prop_map(RandomCall::Revert),
        1 => Just(RandomCall::Loop),
        1 => (0..3u8, any::<bool>())
            .prop_map(|(value, destroy)| RandomCall::Create { value, destroy }),
        1 => Just(RandomCall::TouchEmpty),
        1 => Just(RandomCall::Destruct),
        2 => (0..4u8, 0..3u8, any::<bool>())
            .prop_map(|(slot, value, revert)| RandomCall::Proxy { slot, value, revert }),
        2 => (any::<u8>(), 0..4u8, 0..3u8)
            .prop_map(|(to, slot, value)| RandomCall::CallParty { to, slot, value }),
        2 => (0..3u8, 0..6u8, 0..3u8, 0..3u8, 0..4u8).prop_map(
            |(authority, target, nonce, chain, slot)| RandomCall::Delegate {
                authority,
                target,
                nonce,
                chain,
                slot
            }
        ),
        1 => (any::<u8>(), 1..4u8).prop_map(|(to, blobs)| RandomCall::Blob { to, blobs }),
    ]
}

/// A transaction of a random block.
#[derive(Clone, Debug)]
struct RandomTx {
    sender: u8,
    /// It pays the beneficiary a tip (without tips the beneficiary can stay empty, so that
    /// touching it removes it).
    tips: bool,
    /// The party (see [`party`]) its access list warms, with slot 1, if it has one.
    warms: Option<u8>,
    call: RandomCall,
}

/// A tipped or untipped transaction without an access list.
fn random_tx(sender: u8, tips: bool, call: RandomCall) -> RandomTx {
    RandomTx { sender, tips, warms: None, call }
}

/// Three blocks, each up to 40 transactions.
fn random_blocks() -> impl proptest::strategy::Strategy<Value = Vec<Vec<RandomTx>>> {
    use proptest::prelude::*;
    let tips = prop::bool::weighted(0.7);
    let warms = prop::option::weighted(0.2, any::<u8>());
    let tx = (0..RANDOM_SENDERS, tips, warms, random_call())
        .prop_map(|(sender, tips, warms, call)| RandomTx { sender, tips, warms, call });
    let block = prop::collection::vec(tx, 1..40);
    prop::collection::vec(block, 3)
}

/// The genesis of the random blocks: funded senders, every contract above, an empty account,
/// the first authority delegated to the setter, and the beneficiary as an existing empty
/// account when `empty_beneficiary` (else absent); both empty accounts hold a storage slot.
fn random_genesis(empty_beneficiary: bool) -> Vec<GenesisAccount> {
    let mut genesis = contracts_genesis(u32::from(RANDOM_SENDERS));
    for (address, code, storage, balance) in [
        (SETTER, SETTER_CODE, vec![(U256::from(2), U256::from(7))], 0),
        (COPIER, COPIER_CODE, vec![(U256::from(1), U256::from(5))], 0),
        (BALANCE_READER, BALANCE_READER_CODE, Vec::new(), 0),
        (REVERTER, REVERTER_CODE, Vec::new(), 0),
        (LOOPER, LOOPER_CODE, Vec::new(), 0),
        (DESTRUCTOR, DESTRUCTOR_CODE, Vec::new(), 1_000),
        (PROXY, PROXY_CODE, Vec::new(), 0),
    ] {
        genesis.push(GenesisAccount {
            address,
            nonce: 1,
            balance: U256::from(balance),
            code: Some(Bytes::from_static(code)),
            storage,
        });
    }
    // The first authority, delegated to the setter.
    genesis.push(GenesisAccount {
        address: party(10),
        nonce: 1,
        balance: U256::from(500),
        code: Some(delegation_to(SETTER)),
        storage: vec![(U256::from(1), U256::from(3))],
    });
    // Empty accounts that hold storage: removing them must remove it from the store, which
    // the roots check.
    let empty_with_storage = |address| GenesisAccount {
        storage: vec![(U256::from(1), U256::from(5))],
        ..GenesisAccount::funded(address, U256::ZERO)
    };
    genesis.push(empty_with_storage(EMPTY));
    if empty_beneficiary {
        genesis.push(empty_with_storage(COINBASE));
    }
    genesis
}

/// Signs the random blocks, each sender's nonces counting on across blocks (two steps for a
/// transaction carrying its sender's own valid authorization).
fn random_transactions(blocks: &[Vec<RandomTx>]) -> Vec<Vec<RecoveredTx>> {
    let mut nonces = [0u64; RANDOM_SENDERS as usize];
    let pair = |a: u8, b: u8| {
        let mut calldata = word(u64::from(a)).to_vec();
        calldata.extend_from_slice(&word(u64::from(b)));
        Bytes::from(calldata)
    };
    blocks
        .iter()
        .map(|block| {
            let mut blobs_in_block = 0;
            block
                .iter()
                .map(|RandomTx { sender, tips, warms, call }| {
                    let index = u32::from(*sender);
                    let nonce = nonces[usize::from(*sender)];
                    nonces[usize::from(*sender)] += 1;
                    let tip = if *tips { 1_000_000_000 + u128::from(index) } else { 0 };
                    let access_list = AccessList(
                        warms
                            .iter()
                            .map(|party_index| AccessListItem {
                                address: party(*party_index),
                                storage_keys: vec![B256::with_last_byte(1)],
                            })
                            .collect(),
                    );
                    let sign = |to, value: u8, input| {
                        let value = value.into();
                        transaction(index, nonce, to, value, input, tip, access_list.clone())
                    };
                    let call_to = |to, value, input| sign(TxKind::Call(to), value, input);
                    match call {
                        RandomCall::Transfer { to, value } => {
                            call_to(party(*to), *value, Bytes::new())
                        }
                        RandomCall::Set { slot, value } => call_to(SETTER, 0, pair(*slot, *value)),
                        RandomCall::Copy { from, to } => call_to(COPIER, 0, pair(*from, *to)),
                        RandomCall::Pointer(target) => {
                            call_to(POINTER, 0, word(u64::from(*target)))
                        }
                        RandomCall::ReadBalance(of) => {
                            let mut calldata = [0u8; 32];
                            calldata[12..].copy_from_slice(party(*of).as_slice());
                            call_to(BALANCE_READER, 0, Bytes::copy_from_slice(&calldata))
                        }
                        RandomCall::ReadTips => call_to(TIP_READER, 0, Bytes::new()),
                        RandomCall::Tip(value) => call_to(TIPPER, *value, Bytes::new()),
                        RandomCall::Revert(value) => call_to(REVERTER, *value, Bytes::new()),
                        RandomCall::Loop => call_to(LOOPER, 0, Bytes::new()),
                        RandomCall::Create { value, destroy } => {
                            let init = if *destroy { SUICIDE_INIT } else { DEPLOYER_INIT };
                            sign(TxKind::Create, *value, Bytes::from_static(init))
                        }
                        RandomCall::TouchEmpty => call_to(EMPTY, 0, Bytes::new()),
                        RandomCall::Destruct => call_to(DESTRUCTOR, 0, Bytes::new()),
                        RandomCall::Proxy { slot, value, revert } => {
                            let mut calldata = pair(*slot, *value).to_vec();
                            calldata.extend_from_slice(&word(u64::from(*revert)));
                            call_to(PROXY, 0, Bytes::from(calldata))
                        }
                        RandomCall::CallParty { to, slot, value } => {
                            call_to(party(*to), 0, pair(*slot, *value))
                        }
                        RandomCall::Delegate {
                            authority,
                            target,
                            nonce: auth_nonce,
                            chain,
                            slot,
                        } => {
                            let chain_id = [0, DEV_CHAIN_ID, DEV_CHAIN_ID + 1][usize::from(*chain)];
                            let (key, auth_nonce, targets) = match authority {
                                0 => (index, nonce + 1, &DELEGATION_TARGETS[..5]),
                                _ => {
                                    let key = AUTHORITY_KEYS[usize::from(*authority - 1)];
                                    (key, u64::from(*auth_nonce), &DELEGATION_TARGETS[..])
                                }
                            };
                            let authorization = Authorization {
                                chain_id: U256::from(chain_id),
                                address: targets[usize::from(*target) % targets.len()],
                                nonce: auth_nonce,
                            };
                            let (secret, authority_address) = derive_key(99, key);
                            let signed = sign_authorization(authorization, &secret);
                            if *authority == 0 && *chain != 2 {
                                // Valid: the sender's nonce moves past the authorization's.
                                nonces[usize::from(*sender)] += 1;
                            }
                            let (to, input) = (TxKind::Call(authority_address), pair(*slot, 1));
                            let tx_type = TxType::Eip7702(vec![signed]);
                            typed_transaction(index, nonce, to, 0, input, tip, access_list, tx_type)
                        }
                        RandomCall::Blob { to, blobs } => {
                            if blobs_in_block + blobs > MAX_BLOBS {
                                call_to(party(*to), 1, Bytes::new())
                            } else {
                                blobs_in_block += blobs;
                                let to = TxKind::Call(party(*to));
                                let tx_type = TxType::Eip4844(*blobs);
                                let input = Bytes::new();
                                typed_transaction(
                                    index,
                                    nonce,
                                    to,
                                    1,
                                    input,
                                    tip,
                                    access_list,
                                    tx_type,
                                )
                            }
                        }
                    }
                })
                .collect()
        })
        .collect()
}

proptest::proptest! {
    // 64 cases by default (about ten seconds); `PROPTEST_CASES=N` runs more. Each case is eight
    // parallel chains against the oracle, and a replay.
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Random blocks over contracts whose accesses depend on the block's earlier transactions,
    /// beneficiary readers and payers, reverts, out-of-gas loops, creations, self-destructs,
    /// EIP-161 removals, writes one call down kept or undone, access lists, EIP-7702 delegations
    /// (valid or skipped by nonce and chain), calls with data to delegated accounts, blob
    /// transactions, a few senders with nonce chains, the beneficiary absent, empty, a sender or
    /// a contract: FAFO in producer mode
    /// equals the oracle over its order on 1, 2 and 8 threads with both predictions, pipelined
    /// with late commits and on QMDB, and in replay mode over the given order.
    #[test]
    fn random_blocks_match_the_oracle(
        blocks in random_blocks(),
        payee in 0..4u8,
    ) {
        // The beneficiary: absent at genesis, an existing empty account, a sender, or the
        // self-destructing contract (whose calls hand the fees paid so far to the caller).
        let genesis = random_genesis(payee == 1);
        let beneficiary = match payee {
            2 => party(0),
            3 => DESTRUCTOR,
            _ => COINBASE,
        };
        let transactions = random_transactions(&blocks);
        for threads in [1, 2, 8] {
            for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
                differential_paying(&genesis, &transactions, threads, prediction, beneficiary);
            }
        }
        // Pipelined, each commit starting late: every read of the previous block's writes
        // (destroyed accounts and wiped storage among them) comes from memory.
        let spec = ChainSpec::dev(DEV_CHAIN_ID);
        let late = || FaultyStore::late(Locked::new(MemoryState::new()));
        let fafo = parent_root_chain(&spec, late(), &genesis, 30_000_000).pipelined().unwrap();
        let oracle = parent_root_chain(&spec, late(), &genesis, 30_000_000);
        differential_on(fafo, oracle, &transactions, 2, PredictionMode::Fields, beneficiary);
        // Pipelined on QMDB, whose reads go on while the previous block commits.
        let dirs = tempfile::tempdir().unwrap();
        let qmdb = |name: &str| Qmdb::open(dirs.path().join(name), QmdbConfig::default()).unwrap();
        let fafo = parent_root_chain(&spec, qmdb("fafo"), &genesis, 30_000_000);
        let oracle = parent_root_chain(&spec, qmdb("oracle"), &genesis, 30_000_000);
        let fafo = fafo.pipelined().unwrap();
        differential_on(fafo, oracle, &transactions, 2, PredictionMode::Simulate, beneficiary);

        let chain = DevChain::genesis(spec, MemoryState::new(), &genesis, 30_000_000).unwrap();
        let header = chain.next_header(beneficiary, &transactions[0]);
        replay_differential(chain.state(), &header, &transactions[0]);
    }
}

/// Zero fees and an existing empty beneficiary. A zero fee paid to it removes it (EIP-161), and
/// revm's change set then wipes its storage even when later fees bring it back; the engine holds
/// fees back, so it must pay such a fee on its own. And a transaction re-run at commit pays the
/// beneficiary itself: it must see the fees held back until then, or it finds the beneficiary
/// empty and removes it. Both were found by `random_blocks_match_the_oracle`.
#[test]
fn zero_fees_paid_to_an_existing_empty_beneficiary_match_the_oracle() {
    let genesis = random_genesis(true);
    // A free transaction, then another sender's tipped one (nothing orders it after the first
    // or re-runs it), in one block.
    let free_first = vec![
        random_tx(0, false, RandomCall::Transfer { to: 7, value: 0 }),
        random_tx(1, true, RandomCall::Transfer { to: 7, value: 0 }),
    ];
    // Tipped payments to a sender, each followed by a free call that reads the balance just
    // paid: predicted from their fields the readers do not wait for the payments, so many
    // run too early and are re-run at commit with tips held back.
    let readers: Vec<RandomTx> = (0..60u8)
        .flat_map(|round| {
            let payer = round % RANDOM_SENDERS;
            let paid = (payer + 1) % RANDOM_SENDERS;
            let reader = (payer + 2) % RANDOM_SENDERS;
            [
                random_tx(payer, true, RandomCall::Transfer { to: paid, value: 1 }),
                random_tx(reader, false, RandomCall::ReadBalance(paid)),
            ]
        })
        .collect();
    let free_first = random_transactions(&[free_first]);
    let readers_block = random_transactions(&[readers]);
    let mut mispredicted = 0;
    for threads in [1, 2, 8] {
        for prediction in [PredictionMode::Simulate, PredictionMode::Fields] {
            let counts = differential(&genesis, &free_first, threads, prediction);
            assert_eq!(counts.wiped, 1, "the beneficiary was removed, then paid again");
            for _ in 0..3 {
                mispredicted +=
                    differential(&genesis, &readers_block, threads, prediction).mispredicted;
            }
        }
    }
    assert!(mispredicted > 0, "the readers' predictions from fields miss the balances");
}

/// The random blocks' contracts do what their documentation says (so that the random test does
/// not pass on calls that all fail): run by the oracle alone, each block's storage changes.
#[test]
fn random_block_contracts_do_what_they_say() {
    let genesis = random_genesis(false);
    let mut oracle =
        DevChain::genesis(ChainSpec::dev(DEV_CHAIN_ID), MemoryState::new(), &genesis, 30_000_000)
            .unwrap();
    let slots_of = |changes: &BlockChanges, address: Address| -> Vec<(U256, U256)> {
        let change = changes.storage.iter().find(|change| change.address == address);
        change.map(|change| change.slots.clone()).unwrap_or_default()
    };
    let blocks = random_transactions(&[
        vec![random_tx(0, true, RandomCall::Proxy { slot: 3, value: 2, revert: false })],
        vec![random_tx(0, true, RandomCall::Proxy { slot: 1, value: 2, revert: true })],
        vec![random_tx(0, true, RandomCall::Copy { from: 1, to: 2 })],
        vec![random_tx(0, true, RandomCall::ReadBalance(8))],
        // The sender delegates itself to the setter and calls itself; another sender calls it.
        vec![
            random_tx(0, true, delegate(0, 0, 0, 1, 3)),
            random_tx(1, true, RandomCall::CallParty { to: 0, slot: 2, value: 2 }),
        ],
        // The authority delegated at genesis (nonce 1) moves to the copier, which copies its
        // slot 2 (zero) over slot 1 (three at genesis); the other authority's authorization names
        // a nonce it does not have.
        vec![
            random_tx(1, true, delegate(1, 1, 1, 0, 2)),
            random_tx(2, true, delegate(2, 0, 2, 1, 1)),
        ],
        // Nine blobs, then a tenth that the block cannot take (a plain transfer instead).
        vec![
            random_tx(0, true, RandomCall::Blob { to: 7, blobs: 3 }),
            random_tx(1, true, RandomCall::Blob { to: 7, blobs: 3 }),
            random_tx(2, true, RandomCall::Blob { to: 7, blobs: 3 }),
            random_tx(3, true, RandomCall::Blob { to: 7, blobs: 1 }),
        ],
        vec![random_tx(0, true, RandomCall::Transfer { to: 7, value: 1 })],
    ]);
    let produced: Vec<_> =
        blocks.iter().map(|block| oracle.produce_sequential(COINBASE, block).unwrap()).collect();
    let changes: Vec<&BlockChanges> = produced.iter().map(|block| &block.outcome.changes).collect();
    assert_eq!(slots_of(changes[0], SETTER), [(U256::from(3), U256::from(2))]);
    assert_eq!(slots_of(changes[1], SETTER), [], "the proxy reverted the setter's write");
    assert_eq!(slots_of(changes[2], COPIER), [(U256::from(2), U256::from(5))]);
    let destructor_key = U256::from_be_slice(DESTRUCTOR.as_slice());
    assert_eq!(slots_of(changes[3], BALANCE_READER), [(destructor_key, U256::from(1_000))]);

    let delegation_to = |target| alloy_primitives::keccak256(delegation_to(target));
    let account = |changes: &BlockChanges, address: Address| {
        changes.accounts.iter().find(|(changed, _)| *changed == address).map(|(_, a)| *a)
    };
    let (sender, authority, absent) = (party(0), party(10), party(11));
    let delegated = account(changes[4], sender).flatten().unwrap();
    assert_eq!(delegated.code_hash, delegation_to(SETTER));
    assert_eq!(delegated.nonce, 6, "four earlier transactions, this one, its authorization");
    assert_eq!(
        slots_of(changes[4], sender),
        [(U256::from(2), U256::from(2)), (U256::from(3), U256::from(1))]
    );
    let redelegated = account(changes[5], authority).flatten().unwrap();
    assert_eq!((redelegated.code_hash, redelegated.nonce), (delegation_to(COPIER), 2));
    assert_eq!(slots_of(changes[5], authority), [(U256::from(1), U256::ZERO)]);
    assert_eq!(account(changes[5], absent), None, "a skipped authorization creates nothing");

    assert_eq!(produced[6].outcome.receipts.len(), 4);
    assert_eq!(produced[6].header.blob_gas_used, Some(9 * DATA_GAS_PER_BLOB));
    assert_eq!(produced[7].header.blob_gas_used, Some(0));
    // Three blobs over the target of six.
    assert_eq!(produced[7].header.excess_blob_gas, Some(3 * DATA_GAS_PER_BLOB));
}

/// [`RandomCall::Delegate`], its fields in order.
fn delegate(authority: u8, target: u8, nonce: u8, chain: u8, slot: u8) -> RandomCall {
    RandomCall::Delegate { authority, target, nonce, chain, slot }
}

/// A block whose blobs exceed the fork's maximum is refused before it runs, by both engines,
/// and the chain stays where it was.
/// A withdrawal request (EIP-7002) made in a block reaches its header's `requests_hash`, the
/// same from both engines (the dev chain's headers used to carry the empty hash whatever the
/// block requested).
#[test]
fn a_withdrawal_request_reaches_the_header() {
    use alloy_eips::{eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, eip7685::EMPTY_REQUESTS_HASH};
    let genesis = funded(2);
    // A validator's public key, then the amount in gwei; the fee is 1 wei while no request is
    // queued.
    let mut input = vec![0x11u8; 48];
    input.extend_from_slice(&32_000_000_000u64.to_be_bytes());
    let block = vec![signed(0, 0, WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, 1, Bytes::from(input))];
    let spec = ChainSpec::dev(DEV_CHAIN_ID);
    let mut sequential =
        DevChain::genesis(spec.clone(), MemoryState::new(), &genesis, 30_000_000).unwrap();
    let mut parallel = DevChain::genesis(spec, MemoryState::new(), &genesis, 30_000_000).unwrap();
    let expected = sequential.produce_sequential(COINBASE, &block).unwrap();
    let executor = ParallelExecutor::new(Some(2));
    let (produced, _) =
        parallel.produce_fafo(COINBASE, &block, &executor, PredictionMode::Simulate).unwrap();
    let receipt = &expected.outcome.receipts[0];
    assert!(receipt.status(), "the request call succeeded");
    let requests = &expected.outcome.requests;
    assert_eq!(requests.len(), 1, "one request type");
    let withdrawals = &requests.iter().next().unwrap();
    assert_eq!(withdrawals[0], 0x01, "withdrawal requests are type 1");
    assert_eq!(withdrawals.len(), 1 + 20 + 48 + 8, "one request: source, key, amount");
    assert_ne!(expected.header.requests_hash, Some(EMPTY_REQUESTS_HASH));
    assert_eq!(expected.header.requests_hash, Some(requests.requests_hash()));
    assert_eq!(produced.outcome.requests, expected.outcome.requests);
    assert_eq!(produced.header, expected.header);
    // The next block, without one, is back to the empty hash.
    let next = sequential.produce_sequential(COINBASE, &[]).unwrap();
    assert_eq!(next.header.requests_hash, Some(EMPTY_REQUESTS_HASH));
}

#[test]
fn a_block_over_the_blob_maximum_is_a_typed_error() {
    let genesis = random_genesis(false);
    let spec = ChainSpec::dev(DEV_CHAIN_ID);
    let mut chain = DevChain::genesis(spec, MemoryState::new(), &genesis, 30_000_000).unwrap();
    let tip = 1_000_000_000;
    let block: Vec<RecoveredTx> =
        (0..4).map(|sender| blob_carrying(sender, 0, party(7), tip, 3)).collect();
    let root = chain.state().state_root();
    let executor = ParallelExecutor::new(Some(2));
    let refused = |result: Result<_, zero_engine::ExecutionError>| {
        let error = result.expect_err("twelve blobs in one block");
        assert!(
            matches!(error, zero_engine::ExecutionError::BlobGas { number: 1, used, max }
                if used == 12 * DATA_GAS_PER_BLOB && max == 9 * DATA_GAS_PER_BLOB),
            "{error}"
        );
        assert!(error.to_string().contains("12 blobs"), "{error}");
    };
    refused(chain.produce_sequential(COINBASE, &block).map(|_| ()));
    refused(chain.produce_fafo(COINBASE, &block, &executor, PredictionMode::Simulate).map(|_| ()));
    assert_eq!(chain.head().number, 0);
    assert_eq!(chain.state().state_root(), root);
    // Nine of them fit.
    let block = chain.produce_fafo(COINBASE, &block[..3], &executor, PredictionMode::Fields);
    assert_eq!(block.unwrap().0.header.blob_gas_used, Some(9 * DATA_GAS_PER_BLOB));
}
