//! Progress on a terminal, as a user sees it: the real `cascade` runs with its stderr on a
//! pseudo-terminal, and every long command (ingest, replay, sweep, synth, report; stream
//! publish, replay and record against a broker, `CASCADE_KAFKA_BROKERS`) draws its bar or spinner
//! there; with stderr piped, or with `--quiet`, nothing of it appears, and a piped stderr carries
//! no ANSI escapes.

// Test plumbing: a failed pty call or spawn is a broken test machine, said by the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
// Only the broker address is needed here, not the module's command helpers.
#[allow(dead_code)]
#[path = "common/kafka.rs"]
mod kafka;

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};

use common::fixture_log;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

/// What a command wrote on stderr, and whether it succeeded.
struct Said {
    ok: bool,
    stderr: String,
}

fn command(args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cascade"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// Runs `cascade args` with stderr on a fresh pseudo-terminal of 120 columns and returns what
/// the terminal received.
fn on_terminal(args: &[String]) -> Said {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    tcsetwinsize(
        &master,
        Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut master = File::from(master);
    // Read while the command runs: a full terminal buffer would block its writes.
    let reader = std::thread::spawn(move || {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        // The read fails (EIO) once the command, the last holder of the terminal, has exited.
        while let Ok(n @ 1..) = master.read(&mut chunk) {
            received.extend_from_slice(&chunk[..n]);
        }
        received
    });
    let mut command = command(args);
    command.stderr(Stdio::from(terminal));
    let mut child = command.spawn().unwrap();
    // The spawned command holds the terminal now; this process must not, or the read never ends.
    drop(command);
    let status = child.wait().unwrap();
    let received = reader.join().unwrap();
    Said {
        ok: status.success(),
        stderr: String::from_utf8_lossy(&received).into_owned(),
    }
}

/// Runs `cascade args` with stderr piped.
fn piped(args: &[String]) -> Said {
    let output = command(args).stderr(Stdio::piped()).output().unwrap();
    Said {
        ok: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Whether `text` holds a bar as `talk::bar` draws it: `{what} [` + bar + `] done/total`.
fn has_bar(text: &str, what: &str) -> bool {
    text.match_indices(&format!("{what} ["))
        .any(|(at, _)| bar_after(&text[at + what.len() + 2..]))
}

fn bar_after(text: &str) -> bool {
    let Some((inside, after)) = text.split_once(']') else {
        return false;
    };
    inside.chars().count() == 30
        && inside.chars().all(|c| matches!(c, '=' | '>' | ' '))
        && after.trim_start().starts_with(|c: char| c.is_ascii_digit())
        && after.contains('/')
}

/// Whether `text` holds a spinner as `talk::spinner` draws it: a line starting with a spinner
/// frame and `message`, ending with the elapsed time in parentheses.
fn has_spinner(text: &str, message: &str) -> bool {
    text.split(['\r', '\n'])
        .map(|line| line.trim_start_matches("\u{1b}[2K").trim_end())
        .any(|line| {
            line.split_once(' ').is_some_and(|(frame, rest)| {
                frame.chars().count() == 1
                    && rest.starts_with(message)
                    && rest
                        .rsplit_once(" (")
                        .and_then(|(_, elapsed)| elapsed.strip_suffix(')'))
                        .is_some_and(|elapsed| elapsed.starts_with(|c: char| c.is_ascii_digit()))
            })
        })
}

/// Checks one long command: `args(variant)` gives its arguments for each of the three runs
/// ("terminal", "quiet", "piped"; a command that creates a folder needs a new one each time), and
/// `drawn` says whether a text holds its progress.
///
/// On a terminal the progress is drawn (and cleared: indicatif's erase-line escape); with
/// `--quiet` on a terminal, nothing is said; piped with `-v`, the tracing lines come without
/// progress and without any ANSI escape.
fn check(args: impl Fn(&str) -> Vec<String>, drawn: impl Fn(&str) -> bool) {
    let with = |variant: &str, extra: &str| {
        let mut args = args(variant);
        args.extend(Some(extra.to_owned()).filter(|e| !e.is_empty()));
        args
    };
    let args = with("terminal", "");
    let said = on_terminal(&args);
    assert!(said.ok, "{args:?}: {}", said.stderr);
    assert!(
        drawn(&said.stderr),
        "{args:?}: no progress drawn on a terminal: {:?}",
        said.stderr
    );
    assert!(
        said.stderr.contains("\u{1b}[2K"),
        "{args:?}: the progress line is never erased: {:?}",
        said.stderr
    );
    let args = with("quiet", "--quiet");
    let said = on_terminal(&args);
    assert!(said.ok, "{args:?}: {}", said.stderr);
    assert_eq!(said.stderr, "", "{args:?} on a terminal");
    let args = with("piped", "-v");
    let said = piped(&args);
    assert!(said.ok, "{args:?}: {}", said.stderr);
    assert!(said.stderr.contains("INFO"), "{args:?}: {}", said.stderr);
    assert!(
        !drawn(&said.stderr),
        "{args:?}: progress drawn on a pipe: {}",
        said.stderr
    );
    assert!(
        !said.stderr.contains('\u{1b}'),
        "{args:?}: ANSI escapes on a pipe: {:?}",
        said.stderr
    );
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

#[test]
fn replay_sweep_and_report_draw_progress_on_a_terminal_only() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let log = log.to_str().unwrap();
    let run = temp.path().join("run.json");
    let run = run.to_str().unwrap();
    let report = temp.path().join("report.html");
    let sweep = temp.path().join("sweep.csv");
    check(
        |_| owned(&["replay", log, "--out", run]),
        |text| has_bar(text, "replaying"),
    );
    check(
        |_| {
            owned(&[
                "sweep",
                log,
                "--param",
                "maker.ETH-B.mat=1.3..1.5:0.1",
                "--out",
                sweep.to_str().unwrap(),
                "--jobs",
                "1",
            ])
        },
        |text| has_spinner(text, "replaying ") || has_spinner(text, "sweeping "),
    );
    check(
        |_| owned(&["report", run, "--out", report.to_str().unwrap()]),
        |text| has_spinner(text, "drawing the report of 1 run"),
    );
}

#[test]
fn ingest_draws_its_bar_on_a_terminal_only() {
    let temp = tempfile::tempdir().unwrap();
    let prices = common::repo().join("fixtures/ingest/prices.csv");
    check(
        |variant| {
            let log = temp.path().join(variant);
            owned(&[
                "ingest",
                "--log",
                log.to_str().unwrap(),
                "--source",
                "price-csv",
                prices.to_str().unwrap(),
            ])
        },
        |text| has_bar(text, "ingesting"),
    );
}

#[test]
fn synth_draws_its_spinner_on_a_terminal_only() {
    let temp = tempfile::tempdir().unwrap();
    check(
        |variant| {
            let out = temp.path().join(variant);
            owned(&[
                "synth",
                "--protocol",
                "maker",
                "--accounts",
                "300",
                "--out",
                out.to_str().unwrap(),
            ])
        },
        |text| has_spinner(text, "writing a synthetic market of 300 accounts"),
    );
}

#[test]
fn stream_publish_replay_and_record_draw_progress_on_a_terminal_only() {
    let Some(brokers) =
        kafka::brokers("stream_publish_replay_and_record_draw_progress_on_a_terminal_only")
    else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    let log = log.to_str().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = |variant: &str| format!("test-progress-{variant}-{}-{nanos}", std::process::id());
    // Each publish goes to a topic of its own: a second publish to the same topic resumes
    // where the first ended and has nothing to publish.
    check(
        |variant| {
            owned(&[
                "stream",
                "publish",
                log,
                "--brokers",
                &brokers,
                "--topic",
                &topic(variant),
            ])
        },
        |text| has_bar(text, "publishing"),
    );
    let published = topic("terminal");
    check(
        |_| {
            owned(&[
                "stream",
                "replay",
                "--brokers",
                &brokers,
                "--topic",
                &published,
            ])
        },
        |text| has_spinner(text, &format!("replaying topic {published:?}")),
    );
    check(
        |variant| {
            let mirror = temp.path().join(format!("mirror-{variant}"));
            owned(&[
                "stream",
                "record",
                "--brokers",
                &brokers,
                "--topic",
                &published,
                "--log",
                mirror.to_str().unwrap(),
            ])
        },
        |text| has_spinner(text, &format!("recording topic {published:?}")),
    );
}
