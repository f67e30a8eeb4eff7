//! The engine flags of `cascade replay`, `cascade check` and `cascade stream replay`, and the one
//! function that turns them into a replay of a log.
//!
//! One clap struct and one config builder for every command that runs the engine, so the commands
//! cannot drift apart: a flag added here is offered, parsed and applied the same way by all of
//! them. This module must never decide anything the engine decides; it only translates flags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use cascade_engine::core::param_history::ParamHistory;
use cascade_engine::counterfactual::scenario::{Scenario, ScenarioError, note_markets};
use cascade_engine::protocol::accounts::AccountsCapture;
use cascade_engine::protocols::maker::{MakerConfig, MedianRule, OracleMode, OsmSample};
use cascade_engine::{Capture, EngineConfig, Mode, ReplayOptions, Run, replay_log_capturing};
use cascade_events::{Id, Payload, Timestamp};
use cascade_log::{Catalog, LogReader};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};

use crate::talk;

/// Engine settings shared by every command that replays.
#[derive(Args)]
pub struct EngineArgs {
    /// Counterfactual scenario (TOML, see docs/scenarios.md).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
    /// Report only from this time on (RFC 3339 or YYYY-MM-DD, UTC); the replay resumes from the
    /// last stored checkpoint before it.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Stop before the first event at or after this time (RFC 3339 or YYYY-MM-DD, UTC; exclusive,
    /// like a scenario's `window.to`): with `--from`, a historical run of a scenario's window,
    /// its health distributions taken at the same moments as the scenario's.
    #[arg(long, value_name = "TIME", conflicts_with = "scenario")]
    pub to: Option<String>,
    /// Store a checkpoint of the engine state in the log's catalog every N events.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Which oracle values the rules read: the oracles' own values recorded in the log (Maker:
    /// OSM `LogValue`, Spotter `Poke`; Aave: the Chainlink answers of the source `AaveOracle`
    /// reads for a reserve, from its `AssetSourceUpdated`; Compound: the view's `PriceUpdated`),
    /// the estimate from market prices, or `auto` (default): recorded where the log has them
    /// (Maker: for an ilk from its first one on).
    #[arg(long, value_enum)]
    oracle: Option<Oracle>,
    /// Maker OSM delay in seconds (default 3600; 0 reads the market price directly).
    #[arg(long, value_name = "SECONDS")]
    osm_hop: Option<i64>,
    /// How the Maker OSM samples recorded market prices at its reading time (default `median`:
    /// the Median as its relayers update it where the market is recorded at least once a minute,
    /// interpolation elsewhere; see --median-spread-bps).
    #[arg(long, value_enum)]
    osm_sample: Option<Sample>,
    /// With --osm-sample median (the default): the relayers' spread in basis points (default
    /// 100, ETHUSD's `oracleSpread` of 1%).
    #[arg(long, value_name = "BPS")]
    median_spread_bps: Option<u32>,
    /// With --osm-sample median (the default): the relayers' heartbeat in seconds (default
    /// 15500, ETHUSD's `oracleExpiration`).
    #[arg(long, value_name = "SECONDS")]
    median_expiration: Option<i64>,
    /// Feeds in order of preference where several price one pair (comma-separated feed ids);
    /// unlisted feeds follow by the default rule (finest live feed first).
    #[arg(long, value_name = "FEED,FEED", value_delimiter = ',')]
    feed_priority: Vec<String>,
    /// Report accounts unsafe longer than this many seconds and never liquidated (default 3600).
    #[arg(long, value_name = "SECONDS")]
    unsafe_threshold: Option<i64>,
    /// Seconds by which a price feed trails the market (`FEED=SECONDS`, repeatable), e.g.
    /// `coingecko-hourly=900`: the Maker OSM samples that feed's prices that much earlier.
    #[arg(long, value_name = "FEED=SECONDS")]
    feed_lag: Vec<String>,
    /// Parameter history (TOML, see docs/engine.md): governance changes applied at their time,
    /// like the log's own parameter changes. The replay then runs from the log's start.
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,
}

/// `--data-dir`: where a scenario's relative data paths (`reserves_file`) point.
#[derive(Args)]
pub struct DataDirArg {
    /// Folder a scenario's relative data paths (`reserves_file`) are read from (default:
    /// `$CASCADE_DATA_DIR`, else the scenario file's folder).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// Loads the scenario at `path`, its data paths resolved against the data folder; an error
    /// says which folder that was and how to choose another.
    pub fn load_scenario(&self, path: &Path) -> anyhow::Result<Scenario> {
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| std::env::var_os("CASCADE_DATA_DIR").map(PathBuf::from));
        Scenario::load_with_data_dir(path, data_dir.as_deref()).map_err(|error| {
            if !matches!(error, ScenarioError::Data { .. }) {
                return anyhow::Error::new(error)
                    .context(format!("loading scenario {}", path.display()));
            }
            let base = match &data_dir {
                Some(dir) => format!("the data folder {}", dir.display()),
                None => "the scenario's folder (no --data-dir, no CASCADE_DATA_DIR)".to_owned(),
            };
            anyhow::anyhow!(
                "{error}\nhint: relative data paths are read from {base}; name the folder that holds them with --data-dir DIR (e.g. --data-dir ../shared/data)"
            )
        })
    }
}

