//! The engine flags of `cascade replay`, `cascade check` and `cascade stream replay`, and the one
//! function that turns them into a replay of a log.
//!
//! One clap struct and one config builder for every command that runs the engine, so the commands
//! cannot drift apart: a flag added here is offered, parsed and applied the same way by all of
//! them. This module must never decide anything the engine decides; it only translates flags.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cascade_engine::maker::OsmSample;
use cascade_engine::{EngineConfig, Mode, ReplayOptions, Run, replay_log};
use cascade_events::{Id, Payload, Timestamp};
use cascade_log::{Catalog, LogReader};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};

/// Engine settings shared by every command that replays.
#[derive(Args)]
pub struct EngineArgs {
    /// Counterfactual scenario (TOML, see docs/scenarios.md).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Report only from this time on (RFC 3339 or YYYY-MM-DD, UTC); the replay resumes from the
    /// last stored checkpoint before it.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Store a checkpoint of the engine state in the log's catalog every N events.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Maker OSM delay in seconds (default 3600; 0 reads the market price directly).
    #[arg(long, value_name = "SECONDS")]
    osm_hop: Option<i64>,
    /// How the Maker OSM samples recorded market prices at its reading time.
    #[arg(long, value_enum)]
    osm_sample: Option<Sample>,
    /// Report accounts unsafe longer than this many seconds and never liquidated (default 3600).
    #[arg(long, value_name = "SECONDS")]
    unsafe_threshold: Option<i64>,
    /// Seconds by which a price feed trails the market (`FEED=SECONDS`, repeatable), e.g.
    /// `coingecko-hourly=900`: the Maker OSM samples that feed's prices that much earlier.
    #[arg(long, value_name = "FEED=SECONDS")]
    feed_lag: Vec<String>,
}

/// OSM sampling rule on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum Sample {
    /// The last recorded price at or before the reading time.
    Step,
    /// Linear between the prices around the reading time.
    Interpolate,
}

impl EngineArgs {
    /// The engine configuration these flags describe (defaults for flags not given).
    pub fn config(&self) -> anyhow::Result<EngineConfig> {
        let mut config = EngineConfig::default();
        for lag in &self.feed_lag {
            let (feed, seconds) = parse_lag(lag)?;
            config.maker.feed_lag.insert(feed, seconds);
        }
        if let Some(from) = &self.from {
            config.from = Some(parse_time(from)?);
        }
        if let Some(hop) = self.osm_hop {
            config.maker.hop = hop;
        }
        if let Some(sample) = self.osm_sample {
            config.maker.osm_sample = match sample {
                Sample::Step => OsmSample::Step,
                Sample::Interpolate => OsmSample::Interpolate,
            };
        }
        if let Some(threshold) = self.unsafe_threshold {
            config.unsafe_threshold = threshold;
        }
        Ok(config)
    }

    /// Replays the log at `dir` under these flags: the scenario when one is given, else history
    /// with checkpoints stored and resumed as asked. A catalog that cannot be opened (read-only
    /// storage) only costs the checkpoints: the replay runs from the segments, with a warning.
    pub fn run_log(&self, dir: &Path) -> anyhow::Result<Run> {
        let run = self.replay(dir)?;
        if let Err(error) = Catalog::open(dir) {
            eprintln!(
                "warning: catalog unavailable ({error}); replayed from the segments without checkpoints"
            );
        }
        Ok(run)
    }

    fn replay(&self, dir: &Path) -> anyhow::Result<Run> {
        let config = self.config()?;
        check_feed_lags(dir, &config)?;
        let options = ReplayOptions {
            config,
            checkpoint_every: self.checkpoint_every,
            resume: true,
        };
        if let Some(path) = &self.scenario {
            // Counterfactual: history up to the scenario's window, then the scenario (issue #5).
            let scenario = cascade_engine::scenario::Scenario::load(path)
                .with_context(|| format!("loading scenario {}", path.display()))?;
            return cascade_engine::scenario::replay_scenario(dir, &options.config, &scenario)
                .with_context(|| format!("replaying {} under {}", dir.display(), path.display()));
        }
        let outcome = replay_log(dir, &options, Mode::Historical)
            .with_context(|| format!("replaying {}", dir.display()))?;
        if let Some(seq) = outcome.resumed_from {
            eprintln!(
                "resumed from the checkpoint before seq {seq}; applied {} events",
                outcome.applied
            );
        }
        if outcome.checkpoints_written > 0 {
            eprintln!("stored {} checkpoints", outcome.checkpoints_written);
        }
        Ok(outcome.run)
    }
}

/// Refuses a `--feed-lag` naming a feed no price in the log at `dir` comes from (a typo would
/// shift nothing). Reads the log only when the flag is given.
fn check_feed_lags(dir: &Path, config: &EngineConfig) -> anyhow::Result<()> {
    if config.maker.feed_lag.is_empty() {
        return Ok(());
    }
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut feeds = BTreeSet::new();
    for event in reader.events(0) {
        let event = event.with_context(|| format!("reading {}", dir.display()))?;
        if let Payload::Price(update) = event.payload {
            feeds.insert(update.feed);
        }
    }
    for (feed, seconds) in &config.maker.feed_lag {
        if !feeds.contains(feed) {
            let known: Vec<String> = feeds.iter().map(Id::to_string).collect();
            bail!(
                "--feed-lag {feed}={seconds}: no price in {} comes from feed {feed} (its feeds: {})",
                dir.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    Ok(())
}

fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp(time.timestamp()));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("--from {text:?}: expected RFC 3339 or YYYY-MM-DD"))?;
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .context("midnight exists on every date")?;
    Ok(Timestamp::from_datetime(
        DateTime::<Utc>::from_naive_utc_and_offset(midnight, Utc),
    ))
}

fn parse_lag(text: &str) -> anyhow::Result<(Id, i64)> {
    let (feed, seconds) = text
        .split_once('=')
        .with_context(|| format!("--feed-lag {text:?}: expected FEED=SECONDS"))?;
    let feed: Id = feed
        .parse()
        .with_context(|| format!("--feed-lag {text:?}: bad feed id"))?;
    let seconds = seconds
        .parse()
        .with_context(|| format!("--feed-lag {text:?}: seconds must be an integer"))?;
    Ok((feed, seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_accepts_rfc3339_and_dates() {
        assert_eq!(parse_time("2022-06-13").unwrap(), Timestamp(1_655_078_400));
        assert_eq!(
            parse_time("2022-06-13T10:00:00Z").unwrap(),
            Timestamp(1_655_114_400)
        );
        assert!(parse_time("13/06/2022").is_err());
    }

    #[test]
    fn feed_lag_is_feed_equals_seconds() {
        assert_eq!(
            parse_lag("coingecko-hourly=900").unwrap(),
            (Id::name("coingecko-hourly"), 900)
        );
        assert!(parse_lag("coingecko-hourly").is_err());
        assert!(parse_lag("x=ten").is_err());
    }
}
