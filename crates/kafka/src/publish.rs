//! Publishing a log onto a topic, in order, transactionally and resumably.
//!
//! The producer is transactional (which makes it idempotent with `acks=all`): events go out in
//! transactions of [`PublishOptions::transaction_events`], and consumers read with
//! `isolation.level=read_committed`, so a publish killed at any point (the publisher, or the
//! broker under it) leaves on the topic exactly the events of committed transactions: a dense
//! prefix of the log, never a hole.
//!
//! Resuming: after a new producer has fenced any previous one with the same transactional id
//! (which aborts its open transaction), the publisher reads the last committed record of every
//! partition; the topic itself says where to continue, so a publisher that died between a
//! transaction commit and saving its progress still publishes no duplicate. Progress is also saved
//! in the log's catalog ([`ProgressStore`]) after every commit, under a key naming the brokers and
//! topic, and reported next to what the topic says.
//!
//! This module must never publish an event out of order, skip one, or send one twice in
//! committed transactions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cascade_events::decode;
use cascade_log::{Catalog, LogError, LogReader};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::wire::{Packing, Partitioning, RecordBuilder, RecordHeaders};
use crate::{ClientOptions, KafkaError};

/// How fast events go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Speed {
    /// As fast as the broker takes them.
    #[default]
    Max,
    /// This many thousandths of the historical pace: event timestamps `dt` seconds apart are
    /// published `dt * 1000 / n` seconds apart (`Paced(60_000)` is 60x). Integer so that
    /// `--speed 0.5` and `--speed 60` parse exactly.
    Paced(u64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "max" {
            return Ok(Speed::Max);
        }
        let bad = || format!("speed {text:?} is not `max` or a positive factor like 60 or 0.5");
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty()
            || fraction.len() > 3
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let fraction: u64 = format!("{fraction:0<3}").parse().map_err(|_| bad())?;
        match whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(fraction))
        {
            Some(milli) if milli > 0 => Ok(Speed::Paced(milli)),
            _ => Err(bad()),
        }
    }
}

/// How to publish.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// The topic; created when missing, with [`PublishOptions::partitions`] partitions.
    pub topic: String,
    /// Partitions of a newly created topic.
    pub partitions: i32,
    /// Where to start in a topic that holds no events yet (default 0). On a topic that already
    /// holds events, publishing continues after them; a different `from` is refused.
    pub from: Option<u64>,
    /// Pace.
    pub speed: Speed,
    /// Keys and partitions.
    pub partitioning: Partitioning,
    /// Events per record.
    pub packing: Packing,
    /// Events per transaction (at least 1). Larger is faster; a killed publish redoes at most one.
    pub transaction_events: u64,
    /// The producer's transactional id (default `cascade-publish.<topic>`): two publishers with
    /// the same id fence each other, so only one publishes to a topic at a time.
    pub transactional_id: Option<String>,
    /// Publish at most this many events in this run (default: to the end of the log).
    pub limit: Option<u64>,
    /// Set from elsewhere (e.g. a Ctrl-C handler) to stop early: what is buffered is committed
    /// and the report says how far the publish got.
    pub stop: Option<Arc<AtomicBool>>,
}

impl PublishOptions {
    /// Defaults for `topic`: one partition, global order, one event per record, as fast as
    /// possible, 20 000 events per transaction.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            partitions: 1,
            from: None,
            speed: Speed::Max,
            partitioning: Partitioning::Global,
            packing: Packing::SINGLE,
            transaction_events: 20_000,
            transactional_id: None,
            limit: None,
            stop: None,
        }
    }
}

/// Where a publish keeps its progress between runs.
pub trait ProgressStore {
    /// The saved resume point (one past the last acknowledged seq) under `key`.
    fn load(&self, key: &str) -> Result<Option<u64>, KafkaError>;
    /// Saves the resume point durably.
    fn save(&self, key: &str, next_seq: u64) -> Result<(), KafkaError>;
}

