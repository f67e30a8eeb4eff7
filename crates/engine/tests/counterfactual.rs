//! Counterfactual replays of `fixtures/scenarios/cascade-market.jsonl`: five ETH-B vaults with
//! liquidation prices 1500, 1440, 1380, 1335 and 900 (mat 1.5), a dip of WETH to 1490, one
//! recorded bite of vault #1, and vault #3 repaying and withdrawing after the dip.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use cascade_engine::counterfactual::scenario::{
    BASELINE_LABEL, Scenario, SweepAxis, prepare, replay_scenario, run, run_from, run_sweep,
    window_state,
};
use cascade_engine::run::Run;
use cascade_engine::{Engine, EngineConfig, Mode};
use cascade_events::Event;
use cascade_log::{Catalog, LogReader, LogWriter, WriterOptions};

fn market_log() -> tempfile::TempDir {
    market_log_with("")
}

/// The market log with `extra` events (JSON lines) appended.
fn market_log_with(extra: &str) -> tempfile::TempDir {
    market_log_around("", extra)
}

/// The market log with `first` events (JSON lines) before it and `extra` after it.
fn market_log_around(first: &str, extra: &str) -> tempfile::TempDir {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios/cascade-market.jsonl");
    let text = format!(
        "{first}\n{}\n{extra}",
        std::fs::read_to_string(&path).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).unwrap();
        writer.append(&event).unwrap();
    }
    writer.commit().unwrap();
    dir
}

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test.toml", "test", Path::new(".")).unwrap()
}

fn replay(log: &Path, text: &str) -> Run {
    replay_scenario(log, &EngineConfig::default(), &scenario(text)).unwrap()
}

fn accounts(run: &Run) -> Vec<(String, Option<u32>)> {
    run.liquidations
        .iter()
        .map(|l| (l.account.to_string(), l.round))
        .collect()
}

const INSTANT_ORACLE: &str = "[[oracle]]\nprotocol = \"maker\"\ndelay = \"0s\"\n";

const IMPACT: &str = r#"
[[impact]]
asset = "ETH"
model = "depth"
depth = "80"
slippage = "5%"
half_life = "1h"
"#;

#[test]
fn the_baseline_replaces_recorded_liquidations_by_the_simulated_liquidator() {
    let log = market_log();
    let run = replay(log.path(), "");
    let scenario = run.scenario.as_ref().unwrap();
    assert_eq!(scenario.label, BASELINE_LABEL);
    assert!(scenario.baseline);
    assert_eq!(run.totals.recorded_liquidations_skipped, 1);
    // Only vault #1 is below its liquidation price (1500) at the recorded 1490; the OSM shows
    // 02:00's price from 03:00 on.
    assert_eq!(accounts(&run), [("#1".to_owned(), Some(1))]);
    assert_eq!(
        run.liquidations[0].time.to_rfc3339(),
        "2021-06-01T03:00:00Z"
    );
    assert_eq!(run.liquidations[0].origin.name(), "simulated");
    let report = run.counterfactual.as_ref().unwrap();
    assert_eq!(report.cascade.depth, 1);
    assert_eq!(report.cascade.triggered_by_price_move, 1);
}

#[test]
fn price_impact_makes_a_cascade_with_rounds_and_chains() {
    let log = market_log();
    let run = replay(log.path(), &format!("{INSTANT_ORACLE}{IMPACT}"));
    // 1490 -> ~1419 after #1's lot, -> ~1352 after #2's, -> ~1288 after #3's: #4 (1335) goes
    // too; #5 (900) never does.
    assert_eq!(
        accounts(&run),
        [
            ("#1".to_owned(), Some(1)),
            ("#2".to_owned(), Some(2)),
            ("#3".to_owned(), Some(3)),
            ("#4".to_owned(), Some(4)),
        ]
    );
    let report = run.counterfactual.as_ref().unwrap();
    assert_eq!(report.cascade.depth, 4);
    assert_eq!(report.cascade.triggered_by_impact, 3);
    let deepest = report
        .largest_losses
        .iter()
        .find(|c| c.account == "#4")
        .unwrap();
    let chain: Vec<&str> = deepest
        .chain
        .iter()
        .map(|link| link.account.as_str())
        .collect();
    assert_eq!(chain, ["#1", "#2", "#3", "#4"]);
    // The sales moved the price every later oracle reading sees, and it recovers with the
    // half-life: right after the sales the market stands about 18% below 1490; an hour later
    // half of that is left, so the 03:00 print of 1495 is read about 9% lower.
    let price_at = |time: &str| -> f64 {
        let point = run
            .timeline
            .iter()
            .rev()
            .find(|p| p.time.to_rfc3339() == time)
            .unwrap();
        point.oracle_price.unwrap().to_string().parse().unwrap()
    };
    let after_sales = price_at("2021-06-01T02:00:00Z");
    assert!((1_210.0..1_230.0).contains(&after_sales), "{after_sales}");
    let an_hour_later = price_at("2021-06-01T03:00:00Z");
    assert!(
        (1_350.0..1_370.0).contains(&an_hour_later),
        "{an_hour_later}"
    );
}

