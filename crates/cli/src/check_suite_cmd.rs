//! `cascade check-suite SUITE.toml [--jobs N] [--brokers B --work-topic T]`: a regression matrix.
//! Each case replays a log (under a scenario, with engine flags) and compares the run with a
//! golden file the way `cascade check` does; one summary at the end, exit 1 when a case fails.
//!
//! The suite file:
//!
//! ```toml
//! [[case]]
//! name = "ethb-osm0"                 # default: the golden's file stem
//! log = "ethb"                       # log directory
//! expect = "golden/ethb-osm0.json"   # golden run file (.json or .jsonl)
//! scenario = "fixtures/scenarios/ethb-mat-1.5.toml"   # optional
//! flags = ["--osm-hop", "0"]         # optional: engine flags of `cascade check`
//! golden_fields = ["liquidations.verdict"]            # optional, as --golden-fields
//! tolerance_ppm = 0                  # optional, as --tolerance-ppm
//! ```
//!
//! Paths are relative to the suite file's folder. A scenario's path as written is the origin its
//! runs record (as `cascade check --scenario PATH` records PATH), so write it as the goldens were
//! made. With `--brokers`, the cases go to `cascade worker` processes through the work topic of
//! `cascade sweep --brokers`; a case's scenario and golden travel in the task.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use cascade_engine::Run;
use cascade_kafka::work::{Collected, Outcome as TaskOutcome};
use cascade_run::compare::{DiffOptions, project};
use cascade_run::diff_runs;
use cascade_run::lines as run_lines;
use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::Outcome;
use crate::engine_args::EngineArgs;
use crate::replay_cmd::run_bytes;
use crate::sweep_cmd::WorkArgs;
use crate::work_task::{LogRef, ScenarioText, Task, TaskResult, job_id};

/// Detail lines kept per failed case.
const MAX_DETAIL_LINES: usize = 20;

/// `cascade check-suite`.
#[derive(clap::Args)]
pub struct CheckSuiteArgs {
    /// The suite file (TOML, `[[case]]` tables).
    suite: PathBuf,
    /// Cases run at once on this machine [default: all cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Folder a scenario's relative data paths are read from (default: `$CASCADE_DATA_DIR`, else
    /// the scenario file's folder).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    work: WorkArgs,
}

/// One case as the suite file gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: Option<String>,
    log: PathBuf,
    expect: PathBuf,
    scenario: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    golden_fields: Vec<String>,
    #[serde(default)]
    tolerance_ppm: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    case: Vec<CaseSpec>,
}

/// A case ready to run here or on a worker: everything but the log travels with it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseTask {
    /// The case's name.
    pub name: String,
    /// The log.
    pub log: LogRef,
    /// Engine flags.
    pub flags: Vec<String>,
    /// The scenario, if any.
    pub scenario: Option<ScenarioText>,
    /// The golden file's name (its form: `.jsonl` is the line form).
    pub golden_name: String,
    /// The golden file's text.
    pub golden: String,
    /// As `--golden-fields`.
    pub golden_fields: Vec<String>,
    /// As `--tolerance-ppm`.
    pub tolerance_ppm: u64,
}

/// A case's verdict.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseOutcome {
    /// Whether the run matches the golden.
    pub passed: bool,
    /// The differences' summary and first details (empty when it passed).
    pub lines: Vec<String>,
}

/// The engine flags of `cascade check`, parsed from a case's `flags`.
#[derive(Parser)]
#[command(name = "flags", no_binary_name = true)]
struct CaseFlags {
    #[command(flatten)]
    engine: EngineArgs,
}

/// Runs `cascade check-suite`.
pub fn run(args: CheckSuiteArgs) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(&args.suite)
        .with_context(|| format!("reading suite {}", args.suite.display()))?;
    let suite: SuiteFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.suite.display()))?;
    if suite.case.is_empty() {
        bail!("{}: no [[case]]", args.suite.display());
    }
    let base = args.suite.parent().unwrap_or(Path::new("")).to_path_buf();
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("CASCADE_DATA_DIR").map(PathBuf::from));
    let mut cases = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for spec in &suite.case {
        let case = case_task(spec, &base, data_dir.as_deref(), &args.work)
            .with_context(|| format!("{}: case {}", args.suite.display(), spec.expect.display()))?;
        if !names.insert(case.name.clone()) {
            bail!(
                "{}: two cases are named {:?}: give each a distinct name",
                args.suite.display(),
                case.name
            );
        }
        cases.push((spec.log.clone(), case));
    }
    tracing::info!(
        "checking {} from {}",
        cascade_diff::story::count(cases.len() as u64, "case"),
        args.suite.display()
    );
    let outcomes = match &args.work.brokers {
        Some(_) => distributed(&args, &cases)?,
        None => local(&args, &base, &cases, data_dir.as_deref()),
    };
    Ok(print_summary(&cases, &outcomes))
}

