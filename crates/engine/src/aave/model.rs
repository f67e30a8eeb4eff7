//! The Aave v2/v3 pool model: reserves, accounts and the oracle view the rules read, behind the
//! engine's [`ProtocolModel`] interface.
//!
//! State mirrors what the contracts store: per reserve its configuration (decimals, LTV,
//! liquidation threshold, bonus, protocol fee) and its liquidity and variable-borrow indices; per
//! account and reserve the *scaled* aToken and debt-token balances (amounts `rayDiv` index, as
//! `AToken.mint`/`burn` and `VariableDebtToken.mint`/`burn` store them) and the
//! use-as-collateral flag. Balances are read back with `rayMul` at the latest recorded index,
//! exactly as `balanceOf` does.
//!
//! What the model knows only from events (documented in `docs/engine.md`):
//! - Indices move only with [`IndexUpdate`] events; between them no interest accrues (the model
//!   has no rate strategy). Stable-rate debt is tracked like variable debt.
//! - Prices are the latest market price of each reserve in the pool's base currency (v2: ETH, 18
//!   decimals, with WETH fixed at 1 ETH as the v2 oracle does; v3: USD, 8 decimals).
//! - No e-mode, isolation mode, supply/borrow caps or price-oracle sentinel: liquidations of
//!   e-mode accounts would use the category's bonus and threshold, which no source here records.
//!
//! Finding liquidatable accounts never scans every account. An account with one collateral and
//! one debt reserve (the common shape) is indexed per (collateral, debt) pair by
//! `scaledDebt * 1e36 / scaledCollateral`, which no price or index moves; for current prices and
//! indices the level above which the pair's accounts may be liquidatable is
//! `1e36 * price(c) * liquidityIndex(c) * threshold(c) * unit(d) / (price(d) * borrowIndex(d) *
//! 10000 * unit(c))`, lowered by 1% to absorb the contracts' per-step rounding, and every account
//! at or above it is confirmed with the exact health factor. Accounts with several reserves on
//! either side are few; they are confirmed exactly on every query.
//!
//! The replay's checks do not list that set: a [`Monitor`] keeps it with each account's share of
//! the risk sums, re-testing at a check only the accounts acted on since the last one and, for
//! the assets whose view moved, the pair members from the lower of the old and new level up and the
//! accounts with several reserves, so a check after one liquidation costs one account.

mod accounts;

use std::collections::BTreeMap;

use alloy_primitives::U512;
use alloy_primitives::ruint::UintTryFrom;
use cascade_events::{
    CollateralToggle, Event, Fixed, Id, IndexUpdate, Liquidation, Payload, PositionChange,
    PriceUpdate, Protocol, Timestamp, U256,
};

use super::logic::{
    self, AaveVersion, AccountData, DEFAULT_LIQUIDATION_CLOSE_FACTOR,
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD, LiquidationContext, LiquidationQuote, LiquidationRefusal,
    ReserveExposure, ReserveSide,
};
use super::math::{RAY, ray_div, ray_mul, unit};
use crate::EngineError;
use crate::aave::spec::AaveParam;
use crate::lending::warm_accounts;
use crate::lending::{
    Divisor, Exposure, FoundSet, Held, IndexEntry, Monitor, PairIndex, Placed, Retest, Retested,
    compress_key,
};
use crate::oracle::PriceBook;
use crate::protocol::param::{ParamSetting, ProtocolParam};
use crate::protocol::{
    Applied, Candidate, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel, Quantity,
    SimulatedLiquidation, Verdict,
};
use crate::run::{MismatchEvidence, OracleEvidence};
use crate::slots::{Slot, Slots, SmallMap};
use crate::state::{StateReader, StateWriter};

/// Scale of the pair index key `scaledDebt * KEY_SCALE / scaledCollateral`: fine enough for a
/// 6-decimal debt against an 18-decimal collateral.
const KEY_SCALE: U256 = U256::from_limbs([
    1_000_000_000_000_000_000_000_000_000_000_000_000u128 as u64,
    (1_000_000_000_000_000_000_000_000_000_000_000_000u128 >> 64) as u64,
    0,
    0,
]);

/// The WETH token address on Ethereum mainnet.
const WETH_ADDRESS: &str = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

/// One reserve's configuration and indices.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reserve {
    /// Token decimals; unknown until a `decimals` parameter arrives.
    decimals: Option<u8>,
    /// Loan to value, basis points.
    ltv: u16,
    /// Liquidation threshold, basis points.
    liquidation_threshold: u16,
    /// Liquidation bonus, basis points (10500 = 5%).
    liquidation_bonus: u16,
    /// v3 liquidation protocol fee, basis points of the bonus.
    liquidation_protocol_fee: u16,
    /// Liquidity index, ray.
    liquidity_index: U256,
    /// Variable borrow index, ray.
    borrow_index: U256,
}

impl Default for Reserve {
    fn default() -> Self {
        Self {
            decimals: None,
            ltv: 0,
            liquidation_threshold: 0,
            liquidation_bonus: 0,
            liquidation_protocol_fee: 0,
            liquidity_index: RAY,
            borrow_index: RAY,
        }
    }
}

/// An account's holdings in one reserve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Position {
    /// aToken scaled balance.
    scaled_collateral: U256,
    /// Variable debt token scaled balance.
    scaled_debt: U256,
    /// `UserConfiguration.isUsingAsCollateral`.
    collateral_enabled: bool,
}

/// Where an account sits in its pool's liquidation index.
type Entry = IndexEntry<Member>;

/// An account as its pair index holds it: the two scaled balances its health factor needs, so
/// walking the index never looks the account up. Balances are `u128` (an account with a larger
/// one is indexed as complex): a smaller entry is a faster walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    scaled_collateral: u128,
    scaled_debt: u128,
}

#[derive(Clone, Debug, Default)]
struct Account {
    positions: SmallMap<Position>,
}

/// One `LendingPool`/`Pool` (Aave v2 has a main and an AMM market, for instance).
#[derive(Clone, Debug, Default)]
struct Pool {
    /// Looked up by hash, never iterated in slot order where the order can reach an output
    /// (see [`crate::slots`]).
    accounts: Slots<Account>,
    /// Keys are [`compress_key`] of `scaledDebt * 1e36 / scaledCollateral`.
    index: PairIndex<Member>,
}

/// What `liquidatable` and `risk` report of an account found liquidatable.
#[derive(Clone, Copy, Debug)]
struct Found {
    health: U256,
    collateral_base: U256,
    debt_base: U256,
}

impl Exposure for Found {
    fn collateral(&self) -> U256 {
        self.collateral_base
    }

    fn debt(&self) -> U256 {
        self.debt_base
    }
}

/// What the health factor reads of one reserve besides balances: the recorded price (the v2
/// WETH price that stands in for a missing one is a constant), decimals, liquidation threshold,
/// liquidity and borrow indices. A change re-tests the accounts holding it.
type AssetView = (Option<U256>, Option<u8>, u16, U256, U256);

impl From<AccountData> for Found {
    fn from(data: AccountData) -> Self {
        Self {
            health: data.health_factor,
            collateral_base: data.total_collateral_base,
            debt_base: data.total_debt_base,
        }
    }
}

/// What the health factor of a pair member reads from one side of the pair: the liquidity index
/// on the collateral side, the borrow index on the debt side.
#[derive(Clone, Copy)]
struct Side {
    price: U256,
    /// `10^decimals`.
    unit: U256,
    /// The same, ready to divide by.
    per_unit: Divisor,
    threshold: u16,
    index: U256,
}

/// The per-pair constants of [`AaveModel::find`], read once per pair and query.
struct PairView {
    c: Side,
    d: Side,
}

