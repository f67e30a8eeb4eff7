//! Health over time: every market's accounts by health factor at the end of each period of
//! the window (after its last event), the run file's `health_over_time` (`docs/run-format.md`) and the report's heat
//! map.
//!
//! A period is a UTC hour. A long window would make thousands of samples (and each sample scans
//! every account of the market), so the sampler keeps at most [`MAX_PERIODS`]: when one more
//! would be needed it doubles the period and keeps, of each new period, the sample of its first
//! old one. The result depends only on the events' times, so it is the same whichever way the
//! replay got its state.

use cascade_events::Timestamp;

use crate::protocol::HealthDistribution;
use crate::run::{HealthSample, LeverageSample, health_buckets};

/// The shortest period, seconds: an hour.
pub const HOUR: i64 = 3600;

/// Most periods a run keeps: three weeks of hours.
pub const MAX_PERIODS: usize = 504;

/// Collects [`HealthSample`]s period by period.
#[derive(Clone, Debug)]
pub struct HealthSampler {
    period_seconds: i64,
    last_period: Option<i64>,
    /// Periods begun, in order.
    taken: Vec<i64>,
    samples: Vec<HealthSample>,
    leverage: Vec<LeverageSample>,
}

impl Default for HealthSampler {
    fn default() -> Self {
        Self {
            period_seconds: HOUR,
            last_period: None,
            taken: Vec::new(),
            samples: Vec::new(),
            leverage: Vec::new(),
        }
    }
}

impl HealthSampler {
    /// Whether an event at `next` leaves the period of the last event, at `now`.
    pub fn ends(&self, now: Timestamp, next: Timestamp) -> bool {
        now.0.div_euclid(self.period_seconds) != next.0.div_euclid(self.period_seconds)
    }

    /// The start of the period of `time` (the time of the period's last event) when that period
    /// is later than the last one sampled: the caller then takes the distributions and passes
    /// each to [`HealthSampler::push`].
    pub fn begin(&mut self, time: Timestamp) -> Option<i64> {
        let mut period = time.0.div_euclid(self.period_seconds) * self.period_seconds;
        if self.last_period.is_some_and(|last| period <= last) {
            return None;
        }
        if self.taken.len() >= MAX_PERIODS {
            self.coarsen();
            period = time.0.div_euclid(self.period_seconds) * self.period_seconds;
            if self.last_period.is_some_and(|last| period <= last) {
                return None;
            }
        }
        self.taken.push(period);
        self.last_period = Some(period);
        Some(period)
    }

    /// Adds one market's distribution, taken at event `seq`, `time`, in the period `period`
    /// returned by [`HealthSampler::begin`]. Empty distributions are left out.
    pub fn push(
        &mut self,
        period: i64,
        seq: u64,
        time: Timestamp,
        distribution: &HealthDistribution,
    ) {
        if distribution.is_empty() {
            return;
        }
        self.samples.push(HealthSample {
            period: Timestamp(period),
            period_seconds: self.period_seconds,
            seq,
            time,
            protocol: distribution.protocol.name().to_owned(),
            market: distribution.market.to_string(),
            buckets: health_buckets(distribution),
            accounts_without_debt: distribution.without_debt,
            accounts_unpriced: distribution.unpriced,
        });
    }

    /// Adds the leverage samples of period `period` (see [`crate::leverage::record`]).
    pub fn push_leverage(&mut self, samples: Vec<LeverageSample>) {
        self.leverage.extend(samples);
    }

    /// The current period length, seconds.
    pub fn period_seconds(&self) -> i64 {
        self.period_seconds
    }

    /// Doubles the period: of the samples falling in one new period, those of the first old
    /// period in it stay (relabelled), the others go.
    fn coarsen(&mut self) {
        self.period_seconds *= 2;
        let length = self.period_seconds;
        let coarse = |period: i64| period.div_euclid(length) * length;
        // The first old period of each new one, which keeps its samples.
        let mut kept: Vec<i64> = Vec::new();
        for period in &self.taken {
            if kept
                .last()
                .is_none_or(|last| coarse(*last) != coarse(*period))
            {
                kept.push(*period);
            }
        }
        let keeps = |period: Timestamp| kept.binary_search(&period.0).is_ok();
        self.samples.retain_mut(|sample| {
            let keep = keeps(sample.period);
            sample.period = Timestamp(coarse(sample.period.0));
            sample.period_seconds = length;
            keep
        });
        self.leverage.retain_mut(|sample| {
            let keep = keeps(sample.period);
            sample.period = Timestamp(coarse(sample.period.0));
            sample.period_seconds = length;
            keep
        });
        self.taken = kept.into_iter().map(coarse).collect();
        self.last_period = self.last_period.map(coarse);
    }

