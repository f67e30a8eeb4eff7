//! Aave's account and liquidation arithmetic, version by version.
//!
//! Each function mirrors one piece of the contracts, with the same operation order and rounding,
//! so the engine reproduces on-chain numbers to the wei:
//! - [`account_data`] mirrors `GenericLogic.calculateUserAccountData` and
//!   `calculateHealthFactorFromBalances` (v2 `aave/protocol-v2`, v3 `aave/aave-v3-core`, v3.3
//!   `aave-dao/aave-v3-origin`; the three agree for the health factor).
//! - [`max_liquidatable_debt`] mirrors the close factor (v2 `LendingPoolCollateralManager.liquidationCall`,
//!   v3.0-3.2 `LiquidationLogic._calculateDebt`, v3.3 `LiquidationLogic.executeLiquidationCall`).
//! - [`available_collateral`] mirrors `_calculateAvailableCollateralToLiquidate`, including the cap at
//!   the borrower's balance and (v3) the liquidation protocol fee.
//! - [`liquidation_call`] mirrors the whole decision of one `liquidationCall`: validation, close factor,
//!   collateral, and the v3.3 rule that a liquidation must not leave dust.
//!
//! Everything here is pure: no state, no oracle, no events. Balances passed in are underlying
//! amounts (`aToken.balanceOf`, i.e. scaled balance `rayMul` index), prices are the oracle's
//! answers (v2: ETH wei per whole token; v3: base currency, USD with 8 decimals). What this module
//! must never do is approximate: a result the contract would compute differently is a bug here.

use cascade_events::U256;

use super::math::{percent_div, percent_mul, unit, wad_div};

/// Health factor below which an account can be liquidated: `HEALTH_FACTOR_LIQUIDATION_THRESHOLD`,
/// 1.0 as a wad.
pub const HEALTH_FACTOR_LIQUIDATION_THRESHOLD: U256 =
    U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

/// v3 `CLOSE_FACTOR_HF_THRESHOLD`: 0.95 as a wad. At or below it, the whole debt may be repaid.
pub const CLOSE_FACTOR_HF_THRESHOLD: U256 = U256::from_limbs([950_000_000_000_000_000, 0, 0, 0]);

/// `DEFAULT_LIQUIDATION_CLOSE_FACTOR` (v3) and `LIQUIDATION_CLOSE_FACTOR_PERCENT` (v2): 50.00%.
pub const DEFAULT_LIQUIDATION_CLOSE_FACTOR: U256 = U256::from_limbs([5_000, 0, 0, 0]);

/// v3 `MAX_LIQUIDATION_CLOSE_FACTOR`: 100.00%.
pub const MAX_LIQUIDATION_CLOSE_FACTOR: U256 = U256::from_limbs([10_000, 0, 0, 0]);

/// v3.3 `MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD`: 2,000 USD in the 8-decimal base currency. A
/// reserve position (collateral or debt) worth less may be liquidated in full at any health
/// factor below 1.
pub const MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD: U256 = U256::from_limbs([200_000_000_000, 0, 0, 0]);

/// v3.3 `MIN_LEFTOVER_BASE`: half of [`MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD`], 1,000 USD. A partial
/// liquidation must leave at least this much debt and collateral in the reserves it touches.
pub const MIN_LEFTOVER_BASE: U256 = U256::from_limbs([100_000_000_000, 0, 0, 0]);

/// Which contract generation's liquidation rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AaveVersion {
    /// Aave v2 `LendingPool`: close factor always 50%, no protocol fee.
    V2,
    /// Aave v3.0 to v3.2: close factor 50%, or 100% when the health factor is at or below 0.95;
    /// the collateral reserve's liquidation protocol fee is taken out of the bonus.
    V3,
    /// Aave v3.3 and later: as v3, plus 100% close factor for small positions (under 2,000 USD of
    /// collateral or debt in the reserves liquidated), the 50% cap measured against the account's
    /// whole debt, and the rule that a partial liquidation must not leave less than 1,000 USD.
    V3_3,
}

/// One reserve of an account, as `calculateUserAccountData` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveExposure {
    /// Oracle price of one whole token (`getAssetPrice`).
    pub price: U256,
    /// Token decimals (`assetUnit = 10^decimals`).
    pub decimals: u8,
    /// Liquidation threshold in basis points; a zero threshold makes the deposit worthless as
    /// collateral, as in the contract.
    pub liquidation_threshold: u16,
    /// Underlying balance counted as collateral: zero unless the account uses the reserve as
    /// collateral.
    pub collateral: U256,
    /// Underlying debt (variable and stable) in the reserve.
    pub debt: U256,
}

/// What `calculateUserAccountData` returns that the liquidation logic reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountData {
    /// Sum of collateral in base currency (v2: ETH wei).
    pub total_collateral_base: U256,
    /// Sum of debt in base currency.
    pub total_debt_base: U256,
    /// Collateral-weighted average liquidation threshold in basis points, truncated.
    pub avg_liquidation_threshold: U256,
    /// Health factor as a wad; `U256::MAX` without debt.
    pub health_factor: U256,
}