#[test]
fn impossible_user_actions_are_clamped_or_skipped_and_counted() {
    let log = market_log();
    let run = replay(log.path(), &format!("{INSTANT_ORACLE}{IMPACT}"));
    // Vault #3 was liquidated in the cascade; its later repay and withdrawal no longer fit.
    let adjusted: u64 = run
        .totals
        .clamped
        .values()
        .chain(run.totals.skipped.values())
        .sum();
    assert!(
        adjusted >= 2,
        "clamped {:?} skipped {:?}",
        run.totals.clamped,
        run.totals.skipped
    );
}

#[test]
fn overrides_pin_parameters_and_recorded_changes_are_skipped() {
    let log = market_log();
    let text = "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"1.3\"\n";
    let run = replay(log.path(), text);
    // At mat 1.3 vault #1's liquidation price is 1300: nothing is liquidated.
    assert!(run.liquidations.is_empty(), "{:?}", accounts(&run));
    // The override holds from the start: all three recorded mat changes are dropped.
    assert_eq!(
        run.totals.skipped.get("param-change-pinned-by-scenario"),
        Some(&3)
    );
    let changes = &run.scenario.as_ref().unwrap().changes;
    assert_eq!(changes[0], "maker ETH-B mat = 1.3");
}

#[test]
fn overrides_and_sweeps_of_a_market_the_log_never_names_are_refused() {
    let log = market_log();
    let typo = scenario(
        "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"chop\"\nvalue = \"0.1\"\n[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-Z\"\nparam = \"mat\"\nvalue = \"1.5\"\n",
    );
    let message = replay_scenario(log.path(), &EngineConfig::default(), &typo)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("test.toml: override[1].market: no maker market ETH-Z in the log"),
        "{message}"
    );
    assert!(
        message.contains("ETH-B"),
        "lists what the log has: {message}"
    );
    let other = scenario(
        "[[override]]\nprotocol = \"aave-v2\"\nmarket = \"WETH\"\nparam = \"liquidationThreshold\"\nvalue = \"0.8\"\n",
    );
    let message = replay_scenario(log.path(), &EngineConfig::default(), &other)
        .unwrap_err()
        .to_string();
    assert!(message.contains("it has no aave-v2 events"), "{message}");
    // A sweep axis: refused before any point runs.
    let base = scenario("");
    let prepared = prepare(log.path(), &EngineConfig::default(), &base).unwrap();
    let axes = [SweepAxis::parse("maker.ETH-Z.mat=1.3..1.4:0.1").unwrap()];
    let message = run_sweep(&prepared, &base, &axes, 1)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("--param maker.ETH-Z.mat: no maker market ETH-Z in the log"),
        "{message}"
    );
    // One parameter swept twice: only the second range would count.
    let twice = [
        SweepAxis::parse("maker.ETH-B.mat=1.3..1.4:0.1").unwrap(),
        SweepAxis::parse("maker.ETH-B.mat=1.5..1.6:0.1").unwrap(),
    ];
    let message = run_sweep(&prepared, &base, &twice, 1)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "--param maker.ETH-B.mat: sweeps maker ETH-B mat again (--param maker.ETH-B.mat already does): give each parameter once"
    );
    // Global parameters name no market, and ETH-B exists: both run.
    let fine = [
        SweepAxis::parse("maker.ETH-B.mat=1.3..1.3:0.1").unwrap(),
        SweepAxis::parse("maker.Hole=1000000..1000000:1").unwrap(),
    ];
    assert_eq!(run_sweep(&prepared, &base, &fine, 1).unwrap().len(), 1);
}

