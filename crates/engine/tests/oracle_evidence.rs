//! Which feed prices a verdict: minute bars quoted in USDT, converted through a USDT/USD rate,
//! take over from the fixture's half-hourly feed; `feed_priority` overrides that; without a rate
//! nothing is converted. Built on the `dog-bark` fixture, whose first bark (vault #1, 02:00:12)
//! is judged on the OSM reading of 01:00.

mod common;

use cascade_engine::oracle::OracleMode;
use cascade_engine::{EngineConfig, Mode, ReplayOptions, Run, replay_log};
use cascade_events::{Event, Fixed, Id, Payload, PriceUpdate, Timestamp, U256};

const DAY_START: i64 = 1_622_505_600; // 2021-06-01T00:00:00Z

fn price(time: i64, asset: &str, quote: &str, value: Fixed, feed: &str) -> Event {
    Event::at(
        1,
        Timestamp(time),
        Payload::Price(Box::new(PriceUpdate {
            asset: Id::name(asset),
            quote: Id::name(quote),
            price: value,
            feed: Id::name(feed),
            round: None,
        })),
    )
}

/// The fixture with minute bars at 1000 USDT from 00:40 to 01:10, and optionally a USDT/USD
/// rate of 0.99 at 00:00.
fn events(with_rate: bool) -> Vec<Event> {
    let mut events = common::fixture_events("dog-bark");
    if with_rate {
        events.push(price(
            DAY_START,
            "USDT",
            "USD",
            Fixed::new(U256::from(99u8), 2),
            "usdt",
        ));
    }
    for minute in 40..=70 {
        events.push(price(
            DAY_START + minute * 60,
            "WETH",
            "USDT",
            Fixed::new(U256::from(1000u16), 0),
            "minute",
        ));
    }
    // Stable: at equal times the fixture's own events keep their order, prices before the rest.
    events.sort_by_key(|event| event.time);
    events
}

fn replay(events: &[Event], priority: &[&str]) -> Run {
    let log = common::build_log(events);
    let options = ReplayOptions {
        config: EngineConfig {
            feed_priority: priority.iter().map(|feed| Id::name(feed)).collect(),
            ..EngineConfig::default()
        },
        ..ReplayOptions::default()
    };
    replay_log(log.path(), &options, Mode::Historical)
        .expect("replays")
        .run
}

/// (feed, observed, read_at, price) of the first liquidation's verdict.
fn first_evidence(run: &Run) -> (String, String, String, String) {
    let oracle = run.liquidations[0]
        .oracle
        .as_ref()
        .expect("a Maker verdict carries its evidence");
    (
        oracle.feed.expect("feed").to_string(),
        oracle.observed.expect("observed").to_rfc3339(),
        oracle.read_at.expect("read_at").to_rfc3339(),
        oracle.price.to_string(),
    )
}

#[test]
fn converted_minute_bars_price_the_verdict() {
    let run = replay(&events(true), &[]);
    // The minute feed shows its grain at its second bar (00:41) and wins from then on; its
    // price, 1000 USDT at 0.99, is 990 USD; the Median took it then and held it (no move).
    assert_eq!(
        first_evidence(&run),
        (
            "minute".to_owned(),
            "2021-06-01T00:41:00Z".to_owned(),
            "2021-06-01T01:00:00Z".to_owned(),
            "990".to_owned()
        )
    );
    let oracle = run.liquidations[0].oracle.as_ref().expect("evidence");
    assert_eq!(oracle.age_seconds, Some(19 * 60));
    assert!(
        !run.totals
            .skipped
            .contains_key("price-not-converted-no-rate")
    );
}

#[test]
fn feed_priority_overrides_the_finest_feed() {
    let run = replay(&events(true), &["test-feed"]);
    // The half-hourly feed: 1400 at 00:30 and 1300 at 01:30 interpolate to 1350 at 01:00.
    assert_eq!(
        first_evidence(&run),
        (
            "test-feed".to_owned(),
            "2021-06-01T00:30:00Z".to_owned(),
            "2021-06-01T01:00:00Z".to_owned(),
            "1350".to_owned()
        )
    );
}

#[test]
fn without_a_usdt_rate_the_bars_price_nothing() {
    let run = replay(&events(false), &[]);
    assert_eq!(first_evidence(&run).0, "test-feed");
    assert_eq!(run.totals.skipped["price-not-converted-no-rate"], 31);
}