/// `GenericLogic.calculateUserAccountData` restricted to what liquidations need: per reserve,
/// `price * balance / 10^decimals` truncated (collateral only where the threshold is non-zero),
/// the threshold averaged with truncation, then
/// `calculateHealthFactorFromBalances = percentMul(collateral, avgThreshold).wadDiv(debt)`.
///
/// `None` when a product overflows 256 bits (the contract would revert).
pub fn account_data(exposures: impl IntoIterator<Item = ReserveExposure>) -> Option<AccountData> {
    let mut total_collateral = U256::ZERO;
    let mut total_debt = U256::ZERO;
    let mut weighted_threshold = U256::ZERO;
    for reserve in exposures {
        let asset_unit = unit(reserve.decimals)?;
        if reserve.liquidation_threshold != 0 && !reserve.collateral.is_zero() {
            let value = reserve.price.checked_mul(reserve.collateral)? / asset_unit;
            total_collateral = total_collateral.checked_add(value)?;
            weighted_threshold = weighted_threshold
                .checked_add(value.checked_mul(U256::from(reserve.liquidation_threshold))?)?;
        }
        if !reserve.debt.is_zero() {
            let value = reserve.price.checked_mul(reserve.debt)? / asset_unit;
            total_debt = total_debt.checked_add(value)?;
        }
    }
    let avg_liquidation_threshold = if total_collateral.is_zero() {
        U256::ZERO
    } else {
        weighted_threshold / total_collateral
    };
    Some(AccountData {
        total_collateral_base: total_collateral,
        total_debt_base: total_debt,
        avg_liquidation_threshold,
        health_factor: health_factor(total_collateral, total_debt, avg_liquidation_threshold)?,
    })
}

/// `GenericLogic.calculateHealthFactorFromBalances`: `U256::MAX` without debt, else
/// `percentMul(collateral, threshold).wadDiv(debt)`.
pub fn health_factor(
    total_collateral_base: U256,
    total_debt_base: U256,
    liquidation_threshold: U256,
) -> Option<U256> {
    if total_debt_base.is_zero() {
        return Some(U256::MAX);
    }
    wad_div(
        percent_mul(total_collateral_base, liquidation_threshold)?,
        total_debt_base,
    )
}

/// One side of a liquidation: a reserve's price and decimals and the borrower's balance in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveSide {
    /// Oracle price of one whole token.
    pub price: U256,
    /// Token decimals.
    pub decimals: u8,
    /// The borrower's underlying balance: collateral (`aToken.balanceOf`) on the collateral side,
    /// debt (variable plus stable) on the debt side.
    pub balance: U256,
}

/// Everything `liquidationCall` reads besides the amount the liquidator offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationCallContext {
    /// Rules to apply.
    pub version: AaveVersion,
    /// The borrower's account data before the liquidation.
    pub account: AccountData,
    /// Collateral reserve and balance.
    pub collateral: ReserveSide,
    /// Debt reserve and balance.
    pub debt: ReserveSide,
    /// Whether the borrower uses the collateral reserve as collateral and its threshold is
    /// non-zero (`isCollateralEnabled` in `validateLiquidationCall`).
    pub collateral_enabled: bool,
    /// Collateral reserve liquidation bonus in basis points (10500 = 5% bonus).
    pub liquidation_bonus: u16,
    /// Collateral reserve liquidation protocol fee in basis points of the bonus (v3; ignored in
    /// v2).
    pub liquidation_protocol_fee: u16,
    /// The default close factor in basis points: the contracts' constant 5000
    /// ([`DEFAULT_LIQUIDATION_CLOSE_FACTOR`]), replaceable by a scenario.
    pub close_factor: U256,
}

/// The amounts one `liquidationCall` moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationCallQuote {
    /// Debt repaid by the liquidator (`actualDebtToLiquidate`, the event's `debtToCover`).
    pub debt_repaid: U256,
    /// Collateral sent to the liquidator (`liquidatedCollateralAmount` in the event).
    pub collateral_to_liquidator: U256,
    /// Collateral sent to the treasury as the protocol's share of the bonus (v3).
    pub protocol_fee: U256,
    /// The close factor's limit on the debt repaid, before the collateral cap.
    pub max_liquidatable_debt: U256,
    /// True when the borrower's collateral ran out first and the repayment was reduced to match.
    pub capped_by_collateral: bool,
}

impl LiquidationCallQuote {
    /// Collateral leaving the borrower: the liquidator's part plus the protocol fee.
    pub fn collateral_taken(&self) -> U256 {
        self.collateral_to_liquidator + self.protocol_fee
    }
}

/// Why a `liquidationCall` would revert (or, in v2, return an error code and do nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiquidationCallRefusal {
    /// Health factor at or above 1 (`HEALTH_FACTOR_NOT_BELOW_THRESHOLD`).
    HealthFactorNotBelowThreshold {
        /// The health factor, wad.
        health_factor: U256,
    },
    /// The collateral reserve is not enabled as collateral for the borrower, or its threshold is
    /// zero (`COLLATERAL_CANNOT_BE_LIQUIDATED`).
    CollateralNotEnabled,
    /// No debt in the debt reserve (`SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER`).
    NoDebt,
    /// v3.3: the liquidation would leave less than `MIN_LEFTOVER_BASE` of debt or collateral
    /// without clearing either (`MUST_NOT_LEAVE_DUST`).
    WouldLeaveDust,
    /// A zero price or an overflowing product: the contract reverts.
    Arithmetic,
}

