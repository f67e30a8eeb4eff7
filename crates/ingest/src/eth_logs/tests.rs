//! Tests of the `eth-logs` adapter: logs encoded with the `sol!` definitions, decoded back.

use std::path::Path;

use alloy_primitives::{Address, B256, FixedBytes, I256, U256, hex};
use alloy_sol_types::{SolCall, SolEvent};
use cascade_events::{
    Amount, Fixed, Id, LiquidationDetail, OracleSourceChange, OracleValue, OracleValueSource,
    Payload, Protocol, Symbol,
};

use super::abi::*;
use super::*;
use crate::batch::test_context as context;

const V2_POOL: &str = "0x7d2768dE32b0b80b7a3454c06BdAc94A69DDc7A9";
const WETH: Address = Address::repeat_byte(0xee);
const USDC: Address = Address::repeat_byte(0xcc);
const USER: Address = Address::repeat_byte(0x11);
const BOT: Address = Address::repeat_byte(0x22);

/// One `eth_getLogs` entry, as a node returns it, for an encoded event.
fn entry<E: SolEvent>(
    address: &str,
    event: &E,
    block: u64,
    log_index: u64,
    timestamp: Option<u64>,
) -> serde_json::Value {
    let data = event.encode_log_data();
    let mut log = serde_json::json!({
        "address": address,
        "topics": data.topics().iter().map(|t| format!("{t:#x}")).collect::<Vec<_>>(),
        "data": format!("0x{}", hex::encode(&data.data)),
        "blockNumber": format!("{block:#x}"),
        "transactionHash": format!("{:#x}", B256::repeat_byte(block as u8)),
        "transactionIndex": "0x3",
        "logIndex": format!("{log_index:#x}"),
        "removed": false,
    });
    if let Some(timestamp) = timestamp {
        log["blockTimestamp"] = serde_json::Value::String(format!("{timestamp:#x}"));
    }
    log
}

fn run(
    entries: &[serde_json::Value],
    lines: bool,
    options: &Options,
    skip_invalid: bool,
) -> Result<SourceBatch, IngestError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.json");
    let text = if lines {
        entries
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        serde_json::Value::Array(entries.to_vec()).to_string()
    };
    std::fs::write(&path, text).unwrap();
    read(&path, options, &context(skip_invalid))
}

#[test]
fn aave_v2_events_decode_into_payloads() {
    let liquidation = AaveV2::LiquidationCall {
        collateralAsset: WETH,
        debtAsset: USDC,
        user: USER,
        debtToCover: U256::from(2_000_000_000u64),
        liquidatedCollateralAmount: U256::from(1_050_000_000_000_000_000u64),
        liquidator: BOT,
        receiveAToken: true,
    };
    let deposit = AaveV2::Deposit {
        reserve: WETH,
        user: BOT,
        onBehalfOf: USER,
        amount: U256::from(5u8),
        referral: 0,
    };
    let index = AaveV2::ReserveDataUpdated {
        reserve: USDC,
        liquidityRate: U256::ZERO,
        stableBorrowRate: U256::ZERO,
        variableBorrowRate: U256::ZERO,
        liquidityIndex: U256::from(10u8).pow(U256::from(27u8)),
        variableBorrowIndex: U256::from(2u8) * U256::from(10u8).pow(U256::from(27u8)),
    };
    let toggle = AaveV2::ReserveUsedAsCollateralDisabled {
        reserve: WETH,
        user: USER,
    };
    let entries = [
        entry(V2_POOL, &deposit, 100, 0, Some(1_621_382_400)),
        entry(V2_POOL, &liquidation, 100, 1, Some(1_621_382_400)),
        entry(V2_POOL, &index, 101, 0, Some(1_621_382_412)),
        entry(V2_POOL, &toggle, 101, 1, Some(1_621_382_412)),
    ];
    for lines in [false, true] {
        let batch = run(&entries, lines, &Options::default(), false).unwrap();
        assert_eq!(batch.events.len(), 4, "lines: {lines}");
        let pool = Id::Address(V2_POOL.parse().unwrap());
        let Payload::Deposit(d) = &batch.events.get(0).payload else {
            panic!()
        };
        assert_eq!(
            (d.protocol, d.market, d.account, d.asset, d.amount),
            (
                Protocol::AaveV2,
                pool,
                Id::Address(USER),
                Id::Address(WETH),
                Amount::from_units(5)
            )
        );
        let Payload::Liquidation(l) = &batch.events.get(1).payload else {
            panic!()
        };
        assert_eq!(
            l.collateral_seized,
            Amount::from_units(1_050_000_000_000_000_000)
        );
        assert_eq!(l.debt_repaid, Amount::from_units(2_000_000_000));
        assert_eq!(l.liquidator, Some(Id::Address(BOT)));
        assert_eq!(
            l.detail,
            LiquidationDetail::Aave {
                receive_a_token: Some(true)
            }
        );
        let Payload::IndexUpdate(i) = &batch.events.get(2).payload else {
            panic!()
        };
        assert_eq!(
            i.borrow_index.unwrap().to_string(),
            format!("2.{}", "0".repeat(27))
        );
        let Payload::CollateralToggle(t) = &batch.events.get(3).payload else {
            panic!()
        };
        assert!(!t.enabled);
        let event = &batch.events.get(1);
        assert_eq!(
            (event.block, event.tx_index, event.log_index),
            (Some(100), Some(3), Some(1))
        );
        assert_eq!(event.time, Timestamp(1_621_382_400));
        assert_eq!(event.tx_hash, Some(B256::repeat_byte(100)));
    }
}

