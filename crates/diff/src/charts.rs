//! SVG charts for reports, drawn with `plotters` into strings (no files, no fonts, no network).
//!
//! Floats appear here and only here: chart coordinates are `f64` conversions of the exact
//! numbers the runs hold, and nothing computed in this module flows back into a number shown in
//! a table. Charts take plain series so they can be tested without run files.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use cascade_events::Timestamp;

use crate::DiffError;

/// Width of every chart, pixels.
pub const WIDTH: u32 = 1000;
/// Height of line charts, pixels.
pub const HEIGHT: u32 = 380;

/// Colours of runs in order: the first run (usually historical) slate blue, then orange, teal,
/// crimson, purple, olive.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(44, 90, 160),
    RGBColor(230, 120, 20),
    RGBColor(20, 150, 130),
    RGBColor(200, 40, 60),
    RGBColor(120, 70, 170),
    RGBColor(120, 130, 30),
];

/// The colour of run `index` as a CSS hex string.
pub fn css_color(index: usize) -> String {
    let RGBColor(r, g, b) = PALETTE[index % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One line of a chart.
#[derive(Clone, Debug, Default)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Index into [`PALETTE`].
    pub color: usize,
    /// `(x, y)` in drawing order; x is Unix seconds for time charts.
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function (value holds until the next point).
    pub step: bool,
    /// Points to mark with circles (liquidations), same coordinates, sized by amount.
    pub marks: Vec<Mark>,
    /// What a mark's size counts (`DAI`), for the marks that stand for several.
    pub mark_unit: String,
    /// Dashed instead of solid.
    pub dashed: bool,
}

/// A marked point (a liquidation): a circle whose area grows with `size`, and `title` shown on
/// hover (an SVG `<title>`).
#[derive(Clone, Debug, Default)]
pub struct Mark {
    /// x, as the line's points.
    pub x: f64,
    /// y, as the line's points.
    pub y: f64,
    /// The amount the circle's area stands for (liquidated debt).
    pub size: f64,
    /// Hover text: the account, the time, the amounts.
    pub title: String,
}

/// Marks drawn one by one per line; beyond this the largest half stay single and the rest are
/// summed per stretch of time (a 300,000-account market has over 100,000 liquidations: one
/// circle each would be megabytes of SVG nobody can hover).
pub const MARKS_DRAWN: usize = 300;

/// Stretches of time the marks beyond [`MARKS_DRAWN`] are summed over, and the columns a long
/// line is thinned to.
const TIME_BINS: usize = 120;

/// `marks` as drawn: all of them when few, else the [`MARKS_DRAWN`]` / 2` largest and one mark
/// per stretch of time for the others, titled with their count and sum.
pub fn gather_marks(marks: &[Mark], unit: &str) -> Vec<Mark> {
    if marks.len() <= MARKS_DRAWN {
        return marks.to_vec();
    }
    let mut by_size: Vec<&Mark> = marks.iter().collect();
    by_size.sort_by(|a, b| b.size.total_cmp(&a.size));
    let (largest, rest) = by_size.split_at(MARKS_DRAWN / 2);
    let (low, high) = rest
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), m| (l.min(m.x), h.max(m.x)));
    let width = ((high - low) / TIME_BINS as f64).max(1.0);
    // (count, sum of sizes, sum of x, sum of y, first x, last x) per stretch.
    let mut bins = vec![(0usize, 0.0, 0.0, 0.0, f64::MAX, f64::MIN); TIME_BINS + 1];
    for mark in rest {
        let bin = &mut bins[(((mark.x - low) / width) as usize).min(TIME_BINS)];
        *bin = (
            bin.0 + 1,
            bin.1 + mark.size,
            bin.2 + mark.x,
            bin.3 + mark.y,
            bin.4.min(mark.x),
            bin.5.max(mark.x),
        );
    }
    let mut out: Vec<Mark> = largest.iter().map(|m| (*m).clone()).collect();
    out.extend(
        bins.into_iter()
            .filter(|b| b.0 > 0)
            .map(|(count, size, xs, ys, first, last)| Mark {
                x: xs / count as f64,
                y: ys / count as f64,
                size,
                title: format!(
                    "{count} smaller liquidations, {} to {} UTC: {} {unit} in all",
                    time_label(first),
                    time_label(last),
                    short_number(size)
                ),
            }),
    );
    out
}

