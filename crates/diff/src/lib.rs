//! Comparison of replay runs and post-mortem reports.