/// The close factor's limit on the debt repaid in the debt reserve.
///
/// - v2: `percentMul(debt, 5000)`.
/// - v3.0-3.2 (`_calculateDebt`): `percentMul(debt, hf > 0.95 ? 5000 : 10000)`.
/// - v3.3: the whole reserve debt, unless the reserve's collateral and debt are both worth at
///   least 2,000 base units (USD) and the health factor is above 0.95; then, if the reserve debt
///   is worth more than half the account's total debt, that half converted back into the debt
///   token, truncated.
pub fn max_liquidatable_debt(context: &LiquidationCallContext) -> Option<U256> {
    let debt = context.debt.balance;
    match context.version {
        AaveVersion::V2 => percent_mul(debt, context.close_factor),
        AaveVersion::V3 => {
            let close_factor = if context.account.health_factor > CLOSE_FACTOR_HF_THRESHOLD {
                context.close_factor
            } else {
                MAX_LIQUIDATION_CLOSE_FACTOR
            };
            percent_mul(debt, close_factor)
        }
        AaveVersion::V3_3 => {
            let debt_unit = unit(context.debt.decimals)?;
            let collateral_unit = unit(context.collateral.decimals)?;
            let debt_base = debt.checked_mul(context.debt.price)? / debt_unit;
            let collateral_base = context
                .collateral
                .balance
                .checked_mul(context.collateral.price)?
                / collateral_unit;
            if collateral_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
                && debt_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
                && context.account.health_factor > CLOSE_FACTOR_HF_THRESHOLD
            {
                let half_total =
                    percent_mul(context.account.total_debt_base, context.close_factor)?;
                if debt_base > half_total {
                    if context.debt.price.is_zero() {
                        return None;
                    }
                    return Some(half_total.checked_mul(debt_unit)? / context.debt.price);
                }
            }
            Some(debt)
        }
    }
}

/// `_calculateAvailableCollateralToLiquidate`: collateral for `debt_to_cover`, capped at the
/// borrower's collateral balance (then the debt is reduced to what that collateral pays for),
/// and in v3 the protocol's share of the bonus split off. Returns the quote with
/// `max_liquidatable_debt` left at zero for the caller to fill.
///
/// The two generations differ in where the bonus is applied: v2 multiplies the bonus into the
/// numerator before the division (`(pDebt * debt * unitC).percentMul(bonus) / (pColl * unitD)`),
/// v3 divides first and applies the bonus to the truncated base amount.
pub fn available_collateral(
    context: &LiquidationCallContext,
    debt_to_cover: U256,
) -> Option<LiquidationCallQuote> {
    let collateral_unit = unit(context.collateral.decimals)?;
    let debt_unit = unit(context.debt.decimals)?;
    let bonus = U256::from(context.liquidation_bonus);
    let p_collateral = context.collateral.price;
    let p_debt = context.debt.price;
    let denominator = p_collateral.checked_mul(debt_unit)?;
    if denominator.is_zero() || p_debt.is_zero() {
        return None;
    }
    let numerator = p_debt
        .checked_mul(debt_to_cover)?
        .checked_mul(collateral_unit)?;
    let max_collateral = match context.version {
        AaveVersion::V2 => percent_mul(numerator, bonus)? / denominator,
        AaveVersion::V3 | AaveVersion::V3_3 => percent_mul(numerator / denominator, bonus)?,
    };
    let balance = context.collateral.balance;
    let (collateral, debt_needed, capped) = if max_collateral > balance {
        let base = p_collateral.checked_mul(balance)?.checked_mul(debt_unit)?
            / p_debt.checked_mul(collateral_unit)?;
        (balance, percent_div(base, bonus)?, true)
    } else {
        (max_collateral, debt_to_cover, false)
    };
    let protocol_fee = match context.version {
        AaveVersion::V2 => U256::ZERO,
        AaveVersion::V3 | AaveVersion::V3_3 => {
            if context.liquidation_protocol_fee == 0 {
                U256::ZERO
            } else {
                let bonus_collateral = collateral - percent_div(collateral, bonus)?;
                percent_mul(
                    bonus_collateral,
                    U256::from(context.liquidation_protocol_fee),
                )?
            }
        }
    };
    Some(LiquidationCallQuote {
        debt_repaid: debt_needed,
        collateral_to_liquidator: collateral - protocol_fee,
        protocol_fee,
        max_liquidatable_debt: U256::ZERO,
        capped_by_collateral: capped,
    })
}

/// The decision of one `liquidationCall(collateral, debt, user, debtToCover, ..)`: validate,
/// limit `debt_to_cover` by the close factor, compute the collateral, and (v3.3) refuse to leave
/// dust.
pub fn liquidation_call(
    context: &LiquidationCallContext,
    debt_to_cover: U256,
) -> Result<LiquidationCallQuote, LiquidationCallRefusal> {
    let health_factor = context.account.health_factor;
    if health_factor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD {
        return Err(LiquidationCallRefusal::HealthFactorNotBelowThreshold { health_factor });
    }
    if !context.collateral_enabled {
        return Err(LiquidationCallRefusal::CollateralNotEnabled);
    }
    if context.debt.balance.is_zero() {
        return Err(LiquidationCallRefusal::NoDebt);
    }
    let max_debt = max_liquidatable_debt(context).ok_or(LiquidationCallRefusal::Arithmetic)?;
    let offered = debt_to_cover.min(max_debt);
    let mut quote =
        available_collateral(context, offered).ok_or(LiquidationCallRefusal::Arithmetic)?;
    quote.max_liquidatable_debt = max_debt;
    if context.version == AaveVersion::V3_3 && leaves_dust(context, &quote)? {
        return Err(LiquidationCallRefusal::WouldLeaveDust);
    }
    Ok(quote)
}

