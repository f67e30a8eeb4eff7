//! Golden replays of the hand-built Maker fixtures (`fixtures/maker/`, numbers worked out in
//! `fixtures/maker/README.md`): the run file must match `fixtures/expected/` byte for byte, and
//! the verdicts must be the ones the README derives. The comparison is the workspace's one
//! golden comparison ([`cascade_run::golden`]): `CASCADE_UPDATE_GOLDEN=1` rewrites the expected
//! files on purpose.

mod common;

use cascade_engine::protocols::maker::{MakerConfig, OracleMode};
use cascade_engine::{Mode, ReplayOptions, Run, replay_log};
use cascade_run::golden::assert_golden;

fn replay_fixture(name: &str) -> Run {
    let log = common::build_log(&common::fixture_events(name));
    replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
        .expect("fixture replays")
        .run
}

fn check_golden(name: &str, run: &Run) {
    let path = common::repo_root().join(format!("fixtures/expected/maker-{name}.json"));
    assert_golden(&path, &run.to_json());
}

fn verdicts(run: &Run) -> Vec<(String, &'static str)> {
    run.liquidations
        .iter()
        .map(|l| (l.account.to_string(), l.verdict.map_or("-", |v| v.name())))
        .collect()
}

#[test]
fn dog_bark_fixture() {
    let run = replay_fixture("dog-bark");
    assert_eq!(
        verdicts(&run),
        [
            ("#1".to_owned(), "explained"),
            ("#5".to_owned(), "explained"),
            ("#2".to_owned(), "not-liquidatable"),
            ("#99".to_owned(), "unknown-account"),
        ]
    );
    let whole = &run.liquidations[0];
    assert_eq!(whole.rule, "dog-bark");
    assert_eq!(whole.expected_collateral.unwrap().to_string(), "10");
    assert_eq!(whole.expected_debt.unwrap().to_string(), "10000");
    // Vault 5 is cut by the hole: room 30,000 - 11,300 (vault 1's tab, same second).
    let partial = &run.liquidations[1];
    assert_eq!(
        partial.expected_debt.unwrap().to_string(),
        "16548.672566371681415929"
    );
    assert_eq!(
        partial.expected_collateral.unwrap().to_string(),
        "16.548672566371681415"
    );
    // Vault 4 (10 ETH, 8,000 DAI) is unsafe at the 03:00, 04:00 and 05:00 OSM pokes, safe at
    // 06:00, and never liquidated; the checks run at the first event after each boundary (the
    // xx:30 prices), so the episode runs from 03:30 to 05:30.
    assert_eq!(
        run.unsafe_unliquidated.len(),
        1,
        "{:?}",
        run.unsafe_unliquidated
    );
    let episode = &run.unsafe_unliquidated[0];
    assert_eq!(episode.account, "#4");
    assert_eq!(episode.from, "2021-06-01T03:30:00Z");
    assert_eq!(episode.to, "2021-06-01T05:30:00Z");
    assert_eq!(episode.seconds, 7200);
    check_golden("dog-bark", &run);
}

#[test]
fn cat_bite_fixture() {
    let run = replay_fixture("cat-bite");
    assert_eq!(
        verdicts(&run),
        [
            ("#7".to_owned(), "explained"),
            ("#7".to_owned(), "explained"),
            ("#7".to_owned(), "explained"),
            ("#8".to_owned(), "not-liquidatable"),
            ("#8".to_owned(), "amount-mismatch"),
        ]
    );
    assert!(run.liquidations.iter().all(|l| l.rule == "cat-bite"));
    assert_eq!(run.totals.explained_percent.as_deref(), Some("60.00"));
    check_golden("cat-bite", &run);
}

/// `osm-recorded.jsonl`: the same market prices read through the OSM estimate never make the
/// vaults unsafe; the recorded OSM `LogValue` and Spotter `Poke` do (README).
#[test]
fn recorded_oracle_values_flip_the_verdicts_and_estimated_flips_them_back() {
    let events = common::fixture_events("osm-recorded");
    let log = common::build_log(&events);
    let replay = |oracle: OracleMode| {
        let mut options = ReplayOptions::default();
        MakerConfig::of_mut(&mut options.config.protocols).oracle = oracle;
        replay_log(log.path(), &options, Mode::Historical)
            .expect("fixture replays")
            .run
    };
    let evidence = |run: &Run| -> Vec<(String, Option<String>)> {
        run.liquidations
            .iter()
            .map(|l| {
                let oracle = l
                    .oracle
                    .as_ref()
                    .expect("maker verdicts carry oracle evidence");
                (
                    oracle.price.to_string(),
                    oracle.recorded.as_ref().map(|r| r.event.to_string()),
                )
            })
            .collect()
    };
    let both = |verdict: &'static str| vec![("#1".to_owned(), verdict), ("#2".to_owned(), verdict)];

    let auto = replay(OracleMode::Auto);
    assert_eq!(verdicts(&auto), both("explained"));
    assert_eq!(
        evidence(&auto),
        [
            ("1400".to_owned(), Some("osm-log-value".to_owned())),
            ("1100".to_owned(), Some("spotter-poke".to_owned())),
        ]
    );
    check_golden("osm-recorded", &auto);
    // Only recorded values: the same here, as both liquidations follow one.
    assert_eq!(verdicts(&replay(OracleMode::Recorded)), both("explained"));

    let estimated = replay(OracleMode::Estimated);
    assert_eq!(verdicts(&estimated), both("not-liquidatable"));
    assert_eq!(
        evidence(&estimated),
        [("2000".to_owned(), None), ("2000".to_owned(), None)]
    );
    let break_even: Vec<String> = estimated
        .liquidations
        .iter()
        .map(|l| {
            l.oracle
                .as_ref()
                .unwrap()
                .break_even_price
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        break_even,
        ["1499.999999999999999999", "1199.999999999999999999"]
    );
}
