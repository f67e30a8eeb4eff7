//! Aave v2/v3 rules over the shared lending pool model: reserves and the oracle view the
//! contracts read, as a [`Rules`] implementation of [`LendingModel`].
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
//! The pair index key of an account with one collateral and one debt reserve is
//! `scaledDebt * 1e36 / scaledCollateral`, which no price or index moves; for current prices and
//! indices the level above which the pair's accounts may be liquidatable is
//! `1e36 * price(c) * liquidityIndex(c) * threshold(c) * unit(d) / (price(d) * borrowIndex(d) *
//! 10000 * unit(c))`, lowered by 1% to absorb the contracts' per-step rounding, and every account
//! at or above it is confirmed with the exact health factor.

mod accounts;
#[cfg(test)]
mod exposure_tests;
mod snapshot;

use std::collections::BTreeMap;

use alloy_primitives::U512;
use alloy_primitives::ruint::UintTryFrom;
use cascade_events::{
    Fixed, Id, IndexUpdate, Liquidation, ParamChange, PositionChange, Protocol, Timestamp, U256,
};

use super::logic::{
    self, AaveVersion, AccountData, DEFAULT_LIQUIDATION_CLOSE_FACTOR,
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD, LiquidationCallContext, LiquidationCallQuote,
    LiquidationCallRefusal, ReserveExposure, ReserveSide,
};
use super::math::{RAY, WAD, percent_mul, ray_div, ray_mul, unit};
use super::spec::AaveParam;
use crate::EngineError;
use crate::lending::{
    AssetDrift, ChangeKind, Divisor, Drift, Exposure, Found, LendingModel, Point, Rules, Step,
    Widest, compress_key,
};
use crate::oracle::Quote;
use crate::protocol::param::{ParamSetting, ProtocolParam};
use crate::protocol::{Applied, Judgement, Quantity, Verdict};
use crate::run::{
    InputKind, MismatchEvidence, MissingInput, OracleEvidence, SeizeCheck, SeizeResult,
};
use crate::slots::SmallMap;
use crate::state::{StateReader, StateWriter};

/// Aave v2 or v3 over every pool of that version in the log.
pub type AaveModel = LendingModel<Aave>;

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
pub struct Position {
    /// aToken scaled balance.
    scaled_collateral: U256,
    /// Variable debt token scaled balance.
    scaled_debt: U256,
    /// `UserConfiguration.isUsingAsCollateral`.
    collateral_enabled: bool,
}

type Account = crate::lending::Account<Position>;

/// An account as its pair index holds it: the two scaled balances its health factor needs, so
/// walking the index never looks the account up. Balances are `u128` (an account with a larger
/// one is indexed as complex): a smaller entry is a faster walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    scaled_collateral: u128,
    scaled_debt: u128,
}

impl Widest for Member {
    fn widest(self, other: Self) -> Self {
        Self {
            scaled_collateral: self.scaled_collateral.max(other.scaled_collateral),
            scaled_debt: self.scaled_debt.max(other.scaled_debt),
        }
    }
}

/// A liquidatable account's share of the risk sums, in the base currency.
#[derive(Clone, Copy, Debug)]
pub struct Exposed {
    collateral_base: U256,
    debt_base: U256,
}

impl Exposure for Exposed {
    fn collateral(&self) -> U256 {
        self.collateral_base
    }

    fn debt(&self) -> U256 {
        self.debt_base
    }
}

impl From<AccountData> for Exposed {
    fn from(data: AccountData) -> Self {
        Self {
            collateral_base: data.total_collateral_base,
            debt_base: data.total_debt_base,
        }
    }
}

impl From<AccountData> for Found {
    fn from(data: AccountData) -> Self {
        Self {
            health: data.health_factor,
            debt_value: data.total_debt_base,
        }
    }
}

/// What the health factor reads of one reserve besides balances: the recorded price (the v2
/// WETH price that stands in for a missing one is a constant), decimals, liquidation threshold,
/// liquidity and borrow indices. A change re-tests the accounts holding it.
type AssetView = (Option<U256>, Option<u8>, u16, U256, U256);

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

/// The per-pair constants of a health factor, read once per pair and query.
pub struct PairView {
    c: Side,
    d: Side,
}

