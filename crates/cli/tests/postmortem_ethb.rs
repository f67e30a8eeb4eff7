//! Scenario semantics checked on the real Maker ETH-B 2022-06-13 window of post-mortem 1
//! (`docs/postmortems/2022-06-13-ethb.md`), built from `../shared/data` as its README does.
//! Skipped, with a notice, when the data folder is absent.

mod real_data;

use std::path::Path;

use real_data::{cascade, ethb_hourly_log, shared_data};
use serde_json::Value;

const WINDOW: &str =
    "window = { from = \"2022-06-10T00:00:00Z\", to = \"2022-06-20T00:00:00Z\" }\n";
const WINDOW_START: &str = "2022-06-10T00:00:00Z";

fn replay(log: &Path, dir: &Path, name: &str, scenario: &str) -> Value {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, format!("name = \"{name}\"\n{scenario}")).expect("scenario written");
    let out = dir.join(format!("{name}.json"));
    cascade(&[
        "replay",
        log.to_str().expect("UTF-8 temp path"),
        "--scenario",
        file.to_str().expect("UTF-8 temp path"),
        "--out",
        out.to_str().expect("UTF-8 temp path"),
    ]);
    serde_json::from_slice(&std::fs::read(out).expect("run file")).expect("run JSON")
}

/// The recorded WETH price in effect at the window start: the last one at or before it.
fn weth_at_window_start(log: &Path) -> String {
    let events = cascade(&["log", "cat", log.to_str().expect("UTF-8"), "--json"]);
    let mut at_start: Option<(String, String)> = None;
    for line in events.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let event: Value = serde_json::from_slice(line).expect("event JSON");
        let payload = &event["payload"];
        let time = event["time"].as_str().expect("time").to_owned();
        if payload["kind"] == "price"
            && payload["asset"] == "WETH"
            && time.as_str() <= WINDOW_START
            && at_start.as_ref().is_none_or(|(t, _)| time >= *t)
        {
            let price = payload["price"].as_str().expect("price").to_owned();
            at_start = Some((time, price));
        }
    }
    at_start.expect("a WETH price before the window").1
}

/// What a run found, without the scenario that asked for it.
fn outcome(run: &Value) -> (&Value, &Value, &Value, &Value) {
    (
        &run["state_hash"],
        &run["totals"],
        &run["liquidations"],
        &run["timeline"],
    )
}

#[test]
fn a_default_drawdown_scale_measures_from_the_window_start() {
    let Some(data) = shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = ethb_hourly_log(&data, dir.path());

    let baseline = replay(&log, dir.path(), "baseline", WINDOW);
    let drawdown = "[[price]]\nasset = \"WETH\"\ntransform = \"scale-drawdown\"\nfactor = \"2\"\n";
    let doubled = replay(&log, dir.path(), "doubled", &format!("{WINDOW}{drawdown}"));
    assert_eq!(
        doubled["scenario"]["changes"],
        serde_json::json!(["WETH price drawdown x2 below the window-start price"])
    );
    // The log's first WETH price (January 2021) is below every June 2022 price: measured from
    // there, the doubled drawdown would change nothing.
    let liquidations = |run: &Value| run["totals"]["liquidations"].as_u64().expect("count");
    assert!(
        liquidations(&doubled) > liquidations(&baseline),
        "doubling the drawdown liquidates no more than the baseline's {}",
        liquidations(&baseline)
    );

    // What the run file says is what ran: the same run with the window-start price written out.
    let reference = weth_at_window_start(&log);
    let explicit = replay(
        &log,
        dir.path(),
        "explicit",
        &format!("{WINDOW}{drawdown}reference = \"{reference}\"\n"),
    );
    assert_eq!(outcome(&doubled), outcome(&explicit));
}
