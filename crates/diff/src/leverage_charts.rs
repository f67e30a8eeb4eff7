//! The report's leverage charts (`docs/leverage.md`): effective leverage per hour as a heat map,
//! with concentration and loops in its table; the liquidation ladder (collateral that becomes
//! liquidatable at each fall of its price, across protocols); and the debt that hangs on each
//! asset group's price per protocol, with what the protocols share. Numbers in tables are the
//! run file's exact decimals; floats only for drawing.

use std::collections::BTreeMap;

use cascade_run::{BookMoment, LeverageSample};

use crate::DiffError;
use crate::charts::{self, BarGroup};
use crate::health_heat::{Column, HeatMap};
use crate::runfile::{Num, RunFile};

/// One chart: name, title, SVG, note and its table (caption, header, rows).
pub struct LeverageChart {
    /// File-name part.
    pub name: String,
    /// Heading.
    pub title: String,
    /// The drawing.
    pub svg: String,
    /// What it shows.
    pub note: String,
    /// The exact numbers.
    pub table: (String, Vec<String>, Vec<Vec<String>>),
}

/// The scope a run's leverage is charted for: `all` when the run has it, else its first
/// protocol's.
fn scope(run: &RunFile) -> Option<&str> {
    let samples = &run.leverage_over_time;
    samples
        .iter()
        .find(|s| s.scope == "all")
        .or_else(|| samples.first())
        .map(|s| s.scope.as_str())
}

/// The samples of `scope` as a heat map of leverage buckets.
fn leverage_map(samples: &[&LeverageSample], scope: &str) -> HeatMap {
    let ranges = samples
        .first()
        .map(|s| s.leverage.iter().map(|b| b.range.to_string()).collect())
        .unwrap_or_default();
    let columns: Vec<Column> = samples
        .iter()
        .map(|s| Column {
            period: s.period,
            period_seconds: s.period_seconds,
            accounts: s.leverage.iter().map(|b| b.accounts).collect(),
            debt: None,
        })
        .collect();
    HeatMap {
        scope: scope.to_owned(),
        ranges,
        columns: crate::health_heat::thin(columns),
    }
}

/// Effective leverage over time per run, with concentration and loops at the window's first
/// and last sample in the table.
pub fn leverage_charts(runs: &[RunFile]) -> Vec<LeverageChart> {
    let mut out = Vec::new();
    for run in runs {
        let Some(scope) = scope(run) else {
            continue;
        };
        let samples: Vec<&LeverageSample> = run
            .leverage_over_time
            .iter()
            .filter(|s| s.scope == scope)
            .collect();
        let map = leverage_map(&samples, scope);
        let title = format!(
            "{}: {} accounts with debt by effective leverage over time",
            run.label(),
            if scope == "all" {
                "owners across protocols:"
            } else {
                scope
            }
        );
        let header = vec![
            "scope".to_owned(),
            "at".to_owned(),
            "accounts with debt".to_owned(),
            "looped".to_owned(),
            "looped debt (USD)".to_owned(),
            "collateral (USD)".to_owned(),
            "top 10 share".to_owned(),
            "top 100 share".to_owned(),
            "top 1000 share".to_owned(),
        ];
        let mut rows = Vec::new();
        let mut scopes: Vec<&str> = run
            .leverage_over_time
            .iter()
            .map(|s| s.scope.as_str())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        for name in scopes {
            let of_scope: Vec<&LeverageSample> = run
                .leverage_over_time
                .iter()
                .filter(|s| s.scope == name)
                .collect();
            let mut ends = vec![of_scope.first(), of_scope.last()];
            ends.dedup_by(|a, b| a.map(|s| s.seq) == b.map(|s| s.seq));
            for sample in ends.into_iter().flatten() {
                let share = |n: &str| {
                    sample
                        .top_share_percent
                        .get(n)
                        .map_or_else(String::new, |p| format!("{p}%"))
                };
                rows.push(vec![
                    name.to_owned(),
                    format!("{} (seq {})", sample.time.to_rfc3339(), sample.seq),
                    sample.accounts_with_debt.to_string(),
                    sample.looped_accounts.to_string(),
                    Num::of(&sample.looped_debt).human(0),
                    Num::of(&sample.collateral).human(0),
                    share("10"),
                    share("100"),
                    share("1000"),
                ]);
            }
        }
        out.push(LeverageChart {
            name: format!("leverage-time-{}", out.len() + 1),
            title: format!("{}: effective leverage per hour", run.label()),
            svg: crate::health_heat::svg(&map, &title, "effective leverage", "USD"),
            note: "Effective leverage is total exposure (collateral value) over net equity \
                   (collateral minus debt); `underwater` has no equity. `all` takes each \
                   owner's positions in every protocol together, loops across protocols \
                   included (docs/leverage.md). Each column is the end of one period; the shade \
                   is the bucket's share of the accounts with debt. The table gives, at the \
                   first and last period of each scope, the looped accounts and the share of \
                   the collateral held by the largest accounts (concentration)."
                .to_owned(),
            table: ("Loops and concentration".to_owned(), header, rows),
        });
    }
    out
}

