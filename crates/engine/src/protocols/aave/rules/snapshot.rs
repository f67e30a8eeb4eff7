//! Position snapshots for Aave: one reserve of an account set as a positions export records it.

use cascade_events::PositionSnapshot;

use super::{Aave, Position};
use crate::EngineError;
use crate::protocol::Applied;
use crate::protocols::aave::logic::AaveVersion;
use crate::protocols::aave::math::ray_div;

impl Aave {
    /// The balances a snapshot sets in its reserve (scaled as given, or plain amounts divided by
    /// the reserve's current indices as `AToken.mint` does). A non-zero `rebuilt` holding that
    /// differs is reported (`snapshot-differs-from-rebuilt`); an e-mode category is reported as
    /// not modelled (`snapshot-e-mode-not-modelled`), the balances applied all the same.
    pub(super) fn snapshot_position(
        &mut self,
        snapshot: &PositionSnapshot,
        rebuilt: &Position,
    ) -> Result<(Position, Applied), EngineError> {
        let reserve = self.reserves.entry(snapshot.asset).or_default().clone();
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
        let differs = *rebuilt != Position::default() && *rebuilt != position;
        let applied = if differs {
            Applied::Clamped("snapshot-differs-from-rebuilt")
        } else if snapshot.e_mode.is_some_and(|category| category != 0) {
            Applied::Clamped("snapshot-e-mode-not-modelled")
        } else {
            Applied::Exact
        };
        Ok((position, applied))
    }
}
