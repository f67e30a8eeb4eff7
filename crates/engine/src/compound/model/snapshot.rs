//! Position snapshots for Compound v2: one market of an account set as a positions export
//! records it.

use cascade_events::{PositionSnapshot, U256};

use super::{Account, CompoundModel, Position, comptroller};
use crate::EngineError;
use crate::protocol::Applied;

impl CompoundModel {
    /// Sets the account's cToken balance and borrow balance in the snapshot's market: the borrow
    /// balance becomes the principal at the market's current borrow index (what
    /// `borrowBalanceStored` reads back). The market is entered as supplying or borrowing enters
    /// it unless the snapshot says. A non-zero rebuilt holding that differs is replaced and
    /// reported (`snapshot-differs-from-rebuilt`).
    pub(super) fn apply_snapshot(
        &mut self,
        snapshot: &PositionSnapshot,
    ) -> Result<Applied, EngineError> {
        let index = self.markets.entry(snapshot.asset).or_default().borrow_index;
        let accounts = &mut self.comptrollers.entry(comptroller()).or_default().accounts;
        let (slot, _) = accounts.slot_or_insert_with(snapshot.account, Account::default);
        let position = accounts
            .at_mut(slot)
            .positions
            .entry_or_default(snapshot.asset);
        let rebuilt = *position;
        let (ctokens, debt) = (snapshot.collateral.0, snapshot.debt.0);
        let held = !ctokens.is_zero() || !debt.is_zero();
        *position = Position {
            ctokens,
            principal: debt,
            interest_index: if debt.is_zero() { U256::ZERO } else { index },
            entered: held && snapshot.collateral_enabled.unwrap_or(true),
        };
        let differs = rebuilt != Position::default()
            && (rebuilt.ctokens != ctokens
                || self.borrow_balance(&snapshot.asset, &rebuilt) != Some(debt));
        self.reindex(&comptroller(), slot);
        Ok(if differs {
            Applied::Clamped("snapshot-differs-from-rebuilt")
        } else {
            Applied::Exact
        })
    }
}
