//! The vault index: each ilk's vaults by `art * RAY / ink`, and the unsafe and underwater sets
//! kept incrementally as the threshold (`spot`, the OSM price) and the rate move.

use super::*;

pub(super) const NO_PLACE: (u32, u32) = (u32::MAX, u32::MAX);

/// [`Vault::flags`] bit: liquidatable (`ink * spot < art * rate`).
pub(super) const UNSAFE: u8 = 1;

/// [`Vault::flags`] bit: debt above the collateral's value at the OSM price.
pub(super) const UNDERWATER: u8 = 2;

/// One incrementally maintained subset of an ilk's vaults: those with
/// `ink * threshold < art * rate` for the threshold and rate of the last refresh (threshold
/// `spot` for the unsafe set, the OSM price as a ray for the underwater set), with their count
/// and sums. A refresh re-tests only the vaults whose key lies between the old and the new level
/// (every key below a level is outside the set, every key above it inside); a vault's own change
/// re-tests that vault. So keeping the unsafe set and the timeline's sums costs what changes, not
/// the size of the set, which is what lets a replay check at every price move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Watch {
    pub(super) threshold: U256,
    pub(super) rate: U256,
    pub(super) level: u128,
    pub(super) count: u64,
    /// Sum of `ink` over the set, wad.
    pub(super) ink: U256,
    /// Sum of `art` over the set, wad.
    pub(super) art: U256,
}

impl Watch {
    pub(super) fn contains(&self, ink: U256, art: U256) -> Result<bool, EngineError> {
        Ok(!self.threshold.is_zero()
            && !art.is_zero()
            && mul(ink, self.threshold, "ink * threshold")? < mul(art, self.rate, "art * rate")?)
    }

    pub(super) fn add(&mut self, ink: U256, art: U256) {
        self.count += 1;
        self.ink = self.ink.saturating_add(ink);
        self.art = self.art.saturating_add(art);
    }

    pub(super) fn remove(&mut self, ink: U256, art: U256) {
        self.count = self.count.saturating_sub(1);
        self.ink = self.ink.saturating_sub(ink);
        self.art = self.art.saturating_sub(art);
    }
}

/// The level for a watch: [`level`], or the maximum when there is no threshold (no price:
/// nothing is in the set, and every key is at most the maximum, so a move to or from "no price"
/// re-tests everything above the other level).
pub(super) fn watch_level(threshold: U256, rate: U256) -> Result<u128, EngineError> {
    if threshold.is_zero() {
        Ok(u128::MAX)
    } else {
        level(threshold, rate)
    }
}

pub(super) fn saturate(value: U256) -> u128 {
    if value.bit_len() > 128 {
        u128::MAX
    } else {
        value.to::<u128>()
    }
}

/// Records that `account`'s unsafe flag went from `was` to `now`, keeping the flag as of the last
/// report so a vault that flips and flips back reports nothing.
pub(super) fn note_change(
    changes: &mut BTreeMap<Id, (bool, bool)>,
    account: Id,
    was: bool,
    now: bool,
) {
    if was == now {
        return;
    }
    changes
        .entry(account)
        .and_modify(|entry| entry.1 = now)
        .or_insert((was, now));
}

/// The index level for `spot` and `rate`: `min(floor(spot * RAY / rate), u128::MAX)`. A vault
/// with a key below it is safe: `key < level` implies `art * RAY / ink < spot * RAY / rate`.
pub(super) fn level(spot: U256, rate: U256) -> Result<u128, EngineError> {
    Ok(saturate(mul_div(spot, RAY, rate, "spot * RAY / rate")?))
}

/// A vault as its ilk's index holds it: its balances, so walking the index to confirm candidates
/// after a price shock reads the index front to back and never the vaults. Balances are kept in
/// 128 bits (real ones are below `1e21` wad, far under `2^128`): an entry of 40 bytes instead of
/// 112 is what keeps moving a vault between buckets, once per vault action, cheap. A vault whose
/// balances do not fit is held as [`Member::WIDE`], and whoever reads it reads the vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) ink: [u64; 2],
    pub(super) art: [u64; 2],
}

impl Member {
    /// Stands for balances that do not fit in 128 bits: read them from the vault.
    const WIDE: Member = Member {
        ink: [u64::MAX; 2],
        art: [u64::MAX; 2],
    };

    pub(super) fn of(vault: &Vault) -> Member {
        match (narrow(vault.ink), narrow(vault.art)) {
            (Some(ink), Some(art)) => Member { ink, art },
            _ => Member::WIDE,
        }
    }

