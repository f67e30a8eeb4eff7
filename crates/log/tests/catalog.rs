//! The catalog: sources, checkpoints, named state, and statistics that always match the segments.

mod common;

use cascade_events::Timestamp;
use cascade_log::{Catalog, LogError, LogReader, LogWriter, SourceRecord, WriterOptions, rewrite};
use common::{event, event_at};

fn source(hash: u8) -> SourceRecord {
    SourceRecord {
        id: 999,
        kind: "chainlink-rounds".into(),
        path: format!("feeds/{hash}.csv"),
        content_hash: [hash; 32],
        rows_read: 10,
        events_written: 9,
        first_time: Some(Timestamp(1_600_000_000)),
        last_time: Some(Timestamp(1_600_003_600)),
        ingested_at: Timestamp(1_700_000_000),
    }
}

#[test]
fn sources_get_dense_ids_and_are_found_by_hash_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let catalog = Catalog::open(dir.path()).unwrap();
        assert_eq!(catalog.add_source(source(1)).unwrap(), 0);
        assert_eq!(catalog.add_source(source(2)).unwrap(), 1);
        let duplicate = catalog.add_source(source(1)).err().unwrap();
        assert!(matches!(
            duplicate,
            LogError::DuplicateSource { existing: 0, .. }
        ));
        let mut updated = catalog.find_source(&[2; 32]).unwrap().unwrap();
        assert_eq!(updated.id, 1);
        updated.events_written = 42;
        catalog.update_source(&updated).unwrap();
        let mut wrong = updated.clone();
        wrong.content_hash = [3; 32];
        assert!(catalog.update_source(&wrong).is_err());
    }
    let catalog = Catalog::open(dir.path()).unwrap();
    let sources = catalog.sources().unwrap();
    assert_eq!(sources.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(sources[1].events_written, 42);
    assert_eq!(sources[0].path, "feeds/1.csv");
    assert_eq!(catalog.find_source(&[7; 32]).unwrap(), None);
    let json = serde_json::to_value(&sources[0]).unwrap();
    assert_eq!(json["content_hash"], "01".repeat(32));
}

#[test]
fn checkpoints_are_found_at_or_before_a_seq_per_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    catalog.put_checkpoint("base", 100, b"a").unwrap();
    catalog.put_checkpoint("base", 300, b"b").unwrap();
    catalog.put_checkpoint("base-2", 200, b"other").unwrap();
    catalog.put_checkpoint("bas", 250, b"prefix").unwrap();
    assert_eq!(catalog.checkpoint_at_or_before("base", 99).unwrap(), None);
    assert_eq!(
        catalog.checkpoint_at_or_before("base", 100).unwrap(),
        Some((100, b"a".to_vec()))
    );
    assert_eq!(
        catalog.checkpoint_at_or_before("base", 299).unwrap(),
        Some((100, b"a".to_vec()))
    );
    assert_eq!(
        catalog.checkpoint_at_or_before("base", u64::MAX).unwrap(),
        Some((300, b"b".to_vec()))
    );
    assert_eq!(
        catalog.checkpoint_at_or_before("bas", 1000).unwrap(),
        Some((250, b"prefix".to_vec()))
    );
    assert_eq!(catalog.clear_checkpoints("base").unwrap(), 2);
    assert_eq!(catalog.checkpoint_at_or_before("base", 1000).unwrap(), None);
    assert!(
        catalog
            .checkpoint_at_or_before("base-2", 1000)
            .unwrap()
            .is_some()
    );
    assert!(catalog.put_checkpoint("bad\0name", 1, b"").is_err());
    assert!(catalog.put_checkpoint("", 1, b"").is_err());
}

#[test]
fn named_state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    assert_eq!(catalog.get_state("kafka/topic-a").unwrap(), None);
    catalog.put_state("kafka/topic-a", b"41").unwrap();
    catalog.put_state("kafka/topic-a", b"42").unwrap();
    catalog.flush().unwrap();
    assert_eq!(
        catalog.get_state("kafka/topic-a").unwrap(),
        Some(b"42".to_vec())
    );
}

#[test]
fn stats_follow_a_rewrite_and_match_a_fresh_scan() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    let (mut writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
    for i in 0..20 {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    let before = catalog.summary().unwrap();
    assert_eq!(before.stats.events, 20);
    assert_eq!(before.stats.out_of_order, 0);
    // Reverse the order: same events, same count, different identity and ordering statistic.
    let count = rewrite(
        dir.path(),
        (0..20).rev().map(event),
        WriterOptions::default(),
    )
    .unwrap();
    assert_eq!(count, 20);
    let after = catalog.summary().unwrap();
    assert_eq!(after.stats.events, 20);
    assert_eq!(after.stats.out_of_order, 19);
    assert_ne!(after.identity.hash, before.identity.hash);
    let reader = LogReader::open(dir.path()).unwrap();
    assert_eq!(reader.generation(), 1);
    assert_eq!(reader.identity().unwrap(), after.identity);
    assert_eq!(
        reader.events(0).next().unwrap().unwrap(),
        cascade_events::Event {
            seq: 0,
            ..event_at(19)
        }
    );
    let json = serde_json::to_value(&after.stats).unwrap();
    assert_eq!(json["protocols"]["maker"], 6);
    assert_eq!(json["assets"], serde_json::json!(["ETH", "WETH"]));
    assert_eq!(json["markets"]["aave-v2"], serde_json::json!(["ETH-B"]));
}

#[test]
fn opening_twice_in_one_process_shares_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let first = Catalog::open(dir.path()).unwrap();
    let second = Catalog::open(dir.path()).unwrap();
    first.put_state("shared", b"yes").unwrap();
    assert_eq!(second.get_state("shared").unwrap(), Some(b"yes".to_vec()));
    drop(first);
    drop(second);
    // Closed and reopened: the value was flushed when the last handle went away.
    let reopened = Catalog::open(dir.path()).unwrap();
    assert_eq!(reopened.get_state("shared").unwrap(), Some(b"yes".to_vec()));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for round in 0..20 {
                    let catalog = Catalog::open(&path).unwrap();
                    catalog
                        .put_checkpoint(&format!("t{i}"), round, b"s")
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        reopened.checkpoint_at_or_before("t3", 100).unwrap(),
        Some((19, b"s".to_vec()))
    );
}
