//! Every position of one moment summarised (`docs/leverage.md`): how leverage, LTV and loop
//! depth are distributed, how concentrated the collateral is, the liquidation ladder (how much
//! collateral becomes liquidatable at each fall of its price, across protocols) and the overlap
//! between protocols (owners and collateral shared, the debt hanging on one asset's price, the
//! loops that cross protocols).
//!
//! Positions come valued in one common unit (USD, 18 decimals); everything here is integer.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;

use cascade_events::{Id, Protocol, U256};

use crate::leverage::loops::{Correlation, Leverage, Position, WAD, owner_leverage};

/// Upper edges of the effective leverage buckets, in hundredths: `[1.25, 1.5, 2, 3, 5, 10]`.
pub const LEVERAGE_EDGES: [u64; 6] = [125, 150, 200, 300, 500, 1000];
/// Names of the leverage buckets; the last holds positions whose debt reaches their collateral.
pub const LEVERAGE_NAMES: [&str; 8] = [
    "<1.25",
    "1.25-1.5",
    "1.5-2",
    "2-3",
    "3-5",
    "5-10",
    ">=10",
    "underwater",
];
/// Upper edges of the LTV buckets, in hundredths.
pub const LTV_EDGES: [u64; 8] = [25, 50, 65, 75, 80, 85, 90, 100];
/// Names of the LTV buckets.
pub const LTV_NAMES: [&str; 9] = [
    "<0.25",
    "0.25-0.5",
    "0.5-0.65",
    "0.65-0.75",
    "0.75-0.8",
    "0.8-0.85",
    "0.85-0.9",
    "0.9-1",
    ">=1",
];
/// Names of the loop depth buckets.
pub const DEPTH_NAMES: [&str; 6] = ["0", "1", "2", "3", "4", ">=5"];
/// The top-N sizes whose share of the collateral is reported.
pub const TOP_N: [usize; 3] = [10, 100, 1000];
/// Width of a rung of the liquidation ladder, basis points of price fall.
pub const RUNG_BPS: u32 = 500;
/// Names of the rungs.
pub use cascade_run::LADDER_FALLS as RUNG_NAMES;

/// The bucket of `value` (wad) among edges in hundredths. An edge in wad fits a `u64` (the
/// largest, 10.0, is 10^19), so no 256-bit product is needed per comparison.
fn bucket(value: U256, edges: &[u64]) -> usize {
    edges.partition_point(|edge| U256::from(*edge * (WAD / 100)) <= value)
}

/// Positions of one scope (a protocol, or all of them by owner) summarised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Positions (owners for all protocols) with collateral or debt.
    pub accounts: u64,
    /// Of them, with debt.
    pub accounts_with_debt: u64,
    /// Accounts with debt per [`LEVERAGE_NAMES`] bucket.
    pub leverage: [u64; 8],
    /// Accounts with debt per [`LTV_NAMES`] bucket.
    pub ltv: [u64; 9],
    /// Accounts with debt and equity per [`DEPTH_NAMES`] bucket.
    pub loop_depth: [u64; 6],
    /// Accounts with a loop (depth at least one, or underwater with looped debt).
    pub looped_accounts: u64,
    /// Collateral value, summed.
    pub collateral: U256,
    /// Debt value, summed.
    pub debt: U256,
    /// Looped debt, summed.
    pub looped_debt: U256,
    /// Share of `collateral` held by the [`TOP_N`] largest accounts, basis points (floored).
    pub top_share_bps: [u32; 3],
}

impl Summary {
    fn add(&mut self, figures: &Leverage, largest: &mut Largest) {
        if figures.exposure.is_zero() && figures.debt.is_zero() {
            return;
        }
        self.accounts += 1;
        self.collateral = self.collateral.saturating_add(figures.exposure);
        self.debt = self.debt.saturating_add(figures.debt);
        self.looped_debt = self.looped_debt.saturating_add(figures.looped_debt);
        largest.push(figures.exposure);
        if figures.debt.is_zero() {
            return;
        }
        self.accounts_with_debt += 1;
        self.leverage[figures
            .leverage
            .map_or(LEVERAGE_NAMES.len() - 1, |l| bucket(l, &LEVERAGE_EDGES))] += 1;
        self.ltv[figures
            .ltv
            .map_or(LTV_NAMES.len() - 1, |l| bucket(l, &LTV_EDGES))] += 1;
        if let Some(depth) = figures.loop_depth {
            self.loop_depth[(depth as usize).min(DEPTH_NAMES.len() - 1)] += 1;
        }
        if !figures.looped_debt.is_zero() {
            self.looped_accounts += 1;
        }
    }