/// Reads a case's files and flags into a task; a case whose files are missing fails here, before
/// anything runs.
fn case_task(
    spec: &CaseSpec,
    base: &Path,
    data_dir: Option<&Path>,
    work: &WorkArgs,
) -> anyhow::Result<CaseTask> {
    CaseFlags::try_parse_from(&spec.flags).map_err(|e| anyhow::anyhow!("flags: {e}"))?;
    if spec.flags.iter().any(|f| f.starts_with("--scenario")) {
        bail!("flags: give the scenario with `scenario = \"FILE\"`, not --scenario");
    }
    let expect = base.join(&spec.expect);
    let golden = std::fs::read_to_string(&expect)
        .with_context(|| format!("reading golden {}", expect.display()))?;
    let log_dir = base.join(&spec.log);
    crate::existing_log(&log_dir)?;
    let log = match &work.brokers {
        Some(_) => work.log_ref(&log_dir)?,
        None => LogRef::of(&log_dir, None)?,
    };
    let scenario = match &spec.scenario {
        Some(written) => {
            let path = base.join(written);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading scenario {}", path.display()))?;
            let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
            let stem = path.file_stem().map_or_else(
                || "scenario".to_owned(),
                |s| s.to_string_lossy().into_owned(),
            );
            let parsed = cascade_engine::counterfactual::scenario::Scenario::parse(
                &text,
                written,
                &stem,
                data_dir.unwrap_or(&folder),
            )
            .with_context(|| format!("loading scenario {}", path.display()))?;
            Some(ScenarioText {
                file: written.clone(),
                stem,
                text,
                hash: crate::work_task::scenario_hash(&parsed)?,
            })
        }
        None => None,
    };
    let name = spec.name.clone().unwrap_or_else(|| {
        spec.expect
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    });
    Ok(CaseTask {
        name,
        log,
        flags: spec.flags.clone(),
        scenario,
        golden_name: spec.expect.display().to_string(),
        golden,
        golden_fields: spec.golden_fields.clone(),
        tolerance_ppm: spec.tolerance_ppm,
    })
}

/// Runs the cases on `--jobs` threads of this machine, each taking the next case when free.
fn local(
    args: &CheckSuiteArgs,
    base: &Path,
    cases: &[(PathBuf, CaseTask)],
    data_dir: Option<&Path>,
) -> Vec<Result<CaseOutcome, String>> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, cases.len());
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Result<CaseOutcome, String>>>> =
        Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((log, case)) = cases.get(index) else {
                        break;
                    };
                    let outcome = run_task(case, &base.join(log), data_dir);
                    outcomes.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(outcome);
                }
            });
        }
    });
    outcomes
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("not run".to_owned())))
        .collect()
}

/// Sends the cases through the work topic and collects their verdicts.
fn distributed(
    args: &CheckSuiteArgs,
    cases: &[(PathBuf, CaseTask)],
) -> anyhow::Result<Vec<Result<CaseOutcome, String>>> {
    let encoded = serde_json::to_string(&cases.iter().map(|(_, c)| c).collect::<Vec<_>>())
        .context("encoding the cases")?;
    let job = job_id("suite", &[&encoded]);
    let tasks: Vec<(String, Task)> = cases
        .iter()
        .map(|(_, case)| {
            (
                format!("{job}/{}", case.name),
                Task::CheckCase(case.clone()),
            )
        })
        .collect();
    let what = format!("running {}", args.suite.display());
    let done = args.work.distribute(job, &tasks, "cases", &what)?;
    Ok(done
        .tasks
        .into_iter()
        .map(|Collected { outcome, worker }| match outcome {
            TaskOutcome::Done(TaskResult::Check(outcome)) => Ok(outcome),
            TaskOutcome::Done(other) => Err(format!("worker {worker} answered {other:?}")),
            TaskOutcome::Failed(reason) => Err(format!("on worker {worker}: {reason}")),
        })
        .collect())
}

