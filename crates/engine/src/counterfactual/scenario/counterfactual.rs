//! A [`Scenario`] as the replay loop's [`Counterfactual`]: it transforms prices, pins parameters,
//! drives the simulated liquidator, feeds its sales into the price impact model, and tracks the
//! cascade.
//!
//! Rules this module applies (documented for users in `docs/scenarios.md`):
//! - Overrides take effect at their `from` (or the window start) through
//!   `ProtocolModel::set_param`, once; recorded governance changes of a pinned parameter after
//!   that are skipped (and counted by the loop as `param-change-pinned-by-scenario`).
//! - An oracle `delay` is the Maker OSM `hop`, set like an override (other protocols read the
//!   latest answer; a lagged feed is a `[[price]]` shift).
//! - Prices: source swap, then the path transforms, then the update rule, then the price impact
//!   multiplier. Impact updates after a sale are emitted for every feed of the sold asset (and its
//!   wrapped twin: `WETH`/`ETH`, `WBTC`/`BTC`), and for every price quoted in it (Aave v2's
//!   oracle quotes reserves in ETH), divided by the multiplier: a dollar costs more ETH once ETH
//!   fell.
//! - A liquidation is impact-triggered when the account would have been safe at the price its
//!   oracle read without the impact that price carried (Maker: the multiplier in effect one OSM
//!   period before the current one); its causes are the fewest of the sales that price carried
//!   of the earliest cascade rounds which alone make it liquidatable
//!   ([`CascadeTracker::needed_causes`]). The liquidations
//!   chosen together from one list of candidates were all liquidatable before any of their sales,
//!   so none of them is judged with, or caused by, the others' impact.
//!
//! It never reads a clock: time comes from the events the loop hands in.

use std::collections::{BTreeMap, BTreeSet};

use cascade_events::{Fixed, Id, ParamChange, PriceUpdate, Protocol, Timestamp, U256};

use cascade_run::scenario as described;

use super::{MarketSel, Param, PriceSource, Scenario};
use crate::core::replay::Counterfactual;
use crate::counterfactual::cascade::{CascadeTracker, Cause, Recorded, Trigger};
use crate::counterfactual::impact::{
    ImpactModel, ImpactSpec, Liquidity, PriceImpact, RAY, WAD, wide_mul_div,
};
use crate::counterfactual::liquidator::{BlockBudget, LiquidatorPolicy, PairChoice, Target};
use crate::counterfactual::scenario::PricePaths;
use crate::leverage::cap::Capped;
use crate::leverage::loops::Correlation;
use crate::protocol::param::{ParamSetting, ProtocolParam};
use crate::protocol::registry::ProtocolSet;
use crate::protocol::{Candidate, LiquidatorChoice, Quantity, SimulatedLiquidation};
use crate::protocols::maker::MakerParam;
use crate::run::{
    CascadeReport, ChainLink, CounterfactualReport, CrossProtocolLink, LargestLoss,
    LiquidatorReport, RoundReport, ScenarioInfo,
};

/// How many of the largest losses the report lists with their chains.
const LARGEST_LOSSES: usize = 10;

/// Whether two asset ids name the same market asset, a wrapped token and its native coin
/// counting as one (`WETH`/`ETH`, `WBTC`/`BTC`).
pub fn same_asset(a: &Id, b: &Id) -> bool {
    a == b || native(a) == native(b)
}

fn native(id: &Id) -> Id {
    const TWINS: [(&str, &str); 2] = [("WETH", "ETH"), ("WBTC", "BTC")];
    if let Id::Name(symbol) = id {
        for (wrapped, coin) in TWINS {
            if symbol.as_str() == wrapped {
                return Id::name(coin);
            }
        }
    }
    *id
}

/// A liquidated position: (protocol, market, account).
type Key = (Protocol, Id, Id);

/// An override waiting for its time: (start, the setting).
type Pending = (Option<Timestamp>, ParamSetting);

