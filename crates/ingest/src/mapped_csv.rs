//! `csv`: any CSV file read through a TOML mapping (`--mapping FILE`); see [`crate::mapping`]
//! for the format and `docs/ingest.md` for a guide.
//!
//! Must never: read a file without a mapping, or let a mapping fall back to guesses.

use std::path::PathBuf;

use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::IngestError;
use crate::mapping::Mapping;

/// Reads CSV files through `mapping`.
pub fn read(
    paths: &[PathBuf],
    mapping: &Mapping,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    let mut batch = SourceBatch::new(context.source);
    let mut rejects = Rejects::new(context.skip_invalid);
    for path in paths {
        mapping.read_into(path, context, &mut rejects, &mut batch)?;
    }
    batch.report.rejected = rejects.into_rows();
    Ok(batch)
}
