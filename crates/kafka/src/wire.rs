//! The layout of cascade events in Kafka records: value, headers and key.
//!
//! A record carries one event, or a pack of consecutive events (see [`Packing`]):
//!
//! | part | single event | pack of N events |
//! |---|---|---|
//! | value | the event's encoded bytes exactly as in the log (schema byte first) | N times: `u32` little-endian length, then the encoded bytes |
//! | header `cascade-seq` | the event's sequence number | the first event's sequence number |
//! | header `cascade-count` | `1` | N |
//! | header `cascade-schema` | the schema version ([`SCHEMA_VERSION`]) | same |
//! | header `content-type` | [`CONTENT_EVENT`] | [`CONTENT_PACK`] |
//! | key | see [`Partitioning`] | see [`Partitioning`] |
//!
//! Header values are ASCII decimal so that any Kafka tool shows them readably. The events of a
//! record have consecutive sequence numbers starting at `cascade-seq`.
//!
//! This module is pure (no client, no I/O): it must never accept a record it cannot fully decode,
//! so a consumer validates a whole record before applying any of its events.

use cascade_events::{DecodeError, Event, Payload, SCHEMA_VERSION, decode};

/// Header naming the sequence number of the (first) event in the record.
pub const HEADER_SEQ: &str = "cascade-seq";
/// Header naming how many events the record holds.
pub const HEADER_COUNT: &str = "cascade-count";
/// Header naming the schema version of the encoded events.
pub const HEADER_SCHEMA: &str = "cascade-schema";
/// Header naming the value's layout.
pub const HEADER_CONTENT_TYPE: &str = "content-type";
/// Content type of a record holding one encoded event.
pub const CONTENT_EVENT: &str = "application/vnd.cascade.event";
/// Content type of a record holding a pack of length-prefixed encoded events.
pub const CONTENT_PACK: &str = "application/vnd.cascade.event-pack";

/// Why a Kafka record is not a valid cascade event record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A required header is absent.
    #[error("missing header {0:?}")]
    MissingHeader(&'static str),
    /// A header's value is not what the layout requires.
    #[error("header {name:?} has value {value:?}, expected {expected}")]
    BadHeader {
        /// The header.
        name: &'static str,
        /// Its value, lossily as text.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The schema-version header names a version this build cannot read.
    #[error("unknown schema version {found} in header (this build reads version {SCHEMA_VERSION})")]
    UnknownSchema {
        /// The version found.
        found: u8,
    },
    /// The record has no value.
    #[error("record has no value")]
    NoValue,
    /// A pack's length prefixes do not add up to the value's length or to `cascade-count`.
    #[error("pack layout: {0}")]
    Pack(String),
    /// An event's bytes do not decode.
    #[error("event seq {seq}: {source}")]
    Event {
        /// The sequence number the event would have.
        seq: u64,
        /// The decoder's error.
        #[source]
        source: DecodeError,
    },
}

/// How records are keyed and spread over partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Partitioning {
    /// Every record goes to partition 0 without a key: the topic holds the log's global order,
    /// which is what a replay needs. The default.
    #[default]
    Global,
    /// Records are keyed by the account an event concerns (`Id` text form, e.g. `#16175` or
    /// `0x…`); events without an account are keyed by what they concern instead: a price update by
    /// its asset, an index update by its asset, a parameter change by its market. Kafka's default
    /// partitioner then keeps per-account (and per-asset) order, which is what a bot or monitor
    /// subscribed to a few accounts needs. A cascade consumer merges the partitions back into
    /// global order by sequence number. Incompatible with packing (a pack has one key).
    Account,
}

