//! Publishing, consuming and mirroring against a real broker (`CASCADE_KAFKA_BROKERS`).

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing
mod common {
    pub mod broker;
    pub mod client;
    pub mod log;
    pub mod sink;
}

use std::panic::{AssertUnwindSafe, catch_unwind};

use cascade_engine::EngineConfig;
use cascade_events::{Event, encode};
use cascade_kafka::wire::{RecordBuilder, RecordError};
use cascade_kafka::{
    ConsumeOptions, EngineSink, InvalidRecords, KafkaError, LogSink, Packing, Partitioning,
    ProgressStore, PublishOptions, Sink, SinkError, consume, publish_log,
};
use cascade_log::{Catalog, LogReader};
use common::broker::{brokers, topic};
use common::client::client;
use common::log::{build_log, events, log_records};
use common::sink::Collect;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn publish_all(brokers: &str, options: &PublishOptions, dir: &std::path::Path) -> u64 {
    let report = publish_log(&client(brokers), options, dir, &mut |_| {}).expect("publish");
    report.events
}

fn consume_all(
    brokers: &str,
    options: &ConsumeOptions,
    sink: &mut dyn Sink,
) -> cascade_kafka::ConsumeReport {
    consume(&client(brokers), options, sink).expect("consume")
}

#[test]
fn published_log_comes_back_byte_for_byte_in_every_layout() {
    let Some(brokers) = brokers("published_log_comes_back_byte_for_byte_in_every_layout") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(3_000));
    let expected = log_records(&log);
    let layouts = [
        ("single", Partitioning::Global, Packing::SINGLE, 1),
        ("packed", Partitioning::Global, Packing::events(128), 1),
        ("account", Partitioning::Account, Packing::SINGLE, 3),
    ];
    for (name, partitioning, packing, partitions) in layouts {
        let mut options = PublishOptions::new(topic(name));
        options.partitioning = partitioning;
        options.packing = packing;
        options.partitions = partitions;
        options.transaction_events = 700;
        assert_eq!(publish_all(&brokers, &options, &log), 3_000, "{name}");

        let mut sink = Collect::default();
        let report = consume_all(&brokers, &ConsumeOptions::new(&options.topic), &mut sink);
        assert_eq!(
            sink.applied, expected,
            "{name}: every event, in order, same bytes"
        );
        assert_eq!((report.applied, report.duplicates), (3_000, 0), "{name}");
        let records = if packing.is_packed() {
            3_000u64.div_ceil(128) + 5
        } else {
            3_000
        };
        assert!(
            report.records <= records,
            "{name}: {} records",
            report.records
        );

        // Publishing again finds everything on the topic and sends nothing.
        assert_eq!(
            publish_all(&brokers, &options, &log),
            0,
            "{name}: nothing left"
        );
    }
}

#[test]
fn interrupted_publish_resumes_after_the_topic_tail_without_duplicates() {
    let Some(brokers) =
        brokers("interrupted_publish_resumes_after_the_topic_tail_without_duplicates")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(2_500));
    let mut options = PublishOptions::new(topic("resume"));
    options.transaction_events = 100;
    options.limit = Some(1_234);
    assert_eq!(publish_all(&brokers, &options, &log), 1_234);

    // As if the publisher died after committing a transaction but before saving its progress:
    // the catalog lags; the topic's tail still says where to go on.
    let key = cascade_kafka::progress_key(&brokers, &options.topic);
    let catalog = Catalog::open(&log).unwrap();
    assert_eq!(catalog.load(&key).unwrap(), Some(1_234));
    catalog.save(&key, 1_000).unwrap();
    drop(catalog);

    options.limit = None;
    let report = publish_log(&client(&brokers), &options, &log, &mut |_| {}).unwrap();
    assert_eq!(report.saved_progress, Some(1_000));
    assert_eq!(
        (report.started_at, report.next_seq, report.events),
        (1_234, 2_500, 1_266)
    );
    assert_eq!(
        Catalog::open(&log).unwrap().load(&key).unwrap(),
        Some(2_500)
    );

    let mut sink = Collect::default();
    let consumed = consume_all(&brokers, &ConsumeOptions::new(&options.topic), &mut sink);
    assert_eq!(consumed.duplicates, 0, "no event is on the topic twice");
    assert_eq!(sink.applied, log_records(&log));

    options.from = Some(7);
    let error = publish_log(&client(&brokers), &options, &log, &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            error,
            KafkaError::FromConflict {
                from: 7,
                published: 2_500,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn publish_from_a_seq_on_a_new_topic_starts_there() {
    let Some(brokers) = brokers("publish_from_a_seq_on_a_new_topic_starts_there") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(300));
    let mut options = PublishOptions::new(topic("from"));
    options.from = Some(120);
    assert_eq!(publish_all(&brokers, &options, &log), 180);
    let mut sink = Collect::default();
    // A sink that starts at 0 finds seq 120 first: a gap, named with its position.
    let error = consume(
        &client(&brokers),
        &ConsumeOptions::new(&options.topic),
        &mut sink,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            KafkaError::Gap {
                expected: 0,
                found: 120,
                partition: 0,
                offset: 0,
                ..
            }
        ),
        "{error}"
    );
}

