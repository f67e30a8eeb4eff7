//! The commands the documentation shows, run as written: the README's usage block, the
//! real-data examples of `docs/ingest.md` and `docs/fidelity.md`, the post-mortems of
//! `docs/postmortems/` (against `../shared/data`, skipped with a notice when it is absent), the
//! sweep over Kafka workers of `docs/kafka.md` (also only when this checkout's broker runs), and
//! the `cascade` lines of the GitHub Actions job in `docs/diff.md`, the position-snapshot and
//! unknown-side workflows of `docs/ingest.md`, the three-protocol market of `docs/synthetic.md` and the threshold cut of
//! `docs/leverage.md` (no real data needed),
//! `docs/kafka.md`'s Docker job against a private broker (the compose file parsed, `docker/job.sh`
//! run as the doc shows; no Docker engine needed), and, checked without running them (they are
//! measurements and a clean-machine build), the command lines of `docs/build.md`,
//! `docs/benchmarks.md`, `docs/scale-out.md` and `docs/reliability.md`: subcommands, flags,
//! packages, bench targets and scripts exist. `docs/scenarios.md` and `docs/engine.md` show no
//! command to run (only synopses and file formats).
//!
//! Each line goes through `bash -c` with the built `cascade` first on the PATH, so comments,
//! quoting and redirections behave as they do for a reader who pastes them.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The lines of the first fenced block starting with ```` ```lang ```` after `heading` in `text`.
fn block_after<'a>(text: &'a str, heading: &str, lang: &str) -> Vec<&'a str> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let fence = format!("```{lang}\n");
    let body = &text[start..];
    let open = body.find(&fence).unwrap_or_else(|| panic!("no {fence:?}")) + fence.len();
    let close = body[open..].find("```").unwrap();
    body[open..open + close]
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect()
}

/// Runs `line` with bash in `dir`, the test's `cascade` first on the PATH.
fn shell(line: &str, dir: &Path, env: &[(&str, &Path)]) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_cascade")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut command = Command::new("bash");
    command
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("CASCADE_DATA_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn broker_answers(address: &str) -> bool {
    let address: SocketAddr = address.parse().unwrap();
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// Runs the lines of a documented block in a scratch copy of the layout the docs assume (the
/// repository's fixtures beside the outputs, `../shared/data` one level up); returns the scratch
/// folder, or `None` (with a notice) when the real data is absent.
fn run_with_real_data(doc: &str, lines: &[&str]) -> Option<tempfile::TempDir> {
    let repo = repo();
    let data = repo.join("../shared/data");
    if !data.is_dir() {
        eprintln!(
            "NOTICE: {} is absent: the commands of {doc} (real data) were not run",
            data.display()
        );
        return None;
    }
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(repo.join("fixtures"), work.join("fixtures")).unwrap();
    std::os::unix::fs::symlink(repo.join("../shared"), temp.path().join("shared")).unwrap();
    for line in lines {
        if line.starts_with("cascade stream") && !broker_answers("127.0.0.1:9092") {
            eprintln!("NOTICE: no Kafka broker at 127.0.0.1:9092: not run: {line}");
            continue;
        }
        let output = shell(line, &work, &[]);
        // `diff` of two different runs reports its findings with exit 1, as the README says, and
        // an ingest that quarantined rows under `--skip-invalid` exits 1 (docs/ingest.md).
        let expected = if line.starts_with("cascade diff") || line.contains("--skip-invalid") {
            1
        } else {
            0
        };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{doc}: {line}\n{output:?}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Some(temp)
}

#[test]
fn the_readme_usage_block_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut lines = block_after(&readme, "## Usage", "sh");
    assert!(lines.len() >= 10, "{lines:?}");
    // docs/diff.md's examples use the README's log, so they run after its block.
    let diff_doc = std::fs::read_to_string(repo().join("docs/diff.md")).unwrap();
    let diff_lines = block_after(&diff_doc, "With the README's log `ethb`", "sh");
    assert_eq!(diff_lines.len(), 5, "{diff_lines:?}");
    lines.extend(diff_lines);
    let Some(temp) = run_with_real_data("README.md and docs/diff.md", &lines) else {
        return;
    };
    for file in [
        "history.json",
        "window.json",
        "osm0.json",
        "report/index.html",
        "report/index.md",
        "golden.json",
        "diff.json",
    ] {
        assert!(
            temp.path().join("work").join(file).is_file(),
            "{file} was not written"
        );
    }
}

#[test]
fn the_real_data_examples_of_ingest_and_fidelity_run_as_written() {
    for (doc, heading) in [
        ("docs/ingest.md", "whatever order they run in:"),
        (
            "docs/fidelity.md",
            "Three logs, built with the real commands",
        ),
        (
            "docs/postmortems/2021-05-19-cross-protocol.md",
            "## Commands",
        ),
    ] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        let lines = block_after(&text, heading, "sh");
        assert!(lines.len() >= 4, "{doc}: {lines:?}");
        let Some(temp) = run_with_real_data(doc, &lines) else {
            continue;
        };
        if doc.ends_with("cross-protocol.md") {
            cross_protocol_numbers(&text, &temp.path().join("work"));
        }
    }
}

