//! Scenario files: the changed world a counterfactual replay runs in.
//!
//! A scenario is a TOML file (format in `docs/scenarios.md`, examples in `fixtures/scenarios/`)
//! with up to seven parts, all optional:
//! - `window`: where the counterfactual starts and ends (history is replayed as recorded before);
//! - `[[override]]`: protocol parameters pinned to a value, optionally from a time;
//! - `[[oracle]]`: oracle delay (Maker OSM `hop`), staleness, update rule or price source;
//! - `[[price]]`: transforms of the recorded market price path (scale a drawdown, shift, cap);
//! - `[liquidator]`: the simulated liquidator's policy;
//! - `[[impact]]`: how the liquidators' sales move market prices, and how fast that decays;
//! - `[leverage]`: loops capped at the window start, and the correlation groups loops are found
//!   with.
//!
//! Every number is read from the text written (never through `f64`) into exact integers, and
//! every error names the file, the line and column, the key and the value. This module parses and
//! validates; it applies nothing. The engine reads the validated [`Scenario`].

mod counterfactual;
mod params;
mod path;
mod reader;
pub(crate) mod session;
pub use session::note_markets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_events::{Fixed, Id, Protocol, Timestamp, U256};
use serde::Serialize;
use toml::de::DeTable;

pub use crate::counterfactual::sweep::{MAX_POINTS, PointResult, SweepAxis, grid, run_sweep};
pub use cascade_run::scenario::{
    CorrelationGroup, LeverageRules, MarketSel, OracleRule, PriceSource, PriceTransform,
    ScenarioWindow, TransformKind, UpdateRule,
};
pub use counterfactual::{ScenarioRun, describe, same_asset};
pub use params::{PARAMS, Param, ParamSpec, ParamUnit, Scope};
pub use path::PricePaths;
pub use session::{Prepared, prepare, replay_scenario, run, run_from, window_state};

use crate::counterfactual::impact::{ImpactModel, ImpactSpec, Liquidity, WAD};
use crate::counterfactual::liquidator::{LiquidatorPolicy, PairChoice};
use reader::{Source, Table, Value, exact_at};

/// What the scenario is called when it changes nothing about the world: the simulated liquidator
/// replaces the recorded ones, and that is all.
pub const BASELINE_LABEL: &str = "replay of history under the simulated liquidator";

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read scenario: {source}")]
    Read {
        /// The scenario file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("{file}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        /// The scenario file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A value is not acceptable for its key.
    #[error(
        "{file}:{line}:{column}: {key} = {}: {}",
        cascade_events::clip_to(value, cascade_events::EXCERPT_CHARS),
        cascade_events::clip(reason)
    )]
    Invalid {
        /// The scenario file.
        file: String,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column of the value.
        column: usize,
        /// Key path (`override[1].value`).
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A required key is absent.
    #[error("{file}:{line}:{column}: {key} is required")]
    Missing {
        /// The scenario file.
        file: String,
        /// 1-based line of the table missing it.
        line: usize,
        /// 1-based column of the table missing it.
        column: usize,
        /// Key path (`impact[0].half_life`).
        key: String,
    },
    /// A key the format does not have (often a typo).
    #[error("{file}:{line}:{column}: unknown key {key} (expected one of: {expected})")]
    UnknownKey {
        /// The scenario file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Key path.
        key: String,
        /// The keys allowed there.
        expected: String,
    },
    /// A data file the scenario points at (pool reserves) cannot be used.
    #[error("{file}: {key}: {data}: {reason}")]
    Data {
        /// The scenario file.
        file: String,
        /// The key naming the data file.
        key: String,
        /// The data file.
        data: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A sweep axis (`--param KEY=START..END:STEP`) is not usable.
    #[error("--param {spec}: {reason}")]
    Sweep {
        /// The axis as written.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A price transform names an asset the log never prices.
    #[error("{file}: a price transform names {asset}, but the log has no price for it")]
    NoPrices {
        /// The scenario file.
        file: String,
        /// The asset.
        asset: Id,
    },
    /// An oracle rule reads the prices of an asset the log never prices: it would publish nothing.
    #[error(
        "{file}: oracle[{index}].source_asset = \"{asset}\": the log has no price for {asset} ({priced})"
    )]
    UnpricedSource {
        /// The scenario file.
        file: String,
        /// Index of the rule among the `[[oracle]]` tables.
        index: usize,
        /// The asset named.
        asset: Id,
        /// The assets the log prices, or that it prices none.
        priced: String,
    },
    /// The window holds none of the log's events: the run would replay nothing.
    #[error("{file}: window {window} holds none of the log's events ({events})")]
    WindowOutsideLog {
        /// The scenario file.
        file: String,
        /// The window as `[from, to)`.
        window: String,
        /// The log's time range, or that it has no events.
        events: String,
    },
    /// An override or a sweep axis names a market no event of its protocol in the log names
    /// (often a typo: `ETH-Z` for `ETH-B`); it would change nothing.
    #[error("{place}: no {protocol} market {market} in the log ({known})")]
    UnknownMarket {
        /// Where it is named: `FILE: override[N].market` or `--param SPEC`.
        place: String,
        /// The protocol.
        protocol: Protocol,
        /// The market as written.
        market: Id,
        /// The protocol's markets the log has, or that it has none.
        known: String,
    },
}

