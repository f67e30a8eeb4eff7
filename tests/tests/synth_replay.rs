//! The synthetic generator and the engine check each other: every liquidation the generator's
//! keeper records, by its own integer model of each protocol, must be `explained` by the engine's
//! contract-mirroring rules, and no account may stay unsafe for long without being liquidated.

use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_engine::{Mode, ReplayOptions, replay_log};
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};

fn replay(protocol: Protocol, accounts: u32) -> cascade_engine::Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SynthConfig::new(protocol, accounts, 3);
    let written = synth::write_log(dir.path(), &config, Timestamp(0)).expect("writes the market");
    let mut options = ReplayOptions::default();
    // A Chainlink-like feed: the OSM reads the last answer at each poke, as on chain.
    MakerConfig::of_mut(&mut options.config.protocols).osm_sample = OsmSample::Step;
    let outcome = replay_log(dir.path(), &options, Mode::Historical).expect("replays");
    assert_eq!(outcome.applied, written.summary.events);
    outcome.run
}

#[test]
fn every_synthetic_liquidation_is_explained_by_the_engine() {
    for protocol in [
        Protocol::Maker,
        Protocol::AaveV3,
        Protocol::AaveV2,
        Protocol::CompoundV2,
    ] {
        let run = replay(protocol, 300);
        let totals = &run.totals;
        assert!(totals.liquidations > 20, "{protocol}: {totals:?}");
        let explained = totals.verdicts.get("explained").copied().unwrap_or(0);
        let others: Vec<String> = run
            .liquidations
            .iter()
            .filter(|l| l.verdict != Some(cascade_engine::Verdict::Explained))
            .take(3)
            .map(|l| format!("{} {:?} {:?}", l.account, l.verdict, l.note))
            .collect();
        assert_eq!(explained, totals.liquidations, "{protocol}: {others:?}");
        assert_eq!(
            totals.unsafe_unliquidated, 0,
            "{protocol}: accounts left unsafe"
        );
        assert!(
            totals.clamped.is_empty() && totals.skipped.is_empty(),
            "{protocol}: {totals:?}"
        );
    }
}
