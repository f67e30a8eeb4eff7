//! The generation manifest (`gen-<N>/MANIFEST`): the sources whose events the generation holds,
//! and the ingest batch most recently started in it.
//!
//! It makes the segments self-describing, so the catalog's source registry (duplicate protection)
//! can always be rebuilt from the log, and it is the durable record of an ingest's intent: an
//! ingest writes the manifest naming its new sources and the seq range it is about to append
//! *before* the first record, so a process that dies half-way leaves a manifest whose batch the
//! segments do not reach, and the next writer open rolls the segments back to the batch's start
//! (`writer`). Readers refuse such a log instead of handing out the partial batch.
//!
//! Bytes: `<CRC32C of the JSON, 8 hex digits> <JSON>\n`, written atomically (temp, fsync, rename,
//! directory fsync). A manifest that fails its check is [`LogError::Manifest`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::SourceRecord;
use crate::{LogError, layout};

/// The manifest file name inside a generation directory.
pub(crate) const MANIFEST: &str = "MANIFEST";

/// What a generation holds, by source, and the ingest last started in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every source whose events are in the generation, in id order (ids dense from 0).
    pub sources: Vec<SourceRecord>,
    /// The last ingest batch started in this generation (kept after it completes: a log whose
    /// tip is below `to_seq` did not complete it).
    pub batch: Option<Batch>,
}

/// An ingest's intent: append exactly the records `from_seq..to_seq`, registering the last
/// `sources` sources of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The log's tip when the ingest began.
    pub from_seq: u64,
    /// The tip once every record of the ingest is written.
    pub to_seq: u64,
    /// How many sources (at the end of [`Manifest::sources`]) the ingest adds.
    pub sources: u32,
}

impl Manifest {
    /// The batch whose records the log at tip `next_seq` does not fully hold.
    pub fn unfinished(&self, next_seq: u64) -> Option<Batch> {
        self.batch.filter(|batch| next_seq < batch.to_seq)
    }

    /// The manifest with an unfinished batch undone: its sources dropped, no batch.
    pub(crate) fn without_batch(&self) -> Manifest {
        let dropped = self.batch.map_or(0, |batch| batch.sources as usize);
        let keep = self.sources.len().saturating_sub(dropped);
        Manifest {
            sources: self.sources[..keep].to_vec(),
            batch: None,
        }
    }

    /// Checks the manifest against the tip of the segments (`next_seq`) of the log at `dir`:
    /// a tip below the start of the last batch means durable records are missing; a tip below
    /// its end is an interrupted ingest.
    pub(crate) fn check_tip(&self, dir: &Path, next_seq: u64) -> Result<(), LogError> {
        let Some(batch) = self.batch else {
            return Ok(());
        };
        if next_seq < batch.from_seq {
            return Err(LogError::LostRecords {
                dir: dir.to_path_buf(),
                expected: batch.from_seq,
                found: next_seq,
            });
        }
        if next_seq < batch.to_seq {
            return Err(LogError::UnfinishedIngest {
                dir: dir.to_path_buf(),
                from_seq: batch.from_seq,
                to_seq: batch.to_seq,
                next_seq,
            });
        }
        Ok(())
    }
}

/// The manifest path of a generation directory.
pub(crate) fn path(gen_dir: &Path) -> PathBuf {
    gen_dir.join(MANIFEST)
}

/// Reads and checks a generation's manifest.
pub(crate) fn read(gen_dir: &Path) -> Result<Manifest, LogError> {
    let file = path(gen_dir);
    let damaged = |reason: String| LogError::Manifest {
        file: file.clone(),
        reason,
    };
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(damaged(
                "missing (every generation gets one when it is created)".into(),
            ));
        }
        Err(e) => return Err(LogError::io("read", &file, e)),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged("not UTF-8".into()))?;
    let (crc, json) = text
        .strip_suffix('\n')
        .and_then(|line| line.split_once(' '))
        .ok_or_else(|| damaged("not `<crc> <json>` on one line".into()))?;
    if crc != format!("{:08x}", crc32c::crc32c(json.as_bytes())) {
        return Err(damaged("check failed (damaged)".into()));
    }
    serde_json::from_str(json).map_err(|e| damaged(format!("unreadable: {e}")))
}

/// Writes a generation's manifest atomically.
pub(crate) fn write(gen_dir: &Path, manifest: &Manifest) -> Result<(), LogError> {
    let json = serde_json::to_string(manifest).map_err(|e| LogError::Manifest {
        file: path(gen_dir),
        reason: format!("cannot encode: {e}"),
    })?;
    let line = format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()));
    layout::write_atomic(gen_dir, MANIFEST, line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest whose batch appends seqs 3..10.
    fn batch_3_to_10() -> Manifest {
        Manifest {
            sources: Vec::new(),
            batch: Some(Batch {
                from_seq: 3,
                to_seq: 10,
                sources: 0,
            }),
        }
    }

    #[test]
    fn round_trips_and_rejects_any_changed_byte() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = batch_3_to_10();
        write(dir.path(), &manifest).unwrap();
        assert_eq!(read(dir.path()).unwrap(), manifest);
        let bytes = std::fs::read(path(dir.path())).unwrap();
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x20;
            std::fs::write(path(dir.path()), &changed).unwrap();
            assert!(read(dir.path()).is_err(), "byte {at} changed unnoticed");
        }
    }

    #[test]
    fn the_tip_is_checked_against_the_batch() {
        let manifest = batch_3_to_10();
        let dir = Path::new("log");
        assert!(matches!(
            manifest.check_tip(dir, 2),
            Err(LogError::LostRecords { .. })
        ));
        assert!(matches!(
            manifest.check_tip(dir, 3),
            Err(LogError::UnfinishedIngest { .. })
        ));
        assert!(manifest.check_tip(dir, 10).is_ok());
        assert!(
            manifest.check_tip(dir, 12).is_ok(),
            "appends after the batch"
        );
    }
}
