//! Reading one segment file: chunked buffered reads, whole-segment scans, and the rule that tells
//! a torn tail from corruption.
//!
//! The rule (see `docs/log-format.md`): scanning stops at the first record that fails a check.
//! In the last segment of a log, the bytes from there to the end of the file are a *torn tail*
//! only if no complete, valid record starts anywhere inside them; otherwise valid data follows
//! the damage and it is interior corruption. In any other segment every failure is corruption,
//! because a segment is fsynced before the next one is created. Nothing here ever skips a record.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::LogError;
use crate::format::{
    self, INDEX_INTERVAL_BYTES, IndexEntry, RECORD_HEADER_LEN, RecordProblem, SEGMENT_HEADER_LEN,
    SegmentIndex,
};

/// Default read chunk: large enough that syscalls vanish from the profile.
const CHUNK: usize = 1 << 20;

/// Buffered reads of a byte range of one file, handing out slices of its buffer.
pub(crate) struct Chunked {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    /// File offset of `buf[end]`.
    read_to: u64,
    /// Stop reading at this file offset.
    limit: u64,
}

impl Chunked {
    /// Opens `path` for reading `[from, limit)`.
    pub(crate) fn open(path: &Path, from: u64, limit: u64) -> Result<Chunked, LogError> {
        let mut file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
        file.seek(SeekFrom::Start(from))
            .map_err(|e| LogError::io("seek", path, e))?;
        Ok(Chunked {
            file,
            path: path.to_path_buf(),
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            offset: from,
            read_to: from,
            limit,
        })
    }

    /// File offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes left before the limit, buffered or not.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit - self.offset
    }

    /// Makes at least `need` bytes available (fewer only when the limit comes first) and returns
    /// the available bytes.
    pub(crate) fn fill(&mut self, need: usize) -> Result<&[u8], LogError> {
        if self.end - self.start < need && self.read_to < self.limit {
            if self.start + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if need > self.buf.len() {
                    self.buf.resize(need.next_power_of_two(), 0);
                }
            }
            while self.end - self.start < need && self.read_to < self.limit {
                let room = (self.buf.len() - self.end) as u64;
                let want = room.min(self.limit - self.read_to) as usize;
                let got = self
                    .file
                    .read(&mut self.buf[self.end..self.end + want])
                    .map_err(|e| LogError::io("read", &self.path, e))?;
                if got == 0 {
                    // The file shrank under us: treat the rest as absent.
                    self.limit = self.read_to;
                    break;
                }
                self.end += got;
                self.read_to += got as u64;
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// Consumes `n` available bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Reads and checks the next record, which must hold `seq`.
    pub(crate) fn next_record(&mut self, seq: u64) -> Result<Next<'_>, LogError> {
        let at = self.offset;
        if self.remaining() == 0 {
            return Ok(Next::End);
        }
        let Some(head) = self
            .fill(RECORD_HEADER_LEN)?
            .first_chunk::<RECORD_HEADER_LEN>()
        else {
            return Ok(Next::Bad(at, RecordProblem::Incomplete));
        };
        let header = match format::decode_record_header(head) {
            Ok(header) => header,
            Err(problem) => return Ok(Next::Bad(at, problem)),
        };
        let framed = RECORD_HEADER_LEN + header.len as usize;
        let bytes = self.fill(framed)?;
        if bytes.len() < framed {
            return Ok(Next::Bad(at, RecordProblem::Incomplete));
        }
        if format::record_crc(header.seq, &bytes[RECORD_HEADER_LEN..framed]) != header.payload_crc {
            return Ok(Next::Bad(at, RecordProblem::PayloadCheck));
        }
        if header.seq != seq {
            return Ok(Next::Bad(at, RecordProblem::WrongSeq(header.seq)));
        }
        let start = self.start;
        self.consume(framed);
        Ok(Next::Record(
            at,
            &self.buf[start + RECORD_HEADER_LEN..start + framed],
        ))
    }
}

