//! A cascade across three protocols from one hand-built log, `fixtures/scenarios/
//! cross-protocol-chain.jsonl`, under `fixtures/scenarios/cross-protocol-chain.toml`: every
//! liquidator sells WETH into one depth curve (1,000 WETH move the price 10%, linearly; half-life
//! a day, so nothing decays within the second the chain takes) and Maker reads the market price
//! at once (OSM delay 0).
//!
//! Positions (built before the window opens at 00:45; ETH at 2,000 USD, USDC at 0.0005 ETH):
//! - Maker ETH-B vault #1: 100 ETH, 110,000 DAI; `mat` 1.5, so liquidatable below 1,650.
//! - Aave v2 account `…a1`: 300 WETH (threshold 0.825: 247.5 ETH), 394,000 USDC; the v2 oracle
//!   quotes USDC in ETH.
//! - Compound v2 account `…c1`: 100 ETH (collateral factor 0.75), 118,200 USDC.
//!
//! At 01:00 ETH falls to 1,600 on every feed (USDC to 0.000625 ETH), Maker's last.
//! - The price path alone: Aave `…a1` owes 394,000 x 0.000625 = 246.25 ETH against 247.5: health
//!   1.0051, safe. Compound `…c1`: 100 x 1,600 x 0.75 = 120,000 against 118,200: 1.0152, safe.
//!   Maker #1 is below 1,650: liquidated by the price path (round 1). Its tab, 110,000 x 1.13 =
//!   124,300 DAI, buys 77.955471934775791785 ETH from the lot (about 1,594.5 a token: the
//!   keeper pays the market price less half the drop its own purchase causes); the other 22.04
//!   ETH go back to the vault. Sold into the curve: 77.9555 / 1,000 x 10% = **0.77955%**, so
//!   ETH is worth m1 = 0.99220 of itself.
//! - Aave v2 now prices USDC at 0.000625 / m1 = 0.00062991 ETH (a dollar costs more ETH once
//!   ETH fell): debt 248.18 ETH against 247.5, health 0.9973: liquidatable, and only through
//!   Maker's sale: round 2, link **Maker ETH-B -> Aave v2**. The close factor repays 197,000
//!   USDC and seizes 197,000 x 0.00062991 x 1.05 = **130.29698630591553225 WETH**, sold into the
//!   same curve: 1.30297% of the price it sold at, 1.29281% of the undisturbed price.
//! - Compound's ETH is now 1,600 x (1 - 0.0077955 - 0.0129281) = 1,566.68, kept at the
//!   recorded price's precision: 1,566 (whole dollars). 100 x 1,566 x 0.75 = 117,450 < 118,200:
//!   liquidatable. Maker's sale alone would leave 1,587.5 (119,064: safe), Aave's alone
//!   1,579.3 (118,449: safe): both are needed, Aave's the larger: round 3, link **Aave v2 ->
//!   Compound v2**. It repays 59,100 USDC (half) and seizes 59,100 x 1.08 / 1,566 =
//!   **40.7586206896 ETH**.
//!
//! Without the shared curve only Maker #1 is liquidated.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Scenario, replay_scenario};
use cascade_engine::run::{BookMoment, Run};
use cascade_events::Event;
use cascade_log::{LogWriter, WriterOptions};

const AAVE_POOL: &str = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9";
const A: &str = "0x00000000000000000000000000000000000000a1";
const C: &str = "0x00000000000000000000000000000000000000c1";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/scenarios")
        .join(name)
}

fn replay(scenario: &Scenario) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
    let text = std::fs::read_to_string(fixture("cross-protocol-chain.jsonl")).unwrap();
    for line in text.lines() {
        let event: Event = serde_json::from_str(line).unwrap();
        writer.append(&event).unwrap();
    }
    writer.commit().unwrap();
    replay_scenario(dir.path(), &EngineConfig::default(), scenario).unwrap()
}

