//! The one error type of the ingest crate, and the row-level problem it wraps.
//!
//! Every error names what a user needs to fix the input: the file, the line (or the entry of a
//! JSON array), the column and the offending value. A [`RowError`] is the unit that
//! `--skip-invalid` moves to the quarantine file instead of failing; every other variant stops the
//! ingest before anything is written.

use std::fmt;
use std::path::PathBuf;

/// Where in an input a row sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// A 1-based line of a text file (CSV, JSON lines); the header of a CSV file is line 1.
    Line(u64),
    /// A 1-based entry of a JSON array.
    Entry(u64),
    /// A 1-based row of a Parquet file, counted across its row groups.
    Row(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(line) => write!(f, "line {line}"),
            Position::Entry(entry) => write!(f, "entry {entry}"),
            Position::Row(row) => write!(f, "row {row}"),
        }
    }
}

/// One input row that cannot become an event, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// The input file.
    pub file: PathBuf,
    /// Where in the file.
    pub position: Position,
    /// The column (CSV header name, JSON field), or empty when the whole row is at fault.
    pub column: String,
    /// The offending value as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
    /// The whole row as read, for the quarantine file; `None` where the row could not be read.
    pub raw: Option<String>,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.position)?;
        if !self.column.is_empty() {
            write!(f, ", column {}", self.column)?;
        }
        // Both cut: a 10 MB cell makes a short message, also where the reason quotes it.
        write!(
            f,
            ": {}: {}",
            cascade_events::Excerpt(&self.value),
            cascade_events::clip(&self.reason)
        )
    }
}

impl std::error::Error for RowError {}

/// Everything that can stop an ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading an input file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A row holds a value that cannot become an event (and `--skip-invalid` was not given).
    #[error("{0}")]
    Row(Box<RowError>),
    /// The file has no header row at all.
    #[error("{}: empty file (no header row)", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A column the source kind needs is not in the header.
    #[error("{}: missing column {column:?} (the header has: {header})", file.display())]
    MissingColumn {
        /// The file.
        file: PathBuf,
        /// The column looked for.
        column: String,
        /// The header as found, comma-separated.
        header: String,
    },
    /// The CSV structure itself is broken (unbalanced quotes, invalid UTF-8, ragged row).
    #[error("{}: line {line}: malformed CSV: {message}", file.display())]
    Csv {
        /// The file.
        file: PathBuf,
        /// 1-based line where the reader gave up.
        line: u64,
        /// The reader's explanation.
        message: String,
    },
    /// The JSON structure itself is broken.
    #[error("{}: line {line}, column {column}: malformed JSON: {message}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// The parser's explanation.
        message: String,
    },
    /// A mapping file is not valid for the `csv` source kind.
    #[error("mapping {}: {message}", file.display())]
    Mapping {
        /// The mapping file (or the built-in mapping's name).
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A source path does not have the shape its kind needs (a folder without the expected
    /// files, a missing companion file, a flag that must be given).
    #[error("{}: {message}", path.display())]
    Source {
        /// The path given.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// Two events with the same identity but different content.
    #[error(
        "conflicting duplicates for {identity}: {first} (from {first_source}) vs {second} (from {second_source})"
    )]
    Conflict {
        /// The identity they share (e.g. `chainlink 0x5f4e… round 1106…`).
        identity: String,
        /// The event already accepted, as JSON.
        first: String,
        /// Where the first came from.
        first_source: String,
        /// The event that disagrees with it, as JSON.
        second: String,
        /// Where the second came from.
        second_source: String,
    },
    /// The command line asked for something inconsistent.
    #[error("{0}")]
    Usage(String),
    /// The event log or its catalog failed.
    #[error("event log: {0}")]
    Log(Box<cascade_log::LogError>),
    /// The file system holding the log has too little free space for the ingest: refused before
    /// anything is written.
    #[error(
        "{}: the ingest needs about {needed} bytes of free space (events, index and catalog headroom) and the file system has {available}; nothing was written: free some space and run it again",
        dir.display()
    )]
    NoSpace {
        /// The log directory.
        dir: PathBuf,
        /// Bytes needed, estimated.
        needed: u64,
        /// Bytes available to this user.
        available: u64,
    },
}

impl From<Box<RowError>> for IngestError {
    fn from(error: Box<RowError>) -> Self {
        IngestError::Row(error)
    }
}

#[cfg(test)]
impl IngestError {
    /// Where a row error points, as (position, column, value); any other error fails the test.
    pub(crate) fn row_at(&self) -> (Position, &str, &str) {
        match self {
            IngestError::Row(row) => (row.position, row.column.as_str(), row.value.as_str()),
            other => panic!("expected a row error, got: {other}"),
        }
    }
}
