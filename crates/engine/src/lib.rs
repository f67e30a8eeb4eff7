//! Deterministic replay of lending protocols over an event log.