impl PairView {
    /// `calculateUserAccountData` of an account holding only this pair (its collateral
    /// enabled): the same result as [`AaveModel::account_data`] from the two scaled balances,
    /// with the per-reserve loop unrolled. With one collateral the contract's average threshold
    /// `value * threshold / value` is the threshold itself (zero without collateral value), so it
    /// is not divided out; every product the contract checks is still checked. When the pair is
    /// one reserve (collateral and debt in the same asset) the two sides share price and unit,
    /// so the sums are the contract's single-reserve sums.
    fn account_data(
        &self,
        scaled_collateral: U256,
        scaled_debt: U256,
    ) -> Result<AccountData, EngineError> {
        let overflow = || EngineError::Overflow {
            quantity: "Aave account data",
        };
        let collateral = ray_mul(scaled_collateral, self.c.index).ok_or_else(overflow)?;
        let debt = ray_mul(scaled_debt, self.d.index).ok_or_else(overflow)?;
        let mut total_collateral = U256::ZERO;
        let mut threshold = U256::ZERO;
        if self.c.threshold != 0 && !collateral.is_zero() {
            total_collateral = self
                .c
                .per_unit
                .div(self.c.price.checked_mul(collateral).ok_or_else(overflow)?);
            let weight = U256::from(self.c.threshold);
            total_collateral.checked_mul(weight).ok_or_else(overflow)?;
            if !total_collateral.is_zero() {
                threshold = weight;
            }
        }
        let total_debt = if debt.is_zero() {
            U256::ZERO
        } else {
            self.d
                .per_unit
                .div(self.d.price.checked_mul(debt).ok_or_else(overflow)?)
        };
        Ok(AccountData {
            total_collateral_base: total_collateral,
            total_debt_base: total_debt,
            avg_liquidation_threshold: threshold,
            health_factor: logic::health_factor(total_collateral, total_debt, threshold)
                .ok_or_else(overflow)?,
        })
    }

    /// The pair index level at these prices and indices, lowered by the rounding margin: exact
    /// `1e36 * price(c) * liquidityIndex(c) * threshold(c) * unit(d) / (price(d) *
    /// borrowIndex(d) * 10000 * unit(c))` through a 512-bit quotient, then minus 1%. Zero (walk
    /// everything) when a factor is zero or a product does not fit 256 bits.
    fn level(&self) -> U256 {
        let compute = || -> Option<U256> {
            let numerator = self
                .c
                .price
                .checked_mul(self.c.index)?
                .checked_mul(U256::from(self.c.threshold))?
                .checked_mul(self.d.unit)?;
            let denominator = self
                .d
                .price
                .checked_mul(self.d.index)?
                .checked_mul(U256::from(10_000u16))?
                .checked_mul(self.c.unit)?;
            if denominator.is_zero() {
                return None;
            }
            let level = U512::from(numerator) * U512::from(KEY_SCALE) / U512::from(denominator);
            let level = U256::uint_try_from(level).unwrap_or(U256::MAX);
            Some(level - level / U256::from(100u8))
        };
        compute().unwrap_or(U256::ZERO)
    }
}

/// Aave v2 or v3 over every pool of that version in the log.
#[derive(Clone, Debug)]
pub struct AaveModel {
    protocol: Protocol,
    version: AaveVersion,
    base: Id,
    base_decimals: u8,
    close_factor: U256,
    reserves: BTreeMap<Id, Reserve>,
    prices: BTreeMap<Id, U256>,
    /// Per asset, the feed and time of the answer `prices` holds (for a verdict's evidence).
    price_sources: BTreeMap<Id, (Id, Timestamp)>,
    pools: BTreeMap<Id, Pool>,
    /// The last liquidatable set (not state: never encoded; rebuilt after any change).
    found: FoundSet<Found>,
    /// Scratch space of [`AaveModel::find`] (not state).
    walked: Vec<Held<Member>>,
    /// The liquidatable set kept incrementally for `unsafe_changes` and `risk` (not state:
    /// derived from it, rebuilt after a decode).
    monitor: Monitor<Found, AssetView>,
}

impl AaveModel {
    /// Aave v2: ETH-denominated oracle (18 decimals), 50% close factor.
    pub fn v2() -> Self {
        Self::new(Protocol::AaveV2, AaveVersion::V2, Id::name("ETH"), 18)
    }

    /// Aave v3 with the rules of `version` (`V3` for v3.0-3.2, `V3_3` from v3.3) until a
    /// `poolVersion` parameter change says otherwise; USD oracle with 8 decimals.
    pub fn v3(version: AaveVersion) -> Self {
        Self::new(Protocol::AaveV3, version, Id::name("USD"), 8)
    }

    fn new(protocol: Protocol, version: AaveVersion, base: Id, base_decimals: u8) -> Self {
        Self {
            protocol,
            version,
            base,
            base_decimals,
            close_factor: DEFAULT_LIQUIDATION_CLOSE_FACTOR,
            reserves: BTreeMap::new(),
            prices: BTreeMap::new(),
            price_sources: BTreeMap::new(),
            pools: BTreeMap::new(),
            found: FoundSet::default(),
            walked: Vec::new(),
            monitor: Monitor::default(),
        }
    }

    /// The rules in force.
    pub fn version(&self) -> AaveVersion {
        self.version
    }

