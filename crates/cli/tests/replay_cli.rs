//! `cascade replay` and `cascade check` as a user runs them: byte-identical run files whatever
//! `RAYON_NUM_THREADS` says, exit 0 on an identical golden, 1 with a readable diff on a changed
//! one, `--update` rewriting it, `--from` resuming from a checkpoint with the same result.

// The fixture helper outside the `#[test]` functions reads committed, valid files.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cascade_events::Event;
use cascade_log::{LogWriter, WriterOptions};

fn cascade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A log of the hand-built Maker fixture `fixtures/maker/dog-bark.jsonl`.
fn fixture_log(dir: &Path) {
    let text = std::fs::read_to_string(repo().join("fixtures/maker/dog-bark.jsonl")).unwrap();
    let (mut writer, _) = LogWriter::open(dir, WriterOptions::default()).unwrap();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).unwrap();
        writer.append(&event).unwrap();
    }
    writer.commit().unwrap();
}

/// A temporary folder holding the fixture log in `log/`.
fn temp_fixture_log() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    fixture_log(&log);
    (temp, log)
}

#[test]
fn run_files_are_byte_identical_whatever_the_thread_count() {
    let (temp, log) = temp_fixture_log();
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
fn check_exits_0_on_equal_1_with_a_diff_and_update_rewrites() {
    let (temp, log) = temp_fixture_log();
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
        report.contains("liquidation changed: 24 recorded maker ETH-B #1")
            && report.contains("verdict \"not-liquidatable\" -> \"explained\""),
        "{report}"
    );
    assert!(
        report.contains("totals.verdicts.explained: 3 -> 2"),
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
    let (temp, log) = temp_fixture_log();
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

#[test]
fn a_feed_lag_of_a_feed_the_log_does_not_have_is_refused() {
    let (_temp, log) = temp_fixture_log();
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

#[test]
fn out_writes_only_the_file_it_names() {
    let (temp, log) = temp_fixture_log();
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
    let (_temp, log) = temp_fixture_log();
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
