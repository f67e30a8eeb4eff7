//! Adapters that normalise historical exports into cascade events, and the staging that writes
//! them into one correctly ordered event log.
//!
//! Each source kind has one module that turns input files into events ([`SourceBatch`]): pure
//! functions of their input, sharing the CSV plumbing ([`table`]), the cell conversions
//! ([`value`]) and the mapping engine ([`mapping`]). [`stage`] then orders events from any number
//! of sources by one total rule ([`order`]), drops identical duplicates and refuses conflicting
//! ones ([`dedup`]), and appends to the log or rewrites it atomically.
//!
//! Must never: write part of an ingest (an error leaves the log as it was), convert money
//! through floats, or let ingest order decide event order.

pub mod aave_subgraph;
pub mod batch;
pub mod binance_klines;
pub mod chainlink_rounds;
pub mod dedup;
pub mod error;
pub mod eth_logs;
pub mod feeds;
pub mod maker_flipside;
pub mod mapped_csv;
pub mod mapped_parquet;
pub mod mapping;
pub mod ohlcv_json;
pub mod order;
pub mod price_csv;
pub mod progress;
pub mod source;
pub mod stage;
pub mod synth;
pub mod table;
pub mod value;

pub use batch::{Context, EventBuffer, SourceBatch, SourceReport};
pub use error::{IngestError, Position, RowError};
pub use mapping::Mapping;
pub use progress::{NoProgress, Progress};
pub use source::SourceKind;
pub use stage::{IngestOptions, IngestSummary, Source, SourceStatus, WriteMode, ingest};