impl PairView {
    /// `calculateUserAccountData` of an account holding only this pair (its collateral
    /// enabled): the same result as [`Aave::account_data`] from the two scaled balances,
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
        let (total_collateral, total_debt, threshold) =
            self.sums(scaled_collateral, scaled_debt)?;
        Ok(AccountData {
            total_collateral_base: total_collateral,
            total_debt_base: total_debt,
            avg_liquidation_threshold: threshold,
            health_factor: logic::health_factor(total_collateral, total_debt, threshold)
                .ok_or_else(account_data_overflow)?,
        })
    }

    /// [`PairView::account_data`]'s collateral and debt in the base currency and its average
    /// liquidation threshold, before the health factor.
    fn sums(
        &self,
        scaled_collateral: U256,
        scaled_debt: U256,
    ) -> Result<(U256, U256, U256), EngineError> {
        let overflow = account_data_overflow;
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
        Ok((total_collateral, total_debt, threshold))
    }

    /// [`PairView::account_data`] of a member if its health factor is below 1.
    fn liquidatable(&self, member: &Member) -> Result<Option<AccountData>, EngineError> {
        let data = self.account_data(
            U256::from(member.scaled_collateral),
            U256::from(member.scaled_debt),
        )?;
        Ok((data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD).then_some(data))
    }

    /// [`PairView::liquidatable`]'s exposure, without the health factor's division: the monitor
    /// re-tests a crash's whole unsafe backlog at every price move and needs only whether the
    /// factor is below 1. `wadDiv(w, debt) < 1 wad` is `(w * WAD + debt / 2) / debt < WAD`,
    /// which for whole numbers is `w * WAD + debt / 2 < WAD * debt`; the left side is checked
    /// as `wadDiv` checks it, so the same members overflow.
    fn exposed(&self, member: &Member) -> Result<Option<Exposed>, EngineError> {
        let (collateral, debt, threshold) = self.sums(
            U256::from(member.scaled_collateral),
            U256::from(member.scaled_debt),
        )?;
        // No debt: the health factor is U256::MAX.
        if debt.is_zero() {
            return Ok(None);
        }
        let scaled = percent_mul(collateral, threshold)
            .and_then(|weighted| weighted.checked_mul(WAD))
            .and_then(|scaled| scaled.checked_add(debt >> 1usize))
            .ok_or_else(account_data_overflow)?;
        let below = WAD.checked_mul(debt).is_none_or(|bound| scaled < bound);
        Ok(below.then_some(Exposed {
            collateral_base: collateral,
            debt_base: debt,
        }))
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

fn account_data_overflow() -> EngineError {
    EngineError::Overflow {
        quantity: "Aave account data",
    }
}

/// Aave v2 or v3's rules and the state they read besides accounts: reserves, prices, the close
/// factor and the rule generation in force.
#[derive(Clone, Debug)]
pub struct Aave {
    protocol: Protocol,
    version: AaveVersion,
    base: Id,
    base_decimals: u8,
    close_factor: U256,
    /// A few reserves, looked up on every event: compared for equality, not ordered.
    reserves: SmallMap<Reserve>,
    prices: SmallMap<U256>,
    /// Per asset, the feed and time of the answer `prices` holds (for a verdict's evidence).
    price_sources: BTreeMap<Id, (Id, Timestamp)>,
}

impl LendingModel<Aave> {
    /// Aave v2: ETH-denominated oracle (18 decimals), 50% close factor.
    pub fn v2() -> Self {
        Self::from_rules(Aave::new(
            Protocol::AaveV2,
            AaveVersion::V2,
            Id::name("ETH"),
            18,
        ))
    }

    /// Aave v3 with the rules of `version` (`V3` for v3.0-3.2, `V3_3` from v3.3) until a
    /// `poolVersion` parameter change says otherwise; USD oracle with 8 decimals.
    pub fn v3(version: AaveVersion) -> Self {
        Self::from_rules(Aave::new(Protocol::AaveV3, version, Id::name("USD"), 8))
    }

    /// The rules in force.
    pub fn version(&self) -> AaveVersion {
        self.rules().version
    }

    /// Underlying collateral and debt of `account` in `asset` (`balanceOf` of the aToken and
    /// the variable debt token): for tests that check conservation.
    #[cfg(test)]
    pub(crate) fn balances(&self, market: &Id, account: &Id, asset: &Id) -> (U256, U256) {
        let position = self
            .account(market, account)
            .and_then(|a| a.positions.get(asset).copied())
            .unwrap_or_default();
        self.rules().balances_of(asset, &position)
    }
}

impl Aave {
    fn new(protocol: Protocol, version: AaveVersion, base: Id, base_decimals: u8) -> Self {
        Self {
            protocol,
            version,
            base,
            base_decimals,
            close_factor: DEFAULT_LIQUIDATION_CLOSE_FACTOR,
            reserves: SmallMap::default(),
            prices: SmallMap::default(),
            price_sources: BTreeMap::new(),
        }
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

    /// The decimals of `asset`'s reserve, zero when unknown (the recorded amounts are then
    /// written in base units).
    fn decimals_or_zero(&self, asset: &Id) -> u8 {
        self.reserves
            .get(asset)
            .and_then(|r| r.decimals)
            .unwrap_or(0)
    }

    /// The first input the oracle or the reserve list lacks for `asset`: its price, else its
    /// decimals; `None` when both are known.
    pub(super) fn missing_input(&self, asset: &Id) -> Option<MissingInput> {
        if self.price(asset).is_none() {
            Some(MissingInput::new(InputKind::Price, *asset))
        } else if self.reserves.get(asset).and_then(|r| r.decimals).is_none() {
            Some(MissingInput::new(InputKind::Decimals, *asset))
        } else {
            None
        }
    }

    /// The collateral reserve's price behind a judgement (the debt's is in the same book); an
    /// Aave v2 WETH reserve has no feed: the oracle returns 1 ETH.
    fn collateral_price_evidence(
        &self,
        context: &LiquidationCallContext,
        collateral: &Id,
        time: Timestamp,
    ) -> OracleEvidence {
        let source = self.price_sources.get(collateral);
        OracleEvidence::new(
            Quantity::new(context.collateral.price, self.base_decimals),
            source.map(|(feed, _)| *feed),
            source.map(|(_, observed)| *observed),
            Some(time),
            None,
        )
    }

    /// A recorded liquidation of an account the log never positioned: `unknown-account`, with
    /// `_calculateAvailableCollateralToLiquidate` checked on the recorded amounts alone (the
    /// collateral cap inferred, health and close factor unchecked) as [`SeizeCheck`] evidence.
    fn judge_seize_only(
        &self,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let collateral = &liquidation.collateral_asset;
        let debt = &liquidation.debt_asset;
        let mut judgement = Judgement::bare(
            Verdict::UnknownAccount,
            self.formula_rule(),
            self.decimals_or_zero(collateral),
            self.decimals_or_zero(debt),
        );
        let price = |asset: &Id| {
            self.price(asset)
                .map(|price| Quantity::new(price, self.base_decimals))
        };
        let mut seize = SeizeCheck {
            result: SeizeResult::NoPrice,
            bonus: self
                .reserves
                .get(collateral)
                .filter(|r| r.liquidation_bonus != 0)
                .map(|r| Quantity::new(U256::from(r.liquidation_bonus), 4)),
            collateral_price: price(collateral),
            debt_price: price(debt),
            exchange_rate: None,
        };
        let no_data = AccountData {
            total_collateral_base: U256::ZERO,
            total_debt_base: U256::ZERO,
            avg_liquidation_threshold: U256::ZERO,
            health_factor: U256::ZERO,
        };
        let context = self.context(&Account::default(), no_data, collateral, debt)?;
        // A reserve no parameter configured has bonus 0, which no liquidated collateral has.
        let context = context.filter(|context| context.liquidation_bonus != 0);
        let Some(context) = context else {
            let missing = self
                .missing_input(collateral)
                .or_else(|| self.missing_input(debt))
                .unwrap_or(MissingInput::new(InputKind::LiquidationBonus, *collateral));
            judgement.missing = Some(missing);
            judgement.note = Some(format!("{NO_POSITION}; no {missing} for the seize formula"));
            judgement.seize = Some(seize);
            return Ok(judgement);
        };
        judgement.oracle = Some(self.collateral_price_evidence(&context, collateral, time));
        let recorded_debt = liquidation.debt_repaid.0;
        let recorded_collateral = liquidation.collateral_seized.0;
        let explanation = logic::explain_amounts(&context, recorded_debt, recorded_collateral)
            .ok_or(EngineError::Overflow {
                quantity: "Aave seize formula",
            })?;
        match explanation {
            logic::Explanation::Match(quote) => {
                expect_quote(&mut judgement, &context, &quote);
                seize.result = SeizeResult::Consistent;
                let notes = match_notes(&quote, recorded_debt, recorded_collateral);
                judgement.note = Some(match notes {
                    Some(notes) => format!("{NO_POSITION}; the seize formula agrees ({notes})"),
                    None => format!("{NO_POSITION}; the seize formula agrees"),
                });
            }
            logic::Explanation::Mismatch(quote) => {
                let differs = formula_mismatch(
                    &mut judgement,
                    &context,
                    &quote,
                    recorded_debt,
                    recorded_collateral,
                );
                seize.result = SeizeResult::Mismatch;
                judgement.note = Some(format!("{NO_POSITION}; the seize {differs}"));
            }
            // `explain_amounts` checks no rule that refuses; a refusal would be the contract
            // reverting, which no recorded liquidation did.
            logic::Explanation::Refused(_) => {
                seize.result = SeizeResult::Mismatch;
                judgement.note = Some(format!(
                    "{NO_POSITION}; the seize formula reverts on these amounts"
                ));
            }
        }
        judgement.seize = Some(seize);
        Ok(judgement)
    }

    /// The exposure of one position as `calculateUserAccountData` reads it, its liquidation
    /// threshold less `cut_bps` (a scenario's cut on a looped account; 0 for every other):
    /// `Some(None)` when it holds nothing, `None` when the reserve's price or decimals are unknown.
    fn exposure(
        &self,
        asset: &Id,
        position: &Position,
        cut_bps: u16,
    ) -> Option<Option<ReserveExposure>> {
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
            liquidation_threshold: reserve.liquidation_threshold.saturating_sub(cut_bps),
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
            let exposure = self.exposure(asset, position, account.threshold_cut_bps);
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
                .any(|(asset, position)| self.exposure(asset, position, 0).is_none()) =>
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
    ) -> Result<Option<LiquidationCallContext>, EngineError> {
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
        Ok(Some(LiquidationCallContext {
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
    fn reserve_index(&mut self, asset: &Id, borrow: bool) -> U256 {
        let reserve = self.reserves.entry_or_default(*asset);
        if borrow {
            reserve.borrow_index
        } else {
            reserve.liquidity_index
        }
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
        let reserve = self.reserves.entry_or_default(*market);
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

    /// `calculateUserAccountData` of `account` if its health factor is below 1; `Ok(None)` also
    /// when a price or decimals are missing.
    fn liquidatable(&self, account: &Account) -> Result<Option<AccountData>, EngineError> {
        Ok(self
            .account_data(account)?
            .filter(|data| data.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD))
    }

    /// The value of `amount` of `asset` in the base currency at the oracle price.
    fn value(&self, asset: &Id, amount: U256) -> Option<U256> {
        let decimals = self.reserves.get(asset)?.decimals?;
        Some(self.price(asset)?.checked_mul(amount)? / unit(decimals)?)
    }
}

/// `liquidationCall` as a simulated liquidator offering `offer` makes it: a v3.3 liquidator
/// limited to a partial repayment that would leave dust repays all it may instead, as the
/// contract forces. `None` when the contract would refuse.
fn simulated_quote(context: &LiquidationCallContext, offer: U256) -> Option<LiquidationCallQuote> {
    match logic::liquidation_call(context, offer) {
        Ok(quote) => Some(quote),
        Err(LiquidationCallRefusal::WouldLeaveDust) if offer != U256::MAX => {
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
/// How a judgement of an account without a rebuilt position begins its note.
const NO_POSITION: &str =
    "no rebuilt position for this account (health and close factor not checked)";

/// Fills a judgement's expected amounts from the formula's quote.
fn expect_quote(
    judgement: &mut Judgement,
    context: &LiquidationCallContext,
    quote: &LiquidationCallQuote,
) {
    judgement.expected_collateral = Some(Quantity::new(
        quote.collateral_to_liquidator,
        context.collateral.decimals,
    ));
    judgement.expected_debt = Some(Quantity::new(quote.debt_repaid, context.debt.decimals));
}

/// What a matching quote's note says: the cap at the balance, the float precision of the
/// record; `None` when the formula gave the recorded amounts exactly and uncapped.
fn match_notes(
    quote: &LiquidationCallQuote,
    recorded_debt: U256,
    recorded_collateral: U256,
) -> Option<String> {
    let mut notes = Vec::new();
    if quote.capped_by_collateral {
        notes.push("capped at the borrower's whole collateral balance");
    }
    if quote.debt_repaid != recorded_debt || quote.collateral_to_liquidator != recorded_collateral {
        notes.push("within float precision of the recorded amounts");
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Fills a judgement whose formula does not give the recorded amounts: the formula's amounts,
/// the input that would have to differ; returns "formula gives X collateral for Y debt,
/// recorded X' for Y'".
fn formula_mismatch(
    judgement: &mut Judgement,
    context: &LiquidationCallContext,
    quote: &LiquidationCallQuote,
    recorded_debt: U256,
    recorded_collateral: U256,
) -> String {
    expect_quote(judgement, context, quote);
    judgement.mismatch = Some(mismatch_input(
        context,
        quote,
        recorded_debt,
        recorded_collateral,
    ));
    format!(
        "formula gives {} collateral for {} debt, recorded {} for {}",
        Quantity::new(quote.collateral_to_liquidator, context.collateral.decimals),
        Quantity::new(quote.debt_repaid, context.debt.decimals),
        Quantity::new(recorded_collateral, context.collateral.decimals),
        Quantity::new(recorded_debt, context.debt.decimals),
    )
}

fn mismatch_input(
    context: &logic::LiquidationCallContext,
    quote: &LiquidationCallQuote,
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

impl Rules for Aave {
    type Position = Position;
    type Member = Member;
    type AssetView = AssetView;
    type PairView = PairView;
    type Exposed = Exposed;
    type Health = AccountData;
    type Context = LiquidationCallContext;
    type Quote = LiquidationCallQuote;
    /// (scaled amount, whether a first deposit enables the reserve as collateral).
    type Change = (ChangeKind, U256, bool);

    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn risk_decimals(&self) -> u8 {
        self.base_decimals
    }

    fn base(&self) -> Id {
        self.base
    }

    /// Each pool keeps its own accounts.
    fn market_of(market: &Id) -> Id {
        *market
    }

    fn set_price(&mut self, asset: &Id, quote: &Quote) -> Result<bool, EngineError> {
        let price = quote
            .price
            .rescale(self.base_decimals)
            .ok_or(EngineError::Overflow {
                quantity: "Aave oracle price",
            })?;
        self.price_sources.insert(*asset, (quote.feed, quote.time));
        Ok(self.prices.insert(*asset, price) != Some(price))
    }

    fn forget_price(&mut self, asset: &Id) -> bool {
        self.price_sources.remove(asset);
        self.prices.remove(asset).is_some()
    }

    fn index_update(&mut self, update: &IndexUpdate) -> Result<Applied, EngineError> {
        let reserve = self.reserves.entry_or_default(update.asset);
        if let Some(index) = &update.supply_index {
            reserve.liquidity_index = ray_of(index, "Aave liquidity index")?;
        }
        if let Some(index) = &update.borrow_index {
            reserve.borrow_index = ray_of(index, "Aave borrow index")?;
        }
        Ok(Applied::Exact)
    }

    fn param_change(&mut self, change: &ParamChange) -> Result<Applied, EngineError> {
        match AaveParam::parse(change.param.as_str()) {
            Some(param) => self.set(Some(&change.market), param, &change.value),
            None => Err(EngineError::InvalidParam {
                param: change.param.to_string(),
                value: change.value.to_string(),
                reason: "not an Aave reserve parameter this model knows",
            }),
        }
    }

    fn set_param(&mut self, setting: &ParamSetting) -> Result<Applied, EngineError> {
        let param =
            AaveParam::from_id(setting.param, self.protocol).ok_or_else(|| setting.foreign())?;
        self.set(setting.market.as_ref(), param, &setting.value)
    }

    /// The scaled amount: the source's own when recorded, else `rayDiv` by the index as the
    /// token contracts compute it. A first deposit enables the reserve as collateral (v2
    /// always, v3 when its LTV is not zero).
    fn plan(
        &mut self,
        kind: ChangeKind,
        change: &PositionChange,
    ) -> Result<Step<Self::Change>, EngineError> {
        if kind == ChangeKind::Deposit {
            let reserve = self.reserves.entry_or_default(change.asset).clone();
            let scaled = match change.shares {
                Some(shares) => shares.0,
                None => ray_div(change.amount.0, reserve.liquidity_index).ok_or(
                    EngineError::Overflow {
                        quantity: "Aave deposit scaled amount",
                    },
                )?,
            };
            let auto_enable = match self.version {
                AaveVersion::V2 => true,
                AaveVersion::V3 | AaveVersion::V3_3 => reserve.ltv != 0,
            };
            return Ok(Step::Go((kind, scaled, auto_enable)));
        }
        let index = self.reserve_index(&change.asset, kind != ChangeKind::Withdraw);
        let scaled = scaled_amount(change, index)?;
        Ok(Step::Go((kind, scaled, false)))
    }

    fn apply_plan(
        (kind, scaled, auto_enable): Self::Change,
        position: &mut Position,
    ) -> Result<Applied, EngineError> {
        match kind {
            ChangeKind::Deposit => {
                let first = position.scaled_collateral.is_zero();
                position.scaled_collateral = position.scaled_collateral.checked_add(scaled).ok_or(
                    EngineError::Overflow {
                        quantity: "Aave collateral balance",
                    },
                )?;
                if first && !scaled.is_zero() && auto_enable {
                    position.collateral_enabled = true;
                }
                Ok(Applied::Exact)
            }
            ChangeKind::Withdraw => {
                let (left, clamped) = sub_clamped(position.scaled_collateral, scaled);
                position.scaled_collateral = left;
                if left.is_zero() {
                    position.collateral_enabled = false;
                }
                Ok(if clamped {
                    Applied::Clamped("withdraw exceeds the rebuilt deposit")
                } else {
                    Applied::Exact
                })
            }
            ChangeKind::Borrow => {
                position.scaled_debt =
                    position
                        .scaled_debt
                        .checked_add(scaled)
                        .ok_or(EngineError::Overflow {
                            quantity: "Aave debt balance",
                        })?;
                Ok(Applied::Exact)
            }
            ChangeKind::Repay => {
                let (left, clamped) = sub_clamped(position.scaled_debt, scaled);
                position.scaled_debt = left;
                Ok(if clamped {
                    Applied::Clamped("repay exceeds the rebuilt debt")
                } else {
                    Applied::Exact
                })
            }
        }
    }

    fn set_collateral(position: &mut Position, enabled: bool) {
        position.collateral_enabled = enabled;
    }

    fn holds(position: &Position) -> bool {
        !position.scaled_collateral.is_zero() || !position.scaled_debt.is_zero()
    }

    fn is_collateral(position: &Position) -> bool {
        position.collateral_enabled && !position.scaled_collateral.is_zero()
    }

    /// Any aToken balance: `liquidationCall` itself refuses a reserve not used as collateral.
    fn is_seizable(position: &Position) -> bool {
        !position.scaled_collateral.is_zero()
    }

    fn is_debt(position: &Position) -> bool {
        !position.scaled_debt.is_zero()
    }

    /// A position holding nothing is worth nothing at any price, index or threshold
    /// (`rayMul(0, index)` is 0): its account reads only whether its reserve is known.
    fn reads(position: &Position) -> bool {
        Self::holds(position)
    }

    /// Key `scaledDebt * 1e36 / scaledCollateral`.
    fn pair_member(collateral: &Position, debt: &Position) -> Option<(u128, Member)> {
        let scaled_collateral = u128::try_from(collateral.scaled_collateral).ok()?;
        let scaled_debt = u128::try_from(debt.scaled_debt).ok()?;
        let scaled = debt.scaled_debt.checked_mul(KEY_SCALE)?;
        Some((
            compress_key(scaled / collateral.scaled_collateral),
            Member {
                scaled_collateral,
                scaled_debt,
            },
        ))
    }

    fn warm_bits(position: &Position) -> u64 {
        position.scaled_collateral.as_limbs()[0] ^ position.scaled_debt.as_limbs()[0]
    }

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

    fn level(view: &PairView) -> U256 {
        view.level()
    }

    /// A pair member's judgement ([`PairView::exposed`]) is a chain of products, half-up and
    /// floor divisions and a final comparison, each monotone: liquidatable-ness can only go
    /// away as the collateral's price, liquidity index or threshold rise, and only come as the
    /// debt's price or borrow index rise. Decimals, or a price appearing or going, could do
    /// either.
    fn drift(old: &AssetView, new: &AssetView) -> AssetDrift {
        let (old_price, old_decimals, old_threshold, old_liquidity, old_borrow) = old;
        let (new_price, new_decimals, new_threshold, new_liquidity, new_borrow) = new;
        let price = match (old_price, new_price) {
            (Some(old), Some(new)) => new.cmp(old),
            (old, new) if old == new => std::cmp::Ordering::Equal,
            _ => return AssetDrift::ANY,
        };
        if old_decimals != new_decimals {
            return AssetDrift::ANY;
        }
        AssetDrift {
            collateral: Drift::rising([
                price,
                new_threshold.cmp(old_threshold),
                new_liquidity.cmp(old_liquidity),
            ]),
            debt: Drift::falling([price, new_borrow.cmp(old_borrow)]),
        }
    }

    /// Every checked step of [`PairView::exposed`] grows with both balances, so the widest
    /// member fails first.
    fn bounded(view: &PairView, widest: &Member) -> bool {
        view.exposed(widest).is_ok()
    }

    fn found_member(view: &PairView, member: &Member) -> Result<Option<Found>, EngineError> {
        Ok(view.liquidatable(member)?.map(Found::from))
    }

    fn exposed_member(view: &PairView, member: &Member) -> Result<Option<Exposed>, EngineError> {
        view.exposed(member)
    }

    fn found_account(&self, account: &Account) -> Result<Option<Found>, EngineError> {
        Ok(self.liquidatable(account)?.map(Found::from))
    }

    fn exposed_account(&self, account: &Account) -> Result<Option<Exposed>, EngineError> {
        Ok(self.liquidatable(account)?.map(Exposed::from))
    }

    /// `calculateUserAccountData`: the health factor and the total debt in the base currency.
    fn distribution_point(&self, account: &Account) -> Point {
        distribution_point(self.account_data(account).ok().flatten())
    }

    fn health(&self, account: &Account) -> Result<Option<AccountData>, EngineError> {
        self.account_data(account)
    }

    fn side_value(
        &self,
        asset: &Id,
        position: &Position,
        collateral_side: bool,
    ) -> Option<Option<U256>> {
        let reserve = self.reserves.get(asset)?;
        let amount = if collateral_side {
            if !position.collateral_enabled || reserve.liquidation_threshold == 0 {
                return Some(None);
            }
            ray_mul(position.scaled_collateral, reserve.liquidity_index)?
        } else {
            ray_mul(position.scaled_debt, reserve.borrow_index)?
        };
        if amount.is_zero() {
            return Some(None);
        }
        Some(Some(
            self.price(asset)?.checked_mul(amount)? / unit(reserve.decimals?)?,
        ))
    }

    fn context(
        &self,
        account: &Account,
        health: AccountData,
        collateral: &Id,
        debt: &Id,
    ) -> Result<Option<LiquidationCallContext>, EngineError> {
        self.context(account, health, collateral, debt)
    }

    fn simulated_quote(
        &self,
        context: &LiquidationCallContext,
        max_repay: Option<U256>,
    ) -> Result<Option<LiquidationCallQuote>, EngineError> {
        Ok(simulated_quote(context, max_repay.unwrap_or(U256::MAX)))
    }

    /// Both at the oracle price in the base currency: the bonus net of a v3 protocol fee.
    fn liquidator_gain(
        &self,
        _context: &LiquidationCallContext,
        quote: &LiquidationCallQuote,
        collateral: &Id,
        debt: &Id,
    ) -> Option<U256> {
        let received = self.value(collateral, quote.collateral_to_liquidator)?;
        let paid = self.value(debt, quote.debt_repaid)?;
        Some(received.saturating_sub(paid))
    }

    fn taken(quote: &LiquidationCallQuote) -> (U256, U256) {
        (quote.collateral_taken(), quote.debt_repaid)
    }

    fn simulated(
        &self,
        _context: &LiquidationCallContext,
        quote: &LiquidationCallQuote,
        left: U256,
        collateral: &Id,
        debt: &Id,
    ) -> (&'static str, [Quantity; 4]) {
        (
            self.rule(),
            [
                self.quantity(quote.collateral_taken(), collateral),
                self.quantity(quote.collateral_to_liquidator, collateral),
                self.quantity(quote.debt_repaid, debt),
                self.quantity(left, debt),
            ],
        )
    }

    /// Removes `debt` of `debt_asset` and `collateral` (everything leaving the borrower) of
    /// `collateral_asset`, as `burn`/`transferOnLiquidation` do; v3.3 then burns the remaining
    /// debt as deficit when no collateral is left, which is the debt left unbacked (in the
    /// liquidated debt asset).
    fn take(
        &mut self,
        account: Option<&mut Account>,
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
        let Some(account) = account else {
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
        if self.version == AaveVersion::V3_3 && no_collateral {
            for (asset, position) in account.positions.iter_mut() {
                if asset == debt_asset {
                    deficit = ray_mul(position.scaled_debt, borrow_index).ok_or_else(overflow)?;
                }
                position.scaled_debt = U256::ZERO;
            }
        }
        Ok((clamped_c || clamped_d, deficit))
    }

    /// The recorded amounts; v3 takes the protocol fee on top of what the event reports for the
    /// liquidator.
    fn recorded_take(&self, liquidation: &Liquidation) -> Result<Step<(U256, U256)>, EngineError> {
        let reserve = self
            .reserves
            .get(&liquidation.collateral_asset)
            .cloned()
            .unwrap_or_default();
        let fee_context = LiquidationCallContext {
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
        Ok(Step::Go((
            received.saturating_add(fee),
            liquidation.debt_repaid.0,
        )))
    }

    fn judge(
        &self,
        account: Option<&Account>,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let Some(account) = account else {
            return self.judge_seize_only(liquidation, time);
        };
        let collateral = &liquidation.collateral_asset;
        let debt = &liquidation.debt_asset;
        let (c_decimals, d_decimals) = (
            self.decimals_or_zero(collateral),
            self.decimals_or_zero(debt),
        );
        let context = match self.account_data(account)? {
            Some(data) => self.context(account, data, collateral, debt)?,
            None => None,
        };
        let Some(context) = context else {
            let missing = [collateral, debt]
                .into_iter()
                .chain(account.positions.keys())
                .find_map(|asset| self.missing_input(asset));
            return Ok(match missing {
                Some(missing) => Judgement::no_price(self.rule(), c_decimals, d_decimals, missing),
                None => {
                    let mut judgement =
                        Judgement::bare(Verdict::NoPrice, self.rule(), c_decimals, d_decimals);
                    judgement.note = Some("no value within 256 bits".to_owned());
                    judgement
                }
            });
        };
        let recorded_debt = liquidation.debt_repaid.0;
        let recorded_collateral = liquidation.collateral_seized.0;
        let mut judgement =
            Judgement::bare(Verdict::Explained, self.rule(), c_decimals, d_decimals);
        judgement.health = Some(Quantity::new(context.account.health_factor, 18));
        judgement.oracle = Some(self.collateral_price_evidence(&context, collateral, time));
        match logic::explain(&context, recorded_debt, recorded_collateral) {
            logic::Explanation::Match(quote) => {
                expect_quote(&mut judgement, &context, &quote);
                judgement.note = match_notes(&quote, recorded_debt, recorded_collateral);
            }
            logic::Explanation::Mismatch(quote) => {
                let differs = formula_mismatch(
                    &mut judgement,
                    &context,
                    &quote,
                    recorded_debt,
                    recorded_collateral,
                );
                judgement.verdict = Verdict::AmountMismatch;
                judgement.note = Some(differs);
            }
            logic::Explanation::Refused(
                LiquidationCallRefusal::HealthFactorNotBelowThreshold { .. },
            ) => {
                judgement.verdict = Verdict::NotLiquidatable;
            }
            logic::Explanation::Refused(refusal) => {
                judgement.verdict = Verdict::AmountMismatch;
                judgement.note = Some(
                    match refusal {
                        LiquidationCallRefusal::CollateralNotEnabled => {
                            "the rebuilt account does not use this collateral"
                        }
                        LiquidationCallRefusal::NoDebt => "the rebuilt account has no debt in this reserve",
                        LiquidationCallRefusal::WouldLeaveDust => {
                            "v3.3 refuses it as dust: it would leave less than 1,000 USD of debt or collateral"
                        }
                        LiquidationCallRefusal::Arithmetic
                        | LiquidationCallRefusal::HealthFactorNotBelowThreshold { .. } => {
                            "a zero price or an overflow: the contract would revert"
                        }
                    }
                    .to_owned(),
                );
            }
        }
        Ok(judgement)
    }

    fn encode(&self, out: &mut StateWriter) {
        out.u8(match self.version {
            AaveVersion::V2 => 2,
            AaveVersion::V3 => 3,
            AaveVersion::V3_3 => 33,
        });
        out.u256(self.close_factor);
        out.count(self.reserves.len());
        for (asset, reserve) in self.reserves.iter() {
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
        for (asset, price) in self.prices.iter() {
            out.id(asset);
            out.u256(*price);
        }
        out.count(self.price_sources.len());
        for (asset, (feed, time)) in &self.price_sources {
            out.id(asset);
            out.id(feed);
            out.time(*time);
        }
    }

    fn decode(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.version = match input.u8()? {
            2 => AaveVersion::V2,
            3 => AaveVersion::V3,
            33 => AaveVersion::V3_3,
            other => return Err(input.error(format!("unknown Aave rule version {other}"))),
        };
        self.close_factor = input.u256()?;
        let mut reserves = SmallMap::default();
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
        let mut prices = SmallMap::default();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            prices.insert(asset, input.u256()?);
        }
        let mut price_sources = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            price_sources.insert(asset, (input.id()?, input.time()?));
        }
        self.reserves = reserves;
        self.prices = prices;
        self.price_sources = price_sources;
        Ok(())
    }

    fn encode_position(position: &Position, out: &mut StateWriter) {
        out.u256(position.scaled_collateral);
        out.u256(position.scaled_debt);
        out.bool(position.collateral_enabled);
    }

    fn decode_position(input: &mut StateReader<'_>) -> Result<Position, EngineError> {
        Ok(Position {
            scaled_collateral: input.u256()?,
            scaled_debt: input.u256()?,
            collateral_enabled: input.bool()?,
        })
    }

    fn account_position(
        &self,
        market: Id,
        id: Id,
        account: &Account,
    ) -> (Option<crate::protocol::accounts::AccountPosition>, Point) {
        self.position_of(market, id, account)
    }

    fn snapshot(
        &mut self,
        snapshot: &cascade_events::PositionSnapshot,
    ) -> Result<(Position, Applied), EngineError> {
        self.snapshot_position(snapshot)
    }

    fn snapshot_side(
        &self,
        asset: &Id,
        position: &Position,
    ) -> crate::protocol::accounts::SnapshotSide {
        self.snapshot_side_of(asset, position)
    }

    fn refuses_totals(&self, totals: &cascade_events::AccountTotals) -> Option<&'static str> {
        Self::totals_refused(totals)
    }

    fn totals_position(
        &self,
        market: Id,
        id: Id,
        totals: &crate::lending::TotalsAccount,
    ) -> Option<crate::protocol::accounts::AccountPosition> {
        Some(self.totals_position_of(market, id, totals))
    }

    fn judge_totals(
        &self,
        totals: &crate::lending::TotalsAccount,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        self.judge_totals_account(totals, liquidation, time)
    }
}

/// An account's place in the health distribution from its `calculateUserAccountData` (`None`:
/// a price or decimals missing).
fn distribution_point(data: Option<AccountData>) -> Point {
    match data {
        Some(data) if data.total_debt_base.is_zero() && data.total_collateral_base.is_zero() => {
            Point::Empty
        }
        Some(data) => Point::At(data.health_factor, data.total_debt_base),
        None => Point::Unpriced,
    }
}
