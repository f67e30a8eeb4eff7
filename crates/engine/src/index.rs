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

use std::collections::BTreeSet;

use cascade_events::U256;

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
}
