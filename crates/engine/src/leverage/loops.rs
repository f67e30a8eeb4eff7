//! Recursive leverage: loops found in the rebuilt positions, each account's effective leverage
//! and loop depth (`docs/leverage.md` defines every quantity).
//!
//! A **loop** is debt in an asset that is also held, or whose correlated asset is held, as
//! collateral: supplied, borrowed and supplied again. Inside one protocol it is an account
//! supplying and borrowing the same or a correlated asset; across protocols, the same owner
//! borrowing an asset in one protocol and holding it (or a correlated one) as collateral in
//! another. Assets are correlated when [`Correlation`] puts them in one group.
//!
//! Everything is integer: values are in one common unit chosen by the caller (USD with 18
//! decimals in the engine), leverage and LTV are wad fixed point.

use std::collections::BTreeMap;
use std::rc::Rc;

use cascade_events::{Id, Protocol, U256};

/// One wad: 1.0 in the fixed point of leverage and LTV.
pub const WAD: u64 = 1_000_000_000_000_000_000;

/// Groups of assets whose prices move together, so that borrowing one against another is a
/// loop. Matched by the asset's text (a symbol, or an address in lower-case hex), ignoring case.
#[derive(Clone, Debug)]
pub struct Correlation {
    /// Lower-case asset text -> group name.
    group_of: BTreeMap<String, String>,
    /// Groups already looked up by id: a book asks for the same few assets millions of times,
    /// so a lookup hands out a shared name rather than a new string.
    known: std::cell::RefCell<BTreeMap<Id, Rc<str>>>,
}

/// The default groups: ether and its staking and wrapping derivatives, US dollar stablecoins,
/// bitcoin and its wrappings. A scenario's `[leverage.correlation]` replaces them.
pub const DEFAULT_GROUPS: [(&str, &[&str]); 3] = [
    (
        "ETH",
        &["ETH", "WETH", "stETH", "wstETH", "rETH", "cbETH", "sETH"],
    ),
    (
        "USD",
        &[
            "USD", "USDC", "DAI", "USDT", "TUSD", "USDP", "PAX", "BUSD", "LUSD", "FRAX", "sUSD",
            "GUSD",
        ],
    ),
    ("BTC", &["BTC", "WBTC", "renBTC", "sBTC", "tBTC", "HBTC"]),
];

impl Default for Correlation {
    fn default() -> Self {
        Self::new(
            DEFAULT_GROUPS
                .iter()
                .map(|(name, assets)| (name.to_string(), assets.iter().map(|a| a.to_string()))),
        )
    }
}

impl Correlation {
    /// Groups given as (name, assets). An asset listed in two groups stays in the first.
    pub fn new<G, A>(groups: G) -> Self
    where
        G: IntoIterator<Item = (String, A)>,
        A: IntoIterator<Item = String>,
    {
        let mut group_of = BTreeMap::new();
        for (name, assets) in groups {
            for asset in assets {
                group_of
                    .entry(asset.to_ascii_lowercase())
                    .or_insert_with(|| name.clone());
            }
        }
        Self {
            group_of,
            known: std::cell::RefCell::new(BTreeMap::new()),
        }
    }

    /// The table a scenario's `[leverage]` section asks for: its groups, or the default.
    pub fn of(rules: &cascade_run::scenario::LeverageRules) -> Self {
        match &rules.correlation {
            Some(groups) => Self::new(
                groups
                    .iter()
                    .map(|g| (g.name.clone(), g.assets.iter().cloned())),
            ),
            None => Self::default(),
        }
    }

    /// The group `asset` belongs to: its group's name, or the asset's own text when no group
    /// lists it (an asset is always correlated with itself).
    pub fn group(&self, asset: &Id) -> String {
        self.shared_group(asset).to_string()
    }

    /// [`Correlation::group`] as a shared name.
    pub(crate) fn shared_group(&self, asset: &Id) -> Rc<str> {
        if let Some(group) = self.known.borrow().get(asset) {
            return Rc::clone(group);
        }
        let text = asset.to_string();
        let group: Rc<str> = self
            .group_of
            .get(&text.to_ascii_lowercase())
            .cloned()
            .unwrap_or(text)
            .into();
        self.known.borrow_mut().insert(*asset, Rc::clone(&group));
        group
    }
}

