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
    succeed(
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .arg("replay")
            .arg(log)
            .args(extra)
            .arg("--out")
            .arg(run),
    );
    serde_json::from_slice(&std::fs::read(run).expect("run written")).expect("JSON")
}

/// Runs `command`, which must succeed.
fn succeed(command: &mut Command) {
    let output = command.output().expect("runs cascade");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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

/// A three-protocol market whose liquidators sell WETH into one shared depth curve: the run file
/// links each protocol's impact-triggered liquidations to the other protocol's sales that caused
/// them, every link is backed by liquidations of its effect side in the run, and the report's
/// story says the largest link in words.
#[test]
fn sales_in_one_protocol_trigger_liquidations_in_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("market");
    json(&synth_market(
        &log,
        "maker,aave-v2,compound-v2",
        "3000",
        &["--seed", "7", "--overlap", "0.3", "--loops", "0.2"],
    ));
    let scenario = dir.path().join("impact.toml");
    std::fs::write(
        &scenario,
        "name = \"WETH sold into one curve\"\n[[impact]]\nasset = \"WETH\"\nmodel = \"depth\"\n\
         depth = \"3000\"\nslippage = \"5%\"\nhalf_life = \"30m\"\n",
    )
    .expect("scenario written");
    let out = dir.path().join("cf.json");
    let scenario_arg = scenario.to_str().expect("utf-8 path");
    let run = replay(
        &log,
        &out,
        &["--osm-sample", "step", "--scenario", scenario_arg],
    );
    let cascade = &run["counterfactual"]["cascade"];
    let links = cascade["cross_protocol"]
        .as_array()
        .expect("cross-protocol links");
    let pairs: std::collections::BTreeSet<(String, String)> = links
        .iter()
        .map(|l| {
            let side = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            assert_ne!(side("cause_protocol"), side("effect_protocol"), "{l}");
            (side("cause_protocol"), side("effect_protocol"))
        })
        .collect();
    assert!(pairs.len() >= 2, "{pairs:?}");
    let linked: u64 = links
        .iter()
        .filter_map(|l| l["liquidations"].as_u64())
        .sum();
    assert!(linked > 0 && linked <= cascade["triggered_by_impact"].as_u64().unwrap_or(0));
    let liquidations = run["liquidations"].as_array().expect("liquidations");
    for link in links {
        let hour = |t: &str| t[..13].to_owned();
        let effect_hour = hour(link["effect_time"].as_str().unwrap_or_default());
        let backing = liquidations
            .iter()
            .filter(|l| {
                l["protocol"] == link["effect_protocol"]
                    && l["market"] == link["effect_market"]
                    && l["round"].as_u64().unwrap_or(0) >= 2
                    && hour(l["time"].as_str().unwrap_or_default()) == effect_hour
            })
            .count() as u64;
        assert!(
            backing >= link["liquidations"].as_u64().unwrap_or(0),
            "{link}"
        );
    }
    by_trigger_matches_links_and_liquidations(&run);
    let report = dir.path().join("report.html");
    succeed(
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .arg("report")
            .arg(&out)
            .arg("--out")
            .arg(&report),
    );
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("markdown");
    assert!(
        markdown.contains(&format!(
            "{} liquidations triggered by another protocol's sales",
            thousands(linked)
        )),
        "{markdown}"
    );
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(
        html.contains("liquidations triggered by another protocol&#39;s sales")
            || html.contains("liquidations triggered by another protocol's sales"),
        "the overlap table has no row of liquidations triggered by another protocol's sales"
    );
}

/// `n` with a comma every three digits, as the report writes counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A decimal text (`"12.5"`) as an integer with 18 decimals.
fn wad(text: &str) -> u128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = format!("{fraction:0<18}");
    whole.parse::<u128>().expect("whole part") * 10u128.pow(18)
        + fraction.parse::<u128>().expect("fraction")
}

/// The overlap's `liquidations_by_trigger` at the end of a counterfactual run agrees with the
/// rest of the run: per protocol, `other-protocol-sales` counts what the cross-protocol links
/// count on their effect side, `price-path` the round-1 liquidations and the other two triggers
/// those of later rounds; per protocol and debt asset, the debt adds up to the liquidations'.
fn by_trigger_matches_links_and_liquidations(run: &serde_json::Value) {
    use std::collections::BTreeMap;
    let end = run["overlap"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["moment"] == "end"))
        .expect("an overlap at the end");
    let rows = end["liquidations_by_trigger"]
        .as_array()
        .expect("liquidations by trigger");
    let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut debt: BTreeMap<(String, String), u128> = BTreeMap::new();
    for row in rows {
        let text = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
        *counted
            .entry((text("protocol"), text("trigger")))
            .or_default() += row["liquidations"].as_u64().unwrap_or(0);
        *debt
            .entry((text("protocol"), text("debt_asset")))
            .or_default() += wad(&text("debt_repaid"));
    }
    let mut from_links: BTreeMap<String, u64> = BTreeMap::new();
    for link in run["counterfactual"]["cascade"]["cross_protocol"]
        .as_array()
        .expect("links")
    {
        *from_links
            .entry(
                link["effect_protocol"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += link["liquidations"].as_u64().unwrap_or(0);
    }
    let mut rounds: BTreeMap<(String, bool), u64> = BTreeMap::new();
    let mut repaid: BTreeMap<(String, String), u128> = BTreeMap::new();
    for l in run["liquidations"].as_array().expect("liquidations") {
        let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
        let first = l["round"].as_u64() == Some(1);
        *rounds.entry((text("protocol"), first)).or_default() += 1;
        *repaid
            .entry((text("protocol"), text("debt_asset")))
            .or_default() += wad(&text("debt_repaid"));
    }
    let protocols: Vec<String> = rounds.keys().map(|(p, _)| p.clone()).collect();
    assert!(protocols.len() >= 3, "{protocols:?}");
    let get = |p: &str, t: &str| {
        counted
            .get(&(p.to_owned(), t.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    for protocol in &protocols {
        let p = protocol.as_str();
        assert_eq!(
            get(p, "other-protocol-sales"),
            from_links.get(p).copied().unwrap_or(0),
            "{p}"
        );
        assert_eq!(
            get(p, "price-path"),
            rounds.get(&(p.to_owned(), true)).copied().unwrap_or(0),
            "{p}"
        );
        assert_eq!(
            get(p, "own-protocol-sales") + get(p, "other-protocol-sales"),
            rounds.get(&(p.to_owned(), false)).copied().unwrap_or(0),
            "{p}"
        );
    }
    assert!(counted.keys().any(|(_, t)| t == "other-protocol-sales"));
    assert_eq!(debt, repaid);
}
