//! Block time.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wincode::{SchemaRead, SchemaWrite};

/// Seconds since the Unix epoch, UTC: the resolution of an Ethereum block timestamp.
///
/// Sources with finer timestamps (CoinGecko's milliseconds) are truncated to the second by their
/// adapter, which keeps their original row order as a tie-breaker.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, SchemaWrite, SchemaRead)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The timestamp as a chrono UTC time; `None` outside chrono's range (about ±262,000 years).
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.0, 0)
    }

    /// The timestamp of a chrono UTC time, dropping sub-second precision.
    pub fn from_datetime(time: DateTime<Utc>) -> Self {
        Timestamp(time.timestamp())
    }

    /// Seconds since the epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }

    /// RFC 3339 in UTC with a `Z` suffix (`2021-05-19T12:00:00Z`), the form used in run files.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(time) => time.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => format!("@{}", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        Timestamp::from_datetime(time)
    }
}

/// JSON form: RFC 3339 UTC text.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|time| Timestamp(time.timestamp()))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_json() {
        let time = Timestamp(1_621_382_400);
        let json = serde_json::to_string(&time).unwrap();
        assert_eq!(json, "\"2021-05-19T00:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), time);
    }
}
