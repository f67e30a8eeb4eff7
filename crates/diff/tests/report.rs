//! `cascade report`: the post-mortem page as a user sees it.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cascade_diff::{DiffError, RunFile, build_report};
use common::{counterfactual, historical, run};

fn runs() -> Vec<RunFile> {
    vec![
        RunFile::from_slice(&historical(), "hist.json").unwrap(),
        RunFile::from_slice(&counterfactual(), "mat.json").unwrap(),
    ]
}

#[test]
fn the_page_holds_every_chart_and_table_and_needs_no_network() {
    let report = build_report(&runs(), None, "pm").unwrap();
    let html = &report.html;
    assert_eq!(report.title, "Post-mortem: historical vs ETH-B mat 1.5");
    assert!(html.starts_with("<!DOCTYPE html>"));
    let names: Vec<&str> = report
        .charts
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "price-1",
            "unsafe-1",
            "debt-at-risk-1",
            "bad-debt-1",
            "cumulative-1",
            "cascade-rounds",
            "waterfall-time",
            "waterfall-size",
            "health-1",
            "health-time-1",
            "health-time-2",
            "leverage-time-1",
            "leverage-time-2",
            "ladder",
            "overlap"
        ]
    );
    assert_eq!(html.matches("<svg").count(), 15, "charts are inline SVG");
    for needle in [
        "What happened",
        "historical: 2 liquidations of 2 accounts; 150.000 WETH seized, 140,000.00 DAI repaid;",
        "ETH-B mat 1.5 against historical: collateral seized -80.000 WETH;",
        "1 account liquidated in historical only, 1 account in ETH-B mat 1.5 only.",
        "Verdicts of the 2 liquidations recorded (historical)",
        "Key numbers",
        "liquidator bonus (USD)",
        "Accounts liquidated in B only (1)",
        "maker ETH-B mat = 1.5",
        "liquidations by cascade round",
        "maker ETH-B: health factor before and after",
        "before: at the first recorded liquidation of the window",
        // The exact table under the chart: historical before, its `<1` bucket.
        "historical before",
        "historical at 2022-06-13T01:01:40Z (seq 110)",
        // The moments stated: the onsets differ, the ends are the same.
        "the runs&#39; moments differ",
        "After: the state after the last event the run reports on (every run at 2022-06-13T02:30:00Z (seq 999))",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    for external in ["http://", "https://", "<script", "<link", "@import", "url("] {
        let outside_svg_namespace = html.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !outside_svg_namespace.contains(external),
            "page reaches out: {external}"
        );
    }
    let markdown = &report.markdown;
    assert!(markdown.starts_with("# Post-mortem: historical vs ETH-B mat 1.5"));
    assert!(
        markdown.contains("![liquidations by cascade round](pm.cascade-rounds.svg)")
            || markdown.contains("(pm.cascade-rounds.svg)")
    );
    assert!(markdown.contains("| liquidations | 2 | 2 |"), "{markdown}");
    assert!(markdown.contains("(pm.health-1.svg)"), "{markdown}");
    assert!(
        markdown.contains("| no debt (not charted) | 1 | 4 | 1 | 4 |"),
        "{markdown}"
    );
    // The waterfall: historical 1 liquidation of 100,000 DAI at 01:01:40, the counterfactual
    // both of its own (40,000 + 9,000 DAI) at 01:00; by size, one each of 40,000 DAI.
    assert!(
        markdown.contains("| 2022-06-13 01:00 | 1 | 100,000.00 DAI | 2 | 49,000.00 DAI |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| 2022-06-13 02:00 | 1 | 40,000.00 DAI | 0 |  |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| 10k-100k | 1 | 40,000.00 DAI | 1 | 40,000.00 DAI |"),
        "{markdown}"
    );
    // Bucket `<1`: historical 1 vault / 1,000 DAI before, none after; B 2 / 2,000 before, 0 after.
    assert!(
        markdown.contains("| <1 | 1 · 1,000 | 0 · 0 | 2 · 2,000 | 0 · 0 |"),
        "{markdown}"
    );
}

/// The test runs as a file of schema `version` would hold them: without the keys it lacked.
fn older_runs(version: u32, missing: &[&str]) -> Vec<RunFile> {
    [(historical(), "h.json"), (counterfactual(), "c.json")]
        .into_iter()
        .map(|(bytes, name)| {
            let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            value["schema_version"] = version.into();
            for key in missing {
                value.as_object_mut().unwrap().remove(*key);
            }
            RunFile::from_slice(&serde_json::to_vec(&value).unwrap(), name).unwrap()
        })
        .collect()
}

