//! Account storage for the hot path: every account gets a stable slot number on first sight, its
//! record lives in a dense vector at that slot, and a hash map answers "which slot is this id".
//!
//! A replay touches one account per event; with a million accounts a B-tree lookup costs about
//! twenty key comparisons and as many cache misses, several times per event. A slot costs one hash
//! lookup, and everything keyed by slot afterwards (the liquidation index, the pending actions of
//! the second) is a vector access.
//!
//! The hash table holds slots and hash tags only (8 bytes each) and its key comparison reads the
//! id stored beside the record: the lookup's out-of-cache reads are the table's word and the
//! record's own line, which the caller reads next anyway. A table of (id, slot) entries missed
//! twice per lookup, on its 48-byte entry and then on the record. The lookahead reads a batch's
//! table words before any of the batch's records ([`Slots::warm_lookup`]), so the two misses of
//! one lookup do not wait on each other across the batch.
//!
//! Numbered accounts (Maker vault numbers, dense small integers) skip the hash: a vector indexed by
//! the number holds their slots, one cache miss per lookup instead of two.
//!
//! Within an account, [`SmallMap`] keeps its few positions in a sorted vector (asset order, as
//! the B-tree it replaces); a model keeps its markets in one too.
//!
//! Determinism: the hash map is only ever asked for one key and never iterated, so its order
//! cannot reach any output. Slots are numbered in first-sight order, which a replay restored from
//! a checkpoint does not share with one from the start, so slot order must not reach an output
//! either: everything that reports or encodes accounts goes through [`Slots::sorted`] (account
//! order). The hasher is fixed (FxHash, no random seed), so even the table's internal layout, and
//! with it the replay's speed, is the same on every run.

use std::hash::BuildHasher;

use cascade_events::Id;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

/// Slot number of an account within one [`Slots`].
pub type Slot = u32;

/// Numbers below this go to the direct table (at most 64 MiB of it); larger ones to the map.
/// The unsafe-episode tracker keys its table of vaults by the same bound.
pub(crate) const DIRECT_NUMBERS: u64 = 1 << 24;
/// Marks a number without a slot in the direct table.
const NO_SLOT: Slot = Slot::MAX;

/// Records of type `V` by account id, in slots.
#[derive(Debug)]
pub struct Slots<V> {
    /// Each slot's account and record, side by side (see the module doc).
    records: Vec<(Id, V)>,
    /// Slot by number for `Id::Number(n)` with `n < DIRECT_NUMBERS`, `NO_SLOT` where none.
    numbers: Vec<Slot>,
    /// The slots of the other ids, hashed by id; point lookups only, never iterated (see the
    /// module doc).
    lookup: SlotTable,
}

/// The hash of `id` in [`Slots::lookup`].
fn hash_of(id: &Id) -> u64 {
    FxBuildHasher.hash_one(id)
}

/// The slots of hashed ids: open addressing with linear probing over one vector of words, each a
/// slot and 32 bits of its id's hash, at most half full. Unlike a general hash table, the place a
/// search starts is known from the hash alone ([`SlotTable::start`]), so a batch of lookups can
/// read all their first words before comparing anything ([`Slots::warm_lookup`]): one round of
/// overlapped cache misses instead of a chain of dependent ones per lookup (`hashbrown` reads its
/// control bytes, then a slot in another line, and offers no way to start them apart).
#[derive(Clone, Debug, Default)]
struct SlotTable {
    /// `EMPTY`, or a slot in the low half and its id's hash tag in the high half.
    words: Vec<u64>,
    len: usize,
}

/// An unused word: a slot of `NO_SLOT` is never handed out.
const EMPTY: u64 = u64::MAX;

