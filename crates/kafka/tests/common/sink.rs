//! A sink that collects what the consumer gives it, and can fail at one seq like a crash.

use cascade_events::Event;
use cascade_kafka::{Sink, SinkError};

/// A sink that keeps everything it is given; optionally fails at one seq, like a crash.
#[derive(Default)]
pub struct Collect {
    /// What was applied: `(seq, record bytes)`.
    pub applied: Vec<(u64, Vec<u8>)>,
    /// Seqs skipped as dead-lettered.
    pub skipped: Vec<u64>,
    /// Fail when asked to apply this seq.
    pub fail_at: Option<u64>,
    /// Times `persist` was called.
    pub persists: u32,
    /// The state as of the last persist (what survives a crash).
    pub persisted: Vec<(u64, Vec<u8>)>,
    /// Next seq as of the last persist.
    pub persisted_next: u64,
    /// The seq the sink expects next (what [`Sink::next_seq`] reports).
    pub next: u64,
}

impl Sink for Collect {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        assert_eq!(
            event.seq, self.next,
            "the consumer hands out events in order"
        );
        if self.fail_at == Some(event.seq) {
            return Err(format!("simulated crash at seq {}", event.seq).into());
        }
        self.applied.push((event.seq, record.to_vec()));
        self.next = event.seq + 1;
        Ok(())
    }

    fn skip(&mut self, seq: u64) -> Result<(), SinkError> {
        assert_eq!(seq, self.next);
        self.skipped.push(seq);
        self.next = seq + 1;
        Ok(())
    }

    fn persist(&mut self) -> Result<(), SinkError> {
        self.persists += 1;
        self.persisted = self.applied.clone();
        self.persisted_next = self.next;
        Ok(())
    }
}
