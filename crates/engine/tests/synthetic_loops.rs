//! The synthetic generator's loops are loops by the detector's definition, and
//! `leverage.max_loops` unwinds them.
//!
//! A looped synthetic position supplies its collateral asset, borrows the same asset and
//! re-supplies it, n times. Collateral and debt are then one asset at one price, so the figures
//! the detector derives from the rebuilt state follow from the position's token amounts alone:
//! supplied `S`, borrowed `B` (both in the asset's base units), equity `S - B`, effective leverage
//! `S / (S - B)`, looped debt `B` and depth `ceil(B / (S - B))`. The tests work these out from the
//! log's own events and compare them with the run's leverage samples, bucket by bucket.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Scenario, replay_scenario};
use cascade_engine::leverage::book::{DEPTH_NAMES, LEVERAGE_EDGES, LEVERAGE_NAMES};
use cascade_engine::run::{LeverageSample, Run};
use cascade_events::{Event, Id, Payload, Protocol, Timestamp, U256};
use cascade_ingest::synth::{self, SynthConfig, SynthSummary};
use cascade_log::LogReader;

/// The market opens its positions in the first 18 hours (three quarters of the one-day warm-up);
/// the window starts after that, so a cap finds every loop built.
const WINDOW: &str = "[window]\nfrom = \"2024-03-01T20:00:00Z\"\n";

/// A market with opening events only (no later activity moves the loops), written to a log.
fn market(
    protocol: Protocol,
    also: &[Protocol],
    loops_ppm: u32,
) -> (tempfile::TempDir, SynthSummary) {
    let mut config = SynthConfig::new(protocol, 600, 3);
    config.also = also.to_vec();
    config.loops_ppm = loops_ppm;
    config.events_per_account = 3;
    let dir = tempfile::tempdir().unwrap();
    let written = synth::write_log(dir.path(), &config, Timestamp(0)).unwrap();
    (dir, written.summary)
}

fn replay(log: &Path, text: &str) -> Run {
    let scenario = Scenario::parse(text, "test.toml", "test", Path::new(".")).unwrap();
    replay_scenario(log, &EngineConfig::default(), &scenario).unwrap()
}

/// Per looped position (one borrowing its collateral asset): supplied and borrowed, base units.
fn loops_in_log(log: &Path) -> BTreeMap<(Protocol, Id), (U256, U256)> {
    let reader = LogReader::open(log).unwrap();
    let mut assets: BTreeMap<(Protocol, Id), (Id, U256, U256, bool)> = BTreeMap::new();
    for event in reader.events(0) {
        let event: Event = event.unwrap();
        match &event.payload {
            Payload::Deposit(c) => {
                let entry = assets.entry((c.protocol, c.account)).or_insert((
                    c.asset,
                    U256::ZERO,
                    U256::ZERO,
                    false,
                ));
                entry.1 += c.amount.0;
            }
            Payload::Borrow(c) => {
                let entry = assets.get_mut(&(c.protocol, c.account)).unwrap();
                entry.2 += c.amount.0;
                entry.3 |= entry.0 == c.asset;
            }
            _ => {}
        }
    }
    assets
        .into_iter()
        .filter(|(_, (_, _, _, looped))| *looped)
        .map(|(key, (_, supplied, borrowed, _))| (key, (supplied, borrowed)))
        .collect()
}

/// The first sample of `scope` in the window.
fn sample<'a>(run: &'a Run, scope: &str) -> &'a LeverageSample {
    run.leverage_over_time
        .iter()
        .find(|s| s.scope == scope)
        .unwrap_or_else(|| panic!("no {scope} sample"))
}

fn nonempty(buckets: &[cascade_engine::run::CountBucket]) -> BTreeMap<String, u64> {
    buckets
        .iter()
        .filter(|b| b.accounts > 0)
        .map(|b| (b.range.to_string(), b.accounts))
        .collect()
}

/// Depth and leverage buckets of positions worked out from their token amounts.
fn expected(
    loops: &BTreeMap<(Protocol, Id), (U256, U256)>,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (mut depth, mut leverage) = (BTreeMap::new(), BTreeMap::new());
    for (supplied, borrowed) in loops.values() {
        let equity = *supplied - *borrowed;
        let rounds = usize::try_from(borrowed.div_ceil(equity)).unwrap();
        *depth
            .entry(DEPTH_NAMES[rounds.min(DEPTH_NAMES.len() - 1)].to_owned())
            .or_insert(0) += 1;
        let hundredths = *supplied * U256::from(100u8);
        let bucket =
            LEVERAGE_EDGES.partition_point(|edge| U256::from(*edge) * equity <= hundredths);
        *leverage
            .entry(LEVERAGE_NAMES[bucket].to_owned())
            .or_insert(0) += 1;
    }
    (depth, leverage)
}