/// The numbers `docs/postmortems/2021-05-19-cross-protocol.md` states, from the run files its
/// commands wrote into `work`.
fn cross_protocol_numbers(page: &str, work: &Path) {
    let run = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(work.join(name)).unwrap()).unwrap()
    };
    let history = run("xp-history.json");
    let aave: Vec<&serde_json::Value> = history["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["protocol"] == "aave-v2")
        .collect();
    let tally = |day: &str| {
        let of_day: Vec<_> = aave
            .iter()
            .filter(|l| l["time"].as_str().unwrap().starts_with(day))
            .collect();
        let count = |key: &str, value: &str| {
            of_day
                .iter()
                .filter(|l| match key {
                    "verdict" => l["verdict"] == value,
                    _ => l["seize"]["result"] == value,
                })
                .count()
        };
        (
            of_day.len(),
            count("verdict", "unknown-account"),
            count("seize", "consistent"),
            count("seize", "mismatch"),
        )
    };
    assert_eq!(tally(""), (1088, 1088, 703, 385));
    assert_eq!(tally("2021-05-19"), (679, 679, 391, 288));
    let hour = |h: &str| {
        aave.iter()
            .filter(|l| {
                l["time"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("2021-05-19T{h}"))
            })
            .count()
    };
    // The Aave column of the page's table, and its busiest hours.
    for (h, count) in [
        ("00", 1),
        ("06", 4),
        ("07", 3),
        ("08", 1),
        ("09", 9),
        ("10", 27),
        ("11", 91),
        ("12", 133),
        ("13", 90),
        ("14", 103),
        ("20", 28),
    ] {
        assert_eq!(hour(h), count, "Aave v2 liquidations in hour {h}");
    }

    let uniswap = run("xp-uniswap.json");
    let cascade = &uniswap["counterfactual"]["cascade"];
    assert_eq!(cascade["depth"], 5);
    assert_eq!(cascade["triggered_by_price_move"], 33);
    assert_eq!(cascade["triggered_by_impact"], 22);
    assert!(cascade.get("cross_protocol").is_none(), "{cascade}");
    let simulated = uniswap["liquidations"].as_array().unwrap();
    assert_eq!(simulated.len(), 55);
    let on_the_day = simulated
        .iter()
        .filter(|l| l["time"].as_str().unwrap().starts_with("2021-05-19"))
        .count();
    assert_eq!(on_the_day, 34);
    let sold = uniswap["counterfactual"]["liquidator"]["collateral_sold"]["WETH"]
        .as_str()
        .unwrap();
    assert!(sold.starts_with("23903.22"), "{sold}");

    // The table's OSM readings with and without the impact, and the move, as the page rounds
    // them.
    let baseline = run("xp-baseline.json");
    let osm = |run: &serde_json::Value, at: &str| -> f64 {
        run["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|point| point["time"] == at && !point["oracle_price"].is_null())
            .map(|point| point["oracle_price"].as_str().unwrap().parse().unwrap())
            .unwrap_or_else(|| panic!("no OSM price at {at}"))
    };
    let thousands = |value: f64| {
        let cents = format!("{value:.2}");
        let (whole, fraction) = cents.split_once('.').unwrap();
        let mut grouped = String::new();
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        format!("{grouped}.{fraction}")
    };
    for (reading, seen) in [
        ("01:00", "00:00"),
        ("07:00", "06:00"),
        ("08:00", "07:00"),
        ("09:00", "08:00"),
        ("10:00", "09:00"),
        ("11:00", "10:00"),
        ("15:00", "14:00"),
        ("21:00", "20:00"),
    ] {
        let at = format!("2021-05-19T{reading}:00Z");
        let (with, without) = (osm(&uniswap, &at), osm(&baseline, &at));
        let row = format!(
            "| {reading} | {} | {} | {:.1}% | {seen} | {} |",
            thousands(with),
            thousands(without),
            (with / without - 1.0) * 100.0,
            hour(&seen[..2])
        );
        assert!(page.contains(&row), "the page lacks the row {row}");
    }
}

#[test]
fn the_ci_job_of_docs_diff_runs_as_written() {
    let repo = repo();
    let doc = std::fs::read_to_string(repo.join("docs/diff.md")).unwrap();
    let lines: Vec<&str> = block_after(&doc, "## `cascade check` in CI", "yaml")
        .into_iter()
        .map(str::trim)
        .filter(|line| line.starts_with("cascade "))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let temp = tempfile::tempdir().unwrap();
    for line in lines {
        let output = shell(line, &repo, &[("RUNNER_TEMP", temp.path())]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{line}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Runs the four commands of the `sh` block after `heading` in `docs/ingest.md` in a temporary
/// folder linking the repository's fixtures; the folder and each command's output.
fn ingest_workflow(heading: &str) -> (tempfile::TempDir, Vec<String>) {
    let repo = repo();
    let doc = std::fs::read_to_string(repo.join("docs/ingest.md")).unwrap();
    let lines = block_after(&doc, heading, "sh");
    assert_eq!(lines.len(), 4, "{lines:?}");
    let temp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo.join("fixtures"), temp.path().join("fixtures")).unwrap();
    let mut outputs = Vec::new();
    for line in lines {
        let output = shell(line, temp.path(), &[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{line}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(String::from_utf8(output.stdout).unwrap());
    }
    (temp, outputs)
}

#[test]
fn the_snapshot_workflow_of_docs_ingest_runs_as_written() {
    let (temp, outputs) = ingest_workflow("The workflow, end to end");
    assert!(outputs[2].contains("explained 1"), "{}", outputs[2]);
    // The health factors the doc works out: 1.1 and 4.125 at the block, 0.967083333333333333
    // for Alice after her liquidation.
    let accounts = std::fs::read_to_string(temp.path().join("accounts.csv")).unwrap();
    let healths: Vec<(String, String, String)> = csv::Reader::from_reader(accounts.as_bytes())
        .records()
        .map(|row| {
            let row = row.unwrap();
            (row[0].to_owned(), row[4].to_owned(), row[18].to_owned())
        })
        .collect();
    let health = |at: &str, account: &str| {
        healths
            .iter()
            .find(|(t, a, _)| t == at && a.ends_with(account))
            .map(|(_, _, h)| h.as_str())
    };
    assert_eq!(health("2021-05-19T00:00:00Z", "a11ce"), Some("1.1"));
    assert_eq!(health("2021-05-19T00:00:00Z", "b0b"), Some("4.125"));
    assert_eq!(
        health("2021-05-19T01:00:00Z", "a11ce"),
        Some("0.967083333333333333")
    );
    assert!(
        outputs[3].contains("health 0.967083333333333333"),
        "{}",
        outputs[3]
    );
}

#[test]
fn the_unknown_side_workflow_of_docs_ingest_runs_as_written() {
    let (temp, outputs) = ingest_workflow("A liquidation with an unknown side");
    // The summary the doc quotes: the recorded collateral, no debt line.
    assert!(outputs[2].contains("explained 1"), "{}", outputs[2]);
    assert!(
        outputs[2].contains("collateral seized: 4.725 WETH"),
        "{}",
        outputs[2]
    );
    assert!(!outputs[2].contains("debt repaid"), "{}", outputs[2]);
    // The note the doc quotes, and the derived 7,500 USDC.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(temp.path().join("nodebt-run.json")).unwrap())
            .unwrap();
    let liquidation = &run["liquidations"][0];
    assert_eq!(liquidation["verdict"], "explained");
    assert_eq!(liquidation["debt_repaid"], "7500");
    assert_eq!(
        liquidation["note"],
        "debt repaid not recorded: 7500 derived from the collateral seized 4.725 (the repayment whose seizure by the formula is nearest it)"
    );
    assert!(
        outputs[3].contains("health 0.967083333333333333"),
        "{}",
        outputs[3]
    );
    // The mapping the doc shows is the fixture's.
    let doc = std::fs::read_to_string(repo().join("docs/ingest.md")).unwrap();
    let shown = block_after(&doc, "A liquidation with an unknown side", "toml").join("\n");
    let fixture =
        std::fs::read_to_string(repo().join("fixtures/ingest/snapshot/liquidations-no-debt.toml"))
            .unwrap();
    assert!(fixture.contains(&shown), "{shown}");
}

#[test]
fn the_totals_workflow_of_docs_ingest_runs_as_written() {
    let (temp, outputs) = ingest_workflow("The same workflow from totals");
    // The doc's verdicts and its comparison line.
    assert!(outputs[2].contains("explained 1"), "{}", outputs[2]);
    assert!(outputs[2].contains("not-liquidatable 1"), "{}", outputs[2]);
    assert!(
        outputs[2].contains("recorded health factors: 3 compared, 0 differ by more than 0.01%"),
        "{}",
        outputs[2]
    );
    // The health factors the doc works out, digit for digit.
    let accounts = std::fs::read_to_string(temp.path().join("totals-accounts.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(accounts.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let healths: Vec<(String, String, String)> = reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            (
                row[column("account")].to_owned(),
                row[column("health_factor")].to_owned(),
                row[column("health_difference_ppm")].to_owned(),
            )
        })
        .collect();
    let health = |suffix: &str| {
        healths
            .iter()
            .find(|(account, _, _)| account.ends_with(suffix))
            .map(|(_, health, ppm)| (health.as_str(), ppm.as_str()))
    };
    assert_eq!(health("a11ce"), Some(("1.072117894736842105", "0")));
    assert_eq!(health("b0b"), Some(("1.145833333333333333", "0")));
    assert_eq!(health("ca201"), Some(("inf", "")));
    assert_eq!(health("d00d"), Some(("0.941176470588235294", "0")));
    assert!(
        outputs[3].contains("health 1.072117894736842105"),
        "{}",
        outputs[3]
    );
}

/// `docs/leverage.md`'s threshold cut on the command line: the commands as written, the output
/// the page shows line for line, and the numbers `fixtures/scenarios/compound-loop-cut.toml`
/// works out, read from the two run files.
#[test]
fn the_threshold_cut_of_docs_leverage_runs_as_written() {
    let repo = repo();
    let doc = std::fs::read_to_string(repo.join("docs/leverage.md")).unwrap();
    let lines = block_after(&doc, "### On the command line", "sh");
    assert_eq!(lines.len(), 5, "{lines:?}");
    let temp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo.join("fixtures"), temp.path().join("fixtures")).unwrap();
    let mut printed = String::new();
    for line in &lines {
        let output = shell(line, temp.path(), &[]);
        // `cascade diff` exits 1 when the runs differ, as they must here.
        let expected = if line.starts_with("cascade diff") {
            1
        } else {
            0
        };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{line}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed.push_str(&String::from_utf8(output.stdout).unwrap());
    }
    for shown in block_after(&doc, "What they print", "text") {
        assert!(
            printed.lines().any(|line| line == shown),
            "the page shows {shown:?}, the commands printed:\n{printed}"
        );
    }

    let run = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(temp.path().join(name)).unwrap()).unwrap()
    };
    let base = run("base.json");
    assert_eq!(base["liquidations"].as_array().unwrap().len(), 0);
    let cut = run("cut.json");
    let liquidations = cut["liquidations"].as_array().unwrap();
    assert_eq!(liquidations.len(), 1, "{liquidations:?}");
    let looper = "0x0000000000000000000000000000000000000100";
    let liquidation = &liquidations[0];
    assert_eq!(liquidation["account"], looper);
    assert_eq!(liquidation["time"], "2021-05-19T02:00:00Z");
    assert_eq!(liquidation["collateral_seized"], "15587.6288659792");
    assert_eq!(liquidation["debt_repaid"], "14000");
    assert_eq!(
        cut["scenario"]["changes"][1],
        "threshold cut: looped positions cut at the window start: compound-v2 2"
    );
    let end_health = |account: &str| {
        cut["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account"] == account)
            .map(|a| a["end"]["health"].as_str().unwrap().to_owned())
    };
    assert_eq!(end_health(looper).as_deref(), Some("1.1840000000000088"));
    assert_eq!(
        end_health("0x0000000000000000000000000000000000000200").as_deref(),
        Some("2.037")
    );
}

