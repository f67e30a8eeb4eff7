//! What the CLI says on stderr, as a user reads it: a missing log says it does not exist, an OS
//! error is said once, known fixes come as hints, `-v` traces every command without colours when
//! piped, `--quiet` silences the rest, and `--source` lists every kind.

// The fixture helper outside the `#[test]` functions reads committed, valid files.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::{fixture_log, repo};

fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_missing_log_says_it_does_not_exist() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("no-such-log");
    let missing = missing.to_str().unwrap();
    let golden = temp.path().join("g.json");
    std::fs::write(&golden, "{}").unwrap();
    for args in [
        vec!["replay", missing],
        vec!["check", missing, "--expect", golden.to_str().unwrap()],
        vec!["log", "stats", missing],
        vec!["log", "verify", missing],
        vec!["sweep", missing, "--param", "maker.ETH-B.mat=1.3..1.4:0.1"],
        vec![
            "stream",
            "publish",
            missing,
            "--brokers",
            "127.0.0.1:9",
            "--topic",
            "t",
        ],
    ] {
        let output = cascade(&args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains(&format!("{missing} does not exist"))
                && text.contains("hint: `cascade ingest --log"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("CURRENT"), "{args:?}: {text}");
    }
}

#[test]
fn an_os_error_is_said_once() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("nowhere.json");
    let out = temp.path().join("r.html");
    let report = cascade(&[
        "report",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stderr(&report);
    assert_eq!(report.status.code(), Some(2));
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
    let ingest = cascade(&[
        "ingest",
        "--log",
        temp.path().join("log").to_str().unwrap(),
        "--source",
        "price-csv",
        missing.to_str().unwrap(),
    ]);
    let text = stderr(&ingest);
    assert_eq!(text.matches("os error 2").count(), 1, "{text}");
}

#[test]
fn a_rejected_row_hints_at_skip_invalid() {
    let temp = tempfile::tempdir().unwrap();
    let rounds =
        repo().join("fixtures/ingest/eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv");
    let log = temp.path().join("log");
    let ingest = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            "--log",
            log.to_str().unwrap(),
            "--source",
            "chainlink-rounds",
            rounds.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cascade(&args)
    };
    let rejected = ingest(&[]);
    assert_eq!(rejected.status.code(), Some(2));
    let text = stderr(&rejected);
    assert!(text.contains("zero timestamp"), "{text}");
    assert!(
        text.contains("hint: --skip-invalid moves rejected rows"),
        "{text}"
    );
    let skipped = ingest(&["--skip-invalid"]);
    assert_eq!(skipped.status.code(), Some(1), "{}", stderr(&skipped));
    assert!(!stderr(&skipped).contains("hint:"));
}

