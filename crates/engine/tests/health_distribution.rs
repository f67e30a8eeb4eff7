//! The run file's health distribution before and after, on the hand-built `dog-bark` fixture
//! (`fixtures/maker/README.md` works the vaults out): the numbers below follow from that README,
//! not from a previous run.

mod common;

use cascade_engine::run::HealthBucket;
use cascade_engine::{Mode, ReplayOptions, replay_log};
use cascade_events::{Event, Payload};

/// `(range, accounts, debt)` of the non-empty buckets.
fn filled(buckets: &[HealthBucket]) -> Vec<(String, u64, String)> {
    buckets
        .iter()
        .filter(|b| b.accounts > 0)
        .map(|b| (b.range.to_string(), b.accounts, b.debt.to_string()))
        .collect()
}

#[test]
fn dog_bark_health_before_the_first_bark_and_at_the_end() {
    let log = common::build_log(&common::fixture_events("dog-bark"));
    let run = replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
        .expect("fixture replays")
        .run;
    let moments: Vec<(&str, &str, &str)> = run
        .health_distribution
        .iter()
        .map(|s| (s.moment.name(), s.protocol.as_str(), s.market.as_str()))
        .collect();
    assert_eq!(
        moments,
        [("before", "maker", "ETH-B"), ("after", "maker", "ETH-B")]
    );
    let (before, after) = (&run.health_distribution[0], &run.health_distribution[1]);
    assert_eq!(before.buckets.len(), 8);
    // The 02:00 poke (spot 900) makes #1 and #5 unsafe; the check at the first event after it,
    // the bark of #1, finds them before the bark is applied: #1 and #5 at 0.9, #4 at 1.125, #2 at
    // 1.8; #3 holds 20 ETH and no debt.
    assert_eq!(before.time.to_rfc3339(), "2021-06-01T02:00:12Z");
    assert_eq!(before.seq, run.liquidations[0].seq);
    assert_eq!(
        filled(&before.buckets),
        [
            ("<1".to_owned(), 2, "50000".to_owned()),
            ("1.1-1.25".to_owned(), 1, "8000".to_owned()),
            ("1.5-2".to_owned(), 1, "5000".to_owned()),
        ]
    );
    assert_eq!(before.accounts_without_debt, 1);
    assert_eq!(before.accounts_unpriced, 0);
    // At the end (spot 816.67): #1 and #2 are gone, #5 keeps 23.45 ETH against 23,451.33 DAI
    // (0.8167), #4 sits at 1.0208.
    assert_eq!(after.seq, run.window.last_seq.unwrap());
    assert_eq!(
        filled(&after.buckets),
        [
            ("<1".to_owned(), 1, "23451.327433628318584071".to_owned()),
            ("1-1.05".to_owned(), 1, "8000".to_owned()),
        ]
    );
    assert_eq!(after.accounts_without_debt, 1);
}

/// A recorded liquidation the log holds before the protocol has any account (a log that starts
/// mid-history: the vault was opened before its first event) is no onset: the book it would show
/// is empty. `before` is the protocol's real onset, the same as without that first event.
#[test]
fn a_liquidation_before_the_protocol_has_accounts_is_not_the_onset() {
    let events = common::fixture_events("dog-bark");
    let mut orphan = events
        .iter()
        .find(|event| matches!(event.payload, Payload::Liquidation(_)))
        .expect("the fixture has a bark")
        .clone();
    orphan.time = events[0].time;
    let Payload::Liquidation(liquidation) = &mut orphan.payload else {
        unreachable!("found as a liquidation")
    };
    liquidation.account = "#99".parse().expect("an account id");
    let with_orphan: Vec<Event> = std::iter::once(orphan)
        .chain(events.iter().cloned())
        .collect();
    let before = |events: &[Event]| {
        let log = common::build_log(events);
        let run = replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
            .expect("fixture replays")
            .run;
        run.health_distribution
            .into_iter()
            .find(|s| s.moment.name() == "before")
            .map(|s| (s.time.to_rfc3339(), filled(&s.buckets)))
    };
    let onset = before(&events).expect("the fixture has an onset");
    assert_eq!(onset.0, "2021-06-01T02:00:12Z");
    assert_eq!(before(&with_orphan), Some(onset));
}
