//! The lending core the Aave and Compound models share: where their accounts sit and how the
//! liquidatable ones are found and followed. The protocols' own rules and arithmetic stay in
//! their modules; this one never decides whether an account is liquidatable.
//!
//! - [`PairIndex`]: per market, the accounts with one collateral and one debt by (collateral,
//!   debt) pair in buckets of nearly equal keys, the others grouped by the assets they read,
//!   everything by slot (see [`crate::slots`]); [`compress_key`] turns 256-bit keys into `u128`
//!   monotonically (smaller entries make the walk after a shock cheaper).
//! - [`FoundSet`]: the liquidatable set of one state, kept until the state changes and ordered
//!   riskiest first.
//! - [`Monitor`]: the incremental liquidatable set both models keep for
//!   [`crate::ProtocolModel::unsafe_changes`] and `risk`: which accounts are liquidatable, each
//!   one's share of the risk sums, and what changed since the last report.
//! - [`warm_accounts`]: the lookahead reads of [`crate::ProtocolModel::warm`].
//!
//! The models confirm every candidate with the protocol's exact rule. This module must never make
//! a walk skip an account whose uncompressed key reaches the level.

mod model;

pub use model::{
    Account, ChangeKind, Found, LendingModel, Point, Rules, Step, TOTALS_NOT_UPDATABLE,
    TotalsAccount,
};

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::U512;
use alloy_primitives::ruint::UintTryFrom;
use cascade_events::{Id, U256};

use crate::index::{self, MANTISSA_BITS};
use crate::protocol::WARM_BATCH;
use crate::slots::{Slot, Slots};

/// Keys below this are kept exactly.
const EXACT_BITS: usize = 120;

/// Compresses an index key into 128 bits, never reversing an order: exact below 2^120; above
/// it, the shift (bit length minus 120) in the top byte and the key's top 120 bits below it.
/// `a >= b` implies `compress_key(a) >= compress_key(b)`, so a walk down to
/// `compress_key(level)` visits every account whose key is at least `level` (and at most the
/// few more whose key shares the level's top 120 bits, which the exact confirmation rejects).
pub fn compress_key(key: U256) -> u128 {
    let shift = key.bit_len().saturating_sub(EXACT_BITS);
    let top = (key >> shift).to::<u128>();
    ((shift as u128) << EXACT_BITS) | top
}

/// Division of 256-bit numbers by a 64-bit divisor known in advance (a token unit, `1e18`, the
/// odd part of a ray), with its reciprocal computed once: Möller and Granlund, "Improved division
/// by invariant integers" (IEEE TC 2011), algorithm 4, one limb at a time. Exact: the same
/// quotient as `U256` division (tested against it), without recomputing the reciprocal on every
/// call as a general division must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConstDivisor {
    /// The divisor shifted left until its top bit is set.
    normalized: u64,
    /// `floor((2^128 - 1) / normalized) - 2^64`.
    reciprocal: u64,
    shift: u32,
}

impl ConstDivisor {
    /// The divisor `d`, which must not be zero (a constant divisor of zero does not compile;
    /// use [`ConstDivisor::of`] for divisors known only at run time).
    pub const fn new(d: u64) -> Self {
        assert!(d != 0, "division by zero");
        let shift = d.leading_zeros();
        let normalized = d << shift;
        let reciprocal = (u128::MAX / normalized as u128 - (1u128 << 64)) as u64;
        Self {
            normalized,
            reciprocal,
            shift,
        }
    }

    /// The divisor for a `U256` that fits 64 bits; `None` for zero or a larger one.
    pub fn of(d: U256) -> Option<Self> {
        u64::try_from(d).ok().filter(|d| *d != 0).map(Self::new)
    }

    /// `(high * 2^64 + low) / d` and its remainder, for `high < d` (both normalized).
    #[inline(always)]
    fn div_2by1(&self, high: u64, low: u64) -> (u64, u64) {
        let product = u128::from(self.reciprocal) * u128::from(high);
        let sum = product.wrapping_add((u128::from(high) << 64) | u128::from(low));
        let mut quotient = ((sum >> 64) as u64).wrapping_add(1);
        let mut remainder = low.wrapping_sub(quotient.wrapping_mul(self.normalized));
        if remainder > sum as u64 {
            quotient = quotient.wrapping_sub(1);
            remainder = remainder.wrapping_add(self.normalized);
        }
        if remainder >= self.normalized {
            quotient = quotient.wrapping_add(1);
            remainder -= self.normalized;
        }
        (quotient, remainder)
    }

    /// `n / d`, rounded down.
    #[inline]
    pub fn div(&self, n: U256) -> U256 {
        let limbs = n.as_limbs();
        let shift = self.shift;
        // The numerator shifted by the same amount, one limb longer; its top limb is below
        // 2^shift <= the normalized divisor, as `div_2by1` requires.
        let mut shifted = [0u64; 5];
        if shift == 0 {
            shifted[..4].copy_from_slice(limbs);
        } else {
            shifted[4] = limbs[3] >> (64 - shift);
            for i in (1..4).rev() {
                shifted[i] = (limbs[i] << shift) | (limbs[i - 1] >> (64 - shift));
            }
            shifted[0] = limbs[0] << shift;
        }
        let mut quotient = [0u64; 4];
        let mut remainder = shifted[4];
        for i in (0..4).rev() {
            let (q, r) = self.div_2by1(remainder, shifted[i]);
            quotient[i] = q;
            remainder = r;
        }
        U256::from_limbs(quotient)
    }
}

/// A divisor fixed for a whole walk (a token unit): [`ConstDivisor`] when it fits 64 bits, plain
/// `U256` division otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divisor {
    /// Up to 64 bits, with its reciprocal.
    Narrow(ConstDivisor),
    /// Wider.
    Wide(U256),
}

impl Divisor {
    /// The divisor `d`; `None` for zero.
    pub fn of(d: U256) -> Option<Self> {
        if d.is_zero() {
            return None;
        }
        Some(ConstDivisor::of(d).map_or(Self::Wide(d), Self::Narrow))
    }

    /// `n / d`, rounded down.
    #[inline]
    pub fn div(&self, n: U256) -> U256 {
        match self {
            Self::Narrow(d) => d.div(n),
            Self::Wide(d) => n / *d,
        }
    }
}

/// The liquidatable accounts of one model state, per market, each market's riskiest first.
///
/// Items are pushed in walk order; [`FoundSet::end_market`] orders the market's items by health
/// (then account, so the order is total and deterministic) through a compact index, without
/// moving the items. The set is a cache, not state: models drop it on every change.
#[derive(Clone, Debug)]
pub struct FoundSet<T> {
    items: Vec<(Id, T)>,
    /// (health key, item index), sorted within each market's range.
    order: Vec<(u64, u32)>,
    /// Each market with the end of its range in `items` and `order`.
    markets: Vec<(Id, usize)>,
    valid: bool,
}

impl<T> Default for FoundSet<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            order: Vec::new(),
            markets: Vec::new(),
            valid: false,
        }
    }
}

impl<T> FoundSet<T> {
    /// Whether the set describes the current state.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Marks the set stale (the state changed).
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Empties the set before a new walk, keeping its allocations.
    pub fn clear(&mut self) {
        self.items.clear();
        self.order.clear();
        self.markets.clear();
        self.valid = false;
    }

    /// Adds `account` of the current market with its health (wad). Health below one wad (every
    /// liquidatable account's) orders exactly; larger values share the last place, ordered by
    /// account.
    pub fn push(&mut self, account: Id, health: U256, item: T) {
        let index = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        let key = u64::try_from(health).unwrap_or(u64::MAX);
        self.items.push((account, item));
        self.order.push((key, index));
    }

