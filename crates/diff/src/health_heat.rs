//! The heat map of health buckets per hour: every run's `health_over_time`
//! (`docs/run-format.md`) as a grid of periods (across) by health-factor bucket (up), each cell
//! shaded by the share of the accounts with debt that sat in that bucket at the end of that
//! period, with the exact count and debt on hover.
//!
//! One map per run and market, one per protocol when it has several markets and one over all
//! protocols when the run has several (counts only: their debt is in different currencies).
//! A long window is drawn in at most [`COLUMNS`] columns, each the last period it spans, so a
//! map stays a few hundred cells whatever the run's size. Floats only for shading.

use std::collections::BTreeMap;

use cascade_events::Timestamp;
use cascade_run::HealthSample;

use crate::render::escape;
use crate::runfile::{Num, RunFile};

/// Most columns a map draws.
pub const COLUMNS: usize = 96;

/// One column of a map: the end of one period.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Start of the period.
    pub period: Timestamp,
    /// Its length, seconds.
    pub period_seconds: i64,
    /// Accounts with debt per bucket, lowest first.
    pub accounts: Vec<u64>,
    /// Their debt per bucket; `None` when it sums different currencies.
    pub debt: Option<Vec<Num>>,
}

/// One map: what it covers and its columns.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    /// `maker ETH-B`, `aave-v2 (all markets)`, `all protocols`.
    pub scope: String,
    /// Bucket names, lowest first.
    pub ranges: Vec<String>,
    /// Columns in time order.
    pub columns: Vec<Column>,
}

/// The maps of one run, markets first (protocol, market order), then protocols, then all.
pub fn maps(run: &RunFile) -> Vec<HeatMap> {
    let samples = &run.health_over_time;
    let Some(ranges) = samples.first().map(|s| {
        s.buckets
            .iter()
            .map(|b| b.range.to_string())
            .collect::<Vec<_>>()
    }) else {
        return Vec::new();
    };
    let mut markets: BTreeMap<(&str, &str), Vec<&HealthSample>> = BTreeMap::new();
    for sample in samples {
        markets
            .entry((&sample.protocol, &sample.market))
            .or_default()
            .push(sample);
    }
    let mut out: Vec<HeatMap> = markets
        .iter()
        .map(|((protocol, market), list)| HeatMap {
            scope: format!("{protocol} {market}"),
            ranges: ranges.clone(),
            columns: combine(list, true),
        })
        .collect();
    let mut protocols: BTreeMap<&str, Vec<&HealthSample>> = BTreeMap::new();
    for sample in samples {
        protocols.entry(&sample.protocol).or_default().push(sample);
    }
    for (protocol, list) in &protocols {
        if markets.keys().filter(|(p, _)| p == protocol).count() > 1 {
            out.push(HeatMap {
                scope: format!("{protocol} (all markets)"),
                ranges: ranges.clone(),
                columns: combine(list, true),
            });
        }
    }
    if protocols.len() > 1 {
        out.push(HeatMap {
            scope: "all protocols".to_owned(),
            ranges: ranges.clone(),
            columns: combine(&samples.iter().collect::<Vec<_>>(), false),
        });
    }
    out
}

/// Samples summed per period, then thinned to [`COLUMNS`] ([`thin`]).
fn combine(samples: &[&HealthSample], with_debt: bool) -> Vec<Column> {
    let mut by_period: BTreeMap<Timestamp, Column> = BTreeMap::new();
    for sample in samples {
        let column = by_period.entry(sample.period).or_insert_with(|| Column {
            period: sample.period,
            period_seconds: sample.period_seconds,
            accounts: vec![0; sample.buckets.len()],
            debt: with_debt.then(|| vec![Num::ZERO; sample.buckets.len()]),
        });
        for (index, bucket) in sample.buckets.iter().enumerate() {
            if let Some(count) = column.accounts.get_mut(index) {
                *count += bucket.accounts;
            }
            if let Some(debt) = column.debt.as_mut().and_then(|d| d.get_mut(index)) {
                *debt = debt.plus(Num::of(&bucket.debt));
            }
        }
    }
    thin(by_period.into_values().collect())
}