/// The scenario's state during one counterfactual run.
pub struct ScenarioRun {
    scenario: Scenario,
    description: ScenarioInfo,
    fingerprint: [u8; 32],
    paths: PricePaths,
    impact: PriceImpact,
    tracker: CascadeTracker,
    budget: BlockBudget,
    /// Maker OSM hop in effect, for trigger attribution.
    hop: i64,
    pending: Vec<Pending>,
    /// Pinned parameters: (start, protocol, market, parameter).
    pinned: Vec<(Option<Timestamp>, Protocol, MarketSel, Param)>,
    unsafe_since: BTreeMap<(Protocol, Id, Id), Timestamp>,
    /// Health (wad) of each account the last choice picked, in the order it picked them (the
    /// order the engine liquidates them in), and how far `on_liquidation` has looked.
    chosen: (Vec<(Key, U256)>, usize),
    /// The candidates of the current choice, reused from one choice to the next.
    ranked: Vec<(usize, Target)>,
    /// Last price per (asset, quote, feed) after transforms, before impact, with its time.
    base: BTreeMap<(Id, Id, Id), (Timestamp, Fixed)>,
    /// Multiplier carried by each update of an asset, in time order.
    carried: BTreeMap<Id, Vec<(Timestamp, U256)>>,
    /// Last published price per (asset, quote, feed) under an update rule.
    published: BTreeMap<(Id, Id, Id), (Timestamp, Fixed)>,
    /// Latest price of each swap source.
    sources: BTreeMap<Id, Fixed>,
    last_round: Option<u32>,
    /// The first cascade id of the liquidations chosen from the current candidate list, and the
    /// length of each asset's `carried` history when they were chosen: what their triggers see.
    batch: (u32, BTreeMap<Id, usize>),
    passed: BTreeMap<&'static str, u64>,
    sold: BTreeMap<Id, U256>,
    slippage: U256,
    /// `leverage.max_loops` until the engine takes it at the window start.
    loop_cap: Option<u32>,
    /// What the loop cap did per protocol, once it ran.
    capped: Option<BTreeMap<Protocol, Capped>>,
    /// `leverage.looped_threshold_cut_bps` until the engine takes it at the window start.
    threshold_cut: Option<u16>,
    /// Looped positions whose thresholds were cut, per protocol, once it ran.
    thresholds_cut: Option<BTreeMap<Protocol, u64>>,
}

impl ScenarioRun {
    /// The run state of `scenario`, with its price paths built from the recorded series and the
    /// Maker OSM hop the engine starts with.
    pub fn new(scenario: Scenario, paths: PricePaths, maker_hop: i64) -> Self {
        let start = scenario.window.from;
        let mut pending: Vec<Pending> = Vec::new();
        let mut pinned = Vec::new();
        let protocols = ProtocolSet::default();
        for o in &scenario.overrides {
            let from = o.from.or(start);
            let market = match o.market {
                MarketSel::One(id) => Some(id),
                MarketSel::All => None,
            };
            for name in o.param.spec().engine_names {
                let param = protocols
                    .parse_param(o.protocol, name)
                    .expect("the scenario table names parameters its protocols register");
                pending.push((
                    from,
                    ParamSetting {
                        param,
                        market,
                        value: o.value,
                    },
                ));
            }
            pinned.push((from, o.protocol, o.market, o.param));
        }
        let mut hop = maker_hop;
        for rule in &scenario.oracle {
            if let Some(delay) = rule.delay
                && rule.protocol.is_none_or(|p| p == Protocol::Maker)
            {
                pending.push((
                    rule.from.or(start),
                    ParamSetting {
                        param: MakerParam::Hop.id(Protocol::Maker),
                        market: None,
                        value: Fixed::new(U256::from(delay), 0),
                    },
                ));
                if rule.from.is_none() {
                    hop = i64::try_from(delay).unwrap_or(i64::MAX);
                }
            }
        }
        // Stable order: by start time, then file order.
        pending.sort_by_key(|p| p.0);
        let description = describe(&scenario);
        let scenario_loop_cap = scenario.leverage.max_loops;
        // Parsing keeps a cut within 1..=10000 basis points.
        let scenario_threshold_cut = scenario
            .leverage
            .looped_threshold_cut_bps
            .and_then(|cut| u16::try_from(cut).ok());
        let mut hasher = blake3::Hasher::new();
        // The sorted JSON text the fingerprint has always hashed.
        let text = serde_json::to_value(&description)
            .expect("a scenario description is strings, numbers, maps and lists")
            .to_string();
        hasher.update(text.as_bytes());
        for spec in &scenario.impact {
            if let crate::counterfactual::impact::ImpactModel::ConstantProduct {
                liquidity: crate::counterfactual::impact::Liquidity::Series { points, .. },
                ..
            } = &spec.model
            {
                for (base, quote) in points {
                    hasher.update(&base.to_le_bytes::<32>());
                    hasher.update(&quote.to_le_bytes::<32>());
                }
            }
        }
        ScenarioRun {
            impact: PriceImpact::new(&scenario.impact),
            fingerprint: *hasher.finalize().as_bytes(),
            description,
            scenario,
            paths,
            tracker: CascadeTracker::new(),
            budget: BlockBudget::default(),
            hop,
            pending,
            pinned,
            unsafe_since: BTreeMap::new(),
            chosen: (Vec::new(), 0),
            ranked: Vec::new(),
            base: BTreeMap::new(),
            carried: BTreeMap::new(),
            published: BTreeMap::new(),
            sources: BTreeMap::new(),
            last_round: None,
            batch: (0, BTreeMap::new()),
            passed: BTreeMap::new(),
            sold: BTreeMap::new(),
            slippage: U256::ZERO,
            loop_cap: scenario_loop_cap,
            threshold_cut: scenario_threshold_cut,
            thresholds_cut: None,
            capped: None,
        }
    }

