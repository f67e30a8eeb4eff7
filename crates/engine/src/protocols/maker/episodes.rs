//! What a check sees of a vault that stays unsafe: the evidence its unsafe episode's cause is
//! decided from (docs/fidelity.md, "The other way round").
//!
//! A check asks about every vault with an open episode, and in a crash that is most of the
//! unsafe vaults at every check: what is the same for all vaults of an ilk (the room under the
//! limits and the most one liquidation may take, `dust`, where the OSM value came from) is
//! worked out once per ilk and check, leaving each vault its own health, debt and refusal.

use super::*;
use crate::protocol::EpisodeCheck;

impl MakerModel {
    /// For each (ilk, vault) of `accounts` (sorted by ilk): the vault's health at the ilk's
    /// `spot`, whether `Dog.bark` (or `Cat.bite` before the Dog) would revert now although the
    /// vault is unsafe, the room and dust it would be judged against, and where the OSM value
    /// came from; `None` for a vault without debt or unknown. The ilks were dripped and poked
    /// by the check.
    pub(super) fn vault_checks(
        &self,
        accounts: &[(Id, Id)],
        out: &mut Vec<Option<EpisodeCheck>>,
    ) -> Result<(), EngineError> {
        let mut slots = Vec::new();
        let mut urns = Vec::new();
        let mut rest = accounts;
        while let Some(((market, _), _)) = rest.split_first() {
            let ilk_size = rest.iter().take_while(|(m, _)| m == market).count();
            let (group, after) = rest.split_at(ilk_size);
            rest = after;
            let mut ilk_check = self.ilk_check(market);
            let Some(ilk) = ilk_check.ilk else {
                out.extend(group.iter().map(|_| None));
                continue;
            };
            // The vaults are read in loops of nothing but independent reads, whose cache misses
            // overlap (a million vaults do not fit in the caches), before any arithmetic.
            slots.clear();
            slots.extend(group.iter().map(|(_, account)| ilk.vaults.find(account)));
            urns.clear();
            urns.extend(
                slots
                    .iter()
                    .map(|slot| slot.map(|slot| ilk.vaults.at(slot).urn())),
            );
            for urn in &urns {
                out.push(match urn {
                    Some(urn) => ilk_check.vault(*urn)?,
                    None => None,
                });
            }
        }
        Ok(())
    }

    /// What a check sees of ilk `market`, the same for each of its vaults.
    fn ilk_check(&self, market: &Id) -> IlkCheck<'_> {
        let ilk = self.ilks.get(market);
        let room = ilk.and_then(|ilk| {
            if ilk.dog_live {
                ilk.dog_room(self.dog_hole.map(|hole| (hole, self.dog_dirt)))
            } else {
                self.cat_box.map(|b| b.saturating_sub(self.cat_litter))
            }
        });
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
        IlkCheck {
            ilk,
            room,
            room_wad: room.map(|room| room / RAY),
            limit: None,
            dust: ilk.map_or(U256::ZERO, |ilk| ilk.dust / RAY),
            feed,
            age,
            recorded,
        }
    }
}

/// [`rules::dog_limit`] or [`rules::cat_limit`] of an ilk at one check.
#[derive(Clone, Copy)]
enum Limit {
    Dog(Result<Option<U256>, Refusal>),
    Cat(Result<U256, Refusal>),
}

/// What one check sees of an ilk, the same for each of its vaults.
struct IlkCheck<'a> {
    /// `None`: an ilk the model does not know (its vaults give no evidence).
    ilk: Option<&'a Ilk>,
    /// The room the Dog's `hole`/`Hole` (or the Cat's `box`) leave, rad; `None`: unlimited.
    room: Option<U256>,
    /// `room` in wad.
    room_wad: Option<U256>,
    /// The most one liquidation may take, worked out for the first vault with debt (where a
    /// vault at a time would first have computed it, so an overflow fails at the same vault).
    limit: Option<Limit>,
    /// `dust`, wad.
    dust: U256,
    feed: Option<Id>,
    age: Option<i64>,
    recorded: bool,
}

impl IlkCheck<'_> {
    /// What the check sees of a vault of this (known) ilk holding `urn`.
    fn vault(&mut self, urn: Urn) -> Result<Option<EpisodeCheck>, EngineError> {
        let Some(ilk) = self.ilk else {
            return Ok(None);
        };
        let Some(health) = rules::health(urn, ilk.spot, ilk.rate)? else {
            return Ok(None);
        };
        let limit = match self.limit {
            Some(limit) => limit,
            None => *self.limit.insert(if ilk.dog_live {
                Limit::Dog(rules::dog_limit(ilk.rate, ilk.dog_chop, self.room)?)
            } else {
                Limit::Cat(rules::cat_limit(
                    ilk.rate,
                    ilk.dust,
                    ilk.cat_chop,
                    ilk.dunk,
                    self.room,
                )?)
            }),
        };
        let refusal = match limit {
            Limit::Dog(Ok(limit)) => {
                rules::dog_refusal(urn, ilk.rate, ilk.dust, ilk.dog_chop, limit)?
            }
            Limit::Cat(Ok(limit)) => rules::cat_take(urn, ilk.rate, ilk.cat_chop, limit)?.err(),
            Limit::Dog(Err(refusal)) | Limit::Cat(Err(refusal)) => Some(refusal),
        };
        Ok(Some(EpisodeCheck {
            health,
            refusal: refusal.map(Refusal::reason),
            room: self.room_wad,
            debt: div_ray(mul(urn.art, ilk.rate, "art * rate")?),
            dust: self.dust,
            feed: self.feed,
            age: self.age,
            recorded: self.recorded,
        }))
    }
}