    fn rule(&self) -> &'static str {
        match self.version {
            AaveVersion::V2 => "aave-v2-liquidation-call",
            AaveVersion::V3 => "aave-v3-liquidation-call",
            AaveVersion::V3_3 => "aave-v3.3-liquidation-call",
        }
    }

    fn formula_rule(&self) -> &'static str {
        match self.version {
            AaveVersion::V2 => "aave-v2-seize-formula",
            AaveVersion::V3 => "aave-v3-seize-formula",
            AaveVersion::V3_3 => "aave-v3.3-seize-formula",
        }
    }

    /// The oracle price of `asset` in the base currency: the latest market price, or 1 ETH for
    /// WETH in v2 (the v2 oracle returns a constant for WETH and no feed publishes it).
    fn price(&self, asset: &Id) -> Option<U256> {
        if let Some(price) = self.prices.get(asset) {
            return Some(*price);
        }
        let is_weth = match asset {
            Id::Name(name) => matches!(name.as_str(), "WETH" | "ETH" | "AmmWETH"),
            Id::Address(address) => format!("{address:#x}") == WETH_ADDRESS,
            Id::Number(_) => false,
        };
        (self.protocol == Protocol::AaveV2 && is_weth)
            .then(|| U256::from(10u8).pow(U256::from(18u8)))
    }

    /// The exposure of one position as `calculateUserAccountData` reads it: `Some(None)` when
    /// it holds nothing, `None` when the reserve's price or decimals are unknown.
    fn exposure(&self, asset: &Id, position: &Position) -> Option<Option<ReserveExposure>> {
        let reserve = self.reserves.get(asset)?;
        let collateral = if position.collateral_enabled {
            ray_mul(position.scaled_collateral, reserve.liquidity_index)?
        } else {
            U256::ZERO
        };
        let debt = ray_mul(position.scaled_debt, reserve.borrow_index)?;
        if collateral.is_zero() && debt.is_zero() {
            return Some(None);
        }
        Some(Some(ReserveExposure {
            price: self.price(asset)?,
            decimals: reserve.decimals?,
            liquidation_threshold: reserve.liquidation_threshold,
            collateral,
            debt,
        }))
    }

    /// `calculateUserAccountData` for `account`; `Ok(None)` when a price or decimals are
    /// missing.
    fn account_data(&self, account: &Account) -> Result<Option<AccountData>, EngineError> {
        // The exposures stream into the sums instead of being collected first (an allocation
        // per account re-tested); the sums are discarded when one is missing.
        let mut complete = true;
        let exposures = account.positions.iter().map_while(|(asset, position)| {
            let exposure = self.exposure(asset, position);
            complete &= exposure.is_some();
            exposure
        });
        let data = logic::account_data(exposures.flatten());
        match data {
            _ if !complete => Ok(None),
            Some(data) => Ok(Some(data)),
            // The sums stopped at an overflow before seeing every reserve: a missing price or
            // decimals further on still means "cannot be judged", as when collected first.
            None if account
                .positions
                .iter()
                .any(|(asset, position)| self.exposure(asset, position).is_none()) =>
            {
                Ok(None)
            }
            None => Err(EngineError::Overflow {
                quantity: "Aave account data",
            }),
        }
    }

    /// The liquidation context for `account` seizing `collateral` for `debt`; `None` when a
    /// price or decimals are missing.
    fn context(
        &self,
        account: &Account,
        data: AccountData,
        collateral: &Id,
        debt: &Id,
    ) -> Result<Option<LiquidationContext>, EngineError> {
        let (Some(c_reserve), Some(d_reserve)) =
            (self.reserves.get(collateral), self.reserves.get(debt))
        else {
            return Ok(None);
        };
        let (Some(c_decimals), Some(d_decimals)) = (c_reserve.decimals, d_reserve.decimals) else {
            return Ok(None);
        };
        let (Some(c_price), Some(d_price)) = (self.price(collateral), self.price(debt)) else {
            return Ok(None);
        };
        let position = |asset: &Id| account.positions.get(asset).copied().unwrap_or_default();
        let c_position = position(collateral);
        let overflow = || EngineError::Overflow {
            quantity: "Aave balance",
        };
        Ok(Some(LiquidationContext {
            version: self.version,
            account: data,
            collateral: ReserveSide {
                price: c_price,
                decimals: c_decimals,
                balance: ray_mul(c_position.scaled_collateral, c_reserve.liquidity_index)
                    .ok_or_else(overflow)?,
            },
            debt: ReserveSide {
                price: d_price,
                decimals: d_decimals,
                balance: ray_mul(position(debt).scaled_debt, d_reserve.borrow_index)
                    .ok_or_else(overflow)?,
            },
            collateral_enabled: c_position.collateral_enabled
                && c_reserve.liquidation_threshold != 0,
            liquidation_bonus: c_reserve.liquidation_bonus,
            liquidation_protocol_fee: c_reserve.liquidation_protocol_fee,
            close_factor: self.close_factor,
        }))
    }

    /// Recomputes where `account_id` of `pool_id` sits in the index.
    fn reindex_account(&mut self, pool_id: &Id, account_id: &Id) {
        if let Some(slot) = self
            .pools
            .get(pool_id)
            .and_then(|pool| pool.accounts.find(account_id))
        {
            self.reindex(pool_id, slot);
        }
    }

    /// Recomputes where the account in `slot` of `pool_id` sits in the index.
    fn reindex(&mut self, pool_id: &Id, slot: Slot) {
        let Some(pool) = self.pools.get_mut(pool_id) else {
            return;
        };
        let account = pool.accounts.at(slot);
        self.monitor.touch(*pool_id, slot);
        // One enabled collateral and one debt make a pair member; anything else is complex
        // (checked on every query) or, without debt, not indexed.
        let mut collateral: Option<(&Id, &Position)> = None;
        let mut debt: Option<(&Id, &Position)> = None;
        let (mut collaterals, mut debts) = (0usize, 0usize);
        for (asset, position) in account.positions.iter() {
            if position.collateral_enabled && !position.scaled_collateral.is_zero() {
                collaterals += 1;
                collateral = Some((asset, position));
            }
            if !position.scaled_debt.is_zero() {
                debts += 1;
                debt = Some((asset, position));
            }
        }
        let complex = || Entry::Complex {
            assets: account.positions.iter().map(|(asset, _)| *asset).collect(),
        };
        let entry = match (collateral, debt) {
            _ if debts == 0 => None,
            (Some((c, cp)), Some((d, dp))) if collaterals == 1 && debts == 1 => {
                let narrow = u128::try_from(cp.scaled_collateral)
                    .ok()
                    .zip(u128::try_from(dp.scaled_debt).ok());
                match (narrow, dp.scaled_debt.checked_mul(KEY_SCALE)) {
                    (Some((scaled_collateral, scaled_debt)), Some(scaled)) => Some(Entry::Pair {
                        collateral: *c,
                        debt: *d,
                        key: compress_key(scaled / cp.scaled_collateral),
                        member: Member {
                            scaled_collateral,
                            scaled_debt,
                        },
                    }),
                    _ => Some(complex()),
                }
            }
            _ => Some(complex()),
        };
        if let Some(pair) = pool.index.set(slot, entry) {
            self.monitor.forget_pair(pool_id, &pair);
        }
    }

    /// Puts the accounts of every pool liquidatable now into `found`, pool by pool.
    /// `walked` is scratch space: members are copied out of the index first and judged after,
    /// so the copy loop's cache misses overlap instead of waiting behind each health factor.
    fn find(
        &self,
        found: &mut FoundSet<Found>,
        walked: &mut Vec<Held<Member>>,
    ) -> Result<(), EngineError> {
        found.clear();
        for (pool_id, pool) in &self.pools {
            for members in pool.index.pairs() {
                let (collateral, debt) = members.ids();
                // Everything but the two scaled balances is the same for the whole pair: read
                // it once (`None`: a price or decimals missing, nobody in the pair can be
                // judged).
                let Some(pair) = self.pair_view(collateral, debt) else {
                    continue;
                };
                walked.clear();
                walked.extend(members.at_or_above(compress_key(pair.level())));
                for held in walked.iter() {
                    let data = pair.account_data(
                        U256::from(held.member.scaled_collateral),
                        U256::from(held.member.scaled_debt),
                    )?;
                    if data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD {
                        found.push(
                            *pool.accounts.id(held.slot),
                            data.health_factor,
                            data.into(),
                        );
                    }
                }
            }
            for slot in pool.index.complex() {
                if let Some(data) = self.account_data(pool.accounts.at(*slot))?
                    && data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
                {
                    found.push(*pool.accounts.id(*slot), data.health_factor, data.into());
                }
            }
            found.end_market(*pool_id);
        }
        found.finish();
        Ok(())
    }

    /// Makes `self.found` the liquidatable set of the current state, computing it at most once
    /// per state: `liquidatable` and `risk` after the same event share it.
    fn refresh_found(&mut self) -> Result<(), EngineError> {
        if !self.found.is_valid() {
            let mut found = std::mem::take(&mut self.found);
            let mut walked = std::mem::take(&mut self.walked);
            let result = self.find(&mut found, &mut walked);
            self.found = found;
            self.walked = walked;
            result?;
        }
        Ok(())
    }

    /// Forgets the cached liquidatable set: called by every method that may change the state.
    fn invalidate(&mut self) {
        self.found.invalidate();
    }

    /// The view of every reserve, for [`Monitor::begin`].
    fn asset_views(&self) -> BTreeMap<Id, AssetView> {
        self.reserves
            .iter()
            .map(|(asset, reserve)| {
                (
                    *asset,
                    (
                        self.prices.get(asset).copied(),
                        reserve.decimals,
                        reserve.liquidation_threshold,
                        reserve.liquidity_index,
                        reserve.borrow_index,
                    ),
                )
            })
            .collect()
    }

    /// Brings the monitor to the current state (see [`Monitor`]).
    fn refresh_monitor(&mut self) -> Result<(), EngineError> {
        let Some(retest) = self.monitor.begin(self.asset_views()) else {
            return Ok(());
        };
        let mut out = Retested::default();
        self.retest(&retest, &mut out)?;
        self.monitor.finish(&retest, out);
        Ok(())
    }

    /// Re-tests what `retest` names with the rule [`AaveModel::find`] applies: pairs whose
    /// assets moved from the lower of their stored and new level, accounts with several reserves
    /// when any asset moved, and touched accounts (a pair member only when its key reaches its
    /// pair's level: below it the walk would not have confirmed it either).
    fn retest(&self, retest: &Retest, out: &mut Retested<Found>) -> Result<(), EngineError> {
        let judge = |pair: &PairView, member: &Member| -> Result<Option<Found>, EngineError> {
            let data = pair.account_data(
                U256::from(member.scaled_collateral),
                U256::from(member.scaled_debt),
            )?;
            Ok((data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD).then(|| data.into()))
        };
        let judge_complex = |account: &Account| -> Result<Option<Found>, EngineError> {
            Ok(self
                .account_data(account)?
                .filter(|data| data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD)
                .map(Found::from))
        };
        for (pool_id, pool) in &self.pools {
            self.monitor.walk_pairs(
                retest,
                pool_id,
                &pool.index,
                |(collateral, debt)| {
                    let view = self.pair_view(collateral, debt)?;
                    let level = compress_key(view.level());
                    Some((view, level))
                },
                judge,
                out,
            )?;
            for slot in pool.index.complex_moved(retest) {
                let found = judge_complex(pool.accounts.at(*slot))?;
                out.results.push((*pool_id, *slot, found));
            }
        }
        // The pairs' views and levels, computed once per refresh however many of their members
        // were touched (the index is per pool, the view is the reserves': shared by pools).
        let mut views: BTreeMap<(Id, Id), Option<(PairView, u128)>> = BTreeMap::new();
        for (pool_id, slot) in &retest.touched {
            let Some(pool) = self.pools.get(pool_id) else {
                continue;
            };
            let found = match pool.index.placed(*slot) {
                None => None,
                Some(Placed::Complex) => judge_complex(pool.accounts.at(*slot))?,
                Some(Placed::Pair { pair, held, .. }) => {
                    let view = views.entry(*pair).or_insert_with(|| {
                        let view = self.pair_view(&pair.0, &pair.1)?;
                        let level = compress_key(view.level());
                        Some((view, level))
                    });
                    match view {
                        Some((view, level)) if held.key >= *level => judge(view, &held.member)?,
                        _ => None,
                    }
                }
            };
            out.results.push((*pool_id, *slot, found));
        }
        Ok(())
    }

    /// What the health factor of an account of the (collateral, debt) pair reads besides its
    /// balances.
    fn pair_view(&self, collateral: &Id, debt: &Id) -> Option<PairView> {
        let c = self.reserves.get(collateral)?;
        let d = self.reserves.get(debt)?;
        Some(PairView {
            c: Side {
                price: self.price(collateral)?,
                unit: unit(c.decimals?)?,
                per_unit: Divisor::of(unit(c.decimals?)?)?,
                threshold: c.liquidation_threshold,
                index: c.liquidity_index,
            },
            d: Side {
                price: self.price(debt)?,
                unit: unit(d.decimals?)?,
                per_unit: Divisor::of(unit(d.decimals?)?)?,
                threshold: d.liquidation_threshold,
                index: d.borrow_index,
            },
        })
    }

    /// The risk snapshot summed over [`AaveModel::find`]'s set: the baseline the monitor's sums
    /// are tested against.
    #[cfg(test)]
    pub(crate) fn scanned_risk(&mut self) -> Vec<(Id, u64, U256, U256, U256)> {
        self.invalidate();
        self.refresh_found().unwrap();
        let mut out = Vec::new();
        for market in self.pools.keys() {
            let mut totals = (0u64, U256::ZERO, U256::ZERO, U256::ZERO);
            for account in self.found.of_market(market) {
                totals.0 += 1;
                totals.1 = totals.1.saturating_add(account.collateral_base);
                totals.2 = totals.2.saturating_add(account.debt_base);
                totals.3 = totals
                    .3
                    .saturating_add(account.debt_base.saturating_sub(account.collateral_base));
            }
            out.push((*market, totals.0, totals.1, totals.2, totals.3));
        }
        out
    }

    /// Underlying collateral and debt of `account` in `asset` (`balanceOf` of the aToken and
    /// the variable debt token): for tests that check conservation.
    #[cfg(test)]
    pub(crate) fn balances(&self, market: &Id, account: &Id, asset: &Id) -> (U256, U256) {
        let reserve = self.reserves.get(asset).cloned().unwrap_or_default();
        let position = self
            .pools
            .get(market)
            .and_then(|pool| pool.accounts.get(account))
            .and_then(|a| a.positions.get(asset).copied())
            .unwrap_or_default();
        (
            ray_mul(position.scaled_collateral, reserve.liquidity_index).unwrap_or(U256::MAX),
            ray_mul(position.scaled_debt, reserve.borrow_index).unwrap_or(U256::MAX),
        )
    }

    /// Every liquidatable (pool, account) by computing every account's health factor: the
    /// full-scan baseline the index is measured and tested against. Sorted.
    pub fn scan_all_liquidatable(&self) -> Result<Vec<(Id, Id)>, EngineError> {
        let mut out = Vec::new();
        for (market, pool) in &self.pools {
            for slot in pool.accounts.sorted() {
                let (id, account) = (pool.accounts.id(slot), pool.accounts.at(slot));
                if let Some(data) = self.account_data(account)?
                    && data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
                {
                    out.push((*market, *id));
                }
            }
        }
        Ok(out)
    }

    fn deposit(&mut self, change: &PositionChange) -> Result<Applied, EngineError> {
        let reserve = self.reserves.entry(change.asset).or_default().clone();
        let scaled = match change.shares {
            Some(shares) => shares.0,
            None => {
                ray_div(change.amount.0, reserve.liquidity_index).ok_or(EngineError::Overflow {
                    quantity: "Aave deposit scaled amount",
                })?
            }
        };
        let auto_enable = match self.version {
            AaveVersion::V2 => true,
            AaveVersion::V3 | AaveVersion::V3_3 => reserve.ltv != 0,
        };
        let (slot, position) = self.position_mut(change);
        let first = position.scaled_collateral.is_zero();
        position.scaled_collateral =
            position
                .scaled_collateral
                .checked_add(scaled)
                .ok_or(EngineError::Overflow {
                    quantity: "Aave collateral balance",
                })?;
        if first && !scaled.is_zero() && auto_enable {
            position.collateral_enabled = true;
        }
        self.reindex(&change.market, slot);
        Ok(Applied::Exact)
    }

    fn withdraw(&mut self, change: &PositionChange) -> Result<Applied, EngineError> {
        let index = self.reserve_index(&change.asset, false);
        let scaled = scaled_amount(change, index)?;
        let (slot, position) = self.position_mut(change);
        let (left, clamped) = sub_clamped(position.scaled_collateral, scaled);
        position.scaled_collateral = left;
        if left.is_zero() {
            position.collateral_enabled = false;
        }
        self.reindex(&change.market, slot);
        Ok(if clamped {
            Applied::Clamped("withdraw exceeds the rebuilt deposit")
        } else {
            Applied::Exact
        })
    }

    fn borrow(&mut self, change: &PositionChange) -> Result<Applied, EngineError> {
        let index = self.reserve_index(&change.asset, true);
        let scaled = scaled_amount(change, index)?;
        let (slot, position) = self.position_mut(change);
        position.scaled_debt =
            position
                .scaled_debt
                .checked_add(scaled)
                .ok_or(EngineError::Overflow {
                    quantity: "Aave debt balance",
                })?;
        self.reindex(&change.market, slot);
        Ok(Applied::Exact)
    }

    fn repay(&mut self, change: &PositionChange) -> Result<Applied, EngineError> {
        let index = self.reserve_index(&change.asset, true);
        let scaled = scaled_amount(change, index)?;
        let (slot, position) = self.position_mut(change);
        let (left, clamped) = sub_clamped(position.scaled_debt, scaled);
        position.scaled_debt = left;
        self.reindex(&change.market, slot);
        Ok(if clamped {
            Applied::Clamped("repay exceeds the rebuilt debt")
        } else {
            Applied::Exact
        })
    }

    /// The reserve's liquidity (or borrow) index, creating the reserve if needed.
    fn reserve_index(&mut self, asset: &Id, borrow: bool) -> U256 {
        let reserve = self.reserves.entry(*asset).or_default();
        if borrow {
            reserve.borrow_index
        } else {
            reserve.liquidity_index
        }
    }

    /// The account's position in the change's reserve, created if needed, and its slot.
    fn position_mut(&mut self, change: &PositionChange) -> (Slot, &mut Position) {
        let accounts = &mut self.pools.entry(change.market).or_default().accounts;
        let (slot, _) = accounts.slot_or_insert_with(change.account, Account::default);
        let position = accounts
            .at_mut(slot)
            .positions
            .entry_or_default(change.asset);
        (slot, position)
    }

    fn toggle(&mut self, toggle: &CollateralToggle) -> Applied {
        let known = self
            .pools
            .get_mut(&toggle.market)
            .and_then(|pool| pool.accounts.get_mut(&toggle.account))
            .map(|account| {
                account
                    .positions
                    .entry_or_default(toggle.asset)
                    .collateral_enabled = toggle.enabled;
            })
            .is_some();
        if !known {
            return Applied::Skipped("collateral toggle of an account with no rebuilt position");
        }
        self.reindex_account(&toggle.market, &toggle.account);
        Applied::Exact
    }

    fn index_update(&mut self, update: &IndexUpdate) -> Result<Applied, EngineError> {
        let reserve = self.reserves.entry(update.asset).or_default();
        if let Some(index) = &update.supply_index {
            reserve.liquidity_index = ray_of(index, "Aave liquidity index")?;
        }
        if let Some(index) = &update.borrow_index {
            reserve.borrow_index = ray_of(index, "Aave borrow index")?;
        }
        Ok(Applied::Exact)
    }

    /// Removes `debt` of `debt_asset` and `collateral` (everything leaving the borrower) of
    /// `collateral_asset` from an account, as `burn`/`transferOnLiquidation` do; v3.3 then burns
    /// the remaining debt as deficit when no collateral is left. Returns whether an amount had to
    /// be clamped and the v3.3 deficit in the liquidated debt asset.
    fn take(
        &mut self,
        pool_id: &Id,
        account_id: &Id,
        collateral_asset: &Id,
        collateral: U256,
        debt_asset: &Id,
        debt: U256,
    ) -> Result<(bool, U256), EngineError> {
        let liquidity_index = self.reserve_index(collateral_asset, false);
        let borrow_index = self.reserve_index(debt_asset, true);
        let overflow = || EngineError::Overflow {
            quantity: "Aave liquidation scaled amount",
        };
        let scaled_collateral = ray_div(collateral, liquidity_index).ok_or_else(overflow)?;
        let scaled_debt = ray_div(debt, borrow_index).ok_or_else(overflow)?;
        let version = self.version;
        let Some(account) = self
            .pools
            .get_mut(pool_id)
            .and_then(|pool| pool.accounts.get_mut(account_id))
        else {
            return Ok((false, U256::ZERO));
        };
        let c = account.positions.entry_or_default(*collateral_asset);
        let (left, clamped_c) = sub_clamped(c.scaled_collateral, scaled_collateral);
        c.scaled_collateral = left;
        if left.is_zero() {
            c.collateral_enabled = false;
        }
        let d = account.positions.entry_or_default(*debt_asset);
        let (left, clamped_d) = sub_clamped(d.scaled_debt, scaled_debt);
        d.scaled_debt = left;
        let mut deficit = U256::ZERO;
        let no_collateral = account
            .positions
            .values()
            .all(|p| !p.collateral_enabled || p.scaled_collateral.is_zero());
        if version == AaveVersion::V3_3 && no_collateral {
            for (asset, position) in account.positions.iter_mut() {
                if asset == debt_asset {
                    deficit = ray_mul(position.scaled_debt, borrow_index).ok_or_else(overflow)?;
                }
                position.scaled_debt = U256::ZERO;
            }
        }
        self.reindex_account(pool_id, account_id);
        Ok((clamped_c || clamped_d, deficit))
    }

    fn set(
        &mut self,
        market: Option<&Id>,
        param: AaveParam,
        value: &Fixed,
    ) -> Result<Applied, EngineError> {
        let invalid = |reason: &'static str| EngineError::InvalidParam {
            param: param.name().to_owned(),
            value: value.to_string(),
            reason,
        };
        match param {
            AaveParam::CloseFactor => {
                self.close_factor = U256::from(bps(value, 1).ok_or_else(|| invalid(BPS))?);
                return Ok(Applied::Exact);
            }
            AaveParam::PoolVersion => {
                if self.protocol != Protocol::AaveV3 {
                    return Err(invalid("only Aave v3 pools have rule versions"));
                }
                let tenths = value
                    .rescale(1)
                    .filter(|t| same_value(&Fixed::new(*t, 1), value))
                    .ok_or_else(|| invalid("expected a version such as 3.2 or 3.3"))?;
                self.version = if tenths >= U256::from(33u8) {
                    AaveVersion::V3_3
                } else if tenths >= U256::from(30u8) {
                    AaveVersion::V3
                } else {
                    return Err(invalid("expected a version such as 3.2 or 3.3"));
                };
                return Ok(Applied::Exact);
            }
            _ => {}
        }
        let market = market.ok_or_else(|| invalid("a reserve parameter needs a reserve"))?;
        let reserve = self.reserves.entry(*market).or_default();
        match param {
            AaveParam::Decimals => {
                let decimals = value
                    .rescale(0)
                    .filter(|d| *d <= U256::from(77u8) && same_value(&Fixed::new(*d, 0), value))
                    .ok_or_else(|| invalid("expected a whole number of decimals up to 77"))?;
                reserve.decimals = Some(decimals.to::<u8>());
            }
            AaveParam::LiquidationThreshold => {
                reserve.liquidation_threshold = bps(value, 1).ok_or_else(|| invalid(BPS))?;
            }
            AaveParam::Ltv => {
                reserve.ltv = bps(value, 1).ok_or_else(|| invalid(BPS))?;
            }
            AaveParam::LiquidationBonus => {
                reserve.liquidation_bonus = bps(value, 100).ok_or_else(|| invalid(BONUS))?;
            }
            AaveParam::LiquidationProtocolFee => {
                reserve.liquidation_protocol_fee = bps(value, 1).ok_or_else(|| invalid(BPS))?;
            }
            AaveParam::Untracked => return Ok(Applied::Ignored),
            AaveParam::CloseFactor | AaveParam::PoolVersion => {
                unreachable!("pool-wide parameters return above")
            }
        }
        Ok(Applied::Exact)
    }

    fn quantity(&self, value: U256, asset: &Id) -> Quantity {
        let decimals = self
            .reserves
            .get(asset)
            .and_then(|r| r.decimals)
            .unwrap_or(0);
        Quantity::new(value, decimals)
    }

    /// `pair = best-bonus`: of the account's (collateral, debt) pairs allowed by `choice`, the one
    /// whose `liquidationCall` for `offer` gives the liquidator the most collateral value beyond
    /// the debt it repays, both at the oracle price in the base currency (the bonus net of a v3
    /// protocol fee). Ties: the first in id order. `None` when no pair can be liquidated.
    fn best_bonus_pair(
        &self,
        account: &Account,
        data: AccountData,
        choice: &LiquidatorChoice,
        offer: U256,
    ) -> Result<Option<(Id, Id)>, EngineError> {
        let value = |asset: &Id, amount: U256| -> Option<U256> {
            let decimals = self.reserves.get(asset)?.decimals?;
            Some(self.price(asset)?.checked_mul(amount)? / unit(decimals)?)
        };
        let mut best: Option<(U256, Id, Id)> = None;
        for (collateral, held) in account.positions.iter() {
            if held.scaled_collateral.is_zero()
                || choice.collateral_asset.is_some_and(|c| c != *collateral)
            {
                continue;
            }
            for (debt, owed) in account.positions.iter() {
                if owed.scaled_debt.is_zero() || choice.debt_asset.is_some_and(|d| d != *debt) {
                    continue;
                }
                let Some(context) = self.context(account, data, collateral, debt)? else {
                    continue;
                };
                let Some(quote) = simulated_quote(&context, offer) else {
                    continue;
                };
                let (Some(received), Some(paid)) = (
                    value(collateral, quote.collateral_to_liquidator),
                    value(debt, quote.debt_repaid),
                ) else {
                    continue;
                };
                let bonus = received.saturating_sub(paid);
                if best.is_none_or(|(most, _, _)| bonus > most) {
                    best = Some((bonus, *collateral, *debt));
                }
            }
        }
        Ok(best.map(|(_, collateral, debt)| (collateral, debt)))
    }
}

