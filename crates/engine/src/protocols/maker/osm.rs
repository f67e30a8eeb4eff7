//! The Oracle Security Module: Maker's collateral price, one `hop` late.
//!
//! `OSM.poke` (dss `osm.sol`) may run once per `hop`-aligned period: it publishes the value it
//! read at the previous poke (`cur = nxt`) and reads the medianizer anew (`nxt = peek()`).
//! Keepers poke right after each boundary, so during the period starting at boundary `B` the OSM
//! shows the market price as of `B - hop`. This module computes exactly that from the recorded
//! market prices, sampling the market at `B - hop` by the configured [`OsmSample`] rule. It keeps
//! only the market history a future poke can still need and never looks at prices recorded after
//! the event being replayed.
//!
//! What the OSM reads is the Median (dss `median.sol`: `peek` returns the value relayers last
//! `poke`d), not the market itself. [`OsmSample::Median`] models it: relayers push the market
//! price only when it has moved beyond their spread from the Median's value, or when the value is
//! older than their expiration (the relayer's `oracleSpread` and `oracleExpiration`, see
//! [`MedianRule`]); the OSM then reads the last pushed value. Each published value remembers the
//! market point it came from ([`Reading`]), so a verdict can say which feed priced it and how old
//! that price was.

use std::collections::VecDeque;

use cascade_events::{Id, Timestamp, U256};

use crate::EngineError;
use crate::state::{StateReader, StateWriter};

/// How the OSM's reading at its poke time is estimated from recorded market prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsmSample {
    /// The latest recorded price at or before the poke time (exact when the market feed is at
    /// least as fine as the blocks around the poke).
    Step,
    /// Linear interpolation between the last recorded price at or before the poke time and the
    /// first one after it (when already recorded): the better estimate for coarse feeds such as
    /// hourly prints at random minutes; falls back to [`OsmSample::Step`] without a later print.
    Interpolate,
    /// The Median's value at the poke time under the relayers' update rule ([`MedianRule`]),
    /// the Median being fed the recorded market prices as they arrive.
    Median(MedianRule),
}

/// When Maker's relayers update a Median (omnia `relayer.sh`: every `interval` seconds, a new
/// value is pushed when the market moved more than `oracleSpread` percent from the Median's value
/// or the value is older than `oracleExpiration` seconds).
///
/// The rule can only be followed on a market seen at least as often as the relayers look at it:
/// where the market price before a reading time comes from a coarser feed (hourly prints), the
/// OSM's value is estimated by interpolation instead, as [`OsmSample::Interpolate`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MedianRule {
    /// The spread, in basis points of the Median's value.
    pub spread_bps: u32,
    /// The heartbeat: a value this many seconds old is replaced by the market's.
    pub expiration: i64,
    /// How often relayers look at the market, seconds: feeds at most this coarse drive the
    /// modelled Median at a reading time.
    pub poll: i64,
}

impl MedianRule {
    /// The ETH/USD Median's settings in Maker's relayer configuration (`makerdao/oracles-v2`
    /// `omnia/config/relayer.conf`, pair `ETHUSD`, oracle `0x64DE91F5…0C85`: `oracleSpread`
    /// 1.0 percent, `oracleExpiration` 15500 s).
    pub const ETH_USD: MedianRule = MedianRule {
        spread_bps: 100,
        expiration: 15_500,
        poll: 60,
    };

    /// Whether a relayer seeing `market` at `time` pushes it over `current`, set at `since`.
    fn updates(&self, current: U256, since: Timestamp, market: U256, time: Timestamp) -> bool {
        let moved = current
            .abs_diff(market)
            .saturating_mul(U256::from(10_000u32));
        moved > current.saturating_mul(U256::from(self.spread_bps))
            || time.0 - since.0 >= self.expiration
    }
}

impl OsmSample {
    /// The name used in run files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OsmSample::Step => "step",
            OsmSample::Interpolate => "interpolate",
            OsmSample::Median(_) => "median",
        }
    }
}

/// One recorded market price as the OSM keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// When the market was at this price (the feed's time corrected for its lag).
    pub time: Timestamp,
    /// Wad USD per token.
    pub price: U256,
    /// The feed that said so.
    pub feed: Id,
    /// The feed's grain when it said so (seconds between its last two answers; `None` for its
    /// first).
    pub grain: Option<i64>,
}

