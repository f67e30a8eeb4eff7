//! The sink that mirrors a topic into a local log (`cascade stream record`).
//!
//! Each event is appended with its bytes exactly as they came (which are exactly the bytes of the
//! log it was published from), so the mirror's content hash equals the original's. The log's own
//! `next_seq` is the resume point: a restarted recording skips what the log already holds, and a
//! log commit (fsync) happens before the consumer commits offsets. It must never write an event
//! at a sequence number other than the one it carried on the topic.

use std::path::Path;

use cascade_events::Event;
use cascade_log::{LogWriter, RecoveryReport, WriterOptions};

use crate::KafkaError;
use crate::consume::{Sink, SinkError};

/// Appends consumed events to a log.
pub struct LogSink {
    writer: LogWriter,
}

impl LogSink {
    /// Opens (creating if absent) the log at `dir` for appending.
    pub fn open(dir: &Path) -> Result<(LogSink, RecoveryReport), KafkaError> {
        let (writer, recovery) = LogWriter::open(dir, WriterOptions::default())?;
        Ok((LogSink { writer }, recovery))
    }

    /// The writer, e.g. to close it or read its `next_seq`.
    pub fn into_writer(self) -> LogWriter {
        self.writer
    }
}

impl Sink for LogSink {
    fn next_seq(&self) -> u64 {
        self.writer.next_seq()
    }

    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        let seq = self.writer.append_raw(record)?;
        if seq != event.seq {
            return Err(format!(
                "the log assigned seq {seq} to the event that carried seq {} on the topic",
                event.seq
            )
            .into());
        }
        Ok(())
    }

    fn persist(&mut self) -> Result<(), SinkError> {
        Ok(self.writer.commit()?)
    }
}
