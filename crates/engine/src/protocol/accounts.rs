//! Every account's position at one moment, valued at the model's current prices, in one shape
//! for all protocols: what `cascade replay --accounts-at` and `cascade state` print
//! ([`crate::ProtocolModel::accounts`]).
//!
//! Amounts are integers exactly as the contracts hold them: token amounts in the token's base
//! units, values in the protocol's base currency at [`AccountPosition::base_decimals`] (Maker DAI
//! wad, Aave v2 ETH wei, Aave v3 USD with 8 decimals, Compound USD wad), the health factor as a
//! wad. What cannot be computed (a price, decimals or exchange rate the log never gave) is `None`,
//! and [`AccountPosition::missing`] says which input for which asset.

use cascade_events::{EventKind, Id, Protocol, Timestamp, U256};
use serde::Serialize;

use crate::protocol::Quantity;

/// How a protocol states the threshold its health factor applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdKind {
    /// Aave: liquidation threshold, the collateral-weighted average of the reserves' thresholds
    /// as `calculateUserAccountData` truncates it, as a fraction (0.825 for 8250 bps).
    LiquidationThreshold,
    /// Compound v2: collateral factor, the collateral-weighted average of the entered markets'
    /// factors (the market's own factor for an account with one collateral), as a fraction.
    CollateralFactor,
    /// Maker: the ilk's liquidation ratio `mat` (1.5 for 150%).
    LiquidationRatio,
}

/// One asset of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetPosition {
    /// The asset (the reserve's, market's underlying or ilk's collateral token).
    pub asset: Id,
    /// Collateral in the token's base units (Aave: `balanceOf` of the aToken; Compound: cTokens
    /// times `exchangeRateStored`, truncated; Maker: `ink`).
    pub collateral: U256,
    /// Debt in the token's base units (Aave: variable debt `balanceOf`; Compound:
    /// `borrowBalanceStored`; Maker: `art * rate` in DAI).
    pub debt: U256,
    /// Token decimals, when known.
    pub decimals: Option<u8>,
    /// Oracle price of one whole token in the base currency, when known.
    pub price: Option<Quantity>,
    /// Whether the protocol counts the collateral (Aave `usageAsCollateralEnabled` with a
    /// non-zero threshold, Compound market entered; always for Maker).
    pub collateral_enabled: bool,
    /// `collateral` valued in the base currency (whether counted or not), when priced.
    pub collateral_value: Option<U256>,
    /// `debt` valued in the base currency, when priced.
    pub debt_value: Option<U256>,
}

/// The price of an account's main collateral at which its health factor reaches one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiquidationPrice {
    /// The main collateral: the counted collateral of the largest value.
    pub asset: Id,
    /// Base currency per whole token.
    pub price: Quantity,
}

/// One account's position at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountPosition {
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account (Maker: the vault's urn).
    pub account: Id,
    /// The protocol's base currency (`DAI`, `ETH`, `USD`).
    pub base_currency: Id,
    /// Decimals of every value in the base currency.
    pub base_decimals: u8,
    /// Per asset held or owed, by asset id.
    pub assets: Vec<AssetPosition>,
    /// Collateral the protocol counts, in the base currency (Aave `totalCollateralBase`), when
    /// every input is known.
    pub collateral_value: Option<U256>,
    /// Debt in the base currency (Aave `totalDebtBase`, Compound `sumBorrowPlusEffects`), when
    /// every input is known.
    pub debt_value: Option<U256>,
    /// What [`AccountPosition::threshold`] is.
    pub threshold_kind: ThresholdKind,
    /// The threshold as the protocol applies it to this account, when known.
    pub threshold: Option<Quantity>,
    /// Health factor as the protocol computes it, wad: Aave `healthFactor`, Compound weighted
    /// collateral over borrows (below one exactly when there is a shortfall), Maker
    /// `ink * spot / (art * rate)`. `U256::MAX` without debt; `None` when an input is missing.
    pub health_factor: Option<U256>,
    /// The main collateral's liquidation price, other prices held; `None` without debt, without
    /// counted collateral, when no positive price would do, or when an input is missing.
    pub liquidation_price: Option<LiquidationPrice>,
    /// The first input missing for the health factor (`price of WBTC`), if any.
    pub missing: Option<String>,
    /// Set for an account known only by an `account-totals` snapshot: what it recorded.
    pub totals: Option<RecordedTotals>,
}

