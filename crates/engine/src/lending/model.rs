//! One pool model for every lending protocol whose accounts hold collateral and debt per asset
//! (Aave v2/v3, Compound v2): where the accounts sit, how the liquidatable ones are found and
//! followed, and the flows every such protocol shares (position changes, judging a recorded
//! liquidation, simulating one, the risk snapshot, the state codec). What differs — the
//! contracts' arithmetic and liquidation rules — is a [`Rules`] implementation in the protocol's
//! folder; this module decides nothing about health by itself.

mod snapshot;

use std::collections::BTreeMap;

use cascade_events::{
    AccountTotals, CollateralToggle, Event, EventKind, Id, IndexUpdate, Liquidation, ParamChange,
    Payload, PositionChange, PositionSnapshot, PriceUpdate, Protocol, Timestamp, U256,
};

use snapshot::Snapshots;
pub use snapshot::{TOTALS_NOT_UPDATABLE, TotalsAccount};

use super::{
    AssetDrift, Exposure, FoundSet, Held, IndexEntry, Monitor, PairIndex, Placed, Retest, Retested,
    Widest, compress_key, warm_accounts,
};
use crate::EngineError;
use crate::oracle::{OracleMode, PriceBook, Quote, RecordedPrices};
use crate::protocol::accounts::{AccountPosition, SnapshotDifference, SnapshotSide};
use crate::protocol::param::ParamSetting;
use crate::protocol::{
    Applied, Candidate, HealthDistribution, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel,
    Quantity, SimulatedLiquidation, WARM_BATCH,
};
use crate::run::RecordedOracle;
use crate::slots::{Slot, Slots, SmallMap};
use crate::state::{StateReader, StateWriter};

/// An account: its position per asset, in the order the assets were first used.
#[derive(Clone, Debug)]
pub struct Account<P> {
    /// The positions, by asset.
    pub positions: SmallMap<P>,
    /// Basis points the rules take off every liquidation threshold (collateral factor) this
    /// account's health reads: a scenario's cut on looped positions
    /// (`leverage.looped_threshold_cut_bps`), 0 for every account a log builds. Not state: never
    /// encoded. An account with a cut is judged as a complex one, never as a pair member (whose
    /// judgement reads the pair's thresholds only).
    pub threshold_cut_bps: u16,
}

impl<P> Default for Account<P> {
    fn default() -> Self {
        Self {
            positions: SmallMap::default(),
            threshold_cut_bps: 0,
        }
    }
}

/// What `liquidatable` reports of an account found liquidatable.
#[derive(Clone, Copy, Debug)]
pub struct Found {
    /// The protocol's health (wad; below one when liquidatable).
    pub health: U256,
    /// Debt value in the protocol's base currency.
    pub debt_value: U256,
}

/// Which position change an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Supply (mint).
    Deposit,
    /// Redeem.
    Withdraw,
    /// Borrow.
    Borrow,
    /// Repay.
    Repay,
}

/// A step a rule may end early: `Done` with what the model reports, or go on with `T`.
#[derive(Clone, Copy, Debug)]
pub enum Step<T> {
    /// Go on with this.
    Go(T),
    /// Stop here, reporting this.
    Done(Applied),
}

/// What a [`Rules`] implementation's `distribution_point` says of one account.
#[derive(Clone, Copy, Debug)]
pub enum Point {
    /// A price or decimals missing: counted as unpriced.
    Unpriced,
    /// Holds nothing the health reads: left out.
    Empty,
    /// (health, debt value).
    At(U256, U256),
}

impl Point {
    /// Counts the account in `distribution`.
    fn count_in(self, distribution: &mut HealthDistribution) {
        match self {
            Point::Unpriced => distribution.unpriced += 1,
            Point::Empty => {}
            Point::At(health, debt) => distribution.add(health, debt),
        }
    }
}

