//! The unsafe episodes open now, and their evidence, gathered lazily.
//!
//! An episode opens at the check that finds an account unsafe and closes at the first that finds
//! it safe again (or when the run ends). Its evidence ([`Gathered`]) is a fold, in check order,
//! of what each of its checks saw of the account. Folding at every check costs open episodes
//! times checks: in a crash hundreds of thousands of vaults stay unsafe for a few checks each,
//! and the run drops nearly all those episodes (liquidated, or shorter than its threshold). So
//! the model logs what each market's accounts share at each check
//! ([`ProtocolModel::log_episode_check`]), and an episode keeps only its account's own state per
//! stretch of checks over which events did not change it. A stretch is folded, with the same
//! arithmetic in the same order, only when the run keeps the episode, when a checkpoint writes
//! it, when the model's log grows long, or when the account's stretches pile up: never for an
//! episode dropped before then.
//!
//! Episodes are found by a hash map (one lookup per status change and recorded liquidation);
//! everything that reaches an output or a checkpoint walks them in key order.

// The tracker's hash map is only asked for one key at a time; every walk sorts its keys first.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;

use cascade_events::{Id, Protocol, Timestamp};
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use super::episodes::Gathered;
use crate::EngineError;
use crate::protocol::{EpisodeAccount, ProtocolModel};
use crate::run::EpisodeEvidence;
use crate::state::{StateReader, StateWriter};

/// (protocol, market, account).
pub(super) type Key = (Protocol, Id, Id);

/// Stretches an episode keeps unfolded at most: an account changed more often while unsafe has
/// its older stretches folded at once (fewer in the crate's own tests, which fold through it).
const MAX_STRETCHES: usize = if cfg!(test) { 2 } else { 8 };

/// One open unsafe episode.
#[derive(Clone, Debug)]
pub(super) struct Episode {
    pub(super) since: Timestamp,
    pub(super) last_seen: Timestamp,
    pub(super) liquidated: bool,
    /// What the checks folded so far saw (`None`: none yet; boxed, as most episodes never fold).
    folded: Option<Box<Gathered>>,
    /// The checks not folded yet, as stretches over which the account did not change, oldest
    /// first: each runs up to the next one's first check, the last up to the latest check.
    /// Empty for a model that does not explain episodes.
    stretches: SmallVec<[Stretch; 1]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stretch {
    account: EpisodeAccount,
    /// The number of its first check.
    from: u64,
}

impl Episode {
    /// Folds every check before `until` into `folded`, leaving one stretch from `until` on.
    fn fold(
        &mut self,
        market: &Id,
        until: u64,
        model: &dyn ProtocolModel,
    ) -> Result<(), EngineError> {
        let Some(&last) = self.stretches.last() else {
            return Ok(());
        };
        if self.stretches.len() == 1 && last.from >= until {
            return Ok(());
        }
        let gathered = self.folded.get_or_insert_with(Default::default);
        for (at, stretch) in self.stretches.iter().enumerate() {
            let end = self.stretches.get(at + 1).map_or(until, |next| next.from);
            model.fold_episode(market, stretch.account, stretch.from..end, &mut |check| {
                gathered.observe(check)
            })?;
        }
        self.stretches.clear();
        self.stretches.push(Stretch {
            account: last.account,
            from: until,
        });
        Ok(())
    }

    /// What its folded checks saw (all of them once [`Tracker::fold_all`] ran).
    fn gathered(&self) -> Gathered {
        self.folded.as_deref().cloned().unwrap_or_default()
    }
}

/// The open episodes of every model.
#[derive(Clone, Debug, Default)]
pub(super) struct Tracker {
    /// Point lookups only; walks go through [`Tracker::sorted`].
    episodes: HashMap<Key, Episode, FxBuildHasher>,
    /// How many episodes are open per protocol and market (a handful of entries).
    markets: Vec<(Protocol, Id, u32)>,
    /// Test oracle: each open episode's evidence observed at every check as it happened.
    #[cfg(test)]
    eager: Option<Eager>,
}

impl Tracker {
    pub(super) fn len(&self) -> usize {
        self.episodes.len()
    }

    pub(super) fn get_mut(&mut self, key: &Key) -> Option<&mut Episode> {
        self.episodes.get_mut(key)
    }

