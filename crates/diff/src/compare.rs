//! The comparison of two runs of one log: totals side by side, accounts liquidated in one run
//! only, accounts whose losses changed most, per-asset and per-hour breakdowns.
//!
//! The result is plain data with a stable JSON form (`docs/diff.md`, [`DIFF_SCHEMA_VERSION`]);
//! every list is sorted by a documented total order so the same two runs always give the same
//! bytes. Runs of different logs are refused: their differences would mean nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::DiffError;
use cascade_events::{Id, Protocol};
use cascade_run::{LiquidationRecord, LogInfo};

use crate::runfile::{AccountKey, LiquidationExt, Num, RunFile, price_at};

/// Version of the diff JSON layout; bumped on any change of keys or their meaning. Version 2
/// added `liquidations`, `liquidation_changes` and `log_b`.
pub const DIFF_SCHEMA_VERSION: u32 = 2;

/// How many changed liquidations the comparison lists (all are counted).
pub const LIQUIDATION_CHANGES_KEPT: usize = 50;

/// How many accounts the loss-change list keeps.
pub const LOSS_CHANGES_KEPT: usize = 20;

/// Quote assets whose amounts count as the protocol's base currency when valuing losses.
const QUOTE_LIKE: &[&str] = &["DAI", "USD", "USDC", "USDT"];

/// One run as the comparison names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The run file.
    pub file: String,
    /// `historical`, or the scenario's label.
    pub label: String,
    /// `historical` or `counterfactual`.
    pub mode: &'static str,
    /// Final state hash.
    pub state_hash: String,
}

/// One total, in both runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TotalRow {
    /// What is counted (`liquidations`, `collateral seized`, ...).
    pub metric: String,
    /// The asset or unit (`ETH`, `DAI`, `USD`; empty for counts).
    pub unit: String,
    /// Value in run A (`null` where it does not apply, e.g. cascade depth of a historical run).
    pub a: Option<Num>,
    /// Value in run B.
    pub b: Option<Num>,
    /// `b - a` where both exist.
    pub delta: Option<Num>,
}

impl TotalRow {
    fn new(metric: &str, unit: &str, a: Option<Num>, b: Option<Num>) -> Self {
        TotalRow {
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            a,
            b,
            delta: a.zip(b).map(|(a, b)| b.minus(a)),
        }
    }
}

/// An account liquidated in one run only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountHit {
    /// The account.
    #[serde(flatten)]
    pub account: AccountKey,
    /// Its liquidations in that run.
    pub liquidations: u64,
    /// Collateral seized from it, per asset.
    pub collateral_seized: BTreeMap<String, Num>,
    /// Debt repaid, per asset.
    pub debt_repaid: BTreeMap<String, Num>,
}

/// An account whose loss differs between the runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LossChange {
    /// The account.
    #[serde(flatten)]
    pub account: AccountKey,
    /// Loss in run A, base currency.
    pub loss_a: Num,
    /// Loss in run B.
    pub loss_b: Num,
    /// `loss_b - loss_a`.
    pub delta: Num,
}

/// Liquidations of one collateral asset in both runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetRow {
    /// Collateral asset.
    pub asset: String,
    /// Liquidations in A.
    pub liquidations_a: u64,
    /// Liquidations in B.
    pub liquidations_b: u64,
    /// Collateral seized in A.
    pub collateral_a: Num,
    /// Collateral seized in B.
    pub collateral_b: Num,
    /// Debt repaid in A (base currency where the debt is quote-like, else the debt's units).
    pub debt_a: Num,
    /// Debt repaid in B.
    pub debt_b: Num,
    /// The debt asset of every liquidation in the row, when they share one (`None`: several):
    /// the unit the tables show `debt_a` and `debt_b` in.
    #[serde(skip)]
    pub debt_unit: Option<String>,
}

