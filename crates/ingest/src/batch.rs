//! What an adapter hands back: the events of one source in source order, and a report of what
//! it read, rejected and noticed.
//!
//! Adapters are pure: path and options in, [`SourceBatch`] out. They never touch a log; ordering
//! across sources, duplicate detection and writing happen in [`crate::stage`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_events::{Event, decode, encode_into};

use crate::error::{IngestError, RowError};
use crate::progress::Progress;

/// What every adapter is given besides its own options.
pub struct Context<'a> {
    /// The source id the events are stamped with (`Event.source`); 0 outside an ingest.
    pub source: u32,
    /// Move bad rows to quarantine instead of failing.
    pub skip_invalid: bool,
    /// EIP-155 chain id stamped on events whose source does not say (1: Ethereum mainnet).
    pub chain_id: u64,
    /// Where to report bytes read.
    pub progress: &'a dyn Progress,
}

/// Reads `paths` one after the other into one batch with `read_one`, collecting rejected rows
/// (quarantined with `--skip-invalid`, else the first one stops the read): the loop every
/// file-per-path adapter shares.
pub fn read_each(
    paths: &[PathBuf],
    context: &Context<'_>,
    mut read_one: impl FnMut(&Path, &mut Rejects, &mut SourceBatch) -> Result<(), IngestError>,
) -> Result<SourceBatch, IngestError> {
    let mut batch = SourceBatch::new(context.source);
    let mut rejects = Rejects::new(context.skip_invalid);
    for path in paths {
        read_one(path, &mut rejects, &mut batch)?;
    }
    batch.report.rejected = rejects.into_rows();
    Ok(batch)
}

/// The context of an adapter read outside an ingest, for unit tests: source 0, mainnet, no
/// progress reporting.
#[cfg(test)]
pub(crate) fn test_context(skip_invalid: bool) -> Context<'static> {
    Context {
        source: 0,
        skip_invalid,
        chain_id: 1,
        progress: &crate::progress::NoProgress,
    }
}

/// The events of one source, in the source's own order (file rank, then row, then the order of
/// the events a row produces).
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// The events.
    pub events: EventBuffer,
    /// What happened while reading.
    pub report: SourceReport,
}

impl SourceBatch {
    /// An empty batch whose events are stamped with `source`.
    pub fn new(source: u32) -> Self {
        SourceBatch {
            events: EventBuffer::new(source),
            report: SourceReport::default(),
        }
    }
}