impl Partitioning {
    /// The record key for an event under this partitioning (`None` for [`Partitioning::Global`]).
    pub fn key(self, event: &Event) -> Option<String> {
        match self {
            Partitioning::Global => None,
            Partitioning::Account => Some(
                match &event.payload {
                    Payload::Price(price) => price.asset,
                    Payload::VaultOpen(open) => open.account,
                    Payload::Deposit(change)
                    | Payload::Withdraw(change)
                    | Payload::Borrow(change)
                    | Payload::Repay(change) => change.account,
                    Payload::Liquidation(liquidation) => liquidation.account,
                    Payload::PartialLiquidation(liquidation) => liquidation.account,
                    Payload::CollateralToggle(toggle) => toggle.account,
                    Payload::IndexUpdate(index) => index.asset,
                    Payload::ParamChange(param) => param.market,
                    Payload::AuctionKick(kick) => kick.account,
                    Payload::AuctionTake(take) => take.account,
                    Payload::OracleValue(value) => value.market,
                    Payload::OracleSourceChange(change) => change.asset,
                    Payload::PositionSnapshot(snapshot) => snapshot.account,
                    Payload::AccountTotals(totals) => totals.account,
                }
                .to_string(),
            ),
        }
    }
}

impl std::str::FromStr for Partitioning {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "global" => Ok(Partitioning::Global),
            "account" => Ok(Partitioning::Account),
            other => Err(format!("unknown partitioning {other:?} (global | account)")),
        }
    }
}

/// How many consecutive events share one Kafka record.
///
/// One event per record (the default) is what other Kafka consumers expect: the value is exactly
/// the log's record. Packing cuts the per-record cost (headers, batching, client bookkeeping) and
/// raises throughput, at the price of a cascade-specific value layout that other consumers must
/// unpack, and of coarser granularity (offsets, keys and `--speed` pacing apply to whole packs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Most events in one record (at least 1).
    pub max_events: usize,
    /// Most value bytes in one record; a single event larger than this still gets its own record.
    pub max_bytes: usize,
}

impl Packing {
    /// One event per record.
    pub const SINGLE: Packing = Packing {
        max_events: 1,
        max_bytes: usize::MAX,
    };

    /// Packs of at most `max_events` events and 256 KiB.
    pub fn events(max_events: usize) -> Packing {
        Packing {
            max_events: max_events.max(1),
            max_bytes: 256 * 1024,
        }
    }

    /// Whether records hold more than one event.
    pub fn is_packed(&self) -> bool {
        self.max_events > 1
    }
}

/// The record being assembled by a publisher: the value bytes and the range of events in it.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    value: Vec<u8>,
    first_seq: u64,
    count: u32,
    packed: bool,
}

impl RecordBuilder {
    /// An empty builder for single-event (`packed == false`) or pack records.
    pub fn new(packed: bool) -> Self {
        Self {
            packed,
            ..Self::default()
        }
    }

    /// Whether adding a record of `len` bytes would exceed `packing`.
    pub fn is_full_for(&self, len: usize, packing: &Packing) -> bool {
        self.count > 0
            && (self.count as usize >= packing.max_events
                || self.value.len() + 4 + len > packing.max_bytes)
    }

    /// Adds the encoded event `record` at sequence number `seq`, which must follow the previous.
    pub fn push(&mut self, seq: u64, record: &[u8]) {
        debug_assert!(self.count == 0 || seq == self.first_seq + u64::from(self.count));
        debug_assert!(
            self.packed || self.count == 0,
            "single-event record is full"
        );
        if self.count == 0 {
            self.first_seq = seq;
        }
        if self.packed {
            let len = u32::try_from(record.len()).expect("an encoded event is far below 4 GiB");
            self.value.extend_from_slice(&len.to_le_bytes());
        }
        self.value.extend_from_slice(record);
        self.count += 1;
    }

    /// Number of events in the record so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Sequence number of the first event (meaningful when `count() > 0`).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The record's value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The record's headers, in the order they are written.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_SEQ, self.first_seq.to_string()),
            (HEADER_COUNT, self.count.to_string()),
            (HEADER_SCHEMA, SCHEMA_VERSION.to_string()),
            (
                HEADER_CONTENT_TYPE,
                if self.packed {
                    CONTENT_PACK
                } else {
                    CONTENT_EVENT
                }
                .to_owned(),
            ),
        ]
    }

    /// Empties the builder for the next record, keeping its allocation.
    pub fn clear(&mut self) {
        self.value.clear();
        self.count = 0;
    }
}

/// The headers of a record that identify its events, read before the value is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeaders {
    /// Sequence number of the first event.
    pub first_seq: u64,
    /// Number of events.
    pub count: u32,
    /// Whether the value is a pack.
    pub packed: bool,
}