/// Liquidations in one UTC hour in both runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HourRow {
    /// Start of the hour, RFC 3339 (`2022-06-13T02:00:00Z`).
    pub hour: String,
    /// Liquidations in A.
    pub liquidations_a: u64,
    /// Liquidations in B.
    pub liquidations_b: u64,
    /// Collateral seized in A, all assets summed in their own units.
    pub collateral_a: Num,
    /// Collateral seized in B.
    pub collateral_b: Num,
    /// The collateral asset of every liquidation in the hour, when they share one (`None`:
    /// several): the unit the tables show `collateral_a` and `collateral_b` in.
    #[serde(skip)]
    pub collateral_unit: Option<String>,
}

/// The events both runs report on: liquidations outside it are left out of the comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeqRange {
    /// First sequence number compared (`null`: from the start).
    pub first: Option<u64>,
    /// Last sequence number compared (`null`: to the end).
    pub last: Option<u64>,
}

impl SeqRange {
    /// The events `run` reports on.
    pub fn of(run: &RunFile) -> SeqRange {
        SeqRange {
            first: run.window.first_seq,
            last: run.window.last_seq,
        }
    }

    /// The events inside both ranges.
    pub fn intersect(self, other: SeqRange) -> SeqRange {
        SeqRange {
            first: self.first.max(other.first),
            last: match (self.last, other.last) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
        }
    }

    /// Where both runs' reporting windows overlap.
    pub fn overlap(a: &RunFile, b: &RunFile) -> SeqRange {
        SeqRange::of(a).intersect(SeqRange::of(b))
    }

    /// Whether `seq` is inside.
    pub fn contains(&self, seq: u64) -> bool {
        self.first.is_none_or(|first| seq >= first) && self.last.is_none_or(|last| seq <= last)
    }
}

/// Liquidations of both runs matched by their stable identity
/// ([`cascade_run::compare::liquidation_identity`]), never by `seq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiquidationCounts {
    /// In both runs.
    pub matched: u64,
    /// In A only.
    pub only_in_a: u64,
    /// In B only.
    pub only_in_b: u64,
    /// In both, with another verdict or other amounts.
    pub changed: u64,
    /// Of those, with another verdict.
    pub verdicts_changed: u64,
}

/// A liquidation in both runs whose verdict or amounts differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiquidationChange {
    /// Its identity (time, origin, protocol, market, account, transaction where known).
    pub id: String,
    /// Verdict in A (`null` for a simulated liquidation).
    pub verdict_a: Option<String>,
    /// Verdict in B.
    pub verdict_b: Option<String>,
    /// Collateral seized in A.
    pub collateral_a: Num,
    /// Collateral seized in B.
    pub collateral_b: Num,
    /// Debt repaid in A.
    pub debt_a: Num,
    /// Debt repaid in B.
    pub debt_b: Num,
    /// The collateral asset (A's; the identity is the same liquidation in both runs).
    #[serde(skip)]
    pub collateral_unit: String,
    /// The debt asset.
    #[serde(skip)]
    pub debt_unit: String,
}

/// The comparison of two runs of the same log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// [`DIFF_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The log both runs replayed (run A's log when they differ).
    pub log: LogInfo,
    /// Run B's log, only when it differs from A's (`cascade diff --across-logs`): each run is
    /// then compared over its whole window and `compared` is `null` to `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_b: Option<LogInfo>,
    /// The events compared: where both runs' reporting windows overlap (a counterfactual with a
    /// window against a historical replay of the whole log compares the window).
    pub compared: SeqRange,
    /// Run A.
    pub a: RunSummary,
    /// Run B.
    pub b: RunSummary,
    /// Liquidations matched by identity.
    pub liquidations: LiquidationCounts,
    /// Matched liquidations whose verdict or amounts differ, in identity order (at most
    /// [`LIQUIDATION_CHANGES_KEPT`]).
    pub liquidation_changes: Vec<LiquidationChange>,
    /// Totals side by side.
    pub totals: Vec<TotalRow>,
    /// Accounts liquidated in A only, by account.
    pub only_in_a: Vec<AccountHit>,
    /// Accounts liquidated in B only, by account.
    pub only_in_b: Vec<AccountHit>,
    /// Accounts whose loss changed most, largest change first (at most [`LOSS_CHANGES_KEPT`]).
    pub loss_changes: Vec<LossChange>,
    /// Per collateral asset.
    pub by_asset: Vec<AssetRow>,
    /// Per hour with a liquidation in either run.
    pub by_hour: Vec<HourRow>,
}