#[test]
fn the_detector_finds_every_synthetic_loop_with_its_depth_and_leverage() {
    // Every Aave v3 position loops: the pool's samples are the loops alone.
    let (log, summary) = market(Protocol::AaveV3, &[], 1_000_000);
    let loops = loops_in_log(log.path());
    assert_eq!((summary.looped, loops.len()), (600, 600));
    let (depth, leverage) = expected(&loops);
    // Up to 4 rounds at a ratio below 0.81 never need more than 3 of equity's worth of debt.
    assert!(
        depth.keys().all(|d| ["1", "2", "3"].contains(&d.as_str())),
        "{depth:?}"
    );
    assert!(depth.len() >= 2, "{depth:?}");
    let run = replay(log.path(), WINDOW);
    let pool = sample(&run, "aave-v3");
    assert_eq!((pool.accounts_with_debt, pool.looped_accounts), (600, 600));
    assert_eq!(nonempty(&pool.loop_depth), depth);
    assert_eq!(nonempty(&pool.leverage), leverage);
    assert_eq!(
        run.liquidations.len(),
        0,
        "a loop of one asset has no price risk"
    );
}

#[test]
fn max_loops_unwinds_the_synthetic_loops() {
    let (log, summary) = market(Protocol::AaveV3, &[], 1_000_000);
    let loops = loops_in_log(log.path());
    let (depth, _) = expected(&loops);
    let deeper_than_one: u64 = depth
        .iter()
        .filter(|(d, _)| d.as_str() != "1")
        .map(|(_, n)| n)
        .sum();
    assert!(deeper_than_one > 0);
    // A cap of 1 unwinds the positions deeper than one round down to one.
    let one = replay(log.path(), &format!("{WINDOW}[leverage]\nmax_loops = 1\n"));
    assert_eq!(
        one.scenario.as_ref().unwrap().changes[1],
        format!("loop cap: positions unwound at the window start: aave-v3 {deeper_than_one}")
    );
    let pool = sample(&one, "aave-v3");
    assert_eq!(
        nonempty(&pool.loop_depth),
        BTreeMap::from([("1".to_owned(), u64::from(summary.looped))])
    );
    // A cap of 0 unwinds every loop: the debt is all looped, so none is left.
    let none = replay(log.path(), &format!("{WINDOW}[leverage]\nmax_loops = 0\n"));
    assert_eq!(
        none.scenario.as_ref().unwrap().changes[1],
        "loop cap: positions unwound at the window start: aave-v3 600"
    );
    let pool = sample(&none, "aave-v3");
    assert_eq!((pool.accounts_with_debt, pool.looped_accounts), (0, 0));
}

#[test]
fn a_three_protocol_market_loops_in_aave_and_compound_and_the_cap_unwinds_them() {
    let (log, summary) = market(
        Protocol::Maker,
        &[Protocol::AaveV2, Protocol::CompoundV2],
        300_000,
    );
    let loops = loops_in_log(log.path());
    assert_eq!(loops.len() as u32, summary.looped);
    let per_protocol =
        |protocol: Protocol| loops.keys().filter(|(p, _)| *p == protocol).count() as u64;
    let (aave, compound) = (
        per_protocol(Protocol::AaveV2),
        per_protocol(Protocol::CompoundV2),
    );
    assert!(aave > 0 && compound > 0, "{aave} {compound}");
    let run = replay(log.path(), WINDOW);
    // Plain positions borrow USDC or DAI against WETH or WBTC: only the loops are looped.
    assert_eq!(sample(&run, "aave-v2").looped_accounts, aave);
    assert_eq!(sample(&run, "compound-v2").looped_accounts, compound);
    assert_eq!(sample(&run, "maker").looped_accounts, 0);
    let none = replay(log.path(), &format!("{WINDOW}[leverage]\nmax_loops = 0\n"));
    assert_eq!(
        none.scenario.as_ref().unwrap().changes[1],
        format!(
            "loop cap: positions unwound at the window start: aave-v2 {aave}, compound-v2 {compound}"
        )
    );
    assert_eq!(sample(&none, "aave-v2").looped_accounts, 0);
    assert_eq!(sample(&none, "compound-v2").looped_accounts, 0);
    // A loop of one asset never falls below health 1 by price; cutting the thresholds of the
    // looped positions by 15 points (WETH 0.825 -> 0.675) puts those whose health after the
    // last re-supply was below 0.825 / 0.675 = 1.22 under 1 at the window start: liquidated, in
    // both protocols. Plain positions keep their thresholds.
    let looped_liquidated = |run: &Run| {
        let mut out = BTreeMap::<Protocol, u64>::new();
        for l in &run.liquidations {
            if loops.contains_key(&(l.protocol, l.account)) {
                *out.entry(l.protocol).or_default() += 1;
            }
        }
        out
    };
    assert_eq!(looped_liquidated(&run), BTreeMap::new());
    let cut = replay(
        log.path(),
        &format!("{WINDOW}[leverage]\nlooped_threshold_cut_bps = 1500\n"),
    );
    assert_eq!(
        cut.scenario.as_ref().unwrap().changes[1],
        format!(
            "threshold cut: looped positions cut at the window start: aave-v2 {aave}, \
             compound-v2 {compound}"
        )
    );
    let hit = looped_liquidated(&cut);
    assert!(
        hit.get(&Protocol::AaveV2).is_some_and(|&n| n > 0)
            && hit.get(&Protocol::CompoundV2).is_some_and(|&n| n > 0),
        "{hit:?}"
    );
}
