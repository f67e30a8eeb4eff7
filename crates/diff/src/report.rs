//! The post-mortem report: several runs of one log (usually the historical replay first, then
//! counterfactuals) as one self-contained HTML page with SVG charts, and as Markdown.
//!
//! The HTML embeds its CSS and its charts inline: it opens offline, from a mail attachment or a
//! CI artifact, and never fetches anything. The Markdown has the same tables and links the charts
//! as SVG files written beside it. The report only arranges what the runs and
//! [`crate::compare`] hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use cascade_events::Timestamp;

use crate::DiffError;
use crate::charts::{self, BarGroup, BeforeAfter, Line};
use crate::compare::{Comparison, SeqRange, TotalRow, compare};
use crate::render::{self, escape, html_table, markdown_table};
use cascade_run::{HealthSnapshot, Moment, TimelinePoint};

use crate::runfile::{LiquidationExt, Num, RunFile, price_at};
use crate::story;

/// Most markets and collateral assets charted (the ones with the most liquidations).
const MOST_CHARTED: usize = 3;

const CSS: &str = r#"
:root { --ink: #1e2230; --muted: #5d6475; --line: #dde1e8; --bg: #f6f7f9; --card: #ffffff; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 24px 60px; }
header h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
header p { color: var(--muted); margin: 0 0 20px; }
section { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 22px; margin: 18px 0; box-shadow: 0 1px 2px rgba(20, 30, 50, 0.04); }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--muted); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { font-weight: 600; color: var(--muted); background: #fafbfc; }
td.num, th.num { text-align: right; white-space: nowrap; }
td:first-child { min-width: 11em; }
td.up { color: #b3261e; } td.down { color: #1b7f4b; }
tbody tr:hover { background: #fafbfe; }
.chart svg { width: 100%; height: auto; display: block; }
.chart { margin: 8px 0 18px; }
.note { color: var(--muted); font-size: 13px; }
.none { color: var(--muted); }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 6px;
  vertical-align: -1px; }
ul.runs { padding-left: 18px; margin: 4px 0 8px; color: var(--muted); font-size: 13px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
details > summary { cursor: pointer; font-weight: 600; margin: 6px 0; }
"#;

/// A complete HTML page around `body`, with the report's stylesheet.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// A built report.
#[derive(Clone, Debug)]
pub struct Report {
    /// Its title.
    pub title: String,
    /// The self-contained HTML page.
    pub html: String,
    /// The Markdown version; it links the charts as `<chart_prefix>.<name>.svg`.
    pub markdown: String,
    /// The charts as `(name, svg)`, for writing beside the Markdown.
    pub charts: Vec<(String, String)>,
}

/// One chart with where it appears.
struct Chart {
    name: String,
    title: String,
    svg: String,
    note: String,
    /// Exact numbers behind the chart, shown under it: (caption, header, rows).
    table: Option<(String, Vec<String>, Vec<Vec<String>>)>,
}

/// Builds the report of `runs` (the first is the reference the others are compared with).
/// `chart_prefix` is how the Markdown names the chart files.
pub fn build(
    runs: &[RunFile],
    title: Option<&str>,
    chart_prefix: &str,
) -> Result<Report, DiffError> {
    if runs.is_empty() {
        return Err(DiffError::NoRuns);
    }
    for run in &runs[1..] {
        crate::compare::same_log(&runs[0], run)?;
    }
    // Every table and chart covers the events all runs report on.
    let range = runs
        .iter()
        .map(SeqRange::of)
        .reduce(SeqRange::intersect)
        .unwrap_or_default();
    let runs: Vec<RunFile> = runs.iter().map(|run| restrict(run, range)).collect();
    let runs = &runs[..];
    let reference = &runs[0];
    let comparisons: Vec<Comparison> = runs[1..]
        .iter()
        .map(|run| compare(reference, run))
        .collect::<Result<_, _>>()?;
    // Each other counterfactual against the baseline, the fair reference, when the first run is
    // not already the baseline.
    let baseline = crate::accounts::baseline(runs).filter(|b| *b > 0);
    let against_baseline: Vec<Comparison> = baseline
        .map(|b| {
            runs.iter()
                .enumerate()
                .filter(|(index, run)| *index != b && *index > 0 && run.is_counterfactual())
                .map(|(_, run)| compare(&runs[b], run))
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let account_tables: Vec<_> = runs.iter().filter_map(crate::accounts::table).collect();
    let before_after = crate::accounts::before_after(runs);
    let labels: Vec<String> = runs.iter().map(RunFile::label).collect();
    let title = title.map_or_else(
        || format!("Post-mortem: {}", labels.join(" vs ")),
        str::to_owned,
    );
    let charts = build_charts(runs)?;
    let key_rows = key_numbers(runs, &comparisons);
    let key_header: Vec<String> = std::iter::once(String::new())
        .chain(labels.iter().cloned())
        .collect();

    let mut html = String::new();
    let _ = writeln!(
        html,
        "<header><h1>{}</h1><p>{} run{} of one log (content hash <code>{}</code>), compared over seq {}..{}: the events every run reports on</p></header>",
        escape(&title),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        escape(&short_hash(&reference.log.content_hash)),
        seq_text(range.first.or(reference.log.first_seq)),
        seq_text(range.last.or(reference.log.last_seq)),
    );
    let story = story_sections(runs, &comparisons);
    html.push_str("<section><h2>What happened</h2>\n");
    for paragraph in &story.paragraphs {
        let _ = writeln!(html, "<p>{}</p>", escape(paragraph));
    }
    html.push_str("</section>\n");
    for (title, header, rows) in &story.tables {
        html.push_str("<section>");
        html.push_str(&html_table(title, header, rows));
        html.push_str("</section>\n");
    }
    html.push_str("<section><h2>Runs</h2>\n");
    html.push_str(&html_runs(runs));
    html.push_str("</section>\n<section><h2>Key numbers</h2>\n");
    html.push_str(&html_table("Totals per run", &key_header, &key_rows));
    html.push_str(
        "<p class=\"note\">Liquidator bonus: the collateral the owners lost (sold by the simulated \
         liquidator; seized, for recorded liquidations) at the protocol's oracle price, less the debt \
         it cleared. For recorded Maker liquidations an upper bound: the export has the collateral \
         moved to the auction, not what the auction sold.</p>\n",
    );
    html.push_str("</section>\n");
    for chart in &charts {
        let table = chart
            .table
            .as_ref()
            .map(|(caption, header, rows)| html_table(caption, header, rows))
            .unwrap_or_default();
        let _ = write!(
            html,
            "<section class=\"chart\" id=\"chart-{}\"><h2>{}</h2>\n{}\n<p class=\"note\">{}</p>{}</section>\n",
            escape(&chart.name),
            escape(&chart.title),
            chart.svg,
            escape(&chart.note),
            table
        );
    }
    let headed = comparisons
        .iter()
        .map(|c| (c, format!("{} vs {}", c.a.label, c.b.label)))
        .chain(against_baseline.iter().map(|c| {
            let heading = format!(
                "{} vs {} (the baseline: the fair reference)",
                c.b.label, c.a.label
            );
            (c, heading)
        }));
    for (comparison, heading) in headed {
        let _ = write!(
            html,
            "<section><h2>{}</h2>\n{}</section>\n",
            escape(&heading),
            render::html(comparison)
        );
    }
    if let Some(table) = &before_after {
        let _ = writeln!(
            html,
            "<section id=\"accounts-before-after\">{}<p class=\"note\">{}</p></section>",
            html_table(&table.caption, &table.header, &table.rows),
            escape(&table.note)
        );
    }
    for (title, header, rows) in &account_tables {
        html.push_str("<section>");
        html.push_str(&html_table(title, header, rows));
        html.push_str("</section>\n");
    }
    for (index, run) in runs.iter().enumerate() {
        if let Some(chains) = chains_table(run) {
            let _ = write!(
                html,
                "<section><h2>Cascade chains behind the largest losses: {}</h2>\n{}</section>\n",
                escape(&labels[index]),
                html_table(
                    "Largest losses, each with its chain of triggers",
                    &chains.0,
                    &chains.1
                )
            );
        }
    }
    html.push_str("<p class=\"note\">Generated by <code>cascade report</code>. Charts are SVG drawn in Rust; this page needs no network.</p>\n");

    let mut markdown = format!("# {title}\n\n");
    let _ = writeln!(
        markdown,
        "{} runs of one log (content hash `{}`), compared over seq {}..{}: the events every run reports on.\n",
        runs.len(),
        short_hash(&reference.log.content_hash),
        seq_text(range.first.or(reference.log.first_seq)),
        seq_text(range.last.or(reference.log.last_seq))
    );
    markdown.push_str("## What happened\n\n");
    for paragraph in &story.paragraphs {
        let _ = writeln!(markdown, "{paragraph}\n");
    }
    for (title, header, rows) in &story.tables {
        markdown.push_str(&markdown_table(title, header, rows));
        markdown.push('\n');
    }
    let (run_header, run_rows) = run_rows(runs);
    markdown.push_str(&markdown_table("Runs", &run_header, &run_rows));
    markdown.push('\n');
    markdown.push_str(&markdown_table("Key numbers", &key_header, &key_rows));
    for chart in &charts {
        let _ = write!(
            markdown,
            "\n### {}\n\n![{}]({chart_prefix}.{}.svg)\n\n{}\n",
            chart.title, chart.title, chart.name, chart.note
        );
        if let Some((caption, header, rows)) = &chart.table {
            markdown.push('\n');
            markdown.push_str(&markdown_table(caption, header, rows));
        }
    }
    for comparison in comparisons.iter().chain(&against_baseline) {
        let _ = write!(markdown, "\n{}", render::markdown(comparison));
    }
    if let Some(table) = &before_after {
        markdown.push('\n');
        markdown.push_str(&markdown_table(&table.caption, &table.header, &table.rows));
        let _ = writeln!(markdown, "\n{}", table.note);
    }
    for (title, header, rows) in &account_tables {
        markdown.push('\n');
        markdown.push_str(&markdown_table(title, header, rows));
    }
    for (index, run) in runs.iter().enumerate() {
        if let Some((header, rows)) = chains_table(run) {
            markdown.push('\n');
            markdown.push_str(&markdown_table(
                &format!(
                    "Cascade chains behind the largest losses: {}",
                    labels[index]
                ),
                &header,
                &rows,
            ));
        }
    }
    Ok(Report {
        html: page(&title, &html),
        title,
        markdown,
        charts: charts.into_iter().map(|c| (c.name, c.svg)).collect(),
    })
}

/// The first screen: a paragraph per run and per run pair, and the verdict tables of the
/// historical runs.
struct Story {
    paragraphs: Vec<String>,
    tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
}

fn story_sections(runs: &[RunFile], comparisons: &[Comparison]) -> Story {
    let mut paragraphs: Vec<String> = runs.iter().map(story::run_paragraph).collect();
    paragraphs.extend(comparisons.iter().map(story::pair_paragraph));
    let mut tables = Vec::new();
    for run in runs {
        let differences = story::snapshot_differences(run);
        if !differences.is_empty() {
            tables.push((
                format!(
                    "Snapshots that differed from the rebuilt state: {} (the first {} shown; {})",
                    story::count(
                        run.snapshot_differences.count,
                        "account and asset difference"
                    ),
                    differences.len(),
                    run.label()
                ),
                story::snapshot_differences_header(),
                differences,
            ));
        }
        let causes = run.episodes_by_cause();
        if !causes.is_empty() {
            tables.push((
                format!(
                    "Unsafe for more than {} s and never liquidated, by cause ({}; docs/fidelity.md)",
                    run.totals.unsafe_threshold_seconds,
                    run.label()
                ),
                ["cause", "episodes", "accounts", "hours"]
                    .map(str::to_owned)
                    .to_vec(),
                causes
                    .iter()
                    .map(|group| {
                        vec![
                            group.cause.name().to_owned(),
                            Num::from_int(group.episodes.into()).human(0),
                            Num::from_int(group.accounts.into()).human(0),
                            format!(
                                "{}.{}",
                                group.seconds / 3600,
                                group.seconds % 3600 * 10 / 3600
                            ),
                        ]
                    })
                    .collect(),
            ));
        }
        let Some(story::Verdicts { counts, worst }) = story::verdicts(run) else {
            continue;
        };
        let judged: u64 = counts.iter().map(|(_, n)| n).sum();
        tables.push((
            format!(
                "Verdicts of the {} recorded ({})",
                story::count(judged, "liquidation"),
                run.label()
            ),
            vec!["verdict".to_owned(), "liquidations".to_owned()],
            counts
                .into_iter()
                .map(|(verdict, n)| vec![verdict, Num::from_int(n.into()).human(0)])
                .collect(),
        ));
        if !worst.is_empty() {
            tables.push((
                format!(
                    "Worst cases: the {} not explained with the largest debt ({})",
                    story::count(worst.len() as u64, "liquidation"),
                    run.label()
                ),
                story::worst_header(),
                worst,
            ));
        }
    }
    Story { paragraphs, tables }
}

/// `run` with only the liquidations and timeline points inside `range`, reporting on `range`.
fn restrict(run: &RunFile, range: SeqRange) -> RunFile {
    let mut run = run.clone();
    run.liquidations.retain(|l| range.contains(l.seq));
    run.timeline.retain(|p| range.contains(p.seq));
    run.health_over_time.retain(|h| range.contains(h.seq));
    run.window.first_seq = range.first;
    run.window.last_seq = range.last;
    run
}

fn seq_text(seq: Option<u64>) -> String {
    seq.map_or("-".to_owned(), |s| s.to_string())
}

fn short_hash(hash: &str) -> String {
    hash.chars().take(16).collect()
}

/// The scenario's changes, as the engine wrote them (`changes`), else its description.
fn changes(run: &RunFile) -> String {
    let Some(scenario) = &run.scenario else {
        return "recorded liquidations, as they happened".to_owned();
    };
    if !scenario.changes.is_empty() {
        return scenario.changes.join("; ");
    }
    scenario.description.clone().unwrap_or_default()
}

fn run_rows(runs: &[RunFile]) -> (Vec<String>, Vec<Vec<String>>) {
    let header = [
        "run",
        "what changed",
        "liquidations compared",
        "file",
        "state hash",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = runs
        .iter()
        .map(|run| {
            vec![
                run.label(),
                changes(run),
                run.liquidations.len().to_string(),
                run.path.clone(),
                short_hash(&run.state_hash),
            ]
        })
        .collect();
    (header, rows)
}

fn html_runs(runs: &[RunFile]) -> String {
    let (header, rows) = run_rows(runs);
    let mut out = String::from("<table>\n<thead><tr>");
    for cell in &header {
        let _ = write!(out, "<th>{}</th>", escape(cell));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (index, row) in rows.iter().enumerate() {
        out.push_str("<tr>");
        for (column, cell) in row.iter().enumerate() {
            if column == 0 {
                let _ = write!(
                    out,
                    "<td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>",
                    charts::css_color(index),
                    escape(cell)
                );
            } else if column >= 3 {
                let _ = write!(out, "<td><code>{}</code></td>", escape(cell));
            } else {
                let _ = write!(out, "<td>{}</td>", escape(cell));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// Rows of the totals, one column per run: run 0's values come from the first comparison (or a
/// comparison of run 0 with itself when it is alone).
fn key_numbers(runs: &[RunFile], comparisons: &[Comparison]) -> Vec<Vec<String>> {
    let own;
    let firsts: &[TotalRow] = match comparisons.first() {
        Some(first) => &first.totals,
        None => {
            own = compare(&runs[0], &runs[0])
                .map(|c| c.totals)
                .unwrap_or_default();
            &own
        }
    };
    let mut metrics: Vec<(String, String)> = Vec::new();
    let mut values: BTreeMap<(String, String), Vec<Option<Num>>> = BTreeMap::new();
    let mut note = |row: &TotalRow, column: usize, value: Option<Num>| {
        let key = (row.metric.clone(), row.unit.clone());
        if !metrics.contains(&key) {
            metrics.push(key.clone());
        }
        let entry = values.entry(key).or_insert_with(|| vec![None; runs.len()]);
        entry[column] = value;
    };
    for row in firsts {
        note(row, 0, row.a);
    }
    for (index, comparison) in comparisons.iter().enumerate() {
        for row in &comparison.totals {
            note(row, 0, row.a);
            note(row, index + 1, row.b);
        }
    }
    metrics
        .iter()
        .map(|key| {
            let name = if key.1.is_empty() {
                key.0.clone()
            } else {
                format!("{} ({})", key.0, key.1)
            };
            std::iter::once(name)
                .chain(
                    values[key]
                        .iter()
                        .map(|v| render::total_cell(&key.0, &key.1, *v)),
                )
                .collect()
        })
        .collect()
}

/// The markets (protocol, market) with the most liquidations over all runs, most first.
fn busiest<F: Fn(&crate::runfile::LiquidationRecord) -> String>(
    runs: &[RunFile],
    key: F,
) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs {
        for liquidation in &run.liquidations {
            *counts.entry(key(liquidation)).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(MOST_CHARTED)
        .map(|(k, _)| k)
        .collect()
}

/// What a timeline chart shows of each point of a market.
#[derive(Clone, Copy)]
enum TimelineMetric {
    /// Accounts liquidatable (`accounts_unsafe`).
    AccountsUnsafe,
    /// Debt of those accounts (`debt_at_risk`, base currency).
    DebtAtRisk,
    /// Debt of underwater accounts beyond their collateral (`bad_debt`, base currency).
    BadDebt,
}

impl TimelineMetric {
    fn value(self, point: &TimelinePoint) -> Option<Num> {
        match self {
            TimelineMetric::AccountsUnsafe => Some(Num::from_int(point.accounts_unsafe.into())),
            TimelineMetric::DebtAtRisk => Some(Num::of(&point.debt_at_risk)),
            TimelineMetric::BadDebt => Some(Num::of(&point.bad_debt)),
        }
    }
}

/// One timeline metric of one market over time, one line per run: how the crisis built up and
/// how long it lasted. `None` when no run's timeline has a value of it for that market.
fn timeline_chart(
    runs: &[RunFile],
    (protocol, market): &(String, String),
    number: usize,
    metric: TimelineMetric,
) -> Result<Option<Chart>, DiffError> {
    let series = |run: &RunFile| -> Vec<(Timestamp, Num)> {
        run.timeline
            .iter()
            .filter(|p| &p.protocol == protocol && &p.market == market)
            .filter_map(|p| metric.value(p).map(|value| (p.time, value)))
            .collect()
    };
    let lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(color, run)| Line {
            label: run.label(),
            color,
            points: series(run)
                .into_iter()
                .map(|(time, value)| (time.0 as f64, value.to_f64()))
                .collect(),
            step: true,
            marks: Vec::new(),
            mark_unit: String::new(),
            dashed: color > 0,
        })
        .filter(|line| !line.points.is_empty())
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let peak = runs
        .iter()
        .flat_map(|run| {
            series(run)
                .into_iter()
                .map(move |(time, value)| (value, run.label(), time))
        })
        .max_by_key(|(value, _, time)| (*value, std::cmp::Reverse(time.0)));
    let peak = peak.filter(|(value, _, _)| !value.is_zero());
    let (name, title, y_label, what, peak_text) = match metric {
        TimelineMetric::AccountsUnsafe => (
            "unsafe",
            "accounts liquidatable over time",
            "accounts",
            "Accounts below health 1 at each check of the market (the runs' timelines).",
            peak.map(|(value, label, time)| {
                format!(
                    " Peak: {} ({label}, {}).",
                    story::count(value.to_f64() as u64, "account"),
                    time.to_rfc3339()
                )
            }),
        ),
        TimelineMetric::DebtAtRisk => (
            "debt-at-risk",
            "debt at risk over time",
            "debt at risk (base currency)",
            "Debt of the accounts below health 1 at each check, in the protocol's base currency (Maker: DAI).",
            peak.map(|(value, label, time)| {
                format!(
                    " Peak: {} ({label}, {}).",
                    value.human(2),
                    time.to_rfc3339()
                )
            }),
        ),
        TimelineMetric::BadDebt => (
            "bad-debt",
            "bad debt over time",
            "bad debt (base currency)",
            "Debt of underwater accounts beyond their collateral at each check, in the protocol's base currency (Maker: DAI).",
            peak.map(|(value, label, time)| {
                format!(
                    " Peak: {} ({label}, {}).",
                    value.human(2),
                    time.to_rfc3339()
                )
            }),
        ),
    };
    Ok(Some(Chart {
        name: format!("{name}-{number}"),
        title: format!("{protocol} {market}: {title}"),
        svg: charts::time_chart(
            &format!("{protocol} {market} {title}"),
            y_label,
            &lines,
            false,
        )?,
        note: format!(
            "{what}{}",
            peak_text.unwrap_or_else(|| " None in any run.".to_owned())
        ),
        table: None,
    }))
}

fn build_charts(runs: &[RunFile]) -> Result<Vec<Chart>, DiffError> {
    let mut out = Vec::new();
    let mut markets = busiest(runs, |l| format!("{}\u{1f}{}", l.protocol, l.market));
    if markets.is_empty() {
        // No liquidation anywhere: still chart the first market of the timeline.
        if let Some(point) = runs.iter().flat_map(|r| r.timeline.first()).next() {
            markets.push(format!("{}\u{1f}{}", point.protocol, point.market));
        }
    }
    for (index, market) in markets.iter().enumerate() {
        let (protocol, name) = market.split_once('\u{1f}').unwrap_or((market, ""));
        let key = (protocol.to_owned(), name.to_owned());
        // A market priced per asset (an Aave pool) has no one oracle price: chart the price of
        // the collateral liquidated most in it, with the liquidations of that collateral.
        let asset = runs
            .iter()
            .all(|run| !run.prices().contains_key(&key))
            .then(|| {
                busiest(runs, |l| {
                    if l.protocol.name() == key.0 && l.market.to_string() == key.1 {
                        l.collateral_name().to_owned()
                    } else {
                        String::new()
                    }
                })
                .into_iter()
                .find(|a| !a.is_empty())
            })
            .flatten();
        let mut lines = Vec::new();
        for (color, run) in runs.iter().enumerate() {
            let series = match &asset {
                Some(asset) => run.asset_prices(&key, asset),
                None => run.prices().remove(&key).unwrap_or_default(),
            };
            if series.is_empty() {
                continue;
            }
            let series = &series;
            let marks = run
                .liquidations
                .iter()
                .filter(|l| l.protocol.name() == key.0 && l.market.to_string() == key.1)
                .filter(|l| asset.as_deref().is_none_or(|a| l.collateral_name() == a))
                .filter_map(|l| {
                    price_at(series, l.seq).map(|price| charts::Mark {
                        x: l.time.0 as f64,
                        y: price.to_f64(),
                        size: l.debt().to_f64(),
                        title: format!(
                            "{} at {}: {} seized, {} repaid",
                            l.account,
                            l.time.to_rfc3339(),
                            l.collateral().amount(&l.collateral_name()),
                            l.debt().amount(&l.debt_asset.to_string())
                        ),
                    })
                })
                .collect();
            let mark_unit = run
                .liquidations
                .iter()
                .find(|l| l.protocol.name() == key.0 && l.market.to_string() == key.1)
                .map(|l| l.debt_asset.to_string())
                .unwrap_or_default();
            lines.push(Line {
                label: run.label(),
                color,
                points: series
                    .iter()
                    .map(|(_, t, p)| (t.0 as f64, p.to_f64()))
                    .collect(),
                step: true,
                marks,
                mark_unit,
                dashed: color > 0,
            });
        }
        out.push(Chart {
            name: format!("price-{}", index + 1),
            title: match &asset {
                Some(asset) => format!(
                    "{protocol} {name}: {asset} oracle price, liquidations of {asset} collateral marked"
                ),
                None => format!("{protocol} {name}: oracle price, liquidations marked"),
            },
            svg: charts::time_chart(
                &match &asset {
                    Some(asset) => format!("{protocol} {name}: {asset} price the protocol reads"),
                    None => format!("{protocol} {name} price the protocol reads"),
                },
                "price (USD)",
                &lines,
                false,
            )?,
            note: format!("Each circle is one liquidation at the oracle price of that moment, its area by the debt repaid; hover for the account and amounts. Beyond {} liquidations a run shows its {} largest one by one and the others summed per stretch of time. Dashed lines are counterfactual runs.", charts::MARKS_DRAWN, charts::MARKS_DRAWN / 2),
            table: None,
        });
        for metric in [
            TimelineMetric::AccountsUnsafe,
            TimelineMetric::DebtAtRisk,
            TimelineMetric::BadDebt,
        ] {
            if let Some(chart) = timeline_chart(runs, &key, index + 1, metric)? {
                out.push(chart);
            }
        }
    }
    for (index, asset) in busiest(runs, |l| l.collateral_name().to_owned())
        .iter()
        .enumerate()
    {
        let lines: Vec<Line> = runs
            .iter()
            .enumerate()
            .map(|(color, run)| {
                let mut total = Num::ZERO;
                let mut points = Vec::new();
                for liquidation in run
                    .liquidations
                    .iter()
                    .filter(|l| l.collateral_name() == *asset)
                {
                    if points.is_empty() {
                        points.push((liquidation.time.0 as f64, 0.0));
                    }
                    total = total.plus(liquidation.collateral());
                    points.push((liquidation.time.0 as f64, total.to_f64()));
                }
                Line {
                    label: run.label(),
                    color,
                    points,
                    step: true,
                    marks: Vec::new(),
                    mark_unit: String::new(),
                    dashed: false,
                }
            })
            .collect();
        out.push(Chart {
            name: format!("cumulative-{}", index + 1),
            title: format!("Cumulative {asset} liquidated"),
            svg: charts::time_chart(
                &format!("cumulative {asset} liquidated"),
                asset,
                &lines,
                true,
            )?,
            note: "Collateral seized over time, summed; one line per run.".to_owned(),
            table: None,
        });
    }
    if let Some(chart) = rounds_chart(runs)? {
        out.push(chart);
    }
    for chart in crate::waterfall::charts(runs)? {
        out.push(Chart {
            name: chart.name.to_owned(),
            title: chart.title,
            svg: chart.svg,
            note: chart.note,
            table: Some((
                "Liquidations and debt repaid".to_owned(),
                chart.table.0,
                chart.table.1,
            )),
        });
    }
    let mut charted = 0;
    for market in &markets {
        let (protocol, name) = market.split_once('\u{1f}').unwrap_or((market, ""));
        if let Some(chart) = health_chart(runs, protocol, name, charted + 1)? {
            charted += 1;
            out.push(chart);
        }
    }
    out.extend(health_heat_charts(runs));
    let leverage = crate::leverage_charts::leverage_charts(runs)
        .into_iter()
        .chain(crate::leverage_charts::ladder_chart(runs)?)
        .chain(crate::leverage_charts::overlap_chart(runs)?);
    out.extend(leverage.map(|chart| Chart {
        name: chart.name,
        title: chart.title,
        svg: chart.svg,
        note: chart.note,
        table: Some(chart.table),
    }));
    Ok(out)
}

/// Why `view`, one of `run`'s health moments, is not drawn beside the other runs': taken
/// outside the events the report covers (every run's), or a book with no position at all.
fn not_drawn(run: &RunFile, view: &HealthSnapshot) -> Option<&'static str> {
    if !SeqRange::of(run).contains(view.seq) {
        return Some("outside the events every run reports on");
    }
    let empty = view.buckets.iter().all(|b| b.accounts == 0)
        && view.accounts_without_debt == 0
        && view.accounts_unpriced == 0;
    empty.then_some("no account held a position yet")
}

/// Accounts by health factor before and after in every run that has a distribution of
/// `protocol market`, with the exact counts and debt in a table; `None` when no run has one.
fn health_chart(
    runs: &[RunFile],
    protocol: &str,
    market: &str,
    number: usize,
) -> Result<Option<Chart>, DiffError> {
    // Only moments inside the events every run reports on are compared, and only when the run
    // had a position then: a whole-log history's moments (its first event, the log's end) are
    // not the counterfactual's, and an empty book drawn as zeros would read as "no one at risk".
    fn moments<'a>(
        run: &'a RunFile,
        protocol: &str,
        market: &str,
    ) -> (Option<&'a HealthSnapshot>, Option<&'a HealthSnapshot>) {
        let usable = |moment| {
            run.health(protocol, market, moment)
                .filter(|view| not_drawn(run, view).is_none())
        };
        (usable(Moment::Before), usable(Moment::After))
    }
    let Some(ranges) = runs
        .iter()
        .flat_map(|run| run.health_distribution.iter())
        .find(|h| h.protocol == protocol && h.market == market)
        .map(|h| {
            h.buckets
                .iter()
                .map(|b| b.range.to_string())
                .collect::<Vec<_>>()
        })
    else {
        return Ok(None);
    };
    let counts = |view: Option<&HealthSnapshot>| {
        view.map(|h| h.buckets.iter().map(|b| b.accounts as f64).collect())
    };
    let series: Vec<BeforeAfter> = runs
        .iter()
        .enumerate()
        .map(|(color, run)| {
            let (before, after) = moments(run, protocol, market);
            BeforeAfter {
                label: run.label(),
                color,
                before: counts(before),
                after: counts(after),
            }
        })
        .collect();
    let svg = charts::before_after_chart(
        &format!("{protocol} {market}: accounts with debt by health factor"),
        "accounts",
        &ranges,
        &series,
        [
            "before: at the first recorded liquidation of the window",
            "after: at the end of the window",
        ],
    )?;
    let mut header = vec!["health factor".to_owned()];
    let mut columns = Vec::new();
    for run in runs {
        let (before, after) = moments(run, protocol, market);
        for (moment, view) in [("before", before), ("after", after)] {
            if let Some(view) = view {
                header.push(format!("{} {moment}", run.label()));
                columns.push(view);
            }
        }
    }
    let mut rows: Vec<Vec<String>> = ranges
        .iter()
        .enumerate()
        .map(|(index, range)| {
            let mut row = vec![range.clone()];
            for view in &columns {
                row.push(view.buckets.get(index).map_or_else(String::new, |b| {
                    // Whole units for DAI/USD sums, cents where a base currency like ETH is small.
                    let n = Num::of(&b.debt);
                    let debt = n.human(if n.abs() < Num::from_int(100) { 2 } else { 0 });
                    format!("{} · {debt}", b.accounts)
                }));
            }
            row
        })
        .collect();
    // Accounts that left the chart by repaying or being liquidated down to no debt.
    let mut no_debt = vec!["no debt (not charted)".to_owned()];
    for view in &columns {
        no_debt.push(view.accounts_without_debt.to_string());
    }
    rows.push(no_debt);
    // Each moment of each run, stated: they can differ between runs (a historical run replayed
    // without `--to` ends with its log, a counterfactual with its scenario's window).
    let stated = |moment: usize| -> Vec<(String, String)> {
        runs.iter()
            .filter_map(|run| {
                let (before, after) = moments(run, protocol, market);
                let view = if moment == 0 { before } else { after }?;
                Some((
                    run.label(),
                    format!("{} (seq {})", view.time.to_rfc3339(), view.seq),
                ))
            })
            .collect()
    };
    let listed = |taken: &[(String, String)]| -> String {
        match taken {
            [] => String::new(),
            [(label, when)] if runs.len() > 1 => {
                format!(" ({label} at {when}; the only run drawn)")
            }
            [(_, when), rest @ ..] if rest.iter().all(|(_, w)| w == when) => {
                format!(" (every run at {when})")
            }
            _ => format!(
                " ({}; the runs' moments differ: compare their bars with that in mind)",
                taken
                    .iter()
                    .map(|(label, when)| format!("{label} at {when}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    };
    let left_out: Vec<String> = runs
        .iter()
        .flat_map(|run| {
            [Moment::Before, Moment::After]
                .into_iter()
                .filter_map(move |moment| {
                    let view = run.health(protocol, market, moment)?;
                    let why = not_drawn(run, view)?;
                    Some(format!(
                        "{} {}, taken at {} (seq {}): {why}",
                        run.label(),
                        moment.name(),
                        view.time.to_rfc3339(),
                        view.seq
                    ))
                })
        })
        .collect();
    let left_out = if left_out.is_empty() {
        String::new()
    } else {
        format!(
            " Not drawn: {}. To compare a historical run at the counterfactual's moments, \
             replay it over the scenario's window (`cascade replay LOG --from FROM --to TO`).",
            left_out.join("; ")
        )
    };
    let note = format!(
        "Health factor as the protocol defines it (Maker: collateral at the OSM price over debt \
         times the liquidation ratio; below 1 is liquidatable), buckets [low, high). Before: the \
         state at the window's first recorded liquidation of the protocol, before it was judged \
         or (in a counterfactual) skipped: the same event in every run of the window; a window \
         without one uses the run's first check that found an account liquidatable{}. After: \
         the state after the last event the run reports on{}. Debt in the protocol's base \
         currency.{left_out}",
        listed(&stated(0)),
        listed(&stated(1)),
    );
    Ok(Some(Chart {
        name: format!("health-{number}"),
        title: format!("{protocol} {market}: health factor before and after"),
        svg,
        note,
        table: Some((
            "Accounts · their debt, per health bucket".to_owned(),
            header,
            rows,
        )),
    }))
}

/// The heat maps of health buckets per hour of every run ([`crate::health_heat`]), at most
/// [`HEAT_MAPS_PER_RUN`] per run: the aggregates and the markets with the most accounts.
fn health_heat_charts(runs: &[RunFile]) -> Vec<Chart> {
    let mut out = Vec::new();
    for run in runs {
        let maps = crate::health_heat::maps(run);
        let total = maps.len();
        let mut chosen: Vec<&crate::health_heat::HeatMap> = maps.iter().collect();
        // Aggregates first, then markets by their most accounts in any period.
        chosen.sort_by_key(|map| {
            let aggregate = map.scope == "all protocols" || map.scope.ends_with("(all markets)");
            let most = map
                .columns
                .iter()
                .map(|c| c.accounts.iter().sum::<u64>())
                .max()
                .unwrap_or(0);
            (!aggregate, std::cmp::Reverse(most))
        });
        chosen.truncate(HEAT_MAPS_PER_RUN);
        for map in chosen {
            let protocol = map.scope.split(' ').next().unwrap_or("");
            let unit = crate::health_heat::base_currency(protocol);
            let period = map.columns.first().map_or(3600, |c| c.period_seconds);
            let uneven = map.columns.iter().any(|c| c.period_seconds != period);
            out.push(Chart {
                name: format!("health-time-{}", out.len() + 1),
                title: format!(
                    "{} {}: health factor {}",
                    run.label(),
                    map.scope,
                    if uneven || period != 3600 {
                        "over time"
                    } else {
                        "per hour"
                    }
                ),
                svg: crate::health_heat::svg(
                    map,
                    &format!(
                        "{}: {} accounts with debt by health factor over time",
                        run.label(),
                        map.scope
                    ),
                    "health factor",
                    unit,
                ),
                note: format!(
                    "Each column is the state at the end of one period ({}), each row a health                      bucket [low, high), lowest at the bottom; the shade is the bucket's share of                      the accounts with debt at that moment. Hover a cell for the accounts and                      their debt ({}). At most {} columns: a longer window gathers periods in                      stretches, each column the state at the end of its stretch.{}",
                    if uneven {
                        "periods of uneven length: a run keeps the hours around its liquidations                          and newly liquidatable accounts and samples the rest on a coarser grid;                          columns are drawn equally wide; the strip under the map is darkest under an                          hour and paler as the period grows, and each cell's title gives its                          period"
                            .to_owned()
                    } else if period == 3600 {
                        "an hour".to_owned()
                    } else {
                        format!("{} hours", period / 3600)
                    },
                    if map.columns.first().is_some_and(|c| c.debt.is_some()) {
                        unit
                    } else {
                        "counts only across protocols: their debt is in different currencies"
                    },
                    crate::health_heat::COLUMNS,
                    if total > HEAT_MAPS_PER_RUN {
                        format!(
                            " {} of the run's {} maps shown (aggregates and the largest markets).",
                            HEAT_MAPS_PER_RUN, total
                        )
                    } else {
                        String::new()
                    }
                ),
                table: None,
            });
        }
    }
    out
}

/// Most heat maps drawn per run.
const HEAT_MAPS_PER_RUN: usize = 4;

fn rounds_chart(runs: &[RunFile]) -> Result<Option<Chart>, DiffError> {
    let counterfactual: Vec<(usize, &RunFile)> = runs
        .iter()
        .enumerate()
        .filter(|(_, run)| run.is_counterfactual())
        .collect();
    let mut rounds: BTreeSet<u32> = BTreeSet::new();
    for (_, run) in &counterfactual {
        rounds.extend(run.liquidations.iter().filter_map(|l| l.round));
    }
    if rounds.is_empty() {
        return Ok(None);
    }
    let series: Vec<(String, usize)> = counterfactual
        .iter()
        .map(|(index, run)| (run.label(), *index))
        .collect();
    let groups: Vec<BarGroup> = rounds
        .iter()
        .map(|round| BarGroup {
            label: round.to_string(),
            values: counterfactual
                .iter()
                .map(|(_, run)| {
                    run.liquidations
                        .iter()
                        .filter(|l| l.round == Some(*round))
                        .count() as f64
                })
                .collect(),
        })
        .collect();
    Ok(Some(Chart {
        name: "cascade-rounds".to_owned(),
        title: "The cascade: liquidations by trigger round".to_owned(),
        svg: charts::bar_chart(
            "liquidations by cascade round (1 = a recorded price move)",
            "liquidations",
            &series,
            &groups,
        )?,
        note: "Round 1: triggered by a recorded price move. Round n+1: made possible by the price impact of round n's sales.".to_owned(),
        table: None,
    }))
}

/// The largest-loss chains a counterfactual run carries in `counterfactual.largest_losses`.
fn chains_table(run: &RunFile) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let list = &run.counterfactual.as_ref()?.largest_losses;
    if list.is_empty() {
        return None;
    }
    let header = [
        "account",
        "time",
        "round",
        "loss (USD)",
        "chain (account @ time, root first)",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = list
        .iter()
        .map(|entry| {
            let chain = entry
                .chain
                .iter()
                .map(|link| format!("{} @ {}", link.account, link.time))
                .collect::<Vec<_>>()
                .join(" → ");
            vec![
                entry.account.clone(),
                entry.time.to_rfc3339(),
                entry.round.to_string(),
                Num::of(&entry.loss).human(2),
                chain,
            ]
        })
        .collect();
    Some((header, rows))
}