/// At most [`COLUMNS`] columns, by gathering neighbours: each gathered column spans its
/// periods and shows the state at the end of the last. The longer periods of a run's grid are
/// gathered with each other first, then hours with hours, then across, the pair of the fewest
/// periods first (the earliest on ties): a crash in a long window keeps its hours while the quiet
/// months between crashes share few columns.
pub fn thin(mut columns: Vec<Column>) -> Vec<Column> {
    // Per column: whether it holds hours only, and how many periods it gathers.
    let mut kinds: Vec<(bool, usize)> = columns
        .iter()
        .map(|c| (c.period_seconds <= 3600, 1))
        .collect();
    while columns.len() > COLUMNS {
        let Some(best) = (0..columns.len() - 1).min_by_key(|&index| {
            let (a, b) = (kinds[index], kinds[index + 1]);
            let rank = match (a.0, b.0) {
                (false, false) => 0,
                (true, true) => 1,
                _ => 2,
            };
            (rank, a.1 + b.1, index)
        }) else {
            break;
        };
        let second = columns.remove(best + 1);
        let first = &mut columns[best];
        first.period_seconds = second.period.0 + second.period_seconds - first.period.0;
        first.accounts = second.accounts;
        first.debt = second.debt;
        let gathered = kinds.remove(best + 1);
        kinds[best] = (kinds[best].0 && gathered.0, kinds[best].1 + gathered.1);
    }
    columns
}

/// `N h` or `N d` for a period length.
fn length_text(seconds: i64) -> String {
    if seconds % 86_400 == 0 {
        format!("{} d", seconds / 86_400)
    } else {
        format!("{} h", seconds / 3600)
    }
}

/// Pixel layout of a map.
const WIDTH: usize = 1000;
const LEFT: usize = 90;
const RIGHT: usize = 20;
const TOP: usize = 40;
const ROW: usize = 30;
const BOTTOM: usize = 76;
/// Height of the strip that marks hour-long columns.
const STRIP: usize = 5;

/// The map as SVG: cells shaded by the bucket's share of the column's accounts with debt (pale
/// for none, deep red for the largest share in the map; grey where no account had debt), a hover
/// title per cell with the exact numbers, UTC times with the year under every few columns.
pub fn svg(map: &HeatMap, title: &str, y_name: &str, debt_unit: &str) -> String {
    let rows = map.ranges.len();
    let height = TOP + ROW * rows + BOTTOM;
    let columns = map.columns.len().max(1);
    let cell = (WIDTH - LEFT - RIGHT) as f64 / columns as f64;
    let mut out = format!(
        "<svg width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\">\n<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
        WIDTH / 2,
        escape(title)
    );
    for (row, range) in map.ranges.iter().enumerate() {
        // Lowest health at the bottom, as on a health axis.
        let y = TOP + ROW * (rows - 1 - row);
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#464650\">{}</text>\n",
            LEFT - 8,
            y + ROW / 2 + 4,
            escape(range)
        ));
    }
    out.push_str(&format!(
        "<text x=\"16\" y=\"{}\" font-size=\"13\" fill=\"#464650\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{}</text>\n",
        TOP + ROW * rows / 2,
        TOP + ROW * rows / 2,
        escape(y_name)
    ));
    let share_of = |column: &Column, count: u64| {
        let total: u64 = column.accounts.iter().sum();
        if total > 0 {
            count as f64 / total as f64
        } else {
            0.0
        }
    };
    let largest = map
        .columns
        .iter()
        .flat_map(|c| c.accounts.iter().map(move |n| share_of(c, *n)))
        .fold(0.0f64, f64::max);
    for (index, column) in map.columns.iter().enumerate() {
        let total: u64 = column.accounts.iter().sum();
        let x = LEFT as f64 + cell * index as f64;
        for (row, count) in column.accounts.iter().enumerate() {
            let y = TOP + ROW * (rows - 1 - row);
            let share = share_of(column, *count);
            let shade = if largest > 0.0 { share / largest } else { 0.0 };
            let lerp = |a: f64, b: f64| (a + (b - a) * shade).round() as u8;
            let (r, g, b) = if total == 0 {
                (226, 226, 230)
            } else {
                (lerp(255.0, 165.0), lerp(246.0, 15.0), lerp(232.0, 40.0))
            };
            let debt = column
                .debt
                .as_ref()
                .and_then(|d| d.get(row))
                .map(|d| format!(", debt {} {debt_unit}", d.human(2)))
                .unwrap_or_default();
            let title = format!(
                "{} UTC, {}: {y_name} {}: {} account{} of {} ({:.1}%){debt}",
                time_text(column.period),
                length_text(column.period_seconds),
                map.ranges.get(row).map_or("", String::as_str),
                count,
                if *count == 1 { "" } else { "s" },
                total,
                share * 100.0
            );
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{ROW}\" fill=\"rgb({r},{g},{b})\" stroke=\"#ffffff\" stroke-width=\"0.5\"><title>{}</title></rect>\n",
                cell,
                escape(&title)
            ));
        }
    }
    // Columns are drawn equally wide but the periods they show are not (hours where things
    // happen, longer periods elsewhere): a strip under the map is darkest under an hour and
    // paler as the period grows (on a log scale, palest from a week), and each cell's title
    // says its period.
    for (index, column) in map.columns.iter().enumerate() {
        let x = LEFT as f64 + cell * index as f64;
        let hours = (column.period_seconds as f64 / 3600.0).max(1.0);
        let pale = (hours.ln() / 168f64.ln()).min(1.0);
        let lerp = |dark: f64, light: f64| (dark + (light - dark) * pale).round() as u8;
        let fill = format!(
            "rgb({},{},{})",
            lerp(30.0, 223.0),
            lerp(34.0, 226.0),
            lerp(48.0, 232.0)
        );
        out.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{}\" width=\"{cell:.1}\" height=\"{STRIP}\" fill=\"{fill}\"><title>{} UTC, {}</title></rect>\n",
            TOP + ROW * rows + 1,
            time_text(column.period),
            length_text(column.period_seconds)
        ));
    }
    let label_every = (map.columns.len() / 6).max(1);
    for (index, column) in map.columns.iter().enumerate().step_by(label_every) {
        let x = LEFT as f64 + cell * index as f64;
        // A label starts at its tick: one too near the right edge to fit is left out.
        if x > (WIDTH - RIGHT - 110) as f64 {
            continue;
        }
        out.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#464650\"/>\n<text x=\"{x:.1}\" y=\"{}\" font-size=\"12\" fill=\"#464650\">{}</text>\n",
            TOP + ROW * rows + STRIP,
            TOP + ROW * rows + STRIP + 6,
            TOP + ROW * rows + STRIP + 20,
            escape(&time_text(column.period))
        ));
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" fill=\"#464650\">period start, UTC · strip: darker = shorter period · shade: share of the accounts with debt (grey: none)</text>\n</svg>\n",
        (LEFT + WIDTH - RIGHT) / 2,
        height - 14
    ));
    out
}