/// The rules of one lending protocol: its contracts' arithmetic over the state that is not
/// accounts (reserves or markets, prices, protocol-wide parameters), which the protocol's folder
/// implements with the contract citations. Every method must give what the contract gives.
pub trait Rules: Clone + std::fmt::Debug + 'static {
    /// An account's holdings in one asset.
    type Position: Copy + Default + std::fmt::Debug;
    /// What the pair index holds of a one-collateral, one-debt account: its balances, so a walk
    /// never reads the account.
    type Member: Widest + PartialEq + std::fmt::Debug;
    /// What an account's health reads of one asset besides balances; a change re-tests the
    /// accounts holding it.
    type AssetView: Clone + PartialEq + std::fmt::Debug;
    /// The per-pair constants of a health computation, read once per pair and query.
    type PairView;
    /// A liquidatable account's share of the risk sums.
    type Exposed: Exposure + std::fmt::Debug;
    /// An account's health as the contract computes it before a liquidation.
    type Health: Copy;
    /// Everything a liquidation of one (collateral, debt) pair of an account reads.
    type Context;
    /// What a liquidation of a pair would do.
    type Quote;
    /// A position change computed before the account is touched.
    type Change;

    /// The protocol.
    fn protocol(&self) -> Protocol;
    /// Decimals of the base currency the risk sums and debt values are in.
    fn risk_decimals(&self) -> u8;
    /// The quote currency of the prices the protocol reads.
    fn base(&self) -> Id;
    /// The market holding the account an event names in `market`.
    fn market_of(market: &Id) -> Id;

    /// Records `quote`, the latest market price of `asset` in the base currency; whether the
    /// price the rules read changed.
    fn set_price(&mut self, asset: &Id, quote: &Quote) -> Result<bool, EngineError>;
    /// Forgets the price of `asset` (its oracle reads a source the log holds no value of, under
    /// `--oracle recorded`); whether there was one.
    fn forget_price(&mut self, asset: &Id) -> bool;
    /// A reserve or market's indices moved.
    fn index_update(&mut self, update: &IndexUpdate) -> Result<Applied, EngineError>;
    /// A recorded parameter change.
    fn param_change(&mut self, change: &ParamChange) -> Result<Applied, EngineError>;
    /// A parameter set by a scenario or a parameter history.
    fn set_param(&mut self, setting: &ParamSetting) -> Result<Applied, EngineError>;

    /// What a position change does, computed before its account is created.
    fn plan(
        &mut self,
        kind: ChangeKind,
        change: &PositionChange,
    ) -> Result<Step<Self::Change>, EngineError>;
    /// Applies a planned change to the position.
    fn apply_plan(
        plan: Self::Change,
        position: &mut Self::Position,
    ) -> Result<Applied, EngineError>;
    /// Sets whether the position counts as collateral.
    fn set_collateral(position: &mut Self::Position, enabled: bool);

    /// Whether the position holds anything.
    fn holds(position: &Self::Position) -> bool;
    /// Whether the position is collateral the health counts.
    fn is_collateral(position: &Self::Position) -> bool;
    /// Whether the position holds collateral a liquidation may pick.
    fn is_seizable(position: &Self::Position) -> bool;
    /// Whether the position owes debt.
    fn is_debt(position: &Self::Position) -> bool;
    /// Whether an account's judgement reads the view (price, indices, parameters) of the
    /// position's asset. A position read only for whether its asset is known at all may say
    /// no: the monitor re-tests every account with several assets when an asset appears.
    fn reads(position: &Self::Position) -> bool;
    /// The compressed pair index key and member of an account with one collateral and one
    /// debt; `None` when a balance is too large for a member (the account is indexed as complex).
    fn pair_member(
        collateral: &Self::Position,
        debt: &Self::Position,
    ) -> Option<(u128, Self::Member)>;
    /// A few bits of a position, for [`ProtocolModel::warm`]'s reads.
    fn warm_bits(position: &Self::Position) -> u64;

    /// The view of every asset, for [`Monitor::begin`].
    fn asset_views(&self) -> BTreeMap<Id, Self::AssetView>;
    /// The constants of the (collateral, debt) pair; `None` when nobody in it can be judged.
    fn pair_view(&self, collateral: &Id, debt: &Id) -> Option<Self::PairView>;
    /// The pair index level for `view`: every member liquidatable now has a key at or above it.
    fn level(view: &Self::PairView) -> U256;
    /// Which way an asset's view going from `old` to `new` can move the health of its holders,
    /// as collateral and as debt ([`Drift::Any`] whenever unsure). The monitor trusts it to
    /// leave members unjudged, so every input the health reads must be compared.
    fn drift(old: &Self::AssetView, new: &Self::AssetView) -> AssetDrift;
    /// Whether no pair member with balances within `widest`'s (see [`Widest`]) has a judgement
    /// that fails (overflows) under `view`: the members a one-way move cannot change are then
    /// skipped without a difference.
    fn bounded(view: &Self::PairView, widest: &Self::Member) -> bool;
    /// A pair member if liquidatable.
    fn found_member(
        view: &Self::PairView,
        member: &Self::Member,
    ) -> Result<Option<Found>, EngineError>;
    /// A pair member's exposure if liquidatable.
    fn exposed_member(
        view: &Self::PairView,
        member: &Self::Member,
    ) -> Result<Option<Self::Exposed>, EngineError>;
    /// Any account if liquidatable.
    fn found_account(
        &self,
        account: &Account<Self::Position>,
    ) -> Result<Option<Found>, EngineError>;
    /// Any account's exposure if liquidatable.
    fn exposed_account(
        &self,
        account: &Account<Self::Position>,
    ) -> Result<Option<Self::Exposed>, EngineError>;
    /// An account's place in the health distribution.
    fn distribution_point(&self, account: &Account<Self::Position>) -> Point;

    /// The account's health; `None` when a price or decimals are missing.
    fn health(
        &self,
        account: &Account<Self::Position>,
    ) -> Result<Option<Self::Health>, EngineError>;
    /// The account's collateral (or debt) position of this asset by value, for the largest-debt
    /// pick: `None` stops the pick (something cannot be valued), `Some(None)` skips the asset.
    fn side_value(
        &self,
        asset: &Id,
        position: &Self::Position,
        collateral_side: bool,
    ) -> Option<Option<U256>>;
    /// The liquidation context of a pair; `None` when a price or decimals are missing.
    fn context(
        &self,
        account: &Account<Self::Position>,
        health: Self::Health,
        collateral: &Id,
        debt: &Id,
    ) -> Result<Option<Self::Context>, EngineError>;
    /// The liquidation a simulated liquidator repaying at most `max_repay` makes; `None` when the
    /// contract would refuse.
    fn simulated_quote(
        &self,
        context: &Self::Context,
        max_repay: Option<U256>,
    ) -> Result<Option<Self::Quote>, EngineError>;
    /// The collateral value the liquidator receives beyond the debt value it repays; `None`
    /// when it cannot be valued.
    fn liquidator_gain(
        &self,
        context: &Self::Context,
        quote: &Self::Quote,
        collateral: &Id,
        debt: &Id,
    ) -> Option<U256>;
    /// (collateral, debt) the quote takes from the account, in the units [`Rules::take`] reads.
    fn taken(quote: &Self::Quote) -> (U256, U256);
    /// The simulated liquidation's rule and (collateral seized, collateral sold, debt repaid,
    /// bad debt); `left` is the debt the take left unbacked.
    fn simulated(
        &self,
        context: &Self::Context,
        quote: &Self::Quote,
        left: U256,
        collateral: &Id,
        debt: &Id,
    ) -> (&'static str, [Quantity; 4]);

    /// Removes `collateral` of `collateral_asset` and `debt` of `debt_asset` from the account
    /// (`None`: it does not exist) as a liquidation does; whether an amount had to be clamped,
    /// and the debt left unbacked.
    fn take(
        &mut self,
        account: Option<&mut Account<Self::Position>>,
        collateral_asset: &Id,
        collateral: U256,
        debt_asset: &Id,
        debt: U256,
    ) -> Result<(bool, U256), EngineError>;
    /// What a recorded liquidation takes from the account, as [`Rules::take`] reads it.
    fn recorded_take(&self, liquidation: &Liquidation) -> Result<Step<(U256, U256)>, EngineError>;
    /// Judges a recorded liquidation of `account` (`None`: no rebuilt position).
    fn judge(
        &self,
        account: Option<&Account<Self::Position>>,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError>;

    /// Writes the rules' state (everything but accounts).
    fn encode(&self, out: &mut StateWriter);
    /// Reads what [`Rules::encode`] wrote.
    fn decode(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError>;
    /// Whether the rules hold nothing beyond [`Rules::encode`]'s state.
    fn extra_is_empty(&self) -> bool {
        true
    }
    /// Writes state added after the encoding's first form (written after the accounts, only when
    /// not empty, so older states keep their bytes and hashes).
    fn encode_extra(&self, _out: &mut StateWriter) {}
    /// Reads what [`Rules::encode_extra`] wrote.
    fn decode_extra(&mut self, _input: &mut StateReader<'_>) -> Result<(), EngineError> {
        Ok(())
    }
    /// Writes one position.
    fn encode_position(position: &Self::Position, out: &mut StateWriter);
    /// Reads one position.
    fn decode_position(input: &mut StateReader<'_>) -> Result<Self::Position, EngineError>;

    /// The account's position as [`ProtocolModel::accounts`] reports it, read back and valued
    /// as the contracts do (`None` when it holds and owes nothing), and its place in the health
    /// distribution: both from one health computation, as an hourly sample asks both of every
    /// account.
    fn account_position(
        &self,
        market: Id,
        id: Id,
        account: &Account<Self::Position>,
    ) -> (Option<AccountPosition>, Point);
    /// The position a snapshot sets in its asset, and how it is reported (`Exact`, or what of
    /// it is not modelled).
    fn snapshot(
        &mut self,
        snapshot: &PositionSnapshot,
    ) -> Result<(Self::Position, Applied), EngineError>;
    /// A position in the units a positions export gives (what a [`SnapshotDifference`] shows).
    fn snapshot_side(&self, asset: &Id, position: &Self::Position) -> SnapshotSide;

    /// Why an `account-totals` snapshot cannot be taken (the protocol has no totals form, a
    /// threshold it cannot read); `None` when it can. Default: no totals form.
    fn refuses_totals(&self, _totals: &AccountTotals) -> Option<&'static str> {
        Some("account-totals-not-modelled")
    }
    /// The position of an account known by its totals, as [`ProtocolModel::accounts`] reports
    /// it. Default: none (no totals form).
    fn totals_position(
        &self,
        _market: Id,
        _id: Id,
        _totals: &TotalsAccount,
    ) -> Option<AccountPosition> {
        None
    }
    /// Judges a recorded liquidation of an account known by its totals. Default: as an account
    /// without a rebuilt position.
    fn judge_totals(
        &self,
        _totals: &TotalsAccount,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        self.judge(None, liquidation, time)
    }
}

/// A pair's view and compressed level.
type ViewAndLevel<R> = (<R as Rules>::PairView, u128);

/// One market's accounts (an Aave pool, a Compound Comptroller) and their pair index.
#[derive(Clone, Debug)]
struct Pool<R: Rules> {
    /// Looked up by hash, never iterated in slot order where the order can reach an output
    /// (see [`crate::slots`]).
    accounts: Slots<Account<R::Position>>,
    index: PairIndex<R::Member>,
}

impl<R: Rules> Default for Pool<R> {
    fn default() -> Self {
        Self {
            accounts: Slots::default(),
            index: PairIndex::default(),
        }
    }
}

/// A lending protocol over every market of it in the log: the accounts, their pair index, the
/// cached liquidatable set and the [`Monitor`], with the protocol's [`Rules`].
///
/// Finding liquidatable accounts never scans every account. An account with one collateral and
/// one debt (the common shape) is indexed per (collateral, debt) pair under a key no price or
/// index moves; for current prices and indices [`Rules::level`] is the key above which the pair's
/// accounts may be liquidatable, and every account at or above it is confirmed with the exact
/// rule. Accounts with several assets on a side are few; they are confirmed exactly on every
/// query. The replay's checks do not list that set: the monitor keeps it with each account's
/// share of the risk sums, re-testing at a check only the accounts acted on since the last one
/// and, for the assets whose view moved, the pair members from the lower of the old and new level
/// up and the accounts with several assets, so a check after one liquidation costs one account.
#[derive(Clone, Debug)]
pub struct LendingModel<R: Rules> {
    rules: R,
    pools: BTreeMap<Id, Pool<R>>,
    /// The last liquidatable set (not state: never encoded; rebuilt after any change).
    found: FoundSet<Found>,
    /// Scratch space of [`LendingModel::find`] (not state).
    walked: Vec<Held<R::Member>>,
    /// The liquidatable set kept incrementally for `unsafe_changes` and `risk` (not state:
    /// derived from it, rebuilt after a decode).
    monitor: Monitor<R::Exposed, R::AssetView>,
    /// The oracle's own values where the log recorded them, and the mode they are read under.
    oracle: RecordedPrices,
    /// Snapshot groups open at this instant, accounts known by their totals, e-mode categories.
    snapshots: Snapshots<R::Position>,
}

impl<R: Rules> LendingModel<R> {
    /// A model with no accounts under `rules`.
    pub fn from_rules(rules: R) -> Self {
        Self {
            rules,
            pools: BTreeMap::new(),
            found: FoundSet::default(),
            walked: Vec::new(),
            monitor: Monitor::default(),
            oracle: RecordedPrices::default(),
            snapshots: Snapshots::default(),
        }
    }

    /// The same model reading recorded oracle values under `mode` (default `auto`).
    pub fn with_oracle(mut self, mode: OracleMode) -> Self {
        self.oracle = RecordedPrices::new(mode);
        self
    }

    /// What applying a recorded oracle event did: under `estimated` nothing is read from it.
    fn recorded_applied(&mut self, asset: &Id, prices: &PriceBook) -> Result<Applied, EngineError> {
        if self.oracle.mode() == OracleMode::Estimated {
            return Ok(Applied::Ignored);
        }
        self.reprice(asset, prices)?;
        Ok(Applied::Exact)
    }

    /// After the oracle's recorded value of `asset` appeared, changed or went away: the rules
    /// read the recorded value, else (under `auto`) the market price again, else nothing.
    fn reprice(&mut self, asset: &Id, prices: &PriceBook) -> Result<bool, EngineError> {
        if let Some(recorded) = self.oracle.reading(asset) {
            let quote = recorded.quote;
            return self.rules.set_price(asset, &quote);
        }
        match self.oracle.mode() {
            OracleMode::Estimated => Ok(false),
            OracleMode::Recorded => Ok(self.rules.forget_price(asset)),
            OracleMode::Auto => match prices.market(asset, &self.rules.base()) {
                Some(quote) => self.rules.set_price(asset, quote),
                None => Ok(self.rules.forget_price(asset)),
            },
        }
    }

    /// The rules and the state they hold.
    pub fn rules(&self) -> &R {
        &self.rules
    }

    /// The account `id` of `market`, if it has a rebuilt position.
    pub fn account(&self, market: &Id, id: &Id) -> Option<&Account<R::Position>> {
        self.pools.get(market)?.accounts.get(id)
    }

    /// Every liquidatable (market, account) by computing every account's health: the full-scan
    /// baseline the index is measured and tested against. Sorted.
    pub fn scan_all_liquidatable(&self) -> Result<Vec<(Id, Id)>, EngineError> {
        let mut out = Vec::new();
        for (market, pool) in &self.pools {
            for slot in pool.accounts.sorted() {
                if self.rules.found_account(pool.accounts.at(slot))?.is_some() {
                    out.push((*market, *pool.accounts.id(slot)));
                }
            }
        }
        Ok(out)
    }

    /// The risk snapshot summed over [`LendingModel::find`]'s set, each exposure computed over
    /// the account's positions: the baseline the monitor's sums are tested against.
    #[cfg(test)]
    pub(crate) fn scanned_risk(&mut self) -> Vec<(Id, u64, U256, U256, U256)> {
        self.invalidate();
        self.refresh_found().unwrap();
        let mut out = Vec::new();
        for (market, pool) in &self.pools {
            let mut totals = (0u64, U256::ZERO, U256::ZERO, U256::ZERO);
            for (_, id, _) in self.found.ordered().filter(|(m, _, _)| *m == market) {
                let exposed = pool
                    .accounts
                    .get(id)
                    .and_then(|account| self.rules.exposed_account(account).unwrap());
                let (collateral, debt) =
                    exposed.map_or((U256::ZERO, U256::ZERO), |e| (e.collateral(), e.debt()));
                totals.0 += 1;
                totals.1 = totals.1.saturating_add(collateral);
                totals.2 = totals.2.saturating_add(debt);
                totals.3 = totals.3.saturating_add(debt.saturating_sub(collateral));
            }
            out.push((*market, totals.0, totals.1, totals.2, totals.3));
        }
        out
    }

    /// Forgets the cached liquidatable set: called by every method that may change the state.
    fn invalidate(&mut self) {
        self.found.invalidate();
    }

    /// Recomputes where the account in `slot` of `market` sits in the index.
    fn reindex(&mut self, market: &Id, slot: Slot) {
        let Some(pool) = self.pools.get_mut(market) else {
            return;
        };
        let account = pool.accounts.at(slot);
        self.monitor.touch(*market, slot);
        // One collateral and one debt make a pair member; anything else is complex (checked on
        // every query) or, without debt, not indexed.
        let mut collateral: Option<(&Id, &R::Position)> = None;
        let mut debt: Option<(&Id, &R::Position)> = None;
        let (mut collaterals, mut debts) = (0usize, 0usize);
        for (asset, position) in account.positions.iter() {
            if R::is_collateral(position) {
                collaterals += 1;
                collateral = Some((asset, position));
            }
            if R::is_debt(position) {
                debts += 1;
                debt = Some((asset, position));
            }
        }
        let complex = || IndexEntry::Complex {
            assets: account
                .positions
                .iter()
                .filter(|(_, position)| R::reads(position))
                .map(|(asset, _)| *asset)
                .collect(),
        };
        let entry = match (collateral, debt) {
            _ if debts == 0 => None,
            _ if account.threshold_cut_bps != 0 => Some(complex()),
            (Some((c, cp)), Some((d, dp))) if collaterals == 1 && debts == 1 => {
                match R::pair_member(cp, dp) {
                    Some((key, member)) => Some(IndexEntry::Pair {
                        collateral: *c,
                        debt: *d,
                        key,
                        member,
                    }),
                    None => Some(complex()),
                }
            }
            _ => Some(complex()),
        };
        if let Some(pair) = pool.index.set(slot, entry) {
            self.monitor.forget_pair(market, &pair);
        }
    }

    /// Puts the accounts of every market liquidatable now into `found`, market by market.
    /// `walked` is scratch space: members are copied out of the index first and judged after,
    /// so the copy loop's cache misses overlap instead of waiting behind each health.
    fn find(
        &self,
        found: &mut FoundSet<Found>,
        walked: &mut Vec<Held<R::Member>>,
    ) -> Result<(), EngineError> {
        found.clear();
        for (market, pool) in &self.pools {
            for members in pool.index.pairs() {
                let (collateral, debt) = members.ids();
                // Everything but the balances is the same for the whole pair: read it once
                // (`None`: nobody in the pair can be judged).
                let Some(view) = self.rules.pair_view(collateral, debt) else {
                    continue;
                };
                walked.clear();
                walked.extend(members.at_or_above(compress_key(R::level(&view))));
                for held in walked.iter() {
                    if let Some(account) = R::found_member(&view, &held.member)? {
                        found.push(*pool.accounts.id(held.slot), account.health, account);
                    }
                }
            }
            for slot in pool.index.complex() {
                if let Some(account) = self.rules.found_account(pool.accounts.at(*slot))? {
                    found.push(*pool.accounts.id(*slot), account.health, account);
                }
            }
            found.end_market(*market);
        }
        found.finish();
        Ok(())
    }

    /// Makes `self.found` the liquidatable set of the current state, computing it at most once
    /// per state: `liquidatable` and `risk` after the same event share it.
    fn refresh_found(&mut self) -> Result<(), EngineError> {
        if !self.found.is_valid() {
            let mut found = std::mem::take(&mut self.found);
            let mut walked = std::mem::take(&mut self.walked);
            let result = self.find(&mut found, &mut walked);
            self.found = found;
            self.walked = walked;
            result?;
        }
        Ok(())
    }

    /// Brings the monitor to the current state (see [`Monitor`]).
    fn refresh_monitor(&mut self) -> Result<(), EngineError> {
        let Some(retest) = self.monitor.begin(self.rules.asset_views(), R::drift) else {
            return Ok(());
        };
        let mut out = Retested::default();
        self.retest(&retest, &mut out)?;
        self.monitor.finish(&retest, out);
        Ok(())
    }

    /// Re-tests what `retest` names with the rule [`LendingModel::find`] applies: pairs whose
    /// assets moved from the lower of their stored and new level, accounts with several assets
    /// when any asset moved, and touched accounts (a pair member only when its key reaches its
    /// pair's level: below it the walk would not have confirmed it either).
    fn retest(&self, retest: &Retest, out: &mut Retested<R::Exposed>) -> Result<(), EngineError> {
        let view_and_level = |(collateral, debt): &(Id, Id)| {
            let view = self.rules.pair_view(collateral, debt)?;
            let level = compress_key(R::level(&view));
            Some((view, level))
        };
        for (market, pool) in &self.pools {
            self.monitor.walk_pairs(
                retest,
                market,
                &pool.index,
                view_and_level,
                R::bounded,
                R::exposed_member,
                out,
            )?;
            for slot in pool.index.complex_moved(retest) {
                let found = self.rules.exposed_account(pool.accounts.at(*slot))?;
                out.results.push((*market, *slot, found));
            }
        }
        // The pairs' views and levels, computed once per refresh however many of their members
        // were touched (the index is per market, the view is the assets': shared by markets).
        let mut views: BTreeMap<(Id, Id), Option<ViewAndLevel<R>>> = BTreeMap::new();
        for (done, (market, slot)) in retest.touched.iter().enumerate() {
            if done % WARM_BATCH == 0 {
                std::hint::black_box(self.warm_touched(&retest.touched[done..]));
            }
            let Some(pool) = self.pools.get(market) else {
                continue;
            };
            let found = match pool.index.placed(*slot) {
                None => None,
                Some(Placed::Complex) => self.rules.exposed_account(pool.accounts.at(*slot))?,
                Some(Placed::Pair { pair, held, .. }) => {
                    match views.entry(*pair).or_insert_with(|| view_and_level(pair)) {
                        Some((view, level)) if held.key >= *level => {
                            R::exposed_member(view, &held.member)?
                        }
                        _ => None,
                    }
                }
            };
            out.results.push((*market, *slot, found));
        }
        Ok(())
    }

    /// Reads the index places, then the index members, of up to [`WARM_BATCH`] touched accounts,
    /// each pass of independent reads (a hint, as `warm`: results never depend on it). The walks
    /// of the moved pairs just before may have evicted them: reading a touched member's key was
    /// the refresh's largest cache miss.
    fn warm_touched(&self, touched: &[(Id, Slot)]) -> u64 {
        let mut places = [None; WARM_BATCH];
        for ((market, slot), place) in touched.iter().zip(places.iter_mut()) {
            *place = self
                .pools
                .get(market)
                .map(|pool| (&pool.index, pool.index.warm_place(*slot)));
        }
        places.iter().flatten().fold(0, |sum, (index, place)| {
            sum ^ u64::from(index.warm_member(*place).unwrap_or(0))
        })
    }

    /// A position change: planned by the rules, applied to the account's position (created if
    /// needed), then re-indexed.
    fn change(
        &mut self,
        kind: ChangeKind,
        change: &PositionChange,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let event_kind = match kind {
            ChangeKind::Deposit => EventKind::Deposit,
            ChangeKind::Withdraw => EventKind::Withdraw,
            ChangeKind::Borrow => EventKind::Borrow,
            ChangeKind::Repay => EventKind::Repay,
        };
        if let Some(applied) = self.touched(
            &R::market_of(&change.market),
            &change.account,
            event_kind,
            time,
        ) {
            return Ok(applied);
        }
        let plan = match self.rules.plan(kind, change)? {
            Step::Go(plan) => plan,
            Step::Done(applied) => return Ok(applied),
        };
        let market = R::market_of(&change.market);
        let accounts = &mut self.pools.entry(market).or_default().accounts;
        let (slot, _) = accounts.slot_or_insert_with(change.account, Account::default);
        let position = accounts
            .at_mut(slot)
            .positions
            .entry_or_default(change.asset);
        let applied = R::apply_plan(plan, position)?;
        self.reindex(&market, slot);
        Ok(applied)
    }

    fn toggle(&mut self, toggle: &CollateralToggle, time: Timestamp) -> Applied {
        let market = R::market_of(&toggle.market);
        if let Some(applied) =
            self.touched(&market, &toggle.account, EventKind::CollateralToggle, time)
        {
            return applied;
        }
        let found = self.pools.get_mut(&market).and_then(|pool| {
            let slot = pool.accounts.find(&toggle.account)?;
            Some((&mut pool.accounts, slot))
        });
        let Some((accounts, slot)) = found else {
            return Applied::Skipped("collateral toggle of an account with no rebuilt position");
        };
        R::set_collateral(
            accounts
                .at_mut(slot)
                .positions
                .entry_or_default(toggle.asset),
            toggle.enabled,
        );
        self.reindex(&market, slot);
        Applied::Exact
    }

    /// The slot of `account_id` in `market`, if it has a rebuilt position.
    fn slot_of(&self, market: &Id, account_id: &Id) -> Option<Slot> {
        self.pools.get(market)?.accounts.find(account_id)
    }

    /// [`Rules::take`] on the account in `slot` of `market`, then re-indexes it.
    fn take(
        &mut self,
        market: &Id,
        slot: Slot,
        collateral_asset: &Id,
        collateral: U256,
        debt_asset: &Id,
        debt: U256,
    ) -> Result<(bool, U256), EngineError> {
        let account = self
            .pools
            .get_mut(market)
            .map(|pool| pool.accounts.at_mut(slot));
        let taken = self
            .rules
            .take(account, collateral_asset, collateral, debt_asset, debt)?;
        self.reindex(market, slot);
        Ok(taken)
    }

    /// `pair = best-bonus`: of the account's (collateral, debt) pairs allowed by `choice`, the one
    /// whose liquidation gives the liquidator the most collateral value beyond the debt it
    /// repays ([`Rules::liquidator_gain`]). Ties: the first in id order. `None` when no pair can
    /// be liquidated.
    fn best_bonus_pair(
        &self,
        account: &Account<R::Position>,
        health: R::Health,
        choice: &LiquidatorChoice,
    ) -> Result<Option<(Id, Id)>, EngineError> {
        let mut best: Option<(U256, Id, Id)> = None;
        for (collateral, held) in account.positions.iter() {
            if !R::is_seizable(held) || choice.collateral_asset.is_some_and(|c| c != *collateral) {
                continue;
            }
            for (debt, owed) in account.positions.iter() {
                if !R::is_debt(owed) || choice.debt_asset.is_some_and(|d| d != *debt) {
                    continue;
                }
                let Some(context) = self.rules.context(account, health, collateral, debt)? else {
                    continue;
                };
                let Some(quote) = self.rules.simulated_quote(&context, choice.max_repay)? else {
                    continue;
                };
                let Some(gain) = self
                    .rules
                    .liquidator_gain(&context, &quote, collateral, debt)
                else {
                    continue;
                };
                if best.is_none_or(|(most, _, _)| gain > most) {
                    best = Some((gain, *collateral, *debt));
                }
            }
        }
        Ok(best.map(|(_, collateral, debt)| (collateral, debt)))
    }

    /// The account's largest collateral (or debt) position by value (see [`Rules::side_value`]).
    fn largest(&self, account: &Account<R::Position>, collateral_side: bool) -> Option<Id> {
        let mut best: Option<(U256, Id)> = None;
        for (asset, position) in account.positions.iter() {
            let Some(value) = self.rules.side_value(asset, position, collateral_side)? else {
                continue;
            };
            if best.is_none_or(|(most, _)| value > most) {
                best = Some((value, *asset));
            }
        }
        best.map(|(_, asset)| asset)
    }

    /// The rules' state and the accounts ([`ProtocolModel::encode_state`] without the oracle).
    fn encode_pools(&self, out: &mut StateWriter) {
        self.rules.encode(out);
        out.count(self.pools.len());
        for (market, pool) in &self.pools {
            out.id(market);
            out.count(pool.accounts.len());
            for slot in pool.accounts.sorted() {
                let (account, state) = (pool.accounts.id(slot), pool.accounts.at(slot));
                out.id(account);
                out.count(state.positions.len());
                for (asset, position) in state.positions.iter() {
                    out.id(asset);
                    R::encode_position(position, out);
                }
            }
        }
    }

    /// The rules' state and the accounts ([`ProtocolModel::decode_state`] without the oracle).
    fn decode_pools(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.invalidate();
        self.rules.decode(input)?;
        let mut pools = BTreeMap::new();
        for _ in 0..input.count()? {
            let market = input.id()?;
            let mut pool = Pool::<R>::default();
            for _ in 0..input.count()? {
                let account = input.id()?;
                let mut state = Account::default();
                for _ in 0..input.count()? {
                    let asset = input.id()?;
                    state.positions.insert(asset, R::decode_position(input)?);
                }
                let (slot, _) = pool.accounts.slot_or_insert_with(account, Account::default);
                *pool.accounts.at_mut(slot) = state;
            }
            pools.insert(market, pool);
        }
        self.pools = pools;
        Ok(())
    }

    /// Rebuilds the pair index and the monitor from the decoded accounts (derived, not state).
    fn reindex_all(&mut self) {
        let accounts: Vec<(Id, Slot)> = self
            .pools
            .iter()
            .flat_map(|(market, pool)| {
                let slots = pool.accounts.sorted().into_iter();
                slots.map(|slot| (*market, slot))
            })
            .collect();
        for (market, slot) in accounts {
            self.reindex(&market, slot);
        }
        self.monitor.resync();
    }

    /// An empty health distribution of `market`.
    fn distribution(&self, market: Id) -> HealthDistribution {
        HealthDistribution::new(self.rules.protocol(), market, self.rules.risk_decimals())
    }

    /// Every account's position into `out` ([`ProtocolModel::accounts`]), and with
    /// `distributions` each market's health distribution too, counted from the same health.
    fn list_accounts(
        &self,
        out: &mut Vec<AccountPosition>,
        mut distributions: Option<&mut Vec<HealthDistribution>>,
    ) {
        // One allocation for every sample's million positions instead of a doubling (a copy of
        // the whole vector) every time it fills.
        out.reserve(self.pools.values().map(|pool| pool.accounts.len()).sum());
        for (market, pool) in &self.pools {
            let mut distribution = self.distribution(*market);
            // In account order: the caller's sort then finds its input sorted (a million
            // positions of several hundred bytes each are not moved about).
            for slot in pool.accounts.sorted() {
                let (id, account) = (pool.accounts.id(slot), pool.accounts.at(slot));
                let (position, point) = self.rules.account_position(*market, *id, account);
                point.count_in(&mut distribution);
                let Some(mut position) = position else {
                    continue;
                };
                if let Some(category) = self.snapshots.e_mode(market, id) {
                    e_mode_not_modelled(&mut position, category);
                }
                out.push(position);
            }
            if let Some(distributions) = distributions.as_deref_mut() {
                distributions.push(distribution);
            }
        }
        self.totals_positions(out);
    }
}

impl<R: Rules> ProtocolModel for LendingModel<R> {
    fn protocol(&self) -> Protocol {
        self.rules.protocol()
    }

    fn cut_threshold(&mut self, market: &Id, account: &Id, cut_bps: u16) -> bool {
        let Some(slot) = self.slot_of(market, account) else {
            return false;
        };
        let Some(pool) = self.pools.get_mut(market) else {
            return false;
        };
        pool.accounts.at_mut(slot).threshold_cut_bps = cut_bps;
        self.invalidate();
        self.reindex(market, slot);
        true
    }

    /// Interest accrues only through recorded index updates: nothing moves with time alone.
    fn advance(&mut self, _time: Timestamp, _prices: &PriceBook) -> Result<bool, EngineError> {
        Ok(false)
    }

    fn on_price(
        &mut self,
        update: &PriceUpdate,
        _time: Timestamp,
        prices: &PriceBook,
    ) -> Result<bool, EngineError> {
        if update.quote != self.rules.base() || self.oracle.overrides(&update.asset) {
            return Ok(false);
        }
        self.invalidate();
        let Some(quote) = prices.market(&update.asset, &update.quote) else {
            return Ok(false);
        };
        self.rules.set_price(&update.asset, quote)
    }

    fn on_feed_answer(
        &mut self,
        update: &PriceUpdate,
        time: Timestamp,
    ) -> Result<bool, EngineError> {
        let assets = self.oracle.answer(update, time);
        if assets.is_empty() || self.oracle.mode() == OracleMode::Estimated {
            return Ok(false);
        }
        self.invalidate();
        let mut changed = false;
        for asset in assets {
            if let Some(recorded) = self.oracle.reading(&asset) {
                let quote = recorded.quote;
                changed |= self.rules.set_price(&asset, &quote)?;
            }
        }
        Ok(changed)
    }

    fn warm(&self, events: &[Event]) -> u64 {
        let accounts = events.iter().map(|event| match &event.payload {
            Payload::Deposit(c) | Payload::Withdraw(c) | Payload::Borrow(c) | Payload::Repay(c) => {
                Some((&c.market, &c.account))
            }
            Payload::CollateralToggle(t) => Some((&t.market, &t.account)),
            // Judging and applying a recorded liquidation read the account's record and index
            // place as a position change does (a crash's liquidations are a third of its events).
            payload => payload
                .liquidated()
                .filter(|(protocol, _, _)| *protocol == self.rules.protocol())
                .map(|(_, market, account)| (market, account)),
        });
        warm_accounts(
            accounts,
            |market| {
                self.pools
                    .get(&R::market_of(market))
                    .map(|pool| (&pool.accounts, &pool.index))
            },
            |account| {
                // Each position whole, its asset too: a lookup compares the assets, and a
                // position's balances may straddle two cache lines.
                account.positions.iter().fold(0, |sum, (asset, position)| {
                    let (_, position) = std::hint::black_box((*asset, *position));
                    sum ^ R::warm_bits(&position)
                })
            },
        )
    }

    fn apply(&mut self, event: &Event, prices: &PriceBook) -> Result<Applied, EngineError> {
        self.invalidate();
        let time = event.time;
        match &event.payload {
            Payload::Deposit(change) => self.change(ChangeKind::Deposit, change, time),
            Payload::Withdraw(change) => self.change(ChangeKind::Withdraw, change, time),
            Payload::Borrow(change) => self.change(ChangeKind::Borrow, change, time),
            Payload::Repay(change) => self.change(ChangeKind::Repay, change, time),
            Payload::CollateralToggle(toggle) => Ok(self.toggle(toggle, time)),
            Payload::IndexUpdate(update) => self.rules.index_update(update),
            Payload::PositionSnapshot(snapshot) => self.snapshot(snapshot, time),
            Payload::AccountTotals(totals) => self.account_totals(totals, time),
            Payload::ParamChange(change) => self.rules.param_change(change),
            Payload::Price(_)
            | Payload::VaultOpen(_)
            | Payload::Liquidation(_)
            | Payload::PartialLiquidation(_)
            | Payload::AuctionKick(_)
            | Payload::AuctionTake(_) => Ok(Applied::Ignored),
            Payload::OracleValue(value) => {
                let quote = Quote {
                    price: value.value,
                    time: event.time,
                    feed: value.oracle,
                };
                self.oracle.value(value.market, quote, value.source);
                self.recorded_applied(&value.market, prices)
            }
            Payload::OracleSourceChange(change) => {
                let latest = prices.latest_of(&change.source);
                self.oracle
                    .source_change(change.asset, change.source, latest);
                self.recorded_applied(&change.asset, prices)
            }
        }
    }

    fn set_param(
        &mut self,
        setting: &ParamSetting,
        _time: Timestamp,
    ) -> Result<Applied, EngineError> {
        self.invalidate();
        self.rules.set_param(setting)
    }

    fn judge(&self, liquidation: &Liquidation, time: Timestamp) -> Result<Judgement, EngineError> {
        if let Some(judged) = self.judge_totals(liquidation, time) {
            return judged;
        }
        let account = self
            .pools
            .get(&R::market_of(&liquidation.market))
            .and_then(|pool| pool.accounts.get(&liquidation.account))
            .filter(|account| account.positions.values().any(R::holds));
        let mut judgement = self.rules.judge(account, liquidation, time)?;
        // The evidence is the collateral's price: say when the oracle's own value gave it.
        if let Some(evidence) = judgement.oracle.as_mut()
            && let Some(recorded) = self.oracle.reading(&liquidation.collateral_asset)
        {
            evidence.recorded = Some(RecordedOracle {
                event: recorded.event.name().into(),
                oracle: recorded.quote.feed,
                time: recorded.quote.time,
            });
        }
        Ok(judgement)
    }

    fn apply_liquidation(
        &mut self,
        liquidation: &Liquidation,
        _judgement: &Judgement,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        self.invalidate();
        let market = R::market_of(&liquidation.market);
        if let Some(applied) =
            self.touched(&market, &liquidation.account, EventKind::Liquidation, time)
        {
            return Ok(applied);
        }
        let Some(slot) = self.slot_of(&market, &liquidation.account) else {
            return Ok(Applied::Skipped(
                "liquidation of an account with no rebuilt position",
            ));
        };
        let (collateral, debt) = match self.rules.recorded_take(liquidation)? {
            Step::Go(amounts) => amounts,
            Step::Done(applied) => return Ok(applied),
        };
        let (clamped, _) = self.take(
            &market,
            slot,
            &liquidation.collateral_asset,
            collateral,
            &liquidation.debt_asset,
            debt,
        )?;
        Ok(if clamped {
            Applied::Clamped("liquidation exceeds the rebuilt balance")
        } else {
            Applied::Exact
        })
    }

    fn liquidatable(
        &mut self,
        _time: Timestamp,
        out: &mut Vec<Candidate>,
    ) -> Result<(), EngineError> {
        self.refresh_found()?;
        let protocol = self.rules.protocol();
        out.reserve(self.found.len());
        out.extend(
            self.found
                .ordered()
                .map(|(market, account, found)| Candidate {
                    protocol,
                    market: *market,
                    account: *account,
                    health: found.health,
                    debt_value: found.debt_value,
                }),
        );
        Ok(())
    }

    fn simulate_liquidation(
        &mut self,
        candidate: &Candidate,
        choice: &LiquidatorChoice,
        _time: Timestamp,
    ) -> Result<Option<SimulatedLiquidation>, EngineError> {
        self.invalidate();
        let Some(slot) = self.slot_of(&candidate.market, &candidate.account) else {
            return Ok(None);
        };
        let account = self.pools[&candidate.market].accounts.at(slot);
        let Some(health) = self.rules.health(account)? else {
            return Ok(None);
        };
        let best = match choice.pair {
            crate::protocol::PairChoice::BestBonus => {
                self.best_bonus_pair(account, health, choice)?
            }
            crate::protocol::PairChoice::LargestDebt => None,
        };
        let (Some(collateral), Some(debt)) = best.map_or_else(
            || {
                (
                    choice
                        .collateral_asset
                        .or_else(|| self.largest(account, true)),
                    choice.debt_asset.or_else(|| self.largest(account, false)),
                )
            },
            |(collateral, debt)| (Some(collateral), Some(debt)),
        ) else {
            return Ok(None);
        };
        let Some(context) = self.rules.context(account, health, &collateral, &debt)? else {
            return Ok(None);
        };
        let Some(quote) = self.rules.simulated_quote(&context, choice.max_repay)? else {
            return Ok(None);
        };
        let (collateral_taken, debt_taken) = R::taken(&quote);
        let (_, left) = self.take(
            &candidate.market,
            slot,
            &collateral,
            collateral_taken,
            &debt,
            debt_taken,
        )?;
        let (rule, [seized, sold, repaid, bad_debt]) =
            self.rules
                .simulated(&context, &quote, left, &collateral, &debt);
        Ok(Some(SimulatedLiquidation {
            protocol: self.rules.protocol(),
            market: candidate.market,
            account: candidate.account,
            rule,
            collateral_asset: collateral,
            collateral_seized: seized,
            collateral_sold: sold,
            debt_asset: debt,
            debt_repaid: repaid,
            bad_debt,
        }))
    }

    /// Sums over the liquidatable set, kept by the monitor as accounts change (the same set and
    /// exposures the liquidatable walk computes). Bad debt is summed over that set too: an
    /// account whose debt exceeds its collateral's market value is liquidatable (collateral
    /// weights are at most 100%), so no underwater account lies outside it.
    fn risk(&mut self, _time: Timestamp, out: &mut Vec<MarketRisk>) -> Result<(), EngineError> {
        self.monitor.keep_exposures();
        self.refresh_monitor()?;
        let decimals = self.rules.risk_decimals();
        for market in self.pools.keys() {
            let (accounts, collateral, debt, bad_debt) = self.monitor.totals(market);
            out.push(MarketRisk {
                protocol: self.rules.protocol(),
                market: *market,
                oracle_price: None,
                accounts_unsafe: accounts,
                collateral_at_risk: Quantity::new(collateral, decimals),
                debt_at_risk: Quantity::new(debt, decimals),
                bad_debt: Quantity::new(bad_debt, decimals),
            });
        }
        Ok(())
    }

    fn unsafe_changes(
        &mut self,
        _time: Timestamp,
        out: &mut Vec<(Id, Id, bool)>,
    ) -> Result<bool, EngineError> {
        self.refresh_monitor()?;
        if self.monitor.take_report_all() {
            for (market, pool) in &self.pools {
                for slot in pool.accounts.sorted() {
                    let account = pool.accounts.id(slot);
                    out.push((*market, *account, self.monitor.contains(market, slot)));
                }
            }
        } else {
            let pools = &self.pools;
            self.monitor.drain_changes(out, |market, slot| {
                pools
                    .get(market)
                    .map_or(Id::Number(u64::from(slot)), |pool| *pool.accounts.id(slot))
            });
        }
        Ok(true)
    }

    fn encode_state(&self, out: &mut StateWriter) {
        self.encode_pools(out);
        // Last, and only when there is any, so that the state of a log without recorded oracle
        // values or snapshot bookkeeping is byte for byte what it was before they were modelled
        // (state hashes in goldens).
        if !self.oracle.is_empty() || !self.rules.extra_is_empty() || !self.snapshots_are_empty() {
            self.oracle.encode(out);
            self.rules.encode_extra(out);
            self.encode_snapshots(out);
        }
    }

    fn decode_state(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.decode_pools(input)?;
        self.oracle = RecordedPrices::new(self.oracle.mode());
        self.snapshots = Snapshots::default();
        if !input.at_end() {
            self.oracle.decode(input)?;
            self.rules.decode_extra(input)?;
            self.decode_snapshots(input)?;
        }
        self.reindex_all();
        Ok(())
    }

    /// The protocol's health and debt value of every account of every market
    /// ([`Rules::distribution_point`]). Interest accrues only through recorded index updates, so
    /// `time` changes nothing.
    /// Every account holding or owing something; the protocols here accrue no interest between
    /// recorded index updates (`docs/engine.md`), so `time` changes nothing.
    fn accounts(&self, _time: Timestamp, out: &mut Vec<AccountPosition>) {
        self.list_accounts(out, None);
    }

    fn accounts_and_health(
        &self,
        _time: Timestamp,
        accounts: &mut Vec<AccountPosition>,
        distributions: &mut Vec<HealthDistribution>,
    ) {
        self.list_accounts(accounts, Some(distributions));
    }

    fn snapshot_differences(&mut self, instant_ended: bool, out: &mut Vec<SnapshotDifference>) {
        if instant_ended {
            self.close_groups();
        }
        self.take_differences(out);
    }

    fn health_distribution(&self, _time: Timestamp, out: &mut Vec<HealthDistribution>) {
        for (market, pool) in &self.pools {
            let mut distribution = self.distribution(*market);
            for account in pool.accounts.values() {
                self.rules
                    .distribution_point(account)
                    .count_in(&mut distribution);
            }
            out.push(distribution);
        }
    }
}

/// An account a snapshot put in a non-zero Aave v3 e-mode category: the model has no e-mode
/// (no category's threshold, bonus or price source), so its health factor from the reserves' own
/// thresholds would be wrong, and is not given.
fn e_mode_not_modelled(position: &mut AccountPosition, category: u8) {
    position.health_factor = None;
    position.liquidation_price = None;
    position.missing = Some(format!(
        "the parameters of e-mode category {category} (e-mode is not modelled: its liquidation \
         threshold, bonus and price source would replace the reserves' own)"
    ));
}
