//! The tasks `cascade` hands to workers through Kafka (sweep points, check cases): how a task
//! names its log and scenario so that any worker can check it runs on exactly the coordinator's,
//! and what comes back.
//!
//! A log is named by its identity (`cascade log verify` prints it: the BLAKE3 content hash and the
//! event count), a scenario by its text and the hash of what it parses to, so a worker that
//! resolves a scenario's data files differently is refused instead of running something else.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use cascade_engine::counterfactual::scenario::{PointResult, Scenario};
use cascade_events::Fixed;
use cascade_log::{Catalog, LogIdentity, LogReader};
use serde::{Deserialize, Serialize};

/// A log as a task names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogRef {
    /// The coordinator's directory name, to look it up in a shared folder.
    pub name: String,
    /// BLAKE3 content hash, 64 hex digits.
    pub hash: String,
    /// Events in the log.
    pub events: u64,
    /// The topic it was published to, for workers that have to fetch it.
    pub topic: Option<String>,
}

impl LogRef {
    /// The identity of the log at `dir` (from its catalog when the stored one is current).
    pub fn of(dir: &Path, topic: Option<String>) -> anyhow::Result<LogRef> {
        let identity = match Catalog::open(dir) {
            Ok(catalog) => catalog.identity(),
            Err(_) => LogReader::open(dir).and_then(|reader| reader.identity()),
        }
        .with_context(|| format!("reading the identity of log {}", dir.display()))?;
        let name = dir
            .file_name()
            .map_or_else(|| "log".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(LogRef {
            name,
            hash: identity.hash_hex(),
            events: identity.events,
            topic,
        })
    }

    /// Whether `identity` is this log's.
    pub fn is(&self, identity: &LogIdentity) -> bool {
        identity.hash_hex() == self.hash && identity.events == self.events
    }

    /// `NAME (blake3 HASH, N events)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (blake3 {}, {} events)",
            self.name, self.hash, self.events
        )
    }
}

/// A scenario as a task carries it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScenarioText {
    /// The file as the coordinator named it (the scenario's origin).
    pub file: String,
    /// The name used when the file gives none (its stem).
    pub stem: String,
    /// The file's text.
    pub text: String,
    /// BLAKE3 of the parsed scenario's JSON form.
    pub hash: String,
}

impl ScenarioText {
    /// The text of the scenario file at `path`, which parsed to `scenario`.
    pub fn read(path: &Path, scenario: &Scenario) -> anyhow::Result<ScenarioText> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        Ok(ScenarioText {
            file: path.display().to_string(),
            stem: path.file_stem().map_or_else(
                || "scenario".to_owned(),
                |s| s.to_string_lossy().into_owned(),
            ),
            text,
            hash: scenario_hash(scenario)?,
        })
    }

    /// Parses the text the way the coordinator did, its data paths resolved against `data_dir`
    /// (or the working directory), and checks it means the same.
    pub fn parse(&self, data_dir: Option<&Path>) -> Result<Scenario, String> {
        let base = data_dir.unwrap_or(Path::new("."));
        let scenario = Scenario::parse(&self.text, &self.file, &self.stem, base).map_err(|e| {
            format!(
                "scenario {}: {e} (relative data paths are read from {}; give the worker --data-dir)",
                self.file,
                base.display()
            )
        })?;
        let hash = scenario_hash(&scenario).map_err(|e| e.to_string())?;
        if hash != self.hash {
            return Err(format!(
                "scenario {} reads differently on this worker (its data files under {} differ from \
                 the coordinator's)",
                self.file,
                base.display()
            ));
        }
        Ok(scenario)
    }
}

/// BLAKE3 of a scenario's JSON form, 64 hex digits.
pub fn scenario_hash(scenario: &Scenario) -> anyhow::Result<String> {
    let json = serde_json::to_vec(scenario).context("encoding the scenario")?;
    Ok(blake3::hash(&json).to_hex().to_string())
}

/// What a worker is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Task {
    /// One point of a sweep.
    SweepPoint(SweepPoint),
    /// One case of a check suite.
    CheckCase(crate::check_suite_cmd::CaseTask),
}

/// One point of a sweep: the sweep's axes as written, and which value of each this point takes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SweepPoint {
    /// The log.
    pub log: LogRef,
    /// The scenario every point starts from; the baseline when absent.
    pub scenario: Option<ScenarioText>,
    /// The `--param` specs, in order.
    pub axes: Vec<String>,
    /// For each axis, the index of this point's value.
    pub point: Vec<usize>,
}

/// What a task produced.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TaskResult {
    /// A sweep point's numbers.
    Point(PointOutcome),
    /// A check case's verdict.
    Check(crate::check_suite_cmd::CaseOutcome),
}

/// A [`PointResult`] without its parameter values (the coordinator knows them).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PointOutcome {
    liquidations: u64,
    accounts_hit: u64,
    collateral_seized: BTreeMap<String, String>,
    debt_repaid: BTreeMap<String, String>,
    bad_debt: BTreeMap<String, String>,
    cascade_depth: u64,
    state_hash: String,
}

impl PointOutcome {
    /// The numbers of `result`.
    pub fn of(result: PointResult) -> PointOutcome {
        PointOutcome {
            liquidations: result.liquidations,
            accounts_hit: result.accounts_hit,
            collateral_seized: result.collateral_seized,
            debt_repaid: result.debt_repaid,
            bad_debt: result.bad_debt,
            cascade_depth: result.cascade_depth,
            state_hash: result.state_hash,
        }
    }

    /// The result of the point at `values`.
    pub fn at(self, values: Vec<Fixed>) -> PointResult {
        PointResult {
            values,
            liquidations: self.liquidations,
            accounts_hit: self.accounts_hit,
            collateral_seized: self.collateral_seized,
            debt_repaid: self.debt_repaid,
            bad_debt: self.bad_debt,
            cascade_depth: self.cascade_depth,
            state_hash: self.state_hash,
        }
    }
}

/// A job id: the first 16 hex digits of BLAKE3 over `parts`, each length-prefixed so that no two
/// lists of parts collide.
pub fn job_id(kind: &str, parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in std::iter::once(kind).chain(parts.iter().copied()) {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let hex = hasher.finalize().to_hex();
    format!("{kind}-{}", &hex[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_stable_and_keep_their_parts_apart() {
        let id = job_id("sweep", &["ab", "c"]);
        assert_eq!(id, job_id("sweep", &["ab", "c"]));
        assert!(
            id.starts_with("sweep-") && id.len() == "sweep-".len() + 16,
            "{id}"
        );
        assert_ne!(id, job_id("sweep", &["a", "bc"]));
        assert_ne!(id, job_id("suite", &["ab", "c"]));
    }

    #[test]
    fn a_scenario_that_reads_differently_on_the_worker_is_refused() {
        let text = "name = \"mat\"\n[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-A\"\nparam = \"mat\"\nvalue = 1.6\n";
        let scenario = Scenario::parse(text, "s.toml", "s", Path::new(".")).unwrap();
        let mut shipped = ScenarioText {
            file: "s.toml".to_owned(),
            stem: "s".to_owned(),
            text: text.to_owned(),
            hash: scenario_hash(&scenario).unwrap(),
        };
        assert_eq!(shipped.parse(None).unwrap(), scenario);
        shipped.hash = scenario_hash(&Scenario::baseline()).unwrap();
        let error = shipped.parse(None).unwrap_err();
        assert!(
            error.contains("reads differently on this worker"),
            "{error}"
        );
    }
}
