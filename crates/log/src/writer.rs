//! Appending to a log: buffered batches, durable commits, segment rolls, and recovery on open.
//!
//! Durability rule: a record is durable once `commit` has returned. Before that it may or may not
//! survive a crash; if some uncommitted records survive, they are a prefix of what was appended.
//! The writer never rewrites a byte that a commit covered, and recovery only truncates a tail
//! that is certainly torn (see `segment`).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use cascade_events::Event;

use crate::format::{
    self, INDEX_INTERVAL_BYTES, IndexEntry, MAX_RECORD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
    SegmentIndex,
};
use crate::layout::{self, SegmentFile};
use crate::manifest::{self, Batch, Manifest};
use crate::segment::{self, Chunked, Next, TornTail};
use crate::storage::storage;
use crate::{LogError, SourceRecord};

/// How a writer lays out and buffers a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// A segment rolls before a record would make it larger than this (a record larger than
    /// the whole budget gets a segment of its own). Default 64 MiB.
    pub segment_bytes: u64,
    /// Appended records are written to the file (without fsync) once this many bytes are
    /// buffered, and at every commit. Default 1 MiB.
    pub buffer_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_bytes: 64 << 20,
            buffer_bytes: 1 << 20,
        }
    }
}

/// What opening a writer found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// A torn tail that was truncated (bytes dropped = `bytes`).
    pub torn_tail: Option<TornTail>,
    /// Leftovers of interrupted operations that were removed: temporary files, an unfinished or
    /// superseded generation of a rewrite.
    pub removed: Vec<PathBuf>,
    /// An interrupted ingest batch whose records were removed (the log rolled back to the tip
    /// before it).
    pub rolled_back: Option<RolledBack>,
    /// The seq the next append gets.
    pub next_seq: u64,
}

/// An interrupted ingest undone by a writer open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The batch as the manifest recorded it.
    pub batch: Batch,
    /// Records of the batch that had reached the segments and were removed.
    pub records: u64,
    /// The sources the batch would have registered (dropped from the manifest).
    pub sources: Vec<SourceRecord>,
}

impl RecoveryReport {
    /// True when the log was left cleanly (nothing truncated, removed or rolled back).
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none() && self.removed.is_empty() && self.rolled_back.is_none()
    }

    /// Bytes dropped from a torn tail.
    pub fn bytes_dropped(&self) -> u64 {
        self.torn_tail.as_ref().map_or(0, |t| t.bytes)
    }
}

/// Holds the log's writer lock for as long as it lives.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, LogError> {
        fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
        let path = dir.join(layout::LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LogError::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(LogError::io("lock", path, e)),
        }
    }
}

/// Appends records to the segments of one generation directory.
pub(crate) struct SegmentWriter {
    gen_dir: PathBuf,
    options: WriterOptions,
    file: File,
    path: PathBuf,
    /// First seq of the open segment.
    segment_first: u64,
    /// Length of the open segment including buffered bytes.
    segment_len: u64,
    /// Sparse index of the open segment so far.
    entries: Vec<IndexEntry>,
    buffer: Vec<u8>,
    scratch: Vec<u8>,
    next_seq: u64,
    committed_seq: u64,
    poisoned: bool,
}

impl SegmentWriter {
    /// Starts a new, empty generation directory (which must not exist yet) with its manifest.
    pub(crate) fn create(
        gen_dir: &Path,
        options: WriterOptions,
        manifest: &Manifest,
    ) -> Result<Self, LogError> {
        storage()
            .create_dir(gen_dir)
            .map_err(|e| LogError::io("create directory", gen_dir, e))?;
        if let Some(parent) = gen_dir.parent() {
            layout::sync_dir(parent)?;
        }
        manifest::write(gen_dir, manifest)?;
        let (file, path) = layout::create_segment(gen_dir, 0)?;
        Ok(Self::at_segment(
            gen_dir,
            options,
            file,
            path,
            SegmentIndex {
                first_seq: 0,
                segment_len: SEGMENT_HEADER_LEN as u64,
                records: 0,
                entries: Vec::new(),
            },
        ))
    }