/// Oracle mode on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum Oracle {
    /// Only recorded values; an ilk or reserve without one has no price.
    Recorded,
    /// Only the estimate from market prices.
    Estimated,
    /// Recorded where the log holds them, estimated elsewhere.
    Auto,
}

/// OSM sampling rule on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum Sample {
    /// The last recorded price at or before the reading time.
    Step,
    /// Linear between the prices around the reading time.
    Interpolate,
    /// The Median's value under its relayers' spread and heartbeat.
    Median,
}

impl EngineArgs {
    /// The engine configuration these flags describe (defaults for flags not given).
    pub fn config(&self) -> anyhow::Result<EngineConfig> {
        let mut config = EngineConfig::default();
        let maker = MakerConfig::of_mut(&mut config.protocols);
        for lag in &self.feed_lag {
            let (feed, seconds) = parse_lag(lag)?;
            maker.feed_lag.insert(feed, seconds);
        }
        if let Some(hop) = self.osm_hop {
            maker.hop = hop;
        }
        let median = MedianRule {
            spread_bps: self
                .median_spread_bps
                .unwrap_or(MedianRule::ETH_USD.spread_bps),
            expiration: self
                .median_expiration
                .unwrap_or(MedianRule::ETH_USD.expiration),
            poll: MedianRule::ETH_USD.poll,
        };
        maker.osm_sample = match self.osm_sample {
            None | Some(Sample::Median) => OsmSample::Median(median),
            Some(Sample::Step) => OsmSample::Step,
            Some(Sample::Interpolate) => OsmSample::Interpolate,
        };
        if let Some(oracle) = self.oracle {
            config.protocols.set_oracle(match oracle {
                Oracle::Recorded => OracleMode::Recorded,
                Oracle::Estimated => OracleMode::Estimated,
                Oracle::Auto => OracleMode::Auto,
            });
        }
        if let Some(from) = &self.from {
            config.from = Some(parse_time("--from", from)?);
        }
        if let Some(to) = &self.to {
            config.to = Some(parse_time("--to", to)?);
            if config.from.is_some_and(|from| Some(from) >= config.to) {
                anyhow::bail!("--to {to:?} is not after --from: the window would be empty");
            }
        }
        if (self.median_spread_bps.is_some() || self.median_expiration.is_some())
            && !matches!(self.osm_sample, None | Some(Sample::Median))
        {
            anyhow::bail!(
                "--median-spread-bps and --median-expiration apply to --osm-sample median only"
            );
        }
        for feed in &self.feed_priority {
            config.feed_priority.push(
                feed.parse::<Id>()
                    .with_context(|| format!("--feed-priority: bad feed id {feed:?}"))?,
            );
        }
        if let Some(threshold) = self.unsafe_threshold {
            config.unsafe_threshold = threshold;
        }
        if let Some(path) = &self.params {
            config.params = ParamHistory::load(path)?;
        }
        Ok(config)
    }

    /// Replays the log at `dir` under these flags: the scenario when one is given, else history
    /// with checkpoints stored and resumed as asked. A catalog that cannot be opened (read-only
    /// storage) only costs the checkpoints: the replay runs from the segments, with a warning.
    pub fn run_log(&self, dir: &Path) -> anyhow::Result<Run> {
        Ok(self.run_log_capturing(dir, &Capture::default(), false)?.0)
    }

    /// [`EngineArgs::run_log`], with every account's position at the times `capture` asks for
    /// (history only: a scenario's accounts are not captured). With `totals_only` a historical
    /// replay builds only what the run's summary prints ([`ReplayOptions::totals_only`]).
    pub fn run_log_capturing(
        &self,
        dir: &Path,
        capture: &Capture,
        totals_only: bool,
    ) -> anyhow::Result<(Run, Vec<AccountsCapture>)> {
        crate::existing_log(dir)?;
        if self.scenario.is_some() && !capture.at.is_empty() {
            bail!("--accounts-at and cascade state replay history: they cannot take --scenario");
        }
        let run = self.replay(dir, capture, totals_only)?;
        if let Err(error) = Catalog::open(dir) {
            eprintln!(
                "warning: catalog unavailable ({error}); replayed from the segments without checkpoints"
            );
        }
        Ok(run)
    }