/// One asset held or owed, with its value in the common unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The asset.
    pub asset: Id,
    /// Value at the price the protocol's oracle reads, common unit.
    pub value: U256,
}

/// One account's position in one market, valued in the common unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account as the protocol names it (an address; a Maker vault number).
    pub account: Id,
    /// Collateral per asset.
    pub collateral: Vec<Holding>,
    /// Debt per asset.
    pub debt: Vec<Holding>,
    /// Health factor as the protocol computes it, wad; `None` without debt or when unknown.
    pub health: Option<U256>,
    /// How far the main collateral's price may fall before the health factor reaches one.
    pub liquidation: Option<LiquidationDistance>,
}

/// The fall of one collateral's price, others held, that makes a position liquidatable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiquidationDistance {
    /// The collateral (the position's largest counted one).
    pub asset: Id,
    /// The fall from the current oracle price, basis points (0: liquidatable already).
    pub fall_bps: u32,
}

impl Position {
    /// Collateral value, summed.
    pub fn collateral_value(&self) -> U256 {
        sum(&self.collateral)
    }

    /// Debt value, summed.
    pub fn debt_value(&self) -> U256 {
        sum(&self.debt)
    }
}

fn sum(holdings: &[Holding]) -> U256 {
    holdings
        .iter()
        .fold(U256::ZERO, |total, h| total.saturating_add(h.value))
}

/// Exposure, equity and what follows from them, for one position or one owner's positions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leverage {
    /// Total exposure: collateral value.
    pub exposure: U256,
    /// Debt value.
    pub debt: U256,
    /// Net equity, exposure - debt; `None` when the debt is at least the exposure (underwater).
    pub equity: Option<U256>,
    /// Effective leverage, exposure / equity, wad (1.0: no debt); `None` when underwater.
    pub leverage: Option<U256>,
    /// Loan to value, debt / exposure, wad; `None` without exposure.
    pub ltv: Option<U256>,
    /// Debt that finances correlated collateral: the looped part of the debt.
    pub looped_debt: U256,
    /// Fewest supply-borrow rounds that could build `looped_debt` from `equity` (a round
    /// borrows less than the equity it re-supplies): `ceil(looped_debt / equity)`; 0 without a
    /// loop; `None` when underwater.
    pub loop_depth: Option<u32>,
}

impl Leverage {
    /// The figures for `exposure`, `debt` and `looped_debt`.
    pub fn of(exposure: U256, debt: U256, looped_debt: U256) -> Self {
        let equity = exposure.checked_sub(debt).filter(|e| !e.is_zero());
        let wad = U256::from(WAD);
        let ratio = |numerator: U256, denominator: U256| {
            numerator
                .checked_mul(wad)
                .map(|n| n / denominator)
                .unwrap_or(U256::MAX)
        };
        Self {
            exposure,
            debt,
            equity,
            leverage: equity.map(|e| ratio(exposure, e)),
            ltv: (!exposure.is_zero()).then(|| ratio(debt, exposure)),
            looped_debt,
            loop_depth: equity.map(|e| {
                let rounds = looped_debt.div_ceil(e);
                u32::try_from(rounds).unwrap_or(u32::MAX)
            }),
        }
    }
}

/// Value per correlation group.
fn by_group(holdings: &[Holding], correlation: &Correlation) -> BTreeMap<Rc<str>, U256> {
    let mut out: BTreeMap<Rc<str>, U256> = BTreeMap::new();
    for holding in holdings {
        let entry = out
            .entry(correlation.shared_group(&holding.asset))
            .or_default();
        *entry = entry.saturating_add(holding.value);
    }
    out
}

/// A loop inside one position: debt in `group` against collateral in `group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    /// The correlation group (or the one asset).
    pub group: String,
    /// The looped value: the smaller of the group's debt and collateral.
    pub value: U256,
}

