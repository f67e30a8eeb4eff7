//! The sink that replays a topic through the engine (`cascade stream replay`).
//!
//! The run file must be the one `cascade replay` writes for the same events, including the log's
//! content hash; the sink computes that hash over the records as they come, exactly as the log
//! does ([`IdentityHasher`]).
//!
//! The engine runs on a thread of its own, fed in order through a bounded channel: the consumer
//! (poll, validate, decode, order) and the engine (apply, hash) then overlap instead of adding
//! up, and the channel's bound keeps the consumer at most a few thousand events ahead. The engine
//! is built on that thread and never leaves it, and it sees exactly the sequence of events a
//! single-threaded replay would, so the run is the same.
//!
//! Restarting a killed replay needs the engine's state and its whole report so far (every
//! liquidation judged, the timeline). Rather than checkpointing both, a replay with a state
//! directory mirrors the stream into a local log there ([`LogSink`]); a restarted replay first
//! replays that log (fast, local), then continues from the topic where the log ends. The consumer
//! commits offsets only after the local log is durable, so nothing is lost or applied twice. This
//! module never applies an event the local log does not also hold.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use cascade_engine::{Engine, EngineConfig, EngineError, Mode, Run, run::LogInfo};
use cascade_events::{Event, decode};
use cascade_log::{IdentityHasher, LogReader};

use crate::consume::{Sink, SinkError};
use crate::{KafkaError, LogSink};

/// Events per message to the engine thread: large enough that the channel's cost per event is
/// negligible, small enough that the engine starts while the consumer is still reading.
const BATCH_EVENTS: usize = 512;

/// Batches the consumer may be ahead of the engine.
const BATCHES_IN_FLIGHT: usize = 8;

/// One step for the engine thread.
enum Step {
    /// Apply this event.
    Apply(Event),
    /// Move past this seq (a dead-lettered record).
    Skip(u64),
}

/// Steps in order, with the records of the `Apply` steps framed for the content hash in
/// `framed` (hashed in one update per batch: several times faster than record by record).
#[derive(Default)]
struct Batch {
    framed: Vec<u8>,
    applied: u64,
    steps: Vec<Step>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The engine thread's end: the run, or why it stopped.
type Outcome = Result<Run, KafkaError>;

fn engine_failed(seq: u64) -> impl FnOnce(EngineError) -> KafkaError {
    move |source| KafkaError::Engine {
        seq,
        source: Box::new(source),
    }
}

/// Feeds consumed events to an [`Engine`] running on its own thread (historical mode).
pub struct EngineSink {
    batches: Option<SyncSender<Batch>>,
    /// Emptied batches coming back from the engine thread, for reuse.
    spares: Receiver<Batch>,
    engine: Option<JoinHandle<Outcome>>,
    batch: Batch,
    log: Option<LogSink>,
    next: u64,
    /// Events replayed from the local log before consuming.
    restored: u64,
}

impl EngineSink {
    /// A sink whose state lives only in memory: it cannot resume after a crash, so it is used
    /// without a consumer group (reading the topic from the beginning).
    pub fn in_memory(config: EngineConfig) -> Self {
        let (batches, from_consumer) = sync_channel(BATCHES_IN_FLIGHT);
        let (to_consumer, spares) = sync_channel(BATCHES_IN_FLIGHT);
        let engine = std::thread::Builder::new()
            .name("cascade-engine".into())
            .spawn(move || run_engine(config, &from_consumer, &to_consumer))
            .expect("the system can start one thread");
        Self {
            batches: Some(batches),
            spares,
            engine: Some(engine),
            batch: Batch::default(),
            log: None,
            next: 0,
            restored: 0,
        }
    }

    /// A sink that mirrors the stream into the log at `dir` (created if absent) and first replays
    /// whatever that log already holds, so a restarted replay continues where it stopped.
    pub fn with_state(config: EngineConfig, dir: &Path) -> Result<Self, KafkaError> {
        let (log, _) = LogSink::open(dir)?;
        let mut sink = Self::in_memory(config);
        let reader = LogReader::open(dir)?;
        for record in reader.records(0) {
            let (seq, bytes) = record?;
            let event = decode(seq, &bytes).map_err(|source| KafkaError::Decode { seq, source })?;
            sink.send_event(&bytes, &event)
                .map_err(|source| KafkaError::Sink {
                    topic: dir.display().to_string(),
                    seq,
                    source,
                })?;
            sink.restored += 1;
        }
        sink.log = Some(log);
        Ok(sink)
    }

