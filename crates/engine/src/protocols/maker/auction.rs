//! Auctions in flight: the Dog's `hole`/`dirt` and Clipper, the Cat's `box`/`litter` and Flipper
//! (dss `dog.sol`, `clip.sol`, `cat.sol`, `flip.sol`), and `Vat.grab` of a liquidated vault.

use super::*;

/// An auction whose `tab` still counts against `hole`/`Hole` or the Cat's `box`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OpenAuction {
    pub(super) ilk: Id,
    pub(super) tab: U256,
    pub(super) dog: bool,
    /// When its tab stops counting: auctions are assumed to settle `auction_seconds` after
    /// their kick (at least one second: at the next later event), as the export records no
    /// take events.
    pub(super) settles_at: Timestamp,
}

impl Ilk {
    /// The room the Dog leaves (`min(Hole - Dirt, hole - dirt)`), `None` when unlimited.
    pub(super) fn dog_room(&self, global: Option<(U256, U256)>) -> Option<U256> {
        let local = self.hole.map(|hole| hole.saturating_sub(self.dirt));
        let global = global.map(|(hole, dirt)| hole.saturating_sub(dirt));
        match (local, global) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl MakerModel {
    /// What `Dog.bark` takes from `urn` when the room under `hole`/`Hole` is what a recorded
    /// partial bark implies (its `due` times `chop`): the chain's `Dirt` and `Hole` are not in
    /// the export, the record's share is, and applying the contract's take for that room keeps
    /// the vault's remainder for its next bark. `None` when the rules refuse that room.
    pub(super) fn partial_take(
        &self,
        ilk_id: &Id,
        urn: Urn,
        recorded_due: U256,
    ) -> Result<Option<Take>, EngineError> {
        let ilk = &self.ilks[ilk_id];
        if !ilk.dog_live {
            return Ok(None);
        }
        let room = mul_div(
            mul(recorded_due, RAY, "due * RAY")?,
            ilk.dog_chop,
            WAD,
            "due * chop",
        )?;
        Ok(rules::dog_bark(urn, ilk.rate, ilk.dust, ilk.dog_chop, Some(room))?.ok())
    }

    pub(super) fn release_auctions(&mut self, time: Timestamp) {
        if self.auctions.is_empty() {
            return;
        }
        let (done, open): (Vec<_>, Vec<_>) = self
            .auctions
            .drain(..)
            .partition(|auction| auction.settles_at <= time);
        self.auctions = open;
        for auction in done {
            if auction.dog {
                self.dog_dirt = self.dog_dirt.saturating_sub(auction.tab);
                if let Some(ilk) = self.ilks.get_mut(&auction.ilk) {
                    ilk.dirt = ilk.dirt.saturating_sub(auction.tab);
                }
            } else {
                self.cat_litter = self.cat_litter.saturating_sub(auction.tab);
            }
        }
    }

    pub(super) fn open_auction(&mut self, ilk_id: Id, tab: U256, dog: bool, time: Timestamp) {
        if dog {
            self.dog_dirt = self.dog_dirt.saturating_add(tab);
            if let Some(ilk) = self.ilks.get_mut(&ilk_id) {
                ilk.dirt = ilk.dirt.saturating_add(tab);
            }
        } else {
            self.cat_litter = self.cat_litter.saturating_add(tab);
        }
        let settles_at = Timestamp(time.0.saturating_add(self.auction_seconds.max(1)));
        self.auctions.push(OpenAuction {
            ilk: ilk_id,
            tab,
            dog,
            settles_at,
        });
    }

    /// What the regime in force would take from `urn` now.
    pub(super) fn take(&self, ilk: &Ilk, urn: Urn) -> Result<Result<Take, Refusal>, EngineError> {
        if ilk.dog_live {
            let global = self.dog_hole.map(|hole| (hole, self.dog_dirt));
            rules::dog_bark(urn, ilk.rate, ilk.dust, ilk.dog_chop, ilk.dog_room(global))
        } else {
            let room = self.cat_box.map(|b| b.saturating_sub(self.cat_litter));
            rules::cat_bite(urn, ilk.rate, ilk.dust, ilk.cat_chop, ilk.dunk, room)
        }
    }

    /// Removes `dink`/`dart` from a vault (`Vat.grab`) and opens the auction.
    pub(super) fn grab(
        &mut self,
        ilk_id: Id,
        account: Id,
        dink: U256,
        dart: U256,
        tab: U256,
        time: Timestamp,
    ) -> Result<(), EngineError> {
        let dog = self.ilks.get(&ilk_id).is_some_and(|ilk| ilk.dog_live);
        if let Some(ilk) = self.ilks.get_mut(&ilk_id)
            && let Some(slot) = ilk.vaults.find(&account)
        {
            let vault = ilk.vaults.at_mut(slot);
            let old = *vault;
            vault.ink = vault.ink.saturating_sub(dink);
            vault.art = vault.art.saturating_sub(dart);
            ilk.reindex(slot, old)?;
        }
        self.open_auction(ilk_id, tab, dog, time);
        Ok(())
    }
}
