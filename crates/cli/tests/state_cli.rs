//! `cascade replay --accounts-at` and `cascade state` as a user runs them, on the hand-built
//! Maker fixture (`fixtures/maker/README.md`, `dog-bark`): at 01:30 the OSM shows 2000 (spot
//! 1333.33 at `mat` 1.5, rate 1), so vault #1 (10 ETH, 10,000 DAI) has health
//! 10 x 1333.33 / 10,000 = 1.333333333333333333 and reaches one at an OSM value of 1,500; at
//! 02:30 it has been liquidated whole and #5 keeps 23.451327433628318585 ETH.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{fixture_log, repo};

fn cascade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
}

/// A temporary directory holding the dog-bark fixture's log, and the log's path.
fn fixture() -> (tempfile::TempDir, String) {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let log = log.to_str().unwrap().to_owned();
    (temp, log)
}

fn run(args: &[&str]) -> std::process::Output {
    let output = cascade().args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    output
}

#[test]
fn replay_writes_accounts_at_each_time_without_changing_the_run() {
    let (temp, log) = fixture();
    let log = log.as_str();
    let csv = temp.path().join("accounts.csv");
    let run_with = temp.path().join("with.json");
    let output = run(&[
        "replay",
        log,
        "--out",
        run_with.to_str().unwrap(),
        "--accounts-at",
        "2021-06-01T01:30:00Z,2021-06-01T02:30:00Z",
        "--accounts-out",
        csv.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("accounts at 2 time(s) written to"),
        "{stdout}"
    );
    // Capturing reads the state, never changes it: the run is the committed golden.
    let golden = std::fs::read(repo().join("fixtures/expected/maker-dog-bark.json")).unwrap();
    assert_eq!(std::fs::read(&run_with).unwrap(), golden);

    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let vault_one: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|row| &row[column("account")] == "#1")
        .collect();
    // One row per asset (ETH collateral, DAI debt), at 01:30 only: it is gone by 02:30.
    assert_eq!(vault_one.len(), 2, "{rows:?}");
    let eth = vault_one[0];
    assert_eq!(&eth[column("at")], "2021-06-01T01:30:00Z");
    assert_eq!(&eth[column("state_time")], "2021-06-01T01:30:00Z");
    assert_eq!(&eth[column("protocol")], "maker");
    assert_eq!(&eth[column("market")], "ETH-B");
    assert_eq!(&eth[column("collateral")], "10");
    assert_eq!(&eth[column("collateral_value")], "20000");
    assert_eq!(&eth[column("total_debt_value")], "10000");
    assert_eq!(&eth[column("threshold_kind")], "liquidation-ratio");
    assert_eq!(&eth[column("threshold")], "1.5");
    assert_eq!(&eth[column("health_factor")], "1.333333333333333333");
    assert_eq!(&eth[column("liquidation_price")], "1500");
    let dai = vault_one[1];
    assert_eq!(&dai[column("asset")], "DAI");
    assert_eq!(&dai[column("debt")], "10000");
    let five_later = rows
        .iter()
        .find(|row| &row[column("account")] == "#5" && &row[column("at")] == "2021-06-01T02:30:00Z")
        .unwrap();
    assert_eq!(&five_later[column("collateral")], "23.451327433628318585");

    // The same capture as JSON lines: one line per account.
    let lines = temp.path().join("accounts.jsonl");
    run(&[
        "replay",
        log,
        "--accounts-at",
        "2021-06-01T01:30:00Z",
        "--accounts-out",
        lines.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&lines).unwrap();
    let accounts: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let one = accounts.iter().find(|a| a["account"] == "#1").unwrap();
    assert_eq!(one["health_factor"], "1.333333333333333333");
    assert_eq!(one["assets"][0]["asset"], "WETH");
    assert_eq!(one["liquidation_asset"], "WETH");
    let three = accounts.iter().find(|a| a["account"] == "#3").unwrap();
    assert_eq!(three["health_factor"], "inf", "a vault without debt");
}

#[test]
fn state_prints_one_account_as_json_or_text() {
    let (_temp, log) = fixture();
    let log = log.as_str();
    let output = run(&[
        "state",
        log,
        "--at",
        "2021-06-01T01:30:00Z",
        "--account",
        "#1",
        "--json",
    ]);
    let state: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(state["at"], "2021-06-01T01:30:00Z");
    let accounts = state["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["health_factor"], "1.333333333333333333");
    assert_eq!(accounts[0]["collateral_value"], "20000");

    let output = run(&["state", log, "--at", "2021-06-01T01:30:00Z"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("maker ETH-B #1: health 1.333333333333333333, collateral 20000 DAI, debt 10000 DAI, liquidation-ratio 1.5, liquidation price of WETH 1500"),
        "{text}"
    );
    let output = run(&[
        "state",
        log,
        "--at",
        "2021-06-01T01:30:00Z",
        "--account",
        "#42",
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("no position for #42"), "{text}");
}

#[test]
fn accounts_at_needs_a_file_and_a_valid_time() {
    let (temp, log) = fixture();
    let log = log.as_str();
    let output = cascade()
        .args(["replay", log, "--accounts-at", "2021-06-01"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--accounts-out"));
    let out = temp.path().join("a.csv");
    let output = cascade()
        .args([
            "replay",
            log,
            "--accounts-at",
            "yesterday",
            "--accounts-out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--accounts-at \"yesterday\""),
        "{output:?}"
    );
    assert!(!out.exists(), "nothing written on an error");
}

#[test]
fn a_snapshot_export_without_decimals_parameters_shows_amounts_in_tokens() {
    // Only the amounts read the tokens' decimals (no `decimals` parameter table): the snapshot
    // rows give them to the model, so account 0xa..a's 10 WETH and 15,000.5 USDC show as such.
    let temp = tempfile::tempdir().unwrap();
    let path = |name: &str| temp.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("tokens.csv"), "symbol,decimals\nWETH,18\nUSDC,6\n").unwrap();
    std::fs::write(
        path("positions.csv"),
        "user,symbol,aTokenBalance,variableDebt\n\
         0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,WETH,10,0\n\
         0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,USDC,0,15000.5\n",
    )
    .unwrap();
    std::fs::write(
        path("positions.toml"),
        r#"
[time]
value = "2021-05-19 00:00:00"
format = "%Y-%m-%d %H:%M:%S"

[[lookup]]
name = "tokens"
path = "tokens.csv"
key = "symbol"

[[event]]
kind = "snapshot"
protocol = "aave-v2"
market = { value = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9", id = "address" }
account = { column = "user", id = "address" }
asset = { column = "symbol", id = "name" }
collateral = { column = "aTokenBalance", decimals = { lookup = "tokens", key = "symbol", column = "decimals" } }
debt = { column = "variableDebt", decimals = { lookup = "tokens", key = "symbol", column = "decimals" } }
"#,
    )
    .unwrap();
    let log = path("log");
    run(&[
        "ingest",
        "--log",
        &log,
        "--source",
        "csv",
        "--mapping",
        &path("positions.toml"),
        &path("positions.csv"),
        "-q",
    ]);
    let output = run(&["state", &log, "--at", "2021-05-19T00:00:00Z", "--json"]);
    let state: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let assets = state["accounts"][0]["assets"].as_array().unwrap();
    let held: Vec<(&str, &serde_json::Value, &str, &str)> = assets
        .iter()
        .map(|asset| {
            (
                asset["asset"].as_str().unwrap(),
                &asset["decimals"],
                asset["collateral"].as_str().unwrap(),
                asset["debt"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            ("USDC", &serde_json::json!(6), "0", "15000.5"),
            ("WETH", &serde_json::json!(18), "10", "0"),
        ],
        "{state:#}"
    );
}