impl ProgressStore for Catalog {
    fn load(&self, key: &str) -> Result<Option<u64>, KafkaError> {
        let Some(bytes) = self.get_state(key)? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KafkaError::BadProgress {
                key: key.to_owned(),
                reason: format!("{} bytes, expected 8", b.len()),
            })?;
        Ok(Some(u64::from_le_bytes(bytes)))
    }

    fn save(&self, key: &str, next_seq: u64) -> Result<(), KafkaError> {
        self.put_state(key, &next_seq.to_le_bytes())?;
        Ok(self.flush()?)
    }
}

/// The catalog key of a publish's progress.
pub fn progress_key(brokers: &str, topic: &str) -> String {
    format!("kafka.publish/{brokers}/{topic}")
}

/// What a publish did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// The seq this run started at.
    pub started_at: u64,
    /// One past the last seq now on the topic (committed).
    pub next_seq: u64,
    /// What the catalog said before this run (it may lag the topic by one transaction).
    pub saved_progress: Option<u64>,
    /// Events published by this run.
    pub events: u64,
    /// Kafka records published by this run.
    pub records: u64,
    /// Transactions committed by this run.
    pub transactions: u64,
}

/// Publishes `dir`'s log onto the topic, saving progress in its catalog.
pub fn publish_log(
    client: &ClientOptions,
    options: &PublishOptions,
    dir: &std::path::Path,
    observer: &mut dyn FnMut(&PublishReport),
) -> Result<PublishReport, KafkaError> {
    let reader = LogReader::open(dir)?;
    let catalog = Catalog::open(dir)?;
    let end = reader.next_seq();
    publish(
        client,
        options,
        &catalog,
        end,
        |from| reader.records(from),
        observer,
    )
}

/// Publishes the records `source(start)` yields (`(seq, encoded event)` in seq order, dense, up
/// to `end` exclusive), where `start` is decided here: after what the topic already holds, or
/// `options.from` on an empty topic. `observer` sees the report after every committed transaction.
pub fn publish<I>(
    client: &ClientOptions,
    options: &PublishOptions,
    store: &dyn ProgressStore,
    end: u64,
    source: impl FnOnce(u64) -> I,
    observer: &mut dyn FnMut(&PublishReport),
) -> Result<PublishReport, KafkaError>
where
    I: Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
{
    let topic = options.topic.as_str();
    if options.partitioning == Partitioning::Account && options.packing.is_packed() {
        return Err(KafkaError::Config {
            key: "pack".into(),
            reason: "packing puts several accounts under one key; use global partitioning".into(),
        });
    }
    let partitions = client.ensure_topic(topic, options.partitions.max(1), -1)?;
    let transactional_id = options
        .transactional_id
        .clone()
        .unwrap_or_else(|| format!("cascade-publish.{topic}"));
    // Fences an earlier publisher with the same id and aborts its open transaction, so the tail
    // read next sees only committed events.
    let (producer, timeout) = client.transactional_producer(topic, &transactional_id, &[])?;

    let key = progress_key(&client.brokers, topic);
    let saved = store.load(&key)?;
    let on_topic = committed_end(client, topic, &partitions)?;
    let start = match (on_topic, options.from) {
        (None, from) => from.unwrap_or(0),
        (Some(published), Some(from)) if from != published => {
            return Err(KafkaError::FromConflict {
                topic: topic.to_owned(),
                from,
                published,
                what: if from < published {
                    "duplicate events"
                } else {
                    "leave a gap"
                },
            });
        }
        (Some(published), _) => published,
    };
    if start > end {
        return Err(KafkaError::AheadOfLog {
            topic: topic.to_owned(),
            on_topic: start,
            log_end: end,
        });
    }
    let stop_at = options
        .limit
        .map_or(end, |limit| end.min(start.saturating_add(limit)));
    let report = PublishReport {
        started_at: start,
        next_seq: start,
        saved_progress: saved,
        ..PublishReport::default()
    };
    if saved != Some(start) {
        store.save(&key, start)?;
    }
    if start == stop_at {
        return Ok(report);
    }

    let mut sender = Sender {
        producer: &producer,
        topic,
        options,
        timeout,
        builder: RecordBuilder::new(options.packing.is_packed()),
        record_key: None,
        record_time: 0,
        in_transaction: 0,
        pace: None,
        report,
        store,
        progress_key: &key,
    };
    let result = sender.run(source(start), stop_at, observer);
    if result.is_err() {
        // Nothing of the open transaction becomes visible; the error names the resume point.
        let _ = producer.abort_transaction(timeout);
    }
    result?;
    Ok(sender.report)
}

