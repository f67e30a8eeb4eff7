//! Real SIGKILL crash tests of the commands that write a log: an append ingest, a merge ingest
//! (atomic rewrite) and `cascade stream record`. Each kill point runs the command, kills it with
//! SIGKILL (half of the points at a moment spread over the uninterrupted run's duration, half when
//! the segments have grown past a threshold spread over the bytes the command writes), then runs
//! `cascade log verify`, re-runs the command to completion and compares the log, byte for byte by
//! its identity hash, with the uninterrupted result. Verify may report an interrupted ingest or a
//! torn tail (exit 1) before the re-run, never a clean log holding part of an ingest.
//!
//! 210 kill points in all (100 append, 60 merge, 50 record), each suite its own test; the counts
//! are printed. `stream record` needs a Kafka broker (`CASCADE_KAFKA_BROKERS`, see
//! tests/kafka/kafka.sh) and is skipped with a notice without one.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod prices;
    pub mod run;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::prices::price_file;
use common::run::{cascade as run, fixtures, path, text};

/// The `cascade` command with `args`, not yet run.
fn command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cascade"));
    command.args(args);
    command
}

/// What `cascade log verify --json` says about a log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verified {
    code: Option<i32>,
    events: Option<u64>,
    hash: Option<String>,
    problem: String,
}

