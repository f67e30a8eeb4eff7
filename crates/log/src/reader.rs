//! Reading a log: a snapshot of the active generation taken at open, record cursors that seek
//! through sparse indexes, event iterators, and the log's identity hash.
//!
//! A reader hands out only records that pass their checks and sit at the sequence number their
//! position implies. On damage it returns an error naming the file and offset and stops; it never
//! skips a record and never yields bytes it has not verified.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cascade_events::Event;
use serde::{Deserialize, Serialize};

use crate::LogError;
use crate::format::{SEGMENT_HEADER_LEN, SegmentIndex};
use crate::layout::{self, SegmentFile};
use crate::manifest::{self, Manifest};
use crate::segment::{self, Chunked, Next, TornTail};

/// One segment as the reader sees it.
struct Segment {
    file: SegmentFile,
    /// Where the valid records of this segment end (file length for sealed segments, the end of
    /// the last valid record for the last one).
    end: u64,
    /// Loaded on first seek into the segment.
    index: Mutex<Option<Arc<SegmentIndex>>>,
}

struct Snapshot {
    dir: PathBuf,
    generation: u64,
    manifest: Manifest,
    segments: Vec<Segment>,
    next_seq: u64,
    torn: Option<TornTail>,
    last_crc: Option<u32>,
}

/// A read-only view of a log, fixed at the moment it was opened: records appended later are
/// not seen (open a new reader for them). Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct LogReader {
    snapshot: Arc<Snapshot>,
}

/// What identifies a log's content, for run files: equal identities mean equal records.
///
/// `hash` is BLAKE3 over, for each record in seq order, its payload length as u32 little-endian
/// followed by its payload bytes (the encoded event). See `docs/log-format.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogIdentity {
    /// First sequence number (always 0).
    pub first_seq: u64,
    /// Last sequence number; `None` for an empty log.
    pub last_seq: Option<u64>,
    /// Number of records.
    pub events: u64,
    /// BLAKE3 content hash, as 64 lowercase hex digits in JSON.
    #[serde(with = "crate::hex32")]
    pub hash: [u8; 32],
}

impl LogIdentity {
    /// The content hash as 64 lowercase hex digits.
    pub fn hash_hex(&self) -> String {
        crate::hex32::to_hex(&self.hash)
    }
}

/// Accumulates a [`LogIdentity`] over records fed in seq order, for callers that read the log
/// anyway (the engine computes it during its replay instead of reading twice).
#[derive(Debug, Clone, Default)]
pub struct IdentityHasher {
    hasher: blake3::Hasher,
    events: u64,
}

impl IdentityHasher {
    /// A hasher for a log starting at seq 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next record's payload.
    pub fn push(&mut self, payload: &[u8]) {
        self.hasher.update(&(payload.len() as u32).to_le_bytes());
        self.hasher.update(payload);
        self.events += 1;
    }

    /// Appends `payload` to `framed` the way the hash frames a record (its length as a
    /// little-endian `u32`, then its bytes), for [`IdentityHasher::push_framed`].
    pub fn frame(framed: &mut Vec<u8>, payload: &[u8]) {
        framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        framed.extend_from_slice(payload);
    }

    /// Adds `records` records framed into `framed` by [`IdentityHasher::frame`], in order: the
    /// same identity as pushing them one by one, in one update, which hashes small records
    /// several times faster (BLAKE3 then works on whole chunks at once).
    pub fn push_framed(&mut self, framed: &[u8], records: u64) {
        self.hasher.update(framed);
        self.events += records;
    }

    /// The identity of the records pushed so far.
    pub fn finish(&self) -> LogIdentity {
        LogIdentity {
            first_seq: 0,
            last_seq: self.events.checked_sub(1),
            events: self.events,
            hash: *self.hasher.finalize().as_bytes(),
        }
    }
}

