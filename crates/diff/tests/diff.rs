//! `cascade diff` over run files written with the engine's own types.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use cascade_diff::{DiffError, Format, Num, RunFile, compare, compare_across_logs, render};
use common::{DAY, counterfactual, historical, liquidation, run};

fn load(bytes: &[u8], name: &str) -> RunFile {
    RunFile::from_slice(bytes, name).unwrap()
}

fn n(text: &str) -> Option<Num> {
    Some(Num::parse(text).unwrap())
}

#[test]
fn totals_side_by_side() {
    let a = load(&historical(), "hist.json");
    let b = load(&counterfactual(), "mat.json");
    let c = compare(&a, &b).unwrap();
    assert_eq!(c.a.label, "historical");
    assert_eq!(c.b.label, "ETH-B mat 1.5");
    assert_eq!((c.a.mode, c.b.mode), ("historical", "counterfactual"));
    let row = |metric: &str, unit: &str| {
        c.totals
            .iter()
            .find(|r| r.metric == metric && r.unit == unit)
            .unwrap_or_else(|| panic!("no {metric} ({unit})"))
            .clone()
    };
    let liquidations = row("liquidations", "");
    assert_eq!(
        (liquidations.a, liquidations.b, liquidations.delta),
        (n("2"), n("2"), n("0"))
    );
    let collateral = row("collateral seized", "WETH");
    assert_eq!(
        (collateral.a, collateral.b, collateral.delta),
        (n("150"), n("70"), n("-80"))
    );
    assert_eq!(row("debt repaid", "DAI").b, n("49000"));
    // Bonus: vault 1 at 1200 (seq 110): 120,000 - 100,000; vault 2 at 1000: 50,000 - 40,000.
    // B: vault 2 at 1200 (seq 100): 72,000 - 40,000; vault 3: 12,000 - 9,000.
    let bonus = row("liquidator bonus", "USD");
    assert_eq!((bonus.a, bonus.b), (n("30000"), n("35000")));
    let depth = row("cascade depth", "rounds");
    assert_eq!((depth.a, depth.b, depth.delta), (None, n("2"), None));
    assert_eq!(row("bad debt", "DAI").a, n("0"));
}

#[test]
fn accounts_in_one_run_only_and_loss_changes() {
    let a = load(&historical(), "hist.json");
    let b = load(&counterfactual(), "mat.json");
    let c = compare(&a, &b).unwrap();
    let only_a: Vec<&str> = c
        .only_in_a
        .iter()
        .map(|h| h.account.account.as_str())
        .collect();
    let only_b: Vec<&str> = c
        .only_in_b
        .iter()
        .map(|h| h.account.account.as_str())
        .collect();
    assert_eq!((only_a, only_b), (vec!["#1"], vec!["#3"]));
    assert_eq!(c.only_in_b[0].collateral_seized["WETH"], Num::from_int(10));
    // Vault 2: 10,000 -> 32,000 (+22,000); vault 1: 20,000 -> 0; vault 3: 0 -> 3,000.
    let changes: Vec<(&str, Num)> = c
        .loss_changes
        .iter()
        .map(|l| (l.account.account.as_str(), l.delta))
        .collect();
    assert_eq!(
        changes,
        [
            ("#2", Num::from_int(22_000)),
            ("#1", Num::from_int(-20_000)),
            ("#3", Num::from_int(3_000))
        ]
    );
    assert!(c.differs());
    assert!(!compare(&a, &a).unwrap().differs());
    // A run against itself takes a shortcut; it must say what comparing a copy says.
    assert_eq!(
        compare(&a, &a).unwrap().to_json(),
        compare(&a, &a.clone()).unwrap().to_json()
    );
    assert_eq!(
        compare(&b, &b).unwrap().to_json(),
        compare(&b, &b.clone()).unwrap().to_json()
    );
}