/// A sink that panics (like a killed process: nothing after the panic runs) at a chosen point.
struct Crashing {
    inner: Collect,
    panic_at_seq: Option<u64>,
    panic_after_persist: Option<u32>,
}

impl Sink for Crashing {
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }
    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        if self.panic_at_seq == Some(event.seq) {
            panic!("killed at seq {}", event.seq);
        }
        self.inner.apply(record, event)
    }
    fn persist(&mut self) -> Result<(), SinkError> {
        self.inner.persist()?;
        if self.panic_after_persist == Some(self.inner.persists) {
            panic!("killed after persisting, before committing offsets");
        }
        Ok(())
    }
}

#[test]
fn consumer_killed_and_restarted_with_its_group_ends_identical() {
    let Some(brokers) = brokers("consumer_killed_and_restarted_with_its_group_ends_identical")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(4_000));
    let expected = log_records(&log);
    let options = PublishOptions::new(topic("restart"));
    publish_all(&brokers, &options, &log);

    // Killed while applying (offsets lag the applied events: they are re-read and re-applied on
    // the persisted state), and killed between persisting and committing (re-read events are
    // duplicates of the persisted state and skipped).
    for (name, panic_at_seq, panic_after_persist, duplicates) in [
        ("in apply", Some(2_750), None, 0),
        ("before commit", None, Some(5), 500),
    ] {
        let mut consume_options = ConsumeOptions::new(&options.topic);
        consume_options.group = Some(topic("group"));
        consume_options.commit_every = 500;
        let mut crashing = Crashing {
            inner: Collect::default(),
            panic_at_seq,
            panic_after_persist,
        };
        let killed = catch_unwind(AssertUnwindSafe(|| {
            consume(&client(&brokers), &consume_options, &mut crashing)
        }));
        assert!(killed.is_err(), "{name}: the consumer was killed");
        let persisted = crashing.inner.persisted_next;
        assert_eq!(persisted, 2_500, "{name}");

        let mut resumed = Collect::resume(&crashing.inner);
        let report = consume_all(&brokers, &consume_options, &mut resumed);
        assert_eq!(
            resumed.applied, expected,
            "{name}: identical to an uninterrupted run"
        );
        assert_eq!(report.applied, 1_500, "{name}: only the rest is applied");
        assert_eq!(report.duplicates, duplicates, "{name}");

        // A fresh consumer in the same group has lost its state: refused, with the reason.
        let error =
            consume(&client(&brokers), &consume_options, &mut Collect::default()).unwrap_err();
        assert!(
            matches!(error, KafkaError::GroupAhead { expected: 0, .. }),
            "{name}: {error}"
        );
    }
}

#[test]
fn recording_a_topic_rebuilds_the_identical_log() {
    let Some(brokers) = brokers("recording_a_topic_rebuilds_the_identical_log") else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    let log = build_log(source.path(), &events(2_000));
    let mut options = PublishOptions::new(topic("record"));
    options.packing = Packing::events(64);
    publish_all(&brokers, &options, &log);

    let mirror = tempfile::tempdir().unwrap();
    let mut consume_options = ConsumeOptions::new(&options.topic);
    consume_options.group = Some(topic("recorder"));
    consume_options.commit_every = 300;
    {
        // Killed part-way: the log keeps what it committed, offsets what was committed after.
        let (sink, _) = LogSink::open(mirror.path()).unwrap();
        let mut crashing = CrashingLog {
            sink,
            panic_at: 1_111,
        };
        let killed = catch_unwind(AssertUnwindSafe(|| {
            consume(&client(&brokers), &consume_options, &mut crashing)
        }));
        assert!(killed.is_err());
    }
    let (mut sink, recovery) = LogSink::open(mirror.path()).unwrap();
    // Commits come after the first record that brings 300 or more events: 5 packs of 64.
    assert_eq!(
        sink.next_seq(),
        960,
        "three commits survived ({recovery:?})"
    );
    let report = consume_all(&brokers, &consume_options, &mut sink);
    assert_eq!(report.next_seq, 2_000);
    drop(sink);
    let original = LogReader::open(&log).unwrap().identity().unwrap();
    let copy = LogReader::open(mirror.path()).unwrap().identity().unwrap();
    assert_eq!(copy, original, "same events, same bytes, same hash");
}