    /// The impact spec's key for `asset` (its own id or its twin's), if sales of it move prices.
    fn impact_key(&self, asset: &Id) -> Option<Id> {
        self.scenario
            .impact
            .iter()
            .find(|spec| same_asset(&spec.asset, asset))
            .map(|spec| spec.asset)
    }

    /// The latest market price of `asset` (or its twin) before impact, wad, from any feed.
    fn market_price(&self, asset: &Id) -> Option<U256> {
        self.base
            .iter()
            .filter(|((a, _, _), _)| same_asset(a, asset))
            .max_by_key(|(key, (time, _))| (*time, **key))
            .and_then(|(_, (_, price))| price.rescale(18))
    }

    /// The multiplier the price updates of `asset` carried at `time` (the last at or before it),
    /// as the current batch of liquidations saw it (before their own sales).
    fn carried_at(&self, asset: &Id, time: Timestamp) -> U256 {
        self.carried
            .iter()
            .filter(|(a, _)| same_asset(a, asset))
            .filter_map(|(a, history)| {
                let seen = self.batch.1.get(a).map_or(history.len(), |n| *n);
                let history = &history[..seen.min(history.len())];
                let after = history.partition_point(|(t, _)| *t <= time);
                after.checked_sub(1).map(|i| history[i])
            })
            .max_by_key(|(t, _)| *t)
            .map_or(RAY, |(_, m)| m)
    }

    fn carry(&mut self, asset: Id, time: Timestamp, m: U256) {
        let history = self.carried.entry(asset).or_default();
        if history.last().is_none_or(|(_, last)| *last != m) {
            history.push((time, m));
        }
    }

    fn pass(&mut self, reason: &'static str) {
        *self.passed.entry(reason).or_default() += 1;
    }

    /// Applies the oracle rules' source swaps and update rules to a recorded update.
    fn oracle_view(&mut self, update: &PriceUpdate, time: Timestamp) -> Fixed {
        let mut price = update.price;
        for index in 0..self.scenario.oracle.len() {
            let rule = &self.scenario.oracle[index];
            if rule.from.is_some_and(|from| time < from) {
                continue;
            }
            match rule.source {
                Some(PriceSource::Feed(feed)) if rule.asset.is_none_or(|a| a == update.asset) => {
                    if update.feed == feed {
                        self.sources.insert(feed, update.price);
                    } else if let Some(source) = self.sources.get(&feed) {
                        price = *source;
                    }
                }
                Some(PriceSource::Asset(other)) => {
                    if update.asset == other {
                        self.sources.insert(other, update.price);
                    }
                    if rule.asset == Some(update.asset)
                        && let Some(source) = self.sources.get(&other)
                    {
                        price = *source;
                    }
                }
                _ => {}
            }
        }
        price
    }

    fn apply_update_rule(&mut self, update: &PriceUpdate, time: Timestamp, price: Fixed) -> Fixed {
        let rule = self.scenario.oracle.iter().find(|rule| {
            rule.update.is_some()
                && rule.asset.is_none_or(|a| a == update.asset)
                && rule.from.is_none_or(|from| time >= from)
        });
        let Some(rule) = rule.and_then(|r| r.update) else {
            return price;
        };
        let key = (update.asset, update.quote, update.feed);
        let publish = match self.published.get(&key) {
            None => true,
            Some((at, last)) => {
                let heartbeat = rule.heartbeat.is_some_and(|h| {
                    time.0.saturating_sub(at.0) >= i64::try_from(h).unwrap_or(i64::MAX)
                });
                let deviation = rule.deviation.is_some_and(|d| moved_by(*last, price, d));
                heartbeat || deviation
            }
        };
        if publish {
            self.published.insert(key, (time, price));
            price
        } else {
            self.published.get(&key).map_or(price, |(_, last)| *last)
        }
    }

    /// Whether a staleness rule for `protocol` finds its asset's newest price too old at `time`
    /// (a rule without an asset looks at the newest price of any asset).
    fn stale(&self, protocol: Protocol, time: Timestamp) -> bool {
        self.scenario.oracle.iter().any(|rule| {
            let Some(limit) = rule.stale_after else {
                return false;
            };
            if rule.protocol.is_some_and(|p| p != protocol) || rule.from.is_some_and(|f| time < f) {
                return false;
            }
            let newest = self
                .base
                .iter()
                .filter(|((asset, _, _), _)| {
                    rule.asset.is_none_or(|wanted| same_asset(asset, &wanted))
                })
                .map(|(_, (at, _))| *at)
                .max();
            newest.is_some_and(|at| {
                time.0.saturating_sub(at.0) > i64::try_from(limit).unwrap_or(i64::MAX)
            })
        })
    }

