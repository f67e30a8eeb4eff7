//! Parameter history: `--params FILE` and a configurator's recorded
//! `CollateralConfigurationChanged` log each flip a judgement (here the seize check of an account
//! without a position) at their time, and a bad file is refused with its name, line and value.

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
/// consistent with the seize formula at the snapshot's WETH bonus of 10500.
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

/// The seize check of the liquidation at `time` in a replay of `log` with `extra` flags: no
/// account of these logs has a position, so the verdict is `unknown-account` and the bonus in
/// force shows in whether the seize formula gives the recorded collateral.
fn seize_result(log: &Path, time: &str, extra: &[&str]) -> String {
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
    assert_eq!(found[0]["verdict"], "unknown-account", "{}", found[0]);
    found[0]["seize"]["result"].as_str().unwrap().to_owned()
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
fn a_bonus_change_flips_the_seize_check_from_its_time_on() {
    let temp = tempfile::tempdir().unwrap();
    let log = aave_log(temp.path());
    let at = "2021-05-03T01:00:00Z";
    assert_eq!(seize_result(&log, at, &[]), "consistent");

    let before = history(temp.path(), "2021-05-03T00:30:00Z", "WETH");
    assert_eq!(
        seize_result(&log, at, &["--params", before.to_str().unwrap()]),
        "mismatch",
        "a bonus of 10800 from 00:30 on cannot give the recorded 1.05 WETH"
    );
    let after = history(temp.path(), "2021-05-03T01:30:00Z", "WETH");
    assert_eq!(
        seize_result(&log, at, &["--params", after.to_str().unwrap()]),
        "consistent",
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

/// A 32-byte ABI word: a number or an address, left-padded.
fn word(value: u128) -> String {
    format!("{value:064x}")
}

fn address_word(address: &str) -> String {
    format!("{:0>64}", address.trim_start_matches("0x").to_lowercase())
}

/// An `eth_getLogs` entry (one log per transaction, log index 0).
fn raw_log(address: &str, topics: &[String], data: &str, block: u64, time: u64) -> String {
    let topics: Vec<String> = topics.iter().map(|t| format!("\"0x{t}\"")).collect();
    format!(
        r#"{{"address":"{address}","topics":[{}],"data":"0x{data}","blockNumber":"{block:#x}","blockTimestamp":"{time:#x}","transactionHash":"0x{}","transactionIndex":"0x0","logIndex":"0x0"}}"#,
        topics.join(","),
        format!("{block:02x}").repeat(32)
    )
}

/// A log of Aave v2 logs and a decimals/launch-bonus/price CSV (through mappings): its one
/// liquidation, `liquidationCall` of 2,000 USDC against WETH recorded with 1.08 WETH seized,
/// judged without and with the main-market configurator's `CollateralConfigurationChanged`
/// (ltv 8000, threshold 8250, bonus 10800) an hour before it.
#[test]
fn a_recorded_collateral_configuration_change_flips_the_seize_check() {
    const WETH: &str = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2";
    const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    // keccak256 of the events' signatures, as mainnet logs carry them.
    const CONFIGURATION_CHANGED: &str =
        "637febbda9275aea2e85c0ff690444c8d87eb2e8339bbede9715abcc89cb0995";
    const LIQUIDATION_CALL: &str =
        "e413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286";
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let configuration = raw_log(
        "0x311Bb771e4F8952E6Da169b425E7e92d6Ac45756",
        &[CONFIGURATION_CHANGED.into(), address_word(WETH)],
        &[word(8000), word(8250), word(10800)].concat(),
        100,
        1_620_000_000,
    );
    let liquidation = raw_log(
        "0x7d2768dE32b0b80b7a3454c06BdAc94A69DDc7A9",
        &[
            LIQUIDATION_CALL.into(),
            address_word(WETH),
            address_word(USDC),
            address_word("0x1111111111111111111111111111111111111111"),
        ],
        &[
            word(2_000_000_000),
            word(1_080_000_000_000_000_000),
            address_word("0x2222222222222222222222222222222222222222"),
            word(0),
        ]
        .concat(),
        200,
        1_620_003_600,
    );
    std::fs::write(
        dir.join("params.csv"),
        format!(
            "time,market,param,value\n1619990000,{WETH},decimals,18\n1619990000,{USDC},decimals,6\n1619990000,{WETH},liquidationBonus,10500\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("params.toml"),
        "description = \"reserve decimals and the launch bonus\"\n[time]\ncolumn = \"time\"\nformat = \"unix_s\"\n[[event]]\nkind = \"param-change\"\nprotocol = \"aave-v2\"\nmarket = { column = \"market\", id = \"address\" }\nparam = { column = \"param\" }\nvalue = { column = \"value\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("prices.csv"),
        format!("time,asset,price\n1619990000,{USDC},0.0005\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("prices.toml"),
        "description = \"USDC in ETH\"\n[time]\ncolumn = \"time\"\nformat = \"unix_s\"\n[[event]]\nkind = \"price\"\nasset = { column = \"asset\", id = \"address\" }\nquote = \"ETH\"\nprice = { column = \"price\", decimals = 18 }\nfeed = \"hand-made\"\n",
    )
    .unwrap();
    let at = "2021-05-03T01:00:00Z";
    let mut verdicts = Vec::new();
    for (name, logs) in [
        ("without", vec![liquidation.clone()]),
        ("with", vec![configuration, liquidation]),
    ] {
        let log = dir.join(format!("log-{name}"));
        let logs_file = dir.join(format!("{name}.jsonl"));
        std::fs::write(&logs_file, logs.join("\n")).unwrap();
        for (source, file, mapping) in [
            ("eth-logs", logs_file, None),
            ("csv", dir.join("params.csv"), Some(dir.join("params.toml"))),
            ("csv", dir.join("prices.csv"), Some(dir.join("prices.toml"))),
        ] {
            let mut args = vec!["ingest", "--log", log.to_str().unwrap(), "--source", source];
            if let Some(mapping) = &mapping {
                args.extend(["--mapping", mapping.to_str().unwrap()]);
            }
            args.push(file.to_str().unwrap());
            let out = cascade(&args);
            assert!(out.status.success(), "{out:?}");
        }
        verdicts.push(seize_result(&log, at, &[]));
    }
    // Aave v2 `calculateAvailableCollateralToLiquidate`: 2,000 USDC at 0.0005 ETH (WETH is 1 ETH)
    // is 1 WETH of debt; times the launch bonus 1.05 that gives 1.05 WETH, not the 1.08 recorded.
    // The configurator's log sets the bonus to 10800 an hour before, and 1 x 1.08 = 1.08 WETH is
    // exactly what was seized.
    assert_eq!(verdicts, ["mismatch", "consistent"]);
}

/// `cascade replay` of `log` with `args`: the run file printed and what it said on stderr.
fn replay_json(log: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["replay", log.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = cascade(&all);
    assert!(out.status.success(), "{out:?}");
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each liquidation's time and seize check (the export's accounts have no rebuilt position, so
/// every verdict is `unknown-account` and the bonus shows in the seize check).
fn seize_checks_of(run: &serde_json::Value) -> Vec<String> {
    run["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["time"], l["seize"]["result"]))
        .collect()
}

/// Checkpoints with `--params`: a checkpoint stored without the history (or with another) is
/// never resumed by a replay with it, since the state would differ (the WETH bonus of 10800 from
/// 2021-05-03 00:30 turns the seize checks of the two 2021-08-26 WETH liquidations from
/// `consistent` into `mismatch`); one stored with the same history is, and the run is the same as the
/// replay's from the start.
#[test]
fn checkpoints_are_kept_apart_by_the_history_file_s_content() {
    let temp = tempfile::tempdir().unwrap();
    let log = aave_log(temp.path());
    let bonus = history(temp.path(), "2021-05-03T00:30:00Z", "WETH");
    let bonus = bonus.to_str().unwrap();
    let from = ["--from", "2021-08-26"];
    let august = |run: &serde_json::Value| -> Vec<String> {
        seize_checks_of(run)
            .into_iter()
            .filter(|v| v.contains("2021-08-26T17"))
            .collect()
    };

    let ok = cascade(&["replay", log.to_str().unwrap(), "--checkpoint-every", "2"]);
    assert!(ok.status.success(), "{ok:?}");
    let (without, said) = replay_json(&log, &from);
    assert!(said.contains("resumed from the checkpoint"), "{said}");
    assert_eq!(august(&without).len(), 2);
    assert!(
        august(&without)
            .iter()
            .all(|v| v.ends_with("\"consistent\"")),
        "{:?}",
        august(&without)
    );

    // The checkpoints of the run without the history are not this run's.
    let (fresh, said) = replay_json(&log, &["--params", bonus, from[0], from[1]]);
    assert!(!said.contains("resumed"), "{said}");
    assert_eq!(august(&fresh).len(), 2);
    assert!(
        august(&fresh).iter().all(|v| v.ends_with("\"mismatch\"")),
        "{:?}",
        august(&fresh)
    );

    let ok = cascade(&[
        "replay",
        log.to_str().unwrap(),
        "--params",
        bonus,
        "--checkpoint-every",
        "2",
    ]);
    assert!(ok.status.success(), "{ok:?}");
    let (resumed, said) = replay_json(&log, &["--params", bonus, from[0], from[1]]);
    assert!(said.contains("resumed from the checkpoint"), "{said}");
    assert_eq!(resumed, fresh);

    // Another history (the same change, another value) has its own namespace again.
    let other = temp.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(bonus)
            .unwrap()
            .replace("1.08", "1.05"),
    )
    .unwrap();
    let (_, said) = replay_json(
        &log,
        &["--params", other.to_str().unwrap(), from[0], from[1]],
    );
    assert!(!said.contains("resumed"), "{said}");
}