/// v3.3: a liquidation that clears neither the reserve debt nor the collateral must leave at
/// least `MIN_LEFTOVER_BASE` of both (values truncated as in the contract).
fn leaves_dust(
    context: &LiquidationCallContext,
    quote: &LiquidationCallQuote,
) -> Result<bool, LiquidationCallRefusal> {
    let taken = quote.collateral_taken();
    if quote.debt_repaid >= context.debt.balance || taken >= context.collateral.balance {
        return Ok(false);
    }
    let value = |amount: U256, side: &ReserveSide| -> Option<U256> {
        Some(amount.checked_mul(side.price)? / unit(side.decimals)?)
    };
    let debt_left = value(context.debt.balance - quote.debt_repaid, &context.debt)
        .ok_or(LiquidationCallRefusal::Arithmetic)?;
    let collateral_left = value(context.collateral.balance - taken, &context.collateral)
        .ok_or(LiquidationCallRefusal::Arithmetic)?;
    Ok(debt_left < MIN_LEFTOVER_BASE || collateral_left < MIN_LEFTOVER_BASE)
}

/// How a recorded `LiquidationCall` compares with what the contract would have done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explanation {
    /// The formula reproduces the recorded amounts (see [`agrees`] for the tolerance).
    Match(LiquidationCallQuote),
    /// The formula gives other amounts; the quote is what it gives for the recorded repayment.
    Mismatch(LiquidationCallQuote),
    /// The contract would have refused this liquidation.
    Refused(LiquidationCallRefusal),
}

/// Judges a recorded liquidation (`debt_repaid`, `collateral_to_liquidator` as the event reports
/// them) against the full rules: validation, close factor, collateral, dust.
///
/// The event does not say what the liquidator offered (`debtToCover` in the call), only what was
/// repaid. Two offers reproduce every legitimate outcome: offering exactly the recorded
/// repayment (the usual case, including a repayment cut down to the close factor), and offering
/// everything (the case where the borrower's collateral ran out and the repayment was reduced to
/// what that collateral pays for).
pub fn explain(
    context: &LiquidationCallContext,
    debt_repaid: U256,
    collateral_to_liquidator: U256,
) -> Explanation {
    let matches = |quote: &LiquidationCallQuote| {
        agrees(quote.debt_repaid, debt_repaid)
            && agrees(quote.collateral_to_liquidator, collateral_to_liquidator)
    };
    let as_recorded = match liquidation_call(context, debt_repaid) {
        Ok(quote) => quote,
        Err(refusal) => return Explanation::Refused(refusal),
    };
    if matches(&as_recorded) {
        return Explanation::Match(as_recorded);
    }
    if let Ok(everything) = liquidation_call(context, U256::MAX)
        && everything.capped_by_collateral
        && matches(&everything)
    {
        return Explanation::Match(everything);
    }
    Explanation::Mismatch(as_recorded)
}

/// Checks only the seize formula of a recorded liquidation, for sources that record the
/// liquidation but not the account's positions: no health factor, no close factor, no dust
/// rule. The recorded amounts are explained when `_calculateAvailableCollateralToLiquidate`
/// gives the recorded collateral for the recorded repayment, or when the collateral cap explains
/// them: the recorded collateral was the borrower's whole balance and the repayment is exactly
/// what that collateral pays for.
///
/// `context.collateral.balance` and `context.debt.balance` are ignored.
pub fn explain_amounts(
    context: &LiquidationCallContext,
    debt_repaid: U256,
    collateral_to_liquidator: U256,
) -> Option<Explanation> {
    let mut uncapped = *context;
    uncapped.collateral.balance = U256::MAX;
    let quote = available_collateral(&uncapped, debt_repaid)?;
    if agrees(quote.collateral_to_liquidator, collateral_to_liquidator) {
        return Some(Explanation::Match(quote));
    }
    // The whole balance left the borrower (the liquidator's part plus the protocol fee) and
    // the repayment was cut to what it pays for. Any offer worth more collateral than that
    // balance gives the same outcome; twice the repayment is one.
    let mut capped = *context;
    capped.collateral.balance = collateral_to_liquidator
        .checked_add(fee_on_received(context, collateral_to_liquidator)?)?;
    let offer = debt_repaid
        .checked_mul(U256::from(2u8))?
        .checked_add(U256::from(1u8))?;
    let at_cap = available_collateral(&capped, offer)?;
    if at_cap.capped_by_collateral
        && agrees(at_cap.debt_repaid, debt_repaid)
        && agrees(at_cap.collateral_to_liquidator, collateral_to_liquidator)
    {
        return Some(Explanation::Match(at_cap));
    }
    Some(Explanation::Mismatch(quote))
}

