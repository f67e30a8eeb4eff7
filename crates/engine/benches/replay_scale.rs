//! How replay cost grows with market size: synthetic Maker, Aave v3 and Compound v2 markets of
//! 10k, 100k and 1M accounts (`cascade_ingest::synth`), replayed end to end from the log in
//! historical mode, both as a run file needs it (`replay`: with the hourly samples) and as
//! `cascade replay` without `--out` does (`replay_totals`: totals only), next to the baseline of
//! reading and decoding the same log without the engine. The ratio replay / baseline
//! is the engine's own cost; the three sizes give the slope reported in `docs/benchmarks.md`.
//!
//! Also measured: the generator itself (into a null sink), so the suite shows what building a
//! market of each size costs.
//!
//! Set `CASCADE_BENCH_SMOKE=1` to shrink the sizes (500, 1k, 2k accounts) and the sampling, so
//! CI checks in seconds that the benchmark still builds and runs; `CASCADE_BENCH_SIZES=a,b,c`
//! picks other sizes. Targets: at least 2 million events per second on one core at 1M accounts
//! (issue #4, Maker; issue #14, Aave v3 and Compound v2, with a growth slope of at most 1.1 from
//! 10k to 1M).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_engine::{Mode, ReplayOptions, replay_log};
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use cascade_log::LogReader;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

fn smoke() -> bool {
    std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0")
}

/// Account counts: `CASCADE_BENCH_SIZES` (comma-separated) if set, else the smoke or full set.
fn sizes() -> Vec<u32> {
    if let Some(list) = std::env::var_os("CASCADE_BENCH_SIZES") {
        let list = list.to_string_lossy().into_owned();
        return list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("CASCADE_BENCH_SIZES holds account counts")
            })
            .collect();
    }
    if smoke() {
        vec![500, 1_000, 2_000]
    } else {
        vec![10_000, 100_000, 1_000_000]
    }
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sampling_mode(SamplingMode::Flat);
    if smoke() {
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(50));
        group.measurement_time(Duration::from_millis(300));
    } else {
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(20));
    }
}

fn options() -> ReplayOptions {
    let mut options = ReplayOptions::default();
    // Synthetic oracles publish on a Chainlink-like rule: the OSM reads them step-wise.
    MakerConfig::of_mut(&mut options.config.protocols).osm_sample = OsmSample::Step;
    options
}

/// `totals_only`: what `cascade replay` without `--out` builds (no hourly samples, books or
/// accounts); otherwise everything a run file needs.
fn replay_events(dir: &Path, totals_only: bool) -> u64 {
    let mut options = options();
    options.totals_only = totals_only;
    let outcome = replay_log(dir, &options, Mode::Historical).expect("replays");
    black_box(outcome.run.state_hash.len());
    outcome.applied
}

fn read_events(dir: &Path) -> u64 {
    let reader = LogReader::open(dir).expect("opens");
    let mut count = 0;
    for event in reader.events(0) {
        black_box(event.expect("decodes"));
        count += 1;
    }
    count
}

fn bench_replay_scale(c: &mut Criterion) {
    for protocol in [Protocol::Maker, Protocol::AaveV3, Protocol::CompoundV2] {
        let mut group = c.benchmark_group(format!("replay_scale/{protocol}"));
        configure(&mut group);
        for accounts in sizes() {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = SynthConfig::new(protocol, accounts, 1);
            let written =
                synth::write_log(dir.path(), &config, Timestamp(0)).expect("writes the market");
            let events = written.summary.events;
            group.throughput(Throughput::Elements(events));
            group.bench_with_input(
                BenchmarkId::new("read_decode", accounts),
                dir.path(),
                |b, dir| b.iter(|| assert_eq!(read_events(dir), events)),
            );
            group.bench_with_input(
                BenchmarkId::new("replay", accounts),
                dir.path(),
                |b, dir| b.iter(|| assert_eq!(replay_events(dir, false), events)),
            );
            group.bench_with_input(
                BenchmarkId::new("replay_totals", accounts),
                dir.path(),
                |b, dir| b.iter(|| assert_eq!(replay_events(dir, true), events)),
            );
        }
        group.finish();
    }
}

fn bench_generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("synth_generate/maker");
    configure(&mut group);
    for accounts in sizes() {
        let config = SynthConfig::new(Protocol::Maker, accounts, 1);
        let events = synth::generate(&config, &mut |_| Ok(()))
            .expect("generates")
            .events;
        group.throughput(Throughput::Elements(events));
        group.bench_with_input(
            BenchmarkId::from_parameter(accounts),
            &config,
            |b, config| {
                b.iter(|| {
                    synth::generate(config, &mut |event| {
                        black_box(event);
                        Ok(())
                    })
                    .expect("generates")
                })
            },
        );
    }
    group.finish();
}

fn criterion() -> Criterion {
    let criterion = Criterion::default();
    if smoke() {
        criterion.without_plots()
    } else {
        criterion
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bench_replay_scale, bench_generate
}
criterion_main!(benches);