    /// The health samples by period, protocol and market, and the leverage samples by period
    /// (in the order pushed within one).
    pub fn finish(mut self) -> (Vec<HealthSample>, Vec<LeverageSample>) {
        self.samples.sort_by(|a, b| {
            (a.period, &a.protocol, &a.market).cmp(&(b.period, &b.protocol, &b.market))
        });
        self.leverage.sort_by_key(|sample| sample.period);
        (self.samples, self.leverage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_events::{Id, Protocol, U256};

    fn distribution(accounts: u64) -> HealthDistribution {
        let mut distribution = HealthDistribution::new(Protocol::ALL[0], Id::name("ETH-B"), 18);
        for _ in 0..accounts {
            distribution.add(U256::from(1_200_000_000_000_000_000u64), U256::from(5u8));
        }
        distribution
    }

    #[test]
    fn one_sample_per_hour_at_the_last_event_of_the_hour() {
        let mut sampler = HealthSampler::default();
        // Events at 10:00:30, 10:59:59, 11:00:00, 13:20:00, as the replay sees them: a sample
        // when the next event leaves the hour, and one at the end.
        let times = [36_030, 39_599, 39_600, 48_000];
        let mut taken = Vec::new();
        for (seq, pair) in times.windows(2).enumerate() {
            let (now, next) = (Timestamp(pair[0]), Timestamp(pair[1]));
            if sampler.ends(now, next) {
                let period = sampler.begin(now).unwrap();
                taken.push((period, seq));
                sampler.push(period, seq as u64, now, &distribution(2));
            }
        }
        let period = sampler.begin(Timestamp(48_000)).unwrap();
        sampler.push(period, 3, Timestamp(48_000), &distribution(2));
        // 10:00 ends at 10:59:59 (seq 1), 11:00 at 11:00:00 (seq 2), 13:00 at the end.
        assert_eq!(taken, [(36_000, 1), (39_600, 2)]);
        assert_eq!(period, 46_800);
        assert!(sampler.begin(Timestamp(48_001)).is_none(), "13:00 is taken");
        let (samples, _) = sampler.finish();
        assert_eq!(samples.len(), 3);
        assert_eq!((samples[1].seq, samples[1].time), (2, Timestamp(39_600)));
        // Every bucket is listed; both accounts are in 1.1-1.25.
        assert_eq!(samples[0].buckets.len(), 8);
        assert_eq!(samples[0].buckets[3].accounts, 2);
        assert_eq!(samples[0].buckets[3].range, "1.1-1.25");
    }

    #[test]
    fn a_long_window_doubles_the_period_and_keeps_the_first_sample_of_each() {
        let mut sampler = HealthSampler::default();
        // One event per hour for MAX_PERIODS + 1 hours: the last one forces 2-hour periods.
        for hour in 0..=MAX_PERIODS as i64 {
            let time = Timestamp(hour * HOUR + 5);
            if let Some(period) = sampler.begin(time) {
                sampler.push(period, hour as u64, time, &distribution(1));
            }
        }
        let (samples, _) = sampler.finish();
        // 505 hours in 2-hour periods: 253 periods (the last holds hour 504 alone).
        assert_eq!(samples.len(), MAX_PERIODS / 2 + 1);
        assert!(samples.iter().all(|s| s.period_seconds == 2 * HOUR));
        // Each period keeps the sample of its even hour: seq = hour.
        assert_eq!(
            (samples[1].period, samples[1].seq),
            (Timestamp(2 * HOUR), 2)
        );
        let last = samples.last().unwrap();
        assert_eq!((last.period, last.seq), (Timestamp(504 * HOUR), 504));
    }

    #[test]
    fn empty_markets_leave_no_sample() {
        let mut sampler = HealthSampler::default();
        let period = sampler.begin(Timestamp(HOUR)).unwrap();
        sampler.push(period, 1, Timestamp(HOUR), &distribution(0));
        assert!(sampler.finish().0.is_empty());
    }
}