    /// `(ink, art)` of the vault this member stands for.
    pub(super) fn balances(self, vault: &Vault) -> (U256, U256) {
        if self == Member::WIDE {
            (vault.ink, vault.art)
        } else {
            (widen(self.ink), widen(self.art))
        }
    }
}

pub(super) fn narrow(value: U256) -> Option<[u64; 2]> {
    let limbs = value.as_limbs();
    (limbs[2] == 0 && limbs[3] == 0).then_some([limbs[0], limbs[1]])
}

pub(super) fn widen(half: [u64; 2]) -> U256 {
    U256::from_limbs([half[0], half[1], 0, 0])
}

impl Vault {
    pub(super) fn urn(&self) -> Urn {
        Urn {
            ink: self.ink,
            art: self.art,
        }
    }

    /// `min(floor(art * RAY / ink), u128::MAX)`; the maximum with debt and no collateral;
    /// `None` without debt. An urn is unsafe iff `art / ink > spot / rate`, so every urn with a
    /// key below [`level`] is safe (see [`crate::index`]). Saturating keeps that true: a
    /// saturated key is never below a level. Real keys are near `1e30` (DAI per ETH times RAY), far
    /// below `u128::MAX` (3.4e38).
    pub(super) fn trigger_key(&self) -> Option<u128> {
        if self.art.is_zero() {
            None
        } else if self.ink.is_zero() {
            Some(u128::MAX)
        } else {
            Some(saturate(self.art.saturating_mul(RAY) / self.ink))
        }
    }
}

impl Ilk {
    /// Moves the index entry of the vault in `slot` to what the vault is now and re-tests it
    /// against the watches; `old` is the vault before its change.
    pub(super) fn reindex(&mut self, slot: Slot, old: Vault) -> Result<(), EngineError> {
        let vault = self.vaults.at_mut(slot);
        self.index.set(slot, vault.trigger_key(), Member::of(vault));
        let Some(watches) = self.watches.as_mut() else {
            return Ok(());
        };
        let was_unsafe = old.flags & UNSAFE != 0;
        if was_unsafe {
            // Held unsafe at the last check, so it may have an open episode (one opens only
            // for a vault the check found unsafe), whose evidence reads `ink` and `art`.
            self.touched.push(slot);
        }
        let mut flags = 0;
        for (watch, bit) in watches.iter_mut().zip([UNSAFE, UNDERWATER]) {
            if old.flags & bit != 0 {
                watch.remove(old.ink, old.art);
            }
            if watch.contains(vault.ink, vault.art)? {
                watch.add(vault.ink, vault.art);
                flags |= bit;
            }
        }
        vault.flags = flags;
        if was_unsafe != (flags & UNSAFE != 0) {
            let account = *self.vaults.id(slot);
            note_change(&mut self.changes, account, was_unsafe, !was_unsafe);
        }
        Ok(())
    }

    /// Brings the watches to the current `spot`, OSM price and `rate` (dripped to `time`).
    pub(super) fn refresh(
        &mut self,
        time: Timestamp,
        price: Option<U256>,
    ) -> Result<(), EngineError> {
        self.drip(time)?;
        let thresholds = [
            self.spot,
            match price {
                Some(price) if !self.spot.is_zero() => mul(price, BLN, "price * 1e9")?,
                _ => U256::ZERO,
            },
        ];
        let first = self.watches.is_none();
        let mut watches = self.watches.unwrap_or_default();
        for (slot, bit) in [(0, UNSAFE), (1, UNDERWATER)] {
            let watch = &mut watches[slot];
            let (threshold, rate) = (thresholds[slot], self.rate);
            if !first && watch.threshold == threshold && watch.rate == rate {
                continue;
            }
            let level = watch_level(threshold, rate)?;
            // First refresh: everything at or above the level; later: what lies between the
            // old and the new level, inclusive (elsewhere membership cannot have changed).
            let (low, high) = if first {
                (level, u128::MAX)
            } else {
                (level.min(watch.level), level.max(watch.level))
            };
            watch.threshold = threshold;
            watch.rate = rate;
            watch.level = level;
            for (slot, member) in self.index.between(low, high) {
                let vault = self.vaults.at_mut(*slot);
                let (ink, art) = member.balances(vault);
                let inside = watch.contains(ink, art)?;
                let was = vault.flags & bit != 0;
                if was == inside {
                    continue;
                }
                if inside {
                    watch.add(ink, art);
                    vault.flags |= bit;
                } else {
                    watch.remove(ink, art);
                    vault.flags &= !bit;
                }
                if bit == UNSAFE {
                    note_change(&mut self.changes, *self.vaults.id(*slot), was, inside);
                }
            }
        }
        self.watches = Some(watches);
        Ok(())
    }
}
