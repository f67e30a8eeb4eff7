//! `cascade synth` as a user runs it: the same seed writes the same log, a bad shock spec is
//! refused with a message saying why, and an existing log is never overwritten.

use std::path::Path;
use std::process::{Command, Output};

fn synth(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "synth",
            "--protocol",
            "compound-v2",
            "--accounts",
            "200",
            "--json",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .expect("runs cascade")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

#[test]
fn same_seed_same_log_and_other_seed_other_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = json(&synth(&dir.path().join("a"), &["--seed", "9"]));
    let b = json(&synth(&dir.path().join("b"), &["--seed", "9"]));
    let c = json(&synth(&dir.path().join("c"), &["--seed", "10"]));
    assert_eq!(a["content_hash"], b["content_hash"]);
    assert_eq!(a["events"], b["events"]);
    assert_ne!(a["content_hash"], c["content_hash"]);
    assert!(a["by_kind"]["liquidation"].as_u64().unwrap_or(0) > 0, "{a}");
    assert!(
        a["config"]
            .as_str()
            .is_some_and(|c| c.contains("compound-v2") && c.contains("seed=9")),
        "{a}"
    );
}

#[test]
fn bad_shock_and_existing_log_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = synth(&dir.path().join("x"), &["--shock", "-40%@6"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("needs a unit"), "{stderr}");

    let out = dir.path().join("log");
    json(&synth(&out, &[]));
    let again = synth(&out, &[]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds a log"), "{stderr}");
}
