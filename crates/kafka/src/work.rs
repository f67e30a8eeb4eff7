//! Independent tasks (sweep points, regression cases) spread over a Kafka consumer group.
//!
//! A coordinator ([`distribute`]) publishes a job's tasks to a partitioned work topic, each keyed
//! by a stable id, and collects the results from a results topic. Workers ([`serve`]) are
//! members of one consumer group: the group spreads the work topic's partitions over them and
//! hands a dead member's partitions to the others. The guarantees, end to end:
//!
//! - **Nothing lost.** A worker publishes a task's result (idempotent producer, `acks=all`) and
//!   commits the task's offset only after the broker acknowledged the result. A worker killed at
//!   any point leaves the task uncommitted, and the member that takes over its partition redoes it.
//! - **Nothing twice.** A redone task may have two results; the coordinator keeps the first per
//!   task id and checks that any other one is equal (tasks are deterministic: two different
//!   results of one task are an error, never silently one of them).
//! - **Resumable.** A job's tasks go out in one transaction together with a round marker on the
//!   results topic, so they are all on the work topic or none is. A restarted coordinator reads
//!   the results topic from the start: it finds the marker (nothing to publish again) and the
//!   results already there, and waits only for the rest. Tasks that failed in the latest round
//!   are published again, as a new round, when the coordinator is run again.
//!
//! Records are JSON; the task and result bodies are the caller's (`cascade` puts sweep points and
//! check cases in them). Consumers read with `isolation.level=read_committed`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::block_on;
use crate::{ClientOptions, KafkaError};

/// One task on the work topic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WorkItem<T> {
    /// The job (one sweep, one suite run) the task belongs to.
    pub job: String,
    /// The task's stable id (also the record key), unique across jobs.
    pub id: String,
    /// The task's place in its job, from 0.
    pub index: usize,
    /// The publishing round (0 first; a re-run publishes failed tasks again as the next round).
    pub round: u32,
    /// The topic the result goes to.
    pub reply_to: String,
    /// What to do.
    pub task: T,
}

impl<T> WorkItem<T> {
    /// The same item carrying `task` instead.
    pub fn with_task<U>(&self, task: U) -> WorkItem<U> {
        WorkItem {
            job: self.job.clone(),
            id: self.id.clone(),
            index: self.index,
            round: self.round,
            reply_to: self.reply_to.clone(),
            task,
        }
    }
}

/// A task's outcome as a worker reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome<R> {
    /// The task ran; its result.
    Done(R),
    /// The task could not run (e.g. the worker cannot get the log it names); why.
    Failed(String),
}

/// A record of the results topic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum ResultRecord<R> {
    /// A task's result.
    Result {
        job: String,
        id: String,
        index: usize,
        round: u32,
        worker: String,
        outcome: Outcome<R>,
    },
    /// The coordinator published these tasks of the job as this round.
    Round {
        job: String,
        round: u32,
        indices: Vec<usize>,
    },
}

/// Where a job's tasks go and how to wait for them.
#[derive(Clone, Debug)]
pub struct DistributeOptions {
    /// The work topic (created with [`DistributeOptions::partitions`] when missing).
    pub work_topic: String,
    /// The results topic (created likewise).
    pub results_topic: String,
    /// Partitions of topics this call creates: the most workers that can share the job.
    pub partitions: i32,
    /// The job's id: the same job (same tasks) must get the same id, so a re-run resumes.
    pub job: String,
    /// Set from elsewhere (a Ctrl-C handler) to stop waiting; the error says how far it got.
    pub stop: Option<Arc<AtomicBool>>,
}

/// A task's final outcome, as the coordinator collected it.
#[derive(Clone, Debug, PartialEq)]
pub struct Collected<R> {
    /// The task's outcome.
    pub outcome: Outcome<R>,
    /// The worker that reported it.
    pub worker: String,
}

/// What [`distribute`] did and found.
#[derive(Clone, Debug)]
pub struct Distributed<R> {
    /// Each task's outcome, in task order.
    pub tasks: Vec<Collected<R>>,
    /// Tasks whose result was already on the results topic when this call started.
    pub resumed: usize,
    /// Tasks this call published (0 when an earlier run already published them all).
    pub published: usize,
    /// The round this call published or waited for.
    pub round: u32,
    /// Results dropped because the task already had one (a redone task).
    pub duplicates: u64,
}

/// Progress of a [`distribute`] call, for a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Tasks with a final outcome.
    pub done: usize,
    /// Tasks of the job.
    pub total: usize,
}

