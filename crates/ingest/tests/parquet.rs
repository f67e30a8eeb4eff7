//! A Parquet file read through a mapping gives the events its CSV twin gives: the Aave v2 export
//! written to Parquet by the test itself (integer columns typed `Int64`, the rest strings, blank
//! cells null) equals the CSV ingest event for event, on the hand-made fixture always and on the
//! real export when `../shared/data` is there; and prices typed `Int64` milliseconds and
//! `Decimal128`, with dictionary-encoded symbols, good and bad, give the events and the rejected
//! rows (with their reasons) of the same rows written as text.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod context;
    pub mod data;
    pub mod fixtures;
    pub mod log;
}

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, Decimal128Array, DictionaryArray, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use cascade_ingest::{Mapping, Position, Source, SourceBatch, mapped_csv, mapped_parquet};
use common::{context::context, data::shared_data, fixtures::fixtures, log::log_of};
use parquet::arrow::ArrowWriter;

/// Writes `csv` as Parquet at `out`: a column whose non-blank cells are all `i64` integers
/// becomes `Int64`, any other a string column; blank cells become nulls.
fn csv_to_parquet(csv: &Path, out: &Path) {
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (index, name) in header.iter().enumerate() {
        let cells: Vec<Option<&str>> = rows
            .iter()
            .map(|row| Some(row.get(index).unwrap_or("")).filter(|c| !c.trim().is_empty()))
            .collect();
        let integers: Option<Vec<Option<i64>>> = cells
            .iter()
            .map(|cell| match cell {
                None => Some(None),
                Some(text) => text.parse::<i64>().ok().map(Some),
            })
            .collect();
        match integers {
            Some(values) if cells.iter().any(Option::is_some) => {
                fields.push(Field::new(name, DataType::Int64, true));
                columns.push(Arc::new(Int64Array::from(values)));
            }
            _ => {
                fields.push(Field::new(name, DataType::Utf8, true));
                columns.push(Arc::new(StringArray::from(cells)));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut writer = ArrowWriter::try_new(File::create(out).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// The Aave mapping, its `reserves` lookup read from `folder` whatever file it is applied to.
fn aave_mapping(folder: &Path) -> Mapping {
    let mut mapping =
        Mapping::from_file(&fixtures("mappings").join("aave-v2-liquidations.toml")).unwrap();
    mapping
        .set_lookup_path("reserves", &folder.join("tokens.csv"))
        .unwrap();
    mapping
}

/// Reads the export both ways and asserts they agree: events, counters, rows, rejected rows
/// (a CSV line is the Parquet row plus one, for the header).
fn parquet_equals_csv(folder: &Path) -> (SourceBatch, PathBuf, tempfile::TempDir) {
    let csv = folder.join("liquidations.csv");
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("liquidations.parquet");
    csv_to_parquet(&csv, &parquet);
    let mapping = aave_mapping(folder);
    let from_csv = mapped_csv::read(std::slice::from_ref(&csv), &mapping, &context(true)).unwrap();
    let from_parquet =
        mapped_parquet::read(std::slice::from_ref(&parquet), &mapping, &context(true)).unwrap();
    let (got, expected) = (from_parquet.events.to_vec(), from_csv.events.to_vec());
    assert_eq!(got.len(), expected.len());
    for (index, (p, c)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(p, c, "event {index}");
    }
    let (p, c) = (&from_parquet.report, &from_csv.report);
    assert_eq!(p.rows_read, c.rows_read);
    assert_eq!(p.duplicates, c.duplicates);
    assert_eq!(p.counters, c.counters);
    let rejected = |report: &cascade_ingest::SourceReport, header: u64| {
        report
            .rejected
            .iter()
            .map(|r| {
                let at = match r.position {
                    Position::Line(n) | Position::Row(n) | Position::Entry(n) => n,
                };
                (at + header, r.column.clone(), r.value.clone())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rejected(p, 1), rejected(c, 0));
    assert!(
        p.rejected
            .iter()
            .all(|r| matches!(r.position, Position::Row(_)))
    );
    (from_parquet, parquet, dir)
}

#[test]
fn the_aave_fixture_through_parquet_equals_its_csv() {
    let folder = fixtures("ingest/aave-v2");
    let (batch, parquet, _dir) = parquet_equals_csv(&folder);
    // 4 reserves x 3 parameters, then 9 liquidations with 12 prices (as the CSV gives).
    assert_eq!(batch.events.len(), 12 + 9 + 12);
    // Through a log too: the same events in the same order.
    let csv_log = log_of(
        Source::Csv {
            path: folder.join("liquidations.csv"),
            mapping: aave_mapping(&folder),
        },
        true,
    );
    let parquet_log = log_of(
        Source::Parquet {
            path: parquet,
            mapping: aave_mapping(&folder),
        },
        true,
    );
    assert_eq!(parquet_log, csv_log);
}

#[test]
fn the_real_aave_export_through_parquet_equals_its_csv() {
    let Some(folder) = shared_data("aave-v2-liquidations") else {
        return;
    };
    let (batch, _, _dir) = parquet_equals_csv(&folder);
    // docs/ingest.md: 31,827 events, line 7,411 (UST) rejected: Parquet row 7,410.
    assert_eq!(batch.events.len(), 31_827);
    assert_eq!(batch.report.rejected.len(), 1);
    assert_eq!(batch.report.rejected[0].position, Position::Row(7_410));
}

/// `value` x 10^-`scale` written as `Decimal128` renders it: every fraction digit.
fn decimal_text(value: i128, scale: u32) -> String {
    let (sign, magnitude) = (if value < 0 { "-" } else { "" }, value.unsigned_abs());
    let unit = 10u128.pow(scale);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / unit,
        magnitude % unit,
        width = scale as usize
    )
}

#[test]
fn typed_prices_convert_and_fail_as_their_text() {
    const SCALE: u32 = 20;
    let rows: &[(Option<&str>, Option<i64>, Option<i128>)] = &[
        (
            Some("WETH"),
            Some(1_609_459_200_123),
            Some(7_345_123_456_789 * 10i128.pow(12)),
        ),
        (
            Some("DAI"),
            Some(1_609_459_200_999),
            Some(10i128.pow(SCALE)),
        ),
        // Too precise for 18 decimals, zero, negative, blank: rejected as the text would be.
        (Some("USDC"), Some(1_609_459_201_000), Some(1)),
        (Some("USDT"), Some(1_609_459_201_000), Some(0)),
        (
            Some("UNI"),
            Some(1_609_459_201_000),
            Some(-5 * 10i128.pow(SCALE)),
        ),
        (Some("MKR"), Some(1_609_459_201_000), None),
        // Seconds after milliseconds, a blank time, a time out of range, a blank symbol.
        (Some("CRV"), Some(1_609_459_201), Some(10i128.pow(SCALE))),
        (Some("LINK"), None, Some(10i128.pow(SCALE))),
        (
            Some("AAVE"),
            Some(9_999_999_999_999),
            Some(10i128.pow(SCALE)),
        ),
        (None, Some(1_609_459_202_000), Some(10i128.pow(SCALE))),
        // The largest price Decimal128(38, 20) holds, exactly.
        (
            Some("WBTC"),
            Some(1_609_459_203_000),
            Some(10i128.pow(38) - 100),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("prices.csv");
    let mut text = String::from("symbol,timestamp,USD_price\n");
    for (symbol, time, price) in rows {
        text.push_str(&format!(
            "{},{},{}\n",
            symbol.unwrap_or(""),
            time.map_or(String::new(), |t| t.to_string()),
            price.map_or(String::new(), |p| decimal_text(p, SCALE))
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new_dictionary("symbol", DataType::Int32, DataType::Utf8, true),
        Field::new("timestamp", DataType::Int64, true),
        Field::new("USD_price", DataType::Decimal128(38, SCALE as i8), true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(DictionaryArray::<Int32Type>::from_iter(
            rows.iter().map(|r| r.0),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
        Arc::new(
            Decimal128Array::from_iter(rows.iter().map(|r| r.2))
                .with_precision_and_scale(38, SCALE as i8)
                .unwrap(),
        ),
    ];
    let parquet = dir.path().join("prices.parquet");
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut writer = ArrowWriter::try_new(File::create(&parquet).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let mapping = Mapping::from_file(&fixtures("mappings").join("coingecko-prices.toml")).unwrap();
    let from_csv = mapped_csv::read(std::slice::from_ref(&csv), &mapping, &context(true)).unwrap();
    let from_parquet =
        mapped_parquet::read(std::slice::from_ref(&parquet), &mapping, &context(true)).unwrap();
    assert_eq!(from_parquet.events.to_vec(), from_csv.events.to_vec());
    assert_eq!(from_parquet.events.len(), 3);
    let rejected = |batch: &SourceBatch, header: u64| {
        batch
            .report
            .rejected
            .iter()
            .map(|r| {
                let at = match r.position {
                    Position::Line(n) | Position::Row(n) | Position::Entry(n) => n,
                };
                (
                    at + header,
                    r.column.clone(),
                    r.value.clone(),
                    r.reason.clone(),
                    r.raw.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let expected = rejected(&from_csv, 0);
    assert_eq!(rejected(&from_parquet, 1), expected);
    assert_eq!(expected.len(), rows.len() - 3, "{expected:#?}");
}
