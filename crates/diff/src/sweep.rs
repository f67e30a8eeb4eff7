//! Sweep results as tables (text, Markdown, CSV, JSON) and, for two swept parameters, a heatmap.
//!
//! The engine runs the sweep; this module only lays the points out (`cascade_run::sweep` holds
//! what a sweep found). Numbers stay exact text except in the heatmap's colours.

use std::collections::BTreeMap;

use cascade_run::sweep::{PointResult, SweepAxisInfo};
use serde::Serialize;

use crate::DiffError;
use crate::charts;
use crate::render::{aligned, markdown_table};
use crate::runfile::Num;

/// A column of the sweep table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Simulated liquidations.
    Liquidations,
    /// Distinct accounts liquidated.
    Accounts,
    /// Collateral seized, per asset.
    Collateral,
    /// Debt repaid, per asset.
    Debt,
    /// Bad debt, per asset.
    BadDebt,
    /// Deepest cascade round.
    Depth,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 6] = [
        Metric::Liquidations,
        Metric::Accounts,
        Metric::Collateral,
        Metric::Debt,
        Metric::BadDebt,
        Metric::Depth,
    ];

    /// The name on the command line and in headers.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Liquidations => "liquidations",
            Metric::Accounts => "accounts",
            Metric::Collateral => "collateral",
            Metric::Debt => "debt",
            Metric::BadDebt => "bad-debt",
            Metric::Depth => "depth",
        }
    }

    /// The metric named `name`.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The metric of one point: exact text and its value summed over assets (for colours).
    fn of(self, point: &PointResult) -> (String, Num) {
        let per_asset = |map: &BTreeMap<String, String>| {
            let total = map
                .values()
                .filter_map(|v| Num::parse(v))
                .fold(Num::ZERO, Num::plus);
            let text = if map.is_empty() {
                "0".to_owned()
            } else {
                map.iter()
                    .map(|(asset, amount)| Num::parse(amount).unwrap_or_default().amount(asset))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (text, total)
        };
        match self {
            Metric::Liquidations => count(point.liquidations),
            Metric::Accounts => count(point.accounts_hit),
            Metric::Collateral => per_asset(&point.collateral_seized),
            Metric::Debt => per_asset(&point.debt_repaid),
            Metric::BadDebt => per_asset(&point.bad_debt),
            Metric::Depth => count(point.cascade_depth),
        }
    }
}

fn count(value: u64) -> (String, Num) {
    (value.to_string(), Num::from_int(value.into()))
}

