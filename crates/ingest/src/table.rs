//! CSV plumbing shared by every CSV adapter and by mappings.
//!
//! Opens a file, strips a UTF-8 byte-order mark, finds columns by header name, and walks the rows
//! with their 1-based line numbers (the header is line 1), turning a bad cell into a
//! [`RowError`] that names file, line, column and value. Adapters only say which column means
//! what.
//!
//! Must never: guess a column by position, or skip a row without reporting it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use cascade_events::U256;
use csv::StringRecord;

use crate::error::{IngestError, Position, RowError};
use crate::progress::Progress;

/// How many rows pass between two progress reports: often enough for a smooth bar, rarely
/// enough to cost nothing.
const PROGRESS_EVERY: u64 = 8192;

/// A header cell as named: surrounding spaces removed, and a UTF-8 byte-order mark before the
/// first.
pub fn header_cell(index: usize, name: &str) -> &str {
    let name = if index == 0 {
        name.trim_start_matches('\u{feff}')
    } else {
        name
    };
    name.trim()
}

/// The size of an input, to reserve memory for its events once.
#[derive(Clone, Copy, Debug)]
pub enum SizeHint {
    /// The file's bytes (a CSV file: rows are estimated from the bytes the first rows took).
    Bytes(u64),
    /// The number of rows (a Parquet file's metadata says it).
    Rows(u64),
}

impl SizeHint {
    /// How many rows the input holds, judged after `seen` rows of which the last started at
    /// byte `offset`.
    pub fn rows(self, offset: u64, seen: u64) -> u64 {
        match self {
            SizeHint::Bytes(bytes) => bytes / (offset / seen.max(1)).max(1),
            SizeHint::Rows(rows) => rows,
        }
    }
}

/// What a [`RowSource`] calls with each row, or with the problem that kept it from being read.
pub type VisitRow<'v> = dyn FnMut(Result<&Row<'_>, Box<RowError>>) -> Result<(), IngestError> + 'v;

/// Rows of a tabular input with a header (a CSV file, a Parquet file), as a mapping reads them.
pub trait RowSource {
    /// The column names.
    fn header(&self) -> &[String];

    /// What is known of the input's size before reading it.
    fn size_hint(&self) -> SizeHint;

    /// Calls `visit` on every data row in order and returns how many rows were read.
    fn each_row(
        &mut self,
        progress: &dyn Progress,
        visit: &mut VisitRow<'_>,
    ) -> Result<u64, IngestError>;
}

impl<R: Read> RowSource for CsvInput<R> {
    fn header(&self) -> &[String] {
        &self.header
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::Bytes(self.bytes)
    }

    fn each_row(
        &mut self,
        progress: &dyn Progress,
        visit: &mut VisitRow<'_>,
    ) -> Result<u64, IngestError> {
        self.for_each_row(progress, visit)
    }
}

/// An open CSV file with its header.
pub struct CsvInput<R: Read = BufReader<File>> {
    path: PathBuf,
    /// The file's size, where known (for estimates).
    bytes: u64,
    reader: csv::Reader<LineCounter<R>>,
    header: Vec<String>,
}

/// Counts the line breaks of what the CSV reader reads, so a record's line comes from its
/// start byte. The csv crate's own line count is one short for every record after the first in
/// a CRLF file: it ends a record at `\r` and counts that line's `\n` only when reading the
/// next record, after stamping the next record's position.
pub(crate) struct LineCounter<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// Offsets of the `\n`s read but not yet passed by a record start.
    pending: VecDeque<u64>,
    /// `\n`s before the last record start asked about.
    passed: u64,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        let base = self.offset;
        self.pending
            .extend(memchr::memchr_iter(b'\n', &buf[..read]).map(|at| base + at as u64));
        self.offset += read as u64;
        Ok(read)
    }
}

impl<R> LineCounter<R> {
    /// Counts the lines of what is read from `inner`.
    pub(crate) fn new(inner: R) -> Self {
        LineCounter {
            inner,
            offset: 0,
            pending: VecDeque::new(),
            passed: 0,
        }
    }