#[test]
fn an_oracle_source_the_log_never_prices_and_a_window_outside_the_log_are_refused() {
    let log = market_log();
    let refused = |text: &str| {
        replay_scenario(log.path(), &EngineConfig::default(), &scenario(text))
            .unwrap_err()
            .to_string()
    };
    let message = refused("[[oracle]]\nasset = \"WETH\"\nsource_asset = \"STETH\"\n");
    assert_eq!(
        message,
        "test.toml: oracle[0].source_asset = \"STETH\": the log has no price for STETH (it prices WETH)"
    );
    let message = refused("window = { from = \"2030-01-01T00:00:00Z\" }\n");
    assert!(
        message.starts_with("test.toml: window [2030-01-01T00:00:00Z, ..) holds none of the log's events (they run from 2021-06-01T00:00:00Z to "),
        "{message}"
    );
    let message = refused("window = { to = \"2021-06-01T00:00:00Z\" }\n");
    assert!(
        message.contains("holds none of the log's events"),
        "{message}"
    );
    // A window over part of the log, and a source the log prices, run.
    replay(
        log.path(),
        "window = { from = \"2021-06-01T12:00:00Z\" }\n[[oracle]]\nasset = \"WETH\"\nsource_asset = \"WETH\"\n",
    );
}

#[test]
fn an_override_may_precede_its_markets_first_event() {
    // ETH-C appears only in a parameter change after everything else: an override of it from
    // the start is legitimate (the parameter is set before the market's first event).
    let dir = market_log_with(
        r#"{"seq": 0, "chain_id": 1, "block": null, "time": "2021-06-02T00:00:00Z", "tx_index": null, "log_index": null, "tx_hash": null, "source": 0, "payload": {"kind": "param-change", "protocol": "maker", "market": "ETH-C", "param": "SPOTTER.ilks.mat", "value": "1.7"}}"#,
    );
    let run = replay(
        dir.path(),
        "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-C\"\nparam = \"mat\"\nvalue = \"1.5\"\n",
    );
    // The recorded change of the pinned parameter is skipped: the override held.
    assert_eq!(
        run.totals.skipped.get("param-change-pinned-by-scenario"),
        Some(&1)
    );
}

#[test]
fn a_window_starts_from_a_cached_historical_checkpoint_with_the_same_result() {
    let log = market_log();
    let text = format!(
        "window = {{ from = \"2021-06-01T01:15:00Z\", to = \"2021-06-01T09:00:00Z\" }}\n{INSTANT_ORACLE}{IMPACT}"
    );
    let scenario = scenario(&text);
    let config = EngineConfig::default();
    let first = prepare(log.path(), &config, &scenario).unwrap();
    assert!(!first.cached);
    let second = prepare(log.path(), &config, &scenario).unwrap();
    assert!(second.cached, "the window checkpoint is in the catalog now");
    assert_eq!(first.start_seq(), second.start_seq());
    let a = run(&first, &scenario).unwrap();
    let b = run(&second, &scenario).unwrap();
    assert_eq!(a.to_json(), b.to_json(), "byte-identical runs");
    assert_eq!(
        a.window.first_seq,
        Some(first.start_seq()),
        "reports from the window start"
    );
    assert!(
        a.timeline
            .iter()
            .all(|p| p.time.to_rfc3339().as_str() < "2021-06-01T09:00:00Z")
    );
    assert_eq!(accounts(&a).len(), 4, "same cascade as without a window");
}

#[test]
fn a_deeper_drawdown_reaches_more_vaults() {
    let log = market_log();
    let text = format!(
        "{INSTANT_ORACLE}[[price]]\nasset = \"WETH\"\ntransform = \"scale-drawdown\"\nfactor = \"5\"\nreference = \"1600\"\n"
    );
    let run = replay(log.path(), &text);
    // 1490 becomes 1600 - 5 * 110 = 1050: every vault but #5 is under water at once.
    let got: Vec<String> = accounts(&run).into_iter().map(|(a, _)| a).collect();
    assert_eq!(got, ["#1", "#2", "#3", "#4"]);
    assert!(
        run.liquidations.iter().all(|l| l.round == Some(1)),
        "no impact model: all price moves"
    );
}

