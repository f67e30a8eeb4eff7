//! `parquet`: a Parquet file (cryo, Dune, research datasets) read through a TOML mapping
//! (`--mapping FILE`), with the same keys as a CSV mapping ([`crate::mapping`]).
//!
//! Only the columns the mapping names are read. Each cell is rendered as the text a CSV export of
//! the same value would hold, exactly, and then goes through the very conversions a CSV cell
//! does: integers and decimals (`Decimal128`/`Decimal256` with their scale) as their full decimal
//! digits, strings as they are, binary values (cryo's addresses and hashes) as `0x` and lower-case
//! hex, booleans as `true`/`false`, timestamps and dates as RFC 3339 in UTC, floats as their
//! shortest round-trip decimal, nulls as blank cells. Rows are numbered from 1 across row groups
//! (`row 7` in messages).
//!
//! Must never: read a number through a float when the file stores it exactly, or read a column
//! of a type it cannot render as something other than an error naming the column and its type.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, SecondsFormat};
use csv::StringRecord;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::batch::{Context, SourceBatch, read_each};
use crate::error::{IngestError, Position};
use crate::mapping::Mapping;
use crate::progress::Progress;
use crate::table::{Row, RowSource, SizeHint, VisitRow};

/// Rows decoded at a time: large enough to amortise the decoder, small enough to stay in cache.
const BATCH_ROWS: usize = 8192;

/// Reads Parquet files through `mapping`.
pub fn read(
    paths: &[PathBuf],
    mapping: &Mapping,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    read_each(paths, context, |path, rejects, batch| {
        mapping.read_parquet_into(path, context, rejects, batch)
    })
}

/// An open Parquet file, projected on the columns a mapping reads.
pub struct ParquetInput {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    header: Vec<String>,
    types: Vec<DataType>,
    rows: u64,
    bytes: u64,
}

fn parquet_error(path: &Path, error: impl std::fmt::Display) -> IngestError {
    IngestError::Source {
        path: path.to_owned(),
        message: format!("not a readable Parquet file: {error}"),
    }
}

impl ParquetInput {
    /// Opens `path` and selects the columns named in `columns` (each must exist; their order in
    /// the header is the file's). A column of a type that has no text form is an error now.
    pub fn open(path: &Path, columns: &[String]) -> Result<Self, IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_error(path, e))?;
        let schema = builder.schema().clone();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut indices = Vec::with_capacity(columns.len());
        for column in columns {
            let index = names
                .iter()
                .position(|name| name == column)
                .ok_or_else(|| IngestError::MissingColumn {
                    file: path.to_owned(),
                    column: column.clone(),
                    header: names.join(","),
                })?;
            let data_type = schema.field(index).data_type();
            if !renders(data_type) {
                return Err(IngestError::Source {
                    path: path.to_owned(),
                    message: format!(
                        "column {column:?} is of type {data_type}, which has no text form a mapping can read (numbers, decimals, strings, binary, booleans, timestamps and dates can)"
                    ),
                });
            }
            indices.push(index);
        }
        indices.sort_unstable();
        indices.dedup();
        let header = indices.iter().map(|&i| names[i].to_owned()).collect();
        let types = indices
            .iter()
            .map(|&i| schema.field(i).data_type().clone())
            .collect();
        let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| parquet_error(path, e))?;
        Ok(ParquetInput {
            path: path.to_owned(),
            reader,
            header,
            types,
            rows,
            bytes,
        })
    }

    /// Whether the column is a Parquet timestamp or date (rendered as RFC 3339).
    pub fn is_time_column(&self, name: &str) -> bool {
        self.header
            .iter()
            .position(|column| column == name)
            .is_some_and(|index| {
                matches!(
                    self.types[index],
                    DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                )
            })
    }
}

impl RowSource for ParquetInput {
    fn header(&self) -> &[String] {
        &self.header
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::Rows(self.rows)
    }

