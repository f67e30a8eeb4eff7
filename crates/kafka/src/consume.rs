//! Consuming a topic of cascade event records in sequence order, exactly once per sink.
//!
//! The consumer reads every partition of the topic, validates each record whole (headers and every
//! event it carries), merges the partitions back into one stream by sequence number, and hands the
//! events to a [`Sink`] (the engine, a log writer) in order. Delivery is at-least-once and
//! de-duplicated by sequence number, which together make each event applied exactly once:
//!
//! - an event whose sequence number is below [`Sink::next_seq`] is a duplicate: skipped and
//!   counted;
//! - a missing sequence number is a [`KafkaError::Gap`] naming the partition and offset of the
//!   record found instead;
//! - offsets are committed to the consumer group only after [`Sink::persist`] has made everything
//!   applied so far durable, so a consumer killed at any point resumes without loss, and re-reads
//!   at most what it had not yet persisted (the duplicates are then skipped).
//!
//! Partitions are assigned explicitly (no group rebalancing): one consumer reads the whole topic,
//! because a replay needs all of it. The group only stores committed offsets.
//!
//! Records are read with `isolation.level=read_committed`, so events of an aborted publish
//! transaction are never seen. This module never applies an event it could not validate, and never
//! commits an offset beyond what the sink persisted.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cascade_events::Event;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::wire::{DecodedEvent, RecordError, RecordHeaders};
use crate::{ClientOptions, KafkaError};

/// The error type a [`Sink`] reports.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where consumed events go.
pub trait Sink {
    /// The first sequence number this sink has not applied: consumption continues there, and
    /// anything below it is a duplicate.
    fn next_seq(&self) -> u64;

    /// Applies the event at [`Sink::next_seq`]; `record` is its encoded bytes exactly as on the
    /// topic (and in the log it was published from). After it returns `Ok`, `next_seq()` must be
    /// `event.seq + 1`.
    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError>;

    /// Advances past `seq` without applying anything: the record meant to carry it was malformed
    /// and dead-lettered. After it returns `Ok`, `next_seq()` must be `seq + 1`. Sinks that
    /// cannot have holes (a log) keep the default, which refuses.
    fn skip(&mut self, seq: u64) -> Result<(), SinkError> {
        Err(format!("seq {seq} was dead-lettered, and this sink cannot leave it out").into())
    }

    /// Makes everything applied so far durable; offsets are committed only after this returns.
    /// A sink without durable state (an in-memory replay) keeps the default, which does nothing.
    fn persist(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// What to do with a record that is not a valid cascade event record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InvalidRecords {
    /// Stop with [`KafkaError::Malformed`]. The default.
    #[default]
    Fail,
    /// Count it, append it as one JSON line to this dead-letter file, and go on. When its headers
    /// still name the sequence numbers it was meant to carry, those are skipped (counted as
    /// invalid events), so the stream continues after it.
    DeadLetter(PathBuf),
}

/// How to consume.
#[derive(Clone, Debug)]
pub struct ConsumeOptions {
    /// The topic.
    pub topic: String,
    /// The consumer group that stores committed offsets. Without one, the topic is read from the
    /// beginning (events below the sink's `next_seq` are skipped as duplicates) and nothing is
    /// committed.
    pub group: Option<String>,
    /// Keep waiting for new records at the end of the topic instead of returning.
    pub follow: bool,
    /// Policy for malformed records.
    pub invalid: InvalidRecords,
    /// Persist the sink and commit offsets after this many applied events (and always at the
    /// end, and when a followed topic goes idle).
    pub commit_every: u64,
    /// Without `follow`, give up with [`KafkaError::Stalled`] after this long without any
    /// progress (no record, no end-of-partition) from the cluster.
    pub stall_timeout: Duration,
    /// Set from elsewhere (e.g. a Ctrl-C handler) to stop cleanly: the sink is persisted and
    /// offsets committed before returning.
    pub stop: Option<Arc<AtomicBool>>,
}

impl ConsumeOptions {
    /// Options for reading `topic` once, without a group, failing on malformed records.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            group: None,
            follow: false,
            invalid: InvalidRecords::Fail,
            commit_every: 50_000,
            stall_timeout: Duration::from_secs(60),
            stop: None,
        }
    }
}

/// What a consumption did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumeReport {
    /// Kafka records read (valid or not, duplicates included).
    pub records: u64,
    /// Events applied to the sink.
    pub applied: u64,
    /// Events skipped because the sink already had them.
    pub duplicates: u64,
    /// Malformed records dead-lettered.
    pub invalid_records: u64,
    /// Sequence numbers skipped because the record meant to carry them was malformed.
    pub invalid_events: u64,
    /// The sink's `next_seq` at the end.
    pub next_seq: u64,
    /// Times the sink was persisted and offsets committed.
    pub commits: u64,
}

