//! The Oracle Security Module: Maker's collateral price, one `hop` late.
//!
//! `OSM.poke` (dss `osm.sol`) may run once per `hop`-aligned period: it publishes the value it
//! read at the previous poke (`cur = nxt`) and reads the medianizer anew (`nxt = peek()`).
//! Keepers poke right after each boundary, so during the period starting at boundary `B` the OSM
//! shows the market price as of `B - hop`. This module computes exactly that from the recorded
//! market prices, sampling the market at `B - hop` by the configured [`OsmSample`] rule. It keeps
//! only the market history a future poke can still need and never looks at prices recorded after
//! the event being replayed.

use std::collections::VecDeque;

use cascade_events::{Timestamp, U256};

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
}

impl OsmSample {
    /// The name used in run files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OsmSample::Step => "step",
            OsmSample::Interpolate => "interpolate",
        }
    }
}

/// One OSM: the market history it may still read and the value it currently publishes.
#[derive(Clone, Debug, Default)]
pub struct Osm {
    /// Market prices (wad), in time order.
    history: VecDeque<(Timestamp, U256)>,
    /// The hop period whose value `value` is (`floor(time / hop)`).
    epoch: Option<i64>,
    /// The published value (wad), if any.
    value: Option<U256>,
}

impl Osm {
    /// The value the OSM publishes now (wad USD per token).
    pub fn value(&self) -> Option<U256> {
        self.value
    }