/// A protocol parameter pinned to a value, its parameter typed.
pub type Override = cascade_run::scenario::Override<Param>;

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// Short name (the file stem unless `name` is given).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Where it was read from, for messages.
    pub origin: String,
    /// The counterfactual window.
    pub window: ScenarioWindow,
    /// Parameter overrides, in file order.
    pub overrides: Vec<Override>,
    /// Oracle rules, in file order.
    pub oracle: Vec<OracleRule>,
    /// Price path transforms, applied in file order.
    pub prices: Vec<PriceTransform>,
    /// The simulated liquidator.
    pub liquidator: LiquidatorPolicy,
    /// Price impact per asset.
    pub impact: Vec<ImpactSpec>,
    /// Loop caps and correlation groups.
    #[serde(skip_serializing_if = "LeverageRules::is_default")]
    pub leverage: LeverageRules,
}

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "window",
    "override",
    "oracle",
    "price",
    "liquidator",
    "impact",
    "leverage",
];

impl Scenario {
    /// Reads and validates a scenario file. Relative data paths inside it (pool reserves) are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with_data_dir(path, None)
    }

    /// Reads and validates a scenario file whose relative data paths (`reserves_file`) resolve
    /// against `data_dir`, or against the scenario's folder when it is `None`.
    pub fn load_with_data_dir(
        path: &Path,
        data_dir: Option<&Path>,
    ) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        let base = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_owned());
        Scenario::parse(&text, &file, &stem, &base)
    }

    /// Parses and validates scenario text. `file` names it in errors, `default_name` is used
    /// when it has no `name`, `base` resolves relative data paths.
    pub fn parse(
        text: &str,
        file: &str,
        default_name: &str,
        base: &Path,
    ) -> Result<Scenario, ScenarioError> {
        let src = Source { file, text };
        let document = DeTable::parse(text).map_err(|error| {
            let (line, column) = error.span().map_or((1, 1), |span| src.position(span.start));
            ScenarioError::Syntax {
                file: file.to_owned(),
                line,
                column,
                message: error.message().trim().to_owned(),
            }
        })?;
        let root = Table::root(src, &document);
        root.only(ROOT_KEYS)?;
        let name = match root.get("name") {
            Some(value) => value.string()?.to_owned(),
            None => default_name.to_owned(),
        };
        let description = root
            .get("description")
            .map(|value| value.string().map(str::to_owned))
            .transpose()?;
        let window = match root.table("window")? {
            Some(table) => parse_window(&table)?,
            None => ScenarioWindow::default(),
        };
        let overrides = root
            .tables("override")?
            .iter()
            .map(parse_override)
            .collect::<Result<Vec<_>, _>>()?;
        check_override_conflicts(&root, &overrides)?;
        let oracle = root
            .tables("oracle")?
            .iter()
            .map(parse_oracle)
            .collect::<Result<Vec<_>, _>>()?;
        let prices = root
            .tables("price")?
            .iter()
            .map(parse_transform)
            .collect::<Result<Vec<_>, _>>()?;
        let liquidator = match root.table("liquidator")? {
            Some(table) => parse_liquidator(&table)?,
            None => LiquidatorPolicy::default(),
        };
        let mut impact: Vec<ImpactSpec> = Vec::new();
        for table in root.tables("impact")? {
            let spec = parse_impact(&table, base)?;
            if impact.iter().any(|other| other.asset == spec.asset) {
                let asset = table.require("asset")?;
                return Err(asset.invalid("a second impact model for the same asset"));
            }
            impact.push(spec);
        }
        let leverage = match root.table("leverage")? {
            Some(table) => parse_leverage(&table, window)?,
            None => LeverageRules::default(),
        };
        Ok(Scenario {
            name,
            description,
            origin: file.to_owned(),
            window,
            overrides,
            oracle,
            prices,
            liquidator,
            impact,
            leverage,
        })
    }

    /// The scenario that changes nothing: the baseline run of the simulated liquidator.
    pub fn baseline() -> Scenario {
        Scenario {
            name: "baseline".to_owned(),
            description: Some(BASELINE_LABEL.to_owned()),
            origin: "<baseline>".to_owned(),
            window: ScenarioWindow::default(),
            overrides: Vec::new(),
            oracle: Vec::new(),
            prices: Vec::new(),
            liquidator: LiquidatorPolicy::default(),
            impact: Vec::new(),
            leverage: LeverageRules::default(),
        }
    }

    /// One line per change the scenario makes to the world, in file order. The liquidator policy
    /// is not a change to the world: it replaces the recorded liquidators in every scenario.
    pub fn changes(&self) -> Vec<String> {
        let when = |from: Option<Timestamp>| match from {
            Some(from) => format!(" from {from}"),
            None => String::new(),
        };
        let mut lines = Vec::new();
        for o in &self.overrides {
            lines.push(format!(
                "{} {} {} = {}{}",
                o.protocol,
                o.market,
                o.param,
                o.value,
                when(o.from)
            ));
        }
        for rule in &self.oracle {
            let scope = format!(
                "{} {}",
                rule.protocol.map_or("all protocols", |p| p.name()),
                rule.asset
                    .map_or("all assets".to_owned(), |a| a.to_string())
            );
            if let Some(delay) = rule.delay {
                lines.push(format!(
                    "oracle delay {delay}s for {scope}{}",
                    when(rule.from)
                ));
            }
            if let Some(stale) = rule.stale_after {
                lines.push(format!(
                    "oracle stale after {stale}s for {scope}{}",
                    when(rule.from)
                ));
            }
            if let Some(update) = rule.update {
                lines.push(format!(
                    "oracle publishes on deviation {} / heartbeat {} for {scope}{}",
                    update.deviation.map_or("-".to_owned(), |d| d.to_string()),
                    update.heartbeat.map_or("-".to_owned(), |h| format!("{h}s")),
                    when(rule.from)
                ));
            }
            if let Some(source) = rule.source {
                let source = match source {
                    PriceSource::Feed(feed) => format!("feed {feed}"),
                    PriceSource::Asset(asset) => format!("the prices of {asset}"),
                };
                lines.push(format!(
                    "oracle reads {source} for {scope}{}",
                    when(rule.from)
                ));
            }
        }
        for transform in &self.prices {
            let what = match &transform.kind {
                TransformKind::ScaleDrawdown { factor, reference } => format!(
                    "drawdown x{factor} below {}",
                    reference.map_or("the window-start price".to_owned(), |r| r.to_string())
                ),
                TransformKind::Shift { seconds } => format!("shifted by {seconds}s"),
                TransformKind::Cap { max } => format!("capped at {max}"),
                TransformKind::Floor { min } => format!("floored at {min}"),
            };
            lines.push(format!(
                "{} price {what}{}",
                transform.asset,
                when(transform.from)
            ));
        }
        if let Some(depth) = self.leverage.max_loops {
            lines.push(format!(
                "looped positions unwound to at most {depth} loop{} at the window start",
                if depth == 1 { "" } else { "s" }
            ));
        }
        if let Some(cut) = self.leverage.looped_threshold_cut_bps {
            lines.push(format!(
                "liquidation thresholds of looped positions cut by {cut} bps at the window start"
            ));
        }
        if let Some(groups) = &self.leverage.correlation {
            let groups: Vec<String> = groups
                .iter()
                .map(|g| format!("{} = {}", g.name, g.assets.join(", ")))
                .collect();
            lines.push(format!("correlation groups: {}", groups.join("; ")));
        }
        for spec in &self.impact {
            let model = match &spec.model {
                ImpactModel::ConstantProduct { .. } => "constant-product pool",
                ImpactModel::Depth { .. } => "depth",
            };
            lines.push(format!(
                "{} sales move its price ({model}, half-life {}s)",
                spec.asset, spec.half_life
            ));
        }
        lines
    }

    /// Whether the scenario changes nothing: the run is the [`BASELINE_LABEL`].
    pub fn is_baseline(&self) -> bool {
        self.overrides.is_empty()
            && self.oracle.is_empty()
            && self.prices.is_empty()
            && self.impact.is_empty()
            && self.leverage.is_default()
    }

    /// How reports name the run: [`BASELINE_LABEL`] for a baseline, else the name.
    pub fn label(&self) -> String {
        if self.is_baseline() {
            BASELINE_LABEL.to_owned()
        } else {
            self.name.clone()
        }
    }

    /// The overrides in effect at `time` for `protocol` and `market`, the later of two for the
    /// same parameter winning; global ones included.
    pub fn overrides_at(
        &self,
        protocol: Protocol,
        market: &Id,
        time: Timestamp,
    ) -> BTreeMap<Param, Fixed> {
        let start = |o: &Override| o.from.or(self.window.from);
        let mut active: BTreeMap<Param, (Option<Timestamp>, Fixed)> = BTreeMap::new();
        for o in &self.overrides {
            let applies = o.protocol == protocol
                && (o.market == MarketSel::All || o.market == MarketSel::One(*market))
                && start(o).is_none_or(|from| time >= from);
            if !applies {
                continue;
            }
            let replace = active
                .get(&o.param)
                .is_none_or(|(from, _)| start(o) >= *from);
            if replace {
                active.insert(o.param, (start(o), o.value));
            }
        }
        active
            .into_iter()
            .map(|(param, (_, value))| (param, value))
            .collect()
    }

    /// The same scenario with `param` of `protocol`/`market` pinned to `value` from the window
    /// start, replacing any override of it: one point of a sweep.
    pub fn with_override(
        &self,
        protocol: Protocol,
        market: MarketSel,
        param: Param,
        value: Fixed,
    ) -> Scenario {
        let mut scenario = self.clone();
        scenario
            .overrides
            .retain(|o| !(o.protocol == protocol && o.market == market && o.param == param));
        scenario.overrides.push(Override {
            protocol,
            market,
            param,
            value,
            from: None,
        });
        scenario
    }

    /// The transformed price paths, given the recorded series of every asset in
    /// [`PricePaths::assets`] of [`Scenario::prices`].
    pub fn price_paths(
        &self,
        series: BTreeMap<Id, Vec<(Timestamp, Fixed)>>,
    ) -> Result<PricePaths, ScenarioError> {
        PricePaths::new(&self.prices, self.window.from, series).map_err(|asset| {
            ScenarioError::NoPrices {
                file: self.origin.clone(),
                asset,
            }
        })
    }
}

