//! The total order of events in a log, whatever sources they came from and in whatever order
//! those were ingested.
//!
//! An event's key is, compared field by field:
//!
//! 1. `time`: block timestamp, or the source's own time;
//! 2. `block`, then `tx_index`, then `log_index`, where known (unknown sorts first: an off-chain
//!    price stamped at second `t` is known before anything mined in a block of second `t`);
//! 3. the event's class at one instant ([`instant_class`]), across sources: parameter changes,
//!    then prices, then position snapshots, then position changes, then liquidations. Events with
//!    a log index are in chain order already and all take class 0 (several events of one log
//!    keep their source's order); a source that keeps its own order at one instant
//!    ([`SourceKind::keeps_file_order`]: per-row prices, a mapping's `instant_order = "file"`)
//!    puts all its events in the last class, so its rows stay whole;
//! 4. the source kind's rank ([`SourceKind::rank`]): price sources first;
//! 5. the file rank within the source ([`SourceKind::file_rank`]): only the Maker export uses it,
//!    to order one block's actions across its files;
//! 6. the oracle round of a price, where it has one: rounds reported in the same second keep
//!    their round order whatever order the file lists them in;
//! 7. the source's content hash: two sources of the same kind at the same instant are ordered by
//!    what they contain, not by when they were ingested;
//! 8. the position within the source: its own order (row, then the events a row produced).
//!
//! Block timestamps strictly increase on Ethereum, so ordering by time first keeps block order.
//! The key is computed from the event and its source's catalog record alone, so events already in
//! a log get the same key as when they were ingested (their position there is their seq, which
//! preserves their order within the source).

use cascade_events::{Event, Payload, Timestamp};

use crate::source::{INSTANT_LAST, SourceKind, instant_class};

/// The rank of events whose source the catalog does not describe (written by another tool).
const UNKNOWN_SOURCE_RANK: u8 = u8::MAX;

/// The sort key of one event; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    /// Event time.
    pub time: Timestamp,
    /// Block number.
    pub block: Option<u64>,
    /// Transaction index.
    pub tx_index: Option<u32>,
    /// Log index.
    pub log_index: Option<u32>,
    /// Class of the event at one instant.
    pub class: u8,
    /// Rank of the source kind.
    pub source_rank: u8,
    /// Rank of the file within the source.
    pub file_rank: u8,
    /// Oracle round of a price.
    pub round: Option<u128>,
    /// Place of the source's content hash among those of all the log's sources.
    pub source_order: u32,
    /// Position within the source.
    pub position: u64,
}

impl OrderKey {
    /// The key of `event` from a source of `kind` (`None`: unknown) whose content hash is the
    /// `source_order`-th smallest of the log's sources, at `position` in that source's order.
    pub fn of(event: &Event, kind: Option<SourceKind>, source_order: u32, position: u64) -> Self {
        OrderKey {
            time: event.time,
            block: event.block,
            tx_index: event.tx_index,
            log_index: event.log_index,
            class: match kind {
                _ if event.log_index.is_some() => 0,
                Some(kind) if kind.keeps_file_order() => INSTANT_LAST,
                _ => instant_class(event.kind()),
            },
            source_rank: kind.map_or(UNKNOWN_SOURCE_RANK, SourceKind::rank),
            file_rank: kind.map_or(0, |kind| kind.file_rank(event)),
            round: match &event.payload {
                Payload::Price(price) => price.round,
                _ => None,
            },
            source_order,
            position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_events::{Amount, Fixed, Id, PositionChange, PriceUpdate, Protocol, U256};

    fn event(time: i64, block: Option<u64>, payload: Payload) -> Event {
        Event {
            seq: 0,
            chain_id: 1,
            block,
            time: Timestamp(time),
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 0,
            payload,
        }
    }

    fn price() -> Payload {
        Payload::Price(Box::new(PriceUpdate {
            asset: Id::name("ETH"),
            quote: Id::name("USD"),
            price: Fixed::new(U256::from(1u8), 0),
            feed: Id::name("f"),
            round: None,
        }))
    }

    fn change(make: fn(Box<PositionChange>) -> Payload) -> Payload {
        make(Box::new(PositionChange {
            protocol: Protocol::Maker,
            market: Id::name("ETH-B"),
            account: Id::Number(1),
            asset: Id::name("DAI"),
            amount: Amount::from_units(1),
            shares: None,
        }))
    }

    #[test]
    fn time_then_block_then_source_then_file_then_position() {
        let maker = Some(SourceKind::MakerFlipside);
        let prices = Some(SourceKind::PriceCsv);
        let mint = event(100, Some(7), change(Payload::Borrow));
        let deposit = event(100, Some(7), change(Payload::Deposit));
        let price = event(100, None, price());
        let earlier = event(99, Some(8), change(Payload::Borrow));
        let mut keys = [
            OrderKey::of(&mint, maker, 0, 0),
            OrderKey::of(&deposit, maker, 0, 1),
            OrderKey::of(&price, prices, 9, 0),
            OrderKey::of(&earlier, maker, 0, 2),
        ];
        keys.sort();
        let order: Vec<(i64, u64)> = keys.iter().map(|k| (k.time.0, k.position)).collect();
        // earlier time; then the time-only price; then in block 7 the deposit before the mint.
        assert_eq!(order, [(99, 2), (100, 0), (100, 1), (100, 0)]);
        assert_eq!(keys[1].source_rank, SourceKind::PriceCsv.rank());
        assert!(keys[2].file_rank < keys[3].file_rank);
    }

    #[test]
    fn unknown_sources_sort_after_known_ones_at_the_same_instant() {
        let e = event(5, None, price());
        assert!(
            OrderKey::of(&e, Some(SourceKind::MakerFlipside), 0, 9) < OrderKey::of(&e, None, 0, 0)
        );
    }
}