/// The outcome of [`Chunked::next_record`].
pub(crate) enum Next<'a> {
    /// A valid record: its offset and payload.
    Record(u64, &'a [u8]),
    /// The read limit is reached.
    End,
    /// The record at this offset fails this check.
    Bad(u64, RecordProblem),
}

/// A torn tail found at the end of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset where the valid records end (the file is or will be truncated here).
    pub offset: u64,
    /// Bytes after `offset` that are not a complete valid record.
    pub bytes: u64,
    /// The check the first torn record failed.
    pub problem: RecordProblem,
}

/// What a full scan of one segment found.
pub(crate) struct Scan {
    /// The sparse index of the valid records (its `segment_len` is the valid end).
    pub index: SegmentIndex,
    /// Masked CRC of the last valid record's payload, if any.
    pub last_crc: Option<u32>,
    /// Set when the segment ends in a torn tail (only possible with `last = true`).
    pub torn: Option<TornTail>,
}

/// Scans a whole segment, checking every record, building its sparse index. With `last`, a
/// certainly-torn tail is reported in [`Scan::torn`]; any other damage is [`LogError::Corrupt`].
/// `on_record` sees every valid record in order.
pub(crate) fn scan(
    path: &Path,
    first_seq: u64,
    last: bool,
    mut on_record: impl FnMut(u64, &[u8]),
) -> Result<Scan, LogError> {
    let len = std::fs::metadata(path)
        .map_err(|e| LogError::io("stat", path, e))?
        .len();
    let mut reader = Chunked::open(path, SEGMENT_HEADER_LEN as u64, len)?;
    let mut entries: Vec<IndexEntry> = Vec::new();
    let mut seq = first_seq;
    let mut last_crc = None;
    let problem = loop {
        match reader.next_record(seq)? {
            Next::End => break None,
            Next::Record(offset, payload) => {
                if entries
                    .last()
                    .is_none_or(|e| offset - e.offset >= INDEX_INTERVAL_BYTES)
                {
                    entries.push(IndexEntry { seq, offset });
                }
                last_crc = Some(format::payload_crc(payload));
                on_record(seq, payload);
                seq += 1;
            }
            Next::Bad(offset, problem) => break Some((offset, problem)),
        }
    };
    let valid_end = reader.offset();
    let index = SegmentIndex {
        first_seq,
        segment_len: valid_end,
        records: seq - first_seq,
        entries,
    };
    let torn = match problem {
        None => None,
        Some((offset, problem)) => {
            // A valid record at the wrong seq is never what a crash leaves.
            let misplaced = matches!(problem, RecordProblem::WrongSeq(_));
            if !last || misplaced || valid_record_after(path, offset, len, problem)? {
                return Err(LogError::Corrupt {
                    file: path.to_path_buf(),
                    offset,
                    seq,
                    problem,
                });
            }
            Some(TornTail {
                segment: path.to_path_buf(),
                offset,
                bytes: len - offset,
                problem,
            })
        }
    };
    Ok(Scan {
        index,
        last_crc,
        torn,
    })
}

