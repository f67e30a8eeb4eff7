//! The cost of the hourly health and leverage samples (`health_over_time`,
//! `leverage_over_time`: `docs/leverage.md`): a synthetic market replayed in memory with its
//! samples, next to the same replay with totals only (no samples, ladder or overlap), whose
//! difference is what sampling costs. Markets: Maker alone (the ETH-B case, where sampling made a
//! debug replay 3x slower) and Maker + Aave v2 + Compound v2 with overlap and loops (the book's
//! owners and loops across protocols).
//!
//! `CASCADE_BENCH_SAMPLING_ACCOUNTS` sets the positions (default 10,000); `CASCADE_BENCH_SMOKE=1`
//! shrinks them to 2,000 and the sampling to seconds.

use std::hint::black_box;

mod support;
use support::smoke;

use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_engine::{Engine, EngineConfig, Mode};
use cascade_events::{Event, Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use cascade_log::LogReader;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// The market's events, decoded once.
fn events(config: &SynthConfig) -> Vec<Event> {
    let dir = tempfile::tempdir().expect("temp dir");
    synth::write_log(dir.path(), config, Timestamp(0)).expect("writes the market");
    let reader = LogReader::open(dir.path()).expect("opens the log");
    reader
        .events(0)
        .collect::<Result<Vec<_>, _>>()
        .expect("reads the log")
}

fn replay(events: &[Event], sampled: bool) -> usize {
    let mut config = EngineConfig::default();
    // Synthetic oracles publish on a Chainlink-like rule: the OSM reads them step-wise.
    MakerConfig::of_mut(&mut config.protocols).osm_sample = OsmSample::Step;
    let mut engine = Engine::new(config, Mode::Historical);
    if !sampled {
        engine.totals_only();
    }
    for event in events {
        engine.apply(event).expect("applies");
    }
    let run = engine.finish(Default::default()).expect("finishes");
    black_box(run.health_over_time.len() + run.leverage_over_time.len())
}

fn bench_sampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampling");
    support::configure_slow(&mut group);
    let accounts: u32 = match std::env::var("CASCADE_BENCH_SAMPLING_ACCOUNTS") {
        Ok(text) => text
            .parse()
            .expect("CASCADE_BENCH_SAMPLING_ACCOUNTS is a number"),
        Err(_) if smoke() => 2_000,
        Err(_) => 10_000,
    };
    let maker = SynthConfig::new(Protocol::Maker, accounts, 1);
    let mut three = SynthConfig::new(Protocol::Maker, accounts, 1);
    three.also = vec![Protocol::AaveV2, Protocol::CompoundV2];
    three.overlap_ppm = 300_000;
    three.loops_ppm = 200_000;
    for (name, config) in [("maker", maker), ("three_protocols", three)] {
        let events = events(&config);
        assert!(replay(&events, true) > 0, "the replay takes samples");
        for (mode, sampled) in [("sampled", true), ("totals_only", false)] {
            group.bench_with_input(
                BenchmarkId::new(format!("{name}_{mode}"), accounts),
                &events,
                |b, events| b.iter(|| replay(events, sampled)),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_sampling);
criterion_main!(benches);
