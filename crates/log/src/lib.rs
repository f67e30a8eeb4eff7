//! Append-only segment log of encoded events, its recovery, catalog and checkpoints.
