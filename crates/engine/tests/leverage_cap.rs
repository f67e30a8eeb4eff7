//! `leverage.max_loops` end to end: a hand-built Aave v2 pool where a stETH-on-WETH loop is
//! liquidated when stETH slips against ETH, and is not once the scenario caps loops.
//!
//! The pool (prices are v2 oracle answers in ETH; WETH is 1 ETH by the oracle's rule):
//! - stETH: threshold 0.8, bonus 1.05; WETH: threshold 0.825, bonus 1.05; 18 decimals each.
//! - Looper `…100`: 40 stETH supplied, 30 WETH borrowed (10 stETH looped three times).
//!   At stETH = 1 ETH: exposure 40, debt 30, equity 10, looped 30 (stETH and WETH are one
//!   correlation group), depth ceil(30 / 10) = 3, health 40 * 0.8 / 30 = 1.0667.
//! - Modest `…200`: 30 stETH supplied, 10 WETH borrowed: equity 20, looped 10, depth 1,
//!   health 2.4.
//!
//! The window opens at 01:00 (stETH re-reported at 1 ETH); at 02:00 stETH falls to 0.92 ETH.
//! - Without a cap: the looper's health is 40 * 0.92 * 0.8 / 30 = 0.98133: liquidated at 02:00.
//!   The modest account: 27.6 * 0.8 / 10 = 2.208, safe.
//! - `max_loops = 1`: at 01:00 the looper may keep 1 * 10 = 10 of looped debt, so 20 is unwound:
//!   20 WETH repaid, 20 stETH withdrawn (same value at 1 ETH each; and 4 wei more of each, the
//!   cap's margin below its edge), leaving 20 stETH against 10 WETH: equity 10, depth 1. At
//!   0.92: 18.4 * 0.8 / 10 = 1.472: safe, nobody is liquidated. The modest account is at depth 1 already and untouched.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Scenario, replay_scenario};
use cascade_engine::run::Run;
use cascade_events::Event;
use cascade_log::{LogWriter, WriterOptions};

const POOL: &str = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9";
const LOOPER: &str = "0x0000000000000000000000000000000000000100";
const MODEST: &str = "0x0000000000000000000000000000000000000200";

fn line(time: &str, payload: &str) -> String {
    format!(
        r#"{{"seq":0,"chain_id":1,"block":null,"time":"2022-06-13T{time}Z","tx_index":null,"log_index":null,"tx_hash":null,"source":0,"payload":{payload}}}"#
    )
}

fn param(market: &str, name: &str, value: &str) -> String {
    line(
        "00:00:00",
        &format!(
            r#"{{"kind":"param-change","protocol":"aave-v2","market":"{market}","param":"{name}","value":"{value}"}}"#
        ),
    )
}

fn steth_price(time: &str, price: &str) -> String {
    line(
        time,
        &format!(
            r#"{{"kind":"price","asset":"stETH","quote":"ETH","price":"{price}","feed":"fixture-oracle","round":null}}"#
        ),
    )
}

fn change(time: &str, kind: &str, account: &str, asset: &str, whole: u64) -> String {
    line(
        time,
        &format!(
            r#"{{"kind":"{kind}","protocol":"aave-v2","market":"{POOL}","account":"{account}","asset":"{asset}","amount":"{whole}000000000000000000","shares":null}}"#
        ),
    )
}

fn pool_log() -> tempfile::TempDir {
    pool_log_slipping_to("0.92")
}

/// The pool, stETH re-reported at `slip` ETH at 02:00.
fn pool_log_slipping_to(slip: &str) -> tempfile::TempDir {
    let mut lines = Vec::new();
    for (asset, threshold) in [("stETH", "0.8"), ("WETH", "0.825")] {
        lines.push(param(asset, "decimals", "18"));
        lines.push(param(asset, "liquidationThreshold", threshold));
        lines.push(param(asset, "ltv", "0.7"));
        lines.push(param(asset, "liquidationBonus", "1.05"));
    }
    lines.push(steth_price("00:01:00", "1"));
    // ETH in USD, for the leverage samples' common unit only (the pool reads ETH prices).
    lines.push(line(
        "00:01:00",
        r#"{"kind":"price","asset":"ETH","quote":"USD","price":"1000","feed":"fixture-usd","round":null}"#,
    ));
    lines.push(change("00:02:00", "deposit", LOOPER, "stETH", 40));
    lines.push(change("00:03:00", "borrow", LOOPER, "WETH", 30));
    lines.push(change("00:04:00", "deposit", MODEST, "stETH", 30));
    lines.push(change("00:05:00", "borrow", MODEST, "WETH", 10));
    lines.push(steth_price("01:00:00", "1"));
    lines.push(steth_price("02:00:00", slip));
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
    for line in lines {
        let event: Event = serde_json::from_str(&line).unwrap();
        writer.append(&event).unwrap();
    }
    writer.commit().unwrap();
    dir
}