    /// The 1-based line of a record whose parse started at byte `start`: a `\n` at `start`
    /// itself is the end of the previous line (CRLF), not part of the record. Starts must not
    /// decrease.
    pub(crate) fn line_of(&mut self, start: u64) -> u64 {
        while self.pending.front().is_some_and(|&at| at <= start) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl CsvInput {
    /// Opens `path` and reads its header row; a file without one is [`IngestError::Empty`].
    pub fn open(path: &Path) -> Result<Self, IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        let mut input = Self::from_reader(path, BufReader::with_capacity(1 << 16, file))?;
        input.bytes = bytes;
        Ok(input)
    }
}

impl<R: Read> CsvInput<R> {
    /// Reads the header from any reader; `path` is only used in messages.
    pub fn from_reader(path: &Path, reader: R) -> Result<Self, IngestError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(LineCounter::new(reader));
        let mut first = StringRecord::new();
        let has_header = reader
            .read_record(&mut first)
            .map_err(|error| csv_error(path, &error))?;
        if !has_header || first.iter().all(|cell| cell.trim().is_empty()) {
            return Err(IngestError::Empty {
                file: path.to_owned(),
            });
        }
        let header = first
            .iter()
            .enumerate()
            .map(|(index, name)| header_cell(index, name).to_owned())
            .collect();
        Ok(CsvInput {
            path: path.to_owned(),
            bytes: 0,
            reader,
            header,
        })
    }

    /// The file, as named in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header names, BOM and surrounding spaces removed.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The index of a column, or [`IngestError::MissingColumn`].
    pub fn column(&self, name: &str) -> Result<usize, IngestError> {
        column(&self.path, &self.header, name)
    }

    /// The index of a column when present.
    pub fn optional_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|column| column == name)
    }

    /// Calls `visit` on every data row in file order and returns how many rows were read.
    ///
    /// A row with a different number of cells than the header, or with invalid UTF-8, reaches
    /// `visit` as a [`RowError`] (the caller decides whether that stops the ingest); structural
    /// errors the reader cannot continue from are returned as [`IngestError::Csv`].
    pub fn for_each_row(
        &mut self,
        progress: &dyn Progress,
        mut visit: impl FnMut(Result<&Row<'_>, Box<RowError>>) -> Result<(), IngestError>,
    ) -> Result<u64, IngestError> {
        let mut record = StringRecord::new();
        let mut rows = 0u64;
        let mut reported = 0u64;
        loop {
            let start = self.reader.position().byte();
            match self.reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(error) => match error.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        rows += 1;
                        visit(Err(Box::new(RowError {
                            file: self.path.clone(),
                            position: Position::Line(self.reader.get_mut().line_of(start)),
                            column: String::new(),
                            value: String::new(),
                            reason: "row is not valid UTF-8".into(),
                            raw: None,
                        })))?;
                        continue;
                    }
                    _ => return Err(csv_error(&self.path, &error)),
                },
            }
            rows += 1;
            let start = record.position().map_or(start, csv::Position::byte);
            let line = self.reader.get_mut().line_of(start);
            if record.len() == 1 && record[0].trim().is_empty() {
                // A blank line carries nothing; the csv reader already skips truly empty ones.
                continue;
            }
            let row = Row {
                file: &self.path,
                position: Position::Line(line),
                cells: Cells::Text(&record),
                header: &self.header,
            };
            if record.len() == self.header.len() {
                visit(Ok(&row))?;
            } else {
                visit(Err(row.whole_row_error(format!(
                    "row has {} cells, the header has {}",
                    record.len(),
                    self.header.len()
                ))))?;
            }
            if rows.is_multiple_of(PROGRESS_EVERY) {
                let byte = self.reader.position().byte();
                progress.advance(byte - reported);
                reported = byte;
            }
        }
        progress.advance(self.reader.position().byte() - reported);
        Ok(rows)
    }
}

fn csv_error(path: &Path, error: &csv::Error) -> IngestError {
    match error.kind() {
        csv::ErrorKind::Io(io) => IngestError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        _ => IngestError::Csv {
            file: path.to_owned(),
            line: error.position().map_or(0, |p| p.line()),
            message: error.to_string(),
        },
    }
}

/// The index of column `name` in the `header` of `file`, or [`IngestError::MissingColumn`]
/// naming the file and the columns it has.
pub fn column(file: &Path, header: &[String], name: &str) -> Result<usize, IngestError> {
    header
        .iter()
        .position(|column| column == name)
        .ok_or_else(|| IngestError::MissingColumn {
            file: file.to_owned(),
            column: name.to_owned(),
            header: header.join(","),
        })
}

