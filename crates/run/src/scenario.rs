//! The scenario types (`docs/scenarios.md`) the engine reads a scenario file into and the run
//! file's `scenario` section shows: one set for the engine that applies them and the tools that
//! read run files. [`ScenarioInfo`] is a scenario as a run shows it, with its label, whether it
//! is the baseline and its changes in words; its liquidator policy and impact models hold the
//! described amounts (the engine keeps its own wad-integer forms of those two for its math).
//!
//! The JSON section is written with every object's keys sorted, the order it has always had:
//! the scenario's sections flatten a tagged kind into their own keys (`transform`, `model`),
//! which a derived writer would put after the others.

use std::fmt;

use cascade_events::{Fixed, Id, Protocol, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wincode::{SchemaRead, SchemaWrite};

use crate::Quantity;

/// A counterfactual run's scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct ScenarioInfo {
    /// Whether it changes nothing (the fair reference for the others).
    pub baseline: bool,
    /// What it changes, one phrase each.
    pub changes: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Price impact per asset.
    pub impact: Vec<ImpactSpec>,
    /// How tables and charts name it.
    pub label: String,
    /// Loop caps and correlation groups (`[leverage]`); written only when set, so scenarios
    /// without it read and compare as before.
    #[serde(default, skip_serializing_if = "LeverageRules::is_default")]
    pub leverage: LeverageRules,
    /// The simulated liquidator.
    pub liquidator: LiquidatorPolicy,
    /// Short name.
    pub name: String,
    /// Oracle rules, in file order.
    pub oracle: Vec<OracleRule>,
    /// Where it was read from.
    pub origin: String,
    /// Parameter overrides, in file order.
    pub overrides: Vec<Override>,
    /// Price path transforms, in file order.
    pub prices: Vec<PriceTransform>,
    /// The counterfactual window.
    pub window: ScenarioWindow,
}

/// A scenario's `[leverage]` section: what it does to looped positions and which assets count as
/// correlated (`docs/leverage.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LeverageRules {
    /// Correlation groups replacing the default table (`leverage.correlation`); `None`: the
    /// default table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Vec<CorrelationGroup>>,
    /// The loop depth every looped position is unwound to at the window start
    /// (`leverage.max_loops`); `None`: positions stay as history left them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_loops: Option<u32>,
    /// Basis points taken off the liquidation threshold (Aave) or collateral factor (Compound)
    /// of every asset of each position looped at the window start
    /// (`leverage.looped_threshold_cut_bps`); `None`: every position keeps the market's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looped_threshold_cut_bps: Option<u32>,
}

impl LeverageRules {
    /// Whether it is the default: no cap, no cut, the default correlation table.
    pub fn is_default(&self) -> bool {
        self.correlation.is_none()
            && self.max_loops.is_none()
            && self.looped_threshold_cut_bps.is_none()
    }
}

/// One correlation group: assets whose prices move together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CorrelationGroup {
    /// The assets, as written (symbols or addresses; matched ignoring case).
    pub assets: Vec<String>,
    /// The group's name.
    pub name: String,
}

/// The part of the log a scenario applies to.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead,
)]
pub struct ScenarioWindow {
    /// The scenario applies from here; before it history is replayed as recorded. `None` from
    /// the start of the log.
    pub from: Option<Timestamp>,
    /// The run stops here (exclusive); `None` at the end of the log.
    pub to: Option<Timestamp>,
}

impl ScenarioWindow {
    /// Whether `time` is inside the window.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }
}

/// Which markets an override applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, SchemaWrite, SchemaRead)]
pub enum MarketSel {
    /// Every market of the protocol (global parameters; written `"*"`).
    All,
    /// One ilk, reserve or market.
    One(Id),
}

impl fmt::Display for MarketSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketSel::All => f.write_str("*"),
            MarketSel::One(id) => id.fmt(f),
        }
    }
}

impl Serialize for MarketSel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MarketSel::All => serializer.serialize_str("*"),
            MarketSel::One(id) => id.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MarketSel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "*" {
            return Ok(MarketSel::All);
        }
        text.parse()
            .map(MarketSel::One)
            .map_err(|error| serde::de::Error::custom(format!("market {text:?}: {error}")))
    }
}

/// A protocol parameter pinned to a value. `P` is the parameter: the engine's typed parameter
/// while it applies the scenario, its name (the default) in a run file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct Override<P = String> {
    /// From when; `None` from the start of the counterfactual window.
    pub from: Option<Timestamp>,
    /// Market (ilk, reserve symbol or address), or all for a global parameter.
    pub market: MarketSel,
    /// The parameter.
    pub param: P,
    /// Protocol.
    pub protocol: Protocol,
    /// The value in the parameter's unit, canonical form.
    pub value: Fixed,
}

impl<P: fmt::Display> Override<P> {
    /// The override with its parameter named, as a run file holds it.
    pub fn named(&self) -> Override {
        Override {
            from: self.from,
            market: self.market,
            param: self.param.to_string(),
            protocol: self.protocol,
            value: self.value,
        }
    }
}