struct CrashingLog {
    sink: LogSink,
    panic_at: u64,
}

impl Sink for CrashingLog {
    fn next_seq(&self) -> u64 {
        self.sink.next_seq()
    }
    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        if event.seq == self.panic_at {
            panic!("killed");
        }
        self.sink.apply(record, event)
    }
    fn persist(&mut self) -> Result<(), SinkError> {
        self.sink.persist()
    }
}

/// A plain (non-transactional) producer for records a cascade publisher would never write.
fn raw_producer(brokers: &str) -> BaseProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

fn send_raw(producer: &BaseProducer, topic: &str, headers: &[(&str, &str)], value: &[u8]) {
    let mut owned = OwnedHeaders::new();
    for (key, value) in headers {
        owned = owned.insert(Header {
            key,
            value: Some(*value),
        });
    }
    producer
        .send(
            BaseRecord::<(), [u8]>::to(topic)
                .partition(0)
                .payload(value)
                .headers(owned),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(std::time::Duration::from_secs(10)).unwrap();
}

fn send_event(producer: &BaseProducer, topic: &str, event: &Event) {
    let mut builder = RecordBuilder::new(false);
    builder.push(event.seq, &encode(event));
    let headers = builder.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send_raw(producer, topic, &headers, builder.value());
}

/// A new one-partition topic holding `events`, and the producer that wrote them.
fn topic_holding(brokers: &str, name: &str, events: &[Event]) -> (String, BaseProducer) {
    let topic = topic(name);
    client(brokers).ensure_topic(&topic, 1, 1).unwrap();
    let producer = raw_producer(brokers);
    for event in events {
        send_event(&producer, &topic, event);
    }
    (topic, producer)
}

/// The lines of a dead-letter file.
fn dead_letters(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A record whose headers are those of a single event at `seq`, whatever `value` is.
fn send_announced(producer: &BaseProducer, topic: &str, seq: u64, value: &[u8]) {
    let seq = seq.to_string();
    let headers = [
        ("cascade-seq", seq.as_str()),
        ("cascade-count", "1"),
        ("cascade-schema", "1"),
        ("content-type", "application/vnd.cascade.event"),
    ];
    send_raw(producer, topic, &headers, value);
}

#[test]
fn malformed_records_are_named_or_dead_lettered() {
    let Some(brokers) = brokers("malformed_records_are_named_or_dead_lettered") else {
        return;
    };
    let all = events(20);
    let (topic, producer) = topic_holding(&brokers, "malformed", &all[..10]);
    // Offset 10: well-formed headers for seq 10, but the value has schema version 2.
    let mut future = encode(&all[10]);
    future[0] = 2;
    send_announced(&producer, &topic, 10, &future);
    // Offset 11: not a cascade record at all.
    send_raw(&producer, &topic, &[], b"hello");
    for event in &all[11..] {
        send_event(&producer, &topic, event);
    }

    let mut sink = Collect::default();
    let error = consume(&client(&brokers), &ConsumeOptions::new(&topic), &mut sink).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            KafkaError::Malformed {
                partition: 0,
                offset: 10,
                reason: RecordError::Event { seq: 10, .. },
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains(&topic) && message.contains("offset 10"),
        "{message}"
    );
    assert!(message.contains("unknown schema version 2"), "{message}");
    assert_eq!(
        sink.applied.len(),
        10,
        "everything before the bad record was applied"
    );

    let dead = tempfile::tempdir().unwrap();
    let dead_letter = dead.path().join("dead.jsonl");
    let mut options = ConsumeOptions::new(&topic);
    options.invalid = InvalidRecords::DeadLetter(dead_letter.clone());
    let mut sink = Collect::default();
    let report = consume_all(&brokers, &options, &mut sink);
    assert_eq!((report.invalid_records, report.invalid_events), (2, 1));
    assert_eq!(
        sink.skipped,
        [10],
        "seq 10 was announced by the bad record and is skipped"
    );
    let seqs: Vec<u64> = sink.applied.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (0..20).filter(|&s| s != 10).collect::<Vec<_>>());
    let lines = dead_letters(&dead_letter);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["offset"].as_i64(), lines[1]["offset"].as_i64()),
        (Some(10), Some(11))
    );
    assert_eq!(lines[1]["value_hex"], "68656c6c6f");
    assert!(lines[1]["reason"].as_str().unwrap().contains("cascade-seq"));
}