    fn each_row(
        &mut self,
        progress: &dyn Progress,
        visit: &mut VisitRow<'_>,
    ) -> Result<u64, IngestError> {
        let mut record = StringRecord::new();
        let mut cell = String::new();
        let mut number = 0u64;
        let mut reported = 0u64;
        while let Some(batch) = self.reader.next() {
            let batch: RecordBatch = batch.map_err(|e| parquet_error(&self.path, e))?;
            let columns: &[ArrayRef] = batch.columns();
            for index in 0..batch.num_rows() {
                record.clear();
                for column in columns {
                    cell.clear();
                    render(column.as_ref(), index, &mut cell);
                    record.push_field(&cell);
                }
                number += 1;
                let row = Row::new(&self.path, Position::Row(number), &record, &self.header);
                visit(Ok(&row))?;
            }
            // Progress in bytes, as the CSV path counts it: the file's share of rows read.
            let done = self.bytes.saturating_mul(number) / self.rows.max(1);
            progress.advance(done.saturating_sub(reported));
            reported = done;
        }
        Ok(number)
    }
}

/// Whether [`render`] has a text form for the type.
fn renders(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
            | DataType::Timestamp(..)
            | DataType::Date32
            | DataType::Date64
    )
}

fn hex(bytes: &[u8], out: &mut String) {
    out.push_str("0x");
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}

