//! Recorded liquidations with a side their source declared unknown (`partial-liquidation`),
//! through the replay loop on the hand-worked fixtures: the missing side is derived from the
//! protocol's formula and the note says so; where nothing can be derived the liquidation is
//! judged on what is known and the position left as it was.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Scenario, replay_scenario};
use cascade_engine::{Mode, ReplayOptions, Run, replay_log};
use cascade_events::{Event, Liquidation, PartialLiquidation, Payload};

fn replay(events: &[Event]) -> Run {
    let log = common::build_log(events);
    replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
        .expect("fixture replays")
        .run
}

/// The dog-bark fixture with the liquidations of `vaults` stripped of the sides `strip` says:
/// (collateral unknown, debt unknown).
fn dog_bark_without(vaults: &[(&str, bool, bool)]) -> Vec<Event> {
    let mut events = common::fixture_events("dog-bark");
    for event in &mut events {
        let Payload::Liquidation(liquidation) = &event.payload else {
            continue;
        };
        let Some((_, no_collateral, no_debt)) = vaults
            .iter()
            .find(|(vault, ..)| liquidation.account.to_string() == *vault)
        else {
            continue;
        };
        event.payload = without(liquidation, *no_collateral, *no_debt);
    }
    events
}

/// `liquidation` as a source without its collateral or its debt amount records it.
fn without(liquidation: &Liquidation, no_collateral: bool, no_debt: bool) -> Payload {
    Payload::PartialLiquidation(Box::new(PartialLiquidation {
        protocol: liquidation.protocol,
        market: liquidation.market,
        account: liquidation.account,
        liquidator: liquidation.liquidator,
        collateral_asset: liquidation.collateral_asset,
        collateral_seized: (!no_collateral).then_some(liquidation.collateral_seized),
        debt_asset: liquidation.debt_asset,
        debt_repaid: (!no_debt).then_some(liquidation.debt_repaid),
        detail: liquidation.detail,
    }))
}

#[test]
fn a_bark_without_its_debt_takes_what_the_dog_takes_and_says_so() {
    // fixtures/maker/README.md, dog-bark 1 and 2 at 02:00:12 (spot 900, rate 1, hole 30,000,
    // chop 1.13). #1 (10 ETH, 10,000 DAI) goes whole: `due` 10,000 DAI. #5 (40 ETH, 40,000
    // DAI) is cut by the room the hole leaves after #1's tab (30,000 - 11,300 = 18,700):
    // `dart` = 18,700 / 1.13 = 16,548.672566371681415929, `dink` = 40 x dart / 40,000 =
    // 16.548672566371681415 ETH. Derived from the vault, both apply exactly as the whole
    // records did: the state hash is the fixture's.
    let whole = replay(&common::fixture_events("dog-bark"));
    let run = replay(&dog_bark_without(&[
        ("#1", false, true),
        ("#5", true, true),
    ]));
    assert_eq!(run.state_hash, whole.state_hash);
    let first = &run.liquidations[0];
    assert_eq!(first.verdict.unwrap().name(), "explained");
    assert_eq!(first.debt_repaid.to_string(), "10000");
    assert_eq!(
        first.note.as_deref(),
        Some("debt repaid not recorded: 10000 derived from the vault's debt the liquidation takes")
    );
    let fifth = &run.liquidations[1];
    assert_eq!(fifth.verdict.unwrap().name(), "explained");
    assert_eq!(fifth.debt_repaid.to_string(), "16548.672566371681415929");
    assert_eq!(fifth.collateral_seized.to_string(), "16.548672566371681415");
    assert_eq!(
        fifth.note.as_deref(),
        Some(
            "debt repaid not recorded: 16548.672566371681415929 derived from the vault's debt the liquidation takes; collateral seized not recorded: 16.548672566371681415 derived from the vault's collateral it takes"
        )
    );
    // The totals add recorded amounts only: of the fixture's 38 ETH, #5's 17 are not recorded
    // here.
    let json: serde_json::Value = serde_json::from_slice(&run.to_json()).unwrap();
    let whole_json: serde_json::Value = serde_json::from_slice(&whole.to_json()).unwrap();
    assert_eq!(whole_json["totals"]["collateral_seized"]["ETH"], "38");
    assert_eq!(json["totals"]["collateral_seized"]["ETH"], "21");
    assert!(
        json["totals"]["skipped"]
            .get("liquidation-side-unknown-not-derived")
            .is_none()
    );
}

#[test]
fn a_safe_vault_without_its_debt_is_judged_and_left_as_it_was() {
    // #2 at 04:00:05 (10 ETH, 5,000 DAI; OSM 1,050, spot 700): health 1.4, not liquidatable.
    // The whole record is applied anyway (history says it happened, and its amounts say how
    // much); without the debt there is no amount to apply, so the vault keeps everything and
    // the run counts it under `skipped`.
    let whole = replay(&common::fixture_events("dog-bark"));
    let run = replay(&dog_bark_without(&[("#2", false, true)]));
    assert_ne!(run.state_hash, whole.state_hash);
    let second = &run.liquidations[2];
    assert_eq!(second.account.to_string(), "#2");
    assert_eq!(second.verdict.unwrap().name(), "not-liquidatable");
    let note = second.note.as_deref().unwrap();
    assert!(
        note.starts_with("debt repaid not recorded, nothing derived (the formula cannot run: safe at OSM price 1050"),
        "{note}"
    );
    assert!(
        note.ends_with("amounts not checked, position left as it was"),
        "{note}"
    );
    let json: serde_json::Value = serde_json::from_slice(&run.to_json()).unwrap();
    assert_eq!(
        json["totals"]["skipped"]["liquidation-side-unknown-not-derived"],
        1
    );
}

/// `fixtures/scenarios/cascade-market.jsonl` written to a log, its recorded bite of vault #1
/// turned into one without its debt when `partial` is set.
fn market_log(partial: bool) -> tempfile::TempDir {
    let path = common::repo_root().join("fixtures/scenarios/cascade-market.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let mut events: Vec<Event> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    if partial {
        for event in &mut events {
            if let Payload::Liquidation(liquidation) = &event.payload {
                event.payload = without(liquidation, false, true);
            }
        }
    }
    common::build_log(&events)
}

#[test]
fn a_counterfactual_replaces_a_recorded_liquidation_whatever_side_it_lacks() {
    // Recorded liquidations are skipped in a counterfactual, the simulated liquidator acting
    // instead: the run is the same whether the recorded bite had its debt or not.
    let scenario = Scenario::parse("", "test.toml", "test", std::path::Path::new(".")).unwrap();
    let run = |partial: bool| {
        let log = market_log(partial);
        replay_scenario(log.path(), &EngineConfig::default(), &scenario).unwrap()
    };
    let (whole, partial) = (run(false), run(true));
    assert_eq!(partial.totals.recorded_liquidations_skipped, 1);
    assert_eq!(
        partial.liquidations.len(),
        1,
        "vault #1, by the simulated liquidator"
    );
    assert_eq!(partial.state_hash, whole.state_hash);
    assert_eq!(partial.liquidations, whole.liquidations);
}
