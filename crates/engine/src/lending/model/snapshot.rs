//! Position snapshots in the lending model (`docs/ingest.md`, "Position snapshots"): the rows of
//! one account at one instant together replace its whole position, an account may be known only
//! by its totals, and what a snapshot replaced is compared with what it set.
//!
//! Events at one instant are applied in the log's total order, so the first snapshot row of an
//! account at an instant opens its *group*: what the account held is set aside and cleared, and
//! that row and the next ones of the instant set its assets. The group closes when the account's
//! next event of another kind comes (a position change at the same instant) or the instant ends;
//! then every asset the log had rebuilt is compared with what the snapshot left (zero for an asset
//! it did not name), and each one that differs is a [`SnapshotDifference`].

// A hash map (the engine's clippy.toml bans them for their iteration order) holds the open
// groups, as a million accounts snapshotted at one instant make a million of them: it is only
// iterated to be sorted first.
#![allow(clippy::disallowed_types)]

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use cascade_events::{
    AccountTotals, Amount, EventKind, Id, Liquidation, PositionSnapshot, Protocol, Timestamp,
};

use super::{Account, LendingModel, Rules};
use crate::EngineError;
use crate::protocol::accounts::{AccountPosition, SnapshotDifference, SnapshotSide};
use crate::protocol::{Applied, Judgement};
use crate::slots::{Slot, SmallMap};
use crate::state::{StateReader, StateWriter};
use rustc_hash::FxBuildHasher;

/// An open group's key: (market, account).
type Key = (Id, Id);

/// Why a position change or liquidation of an account known only by its totals is not applied.
pub const TOTALS_NOT_UPDATABLE: &str = "account-totals-not-updatable";

/// An account known only by an `account-totals` snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotalsAccount {
    /// When the totals were recorded.
    pub time: Timestamp,
    /// What was recorded.
    pub totals: AccountTotals,
    /// The first later event of the account the totals cannot follow, and its time: after it the
    /// account's health is unknown until the next snapshot.
    pub superseded: Option<(EventKind, Timestamp)>,
}

/// What an account held before the snapshot group of the current instant replaced it.
#[derive(Clone, Debug)]
struct Before<P> {
    time: Timestamp,
    account: Account<P>,
    /// Boxed: a million groups of accounts new to the log hold none.
    totals: Option<Box<TotalsAccount>>,
}

impl<P> Before<P> {
    /// Whether the account held nothing before its group: nothing to compare.
    fn is_empty(&self) -> bool {
        self.account.positions.is_empty() && self.totals.is_none()
    }
}

/// The lending model's snapshot state besides the accounts' positions.
#[derive(Clone, Debug)]
pub(super) struct Snapshots<P> {
    /// The groups open at the current instant, by (market, account). State: a checkpoint taken
    /// in the middle of an instant holds them (and only then: they close with the instant).
    open: HashMap<Key, Before<P>, FxBuildHasher>,
    /// Accounts known only by their totals, by (market, account).
    totals: BTreeMap<(Id, Id), TotalsAccount>,
    /// The non-zero Aave v3 e-mode categories snapshots gave, by (market, account).
    e_modes: BTreeMap<(Id, Id), u8>,
    /// Differences found and not yet handed over (not state: handed over after every event).
    differences: Vec<SnapshotDifference>,
}

impl<P> Default for Snapshots<P> {
    fn default() -> Self {
        Self {
            open: HashMap::default(),
            totals: BTreeMap::new(),
            e_modes: BTreeMap::new(),
            differences: Vec::new(),
        }
    }
}

impl<P> Snapshots<P> {
    /// The account known by its totals, if it is one.
    pub(super) fn totals(&self, market: &Id, account: &Id) -> Option<&TotalsAccount> {
        if self.totals.is_empty() {
            return None;
        }
        self.totals.get(&(*market, *account))
    }

    /// Every account known by its totals.
    pub(super) fn every_totals(&self) -> impl Iterator<Item = (&(Id, Id), &TotalsAccount)> {
        self.totals.iter()
    }