/// The currency a protocol's health distributions count debt in (`docs/run-format.md`).
pub fn base_currency(protocol: &str) -> &'static str {
    match protocol {
        "maker" => "DAI",
        "aave-v2" => "ETH",
        "aave-v3" | "compound-v2" => "USD",
        _ => "base currency",
    }
}

/// `YYYY-MM-DD HH:MM` of a time.
fn time_text(time: Timestamp) -> String {
    crate::charts::time_label(time.0 as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_events::U256;
    use cascade_run::{HealthBucket, Quantity};

    fn sample(period: i64, protocol: &str, market: &str, accounts: [u64; 3]) -> HealthSample {
        HealthSample {
            period: Timestamp(period),
            period_seconds: 3600,
            seq: 1,
            time: Timestamp(period + 60),
            protocol: protocol.to_owned(),
            market: market.to_owned(),
            buckets: ["<1", "1-2", ">=2"]
                .iter()
                .zip(accounts)
                .map(|(range, accounts)| HealthBucket {
                    range: (*range).into(),
                    accounts,
                    debt: Quantity::new(U256::from(accounts * 1000), 2),
                })
                .collect(),
            accounts_without_debt: 0,
            accounts_unpriced: 0,
        }
    }

    #[test]
    fn markets_protocols_and_all_get_their_maps() {
        let run = crate::runfile::RunFile {
            path: "r.json".to_owned(),
            run: cascade_run::lines::read(
                br#"{"schema_version":4,"log":{"first_seq":0,"last_seq":0,"content_hash":""},
                     "window":{"from_time":null,"first_seq":0,"last_seq":0,"events":0},
                     "scenario":null,"config":{"feed_priority":[],"max_cascade_rounds":1,
                     "quote_conversions":[],"unsafe_threshold_seconds":0},"state_hash":"",
                     "totals":{"events":0,"by_kind":{},"liquidations":0,"verdicts":{},
                     "recorded_liquidations_skipped":0,"explained_percent":null,
                     "collateral_seized":{},"debt_repaid":{},"bad_debt":{},"clamped":{},
                     "skipped":{},"unsafe_unliquidated":0,"unsafe_threshold_seconds":0},
                     "liquidations":[],"unsafe_unliquidated":[],"timeline":[],
                     "health_distribution":[]}"#,
            )
            .unwrap(),
        };
        let mut run = run;
        run.run.health_over_time = vec![
            sample(0, "maker", "ETH-A", [1, 2, 3]),
            sample(0, "maker", "ETH-B", [0, 1, 1]),
            sample(0, "aave-v2", "pool", [4, 0, 0]),
            sample(3600, "maker", "ETH-A", [2, 2, 2]),
        ];
        let maps = maps(&run);
        let scopes: Vec<&str> = maps.iter().map(|m| m.scope.as_str()).collect();
        assert_eq!(
            scopes,
            [
                "aave-v2 pool",
                "maker ETH-A",
                "maker ETH-B",
                "maker (all markets)",
                "all protocols"
            ]
        );
        // Maker's two markets add up per period; debt stays (one currency).
        let maker = &maps[3];
        assert_eq!(maker.columns[0].accounts, [1, 3, 4]);
        assert_eq!(maker.columns[1].accounts, [2, 2, 2]);
        assert_eq!(maker.columns[0].debt.as_ref().unwrap()[2].human(2), "40");
        // Across protocols counts only.
        assert_eq!(maps[4].columns[0].accounts, [5, 3, 4]);
        assert!(maps[4].columns[0].debt.is_none());
        let svg = svg(&maps[1], "t", "health", "DAI");
        assert_eq!(
            svg.matches("<rect ").count(),
            1 + 2 * 3 + 2,
            "background, cells, and the strip under each column"
        );
        assert!(svg.contains(
            "<title>1970-01-01 00:00 UTC, 1 h: health &lt;1: 1 account of 6 (16.7%), debt 10 DAI</title>"
        ));
    }

    #[test]
    fn a_long_run_is_drawn_in_at_most_the_column_limit() {
        let samples: Vec<HealthSample> = (0..1000)
            .map(|hour| sample(hour * 3600, "maker", "ETH-A", [1, 0, 0]))
            .collect();
        let refs: Vec<&HealthSample> = samples.iter().collect();
        let columns = combine(&refs, true);
        // 1000 hours gathered into 96 columns of 8 to 16 hours that tile the window.
        assert_eq!(columns.len(), COLUMNS);
        assert!(
            columns
                .iter()
                .all(|c| (8 * 3600..=16 * 3600).contains(&c.period_seconds))
        );
        for pair in columns.windows(2) {
            assert_eq!(pair[0].period.0 + pair[0].period_seconds, pair[1].period.0);
        }
        assert_eq!(columns[0].period, Timestamp(0));
        let last = columns.last().unwrap();
        assert_eq!(last.period.0 + last.period_seconds, 1000 * 3600);
    }

    /// A long log's samples: 64-hour periods with a crash's 40 hours among them. The hours
    /// keep a column each; the 64-hour periods are gathered, and the map marks where the
    /// length changes.
    #[test]
    fn a_crash_in_a_long_window_keeps_its_hours() {
        let mut samples: Vec<HealthSample> = Vec::new();
        let long = 64 * 3600;
        for index in 0..200 {
            let mut s = sample(index * long, "maker", "ETH-B", [0, 1, 0]);
            s.period_seconds = long;
            samples.push(s);
        }
        let crash = 200 * long;
        for hour in 0..40 {
            samples.push(sample(crash + hour * 3600, "maker", "ETH-B", [1, 0, 0]));
        }
        for index in 0..100 {
            let mut s = sample(
                crash + 40 * 3600 + index * long,
                "maker",
                "ETH-B",
                [0, 0, 1],
            );
            s.period_seconds = long;
            samples.push(s);
        }
        let refs: Vec<&HealthSample> = samples.iter().collect();
        let columns = combine(&refs, true);
        assert!(columns.len() <= COLUMNS);
        let hourly: Vec<&Column> = columns
            .iter()
            .filter(|c| c.period_seconds == 3600)
            .collect();
        assert_eq!(hourly.len(), 40);
        assert_eq!(hourly[0].period, Timestamp(crash));
        // The 300 long periods share the 56 columns left.
        assert_eq!(columns.len(), COLUMNS);
        // The columns tile the window.
        for pair in columns.windows(2) {
            assert_eq!(pair[0].period.0 + pair[0].period_seconds, pair[1].period.0);
        }
        let map = HeatMap {
            scope: "maker ETH-B".to_owned(),
            ranges: vec!["<1".into(), "1-2".into(), ">=2".into()],
            columns,
        };
        let svg = svg(&map, "t", "health", "DAI");
        // The strip marks the 40 hours darkest, the 56 longer columns (16 days and more)
        // palest.
        assert_eq!(svg.matches("fill=\"rgb(30,34,48)\"><title>").count(), 40);
        assert_eq!(svg.matches("fill=\"rgb(223,226,232)\"><title>").count(), 56);
        assert!(svg.contains(" UTC, 1 h</title>"), "{svg}");
    }
}
