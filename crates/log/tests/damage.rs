//! Damaged logs: torn tails are truncated to exactly the complete records; every other kind of
//! damage is an error naming the file (and the offset where there is one), from the reader, the
//! writer's recovery and `verify` alike.
//!
//! Among them the regression tests of issue 12's log defects, each named after the bug it pins: a
//! log missing `CURRENT` or its last segment, whole record frames duplicated, deleted or swapped,
//! a crafted sparse index, and version-1 logs. The first six passed silently on d280e63.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use cascade_log::format::{self, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentIndex};
use cascade_log::{LogError, LogReader, LogWriter, WriterOptions, verify};
use common::{event, event_at};

const EVENTS: u64 = 60;

/// A log of `EVENTS` events in several small segments; returns its directory and segment paths.
fn build_log() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        segment_bytes: 2048,
        buffer_bytes: 512,
    };
    let (mut writer, _) = LogWriter::open(dir.path(), options).unwrap();
    for i in 0..EVENTS {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    let segments = LogReader::open(dir.path()).unwrap().segment_paths();
    assert!(segments.len() >= 4, "the tests need several segments");
    (dir, segments)
}

/// Byte offsets of every record frame in a segment file.
fn record_offsets(segment: &Path) -> Vec<u64> {
    frames(segment).iter().map(|&(at, _)| at as u64).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn all_events(dir: &Path) -> Vec<cascade_events::Event> {
    LogReader::open(dir)
        .unwrap()
        .events(0)
        .map(Result::unwrap)
        .collect()
}

#[test]
fn truncating_the_last_record_anywhere_keeps_exactly_the_complete_records() {
    let (original, segments) = build_log();
    let last = segments.last().unwrap();
    let offsets = record_offsets(last);
    let start = *offsets.last().unwrap();
    let end = fs::metadata(last).unwrap().len();
    let relative = last.strip_prefix(original.path()).unwrap();
    for cut in start..=end {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path());
        let segment = copy.path().join(relative);
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let complete = if cut == end { EVENTS } else { EVENTS - 1 };

        let reader = LogReader::open(copy.path()).unwrap();
        assert_eq!(reader.next_seq(), complete, "reader, cut at {cut}");
        assert_eq!(reader.torn_tail().is_some(), cut != start && cut != end);

        let (mut writer, report) = LogWriter::open(copy.path(), WriterOptions::default()).unwrap();
        assert_eq!(report.next_seq, complete, "cut at {cut}");
        if cut == start || cut == end {
            assert!(report.is_clean(), "cut at {cut}: {report:?}");
        } else {
            let torn = report.torn_tail.as_ref().unwrap();
            assert_eq!(torn.offset, start, "cut at {cut}");
            assert_eq!(report.bytes_dropped(), cut - start, "cut at {cut}");
            assert_eq!(fs::metadata(&segment).unwrap().len(), start);
        }
        assert_eq!(
            all_events(copy.path()),
            (0..complete).map(event_at).collect::<Vec<_>>()
        );
        // The log stays usable: the next append gets the next dense seq.
        assert_eq!(writer.append(&event(complete)).unwrap(), complete);
        writer.commit().unwrap();
        drop(writer);
        assert_eq!(
            all_events(copy.path()),
            (0..=complete).map(event_at).collect::<Vec<_>>()
        );
        assert!(verify(copy.path()).unwrap().torn_tail.is_none());
    }
}

#[test]
fn a_zero_filled_tail_is_torn_but_zeros_before_valid_data_are_corruption() {
    let (dir, segments) = build_log();
    let last = segments.last().unwrap();
    let offsets = record_offsets(last);
    let start = *offsets.last().unwrap();
    let end = fs::metadata(last).unwrap().len();
    let mut bytes = fs::read(last).unwrap();
    // Like a crash that extended the file but never wrote the last record's pages.
    bytes[start as usize..].fill(0);
    bytes.extend_from_slice(&[0; 100]);
    fs::write(last, &bytes).unwrap();
    let report = verify(dir.path()).unwrap();
    let torn = report.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.bytes), (start, end - start + 100));

    // Zeros over the second-to-last record, with the last record intact after them.
    let (dir, segments) = build_log();
    let last = segments.last().unwrap();
    let offsets = record_offsets(last);
    assert!(offsets.len() >= 2);
    let victim = offsets[offsets.len() - 2] as usize;
    let mut bytes = fs::read(last).unwrap();
    bytes[victim..offsets[offsets.len() - 1] as usize].fill(0);
    fs::write(last, &bytes).unwrap();
    let error = verify(dir.path()).err().unwrap();
    assert!(
        matches!(&error, LogError::Corrupt { offset, .. } if *offset == victim as u64),
        "{error}"
    );
    assert!(LogWriter::open(dir.path(), WriterOptions::default()).is_err());
    assert_eq!(fs::read(last).unwrap(), bytes, "recovery changed nothing");
}

