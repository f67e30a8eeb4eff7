//! Criterion benchmarks of ingest throughput, end to end: read, parse, order, de-duplicate, write
//! and commit a fresh log, then register the source in its catalog.
//!
//! Inputs: the Maker ETH-B export set from `../shared/data` (skipped with a notice when absent)
//! and a generated price CSV of one million rows (`symbol,timestamp,USD_price`, milliseconds,
//! ten symbols), written to a temp dir at bench time. Baseline in the same run: reading the same
//! bytes with `std::fs::read` (the page-cache limit). Each benchmark runs twice: in wall-clock
//! time, and in the benchmark thread's CPU time, which approximates an idle core on this shared
//! machine (it leaves out waiting for the disk and for other jobs). Target (issue #3): at least
//! 50 MB/s. Results and method: `docs/benchmarks.md`, section "Ingest".

#[path = "../../log/benches/support/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cascade_ingest::{IngestOptions, NoProgress, Source, ingest, maker_flipside, price_csv};
use cpu_time::CpuTime;
use criterion::measurement::Measurement;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Rows of the generated price CSV: a million in a measurement, ten thousand in CI's smoke run
/// (`CASCADE_BENCH_SMOKE=1`), which only proves the benchmark still works.
fn price_rows() -> u64 {
    if std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0") {
        10_000
    } else {
        1_000_000
    }
}

/// Writes the generated price CSV: ten symbols, one row per symbol per second, prices with up to
/// eight decimals. Deterministic.
fn write_prices(path: &Path) {
    let symbols = [
        "WETH", "WBTC", "DAI", "USDC", "USDT", "CRV", "LINK", "UNI", "AAVE", "MKR",
    ];
    let file = std::fs::File::create(path).expect("create the generated price file");
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "symbol,timestamp,USD_price").expect("write");
    for row in 0..price_rows() {
        let symbol = symbols[(row % 10) as usize];
        let millis = 1_609_459_200_000 + (row / 10) * 1_000 + row % 10;
        let cents = 100_000 + (row * 7_919) % 10_000_000;
        writeln!(
            out,
            "{symbol},{millis},{}.{:02}{:06}",
            cents / 100,
            cents % 100,
            row % 1_000_000
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

fn shared_maker() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/maker-ethb");
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping the ETH-B benchmark: ../shared/data not found");
        None
    }
}

/// Ingests `source()` into the fresh directory `log` (created by the caller, and removed after
/// the timed part by returning it).
fn run(log: tempfile::TempDir, source: &dyn Fn() -> Source) -> tempfile::TempDir {
    let summary = ingest(
        &log.path().join("log"),
        vec![source()],
        &IngestOptions::default(),
        &NoProgress,
    )
    .expect("ingest");
    black_box(summary.total_written());
    log
}

/// One benchmarked input: name, files (for the byte count and the read baseline), rows, and how
/// to describe it to `ingest`.
struct Input {
    name: &'static str,
    files: Vec<PathBuf>,
    rows: u64,
    source: Box<dyn Fn() -> Source>,
}

fn bench_wall(c: &mut Criterion) {
    bench(c, "wall");
}

fn bench_cpu(c: &mut Criterion<CpuTime>) {
    bench(c, "cpu");
}

fn bench<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let prices = scratch.path().join("prices.csv");
    write_prices(&prices);
    let mut inputs: Vec<Input> = Vec::new();
    let prices_source = prices.clone();
    inputs.push(Input {
        name: "price-csv-1m",
        files: vec![prices.clone()],
        rows: price_rows(),
        source: Box::new(move || Source::PriceCsv {
            path: prices_source.clone(),
            options: price_csv::Options::default(),
        }),
    });
    if let Some(folder) = shared_maker() {
        let files = maker_flipside::input_files(&folder)
            .expect("ETH-B files")
            .to_vec();
        let rows: u64 = files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("read").lines().count() as u64 - 1)
            .sum();
        inputs.push(Input {
            name: "maker-ethb",
            files,
            rows,
            source: Box::new(move || Source::MakerFlipside {
                folder: folder.clone(),
            }),
        });
    }

    for Input {
        name,
        files,
        rows,
        source,
    } in &inputs
    {
        let bytes: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).expect("stat").len())
            .sum();
        let mut group = c.benchmark_group(format!("ingest-{clock}/{name}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(20));
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(BenchmarkId::new("end-to-end", "bytes"), |b| {
            b.iter_batched(
                || tempfile::tempdir_in(scratch.path()).expect("temp log dir"),
                |log| run(log, source.as_ref()),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("baseline-fs-read", "bytes"), |b| {
            b.iter(|| {
                for file in files {
                    black_box(std::fs::read(file).expect("read"));
                }
            })
        });
        group.throughput(Throughput::Elements(*rows));
        group.bench_function(BenchmarkId::new("end-to-end", "rows"), |b| {
            b.iter_batched(
                || tempfile::tempdir_in(scratch.path()).expect("temp log dir"),
                |log| run(log, source.as_ref()),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group!(wall, bench_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime::new());
    targets = bench_cpu
}
criterion_main!(wall, cpu);
