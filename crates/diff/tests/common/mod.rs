//! Run files built with the engine's own run types, so the tests read exactly what
//! `cascade replay` writes.

use cascade_engine::run::{
    AccountAsset, AccountRecord, AccountState, BookMoment, HealthSample, HealthSnapshot,
    LiquidationRecord, Listed, LogInfo, Moment, Origin, RUN_SCHEMA_VERSION, Run, TimelinePoint,
    Totals, Window, health_buckets, health_snapshot,
};
use cascade_engine::{HealthDistribution, Quantity};
use cascade_events::{Id, Protocol, Timestamp, U256};
use cascade_run::ScenarioInfo;
use cascade_run::scenario::{LiquidatorPolicy, ScenarioWindow};

/// `whole` tokens at 18 decimals.
pub fn tokens(whole: u64) -> Quantity {
    Quantity::new(U256::from(whole) * U256::from(10u64.pow(18)), 18)
}

/// A liquidation of `account` (ETH-B vault number) at `time`.
pub fn liquidation(
    seq: u64,
    time: i64,
    account: u64,
    eth: u64,
    dai: u64,
    round: Option<u32>,
) -> LiquidationRecord {
    LiquidationRecord {
        seq,
        time: Timestamp(time),
        origin: if round.is_some() {
            Origin::Simulated
        } else {
            Origin::Recorded
        },
        protocol: Protocol::Maker,
        market: Id::name("ETH-B"),
        account: Id::Number(account),
        tx_hash: None,
        log_index: None,
        verdict: if round.is_some() {
            None
        } else {
            Some(cascade_engine::Verdict::Explained)
        },
        rule: "dog-bark".into(),
        round,
        health: None,
        collateral_asset: Id::name("ETH"),
        collateral_seized: tokens(eth),
        expected_collateral: None,
        debt_asset: Id::name("DAI"),
        debt_repaid: tokens(dai),
        expected_debt: None,
        bad_debt: round.map(|_| tokens(0)),
        collateral_sold: round.map(|_| tokens(eth)),
        note: None,
        oracle: None,
        mismatch: None,
        missing: None,
        seize: None,
    }
}

/// A timeline point: the oracle price `price` from `seq` on.
pub fn point(seq: u64, time: i64, price: u64) -> TimelinePoint {
    TimelinePoint {
        seq,
        time: Timestamp(time),
        protocol: "maker".to_owned(),
        market: "ETH-B".to_owned(),
        oracle_price: Some(tokens(price)),
        trigger: None,
        accounts_unsafe: 0,
        collateral_at_risk: tokens(0),
        debt_at_risk: tokens(0),
        bad_debt: tokens(0),
    }
}

/// ETH-B's health distribution at `moment`: `accounts[i]` vaults in bucket `i`, each owing
/// 1,000 DAI, and one vault without debt before, four after.
pub fn health(moment: Moment, seq: u64, time: i64, accounts: [u64; 8]) -> HealthSnapshot {
    let mut distribution = HealthDistribution::new(Protocol::Maker, Id::name("ETH-B"), 18);
    distribution.accounts = accounts;
    distribution.without_debt = if moment == Moment::Before { 1 } else { 4 };
    for (debt, count) in distribution.debt.iter_mut().zip(accounts) {
        *debt = tokens(1_000 * count).value;
    }
    health_snapshot(moment, seq, Timestamp(time), &distribution)
}

/// ETH-B's accounts by health at the end of the hour starting `period`, its last event `seq`.
pub fn hourly(seq: u64, period: i64, accounts: [u64; 8]) -> HealthSample {
    let mut distribution = HealthDistribution::new(Protocol::Maker, Id::name("ETH-B"), 18);
    distribution.accounts = accounts;
    for (debt, count) in distribution.debt.iter_mut().zip(accounts) {
        *debt = tokens(1_000 * count).value;
    }
    HealthSample {
        period: Timestamp(period),
        period_seconds: 3600,
        seq,
        time: Timestamp(period + 3_000),
        protocol: "maker".to_owned(),
        market: "ETH-B".to_owned(),
        buckets: health_buckets(&distribution),
        accounts_without_debt: 1,
        accounts_unpriced: 0,
    }
}

