//! Events counted by kind per calendar period (UTC day or hour): how a log's activity is spread
//! over time, for `cascade log stats --by day|hour`.
//!
//! Must never: count an event in a period its time is not in, or skip one it cannot decode
//! (that is damage, returned as an error).

use std::collections::BTreeMap;

use cascade_events::{EventKind, Timestamp};
use serde::Serialize;

use crate::{LogError, LogReader};

/// The length of a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// A UTC calendar day.
    Day,
    /// A UTC hour.
    Hour,
}

impl Period {
    fn seconds(self) -> i64 {
        match self {
            Period::Day => 86_400,
            Period::Hour => 3_600,
        }
    }

    /// The start of the period `time` falls in.
    pub fn start_of(self, time: Timestamp) -> Timestamp {
        Timestamp(time.0.div_euclid(self.seconds()) * self.seconds())
    }
}

/// The events of one period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeriodCounts {
    /// Events in the period.
    pub events: u64,
    /// Events per kind.
    pub by_kind: BTreeMap<EventKind, u64>,
}

/// Counts every event of the log by the period its time falls in, periods in time order (only
/// periods with events appear).
pub fn counts_by_period(
    reader: &LogReader,
    period: Period,
) -> Result<BTreeMap<Timestamp, PeriodCounts>, LogError> {
    let mut periods: BTreeMap<Timestamp, PeriodCounts> = BTreeMap::new();
    for event in reader.events(0) {
        let event = event?;
        let counts = periods.entry(period.start_of(event.time)).or_default();
        counts.events += 1;
        *counts.by_kind.entry(event.kind()).or_default() += 1;
    }
    Ok(periods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_utc_midnight_and_on_the_hour() {
        // 2021-05-19 12:07:00 UTC.
        let time = Timestamp(1_621_426_020);
        assert_eq!(Period::Day.start_of(time), Timestamp(1_621_382_400));
        assert_eq!(Period::Hour.start_of(time), Timestamp(1_621_425_600));
        // Before 1970 the period still starts at or before the time.
        assert_eq!(Period::Hour.start_of(Timestamp(-1)), Timestamp(-3_600));
    }
}