impl LogReader {
    /// Opens the log at `dir` for reading: lists and checks the segment headers of the active
    /// generation, checks seq continuity where sealed segments have an index, and scans the last
    /// segment to find where its valid records end. A torn tail (left by a crashed writer that
    /// has not been reopened) is excluded and reported by [`LogReader::torn_tail`]; interior
    /// corruption of the last segment is an error here, elsewhere when it is read. A log whose
    /// manifest records an unfinished ingest, or more records than the segments hold, is refused:
    /// a reader never hands out part of an ingest.
    pub fn open(dir: &Path) -> Result<LogReader, LogError> {
        let Some(generation) = layout::read_current(dir)? else {
            if let Some(generation) = layout::generations_with_records(dir)?.into_iter().next() {
                return Err(LogError::MissingCurrent {
                    dir: dir.to_path_buf(),
                    generation,
                });
            }
            return Err(LogError::NotALog {
                dir: dir.to_path_buf(),
                reason: format!("no {} file", layout::CURRENT),
            });
        };
        let gen_dir = dir.join(layout::generation_name(generation));
        let files = layout::list_segments(&gen_dir)?;
        let Some(last) = files.last().cloned() else {
            return Err(LogError::NotALog {
                dir: dir.to_path_buf(),
                reason: format!("{} holds no segment", gen_dir.display()),
            });
        };
        check_continuity(&files)?;
        let manifest = manifest::read(&gen_dir)?;
        let scan = segment::scan(&last.path, last.first_seq, true, |_, _| {})?;
        let next_seq = last.first_seq + scan.index.records;
        crate::writer::check_unsealed(&last, scan.index.records)?;
        manifest.check_tip(dir, next_seq)?;
        let count = files.len();
        let mut segments = Vec::with_capacity(count);
        for (i, file) in files.into_iter().enumerate() {
            if i + 1 == count {
                segments.push(Segment {
                    end: scan.index.segment_len,
                    file,
                    index: Mutex::new(Some(Arc::new(scan.index.clone()))),
                });
            } else {
                segments.push(Segment {
                    end: file.len,
                    index: Mutex::new(None),
                    file,
                });
            }
        }
        Ok(LogReader {
            snapshot: Arc::new(Snapshot {
                dir: dir.to_path_buf(),
                generation,
                manifest,
                segments,
                next_seq,
                torn: scan.torn,
                last_crc: scan.last_crc,
            }),
        })
    }

    /// One past the last readable seq (0 when empty).
    pub fn next_seq(&self) -> u64 {
        self.snapshot.next_seq
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.snapshot.dir
    }

    /// The active generation's manifest: the sources of its events.
    pub fn manifest(&self) -> &Manifest {
        &self.snapshot.manifest
    }

    /// The generation read (increases with every [`crate::rewrite`]).
    pub fn generation(&self) -> u64 {
        self.snapshot.generation
    }

    /// Segment files of the generation, in seq order.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.snapshot
            .segments
            .iter()
            .map(|s| s.file.path.clone())
            .collect()
    }

    /// The segment file holding `seq`, if the snapshot has it.
    pub fn segment_for(&self, seq: u64) -> Option<PathBuf> {
        if seq >= self.snapshot.next_seq {
            return None;
        }
        let segments = &self.snapshot.segments;
        let at = segments
            .partition_point(|s| s.file.first_seq <= seq)
            .checked_sub(1)?;
        Some(segments[at].file.path.clone())
    }

    /// A torn tail the last writer left (a writer open truncates it).
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.snapshot.torn.as_ref()
    }

    /// What changes when the log's content changes: generation, next seq, and the masked CRC of
    /// the last record of the last segment. The catalog keys its derived data on it.
    pub(crate) fn tip(&self) -> crate::catalog::Tip {
        crate::catalog::Tip {
            generation: self.snapshot.generation,
            next_seq: self.snapshot.next_seq,
            last_crc: self.snapshot.last_crc,
        }
    }

    /// A cursor positioned at `from_seq` (at the end when `from_seq >= next_seq`).
    pub fn cursor(&self, from_seq: u64) -> RecordCursor {
        RecordCursor {
            snapshot: Arc::clone(&self.snapshot),
            segment: None,
            seq: from_seq,
            target: from_seq,
            failed: false,
        }
    }

    /// Calls `f(seq, payload)` for every record from `from_seq` on, without allocating per record:
    /// the zero-copy fast path.
    pub fn for_each_record(
        &self,
        from_seq: u64,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), LogError> {
        let mut cursor = self.cursor(from_seq);
        while let Some((seq, payload)) = cursor.next_record()? {
            f(seq, payload);
        }
        Ok(())
    }

    /// Records from `from_seq` on, each as an owned `(seq, payload)`.
    pub fn records(&self, from_seq: u64) -> Records {
        Records {
            cursor: self.cursor(from_seq),
        }
    }

    /// Decoded events from `from_seq` on, with `Event::seq` set.
    pub fn events(&self, from_seq: u64) -> Events {
        Events {
            cursor: self.cursor(from_seq),
        }
    }

    /// The identity of the whole log (reads every record).
    pub fn identity(&self) -> Result<LogIdentity, LogError> {
        let mut hasher = IdentityHasher::new();
        self.for_each_record(0, |_, payload| hasher.push(payload))?;
        Ok(hasher.finish())
    }
}

