//! Compound v2 account liquidity and liquidation arithmetic.
//!
//! Each function mirrors the contract with its operation order and rounding:
//! - [`account_liquidity`] mirrors `Comptroller.getHypotheticalAccountLiquidityInternal` (no
//!   hypothetical effects): per entered market `tokensToDenom = collateralFactor * exchangeRate *
//!   price` (two `Exp` products), `sumCollateral += tokensToDenom * cTokenBalance` and
//!   `sumBorrowPlusEffects += price * borrowBalance` (both `mul_ScalarTruncateAddUInt`).
//! - [`borrow_balance_stored`] mirrors `CToken.borrowBalanceStoredInternal`,
//!   `principal * borrowIndex / interestIndex`.
//! - [`max_close`] mirrors `liquidateBorrowAllowed`'s `mul_ScalarTruncate(closeFactor, borrowBalance)`.
//! - [`seize_tokens`] mirrors `Comptroller.liquidateCalculateSeizeTokens`.
//! - [`liquidate_borrow`] mirrors the checks and amounts of `CToken.liquidateBorrowFresh` and
//!   `seizeInternal` (including `protocolSeizeShareMantissa`).
//!
//! Prices are `getUnderlyingPrice` mantissas: value of one base unit of the underlying scaled by
//! 1e18, i.e. `price per whole token * 10^(36 - underlying decimals)`. Exchange rates are
//! `exchangeRateStored` mantissas (underlying base units per cToken base unit, scaled by 1e18).
//! Everything here is pure; it must never round differently from the contracts.

use cascade_events::U256;

use super::exp::{Rounding, div_exp, mul_exp, mul_scalar_truncate};

/// One market an account has entered, as the Comptroller reads it (`getAccountSnapshot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketExposure {
    /// `collateralFactorMantissa` (0.75e18 = 75%).
    pub collateral_factor: U256,
    /// `exchangeRateStored` mantissa.
    pub exchange_rate: U256,
    /// `getUnderlyingPrice` mantissa.
    pub price: U256,
    /// The account's cToken balance; zero when the market does not count as collateral.
    pub ctoken_balance: U256,
    /// The account's borrow balance in underlying base units (`borrowBalanceStored`).
    pub borrow_balance: U256,
}

/// `sumCollateral` and `sumBorrowPlusEffects` of `getHypotheticalAccountLiquidityInternal`, in
/// the oracle's unit scaled by 1e18 (USD for the open price feed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLiquidity {
    /// Collateral value weighted by collateral factors.
    pub sum_collateral: U256,
    /// Borrow value.
    pub sum_borrow: U256,
}

impl AccountLiquidity {
    /// `shortfall`: how far borrows exceed weighted collateral; an account is liquidatable
    /// exactly when this is non-zero.
    pub fn shortfall(&self) -> U256 {
        self.sum_borrow.saturating_sub(self.sum_collateral)
    }

    /// `liquidity`: how far weighted collateral exceeds borrows.
    pub fn liquidity(&self) -> U256 {
        self.sum_collateral.saturating_sub(self.sum_borrow)
    }
}

/// `getHypotheticalAccountLiquidityInternal(account, 0, 0, 0)` over the entered markets.
/// `None` on overflow (the contract reverts) or a zero price (`PRICE_ERROR`).
pub fn account_liquidity(
    markets: impl IntoIterator<Item = MarketExposure>,
    rounding: Rounding,
) -> Option<AccountLiquidity> {
    let mut sum_collateral = U256::ZERO;
    let mut sum_borrow = U256::ZERO;
    for market in markets {
        if market.price.is_zero() {
            return None;
        }
        let tokens_to_denom = mul_exp(
            mul_exp(market.collateral_factor, market.exchange_rate, rounding)?,
            market.price,
            rounding,
        )?;
        sum_collateral = sum_collateral
            .checked_add(mul_scalar_truncate(tokens_to_denom, market.ctoken_balance)?)?;
        sum_borrow =
            sum_borrow.checked_add(mul_scalar_truncate(market.price, market.borrow_balance)?)?;
    }
    Some(AccountLiquidity {
        sum_collateral,
        sum_borrow,
    })
}

/// `borrowBalanceStoredInternal`: zero without principal, else
/// `principal * borrowIndex / interestIndex` truncated. `None` when the account's index is zero
/// with a non-zero principal (impossible on chain) or on overflow.
pub fn borrow_balance_stored(
    principal: U256,
    borrow_index: U256,
    interest_index: U256,
) -> Option<U256> {
    if principal.is_zero() {
        return Some(U256::ZERO);
    }
    if interest_index.is_zero() {
        return None;
    }
    Some(principal.checked_mul(borrow_index)? / interest_index)
}

