//! The protocol-agnostic replay: the loop that routes events to the models and runs the due
//! checks ([`replay`]), the end-to-end driver with checkpoints in the log's catalog
//! ([`session`]), the canonical state encoding behind checkpoints and the state hash
//! ([`state`]) and governance changes brought from a file ([`param_history`]).
//!
//! Nothing here names a protocol: models are built through [`crate::protocol::registry`].

pub mod param_history;
pub mod replay;
pub mod session;
pub mod state;
