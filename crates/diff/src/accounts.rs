//! Per-account tables of a report: the accounts each run liquidated most, with the health they
//! had when liquidated and the collateral and debt taken; the accounts the run files list, at
//! the window's start and end in every run; and which run is the baseline the counterfactuals are
//! fairly compared with (`docs/postmortems/README.md`).

use std::collections::{BTreeMap, HashMap};

use cascade_events::{Id, Protocol};

use cascade_run::{AccountRecord, AccountState};

use crate::runfile::{AccountKey, LiquidationExt, Num, RunFile};

/// Accounts listed per run, the most debt repaid first.
pub const ACCOUNTS_SHOWN: usize = 20;

/// The index of the baseline run among `runs`: the first counterfactual whose scenario changes
/// nothing (`scenario.baseline`), the fair reference for the other counterfactuals, since it
/// shares their simulated liquidator and differs from them only by the scenario's changes.
pub fn baseline(runs: &[RunFile]) -> Option<usize> {
    runs.iter()
        .position(|run| run.scenario.as_ref().is_some_and(|s| s.baseline))
}

/// What one account went through in one run.
#[derive(Default)]
struct AccountRow {
    liquidations: u64,
    lowest_health: Option<Num>,
    collateral: BTreeMap<String, Num>,
    debt: BTreeMap<String, Num>,
}

