//! The protocol-agnostic replay: the loop that routes events to the models, runs the due checks
//! and takes checkpoints ([`replay`]), the end-to-end driver that stores and resumes them in the
//! log's catalog ([`session`]), governance changes brought from a file ([`param_history`]) and
//! the accounts the run file lists one by one ([`account_records`]), and the derivation of a
//! recorded liquidation's unknown side ([`unknown_side`]).
//!
//! Nothing here names a protocol: models are built through [`crate::protocol::registry`].

pub mod account_records;
mod episodes;
pub mod param_history;
pub mod replay;
pub mod session;
mod tracker;
pub mod unknown_side;

pub use episodes::price_margin_bps;
