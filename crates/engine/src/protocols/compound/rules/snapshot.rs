//! Position snapshots for Compound v2: one market of an account set as a positions export
//! records it.

use cascade_events::{Id, PositionSnapshot, U256};

use super::{Compound, Position};
use crate::protocol::Applied;
use crate::protocol::accounts::SnapshotSide;

impl Compound {
    /// The cToken balance and borrow balance a snapshot sets in its market: the borrow balance
    /// becomes the principal at the market's current borrow index (what `borrowBalanceStored`
    /// reads back). The market is entered as supplying or borrowing enters it unless the
    /// snapshot says.
    pub(super) fn snapshot_position(&mut self, snapshot: &PositionSnapshot) -> (Position, Applied) {
        let index = self.markets.entry_or_default(snapshot.asset).borrow_index;
        let (ctokens, debt) = (snapshot.collateral.0, snapshot.debt.0);
        let held = !ctokens.is_zero() || !debt.is_zero();
        let position = Position {
            ctokens,
            principal: debt,
            interest_index: if debt.is_zero() { U256::ZERO } else { index },
            entered: held && snapshot.collateral_enabled.unwrap_or(true),
        };
        (position, Applied::Exact)
    }

    /// The cToken balance, `borrowBalanceStored` (`U256::MAX` when the market's borrow index is
    /// unknown) and whether the market is entered.
    pub(super) fn snapshot_side_of(&self, asset: &Id, position: &Position) -> SnapshotSide {
        SnapshotSide {
            collateral: position.ctokens,
            debt: self.borrow_balance(asset, position).unwrap_or(U256::MAX),
            collateral_enabled: position.entered,
        }
    }
}
