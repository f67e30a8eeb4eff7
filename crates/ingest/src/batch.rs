//! What an adapter hands back: the events of one source in source order, and a report of what
//! it read, rejected and noticed.
//!
//! Adapters are pure: path and options in, [`SourceBatch`] out. They never touch a log; ordering
//! across sources, duplicate detection and writing happen in [`crate::stage`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use cascade_events::Event;

use crate::error::{IngestError, RowError};
use crate::progress::Progress;

/// What every adapter is given besides its own options.
pub struct Context<'a> {
    /// Move bad rows to quarantine instead of failing.
    pub skip_invalid: bool,
    /// EIP-155 chain id stamped on events whose source does not say (1: Ethereum mainnet).
    pub chain_id: u64,
    /// Where to report bytes read.
    pub progress: &'a dyn Progress,
}

/// The events of one source, in the source's own order (file rank, then row, then the order of
/// the events a row produces), with `seq` and `source` still zero.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// The events.
    pub events: Vec<Event>,
    /// What happened while reading.
    pub report: SourceReport,
}

/// What an adapter read, rejected and noticed.
#[derive(Debug, Default)]
pub struct SourceReport {
    /// Input files read, in reading order.
    pub files: Vec<PathBuf>,
    /// Data rows (or JSON entries) read, including rejected and dropped ones.
    pub rows_read: u64,
    /// Rows that could not become events (only non-empty with `--skip-invalid`).
    pub rejected: Vec<RowError>,
    /// Rows the adapter dropped as identical duplicates of an earlier row.
    pub duplicates: u64,
    /// Named counts specific to the source: which branch of a rule each row took, unknown log
    /// topics, and so on. Sorted by name so reports are stable.
    pub counters: BTreeMap<String, u64>,
    /// Rows worth a human look that were still ingested, one sentence each with file and line.
    pub flagged: Vec<String>,
}

impl SourceReport {
    /// Adds `by` to the counter `name`.
    pub fn count(&mut self, name: &str, by: u64) {
        *self.counters.entry(name.to_owned()).or_default() += by;
    }
}

/// Applies the `--skip-invalid` policy to row errors.
pub struct Rejects {
    skip_invalid: bool,
    rows: Vec<RowError>,
}

impl Rejects {
    /// A policy: keep going (collecting) when `skip_invalid`, else stop at the first error.
    pub fn new(skip_invalid: bool) -> Self {
        Rejects {
            skip_invalid,
            rows: Vec::new(),
        }
    }

    /// Records a bad row, or returns it as the error that stops the ingest.
    pub fn reject(&mut self, error: Box<RowError>) -> Result<(), IngestError> {
        if self.skip_invalid {
            self.rows.push(*error);
            Ok(())
        } else {
            Err(IngestError::Row(error))
        }
    }

    /// The rows collected so far.
    pub fn into_rows(self) -> Vec<RowError> {
        self.rows
    }
}