/// Replays the case's log at `dir` and compares the run with the golden as `cascade check` does.
pub fn run_task(
    case: &CaseTask,
    dir: &Path,
    data_dir: Option<&Path>,
) -> Result<CaseOutcome, String> {
    let flags = CaseFlags::try_parse_from(&case.flags).map_err(|e| format!("flags: {e}"))?;
    let run = replay(&flags.engine, case, dir, data_dir).map_err(|e| format!("{e:#}"))?;
    compare(case, &run).map_err(|e| format!("{e:#}"))
}

fn replay(
    engine: &EngineArgs,
    case: &CaseTask,
    dir: &Path,
    data_dir: Option<&Path>,
) -> anyhow::Result<Run> {
    match &case.scenario {
        None => engine.run_log(dir),
        Some(text) => {
            let scenario = text.parse(data_dir).map_err(anyhow::Error::msg)?;
            let config = engine.config()?;
            cascade_engine::counterfactual::scenario::replay_scenario(dir, &config, &scenario)
                .with_context(|| format!("replaying {} under {}", dir.display(), text.file))
        }
    }
}

/// `cascade check`'s comparison: a full golden equal byte for byte passes at once; otherwise the
/// golden (projected on the golden fields when given) is compared with the run by `diff_runs`.
fn compare(case: &CaseTask, run: &Run) -> anyhow::Result<CaseOutcome> {
    let name = Path::new(&case.golden_name);
    let bytes = run_bytes(run, name);
    if case.golden.as_bytes() == bytes && case.golden_fields.is_empty() {
        return Ok(CaseOutcome {
            passed: true,
            lines: Vec::new(),
        });
    }
    let mut expected = crate::replay_cmd::parse_run_file(name, case.golden.as_bytes())?;
    if !case.golden_fields.is_empty() {
        expected = project(&expected, &case.golden_fields);
    }
    let actual = run_lines::parse(&bytes).context("the engine wrote an invalid run file")?;
    let options = DiffOptions {
        tolerance_ppm: case.tolerance_ppm,
    };
    let diff = diff_runs(&expected, &actual, &options);
    if diff.is_empty() {
        return Ok(CaseOutcome {
            passed: true,
            lines: Vec::new(),
        });
    }
    let mut lines = diff.summary_lines();
    let details = diff.detail_lines();
    lines.extend(details.iter().take(MAX_DETAIL_LINES).cloned());
    if details.len() > MAX_DETAIL_LINES {
        lines.push(format!(
            "... {} more (cascade check --max-lines 0 shows all)",
            details.len() - MAX_DETAIL_LINES
        ));
    }
    Ok(CaseOutcome {
        passed: false,
        lines,
    })
}

/// Prints one line per case, the differences of each failed one, and the totals.
fn print_summary(
    cases: &[(PathBuf, CaseTask)],
    outcomes: &[Result<CaseOutcome, String>],
) -> Outcome {
    let mut out = String::new();
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    for ((_, case), outcome) in cases.iter().zip(outcomes) {
        match outcome {
            Ok(CaseOutcome { passed: true, .. }) => {
                passed += 1;
                out.push_str(&format!("PASS  {}\n", case.name));
            }
            Ok(CaseOutcome { lines, .. }) => {
                failed += 1;
                out.push_str(&format!(
                    "FAIL  {} ({} differs)\n",
                    case.name, case.golden_name
                ));
                for line in lines {
                    out.push_str(&format!("        {line}\n"));
                }
            }
            Err(reason) => {
                errors += 1;
                out.push_str(&format!("ERROR {}: {reason}\n", case.name));
            }
        }
    }
    out.push_str(&format!(
        "{}: {passed} passed, {failed} failed, {errors} could not run\n",
        cascade_diff::story::count(cases.len() as u64, "case")
    ));
    // A closed pipe (`| head`) ends the output, not the command.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if passed == cases.len() {
        Outcome::Clean
    } else {
        Outcome::Findings
    }
}
