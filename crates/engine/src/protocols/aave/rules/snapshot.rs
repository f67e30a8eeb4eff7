//! Position snapshots for Aave: one reserve of an account set as a positions export records it,
//! or the whole account as `getUserAccountData` totals (`docs/ingest.md`, "Position snapshots").

use cascade_events::{AccountTotals, Id, Liquidation, PositionSnapshot, Timestamp, U256};

use super::{Aave, Position, bps};
use crate::EngineError;
use crate::lending::{Rules, TotalsAccount};
use crate::protocol::accounts::SnapshotSide;
use crate::protocol::{Applied, Judgement, Quantity, Verdict};
use crate::protocols::aave::logic::{self, AaveVersion, HEALTH_FACTOR_LIQUIDATION_THRESHOLD};
use crate::protocols::aave::math::{ray_div, ray_mul};

/// Thresholds up to this are fractions (0.825), larger ones basis points (8250).
const FRACTION_LIMIT: u8 = 1;

impl Aave {
    /// The balances a snapshot sets in its reserve (scaled as given, or plain amounts divided by
    /// the reserve's current indices as `AToken.mint` does). An e-mode category is reported as
    /// not modelled (`snapshot-e-mode-not-modelled`), the balances applied all the same.
    pub(super) fn snapshot_position(
        &mut self,
        snapshot: &PositionSnapshot,
    ) -> Result<(Position, Applied), EngineError> {
        let reserve = self.reserves.entry_or_default(snapshot.asset).clone();
        let overflow = || EngineError::Overflow {
            quantity: "Aave snapshot scaled balance",
        };
        let (collateral, debt) = if snapshot.scaled {
            (snapshot.collateral.0, snapshot.debt.0)
        } else {
            (
                ray_div(snapshot.collateral.0, reserve.liquidity_index).ok_or_else(overflow)?,
                ray_div(snapshot.debt.0, reserve.borrow_index).ok_or_else(overflow)?,
            )
        };
        // As a first deposit does: v2 always, v3 where the reserve may be collateral.
        let default_enabled = match self.version {
            AaveVersion::V2 => true,
            AaveVersion::V3 | AaveVersion::V3_3 => reserve.ltv != 0,
        };
        let position = Position {
            scaled_collateral: collateral,
            scaled_debt: debt,
            collateral_enabled: !collateral.is_zero()
                && snapshot.collateral_enabled.unwrap_or(default_enabled),
        };
        let applied = if snapshot.e_mode.is_some_and(|category| category != 0) {
            Applied::Clamped("snapshot-e-mode-not-modelled")
        } else {
            Applied::Exact
        };
        Ok((position, applied))
    }

    /// The reserve's balances as `balanceOf` reads them at the current indices.
    pub(super) fn snapshot_side_of(&self, asset: &Id, position: &Position) -> SnapshotSide {
        let (collateral, debt) = self.balances_of(asset, position);
        SnapshotSide {
            collateral,
            debt,
            collateral_enabled: position.collateral_enabled,
        }
    }

    /// Why `totals` cannot be taken: a threshold or LTV that is not whole basis points of at
    /// most 100% (`calculateUserAccountData` returns whole bps); `None` when it can.
    pub(super) fn totals_refused(totals: &AccountTotals) -> Option<&'static str> {
        let whole_bps = |value: &cascade_events::Fixed| {
            bps(value, FRACTION_LIMIT).is_some_and(|bps| bps <= 10_000)
        };
        if !whole_bps(&totals.liquidation_threshold)
            || totals.ltv.is_some_and(|ltv| !whole_bps(&ltv))
        {
            return Some("account-totals-threshold-not-basis-points");
        }
        None
    }

    /// The health factor of an account known by its totals, exactly as
    /// `GenericLogic.calculateUserAccountData` ends (Aave v2 `GenericLogic.sol`,
    /// `calculateHealthFactorFromBalances`; v3 `GenericLogic.calculateUserAccountData`):
    /// `totalCollateral.percentMul(avgLiquidationThreshold).wadDiv(totalDebt)`, `percentMul` and
    /// `wadDiv` rounding half up, `U256::MAX` without debt. The recorded threshold is already the
    /// contract's weighted, truncated average (and includes an e-mode category's threshold), so
    /// nothing else is needed. `None` on overflow.
    pub(super) fn totals_health(totals: &AccountTotals) -> Option<U256> {
        let threshold = bps(&totals.liquidation_threshold, FRACTION_LIMIT)?;
        logic::health_factor(totals.collateral.0, totals.debt.0, U256::from(threshold))
    }

    /// Judges a recorded liquidation of an account known by its totals: on the health factor the
    /// totals give (not liquidatable at or above one). The amounts cannot be checked against the
    /// account (its per-reserve balances, hence the close factor's limit and the collateral
    /// cap, are unknown): they are checked by the seize formula at the liquidation's prices, and
    /// the note says so. Once the totals are superseded (an earlier event of the account they
    /// could not follow), the health is unknown and only the formula is applied.
    pub(super) fn judge_totals_account(
        &self,
        totals: &TotalsAccount,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let mut judgement = <Self as Rules>::judge(self, None, liquidation, time)?;
        let formula = judgement.note.take();
        let recorded = totals.time.to_rfc3339();
        if let Some((kind, when)) = totals.superseded {
            judgement.note = Some(join(
                format!(
                    "account known by its totals of {recorded}, superseded by a {kind} at {}: health unknown, amounts by the seize formula only",
                    when.to_rfc3339()
                ),
                formula,
            ));
            return Ok(judgement);
        }
        let Some(health) = Self::totals_health(&totals.totals) else {
            return Err(EngineError::Overflow {
                quantity: "Aave health factor from account totals",
            });
        };
        judgement.health = Some(Quantity::new(health, 18));
        if health >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD {
            judgement.verdict = Verdict::NotLiquidatable;
            judgement.expected_collateral = None;
            judgement.expected_debt = None;
            judgement.mismatch = None;
            judgement.note = Some(format!(
                "account known by its totals of {recorded} (values not moved by later prices): health factor {} is not below 1",
                Quantity::new(health, 18)
            ));
            return Ok(judgement);
        }
        judgement.verdict = match judgement.verdict {
            Verdict::NoPrice | Verdict::AmountMismatch => judgement.verdict,
            _ => Verdict::Explained,
        };
        judgement.note = Some(join(
            format!(
                "account known by its totals of {recorded} (values not moved by later prices): health from the totals; amounts by the seize formula only (its per-reserve balances are unknown)"
            ),
            formula,
        ));
        Ok(judgement)
    }
}

/// `head`, then `tail` after a semicolon when there is one.
fn join(head: String, tail: Option<String>) -> String {
    match tail {
        Some(tail) => format!("{head}; {tail}"),
        None => head,
    }
}

impl Aave {
    /// The reserve's balances of `position` read back at the current indices, as `balanceOf`
    /// reads them.
    pub(super) fn balances_of(&self, asset: &Id, position: &Position) -> (U256, U256) {
        let reserve = self.reserves.get(asset).cloned().unwrap_or_default();
        (
            ray_mul(position.scaled_collateral, reserve.liquidity_index).unwrap_or(U256::MAX),
            ray_mul(position.scaled_debt, reserve.borrow_index).unwrap_or(U256::MAX),
        )
    }
}