impl SlotTable {
    /// The word where the search for `hash` starts: the top bits of the hash times 2^64 / phi
    /// (Fibonacci hashing), which depend on every bit of the hash, so ids whose FxHash differs
    /// only in a few bits do not crowd one run of words (linear probing degrades with runs).
    fn start(&self, hash: u64) -> usize {
        let bits = self.words.len().trailing_zeros();
        // A table of one word would shift by 64, which overflows; `words` has at least 16.
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// The tag kept beside a slot: the hash's low half, so that a search compares ids only on a
    /// (nearly always true) tag match.
    fn tag(hash: u64) -> u64 {
        hash << 32
    }

    /// The slot whose tag matches `hash` and whose id `is` accepts, if any.
    fn find(&self, hash: u64, is: impl Fn(Slot) -> bool) -> Option<Slot> {
        if self.words.is_empty() {
            return None;
        }
        let mask = self.words.len() - 1;
        let tag = Self::tag(hash);
        let mut at = self.start(hash);
        loop {
            let word = self.words[at];
            if word == EMPTY {
                return None;
            }
            let slot = word as Slot;
            if word & !u64::from(Slot::MAX) == tag && is(slot) {
                return Some(slot);
            }
            at = (at + 1) & mask;
        }
    }

    /// The first word a search for `hash` reads (see [`Slots::warm_lookup`]).
    fn first_word(&self, hash: u64) -> u64 {
        if self.words.is_empty() {
            return EMPTY;
        }
        self.words[self.start(hash)]
    }

    /// Adds `slot` (not in the table) under `hash`, first doubling the table when it would be
    /// more than half full (`rehash` gives the hash of a stored slot's id).
    fn insert(&mut self, hash: u64, slot: Slot, rehash: impl Fn(Slot) -> u64) {
        if (self.len + 1) * 2 > self.words.len() {
            let doubled = vec![EMPTY; (self.words.len() * 2).max(16)];
            let old = std::mem::replace(&mut self.words, doubled);
            for word in old.into_iter().filter(|word| *word != EMPTY) {
                self.place(rehash(word as Slot), word as Slot);
            }
        }
        self.place(hash, slot);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, slot: Slot) {
        let mask = self.words.len() - 1;
        let mut at = self.start(hash);
        while self.words[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.words[at] = Self::tag(hash) | u64::from(slot);
    }
}

/// A copy keeps the vectors' spare room: a copied state (a sweep point) goes on growing, and a
/// vector copied to its length would move all its records at its first new account.
impl<V: Clone> Clone for Slots<V> {
    fn clone(&self) -> Self {
        Self {
            records: with_room_of(&self.records),
            numbers: with_room_of(&self.numbers),
            lookup: self.lookup.clone(),
        }
    }
}

/// A copy of `items` with the same capacity.
pub(crate) fn with_room_of<T: Clone>(items: &Vec<T>) -> Vec<T> {
    let mut copy = Vec::with_capacity(items.capacity());
    copy.extend_from_slice(items);
    copy
}

impl<V> Default for Slots<V> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            numbers: Vec::new(),
            lookup: SlotTable::default(),
        }
    }
}

impl<V> Slots<V> {
    /// Number of accounts stored.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no account is stored.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The slot of `id`, if it has one.
    pub fn find(&self, id: &Id) -> Option<Slot> {
        match id {
            Id::Number(number) if *number < DIRECT_NUMBERS => self
                .numbers
                .get(*number as usize)
                .copied()
                .filter(|slot| *slot != NO_SLOT),
            _ => self
                .lookup
                .find(hash_of(id), |slot| self.records[slot as usize].0 == *id),
        }
    }

    /// Reads the first word a [`Slots::find`] of `id` reads (the hash table's, or the number
    /// table's), and returns it for the caller to fold into a value the compiler must keep.
    /// Called for a whole batch of ids before finding any of them, the reads' cache misses
    /// overlap, and the finds then miss only on the records they compare.
    pub fn warm_lookup(&self, id: &Id) -> u64 {
        match id {
            Id::Number(number) if *number < DIRECT_NUMBERS => self
                .numbers
                .get(*number as usize)
                .map_or(0, |slot| u64::from(*slot)),
            _ => self.lookup.first_word(hash_of(id)),
        }
    }

    /// The record of `id`.
    pub fn get(&self, id: &Id) -> Option<&V> {
        self.find(id).map(|slot| &self.records[slot as usize].1)
    }