    /// Estimated profit of liquidating `candidate`, quote wad, before gas: Maker keepers buy at a
    /// discount `d` (profit `debt * d / (1 - d)`); elsewhere the policy's assumed bonus on the part
    /// a liquidator may repay.
    fn estimated_profit(&self, candidate: &Candidate) -> U256 {
        let policy = &self.scenario.liquidator;
        if candidate.protocol == Protocol::Maker {
            let keep = WAD.saturating_sub(policy.keeper_discount);
            wide_mul_div(candidate.debt_value, policy.keeper_discount, keep).unwrap_or(U256::MAX)
        } else {
            wide_mul_div(candidate.debt_value, policy.assumed_bonus, WAD).unwrap_or(U256::MAX)
                / U256::from(2u8)
        }
    }

    /// The health (wad) the last choice saw `key` at; one when it did not pick it. Liquidations
    /// come in the order they were picked, so the search starts after the last one found.
    fn chosen_health(&mut self, key: &Key) -> U256 {
        let (picked, next) = &mut self.chosen;
        let ahead = picked[(*next).min(picked.len())..]
            .iter()
            .position(|(k, _)| k == key)
            .map(|offset| *next + offset);
        match ahead.or_else(|| picked.iter().position(|(k, _)| k == key)) {
            Some(at) => {
                *next = at + 1;
                picked[at].1
            }
            None => WAD,
        }
    }

    /// The trigger of a liquidation of `key` on `asset` at `time`, the account's health having
    /// been `health` (wad) at the price its oracle read.
    fn trigger(&mut self, key: &Key, asset: &Id, time: Timestamp) -> Trigger {
        let read_at = if key.0 == Protocol::Maker && self.hop > 0 {
            Timestamp((time.0.div_euclid(self.hop) - 1) * self.hop)
        } else {
            time
        };
        let m = self.carried_at(asset, read_at);
        // Without a multiplier below one the health does not matter: the price moved alone.
        if m >= RAY {
            return Trigger::PriceMove;
        }
        let health = self.chosen_health(key);
        let without_impact = wide_mul_div(health, RAY, m.max(U256::from(1u8))).unwrap_or(U256::MAX);
        if without_impact >= WAD {
            let nodes = self.tracker.nodes();
            // Sales after the oracle read its price, or decided with this one, cannot be causes.
            let live = self
                .impact_key(asset)
                .map(|impact_asset| self.impact.contributors(&impact_asset, time))
                .unwrap_or_default()
                .into_iter()
                .filter(|c| {
                    c.liquidation < self.batch.0
                        && nodes
                            .get(c.liquidation as usize)
                            .is_some_and(|node| node.time <= read_at)
                })
                .map(|c| Cause {
                    liquidation: c.liquidation,
                    displacement: c.displacement,
                })
                .collect();
            // Unsafe at a displacement above `1 - m / health`; `m / health <= 1` here.
            let safe_share = wide_mul_div(m, WAD, health).unwrap_or(RAY).min(RAY);
            let causes = self.tracker.needed_causes(live, RAY - safe_share, RAY - m);
            Trigger::Impact { causes }
        } else {
            Trigger::PriceMove
        }
    }
}

/// A price quoted in an asset whose own price carries the multiplier `m` (ray): `price / m`,
/// rounded down at no fewer than 18 decimals (a quote such as `0.000625` ETH per USDC would
/// otherwise lose a tenth of a percent to its six), unchanged without impact.
fn inverse_impact(price: Fixed, m: U256) -> Fixed {
    if m >= RAY {
        return price;
    }
    let decimals = price.decimals.max(18);
    let Some(value) = price.rescale(decimals) else {
        return price;
    };
    Fixed::new(
        wide_mul_div(value, RAY, m.max(U256::from(1u8))).unwrap_or(U256::MAX),
        decimals,
    )
}

/// Whether `price` differs from `last` by at least the fraction `deviation`.
fn moved_by(last: Fixed, price: Fixed, deviation: Fixed) -> bool {
    let decimals = last.decimals.max(price.decimals);
    let (Some(a), Some(b)) = (last.rescale(decimals), price.rescale(decimals)) else {
        return true;
    };
    let change = if a > b { a - b } else { b - a };
    let scale = U256::from(10u8).pow(U256::from(deviation.decimals));
    // change / a >= deviation  <=>  change * 10^d >= a * deviation
    change.saturating_mul(scale) >= a.saturating_mul(deviation.value)
}

