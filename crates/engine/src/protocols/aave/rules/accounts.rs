//! [`ProtocolModel::accounts`](crate::ProtocolModel::accounts) for Aave: each account's reserves
//! read back as `balanceOf` reads them, valued as `calculateUserAccountData` values them.

use cascade_events::{Fixed, Id, U256};

use super::{Aave, Account, bps, distribution_point};
use crate::lending::{Point, TotalsAccount};
use crate::protocol::Quantity;
use crate::protocol::accounts::{
    AccountPosition, AssetPosition, RecordedTotals, ThresholdKind, difference_ppm,
    main_liquidation_price, value_of,
};
use crate::protocols::aave::math::ray_mul;

/// Basis points: the scale of Aave's liquidation thresholds.
const BPS: u16 = 10_000;

impl Aave {
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
        let data = self.account_data(account).ok().flatten();
        let point = distribution_point(data);
        if assets.is_empty() {
            return (None, point);
        }
        let liquidation = data
            .filter(|data| !data.total_debt_base.is_zero())
            .and_then(|_| {
                main_liquidation_price(&assets, &weights, U256::from(BPS), self.base_decimals)
            });
        if missing.is_none() && data.is_none() {
            missing = Some("a value within 256 bits".to_owned());
        }
        let position = AccountPosition {
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
            totals: None,
        };
        (Some(position), point)
    }

    /// An account known by its totals: the snapshot's values in the base currency, its health
    /// factor computed from them ([`Aave::totals_health`]) and compared with the recorded one.
    /// No assets (the export did not name them) and no liquidation price (no asset to price).
    /// Once superseded by an event the totals could not follow, the health factor is unknown.
    pub(super) fn totals_position_of(
        &self,
        market: Id,
        account: Id,
        totals: &TotalsAccount,
    ) -> AccountPosition {
        let recorded = &totals.totals;
        let threshold = bps(&recorded.liquidation_threshold, 1).map(U256::from);
        let computed = Self::totals_health(recorded);
        let recorded_health = recorded
            .health_factor
            .map(|health| recorded_health(&health));
        let (health_factor, missing) = match (totals.superseded, computed) {
            (Some((kind, time)), _) => (
                None,
                Some(format!(
                    "per-reserve positions: the account totals of {} were followed by a {kind} at {}",
                    totals.time.to_rfc3339(),
                    time.to_rfc3339()
                )),
            ),
            (None, Some(health)) => (Some(health), None),
            (None, None) => (None, Some("a value within 256 bits".to_owned())),
        };
        AccountPosition {
            protocol: self.protocol,
            market,
            account,
            base_currency: self.base,
            base_decimals: self.base_decimals,
            assets: Vec::new(),
            collateral_value: Some(recorded.collateral.0),
            debt_value: Some(recorded.debt.0),
            threshold_kind: ThresholdKind::LiquidationThreshold,
            threshold: threshold.map(|bps| Quantity::new(bps, 4)),
            health_factor,
            liquidation_price: None,
            missing,
            totals: Some(RecordedTotals {
                at: totals.time,
                ltv: recorded
                    .ltv
                    .and_then(|ltv| bps(&ltv, 1))
                    .map(|bps| Quantity::new(U256::from(bps), 4)),
                health_factor: recorded_health,
                health_difference_ppm: computed
                    .zip(recorded_health)
                    .and_then(|(computed, recorded)| difference_ppm(computed, recorded)),
                e_mode: recorded.e_mode,
                superseded: totals.superseded,
            }),
        }
    }
}

/// A recorded health factor as a wad (extra digits truncated). Exports write `uint256(-1)` for an
/// account without debt (as a wad, or as a decimal beyond any real health): anything at or above
/// 2^255 is read as that maximum.
fn recorded_health(health: &Fixed) -> U256 {
    match health.rescale(18) {
        Some(wad) if wad < U256::from(1u8) << 255 => wad,
        _ => U256::MAX,
    }
}
