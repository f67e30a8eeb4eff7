//! Golden replays of the hand-built Aave fixtures (`fixtures/aave/*.jsonl`, numbers worked by
//! hand in `fixtures/aave/README.md`) through [`AaveModel`], simulated liquidations, and the check
//! that the index finds exactly what a full scan finds.

use cascade_events::{Id, Payload, Timestamp, U256};
use proptest::prelude::*;

use super::AaveModel;
use super::logic::AaveVersion;
use crate::golden::{candidates, check, load, replay};
use crate::oracle::PriceBook;
use crate::protocol::{LiquidatorChoice, ProtocolModel};

#[test]
fn v2_basic_golden_replay() {
    check(
        "aave",
        "v2-basic",
        &mut AaveModel::v2(),
        &mut AaveModel::v2(),
    );
}

#[test]
fn v2_basic_verdicts_are_the_worked_ones() {
    // The numbers are worked by hand in fixtures/aave/README.md; this pins the verdicts so a
    // golden update cannot silently flip one.
    let mut model = AaveModel::v2();
    let judged = replay(&mut model, &load("aave", "v2-basic.jsonl"));
    let verdicts: Vec<&str> = judged
        .iter()
        .map(|j| j["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "explained",
            "not-liquidatable",
            "amount-mismatch",
            "unknown-account",
            "explained"
        ]
    );
    assert_eq!(judged[0]["health"], "0.89869281045751634");
    assert_eq!(judged[0]["expected_collateral"], "4.8195");
    assert_eq!(judged[1]["health"], "1.145833333333333333");
    assert_eq!(judged[2]["expected_collateral"], "0.48195");
    // Dave has no position: unknown, with the seize formula as the evidence.
    assert_eq!(judged[3]["rule"], "aave-v2-seize-formula");
    assert_eq!(judged[3]["seize"]["result"], "consistent");
    assert_eq!(judged[3]["seize"]["bonus"], "1.05");
    assert_eq!(judged[3]["expected_collateral"], "0.63");
    assert!(judged[3]["health"].is_null());
    assert_eq!(judged[4]["expected_debt"], "793.650793");
}

#[test]
fn simulated_liquidation_respects_the_close_factor() {
    let mut model = AaveModel::v2();
    let events = load("aave", "v2-basic.jsonl");
    // Stop before the recorded liquidations: Alice, Carol and Frank are liquidatable.
    let first_liquidation = events
        .iter()
        .position(|e| matches!(e.payload, Payload::Liquidation(_)))
        .unwrap();
    replay(&mut model, &events[..first_liquidation]);
    let time = events[first_liquidation].time;
    let found = candidates(&mut model, time);
    let accounts: Vec<String> = found.iter().map(|c| c.account.to_string()).collect();
    assert_eq!(
        accounts,
        [
            "0x00000000000000000000000000000000000f4a4c",
            "0x00000000000000000000000000000000000a11ce",
            "0x00000000000000000000000000000000000ca201",
        ],
        "riskiest first: Frank (0.8425), then Alice and Carol (0.8987, by account); Bob is safe"
    );
    let alice = &found[1];
    let simulated = model
        .simulate_liquidation(alice, &LiquidatorChoice::default(), time)
        .unwrap()
        .unwrap();
    // 50% of 15,300 USDC; 7,650 * 0.0006 * 1.05 = 4.8195 WETH, as the recorded one.
    assert_eq!(simulated.debt_repaid.to_string(), "7650");
    assert_eq!(simulated.collateral_seized.to_string(), "4.8195");
    assert_eq!(simulated.collateral_sold.to_string(), "4.8195");
    assert_eq!(simulated.bad_debt.to_string(), "0");
    // Still unsafe (5.1805 WETH * 0.825 against 4.59 ETH of debt): a second round may take 50%
    // of what is left, never more.
    let again = candidates(&mut model, time);
    assert!(again.iter().any(|c| c.account == alice.account));
    let second = model
        .simulate_liquidation(alice, &LiquidatorChoice::default(), time)
        .unwrap()
        .unwrap();
    assert_eq!(second.debt_repaid.to_string(), "3825");
}