struct Sender<'a> {
    producer: &'a BaseProducer,
    topic: &'a str,
    options: &'a PublishOptions,
    timeout: Duration,
    builder: RecordBuilder,
    record_key: Option<String>,
    record_time: i64,
    in_transaction: u64,
    /// Wall-clock instant and event time of the first paced event.
    pace: Option<(Instant, i64)>,
    report: PublishReport,
    store: &'a dyn ProgressStore,
    progress_key: &'a str,
}

impl Sender<'_> {
    fn run(
        &mut self,
        records: impl Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
        stop_at: u64,
        observer: &mut dyn FnMut(&PublishReport),
    ) -> Result<(), KafkaError> {
        let paced = matches!(self.options.speed, Speed::Paced(_));
        let keyed = self.options.partitioning == Partitioning::Account;
        let mut expected = self.report.started_at;
        self.begin()?;
        for item in records {
            let (seq, bytes) = item?;
            if seq >= stop_at || self.stopped() {
                break;
            }
            if seq != expected {
                return Err(KafkaError::SourceOrder {
                    expected,
                    found: seq,
                });
            }
            expected += 1;
            let (key, time) = if paced || keyed {
                let event =
                    decode(seq, &bytes).map_err(|source| KafkaError::Decode { seq, source })?;
                (self.options.partitioning.key(&event), event.time.seconds())
            } else {
                (None, 0)
            };
            let boundary = self.builder.count() > 0
                && (self.builder.is_full_for(bytes.len(), &self.options.packing)
                    || (paced && time != self.record_time)
                    || key != self.record_key);
            if boundary {
                self.send_record()?;
            }
            if self.in_transaction >= self.options.transaction_events.max(1) {
                self.commit(observer)?;
                self.begin()?;
            }
            if paced && self.builder.count() == 0 {
                self.wait_for(time, observer)?;
            }
            if self.builder.count() == 0 {
                self.record_key = key;
                self.record_time = time;
            }
            self.builder.push(seq, &bytes);
            self.in_transaction += 1;
        }
        if expected < stop_at && !self.stopped() {
            return Err(KafkaError::SourceOrder {
                expected,
                found: stop_at,
            });
        }
        if self.builder.count() > 0 {
            self.send_record()?;
        }
        self.commit(observer)
    }

    fn begin(&mut self) -> Result<(), KafkaError> {
        self.producer
            .begin_transaction()
            .map_err(|source| self.error("begin transaction", source))
    }

    /// Sleeps until an event at `time` is due; commits first, so consumers see what is due.
    fn wait_for(
        &mut self,
        time: i64,
        observer: &mut dyn FnMut(&PublishReport),
    ) -> Result<(), KafkaError> {
        let Speed::Paced(milli) = self.options.speed else {
            return Ok(());
        };
        let (started, first_time) = *self.pace.get_or_insert((Instant::now(), time));
        let elapsed_ms = u64::try_from(time.saturating_sub(first_time))
            .unwrap_or(0)
            .saturating_mul(1_000_000)
            / milli;
        let due = started + Duration::from_millis(elapsed_ms);
        let now = Instant::now();
        if due > now {
            if self.in_transaction > 0 {
                self.commit(observer)?;
                self.begin()?;
            }
            // In slices, so that a stop request is honoured during long historical pauses.
            while !self.stopped() {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(100)));
            }
        }
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::Relaxed))
    }

    fn send_record(&mut self) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(4);
        for (name, value) in self.builder.headers() {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = BaseRecord::<str, [u8]>::to(self.topic)
            .payload(self.builder.value())
            .headers(headers);
        record = match &self.record_key {
            Some(key) => record.key(key.as_str()),
            None => record.partition(0),
        };
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((source, _)) => return Err(self.error("produce", source)),
            }
        }
        self.producer.poll(Duration::ZERO);
        self.report.records += 1;
        self.builder.clear();
        Ok(())
    }

    fn commit(&mut self, observer: &mut dyn FnMut(&PublishReport)) -> Result<(), KafkaError> {
        if self.builder.count() > 0 {
            self.send_record()?;
        }
        let seq = self.report.next_seq;
        self.producer
            .commit_transaction(self.timeout)
            .map_err(|source| KafkaError::Delivery {
                topic: self.topic.to_owned(),
                seq,
                acknowledged: seq,
                reason: source.to_string(),
            })?;
        self.report.transactions += 1;
        self.report.events += self.in_transaction;
        self.report.next_seq += self.in_transaction;
        self.in_transaction = 0;
        self.store.save(self.progress_key, self.report.next_seq)?;
        observer(&self.report);
        Ok(())
    }

    fn error(&self, operation: &'static str, source: ClientError) -> KafkaError {
        KafkaError::Client {
            operation,
            topic: self.topic.to_owned(),
            source,
        }
    }
}

