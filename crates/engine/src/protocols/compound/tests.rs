//! Golden replay of the hand-built Compound fixture (`fixtures/compound/*.jsonl`, numbers worked
//! by hand in `fixtures/compound/README.md`) through [`CompoundModel`], a simulated liquidation,
//! and the check that the index finds exactly what a full scan finds.
//! The harness is [`crate::golden`]; `CASCADE_UPDATE_GOLDEN=1` rewrites the expected file.

use cascade_events::{
    Amount, Fixed, Id, IndexUpdate, ParamChange, Payload, PositionChange, PriceUpdate, Protocol,
    Symbol, Timestamp, U256,
};
use proptest::prelude::*;

use super::CompoundModel;
use super::exp::Rounding;
use crate::golden::{candidates, check, load, replay};
use crate::oracle::PriceBook;
use crate::protocol::{LiquidatorChoice, ProtocolModel};

#[test]
fn v2_basic_golden_replay() {
    let actual = check(
        "compound",
        "v2-basic",
        &mut CompoundModel::new(Rounding::Truncate),
        &mut CompoundModel::new(Rounding::HalfUp),
    );
    let verdicts: Vec<&str> = actual["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "explained",
            "not-liquidatable",
            "amount-mismatch",
            "unknown-account"
        ]
    );
    assert_eq!(actual["liquidations"][0]["health"], "0.945378151260504201");
    // cTokens (8 decimals): 2,142 cETH = 42.84 ETH.
    assert_eq!(actual["liquidations"][0]["expected_collateral"], "2142");
    // Carol has no position: 1,000 x 1.08 / 1,500 = 0.72 ETH = 36 cETH, as recorded.
    let carol = &actual["liquidations"][3];
    assert_eq!(carol["rule"], "compound-v2-seize-formula");
    assert_eq!(carol["seize"]["result"], "consistent");
    assert_eq!(carol["seize"]["bonus"], "1.08");
    assert_eq!(carol["expected_collateral"], "36");
    assert!(carol["health"].is_null());
}

#[test]
fn simulated_liquidation_stays_within_close_factor_and_collateral() {
    let events = load("compound", "v2-basic.jsonl");
    let first = events
        .iter()
        .position(|e| matches!(e.payload, Payload::Liquidation(_)))
        .unwrap();
    let mut model = CompoundModel::new(Rounding::Truncate);
    replay(&mut model, &events[..first]);
    let time = events[first].time;
    let found = candidates(&mut model, time);
    assert_eq!(found.len(), 1, "only Alice has a shortfall");
    let choice = LiquidatorChoice::default();
    let simulated = model
        .simulate_liquidation(&found[0], &choice, time)
        .unwrap()
        .unwrap();
    // The close factor: half of 142,800 USDC; 71,400 * 1.08 / 1,800 = 42.84 ETH seized, of which
    // 2.8% of the cTokens go to reserves: the liquidator's 2,082.024 cETH are 41.64048 ETH.
    assert_eq!(simulated.debt_repaid.to_string(), "71400");
    assert_eq!(simulated.collateral_seized.to_string(), "42.84");
    assert_eq!(simulated.collateral_sold.to_string(), "41.64048");
    assert_eq!(simulated.bad_debt.to_string(), "0");
}