#[test]
fn maker_sales_liquidate_aave_whose_sales_liquidate_compound() {
    let scenario = Scenario::load(&fixture("cross-protocol-chain.toml")).unwrap();
    let run = replay(&scenario);
    let liquidations: Vec<(String, String, Option<u32>, String, String, String)> = run
        .liquidations
        .iter()
        .map(|l| {
            (
                l.protocol.name().to_owned(),
                l.account.to_string(),
                l.round,
                l.time.to_rfc3339(),
                l.debt_repaid.to_string(),
                l.collateral_sold.map(|q| q.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let at = "2021-05-19T01:00:00Z".to_owned();
    let row = |p: &str, a: &str, round, debt: &str, sold: &str| {
        (
            p.to_owned(),
            a.to_owned(),
            Some(round),
            at.clone(),
            debt.to_owned(),
            sold.to_owned(),
        )
    };
    assert_eq!(
        liquidations,
        [
            row("maker", "#1", 1, "110000", "77.955471934775791785"),
            row("aave-v2", A, 2, "197000", "130.29698630591553225"),
            row("compound-v2", C, 3, "59100", "40.7586206896"),
        ]
    );
    let cascade = &run.counterfactual.as_ref().unwrap().cascade;
    let links: Vec<(&str, &str, &str, &str, u32, u32, String)> = cascade
        .cross_protocol
        .iter()
        .map(|l| {
            (
                l.cause_protocol.as_str(),
                l.cause_market.as_str(),
                l.effect_protocol.as_str(),
                l.effect_market.as_str(),
                l.cause_sales,
                l.liquidations,
                l.price_moved_percent.to_string(),
            )
        })
        .collect();
    // Same cause hour: ordered by the cause side's "protocol market" text.
    assert_eq!(
        links,
        [
            (
                "aave-v2",
                AAVE_POOL,
                "compound-v2",
                "compound-v2",
                1,
                1,
                "1.292812499999998636463904".to_owned()
            ),
            (
                "maker",
                "ETH-B",
                "aave-v2",
                AAVE_POOL,
                1,
                1,
                "0.7795547193477579".to_owned()
            ),
        ]
    );
    assert_eq!(
        (
            cascade.depth,
            cascade.triggered_by_price_move,
            cascade.triggered_by_impact
        ),
        (3, 1, 2)
    );
    // The chain of the last liquidation leads back to Maker's, link by link.
    let deepest = run
        .counterfactual
        .as_ref()
        .unwrap()
        .largest_losses
        .iter()
        .find(|loss| loss.account == C)
        .unwrap();
    let chain: Vec<(&str, u32)> = deepest
        .chain
        .iter()
        .map(|link| (link.account.as_str(), link.round))
        .collect();
    assert_eq!(chain, [("#1", 1), (A, 2), (C, 3)]);
    // The overlap at the end counts the same: Maker's by the price path, the others' by another
    // protocol's sales.
    let end = run
        .overlap
        .iter()
        .find(|o| o.moment == BookMoment::End)
        .unwrap();
    let by_trigger: Vec<(&str, &str, &str, u64, String)> = end
        .liquidations_by_trigger
        .iter()
        .map(|t| {
            (
                t.protocol.as_str(),
                t.trigger.as_str(),
                t.debt_asset.as_str(),
                t.liquidations,
                t.debt_repaid.to_string(),
            )
        })
        .collect();
    assert_eq!(
        by_trigger,
        [
            ("maker", "price-path", "DAI", 1, "110000".to_owned()),
            (
                "aave-v2",
                "other-protocol-sales",
                "USDC",
                1,
                "197000".to_owned()
            ),
            (
                "compound-v2",
                "other-protocol-sales",
                "USDC",
                1,
                "59100".to_owned()
            ),
        ]
    );
}

#[test]
fn without_the_shared_curve_only_maker_is_liquidated() {
    let mut scenario = Scenario::load(&fixture("cross-protocol-chain.toml")).unwrap();
    scenario.impact.clear();
    let run = replay(&scenario);
    let accounts: Vec<String> = run
        .liquidations
        .iter()
        .map(|l| l.account.to_string())
        .collect();
    assert_eq!(accounts, ["#1"]);
    assert!(
        run.counterfactual
            .as_ref()
            .unwrap()
            .cascade
            .cross_protocol
            .is_empty()
    );
}