/// `liquidationCall` as a simulated liquidator offering `offer` makes it: a v3.3 liquidator
/// limited to a partial repayment that would leave dust repays all it may instead, as the
/// contract forces. `None` when the contract would refuse.
fn simulated_quote(context: &LiquidationContext, offer: U256) -> Option<LiquidationQuote> {
    match logic::liquidation_call(context, offer) {
        Ok(quote) => Some(quote),
        Err(LiquidationRefusal::WouldLeaveDust) if offer != U256::MAX => {
            logic::liquidation_call(context, U256::MAX).ok()
        }
        Err(_) => None,
    }
}

const BPS: &str = "expected a fraction up to 1 (0.825) or whole basis points (8250)";
const BONUS: &str = "expected a multiplier (1.05) or whole basis points (10500)";

/// A parameter in basis points: values up to `fraction_limit` are fractions (thresholds up to 1,
/// bonuses as multipliers below 100) and are scaled by 10000; larger values are already basis
/// points, as `ReserveConfiguration` stores them and the reserves export writes them. `None`
/// unless the result is a whole number of basis points that fits 16 bits.
fn bps(value: &Fixed, fraction_limit: u8) -> Option<u16> {
    let as_fraction = *value <= Fixed::new(U256::from(fraction_limit), 0);
    let points = if as_fraction {
        let points = value.rescale(4)?;
        same_value(&Fixed::new(points, 4), value).then_some(points)?
    } else {
        let points = value.rescale(0)?;
        same_value(&Fixed::new(points, 0), value).then_some(points)?
    };
    u16::try_from(points).ok()
}

