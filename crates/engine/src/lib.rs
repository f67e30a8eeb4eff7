//! Deterministic replay of lending protocols over an event log.

pub mod aave;
pub mod compound;