#[test]
fn gaps_fail_with_their_position_and_duplicates_are_skipped() {
    let Some(brokers) = brokers("gaps_fail_with_their_position_and_duplicates_are_skipped") else {
        return;
    };
    let topic = topic("gap");
    client(&brokers).ensure_topic(&topic, 1, 1).unwrap();
    let producer = raw_producer(&brokers);
    let all = events(6);
    for seq in [0, 1, 2, 2, 1, 3, 5] {
        send_event(&producer, &topic, &all[seq]);
    }
    let mut sink = Collect::default();
    let error = consume(&client(&brokers), &ConsumeOptions::new(&topic), &mut sink).unwrap_err();
    assert!(
        matches!(
            error,
            KafkaError::Gap {
                expected: 4,
                found: 5,
                partition: 0,
                offset: 6,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(sink.applied.len(), 4, "seqs 0..=3 applied once each");
}

#[test]
fn unreachable_broker_is_a_clear_error_in_bounded_time() {
    // Needs no broker: nothing listens on the discard port.
    let mut unreachable = cascade_kafka::ClientOptions::new("127.0.0.1:9");
    unreachable.connect_timeout = std::time::Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(10));
    let started = std::time::Instant::now();
    let error =
        publish_log(&unreachable, &PublishOptions::new("t"), &log, &mut |_| {}).unwrap_err();
    assert!(matches!(error, KafkaError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
    let error = consume(
        &unreachable,
        &ConsumeOptions::new("t"),
        &mut Collect::default(),
    )
    .unwrap_err();
    assert!(matches!(error, KafkaError::Unreachable { .. }), "{error}");
    // Bounded, not a hang: two attempts of 3 s each, with generous slack for a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_sink_failing_inside_a_pack_resumes_inside_that_pack() {
    let Some(brokers) = brokers("a_sink_failing_inside_a_pack_resumes_inside_that_pack") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(500));
    let mut options = PublishOptions::new(topic("pack-fail"));
    options.packing = Packing::events(64);
    publish_all(&brokers, &options, &log);

    let mut consume_options = ConsumeOptions::new(&options.topic);
    consume_options.group = Some(topic("pack-group"));
    let mut failing = Collect {
        fail_at: Some(150),
        ..Collect::default()
    };
    let error = consume(&client(&brokers), &consume_options, &mut failing).unwrap_err();
    assert!(
        matches!(error, KafkaError::Sink { seq: 150, .. }),
        "{error}"
    );
    // What was applied is persisted, but the pack holding seq 150 (128..192) is not committed:
    // a restart reads it again, skips 128..150 as duplicates and applies the rest.
    assert_eq!(failing.persisted_next, 150);
    let mut resumed = Collect::resume(&failing);
    let report = consume_all(&brokers, &consume_options, &mut resumed);
    assert_eq!(report.duplicates, 22);
    assert_eq!(resumed.applied, log_records(&log));
}

#[test]
fn paced_publish_commits_before_each_pause_and_keeps_order() {
    let Some(brokers) = brokers("paced_publish_commits_before_each_pause_and_keeps_order") else {
        return;
    };
    // Events one second apart, replayed at 20x: a 50 ms pause before each one. The open
    // transaction is committed before every pause, so a consumer sees each event when it is due.
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), &events(12));
    let mut options = PublishOptions::new(topic("paced"));
    options.speed = "20".parse().unwrap();
    options.packing = Packing::events(64);
    let report = publish_log(&client(&brokers), &options, &log, &mut |_| {}).unwrap();
    assert_eq!(report.events, 12);
    assert!(report.transactions >= 2, "{report:?}");
    assert_eq!(
        report.records, 12,
        "a paced publish packs only events of one timestamp"
    );
    let mut sink = Collect::default();
    consume_all(&brokers, &ConsumeOptions::new(&options.topic), &mut sink);
    assert_eq!(sink.applied, log_records(&log));
}

#[test]
fn a_dead_lettered_record_with_readable_headers_is_skipped_by_the_engine() {
    let Some(brokers) =
        brokers("a_dead_lettered_record_with_readable_headers_is_skipped_by_the_engine")
    else {
        return;
    };
    let all = events(20);
    let (topic, producer) = topic_holding(&brokers, "engine-skip", &all[..12]);
    // Offset 12: headers name seq 12 (a price update), the value is garbage.
    send_announced(&producer, &topic, 12, b"\x01garbage");
    for event in &all[13..] {
        send_event(&producer, &topic, event);
    }

    let failed = consume(
        &client(&brokers),
        &ConsumeOptions::new(&topic),
        &mut EngineSink::in_memory(EngineConfig::default()),
    );
    let Err(KafkaError::Malformed {
        partition: 0,
        offset: 12,
        ..
    }) = &failed
    else {
        panic!("expected a malformed record at partition 0 offset 12: {failed:?}");
    };
    let message = failed.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&topic) && message.contains("partition 0 offset 12"),
        "{message}"
    );

    let dead = tempfile::tempdir().unwrap();
    let dead_letter = dead.path().join("dead.jsonl");
    let mut options = ConsumeOptions::new(&topic);
    options.invalid = InvalidRecords::DeadLetter(dead_letter.clone());
    let mut sink = EngineSink::in_memory(EngineConfig::default());
    let report = consume_all(&brokers, &options, &mut sink);
    assert_eq!(
        (
            report.invalid_records,
            report.invalid_events,
            report.applied
        ),
        (1, 1, 19)
    );
    assert_eq!(report.next_seq, 20, "the replay went on after seq 12");
    let run = sink.finish().unwrap();
    assert_eq!(run.totals.skipped.get("dead-lettered"), Some(&1), "counted");
    assert_eq!(run.window.events, 19);
    assert_eq!(run.window.last_seq, Some(19), "later events were applied");
    assert_eq!(run.log.last_seq, Some(19));
    let lines = dead_letters(&dead_letter);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["offset"].as_i64(), Some(12));
    assert_eq!(lines[0]["headers_hex"]["cascade-seq"], "3132");

    // With a state directory the local log cannot have a hole: stopped, naming the seq.
    let state = tempfile::tempdir().unwrap();
    let mut sink = EngineSink::with_state(EngineConfig::default(), state.path()).unwrap();
    let error = consume(&client(&brokers), &options, &mut sink).unwrap_err();
    assert!(matches!(error, KafkaError::Sink { seq: 12, .. }), "{error}");
}