    fn finish_concentration(&mut self, largest: Largest) {
        let largest = largest.descending();
        for (slot, n) in TOP_N.iter().enumerate() {
            let top = largest
                .iter()
                .take(*n)
                .fold(U256::ZERO, |t, v| t.saturating_add(*v));
            self.top_share_bps[slot] = if self.collateral.is_zero() {
                0
            } else {
                u32::try_from(top.saturating_mul(U256::from(10_000u32)) / self.collateral)
                    .unwrap_or(10_000)
            };
        }
    }
}

/// The largest collateral values of a scope, as many as the largest [`TOP_N`] asks: a
/// concentration needs only them, so a million positions are never sorted.
#[derive(Default)]
struct Largest(BinaryHeap<Reverse<U256>>);

impl Largest {
    const KEPT: usize = TOP_N[TOP_N.len() - 1];

    fn push(&mut self, value: U256) {
        if self.0.len() < Self::KEPT {
            self.0.push(Reverse(value));
        } else if self.0.peek().is_some_and(|Reverse(least)| *least < value) {
            self.0.pop();
            self.0.push(Reverse(value));
        }
    }

    /// The values kept, largest first.
    fn descending(self) -> Vec<U256> {
        self.0
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(value)| value)
            .collect()
    }
}

/// One rung of the liquidation ladder of one correlation group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rung {
    /// Positions that become liquidatable in it.
    pub accounts: u64,
    /// Their main collateral's value.
    pub collateral: U256,
    /// Their debt.
    pub debt: U256,
    /// `collateral` per protocol.
    pub by_protocol: BTreeMap<Protocol, U256>,
}

/// What the positions of several protocols share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlap {
    /// Owners (account ids) with positions in more than one protocol, per set of protocols.
    pub owners: BTreeMap<Vec<Protocol>, u64>,
    /// Collateral those owners hold, per protocol and correlation group.
    pub shared_collateral: BTreeMap<(Protocol, String), U256>,
    /// Debt that depends on a group's price, per group and protocol: each position's debt split
    /// over its collateral groups by their share of its collateral value.
    pub debt_on_group: BTreeMap<(String, Protocol), U256>,
    /// Loops across protocols: (borrowed in, collateral in, group) -> value.
    pub cross_loops: BTreeMap<(Protocol, Protocol, String), U256>,
}

/// The whole book at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    /// Per protocol, by position.
    pub protocols: BTreeMap<Protocol, Summary>,
    /// All protocols, by owner (an owner's positions taken together, loops across protocols
    /// included).
    pub all: Summary,
    /// Liquidation ladder per correlation group of the main collateral, rungs as
    /// [`RUNG_NAMES`].
    pub ladder: BTreeMap<String, [Rung; 12]>,
    /// Overlap between protocols.
    pub overlap: Overlap,
}

/// The correlation groups of one summary's assets, numbered as they are first met: a book asks
/// for the same few assets millions of times, so each asset's group is looked up once and the
/// per-position sums are kept by number, without a map or a name per position.
struct Groups<'a> {
    correlation: &'a Correlation,
    /// Asset -> group number.
    assets: Vec<(Id, usize)>,
    /// Group number -> name.
    names: Vec<Rc<str>>,
}

impl<'a> Groups<'a> {
    fn new(correlation: &'a Correlation) -> Self {
        Self {
            correlation,
            assets: Vec::new(),
            names: Vec::new(),
        }
    }

    fn of(&mut self, asset: &Id) -> usize {
        if let Some((_, group)) = self.assets.iter().find(|(known, _)| known == asset) {
            return *group;
        }
        let name = self.correlation.shared_group(asset);
        let group = match self.names.iter().position(|known| *known == name) {
            Some(group) => group,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        };
        self.assets.push((*asset, group));
        group
    }

