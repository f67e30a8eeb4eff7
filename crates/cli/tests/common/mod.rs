//! The hand-built Maker fixture as a log, for the CLI tests that replay it.

use std::path::{Path, PathBuf};

use cascade_events::Event;
use cascade_log::{LogWriter, WriterOptions};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A log of the hand-built Maker fixture `fixtures/maker/dog-bark.jsonl`.
pub fn fixture_log(dir: &Path) {
    fixture_log_with(dir, |_| Vec::new());
}

/// The fixture's log with the events `extra` gives for each fixture event written before it.
pub fn fixture_log_with(dir: &Path, extra: impl Fn(&Event) -> Vec<Event>) {
    let text = std::fs::read_to_string(repo().join("fixtures/maker/dog-bark.jsonl")).unwrap();
    let (mut writer, _) = LogWriter::open(dir, WriterOptions::default()).unwrap();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).unwrap();
        for before in extra(&event) {
            writer.append(&before).unwrap();
        }
        writer.append(&event).unwrap();
    }
    writer.commit().unwrap();
}
