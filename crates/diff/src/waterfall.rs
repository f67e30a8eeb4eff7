//! The liquidation waterfall of a report: how many liquidations each run had per hour and per
//! size of debt repaid, with the exact counts and sums in a table under each chart.

use std::collections::BTreeMap;

use cascade_events::Timestamp;

use crate::DiffError;
use crate::charts::{self, BarGroup};
use crate::runfile::{Num, RunFile};

/// Upper edges (whole debt tokens) of the size buckets; the last bucket has none.
const SIZE_EDGES: [i128; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// A table: header, rows.
pub type Table = (Vec<String>, Vec<Vec<String>>);

/// One chart of the waterfall, with its table.
pub struct WaterfallChart {
    /// File and anchor name.
    pub name: &'static str,
    /// Heading.
    pub title: String,
    /// The SVG.
    pub svg: String,
    /// What it shows.
    pub note: String,
    /// Exact counts and sums.
    pub table: Table,
}

/// The size bucket of `debt` (whole tokens): `<1k`, `1k-10k`, ..., `>=1M`.
fn size_bucket(debt: Num) -> usize {
    SIZE_EDGES
        .iter()
        .position(|edge| debt < Num::from_int(*edge))
        .unwrap_or(SIZE_EDGES.len())
}

fn size_names() -> Vec<String> {
    let short = |n: i128| charts::short_number(n as f64);
    let mut names = vec![format!("<{}", short(SIZE_EDGES[0]))];
    for pair in SIZE_EDGES.windows(2) {
        names.push(format!("{}-{}", short(pair[0]), short(pair[1])));
    }
    names.push(format!(">={}", short(SIZE_EDGES[SIZE_EDGES.len() - 1])));
    names
}

/// The start of the hour (UTC) a time falls in.
fn hour_of(time: Timestamp) -> i64 {
    time.0.div_euclid(3600) * 3600
}

/// Per run and category: (liquidations, debt repaid per debt asset).
type Tally = Vec<BTreeMap<String, (u64, BTreeMap<String, Num>)>>;

fn tally(runs: &[RunFile], category: impl Fn(&crate::runfile::LiquidationView) -> String) -> Tally {
    runs.iter()
        .map(|run| {
            let mut out: BTreeMap<String, (u64, BTreeMap<String, Num>)> = BTreeMap::new();
            for liquidation in &run.liquidations {
                let entry = out.entry(category(liquidation)).or_default();
                entry.0 += 1;
                let debt = entry.1.entry(liquidation.debt_asset.clone()).or_default();
                *debt = debt.plus(liquidation.debt());
            }
            out
        })
        .collect()
}

fn chart(
    runs: &[RunFile],
    tallies: &Tally,
    categories: &[(String, String)],
    title: &str,
    x_name: &str,
) -> Result<(String, Table), DiffError> {
    let series: Vec<(String, usize)> = runs
        .iter()
        .enumerate()
        .map(|(index, run)| (run.label(), index))
        .collect();
    // Many hours: a label every few bars, so they stay readable.
    let every = categories.len().div_ceil(12).max(1);
    let groups: Vec<BarGroup> = categories
        .iter()
        .enumerate()
        .map(|(index, (key, label))| BarGroup {
            label: if index % every == 0 {
                label.clone()
            } else {
                String::new()
            },
            values: tallies
                .iter()
                .map(|t| t.get(key).map_or(0.0, |(n, _)| *n as f64))
                .collect(),
        })
        .collect();
    let svg = charts::bar_chart(title, "liquidations", &series, &groups)?;
    let mut header = vec![x_name.to_owned()];
    for run in runs {
        header.push(format!("{}: liquidations", run.label()));
        header.push(format!("{}: debt repaid", run.label()));
    }
    let rows = categories
        .iter()
        .map(|(key, label)| {
            let mut row = vec![label.clone()];
            for tally in tallies {
                let (count, debt) = tally.get(key).cloned().unwrap_or_default();
                row.push(Num::from_int(count.into()).human(0));
                row.push(
                    debt.iter()
                        .map(|(asset, n)| format!("{} {asset}", n.human(0)))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            row
        })
        .collect();
    Ok((svg, (header, rows)))
}

/// The waterfall charts of `runs`: by hour and by size; none when no run liquidated anything.
pub fn charts(runs: &[RunFile]) -> Result<Vec<WaterfallChart>, DiffError> {
    let times: Vec<i64> = runs
        .iter()
        .flat_map(|run| run.liquidations.iter().map(|l| hour_of(l.time)))
        .collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return Ok(Vec::new());
    };
    // Every hour from the first liquidation to the last, quiet ones included: a gap is news.
    let hours: Vec<(String, String)> = (*first..=*last)
        .step_by(3600)
        .map(|start| {
            let label = charts::time_label(start as f64);
            (label.clone(), label)
        })
        .collect();
    let by_hour = tally(runs, |l| charts::time_label(hour_of(l.time) as f64));
    let (svg, table) = chart(
        runs,
        &by_hour,
        &hours,
        "liquidations per hour (UTC)",
        "hour (UTC)",
    )?;
    let mut out = vec![WaterfallChart {
        name: "waterfall-hour",
        title: "Liquidation waterfall by hour".to_owned(),
        svg,
        note: "Liquidations started in each hour (UTC), one bar per run; the table has the debt they repaid.".to_owned(),
        table,
    }];
    let names = size_names();
    let sizes: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(index, name)| (format!("{index}"), name.clone()))
        .collect();
    let by_size = tally(runs, |l| size_bucket(l.debt()).to_string());
    let (svg, table) = chart(
        runs,
        &by_size,
        &sizes,
        "liquidations by debt repaid (whole debt tokens)",
        "debt repaid",
    )?;
    out.push(WaterfallChart {
        name: "waterfall-size",
        title: "Liquidation waterfall by size".to_owned(),
        svg,
        note: "Liquidations by the debt each repaid, in whole tokens of its debt asset (DAI, USDC), buckets [low, high); the table sums the debt per bucket.".to_owned(),
        table,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_in_their_bucket() {
        assert_eq!(
            size_names(),
            ["<1000", "1000-10k", "10k-100k", "100k-1.0M", ">=1.0M"]
        );
        assert_eq!(size_bucket(Num::from_int(999)), 0);
        assert_eq!(size_bucket(Num::from_int(1_000)), 1);
        assert_eq!(size_bucket(Num::from_int(99_999)), 2);
        assert_eq!(size_bucket(Num::from_int(5_000_000)), 4);
        assert_eq!(hour_of(Timestamp(7_199)), 3_600);
    }
}
