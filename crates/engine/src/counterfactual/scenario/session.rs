//! Running a scenario over a log directory: history as recorded up to the window start, then the
//! counterfactual.
//!
//! [`prepare`] does everything all runs of one window share, once: it replays history (recorded
//! liquidations applied) up to the first event of the window and keeps the engine state there as a
//! checkpoint, also stored in the log's catalog so later invocations (and every point of a sweep)
//! start from it; and it collects the recorded price series the scenario's path transforms need.
//! It also reads which markets each protocol's events name, and refuses an override or sweep axis
//! naming a market the log never names (a typo would otherwise change nothing, silently).
//! [`run`] then resumes a counterfactual engine from that checkpoint and replays to the window end.
//! Nothing here reads a clock; the same log, configuration and scenario give the same run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cascade_events::{Event, Fixed, Id, Payload, Protocol, Timestamp};
use cascade_log::{Catalog, LogReader};

use super::counterfactual::ScenarioRun;
use super::{
    MarketSel, PricePaths, PriceSource, Scenario, ScenarioError, ScenarioWindow, SweepAxis,
};
use crate::EngineError;
use crate::core::replay::{Engine, EngineConfig, Mode};
use crate::core::session::{log_info, open_catalog};
use crate::protocols::maker::MakerConfig;
use crate::run::{LogInfo, Run};

/// What every run of one window over one log shares.
pub struct Prepared {
    dir: PathBuf,
    config: EngineConfig,
    window: ScenarioWindow,
    /// Engine state before the window's first event: (that event's seq, checkpoint bytes).
    start: Option<(u64, Vec<u8>)>,
    series: BTreeMap<Id, Vec<(Timestamp, Fixed)>>,
    /// Every market and asset the log's events of each protocol name.
    markets: BTreeMap<Protocol, BTreeSet<Id>>,
    log: LogInfo,
    /// Whether the window checkpoint came from the catalog rather than a replay.
    pub cached: bool,
}

impl Prepared {
    /// Sequence number the counterfactual runs start at (0 without a window start).
    pub fn start_seq(&self) -> u64 {
        self.start.as_ref().map_or(0, |(seq, _)| *seq)
    }

    /// Refuses a market the log never names for its protocol: `market` of `protocol`, named at
    /// `place` (for messages). A market the log names only after the override takes effect is
    /// fine: the parameter is set on the model then and the market's first events run under it.
    fn check_market(
        &self,
        place: impl FnOnce() -> String,
        protocol: Protocol,
        market: MarketSel,
    ) -> Result<(), ScenarioError> {
        let MarketSel::One(market) = market else {
            return Ok(());
        };
        let known = self.markets.get(&protocol);
        if known.is_some_and(|names| names.contains(&market)) {
            return Ok(());
        }
        let known = match known {
            Some(names) => {
                // The protocol's own name is where global parameter changes are filed.
                let global = Id::name(protocol.name());
                let names: Vec<String> = names
                    .iter()
                    .filter(|name| **name != global)
                    .map(Id::to_string)
                    .collect();
                format!("its {protocol} markets and assets: {}", names.join(", "))
            }
            None => format!("it has no {protocol} events"),
        };
        Err(ScenarioError::UnknownMarket {
            place: place(),
            protocol,
            market,
            known,
        })
    }

    /// Checks that every override of `scenario` names a market the log has (see
    /// [`Prepared::check_market`]).
    pub fn check_overrides(&self, scenario: &Scenario) -> Result<(), ScenarioError> {
        for (index, o) in scenario.overrides.iter().enumerate() {
            self.check_market(
                || format!("{}: override[{index}].market", scenario.origin),
                o.protocol,
                o.market,
            )?;
        }
        Ok(())
    }

    /// Checks that every sweep axis names a market the log has.
    pub fn check_axes(&self, axes: &[SweepAxis]) -> Result<(), ScenarioError> {
        for axis in axes {
            self.check_market(
                || format!("--param {}", axis.key),
                axis.protocol,
                axis.market,
            )?;
        }
        Ok(())
    }
}