/// One position's loops and leverage.
pub fn position_loops(position: &Position, correlation: &Correlation) -> (Vec<Loop>, Leverage) {
    let collateral = by_group(&position.collateral, correlation);
    let debt = by_group(&position.debt, correlation);
    let loops: Vec<Loop> = debt
        .iter()
        .filter_map(|(group, owed)| {
            let held = collateral.get(group)?;
            let value = (*owed).min(*held);
            (!value.is_zero()).then(|| Loop {
                group: group.to_string(),
                value,
            })
        })
        .collect();
    let looped = loops
        .iter()
        .fold(U256::ZERO, |total, l| total.saturating_add(l.value));
    (
        loops,
        Leverage::of(position.collateral_value(), position.debt_value(), looped),
    )
}

/// An asset borrowed in one protocol and held as collateral in another by the same owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossLink {
    /// Where it is borrowed.
    pub borrowed_in: Protocol,
    /// Where it (or a correlated asset) is collateral.
    pub collateral_in: Protocol,
    /// The correlation group.
    pub group: String,
    /// The value linked: debt not already looped inside `borrowed_in`, against collateral not
    /// already looped or linked.
    pub value: U256,
}

/// One owner's positions across protocols, taken together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerLeverage {
    /// The owner.
    pub owner: Id,
    /// Protocols it has positions in, in canonical order, without repeats.
    pub protocols: Vec<Protocol>,
    /// Loops inside single positions.
    pub loops: Vec<(Protocol, Loop)>,
    /// Loops across protocols.
    pub cross: Vec<CrossLink>,
    /// Leverage over all its positions; `looped_debt` counts loops and links.
    pub leverage: Leverage,
}