/// The scenario as the run file's `scenario` key shows it.
pub fn describe(scenario: &Scenario) -> ScenarioInfo {
    ScenarioInfo {
        baseline: scenario.is_baseline(),
        changes: scenario.changes(),
        description: scenario.description.clone(),
        impact: scenario.impact.iter().map(describe_impact).collect(),
        label: scenario.label(),
        leverage: scenario.leverage.clone(),
        liquidator: describe_liquidator(&scenario.liquidator),
        name: scenario.name.clone(),
        oracle: scenario.oracle.clone(),
        origin: scenario.origin.clone(),
        overrides: scenario.overrides.iter().map(|o| o.named()).collect(),
        prices: scenario.prices.clone(),
        window: scenario.window,
    }
}

/// What the loop cap did, as a line of the scenario's changes: positions unwound per protocol.
fn capped_line(capped: &BTreeMap<Protocol, Capped>) -> String {
    if capped.is_empty() {
        return "loop cap: no position had more loops than the cap at the window start".to_owned();
    }
    let parts: Vec<String> = capped
        .iter()
        .map(|(protocol, c)| {
            let mut part = format!("{protocol} {}", c.positions);
            if c.adjusted > 0 {
                part.push_str(&format!(" ({} actions clamped by the model)", c.adjusted));
            }
            part
        })
        .collect();
    format!(
        "loop cap: positions unwound at the window start: {}",
        parts.join(", ")
    )
}

/// What the threshold cut did, as a line of the scenario's changes: positions cut per protocol.
fn cut_line(cut: &BTreeMap<Protocol, u64>) -> String {
    if cut.is_empty() {
        return "threshold cut: no looped position at the window start".to_owned();
    }
    let parts: Vec<String> = cut
        .iter()
        .map(|(protocol, n)| format!("{protocol} {n}"))
        .collect();
    format!(
        "threshold cut: looped positions cut at the window start: {}",
        parts.join(", ")
    )
}

/// A wad integer as the run file's exact amount.
fn wad(value: U256) -> Quantity {
    Quantity::new(value, 18)
}

fn describe_liquidator(policy: &LiquidatorPolicy) -> described::LiquidatorPolicy {
    described::LiquidatorPolicy {
        assumed_bonus: wad(policy.assumed_bonus),
        block_time: policy.block_time,
        gas_cost: wad(policy.gas_cost),
        keeper_discount: wad(policy.keeper_discount),
        latency: policy.latency,
        max_per_block: policy.max_per_block,
        min_profit: wad(policy.min_profit),
        pick: match policy.pick {
            PairChoice::LargestDebt => "largest-debt",
            PairChoice::BestBonus => "best-bonus",
        }
        .to_owned(),
    }
}

fn describe_impact(spec: &ImpactSpec) -> described::ImpactSpec {
    let model = match &spec.model {
        ImpactModel::ConstantProduct { liquidity, fee } => {
            described::ImpactModel::ConstantProduct {
                fee: wad(*fee),
                liquidity: match liquidity {
                    Liquidity::Reserves { base, quote } => described::Liquidity::Reserves {
                        base: wad(*base),
                        quote: wad(*quote),
                    },
                    Liquidity::Series {
                        source,
                        start,
                        interval,
                        count,
                        ..
                    } => described::Liquidity::Series {
                        count: *count as u64,
                        interval: *interval,
                        source: source.clone(),
                        start: *start,
                    },
                },
            }
        }
        ImpactModel::Depth { depth, slippage } => described::ImpactModel::Depth {
            depth: wad(*depth),
            slippage: wad(*slippage),
        },
    };
    described::ImpactSpec {
        asset: spec.asset,
        half_life: spec.half_life,
        model,
    }
}

impl Counterfactual for ScenarioRun {
    fn describe(&self) -> ScenarioInfo {
        let mut description = self.description.clone();
        if let Some(capped) = &self.capped {
            description.changes.push(capped_line(capped));
        }
        if let Some(cut) = &self.thresholds_cut {
            description.changes.push(cut_line(cut));
        }
        description
    }

    fn liquidations_by_trigger(&self) -> Vec<crate::run::TriggeredLiquidations> {
        self.tracker
            .by_trigger()
            .into_iter()
            .map(
                |((protocol, by, debt_asset), totals)| crate::run::TriggeredLiquidations {
                    protocol: protocol.name().to_owned(),
                    trigger: by.name().to_owned(),
                    debt_asset: debt_asset.to_string(),
                    liquidations: u64::from(totals.liquidations),
                    debt_repaid: Quantity::new(totals.debt, 18),
                },
            )
            .collect()
    }

    fn take_loop_cap(&mut self) -> Option<(u32, Correlation)> {
        let depth = self.loop_cap.take()?;
        Some((depth, self.correlation()))
    }

    fn loops_capped(&mut self, capped: &BTreeMap<Protocol, Capped>) {
        self.capped = Some(capped.clone());
    }

    fn take_threshold_cut(&mut self) -> Option<(u16, Correlation)> {
        let cut = self.threshold_cut.take()?;
        Some((cut, self.correlation()))
    }

    fn thresholds_cut(&mut self, cut: &BTreeMap<Protocol, u64>) {
        self.thresholds_cut = Some(cut.clone());
    }