/// The v3 protocol fee that accompanies `received` collateral paid to a liquidator: the fee is
/// defined on the total taken (`T - fee(T) = received`), so it is found by evaluating the fee
/// formula at the total implied by a first estimate. Zero in v2 or without a fee.
pub fn fee_on_received(context: &LiquidationCallContext, received: U256) -> Option<U256> {
    if context.version == AaveVersion::V2 || context.liquidation_protocol_fee == 0 {
        return Some(U256::ZERO);
    }
    let bonus = U256::from(context.liquidation_bonus);
    let fee_pct = U256::from(context.liquidation_protocol_fee);
    let fee_of = |total: U256| -> Option<U256> {
        percent_mul(total.checked_sub(percent_div(total, bonus)?)?, fee_pct)
    };
    let estimate = fee_of(received)?;
    fee_of(received.checked_add(estimate)?)
}

/// Whether a computed amount agrees with a recorded one: exactly, or within what a float could
/// not tell apart when the source printed the amount through one (a subgraph export that divided
/// by the decimals and wrote `1.046086896423974` WETH, which ingest turns into
/// `1046086896423974000` wei).
///
/// A recorded value is taken as float-printed when it ends in at least one zero and has at most
/// 17 significant digits (all a double carries); the shortest text that round-trips a double is
/// within one unit in the last place of it, and the double within half a unit of the true value,
/// so the tolerance is two units in the last place: `recorded / 2^51`. Any other value is
/// compared exactly.
pub fn agrees(computed: U256, recorded: U256) -> bool {
    if computed == recorded {
        return true;
    }
    if !float_printed(recorded) {
        return false;
    }
    let difference = if computed > recorded {
        computed - recorded
    } else {
        recorded - computed
    };
    difference <= recorded >> 51
}

