//! `cascade replay` and `cascade check` as a user runs them: byte-identical run files whatever
//! `RAYON_NUM_THREADS` says, exit 0 on an identical golden, 1 with a readable diff on a changed
//! one, `--update` rewriting it, `--from` resuming from a checkpoint with the same result.

// The fixture helper outside the `#[test]` functions reads committed, valid files.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use cascade_events::Event;
use common::{fixture_log, fixture_log_with, named_fixture_log_with, repo};

fn cascade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
}

#[test]
fn run_files_are_byte_identical_whatever_the_thread_count() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let mut outputs = Vec::new();
    for threads in ["1", "2", "7"] {
        let out = temp.path().join(format!("run-{threads}.json"));
        let status = cascade()
            .args([
                "replay",
                log.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        let stdout = String::from_utf8(status.stdout).unwrap();
        assert!(stdout.contains("explained 2"), "{stdout}");
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(outputs.windows(2).all(|pair| pair[0] == pair[1]));
    // The run is the committed golden of the same fixture.
    let golden = std::fs::read(repo().join("fixtures/expected/maker-dog-bark.json")).unwrap();
    assert_eq!(outputs[0], golden);
}

#[test]
fn the_summary_without_a_run_file_is_the_summary_of_the_run_file() {
    // Without --out the replay builds no samples, books or accounts (they are only written):
    // everything the summary prints must come out the same.
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let out = temp.path().join("run.json");
    let summary = |extra: &[&str]| {
        let output = cascade()
            .args(["replay", log.to_str().unwrap(), "--quiet"])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let alone = summary(&[]);
    let with_file = summary(&["--out", out.to_str().unwrap()]);
    assert!(
        alone.contains("(by cause: unexplained 1)") && alone.contains("state hash: "),
        "{alone}"
    );
    // Amounts as the report shows them (the golden totals: 38 ETH, 31648.672566371 DAI).
    assert!(
        alone.contains("collateral seized: 38.000 ETH\n")
            && alone.contains("debt repaid: 31,648.67 DAI\n"),
        "{alone}"
    );
    assert_eq!(
        with_file,
        format!("{alone}run written to {}\n", out.display())
    );
}

#[test]
fn check_exits_0_on_equal_1_with_a_diff_and_update_rewrites() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let golden = temp.path().join("golden.json");
    std::fs::copy(
        repo().join("fixtures/expected/maker-dog-bark.json"),
        &golden,
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let mut command = cascade();
        command.args([
            "check",
            log.to_str().unwrap(),
            "--expect",
            golden.to_str().unwrap(),
        ]);
        command.args(extra);
        command.output().unwrap()
    };
    let same = check(&[]);
    assert_eq!(same.status.code(), Some(0), "{same:?}");

    // A golden where vault #1 was judged differently and a total moved.
    let text = std::fs::read_to_string(&golden).unwrap();
    let edited = text
        .replacen(
            "\"verdict\": \"explained\"",
            "\"verdict\": \"not-liquidatable\"",
            1,
        )
        .replacen("\"explained\": 2", "\"explained\": 3", 1);
    assert_ne!(edited, text);
    std::fs::write(&golden, edited).unwrap();
    let differs = check(&[]);
    assert_eq!(differs.status.code(), Some(1), "{differs:?}");
    let report = String::from_utf8(differs.stdout).unwrap();
    assert!(
        report.contains("liquidations: 4 matched, 0 appeared, 0 vanished, 1 changed (1 verdict)"),
        "{report}"
    );
    assert!(
        report.contains("liquidation changed: 2021-06-01T02:00:12Z recorded maker ETH-B #1: verdict not-liquidatable -> explained"),
        "{report}"
    );
    assert!(
        report.contains("totals.verdicts.explained 3 -> 2"),
        "{report}"
    );

    let update = check(&["--update"]);
    assert_eq!(update.status.code(), Some(0), "{update:?}");
    assert_eq!(check(&[]).status.code(), Some(0));
    assert_eq!(
        std::fs::read(&golden).unwrap(),
        std::fs::read(repo().join("fixtures/expected/maker-dog-bark.json")).unwrap()
    );

    let missing = cascade()
        .args([
            "check",
            "/nonexistent/log",
            "--expect",
            golden.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn from_resumes_from_a_checkpoint_with_the_same_run() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let dir = log.to_str().unwrap();
    let first = temp.path().join("first.json");
    let writing = cascade()
        .args([
            "replay",
            dir,
            "--checkpoint-every",
            "4",
            "--from",
            "2021-06-01T02:00:00Z",
        ])
        .args(["--out", first.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(writing.status.success(), "{writing:?}");
    assert!(String::from_utf8_lossy(&writing.stderr).contains("stored"));
    let second = temp.path().join("second.json");
    let resumed = cascade()
        .args(["replay", dir, "--from", "2021-06-01T02:00:00Z"])
        .args(["--out", second.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{resumed:?}");
    assert!(
        String::from_utf8_lossy(&resumed.stderr).contains("resumed from the checkpoint"),
        "{resumed:?}"
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
}

/// A price of an asset the fixture's market does not read, at `event`'s time, before each of the
/// fixture's prices: a log that gained a price file.
fn unrelated_price_before(event: &Event) -> Vec<Event> {
    if event.kind() != cascade_events::EventKind::Price {
        return Vec::new();
    }
    let line = format!(
        r#"{{"seq":0,"chain_id":1,"block":null,"time":"{}","tx_index":null,"log_index":null,"tx_hash":null,"source":0,"payload":{{"kind":"price","asset":"WBTC","quote":"USD","price":"35000","feed":"test-feed","round":null}}}}"#,
        event.time.to_rfc3339()
    );
    vec![serde_json::from_str(&line).unwrap()]
}

fn check_output(log: &Path, golden: &Path, extra: &[&str]) -> std::process::Output {
    cascade()
        .args(["check", log.to_str().unwrap(), "--expect"])
        .arg(golden)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn check_matches_liquidations_by_identity_when_the_log_gains_events() {
    let temp = tempfile::tempdir().unwrap();
    let (base, grown) = (temp.path().join("base"), temp.path().join("grown"));
    fixture_log(&base);
    fixture_log_with(&grown, unrelated_price_before);
    let golden = temp.path().join("golden.json");
    let update = check_output(&base, &golden, &["--update"]);
    assert_eq!(update.status.code(), Some(0), "{update:?}");

    let output = check_output(&grown, &golden, &[]);
    // The log changed (more events), so the golden is not identical; but every liquidation is
    // matched and none changed, whatever their new positions in the log.
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "summary:", "{text}");
    assert_eq!(
        lines[2], "  liquidations: 4 matched, 0 appeared, 0 vanished, 0 changed (0 verdicts)",
        "{text}"
    );
    assert!(text.contains("settings changed: 4 (log, window)"), "{text}");
    assert!(text.contains("totals.by_kind.price 8 -> 16"), "{text}");
    assert!(!text.contains("liquidation vanished"), "{text}");
    assert!(
        text.lines().all(|line| line.chars().count() <= 120),
        "{text}"
    );

    let json = check_output(&grown, &golden, &["--json"]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["identical"], false);
    assert_eq!(report["summary"]["liquidations_matched"], 4);
    assert_eq!(report["summary"]["liquidations"]["vanished"], 0);
    assert_eq!(report["diff"]["settings"][0]["key"], "log.content_hash");

    let capped = check_output(&grown, &golden, &["--max-lines", "2"]);
    let text = String::from_utf8(capped.stdout).unwrap();
    let details = text.split("details:\n").nth(1).unwrap();
    assert_eq!(details.lines().count(), 3, "{text}");
    assert!(details.contains("more (--max-lines 0 shows all"), "{text}");
}

/// A golden whose nested objects differ (a liquidation's `oracle`, an unsafe episode's
/// `evidence`, as on real data after one more price file): each change is a key path with its
/// two values on a short line, never the objects dumped whole, and `--tolerance-ppm` weighs
/// the nested amounts too.
#[test]
fn check_shows_nested_changes_as_short_key_paths_within_the_tolerance() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let golden = temp.path().join("golden.json");
    let update = check_output(&log, &golden, &["--update"]);
    assert_eq!(update.status.code(), Some(0), "{update:?}");
    let mut run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    run["liquidations"][0]["oracle"]["price"] = "1350.00001".into();
    let evidence = &mut run["unsafe_unliquidated"][0]["evidence"];
    evidence["debt"] = "8000.5".into();
    evidence["lowest_health"] = "0.87500001".into();
    std::fs::write(&golden, serde_json::to_vec_pretty(&run).unwrap()).unwrap();

    let output = check_output(&log, &golden, &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        "  liquidation changed: 2021-06-01T02:00:12Z recorded maker ETH-B #1: oracle.price \
         1350.00001 -> 1350",
        "  unsafe episode changed: maker ETH-B #4 2021-06-01T03:30:00Z",
        "    evidence.debt 8000.5 -> 8000",
        "    evidence.lowest_health 0.87500001 -> 0.875",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    assert!(!text.contains('{'), "an object dumped: {text}");
    assert!(
        text.lines().all(|line| line.chars().count() <= 120),
        "{text}"
    );

    // 0.5 of 8,000 is 62.5 ppm, the other moves far less: all within 100 ppm, none within 50.
    let tolerant = check_output(&log, &golden, &["--tolerance-ppm", "100"]);
    let text = String::from_utf8(tolerant.stdout).unwrap();
    assert_eq!(tolerant.status.code(), Some(0), "{text}");
    assert!(
        text.contains("(2 items moved within --tolerance-ppm 100)"),
        "{text}"
    );
    let strict = check_output(&log, &golden, &["--tolerance-ppm", "50"]);
    let text = String::from_utf8(strict.stdout).unwrap();
    assert_eq!(strict.status.code(), Some(1), "{text}");
    assert!(text.contains("evidence.debt 8000.5 -> 8000"), "{text}");
    assert!(!text.contains("oracle.price"), "{text}");
}

#[test]
fn a_compact_golden_holds_only_its_fields_and_ignores_the_rest() {
    let temp = tempfile::tempdir().unwrap();
    let (base, grown) = (temp.path().join("base"), temp.path().join("grown"));
    fixture_log(&base);
    fixture_log_with(&grown, unrelated_price_before);
    let golden = temp.path().join("golden.json");
    let fields = "liquidations.verdict,liquidations.debt_repaid,totals.verdicts";
    let update = check_output(&base, &golden, &["--update", "--golden-fields", fields]);
    assert_eq!(update.status.code(), Some(0), "{update:?}");
    let compact: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    let keys: Vec<&String> = compact.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["golden_fields", "liquidations", "schema_version", "totals"]
    );
    let first = compact["liquidations"][0].as_object().unwrap();
    assert!(first.contains_key("verdict") && !first.contains_key("health"));
    assert!(!first.contains_key("seq"), "{first:?}");

    // --update keeps a compact golden compact.
    let again = check_output(&base, &golden, &["--update"]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    let rewritten: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    assert_eq!(rewritten, compact);

    // The compact golden checks its fields only: the grown log passes.
    let output = check_output(&grown, &golden, &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("no difference"));

    // A changed verdict in it is found.
    let text = std::fs::read_to_string(&golden).unwrap();
    std::fs::write(
        &golden,
        text.replacen("\"verdict\": \"explained\"", "\"verdict\": \"no-price\"", 1),
    )
    .unwrap();
    let output = check_output(&grown, &golden, &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("verdict no-price -> explained"),
        "{output:?}"
    );
}

#[test]
fn fail_on_turns_verdict_counts_into_an_exit_code() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let replay = |threshold: &str| {
        cascade()
            .args(["replay", log.to_str().unwrap(), "--fail-on", threshold])
            .output()
            .unwrap()
    };
    // The fixture's four liquidations: 2 explained, 1 not-liquidatable, 1 unknown-account.
    let tripped = replay("not-liquidatable>0");
    assert_eq!(tripped.status.code(), Some(1), "{tripped:?}");
    assert!(
        String::from_utf8_lossy(&tripped.stderr)
            .contains("--fail-on not-liquidatable>0: not-liquidatable is 1"),
        "{tripped:?}"
    );
    assert_eq!(replay("no-price>0").status.code(), Some(0));
    assert_eq!(replay("explained-percent<50").status.code(), Some(0));
    assert_eq!(replay("explained>=2").status.code(), Some(1));
    let unknown = replay("liquidated>0");
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("one of explained"));

    let golden = temp.path().join("golden.json");
    check_output(&log, &golden, &["--update"]);
    let check = check_output(&log, &golden, &["--fail-on", "unknown-account>0"]);
    assert_eq!(check.status.code(), Some(1), "{check:?}");
}

#[test]
fn a_missing_golden_says_how_to_write_it() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let output = check_output(&log, &temp.path().join("golden.json"), &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("golden.json does not exist") && stderr.contains("--update"),
        "{stderr}"
    );
}

#[test]
fn scenario_data_paths_resolve_against_the_data_dir() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let data = temp.path().join("data");
    std::fs::create_dir_all(data.join("pools")).unwrap();
    std::fs::write(
        data.join("pools/eth-dai.json"),
        r#"[{"DAI": 60000000, "WETH": 20000}]"#,
    )
    .unwrap();
    let scenario = temp.path().join("scenarios/pool.toml");
    std::fs::create_dir_all(scenario.parent().unwrap()).unwrap();
    std::fs::write(
        &scenario,
        "[[impact]]\nasset = \"ETH\"\nmodel = \"constant-product\"\nreserves_file = \"pools/eth-dai.json\"\nreserves_start = \"2021-06-01T00:00:00Z\"\nbase_key = \"WETH\"\nquote_key = \"DAI\"\nhalf_life = \"10m\"\n",
    )
    .unwrap();
    let replay = |extra: &[&str], env: Option<&Path>| {
        let mut command = cascade();
        command
            .args(["replay", log.to_str().unwrap(), "--scenario"])
            .arg(&scenario)
            .args(extra)
            .env_remove("CASCADE_DATA_DIR");
        if let Some(dir) = env {
            command.env("CASCADE_DATA_DIR", dir);
        }
        command.output().unwrap()
    };
    // Relative to the scenario's folder by default: not there, and the error says what to do.
    let missing = replay(&[], None);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("scenarios/pools/eth-dai.json")
            && stderr.contains("hint: relative data paths are read from the scenario's folder")
            && stderr.contains("--data-dir DIR"),
        "{stderr}"
    );
    let flag = replay(&["--data-dir", data.to_str().unwrap()], None);
    assert_eq!(flag.status.code(), Some(0), "{flag:?}");
    let env = replay(&[], Some(&data));
    assert_eq!(env.status.code(), Some(0), "{env:?}");
    let wrong = replay(&["--data-dir", temp.path().to_str().unwrap()], None);
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("read from the data folder"),
        "{wrong:?}"
    );
}

/// `--out run.jsonl` writes the line form; `cascade run cat` reads it back as the JSON
/// document, and check, diff and report take either form.
#[test]
fn the_line_form_is_written_read_back_and_taken_by_every_consumer() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let path = |name: &str| temp.path().join(name).to_str().unwrap().to_owned();
    let ok = |args: &[&str]| {
        let output = cascade().args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        output.stdout
    };
    let log = log.to_str().unwrap();
    ok(&["replay", log, "--out", &path("run.json")]);
    ok(&["replay", log, "--out", &path("run.jsonl")]);
    let lines = std::fs::read_to_string(path("run.jsonl")).unwrap();
    let header: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(header["lines"]["liquidations"], 4, "{header}");
    assert!(
        lines
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(r#"{"liquidations":{"#)
    );
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("run.json")).unwrap()).unwrap();
    let cat: serde_json::Value =
        serde_json::from_slice(&ok(&["run", "cat", &path("run.jsonl")])).unwrap();
    assert_eq!(cat, document);
    let cat_json: serde_json::Value =
        serde_json::from_slice(&ok(&["run", "cat", &path("run.json")])).unwrap();
    assert_eq!(cat_json, document);
    let diff = String::from_utf8(ok(&["diff", &path("run.json"), &path("run.jsonl")])).unwrap();
    assert!(
        !diff.contains("appeared") || diff.contains("0 appeared"),
        "{diff}"
    );
    let check = |golden: &str| {
        cascade()
            .args(["check", log, "--expect", golden])
            .output()
            .unwrap()
    };
    assert_eq!(check(&path("run.jsonl")).status.code(), Some(0));
    ok(&[
        "check",
        log,
        "--expect",
        &path("golden.jsonl"),
        "--update",
        "--golden-fields",
        "liquidations.verdict",
    ]);
    let golden = std::fs::read_to_string(path("golden.jsonl")).unwrap();
    assert!(
        golden
            .lines()
            .nth(1)
            .unwrap()
            .contains(r#""verdict":"explained""#),
        "{golden}"
    );
    assert_eq!(check(&path("golden.jsonl")).status.code(), Some(0));
    std::fs::write(
        path("edited.jsonl"),
        golden.replacen(r#""verdict":"explained""#, r#""verdict":"no-price""#, 1),
    )
    .unwrap();
    let changed = check(&path("edited.jsonl"));
    assert_eq!(changed.status.code(), Some(1), "{changed:?}");
    ok(&[
        "report",
        &path("run.jsonl"),
        "--out",
        &path("pm/report.html"),
    ]);
    let truncated: String = lines.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(path("cut.jsonl"), truncated).unwrap();
    let refused = cascade()
        .args(["run", "cat", &path("cut.jsonl")])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        error.contains("cut.jsonl:line") && error.contains("announces"),
        "{error}"
    );
}

/// `--out run.run.bin` writes the binary form: `cascade run cat` prints the JSON document the
/// replay writes, check, diff and report take it, and a truncated file is refused by each.
#[test]
fn the_binary_form_is_written_read_back_and_taken_by_every_consumer() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let path = |name: &str| temp.path().join(name).to_str().unwrap().to_owned();
    let run = |args: &[&str]| cascade().args(args).output().unwrap();
    let ok = |args: &[&str]| {
        let output = run(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        output.stdout
    };
    let log = log.to_str().unwrap();
    ok(&["replay", log, "--out", &path("run.json")]);
    ok(&["replay", log, "--out", &path("run.run.bin")]);
    let json = std::fs::read(path("run.json")).unwrap();
    let binary = std::fs::read(path("run.run.bin")).unwrap();
    assert!(binary.starts_with(b"CASCRUN\0"));
    assert!(
        binary.len() < json.len(),
        "{} >= {}",
        binary.len(),
        json.len()
    );
    let cat = |file: &str| -> serde_json::Value {
        serde_json::from_slice(&ok(&["run", "cat", file])).unwrap()
    };
    assert_eq!(cat(&path("run.run.bin")), cat(&path("run.json")));
    assert_eq!(
        cat(&path("run.run.bin")),
        serde_json::from_slice::<serde_json::Value>(&json).unwrap()
    );
    let diff = String::from_utf8(ok(&["diff", &path("run.json"), &path("run.run.bin")])).unwrap();
    assert!(
        !diff.contains("appeared") || diff.contains("0 appeared"),
        "{diff}"
    );
    assert_eq!(
        run(&["check", log, "--expect", &path("run.run.bin")])
            .status
            .code(),
        Some(0)
    );
    ok(&[
        "report",
        &path("run.run.bin"),
        "--out",
        &path("report.html"),
    ]);
    let refused_golden = run(&[
        "check",
        log,
        "--expect",
        &path("fields.run.bin"),
        "--update",
        "--golden-fields",
        "liquidations.verdict",
    ]);
    assert_eq!(refused_golden.status.code(), Some(2), "{refused_golden:?}");
    std::fs::write(path("cut.run.bin"), &binary[..binary.len() - 10]).unwrap();
    for args in [
        vec!["run", "cat", &path("cut.run.bin")],
        vec!["diff", &path("run.json"), &path("cut.run.bin")],
        vec!["report", &path("cut.run.bin"), "--out", &path("cut.html")],
    ] {
        let refused = run(&args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {refused:?}");
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(
            error.contains("cut.run.bin") && error.contains("(truncated or damaged file)"),
            "{args:?}: {error}"
        );
    }
}

#[test]
fn a_feed_lag_of_a_feed_the_log_does_not_have_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let replay = |lag: &str| {
        cascade()
            .args(["replay", log.to_str().unwrap(), "--feed-lag", lag])
            .output()
            .unwrap()
    };
    let output = replay("coingeko=900");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--feed-lag coingeko=900: no price in ")
            && stderr.contains("comes from feed coingeko (its feeds: "),
        "{stderr}"
    );
    let known = stderr
        .split("(its feeds: ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .unwrap()
        .to_owned();
    let output = replay(&format!("{known}=900"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `cascade replay LOG --out OUT EXTRA...`, which must succeed; the run file it wrote.
fn replayed_run(log: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let output = cascade()
        .arg("replay")
        .arg(log)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

#[test]
fn oracle_flag_chooses_recorded_or_estimated_oracle_values() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    named_fixture_log_with(&log, "osm-recorded", |_| Vec::new());
    let replay = |extra: &[&str]| {
        let out = temp.path().join(format!("run{}.json", extra.join("")));
        let run = replayed_run(&log, &out, extra);
        (
            run["totals"]["verdicts"].clone(),
            run["config"]["maker"]["oracle"].clone(),
        )
    };
    let (verdicts, mode) = replay(&[]);
    assert_eq!(
        (verdicts["explained"].as_u64(), mode),
        (Some(2), serde_json::Value::Null)
    );
    let (verdicts, mode) = replay(&["--oracle", "estimated"]);
    assert_eq!(
        (verdicts["not-liquidatable"].as_u64(), mode.as_str()),
        (Some(2), Some("estimated"))
    );
    let (verdicts, _) = replay(&["--oracle", "recorded"]);
    assert_eq!(verdicts["explained"].as_u64(), Some(2));

    // Diff and report read runs with recorded oracle evidence: the flip is a difference.
    let auto = temp.path().join("run.json");
    let estimated = temp.path().join("run--oracleestimated.json");
    let diff = cascade()
        .arg("diff")
        .args([&auto, &estimated])
        .output()
        .unwrap();
    assert_eq!(diff.status.code(), Some(1), "{diff:?}");
    let report = temp.path().join("report/index.html");
    let output = cascade()
        .args(["report", "--out", report.to_str().unwrap()])
        .args([&auto, &estimated])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(report.is_file());
}

#[test]
fn out_writes_only_the_file_it_names() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let users = temp.path().join("run.tmp");
    std::fs::write(&users, "the user's own file").unwrap();
    let out = temp.path().join("run.json");
    let replay = |out: &str| {
        cascade()
            .args(["replay", log.to_str().unwrap(), "--out", out])
            .output()
            .unwrap()
    };
    assert!(replay(out.to_str().unwrap()).status.success());
    assert_eq!(
        std::fs::read_to_string(&users).unwrap(),
        "the user's own file"
    );
    assert!(std::fs::read(&out).unwrap().starts_with(b"{"));

    let runs = temp.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let output = replay(&format!("{}/", runs.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    let mut names: Vec<String> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["log", "run.json", "run.tmp", "runs"]);
}

/// Runs `cascade replay LOG ARGS` (ARGS without spaces or quotes) with LOG read-only: by permissions for a user, through a read-only
/// bind mount in a private mount namespace for root (whom permissions do not stop). `None`
/// when neither is possible here.
fn replay_read_only(log: &Path, args: &[&str]) -> Option<std::process::Output> {
    let bin = env!("CARGO_BIN_EXE_cascade");
    let log = log.to_str().unwrap();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root {
        assert!(
            Command::new("chmod")
                .args(["-R", "a-w", log])
                .status()
                .unwrap()
                .success()
        );
        let output = cascade().args(["replay", log]).args(args).output().unwrap();
        assert!(
            Command::new("chmod")
                .args(["-R", "u+w", log])
                .status()
                .unwrap()
                .success()
        );
        return Some(output);
    }
    // 4: the bind mount was refused; 3: it did not make the directory read-only.
    let script = format!(
        "mount --bind -o ro '{log}' '{log}' || exit 4; \
         touch '{log}/probe' 2>/dev/null && exit 3; \
         exec '{bin}' replay '{log}' {}",
        args.join(" ")
    );
    let output = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .ok()?;
    let refused =
        matches!(output.status.code(), Some(3 | 4)) || output.stderr.starts_with(b"unshare");
    (!refused).then_some(output)
}

#[test]
fn a_read_only_log_without_checkpoints_replays() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    // A catalog exists (as every ingest leaves one) but holds no checkpoint.
    drop(cascade_log::Catalog::open(&log).unwrap());
    // History, and a scenario without a window (so no window checkpoint either).
    let scenario = repo().join("fixtures/scenarios/baseline.toml");
    let scenario = ["--scenario", scenario.to_str().unwrap()];
    for args in [&[][..], &scenario[..]] {
        let writable = cascade()
            .args(["replay", log.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(writable.status.success(), "{args:?}");
        let Some(output) = replay_read_only(&log, args) else {
            eprintln!(
                "skipping: cannot make a directory read-only here (no permissions, no mount)"
            );
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert_eq!(output.stdout, writable.stdout, "{args:?}");
        assert!(stderr.contains("warning: catalog unavailable"), "{stderr}");
    }
}

/// `replay --from F --to T` is the historical run of a scenario's window `{ from = F, to = T }`:
/// both take `before` at the onset in the window and `after` at the last event before `T`, the
/// run files state those moments, and the report says every run's moments agree. Without
/// `--to`, the historical `after` is the end of the log and the report says they differ.
#[test]
fn a_historical_window_takes_health_at_the_scenarios_moments() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let (from, to) = ("2021-06-01T01:00:00Z", "2021-06-01T04:00:00Z");
    let scenario = temp.path().join("window.toml");
    std::fs::write(
        &scenario,
        format!("name = \"baseline\"\nwindow = {{ from = \"{from}\", to = \"{to}\" }}\n"),
    )
    .unwrap();
    let replay = |name: &str, extra: &[&str]| {
        let out = temp.path().join(name);
        let run = replayed_run(&log, &out, extra);
        (out, run)
    };
    let moments = |run: &serde_json::Value| -> Vec<(String, u64, String)> {
        run["health_distribution"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["moment"].as_str().unwrap().to_owned(),
                    s["seq"].as_u64().unwrap(),
                    s["time"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (historical_path, historical) = replay("historical.json", &["--from", from, "--to", to]);
    let (counterfactual_path, counterfactual) =
        replay("baseline.json", &["--scenario", scenario.to_str().unwrap()]);
    let (whole_path, whole) = replay("whole.json", &[]);
    assert_eq!(historical["window"]["to_time"], to);
    assert_eq!(counterfactual["window"]["to_time"], to);
    assert!(
        whole["window"].get("to_time").is_none(),
        "{}",
        whole["window"]
    );
    // The 02:00 poke makes #1 and #5 unsafe: the onset is the check at the first bark; the
    // window's last event is the 03:30 price.
    let expected = [
        ("before".to_owned(), 24, "2021-06-01T02:00:12Z".to_owned()),
        ("after".to_owned(), 27, "2021-06-01T03:30:00Z".to_owned()),
    ];
    assert_eq!(moments(&historical), expected);
    assert_eq!(moments(&counterfactual), expected);
    assert_eq!(moments(&whole)[1].2, "2021-06-01T06:30:00Z");
    let report = |runs: &[&Path]| {
        let out = temp.path().join("report.html");
        let output = cascade()
            .arg("report")
            .args(runs)
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        std::fs::read_to_string(out.with_extension("md")).unwrap()
    };
    let aligned = report(&[&historical_path, &counterfactual_path]);
    assert!(
        aligned.contains("(every run at 2021-06-01T02:00:12Z (seq 24))")
            && aligned.contains("(every run at 2021-06-01T03:30:00Z (seq 27))")
            && !aligned.contains("moments differ"),
        "{aligned}"
    );
    // The whole log's end is not the window's: that moment is left out and said so, never
    // drawn beside the counterfactual's.
    let misaligned = report(&[&whole_path, &counterfactual_path]);
    assert!(
        misaligned.contains("Not drawn: historical after, taken at 2021-06-01T06:30:00Z")
            && misaligned.contains("outside the events every run reports on")
            && !misaligned.contains("| historical after |")
            && !misaligned.contains("historical after |"),
        "{misaligned}"
    );
}

#[test]
fn to_must_come_after_from() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let output = cascade()
        .args(["replay", log.to_str().unwrap()])
        .args(["--from", "2021-06-01T04:00:00Z", "--to", "2021-06-01"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--to \"2021-06-01\" is not after --from"),
        "{output:?}"
    );
}

/// A Compound v2 liquidation sheet through a mapping whose amounts are whole tokens with the
/// tokens' decimals (18 for ETH, 6 for USDC) and nothing else: no parameter event, no price.
#[test]
fn amounts_are_in_tokens_when_the_mapping_knows_the_decimals() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    std::fs::write(
        dir.join("liquidations.csv"),
        "t,borrower,seized,repaid\n1620000000,0x0000000000000000000000000000000000000d0e,0.6,1000\n1620000060,0x0000000000000000000000000000000000000d0f,1.25,2500.5\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("liquidations.toml"),
        r#"
[time]
column = "t"
format = "unix_s"

[[event]]
kind = "liquidation"
protocol = "compound-v2"
market = "comptroller"
account = { column = "borrower", id = "address" }
collateral_asset = "ETH"
collateral_seized = { column = "seized", unit = "tokens", decimals = 18 }
debt_asset = "USDC"
debt_repaid = { column = "repaid", unit = "tokens", decimals = 6 }
"#,
    )
    .unwrap();
    let log = dir.join("log");
    let ingest = cascade()
        .args(["ingest", "--log", log.to_str().unwrap(), "--source", "csv"])
        .args(["--mapping", dir.join("liquidations.toml").to_str().unwrap()])
        .arg(dir.join("liquidations.csv"))
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{ingest:?}");
    let run = replayed_run(&log, &dir.join("run.json"), &[]);
    let liquidations = run["liquidations"].as_array().unwrap();
    assert_eq!(liquidations[0]["collateral_seized"], "0.6");
    assert_eq!(liquidations[0]["debt_repaid"], "1000");
    assert_eq!(liquidations[1]["debt_repaid"], "2500.5");
    assert_eq!(run["totals"]["collateral_seized"]["ETH"], "1.85");
    assert_eq!(run["totals"]["debt_repaid"]["USDC"], "3500.5");
    assert_eq!(run["totals"]["by_kind"]["param-change"], 2);
    assert_eq!(run["totals"]["accounts_liquidated"], 2);
    // No position and no price: unknown accounts whose seize check names the missing price.
    assert_eq!(liquidations[0]["verdict"], "unknown-account");
    assert_eq!(liquidations[0]["seize"]["result"], "no-price");
    assert_eq!(
        liquidations[0]["missing"],
        serde_json::json!({"input": "price", "asset": "USDC"})
    );
}