    /// Closes the current market: orders what was pushed since the previous market by (health,
    /// account).
    pub fn end_market(&mut self, market: Id) {
        let start = self.markets.last().map_or(0, |(_, end)| *end);
        let items = &self.items;
        self.order[start..].sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| items[a.1 as usize].0.cmp(&items[b.1 as usize].0))
        });
        self.markets.push((market, self.items.len()));
    }

    /// Marks the set complete for the current state.
    pub fn finish(&mut self) {
        self.valid = true;
    }

    /// Number of accounts in the set.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no account is liquidatable.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every (market, account, item), each market's riskiest first, markets in walk order.
    pub fn ordered(&self) -> impl Iterator<Item = (&Id, &Id, &T)> + '_ {
        let mut start = 0;
        self.markets.iter().flat_map(move |(market, end)| {
            let range = start..*end;
            start = *end;
            self.order[range].iter().map(move |(_, index)| {
                let (account, item) = &self.items[*index as usize];
                (market, account, item)
            })
        })
    }

    /// The items of `market` in walk order (for sums, where order does not matter).
    pub fn of_market(&self, market: &Id) -> impl Iterator<Item = &T> + '_ {
        let mut start = 0;
        let mut range = 0..0;
        for (id, end) in &self.markets {
            if id == market {
                range = start..*end;
                break;
            }
            start = *end;
        }
        self.items[range].iter().map(|(_, item)| item)
    }
}

/// A liquidatable account's share of its market's risk sums, in the protocol's base currency.
pub trait Exposure: Copy {
    /// Market value of the collateral the risk snapshot counts.
    fn collateral(&self) -> U256;
    /// Debt value.
    fn debt(&self) -> U256;
}

/// One market's liquidatable accounts as last re-tested, with exact sums of their exposures
/// (512 bits: no sum of 256-bit values can overflow them; read saturated, which equals adding
/// the values one by one with saturation, as a sum over the whole set would).
#[derive(Clone, Debug)]
struct Watch<T> {
    /// Membership by slot, a bit each: every re-test reads and writes it, and at an eighth of a
    /// megabyte per million accounts it stays in cache where a record per account would not.
    members: Vec<u64>,
    /// Exposures by slot, kept only once the risk sums are asked for (see
    /// [`Monitor::keep_exposures`]): `Some` exactly where `members` has a bit.
    exposures: Vec<Option<T>>,
    /// Number of bits set in `members`.
    count: u64,
    collateral: U512,
    debt: U512,
    bad_debt: U512,
    /// Per (collateral, debt) pair: what its last walk left.
    levels: BTreeMap<(Id, Id), PairMark>,
}

/// A pair as its last walk left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairMark {
    /// The compressed index level (`None`: the pair could not be judged, so none of its members
    /// was liquidatable).
    pub level: Option<u128>,
    /// Whether no member's judgement could fail (see [`Monitor::walk_pairs`]).
    pub bounded: bool,
}

impl<T> Default for Watch<T> {
    fn default() -> Self {
        Self {
            members: Vec::new(),
            exposures: Vec::new(),
            count: 0,
            collateral: U512::ZERO,
            debt: U512::ZERO,
            bad_debt: U512::ZERO,
            levels: BTreeMap::new(),
        }
    }
}

impl<T: Exposure> Watch<T> {
    fn is_member(&self, slot: Slot) -> bool {
        let slot = slot as usize;
        self.members
            .get(slot / 64)
            .is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// Records whether the account in `slot` is liquidatable; whether it was.
    fn set_member(&mut self, slot: Slot, is: bool) -> bool {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if self.members.len() <= word {
            if !is {
                return false;
            }
            self.members.resize(word + 1, 0);
        }
        let was = self.members[word] & bit != 0;
        if is {
            self.members[word] |= bit;
        } else {
            self.members[word] &= !bit;
        }
        self.count = self.count + u64::from(is) - u64::from(was);
        was
    }

    /// Replaces the exposure of the account in `slot`, keeping the sums.
    fn set_exposure(&mut self, slot: Slot, now: Option<T>) {
        let index = slot as usize;
        if self.exposures.len() <= index {
            if now.is_none() {
                return;
            }
            self.exposures.resize(index + 1, None);
        }
        let old = std::mem::replace(&mut self.exposures[index], now);
        if let Some(old) = &old {
            self.add(old, false);
        }
        if let Some(now) = &now {
            self.add(now, true);
        }
    }

    fn add(&mut self, exposure: &T, sign: bool) {
        let (collateral, debt) = (exposure.collateral(), exposure.debt());
        let terms = [
            (&mut self.collateral, collateral),
            (&mut self.debt, debt),
            (&mut self.bad_debt, debt.saturating_sub(collateral)),
        ];
        for (sum, value) in terms {
            let value = U512::from(value);
            *sum = if sign {
                *sum + value
            } else {
                sum.saturating_sub(value)
            };
        }
    }
}

/// What a refresh found, for [`Monitor::finish`].
#[derive(Debug)]
pub struct Retested<T> {
    /// (market, pair, what the walk leaves of the pair).
    pub levels: Vec<(Id, (Id, Id), PairMark)>,
    /// (market, slot of the account, exposure; `None`: not liquidatable).
    pub results: Vec<(Id, Slot, Option<T>)>,
}

impl<T> Default for Retested<T> {
    fn default() -> Self {
        Self {
            levels: Vec::new(),
            results: Vec::new(),
        }
    }
}

/// Which way a change of view can move the health of the accounts it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Nothing the health reads moved.
    Still,
    /// No health falls: accounts can only leave the liquidatable set.
    Up,
    /// No health rises: accounts can only join it.
    Down,
    /// Either way, or unknown.
    Any,
}

impl Drift {
    /// The drift of inputs the health rises with (never falls with), from each input's new
    /// value compared with its old one.
    pub fn rising(comparisons: impl IntoIterator<Item = std::cmp::Ordering>) -> Self {
        comparisons
            .into_iter()
            .map(|comparison| match comparison {
                std::cmp::Ordering::Less => Self::Down,
                std::cmp::Ordering::Equal => Self::Still,
                std::cmp::Ordering::Greater => Self::Up,
            })
            .fold(Self::Still, Self::and)
    }

    /// The drift of inputs the health falls with.
    pub fn falling(comparisons: impl IntoIterator<Item = std::cmp::Ordering>) -> Self {
        Self::rising(comparisons.into_iter().map(std::cmp::Ordering::reverse))
    }

    /// The drift of two changes together.
    pub fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::Still, drift) | (drift, Self::Still) => drift,
            (one, other) if one == other => one,
            _ => Self::Any,
        }
    }
}

/// How a change of one asset's view can move the health of an account holding the asset as
/// collateral, and as debt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssetDrift {
    /// For the accounts holding the asset as collateral.
    pub collateral: Drift,
    /// For the accounts owing it.
    pub debt: Drift,
}

impl AssetDrift {
    /// Unknown on both sides.
    pub const ANY: Self = Self {
        collateral: Drift::Any,
        debt: Drift::Any,
    };
}

/// What a [`Monitor`] must re-test at a refresh, from [`Monitor::begin`].
#[derive(Debug, Default)]
pub struct Retest {
    /// Everything: every pair walked, every complex account re-tested (after a state was
    /// decoded, or to fill the exposures when they are first asked for).
    pub all: bool,
    /// The state was replaced: stored levels and memberships say nothing of it.
    pub replaced: bool,
    /// Assets whose view (price, indices, parameters the health reads) changed, and which way
    /// the change can move their holders' health.
    pub assets: BTreeMap<Id, AssetDrift>,
    /// Whether an asset's view appeared or disappeared: every account with several assets is
    /// re-tested (its group lists only the assets whose views its judgement reads, and an
    /// account holding nothing of an asset still reads whether the asset is known).
    pub appeared: bool,
    /// (market, slot of the account) whose positions changed, each once, in order.
    pub touched: Vec<(Id, Slot)>,
}

impl Retest {
    /// Whether a pair's members may have changed status or exposure through their assets.
    pub fn pair_moved(&self, collateral: &Id, debt: &Id) -> bool {
        self.all || self.assets.contains_key(collateral) || self.assets.contains_key(debt)
    }