    /// The e-mode category a snapshot gave the account, when not zero.
    pub(super) fn e_mode(&self, market: &Id, account: &Id) -> Option<u8> {
        if self.e_modes.is_empty() {
            return None;
        }
        self.e_modes.get(&(*market, *account)).copied()
    }
}

impl<R: Rules> LendingModel<R> {
    /// Opens the account's snapshot group at `time` unless one is open: what it held is set
    /// aside for the comparison and cleared. The account's slot.
    fn open_group(&mut self, market: Id, account: Id, time: Timestamp) -> Slot {
        if self
            .snapshots
            .open
            .get(&(market, account))
            .is_some_and(|before| before.time != time)
        {
            self.close_group(market, account);
        }
        let pool = self.pools.entry(market).or_default();
        let (slot, _) = pool.accounts.slot_or_insert_with(account, Account::default);
        if let Entry::Vacant(vacant) = self.snapshots.open.entry((market, account)) {
            let positions = std::mem::take(&mut pool.accounts.at_mut(slot).positions);
            let totals = self
                .snapshots
                .totals
                .remove(&(market, account))
                .map(Box::new);
            self.snapshots.e_modes.remove(&(market, account));
            vacant.insert(Before {
                time,
                account: Account {
                    positions,
                    threshold_cut_bps: 0,
                },
                totals,
            });
        }
        slot
    }

    /// A `position-snapshot` row: one asset of the account's position at `time`.
    pub(super) fn snapshot(
        &mut self,
        snapshot: &PositionSnapshot,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let market = R::market_of(&snapshot.market);
        let slot = self.open_group(market, snapshot.account, time);
        let (set, applied) = self.rules.snapshot(snapshot)?;
        if let Some(category) = snapshot.e_mode.filter(|category| *category != 0) {
            self.snapshots
                .e_modes
                .insert((market, snapshot.account), category);
        }
        let pool = self
            .pools
            .get_mut(&market)
            .expect("the group opened the pool");
        let positions = &mut pool.accounts.at_mut(slot).positions;
        if R::holds(&set) {
            positions.insert(snapshot.asset, set);
        } else if positions.get(&snapshot.asset).is_some() {
            // A row of zeros after one of this group that named the asset: the later row wins.
            positions.insert(snapshot.asset, set);
        }
        self.reindex(&market, slot);
        Ok(applied)
    }

    /// An `account-totals` row: the account's whole position as totals at `time`.
    pub(super) fn account_totals(
        &mut self,
        totals: &AccountTotals,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        if let Some(reason) = self.rules.refuses_totals(totals) {
            return Ok(Applied::Skipped(reason));
        }
        let market = R::market_of(&totals.market);
        let slot = self.open_group(market, totals.account, time);
        // Per-asset rows of this group before it: the later form wins.
        let pool = self
            .pools
            .get_mut(&market)
            .expect("the group opened the pool");
        pool.accounts.at_mut(slot).positions = SmallMap::default();
        self.snapshots.e_modes.remove(&(market, totals.account));
        self.snapshots.totals.insert(
            (market, totals.account),
            TotalsAccount {
                time,
                totals: *totals,
                superseded: None,
            },
        );
        self.reindex(&market, slot);
        Ok(Applied::Exact)
    }

    /// Before any other event of the account: closes its snapshot group, and for an account known
    /// by its totals marks them superseded and says why the event is not applied.
    pub(super) fn touched(
        &mut self,
        market: &Id,
        account: &Id,
        kind: EventKind,
        time: Timestamp,
    ) -> Option<Applied> {
        if !self.snapshots.open.is_empty() {
            self.close_group(*market, *account);
        }
        if self.snapshots.totals.is_empty() {
            return None;
        }
        let totals = self.snapshots.totals.get_mut(&(*market, *account))?;
        totals.superseded.get_or_insert((kind, time));
        Some(Applied::Skipped(TOTALS_NOT_UPDATABLE))
    }

