//! The replay loop: events in log order through the price book and the protocol models.
//!
//! Single-threaded and deterministic: state moves only by events, in sequence order; time comes
//! from the events. For each event the loop (1) advances every model's clock, (2) routes the
//! event (prices to the book and every model, recorded liquidations to judgement, everything else
//! to its protocol's model by [`cascade_events::Payload::protocol`]), (3) when a price a model
//! reads changed, lists that model's liquidatable accounts (through its index) and takes a risk
//! snapshot for the timeline. It must never allocate per ordinary event, scan all accounts, or
//! read a clock.
//!
//! Modes: [`Mode::Historical`] judges and applies the recorded liquidations.
//! [`Mode::Counterfactual`] is the seam for scenarios (issue #5): recorded liquidations are
//! skipped, a [`Counterfactual`] policy liquidates through
//! [`ProtocolModel::simulate_liquidation`], and the prices its sales move feed back into the book.

use std::collections::{BTreeMap, BTreeSet};

use cascade_events::{
    Event, EventKind, Id, Liquidation, PartialLiquidation, Payload, PriceUpdate, Protocol,
    Timestamp,
};

use super::episodes::{RecordedOutcome, excess_debt, mark_disagreements};
use super::tracker::{Episode, Tracker};
use super::unknown_side::{self, UNDERIVED};
use crate::EngineError;
use crate::leverage::loops::{Correlation, Position};
use crate::oracle::{PriceBook, QuoteConversion};
use crate::protocol::accounts::{AccountPosition, AccountsCapture, SnapshotDifference};
use crate::protocol::param::ParamSetting;
use crate::protocol::registry::{ProtocolSet, ReplayKind};
use crate::protocol::{
    Applied, Candidate, EpisodeAccount, HealthDistribution, Judgement, LiquidatorChoice,
    MarketRisk, ProtocolModel, Quantity, SimulatedLiquidation, Verdict,
};
use crate::run::{
    CounterfactualReport, HealthSnapshot, LiquidationRecord, LogInfo, Moment, Origin,
    ParamHistoryEntry, PriceTrigger, QuoteConversionSetting, RUN_SCHEMA_VERSION, Run, RunConfig,
    ScenarioInfo, SeizeResult, TimelinePoint, Totals, UnsafeEpisode, Window, percent,
};
use crate::state::{StateReader, StateWriter};

/// Settings that shape a replay's results. All of them go into the run file's `config` and into
/// the checkpoint namespace, except `from`, which only chooses what is reported.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The protocols modelled, each with its settings (Maker: OSM delay, price sources,
    /// tolerances).
    pub protocols: ProtocolSet,
    /// Feeds in order of preference when several price one pair (empty: finest live feed).
    pub feed_priority: Vec<Id>,
    /// Quote units converted to another through the book's own rate (default: USDT -> USD).
    pub quote_conversions: Vec<QuoteConversion>,
    /// An account unsafe for longer than this many seconds without a recorded liquidation is
    /// reported in `unsafe_unliquidated`.
    pub unsafe_threshold: i64,
    /// Report only events at or after this time (`--from`); the state before it is still built.
    pub from: Option<Timestamp>,
    /// The window ends before this time (`--to`, exclusive like a scenario's `window.to`): the
    /// drivers stop at the first event at or after it, so `after` is taken at the window's end.
    pub to: Option<Timestamp>,
    /// Counterfactual mode: at most this many liquidation rounds after one event (each round
    /// liquidates what the previous round's price impact made unsafe).
    pub max_cascade_rounds: u32,
    /// Governance changes brought from a file (`--params`), applied at their time.
    pub params: crate::core::param_history::ParamHistory,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            protocols: ProtocolSet::default(),
            feed_priority: Vec::new(),
            quote_conversions: vec![QuoteConversion::usdt_to_usd()],
            unsafe_threshold: 3600,
            from: None,
            to: None,
            max_cascade_rounds: 32,
            params: Default::default(),
        }
    }
}

impl EngineConfig {
    /// Whether an event at `time` lies at or after the window's end (`to`), where a replay stops.
    pub fn past_window(&self, time: Timestamp) -> bool {
        self.to.is_some_and(|to| time >= to)
    }

    /// The settings as they appear in the run file.
    pub fn describe(&self) -> RunConfig {
        let mut config = RunConfig {
            feed_priority: self.feed_priority.iter().map(Id::to_string).collect(),
            maker: None,
            max_cascade_rounds: self.max_cascade_rounds,
            // Only a run given a history says so: runs without one keep their bytes.
            params: self
                .params
                .entries
                .iter()
                .map(|e| ParamHistoryEntry {
                    market: e.setting.market.map(|m| m.to_string()),
                    param: e.name.clone(),
                    protocol: e.setting.param.protocol.name().to_owned(),
                    source: e.source.clone(),
                    time: e.time,
                    value: e.setting.value,
                })
                .collect(),
            quote_conversions: self
                .quote_conversions
                .iter()
                .map(|c| QuoteConversionSetting {
                    from: c.from.to_string(),
                    max_age_seconds: c.max_age,
                    to: c.to.to_string(),
                })
                .collect(),
            unsafe_threshold_seconds: self.unsafe_threshold,
        };
        self.protocols.describe(&mut config);
        config
    }
}

/// How recorded liquidations are treated.
pub enum Mode {
    /// Judge each recorded liquidation against the rebuilt state, then apply it.
    Historical,
    /// Skip recorded liquidations; let a simulated liquidator act (issue #5).
    Counterfactual(Box<dyn Counterfactual>),
}

/// The hooks a counterfactual scenario gives the replay loop (issue #5 implements them).
pub trait Counterfactual {
    /// The scenario as written to the run file's `scenario` key.
    fn describe(&self) -> ScenarioInfo;

    /// A stable fingerprint of everything in the scenario that changes results (for checkpoint
    /// namespaces): equal fingerprints must mean equal runs.
    fn fingerprint(&self) -> [u8; 32];

    /// Parameter settings due at `time` (all of them before the first event, the rest at their
    /// `from` time): overrides and the oracle delay; each is returned once.
    fn due_overrides(&mut self, time: Timestamp, out: &mut Vec<ParamSetting>);

    /// The price the world sees instead of a recorded one (shock scaling, time shift, caps, the
    /// lingering impact of earlier sales).
    fn transform_price(&mut self, update: &PriceUpdate, time: Timestamp) -> PriceUpdate;

    /// Which of the liquidatable `candidates` (riskiest first) to liquidate now, and how:
    /// indices into `candidates` with the choice for each.
    fn choose(
        &mut self,
        time: Timestamp,
        candidates: &[Candidate],
        out: &mut Vec<(usize, LiquidatorChoice)>,
    );

    /// Told about each simulated liquidation; returns the price updates its sale causes (price
    /// impact), which the book records before the next round.
    fn on_liquidation(
        &mut self,
        time: Timestamp,
        liquidation: &SimulatedLiquidation,
        out: &mut Vec<PriceUpdate>,
    );

    /// Whether a recorded governance change still applies (`false`: a scenario override pinned
    /// that parameter; the change is skipped and counted).
    fn keeps_param_change(
        &mut self,
        _change: &cascade_events::ParamChange,
        _time: Timestamp,
    ) -> bool {
        true
    }

    /// The loop depth every looped position is unwound to at the window start
    /// (`leverage.max_loops`), with the correlation table loops are found with: returned once,
    /// at the window's first event, then `None`; always `None` without a cap.
    fn take_loop_cap(&mut self) -> Option<(u32, Correlation)> {
        None
    }

    /// Told what the loop cap did, per protocol.
    fn loops_capped(&mut self, _capped: &BTreeMap<Protocol, crate::leverage::cap::Capped>) {}

    /// The basis points taken off the thresholds of looped positions at the window start
    /// (`leverage.looped_threshold_cut_bps`), with the correlation table loops are found with:
    /// returned once, at the window's first event (after the loop cap), then `None`; always
    /// `None` without a cut.
    fn take_threshold_cut(&mut self) -> Option<(u16, Correlation)> {
        None
    }

    /// Told how many looped positions each protocol cut the thresholds of.
    fn thresholds_cut(&mut self, _cut: &BTreeMap<Protocol, u64>) {}

    /// The correlation groups the run's leverage figures use (`leverage.correlation`).
    fn correlation(&self) -> Correlation {
        Correlation::default()
    }

    /// Each protocol's simulated liquidations by what triggered them, for the overlap at the
    /// end of a run of several protocols.
    fn liquidations_by_trigger(&self) -> Vec<crate::run::TriggeredLiquidations> {
        Vec::new()
    }

    /// The cascade round of the liquidation last passed to [`Counterfactual::on_liquidation`],
    /// when the scenario tracks triggers itself (`None`: the loop's round is used).
    fn last_round(&self) -> Option<u32> {
        None
    }

    /// What the scenario observed over the run (cascade graph, liquidator statistics), written
    /// to the run file's `counterfactual` key.
    fn report(&self) -> Option<CounterfactualReport> {
        None
    }
}