fn parse_window(table: &Table<'_, '_>) -> Result<ScenarioWindow, ScenarioError> {
    table.only(&["from", "to"])?;
    let from = table.get("from").map(|v| v.time()).transpose()?;
    let to = table.get("to").map(|v| v.time()).transpose()?;
    if let (Some(from), Some(to), Some(value)) = (from, to, table.get("to"))
        && to <= from
    {
        return Err(value.invalid(format!("the window ends before it starts ({from})")));
    }
    Ok(ScenarioWindow { from, to })
}

fn parse_market(
    table: &Table<'_, '_>,
    protocol: Protocol,
    param: Param,
) -> Result<MarketSel, ScenarioError> {
    let spec = param.spec();
    let market = table.get("market");
    match (spec.scope, market) {
        (Scope::Global, None) => Ok(MarketSel::All),
        (Scope::Global, Some(value)) if value.string()? == "*" => Ok(MarketSel::All),
        (Scope::Global, Some(value)) => Err(value.invalid(format!(
            "{protocol} {} is a global parameter: write market = \"*\" or leave it out",
            spec.name
        ))),
        (Scope::Market, None) => Err(table.src.missing(&table.path, table.span.clone(), "market")),
        (Scope::Market, Some(value)) if value.string()? == "*" => Err(value.invalid(format!(
            "{protocol} {} is set per market: name the market (ilk, reserve or cToken)",
            spec.name
        ))),
        (Scope::Market, Some(value)) => value.id().map(MarketSel::One),
    }
}

