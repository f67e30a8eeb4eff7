//! Rendering a [`Comparison`] as a terminal table, Markdown, or an HTML fragment.
//!
//! The renderers only lay out what [`crate::compare`] computed; they never recompute. Numbers are
//! shown rounded for people (the JSON form keeps them exact). HTML output escapes every string
//! that came from a file.

use std::fmt::Write as _;

use crate::compare::{Comparison, TotalRow};
use crate::runfile::Num;
use cascade_run::num::unit_decimals;

/// The output formats of `cascade diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned plain text for a terminal.
    Table,
    /// The stable JSON of `docs/diff.md`.
    Json,
    /// Markdown tables (pull requests).
    Markdown,
    /// A self-contained HTML page.
    Html,
}

/// The comparison in `format`.
pub fn render(comparison: &Comparison, format: Format) -> String {
    match format {
        Format::Table => table(comparison),
        Format::Json => comparison.to_json(),
        Format::Markdown => markdown(comparison),
        Format::Html => crate::report::page(
            &format!(
                "cascade diff: {} vs {}",
                comparison.a.label, comparison.b.label
            ),
            &html(comparison),
        ),
    }
}

/// A total for people: an amount in its unit's fixed decimals (`docs/diff.md`, "Amounts"), a
/// count as it is, with separators; `no price` for a liquidator bonus no liquidation could be
/// valued for, `n/a` for any other value that does not apply.
pub fn total_cell(metric: &str, unit: &str, n: Option<Num>) -> String {
    match n {
        Some(n) => total_text(unit, n),
        None if metric == "liquidator bonus" => "no price".to_owned(),
        None => "n/a".to_owned(),
    }
}

/// Units of totals that count things rather than measure an amount.
const COUNT_UNITS: [&str; 1] = ["rounds"];

/// `n` as a total of `unit` shows it (empty unit, or one of [`COUNT_UNITS`]: a count).
fn total_text(unit: &str, n: Num) -> String {
    if unit.is_empty() || COUNT_UNITS.contains(&unit) {
        n.human(2)
    } else {
        n.fixed(unit_decimals(unit))
    }
}

/// A sum of `unit` in its fixed decimals with the unit; a sum over several units (`None`) in
/// two decimals, said to be mixed.
fn unit_amount(n: Num, unit: Option<&str>) -> String {
    match unit {
        Some(unit) => n.amount(unit),
        None => format!("{} (mixed units)", n.fixed(2)),
    }
}

fn delta(unit: &str, n: Option<Num>) -> String {
    match n {
        None => "n/a".to_owned(),
        Some(n) if n.0 > 0 => format!("+{}", total_text(unit, n)),
        Some(n) => total_text(unit, n),
    }
}

fn metric(row: &TotalRow) -> String {
    if row.unit.is_empty() {
        row.metric.clone()
    } else {
        format!("{} ({})", row.metric, row.unit)
    }
}

/// The sections every format shows, as (title, header, rows).
/// Accounts listed per "liquidated in one run only" table of the human formats.
pub const ACCOUNTS_LISTED: usize = 50;

