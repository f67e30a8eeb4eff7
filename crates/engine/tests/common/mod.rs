//! Shared helpers of the engine's integration tests: fixture logs built from JSON lines.

use std::path::{Path, PathBuf};

use cascade_events::Event;
use cascade_log::{LogWriter, WriterOptions};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Events of a fixture: one JSON event per line (`fixtures/maker/*.jsonl`), `seq` ignored.
pub fn fixture_events(name: &str) -> Vec<Event> {
    fixture_events_in("maker", name)
}

/// Events of the fixture `fixtures/<protocol>/<name>.jsonl`, `seq` ignored.
pub fn fixture_events_in(protocol: &str, name: &str) -> Vec<Event> {
    let path = repo_root()
        .join("fixtures")
        .join(protocol)
        .join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{}:{}: {error}", path.display(), number + 1))
        })
        .collect()
}

/// Writes `events` into a new log in a temporary directory.
pub fn build_log(events: &[Event]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut writer, _) = LogWriter::open(dir.path(), WriterOptions::default()).expect("new log");
    for event in events {
        writer.append(event).expect("append");
    }
    writer.commit().expect("commit");
    dir
}
