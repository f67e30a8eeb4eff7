//! An ordered index of accounts by how close they are to liquidation, so that finding the
//! liquidatable set after a price move costs the size of the answer, not the number of accounts.
//!
//! A protocol model gives every indexed account a *trigger key*: a number that grows as the
//! account gets riskier and does not depend on prices, so a price move changes no key (Maker:
//! `art * RAY / ink`; a single-collateral Aave or Compound position: debt per unit of collateral).
//! For the current prices the model computes a *level* such that every account with `key < level`
//! is certainly safe. [`LiquidationIndex::at_or_above`] walks the keys from the top down to the
//! level; the model confirms each candidate with its exact rule (the key may be rounded). The
//! index never decides liquidatability on its own.
//!
//! Two shapes: [`LiquidationIndex`], an ordered set of (key, account), and [`BucketIndex`], which
//! keeps members by slot number (see [`crate::slots`]) in buckets of nearly equal keys so that moving an
//! account costs a vector push instead of two B-tree searches (the replay moves one account per
//! event); walks return a superset in bucket order, which the model confirms and the consumer
//! orders.

use std::collections::BTreeSet;

use cascade_events::U256;

use crate::slots::{Slot, with_room_of};

/// Accounts ordered by (trigger key, account).
///
/// The index does not remember an account's current key: the caller keeps it next to the account
/// (one map fewer to update per event) and passes it back to [`LiquidationIndex::update`].
///
/// The key type `T` is `U256` unless the model proves a narrower one enough (Maker uses `u128`,
/// saturating: halving the entry size is what keeps the walk after a shock fast).
#[derive(Clone, Debug)]
pub struct LiquidationIndex<K: Ord + Copy, T: Ord + Copy = U256> {
    keys: BTreeSet<(T, K)>,
}

impl<K: Ord + Copy, T: Ord + Copy> Default for LiquidationIndex<K, T> {
    fn default() -> Self {
        Self {
            keys: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy, T: Ord + Copy> LiquidationIndex<K, T> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed accounts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no account is indexed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Moves `account` from key `old` to key `new` (`None`: not indexed). No-op when equal.
    pub fn update(&mut self, account: K, old: Option<T>, new: Option<T>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.keys.remove(&(old, account));
        }
        if let Some(new) = new {
            self.keys.insert((new, account));
        }
    }

    /// Replaces entry `old` by entry `new` (`None`: absent), for members that carry data which
    /// changes with the key (an account with its balances). No-op when equal.
    pub fn replace(&mut self, old: Option<(T, K)>, new: Option<(T, K)>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.keys.remove(&old);
        }
        if let Some(new) = new {
            self.keys.insert(new);
        }
    }

    /// The accounts whose key is at least `level`, riskiest (largest key) first, ties in account
    /// order.
    pub fn at_or_above(&self, level: T) -> impl Iterator<Item = (T, K)> + '_ {
        self.keys
            .iter()
            .rev()
            .take_while(move |(key, _)| *key >= level)
            .copied()
    }

    /// The entries with `low.0 <= key <= high`, from `low` on, in ascending order; `low.1` must
    /// be the smallest member (so no entry with key `low.0` is skipped).
    pub fn between(&self, low: (T, K), high: T) -> impl Iterator<Item = (T, K)> + '_ {
        self.keys
            .range(low..)
            .take_while(move |(key, _)| *key <= high)
            .copied()
    }

    /// Every indexed account with its key, safest first: for checkpoints and full-scan baselines.
    pub fn iter(&self) -> impl Iterator<Item = (T, K)> + '_ {
        self.keys.iter().copied()
    }
}

/// Significant bits of a key kept by its bucket below the leading one: buckets are about
/// `2^-11` (0.05%) wide relative to their keys, so a walk between two nearby levels tests few
/// accounts outside them.
pub(crate) const MANTISSA_BITS: u32 = 11;
/// Bucket 0 holds key 0; then `2^MANTISSA_BITS` buckets for each of the 128 bit lengths.
const BUCKETS: usize = 1 + (128 << MANTISSA_BITS);
/// Marks a slot that is not in the index.
const ABSENT: u32 = u32::MAX;

/// The bucket of `key`: monotonic (`a <= b` implies `bucket(a) <= bucket(b)`), like the
/// exponent and leading mantissa bits of a float.
pub(crate) fn bucket_of(key: u128) -> usize {
    if key == 0 {
        return 0;
    }
    let exponent = 127 - key.leading_zeros();
    let mantissa = if exponent >= MANTISSA_BITS {
        key >> (exponent - MANTISSA_BITS)
    } else {
        key << (MANTISSA_BITS - exponent)
    } as usize
        & ((1 << MANTISSA_BITS) - 1);
    1 + ((exponent as usize) << MANTISSA_BITS) + mantissa
}