/// Flips one bit at `at` in `segment` and checks that verify and the reader refuse, naming the
/// record's offset, and that no event after the damage is ever returned. A writer open reads every
/// record of the last segment only (sealed ones are checked by readers), so it refuses only there.
fn assert_bit_flip_detected(dir: &Path, segment: &Path, at: u64, record: u64, in_last: bool) {
    let mut bytes = fs::read(segment).unwrap();
    bytes[at as usize] ^= 0x08;
    fs::write(segment, &bytes).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap();

    let error = verify(dir).err().unwrap();
    assert!(error.is_corruption());
    match &error {
        LogError::Corrupt { file, offset, .. } => {
            assert_eq!(file, segment);
            assert_eq!(*offset, record, "flip at {at}");
        }
        other => panic!("expected corruption at {record}, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(name) && message.contains(&format!("offset {record}")),
        "{message}"
    );

    match LogReader::open(dir) {
        Ok(reader) => {
            let results: Vec<_> = reader.events(0).collect();
            let good = results.iter().take_while(|r| r.is_ok()).count();
            assert_eq!(results.len(), good + 1, "reading stops at the error");
            assert!(results[good].is_err());
            for (seq, result) in results[..good].iter().enumerate() {
                assert_eq!(result.as_ref().unwrap(), &event_at(seq as u64));
            }
        }
        Err(error) => {
            assert!(matches!(error, LogError::Corrupt { offset, .. } if offset == record))
        }
    }
    if in_last {
        let before = fs::read(segment).unwrap();
        assert!(LogWriter::open(dir, WriterOptions::default()).is_err());
        assert_eq!(
            fs::read(segment).unwrap(),
            before,
            "a refused recovery changes nothing"
        );
    }
}

#[test]
fn a_flipped_bit_in_a_sealed_segment_is_reported_with_its_offset() {
    let (dir, segments) = build_log();
    let segment = &segments[1];
    let offsets = record_offsets(segment);
    let record = offsets[offsets.len() / 2];
    // In the payload, then (fresh log) in the length field.
    assert_bit_flip_detected(
        dir.path(),
        segment,
        record + RECORD_HEADER_LEN as u64 + 5,
        record,
        false,
    );
    let (dir, segments) = build_log();
    assert_bit_flip_detected(dir.path(), &segments[1], record, record, false);
}

#[test]
fn a_flipped_bit_in_the_last_segment_is_corruption_not_a_torn_tail() {
    let (dir, segments) = build_log();
    let segment = segments.last().unwrap();
    let offsets = record_offsets(segment);
    assert!(offsets.len() >= 2);
    let record = offsets[offsets.len() - 2];
    assert_bit_flip_detected(dir.path(), segment, record + 14, record, true);
}

fn expect_error(dir: &Path, check: impl Fn(&LogError) -> bool, mentions: &str) {
    let from_reader = LogReader::open(dir).err().expect("reader must refuse");
    assert!(check(&from_reader), "reader: {from_reader}");
    assert!(from_reader.to_string().contains(mentions), "{from_reader}");
    let from_writer = LogWriter::open(dir, WriterOptions::default())
        .err()
        .expect("writer must refuse");
    assert!(check(&from_writer), "writer: {from_writer}");
    let from_verify = verify(dir).expect_err("verify must refuse");
    assert!(from_verify.is_corruption(), "{from_verify}");
}

#[test]
fn wrong_magic_is_named() {
    let (dir, segments) = build_log();
    let mut bytes = fs::read(&segments[2]).unwrap();
    bytes[..8].copy_from_slice(b"NOTALOG!");
    fs::write(&segments[2], bytes).unwrap();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::BadMagic { found, .. } if found == b"NOTALOG!"),
        "not a segment file",
    );
}

