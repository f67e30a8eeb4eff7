//! Position snapshots for Maker: a vault's `ink` and `art` set as a positions export records
//! them.

use super::*;
use crate::protocol::accounts::{SnapshotDifference, SnapshotSide};

impl MakerModel {
    /// Sets the vault's `ink` and `art` (`debt` as `art`, or as DAI turned into `art` at the
    /// ilk's rate dripped to `time`, rounded up as a draw is): one row is the whole vault. A
    /// vault whose rebuilt books differ is replaced and the difference handed over
    /// (`snapshot-differs-from-rebuilt`).
    pub(super) fn apply_snapshot(
        &mut self,
        snapshot: &PositionSnapshot,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let ilk = self.ilks.entry_or_default(snapshot.market);
        ilk.drip(time)?;
        let art = if snapshot.scaled {
            snapshot.debt.0
        } else {
            mul_div_up(snapshot.debt.0, RAY, ilk.rate, "dai * RAY / rate")?
        };
        let (slot, opened) = ilk
            .vaults
            .slot_or_insert_with(snapshot.account, Vault::default);
        let vault = ilk.vaults.at_mut(slot);
        let old = *vault;
        let rebuilt = !opened && (!old.ink.is_zero() || !old.art.is_zero());
        let differs = rebuilt && (old.ink, old.art) != (snapshot.collateral.0, art);
        vault.ink = snapshot.collateral.0;
        vault.art = art;
        ilk.reindex(slot, old)?;
        if differs {
            let side = |ink, art| SnapshotSide {
                collateral: ink,
                debt: art,
                collateral_enabled: true,
            };
            self.snapshot_differences.push(SnapshotDifference {
                time,
                protocol: Protocol::Maker,
                market: snapshot.market,
                account: snapshot.account,
                asset: snapshot.asset,
                rebuilt: side(old.ink, old.art),
                snapshot: side(snapshot.collateral.0, art),
            });
        }
        Ok(Applied::Exact)
    }
}
