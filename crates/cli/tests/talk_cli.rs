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
