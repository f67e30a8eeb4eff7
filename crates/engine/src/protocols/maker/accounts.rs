//! [`ProtocolModel::accounts`] for Maker: every vault's `ink` and `art * rate`, with the rate
//! dripped to the time asked and the Spotter's `spot` of its ilk.

use super::*;
use crate::protocol::accounts::{AccountPosition, AssetPosition, LiquidationPrice, ThresholdKind};

impl MakerModel {
    /// Appends every vault with collateral or debt, its ilk's rate accrued to `time` as a `drip`
    /// then would (without filing it).
    pub(super) fn vault_positions(&self, time: Timestamp, out: &mut Vec<AccountPosition>) {
        for (ilk_id, ilk) in self.ilks.iter() {
            let rate = match ilk.rho {
                Some(rho) if time > rho => rpow(ilk.duty, (time.0 - rho.0) as u64, RAY)
                    .and_then(|factor| rmul(factor, ilk.rate, "rpow(duty) * rate"))
                    .ok(),
                _ => Some(ilk.rate),
            };
            let value = self.osm_value_now(ilk_id);
            let gem = self
                .price_asset(ilk_id)
                .unwrap_or_else(|| Id::name(&gem_of(ilk_id)));
            let missing = if value.is_none() {
                Some(format!("price of {gem}"))
            } else if ilk.mat.is_zero() {
                Some(format!("liquidation ratio of {ilk_id}"))
            } else if rate.is_none() {
                Some(format!("rate of {ilk_id} within 256 bits"))
            } else {
                None
            };
            for (account, vault) in ilk.vaults.entries() {
                if vault.ink.is_zero() && vault.art.is_zero() {
                    continue;
                }
                out.push(vault_position(VaultInputs {
                    ilk_id: *ilk_id,
                    account: *account,
                    gem,
                    urn: vault.urn(),
                    ilk,
                    rate,
                    value,
                    missing: missing.clone(),
                }));
            }
        }
    }
}

/// What one vault's position is made of.
struct VaultInputs<'a> {
    ilk_id: Id,
    account: Id,
    gem: Id,
    urn: Urn,
    ilk: &'a Ilk,
    /// The ilk's rate at the time asked.
    rate: Option<U256>,
    /// The OSM value the ilk's `spot` was poked with.
    value: Option<U256>,
    missing: Option<String>,
}

fn vault_position(inputs: VaultInputs<'_>) -> AccountPosition {
    let VaultInputs {
        ilk_id,
        account,
        gem,
        urn,
        ilk,
        rate,
        value,
        missing,
    } = inputs;
    let priced = missing.is_none();
    let debt = rate.and_then(|rate| urn.art.checked_mul(rate)).map(div_ray);
    let collateral_value = value.and_then(|value| urn.ink.checked_mul(value).map(|v| v / WAD));
    let health = rate
        .filter(|_| priced)
        .and_then(|rate| rules::health(urn, ilk.spot, rate).ok())
        .map(|health| health.unwrap_or(U256::MAX));
    // Health one: `ink * val * 1e9 * RAY / mat = art * rate`, solved for the OSM value `val`.
    let liquidation_price = rate
        .filter(|_| !ilk.mat.is_zero() && !urn.ink.is_zero())
        .and_then(|rate| {
            // A tab in rad times a ratio in ray passes 2^256 from about 89,000 DAI of debt.
            let tab = urn.art.checked_mul(rate)?;
            crate::math::mul_div_wide(tab, ilk.mat, urn.ink.checked_mul(BLN * RAY)?)
        })
        .filter(|price| !price.is_zero())
        .map(|price| LiquidationPrice {
            asset: gem,
            price: Quantity::new(price, 18),
        });
    let dai = Id::name("DAI");
    let mut assets = vec![AssetPosition {
        asset: gem,
        collateral: urn.ink,
        debt: U256::ZERO,
        decimals: Some(COLLATERAL_DECIMALS),
        price: value.map(|value| Quantity::new(value, 18)),
        collateral_enabled: true,
        collateral_value,
        debt_value: Some(U256::ZERO),
    }];
    if !urn.art.is_zero() {
        assets.push(AssetPosition {
            asset: dai,
            collateral: U256::ZERO,
            debt: debt.unwrap_or_default(),
            decimals: Some(DAI_DECIMALS),
            price: Some(Quantity::new(WAD, DAI_DECIMALS)),
            collateral_enabled: false,
            collateral_value: Some(U256::ZERO),
            debt_value: debt,
        });
    }
    AccountPosition {
        protocol: Protocol::Maker,
        market: ilk_id,
        account,
        base_currency: dai,
        base_decimals: DAI_DECIMALS,
        assets,
        collateral_value,
        debt_value: debt,
        threshold_kind: ThresholdKind::LiquidationRatio,
        threshold: (!ilk.mat.is_zero()).then(|| Quantity::new(ilk.mat, 27)),
        health_factor: health,
        liquidation_price,
        missing,
        totals: None,
    }
}
