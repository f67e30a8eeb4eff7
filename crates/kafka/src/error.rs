//! The one error type of the Kafka bridge.
//!
//! Every variant names where the problem is: the brokers and topic, the partition and offset of a
//! bad record, the sequence numbers around a gap. Client settings are never part of a message, so
//! an error can be printed or logged without leaking a secret passed through `--kafka-config`.

use std::path::PathBuf;
use std::time::Duration;

use cascade_log::LogError;

use crate::wire::RecordError;

/// Everything that can go wrong publishing, consuming or mirroring a topic.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A `--kafka-config` entry is not `key=value`, or the client rejected it.
    #[error("invalid Kafka client setting {key:?}: {reason}")]
    Config {
        /// The setting's key (never its value, which may be a secret).
        key: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No broker answered a metadata request in time.
    #[error("no Kafka broker reachable at {brokers} within {:.1}s: {reason}", after.as_secs_f64())]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// How long the client waited.
        after: Duration,
        /// The client's last error.
        reason: String,
    },
    /// The topic does not exist on the cluster.
    #[error("topic {topic:?} does not exist on {brokers}")]
    TopicMissing {
        /// The topic asked for.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// A client call failed.
    #[error("{operation} on topic {topic:?} failed: {source}")]
    Client {
        /// What was being done (`create topic`, `commit transaction`, `commit offsets`, ...).
        operation: &'static str,
        /// The topic involved.
        topic: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker did not acknowledge a published record.
    #[error(
        "publishing seq {seq} to topic {topic:?} failed: {reason}; the events before seq \
         {acknowledged} are acknowledged and a re-run resumes there"
    )]
    Delivery {
        /// The topic.
        topic: String,
        /// The first sequence number of the failed record.
        seq: u64,
        /// One past the last acknowledged sequence number (the resume point).
        acknowledged: u64,
        /// The client's error.
        reason: String,
    },
    /// `--from` asks to publish events that the topic already holds, or to leave a hole after them.
    #[error(
        "topic {topic:?} already holds events up to seq {published} (exclusive); publishing from \
         seq {from} would {what}; omit --from to resume, or use a new topic"
    )]
    FromConflict {
        /// The topic.
        topic: String,
        /// The sequence number asked for.
        from: u64,
        /// One past the last sequence number already on the topic.
        published: u64,
        /// `duplicate events` or `leave a gap`.
        what: &'static str,
    },
    /// The topic holds more events than the log being published.
    #[error(
        "topic {topic:?} already holds events up to seq {on_topic} (exclusive), beyond the end of \
         this log (seq {log_end}): it was published from another log"
    )]
    AheadOfLog {
        /// The topic.
        topic: String,
        /// One past the last sequence number on the topic.
        on_topic: u64,
        /// One past the last sequence number in the log.
        log_end: u64,
    },
    /// The source of a publish skipped or repeated a sequence number.
    #[error("source handed out seq {found} where seq {expected} was due")]
    SourceOrder {
        /// The sequence number due.
        expected: u64,
        /// The one received (or the end, when the source stopped early).
        found: u64,
    },
    /// An event read from the log does not decode (needed for pacing or keys).
    #[error("event seq {seq} in the log does not decode: {source}")]
    Decode {
        /// The event's sequence number.
        seq: u64,
        /// The decoder's error.
        #[source]
        source: cascade_events::DecodeError,
    },
    /// A record on the topic is not a cascade event record.
    #[error("malformed record in topic {topic:?} partition {partition} offset {offset}: {reason}")]
    Malformed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The record's offset in the partition.
        offset: i64,
        /// What is wrong with it.
        reason: RecordError,
    },
    /// A sequence number is missing from the stream.
    #[error(
        "gap in topic {topic:?}: expected seq {expected}, but the next record is seq {found} at \
         partition {partition} offset {offset}"
    )]
    Gap {
        /// The topic.
        topic: String,
        /// The sequence number that never arrived.
        expected: u64,
        /// The sequence number found instead.
        found: u64,
        /// The partition of the record found instead.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
    /// The consumer group's committed offsets are past the events this consumer still needs.
    #[error(
        "consumer group {group:?} has committed its position in topic {topic:?} at seq {found}, \
         but this consumer's state starts at seq {expected} (it was not kept); use a new --group, \
         or resume with the state the group was committed with"
    )]
    GroupAhead {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The first sequence number the sink needs.
        expected: u64,
        /// The sequence number the group's committed position stands at.
        found: u64,
    },
    /// The cluster stopped answering while a topic was being read to its end.
    #[error(
        "reading topic {topic:?}: no record and no end of partition for {:.1}s (broker down?)",
        after.as_secs_f64()
    )]
    Stalled {
        /// The topic.
        topic: String,
        /// How long nothing came.
        after: Duration,
    },
    /// The dead-letter file could not be written.
    #[error("writing dead-letter file {}: {source}", path.display())]
    DeadLetter {
        /// The dead-letter file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The event log (source of a publish, target of a record, or home of the progress state)
    /// failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Publish progress in the catalog is not in the format this build writes.
    #[error("publish progress {key:?} in the log catalog is damaged: {reason}")]
    BadProgress {
        /// The catalog key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine refused an event of the stream (`cascade stream replay`).
    #[error("the engine failed at seq {seq}: {source}")]
    Engine {
        /// The event it failed on.
        seq: u64,
        /// The engine's error (boxed: it is large, and rare).
        #[source]
        source: Box<cascade_engine::EngineError>,
    },
    /// The thread running the engine ended without a run.
    #[error("the engine thread ended without a run: {reason}")]
    EngineThread {
        /// What happened to it.
        reason: String,
    },
    /// A coordinator stopped waiting (Ctrl-C) before every task had a result.
    #[error(
        "stopped waiting for job {job}: {done} of {total} tasks have a result; run the same \
         command again to resume (the workers go on meanwhile)"
    )]
    Interrupted {
        /// The job.
        job: String,
        /// Tasks with a result.
        done: usize,
        /// Tasks of the job.
        total: usize,
    },
    /// A record of a work or results topic that belongs to a job but does not read as one.
    #[error("bad work record in topic {topic:?} partition {partition} offset {offset}: {reason}")]
    WorkRecord {
        /// The topic.
        topic: String,
        /// The partition (-1 when the record was never published).
        partition: i32,
        /// Its offset (-1 likewise).
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// Two workers reported different results for one task, which is deterministic.
    #[error(
        "task {id} of job {job} has two different results, from workers {first} and {second}: \
         the task is not deterministic or the workers run different builds"
    )]
    Inconsistent {
        /// The job.
        job: String,
        /// The task.
        id: String,
        /// The worker of the first result.
        first: String,
        /// The worker of the other one.
        second: String,
    },
    /// Whatever consumed the events (the engine, a log writer) failed.
    #[error("applying seq {seq} from topic {topic:?}: {source}")]
    Sink {
        /// The topic.
        topic: String,
        /// The event being applied.
        seq: u64,
        /// The sink's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