/// What an `account-totals` snapshot recorded of an account the model knows only by its totals
/// (`docs/ingest.md`, "Position snapshots"). The account's values are the snapshot's, in the
/// base currency of its time: no price moves them (the assets behind them are unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedTotals {
    /// When they were recorded.
    pub at: Timestamp,
    /// The weighted loan to value, where the export had it.
    pub ltv: Option<Quantity>,
    /// The health factor the export recorded, wad.
    pub health_factor: Option<U256>,
    /// `(computed - recorded) / recorded` in parts per million, rounded toward zero; `None`
    /// without a recorded or computed health factor (or with either at the no-debt maximum, where
    /// the difference is `0` when both are).
    pub health_difference_ppm: Option<i64>,
    /// The Aave v3 e-mode category the export gave, if any (its parameters are already in the
    /// recorded threshold).
    pub e_mode: Option<u8>,
    /// The first later event of the account the totals cannot follow (its kind and time), after
    /// which the health factor is unknown.
    pub superseded: Option<(EventKind, Timestamp)>,
}

/// The health-factor difference of [`RecordedTotals::health_difference_ppm`]: `None` when one
/// side is the no-debt maximum and the other is not, or beyond `i64`.
pub fn difference_ppm(computed: U256, recorded: U256) -> Option<i64> {
    if computed == U256::MAX || recorded == U256::MAX {
        return (computed == recorded).then_some(0);
    }
    if recorded.is_zero() {
        return None;
    }
    let ppm = computed
        .abs_diff(recorded)
        .checked_mul(U256::from(1_000_000u32))?
        / recorded;
    let ppm = i64::try_from(ppm).ok()?;
    Some(if computed < recorded { -ppm } else { ppm })
}

/// One account and asset whose rebuilt holding a snapshot in the middle of a history
/// contradicted (`snapshot-differs-from-rebuilt`): the snapshot replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotDifference {
    /// The snapshot's time.
    pub time: Timestamp,
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account.
    pub account: Id,
    /// The asset; the base currency for an account's totals.
    pub asset: Id,
    /// What the log had rebuilt.
    pub rebuilt: SnapshotSide,
    /// What the snapshot set (zeros for an asset the snapshot did not name: it was cleared).
    pub snapshot: SnapshotSide,
}

/// One side of a [`SnapshotDifference`], in the units a positions export gives: Aave `balanceOf`
/// amounts, Compound cTokens and borrow balance, Maker `ink` and `art`, totals in the base
/// currency's smallest unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotSide {
    /// Collateral.
    pub collateral: U256,
    /// Debt.
    pub debt: U256,
    /// Whether the collateral counts.
    pub collateral_enabled: bool,
}

/// Every account's position at one requested time (`--accounts-at`): taken once the replay has
/// applied every event of the first instant at or after `at` (or, when the log ends before `at`,
/// at its end), so that instant's parameters, prices, snapshots, position changes and
/// liquidations are all in it, in the ordering classes' order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountsCapture {
    /// The time asked for.
    pub at: Timestamp,
    /// The time of the instant captured (the last event applied); `None` for an empty log.
    pub state_time: Option<Timestamp>,
    /// By protocol, market and account.
    pub accounts: Vec<AccountPosition>,
    /// Every snapshot difference the replay found up to this capture, in log order.
    pub snapshot_differences: Vec<SnapshotDifference>,
}

/// The liquidation price of the main collateral of `assets` (the counted collateral of the
/// largest value, ties to the first), each asset's collateral weighted by `weights` on `scale`
/// (Aave thresholds in basis points, Compound collateral factors as wads; zero when not
/// counted), in the base currency at `base_decimals`. `None` without counted collateral or when
/// [`liquidation_price`] has none.
pub fn main_liquidation_price(
    assets: &[AssetPosition],
    weights: &[U256],
    scale: U256,
    base_decimals: u8,
) -> Option<LiquidationPrice> {
    let main = main_collateral(assets, weights)?;
    let price = liquidation_price(assets, weights, main, scale)?;
    Some(LiquidationPrice {
        asset: assets[main].asset,
        price: Quantity::new(price, base_decimals),
    })
}

