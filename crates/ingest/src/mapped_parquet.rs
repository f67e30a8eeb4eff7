//! `parquet`: a Parquet file (cryo, Dune, research datasets) read through a TOML mapping
//! (`--mapping FILE`), with the same keys as a CSV mapping ([`crate::mapping`]).
//!
//! Only the columns the mapping names are read. Each cell has the text a CSV export of the same
//! value would hold, exactly: integers and decimals (`Decimal128`/`Decimal256` with their scale)
//! as their full decimal digits, strings as they are, binary values (cryo's addresses and
//! hashes) as `0x` and lower-case hex, booleans as `true`/`false`, timestamps and dates as RFC
//! 3339 in UTC, floats as their shortest round-trip decimal, nulls as blank cells. A mapping
//! converts the typed value itself where it can ([`Cell`]: numbers to amounts, prices, times
//! and integers, instants to times, bytes to addresses and hashes), giving exactly what the CSV
//! conversion of that text gives, and converts the text in every other case and for every
//! error; strings are read in place, and other values rendered only when read as text. Rows are
//! numbered from 1 across row groups (`row 7` in messages).
//!
//! Must never: read a number through a float when the file stores it exactly, give a typed
//! value the text of the cell would not give, or read a column of a type it cannot render as
//! something other than an error naming the column and its type.

use std::cell::{OnceCell, RefCell};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, Decimal128Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::{DataType, TimeUnit};
use cascade_events::U256;
use chrono::{DateTime, SecondsFormat};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::batch::{Context, SourceBatch, read_each};
use crate::error::{IngestError, Position};
use crate::mapping::Mapping;
use crate::progress::Progress;
use crate::table::{Cell, Row, RowSource, SizeHint, TypedRow, VisitRow};

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
        let mut texts: Vec<OnceCell<String>> =
            self.header.iter().map(|_| OnceCell::new()).collect();
        let mut spare = RefCell::new(Vec::new());
        let mut number = 0u64;
        let mut reported = 0u64;
        while let Some(batch) = self.reader.next() {
            let batch: RecordBatch = batch.map_err(|e| parquet_error(&self.path, e))?;
            let columns: Vec<Column<'_>> = batch
                .columns()
                .iter()
                .map(|array| Column::new(array.as_ref()))
                .collect();
            for index in 0..batch.num_rows() {
                number += 1;
                {
                    let cells = ParquetRow {
                        columns: &columns,
                        index,
                        texts: &texts,
                        spare: &spare,
                    };
                    let row = Row::typed(&self.path, Position::Row(number), &cells, &self.header);
                    visit(Ok(&row))?;
                }
                // The texts rendered for this row go back to the pool, to be written over.
                for text in &mut texts {
                    if let Some(mut text) = text.take() {
                        text.clear();
                        spare.get_mut().push(text);
                    }
                }
            }
            // Progress in bytes, as the CSV path counts it: the file's share of rows read.
            let done = self.bytes.saturating_mul(number) / self.rows.max(1);
            progress.advance(done.saturating_sub(reported));
            reported = done;
        }
        Ok(number)
    }
}

