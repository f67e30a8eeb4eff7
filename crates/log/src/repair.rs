//! `repair` rebuilds what can be rebuilt in a damaged log directory, saying what it did;
//! `upgrade` rewrites a format-version-1 log in the current format.
//!
//! Repair never invents or drops events silently: it rebuilds `CURRENT` only when exactly one
//! generation holds records, a missing manifest from the catalog's sources, the catalog from the
//! manifest, and lets a writer open roll back an interrupted ingest and truncate a torn tail (each
//! reported). Lost segments or records cannot be rebuilt: they are reported as problems.

use std::fmt;
use std::path::Path;

use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::layout;
use crate::manifest::{self, Manifest};
use crate::rewrite::replace_generation;
use crate::writer::{DirLock, LogWriter, WriterOptions};
use crate::{Catalog, LogError, SourceRecord};

/// What [`repair`] did and what it could not fix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Each change made, in order.
    pub actions: Vec<String>,
    /// Damage left as it is (the log stays refused until it is dealt with).
    pub problems: Vec<String>,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            writeln!(f, "repaired: {action}")?;
        }
        for problem in &self.problems {
            writeln!(f, "NOT REPAIRED: {problem}")?;
        }
        if self.actions.is_empty() && self.problems.is_empty() {
            writeln!(f, "nothing to repair")?;
        }
        Ok(())
    }
}

/// Repairs the log at `dir` as far as it can be repaired without losing or inventing events.
pub fn repair(dir: &Path) -> Result<RepairReport, LogError> {
    let mut report = RepairReport::default();
    let lock = DirLock::acquire(dir)?;
    let generation = match layout::read_current(dir)? {
        Some(generation) => generation,
        None => {
            let found = layout::generations_with_records(dir)?;
            match found.as_slice() {
                [] => {
                    report
                        .actions
                        .push("no generation holds records: nothing to rebuild".into());
                    return Ok(report);
                }
                [only] => {
                    let generation = layout::generation_of(only).unwrap_or(0);
                    layout::write_current(dir, generation)?;
                    report.actions.push(format!(
                        "rebuilt CURRENT naming {} (the only generation holding records)",
                        layout::generation_name(generation)
                    ));
                    generation
                }
                several => {
                    let names: Vec<String> =
                        several.iter().map(|g| g.display().to_string()).collect();
                    report.problems.push(format!(
                        "no CURRENT and several generations hold records ({}): cannot tell which is current; write CURRENT by hand (\"gen-<20 digits>\\n\")",
                        names.join(", ")
                    ));
                    return Ok(report);
                }
            }
        }
    };
    let gen_dir = dir.join(layout::generation_name(generation));
    if let Err(error @ LogError::Manifest { .. }) = manifest::read(&gen_dir) {
        let sources = Catalog::open(dir)
            .and_then(|catalog| catalog.sources())
            .unwrap_or_default();
        manifest::write(
            &gen_dir,
            &Manifest {
                sources: sources.clone(),
                batch: None,
            },
        )?;
        report.actions.push(format!(
            "{error}: rebuilt it from the catalog's {} source(s){}",
            sources.len(),
            if sources.is_empty() {
                " (re-ingesting an earlier source is no longer recognised as a repeat)"
            } else {
                ""
            }
        ));
    }
    drop(lock);
    let (writer, recovery) = match LogWriter::open(dir, WriterOptions::default()) {
        Ok(opened) => opened,
        Err(error) if error.is_corruption() => {
            report.problems.push(format!(
                "{error} (cannot be rebuilt: restore from a backup)"
            ));
            return Ok(report);
        }
        Err(error) => return Err(error),
    };
    for removed in &recovery.removed {
        report.actions.push(format!(
            "removed {} (left by an interrupted operation)",
            removed.display()
        ));
    }
    if let Some(torn) = &recovery.torn_tail {
        report.actions.push(format!(
            "truncated a torn tail of {}: {} bytes at offset {} ({})",
            torn.segment.display(),
            torn.bytes,
            torn.offset,
            torn.problem
        ));
    }
    if let Some(rolled) = &recovery.rolled_back {
        report.actions.push(format!(
            "rolled back an interrupted ingest: removed its {} record(s) (seqs {}..), the log is back at seq {}; run the ingest again",
            rolled.records, rolled.batch.from_seq, rolled.batch.from_seq
        ));
    }
    let sources = writer.manifest().sources.clone();
    drop(writer);
    let (catalog, damage) = Catalog::open_rebuilding(dir)?;
    if let Some(damage) = damage {
        report.actions.push(format!(
            "the catalog was unreadable ({damage}): deleted it and started an empty one (checkpoints are recomputed by the next replay)"
        ));
    }
    if catalog.sync_sources(&sources)? {
        report.actions.push(format!(
            "rebuilt the catalog's source registry from the log's manifest ({} source(s))",
            sources.len()
        ));
    }
    Ok(report)
}

/// Rewrites a log written in segment format version 1 (records without their seq) in the current
/// format, as a new generation switched in atomically; the catalog's sources become the new
/// manifest. Every version-1 record is checked (any damage is an error and nothing changes).
/// Returns the number of records.
pub fn upgrade(dir: &Path, sources: Vec<SourceRecord>) -> Result<u64, LogError> {
    let generation = layout::read_current(dir)?.ok_or_else(|| LogError::NotALog {
        dir: dir.to_path_buf(),
        reason: "no CURRENT file".into(),
    })?;
    let gen_dir = dir.join(layout::generation_name(generation));
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(&gen_dir).map_err(|e| LogError::io("list", &gen_dir, e))? {
        let path = entry.map_err(|e| LogError::io("list", &gen_dir, e))?.path();
        if path.extension().is_some_and(|e| e == "seg") {
            segments.push(path);
        }
    }
    segments.sort();
    let fill = |writer: &mut crate::writer::SegmentWriter| -> Result<(), LogError> {
        for path in &segments {
            let bytes = std::fs::read(path).map_err(|e| LogError::io("read", path, e))?;
            let header = bytes
                .first_chunk::<SEGMENT_HEADER_LEN>()
                .and_then(format::decode_segment_header_v1)
                .ok_or_else(|| LogError::BadHeader {
                    file: path.clone(),
                    reason: "not a valid format-version-1 segment header".into(),
                })?;
            if header != writer.next_seq() {
                return Err(LogError::MissingStart {
                    file: path.clone(),
                    first_seq: header,
                });
            }
            let mut at = SEGMENT_HEADER_LEN;
            while at < bytes.len() {
                let payload =
                    format::check_record_v1(&bytes[at..]).map_err(|problem| LogError::Corrupt {
                        file: path.clone(),
                        offset: at as u64,
                        seq: writer.next_seq(),
                        problem,
                    })?;
                at += format::RECORD_HEADER_LEN_V1 + payload.len();
                writer.append_raw(payload)?;
            }
        }
        Ok(())
    };
    let manifest_of = |_| {
        Ok(Manifest {
            sources,
            batch: None,
        })
    };
    replace_generation(
        dir,
        WriterOptions::default(),
        manifest_of,
        fill,
        &mut |_| {},
    )
}