fn sections(c: &Comparison) -> Vec<(String, Vec<String>, Vec<Vec<String>>)> {
    let mut out = Vec::new();
    out.push((
        "Totals".to_owned(),
        vec!["".into(), "A".into(), "B".into(), "B - A".into()],
        c.totals
            .iter()
            .map(|row| {
                vec![
                    metric(row),
                    total_cell(&row.metric, &row.unit, row.a),
                    total_cell(&row.metric, &row.unit, row.b),
                    delta(&row.unit, row.delta),
                ]
            })
            .collect(),
    ));
    let verdict = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    out.push((
        format!(
            "Liquidations in both runs that changed ({})",
            c.liquidations.changed
        ),
        vec![
            "liquidation".into(),
            "verdict A".into(),
            "verdict B".into(),
            "collateral A".into(),
            "collateral B".into(),
            "debt A".into(),
            "debt B".into(),
        ],
        c.liquidation_changes
            .iter()
            .map(|change| {
                vec![
                    change.id.clone(),
                    verdict(&change.verdict_a),
                    verdict(&change.verdict_b),
                    change.collateral_a.amount(&change.collateral_unit),
                    change.collateral_b.amount(&change.collateral_unit),
                    change.debt_a.amount(&change.debt_unit),
                    change.debt_b.amount(&change.debt_unit),
                ]
            })
            .collect(),
    ));
    for (title, hits) in [
        ("Accounts liquidated in A only", &c.only_in_a),
        ("Accounts liquidated in B only", &c.only_in_b),
    ] {
        // The largest debts first; a large market lists thousands (`--format json` has all).
        let mut hits: Vec<&crate::compare::AccountHit> = hits.iter().collect();
        let debt = |hit: &crate::compare::AccountHit| {
            hit.debt_repaid
                .values()
                .fold(Num::ZERO, |sum, n| sum.plus(*n))
        };
        hits.sort_by_key(|hit| std::cmp::Reverse(debt(hit)));
        let shown = if hits.len() > ACCOUNTS_LISTED {
            format!(", the {ACCOUNTS_LISTED} with the most debt repaid; --format json lists all")
        } else {
            String::new()
        };
        let total = hits.len();
        hits.truncate(ACCOUNTS_LISTED);
        out.push((
            format!("{title} ({total}{shown})"),
            vec![
                "account".into(),
                "liquidations".into(),
                "collateral seized".into(),
                "debt repaid".into(),
            ],
            hits.iter()
                .map(|hit| {
                    let amounts = |map: &std::collections::BTreeMap<String, Num>| {
                        map.iter()
                            .map(|(asset, n)| n.amount(asset))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    vec![
                        hit.account.to_string(),
                        hit.liquidations.to_string(),
                        amounts(&hit.collateral_seized),
                        amounts(&hit.debt_repaid),
                    ]
                })
                .collect(),
        ));
    }
    out.push((
        "Accounts whose losses changed most (USD)".to_owned(),
        vec![
            "account".into(),
            "loss A".into(),
            "loss B".into(),
            "B - A".into(),
        ],
        c.loss_changes
            .iter()
            .map(|change| {
                vec![
                    change.account.to_string(),
                    total_text("USD", change.loss_a),
                    total_text("USD", change.loss_b),
                    delta("USD", Some(change.delta)),
                ]
            })
            .collect(),
    ));
    out.push((
        "By collateral asset".to_owned(),
        vec![
            "asset".into(),
            "liquidations A".into(),
            "liquidations B".into(),
            "collateral A".into(),
            "collateral B".into(),
            "debt A".into(),
            "debt B".into(),
        ],
        c.by_asset
            .iter()
            .map(|row| {
                vec![
                    row.asset.clone(),
                    row.liquidations_a.to_string(),
                    row.liquidations_b.to_string(),
                    row.collateral_a.amount(&row.asset),
                    row.collateral_b.amount(&row.asset),
                    unit_amount(row.debt_a, row.debt_unit.as_deref()),
                    unit_amount(row.debt_b, row.debt_unit.as_deref()),
                ]
            })
            .collect(),
    ));
    out.push((
        "By hour (UTC)".to_owned(),
        vec![
            "hour".into(),
            "liquidations A".into(),
            "liquidations B".into(),
            "collateral A".into(),
            "collateral B".into(),
        ],
        c.by_hour
            .iter()
            .map(|row| {
                vec![
                    row.hour.clone(),
                    row.liquidations_a.to_string(),
                    row.liquidations_b.to_string(),
                    unit_amount(row.collateral_a, row.collateral_unit.as_deref()),
                    unit_amount(row.collateral_b, row.collateral_unit.as_deref()),
                ]
            })
            .collect(),
    ));
    out
}

/// The counts a reader needs first: liquidations matched by identity, and how many totals moved.
pub fn summary_line(c: &Comparison) -> String {
    let l = &c.liquidations;
    let moved = c.totals.iter().filter(|row| row.a != row.b).count();
    format!(
        "summary: {} liquidations matched, {} only in A, {} only in B, {} changed ({} verdict{}); {} total{} moved",
        l.matched,
        l.only_in_a,
        l.only_in_b,
        l.changed,
        l.verdicts_changed,
        if l.verdicts_changed == 1 { "" } else { "s" },
        moved,
        if moved == 1 { "" } else { "s" }
    )
}

fn heading(c: &Comparison) -> Vec<String> {
    let short = |hash: &str| hash.chars().take(12).collect::<String>();
    let seq = |s: Option<u64>| s.map_or("-".to_owned(), |s| s.to_string());
    let compared = match &c.log_b {
        None => format!(
            "compared: seq {}..{} (the events both runs report on)",
            c.compared
                .first
                .map_or("start".to_owned(), |s| s.to_string()),
            c.compared.last.map_or("end".to_owned(), |s| s.to_string())
        ),
        Some(log) => format!(
            "B's log: seq {}..{}, content hash {} (another log: each run compared over its whole window)",
            seq(log.first_seq),
            seq(log.last_seq),
            short(&log.content_hash)
        ),
    };
    vec![
        summary_line(c),
        format!(
            "A: {} ({}, state {})",
            c.a.label,
            c.a.file,
            short(&c.a.state_hash)
        ),
        format!(
            "B: {} ({}, state {})",
            c.b.label,
            c.b.file,
            short(&c.b.state_hash)
        ),
        format!(
            "log: seq {}..{}, content hash {}",
            seq(c.log.first_seq),
            seq(c.log.last_seq),
            short(&c.log.content_hash)
        ),
        compared,
    ]
}

/// `header` and `rows` as aligned text lines: numbers (every column but the first when
/// `first_left`) right-aligned, columns two spaces apart.
pub fn aligned(header: &[String], rows: &[Vec<String>], first_left: bool) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(index, (cell, width))| {
                if index == 0 && first_left {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = String::new();
    for cells in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let _ = writeln!(out, "{}", line(cells));
    }
    out
}

/// Aligned plain text.
pub fn table(c: &Comparison) -> String {
    let mut out = String::new();
    for line in heading(c) {
        let _ = writeln!(out, "{line}");
    }
    for (title, header, rows) in sections(c) {
        let _ = writeln!(out, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(out, "  (none)");
            continue;
        }
        for line in aligned(&header, &rows, true).lines() {
            let _ = writeln!(out, "  {}", line.trim_end());
        }
    }
    out
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Markdown tables.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## cascade diff\n");
    for line in heading(c) {
        let _ = writeln!(out, "- {}", md_cell(&line));
    }
    for (title, header, rows) in sections(c) {
        let _ = write!(out, "\n{}", markdown_table(&title, &header, &rows));
    }
    out
}

/// One Markdown table with a `###` title; `(none)` when it has no rows.
pub fn markdown_table(title: &str, header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!("### {title}\n\n");
    if rows.is_empty() {
        out.push_str("(none)\n");
        return out;
    }
    let cells = |row: &[String]| {
        row.iter()
            .map(|cell| md_cell(cell))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let _ = writeln!(out, "| {} |", cells(header));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in rows {
        let _ = writeln!(out, "| {} |", cells(row));
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One HTML table with an `<h3>` title.
pub fn html_table(title: &str, header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!("<h3>{}</h3>\n", escape(title));
    if rows.is_empty() {
        out.push_str("<p class=\"none\">(none)</p>\n");
        return out;
    }
    out.push_str("<table>\n<thead><tr>");
    for (index, cell) in header.iter().enumerate() {
        let class = if index == 0 { "" } else { " class=\"num\"" };
        let _ = write!(out, "<th{class}>{}</th>", escape(cell));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (index, cell) in row.iter().enumerate() {
            let mut class = String::new();
            if index > 0 {
                class.push_str("num");
                if cell.starts_with('+') {
                    class.push_str(" up");
                } else if cell.starts_with('-') && cell.len() > 1 {
                    class.push_str(" down");
                }
            }
            let attribute = if class.is_empty() {
                String::new()
            } else {
                format!(" class=\"{class}\"")
            };
            let _ = write!(out, "<td{attribute}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The comparison as an HTML fragment (the report embeds it; `--format html` wraps it in a page).
pub fn html(c: &Comparison) -> String {
    let mut out = String::from("<ul class=\"runs\">\n");
    for line in heading(c) {
        let _ = writeln!(out, "<li>{}</li>", escape(&line));
    }
    out.push_str("</ul>\n");
    for (title, header, rows) in sections(c) {
        out.push_str(&html_table(&title, &header, &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_shows_its_unit_decimals_even_when_zero() {
        let zero = Some(Num::ZERO);
        assert_eq!(delta("DAI", zero), "0.00");
        assert_eq!(delta("WBTC", zero), "0.0000");
        assert_eq!(delta("rounds", zero), "0");
        assert_eq!(delta("", zero), "0");
        assert_eq!(delta("DAI", Num::parse("-1.5")), "-1.50");
        assert_eq!(delta("DAI", Num::parse("74789.68")), "+74,789.68");
        assert_eq!(delta("DAI", None), "n/a");
    }
}