fn amounts(map: &BTreeMap<String, Num>) -> String {
    map.iter()
        .map(|(asset, n)| n.amount(asset))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The [`ACCOUNTS_SHOWN`] accounts of `run` with the most debt repaid: liquidations, the lowest
/// health at which one of them was liquidated, collateral seized and debt repaid; `None` when
/// the run liquidated nobody. The caption says how many accounts there were.
pub fn table(run: &RunFile) -> Option<(String, Vec<String>, Vec<Vec<String>>)> {
    // Hashed by borrowed names while counting: a large run has hundreds of thousands of
    // liquidations, and only the largest accounts are kept.
    let mut by_account: HashMap<(Protocol, Id, Id), AccountRow> = HashMap::new();
    for liquidation in &run.liquidations {
        let account = (
            liquidation.protocol,
            liquidation.market,
            liquidation.account,
        );
        let row = by_account.entry(account).or_default();
        row.liquidations += 1;
        if let Some(health) = liquidation.health.as_ref().map(Num::of) {
            row.lowest_health = Some(row.lowest_health.map_or(health, |h| h.min(health)));
        }
        let collateral = row
            .collateral
            .entry(liquidation.collateral_name())
            .or_default();
        *collateral = collateral.plus(liquidation.collateral());
        let debt = row
            .debt
            .entry(liquidation.debt_asset.to_string())
            .or_default();
        *debt = debt.plus(liquidation.debt());
    }
    if by_account.is_empty() {
        return None;
    }
    let total = by_account.len();
    let debt = |row: &AccountRow| row.debt.values().fold(Num::ZERO, |sum, n| sum.plus(*n));
    let mut ranked: Vec<(AccountKey, Num, AccountRow)> = by_account
        .into_iter()
        .map(|((protocol, market, account), row)| {
            let key = AccountKey {
                protocol: protocol.name().to_owned(),
                market: market.to_string(),
                account: account.to_string(),
            };
            (key, debt(&row), row)
        })
        .collect();
    // Most debt first; equal debts in account order, so the table does not depend on hashing.
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(ACCOUNTS_SHOWN);
    let header = [
        "account",
        "liquidations",
        "lowest health liquidated at",
        "collateral seized",
        "debt repaid",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = ranked
        .into_iter()
        .map(|(account, _, row)| {
            vec![
                account.to_string(),
                row.liquidations.to_string(),
                row.lowest_health
                    .map_or_else(|| "-".to_owned(), |h| h.human(4)),
                amounts(&row.collateral),
                amounts(&row.debt),
            ]
        })
        .collect();
    Some((
        format!(
            "Accounts liquidated, {} of {total} with the most debt repaid, their health and collateral ({})",
            ACCOUNTS_SHOWN.min(total),
            run.label()
        ),
        header,
        rows,
    ))
}

/// Accounts compared at most, in [`before_after`].
pub const ACCOUNTS_COMPARED: usize = 30;

/// The per-account comparison of [`before_after`]: caption, header, rows and a note saying
/// which moments the columns are.
pub struct BeforeAfter {
    /// The table's caption.
    pub caption: String,
    /// Column names.
    pub header: Vec<String>,
    /// One row per account.
    pub rows: Vec<Vec<String>>,
    /// The moments, stated.
    pub note: String,
}

/// What one run says about one account: its listed record, and the collateral its liquidations
/// took (sold where the run says, else seized), by asset.
struct Fate<'a> {
    record: Option<&'a AccountRecord>,
    lost: BTreeMap<String, Num>,
}

/// The accounts the runs list (`accounts` of the run file: those liquidated in a run, and per
/// market the lowest health and largest debts as the window opened), each at the window's start
/// and in every run at its end, against the reference run: the baseline when there is one (the
/// fair reference), else the first run. At most [`ACCOUNTS_COMPARED`] rows: first the accounts
/// liquidated in some runs and not in others, then those liquidated in every run, then the rest;
/// each group by debt at the start, largest first. `None` when no run lists accounts.
pub fn before_after(runs: &[RunFile]) -> Option<BeforeAfter> {
    if runs.iter().all(|run| run.accounts.is_empty()) {
        return None;
    }
    let reference = baseline(runs).unwrap_or(0);
    let order: Vec<usize> = std::iter::once(reference)
        .chain((0..runs.len()).filter(|index| *index != reference))
        .collect();
    let mut keys: BTreeMap<AccountKey, ()> = BTreeMap::new();
    for run in runs {
        for record in &run.accounts {
            keys.insert(record_key(record), ());
        }
    }
    let fates: Vec<HashMap<AccountKey, Fate>> = order
        .iter()
        .map(|index| {
            let run = &runs[*index];
            let mut fates: HashMap<AccountKey, Fate> = run
                .accounts
                .iter()
                .map(|record| {
                    let fate = Fate {
                        record: Some(record),
                        lost: BTreeMap::new(),
                    };
                    (record_key(record), fate)
                })
                .collect();
            for liquidation in &run.liquidations {
                let key = liquidation.key();
                if !keys.contains_key(&key) {
                    continue;
                }
                let fate = fates.entry(key).or_insert_with(|| Fate {
                    record: None,
                    lost: BTreeMap::new(),
                });
                let sum = fate.lost.entry(liquidation.collateral_name()).or_default();
                *sum = sum.plus(liquidation.collateral_lost());
            }
            fates
        })
        .collect();
    let start_of = |key: &AccountKey| {
        fates
            .iter()
            .find_map(|run| run.get(key)?.record?.start.as_ref())
    };
    let mut ranked: Vec<(u8, Num, AccountKey)> = keys
        .into_keys()
        .map(|key| {
            let liquidated = fates
                .iter()
                .filter(|run| run.get(&key).is_some_and(|fate| !fate.lost.is_empty()))
                .count();
            let group = match liquidated {
                0 => 2,
                n if n == fates.len() => 1,
                _ => 0,
            };
            let debt = start_of(&key)
                .and_then(|state| state.debt_value.as_ref())
                .map_or(Num::ZERO, Num::of);
            (group, debt, key)
        })
        .collect();
    let total = ranked.len();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    ranked.truncate(ACCOUNTS_COMPARED);
    let mut header = vec![
        "account".to_owned(),
        "debt at start".to_owned(),
        "health at start".to_owned(),
    ];
    header.extend(order.iter().map(|index| runs[*index].label()));
    let rows = ranked
        .iter()
        .map(|(_, _, key)| {
            let start = start_of(key);
            let mut row = vec![
                key.to_string(),
                start.map_or_else(|| "not open".to_owned(), debt_text),
                start.map_or_else(|| "-".to_owned(), health_text),
            ];
            for run in &fates {
                let fate = run.get(key);
                let end = match fate.and_then(|fate| fate.record) {
                    None => "not listed".to_owned(),
                    Some(record) => record
                        .end
                        .as_ref()
                        .map_or_else(|| "closed".to_owned(), health_text),
                };
                let lost = match fate {
                    Some(fate) if !fate.lost.is_empty() => amounts(&fate.lost),
                    _ => "none".to_owned(),
                };
                row.push(format!("{end} · lost {lost}"));
            }
            row
        })
        .collect();
    let moments: Vec<String> = order
        .iter()
        .map(|index| {
            let run = &runs[*index];
            let when = |state: Option<&AccountState>| {
                state.map_or_else(
                    || "-".to_owned(),
                    |s| format!("{} (seq {})", s.time.to_rfc3339(), s.seq),
                )
            };
            let start = run.accounts.iter().find_map(|r| r.start.as_ref());
            let end = run.accounts.iter().find_map(|r| r.end.as_ref());
            format!(
                "{}: start {}, end {}",
                run.label(),
                if start.is_none() && run.window.from_time.is_none() {
                    "none (the window is the whole log, which opens on an empty book)".to_owned()
                } else {
                    when(start)
                },
                when(end)
            )
        })
        .collect();
    let reference_label = runs[reference].label();
    Some(BeforeAfter {
        caption: format!(
            "Accounts at the window's start and end, {} of {total}, against {reference_label}{}: \
             per run, the health factor at the end · the collateral its liquidations took",
            ACCOUNTS_COMPARED.min(total),
            if baseline(runs).is_some() {
                " (the baseline: the fair reference)"
            } else {
                ""
            }
        ),
        header,
        rows,
        note: format!(
            "Start: the book as the window opened, before its first event; end: after the window's \
             last event. Health factor as the protocol computes it (below 1 is liquidatable); debt \
             in the protocol's base currency. Collateral lost: what the run's liquidations of the \
             account sold (a Maker auction returns the rest), else seized. \"not listed\": the run \
             file lists the accounts it liquidated and, per market, the {} lowest health factors \
             and {} largest debts at the start; \"closed\": no position at the end. {}.",
            cascade_run::ACCOUNTS_LOWEST_HEALTH_PER_MARKET,
            cascade_run::ACCOUNTS_LARGEST_DEBT_PER_MARKET,
            moments.join("; ")
        ),
    })
}

fn record_key(record: &AccountRecord) -> AccountKey {
    AccountKey {
        protocol: record.protocol.clone(),
        market: record.market.clone(),
        account: record.account.clone(),
    }
}

fn debt_text(state: &AccountState) -> String {
    state.debt_value.as_ref().map_or_else(
        || "no price".to_owned(),
        |debt| Num::of(debt).amount(&state.base_currency),
    )
}

fn health_text(state: &AccountState) -> String {
    match (&state.health, &state.debt_value) {
        (Some(health), _) => Num::of(health).fixed(4),
        (None, Some(debt)) if debt.value.is_zero() => "no debt".to_owned(),
        (None, _) => "no price".to_owned(),
    }
}
