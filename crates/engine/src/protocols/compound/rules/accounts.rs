//! [`ProtocolModel::accounts`](crate::ProtocolModel::accounts) for Compound v2: each account's
//! markets read back as `balanceOfUnderlying` and `borrowBalanceStored` read them, valued at
//! `getUnderlyingPrice` as `getHypotheticalAccountLiquidityInternal` values them.

use cascade_events::{Id, Protocol, U256};

use super::{Account, AccountLiquidity, Compound};
use crate::lending::Point;
use crate::protocol::Quantity;
use crate::protocol::accounts::{
    AccountPosition, AssetPosition, ThresholdKind, main_liquidation_price, value_of,
};
use crate::protocols::compound::exp::{EXP_SCALE, mul_scalar_truncate};

/// Decimals of every USD value: the Comptroller's mantissa scale.
const USD_DECIMALS: u8 = 18;

impl Compound {
    /// One account's position (`None` when it holds and owes nothing) and its place in the
    /// health distribution.
    pub(super) fn position_of(
        &self,
        market: Id,
        account_id: Id,
        account: &Account,
    ) -> (Option<AccountPosition>, Point) {
        let mut assets = Vec::with_capacity(account.positions.len());
        let mut weights = Vec::with_capacity(account.positions.len());
        let mut missing = None;
        for (asset, position) in account.positions.iter() {
            if position.ctokens.is_zero() && position.principal.is_zero() {
                continue;
            }
            let state = self.markets.get(asset).cloned().unwrap_or_default();
            let rate = state.rate();
            let collateral = rate.and_then(|rate| mul_scalar_truncate(rate, position.ctokens));
            let debt = self.borrow_balance(asset, position);
            let price = self
                .prices
                .get(asset)
                .and_then(|price| price.rescale(USD_DECIMALS));
            let decimals = state.decimals;
            if missing.is_none() && position.entered {
                missing = self
                    .missing_input(asset, true)
                    .map(|input| input.to_string());
            }
            let value = |amount: Option<U256>| value_of(price?, amount?, decimals?);
            weights.push(if position.entered {
                state.collateral_factor
            } else {
                U256::ZERO
            });
            assets.push(AssetPosition {
                asset: *asset,
                // Without an exchange rate the underlying is unknown: the cToken balance is
                // not shown as if it were underlying.
                collateral: collateral.unwrap_or_default(),
                debt: debt.unwrap_or_default(),
                decimals,
                price: price.map(|price| Quantity::new(price, USD_DECIMALS)),
                collateral_enabled: position.entered,
                collateral_value: value(collateral),
                debt_value: value(debt),
            });
        }
        let liquidity = self.liquidity(account);
        let point = Self::distribution_point_of(liquidity.as_ref());
        if assets.is_empty() {
            return (None, point);
        }
        if missing.is_none() && liquidity.is_none() {
            missing = Some("a value within 256 bits".to_owned());
        }
        let (collateral_value, threshold) = liquidity
            .and_then(|_| counted_collateral(&assets, &weights))
            .unzip();
        let liquidation = liquidity
            .filter(|liquidity| !liquidity.sum_borrow.is_zero())
            .and_then(|_| main_liquidation_price(&assets, &weights, EXP_SCALE, USD_DECIMALS));
        let position = AccountPosition {
            protocol: Protocol::CompoundV2,
            market,
            account: account_id,
            base_currency: Id::name("USD"),
            base_decimals: USD_DECIMALS,
            collateral_value,
            debt_value: liquidity.map(|liquidity| liquidity.sum_borrow),
            threshold_kind: ThresholdKind::CollateralFactor,
            threshold: threshold.flatten(),
            health_factor: liquidity.as_ref().map(Self::health),
            liquidation_price: liquidation,
            missing,
            assets,
            totals: None,
        };
        (Some(position), point)
    }

    /// An account's place in the health distribution from its liquidity (`None`: a price,
    /// decimals or exchange rate missing).
    pub(super) fn distribution_point_of(liquidity: Option<&AccountLiquidity>) -> Point {
        match liquidity {
            Some(liquidity)
                if liquidity.sum_borrow.is_zero() && liquidity.sum_collateral.is_zero() =>
            {
                Point::Empty
            }
            Some(liquidity) => Point::At(Self::health(liquidity), liquidity.sum_borrow),
            None => Point::Unpriced,
        }
    }
}

/// The entered markets' collateral value (collateral factor 1) and their value-weighted
/// collateral factor (`None` without collateral value), truncated.
fn counted_collateral(
    assets: &[AssetPosition],
    weights: &[U256],
) -> Option<(U256, Option<Quantity>)> {
    let mut total = U256::ZERO;
    let mut weighted = U256::ZERO;
    for (position, weight) in assets.iter().zip(weights) {
        if !position.collateral_enabled || position.collateral.is_zero() {
            continue;
        }
        let value = position.collateral_value?;
        total = total.checked_add(value)?;
        weighted = weighted.checked_add(value.checked_mul(*weight)?)?;
    }
    let factor = (!total.is_zero()).then(|| Quantity::new(weighted / total, USD_DECIMALS));
    Some((total, factor))
}
