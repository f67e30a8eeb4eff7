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
//! Episodes live in a vector of slots (a closed one's slot is reused by the next opened). A
//! numbered account's (a Maker vault's) is found by its number in a table of its market
//! ([`Numbered`], 4 bytes per vault), which also marks a recorded liquidation: a liquidation
//! then costs no read of the episode (~200 bytes, nearly always out of cache, about 5% of a
//! million-vault Maker replay when it was a field of the episode). Other accounts' episodes are
//! found by a hash table of slots, whose 8-byte entry is the slot and 32 bits of its key's hash:
//! probing compares those bits before it reads the stored key, and growing the table rehashes
//! from them alone.
//!
//! Determinism: slots are numbered in opening order, which a replay restored from a checkpoint
//! does not share with one from the start, and no table is iterated where order matters:
//! everything that reaches an output or a checkpoint walks the episodes in key order.

use std::hash::BuildHasher;

use cascade_events::{Id, Protocol, Timestamp};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use super::episodes::Gathered;
use crate::EngineError;
use crate::protocol::{EpisodeAccount, ProtocolModel};
use crate::run::EpisodeEvidence;
use crate::slots::{DIRECT_NUMBERS, with_room_of};
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
    /// Whether a liquidation of it was recorded; while open, a numbered account's is marked in
    /// its [`Numbered`] entry instead (what [`Tracker::close`] and [`Tracker::sorted`] give
    /// reads both).
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

/// An entry of [`Tracker::lookup`]: a slot and the bits of its key's hash ([`key_bits`]).
#[derive(Clone, Copy, Debug)]
struct Found {
    slot: u32,
    bits: u32,
}

/// 32 bits of the hash of `key`.
fn key_bits(key: &Key) -> u32 {
    let hash = FxBuildHasher.hash_one(key);
    (hash ^ (hash >> 32)) as u32
}

/// The table's hash of an entry with `bits`: the multiplication spreads them over the top bits,
/// which the table's one-byte tags take.
fn table_hash(bits: u32) -> u64 {
    u64::from(bits).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A [`Numbered`] entry's mark of a recorded liquidation.
const LIQUIDATED: u32 = 1 << 31;

/// The episodes of one protocol's market's numbered accounts (numbers below
/// [`DIRECT_NUMBERS`], as in [`crate::slots`]): entry `n` is zero when account
/// `n` has none open, else one more than its slot, with [`LIQUIDATED`] set once a liquidation
/// of it was recorded.
#[derive(Clone, Debug)]
struct Numbered {
    protocol: Protocol,
    market: Id,
    entries: Vec<u32>,
}

/// The open episodes of every model.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// Each open episode with its key, in slots; `None` in a free slot.
    slots: Vec<Option<(Key, Episode)>>,
    /// The free slots, the most recently freed last (reused first: its memory is warm).
    free: Vec<u32>,
    /// The slot of each open episode of an account not numbered, by key; point lookups only,
    /// never iterated.
    lookup: HashTable<Found>,
    /// The slots of numbered accounts' episodes (Maker vaults), per protocol and market.
    numbered: Vec<Numbered>,
    /// How many episodes are open (the occupied slots).
    open: usize,
    /// How many episodes are open per protocol and market (a handful of entries).
    markets: Vec<(Protocol, Id, u32)>,
    /// Test oracle: each open episode's evidence observed at every check as it happened.
    #[cfg(test)]
    eager: Option<Eager>,
}

/// A copy keeps the slot vector's spare room, as a copied state (a sweep point) goes on opening
/// episodes.
impl Clone for Tracker {
    fn clone(&self) -> Self {
        Self {
            slots: with_room_of(&self.slots),
            free: self.free.clone(),
            lookup: self.lookup.clone(),
            numbered: self.numbered.clone(),
            open: self.open,
            markets: self.markets.clone(),
            #[cfg(test)]
            eager: self.eager.clone(),
        }
    }
}

impl Tracker {
    pub(super) fn len(&self) -> usize {
        self.open
    }

