//! The on-disk byte layouts: segment header, record frame, sparse-index sidecar, and their checks.
//!
//! Pure functions over byte slices, no I/O, so every rule about what a valid byte sequence is lives
//! in one place (and in `docs/log-format.md`). This module must never guess: a check that fails
//! says exactly which one, and callers decide whether the failure is a torn tail or corruption.

use std::fmt;

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CSCD-SEG";
/// First eight bytes of every sparse-index sidecar file.
pub const INDEX_MAGIC: [u8; 8] = *b"CSCD-IDX";
/// The segment and index format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// The first format, whose records do not carry their seq: read only by `upgrade`.
pub const FORMAT_VERSION_1: u32 = 1;
/// Size of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Size of a record's frame header (length, record CRC, header check, seq) in bytes.
pub const RECORD_HEADER_LEN: usize = 20;
/// Where a frame's seq starts (after length, record CRC and header check).
pub const RECORD_SEQ_OFFSET: usize = 12;
/// Size of a format-version-1 record's frame header (length, payload CRC, header CRC).
pub const RECORD_HEADER_LEN_V1: usize = 12;
/// Largest payload a record may carry (16 MiB): a length above it is corruption, not a record.
pub const MAX_RECORD_LEN: u32 = 16 << 20;
/// The sparse index gets an entry at the first record at or after every this many bytes.
pub const INDEX_INTERVAL_BYTES: u64 = 64 << 10;

/// Xored into every header-check CRC, so an all-zero frame (a file extended but never written,
/// as a crash can leave it) fails its check instead of passing as an empty record.
const HEADER_CRC_MASK: u32 = 0x6361_7363; // "casc"
/// Xored into every payload CRC, for the same reason.
const PAYLOAD_CRC_MASK: u32 = 0x6164_6521; // "ade!"

/// The CRC32C of the bytes, masked for header checks.
fn header_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes) ^ HEADER_CRC_MASK
}

/// Slice-by-8 tables for CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
const CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let previous = tables[k - 1][i];
            tables[k][i] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

/// CRC32C of exactly eight bytes, computed inline: the record header check runs once per record,
/// and a call into the general (hardware) CRC costs more than the table lookups for 8 bytes.
fn crc32c_8(bytes: [u8; 8]) -> u32 {
    let word = u64::from_le_bytes(bytes);
    let low = (word as u32) ^ !0;
    let high = (word >> 32) as u32;
    let t = &CRC32C_TABLES;
    let crc = t[7][(low & 0xff) as usize]
        ^ t[6][((low >> 8) & 0xff) as usize]
        ^ t[5][((low >> 16) & 0xff) as usize]
        ^ t[4][(low >> 24) as usize]
        ^ t[3][(high & 0xff) as usize]
        ^ t[2][((high >> 8) & 0xff) as usize]
        ^ t[1][((high >> 16) & 0xff) as usize]
        ^ t[0][(high >> 24) as usize];
    !crc
}

/// The masked check of a record frame header: CRC32C of its first eight bytes (length and
/// record CRC). The same in both format versions.
fn record_header_check(first8: [u8; 8]) -> u32 {
    crc32c_8(first8) ^ HEADER_CRC_MASK
}

/// The masked CRC32C of a payload: the record CRC of format version 1, and what the catalog's tip
/// records of the last record.
pub fn payload_crc(payload: &[u8]) -> u32 {
    crc32c::crc32c(payload) ^ PAYLOAD_CRC_MASK
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The 32-byte segment header: magic, format version, reserved zero, first sequence number, a
/// masked CRC32C of the preceding 24 bytes, reserved zero.
pub fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = header_crc(&header[0..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Why a segment header is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The magic bytes are not [`SEGMENT_MAGIC`].
    BadMagic([u8; 8]),
    /// A format version this build does not read.
    UnknownVersion(u32),
    /// A valid header of an earlier format version (read by `upgrade` only).
    OldVersion(u32),
    /// The header check failed or a reserved field is not zero.
    Corrupt,
}

/// Decodes a segment header, returning its first sequence number. Checks run in the order magic,
/// version, CRC, so a file of another kind or a future version is named as such.
pub fn decode_segment_header(header: &[u8; SEGMENT_HEADER_LEN]) -> Result<u64, HeaderProblem> {
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&header[0..8]);
    if magic != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic(magic));
    }
    let version = le_u32(header, 8);
    if version == FORMAT_VERSION_1 && check_header_fields(header) {
        return Err(HeaderProblem::OldVersion(version));
    }
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::UnknownVersion(version));
    }
    if !check_header_fields(header) {
        return Err(HeaderProblem::Corrupt);
    }
    Ok(le_u64(header, 16))
}

