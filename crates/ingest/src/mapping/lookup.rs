//! `[[lookup]]` tables: a second CSV file, keyed by one of its columns, that the rows of the
//! main file join by the value of one of theirs (`{ lookup = "tokens", key = "collateralReserve",
//! column = "decimals" }`), and that may produce events of its own (`[[lookup.event]]`: once per
//! lookup row, in key order, before the main file's events and at the earliest of their times).
//!
//! Must never: guess a value for a key the table lacks, keep a key listed twice, or read a cell
//! of the lookup file without naming that file, line and column when it is bad.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_events::Payload;
use serde::Deserialize;

use super::rules::Gate;
use super::{Compiler, EventPlan, EventSpec};
use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::{IngestError, Position, RowError};
use crate::table::{self, CsvInput, Row};

/// A `[[lookup]]` table of the mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LookupSpec {
    /// The name fields use (`lookup = "tokens"`).
    pub(super) name: String,
    /// The file; relative paths are resolved from the folder of the CSV file being read (a
    /// companion file shipped with the export).
    pub(super) path: PathBuf,
    /// The column whose (trimmed) text identifies a row.
    pub(super) key: String,
    /// Events every lookup row produces.
    #[serde(rename = "event", default)]
    pub(super) events: Vec<EventSpec>,
}

impl LookupSpec {
    /// The file to read for the main file `input`.
    pub(super) fn resolve(&self, input: &Path) -> PathBuf {
        match input.parent() {
            Some(folder) if self.path.is_relative() => folder.join(&self.path),
            _ => self.path.clone(),
        }
    }
}

/// A loaded lookup table.
pub(super) struct LookupTable {
    /// The name fields use.
    pub(super) name: String,
    /// The file, as named in messages.
    pub(super) path: PathBuf,
    header: Vec<String>,
    rows: BTreeMap<String, LookupRow>,
}

/// One row of a lookup table.
pub(super) struct LookupRow {
    line: u64,
    cells: Vec<String>,
    /// The payloads of the table's `[[lookup.event]]`s for this row, timed later.
    events: Vec<Payload>,
}

impl LookupTable {
    /// A table with a header and no rows, for checking a mapping without its files.
    pub(super) fn placeholder(name: &str, path: &Path, header: Vec<String>) -> Self {
        LookupTable {
            name: name.to_owned(),
            path: path.to_owned(),
            header,
            rows: BTreeMap::new(),
        }
    }

    /// Reads the table at `path`: every row's cells by key and the payloads of its events. Bad
    /// rows (blank or repeated key, a value that does not convert) go through `rejects`.
    pub(super) fn load(
        spec: &LookupSpec,
        mapping: &Path,
        path: &Path,
        context: &Context<'_>,
        rejects: &mut Rejects,
        batch: &mut SourceBatch,
    ) -> Result<Self, IngestError> {
        let mut input = CsvInput::open(path)?;
        let key = input.column(&spec.key)?;
        let header = input.header().to_vec();
        let no_lookups = BTreeMap::new();
        let compiler = Compiler {
            mapping,
            file: path,
            header: &header,
            lookups: &no_lookups,
            text: None,
            at: Vec::new(),
        };
        let plans = spec
            .events
            .iter()
            .map(|event| Ok((compiler.gate(event)?, EventPlan::compile(event, &compiler)?)))
            .collect::<Result<Vec<(Gate, EventPlan)>, IngestError>>()?;
        batch.report.files.push(path.to_owned());
        let mut rows: BTreeMap<String, LookupRow> = BTreeMap::new();
        let read = input.for_each_row(context.progress, |row| {
            let parsed = row.and_then(|row| {
                let text = row.text(key).trim();
                if text.is_empty() {
                    return Err(row.error(key, format!("blank key of lookup `{}`", spec.name)));
                }
                if let Some(first) = rows.get(text) {
                    return Err(row.error(
                        key,
                        format!(
                            "key listed twice in lookup `{}` (first at line {}): rows joining it could not tell them apart",
                            spec.name, first.line
                        ),
                    ));
                }
                let mut events = Vec::new();
                let mut counted = Vec::new();
                for (gate, plan) in &plans {
                    if gate.opens(row) {
                        events.push(plan.build(row, None)?);
                        counted.extend(gate.count.as_deref());
                    }
                }
                Ok((text.to_owned(), lookup_row(row, header.len(), events), counted))
            });
            match parsed {
                Ok((text, row, counted)) => {
                    for name in counted {
                        batch.report.count(name, 1);
                    }
                    rows.insert(text, row);
                    Ok(())
                }
                Err(error) => rejects.reject(error),
            }
        })?;
        batch.report.rows_read += read;
        Ok(LookupTable {
            name: spec.name.clone(),
            path: path.to_owned(),
            header,
            rows,
        })
    }

    /// The index of a column of the lookup file.
    pub(super) fn column(&self, name: &str) -> Result<usize, IngestError> {
        table::column(&self.path, &self.header, name)
    }

    /// The payloads of the table's events, rows in key order.
    pub(super) fn events(&self) -> impl Iterator<Item = Payload> + '_ {
        self.rows
            .values()
            .flat_map(|row| row.events.iter().cloned())
    }
}

fn lookup_row(row: &Row<'_>, width: usize, events: Vec<Payload>) -> LookupRow {
    LookupRow {
        line: row.line(),
        cells: (0..width)
            .map(|column| row.text(column).to_owned())
            .collect(),
        events,
    }
}

/// A join: the main file's `key` column selects a row of `table`, whose `column` is read.
pub(super) struct Join {
    /// Column of the main file holding the key.
    pub(super) key: usize,
    /// The table.
    pub(super) table: std::sync::Arc<LookupTable>,
    /// Column of the lookup file read.
    pub(super) column: usize,
}

impl Join {
    fn found<'t>(&'t self, row: &Row<'_>) -> Result<&'t LookupRow, Box<RowError>> {
        self.table
            .rows
            .get(row.text(self.key).trim())
            .ok_or_else(|| {
                row.error(
                    self.key,
                    format!(
                        "not a key of lookup `{}` ({})",
                        self.table.name,
                        self.table.path.display()
                    ),
                )
            })
    }

    /// True when the joined cell is blank (an error when the key is missing).
    pub(super) fn is_blank(&self, row: &Row<'_>) -> Result<bool, Box<RowError>> {
        let found = self.found(row)?;
        Ok(cell(found, self.column).trim().is_empty())
    }

    /// Converts the joined cell; a failure names the lookup file's line and column and the row
    /// that joined it.
    pub(super) fn parse<T>(
        &self,
        row: &Row<'_>,
        convert: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Box<RowError>> {
        let found = self.found(row)?;
        let text = cell(found, self.column);
        convert(text).map_err(|reason| {
            let main = row.error(self.key, "");
            Box::new(RowError {
                file: self.table.path.clone(),
                position: Position::Line(found.line),
                column: self
                    .table
                    .header
                    .get(self.column)
                    .cloned()
                    .unwrap_or_default(),
                value: text.to_owned(),
                reason: format!(
                    "{reason} (joined by {} {}, column {} = {:?})",
                    main.file.display(),
                    row.position(),
                    main.column,
                    main.value
                ),
                raw: main.raw,
            })
        })
    }
}

fn cell(row: &LookupRow, column: usize) -> &str {
    row.cells.get(column).map_or("", String::as_str)
}