fn parse_override(table: &Table<'_, '_>) -> Result<Override, ScenarioError> {
    table.only(&["protocol", "market", "param", "value", "from"])?;
    let protocol = table.require("protocol")?.protocol()?;
    let param_value = table.require("param")?;
    let param = Param::lookup(protocol, param_value.string()?).map_err(|known| {
        if known.is_empty() {
            param_value.invalid(format!(
                "{protocol} has no parameters a scenario can override"
            ))
        } else {
            param_value.invalid(format!(
                "not a {protocol} parameter (expected one of: {})",
                known.join(", ")
            ))
        }
    })?;
    let market = parse_market(table, protocol, param)?;
    let value = parse_param_value(&table.require("value")?, param)?;
    let from = table.get("from").map(|v| v.time()).transpose()?;
    Ok(Override {
        protocol,
        market,
        param,
        value,
        from,
    })
}

/// A parameter value: a decimal (a duration for `tail`), checked against the parameter's unit.
fn parse_param_value(value: &Value<'_, '_>, param: Param) -> Result<Fixed, ScenarioError> {
    let spec = param.spec();
    let raw = match spec.unit {
        ParamUnit::Seconds => {
            let seconds = value.non_negative_duration()?;
            Fixed::new(U256::from(seconds), 0)
        }
        ParamUnit::Fraction | ParamUnit::Multiplier | ParamUnit::YearlyRate => {
            value.decimal(true)?
        }
        ParamUnit::Ratio | ParamUnit::DebtAmount => value.decimal(false)?,
    };
    param.check(raw).map_err(|reason| value.invalid(reason))
}