/// Adds the markets and assets `payload` names to its protocol's set in `out`.
pub fn note_markets(payload: &Payload, out: &mut BTreeMap<Protocol, BTreeSet<Id>>) {
    let Some(protocol) = payload.protocol() else {
        return;
    };
    let names: &[Id] = match payload {
        Payload::VaultOpen(e) => &[e.market],
        Payload::Deposit(e) | Payload::Withdraw(e) | Payload::Borrow(e) | Payload::Repay(e) => {
            &[e.market, e.asset]
        }
        Payload::Liquidation(e) => &[e.market, e.collateral_asset, e.debt_asset],
        Payload::PartialLiquidation(e) => &[e.market, e.collateral_asset, e.debt_asset],
        Payload::CollateralToggle(e) => &[e.market, e.asset],
        Payload::IndexUpdate(e) => &[e.market, e.asset],
        Payload::PositionSnapshot(e) => &[e.market, e.asset],
        Payload::AccountTotals(e) => &[e.market],
        Payload::ParamChange(e) => &[e.market],
        Payload::AuctionKick(e) => &[e.market],
        Payload::AuctionTake(e) => &[e.market],
        Payload::OracleValue(e) => &[e.market],
        Payload::OracleSourceChange(e) => &[e.asset],
        Payload::Price(_) => &[],
    };
    out.entry(protocol)
        .or_default()
        .extend(names.iter().copied());
}

/// Replays history up to `scenario`'s window start (or finds that state in the catalog), collects
/// the price series its transforms need and the markets the log names, and refuses an override of
/// a market the log never names ([`ScenarioError::UnknownMarket`]). `config.from` is ignored: the
/// window decides.
pub fn prepare(
    dir: &Path,
    config: &EngineConfig,
    scenario: &Scenario,
) -> Result<Prepared, EngineError> {
    let reader = LogReader::open(dir)?;
    let catalog = open_catalog(dir);
    let mut config = config.clone();
    config.from = None;
    // The window checkpoint and the pass over the whole log for prices and market names do not
    // depend on each other: the pass runs on a second thread meanwhile.
    let (start, scan) = std::thread::scope(|scope| {
        let scan = scope.spawn(|| scan_log(dir, scenario));
        let start = window_checkpoint(&reader, catalog.as_ref(), &config, scenario.window);
        let scan = scan
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (start, scan)
    });
    let (start, cached) = start?;
    let LogScan {
        series,
        markets,
        priced,
        span,
    } = scan?;
    check_against_log(scenario, &priced, span)?;
    let log = log_info(catalog.as_ref(), &reader)?;
    let prepared = Prepared {
        dir: dir.to_path_buf(),
        config,
        window: scenario.window,
        start,
        series,
        markets,
        log,
        cached,
    };
    prepared.check_overrides(scenario)?;
    Ok(prepared)
}

/// The engine state before the window's first event, (that event's seq, checkpoint bytes), from
/// the catalog or replayed and stored there (when there is a catalog); and whether it came from
/// the catalog. `None` without a window start.
fn window_checkpoint(
    reader: &LogReader,
    catalog: Option<&Catalog>,
    config: &EngineConfig,
    window: ScenarioWindow,
) -> Result<(Option<Checkpoint>, bool), EngineError> {
    let Some(from) = window.from else {
        return Ok((None, false));
    };
    let historical = Engine::new(config.clone(), Mode::Historical);
    let namespace = format!(
        "{}-window-{}-g{}",
        historical.namespace(),
        from.0,
        reader.generation()
    );
    // A checkpoint an older engine wrote in another state layout is not resumable: replay
    // and store it anew rather than fail (the window's seq is the same, so it is replaced).
    let stored = match catalog {
        Some(catalog) => catalog.checkpoint_at_or_before(&namespace, u64::MAX)?,
        None => None,
    };
    let cached = stored.filter(|(seq, bytes)| {
        Engine::new(config.clone(), Mode::Historical)
            .restore(bytes, *seq)
            .is_ok()
    });
    if cached.is_some() {
        return Ok((cached, true));
    }
    let mut engine = historical;
    for event in reader.events(0) {
        let event = event?;
        if event.time >= from {
            break;
        }
        engine.apply(&event)?;
    }
    let seq = engine.next_seq().unwrap_or(0);
    let bytes = engine.checkpoint()?;
    if let Some(catalog) = catalog {
        catalog.put_checkpoint(&namespace, seq, &bytes)?;
        catalog.flush()?;
    }
    Ok((Some((seq, bytes)), false))
}