/// Whether a complete, valid record (of any seq) starts anywhere after the damaged record at
/// `bad`: if so, the damage is followed by real data and is not a torn tail.
///
/// Where the damaged record's header check passed, its length is trusted and the search starts
/// where that record ends (bytes inside its payload are not records, even if they look like one);
/// a record running past the end of the file has nothing after it. Otherwise every byte offset
/// after `bad` is tried.
fn valid_record_after(
    path: &Path,
    bad: u64,
    len: u64,
    problem: RecordProblem,
) -> Result<bool, LogError> {
    if problem == RecordProblem::Incomplete {
        return Ok(false);
    }
    let mut file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
    file.seek(SeekFrom::Start(bad))
        .map_err(|e| LogError::io("seek", path, e))?;
    let mut tail = Vec::new();
    file.take(len - bad)
        .read_to_end(&mut tail)
        .map_err(|e| LogError::io("read", path, e))?;
    let first = match tail
        .first_chunk::<RECORD_HEADER_LEN>()
        .map(format::decode_record_header)
    {
        Some(Ok(header)) => usize::try_from(header.framed_len()).unwrap_or(usize::MAX),
        _ => 1,
    };
    Ok((first..tail.len()).any(|at| format::check_record(&tail[at..]).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn segment_with(records: &[&[u8]], tail: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.seg");
        let mut bytes = format::encode_segment_header(0).to_vec();
        for (seq, record) in (0..).zip(records) {
            format::push_record(&mut bytes, seq, record);
        }
        bytes.extend_from_slice(tail);
        File::create(&path).unwrap().write_all(&bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let (_dir, path) = segment_with(&[b"one", b"two"], &[0; 100]);
        let scan = scan(&path, 0, true, |_, _| {}).unwrap();
        assert_eq!(scan.index.records, 2);
        let torn = scan.torn.unwrap();
        assert_eq!(torn.offset, 32 + 23 * 2);
        assert_eq!(torn.bytes, 100);
        assert_eq!(torn.problem, RecordProblem::HeaderCheck);
    }

    #[test]
    fn damage_followed_by_a_valid_record_is_corruption() {
        let mut garbage = vec![0xee; 7];
        format::push_record(&mut garbage, 2, b"after");
        let (_dir, path) = segment_with(&[b"one"], &garbage);
        match scan(&path, 0, true, |_, _| {}) {
            Err(LogError::Corrupt { offset, seq, .. }) => {
                assert_eq!(offset, 32 + 23);
                assert_eq!(seq, 1);
            }
            other => panic!("expected corruption, got {:?}", other.map(|s| s.torn)),
        }
    }

    #[test]
    fn a_frame_inside_a_torn_payload_is_not_valid_data_after_it() {
        // The last record's payload holds bytes that form a valid frame; its own CRC is broken
        // (torn write), and nothing follows it: a torn tail, not corruption.
        let mut inner = Vec::new();
        format::push_record(&mut inner, 2, b"looks like a record");
        let mut payload = vec![1u8; 5];
        payload.extend_from_slice(&inner);
        let mut tail = Vec::new();
        format::push_record(&mut tail, 1, &payload);
        let last = tail.len() - 1;
        tail[last] ^= 0xff;
        let (_dir, path) = segment_with(&[b"one"], &tail);
        let scan = scan(&path, 0, true, |_, _| {}).unwrap();
        assert_eq!(scan.index.records, 1);
        assert_eq!(scan.torn.unwrap().problem, RecordProblem::PayloadCheck);
    }

    #[test]
    fn a_repeated_last_record_is_corruption_not_a_torn_tail() {
        let mut repeat = Vec::new();
        format::push_record(&mut repeat, 1, b"two");
        let (_dir, path) = segment_with(&[b"one", b"two"], &repeat);
        match scan(&path, 0, true, |_, _| {}) {
            Err(LogError::Corrupt { seq, problem, .. }) => {
                assert_eq!(seq, 2);
                assert_eq!(problem, RecordProblem::WrongSeq(1));
            }
            other => panic!("expected corruption, got {:?}", other.map(|s| s.torn)),
        }
    }

    #[test]
    fn any_damage_in_a_sealed_segment_is_corruption() {
        let (_dir, path) = segment_with(&[b"one"], &[0; 3]);
        assert!(matches!(
            scan(&path, 0, false, |_, _| {}),
            Err(LogError::Corrupt { offset: 55, .. })
        ));
    }

    #[test]
    fn records_larger_than_a_chunk_are_read_whole() {
        let big = vec![7u8; CHUNK + 10];
        let (_dir, path) = segment_with(&[b"a", &big, b"b"], &[]);
        let mut lens = Vec::new();
        let scan = scan(&path, 0, true, |seq, payload| {
            lens.push((seq, payload.len()))
        })
        .unwrap();
        assert_eq!(lens, [(0, 1), (1, CHUNK + 10), (2, 1)]);
        assert!(scan.torn.is_none());
    }
}