    fn name(&self, group: usize) -> String {
        self.names[group].to_string()
    }
}

/// One position's value per correlation group: collateral (and whether it holds any of the
/// group, however little it is worth) and debt.
#[derive(Default)]
struct ByGroup(Vec<(usize, U256, bool, U256)>);

impl ByGroup {
    fn fill(&mut self, position: &Position, groups: &mut Groups<'_>) {
        self.0.clear();
        for holding in &position.collateral {
            let entry = self.entry(groups.of(&holding.asset));
            entry.1 = entry.1.saturating_add(holding.value);
            entry.2 = true;
        }
        for holding in &position.debt {
            let entry = self.entry(groups.of(&holding.asset));
            entry.3 = entry.3.saturating_add(holding.value);
        }
    }

    fn entry(&mut self, group: usize) -> &mut (usize, U256, bool, U256) {
        let index = match self.0.iter().position(|entry| entry.0 == group) {
            Some(index) => index,
            None => {
                self.0.push((group, U256::ZERO, false, U256::ZERO));
                self.0.len() - 1
            }
        };
        &mut self.0[index]
    }

    /// The position's figures, as [`crate::leverage::loops::position_loops`] gives them: its loops are each group's
    /// debt against the same group's collateral.
    fn figures(&self, position: &Position) -> Leverage {
        let looped = self.0.iter().fold(U256::ZERO, |total, (_, held, _, owed)| {
            total.saturating_add((*owed).min(*held))
        });
        Leverage::of(position.collateral_value(), position.debt_value(), looped)
    }
}

/// Summarises `positions` (any order; the result does not depend on it).
pub fn summarise(positions: &[Position], correlation: &Correlation) -> Book {
    let mut book = Book::default();
    let mut groups = Groups::new(correlation);
    let mut by_group = ByGroup::default();
    let mut largest: BTreeMap<Protocol, Largest> = BTreeMap::new();
    let mut largest_owners = Largest::default();
    let mut ladder: BTreeMap<usize, [Rung; 12]> = BTreeMap::new();
    let mut debt_on_group: BTreeMap<(usize, Protocol), U256> = BTreeMap::new();
    // Positions by owner: an owner with one position (most of them: every Maker vault is its
    // own) is that position, without working its loops again. Within an owner, in input order.
    let mut by_owner: Vec<(Id, u32)> = positions
        .iter()
        .enumerate()
        .map(|(index, position)| (position.account, index as u32))
        .collect();
    // Each model lists its positions in account order: a stable sort merges those runs.
    by_owner.sort();
    for run in by_owner.chunk_by(|a, b| a.0 == b.0) {
        let mut only = None;
        for (_, index) in run {
            let position = &positions[*index as usize];
            by_group.fill(position, &mut groups);
            let figures = by_group.figures(position);
            book.protocols
                .entry(position.protocol)
                .or_default()
                .add(&figures, largest.entry(position.protocol).or_default());
            add_to_ladder(&mut ladder, position, &mut groups);
            add_debt_on_groups(&mut debt_on_group, position, &figures, &by_group);
            if run.len() == 1 {
                only = Some(figures);
            }
        }
        match only {
            Some(figures) => book.all.add(&figures, &mut largest_owners),
            None => {
                let list: Vec<&Position> = run
                    .iter()
                    .map(|(_, index)| &positions[*index as usize])
                    .collect();
                add_owner(&mut book, &mut largest_owners, run[0].0, &list, correlation);
            }
        }
    }
    for (protocol, list) in largest {
        if let Some(summary) = book.protocols.get_mut(&protocol) {
            summary.finish_concentration(list);
        }
    }
    book.all.finish_concentration(largest_owners);
    book.ladder = ladder
        .into_iter()
        .map(|(group, rungs)| (groups.name(group), rungs))
        .collect();
    book.overlap.debt_on_group = debt_on_group
        .into_iter()
        .map(|((group, protocol), value)| ((groups.name(group), protocol), value))
        .collect();
    book
}