/// A record that arrived ahead of its turn, waiting in its partition's queue.
struct Pending {
    offset: i64,
    /// `None` for a dead-lettered record whose headers were unreadable: it takes no seq.
    range: Option<(u64, u64)>,
    /// Empty for a dead-lettered record.
    events: Vec<(Vec<u8>, Event)>,
}

#[derive(Default)]
struct PartitionState {
    queue: VecDeque<Pending>,
    at_end: bool,
    /// Offset to commit: one past the last record fully handled.
    handled: Option<i64>,
    committed: Option<i64>,
}

/// Consumes `options.topic` into `sink` until the end of the topic (or forever with
/// `follow`, until `stop` is set).
pub fn consume(
    client: &ClientOptions,
    options: &ConsumeOptions,
    sink: &mut dyn Sink,
) -> Result<ConsumeReport, KafkaError> {
    let partitions = client.existing_partitions(&options.topic)?;
    let mut defaults = vec![
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
        // The end of a partition is only noticed when an empty fetch returns: keep that short.
        ("fetch.wait.max.ms", "100"),
    ];
    // librdkafka needs a group id even to assign partitions; without a group of the user's this
    // one is never committed to.
    defaults.push((
        "group.id",
        options
            .group
            .as_deref()
            .unwrap_or(crate::client::READER_GROUP),
    ));
    let consumer: BaseConsumer = client.create(&client.config(&defaults))?;
    let client_error = |operation, source| KafkaError::Client {
        operation,
        topic: options.topic.clone(),
        source,
    };

    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        // The explicit low watermark, not `Offset::Beginning`: librdkafka resolves the latter
        // with a delayed offset lookup that costs about half a second before the first record.
        let (low, _) = consumer
            .fetch_watermarks(&options.topic, partition, client.connect_timeout)
            .map_err(|e| client_error("read partition offsets", e))?;
        assignment
            .add_partition_offset(&options.topic, partition, Offset::Offset(low))
            .map_err(|e| client_error("assign partitions", e))?;
    }
    if options.group.is_some() {
        let committed = consumer
            .committed_offsets(assignment.clone(), client.connect_timeout)
            .map_err(|e| client_error("read committed offsets", e))?;
        for element in committed.elements() {
            if let Offset::Offset(offset) = element.offset() {
                if let Some(group_next) = committed_next_seq(element.metadata())
                    && group_next > sink.next_seq()
                {
                    return Err(KafkaError::GroupAhead {
                        topic: options.topic.clone(),
                        group: options.group.clone().unwrap_or_default(),
                        expected: sink.next_seq(),
                        found: group_next,
                    });
                }
                assignment
                    .set_partition_offset(
                        &options.topic,
                        element.partition(),
                        Offset::Offset(offset),
                    )
                    .map_err(|e| client_error("assign partitions", e))?;
            }
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| client_error("assign partitions", e))?;

    let mut run = Run {
        options,
        consumer: &consumer,
        sink,
        states: partitions
            .iter()
            .map(|&p| (p, PartitionState::default()))
            .collect(),
        report: ConsumeReport::default(),
        dead_letter: None,
        since_commit: 0,
        decoded: Vec::new(),
    };
    let result = run.drive();
    // Persist and commit what was applied even when stopping on an error, so a restart does not
    // redo it; the error itself wins over a failure to commit.
    let committed = run.commit();
    result.and(committed)?;
    run.report.next_seq = run.sink.next_seq();
    Ok(run.report)
}

struct Run<'a> {
    options: &'a ConsumeOptions,
    consumer: &'a BaseConsumer,
    sink: &'a mut dyn Sink,
    states: BTreeMap<i32, PartitionState>,
    report: ConsumeReport,
    dead_letter: Option<(PathBuf, BufWriter<File>)>,
    since_commit: u64,
    decoded: Vec<DecodedEvent>,
}