/// Whether two fixed-point numbers have the same value, whatever their precision.
fn same_value(a: &Fixed, b: &Fixed) -> bool {
    let common = a.decimals.max(b.decimals);
    a.rescale(common).is_some() && a.rescale(common) == b.rescale(common)
}

/// An index as a ray.
fn ray_of(index: &Fixed, quantity: &'static str) -> Result<U256, EngineError> {
    index.rescale(27).ok_or(EngineError::Overflow { quantity })
}

/// The scaled amount of a position change: the source's own when recorded, else `rayDiv` by
/// the index as the token contracts compute it.
fn scaled_amount(change: &PositionChange, index: U256) -> Result<U256, EngineError> {
    match change.shares {
        Some(shares) => Ok(shares.0),
        None => ray_div(change.amount.0, index).ok_or(EngineError::Overflow {
            quantity: "Aave scaled amount",
        }),
    }
}

/// `a - b`, or zero with `true` when `b` exceeds `a`.
fn sub_clamped(a: U256, b: U256) -> (U256, bool) {
    match a.checked_sub(b) {
        Some(left) => (left, false),
        None => (U256::ZERO, true),
    }
}

/// Which input would have to differ for the seize formula to give the recorded amounts. A
/// repayment other than the formula's (the close factor or the debt balance cut it) is the debt
/// side; otherwise the collateral is proportional to the bonus (`percentMul(..., bonus)`) and
/// inversely to the collateral's price over the debt's, so the bonus that would reproduce the
/// record is `bonus * recorded / formula` (the same ratio the price ratio would have to move by);
/// a difference too small to show in hundredths of a basis point is named as the collateral's.
fn mismatch_input(
    context: &logic::LiquidationContext,
    quote: &LiquidationQuote,
    recorded_debt: U256,
    recorded_collateral: U256,
) -> MismatchEvidence {
    if quote.debt_repaid != recorded_debt {
        let difference = crate::run::signed_decimal(
            recorded_debt < quote.debt_repaid,
            recorded_debt.abs_diff(quote.debt_repaid),
            context.debt.decimals,
        );
        return MismatchEvidence {
            input: "debt".into(),
            detail: format!(
                "the formula repays {} where {} was recorded: the debt the close factor and the balance allow would have to differ by {difference}",
                Quantity::new(quote.debt_repaid, context.debt.decimals),
                Quantity::new(recorded_debt, context.debt.decimals),
            ),
            difference,
        };
    }
    let bonus = U256::from(context.liquidation_bonus);
    // Hundredths of a basis point; the formula's collateral is positive here (a mismatch).
    let implied = bonus
        .saturating_mul(U256::from(100u8))
        .saturating_mul(recorded_collateral)
        / quote.collateral_to_liquidator.max(U256::ONE);
    if implied == bonus * U256::from(100u8) {
        let formula = quote.collateral_to_liquidator;
        let difference = crate::run::signed_decimal(
            recorded_collateral < formula,
            recorded_collateral.abs_diff(formula),
            context.collateral.decimals,
        );
        return MismatchEvidence {
            input: "collateral".into(),
            detail: format!(
                "less than a hundredth of a basis point of bonus apart: the recorded collateral differs from the formula's by {difference} (the last digits of a price or amount)"
            ),
            difference,
        };
    }
    let difference = crate::run::signed_decimal(
        implied < bonus * U256::from(100u8),
        implied.abs_diff(bonus * U256::from(100u8)),
        2,
    );
    MismatchEvidence {
        input: "bonus".into(),
        detail: format!(
            "the collateral reserve's liquidationBonus would have to be {} bps instead of {} (or the collateral-to-debt price ratio move by the inverse ratio)",
            crate::math::decimal(implied, 2),
            context.liquidation_bonus
        ),
        difference,
    }
}