/// What the loop accumulates for the run file (only for events inside the window).
#[derive(Default)]
struct Output {
    window: Window,
    /// Events by kind, at the kind's place in [`EventKind::ALL`] (counted at every event: an
    /// array index, not a map search).
    by_kind: [u64; EventKind::ALL.len()],
    verdicts: BTreeMap<Verdict, u64>,
    /// `unknown-account` judgements by the result of their seize check.
    seize_checks: BTreeMap<SeizeResult, u64>,
    skipped_recorded: u64,
    collateral: BTreeMap<Id, Quantity>,
    debt: BTreeMap<Id, Quantity>,
    bad_debt: BTreeMap<Id, Quantity>,
    clamped: BTreeMap<&'static str, u64>,
    skipped: BTreeMap<&'static str, u64>,
    liquidations: Vec<LiquidationRecord>,
    episodes: Vec<UnsafeEpisode>,
    /// Per episode: (protocol, market, account, last unsafe check), to find what next happened
    /// to its account when the run ends.
    episode_ends: Vec<(Protocol, Id, Id, Timestamp)>,
    /// Accounts the models corrected on their own (a repayment the export misses), with the
    /// time and the debt removed (wad), in log order.
    corrections: Vec<(Protocol, Id, Id, Timestamp, cascade_events::U256)>,
    timeline: Vec<TimelinePoint>,
    health: Vec<HealthSnapshot>,
    health_over_time: crate::leverage::sampling::HealthSampler,
    /// The liquidation ladder and overlap at the window's start and end.
    ladder: Vec<crate::run::LadderRung>,
    overlap: Vec<crate::run::OverlapReport>,
    /// Every position as the window opened (`None` until then, and for a window that opens on
    /// the log's first event, whose book is empty).
    window_start: Option<super::account_records::Book>,
    /// Only totals are read ([`Engine::totals_only`]): no simulated liquidation records, no
    /// health distributions, no timeline.
    totals_only: bool,
    /// Under `totals_only`, who each simulated liquidation hit: (protocol, market, account).
    hit: Vec<(Protocol, Id, Id)>,
    /// Under `totals_only`, what the run's end reads of each recorded liquidation, in place of
    /// its record (a record is 888 bytes; a crash of a million accounts has hundreds of
    /// thousands).
    recorded: Vec<RecordedOutcome>,
    /// Every snapshot difference found in the window, in log order (counted in `clamped`).
    snapshot_differences: Vec<SnapshotDifference>,
    /// Accounts found newly liquidatable in the window (an account counts again after it was
    /// safe): with the liquidations, what makes an hour active for `health_over_time`.
    newly_unsafe: u64,
    /// Per model index, its `before` distributions at its own onset, kept until a recorded
    /// liquidation of its protocol in the window replaces them, or the run ends.
    provisional_before: Vec<(usize, HealthSnapshot)>,
}

impl Output {
    /// Liquidations in the window so far, recorded and simulated, however they are kept.
    fn liquidation_count(&self) -> u64 {
        (self.liquidations.len() + self.hit.len() + self.recorded.len()) as u64
    }
}

/// The replay engine: feed it events in log order with [`Engine::apply`], then
/// [`Engine::finish`].
pub struct Engine {
    config: EngineConfig,
    mode: Mode,
    prices: PriceBook,
    models: Vec<Box<dyn ProtocolModel>>,
    route: [Option<usize>; Protocol::ALL.len()],
    now: Option<Timestamp>,
    next_seq: Option<u64>,
    in_window: bool,
    tracker: Tracker,
    /// Per model, the time of its last check (for episodes tracked incrementally).
    last_check: Vec<Option<Timestamp>>,
    output: Output,
    /// Per model: a price, parameter or clock change awaits its check (run after the event).
    dirty: Vec<bool>,
    /// Per model: a recorded liquidation awaits its check, which runs once the second ends (or
    /// with the next check of the model). Liquidations come in bursts within one block; one check
    /// after the burst sees what one after each would, since nothing else in the second is
    /// judged against the tracker, and a replay of a crash is mostly such bursts.
    deferred: Vec<bool>,
    changes: Vec<(Id, Id, bool)>,
    /// Per model that explains episodes, the number of its next check in its episode log
    /// ([`ProtocolModel::log_episode_check`]), and the first check its log must still hold
    /// (every open episode's checks before it are folded). Bookkeeping, not state: a restored
    /// engine starts both at zero.
    episode_clock: Vec<u64>,
    episode_floor: Vec<u64>,
    /// Buffers for a check's episode log: the markets with an open episode, and the accounts
    /// changed since the previous check.
    episode_markets: Vec<Id>,
    episode_changed: Vec<(Id, Id)>,
    /// Per model, the last price update that moved a price it reads since its last check: the
    /// trigger of its next timeline points (set and cleared with `dirty`).
    triggers: Vec<Option<PriceUpdate>>,
    candidates: Vec<Candidate>,
    risks: Vec<MarketRisk>,
    choices: Vec<(usize, LiquidatorChoice)>,
    impacts: Vec<PriceUpdate>,
    overrides: Vec<ParamSetting>,
    /// How many of `config.params`' entries have been applied.
    params_applied: usize,
    /// Per market, the time of its last timeline points and the positions of the first and the
    /// last point at that time (output bookkeeping, not state).
    timeline_last: BTreeMap<(Protocol, Id), (Timestamp, usize, usize)>,
    /// Per model, whether its `before` health distribution was taken (report bookkeeping, not
    /// state).
    before_taken: Vec<bool>,
    /// Times whose accounts are still to be captured, latest first (output bookkeeping, not
    /// state).
    accounts_at: Vec<Timestamp>,
    /// The captures taken so far.
    captures: Vec<AccountsCapture>,
    /// Buffers each hourly sample reuses (bookkeeping, not state).
    sample_buffers: SampleBuffers,
}

const CHECKPOINT_MAGIC: &[u8; 8] = b"CSCDENG1";

/// Checks a model's episode log holds at most before every open episode's evidence is folded
/// and the log emptied: a bound on the log's memory (a few hundred bytes per market and check)
/// for episodes that stay open for long (fewer in the crate's own tests, which fold through it).
const MAX_LOGGED_CHECKS: u64 = if cfg!(test) { 64 } else { 1 << 14 };

/// The state of `key`'s account, for an episode opening at check number `check`, when its model
/// explains episodes.
fn first_stretch(
    model: &dyn ProtocolModel,
    key: &(Protocol, Id, Id),
    check: u64,
) -> Option<(EpisodeAccount, u64)> {
    model
        .explains_episodes()
        .then(|| (model.episode_account(&key.1, &key.2), check))
}

fn protocol_slot(protocol: Protocol) -> usize {
    Protocol::ALL
        .iter()
        .position(|p| *p == protocol)
        .expect("Protocol::ALL lists every protocol")
}

fn protocol_by_name(name: &str) -> Option<Protocol> {
    name.parse().ok()
}

impl Engine {
    /// A fresh engine at the start of a log.
    pub fn new(config: EngineConfig, mode: Mode) -> Self {
        let models = config.protocols.build(match mode {
            Mode::Historical => ReplayKind::Historical,
            Mode::Counterfactual(_) => ReplayKind::Counterfactual,
        });
        let mut route = [None; Protocol::ALL.len()];
        for (index, model) in models.iter().enumerate() {
            route[protocol_slot(model.protocol())] = Some(index);
        }
        let in_window = config.from.is_none();
        let mut output = Output::default();
        output.window.from_time = config.from.map(Timestamp::to_rfc3339);
        output.window.to_time = config.to.map(Timestamp::to_rfc3339);
        Self {
            prices: PriceBook::new(config.feed_priority.clone()),
            dirty: vec![false; models.len()],
            deferred: vec![false; models.len()],
            before_taken: vec![false; models.len()],
            last_check: vec![None; models.len()],
            changes: Vec::new(),
            episode_clock: vec![0; models.len()],
            episode_floor: vec![0; models.len()],
            episode_markets: Vec::new(),
            episode_changed: Vec::new(),
            triggers: vec![None; models.len()],
            models,
            route,
            config,
            mode,
            now: None,
            next_seq: None,
            in_window,
            tracker: Tracker::default(),
            output,
            candidates: Vec::new(),
            risks: Vec::new(),
            choices: Vec::new(),
            impacts: Vec::new(),
            overrides: Vec::new(),
            params_applied: 0,
            timeline_last: BTreeMap::new(),
            accounts_at: Vec::new(),
            captures: Vec::new(),
            sample_buffers: SampleBuffers::default(),
        }
    }

