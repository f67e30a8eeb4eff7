//! Adapters that normalise historical exports into cascade events.
