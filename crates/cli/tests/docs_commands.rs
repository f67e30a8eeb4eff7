//! The commands the documentation shows, run as written: the README's usage block and the
//! real-data examples of `docs/ingest.md` and `docs/fidelity.md` (against `../shared/data`,
//! skipped with a notice when it is absent), and the `cascade` lines of the GitHub Actions job in
//! `docs/diff.md` and the position-snapshot workflow of `docs/ingest.md` (on the committed
//! fixtures).
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
