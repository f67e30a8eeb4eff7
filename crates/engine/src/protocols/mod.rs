//! The protocol models, one folder each, every one implementing
//! [`crate::protocol::ProtocolModel`] and registered once in [`crate::protocol::registry`].

pub mod maker;
