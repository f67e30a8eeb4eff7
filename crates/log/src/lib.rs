//! Append-only segment log of encoded events, its recovery, catalog and checkpoints.
//!
//! A log is a directory (layout in `docs/log-format.md`): an active generation of segment files
//! holding CRC-checked records in sequence order, a sparse index per sealed segment, and a sled
//! [`Catalog`] of derived data. [`LogWriter`] appends in buffered batches and makes them durable
//! at [`LogWriter::commit`]; opening it recovers from a crash by truncating only a tail that is
//! certainly torn. [`LogReader`] hands out verified records and decoded events from any seq.
//! [`rewrite`] replaces the whole content atomically. [`verify`] checks everything. Each
//! generation carries a [`Manifest`] of its sources and of the ingest batch in flight, so an
//! interrupted ingest is rolled back and the catalog's source registry can be rebuilt ([`repair`]).
//! Every file change goes through [`storage::Storage`], where tests inject faults.
//!
//! What this crate must never do: skip or repair a damaged record silently, hand out bytes that
//! failed a check, reuse a sequence number, or treat the catalog as a source of events.

mod catalog;
mod error;
pub mod format;
mod layout;
mod manifest;
mod periods;
mod reader;
mod repair;
mod rewrite;
mod segment;
pub mod storage;
mod verify;
mod writer;

pub use catalog::{Catalog, DatasetStats, LogSummary, SourceRecord};
pub use error::LogError;
pub use manifest::{Batch, Manifest};
pub use periods::{Period, PeriodCounts, counts_by_period};
pub use reader::{Events, IdentityHasher, LogIdentity, LogReader, RecordCursor, Records};
pub use repair::{RepairReport, repair, upgrade};
pub use rewrite::{RewriteStep, rewrite, rewrite_observed, rewrite_registering};
pub use segment::TornTail;
pub use verify::{SegmentReport, VerifyReport, verify};
pub use writer::{LogWriter, RecoveryReport, RolledBack, WriterOptions};

/// `[u8; 32]` as 64 lowercase hex digits in serde formats.
pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Lowercase hex of 32 bytes.
    pub fn to_hex(bytes: &[u8; 32]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let invalid = || serde::de::Error::custom(format!("{text:?} is not 64 hex digits"));
        if text.len() != 64 || !text.is_ascii() {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    fn shareable<T: Send + Sync>() {}
    fn movable<T: Send>() {}

    #[test]
    fn readers_and_catalogs_can_be_shared_between_threads() {
        shareable::<crate::LogReader>();
        shareable::<crate::Catalog>();
        movable::<crate::RecordCursor>();
        movable::<crate::Events>();
        movable::<crate::LogWriter>();
    }
}