/// The liquidation ladder of the collateral group with the most collateral on it, every run at
/// the window's start and end.
pub fn ladder_chart(runs: &[RunFile]) -> Result<Option<LeverageChart>, DiffError> {
    let mut totals: BTreeMap<&str, Num> = BTreeMap::new();
    for rung in runs.iter().flat_map(|r| r.liquidation_ladder.iter()) {
        let total = totals.entry(&rung.group).or_insert(Num::ZERO);
        *total = total.plus(Num::of(&rung.collateral));
    }
    let Some(group) = totals
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(g, _)| (*g).to_owned())
    else {
        return Ok(None);
    };
    let falls: Vec<String> = cascade_run::LADDER_FALLS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut series = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); falls.len()];
    let mut header = vec!["price fall".to_owned()];
    let mut cells: Vec<Vec<String>> = falls.iter().map(|f| vec![f.clone()]).collect();
    // One colour per bar series: a run's start and end (and several runs) must not look alike.
    for run in runs {
        for moment in [BookMoment::Start, BookMoment::End] {
            let rungs: Vec<_> = run
                .liquidation_ladder
                .iter()
                .filter(|r| r.moment == moment && r.group == group)
                .collect();
            let Some(first) = rungs.first() else {
                continue;
            };
            let label = format!(
                "{} {} ({})",
                run.label(),
                moment_name(moment),
                first.time.to_rfc3339()
            );
            series.push((label.clone(), series.len()));
            header.push(label);
            for (index, fall) in falls.iter().enumerate() {
                let rung = rungs.iter().find(|r| r.fall == fall.as_str());
                let collateral = rung.map_or(Num::ZERO, |r| Num::of(&r.collateral));
                values[index].push(collateral.to_f64());
                cells[index].push(rung.map_or_else(
                    || "0".to_owned(),
                    |r| {
                        let by: Vec<String> = r
                            .by_protocol
                            .iter()
                            .map(|(p, v)| format!("{p} {}", Num::of(v).human(0)))
                            .collect();
                        format!(
                            "{} · {} USD ({})",
                            r.accounts,
                            collateral.human(0),
                            by.join(", ")
                        )
                    },
                ));
            }
        }
    }
    let groups: Vec<BarGroup> = falls
        .iter()
        .zip(values)
        .map(|(label, values)| BarGroup {
            label: label.clone(),
            values,
        })
        .collect();
    let svg = charts::bar_chart(
        &format!("{group} collateral that becomes liquidatable, by fall of its price"),
        "collateral (USD)",
        &series,
        &groups,
    )?;
    Ok(Some(LeverageChart {
        name: "ladder".to_owned(),
        title: format!("Liquidation ladder: {group} collateral across protocols"),
        svg,
        note: format!(
            "Each bar is the value of the {group}-group collateral of the positions that become \
             liquidatable when its price falls by that much from the oracle price of the moment, \
             every other price held (the positions' main collateral; docs/leverage.md). `now`: \
             liquidatable already. Start: the end of the window's first period with positions; \
             end: the end of the window."
        ),
        table: (
            "Positions · their main collateral (USD), per protocol".to_owned(),
            header,
            cells,
        ),
    }))
}

fn moment_name(moment: BookMoment) -> &'static str {
    match moment {
        BookMoment::Start => "start",
        BookMoment::End => "end",
    }
}

/// How the overlap table words a trigger of `liquidations_by_trigger`.
fn trigger_words(trigger: &str) -> &str {
    match trigger {
        "price-path" => "the price path",
        "own-protocol-sales" => "its own protocol's sales",
        "other-protocol-sales" => "another protocol's sales",
        other => other,
    }
}