#[test]
fn version_1_runs_read_without_health_and_get_no_health_chart() {
    let old = older_runs(1, &["health_distribution", "health_over_time"]);
    assert!(old[0].health_distribution.is_empty());
    let report = build_report(&old, None, "pm").unwrap();
    assert!(
        report
            .charts
            .iter()
            .all(|(name, _)| !name.starts_with("health"))
    );
}

#[test]
fn version_3_runs_read_without_hourly_health_and_get_no_heat_map() {
    let old = older_runs(3, &["health_over_time"]);
    assert!(old[0].health_over_time.is_empty());
    let report = build_report(&old, None, "pm").unwrap();
    let names: Vec<&str> = report.charts.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"health-1"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("health-time")),
        "{names:?}"
    );
}

#[test]
fn reports_refuse_mixed_logs_and_empty_input() {
    let mut mixed = runs();
    mixed.push(RunFile::from_slice(&run(None, Vec::new(), "beef"), "other.json").unwrap());
    assert!(matches!(
        build_report(&mixed, None, "x"),
        Err(DiffError::DifferentLogs { .. })
    ));
    assert!(matches!(
        build_report(&[], None, "x"),
        Err(DiffError::NoRuns)
    ));
    let single = build_report(&runs()[..1], Some("One run"), "x").unwrap();
    assert!(single.html.contains("<title>One run</title>"));
    assert!(single.markdown.contains("| liquidations | 2 |"));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|path| path.is_file())
        })
}