    fn correlation(&self) -> Correlation {
        Correlation::of(&self.scenario.leverage)
    }

    fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn due_overrides(&mut self, time: Timestamp, out: &mut Vec<ParamSetting>) {
        let due = self
            .pending
            .iter()
            .take_while(|p| p.0.is_none_or(|from| time >= from))
            .count();
        for (_, setting) in self.pending.drain(..due) {
            if setting.param == MakerParam::Hop.id(Protocol::Maker) {
                self.hop = setting
                    .value
                    .rescale(0)
                    .and_then(|h| i64::try_from(h).ok())
                    .unwrap_or(self.hop);
            }
            out.push(setting);
        }
    }

    fn keeps_param_change(&mut self, change: &ParamChange, time: Timestamp) -> bool {
        let Some(changed) = Param::recorded(change.protocol, change.param.as_str()) else {
            return true;
        };
        !self.pinned.iter().any(|(from, protocol, market, param)| {
            *protocol == change.protocol
                && *param == changed
                && from.is_none_or(|from| time >= from)
                && (*market == MarketSel::All || *market == MarketSel::One(change.market))
        })
    }

    fn transform_price(&mut self, update: &PriceUpdate, time: Timestamp) -> PriceUpdate {
        let swapped = self.oracle_view(update, time);
        let shaped = self.paths.price(&update.asset, time, swapped);
        let published = self.apply_update_rule(update, time, shaped);
        self.base
            .insert((update.asset, update.quote, update.feed), (time, published));
        let mut out = *update;
        out.price = published;
        if let Some(key) = self.impact_key(&update.asset) {
            let m = self.impact.multiplier(&key, time);
            out.price = Fixed::new(
                self.impact.apply(&key, time, published.value),
                published.decimals,
            );
            self.carry(update.asset, time, m);
        } else if let Some(key) = self.impact_key(&update.quote) {
            // Quoted in an impacted asset: the lingering impact, inverted (see `on_liquidation`).
            let m = self.impact.multiplier(&key, time);
            out.price = inverse_impact(published, m);
        }
        out
    }

    fn choose(
        &mut self,
        time: Timestamp,
        candidates: &[Candidate],
        out: &mut Vec<(usize, LiquidatorChoice)>,
    ) {
        let Some(protocol) = candidates.first().map(|c| c.protocol) else {
            return;
        };
        // Accounts of this protocol no longer listed are safe again: their latency restarts.
        // Without latency nobody waits, so nothing needs remembering.
        let latency = self.scenario.liquidator.latency > 0;
        if latency {
            let listed: BTreeSet<(Id, Id)> =
                candidates.iter().map(|c| (c.market, c.account)).collect();
            self.unsafe_since.retain(|(p, market, account), _| {
                *p != protocol || listed.contains(&(*market, *account))
            });
        }
        // Healths are only needed by `on_liquidation` right after this choice.
        self.chosen.0.clear();
        self.chosen.1 = 0;
        self.batch = (
            self.tracker.next_id(),
            self.carried.iter().map(|(a, h)| (*a, h.len())).collect(),
        );
        let mut ranked = std::mem::take(&mut self.ranked);
        ranked.clear();
        for (index, candidate) in candidates.iter().enumerate() {
            let since = if latency {
                let key = (candidate.protocol, candidate.market, candidate.account);
                *self.unsafe_since.entry(key).or_insert(time)
            } else {
                time
            };
            ranked.push((
                index,
                Target {
                    protocol: candidate.protocol,
                    market: candidate.market,
                    account: candidate.account,
                    unsafe_since: since,
                    debt_value: candidate.debt_value,
                    bonus: U256::ZERO,
                },
            ));
        }
        let policy = self.scenario.liquidator.clone();
        // The preference is a total order (it ends with the account), so an unstable sort gives
        // the one order a stable sort would.
        ranked.sort_unstable_by(|a, b| policy.preference(&a.1, &b.1));
        // Within one choice nothing moves the prices, so whether a protocol's price is stale and
        // the market price of a market's asset are looked up once per choice.
        let mut stale: Option<(Protocol, bool)> = None;
        let mut market_prices: Vec<(Id, Id, Option<U256>)> = Vec::new();
        for (index, candidate) in ranked.drain(..) {
            if time < policy.ready_at(candidate.unsafe_since) {
                self.pass("latency");
                continue;
            }
            let original = &candidates[index];
            let is_stale = match stale {
                Some((protocol, known)) if protocol == original.protocol => known,
                _ => {
                    let known = self.stale(original.protocol, time);
                    stale = Some((original.protocol, known));
                    known
                }
            };
            if is_stale {
                self.pass("stale-price");
                continue;
            }
            // Maker keepers bid what the lot will fetch when sold into the market (after price
            // impact) less their discount, so slippage is priced into the take, not a loss.
            let take_price = if original.protocol == Protocol::Maker {
                let (asset, market_price) =
                    match market_prices.iter().find(|(m, _, _)| *m == original.market) {
                        Some((_, asset, price)) => (*asset, *price),
                        None => {
                            let asset = original.market_asset();
                            let price = self.market_price(&asset);
                            market_prices.push((original.market, asset, price));
                            (asset, price)
                        }
                    };
                market_price.map(|price| {
                    let execution = match self.impact_key(&asset) {
                        Some(key) if !price.is_zero() => {
                            let tokens =
                                wide_mul_div(original.debt_value, WAD, price).unwrap_or_default();
                            let sale = self.impact.quote(&key, time, price, tokens, 18);
                            wide_mul_div(sale.proceeds, WAD, tokens.max(U256::from(1u8)))
                                .unwrap_or_default()
                        }
                        _ => price,
                    };
                    Fixed::new(policy.keeper_price(execution), 18)
                })
            } else {
                None
            };
            let profit = policy.profit(self.estimated_profit(original), U256::ZERO);
            if !policy.worth_it(profit) {
                self.pass("unprofitable");
                continue;
            }
            if !self.budget.take(&policy, time) {
                self.pass("block-full");
                continue;
            }
            self.chosen.0.push((
                (original.protocol, original.market, original.account),
                original.health,
            ));
            out.push((
                index,
                LiquidatorChoice {
                    take_price,
                    pair: policy.pick,
                    ..LiquidatorChoice::default()
                },
            ));
        }
        self.ranked = ranked;
    }