/// One past the last seq in committed records on the topic, `None` when it holds none.
///
/// Reads backwards from each partition's end in growing windows: the tail of a partition is a
/// transaction marker, possibly after aborted records that a `read_committed` consumer skips.
fn committed_end(
    client: &ClientOptions,
    topic: &str,
    partitions: &[i32],
) -> Result<Option<u64>, KafkaError> {
    let consumer: BaseConsumer = client.create(&client.config(&[
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("group.id", crate::client::READER_GROUP),
        ("fetch.wait.max.ms", "100"),
    ]))?;
    let client_error = |operation, source| KafkaError::Client {
        operation,
        topic: topic.to_owned(),
        source,
    };
    let mut end = None;
    for &partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, client.connect_timeout)
            .map_err(|e| client_error("read partition offsets", e))?;
        let mut window = 64;
        loop {
            let from = high.saturating_sub(window).max(low);
            if from >= high {
                break;
            }
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(from))
                .map_err(|e| client_error("read topic tail", e))?;
            consumer
                .assign(&assignment)
                .map_err(|e| client_error("read topic tail", e))?;
            let mut last = None;
            let deadline = Instant::now() + client.connect_timeout;
            loop {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(message)) => {
                        let headers = RecordHeaders::parse(
                            message
                                .headers()
                                .into_iter()
                                .flat_map(|h| h.iter())
                                .map(|h| (h.key, h.value)),
                        );
                        if let Ok(headers) = headers {
                            last = Some(headers.end_seq());
                        }
                    }
                    Some(Err(ClientError::PartitionEOF(_))) => break,
                    Some(Err(error)) => return Err(client_error("read topic tail", error)),
                    None if Instant::now() >= deadline => {
                        return Err(KafkaError::Stalled {
                            topic: topic.to_owned(),
                            after: client.connect_timeout,
                        });
                    }
                    None => {}
                }
            }
            if let Some(last) = last {
                end = end.max(Some(last));
                break;
            }
            if from == low {
                break;
            }
            window = window.saturating_mul(8);
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_parses_exactly() {
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("60".parse(), Ok(Speed::Paced(60_000)));
        assert_eq!("0.5".parse(), Ok(Speed::Paced(500)));
        assert_eq!("1.25".parse(), Ok(Speed::Paced(1_250)));
        assert_eq!(".5".parse(), Ok(Speed::Paced(500)));
        for bad in ["0", "0.0", "-1", "1.2345", "fast", "", ".", "1e3"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }

    #[test]
    fn progress_key_names_brokers_and_topic() {
        assert_eq!(
            progress_key("127.0.0.1:9092", "crash"),
            "kafka.publish/127.0.0.1:9092/crash"
        );
    }
}