/// Adds an owner of several positions: its leverage over all of them, its loops across
/// protocols and what it shares between them.
fn add_owner(
    book: &mut Book,
    largest: &mut Largest,
    owner: Id,
    list: &[&Position],
    correlation: &Correlation,
) {
    let figures = owner_leverage(owner, list, correlation);
    book.all.add(&figures.leverage, largest);
    for link in &figures.cross {
        let entry = book
            .overlap
            .cross_loops
            .entry((link.borrowed_in, link.collateral_in, link.group.clone()))
            .or_default();
        *entry = entry.saturating_add(link.value);
    }
    if figures.protocols.len() > 1 {
        *book
            .overlap
            .owners
            .entry(figures.protocols.clone())
            .or_default() += 1;
        for position in list {
            for holding in &position.collateral {
                let entry = book
                    .overlap
                    .shared_collateral
                    .entry((position.protocol, correlation.group(&holding.asset)))
                    .or_default();
                *entry = entry.saturating_add(holding.value);
            }
        }
    }
}

fn add_to_ladder(
    ladder: &mut BTreeMap<usize, [Rung; 12]>,
    position: &Position,
    groups: &mut Groups<'_>,
) {
    let Some(distance) = &position.liquidation else {
        return;
    };
    if position.debt_value().is_zero() {
        return;
    }
    let rung = if distance.fall_bps == 0 {
        0
    } else {
        (1 + ((distance.fall_bps - 1) / RUNG_BPS) as usize).min(RUNG_NAMES.len() - 1)
    };
    let collateral = position
        .collateral
        .iter()
        .filter(|h| h.asset == distance.asset)
        .fold(U256::ZERO, |t, h| t.saturating_add(h.value));
    let cell = &mut ladder.entry(groups.of(&distance.asset)).or_default()[rung];
    cell.accounts += 1;
    cell.collateral = cell.collateral.saturating_add(collateral);
    cell.debt = cell.debt.saturating_add(position.debt_value());
    let entry = cell.by_protocol.entry(position.protocol).or_default();
    *entry = entry.saturating_add(collateral);
}

