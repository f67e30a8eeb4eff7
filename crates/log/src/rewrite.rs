//! Atomic whole-log replacement: build a new generation beside the active one, then switch.
//!
//! Steps, each durable before the next: (1) write every record into `gen-<N+1>/` and fsync it;
//! (2) write `CURRENT.tmp` naming `gen-<N+1>`, fsync; (3) rename it over `CURRENT`, fsync the log
//! directory — the switch; (4) remove `gen-<N>`. A crash before (3) leaves the old content (the
//! next writer open removes the unfinished generation); a crash after it leaves the new content
//! (the old generation is removed as a leftover). Readers never see a mix. The new generation's
//! manifest (the old one's sources plus those the caller registers) is written before its first
//! segment, so the sources switch together with the events.

use std::path::Path;

use cascade_events::Event;

use crate::layout;
use crate::manifest::Manifest;
use crate::writer::{DirLock, SegmentWriter, WriterOptions};
use crate::{LogError, SourceRecord};

/// A point in [`rewrite_observed`] that has just been reached (durably).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RewriteStep {
    /// The new generation holds every record, fsynced; `CURRENT` still names the old one.
    GenerationWritten,
    /// `CURRENT.tmp` names the new generation; `CURRENT` still names the old one.
    CurrentTempWritten,
    /// `CURRENT` names the new generation: the rewrite has happened.
    Switched,
    /// The old generation is gone.
    OldGenerationRemoved,
}

/// Atomically replaces the whole content of the log at `dir` with `events`, re-sequenced from 0
/// (their `seq` fields are ignored). Creates the log if absent. Returns the number of events.
///
/// Needs the writer lock: drop any [`crate::LogWriter`] of this log first. Readers opened before
/// the switch keep reading the old generation until it is removed at the end, then fail with an
/// I/O error (never wrong data). The catalog's statistics and identity are recomputed on their
/// next use; checkpoints are not touched (they name seqs of the old content: clear them with
/// [`crate::Catalog::clear_checkpoints`] when the content before them changed).
pub fn rewrite(
    dir: &Path,
    events: impl IntoIterator<Item = Event>,
    options: WriterOptions,
) -> Result<u64, LogError> {
    rewrite_observed(dir, events, options, Vec::new(), |_| {})
}

/// [`rewrite`] that also registers `sources` (ids continuing the manifest's) in the new
/// generation's manifest: the switch makes the events and their sources visible together.
pub fn rewrite_registering(
    dir: &Path,
    events: impl IntoIterator<Item = Event>,
    options: WriterOptions,
    sources: Vec<SourceRecord>,
) -> Result<u64, LogError> {
    rewrite_observed(dir, events, options, sources, |_| {})
}

/// [`rewrite_registering`], calling `on_step` as each step becomes durable (progress reporting;
/// the crash tests abort the process from it).
pub fn rewrite_observed(
    dir: &Path,
    events: impl IntoIterator<Item = Event>,
    options: WriterOptions,
    sources: Vec<SourceRecord>,
    mut on_step: impl FnMut(RewriteStep),
) -> Result<u64, LogError> {
    // The reader refuses an old generation with an unfinished ingest, whose sources must not
    // be carried over (a writer open rolls it back first).
    let manifest_of = |old: Option<u64>| -> Result<Manifest, LogError> {
        let mut manifest = match old {
            Some(_) => Manifest {
                sources: crate::LogReader::open(dir)?.manifest().sources.clone(),
                batch: None,
            },
            None => Manifest::default(),
        };
        manifest.sources.extend(sources);
        Ok(manifest)
    };
    let fill = |writer: &mut SegmentWriter| -> Result<(), LogError> {
        for event in events {
            writer.append(&event)?;
        }
        Ok(())
    };
    replace_generation(dir, options, manifest_of, fill, &mut on_step)
}

/// The steps of a rewrite: lock, remove leftovers, build the next generation with `manifest_of`
/// (given the old generation) and the records `fill` appends, commit, switch, remove the old one.
pub(crate) fn replace_generation(
    dir: &Path,
    options: WriterOptions,
    manifest_of: impl FnOnce(Option<u64>) -> Result<Manifest, LogError>,
    fill: impl FnOnce(&mut SegmentWriter) -> Result<(), LogError>,
    on_step: &mut dyn FnMut(RewriteStep),
) -> Result<u64, LogError> {
    let _lock = DirLock::acquire(dir)?;
    let old = layout::read_current(dir)?;
    match old {
        Some(generation) => {
            layout::remove_leftovers(dir, generation)?;
        }
        None => {
            layout::check_fresh(dir)?;
            layout::remove_generations(dir)?;
        }
    }
    let manifest = manifest_of(old)?;
    let new = old.map_or(0, |generation| generation + 1);
    let gen_dir = dir.join(layout::generation_name(new));
    let mut writer = SegmentWriter::create(&gen_dir, options, &manifest)?;
    fill(&mut writer)?;
    writer.commit()?;
    let count = writer.next_seq();
    drop(writer);
    on_step(RewriteStep::GenerationWritten);
    layout::write_current_steps(dir, new, || on_step(RewriteStep::CurrentTempWritten))?;
    on_step(RewriteStep::Switched);
    if let Some(generation) = old {
        layout::remove_dir_all(&dir.join(layout::generation_name(generation)))?;
        layout::sync_dir(dir)?;
    }
    on_step(RewriteStep::OldGenerationRemoved);
    Ok(count)
}
