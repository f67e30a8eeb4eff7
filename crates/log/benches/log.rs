//! Criterion benchmarks of the log: append throughput (buffered, one commit per 10k batch) and
//! sequential read throughput from the page cache, next to the raw `read()` of the same files.
//!
//! Targets (issue #2): append >= 5 million 64-byte events/s; read with CRC check >= 20 million
//! events/s. Results and method: `docs/benchmarks.md`, section "Log".

#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cascade_events::{
    Address, Amount, Event, Id, Payload, PositionChange, Protocol, Timestamp, encode,
};
use cascade_log::{LogReader, LogWriter, WriterOptions};
use cpu_time::CpuTime;
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: u64 = 10_000;

/// A smoke run (`--quick`, criterion's `--test`, or `CASCADE_BENCH_SMOKE` set, as CI's
/// `tests/run.sh` does) must only prove the benchmarks still work: small logs, short measurements.
fn quick() -> bool {
    std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0")
        || std::env::args().any(|arg| arg == "--quick" || arg == "--test")
}

/// Records in the 64-byte read benchmark (168 MB of segments in a full run).
fn read_records() -> u64 {
    if quick() { 100_000 } else { 2_000_000 }
}

/// Events in the decode benchmark.
fn decode_events() -> u64 {
    if quick() { 20_000 } else { 500_000 }
}

/// How long each benchmark measures (criterion's default in the smoke run).
fn measure<M: Measurement>(group: &mut criterion::BenchmarkGroup<'_, M>, seconds: u64) {
    if quick() {
        group.warm_up_time(Duration::from_millis(200));
    } else {
        group.measurement_time(Duration::from_secs(seconds));
    }
}

fn payload64(i: u64) -> [u8; 64] {
    let mut payload = [0u8; 64];
    for (chunk, word) in payload.chunks_exact_mut(8).zip(i..) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    payload
}

/// A realistic event: an Aave deposit with address ids (about 150 encoded bytes).
fn event(i: u64) -> Event {
    Event {
        seq: 0,
        chain_id: 1,
        block: Some(14_000_000 + i / 50),
        time: Timestamp(1_650_000_000 + (i / 50) as i64 * 12),
        tx_index: Some((i % 50) as u32),
        log_index: Some((i % 7) as u32),
        tx_hash: None,
        source: 0,
        payload: Payload::Deposit(Box::new(PositionChange {
            protocol: Protocol::AaveV2,
            market: Id::Address(Address::repeat_byte(0xb5)),
            account: Id::Number(i % 100_000),
            asset: Id::Address(Address::repeat_byte(0xc0)),
            amount: Amount::from_units(u128::from(i) * 1_000_000_007),
            shares: None,
        })),
    }
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    group.throughput(Throughput::Elements(BATCH));
    measure(&mut group, 10);
    let payloads: Vec<[u8; 64]> = (0..BATCH).map(payload64).collect();
    group.bench_function("64B_records_batch_10k_commit", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (mut writer, _) =
                LogWriter::open(dir.path(), WriterOptions::default()).expect("open log");
            let started = Instant::now();
            for _ in 0..iters {
                for payload in &payloads {
                    writer.append_raw(payload).expect("append");
                }
                writer.commit().expect("commit");
            }
            started.elapsed()
        });
    });
    // The device's limit for this workload: the same bytes (10k frames of 84 bytes) written with
    // one write() and made durable with one fdatasync per batch, no framing or checks.
    let framed_batch = vec![0x5au8; BATCH as usize * (64 + cascade_log::format::RECORD_HEADER_LEN)];
    group.bench_function("raw_write_fdatasync_same_bytes", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut file = File::create(dir.path().join("raw")).expect("create");
            let started = Instant::now();
            for _ in 0..iters {
                file.write_all(&framed_batch).expect("write");
                file.sync_data().expect("fdatasync");
            }
            started.elapsed()
        });
    });
    // The same appends without the commit: CPU and page-cache cost only, to separate it from the
    // fsync latency of the disk (which other processes on the machine share).
    group.bench_function("64B_records_batch_10k_no_commit", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (mut writer, _) =
                LogWriter::open(dir.path(), WriterOptions::default()).expect("open log");
            let started = Instant::now();
            for _ in 0..iters {
                for payload in &payloads {
                    writer.append_raw(payload).expect("append");
                }
            }
            started.elapsed()
        });
    });
    let events: Vec<Event> = (0..BATCH).map(event).collect();
    group.bench_function("events_encode_batch_10k_commit", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (mut writer, _) =
                LogWriter::open(dir.path(), WriterOptions::default()).expect("open log");
            let started = Instant::now();
            for _ in 0..iters {
                for event in &events {
                    writer.append(event).expect("append");
                }
                writer.commit().expect("commit");
            }
            started.elapsed()
        });
    });
    group.finish();
}