    /// The record of `id`, mutably.
    pub fn get_mut(&mut self, id: &Id) -> Option<&mut V> {
        self.find(id).map(|slot| &mut self.records[slot as usize].1)
    }

    /// The slot of `id`, storing `make()` in a new slot first when `id` has none; the flag is
    /// true when the slot is new.
    pub fn slot_or_insert_with(&mut self, id: Id, make: impl FnOnce() -> V) -> (Slot, bool) {
        if let Some(slot) = self.find(&id) {
            return (slot, false);
        }
        let slot = Slot::try_from(self.records.len()).expect("fewer than 2^32 accounts per market");
        self.records.push((id, make()));
        match id {
            Id::Number(number) if number < DIRECT_NUMBERS => {
                let number = number as usize;
                if self.numbers.len() <= number {
                    self.numbers.resize(number + 1, NO_SLOT);
                }
                self.numbers[number] = slot;
            }
            _ => {
                let records = &self.records;
                self.lookup.insert(hash_of(&id), slot, |slot| {
                    hash_of(&records[slot as usize].0)
                });
            }
        }
        (slot, true)
    }

    /// The account in `slot`. Panics on a slot this store never handed out.
    pub fn id(&self, slot: Slot) -> &Id {
        &self.records[slot as usize].0
    }

    /// The record in `slot`. Panics on a slot this store never handed out.
    pub fn at(&self, slot: Slot) -> &V {
        &self.records[slot as usize].1
    }

    /// The record in `slot`, mutably. Panics on a slot this store never handed out.
    pub fn at_mut(&mut self, slot: Slot) -> &mut V {
        &mut self.records[slot as usize].1
    }

    /// Every record, in slot order: only for what does not depend on the order (counts, sums).
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.records.iter().map(|(_, record)| record)
    }

    /// Every account with its record, in slot order: only for what does not depend on the order
    /// (sets, counts, sums).
    pub fn entries(&self) -> impl Iterator<Item = (&Id, &V)> + '_ {
        self.records.iter().map(|(id, record)| (id, record))
    }

    /// Every slot in account order: the order for anything that reaches an output.
    pub fn sorted(&self) -> Vec<Slot> {
        // Sorting (id, slot) pairs in place reads memory in order; sorting slots by looking up
        // their ids misses the cache at nearly every comparison (a million accounts: 3x slower).
        let mut pairs: Vec<(Id, Slot)> = self.records.iter().map(|(id, _)| *id).zip(0..).collect();
        pairs.sort_unstable();
        pairs.into_iter().map(|(_, slot)| slot).collect()
    }
}

/// A few records by id, in id order: an account's positions by asset, a model's markets. A
/// sorted vector, as a B-tree per account costs a whole node's allocation and a pointer chase per
/// step. Its first records (`INLINE`) are stored in place, so the common account (one
/// collateral, one debt) is read without a second cache miss and costs no allocation of its own
/// (a million accounts: a million `malloc`s and `free`s fewer). Lookups compare for equality from
/// the front (a handful of entries; `==` on an id is a few word compares where ordering it calls
/// `memcmp`); inserts keep the order. Iterates in the order of the `BTreeMap` it replaces, so
/// encodings and sums are unchanged.
#[derive(Clone, Debug)]
pub struct SmallMap<P>(SmallVec<[(Id, P); INLINE]>);

/// Records a [`SmallMap`] holds without an allocation.
const INLINE: usize = 2;

impl<P> Default for SmallMap<P> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

impl<P> SmallMap<P> {
    fn position(&self, id: &Id) -> Option<usize> {
        self.0.iter().position(|(held, _)| held == id)
    }

    /// The record of `id`.
    pub fn get(&self, id: &Id) -> Option<&P> {
        self.position(id).map(|at| &self.0[at].1)
    }

    /// The record of `id`, mutably.
    pub fn get_mut(&mut self, id: &Id) -> Option<&mut P> {
        self.position(id).map(|at| &mut self.0[at].1)
    }

    /// Whether `id` has a record.
    pub fn contains_key(&self, id: &Id) -> bool {
        self.position(id).is_some()
    }