impl ProtocolModel for AaveModel {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Interest accrues only through recorded index updates: nothing moves with time alone.
    fn advance(&mut self, _time: Timestamp, _prices: &PriceBook) -> Result<bool, EngineError> {
        Ok(false)
    }

    fn on_price(
        &mut self,
        update: &PriceUpdate,
        _time: Timestamp,
        prices: &PriceBook,
    ) -> Result<bool, EngineError> {
        if update.quote != self.base {
            return Ok(false);
        }
        self.invalidate();
        let Some(quote) = prices.market(&update.asset, &update.quote) else {
            return Ok(false);
        };
        let price = quote
            .price
            .rescale(self.base_decimals)
            .ok_or(EngineError::Overflow {
                quantity: "Aave oracle price",
            })?;
        self.price_sources
            .insert(update.asset, (quote.feed, quote.time));
        Ok(self.prices.insert(update.asset, price) != Some(price))
    }

    fn warm(&self, events: &[Event]) -> u64 {
        let accounts = events.iter().map(|event| match &event.payload {
            Payload::Deposit(c) | Payload::Withdraw(c) | Payload::Borrow(c) | Payload::Repay(c) => {
                Some((&c.market, &c.account))
            }
            Payload::CollateralToggle(t) => Some((&t.market, &t.account)),
            _ => None,
        });
        warm_accounts(
            accounts,
            |market| {
                self.pools
                    .get(market)
                    .map(|pool| (&pool.accounts, &pool.index))
            },
            |account| {
                account.positions.iter().fold(0, |sum, (_, position)| {
                    sum ^ position.scaled_collateral.as_limbs()[0]
                        ^ position.scaled_debt.as_limbs()[0]
                })
            },
        )
    }

    fn apply(&mut self, event: &Event, _prices: &PriceBook) -> Result<Applied, EngineError> {
        self.invalidate();
        match &event.payload {
            Payload::Deposit(change) => self.deposit(change),
            Payload::Withdraw(change) => self.withdraw(change),
            Payload::Borrow(change) => self.borrow(change),
            Payload::Repay(change) => self.repay(change),
            Payload::CollateralToggle(toggle) => Ok(self.toggle(toggle)),
            Payload::IndexUpdate(update) => self.index_update(update),
            Payload::ParamChange(change) => match AaveParam::parse(change.param.as_str()) {
                Some(param) => self.set(Some(&change.market), param, &change.value),
                None => Err(EngineError::InvalidParam {
                    param: change.param.to_string(),
                    value: change.value.to_string(),
                    reason: "not an Aave reserve parameter this model knows",
                }),
            },
            Payload::Price(_)
            | Payload::VaultOpen(_)
            | Payload::Liquidation(_)
            | Payload::AuctionKick(_)
            | Payload::AuctionTake(_) => Ok(Applied::Ignored),
            // Recorded oracle values and source switches are modelled for Maker only (issue 13).
            Payload::OracleValue(_) => Ok(Applied::Skipped("oracle-value-not-modelled")),
            Payload::OracleSourceChange(_) => {
                Ok(Applied::Skipped("oracle-source-change-not-modelled"))
            }
        }
    }

    fn set_param(
        &mut self,
        setting: &ParamSetting,
        _time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let param =
            AaveParam::from_id(setting.param, self.protocol).ok_or_else(|| setting.foreign())?;
        self.invalidate();
        self.set(setting.market.as_ref(), param, &setting.value)
    }