/// One data row of a [`RowSource`]: a CSV record, or a row of typed columns.
pub struct Row<'a> {
    file: &'a Path,
    position: Position,
    cells: Cells<'a>,
    header: &'a [String],
}

/// Where a row's cells are.
#[derive(Clone, Copy)]
enum Cells<'a> {
    Text(&'a StringRecord),
    Typed(&'a dyn TypedRow),
}

/// A row of an input whose columns have types (a Parquet file): each cell is read as the value
/// it stores, or as the exact text a CSV export of it would hold.
pub(crate) trait TypedRow {
    /// The cell as stored.
    fn cell(&self, column: usize) -> Cell<'_>;

    /// The cell's text, as a CSV export of the same value would hold it (a null is blank).
    fn text(&self, column: usize) -> &str;
}

/// A cell as its input stores it, for conversions that can skip its text: the value is the one
/// its text ([`Row::text`]) denotes, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text: a CSV cell, a string column's value; a null is `Text("")`.
    Text(&'a str),
    /// An exact number: an integer, or a decimal `magnitude` x 10^-`scale` with its sign.
    Number {
        /// True below zero (never for zero).
        negative: bool,
        /// The absolute value of the unscaled integer.
        magnitude: U256,
        /// Digits after the point (negative: zeros before it).
        scale: i8,
    },
    /// An instant: `value` units of 1/`per_second` second since the Unix epoch, in UTC.
    Instant {
        /// The count of units.
        value: i64,
        /// Units per second (1, 1 000, 1 000 000 or 1 000 000 000).
        per_second: i64,
    },
    /// Bytes (a binary column: an address, a hash), written as `0x` and lower-case hex.
    Bytes(&'a [u8]),
    /// A value read only through its text (floats, booleans).
    Other,
}

impl<'a> Row<'a> {
    /// A row of an input with typed columns (a Parquet row).
    pub(crate) fn typed(
        file: &'a Path,
        position: Position,
        cells: &'a dyn TypedRow,
        header: &'a [String],
    ) -> Self {
        Row {
            file,
            position,
            cells: Cells::Typed(cells),
            header,
        }
    }
}

impl Row<'_> {
    /// The 1-based line number (the header is line 1), or for a Parquet file the 1-based row.
    pub fn line(&self) -> u64 {
        match self.position {
            Position::Line(number) | Position::Entry(number) | Position::Row(number) => number,
        }
    }

    /// Where the row is, as messages name it (`line 7`, `row 7`).
    pub fn position(&self) -> Position {
        self.position
    }

    /// Byte offset of the row in the file (0 for a row of typed columns).
    pub fn byte_offset(&self) -> u64 {
        match self.cells {
            Cells::Text(record) => record.position().map_or(0, |p| p.byte()),
            Cells::Typed(_) => 0,
        }
    }

    /// A cell's text; empty when the row is shorter than the header.
    pub fn text(&self, column: usize) -> &str {
        match self.cells {
            Cells::Text(record) => record.get(column).unwrap_or(""),
            Cells::Typed(row) => row.text(column),
        }
    }

    /// True for a row of typed columns, whose [`Row::cell`]s may be more than text.
    pub fn is_typed(&self) -> bool {
        matches!(self.cells, Cells::Typed(_))
    }

    /// A cell as stored: [`Cell::Text`] for every CSV cell.
    pub fn cell(&self, column: usize) -> Cell<'_> {
        match self.cells {
            Cells::Text(record) => Cell::Text(record.get(column).unwrap_or("")),
            Cells::Typed(row) => row.cell(column),
        }
    }

    /// True when the cell is empty or blank.
    pub fn is_blank(&self, column: usize) -> bool {
        match self.cell(column) {
            Cell::Text(text) => text.trim().is_empty(),
            // A number, an instant or bytes always has digits in its text.
            Cell::Number { .. } | Cell::Instant { .. } | Cell::Bytes(_) => false,
            Cell::Other => self.text(column).trim().is_empty(),
        }
    }

    /// Converts a cell, turning a failure into a [`RowError`] naming the cell.
    pub fn parse<T>(
        &self,
        column: usize,
        convert: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Box<RowError>> {
        convert(self.text(column)).map_err(|reason| self.error(column, reason))
    }

    /// A problem with one cell.
    pub fn error(&self, column: usize, reason: impl Into<String>) -> Box<RowError> {
        Box::new(RowError {
            file: self.file.to_owned(),
            position: self.position,
            column: self.header.get(column).cloned().unwrap_or_default(),
            value: self.text(column).to_owned(),
            reason: reason.into(),
            raw: Some(self.raw()),
        })
    }

    /// A problem with the row as a whole.
    pub fn whole_row_error(&self, reason: impl Into<String>) -> Box<RowError> {
        Box::new(RowError {
            file: self.file.to_owned(),
            position: self.position,
            column: String::new(),
            value: String::new(),
            reason: reason.into(),
            raw: Some(self.raw()),
        })
    }

    /// The row re-written as one CSV line, for the quarantine file.
    pub fn raw(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let written = match self.cells {
            Cells::Text(record) => writer.write_record(record),
            Cells::Typed(row) => {
                writer.write_record((0..self.header.len()).map(|column| row.text(column)))
            }
        };
        // Writing strings into a Vec cannot fail; an empty string is the honest fallback.
        if written.is_err() {
            return String::new();
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn input(text: &str) -> Result<CsvInput<&[u8]>, IngestError> {
        CsvInput::from_reader(Path::new("t.csv"), text.as_bytes())
    }

    #[test]
    fn strips_bom_and_finds_columns() {
        let csv = input("\u{feff}BLOCK, TIMESTAMP\n1,2\n").unwrap();
        assert_eq!(csv.column("BLOCK").unwrap(), 0);
        assert_eq!(csv.column("TIMESTAMP").unwrap(), 1);
        let missing = csv.column("TX_HASH").unwrap_err().to_string();
        assert!(
            missing.contains("t.csv")
                && missing.contains("TX_HASH")
                && missing.contains("BLOCK,TIMESTAMP"),
            "{missing}"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(matches!(input(""), Err(IngestError::Empty { .. })));
        assert!(matches!(input("\n\n"), Err(IngestError::Empty { .. })));
    }

    #[test]
    fn rows_carry_line_numbers_and_ragged_rows_are_rejected() {
        let mut csv = input("a,b\n1,2\n\"multi\nline\",3\n4\n5,6\n").unwrap();
        let mut seen = Vec::new();
        let mut rejected = Vec::new();
        let rows = csv
            .for_each_row(&NoProgress, |row| {
                match row {
                    Ok(row) => seen.push((row.line(), row.text(0).to_owned())),
                    Err(error) => rejected.push(error),
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(rows, 4);
        assert_eq!(
            seen,
            [(2, "1".into()), (3, "multi\nline".into()), (6, "5".into())]
        );
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].position, Position::Line(5));
        assert!(rejected[0].reason.contains("1 cells"));
    }

    #[test]
    fn line_numbers_are_right_for_crlf_files() {
        for newline in ["\n", "\r\n"] {
            let text = ["a,b", "1,2", "\"multi", "line\",3", "4", "5,6", ""].join(newline);
            let mut csv = input(&text).unwrap();
            let mut lines = Vec::new();
            csv.for_each_row(&NoProgress, |row| {
                lines.push(match row {
                    Ok(row) => row.line(),
                    Err(error) => match error.position {
                        Position::Line(line) => line,
                        Position::Entry(_) | Position::Row(_) => 0,
                    },
                });
                Ok(())
            })
            .unwrap();
            assert_eq!(lines, [2, 3, 5, 6], "{newline:?}");
        }
    }

    #[test]
    fn cell_errors_name_the_cell() {
        let mut csv = input("amount,who\n1.5,x\n").unwrap();
        let mut error = None;
        csv.for_each_row(&NoProgress, |row| {
            error = row
                .unwrap()
                .parse(0, |_| Err::<(), _>("bad".to_owned()))
                .err();
            Ok(())
        })
        .unwrap();
        let error = error.unwrap();
        assert_eq!(
            error.to_string(),
            "t.csv: line 2, column amount: \"1.5\": bad"
        );
        assert_eq!(error.raw.as_deref(), Some("1.5,x"));
    }
}
