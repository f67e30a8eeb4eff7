//! Writing, reading back, seeking and reopening a log.

mod common;

use cascade_log::{Catalog, LogReader, LogWriter, WriterOptions};
use common::{event, event_at};

fn small_segments() -> WriterOptions {
    WriterOptions {
        segment_bytes: 4096,
        buffer_bytes: 1000,
    }
}

#[test]
fn events_read_back_in_order_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, report) = LogWriter::open(dir.path(), small_segments()).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.next_seq, 0);
    for i in 0..500 {
        assert_eq!(writer.append(&event(i)).unwrap(), i);
    }
    writer.commit().unwrap();
    drop(writer);
    let (mut writer, report) = LogWriter::open(dir.path(), small_segments()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(writer.next_seq(), 500);
    for i in 500..700 {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
    let reader = LogReader::open(dir.path()).unwrap();
    assert_eq!(reader.next_seq(), 700);
    assert!(reader.segment_paths().len() > 5, "tiny segments roll");
    let all: Vec<_> = reader.events(0).map(Result::unwrap).collect();
    assert_eq!(all, (0..700).map(event_at).collect::<Vec<_>>());
    for from in [0, 1, 57, 333, 499, 500, 699] {
        let first = reader.events(from).next().unwrap().unwrap();
        assert_eq!(first, event_at(from));
        assert_eq!(reader.events(from).count() as u64, 700 - from);
    }
    assert_eq!(reader.events(700).count(), 0);
    assert_eq!(reader.events(10_000).count(), 0);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
    let error = LogWriter::open(dir.path(), WriterOptions::default())
        .err()
        .unwrap();
    assert!(error.to_string().contains("locked"), "{error}");
}

#[test]
fn catalog_stats_follow_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    assert_eq!(catalog.stats().unwrap().events, 0);
    let (mut writer, _) = LogWriter::open(dir.path(), small_segments()).unwrap();
    for i in 0..30 {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
    let stats = catalog.stats().unwrap();
    assert_eq!(stats.events, 30);
    assert_eq!(stats.last_seq, Some(29));
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["by_kind"]["price"], 10);
    assert_eq!(json["by_kind"]["deposit"], 20);
    assert_eq!(json["first_time"], "2021-05-19T00:00:00Z");
    writer.append(&event(30)).unwrap();
    writer.commit().unwrap();
    assert_eq!(
        catalog.stats().unwrap().events,
        31,
        "stale stats are recomputed"
    );
    let identity = catalog.identity().unwrap();
    assert_eq!(
        identity,
        LogReader::open(dir.path()).unwrap().identity().unwrap()
    );
}
