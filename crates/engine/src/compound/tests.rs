//! Golden replay of the hand-built Compound fixture (`fixtures/compound/*.jsonl`) through
//! [`CompoundModel`], and the check that its index finds exactly what a full scan finds.
//!
//! Same conventions as the Aave golden tests: `CASCADE_UPDATE_GOLDEN=1` rewrites
//! `fixtures/compound/<name>.expected.json`; the numbers are worked by hand in
//! `fixtures/compound/README.md`.

use std::path::PathBuf;

use cascade_events::{
    Amount, Event, Fixed, Id, IndexUpdate, ParamChange, Payload, PositionChange, PriceUpdate,
    Protocol, Symbol, Timestamp, U256,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::CompoundModel;
use super::exp::Rounding;
use crate::oracle::PriceBook;
use crate::protocol::{Candidate, LiquidatorChoice, MarketRisk, ProtocolModel};
use crate::state::{StateReader, StateWriter, hash_hex};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/compound")
        .join(name)
}

fn load(name: &str) -> Vec<Event> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines()
        .enumerate()
        .map(|(line, json)| {
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}:{}: {e}", line + 1))
        })
        .collect()
}

fn replay(model: &mut CompoundModel, events: &[Event]) -> Vec<Value> {
    let mut book = PriceBook::new(Vec::new());
    let mut judged = Vec::new();
    for event in events {
        match &event.payload {
            Payload::Price(update) => {
                book.record(update, event.time);
                model.on_price(update, event.time, &book).unwrap();
            }
            Payload::Liquidation(liquidation) => {
                let judgement = model.judge(liquidation, event.time).unwrap();
                let applied = model
                    .apply_liquidation(liquidation, &judgement, event.time)
                    .unwrap();
                judged.push(json!({
                    "seq": event.seq,
                    "account": liquidation.account.to_string(),
                    "verdict": judgement.verdict.name(),
                    "rule": judgement.rule,
                    "health": judgement.health,
                    "expected_collateral": judgement.expected_collateral,
                    "expected_debt": judgement.expected_debt,
                    "note": judgement.note,
                    "applied": format!("{applied:?}"),
                }));
            }
            _ => {
                model.apply(event, &book).unwrap();
            }
        }
    }
    judged
}

fn candidates(model: &mut CompoundModel, time: Timestamp) -> Vec<Candidate> {
    let mut out = Vec::new();
    model.liquidatable(time, &mut out).unwrap();
    out
}

fn state_bytes(model: &CompoundModel) -> Vec<u8> {
    let mut writer = StateWriter::new();
    model.encode_state(&mut writer);
    writer.into_bytes()
}

#[test]
fn v2_basic_golden_replay() {
    let name = "v2-basic";
    let events = load(&format!("{name}.jsonl"));
    let end = events.last().map(|e| e.time).unwrap_or(Timestamp(0));
    let mut model = CompoundModel::new(Rounding::Truncate);
    let liquidations = replay(&mut model, &events);
    let unsafe_now: Vec<Value> = candidates(&mut model, end)
        .iter()
        .map(|c| json!({"account": c.account.to_string(), "health": c.health.to_string(), "debt_value": c.debt_value.to_string()}))
        .collect();
    let mut risk: Vec<MarketRisk> = Vec::new();
    model.risk(end, &mut risk).unwrap();
    let risk: Vec<Value> = risk
        .iter()
        .map(|r| {
            json!({
                "market": r.market.to_string(),
                "accounts_unsafe": r.accounts_unsafe,
                "collateral_at_risk": r.collateral_at_risk,
                "debt_at_risk": r.debt_at_risk,
                "bad_debt": r.bad_debt,
            })
        })
        .collect();
    let bytes = state_bytes(&model);
    let actual = json!({
        "liquidations": liquidations,
        "liquidatable_at_end": unsafe_now,
        "risk_at_end": risk,
        "state_hash": hash_hex(&bytes),
    });
    let path = fixture(&format!("{name}.expected.json"));
    let rendered = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var_os("CASCADE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with CASCADE_UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(rendered, expected, "golden replay of {name} changed");

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
            "explained"
        ]
    );
    assert_eq!(actual["liquidations"][0]["health"], "0.945378151260504201");
    assert_eq!(actual["liquidations"][0]["expected_collateral"], "42.84");

    let mut restored = CompoundModel::new(Rounding::HalfUp);
    let mut reader = StateReader::new(&bytes);
    restored.decode_state(&mut reader).unwrap();
    reader.finish().unwrap();
    assert_eq!(state_bytes(&restored), bytes);
    assert_eq!(candidates(&mut restored, end), candidates(&mut model, end));
}

#[test]
fn simulated_liquidation_stays_within_close_factor_and_collateral() {
    let events = load("v2-basic.jsonl");
    let first = events
        .iter()
        .position(|e| matches!(e.payload, Payload::Liquidation(_)))
        .unwrap();
    let mut model = CompoundModel::new(Rounding::Truncate);
    replay(&mut model, &events[..first]);
    let time = events[first].time;
    let found = candidates(&mut model, time);
    assert_eq!(found.len(), 1, "only Alice has a shortfall");
    let choice = LiquidatorChoice {
        collateral_asset: None,
        debt_asset: None,
        max_repay: None,
        take_price: None,
    };
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
    Payload::ParamChange(ParamChange {
        protocol: Protocol::CompoundV2,
        market: Id::name(market),
        param: Symbol::new(name).unwrap(),
        value: value.parse().unwrap(),
    })
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
        let event = |payload: Payload| Event {
            seq: 0,
            chain_id: 1,
            block: None,
            time,
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 0,
            payload,
        };
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
                model.apply(&event(Payload::Deposit(change("ETH", U256::from(*eth) * U256::from(10u64.pow(16))))), &book).unwrap();
            }
            if *wbtc > 0 {
                model.apply(&event(Payload::Deposit(change("WBTC", U256::from(*wbtc) * U256::from(10u64.pow(6))))), &book).unwrap();
            }
            model.apply(&event(Payload::Borrow(change("USDC", U256::from(*usdc) * U256::from(10u64.pow(4))))), &book).unwrap();
        }
        model.apply(&event(Payload::IndexUpdate(IndexUpdate {
            protocol: Protocol::CompoundV2,
            market: comptroller,
            asset: Id::name("USDC"),
            supply_index: None,
            borrow_index: Some(Fixed::new(U256::from(borrow_index_bps), 4)),
        })), &book).unwrap();
        let shock = price("ETH", Fixed::new(U256::from(eth_price), 0));
        book.record(&shock, time);
        model.on_price(&shock, time, &book).unwrap();

        let mut indexed: Vec<(Id, Id)> = candidates(&mut model, time).into_iter().map(|c| (c.market, c.account)).collect();
        indexed.sort();
        prop_assert_eq!(indexed, model.scan_all_liquidatable());
    }
}