/// A window checkpoint: the seq of the window's first event, and the engine state before it.
type Checkpoint = (u64, Vec<u8>);

/// What one pass over the whole log finds for a scenario.
struct LogScan {
    /// Recorded price series of the assets the scenario's transforms change.
    series: BTreeMap<Id, Vec<(Timestamp, Fixed)>>,
    /// Market names by protocol.
    markets: BTreeMap<Protocol, BTreeSet<Id>>,
    /// Every asset the log prices.
    priced: BTreeSet<Id>,
    /// The earliest and latest event time; `None` for an empty log.
    span: Option<(Timestamp, Timestamp)>,
}

/// One pass over the whole log: the recorded price series `scenario`'s transforms need, every
/// market and asset each protocol's events name, the assets priced and the time range.
fn scan_log(dir: &Path, scenario: &Scenario) -> Result<LogScan, EngineError> {
    let reader = LogReader::open(dir)?;
    let wanted = PricePaths::assets(&scenario.prices);
    let mut scan = LogScan {
        series: BTreeMap::new(),
        markets: BTreeMap::new(),
        priced: BTreeSet::new(),
        span: None,
    };
    for event in reader.events(0) {
        let event = event?;
        let (first, last) = scan.span.get_or_insert((event.time, event.time));
        *first = (*first).min(event.time);
        *last = (*last).max(event.time);
        if let Payload::Price(update) = event.payload {
            scan.priced.insert(update.asset);
            if wanted.contains(&update.asset) {
                scan.series
                    .entry(update.asset)
                    .or_default()
                    .push((event.time, update.price));
            }
        } else {
            note_markets(&event.payload, &mut scan.markets);
        }
    }
    Ok(scan)
}

/// Refuses what the log makes pointless: an oracle reading an asset the log never prices, and
/// a window that holds none of the log's events.
fn check_against_log(
    scenario: &Scenario,
    priced: &BTreeSet<Id>,
    span: Option<(Timestamp, Timestamp)>,
) -> Result<(), ScenarioError> {
    for (index, rule) in scenario.oracle.iter().enumerate() {
        if let Some(PriceSource::Asset(asset)) = rule.source
            && !priced.contains(&asset)
        {
            let names: Vec<String> = priced.iter().map(Id::to_string).collect();
            return Err(ScenarioError::UnpricedSource {
                file: scenario.origin.clone(),
                index,
                asset,
                priced: if names.is_empty() {
                    "it prices no asset".to_owned()
                } else {
                    format!("it prices {}", names.join(", "))
                },
            });
        }
    }
    let window = scenario.window;
    let outside = match span {
        None => window.from.is_some() || window.to.is_some(),
        Some((first, last)) => {
            window.from.is_some_and(|from| from > last) || window.to.is_some_and(|to| to <= first)
        }
    };
    if outside {
        let bound = |t: Option<Timestamp>| t.map_or("..".to_owned(), |t| t.to_rfc3339());
        return Err(ScenarioError::WindowOutsideLog {
            file: scenario.origin.clone(),
            window: format!("[{}, {})", bound(window.from), bound(window.to)),
            events: span.map_or("the log has no events".to_owned(), |(first, last)| {
                format!(
                    "they run from {} to {}",
                    first.to_rfc3339(),
                    last.to_rfc3339()
                )
            }),
        });
    }
    Ok(())
}