    fn judge(
        &mut self,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let collateral = &liquidation.collateral_asset;
        let debt = &liquidation.debt_asset;
        let account = self
            .pools
            .get(&liquidation.market)
            .and_then(|pool| pool.accounts.get(&liquidation.account))
            .filter(|account| {
                account
                    .positions
                    .values()
                    .any(|p| !p.scaled_collateral.is_zero() || !p.scaled_debt.is_zero())
            });
        let known = account.is_some();
        let empty = Account::default();
        let account = account.unwrap_or(&empty);
        let data = if known {
            self.account_data(account)?
        } else {
            Some(AccountData {
                total_collateral_base: U256::ZERO,
                total_debt_base: U256::ZERO,
                avg_liquidation_threshold: U256::ZERO,
                health_factor: U256::ZERO,
            })
        };
        let rule = if known {
            self.rule()
        } else {
            self.formula_rule()
        };
        let decimals = |asset: &Id| {
            self.reserves
                .get(asset)
                .and_then(|r| r.decimals)
                .unwrap_or(0)
        };
        let (c_decimals, d_decimals) = (decimals(collateral), decimals(debt));
        let context = match data {
            Some(data) => self.context(account, data, collateral, debt)?,
            None => None,
        };
        let Some(context) = context else {
            let mut judgement = Judgement::bare(Verdict::NoPrice, rule, c_decimals, d_decimals);
            judgement.note = Some(format!(
                "no price or decimals for a reserve of {} (collateral {collateral}, debt {debt})",
                liquidation.account
            ));
            return Ok(judgement);
        };
        let recorded_debt = liquidation.debt_repaid.0;
        let recorded_collateral = liquidation.collateral_seized.0;
        let explanation = if known {
            logic::explain(&context, recorded_debt, recorded_collateral)
        } else {
            logic::explain_amounts(&context, recorded_debt, recorded_collateral).ok_or(
                EngineError::Overflow {
                    quantity: "Aave seize formula",
                },
            )?
        };
        let mut judgement = Judgement::bare(Verdict::Explained, rule, c_decimals, d_decimals);
        if known {
            judgement.health = Some(Quantity::new(context.account.health_factor, 18));
        }
        // The collateral reserve's price (the debt's is in the same book); an Aave v2 WETH
        // reserve has no feed: the oracle returns 1 ETH.
        let source = self.price_sources.get(collateral);
        judgement.oracle = Some(OracleEvidence::new(
            Quantity::new(context.collateral.price, self.base_decimals),
            source.map(|(feed, _)| *feed),
            source.map(|(_, observed)| *observed),
            Some(time),
            None,
        ));
        let expected = |judgement: &mut Judgement, quote: &LiquidationQuote| {
            judgement.expected_collateral = Some(Quantity::new(
                quote.collateral_to_liquidator,
                context.collateral.decimals,
            ));
            judgement.expected_debt = Some(Quantity::new(quote.debt_repaid, context.debt.decimals));
        };
        match explanation {
            logic::Explanation::Match(quote) => {
                expected(&mut judgement, &quote);
                let mut notes = Vec::new();
                if !known {
                    notes.push("no rebuilt position: seize formula only, health not checked");
                }
                if quote.capped_by_collateral {
                    notes.push("capped at the borrower's whole collateral balance");
                }
                if quote.debt_repaid != recorded_debt
                    || quote.collateral_to_liquidator != recorded_collateral
                {
                    notes.push("within float precision of the recorded amounts");
                }
                if !notes.is_empty() {
                    judgement.note = Some(notes.join("; "));
                }
            }
            logic::Explanation::Mismatch(quote) => {
                expected(&mut judgement, &quote);
                judgement.mismatch = Some(mismatch_input(
                    &context,
                    &quote,
                    recorded_debt,
                    recorded_collateral,
                ));
                judgement.verdict = Verdict::AmountMismatch;
                judgement.note = Some(format!(
                    "formula gives {} collateral for {} debt, recorded {} for {}{}",
                    Quantity::new(quote.collateral_to_liquidator, context.collateral.decimals),
                    Quantity::new(quote.debt_repaid, context.debt.decimals),
                    Quantity::new(recorded_collateral, context.collateral.decimals),
                    Quantity::new(recorded_debt, context.debt.decimals),
                    if known {
                        ""
                    } else {
                        " (no rebuilt position: seize formula only)"
                    },
                ));
            }
            logic::Explanation::Refused(LiquidationRefusal::HealthFactorNotBelowThreshold {
                ..
            }) => {
                judgement.verdict = Verdict::NotLiquidatable;
            }
            logic::Explanation::Refused(refusal) => {
                judgement.verdict = Verdict::AmountMismatch;
                judgement.note = Some(
                    match refusal {
                        LiquidationRefusal::CollateralNotEnabled => {
                            "the rebuilt account does not use this collateral"
                        }
                        LiquidationRefusal::NoDebt => "the rebuilt account has no debt in this reserve",
                        LiquidationRefusal::WouldLeaveDust => {
                            "v3.3 refuses it as dust: it would leave less than 1,000 USD of debt or collateral"
                        }
                        LiquidationRefusal::Arithmetic
                        | LiquidationRefusal::HealthFactorNotBelowThreshold { .. } => {
                            "a zero price or an overflow: the contract would revert"
                        }
                    }
                    .to_owned(),
                );
            }
        }
        Ok(judgement)
    }

    fn apply_liquidation(
        &mut self,
        liquidation: &Liquidation,
        _judgement: &Judgement,
        _time: Timestamp,
    ) -> Result<Applied, EngineError> {
        self.invalidate();
        let known = self
            .pools
            .get(&liquidation.market)
            .is_some_and(|pool| pool.accounts.find(&liquidation.account).is_some());
        if !known {
            return Ok(Applied::Skipped(
                "liquidation of an account with no rebuilt position",
            ));
        }
        let reserve = self
            .reserves
            .get(&liquidation.collateral_asset)
            .cloned()
            .unwrap_or_default();
        // v3 takes the protocol fee on top of what the event reports for the liquidator.
        let fee_context = LiquidationContext {
            version: self.version,
            account: AccountData {
                total_collateral_base: U256::ZERO,
                total_debt_base: U256::ZERO,
                avg_liquidation_threshold: U256::ZERO,
                health_factor: U256::ZERO,
            },
            collateral: ReserveSide {
                price: U256::ZERO,
                decimals: 0,
                balance: U256::ZERO,
            },
            debt: ReserveSide {
                price: U256::ZERO,
                decimals: 0,
                balance: U256::ZERO,
            },
            collateral_enabled: true,
            liquidation_bonus: reserve.liquidation_bonus,
            liquidation_protocol_fee: reserve.liquidation_protocol_fee,
            close_factor: self.close_factor,
        };
        let received = liquidation.collateral_seized.0;
        let fee = logic::fee_on_received(&fee_context, received).unwrap_or(U256::ZERO);
        let (clamped, _) = self.take(
            &liquidation.market,
            &liquidation.account,
            &liquidation.collateral_asset,
            received.saturating_add(fee),
            &liquidation.debt_asset,
            liquidation.debt_repaid.0,
        )?;
        Ok(if clamped {
            Applied::Clamped("liquidation exceeds the rebuilt balance")
        } else {
            Applied::Exact
        })
    }

    fn liquidatable(
        &mut self,
        _time: Timestamp,
        out: &mut Vec<Candidate>,
    ) -> Result<(), EngineError> {
        self.refresh_found()?;
        out.reserve(self.found.len());
        out.extend(
            self.found
                .ordered()
                .map(|(market, account, found)| Candidate {
                    protocol: self.protocol,
                    market: *market,
                    account: *account,
                    health: found.health,
                    debt_value: found.debt_base,
                }),
        );
        Ok(())
    }

    fn simulate_liquidation(
        &mut self,
        candidate: &Candidate,
        choice: &LiquidatorChoice,
        _time: Timestamp,
    ) -> Result<Option<SimulatedLiquidation>, EngineError> {
        self.invalidate();
        let Some(account) = self
            .pools
            .get(&candidate.market)
            .and_then(|pool| pool.accounts.get(&candidate.account))
        else {
            return Ok(None);
        };
        let Some(data) = self.account_data(account)? else {
            return Ok(None);
        };
        let largest = |collateral_side: bool| -> Option<Id> {
            let mut best: Option<(U256, Id)> = None;
            for (asset, position) in account.positions.iter() {
                let reserve = self.reserves.get(asset)?;
                let amount = if collateral_side {
                    if !position.collateral_enabled || reserve.liquidation_threshold == 0 {
                        continue;
                    }
                    ray_mul(position.scaled_collateral, reserve.liquidity_index)?
                } else {
                    ray_mul(position.scaled_debt, reserve.borrow_index)?
                };
                if amount.is_zero() {
                    continue;
                }
                let value = self.price(asset)?.checked_mul(amount)? / unit(reserve.decimals?)?;
                if best.is_none_or(|(v, _)| value > v) {
                    best = Some((value, *asset));
                }
            }
            best.map(|(_, asset)| asset)
        };
        let offer = choice.max_repay.unwrap_or(U256::MAX);
        let best = match choice.pair {
            crate::counterfactual::liquidator::PairChoice::BestBonus => {
                self.best_bonus_pair(account, data, choice, offer)?
            }
            crate::counterfactual::liquidator::PairChoice::LargestDebt => None,
        };
        let (Some(collateral), Some(debt)) = best.map_or_else(
            || {
                (
                    choice.collateral_asset.or_else(|| largest(true)),
                    choice.debt_asset.or_else(|| largest(false)),
                )
            },
            |(collateral, debt)| (Some(collateral), Some(debt)),
        ) else {
            return Ok(None);
        };
        let Some(context) = self.context(account, data, &collateral, &debt)? else {
            return Ok(None);
        };
        let Some(quote) = simulated_quote(&context, offer) else {
            return Ok(None);
        };
        let (_, deficit) = self.take(
            &candidate.market,
            &candidate.account,
            &collateral,
            quote.collateral_taken(),
            &debt,
            quote.debt_repaid,
        )?;
        Ok(Some(SimulatedLiquidation {
            protocol: self.protocol,
            market: candidate.market,
            account: candidate.account,
            rule: self.rule(),
            collateral_asset: collateral,
            collateral_seized: self.quantity(quote.collateral_taken(), &collateral),
            collateral_sold: self.quantity(quote.collateral_to_liquidator, &collateral),
            debt_asset: debt,
            debt_repaid: self.quantity(quote.debt_repaid, &debt),
            bad_debt: self.quantity(deficit, &debt),
        }))
    }