    /// Judges a recorded liquidation of an account known by its totals; `None` for any other.
    pub(super) fn judge_totals(
        &self,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Option<Result<Judgement, EngineError>> {
        let totals = self
            .snapshots
            .totals(&R::market_of(&liquidation.market), &liquidation.account)?;
        Some(self.rules.judge_totals(totals, liquidation, time))
    }

    /// Closes the account's group, if open, comparing what it replaced.
    fn close_group(&mut self, market: Id, account: Id) {
        if let Some(before) = self.snapshots.open.remove(&(market, account)) {
            self.compare(market, account, before);
        }
    }

    /// Closes every open group, in (market, account) order.
    pub(super) fn close_groups(&mut self) {
        if self.snapshots.open.is_empty() {
            return;
        }
        // An export at the start of a history opens a group per account, each empty: only the
        // others are compared, in key order.
        let mut open: Vec<(Key, Before<R::Position>)> = self
            .snapshots
            .open
            .drain()
            .filter(|(_, before)| !before.is_empty())
            .collect();
        open.sort_unstable_by_key(|(key, _)| *key);
        for ((market, account), before) in open {
            self.compare(market, account, before);
        }
    }

    /// Hands over the differences found.
    pub(super) fn take_differences(&mut self, out: &mut Vec<SnapshotDifference>) {
        out.append(&mut self.snapshots.differences);
    }

    /// Compares what a group replaced with what it set: per asset the log had rebuilt (a
    /// non-zero holding), or as totals in the base currency when the snapshot gave totals.
    fn compare(&mut self, market: Id, account: Id, before: Before<R::Position>) {
        let difference =
            |asset: Id, rebuilt: SnapshotSide, snapshot: SnapshotSide| SnapshotDifference {
                time: before.time,
                protocol: self.rules.protocol(),
                market,
                account,
                asset,
                rebuilt,
                snapshot,
            };
        let mut found = Vec::new();
        if let Some(now) = self.snapshots.totals.get(&(market, account)) {
            let set = totals_side(&now.totals);
            let rebuilt = match &before.totals {
                Some(old) => Some(totals_side(&old.totals)),
                None if before.account.positions.values().any(R::holds) => self
                    .rules
                    .account_position(market, account, &before.account)
                    .0
                    .and_then(|position| {
                        Some(SnapshotSide {
                            collateral: position.collateral_value?,
                            debt: position.debt_value?,
                            collateral_enabled: true,
                        })
                    }),
                None => None,
            };
            if let Some(rebuilt) = rebuilt.filter(|rebuilt| *rebuilt != set) {
                found.push(difference(self.rules.base(), rebuilt, set));
            }
        } else {
            let current = self
                .pools
                .get(&market)
                .and_then(|pool| pool.accounts.get(&account));
            for (asset, old) in before.account.positions.iter() {
                if !R::holds(old) {
                    continue;
                }
                let rebuilt = self.rules.snapshot_side(asset, old);
                let set = current
                    .and_then(|account| account.positions.get(asset))
                    .map(|position| self.rules.snapshot_side(asset, position))
                    .unwrap_or_default();
                if rebuilt != set {
                    found.push(difference(*asset, rebuilt, set));
                }
            }
        }
        self.snapshots.differences.append(&mut found);
    }

    /// The accounts known by their totals, as [`crate::ProtocolModel::accounts`] lists them.
    pub(super) fn totals_positions(&self, out: &mut Vec<AccountPosition>) {
        for ((market, account), totals) in self.snapshots.every_totals() {
            out.extend(self.rules.totals_position(*market, *account, totals));
        }
    }

    /// Whether no snapshot group is open and no account is known by totals or e-mode: then the
    /// model writes no trailing section at all and encodes as it always did.
    pub(super) fn snapshots_are_empty(&self) -> bool {
        let s = &self.snapshots;
        s.open.is_empty() && s.totals.is_empty() && s.e_modes.is_empty()
    }

    /// Writes the snapshot state in the model's trailing section (after the recorded oracle
    /// values).
    pub(super) fn encode_snapshots(&self, out: &mut StateWriter) {
        let s = &self.snapshots;
        let mut open: Vec<(&Key, &Before<R::Position>)> = s.open.iter().collect();
        open.sort_unstable_by_key(|(key, _)| **key);
        out.count(open.len());
        for ((market, account), before) in open {
            out.id(market);
            out.id(account);
            out.time(before.time);
            out.count(before.account.positions.len());
            for (asset, position) in before.account.positions.iter() {
                out.id(asset);
                R::encode_position(position, out);
            }
            out.option(before.totals.as_deref(), encode_totals);
        }
        out.count(s.totals.len());
        for ((market, account), totals) in &s.totals {
            out.id(market);
            out.id(account);
            encode_totals(out, totals);
        }
        out.count(s.e_modes.len());
        for ((market, account), category) in &s.e_modes {
            out.id(market);
            out.id(account);
            out.u8(*category);
        }
    }

    /// Reads what [`LendingModel::encode_snapshots`] wrote.
    pub(super) fn decode_snapshots(
        &mut self,
        input: &mut StateReader<'_>,
    ) -> Result<(), EngineError> {
        let mut snapshots = Snapshots::default();
        let protocol = self.rules.protocol();
        for _ in 0..input.count()? {
            let key = (input.id()?, input.id()?);
            let time = input.time()?;
            let mut account = Account::default();
            for _ in 0..input.count()? {
                let asset = input.id()?;
                account.positions.insert(asset, R::decode_position(input)?);
            }
            let totals = if input.bool()? {
                Some(Box::new(decode_totals(input, protocol, key)?))
            } else {
                None
            };
            snapshots.open.insert(
                key,
                Before {
                    time,
                    account,
                    totals,
                },
            );
        }
        for _ in 0..input.count()? {
            let key = (input.id()?, input.id()?);
            let totals = decode_totals(input, protocol, key)?;
            snapshots.totals.insert(key, totals);
        }
        for _ in 0..input.count()? {
            let key = (input.id()?, input.id()?);
            snapshots.e_modes.insert(key, input.u8()?);
        }
        self.snapshots = snapshots;
        Ok(())
    }
}

/// Totals as a [`SnapshotSide`] in the base currency.
fn totals_side(totals: &AccountTotals) -> SnapshotSide {
    SnapshotSide {
        collateral: totals.collateral.0,
        debt: totals.debt.0,
        collateral_enabled: !totals.collateral.0.is_zero(),
    }
}

fn encode_totals(out: &mut StateWriter, totals: &TotalsAccount) {
    let t = &totals.totals;
    out.time(totals.time);
    out.u256(t.collateral.0);
    out.u256(t.debt.0);
    out.fixed(&t.liquidation_threshold);
    out.option(t.ltv.as_ref(), |out, ltv| out.fixed(ltv));
    out.option(t.health_factor.as_ref(), |out, health| out.fixed(health));
    out.option(t.e_mode.as_ref(), |out, category| out.u8(*category));
    out.option(totals.superseded.as_ref(), |out, (kind, time)| {
        let at = EventKind::ALL.iter().position(|k| k == kind).unwrap_or(0);
        out.u8(at as u8);
        out.time(*time);
    });
}

fn decode_totals(
    input: &mut StateReader<'_>,
    protocol: Protocol,
    (market, account): (Id, Id),
) -> Result<TotalsAccount, EngineError> {
    let time = input.time()?;
    let collateral = Amount(input.u256()?);
    let debt = Amount(input.u256()?);
    let liquidation_threshold = input.fixed()?;
    let ltv = input.option(|input| input.fixed())?;
    let health_factor = input.option(|input| input.fixed())?;
    let e_mode = input.option(|input| input.u8())?;
    let superseded = input.option(|input| {
        let at = usize::from(input.u8()?);
        let kind = *EventKind::ALL
            .get(at)
            .ok_or_else(|| input.error(format!("unknown event kind {at}")))?;
        Ok((kind, input.time()?))
    })?;
    Ok(TotalsAccount {
        time,
        totals: AccountTotals {
            protocol,
            market,
            account,
            collateral,
            debt,
            liquidation_threshold,
            ltv,
            health_factor,
            e_mode,
        },
        superseded,
    })
}