/// Renders the page in headless Chromium, as a user opens it: the screenshot must exist and
/// Chromium's DOM must hold the fifteen SVG charts, the health chart, the hourly heat maps and
/// the leverage charts among them.
#[test]
fn chromium_renders_the_report() {
    let Some(browser) = chromium() else {
        eprintln!("skipping: chromium not found (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, build_report(&runs(), None, "report").unwrap().html).unwrap();
    let profile = dir.path().join("profile");
    let shot = dir.path().join("shot.png");
    let url = format!("file://{}", page.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let status = Command::new(&browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1400,3000")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG screenshot");
    assert!(
        png.len() > 20_000,
        "the screenshot has content ({} bytes)",
        png.len()
    );
    let dom = Command::new(&browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        15,
        "Chromium parsed the fifteen charts"
    );
    assert!(
        dom.contains("id=\"chart-waterfall-time\"") && dom.contains("id=\"chart-waterfall-size\"")
    );
    assert!(dom.contains("id=\"chart-unsafe-1\"") && dom.contains("id=\"chart-bad-debt-1\""));
    assert!(dom.contains("id=\"chart-debt-at-risk-1\""));
    assert!(dom.contains("liquidations by cascade round"));
    assert!(dom.contains("id=\"chart-health-1\""));
    assert!(dom.contains("accounts with debt by health factor"));
    assert!(
        dom.contains("id=\"chart-health-time-1\"") && dom.contains("id=\"chart-health-time-2\"")
    );
    assert!(dom.contains("historical: maker ETH-B accounts with debt by health factor over time"));
    for id in ["leverage-time-1", "leverage-time-2", "ladder", "overlap"] {
        assert!(dom.contains(&format!("id=\"chart-{id}\"")), "{id}");
    }
    assert!(dom.contains("ETH collateral that becomes liquidatable, by fall of its price"));
}

#[test]
fn tables_and_charts_cover_only_the_events_every_run_reports_on() {
    let mut runs = runs();
    runs[1].window.first_seq = Some(150);
    runs[1].window.last_seq = Some(999);
    let report = build_report(&runs, None, "pm").unwrap();
    assert!(
        report.markdown.contains("compared over seq 150..999"),
        "{}",
        report.markdown
    );
    // Only vault 2's bite (seq 210) is left of the historical run, and none of B's (seq 100).
    assert!(
        report.markdown.contains("| liquidations | 1 | 0 |"),
        "{}",
        report.markdown
    );
}

/// A whole-log history beside a counterfactual of a window: its moments (an empty book before
/// its first event, the log's end) are not the counterfactual's, so neither is drawn as if they
/// were, and the note says which moment was left out and why.
#[test]
fn health_moments_outside_the_shared_events_or_of_an_empty_book_are_not_drawn() {
    let mut runs = runs();
    let before = &mut runs[0].health_distribution[0];
    before.seq = 5;
    before.accounts_without_debt = 0;
    for bucket in &mut before.buckets {
        bucket.accounts = 0;
        bucket.debt.value = Default::default();
    }
    runs[1].window.last_seq = Some(500);
    runs[1].health_distribution[1].seq = 500;
    let report = build_report(&runs, None, "pm").unwrap();
    let markdown = &report.markdown;
    let header = markdown
        .lines()
        .find(|line| line.starts_with("| health factor |"))
        .unwrap();
    assert_eq!(
        header,
        "| health factor | ETH-B mat 1.5 before | ETH-B mat 1.5 after |"
    );
    // The counterfactual's bucket `<1`: 2 vaults before, none after; no zeros of history.
    assert!(
        markdown.contains("| <1 | 2 · 2,000 | 0 · 0 |"),
        "{markdown}"
    );
    for needle in [
        "Not drawn: historical before, taken at 2022-06-13T01:01:40Z (seq 5): no account held a \
         position yet; historical after, taken at 2022-06-13T02:30:00Z (seq 999): outside the \
         events every run reports on.",
        "(ETH-B mat 1.5 at 2022-06-13T02:30:00Z (seq 500); the only run drawn)",
        "cascade replay LOG --from FROM --to TO",
    ] {
        assert!(markdown.contains(needle), "missing {needle}\n{markdown}");
    }
}

/// The first screen's numbers, worked by hand from the fixture: the counterfactual's sentence
/// (sold, bad debt, depth, slippage in the debt's unit, lowest price in USD's decimals, largest
/// liquidation), the historical verdict counts and its worst case with its reason rounded.
#[test]
fn the_story_states_the_counterfactual_numbers_and_the_verdicts() {
    use cascade_run::{CascadeReport, CounterfactualReport, LiquidatorReport, Quantity, Verdict};
    let mut runs = runs();
    let bitten = &mut runs[0].liquidations[1];
    bitten.verdict = Some(Verdict::NotLiquidatable);
    bitten.health = Some(Quantity::new(
        cascade_events::U256::from(1_102_970_740_496_693_665u64),
        18,
    ));
    bitten.note = Some(
        "safe at OSM price 1537.835907319888011241 (spot 1182.950697938375393262307692307, \
         rate 1.102970740496693665743623433)"
            .to_owned(),
    );
    let counterfactual = &mut runs[1];
    counterfactual.liquidations[1].bad_debt = Some(common::tokens(500));
    counterfactual.counterfactual = Some(CounterfactualReport {
        baseline: false,
        cascade: CascadeReport {
            cross_protocol: Vec::new(),
            depth: 2,
            rounds: Default::default(),
            triggered_by_impact: 1,
            triggered_by_price_move: 1,
        },
        impact_multiplier_after_last_liquidation: Default::default(),
        label: "ETH-B mat 1.5".to_owned(),
        largest_losses: Vec::new(),
        liquidator: LiquidatorReport {
            collateral_sold: Default::default(),
            passed: Default::default(),
            // 1,234.5 DAI.
            slippage: Quantity::new(
                cascade_events::U256::from(1_234_500_000_000_000_000_000u128),
                18,
            ),
        },
    });
    let report = build_report(&runs, None, "pm").unwrap();
    let markdown = &report.markdown;
    // Vault 2: 60 ETH for 40,000 DAI at 01:00 (round 1); vault 3: 10 ETH for 9,000 DAI, 500 DAI
    // bad (round 2). Every lot sold whole. The timeline's lowest price is 1,000 at 02:00.
    let sentence = "ETH-B mat 1.5: 2 liquidations of 2 accounts; 70.000 WETH seized, \
        49,000.00 DAI repaid (70.000 WETH sold by the liquidator); bad debt 500.00 DAI; the \
        cascade went 2 rounds deep, 1 of them triggered by the price impact of earlier ones; \
        the liquidator lost 1,234.50 DAI to price impact and fees (slippage); lowest oracle \
        price 1,000.00 USD (maker ETH-B, 2022-06-13T02:00:00Z); largest single liquidation \
        maker ETH-B #2 at 2022-06-13T01:00:00Z: 60.000 WETH for 40,000.00 DAI.";
    assert!(markdown.contains(sentence), "{markdown}");
    for row in [
        "| explained | 1 |",
        "| not-liquidatable | 1 |",
        "| 2022-06-13T02:01:40Z | maker ETH-B #2 | not-liquidatable | 40,000.00 DAI | 1.103 | \
         safe at OSM price 1,537.84 (spot 1,182.95, rate 1.102971) |",
    ] {
        assert!(markdown.contains(row), "missing {row}\n{markdown}");
    }
    assert!(
        markdown.contains("Worst cases: the 1 liquidation not explained with the largest debt"),
        "{markdown}"
    );
}

/// A run in line form (`cascade replay --out run.jsonl`) gives the same report as the JSON
/// document; a truncated one is refused with the line.
#[test]
fn the_line_form_reads_as_the_json_document() {
    use cascade_run::lines as run_lines;
    let lines = |bytes: Vec<u8>| run_lines::value_to_lines(serde_json::from_slice(&bytes).unwrap());
    let from_lines = vec![
        RunFile::from_slice(&lines(historical()), "hist.json").unwrap(),
        RunFile::from_slice(&lines(counterfactual()), "mat.json").unwrap(),
    ];
    assert!(!from_lines[0].timeline.is_empty() && !from_lines[1].liquidations.is_empty());
    assert_eq!(
        build_report(&from_lines, None, "pm").unwrap().html,
        build_report(&runs(), None, "pm").unwrap().html
    );
    let whole = lines(historical());
    let cut = &whole[..whole.len()
        - 1
        - whole[..whole.len() - 1]
            .iter()
            .rev()
            .position(|b| *b == b'\n')
            .unwrap()];
    let error = RunFile::from_slice(cut, "cut.jsonl")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cut.jsonl:") && error.contains("the header announces"),
        "{error}"
    );
}

/// A large counterfactual (thousands of accounts liquidated, thousands of marks) stays a page
/// a browser opens: per-account tables list the largest, the price chart gathers its marks.
#[test]
fn a_large_run_is_aggregated_not_listed() {
    use common::liquidation;
    let many: Vec<_> = (0..5_000u64)
        .map(|i| {
            liquidation(
                100 + i,
                common::DAY + 3_600 + i as i64,
                10 + i,
                1,
                1_000 + i,
                Some(1),
            )
        })
        .collect();
    let large = run(Some(common::scenario("big", &[])), many, "feed");
    let runs = vec![
        RunFile::from_slice(&historical(), "hist.json").unwrap(),
        RunFile::from_slice(&large, "big.json").unwrap(),
    ];
    let html = build_report(&runs, None, "pm").unwrap().html;
    assert!(
        html.contains("Accounts liquidated in B only (5000, the 50 with the most debt repaid; --format json lists all)"),
        "the per-account table says it is cut"
    );
    assert!(html.contains("#5009"), "the largest debt is listed");
    assert!(!html.contains(">#10<"), "the smallest is not");
    let circles = html.matches("<circle").count();
    assert!(circles < 400, "{circles} circles for 5,000 liquidations");
    assert!(html.contains("smaller liquidations"));
    assert!(html.len() < 600_000, "{} bytes", html.len());
}

/// A market priced per asset (an Aave pool: no single oracle price on the timeline) gets the
/// price of its most liquidated collateral from the timeline's triggers, with its liquidations.
#[test]
fn a_pool_market_charts_its_collateral_price_from_the_triggers() {
    let mut value: serde_json::Value = serde_json::from_slice(&historical()).unwrap();
    for point in value["timeline"].as_array_mut().unwrap() {
        let price = point["oracle_price"].take();
        point["trigger"] = serde_json::json!({"asset": "WETH", "quote": "USD", "price": price});
    }
    let run = RunFile::from_slice(&serde_json::to_vec(&value).unwrap(), "pool.json").unwrap();
    assert!(run.prices().is_empty(), "no single oracle price");
    let report = build_report(&[run], None, "pm").unwrap();
    let (_, price) = report
        .charts
        .iter()
        .find(|(name, _)| name == "price-1")
        .unwrap();
    assert!(price.contains("WETH price the protocol reads"), "{price}");
    assert_eq!(
        price.matches("</title></circle>").count(),
        2,
        "both liquidations marked"
    );
    assert!(
        report
            .html
            .contains("WETH oracle price, liquidations of WETH collateral marked")
    );
}

/// With a baseline among the runs (a scenario that changes nothing), every other counterfactual
/// is also compared with it, and each run lists its accounts with health and collateral.
#[test]
fn counterfactuals_are_compared_with_the_baseline_and_accounts_are_listed() {
    let mut baseline: serde_json::Value = serde_json::from_slice(&counterfactual()).unwrap();
    let mut scenario = common::scenario("baseline", &[]);
    scenario.baseline = true;
    baseline["scenario"] = serde_json::to_value(scenario).unwrap();
    let mut history: serde_json::Value = serde_json::from_slice(&historical()).unwrap();
    history["liquidations"][0]["health"] = "0.95".into();
    let runs = vec![
        RunFile::from_slice(&serde_json::to_vec(&history).unwrap(), "hist.json").unwrap(),
        RunFile::from_slice(&serde_json::to_vec(&baseline).unwrap(), "base.json").unwrap(),
        RunFile::from_slice(&counterfactual(), "mat.json").unwrap(),
    ];
    let report = build_report(&runs, None, "pm").unwrap();
    assert!(
        report
            .html
            .contains("ETH-B mat 1.5 vs baseline (the baseline: the fair reference)"),
        "the counterfactual against the baseline"
    );
    assert!(!report.html.contains("baseline vs baseline"));
    let markdown = &report.markdown;
    assert!(
        markdown.contains("Accounts liquidated, 2 of 2 with the most debt repaid, their health and collateral (historical)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| maker ETH-B #1 | 1 | 0.95 | 100.000 WETH | 100,000.00 DAI |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| maker ETH-B #3 | 1 | - | 10.000 WETH | 9,000.00 DAI |"),
        "{markdown}"
    );
}

/// The accounts the run files list, at the window's start and at each run's end, against the
/// reference run (the historical one here: no baseline), with the collateral each run's
/// liquidations took: the numbers of `common::accounts`, worked by hand.
#[test]
fn accounts_are_compared_at_the_window_start_and_end() {
    let report = build_report(&runs(), None, "pm").unwrap();
    let markdown = &report.markdown;
    assert!(
        markdown.contains("### Accounts at the window's start and end, 3 of 3, against historical: per run, the health factor at the end · the collateral its liquidations took\n"),
        "{markdown}"
    );
    assert!(
        markdown
            .contains("| account | debt at start | health at start | historical | ETH-B mat 1.5 |"),
        "{markdown}"
    );
    // Liquidated in one run only first (#1 in history, #3 in the counterfactual, by debt at the
    // start), then in both (#2).
    let rows: Vec<&str> = markdown
        .lines()
        .filter(|line| line.starts_with("| maker ETH-B #") && line.contains(" DAI | "))
        .collect();
    assert_eq!(
        rows,
        [
            "| maker ETH-B #1 | 90,000.00 DAI | 1.1111 | closed · lost 100.000 WETH | 1.0370 · lost none |",
            "| maker ETH-B #3 | 9,000.00 DAI | 1.3333 | 1.2444 · lost none | no debt · lost 10.000 WETH |",
            "| maker ETH-B #2 | 40,000.00 DAI | 1.5000 | no debt · lost 50.000 WETH | closed · lost 60.000 WETH |",
        ]
    );
    assert!(
        markdown.contains(
            "historical: start 2022-06-13T00:00:00Z (seq 0), end 2022-06-13T00:16:39Z (seq 999)"
        ),
        "{markdown}"
    );
    assert!(report.html.contains("id=\"accounts-before-after\""));
}

/// Each bar series of the ladder and overlap charts has its own colour: a run's start and end
/// ladders (and each run's protocols) once shared one and could not be told apart.
#[test]
fn ladder_and_overlap_series_have_distinct_colours() {
    let report = build_report(&runs(), None, "pm").unwrap();
    for name in ["ladder", "overlap"] {
        let svg = &report
            .charts
            .iter()
            .find(|(chart, _)| chart == name)
            .unwrap_or_else(|| panic!("no {name} chart"))
            .1;
        // The legend draws one swatch per series, the series' colour as its fill.
        let swatches: Vec<&str> = svg
            .split("<rect")
            .skip(1)
            .filter_map(|rect| rect.split("fill=\"").nth(1)?.split('"').next())
            .filter(|fill| *fill != "#FFFFFF" && *fill != "none")
            .collect();
        let mut distinct = swatches.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 3, "{name}: colours {distinct:?}");
    }
}

#[test]
fn unsafe_episodes_are_tabled_by_cause() {
    // The Dog fixture's vault #4 stays unsafe for two hours with no reason the contracts give:
    // one `unexplained` episode (crates/engine/tests/episode_causes.rs works it out).
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/expected/maker-dog-bark.json");
    let run = RunFile::load(&path).unwrap();
    let html = build_report(&[run], None, "dog").unwrap().html;
    assert!(
        html.contains("Unsafe for more than 3600 s and never liquidated, by cause"),
        "no cause table"
    );
    assert!(
        html.contains(
            "<td>unexplained</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">2.0</td>"
        ),
        "{}",
        &html[html.find("by cause").unwrap()..][..600]
    );
}