/// The fixture with vault #1's bark recorded as half of it (5 of its 10 ETH, 5,000 of its 10,000
/// DAI: what `Dog.bark` takes when the room is 5,650 DAI; with the fixture's 5,000 DAI `dust`
/// only the half leaves both auction and remainder above it) and its remainder barked at
/// 02:30:00.
fn partial_bark_events() -> Vec<Event> {
    let mut events = common::fixture_events("dog-bark");
    let at = events
        .iter()
        .position(
            |event| matches!(&event.payload, Payload::Liquidation(l) if l.account == Id::Number(1)),
        )
        .expect("vault #1's bark");
    let whole = events[at].clone();
    let Payload::Liquidation(mut share) = whole.payload else {
        unreachable!()
    };
    share.collateral_seized = cascade_events::Amount(U256::from(5u8) * U256::from(10u64.pow(18)));
    share.debt_repaid = cascade_events::Amount(U256::from(5_000u16) * U256::from(10u64.pow(18)));
    events[at].payload = Payload::Liquidation(share.clone());
    let mut rest = share;
    rest.collateral_seized = cascade_events::Amount(U256::from(5u8) * U256::from(10u64.pow(18)));
    rest.debt_repaid = cascade_events::Amount(U256::from(5_000u16) * U256::from(10u64.pow(18)));
    events.push(Event::at(
        1,
        Timestamp(DAY_START + 2 * 3600 + 1800),
        Payload::Liquidation(rest),
    ));
    events.sort_by_key(|event| event.time);
    events
}

#[test]
fn a_recorded_partial_bark_leaves_the_remainder_the_contract_leaves() {
    let run = replay(&partial_bark_events(), &[]);
    let of_vault_1: Vec<_> = run
        .liquidations
        .iter()
        .filter(|l| l.account == Id::Number(1))
        .collect();
    assert_eq!(of_vault_1.len(), 2);
    // The engine's room covered the whole vault: the half is a mismatch naming the limit.
    assert_eq!(
        of_vault_1[0].verdict,
        Some(cascade_engine::Verdict::AmountMismatch)
    );
    let mismatch = of_vault_1[0].mismatch.as_ref().expect("mismatch evidence");
    assert_eq!(mismatch.input, "liquidation-limit");
    assert!(mismatch.detail.contains("5650 DAI"), "{}", mismatch.detail);
    // Taking what the contract takes for that room leaves 5 ETH and 5,000 DAI, which the
    // second bark then takes whole.
    assert_eq!(
        of_vault_1[1].verdict,
        Some(cascade_engine::Verdict::Explained),
        "{:?}",
        of_vault_1[1]
    );
    assert_eq!(
        of_vault_1[1].expected_collateral.map(|q| q.to_string()),
        Some("5".to_owned())
    );
    assert_eq!(
        of_vault_1[1].expected_debt.map(|q| q.to_string()),
        Some("5000".to_owned())
    );
}

/// A lending fixture replayed with the oracle values read under `mode`.
fn replay_lending(protocol: &str, name: &str, mode: OracleMode) -> Run {
    let log = common::build_log(&common::fixture_events_in(protocol, name));
    let mut options = ReplayOptions::default();
    options.config.protocols.set_oracle(mode);
    replay_log(log.path(), &options, Mode::Historical)
        .expect("fixture replays")
        .run
}

/// (verdict, price, feed, recorded event) of the only liquidation of `run`.
fn lending_evidence(run: &Run) -> (String, String, String, Option<String>) {
    let [liquidation] = run.liquidations.as_slice() else {
        panic!("one liquidation: {:?}", run.liquidations)
    };
    let verdict = liquidation.verdict.expect("judged").name().to_owned();
    let Some(oracle) = liquidation.oracle.as_ref() else {
        return (verdict, String::new(), String::new(), None);
    };
    (
        verdict,
        oracle.price.to_string(),
        oracle.feed.map(|feed| feed.to_string()).unwrap_or_default(),
        oracle.recorded.as_ref().map(|r| r.event.to_string()),
    )
}

const AAVE_PROXY: &str = "0x986b5e1e1755e3c2440e960477f25201b0a8bbd4";
const COMPOUND_VIEW: &str = "0x922018674c12a7f0d394ebeef9b58f186cde13c1";

