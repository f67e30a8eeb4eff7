//! Full verification of a log: every header, every record's checks and seq, seq continuity
//! across segments, every sealed segment's index against its segment, the manifest against the
//! tip, and that every record decodes as an event.
//!
//! Verification only reads; it never truncates or repairs (a writer open does that for a torn
//! tail, and nothing does it for corruption).

use std::path::PathBuf;

use crate::format::SegmentIndex;
use crate::reader::{IdentityHasher, LogIdentity, LogReader};
use crate::segment::{self, TornTail};
use crate::{LogError, layout};

/// One segment as verification saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// The segment file.
    pub path: PathBuf,
    /// Its first seq.
    pub first_seq: u64,
    /// Valid records in it.
    pub records: u64,
}

/// The result of verifying a log that has no corruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Active generation.
    pub generation: u64,
    /// Every segment, in seq order.
    pub segments: Vec<SegmentReport>,
    /// Valid records (= events) in the log.
    pub records: u64,
    /// Payload bytes in them.
    pub payload_bytes: u64,
    /// A torn tail left by a crashed writer (truncated by the next writer open). Not corruption,
    /// but the log was not closed cleanly.
    pub torn_tail: Option<TornTail>,
    /// Content identity.
    pub identity: LogIdentity,
}

/// Reads and checks the whole log at `dir`. Corruption is an `Err` naming file and offset (see
/// [`LogError::is_corruption`]); a torn tail is reported in the result.
pub fn verify(dir: &std::path::Path) -> Result<VerifyReport, LogError> {
    let reader = LogReader::open(dir)?;
    let paths = reader.segment_paths();
    let mut segments: Vec<SegmentReport> = paths
        .iter()
        .map(|path| SegmentReport {
            path: path.clone(),
            first_seq: segment_first_seq(path),
            records: 0,
        })
        .collect();
    let mut hasher = IdentityHasher::new();
    let mut payload_bytes = 0u64;
    let mut at = 0usize;
    let mut cursor = reader.cursor(0);
    while let Some((seq, payload)) = cursor.next_record()? {
        while at + 1 < segments.len() && segments[at + 1].first_seq <= seq {
            at += 1;
        }
        segments[at].records += 1;
        payload_bytes += payload.len() as u64;
        hasher.push(payload);
        if let Err(source) = cascade_events::decode(seq, payload) {
            return Err(LogError::Decode {
                file: segments[at].path.clone(),
                seq,
                source,
            });
        }
    }
    for segment in segments.iter().take(segments.len().saturating_sub(1)) {
        check_index(segment)?;
    }
    Ok(VerifyReport {
        generation: reader.generation(),
        segments,
        records: reader.next_seq(),
        payload_bytes,
        torn_tail: reader.torn_tail().cloned(),
        identity: hasher.finish(),
    })
}

/// Checks a sealed segment's sidecar index, when it has one, against the index its records give.
/// Readers never trust an index that fails its own checks and check the seq of every record
/// they land on, so a bad index cannot make them hand out a wrong record; `verify` reports it.
fn check_index(segment: &SegmentReport) -> Result<(), LogError> {
    let path = layout::index_path(&segment.path);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LogError::io("read", &path, e)),
    };
    let mismatch = |reason: String| LogError::IndexMismatch {
        file: path.clone(),
        reason,
    };
    let stored = SegmentIndex::decode(&bytes)
        .ok_or_else(|| mismatch("index damaged (its check or consistency fails)".into()))?;
    let actual = segment::scan(&segment.path, segment.first_seq, false, |_, _| {})?.index;
    if stored != actual {
        return Err(mismatch(format!(
            "index disagrees with its segment: it describes {} records in {} bytes with {} entries, the segment holds {} records in {} bytes with {} entries",
            stored.records,
            stored.segment_len,
            stored.entries.len(),
            actual.records,
            actual.segment_len,
            actual.entries.len()
        )));
    }
    Ok(())
}

/// The first seq a listed segment's (already validated) name encodes.
fn segment_first_seq(path: &std::path::Path) -> u64 {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .unwrap_or(0)
}