#[test]
fn an_engine_failure_on_the_engine_thread_names_its_seq() {
    let Some(brokers) = brokers("an_engine_failure_on_the_engine_thread_names_its_seq") else {
        return;
    };
    // Seq 4 goes back in time: the engine refuses it, on its own thread.
    let mut all = events(8);
    all[4].time = cascade_events::Timestamp(all[0].time.0 - 10);
    let (topic, _) = topic_holding(&brokers, "engine-fails", &all);
    let mut sink = EngineSink::in_memory(EngineConfig::default());
    let consumed = consume(&client(&brokers), &ConsumeOptions::new(&topic), &mut sink);
    // The consumer hands the last batch over when it persists at the end, so the failure shows
    // when the run is asked for.
    assert_eq!(consumed.unwrap().applied, 8);
    let error = sink.finish().unwrap_err();
    assert!(
        matches!(error, KafkaError::Engine { seq: 4, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("seq 4"), "{error}");
}

// Here rather than in common/sink.rs: these are the only tests that resume a crashed sink.
impl Collect {
    /// A sink that resumes from what `crashed` had persisted.
    fn resume(crashed: &Collect) -> Collect {
        Collect {
            applied: crashed.persisted.clone(),
            persisted: crashed.persisted.clone(),
            persisted_next: crashed.persisted_next,
            next: crashed.persisted_next,
            ..Collect::default()
        }
    }
}
