//! What a check sees of a vault that stays unsafe: the evidence its unsafe episode's cause is
//! decided from (docs/fidelity.md, "The other way round").
//!
//! In a crash most unsafe vaults stay unsafe over several checks, and the run drops most of
//! their episodes (liquidated, or shorter than its threshold). So a check only logs, once per
//! ilk with an open episode, what every vault of the ilk shares ([`LoggedCheck`]: rate and spot,
//! the room under the limits and the most one liquidation may take, `dust`, where the OSM value
//! came from); a vault's own part (health, debt, refusal) is worked out from its `ink` and `art`
//! when the replay loop folds a stretch of checks over which the vault did not change
//! ([`ProtocolModel::fold_episode`]), which it does only for the episodes it keeps.

use std::ops::Range;

use super::*;
use crate::protocol::{EpisodeAccount, EpisodeCheck};

/// Per ilk with an open episode, what each check since its first open episode (or the last trim)
/// saw of it. Bookkeeping, not state: a restored model starts an empty log.
#[derive(Clone, Debug, Default)]
pub(super) struct EpisodeLog {
    ilks: Vec<(Id, IlkLog)>,
}

#[derive(Clone, Debug)]
struct IlkLog {
    /// The number of the check `checks[0]` is.
    first: u64,
    checks: Vec<LoggedCheck>,
}

impl IlkLog {
    fn end(&self) -> u64 {
        self.first + self.checks.len() as u64
    }
}

impl MakerModel {
    /// [`ProtocolModel::log_episode_check`].
    pub(super) fn log_check(
        &mut self,
        check: u64,
        markets: &[Id],
        changed: &mut Vec<(Id, Id)>,
    ) -> Result<(), EngineError> {
        let mut log = std::mem::take(&mut self.episode_log);
        log.ilks.retain(|(id, _)| markets.contains(id));
        for market in markets {
            // An ilk the model does not know has no vaults, so no evidence to log.
            let Some(logged) = self.logged_check(market) else {
                continue;
            };
            match log.ilks.iter_mut().find(|(id, _)| id == market) {
                Some((_, ilk_log)) => {
                    if ilk_log.end() != check {
                        // Not the next check: nothing logged before can be asked for again.
                        ilk_log.first = check;
                        ilk_log.checks.clear();
                    }
                    ilk_log.checks.push(logged);
                }
                None => log.ilks.push((
                    *market,
                    IlkLog {
                        first: check,
                        checks: vec![logged],
                    },
                )),
            }
        }
        self.episode_log = log;
        for (id, ilk) in self.ilks.iter_mut() {
            changed.extend(
                ilk.touched
                    .drain(..)
                    .map(|slot| (*id, *ilk.vaults.id(slot))),
            );
        }
        Ok(())
    }

    /// [`ProtocolModel::episode_account`]: the vault's `ink` and `art`.
    pub(super) fn vault_account(&self, market: &Id, account: &Id) -> EpisodeAccount {
        let vault = self.ilks.get(market)?.vaults.get(account)?;
        Some([vault.ink, vault.art])
    }

    /// [`ProtocolModel::fold_episode`].
    pub(super) fn fold_checks(
        &self,
        market: &Id,
        account: EpisodeAccount,
        checks: Range<u64>,
        observe: &mut dyn FnMut(&EpisodeCheck),
    ) -> Result<(), EngineError> {
        let Some([ink, art]) = account else {
            return Ok(());
        };
        if checks.is_empty() || self.ilks.get(market).is_none() {
            return Ok(());
        }
        let logged = self
            .episode_log
            .ilks
            .iter()
            .find(|(id, _)| id == market)
            .and_then(|(_, log)| {
                let start = checks.start.checked_sub(log.first)?;
                let end = checks.end.checked_sub(log.first)?;
                log.checks.get(start as usize..end as usize)
            })
            .expect("the replay loop logs each check of an open episode's market until folded");
        let urn = Urn { ink, art };
        for check in logged {
            if let Some(check) = check.vault(urn)? {
                observe(&check);
            }
        }
        Ok(())
    }

