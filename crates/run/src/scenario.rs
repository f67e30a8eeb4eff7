//! The `scenario` section of a counterfactual run: the scenario as the engine read it
//! (`docs/scenarios.md`), with its label, whether it is the baseline, and its changes in words.
//!
//! Written with every object's keys sorted, the order the section has always had: the
//! scenario's sections flatten a tagged kind into their own keys (`transform`, `model`), which a
//! derived writer would put after the others.

use cascade_events::{Fixed, Timestamp};
use serde::{Deserialize, Serialize, Serializer};

use crate::Quantity;

/// A counterfactual run's scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The part of the log a scenario applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioWindow {
    /// From here (`null`: the start of the log).
    pub from: Option<Timestamp>,
    /// Until here, exclusive (`null`: the end of the log).
    pub to: Option<Timestamp>,
}

/// A protocol parameter pinned to a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// From when (`null`: the window's start).
    pub from: Option<Timestamp>,
    /// Market, or `*` for every market of the protocol.
    pub market: String,
    /// Parameter name.
    pub param: String,
    /// Protocol name.
    pub protocol: String,
    /// The value in the parameter's unit.
    pub value: Fixed,
}

/// A change to how protocols see prices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleRule {
    /// Asset affected (`null`: all).
    pub asset: Option<String>,
    /// Publication delay, seconds.
    pub delay: Option<u64>,
    /// From when (`null`: the window's start).
    pub from: Option<Timestamp>,
    /// Protocol affected (`null`: all).
    pub protocol: Option<String>,
    /// Where the price comes from instead.
    pub source: Option<PriceSource>,
    /// A price older than this is stale, seconds.
    pub stale_after: Option<u64>,
    /// When the oracle publishes.
    pub update: Option<UpdateRule>,
}

/// Where a protocol reads an asset's price from instead of its recorded feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriceSource {
    /// Only this feed's updates.
    Feed(String),
    /// Another asset's prices.
    Asset(String),
}

/// A Chainlink-like publication rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRule {
    /// Least move that publishes, a fraction.
    pub deviation: Option<Fixed>,
    /// Seconds after which a price is published anyway.
    pub heartbeat: Option<u64>,
}

/// One transform of one asset's price path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTransform {
    /// The asset.
    pub asset: String,
    /// Start, inclusive (`null`: the beginning).
    pub from: Option<Timestamp>,
    /// End, exclusive (`null`: the end).
    pub to: Option<Timestamp>,
    /// What happens inside.
    #[serde(flatten)]
    pub kind: TransformKind,
}

/// The kinds of price transform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transform", rename_all = "kebab-case")]
pub enum TransformKind {
    /// Drawdowns below `reference` scaled by `factor`.
    ScaleDrawdown {
        /// The scale.
        factor: Fixed,
        /// The reference price (`null`: the price at the window's start).
        reference: Option<Fixed>,
    },
    /// The path moved by `seconds`.
    Shift {
        /// Seconds of delay (negative: earlier).
        seconds: i64,
    },
    /// Prices above `max` become `max`.
    Cap {
        /// The cap.
        max: Fixed,
    },
    /// Prices below `min` become `min`.
    Floor {
        /// The floor.
        min: Fixed,
    },
}

/// The simulated liquidator's behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The price impact of one asset's sales.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactSpec {
    /// The asset.
    pub asset: String,
    /// Seconds for half the displacement to vanish.
    pub half_life: u64,
    /// The model.
    #[serde(flatten)]
    pub model: ImpactModel,
}

/// How sales move a price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
        count: usize,
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