/// Two overrides of one parameter of one market from the same time contradict each other.
fn check_override_conflicts(
    root: &Table<'_, '_>,
    overrides: &[Override],
) -> Result<(), ScenarioError> {
    for (index, o) in overrides.iter().enumerate() {
        let clash = overrides[..index].iter().position(|earlier| {
            earlier.protocol == o.protocol
                && earlier.market == o.market
                && earlier.param == o.param
                && earlier.from == o.from
        });
        if let Some(earlier) = clash {
            let tables = root.tables("override")?;
            let value = tables[index].require("value")?;
            return Err(value.invalid(format!(
                "override[{earlier}] already sets {} {} {} from the same time",
                o.protocol, o.market, o.param
            )));
        }
    }
    Ok(())
}

fn parse_oracle(table: &Table<'_, '_>) -> Result<OracleRule, ScenarioError> {
    table.only(&[
        "protocol",
        "asset",
        "from",
        "delay",
        "stale_after",
        "deviation",
        "heartbeat",
        "source_feed",
        "source_asset",
    ])?;
    let protocol = table.get("protocol").map(|v| v.protocol()).transpose()?;
    let asset = table.get("asset").map(|v| v.id()).transpose()?;
    let from = table.get("from").map(|v| v.time()).transpose()?;
    let delay = match table.get("delay") {
        Some(value) => {
            if protocol.is_some_and(|p| p != Protocol::Maker) {
                return Err(value.invalid(
                    "only the Maker OSM has a publication delay; lag a price with a [[price]] shift",
                ));
            }
            Some(value.non_negative_duration()?)
        }
        None => None,
    };
    let stale_after = table
        .get("stale_after")
        .map(|v| v.non_negative_duration())
        .transpose()?;
    let deviation = match table.get("deviation") {
        Some(value) => {
            let deviation = value.decimal(true)?;
            if deviation > Fixed::new(U256::from(1u8), 0) {
                return Err(value.invalid("a deviation is a fraction from 0 to 1 (e.g. \"0.5%\")"));
            }
            Some(deviation)
        }
        None => None,
    };
    let heartbeat = match table.get("heartbeat") {
        Some(value) => {
            let seconds = value.non_negative_duration()?;
            if seconds == 0 {
                return Err(value.invalid("a heartbeat must be longer than 0 seconds"));
            }
            Some(seconds)
        }
        None => None,
    };
    let update = (deviation.is_some() || heartbeat.is_some()).then_some(UpdateRule {
        deviation,
        heartbeat,
    });
    let source = match (table.get("source_feed"), table.get("source_asset")) {
        (Some(_), Some(second)) => {
            return Err(second.invalid("give source_feed or source_asset, not both"));
        }
        (Some(feed), None) => Some(PriceSource::Feed(feed.id()?)),
        (None, Some(asset)) => Some(PriceSource::Asset(asset.id()?)),
        (None, None) => None,
    };
    if delay.is_none() && stale_after.is_none() && update.is_none() && source.is_none() {
        return Err(table.src.missing(
            &table.path,
            table.span.clone(),
            "delay, stale_after, deviation, heartbeat, source_feed or source_asset",
        ));
    }
    Ok(OracleRule {
        protocol,
        asset,
        from,
        delay,
        stale_after,
        update,
        source,
    })
}