#[test]
fn aave_v3_compound_chainlink_and_maker_decode() {
    let v3 = "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2";
    let ctoken = "0x39aa39c021dfbae8fac545936693ac917d5e7563";
    let aggregator = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419";
    let dog = "0x135954d155898D42C90D2a57824C690e0c7BEf1B";
    let clipper = "0xc67963a226eddd77b91ad8c421630a1b0adff270";
    let rad = U256::from(10u8).pow(U256::from(45u8));
    let mut ilk = [0u8; 32];
    ilk[..5].copy_from_slice(b"ETH-B");
    let entries = [
        entry(
            v3,
            &AaveV3::Repay {
                reserve: USDC,
                user: USER,
                repayer: BOT,
                amount: U256::from(7u8),
                useATokens: false,
            },
            1,
            0,
            Some(1_700_000_000),
        ),
        entry(
            ctoken,
            &CompoundV2::Mint {
                minter: USER,
                mintAmount: U256::from(100u8),
                mintTokens: U256::from(4_500u32),
            },
            1,
            1,
            Some(1_700_000_000),
        ),
        entry(
            ctoken,
            &CompoundV2::LiquidateBorrow {
                liquidator: BOT,
                borrower: USER,
                repayAmount: U256::from(50u8),
                cTokenCollateral: WETH,
                seizeTokens: U256::from(9u8),
            },
            1,
            2,
            Some(1_700_000_000),
        ),
        entry(
            ctoken,
            &CompoundV2Early::AccrueInterest {
                interestAccumulated: U256::ZERO,
                borrowIndex: U256::from(1_000_000_000_000_000_001u64),
                totalBorrows: U256::ZERO,
            },
            1,
            3,
            Some(1_700_000_000),
        ),
        entry(
            aggregator,
            &Chainlink::AnswerUpdated {
                current: I256::try_from(231_234_567_890i64).unwrap(),
                roundId: U256::from(42u8),
                updatedAt: U256::from(1_700_000_000u64),
            },
            1,
            4,
            Some(1_700_000_000),
        ),
        entry(
            dog,
            &Maker::Bark {
                ilk: FixedBytes(ilk),
                urn: USER,
                ink: U256::from(3u8),
                art: U256::from(2u8),
                due: U256::from(5u8) * rad + U256::from(1u8),
                clip: BOT,
                id: U256::from(77u8),
            },
            1,
            5,
            Some(1_700_000_000),
        ),
        entry(
            clipper,
            &Maker::Take {
                id: U256::from(77u8),
                max: U256::ZERO,
                price: U256::from(10u8).pow(U256::from(27u8)),
                owe: U256::from(2u8) * rad,
                tab: U256::from(3u8) * rad,
                lot: U256::from(1u8),
                usr: USER,
            },
            1,
            6,
            Some(1_700_000_000),
        ),
    ];
    let mut options = Options::default();
    let (address, contract) = parse_contract(&format!("{clipper}=maker-clipper:ETH-B")).unwrap();
    options.contracts.insert(address, contract);
    let batch = run(&entries, false, &options, false).unwrap();
    let kinds: Vec<&str> = batch.events.iter().map(|e| e.kind().name()).collect();
    assert_eq!(
        kinds,
        [
            "repay",
            "deposit",
            "liquidation",
            "index-update",
            "price",
            "liquidation",
            "auction-take"
        ]
    );
    let Payload::Repay(r) = &batch.events.get(0).payload else {
        panic!()
    };
    assert_eq!(r.protocol, Protocol::AaveV3);
    let Payload::Deposit(m) = &batch.events.get(1).payload else {
        panic!()
    };
    assert_eq!(
        (m.protocol, m.shares),
        (Protocol::CompoundV2, Some(Amount::from_units(4_500)))
    );
    let Payload::Liquidation(c) = &batch.events.get(2).payload else {
        panic!()
    };
    assert_eq!(
        c.detail,
        LiquidationDetail::Compound {
            seize_tokens: Amount::from_units(9)
        }
    );
    let Payload::Price(p) = &batch.events.get(4).payload else {
        panic!()
    };
    assert_eq!(
        (p.asset, p.price.to_string(), p.round),
        (Id::name("ETH"), "2312.34567890".into(), Some(42))
    );
    let Payload::Liquidation(bark) = &batch.events.get(5).payload else {
        panic!()
    };
    // A rad (45 decimals) stored as a wad, rounding the extra 1e-45 DAI away.
    let dai = |n: u128| Amount::from_units(n * 10u128.pow(18));
    assert_eq!(
        (bark.market, bark.collateral_asset, bark.debt_repaid),
        (Id::name("ETH-B"), Id::name("ETH"), dai(5))
    );
    assert_eq!(
        bark.detail,
        LiquidationDetail::MakerDog {
            due: Some(dai(5)),
            art: Some(Amount::from_units(2)),
            auction: Some(77)
        }
    );
    let Payload::AuctionTake(take) = &batch.events.get(6).payload else {
        panic!()
    };
    assert_eq!(
        (take.market, take.owe, take.tab_left),
        (Id::name("ETH-B"), dai(2), dai(3))
    );
}

#[test]
fn unknown_logs_are_counted_not_errors() {
    let unknown_contract = "0x0000000000000000000000000000000000000abc";
    let withdraw = AaveV2::Withdraw {
        reserve: WETH,
        user: USER,
        to: USER,
        amount: U256::from(1u8),
    };
    let mut foreign = entry(unknown_contract, &withdraw, 5, 0, Some(1_700_000_000));
    let mut unknown_topic = foreign.clone();
    unknown_topic["topics"][0] = serde_json::Value::String(format!("{:#x}", B256::repeat_byte(9)));
    // A Mint with the Compound signature but another layout (an extra indexed topic).
    let mint = CompoundV2::Mint {
        minter: USER,
        mintAmount: U256::from(1u8),
        mintTokens: U256::from(1u8),
    };
    let mut other_layout = entry(unknown_contract, &mint, 5, 2, Some(1_700_000_000));
    other_layout["topics"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::Value::String(format!("{:#x}", B256::ZERO)));
    let mut removed = entry(V2_POOL, &withdraw, 5, 3, Some(1_700_000_000));
    removed["removed"] = serde_json::Value::Bool(true);
    foreign["logIndex"] = serde_json::Value::String("0x1".into());
    let batch = run(
        &[foreign, unknown_topic, other_layout, removed],
        true,
        &Options::default(),
        false,
    )
    .unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(
        batch.report.counters.values().sum::<u64>(),
        4,
        "{:?}",
        batch.report.counters
    );
    assert_eq!(batch.report.counters["removed (reorged) logs skipped"], 1);
    assert_eq!(
        batch.report.counters["logs with an unknown topic skipped"],
        1
    );
}

#[test]
fn block_times_from_a_blocks_file_or_an_error() {
    let withdraw = AaveV2::Withdraw {
        reserve: WETH,
        user: USER,
        to: USER,
        amount: U256::from(1u8),
    };
    let entries = [entry(V2_POOL, &withdraw, 12_000_000, 0, None)];
    let error = run(&entries, false, &Options::default(), false).unwrap_err();
    assert_eq!(
        error.row_at(),
        (Position::Entry(1), "blockNumber", "12000000")
    );
    let dir = tempfile::tempdir().unwrap();
    let blocks = dir.path().join("blocks.csv");
    std::fs::write(&blocks, "block,timestamp\n12000000,1615234816\n").unwrap();
    let options = Options {
        blocks: Some(blocks),
        ..Options::default()
    };
    let batch = run(&entries, false, &options, false).unwrap();
    assert_eq!(batch.events.get(0).time, Timestamp(1_615_234_816));
}

