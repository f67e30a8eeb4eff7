//! The event envelope: where and when something happened, and what.

use alloy_primitives::B256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wincode::{SchemaRead, SchemaWrite};

use crate::{EventKind, Payload, Timestamp};

/// A 32-byte hash as it is encoded in a record.
#[derive(SchemaWrite, SchemaRead)]
pub(crate) struct HashWire([u8; 32]);

impl From<&B256> for HashWire {
    fn from(hash: &B256) -> Self {
        Self(hash.0)
    }
}

impl From<HashWire> for B256 {
    fn from(wire: HashWire) -> Self {
        B256::new(wire.0)
    }
}

/// One normalised event, as stored in the log.
///
/// The log's order is the replay order; [`Event::seq`] is the event's position in it and is not
/// part of the encoded bytes (the log knows it from where the record sits, and Kafka carries it in
/// a header), so re-sequencing a log never re-encodes its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct Event {
    /// Position in the log, dense from 0; assigned by the log, ignored by [`crate::encode`].
    #[wincode(skip)]
    pub seq: u64,
    /// EIP-155 chain id (1 for Ethereum mainnet).
    pub chain_id: u64,
    /// Block number, where the source records it.
    pub block: Option<u64>,
    /// Block timestamp, or the source's own timestamp for off-chain prices.
    pub time: Timestamp,
    /// Transaction index within the block, where known.
    pub tx_index: Option<u32>,
    /// Log index within the block, where known.
    pub log_index: Option<u32>,
    /// Transaction hash, where known.
    #[wincode(with = "Option<wincode::adapter::FromInto<HashWire, B256>>")]
    #[serde(serialize_with = "hash_to_hex", deserialize_with = "hash_from_hex")]
    pub tx_hash: Option<B256>,
    /// Which ingested source the event came from: an index into the log catalog's source list.
    pub source: u32,
    /// What happened.
    pub payload: Payload,
}

impl Event {
    /// An event known only by its chain and time: no block, transaction or log position, log
    /// position 0 and source 0 until a log assigns them (export rows, hand-built tests).
    pub fn at(chain_id: u64, time: Timestamp, payload: Payload) -> Event {
        Event {
            seq: 0,
            chain_id,
            block: None,
            time,
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 0,
            payload,
        }
    }

    /// The payload's kind.
    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

fn hash_to_hex<S: Serializer>(hash: &Option<B256>, serializer: S) -> Result<S::Ok, S::Error> {
    match hash {
        Some(hash) => serializer.collect_str(&format_args!("{hash:#x}")),
        None => serializer.serialize_none(),
    }
}

fn hash_from_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<B256>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| text.parse::<B256>().map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events are moved and batched far more often than their payload is read: the envelope stays
    /// within two cache lines and the payload is a tag and a pointer (an event was 480 bytes
    /// before the payloads were boxed, issue 14).
    #[test]
    fn event_fits_in_128_bytes() {
        assert!(
            size_of::<Payload>() <= 16,
            "Payload is {} bytes: a variant is stored inline instead of boxed",
            size_of::<Payload>()
        );
        assert!(
            size_of::<Event>() <= 128,
            "Event is {} bytes, over its 128-byte budget",
            size_of::<Event>()
        );
    }
}
