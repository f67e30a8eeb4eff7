//! The price book: the latest answer of every feed for every (asset, quote) pair, and the rule
//! that makes one of them *the* market price at each moment.
//!
//! Protocols never read feeds directly: each reads the market price through its own oracle rule
//! (Maker through the OSM delay, Aave and Compound the latest answer). The book only records
//! what feeds said and picks among them; it never invents, smooths or delays a price.
//!
//! Feed choice, when several feeds cover one pair: an explicit priority list if configured,
//! otherwise the finest-grained feed that is still live. A feed's grain is the interval between
//! its last two answers; it is live while its last answer is no older than twice that interval.
//! So a 10-minute crash-day feed overrides an hourly one while it runs and hands back to it when
//! it stops, and a Chainlink feed (minutes) beats both. A feed's very first answer has no grain
//! yet and ranks last. Ties go to the smaller feed id, so the choice never depends on arrival
//! order of equal candidates.
//!
//! Quote conversion: a price quoted in a unit the protocols do not price in (an exchange's
//! `WETH/USDT` bar) is converted by [`PriceBook::convert`] to the unit they do (`USD`) through
//! that unit's own market price (`USDT/USD`) as the book knows it at that second: the rate is the
//! latest answer at or before the price, never a later one, and no older than the conversion's
//! `max_age`. Without such a rate the price stays in its own quote and prices nothing in USD.
//! Nothing is ever taken at par.

use std::collections::BTreeMap;

use cascade_events::{Fixed, Id, PriceUpdate, Timestamp, U256};

use crate::EngineError;
use crate::state::{StateReader, StateWriter};

/// One price observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Quote units per whole asset token.
    pub price: Fixed,
    /// When the feed said so (event time).
    pub time: Timestamp,
    /// Which feed said so.
    pub feed: Id,
}

#[derive(Clone, Debug)]
struct FeedState {
    last: Quote,
    /// Seconds between the feed's last two answers; `None` after its first answer.
    grain: Option<i64>,
}

#[derive(Clone, Debug, Default)]
struct Pair {
    feeds: BTreeMap<Id, FeedState>,
    market: Option<Quote>,
}

/// A quote unit the book converts (`USDT`) into another (`USD`) through the market price of the
/// one in the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuoteConversion {
    /// The unit converted (`USDT`).
    pub from: Id,
    /// The unit it is converted to (`USD`).
    pub to: Id,
    /// A rate older than this many seconds is no rate.
    pub max_age: i64,
}

impl QuoteConversion {
    /// The default: USDT through the log's USDT/USD feed, whose answers may be up to two days
    /// old (the CoinGecko hourly export has gaps of up to ~25 h; the same bound as Maker's
    /// `max_price_age`).
    pub fn usdt_to_usd() -> Self {
        Self {
            from: Id::name("USDT"),
            to: Id::name("USD"),
            max_age: 2 * 86_400,
        }
    }
}

/// Why a price could not be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unconverted {
    /// The book has no market price of the quote in the target unit yet.
    NoRate,
    /// The latest rate is older than the conversion's `max_age`.
    StaleRate,
}

impl Unconverted {
    /// The reason counted in the run's `skipped` totals.
    pub fn reason(self) -> &'static str {
        match self {
            Unconverted::NoRate => "price-not-converted-no-rate",
            Unconverted::StaleRate => "price-not-converted-stale-rate",
        }
    }
}

/// Latest prices per (asset, quote, feed), and the market price per (asset, quote).
#[derive(Clone, Debug, Default)]
pub struct PriceBook {
    pairs: BTreeMap<(Id, Id), Pair>,
    priority: Vec<Id>,
}

impl PriceBook {
    /// An empty book; `priority` lists feeds from most to least preferred (empty: finest live
    /// feed first, see the module docs).
    pub fn new(priority: Vec<Id>) -> Self {
        Self {
            pairs: BTreeMap::new(),
            priority,
        }
    }

