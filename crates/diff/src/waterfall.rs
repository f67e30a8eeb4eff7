//! The liquidation waterfall of a report: how many liquidations each run had per hour and per
//! size of debt repaid, with the exact counts and sums in a table under each chart.

use std::collections::BTreeMap;

use cascade_events::Timestamp;

use crate::DiffError;
use crate::charts::{self, BarGroup};
use crate::runfile::{LiquidationExt, Num, RunFile};

/// Widths of the time bins, seconds, with their names: the first that keeps the liquidations'
/// span within [`MOST_BINS`] bins (a crash of a day gets hours; two years of a market, months).
const BIN_WIDTHS: [(i64, &str); 6] = [
    (3_600, "hour"),
    (6 * 3_600, "6 hours"),
    (86_400, "day"),
    (7 * 86_400, "week"),
    (30 * 86_400, "30 days"),
    (365 * 86_400, "365 days"),
];

/// Most time bins charted.
const MOST_BINS: i64 = 72;

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

/// The start (UTC) of the bin of `width` seconds a time falls in.
fn bin_of(time: Timestamp, width: i64) -> i64 {
    time.0.div_euclid(width) * width
}

/// The narrowest bin width of [`BIN_WIDTHS`] that covers `first..=last` in at most
/// [`MOST_BINS`] bins.
fn bin_width(first: i64, last: i64) -> (i64, &'static str) {
    BIN_WIDTHS
        .iter()
        .copied()
        .find(|(width, _)| last.div_euclid(*width) - first.div_euclid(*width) < MOST_BINS)
        .unwrap_or(BIN_WIDTHS[BIN_WIDTHS.len() - 1])
}

/// Per run and category: (liquidations, debt repaid per debt asset).
type Tally = Vec<BTreeMap<String, (u64, BTreeMap<String, Num>)>>;

fn tally(
    runs: &[RunFile],
    category: impl Fn(&crate::runfile::LiquidationRecord) -> String,
) -> Tally {
    runs.iter()
        .map(|run| {
            let mut out: BTreeMap<String, (u64, BTreeMap<String, Num>)> = BTreeMap::new();
            for liquidation in &run.liquidations {
                let entry = out.entry(category(liquidation)).or_default();
                entry.0 += 1;
                let debt = entry
                    .1
                    .entry(liquidation.debt_asset.to_string())
                    .or_default();
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
    // At most eight labels: a time label is about 110 pixels wide.
    let every = categories.len().div_ceil(8).max(1);
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
                        .map(|(asset, n)| n.amount(asset))
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
    let times = runs
        .iter()
        .flat_map(|run| run.liquidations.iter().map(|l| l.time.0));
    let Some((first, last)) = times.fold(None, |span: Option<(i64, i64)>, t| {
        Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
    }) else {
        return Ok(Vec::new());
    };
    let (width, unit) = bin_width(first, last);
    let label = |start: i64| charts::time_label(start as f64);
    // Every bin from the first liquidation to the last, quiet ones included in the chart (a gap
    // is news); the table lists the bins with liquidations.
    let bins: Vec<(String, String)> = (bin_of(Timestamp(first), width)..=last)
        .step_by(width as usize)
        .map(|start| (label(start), label(start)))
        .collect();
    let by_time = tally(runs, |l| label(bin_of(l.time, width)));
    let (svg, (header, mut rows)) = chart(
        runs,
        &by_time,
        &bins,
        &format!("liquidations per {unit} (UTC)"),
        &format!("{unit} from (UTC)"),
    )?;
    rows.retain(|row| row.iter().skip(1).step_by(2).any(|count| count != "0"));
    let mut out = vec![WaterfallChart {
        name: "waterfall-time",
        title: format!("Liquidation waterfall by {unit}"),
        svg,
        note: format!(
            "Liquidations started in each {unit} (UTC; bins of a fixed width chosen so the span \
             from the first liquidation to the last fits in {MOST_BINS}), one bar per run; the \
             table lists the {unit}s with liquidations and the debt they repaid."
        ),
        table: (header, rows),
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
        assert_eq!(bin_of(Timestamp(7_199), 3_600), 3_600);
    }

    #[test]
    fn bins_widen_with_the_span() {
        assert_eq!(bin_width(0, 71 * 3_600), (3_600, "hour"));
        assert_eq!(bin_width(0, 72 * 3_600), (6 * 3_600, "6 hours"));
        // ETH-B's liquidations: 2021-01 .. 2022-06, about 75 weeks.
        assert_eq!(bin_width(1_610_000_000, 1_655_000_000).1, "30 days");
        assert_eq!(bin_width(0, 1_000 * 365 * 86_400).1, "365 days");
    }
}