/// `points` (in x order) thinned to what `TIME_BINS` * 8 columns can show: per column the
/// first, lowest, highest and last point, so peaks and steps survive.
pub fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let columns = TIME_BINS * 8;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    if points.len() <= columns * 4 {
        return points.to_vec();
    }
    let width = ((last.0 - first.0) / columns as f64).max(f64::MIN_POSITIVE);
    let mut out = Vec::new();
    let mut start = 0;
    while start < points.len() {
        let column = ((points[start].0 - first.0) / width) as usize;
        let end = start
            + points[start..]
                .iter()
                .position(|p| ((p.0 - first.0) / width) as usize != column)
                .unwrap_or(points.len() - start);
        let slice = &points[start..end];
        let low = slice
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.1.total_cmp(&b.1.1));
        let high = slice
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.1.total_cmp(&b.1.1));
        let mut keep = vec![0, slice.len() - 1];
        keep.extend(low.map(|(i, _)| i));
        keep.extend(high.map(|(i, _)| i));
        keep.sort_unstable();
        keep.dedup();
        out.extend(keep.into_iter().map(|i| slice[i]));
        start = end;
    }
    out
}

/// Circles for `marks` in pixel coordinates `(x, y, size, title)`, each with its hover title,
/// radius by the square root of its size against `largest` so area reads as amount.
fn mark_circles(marks: &[(i32, i32, f64, String)], color: RGBColor, largest: f64) -> String {
    let RGBColor(r, g, b) = color;
    let mut out = String::new();
    for (x, y, size, title) in marks {
        let radius = 3.0 + 11.0 * (size / largest.max(f64::MIN_POSITIVE)).max(0.0).sqrt();
        out.push_str(&format!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"{radius:.1}\" fill=\"rgb({r},{g},{b})\" fill-opacity=\"0.45\" stroke=\"rgb({r},{g},{b})\"><title>{}</title></circle>\n",
            crate::render::escape(title)
        ));
    }
    out
}

/// A group of bars: one category, one value per run.
#[derive(Clone, Debug, Default)]
pub struct BarGroup {
    /// Category label (`round 1`, `1.0-1.1`).
    pub label: String,
    /// Values per series, in series order.
    pub values: Vec<f64>,
}

fn chart_error<E: std::fmt::Debug>(error: E) -> DiffError {
    DiffError::Chart(format!("{error:?}"))
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time, for axis labels: a post-mortem is read years later.
pub fn time_label(seconds: f64) -> String {
    let text = Timestamp(seconds.round() as i64).to_rfc3339();
    text.get(..16).map(|s| s.replace('T', " ")).unwrap_or(text)
}

/// A short number for axis labels (`1.2M`, `45k`, `0.95`).
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{:.1}B", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// A y-axis label of `value` on an axis spanning `span` with about seven ticks: the short form
/// when its last digit is finer than a tick step, else enough decimals (and thousands
/// separators) to tell neighbouring ticks apart (`730.5`, `45,150`), where the short form
/// would print `730, 730` or `45k, 45k`.
pub fn axis_number(value: f64, span: f64) -> String {
    let step = span / 7.0;
    let magnitude = value.abs();
    let resolution = if magnitude >= 1e9 {
        1e8
    } else if magnitude >= 1e6 {
        1e5
    } else if magnitude >= 1e4 {
        1e3
    } else if magnitude >= 100.0 {
        1.0
    } else {
        0.01
    };
    if !(step.is_finite() && step > 0.0) || step >= resolution {
        return short_number(value);
    }
    let decimals = (-step.log10()).ceil().clamp(0.0, 8.0) as usize;
    let text = format!("{:.decimals$}", value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 { "-" } else { "" };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction}")
    }
}

