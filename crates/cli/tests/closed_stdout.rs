//! `cascade ... | head`: a stdout closed by its reader ends the command quietly with exit 0,
//! whether the command prints with `println!` or returns the write error.

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs cascade with a stdout pipe whose read end is already closed, so the first write fails.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(env!("CARGO_BIN_EXE_cascade"));
    command
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    // The command holds our copy of the write end: drop it so nothing but the child has one.
    drop(command);
    child.wait_with_output().unwrap()
}

fn synth_log(dir: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["synth", "--protocol", "maker", "--accounts", "50", "--out"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_with_exit_0() {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    synth_log(&log);
    let run = temp.path().join("run.json");
    let run = run.to_str().unwrap();
    let log = log.to_str().unwrap();
    let replayed = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["replay", log, "--out", run])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(replayed.success());
    // `log verify` prints with println!, `log cat` returns the write error, `replay` ignores it,
    // `run cat` returns serde_json's error wrapping it.
    for args in [
        vec!["log", "verify", log],
        vec!["log", "cat", log],
        vec!["replay", log],
        vec!["run", "cat", run],
    ] {
        let output = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: nothing on stderr: {stderr}");
    }
}