    /// Events replayed from the state directory's log before consuming.
    pub fn restored(&self) -> u64 {
        self.restored
    }

    /// Ends the replay: waits for the engine thread to apply everything sent, and returns the
    /// run, with the identity of the events consumed. The seq range covers dead-lettered seqs too
    /// (the stream went past them); the content hash covers only the records applied, so a stream
    /// with a dead-lettered record never matches the original log.
    pub fn finish(mut self) -> Result<Run, KafkaError> {
        self.flush()?;
        self.batches = None;
        self.join()
    }

    fn send_event(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        IdentityHasher::frame(&mut self.batch.framed, record);
        self.batch.applied += 1;
        self.batch.steps.push(Step::Apply(event.clone()));
        self.next = event.seq + 1;
        if self.batch.steps.len() >= BATCH_EVENTS {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the open batch to the engine thread; fails with the engine's error when the engine
    /// thread has stopped.
    fn flush(&mut self) -> Result<(), KafkaError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let spare = self.spares.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, spare);
        let sent = match &self.batches {
            Some(batches) => batches.send(batch).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The engine thread stopped: its outcome says why.
        self.batches = None;
        match self.join() {
            Ok(_) => Err(KafkaError::EngineThread {
                reason: "it stopped before the end of the stream".into(),
            }),
            Err(error) => Err(error),
        }
    }

    fn join(&mut self) -> Result<Run, KafkaError> {
        let handle = self.engine.take().ok_or_else(|| KafkaError::EngineThread {
            reason: "it already ended with an error reported before".into(),
        })?;
        handle.join().unwrap_or_else(|_| {
            Err(KafkaError::EngineThread {
                reason: "it panicked".into(),
            })
        })
    }
}

/// The engine thread: applies batches in order until the consumer hangs up, then builds the run.
fn run_engine(
    config: EngineConfig,
    batches: &Receiver<Batch>,
    spares: &SyncSender<Batch>,
) -> Outcome {
    let mut engine = Engine::new(config, Mode::Historical);
    let mut identity = IdentityHasher::new();
    let mut next = 0u64;
    for mut batch in batches {
        for step in &batch.steps {
            match step {
                Step::Apply(event) => {
                    engine.apply(event).map_err(engine_failed(event.seq))?;
                    next = event.seq + 1;
                }
                Step::Skip(seq) => {
                    engine.skip(*seq).map_err(engine_failed(*seq))?;
                    next = seq + 1;
                }
            }
        }
        identity.push_framed(&batch.framed, batch.applied);
        batch.framed.clear();
        batch.applied = 0;
        batch.steps.clear();
        // A full return channel only means the consumer has spares enough.
        if let Err(TrySendError::Disconnected(_)) = spares.try_send(batch) {
            break;
        }
    }
    let hash = identity.finish();
    let last_seq = next.checked_sub(1);
    let log = LogInfo {
        first_seq: last_seq.map(|_| hash.first_seq),
        last_seq,
        content_hash: hash.hash_hex(),
    };
    // What fails here is the check due after the last event.
    engine
        .finish(log)
        .map_err(engine_failed(last_seq.unwrap_or_default()))
}

impl Sink for EngineSink {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        // Into the local log first: what the engine has seen, the log has too.
        if let Some(log) = &mut self.log {
            log.apply(record, event)?;
        }
        self.send_event(record, event)
    }

    /// Only in memory: with a state directory the local log would need a hole at `seq`, which a
    /// log cannot have, so the sink refuses (the consumer then stops naming the seq).
    fn skip(&mut self, seq: u64) -> Result<(), SinkError> {
        if self.log.is_some() {
            return Err(format!(
                "seq {seq} was dead-lettered, and a replay keeping its state in a local log \
                 cannot leave it out (replay without --group/--state to skip it)"
            )
            .into());
        }
        self.batch.steps.push(Step::Skip(seq));
        self.next = seq + 1;
        Ok(())
    }

    /// Persists the local log (the engine's own state is rebuilt from it on a restart), after
    /// handing the open batch to the engine thread so an engine failure surfaces here.
    fn persist(&mut self) -> Result<(), SinkError> {
        self.flush()?;
        match &mut self.log {
            Some(log) => log.persist(),
            None => Ok(()),
        }
    }
}
