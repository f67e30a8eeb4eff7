//! Rewrites seen by readers that were already open.

mod common;

use cascade_log::{LogError, LogReader, LogWriter, WriterOptions, rewrite};
use common::{event, event_at};

#[test]
fn a_reader_open_across_a_rewrite_sees_old_records_or_an_error_never_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        segment_bytes: 1024,
        buffer_bytes: 512,
    };
    let (mut writer, _) = LogWriter::open(dir.path(), options).unwrap();
    for i in 0..100 {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    let reader = LogReader::open(dir.path()).unwrap();
    let mut events = reader.events(0);
    for i in 0..10 {
        assert_eq!(events.next().unwrap().unwrap(), event_at(i));
    }
    rewrite(dir.path(), (500..600).map(event), options).unwrap();
    let mut seq = 10;
    for result in events {
        match result {
            Ok(found) => {
                assert_eq!(found, event_at(seq), "old content only");
                seq += 1;
            }
            Err(error) => {
                assert!(matches!(error, LogError::Io { .. }), "{error}");
                break;
            }
        }
    }
    assert!(seq < 100, "the old generation's later segments are gone");
    let fresh = LogReader::open(dir.path()).unwrap();
    assert_eq!(
        fresh.events(0).next().unwrap().unwrap(),
        cascade_events::Event {
            seq: 0,
            ..event(500)
        }
    );
}