fn parse_transform(table: &Table<'_, '_>) -> Result<PriceTransform, ScenarioError> {
    table.only(&[
        "asset",
        "transform",
        "from",
        "to",
        "factor",
        "reference",
        "by",
        "max",
        "min",
    ])?;
    let asset = table.require("asset")?.id()?;
    let from = table.get("from").map(|v| v.time()).transpose()?;
    let to = table.get("to").map(|v| v.time()).transpose()?;
    if let (Some(from), Some(to), Some(value)) = (from, to, table.get("to"))
        && to <= from
    {
        return Err(value.invalid(format!("the window ends before it starts ({from})")));
    }
    let kinds = ["scale-drawdown", "shift", "cap", "floor"];
    let transform = table.require("transform")?;
    let allowed: &[&str] = match transform.choice(&kinds)? {
        0 => &["factor", "reference"],
        1 => &["by"],
        2 => &["max"],
        _ => &["min"],
    };
    for key in ["factor", "reference", "by", "max", "min"] {
        if !allowed.contains(&key)
            && let Some(value) = table.get(key)
        {
            return Err(value.invalid(format!(
                "not used by transform = {:?} (it takes: {})",
                transform.string()?,
                allowed.join(", ")
            )));
        }
    }
    let kind = match transform.choice(&kinds)? {
        0 => {
            let factor_value = table.require("factor")?;
            let factor = factor_value.decimal(false)?;
            if factor.value.is_zero() {
                return Err(
                    factor_value.invalid("a factor of 0 removes the drawdown; use cap instead")
                );
            }
            let reference = table
                .get("reference")
                .map(|v| positive_price(&v))
                .transpose()?;
            TransformKind::ScaleDrawdown { factor, reference }
        }
        1 => TransformKind::Shift {
            seconds: table.require("by")?.duration()?,
        },
        2 => TransformKind::Cap {
            max: positive_price(&table.require("max")?)?,
        },
        _ => TransformKind::Floor {
            min: positive_price(&table.require("min")?)?,
        },
    };
    Ok(PriceTransform {
        asset,
        from,
        to,
        kind,
    })
}

fn positive_price(value: &Value<'_, '_>) -> Result<Fixed, ScenarioError> {
    let price = value.decimal(false)?;
    if price.value.is_zero() {
        return Err(value.invalid("a price must be above 0"));
    }
    Ok(price)
}