#[test]
fn per_asset_and_per_hour() {
    let c = compare(&load(&historical(), "a"), &load(&counterfactual(), "b")).unwrap();
    assert_eq!(c.by_asset.len(), 1);
    let eth = &c.by_asset[0];
    assert_eq!((eth.liquidations_a, eth.liquidations_b), (2, 2));
    assert_eq!(
        (eth.debt_a, eth.debt_b),
        (Num::from_int(140_000), Num::from_int(49_000))
    );
    let hours: Vec<(&str, u64, u64)> = c
        .by_hour
        .iter()
        .map(|h| (h.hour.as_str(), h.liquidations_a, h.liquidations_b))
        .collect();
    assert_eq!(
        hours,
        [
            ("2022-06-13T01:00:00Z", 1, 2),
            ("2022-06-13T02:00:00Z", 1, 0)
        ]
    );
    // Columns that mix assets keep each row's unit and its fixed decimals (WETH 3, DAI 2):
    // `150` WETH is `150.000 WETH`, never `150`.
    let markdown = render(&c, Format::Markdown);
    assert!(
        markdown.contains(
            "| WETH | 2 | 2 | 150.000 WETH | 70.000 WETH | 140,000.00 DAI | 49,000.00 DAI |"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("| 2022-06-13T01:00:00Z | 1 | 2 | 100.000 WETH | 70.000 WETH |"),
        "{markdown}"
    );
    // An hour whose liquidations take several assets sums them in two decimals and says so.
    let mut wbtc = liquidation(120, DAY + 3_800, 4, 2, 50_000, None);
    wbtc.collateral_asset = cascade_events::Id::name("WBTC");
    let mixed = load(
        &run(
            None,
            vec![liquidation(110, DAY + 3_700, 1, 100, 100_000, None), wbtc],
            "feed",
        ),
        "mixed",
    );
    let c = compare(&mixed, &load(&counterfactual(), "b")).unwrap();
    let markdown = render(&c, Format::Markdown);
    assert!(
        markdown.contains(
            "| 2022-06-13T01:00:00Z | 2 | 2 | 102.00 (mixed units) | 70.00 (mixed units) |"
        ),
        "{markdown}"
    );
    assert!(
        markdown
            .contains("| WBTC | 1 | 0 | 2.0000 WBTC | 0.0000 WBTC | 50,000.00 DAI | 0.00 DAI |"),
        "{markdown}"
    );
}

#[test]
fn refuses_runs_of_different_logs() {
    let a = load(&historical(), "hist.json");
    let other = load(&run(None, Vec::new(), "beef"), "other.json");
    let error = compare(&a, &other).unwrap_err();
    assert!(matches!(error, DiffError::DifferentLogs { .. }));
    let message = error.to_string();
    assert!(
        message.contains("hist.json") && message.contains("other.json"),
        "{message}"
    );
    assert!(
        message.contains("content hash feed") && message.contains("content hash beef"),
        "{message}"
    );
}

#[test]
fn bad_files_are_named() {
    let error = RunFile::from_slice(b"{\n  \"schema_version\": 1,\n  oops", "x.json").unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("x.json:3:"), "{message}");
    let mut value: serde_json::Value = serde_json::from_slice(&historical()).unwrap();
    value["schema_version"] = 99.into();
    let error = RunFile::from_slice(&serde_json::to_vec(&value).unwrap(), "v.json").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "v.json: run schema version 99, this build reads versions 1 to {}",
            cascade_engine::run::RUN_SCHEMA_VERSION
        )
    );
}

#[test]
fn a_run_missing_a_section_or_a_total_is_refused_not_read_as_zero() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/expected/maker-dog-bark.json");
    let whole: serde_json::Value = serde_json::from_slice(&std::fs::read(golden).unwrap()).unwrap();
    for (section, key) in [
        ("totals", None),
        ("liquidations", None),
        ("timeline", None),
        ("state_hash", None),
        ("window", None),
        ("totals", Some("liquidations")),
        ("totals", Some("bad_debt")),
    ] {
        let mut cut = whole.clone();
        let missing = match key {
            None => {
                cut.as_object_mut().unwrap().remove(section);
                section
            }
            Some(key) => {
                cut[section].as_object_mut().unwrap().remove(key);
                key
            }
        };
        let error = RunFile::from_slice(&serde_json::to_vec(&cut).unwrap(), "cut.json")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cut.json:") && error.contains(&format!("missing field `{missing}`")),
            "{section}/{key:?}: {error}"
        );
    }
    RunFile::from_slice(&serde_json::to_vec(&whole).unwrap(), "whole.json").unwrap();
}