/// The header check passes and the reserved fields are zero.
fn check_header_fields(header: &[u8; SEGMENT_HEADER_LEN]) -> bool {
    le_u32(header, 24) == header_crc(&header[0..24])
        && le_u32(header, 12) == 0
        && le_u32(header, 28) == 0
}

/// A format-version-1 segment header's first seq, for `upgrade` (`None` unless it is a valid
/// version-1 header).
pub fn decode_segment_header_v1(header: &[u8; SEGMENT_HEADER_LEN]) -> Option<u64> {
    (header[0..8] == SEGMENT_MAGIC
        && le_u32(header, 8) == FORMAT_VERSION_1
        && check_header_fields(header))
    .then(|| le_u64(header, 16))
}

/// Appends one framed record of sequence number `seq` (header, seq, payload) to `out`.
///
/// The caller guarantees `1 <= payload.len() <= MAX_RECORD_LEN`.
pub fn push_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&record_crc(seq, payload).to_le_bytes());
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&header[0..8]);
    header[8..12].copy_from_slice(&record_header_check(first8).to_le_bytes());
    header[RECORD_SEQ_OFFSET..].copy_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// The masked record CRC of format version 2: CRC32C of the payload, started from the 32-bit fold
/// of the seq (`seq_lo XOR seq_hi`) as the previous CRC value instead of 0 (as ext4 seeds its
/// metadata checksums with the inode number). A different seed always gives a different CRC over
/// the same payload (CRC32C is linear and its register update invertible), so a flipped seq bit
/// fails the record CRC, at no cost over the payload's own CRC; any seq that survives it is still
/// compared with the record's position.
pub fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    let seed = (seq as u32) ^ ((seq >> 32) as u32);
    crc32c::crc32c_append(seed, payload) ^ PAYLOAD_CRC_MASK
}

/// A record frame header whose own check passed: its length can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes.
    pub len: u32,
    /// The record CRC the payload, seeded with the seq, must have ([`record_crc`]).
    pub payload_crc: u32,
    /// The seq the frame holds: trusted only once the record CRC matched.
    pub seq: u64,
}

impl RecordHeader {
    /// Total framed size of the record.
    pub fn framed_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// What is wrong with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordProblem {
    /// The frame header's own CRC does not match, so its length cannot be trusted.
    HeaderCheck,
    /// The header checks but declares a length of zero or above [`MAX_RECORD_LEN`].
    BadLength(u32),
    /// The record CRC (payload seeded with the seq) does not match the header.
    PayloadCheck,
    /// The record runs past the end of the segment.
    Incomplete,
    /// A valid record holding another seq than its position requires: a record duplicated,
    /// dropped, moved or reached through a wrong index entry.
    WrongSeq(u64),
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordProblem::HeaderCheck => f.write_str("record header check failed"),
            RecordProblem::BadLength(len) => write!(
                f,
                "record length {len} outside 1..={MAX_RECORD_LEN} despite a valid header check"
            ),
            RecordProblem::PayloadCheck => {
                f.write_str("record CRC mismatch (payload or seq damaged)")
            }
            RecordProblem::Incomplete => f.write_str("record runs past the end of the segment"),
            RecordProblem::WrongSeq(found) => write!(
                f,
                "a valid record holding seq {found} (duplicated, missing, reordered or misplaced records)"
            ),
        }
    }
}

/// Checks the twelve bytes both format versions start a frame with (length, record CRC, header
/// check) and returns the length, which can then be trusted.
#[inline]
fn checked_length(head: &[u8; RECORD_HEADER_LEN_V1]) -> Result<u32, RecordProblem> {
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&head[0..8]);
    if le_u32(head, 8) != record_header_check(first8) {
        return Err(RecordProblem::HeaderCheck);
    }
    let len = le_u32(head, 0);
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(RecordProblem::BadLength(len));
    }
    Ok(len)
}

