//! Position snapshots for Compound v2: one market of an account set as a positions export
//! records it.

use cascade_events::{PositionSnapshot, U256};

use super::{Compound, Position};
use crate::protocol::Applied;

impl Compound {
    /// The cToken balance and borrow balance a snapshot sets in its market: the borrow balance
    /// becomes the principal at the market's current borrow index (what `borrowBalanceStored`
    /// reads back). The market is entered as supplying or borrowing enters it unless the
    /// snapshot says. A non-zero `rebuilt` holding that differs is reported
    /// (`snapshot-differs-from-rebuilt`).
    pub(super) fn snapshot_position(
        &mut self,
        snapshot: &PositionSnapshot,
        rebuilt: &Position,
    ) -> (Position, Applied) {
        let index = self.markets.entry(snapshot.asset).or_default().borrow_index;
        let (ctokens, debt) = (snapshot.collateral.0, snapshot.debt.0);
        let held = !ctokens.is_zero() || !debt.is_zero();
        let position = Position {
            ctokens,
            principal: debt,
            interest_index: if debt.is_zero() { U256::ZERO } else { index },
            entered: held && snapshot.collateral_enabled.unwrap_or(true),
        };
        let differs = *rebuilt != Position::default()
            && (rebuilt.ctokens != ctokens
                || self.borrow_balance(&snapshot.asset, rebuilt) != Some(debt));
        let applied = if differs {
            Applied::Clamped("snapshot-differs-from-rebuilt")
        } else {
            Applied::Exact
        };
        (position, applied)
    }
}
