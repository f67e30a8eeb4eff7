//! Health over time: every market's accounts by health factor at the end of each period of
//! the window (after its last event), the run file's `health_over_time` (`docs/run-format.md`)
//! and the report's heat map.
//!
//! Periods are UTC hours while the window is short. A long window would make thousands of
//! samples (each scans every account of the market), so the sampler keeps at most
//! [`MAX_PERIODS`] periods on a coarse grid: when one more would be needed it doubles the grid and
//! keeps the samples that end on the new grid (each then covers from the previous sample's end).
//! Where things happen it keeps the hour: an hour in which a liquidation was recorded or
//! simulated or an account became liquidatable, and the [`AFTERMATH_HOURS`] hours after one, are
//! sampled at their end whatever the grid, at most [`MAX_ACTIVE_HOURS`] of them per run: beyond
//! that the active hours of the most activity stay (an aftermath hour weighs what its active hour
//! did; ties: the later goes), and the others fall back to the grid. So a crash in a three-year log keeps its hours
//! while the quiet months between crashes are a few long periods; periods never overlap, and each
//! sample says its own start and length. The result depends only on the events' times and on
//! what the replay found (liquidations, newly liquidatable accounts), never on how the replay got
//! its state.

use cascade_events::Timestamp;

use crate::protocol::HealthDistribution;
use crate::run::{HealthSample, LeverageSample, health_buckets};

/// The shortest period, seconds: an hour.
pub const HOUR: i64 = 3600;

/// Most periods a run keeps on the coarse grid: three weeks of hours.
pub const MAX_PERIODS: usize = 504;

/// Most active hours (and their aftermath) a run keeps hourly: three weeks of hours.
pub const MAX_ACTIVE_HOURS: usize = 504;

/// Hours after an active hour that are still sampled hourly.
pub const AFTERMATH_HOURS: i64 = 6;

/// One period sampled: `[start, end)`, and for an active hour (kept whatever the grid) its
/// weight: the activity of the hour that made it active.
#[derive(Clone, Copy, Debug)]
struct Taken {
    start: i64,
    end: i64,
    weight: Option<u64>,
}

/// Collects [`HealthSample`]s period by period.
#[derive(Clone, Debug)]
pub struct HealthSampler {
    /// The coarse grid, seconds (an hour, doubled as the window grows).
    grid: i64,
    /// Periods sampled, in order.
    taken: Vec<Taken>,
    /// The hour (index since the epoch) of the last activity, and how much there was in it.
    last_active_hour: Option<(i64, u64)>,
    /// Liquidations and newly liquidatable accounts seen at the last period end.
    activity_seen: u64,
    /// The start of the first hour sampled: no period starts before it.
    first_hour: Option<i64>,
    samples: Vec<HealthSample>,
    leverage: Vec<LeverageSample>,
}

impl Default for HealthSampler {
    fn default() -> Self {
        Self {
            grid: HOUR,
            taken: Vec::new(),
            last_active_hour: None,
            activity_seen: 0,
            first_hour: None,
            samples: Vec::new(),
            leverage: Vec::new(),
        }
    }
}

/// The period a sample covers: its start (a whole UTC hour) and its length, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Start, seconds since the epoch.
    pub start: i64,
    /// Length, seconds.
    pub seconds: i64,
}

impl HealthSampler {
    /// Whether an event at `next` leaves the hour of the last event, at `now`: the replay then
    /// asks [`HealthSampler::begin`] whether that hour ends a period.
    pub fn ends(&self, now: Timestamp, next: Timestamp) -> bool {
        now.0.div_euclid(HOUR) != next.0.div_euclid(HOUR)
    }