/// The debt that depends on each asset group's price, per run and protocol at the window's end,
/// with the owners, collateral and loops the protocols share in the table.
pub fn overlap_chart(runs: &[RunFile]) -> Result<Option<LeverageChart>, DiffError> {
    let ends: Vec<(&RunFile, &cascade_run::OverlapReport)> = runs
        .iter()
        .filter_map(|run| {
            run.overlap
                .iter()
                .find(|o| o.moment == BookMoment::End)
                .map(|o| (run, o))
        })
        .collect();
    if ends.iter().all(|(_, o)| o.debt_on_group.is_empty()) {
        return Ok(None);
    }
    let mut groups: Vec<&str> = ends
        .iter()
        .flat_map(|(_, o)| o.debt_on_group.iter().map(|d| d.group.as_str()))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let mut series = Vec::new();
    let mut bars: Vec<BarGroup> = groups
        .iter()
        .map(|g| BarGroup {
            label: (*g).to_owned(),
            values: Vec::new(),
        })
        .collect();
    let mut rows = Vec::new();
    for (run, overlap) in &ends {
        let mut protocols: Vec<&str> = overlap
            .debt_on_group
            .iter()
            .map(|d| d.protocol.as_str())
            .collect();
        protocols.sort_unstable();
        protocols.dedup();
        for protocol in protocols {
            // One colour per (run, protocol) series, as on the ladder.
            series.push((format!("{} {protocol}", run.label()), series.len()));
            for (bar, group) in bars.iter_mut().zip(&groups) {
                let debt = overlap
                    .debt_on_group
                    .iter()
                    .find(|d| d.group == *group && d.protocol == protocol)
                    .map_or(Num::ZERO, |d| Num::of(&d.value));
                bar.values.push(debt.to_f64());
                if !debt.is_zero() {
                    rows.push(vec![
                        run.label(),
                        "debt on price".to_owned(),
                        format!("{group}: {protocol}"),
                        debt.human(0),
                    ]);
                }
            }
        }
        for owners in &overlap.owners {
            rows.push(vec![
                run.label(),
                "owners in several protocols".to_owned(),
                owners.protocols.join(" + "),
                owners.owners.to_string(),
            ]);
        }
        for shared in &overlap.shared_collateral {
            rows.push(vec![
                run.label(),
                "collateral of those owners".to_owned(),
                format!("{}: {}", shared.group, shared.protocol),
                Num::of(&shared.value).human(0),
            ]);
        }
        for link in &overlap.cross_loops {
            rows.push(vec![
                run.label(),
                "loop across protocols".to_owned(),
                format!(
                    "{} borrowed in {}, collateral in {}",
                    link.group, link.borrowed_in, link.collateral_in
                ),
                Num::of(&link.value).human(0),
            ]);
        }
        for triggered in &overlap.liquidations_by_trigger {
            rows.push(vec![
                run.label(),
                format!(
                    "liquidations triggered by {}",
                    trigger_words(&triggered.trigger)
                ),
                triggered.protocol.clone(),
                format!(
                    "{} ({} {} repaid)",
                    triggered.liquidations,
                    Num::of(&triggered.debt_repaid).human(2),
                    triggered.debt_asset
                ),
            ]);
        }
    }
    let svg = charts::bar_chart(
        "debt that depends on each asset group's price, per protocol (end of window)",
        "debt (USD)",
        &series,
        &bars,
    )?;
    Ok(Some(LeverageChart {
        name: "overlap".to_owned(),
        title: "Systemic overlap: debt on one price, owners and loops across protocols".to_owned(),
        svg,
        note: "A position's debt is split over the groups of its collateral by their share of \
               its collateral value: the debt a fall of that group's price puts at risk, summed \
               per protocol. Owners are matched by account id (a Maker vault's urn rarely equals \
               its owner's address: docs/leverage.md). Values USD, at the end of the window. \
               A counterfactual of several protocols also counts each protocol's liquidations \
               by trigger: the price path, its own protocol's sales or another protocol's \
               (the sale that displaced the price most decides)."
            .to_owned(),
        table: (
            "Overlap between protocols".to_owned(),
            vec![
                "run".to_owned(),
                "what".to_owned(),
                "where".to_owned(),
                "USD, owners or liquidations".to_owned(),
            ],
            rows,
        ),
    }))
}
