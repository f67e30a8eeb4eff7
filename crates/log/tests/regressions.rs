//! Regression tests of issue 12's log defects, each named after the bug it pins: a log missing
//! `CURRENT` or its last segment, whole record frames duplicated, deleted or swapped, and a crafted
//! sparse index. Every one of them passed silently before format version 2.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use cascade_log::format::{self, SEGMENT_HEADER_LEN, SegmentIndex};
use cascade_log::{LogReader, LogWriter, WriterOptions, verify};
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