fn bounds(lines: &[Line]) -> Option<((f64, f64), (f64, f64))> {
    let points = lines
        .iter()
        .flat_map(|l| {
            l.points
                .iter()
                .copied()
                .chain(l.marks.iter().map(|m| (m.x, m.y)))
        })
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let mut result: Option<((f64, f64), (f64, f64))> = None;
    for (x, y) in points {
        result = Some(match result {
            None => ((x, x), (y, y)),
            Some(((x0, x1), (y0, y1))) => ((x0.min(x), x1.max(x)), (y0.min(y), y1.max(y))),
        });
    }
    result
}

fn padded(range: (f64, f64), floor_zero: bool) -> (f64, f64) {
    let span = (range.1 - range.0).abs();
    let pad = if span > 0.0 {
        span * 0.06
    } else {
        range.1.abs().max(1.0) * 0.1
    };
    let low = if floor_zero && range.0 >= 0.0 {
        0.0
    } else {
        range.0 - pad
    };
    (low, range.1 + pad)
}

/// A grey label centred horizontally, hanging below its anchor.
fn centred<'a>(size: u32) -> TextStyle<'a> {
    ("sans-serif", size)
        .into_font()
        .color(&RGBColor(70, 70, 80))
        .pos(Pos::new(HPos::Center, VPos::Top))
}

fn style_title<'a>() -> TextStyle<'a> {
    ("sans-serif", 20).into_font().color(&RGBColor(30, 30, 40))
}

/// A line chart over time with optional marks; an empty chart says so instead of failing.
/// `cumulative` charts start their y axis at zero and keep the legend top left, where rising
/// lines leave room.
pub fn time_chart(
    title: &str,
    y_label: &str,
    lines: &[Line],
    cumulative: bool,
) -> Result<String, DiffError> {
    let mut svg = String::new();
    let mut circles = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let Some((x_range, y_range)) = bounds(lines) else {
            empty(&root, title)?;
            root.present().map_err(chart_error)?;
            drop(root);
            return Ok(svg);
        };
        let x_range = if x_range.0 == x_range.1 {
            (x_range.0 - 1800.0, x_range.1 + 1800.0)
        } else {
            x_range
        };
        let y_range = padded(y_range, cumulative);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, style_title())
            .margin(16)
            .margin_right(44)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(236, 238, 242))
            .bold_line_style(RGBColor(214, 218, 226))
            .x_labels(6)
            .y_labels(7)
            .x_label_formatter(&|x| time_label(*x))
            .y_label_formatter(&|y| axis_number(*y, y_range.1 - y_range.0))
            .x_desc("time (UTC)")
            .y_desc(y_label)
            .label_style(("sans-serif", 13).into_font().color(&RGBColor(70, 70, 80)))
            .axis_desc_style(("sans-serif", 14).into_font().color(&RGBColor(70, 70, 80)))
            .draw()
            .map_err(chart_error)?;
        let gathered: Vec<Vec<Mark>> = lines
            .iter()
            .map(|line| gather_marks(&line.marks, &line.mark_unit))
            .collect();
        let largest = gathered
            .iter()
            .flatten()
            .map(|m| m.size)
            .fold(0.0f64, f64::max);
        for (line, marks) in lines.iter().zip(&gathered) {
            let color = PALETTE[line.color % PALETTE.len()];
            let thinned = thin(&line.points);
            let points: Vec<(f64, f64)> = if line.step {
                let mut stepped = Vec::with_capacity(thinned.len() * 2);
                for window in thinned.windows(2) {
                    stepped.push(window[0]);
                    stepped.push((window[1].0, window[0].1));
                }
                if let Some(last) = thinned.last() {
                    stepped.push(*last);
                }
                stepped
            } else {
                thinned
            };
            let style = color.stroke_width(if line.dashed { 2 } else { 3 });
            let series = if line.dashed {
                chart
                    .draw_series(DashedLineSeries::new(points, 8, 5, style))
                    .map_err(chart_error)?
            } else {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(chart_error)?
            };
            series.label(line.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
            });
            // Drawn by hand after plotters is done: its SVG backend has no `<title>`.
            let placed: Vec<(i32, i32, f64, String)> = marks
                .iter()
                .map(|m| {
                    let (x, y) = chart.backend_coord(&(m.x, m.y));
                    (x, y, m.size, m.title.clone())
                })
                .collect();
            circles.push_str(&mark_circles(&placed, color, largest));
        }
        legend(
            &mut chart,
            if cumulative {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::UpperRight
            },
        )?;
        root.present().map_err(chart_error)?;
    }
    if let Some(end) = svg.rfind("</svg>") {
        svg.insert_str(end, &circles);
    }
    Ok(svg)
}