    /// Records a feed's answer at `time`; returns the pair's market quote when it changed.
    pub fn record(&mut self, update: &PriceUpdate, time: Timestamp) -> Option<Quote> {
        let pair = self.pairs.entry((update.asset, update.quote)).or_default();
        let quote = Quote {
            price: update.price,
            time,
            feed: update.feed,
        };
        match pair.feeds.get_mut(&update.feed) {
            Some(state) => {
                let gap = time.0 - state.last.time.0;
                // Two answers in one second (an OHLCV bar's open and close) say nothing about
                // the feed's grain; keep the previous estimate.
                if gap > 0 {
                    state.grain = Some(gap);
                }
                state.last = quote;
            }
            None => {
                pair.feeds.insert(
                    update.feed,
                    FeedState {
                        last: quote,
                        grain: None,
                    },
                );
            }
        }
        let priority = &self.priority;
        let rank = |feed: &Id, state: &FeedState| {
            let listed = priority
                .iter()
                .position(|p| p == feed)
                .unwrap_or(usize::MAX);
            (listed, state.grain.unwrap_or(i64::MAX), *feed)
        };
        let live = |state: &FeedState| match state.grain {
            Some(grain) => time.0 - state.last.time.0 <= grain.saturating_mul(2),
            None => state.last.time == time,
        };
        let best = pair
            .feeds
            .iter()
            .filter(|(_, state)| live(state))
            .min_by_key(|(feed, state)| rank(feed, state))
            .map(|(_, state)| state.last)?;
        if pair.market == Some(best) {
            return None;
        }
        let changed = pair.market.map(|m| m.price) != Some(best.price);
        pair.market = Some(best);
        changed.then_some(best)
    }

    /// `update` in the unit its quote converts to, when a conversion applies: `None` when none
    /// does, an error when one does but no fresh rate is known at `time`. The price is
    /// `price * rate` rounded down at the price's own precision.
    pub fn convert(
        &self,
        update: &PriceUpdate,
        time: Timestamp,
        conversions: &[QuoteConversion],
    ) -> Option<Result<PriceUpdate, Unconverted>> {
        let conversion = conversions.iter().find(|c| c.from == update.quote)?;
        let Some(rate) = self.market(&conversion.from, &conversion.to) else {
            return Some(Err(Unconverted::NoRate));
        };
        if time.0 - rate.time.0 > conversion.max_age {
            return Some(Err(Unconverted::StaleRate));
        }
        let scale = U256::from(10u8).pow(U256::from(rate.price.decimals));
        // Prices and rates are far below 2^128: the product cannot leave 256 bits.
        let value = update.price.value.saturating_mul(rate.price.value) / scale;
        Some(Ok(PriceUpdate {
            quote: conversion.to,
            price: Fixed::new(value, update.price.decimals),
            ..*update
        }))
    }

    /// Seconds between `feed`'s last two answers for `asset` in `quote` (`None`: unknown feed,
    /// or one answer so far).
    pub fn grain(&self, asset: &Id, quote: &Id, feed: &Id) -> Option<i64> {
        self.pairs.get(&(*asset, *quote))?.feeds.get(feed)?.grain
    }

    /// The market price of `asset` in `quote`, if any feed has priced it.
    pub fn market(&self, asset: &Id, quote: &Id) -> Option<&Quote> {
        self.pairs.get(&(*asset, *quote))?.market.as_ref()
    }

    /// Writes the book in the canonical state encoding.
    pub fn encode(&self, out: &mut StateWriter) {
        out.count(self.priority.len());
        for feed in &self.priority {
            out.id(feed);
        }
        out.count(self.pairs.len());
        for ((asset, quote), pair) in &self.pairs {
            out.id(asset);
            out.id(quote);
            out.count(pair.feeds.len());
            for (feed, state) in &pair.feeds {
                out.id(feed);
                encode_quote(out, &state.last);
                out.option(state.grain.as_ref(), |out, grain| out.i64(*grain));
            }
            out.option(pair.market.as_ref(), encode_quote);
        }
    }

    /// Reads a book written by [`PriceBook::encode`].
    pub fn decode(input: &mut StateReader<'_>) -> Result<Self, EngineError> {
        let mut priority = Vec::new();
        for _ in 0..input.count()? {
            priority.push(input.id()?);
        }
        let mut pairs = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            let quote = input.id()?;
            let mut pair = Pair::default();
            for _ in 0..input.count()? {
                let feed = input.id()?;
                let last = decode_quote(input)?;
                let grain = input.option(|input| input.i64())?;
                pair.feeds.insert(feed, FeedState { last, grain });
            }
            pair.market = input.option(decode_quote)?;
            pairs.insert((asset, quote), pair);
        }
        Ok(Self { pairs, priority })
    }
}

