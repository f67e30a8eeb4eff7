//! The context an adapter is read with when a test calls it directly, outside an ingest.

use cascade_ingest::{Context, NoProgress};

/// An adapter context: source 0, mainnet, no progress reporting.
pub fn context(skip_invalid: bool) -> Context<'static> {
    Context {
        source: 0,
        skip_invalid,
        chain_id: 1,
        progress: &NoProgress,
    }
}
