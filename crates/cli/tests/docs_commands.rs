//! The commands the documentation shows, run as written: the README's usage block, the
//! real-data examples of `docs/ingest.md` and `docs/fidelity.md`, the post-mortems of
//! `docs/postmortems/` (against `../shared/data`, skipped with a notice when it is absent), the
//! sweep over Kafka workers of `docs/kafka.md` (also only when this checkout's broker runs), and
//! the `cascade` lines of the GitHub Actions job in `docs/diff.md`, the position-snapshot workflow
//! of `docs/ingest.md` and the three-protocol market of `docs/synthetic.md` (no real data needed).
//! `docs/scenarios.md`, `docs/leverage.md` and `docs/engine.md` show no command to run (only
//! synopses and file formats).
//!
//! Each line goes through `bash -c` with the built `cascade` first on the PATH, so comments,
//! quoting and redirections behave as they do for a reader who pastes them.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

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
    let lines = block_after(&readme, "## Usage", "sh");
    assert!(lines.len() >= 10, "{lines:?}");
    let Some(temp) = run_with_real_data("README.md", &lines) else {
        return;
    };
    for file in [
        "history.json",
        "osm0.json",
        "report/index.html",
        "report/index.md",
        "golden.json",
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
        run_with_real_data(doc, &lines);
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

/// Runs `lines` (one documented block) as one bash script in `dir`, stopping at the first
/// command that fails, as a reader pasting the block into a terminal with `set -e` would see it.
fn script(lines: &[String], dir: &Path, env: &[(&str, &Path)]) -> Output {
    let text = format!("set -euo pipefail\n{}\n", lines.join("\n"));
    shell(&text, dir, env)
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
/// after it. Needs the real data and this checkout's broker (`tests/kafka/kafka.sh start`, as CI
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
    assert_eq!(
        output.status.code(),
        Some(0),
        "{lines:#?}\n{}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = std::fs::read_to_string(work.join("sweep.csv")).unwrap();
    // 1.30..1.69 in steps of 0.01: 40 points and a header.
    assert_eq!(csv.lines().count(), 41, "{csv}");
}