/// The price of `assets[main]` at which `sum(collateral value * weight) / scale` equals the sum
/// of debt values, every other price held: solving
/// `p * (collateral * weight - debt * scale) / unit = (other debt) * scale - (other weighted
/// collateral)` for `p`, truncated, in the base currency per whole token. `None` when a value or
/// the main asset's decimals are unknown, when no positive price makes the account liquidatable,
/// or on overflow.
pub fn liquidation_price(
    assets: &[AssetPosition],
    weights: &[U256],
    main: usize,
    scale: U256,
) -> Option<U256> {
    let mut others_debt = U256::ZERO;
    let mut others_weighted = U256::ZERO;
    for (index, (position, weight)) in assets.iter().zip(weights).enumerate() {
        if index == main {
            continue;
        }
        if !position.debt.is_zero() {
            others_debt = others_debt.checked_add(position.debt_value?)?;
        }
        if !weight.is_zero() && !position.collateral.is_zero() {
            others_weighted =
                others_weighted.checked_add(position.collateral_value?.checked_mul(*weight)?)?;
        }
    }
    let position = &assets[main];
    let unit = U256::from(10u8).checked_pow(U256::from(position.decimals?))?;
    let numerator = others_debt
        .checked_mul(scale)?
        .checked_sub(others_weighted)
        .filter(|n| !n.is_zero())?;
    let denominator = position
        .collateral
        .checked_mul(weights[main])?
        .checked_sub(position.debt.checked_mul(scale)?)
        .filter(|d| !d.is_zero())?;
    Some(numerator.checked_mul(unit)? / denominator).filter(|price| !price.is_zero())
}

/// The index of the counted collateral of the largest value (ties: the first), if any.
fn main_collateral(assets: &[AssetPosition], weights: &[U256]) -> Option<usize> {
    let mut best: Option<(usize, U256)> = None;
    for (index, (position, weight)) in assets.iter().zip(weights).enumerate() {
        if weight.is_zero() || position.collateral.is_zero() {
            continue;
        }
        let value = position.collateral_value.unwrap_or_default();
        if best.is_none_or(|(_, top)| value > top) {
            best = Some((index, value));
        }
    }
    best.map(|(index, _)| index)
}

/// `price * amount / 10^decimals`, truncated: a token amount in the base currency.
pub fn value_of(price: U256, amount: U256, decimals: u8) -> Option<U256> {
    Some(price.checked_mul(amount)? / cascade_events::pow10(decimals)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(collateral: u64, debt: u64, price: u64, decimals: u8) -> AssetPosition {
        let price = U256::from(price);
        AssetPosition {
            asset: Id::name("A"),
            collateral: U256::from(collateral),
            debt: U256::from(debt),
            decimals: Some(decimals),
            price: Some(Quantity::new(price, 0)),
            collateral_enabled: true,
            collateral_value: value_of(price, U256::from(collateral), decimals),
            debt_value: value_of(price, U256::from(debt), decimals),
        }
    }

    const BPS: U256 = U256::from_limbs([10_000, 0, 0, 0]);

    #[test]
    fn liquidation_price_solves_for_a_health_factor_of_one() {
        // 10 tokens (2 decimals: 1000 units) of collateral at threshold 8000 bps against 4000 of
        // debt in another asset: 10 * p * 0.8 = 4000 at p = 500.
        let assets = [asset(1000, 0, 1000, 2), asset(0, 4000, 1, 0)];
        let weights = [U256::from(8000u16), U256::ZERO];
        assert_eq!(main_collateral(&assets, &weights), Some(0));
        let price = main_liquidation_price(&assets, &weights, BPS, 0).unwrap();
        assert_eq!(price.price.to_string(), "500");
    }

    #[test]
    fn other_collateral_lowers_the_price_and_enough_of_it_removes_it() {
        // 1000 more of value at 8000 bps covers 800 of the debt: 10 * p * 0.8 = 3200, p = 400.
        let weights = [U256::from(8000u16), U256::ZERO, U256::from(8000u16)];
        let assets = [
            asset(1000, 0, 1000, 2),
            asset(0, 4000, 1, 0),
            asset(1000, 0, 1, 0),
        ];
        assert_eq!(
            liquidation_price(&assets, &weights, 0, BPS),
            Some(U256::from(400u16))
        );
        let assets = [
            asset(1000, 0, 1000, 2),
            asset(0, 4000, 1, 0),
            asset(10_000, 0, 1, 0),
        ];
        assert_eq!(liquidation_price(&assets, &weights, 0, BPS), None);
    }

    #[test]
    fn collateral_also_borrowed_moves_both_sides() {
        // 10 tokens of collateral at 8000 bps, 2 of the same token borrowed, 3000 of other
        // debt: p * (10 * 0.8 - 2) = 3000, p = 500.
        let assets = [asset(1000, 200, 1000, 2), asset(0, 3000, 1, 0)];
        let weights = [U256::from(8000u16), U256::ZERO];
        assert_eq!(
            liquidation_price(&assets, &weights, 0, BPS),
            Some(U256::from(500u16))
        );
    }
}