/// The default results topic of a work topic.
pub fn results_topic(work_topic: &str) -> String {
    format!("{work_topic}.results")
}

/// Publishes `tasks` (`(id, task)` in job order) to the work topic unless an earlier run already
/// did, and waits until each has a result on the results topic (or failed in this round).
pub fn distribute<T: Serialize, R: DeserializeOwned + PartialEq>(
    client: &ClientOptions,
    options: &DistributeOptions,
    tasks: &[(String, T)],
    observer: &mut dyn FnMut(Progress),
) -> Result<Distributed<R>, KafkaError> {
    let work_partitions =
        client.ensure_topic(&options.work_topic, options.partitions.max(1), -1)?;
    let partitions = client.ensure_topic(&options.results_topic, options.partitions.max(1), -1)?;
    let index_of: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(index, (id, _))| (id.as_str(), index))
        .collect();
    let mut collector = Collector::<R> {
        job: &options.job,
        topic: &options.results_topic,
        index_of: &index_of,
        done: (0..tasks.len()).map(|_| None).collect(),
        failed: (0..tasks.len()).map(|_| None).collect(),
        rounds: Vec::new(),
        duplicates: 0,
    };
    let consumer = results_reader(client, &options.results_topic, &partitions)?;
    // Everything the results topic holds now: earlier rounds and results.
    read_to_end(
        &consumer,
        &options.results_topic,
        partitions.len(),
        &mut |m| collector.take(m),
    )?;
    let resumed = collector.done.iter().filter(|d| d.is_some()).count();
    let latest = collector.rounds.iter().map(|(round, _)| *round).max();
    // Tasks to publish: all of them at first; on a re-run, those that failed in their last round.
    let (round, indices): (u32, Vec<usize>) = match latest {
        None => (0, (0..tasks.len()).collect()),
        Some(latest) => {
            let failed: Vec<usize> = (0..tasks.len())
                .filter(|&i| collector.done[i].is_none() && collector.failed[i].is_some())
                .collect();
            if failed.is_empty() {
                (latest, Vec::new())
            } else {
                (latest + 1, failed)
            }
        }
    };
    for &index in &indices {
        collector.failed[index] = None;
    }
    if !indices.is_empty() {
        publish_round(client, options, &work_partitions, tasks, round, &indices)?;
    }
    collector.rounds.push((round, indices.clone()));
    let total = tasks.len();
    let mut reported = usize::MAX;
    loop {
        let done = collector.finished();
        if done != reported {
            observer(Progress { done, total });
            reported = done;
        }
        if done == total {
            break;
        }
        if options
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::Relaxed))
        {
            return Err(KafkaError::Interrupted {
                job: options.job.clone(),
                done,
                total,
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => collector.take(&message)?,
            Some(Err(ClientError::PartitionEOF(_))) | None => {}
            Some(Err(source)) => {
                return Err(KafkaError::Client {
                    operation: "consume results",
                    topic: options.results_topic.clone(),
                    source,
                });
            }
        }
    }
    let tasks = collector
        .done
        .into_iter()
        .zip(collector.failed)
        .map(|(done, failed)| done.or(failed).expect("every task finished"))
        .collect();
    Ok(Distributed {
        tasks,
        resumed,
        published: indices.len(),
        round,
        duplicates: collector.duplicates,
    })
}

/// The results of one job read so far.
struct Collector<'a, R> {
    job: &'a str,
    topic: &'a str,
    index_of: &'a BTreeMap<&'a str, usize>,
    /// The first successful result of each task.
    done: Vec<Option<Collected<R>>>,
    /// A failure of each task in the round it was last published in.
    failed: Vec<Option<Collected<R>>>,
    /// Rounds published: (round, task indices).
    rounds: Vec<(u32, Vec<usize>)>,
    duplicates: u64,
}