/// One column of a decoded batch, with the types read most often resolved once per batch.
enum Column<'b> {
    Strings(&'b StringArray),
    LargeStrings(&'b LargeStringArray),
    StringViews(&'b StringViewArray),
    Int64(&'b Int64Array),
    Decimal128(&'b Decimal128Array, i8),
    /// Strings stored once each (`Dictionary(_, Utf8)`, a pandas category), with every row's
    /// index into them.
    Dictionary {
        array: &'b dyn Array,
        keys: Vec<usize>,
        values: Box<Column<'b>>,
    },
    Any(&'b dyn Array),
}

impl<'b> Column<'b> {
    fn new(array: &'b dyn Array) -> Self {
        match array.data_type() {
            DataType::Utf8 => Column::Strings(array.as_string::<i32>()),
            DataType::LargeUtf8 => Column::LargeStrings(array.as_string::<i64>()),
            DataType::Utf8View => Column::StringViews(array.as_string_view()),
            DataType::Int64 => Column::Int64(array.as_primitive::<Int64Type>()),
            DataType::Decimal128(_, scale) => {
                Column::Decimal128(array.as_primitive::<Decimal128Type>(), *scale)
            }
            DataType::Dictionary(..) => {
                let dictionary = array.as_any_dictionary();
                let values = dictionary.values().as_ref();
                Column::Dictionary {
                    array,
                    // `normalized_keys` needs values; without any, every row is null.
                    keys: if values.is_empty() {
                        Vec::new()
                    } else {
                        dictionary.normalized_keys()
                    },
                    values: Box::new(Column::new(values)),
                }
            }
            _ => Column::Any(array),
        }
    }

    fn array(&self) -> &'b dyn Array {
        match *self {
            Column::Strings(array) => array,
            Column::LargeStrings(array) => array,
            Column::StringViews(array) => array,
            Column::Int64(array) => array,
            Column::Decimal128(array, _) => array,
            Column::Dictionary { array, .. } | Column::Any(array) => array,
        }
    }

    /// The string at `index` of a string column (`""` for a null), or `None`.
    fn string(&self, index: usize) -> Option<&'b str> {
        let text = match *self {
            Column::Strings(array) => array.is_valid(index).then(|| array.value(index)),
            Column::LargeStrings(array) => array.is_valid(index).then(|| array.value(index)),
            Column::StringViews(array) => array.is_valid(index).then(|| array.value(index)),
            Column::Dictionary {
                array,
                ref keys,
                ref values,
            } => match keys.get(index) {
                Some(&key) if array.is_valid(index) => values.string(key),
                _ => None,
            },
            _ => return None,
        };
        Some(text.unwrap_or(""))
    }

    fn cell(&self, index: usize) -> Cell<'b> {
        if let Some(text) = self.string(index) {
            return Cell::Text(text);
        }
        let array = self.array();
        if array.is_null(index) || *array.data_type() == DataType::Null {
            return Cell::Text("");
        }
        match *self {
            Column::Int64(array) => integer(i128::from(array.value(index))),
            Column::Decimal128(array, scale) => decimal(array.value(index), scale),
            _ => typed_cell(array, index),
        }
    }
}

fn integer(value: i128) -> Cell<'static> {
    decimal(value, 0)
}

fn decimal(value: i128, scale: i8) -> Cell<'static> {
    Cell::Number {
        negative: value < 0,
        magnitude: U256::from(value.unsigned_abs()),
        scale,
    }
}

/// The cell at `index` (not null) of a column of any type [`renders`] accepts.
fn typed_cell(array: &dyn Array, index: usize) -> Cell<'_> {
    macro_rules! int {
        ($type:ty) => {
            integer(i128::from(array.as_primitive::<$type>().value(index)))
        };
    }
    match array.data_type() {
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Decimal128(_, scale) => {
            decimal(array.as_primitive::<Decimal128Type>().value(index), *scale)
        }
        DataType::Decimal256(_, scale) => {
            let value = array.as_primitive::<Decimal256Type>().value(index);
            let bits = U256::from_be_bytes(value.to_be_bytes());
            let negative = value.is_negative();
            Cell::Number {
                negative,
                magnitude: if negative { bits.wrapping_neg() } else { bits },
                scale: *scale,
            }
        }
        DataType::Timestamp(unit, _) => {
            let (value, per_second) = timestamp(array, *unit, index);
            Cell::Instant { value, per_second }
        }
        DataType::Date32 => Cell::Instant {
            value: i64::from(array.as_primitive::<Date32Type>().value(index)) * 86_400,
            per_second: 1,
        },
        DataType::Date64 => Cell::Instant {
            value: array.as_primitive::<Date64Type>().value(index),
            per_second: 1_000,
        },
        DataType::Binary => Cell::Bytes(array.as_binary::<i32>().value(index)),
        DataType::LargeBinary => Cell::Bytes(array.as_binary::<i64>().value(index)),
        DataType::BinaryView => Cell::Bytes(array.as_binary_view().value(index)),
        DataType::FixedSizeBinary(_) => Cell::Bytes(array.as_fixed_size_binary().value(index)),
        _ => Cell::Other,
    }
}

