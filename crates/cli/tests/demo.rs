//! `cascade demo` as a user runs it on a fresh machine: one command, no input, and it leaves a
//! log, two run files that differ, and a report with charts.

use std::process::Command;

#[test]
fn demo_builds_replays_compares_and_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("demo");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["demo", "--accounts", "300", "--out"])
            .arg(&out)
            .output()
            .expect("runs cascade")
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("100.00% explained"), "{stdout}");
    assert!(stdout.contains("liquidations"), "{stdout}");
    for file in [
        "historical.json",
        "counterfactual.json",
        "scenario.toml",
        "report.md",
    ] {
        assert!(out.join(file).is_file(), "{file} missing\n{stdout}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).expect("report written");
    assert!(
        html.matches("<svg").count() >= 3,
        "the report has its charts"
    );
    // Each run's totals count the distinct vaults its liquidations hit, and the step says so.
    for (file, step) in [
        ("historical.json", "history: "),
        ("counterfactual.json", "simulated liquidations of "),
    ] {
        let run: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(file)).expect("run written"))
                .expect("run JSON");
        let hit: std::collections::BTreeSet<String> = run["liquidations"]
            .as_array()
            .expect("liquidations")
            .iter()
            .map(|l| format!("{} {} {}", l["protocol"], l["market"], l["account"]))
            .collect();
        let liquidations = run["totals"]["liquidations"].as_u64().expect("a count");
        assert_eq!(
            run["totals"]["accounts_liquidated"].as_u64(),
            Some(hit.len() as u64),
            "{file}"
        );
        assert!(
            hit.len() > 1 && hit.len() as u64 <= liquidations,
            "{file}: {}",
            hit.len()
        );
        assert!(
            stdout.contains(&format!("{} vaults", hit.len())) && stdout.contains(step),
            "{file}: {stdout}"
        );
    }
    let historical = std::fs::read(out.join("historical.json")).expect("run written");
    assert_ne!(
        historical,
        std::fs::read(out.join("counterfactual.json")).expect("run written")
    );

    // A second run reuses the market it finds and writes the same historical run.
    let second = run();
    assert!(second.status.success());
    assert_eq!(
        std::fs::read(out.join("historical.json")).expect("run written"),
        historical
    );
}

#[test]
fn demo_refuses_a_directory_holding_another_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("demo");
    let synth = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["synth", "--accounts", "50", "--out"])
        .arg(out.join("log"))
        .output()
        .expect("runs cascade");
    assert!(synth.status.success());
    let demo = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .expect("runs cascade");
    assert_eq!(demo.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&demo.stderr);
    assert!(stderr.contains("another log"), "{stderr}");
}