fn verify(log: &Path) -> Verified {
    let output = run(&["log", "verify", path(log), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    Verified {
        code: output.status.code(),
        events: json["events"].as_u64(),
        hash: json["identity"]["hash"].as_str().map(str::to_owned),
        problem: format!("{} {}", json["corruption"], json["torn_tail"]),
    }
}

/// Bytes of every segment file under `dir` (both generations during a rewrite).
fn segment_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                segment_bytes(&path)
            } else if path.extension().is_some_and(|e| e == "seg") {
                entry.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// When to kill.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    After(Duration),
    SegmentBytes(u64),
}

/// Runs `args` and SIGKILLs it at `at`; returns whether it was still running when killed.
fn run_and_kill(args: &[String], log: &Path, at: KillAt) -> bool {
    let mut child = command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let due = match at {
            KillAt::After(delay) => started.elapsed() >= delay,
            KillAt::SegmentBytes(bytes) => segment_bytes(log) >= bytes,
        };
        if due || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// One suite: `kills` kill points of the command `args` (naming the log `{log}`) run over a copy
/// of `base` (`None`: no log yet); prints the counts.
fn kill_suite(
    name: &str,
    work: &Path,
    base: Option<&Path>,
    args: &[&str],
    kills: u32,
    expect_ok: &dyn Fn(&Output) -> bool,
) {
    let fresh = |tag: &str| {
        let log = work.join(format!("{name}-{tag}"));
        if let Some(base) = base {
            copy_dir(base, &log);
        }
        log
    };
    let args_for = |log: &Path| -> Vec<String> {
        args.iter().map(|a| a.replace("{log}", path(log))).collect()
    };
    let before = base.map(verify);
    let before_bytes = base.map_or(0, segment_bytes);

    let reference = fresh("reference");
    let started = Instant::now();
    let output = command(&args_for(&reference)).output().unwrap();
    let duration = started.elapsed();
    assert!(expect_ok(&output), "{name}: {}", text(&output));
    let expected = verify(&reference);
    assert_eq!(expected.code, Some(0), "{name}: {expected:?}");
    let peak = before_bytes + segment_bytes(&reference);

    let mut killed_running = 0;
    for k in 0..kills {
        let log = fresh(&k.to_string());
        let fraction = (f64::from(k / 2) + 0.5) / f64::from(kills.div_ceil(2));
        let at = if k % 2 == 0 {
            KillAt::After(duration.mul_f64(fraction))
        } else {
            KillAt::SegmentBytes(before_bytes + ((peak - before_bytes) as f64 * fraction) as u64)
        };
        if run_and_kill(&args_for(&log), &log, at) {
            killed_running += 1;
        }
        let after_kill = verify(&log);
        if after_kill.code == Some(0) {
            let unchanged = before.as_ref().is_some_and(|b| b.hash == after_kill.hash)
                || (base.is_none() && after_kill.events == Some(0));
            let complete = after_kill.hash == expected.hash;
            // `stream record` commits as it goes: any prefix of the topic is a consistent log.
            let prefix = name == "stream-record";
            assert!(
                unchanged || complete || prefix,
                "{name} kill {k} ({at:?}): verify passed a log that is neither before nor after: {after_kill:?}"
            );
        } else if log.join("CURRENT").exists() {
            assert!(
                after_kill.problem.contains("interrupted")
                    || after_kill.problem.contains("torn tail"),
                "{name} kill {k} ({at:?}): {after_kill:?}"
            );
        }
        let again = command(
            &args_for(&log)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .output()
        .unwrap();
        assert!(
            expect_ok(&again),
            "{name} kill {k} ({at:?}) re-run: {}",
            text(&again)
        );
        let rerun = verify(&log);
        assert_eq!(
            (rerun.code, rerun.events, &rerun.hash),
            (Some(0), expected.events, &expected.hash),
            "{name} kill {k} ({at:?}): the re-run differs from the uninterrupted result"
        );
        std::fs::remove_dir_all(&log).unwrap();
    }
    println!(
        "{name}: {kills} SIGKILL points ({killed_running} while running, uninterrupted run {:.0} ms), each verified, re-run and identical to the uninterrupted result",
        duration.as_secs_f64() * 1000.0
    );
}

fn exit_0(output: &Output) -> bool {
    output.status.code() == Some(0)
}

/// `cascade ingest` of a price CSV into the log `{log}`.
fn ingest_prices(csv: &Path) -> [&str; 6] {
    [
        "ingest",
        "--log",
        "{log}",
        "--source",
        "price-csv",
        path(csv),
    ]
}

/// Runs `cascade ingest` of a price CSV into `log`.
fn ingest_into(log: &Path, csv: &Path) -> Output {
    run(&[
        "ingest",
        "--log",
        path(log),
        "--source",
        "price-csv",
        path(csv),
    ])
}

/// A log of the fixture's three prices, and 8,000 later hourly prices (they append to it).
fn append_case(work: &Path) -> (PathBuf, PathBuf) {
    let base = work.join("base");
    let out = ingest_into(&base, &fixtures("ingest/prices.csv"));
    assert!(exit_0(&out), "{}", text(&out));
    let later = price_file(work, "later.csv", 1_609_480_000_000, 3_600_000, 8_000);
    (base, later)
}

#[test]
fn sigkill_during_an_append_ingest_never_leaves_a_partial_log() {
    let work = tempfile::tempdir().unwrap();
    let (base, later) = append_case(work.path());
    kill_suite(
        "append-ingest",
        work.path(),
        Some(&base),
        &ingest_prices(&later),
        100,
        &exit_0,
    );
}

#[test]
fn sigkill_during_a_merge_ingest_never_leaves_a_partial_log() {
    let work = tempfile::tempdir().unwrap();
    let (_, later) = append_case(work.path());
    // A log of the 8,000 prices, then prices that interleave with them: rewritten atomically.
    let base = work.path().join("base-merge");
    let out = ingest_into(&base, &later);
    assert!(exit_0(&out), "{}", text(&out));
    let earlier = price_file(
        work.path(),
        "earlier.csv",
        1_609_480_000_000 + 1_800_000,
        3_600_000,
        50,
    );
    kill_suite(
        "merge-ingest",
        work.path(),
        Some(&base),
        &ingest_prices(&earlier),
        60,
        &exit_0,
    );
}

#[test]
fn sigkill_during_stream_record_never_leaves_a_wrong_log() {
    match std::env::var("CASCADE_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.trim().is_empty() => {
            let work = tempfile::tempdir().unwrap();
            record_suite(work.path(), &brokers, 50);
        }
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true but CASCADE_KAFKA_BROKERS is not set; run tests/run.sh")
        }
        _ => eprintln!(
            "NOTICE: stream-record kill points skipped: CASCADE_KAFKA_BROKERS is not set (tests/kafka/kafka.sh)"
        ),
    }
}

/// `stream record` of a published synthetic market into a fresh log, killed and re-run.
fn record_suite(work: &Path, brokers: &str, kills: u32) {
    let source = work.join("published");
    let out = run(&[
        "synth",
        "--protocol",
        "maker",
        "--accounts",
        "2000",
        "--seed",
        "12",
        "--out",
        path(&source),
    ]);
    assert!(exit_0(&out), "{}", text(&out));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("test-kill-record-{}-{nanos}", std::process::id());
    let out = run(&[
        "stream",
        "publish",
        path(&source),
        "--brokers",
        brokers,
        "--topic",
        &topic,
    ]);
    assert!(exit_0(&out), "{}", text(&out));
    let published = verify(&source);
    kill_suite(
        "stream-record",
        work,
        None,
        &[
            "stream",
            "record",
            "--brokers",
            brokers,
            "--topic",
            &topic,
            "--log",
            "{log}",
        ],
        kills,
        &exit_0,
    );
    let mirror = work.join("stream-record-reference");
    assert_eq!(
        verify(&mirror).hash,
        published.hash,
        "the mirror is the published log"
    );
}