/// Members bucketed by a `u128` trigger key (see the module doc), one per slot. Each member is
/// stored inline (`M`: the account with the balances its confirmation needs), so a walk reads
/// buckets front to back without visiting the accounts' records, which is what keeps the walk
/// after a large shock fast. [`BucketIndex::set`] costs O(1); the walks visit the buckets that can
/// hold keys in the asked range, so they return every member whose key is in it plus the other
/// members of the boundary buckets. Order within a result is not meaningful (it depends on the
/// history of moves): callers confirm each member exactly and order what they report.
#[derive(Debug)]
pub struct BucketIndex<M> {
    buckets: Vec<Vec<(Slot, M)>>,
    /// One bit per bucket: non-empty.
    occupied: Vec<u64>,
    /// Per slot: (bucket, position in it), or `ABSENT`.
    place: Vec<(u32, u32)>,
    len: usize,
}

/// A copy keeps each bucket's spare room (see [`crate::slots::Slots`]'s `Clone`): most moves
/// in a copied state would otherwise start by reallocating their bucket.
impl<M: Clone> Clone for BucketIndex<M> {
    fn clone(&self) -> Self {
        Self {
            buckets: self.buckets.iter().map(with_room_of).collect(),
            occupied: self.occupied.clone(),
            place: with_room_of(&self.place),
            len: self.len,
        }
    }
}

impl<M> Default for BucketIndex<M> {
    fn default() -> Self {
        Self {
            buckets: Vec::new(),
            occupied: vec![0; BUCKETS.div_ceil(64)],
            place: Vec::new(),
            len: 0,
        }
    }
}

impl<M: Copy> BucketIndex<M> {
    /// Number of indexed slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no slot is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Indexes `member` for `slot` under `key`, replacing what `slot` had (`None`: removes it).
    pub fn set(&mut self, slot: Slot, key: Option<u128>, member: M) {
        let index = slot as usize;
        if self.place.len() <= index {
            self.place.resize(index + 1, (ABSENT, ABSENT));
        }
        let target = key.map(bucket_of);
        let (current, position) = self.place[index];
        if current != ABSENT {
            if target == Some(current as usize) {
                self.buckets[current as usize][position as usize].1 = member;
                return;
            }
            let bucket = &mut self.buckets[current as usize];
            bucket.swap_remove(position as usize);
            if let Some(&(moved, _)) = bucket.get(position as usize) {
                self.place[moved as usize].1 = position;
            }
            if bucket.is_empty() {
                self.occupied[current as usize / 64] &= !(1 << (current % 64));
            }
            self.place[index] = (ABSENT, ABSENT);
            self.len -= 1;
        }
        let Some(target) = target else {
            return;
        };
        if self.buckets.is_empty() {
            self.buckets.resize_with(BUCKETS, Vec::new);
        }
        let bucket = &mut self.buckets[target];
        self.place[index] = (target as u32, bucket.len() as u32);
        bucket.push((slot, member));
        self.occupied[target / 64] |= 1 << (target % 64);
        self.len += 1;
    }

    /// Reads the place of `slot` (see [`crate::protocol::ProtocolModel::warm`]).
    pub fn warm_place(&self, slot: Slot) -> (u32, u32) {
        self.place
            .get(slot as usize)
            .copied()
            .unwrap_or((ABSENT, ABSENT))
    }

    /// Reads the member at `place` and its bucket's last member, the two a move of it touches.
    pub fn warm_member(&self, place: (u32, u32)) -> u64 {
        let Some(bucket) = self.buckets.get(place.0 as usize) else {
            return 0;
        };
        let at = bucket.get(place.1 as usize).map_or(0, |(slot, _)| *slot);
        let last = bucket.last().map_or(0, |(slot, _)| *slot);
        u64::from(at) ^ u64::from(last)
    }

