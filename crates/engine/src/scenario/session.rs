//! Running a scenario over a log directory: history as recorded up to the window start, then the
//! counterfactual.
//!
//! [`prepare`] does everything all runs of one window share, once: it replays history (recorded
//! liquidations applied) up to the first event of the window and keeps the engine state there as a
//! checkpoint, also stored in the log's catalog so later invocations (and every point of a sweep)
//! start from it; and it collects the recorded price series the scenario's path transforms need.
//! [`run`] then resumes a counterfactual engine from that checkpoint and replays to the window end.
//! Nothing here reads a clock; the same log, configuration and scenario give the same run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_events::{Fixed, Id, Payload, Timestamp};
use cascade_log::{Catalog, LogReader};

use super::counterfactual::ScenarioRun;
use super::{PricePaths, Scenario, Window};
use crate::EngineError;
use crate::replay::{Engine, EngineConfig, Mode};
use crate::run::{LogInfo, Run};

/// What every run of one window over one log shares.
pub struct Prepared {
    dir: PathBuf,
    config: EngineConfig,
    window: Window,
    /// Engine state before the window's first event: (that event's seq, checkpoint bytes).
    start: Option<(u64, Vec<u8>)>,
    series: BTreeMap<Id, Vec<(Timestamp, Fixed)>>,
    log: LogInfo,
    /// Whether the window checkpoint came from the catalog rather than a replay.
    pub cached: bool,
}

impl Prepared {
    /// Sequence number the counterfactual runs start at (0 without a window start).
    pub fn start_seq(&self) -> u64 {
        self.start.as_ref().map_or(0, |(seq, _)| *seq)
    }
}

/// Replays history up to `scenario`'s window start (or finds that state in the catalog) and
/// collects the price series its transforms need. `config.from` is ignored: the window decides.
pub fn prepare(
    dir: &Path,
    config: &EngineConfig,
    scenario: &Scenario,
) -> Result<Prepared, EngineError> {
    let reader = LogReader::open(dir)?;
    let catalog = Catalog::open(dir)?;
    let mut config = config.clone();
    config.from = None;
    let mut start = None;
    let mut cached = false;
    if let Some(from) = scenario.window.from {
        let historical = Engine::new(config.clone(), Mode::Historical);
        let namespace = format!(
            "{}-window-{}-g{}",
            historical.namespace(),
            from.0,
            reader.generation()
        );
        start = catalog.checkpoint_at_or_before(&namespace, u64::MAX)?;
        cached = start.is_some();
        if start.is_none() {
            let mut engine = historical;
            for event in reader.events(0) {
                let event = event?;
                if event.time >= from {
                    break;
                }
                engine.apply(&event)?;
            }
            let seq = engine.next_seq().unwrap_or(0);
            let bytes = engine.checkpoint();
            catalog.put_checkpoint(&namespace, seq, &bytes)?;
            catalog.flush()?;
            start = Some((seq, bytes));
        }
    }
    let wanted = PricePaths::assets(&scenario.prices);
    let mut series: BTreeMap<Id, Vec<(Timestamp, Fixed)>> = BTreeMap::new();
    if !wanted.is_empty() {
        for event in reader.events(0) {
            let event = event?;
            if let Payload::Price(update) = event.payload
                && wanted.contains(&update.asset)
            {
                series
                    .entry(update.asset)
                    .or_default()
                    .push((event.time, update.price));
            }
        }
    }
    let identity = catalog.identity()?;
    Ok(Prepared {
        dir: dir.to_path_buf(),
        config,
        window: scenario.window,
        start,
        series,
        log: LogInfo {
            first_seq: identity.last_seq.map(|_| identity.first_seq),
            last_seq: identity.last_seq,
            content_hash: identity.hash.iter().map(|b| format!("{b:02x}")).collect(),
        },
        cached,
    })
}

/// Runs `scenario` from the prepared window start to its end. The scenario must have the window
/// and price transforms `prepared` was made for (a sweep changes only parameter overrides).
pub fn run(prepared: &Prepared, scenario: &Scenario) -> Result<Run, EngineError> {
    let paths = scenario.price_paths(prepared.series.clone())?;
    let mut config = prepared.config.clone();
    config.from = prepared.window.from;
    let counterfactual = ScenarioRun::new(scenario.clone(), paths, config.maker.hop);
    let mut engine = Engine::new(config, Mode::Counterfactual(Box::new(counterfactual)));
    if let Some((seq, bytes)) = &prepared.start {
        engine.restore(bytes, *seq)?;
    }
    let reader = LogReader::open(&prepared.dir)?;
    for event in reader.events(prepared.start_seq()) {
        let event = event?;
        if prepared.window.to.is_some_and(|to| event.time >= to) {
            break;
        }
        engine.apply(&event)?;
    }
    Ok(engine.finish(prepared.log.clone()))
}

/// [`prepare`] then [`run`]: one counterfactual replay of `scenario` over the log at `dir`.
pub fn replay_scenario(
    dir: &Path,
    config: &EngineConfig,
    scenario: &Scenario,
) -> Result<Run, EngineError> {
    run(&prepare(dir, config, scenario)?, scenario)
}
