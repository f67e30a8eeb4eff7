//! `cascade worker --brokers B --work-topic T --group G --log-dir DIR`: one member of a consumer
//! group that runs the tasks coordinators publish (sweep points, check cases).
//!
//! The transport and its guarantees (result acknowledged before the offset is committed, a dead
//! member's tasks redone by the others) are `cascade_kafka::work`'s. This module gets the log a
//! task names (from its cache in `--log-dir`, a shared folder, or the log's topic) and runs the
//! task. A task the worker cannot run (no such log, another scenario) gets a failed result that
//! says why, never silence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cascade_engine::EngineConfig;
use cascade_engine::counterfactual::scenario::{Prepared, Scenario, SweepAxis, prepare, run_sweep};
use cascade_kafka::work::{ServeOptions, WorkItem, WorkerEvent, serve};
use cascade_kafka::{ClientOptions, ConsumeOptions, KafkaError, LogSink, consume, stop_on_ctrl_c};
use cascade_log::{LogError, LogReader};

use crate::Outcome;
use crate::cluster_args::Cluster;
use crate::work_task::{LogRef, PointOutcome, SweepPoint, Task, TaskResult};

/// `cascade worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Bootstrap servers, host:port[,host:port...].
    #[arg(long)]
    brokers: String,
    /// The work topic the coordinators publish to.
    #[arg(long)]
    work_topic: String,
    /// The consumer group the workers of this topic share.
    #[arg(long, default_value = "cascade-workers")]
    group: String,
    /// Where this worker keeps the logs it fetched, one folder per log identity.
    #[arg(long, value_name = "DIR")]
    log_dir: PathBuf,
    /// A folder of logs shared with the coordinator (e.g. a network mount), looked up by the
    /// coordinator's log folder name before fetching from the log's topic.
    #[arg(long, value_name = "DIR")]
    shared_logs: Option<PathBuf>,
    /// Folder a scenario's relative data paths are read from (default: `$CASCADE_DATA_DIR`, else
    /// the working directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Partitions of the work topic if the worker creates it (the coordinator's default).
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// This worker's name in results [default: HOST-PID].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    cluster: Cluster,
}