    /// Records a new market price as of `time` (the feed's timestamp corrected for its known lag,
    /// so possibly earlier than prices already recorded: it is inserted in time order). With
    /// `hop == 0` (no delay) it is published at once; returns whether the published value
    /// changed.
    pub fn observe(&mut self, time: Timestamp, price: U256, hop: i64) -> bool {
        if hop <= 0 {
            self.history.clear();
            self.history.push_back((time, price));
            let changed = self.value != Some(price);
            self.value = Some(price);
            return changed;
        }
        let at = self.history.partition_point(|(t, _)| *t <= time);
        self.history.insert(at, (time, price));
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
                .is_some_and(|(t, _)| time.0 - t.0 > max_age);
            if stale && self.value.is_some() {
                self.value = None;
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
        let value = self.sample(read_at, sample, max_age);
        // Later pokes read at later times: only the last price at or before this reading time
        // and what follows it can still matter.
        let keep_from = self
            .history
            .iter()
            .rposition(|(t, _)| t.0 <= read_at)
            .unwrap_or(0);
        self.history.drain(..keep_from);
        let changed = self.value != value;
        self.value = value;
        changed
    }

    fn sample(&self, at: i64, sample: OsmSample, max_age: i64) -> Option<U256> {
        let before = self.history.iter().rposition(|(t, _)| t.0 <= at)?;
        let (t0, p0) = self.history[before];
        if at - t0.0 > max_age {
            return None;
        }
        let after = self.history.get(before + 1).copied();
        match (sample, after) {
            (OsmSample::Interpolate, Some((t1, p1))) if t1.0 > t0.0 => {
                let span = U256::from((t1.0 - t0.0) as u64);
                let elapsed = U256::from((at - t0.0) as u64);
                // |p1 - p0| * elapsed stays far below 2^256 for any real price and hop.
                Some(if p1 >= p0 {
                    p0 + (p1 - p0) * elapsed / span
                } else {
                    p0 - (p0 - p1) * elapsed / span
                })
            }
            _ => Some(p0),
        }
    }

    /// Writes the OSM in the canonical state encoding.
    pub fn encode(&self, out: &mut StateWriter) {
        out.count(self.history.len());
        for (time, price) in &self.history {
            out.time(*time);
            out.u256(*price);
        }
        match self.epoch {
            Some(epoch) => {
                out.bool(true);
                out.i64(epoch);
            }
            None => out.bool(false),
        }
        match self.value {
            Some(value) => {
                out.bool(true);
                out.u256(value);
            }
            None => out.bool(false),
        }
    }

    /// Reads an OSM written by [`Osm::encode`].
    pub fn decode(input: &mut StateReader<'_>) -> Result<Self, EngineError> {
        let mut history = VecDeque::new();
        for _ in 0..input.count()? {
            history.push_back((input.time()?, input.u256()?));
        }
        let epoch = if input.bool()? {
            Some(input.i64()?)
        } else {
            None
        };
        let value = if input.bool()? {
            Some(input.u256()?)
        } else {
            None
        };
        Ok(Self {
            history,
            epoch,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: i64 = 3600;
    const DAY: i64 = 86_400;

    fn p(value: u64) -> U256 {
        U256::from(value)
    }

    #[test]
    fn publishes_the_price_of_one_hop_ago() {
        let mut osm = Osm::default();
        osm.observe(Timestamp(100), p(2000), HOP);
        osm.observe(Timestamp(3000), p(1900), HOP);
        // First period after the prices: reads the market at 0 s, when nothing was known.
        assert!(!osm.advance(Timestamp(3500), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), None);
        // Period [3600, 7200) publishes the market as of 0..: still nothing at t = 0.
        assert!(!osm.advance(Timestamp(3700), HOP, OsmSample::Step, DAY));
        osm.observe(Timestamp(5000), p(1500), HOP);
        // Period [7200, 10800) publishes the market as of 3600: the 1900 print at 3000.
        assert!(osm.advance(Timestamp(7300), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(1900)));
        // Same period: no change, even after new prints.
        osm.observe(Timestamp(8000), p(1000), HOP);
        assert!(!osm.advance(Timestamp(9000), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(1900)));
        // Next period reads the market at 7200: the 1500 print at 5000.
        assert!(osm.advance(Timestamp(10800), HOP, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(1500)));
    }

    #[test]
    fn interpolates_between_the_prints_around_the_reading_time() {
        let mut osm = Osm::default();
        osm.observe(Timestamp(3000), p(2000), HOP);
        osm.observe(Timestamp(4200), p(1400), HOP);
        // Reading time 3600 lies half way between 3000 and 4200.
        assert!(osm.advance(Timestamp(7200), HOP, OsmSample::Interpolate, DAY));
        assert_eq!(osm.value(), Some(p(1700)));
        // Reading time 7200 lies between the prints at 4200 and 9000.
        osm.observe(Timestamp(9000), p(1200), HOP);
        assert!(osm.advance(Timestamp(10800), HOP, OsmSample::Interpolate, DAY));
        assert_eq!(osm.value(), Some(p(1400 - 200 * 3000 / 4800)));
        // Without a print after the reading time it falls back to the last one before.
        assert!(osm.advance(Timestamp(14400), HOP, OsmSample::Interpolate, DAY));
        assert_eq!(osm.value(), Some(p(1200)));
    }

    #[test]
    fn no_delay_publishes_at_once() {
        let mut osm = Osm::default();
        assert!(osm.observe(Timestamp(10), p(5), 0));
        assert!(!osm.advance(Timestamp(20_000), 0, OsmSample::Step, DAY));
        assert_eq!(osm.value(), Some(p(5)));
        assert!(!osm.observe(Timestamp(11), p(5), 0));
        // A day and a second without a new price: no value.
        assert!(osm.advance(Timestamp(11 + DAY + 1), 0, OsmSample::Step, DAY));
        assert_eq!(osm.value(), None);
    }

    #[test]
    fn a_price_older_than_the_limit_is_no_price() {
        let mut osm = Osm::default();
        osm.observe(Timestamp(0), p(300), HOP);
        // Months later, the OSM must not publish the last price seen before the gap.
        assert!(!osm.advance(Timestamp(90 * DAY), HOP, OsmSample::Interpolate, 2 * DAY));
        assert_eq!(osm.value(), None);
        osm.observe(Timestamp(90 * DAY + 10), p(600), HOP);
        assert!(osm.advance(
            Timestamp(90 * DAY + 2 * HOP),
            HOP,
            OsmSample::Interpolate,
            2 * DAY
        ));
        assert_eq!(osm.value(), Some(p(600)));
    }
}