    /// Where the entry of `key` is when its account is numbered: the table and the number.
    fn numbered_place(&self, key: &Key) -> Option<(Option<usize>, usize)> {
        let (protocol, market, Id::Number(number)) = key else {
            return None;
        };
        if *number >= DIRECT_NUMBERS {
            return None;
        }
        let table = self
            .numbered
            .iter()
            .position(|table| table.protocol == *protocol && table.market == *market);
        Some((table, *number as usize))
    }

    /// The [`Numbered`] entry of `key` (zero when none is open), if its account is numbered.
    fn numbered_entry(&self, key: &Key) -> Option<u32> {
        let (table, number) = self.numbered_place(key)?;
        Some(table.map_or(0, |table| {
            self.numbered[table]
                .entries
                .get(number)
                .copied()
                .unwrap_or(0)
        }))
    }

    /// The slot of `key`'s open episode.
    fn find(&self, key: &Key) -> Option<u32> {
        if let Some(entry) = self.numbered_entry(key) {
            return (entry != 0).then(|| (entry & !LIQUIDATED) - 1);
        }
        let bits = key_bits(key);
        self.lookup
            .find(table_hash(bits), |found| {
                found.bits == bits
                    && self.slots[found.slot as usize].as_ref().map(|(k, _)| k) == Some(key)
            })
            .map(|found| found.slot)
    }

    /// The episode in `slot`; panics on a free slot.
    fn at_mut(&mut self, slot: u32) -> &mut Episode {
        &mut self.slots[slot as usize]
            .as_mut()
            .expect("an occupied slot")
            .1
    }

    /// Marks the open episode of `key`, if any, liquidated; a numbered account's in its
    /// [`Numbered`] entry, which spares reading the episode.
    pub(super) fn mark_liquidated(&mut self, key: &Key) {
        match self.numbered_place(key) {
            Some((Some(table), number)) => {
                if let Some(entry) = self.numbered[table].entries.get_mut(number)
                    && *entry != 0
                {
                    *entry |= LIQUIDATED;
                }
            }
            Some((None, _)) => {}
            None => {
                if let Some(slot) = self.find(key) {
                    self.at_mut(slot).liquidated = true;
                }
            }
        }
    }

    /// Whether the episode of `key` was liquidated.
    fn liquidated(&self, key: &Key, episode: &Episode) -> bool {
        episode.liquidated
            || self
                .numbered_entry(key)
                .is_some_and(|entry| entry & LIQUIDATED != 0)
    }