    /// [`ProtocolModel::trim_episode_log`].
    pub(super) fn trim_log(&mut self, first: u64) {
        for (_, log) in &mut self.episode_log.ilks {
            let done = first.saturating_sub(log.first).min(log.checks.len() as u64);
            log.checks.drain(..done as usize);
            log.first = log.first.max(first);
        }
    }

    /// What a check sees of ilk `market`, the same for each of its vaults; `None` for an ilk
    /// the model does not know.
    fn logged_check(&self, market: &Id) -> Option<LoggedCheck> {
        let ilk = self.ilks.get(market)?;
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
        let mut logged = LoggedCheck {
            rate: ilk.rate,
            spot: ilk.spot,
            dust: ilk.dust,
            dog_live: ilk.dog_live,
            dog_chop: ilk.dog_chop,
            cat_chop: ilk.cat_chop,
            dunk: ilk.dunk,
            room,
            room_wad: room.map(|room| room / RAY),
            limit: None,
            dust_wad: ilk.dust / RAY,
            feed,
            age,
            recorded,
        };
        // An overflow is left for a fold to raise: only a vault with debt reads the limit.
        logged.limit = logged.limit().ok();
        Some(logged)
    }
}

/// [`rules::dog_limit`] or [`rules::cat_limit`] of an ilk at one check.
#[derive(Clone, Copy, Debug)]
enum Limit {
    Dog(Result<Option<U256>, Refusal>),
    Cat(Result<U256, Refusal>),
}

/// What one check saw of an ilk, the same for each of its vaults.
#[derive(Clone, Copy, Debug)]
struct LoggedCheck {
    /// `rate` and `spot` as the check dripped and poked them, ray.
    rate: U256,
    spot: U256,
    /// `dust`, rad.
    dust: U256,
    dog_live: bool,
    dog_chop: U256,
    cat_chop: U256,
    dunk: U256,
    /// The room the Dog's `hole`/`Hole` (or the Cat's `box`) leave, rad; `None`: unlimited.
    room: Option<U256>,
    /// `room` in wad.
    room_wad: Option<U256>,
    /// The most one liquidation may take; `None` when working it out overflowed (raised by
    /// the first vault with debt to read it, as when it was worked out there).
    limit: Option<Limit>,
    /// `dust`, wad.
    dust_wad: U256,
    feed: Option<Id>,
    age: Option<i64>,
    recorded: bool,
}

impl LoggedCheck {
    fn limit(&self) -> Result<Limit, EngineError> {
        Ok(if self.dog_live {
            Limit::Dog(rules::dog_limit(self.rate, self.dog_chop, self.room)?)
        } else {
            Limit::Cat(rules::cat_limit(
                self.rate,
                self.dust,
                self.cat_chop,
                self.dunk,
                self.room,
            )?)
        })
    }

    /// What this check saw of a vault holding `urn`: its health at the ilk's `spot`, whether
    /// `Dog.bark` (or `Cat.bite` before the Dog) would revert although the vault is unsafe, the
    /// room and dust it would be judged against, and where the OSM value came from; `None`
    /// for a vault without debt.
    fn vault(&self, urn: Urn) -> Result<Option<EpisodeCheck>, EngineError> {
        let Some(health) = rules::health(urn, self.spot, self.rate)? else {
            return Ok(None);
        };
        let limit = match self.limit {
            Some(limit) => limit,
            None => self.limit()?,
        };
        let refusal = match limit {
            Limit::Dog(Ok(limit)) => {
                rules::dog_refusal(urn, self.rate, self.dust, self.dog_chop, limit)?
            }
            Limit::Cat(Ok(limit)) => rules::cat_take(urn, self.rate, self.cat_chop, limit)?.err(),
            Limit::Dog(Err(refusal)) | Limit::Cat(Err(refusal)) => Some(refusal),
        };
        Ok(Some(EpisodeCheck {
            health,
            refusal: refusal.map(Refusal::reason),
            room: self.room_wad,
            debt: div_ray(mul(urn.art, self.rate, "art * rate")?),
            dust: self.dust_wad,
            feed: self.feed,
            age: self.age,
            recorded: self.recorded,
        }))
    }
}