    /// Every member that may have a key of at least `level` (all that do, and the rest of
    /// their lowest bucket).
    pub fn from_level(&self, level: u128) -> impl Iterator<Item = &(Slot, M)> + '_ {
        self.buckets_in(bucket_of(level), BUCKETS - 1)
    }

    /// Every member that may have a key in `low..=high` (all that do, and the rest of the
    /// boundary buckets).
    pub fn between(&self, low: u128, high: u128) -> impl Iterator<Item = &(Slot, M)> + '_ {
        self.buckets_in(bucket_of(low), bucket_of(high))
    }

    /// Every member.
    pub fn iter(&self) -> impl Iterator<Item = &(Slot, M)> + '_ {
        self.buckets_in(0, BUCKETS - 1)
    }

    /// The members of the non-empty buckets `first..=last`, found word by word in the bitmap.
    fn buckets_in(&self, first: usize, last: usize) -> impl Iterator<Item = &(Slot, M)> + '_ {
        let words = if first > last || self.len == 0 {
            0..0
        } else {
            first / 64..last / 64 + 1
        };
        words
            .flat_map(move |word| {
                let mut bits = self.occupied[word];
                if word == first / 64 {
                    bits &= u64::MAX << (first % 64);
                }
                if word == last / 64 && last % 64 != 63 {
                    bits &= (1 << (last % 64 + 1)) - 1;
                }
                std::iter::from_fn(move || {
                    if bits == 0 {
                        return None;
                    }
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    Some(word * 64 + bit)
                })
            })
            .flat_map(move |bucket| self.buckets[bucket].iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_from_the_top_down_to_the_level() {
        let mut index = LiquidationIndex::new();
        for (account, key) in [(1u64, 10u64), (2, 30), (3, 20), (4, 30)] {
            index.update(account, None, Some(U256::from(key)));
        }
        let found: Vec<u64> = index
            .at_or_above(U256::from(20u8))
            .map(|(_, a)| a)
            .collect();
        assert_eq!(found, vec![4, 2, 3]);
        index.update(2, Some(U256::from(30u8)), Some(U256::from(5u8)));
        index.update(4, Some(U256::from(30u8)), None);
        let found: Vec<u64> = index.at_or_above(U256::from(6u8)).map(|(_, a)| a).collect();
        assert_eq!(found, vec![3, 1]);
        assert_eq!(index.len(), 3);
        assert_eq!(index.at_or_above(U256::from(21u8)).count(), 0);
    }

    #[test]
    fn buckets_are_monotonic_and_fine() {
        let keys = [
            0u128,
            1,
            2,
            3,
            2047,
            2048,
            2049,
            4095,
            4096,
            1 << 100,
            (1 << 100) + (1 << 89),
            u128::MAX - 1,
            u128::MAX,
        ];
        for pair in keys.windows(2) {
            assert!(bucket_of(pair[0]) <= bucket_of(pair[1]), "{pair:?}");
        }
        // Below 2^11 every key has a bucket of its own; above, one in 2^11 of the key's size.
        assert!(bucket_of(2047) < bucket_of(2048));
        assert_eq!(bucket_of(1 << 100), bucket_of((1 << 100) + (1 << 88)));
        assert!(bucket_of(1 << 100) < bucket_of((1 << 100) + (1 << 89)));
        assert_eq!(bucket_of(u128::MAX), BUCKETS - 1);
    }

    #[test]
    fn bucket_walks_cover_their_ranges_and_moves_keep_places() {
        let mut index: BucketIndex<u128> = BucketIndex::default();
        let keys: Vec<u128> = (0..200u128)
            .map(|i| (i * 7919) % 5000 * (1 << 40))
            .collect();
        for (slot, key) in keys.iter().enumerate() {
            index.set(slot as Slot, Some(*key), *key);
        }
        // Move every third slot, remove every fifth: swap_remove must keep the others' places.
        let mut live: Vec<Option<u128>> = keys.iter().copied().map(Some).collect();
        for slot in (0..200).step_by(3) {
            live[slot] = Some(live[slot].unwrap_or(0) / 2 + 1);
            index.set(slot as Slot, live[slot], live[slot].unwrap_or(0));
        }
        for slot in (0..200).step_by(5) {
            live[slot] = None;
            index.set(slot as Slot, None, 0);
        }
        index.set(7, None, 0);
        live[7] = None;
        assert_eq!(index.len(), live.iter().flatten().count());
        // Each member carries what was set last with it (here: its key).
        for (slot, member) in index.iter() {
            assert_eq!(Some(*member), live[*slot as usize], "slot {slot}");
        }
        let mut all: Vec<Slot> = index.iter().map(|(slot, _)| *slot).collect();
        all.sort_unstable();
        let expected: Vec<Slot> = (0..200)
            .filter(|slot| live[*slot as usize].is_some())
            .collect();
        assert_eq!(all, expected);
        for (low, high) in [(0, 0), (1 << 41, 3000 << 40), (2500 << 40, u128::MAX)] {
            let found: BTreeSet<Slot> = index.between(low, high).map(|(s, _)| *s).collect();
            for (slot, key) in live.iter().enumerate() {
                let Some(key) = key else { continue };
                if (low..=high).contains(key) {
                    assert!(found.contains(&(slot as Slot)), "{slot} key {key} in range");
                }
                // Never more than the boundary buckets' extra members.
                if found.contains(&(slot as Slot)) {
                    assert!(
                        bucket_of(*key) >= bucket_of(low) && bucket_of(*key) <= bucket_of(high)
                    );
                }
            }
            let above: BTreeSet<Slot> = index.from_level(low).map(|(s, _)| *s).collect();
            let expected: BTreeSet<Slot> = live
                .iter()
                .enumerate()
                .filter(|(_, key)| key.is_some_and(|k| bucket_of(k) >= bucket_of(low)))
                .map(|(slot, _)| slot as Slot)
                .collect();
            assert_eq!(above, expected);
        }
    }
}