    /// Stores `episode` of `key` (which has none open) in a slot.
    fn insert(&mut self, key: Key, episode: Episode) -> u32 {
        let entry = Some((key, episode));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = entry;
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|slot| *slot < LIQUIDATED - 1)
                    .expect("fewer than 2^31 open episodes");
                self.slots.push(entry);
                slot
            }
        };
        if let Some((table, number)) = self.numbered_place(&key) {
            let table = table.unwrap_or_else(|| {
                self.numbered.push(Numbered {
                    protocol: key.0,
                    market: key.1,
                    entries: Vec::new(),
                });
                self.numbered.len() - 1
            });
            let entries = &mut self.numbered[table].entries;
            if entries.len() <= number {
                entries.resize(number + 1, 0);
            }
            entries[number] = slot + 1;
        } else {
            let bits = key_bits(&key);
            self.lookup
                .insert_unique(table_hash(bits), Found { slot, bits }, |found| {
                    table_hash(found.bits)
                });
        }
        self.open += 1;
        slot
    }

    /// Every open episode's key and slot, in key order.
    fn sorted_slots(&self, protocol: Option<Protocol>) -> Vec<(Key, u32)> {
        let mut keys: Vec<(Key, u32)> = self
            .slots
            .iter()
            .zip(0..)
            .filter_map(|(entry, slot)| entry.as_ref().map(|(key, _)| (*key, slot)))
            .filter(|(key, _)| protocol.is_none_or(|protocol| key.0 == protocol))
            .collect();
        keys.sort_unstable_by_key(|(key, _)| *key);
        keys
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
        if let Some(slot) = self.find(&key) {
            return (self.at_mut(slot), false);
        }
        let episode = Episode {
            since: time,
            last_seen: time,
            liquidated: false,
            folded: None,
            stretches: first()
                .map(|(account, from)| Stretch { account, from })
                .into_iter()
                .collect(),
        };
        let slot = self.insert(key, episode);
        let (protocol, market, _) = key;
        match self
            .markets
            .iter_mut()
            .find(|(p, m, _)| *p == protocol && *m == market)
        {
            Some((_, _, open)) => *open += 1,
            None => self.markets.push((protocol, market, 1)),
        }
        (self.at_mut(slot), true)
    }

    /// Removes the episode of `key`.
    pub(super) fn close(&mut self, key: &Key) -> Option<Episode> {
        let (slot, liquidated) = match self.numbered_place(key) {
            Some((table, number)) => {
                let entry = self.numbered[table?].entries.get_mut(number)?;
                if *entry == 0 {
                    return None;
                }
                let found = (*entry & !LIQUIDATED) - 1;
                let liquidated = *entry & LIQUIDATED != 0;
                *entry = 0;
                (found, liquidated)
            }
            None => {
                let bits = key_bits(key);
                let slots = &self.slots;
                let (found, _) = self
                    .lookup
                    .find_entry(table_hash(bits), |found| {
                        found.bits == bits
                            && slots[found.slot as usize].as_ref().map(|(k, _)| k) == Some(key)
                    })
                    .ok()?
                    .remove();
                (found.slot, false)
            }
        };
        let (_, mut episode) = self.slots[slot as usize].take().expect("an occupied slot");
        episode.liquidated |= liquidated;
        self.free.push(slot);
        self.open -= 1;
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
        self.sorted_slots(Some(protocol))
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    /// Every open episode and whether it was liquidated, in key order.
    pub(super) fn sorted(&self) -> Vec<(&Key, &Episode, bool)> {
        let mut all: Vec<(&Key, &Episode, bool)> = self
            .slots
            .iter()
            .flatten()
            .map(|(key, episode)| (key, episode, self.liquidated(key, episode)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Removes every open episode, in key order.
    pub(super) fn take_sorted(&mut self) -> Vec<(Key, Episode)> {
        self.markets.clear();
        self.lookup.clear();
        self.free.clear();
        self.open = 0;
        let mut slots = std::mem::take(&mut self.slots);
        for (key, episode) in slots.iter_mut().flatten() {
            episode.liquidated = self.liquidated(key, episode);
        }
        self.numbered.clear();
        let mut all: Vec<(Key, Episode)> = slots.into_iter().flatten().collect();
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
            let Some(slot) = self.find(&(protocol, *market, *account)) else {
                continue;
            };
            let episode = self.at_mut(slot);
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
        for (key, slot) in self.sorted_slots(Some(protocol)) {
            self.at_mut(slot).fold(&key.1, until, model)?;
            #[cfg(test)]
            {
                let gathered = self.at_mut(slot).gathered();
                self.compare_with_eager(&key, &gathered, false);
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
        for ((p, market, account), episode) in self.slots.iter_mut().flatten() {
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
        for (_, episode, _) in self.sorted() {
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
        if liquidated {
            self.mark_liquidated(&key);
        }
    }

    /// Reads what [`Tracker::encode_evidence`] wrote.
    pub(super) fn decode_evidence(
        &mut self,
        input: &mut StateReader<'_>,
    ) -> Result<(), EngineError> {
        for (_, slot) in self.sorted_slots(None) {
            let gathered = Gathered::decode(input)?;
            self.at_mut(slot).folded =
                (gathered != Gathered::default()).then(|| Box::new(gathered));
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
        let keys = self.slots.iter().flatten().map(|(key, _)| key);
        for key in keys.filter(|(p, _, _)| *p == protocol) {
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
            .slots
            .iter()
            .flatten()
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
