//! `csv`: any CSV file read through a TOML mapping (`--mapping FILE`); see [`crate::mapping`]
//! for the format and `docs/ingest.md` for a guide.
//!
//! Must never: read a file without a mapping, or let a mapping fall back to guesses.

use std::path::PathBuf;

use crate::batch::{Context, SourceBatch, read_each};
use crate::error::IngestError;
use crate::mapping::Mapping;

/// Reads CSV files through `mapping`.
pub fn read(
    paths: &[PathBuf],
    mapping: &Mapping,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    read_each(paths, context, |path, rejects, batch| {
        mapping.read_into(path, context, rejects, batch)
    })
}