/// Runs `lines` (one documented block) as one bash script in `dir`, stopping at the first
/// command that fails, as a reader pasting the block into a terminal with `set -e` would see it.
fn script(lines: &[String], dir: &Path, env: &[(&str, &Path)]) -> Output {
    let text = format!("set -euo pipefail\n{}\n", lines.join("\n"));
    shell(&text, dir, env)
}

/// Checks that a documented block (`lines`) exited 0; else its lines and output are the message.
fn assert_block_ran(output: &Output, lines: &[String]) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{lines:#?}\n{}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The post-mortems (`docs/postmortems/`): the shared log of their index, then each page's
/// block, against `../shared/data`. As written, except that `cargo build` is this test's own
/// build, `C` is this test's `cascade`, `/tmp/pm` is a scratch folder, and a `$C diff` line may
/// exit 1 (the runs differ, as `docs/diff.md` documents). The numbers the pages show are checked
/// against what the commands printed and wrote.
#[test]
fn the_postmortems_run_as_written() {
    let repo = repo();
    if !repo.join("../shared/data").is_dir() {
        eprintln!("NOTICE: ../shared/data is absent: the post-mortems' commands were not run");
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let pm = temp.path().join("pm");
    let adapt = |block: Vec<&str>| -> Vec<String> {
        block
            .into_iter()
            .filter(|line| !line.starts_with("cargo build"))
            .map(|line| {
                let line = line
                    .replace("C=target/release/cascade", "C=cascade")
                    .replace("/tmp/pm", pm.to_str().unwrap());
                if line.starts_with("$C diff") {
                    // Before the line's comment, if any.
                    let command = line.split(" #").next().unwrap_or(&line).trim_end();
                    format!("{command} || [ $? -eq 1 ]")
                } else {
                    line
                }
            })
            .collect()
    };
    let read = |doc: &str| std::fs::read_to_string(repo.join(doc)).unwrap();
    let index = read("docs/postmortems/README.md");
    let mut lines = adapt(block_after(&index, "## The log they all use", "sh"));
    for (doc, heading) in [
        (
            "docs/postmortems/2022-06-13-ethb.md",
            "Window 2022-06-10 to 2022-06-20",
        ),
        (
            "docs/postmortems/2021-05-19-ethb-uniswap.md",
            "How deep does the cascade go",
        ),
        (
            "docs/postmortems/2022-ethb-mat-sweep.md",
            "One counterfactual per value",
        ),
    ] {
        let text = read(doc);
        lines.extend(adapt(block_after(&text, heading, "sh")));
    }
    let output = script(&lines, &repo, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{lines:#?}\n{stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("57069"), "log stats: {stdout}");
    let report = std::fs::read_to_string(pm.join("pm1/report.md")).unwrap();
    let page = read("docs/postmortems/2022-06-13-ethb.md");
    // The key numbers of the 2022-06-13 page are the report's, row for row (amounts in their
    // unit's fixed decimals).
    let key_rows: Vec<&str> = report
        .split("### Key numbers")
        .nth(1)
        .unwrap()
        .lines()
        .skip_while(|line| !line.starts_with("|---"))
        .skip(1)
        .take_while(|line| line.starts_with("| "))
        .collect();
    assert_eq!(key_rows.len(), 7, "{report}");
    for row in key_rows {
        assert!(
            page.contains(row),
            "2022-06-13-ethb.md lacks the report's row {row}"
        );
    }
    let report = std::fs::read_to_string(pm.join("pm2/report.md")).unwrap();
    let page = read("docs/postmortems/2021-05-19-ethb-uniswap.md");
    for row in [
        "| liquidations | 5 | 19 | 55 |",
        "| bad debt (DAI) | 0.00 | 74,789.68 | 330,392.11 |",
    ] {
        assert!(
            report.contains(row) && page.contains(row),
            "{row}\n{report}"
        );
    }
    assert!(report.contains("| collateral seized (WETH) | 967.000 | 10,533.146 | 25,412.300 |"));
    assert!(page.contains(
        "| collateral seized (WETH) | 967.000 (949.000 on 05-19) | 10,533.146 | 25,412.300 |"
    ));
    let sweep = std::fs::read_to_string(pm.join("sweep-2022.md")).unwrap();
    let sweep_page = read("docs/postmortems/2022-ethb-mat-sweep.md");
    for mat in ["1.30", "1.50", "1.80"] {
        let row = sweep
            .lines()
            .find(|line| line.starts_with(&format!("| {mat} |")))
            .unwrap_or_else(|| panic!("no row {mat} in {sweep}"));
        // The page's row adds the switch sweep's columns after the crashes sweep's, and puts
        // the unit in the header.
        let numbers = row.replace(" DAI", "");
        assert!(
            sweep_page.contains(numbers.trim_end_matches(" |")),
            "2022-ethb-mat-sweep.md lacks the sweep's row {row}"
        );
    }
}

/// `docs/synthetic.md`'s three-protocol market, as written (into a folder named `DIR`): the
/// shares it states come out as stated.
#[test]
fn the_synthetic_market_of_docs_synthetic_runs_as_written() {
    let text = std::fs::read_to_string(repo().join("docs/synthetic.md")).unwrap();
    let lines: Vec<String> = block_after(&text, "## Several protocols, overlap and loops", "")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let temp = tempfile::tempdir().unwrap();
    let output = script(&lines, temp.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    // "18,786 owners, 5,607 of them in more than one protocol; 3,977 of 19,884 Aave and
    // Compound positions looped": about 19,000 owners, overlap and loop shares within 0.015 of
    // 0.3 and 0.2 (the doc's claims; Maker vaults never loop).
    let numbers: Vec<f64> = stdout
        .lines()
        .find(|line| line.contains(" owners, "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .split(|c: char| !c.is_ascii_digit() && c != ',')
        .filter(|word| !word.is_empty() && word.chars().any(|c| c.is_ascii_digit()))
        .map(|word| word.replace(',', "").parse().unwrap())
        .collect();
    let [owners, shared, looped, loopable] = numbers[..] else {
        panic!("{numbers:?}")
    };
    assert!((18_000.0..20_000.0).contains(&owners), "{owners}");
    assert!(
        (shared / owners - 0.3).abs() < 0.015,
        "{shared} of {owners}"
    );
    assert!(
        (looped / loopable - 0.2).abs() < 0.015,
        "{looped} of {loopable}"
    );
    assert!(temp.path().join("DIR").is_dir());
}

/// `docs/kafka.md`'s sweep over a consumer group: the README's log, then the block as written
/// (its `tests/kafka/kafka.sh start` finds the broker already running), the workers stopped
/// after it; then `docs/scale-out.md`'s measure.sh on the same log. Needs the real data and this checkout's broker (`tests/kafka/kafka.sh start`, as CI
/// runs it); skipped with a notice otherwise.
#[test]
fn the_kafka_sweep_of_docs_kafka_runs_as_written() {
    let repo = repo();
    if !repo.join("../shared/data").is_dir() {
        eprintln!("NOTICE: ../shared/data is absent: docs/kafka.md's sweep was not run");
        return;
    }
    let ours = Command::new(repo.join("tests/kafka/kafka.sh"))
        .arg("status")
        .output()
        .unwrap();
    if !broker_answers("127.0.0.1:9092") || !ours.status.success() {
        eprintln!(
            "NOTICE: no broker of tests/kafka/kafka.sh at 127.0.0.1:9092: docs/kafka.md's sweep was not run"
        );
        return;
    }
    let text = std::fs::read_to_string(repo.join("docs/kafka.md")).unwrap();
    let block = block_after(&text, "All take `--kafka-config KEY=VALUE`", "");
    assert_eq!(block[0], "tests/kafka/kafka.sh start", "{block:?}");
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path();
    std::os::unix::fs::symlink(repo.join("fixtures"), work.join("fixtures")).unwrap();
    std::os::unix::fs::symlink(repo.join("tests"), work.join("tests")).unwrap();
    std::os::unix::fs::symlink(repo.join("target"), work.join("target")).unwrap();
    let data = repo.join("../shared/data");
    let mut lines = vec![
        format!(
            "cascade ingest --log ethb --source maker-flipside {}",
            data.join("maker-ethb").display()
        ),
        format!(
            "cascade ingest --log ethb --source price-csv {}",
            data.join("prices/coingecko-hourly/WETH_usd.csv").display()
        ),
        // The workers of the block run in the background: stop them however the block ends.
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT".to_owned(),
    ];
    // Each worker its own scratch folder instead of /tmp/w1 and /tmp/w2.
    lines.extend(
        block
            .iter()
            .map(|line| line.replace("/tmp/w", &work.join("w").display().to_string())),
    );
    let output = script(&lines, work, &[]);
    assert_block_ran(&output, &lines);
    let csv = std::fs::read_to_string(work.join("sweep.csv")).unwrap();
    // 1.30..1.69 in steps of 0.01: 40 points and a header.
    assert_eq!(csv.lines().count(), 41, "{csv}");

    // `docs/scale-out.md`'s measure.sh in the same folder (it holds the ethb log), as written
    // but for `B`, this test's `cascade`, with one worker; the worker (under /usr/bin/time, as
    // the script starts it) is stopped after. Its table is the local sweep's.
    let scale_out = std::fs::read_to_string(repo.join("docs/scale-out.md")).unwrap();
    let measure = block_after(&scale_out, "## measure.sh", "").join("\n");
    assert!(measure.contains("B=target/debug/cascade;"), "{measure}");
    let bin = env!("CARGO_BIN_EXE_cascade");
    std::fs::write(
        work.join("measure.sh"),
        measure.replace("B=target/debug/cascade;", &format!("B={bin};")) + "\n",
    )
    .unwrap();
    let lines = [
        "cascade sweep ethb --scenario fixtures/scenarios/ethb-2022-crashes.toml \
         --param maker.ETH-B.mat=1.30..1.69:0.01 --out local1.txt"
            .to_owned(),
        "trap 'for job in $(jobs -p); do pkill -TERM -P $job; done; wait' EXIT".to_owned(),
        "set -- 1 t".to_owned(),
        ". ./measure.sh".to_owned(),
    ];
    let output = script(&lines, work, &[]);
    assert_block_ran(&output, &lines);
    let local = std::fs::read_to_string(work.join("local1.txt")).unwrap();
    assert_eq!(
        local
            .lines()
            .filter(|l| l.trim_start().starts_with("1."))
            .count(),
        40,
        "{local}"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("dist-t.txt")).unwrap(),
        local
    );
}

/// Whether `program` is on the PATH (a documented block that needs it is skipped otherwise).
fn on_path(program: &str) -> bool {
    Command::new("bash")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// `docs/kafka.md`'s Docker section, as far as a machine without a Docker engine can run it:
/// the compose file parses (the doc's own `python3` check), its `cascade` service runs
/// `docker/job.sh` with exactly the settings the script reads, and the doc's private-broker
/// block runs as written (its `/tmp/pm` a scratch folder, its `target/release` this test's
/// build): a broker of its own on port 19592, the job against it, the broker stopped. Needs the
/// real data, Java and Maven (the broker), and Python's `yaml` for the parse; skipped with a
/// notice otherwise.
#[test]
fn the_docker_job_of_docs_kafka_runs_against_a_private_broker() {
    let repo = repo();
    let yaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !repo.join("../shared/data").is_dir() || !on_path("java") || !on_path("mvn") || !yaml {
        eprintln!(
            "NOTICE: ../shared/data, java, mvn or python3's yaml is absent: docs/kafka.md's Docker job was not run"
        );
        return;
    }
    let text = std::fs::read_to_string(repo.join("docs/kafka.md")).unwrap();
    let docker = &text[text.find("## Docker").unwrap()..];
    let parse = docker
        .split('`')
        .find(|span| span.starts_with("python3 -c 'import yaml;"))
        .unwrap()
        .replace('\n', " ");
    let compose = Command::new("bash")
        .args(["-c", &format!("{parse} && python3 -c 'import json, yaml; print(json.dumps(yaml.safe_load(open(\"docker/compose.yml\"))))'")])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(compose.status.success(), "{compose:?}");
    let compose: serde_json::Value = serde_json::from_slice(&compose.stdout).unwrap();
    let service = &compose["services"]["cascade"];
    assert_eq!(
        service["entrypoint"],
        serde_json::json!(["/bin/sh", "/job/job.sh"])
    );
    assert!(
        service["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|volume| volume == "./job.sh:/job/job.sh:ro"),
        "{service}"
    );
    let job = std::fs::read_to_string(repo.join("docker/job.sh")).unwrap();
    let read: BTreeSet<&str> = job
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split(":-").next())
        .collect();
    let given: BTreeSet<&str> = service["environment"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        read, given,
        "job.sh reads {read:?}, compose gives {given:?}"
    );

    let block = block_after(docker, "What was checked, without Docker", "");
    assert_eq!(block.len(), 4, "{block:?}");
    let temp = tempfile::tempdir().unwrap();
    let pm = temp.path().join("pm");
    let bin = Path::new(env!("CARGO_BIN_EXE_cascade")).parent().unwrap();
    let lines: Vec<String> = block
        .iter()
        .map(|line| {
            line.replace("/tmp/pm", pm.to_str().unwrap())
                .replace("$PWD/target/release", bin.to_str().unwrap())
        })
        .collect();
    let (start, job_and_stop) = lines.split_first().unwrap();
    let stop = job_and_stop.last().unwrap();
    assert!(stop.ends_with("tests/kafka/kafka.sh stop"), "{stop}");
    // The broker is stopped however the job ends; the block's own stop line then finds it gone.
    let mut script_lines = vec![start.clone(), format!("trap '{stop}' EXIT")];
    script_lines.extend(job_and_stop.iter().cloned());
    let output = script(&script_lines, &repo, &[]);
    assert_block_ran(&output, &script_lines);
    let out = pm.join("job");
    assert!(out.join("report/index.html").is_file());
    assert!(out.join("report/index.md").is_file());
    // The run replayed from the topic judged every liquidation the job's log holds.
    let stats = shell(
        &format!("cascade log stats {} --json", out.join("ethb").display()),
        &repo,
        &[],
    );
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
    let recorded = stats["by_kind"]["liquidation"].as_u64().unwrap();
    assert!(recorded > 0, "{stats}");
    assert_eq!(run["totals"]["liquidations"].as_u64(), Some(recorded));
    assert_eq!(run["log"]["content_hash"], stats["identity"]["hash"]);
}

/// The command texts of a Markdown page: every inline code span (joined across line breaks) and
/// every line of its fenced blocks (backslash continuations joined, comments dropped).
fn command_texts(page: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for (index, part) in page.split("```").enumerate() {
        if index % 2 == 1 {
            let body = part.split_once('\n').map_or("", |(_, body)| body);
            for line in body.replace("\\\n", " ").lines() {
                let line = line.split(" #").next().unwrap_or(line).trim();
                if !line.starts_with('#') {
                    texts.push(line.to_owned());
                }
            }
        } else {
            let joined = part.replace('\n', " ");
            texts.extend(
                joined
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(|span| span.trim().to_owned()),
            );
        }
    }
    texts
}

/// `cascade PATH --help` for the subcommand path `path`.
fn cascade_help(path: &[&str]) -> Option<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.split_once("Commands:\n")
        .map(|(_, rest)| {
            rest.lines()
                .take_while(|line| line.starts_with("  "))
                .filter_map(|line| line.split_whitespace().next())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What is wrong with one documented `cascade` command line (`words` after `cascade`), if
/// anything: its subcommand must exist (`a/b/c` lists several) and every flag it shows must be
/// one of that subcommand's.
fn cascade_line_problem(words: &[&str]) -> Option<String> {
    let top = cascade_help(&[]).unwrap();
    let first = words.first()?;
    if first.contains('/') {
        let unknown: Vec<&str> = first
            .split('/')
            .filter(|name| !subcommands(&top).iter().any(|s| s == name))
            .collect();
        return (!unknown.is_empty()).then(|| format!("no subcommands {unknown:?}"));
    }
    let mut path: Vec<&str> = Vec::new();
    let mut help = top;
    for word in words {
        if subcommands(&help).iter().any(|s| s == word) {
            path.push(word);
            help = cascade_help(&path).unwrap();
        } else {
            break;
        }
    }
    if path.is_empty() {
        return Some(format!("no subcommand {first:?}"));
    }
    // A command with subcommands (`cascade log`) takes one of them, or a placeholder.
    if let Some(next) = words
        .get(path.len())
        .filter(|next| !subcommands(&help).is_empty() && !next.starts_with('-') && **next != "...")
    {
        return Some(format!(
            "`cascade {}` has no subcommand {next:?}",
            path.join(" ")
        ));
    }
    let flags: Vec<&str> = words
        .iter()
        .filter(|word| word.starts_with('-') && **word != "--" && **word != "-")
        .map(|word| word.split('=').next().unwrap())
        .filter(|flag| {
            !help.match_indices(flag).any(|(at, _)| {
                help[at + flag.len()..].starts_with([' ', ',', '\n', '['])
                    && !help[..at].ends_with(|c: char| c.is_alphanumeric() || c == '-')
            })
        })
        .collect();
    (!flags.is_empty()).then(|| format!("`cascade {}` has no {flags:?}", path.join(" ")))
}

/// The packages of the workspace and its dependencies and, for each, its bench targets.
fn package_benches() -> Vec<(String, Vec<String>)> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--offline", "--format-version", "1"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let benches = package["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|target| target["kind"] == serde_json::json!(["bench"]))
                .map(|target| target["name"].as_str().unwrap().to_owned())
                .collect();
            (package["name"].as_str().unwrap().to_owned(), benches)
        })
        .collect()
}

/// What is wrong with one documented `cargo` command line, if anything: each `-p` names a
/// package of the build and each `--bench` one of its benches (of any package without `-p`).
fn cargo_line_problem(words: &[&str], packages: &[(String, Vec<String>)]) -> Option<String> {
    let mut package: Option<&(String, Vec<String>)> = None;
    let mut problems = Vec::new();
    for pair in words.windows(2) {
        match pair[0] {
            "-p" => {
                package = packages.iter().find(|(name, _)| name == pair[1]);
                if package.is_none() {
                    problems.push(format!("no package {}", pair[1]));
                }
            }
            "--bench" if pair[1] != "'*'" => {
                let found = match package {
                    Some((_, benches)) => benches.iter().any(|b| b == pair[1]),
                    None => packages.iter().any(|(_, b)| b.iter().any(|b| b == pair[1])),
                };
                if !found {
                    problems.push(format!("no bench {}", pair[1]));
                }
            }
            _ => {}
        }
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// The command lines of `docs/build.md`, `docs/benchmarks.md`, `docs/scale-out.md` and
/// `docs/reliability.md` name what exists: every `cascade` line's subcommand and flags (also the
/// `$B` lines of scale-out's `measure.sh`), every `cargo` line's packages and bench targets, and
/// every script or source path under `tests/`. These pages' commands are measurements (release
/// builds of millions of accounts, a clean Debian root, hour-long fuzzing), too long to run
/// here; what runs of them runs elsewhere: `tests/bench-smoke.sh` (CI) runs every bench target in
/// smoke mode, `tests/run.sh` runs `tests/fuzz/run.sh 5` and `cargo test -p cascade-fuzz`, and
/// the sweep over Kafka workers of `docs/scale-out.md` is `docs/kafka.md`'s (run above).
#[test]
fn the_command_lines_of_build_benchmarks_scale_out_and_reliability_name_what_exists() {
    let repo = repo();
    let packages = package_benches();
    let mut checked = 0;
    let mut problems = Vec::new();
    for doc in [
        "docs/build.md",
        "docs/benchmarks.md",
        "docs/scale-out.md",
        "docs/reliability.md",
    ] {
        let page = std::fs::read_to_string(repo.join(doc)).unwrap();
        for text in command_texts(&page) {
            // Commands chained with && are each a command line.
            for line in text.split("&&").map(str::trim) {
                let words: Vec<&str> = line
                    .split_whitespace()
                    .skip_while(|word| word.contains('=') && !word.starts_with('-'))
                    .collect();
                let problem = match words.first() {
                    Some(&"cascade") | Some(&"$B") => cascade_line_problem(&words[1..]),
                    Some(&"cargo") => cargo_line_problem(&words, &packages),
                    // A folder named as where files go (`tests/fuzz/regressions/`) may not
                    // exist yet; scripts and sources must.
                    Some(path)
                        if path.starts_with("tests/")
                            && !path.contains('<')
                            && !path.ends_with('/') =>
                    {
                        (!repo.join(path).exists()).then(|| format!("no {path}"))
                    }
                    _ => continue,
                };
                checked += 1;
                if let Some(problem) = problem {
                    problems.push(format!("{doc}: `{line}`: {problem}"));
                }
            }
        }
    }
    assert!(checked >= 100, "{checked} command lines");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
