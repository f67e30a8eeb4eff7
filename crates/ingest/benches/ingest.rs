//! Criterion benchmarks of ingest throughput, end to end: read, parse, order, de-duplicate, write
//! and commit a fresh log, then register the source in its catalog.
//!
//! Inputs: the Maker ETH-B export set from `../shared/data` (skipped with a notice when absent)
//! and a generated price CSV of one million rows (`symbol,timestamp,USD_price`, milliseconds,
//! ten symbols), written to a temp dir at bench time, read by `price-csv` and through the
//! CoinGecko mapping; and the same rows as Parquet (`Utf8`, `Int64`, `Decimal128(20, 8)`,
//! Snappy-compressed) read through the same mapping (issue #15: Parquet at least as fast per
//! row as the CSV path). Baseline in the same run: reading the same
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

use std::sync::Arc;

use arrow_array::{Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use cascade_ingest::{
    IngestOptions, Mapping, NoProgress, Source, ingest, maker_flipside, price_csv,
};
use cpu_time::CpuTime;
use criterion::measurement::Measurement;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

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

/// Writes the rows of [`write_prices`] as Parquet, in row groups of 128Ki rows: symbol as
/// `Utf8`, timestamp as `Int64` milliseconds, price as `Decimal128(20, 8)` (exact, as Dune and
/// cryo store token amounts).
fn write_prices_parquet(csv: &Path, path: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("USD_price", DataType::Decimal128(20, 8), false),
    ]));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let file = std::fs::File::create(path).expect("create the Parquet prices");
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(properties)).expect("Parquet writer");
    let mut reader = csv::Reader::from_path(csv).expect("read the generated prices");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    for chunk in rows.chunks(128 * 1024) {
        let symbols = StringArray::from_iter_values(chunk.iter().map(|r| r[0].to_owned()));
        let times = Int64Array::from_iter_values(chunk.iter().map(|r| r[1].parse().expect("ms")));
        let prices = Decimal128Array::from_iter_values(
            chunk
                .iter()
                .map(|r| r[2].replace('.', "").parse::<i128>().expect("price")),
        )
        .with_precision_and_scale(20, 8)
        .expect("decimal type");
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(symbols), Arc::new(times), Arc::new(prices)],
        )
        .expect("batch");
        writer.write(&batch).expect("write Parquet");
    }
    writer.close().expect("close Parquet");
}

fn coingecko_mapping() -> Mapping {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/mappings/coingecko-prices.toml");
    Mapping::from_file(&path).expect("the CoinGecko mapping")
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
    let mapped_source = prices.clone();
    inputs.push(Input {
        name: "price-mapping-csv-1m",
        files: vec![prices.clone()],
        rows: price_rows(),
        source: Box::new(move || Source::Csv {
            path: mapped_source.clone(),
            mapping: coingecko_mapping(),
        }),
    });
    let parquet = scratch.path().join("prices.parquet");
    write_prices_parquet(&prices, &parquet);
    let parquet_source = parquet.clone();
    inputs.push(Input {
        name: "price-parquet-1m",
        files: vec![parquet],
        rows: price_rows(),
        source: Box::new(move || Source::Parquet {
            path: parquet_source.clone(),
            mapping: coingecko_mapping(),
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