    /// The checkpoint namespace for this configuration and mode: checkpoints are only ever
    /// resumed by a replay that would have computed the same state.
    pub fn namespace(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.config_fingerprint_text().as_bytes());
        if let Mode::Counterfactual(scenario) = &self.mode {
            hasher.update(&scenario.fingerprint());
        }
        let hex = hasher.finalize().to_hex();
        // The version moves whenever what a checkpoint holds, or how the engine reads it,
        // changes, so a catalog written by an older engine is never asked to restore.
        format!("engine-v6-{}", &hex[..16])
    }

    fn config_fingerprint_text(&self) -> String {
        // `from` only selects the report window; it does not change state.
        let mut config = self.config.clone();
        config.from = None;
        // Through a JSON value, whose keys are sorted whatever the declaration order: the text
        // (and so the namespace) stays what it has been.
        serde_json::to_value(config.describe())
            .expect("settings are strings, integers, maps and lists")
            .to_string()
    }

    /// The next sequence number the engine expects (`None` before the first event).
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Time of the last event applied.
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Moves past `seq` without applying anything: the event meant to be there could not be read
    /// (a malformed record dead-lettered by a stream consumer). `seq` must be the one
    /// [`Engine::apply`] expects next. The run file counts it under `totals.skipped` as
    /// `dead-lettered` whatever the `--from` window, because its time is unknown and the state
    /// after it may differ from a full replay's.
    pub fn skip(&mut self, seq: u64) -> Result<(), EngineError> {
        if let Some(expected) = self.next_seq
            && seq != expected
        {
            return Err(EngineError::OutOfSequence {
                expected,
                found: seq,
            });
        }
        *self.output.skipped.entry("dead-lettered").or_default() += 1;
        self.next_seq = Some(seq + 1);
        Ok(())
    }

    /// See [`ProtocolModel::warm`].
    pub fn warm(&self, events: &[Event]) -> u64 {
        self.models
            .iter()
            .map(|model| model.warm(events))
            .fold(0, |a, b| a ^ b)
    }

    /// Applies one event. Events must come densely in sequence order with non-decreasing time.
    pub fn apply(&mut self, event: &Event) -> Result<(), EngineError> {
        if let Some(expected) = self.next_seq
            && event.seq != expected
        {
            return Err(EngineError::OutOfSequence {
                expected,
                found: event.seq,
            });
        }
        let time = event.time;
        if let Some(now) = self.now
            && time < now
        {
            return Err(EngineError::TimeWentBackwards {
                seq: event.seq,
                time: time.to_rfc3339(),
                previous: now.to_rfc3339(),
            });
        }
        // The window opens on the book its earlier events built (none when it opens on the
        // log's first event).
        let mut opens_on_history = false;
        if !self.in_window && self.config.from.is_none_or(|from| time >= from) {
            self.in_window = true;
            opens_on_history = self.now.is_some();
        }
        if self.now != Some(time) {
            // The second whose actions `advance` settles.
            let settled = self.now.unwrap_or(time);
            if let (Some(now), Some(next)) = (self.now, self.next_seq) {
                self.collect_snapshot_differences(None, true);
                self.run_due_checks(next - 1, now, true)?;
                self.capture_due(now);
                if self.output.health_over_time.ends(now, time) {
                    self.sample_health(next - 1, now, Some(time), None);
                }
            }
            self.now = Some(time);
            for (index, model) in self.models.iter_mut().enumerate() {
                if model.advance(time, &self.prices)? {
                    self.dirty[index] = true;
                }
                let mut corrected = Vec::new();
                model.take_corrected_accounts(&mut corrected);
                if self.in_window {
                    model.take_adjustments(&mut self.output.clamped);
                    let protocol = model.protocol();
                    self.output.corrections.extend(
                        corrected.into_iter().map(|(market, account, debt)| {
                            (protocol, market, account, settled, debt)
                        }),
                    );
                } else {
                    model.take_adjustments(&mut BTreeMap::new());
                }
            }
            if opens_on_history {
                self.take_window_start(event.seq, time);
            }
            // A scheduled oracle update (an OSM poke) happens before anything else at this
            // time: look at the state it leaves before the event changes it.
            self.run_checks(event.seq, time)?;
        }
        if let Mode::Counterfactual(scenario) = &mut self.mode {
            scenario.due_overrides(time, &mut self.overrides);
            for setting in std::mem::take(&mut self.overrides) {
                if let Some(index) = self.route[protocol_slot(setting.param.protocol)] {
                    self.models[index].set_param(&setting, time)?;
                    self.dirty[index] = true;
                }
            }
        }
        let cap = match &mut self.mode {
            Mode::Counterfactual(scenario) if self.in_window => scenario.take_loop_cap(),
            _ => None,
        };
        if let Some((depth, correlation)) = cap {
            self.cap_loops(event, depth, &correlation)?;
        }
        let cut = match &mut self.mode {
            Mode::Counterfactual(scenario) if self.in_window => scenario.take_threshold_cut(),
            _ => None,
        };
        if let Some((cut_bps, correlation)) = cut {
            self.cut_looped_thresholds(event, cut_bps, &correlation);
        }
        if !matches!(event.payload, Payload::ParamChange(_)) {
            self.apply_param_history(time)?;
        }
        match &event.payload {
            Payload::Price(update) => {
                let update = match &mut self.mode {
                    Mode::Historical => **update,
                    Mode::Counterfactual(scenario) => scenario.transform_price(update, time),
                };
                self.record_price(&update, time)?;
                for (index, model) in self.models.iter_mut().enumerate() {
                    if model.on_feed_answer(&update, time)? {
                        self.dirty[index] = true;
                        self.triggers[index] = Some(update);
                    }
                }
                match self
                    .prices
                    .convert(&update, time, &self.config.quote_conversions)
                {
                    Some(Ok(converted)) => self.record_price(&converted, time)?,
                    Some(Err(unconverted)) if self.in_window => {
                        *self.output.skipped.entry(unconverted.reason()).or_default() += 1
                    }
                    Some(Err(_)) | None => {}
                }
            }
            Payload::Liquidation(liquidation) => self.recorded_liquidation(event, liquidation)?,
            Payload::PartialLiquidation(partial) => self.partial_liquidation(event, partial)?,
            payload => {
                let pinned = match (payload, &mut self.mode) {
                    (Payload::ParamChange(change), Mode::Counterfactual(scenario)) => {
                        !scenario.keeps_param_change(change, time)
                    }
                    _ => false,
                };
                let applied = match payload
                    .protocol()
                    .and_then(|p| self.route[protocol_slot(p)])
                {
                    _ if pinned => Applied::Skipped("param-change-pinned-by-scenario"),
                    Some(index) => {
                        let applied = self.models[index].apply(event, &self.prices)?;
                        self.collect_snapshot_differences(Some(index), false);
                        applied
                    }
                    None => Applied::Skipped("protocol-not-modelled"),
                };
                if self.in_window {
                    match applied {
                        Applied::Clamped(reason) => {
                            *self.output.clamped.entry(reason).or_default() += 1
                        }
                        Applied::Skipped(reason) => {
                            *self.output.skipped.entry(reason).or_default() += 1
                        }
                        Applied::Exact | Applied::Ignored => {}
                    }
                }
                // A parameter or a recorded oracle value or source may move every account of a
                // market.
                if matches!(
                    payload,
                    Payload::ParamChange(_)
                        | Payload::OracleValue(_)
                        | Payload::OracleSourceChange(_)
                ) && let Some(protocol) = payload.protocol()
                    && let Some(index) = self.route[protocol_slot(protocol)]
                {
                    self.dirty[index] = true;
                }
            }
        }
        self.run_checks(event.seq, time)?;
        if self.in_window {
            let window = &mut self.output.window;
            window.first_seq.get_or_insert(event.seq);
            window.last_seq = Some(event.seq);
            window.events += 1;
            self.output.by_kind[event.kind() as usize] += 1;
        }
        self.next_seq = Some(event.seq + 1);
        Ok(())
    }

    /// Unwinds looped positions to `depth` loops before `event`, the window's first
    /// ([`crate::leverage::cap`]), and marks the models it changed for a check.
    fn cap_loops(
        &mut self,
        event: &Event,
        depth: u32,
        correlation: &Correlation,
    ) -> Result<(), EngineError> {
        let capped = crate::leverage::cap::cap_loops(
            &mut self.models,
            &self.prices,
            event,
            depth,
            correlation,
        )?;
        for (index, model) in self.models.iter().enumerate() {
            if capped.contains_key(&model.protocol()) {
                self.dirty[index] = true;
            }
        }
        if let Mode::Counterfactual(scenario) = &mut self.mode {
            scenario.loops_capped(&capped);
        }
        Ok(())
    }

    /// Cuts the thresholds of the looped positions before `event`, the window's first
    /// ([`crate::leverage::cap::cut_looped_thresholds`]), and marks the models it changed for a
    /// check.
    fn cut_looped_thresholds(&mut self, event: &Event, cut_bps: u16, correlation: &Correlation) {
        let cut = crate::leverage::cap::cut_looped_thresholds(
            &mut self.models,
            event,
            cut_bps,
            correlation,
        );
        for (index, model) in self.models.iter().enumerate() {
            if cut.contains_key(&model.protocol()) {
                self.dirty[index] = true;
            }
        }
        if let Mode::Counterfactual(scenario) = &mut self.mode {
            scenario.thresholds_cut(&cut);
        }
    }

    /// Applies the history file's changes due at `time`. They go before the first event at or
    /// after their time that is not itself a parameter change, so at equal times they follow the
    /// log's own changes (and override a snapshot a log sets at its start).
    fn apply_param_history(&mut self, time: Timestamp) -> Result<(), EngineError> {
        while let Some(entry) = self.config.params.entries.get(self.params_applied) {
            if entry.time > time {
                break;
            }
            if let Some(index) = self.route[protocol_slot(entry.setting.param.protocol)] {
                self.models[index].set_param(&entry.setting, time)?;
                self.dirty[index] = true;
            }
            self.params_applied += 1;
        }
        Ok(())
    }

    /// Moves the snapshot differences model `index` (every model with `None`) found into the
    /// output, counting those in the window under `snapshot-differs-from-rebuilt`;
    /// `instant_ended` first closes the snapshots of the instant (see
    /// [`ProtocolModel::snapshot_differences`]).
    fn collect_snapshot_differences(&mut self, index: Option<usize>, instant_ended: bool) {
        let mut found = Vec::new();
        for (at, model) in self.models.iter_mut().enumerate() {
            if index.is_none_or(|index| index == at) {
                model.snapshot_differences(instant_ended, &mut found);
            }
        }
        for difference in found {
            if self.config.from.is_none_or(|from| difference.time >= from) {
                *self
                    .output
                    .clamped
                    .entry("snapshot-differs-from-rebuilt")
                    .or_default() += 1;
                self.output.snapshot_differences.push(difference);
            }
        }
    }

    fn run_checks(&mut self, seq: u64, time: Timestamp) -> Result<(), EngineError> {
        self.run_due_checks(seq, time, false)
    }

    /// Checks every model marked `dirty`, and with `second_ended` also those whose recorded
    /// liquidations left their check for the end of the second (`seq` and `time`: the last
    /// event's). A check covers both marks.
    fn run_due_checks(
        &mut self,
        seq: u64,
        time: Timestamp,
        second_ended: bool,
    ) -> Result<(), EngineError> {
        for index in 0..self.models.len() {
            if self.dirty[index] || (second_ended && self.deferred[index]) {
                self.dirty[index] = false;
                self.deferred[index] = false;
                self.check(index, seq, time)?;
            }
        }
        Ok(())
    }

    fn record_price(&mut self, update: &PriceUpdate, time: Timestamp) -> Result<(), EngineError> {
        if self.prices.record(update, time).is_some() {
            for (index, model) in self.models.iter_mut().enumerate() {
                if model.on_price(update, time, &self.prices)? {
                    self.dirty[index] = true;
                    self.triggers[index] = Some(*update);
                }
            }
        }
        Ok(())
    }

    /// The model that judges a recorded liquidation of `protocol`, after the account's health
    /// before it is taken; `None` when it is not judged (counterfactual mode, where simulated
    /// liquidations replace the recorded ones, or a protocol not modelled), counted as such.
    fn judging_model(&mut self, protocol: Protocol, event: &Event) -> Option<usize> {
        if matches!(self.mode, Mode::Counterfactual(_)) {
            if self.in_window {
                self.output.skipped_recorded += 1;
            }
            if let Some(index) = self.route[protocol_slot(protocol)] {
                self.health_before(index, event.seq, event.time);
            }
            return None;
        }
        let Some(index) = self.route[protocol_slot(protocol)] else {
            if self.in_window {
                *self
                    .output
                    .skipped
                    .entry("protocol-not-modelled")
                    .or_default() += 1;
            }
            return None;
        };
        self.health_before(index, event.seq, event.time);
        Some(index)
    }

    fn recorded_liquidation(
        &mut self,
        event: &Event,
        liquidation: &Liquidation,
    ) -> Result<(), EngineError> {
        let Some(index) = self.judging_model(liquidation.protocol, event) else {
            return Ok(());
        };
        let model = &mut self.models[index];
        model.prepare_judge(liquidation, event.time)?;
        let judgement = model.judge(liquidation, event.time)?;
        model.apply_liquidation(liquidation, &judgement, event.time)?;
        self.after_liquidation(index, event, liquidation, &judgement, None);
        Ok(())
    }

    /// A recorded liquidation with an unknown side: judged and applied with the side the
    /// formula gives ([`unknown_side`]), or, where nothing can be derived, judged on what is
    /// known and not applied (counted under `skipped` as [`UNDERIVED`]).
    fn partial_liquidation(
        &mut self,
        event: &Event,
        partial: &PartialLiquidation,
    ) -> Result<(), EngineError> {
        let Some(index) = self.judging_model(partial.protocol, event) else {
            return Ok(());
        };
        let (liquidation, judgement, applied) =
            unknown_side::judge_and_apply(&mut *self.models[index], partial, event.time)?;
        if applied.is_none() && self.in_window {
            *self.output.skipped.entry(UNDERIVED).or_default() += 1;
        }
        self.after_liquidation(index, event, &liquidation, &judgement, Some(partial));
        Ok(())
    }

    /// What follows a judged recorded liquidation: the model's snapshot differences, the
    /// deferred check, the unsafe episode marked liquidated and the run file's record.
    fn after_liquidation(
        &mut self,
        index: usize,
        event: &Event,
        liquidation: &Liquidation,
        judgement: &Judgement,
        partial: Option<&PartialLiquidation>,
    ) {
        self.collect_snapshot_differences(Some(index), false);
        self.deferred[index] = true;
        self.tracker.mark_liquidated(&(
            liquidation.protocol,
            liquidation.market,
            liquidation.account,
        ));
        if self.in_window {
            self.record_judged(event, liquidation, judgement, partial);
        }
    }

    /// Records a judged liquidation. The totals add recorded amounts only: a side `partial`
    /// leaves unknown (derived, or zero when nothing was derived) is in the record, its note
    /// saying so, but not in the totals.
    fn record_judged(
        &mut self,
        event: &Event,
        liquidation: &Liquidation,
        judgement: &Judgement,
        partial: Option<&PartialLiquidation>,
    ) {
        let out = &mut self.output;
        *out.verdicts.entry(judgement.verdict).or_default() += 1;
        if let Some(seize) = &judgement.seize {
            *out.seize_checks.entry(seize.result).or_default() += 1;
        }
        let collateral = Quantity::new(
            liquidation.collateral_seized.0,
            judgement.collateral_decimals,
        );
        let debt = Quantity::new(liquidation.debt_repaid.0, judgement.debt_decimals);
        if partial.is_none_or(|p| p.collateral_seized.is_some()) {
            add_to(
                &mut out.collateral,
                liquidation.collateral_asset,
                collateral,
            );
        }
        if partial.is_none_or(|p| p.debt_repaid.is_some()) {
            add_to(&mut out.debt, liquidation.debt_asset, debt);
        }
        if out.totals_only {
            out.recorded.push(RecordedOutcome {
                protocol: liquidation.protocol,
                market: liquidation.market,
                account: liquidation.account,
                time: event.time,
                excess_debt: excess_debt(
                    Some(judgement.verdict),
                    judgement.mismatch.as_ref().map(|mismatch| &*mismatch.input),
                    judgement.expected_debt,
                    debt,
                ),
            });
            return;
        }
        out.liquidations.push(LiquidationRecord {
            seq: event.seq,
            time: event.time,
            origin: Origin::Recorded,
            protocol: liquidation.protocol,
            market: liquidation.market,
            account: liquidation.account,
            tx_hash: event.tx_hash.map(|hash| format!("{hash:#x}")),
            log_index: event.log_index,
            verdict: Some(judgement.verdict),
            rule: judgement.rule.into(),
            round: None,
            health: judgement.health,
            collateral_asset: liquidation.collateral_asset,
            collateral_seized: collateral,
            expected_collateral: judgement.expected_collateral,
            debt_asset: liquidation.debt_asset,
            debt_repaid: debt,
            expected_debt: judgement.expected_debt,
            bad_debt: None,
            collateral_sold: None,
            note: judgement.note.clone(),
            oracle: judgement.oracle.clone(),
            mismatch: judgement.mismatch.clone().map(Box::new),
            missing: judgement.missing.map(Box::new),
            seize: judgement.seize.clone().map(Box::new),
        });
    }

    /// Lists model `index`'s liquidatable accounts, updates the unsafe tracker, lets the
    /// simulated liquidator act (counterfactual mode) and takes the timeline snapshot.
    fn check(&mut self, index: usize, seq: u64, time: Timestamp) -> Result<(), EngineError> {
        let trigger = self.triggers[index].take();
        // A model that reports status changes costs what changed at each check; otherwise the
        // full list is diffed against the tracker.
        self.changes.clear();
        let incremental = self.models[index].unsafe_changes(time, &mut self.changes)?;
        if incremental {
            self.track_changes(index, time)?;
            self.onset(index, seq, time);
        }
        let mut round = 0;
        loop {
            if incremental && matches!(self.mode, Mode::Historical) {
                break;
            }
            self.candidates.clear();
            self.models[index].liquidatable(time, &mut self.candidates)?;
            if round == 0 && !incremental {
                self.track(index, time)?;
                self.onset(index, seq, time);
            }
            let Mode::Counterfactual(scenario) = &mut self.mode else {
                break;
            };
            if self.candidates.is_empty() || round >= self.config.max_cascade_rounds {
                break;
            }
            round += 1;
            self.choices.clear();
            scenario.choose(time, &self.candidates, &mut self.choices);
            if self.choices.is_empty() {
                break;
            }
            self.impacts.clear();
            let mut any = false;
            for (which, choice) in std::mem::take(&mut self.choices) {
                let Some(candidate) = self.candidates.get(which) else {
                    continue;
                };
                let Some(done) =
                    self.models[index].simulate_liquidation(candidate, &choice, time)?
                else {
                    continue;
                };
                any = true;
                scenario.on_liquidation(time, &done, &mut self.impacts);
                let round = scenario.last_round().unwrap_or(round);
                if self.in_window {
                    record_simulated(&mut self.output, seq, time, round, &done);
                }
            }
            for update in std::mem::take(&mut self.impacts) {
                self.record_price(&update, time)?;
            }
            if !any {
                break;
            }
        }
        // The risk sums feed only the timeline, which a totals-only run does not keep; without
        // them the lending monitors keep no exposures and skip what a one-way move cannot change.
        if self.in_window && !self.output.totals_only {
            self.risks.clear();
            self.models[index].risk(time, &mut self.risks)?;
            for risk in self.risks.drain(..) {
                // A market without a single oracle price (Aave, Compound) gets a point when a
                // price update it reads triggered the check, labelled with that update.
                let trigger = match (&risk.oracle_price, &trigger) {
                    (Some(_), _) => None,
                    (None, Some(update)) => Some(PriceTrigger {
                        asset: update.asset.to_string(),
                        quote: update.quote.to_string(),
                        price: Quantity::new(update.price.value, update.price.decimals),
                    }),
                    (None, None) => continue,
                };
                // At most two points per market and second: the first check's (the oracle
                // update, before anyone acts on it) and the last one's. Later checks in the
                // second (the rest of a burst of liquidations) update the second point, so the
                // timeline grows with time and price moves, not with the number of accounts.
                let key = (risk.protocol, risk.market);
                let next = self.output.timeline.len();
                let last = match self.timeline_last.get(&key) {
                    Some(&(at, first, last)) if at == time && first != last => Some(last),
                    Some(&(at, first, _)) if at == time => {
                        self.timeline_last.insert(key, (time, first, next));
                        None
                    }
                    _ => {
                        self.timeline_last.insert(key, (time, next, next));
                        None
                    }
                };
                if let Some(point) = last.and_then(|last| self.output.timeline.get_mut(last)) {
                    point.seq = seq;
                    point.oracle_price = risk.oracle_price;
                    point.trigger = trigger;
                    point.accounts_unsafe = risk.accounts_unsafe;
                    point.collateral_at_risk = risk.collateral_at_risk;
                    point.debt_at_risk = risk.debt_at_risk;
                    point.bad_debt = risk.bad_debt;
                    continue;
                }
                self.output.timeline.push(TimelinePoint {
                    seq,
                    time,
                    protocol: risk.protocol.name().to_owned(),
                    market: risk.market.to_string(),
                    oracle_price: risk.oracle_price,
                    trigger,
                    accounts_unsafe: risk.accounts_unsafe,
                    collateral_at_risk: risk.collateral_at_risk,
                    debt_at_risk: risk.debt_at_risk,
                    bad_debt: risk.bad_debt,
                });
            }
        }
        Ok(())
    }

    /// Keeps every position as the window opens at `time`, its first event `seq` not yet
    /// applied nor checked (the oracle already at that time): the `start` of the run's
    /// `accounts` list.
    fn take_window_start(&mut self, seq: u64, time: Timestamp) {
        if self.output.totals_only {
            return;
        }
        let mut positions = Vec::new();
        for model in &self.models {
            model.accounts(time, &mut positions);
        }
        self.output.window_start = Some(super::account_records::Book::new(seq, time, positions));
    }

    /// Takes model `index`'s provisional `before` health distribution if the tracker (just
    /// updated) holds an unsafe account of its protocol: this run's own onset of the crisis,
    /// which stands only if the window has no recorded liquidation of the protocol
    /// ([`Engine::health_before`]).
    fn onset(&mut self, index: usize, seq: u64, time: Timestamp) {
        if !self.in_window
            || self.before_taken[index]
            || self
                .output
                .provisional_before
                .iter()
                .any(|(i, _)| *i == index)
        {
            return;
        }
        if self.tracker.any_open(self.models[index].protocol()) {
            let taken = self.health_snapshots(index, Moment::Before, seq, time);
            self.output
                .provisional_before
                .extend(taken.into_iter().map(|snapshot| (index, snapshot)));
        }
    }

    /// Takes model `index`'s `before` health distribution at the window's first recorded
    /// liquidation of its protocol, before it is judged and applied (historical mode) or skipped
    /// (counterfactual mode): the same event, so the same moment, in every run of one window,
    /// whatever the scenario. Once per run; it replaces the provisional one of
    /// [`Engine::onset`]. A moment at which the protocol has no account (a recorded liquidation
    /// of a vault opened before the log begins) is no onset: the book it would show is empty, so
    /// the next recorded liquidation is tried instead.
    fn health_before(&mut self, index: usize, seq: u64, time: Timestamp) {
        if !self.in_window || self.before_taken[index] {
            return;
        }
        let taken = self.health_snapshots(index, Moment::Before, seq, time);
        if !taken.is_empty() {
            self.before_taken[index] = true;
            self.output.health.extend(taken);
            self.output.provisional_before.retain(|(i, _)| *i != index);
        }
    }

    /// Takes model `index`'s health distributions at `moment` into the run; whether any market
    /// had accounts.
    fn health_snapshot(&mut self, index: usize, moment: Moment, seq: u64, time: Timestamp) -> bool {
        let taken = self.health_snapshots(index, moment, seq, time);
        let any = !taken.is_empty();
        self.output.health.extend(taken);
        any
    }

    /// Model `index`'s health distributions at `moment`, markets with accounts only.
    fn health_snapshots(
        &self,
        index: usize,
        moment: Moment,
        seq: u64,
        time: Timestamp,
    ) -> Vec<HealthSnapshot> {
        if self.output.totals_only {
            return Vec::new();
        }
        let mut distributions: Vec<HealthDistribution> = Vec::new();
        self.models[index].health_distribution(time, &mut distributions);
        distributions
            .iter()
            .filter(|d| !d.is_empty())
            .map(|distribution| crate::run::health_snapshot(moment, seq, time, distribution))
            .collect()
    }

    /// At the end of an hour of the window, after its last event `seq` at `time` and the checks
    /// of that second (`next`: the next event's time, `None` at the window's end), takes every
    /// model's health distributions into `health_over_time` when the hour ends a sampled period
    /// ([`crate::leverage::sampling`] says which). `end`: the positions at `time` when the
    /// caller has listed them already.
    fn sample_health(
        &mut self,
        seq: u64,
        time: Timestamp,
        next: Option<Timestamp>,
        end: Option<&EndPositions>,
    ) {
        if self.output.window.last_seq != Some(seq) || self.output.totals_only {
            return;
        }
        let activity = self.output.liquidation_count() + self.output.newly_unsafe;
        let Some(period) = self.output.health_over_time.begin(time, next, activity) else {
            return;
        };
        let mut buffers = std::mem::take(&mut self.sample_buffers);
        let listed = &mut buffers.listed;
        listed.clear();
        let mut distributions: Vec<HealthDistribution> = Vec::new();
        for model in &self.models {
            distributions.clear();
            if end.is_some() {
                model.health_distribution(time, &mut distributions);
            } else {
                // The positions and the health distribution from one pass over the accounts.
                let start = listed.accounts.len();
                model.accounts_and_health(time, &mut listed.accounts, &mut distributions);
                listed.per_model.push(start..listed.accounts.len());
            }
            for distribution in &distributions {
                self.output
                    .health_over_time
                    .push(period, seq, time, distribution);
            }
        }
        let book = self.valued_book(end.unwrap_or(&buffers.listed), &mut buffers.valued);
        buffers.listed.clear();
        buffers.valued.clear();
        self.sample_buffers = buffers;
        let Some((book, unpriced)) = book else {
            return;
        };
        let taken = crate::leverage::record::Taken {
            period: period.start,
            period_seconds: period.seconds,
            seq,
            time,
        };
        let samples = crate::leverage::record::leverage_samples(taken, &book, &unpriced);
        self.output.health_over_time.push_leverage(samples);
        if self.output.overlap.is_empty() {
            self.record_book(crate::run::BookMoment::Start, seq, time, &book);
        }
    }

    /// Every model's account positions at `time`, in model order ([`EndPositions`]).
    fn positions(&self, time: Timestamp) -> EndPositions {
        let mut end = EndPositions::default();
        self.list_positions(time, &mut end);
        end
    }

    /// [`Engine::positions`] into `end`, which is emptied first.
    fn list_positions(&self, time: Timestamp, end: &mut EndPositions) {
        end.clear();
        for model in &self.models {
            let start = end.accounts.len();
            model.accounts(time, &mut end.accounts);
            end.per_model.push(start..end.accounts.len());
        }
    }

    /// The positions listed in `end` valued in USD and summarised, with the positions each
    /// protocol left out for an unknown value; `None` when no model lists a position.
    fn book_of(
        &self,
        end: &EndPositions,
    ) -> Option<(crate::leverage::book::Book, BTreeMap<Protocol, u64>)> {
        self.valued_book(end, &mut Vec::new())
    }

    /// [`Engine::book_of`], the valued positions in `valued` (emptied first).
    fn valued_book(
        &self,
        end: &EndPositions,
        valued: &mut Vec<Position>,
    ) -> Option<(crate::leverage::book::Book, BTreeMap<Protocol, u64>)> {
        valued.clear();
        let mut unpriced = BTreeMap::new();
        for (model, range) in self.models.iter().zip(&end.per_model) {
            let left_out = crate::leverage::positions::usd_positions(
                &end.accounts[range.clone()],
                &self.prices,
                valued,
            );
            if left_out > 0 {
                unpriced.insert(model.protocol(), left_out);
            }
        }
        if valued.is_empty() && unpriced.is_empty() {
            return None;
        }
        let correlation = match &self.mode {
            Mode::Historical => Correlation::default(),
            Mode::Counterfactual(scenario) => scenario.correlation(),
        };
        Some((
            crate::leverage::book::summarise(valued, &correlation),
            unpriced,
        ))
    }

    /// Records `book`'s liquidation ladder and overlap at `moment`.
    fn record_book(
        &mut self,
        moment: crate::run::BookMoment,
        seq: u64,
        time: Timestamp,
        book: &crate::leverage::book::Book,
    ) {
        use crate::leverage::record;
        self.output
            .ladder
            .extend(record::ladder(moment, seq, time, book));
        self.output
            .overlap
            .push(record::overlap(moment, seq, time, book));
    }

    /// Applies model `index`'s reported status changes to the tracker: newly unsafe accounts open
    /// an episode; an account safe again closes its episode, which lasted until the check before
    /// this one (every check in between found it unsafe).
    fn track_changes(&mut self, index: usize, time: Timestamp) -> Result<(), EngineError> {
        let protocol = self.models[index].protocol();
        let previous = self.last_check[index];
        for (market, account, unsafe_now) in std::mem::take(&mut self.changes) {
            let key = (protocol, market, account);
            if unsafe_now {
                let (_, opened) = self.tracker.open(key, time, || {
                    first_stretch(&*self.models[index], &key, self.episode_clock[index])
                });
                if opened && self.in_window {
                    self.output.newly_unsafe += 1;
                }
            } else if let Some(mut episode) = self.tracker.close(&key) {
                episode.last_seen = previous.unwrap_or(episode.since).max(episode.since);
                self.close_episode(index, key, episode, false)?;
            }
        }
        self.last_check[index] = Some(time);
        self.gather(index)
    }

    /// Logs this check of model `index` for its open episodes' evidence, and starts a new
    /// stretch of evidence for each account with an open episode that events changed since the
    /// previous check (the tracker's module doc says why the evidence waits).
    fn gather(&mut self, index: usize) -> Result<(), EngineError> {
        let model = &mut self.models[index];
        if !model.explains_episodes() {
            return Ok(());
        }
        let protocol = model.protocol();
        let check = self.episode_clock[index];
        self.tracker.markets_of(protocol, &mut self.episode_markets);
        self.episode_changed.clear();
        model.log_episode_check(check, &self.episode_markets, &mut self.episode_changed)?;
        self.tracker
            .split(protocol, &self.episode_changed, check, &**model)?;
        self.episode_clock[index] = check + 1;
        if check + 1 - self.episode_floor[index] >= MAX_LOGGED_CHECKS {
            self.fold_episodes(index)?;
        }
        Ok(())
    }

    /// Folds every check so far of model `index`'s open episodes, so that its log can drop them.
    fn fold_episodes(&mut self, index: usize) -> Result<(), EngineError> {
        let model = &mut self.models[index];
        if !model.explains_episodes() {
            return Ok(());
        }
        let until = self.episode_clock[index];
        self.tracker.fold_all(model.protocol(), until, &**model)?;
        model.trim_episode_log(until);
        self.episode_floor[index] = until;
        Ok(())
    }

    /// Opens an episode for every newly unsafe account of model `index` and closes the episodes
    /// of accounts no longer unsafe.
    fn track(&mut self, index: usize, time: Timestamp) -> Result<(), EngineError> {
        let protocol = self.models[index].protocol();
        let unsafe_now: BTreeSet<(Id, Id)> = self
            .candidates
            .iter()
            .map(|c| (c.market, c.account))
            .collect();
        for key in self.tracker.keys_of(protocol) {
            if !unsafe_now.contains(&(key.1, key.2))
                && let Some(episode) = self.tracker.close(&key)
            {
                self.close_episode(index, key, episode, false)?;
            }
        }
        for (market, account) in unsafe_now {
            let key = (protocol, market, account);
            let (episode, opened) = self.tracker.open(key, time, || {
                first_stretch(&*self.models[index], &key, self.episode_clock[index])
            });
            episode.last_seen = time;
            if opened && self.in_window {
                self.output.newly_unsafe += 1;
            }
        }
        self.gather(index)
    }

    /// Ends `episode` of model `index`'s account `key`: into the run's list when it lasted at
    /// least the threshold in the window without a recorded liquidation, with its evidence.
    fn close_episode(
        &mut self,
        index: usize,
        key: (Protocol, Id, Id),
        episode: Episode,
        open_at_end: bool,
    ) -> Result<(), EngineError> {
        let (protocol, market, account) = key;
        let seconds = episode.last_seen.0 - episode.since.0;
        let (since, last_seen) = (episode.since, episode.last_seen);
        let keeps =
            !episode.liquidated && seconds >= self.config.unsafe_threshold && self.in_window;
        let evidence = self.tracker.evidence(
            &key,
            episode,
            self.episode_clock[index],
            &*self.models[index],
            keeps,
        )?;
        if !keeps {
            return Ok(());
        }
        self.output.episodes.push(UnsafeEpisode {
            protocol: protocol.name().to_owned(),
            market: market.to_string(),
            account: account.to_string(),
            from: since.to_rfc3339(),
            to: last_seen.to_rfc3339(),
            seconds,
            open_at_end,
            evidence,
        });
        self.output
            .episode_ends
            .push((protocol, market, account, last_seen));
        Ok(())
    }

    /// Writes the whole engine state: checkpoint bytes.
    ///
    /// Folds the open episodes' evidence first (what the checkpoint holds of them): the
    /// engine's results do not change, only when that work is done.
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, EngineError> {
        for index in 0..self.models.len() {
            self.fold_episodes(index)?;
        }
        let mut out = StateWriter::new();
        out.bytes_raw(CHECKPOINT_MAGIC);
        match self.next_seq {
            Some(seq) => {
                out.bool(true);
                out.u64(seq);
            }
            None => out.bool(false),
        }
        // Monitoring bookkeeping, like the position: in the checkpoint, not in the state hash.
        out.count(self.last_check.len());
        for check in &self.last_check {
            match check {
                Some(time) => {
                    out.bool(true);
                    out.time(*time);
                }
                None => out.bool(false),
            }
        }
        for deferred in &self.deferred {
            out.bool(*deferred);
        }
        // How far the `--params` history has been applied: entries due at the checkpoint's last
        // second may still wait for the first event there that is not a parameter change, so it
        // cannot be told from the time alone. The namespace covers the history's content.
        out.u64(self.params_applied as u64);
        self.encode_body(&mut |bytes| out.bytes_raw(bytes));
        // What the open episodes' checks saw, in the tracker's order (after the body, which the
        // state hash covers and this does not).
        self.tracker.encode_evidence(&mut out);
        Ok(out.into_bytes())
    }

    /// Hands the state (what the state hash covers) to `emit` in pieces: each model's state as
    /// it was encoded, not copied into one buffer first (a million vaults are a hundred MB).
    fn encode_body(&self, emit: &mut dyn FnMut(&[u8])) {
        let mut out = StateWriter::new();
        match self.now {
            Some(now) => {
                out.bool(true);
                out.time(now);
            }
            None => out.bool(false),
        }
        self.prices.encode(&mut out);
        out.count(self.tracker.len());
        for ((protocol, market, account), episode, liquidated) in self.tracker.sorted() {
            out.u8(protocol_slot(*protocol) as u8);
            out.id(market);
            out.id(account);
            out.time(episode.since);
            out.time(episode.last_seen);
            out.bool(liquidated);
        }
        out.count(self.models.len());
        for model in &self.models {
            let mut inner = StateWriter::new();
            model.encode_state(&mut inner);
            out.blob(model.protocol().name().as_bytes());
            // `out.blob(inner.bytes())` without the copy: the length, then the bytes.
            out.count(inner.bytes().len());
            emit(out.bytes());
            emit(inner.bytes());
            out = StateWriter::new();
        }
        emit(out.bytes());
    }

    /// blake3 of the engine state (hex): equal for equal states, whatever path led there.
    pub fn state_hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        self.encode_body(&mut |bytes| {
            hasher.update(bytes);
        });
        hasher.finalize().to_hex().to_string()
    }

    /// Replaces this fresh engine's state with a copy of `template`'s (the state a checkpoint
    /// holds: position, clock, prices, tracker and models; not the mode or the output), as
    /// [`Engine::restore`] would from `template`'s checkpoint, without encoding and decoding it.
    /// Refuses a template running other protocol models.
    pub fn restore_from(&mut self, template: &Engine) -> Result<(), EngineError> {
        let protocols = |engine: &Engine| -> Vec<Protocol> {
            engine.models.iter().map(|model| model.protocol()).collect()
        };
        if protocols(self) != protocols(template) {
            return Err(EngineError::Source(format!(
                "restoring an engine of models {:?} from one of {:?}",
                protocols(self),
                protocols(template)
            )));
        }
        self.next_seq = template.next_seq;
        self.last_check.clone_from(&template.last_check);
        self.deferred.clone_from(&template.deferred);
        self.params_applied = template.params_applied;
        self.now = template.now;
        self.prices = template.prices.clone();
        self.tracker.clone_from(&template.tracker);
        self.episode_clock.clone_from(&template.episode_clock);
        self.episode_floor.clone_from(&template.episode_floor);
        self.models = template
            .models
            .iter()
            .map(|model| model.clone_model())
            .collect();
        self.in_window = self.window_open();
        Ok(())
    }

    /// Replaces this fresh engine's state with [`Engine::checkpoint`] bytes taken with the same
    /// configuration and mode, stored under `seq` (the next event to apply: the catalog's
    /// convention). Refuses bytes taken at another position. On error the engine is
    /// half-restored and must be discarded.
    pub fn restore(&mut self, bytes: &[u8], seq: u64) -> Result<(), EngineError> {
        let engine = self;
        let mut input = StateReader::new(bytes);
        let magic = input.raw(CHECKPOINT_MAGIC.len())?;
        if magic != CHECKPOINT_MAGIC {
            return Err(input.error("not an engine checkpoint (bad magic)"));
        }
        engine.next_seq = if input.bool()? {
            Some(input.u64()?)
        } else {
            None
        };
        if engine.next_seq.unwrap_or(0) != seq {
            return Err(input.error(format!(
                "checkpoint stored under seq {seq} holds the state before seq {}",
                engine.next_seq.unwrap_or(0)
            )));
        }
        let checks = input.count()?;
        if checks != engine.last_check.len() {
            return Err(input.error(format!(
                "checkpoint has {checks} model check times, this engine runs {} models",
                engine.last_check.len()
            )));
        }
        for slot in 0..checks {
            engine.last_check[slot] = if input.bool()? {
                Some(input.time()?)
            } else {
                None
            };
        }
        for slot in 0..checks {
            engine.deferred[slot] = input.bool()?;
        }
        let applied = input.u64()?;
        engine.params_applied = usize::try_from(applied)
            .ok()
            .filter(|applied| *applied <= engine.config.params.entries.len())
            .ok_or_else(|| {
                input.error(format!(
                    "checkpoint applied {applied} parameter history entries, this history has {}",
                    engine.config.params.entries.len()
                ))
            })?;
        engine.now = if input.bool()? {
            Some(input.time()?)
        } else {
            None
        };
        engine.prices = PriceBook::decode(&mut input)?;
        for _ in 0..input.count()? {
            let slot = usize::from(input.u8()?);
            let protocol = *Protocol::ALL
                .get(slot)
                .ok_or_else(|| input.error(format!("unknown protocol slot {slot}")))?;
            let market = input.id()?;
            let account = input.id()?;
            let since = input.time()?;
            let last_seen = input.time()?;
            let liquidated = input.bool()?;
            engine
                .tracker
                .restore((protocol, market, account), since, last_seen, liquidated);
        }
        let count = input.count()?;
        if count != engine.models.len() {
            return Err(input.error(format!(
                "checkpoint has {count} protocol models, this engine runs {}",
                engine.models.len()
            )));
        }
        for index in 0..count {
            let name = String::from_utf8_lossy(input.blob()?).into_owned();
            let blob = input.blob()?;
            let model = &mut engine.models[index];
            if protocol_by_name(&name) != Some(model.protocol()) {
                return Err(input.error(format!(
                    "checkpoint model {name} where {} was expected",
                    model.protocol()
                )));
            }
            let mut inner = StateReader::new(blob);
            model.decode_state(&mut inner)?;
            inner.finish()?;
        }
        engine.tracker.decode_evidence(&mut input)?;
        input.finish()?;
        for model in engine
            .models
            .iter()
            .filter(|model| model.explains_episodes())
        {
            engine.tracker.restart(model.protocol(), 0, &**model);
        }
        engine.in_window = engine.window_open();
        Ok(())
    }

    /// From now on builds only what the run's totals, unsafe episodes, state hash and
    /// [`Engine::accounts_liquidated`] need: no record per liquidation, recorded or simulated,
    /// no health distributions and no timeline, so no risk sums (a sweep point reads nothing
    /// else). Totals are unchanged.
    pub fn totals_only(&mut self) {
        self.output.totals_only = true;
    }

    /// Test oracle: from now on also observes every open episode at every check, as the
    /// evidence was gathered before it was lazy, and compares the two whenever the lazy one is
    /// folded (panicking where they differ).
    #[cfg(test)]
    pub(super) fn observe_eagerly(&mut self) {
        self.tracker.observe_eagerly_from_now();
    }

    /// How many distinct accounts (protocol, market, account) were liquidated in the window so
    /// far, recorded or simulated.
    pub fn accounts_liquidated(&self) -> u64 {
        let mut accounts: Vec<(Protocol, Id, Id)> = self
            .output
            .liquidations
            .iter()
            .map(|l| (l.protocol, l.market, l.account))
            .chain(self.output.hit.iter().copied())
            .chain(
                self.output
                    .recorded
                    .iter()
                    .map(|r| (r.protocol, r.market, r.account)),
            )
            .collect();
        // Sorting a vector beats building a set here: a sweep point has hundreds of thousands.
        accounts.sort_unstable();
        accounts.dedup();
        accounts.len() as u64
    }

    /// Whether the report window has begun at the engine's current time.
    fn window_open(&self) -> bool {
        match (self.config.from, self.now) {
            (None, _) => true,
            (Some(from), Some(now)) => now >= from,
            (Some(_), None) => false,
        }
    }

    /// Asks for every account's position at each of `times` ([`AccountsCapture`] says which
    /// state each one shows); [`Engine::finish_capturing`] hands them over.
    pub fn capture_accounts_at(&mut self, times: &[Timestamp]) {
        self.accounts_at.extend_from_slice(times);
        self.accounts_at.sort_unstable_by(|a, b| b.cmp(a));
        self.accounts_at.dedup();
    }

    /// Whether a capture asked for is still to be taken.
    pub fn captures_pending(&self) -> bool {
        !self.accounts_at.is_empty()
    }

    /// Takes the captures whose time the instant `now`, just completed, reaches.
    fn capture_due(&mut self, now: Timestamp) {
        while let Some(at) = self.accounts_at.last().copied().filter(|at| *at <= now) {
            self.accounts_at.pop();
            self.capture(at);
        }
    }

    fn capture(&mut self, at: Timestamp) {
        let mut accounts = self.positions(self.now.unwrap_or(at)).accounts;
        sort_by_account(&mut accounts);
        self.capture_of(at, accounts);
    }

    /// Records the capture at `at` of `accounts`, sorted by protocol, market and account.
    fn capture_of(&mut self, at: Timestamp, accounts: Vec<AccountPosition>) {
        self.captures.push(AccountsCapture {
            at,
            state_time: self.now,
            accounts,
            snapshot_differences: self.output.snapshot_differences.clone(),
        });
    }

    /// Runs the checks still due, closes open episodes at the last event's time and builds the
    /// run. Captures still pending are dropped: [`Engine::finish_capturing`] takes them.
    pub fn finish(mut self, log: LogInfo) -> Result<Run, EngineError> {
        self.accounts_at.clear();
        self.finish_capturing(log).map(|(_, run)| run)
    }

    /// [`Engine::finish`], and the captures asked for with [`Engine::capture_accounts_at`]: those
    /// still pending (the log ended before their time) show the state at the log's end, once its
    /// last instant is complete, as a capture taken during the replay does. The end's positions
    /// are listed once, for these captures, the end-of-window book and the run's accounts.
    pub fn finish_capturing(
        mut self,
        log: LogInfo,
    ) -> Result<(Vec<AccountsCapture>, Run), EngineError> {
        self.collect_snapshot_differences(None, true);
        if let (Some(now), Some(next)) = (self.now, self.next_seq) {
            self.run_due_checks(next - 1, now, true)?;
        }
        let book_due = self.output.window.last_seq.is_some() && !self.output.totals_only;
        let end = self
            .now
            .filter(|_| book_due || !self.accounts_at.is_empty())
            .map(|now| self.positions(now));
        if let (Some(seq), Some(now)) = (self.output.window.last_seq, self.now) {
            self.sample_health(seq, now, None, end.as_ref());
            if let Some(end) = end.as_ref().filter(|_| book_due)
                && let Some((book, _)) = self.book_of(end)
            {
                self.record_book(crate::run::BookMoment::End, seq, now, &book);
                if let (Mode::Counterfactual(scenario), true, Some(end)) = (
                    &self.mode,
                    book.protocols.len() > 1,
                    self.output.overlap.last_mut(),
                ) {
                    end.liquidations_by_trigger = scenario.liquidations_by_trigger();
                }
            }
        }
        for (key, mut episode) in self.tracker.take_sorted() {
            let Some(index) = self.route[protocol_slot(key.0)] else {
                continue;
            };
            // Still unsafe at the end: unsafe at every check of its model since it began.
            if let Some(last) = self.last_check[index] {
                episode.last_seen = episode.last_seen.max(last);
            }
            self.close_episode(index, key, episode, true)?;
        }
        if let (Some(seq), Some(now)) = (self.output.window.last_seq, self.now) {
            for index in 0..self.models.len() {
                // A market without accounts at the end has no `after` entry.
                self.health_snapshot(index, Moment::After, seq, now);
            }
        }
        let mut end = end.map(|end| end.accounts);
        let accounts = match (self.output.window.last_seq, self.now, end.take()) {
            (Some(seq), Some(now), Some(positions)) if book_due => {
                let book = super::account_records::Book::new(seq, now, positions);
                let records = super::account_records::account_records(
                    self.output.window_start.as_ref(),
                    &book,
                    &self.output.liquidations,
                );
                end = Some(book.into_positions());
                records
            }
            (_, _, positions) => {
                end = positions.map(|mut positions| {
                    sort_by_account(&mut positions);
                    positions
                });
                Vec::new()
            }
        };
        while let Some(at) = self.accounts_at.pop() {
            // The last capture takes the end's positions; the earlier ones a copy.
            let positions = if self.accounts_at.is_empty() {
                end.take()
            } else {
                end.clone()
            };
            match positions {
                Some(positions) => self.capture_of(at, positions),
                None => self.capture(at),
            }
        }
        let captures = std::mem::take(&mut self.captures);
        let state_hash = self.state_hash();
        let accounts_liquidated = self.accounts_liquidated();
        let (scenario, counterfactual) = match &self.mode {
            Mode::Historical => (None, None),
            Mode::Counterfactual(scenario) => (Some(scenario.describe()), scenario.report()),
        };
        let mut out = self.output;
        let liquidations = out.liquidation_count();
        let (health_over_time, leverage_over_time) = out.health_over_time.finish();
        let judged: u64 = out.verdicts.values().sum();
        let explained = out.verdicts.get(&Verdict::Explained).copied().unwrap_or(0);
        let seize_checked: u64 = out.seize_checks.values().sum();
        let seize_consistent = out
            .seize_checks
            .get(&SeizeResult::Consistent)
            .copied()
            .unwrap_or(0);
        let totals = Totals {
            events: out.window.events,
            by_kind: EventKind::ALL
                .iter()
                .zip(out.by_kind)
                .filter(|(_, count)| *count > 0)
                .map(|(kind, count)| (kind.name().to_owned(), count))
                .collect(),
            liquidations,
            accounts_liquidated: Some(accounts_liquidated),
            verdicts: Verdict::ALL
                .iter()
                .map(|v| {
                    (
                        v.name().to_owned(),
                        out.verdicts.get(v).copied().unwrap_or(0),
                    )
                })
                .collect(),
            recorded_liquidations_skipped: out.skipped_recorded,
            explained_percent: (judged > 0).then(|| percent(explained, judged)),
            seize_checks: if seize_checked > 0 {
                SeizeResult::ALL
                    .iter()
                    .map(|r| {
                        (
                            r.name().to_owned(),
                            out.seize_checks.get(r).copied().unwrap_or(0),
                        )
                    })
                    .collect()
            } else {
                BTreeMap::new()
            },
            seize_consistent_percent: (seize_checked > 0)
                .then(|| percent(seize_consistent, seize_checked)),
            collateral_seized: by_name(&out.collateral),
            debt_repaid: by_name(&out.debt),
            bad_debt: by_name(&out.bad_debt),
            clamped: out
                .clamped
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            skipped: out
                .skipped
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            unsafe_unliquidated: out.episodes.len() as u64,
            unsafe_threshold_seconds: self.config.unsafe_threshold,
        };
        let mut health = out.health;
        // A protocol without a recorded liquidation in the window keeps its own onset.
        health.extend(
            out.provisional_before
                .into_iter()
                .map(|(_, snapshot)| snapshot),
        );
        // `before` snapshots are taken as each protocol's crisis begins; the file lists them by
        // market, `before` first.
        health.sort_by(|a, b| {
            (&a.protocol, &a.market, a.moment != Moment::Before).cmp(&(
                &b.protocol,
                &b.market,
                b.moment != Moment::Before,
            ))
        });
        // Outcomes listed from the records only when an episode can read them: a full run of a
        // crash has hundreds of thousands of records and usually no episode with evidence.
        let outcomes = if out.totals_only {
            std::mem::take(&mut out.recorded)
        } else if out
            .episodes
            .iter()
            .any(|episode| episode.evidence.is_some())
        {
            out.liquidations
                .iter()
                .filter_map(RecordedOutcome::of)
                .collect()
        } else {
            Vec::new()
        };
        mark_disagreements(
            &mut out.episodes,
            &out.episode_ends,
            &outcomes,
            &out.corrections,
        );
        let mut episodes = out.episodes;
        episodes.sort_by(|a, b| {
            (&a.from, &a.protocol, &a.market, &a.account).cmp(&(
                &b.from,
                &b.protocol,
                &b.market,
                &b.account,
            ))
        });
        let run = Run {
            schema_version: RUN_SCHEMA_VERSION,
            log,
            window: out.window,
            scenario,
            config: self.config.describe(),
            state_hash,
            totals,
            snapshot_differences: crate::run::snapshot_differences(&out.snapshot_differences),
            liquidations: out.liquidations,
            unsafe_unliquidated: episodes,
            timeline: out.timeline,
            health_distribution: health,
            health_over_time,
            leverage_over_time,
            liquidation_ladder: out.ladder,
            overlap: out.overlap,
            accounts,
            counterfactual,
        };
        Ok((captures, run))
    }
}

