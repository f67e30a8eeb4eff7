//! `cascade synth` as a user runs it: the same seed writes the same log, a bad shock spec is
//! refused with a message saying why, an existing log is never overwritten, and the engine
//! explains every liquidation the generator records.

use std::path::Path;
use std::process::{Command, Output};

fn synth(out: &Path, extra: &[&str]) -> Output {
    synth_market(out, "compound-v2", "200", extra)
}

fn synth_market(out: &Path, protocol: &str, accounts: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["synth", "--protocol", protocol, "--accounts", accounts])
        .args(["--json", "--out"])
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

/// `cascade replay LOG EXTRA --out RUN`, and the run file it wrote.
fn replay(log: &Path, run: &Path, extra: &[&str]) -> serde_json::Value {
    let replay = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .arg("replay")
        .arg(log)
        .args(extra)
        .arg("--out")
        .arg(run)
        .output()
        .expect("runs cascade");
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    serde_json::from_slice(&std::fs::read(run).expect("run written")).expect("JSON")
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

/// A crash too deep and fast for the keeper leaves some accounts with debt and no collateral.
/// The generator used to go on "liquidating" them for zero amounts at every price drop, which
/// the contracts refuse and the engine judged `amount-mismatch`; and it chose Aave v3's close
/// factor from a health truncated to basis points, taking 100% at health 0.95004.
#[test]
fn the_engine_explains_every_liquidation_of_an_underwater_market() {
    let dir = tempfile::tempdir().expect("temp dir");
    for protocol in ["aave-v3", "aave-v2", "compound-v2"] {
        let log = dir.path().join(protocol);
        let written = json(&synth_market(
            &log,
            protocol,
            "2000",
            &["--seed", "7", "--shock", "-70%@30m"],
        ));
        let recorded = written["by_kind"]["liquidation"].as_u64().unwrap_or(0);
        assert!(recorded > 1_000, "{written}");
        let run = replay(&log, &dir.path().join(format!("{protocol}.json")), &[]);
        let verdicts = &run["totals"]["verdicts"];
        assert_eq!(
            verdicts["explained"].as_u64(),
            Some(recorded),
            "{protocol}: {verdicts}"
        );
    }
}

/// A market of three protocols with shared owners and loops is one log the engine replays whole:
/// every liquidation of every protocol is `explained`, as in the one-protocol markets.
#[test]
fn the_engine_explains_every_liquidation_of_a_three_protocol_market() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("market");
    let written = json(&synth_market(
        &log,
        "maker,aave-v2,compound-v2",
        "3000",
        &["--seed", "7", "--overlap", "0.3", "--loops", "0.2"],
    ));
    let recorded = written["by_kind"]["liquidation"].as_u64().unwrap_or(0);
    assert!(recorded > 300, "{written}");
    assert!(
        written["shared_owners"].as_u64().unwrap_or(0) > 300,
        "{written}"
    );
    assert!(written["looped"].as_u64().unwrap_or(0) > 300, "{written}");
    let run = replay(
        &log,
        &dir.path().join("run.json"),
        &["--osm-sample", "step"],
    );
    let verdicts = &run["totals"]["verdicts"];
    assert_eq!(verdicts["explained"].as_u64(), Some(recorded), "{verdicts}");
}

#[test]
fn overlap_needs_several_protocols_and_fractions_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = synth(&dir.path().join("one"), &["--overlap", "0.3"]);
    assert_eq!(one.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&one.stderr).contains("several protocols"));
    let bad = synth(&dir.path().join("bad"), &["--loops", "1.5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("above 1"));
}