impl<R: DeserializeOwned + PartialEq> Collector<'_, R> {
    fn finished(&self) -> usize {
        self.done
            .iter()
            .zip(&self.failed)
            .filter(|(done, failed)| done.is_some() || failed.is_some())
            .count()
    }

    /// The round a task was last published in.
    fn last_round(&self, index: usize) -> Option<u32> {
        self.rounds
            .iter()
            .filter(|(_, indices)| indices.contains(&index))
            .map(|(round, _)| *round)
            .max()
    }

    fn take(&mut self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        let Some(payload) = message.payload() else {
            return Ok(());
        };
        // Other jobs' records (of other result types) share the topic: look at the job first.
        let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
            return Ok(());
        };
        if envelope.job != self.job {
            return Ok(());
        }
        let malformed = |reason: String| KafkaError::WorkRecord {
            topic: self.topic.to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            reason,
        };
        let record: ResultRecord<R> =
            serde_json::from_slice(payload).map_err(|e| malformed(e.to_string()))?;
        match record {
            ResultRecord::Round { round, indices, .. } => self.rounds.push((round, indices)),
            ResultRecord::Result {
                id,
                index,
                round,
                worker,
                outcome,
                ..
            } => {
                if self.index_of.get(id.as_str()) != Some(&index) {
                    return Err(malformed(format!(
                        "task {id:?} (index {index}) is not a task of job {}",
                        self.job
                    )));
                }
                let collected = Collected { outcome, worker };
                match (&collected.outcome, &self.done[index]) {
                    (Outcome::Done(_), Some(first)) => {
                        if first.outcome != collected.outcome {
                            return Err(KafkaError::Inconsistent {
                                job: self.job.to_owned(),
                                id,
                                first: first.worker.clone(),
                                second: collected.worker,
                            });
                        }
                        self.duplicates += 1;
                    }
                    (Outcome::Done(_), None) => self.done[index] = Some(collected),
                    (Outcome::Failed(_), Some(_)) => self.duplicates += 1,
                    (Outcome::Failed(_), None) => {
                        // A failure from an earlier round is stale once the task went out again.
                        if self.last_round(index).is_none_or(|last| round >= last) {
                            self.failed[index] = Some(collected);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The fields every record of the results topic has, to skip other jobs' records cheaply.
#[derive(Deserialize)]
struct Envelope {
    job: String,
}

fn results_reader(
    client: &ClientOptions,
    topic: &str,
    partitions: &[i32],
) -> Result<BaseConsumer, KafkaError> {
    let consumer: BaseConsumer = client.create(&client.config(&[
        ("group.id", crate::client::READER_GROUP),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("fetch.wait.max.ms", "100"),
    ]))?;
    let client_error = |operation, source| KafkaError::Client {
        operation,
        topic: topic.to_owned(),
        source,
    };
    let mut assignment = TopicPartitionList::new();
    for &partition in partitions {
        // A topic created a moment ago may not have elected its partition leaders yet.
        let deadline = std::time::Instant::now() + client.connect_timeout;
        let low = loop {
            match consumer.fetch_watermarks(topic, partition, client.connect_timeout) {
                Ok((low, _)) => break low,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(client_error("read partition offsets", e)),
            }
        };
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(low))
            .map_err(|e| client_error("assign partitions", e))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| client_error("assign partitions", e))?;
    Ok(consumer)
}

/// Hands every record up to the current end of each partition to `take`.
fn read_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: usize,
    take: &mut dyn FnMut(&BorrowedMessage<'_>) -> Result<(), KafkaError>,
) -> Result<(), KafkaError> {
    let stall = Duration::from_secs(60);
    let mut at_end = std::collections::BTreeSet::new();
    let mut quiet_since = std::time::Instant::now();
    while at_end.len() < partitions {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                take(&message)?;
                quiet_since = std::time::Instant::now();
            }
            Some(Err(ClientError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                quiet_since = std::time::Instant::now();
            }
            Some(Err(source)) => {
                return Err(KafkaError::Client {
                    operation: "consume results",
                    topic: topic.to_owned(),
                    source,
                });
            }
            None if quiet_since.elapsed() >= stall => {
                return Err(KafkaError::Stalled {
                    topic: topic.to_owned(),
                    after: stall,
                });
            }
            None => {}
        }
    }
    Ok(())
}

/// Publishes the tasks at `indices` and the round marker in one transaction. The tasks are dealt
/// to the work topic's `partitions` in turn rather than by key hash: a job of a few dozen tasks
/// hashed over a dozen partitions leaves some with twice the work of others, and the members
/// owning those finish last.
fn publish_round<T: Serialize>(
    client: &ClientOptions,
    options: &DistributeOptions,
    partitions: &[i32],
    tasks: &[(String, T)],
    round: u32,
    indices: &[usize],
) -> Result<(), KafkaError> {
    let topic = options.work_topic.as_str();
    // Fences an earlier coordinator of the same job and aborts its open transaction, so workers
    // (read_committed) never see half a round.
    let (producer, timeout) = client.transactional_producer(
        topic,
        &format!("cascade-work.{}", options.job),
        &[("compression.type", "gzip")],
    )?;
    let client_error = |operation, source| KafkaError::Client {
        operation,
        topic: topic.to_owned(),
        source,
    };
    producer
        .begin_transaction()
        .map_err(|e| client_error("begin transaction", e))?;
    for (turn, &index) in indices.iter().enumerate() {
        let (id, task) = &tasks[index];
        let item = WorkItem {
            job: options.job.clone(),
            id: id.clone(),
            index,
            round,
            reply_to: options.results_topic.clone(),
            task,
        };
        let value = to_json(&item, topic)?;
        send(
            &producer,
            BaseRecord::to(topic)
                .key(id.as_str())
                .partition(partitions[turn % partitions.len()])
                .payload(&value),
        )
        .map_err(|e| client_error("publish task", e))?;
    }
    let marker: ResultRecord<()> = ResultRecord::Round {
        job: options.job.clone(),
        round,
        indices: indices.to_vec(),
    };
    let value = to_json(&marker, &options.results_topic)?;
    send(
        &producer,
        BaseRecord::to(&options.results_topic)
            .key(options.job.as_str())
            .payload(&value),
    )
    .map_err(|e| client_error("publish round marker", e))?;
    producer
        .commit_transaction(timeout)
        .map_err(|e| client_error("commit transaction", e))
}

/// A record's JSON bytes. Only maps with non-string keys fail to encode, which no record has.
fn to_json<S: Serialize>(value: &S, topic: &str) -> Result<Vec<u8>, KafkaError> {
    serde_json::to_vec(value).map_err(|e| KafkaError::WorkRecord {
        topic: topic.to_owned(),
        partition: -1,
        offset: -1,
        reason: format!("cannot encode: {e}"),
    })
}

fn send(producer: &BaseProducer, record: BaseRecord<'_, str, [u8]>) -> Result<(), ClientError> {
    let mut record = record;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// How a worker serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The work topic (created with [`ServeOptions::partitions`] when missing).
    pub work_topic: String,
    /// Partitions of the work topic if this call creates it.
    pub partitions: i32,
    /// The consumer group the workers share.
    pub group: String,
    /// This worker's name in results (`host-pid` by default in `cascade worker`).
    pub worker: String,
    /// Set from elsewhere (a Ctrl-C handler) to stop between tasks.
    pub stop: Option<Arc<AtomicBool>>,
}

/// What happened to one task in a worker, for its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerEvent<'a> {
    /// The task is starting.
    Started {
        /// Task id.
        id: &'a str,
    },
    /// Its result is acknowledged and its offset committed.
    Finished {
        /// Task id.
        id: &'a str,
        /// Whether it ran (else it failed and said why in its result).
        ok: bool,
    },
    /// The result is acknowledged but the offset could not be committed (the partition moved to
    /// another member in a rebalance): the task will be redone and its duplicate dropped.
    NotCommitted {
        /// Task id.
        id: &'a str,
        /// The client's error.
        reason: String,
    },
    /// A record of the work topic that is not a task: committed and skipped.
    Skipped {
        /// Where it is.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Why.
        reason: String,
    },
}

/// What a worker did before it was stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Tasks that ran.
    pub done: u64,
    /// Tasks that failed (and said so in their result).
    pub failed: u64,
}

/// Runs tasks of the work topic as a member of `options.group` until `stop` is set: for each,
/// `handler` runs it, the result is published and acknowledged, then the offset is committed.
pub fn serve<T: DeserializeOwned, R: Serialize>(
    client: &ClientOptions,
    options: &ServeOptions,
    handler: &mut dyn FnMut(&WorkItem<T>) -> Result<R, String>,
    observer: &mut dyn FnMut(WorkerEvent<'_>),
) -> Result<ServeReport, KafkaError> {
    let topic = options.work_topic.as_str();
    client.ensure_topic(topic, options.partitions.max(1), -1)?;
    let consumer: BaseConsumer = client.create(&client.config(&[
        ("group.id", options.group.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        // The first task of a job may replay a long log up to its window before it polls again.
        ("max.poll.interval.ms", "1800000"),
        // A task is minutes of work at most: fetch one at a time, so the others stay in the
        // partition for whoever takes it over.
        ("fetch.wait.max.ms", "100"),
    ]))?;
    let producer: FutureProducer = client.create(&client.config(&[
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("linger.ms", "0"),
        ("message.timeout.ms", "60000"),
    ]))?;
    let client_error = |operation, source| KafkaError::Client {
        operation,
        topic: topic.to_owned(),
        source,
    };
    consumer
        .subscribe(&[topic])
        .map_err(|e| client_error("subscribe", e))?;
    let mut report = ServeReport::default();
    while !options
        .stop
        .as_ref()
        .is_some_and(|stop| stop.load(Ordering::Relaxed))
    {
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Ok(message)) => message,
            // The coordinator may not have created the topic yet, or the group is rebalancing.
            Some(Err(ClientError::MessageConsumption(
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
            ))) => continue,
            Some(Err(source)) => return Err(client_error("consume tasks", source)),
        };
        let item = match parse_item::<T>(&message) {
            Ok(item) => item,
            Err(Unreadable::Envelope(reason)) => {
                observer(WorkerEvent::Skipped {
                    partition: message.partition(),
                    offset: message.offset(),
                    reason,
                });
                let _ = commit(&consumer, &message);
                continue;
            }
            Err(Unreadable::Task(envelope, reason)) => {
                // A task this build cannot read still gets an answer, so the coordinator does
                // not wait for it forever.
                let failed =
                    Outcome::<R>::Failed(format!("this worker cannot read the task: {reason}"));
                answer(&producer, options, &envelope, failed, &mut report)?;
                finish(&consumer, &message, &envelope.id, false, observer);
                continue;
            }
        };
        observer(WorkerEvent::Started { id: &item.id });
        // A task that panics would kill every member it is handed to in turn: it fails instead.
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(&item))) {
            Ok(Ok(result)) => Outcome::Done(result),
            Ok(Err(reason)) => Outcome::Failed(reason),
            Err(panic) => Outcome::Failed(format!(
                "the worker panicked running it: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
            )),
        };
        let ok = matches!(outcome, Outcome::Done(_));
        answer(
            &producer,
            options,
            &item.with_task(()),
            outcome,
            &mut report,
        )?;
        finish(&consumer, &message, &item.id, ok, observer);
    }
    Ok(report)
}