/// Checks seq continuity between consecutive segments where the earlier one's sidecar index
/// (present and matching its file) says how many records it holds: a mismatch means records are
/// missing between them. Segments without a usable sidecar are checked when read.
pub(crate) fn check_continuity(files: &[SegmentFile]) -> Result<(), LogError> {
    for pair in files.windows(2) {
        let (segment, next) = (&pair[0], &pair[1]);
        let Some(index) = read_sidecar(segment) else {
            continue;
        };
        let ends_at = index.first_seq + index.records;
        if ends_at != next.first_seq {
            return Err(LogError::SeqGap {
                file: segment.path.clone(),
                ends_at,
                next: next.path.clone(),
                next_starts_at: next.first_seq,
            });
        }
    }
    Ok(())
}

fn read_sidecar(segment: &SegmentFile) -> Option<SegmentIndex> {
    let path = layout::index_path(&segment.path);
    let bytes = fs::read(path).ok()?;
    SegmentIndex::decode(&bytes)
        .filter(|index| index.first_seq == segment.first_seq && index.segment_len == segment.len)
}

fn load_index(snapshot: &Snapshot, at: usize) -> Result<Arc<SegmentIndex>, LogError> {
    let segment = &snapshot.segments[at];
    let mut slot = segment
        .index
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(index) = slot.as_ref() {
        return Ok(Arc::clone(index));
    }
    let index = match read_sidecar(&segment.file) {
        Some(index) => index,
        None => segment::scan(&segment.file.path, segment.file.first_seq, false, |_, _| {})?.index,
    };
    let index = Arc::new(index);
    *slot = Some(Arc::clone(&index));
    Ok(index)
}

struct OpenSegment {
    at: usize,
    reader: Chunked,
}

/// A position in a log from which records are read in order, each payload borrowed from an
/// internal buffer (no allocation per record). Stops for good after the first error.
pub struct RecordCursor {
    snapshot: Arc<Snapshot>,
    segment: Option<OpenSegment>,
    /// Seq of the next record the open segment will produce.
    seq: u64,
    /// Records before this seq are read and checked but not returned (seeking inside a segment).
    target: u64,
    failed: bool,
}