#[test]
fn a_window_checkpoint_an_older_engine_wrote_is_replaced_not_fatal() {
    let log = market_log();
    let scenario = scenario(&format!(
        "window = {{ from = \"2021-06-01T01:15:00Z\" }}\n{INSTANT_ORACLE}{IMPACT}"
    ));
    let config = EngineConfig::default();
    let fresh = prepare(log.path(), &config, &scenario).unwrap();
    assert!(!fresh.cached);
    let expected = run(&fresh, &scenario).unwrap();
    // Overwrite the stored window checkpoint with bytes no engine can resume (as a state layout
    // change leaves them).
    let namespace = format!(
        "{}-window-{}-g{}",
        Engine::new(config.clone(), Mode::Historical).namespace(),
        scenario.window.from.unwrap().0,
        LogReader::open(log.path()).unwrap().generation()
    );
    {
        let catalog = Catalog::open(log.path()).unwrap();
        let (seq, _) = catalog
            .checkpoint_at_or_before(&namespace, u64::MAX)
            .unwrap()
            .expect("prepare stored the window checkpoint");
        catalog
            .put_checkpoint(&namespace, seq, b"CSCDENG1 from an older layout")
            .unwrap();
        catalog.flush().unwrap();
    }
    let again = prepare(log.path(), &config, &scenario).unwrap();
    assert!(!again.cached, "the unreadable checkpoint is not used");
    assert_eq!(run(&again, &scenario).unwrap(), expected);
    // ... and it was replaced: the next prepare resumes from it.
    assert!(prepare(log.path(), &config, &scenario).unwrap().cached);
}

#[test]
fn liquidations_chosen_together_do_not_cause_each_other() {
    let log = market_log();
    let text = format!(
        "{INSTANT_ORACLE}{IMPACT}[[price]]\nasset = \"WETH\"\ntransform = \"scale-drawdown\"\nfactor = \"1.5\"\nreference = \"1600\"\n"
    );
    let run = replay(log.path(), &text);
    // 1490 becomes 1600 - 1.5 * 110 = 1435: #1 (1500) and #2 (1440) are unsafe at that price
    // alone, both round 1, though #2 is judged after #1's sale moved the price. Their two sales
    // (~4.8% each) bring #3 (1380, needs 3.8%: #1's sale alone) and #4 (1335, needs 7%: both)
    // down together: round 2, neither caused by the other.
    assert_eq!(
        accounts(&run),
        [
            ("#1".to_owned(), Some(1)),
            ("#2".to_owned(), Some(1)),
            ("#3".to_owned(), Some(2)),
            ("#4".to_owned(), Some(2)),
        ]
    );
    let report = run.counterfactual.as_ref().unwrap();
    assert_eq!(report.cascade.depth, 2);
    assert_eq!(report.cascade.triggered_by_impact, 2);
}