    /// At the end of the hour of `now` (the time of its last event; `next` is the next event's
    /// time, `None` at the end of the window), with `activity` the run's count so far of
    /// liquidations and newly liquidatable accounts: the period that ends here when one does
    /// (the caller then takes the distributions and passes each to [`HealthSampler::push`]).
    pub fn begin(
        &mut self,
        now: Timestamp,
        next: Option<Timestamp>,
        activity: u64,
    ) -> Option<Period> {
        let hour = now.0.div_euclid(HOUR);
        if activity > self.activity_seen {
            self.last_active_hour = Some((hour, activity - self.activity_seen));
            self.activity_seen = activity;
        }
        let hour_start = hour * HOUR;
        self.first_hour.get_or_insert(hour_start);
        if self.taken.last().is_some_and(|t| t.end > hour_start) {
            return None;
        }
        if let Some((last, weight)) = self.last_active_hour
            && hour - last <= AFTERMATH_HOURS
            && self.room_for_an_active_hour(weight)
        {
            return Some(self.take(hour_start + HOUR, Some(weight)));
        }
        loop {
            let cell_end = (now.0.div_euclid(self.grid) + 1) * self.grid;
            if next.is_some_and(|next| next.0 < cell_end) {
                return None;
            }
            if self.taken.iter().filter(|t| t.weight.is_none()).count() < MAX_PERIODS {
                return Some(self.take(cell_end, None));
            }
            self.coarsen();
        }
    }

    /// Whether an active hour of `weight` can be kept: there is room, or a kept active hour of
    /// less weight (the earliest of the least) makes room by going (its samples with it).
    fn room_for_an_active_hour(&mut self, weight: u64) -> bool {
        let active = self.taken.iter().filter(|t| t.weight.is_some()).count();
        if active < MAX_ACTIVE_HOURS {
            return true;
        }
        let Some((index, least)) = self
            .taken
            .iter()
            .enumerate()
            .filter_map(|(index, t)| Some((index, t.weight?)))
            .min_by_key(|(index, weight)| (*weight, *index))
        else {
            return false;
        };
        if least >= weight {
            return false;
        }
        let gone = self.taken.remove(index);
        self.samples
            .retain(|s| s.period.0 + s.period_seconds != gone.end);
        self.leverage
            .retain(|s| s.period.0 + s.period_seconds != gone.end);
        // The period after it now starts where the one before it ended.
        if let Some(after) = self.taken.get(index).copied() {
            let start = self.start_of(index.checked_sub(1).map(|i| &self.taken[i]), after.end);
            self.taken[index].start = start;
            let relabel = |period: &mut Timestamp, seconds: &mut i64| {
                if period.0 + *seconds == after.end {
                    *period = Timestamp(start);
                    *seconds = after.end - start;
                }
            };
            for sample in &mut self.samples {
                relabel(&mut sample.period, &mut sample.period_seconds);
            }
            for sample in &mut self.leverage {
                relabel(&mut sample.period, &mut sample.period_seconds);
            }
        }
        true
    }

    /// Takes the period ending at `end`: from the end of the period before it, at most one grid
    /// length back.
    fn take(&mut self, end: i64, weight: Option<u64>) -> Period {
        let start = self.start_of(self.taken.last(), end);
        self.taken.push(Taken { start, end, weight });
        Period {
            start,
            seconds: end - start,
        }
    }

    fn start_of(&self, previous: Option<&Taken>, end: i64) -> i64 {
        let earliest = end - self.grid;
        previous.map_or(earliest.max(self.first_hour.unwrap_or(earliest)), |p| {
            p.end.max(earliest)
        })
    }

    /// Adds one market's distribution, taken at event `seq`, `time`, for the period returned by
    /// [`HealthSampler::begin`]. Empty distributions are left out.
    pub fn push(
        &mut self,
        period: Period,
        seq: u64,
        time: Timestamp,
        distribution: &HealthDistribution,
    ) {
        if distribution.is_empty() {
            return;
        }
        self.samples.push(HealthSample {
            period: Timestamp(period.start),
            period_seconds: period.seconds,
            seq,
            time,
            protocol: distribution.protocol.name().to_owned(),
            market: distribution.market.to_string(),
            buckets: health_buckets(distribution),
            accounts_without_debt: distribution.without_debt,
            accounts_unpriced: distribution.unpriced,
        });
    }

    /// Adds the leverage samples of one period (see [`crate::leverage::record`]).
    pub fn push_leverage(&mut self, samples: Vec<LeverageSample>) {
        self.leverage.extend(samples);
    }

