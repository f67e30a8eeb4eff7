//! Streaming recorded events through Kafka.
//!
//! - [`publish`]: a log (or any ordered source of encoded events) onto a topic, in order,
//!   transactionally and resumably, at historical pace or as fast as the broker takes it.
//! - [`consume`]: a topic back into an ordered stream of events for a [`Sink`] (the engine, a log
//!   writer), validating every record, merging partitions by sequence number, skipping duplicates,
//!   failing on gaps, and committing offsets only after the sink persisted what it applied.
//! - [`LogSink`]: the sink that mirrors a topic into a local log (`cascade stream record`).
//! - [`EngineSink`]: the sink that replays a topic through the engine (`cascade stream replay`),
//!   producing the run file a local replay of the same events produces.
//! - [`work`]: independent tasks (sweep points, check cases) spread over a consumer group of
//!   workers, each result collected exactly once (`cascade sweep --brokers`, `cascade worker`).
//!
//! The record layout (value, headers, key) is in [`wire`]. Everything here talks to a real
//! cluster through librdkafka (bundled with the `rdkafka` crate); nothing in this crate interprets
//! events beyond what ordering, keying and pacing need.

mod client;
mod consume;
mod engine_sink;
mod error;
mod log_sink;
mod publish;
mod signal;
pub mod wire;
pub mod work;

pub use client::{ClientOptions, is_secret};
pub use consume::{ConsumeOptions, ConsumeReport, InvalidRecords, Sink, SinkError, consume};
pub use engine_sink::EngineSink;
pub use error::KafkaError;
pub use log_sink::LogSink;
pub use publish::{
    ProgressStore, PublishOptions, PublishReport, Speed, progress_key, publish, publish_log,
};
pub use signal::stop_on_ctrl_c;
pub use wire::{Packing, Partitioning};