fn param(market: &str, name: &str, value: &str) -> Payload {
    Payload::ParamChange(Box::new(ParamChange {
        protocol: Protocol::CompoundV2,
        market: Id::name(market),
        param: Symbol::new(name).unwrap(),
        value: value.parse().unwrap(),
    }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_index_finds_exactly_what_a_full_scan_finds(
        accounts in proptest::collection::vec((0u64..1_000, 0u64..30, 1u64..3_000_000), 1..40),
        eth_price in 500u64..4_000,
        borrow_index_bps in 10_000u64..13_000,
        half_up in any::<bool>(),
    ) {
        let comptroller: Id = "0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b".parse().unwrap();
        let mut model = CompoundModel::new(if half_up { Rounding::HalfUp } else { Rounding::Truncate });
        let mut book = PriceBook::new(Vec::new());
        let time = Timestamp(1_621_382_400);
        let event = |payload: Payload| crate::golden::event_at(time, payload);
        for (market, name, value) in [
            ("ETH", "decimals", "18"), ("ETH", "collateralFactor", "0.75"),
            ("WBTC", "decimals", "8"), ("WBTC", "collateralFactor", "0.7"),
            ("USDC", "decimals", "6"), ("USDC", "collateralFactor", "0.8"),
        ] {
            model.apply(&event(param(market, name, value)), &book).unwrap();
        }
        let price = |asset: &str, value: Fixed| PriceUpdate {
            asset: Id::name(asset),
            quote: Id::name("USD"),
            price: value,
            feed: Id::name("test"),
            round: None,
        };
        for update in [price("ETH", "2000".parse().unwrap()), price("WBTC", "30000".parse().unwrap()), price("USDC", "1".parse().unwrap())] {
            book.record(&update, time);
            model.on_price(&update, time, &book).unwrap();
        }
        for (n, (eth, wbtc, usdc)) in accounts.iter().enumerate() {
            let change = |asset: &str, amount: U256| PositionChange {
                protocol: Protocol::CompoundV2,
                market: comptroller,
                account: Id::Number(n as u64),
                asset: Id::name(asset),
                amount: Amount(amount),
                shares: None,
            };
            if *eth > 0 {
                model.apply(&event(Payload::Deposit(Box::new(change("ETH", U256::from(*eth) * U256::from(10u64.pow(16)))))), &book).unwrap();
            }
            if *wbtc > 0 {
                model.apply(&event(Payload::Deposit(Box::new(change("WBTC", U256::from(*wbtc) * U256::from(10u64.pow(6)))))), &book).unwrap();
            }
            model.apply(&event(Payload::Borrow(Box::new(change("USDC", U256::from(*usdc) * U256::from(10u64.pow(4)))))), &book).unwrap();
        }
        model.apply(&event(Payload::IndexUpdate(Box::new(IndexUpdate {
            protocol: Protocol::CompoundV2,
            market: comptroller,
            asset: Id::name("USDC"),
            supply_index: None,
            borrow_index: Some(Fixed::new(U256::from(borrow_index_bps), 4)),
        }))), &book).unwrap();
        let shock = price("ETH", Fixed::new(U256::from(eth_price), 0));
        book.record(&shock, time);
        model.on_price(&shock, time, &book).unwrap();

        let mut indexed: Vec<(Id, Id)> = candidates(&mut model, time).into_iter().map(|c| (c.market, c.account)).collect();
        indexed.sort();
        prop_assert_eq!(indexed, model.scan_all_liquidatable().unwrap());
    }
}

#[test]
fn compound_fixture_through_the_replay_loop() {
    let run = crate::golden::check_run("compound", "v2-basic");
    let verdicts: Vec<&str> = run["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "explained",
            "not-liquidatable",
            "amount-mismatch",
            "unknown-account"
        ]
    );
    assert_eq!(run["totals"]["seize_checks"]["consistent"], 1);
    assert_eq!(run["totals"]["seize_consistent_percent"], "100.00");
}

/// `pair = best-bonus` against the default where they differ: 0.5 ETH (2,000 USD) whose market
/// sends half of every seizure to reserves (`protocolSeizeShare` 0.5) and 900 DAI (none) against
/// 1,500 USDC; weighted collateral 0.75 * 1,900 = 1,425 < 1,500, close factor 0.5: 750 USDC at
/// most, for 750 * 1.08 = 810 USD of collateral.
/// - ETH, the largest collateral: 0.405 ETH seized, 0.2025 to the liquidator (405 USD for 750);
/// - DAI: 810 DAI seized, all to the liquidator (60 USD beyond what it repaid): the better bonus.
#[test]
fn best_bonus_picks_the_pair_that_pays_the_liquidator_most() {
    use crate::protocol::PairChoice;
    let comptroller: Id = "0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b"
        .parse()
        .unwrap();
    let mut model = CompoundModel::new(Rounding::Truncate);
    let mut book = PriceBook::new(Vec::new());
    let time = Timestamp(1_621_382_400);
    let event = |payload: Payload| crate::golden::event_at(time, payload);
    for (market, name, value) in [
        ("ETH", "decimals", "18"),
        ("ETH", "collateralFactor", "0.75"),
        ("ETH", "protocolSeizeShare", "0.5"),
        ("DAI", "decimals", "18"),
        ("DAI", "collateralFactor", "0.75"),
        ("USDC", "decimals", "6"),
        ("USDC", "collateralFactor", "0.8"),
    ] {
        model
            .apply(&event(param(market, name, value)), &book)
            .unwrap();
    }
    for (asset, value) in [("ETH", "2000"), ("DAI", "1"), ("USDC", "1")] {
        let update = PriceUpdate {
            asset: Id::name(asset),
            quote: Id::name("USD"),
            price: value.parse().unwrap(),
            feed: Id::name("test"),
            round: None,
        };
        book.record(&update, time);
        model.on_price(&update, time, &book).unwrap();
    }
    let change = |asset: &str, tokens: &str, decimals: u8| PositionChange {
        protocol: Protocol::CompoundV2,
        market: comptroller,
        account: Id::Number(1),
        asset: Id::name(asset),
        amount: Amount(tokens.parse::<Fixed>().unwrap().rescale(decimals).unwrap()),
        shares: None,
    };
    for payload in [
        Payload::Deposit(Box::new(change("ETH", "0.5", 18))),
        Payload::Deposit(Box::new(change("DAI", "900", 18))),
        Payload::Borrow(Box::new(change("USDC", "1500", 6))),
    ] {
        model.apply(&event(payload), &book).unwrap();
    }
    let found = candidates(&mut model, time);
    assert_eq!(found.len(), 1);
    let liquidate = |pair: PairChoice| {
        let choice = LiquidatorChoice {
            pair,
            ..LiquidatorChoice::default()
        };
        model
            .clone()
            .simulate_liquidation(&found[0], &choice, time)
            .unwrap()
            .unwrap()
    };
    let largest = liquidate(PairChoice::LargestDebt);
    assert_eq!(largest.collateral_asset, Id::name("ETH"));
    assert_eq!(largest.debt_repaid.to_string(), "750");
    assert_eq!(largest.collateral_seized.to_string(), "0.405");
    assert_eq!(largest.collateral_sold.to_string(), "0.2025");
    let best = liquidate(PairChoice::BestBonus);
    assert_eq!(best.collateral_asset, Id::name("DAI"));
    assert_eq!(best.debt_asset, Id::name("USDC"));
    assert_eq!(best.debt_repaid.to_string(), "750");
    assert_eq!(best.collateral_sold.to_string(), "810");
}

const MONITORED: [crate::golden::TestAsset; 3] =
    [("ETH", 18, 2_000), ("WBTC", 8, 30_000), ("USDC", 6, 1)];

fn monitored_model() -> CompoundModel {
    let mut model = CompoundModel::new(Rounding::Truncate);
    let book = PriceBook::new(Vec::new());
    let time = Timestamp(1_700_000_000);
    for ((asset, decimals, _), factor) in MONITORED.iter().zip(["0.75", "0.7", "0.8"]) {
        for (name, value) in [
            ("decimals", decimals.to_string()),
            ("collateralFactor", factor.to_owned()),
        ] {
            let event = crate::golden::event_at(time, param(asset, name, &value));
            model.apply(&event, &book).unwrap();
        }
    }
    model
}

fn monitored_payload(op: &crate::golden::Op) -> Option<Payload> {
    // Leaving a market is refused while borrowing in it (`exitMarket`); the model does not
    // check that, and its pair index counts such a borrow where the full scan does not.
    if let crate::golden::Op::Toggle(_, _, false) = op {
        return None;
    }
    crate::golden::op_payload(
        Protocol::CompoundV2,
        Id::name("compound-v2"),
        &MONITORED,
        "collateralFactor",
        false,
        op,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The liquidatable set reported incrementally by `unsafe_changes`, and the risk sums kept
    /// with it when they are asked for, equal a full scan after every check, whatever the actions, price moves, index
    /// and collateral-factor changes, liquidations and checkpoint restores in between.
    #[test]
    fn reported_changes_keep_the_full_scan_set(
        with_risk in proptest::bool::ANY,
        ops in proptest::collection::vec(crate::golden::arb_op(6, 3), 1..80),
    ) {
        let harness = crate::golden::MonitorHarness {
            fresh: monitored_model,
            assets: MONITORED.len(),
            event: monitored_payload,
            price: |asset, permille| crate::golden::test_price(&MONITORED, "USD", asset, permille),
            scan: |model: &CompoundModel| model.scan_all_liquidatable().unwrap(),
            scanned_risk: CompoundModel::scanned_risk,
        };
        crate::golden::drive_monitor(&harness, &ops, with_risk);
    }
}

fn judged_after_setup(extra: &[&str]) -> Vec<serde_json::Value> {
    crate::golden::judged_after_setup(
        &mut CompoundModel::new(Rounding::Truncate),
        "compound",
        "v2-basic.jsonl",
        "2021-05-19T00:30:00Z",
        extra,
    )
}

/// A `LiquidateBorrow` of the v2-basic Comptroller repaying `repaid` USDC base units.
fn liquidate(account: &str, collateral: &str, seize_tokens: &str, repaid: &str) -> String {
    format!(
        r#"{{"kind":"liquidation","protocol":"compound-v2","market":"0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b","account":"{account}","liquidator":"0x000000000000000000000000000000000000beef","collateral_asset":"{collateral}","collateral_seized":"{seize_tokens}","debt_asset":"USDC","debt_repaid":"{repaid}","detail":{{"type":"compound","seize_tokens":"{seize_tokens}"}}}}"#
    )
}

const NOBODY: &str = "0x0000000000000000000000000000000000000d0e";
const ALICE: &str = "0x00000000000000000000000000000000000a11ce";

#[test]
fn an_unknown_account_keeps_the_seize_check_and_no_price_names_the_input() {
    let judged = judged_after_setup(&[
        // 1,000 USDC x 1.08 / 1,800 = 0.6 ETH = 30 cETH at 0.02; 31 recorded.
        &liquidate(NOBODY, "ETH", "3100000000", "1000000000"),
        // UNI: a price, never its decimals (so no exchange rate either).
        r#"{"kind":"price","asset":"UNI","quote":"USD","price":"20","feed":"fixture-oracle","round":null}"#,
        &liquidate(NOBODY, "UNI", "100", "1000000000"),
        &liquidate(ALICE, "UNI", "100", "1000000"),
        // LINK: nothing at all.
        &liquidate(NOBODY, "LINK", "100", "1000000000"),
    ]);
    let mismatch = &judged[0];
    assert_eq!(mismatch["verdict"], "unknown-account");
    assert_eq!(mismatch["seize"]["result"], "mismatch");
    assert_eq!(mismatch["seize"]["collateral_price"], "1800");
    assert_eq!(mismatch["seize"]["exchange_rate"], "0.02");
    assert_eq!(mismatch["expected_collateral"], "30");
    assert!(
        mismatch["note"]
            .as_str()
            .unwrap()
            .ends_with("formula seizes 3000000000 cTokens, recorded 3100000000"),
        "{mismatch}"
    );
    assert_eq!(judged[1]["verdict"], "unknown-account");
    assert_eq!(judged[1]["seize"]["result"], "no-price");
    crate::golden::assert_missing(&judged[1], "decimals", "UNI");
    assert_eq!(judged[2]["verdict"], "no-price");
    assert_eq!(judged[2]["note"], "no decimals of UNI");
    crate::golden::assert_missing(&judged[2], "decimals", "UNI");
    assert_eq!(judged[3]["verdict"], "unknown-account");
    crate::golden::assert_missing(&judged[3], "price", "LINK");
}

#[test]
fn a_source_that_knows_the_underlying_seized_is_judged_in_the_underlying() {
    // 1,000 USDC x 1.08 / 1,800 = 0.6 ETH = 30 cETH at 0.02: `seizeTokens` as the event logs it,
    // and the underlying a synthetic market or a mapping also knows.
    let both = r#"{"kind":"liquidation","protocol":"compound-v2","market":"0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b","account":"0x0000000000000000000000000000000000000d0e","liquidator":"0x000000000000000000000000000000000000beef","collateral_asset":"ETH","collateral_seized":"600000000000000000","debt_asset":"USDC","debt_repaid":"1000000000","detail":{"type":"compound","seize_tokens":"3000000000"}}"#;
    let judged = judged_after_setup(&[both, &liquidate(NOBODY, "ETH", "3000000000", "1000000000")]);
    let underlying = &judged[0];
    assert_eq!(underlying["seize"]["result"], "consistent", "{underlying}");
    assert_eq!(underlying["expected_collateral"], "0.6");
    let ctokens = &judged[1];
    assert_eq!(ctokens["seize"]["result"], "consistent", "{ctokens}");
    assert_eq!(ctokens["expected_collateral"], "30");
}

/// A `LiquidateBorrow` of the v2-basic Comptroller with a side unknown: the seized cTokens
/// (`None`: no `seizeTokens` either) or the repayment.
fn partial(account: &str, seize_tokens: Option<&str>, repaid: Option<&str>) -> String {
    let amount =
        |side: Option<&str>| side.map_or_else(|| "null".to_owned(), |a| format!("\"{a}\""));
    let detail = seize_tokens.map_or_else(
        || r#"{"type":"none"}"#.to_owned(),
        |tokens| format!(r#"{{"type":"compound","seize_tokens":"{tokens}"}}"#),
    );
    format!(
        r#"{{"kind":"partial-liquidation","protocol":"compound-v2","market":"0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b","account":"{account}","liquidator":null,"collateral_asset":"ETH","collateral_seized":{},"debt_asset":"USDC","debt_repaid":{},"detail":{detail}}}"#,
        amount(seize_tokens),
        amount(repaid)
    )
}

/// The judgements and final state of the v2-basic setup followed by `extra` at 00:30.
fn judged_with_state(extra: &str) -> (Vec<serde_json::Value>, Vec<u8>) {
    let mut model = CompoundModel::new(Rounding::Truncate);
    let judged = crate::golden::judged_after_setup(
        &mut model,
        "compound",
        "v2-basic.jsonl",
        "2021-05-19T00:30:00Z",
        &[extra],
    );
    (judged, crate::golden::state_bytes(&model))
}

#[test]
fn an_unknown_side_of_a_liquidate_borrow_is_derived_with_the_exchange_rate_and_incentive() {
    // Alice (fixtures/compound/README.md, liquidation 1): ETH at 1,800, 142,800 USDC owed,
    // health 0.9454. `liquidateCalculateSeizeTokens`: ratio 1.08e30 / 3.6e29 = 3e18, so a
    // repayment r seizes 3r cETH units. 2.142e11 cETH recorded without the repayment: the
    // smallest r with 3r >= 2.142e11 is 7.14e10, 71,400 USDC, within the close factor (71,400).
    let (whole, whole_state) =
        judged_with_state(&liquidate(ALICE, "ETH", "214200000000", "71400000000"));
    assert_eq!(whole[0]["verdict"], "explained");
    let (judged, state) = judged_with_state(&partial(ALICE, Some("214200000000"), None));
    assert_eq!(judged[0]["verdict"], "explained", "{}", judged[0]);
    assert_eq!(judged[0]["expected_debt"], "71400");
    assert_eq!(
        judged[0]["note"],
        "debt repaid not recorded: 71400 derived from the collateral seized 2142 (the repayment whose seizure by the formula is nearest it)"
    );
    assert_eq!(state, whole_state, "applied as the whole record");
    // The repayment known, the seizure not: 71,400 USDC seize 2.142e11 cETH, which at the
    // exchange rate 0.02 are 42.84 ETH (reported in the underlying: no `seizeTokens` to say
    // cTokens); applied, the same 2.142e11 cETH leave Alice.
    let (judged, state) = judged_with_state(&partial(ALICE, None, Some("71400000000")));
    assert_eq!(judged[0]["verdict"], "explained", "{}", judged[0]);
    assert_eq!(judged[0]["expected_collateral"], "42.84");
    assert_eq!(
        judged[0]["note"],
        "collateral seized not recorded: 42.84 derived from the debt repaid 71400 by the seize formula"
    );
    assert_eq!(state, whole_state);
    // Bob (health 1.3235) is not liquidatable: nothing derived, nothing applied.
    let (judged, _) = judged_with_state(&partial(
        "0x0000000000000000000000000000000000000b0b",
        Some("3000000000"),
        None,
    ));
    assert_eq!(judged[0]["verdict"], "not-liquidatable", "{}", judged[0]);
    assert_eq!(judged[0]["applied"], "nothing");
}
