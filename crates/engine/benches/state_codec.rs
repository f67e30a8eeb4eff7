//! Hand-written state codec against a derived one (issue #14: "state codecs derived where a
//! hand-written one is not faster by measurement").
//!
//! The engine's checkpoints and state hashes are written by hand through
//! `cascade_engine::state::{StateWriter, StateReader}`. Most of a large state's bytes are its
//! position rows: Maker's vault row (the account id, `ink`, `art` and a flags byte, written in
//! account order by `protocols/maker/codec.rs`) has the same shape as a lending account's rows.
//! This benchmark encodes and decodes one million such rows both ways:
//! - `hand_written`: the `StateWriter` / `StateReader` calls the models make;
//! - `derived`: a `#[derive(SchemaWrite, SchemaRead)]` row of the events crate's wincode types
//!   (`Id`, `Amount`), through `wincode::serialize_into` / `wincode::deserialize`, as a derived
//!   state codec would write it.
//!
//! Both start from rows already in account order, so neither pays for the sort a canonical
//! encoding needs (the in-memory vault table is slot-ordered; a derive of it would not be
//! canonical). `CASCADE_BENCH_SMOKE=1` shrinks the rows to 1,000.

use std::hint::black_box;

use cascade_engine::state::{StateReader, StateWriter};
use cascade_events::{Address, Amount, Id, U256};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wincode::{SchemaRead, SchemaWrite};

mod support;
use support::smoke;

/// One position row as a derived codec would hold it.
#[derive(Clone, PartialEq, Eq, Debug, SchemaWrite, SchemaRead)]
struct Row {
    account: Id,
    ink: Amount,
    art: Amount,
    flags: u8,
}

fn rows() -> Vec<Row> {
    let count: u64 = if smoke() { 1_000 } else { 1_000_000 };
    // A fixed linear congruential sequence: amounts of realistic width (up to about 1e24 wei
    // collateral, 1e26 debt) without a random-number dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state
    };
    (0..count)
        .map(|n| {
            let mut address = [0u8; 20];
            address[..8].copy_from_slice(&next().to_be_bytes());
            address[12..].copy_from_slice(&n.to_be_bytes());
            Row {
                account: Id::Address(Address::new(address)),
                ink: Amount(U256::from(next()) * U256::from(next() >> 20)),
                art: Amount(U256::from(next()) * U256::from(next() >> 10)),
                flags: (next() & 3) as u8,
            }
        })
        .collect()
}

fn encode_by_hand(rows: &[Row]) -> Vec<u8> {
    let mut out = StateWriter::new();
    out.count(rows.len());
    for row in rows {
        out.id(&row.account);
        out.u256(row.ink.0);
        out.u256(row.art.0);
        out.u8(row.flags);
    }
    out.into_bytes()
}

fn decode_by_hand(bytes: &[u8]) -> Vec<Row> {
    let mut input = StateReader::new(bytes);
    let count = input.count().expect("a count");
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        rows.push(Row {
            account: input.id().expect("an id"),
            ink: Amount(input.u256().expect("ink")),
            art: Amount(input.u256().expect("art")),
            flags: input.u8().expect("flags"),
        });
    }
    input.finish().expect("every byte read");
    rows
}

/// wincode's default configuration bounds a sequence's preallocation at 4 MiB, a guard for
/// untrusted input; a state codec reads its own checkpoints, whose rows run to millions.
fn config() -> impl wincode::config::Config {
    wincode::config::Configuration::default().with_preallocation_size_limit::<{ 1 << 30 }>()
}

fn encode_derived(rows: &Vec<Row>) -> Vec<u8> {
    let mut out = Vec::new();
    wincode::config::serialize_into(&mut out, rows, config()).expect("serializes");
    out
}

fn decode_derived(bytes: &[u8]) -> Vec<Row> {
    wincode::config::deserialize(bytes, config()).expect("deserializes")
}

fn bench_state_codec(c: &mut Criterion) {
    let rows = rows();
    let by_hand = encode_by_hand(&rows);
    let derived = encode_derived(&rows);
    // Each codec reads back what it wrote: the comparison is of two working codecs.
    assert_eq!(decode_by_hand(&by_hand), rows);
    assert_eq!(decode_derived(&derived), rows);
    eprintln!(
        "state_codec: {} rows, hand-written {} bytes, derived {} bytes",
        rows.len(),
        by_hand.len(),
        derived.len()
    );
    let mut group = c.benchmark_group("state_codec/position_rows");
    support::configure_slow(&mut group);
    group.throughput(Throughput::Elements(rows.len() as u64));
    let size = rows.len();
    group.bench_with_input(
        BenchmarkId::new("hand_written_encode", size),
        &rows,
        |b, rows| b.iter(|| black_box(encode_by_hand(rows))),
    );
    group.bench_with_input(
        BenchmarkId::new("derived_encode", size),
        &rows,
        |b, rows| b.iter(|| black_box(encode_derived(rows))),
    );
    group.bench_with_input(
        BenchmarkId::new("hand_written_decode", size),
        &by_hand,
        |b, bytes| b.iter(|| black_box(decode_by_hand(bytes))),
    );
    group.bench_with_input(
        BenchmarkId::new("derived_decode", size),
        &derived,
        |b, bytes| b.iter(|| black_box(decode_derived(bytes))),
    );
    group.finish();
}

criterion_group!(benches, bench_state_codec);
criterion_main!(benches);
