//! `cascade demo`: the first command on a fresh machine. Builds a small synthetic crash, replays
//! it historically and under one counterfactual scenario, prints the diff's totals and writes the
//! HTML report, with no input but a seed compiled in.
//!
//! It only wires library calls together (synthetic generator, engine, diff); each step says
//! what it wrote, so a user can rerun any of them with its own command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use cascade_diff::{Format, RunFile, build_report, compare, render};
use cascade_engine::counterfactual::scenario::{Scenario, replay_scenario};
use cascade_engine::protocols::maker::{MakerConfig, OsmSample};
use cascade_engine::{Mode, ReplayOptions, replay_log};
use cascade_events::{Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig, SynthSummary};
use cascade_run::Quantity;
use cascade_run::num::Num;

use crate::Outcome;
use crate::out::write_file;
use crate::synth_cmd::thousands;

/// Arguments of `cascade demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's log, run files and report.
    #[arg(long, default_value = "cascade-demo")]
    out: PathBuf,
    /// Number of vaults in the synthetic market.
    #[arg(long, default_value_t = 2_000)]
    accounts: u32,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Runs `cascade demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<Outcome> {
    let config = SynthConfig::new(Protocol::Maker, args.accounts, args.seed);
    println!(
        "cascade demo: a synthetic MakerDAO market of {} vaults (seed {}) through a {}\n",
        thousands(u64::from(args.accounts)),
        args.seed,
        crash_label(&config),
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let log_dir = args.out.join("log");

    let started = Instant::now();
    let summary = synthesize(&log_dir, &config)?;
    step(
        "synth",
        &format!(
            "{} events, {} market {} -> {} USD ({:+.1}%)",
            thousands(summary.events),
            summary.lead_asset,
            dollars(summary.start_price),
            dollars(summary.low_price),
            (summary.low_price as f64 / summary.start_price as f64 - 1.0) * 100.0,
        ),
        &log_dir,
        started,
    );

    let started = Instant::now();
    let historical = replay_log(&log_dir, &replay_options(), Mode::Historical)
        .context("replaying the demo log historically")?
        .run;
    let historical_path = args.out.join("historical.json");
    write_file(&historical_path, &historical.to_json())?;
    step(
        "replay",
        &format!(
            "history: {} liquidations of {} vaults, {}% explained by the engine's Maker rules{}",
            thousands(historical.totals.liquidations),
            thousands(historical.totals.accounts_liquidated.unwrap_or_default()),
            historical
                .totals
                .explained_percent
                .as_deref()
                .unwrap_or("-"),
            bad_debt(&historical.totals.bad_debt),
        ),
        &historical_path,
        started,
    );

    let started = Instant::now();
    let scenario_path = args.out.join("scenario.toml");
    write_file(&scenario_path, SCENARIO.as_bytes())?;
    let scenario = Scenario::load(&scenario_path)
        .with_context(|| format!("reading {}", scenario_path.display()))?;
    let counterfactual = replay_scenario(&log_dir, &replay_options().config, &scenario)
        .context("replaying the demo log under the scenario")?;
    let counterfactual_path = args.out.join("counterfactual.json");
    write_file(&counterfactual_path, &counterfactual.to_json())?;
    step(
        "what-if",
        &format!(
            "{}: {} simulated liquidations of {} vaults{}",
            scenario.label(),
            thousands(counterfactual.totals.liquidations),
            thousands(
                counterfactual
                    .totals
                    .accounts_liquidated
                    .unwrap_or_default()
            ),
            bad_debt(&counterfactual.totals.bad_debt),
        ),
        &counterfactual_path,
        started,
    );

    let started = Instant::now();
    let runs = [
        RunFile::load(&historical_path)?,
        RunFile::load(&counterfactual_path)?,
    ];
    let comparison = compare(&runs[0], &runs[1])?;
    let report = build_report(
        &runs,
        Some("cascade demo: history vs OSM delay 0"),
        "report",
    )?;
    let report_path = args.out.join("report.html");
    write_file(&report_path, report.html.as_bytes())?;
    write_file(&args.out.join("report.md"), report.markdown.as_bytes())?;
    for (name, svg) in &report.charts {
        write_file(&args.out.join(format!("report.{name}.svg")), svg.as_bytes())?;
    }
    step(
        "report",
        &format!(
            "{} charts, the diff tables and the cascade",
            report.charts.len()
        ),
        &report_path,
        started,
    );

    println!();
    println!("history (A) vs {} (B):", scenario.label());
    // The totals block of the diff table; the report holds the per-account and per-hour tables.
    let table = render(&comparison, Format::Table);
    let totals = table
        .lines()
        .skip_while(|line| line.trim() != "Totals")
        .skip(1)
        .take_while(|line| !line.trim().is_empty());
    for line in totals {
        println!("{line}");
    }
    println!();
    println!(
        "open {} in a browser for the charts; next:",
        report_path.display()
    );
    println!("  cascade synth --help            a market of your size, protocol and crash");
    println!(
        "  cascade replay {} --scenario {}",
        log_dir.display(),
        scenario_path.display()
    );
    Ok(Outcome::Clean)
}

/// The demo's counterfactual: Maker reads the market price at once instead of one hour late,
/// and the keepers' sales of seized WETH move the market, so liquidations can cascade.
const SCENARIO: &str = r#"# The cascade demo's what-if (docs/scenarios.md).
name = "OSM delay 0"
description = "Maker OSM hop 3600 s -> 0 s; seized WETH sold into a market 20,000 ETH deep for 5%"

[[oracle]]
protocol = "maker"
delay = "0s"

[[impact]]
asset = "WETH"
model = "depth"
depth = "20000"
slippage = "5%"
half_life = "30m"
"#;

/// Engine settings for a synthetic log: its oracle publishes on a Chainlink-like rule, so the OSM
/// reads the last published price at each poke (`step`), as on chain; the engine's default
/// interpolation is meant for coarse exports of market prices.
fn replay_options() -> ReplayOptions {
    let mut options = ReplayOptions::default();
    MakerConfig::of_mut(&mut options.config.protocols).osm_sample = OsmSample::Step;
    options
}

/// Writes the demo market, or reuses the one a previous demo run left with the same settings.
fn synthesize(log_dir: &Path, config: &SynthConfig) -> anyhow::Result<SynthSummary> {
    if log_dir.exists() {
        let catalog = cascade_log::Catalog::open(log_dir)
            .with_context(|| format!("opening {}", log_dir.display()))?;
        let sources = catalog.sources()?;
        let description = synth::describe(config);
        match sources.as_slice() {
            [only] if only.kind == "synth" && only.path == description => {
                drop(catalog);
                // Regenerating in memory is cheap and gives the summary without reading back.
                return synth::generate(config, &mut |_| Ok(())).map_err(Into::into);
            }
            _ => bail!(
                "{} holds another log; give the demo an empty directory with --out",
                log_dir.display()
            ),
        }
    }
    let written = synth::write_log(
        log_dir,
        config,
        Timestamp::from_datetime(chrono::Utc::now()),
    )
    .with_context(|| format!("writing the demo market to {}", log_dir.display()))?;
    Ok(written.summary)
}

fn step(name: &str, what: &str, path: &Path, started: Instant) {
    tracing::info!("{name} done: {}", path.display());
    println!(
        "  {name:<7} {what}\n          -> {} ({:.2} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

fn crash_label(config: &SynthConfig) -> String {
    let shock = &config.shock;
    format!(
        "{}% crash over {} hours",
        f64::from(shock.depth_bps) / 100.0,
        f64::from(shock.drop_secs) / 3600.0
    )
}

fn dollars(price_8_decimals: u128) -> String {
    format!("{:.0}", price_8_decimals as f64 / 1e8)
}

/// The run's bad debt per asset for the demo's summary line, in each unit's fixed decimals.
fn bad_debt(by_asset: &BTreeMap<String, Quantity>) -> String {
    let debts: Vec<String> = by_asset
        .iter()
        .filter(|(_, q)| !q.value.is_zero())
        .map(|(asset, q)| Num::of(q).amount(asset))
        .collect();
    if debts.is_empty() {
        ", no bad debt".to_owned()
    } else {
        format!(", bad debt {}", debts.join(" + "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_debt_reads_in_each_units_fixed_decimals() {
        // Amounts as a run file holds them: exact decimal text.
        let quantity = |text: &str| -> Quantity { serde_json::from_str(text).unwrap() };
        let mut by_asset = BTreeMap::new();
        by_asset.insert("DAI".to_owned(), quantity("\"0.000000\""));
        assert_eq!(bad_debt(&by_asset), ", no bad debt");
        by_asset.insert("DAI".to_owned(), quantity("\"74789.683456\""));
        by_asset.insert("WBTC".to_owned(), quantity("\"1.5\""));
        assert_eq!(
            bad_debt(&by_asset),
            ", bad debt 74,789.68 DAI + 1.5000 WBTC"
        );
    }
}