fn parse_leverage(
    table: &Table<'_, '_>,
    window: ScenarioWindow,
) -> Result<LeverageRules, ScenarioError> {
    table.only(&["max_loops", "looped_threshold_cut_bps", "correlation"])?;
    let at_window_start = |key: &str| match table.get(key) {
        Some(value) if window.from.is_none() => Err(value.invalid(
            "loops are found at the window start: give the scenario a window.from \
             (a log's positions are built by its events, there are none before the first)",
        )),
        other => Ok(other),
    };
    let max_loops = match at_window_start("max_loops")? {
        Some(value) => Some(value.count()?),
        None => None,
    };
    let looped_threshold_cut_bps = match at_window_start("looped_threshold_cut_bps")? {
        Some(value) => match value.count()? {
            cut @ 1..=10_000 => Some(cut),
            _ => {
                return Err(value.invalid(
                    "a cut is whole basis points from 1 to 10000 (10000 takes the whole threshold)",
                ));
            }
        },
        None => None,
    };
    let correlation = match table.table("correlation")? {
        Some(groups) => {
            let mut out: Vec<CorrelationGroup> = Vec::new();
            let mut seen: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in groups.entries() {
                let assets = value.strings()?;
                if assets.is_empty() {
                    return Err(value.invalid("a group lists at least one asset"));
                }
                for asset in &assets {
                    if let Some(other) = seen.insert(asset.to_ascii_lowercase(), name.clone()) {
                        return Err(value.invalid(format!(
                            "{asset} is already in group {other}: an asset belongs to one group"
                        )));
                    }
                }
                out.push(CorrelationGroup { assets, name });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Some(out)
        }
        None => None,
    };
    Ok(LeverageRules {
        correlation,
        max_loops,
        looped_threshold_cut_bps,
    })
}

fn parse_liquidator(table: &Table<'_, '_>) -> Result<LiquidatorPolicy, ScenarioError> {
    table.only(&[
        "latency",
        "block_time",
        "max_per_block",
        "gas_cost",
        "min_profit",
        "pick",
        "assumed_bonus",
        "keeper_discount",
    ])?;
    let mut policy = LiquidatorPolicy::default();
    if let Some(value) = table.get("latency") {
        policy.latency = value.non_negative_duration()?;
    }
    if let Some(value) = table.get("block_time") {
        policy.block_time = value.non_negative_duration()?;
        if policy.block_time == 0 {
            return Err(value.invalid("a block lasts at least 1 second"));
        }
    }
    if let Some(value) = table.get("max_per_block") {
        let max = value.count()?;
        if max == 0 {
            return Err(value.invalid("at least 1 (leave the key out for no limit)"));
        }
        policy.max_per_block = Some(max);
    }
    if let Some(value) = table.get("gas_cost") {
        policy.gas_cost = wad_value(&value, false)?;
    }
    if let Some(value) = table.get("min_profit") {
        policy.min_profit = wad_value(&value, false)?;
    }
    if let Some(value) = table.get("pick") {
        policy.pick = [PairChoice::LargestDebt, PairChoice::BestBonus]
            [value.choice(&["largest-debt", "best-bonus"])?];
    }
    if let Some(value) = table.get("assumed_bonus") {
        let bonus = wad_value(&value, true)?;
        if bonus >= WAD {
            return Err(value.invalid("an assumed bonus is a fraction below 1 (e.g. \"5%\")"));
        }
        policy.assumed_bonus = bonus;
    }
    if let Some(value) = table.get("keeper_discount") {
        let discount = wad_value(&value, true)?;
        if discount >= WAD {
            return Err(value.invalid("a discount is a fraction below 1 (e.g. \"5%\")"));
        }
        policy.keeper_discount = discount;
    }
    Ok(policy)
}

/// A decimal as a wad integer, refusing digits beyond 18 decimals.
fn wad_value(value: &Value<'_, '_>, percent: bool) -> Result<U256, ScenarioError> {
    let fixed = value.decimal(percent)?;
    exact_at(fixed, 18).ok_or_else(|| value.invalid("more than 18 decimals, or too large"))
}

fn parse_impact(table: &Table<'_, '_>, base: &Path) -> Result<ImpactSpec, ScenarioError> {
    let common = ["asset", "model", "half_life"];
    let model = table.require("model")?;
    let extra: &[&str] = match model.choice(&["constant-product", "depth"])? {
        0 => &[
            "base_reserve",
            "quote_reserve",
            "fee",
            "reserves_file",
            "reserves_start",
            "reserves_interval",
            "base_key",
            "quote_key",
        ],
        _ => &["depth", "slippage"],
    };
    let allowed: Vec<&str> = common.iter().chain(extra).copied().collect();
    table.only(&allowed)?;
    let asset = table.require("asset")?.id()?;
    let half_life_value = table.require("half_life")?;
    let half_life = half_life_value.non_negative_duration()?;
    if half_life == 0 {
        return Err(half_life_value.invalid(
            "a half-life of 0 removes the impact the second after each sale: give a positive duration (e.g. \"10m\")",
        ));
    }
    let model = if extra.contains(&"depth") {
        let depth = wad_value(&table.require("depth")?, false)?;
        let slippage_value = table.require("slippage")?;
        let slippage = wad_value(&slippage_value, true)?;
        if depth.is_zero() {
            return Err(table.require("depth")?.invalid("the depth must be above 0"));
        }
        if slippage.is_zero() || slippage >= WAD {
            return Err(slippage_value
                .invalid("a slippage is a fraction above 0 and below 1 (e.g. \"2%\")"));
        }
        ImpactModel::Depth { depth, slippage }
    } else {
        let fee = match table.get("fee") {
            Some(value) => {
                let fee = wad_value(&value, true)?;
                if fee >= WAD {
                    return Err(value.invalid("a pool fee is a fraction below 1 (e.g. \"0.3%\")"));
                }
                fee
            }
            // Uniswap v2: 0.3%.
            None => U256::from(3_000_000_000_000_000u64),
        };
        ImpactModel::ConstantProduct {
            liquidity: parse_liquidity(table, base)?,
            fee,
        }
    };
    Ok(ImpactSpec {
        asset,
        model,
        half_life,
    })
}

fn parse_liquidity(table: &Table<'_, '_>, base: &Path) -> Result<Liquidity, ScenarioError> {
    let fixed = (table.get("base_reserve"), table.get("quote_reserve"));
    match (table.get("reserves_file"), fixed) {
        (None, (Some(base_reserve), Some(quote_reserve))) => {
            let base_amount = wad_value(&base_reserve, false)?;
            let quote_amount = wad_value(&quote_reserve, false)?;
            if base_amount.is_zero() || quote_amount.is_zero() {
                return Err(base_reserve.invalid("pool reserves must be above 0"));
            }
            Ok(Liquidity::Reserves {
                base: base_amount,
                quote: quote_amount,
            })
        }
        (Some(file), (None, None)) => {
            let start = table.require("reserves_start")?.time()?;
            let interval = match table.get("reserves_interval") {
                Some(value) => {
                    let seconds = value.non_negative_duration()?;
                    if seconds == 0 {
                        return Err(value.invalid("the interval must be longer than 0 seconds"));
                    }
                    seconds
                }
                None => 600,
            };
            let base_key = table.require("base_key")?.string()?;
            let quote_key = table.require("quote_key")?.string()?;
            let written = file.string()?;
            let path = resolve(base, written);
            let points = read_reserves(&path, base_key, quote_key).map_err(|reason| {
                ScenarioError::Data {
                    file: file.src.file.to_owned(),
                    key: file.path.clone(),
                    data: path.display().to_string(),
                    reason,
                }
            })?;
            Ok(Liquidity::Series {
                source: written.to_owned(),
                start,
                interval,
                count: points.len(),
                points,
            })
        }
        (Some(file), _) => {
            Err(file
                .invalid("give either reserves_file or base_reserve and quote_reserve, not both"))
        }
        (None, (Some(_), None)) => {
            Err(table
                .src
                .missing(&table.path, table.span.clone(), "quote_reserve"))
        }
        (None, (None, _)) => Err(table.src.missing(
            &table.path,
            table.span.clone(),
            "base_reserve and quote_reserve, or reserves_file",
        )),
    }
}

fn resolve(base: &Path, written: &str) -> PathBuf {
    let path = Path::new(written);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Reads a JSON array of reserve snapshots (`[{"DAI": 60000000.98, "WETH": 20000.12}, ...]`),
/// taking each number from its text exactly and rounding down to 18 decimals.
fn read_reserves(
    path: &Path,
    base_key: &str,
    quote_key: &str,
) -> Result<Vec<(U256, U256)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let rows: Vec<BTreeMap<String, Box<serde_json::value::RawValue>>> =
        serde_json::from_str(&text).map_err(|e| format!("not a JSON array of objects: {e}"))?;
    if rows.is_empty() {
        return Err("no snapshots".to_owned());
    }
    let amount =
        |row: &BTreeMap<String, Box<serde_json::value::RawValue>>, index: usize, key: &str| {
            let raw = row
                .get(key)
                .ok_or_else(|| format!("snapshot {index} has no {key:?}"))?
                .get()
                .trim_matches('"');
            let value = Fixed::parse_exact(raw)
                .map_err(|e| format!("snapshot {index} {key:?}: {e}"))?
                .rescale(18)
                .ok_or_else(|| format!("snapshot {index} {key:?}: {raw} is too large"))?;
            if value.is_zero() {
                return Err(format!("snapshot {index} {key:?} is 0"));
            }
            Ok(value)
        };
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            Ok((
                amount(row, index, base_key)?,
                amount(row, index, quote_key)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