/// Where the OSM's published value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The market point the value is (or, interpolated, starts from).
    pub point: Point,
    /// When the OSM read the market (its reading time, one `hop` before publishing).
    pub read_at: Timestamp,
}

/// One OSM: the market history it may still read and the value it currently publishes.
#[derive(Clone, Debug, Default)]
pub struct Osm {
    /// Market prices, in time order.
    history: VecDeque<Point>,
    /// The hop period whose value `value` is (`floor(time / hop)`).
    epoch: Option<i64>,
    /// The published value (wad), if any.
    value: Option<U256>,
    /// Where `value` came from.
    reading: Option<Reading>,
    /// The modelled Median's value (under [`OsmSample::Median`]) and the time up to which
    /// market points have been fed to it.
    median: Option<Point>,
    median_through: Option<Timestamp>,
}

impl Osm {
    /// The value the OSM publishes now (wad USD per token).
    pub fn value(&self) -> Option<U256> {
        self.value
    }

    /// Where the published value came from.
    pub fn reading(&self) -> Option<Reading> {
        self.reading
    }

    /// Records a new market price as of `time` (the feed's timestamp corrected for its known lag,
    /// so possibly earlier than prices already recorded: it is inserted in time order). With
    /// `hop == 0` (no delay) it is published at once; returns whether the published value
    /// changed.
    pub fn observe(&mut self, point: Point, hop: i64) -> bool {
        if hop <= 0 {
            self.history.clear();
            self.history.push_back(point);
            let changed = self.value != Some(point.price);
            self.value = Some(point.price);
            self.reading = Some(Reading {
                point,
                read_at: point.time,
            });
            return changed;
        }
        let at = self.history.partition_point(|p| p.time <= point.time);
        self.history.insert(at, point);
        false
    }

    /// Pokes the OSM if `time` lies in a later hop period than its current value; returns
    /// whether the published value changed. A reading whose latest market price is older than
    /// `max_age` seconds has no value: the real OSM always reads a live medianizer, so a gap in
    /// the recorded prices must not pass for a price.
    pub fn advance(&mut self, time: Timestamp, hop: i64, sample: OsmSample, max_age: i64) -> bool {
        if hop <= 0 {
            let stale = self
                .history
                .back()
                .is_some_and(|p| time.0 - p.time.0 > max_age);
            if stale && self.value.is_some() {
                self.value = None;
                self.reading = None;
                return true;
            }
            return false;
        }
        let epoch = time.0.div_euclid(hop);
        if self.epoch == Some(epoch) {
            return false;
        }
        self.epoch = Some(epoch);
        let read_at = (epoch - 1).saturating_mul(hop);
        if let OsmSample::Median(rule) = sample {
            self.feed_median(read_at, rule);
        }
        let sampled = self.sample(read_at, sample, max_age);
        // Later pokes read at later times: only the last price at or before this reading time
        // and what follows it can still matter.
        let keep_from = self
            .history
            .iter()
            .rposition(|p| p.time.0 <= read_at)
            .unwrap_or(0);
        self.history.drain(..keep_from);
        let value = sampled.map(|(value, _)| value);
        self.reading = sampled.map(|(_, point)| Reading {
            point,
            read_at: Timestamp(read_at),
        });
        let changed = self.value != value;
        self.value = value;
        changed
    }

    /// Feeds the Median the market points up to `until` it has not seen yet, in time order,
    /// as relayers watching the market would.
    fn feed_median(&mut self, until: i64, rule: MedianRule) {
        let from = self.median_through;
        for point in self
            .history
            .iter()
            .filter(|p| from.is_none_or(|f| p.time > f) && p.time.0 <= until)
        {
            let update = match self.median {
                Some(current) => rule.updates(current.price, current.time, point.price, point.time),
                None => true,
            };
            if update {
                self.median = Some(*point);
            }
        }
        self.median_through = Some(Timestamp(until));
    }