#[test]
fn unknown_version_is_named() {
    let (dir, segments) = build_log();
    let mut bytes = fs::read(&segments[0]).unwrap();
    bytes[8] = 7;
    fs::write(&segments[0], bytes).unwrap();
    expect_error(
        dir.path(),
        |e| {
            matches!(
                e,
                LogError::UnknownVersion {
                    found: 7,
                    expected: 2,
                    ..
                }
            )
        },
        "unknown segment format version 7",
    );
}

#[test]
fn zero_length_segment_is_named() {
    let (dir, segments) = build_log();
    fs::write(&segments[1], b"").unwrap();
    let name = segments[1]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::ZeroLengthSegment { file } if file == &segments[1]),
        &name,
    );
}

#[test]
fn zero_length_last_segment_is_also_an_error() {
    let (dir, segments) = build_log();
    fs::write(segments.last().unwrap(), b"").unwrap();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::ZeroLengthSegment { .. }),
        "zero-length segment",
    );
}

#[test]
fn first_seq_mismatch_is_named() {
    let (dir, segments) = build_log();
    let mut bytes = fs::read(&segments[1]).unwrap();
    let header = format::encode_segment_header(999);
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header);
    fs::write(&segments[1], bytes).unwrap();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::FirstSeqMismatch { in_header: 999, .. }),
        "header says first seq 999",
    );
}

#[test]
fn missing_middle_segment_is_a_gap() {
    let (dir, segments) = build_log();
    fs::remove_file(&segments[2]).unwrap();
    fs::remove_file(segments[2].with_extension("idx")).unwrap();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::SeqGap { file, .. } if file == &segments[1]),
        "missing segment",
    );
}

#[test]
fn missing_middle_segment_without_index_fails_when_read() {
    let (dir, segments) = build_log();
    fs::remove_file(&segments[2]).unwrap();
    fs::remove_file(segments[1].with_extension("idx")).unwrap();
    let reader = LogReader::open(dir.path()).unwrap();
    let error = reader.events(0).find_map(Result::err).unwrap();
    assert!(matches!(error, LogError::SeqGap { .. }), "{error}");
    let error = verify(dir.path()).err().unwrap();
    assert!(matches!(error, LogError::SeqGap { .. }), "{error}");
}

#[test]
fn missing_first_segment_is_named() {
    let (dir, segments) = build_log();
    fs::remove_file(&segments[0]).unwrap();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::MissingStart { .. }),
        "expected 0",
    );
}

#[test]
fn a_damaged_sidecar_index_is_not_trusted_by_readers_and_reported_by_verify() {
    let (dir, segments) = build_log();
    let index = segments[1].with_extension("idx");
    let mut bytes = fs::read(&index).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    fs::write(&index, bytes).unwrap();
    let reader = LogReader::open(dir.path()).unwrap();
    for from in [0, 20, 30, EVENTS - 1] {
        assert_eq!(reader.events(from).next().unwrap().unwrap(), event_at(from));
    }
    let error = verify(dir.path()).unwrap_err();
    assert!(matches!(error, LogError::IndexMismatch { .. }), "{error}");
    assert!(error.to_string().contains(".idx"), "{error}");
}

#[test]
fn a_version_1_log_is_refused_with_the_upgrade_command() {
    let (dir, segments) = build_log();
    let mut bytes = fs::read(&segments[0]).unwrap();
    let mut header = format::encode_segment_header(0);
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..24]) ^ 0x6361_7363;
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header);
    fs::write(&segments[0], bytes).unwrap();
    expect_error(
        dir.path(),
        |e| matches!(e, LogError::OldFormat { found: 1, .. }),
        "cascade log upgrade",
    );
}

#[test]
fn a_directory_of_other_files_is_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let error = LogWriter::open(dir.path(), WriterOptions::default())
        .err()
        .unwrap();
    assert!(matches!(error, LogError::NotALog { .. }), "{error}");
    assert!(dir.path().join("notes.txt").exists());
    let error = LogReader::open(dir.path()).err().unwrap();
    assert!(error.to_string().contains("no CURRENT"), "{error}");
}

#[test]
fn a_generation_emptied_of_segments_is_not_restarted() {
    let (dir, segments) = build_log();
    for segment in &segments {
        fs::remove_file(segment).unwrap();
    }
    let error = LogWriter::open(dir.path(), WriterOptions::default())
        .err()
        .unwrap();
    assert!(error.to_string().contains("holds no segment"), "{error}");
    assert!(LogReader::open(dir.path()).is_err());
}

