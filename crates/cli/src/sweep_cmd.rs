//! `cascade sweep DIR --scenario FILE --param KEY=START..END:STEP ...`: one counterfactual per
//! grid point, in parallel on this machine, or with `--brokers` spread over `cascade worker`
//! processes through a Kafka work topic (docs/scale-out.md). Both write the same table.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cascade_diff::sweep::{self, Metric};
use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{
    PointResult, Scenario, SweepAxis, grid, prepare, run_sweep,
};
use cascade_kafka::work::{
    Collected, DistributeOptions, Distributed, Outcome as TaskOutcome, distribute, results_topic,
};
use cascade_kafka::{PublishOptions, publish_log, stop_on_ctrl_c};
use clap::Args;

use crate::Outcome;
use crate::cluster_args::Cluster;
use crate::engine_args::DataDirArg;
use crate::out::write_file;
use crate::work_task::{LogRef, ScenarioText, SweepPoint, Task, TaskResult, job_id};

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
    #[command(flatten)]
    work: WorkArgs,
}

/// Where the points go when `cascade worker` processes run them.
#[derive(Args, Clone)]
pub struct WorkArgs {
    /// Spread the points over `cascade worker` processes through this Kafka cluster
    /// (host:port[,...]) instead of running them here.
    #[arg(long, requires = "work_topic")]
    pub brokers: Option<String>,
    /// The work topic the workers read (with --brokers).
    #[arg(long, requires = "brokers")]
    pub work_topic: Option<String>,
    /// The topic results come back on [default: WORK_TOPIC.results].
    #[arg(long, requires = "brokers")]
    pub results_topic: Option<String>,
    /// Publish the log to this topic (resuming what it holds) so that workers without it fetch it
    /// from there.
    #[arg(long, requires = "brokers")]
    pub log_topic: Option<String>,
    /// Partitions of the work and results topics when this command creates them: the most
    /// workers that can share the work.
    #[arg(long, default_value_t = 12, requires = "brokers")]
    pub partitions: i32,
    #[command(flatten)]
    pub cluster: Cluster,
}

impl WorkArgs {
    /// Publishes `tasks` as job `job` and collects their results (`what` says what is being
    /// done, for errors; `noun` labels the progress bar).
    pub fn distribute(
        &self,
        job: String,
        tasks: &[(String, Task)],
        noun: &str,
        what: &str,
    ) -> anyhow::Result<Distributed<TaskResult>> {
        let (Some(brokers), Some(work_topic)) = (&self.brokers, &self.work_topic) else {
            bail!("{what}: --brokers and --work-topic are needed to distribute the work");
        };
        let options = DistributeOptions {
            work_topic: work_topic.clone(),
            results_topic: self
                .results_topic
                .clone()
                .unwrap_or_else(|| results_topic(work_topic)),
            partitions: self.partitions,
            job: job.clone(),
            stop: Some(stop_on_ctrl_c()),
        };
        let client = self.cluster.client(brokers)?;
        let bar = crate::talk::bar(noun, tasks.len() as u64, false);
        let done = distribute::<Task, TaskResult>(&client, &options, tasks, &mut |progress| {
            bar.set_position(progress.done as u64);
        });
        bar.finish_and_clear();
        let done =
            done.with_context(|| format!("{what} through topic {work_topic:?} at {brokers}"))?;
        if !crate::talk::quiet() {
            eprintln!(
                "job {job}: {} {noun}, {} already done before this run, {} published by this run, \
                 {} duplicate results dropped",
                tasks.len(),
                done.resumed,
                done.published,
                done.duplicates
            );
        }
        Ok(done)
    }

