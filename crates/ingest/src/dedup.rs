//! Duplicate detection: which events have an identity of their own, and what "the same event"
//! means.
//!
//! An event has an identity when its source gives one:
//! - an on-chain log: chain, block and log index, and for a parameter change the parameter's name
//!   (one configuration log sets several parameters: Aave's `CollateralConfigurationChanged`);
//! - an oracle round: chain, feed and round id;
//! - a point of a price series (prices without rounds from price sources): chain, feed, asset,
//!   quote and time.
//!
//! Two events with the same identity are duplicates: identical ones (everything but `seq` and
//! `source` equal) are dropped and counted, different ones are a conflict and stop the ingest.
//! Rows of exports without transaction or log index (the Maker and Aave exports, the rows of a
//! mapped CSV other than prices) have no identity: identical rows there can be distinct real
//! events (vault #21348's 363 identical bites), so only the source-level content hash guards
//! against ingesting them twice, and the Aave adapter applies its own documented row rule.

use std::fmt;

use cascade_events::{Event, Id, Payload, Symbol, Timestamp};

use crate::source::SourceKind;

/// The identity of an event; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An on-chain log.
    Log {
        /// Chain id.
        chain: u64,
        /// Block number.
        block: u64,
        /// Log index within the block.
        log_index: u32,
        /// The parameter a parameter change sets.
        param: Option<Symbol>,
    },
    /// An oracle round.
    Round {
        /// Chain id.
        chain: u64,
        /// Feed.
        feed: Id,
        /// Round id.
        round: u128,
    },
    /// A point of a price series.
    Series {
        /// Chain id.
        chain: u64,
        /// Feed.
        feed: Id,
        /// Asset priced.
        asset: Id,
        /// Quote.
        quote: Id,
        /// Time of the price.
        time: Timestamp,
    },
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Log {
                chain,
                block,
                log_index,
                param,
            } => {
                write!(f, "chain {chain} block {block} log {log_index}")?;
                match param {
                    Some(param) => write!(f, " parameter {param}"),
                    None => Ok(()),
                }
            }
            Identity::Round { feed, round, .. } => write!(f, "feed {feed} round {round}"),
            Identity::Series {
                feed,
                asset,
                quote,
                time,
                ..
            } => write!(f, "feed {feed} {asset}/{quote} at {time}"),
        }
    }
}

/// The identity of `event` from a source of `kind` (`None`: not described by the catalog).
pub fn identity(event: &Event, kind: Option<SourceKind>) -> Option<Identity> {
    if let (Some(block), Some(log_index)) = (event.block, event.log_index) {
        let param = match &event.payload {
            Payload::ParamChange(change) => Some(change.param),
            _ => None,
        };
        return Some(Identity::Log {
            chain: event.chain_id,
            block,
            log_index,
            param,
        });
    }
    let Payload::Price(price) = &event.payload else {
        return None;
    };
    match price.round {
        Some(round) => Some(Identity::Round {
            chain: event.chain_id,
            feed: price.feed,
            round,
        }),
        None if kind.is_some_and(SourceKind::prices_are_series) => Some(Identity::Series {
            chain: event.chain_id,
            feed: price.feed,
            asset: price.asset,
            quote: price.quote,
            time: event.time,
        }),
        None => None,
    }
}

/// True when two events say the same thing (their `seq` and `source` aside).
pub fn same_content(a: &Event, b: &Event) -> bool {
    // Destructured whole so that a new envelope field is compared unless named here.
    let Event {
        seq: _,
        chain_id,
        block,
        time,
        tx_index,
        log_index,
        tx_hash,
        source: _,
        payload,
    } = a;
    (chain_id, block, time, tx_index, log_index, tx_hash, payload)
        == (
            &b.chain_id,
            &b.block,
            &b.time,
            &b.tx_index,
            &b.log_index,
            &b.tx_hash,
            &b.payload,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_events::{Fixed, PriceUpdate, U256};

    fn price(round: Option<u128>, value: u64) -> Event {
        Event {
            seq: 3,
            chain_id: 1,
            block: None,
            time: Timestamp(10),
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 4,
            payload: Payload::Price(Box::new(PriceUpdate {
                asset: Id::name("ETH"),
                quote: Id::name("USD"),
                price: Fixed::new(U256::from(value), 8),
                feed: Id::name("f"),
                round,
            })),
        }
    }

    #[test]
    fn prices_have_round_or_series_identity() {
        let round = price(Some(7), 1);
        assert!(matches!(
            identity(&round, Some(SourceKind::ChainlinkRounds)),
            Some(Identity::Round { round: 7, .. })
        ));
        let series = price(None, 1);
        assert!(matches!(
            identity(&series, Some(SourceKind::PriceCsv)),
            Some(Identity::Series { .. })
        ));
        // Prices attached to Aave export rows are not a series.
        assert_eq!(
            identity(&series, Some(SourceKind::AaveSubgraphLiquidations)),
            None
        );
        assert_eq!(identity(&series, None), None);
        let logged = Event {
            block: Some(5),
            log_index: Some(2),
            ..series
        };
        assert_eq!(
            identity(&logged, None),
            Some(Identity::Log {
                chain: 1,
                block: 5,
                log_index: 2,
                param: None,
            })
        );
    }

    #[test]
    fn content_ignores_seq_and_source_only() {
        let a = price(Some(7), 1);
        assert!(same_content(
            &a,
            &Event {
                seq: 99,
                source: 0,
                ..a.clone()
            }
        ));
        assert!(!same_content(&a, &price(Some(7), 2)));
        assert!(!same_content(
            &a,
            &Event {
                time: Timestamp(11),
                ..a.clone()
            }
        ));
    }
}