    /// The open episode of `key`, opened at `time` if there is none (with its account's state
    /// `first` gives, as of the check numbered with it, for a model that explains episodes),
    /// and whether it was opened now.
    pub(super) fn open(
        &mut self,
        key: Key,
        time: Timestamp,
        first: impl FnOnce() -> Option<(EpisodeAccount, u64)>,
    ) -> (&mut Episode, bool) {
        let (protocol, market, _) = key;
        let mut opened = false;
        let episode = self.episodes.entry(key).or_insert_with(|| {
            opened = true;
            Episode {
                since: time,
                last_seen: time,
                liquidated: false,
                folded: None,
                stretches: first()
                    .map(|(account, from)| Stretch { account, from })
                    .into_iter()
                    .collect(),
            }
        });
        if opened {
            match self
                .markets
                .iter_mut()
                .find(|(p, m, _)| *p == protocol && *m == market)
            {
                Some((_, _, open)) => *open += 1,
                None => self.markets.push((protocol, market, 1)),
            }
        }
        (episode, opened)
    }

    /// Removes the episode of `key`.
    pub(super) fn close(&mut self, key: &Key) -> Option<Episode> {
        let episode = self.episodes.remove(key)?;
        let (protocol, market, _) = key;
        if let Some(at) = self
            .markets
            .iter()
            .position(|(p, m, _)| p == protocol && m == market)
        {
            self.markets[at].2 -= 1;
            if self.markets[at].2 == 0 {
                self.markets.swap_remove(at);
            }
        }
        Some(episode)
    }

    /// Whether `protocol` has an open episode.
    pub(super) fn any_open(&self, protocol: Protocol) -> bool {
        self.markets.iter().any(|(p, _, _)| *p == protocol)
    }

    /// The markets of `protocol` with an open episode, into `out` (cleared first).
    pub(super) fn markets_of(&self, protocol: Protocol, out: &mut Vec<Id>) {
        out.clear();
        out.extend(
            self.markets
                .iter()
                .filter(|(p, _, _)| *p == protocol)
                .map(|(_, market, _)| *market),
        );
    }