/// Checks a record frame header.
pub fn decode_record_header(
    bytes: &[u8; RECORD_HEADER_LEN],
) -> Result<RecordHeader, RecordProblem> {
    let (head, _) = bytes
        .split_first_chunk::<RECORD_HEADER_LEN_V1>()
        .ok_or(RecordProblem::Incomplete)?;
    let len = checked_length(head)?;
    Ok(RecordHeader {
        len,
        payload_crc: le_u32(bytes, 4),
        seq: le_u64(bytes, RECORD_SEQ_OFFSET),
    })
}

/// Checks a whole format-version-1 record at the start of `bytes`, returning its payload (for
/// `upgrade`, which rewrites version-1 logs).
pub fn check_record_v1(bytes: &[u8]) -> Result<&[u8], RecordProblem> {
    let Some(head) = bytes.first_chunk::<RECORD_HEADER_LEN_V1>() else {
        return Err(RecordProblem::Incomplete);
    };
    let len = checked_length(head)?;
    let payload = bytes
        .get(RECORD_HEADER_LEN_V1..RECORD_HEADER_LEN_V1 + len as usize)
        .ok_or(RecordProblem::Incomplete)?;
    if payload_crc(payload) != le_u32(head, 4) {
        return Err(RecordProblem::PayloadCheck);
    }
    Ok(payload)
}

/// Checks a whole record at the start of `bytes` (header and payload), returning its header.
pub fn check_record(bytes: &[u8]) -> Result<RecordHeader, RecordProblem> {
    let Some(head) = bytes.first_chunk::<RECORD_HEADER_LEN>() else {
        return Err(RecordProblem::Incomplete);
    };
    let header = decode_record_header(head)?;
    let end = RECORD_HEADER_LEN + header.len as usize;
    let payload = bytes
        .get(RECORD_HEADER_LEN..end)
        .ok_or(RecordProblem::Incomplete)?;
    if record_crc(header.seq, payload) != header.payload_crc {
        return Err(RecordProblem::PayloadCheck);
    }
    Ok(header)
}

/// One entry of a sparse index: the record `seq` starts at byte `offset` of its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Sequence number of the record.
    pub seq: u64,
    /// Byte offset of its frame header in the segment file.
    pub offset: u64,
}

/// The sparse index of one sealed segment, as stored in its `.idx` sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    /// First sequence number of the segment.
    pub first_seq: u64,
    /// Length of the segment file the index describes; an index for another length is stale.
    pub segment_len: u64,
    /// Records in the segment.
    pub records: u64,
    /// Entries in increasing seq and offset; the first is always the first record.
    pub entries: Vec<IndexEntry>,
}

impl SegmentIndex {
    /// The entry with the largest seq not above `seq` (the first entry when `seq` precedes all).
    pub fn floor(&self, seq: u64) -> Option<IndexEntry> {
        let at = self.entries.partition_point(|entry| entry.seq <= seq);
        self.entries.get(at.saturating_sub(1)).copied()
    }