    /// The log `dir` as tasks name it; published to `--log-topic` first when one is given.
    pub fn log_ref(&self, dir: &Path) -> anyhow::Result<LogRef> {
        if let (Some(brokers), Some(topic)) = (&self.brokers, &self.log_topic) {
            let client = self.cluster.client(brokers)?;
            let spinner =
                crate::talk::spinner(&format!("publishing {} to {topic:?}", dir.display()));
            let published = publish_log(&client, &PublishOptions::new(topic), dir, &mut |_| {});
            spinner.finish_and_clear();
            published.with_context(|| {
                format!(
                    "publishing {} to topic {topic:?} for the workers",
                    dir.display()
                )
            })?;
        }
        LogRef::of(dir, self.log_topic.clone())
    }
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
    crate::existing_log(&args.dir)?;
    let points = match &args.work.brokers {
        Some(_) => distributed(&args, &scenario, &axes)?,
        None => local(&args, &scenario, &axes)?,
    };
    let axes: Vec<_> = axes.iter().map(SweepAxis::info).collect();
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

/// Runs the points on this machine's threads.
fn local(
    args: &SweepArgs,
    scenario: &Scenario,
    axes: &[SweepAxis],
) -> anyhow::Result<Vec<PointResult>> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let spinner = crate::talk::spinner(&format!(
        "replaying {} up to the window",
        args.dir.display()
    ));
    let prepared = prepare(&args.dir, &EngineConfig::default(), scenario)
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
    let points = run_sweep(&prepared, scenario, axes, jobs);
    spinner.finish_and_clear();
    points.with_context(|| format!("sweeping {}", args.dir.display()))
}

/// Publishes the points to the work topic and collects their results, in grid order. The first
/// failed point in grid order stops the sweep, as a local sweep stops.
fn distributed(
    args: &SweepArgs,
    scenario: &Scenario,
    axes: &[SweepAxis],
) -> anyhow::Result<Vec<PointResult>> {
    let log = args.work.log_ref(&args.dir)?;
    let scenario = match &args.scenario {
        Some(path) => Some(ScenarioText::read(path, scenario)?),
        None => None,
    };
    let scenario_hash = scenario.as_ref().map_or("", |s| s.hash.as_str());
    let mut parts = vec![log.hash.as_str(), scenario_hash];
    parts.extend(args.params.iter().map(String::as_str));
    let job = job_id("sweep", &parts);
    let values = grid(axes);
    let tasks: Vec<(String, Task)> = grid_indices(axes)
        .into_iter()
        .enumerate()
        .map(|(index, point)| {
            let task = Task::SweepPoint(SweepPoint {
                log: log.clone(),
                scenario: scenario.clone(),
                axes: args.params.clone(),
                point,
            });
            (format!("{job}/{index}"), task)
        })
        .collect();
    let what = format!("sweeping {}", args.dir.display());
    let done = args.work.distribute(job, &tasks, "points", &what)?;
    let mut points = Vec::with_capacity(values.len());
    for ((collected, values), (id, _)) in done.tasks.into_iter().zip(values).zip(&tasks) {
        let Collected { outcome, worker } = collected;
        match outcome {
            TaskOutcome::Done(TaskResult::Point(point)) => points.push(point.at(values)),
            TaskOutcome::Done(other) => {
                bail!("point {id}: worker {worker} answered with something else: {other:?}")
            }
            TaskOutcome::Failed(reason) => bail!(
                "sweeping {}: point {id} failed on worker {worker}: {reason}\nhint: run the same \
                 command again to retry the failed points",
                args.dir.display()
            ),
        }
    }
    Ok(points)
}

/// For each grid point (in [`grid`]'s order), the index of its value on each axis.
fn grid_indices(axes: &[SweepAxis]) -> Vec<Vec<usize>> {
    let mut points: Vec<Vec<usize>> = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|prefix| {
                (0..axis.values.len()).map(move |index| {
                    let mut point = prefix.clone();
                    point.push(index);
                    point
                })
            })
            .collect();
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker_cmd::single_point_axes;

    #[test]
    fn a_point_of_one_value_per_axis_is_the_grid_point_at_its_index() {
        let specs = [
            "maker.ETH-A.mat=1.3..1.5:0.1".to_owned(),
            "maker.ETH-A.chop=0.1..0.13:0.01".to_owned(),
        ];
        let axes: Vec<SweepAxis> = specs.iter().map(|s| SweepAxis::parse(s).unwrap()).collect();
        let points = grid(&axes);
        let indices = grid_indices(&axes);
        assert_eq!(indices.len(), 12);
        for (values, point) in points.iter().zip(&indices) {
            let single = single_point_axes(&specs, point).unwrap();
            assert_eq!(grid(&single), vec![values.clone()], "{point:?}");
        }
        assert!(single_point_axes(&specs, &[0]).is_err());
        assert!(single_point_axes(&specs, &[3, 0]).is_err());
    }
}
