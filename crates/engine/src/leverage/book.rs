//! Every position of one moment summarised (`docs/leverage.md`): how leverage, LTV and loop
//! depth are distributed, how concentrated the collateral is, the liquidation ladder (how much
//! collateral becomes liquidatable at each fall of its price, across protocols) and the overlap
//! between protocols (owners and collateral shared, the debt hanging on one asset's price, the
//! loops that cross protocols).
//!
//! Positions come valued in one common unit (USD, 18 decimals); everything here is integer.

use std::collections::BTreeMap;

use cascade_events::{Id, Protocol, U256};

use crate::leverage::loops::{
    Correlation, Leverage, Position, WAD, owner_leverage, position_loops,
};

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
    fn add(&mut self, figures: &crate::leverage::loops::Leverage, collaterals: &mut Vec<U256>) {
        if figures.exposure.is_zero() && figures.debt.is_zero() {
            return;
        }
        self.accounts += 1;
        self.collateral = self.collateral.saturating_add(figures.exposure);
        self.debt = self.debt.saturating_add(figures.debt);
        self.looped_debt = self.looped_debt.saturating_add(figures.looped_debt);
        collaterals.push(figures.exposure);
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

    fn finish_concentration(&mut self, mut collaterals: Vec<U256>) {
        collaterals.sort_unstable_by(|a, b| b.cmp(a));
        for (slot, n) in TOP_N.iter().enumerate() {
            let top = collaterals
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

/// Summarises `positions` (any order; the result does not depend on it).
pub fn summarise(positions: &[Position], correlation: &Correlation) -> Book {
    let mut book = Book::default();
    let mut collaterals: BTreeMap<Protocol, Vec<U256>> = BTreeMap::new();
    // Each owner's positions, with the figures of the first: an owner with one position (most of
    // them: every Maker vault is its own) is that position, without working its loops again.
    let mut owners: BTreeMap<Id, (Vec<&Position>, Leverage)> = BTreeMap::new();
    for position in positions {
        let (_, figures) = position_loops(position, correlation);
        book.protocols
            .entry(position.protocol)
            .or_default()
            .add(&figures, collaterals.entry(position.protocol).or_default());
        owners
            .entry(position.account)
            .or_insert_with(|| (Vec::new(), figures))
            .0
            .push(position);
        add_to_ladder(&mut book.ladder, position, correlation);
        add_debt_on_groups(&mut book.overlap, position, correlation);
    }
    for (protocol, list) in collaterals {
        if let Some(summary) = book.protocols.get_mut(&protocol) {
            summary.finish_concentration(list);
        }
    }
    let mut all = Vec::new();
    for (owner, (list, first)) in owners {
        if list.len() == 1 {
            book.all.add(&first, &mut all);
            continue;
        }
        let figures = owner_leverage(owner, &list, correlation);
        book.all.add(&figures.leverage, &mut all);
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
            for position in &list {
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
    book.all.finish_concentration(all);
    book
}

fn add_to_ladder(
    ladder: &mut BTreeMap<String, [Rung; 12]>,
    position: &Position,
    correlation: &Correlation,
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
    let cell = &mut ladder
        .entry(correlation.group(&distance.asset))
        .or_default()[rung];
    cell.accounts += 1;
    cell.collateral = cell.collateral.saturating_add(collateral);
    cell.debt = cell.debt.saturating_add(position.debt_value());
    let entry = cell.by_protocol.entry(position.protocol).or_default();
    *entry = entry.saturating_add(collateral);
}

fn add_debt_on_groups(overlap: &mut Overlap, position: &Position, correlation: &Correlation) {
    let debt = position.debt_value();
    let collateral = position.collateral_value();
    if debt.is_zero() || collateral.is_zero() {
        return;
    }
    let mut groups: BTreeMap<String, U256> = BTreeMap::new();
    for holding in &position.collateral {
        let entry = groups.entry(correlation.group(&holding.asset)).or_default();
        *entry = entry.saturating_add(holding.value);
    }
    for (group, value) in groups {
        let share = debt
            .checked_mul(value)
            .map_or(debt, |product| product / collateral);
        let entry = overlap
            .debt_on_group
            .entry((group, position.protocol))
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