#[test]
fn json_is_stable_and_exact() {
    let c = compare(
        &load(&historical(), "a.json"),
        &load(&counterfactual(), "b.json"),
    )
    .unwrap();
    let text = render(&c, Format::Json);
    assert_eq!(text, render(&c, Format::Json), "same input, same bytes");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Top-level keys come in declaration order in the text.
    let order = [
        "schema_version",
        "log",
        "compared",
        "a",
        "b",
        "liquidations",
        "liquidation_changes",
        "totals",
        "only_in_a",
        "only_in_b",
        "loss_changes",
        "by_asset",
        "by_hour",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| {
            text.find(&format!("\n  \"{key}\": "))
                .unwrap_or_else(|| panic!("{key}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(json.as_object().unwrap().len(), order.len());
    assert_eq!(
        json["compared"],
        serde_json::json!({"first": null, "last": null})
    );
    assert_eq!(json["totals"][2]["metric"], "collateral seized");
    assert_eq!(json["totals"][2]["delta"], "-80");
    assert_eq!(json["loss_changes"][0]["delta"], "22000");
    assert_eq!(json["only_in_b"][0]["account"], "#3");
    assert_eq!(
        json["totals"].as_array().unwrap().last().unwrap()["a"],
        serde_json::Value::Null
    );
}

#[test]
fn table_markdown_and_html_show_the_same_rows() {
    let mut b = load(&counterfactual(), "b.json");
    // A hostile label must not inject markup.
    b.scenario = Some(common::scenario("<script>x</script>", &[]));
    let c = compare(&load(&historical(), "a.json"), &b).unwrap();
    let table = render(&c, Format::Table);
    assert!(table.contains("collateral seized (WETH)"), "{table}");
    // Amounts keep their unit's decimals: WETH 3, USD 2 (docs/diff.md, "Amounts").
    assert!(table.contains("-80.000"), "{table}");
    // Counts stay whole numbers, whatever their unit.
    let depth = table
        .lines()
        .find(|line| line.contains("cascade depth (rounds)"))
        .unwrap();
    assert!(depth.split_whitespace().any(|cell| cell == "2"), "{depth}");
    assert!(table.contains("Accounts liquidated in A only (1)"));
    let markdown = render(&c, Format::Markdown);
    assert!(
        markdown.contains("| liquidator bonus (USD) | 30,000.00 | 35,000.00 | +5,000.00 |"),
        "{markdown}"
    );
    let html = render(&c, Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;") && !html.contains("<script>"));
    assert!(
        html.contains("<td class=\"num up\">+5,000.00</td>"),
        "deltas are coloured"
    );
    assert_eq!(DAY % 3_600, 0);
}

#[test]
fn only_the_events_both_runs_report_on_are_compared() {
    let a = load(&historical(), "hist.json");
    let mut b = load(&counterfactual(), "window.json");
    // The counterfactual reports from seq 105 on: the historical bite of vault 1 (seq 110) is
    // inside, but a liquidation at seq 100 in B would not be.
    b.window.first_seq = Some(105);
    b.window.last_seq = Some(999);
    let c = compare(&a, &b).unwrap();
    assert_eq!((c.compared.first, c.compared.last), (Some(105), Some(999)));
    let liquidations = c
        .totals
        .iter()
        .find(|r| r.metric == "liquidations")
        .unwrap();
    assert_eq!((liquidations.a, liquidations.b), (n("2"), n("0")));
}

#[test]
fn wrapped_and_native_collateral_count_as_one_asset() {
    let a = load(&historical(), "hist.json");
    let mut b = load(&counterfactual(), "sim.json");
    for liquidation in &mut b.liquidations {
        liquidation.collateral_asset = cascade_events::Id::name("WETH");
    }
    let c = compare(&a, &b).unwrap();
    let collateral: Vec<&str> = c
        .totals
        .iter()
        .filter(|r| r.metric == "collateral seized")
        .map(|r| r.unit.as_str())
        .collect();
    assert_eq!(collateral, ["WETH"]);
    assert_eq!(c.by_asset.len(), 1);
    assert_eq!(c.only_in_b[0].collateral_seized["WETH"], Num::from_int(10));
}

#[test]
fn liquidations_match_by_identity_even_across_logs() {
    // The same history in a log that gained events: every seq moved, one verdict changed.
    let a = load(
        &run(
            None,
            vec![
                liquidation(110, DAY + 3_700, 1, 100, 100_000, None),
                liquidation(210, DAY + 7_300, 2, 50, 40_000, None),
            ],
            "aa",
        ),
        "old.json",
    );
    let mut second = liquidation(420, DAY + 7_300, 2, 50, 40_000, None);
    second.verdict = Some(cascade_engine::Verdict::NotLiquidatable);
    let b = load(
        &run(
            None,
            vec![liquidation(220, DAY + 3_700, 1, 100, 100_000, None), second],
            "bb",
        ),
        "new.json",
    );
    assert!(matches!(
        compare(&a, &b),
        Err(DiffError::DifferentLogs { .. })
    ));
    let c = compare_across_logs(&a, &b).unwrap();
    assert_eq!(
        (
            c.liquidations.matched,
            c.liquidations.only_in_a,
            c.liquidations.only_in_b,
            c.liquidations.changed,
            c.liquidations.verdicts_changed
        ),
        (2, 0, 0, 1, 1)
    );
    assert_eq!(
        c.liquidation_changes[0].id,
        "2022-06-13T02:01:40Z recorded maker ETH-B #2"
    );
    assert_eq!(c.log_b.as_ref().unwrap().content_hash, "bb");
    assert!(c.differs());
    let table = render(&c, Format::Table);
    assert!(
        table.starts_with(
            "summary: 2 liquidations matched, 0 only in A, 0 only in B, 1 changed (1 verdict); 1 total moved"
        ),
        "{table}"
    );
    assert!(table.contains("explained  not-liquidatable"), "{table}");
    assert!(table.contains("(another log: each run compared over its whole window)"));
    // A run that stops earlier (`--to`) covers another stretch of history: refused.
    let mut shorter: serde_json::Value = serde_json::from_slice(&run(
        None,
        vec![liquidation(220, DAY + 3_700, 1, 100, 100_000, None)],
        "bb",
    ))
    .unwrap();
    shorter["window"]["to_time"] = "2022-06-13T02:00:00Z".into();
    let shorter = load(&serde_json::to_vec(&shorter).unwrap(), "short.json");
    assert!(matches!(
        compare_across_logs(&a, &shorter),
        Err(DiffError::DifferentWindows { .. })
    ));
}

#[test]
fn a_bonus_no_liquidation_could_be_valued_says_no_price() {
    let mut a = load(&historical(), "a.json");
    let b = load(&counterfactual(), "b.json");
    // Markets without a single oracle price (Aave pools, Compound) have no price in the timeline.
    a.timeline.clear();
    let c = compare(&a, &b).unwrap();
    let bonus = c
        .totals
        .iter()
        .find(|row| row.metric == "liquidator bonus")
        .unwrap();
    assert_eq!((bonus.a, bonus.delta), (None, None));
    assert!(bonus.b.is_some());
    let table = render(&c, Format::Table);
    let line = table
        .lines()
        .find(|line| line.contains("liquidator bonus"))
        .unwrap();
    assert!(line.contains("no price"), "{line}");
    assert!(!line.contains(" 0 "), "{line}");
}