    /// The value read at `at` and the market point it comes from (for an interpolation, the
    /// one before `at`).
    fn sample(&self, at: i64, sample: OsmSample, max_age: i64) -> Option<(U256, Point)> {
        let before = self.history.iter().rposition(|p| p.time.0 <= at)?;
        let first = self.history[before];
        // The market itself must be live at the reading time, whatever the Median holds.
        if at - first.time.0 > max_age {
            return None;
        }
        let after = self.history.get(before + 1).copied();
        match (sample, after) {
            (OsmSample::Median(rule), _) if first.grain.is_some_and(|g| g <= rule.poll) => {
                self.median.map(|m| (m.price, m))
            }
            (OsmSample::Interpolate | OsmSample::Median(_), Some(next))
                if next.time > first.time =>
            {
                let (p0, p1) = (first.price, next.price);
                let span = U256::from((next.time.0 - first.time.0) as u64);
                let elapsed = U256::from((at - first.time.0) as u64);
                // |p1 - p0| * elapsed stays far below 2^256 for any real price and hop.
                let value = if p1 >= p0 {
                    p0 + (p1 - p0) * elapsed / span
                } else {
                    p0 - (p0 - p1) * elapsed / span
                };
                Some((value, first))
            }
            _ => Some((first.price, first)),
        }
    }

    /// Writes the OSM in the canonical state encoding.
    pub fn encode(&self, out: &mut StateWriter) {
        out.count(self.history.len());
        for point in &self.history {
            encode_point(out, point);
        }
        out.option(self.epoch.as_ref(), |out, epoch| out.i64(*epoch));
        out.option(self.value.as_ref(), |out, value| out.u256(*value));
        out.option(self.reading.as_ref(), |out, reading| {
            encode_point(out, &reading.point);
            out.time(reading.read_at);
        });
        out.option(self.median.as_ref(), encode_point);
        out.option(self.median_through.as_ref(), |out, time| out.time(*time));
    }

    /// Reads an OSM written by [`Osm::encode`].
    pub fn decode(input: &mut StateReader<'_>) -> Result<Self, EngineError> {
        let mut history = VecDeque::new();
        for _ in 0..input.count()? {
            history.push_back(decode_point(input)?);
        }
        Ok(Self {
            history,
            epoch: input.option(|input| input.i64())?,
            value: input.option(|input| input.u256())?,
            reading: input.option(|input| {
                Ok(Reading {
                    point: decode_point(input)?,
                    read_at: input.time()?,
                })
            })?,
            median: input.option(decode_point)?,
            median_through: input.option(|input| input.time())?,
        })
    }
}

fn encode_point(out: &mut StateWriter, point: &Point) {
    out.time(point.time);
    out.u256(point.price);
    out.id(&point.feed);
    out.option(point.grain.as_ref(), |out, grain| out.i64(*grain));
}