fn write_log(dir: &Path, count: u64, mut record: impl FnMut(u64) -> Vec<u8>) -> Vec<PathBuf> {
    let (mut writer, _) = LogWriter::open(dir, WriterOptions::default()).expect("open log");
    for i in 0..count {
        writer.append_raw(&record(i)).expect("append");
    }
    writer.commit().expect("commit");
    drop(writer);
    LogReader::open(dir).expect("reader").segment_paths()
}

/// Reads whole files with `read()` into a reused 1 MiB buffer: the physical limit for a reader.
fn raw_read(paths: &[PathBuf], buffer: &mut [u8]) -> u64 {
    let mut total = 0u64;
    for path in paths {
        let mut file = File::open(path).expect("open segment");
        loop {
            let got = file.read(buffer).expect("read");
            if got == 0 {
                break;
            }
            total += u64::from(black_box(buffer[got - 1])) + got as u64;
        }
    }
    total
}

/// Benchmarks raw `read()` of a log's files next to reading its records with every check, so the
/// ratio between them is measured in one run.
fn bench_raw_and_checked<M: Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    reader: &LogReader,
    paths: &[PathBuf],
    buffer: &mut [u8],
) {
    // Warm the page cache.
    raw_read(paths, buffer);
    group.bench_function("raw_read_same_files", |b| {
        b.iter(|| black_box(raw_read(paths, buffer)));
    });
    group.bench_function("for_each_record_crc_checked", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            reader
                .for_each_record(0, |seq, payload| sum += seq ^ u64::from(payload[0]))
                .expect("read");
            black_box(sum)
        });
    });
}

fn bench_read<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let mut buffer = vec![0u8; 1 << 20];
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = write_log(dir.path(), read_records(), |i| payload64(i).to_vec());
    let reader = LogReader::open(dir.path()).expect("reader");
    let mut group = c.benchmark_group(format!("log_read_64B_{clock}"));
    group.throughput(Throughput::Elements(read_records()));
    measure(&mut group, 6);
    bench_raw_and_checked(&mut group, &reader, &paths, &mut buffer);
    group.bench_function("records_iterator_owned", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for record in reader.records(0) {
                let (seq, payload) = record.expect("read");
                sum += seq ^ payload.len() as u64;
            }
            black_box(sum)
        });
    });
    group.finish();

    let events_dir = tempfile::tempdir().expect("temp dir");
    let event_paths = write_log(events_dir.path(), decode_events(), |i| encode(&event(i)));
    let events_reader = LogReader::open(events_dir.path()).expect("reader");
    let mut group = c.benchmark_group(format!("log_read_events_{clock}"));
    group.throughput(Throughput::Elements(decode_events()));
    measure(&mut group, 6);
    bench_raw_and_checked(&mut group, &events_reader, &event_paths, &mut buffer);
    group.bench_function("events_full_decode", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for event in events_reader.events(0) {
                sum += event.expect("decode").time.0 as u64;
            }
            black_box(sum)
        });
    });
    group.finish();
}

fn bench_read_wall(c: &mut Criterion) {
    bench_read(c, "wall");
}

fn bench_read_cpu(c: &mut Criterion<CpuTime>) {
    bench_read(c, "cpu");
}

/// The writer's own cost (framing, CRCs, buffered write() into the page cache), in CPU time.
fn bench_append_cpu(c: &mut Criterion<CpuTime>) {
    let mut group = c.benchmark_group("log_append_cpu");
    group.throughput(Throughput::Elements(BATCH));
    measure(&mut group, 5);
    let payloads: Vec<[u8; 64]> = (0..BATCH).map(payload64).collect();
    group.bench_function("64B_records_batch_10k_no_commit", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (mut writer, _) =
                LogWriter::open(dir.path(), WriterOptions::default()).expect("open log");
            let clock = CpuTime::new();
            let started = clock.start();
            for _ in 0..iters {
                for payload in &payloads {
                    writer.append_raw(payload).expect("append");
                }
            }
            clock.end(started)
        });
    });
    group.finish();
}

/// Full runs draw criterion's HTML plots; the smoke run skips them (they take most of its time).
fn config() -> Criterion {
    let config = Criterion::default();
    if quick() {
        config.without_plots()
    } else {
        config
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_append, bench_read_wall
}
criterion_group! {
    name = cpu_benches;
    config = config().with_measurement(CpuTime::new());
    targets = bench_append_cpu, bench_read_cpu
}
criterion_main!(benches, cpu_benches);