impl RecordHeaders {
    /// Reads and checks the cascade headers from `(name, value)` pairs (the last occurrence of a
    /// name wins, as in Kafka's own header lookup).
    pub fn parse<'a>(
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<Self, RecordError> {
        let (mut seq, mut count, mut schema, mut content) = (None, None, None, None);
        for (name, value) in headers {
            let slot = match name {
                HEADER_SEQ => &mut seq,
                HEADER_COUNT => &mut count,
                HEADER_SCHEMA => &mut schema,
                HEADER_CONTENT_TYPE => &mut content,
                _ => continue,
            };
            *slot = Some(value.unwrap_or_default());
        }
        let first_seq = number::<u64>(HEADER_SEQ, seq)?;
        let count = number::<u32>(HEADER_COUNT, count)?;
        if count == 0 {
            return Err(RecordError::BadHeader {
                name: HEADER_COUNT,
                value: "0".into(),
                expected: "a positive count",
            });
        }
        if first_seq.checked_add(u64::from(count)).is_none() {
            return Err(RecordError::BadHeader {
                name: HEADER_SEQ,
                value: first_seq.to_string(),
                expected: "a sequence number that leaves room for the record's events",
            });
        }
        let schema = number::<u8>(HEADER_SCHEMA, schema)?;
        if schema != SCHEMA_VERSION {
            return Err(RecordError::UnknownSchema { found: schema });
        }
        let content = content.ok_or(RecordError::MissingHeader(HEADER_CONTENT_TYPE))?;
        let packed = match content {
            c if c == CONTENT_EVENT.as_bytes() => false,
            c if c == CONTENT_PACK.as_bytes() => true,
            other => {
                return Err(RecordError::BadHeader {
                    name: HEADER_CONTENT_TYPE,
                    value: String::from_utf8_lossy(other).into_owned(),
                    expected: "application/vnd.cascade.event or application/vnd.cascade.event-pack",
                });
            }
        };
        if !packed && count != 1 {
            return Err(RecordError::BadHeader {
                name: HEADER_COUNT,
                value: count.to_string(),
                expected: "1 for a single-event record",
            });
        }
        Ok(Self {
            first_seq,
            count,
            packed,
        })
    }

    /// One past the last sequence number in the record.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count)
    }

    /// Splits and decodes the value into `out` (cleared first), checking that it holds exactly
    /// `count` events and that each decodes. Byte ranges index into `value`.
    pub fn decode(
        &self,
        value: Option<&[u8]>,
        out: &mut Vec<DecodedEvent>,
    ) -> Result<(), RecordError> {
        out.clear();
        let value = value.ok_or(RecordError::NoValue)?;
        let mut push = |index: u32, start: usize, end: usize| {
            let seq = self.first_seq + u64::from(index);
            let event = decode(seq, &value[start..end])
                .map_err(|source| RecordError::Event { seq, source })?;
            out.push(DecodedEvent {
                bytes: start..end,
                event,
            });
            Ok::<_, RecordError>(())
        };
        if !self.packed {
            return push(0, 0, value.len());
        }
        let mut at = 0;
        for index in 0..self.count {
            let Some(len) = value.get(at..at + 4) else {
                return Err(RecordError::Pack(format!(
                    "value ends before the length of event {index} of {}",
                    self.count
                )));
            };
            let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
            let start = at + 4;
            let left = value.len() - start;
            if left < len {
                return Err(RecordError::Pack(format!(
                    "event {index} claims {len} bytes, only {left} left"
                )));
            }
            push(index, start, start + len)?;
            at = start + len;
        }
        if at != value.len() {
            return Err(RecordError::Pack(format!(
                "{} bytes after the last of {} events",
                value.len() - at,
                self.count
            )));
        }
        Ok(())
    }
}