/// The legend box.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), DiffError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 204, 212))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(chart_error)
}

fn empty(root: &DrawingArea<SVGBackend<'_>, Shift>, title: &str) -> Result<(), DiffError> {
    root.draw(&Text::new(
        format!("{title}: no data in these runs"),
        (24, 40),
        ("sans-serif", 18).into_font().color(&RGBColor(90, 90, 100)),
    ))
    .map_err(chart_error)
}

/// Grouped bars: one group per category, one bar per series (legend `series`).
pub fn bar_chart(
    title: &str,
    y_label: &str,
    series: &[(String, usize)],
    groups: &[BarGroup],
) -> Result<String, DiffError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let top = groups
            .iter()
            .flat_map(|g| g.values.iter().copied())
            .fold(0.0f64, f64::max);
        if groups.is_empty() || series.is_empty() {
            empty(&root, title)?;
            root.present().map_err(chart_error)?;
            drop(root);
            return Ok(svg);
        }
        let count = groups.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, style_title())
            .margin(16)
            .margin_right(44)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(
                -0.5f64..(count as f64 - 0.5),
                // Head room for the legend box, one line per series.
                0.0f64..(top * (1.15 + 0.1 * series.len() as f64)).max(1.0),
            )
            .map_err(chart_error)?;
        let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
        bar_axes(&root, &mut chart, y_label, &labels, 8)?;
        for (position, (label, color)) in series.iter().enumerate() {
            let values: Vec<(usize, f64)> = groups
                .iter()
                .enumerate()
                .filter_map(|(index, group)| Some((index, *group.values.get(position)?)))
                .collect();
            let slot = (position, series.len());
            bar_series(&mut chart, &values, slot, *color, label)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Height of a [`before_after_chart`]: two panels, one above the other.
pub const PANELS_HEIGHT: u32 = 600;

/// One run's two histograms in a [`before_after_chart`]: values per category, `None` where the
/// run has no such moment.
#[derive(Clone, Debug, Default)]
pub struct BeforeAfter {
    /// Legend text.
    pub label: String,
    /// Index into [`PALETTE`].
    pub color: usize,
    /// Values of the upper panel.
    pub before: Option<Vec<f64>>,
    /// Values of the lower panel.
    pub after: Option<Vec<f64>>,
}

/// Two grouped-bar panels on one y scale, the upper one for the `before` values and the lower
/// one for the `after` values of each run (one bar per run in each category), so a shift between
/// runs reads across and a shift over time reads down. `panels` are the two panel titles.
pub fn before_after_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    runs: &[BeforeAfter],
    panels: [&str; 2],
) -> Result<String, DiffError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, PANELS_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let top = runs
            .iter()
            .flat_map(|r| r.before.iter().chain(r.after.iter()).flatten().copied())
            .fold(0.0f64, f64::max);
        if categories.is_empty() || runs.is_empty() || top <= 0.0 {
            empty(&root, title)?;
            root.present().map_err(chart_error)?;
            drop(root);
            return Ok(svg);
        }
        let body = root.titled(title, style_title()).map_err(chart_error)?;
        let (upper, lower) = body.split_vertically((PANELS_HEIGHT - 30) / 2);
        // Head room for the legend, one line per run.
        let y_top = (top * (1.18 + 0.09 * runs.len() as f64)).max(1.0);
        let count = categories.len();
        for (area, panel, before) in [(upper, panels[0], true), (lower, panels[1], false)] {
            let mut chart = ChartBuilder::on(&area)
                .caption(
                    panel,
                    ("sans-serif", 15).into_font().color(&RGBColor(70, 70, 80)),
                )
                .margin(10)
                .margin_right(44)
                .x_label_area_size(30)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5f64..(count as f64 - 0.5), 0.0f64..y_top)
                .map_err(chart_error)?;
            bar_axes(&root, &mut chart, y_label, categories, 7)?;
            let width = 0.8 / runs.len() as f64;
            for (position, run) in runs.iter().enumerate() {
                let values = if before { &run.before } else { &run.after };
                let Some(values) = values else {
                    continue;
                };
                let indexed: Vec<(usize, f64)> = values.iter().copied().enumerate().collect();
                bar_series(
                    &mut chart,
                    &indexed,
                    (position, runs.len()),
                    run.color,
                    &run.label,
                )?;
                // The count above each non-empty bar: small bars are the ones that matter here.
                chart
                    .draw_series(values.iter().enumerate().filter(|(_, v)| **v > 0.0).map(
                        |(index, value)| {
                            let centre = index as f64 - 0.4 + (position as f64 + 0.5) * width;
                            Text::new(
                                short_number(*value),
                                (centre, *value),
                                ("sans-serif", 11)
                                    .into_font()
                                    .color(&RGBColor(60, 60, 70))
                                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
                            )
                        },
                    ))
                    .map_err(chart_error)?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// The axes of a bar chart over categories `-0.5..n-0.5`: no vertical grid, integer ticks only
/// (bars count things: a fractional tick would read as half an account), and each category's
/// label `gap` pixels under its group, drawn on `root` in backend coordinates.
fn bar_axes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    y_label: &str,
    labels: &[String],
    gap: i32,
) -> Result<(), DiffError> {
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(236, 238, 242))
        .bold_line_style(RGBColor(214, 218, 226))
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|y| {
            if (y - y.round()).abs() < 1e-9 {
                short_number(*y)
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .label_style(("sans-serif", 13).into_font().color(&RGBColor(70, 70, 80)))
        .axis_desc_style(("sans-serif", 14).into_font().color(&RGBColor(70, 70, 80)))
        .draw()
        .map_err(chart_error)?;
    for (index, label) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(index as f64, 0.0));
        root.draw(&Text::new(label.clone(), (x, y + gap), centred(13)))
            .map_err(chart_error)?;
    }
    Ok(())
}