    /// Opens an existing generation for appending, truncating a torn tail of its last segment.
    pub(crate) fn recover(
        gen_dir: &Path,
        options: WriterOptions,
    ) -> Result<(Self, Option<TornTail>), LogError> {
        let segments = layout::list_segments(gen_dir)?;
        let Some(last) = segments.last() else {
            // `CURRENT` is written only after its generation's first segment is durable, so an
            // empty active generation means segments were deleted: never start over silently.
            return Err(LogError::NotALog {
                dir: gen_dir.to_path_buf(),
                reason: "the active generation holds no segment".into(),
            });
        };
        crate::reader::check_continuity(&segments)?;
        let scan = segment::scan(&last.path, last.first_seq, true, |_, _| {})?;
        check_unsealed(last, scan.index.records)?;
        if let Some(torn) = &scan.torn {
            storage()
                .truncate(&last.path, torn.offset)
                .map_err(|e| LogError::io("truncate", &last.path, e))?;
        }
        let file = storage()
            .open_append(&last.path)
            .map_err(|e| LogError::io("open", &last.path, e))?;
        let writer = Self::at_segment(gen_dir, options, file, last.path.clone(), scan.index);
        Ok((writer, scan.torn))
    }

    fn at_segment(
        gen_dir: &Path,
        options: WriterOptions,
        file: File,
        path: PathBuf,
        index: SegmentIndex,
    ) -> Self {
        let next_seq = index.first_seq + index.records;
        SegmentWriter {
            gen_dir: gen_dir.to_path_buf(),
            options,
            file,
            path,
            segment_first: index.first_seq,
            segment_len: index.segment_len,
            entries: index.entries,
            buffer: Vec::with_capacity(options.buffer_bytes.min(64 << 20)),
            scratch: Vec::with_capacity(256),
            next_seq,
            committed_seq: next_seq,
            poisoned: false,
        }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn check(&self) -> Result<(), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned {
                dir: self.gen_dir.clone(),
            });
        }
        Ok(())
    }

    /// Runs a step that writes to disk; a failure poisons the writer, because after a failed
    /// write or fsync what the file holds is unknown.
    fn guarded<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        self.check()?;
        let result = step(self);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    pub(crate) fn append(&mut self, event: &Event) -> Result<u64, LogError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        cascade_events::encode_into(event, &mut scratch);
        let result = self.append_raw(&scratch);
        self.scratch = scratch;
        result
    }

    pub(crate) fn append_raw(&mut self, payload: &[u8]) -> Result<u64, LogError> {
        self.check()?;
        if payload.is_empty() || payload.len() > MAX_RECORD_LEN as usize {
            return Err(LogError::RecordSize {
                len: payload.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let framed = (RECORD_HEADER_LEN + payload.len()) as u64;
        let has_records = self.segment_len > SEGMENT_HEADER_LEN as u64;
        if has_records && self.segment_len + framed > self.options.segment_bytes {
            self.guarded(Self::roll)?;
        }
        let offset = self.segment_len;
        if self
            .entries
            .last()
            .is_none_or(|e| offset - e.offset >= INDEX_INTERVAL_BYTES)
        {
            self.entries.push(IndexEntry {
                seq: self.next_seq,
                offset,
            });
        }
        format::push_record(&mut self.buffer, self.next_seq, payload);
        self.segment_len += framed;
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.buffer.len() >= self.options.buffer_bytes {
            self.guarded(Self::write_buffer)?;
        }
        Ok(seq)
    }

    fn write_buffer(&mut self) -> Result<(), LogError> {
        if !self.buffer.is_empty() {
            storage()
                .write(&mut self.file, &self.path, &self.buffer)
                .map_err(|e| LogError::io("write", &self.path, e))?;
            self.buffer.clear();
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), LogError> {
        storage()
            .sync(&self.file, &self.path)
            .map_err(|e| LogError::io("fsync", &self.path, e))
    }

    /// Seals the open segment (data fsynced), starts the next one, then writes the sealed one's
    /// sidecar index. The next segment appears only after this one is durable, so only the last
    /// segment of a log can ever have a torn tail; and the index appears only after the next
    /// segment exists, so a last segment with an index proves that segments after it are missing.
    fn roll(&mut self) -> Result<(), LogError> {
        self.write_buffer()?;
        self.sync()?;
        let index = SegmentIndex {
            first_seq: self.segment_first,
            segment_len: self.segment_len,
            records: self.next_seq - self.segment_first,
            entries: std::mem::take(&mut self.entries),
        };
        let (file, path) = layout::create_segment(&self.gen_dir, self.next_seq)?;
        layout::write_atomic(
            &self.gen_dir,
            &layout::index_name(self.segment_first),
            &index.encode(),
        )?;
        self.file = file;
        self.path = path;
        self.segment_first = self.next_seq;
        self.segment_len = SEGMENT_HEADER_LEN as u64;
        // Everything before the new segment is durable now.
        self.committed_seq = self.next_seq;
        Ok(())
    }

    /// Writes what is buffered and fsyncs the open segment's data. The directory entries of all
    /// segments were fsynced when each segment was created, so no directory fsync is needed here.
    pub(crate) fn commit(&mut self) -> Result<(), LogError> {
        self.guarded(|w| {
            w.write_buffer()?;
            w.sync()?;
            w.committed_seq = w.next_seq;
            Ok(())
        })
    }

    pub(crate) fn committed_seq(&self) -> u64 {
        self.committed_seq
    }
}

/// The single writer of a log directory.
///
/// Holds an exclusive lock (`<dir>/LOCK`) for its lifetime: a second writer, or a
/// [`crate::rewrite`], in this or another process gets [`LogError::Locked`]. Dropping the writer
/// does not commit: records appended since the last [`LogWriter::commit`] may or may not survive
/// (if some do, they are a prefix of what was appended).
pub struct LogWriter {
    dir: PathBuf,
    gen_dir: PathBuf,
    segments: SegmentWriter,
    manifest: Manifest,
    _lock: DirLock,
}

impl LogWriter {
    /// Opens the log at `dir` for appending, creating it if absent, and recovers it: removes the
    /// leftovers of an interrupted roll or rewrite, truncates a torn tail of the last segment
    /// back to its last complete valid record, and rolls an interrupted ingest batch (see
    /// [`LogWriter::begin_batch`]) back to the tip before it. Interior corruption, a missing
    /// `CURRENT`, missing segments or records are errors, and nothing is changed on disk then.
    pub fn open(
        dir: &Path,
        options: WriterOptions,
    ) -> Result<(LogWriter, RecoveryReport), LogError> {
        let lock = DirLock::acquire(dir)?;
        let mut report = RecoveryReport::default();
        let generation = match layout::read_current(dir)? {
            Some(generation) => generation,
            None => {
                layout::check_fresh(dir)?;
                report.removed = layout::remove_generations(dir)?;
                let gen_dir = dir.join(layout::generation_name(0));
                SegmentWriter::create(&gen_dir, options, &Manifest::default())?;
                layout::write_current(dir, 0)?;
                0
            }
        };
        report
            .removed
            .extend(layout::remove_leftovers(dir, generation)?);
        let gen_dir = dir.join(layout::generation_name(generation));
        let mut manifest = manifest::read(&gen_dir)?;
        let (mut segments, torn) = SegmentWriter::recover(&gen_dir, options)?;
        report.torn_tail = torn;
        match manifest.check_tip(dir, segments.next_seq()) {
            Ok(()) => {}
            Err(LogError::UnfinishedIngest { .. }) => {
                let batch = manifest.batch.unwrap_or(Batch {
                    from_seq: 0,
                    to_seq: 0,
                    sources: 0,
                });
                let records = segments.next_seq() - batch.from_seq;
                drop(segments);
                roll_back(&gen_dir, batch.from_seq)?;
                let undone = manifest.without_batch();
                manifest::write(&gen_dir, &undone)?;
                let sources = manifest.sources[undone.sources.len()..].to_vec();
                manifest = undone;
                segments = SegmentWriter::recover(&gen_dir, options)?.0;
                report.rolled_back = Some(RolledBack {
                    batch,
                    records,
                    sources,
                });
            }
            Err(error) => return Err(error),
        }
        report.next_seq = segments.next_seq();
        Ok((
            LogWriter {
                dir: dir.to_path_buf(),
                gen_dir,
                segments,
                manifest,
                _lock: lock,
            },
            report,
        ))
    }

    /// Records, durably and before any of its records is written, that an ingest is about to
    /// append exactly `records` records and register `sources` (whose ids must continue the
    /// manifest's). Commits what was appended before. Until the log's tip reaches the batch's
    /// end, readers refuse the log ([`LogError::UnfinishedIngest`]) and the next writer open
    /// rolls the batch back; after it, the sources are part of the log's manifest.
    pub fn begin_batch(
        &mut self,
        sources: Vec<SourceRecord>,
        records: u64,
    ) -> Result<(), LogError> {
        self.commit()?;
        for (expected, source) in (self.manifest.sources.len()..).zip(&sources) {
            if source.id as usize != expected {
                return Err(LogError::Manifest {
                    file: manifest::path(&self.gen_dir),
                    reason: format!(
                        "a new source has id {} where {expected} comes next",
                        source.id
                    ),
                });
            }
        }
        let from_seq = self.next_seq();
        let mut next = self.manifest.clone();
        next.batch = Some(Batch {
            from_seq,
            to_seq: from_seq + records,
            sources: sources.len() as u32,
        });
        next.sources.extend(sources);
        let gen_dir = self.gen_dir.clone();
        self.segments
            .guarded(|_| manifest::write(&gen_dir, &next))?;
        self.manifest = next;
        Ok(())
    }

    /// The active generation's manifest: its sources and its last ingest batch.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Encodes and appends one event (its `seq` field is ignored); returns the seq assigned.
    /// Not durable until [`LogWriter::commit`].
    pub fn append(&mut self, event: &Event) -> Result<u64, LogError> {
        self.segments.append(event)
    }

    /// Appends one already-encoded record (1 byte to 16 MiB); returns the seq assigned.
    pub fn append_raw(&mut self, record: &[u8]) -> Result<u64, LogError> {
        self.segments.append_raw(record)
    }

    /// Makes every record appended so far durable (written and fsynced). After an I/O error
    /// the writer refuses further work ([`LogError::Poisoned`]); reopen the log to recover.
    pub fn commit(&mut self) -> Result<(), LogError> {
        self.segments.commit()
    }

    /// The seq the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.segments.next_seq()
    }

    /// One past the last durable seq.
    pub fn committed_seq(&self) -> u64 {
        self.segments.committed_seq()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A last segment must not have a sealed-segment index: the index is written only after the next
/// segment exists, so one here means the segments after it were lost.
pub(crate) fn check_unsealed(last: &SegmentFile, records: u64) -> Result<(), LogError> {
    if layout::index_path(&last.path).exists() {
        return Err(LogError::MissingTail {
            file: last.path.clone(),
            ends_at: last.first_seq + records,
        });
    }
    Ok(())
}

/// Removes every record from `from_seq` on from a generation: the indexes from the segment holding
/// `from_seq` on first (so no remaining last segment ever looks sealed), then the later segments
/// from the last backwards, then the tail of that segment. Each step is durable before the next,
/// and the whole is idempotent, so a crash during it is finished by the next writer open.
fn roll_back(gen_dir: &Path, from_seq: u64) -> Result<(), LogError> {
    let segments = layout::list_segments(gen_dir)?;
    let at = segments
        .partition_point(|s| s.first_seq <= from_seq)
        .saturating_sub(1);
    for segment in &segments[at..] {
        let index = layout::index_path(&segment.path);
        if index.exists() {
            layout::remove_file(&index)?;
        }
    }
    layout::sync_dir(gen_dir)?;
    for segment in segments[at + 1..].iter().rev() {
        layout::remove_file(&segment.path)?;
        layout::sync_dir(gen_dir)?;
    }
    let Some(target) = segments.get(at) else {
        return Ok(());
    };
    let offset = offset_of(target, from_seq)?;
    storage()
        .truncate(&target.path, offset)
        .map_err(|e| LogError::io("truncate", &target.path, e))
}

/// The byte offset where record `seq` starts (or would start, one past the last) in a segment,
/// checking every record before it.
fn offset_of(segment: &SegmentFile, seq: u64) -> Result<u64, LogError> {
    let len = fs::metadata(&segment.path)
        .map_err(|e| LogError::io("stat", &segment.path, e))?
        .len();
    let mut reader = Chunked::open(&segment.path, SEGMENT_HEADER_LEN as u64, len)?;
    let mut at = segment.first_seq;
    while at < seq {
        match reader.next_record(at)? {
            Next::Record(..) => at += 1,
            Next::End => break,
            Next::Bad(offset, problem) => {
                return Err(LogError::Corrupt {
                    file: segment.path.clone(),
                    offset,
                    seq: at,
                    problem,
                });
            }
        }
    }
    Ok(reader.offset())
}