    /// Doubles the grid: of the grid's periods, those ending on the new grid stay (and every
    /// active hour), each then starting where the period before it ends, at most one new grid
    /// length back; the others go, with their samples.
    fn coarsen(&mut self) {
        self.grid *= 2;
        let mut kept: Vec<Taken> = Vec::with_capacity(self.taken.len());
        for taken in &self.taken {
            if taken.weight.is_none() && taken.end.rem_euclid(self.grid) != 0 {
                continue;
            }
            let start = self.start_of(kept.last(), taken.end);
            kept.push(Taken { start, ..*taken });
        }
        // Samples are found by their period's end, which coarsening never moves.
        let lookup = |start: i64, seconds: i64| {
            let end = start + seconds;
            kept.binary_search_by_key(&end, |t| t.end)
                .ok()
                .map(|index| (kept[index].start, kept[index].end - kept[index].start))
        };
        let relabel = |period: &mut Timestamp, seconds: &mut i64| match lookup(period.0, *seconds) {
            Some((start, length)) => {
                *period = Timestamp(start);
                *seconds = length;
                true
            }
            None => false,
        };
        self.samples
            .retain_mut(|s| relabel(&mut s.period, &mut s.period_seconds));
        self.leverage
            .retain_mut(|s| relabel(&mut s.period, &mut s.period_seconds));
        self.taken = kept;
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

    /// Feeds `times` (event times, seconds) as the replay does: at each change of hour the
    /// sampler is asked, with `activity(index)` the activity count so far; at the end once more.
    /// Returns the samples' `(period start, length, seq)`.
    fn replay(times: &[i64], activity: impl Fn(usize) -> u64) -> Vec<(i64, i64, u64)> {
        let mut sampler = HealthSampler::default();
        for (seq, pair) in times.windows(2).enumerate() {
            let (now, next) = (Timestamp(pair[0]), Timestamp(pair[1]));
            if sampler.ends(now, next)
                && let Some(period) = sampler.begin(now, Some(next), activity(seq))
            {
                sampler.push(period, seq as u64, now, &distribution(1));
            }
        }
        let last = times.len() - 1;
        if let Some(period) = sampler.begin(Timestamp(times[last]), None, activity(last)) {
            sampler.push(
                period,
                last as u64,
                Timestamp(times[last]),
                &distribution(1),
            );
        }
        let (samples, _) = sampler.finish();
        samples
            .iter()
            .map(|s| (s.period.0, s.period_seconds, s.seq))
            .collect()
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
                let period = sampler.begin(now, Some(next), 0).unwrap();
                taken.push((period.start, seq));
                sampler.push(period, seq as u64, now, &distribution(2));
            }
        }
        let period = sampler.begin(Timestamp(48_000), None, 0).unwrap();
        sampler.push(period, 3, Timestamp(48_000), &distribution(2));
        // 10:00 ends at 10:59:59 (seq 1), 11:00 at 11:00:00 (seq 2), 13:00 at the end.
        assert_eq!(taken, [(36_000, 1), (39_600, 2)]);
        assert_eq!(
            period,
            Period {
                start: 46_800,
                seconds: HOUR
            }
        );
        assert!(
            sampler.begin(Timestamp(48_001), None, 0).is_none(),
            "13:00 is taken"
        );
        let (samples, _) = sampler.finish();
        assert_eq!(samples.len(), 3);
        assert_eq!((samples[1].seq, samples[1].time), (2, Timestamp(39_600)));
        // Every bucket is listed; both accounts are in 1.1-1.25.
        assert_eq!(samples[0].buckets.len(), 8);
        assert_eq!(samples[0].buckets[3].accounts, 2);
        assert_eq!(samples[0].buckets[3].range, "1.1-1.25");
    }

    #[test]
    fn a_long_window_doubles_the_grid_and_keeps_the_samples_on_it() {
        // One event per hour for MAX_PERIODS + 1 hours: the last one forces 2-hour periods.
        let times: Vec<i64> = (0..=MAX_PERIODS as i64).map(|h| h * HOUR + 5).collect();
        let samples = replay(&times, |_| 0);
        // 505 hours in 2-hour periods: 253 periods, each the state at its end, so the sample
        // of its odd hour (seq = hour); the last (hour 504 alone) ends at 506:00.
        assert_eq!(samples.len(), MAX_PERIODS / 2 + 1);
        assert!(samples.iter().all(|s| s.1 == 2 * HOUR));
        assert_eq!(samples[0], (0, 2 * HOUR, 1));
        assert_eq!(samples[1], (2 * HOUR, 2 * HOUR, 3));
        assert_eq!(*samples.last().unwrap(), (504 * HOUR, 2 * HOUR, 504));
    }

    /// A three-year log with one event an hour and a crash in the middle: the quiet hours
    /// become long periods, the crash's hours (liquidations at hours 13,000 and 13,001) and the
    /// six after the last stay hourly; periods tile the window without overlapping.
    #[test]
    fn active_hours_stay_hourly_in_a_long_window() {
        let hours = 26_280;
        let times: Vec<i64> = (0..hours).map(|h| h * HOUR + 5).collect();
        // The activity count grows at the events of hours 13,000 and 13,001.
        let samples = replay(&times, |seq| match seq as i64 {
            ..13_000 => 0,
            13_000 => 1,
            _ => 2,
        });
        assert!(
            samples.len() <= MAX_PERIODS + MAX_ACTIVE_HOURS,
            "{}",
            samples.len()
        );
        // Hour 13,000 ends the period begun where the grid's last one ended (its state before
        // the crash is not sampled: nothing told the sampler it was coming); 13,001 to 13,007
        // (the aftermath of 13,001) are hours.
        let crash = samples.iter().find(|s| s.0 + s.1 == 13_001 * HOUR).unwrap();
        assert_eq!(crash.2, 13_000, "the state at the hour's last event");
        assert!(crash.0 < 13_000 * HOUR && crash.1 <= 64 * HOUR);
        let hourly: Vec<i64> = samples
            .iter()
            .filter(|s| s.1 == HOUR)
            .map(|s| s.0 / HOUR)
            .collect();
        assert_eq!(hourly, (13_001..=13_007).collect::<Vec<_>>());
        for pair in samples.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "periods tile: {pair:?}");
        }
        // Elsewhere the grid: 64-hour periods over three years.
        assert!(samples.iter().any(|s| s.1 == 64 * HOUR), "{samples:?}");
        assert!(samples.iter().all(|s| s.1 <= 64 * HOUR));
    }

    /// More active hours than the budget: a drip of one liquidation an hour for 600 hours, then
    /// a crash of ten at hour 5,000. The crash and its aftermath stay hourly, evicting the
    /// drip's earliest hours (the least weight); the periods still tile.
    #[test]
    fn the_busiest_hours_keep_their_place_when_active_hours_run_out() {
        let times: Vec<i64> = (0..6_000).map(|h| h * HOUR + 5).collect();
        let samples = replay(&times, |seq| match seq as u64 {
            hour @ ..600 => hour + 1,
            600..5_000 => 600,
            _ => 610,
        });
        let hourly: Vec<i64> = samples
            .iter()
            .filter(|s| s.1 == HOUR)
            .map(|s| s.0 / HOUR)
            .collect();
        assert!(hourly.len() <= MAX_ACTIVE_HOURS);
        // Hour 5,000 ends a longer period (nothing announced it); its aftermath is hourly.
        for hour in 5_001..=5_006 {
            assert!(hourly.contains(&hour), "{hour}");
        }
        // Weight for weight the drip's first 504 hours took the room (its later hours fell back
        // to the grid); the crash's seven hours evicted the earliest of them, 0 to 6, and hour
        // 7's period now reaches back over them.
        assert_eq!(hourly[0], 8);
        assert_eq!(samples[0], (0, 8 * HOUR, 7));
        assert!(hourly.contains(&503) && !hourly.contains(&599));
        for pair in samples.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "periods tile: {pair:?}");
        }
    }

    #[test]
    fn empty_markets_leave_no_sample() {
        let mut sampler = HealthSampler::default();
        let period = sampler.begin(Timestamp(HOUR), None, 0).unwrap();
        sampler.push(period, 1, Timestamp(HOUR), &distribution(0));
        assert!(sampler.finish().0.is_empty());
    }
}