    /// Inserts `record` for an `id` not held yet, at its place in id order.
    fn insert_new(&mut self, id: Id, record: P) -> usize {
        let at = self.0.partition_point(|(held, _)| *held < id);
        self.0.insert(at, (id, record));
        at
    }

    /// The record of `id`, one made by `make` inserted first when there is none.
    pub fn entry_or_insert_with(&mut self, id: Id, make: impl FnOnce() -> P) -> &mut P {
        let at = match self.position(&id) {
            Some(at) => at,
            None => self.insert_new(id, make()),
        };
        &mut self.0[at].1
    }

    /// Stores `record` for `id`; the record it replaces, if any.
    pub fn insert(&mut self, id: Id, record: P) -> Option<P> {
        match self.position(&id) {
            Some(at) => Some(std::mem::replace(&mut self.0[at].1, record)),
            None => {
                self.insert_new(id, record);
                None
            }
        }
    }

    /// Removes the record of `id`; the record, if there was one.
    pub fn remove(&mut self, id: &Id) -> Option<P> {
        let at = self.position(id)?;
        Some(self.0.remove(at).1)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every (id, record), in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Id, &P)> + '_ {
        self.0.iter().map(|(id, record)| (id, record))
    }

    /// Every (id, record), in id order, records mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Id, &mut P)> + '_ {
        self.0.iter_mut().map(|(id, record)| (&*id, record))
    }

    /// Every id, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Id> + '_ {
        self.0.iter().map(|(id, _)| id)
    }

    /// Every record, in id order.
    pub fn values(&self) -> impl Iterator<Item = &P> + '_ {
        self.0.iter().map(|(_, record)| record)
    }

    /// Every record, in id order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut P> + '_ {
        self.0.iter_mut().map(|(_, record)| record)
    }
}

/// Like a `BTreeMap`'s: panics when `id` has no record.
impl<P> std::ops::Index<&Id> for SmallMap<P> {
    type Output = P;

    fn index(&self, id: &Id) -> &P {
        self.get(id).expect("an id the map holds")
    }
}