#[test]
fn broken_logs_from_known_contracts_are_rejected() {
    let withdraw = AaveV2::Withdraw {
        reserve: WETH,
        user: USER,
        to: USER,
        amount: U256::from(1u8),
    };
    let mut short = entry(V2_POOL, &withdraw, 5, 0, Some(1_700_000_000));
    short["data"] = serde_json::Value::String("0x01".into());
    let not_json = serde_json::Value::String("nope".into());
    let error = run(
        std::slice::from_ref(&short),
        false,
        &Options::default(),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("entry 1") && error.contains("does not decode"),
        "{error}"
    );
    let batch = run(&[short, not_json], true, &Options::default(), true).unwrap();
    assert_eq!(batch.report.rejected.len(), 2);
    assert_eq!(batch.report.rejected[1].position, Position::Line(2));
    assert!(parse_contract("0x12=aave-v2").is_err());
    assert!(
        parse_contract(&format!("{V2_POOL}=aave-v9"))
            .unwrap_err()
            .contains("unknown contract kind")
    );
}

const CETH: &str = "0x4Ddc2D193948926D02f9B1fE9e1daa0718270ED5";

#[test]
fn oracle_values_decode_from_named_emitters() {
    let osm = "0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763";
    let median = "0x64DE91F5A373Cd4c28de3600cB34C7C6cE410C85";
    let uav = "0x922018674c12a7F0D394ebEEf9B58F186CdE13c1";
    let aave_oracle = "0xA50ba011c48153De246E5192C8f9258A2ba79Ca9";
    let aggregator = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419";
    let spotter = "0x65C79fcB50Ca1594B025960e539eD7A9a6D434A3";
    let wad = |units: u64| U256::from(units) * U256::from(10u64.pow(18));
    let mut ilk = [0u8; 32];
    ilk[..5].copy_from_slice(b"ETH-B");
    let entries = [
        entry(
            osm,
            &MakerOracles::LogValue {
                val: B256::from(wad(1400)),
            },
            10,
            0,
            Some(1_700_000_000),
        ),
        entry(
            spotter,
            &MakerOracles::Poke {
                ilk: FixedBytes(ilk),
                val: B256::from(wad(1400)),
                spot: U256::from(1u8),
            },
            10,
            1,
            Some(1_700_000_000),
        ),
        entry(
            median,
            &MakerOracles::LogMedianPrice {
                val: wad(1390),
                age: U256::from(1_699_999_990u64),
            },
            10,
            2,
            Some(1_700_000_000),
        ),
        entry(
            uav,
            &CompoundOracle::PriceUpdated {
                symbol: "ETH".into(),
                price: U256::from(1_401_230_000u64),
            },
            10,
            3,
            Some(1_700_000_000),
        ),
        entry(
            aave_oracle,
            &AaveOracle::AssetSourceUpdated {
                asset: WETH,
                source: BOT,
            },
            10,
            4,
            Some(1_700_000_000),
        ),
        entry(
            aggregator,
            &ChainlinkRounds::NewRound {
                roundId: U256::from(7u8),
                startedBy: BOT,
                startedAt: U256::from(1_700_000_000u64),
            },
            10,
            5,
            Some(1_700_000_000),
        ),
    ];
    let mut options = Options::default();
    for flag in [
        format!("{osm}=maker-osm:ETH"),
        format!("{median}=maker-median:ETH"),
        format!("{uav}=compound-oracle"),
        format!("{aave_oracle}=aave-v2-oracle"),
        format!("{CETH}=compound-v2:ETH"),
    ] {
        let (address, contract) = parse_contract(&flag).unwrap();
        options.contracts.insert(address, contract);
    }
    let batch = run(&entries, true, &options, false).unwrap();
    assert_eq!(batch.events.len(), 5);
    let address = |text: &str| Id::Address(text.parse().unwrap());
    assert_eq!(
        batch.events.get(0).payload,
        Payload::OracleValue(Box::new(OracleValue {
            protocol: Protocol::Maker,
            market: Id::name("ETH"),
            value: Fixed::new(wad(1400), 18),
            source: OracleValueSource::OsmLogValue,
            oracle: address(osm),
        }))
    );
    assert_eq!(
        batch.events.get(1).payload,
        Payload::OracleValue(Box::new(OracleValue {
            protocol: Protocol::Maker,
            market: Id::name("ETH-B"),
            value: Fixed::new(wad(1400), 18),
            source: OracleValueSource::SpotterPoke,
            oracle: address(spotter),
        }))
    );
    let Payload::Price(m) = &batch.events.get(2).payload else {
        panic!()
    };
    assert_eq!(
        (m.asset, m.quote, m.price.to_string(), m.feed),
        (
            Id::name("ETH"),
            Id::name("USD"),
            format!("1390.{}", "0".repeat(18)),
            address(median)
        )
    );
    // cETH is named with the symbol: the value is the cToken's, as the Compound model reads
    // it (`getUnderlyingPrice(cETH)`), and the view's own stored price, not a market price.
    assert_eq!(
        batch.events.get(3).payload,
        Payload::OracleValue(Box::new(OracleValue {
            protocol: Protocol::CompoundV2,
            market: address(CETH),
            value: Fixed::new(U256::from(1_401_230_000u64), 6),
            source: OracleValueSource::CompoundPriceUpdated,
            oracle: address(uav),
        }))
    );
    assert_eq!(
        batch.events.get(4).payload,
        Payload::OracleSourceChange(Box::new(OracleSourceChange {
            protocol: Protocol::AaveV2,
            oracle: address(aave_oracle),
            asset: Id::Address(WETH),
            source: Id::Address(BOT),
        }))
    );
    assert_eq!(
        batch.report.counters["Chainlink NewRound logs (a round opened, no answer) counted"],
        1
    );
}