/// The positions of every model at one time: all of them in model order, each model's range.
#[derive(Default)]
struct EndPositions {
    accounts: Vec<AccountPosition>,
    per_model: Vec<std::ops::Range<usize>>,
}

impl EndPositions {
    fn clear(&mut self) {
        self.accounts.clear();
        self.per_model.clear();
    }
}

/// What every hourly sample lists and values, kept between samples: a million positions
/// listed into a fresh buffer every hour cost the buffer's page faults each time.
#[derive(Default)]
struct SampleBuffers {
    listed: EndPositions,
    valued: Vec<Position>,
}

/// Sorts a capture's positions by protocol, market and account.
fn sort_by_account(accounts: &mut [AccountPosition]) {
    accounts.sort_unstable_by(|a, b| {
        (a.protocol, a.market, a.account).cmp(&(b.protocol, b.market, b.account))
    });
}

fn record_simulated(
    out: &mut Output,
    seq: u64,
    time: Timestamp,
    round: u32,
    done: &SimulatedLiquidation,
) {
    add_to(
        &mut out.collateral,
        done.collateral_asset,
        done.collateral_seized,
    );
    add_to(&mut out.debt, done.debt_asset, done.debt_repaid);
    if !done.bad_debt.value.is_zero() {
        add_to(&mut out.bad_debt, done.debt_asset, done.bad_debt);
    }
    if out.totals_only {
        out.hit.push((done.protocol, done.market, done.account));
        return;
    }
    out.liquidations.push(LiquidationRecord {
        seq,
        time,
        origin: Origin::Simulated,
        protocol: done.protocol,
        market: done.market,
        account: done.account,
        tx_hash: None,
        log_index: None,
        verdict: None,
        rule: done.rule.into(),
        round: Some(round),
        health: None,
        collateral_asset: done.collateral_asset,
        collateral_seized: done.collateral_seized,
        expected_collateral: None,
        debt_asset: done.debt_asset,
        debt_repaid: done.debt_repaid,
        expected_debt: None,
        bad_debt: Some(done.bad_debt),
        collateral_sold: Some(done.collateral_sold),
        note: None,
        oracle: None,
        mismatch: None,
        missing: None,
        seize: None,
    });
}