/// RFC 3339 in UTC of `value` units of `per_second` since the epoch (a timestamp without a
/// zone is taken as UTC, as Parquet writers store instants).
fn instant(value: i64, per_second: i64, out: &mut String) {
    let seconds = value.div_euclid(per_second);
    let nanos = value.rem_euclid(per_second) * (1_000_000_000 / per_second);
    match DateTime::from_timestamp(seconds, u32::try_from(nanos).unwrap_or(0)) {
        Some(time) => out.push_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        // Outside chrono's range: left as the raw number, which the time check then refuses.
        None => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Writes the text of row `index` of `array` into `out`; a null writes nothing (a blank cell).
fn render(array: &dyn Array, index: usize, out: &mut String) {
    if array.is_null(index) {
        return;
    }
    macro_rules! display {
        ($type:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$type>().value(index));
        }};
    }
    match array.data_type() {
        DataType::Boolean => out.push_str(if array.as_boolean().value(index) {
            "true"
        } else {
            "false"
        }),
        DataType::Int8 => display!(Int8Type),
        DataType::Int16 => display!(Int16Type),
        DataType::Int32 => display!(Int32Type),
        DataType::Int64 => display!(Int64Type),
        DataType::UInt8 => display!(UInt8Type),
        DataType::UInt16 => display!(UInt16Type),
        DataType::UInt32 => display!(UInt32Type),
        DataType::UInt64 => display!(UInt64Type),
        // Rust prints the shortest decimal that reads back as the same float, never an exponent.
        DataType::Float32 => display!(Float32Type),
        DataType::Float64 => display!(Float64Type),
        // Written in place: no string per cell.
        DataType::Decimal128(_, scale) => {
            let value = array.as_primitive::<Decimal128Type>().value(index);
            let _ = arrow_data::decimal::write_decimal(out, value, *scale);
        }
        DataType::Decimal256(_, scale) => {
            let value = array.as_primitive::<Decimal256Type>().value(index);
            let _ = arrow_data::decimal::write_decimal(out, value, *scale);
        }
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(index)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(index)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(index)),
        DataType::Binary => hex(array.as_binary::<i32>().value(index), out),
        DataType::LargeBinary => hex(array.as_binary::<i64>().value(index), out),
        DataType::BinaryView => hex(array.as_binary_view().value(index), out),
        DataType::FixedSizeBinary(_) => hex(array.as_fixed_size_binary().value(index), out),
        DataType::Timestamp(unit, _) => {
            let (value, per_second) = match unit {
                TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(index), 1),
                TimeUnit::Millisecond => (
                    array
                        .as_primitive::<TimestampMillisecondType>()
                        .value(index),
                    1_000,
                ),
                TimeUnit::Microsecond => (
                    array
                        .as_primitive::<TimestampMicrosecondType>()
                        .value(index),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    array.as_primitive::<TimestampNanosecondType>().value(index),
                    1_000_000_000,
                ),
            };
            instant(value, per_second, out);
        }
        DataType::Date32 => instant(
            i64::from(array.as_primitive::<Date32Type>().value(index)) * 86_400,
            1,
            out,
        ),
        DataType::Date64 => instant(array.as_primitive::<Date64Type>().value(index), 1_000, out),
        // `open` refuses every other type for the columns it reads.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{
        BinaryArray, BooleanArray, Decimal128Array, Decimal256Array, Float64Array, Int64Array,
        StringArray, TimestampMillisecondArray, UInt64Array,
    };
    use arrow_buffer::i256;
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    fn text(array: &dyn Array, index: usize) -> String {
        let mut out = String::new();
        render(array, index, &mut out);
        out
    }

    #[test]
    fn cells_render_exactly() {
        let decimal = Decimal128Array::from(vec![Some(-12_345), None, Some(7)])
            .with_precision_and_scale(38, 4)
            .unwrap();
        assert_eq!(
            [text(&decimal, 0), text(&decimal, 1), text(&decimal, 2)],
            ["-1.2345", "", "0.0007"]
        );
        // A uint256 amount beyond 128 bits keeps every digit.
        let big = i256::from_string("115792089237316195423570985008687907853269984665640564039457")
            .unwrap();
        let wide = Decimal256Array::from(vec![big])
            .with_precision_and_scale(76, 18)
            .unwrap();
        assert_eq!(
            text(&wide, 0),
            "115792089237316195423570985008687907853269.984665640564039457"
        );
        assert_eq!(
            text(&UInt64Array::from(vec![u64::MAX]), 0),
            "18446744073709551615"
        );
        assert_eq!(text(&Int64Array::from(vec![-3]), 0), "-3");
        assert_eq!(text(&Float64Array::from(vec![0.1, 1e22]), 0), "0.1");
        assert_eq!(
            text(&Float64Array::from(vec![1e22]), 0),
            "10000000000000000000000"
        );
        assert_eq!(text(&BooleanArray::from(vec![true]), 0), "true");
        assert_eq!(
            text(&BinaryArray::from(vec![&[0xef_u8, 0x0a][..]]), 0),
            "0xef0a"
        );
        assert_eq!(text(&StringArray::from(vec!["WETH"]), 0), "WETH");
        let times = TimestampMillisecondArray::from(vec![1_621_426_020_250, -1]);
        assert_eq!(text(&times, 0), "2021-05-19T12:07:00.250Z");
        assert_eq!(text(&times, 1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn open_selects_the_named_columns_and_refuses_missing_or_unreadable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Int64, false),
            Field::new(
                "list",
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                true,
            ),
            Field::new("a", DataType::Utf8, true),
        ]));
        let list = arrow_array::ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(
            vec![Some(1)],
        )]);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![5])),
                Arc::new(list),
                Arc::new(StringArray::from(vec![Some("x")])),
            ],
        )
        .unwrap();
        let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let mut input = ParquetInput::open(&path, &["a".into(), "b".into()]).unwrap();
        assert_eq!(input.header(), ["b", "a"]);
        let mut seen = Vec::new();
        let rows = input
            .each_row(&crate::progress::NoProgress, &mut |row| {
                let row = row.unwrap();
                seen.push((
                    row.position(),
                    row.text(0).to_owned(),
                    row.text(1).to_owned(),
                ));
                Ok(())
            })
            .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(seen, [(Position::Row(1), "5".into(), "x".into())]);
        let missing = ParquetInput::open(&path, &["c".into()]).err().unwrap();
        assert!(missing.to_string().contains("b,list,a"), "{missing}");
        let unreadable = ParquetInput::open(&path, &["list".into()]).err().unwrap();
        assert!(
            unreadable.to_string().contains("\"list\" is of type List"),
            "{unreadable}"
        );
    }
}