/// At least one trailing decimal zero and at most 17 significant digits.
fn float_printed(recorded: U256) -> bool {
    let ten = U256::from(10u8);
    if recorded.is_zero() || !(recorded % ten).is_zero() {
        return false;
    }
    let mut significant = recorded;
    while (significant % ten).is_zero() {
        significant /= ten;
    }
    significant < U256::from(100_000_000_000_000_000u128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const E18: u128 = 1_000_000_000_000_000_000;

    fn u(value: u128) -> U256 {
        U256::from(value)
    }

    /// An account with plenty of both sides; tests override what they exercise.
    fn context(version: AaveVersion, health_factor: U256) -> LiquidationCallContext {
        LiquidationCallContext {
            version,
            account: AccountData {
                total_collateral_base: u(0),
                total_debt_base: u(0),
                avg_liquidation_threshold: u(8250),
                health_factor,
            },
            // 10 WETH at 1 ETH (v2 pricing: ETH wei per token).
            collateral: ReserveSide {
                price: u(E18),
                decimals: 18,
                balance: u(10 * E18),
            },
            // 10,000 USDC at 0.0005 ETH.
            debt: ReserveSide {
                price: u(500_000_000_000_000),
                decimals: 6,
                balance: u(10_000_000_000),
            },
            collateral_enabled: true,
            liquidation_bonus: 10500,
            liquidation_protocol_fee: 0,
            close_factor: DEFAULT_LIQUIDATION_CLOSE_FACTOR,
        }
    }

    #[test]
    fn account_data_truncates_the_average_threshold_like_generic_logic() {
        // 10 WETH (LT 82.5%) and 20,000 USDC at 0.0004 ETH (LT 85%); 9,000 DAI at 0.00041 ETH.
        let data = account_data([
            ReserveExposure {
                price: u(E18),
                decimals: 18,
                liquidation_threshold: 8250,
                collateral: u(10 * E18),
                debt: u(0),
            },
            ReserveExposure {
                price: u(400_000_000_000_000),
                decimals: 6,
                liquidation_threshold: 8500,
                collateral: u(20_000_000_000),
                debt: u(0),
            },
            ReserveExposure {
                price: u(410_000_000_000_000),
                decimals: 18,
                liquidation_threshold: 8000,
                collateral: u(0),
                debt: u(9_000 * E18),
            },
        ])
        .unwrap();
        assert_eq!(data.total_collateral_base, u(18 * E18));
        assert_eq!(data.total_debt_base, u(3_690_000_000_000_000_000));
        // (10e18 * 8250 + 8e18 * 8500) / 18e18 = 8361.1 -> 8361 (the contract truncates).
        assert_eq!(data.avg_liquidation_threshold, u(8361));
        // percentMul(18e18, 8361) = 15.0498e18; wadDiv by 3.69e18 = 4.078536585365853659 (half
        // up). Without the truncated average it would be 4.0785907...: the test pins the order.
        assert_eq!(data.health_factor, u(4_078_536_585_365_853_659));
    }

    #[test]
    fn zero_threshold_collateral_and_no_debt() {
        let data = account_data([ReserveExposure {
            price: u(E18),
            decimals: 18,
            liquidation_threshold: 0,
            collateral: u(5 * E18),
            debt: u(0),
        }])
        .unwrap();
        assert_eq!(
            data.total_collateral_base,
            u(0),
            "a 0 threshold reserve is not collateral"
        );
        assert_eq!(data.health_factor, U256::MAX);
    }

    #[test]
    fn v2_close_factor_is_half_rounded_up() {
        let mut ctx = context(AaveVersion::V2, u(E18 / 2));
        ctx.debt.balance = u(3);
        // percentMul(3, 5000) = (15000 + 5000) / 10000 = 2.
        assert_eq!(max_liquidatable_debt(&ctx), Some(u(2)));
    }

    #[test]
    fn v3_close_factor_switches_at_exactly_095() {
        // `healthFactor > CLOSE_FACTOR_HF_THRESHOLD ? 50% : 100%`: 0.95 itself gets 100%.
        let at = context(AaveVersion::V3, CLOSE_FACTOR_HF_THRESHOLD);
        assert_eq!(max_liquidatable_debt(&at), Some(u(10_000_000_000)));
        let above = context(AaveVersion::V3, CLOSE_FACTOR_HF_THRESHOLD + u(1));
        assert_eq!(max_liquidatable_debt(&above), Some(u(5_000_000_000)));
    }

    /// A v3.3 context in USD (8 decimals): `collateral_usd` of WETH at 2,000 USD and `debt_usd`
    /// of USDC at 1 USD, with the account's total debt `total_debt_usd`.
    fn v33(
        health_factor: U256,
        collateral_usd: u128,
        debt_usd: u128,
        total_debt_usd: u128,
    ) -> LiquidationCallContext {
        let mut ctx = context(AaveVersion::V3_3, health_factor);
        ctx.collateral = ReserveSide {
            price: u(2_000 * 100_000_000),
            decimals: 18,
            balance: u(collateral_usd * E18 / 2_000),
        };
        ctx.debt = ReserveSide {
            price: u(100_000_000),
            decimals: 6,
            balance: u(debt_usd * 1_000_000),
        };
        ctx.account.total_debt_base = u(total_debt_usd * 100_000_000);
        ctx
    }

    #[test]
    fn v33_close_factor_rules() {
        let hf = u(970_000_000_000_000_000);
        // Large position, reserve debt is all the debt: half of the total, converted back:
        // percentMul(10,000e8, 5000) = 5,000e8; * 1e6 / 1e8 = 5,000 USDC.
        assert_eq!(
            max_liquidatable_debt(&v33(hf, 20_000, 10_000, 10_000)),
            Some(u(5_000_000_000))
        );
        // Reserve debt (4,000) is not more than half the total (10,000): all of it.
        assert_eq!(
            max_liquidatable_debt(&v33(hf, 20_000, 4_000, 10_000)),
            Some(u(4_000_000_000))
        );
        // Debt under 2,000 USD in the reserve: all of it, whatever the health factor.
        assert_eq!(
            max_liquidatable_debt(&v33(hf, 20_000, 1_999, 1_999)),
            Some(u(1_999_000_000))
        );
        // Collateral exactly 2,000 USD counts as large (>=).
        assert_eq!(
            max_liquidatable_debt(&v33(hf, 2_000, 10_000, 10_000)),
            Some(u(5_000_000_000))
        );
        // At 0.95 the whole reserve debt.
        assert_eq!(
            max_liquidatable_debt(&v33(CLOSE_FACTOR_HF_THRESHOLD, 20_000, 10_000, 10_000)),
            Some(u(10_000_000_000))
        );
    }

    #[test]
    fn v2_seizes_debt_value_plus_bonus() {
        // 1,000 USDC at 0.0005 ETH = 0.5 ETH; * 105% = 0.525 ETH of WETH.
        let quote =
            available_collateral(&context(AaveVersion::V2, u(0)), u(1_000_000_000)).unwrap();
        assert_eq!(quote.collateral_to_liquidator, u(525_000_000_000_000_000));
        assert_eq!(quote.debt_repaid, u(1_000_000_000));
        assert!(!quote.capped_by_collateral);
    }

    #[test]
    fn v2_and_v3_round_the_bonus_in_a_different_place() {
        // 1 micro-USDC (0.0005 ETH/USDC) against collateral at 0.0003 ETH (18 decimals):
        // v2: percentMul(5e14 * 1 * 1e18, 10500) / (3e14 * 1e6) = 5.25e32 / 3e20 = 1750000000000.
        // v3: percentMul(5e32 / 3e20 = 1666666666666, 10500) = 1749999999999.3 -> 1749999999999.
        let mut ctx = context(AaveVersion::V2, u(0));
        ctx.collateral.price = u(300_000_000_000_000);
        assert_eq!(
            available_collateral(&ctx, u(1))
                .unwrap()
                .collateral_to_liquidator,
            u(1_750_000_000_000)
        );
        ctx.version = AaveVersion::V3;
        assert_eq!(
            available_collateral(&ctx, u(1))
                .unwrap()
                .collateral_to_liquidator,
            u(1_749_999_999_999)
        );
    }

    #[test]
    fn cap_at_collateral_balance_reduces_the_repayment() {
        // Only 0.1 WETH left: 0.1 ETH / 0.0005 = 200 USDC of value; percentDiv by 105% =
        // (200e6 * 10000 + 5250) / 10500 = 190476190.48 -> 190476190.
        let mut ctx = context(AaveVersion::V2, u(0));
        ctx.collateral.balance = u(E18 / 10);
        let quote = available_collateral(&ctx, u(1_000_000_000)).unwrap();
        assert!(quote.capped_by_collateral);
        assert_eq!(quote.collateral_to_liquidator, u(E18 / 10));
        assert_eq!(quote.debt_repaid, u(190_476_190));
    }

    #[test]
    fn v3_protocol_fee_comes_out_of_the_bonus() {
        // Collateral 1050 units for a 5% bonus: bonus part = 1050 - percentDiv(1050, 10500) =
        // 1050 - 1000 = 50; fee 10% of it = percentMul(50, 1000) = 5; liquidator gets 1045.
        let mut ctx = context(AaveVersion::V3, u(0));
        ctx.collateral = ReserveSide {
            price: u(1),
            decimals: 0,
            balance: u(1_000_000),
        };
        ctx.debt = ReserveSide {
            price: u(1),
            decimals: 0,
            balance: u(1_000_000),
        };
        ctx.liquidation_protocol_fee = 1000;
        let quote = available_collateral(&ctx, u(1000)).unwrap();
        assert_eq!(quote.protocol_fee, u(5));
        assert_eq!(quote.collateral_to_liquidator, u(1045));
        assert_eq!(quote.collateral_taken(), u(1050));
        // v2 ignores the fee field.
        ctx.version = AaveVersion::V2;
        assert_eq!(
            available_collateral(&ctx, u(1000)).unwrap().protocol_fee,
            u(0)
        );
    }

    #[test]
    fn liquidation_call_validates_like_the_contract() {
        let healthy = context(AaveVersion::V2, HEALTH_FACTOR_LIQUIDATION_THRESHOLD);
        assert_eq!(
            liquidation_call(&healthy, u(1)),
            Err(LiquidationCallRefusal::HealthFactorNotBelowThreshold {
                health_factor: HEALTH_FACTOR_LIQUIDATION_THRESHOLD
            })
        );
        let mut ctx = context(AaveVersion::V2, HEALTH_FACTOR_LIQUIDATION_THRESHOLD - u(1));
        ctx.collateral_enabled = false;
        assert_eq!(
            liquidation_call(&ctx, u(1)),
            Err(LiquidationCallRefusal::CollateralNotEnabled)
        );
        ctx.collateral_enabled = true;
        ctx.debt.balance = u(0);
        assert_eq!(
            liquidation_call(&ctx, u(1)),
            Err(LiquidationCallRefusal::NoDebt)
        );
        ctx.debt.price = u(0);
        ctx.debt.balance = u(1);
        assert_eq!(
            liquidation_call(&ctx, u(1)),
            Err(LiquidationCallRefusal::Arithmetic)
        );
    }

    #[test]
    fn liquidation_call_limits_the_offer_to_the_close_factor() {
        // Offering the whole 10,000 USDC in v2: only 5,000 is taken, for 2.625 WETH.
        let quote = liquidation_call(&context(AaveVersion::V2, u(E18 / 2)), U256::MAX).unwrap();
        assert_eq!(quote.max_liquidatable_debt, u(5_000_000_000));
        assert_eq!(quote.debt_repaid, u(5_000_000_000));
        assert_eq!(quote.collateral_to_liquidator, u(2_625_000_000_000_000_000));
    }

    #[test]
    fn v33_refuses_to_leave_dust() {
        let hf = u(900_000_000_000_000_000);
        // 10,000 USD of debt, 20,000 of collateral, HF 0.9 -> 100% close factor. Repaying 9,500
        // leaves 500 USD of debt: under MIN_LEFTOVER_BASE, refused.
        let ctx = v33(hf, 20_000, 10_000, 10_000);
        assert_eq!(
            liquidation_call(&ctx, u(9_500_000_000)),
            Err(LiquidationCallRefusal::WouldLeaveDust)
        );
        // Repaying 9,000 leaves exactly 1,000 USD: allowed (>=); collateral 9,000 * 1.05 /
        // 2,000 = 4.725 WETH.
        let quote = liquidation_call(&ctx, u(9_000_000_000)).unwrap();
        assert_eq!(quote.collateral_to_liquidator, u(4_725_000_000_000_000_000));
        // Repaying everything clears the debt: no dust rule.
        assert_eq!(
            liquidation_call(&ctx, U256::MAX).unwrap().debt_repaid,
            u(10_000_000_000)
        );
        // The same dust in v3.0 is fine.
        let mut v3 = ctx;
        v3.version = AaveVersion::V3;
        assert!(liquidation_call(&v3, u(9_500_000_000)).is_ok());
    }

    #[test]
    fn agrees_allows_float_noise_on_float_printed_values() {
        // A float-printed 1.046086896423974 WETH against the exact 1.046086896423973956.
        assert!(agrees(
            u(1_046_086_896_423_973_956),
            u(1_046_086_896_423_974_000)
        ));
        assert!(!agrees(
            u(1_046_086_896_423_972_999),
            u(1_046_086_896_423_974_000)
        ));
        // No trailing zero: exact only.
        assert!(!agrees(
            u(1_046_086_896_423_973_957),
            u(1_046_086_896_423_973_956)
        ));
        // 18 significant digits cannot come from a float: exact only.
        assert!(!agrees(
            u(1_046_086_896_423_973_951),
            u(1_046_086_896_423_973_950)
        ));
        assert!(agrees(u(0), u(0)));
    }

    #[test]
    fn explain_recognises_the_collateral_cap() {
        // 0.1 WETH left; the liquidator offered more than it pays for: the contract took all of
        // it and 190.476190 USDC (see `cap_at_collateral_balance_reduces_the_repayment`).
        // Offering exactly 190.476190 gives only 0.09999999975 WETH, so the cap must be tried.
        let mut ctx = context(AaveVersion::V2, u(E18 / 2));
        ctx.collateral.balance = u(E18 / 10);
        match explain(&ctx, u(190_476_190), u(E18 / 10)) {
            Explanation::Match(quote) => assert!(quote.capped_by_collateral),
            other => panic!("expected a capped match, got {other:?}"),
        }
        // One wei more collateral than the formula gives is a mismatch, with the formula's
        // numbers: 190.476190 USDC * 0.0005 * 1.05 = 0.09999999975 WETH.
        match explain(&ctx, u(190_476_190), u(99_999_999_750_000_001)) {
            Explanation::Mismatch(quote) => {
                assert_eq!(quote.collateral_to_liquidator, u(99_999_999_750_000_000))
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        let healthy = context(AaveVersion::V2, u(E18));
        assert!(matches!(
            explain(&healthy, u(1), u(1)),
            Explanation::Refused(LiquidationCallRefusal::HealthFactorNotBelowThreshold { .. })
        ));
    }

    #[test]
    fn explain_amounts_without_positions() {
        let ctx = context(AaveVersion::V2, u(0));
        // 1,000 USDC for 0.525 WETH: the formula.
        assert!(matches!(
            explain_amounts(&ctx, u(1_000_000_000), u(525_000_000_000_000_000)),
            Some(Explanation::Match(_))
        ));
        // 190.476190 USDC for 0.1 WETH: only the cap explains it.
        match explain_amounts(&ctx, u(190_476_190), u(E18 / 10)) {
            Some(Explanation::Match(quote)) => assert!(quote.capped_by_collateral),
            other => panic!("expected a capped match, got {other:?}"),
        }
        // 1,000 USDC for 0.6 WETH: more than the formula allows, never explained.
        assert!(matches!(
            explain_amounts(&ctx, u(1_000_000_000), u(600_000_000_000_000_000)),
            Some(Explanation::Mismatch(_))
        ));
    }

    #[test]
    fn fee_on_received_inverts_the_fee_split() {
        // 1050 taken = 1045 to the liquidator + 5 fee (see the fee test above).
        let mut ctx = context(AaveVersion::V3, u(0));
        ctx.liquidation_protocol_fee = 1000;
        assert_eq!(fee_on_received(&ctx, u(1045)), Some(u(5)));
        ctx.version = AaveVersion::V2;
        assert_eq!(fee_on_received(&ctx, u(1045)), Some(u(0)));
    }

    fn any_version() -> impl Strategy<Value = AaveVersion> {
        prop_oneof![
            Just(AaveVersion::V2),
            Just(AaveVersion::V3),
            Just(AaveVersion::V3_3)
        ]
    }

    proptest! {
        #[test]
        fn a_liquidation_stays_within_close_factor_and_balances(
            version in any_version(),
            hf in 0u128..E18,
            debt_balance in 1u128..1_000_000_000_000_000_000_000_000,
            collateral_balance in 0u128..1_000_000_000_000_000_000_000_000,
            offer in any::<u128>(),
            p_debt in 1u128..100_000_000_000_000_000_000,
            p_coll in 1u128..100_000_000_000_000_000_000,
            d_dec in 0u8..=18,
            c_dec in 0u8..=18,
            bonus in 10_000u16..=12_500,
            fee in 0u16..=10_000,
            total_extra in 0u128..1_000_000_000_000_000,
        ) {
            let mut ctx = context(version, U256::from(hf));
            ctx.debt = ReserveSide { price: U256::from(p_debt), decimals: d_dec, balance: U256::from(debt_balance) };
            ctx.collateral = ReserveSide { price: U256::from(p_coll), decimals: c_dec, balance: U256::from(collateral_balance) };
            ctx.liquidation_bonus = bonus;
            ctx.liquidation_protocol_fee = fee;
            let debt_base = U256::from(debt_balance) * U256::from(p_debt) / unit(d_dec).unwrap();
            ctx.account.total_debt_base = debt_base + U256::from(total_extra);
            match liquidation_call(&ctx, U256::from(offer)) {
                Ok(quote) => {
                    prop_assert!(quote.debt_repaid <= quote.max_liquidatable_debt);
                    prop_assert!(quote.debt_repaid <= U256::from(offer));
                    prop_assert!(quote.debt_repaid <= U256::from(debt_balance));
                    prop_assert!(quote.collateral_taken() <= U256::from(collateral_balance));
                    prop_assert!(quote.protocol_fee <= quote.collateral_taken());
                    if version == AaveVersion::V2 {
                        prop_assert!(quote.max_liquidatable_debt <= percent_mul(U256::from(debt_balance), DEFAULT_LIQUIDATION_CLOSE_FACTOR).unwrap());
                    }
                }
                Err(LiquidationCallRefusal::WouldLeaveDust) => prop_assert_eq!(version, AaveVersion::V3_3),
                Err(other) => prop_assert!(false, "unexpected refusal {:?}", other),
            }
        }
    }
}