    /// Which way a pair's members' health can have moved through their assets.
    pub fn pair_drift(&self, collateral: &Id, debt: &Id) -> Drift {
        if self.all {
            return Drift::Any;
        }
        let side = |asset: &Id, pick: fn(&AssetDrift) -> Drift| {
            self.assets.get(asset).map_or(Drift::Still, pick)
        };
        side(collateral, |drift| drift.collateral).and(side(debt, |drift| drift.debt))
    }
}

/// What a model asks [`PairIndex::set`] to hold for an account (`None`: not indexed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexEntry<M> {
    /// One collateral, one debt: in the pair's index under `key`.
    Pair {
        /// The collateral asset.
        collateral: Id,
        /// The debt asset.
        debt: Id,
        /// The member's key in the pair's index.
        key: u128,
        /// The member as the pair's index holds it.
        member: M,
    },
    /// Several assets on a side, or debt without collateral: checked on every query, and
    /// re-tested by the monitor when the view of one of `assets` moved (or any asset's view
    /// appeared).
    Complex {
        /// Every asset whose view the account's judgement reads (see
        /// [`Rules::reads`](crate::lending::Rules::reads)), in position order.
        assets: Vec<Id>,
    },
}

/// A pair member as its index holds it: the account's slot, its key and the balances its
/// confirmation reads, so a walk never visits the account's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held<M> {
    /// The account's slot in its market's [`crate::slots::Slots`].
    pub slot: Slot,
    /// Its key (exact: walks filter on it, so a bucket's lower members are never returned).
    pub key: u128,
    /// What the model stored with it.
    pub member: M,
}

/// Where a slot sits, as [`PairIndex::placed`] reports it.
#[derive(Clone, Copy, Debug)]
pub enum Placed<'a, M> {
    /// A pair member.
    Pair {
        /// (collateral, debt).
        pair: &'a (Id, Id),
        /// Its number (stable while the pair has members).
        number: u32,
        /// The member.
        held: &'a Held<M>,
    },
    /// Checked on every query.
    Complex,
}

/// Buckets per key bit length (see [`crate::index::bucket_of`]).
const CHUNK: usize = 1 << MANTISSA_BITS;
/// Chunk 0 holds key 0; chunk `e + 1` the keys of bit length `e + 1`.
const CHUNKS: usize = 129;
/// A slot that is not indexed.
const NOWHERE: u32 = u32::MAX;
/// A slot in the complex set.
const COMPLEX: u32 = u32::MAX - 1;

/// The bucket of `key` ([`crate::index::bucket_of`]'s, monotonic).
fn bucket_of(key: u128) -> u32 {
    index::bucket_of(key) as u32
}

/// The chunk of `bucket` and its position in the chunk.
fn split(bucket: u32) -> (usize, usize) {
    match bucket.checked_sub(1) {
        None => (0, 0),
        Some(above) => (1 + above as usize / CHUNK, above as usize % CHUNK),
    }
}

/// A pair member's balances, as far as bounding its judgement goes.
pub trait Widest: Copy {
    /// A member no easier to judge than either: each balance the one a judgement could
    /// overflow on first (the larger amount, the smaller divisor).
    fn widest(self, other: Self) -> Self;
}

impl Widest for u32 {
    fn widest(self, other: Self) -> Self {
        self.max(other)
    }
}

/// The buckets of one key bit length, allocated on first use.
#[derive(Clone, Debug)]
struct Chunk<M> {
    buckets: Vec<Vec<Held<M>>>,
    /// One bit per non-empty bucket.
    occupied: [u64; CHUNK / 64],
    len: usize,
}

/// One (collateral, debt) pair's members in buckets of nearly equal keys: a move costs a vector
/// push and a swap-remove instead of two B-tree searches, and only the bit lengths the pair's
/// keys use take memory (a few chunks of 2,048 buckets), so a market with hundreds of pairs stays
/// small.
#[derive(Clone, Debug)]
pub struct PairMembers<M> {
    ids: (Id, Id),
    chunks: Vec<Option<Box<Chunk<M>>>>,
    /// One bit per chunk with members.
    live: [u64; 3],
    len: usize,
    /// [`Widest::widest`] of every member since the pair last emptied (removals leave it: a
    /// bound need not be tight).
    widest: Option<M>,
}

impl<M: Widest> PairMembers<M> {
    fn new(ids: (Id, Id)) -> Self {
        Self {
            ids,
            chunks: Vec::new(),
            live: [0; 3],
            len: 0,
            widest: None,
        }
    }

    /// A member no easier to judge than any present (`None`: no member since the pair last
    /// emptied).
    pub fn widest(&self) -> Option<&M> {
        self.widest.as_ref()
    }

    /// Counts `member` (new, or changed in place) in [`PairMembers::widest`].
    fn widen(&mut self, member: M) {
        self.widest = Some(self.widest.map_or(member, |widest| widest.widest(member)));
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the pair has no member.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, held: Held<M>) -> (u32, u32) {
        let bucket = bucket_of(held.key);
        let (chunk, within) = split(bucket);
        if self.chunks.is_empty() {
            self.chunks.resize_with(CHUNKS, || None);
        }
        let chunk_store = self.chunks[chunk].get_or_insert_with(|| {
            Box::new(Chunk {
                buckets: (0..CHUNK).map(|_| Vec::new()).collect(),
                occupied: [0; CHUNK / 64],
                len: 0,
            })
        });
        let members = &mut chunk_store.buckets[within];
        let position = members.len() as u32;
        members.push(held);
        chunk_store.occupied[within / 64] |= 1 << (within % 64);
        chunk_store.len += 1;
        self.live[chunk / 64] |= 1 << (chunk % 64);
        self.len += 1;
        self.widen(held.member);
        (bucket, position)
    }

    /// Removes the member at (`bucket`, `position`); returns the slot moved into its position.
    fn remove(&mut self, bucket: u32, position: u32) -> Option<Slot> {
        let (chunk, within) = split(bucket);
        let chunk_store = self.chunks.get_mut(chunk).and_then(Option::as_mut)?;
        let members = &mut chunk_store.buckets[within];
        members.swap_remove(position as usize);
        let moved = members.get(position as usize).map(|held| held.slot);
        if members.is_empty() {
            chunk_store.occupied[within / 64] &= !(1 << (within % 64));
        }
        chunk_store.len -= 1;
        if chunk_store.len == 0 {
            self.live[chunk / 64] &= !(1 << (chunk % 64));
        }
        self.len -= 1;
        if self.len == 0 {
            self.widest = None;
        }
        moved
    }

    fn at(&self, bucket: u32, position: u32) -> Option<&Held<M>> {
        let (chunk, within) = split(bucket);
        self.chunks
            .get(chunk)?
            .as_ref()?
            .buckets
            .get(within)?
            .get(position as usize)
    }

    fn at_mut(&mut self, bucket: u32, position: u32) -> Option<&mut Held<M>> {
        let (chunk, within) = split(bucket);
        self.chunks
            .get_mut(chunk)?
            .as_mut()?
            .buckets
            .get_mut(within)?
            .get_mut(position as usize)
    }

    /// The members whose key is at least `level`, in bucket order (not meaningful: callers
    /// confirm each member exactly and order what they report).
    pub fn at_or_above(&self, level: u128) -> impl Iterator<Item = &Held<M>> + '_ {
        let (first_chunk, first_within) = split(bucket_of(level));
        (first_chunk..CHUNKS)
            .filter(move |chunk| self.live[chunk / 64] & (1 << (chunk % 64)) != 0)
            .filter_map(move |chunk| Some((chunk, self.chunks.get(chunk)?.as_deref()?)))
            .flat_map(move |(chunk, store)| {
                let from = if chunk == first_chunk {
                    first_within
                } else {
                    0
                };
                (from / 64..CHUNK / 64).flat_map(move |word| {
                    let mut bits = store.occupied[word];
                    if word == from / 64 {
                        bits &= u64::MAX << (from % 64);
                    }
                    std::iter::from_fn(move || {
                        if bits == 0 {
                            return None;
                        }
                        let bit = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        Some(&store.buckets[word * 64 + bit])
                    })
                    .flatten()
                })
            })
            .filter(move |held| held.key >= level)
    }
}