/// One event decoded from a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedEvent {
    /// Where its encoded bytes sit in the record's value.
    pub bytes: std::ops::Range<usize>,
    /// The event, with its sequence number set.
    pub event: Event,
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    value: Option<&[u8]>,
) -> Result<T, RecordError> {
    let value = value.ok_or(RecordError::MissingHeader(name))?;
    std::str::from_utf8(value)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| RecordError::BadHeader {
            name,
            value: String::from_utf8_lossy(value).into_owned(),
            expected: "an unsigned decimal number",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_events::{
        Amount, Fixed, Id, PositionChange, PriceUpdate, Protocol, Timestamp, U256, encode,
    };

    fn event(seq: u64, payload: Payload) -> Event {
        Event {
            seq,
            chain_id: 1,
            block: Some(100 + seq),
            time: Timestamp(1_600_000_000 + seq as i64),
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 0,
            payload,
        }
    }

    fn price(seq: u64) -> Event {
        event(
            seq,
            Payload::Price(Box::new(PriceUpdate {
                asset: Id::name("ETH"),
                quote: Id::name("USD"),
                price: Fixed::new(U256::from(2_000 + seq), 0),
                feed: Id::name("feed"),
                round: None,
            })),
        )
    }

    fn deposit(seq: u64, vault: u64) -> Event {
        event(
            seq,
            Payload::Deposit(Box::new(PositionChange {
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                account: Id::Number(vault),
                asset: Id::name("ETH"),
                amount: Amount::from_units(seq as u128),
                shares: None,
            })),
        )
    }

    fn headers_of(builder: &RecordBuilder) -> Vec<(&'static str, Vec<u8>)> {
        builder
            .headers()
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect()
    }

    fn parse(headers: &[(&'static str, Vec<u8>)]) -> Result<RecordHeaders, RecordError> {
        RecordHeaders::parse(headers.iter().map(|(n, v)| (*n, Some(v.as_slice()))))
    }

    #[test]
    fn single_event_record_is_the_log_record() {
        let e = deposit(7, 16175);
        let bytes = encode(&e);
        let mut builder = RecordBuilder::new(false);
        builder.push(7, &bytes);
        assert_eq!(builder.value(), bytes.as_slice());
        let headers = parse(&headers_of(&builder)).unwrap();
        assert_eq!(
            headers,
            RecordHeaders {
                first_seq: 7,
                count: 1,
                packed: false
            }
        );
        let mut out = Vec::new();
        headers.decode(Some(builder.value()), &mut out).unwrap();
        assert_eq!(
            out,
            vec![DecodedEvent {
                bytes: 0..bytes.len(),
                event: e
            }]
        );
    }

    #[test]
    fn pack_round_trips_with_consecutive_seqs() {
        let events: Vec<Event> = (40..45)
            .map(|s| if s % 2 == 0 { price(s) } else { deposit(s, s) })
            .collect();
        let mut builder = RecordBuilder::new(true);
        for e in &events {
            builder.push(e.seq, &encode(e));
        }
        let headers = parse(&headers_of(&builder)).unwrap();
        assert_eq!(
            (headers.first_seq, headers.count, headers.end_seq()),
            (40, 5, 45)
        );
        let mut out = Vec::new();
        headers.decode(Some(builder.value()), &mut out).unwrap();
        let decoded: Vec<Event> = out.iter().map(|d| d.event.clone()).collect();
        assert_eq!(decoded, events);
        for (d, e) in out.iter().zip(&events) {
            assert_eq!(&builder.value()[d.bytes.clone()], encode(e).as_slice());
        }
        builder.clear();
        assert_eq!((builder.count(), builder.value().len()), (0, 0));
    }

    #[test]
    fn pack_limits() {
        let packing = Packing {
            max_events: 3,
            max_bytes: 100,
        };
        let mut builder = RecordBuilder::new(true);
        assert!(
            !builder.is_full_for(1000, &packing),
            "an empty record takes any event"
        );
        builder.push(0, &[1; 40]);
        assert!(!builder.is_full_for(40, &packing));
        assert!(builder.is_full_for(60, &packing), "4+40 + 4+60 > 100");
        builder.push(1, &[1; 40]);
        builder.push(2, &[1; 4]);
        assert!(builder.is_full_for(1, &packing), "three events");
        assert!(!Packing::SINGLE.is_packed() && Packing::events(2).is_packed());
        assert_eq!(Packing::events(0).max_events, 1);
    }

    #[test]
    fn bad_headers_are_named() {
        let mut builder = RecordBuilder::new(false);
        builder.push(3, &encode(&price(3)));
        let good = headers_of(&builder);
        let without =
            |name: &str| -> Vec<_> { good.iter().filter(|(n, _)| *n != name).cloned().collect() };
        let with = |name: &'static str, value: &str| -> Vec<_> {
            let mut h = good.clone();
            h.push((name, value.as_bytes().to_vec()));
            h
        };
        assert_eq!(
            parse(&without(HEADER_SEQ)),
            Err(RecordError::MissingHeader(HEADER_SEQ))
        );
        assert_eq!(
            parse(&without(HEADER_CONTENT_TYPE)),
            Err(RecordError::MissingHeader(HEADER_CONTENT_TYPE))
        );
        assert!(matches!(
            parse(&with(HEADER_SEQ, "-1")),
            Err(RecordError::BadHeader {
                name: HEADER_SEQ,
                ..
            })
        ));
        assert!(matches!(
            parse(&with(HEADER_SEQ, "+1")),
            Err(RecordError::BadHeader {
                name: HEADER_SEQ,
                ..
            })
        ));
        assert!(matches!(
            parse(&with(HEADER_COUNT, "0")),
            Err(RecordError::BadHeader {
                name: HEADER_COUNT,
                ..
            })
        ));
        assert!(matches!(
            parse(&with(HEADER_COUNT, "2")),
            Err(RecordError::BadHeader {
                name: HEADER_COUNT,
                ..
            })
        ));
        assert_eq!(
            parse(&with(HEADER_SCHEMA, "9")),
            Err(RecordError::UnknownSchema { found: 9 })
        );
        assert!(matches!(
            parse(&with(HEADER_CONTENT_TYPE, "text/plain")),
            Err(RecordError::BadHeader {
                name: HEADER_CONTENT_TYPE,
                ..
            })
        ));
        assert!(matches!(
            parse(&with(HEADER_SEQ, &u64::MAX.to_string())),
            Err(RecordError::BadHeader {
                name: HEADER_SEQ,
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_named() {
        let single = RecordHeaders {
            first_seq: 5,
            count: 1,
            packed: false,
        };
        let mut out = Vec::new();
        assert_eq!(single.decode(None, &mut out), Err(RecordError::NoValue));
        let mut bytes = encode(&price(5));
        bytes[0] = 2;
        assert!(matches!(
            single.decode(Some(&bytes), &mut out),
            Err(RecordError::Event {
                seq: 5,
                source: DecodeError::UnknownVersion { found: 2 }
            })
        ));
        assert!(matches!(
            single.decode(Some(b"\x01garbage"), &mut out),
            Err(RecordError::Event {
                seq: 5,
                source: DecodeError::Malformed(_)
            })
        ));

        let record = encode(&price(5));
        let mut pack = RecordBuilder::new(true);
        pack.push(5, &record);
        pack.push(6, &record);
        let two = RecordHeaders {
            first_seq: 5,
            count: 2,
            packed: true,
        };
        let three = RecordHeaders { count: 3, ..two };
        assert!(matches!(
            three.decode(Some(pack.value()), &mut out),
            Err(RecordError::Pack(_))
        ));
        let one = RecordHeaders { count: 1, ..two };
        assert!(matches!(
            one.decode(Some(pack.value()), &mut out),
            Err(RecordError::Pack(_))
        ));
        let cut = &pack.value()[..pack.value().len() - 1];
        assert!(matches!(
            two.decode(Some(cut), &mut out),
            Err(RecordError::Pack(_))
        ));
        two.decode(Some(pack.value()), &mut out).unwrap();
        assert_eq!(out.iter().map(|d| d.event.seq).collect::<Vec<_>>(), [5, 6]);
    }

    #[test]
    fn account_keys() {
        assert_eq!(Partitioning::Global.key(&deposit(1, 9)), None);
        assert_eq!(
            Partitioning::Account.key(&deposit(1, 16175)).as_deref(),
            Some("#16175")
        );
        assert_eq!(Partitioning::Account.key(&price(1)).as_deref(), Some("ETH"));
        assert_eq!("account".parse(), Ok(Partitioning::Account));
        assert!("per-account".parse::<Partitioning>().is_err());
    }
}
