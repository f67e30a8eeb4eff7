//! `cascade sweep DIR --scenario FILE --param KEY=START..END:STEP ...`: one counterfactual per
//! grid point, in parallel.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cascade_diff::sweep::{self, Metric};
use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Scenario, SweepAxis, prepare, run_sweep};
use clap::Args;

use crate::Outcome;
use crate::engine_args::DataDirArg;
use crate::out::write_file;

/// `cascade sweep DIR --scenario FILE --param KEY=START..END:STEP [--param ...] [--jobs N]
/// [--out FILE] [--metric NAME ...]`.
#[derive(Args)]
pub struct SweepArgs {
    /// Log directory.
    dir: PathBuf,
    /// The scenario every point starts from (default: the baseline, no changes).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
    /// A swept parameter, `protocol.market.param=START..END:STEP` (e.g.
    /// `maker.ETH-B.mat=1.3..1.8:0.05`); repeat for a grid.
    #[arg(long = "param", value_name = "KEY=START..END:STEP", required = true)]
    params: Vec<String>,
    /// Threads running points (default: all cores). Results do not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Write the results here: `.json`, `.csv`, `.md`, or aligned text otherwise. With two
    /// parameters a heatmap of the first metric goes beside it (`<stem>.heatmap.svg`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Columns of the table: liquidations, accounts, collateral, debt, bad-debt, depth (repeat;
    /// default: all).
    #[arg(long = "metric", value_name = "NAME")]
    metrics: Vec<String>,
}

/// Runs `cascade sweep`.
pub fn run(args: SweepArgs) -> anyhow::Result<Outcome> {
    let scenario = match &args.scenario {
        Some(path) => args.data.load_scenario(path)?,
        None => Scenario::baseline(),
    };
    let axes = args
        .params
        .iter()
        .map(|spec| SweepAxis::parse(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let mut metrics = Vec::new();
    for name in &args.metrics {
        match Metric::parse(name) {
            Some(metric) => metrics.push(metric),
            None => bail!(
                "--metric {name:?}: expected one of {}",
                Metric::ALL.map(Metric::name).join(", ")
            ),
        }
    }
    if metrics.is_empty() {
        metrics = Metric::ALL.to_vec();
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    crate::existing_log(&args.dir)?;
    let spinner = crate::talk::spinner(&format!(
        "replaying {} up to the window",
        args.dir.display()
    ));
    let prepared = prepare(&args.dir, &EngineConfig::default(), &scenario)
        .with_context(|| format!("replaying {} up to the window", args.dir.display()));
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(error);
        }
    };
    spinner.set_message(format!("sweeping {} on {jobs} threads", args.dir.display()));
    tracing::info!("sweeping {} on {jobs} threads", args.dir.display());
    let points = run_sweep(&prepared, &scenario, &axes, jobs);
    spinner.finish_and_clear();
    let points = points.with_context(|| format!("sweeping {}", args.dir.display()))?;
    print!("{}", sweep::table(&axes, &points, &metrics));
    if let Some(out) = &args.out {
        let text = match out.extension().and_then(|e| e.to_str()) {
            Some("json") => sweep::json(&axes, &points),
            Some("csv") => sweep::csv(&axes, &points),
            Some("md") => sweep::markdown(&axes, &points, &metrics),
            _ => sweep::table(&axes, &points, &metrics),
        };
        write_file(out, text.as_bytes())?;
        if let Some(svg) = sweep::heatmap(&axes, &points, metrics[0])? {
            let stem = out
                .file_stem()
                .map_or("sweep".into(), |s| s.to_string_lossy());
            let path = out.with_file_name(format!("{stem}.heatmap.svg"));
            write_file(&path, svg.as_bytes())?;
            if !crate::talk::quiet() {
                eprintln!("heatmap: {}", path.display());
            }
        }
    }
    Ok(Outcome::Clean)
}