    /// The sidecar bytes: magic, version, reserved, first seq, segment length, record count,
    /// entry count, entries (seq, offset as u64 LE), masked CRC32C of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.entries.len() * 16 + 4);
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&self.segment_len.to_le_bytes());
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for entry in &self.entries {
            out.extend_from_slice(&entry.seq.to_le_bytes());
            out.extend_from_slice(&entry.offset.to_le_bytes());
        }
        let crc = header_crc(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses sidecar bytes; `None` when they are not a valid, self-consistent index (the caller
    /// then rebuilds the index from the segment, which is the source of truth).
    pub fn decode(bytes: &[u8]) -> Option<SegmentIndex> {
        if bytes.len() < 52 || bytes[0..8] != INDEX_MAGIC || le_u32(bytes, 8) != FORMAT_VERSION {
            return None;
        }
        let body = bytes.len() - 4;
        if le_u32(bytes, body) != header_crc(&bytes[..body]) {
            return None;
        }
        let count = usize::try_from(le_u64(bytes, 40)).ok()?;
        if count.checked_mul(16)?.checked_add(48)? != body {
            return None;
        }
        let entries: Vec<IndexEntry> = (0..count)
            .map(|i| IndexEntry {
                seq: le_u64(bytes, 48 + i * 16),
                offset: le_u64(bytes, 56 + i * 16),
            })
            .collect();
        let index = SegmentIndex {
            first_seq: le_u64(bytes, 16),
            segment_len: le_u64(bytes, 24),
            records: le_u64(bytes, 32),
            entries,
        };
        index.is_consistent().then_some(index)
    }

    /// Entries strictly increasing, inside the segment, starting at its first record.
    fn is_consistent(&self) -> bool {
        let Some(first) = self.entries.first() else {
            return false;
        };
        let end_seq = self.first_seq.checked_add(self.records);
        first.seq == self.first_seq
            && first.offset == SEGMENT_HEADER_LEN as u64
            && self
                .entries
                .windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].offset < w[1].offset)
            && self.entries.iter().all(|entry| {
                end_seq.is_some_and(|end| entry.seq < end) && entry.offset < self.segment_len
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_crc_of_eight_bytes_is_crc32c() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let bytes = state.to_le_bytes();
            assert_eq!(crc32c_8(bytes), crc32c::crc32c(&bytes));
        }
        assert_eq!(crc32c_8(*b"12345678"), crc32c::crc32c(b"12345678"));
    }

    #[test]
    fn segment_header_round_trips_and_names_each_problem() {
        let header = encode_segment_header(1234);
        assert_eq!(decode_segment_header(&header), Ok(1234));
        let mut magic = header;
        magic[0] = b'X';
        assert!(matches!(
            decode_segment_header(&magic),
            Err(HeaderProblem::BadMagic(_))
        ));
        let mut version = header;
        version[8] = 9;
        assert_eq!(
            decode_segment_header(&version),
            Err(HeaderProblem::UnknownVersion(9))
        );
        let mut seq = header;
        seq[16] ^= 1;
        assert_eq!(decode_segment_header(&seq), Err(HeaderProblem::Corrupt));
    }

    #[test]
    fn record_frame_checks_length_and_payload_separately() {
        let mut out = Vec::new();
        push_record(&mut out, 77, b"hello");
        assert_eq!(out.len(), RECORD_HEADER_LEN + 5);
        assert_eq!(check_record(&out).map(|h| (h.len, h.seq)), Ok((5, 77)));
        let mut bad_seq = out.clone();
        bad_seq[RECORD_SEQ_OFFSET] ^= 1;
        assert_eq!(check_record(&bad_seq), Err(RecordProblem::PayloadCheck));
        let mut bad_len = out.clone();
        bad_len[0] = 6;
        assert_eq!(check_record(&bad_len), Err(RecordProblem::HeaderCheck));
        let mut bad_payload = out.clone();
        bad_payload[RECORD_HEADER_LEN + 2] ^= 0x10;
        assert_eq!(check_record(&bad_payload), Err(RecordProblem::PayloadCheck));
        assert_eq!(
            check_record(&out[..out.len() - 1]),
            Err(RecordProblem::Incomplete)
        );
    }

    #[test]
    fn all_zero_bytes_are_never_a_record() {
        let zeros = [0u8; 64];
        assert_eq!(check_record(&zeros), Err(RecordProblem::HeaderCheck));
        let zero_header = [0u8; SEGMENT_HEADER_LEN];
        assert!(decode_segment_header(&zero_header).is_err());
    }

    #[test]
    fn index_round_trips_and_rejects_damage() {
        let index = SegmentIndex {
            first_seq: 100,
            segment_len: 10_000,
            records: 50,
            entries: vec![
                IndexEntry {
                    seq: 100,
                    offset: 32,
                },
                IndexEntry {
                    seq: 120,
                    offset: 4_000,
                },
            ],
        };
        let bytes = index.encode();
        assert_eq!(SegmentIndex::decode(&bytes), Some(index.clone()));
        assert_eq!(index.floor(119).map(|e| e.seq), Some(100));
        assert_eq!(index.floor(120).map(|e| e.offset), Some(4_000));
        assert_eq!(index.floor(5).map(|e| e.seq), Some(100));
        for at in [0, 20, 50, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            assert_eq!(SegmentIndex::decode(&damaged), None, "flip at {at}");
        }
        assert_eq!(SegmentIndex::decode(&bytes[..bytes.len() - 1]), None);
    }
}
