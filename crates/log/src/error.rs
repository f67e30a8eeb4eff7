//! The one error type of the log crate.
//!
//! Every variant names what a user needs to find the problem: the file, the byte offset, the
//! sequence number, the value found. Corruption is always an error, never a silently shortened log.

use std::io;
use std::path::PathBuf;

use crate::format::RecordProblem;

/// Everything that can go wrong opening, reading, writing or verifying a log and its catalog.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`open`, `read`, `fsync`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The directory does not hold a cascade log (or holds something else).
    #[error("{} is not a cascade log: {reason}", dir.display())]
    NotALog {
        /// The directory given.
        dir: PathBuf,
        /// What is missing or unexpected.
        reason: String,
    },
    /// Another writer (or a rewrite) holds the log's lock.
    #[error("{} is locked by another writer (close it first; a rewrite also needs the lock)", dir.display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// A segment file does not start with the segment magic.
    #[error("{}: not a segment file (starts with \"{}\", expected \"CSCD-SEG\")", file.display(), found.escape_ascii())]
    BadMagic {
        /// The segment file.
        file: PathBuf,
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// A segment file written by a format version this build cannot read.
    #[error("{}: unknown segment format version {found} (this build reads version {expected})", file.display())]
    UnknownVersion {
        /// The segment file.
        file: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// A segment file with no bytes at all (segments are created with their header atomically,
    /// so this is damage, not a crash artefact).
    #[error("{}: zero-length segment file", file.display())]
    ZeroLengthSegment {
        /// The segment file.
        file: PathBuf,
    },
    /// A segment file shorter than its header, or whose header check fails.
    #[error("{}: segment header damaged ({reason})", file.display())]
    BadHeader {
        /// The segment file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The first sequence number in a segment header differs from the one in its file name.
    #[error("{}: header says first seq {in_header}, file name says {in_name}", file.display())]
    FirstSeqMismatch {
        /// The segment file.
        file: PathBuf,
        /// First seq recorded in the header.
        in_header: u64,
        /// First seq encoded in the file name.
        in_name: u64,
    },
    /// Sequence numbers jump between two segments: a segment is missing (or one is short).
    #[error("{}: segment ends at seq {ends_at} but the next segment {} starts at seq {next_starts_at} (missing segment?)", file.display(), next.display())]
    SeqGap {
        /// The segment before the gap.
        file: PathBuf,
        /// One past the last seq of that segment.
        ends_at: u64,
        /// The segment after the gap.
        next: PathBuf,
        /// Its first seq.
        next_starts_at: u64,
    },
    /// The first segment does not start at seq 0: the log's beginning is missing.
    #[error("{}: log starts at seq {first_seq}, expected 0 (first segment missing?)", file.display())]
    MissingStart {
        /// The earliest segment present.
        file: PathBuf,
        /// Its first seq.
        first_seq: u64,
    },
    #[error("{}: written in segment format version {found}, whose records do not carry their seq; this build reads version {} only: run `cascade log upgrade {}` to rewrite the log (the old generation is kept until the new one is complete)", file.display(), crate::format::FORMAT_VERSION, log_dir_of(file).display())]
    /// A segment of an earlier format version (readable only by [`crate::upgrade`]).
    OldFormat {
        /// The segment file.
        file: PathBuf,
        /// Its version.
        found: u32,
    },
    #[error("{}: no CURRENT file, but {} holds records: the log is damaged (CURRENT lost) and nothing was changed; run `cascade log repair {}` to rebuild CURRENT from the generation present", dir.display(), generation.display(), dir.display())]
    /// A log directory whose `CURRENT` is missing while a generation holds records.
    MissingCurrent {
        /// The log directory.
        dir: PathBuf,
        /// A generation directory that holds records.
        generation: PathBuf,
    },
    #[error("{}: the last segment has a sealed-segment index, so a later segment existed and is missing (deleted?); records after seq {ends_at} are lost: restore the missing segment(s)", file.display())]
    /// The last segment of the log was sealed: the segments after it are gone.
    MissingTail {
        /// The (now) last segment.
        file: PathBuf,
        /// One past its last seq.
        ends_at: u64,
    },
    #[error("{}: an ingest was interrupted: it was to write seqs {from_seq}..{to_seq} and the log holds {next_seq} events; readers refuse the partial ingest; the next `cascade ingest` or `cascade log repair {}` rolls the log back to seq {from_seq}", dir.display(), dir.display())]
    /// An ingest recorded its intent in the manifest but did not finish writing.
    UnfinishedIngest {
        /// The log directory.
        dir: PathBuf,
        /// The log's tip before the ingest.
        from_seq: u64,
        /// The tip the finished ingest would have.
        to_seq: u64,
        /// The tip found.
        next_seq: u64,
    },
    #[error("{}: the log holds {found} events but its manifest records an ingest that started at seq {expected}: records are missing (a deleted or truncated segment?)", dir.display())]
    /// Fewer records than the manifest proves were durable.
    LostRecords {
        /// The log directory.
        dir: PathBuf,
        /// The tip the manifest proves.
        expected: u64,
        /// The tip found.
        found: u64,
    },
    #[error("{}: {reason}", file.display())]
    /// A sealed segment's index that disagrees with the segment (`verify` only: readers rebuild
    /// an index they cannot use, and check the seq of every record they land on).
    IndexMismatch {
        /// The index file.
        file: PathBuf,
        /// What disagrees.
        reason: String,
    },
    #[error("{}: {reason}; run `cascade log repair {}`", file.display(), log_dir_of(file).display())]
    /// A generation's manifest is missing or damaged.
    Manifest {
        /// The manifest file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A damaged record that is not a torn tail: it cannot be dropped without losing data.
    #[error("{}: corruption at byte offset {offset} (seq {seq}): {problem}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the damaged record's frame header in the file.
        offset: u64,
        /// The sequence number the record would have had.
        seq: u64,
        /// Which check failed.
        problem: RecordProblem,
    },
    /// A record payload that is empty or larger than the format allows.
    #[error("record of {len} bytes cannot be stored (records hold 1..={max} bytes)")]
    RecordSize {
        /// The payload length offered.
        len: usize,
        /// The largest allowed.
        max: u32,
    },
    /// An earlier write or fsync of this writer failed, so what reached the disk is unknown.
    #[error("the log writer for {} failed earlier and cannot continue; reopen the log to recover", dir.display())]
    Poisoned {
        /// The log directory.
        dir: PathBuf,
    },
    /// A record passed its CRC but is not an event this build can decode.
    #[error("{}: seq {seq}: {source}", file.display())]
    Decode {
        /// The segment file.
        file: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// Why decoding failed.
        #[source]
        source: cascade_events::DecodeError,
    },
    /// The sled catalog failed.
    #[error("catalog {}: {source}", path.display())]
    Catalog {
        /// The catalog directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// Another process has the catalog open (sled allows one process at a time).
    #[error("catalog {} is in use by another process", path.display())]
    CatalogBusy {
        /// The catalog directory.
        path: PathBuf,
    },
    /// A catalog entry does not parse (written by another version, or damaged).
    #[error("catalog entry {key}: {reason}")]
    CatalogEntry {
        /// The entry's tree and key.
        key: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A source with the same content hash is already in the catalog.
    #[error("source with content hash {hash} is already ingested as source {existing}")]
    DuplicateSource {
        /// The id it has.
        existing: u32,
        /// Its content hash, hex.
        hash: String,
    },
    /// No source with this id exists.
    #[error("no source with id {0} in the catalog")]
    UnknownSource(u32),
    /// A checkpoint namespace or state key that cannot be stored.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidKey {
        /// `checkpoint namespace` or `state key`.
        what: &'static str,
        /// The value offered.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the error reports damage to the log's files (as opposed to a failed system call,
    /// a lock, or misuse): the class `cascade log verify` exits 1 for.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            LogError::BadMagic { .. }
                | LogError::UnknownVersion { .. }
                | LogError::ZeroLengthSegment { .. }
                | LogError::BadHeader { .. }
                | LogError::FirstSeqMismatch { .. }
                | LogError::SeqGap { .. }
                | LogError::MissingStart { .. }
                | LogError::Corrupt { .. }
                | LogError::Decode { .. }
                | LogError::OldFormat { .. }
                | LogError::MissingCurrent { .. }
                | LogError::MissingTail { .. }
                | LogError::UnfinishedIngest { .. }
                | LogError::LostRecords { .. }
                | LogError::IndexMismatch { .. }
                | LogError::Manifest { .. }
        )
    }
}

/// The log directory of a file inside a generation directory.
fn log_dir_of(file: &std::path::Path) -> &std::path::Path {
    file.parent()
        .and_then(std::path::Path::parent)
        .unwrap_or(file)
}