/// The later views' `PriceUpdated(bytes32 indexed symbolHash, uint256 price)`: the cToken is
/// the one named with a symbol hashing to the topic; an unmatched hash is skipped and counted.
#[test]
fn a_hashed_symbol_price_prices_the_ctoken_named_with_that_symbol() {
    let uav = "0x65c816077C29b557BEE980ae3cC2dCE80204A0C5";
    let price = |symbol: &str, log_index| {
        entry(
            uav,
            &CompoundOracleHashed::PriceUpdated {
                symbolHash: alloy_primitives::keccak256(symbol),
                price: U256::from(1_401_230_000u64),
            },
            10,
            log_index,
            Some(1_700_000_000),
        )
    };
    let mut options = Options::default();
    for flag in [
        format!("{uav}=compound-oracle"),
        format!("{CETH}=compound-v2:ETH"),
    ] {
        let (address, contract) = parse_contract(&flag).unwrap();
        options.contracts.insert(address, contract);
    }
    let batch = run(&[price("ETH", 0), price("BTC", 1)], true, &options, false).unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(
        batch.events.get(0).payload,
        Payload::OracleValue(Box::new(OracleValue {
            protocol: Protocol::CompoundV2,
            market: Id::Address(CETH.parse().unwrap()),
            value: Fixed::new(U256::from(1_401_230_000u64), 6),
            source: OracleValueSource::CompoundPriceUpdated,
            oracle: Id::Address(uav.parse().unwrap()),
        }))
    );
    assert_eq!(
        batch.report.counters["PriceUpdated logs whose symbol hash no named cToken has skipped (name them: --contract CTOKEN=compound-v2:SYMBOL)"],
        1
    );
    // From a contract not named as the view: an error naming the kind to give it.
    let error = run(&[price("ETH", 0)], true, &Options::default(), false).unwrap_err();
    assert!(error.to_string().contains("compound-oracle"), "{error}");
}

/// A Spotter `Poke` as a node returns it, written out by hand from the ABI: topic 0 is
/// keccak256("Poke(bytes32,bytes32,uint256)") (the hash go-ethereum's bindings of dss
/// `spot.sol` print), and the data is three static words, none indexed: `ilk` "ETH-A" left
/// aligned, `val` 1400e18 = 0x4be4e7267b6ae00000, and `spot` = 1400e27 * 1e27 / 1.45e27 =
/// 965517241379310344827586206896 = 0xc2fc124a5c870e5b608d3dcb0.
#[test]
fn a_hand_written_spotter_poke_decodes() {
    let log = serde_json::json!({
        "address": "0x65c79fcb50ca1594b025960e539ed7a9a6d434a3",
        "topics": ["0xdfd7467e425a8107cfd368d159957692c25085aacbcf5228ce08f10f2146486e"],
        "data": concat!(
            "0x4554482d41000000000000000000000000000000000000000000000000000000",
            "00000000000000000000000000000000000000000000004be4e7267b6ae00000",
            "000000000000000000000000000000000000000c2fc124a5c870e5b608d3dcb0"
        ),
        "blockNumber": "0xbebc20",
        "transactionHash": format!("{:#x}", B256::repeat_byte(1)),
        "transactionIndex": "0x0",
        "logIndex": "0x2",
        "blockTimestamp": "0x60b57d00",
    });
    assert_eq!(
        MakerOracles::Poke::SIGNATURE_HASH.to_string(),
        log["topics"][0]
    );
    let batch = run(&[log], false, &Options::default(), false).unwrap();
    let event = batch.events.get(0);
    assert_eq!(
        (event.block, event.log_index, event.time),
        (Some(12_500_000), Some(2), Timestamp(1_622_506_752))
    );
    let Payload::OracleValue(value) = event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(
        (value.market, value.value.to_string(), value.source),
        (
            Id::name("ETH-A"),
            format!("1400.{}", "0".repeat(18)),
            OracleValueSource::SpotterPoke
        )
    );
}

/// An `AaveOracle` naming a reserve's source and that source's aggregator answering, as a node
/// returns them, written out by hand from the ABI. `AssetSourceUpdated(address indexed asset,
/// address indexed source)`: topic 0 keccak256("AssetSourceUpdated(address,address)"), both
/// addresses as topics, no data. `AnswerUpdated(int256 indexed current, uint256 indexed
/// roundId, uint256 updatedAt)`: topic 0 keccak256("AnswerUpdated(int256,uint256,uint256)"),
/// `current` 0.0005 ETH = 5e14 = 0x1c6bf52634000 and `roundId` 42 = 0x2a as topics, `updatedAt`
/// 1700000000 = 0x6553f100 the one data word. The aggregator is described in the feed table as
/// answering for the proxy the oracle names, so its answer is recorded as the proxy's.
#[test]
fn hand_written_source_and_answer_behind_a_proxy_decode() {
    let aave_oracle = "0xa50ba011c48153de246e5192c8f9258a2ba79ca9";
    let proxy = "0x986b5e1e1755e3c2440e960477f25201b0a8bbd4";
    let aggregator = "0x00000000000000000000000000000000000000a9";
    let usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    let common = |address: &str, topics: [&str; 3], data: &str, log_index: &str| {
        serde_json::json!({
            "address": address,
            "topics": topics,
            "data": data,
            "blockNumber": "0xbebc20",
            "transactionHash": format!("{:#x}", B256::repeat_byte(1)),
            "transactionIndex": "0x0",
            "logIndex": log_index,
            "blockTimestamp": "0x6553f100",
        })
    };
    let source = common(
        aave_oracle,
        [
            "0x22c5b7b2d8561d39f7f210b6b326a1aa69f15311163082308ac4877db6339dc1",
            "0x000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
            "0x000000000000000000000000986b5e1e1755e3c2440e960477f25201b0a8bbd4",
        ],
        "0x",
        "0x1",
    );
    let answer = common(
        aggregator,
        [
            "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f",
            "0x0000000000000000000000000000000000000000000000000001c6bf52634000",
            "0x000000000000000000000000000000000000000000000000000000000000002a",
        ],
        "0x000000000000000000000000000000000000000000000000000000006553f100",
        "0x2",
    );
    assert_eq!(
        AaveOracle::AssetSourceUpdated::SIGNATURE_HASH.to_string(),
        source["topics"][0]
    );
    assert_eq!(
        Chainlink::AnswerUpdated::SIGNATURE_HASH.to_string(),
        answer["topics"][0]
    );
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds.toml");
    std::fs::write(
        &feeds,
        format!(
            "[[feed]]\naddress = \"{aggregator}\"\nproxy = \"{proxy}\"\nasset = \"USDC\"\nquote = \"ETH\"\ndecimals = 18\n"
        ),
    )
    .unwrap();
    let mut options = Options {
        feeds: FeedTable::with_file(&feeds).unwrap(),
        ..Options::default()
    };
    let (address, contract) = parse_contract(&format!("{aave_oracle}=aave-v2-oracle")).unwrap();
    options.contracts.insert(address, contract);
    let batch = run(&[source, answer], false, &options, false).unwrap();
    let address = |text: &str| Id::Address(text.parse().unwrap());
    assert_eq!(
        batch.events.get(0).payload,
        Payload::OracleSourceChange(Box::new(OracleSourceChange {
            protocol: Protocol::AaveV2,
            oracle: address(aave_oracle),
            asset: address(usdc),
            source: address(proxy),
        }))
    );
    let Payload::Price(price) = &batch.events.get(1).payload else {
        panic!("{:?}", batch.events.get(1).payload)
    };
    assert_eq!(
        (
            price.asset,
            price.quote,
            price.price,
            price.feed,
            price.round
        ),
        (
            Id::name("USDC"),
            Id::name("ETH"),
            Fixed::new(U256::from(500_000_000_000_000u64), 18),
            address(proxy),
            Some(42)
        )
    );
    assert_eq!(batch.events.get(1).time, Timestamp(1_700_000_000));
}