    fn on_liquidation(
        &mut self,
        time: Timestamp,
        done: &SimulatedLiquidation,
        out: &mut Vec<PriceUpdate>,
    ) {
        let key = (done.protocol, done.market, done.account);
        let asset = done.collateral_asset;
        let trigger = self.trigger(&key, &asset, time);
        self.unsafe_since.remove(&key);
        let price = self.market_price(&asset).unwrap_or_default();
        let impact_key = self.impact_key(&asset);
        let impacted = impact_key.map_or(price, |k| self.impact.apply(&k, time, price));
        // The owner loses what the liquidator sold (the rest of a Maker lot returns to the vault)
        // and is cleared of the debt repaid.
        let sold_value = wide_mul_div(
            crate::counterfactual::impact::to_wad(
                done.collateral_sold.value,
                done.collateral_sold.decimals,
            ),
            impacted,
            WAD,
        )
        .unwrap_or(U256::MAX);
        let debt = crate::counterfactual::impact::to_wad(
            done.debt_repaid.value,
            done.debt_repaid.decimals,
        );
        let id = self.tracker.record(
            Recorded {
                time,
                protocol: done.protocol,
                market: done.market,
                account: done.account,
                asset,
                loss: sold_value.saturating_sub(debt),
                debt_asset: done.debt_asset,
                debt,
            },
            trigger,
        );
        self.last_round = self.tracker.nodes().last().map(|node| node.round);
        let sold = done.collateral_sold;
        let entry = self.sold.entry(asset).or_default();
        *entry = entry.saturating_add(crate::counterfactual::impact::to_wad(
            sold.value,
            sold.decimals,
        ));
        let Some(impact_key) = impact_key else {
            return;
        };
        let sale = self
            .impact
            .sell(&impact_key, time, price, (sold.value, sold.decimals), id);
        self.slippage = self.slippage.saturating_add(sale.slippage());
        let m = sale.multiplier_after;
        let feeds: Vec<((Id, Id, Id), Fixed)> = self
            .base
            .iter()
            .filter(|((a, _, _), _)| same_asset(a, &asset))
            .map(|(key, (_, price))| (*key, *price))
            .collect();
        for ((asset, quote, feed), base) in feeds {
            let price = wide_mul_div(base.value, m, RAY).unwrap_or_default();
            out.push(PriceUpdate {
                asset,
                quote,
                price: Fixed::new(price, base.decimals),
                feed,
                round: None,
            });
            self.carry(asset, time, m);
        }
        // Prices quoted in the sold asset (Aave v2's oracle quotes every reserve in ETH) move
        // the other way: with ETH worth `m` of itself, a dollar costs `1 / m` of the ETH it did.
        let quoted: Vec<((Id, Id, Id), Fixed)> = self
            .base
            .iter()
            .filter(|((a, q, _), _)| same_asset(q, &asset) && !same_asset(a, &asset))
            .filter(|((a, _, _), _)| self.impact_key(a).is_none())
            .map(|(key, (_, price))| (*key, *price))
            .collect();
        for ((priced, quote, feed), base) in quoted {
            out.push(PriceUpdate {
                asset: priced,
                quote,
                price: inverse_impact(base, m),
                feed,
                round: None,
            });
        }
    }

