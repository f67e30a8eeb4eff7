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
//!
//! Recorded oracle values ([`RecordedPrices`], `--oracle`): where the log holds what a lending
//! protocol's own oracle returned (Aave: the Chainlink answers of the source `AaveOracle` reads
//! for the reserve; Compound: the `UniswapAnchoredView`'s `PriceUpdated`), the protocol reads
//! that instead of the market price the book picks.

use std::collections::BTreeMap;

use cascade_events::{Fixed, Id, OracleValueSource, PriceUpdate, Timestamp, U256};

use crate::EngineError;
use crate::protocol::registry::ReplayKind;
use crate::state::{StateReader, StateWriter};

/// Which oracle values the protocols' rules read: the oracles' own values recorded in the log,
/// the estimate from market prices, or the recorded value where the log holds one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OracleMode {
    /// Only recorded values; an asset (Maker: an ilk) without one has no price.
    Recorded,
    /// Only the estimate from market prices; recorded values are ignored.
    Estimated,
    /// The recorded value where the log holds one for the asset (Maker: from an ilk's first
    /// recorded value on), the estimate elsewhere.
    #[default]
    Auto,
}

impl OracleMode {
    /// The name used on the command line and in run files.
    pub fn name(self) -> &'static str {
        match self {
            OracleMode::Recorded => "recorded",
            OracleMode::Estimated => "estimated",
            OracleMode::Auto => "auto",
        }
    }
}

/// The mode a replay of `kind` reads oracle values under: a scenario reshapes market prices and
/// the oracles' recorded values cannot follow, so a counterfactual replay reads the estimate from
/// the prices the scenario publishes.
pub fn replay_oracle(mode: OracleMode, kind: ReplayKind) -> OracleMode {
    match kind {
        ReplayKind::Counterfactual => OracleMode::Estimated,
        ReplayKind::Historical => mode,
    }
}

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

    /// The latest answer `feed` gave for any pair (`None`: the feed never answered).
    pub fn latest_of(&self, feed: &Id) -> Option<Quote> {
        self.pairs
            .values()
            .filter_map(|pair| pair.feeds.get(feed))
            .map(|state| state.last)
            .max_by_key(|quote| quote.time)
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

/// A value an oracle returned, as the log recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedPrice {
    /// The value as the event gave it, when, and the contract that emitted it (the aggregator
    /// or proxy named as the source, the oracle view).
    pub quote: Quote,
    /// The event that recorded it.
    pub event: RecordedEvent,
}

/// Which event recorded an oracle's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordedEvent {
    /// A Chainlink `AnswerUpdated` of the source an `AaveOracle` reads for the asset.
    ChainlinkAnswer,
    /// An oracle's own value event (Compound's `PriceUpdated`).
    Value(OracleValueSource),
}

impl RecordedEvent {
    /// The name run files give it (`chainlink-answer`, `compound-price-updated`).
    pub fn name(self) -> &'static str {
        match self {
            RecordedEvent::ChainlinkAnswer => "chainlink-answer",
            RecordedEvent::Value(source) => source.name(),
        }
    }

    fn code(self) -> u8 {
        match self {
            RecordedEvent::ChainlinkAnswer => 0,
            RecordedEvent::Value(OracleValueSource::OsmLogValue) => 1,
            RecordedEvent::Value(OracleValueSource::SpotterPoke) => 2,
            RecordedEvent::Value(OracleValueSource::CompoundPriceUpdated) => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => RecordedEvent::ChainlinkAnswer,
            1 => RecordedEvent::Value(OracleValueSource::OsmLogValue),
            2 => RecordedEvent::Value(OracleValueSource::SpotterPoke),
            3 => RecordedEvent::Value(OracleValueSource::CompoundPriceUpdated),
            _ => return None,
        })
    }
}

/// What a lending protocol's oracle returns for each asset, as far as the log recorded it.
///
/// Aave: `AaveOracle.getAssetPrice(asset)` returns `assetsSources[asset].latestAnswer()`
/// (protocol-v2 `contracts/misc/AaveOracle.sol`); `AssetSourceUpdated(asset, source)` sets the
/// source, so from then on the source's latest Chainlink answer is the reserve's price, and a
/// source switch reads the new source's latest answer at once. Compound: the
/// `UniswapAnchoredView` stores each symbol's price and emits `PriceUpdated` with it, which the
/// Comptroller reads through `getUnderlyingPrice`.
#[derive(Clone, Debug, Default)]
pub struct RecordedPrices {
    mode: OracleMode,
    /// Per asset, the feed its oracle reads (Aave `assetsSources`).
    sources: BTreeMap<Id, Id>,
    /// Per asset, the value its oracle returns now, where recorded.
    current: BTreeMap<Id, RecordedPrice>,
}

impl RecordedPrices {
    /// Nothing recorded yet, read under `mode`.
    pub fn new(mode: OracleMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// Whether the log recorded nothing (the state then encodes as before they were modelled).
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.current.is_empty()
    }

    /// The mode the values are read under.
    pub fn mode(&self) -> OracleMode {
        self.mode
    }

