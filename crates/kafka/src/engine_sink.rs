//! The sink that replays a topic through the engine (`cascade stream replay`).
//!
//! The run file must be the one `cascade replay` writes for the same events, including the log's
//! content hash; the sink computes that hash over the records as they come, exactly as the log
//! does ([`IdentityHasher`]).
//!
//! Restarting a killed replay needs the engine's state and its whole report so far (every
//! liquidation judged, the timeline). Rather than checkpointing both, a replay with a state
//! directory mirrors the stream into a local log there ([`LogSink`]); a restarted replay first
//! replays that log (fast, local), then continues from the topic where the log ends. The consumer
//! commits offsets only after the local log is durable, so nothing is lost or applied twice. This
//! module never applies an event the local log does not also hold.

use std::path::Path;

use cascade_engine::{Engine, Run, run::LogInfo};
use cascade_events::{Event, decode};
use cascade_log::{IdentityHasher, LogReader};

use crate::consume::{Sink, SinkError};
use crate::{KafkaError, LogSink};

/// Feeds consumed events to an [`Engine`].
pub struct EngineSink {
    engine: Engine,
    identity: IdentityHasher,
    log: Option<LogSink>,
    next: u64,
    /// Events replayed from the local log before consuming.
    restored: u64,
}

impl EngineSink {
    /// A sink whose state lives only in memory: it cannot resume after a crash, so it is used
    /// without a consumer group (reading the topic from the beginning).
    pub fn in_memory(engine: Engine) -> Self {
        Self {
            engine,
            identity: IdentityHasher::new(),
            log: None,
            next: 0,
            restored: 0,
        }
    }

    /// A sink that mirrors the stream into the log at `dir` (created if absent) and first replays
    /// whatever that log already holds, so a restarted replay continues where it stopped.
    pub fn with_state(engine: Engine, dir: &Path) -> Result<Self, KafkaError> {
        let (log, _) = LogSink::open(dir)?;
        let mut sink = Self {
            engine,
            identity: IdentityHasher::new(),
            log: None,
            next: 0,
            restored: 0,
        };
        let reader = LogReader::open(dir)?;
        for record in reader.records(0) {
            let (seq, bytes) = record?;
            let event = decode(seq, &bytes).map_err(|source| KafkaError::Decode { seq, source })?;
            sink.apply_event(&bytes, &event)
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

    /// Ends the replay: the run, with the identity of the events consumed. The seq range covers
    /// dead-lettered seqs too (the stream went past them); the content hash covers only the
    /// records applied, so a stream with a dead-lettered record never matches the original log.
    pub fn finish(self) -> Run {
        let identity = self.identity.finish();
        let last_seq = self.next.checked_sub(1);
        let log = LogInfo {
            first_seq: last_seq.map(|_| identity.first_seq),
            last_seq,
            content_hash: identity.hash_hex(),
        };
        self.engine.finish(log)
    }

    fn apply_event(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        self.engine.apply(event)?;
        self.identity.push(record);
        self.next = event.seq + 1;
        Ok(())
    }
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
        self.apply_event(record, event)
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
        self.engine.skip(seq)?;
        self.next = seq + 1;
        Ok(())
    }

    fn persist(&mut self) -> Result<(), SinkError> {
        match &mut self.log {
            Some(log) => log.persist(),
            None => Ok(()),
        }
    }
}