impl RecordCursor {
    /// The next record as `(seq, payload)`, `None` at the end of the snapshot.
    pub fn next_record(&mut self) -> Result<Option<(u64, &[u8])>, LogError> {
        if self.failed {
            return Ok(None);
        }
        match self.advance() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(error) => {
                self.failed = true;
                return Err(error);
            }
        }
        let Some(open) = self.segment.as_mut() else {
            return Ok(None);
        };
        let path = &self.snapshot.segments[open.at].file.path;
        let seq = self.seq;
        match open.reader.next_record(seq)? {
            Next::Record(_, payload) => {
                self.seq += 1;
                Ok(Some((seq, payload)))
            }
            Next::End => unreachable_end(path, seq),
            Next::Bad(offset, problem) => {
                self.failed = true;
                Err(LogError::Corrupt {
                    file: path.clone(),
                    offset,
                    seq,
                    problem,
                })
            }
        }
    }

    /// Positions the open segment's reader on the record `self.target` (opening, seeking and
    /// crossing segments as needed). `false` at the end of the snapshot.
    fn advance(&mut self) -> Result<bool, LogError> {
        loop {
            if self.target >= self.snapshot.next_seq {
                return Ok(false);
            }
            let Some(open) = self.segment.as_mut() else {
                self.open_at_target()?;
                continue;
            };
            let segment = &self.snapshot.segments[open.at];
            if open.reader.remaining() == 0 {
                let next = open.at + 1;
                let Some(following) = self.snapshot.segments.get(next) else {
                    return Ok(false);
                };
                if following.file.first_seq != self.seq {
                    return Err(LogError::SeqGap {
                        file: segment.file.path.clone(),
                        ends_at: self.seq,
                        next: following.file.path.clone(),
                        next_starts_at: following.file.first_seq,
                    });
                }
                self.segment = Some(OpenSegment {
                    at: next,
                    reader: Chunked::open(
                        &following.file.path,
                        SEGMENT_HEADER_LEN as u64,
                        following.end,
                    )?,
                });
                continue;
            }
            if self.seq == self.target {
                self.target += 1;
                return Ok(true);
            }
            // Skipping towards the target: still check every record skipped.
            match open.reader.next_record(self.seq)? {
                Next::Record(..) => self.seq += 1,
                Next::End => return unreachable_end(&segment.file.path, self.seq),
                Next::Bad(offset, problem) => {
                    return Err(LogError::Corrupt {
                        file: segment.file.path.clone(),
                        offset,
                        seq: self.seq,
                        problem,
                    });
                }
            }
        }
    }

    fn open_at_target(&mut self) -> Result<(), LogError> {
        let segments = &self.snapshot.segments;
        let at = segments
            .partition_point(|s| s.file.first_seq <= self.target)
            .saturating_sub(1);
        let index = load_index(&self.snapshot, at)?;
        let entry = index.floor(self.target);
        let (seq, offset) = entry.map_or(
            (segments[at].file.first_seq, SEGMENT_HEADER_LEN as u64),
            |e| (e.seq, e.offset),
        );
        self.segment = Some(OpenSegment {
            at,
            reader: Chunked::open(&segments[at].file.path, offset, segments[at].end)?,
        });
        self.seq = seq;
        Ok(())
    }
}

/// A reader whose limit is not exhausted cannot report its end; reaching this is a bug in the
/// cursor's bookkeeping, reported as an error rather than a panic.
fn unreachable_end<T>(path: &Path, seq: u64) -> Result<T, LogError> {
    Err(LogError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        seq,
        problem: crate::format::RecordProblem::Incomplete,
    })
}

/// Owned records, see [`LogReader::records`].
pub struct Records {
    cursor: RecordCursor,
}

impl Iterator for Records {
    type Item = Result<(u64, Vec<u8>), LogError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.cursor
            .next_record()
            .map(|r| r.map(|(seq, payload)| (seq, payload.to_vec())))
            .transpose()
    }
}

/// Decoded events, see [`LogReader::events`].
pub struct Events {
    cursor: RecordCursor,
}

impl Iterator for Events {
    type Item = Result<Event, LogError>;
    fn next(&mut self) -> Option<Self::Item> {
        let (seq, payload) = match self.cursor.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(error) => return Some(Err(error)),
        };
        let decoded = cascade_events::decode(seq, payload);
        Some(decoded.map_err(|source| {
            let file = self
                .cursor
                .segment
                .as_ref()
                .map(|open| self.cursor.snapshot.segments[open.at].file.path.clone())
                .unwrap_or_default();
            self.cursor.failed = true;
            LogError::Decode { file, seq, source }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_records_hash_as_records_pushed_one_by_one() {
        let records: Vec<Vec<u8>> = (0..300u32)
            .map(|i| (0..(i * 7 % 400)).map(|b| (b ^ i) as u8).collect())
            .collect();
        let mut one_by_one = IdentityHasher::new();
        for record in &records {
            one_by_one.push(record);
        }
        // Uneven batches: where one update ends and the next begins must not matter.
        let mut batched = IdentityHasher::new();
        for batch in records.chunks(37) {
            let mut framed = Vec::new();
            for record in batch {
                IdentityHasher::frame(&mut framed, record);
            }
            batched.push_framed(&framed, batch.len() as u64);
        }
        let expected = one_by_one.finish();
        assert_eq!(batched.finish(), expected);
        assert_eq!(expected.events, 300);
        let mut unframed = IdentityHasher::new();
        unframed.push_framed(&records.concat(), 300);
        assert_ne!(
            unframed.finish().hash,
            expected.hash,
            "the framing is part of the hash"
        );
    }
}