/// What one run adds up to, per account and overall.
#[derive(Default, Clone)]
struct Tally {
    liquidations: u64,
    accounts: BTreeMap<AccountKey, AccountHit>,
    losses: BTreeMap<AccountKey, Num>,
    bonus: Num,
    unpriced: u64,
    collateral: BTreeMap<String, Num>,
    debt: BTreeMap<String, Num>,
    bad_debt: BTreeMap<String, Num>,
    by_asset: BTreeMap<String, (u64, Num, Num)>,
    by_hour: BTreeMap<i64, (u64, Num)>,
    /// Per collateral asset, the debt assets of its liquidations.
    debt_units: BTreeMap<String, BTreeSet<String>>,
    /// Per hour, the collateral assets liquidated in it.
    hour_units: BTreeMap<i64, BTreeSet<String>>,
}

/// The value of what an account lost in one liquidation, base currency: the collateral it lost
/// (sold, for simulated liquidations; seized, for recorded ones) at the protocol's oracle price of
/// that moment less the debt it cleared. `None` when no oracle price is known or the debt is not
/// quote-like. For recorded Maker liquidations an upper bound: the export has the collateral
/// moved to the auction, not what the auction sold.
pub fn loss_of(liquidation: &LiquidationRecord, price: Option<Num>) -> Option<Num> {
    let price = price?;
    if !QUOTE_LIKE.contains(&liquidation.debt_asset.to_string().as_str()) {
        return None;
    }
    let value = liquidation.collateral_lost().times(price);
    Some(value.minus(liquidation.debt()).max(Num::ZERO))
}

/// The one unit both runs' sums under `key` are in, `None` when they mix several.
fn one_unit<K: Ord>(units: [&BTreeMap<K, BTreeSet<String>>; 2], key: &K) -> Option<String> {
    let mut all = units.iter().filter_map(|map| map.get(key)).flatten();
    let first = all.next()?;
    all.all(|unit| unit == first).then(|| first.clone())
}

/// An account as borrowed from a liquidation: hashed while tallying (a large run has hundreds
/// of thousands of liquidations; a sorted map of owned keys made the report slow), sorted after.
type AccountRef = (Protocol, Id, Id);