    /// The keys of `protocol`'s open episodes, in key order.
    pub(super) fn keys_of(&self, protocol: Protocol) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .episodes
            .keys()
            .filter(|(p, _, _)| *p == protocol)
            .copied()
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Every open episode, in key order.
    pub(super) fn sorted(&self) -> Vec<(&Key, &Episode)> {
        let mut all: Vec<(&Key, &Episode)> = self.episodes.iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Removes every open episode, in key order.
    pub(super) fn take_sorted(&mut self) -> Vec<(Key, Episode)> {
        self.markets.clear();
        let mut all: Vec<(Key, Episode)> = self.episodes.drain().collect();
        all.sort_unstable_by_key(|(key, _)| *key);
        all
    }

    /// After check number `check` of `protocol`'s model was logged: a new stretch, from this
    /// check, for each account of `changed` (those events changed since the previous check)
    /// with an open episode whose state differs from its stretch's.
    pub(super) fn split(
        &mut self,
        protocol: Protocol,
        changed: &[(Id, Id)],
        check: u64,
        model: &dyn ProtocolModel,
    ) -> Result<(), EngineError> {
        for (market, account) in changed {
            let Some(episode) = self.episodes.get_mut(&(protocol, *market, *account)) else {
                continue;
            };
            let now = model.episode_account(market, account);
            let stretches = episode.stretches.len();
            match episode.stretches.last_mut() {
                Some(last) if last.account == now => {}
                Some(last) if last.from == check => last.account = now,
                _ if stretches >= MAX_STRETCHES => {
                    episode.fold(market, check, model)?;
                    if let Some(last) = episode.stretches.last_mut() {
                        last.account = now;
                    }
                }
                _ => episode.stretches.push(Stretch {
                    account: now,
                    from: check,
                }),
            }
        }
        #[cfg(test)]
        self.observe_eagerly(protocol, check, model)?;
        Ok(())
    }

    /// Folds every check before `until` of each of `protocol`'s open episodes.
    pub(super) fn fold_all(
        &mut self,
        protocol: Protocol,
        until: u64,
        model: &dyn ProtocolModel,
    ) -> Result<(), EngineError> {
        for key in self.keys_of(protocol) {
            if let Some(episode) = self.episodes.get_mut(&key) {
                episode.fold(&key.1, until, model)?;
                #[cfg(test)]
                self.compare_with_eager(&key, &self.episodes[&key].gathered(), false);
            }
        }
        Ok(())
    }

    /// The evidence of `episode` of `key`, closed with its checks before `until` (`None` when
    /// no check gave evidence); worked out only when the run `keeps` it.
    pub(super) fn evidence(
        &mut self,
        key: &Key,
        mut episode: Episode,
        until: u64,
        model: &dyn ProtocolModel,
        keeps: bool,
    ) -> Result<Option<EpisodeEvidence>, EngineError> {
        #[cfg(test)]
        let keeps = keeps || self.eager.is_some();
        if !keeps {
            return Ok(None);
        }
        episode.fold(&key.1, until, model)?;
        let gathered = episode.gathered();
        #[cfg(test)]
        self.compare_with_eager(key, &gathered, true);
        Ok(gathered.evidence())
    }

    /// Restarts `protocol`'s episodes, restored from a checkpoint (everything before it folded),
    /// with their accounts' states now, from check number `check`.
    pub(super) fn restart(&mut self, protocol: Protocol, check: u64, model: &dyn ProtocolModel) {
        for ((p, market, account), episode) in &mut self.episodes {
            if *p == protocol {
                episode.stretches.clear();
                episode.stretches.push(Stretch {
                    account: model.episode_account(market, account),
                    from: check,
                });
            }
        }
    }

    /// Writes each open episode's evidence, in key order (after [`Tracker::fold_all`]).
    pub(super) fn encode_evidence(&self, out: &mut StateWriter) {
        for (_, episode) in self.sorted() {
            episode.gathered().encode(out);
        }
    }

    /// Adds an episode read from a checkpoint (its evidence follows, [`Tracker::decode_evidence`]).
    pub(super) fn restore(
        &mut self,
        key: Key,
        since: Timestamp,
        last_seen: Timestamp,
        liquidated: bool,
    ) {
        let (episode, _) = self.open(key, since, || None);
        episode.last_seen = last_seen;
        episode.liquidated = liquidated;
    }

    /// Reads what [`Tracker::encode_evidence`] wrote.
    pub(super) fn decode_evidence(
        &mut self,
        input: &mut StateReader<'_>,
    ) -> Result<(), EngineError> {
        let keys: Vec<Key> = self.sorted().into_iter().map(|(key, _)| *key).collect();
        for key in keys {
            let gathered = Gathered::decode(input)?;
            if let Some(episode) = self.episodes.get_mut(&key) {
                episode.folded = (gathered != Gathered::default()).then(|| Box::new(gathered));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl Tracker {
    /// The oracle's step: what check number `check` saw of every open episode of `protocol`,
    /// asked of each account as it is now, as the evidence was gathered before it was lazy.
    fn observe_eagerly(
        &mut self,
        protocol: Protocol,
        check: u64,
        model: &dyn ProtocolModel,
    ) -> Result<(), EngineError> {
        let Some(eager) = self.eager.as_mut() else {
            return Ok(());
        };
        for key in self.episodes.keys().filter(|(p, _, _)| *p == protocol) {
            let gathered = eager.seen.entry(*key).or_default();
            let (_, market, account) = key;
            model.fold_episode(
                market,
                model.episode_account(market, account),
                check..check + 1,
                &mut |seen| gathered.observe(seen),
            )?;
        }
        Ok(())
    }

    fn compare_with_eager(&mut self, key: &Key, lazy: &Gathered, closed: bool) {
        let Some(eager) = self.eager.as_mut() else {
            return;
        };
        let expected = if closed {
            eager.seen.remove(key)
        } else {
            eager.seen.get(key).cloned()
        };
        assert_eq!(
            *lazy,
            expected.unwrap_or_default(),
            "lazy evidence of {key:?}"
        );
        if lazy.evidence().is_some() {
            COMPARED.set(COMPARED.get() + 1);
        }
    }

    /// Starts the oracle, from what the open episodes folded so far (nothing in a fresh
    /// engine, everything before the checkpoint in a restored one).
    pub(super) fn observe_eagerly_from_now(&mut self) {
        let seen = self
            .episodes
            .iter()
            .map(|(key, episode)| (*key, episode.gathered()))
            .collect();
        self.eager = Some(Eager { seen });
    }
}

/// The test oracle's evidence of each open episode, observed at every check.
#[cfg(test)]
#[derive(Clone, Debug, Default)]
struct Eager {
    seen: std::collections::BTreeMap<Key, Gathered>,
}

#[cfg(test)]
thread_local! {
    /// How many episodes with evidence the oracle compared on this thread (one test's).
    static COMPARED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use cascade_events::{Amount, Event, Payload, PositionChange, Protocol, U256};
    use cascade_ingest::synth::{self, SynthConfig};
    use proptest::prelude::*;

    use crate::core::replay::{Engine, EngineConfig, Mode};
    use crate::run::LogInfo;

    /// A synthetic Maker crash in which every `unliquidated`-th recorded liquidation (none for
    /// zero) is replaced by a small deposit or draw on the vault, so that some unsafe vaults
    /// stay unsafe, change while unsafe, and have their episodes kept.
    fn market(seed: u64, accounts: u32, depth_bps: i32, unliquidated: usize) -> Vec<Event> {
        let mut config = SynthConfig::new(Protocol::Maker, accounts, seed);
        config.shock.depth_bps = depth_bps;
        let mut events = Vec::new();
        let mut liquidations = 0usize;
        synth::generate(&config, &mut |event| {
            let mut event = event.clone();
            if let Payload::Liquidation(liquidation) = &event.payload {
                liquidations += 1;
                if unliquidated > 0 && liquidations.is_multiple_of(unliquidated) {
                    let (asset, amount) = if liquidations.is_multiple_of(2) {
                        (liquidation.collateral_asset, liquidation.collateral_seized)
                    } else {
                        (liquidation.debt_asset, liquidation.debt_repaid)
                    };
                    let change = Box::new(PositionChange {
                        protocol: Protocol::Maker,
                        market: liquidation.market,
                        account: liquidation.account,
                        asset,
                        amount: Amount(amount.0 / U256::from(50u8)),
                        shares: None,
                    });
                    event.payload = if liquidations.is_multiple_of(2) {
                        Payload::Deposit(change)
                    } else {
                        Payload::Borrow(change)
                    };
                }
            }
            event.seq = events.len() as u64;
            events.push(event);
            Ok(())
        })
        .expect("generates");
        events
    }

    /// Replays `events` with the oracle on, taking a checkpoint every `every` events (none for
    /// zero) and going on from every other one restored; the oracle compares each episode's
    /// lazy evidence with the eager one at every checkpoint and close. Returns how many
    /// episodes with evidence it compared, and how many the run kept.
    fn compare(
        events: &[Event],
        threshold: i64,
        every: usize,
    ) -> Result<(u64, usize), crate::EngineError> {
        let config = EngineConfig {
            unsafe_threshold: threshold,
            ..EngineConfig::default()
        };
        let before = super::COMPARED.get();
        let mut engine = Engine::new(config.clone(), Mode::Historical);
        engine.observe_eagerly();
        for (at, event) in events.iter().enumerate() {
            engine.apply(event)?;
            if every > 0 && (at + 1) % every == 0 {
                let bytes = engine.checkpoint()?;
                if ((at + 1) / every).is_multiple_of(2) {
                    engine = Engine::new(config.clone(), Mode::Historical);
                    engine.restore(&bytes, at as u64 + 1)?;
                    engine.observe_eagerly();
                }
            }
        }
        let run = engine.finish(LogInfo::default())?;
        Ok((
            super::COMPARED.get() - before,
            run.unsafe_unliquidated.len(),
        ))
    }

    #[test]
    fn the_oracle_compares_kept_and_dropped_episodes() {
        let events = market(1, 300, -4000, 3);
        let (compared, kept) = compare(&events, 0, 0).expect("replays");
        assert!(kept > 0, "some episodes kept");
        assert!(compared > kept as u64, "{compared} compared, {kept} kept");
        let (with_checkpoints, _) = compare(&events, 0, 97).expect("replays");
        assert!(
            with_checkpoints >= compared,
            "{with_checkpoints} >= {compared}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Lazy evidence is what observing every open episode at every check gathers (the
        /// evidence before it was lazy), on random crashes, with and without checkpoints and
        /// resumptions, whatever the run keeps.
        #[test]
        fn lazy_evidence_is_eager_evidence(
            seed in any::<u64>(),
            accounts in 20u32..250,
            depth_bps in -6000i32..-1500,
            threshold in prop_oneof![Just(0i64), Just(600), Just(3600)],
            every in prop_oneof![Just(0usize), 15usize..400],
            unliquidated in prop_oneof![Just(0usize), 1usize..5],
        ) {
            let events = market(seed, accounts, depth_bps, unliquidated);
            compare(&events, threshold, every).expect("replays");
        }
    }
}