#[test]
fn sweeps_give_the_same_results_whatever_the_number_of_jobs() {
    let log = market_log();
    let base = scenario(&format!(
        "window = {{ from = \"2021-06-01T01:15:00Z\" }}\n{INSTANT_ORACLE}{IMPACT}"
    ));
    let axes = [
        SweepAxis::parse("maker.ETH-B.mat=1.3..1.6:0.1").unwrap(),
        SweepAxis::parse("maker.ETH-B.chop=0.05..0.15:0.05").unwrap(),
    ];
    let prepared = prepare(log.path(), &EngineConfig::default(), &base).unwrap();
    let one = run_sweep(&prepared, &base, &axes, 1).unwrap();
    let two = run_sweep(&prepared, &base, &axes, 2).unwrap();
    let three = run_sweep(&prepared, &base, &axes, 3).unwrap();
    assert_eq!(one.len(), 12);
    assert_eq!(one, two);
    assert_eq!(one, three);
    // A point equals the same scenario replayed on its own.
    let alone = replay(
        log.path(),
        &format!(
            "window = {{ from = \"2021-06-01T01:15:00Z\" }}\n{INSTANT_ORACLE}{IMPACT}\n[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"1.5\"\n[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"chop\"\nvalue = \"0.10\"\n"
        ),
    );
    let point = one
        .iter()
        .find(|p| p.values[0].to_string() == "1.5" && p.values[1].to_string() == "0.10")
        .unwrap();
    assert_eq!(point.state_hash, alone.state_hash);
    assert_eq!(point.liquidations, alone.totals.liquidations);
    // A point keeps no liquidation records, yet its totals are the full run's.
    assert!(alone.totals.liquidations > 1, "the point liquidates");
    let mut hit: Vec<_> = alone
        .liquidations
        .iter()
        .map(|l| (l.protocol, l.market, l.account))
        .collect();
    hit.sort_unstable();
    hit.dedup();
    assert_eq!(point.accounts_hit, hit.len() as u64);
    let text = |map: &std::collections::BTreeMap<String, cascade_engine::Quantity>| {
        map.iter()
            .map(|(asset, amount)| (asset.clone(), amount.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        point.collateral_seized,
        text(&alone.totals.collateral_seized)
    );
    assert_eq!(point.debt_repaid, text(&alone.totals.debt_repaid));
    assert_eq!(point.bad_debt, text(&alone.totals.bad_debt));
    let depth = alone.counterfactual.as_ref().unwrap().cascade.depth;
    assert_eq!(point.cascade_depth, u64::from(depth));
    // A higher liquidation ratio never liquidates fewer vaults here.
    let at = |mat: &str| {
        one.iter()
            .filter(|p| p.values[0].to_string() == mat)
            .map(|p| p.liquidations)
            .max()
            .unwrap()
    };
    assert!(at("1.3") <= at("1.6"), "{} > {}", at("1.3"), at("1.6"));
}

#[test]
fn an_update_rule_hides_moves_below_its_deviation() {
    let log = market_log();
    // The dip from 1600 to 1490 is 6.9%: below a 10% deviation and within a day's heartbeat, the
    // oracle keeps publishing 1600 and vault #1 (liquidation price 1500) stays safe.
    let quiet = replay(
        log.path(),
        &format!(
            "{INSTANT_ORACLE}[[oracle]]\nasset = \"WETH\"\ndeviation = \"10%\"\nheartbeat = \"1d\"\n"
        ),
    );
    assert!(quiet.liquidations.is_empty(), "{:?}", accounts(&quiet));
    // With a 5% deviation the dip is published.
    let loud = replay(
        log.path(),
        &format!(
            "{INSTANT_ORACLE}[[oracle]]\nasset = \"WETH\"\ndeviation = \"5%\"\nheartbeat = \"1d\"\n"
        ),
    );
    assert_eq!(accounts(&loud), [("#1".to_owned(), Some(1))]);
}

#[test]
fn a_source_swap_reads_another_feed() {
    // A second feed answers 1000 once, at 01:45; the log's own feed keeps answering 1490 and up.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios/cascade-market.jsonl");
    let mut events: Vec<Event> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut other = events
        .iter()
        .find(|e| e.kind() == cascade_events::EventKind::Price)
        .cloned()
        .unwrap();
    other.time = cascade_events::Timestamp(1_622_511_900);
    if let cascade_events::Payload::Price(update) = &mut other.payload {
        update.feed = cascade_events::Id::name("other-feed");
        update.price = "1000".parse().unwrap();
    }
    let at = events.partition_point(|e| e.time <= other.time);
    events.insert(at, other);
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
    for event in &events {
        writer.append(event).unwrap();
    }
    writer.commit().unwrap();
    // Trusting only the other feed, every later update of the log's feed repeats its 1000: all
    // vaults but #5 (liquidation price 900) go.
    let swapped = replay(
        dir.path(),
        &format!("{INSTANT_ORACLE}[[oracle]]\nasset = \"WETH\"\nsource_feed = \"other-feed\"\n"),
    );
    let hit: Vec<String> = accounts(&swapped).into_iter().map(|(a, _)| a).collect();
    assert_eq!(hit, ["#1", "#2", "#3", "#4"]);
    // Trusting the log's own feed, the stray answer carries that feed's latest price (1600)
    // instead of 1000: only the dip to 1490 counts and only #1 is liquidated.
    let own = replay(
        dir.path(),
        &format!("{INSTANT_ORACLE}[[oracle]]\nasset = \"WETH\"\nsource_feed = \"test-feed\"\n"),
    );
    let hit: Vec<String> = accounts(&own).into_iter().map(|(a, _)| a).collect();
    assert_eq!(hit, ["#1"]);
}

#[test]
fn a_run_from_a_copied_window_state_is_the_run_from_the_checkpoint() {
    let log = market_log();
    let scenario = scenario(&format!(
        "window = {{ from = \"2021-06-01T01:15:00Z\" }}\n{INSTANT_ORACLE}{IMPACT}"
    ));
    let prepared = prepare(log.path(), &EngineConfig::default(), &scenario).unwrap();
    let start = window_state(&prepared)
        .unwrap()
        .expect("the window starts after the first event");
    let decoded = run(&prepared, &scenario).unwrap();
    assert!(
        decoded.totals.liquidations > 0,
        "the window has liquidations"
    );
    // Twice from the same copy: a run must not change the state it was copied from.
    for _ in 0..2 {
        let copied = run_from(&prepared, &scenario, Some(&start)).unwrap();
        assert_eq!(copied.to_json(), decoded.to_json());
    }
}

#[test]
fn a_scenario_reads_its_own_prices_not_recorded_oracle_values() {
    // A recorded OSM value far above the market: read, it would keep every vault safe.
    let recorded = r#"{"seq":0,"chain_id":1,"block":null,"time":"2021-06-01T00:00:00Z","tx_index":null,"log_index":null,"tx_hash":null,"source":0,"payload":{"kind":"oracle-value","protocol":"maker","market":"ETH","value":"100000","source":"osm-log-value","oracle":"0x81fe72b5a8d1a857d176c3e7d5bd2679a9b85763"}}"#;
    let with_recorded = market_log_around(recorded, "");
    let without = market_log();
    let run = replay(with_recorded.path(), "");
    assert_eq!(accounts(&run), [("#1".to_owned(), Some(1))]);
    assert_eq!(
        accounts(&run),
        accounts(&replay(without.path(), "")),
        "the scenario's liquidations do not depend on recorded oracle values"
    );
}

#[test]
fn chop_and_hole_overrides_reach_the_dog() {
    // The market's ilk runs on the Dog (`DOG.ilks.chop` 0.13, `DOG.ilks.hole` 10M DAI) and vault
    // #1 (100 WETH, 100,000 DAI) is barked whole at WETH 1490. A scenario's bare `chop` and
    // `hole` are the Dog's: they were once read as contracts named "chop" and "hole" and never
    // reached it, so a chop sweep gave identical rows and a hole override did nothing.
    let log = market_log();
    let with_override = |param: &str, value: &str| {
        let text = format!(
            "{INSTANT_ORACLE}[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"{param}\"\nvalue = \"{value}\"\n"
        );
        let run = replay(log.path(), &text);
        let bark = &run.liquidations[0];
        assert_eq!(
            (bark.account.to_string(), bark.rule.as_ref()),
            ("#1".to_owned(), "dog-bark")
        );
        (
            bark.collateral_seized.to_string(),
            bark.debt_repaid.to_string(),
            bark.collateral_sold.as_ref().map(ToString::to_string),
        )
    };
    // The auction sells tab / price: 100,000 * 1.13 / 1490 and 100,000 * 1.05 / 1490.
    let base = replay(log.path(), INSTANT_ORACLE);
    assert_eq!(
        base.liquidations[0]
            .collateral_sold
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("75.838926174496644296")
    );
    assert_eq!(
        with_override("chop", "0.05"),
        (
            "100".to_owned(),
            "100000".to_owned(),
            Some("70.469798657718120806".to_owned())
        )
    );
    // hole 1000 DAI leaves room for a tab of 1000: debt 1000 / 1.13, the same share of the ink.
    let (collateral, debt, _) = with_override("hole", "1000");
    assert_eq!(
        (collateral.as_str(), debt.as_str()),
        ("0.88495575221238938", "884.95575221238938053")
    );
}

/// Every run of one window takes `before` at the same moment: the window's first recorded
/// liquidation (here the bite of vault #1), before it is judged (history) or skipped (a
/// scenario), whatever the scenario does before it; `docs/run-format.md`, "The same moments".
#[test]
fn before_is_the_first_recorded_liquidation_in_every_run() {
    use cascade_engine::run::{Moment, Origin};
    let log = market_log();
    let history = cascade_engine::replay_log(
        log.path(),
        &cascade_engine::ReplayOptions::default(),
        Mode::Historical,
    )
    .unwrap()
    .run;
    let stricter = replay(
        log.path(),
        "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"1.6\"\n",
    );
    let before = |run: &Run| {
        run.health_distribution
            .iter()
            .find(|h| h.moment == Moment::Before)
            .map(|h| (h.seq, h.time))
    };
    let bite = history
        .liquidations
        .iter()
        .find(|l| l.origin == Origin::Recorded)
        .unwrap();
    assert_eq!(before(&history), Some((bite.seq, bite.time)));
    assert_eq!(before(&stricter), before(&history));
    // The stricter ratio liquidated earlier: its own onset came before the bite.
    assert!(
        stricter.liquidations[0].seq < bite.seq,
        "{:?}",
        accounts(&stricter)
    );
}