/// The book of the test log at the end of the hour starting `period`: two Maker vaults and one
/// owner (vault 1's urn) also in Aave v2 with a loop across protocols; in the counterfactual
/// the first vault is thinner.
fn book(counterfactual: bool) -> cascade_engine::leverage::book::Book {
    use cascade_engine::leverage::loops::{Holding, LiquidationDistance, Position};
    let usd = |whole: u64| U256::from(whole) * U256::from(10u64.pow(18));
    let position =
        |protocol, account: u64, collateral: &[(&str, u64)], debt: &[(&str, u64)], fall| Position {
            protocol,
            market: Id::name(if protocol == Protocol::Maker {
                "ETH-B"
            } else {
                "POOL"
            }),
            account: Id::Number(account),
            collateral: collateral
                .iter()
                .map(|(a, v)| Holding {
                    asset: Id::name(a),
                    value: usd(*v),
                })
                .collect(),
            debt: debt
                .iter()
                .map(|(a, v)| Holding {
                    asset: Id::name(a),
                    value: usd(*v),
                })
                .collect(),
            health: None,
            liquidation: Some(LiquidationDistance {
                asset: Id::name(collateral[0].0),
                fall_bps: fall,
            }),
        };
    let first = if counterfactual { 200_000 } else { 300_000 };
    cascade_engine::leverage::book::summarise(
        &[
            position(
                Protocol::Maker,
                1,
                &[("ETH", first)],
                &[("DAI", 150_000)],
                1200,
            ),
            position(
                Protocol::Maker,
                2,
                &[("ETH", 90_000)],
                &[("DAI", 40_000)],
                3000,
            ),
            position(
                Protocol::AaveV2,
                1,
                &[("DAI", 150_000)],
                &[("WETH", 60_000)],
                700,
            ),
        ],
        &cascade_engine::leverage::loops::Correlation::default(),
    )
}

/// 2022-06-13T00:00:00Z.
pub const DAY: i64 = 1_655_078_400;

/// A scenario named and labelled `label` that changes `changes`, with the idealised liquidator
/// and no other section.
pub fn scenario(label: &str, changes: &[&str]) -> ScenarioInfo {
    let zero = Quantity::new(U256::ZERO, 18);
    ScenarioInfo {
        baseline: false,
        changes: changes.iter().map(|c| (*c).to_owned()).collect(),
        description: None,
        impact: Vec::new(),
        label: label.to_owned(),
        leverage: Default::default(),
        liquidator: LiquidatorPolicy {
            assumed_bonus: zero,
            block_time: 12,
            gas_cost: zero,
            keeper_discount: zero,
            latency: 0,
            max_per_block: None,
            min_profit: zero,
            pick: "largest-debt".to_owned(),
        },
        name: label.to_owned(),
        oracle: Vec::new(),
        origin: "test".to_owned(),
        overrides: Vec::new(),
        prices: Vec::new(),
        window: ScenarioWindow {
            from: None,
            to: None,
        },
    }
}

/// A run of the test log with these liquidations; `scenario` is `None` for a historical run.
pub fn run(
    scenario: Option<ScenarioInfo>,
    liquidations: Vec<LiquidationRecord>,
    hash: &str,
) -> Vec<u8> {
    let counterfactual = scenario.is_some();
    let mut collateral = std::collections::BTreeMap::new();
    let mut debt = std::collections::BTreeMap::new();
    for l in &liquidations {
        let c = collateral.entry("ETH".to_owned()).or_insert(tokens(0));
        c.value += l.collateral_seized.value;
        let d = debt.entry("DAI".to_owned()).or_insert(tokens(0));
        d.value += l.debt_repaid.value;
    }
    let run = Run {
        schema_version: RUN_SCHEMA_VERSION,
        log: LogInfo {
            first_seq: Some(0),
            last_seq: Some(999),
            content_hash: hash.to_owned(),
        },
        window: Window::default(),
        scenario,
        config: cascade_engine::EngineConfig::default().describe(),
        state_hash: "ab".repeat(32),
        totals: Totals {
            liquidations: liquidations.len() as u64,
            collateral_seized: collateral,
            debt_repaid: debt,
            ..Totals::default()
        },
        snapshot_differences: Default::default(),
        liquidations,
        unsafe_unliquidated: Vec::new(),
        counterfactual: None,
        timeline: vec![
            point(0, DAY, 1500),
            point(100, DAY + 3_600, 1200),
            point(200, DAY + 7_200, 1000),
        ],
        health_distribution: if counterfactual {
            vec![
                health(Moment::Before, 100, DAY + 3_600, [2, 3, 4, 5, 6, 7, 8, 9]),
                health(Moment::After, 999, DAY + 9_000, [0, 1, 3, 5, 6, 7, 8, 9]),
            ]
        } else {
            vec![
                health(Moment::Before, 110, DAY + 3_700, [1, 3, 4, 5, 6, 7, 8, 9]),
                health(Moment::After, 999, DAY + 9_000, [0, 2, 4, 5, 6, 7, 8, 9]),
            ]
        },
        leverage_over_time: [(90, DAY), (190, DAY + 3_600), (999, DAY + 7_200)]
            .iter()
            .flat_map(|(seq, period)| {
                cascade_engine::leverage::record::leverage_samples(
                    cascade_engine::leverage::record::Taken {
                        period: *period,
                        period_seconds: 3600,
                        seq: *seq,
                        time: Timestamp(period + 3_000),
                    },
                    &book(counterfactual && *seq == 999),
                    &Default::default(),
                )
            })
            .collect(),
        liquidation_ladder: [(BookMoment::Start, 90), (BookMoment::End, 999)]
            .iter()
            .flat_map(|(moment, seq)| {
                cascade_engine::leverage::record::ladder(
                    *moment,
                    *seq,
                    Timestamp(DAY + 3_000),
                    &book(counterfactual && *seq == 999),
                )
            })
            .collect(),
        overlap: [(BookMoment::Start, 90), (BookMoment::End, 999)]
            .iter()
            .map(|(moment, seq)| {
                cascade_engine::leverage::record::overlap(
                    *moment,
                    *seq,
                    Timestamp(DAY + 3_000),
                    &book(counterfactual && *seq == 999),
                )
            })
            .collect(),
        accounts: accounts(counterfactual),
        health_over_time: vec![
            hourly(90, DAY, [0, 1, 2, 6, 6, 7, 8, 9]),
            hourly(190, DAY + 3_600, [3, 3, 4, 5, 6, 7, 8, 9]),
            hourly(
                999,
                DAY + 7_200,
                [0, if counterfactual { 1 } else { 2 }, 4, 5, 6, 7, 8, 9],
            ),
        ],
    };
    run.to_json()
}