impl<P: Default> SmallMap<P> {
    /// The record of `id`, a default one inserted first when there is none.
    pub fn entry_or_default(&mut self, id: Id) -> &mut P {
        self.entry_or_insert_with(id, P::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_table_finds_every_slot_through_growth_and_shared_hashes() {
        // Every third slot shares one hash (same first word, same tag): only the id comparison
        // (`is`) tells those apart, and their run of words spans many others' first words.
        let hash = |slot: Slot| {
            if slot.is_multiple_of(3) {
                0xdead_beef_0bad_cafe
            } else {
                u64::from(slot).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            }
        };
        let mut table = SlotTable::default();
        for slot in 0..10_000 {
            table.insert(hash(slot), slot, hash);
        }
        assert_eq!(table.len, 10_000);
        assert_eq!(
            table.words.len(),
            1 << 15,
            "doubled to stay at most half full"
        );
        for slot in 0..10_000 {
            assert_eq!(table.find(hash(slot), |found| found == slot), Some(slot));
        }
        assert_eq!(table.find(hash(3), |found| found == 10_000), None);
        assert_eq!(SlotTable::default().find(hash(1), |_| true), None);
    }

    #[test]
    fn hashes_that_differ_only_in_their_low_bits_spread_over_the_table() {
        // Without the multiply in `start`, these would all start at word 0 and form one run
        // of 10,000 words, each lookup walking it.
        let mut table = SlotTable::default();
        for slot in 0..10_000 {
            table.insert(u64::from(slot), slot, u64::from);
        }
        let longest_run = table
            .words
            .split(|word| *word == EMPTY)
            .map(<[u64]>::len)
            .max();
        assert!(longest_run < Some(64), "longest run {longest_run:?}");
    }

    #[test]
    fn a_lookup_is_warmed_at_the_word_it_starts_with() {
        let mut slots: Slots<u64> = Slots::default();
        let address = Id::Address(cascade_events::Address::repeat_byte(7));
        assert_eq!(slots.warm_lookup(&address), EMPTY);
        let (slot, _) = slots.slot_or_insert_with(address, || 1);
        assert_eq!(
            slots.warm_lookup(&address),
            SlotTable::tag(hash_of(&address)) | u64::from(slot)
        );
        let (vault, _) = slots.slot_or_insert_with(Id::Number(5), || 2);
        assert_eq!(slots.warm_lookup(&Id::Number(5)), u64::from(vault));
    }

    #[test]
    fn slots_are_stable_and_sorted_order_is_account_order() {
        let mut slots: Slots<u64> = Slots::default();
        let (nine, new) = slots.slot_or_insert_with(Id::Number(9), || 90);
        assert!(new);
        let (two, _) = slots.slot_or_insert_with(Id::Number(2), || 20);
        let (again, new) = slots.slot_or_insert_with(Id::Number(9), || 0);
        assert_eq!((again, new), (nine, false));
        assert_eq!(
            *slots.at(nine),
            90,
            "a second insert keeps the first record"
        );
        *slots.get_mut(&Id::Number(2)).expect("stored") += 1;
        assert_eq!(slots.get(&Id::Number(2)), Some(&21));
        assert_eq!(slots.get(&Id::Number(3)), None);
        assert_eq!(slots.sorted(), vec![two, nine]);
        assert_eq!(slots.id(two), &Id::Number(2));
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn small_map_keeps_id_order_like_a_btree() {
        let mut held: SmallMap<u8> = SmallMap::default();
        let mut tree = std::collections::BTreeMap::new();
        for (n, name) in ["WETH", "DAI", "USDC", "DAI", "AAVE"]
            .into_iter()
            .enumerate()
        {
            *held.entry_or_default(Id::name(name)) += n as u8;
            *tree.entry(Id::name(name)).or_default() += n as u8;
        }
        assert_eq!(
            held.insert(Id::name("LINK"), 9),
            tree.insert(Id::name("LINK"), 9)
        );
        assert_eq!(
            held.insert(Id::name("WBTC"), 1),
            tree.insert(Id::name("WBTC"), 1)
        );
        assert_eq!(held.insert(Id::name("WBTC"), 2), Some(1));
        assert_eq!(held.remove(&Id::name("WBTC")), Some(2));
        assert_eq!(held.remove(&Id::name("WBTC")), None);
        tree.remove(&Id::name("WBTC"));
        assert!(held.contains_key(&Id::name("LINK")) && !held.contains_key(&Id::name("WBTC")));
        assert!(
            held.iter()
                .map(|(a, v)| (*a, *v))
                .eq(tree.iter().map(|(a, v)| (*a, *v)))
        );
        assert_eq!(held.len(), 5);
        assert_eq!(held.get(&Id::name("DAI")), Some(&4));
        assert_eq!(held.get(&Id::name("WBTC")), None);
        *held.get_mut(&Id::name("LINK")).expect("stored") += 1;
        held.insert(Id::name("DAI"), 7);
        assert_eq!(
            held.iter()
                .map(|(a, v)| (a.to_string(), *v))
                .collect::<Vec<_>>(),
            [
                ("AAVE", 4),
                ("DAI", 7),
                ("LINK", 10),
                ("USDC", 2),
                ("WETH", 0)
            ]
            .map(|(a, v)| (a.to_owned(), v))
        );
    }

    #[test]
    fn numbers_addresses_and_names_share_one_slot_space() {
        let mut slots: Slots<u8> = Slots::default();
        let ids = [
            Id::Number(5),
            Id::Number(DIRECT_NUMBERS + 1),
            Id::Address(Default::default()),
            Id::name("ETH-B"),
            Id::Number(0),
        ];
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(
                slots.slot_or_insert_with(*id, || n as u8),
                (n as Slot, true)
            );
        }
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(slots.find(id), Some(n as Slot), "{id}");
            assert_eq!(slots.get(id), Some(&(n as u8)));
        }
        // Numbers between stored ones, beyond the table, or in the map range, are absent.
        for absent in [1, 6, DIRECT_NUMBERS - 1, DIRECT_NUMBERS + 2] {
            assert_eq!(slots.find(&Id::Number(absent)), None, "{absent}");
        }
    }
}