/// What happened to one flipped bit.
#[derive(Default, Debug)]
struct FlipCounts {
    /// verify refused the log (an error naming the damage).
    refused: u64,
    /// verify reported a torn tail (exit 1 in `cascade log verify`), the records before it intact.
    torn: u64,
    /// verify passed and every event read back is the original: silent acceptance is 0 only
    /// when this is never a different content; a flip that changes nothing readable does not
    /// exist in this format (every byte is covered by a check), so this must stay 0 too.
    accepted: u64,
}

/// Flips every bit of `file` in turn (restoring it after each) and classifies what `verify` says.
fn flip_every_bit(dir: &Path, file: &Path, counts: &mut FlipCounts) {
    let original = fs::read(file).unwrap();
    for at in 0..original.len() {
        for bit in 0..8 {
            let mut bytes = original.clone();
            bytes[at] ^= 1 << bit;
            fs::write(file, &bytes).unwrap();
            match verify(dir) {
                Err(error) => {
                    assert!(error.is_corruption(), "byte {at} bit {bit}: {error}");
                    counts.refused += 1;
                }
                Ok(report) if report.torn_tail.is_some() => {
                    let kept: Vec<_> = LogReader::open(dir)
                        .unwrap()
                        .events(0)
                        .map(Result::unwrap)
                        .collect();
                    for (seq, event) in kept.iter().enumerate() {
                        assert_eq!(event, &event_at(seq as u64));
                    }
                    counts.torn += 1;
                }
                Ok(_) => {
                    counts.accepted += 1;
                    panic!("{} byte {at} bit {bit}: flip accepted", file.display());
                }
            }
        }
    }
    fs::write(file, &original).unwrap();
}

#[test]
fn every_bit_flip_of_a_segment_and_its_index_is_detected() {
    // A small log (every flip runs a full verify): 20 events in segments of about 400 bytes.
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        segment_bytes: 400,
        buffer_bytes: 128,
    };
    let (mut writer, _) = LogWriter::open(dir.path(), options).unwrap();
    for i in 0..20 {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    let segments = LogReader::open(dir.path()).unwrap().segment_paths();
    assert!(segments.len() >= 3);
    let mut counts = FlipCounts::default();
    let sealed = &segments[1];
    flip_every_bit(dir.path(), sealed, &mut counts);
    flip_every_bit(dir.path(), &sealed.with_extension("idx"), &mut counts);
    let sealed_flips = counts.refused;
    assert_eq!(counts.torn, 0, "a sealed segment never has a torn tail");
    flip_every_bit(dir.path(), segments.last().unwrap(), &mut counts);
    let manifest = segments[0].parent().unwrap().join("MANIFEST");
    flip_every_bit(dir.path(), &manifest, &mut counts);
    println!(
        "bits flipped: {} ({sealed_flips} in a sealed segment and its index, the rest in the last segment and the manifest): {} refused by verify, {} reported as a torn tail of the last record, {} accepted silently",
        counts.refused + counts.torn + counts.accepted,
        counts.refused,
        counts.torn,
        counts.accepted
    );
    assert_eq!(counts.accepted, 0);
    assert_eq!(verify(dir.path()).unwrap().records, 20);
}

/// The byte range of every record frame in a segment file.
fn frames(segment: &Path) -> Vec<(usize, usize)> {
    let bytes = fs::read(segment).unwrap();
    let mut frames = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let len = format::check_record(&bytes[at..]).unwrap().framed_len() as usize;
        frames.push((at, at + len));
        at += len;
    }
    frames
}

/// Rewrites a segment with its frames in the order `pick` gives (indexes into its frames).
fn reframe(segment: &Path, pick: &[usize]) {
    let bytes = fs::read(segment).unwrap();
    let frames = frames(segment);
    let mut out = bytes[..SEGMENT_HEADER_LEN].to_vec();
    for &i in pick {
        out.extend_from_slice(&bytes[frames[i].0..frames[i].1]);
    }
    fs::write(segment, out).unwrap();
}