fn add_to(sums: &mut BTreeMap<Id, Quantity>, asset: Id, amount: Quantity) {
    let entry = sums
        .entry(asset)
        .or_insert_with(|| Quantity::zero(amount.decimals));
    *entry = entry.saturating_add(amount);
}

fn by_name(sums: &BTreeMap<Id, Quantity>) -> BTreeMap<String, Quantity> {
    sums.iter()
        .map(|(asset, amount)| (asset.to_string(), *amount))
        .collect()
}

/// Drives `engine` over `events` (already positioned at the engine's next sequence number).
pub fn run_events<I, E>(engine: &mut Engine, events: I) -> Result<u64, EngineError>
where
    I: IntoIterator<Item = Result<Event, E>>,
    E: std::fmt::Display,
{
    let mut count = 0;
    for event in events {
        let event = event.map_err(|error| EngineError::Source(error.to_string()))?;
        engine.apply(&event)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_count_at_their_place_in_all() {
        // `Output::by_kind` is indexed by the discriminant.
        for (place, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, place, "{kind:?}");
        }
    }

    fn price_event(seq: u64) -> Event {
        Event {
            seq,
            chain_id: 1,
            block: None,
            time: Timestamp(1_000 + seq as i64),
            tx_index: None,
            log_index: None,
            tx_hash: None,
            source: 0,
            payload: Payload::Price(Box::new(PriceUpdate {
                asset: Id::name("ETH"),
                quote: Id::name("USD"),
                price: cascade_events::Fixed::new(cascade_events::U256::from(2_000 + seq), 0),
                feed: Id::name("test-feed"),
                round: None,
            })),
        }
    }

    #[test]
    fn skip_moves_past_one_seq_and_is_counted() {
        let mut engine = Engine::new(EngineConfig::default(), Mode::Historical);
        engine.apply(&price_event(0)).unwrap();
        assert!(matches!(
            engine.skip(2),
            Err(EngineError::OutOfSequence {
                expected: 1,
                found: 2
            })
        ));
        engine.skip(1).unwrap();
        assert_eq!(engine.next_seq(), Some(2));
        assert!(engine.apply(&price_event(1)).is_err(), "seq 1 is gone");
        engine.apply(&price_event(2)).unwrap();
        let run = engine.finish(LogInfo::default()).unwrap();
        assert_eq!(run.totals.skipped.get("dead-lettered"), Some(&1));
        assert_eq!(
            run.totals.events, 2,
            "the skipped seq is not an event applied"
        );
    }
}
