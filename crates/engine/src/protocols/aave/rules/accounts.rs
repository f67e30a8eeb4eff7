//! [`ProtocolModel::accounts`](crate::ProtocolModel::accounts) for Aave: each account's reserves
//! read back as `balanceOf` reads them, valued as `calculateUserAccountData` values them.

use cascade_events::{Id, U256};

use super::{Aave, Account};
use crate::protocol::Quantity;
use crate::protocol::accounts::{
    AccountPosition, AssetPosition, ThresholdKind, main_liquidation_price, value_of,
};
use crate::protocols::aave::math::ray_mul;

/// Basis points: the scale of Aave's liquidation thresholds.
const BPS: u16 = 10_000;

impl Aave {
    /// One account's position; `None` when it holds and owes nothing.
    pub(super) fn position_of(
        &self,
        market: Id,
        account_id: Id,
        account: &Account,
    ) -> Option<AccountPosition> {
        let mut assets = Vec::new();
        let mut weights = Vec::new();
        let mut missing = None;
        for (asset, position) in account.positions.iter() {
            let reserve = self.reserves.get(asset).cloned().unwrap_or_default();
            let collateral =
                ray_mul(position.scaled_collateral, reserve.liquidity_index).unwrap_or(U256::MAX);
            let debt = ray_mul(position.scaled_debt, reserve.borrow_index).unwrap_or(U256::MAX);
            if collateral.is_zero() && debt.is_zero() {
                continue;
            }
            let price = self.price(asset);
            let decimals = reserve.decimals;
            if missing.is_none() {
                missing = self.missing_input(asset).map(|input| input.to_string());
            }
            let value = |amount: U256| value_of(price?, amount, decimals?);
            let counted = position.collateral_enabled && reserve.liquidation_threshold != 0;
            weights.push(if counted {
                U256::from(reserve.liquidation_threshold)
            } else {
                U256::ZERO
            });
            assets.push(AssetPosition {
                asset: *asset,
                collateral,
                debt,
                decimals,
                price: price.map(|price| Quantity::new(price, self.base_decimals)),
                collateral_enabled: counted,
                collateral_value: value(collateral),
                debt_value: value(debt),
            });
        }
        if assets.is_empty() {
            return None;
        }
        let data = self.account_data(account).ok().flatten();
        let liquidation = data
            .filter(|data| !data.total_debt_base.is_zero())
            .and_then(|_| {
                main_liquidation_price(&assets, &weights, U256::from(BPS), self.base_decimals)
            });
        if missing.is_none() && data.is_none() {
            missing = Some("a value within 256 bits".to_owned());
        }
        Some(AccountPosition {
            protocol: self.protocol,
            market,
            account: account_id,
            base_currency: self.base,
            base_decimals: self.base_decimals,
            collateral_value: data.map(|data| data.total_collateral_base),
            debt_value: data.map(|data| data.total_debt_base),
            threshold_kind: ThresholdKind::LiquidationThreshold,
            threshold: data.map(|data| Quantity::new(data.avg_liquidation_threshold, 4)),
            health_factor: data.map(|data| data.health_factor),
            liquidation_price: liquidation,
            missing,
            assets,
        })
    }
}
