//! Sweep throughput: a grid of counterfactual replays over the crash day of a synthetic Maker
//! market, with `--jobs 1` as the baseline of `--jobs 2` in the same run (the ratio is the
//! result to quote). Every point resumes the same window checkpoint (`scenario::prepare`, done
//! once outside the measurement) and replays the crash day with its own `mat`.
//!
//! Sizes: `CASCADE_BENCH_SWEEP_ACCOUNTS` (default 100,000) accounts and
//! `CASCADE_BENCH_SWEEP_POINTS` (default 8) points; `CASCADE_BENCH_SMOKE=1` shrinks them to 2,000
//! and 2 so CI checks in seconds that the benchmark runs. The full target of issue #5 (100 points
//! over a 1M-account crash day) takes minutes per sample; `docs/benchmarks.md` ("Sweep") measures
//! it with the CLI and gives the commands.

use std::hint::black_box;
use std::path::Path;

mod support;
use support::smoke;

use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Scenario, SweepAxis, prepare, run_sweep};
use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use cascade_log::LogReader;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn env_number(name: &str, default: u32, smoke_default: u32) -> u32 {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().expect("a whole number"),
        Err(_) if smoke() => smoke_default,
        Err(_) => default,
    }
}

/// The synthetic market's crash day: the second day of the log (the default shock starts one day
/// after the first event).
fn crash_day(dir: &Path) -> (Timestamp, Timestamp) {
    let reader = LogReader::open(dir).expect("opens");
    let first = reader
        .events(0)
        .next()
        .expect("the market has events")
        .expect("decodes")
        .time;
    (Timestamp(first.0 + 86_400), Timestamp(first.0 + 2 * 86_400))
}

fn bench_sweep(c: &mut Criterion) {
    let accounts = env_number("CASCADE_BENCH_SWEEP_ACCOUNTS", 100_000, 2_000);
    let points = env_number("CASCADE_BENCH_SWEEP_POINTS", 8, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SynthConfig::new(Protocol::Maker, accounts, 1);
    synth::write_log(dir.path(), &config, Timestamp(0)).expect("writes the market");
    let (from, to) = crash_day(dir.path());
    let text = format!(
        "name = \"bench\"\nwindow = {{ from = \"{}\", to = \"{}\" }}\n",
        from.to_rfc3339(),
        to.to_rfc3339()
    );
    let scenario = Scenario::parse(&text, "bench.toml", "bench", Path::new(".")).expect("parses");
    let last = 1300 + 5 * (points - 1);
    let axis = SweepAxis::parse(&format!(
        "maker.ETH-A.mat=1.300..{}.{:03}:0.005",
        last / 1000,
        last % 1000
    ))
    .expect("axis");
    assert_eq!(axis.values.len(), points as usize);
    let mut engine = EngineConfig::default();
    // Synthetic oracles publish on a Chainlink-like rule: the OSM reads them step-wise.
    MakerConfig::of_mut(&mut engine.protocols).osm_sample = OsmSample::Step;
    let prepared = prepare(dir.path(), &engine, &scenario).expect("prepares the window");
    let axes = [axis];

    let mut group = c.benchmark_group(format!("sweep/maker-{accounts}"));
    support::configure_slow(&mut group);
    group.throughput(Throughput::Elements(u64::from(points)));
    let mut reference = None;
    for jobs in [1usize, 2] {
        group.bench_with_input(BenchmarkId::new("jobs", jobs), &jobs, |b, &jobs| {
            b.iter(|| {
                let results = run_sweep(&prepared, &scenario, &axes, jobs).expect("sweeps");
                // The same results whatever the number of jobs.
                let hashes: Vec<String> = results.iter().map(|r| r.state_hash.clone()).collect();
                match &reference {
                    None => reference = Some(hashes),
                    Some(expected) => assert_eq!(&hashes, expected),
                }
                black_box(results)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sweep);
criterion_main!(benches);
