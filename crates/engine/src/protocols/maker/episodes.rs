//! What a check sees of a vault that stays unsafe: the evidence its unsafe episode's cause is
//! decided from (docs/fidelity.md, "The other way round").

use super::*;
use crate::protocol::EpisodeCheck;

impl MakerModel {
    /// The vault's health at the ilk's `spot`, whether `Dog.bark` (or `Cat.bite` before the Dog)
    /// would revert now although the vault is unsafe, the room and dust it would be judged
    /// against, and where the OSM value came from. The ilk was dripped and poked by the check.
    pub(super) fn vault_check(
        &self,
        market: &Id,
        account: &Id,
    ) -> Result<Option<EpisodeCheck>, EngineError> {
        let Some(ilk) = self.ilks.get(market) else {
            return Ok(None);
        };
        let Some(vault) = ilk.vaults.get(account) else {
            return Ok(None);
        };
        let urn = vault.urn();
        let Some(health) = rules::health(urn, ilk.spot, ilk.rate)? else {
            return Ok(None);
        };
        let refusal = self.take(ilk, urn)?.err().map(Refusal::reason);
        let room = if ilk.dog_live {
            ilk.dog_room(self.dog_hole.map(|hole| (hole, self.dog_dirt)))
        } else {
            self.cat_box.map(|b| b.saturating_sub(self.cat_litter))
        };
        let (feed, age, recorded) = match self.recorded_for(market) {
            Some(recorded) => (Some(recorded.oracle), None, true),
            None => match self.osm_reading(market) {
                Some(reading) => (
                    Some(reading.point.feed),
                    Some(reading.read_at.0 - reading.point.time.0),
                    false,
                ),
                None => (None, None, false),
            },
        };
        Ok(Some(EpisodeCheck {
            health,
            refusal,
            room: room.map(|room| room / RAY),
            debt: mul(urn.art, ilk.rate, "art * rate")? / RAY,
            dust: ilk.dust / RAY,
            feed,
            age,
            recorded,
        }))
    }
}