fn finish(
    consumer: &BaseConsumer,
    message: &BorrowedMessage<'_>,
    id: &str,
    ok: bool,
    observer: &mut dyn FnMut(WorkerEvent<'_>),
) {
    match commit(consumer, message) {
        Ok(()) => observer(WorkerEvent::Finished { id, ok }),
        Err(error) => observer(WorkerEvent::NotCommitted {
            id,
            reason: error.to_string(),
        }),
    }
}

enum Unreadable {
    /// Not a work item at all.
    Envelope(String),
    /// A work item whose task this build cannot read.
    Task(WorkItem<()>, String),
}

fn parse_item<T: DeserializeOwned>(
    message: &BorrowedMessage<'_>,
) -> Result<WorkItem<T>, Unreadable> {
    let payload = message.payload().unwrap_or_default();
    let envelope: WorkItem<serde_json::Value> =
        serde_json::from_slice(payload).map_err(|e| Unreadable::Envelope(e.to_string()))?;
    let task = envelope.task.clone();
    serde_json::from_value(task)
        .map(|task| envelope.with_task(task))
        .map_err(|error| Unreadable::Task(envelope.with_task(()), error.to_string()))
}

/// Publishes a task's outcome and waits until the broker acknowledged it (all in-sync replicas).
fn answer<R: Serialize>(
    producer: &FutureProducer,
    options: &ServeOptions,
    item: &WorkItem<()>,
    outcome: Outcome<R>,
    report: &mut ServeReport,
) -> Result<(), KafkaError> {
    match outcome {
        Outcome::Done(_) => report.done += 1,
        Outcome::Failed(_) => report.failed += 1,
    }
    let record = ResultRecord::Result {
        job: item.job.clone(),
        id: item.id.clone(),
        index: item.index,
        round: item.round,
        worker: options.worker.clone(),
        outcome,
    };
    let value = to_json(&record, &item.reply_to)?;
    let delivery = producer
        .send_result(
            FutureRecord::to(&item.reply_to)
                .key(&item.id)
                .payload(&value),
        )
        .map_err(|(source, _)| KafkaError::Client {
            operation: "publish result",
            topic: item.reply_to.clone(),
            source,
        })?;
    match block_on(delivery) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(KafkaError::Client {
            operation: "publish result",
            topic: item.reply_to.clone(),
            source,
        }),
        Err(_) => Err(KafkaError::Client {
            operation: "publish result",
            topic: item.reply_to.clone(),
            source: ClientError::Canceled,
        }),
    }
}

/// Commits the offset after `message`, synchronously.
fn commit(consumer: &BaseConsumer, message: &BorrowedMessage<'_>) -> Result<(), ClientError> {
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(
        message.topic(),
        message.partition(),
        Offset::Offset(message.offset() + 1),
    )?;
    consumer.commit(&offsets, CommitMode::Sync)
}
