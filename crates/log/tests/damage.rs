//! Damaged logs: torn tails are truncated to exactly the complete records; every other kind of
//! damage is an error naming the file (and the offset where there is one), from the reader, the
//! writer's recovery and `verify` alike.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use cascade_log::format::{self, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
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
    let bytes = fs::read(segment).unwrap();
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let header = format::check_record(&bytes[at..]).unwrap();
        offsets.push(at as u64);
        at += header.framed_len() as usize;
    }
    offsets
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