    /// Whether the rules must ignore market prices of `asset`: always under `recorded`, under
    /// `auto` while the asset has a recorded value.
    pub fn overrides(&self, asset: &Id) -> bool {
        match self.mode {
            OracleMode::Recorded => true,
            OracleMode::Estimated => false,
            OracleMode::Auto => self.current.contains_key(asset),
        }
    }

    /// The recorded value the rules read for `asset` (never under `estimated`).
    pub fn reading(&self, asset: &Id) -> Option<&RecordedPrice> {
        match self.mode {
            OracleMode::Estimated => None,
            OracleMode::Recorded | OracleMode::Auto => self.current.get(asset),
        }
    }

    /// A feed answered: every asset whose source it is reads the answer from now on. Returns
    /// those assets.
    pub fn answer(&mut self, update: &PriceUpdate, time: Timestamp) -> Vec<Id> {
        if self.sources.is_empty() {
            return Vec::new();
        }
        let assets: Vec<Id> = self
            .sources
            .iter()
            .filter(|(_, source)| **source == update.feed)
            .map(|(asset, _)| *asset)
            .collect();
        for asset in &assets {
            self.current.insert(
                *asset,
                RecordedPrice {
                    quote: Quote {
                        price: update.price,
                        time,
                        feed: update.feed,
                    },
                    event: RecordedEvent::ChainlinkAnswer,
                },
            );
        }
        assets
    }

    /// `asset` reads `source` from now on; `latest` is that source's latest answer, when the
    /// log holds one (else the asset has no recorded value until the source answers).
    pub fn source_change(&mut self, asset: Id, source: Id, latest: Option<Quote>) {
        self.sources.insert(asset, source);
        match latest {
            Some(quote) => {
                self.current.insert(
                    asset,
                    RecordedPrice {
                        quote,
                        event: RecordedEvent::ChainlinkAnswer,
                    },
                );
            }
            None => {
                self.current.remove(&asset);
            }
        }
    }

    /// The oracle stored `quote` as `asset`'s price (Compound's view).
    pub fn value(&mut self, asset: Id, quote: Quote, source: OracleValueSource) {
        let event = RecordedEvent::Value(source);
        self.current.insert(asset, RecordedPrice { quote, event });
    }

    /// Writes the sources and values in the canonical state encoding.
    pub fn encode(&self, out: &mut StateWriter) {
        out.count(self.sources.len());
        for (asset, source) in &self.sources {
            out.id(asset);
            out.id(source);
        }
        out.count(self.current.len());
        for (asset, recorded) in &self.current {
            out.id(asset);
            encode_quote(out, &recorded.quote);
            out.u8(recorded.event.code());
        }
    }

    /// Reads what [`RecordedPrices::encode`] wrote, to be read under `self`'s mode.
    pub fn decode(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        let mut sources = BTreeMap::new();
        for _ in 0..input.count()? {
            sources.insert(input.id()?, input.id()?);
        }
        let mut current = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            let quote = decode_quote(input)?;
            let code = input.u8()?;
            let event = RecordedEvent::from_code(code)
                .ok_or_else(|| input.error(format!("recorded oracle event {code}")))?;
            current.insert(asset, RecordedPrice { quote, event });
        }
        self.sources = sources;
        self.current = current;
        Ok(())
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
    fn a_source_s_answers_price_its_assets_and_survive_a_checkpoint() {
        let usdc = Id::name("USDC");
        let proxy = Id::name("proxy");
        let answer = |price: u64| PriceUpdate {
            asset: usdc,
            quote: Id::name("ETH"),
            price: Fixed::new(U256::from(price), 0),
            feed: proxy,
            round: Some(1),
        };
        let mut book = PriceBook::new(Vec::new());
        book.record(&answer(5), Timestamp(10));
        let mut auto = RecordedPrices::new(OracleMode::Auto);
        assert!(auto.is_empty() && !auto.overrides(&usdc));
        // The source's answer before the switch is what the oracle reads at the switch.
        auto.source_change(usdc, proxy, book.latest_of(&proxy));
        assert_eq!(
            auto.reading(&usdc).map(|r| r.quote.time),
            Some(Timestamp(10))
        );
        assert!(auto.overrides(&usdc));
        assert_eq!(auto.answer(&answer(6), Timestamp(20)), vec![usdc]);
        let reading = *auto.reading(&usdc).unwrap();
        assert_eq!(
            (reading.quote.price.value, reading.event.name()),
            (U256::from(6u8), "chainlink-answer")
        );
        let mut back = RecordedPrices::new(OracleMode::Auto);
        let bytes = {
            let mut out = StateWriter::new();
            auto.encode(&mut out);
            out.into_bytes()
        };
        back.decode(&mut StateReader::new(&bytes)).unwrap();
        assert_eq!(back.reading(&usdc), Some(&reading));
        // A switch to a source the log never heard: no recorded value, the market applies.
        back.source_change(usdc, Id::name("other"), None);
        assert!(back.reading(&usdc).is_none() && !back.overrides(&usdc));
        // Estimated reads none; recorded ignores the market for every asset.
        assert!(
            RecordedPrices::new(OracleMode::Estimated)
                .reading(&usdc)
                .is_none()
        );
        assert!(RecordedPrices::new(OracleMode::Recorded).overrides(&usdc));
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
