//! The cause of an unsafe episode, decided from what the Maker model saw while it was open,
//! on the hand-worked `dog-bark` fixture (`fixtures/maker/dog-bark.jsonl`).
//!
//! Vault #4 holds 10 ETH against 8,000 DAI at `mat` 1.5, `duty` 0 (rate 1), `dust` 5,000: its
//! health is `osm * 10 / 1.5 / 8000 = osm / 1200`. The OSM publishes the market one hour back,
//! interpolated between the prints (1,300 at 01:30, 1,000 at 02:30, 1,100 at 03:30, 1,200 at
//! 04:30, 1,250 at 05:30), at the first event after each hour:
//!
//! | check | OSM value (market one hour before the boundary) | health |
//! |---|---|---|
//! | 03:30:00 | 1,150 (02:00) | 0.958333 |
//! | 04:00:05, 04:00:06 | 1,050 (03:00) | 0.875 |
//! | 04:30:00 | 1,050 | 0.875 |
//! | 05:30:00 | 1,150 (04:00) | 0.958333 |
//! | 06:30:00 | 1,225 (05:00) | 1.0208: safe, the stretch ends at 05:30 |
//!
//! Nobody liquidates it: one episode of 7,200 s and 5 checks. With nothing else it is
//! `unexplained` (health 0.875 is 12.5% under the threshold, no limit or dust in the way).

mod common;

use cascade_engine::core::price_margin_bps;
use cascade_engine::protocols::maker::MedianRule;
use cascade_engine::{Mode, ReplayOptions, Run, replay_log};
use cascade_events::{Event, Id};

fn event(time: &str, payload: &str) -> Event {
    serde_json::from_str(&format!(
        r#"{{"seq":0,"chain_id":1,"block":null,"time":"{time}","tx_index":null,"log_index":null,"tx_hash":null,"source":0,"payload":{payload}}}"#
    ))
    .expect("event JSON")
}

fn param(time: &str, name: &str, value: &str) -> Event {
    event(
        time,
        &format!(
            r#"{{"kind":"param-change","protocol":"maker","market":"ETH-B","param":"{name}","value":"{value}"}}"#
        ),
    )
}

/// The fixture with `extra` events placed in time order (after the fixture's events of the same
/// second).
fn replay_with(extra: Vec<Event>) -> Run {
    let mut events = common::fixture_events("dog-bark");
    for event in extra {
        let at = events
            .iter()
            .position(|e| e.time > event.time)
            .unwrap_or(events.len());
        events.insert(at, event);
    }
    let log = common::build_log(&events);
    replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
        .expect("replays")
        .run
}

fn only_episode(run: &Run) -> cascade_engine::run::EpisodeEvidence {
    assert_eq!(
        run.unsafe_unliquidated.len(),
        1,
        "{:?}",
        run.unsafe_unliquidated
    );
    let episode = &run.unsafe_unliquidated[0];
    assert_eq!(episode.account, "#4");
    assert_eq!(episode.seconds, 7_200);
    episode
        .evidence
        .clone()
        .expect("Maker episodes carry evidence")
}

#[test]
fn without_a_reason_the_stretch_is_unexplained() {
    let run = replay_with(Vec::new());
    assert!(
        run.summary()
            .contains("never liquidated: 1 episode (by cause: unexplained 1)\n"),
        "{}",
        run.summary()
    );
    let evidence = only_episode(&run);
    assert_eq!(evidence.cause.name(), "unexplained");
    assert_eq!(evidence.checks, 5);
    assert_eq!(evidence.lowest_health.to_string(), "0.875");
    assert_eq!(evidence.highest_health.to_string(), "0.958333333333333333");
    assert_eq!(evidence.debt.to_string(), "8000");
    assert_eq!(evidence.dust.to_string(), "5000");
    assert_eq!(evidence.refused_checks, 0);
}

#[test]
fn a_dog_with_no_room_refuses_every_bark() {
    // Governance sets `Dog.Hole` to 0 at 02:45 (after the recorded barks of 02:00, while the
    // vault is still safe at health 1.125): dog.sol
    // `bark` requires `Hole > Dirt`, so every check of the stretch meets
    // `Dog/liquidation-limit-hit` and the room is 0.
    let run = replay_with(vec![param("2021-06-01T02:45:00Z", "DOG.Hole", "0")]);
    let evidence = only_episode(&run);
    assert_eq!(evidence.cause.name(), "liquidation-refused");
    assert_eq!(evidence.refused_checks, 5);
    assert_eq!(evidence.refusal.as_deref(), Some("liquidation-limit-hit"));
    assert_eq!(
        evidence.least_room.map(|room| room.to_string()).as_deref(),
        Some("0")
    );
}

#[test]
fn a_vault_under_dust_is_too_small_for_a_keeper() {
    // `dust` raised to 9,000 DAI at 02:45: the vault's 8,000 DAI is under it at every check.
    // `Dog.bark` still takes the whole vault (no room limit, so no partial-bark dust rule).
    let run = replay_with(vec![param("2021-06-01T02:45:00Z", "VAT.ilks.dust", "9000")]);
    let evidence = only_episode(&run);
    assert_eq!(evidence.cause.name(), "below-dust");
    assert_eq!(evidence.below_dust_checks, 5);
    assert_eq!(evidence.refused_checks, 0);
    assert_eq!(evidence.dust.to_string(), "9000");
}

#[test]
fn a_repayment_the_export_misses_explains_the_stretch() {
    // At 07:00 the owner withdraws all 10 ETH while the export still has 8,000 DAI of debt:
    // `Vat.frob` would refuse that, so a repayment is missing and the engine clears the debt
    // (`missing-repayment-inferred`). 8,000 DAI covers the shortfall at the lowest check,
    // 8,000 * (1 - 0.875) = 1,000 DAI: with the chain's debt the vault need not have been unsafe.
    let withdraw = event(
        "2021-06-01T07:00:00Z",
        r##"{"kind":"withdraw","protocol":"maker","market":"ETH-B","account":"#4","asset":"ETH","amount":"10000000000000000000","shares":null}"##,
    );
    // The second's actions are settled when the next second begins: a later print.
    let later = event(
        "2021-06-01T07:30:00Z",
        r#"{"kind":"price","asset":"WETH","quote":"USD","price":"1250","feed":"test-feed","round":null}"#,
    );
    let run = replay_with(vec![withdraw, later]);
    assert_eq!(
        run.totals.clamped.get("missing-repayment-inferred"),
        Some(&1)
    );
    let evidence = only_episode(&run);
    assert_eq!(evidence.cause.name(), "rebuilt-state-disagrees");
    assert_eq!(
        evidence.disagreement.as_deref(),
        Some("missing-repayment-inferred")
    );
    assert_eq!(
        evidence.disagreement_at.as_deref(),
        Some("2021-06-01T07:00:00Z")
    );
    assert_eq!(
        evidence.excess_debt.map(|debt| debt.to_string()).as_deref(),
        Some("8000")
    );
}

/// The price error allowed a feed whose own error was not measured (the fixture's `test-feed`,
/// the 10-minute bars) is the spread the modelled Median keeps: the relayers' 1%.
#[test]
fn an_unmeasured_feed_is_allowed_the_modelled_medians_spread() {
    let spread = u64::from(MedianRule::ETH_USD.spread_bps);
    assert_eq!(price_margin_bps(None), spread);
    for feed in ["test-feed", "ohlcv-json"] {
        assert_eq!(price_margin_bps(Some(&Id::name(feed))), spread, "{feed}");
    }
}