/// `liquidateBorrowAllowed`: the most one liquidation may repay,
/// `mul_ScalarTruncate(closeFactor, borrowBalance)`.
pub fn max_close(close_factor: U256, borrow_balance: U256) -> Option<U256> {
    mul_scalar_truncate(close_factor, borrow_balance)
}

/// `liquidateCalculateSeizeTokens`: cTokens of the collateral market for `repay` of the borrowed
/// underlying, `repay * (incentive * priceBorrowed) / (priceCollateral * exchangeRate)` with
/// each step rounded as the contract does. `None` on a zero price (`PRICE_ERROR`) or rate.
pub fn seize_tokens(
    liquidation_incentive: U256,
    price_borrowed: U256,
    price_collateral: U256,
    exchange_rate: U256,
    repay: U256,
    rounding: Rounding,
) -> Option<U256> {
    if price_borrowed.is_zero() || price_collateral.is_zero() {
        return None;
    }
    let numerator = mul_exp(liquidation_incentive, price_borrowed, rounding)?;
    let denominator = mul_exp(price_collateral, exchange_rate, rounding)?;
    let ratio = div_exp(numerator, denominator)?;
    mul_scalar_truncate(ratio, repay)
}

/// Everything `liquidateBorrow` reads besides the repay amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidateBorrowContext {
    /// The borrower's liquidity over all entered markets.
    pub liquidity: AccountLiquidity,
    /// Borrowed market: `borrowBalanceStored(borrower)`.
    pub borrow_balance: U256,
    /// Borrowed market price mantissa.
    pub price_borrowed: U256,
    /// Collateral market price mantissa.
    pub price_collateral: U256,
    /// Collateral market `exchangeRateStored`.
    pub exchange_rate: U256,
    /// The borrower's cToken balance in the collateral market.
    pub collateral_ctokens: U256,
    /// `closeFactorMantissa`.
    pub close_factor: U256,
    /// `liquidationIncentiveMantissa` (1.08e18 = 8% bonus).
    pub liquidation_incentive: U256,
    /// Collateral cToken `protocolSeizeShareMantissa` (0 before it existed; 0.028e18 after).
    pub protocol_seize_share: U256,
    /// `Exp` library generation of the Comptroller in force.
    pub rounding: Rounding,
}

/// The amounts one `liquidateBorrow` moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidateBorrowQuote {
    /// Underlying repaid (`actualRepayAmount`).
    pub repaid: U256,
    /// cTokens taken from the borrower (`seizeTokens`, the event's field).
    pub seize_tokens: U256,
    /// Of those, cTokens the liquidator receives (`liquidatorSeizeTokens`).
    pub liquidator_tokens: U256,
    /// Of those, cTokens turned into reserves (`protocolSeizeTokens`).
    pub protocol_tokens: U256,
    /// The close factor's limit on `repaid`.
    pub max_close: U256,
}

/// Why `liquidateBorrow` would fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiquidateBorrowRefusal {
    /// No shortfall (`INSUFFICIENT_SHORTFALL`).
    InsufficientShortfall {
        /// Liquidity left, oracle unit scaled by 1e18.
        liquidity: U256,
    },
    /// Repaying zero (`LIQUIDATE_CLOSE_AMOUNT_IS_ZERO`).
    ZeroRepay,
    /// More than the close factor allows (`TOO_MUCH_REPAY`).
    TooMuchRepay {
        /// The limit.
        max_close: U256,
    },
    /// More cTokens to seize than the borrower holds (`LIQUIDATE_SEIZE_TOO_MUCH`).
    SeizeTooMuch {
        /// Tokens the formula asks for.
        seize_tokens: U256,
    },
    /// A zero price or rate, or an overflow (`PRICE_ERROR`, `MATH_ERROR`, a revert).
    Arithmetic,
}