/// Events kept in their encoded form (the log's record bytes), about half the memory of `Event`
/// values (112 bytes and a boxed payload of 120 to 376). A million prices take ~150 MB here
/// instead of ~300 MB, and the log writer takes the bytes as they are.
///
/// Every pushed event is stamped with the buffer's source id; `seq` reads back as 0 (the log
/// assigns it).
#[derive(Debug, Default, Clone)]
pub struct EventBuffer {
    source: u32,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl EventBuffer {
    /// An empty buffer for events of `source`.
    pub fn new(source: u32) -> Self {
        EventBuffer {
            source,
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Appends an event (its `source` is replaced by the buffer's).
    pub fn push(&mut self, event: Event) {
        encode_into(
            &Event {
                source: self.source,
                ..event
            },
            &mut self.bytes,
        );
        self.ends.push(self.bytes.len());
    }

    /// Makes room for about `events` more events.
    pub fn reserve(&mut self, events: usize) {
        const TYPICAL_RECORD: usize = 160;
        self.ends.reserve(events);
        self.bytes.reserve(events.saturating_mul(TYPICAL_RECORD));
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Keeps the first `len` events.
    pub fn truncate(&mut self, len: usize) {
        if len < self.ends.len() {
            self.bytes
                .truncate(if len == 0 { 0 } else { self.ends[len - 1] });
            self.ends.truncate(len);
        }
    }

    /// Removes every event.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// The encoded record of event `index`.
    pub fn raw(&self, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.bytes[start..self.ends[index]]
    }

    /// Event `index`. Panics when out of range, like slice indexing.
    pub fn get(&self, index: usize) -> Event {
        decode(0, self.raw(index)).expect("the buffer only holds records it encoded")
    }

    /// The events in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Event> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }

    /// The events from `start` on.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = Event> + '_ {
        (start..self.len()).map(|index| self.get(index))
    }

    /// The events as values.
    pub fn to_vec(&self) -> Vec<Event> {
        self.iter().collect()
    }
}

impl Extend<Event> for EventBuffer {
    fn extend<I: IntoIterator<Item = Event>>(&mut self, events: I) {
        for event in events {
            self.push(event);
        }
    }
}

/// What an adapter read, rejected and noticed.
#[derive(Debug, Default)]
pub struct SourceReport {
    /// Input files read, in reading order.
    pub files: Vec<PathBuf>,
    /// Data rows (or JSON entries) read, including rejected and dropped ones.
    pub rows_read: u64,
    /// Rows that could not become events (only non-empty with `--skip-invalid`).
    pub rejected: Vec<RowError>,
    /// Rows the adapter dropped as identical duplicates of an earlier row.
    pub duplicates: u64,
    /// Named counts specific to the source: which branch of a rule each row took, unknown log
    /// topics, and so on. Sorted by name so reports are stable.
    pub counters: BTreeMap<String, u64>,
    /// Rows worth a human look that were still ingested, one sentence each with file and line.
    pub flagged: Vec<String>,
}

impl SourceReport {
    /// Adds `by` to the counter `name`.
    pub fn count(&mut self, name: &str, by: u64) {
        *self.counters.entry(name.to_owned()).or_default() += by;
    }
}

/// Applies the `--skip-invalid` policy to row errors.
pub struct Rejects {
    skip_invalid: bool,
    rows: Vec<RowError>,
}

impl Rejects {
    /// A policy: keep going (collecting) when `skip_invalid`, else stop at the first error.
    pub fn new(skip_invalid: bool) -> Self {
        Rejects {
            skip_invalid,
            rows: Vec::new(),
        }
    }

    /// Records a bad row, or returns it as the error that stops the ingest.
    pub fn reject(&mut self, error: Box<RowError>) -> Result<(), IngestError> {
        if self.skip_invalid {
            self.rows.push(*error);
            Ok(())
        } else {
            Err(IngestError::Row(error))
        }
    }

    /// The rows collected so far.
    pub fn into_rows(self) -> Vec<RowError> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_events::{Fixed, Id, Payload, PriceUpdate, Timestamp, U256, encode};

    fn price(time: i64) -> Event {
        Event {
            seq: 7,
            chain_id: 1,
            block: None,
            time: Timestamp(time),
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 99,
            payload: Payload::Price(Box::new(PriceUpdate {
                asset: Id::name("ETH"),
                quote: Id::name("USD"),
                price: Fixed::new(U256::from(time as u64), 2),
                feed: Id::name("f"),
                round: None,
            })),
        }
    }

    #[test]
    fn buffer_stamps_the_source_and_gives_events_back() {
        let mut buffer = EventBuffer::new(3);
        buffer.extend([price(10), price(20), price(30)]);
        assert_eq!(buffer.len(), 3);
        let expected = Event {
            seq: 0,
            source: 3,
            ..price(20)
        };
        assert_eq!(buffer.get(1), expected);
        assert_eq!(buffer.raw(1), encode(&expected).as_slice());
        assert_eq!(
            buffer.iter_from(2).map(|e| e.time.0).collect::<Vec<_>>(),
            [30]
        );
        buffer.truncate(1);
        assert_eq!(buffer.to_vec().len(), 1);
        buffer.push(price(40));
        assert_eq!(buffer.get(1).time, Timestamp(40));
        buffer.clear();
        assert!(buffer.is_empty());
    }
}