fn tally(run: &RunFile, range: SeqRange) -> Tally {
    let prices = run.prices();
    let mut tally = Tally::default();
    let mut accounts: HashMap<AccountRef, AccountHit> = HashMap::new();
    let mut losses: HashMap<AccountRef, (AccountKey, Num)> = HashMap::new();
    for liquidation in run.liquidations.iter().filter(|l| range.contains(l.seq)) {
        tally.liquidations += 1;
        let account: AccountRef = (
            liquidation.protocol,
            liquidation.market,
            liquidation.account,
        );
        let hit = accounts.entry(account).or_insert_with(|| AccountHit {
            account: liquidation.key(),
            liquidations: 0,
            collateral_seized: BTreeMap::new(),
            debt_repaid: BTreeMap::new(),
        });
        hit.liquidations += 1;
        let collateral = liquidation.collateral();
        let debt = liquidation.debt();
        add(
            &mut hit.collateral_seized,
            &liquidation.collateral_name(),
            collateral,
        );
        add(
            &mut hit.debt_repaid,
            &liquidation.debt_asset.to_string(),
            debt,
        );
        add(
            &mut tally.collateral,
            &liquidation.collateral_name(),
            collateral,
        );
        add(&mut tally.debt, &liquidation.debt_asset.to_string(), debt);
        if let Some(bad) = liquidation.bad_debt.as_ref().map(Num::of)
            && !bad.is_zero()
        {
            add(
                &mut tally.bad_debt,
                &liquidation.debt_asset.to_string(),
                bad,
            );
        }
        let series = prices.get(&(
            liquidation.protocol.name().to_owned(),
            liquidation.market.to_string(),
        ));
        let price = series.and_then(|s| price_at(s, liquidation.seq));
        match loss_of(liquidation, price) {
            Some(loss) => {
                tally.bonus = tally.bonus.plus(loss);
                let entry = losses
                    .entry(account)
                    .or_insert_with(|| (liquidation.key(), Num::ZERO));
                entry.1 = entry.1.plus(loss);
            }
            None => tally.unpriced += 1,
        }
        let asset = tally
            .by_asset
            .entry(liquidation.collateral_name())
            .or_default();
        asset.0 += 1;
        asset.1 = asset.1.plus(collateral);
        asset.2 = asset.2.plus(debt);
        tally
            .debt_units
            .entry(liquidation.collateral_name())
            .or_default()
            .insert(liquidation.debt_asset.to_string());
        let hour_start = liquidation.time.0.div_euclid(3_600);
        let hour = tally.by_hour.entry(hour_start).or_default();
        hour.0 += 1;
        hour.1 = hour.1.plus(collateral);
        tally
            .hour_units
            .entry(hour_start)
            .or_default()
            .insert(liquidation.collateral_name());
    }
    tally.accounts = accounts
        .into_values()
        .map(|hit| (hit.account.clone(), hit))
        .collect();
    tally.losses = losses.into_values().collect();
    tally
}

fn add(sums: &mut BTreeMap<String, Num>, asset: &str, amount: Num) {
    let entry = sums.entry(asset.to_owned()).or_default();
    *entry = entry.plus(amount);
}

fn summary(run: &RunFile) -> RunSummary {
    RunSummary {
        file: run.path.clone(),
        label: run.label(),
        mode: if run.is_counterfactual() {
            "counterfactual"
        } else {
            "historical"
        },
        state_hash: run.state_hash.clone(),
    }
}

/// Refuses runs of different logs: comparing them would mean nothing.
pub fn same_log(a: &RunFile, b: &RunFile) -> Result<(), DiffError> {
    if a.log != b.log {
        return Err(DiffError::DifferentLogs {
            a: a.path.clone(),
            a_log: describe_log(&a.log),
            b: b.path.clone(),
            b_log: describe_log(&b.log),
        });
    }
    Ok(())
}

/// Compares two runs of the same log; refuses runs of different logs.
pub fn compare(a: &RunFile, b: &RunFile) -> Result<Comparison, DiffError> {
    same_log(a, b)?;
    let compared = SeqRange::overlap(a, b);
    compare_over(a, b, (compared, compared))
}

/// Compares runs of two logs of one history (the second log gained a price file, say): each run
/// over its whole window, liquidations matched by identity. Refuses runs whose windows start or
/// end at different times: their totals would cover different stretches of history.
pub fn compare_across_logs(a: &RunFile, b: &RunFile) -> Result<Comparison, DiffError> {
    if (&a.window.from_time, &a.window.to_time) != (&b.window.from_time, &b.window.to_time) {
        return Err(DiffError::DifferentWindows {
            a: a.path.clone(),
            b: b.path.clone(),
        });
    }
    let mut comparison = compare_over(a, b, (SeqRange::of(a), SeqRange::of(b)))?;
    comparison.compared = SeqRange::default();
    if a.log != b.log {
        comparison.log_b = Some(b.log.clone());
    }
    Ok(comparison)
}

/// Liquidations of `run` inside `range`, keyed by their identity.
fn identified(run: &RunFile, range: SeqRange) -> BTreeMap<String, &LiquidationRecord> {
    let inside: Vec<&LiquidationRecord> = run
        .liquidations
        .iter()
        .filter(|l| range.contains(l.seq))
        .collect();
    let ids = cascade_run::compare::identities(inside.iter().map(|l| l.identity()));
    ids.into_iter().zip(inside).collect()
}