/// One random single-pair or two-collateral account in a v2 pool: (weth, wbtc, usdc debt).
fn arb_account() -> impl Strategy<Value = (u64, u64, u64)> {
    (0u64..1_000, 0u64..30, 1u64..3_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_index_finds_exactly_what_a_full_scan_finds(
        accounts in proptest::collection::vec(arb_account(), 1..40),
        usdc_price_micro_eth in 200u64..2_000,
        usdc_index_bps in 10_000u64..13_000,
    ) {
        let mut model = AaveModel::v2();
        let pool: Id = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9".parse().unwrap();
        let mut book = PriceBook::new(Vec::new());
        let time = Timestamp(1_621_382_400);
        let event = |payload: Payload| crate::golden::event_at(time, payload);
        let fixed = |text: &str| -> cascade_events::Fixed { text.parse().unwrap() };
        for (asset, decimals, lt) in [("WETH", "18", "0.825"), ("WBTC", "8", "0.75"), ("USDC", "6", "0.85")] {
            for (param, value) in [("decimals", decimals), ("liquidationThreshold", lt), ("liquidationBonus", "1.05")] {
                model.apply(&event(Payload::ParamChange(Box::new(cascade_events::ParamChange {
                    protocol: cascade_events::Protocol::AaveV2,
                    market: Id::name(asset),
                    param: cascade_events::Symbol::new(param).unwrap(),
                    value: fixed(value),
                }))), &book).unwrap();
            }
        }
        let price = |asset: &str, value: cascade_events::Fixed| cascade_events::PriceUpdate {
            asset: Id::name(asset),
            quote: Id::name("ETH"),
            price: value,
            feed: Id::name("test"),
            round: None,
        };
        for update in [price("USDC", fixed("0.0005")), price("WBTC", fixed("15"))] {
            book.record(&update, time);
            model.on_price(&update, time, &book).unwrap();
        }
        for (n, (weth, wbtc, usdc)) in accounts.iter().enumerate() {
            let account = Id::Number(n as u64);
            let change = |asset: &str, amount: U256| cascade_events::PositionChange {
                protocol: cascade_events::Protocol::AaveV2,
                market: pool,
                account,
                asset: Id::name(asset),
                amount: cascade_events::Amount(amount),
                shares: None,
            };
            if *weth > 0 {
                model.apply(&event(Payload::Deposit(Box::new(change("WETH", U256::from(*weth) * U256::from(10u64.pow(16)))))), &book).unwrap();
            }
            if *wbtc > 0 {
                model.apply(&event(Payload::Deposit(Box::new(change("WBTC", U256::from(*wbtc) * U256::from(10u64.pow(7)))))), &book).unwrap();
            }
            model.apply(&event(Payload::Borrow(Box::new(change("USDC", U256::from(*usdc) * U256::from(10u64.pow(4)))))), &book).unwrap();
        }
        model.apply(&event(Payload::IndexUpdate(Box::new(cascade_events::IndexUpdate {
            protocol: cascade_events::Protocol::AaveV2,
            market: pool,
            asset: Id::name("USDC"),
            supply_index: None,
            borrow_index: Some(cascade_events::Fixed::new(U256::from(usdc_index_bps), 4)),
        }))), &book).unwrap();
        let shock = price("USDC", cascade_events::Fixed::new(U256::from(usdc_price_micro_eth), 6));
        book.record(&shock, time);
        model.on_price(&shock, time, &book).unwrap();

        let mut indexed: Vec<(Id, Id)> = candidates(&mut model, time).into_iter().map(|c| (c.market, c.account)).collect();
        indexed.sort();
        let scanned = model.scan_all_liquidatable().unwrap();
        prop_assert_eq!(indexed, scanned);
    }
}

#[test]
fn v3_fee_and_dust_golden_replay() {
    // Worked in fixtures/aave/README.md: the protocol fee comes out of the bonus, the close
    // factor is 100% at or below health 0.95, and v3.3 refuses a partial liquidation that
    // leaves dust.
    let actual = check(
        "aave",
        "v3-fee-and-dust",
        &mut AaveModel::v3(AaveVersion::V3),
        &mut AaveModel::v3(AaveVersion::V3),
    );
    let liquidations = actual["liquidations"].as_array().unwrap();
    let verdicts: Vec<&str> = liquidations
        .iter()
        .map(|j| j["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["explained", "explained", "amount-mismatch", "explained"]
    );
    assert_eq!(liquidations[0]["health"], "0.985625");
    assert_eq!(liquidations[0]["expected_collateral"], "4.4");
    assert_eq!(liquidations[1]["health"], "0.93375");
    assert_eq!(
        liquidations[1]["expected_collateral"],
        "9.288888888888888888"
    );
    assert_eq!(liquidations[1]["rule"], "aave-v3-liquidation-call");
    assert_eq!(liquidations[2]["rule"], "aave-v3.3-liquidation-call");
    assert!(liquidations[2]["note"].as_str().unwrap().contains("dust"));
    assert_eq!(
        liquidations[3]["expected_collateral"],
        "0.928888888888888888"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Simulated liquidations, repeated until nobody is liquidatable, only move what the rules
    /// say: each repays at most the close factor of the debt it sees, takes at most the
    /// collateral there is, and the account's balances fall by exactly those amounts (to the
    /// wei the index rounding allows), so nothing is created or destroyed on the way.
    #[test]
    fn simulated_liquidations_conserve_balances(
        accounts in proptest::collection::vec((1u64..1_000, 1u64..3_000_000), 1..12),
        usdc_price_micro_eth in 300u64..3_000,
        liquidity_index_bps in 10_000u64..12_000,
        borrow_index_bps in 10_000u64..13_000,
        v3 in any::<bool>(),
    ) {
        let mut model = if v3 { AaveModel::v3(AaveVersion::V3) } else { AaveModel::v2() };
        let protocol = if v3 { cascade_events::Protocol::AaveV3 } else { cascade_events::Protocol::AaveV2 };
        let quote = if v3 { "USD" } else { "ETH" };
        let pool: Id = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9".parse().unwrap();
        let mut book = PriceBook::new(Vec::new());
        let time = Timestamp(1_621_382_400);
        let event = |payload: Payload| crate::golden::event_at(time, payload);
        let fixed = |text: &str| -> cascade_events::Fixed { text.parse().unwrap() };
        for (asset, decimals) in [("WETH", "18"), ("USDC", "6")] {
            for (param, value) in [("decimals", decimals), ("liquidationThreshold", "0.825"), ("ltv", "0.8"), ("liquidationBonus", "1.05"), ("liquidationProtocolFee", "0.1")] {
                model.apply(&event(Payload::ParamChange(Box::new(cascade_events::ParamChange {
                    protocol, market: Id::name(asset),
                    param: cascade_events::Symbol::new(param).unwrap(), value: fixed(value),
                }))), &book).unwrap();
            }
        }
        let price = |asset: &str, value: cascade_events::Fixed| cascade_events::PriceUpdate {
            asset: Id::name(asset), quote: Id::name(quote), price: value, feed: Id::name("t"), round: None,
        };
        // v3 prices in USD: WETH 2,000 and USDC at 2,000 x the ETH price.
        let initial = if v3 { vec![price("WETH", fixed("2000")), price("USDC", fixed("1"))] } else { vec![price("USDC", fixed("0.0005"))] };
        for update in &initial {
            book.record(update, time);
            model.on_price(update, time, &book).unwrap();
        }
        for (n, (weth, usdc)) in accounts.iter().enumerate() {
            let change = |asset: &str, amount: U256| cascade_events::PositionChange {
                protocol, market: pool, account: Id::Number(n as u64), asset: Id::name(asset),
                amount: cascade_events::Amount(amount), shares: None,
            };
            model.apply(&event(Payload::Deposit(Box::new(change("WETH", U256::from(*weth) * U256::from(10u64.pow(16)))))), &book).unwrap();
            model.apply(&event(Payload::Borrow(Box::new(change("USDC", U256::from(*usdc) * U256::from(10u64.pow(4)))))), &book).unwrap();
        }
        for (asset, supply, borrow) in [("WETH", liquidity_index_bps, 10_000), ("USDC", 10_000, borrow_index_bps)] {
            model.apply(&event(Payload::IndexUpdate(Box::new(cascade_events::IndexUpdate {
                protocol, market: pool, asset: Id::name(asset),
                supply_index: Some(cascade_events::Fixed::new(U256::from(supply), 4)),
                borrow_index: Some(cascade_events::Fixed::new(U256::from(borrow), 4)),
            }))), &book).unwrap();
        }
        let shock = if v3 {
            // ETH falls to 1 / (usdc price in ETH) USD.
            price("WETH", cascade_events::Fixed::new(U256::from(1_000_000u64 * 100_000_000 / usdc_price_micro_eth), 8))
        } else {
            price("USDC", cascade_events::Fixed::new(U256::from(usdc_price_micro_eth), 6))
        };
        book.record(&shock, time);
        model.on_price(&shock, time, &book).unwrap();

        let weth = Id::name("WETH");
        let usdc = Id::name("USDC");
        let choice = LiquidatorChoice::default();
        for _round in 0..8 {
            let found = candidates(&mut model, time);
            if found.is_empty() {
                break;
            }
            for candidate in found {
                let (collateral_before, _) = model.balances(&pool, &candidate.account, &weth);
                let (_, debt_before) = model.balances(&pool, &candidate.account, &usdc);
                let Some(done) = model.simulate_liquidation(&candidate, &choice, time).unwrap() else {
                    continue;
                };
                let (collateral_after, _) = model.balances(&pool, &candidate.account, &weth);
                let (_, debt_after) = model.balances(&pool, &candidate.account, &usdc);
                let repaid = done.debt_repaid.value;
                let seized = done.collateral_seized.value;
                prop_assert!(repaid <= debt_before, "repaid {repaid} of {debt_before}");
                prop_assert!(seized <= collateral_before);
                prop_assert!(done.collateral_sold.value <= seized);
                if !v3 {
                    prop_assert!(repaid <= super::math::percent_mul(debt_before, U256::from(5000u16)).unwrap());
                }
                // rayDiv then rayMul moves a balance by the amount +/- a few wei of rounding.
                let near = |a: U256, b: U256| if a > b { a - b <= U256::from(2u8) } else { b - a <= U256::from(2u8) };
                prop_assert!(near(collateral_before - collateral_after, seized), "collateral {collateral_before} -> {collateral_after}, seized {seized}");
                prop_assert!(near(debt_before - debt_after, repaid), "debt {debt_before} -> {debt_after}, repaid {repaid}");
            }
        }
    }
}

/// The verdicts of a run file, in order.
fn run_verdicts(run: &serde_json::Value) -> Vec<String> {
    run["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["verdict"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn aave_fixtures_through_the_replay_loop() {
    // The same fixtures through a log and the engine, with every model registered: the run
    // files `cascade check` compares against, and the same verdicts as the model-level replays.
    let v2 = crate::golden::check_run("aave", "v2-basic");
    assert_eq!(
        run_verdicts(&v2),
        [
            "explained",
            "not-liquidatable",
            "amount-mismatch",
            "unknown-account",
            "explained"
        ]
    );
    assert_eq!(v2["totals"]["seize_checks"]["consistent"], 1);
    assert_eq!(v2["totals"]["seize_checks"]["mismatch"], 0);
    assert_eq!(v2["totals"]["explained_percent"], "40.00");
    // Alice, Bob, Carol, Dave and Frank: five accounts, one liquidation each.
    assert_eq!(v2["totals"]["accounts_liquidated"], 5);
    let v3 = crate::golden::check_run("aave", "v3-fee-and-dust");
    assert_eq!(
        run_verdicts(&v3),
        ["explained", "explained", "amount-mismatch", "explained"]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A v3 pool (USD base, 8 decimals) of WETH/USDC pairs around the liquidation threshold,
    /// one of them with balances too large for the index's 128-bit members: after a random
    /// WETH move and a random borrow index the index finds what a full scan finds, and the risk
    /// snapshot counts the same accounts.
    #[test]
    fn v3_pairs_and_oversized_members_match_a_full_scan(
        ratios in proptest::collection::vec((1u64..200, 900u64..1_500), 1..40),
        eth_usd in 1_000u64..3_000,
        borrow_index_bps in 10_000u64..12_000,
    ) {
        let mut model = AaveModel::v3(AaveVersion::V3);
        let pool = Id::name("v3-pool");
        let mut book = PriceBook::new(Vec::new());
        let time = Timestamp(1_700_000_000);
        let event = |payload: Payload| crate::golden::event_at(time, payload);
        let param = |asset: &str, name: &str, value: &str| {
            Payload::ParamChange(Box::new(cascade_events::ParamChange {
                protocol: cascade_events::Protocol::AaveV3,
                market: Id::name(asset),
                param: cascade_events::Symbol::new(name).unwrap(),
                value: value.parse().unwrap(),
            }))
        };
        for (asset, decimals) in [("WETH", "18"), ("USDC", "6")] {
            for (name, value) in [("decimals", decimals), ("ltv", "0.8"), ("liquidationThreshold", "0.825"), ("liquidationBonus", "1.05")] {
                model.apply(&event(param(asset, name, value)), &book).unwrap();
            }
        }
        let price = |asset: &str, usd: u64| cascade_events::PriceUpdate {
            asset: Id::name(asset),
            quote: Id::name("USD"),
            price: cascade_events::Fixed::new(U256::from(usd), 0),
            feed: Id::name("test"),
            round: None,
        };
        for update in [price("WETH", 2_000), price("USDC", 1)] {
            book.record(&update, time);
            model.on_price(&update, time, &book).unwrap();
        }
        let change = |n: u64, asset: &str, amount: U256| cascade_events::PositionChange {
            protocol: cascade_events::Protocol::AaveV3,
            market: pool,
            account: Id::Number(n),
            asset: Id::name(asset),
            amount: cascade_events::Amount(amount),
            shares: None,
        };
        // Debt = tokens * 2000 * 0.825 * 1000 / ratio (USDC), so the health factor is
        // ratio / 1000 at 2,000 USD.
        let weth = U256::from(10u64).pow(U256::from(18u8));
        let usdc = U256::from(1_000_000u64);
        let mut accounts: Vec<(u64, U256, U256)> = ratios
            .iter()
            .map(|(tokens, ratio)| {
                let debt = U256::from(*tokens) * U256::from(1_650_000u64) * usdc / U256::from(*ratio);
                (*tokens, U256::from(*tokens) * weth, debt)
            })
            .collect();
        // Scaled balances above 2^128: indexed as complex, judged exactly on every query.
        accounts.push((0, U256::from(1u8) << 140usize, (U256::from(1_600u64) << 140usize) / weth * usdc));
        for (n, (_, collateral, debt)) in accounts.iter().enumerate() {
            model.apply(&event(Payload::Deposit(Box::new(change(n as u64, "WETH", *collateral)))), &book).unwrap();
            model.apply(&event(Payload::Borrow(Box::new(change(n as u64, "USDC", *debt)))), &book).unwrap();
        }
        model.apply(&event(Payload::IndexUpdate(Box::new(cascade_events::IndexUpdate {
            protocol: cascade_events::Protocol::AaveV3,
            market: pool,
            asset: Id::name("USDC"),
            supply_index: None,
            borrow_index: Some(cascade_events::Fixed::new(U256::from(borrow_index_bps), 4)),
        }))), &book).unwrap();
        let shock = price("WETH", eth_usd);
        book.record(&shock, time);
        model.on_price(&shock, time, &book).unwrap();

        let found = candidates(&mut model, time);
        let mut indexed: Vec<(Id, Id)> = found.iter().map(|c| (c.market, c.account)).collect();
        indexed.sort();
        prop_assert_eq!(&indexed, &model.scan_all_liquidatable().unwrap());
        prop_assert!(found.windows(2).all(|w| (w[0].health, w[0].account) < (w[1].health, w[1].account)));
        let mut risks = Vec::new();
        model.risk(time, &mut risks).unwrap();
        prop_assert_eq!(risks.len(), 1);
        prop_assert_eq!(risks[0].accounts_unsafe, found.len() as u64);
        let debt: U256 = found.iter().map(|c| c.debt_value).fold(U256::ZERO, |a, b| a + b);
        prop_assert_eq!(risks[0].debt_at_risk.value, debt);
    }
}

/// `pair = best-bonus` against the default on an account where they differ: 0.4 WETH (1 ETH,
/// bonus 5%) and 40 LINK (0.005 ETH, bonus 10%) against 1,000 DAI (0.0005 ETH); health
/// (0.4 * 0.8 + 0.2 * 0.7) / 0.5 = 0.92, close factor 50%: at most 500 DAI (0.25 ETH).
/// - WETH, the largest collateral: 0.25 * 1.05 = 0.2625 WETH for 500 DAI, 0.0125 ETH to the
///   liquidator beyond what it repaid;
/// - LINK: 500 DAI would need 55 LINK, so all 40 go for 0.2 / 1.1 ETH = 363.63 DAI, 0.0182 ETH
///   beyond it: the better bonus, though it repays less.
#[test]
fn best_bonus_picks_the_pair_that_pays_the_liquidator_most() {
    use crate::protocol::PairChoice;
    let mut model = AaveModel::v2();
    let pool: Id = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9"
        .parse()
        .unwrap();
    let mut book = PriceBook::new(Vec::new());
    let time = Timestamp(1_621_382_400);
    let event = |payload: Payload| crate::golden::event_at(time, payload);
    let fixed = |text: &str| -> cascade_events::Fixed { text.parse().unwrap() };
    for (asset, lt, bonus) in [
        ("WETH", "0.8", "1.05"),
        ("LINK", "0.7", "1.1"),
        ("DAI", "0.8", "1.05"),
    ] {
        for (param, value) in [
            ("decimals", "18"),
            ("liquidationThreshold", lt),
            ("liquidationBonus", bonus),
        ] {
            let change = cascade_events::ParamChange {
                protocol: cascade_events::Protocol::AaveV2,
                market: Id::name(asset),
                param: cascade_events::Symbol::new(param).unwrap(),
                value: fixed(value),
            };
            model
                .apply(&event(Payload::ParamChange(Box::new(change))), &book)
                .unwrap();
        }
    }
    for (asset, price) in [("LINK", "0.005"), ("DAI", "0.0005")] {
        let update = cascade_events::PriceUpdate {
            asset: Id::name(asset),
            quote: Id::name("ETH"),
            price: fixed(price),
            feed: Id::name("test"),
            round: None,
        };
        book.record(&update, time);
        model.on_price(&update, time, &book).unwrap();
    }
    let change = |asset: &str, tokens: &str| cascade_events::PositionChange {
        protocol: cascade_events::Protocol::AaveV2,
        market: pool,
        account: Id::Number(1),
        asset: Id::name(asset),
        amount: cascade_events::Amount(fixed(tokens).rescale(18).unwrap()),
        shares: None,
    };
    for payload in [
        Payload::Deposit(Box::new(change("WETH", "0.4"))),
        Payload::Deposit(Box::new(change("LINK", "40"))),
        Payload::Borrow(Box::new(change("DAI", "1000"))),
    ] {
        model.apply(&event(payload), &book).unwrap();
    }
    let found = candidates(&mut model, time);
    assert_eq!(found.len(), 1);
    let liquidate = |pair: PairChoice| {
        let mut model = model.clone();
        let choice = LiquidatorChoice {
            pair,
            ..LiquidatorChoice::default()
        };
        model
            .simulate_liquidation(&found[0], &choice, time)
            .unwrap()
            .unwrap()
    };
    let largest = liquidate(PairChoice::LargestDebt);
    assert_eq!(largest.collateral_asset, Id::name("WETH"));
    assert_eq!(largest.collateral_sold.to_string(), "0.2625");
    assert_eq!(largest.debt_repaid.to_string(), "500");
    let best = liquidate(PairChoice::BestBonus);
    assert_eq!(best.collateral_asset, Id::name("LINK"));
    assert_eq!(best.debt_asset, Id::name("DAI"));
    assert_eq!(best.collateral_sold.to_string(), "40");
    assert!(
        best.debt_repaid
            .to_string()
            .starts_with("363.636363636363636"),
        "{}",
        best.debt_repaid
    );
    // A fixed collateral narrows the search: with WETH imposed, best-bonus takes WETH.
    let mut pinned = model.clone();
    let choice = LiquidatorChoice {
        collateral_asset: Some(Id::name("WETH")),
        pair: PairChoice::BestBonus,
        ..LiquidatorChoice::default()
    };
    let done = pinned
        .simulate_liquidation(&found[0], &choice, time)
        .unwrap()
        .unwrap();
    assert_eq!(done.collateral_asset, Id::name("WETH"));
}

const MONITORED: [crate::golden::TestAsset; 3] =
    [("WETH", 18, 2_000), ("WBTC", 8, 30_000), ("USDC", 6, 1)];

fn monitored_v3() -> AaveModel {
    let mut model = AaveModel::v3(AaveVersion::V3);
    let book = PriceBook::new(Vec::new());
    let time = Timestamp(1_700_000_000);
    for ((asset, decimals, _), lt) in MONITORED.iter().zip(["0.825", "0.75", "0.85"]) {
        for (param, value) in [
            ("decimals", decimals.to_string()),
            ("ltv", "0.7".to_owned()),
            ("liquidationThreshold", lt.to_owned()),
            ("liquidationBonus", "1.05".to_owned()),
        ] {
            let change = cascade_events::ParamChange {
                protocol: cascade_events::Protocol::AaveV3,
                market: Id::name(asset),
                param: cascade_events::Symbol::new(param).unwrap(),
                value: value.parse().unwrap(),
            };
            let event = crate::golden::event_at(time, Payload::ParamChange(Box::new(change)));
            model.apply(&event, &book).unwrap();
        }
    }
    model
}

fn monitored_payload(op: &crate::golden::Op) -> Option<Payload> {
    crate::golden::op_payload(
        cascade_events::Protocol::AaveV3,
        Id::name("pool"),
        &MONITORED,
        "liquidationThreshold",
        true,
        op,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The liquidatable set reported incrementally by `unsafe_changes`, and the risk sums kept
    /// with it when they are asked for, equal a full scan after every check, whatever the actions, price moves, index
    /// and threshold changes, liquidations and checkpoint restores in between.
    #[test]
    fn reported_changes_keep_the_full_scan_set(
        with_risk in proptest::bool::ANY,
        ops in proptest::collection::vec(crate::golden::arb_op(6, 3), 1..80),
    ) {
        let harness = crate::golden::MonitorHarness {
            fresh: monitored_v3,
            assets: MONITORED.len(),
            event: monitored_payload,
            price: |asset, permille| crate::golden::test_price(&MONITORED, "USD", asset, permille),
            scan: |model: &AaveModel| model.scan_all_liquidatable().unwrap(),
            scanned_risk: AaveModel::scanned_risk,
        };
        crate::golden::drive_monitor(&harness, &ops, with_risk);
    }
}

fn judged_after_setup(extra: &[&str]) -> Vec<serde_json::Value> {
    crate::golden::judged_after_setup(
        &mut AaveModel::v2(),
        "aave",
        "v2-basic.jsonl",
        "2021-05-19T01:30:00Z",
        extra,
    )
}

/// A liquidation payload of the v2-basic pool.
fn liquidation(account: &str, collateral: &str, seized: &str, debt: &str, repaid: &str) -> String {
    format!(
        r#"{{"kind":"liquidation","protocol":"aave-v2","market":"0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9","account":"{account}","liquidator":"0x000000000000000000000000000000000000beef","collateral_asset":"{collateral}","collateral_seized":"{seized}","debt_asset":"{debt}","debt_repaid":"{repaid}","detail":{{"type":"aave","receive_a_token":false}}}}"#
    )
}

const NOBODY: &str = "0x0000000000000000000000000000000000000d0e";
const ALICE: &str = "0x00000000000000000000000000000000000a11ce";

#[test]
fn an_unknown_account_keeps_the_seize_check_as_evidence() {
    let judged = judged_after_setup(&[
        // 1,000 USDC (at 0.0006 ETH, bonus 1.05) pays 0.63 WETH; 0.7 recorded.
        &liquidation(NOBODY, "WETH", "700000000000000000", "USDC", "1000000000"),
        // LINK: no price, no reserve.
        &liquidation(NOBODY, "LINK", "5000000000000000000", "USDC", "1000000000"),
        // UNI: priced, its decimals known (as a mapping writes them), no bonus ever set.
        r#"{"kind":"param-change","protocol":"aave-v2","market":"UNI","param":"decimals","value":"18"}"#,
        r#"{"kind":"price","asset":"UNI","quote":"ETH","price":"0.01","feed":"fixture-oracle","round":null}"#,
        &liquidation(NOBODY, "UNI", "5000000000000000000", "USDC", "1000000000"),
    ]);
    let mismatch = &judged[0];
    assert_eq!(mismatch["verdict"], "unknown-account");
    assert_eq!(mismatch["seize"]["result"], "mismatch");
    assert_eq!(mismatch["seize"]["collateral_price"], "1");
    assert_eq!(mismatch["seize"]["debt_price"], "0.0006");
    assert_eq!(mismatch["expected_collateral"], "0.63");
    assert!(
        mismatch["note"]
            .as_str()
            .unwrap()
            .ends_with("formula gives 0.63 collateral for 1000 debt, recorded 0.7 for 1000"),
        "{mismatch}"
    );
    assert!(mismatch["missing"].is_null());
    let unpriced = &judged[1];
    assert_eq!(unpriced["verdict"], "unknown-account");
    assert_eq!(unpriced["seize"]["result"], "no-price");
    assert!(unpriced["seize"]["bonus"].is_null(), "no LINK reserve");
    assert_eq!(unpriced["seize"]["debt_price"], "0.0006");
    crate::golden::assert_missing(unpriced, "price", "LINK");
    // A bonus of 0 is no configured bonus, not a formula giving no collateral.
    let unconfigured = &judged[2];
    assert_eq!(unconfigured["seize"]["result"], "no-price");
    assert!(unconfigured["seize"]["bonus"].is_null());
    assert_eq!(unconfigured["seize"]["collateral_price"], "0.01");
    crate::golden::assert_missing(unconfigured, "liquidation-bonus", "UNI");
}

#[test]
fn no_price_names_the_missing_input_and_its_asset() {
    let judged = judged_after_setup(&[
        // Alice's collateral asked in LINK, which the oracle never priced.
        &liquidation(ALICE, "LINK", "1", "USDC", "1000000"),
        // UNI gets a price but never its decimals.
        r#"{"kind":"price","asset":"UNI","quote":"ETH","price":"0.01","feed":"fixture-oracle","round":null}"#,
        &liquidation(ALICE, "UNI", "1", "USDC", "1000000"),
    ]);
    assert_eq!(judged[0]["verdict"], "no-price");
    crate::golden::assert_missing(&judged[0], "price", "LINK");
    assert_eq!(judged[0]["note"], "no price of LINK");
    assert_eq!(judged[1]["verdict"], "no-price");
    crate::golden::assert_missing(&judged[1], "decimals", "UNI");
}

/// A liquidation of the v2-basic pool with a side unknown (`None`): a `partial-liquidation`.
fn partial(
    account: &str,
    collateral: &str,
    seized: Option<&str>,
    debt: &str,
    repaid: Option<&str>,
) -> String {
    let amount =
        |side: Option<&str>| side.map_or_else(|| "null".to_owned(), |a| format!("\"{a}\""));
    format!(
        r#"{{"kind":"partial-liquidation","protocol":"aave-v2","market":"0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9","account":"{account}","liquidator":null,"collateral_asset":"{collateral}","collateral_seized":{},"debt_asset":"{debt}","debt_repaid":{},"detail":{{"type":"aave","receive_a_token":null}}}}"#,
        amount(seized),
        amount(repaid)
    )
}

const BOB: &str = "0x0000000000000000000000000000000000000b0b";

#[test]
fn an_unrecorded_debt_is_derived_by_inverting_the_seize_formula() {
    // Alice (fixtures/aave/README.md): 10 WETH against 15,300 USDC at 0.0006 ETH, health
    // 0.8987. A record of 4.8195 WETH seized without its repayment: the formula seizes
    // `percentMul(d * 0.0006e18 / 1e6, 10500)` = 6.3e8 wei per USDC unit, so 4.8195e18 wei is
    // d = 7,650,000,000 (7,650 USDC), exactly the close factor's 50% of 15,300: derived,
    // explained, and applied as the whole record would be.
    let mut whole = AaveModel::v2();
    let recorded = crate::golden::judged_after_setup(
        &mut whole,
        "aave",
        "v2-basic.jsonl",
        "2021-05-19T01:30:00Z",
        &[&liquidation(
            ALICE,
            "WETH",
            "4819500000000000000",
            "USDC",
            "7650000000",
        )],
    );
    let mut derived = AaveModel::v2();
    let judged = crate::golden::judged_after_setup(
        &mut derived,
        "aave",
        "v2-basic.jsonl",
        "2021-05-19T01:30:00Z",
        &[&partial(
            ALICE,
            "WETH",
            Some("4819500000000000000"),
            "USDC",
            None,
        )],
    );
    assert_eq!(recorded[0]["verdict"], "explained");
    assert_eq!(judged[0]["verdict"], "explained", "{}", judged[0]);
    assert_eq!(judged[0]["health"], "0.89869281045751634");
    assert_eq!(judged[0]["expected_debt"], "7650");
    assert_eq!(
        judged[0]["note"],
        "debt repaid not recorded: 7650 derived from the collateral seized 4.8195 (the repayment whose seizure by the formula is nearest it)"
    );
    assert_eq!(judged[0]["applied"], "Exact");
    // Alice is left with 5.1805 WETH and 7,650 USDC, as after the whole record.
    assert_eq!(
        crate::golden::state_bytes(&derived),
        crate::golden::state_bytes(&whole)
    );
}

#[test]
fn an_unrecorded_collateral_follows_forward_from_the_repayment() {
    // 7,650 USDC repaid: 7,650 x 0.0006 x 1.05 = 4.8195 WETH seized.
    let judged = judged_after_setup(&[&partial(ALICE, "WETH", None, "USDC", Some("7650000000"))]);
    assert_eq!(judged[0]["verdict"], "explained");
    assert_eq!(judged[0]["expected_collateral"], "4.8195");
    assert_eq!(
        judged[0]["note"],
        "collateral seized not recorded: 4.8195 derived from the debt repaid 7650 by the seize formula"
    );
    assert_eq!(judged[0]["applied"], "Exact");
}

#[test]
fn what_cannot_be_derived_is_judged_on_what_is_known_and_not_applied() {
    let judged = judged_after_setup(&[
        // Bob is safe (health 1.1458): no liquidation to invert.
        &partial(BOB, "WETH", Some("630000000000000000"), "DAI", None),
        // LINK has no price: the formula cannot run, and the verdict names the input.
        &partial(ALICE, "LINK", Some("1"), "USDC", None),
        // More than the close factor lets the formula seize (4.8195 WETH at most).
        &partial(ALICE, "WETH", Some("6000000000000000000"), "USDC", None),
        // Neither side: Alice was liquidatable, nothing more can be said.
        &partial(ALICE, "WETH", None, "USDC", None),
    ]);
    let verdicts: Vec<&str> = judged
        .iter()
        .map(|j| j["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "not-liquidatable",
            "no-price",
            "amount-mismatch",
            "explained"
        ]
    );
    for judgement in &judged {
        assert_eq!(judgement["applied"], "nothing", "{judgement}");
        assert!(judgement["expected_debt"].is_null(), "{judgement}");
        assert!(
            judgement["note"]
                .as_str()
                .unwrap()
                .ends_with("amounts not checked, position left as it was"),
            "{judgement}"
        );
    }
    assert_eq!(judged[0]["health"], "1.145833333333333333");
    crate::golden::assert_missing(&judged[1], "price", "LINK");
    assert_eq!(
        judged[1]["note"],
        "debt repaid not recorded, nothing derived (the formula cannot run: no price of LINK); amounts not checked, position left as it was"
    );
    assert!(
        judged[2]["note"]
            .as_str()
            .unwrap()
            .contains("the formula seizes less than the recorded collateral for any repayment the contract allows"),
        "{}",
        judged[2]
    );
    assert!(
        judged[3]["note"]
            .as_str()
            .unwrap()
            .starts_with("neither amount recorded, nothing derived (the seize formula needs one of the two amounts)"),
        "{}",
        judged[3]
    );
}

/// Each input of a reserve's view moves its holders' health the way `PairView::exposed` reads
/// it: the monitor leaves members unjudged on the strength of these directions.
#[test]
fn a_view_change_drifts_health_the_way_the_health_factor_reads_it() {
    use crate::lending::{AssetDrift, Drift, Rules};
    type View = (Option<U256>, Option<u8>, u16, U256, U256);
    let base: View = (
        Some(U256::from(2_000u32)),
        Some(18),
        8_000,
        U256::from(10u8),
        U256::from(10u8),
    );
    let drift = |change: fn(&mut View)| {
        let mut new = base;
        change(&mut new);
        <super::rules::Aave as Rules>::drift(&base, &new)
    };
    let up_as_collateral = AssetDrift {
        collateral: Drift::Up,
        debt: Drift::Still,
    };
    let down_as_debt = AssetDrift {
        collateral: Drift::Still,
        debt: Drift::Down,
    };
    assert_eq!(
        drift(|_| {}),
        AssetDrift {
            collateral: Drift::Still,
            debt: Drift::Still
        }
    );
    assert_eq!(
        drift(|view| view.0 = Some(U256::from(2_001u32))),
        AssetDrift {
            collateral: Drift::Up,
            debt: Drift::Down
        }
    );
    assert_eq!(drift(|view| view.2 = 8_100), up_as_collateral);
    assert_eq!(drift(|view| view.3 = U256::from(11u8)), up_as_collateral);
    assert_eq!(drift(|view| view.4 = U256::from(11u8)), down_as_debt);
    assert_eq!(
        drift(|view| {
            view.3 = U256::from(11u8);
            view.2 = 7_000;
        })
        .collateral,
        Drift::Any
    );
    assert_eq!(drift(|view| view.0 = None), AssetDrift::ANY);
    assert_eq!(drift(|view| view.1 = Some(6)), AssetDrift::ANY);
}