/// A change to how protocols see prices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct OracleRule {
    /// Asset affected; `None` for all.
    pub asset: Option<Id>,
    /// Publication delay in seconds (Maker: the OSM `hop`, 3600 on mainnet).
    pub delay: Option<u64>,
    /// From when; `None` from the start of the counterfactual window.
    pub from: Option<Timestamp>,
    /// Protocol affected; `None` for all.
    pub protocol: Option<Protocol>,
    /// Where the price comes from.
    pub source: Option<PriceSource>,
    /// A price older than this many seconds is stale: the protocol does not liquidate on it.
    pub stale_after: Option<u64>,
    /// When the oracle publishes.
    pub update: Option<UpdateRule>,
}

/// Where a protocol reads an asset's price from instead of its recorded feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
#[serde(rename_all = "kebab-case")]
pub enum PriceSource {
    /// Only updates from this feed (Chainlink aggregator address, `coingecko`, ...).
    Feed(Id),
    /// The prices of another asset (price ETH collateral with stETH's path).
    Asset(Id),
}

/// A Chainlink-like publication rule: a new price is published only when it moved by at least
/// `deviation` from the last published one, or `heartbeat` seconds passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct UpdateRule {
    /// Fraction (0.005 for 0.5%); `None` publishes on heartbeat only.
    pub deviation: Option<Fixed>,
    /// Seconds; `None` publishes on deviation only.
    pub heartbeat: Option<u64>,
}

/// One transform of one asset's price path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct PriceTransform {
    /// The asset whose prices change (as its price updates name it).
    pub asset: Id,
    /// Start of the window, inclusive; `None` from the beginning.
    pub from: Option<Timestamp>,
    /// End of the window, exclusive; `None` to the end.
    pub to: Option<Timestamp>,
    /// What happens inside the window.
    #[serde(flatten)]
    pub kind: TransformKind,
}

impl PriceTransform {
    /// Whether `time` is inside the transform's window.
    pub fn covers(&self, time: Timestamp) -> bool {
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }
}

/// The kinds of transform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
#[serde(tag = "transform", rename_all = "kebab-case")]
pub enum TransformKind {
    /// Scales every drawdown below `reference` by `factor`: a price `p < ref` becomes
    /// `ref - factor * (ref - p)`, never below one base unit. Prices above `ref` are unchanged.
    ScaleDrawdown {
        /// 2 makes a 30% drop a 60% drop.
        factor: Fixed,
        /// The reference price; `None` for the path's price at the window start.
        reference: Option<Fixed>,
    },
    /// The price at `t` becomes the path's price at `t - seconds`: a positive shift delays the
    /// path (the crash comes later), a negative one brings it forward.
    Shift {
        /// Seconds of delay (negative: earlier).
        seconds: i64,
    },
    /// Prices above `max` become `max` (cap a spike, e.g. DAI at 1.00).
    Cap {
        /// The cap, in the price's quote units.
        max: Fixed,
    },
    /// Prices below `min` become `min`.
    Floor {
        /// The floor, in the price's quote units.
        min: Fixed,
    },
}

/// The simulated liquidator's behaviour as a run shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LiquidatorPolicy {
    /// Bonus assumed where a protocol reports none, wad fraction.
    pub assumed_bonus: Quantity,
    /// Seconds per simulated block.
    pub block_time: u64,
    /// Gas cost of one liquidation, quote tokens.
    pub gas_cost: Quantity,
    /// Maker auctions: the discount to market keepers take at, fraction.
    pub keeper_discount: Quantity,
    /// Seconds from unsafe to acting.
    pub latency: u64,
    /// Most liquidations per block (`null`: no limit).
    pub max_per_block: Option<u32>,
    /// Least profit worth a liquidation, quote tokens.
    pub min_profit: Quantity,
    /// Preference among candidates (`largest-debt`, `best-bonus`).
    pub pick: String,
}

/// The price impact of one asset's sales as a run shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct ImpactSpec {
    /// The asset.
    pub asset: Id,
    /// Seconds for half the displacement to vanish.
    pub half_life: u64,
    /// The model.
    #[serde(flatten)]
    pub model: ImpactModel,
}

/// How sales move a price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum ImpactModel {
    /// A constant-product pool.
    ConstantProduct {
        /// Pool fee, wad fraction.
        fee: Quantity,
        /// The pool's depth.
        liquidity: Liquidity,
    },
    /// `depth` tokens move the price by `slippage`, linearly.
    Depth {
        /// Tokens.
        depth: Quantity,
        /// Fraction.
        slippage: Quantity,
    },
}

/// Where a pool's liquidity comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Liquidity {
    /// Fixed reserves.
    Reserves {
        /// Asset tokens.
        base: Quantity,
        /// Quote tokens.
        quote: Quantity,
    },
    /// Recorded reserves at regular times.
    Series {
        /// Snapshots.
        count: u64,
        /// Seconds between snapshots.
        interval: u64,
        /// Where the series was read from.
        source: String,
        /// Time of the first snapshot.
        start: Timestamp,
    },
}

/// Writes `scenario` with every object's keys sorted (see the module documentation).
pub(crate) fn sorted<S: Serializer>(
    scenario: &Option<ScenarioInfo>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let value = serde_json::to_value(scenario).map_err(serde::ser::Error::custom)?;
    value.serialize(serializer)
}