fn match_liquidations(
    a: &RunFile,
    b: &RunFile,
    (range_a, range_b): (SeqRange, SeqRange),
) -> (LiquidationCounts, Vec<LiquidationChange>) {
    let (la, lb) = (identified(a, range_a), identified(b, range_b));
    let mut counts = LiquidationCounts::default();
    let mut changes = Vec::new();
    for (id, x) in &la {
        let Some(y) = lb.get(id) else {
            counts.only_in_a += 1;
            continue;
        };
        counts.matched += 1;
        let verdict_changed = x.verdict != y.verdict;
        if verdict_changed || x.collateral() != y.collateral() || x.debt() != y.debt() {
            counts.changed += 1;
            counts.verdicts_changed += u64::from(verdict_changed);
            changes.push(LiquidationChange {
                id: id.clone(),
                verdict_a: x.verdict.map(|v| v.name().to_owned()),
                verdict_b: y.verdict.map(|v| v.name().to_owned()),
                collateral_a: x.collateral(),
                collateral_b: y.collateral(),
                debt_a: x.debt(),
                debt_b: y.debt(),
                collateral_unit: x.collateral_name(),
                debt_unit: x.debt_asset.to_string(),
            });
        }
    }
    counts.only_in_b = lb.keys().filter(|id| !la.contains_key(*id)).count() as u64;
    changes.truncate(LIQUIDATION_CHANGES_KEPT);
    (counts, changes)
}

