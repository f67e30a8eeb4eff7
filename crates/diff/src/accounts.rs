//! Per-account tables of a report: the accounts each run liquidated most, with the health they
//! had when liquidated and the collateral and debt taken, and which run is the baseline the
//! counterfactuals are fairly compared with (`docs/postmortems/README.md`).

use std::collections::{BTreeMap, HashMap};

use cascade_events::{Id, Protocol};

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
