//! The published fidelity of the Maker ETH-B replay (`docs/fidelity.md`), reproduced from the real
//! exports in `../shared/data` with the commands the page gives: a change to the engine that moves
//! a verdict shows up here. Skipped, with a notice, when the data folder is absent.

mod common;

use std::path::{Path, PathBuf};

use common::{cascade, ethb_hourly_log, ingest, shared_data};
use serde_json::Value;

/// Verdict counts over all liquidations, and the explained share on the four crash days.
fn verdicts(log: &Path) -> (Value, usize, usize) {
    let run: Value = serde_json::from_slice(&cascade(&[
        "replay",
        log.to_str().expect("UTF-8 temp path"),
        "--json",
    ]))
    .expect("run JSON");
    let crash_days = ["2021-05-19", "2022-05-12", "2022-06-13", "2022-11-09"];
    let on_crash_days: Vec<&Value> = run["liquidations"]
        .as_array()
        .expect("liquidations")
        .iter()
        .filter(|l| {
            let time = l["time"].as_str().expect("time");
            crash_days.iter().any(|day| time.starts_with(day))
        })
        .collect();
    let explained = on_crash_days
        .iter()
        .filter(|l| l["verdict"] == "explained")
        .count();
    (
        run["totals"]["verdicts"].clone(),
        explained,
        on_crash_days.len(),
    )
}

#[test]
fn maker_eth_b_verdicts_are_the_published_ones() {
    let Some(data) = shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = ethb_hourly_log(&data, dir.path());
    let (hourly, explained, crash) = verdicts(&log);
    assert_eq!(
        hourly,
        serde_json::json!({"amount-mismatch": 3, "explained": 86, "no-price": 3,
            "not-liquidatable": 407, "unknown-account": 0})
    );
    assert_eq!((explained, crash), (16, 19), "crash days, hourly prices");

    let mut bars: Vec<PathBuf> =
        std::fs::read_dir(data.join("prices/berkeley-stablesims/feeds/eth"))
            .expect("10-minute ETH feeds")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
    bars.sort();
    ingest(&log, "ohlcv-json", &bars, &["--asset", "WETH"]);
    let (with_bars, explained, crash) = verdicts(&log);
    assert_eq!(
        with_bars,
        serde_json::json!({"amount-mismatch": 3, "explained": 99, "no-price": 3,
            "not-liquidatable": 394, "unknown-account": 0})
    );
    assert_eq!(
        (explained, crash),
        (17, 19),
        "crash days, with the 10-minute bars"
    );
}
