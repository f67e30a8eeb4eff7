//! Helpers shared by the integration tests: where the real data and the fixtures are.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::PathBuf;

use cascade_events::{Event, EventKind};
use cascade_ingest::{Context, NoProgress};

/// `../shared/data` beside the workspace, or `None` (with a notice) when it is absent.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(sub);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

/// The repository's `fixtures/` folder.
pub fn fixtures(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(sub)
}

/// An adapter context with no progress reporting.
pub fn context(skip_invalid: bool) -> Context<'static> {
    Context {
        source: 0,
        skip_invalid,
        chain_id: 1,
        progress: &NoProgress,
    }
}

/// Events counted by kind name.
pub fn by_kind(events: impl IntoIterator<Item = Event>) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.kind().name()).or_default() += 1;
    }
    counts
}

/// How many events of one kind.
pub fn count(events: &[Event], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}