/// The loops and leverage of `owner`'s `positions` (in any order). Each unit of debt is
/// counted once: first against correlated collateral of its own position, then against what is
/// left of correlated collateral in other protocols, protocols in canonical order.
pub fn owner_leverage(
    owner: Id,
    positions: &[&Position],
    correlation: &Correlation,
) -> OwnerLeverage {
    let mut ordered: Vec<&Position> = positions.to_vec();
    ordered.sort_by_key(|p| (p.protocol, p.market, p.account));
    let mut loops = Vec::new();
    // Per protocol and group: collateral and debt left after the loops inside positions.
    let mut free_collateral: BTreeMap<(Protocol, Rc<str>), U256> = BTreeMap::new();
    let mut free_debt: BTreeMap<(Protocol, Rc<str>), U256> = BTreeMap::new();
    let (mut exposure, mut debt, mut looped) = (U256::ZERO, U256::ZERO, U256::ZERO);
    for position in &ordered {
        let (inside, figures) = position_loops(position, correlation);
        exposure = exposure.saturating_add(figures.exposure);
        debt = debt.saturating_add(figures.debt);
        looped = looped.saturating_add(figures.looped_debt);
        let taken: BTreeMap<&str, U256> =
            inside.iter().map(|l| (l.group.as_str(), l.value)).collect();
        for (group, value) in by_group(&position.collateral, correlation) {
            let left = value - taken.get(&*group).copied().unwrap_or_default();
            let entry = free_collateral
                .entry((position.protocol, group))
                .or_default();
            *entry = entry.saturating_add(left);
        }
        for (group, value) in by_group(&position.debt, correlation) {
            let left = value - taken.get(&*group).copied().unwrap_or_default();
            let entry = free_debt.entry((position.protocol, group)).or_default();
            *entry = entry.saturating_add(left);
        }
        loops.extend(inside.into_iter().map(|l| (position.protocol, l)));
    }
    let mut cross = Vec::new();
    for ((borrowed_in, group), owed) in &free_debt {
        let mut owed = *owed;
        for ((collateral_in, held_group), held) in free_collateral.iter_mut() {
            if owed.is_zero() {
                break;
            }
            if collateral_in == borrowed_in || held_group != group || held.is_zero() {
                continue;
            }
            let value = owed.min(*held);
            owed -= value;
            *held -= value;
            looped = looped.saturating_add(value);
            cross.push(CrossLink {
                borrowed_in: *borrowed_in,
                collateral_in: *collateral_in,
                group: group.to_string(),
                value,
            });
        }
    }
    let mut protocols: Vec<Protocol> = ordered.iter().map(|p| p.protocol).collect();
    protocols.dedup();
    OwnerLeverage {
        owner,
        protocols,
        loops,
        cross,
        leverage: Leverage::of(exposure, debt, looped),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Whole units of the common value unit (18 decimals).
    pub(crate) fn units(n: u64) -> U256 {
        U256::from(n) * U256::from(WAD)
    }

    fn holding(asset: &str, value: u64) -> Holding {
        Holding {
            asset: Id::name(asset),
            value: units(value),
        }
    }

    pub(crate) fn position(
        protocol: Protocol,
        account: u64,
        collateral: &[(&str, u64)],
        debt: &[(&str, u64)],
    ) -> Position {
        Position {
            protocol,
            market: Id::name("POOL"),
            account: Id::Number(account),
            collateral: collateral.iter().map(|(a, v)| holding(a, *v)).collect(),
            debt: debt.iter().map(|(a, v)| holding(a, *v)).collect(),
            health: None,
            liquidation: None,
        }
    }

    #[test]
    fn a_three_round_weth_loop() {
        // 100 of equity in WETH, looped three times at 75% LTV:
        // borrow 75, supply; borrow 56.25, supply; borrow 42.1875, supply.
        // Collateral 100 + 75 + 56.25 + 42.1875 = 273.4375, debt 173.4375, all WETH.
        // Rounded to whole units for the test: collateral 273, debt 173, equity 100.
        // Leverage 273 / 100 = 2.73; LTV 173 / 273 = 0.633699633699633699 (wad, floored);
        // looped debt 173 (all of it); depth ceil(173 / 100) = 2: the least any LTV needs, as
        // no round can borrow 100 or more from 100 of equity.
        let account = position(Protocol::AaveV2, 1, &[("WETH", 273)], &[("WETH", 173)]);
        let (loops, figures) = position_loops(&account, &Correlation::default());
        assert_eq!(
            loops,
            [Loop {
                group: "ETH".to_owned(),
                value: units(173)
            }]
        );
        assert_eq!(figures.equity, Some(units(100)));
        assert_eq!(
            figures.leverage,
            Some(U256::from(2_730_000_000_000_000_000u64))
        );
        assert_eq!(figures.ltv, Some(U256::from(633_699_633_699_633_699u64)));
        assert_eq!(figures.loop_depth, Some(2));
    }

    #[test]
    fn correlated_assets_loop_and_uncorrelated_ones_do_not() {
        // stETH collateral 500 against WETH debt 300 (one group, ETH): looped 300.
        // USDC collateral 1000 against DAI 200 + USDT 50 debt (group USD): looped 250.
        // WBTC collateral 100 is not looped (no BTC debt).
        // Totals: collateral 1600, debt 550, looped 550, equity 1050:
        // leverage 1600/1050 = 1.523809523809523809, depth ceil(550/1050) = 1.
        let account = position(
            Protocol::AaveV3,
            2,
            &[("stETH", 500), ("USDC", 1000), ("WBTC", 100)],
            &[("WETH", 300), ("DAI", 200), ("USDT", 50)],
        );
        let (loops, figures) = position_loops(&account, &Correlation::default());
        assert_eq!(
            loops,
            [
                Loop {
                    group: "ETH".to_owned(),
                    value: units(300)
                },
                Loop {
                    group: "USD".to_owned(),
                    value: units(250)
                },
            ]
        );
        assert_eq!(figures.looped_debt, units(550));
        assert_eq!(
            figures.leverage,
            Some(U256::from(1_523_809_523_809_523_809u64))
        );
        assert_eq!(figures.loop_depth, Some(1));
        // Without correlation groups only the same asset loops: none here.
        let strict = Correlation::new(Vec::<(String, Vec<String>)>::new());
        let (loops, figures) = position_loops(&account, &strict);
        assert!(loops.is_empty());
        assert_eq!(figures.loop_depth, Some(0));
    }

    #[test]
    fn an_ordinary_borrow_has_no_loop_and_an_underwater_one_no_leverage() {
        // WETH 200 against DAI 100: leverage 200/100 = 2, no loop, depth 0.
        let plain = position(Protocol::AaveV2, 3, &[("WETH", 200)], &[("DAI", 100)]);
        let (loops, figures) = position_loops(&plain, &Correlation::default());
        assert!(loops.is_empty());
        assert_eq!(figures.leverage, Some(units(2)));
        assert_eq!(figures.loop_depth, Some(0));
        // Debt 210 against collateral 200: no equity, no leverage, no depth; LTV 1.05.
        let under = position(Protocol::AaveV2, 4, &[("WETH", 200)], &[("DAI", 210)]);
        let (_, figures) = position_loops(&under, &Correlation::default());
        assert_eq!((figures.equity, figures.leverage), (None, None));
        assert_eq!(figures.loop_depth, None);
        assert_eq!(figures.ltv, Some(U256::from(1_050_000_000_000_000_000u64)));
        // No debt at all: leverage exactly 1.
        let idle = position(Protocol::AaveV2, 5, &[("WETH", 10)], &[]);
        assert_eq!(
            position_loops(&idle, &Correlation::default()).1.leverage,
            Some(units(1))
        );
    }

    #[test]
    fn a_loop_across_maker_compound_and_aave() {
        // One owner:
        // - Maker: WETH 300 collateral, DAI 150 debt (no loop inside: ETH vs USD).
        // - Compound: DAI 150 collateral (the Maker DAI), WETH 90 debt: no loop inside.
        // - Aave v2: WETH 90 collateral (the Compound WETH), USDC 40 debt.
        // Cross links, protocols in canonical order (Maker, Aave v2, Aave v3, Compound):
        // - Maker's USD debt 150 -> Compound's USD collateral 150: link 150.
        // - Aave v2's USD debt 40 -> Compound's USD collateral, all taken: none left.
        // - Compound's ETH debt 90 -> Maker's ETH collateral first (canonical order): 90.
        // Exposure 300 + 150 + 90 = 540, debt 150 + 90 + 40 = 280, equity 260,
        // looped 150 + 90 = 240, leverage 540/260 = 2.076923076923076923, depth ceil(240/260) = 1.
        let owner = Id::Number(7);
        let maker = position(Protocol::Maker, 7, &[("WETH", 300)], &[("DAI", 150)]);
        let compound = position(Protocol::CompoundV2, 7, &[("DAI", 150)], &[("WETH", 90)]);
        let aave = position(Protocol::AaveV2, 7, &[("WETH", 90)], &[("USDC", 40)]);
        let result = owner_leverage(owner, &[&compound, &aave, &maker], &Correlation::default());
        assert_eq!(
            result.protocols,
            [Protocol::Maker, Protocol::AaveV2, Protocol::CompoundV2]
        );
        assert!(result.loops.is_empty());
        assert_eq!(
            result.cross,
            [
                CrossLink {
                    borrowed_in: Protocol::Maker,
                    collateral_in: Protocol::CompoundV2,
                    group: "USD".to_owned(),
                    value: units(150)
                },
                CrossLink {
                    borrowed_in: Protocol::CompoundV2,
                    collateral_in: Protocol::Maker,
                    group: "ETH".to_owned(),
                    value: units(90)
                },
            ]
        );
        assert_eq!(result.leverage.equity, Some(units(260)));
        assert_eq!(result.leverage.looped_debt, units(240));
        assert_eq!(
            result.leverage.leverage,
            Some(U256::from(2_076_923_076_923_076_923u64))
        );
        assert_eq!(result.leverage.loop_depth, Some(1));
    }

    #[test]
    fn configured_groups_replace_the_default() {
        let table = Correlation::new([("ETH".to_owned(), vec!["weth".to_owned()])]);
        assert_eq!(table.group(&Id::name("WETH")), "ETH");
        // Not listed any more: its own group.
        assert_eq!(table.group(&Id::name("stETH")), "stETH");
        assert_eq!(Correlation::default().group(&Id::name("STETH")), "ETH");
    }
}