/// Table rows: the swept values, then the metrics.
fn rows(
    axes: &[SweepAxisInfo],
    points: &[PointResult],
    metrics: &[Metric],
) -> (Vec<String>, Vec<Vec<String>>) {
    let header = axes
        .iter()
        .map(|a| a.key.clone())
        .chain(metrics.iter().map(|m| m.name().to_owned()))
        .collect();
    let rows = points
        .iter()
        .map(|point| {
            point
                .values
                .iter()
                .map(ToString::to_string)
                .chain(metrics.iter().map(|m| m.of(point).0))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Aligned text.
pub fn table(axes: &[SweepAxisInfo], points: &[PointResult], metrics: &[Metric]) -> String {
    let (header, rows) = rows(axes, points, metrics);
    aligned(&header, &rows, false)
}

/// Markdown.
pub fn markdown(axes: &[SweepAxisInfo], points: &[PointResult], metrics: &[Metric]) -> String {
    let (header, rows) = rows(axes, points, metrics);
    markdown_table("Sweep", &header, &rows)
}

/// CSV with exact numbers: one column per swept parameter, then per metric and asset.
pub fn csv(axes: &[SweepAxisInfo], points: &[PointResult]) -> String {
    let assets = |pick: fn(&PointResult) -> &BTreeMap<String, String>| {
        let mut all: Vec<String> = points
            .iter()
            .flat_map(|p| pick(p).keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    };
    let collateral = assets(|p| &p.collateral_seized);
    let debt = assets(|p| &p.debt_repaid);
    let bad = assets(|p| &p.bad_debt);
    let mut header: Vec<String> = axes.iter().map(|a| a.key.clone()).collect();
    header.extend([
        "liquidations".to_owned(),
        "accounts".to_owned(),
        "depth".to_owned(),
    ]);
    header.extend(collateral.iter().map(|a| format!("collateral_{a}")));
    header.extend(debt.iter().map(|a| format!("debt_{a}")));
    header.extend(bad.iter().map(|a| format!("bad_debt_{a}")));
    let mut out = header.join(",");
    out.push('\n');
    for point in points {
        let mut cells: Vec<String> = point.values.iter().map(ToString::to_string).collect();
        cells.push(point.liquidations.to_string());
        cells.push(point.accounts_hit.to_string());
        cells.push(point.cascade_depth.to_string());
        let get = |map: &BTreeMap<String, String>, asset: &String| {
            map.get(asset).cloned().unwrap_or_else(|| "0".to_owned())
        };
        cells.extend(collateral.iter().map(|a| get(&point.collateral_seized, a)));
        cells.extend(debt.iter().map(|a| get(&point.debt_repaid, a)));
        cells.extend(bad.iter().map(|a| get(&point.bad_debt, a)));
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The stable JSON of a sweep: the axes and every point.
pub fn json(axes: &[SweepAxisInfo], points: &[PointResult]) -> String {
    #[derive(Serialize)]
    struct Sweep<'a> {
        schema_version: u32,
        axes: &'a [SweepAxisInfo],
        points: &'a [PointResult],
    }
    let mut text = serde_json::to_string_pretty(&Sweep {
        schema_version: 1,
        axes,
        points,
    })
    .expect("a sweep holds only strings, integers, maps and lists");
    text.push('\n');
    text
}

/// A heatmap of `metric` over two swept parameters (first axis across, second down); `None`
/// unless there are exactly two axes.
pub fn heatmap(
    axes: &[SweepAxisInfo],
    points: &[PointResult],
    metric: Metric,
) -> Result<Option<String>, DiffError> {
    let [across, down] = axes else {
        return Ok(None);
    };
    let x: Vec<String> = across.values.iter().map(ToString::to_string).collect();
    let y: Vec<String> = down.values.iter().map(ToString::to_string).collect();
    let mut values = vec![vec![None; x.len()]; y.len()];
    let mut labels = vec![vec![String::new(); x.len()]; y.len()];
    for point in points {
        let column = across.values.iter().position(|v| *v == point.values[0]);
        let row = down.values.iter().position(|v| *v == point.values[1]);
        if let (Some(column), Some(row)) = (column, row) {
            let (_, value) = metric.of(point);
            values[row][column] = Some(value.to_f64());
            labels[row][column] = charts::short_number(value.to_f64());
        }
    }
    charts::heatmap(
        &format!("{} by {} and {}", metric.name(), across.key, down.key),
        &across.key,
        &x,
        &down.key,
        &y,
        &values,
        &labels,
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(mat: &str, chop: &str, liquidations: u64, bad: &str) -> PointResult {
        PointResult {
            values: vec![mat.parse().unwrap(), chop.parse().unwrap()],
            liquidations,
            accounts_hit: liquidations,
            collateral_seized: BTreeMap::from([("WETH".to_owned(), "12.5".to_owned())]),
            debt_repaid: BTreeMap::from([("DAI".to_owned(), "1000".to_owned())]),
            bad_debt: BTreeMap::from([("DAI".to_owned(), bad.to_owned())]),
            cascade_depth: 1,
            state_hash: "00".to_owned(),
        }
    }

    fn axis(param: &'static str, values: &[&str]) -> SweepAxisInfo {
        SweepAxisInfo {
            key: format!("maker.ETH-B.{param}"),
            protocol: cascade_events::Protocol::Maker,
            market: cascade_run::scenario::MarketSel::One(cascade_events::Id::name("ETH-B")),
            param,
            values: values.iter().map(|v| v.parse().unwrap()).collect(),
        }
    }

    fn grid() -> (Vec<SweepAxisInfo>, Vec<PointResult>) {
        let axes = vec![axis("mat", &["1.3", "1.4"]), axis("chop", &["0.1"])];
        let points = vec![point("1.3", "0.1", 3, "0"), point("1.4", "0.1", 7, "250.5")];
        (axes, points)
    }

    #[test]
    fn tables_show_values_then_metrics() {
        let (axes, points) = grid();
        let text = table(&axes, &points, &[Metric::Liquidations, Metric::BadDebt]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("maker.ETH-B.mat") && lines[0].ends_with("bad-debt"));
        assert!(
            lines[2].trim_start().starts_with("1.4") && lines[2].ends_with("250.50 DAI"),
            "{}",
            lines[2]
        );
        let csv = csv(&axes, &points);
        assert_eq!(
            csv.lines().next().unwrap(),
            "maker.ETH-B.mat,maker.ETH-B.chop,liquidations,accounts,depth,collateral_WETH,debt_DAI,bad_debt_DAI"
        );
        assert_eq!(csv.lines().nth(2).unwrap(), "1.4,0.1,7,7,1,12.5,1000,250.5");
        let json: serde_json::Value = serde_json::from_str(&json(&axes, &points)).unwrap();
        assert_eq!(json["points"][1]["liquidations"], 7);
        assert_eq!(json["axes"][0]["param"], "mat");
        assert!(markdown(&axes, &points, &[Metric::Depth]).contains("| 1.3 | 0.1 | 1 |"));
        assert_eq!(Metric::parse("bad-debt"), Some(Metric::BadDebt));
        assert_eq!(Metric::parse("nope"), None);
    }

    #[test]
    fn a_heatmap_needs_exactly_two_axes() {
        let (axes, points) = grid();
        let svg = heatmap(&axes, &points, Metric::Liquidations)
            .unwrap()
            .unwrap();
        assert!(svg.contains("liquidations by maker.ETH-B.mat and maker.ETH-B.chop"));
        assert!(
            svg.contains(">\n7\n</text>") && svg.contains(">\n3\n</text>"),
            "cell labels"
        );
        assert!(
            heatmap(&axes[..1], &points, Metric::Liquidations)
                .unwrap()
                .is_none()
        );
    }
}