const WINDOW: &str = "[window]\nfrom = \"2022-06-13T01:00:00Z\"\n";

fn replay(log: &Path, text: &str) -> Run {
    let scenario = Scenario::parse(text, "test.toml", "test", Path::new(".")).unwrap();
    replay_scenario(log, &EngineConfig::default(), &scenario).unwrap()
}

/// The first leverage sample of the pool.
fn pool_sample(run: &Run) -> &cascade_engine::run::LeverageSample {
    run.leverage_over_time
        .iter()
        .find(|s| s.scope == "aave-v2")
        .unwrap()
}

fn liquidated(run: &Run) -> Vec<(String, String)> {
    run.liquidations
        .iter()
        .map(|l| (l.account.to_string(), l.time.to_rfc3339()))
        .collect()
}

#[test]
fn a_looped_account_liquidated_in_the_base_run_survives_the_loop_cap() {
    let log = pool_log();
    let base = replay(log.path(), WINDOW);
    assert_eq!(
        liquidated(&base),
        [(LOOPER.to_owned(), "2022-06-13T02:00:00Z".to_owned())]
    );
    let capped = replay(log.path(), &format!("{WINDOW}[leverage]\nmax_loops = 1\n"));
    assert_eq!(liquidated(&capped), []);
    let scenario = capped.scenario.as_ref().unwrap();
    assert!(!scenario.baseline);
    assert_eq!(scenario.leverage.max_loops, Some(1));
    assert_eq!(
        scenario.changes,
        [
            "looped positions unwound to at most 1 loop at the window start",
            "loop cap: positions unwound at the window start: aave-v2 1",
        ]
    );
    // The leverage samples see the unwinding: at the end of the first hour of the window the
    // base run has one account at depth 3 and one at depth 1, the capped run two at depth 1.
    let depths = |run: &Run| {
        let sample = pool_sample(run);
        sample
            .loop_depth
            .iter()
            .filter(|b| b.accounts > 0)
            .map(|b| (b.range.to_string(), b.accounts))
            .collect::<Vec<_>>()
    };
    assert_eq!(depths(&base), [("1".to_owned(), 1), ("3".to_owned(), 1)]);
    assert_eq!(depths(&capped), [("1".to_owned(), 2)]);
}

#[test]
fn a_cap_of_zero_unwinds_every_loop_and_a_high_cap_changes_nothing() {
    let log = pool_log();
    let base = replay(log.path(), WINDOW);
    // Depth 3 is within a cap of 3: the run is the base run, with the cap's line saying so.
    let high = replay(log.path(), &format!("{WINDOW}[leverage]\nmax_loops = 3\n"));
    assert_eq!(high.liquidations, base.liquidations);
    assert_eq!(high.state_hash, base.state_hash);
    assert_eq!(
        high.scenario.as_ref().unwrap().changes[1],
        "loop cap: no position had more loops than the cap at the window start"
    );
    // At 0 both accounts lose every looped unit: the looper repays all 30 WETH and withdraws
    // 30 stETH (10 left, no debt), the modest one 10 and 10 (20 left, no debt).
    let none = replay(log.path(), &format!("{WINDOW}[leverage]\nmax_loops = 0\n"));
    assert_eq!(liquidated(&none), []);
    assert_eq!(
        none.scenario.as_ref().unwrap().changes[1],
        "loop cap: positions unwound at the window start: aave-v2 2"
    );
    let sample = pool_sample(&none);
    assert_eq!(sample.accounts_with_debt, 0);
}

