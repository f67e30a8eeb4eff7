//! `cascade replay` and `cascade check`: run the engine over a log, write a run file, or compare
//! one with a golden file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cascade_engine::maker::OsmSample;
use cascade_engine::{EngineConfig, Mode, ReplayOptions, Run, diff_runs, replay_log};
use cascade_events::{Id, Timestamp};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};

use crate::Outcome;

/// Engine settings shared by `replay` and `check`.
#[derive(Args)]
pub struct EngineArgs {
    /// Counterfactual scenario (TOML, see docs/scenarios.md).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Report only from this time on (RFC 3339 or YYYY-MM-DD, UTC); the replay resumes from the
    /// last stored checkpoint before it.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Store a checkpoint of the engine state in the log's catalog every N events.
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<u64>,
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

/// `cascade replay DIR`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Log directory.
    dir: PathBuf,
    /// Write the run file (JSON) here.
    #[arg(long, value_name = "RUN")]
    out: Option<PathBuf>,
    /// Print the run file on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `cascade check DIR --expect EXPECTED.json`.
#[derive(Args)]
pub struct CheckArgs {
    /// Log directory.
    dir: PathBuf,
    /// The golden run file to compare with.
    #[arg(long, value_name = "EXPECTED")]
    expect: PathBuf,
    /// Rewrite the golden file with this replay's run instead of comparing.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    engine: EngineArgs,
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

fn run_engine(dir: &Path, args: &EngineArgs) -> anyhow::Result<Run> {
    let mut config = EngineConfig::default();
    for lag in &args.feed_lag {
        let (feed, seconds) = parse_lag(lag)?;
        config.maker.feed_lag.insert(feed, seconds);
    }
    if let Some(from) = &args.from {
        config.from = Some(parse_time(from)?);
    }
    if let Some(hop) = args.osm_hop {
        config.maker.hop = hop;
    }
    if let Some(sample) = args.osm_sample {
        config.maker.osm_sample = match sample {
            Sample::Step => OsmSample::Step,
            Sample::Interpolate => OsmSample::Interpolate,
        };
    }
    if let Some(threshold) = args.unsafe_threshold {
        config.unsafe_threshold = threshold;
    }
    let options = ReplayOptions {
        config,
        checkpoint_every: args.checkpoint_every,
        resume: true,
    };
    if let Some(path) = &args.scenario {
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

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Runs `cascade replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<Outcome> {
    let run = run_engine(&args.dir, &args.engine)?;
    let json = run.to_json();
    if let Some(out) = &args.out {
        write_atomically(out, &json)?;
    }
    let text = if args.json {
        json
    } else {
        let mut text = run.summary();
        if let Some(out) = &args.out {
            text.push_str(&format!("run written to {}\n", out.display()));
        }
        text.into_bytes()
    };
    // A closed pipe (`| head`) ends the output, not the command.
    let _ = std::io::stdout().lock().write_all(&text);
    Ok(Outcome::Clean)
}

/// Runs `cascade check`.
pub fn check(args: CheckArgs) -> anyhow::Result<Outcome> {
    let run = run_engine(&args.dir, &args.engine)?;
    let actual = run.to_json();
    if args.update {
        write_atomically(&args.expect, &actual)?;
        println!("updated {}", args.expect.display());
        return Ok(Outcome::Clean);
    }
    let expected = std::fs::read(&args.expect)
        .with_context(|| format!("reading {}", args.expect.display()))?;
    if expected == actual {
        println!("{}: identical", args.expect.display());
        return Ok(Outcome::Clean);
    }
    let expected: serde_json::Value = serde_json::from_slice(&expected)
        .with_context(|| format!("{} is not a run file", args.expect.display()))?;
    let actual: serde_json::Value =
        serde_json::from_slice(&actual).context("the engine wrote invalid JSON")?;
    let diff = diff_runs(&expected, &actual);
    println!("{} differs from this replay:", args.expect.display());
    if diff.is_empty() {
        println!("  (formatting only: the same content written differently)");
    }
    for line in &diff.lines {
        println!("  {line}");
    }
    Ok(Outcome::Findings)
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