/// Every way of looking at the log must refuse it: verify, a reader reading everything, and a
/// writer open (which must not "repair" it either).
fn assert_refused_everywhere(dir: &Path, what: &str) {
    assert!(verify(dir).is_err(), "{what}: verify accepted it");
    let read_all =
        LogReader::open(dir).and_then(|reader| reader.events(0).collect::<Result<Vec<_>, _>>());
    assert!(read_all.is_err(), "{what}: a reader read it");
}

#[test]
fn missing_current_with_segments_is_refused_not_started_over() {
    let (dir, segments) = build_log();
    fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let error = LogWriter::open(dir.path(), WriterOptions::default())
        .err()
        .expect("a log without CURRENT but with segments must be refused");
    let text = error.to_string();
    assert!(text.contains("cascade log repair"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    for segment in &segments {
        assert!(segment.exists(), "{} was deleted", segment.display());
    }
}

#[test]
fn deleted_last_segment_is_detected() {
    let (dir, segments) = build_log();
    fs::remove_file(segments.last().unwrap()).unwrap();
    assert!(
        verify(dir.path()).is_err(),
        "verify accepted a log whose last segment is gone"
    );
    assert!(LogReader::open(dir.path()).is_err(), "a reader opened it");
    assert!(
        LogWriter::open(dir.path(), WriterOptions::default()).is_err(),
        "a writer would append after the shortened tip"
    );
}

#[test]
fn duplicated_record_frame_is_detected() {
    for at in [1, 2] {
        let (dir, segments) = build_log();
        let count = frames(&segments[at]).len();
        let mut pick: Vec<usize> = (0..count).collect();
        pick.insert(2, 1);
        reframe(&segments[at], &pick);
        assert_refused_everywhere(dir.path(), &format!("duplicate in segment {at}"));
    }
    // In the last segment, a duplicate of its last record at the very end.
    let (dir, segments) = build_log();
    let last = segments.last().unwrap();
    let count = frames(last).len();
    let mut pick: Vec<usize> = (0..count).collect();
    pick.push(count - 1);
    reframe(last, &pick);
    assert_refused_everywhere(dir.path(), "duplicate of the last record");
}

#[test]
fn deleted_record_frame_is_detected() {
    let (dir, segments) = build_log();
    let count = frames(&segments[1]).len();
    let pick: Vec<usize> = (0..count).filter(|&i| i != 2).collect();
    reframe(&segments[1], &pick);
    assert_refused_everywhere(dir.path(), "deleted frame in a sealed segment");

    let (dir, segments) = build_log();
    let last = segments.last().unwrap();
    let count = frames(last).len();
    assert!(count >= 3);
    let pick: Vec<usize> = (0..count).filter(|&i| i != 0).collect();
    reframe(last, &pick);
    assert_refused_everywhere(dir.path(), "deleted first frame of the last segment");
}

#[test]
fn swapped_record_frames_are_detected() {
    let (dir, segments) = build_log();
    let count = frames(&segments[1]).len();
    let mut pick: Vec<usize> = (0..count).collect();
    pick.swap(1, 2);
    reframe(&segments[1], &pick);
    assert_refused_everywhere(dir.path(), "swapped frames");

    // Whole frames swapped between two sealed segments of equal frame sizes.
    let (dir, segments) = build_log();
    let (a, b) = (
        fs::read(&segments[1]).unwrap(),
        fs::read(&segments[2]).unwrap(),
    );
    let (fa, fb) = (frames(&segments[1])[0], frames(&segments[2])[0]);
    if fa.1 - fa.0 == fb.1 - fb.0 {
        let mut a2 = a.clone();
        let mut b2 = b.clone();
        a2[fa.0..fa.1].copy_from_slice(&b[fb.0..fb.1]);
        b2[fb.0..fb.1].copy_from_slice(&a[fa.0..fa.1]);
        fs::write(&segments[1], a2).unwrap();
        fs::write(&segments[2], b2).unwrap();
        assert_refused_everywhere(dir.path(), "frames swapped across segments");
    }
}

#[test]
fn crafted_index_cannot_make_cat_print_another_record() {
    let (dir, segments) = build_log();
    let sealed = &segments[1];
    let offsets = frames(sealed);
    let first = sealed
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let len = fs::metadata(sealed).unwrap().len();
    // An index whose checksum is right but whose second entry points seq first+4 at the record
    // of first+1.
    let crafted = SegmentIndex {
        first_seq: first,
        segment_len: len,
        records: offsets.len() as u64,
        entries: vec![
            format::IndexEntry {
                seq: first,
                offset: SEGMENT_HEADER_LEN as u64,
            },
            format::IndexEntry {
                seq: first + 4,
                offset: offsets[1].0 as u64,
            },
        ],
    };
    fs::write(sealed.with_extension("idx"), crafted.encode()).unwrap();
    let reader = LogReader::open(dir.path()).unwrap();
    match reader.events(first + 4).next().unwrap() {
        Ok(found) => assert_eq!(
            found,
            event_at(first + 4),
            "the reader printed another record"
        ),
        Err(error) => assert!(error.to_string().contains("seq"), "{error}"),
    }
    assert!(
        verify(dir.path()).is_err(),
        "verify accepted an index that disagrees with its segment"
    );
}

/// A version-1 frame: length, payload CRC, masked CRC32C of those eight bytes, payload.
fn push_v1_record(out: &mut Vec<u8>, payload: &[u8]) {
    let mut head = Vec::new();
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    head.extend_from_slice(&format::payload_crc(payload).to_le_bytes());
    let check = crc32c::crc32c(&head) ^ 0x6361_7363;
    out.extend_from_slice(&head);
    out.extend_from_slice(&check.to_le_bytes());
    out.extend_from_slice(payload);
}

#[test]
fn a_version_1_log_is_refused_then_upgraded_record_for_record() {
    let dir = tempfile::tempdir().unwrap();
    let gen_dir = dir.path().join("gen-00000000000000000004");
    fs::create_dir(&gen_dir).unwrap();
    fs::write(dir.path().join("CURRENT"), "gen-00000000000000000004\n").unwrap();
    let mut header = format::encode_segment_header(0);
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..24]) ^ 0x6361_7363;
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    let payloads: Vec<Vec<u8>> = (0..25).map(|i| cascade_events::encode(&event(i))).collect();
    // Two version-1 segments: seqs 0..10 and 10..25.
    for (first, range) in [(0u64, 0..10), (10, 10..25)] {
        let mut bytes = header.to_vec();
        bytes[16..24].copy_from_slice(&first.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[0..24]) ^ 0x6361_7363;
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        for payload in &payloads[range] {
            push_v1_record(&mut bytes, payload);
        }
        fs::write(gen_dir.join(format!("{first:020}.seg")), bytes).unwrap();
    }
    let error = LogReader::open(dir.path()).err().unwrap();
    assert!(error.to_string().contains("cascade log upgrade"), "{error}");

    assert_eq!(cascade_log::upgrade(dir.path(), Vec::new()).unwrap(), 25);
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.records, 25);
    let mut expected = cascade_log::IdentityHasher::new();
    for payload in &payloads {
        expected.push(payload);
    }
    assert_eq!(
        report.identity,
        expected.finish(),
        "same records, same identity"
    );
    let events: Vec<_> = LogReader::open(dir.path())
        .unwrap()
        .events(0)
        .map(Result::unwrap)
        .collect();
    assert_eq!(events, (0..25).map(event_at).collect::<Vec<_>>());
    assert!(
        !gen_dir.exists(),
        "the version-1 generation is removed after the switch"
    );
}

#[test]
fn repair_rebuilds_current_and_a_missing_manifest() {
    let (dir, segments) = build_log();
    fs::remove_file(dir.path().join("CURRENT")).unwrap();
    fs::remove_file(segments[0].parent().unwrap().join("MANIFEST")).unwrap();
    let error = LogReader::open(dir.path()).err().unwrap();
    assert!(error.to_string().contains("cascade log repair"), "{error}");
    let report = cascade_log::repair(dir.path()).unwrap();
    assert!(report.problems.is_empty(), "{report}");
    let text = report.to_string();
    assert!(text.contains("rebuilt CURRENT"), "{text}");
    assert!(text.contains("MANIFEST"), "{text}");
    assert_eq!(verify(dir.path()).unwrap().records, EVENTS);
    assert_eq!(
        cascade_log::repair(dir.path()).unwrap().to_string(),
        "nothing to repair\n"
    );
}

#[test]
fn repair_reports_a_missing_last_segment_and_changes_nothing() {
    let (dir, segments) = build_log();
    fs::remove_file(segments.last().unwrap()).unwrap();
    let report = cascade_log::repair(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(report.problems[0].contains("missing"), "{report}");
    assert!(verify(dir.path()).is_err());
}