#[test]
fn the_scenarios_correlation_groups_decide_what_is_a_loop() {
    let log = pool_log();
    // stETH in a group of its own: borrowing WETH against it is no loop any more, so a cap of 0
    // unwinds nothing and the looper is liquidated as in the base run; the samples count no
    // looped account.
    let strict = "[leverage.correlation]\nETH = [\"WETH\", \"ETH\"]\n";
    let run = replay(
        log.path(),
        &format!("{WINDOW}[leverage]\nmax_loops = 0\n{strict}"),
    );
    assert_eq!(
        liquidated(&run),
        [(LOOPER.to_owned(), "2022-06-13T02:00:00Z".to_owned())]
    );
    let sample = pool_sample(&run);
    assert_eq!((sample.accounts_with_debt, sample.looped_accounts), (2, 0));
    // With the default table both accounts are looped.
    let base = replay(log.path(), WINDOW);
    let sample = pool_sample(&base);
    assert_eq!((sample.accounts_with_debt, sample.looped_accounts), (2, 2));
}

/// `looped_threshold_cut_bps`: the thresholds of looped positions only are lowered at the window
/// start. Both accounts of the pool are looped (stETH against WETH, one correlation group).
///
/// - stETH slips to 0.97 ETH at 02:00. Without a cut: the looper's health is
///   40 * 0.97 * 0.8 / 30 = 1.03467, safe; nobody is liquidated. With a cut of 500 bps every
///   threshold of both accounts falls by 0.05 (stETH 0.8 -> 0.75, WETH 0.825 -> 0.775): at
///   01:00 the looper is at 40 * 1 * 0.75 / 30 = 1.0, not below 1, so it stands; at 02:00 it is
///   at 40 * 0.97 * 0.75 / 30 = 0.97: liquidated. The modest account: 29.1 * 0.75 / 10 = 2.1825,
///   safe.
/// - stETH slips to 0.92 (the base run above liquidates the looper at 02:00). With a cut of
///   700 bps the looper is at 40 * 0.73 / 30 = 0.97333 at the window start: liquidated at 01:00,
///   an hour earlier; the modest account, 30 * 0.73 / 10 = 2.19 and then 27.6 * 0.73 / 10 =
///   2.0148, stays.
#[test]
fn a_threshold_cut_on_looped_positions_liquidates_the_looper_only() {
    let log = pool_log_slipping_to("0.97");
    let base = replay(log.path(), WINDOW);
    assert_eq!(liquidated(&base), []);
    let cut = replay(
        log.path(),
        &format!("{WINDOW}[leverage]\nlooped_threshold_cut_bps = 500\n"),
    );
    assert_eq!(
        liquidated(&cut),
        [(LOOPER.to_owned(), "2022-06-13T02:00:00Z".to_owned())]
    );
    let scenario = cut.scenario.as_ref().unwrap();
    assert_eq!(scenario.leverage.looped_threshold_cut_bps, Some(500));
    assert_eq!(
        scenario.changes,
        [
            "liquidation thresholds of looped positions cut by 500 bps at the window start",
            "threshold cut: looped positions cut at the window start: aave-v2 2",
        ]
    );
    let log = pool_log();
    let earlier = replay(
        log.path(),
        &format!("{WINDOW}[leverage]\nlooped_threshold_cut_bps = 700\n"),
    );
    assert_eq!(
        liquidated(&earlier),
        [(LOOPER.to_owned(), "2022-06-13T01:00:00Z".to_owned())]
    );
    // stETH in a group of its own: neither account is looped, nothing is cut, and the run is
    // the base run's.
    let strict = replay(
        log.path(),
        &format!(
            "{WINDOW}[leverage]\nlooped_threshold_cut_bps = 700\n\
             [leverage.correlation]\nETH = [\"WETH\", \"ETH\"]\n"
        ),
    );
    assert_eq!(
        liquidated(&strict),
        [(LOOPER.to_owned(), "2022-06-13T02:00:00Z".to_owned())]
    );
    assert_eq!(
        strict.scenario.as_ref().unwrap().changes.last().unwrap(),
        "threshold cut: no looped position at the window start"
    );
}