/// A row of a decoded batch; cells that are not strings are rendered as text only when read
/// so, once per row, into buffers reused from row to row.
struct ParquetRow<'r> {
    columns: &'r [Column<'r>],
    index: usize,
    texts: &'r [OnceCell<String>],
    spare: &'r RefCell<Vec<String>>,
}

impl TypedRow for ParquetRow<'_> {
    fn cell(&self, column: usize) -> Cell<'_> {
        self.columns
            .get(column)
            .map_or(Cell::Text(""), |c| c.cell(self.index))
    }

    fn text(&self, column: usize) -> &str {
        let Some(cells) = self.columns.get(column) else {
            return "";
        };
        if let Some(text) = cells.string(self.index) {
            return text;
        }
        self.texts[column].get_or_init(|| {
            let mut text = self.spare.borrow_mut().pop().unwrap_or_default();
            render(cells.array(), self.index, &mut text);
            text
        })
    }
}

/// Whether a column of the type has a text form: [`render`]'s, or a dictionary's strings.
fn renders(data_type: &DataType) -> bool {
    if let DataType::Dictionary(_, values) = data_type {
        return matches!(
            **values,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
    }
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

/// The value at `index` of a timestamp column and its units per second.
fn timestamp(array: &dyn Array, unit: TimeUnit, index: usize) -> (i64, i64) {
    match unit {
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
            let (value, per_second) = timestamp(array, *unit, index);
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
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal256Array,
        Float64Array, Int8Array, Int32Array, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
    };
    use arrow_buffer::i256;
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use proptest::prelude::*;

    use crate::value;

    fn text_of(array: &dyn Array, index: usize) -> String {
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
            [
                text_of(&decimal, 0),
                text_of(&decimal, 1),
                text_of(&decimal, 2)
            ],
            ["-1.2345", "", "0.0007"]
        );
        // A uint256 amount beyond 128 bits keeps every digit.
        let big = i256::from_string("115792089237316195423570985008687907853269984665640564039457")
            .unwrap();
        let wide = Decimal256Array::from(vec![big])
            .with_precision_and_scale(76, 18)
            .unwrap();
        assert_eq!(
            text_of(&wide, 0),
            "115792089237316195423570985008687907853269.984665640564039457"
        );
        assert_eq!(
            text_of(&UInt64Array::from(vec![u64::MAX]), 0),
            "18446744073709551615"
        );
        assert_eq!(text_of(&Int64Array::from(vec![-3]), 0), "-3");
        assert_eq!(text_of(&Float64Array::from(vec![0.1, 1e22]), 0), "0.1");
        assert_eq!(
            text_of(&Float64Array::from(vec![1e22]), 0),
            "10000000000000000000000"
        );
        assert_eq!(text_of(&BooleanArray::from(vec![true]), 0), "true");
        assert_eq!(
            text_of(&BinaryArray::from(vec![&[0xef_u8, 0x0a][..]]), 0),
            "0xef0a"
        );
        assert_eq!(text_of(&StringArray::from(vec!["WETH"]), 0), "WETH");
        let times = TimestampMillisecondArray::from(vec![1_621_426_020_250, -1]);
        assert_eq!(text_of(&times, 0), "2021-05-19T12:07:00.250Z");
        assert_eq!(text_of(&times, 1), "1969-12-31T23:59:59.999Z");
    }

    /// A one-value array of a type the typed conversions read, from random parts.
    fn typed_array() -> impl Strategy<Value = ArrayRef> {
        let small = -(1i64 << 40)..(1i64 << 40);
        prop_oneof![
            any::<i8>().prop_map(|v| Arc::new(Int8Array::from(vec![v])) as ArrayRef),
            any::<i32>().prop_map(|v| Arc::new(Int32Array::from(vec![v])) as ArrayRef),
            any::<i64>().prop_map(|v| Arc::new(Int64Array::from(vec![v])) as ArrayRef),
            small
                .clone()
                .prop_map(|v| Arc::new(Int64Array::from(vec![v])) as ArrayRef),
            // Unix times around the accepted range, in seconds and in milliseconds.
            (1_000_000_000i64..5_000_000_000, any::<bool>()).prop_map(|(v, ms)| Arc::new(
                Int64Array::from(vec![if ms { v * 1000 + 7 } else { v }])
            )
                as ArrayRef),
            any::<u64>().prop_map(|v| Arc::new(UInt64Array::from(vec![v])) as ArrayRef),
            (any::<i128>(), -4i8..=38).prop_map(|(v, scale)| {
                Arc::new(
                    Decimal128Array::from(vec![v])
                        .with_precision_and_scale(38, scale)
                        .unwrap(),
                ) as ArrayRef
            }),
            (small.clone(), 0i8..=12).prop_map(|(v, scale)| {
                Arc::new(
                    Decimal128Array::from(vec![i128::from(v)])
                        .with_precision_and_scale(38, scale)
                        .unwrap(),
                ) as ArrayRef
            }),
            (any::<i128>(), any::<i128>(), -4i8..=76).prop_map(|(high, low, scale)| {
                let value = i256::from_parts(low as u128, high);
                Arc::new(
                    Decimal256Array::from(vec![value])
                        .with_precision_and_scale(76, scale)
                        .unwrap(),
                ) as ArrayRef
            }),
            (any::<i64>(), 0usize..4).prop_map(|(v, unit)| {
                let array: ArrayRef = match unit {
                    0 => Arc::new(TimestampSecondArray::from(vec![v])),
                    1 => Arc::new(TimestampMillisecondArray::from(vec![v])),
                    2 => Arc::new(TimestampMicrosecondArray::from(vec![v])),
                    _ => Arc::new(TimestampNanosecondArray::from(vec![v])),
                };
                array
            }),
            (1_000_000_000i64..5_000_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| {
                Arc::new(
                    TimestampNanosecondArray::from(vec![s * 1_000_000_000 + i64::from(n)])
                        .with_timezone("UTC"),
                ) as ArrayRef
            }),
            any::<i32>().prop_map(|v| Arc::new(Date32Array::from(vec![v])) as ArrayRef),
            any::<i64>().prop_map(|v| Arc::new(Date64Array::from(vec![v])) as ArrayRef),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|v| Arc::new(BinaryArray::from(vec![&v[..]])) as ArrayRef),
            proptest::collection::vec(any::<u8>(), 20..=20)
                .prop_map(|v| Arc::new(BinaryArray::from(vec![&v[..]])) as ArrayRef),
            proptest::collection::vec(any::<u8>(), 32..=32)
                .prop_map(|v| Arc::new(BinaryArray::from(vec![&v[..]])) as ArrayRef),
            any::<f64>().prop_map(|v| Arc::new(Float64Array::from(vec![v])) as ArrayRef),
            "[0-9a-zA-Z. -]{0,12}".prop_map(|v| Arc::new(StringArray::from(vec![v])) as ArrayRef),
            Just(Arc::new(Int64Array::from(vec![None::<i64>])) as ArrayRef),
        ]
    }

    /// Where a typed conversion must give a value whenever the text conversion does (not only
    /// agree when it does): a number of moderate scale and precision.
    fn common(cell: Cell<'_>, decimals: u8) -> bool {
        matches!(cell, Cell::Number { scale, .. } if (0..=38).contains(&scale)) && decimals <= 38
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The typed conversions give what the text conversions give of the cell's text.
        #[test]
        fn typed_cells_convert_as_their_text(
            array in typed_array(),
            decimals in 0u8..=80,
            tokens in any::<bool>(),
            negative in any::<bool>(),
            fixed_decimals in proptest::option::of(0u8..=80),
            scaled in any::<bool>(),
        ) {
            let cells = [Column::new(array.as_ref())];
            let (texts, spare) = ([OnceCell::new()], RefCell::new(Vec::new()));
            let row = ParquetRow { columns: &cells, index: 0, texts: &texts, spare: &spare };
            let (cell, text) = (row.cell(0), row.text(0).to_owned());
            prop_assert_eq!(text.as_str(), text_of(array.as_ref(), 0));
            if let Cell::Text(borrowed) = cell {
                prop_assert_eq!(borrowed, text.as_str());
            }

            let unit = if tokens { value::Unit::Tokens } else { value::Unit::Base };
            let sign = if negative { value::Sign::Negative } else { value::Sign::Positive };
            let by_text = value::amount(&text, unit, decimals, sign);
            let typed = value::amount_of(cell, unit, decimals, sign);
            if let Some(amount) = typed {
                prop_assert_eq!(Ok(amount), by_text.clone());
            }
            if common(cell, decimals) {
                prop_assert_eq!(typed.is_some(), by_text.is_ok());
            }

            let by_text = value::fixed(&text, fixed_decimals, scaled);
            let typed = value::fixed_of(cell, fixed_decimals, scaled);
            if let Some(fixed) = typed {
                prop_assert_eq!(Ok(fixed), by_text.clone());
            }
            if common(cell, fixed_decimals.unwrap_or(0)) {
                prop_assert_eq!(typed.is_some(), by_text.is_ok());
            }

            let by_text = value::integer(&text);
            let typed = value::integer_of(cell);
            if let Some(integer) = typed {
                prop_assert_eq!(Ok(integer), by_text.clone());
            }
            if common(cell, 0) {
                prop_assert_eq!(typed.is_some(), by_text.is_ok());
            }

            for format in [
                value::TimeFormat::UnixSeconds,
                value::TimeFormat::UnixMillis,
                value::TimeFormat::Rfc3339,
            ] {
                let by_text = value::time(&text, &format);
                let typed = value::time_of(cell, &format);
                if let Some(time) = typed {
                    prop_assert_eq!(Ok(time), by_text.clone());
                }
                let exact = matches!(
                    (cell, &format),
                    (
                        Cell::Number { scale: 0, .. },
                        value::TimeFormat::UnixSeconds | value::TimeFormat::UnixMillis
                    ) | (Cell::Instant { .. }, value::TimeFormat::Rfc3339)
                );
                if exact {
                    prop_assert_eq!(typed.is_some(), by_text.is_ok(), "{:?} {:?}", text, format);
                }
            }
            if let Some(unix) = value::unix_of(cell) {
                prop_assert_eq!(Ok(unix), text.parse::<i64>());
            }

            for kind in [value::IdKind::Number, value::IdKind::Address] {
                let by_text = value::id(&text, kind);
                let typed = value::id_of(cell, kind);
                if let Some(id) = typed {
                    prop_assert_eq!(Ok(id), by_text.clone());
                }
                let exact = matches!(
                    (kind, cell),
                    (value::IdKind::Number, Cell::Number { scale: 0, .. })
                        | (value::IdKind::Address, Cell::Bytes(_))
                );
                if exact {
                    prop_assert_eq!(typed.is_some(), by_text.is_ok());
                }
            }
            let header = ["c".to_owned()];
            let whole = Row::typed(Path::new("t.parquet"), Position::Row(1), &row, &header);
            prop_assert_eq!(whole.is_blank(0), text.trim().is_empty());
        }
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