/// `fixtures/aave/oracle-recorded.jsonl`, worked out: Alice supplies 20,000 USDC (threshold
/// 8500 bps, bonus 10500) and borrows 9 WETH (1 ETH to the v2 oracle). At 00:04 the `AaveOracle`
/// names the proxy as USDC's source; at 00:05 the proxy answers 0.0005 ETH (5e14 wei); at 00:06
/// the fixture's market feed says 0.0006 again. At the liquidation (00:07):
/// - recorded (`auto`, `recorded`): the oracle returns the proxy's answer, 5e14: collateral
///   20,000e6 x 5e14 / 1e6 = 10 ETH, weighted 8.5 ETH, against 9 ETH of debt: health 0.944,
///   liquidatable. The close factor allows 4.5 WETH; the seizure is 1e18 x 4.5e18 x 1e6,
///   percentMul 10500 (4.725e42), over 5e14 x 1e18: 9.45e9, the recorded 9,450 USDC: `explained`;
/// - estimated: the market's 0.0006: collateral 12 ETH, weighted 10.2, health 1.133:
///   `not-liquidatable`.
#[test]
fn aave_reads_the_chainlink_answer_of_the_source_its_oracle_names() {
    let recorded = (
        "explained".to_owned(),
        "0.0005".to_owned(),
        AAVE_PROXY.to_owned(),
        Some("chainlink-answer".to_owned()),
    );
    for mode in [OracleMode::Auto, OracleMode::Recorded] {
        let run = replay_lending("aave", "oracle-recorded", mode);
        assert_eq!(lending_evidence(&run), recorded, "{mode:?}");
        assert_eq!(
            run.liquidations[0]
                .expected_collateral
                .map(|q| q.to_string()),
            Some("9450".to_owned())
        );
    }
    assert_eq!(
        lending_evidence(&replay_lending(
            "aave",
            "oracle-recorded",
            OracleMode::Estimated
        )),
        (
            "not-liquidatable".to_owned(),
            "0.0006".to_owned(),
            "fixture-market".to_owned(),
            None
        )
    );
}

/// `fixtures/compound/oracle-recorded.jsonl`, worked out: Alice supplies 100 ETH (collateral
/// factor 0.75, 5,000 cETH at 0.02 ETH per cETH) and borrows 140,000 USDC. The market says ETH
/// 2,000 USD at 00:02 and again at 00:06; the `UniswapAnchoredView` stored 1,800 at 00:05
/// (`PriceUpdated`). USDC is 1 USD from the market feed only (the view prices it as a fixed
/// dollar and logs no `PriceUpdated` for it). At the liquidation (00:07), repaying 70,000 USDC:
/// - auto: ETH at the view's 1,800 (`getUnderlyingPrice` 1e30 x 1,800e6 / 1e18 = 1,800e18):
///   collateral 0.75 x 100 x 1,800 = 135,000 against 140,000: shortfall, liquidatable; the close
///   factor allows 70,000; seize 1.08e30 / (1,800e18 x 2e26 / 1e18) = 3e18 per unit, x 70,000e6
///   = 2.1e11 cETH (42 ETH), as recorded: `explained`;
/// - estimated: ETH at 2,000: collateral 150,000, no shortfall: `not-liquidatable`;
/// - recorded only: USDC has no recorded value: `no-price`.
#[test]
fn compound_reads_the_price_its_view_stored() {
    assert_eq!(
        lending_evidence(&replay_lending(
            "compound",
            "oracle-recorded",
            OracleMode::Auto
        )),
        (
            "explained".to_owned(),
            "1800".to_owned(),
            COMPOUND_VIEW.to_owned(),
            Some("compound-price-updated".to_owned())
        )
    );
    let estimated = replay_lending("compound", "oracle-recorded", OracleMode::Estimated);
    assert_eq!(
        lending_evidence(&estimated),
        (
            "not-liquidatable".to_owned(),
            "2000".to_owned(),
            "fixture-market".to_owned(),
            None
        )
    );
    // The market price has been 2,000 since 00:02 (00:06 repeated it).
    let oracle = estimated.liquidations[0].oracle.as_ref().expect("evidence");
    assert_eq!(
        (
            oracle.observed.map(|t| t.to_rfc3339()),
            oracle.read_at.map(|t| t.to_rfc3339()),
            oracle.age_seconds
        ),
        (
            Some("2021-05-19T00:02:00Z".to_owned()),
            Some("2021-05-19T00:07:00Z".to_owned()),
            Some(300)
        )
    );
    assert_eq!(
        lending_evidence(&replay_lending(
            "compound",
            "oracle-recorded",
            OracleMode::Recorded
        ))
        .0,
        "no-price"
    );
}