    fn replay(
        &self,
        dir: &Path,
        capture: &Capture,
        totals_only: bool,
    ) -> anyhow::Result<(Run, Vec<AccountsCapture>)> {
        let config = self.config()?;
        check_feed_lags(dir, &config)?;
        check_param_markets(dir, &config)?;
        // Checkpoints live under a namespace that hashes the settings, the history file's
        // entries among them, and record how far the history has been applied.
        let options = ReplayOptions {
            config,
            checkpoint_every: self.checkpoint_every,
            resume: true,
            totals_only,
        };
        let started = Instant::now();
        if let Some(path) = &self.scenario {
            // Counterfactual: history up to the scenario's window, then the scenario (issue #5).
            let scenario = self.data.load_scenario(path)?;
            tracing::info!("replaying {} under {}", dir.display(), path.display());
            let spinner = talk::spinner(&format!(
                "replaying {} under {}",
                dir.display(),
                path.display()
            ));
            let run = cascade_engine::counterfactual::scenario::replay_scenario(
                dir,
                &options.config,
                &scenario,
            )
            .with_context(|| format!("replaying {} under {}", dir.display(), path.display()));
            spinner.finish_and_clear();
            let run = run?;
            tracing::info!(
                "{} events in the window, {} liquidations, {:.2} s",
                run.totals.events,
                run.totals.liquidations,
                started.elapsed().as_secs_f64()
            );
            return Ok((run, Vec::new()));
        }
        tracing::info!("replaying {}", dir.display());
        tracing::debug!("engine settings: {:?}", options.config);
        let bar = talk::bar("replaying", 0, false);
        let outcome = replay_log_capturing(
            dir,
            &options,
            Mode::Historical,
            capture,
            &mut |done, end| {
                bar.set_length(end);
                bar.set_position(done);
            },
        );
        bar.finish_and_clear();
        let outcome = outcome.with_context(|| format!("replaying {}", dir.display()))?;
        tracing::info!(
            "applied {} events, {} liquidations judged, {:.2} s",
            outcome.applied,
            outcome.run.totals.liquidations,
            started.elapsed().as_secs_f64()
        );
        if !talk::quiet() {
            if let Some(seq) = outcome.resumed_from {
                eprintln!(
                    "resumed from the checkpoint before seq {seq}; applied {} events",
                    outcome.applied
                );
            }
            if outcome.checkpoints_written > 0 {
                eprintln!("stored {} checkpoints", outcome.checkpoints_written);
            }
        }
        Ok((outcome.run, outcome.accounts))
    }
}

/// Calls `visit` with every event's payload in the log at `dir`.
fn for_each_payload(dir: &Path, mut visit: impl FnMut(&Payload)) -> anyhow::Result<()> {
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    for event in reader.events(0) {
        let event = event.with_context(|| format!("reading {}", dir.display()))?;
        visit(&event.payload);
    }
    Ok(())
}

/// Refuses a `--feed-lag` naming a feed no price in the log at `dir` comes from (a typo would
/// shift nothing). Reads the log only when the flag is given.
fn check_feed_lags(dir: &Path, config: &EngineConfig) -> anyhow::Result<()> {
    let lags = &MakerConfig::of(&config.protocols).feed_lag;
    if lags.is_empty() {
        return Ok(());
    }
    let mut feeds = BTreeSet::new();
    for_each_payload(dir, |payload| {
        if let Payload::Price(update) = payload {
            feeds.insert(update.feed);
        }
    })?;
    for (feed, seconds) in lags {
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

/// Refuses a `--params` entry for a market the log at `dir` never names (a misspelt reserve would
/// change nothing). Reads the log only when the flag is given.
fn check_param_markets(dir: &Path, config: &EngineConfig) -> anyhow::Result<()> {
    if config.params.entries.is_empty() {
        return Ok(());
    }
    let mut markets = BTreeMap::new();
    for_each_payload(dir, |payload| note_markets(payload, &mut markets))?;
    config.params.check_markets(&markets)?;
    Ok(())
}

/// The time `text` given to `flag`.
/// A time as the flags take it: RFC 3339, or YYYY-MM-DD for midnight UTC; errors name `flag`.
pub fn parse_time(flag: &str, text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp(time.timestamp()));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("{flag} {text:?}: expected RFC 3339 or YYYY-MM-DD"))?;
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
        assert_eq!(
            parse_time("--from", "2022-06-13").unwrap(),
            Timestamp(1_655_078_400)
        );
        assert_eq!(
            parse_time("--from", "2022-06-13T10:00:00Z").unwrap(),
            Timestamp(1_655_114_400)
        );
        assert!(parse_time("--to", "13/06/2022").is_err());
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