/// One series of bars, `(category, value)`, as series `slot.0` of `slot.1` side by side in each
/// category, coloured [`PALETTE`]`[color]`, with a legend entry.
fn bar_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    values: &[(usize, f64)],
    slot: (usize, usize),
    color: usize,
    label: &str,
) -> Result<(), DiffError> {
    let color = PALETTE[color % PALETTE.len()];
    let width = 0.8 / slot.1.max(1) as f64;
    let bars = values.iter().map(|&(index, value)| {
        let left = index as f64 - 0.4 + slot.0 as f64 * width;
        Rectangle::new(
            [(left + width * 0.08, 0.0), (left + width * 0.92, value)],
            color.mix(0.85).filled(),
        )
    });
    chart
        .draw_series(bars)
        .map_err(chart_error)?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    Ok(())
}

/// A heatmap of `values[row][column]` (rows: `y_values`, columns: `x_values`), darker for larger,
/// each cell labelled with `labels[row][column]`; `None` cells are grey.
pub fn heatmap(
    title: &str,
    x_name: &str,
    x_values: &[String],
    y_name: &str,
    y_values: &[String],
    values: &[Vec<Option<f64>>],
    labels: &[Vec<String>],
) -> Result<String, DiffError> {
    let mut svg = String::new();
    {
        let height = (140 + 34 * y_values.len() as u32).clamp(260, 900);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let (columns, rows) = (x_values.len(), y_values.len());
        if columns == 0 || rows == 0 {
            empty(&root, title)?;
            root.present().map_err(chart_error)?;
            drop(root);
            return Ok(svg);
        }
        let max = values
            .iter()
            .flatten()
            .flatten()
            .copied()
            .fold(0.0f64, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, style_title())
            .margin(16)
            .margin_right(44)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0f64..columns as f64, 0.0f64..rows as f64)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|_| String::new())
            .x_desc(x_name)
            .y_desc(y_name)
            .label_style(("sans-serif", 13).into_font().color(&RGBColor(70, 70, 80)))
            .axis_desc_style(("sans-serif", 14).into_font().color(&RGBColor(70, 70, 80)))
            .draw()
            .map_err(chart_error)?;
        for (column, label) in x_values.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(column as f64 + 0.5, 0.0));
            root.draw(&Text::new(label.clone(), (x, y + 8), centred(13)))
                .map_err(chart_error)?;
        }
        for (row, label) in y_values.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, row as f64 + 0.5));
            let style = ("sans-serif", 13)
                .into_font()
                .color(&RGBColor(70, 70, 80))
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(label.clone(), (x - 8, y), style))
                .map_err(chart_error)?;
        }
        for (row, cells) in values.iter().enumerate() {
            for (column, cell) in cells.iter().enumerate() {
                let fill = match cell {
                    Some(value) => {
                        let t = if max > 0.0 { value / max } else { 0.0 };
                        // From pale sand to deep red.
                        let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
                        RGBColor(lerp(252.0, 165.0), lerp(244.0, 15.0), lerp(225.0, 40.0))
                    }
                    None => RGBColor(220, 220, 224),
                };
                let (x, y) = (column as f64, row as f64);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        fill.filled(),
                    )))
                    .map_err(chart_error)?;
                let dark = cell.is_some_and(|v| max > 0.0 && v / max > 0.55);
                let text_color = if dark { WHITE } else { RGBColor(40, 40, 50) };
                let label = labels
                    .get(row)
                    .and_then(|r| r.get(column))
                    .cloned()
                    .unwrap_or_default();
                chart
                    .draw_series(std::iter::once(Text::new(
                        label,
                        (x + 0.5, y + 0.5),
                        ("sans-serif", 12)
                            .into_font()
                            .color(&text_color)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    )))
                    .map_err(chart_error)?;
            }
        }
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_for_axes() {
        assert_eq!(time_label(1_655_085_600.0), "2022-06-13 02:00");
        assert_eq!(short_number(1_250_000.0), "1.2M");
        assert_eq!(short_number(45_000.0), "45k");
        assert_eq!(short_number(0.95), "0.95");
        assert_eq!(short_number(3.0), "3");
        // A narrow price range (the toy fixture's 730..732.5) tells its ticks apart.
        let ticks: Vec<String> = [730.0, 730.5, 731.0, 731.5]
            .iter()
            .map(|y| axis_number(*y, 2.5))
            .collect();
        assert_eq!(ticks, ["730.0", "730.5", "731.0", "731.5"]);
        assert_eq!(axis_number(45_150.0, 300.0), "45,150");
        assert_eq!(axis_number(45_000.0, 70_000.0), "45k");
        assert_eq!(axis_number(1_500.0, 1_000.0), "1500");
        assert_eq!(css_color(0), "#2c5aa0");
        assert_eq!(css_color(6), css_color(0));
    }

    #[test]
    fn a_time_chart_has_lines_marks_and_legend() {
        let line = Line {
            label: "historical".into(),
            color: 0,
            points: vec![(1_655_085_600.0, 1500.0), (1_655_089_200.0, 1200.0)],
            step: true,
            marks: vec![Mark {
                x: 1_655_089_200.0,
                y: 1200.0,
                size: 5.0,
                title: "#24685 <big>".into(),
            }],
            mark_unit: "DAI".into(),
            dashed: false,
        };
        let svg = time_chart("ETH-B oracle price", "USD", &[line], false).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("ETH-B oracle price"));
        assert!(svg.contains("historical"), "legend");
        assert!(
            svg.contains("<title>#24685 &lt;big&gt;</title></circle>"),
            "liquidation marks with their hover text"
        );
        assert!(svg.contains("<polyline"), "the line");
        assert!(svg.contains("06-13"), "time labels");
    }

    #[test]
    fn many_marks_keep_the_largest_and_sum_the_rest_per_stretch_of_time() {
        let marks: Vec<Mark> = (0..10_000)
            .map(|i| Mark {
                x: i as f64 * 60.0,
                y: 1.0,
                size: if i == 777 { 1e9 } else { 1.0 },
                title: format!("#{i}"),
            })
            .collect();
        assert_eq!(
            gather_marks(&marks[..MARKS_DRAWN], "DAI").len(),
            MARKS_DRAWN
        );
        let gathered = gather_marks(&marks, "DAI");
        assert!(
            gathered.len() <= MARKS_DRAWN / 2 + TIME_BINS + 1,
            "{}",
            gathered.len()
        );
        assert_eq!(gathered[0].title, "#777", "the largest first, one by one");
        let total: f64 = gathered.iter().map(|m| m.size).sum();
        assert_eq!(total, 1e9 + 9_999.0, "nothing lost in the sums");
        assert!(
            gathered
                .last()
                .unwrap()
                .title
                .contains("smaller liquidations")
        );
    }

    #[test]
    fn long_lines_are_thinned_keeping_their_peaks() {
        let points: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (i as f64, if i == 54_321 { 99.0 } else { (i % 7) as f64 }))
            .collect();
        let thinned = thin(&points);
        assert!(thinned.len() <= TIME_BINS * 8 * 4, "{}", thinned.len());
        assert!(thinned.contains(&(54_321.0, 99.0)), "the peak survives");
        assert_eq!(thinned.first(), points.first());
        assert_eq!(thinned.last(), points.last());
        assert_eq!(thin(&points[..10]), points[..10].to_vec());
    }

    #[test]
    fn empty_charts_say_so() {
        let svg = time_chart("nothing", "", &[], false).unwrap();
        assert!(svg.contains("nothing: no data in these runs"));
        let svg = bar_chart("no bars", "", &[], &[]).unwrap();
        assert!(svg.contains("no bars: no data"));
    }

    #[test]
    fn before_after_panels_share_one_scale_and_label_every_bucket() {
        let categories: Vec<String> = ["<1", "1-1.5", ">=1.5"].map(str::to_owned).to_vec();
        let runs = [
            BeforeAfter {
                label: "historical".into(),
                color: 0,
                before: Some(vec![1.0, 4.0, 10.0]),
                after: Some(vec![3.0, 2.0, 7.0]),
            },
            BeforeAfter {
                label: "what-if".into(),
                color: 1,
                before: Some(vec![2.0, 4.0, 9.0]),
                after: None,
            },
        ];
        let svg = before_after_chart(
            "health",
            "accounts",
            &categories,
            &runs,
            ["before", "after"],
        )
        .unwrap();
        for text in ["health", "before", "after", "&lt;1", "&gt;=1.5", "what-if"] {
            assert!(svg.contains(text), "missing {text}");
        }
        // 9 bars (the counterfactual has no `after`), one legend box per run and panel drawn.
        let bars = svg.matches("<rect").count();
        assert!(bars >= 9 + 3, "{bars} rects");
        let empty = before_after_chart("none", "accounts", &categories, &[], ["a", "b"]).unwrap();
        assert!(empty.contains("none: no data"));
    }

    #[test]
    fn bars_and_heatmaps_draw_every_cell() {
        let groups = vec![
            BarGroup {
                label: "round 1".into(),
                values: vec![3.0, 5.0],
            },
            BarGroup {
                label: "round 2".into(),
                values: vec![0.0, 2.0],
            },
        ];
        let svg = bar_chart(
            "cascade",
            "liquidations",
            &[("a".into(), 0), ("b".into(), 1)],
            &groups,
        )
        .unwrap();
        assert!(
            svg.matches("<rect").count() >= 4 + 2,
            "bars and legend boxes"
        );
        assert!(svg.contains("round 2"));
        let svg = heatmap(
            "sweep",
            "mat",
            &["1.3".into(), "1.4".into()],
            "chop",
            &["0.1".into()],
            &[vec![Some(1.0), None]],
            &[vec!["1".into(), "-".into()]],
        )
        .unwrap();
        assert!(svg.contains("1.4") && svg.contains("sweep"));
    }
}