#[test]
fn verbose_traces_every_command_without_colours_when_piped_and_quiet_silences() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let dir = log.to_str().unwrap();
    let run = temp.path().join("run.json");
    let traced = cascade(&["replay", dir, "-v", "--out", run.to_str().unwrap()]);
    let text = stderr(&traced);
    assert!(traced.status.success(), "{text}");
    assert!(
        text.contains("INFO") && text.contains("replaying"),
        "{text}"
    );
    assert!(text.contains("liquidations judged"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes on a pipe: {text:?}");
    let debug = cascade(&["replay", dir, "-vv"]);
    assert!(stderr(&debug).contains("DEBUG"), "{}", stderr(&debug));
    // -v is global: it works after any subcommand.
    let report = temp.path().join("report.html");
    let traced = cascade(&[
        "-v",
        "report",
        run.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    assert!(
        stderr(&traced).contains("drawing the report"),
        "{}",
        stderr(&traced)
    );
    let plain = cascade(&["replay", dir, "--checkpoint-every", "4"]);
    assert!(stderr(&plain).contains("stored"), "{}", stderr(&plain));
    let quiet = cascade(&["replay", dir, "--checkpoint-every", "3", "--quiet"]);
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "");
}

#[test]
fn source_help_lists_every_kind() {
    let help = cascade(&["ingest", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for kind in cascade_ingest::SourceKind::ALL {
        let listed = text.contains(kind.name());
        assert_eq!(
            listed,
            !matches!(
                kind,
                cascade_ingest::SourceKind::CsvRows | cascade_ingest::SourceKind::CsvFileOrder
            ),
            "{}: {text}",
            kind.name()
        );
    }
}

/// `cascade --help`'s subcommands, `help` left out.
fn subcommands() -> Vec<String> {
    let help = String::from_utf8(cascade(&["--help"]).stdout).unwrap();
    help.split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every subcommand `--help` lists, run on the fixtures: `-v` prints INFO lines and no DEBUG,
/// `-vv` DEBUG lines too, never with colours on a pipe. The commands that need a Kafka broker
/// (stream, worker) are given one that does not answer and stopped after 10 s: what they say
/// before they connect is what is checked.
#[test]
fn every_subcommand_talks_at_v_and_vv() {
    let temp = tempfile::tempdir().unwrap();
    let at = |name: &str| temp.path().join(name).to_str().unwrap().to_owned();
    let log = at("log");
    fixture_log(std::path::Path::new(&log));
    let run = at("run.json");
    assert!(cascade(&["replay", &log, "--out", &run]).status.success());
    let golden = at("golden.json");
    assert!(
        cascade(&["check", &log, "--expect", &golden, "--update"])
            .status
            .success()
    );
    let suite = at("suite.toml");
    std::fs::write(
        &suite,
        format!("[[case]]\nlog = {log:?}\nexpect = {golden:?}\n"),
    )
    .unwrap();
    let prices = repo().join("fixtures/ingest/prices.csv");
    let prices = prices.to_str().unwrap();
    let invocations: Vec<Vec<String>> = [
        vec!["log", "verify", &log],
        vec!["log", "stats", &log],
        vec!["log", "cat", &log, "--limit", "2"],
        vec![
            "ingest",
            "--log",
            "NEW/ingested",
            "--source",
            "price-csv",
            prices,
        ],
        vec!["demo", "--accounts", "40", "--out", "NEW/demo"],
        vec![
            "synth",
            "--protocol",
            "maker",
            "--accounts",
            "40",
            "--out",
            "NEW/synth",
        ],
        vec!["replay", &log],
        vec!["check", &log, "--expect", &golden],
        vec![
            "stream",
            "publish",
            &log,
            "--brokers",
            "127.0.0.1:9",
            "--topic",
            "t",
        ],
        vec!["diff", &run, &run],
        vec!["report", &run, "--out", "NEW/report.html"],
        vec!["state", &log, "--at", "2021-06-01T03:00:00Z"],
        vec!["run", "cat", &run],
        vec!["sweep", &log, "--param", "maker.ETH-B.mat=1.3..1.4:0.1"],
        vec![
            "worker",
            "--brokers",
            "127.0.0.1:9",
            "--work-topic",
            "w",
            "--log-dir",
            "NEW/w",
        ],
        vec!["check-suite", &suite],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(str::to_owned).collect())
    .collect();
    let covered: std::collections::BTreeSet<&str> =
        invocations.iter().map(|args| args[0].as_str()).collect();
    let listed = subcommands();
    assert_eq!(
        covered,
        listed.iter().map(String::as_str).collect(),
        "every subcommand is tried"
    );
    for (index, args) in invocations.iter().enumerate() {
        for (flag, level) in [("-v", "INFO"), ("-vv", "DEBUG")] {
            // A fresh output path for each run of a command that writes one.
            let args: Vec<String> = args
                .iter()
                .map(|arg| arg.replace("NEW", &at(&format!("{index}{flag}"))))
                .collect();
            let output = Command::new("timeout")
                .arg("10")
                .arg(env!("CARGO_BIN_EXE_cascade"))
                .arg(flag)
                .args(&args)
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            let text = stderr(&output);
            assert!(
                text.lines()
                    .any(|line| line.trim_start().starts_with(level)),
                "{flag} {args:?} printed no {level} line: {text}"
            );
            if flag == "-v" {
                assert!(!text.contains("DEBUG"), "{flag} {args:?}: {text}");
            }
            assert!(
                !text.contains('\u{1b}'),
                "{args:?}: ANSI on a pipe: {text:?}"
            );
        }
    }
}
