//! The run file's `accounts` list on the hand-built `dog-bark` fixture (`fixtures/maker/README.md`
//! works the vaults out), with the window opening at 01:00: the numbers below follow from that
//! README, not from a previous run.

mod common;

use cascade_engine::run::{AccountState, Listed};
use cascade_engine::{EngineConfig, Mode, ReplayOptions, replay_log};
use cascade_events::Timestamp;

/// `(health, collateral value, debt value, ETH held)` of a state, as text.
fn figures(state: &AccountState) -> (String, String, String, String) {
    let text = |q: Option<cascade_run::Quantity>| q.map_or("-".to_owned(), |q| q.to_string());
    (
        text(state.health),
        text(state.collateral_value),
        text(state.debt_value),
        text(
            state
                .assets
                .iter()
                .find(|a| a.asset == "WETH")
                .and_then(|a| a.collateral),
        ),
    )
}

#[test]
fn dog_bark_accounts_at_the_window_start_and_end() {
    let log = common::build_log(&common::fixture_events("dog-bark"));
    let options = ReplayOptions {
        config: EngineConfig {
            // 2021-06-01T01:00:00Z: the window opens at the 01:30 print (its first event), with
            // every vault open and the OSM showing the 00:00 market, 2000 (spot 1333.33).
            from: Some(Timestamp(1_622_509_200)),
            ..EngineConfig::default()
        },
        checkpoint_every: None,
        resume: false,
        totals_only: false,
    };
    let run = replay_log(log.path(), &options, Mode::Historical)
        .expect("fixture replays")
        .run;
    let listed: Vec<(&str, &[Listed], u32)> = run
        .accounts
        .iter()
        .map(|a| (a.account.as_str(), a.listed.as_slice(), a.liquidations))
        .collect();
    use Listed::{LargestDebt as Debt, Liquidated as Liq, LowestHealth as Low};
    // Liquidated: #1, #5 (02:00:12), #2 (04:00:05), #99 (unknown vault). Lowest health at the
    // start: every vault with debt (#3 has none). Largest debt: the same four.
    assert_eq!(
        listed,
        [
            ("#1", &[Liq, Low, Debt][..], 1),
            ("#2", &[Liq, Low, Debt][..], 1),
            ("#4", &[Low, Debt][..], 0),
            ("#5", &[Liq, Low, Debt][..], 1),
            ("#99", &[Liq][..], 1),
        ]
    );
    let account = |id: &str| run.accounts.iter().find(|a| a.account == id).unwrap();
    let start = account("#5").start.as_ref().expect("open at the start");
    assert_eq!(start.time.to_rfc3339(), "2021-06-01T01:30:00Z");
    assert_eq!(start.seq, run.window.first_seq.unwrap());
    // #5: 40 ETH at the OSM's 2000 = 80,000 DAI against 40,000 DAI: health 40 x 1333.33 /
    // 40,000 = 1.3333.
    assert_eq!(
        figures(start),
        (
            "1.333333333333333333".to_owned(),
            "80000".to_owned(),
            "40000".to_owned(),
            "40".to_owned()
        )
    );
    // At the end (OSM 1225, spot 816.67) #5 keeps 40 - 16.548672566371681415 ETH against
    // 23,451.33 DAI: health 0.8167. The bark took 17 ETH as recorded.
    let end = account("#5").end.as_ref().expect("still open");
    assert_eq!(end.seq, run.window.last_seq.unwrap());
    assert_eq!(figures(end).0, "0.816666666666666666");
    assert_eq!(figures(end).3, "23.451327433628318585");
    assert_eq!(account("#5").collateral_seized["ETH"].to_string(), "17");
    // #4, never liquidated: 10 ETH / 8,000 DAI, from 1.6667 to 10 x 816.67 / 8,000 = 1.0208.
    assert_eq!(
        figures(account("#4").start.as_ref().unwrap()).0,
        "1.666666666666666666"
    );
    assert_eq!(
        figures(account("#4").end.as_ref().unwrap()).0,
        "1.020833333333333333"
    );
    assert!(account("#4").collateral_seized.is_empty());
    // #99 was never a vault.
    assert!(account("#99").start.is_none() && account("#99").end.is_none());
}

#[test]
fn a_window_that_opens_on_the_first_event_has_no_start() {
    let log = common::build_log(&common::fixture_events("dog-bark"));
    let run = replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
        .expect("fixture replays")
        .run;
    assert!(!run.accounts.is_empty());
    assert!(run.accounts.iter().all(|a| a.start.is_none()));
    assert!(
        run.accounts
            .iter()
            .all(|a| a.listed == [Listed::Liquidated])
    );
}