fn encode_quote(out: &mut StateWriter, quote: &Quote) {
    out.fixed(&quote.price);
    out.time(quote.time);
    out.id(&quote.feed);
}

fn decode_quote(input: &mut StateReader<'_>) -> Result<Quote, EngineError> {
    Ok(Quote {
        price: input.fixed()?,
        time: input.time()?,
        feed: input.id()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(feed: &str, price: u64) -> PriceUpdate {
        PriceUpdate {
            asset: Id::name("WETH"),
            quote: Id::name("USD"),
            price: Fixed::new(U256::from(price), 0),
            feed: Id::name(feed),
            round: None,
        }
    }

    fn market(book: &PriceBook) -> u64 {
        let quote = book.market(&Id::name("WETH"), &Id::name("USD")).unwrap();
        quote.price.value.to::<u64>()
    }

    #[test]
    fn finest_live_feed_wins_and_hands_back_when_it_stops() {
        let mut book = PriceBook::new(Vec::new());
        book.record(&update("hourly", 100), Timestamp(0));
        book.record(&update("hourly", 101), Timestamp(3600));
        assert_eq!(market(&book), 101);
        // A 10-minute feed's first answer has no grain yet: hourly stays.
        assert!(book.record(&update("ten", 200), Timestamp(3700)).is_none());
        assert_eq!(market(&book), 101);
        // Its second answer shows a 600 s grain: it takes over.
        assert!(book.record(&update("ten", 201), Timestamp(4300)).is_some());
        assert_eq!(market(&book), 201);
        // An hourly answer while the 10-minute feed is live changes nothing.
        assert!(
            book.record(&update("hourly", 102), Timestamp(4500))
                .is_none()
        );
        assert_eq!(market(&book), 201);
        // The 10-minute feed stops; after 2 x 600 s of silence the hourly feed is the market.
        assert!(
            book.record(&update("hourly", 103), Timestamp(8100))
                .is_some()
        );
        assert_eq!(market(&book), 103);
    }

    #[test]
    fn usdt_prices_convert_through_the_latest_fresh_usdt_rate_only() {
        let conversions = [QuoteConversion::usdt_to_usd()];
        let bar = |price: u64| PriceUpdate {
            quote: Id::name("USDT"),
            price: Fixed::new(U256::from(price) * U256::from(10u64.pow(18)), 18),
            ..update("binance-klines", 0)
        };
        let mut book = PriceBook::new(Vec::new());
        // No USDT/USD price yet: not converted, never taken at par.
        assert_eq!(
            book.convert(&bar(2000), Timestamp(100), &conversions),
            Some(Err(Unconverted::NoRate))
        );
        // A USD price needs no conversion.
        assert_eq!(
            book.convert(&update("hourly", 1), Timestamp(100), &conversions),
            None
        );
        let rate = PriceUpdate {
            asset: Id::name("USDT"),
            quote: Id::name("USD"),
            price: Fixed::new(U256::from(9_951u64), 4),
            feed: Id::name("price-csv"),
            round: None,
        };
        book.record(&rate, Timestamp(200));
        let converted = book
            .convert(&bar(2000), Timestamp(300), &conversions)
            .unwrap()
            .unwrap();
        assert_eq!(converted.quote, Id::name("USD"));
        assert_eq!(converted.feed, Id::name("binance-klines"));
        assert_eq!(converted.price.to_string(), "1990.200000000000000000");
        // Two days and a second after the rate: stale.
        assert_eq!(
            book.convert(&bar(2000), Timestamp(200 + 2 * 86_400 + 1), &conversions),
            Some(Err(Unconverted::StaleRate))
        );
    }

    #[test]
    fn explicit_priority_overrides_grain_and_state_round_trips() {
        let mut book = PriceBook::new(vec![Id::name("hourly")]);
        book.record(&update("hourly", 100), Timestamp(0));
        book.record(&update("hourly", 101), Timestamp(3600));
        book.record(&update("ten", 200), Timestamp(3700));
        book.record(&update("ten", 201), Timestamp(4300));
        assert_eq!(market(&book), 101);

        let back = crate::state::round_trip(&book, PriceBook::encode, PriceBook::decode);
        assert_eq!(market(&back), 101);
    }
}