/// A note (anonymous log) of a `file` call as the deployed contracts write it: `topics` as given
/// (the selector left-aligned first), data the ABI encoding of `bytes` holding the first 224
/// bytes of the calldata (offset word 0x20, length word 0xe0 = 224, then the calldata zero-padded
/// to 224 bytes: `mstore(mark, 0x20) mstore(add(mark, 0x20), 224) calldatacopy(add(mark, 0x40),
/// 0, 224)` in dss `lib.sol` and `vat.sol`).
fn file_note(address: &str, topics: &[&str], calldata: &str, log_index: u64) -> serde_json::Value {
    let calldata = calldata.strip_prefix("0x").unwrap();
    serde_json::json!({
        "address": address,
        "topics": topics,
        "data": format!("0x{}{}{calldata:0<448}", format!("{:064x}", 0x20), format!("{:064x}", 224)),
        "blockNumber": "0xbebc20",
        "transactionHash": format!("{:#x}", B256::repeat_byte(1)),
        "transactionIndex": "0x0",
        "logIndex": format!("{log_index:#x}"),
        "blockTimestamp": "0x60b57d00",
    })
}

/// `file` notes of the mainnet Spotter, Jug, Vat and Cat, written out by hand: the selectors
/// `file(bytes32,bytes32,uint256)` = 0x1a0b287e and `file(bytes32,uint256)` = 0x29ae8114
/// (keccak256 of the signatures, as the topics of mainnet notes carry them); `ETH-B`, `mat`,
/// `duty`, `dust`, `chop`, `box` as left-aligned ASCII words; values: `mat` 1.3 ray =
/// 0x43355b53628a6b594000000, `duty` 1000000001847694957439350562 (6% a year) =
/// 0x33b2e3cb974d5031f73f722, `dust` 5,000 rad = 0x36bcfc1194751ed30f03375d97c45000000000000,
/// `chop` 1.13 wad = 0xfae910354310000, `box` 30M rad = 0x502ed53dc07790272afdb61a19509130000000000000.
/// LibNote's topics are the selector, the caller, the first two arguments (the value is in the
/// calldata); the Vat's are the selector and the first three (the value is a topic).
#[test]
fn hand_written_file_notes_decode_into_maker_parameters() {
    const FILE_ILK: &str = "0x1a0b287e00000000000000000000000000000000000000000000000000000000";
    const FILE: &str = "0x29ae811400000000000000000000000000000000000000000000000000000000";
    const CALLER: &str = "0x000000000000000000000000be8e3e3618f7474f8cb1d074a26affef007e98fb";
    const ETH_B: &str = "0x4554482d42000000000000000000000000000000000000000000000000000000";
    let word = |text: &str| format!("{:0<64}", hex::encode(text));
    let value = |hex: &str| format!("{hex:0>64}");
    let topic = |text: &str| format!("0x{}", word(text));
    let file_ilk_call =
        |what: &str, data: &str| format!("0x1a0b287e{}{}{}", &ETH_B[2..], word(what), value(data));
    let spotter = "0x65c79fcb50ca1594b025960e539ed7a9a6d434a3";
    let jug = "0x19c0976f590d67707e62397c87829d896dc0f1f1";
    let vat = "0x35d1b3f3d7966a1dfe207aa4514c12a259a0492b";
    let cat = "0xa5679c04fc3d9d8b0aab1f0ab83555b301ca70ea";
    let pot = "0x197e90f9fad81970ba7976f33cbd77088e5d7cf7";
    let (mat, duty) = ("43355b53628a6b594000000", "33b2e3cb974d5031f73f722");
    let dust = "36bcfc1194751ed30f03375d97c45000000000000";
    let (chop, boxed) = (
        "fae910354310000",
        "502ed53dc07790272afdb61a19509130000000000000",
    );
    let logs = [
        file_note(
            spotter,
            &[FILE_ILK, CALLER, ETH_B, &topic("mat")],
            &file_ilk_call("mat", mat),
            0,
        ),
        file_note(
            jug,
            &[FILE_ILK, CALLER, ETH_B, &topic("duty")],
            &file_ilk_call("duty", duty),
            1,
        ),
        file_note(
            vat,
            &[
                FILE_ILK,
                ETH_B,
                &topic("dust"),
                &format!("0x{}", value(dust)),
            ],
            &file_ilk_call("dust", dust),
            2,
        ),
        file_note(
            cat,
            &[FILE_ILK, CALLER, ETH_B, &topic("chop")],
            &file_ilk_call("chop", chop),
            3,
        ),
        file_note(
            cat,
            &[FILE, CALLER, &topic("box"), &format!("0x{}", value(boxed))],
            &format!("0x29ae8114{}{}", word("box"), value(boxed)),
            4,
        ),
        // The Vat's `spot`, filed by every Spotter.poke: counted.
        file_note(
            vat,
            &[
                FILE_ILK,
                ETH_B,
                &topic("spot"),
                &format!("0x{}", value("1")),
            ],
            &file_ilk_call("spot", "1"),
            5,
        ),
        // The Pot logs its `file` the same way: not a contract the table names.
        file_note(
            pot,
            &[FILE, CALLER, &topic("dsr"), &format!("0x{}", value("1"))],
            &format!("0x29ae8114{}{}", word("dsr"), value("1")),
            6,
        ),
    ];
    // The selectors of the `sol!` declarations are the mainnet notes' first topics.
    for (call, topic) in [
        (MakerFiles::file_0Call::SELECTOR, FILE_ILK),
        (MakerFiles::file_1Call::SELECTOR, FILE),
    ] {
        assert_eq!(format!("{:#x}", super::maker::note_topic(call)), topic);
    }
    let batch = run(&logs, false, &Options::default(), false).unwrap();
    let params: Vec<(String, String, String)> = batch
        .events
        .iter()
        .map(|event| match &event.payload {
            Payload::ParamChange(change) => (
                change.market.to_string(),
                change.param.to_string(),
                change.value.to_string(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    let ray = |digits: &str| digits.to_owned();
    assert_eq!(
        params,
        [
            (
                "ETH-B".into(),
                "SPOTTER.mat".into(),
                ray("1.300000000000000000000000000")
            ),
            (
                "ETH-B".into(),
                "JUG.duty_per_second".into(),
                ray("1.000000001847694957439350562")
            ),
            (
                "ETH-B".into(),
                "VAT.dust".into(),
                format!("5000.{}", "0".repeat(45))
            ),
            (
                "ETH-B".into(),
                "CAT.chop".into(),
                format!("1.13{}", "0".repeat(16))
            ),
            (
                "maker".into(),
                "CAT.box".into(),
                format!("30000000.{}", "0".repeat(45))
            ),
        ]
    );
    assert_eq!(
        batch.report.counters["Vat file spot notes counted (Spotter.poke files it; its Poke carries the value)"],
        1
    );
    assert_eq!(
        batch.report.counters.len(),
        2,
        "{:?}",
        batch.report.counters
    );
}

/// The `sol!` declarations hash to the topics nodes return (as printed by third-party
/// bindings of the deployed contracts: vulcanize's `LogValue(bytes32)`, go-ethereum bindings
/// of the Median and of Chainlink's aggregators' `NewRound`, and `cast keccak` of the
/// `UniswapAnchoredView`'s verified source for `PriceUpdated(string,uint256)`). `Poke`,
/// `AnswerUpdated` and `AssetSourceUpdated` are pinned by the hand-written logs above.
#[test]
fn oracle_signatures_hash_to_the_mainnet_topics() {
    assert_eq!(
        MakerOracles::LogValue::SIGNATURE_HASH.to_string(),
        "0x296ba4ca62c6c21c95e828080cb8aec7481b71390585605300a8a76f9e95b527"
    );
    assert_eq!(
        MakerOracles::LogMedianPrice::SIGNATURE_HASH.to_string(),
        "0xb78ebc573f1f889ca9e1e0fb62c843c836f3d3a2e1f43ef62940e9b894f4ea4c"
    );
    assert_eq!(
        ChainlinkRounds::NewRound::SIGNATURE_HASH.to_string(),
        "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271"
    );
    assert_eq!(
        CompoundOracle::PriceUpdated::SIGNATURE_HASH.to_string(),
        "0x159e83f4712ba2552e68be9d848e49bf6dd35c24f19564ffd523b6549450a2f4"
    );
}

#[test]
fn a_contract_table_file_names_emitters_or_says_which_line_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contracts.csv");
    std::fs::write(
        &path,
        "address,kind\n0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763,maker-osm:ETH\n0x64DE91F5A373Cd4c28de3600cB34C7C6cE410C85,maker-median:ETH\n",
    )
    .unwrap();
    let contracts = read_contracts(&path).unwrap();
    assert_eq!(
        contracts.get(
            &"0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763"
                .parse::<Address>()
                .unwrap()
        ),
        Some(&Contract::MakerOsm(Symbol::new("ETH").unwrap()))
    );
    assert_eq!(contracts.len(), 2);
    std::fs::write(
        &path,
        "address,kind\n0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763,maker-osm:ETH\n0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763,maker-osm:WBTC\n",
    )
    .unwrap();
    let error = read_contracts(&path).unwrap_err();
    assert_eq!(
        error.row_at(),
        (Position::Line(3), "kind", "maker-osm:WBTC")
    );
    std::fs::write(&path, "address,kind\n0x81,maker-osm:ETH\n").unwrap();
    let error = read_contracts(&path).unwrap_err();
    assert_eq!(error.row_at(), (Position::Line(2), "address", "0x81"));
}

#[test]
fn an_oracle_value_from_an_unnamed_emitter_is_an_error() {
    let log = entry(
        "0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763",
        &MakerOracles::LogValue {
            val: B256::from(U256::from(5u8)),
        },
        1,
        0,
        Some(1_700_000_000),
    );
    let error = run(&[log], false, &Options::default(), false).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("--contract 0x81fe72b5a8d1a857d176c3e7d5bd2679a9b85763=maker-osm:GEM"),
        "{message}"
    );
    assert_eq!(error.row_at().1, "address");
    assert!(
        parse_contract("0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763=maker-osm:")
            .unwrap_err()
            .contains("maker-osm:")
    );
}

/// The `sol!` declarations of the parameter events hash to the topics mainnet logs carry (as
/// third-party ABIs and indexers list them).
#[test]
fn parameter_signatures_hash_to_the_mainnet_topics() {
    for (topic, expected) in [
        (
            AaveConfigurator::CollateralConfigurationChanged::SIGNATURE_HASH,
            "0x637febbda9275aea2e85c0ff690444c8d87eb2e8339bbede9715abcc89cb0995",
        ),
        (
            CompoundComptroller::NewCollateralFactor::SIGNATURE_HASH,
            "0x70483e6592cd5182d45ac970e05bc62cdcc90e9d8ef2c2dbe686cf383bcd7fc5",
        ),
        (
            CompoundComptroller::NewLiquidationIncentive::SIGNATURE_HASH,
            "0xaeba5a6c40a8ac138134bff1aaa65debf25971188a58804bad717f82f0ec1316",
        ),
        (
            CompoundComptroller::NewCloseFactor::SIGNATURE_HASH,
            "0x3b9670cf975d26958e754b57098eaa2ac914d8d2a31b83257997b9f346110fd9",
        ),
    ] {
        assert_eq!(topic.to_string(), expected);
    }
}

fn param_change(protocol: Protocol, market: Id, param: &str, value: Fixed) -> Payload {
    Payload::ParamChange(Box::new(cascade_events::ParamChange {
        protocol,
        market,
        param: Symbol::new(param).unwrap(),
        value,
    }))
}

/// Mainnet configurators are built in; each v2/v3 log becomes three changes of its reserve, in
/// basis points, in the event's field order, under one log position.
#[test]
fn aave_collateral_configuration_sets_the_reserve_parameters() {
    const V2_CONFIGURATOR: &str = "0x311Bb771e4F8952E6Da169b425E7e92d6Ac45756";
    const V3_CONFIGURATOR: &str = "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27";
    let configure =
        |ltv: u16, threshold: u16, bonus: u16| AaveConfigurator::CollateralConfigurationChanged {
            asset: WETH,
            ltv: U256::from(ltv),
            liquidationThreshold: U256::from(threshold),
            liquidationBonus: U256::from(bonus),
        };
    let entries = [
        entry(
            V2_CONFIGURATOR,
            &configure(8000, 8250, 10500),
            10,
            1,
            Some(1_700_000_000),
        ),
        entry(
            V3_CONFIGURATOR,
            &configure(8050, 8300, 10500),
            11,
            2,
            Some(1_700_000_012),
        ),
    ];
    let batch = run(&entries, false, &Options::default(), false).unwrap();
    let bps = |points: u64| Fixed::new(U256::from(points), 4);
    let expected = [
        (Protocol::AaveV2, "ltv", bps(8000)),
        (Protocol::AaveV2, "liquidationThreshold", bps(8250)),
        (Protocol::AaveV2, "liquidationBonus", bps(10500)),
        (Protocol::AaveV3, "ltv", bps(8050)),
        (Protocol::AaveV3, "liquidationThreshold", bps(8300)),
        (Protocol::AaveV3, "liquidationBonus", bps(10500)),
    ];
    assert_eq!(batch.events.len(), expected.len());
    for (i, (protocol, param, value)) in expected.into_iter().enumerate() {
        let event = batch.events.get(i);
        assert_eq!(
            event.payload,
            param_change(protocol, Id::Address(WETH), param, value)
        );
        assert_eq!(event.log_index, Some(if i < 3 { 1 } else { 2 }));
    }
    assert_eq!(
        bps(10500).to_string(),
        "1.0500",
        "the bonus as the multiplier"
    );

    // One log's changes are distinct events for duplicate detection, the same log twice is not.
    let identities: Vec<_> = (0..3)
        .map(|i| crate::dedup::identity(&batch.events.get(i), None).unwrap())
        .collect();
    assert_ne!(identities[0], identities[1]);
    assert_ne!(identities[1], identities[2]);

    // From an address not named as a configurator: counted, not guessed.
    let unnamed = entry(
        "0x1111111111111111111111111111111111111111",
        &configure(8000, 8250, 10500),
        12,
        0,
        Some(1_700_000_024),
    );
    let batch = run(&[unnamed], false, &Options::default(), false).unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(
        batch.report.counters["Aave configurator events from contracts not known as a configurator skipped (use --contract ADDRESS=aave-v2-configurator|aave-v3-configurator)"],
        1
    );

    // A value the configuration's 16 bits cannot hold is impossible: an error naming it.
    let mut wide = configure(8000, 8250, 10500);
    wide.liquidationBonus = U256::from(70_000u32);
    let error = run(
        &[entry(V2_CONFIGURATOR, &wide, 13, 0, Some(1_700_000_036))],
        false,
        &Options::default(),
        false,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("liquidationBonus 70000"),
        "{error}"
    );
}

/// The Comptroller's three risk parameters as mantissas (18 decimals): the collateral factor of
/// the cToken the event names, the close factor and incentive Comptroller-wide.
#[test]
fn compound_comptroller_events_set_the_risk_parameters() {
    const COMPTROLLER: &str = "0x3d9819210A31b4961b30EF54bE2aeD79B9c9Cd3B";
    const CETH: Address = Address::repeat_byte(0x4d);
    let mantissa = |text: &str| text.parse::<Fixed>().unwrap().rescale(18).unwrap();
    let entries = [
        entry(
            COMPTROLLER,
            &CompoundComptroller::NewCollateralFactor {
                cToken: CETH,
                oldCollateralFactorMantissa: mantissa("0.75"),
                newCollateralFactorMantissa: mantissa("0.825"),
            },
            20,
            0,
            Some(1_700_000_000),
        ),
        entry(
            COMPTROLLER,
            &CompoundComptroller::NewLiquidationIncentive {
                oldLiquidationIncentiveMantissa: mantissa("1.05"),
                newLiquidationIncentiveMantissa: mantissa("1.08"),
            },
            20,
            1,
            Some(1_700_000_000),
        ),
        entry(
            COMPTROLLER,
            &CompoundComptroller::NewCloseFactor {
                oldCloseFactorMantissa: mantissa("0.5"),
                newCloseFactorMantissa: mantissa("0.5"),
            },
            20,
            2,
            Some(1_700_000_000),
        ),
    ];
    let batch = run(&entries, true, &Options::default(), false).unwrap();
    let global = Id::name("compound-v2");
    let expected = [
        (Id::Address(CETH), "collateralFactor", "0.825"),
        (global, "liquidationIncentive", "1.08"),
        (global, "closeFactor", "0.5"),
    ];
    assert_eq!(batch.events.len(), expected.len());
    for (i, (market, param, value)) in expected.into_iter().enumerate() {
        assert_eq!(
            batch.events.get(i).payload,
            param_change(
                Protocol::CompoundV2,
                market,
                param,
                Fixed::new(mantissa(value), 18)
            )
        );
    }

    // A fork's Comptroller emits the same events: only the one the table names sets Compound's.
    let fork = entry(
        "0x1111111111111111111111111111111111111111",
        &CompoundComptroller::NewCloseFactor {
            oldCloseFactorMantissa: mantissa("0.5"),
            newCloseFactorMantissa: mantissa("0.9"),
        },
        21,
        0,
        Some(1_700_000_012),
    );
    let batch = run(&[fork], false, &Options::default(), false).unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(
        batch.report.counters["Comptroller events from contracts not known as the Compound Comptroller skipped (use --contract ADDRESS=compound-comptroller)"],
        1
    );
}

fn bytes32(text: &str) -> FixedBytes<32> {
    FixedBytes::from(Symbol::new(text).unwrap().as_bytes32())
}

/// The Dog's and a named Clipper's `File` events become the Maker model's parameters in the
/// contracts' own units (`Hole`/`hole`/`tip` rads, `chop` a wad, `buf` a ray, `tail` seconds).
#[test]
fn maker_file_events_set_the_liquidation_parameters() {
    assert_eq!(
        MakerFile::File::SIGNATURE_HASH.to_string(),
        "0xe986e40cc8c151830d4f61050f4fb2e4add8567caad2d5f5496f9158e91fe4c7"
    );
    assert_eq!(
        MakerFileIlk::File::SIGNATURE_HASH.to_string(),
        "0x851aa1caf4888170ad8875449d18f0f512fd6deb2a6571ea1a41fb9f95acbcd1"
    );
    const DOG: &str = "0x135954d155898D42C90D2a57824C690e0c7BEf1B";
    const CLIPPER: &str = "0x3333333333333333333333333333333333333333";
    let ten = |power: u32| U256::from(10u8).pow(U256::from(power));
    let file = |what: &str, data: U256| MakerFile::File {
        what: bytes32(what),
        data,
    };
    let file_ilk = |what: &str, data: U256| MakerFileIlk::File {
        ilk: bytes32("ETH-B"),
        what: bytes32(what),
        data,
    };
    let at = Some(1_700_000_000);
    let entries = [
        entry(
            DOG,
            &file("Hole", U256::from(100_000_000u64) * ten(45)),
            30,
            0,
            at,
        ),
        entry(
            DOG,
            &file_ilk("chop", U256::from(113u8) * ten(16)),
            30,
            1,
            at,
        ),
        entry(
            DOG,
            &file_ilk("hole", U256::from(15_000_000u64) * ten(45)),
            30,
            2,
            at,
        ),
        entry(CLIPPER, &file("buf", U256::from(12u8) * ten(26)), 30, 3, at),
        entry(CLIPPER, &file("tail", U256::from(8_400u16)), 30, 4, at),
        entry(CLIPPER, &file("stopped", U256::from(1u8)), 30, 5, at),
    ];
    let mut options = Options::default();
    let (address, contract) = parse_contract(&format!("{CLIPPER}=maker-clipper:ETH-B")).unwrap();
    options.contracts.insert(address, contract);
    let batch = run(&entries, false, &options, false).unwrap();
    let ilk = Id::name("ETH-B");
    let expected = [
        (Id::name("maker"), "DOG.Hole", "100000000", 45),
        (ilk, "DOG.chop", "1.13", 18),
        (ilk, "DOG.hole", "15000000", 45),
        (ilk, "CLIPPER.buf", "1.2", 27),
        (ilk, "CLIPPER.tail", "8400", 0),
    ];
    assert_eq!(batch.events.len(), expected.len());
    for (i, (market, param, value, decimals)) in expected.into_iter().enumerate() {
        assert_eq!(
            batch.events.get(i).payload,
            param_change(
                Protocol::Maker,
                market,
                param,
                Fixed::parse_with(value, decimals).unwrap()
            )
        );
    }
    assert_eq!(
        batch.report.counters["Clipper File stopped (circuit breaker) counted"],
        1
    );

    // The signature is common among dss modules: from an emitter not named, counted.
    let unnamed = entry(CLIPPER, &file("buf", ten(27)), 31, 0, at);
    let batch = run(&[unnamed], false, &Options::default(), false).unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(batch.report.counters.values().sum::<u64>(), 1);
    assert!(
        batch
            .report
            .counters
            .keys()
            .any(|reason| reason.contains("maker-clipper:ILK"))
    );
}

/// A `LiquidateBorrow` table as Dune and cryo export it (one row per log, the cToken repaid as
/// `contract_address`), read through a mapping with `detail = "compound"`.
const LIQUIDATE_BORROW_MAPPING: &str = r#"
block = "evt_block_number"
tx_hash = "evt_tx_hash"
tx_index = "evt_tx_index"
log_index = "evt_index"

[time]
column = "evt_block_time"
format = "%Y-%m-%d %H:%M:%S"

[[event]]
kind = "liquidation"
protocol = "compound-v2"
market = { column = "contract_address", id = "address" }
account = { column = "borrower", id = "address" }
liquidator = { column = "liquidator", id = "address" }
collateral_asset = { column = "cTokenCollateral", id = "address" }
collateral_seized = { column = "seizeTokens", unit = "base" }
debt_asset = { column = "contract_address", id = "address" }
debt_repaid = { column = "repayAmount", unit = "base" }
detail = "compound"
"#;

#[test]
fn a_liquidate_borrow_table_through_a_mapping_is_the_decoded_log() {
    let cdai = "0x5d3a536E4D6DbD6114cc1Ead35777bAB948E3643";
    let ceth = Address::repeat_byte(0xce);
    let log = CompoundV2::LiquidateBorrow {
        liquidator: BOT,
        borrower: USER,
        repayAmount: U256::from(1_500_000_000_000_000_000_000u128),
        cTokenCollateral: ceth,
        seizeTokens: U256::from(4_122_063_207u64),
    };
    // 2021-05-19 12:07:11 UTC.
    let decoded = run(
        &[entry(cdai, &log, 12_460_000, 7, Some(1_621_426_031))],
        false,
        &Options::default(),
        false,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("liquidate_borrow.csv");
    // Dune writes addresses in lower case and the time without a zone; the block's
    // transaction hash is what `entry` gives every log of block 12,460,000.
    std::fs::write(
        &csv,
        format!(
            "contract_address,evt_tx_hash,evt_tx_index,evt_index,evt_block_time,evt_block_number,liquidator,borrower,repayAmount,cTokenCollateral,seizeTokens\n\
             {},{:#x},3,7,2021-05-19 12:07:11,12460000,{:#x},{:#x},1500000000000000000000,{:#x},4122063207\n",
            cdai.to_lowercase(),
            B256::repeat_byte(12_460_000u64 as u8),
            BOT,
            USER,
            ceth,
        ),
    )
    .unwrap();
    let mapping =
        crate::mapping::Mapping::from_toml(Path::new("m.toml"), LIQUIDATE_BORROW_MAPPING).unwrap();
    let mapped = crate::mapped_csv::read(&[csv], &mapping, &context(false)).unwrap();

    // Event for event: the same envelope and payload, so the Compound model converts the
    // `seizeTokens` with the market's exchange rate in the log either way.
    assert_eq!(mapped.events.len(), 1);
    assert_eq!(decoded.events.len(), 1);
    let (mapped, decoded) = (mapped.events.get(0), decoded.events.get(0));
    assert_eq!(
        (
            mapped.block,
            mapped.time,
            mapped.tx_index,
            mapped.log_index,
            mapped.tx_hash
        ),
        (
            decoded.block,
            decoded.time,
            decoded.tx_index,
            decoded.log_index,
            decoded.tx_hash
        )
    );
    assert_eq!(mapped.payload, decoded.payload);
    let Payload::Liquidation(liquidation) = &mapped.payload else {
        panic!("{:?}", mapped.payload)
    };
    assert_eq!(
        liquidation.detail,
        LiquidationDetail::Compound {
            seize_tokens: Amount::from_units(4_122_063_207)
        }
    );

    // Converting the cTokens in the mapping too would convert them twice.
    let converted = LIQUIDATE_BORROW_MAPPING.replace(
        r#"unit = "base" }
debt_asset"#,
        r#"unit = "base", exchange_rate = { value = "200335783821833263449767284" } }
debt_asset"#,
    );
    let error = crate::mapping::Mapping::from_toml(Path::new("m.toml"), &converted)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("field `detail`") && error.contains("drop its `exchange_rate`"),
        "{error}"
    );
}
