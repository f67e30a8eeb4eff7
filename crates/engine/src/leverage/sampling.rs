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
use crate::run::{HealthSample, health_buckets};

/// The shortest period, seconds: an hour.
pub const HOUR: i64 = 3600;

/// Most periods a run keeps: three weeks of hours.
pub const MAX_PERIODS: usize = 504;

/// Collects [`HealthSample`]s period by period.
#[derive(Clone, Debug)]
pub struct HealthSampler {
    period_seconds: i64,
    last_period: Option<i64>,
    periods: usize,
    samples: Vec<HealthSample>,
}

impl Default for HealthSampler {
    fn default() -> Self {
        Self {
            period_seconds: HOUR,
            last_period: None,
            periods: 0,
            samples: Vec::new(),
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
        if self.periods >= MAX_PERIODS {
            self.coarsen();
            period = time.0.div_euclid(self.period_seconds) * self.period_seconds;
            if self.last_period.is_some_and(|last| period <= last) {
                return None;
            }
        }
        self.periods += 1;
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

    /// Doubles the period: of the samples falling in one new period, those of the first old
    /// period in it stay (relabelled), the others go.
    fn coarsen(&mut self) {
        self.period_seconds *= 2;
        let length = self.period_seconds;
        let mut kept_from: Option<(i64, i64)> = None;
        let mut periods = 0;
        self.samples.retain_mut(|sample| {
            let coarse = sample.period.0.div_euclid(length) * length;
            let keep = match kept_from {
                Some((group, first)) if group == coarse => sample.period.0 == first,
                _ => {
                    kept_from = Some((coarse, sample.period.0));
                    periods += 1;
                    true
                }
            };
            if keep {
                sample.period = Timestamp(coarse);
                sample.period_seconds = length;
            }
            keep
        });
        // Periods whose every market was empty left no sample; count what the kept ones span.
        self.periods = periods;
        self.last_period = self
            .last_period
            .map(|last| last.div_euclid(length) * length);
    }

    /// The samples, by period, protocol and market.
    pub fn finish(mut self) -> Vec<HealthSample> {
        self.samples.sort_by(|a, b| {
            (a.period, &a.protocol, &a.market).cmp(&(b.period, &b.protocol, &b.market))
        });
        self.samples
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
        let samples = sampler.finish();
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
        let samples = sampler.finish();
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
        assert!(sampler.finish().is_empty());
    }
}