/// Where a slot's member sits: its pair's number, bucket and position in the bucket.
#[derive(Clone, Copy, Debug)]
struct Place {
    pair: u32,
    bucket: u32,
    position: u32,
}

const UNPLACED: Place = Place {
    pair: NOWHERE,
    bucket: 0,
    position: 0,
};

/// A pair-indexed market's accounts (an Aave pool, a Compound Comptroller): each one with a
/// single collateral and a single debt in its pair's [`PairMembers`], the others in the complex
/// set, by slot. The index remembers where every slot sits, so models keep no copy of it.
#[derive(Clone, Debug)]
pub struct PairIndex<M> {
    /// Pair number by pair, walked in pair order.
    numbers: BTreeMap<(Id, Id), u32>,
    pairs: Vec<PairMembers<M>>,
    /// Numbers of emptied pairs, reused by the next new pair.
    free: Vec<u32>,
    /// Per slot.
    places: Vec<Place>,
    /// The accounts indexed as [`IndexEntry::Complex`] grouped by the assets they read, each
    /// group's slots walked in slot order: every use is order-free (the found set orders
    /// itself, the monitor keys by slot). A price move re-tests only the groups holding the
    /// asset, so the accounts left with debt and no collateral after a crash are not re-judged
    /// at every move of a collateral's price.
    complex: Vec<(Vec<Id>, BTreeSet<Slot>)>,
    /// Group number by assets.
    groups: BTreeMap<Vec<Id>, u32>,
}

impl<M> Default for PairIndex<M> {
    fn default() -> Self {
        Self {
            numbers: BTreeMap::new(),
            pairs: Vec::new(),
            free: Vec::new(),
            places: Vec::new(),
            complex: Vec::new(),
            groups: BTreeMap::new(),
        }
    }
}

impl<M: Widest + PartialEq> PairIndex<M> {
    /// Where `slot` sits (`None`: not indexed).
    pub fn placed(&self, slot: Slot) -> Option<Placed<'_, M>> {
        let place = self.places.get(slot as usize)?;
        match place.pair {
            NOWHERE => None,
            COMPLEX => Some(Placed::Complex),
            number => {
                let pair = self.pairs.get(number as usize)?;
                Some(Placed::Pair {
                    pair: &pair.ids,
                    number,
                    held: pair.at(place.bucket, place.position)?,
                })
            }
        }
    }

    /// Reads where `slot` sits (see [`crate::protocol::ProtocolModel::warm`]): an opaque
    /// place for [`PairIndex::warm_member`].
    pub fn warm_place(&self, slot: Slot) -> [u32; 3] {
        self.places
            .get(slot as usize)
            .map_or([NOWHERE, 0, 0], |place| {
                [place.pair, place.bucket, place.position]
            })
    }

    /// Reads the member at `place` and its bucket's last member, the two a move of it touches,
    /// whole (a member is 16-byte aligned and may straddle two cache lines: reading only its slot
    /// left the move's copy and key comparison to miss); returns the last member's slot, whose
    /// place the move rewrites.
    pub fn warm_member(&self, [pair, bucket, position]: [u32; 3]) -> Option<Slot> {
        let members = self.pairs.get(pair as usize)?;
        let (chunk, within) = split(bucket);
        let bucket = members
            .chunks
            .get(chunk)
            .and_then(Option::as_ref)
            .and_then(|store| store.buckets.get(within))?;
        std::hint::black_box(bucket.get(position as usize).copied());
        let last = std::hint::black_box(bucket.last().copied())?;
        Some(last.slot)
    }

    /// The pairs with members, in pair order.
    pub fn pairs(&self) -> impl Iterator<Item = &PairMembers<M>> + '_ {
        self.numbers
            .values()
            .map(move |number| &self.pairs[*number as usize])
    }

    /// The slots indexed as complex.
    pub fn complex(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.complex.iter().flat_map(|(_, slots)| slots)
    }

    /// The slots indexed as complex whose judgement reads an asset `retest` names as moved.
    pub fn complex_moved<'a>(&'a self, retest: &'a Retest) -> impl Iterator<Item = &'a Slot> + 'a {
        self.complex
            .iter()
            .filter(|(assets, _)| {
                retest.all
                    || retest.appeared
                    || assets.iter().any(|a| retest.assets.contains_key(a))
            })
            .flat_map(|(_, slots)| slots)
    }

    /// Indexes `slot` as `new` (`None`: removes it). Returns the pair whose last member the
    /// move took out (the pair is dropped, even if `new` puts the member back), which the
    /// model's [`Monitor`] must forget.
    pub fn set(&mut self, slot: Slot, new: Option<IndexEntry<M>>) -> Option<(Id, Id)> {
        let index = slot as usize;
        if self.places.len() <= index {
            self.places.resize(index + 1, UNPLACED);
        }
        let place = self.places[index];
        let mut emptied = None;
        match place.pair {
            NOWHERE => {}
            COMPLEX => {
                let group = &mut self.complex[place.bucket as usize];
                if let Some(IndexEntry::Complex { assets }) = &new
                    && *assets == group.0
                {
                    return None;
                }
                group.1.remove(&slot);
            }
            number => {
                let pair = &mut self.pairs[number as usize];
                let shared = pair.len > 1;
                if let Some(IndexEntry::Pair {
                    collateral,
                    debt,
                    key,
                    member,
                }) = new
                    && pair.ids == (collateral, debt)
                    && let Some(held) = pair.at_mut(place.bucket, place.position)
                {
                    if held.key == key && held.member == member {
                        return None;
                    }
                    // Any change to the pair's only member drops the pair (a remove, then an
                    // insert), so the monitor forgets its level.
                    if bucket_of(key) == place.bucket && shared {
                        held.key = key;
                        held.member = member;
                        pair.widen(member);
                        return None;
                    }
                }
                if let Some(moved) = pair.remove(place.bucket, place.position) {
                    self.places[moved as usize].position = place.position;
                }
                if pair.is_empty() {
                    self.numbers.remove(&pair.ids);
                    self.free.push(number);
                    emptied = Some(pair.ids);
                }
            }
        }
        self.places[index] = UNPLACED;
        match new {
            Some(IndexEntry::Pair {
                collateral,
                debt,
                key,
                member,
            }) => {
                let ids = (collateral, debt);
                let number = match self.numbers.get(&ids) {
                    Some(number) => *number,
                    None => {
                        let number = match self.free.pop() {
                            Some(number) => {
                                self.pairs[number as usize].ids = ids;
                                number
                            }
                            None => {
                                self.pairs.push(PairMembers::new(ids));
                                (self.pairs.len() - 1) as u32
                            }
                        };
                        self.numbers.insert(ids, number);
                        number
                    }
                };
                let (bucket, position) =
                    self.pairs[number as usize].push(Held { slot, key, member });
                self.places[index] = Place {
                    pair: number,
                    bucket,
                    position,
                };
            }
            Some(IndexEntry::Complex { assets }) => {
                let group = match self.groups.get(&assets) {
                    Some(group) => *group,
                    None => {
                        self.complex.push((assets.clone(), BTreeSet::new()));
                        let group = (self.complex.len() - 1) as u32;
                        self.groups.insert(assets, group);
                        group
                    }
                };
                self.complex[group as usize].1.insert(slot);
                self.places[index] = Place {
                    pair: COMPLEX,
                    bucket: group,
                    position: 0,
                };
            }
            None => {}
        }
        emptied
    }
}

impl<M> PairMembers<M> {
    /// (collateral, debt).
    pub fn ids(&self) -> &(Id, Id) {
        &self.ids
    }
}