fn compare_over(
    a: &RunFile,
    b: &RunFile,
    (range_a, range_b): (SeqRange, SeqRange),
) -> Result<Comparison, DiffError> {
    let compared = range_a;
    let ta = tally(a, range_a);
    // A run against itself (the report's totals of a single run): nothing to match.
    let itself = std::ptr::eq(a, b) && range_a == range_b;
    let tb = if itself {
        ta.clone()
    } else {
        tally(b, range_b)
    };
    let (liquidations, liquidation_changes) = if itself {
        let matched = LiquidationCounts {
            matched: ta.liquidations,
            ..LiquidationCounts::default()
        };
        (matched, Vec::new())
    } else {
        match_liquidations(a, b, (range_a, range_b))
    };
    let mut totals = vec![
        TotalRow::new(
            "liquidations",
            "",
            Some(Num::from_int(ta.liquidations.into())),
            Some(Num::from_int(tb.liquidations.into())),
        ),
        TotalRow::new(
            "accounts hit",
            "",
            Some(Num::from_int(ta.accounts.len() as i128)),
            Some(Num::from_int(tb.accounts.len() as i128)),
        ),
    ];
    let per_asset = |metric: &str,
                     totals: &mut Vec<TotalRow>,
                     ma: BTreeMap<String, Num>,
                     mb: BTreeMap<String, Num>| {
        let assets: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
        for asset in assets {
            totals.push(TotalRow::new(
                metric,
                asset,
                Some(ma.get(asset).copied().unwrap_or_default()),
                Some(mb.get(asset).copied().unwrap_or_default()),
            ));
        }
    };
    per_asset(
        "collateral seized",
        &mut totals,
        ta.collateral.clone(),
        tb.collateral.clone(),
    );
    per_asset("debt repaid", &mut totals, ta.debt.clone(), tb.debt.clone());
    // A run none of whose liquidations could be valued (no oracle price: Aave pools, Compound)
    // has no bonus to show, not a bonus of 0.
    let bonus = |t: &Tally| (t.liquidations == 0 || t.unpriced < t.liquidations).then_some(t.bonus);
    totals.push(TotalRow::new(
        "liquidator bonus",
        "USD",
        bonus(&ta),
        bonus(&tb),
    ));
    let bad_a = ta.bad_debt.clone();
    let bad_b = tb.bad_debt.clone();
    if bad_a.is_empty() && bad_b.is_empty() {
        totals.push(TotalRow::new(
            "bad debt",
            "DAI",
            Some(Num::ZERO),
            Some(Num::ZERO),
        ));
    } else {
        per_asset("bad debt", &mut totals, bad_a, bad_b);
    }
    totals.push(TotalRow::new(
        "cascade depth",
        "rounds",
        a.cascade_depth().map(|d| Num::from_int(d.into())),
        b.cascade_depth().map(|d| Num::from_int(d.into())),
    ));
    let only = |mine: &Tally, theirs: &Tally| -> Vec<AccountHit> {
        mine.accounts
            .iter()
            .filter(|(key, _)| !theirs.accounts.contains_key(*key))
            .map(|(_, hit)| hit.clone())
            .collect()
    };
    let only_in_a = only(&ta, &tb);
    let only_in_b = only(&tb, &ta);
    let mut loss_changes: Vec<LossChange> = ta
        .losses
        .keys()
        .chain(tb.losses.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|key| {
            let loss_a = ta.losses.get(key).copied().unwrap_or_default();
            let loss_b = tb.losses.get(key).copied().unwrap_or_default();
            LossChange {
                account: key.clone(),
                loss_a,
                loss_b,
                delta: loss_b.minus(loss_a),
            }
        })
        .filter(|change| !change.delta.is_zero())
        .collect();
    loss_changes.sort_by(|x, y| {
        y.delta
            .abs()
            .cmp(&x.delta.abs())
            .then_with(|| x.account.cmp(&y.account))
    });
    loss_changes.truncate(LOSS_CHANGES_KEPT);
    let by_asset = ta
        .by_asset
        .keys()
        .chain(tb.by_asset.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|asset| {
            let (la, ca, da) = ta.by_asset.get(asset).copied().unwrap_or_default();
            let (lb, cb, db) = tb.by_asset.get(asset).copied().unwrap_or_default();
            AssetRow {
                asset: asset.clone(),
                liquidations_a: la,
                liquidations_b: lb,
                collateral_a: ca,
                collateral_b: cb,
                debt_a: da,
                debt_b: db,
                debt_unit: one_unit([&ta.debt_units, &tb.debt_units], asset),
            }
        })
        .collect();
    let by_hour = ta
        .by_hour
        .keys()
        .chain(tb.by_hour.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|hour| {
            let (la, ca) = ta.by_hour.get(hour).copied().unwrap_or_default();
            let (lb, cb) = tb.by_hour.get(hour).copied().unwrap_or_default();
            HourRow {
                hour: cascade_events::Timestamp(hour * 3_600).to_rfc3339(),
                liquidations_a: la,
                liquidations_b: lb,
                collateral_a: ca,
                collateral_b: cb,
                collateral_unit: one_unit([&ta.hour_units, &tb.hour_units], hour),
            }
        })
        .collect();
    Ok(Comparison {
        schema_version: DIFF_SCHEMA_VERSION,
        log: a.log.clone(),
        log_b: None,
        compared,
        a: summary(a),
        b: summary(b),
        liquidations,
        liquidation_changes,
        totals,
        only_in_a,
        only_in_b,
        loss_changes,
        by_asset,
        by_hour,
    })
}

fn describe_log(log: &LogInfo) -> String {
    let seq = |s: Option<u64>| s.map_or("-".to_owned(), |s| s.to_string());
    format!(
        "content hash {}, seq {}..{}",
        if log.content_hash.is_empty() {
            "(none)"
        } else {
            &log.content_hash
        },
        seq(log.first_seq),
        seq(log.last_seq)
    )
}

impl Comparison {
    /// Whether the two runs differ in anything the comparison shows.
    pub fn differs(&self) -> bool {
        self.totals.iter().any(|row| row.a != row.b)
            || !self.only_in_a.is_empty()
            || !self.only_in_b.is_empty()
            || !self.loss_changes.is_empty()
            || self.liquidations.only_in_a > 0
            || self.liquidations.only_in_b > 0
            || self.liquidations.changed > 0
    }

    /// The stable JSON form, pretty, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("a comparison holds only strings, integers, maps and lists");
        text.push('\n');
        text
    }
}
