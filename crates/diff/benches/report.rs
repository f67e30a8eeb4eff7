//! `cascade report` on a large run (issue 16: the report of a 300,000-account market renders in
//! under 10 s and its HTML stays under 5 MB). The run is the historical replay of a synthetic
//! Aave v3 market (`cascade synth --protocol aave-v3 --accounts N --seed 7`), generated, replayed
//! and parsed once; the benchmark times building the report (every chart, table and the page)
//! from the parsed run, as `cascade report RUN` does after reading it. `CASCADE_BENCH_SMOKE=1`
//! runs 3,000 accounts in seconds; `CASCADE_BENCH_ACCOUNTS` picks another size.

// The engine's slow benchmarks' switch and sampling, shared rather than copied.
#[path = "../../engine/benches/support/mod.rs"]
mod support;

use std::hint::black_box;

use cascade_diff::{RunFile, build_report};
use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_engine::{Mode, ReplayOptions, replay_log};
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use support::{configure_slow, smoke};

/// The HTML size the issue allows.
const MAX_HTML_BYTES: usize = 5_000_000;

fn accounts() -> u32 {
    match std::env::var("CASCADE_BENCH_ACCOUNTS") {
        Ok(text) => text.parse().expect("CASCADE_BENCH_ACCOUNTS is a number"),
        Err(_) if smoke() => 3_000,
        Err(_) => 300_000,
    }
}

/// The market's historical run, as `cascade replay DIR --out run.json` writes it, read back.
fn large_run(accounts: u32) -> RunFile {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SynthConfig::new(Protocol::AaveV3, accounts, 7);
    synth::write_log(dir.path(), &config, Timestamp(0)).expect("writes the market");
    let mut options = ReplayOptions::default();
    // Synthetic oracles publish on a Chainlink-like rule: the OSM reads them step-wise.
    MakerConfig::of_mut(&mut options.config.protocols).osm_sample = OsmSample::Step;
    let outcome = replay_log(dir.path(), &options, Mode::Historical).expect("replays");
    RunFile::from_slice(&outcome.run.to_json(), "run.json").expect("reads its own run")
}

fn bench_report(c: &mut Criterion) {
    let accounts = accounts();
    let runs = [large_run(accounts)];
    let report = build_report(&runs, None, "report").expect("builds");
    eprintln!(
        "report of a {accounts}-account Aave v3 run: {} liquidations, {} timeline points, {} charts, HTML {} bytes",
        runs[0].liquidations.len(),
        runs[0].timeline.len(),
        report.charts.len(),
        report.html.len()
    );
    assert!(
        report.html.len() < MAX_HTML_BYTES,
        "HTML of {} bytes",
        report.html.len()
    );
    let mut group = c.benchmark_group("report");
    configure_slow(&mut group);
    group.bench_function(format!("aave_v3_accounts/{accounts}"), |b| {
        b.iter(|| {
            black_box(
                build_report(&runs, None, "report")
                    .expect("builds")
                    .html
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_report);
criterion_main!(benches);
