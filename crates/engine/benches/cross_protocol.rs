//! The cost of one market of three protocols against three markets of one: a synthetic Maker +
//! Aave v2 + Compound v2 market (`--overlap 0.3 --loops 0.2`) replayed from one log, next to
//! the three one-protocol markets with the same number of positions each, replayed one after
//! another. Target (issue #17): the three-protocol replay takes at most 1.5 times the sum of the
//! three (`docs/benchmarks.md`).
//!
//! Sizes as in `replay_scale`: `CASCADE_BENCH_SIZES=a,b` (total positions), default 1M;
//! `CASCADE_BENCH_SMOKE=1` shrinks them to 3k and the sampling to seconds.

use std::hint::black_box;
use std::path::Path;

mod support;
use support::smoke;

use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_engine::{Mode, ReplayOptions, replay_log};
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const PROTOCOLS: [Protocol; 3] = [Protocol::Maker, Protocol::AaveV2, Protocol::CompoundV2];

fn sizes() -> Vec<u32> {
    if let Some(list) = std::env::var_os("CASCADE_BENCH_SIZES") {
        return list
            .to_string_lossy()
            .split(',')
            .map(|n| n.trim().parse().expect("CASCADE_BENCH_SIZES holds counts"))
            .collect();
    }
    if smoke() {
        vec![3_000]
    } else {
        vec![1_000_000]
    }
}

fn replay(dir: &Path) -> u64 {
    let mut options = ReplayOptions::default();
    // Synthetic oracles publish on a Chainlink-like rule: the OSM reads them step-wise.
    MakerConfig::of_mut(&mut options.config.protocols).osm_sample = OsmSample::Step;
    let outcome = replay_log(dir, &options, Mode::Historical).expect("replays");
    black_box(outcome.run.state_hash.len());
    outcome.applied
}

fn write(config: &SynthConfig) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = synth::write_log(dir.path(), config, Timestamp(0)).expect("writes the market");
    (dir, written.summary.events)
}

fn bench_cross_protocol(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_protocol");
    support::configure_slow(&mut group);
    for accounts in sizes() {
        let mut multi = SynthConfig::new(PROTOCOLS[0], accounts, 1);
        multi.also = PROTOCOLS[1..].to_vec();
        multi.overlap_ppm = 300_000;
        multi.loops_ppm = 200_000;
        let (multi_dir, multi_events) = write(&multi);
        group.bench_with_input(
            BenchmarkId::new("three_protocols", accounts),
            multi_dir.path(),
            |b, dir| b.iter(|| assert_eq!(replay(dir), multi_events)),
        );
        // The same positions as three markets of one protocol each (a third each), with the
        // same loop share (Maker vaults never loop); no overlap, which needs several protocols
        // in one log.
        let singles: Vec<(tempfile::TempDir, u64)> = PROTOCOLS
            .iter()
            .map(|&protocol| {
                let mut single = SynthConfig::new(protocol, accounts / 3, 1);
                if protocol != Protocol::Maker {
                    single.loops_ppm = 200_000;
                }
                write(&single)
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::new("three_single_markets_summed", accounts),
            &singles,
            |b, singles| {
                b.iter(|| {
                    for (dir, events) in singles {
                        assert_eq!(replay(dir.path()), *events);
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_cross_protocol);
criterion_main!(benches);