    /// Sums over the liquidatable set, kept by the monitor as accounts change (the same set and
    /// exposures `AaveModel::find` computes). Bad debt is summed over that set too: an account
    /// whose debt exceeds its collateral value has a health factor below one (thresholds are at
    /// most 100%), so no underwater account lies outside it.
    fn risk(&mut self, _time: Timestamp, out: &mut Vec<MarketRisk>) -> Result<(), EngineError> {
        self.refresh_monitor()?;
        for market in self.pools.keys() {
            let (accounts, collateral, debt, bad_debt) = self.monitor.totals(market);
            out.push(MarketRisk {
                protocol: self.protocol,
                market: *market,
                oracle_price: None,
                accounts_unsafe: accounts,
                collateral_at_risk: Quantity::new(collateral, self.base_decimals),
                debt_at_risk: Quantity::new(debt, self.base_decimals),
                bad_debt: Quantity::new(bad_debt, self.base_decimals),
            });
        }
        Ok(())
    }

    fn unsafe_changes(
        &mut self,
        _time: Timestamp,
        out: &mut Vec<(Id, Id, bool)>,
    ) -> Result<bool, EngineError> {
        self.refresh_monitor()?;
        if self.monitor.take_report_all() {
            for (market, pool) in &self.pools {
                for slot in pool.accounts.sorted() {
                    let account = pool.accounts.id(slot);
                    out.push((*market, *account, self.monitor.contains(market, slot)));
                }
            }
        } else {
            let pools = &self.pools;
            self.monitor.drain_changes(out, |market, slot| {
                pools
                    .get(market)
                    .map_or(Id::Number(u64::from(slot)), |pool| *pool.accounts.id(slot))
            });
        }
        Ok(true)
    }

    fn encode_state(&self, out: &mut StateWriter) {
        out.u8(match self.version {
            AaveVersion::V2 => 2,
            AaveVersion::V3 => 3,
            AaveVersion::V3_3 => 33,
        });
        out.u256(self.close_factor);
        out.count(self.reserves.len());
        for (asset, reserve) in &self.reserves {
            out.id(asset);
            out.bool(reserve.decimals.is_some());
            out.u8(reserve.decimals.unwrap_or(0));
            for value in [
                reserve.ltv,
                reserve.liquidation_threshold,
                reserve.liquidation_bonus,
                reserve.liquidation_protocol_fee,
            ] {
                out.u64(u64::from(value));
            }
            out.u256(reserve.liquidity_index);
            out.u256(reserve.borrow_index);
        }
        out.count(self.prices.len());
        for (asset, price) in &self.prices {
            out.id(asset);
            out.u256(*price);
        }
        out.count(self.price_sources.len());
        for (asset, (feed, time)) in &self.price_sources {
            out.id(asset);
            out.id(feed);
            out.time(*time);
        }
        out.count(self.pools.len());
        for (market, pool) in &self.pools {
            out.id(market);
            out.count(pool.accounts.len());
            for slot in pool.accounts.sorted() {
                let (account, state) = (pool.accounts.id(slot), pool.accounts.at(slot));
                out.id(account);
                out.count(state.positions.len());
                for (asset, position) in state.positions.iter() {
                    out.id(asset);
                    out.u256(position.scaled_collateral);
                    out.u256(position.scaled_debt);
                    out.bool(position.collateral_enabled);
                }
            }
        }
    }

    fn decode_state(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.invalidate();
        self.version = match input.u8()? {
            2 => AaveVersion::V2,
            3 => AaveVersion::V3,
            33 => AaveVersion::V3_3,
            other => return Err(input.error(format!("unknown Aave rule version {other}"))),
        };
        self.close_factor = input.u256()?;
        let mut reserves = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            let has_decimals = input.bool()?;
            let decimals = input.u8()?;
            let mut params = [0u16; 4];
            for param in &mut params {
                *param = u16::try_from(input.u64()?)
                    .map_err(|_| input.error("Aave reserve parameter above 16 bits"))?;
            }
            let [
                ltv,
                liquidation_threshold,
                liquidation_bonus,
                liquidation_protocol_fee,
            ] = params;
            reserves.insert(
                asset,
                Reserve {
                    decimals: has_decimals.then_some(decimals),
                    ltv,
                    liquidation_threshold,
                    liquidation_bonus,
                    liquidation_protocol_fee,
                    liquidity_index: input.u256()?,
                    borrow_index: input.u256()?,
                },
            );
        }
        let mut prices = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            prices.insert(asset, input.u256()?);
        }
        let mut price_sources = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            price_sources.insert(asset, (input.id()?, input.time()?));
        }
        let mut pools = BTreeMap::new();
        for _ in 0..input.count()? {
            let market = input.id()?;
            let mut pool = Pool::default();
            for _ in 0..input.count()? {
                let account = input.id()?;
                let mut state = Account::default();
                for _ in 0..input.count()? {
                    let asset = input.id()?;
                    state.positions.insert(
                        asset,
                        Position {
                            scaled_collateral: input.u256()?,
                            scaled_debt: input.u256()?,
                            collateral_enabled: input.bool()?,
                        },
                    );
                }
                let (slot, _) = pool.accounts.slot_or_insert_with(account, Account::default);
                *pool.accounts.at_mut(slot) = state;
            }
            pools.insert(market, pool);
        }
        self.reserves = reserves;
        self.prices = prices;
        self.price_sources = price_sources;
        self.pools = pools;
        let accounts: Vec<(Id, Slot)> = self
            .pools
            .iter()
            .flat_map(|(market, pool)| {
                let slots = pool.accounts.sorted().into_iter();
                slots.map(|slot| (*market, slot))
            })
            .collect();
        for (market, slot) in accounts {
            self.reindex(&market, slot);
        }
        self.monitor.resync();
        Ok(())
    }

    fn accounts(
        &self,
        _time: Timestamp,
        out: &mut Vec<crate::protocol::accounts::AccountPosition>,
    ) {
        self.account_positions(out);
    }

    /// `calculateUserAccountData` of every account of every pool: its health factor, and its
    /// total debt in the base currency. Aave accrues no interest between recorded index updates
    /// here (`docs/engine.md`), so `time` changes nothing.
    fn health_distribution(
        &self,
        _time: Timestamp,
        out: &mut Vec<crate::protocol::HealthDistribution>,
    ) {
        for (market, pool) in &self.pools {
            let mut distribution = crate::protocol::HealthDistribution::new(
                self.protocol,
                *market,
                self.base_decimals,
            );
            for account in pool.accounts.values() {
                match self.account_data(account) {
                    Ok(Some(data))
                        if data.total_debt_base.is_zero()
                            && data.total_collateral_base.is_zero() => {}
                    Ok(Some(data)) => distribution.add(data.health_factor, data.total_debt_base),
                    Ok(None) | Err(_) => distribution.unpriced += 1,
                }
            }
            out.push(distribution);
        }
    }
}
