//! `--params FILE`: a parameter history flips a verdict at its time, and a bad file is refused
//! with its name, line and value.

// Helpers outside the `#[test]` functions read committed, valid fixtures.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .unwrap()
}

/// The Aave v2 export fixture ingested into `dir/log`: its 2021-05-03 01:00 WETH liquidation is
/// explained at the snapshot's WETH bonus of 10500.
fn aave_log(dir: &Path) -> PathBuf {
    let log = dir.join("log");
    let out = cascade(&[
        "ingest",
        "--log",
        log.to_str().unwrap(),
        "--source",
        "aave-subgraph-liquidations",
        "--skip-invalid",
        repo()
            .join("fixtures/ingest/aave-v2/liquidations.csv")
            .to_str()
            .unwrap(),
    ]);
    // Exit 1: the fixture's two malformed rows go to quarantine; the rest is in the log.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("now 33 events"),
        "{out:?}"
    );
    log
}

/// The verdict of the liquidation at `time` in a replay of `log` with `extra` flags.
fn verdict(log: &Path, time: &str, extra: &[&str]) -> String {
    let mut args = vec!["replay", log.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = cascade(&args);
    assert!(out.status.success(), "{out:?}");
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<&serde_json::Value> = run["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["time"] == time)
        .collect();
    assert_eq!(found.len(), 1, "one liquidation at {time}");
    found[0]["verdict"].as_str().unwrap().to_owned()
}

fn history(dir: &Path, time: &str, market: &str) -> PathBuf {
    let path = dir.join(format!("{market}-{}.toml", &time[..13]));
    std::fs::write(
        &path,
        format!(
            "[[change]]\ntime = \"{time}\"\nprotocol = \"aave-v2\"\nmarket = \"{market}\"\nparam = \"liquidationBonus\"\nvalue = \"1.08\"\nsource = \"hand-made\"\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_bonus_change_flips_the_verdict_from_its_time_on() {
    let temp = tempfile::tempdir().unwrap();
    let log = aave_log(temp.path());
    let at = "2021-05-03T01:00:00Z";
    assert_eq!(verdict(&log, at, &[]), "explained");

    let before = history(temp.path(), "2021-05-03T00:30:00Z", "WETH");
    assert_eq!(
        verdict(&log, at, &["--params", before.to_str().unwrap()]),
        "amount-mismatch",
        "a bonus of 10800 from 00:30 on cannot give the recorded 1.05 WETH"
    );
    let after = history(temp.path(), "2021-05-03T01:30:00Z", "WETH");
    assert_eq!(
        verdict(&log, at, &["--params", after.to_str().unwrap()]),
        "explained",
        "a change after the liquidation does not reach it"
    );
}

#[test]
fn a_market_the_log_never_names_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let log = aave_log(temp.path());
    let file = history(temp.path(), "2021-05-03T00:30:00Z", "WETHX");
    let out = cascade(&[
        "replay",
        log.to_str().unwrap(),
        "--params",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "{}:2: market: the log never names aave-v2 market WETHX",
            file.display()
        )),
        "{stderr}"
    );
}