/// `liquidateBorrowFresh` followed by `seizeInternal`, for a liquidator repaying `repay`.
/// Unlike Aave, Compound never reduces the amount: a repay above the close factor or one
/// seizing more than the borrower has fails outright.
pub fn liquidate_borrow(
    context: &LiquidateBorrowContext,
    repay: U256,
) -> Result<LiquidateBorrowQuote, LiquidateBorrowRefusal> {
    if context.liquidity.shortfall().is_zero() {
        return Err(LiquidateBorrowRefusal::InsufficientShortfall {
            liquidity: context.liquidity.liquidity(),
        });
    }
    if repay.is_zero() {
        return Err(LiquidateBorrowRefusal::ZeroRepay);
    }
    let max_close = max_close(context.close_factor, context.borrow_balance)
        .ok_or(LiquidateBorrowRefusal::Arithmetic)?;
    if repay > max_close {
        return Err(LiquidateBorrowRefusal::TooMuchRepay { max_close });
    }
    let seize = seize_tokens(
        context.liquidation_incentive,
        context.price_borrowed,
        context.price_collateral,
        context.exchange_rate,
        repay,
        context.rounding,
    )
    .ok_or(LiquidateBorrowRefusal::Arithmetic)?;
    if seize > context.collateral_ctokens {
        return Err(LiquidateBorrowRefusal::SeizeTooMuch {
            seize_tokens: seize,
        });
    }
    let protocol_tokens = mul_scalar_truncate(seize, context.protocol_seize_share)
        .ok_or(LiquidateBorrowRefusal::Arithmetic)?;
    Ok(LiquidateBorrowQuote {
        repaid: repay,
        seize_tokens: seize,
        liquidator_tokens: seize - protocol_tokens,
        protocol_tokens,
        max_close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const E18: u128 = 1_000_000_000_000_000_000;

    fn u(value: u128) -> U256 {
        U256::from(value)
    }

    /// 5,000 cETH at exchange rate 0.02 (mantissa 2e26 for 18-decimal ETH under an 8-decimal
    /// cToken) = 100 ETH at 2,000 USD, collateral factor 75%; 160,000 USDC borrowed (price
    /// mantissa 1e30 = 1 USD * 10^(36-6)).
    fn eth_usdc() -> [MarketExposure; 2] {
        [
            MarketExposure {
                collateral_factor: u(750_000_000_000_000_000),
                exchange_rate: u(200_000_000_000_000_000_000_000_000),
                price: u(2_000 * E18),
                ctoken_balance: u(500_000_000_000),
                borrow_balance: u(0),
            },
            MarketExposure {
                collateral_factor: u(800_000_000_000_000_000),
                exchange_rate: u(200_000_000_000_000),
                price: u(1_000_000_000_000 * E18),
                ctoken_balance: u(0),
                borrow_balance: u(160_000_000_000),
            },
        ]
    }

    fn context() -> LiquidateBorrowContext {
        LiquidateBorrowContext {
            liquidity: account_liquidity(eth_usdc(), Rounding::Truncate).unwrap(),
            borrow_balance: u(160_000_000_000),
            price_borrowed: u(1_000_000_000_000 * E18),
            price_collateral: u(2_000 * E18),
            exchange_rate: u(200_000_000_000_000_000_000_000_000),
            collateral_ctokens: u(500_000_000_000),
            close_factor: u(500_000_000_000_000_000),
            liquidation_incentive: u(1_080_000_000_000_000_000),
            protocol_seize_share: u(28_000_000_000_000_000),
            rounding: Rounding::Truncate,
        }
    }

    #[test]
    fn liquidity_sums_weighted_collateral_and_borrows() {
        // tokensToDenom = 0.75 * 2e26 / 1e18 = 1.5e26; * 2000e18 / 1e18 = 3e29;
        // sumCollateral = 3e29 * 5e11 / 1e18 = 1.5e23 (150,000 USD);
        // sumBorrow = 1e30 * 1.6e11 / 1e18 = 1.6e23 (160,000 USD); shortfall 10,000 USD.
        let liquidity = account_liquidity(eth_usdc(), Rounding::Truncate).unwrap();
        assert_eq!(liquidity.sum_collateral, u(150_000 * E18));
        assert_eq!(liquidity.sum_borrow, u(160_000 * E18));
        assert_eq!(liquidity.shortfall(), u(10_000 * E18));
        assert_eq!(liquidity.liquidity(), u(0));
        let mut markets = eth_usdc();
        markets[0].price = u(0);
        assert_eq!(account_liquidity(markets, Rounding::Truncate), None);
    }

    #[test]
    fn old_comptroller_rounds_tokens_to_denom_half_up() {
        let market = MarketExposure {
            collateral_factor: u(E18 / 2),
            exchange_rate: u(3),
            price: u(E18),
            ctoken_balance: u(E18),
            borrow_balance: u(0),
        };
        // 0.5 * 3e-18 = 1.5e-18: HalfUp -> 2e-18, Truncate -> 1e-18; times price 1 and balance
        // 1e18 base units: 2 vs 1.
        assert_eq!(
            account_liquidity([market], Rounding::HalfUp)
                .unwrap()
                .sum_collateral,
            u(2)
        );
        assert_eq!(
            account_liquidity([market], Rounding::Truncate)
                .unwrap()
                .sum_collateral,
            u(1)
        );
    }

    #[test]
    fn borrow_balance_follows_the_index() {
        // 1,000 USDC borrowed at index 1.0; the market index is now 1.05: 1,050 USDC.
        assert_eq!(
            borrow_balance_stored(u(1_000_000_000), u(1_050_000_000_000_000_000), u(E18)),
            Some(u(1_050_000_000))
        );
        // Truncation: 1 * 1.5 = 1.
        assert_eq!(borrow_balance_stored(u(1), u(3), u(2)), Some(u(1)));
        assert_eq!(borrow_balance_stored(u(0), u(3), u(0)), Some(u(0)));
        assert_eq!(borrow_balance_stored(u(5), u(3), u(0)), None);
    }

    #[test]
    fn seize_tokens_worked_example() {
        // Repay 80,000 USDC with incentive 1.08:
        // numerator = 1.08e18 * 1e30 / 1e18 = 1.08e30; denominator = 2000e18 * 2e26 / 1e18 = 4e29;
        // ratio = 1.08e30 * 1e18 / 4e29 = 2.7e18; seize = 2.7e18 * 8e10 / 1e18 = 2.16e11
        // = 2,160 cETH = 43.2 ETH = 86,400 USD = 80,000 * 1.08.
        let quote = liquidate_borrow(&context(), u(80_000_000_000)).unwrap();
        assert_eq!(quote.seize_tokens, u(216_000_000_000));
        assert_eq!(quote.max_close, u(80_000_000_000));
        // protocolSeizeTokens = 2.16e11 * 0.028 = 6.048e9; the liquidator gets the rest.
        assert_eq!(quote.protocol_tokens, u(6_048_000_000));
        assert_eq!(quote.liquidator_tokens, u(209_952_000_000));
    }

    #[test]
    fn liquidation_refusals() {
        let ctx = context();
        assert_eq!(
            liquidate_borrow(&ctx, u(80_000_000_001)),
            Err(LiquidateBorrowRefusal::TooMuchRepay {
                max_close: u(80_000_000_000)
            })
        );
        assert_eq!(
            liquidate_borrow(&ctx, u(0)),
            Err(LiquidateBorrowRefusal::ZeroRepay)
        );
        let mut poor = ctx;
        poor.collateral_ctokens = u(100_000_000_000);
        assert_eq!(
            liquidate_borrow(&poor, u(80_000_000_000)),
            Err(LiquidateBorrowRefusal::SeizeTooMuch {
                seize_tokens: u(216_000_000_000)
            })
        );
        let mut healthy = ctx;
        healthy.liquidity = AccountLiquidity {
            sum_collateral: u(5),
            sum_borrow: u(5),
        };
        assert_eq!(
            liquidate_borrow(&healthy, u(1)),
            Err(LiquidateBorrowRefusal::InsufficientShortfall { liquidity: u(0) })
        );
    }

    proptest! {
        #[test]
        fn a_liquidation_never_exceeds_close_factor_or_collateral(
            borrow in 1u128..1_000_000_000_000_000_000_000_000,
            repay in any::<u128>(),
            ctokens in any::<u64>(),
            close in 1u128..=E18,
            price_b in 1u128..1_000_000_000_000_000_000_000_000_000_000,
            price_c in 1u128..1_000_000_000_000_000_000_000_000_000_000,
            rate in 1u128..1_000_000_000_000_000_000_000_000_000,
            half_up in any::<bool>(),
        ) {
            let mut ctx = context();
            ctx.borrow_balance = U256::from(borrow);
            ctx.collateral_ctokens = U256::from(ctokens);
            ctx.close_factor = U256::from(close);
            ctx.price_borrowed = U256::from(price_b);
            ctx.price_collateral = U256::from(price_c);
            ctx.exchange_rate = U256::from(rate);
            ctx.rounding = if half_up { Rounding::HalfUp } else { Rounding::Truncate };
            if let Ok(quote) = liquidate_borrow(&ctx, U256::from(repay)) {
                prop_assert!(quote.repaid <= max_close(ctx.close_factor, ctx.borrow_balance).unwrap());
                prop_assert!(quote.repaid <= ctx.borrow_balance);
                prop_assert!(quote.seize_tokens <= ctx.collateral_ctokens);
                prop_assert_eq!(quote.liquidator_tokens + quote.protocol_tokens, quote.seize_tokens);
            }
        }
    }
}