/// [`crate::protocol::ProtocolModel::warm`] for a pair-indexed model: reads, for up to
/// [`WARM_BATCH`] coming (market, account) actions, where the account's slot lookup starts
/// ([`Slots::warm_lookup`]), then the account's slot, then its record and
/// index place, then its index member and its bucket's last member, then that last member's
/// place (a move rewrites it), each pass of independent reads. `market` gives a market's
/// accounts and index, `read` reads what an action reads of an account's record.
pub fn warm_accounts<'a, A: 'a, M: Widest + PartialEq + 'a>(
    accounts: impl Iterator<Item = Option<(&'a Id, &'a Id)>>,
    market: impl Fn(&Id) -> Option<(&'a Slots<A>, &'a PairIndex<M>)>,
    read: impl Fn(&A) -> u64,
) -> u64 {
    type Account<'a, A, M> = Option<(&'a Slots<A>, &'a PairIndex<M>, &'a Id)>;
    let mut listed: [Account<'_, A, M>; WARM_BATCH] = [None; WARM_BATCH];
    let mut sum = 0u64;
    for (account, listed) in accounts.zip(listed.iter_mut()) {
        if let Some((market_id, account)) = account
            && let Some((slots, index)) = market(market_id)
        {
            sum ^= slots.warm_lookup(account);
            *listed = Some((slots, index, account));
        }
    }
    type Found<'a, A, M> = Option<(&'a Slots<A>, &'a PairIndex<M>, Slot)>;
    let mut found: [Found<'_, A, M>; WARM_BATCH] = [None; WARM_BATCH];
    for (listed, found) in listed.iter().zip(found.iter_mut()) {
        if let Some((slots, index, account)) = listed {
            *found = slots.find(account).map(|slot| (*slots, *index, slot));
        }
    }
    let mut places = [[NOWHERE, 0, 0]; WARM_BATCH];
    for (found, place) in found.iter().zip(places.iter_mut()) {
        if let Some((slots, index, slot)) = found {
            sum ^= read(slots.at(*slot));
            *place = index.warm_place(*slot);
        }
    }
    let mut moved = [None; WARM_BATCH];
    for ((found, place), moved) in found.iter().zip(places).zip(moved.iter_mut()) {
        if let Some((_, index, _)) = found {
            *moved = index.warm_member(place);
        }
    }
    for (found, moved) in found.iter().zip(moved) {
        if let (Some((_, index, _)), Some(moved)) = (found, moved) {
            sum ^= u64::from(index.warm_place(moved)[2]);
        }
    }
    sum
}

/// The incremental liquidatable set of a pair-indexed model (Aave, Compound).
///
/// Invariant after every refresh: each account's membership (and exposure, once kept) is what
/// the model's exact rule gives in the current state. An account's truth changes only through
/// its own positions (the model calls [`Monitor::touch`]) or through the view of one of its
/// assets (price, index, threshold, decimals: [`Monitor::begin`] compares them with the last
/// refresh's). A pair member liquidatable in a state has a key at or above that state's level,
/// so walking a pair from the lower of the stored and the new level re-tests every member that
/// was or is liquidatable; accounts with several reserves are re-tested whenever an asset
/// moves. So a check after a liquidation costs that account, and one after a price move the
/// pairs it moves.
///
/// Until the exposures are asked for, a walk also passes over the members a one-way move cannot
/// change: after a fall (no health rose) the members stay liquidatable, after a rise the others
/// stay safe. A crash's backlog of liquidatable accounts is then not re-judged at every tick of
/// the falling price.
#[derive(Clone, Debug)]
pub struct Monitor<T, V> {
    watches: BTreeMap<Id, Watch<T>>,
    /// Accounts whose membership changed since the last report: (at the report, now).
    changes: BTreeMap<(Id, Slot), (bool, bool)>,
    /// Asset views at the last refresh.
    seen: BTreeMap<Id, V>,
    /// (market, slot) acted on since the last refresh, with repeats: a push per event, sorted
    /// and deduplicated once per refresh.
    touched: Vec<(Id, Slot)>,
    /// The state was replaced: re-test everything at the next refresh.
    resync: bool,
    /// The next report lists every account (what was reported before the state was replaced is
    /// unknown).
    report_all: bool,
    /// Whether exposures and their sums are kept (from [`Monitor::keep_exposures`] on).
    exposures: bool,
    /// The exposures were just asked for: the next refresh re-tests everything to fill them.
    refill: bool,
}

impl<T, V> Default for Monitor<T, V> {
    fn default() -> Self {
        Self {
            watches: BTreeMap::new(),
            changes: BTreeMap::new(),
            seen: BTreeMap::new(),
            touched: Vec::new(),
            resync: false,
            report_all: false,
            exposures: false,
            refill: false,
        }
    }
}

impl<T: Exposure, V: PartialEq> Monitor<T, V> {
    /// Notes that the positions of the account in `slot` of `market` changed.
    pub fn touch(&mut self, market: Id, slot: Slot) {
        if !self.resync {
            self.touched.push((market, slot));
        }
    }

    /// Forgets a pair's stored level when its index empties: a pair created again later has
    /// only touched members, and must not be walked from a level of another time.
    pub fn forget_pair(&mut self, market: &Id, pair: &(Id, Id)) {
        if let Some(watch) = self.watches.get_mut(market) {
            watch.levels.remove(pair);
        }
    }

    /// The model's state was replaced wholesale (decoded): the next refresh re-tests every
    /// account and the next report lists every account.
    pub fn resync(&mut self) {
        self.resync = true;
        self.touched.clear();
    }

    /// Keeps every liquidatable account's exposure from the next refresh on, for
    /// [`Monitor::totals`]' sums; the first call makes that refresh re-test every account.
    pub fn keep_exposures(&mut self) {
        if !self.exposures {
            self.exposures = true;
            self.refill = true;
        }
    }

    /// Starts a refresh with the current asset views: what to re-test, or `None` when nothing
    /// can have changed. `drift` says which way a view change can move its holders' health.
    pub fn begin(
        &mut self,
        views: BTreeMap<Id, V>,
        drift: impl Fn(&V, &V) -> AssetDrift,
    ) -> Option<Retest> {
        if !self.resync && !self.refill && self.touched.is_empty() && views == self.seen {
            return None;
        }
        let mut assets: BTreeMap<Id, AssetDrift> = views
            .iter()
            .filter_map(|(asset, view)| match self.seen.get(asset) {
                Some(old) if old == view => None,
                Some(old) => Some((*asset, drift(old, view))),
                None => Some((*asset, AssetDrift::ANY)),
            })
            .collect();
        let gone = self.seen.keys().filter(|asset| !views.contains_key(*asset));
        assets.extend(gone.map(|asset| (*asset, AssetDrift::ANY)));
        let appeared = views.len() != self.seen.len()
            || views.keys().any(|asset| !self.seen.contains_key(asset));
        self.seen = views;
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        Some(Retest {
            all: self.resync || self.refill,
            replaced: self.resync,
            assets,
            appeared,
            touched,
        })
    }

    /// What the last walk of `pair` in `market` left: `None` when the pair is new since the
    /// last refresh.
    pub fn mark(&self, market: &Id, pair: &(Id, Id)) -> Option<PairMark> {
        self.watches.get(market)?.levels.get(pair).copied()
    }

    /// Re-tests the members of `market`'s pairs whose assets `retest` names, recording in `out`
    /// each pair's new level (also for a pair new since the last refresh, whose members are all
    /// touched and re-tested as such) and each walked member's result. `view` gives a pair's
    /// view and compressed level (`None`: it cannot be judged, nobody in it is liquidatable);
    /// `judge` confirms one member exactly (`None`: not liquidatable). A moved
    /// pair is walked from the lower of its stored and new level: a member liquidatable before
    /// has a key at or above the stored level, one liquidatable now at or above the new one.
    ///
    /// Without exposures, a pair whose health moved one way skips the members whose status that
    /// way cannot change, provided `bounded` said of the old view and says of the new one that
    /// no member's judgement can fail (overflow): `bounded(view, widest)` must be true only if
    /// no member with balances within [`PairMembers::widest`]'s fails under `view`.
    #[allow(clippy::too_many_arguments)]
    pub fn walk_pairs<M: Widest + PartialEq, P, E>(
        &self,
        retest: &Retest,
        market: &Id,
        index: &PairIndex<M>,
        mut view: impl FnMut(&(Id, Id)) -> Option<(P, u128)>,
        bounded: impl Fn(&P, &M) -> bool,
        mut judge: impl FnMut(&P, &M) -> Result<Option<T>, E>,
        out: &mut Retested<T>,
    ) -> Result<(), E> {
        let watch = self.watches.get(market);
        for members in index.pairs() {
            let pair = members.ids();
            let moved = retest.pair_moved(&pair.0, &pair.1);
            let stored = if retest.replaced {
                None
            } else {
                self.mark(market, pair)
            };
            if !moved && stored.is_some() {
                continue;
            }
            let view = view(pair);
            let level = view.as_ref().map(|(_, level)| *level);
            let now_bounded = match (&view, members.widest()) {
                (Some((view, _)), Some(widest)) => bounded(view, widest),
                _ => false,
            };
            out.levels.push((
                *market,
                *pair,
                PairMark {
                    level,
                    bounded: now_bounded,
                },
            ));
            if !moved {
                continue;
            }
            let from = match (stored.and_then(|mark| mark.level), level) {
                (Some(old), Some(new)) => Some(old.min(new)),
                (old, new) => old.or(new),
            };
            let Some(from) = from else {
                continue;
            };
            // A skip rests on the member's last judgement and its next being one comparison of
            // health apart: both views judge everyone (a pair that could not be judged has no
            // members to keep), and neither can fail (where a judgement reads an overflow as
            // "not liquidatable", the monotone health would not decide it).
            let one_way = !self.exposures
                && now_bounded
                && stored.is_some_and(|mark| mark.level.is_some() && mark.bounded);
            let drift = if one_way {
                retest.pair_drift(&pair.0, &pair.1)
            } else {
                Drift::Any
            };
            // The status no member with it can lose: after a rise nobody safe becomes
            // liquidatable, after a fall nobody liquidatable becomes safe.
            let kept = match drift {
                Drift::Still => continue,
                Drift::Up => Some(false),
                Drift::Down => Some(true),
                Drift::Any => None,
            };
            for held in members.at_or_above(from) {
                let member = || watch.is_some_and(|watch| watch.is_member(held.slot));
                if kept.is_some_and(|kept| member() == kept) {
                    continue;
                }
                let found = match &view {
                    Some((view, _)) => judge(view, &held.member)?,
                    None => None,
                };
                out.results.push((*market, held.slot, found));
            }
        }
        Ok(())
    }

    /// Ends a refresh begun with `retest`: stores the pairs' new levels and the re-tested
    /// accounts' memberships (and exposures, when kept), noting membership changes. Later
    /// results for an account replace earlier ones.
    pub fn finish(&mut self, retest: &Retest, out: Retested<T>) {
        if retest.replaced {
            self.watches.clear();
            self.changes.clear();
            self.resync = false;
            self.report_all = true;
        }
        if retest.all {
            self.refill = false;
        }
        for (market, pair, mark) in out.levels {
            self.watches
                .entry(market)
                .or_default()
                .levels
                .insert(pair, mark);
        }
        // Results come in runs of one market (a walk per market, then the touched accounts in
        // market order): one map lookup per run, not per account.
        let mut results = out.results.as_slice();
        while let Some(&(market, _, _)) = results.first() {
            let run = results
                .iter()
                .position(|(other, _, _)| *other != market)
                .unwrap_or(results.len());
            let (now_run, rest) = results.split_at(run);
            results = rest;
            let watch = self.watches.entry(market).or_default();
            for (done, &(_, slot, now)) in now_run.iter().enumerate() {
                let is = now.is_some();
                let was = watch.set_member(slot, is);
                if self.exposures {
                    // Walks re-test members in index order, random in slot order: read the
                    // records a batch ahead so their cache misses overlap (a hint, as `warm`;
                    // results never depend on it). Whole: a stored exposure spans two cache
                    // lines, and reading only whether it is there left the second one to miss
                    // when it is replaced.
                    if done % WARM_BATCH == 0 {
                        for (_, slot, _) in now_run[done..].iter().take(WARM_BATCH) {
                            std::hint::black_box(watch.exposures.get(*slot as usize).copied());
                        }
                    }
                    watch.set_exposure(slot, now);
                }
                if was != is && !self.report_all {
                    self.changes
                        .entry((market, slot))
                        .and_modify(|entry| entry.1 = is)
                        .or_insert((was, is));
                }
            }
        }
    }

    /// Whether the next report must list every account (see [`Monitor::resync`]); clears it.
    pub fn take_report_all(&mut self) -> bool {
        std::mem::take(&mut self.report_all)
    }

    /// Whether the account in `slot` of `market` is liquidatable as of the last refresh.
    pub fn contains(&self, market: &Id, slot: Slot) -> bool {
        self.watches
            .get(market)
            .is_some_and(|watch| watch.is_member(slot))
    }

    /// Appends the accounts whose membership changed since the last report, in (market,
    /// account) order; `account` names the account in a market's slot.
    pub fn drain_changes(
        &mut self,
        out: &mut Vec<(Id, Id, bool)>,
        account: impl Fn(&Id, Slot) -> Id,
    ) {
        let start = out.len();
        for ((market, slot), (was, now)) in std::mem::take(&mut self.changes) {
            if was != now {
                out.push((market, account(&market, slot), now));
            }
        }
        out[start..].sort_unstable_by_key(|(market, account, _)| (*market, *account));
    }

    /// Liquidatable accounts of `market` and the saturated sums of their collateral, debt and
    /// debt beyond collateral (zero until [`Monitor::keep_exposures`] and a refresh after it).
    pub fn totals(&self, market: &Id) -> (u64, U256, U256, U256) {
        let saturate = |sum: U512| U256::uint_try_from(sum).unwrap_or(U256::MAX);
        match self.watches.get(market) {
            Some(watch) => (
                watch.count,
                saturate(watch.collateral),
                saturate(watch.debt),
                saturate(watch.bad_debt),
            ),
            None => (0, U256::ZERO, U256::ZERO, U256::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_keys_stay_exact_and_large_ones_keep_their_top_bits() {
        assert_eq!(compress_key(U256::ZERO), 0);
        assert_eq!(compress_key(U256::from(12_345u32)), 12_345);
        let edge = (U256::ONE << 120usize) - U256::ONE;
        assert_eq!(compress_key(edge), (1u128 << 120) - 1);
        // 2^120 has 121 bits: shift 1, top bits 2^119.
        assert_eq!(
            compress_key(U256::ONE << 120usize),
            (1u128 << 120) | (1u128 << 119)
        );
        assert_eq!(
            compress_key(U256::MAX),
            (136u128 << 120) | ((1u128 << 120) - 1)
        );
    }

    proptest! {
        #[test]
        fn compression_never_reverses_an_order(
            a_hi: u128, a_lo: u128, a_shift in 0usize..256,
            b_hi: u128, b_lo: u128, b_shift in 0usize..256,
        ) {
            let a = ((U256::from(a_hi) << 128usize) | U256::from(a_lo)) >> a_shift;
            let b = ((U256::from(b_hi) << 128usize) | U256::from(b_lo)) >> b_shift;
            if a >= b {
                prop_assert!(compress_key(a) >= compress_key(b));
            }
            if compress_key(a) > compress_key(b) {
                prop_assert!(a > b);
            }
        }
    }

    proptest! {
        #[test]
        fn constant_division_equals_u256_division(
            n_hi: u128, n_lo: u128, n_shift in 0usize..256, d: u64, d_shift in 0u32..64,
        ) {
            let n = ((U256::from(n_hi) << 128usize) | U256::from(n_lo)) >> n_shift;
            let d = d >> d_shift;
            prop_assume!(d != 0);
            prop_assert_eq!(ConstDivisor::new(d).div(n), n / U256::from(d));
            let wide = U256::from(d) << d_shift as usize;
            let divisor = Divisor::of(wide).unwrap_or_else(|| unreachable!("non-zero"));
            prop_assert_eq!(divisor.div(n), n / wide);
        }
    }

    #[test]
    fn constant_division_at_the_edges() {
        for d in [
            1u64,
            2,
            3,
            7,
            10_000,
            1_000_000_000_000_000_000,
            7_450_580_596_923_828_125,
            u64::MAX,
            1 << 63,
        ] {
            let divisor = ConstDivisor::new(d);
            for n in [
                U256::ZERO,
                U256::ONE,
                U256::from(d),
                U256::from(d) - U256::ONE,
                U256::MAX,
                U256::MAX - U256::from(d),
            ] {
                assert_eq!(divisor.div(n), n / U256::from(d), "{n} / {d}");
            }
        }
        assert_eq!(ConstDivisor::of(U256::ZERO), None);
        assert_eq!(ConstDivisor::of(U256::from(1u128 << 64)), None);
        assert_eq!(Divisor::of(U256::ZERO), None);
        assert_eq!(
            Divisor::of(U256::from(1u128 << 64)),
            Some(Divisor::Wide(U256::from(1u128 << 64)))
        );
        assert!(ConstDivisor::of(U256::from(10u8)).is_some());
    }

    #[derive(Clone, Copy, Debug)]
    struct Owed(U256, U256);

    impl Exposure for Owed {
        fn collateral(&self) -> U256 {
            self.0
        }

        fn debt(&self) -> U256 {
            self.1
        }
    }

    /// A test view is the asset's price: collateral health rises with it, debt health falls.
    fn price_drift(old: &u8, new: &u8) -> AssetDrift {
        AssetDrift {
            collateral: Drift::rising([new.cmp(old)]),
            debt: Drift::falling([new.cmp(old)]),
        }
    }

    fn refresh(
        monitor: &mut Monitor<Owed, u8>,
        views: &[(&str, u8)],
        results: &[(Slot, Option<Owed>)],
    ) {
        let views = views
            .iter()
            .map(|(asset, view)| (Id::name(asset), *view))
            .collect();
        let retest = monitor.begin(views, price_drift).unwrap_or_default();
        let out = Retested {
            levels: Vec::new(),
            results: results
                .iter()
                .map(|(slot, found)| (Id::name("pool"), *slot, *found))
                .collect(),
        };
        monitor.finish(&retest, out);
    }

    #[test]
    fn the_monitor_reports_net_changes_and_exact_sums() {
        let pool = Id::name("pool");
        let mut monitor: Monitor<Owed, u8> = Monitor::default();
        monitor.keep_exposures();
        let owed =
            |collateral: u64, debt: u64| Some(Owed(U256::from(collateral), U256::from(debt)));
        refresh(
            &mut monitor,
            &[("WETH", 1)],
            &[(1, owed(50, 80)), (2, owed(90, 70))],
        );
        let mut changes = Vec::new();
        monitor.drain_changes(&mut changes, |_, slot| Id::Number(u64::from(slot)));
        assert_eq!(
            changes,
            vec![(pool, Id::Number(1), true), (pool, Id::Number(2), true)]
        );
        // Nothing touched and the views as before: nothing to re-test.
        assert!(
            monitor
                .begin([(Id::name("WETH"), 1)].into_iter().collect(), price_drift)
                .is_none()
        );
        let retest = monitor.begin(
            [(Id::name("WETH"), 2), (Id::name("USDC"), 0)]
                .into_iter()
                .collect(),
            price_drift,
        );
        let retest = retest.unwrap_or_default();
        let moved: Vec<Id> = retest.assets.keys().copied().collect();
        assert_eq!(moved, vec![Id::name("USDC"), Id::name("WETH")]);
        assert!(retest.pair_moved(&Id::name("DAI"), &Id::name("USDC")));
        assert!(!retest.pair_moved(&Id::name("DAI"), &Id::name("WBTC")));
        monitor.finish(&retest, Retested::default());
        // Account 2 leaves and comes back before the report, account 1 stays with a new
        // exposure: no news.
        refresh(&mut monitor, &[("WETH", 2), ("USDC", 0)], &[(2, None)]);
        refresh(
            &mut monitor,
            &[("WETH", 2), ("USDC", 0)],
            &[(2, owed(10, 70)), (1, owed(40, 80))],
        );
        changes.clear();
        monitor.drain_changes(&mut changes, |_, slot| Id::Number(u64::from(slot)));
        assert!(changes.is_empty(), "{changes:?}");
        // Sums follow each account's latest exposure: 40 + 10, 80 + 70, (80 - 40) + (70 - 10).
        assert_eq!(
            monitor.totals(&pool),
            (2, U256::from(50u8), U256::from(150u8), U256::from(100u8))
        );
        refresh(&mut monitor, &[("WETH", 2), ("USDC", 0)], &[(1, None)]);
        monitor.drain_changes(&mut changes, |_, slot| Id::Number(u64::from(slot)));
        assert_eq!(changes.last(), Some(&(pool, Id::Number(1), false)));
        assert_eq!(monitor.totals(&pool).0, 1);
        assert!(monitor.contains(&pool, 2) && !monitor.contains(&pool, 1));
        // Sums beyond 256 bits read as the saturated sum a one-by-one saturating addition gives,
        // and go back down exactly when the large exposure leaves.
        refresh(
            &mut monitor,
            &[("WETH", 2), ("USDC", 0)],
            &[(3, Some(Owed(U256::MAX, U256::MAX)))],
        );
        assert_eq!(monitor.totals(&pool).1, U256::MAX);
        refresh(&mut monitor, &[("WETH", 2), ("USDC", 0)], &[(3, None)]);
        assert_eq!(monitor.totals(&pool).1, U256::from(10u8));
        // After a resync everything is re-tested and the next report lists every account.
        monitor.touch(pool, 9);
        monitor.resync();
        let retest = monitor.begin(
            [(Id::name("WETH"), 2), (Id::name("USDC"), 0)]
                .into_iter()
                .collect(),
            price_drift,
        );
        let retest = retest.unwrap_or_default();
        assert!(retest.all && retest.replaced && retest.touched.is_empty());
        monitor.finish(&retest, Retested::default());
        assert!(monitor.take_report_all());
        assert!(!monitor.take_report_all());
        assert_eq!(
            monitor.totals(&pool),
            (0, U256::ZERO, U256::ZERO, U256::ZERO)
        );
    }

    /// One refresh of `monitor` over `index`'s (WETH, DAI) pair at WETH price `price`: a member
    /// (its key) is liquidatable when its key is even and at least the price, so the level (the
    /// price) lets the walk meet members it must reject. Returns how many members were judged.
    fn walk(
        monitor: &mut Monitor<Owed, u8>,
        index: &PairIndex<u32>,
        price: u8,
        bounded: bool,
    ) -> usize {
        let pool = Id::name("pool");
        let views = [(Id::name("WETH"), price), (Id::name("DAI"), 1)];
        let retest = monitor
            .begin(views.into_iter().collect(), price_drift)
            .unwrap_or_default();
        let mut out = Retested::default();
        let mut judged = 0;
        monitor
            .walk_pairs(
                &retest,
                &pool,
                index,
                |_| Some((u32::from(price), u128::from(price))),
                |_, _| bounded,
                |price: &u32, key: &u32| -> Result<Option<Owed>, ()> {
                    judged += 1;
                    let liquidatable = key.is_multiple_of(2) && key >= price;
                    Ok(liquidatable.then_some(Owed(U256::from(*price), U256::from(*key))))
                },
                &mut out,
            )
            .unwrap();
        monitor.finish(&retest, out);
        judged
    }

    #[test]
    fn without_exposures_a_one_way_move_judges_only_the_members_it_can_change() {
        let pool = Id::name("pool");
        let (weth, dai) = (Id::name("WETH"), Id::name("DAI"));
        let mut index: PairIndex<u32> = PairIndex::default();
        for key in 1..=200u32 {
            let entry = IndexEntry::Pair {
                collateral: weth,
                debt: dai,
                key: u128::from(key),
                member: key,
            };
            index.set(key, Some(entry));
        }
        let widest =
            |index: &PairIndex<u32>| index.pairs().next().and_then(|p| p.widest().copied());
        assert_eq!(widest(&index), Some(200));
        // A member changed in place (same bucket) widens the bound too.
        let seven = |member: u32| IndexEntry::Pair {
            collateral: weth,
            debt: dai,
            key: 7,
            member,
        };
        index.set(7, Some(seven(5_000)));
        assert_eq!(widest(&index), Some(5_000));
        index.set(7, Some(seven(7)));
        let members = |monitor: &Monitor<Owed, u8>| -> Vec<Slot> {
            (1..=200)
                .filter(|slot| monitor.contains(&pool, *slot))
                .collect()
        };
        let exact = |price: u32| -> Vec<Slot> { (price..=200).filter(|k| k % 2 == 0).collect() };
        let mut monitor: Monitor<Owed, u8> = Monitor::default();
        // A new pair is walked whole from its level: keys 100..=200.
        assert_eq!(walk(&mut monitor, &index, 100, true), 101);
        assert_eq!(members(&monitor), exact(100));
        // The collateral's price falls: the 51 members stay, only the 20 others from the new
        // level are judged.
        assert_eq!(walk(&mut monitor, &index, 80, true), 70);
        assert_eq!(members(&monitor), exact(80));
        // It rises: the 60 non-members from the lower (old) level stay out, the 61 members are
        // judged.
        assert_eq!(walk(&mut monitor, &index, 90, true), 61);
        assert_eq!(members(&monitor), exact(90));
        // A view under which a judgement could fail skips nobody.
        assert_eq!(walk(&mut monitor, &index, 85, false), 116);
        assert_eq!(members(&monitor), exact(85));
        // Nor does the next move, as the old view was not bounded either.
        assert_eq!(walk(&mut monitor, &index, 84, true), 117);
        assert_eq!(members(&monitor), exact(84));
        // Once exposures are kept, every member is judged again (to fill them), and every one
        // a move reaches after that.
        monitor.keep_exposures();
        assert_eq!(walk(&mut monitor, &index, 84, true), 117);
        assert_eq!(walk(&mut monitor, &index, 70, true), 131);
        assert_eq!(members(&monitor), exact(70));
        let weighed: u64 = exact(70).iter().map(|key| u64::from(*key)).sum();
        assert_eq!(
            monitor.totals(&pool),
            (
                66,
                U256::from(70u32 * 66),
                U256::from(weighed),
                U256::from(weighed - 70 * 66)
            )
        );
    }

    #[test]
    fn the_pair_index_keeps_places_and_walks_exactly_from_a_level() {
        let (weth, wbtc, dai) = (Id::name("WETH"), Id::name("WBTC"), Id::name("DAI"));
        let entry = |collateral: Id, key: u128| {
            Some(IndexEntry::Pair {
                collateral,
                debt: dai,
                key,
                member: key as u32,
            })
        };
        let mut index: PairIndex<u32> = PairIndex::default();
        let mut live: Vec<Option<(Id, u128)>> = vec![None; 300];
        for slot in 0..300u32 {
            let collateral = if slot % 7 == 0 { wbtc } else { weth };
            let key = u128::from(slot * 7919 % 1000) << (slot % 90);
            assert_eq!(index.set(slot, entry(collateral, key)), None);
            live[slot as usize] = Some((collateral, key));
        }
        // Moves within and across buckets and pairs, removals, complex accounts: swap-removes
        // must keep every other slot's place.
        for slot in (0..300u32).step_by(3) {
            let key = u128::from(slot) + 1;
            index.set(slot, entry(wbtc, key));
            live[slot as usize] = Some((wbtc, key));
        }
        for slot in (0..300u32).step_by(5) {
            let complex = IndexEntry::Complex {
                assets: vec![weth, dai],
            };
            index.set(slot, (slot % 2 == 1).then_some(complex));
            live[slot as usize] = None;
        }
        for (slot, expected) in live.iter().enumerate() {
            match (index.placed(slot as Slot), expected) {
                (Some(Placed::Pair { pair, held, .. }), Some((collateral, key))) => {
                    assert_eq!(
                        (*pair, held.key, held.slot),
                        ((*collateral, dai), *key, slot as Slot)
                    );
                    assert_eq!(held.member, *key as u32);
                }
                (Some(Placed::Complex), None) => assert!(slot % 5 == 0 && slot % 2 == 1),
                (None, None) => assert!(slot % 10 == 0),
                (placed, expected) => panic!("slot {slot}: {placed:?} / {expected:?}"),
            }
        }
        assert_eq!(index.complex().count(), 30);
        let moved = |asset: Id| Retest {
            assets: [(asset, AssetDrift::ANY)].into_iter().collect(),
            ..Retest::default()
        };
        assert_eq!(index.complex_moved(&moved(dai)).count(), 30);
        assert_eq!(index.complex_moved(&moved(wbtc)).count(), 0);
        for level in [0u128, 1, 150, 1 << 40, 999 << 80, u128::MAX] {
            for members in index.pairs() {
                let mut walked: Vec<Slot> = members.at_or_above(level).map(|h| h.slot).collect();
                walked.sort_unstable();
                let expected: Vec<Slot> = (0..300)
                    .filter(|slot| {
                        live[*slot as usize].is_some_and(|(collateral, key)| {
                            (collateral, dai) == *members.ids() && key >= level
                        })
                    })
                    .collect();
                assert_eq!(walked, expected, "level {level}");
            }
        }
        // Emptying a pair reports it, also when its only member moves within it.
        let mut small: PairIndex<u32> = PairIndex::default();
        small.set(1, entry(weth, 10));
        assert_eq!(small.set(1, entry(weth, 10)), None);
        assert_eq!(small.set(1, entry(weth, 11)), Some((weth, dai)));
        small.set(2, entry(weth, 12));
        assert_eq!(small.set(1, entry(weth, 13)), None);
        assert_eq!(small.set(1, None), None);
        let complex = IndexEntry::Complex { assets: vec![dai] };
        assert_eq!(small.set(2, Some(complex.clone())), Some((weth, dai)));
        assert_eq!(small.set(2, Some(complex)), None);
        assert_eq!(small.pairs().count(), 0);
    }

    #[test]
    fn markets_come_out_riskiest_first_with_ties_by_account() {
        let mut set = FoundSet::default();
        set.clear();
        set.push(Id::Number(7), U256::from(900u32), 'a');
        set.push(Id::Number(3), U256::from(500u32), 'b');
        set.push(Id::Number(1), U256::from(900u32), 'c');
        set.end_market(Id::name("pool-1"));
        set.push(Id::Number(9), U256::from(100u32), 'd');
        set.end_market(Id::name("pool-2"));
        set.finish();
        let got: Vec<(String, u64, char)> = set
            .ordered()
            .map(|(market, account, item)| {
                let Id::Number(n) = account else {
                    unreachable!("numbers pushed")
                };
                (market.to_string(), *n, *item)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("pool-1".to_owned(), 3, 'b'),
                ("pool-1".to_owned(), 1, 'c'),
                ("pool-1".to_owned(), 7, 'a'),
                ("pool-2".to_owned(), 9, 'd'),
            ]
        );
        assert_eq!(
            set.of_market(&Id::name("pool-2")).collect::<Vec<_>>(),
            vec![&'d']
        );
        assert_eq!(set.of_market(&Id::name("pool-3")).count(), 0);
        assert!(set.is_valid());
        set.invalidate();
        assert!(!set.is_valid());
        assert_eq!(set.len(), 4);
    }
}