/// Runs `cascade worker` until Ctrl-C.
pub fn run(args: WorkerArgs) -> anyhow::Result<Outcome> {
    let client = args.cluster.client(&args.brokers)?;
    std::fs::create_dir_all(&args.log_dir)
        .map_err(|e| anyhow::anyhow!("creating --log-dir {}: {e}", args.log_dir.display()))?;
    let name = args.name.clone().unwrap_or_else(default_name);
    let options = ServeOptions {
        work_topic: args.work_topic.clone(),
        partitions: args.partitions,
        group: args.group.clone(),
        worker: name.clone(),
        stop: Some(stop_on_ctrl_c()),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("CASCADE_DATA_DIR").map(PathBuf::from));
    let mut runner = Runner::new(
        client.clone(),
        args.log_dir.clone(),
        args.shared_logs.clone(),
    );
    runner.data_dir = data_dir;
    eprintln!(
        "worker {name}: serving topic {:?} in group {:?} at {}",
        args.work_topic, args.group, args.brokers
    );
    tracing::info!(
        "worker {name}: logs fetched into {}",
        args.log_dir.display()
    );
    let mut started = Instant::now();
    let report = serve::<Task, TaskResult>(
        &client,
        &options,
        &mut |item: &WorkItem<Task>| runner.run(&item.task),
        &mut |event| match event {
            WorkerEvent::Started { id } => {
                started = Instant::now();
                eprintln!("worker {name}: started {id}");
            }
            WorkerEvent::Finished { id, ok } => eprintln!(
                "worker {name}: {} {id} in {:.3} s",
                if ok { "done" } else { "failed" },
                started.elapsed().as_secs_f64()
            ),
            WorkerEvent::NotCommitted { id, reason } => eprintln!(
                "worker {name}: {id}: result published, offset not committed ({reason}); \
                 the task is redone elsewhere and its duplicate dropped"
            ),
            WorkerEvent::Skipped {
                partition,
                offset,
                reason,
            } => eprintln!(
                "worker {name}: skipped record partition {partition} offset {offset} of {:?}: \
                 not a task ({reason})",
                args.work_topic
            ),
        },
    )?;
    eprintln!(
        "worker {name}: stopped after {} tasks ({} failed)",
        report.done + report.failed,
        report.failed
    );
    Ok(Outcome::Clean)
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Windows kept replayed at once: sweeps of a few crash days sharing the workers interleave
/// their points, and each switch would otherwise replay a log up to its window again.
const PREPARED_KEPT: usize = 4;

/// Runs tasks, keeping what they share: verified logs, and the last sweeps' prepared windows.
pub struct Runner {
    client: ClientOptions,
    log_dir: PathBuf,
    shared: Option<PathBuf>,
    /// Where a scenario's relative data paths resolve.
    pub data_dir: Option<PathBuf>,
    /// Logs checked to hold the identity they are filed under, by hash.
    verified: BTreeMap<String, PathBuf>,
    /// The windows replayed for the last sweeps, most recent first: (log hash, scenario hash),
    /// scenario, state.
    prepared: Vec<((String, String), Scenario, Prepared)>,
}

impl Runner {
    /// A runner that keeps fetched logs in `log_dir` and looks in `shared` first.
    pub fn new(client: ClientOptions, log_dir: PathBuf, shared: Option<PathBuf>) -> Runner {
        Runner {
            client,
            log_dir,
            shared,
            data_dir: None,
            verified: BTreeMap::new(),
            prepared: Vec::new(),
        }
    }

    /// Runs one task; the error is what its failed result says.
    pub fn run(&mut self, task: &Task) -> Result<TaskResult, String> {
        match task {
            Task::SweepPoint(point) => self.point(point).map(TaskResult::Point),
            Task::CheckCase(case) => {
                let dir = self.log(&case.log)?;
                crate::check_suite_cmd::run_task(case, &dir, self.data_dir.as_deref())
                    .map(TaskResult::Check)
            }
        }
    }

    fn point(&mut self, point: &SweepPoint) -> Result<PointOutcome, String> {
        let dir = self.log(&point.log)?;
        let scenario_hash = point.scenario.as_ref().map(|s| s.hash.clone());
        let key = (point.log.hash.clone(), scenario_hash.unwrap_or_default());
        match self.prepared.iter().position(|(k, _, _)| *k == key) {
            Some(at) => self.prepared[..=at].rotate_right(1),
            None => {
                let scenario = match &point.scenario {
                    Some(text) => text.parse(self.data_dir.as_deref())?,
                    None => Scenario::baseline(),
                };
                let prepared = prepare(&dir, &EngineConfig::default(), &scenario).map_err(|e| {
                    format!("replaying {} up to the window: {e}", point.log.describe())
                })?;
                self.prepared.truncate(PREPARED_KEPT - 1);
                self.prepared.insert(0, (key, scenario, prepared));
            }
        }
        let (_, scenario, prepared) = &self.prepared[0];
        let axes = single_point_axes(&point.axes, &point.point)?;
        // A grid of one point runs exactly as that point runs in the whole grid.
        let mut results = run_sweep(prepared, scenario, &axes, 1)
            .map_err(|e| format!("sweeping {}: {e}", point.log.describe()))?;
        let result = results.pop().ok_or("the point produced no result")?;
        Ok(PointOutcome::of(result))
    }

    /// The folder holding `log`: verified in the cache, the shared folder, or fetched from its
    /// topic into the cache.
    pub fn log(&mut self, log: &LogRef) -> Result<PathBuf, String> {
        if let Some(dir) = self.verified.get(&log.hash) {
            return Ok(dir.clone());
        }
        let cached = self.log_dir.join(&log.hash);
        let mut tried = vec![format!("not in {}", self.log_dir.display())];
        if identity_matches(&cached, log)? {
            return Ok(self.remember(log, cached));
        }
        if let Some(shared) = &self.shared {
            let dir = shared.join(&log.name);
            if identity_matches(&dir, log)? {
                return Ok(self.remember(log, dir));
            }
            tried.push(format!("not in {}", dir.display()));
        }
        let Some(topic) = &log.topic else {
            tried.push("the coordinator named no log topic (--log-topic)".to_owned());
            return Err(format!(
                "cannot get log {}: {}",
                log.describe(),
                tried.join(", ")
            ));
        };
        self.fetch(topic, &cached)
            .map_err(|e| format!("fetching log {} from topic {topic:?}: {e}", log.describe()))?;
        if identity_matches(&cached, log)? {
            return Ok(self.remember(log, cached));
        }
        let found = LogReader::open(&cached)
            .and_then(|r| r.identity())
            .map_err(|e| e.to_string())?;
        Err(format!(
            "topic {topic:?} holds another log (blake3 {}, {} events), not {}",
            found.hash_hex(),
            found.events,
            log.describe()
        ))
    }

    fn remember(&mut self, log: &LogRef, dir: PathBuf) -> PathBuf {
        self.verified.insert(log.hash.clone(), dir.clone());
        dir
    }

    /// Mirrors `topic` into `dir` as `cascade stream record` does; waits while another worker
    /// sharing the folder is fetching the same log (it holds the log's writer lock).
    fn fetch(&self, topic: &str, dir: &Path) -> Result<(), String> {
        let waited = Instant::now();
        loop {
            match LogSink::open(dir) {
                Ok((mut sink, _)) => {
                    consume(&self.client, &ConsumeOptions::new(topic), &mut sink)
                        .map_err(|e| e.to_string())?;
                    return Ok(());
                }
                Err(KafkaError::Log(LogError::Locked { .. }))
                    if waited.elapsed() < Duration::from_secs(600) =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => return Err(error.to_string()),
            }
        }
    }
}

/// Whether `dir` holds a log with `log`'s identity (false when it holds none).
fn identity_matches(dir: &Path, log: &LogRef) -> Result<bool, String> {
    if !dir.join("CURRENT").exists() {
        return Ok(false);
    }
    match LogReader::open(dir).and_then(|reader| reader.identity()) {
        Ok(identity) => Ok(log.is(&identity)),
        Err(LogError::Locked { .. }) => Ok(false),
        Err(error) => Err(format!("reading log {}: {error}", dir.display())),
    }
}

/// The sweep's axes, each cut down to the point's value.
pub fn single_point_axes(specs: &[String], point: &[usize]) -> Result<Vec<SweepAxis>, String> {
    if specs.len() != point.len() {
        return Err(format!(
            "the point has {} values for {} axes",
            point.len(),
            specs.len()
        ));
    }
    specs
        .iter()
        .zip(point)
        .map(|(spec, &index)| {
            let mut axis = SweepAxis::parse(spec).map_err(|e| e.to_string())?;
            let value = *axis
                .values
                .get(index)
                .ok_or_else(|| format!("--param {spec} has no value number {index}"))?;
            axis.values = vec![value];
            Ok(axis)
        })
        .collect()
}