impl Run<'_> {
    fn drive(&mut self) -> Result<(), KafkaError> {
        let mut last_progress = Instant::now();
        // Progress since the last empty poll: the clock is read only when a poll comes back
        // empty, not once per record.
        let mut progressed = false;
        let poll = Duration::from_millis(100);
        loop {
            if self.stopped() {
                return Ok(());
            }
            match self.consumer.poll(poll) {
                Some(Ok(message)) => {
                    progressed = true;
                    self.receive(&message)?;
                }
                Some(Err(ClientError::PartitionEOF(partition))) => {
                    progressed = true;
                    if let Some(state) = self.states.get_mut(&partition) {
                        state.at_end = true;
                    }
                }
                Some(Err(error)) => {
                    return Err(KafkaError::Client {
                        operation: "consume",
                        topic: self.options.topic.clone(),
                        source: error,
                    });
                }
                None => {
                    if std::mem::take(&mut progressed) {
                        last_progress = Instant::now();
                    }
                    if self.options.follow {
                        if self.since_commit > 0 {
                            self.commit()?;
                        }
                    } else if last_progress.elapsed() >= self.options.stall_timeout {
                        return Err(KafkaError::Stalled {
                            topic: self.options.topic.clone(),
                            after: self.options.stall_timeout,
                        });
                    }
                }
            }
            self.drain()?;
            if self.since_commit >= self.options.commit_every {
                self.commit()?;
            }
            if !self.options.follow && self.states.values().all(|s| s.at_end) {
                if let Some((partition, head)) = self.lowest_head() {
                    return Err(self.gap(partition, head.0, head.1));
                }
                return Ok(());
            }
        }
    }

    fn stopped(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::Relaxed))
    }

    /// Validates one record and applies it now if it is next in line, else queues it.
    fn receive(&mut self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        self.report.records += 1;
        let partition = message.partition();
        let offset = message.offset();
        let value = message.payload();
        let checked = RecordHeaders::parse(
            message
                .headers()
                .into_iter()
                .flat_map(|h| h.iter())
                .map(|h| (h.key, h.value)),
        )
        .and_then(|h| h.decode(value, &mut self.decoded).map(|()| h));
        let next = self.sink.next_seq();
        let state = self.states.entry(partition).or_default();
        state.at_end = false;
        let pending = match checked {
            Ok(h) if state.queue.is_empty() && h.first_seq <= next => {
                // In line (or a duplicate): apply straight from the borrowed record. The record
                // counts as handled (committable) only once all its events are applied.
                let value = value.unwrap_or_default();
                for index in 0..self.decoded.len() {
                    let DecodedEvent { bytes, event } = &self.decoded[index];
                    let record = &value[bytes.clone()];
                    let event = event.clone();
                    self.apply(record, &event)?;
                }
                if let Some(state) = self.states.get_mut(&partition) {
                    state.handled = Some(offset + 1);
                }
                return Ok(());
            }
            Ok(h) => {
                let value = value.unwrap_or_default();
                Pending {
                    offset,
                    range: Some((h.first_seq, h.end_seq())),
                    events: self
                        .decoded
                        .iter()
                        .map(|d| (value[d.bytes.clone()].to_vec(), d.event.clone()))
                        .collect(),
                }
            }
            Err(reason) => {
                let range = headers_range(message);
                self.dead_letter(message, &reason)?;
                Pending {
                    offset,
                    range,
                    events: Vec::new(),
                }
            }
        };
        self.states
            .entry(partition)
            .or_default()
            .queue
            .push_back(pending);
        Ok(())
    }

    /// Applies one event, or counts it as a duplicate.
    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), KafkaError> {
        if event.seq < self.sink.next_seq() {
            self.report.duplicates += 1;
            return Ok(());
        }
        self.sink
            .apply(record, event)
            .map_err(|source| KafkaError::Sink {
                topic: self.options.topic.clone(),
                seq: event.seq,
                source,
            })?;
        self.report.applied += 1;
        self.since_commit += 1;
        Ok(())
    }

    /// Applies queued records while some partition's head is next in line.
    fn drain(&mut self) -> Result<(), KafkaError> {
        loop {
            let next = self.sink.next_seq();
            let ready = self.states.iter().find_map(|(&p, s)| {
                s.queue
                    .front()
                    .filter(|head| head.range.is_none_or(|(first, _)| first <= next))
                    .map(|_| p)
            });
            let Some(partition) = ready else {
                break;
            };
            let state = self.states.get_mut(&partition).expect("found above");
            let head = state.queue.pop_front().expect("found above");
            match head.range {
                None => {}
                Some((_, end)) if head.events.is_empty() => {
                    // A dead-lettered record that named its seqs: they are skipped, not awaited.
                    while self.sink.next_seq() < end {
                        let seq = self.sink.next_seq();
                        self.sink.skip(seq).map_err(|source| KafkaError::Sink {
                            topic: self.options.topic.clone(),
                            seq,
                            source,
                        })?;
                        self.report.invalid_events += 1;
                        self.since_commit += 1;
                    }
                }
                Some(_) => {
                    for (record, event) in &head.events {
                        self.apply(record, event)?;
                    }
                }
            }
            // Committable only now that every event of the record is applied.
            if let Some(state) = self.states.get_mut(&partition) {
                state.handled = Some(head.offset + 1);
            }
        }
        // Every partition holds a record, and none is next: each partition is in seq order, so
        // the missing seq can no longer arrive.
        if self.states.values().all(|s| !s.queue.is_empty())
            && let Some((partition, (found, offset))) = self.lowest_head()
        {
            return Err(self.gap(partition, found, offset));
        }
        Ok(())
    }

    /// The queued head with the lowest seq: `(partition, (seq, offset))`.
    fn lowest_head(&self) -> Option<(i32, (u64, i64))> {
        self.states
            .iter()
            .filter_map(|(&p, s)| {
                let head = s.queue.front()?;
                Some((p, (head.range.map_or(u64::MAX, |r| r.0), head.offset)))
            })
            .min_by_key(|(_, (seq, _))| *seq)
    }

    fn gap(&self, partition: i32, found: u64, offset: i64) -> KafkaError {
        KafkaError::Gap {
            topic: self.options.topic.clone(),
            expected: self.sink.next_seq(),
            found,
            partition,
            offset,
        }
    }

    fn dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
        reason: &RecordError,
    ) -> Result<(), KafkaError> {
        let path = match &self.options.invalid {
            InvalidRecords::Fail => {
                return Err(KafkaError::Malformed {
                    topic: self.options.topic.clone(),
                    partition: message.partition(),
                    offset: message.offset(),
                    reason: reason.clone(),
                });
            }
            InvalidRecords::DeadLetter(path) => path,
        };
        self.report.invalid_records += 1;
        let io_error = |source| KafkaError::DeadLetter {
            path: path.clone(),
            source,
        };
        if self.dead_letter.is_none() {
            let file = File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io_error)?;
            self.dead_letter = Some((path.clone(), BufWriter::new(file)));
        }
        let headers: BTreeMap<&str, String> = message
            .headers()
            .into_iter()
            .flat_map(|h| h.iter())
            .map(|h| (h.key, h.value.map(hex).unwrap_or_default()))
            .collect();
        let line = serde_json::json!({
            "topic": self.options.topic,
            "partition": message.partition(),
            "offset": message.offset(),
            "reason": reason.to_string(),
            "key_hex": message.key().map(hex),
            "headers_hex": headers,
            "value_hex": message.payload().map(hex),
        });
        let (_, writer) = self.dead_letter.as_mut().expect("opened above");
        writeln!(writer, "{line}").map_err(io_error)
    }

    /// Persists the sink, then commits the offsets of everything handled since the last commit.
    fn commit(&mut self) -> Result<(), KafkaError> {
        if let Some((path, writer)) = &mut self.dead_letter {
            writer.flush().map_err(|source| KafkaError::DeadLetter {
                path: path.clone(),
                source,
            })?;
        }
        self.sink.persist().map_err(|source| KafkaError::Sink {
            topic: self.options.topic.clone(),
            seq: self.sink.next_seq(),
            source,
        })?;
        self.since_commit = 0;
        self.report.commits += 1;
        if self.options.group.is_none() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        let metadata = format!("{COMMIT_METADATA_PREFIX}{}", self.sink.next_seq());
        for (&partition, state) in &mut self.states {
            if let Some(handled) = state.handled
                && state.committed != Some(handled)
            {
                let mut element = offsets.add_partition(&self.options.topic, partition);
                element
                    .set_offset(Offset::Offset(handled))
                    .map_err(|source| KafkaError::Client {
                        operation: "commit offsets",
                        topic: self.options.topic.clone(),
                        source,
                    })?;
                element.set_metadata(metadata.as_str());
                state.committed = Some(handled);
            }
        }
        if offsets.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&offsets, CommitMode::Sync)
            .map_err(|source| KafkaError::Client {
                operation: "commit offsets",
                topic: self.options.topic.clone(),
                source,
            })
    }
}

/// Offsets are committed with this prefix and the sink's `next_seq` as metadata, so a consumer
/// whose state is behind the group's position is refused up front instead of silently missing
/// the events in between.
const COMMIT_METADATA_PREFIX: &str = "cascade-next-seq=";

fn committed_next_seq(metadata: &str) -> Option<u64> {
    metadata.strip_prefix(COMMIT_METADATA_PREFIX)?.parse().ok()
}

/// The seq range a malformed record's headers still announce, if they are readable.
fn headers_range(message: &BorrowedMessage<'_>) -> Option<(u64, u64)> {
    let headers = message.headers()?;
    let mut first = None;
    let mut count = None;
    for header in headers.iter() {
        let value = header.value.and_then(|v| std::str::from_utf8(v).ok());
        match header.key {
            crate::wire::HEADER_SEQ => first = value.and_then(|v| v.parse::<u64>().ok()),
            crate::wire::HEADER_COUNT => count = value.and_then(|v| v.parse::<u64>().ok()),
            _ => {}
        }
    }
    let (first, count) = (first?, count?);
    Some((first, first.checked_add(count)?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
