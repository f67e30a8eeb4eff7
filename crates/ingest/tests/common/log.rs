//! Ingesting one source into a fresh log and reading it back.

use cascade_events::Event;
use cascade_ingest::{IngestOptions, NoProgress, Source, ingest};
use cascade_log::LogReader;

/// Ingests `source` into a fresh log and returns its events with the source id cleared.
pub fn log_of(source: Source, skip_invalid: bool) -> Vec<Event> {
    let dir = tempfile::tempdir().unwrap();
    let options = IngestOptions {
        skip_invalid,
        quarantine: Some(dir.path().join("q.jsonl")),
        ..IngestOptions::default()
    };
    ingest(&dir.path().join("log"), vec![source], &options, &NoProgress).unwrap();
    LogReader::open(&dir.path().join("log"))
        .unwrap()
        .events(0)
        .map(|e| Event {
            source: 0,
            ..e.unwrap()
        })
        .collect()
}