/// Runs `scenario` from the prepared window start to its end. The scenario must have the window
/// and price transforms `prepared` was made for (a sweep changes only parameter overrides).
pub fn run(prepared: &Prepared, scenario: &Scenario) -> Result<Run, EngineError> {
    run_from(prepared, scenario, None)
}

/// The engine state at the window start, decoded from the prepared checkpoint once so that
/// [`run_from`] can copy it for each of many runs (a million-vault state decodes in a quarter of
/// a second, copies in a tenth of that). `None` without a window start.
pub fn window_state(prepared: &Prepared) -> Result<Option<Engine>, EngineError> {
    let Some((seq, bytes)) = &prepared.start else {
        return Ok(None);
    };
    let mut engine = Engine::new(window_config(prepared), Mode::Historical);
    engine.restore(bytes, *seq)?;
    Ok(Some(engine))
}

fn window_config(prepared: &Prepared) -> EngineConfig {
    let mut config = prepared.config.clone();
    config.from = prepared.window.from;
    config.to = prepared.window.to;
    config
}

/// [`run`], starting from `start` ([`window_state`] of the same `prepared`) when given instead
/// of decoding the checkpoint.
pub fn run_from(
    prepared: &Prepared,
    scenario: &Scenario,
    start: Option<&Engine>,
) -> Result<Run, EngineError> {
    let mut engine = window_engine(prepared, scenario, start)?;
    let reader = LogReader::open(&prepared.dir)?;
    for event in reader.events(prepared.start_seq()) {
        let event = event?;
        if prepared.window.to.is_some_and(|to| event.time >= to) {
            break;
        }
        engine.apply(&event)?;
    }
    engine.finish(prepared.log.clone())
}

/// The events of the window, in log order, decoded once for the many runs of a sweep
/// ([`point_from`]).
pub(crate) fn window_events(prepared: &Prepared) -> Result<Vec<Event>, EngineError> {
    let reader = LogReader::open(&prepared.dir)?;
    let mut events = Vec::new();
    for event in reader.events(prepared.start_seq()) {
        let event = event?;
        if prepared.window.to.is_some_and(|to| event.time >= to) {
            break;
        }
        events.push(event);
    }
    Ok(events)
}

/// [`run_from`] for a sweep point, over the window's `events` ([`window_events`] of the same
/// `prepared`): the run without its per-liquidation records (its totals, state hash and
/// counterfactual report are those of the full run), and how many distinct accounts were
/// liquidated.
pub(crate) fn point_from(
    prepared: &Prepared,
    scenario: &Scenario,
    start: Option<&Engine>,
    events: &[Event],
) -> Result<(Run, u64), EngineError> {
    let mut engine = window_engine(prepared, scenario, start)?;
    engine.totals_only();
    for event in events {
        engine.apply(event)?;
    }
    let accounts = engine.accounts_liquidated();
    Ok((engine.finish(prepared.log.clone())?, accounts))
}

/// The counterfactual engine of `scenario` at the window start.
fn window_engine(
    prepared: &Prepared,
    scenario: &Scenario,
    start: Option<&Engine>,
) -> Result<Engine, EngineError> {
    let paths = scenario.price_paths(prepared.series.clone())?;
    let config = window_config(prepared);
    let counterfactual = ScenarioRun::new(
        scenario.clone(),
        paths,
        MakerConfig::of(&config.protocols).hop,
    );
    let mut engine = Engine::new(config, Mode::Counterfactual(Box::new(counterfactual)));
    match (start, &prepared.start) {
        (Some(start), _) => engine.restore_from(start)?,
        (None, Some((seq, bytes))) => engine.restore(bytes, *seq)?,
        (None, None) => {}
    }
    Ok(engine)
}

/// [`prepare`] then [`run`]: one counterfactual replay of `scenario` over the log at `dir`.
pub fn replay_scenario(
    dir: &Path,
    config: &EngineConfig,
    scenario: &Scenario,
) -> Result<Run, EngineError> {
    run(&prepare(dir, config, scenario)?, scenario)
}