fn decode_point(input: &mut StateReader<'_>) -> Result<Point, EngineError> {
    Ok(Point {
        time: input.time()?,
        price: input.u256()?,
        feed: input.id()?,
        grain: input.option(|input| input.i64())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: i64 = 3600;
    const DAY: i64 = 86_400;

    fn p(value: u64) -> U256 {
        U256::from(value)
    }

    fn pt(time: i64, price: u64) -> Point {
        Point {
            time: Timestamp(time),
            price: p(price),
            feed: Id::name("feed"),
            grain: Some(60),
        }
    }

    #[test]
    fn publishes_the_price_of_one_hop_ago() {
        let mut osm = Osm::default();
        osm.observe(pt(100, 2000), HOP);
        osm.observe(pt(3000, 1900), HOP);
        // First period after the prices: reads the market at 0 s, when nothing was known.
        assert!(!osm.advance(Timestamp(3500), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), None);
        // Period [3600, 7200) publishes the market as of 0..: still nothing at t = 0.
        assert!(!osm.advance(Timestamp(3700), HOP, OsmSample::Step, DAY));
        osm.observe(pt(5000, 1500), HOP);
        // Period [7200, 10800) publishes the market as of 3600: the 1900 print at 3000.
        assert!(osm.advance(Timestamp(7300), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(1900)));
        // Same period: no change, even after new prints.
        osm.observe(pt(8000, 1000), HOP);
        assert!(!osm.advance(Timestamp(9000), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(1900)));
        // Next period reads the market at 7200: the 1500 print at 5000.
        assert!(osm.advance(Timestamp(10800), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(1500)));
    }

    #[test]
    fn interpolates_between_the_prints_around_the_reading_time() {
        let mut osm = Osm::default();
        osm.observe(pt(3000, 2000), HOP);
        osm.observe(pt(4200, 1400), HOP);
        // Reading time 3600 lies half way between 3000 and 4200.
        assert!(osm.advance(Timestamp(7200), HOP, OsmSample::Interpolate, DAY));
        assert_eq!(osm.value(), Some(p(1700)));
        // Reading time 7200 lies between the prints at 4200 and 9000.
        osm.observe(pt(9000, 1200), HOP);
        assert!(osm.advance(Timestamp(10800), HOP, OsmSample::Interpolate, DAY));
        assert_eq!(osm.value(), Some(p(1400 - 200 * 3000 / 4800)));
        // Without a print after the reading time it falls back to the last one before.
        assert!(osm.advance(Timestamp(14400), HOP, OsmSample::Interpolate, DAY));
        assert_eq!(osm.value(), Some(p(1200)));
    }

    #[test]
    fn no_delay_publishes_at_once() {
        let mut osm = Osm::default();
        assert!(osm.observe(pt(10, 5), 0));
        assert!(!osm.advance(Timestamp(20_000), 0, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(5)));
        assert!(!osm.observe(pt(11, 5), 0));
        // A day and a second without a new price: no value.
        assert!(osm.advance(Timestamp(11 + DAY + 1), 0, OsmSample::Step, DAY));
        assert_eq!(osm.value(), None);
    }

    #[test]
    fn a_price_older_than_the_limit_is_no_price() {
        let mut osm = Osm::default();
        osm.observe(pt(0, 300), HOP);
        // Months later, the OSM must not publish the last price seen before the gap.
        assert!(!osm.advance(Timestamp(90 * DAY), HOP, OsmSample::Interpolate, 2 * DAY));
        assert_eq!(osm.value(), None);
        osm.observe(pt(90 * DAY + 10, 600), HOP);
        assert!(osm.advance(
            Timestamp(90 * DAY + 2 * HOP),
            HOP,
            OsmSample::Interpolate,
            2 * DAY
        ));
        assert_eq!(osm.value(), Some(p(600)));
    }

    #[test]
    fn the_median_moves_only_beyond_the_spread_or_after_the_heartbeat() {
        let rule = OsmSample::Median(MedianRule {
            spread_bps: 100,
            expiration: 3 * HOP,
            poll: 60,
        });
        let mut osm = Osm::default();
        // 2000 sets the Median; 2015 (0.75%) and 1985 stay inside the 1% spread.
        for (time, price) in [(100, 2000), (1000, 2015), (2000, 1985), (3000, 2010)] {
            osm.observe(pt(time, price), HOP);
        }
        assert!(osm.advance(Timestamp(7200), HOP, rule, DAY));
        assert_eq!(osm.value(), Some(p(2000)));
        let reading = osm.reading().unwrap();
        assert_eq!(
            (reading.point.time, reading.read_at),
            (Timestamp(100), Timestamp(3600))
        );
        // 2021 is 1.05% above 2000: pushed. 2030 is within 1% of 2021: not.
        osm.observe(pt(4000, 2021), HOP);
        osm.observe(pt(5000, 2030), HOP);
        assert!(osm.advance(Timestamp(10_800), HOP, rule, DAY));
        assert_eq!(osm.value(), Some(p(2021)));
        // Three hops after 4000 the heartbeat pushes the market as it is, moved or not.
        osm.observe(pt(15_000, 2025), HOP);
        assert!(!osm.advance(Timestamp(18_000), HOP, rule, DAY));
        assert_eq!(osm.value(), Some(p(2021)));
        assert!(osm.advance(Timestamp(18_000 + HOP), HOP, rule, DAY));
        assert_eq!(osm.value(), Some(p(2025)));

        // The state, Median included, round-trips.
        crate::state::round_trip(&osm, Osm::encode, Osm::decode);

        // A reading whose market comes from a coarse feed is interpolated instead: hourly
        // prints say nothing of when relayers would have pushed.
        let hourly = |time: i64, price: u64| Point {
            grain: Some(HOP),
            ..pt(time, price)
        };
        osm.observe(hourly(24_000, 2100), HOP);
        osm.observe(hourly(27_600, 2400), HOP);
        assert!(osm.advance(Timestamp(28_800), HOP, rule, DAY));
        assert_eq!(osm.value(), Some(p(2100 + 300 * 1200 / 3600)));
    }
}