/// Splits the position's debt over its collateral's groups by their share of its collateral.
fn add_debt_on_groups(
    debt_on_group: &mut BTreeMap<(usize, Protocol), U256>,
    position: &Position,
    figures: &Leverage,
    by_group: &ByGroup,
) {
    let (debt, collateral) = (figures.debt, figures.exposure);
    if debt.is_zero() || collateral.is_zero() {
        return;
    }
    for (group, value, _, _) in by_group.0.iter().filter(|entry| entry.2) {
        let share = debt
            .checked_mul(*value)
            .map_or(debt, |product| product / collateral);
        let entry = debt_on_group
            .entry((*group, position.protocol))
            .or_default();
        *entry = entry.saturating_add(share);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leverage::loops::LiquidationDistance;
    use crate::leverage::loops::tests::{position, units};

    fn at_risk(mut position: Position, asset: &str, fall_bps: u32) -> Position {
        position.liquidation = Some(LiquidationDistance {
            asset: Id::name(asset),
            fall_bps,
        });
        position
    }

    /// Four positions, values in whole units:
    /// - Aave v2 #1: WETH 273 / WETH 173 (loop, leverage 2.73, LTV 0.63, depth 2), falls 20%
    ///   to liquidation (rung 15-20%... 2000 bps is the top of 15-20%);
    /// - Aave v2 #2: WETH 200 / DAI 100 (leverage 2, LTV 0.5, depth 0), falls 37% (35-40%);
    /// - Maker #2: WETH 300 / DAI 150 (same owner #2), falls 0 (liquidatable now);
    /// - Compound #2: DAI 150 / nothing (idle collateral, the Maker DAI).
    fn book() -> Book {
        let positions = [
            at_risk(
                position(Protocol::AaveV2, 1, &[("WETH", 273)], &[("WETH", 173)]),
                "WETH",
                2000,
            ),
            at_risk(
                position(Protocol::AaveV2, 2, &[("WETH", 200)], &[("DAI", 100)]),
                "WETH",
                3700,
            ),
            at_risk(
                position(Protocol::Maker, 2, &[("WETH", 300)], &[("DAI", 150)]),
                "WETH",
                0,
            ),
            position(Protocol::CompoundV2, 2, &[("DAI", 150)], &[]),
        ];
        summarise(&positions, &Correlation::default())
    }

    #[test]
    fn per_protocol_distributions_and_concentration() {
        let book = book();
        let aave = &book.protocols[&Protocol::AaveV2];
        assert_eq!((aave.accounts, aave.accounts_with_debt), (2, 2));
        // Leverage 2.73 is in 2-3 (index 3), 2 is in 2-3 too (edges are [low, high)).
        assert_eq!(aave.leverage, [0, 0, 0, 2, 0, 0, 0, 0]);
        // LTV 0.6337 in 0.5-0.65 (index 2), 0.5 in 0.5-0.65 as well.
        assert_eq!(aave.ltv, [0, 0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(aave.loop_depth, [1, 0, 1, 0, 0, 0]);
        assert_eq!(aave.looped_accounts, 1);
        assert_eq!(aave.collateral, units(473));
        // Top 10 hold everything: 10000 bps.
        assert_eq!(aave.top_share_bps, [10_000; 3]);
        let compound = &book.protocols[&Protocol::CompoundV2];
        assert_eq!((compound.accounts, compound.accounts_with_debt), (1, 0));
    }

    #[test]
    fn all_protocols_take_an_owner_across_them() {
        let book = book();
        // Owner #1: Aave only, leverage 2.73. Owner #2: Aave 200/100 + Maker 300/150 +
        // Compound 150/0: exposure 650, debt 250, equity 400, leverage 1.625 (1.5-2).
        // Its Maker DAI debt (150) against Compound DAI collateral (150) is a loop across
        // protocols; Aave's DAI debt finds no USD collateral left: looped 150, depth
        // ceil(150/400) = 1.
        assert_eq!(book.all.accounts, 2);
        assert_eq!(book.all.leverage, [0, 0, 1, 1, 0, 0, 0, 0]);
        assert_eq!(book.all.loop_depth, [0, 1, 1, 0, 0, 0]);
        assert_eq!(
            book.overlap.cross_loops,
            BTreeMap::from([(
                (Protocol::Maker, Protocol::CompoundV2, "USD".to_owned()),
                units(150)
            )])
        );
        // Largest owner holds 650 of 923: 7042 bps; the top 10 all of it.
        assert_eq!(book.all.collateral, units(923));
        assert_eq!(book.all.top_share_bps, [10_000; 3]);
        assert_eq!(
            book.overlap.owners,
            BTreeMap::from([(
                vec![Protocol::Maker, Protocol::AaveV2, Protocol::CompoundV2],
                1
            )])
        );
        assert_eq!(
            book.overlap.shared_collateral[&(Protocol::Maker, "ETH".to_owned())],
            units(300)
        );
        // Debt depending on ETH: Aave 173 + 100, Maker 150 (all their collateral is ETH).
        assert_eq!(
            book.overlap.debt_on_group[&("ETH".to_owned(), Protocol::AaveV2)],
            units(273)
        );
        assert_eq!(
            book.overlap.debt_on_group[&("ETH".to_owned(), Protocol::Maker)],
            units(150)
        );
    }

    #[test]
    fn the_ladder_puts_collateral_at_its_fall() {
        let book = book();
        let eth = &book.ladder["ETH"];
        // Maker's 300 now; Aave #1's 273 at a 20% fall (15-20%); Aave #2's 200 at 37% (35-40%).
        assert_eq!((eth[0].accounts, eth[0].collateral), (1, units(300)));
        assert_eq!(eth[4].collateral, units(273));
        assert_eq!(eth[8].collateral, units(200));
        assert_eq!(eth[8].by_protocol[&Protocol::AaveV2], units(200));
        assert_eq!(eth[8].debt, units(100));
        let total: u64 = eth.iter().map(|r| r.accounts).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn concentration_counts_the_largest_accounts() {
        // Twenty positions of 1..=20 units: total 210; the top 10 (11..=20) hold 155:
        // 155 / 210 = 7380 bps (floored from 7380.95).
        let positions: Vec<Position> = (1..=20)
            .map(|n| position(Protocol::AaveV3, n, &[("WETH", n)], &[]))
            .collect();
        let book = summarise(&positions, &Correlation::default());
        assert_eq!(
            book.protocols[&Protocol::AaveV3].top_share_bps,
            [7380, 10_000, 10_000]
        );
    }
}
