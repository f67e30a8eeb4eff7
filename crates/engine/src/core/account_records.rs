//! The run's `accounts` list (`docs/run-format.md`): the accounts a post-mortem reads one by one,
//! each at the window's start and end, chosen so that a big market still writes a small list.
//!
//! Per market the list holds the accounts liquidated in the run (at most
//! [`ACCOUNTS_LIQUIDATED_PER_MARKET`], the largest debts first), and, from the book as the window
//! opened, the [`ACCOUNTS_LOWEST_HEALTH_PER_MARKET`] lowest health factors and the
//! [`ACCOUNTS_LARGEST_DEBT_PER_MARKET`] largest debts. The last two depend only on the log and
//! the window, so every run of one window lists them: the report compares a scenario's accounts
//! with the baseline's on those rows even where only one run liquidated them.

use std::collections::BTreeMap;

use cascade_events::{Id, Protocol, Timestamp, U256};

use cascade_run::{
    ACCOUNTS_LARGEST_DEBT_PER_MARKET, ACCOUNTS_LIQUIDATED_PER_MARKET,
    ACCOUNTS_LOWEST_HEALTH_PER_MARKET, AccountAsset, AccountRecord, AccountState,
    LiquidationRecord, Listed, Quantity,
};

use crate::protocol::accounts::AccountPosition;

/// Health factors are wads.
const HEALTH_DECIMALS: u8 = 18;

type Key = (Protocol, Id, Id);

/// The book at one moment: every position, sorted by protocol, market and account, and the event
/// it was taken at.
pub struct Book {
    seq: u64,
    time: Timestamp,
    positions: Vec<AccountPosition>,
}

impl Book {
    /// `positions` taken at event `seq`, `time`, sorted for lookups.
    pub fn new(seq: u64, time: Timestamp, mut positions: Vec<AccountPosition>) -> Self {
        positions.sort_unstable_by_key(key);
        Self {
            seq,
            time,
            positions,
        }
    }

    /// The positions, sorted by protocol, market and account.
    pub fn into_positions(self) -> Vec<AccountPosition> {
        self.positions
    }

    fn get(&self, wanted: &Key) -> Option<&AccountPosition> {
        self.positions
            .binary_search_by(|p| key(p).cmp(wanted))
            .ok()
            .map(|index| &self.positions[index])
    }

    fn state(&self, wanted: &Key) -> Option<AccountState> {
        self.get(wanted).map(|p| state(p, self.seq, self.time))
    }
}

fn key(position: &AccountPosition) -> Key {
    (position.protocol, position.market, position.account)
}

/// What the run's liquidations did to one account.
#[derive(Default)]
struct Liquidated {
    count: u32,
    seized: BTreeMap<String, Quantity>,
}

/// The `accounts` list of a run whose window opened on `start` (`None`: the window is the whole
/// log, which opens on an empty book) and closed on `end`, with the run's `liquidations`.
pub fn account_records(
    start: Option<&Book>,
    end: &Book,
    liquidations: &[LiquidationRecord],
) -> Vec<AccountRecord> {
    let mut liquidated: BTreeMap<Key, Liquidated> = BTreeMap::new();
    for record in liquidations {
        let entry = liquidated
            .entry((record.protocol, record.market, record.account))
            .or_default();
        entry.count += 1;
        let sum = entry
            .seized
            .entry(record.collateral_asset.to_string())
            .or_insert_with(|| Quantity::zero(record.collateral_seized.decimals));
        *sum = sum.saturating_add(record.collateral_seized);
    }
    let debt_of = |key: &Key| {
        let at = |book: Option<&Book>| {
            book.and_then(|b| b.get(key))
                .and_then(|p| p.debt_value)
                .unwrap_or_default()
        };
        at(start).max(at(Some(end)))
    };
    let mut listed: BTreeMap<Key, Vec<Listed>> = BTreeMap::new();
    let mut by_market: BTreeMap<(Protocol, Id), Vec<(U256, Key)>> = BTreeMap::new();
    for key in liquidated.keys() {
        by_market
            .entry((key.0, key.1))
            .or_default()
            .push((debt_of(key), *key));
    }
    for mut accounts in by_market.into_values() {
        accounts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, key) in accounts.into_iter().take(ACCOUNTS_LIQUIDATED_PER_MARKET) {
            listed.entry(key).or_default().push(Listed::Liquidated);
        }
    }
    if let Some(start) = start {
        for positions in start
            .positions
            .chunk_by(|a, b| (a.protocol, a.market) == (b.protocol, b.market))
        {
            let mut lowest: Vec<(U256, Key)> = positions
                .iter()
                .filter_map(|p| Some((p.health_factor.filter(|h| *h != U256::MAX)?, key(p))))
                .collect();
            lowest.sort();
            for (_, key) in lowest.into_iter().take(ACCOUNTS_LOWEST_HEALTH_PER_MARKET) {
                listed.entry(key).or_default().push(Listed::LowestHealth);
            }
            let mut largest: Vec<(U256, Key)> = positions
                .iter()
                .filter_map(|p| Some((p.debt_value.filter(|d| !d.is_zero())?, key(p))))
                .collect();
            largest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, key) in largest.into_iter().take(ACCOUNTS_LARGEST_DEBT_PER_MARKET) {
                listed.entry(key).or_default().push(Listed::LargestDebt);
            }
        }
    }
    listed
        .into_iter()
        .map(|(key, listed)| {
            let done = liquidated.remove(&key).unwrap_or_default();
            AccountRecord {
                protocol: key.0.name().to_owned(),
                market: key.1.to_string(),
                account: key.2.to_string(),
                listed,
                liquidations: done.count,
                collateral_seized: done.seized,
                start: start.and_then(|book| book.state(&key)),
                end: end.state(&key),
            }
        })
        .collect()
}

/// `position` as the run file writes it.
fn state(position: &AccountPosition, seq: u64, time: Timestamp) -> AccountState {
    let base = |value: Option<U256>| value.map(|v| Quantity::new(v, position.base_decimals));
    AccountState {
        seq,
        time,
        health: position
            .health_factor
            .filter(|h| *h != U256::MAX)
            .map(|h| Quantity::new(h, HEALTH_DECIMALS)),
        base_currency: position.base_currency.to_string(),
        collateral_value: base(position.collateral_value),
        debt_value: base(position.debt_value),
        assets: position
            .assets
            .iter()
            .map(|asset| AccountAsset {
                asset: asset.asset.to_string(),
                collateral: asset.decimals.map(|d| Quantity::new(asset.collateral, d)),
                debt: asset.decimals.map(|d| Quantity::new(asset.debt, d)),
            })
            .collect(),
        missing: position.missing.clone(),
    }
}