    fn last_round(&self) -> Option<u32> {
        self.last_round
    }

    fn report(&self) -> Option<CounterfactualReport> {
        let rounds = self
            .tracker
            .rounds()
            .into_iter()
            .map(|(round, totals)| {
                (
                    round.to_string(),
                    RoundReport {
                        liquidations: totals.liquidations,
                        loss: Quantity::new(totals.loss, 18),
                    },
                )
            })
            .collect();
        let nodes = self.tracker.nodes();
        let largest_losses = self
            .tracker
            .largest_losses(LARGEST_LOSSES)
            .into_iter()
            .filter(|(id, _)| !nodes[*id as usize].loss.is_zero())
            .map(|(id, chain)| {
                let node = &nodes[id as usize];
                LargestLoss {
                    account: node.account.to_string(),
                    chain: chain
                        .iter()
                        .map(|link| {
                            let n = &nodes[*link as usize];
                            ChainLink {
                                account: n.account.to_string(),
                                round: n.round,
                                time: n.time,
                            }
                        })
                        .collect(),
                    loss: Quantity::new(node.loss, 18),
                    market: node.market.to_string(),
                    protocol: node.protocol.name().to_owned(),
                    round: node.round,
                    time: node.time,
                }
            })
            .collect();
        let triggers =
            nodes
                .iter()
                .fold((0u64, 0u64), |(price, impact), node| match node.trigger {
                    Trigger::PriceMove => (price + 1, impact),
                    Trigger::Impact { .. } => (price, impact + 1),
                });
        let multipliers = self
            .scenario
            .impact
            .iter()
            .map(|spec| {
                let at = nodes.last().map_or(Timestamp(0), |n| n.time);
                (
                    spec.asset.to_string(),
                    Quantity::new(self.impact.multiplier(&spec.asset, at), 27),
                )
            })
            .collect();
        Some(CounterfactualReport {
            baseline: self.scenario.is_baseline(),
            cascade: CascadeReport {
                depth: self.tracker.depth(),
                rounds,
                triggered_by_impact: triggers.1,
                triggered_by_price_move: triggers.0,
                cross_protocol: self
                    .tracker
                    .cross_protocol_links()
                    .into_iter()
                    .map(|link| CrossProtocolLink {
                        accounts: link.accounts,
                        asset: link.asset.to_string(),
                        cause_market: link.cause_market.to_string(),
                        cause_protocol: link.cause_protocol.name().to_owned(),
                        cause_sales: link.cause_sales,
                        cause_time: link.cause_time,
                        effect_market: link.effect_market.to_string(),
                        effect_protocol: link.effect_protocol.name().to_owned(),
                        effect_time: link.effect_time,
                        liquidations: link.liquidations,
                        price_moved_percent: Quantity::new(
                            link.moved.saturating_mul(U256::from(100u8)),
                            27,
                        ),
                    })
                    .collect(),
            },
            impact_multiplier_after_last_liquidation: multipliers,
            label: self.scenario.label(),
            largest_losses,
            liquidator: LiquidatorReport {
                collateral_sold: self
                    .sold
                    .iter()
                    .map(|(asset, amount)| (asset.to_string(), Quantity::new(*amount, 18)))
                    .collect(),
                passed: self
                    .passed
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
                    .collect(),
                slippage: Quantity::new(self.slippage, 18),
            },
        })
    }
}

/// The market asset of a candidate's market where its name says it (Maker `ETH-B` -> `ETH`).
trait MarketAsset {
    fn market_asset(&self) -> Id;
}

impl MarketAsset for Candidate {
    fn market_asset(&self) -> Id {
        let name = self.market.to_string();
        let gem = name.split('-').next().unwrap_or(&name);
        gem.parse().unwrap_or(self.market)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run file's scenario holds every key of every scenario fixture with the values the
    /// engine's own serialisation gives (the liquidator's and impact's wad integers as exact
    /// amounts), plus the label, baseline flag and changes.
    #[test]
    fn the_run_model_keeps_every_scenario_fixture_whole() {
        let folder =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios");
        let mut read = Vec::new();
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let Ok(scenario) = Scenario::load(&path) else {
                continue;
            };
            let mut described = serde_json::to_value(describe(&scenario)).unwrap();
            let map = described.as_object_mut().unwrap();
            assert_eq!(map.remove("label"), Some(scenario.label().into()));
            assert_eq!(map.remove("baseline"), Some(scenario.is_baseline().into()));
            assert_eq!(map.remove("changes"), Some(scenario.changes().into()));
            assert_eq!(
                described,
                serde_json::to_value(&scenario).unwrap(),
                "{}",
                path.display()
            );
            read.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        assert!(
            read.iter().any(|name| name == "every-section.toml") && read.len() >= 5,
            "read only {read:?} from {}",
            folder.display()
        );
    }
}