/// An exact amount from its text.
fn exact(text: &str) -> Quantity {
    serde_json::from_value(serde_json::Value::from(text)).expect("decimal text")
}

/// A vault holding `eth` against `dai` at event `seq` with `health` (`None`: no debt), the OSM
/// at `osm`.
fn vault(seq: u64, osm: u64, eth: u64, dai: u64, health: Option<&str>) -> AccountState {
    AccountState {
        seq,
        time: Timestamp(DAY + seq as i64),
        health: health.map(exact),
        base_currency: "DAI".to_owned(),
        collateral_value: Some(tokens(eth * osm)),
        debt_value: Some(tokens(dai)),
        assets: vec![
            AccountAsset {
                asset: "WETH".to_owned(),
                collateral: Some(tokens(eth)),
                debt: Some(tokens(0)),
            },
            AccountAsset {
                asset: "DAI".to_owned(),
                collateral: Some(tokens(0)),
                debt: Some(tokens(dai)),
            },
        ],
        missing: None,
    }
}

/// The accounts list of the test runs, worked by hand with `mat` 1.5: at the start (OSM 1500,
/// spot 1000) #1 holds 100 ETH against 90,000 DAI (health 1.1111), #2 60 ETH against 40,000
/// (1.5), #3 12 ETH against 9,000 (1.3333); at the end the OSM reads 1400 (spot 933.33). In
/// history #1 is liquidated whole, #2 keeps 10 ETH and no debt, #3 is untouched (1.2444); in the
/// counterfactual #1 is untouched (1.0370), #2 is liquidated whole, #3 keeps 2 ETH and no debt.
fn accounts(counterfactual: bool) -> Vec<AccountRecord> {
    let start = [
        vault(0, 1500, 100, 90_000, Some("1.111111111111111111")),
        vault(0, 1500, 60, 40_000, Some("1.5")),
        vault(0, 1500, 12, 9_000, Some("1.333333333333333333")),
    ];
    let end = |eth: u64, dai: u64, health: Option<&str>| Some(vault(999, 1400, eth, dai, health));
    let (ends, liquidated) = if counterfactual {
        (
            [
                end(100, 90_000, Some("1.037037037037037037")),
                None,
                end(2, 0, None),
            ],
            [(0, 0), (1, 60), (1, 10)],
        )
    } else {
        (
            [
                None,
                end(10, 0, None),
                end(12, 9_000, Some("1.244444444444444444")),
            ],
            [(1, 100), (1, 50), (0, 0)],
        )
    };
    start
        .into_iter()
        .zip(ends)
        .zip(liquidated)
        .enumerate()
        .map(|(index, ((start, end), (count, eth)))| {
            let mut listed = vec![Listed::LowestHealth, Listed::LargestDebt];
            if count > 0 {
                listed.insert(0, Listed::Liquidated);
            }
            AccountRecord {
                protocol: "maker".to_owned(),
                market: "ETH-B".to_owned(),
                account: format!("#{}", index + 1),
                listed,
                liquidations: count,
                collateral_seized: if count > 0 {
                    std::collections::BTreeMap::from([("ETH".to_owned(), tokens(eth))])
                } else {
                    std::collections::BTreeMap::new()
                },
                start: Some(start),
                end,
            }
        })
        .collect()
}

/// The historical run: vaults 1 and 2 liquidated.
pub fn historical() -> Vec<u8> {
    run(
        None,
        vec![
            liquidation(110, DAY + 3_700, 1, 100, 100_000, None),
            liquidation(210, DAY + 7_300, 2, 50, 40_000, None),
        ],
        "feed",
    )
}

/// A counterfactual: vault 2 loses more, vault 3 is liquidated instead of vault 1, a cascade of
/// two rounds.
pub fn counterfactual() -> Vec<u8> {
    run(
        Some(scenario("ETH-B mat 1.5", &["maker ETH-B mat = 1.5"])),
        vec![
            liquidation(100, DAY + 3_600, 2, 60, 40_000, Some(1)),
            liquidation(100, DAY + 3_600, 3, 10, 9_000, Some(2)),
        ],
        "feed",
    )
}
