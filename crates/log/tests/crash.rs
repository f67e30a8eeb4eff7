//! Crash tests with real processes: a child writes, the parent kills it with SIGKILL (or the child
//! aborts itself at a chosen step), and the reopened log must hold every committed record, only
//! records that were appended, and never a mix of two rewrite generations.
//!
//! The child is this same test binary, re-executed with an environment variable naming its role.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use cascade_log::{LogReader, LogWriter, RewriteStep, WriterOptions, rewrite_observed, verify};
use common::{event, event_at};

const ROLE: &str = "CASCADE_LOG_CRASH_ROLE";
const DIR: &str = "CASCADE_LOG_CRASH_DIR";
const ARG: &str = "CASCADE_LOG_CRASH_ARG";

fn child_options() -> WriterOptions {
    // Small segments and buffers: kills land in rolls, mid-batch writes and fsyncs.
    WriterOptions {
        segment_bytes: 16 << 10,
        buffer_bytes: 2 << 10,
    }
}

/// Re-executes this test binary running only `entry`, in the given role.
fn child(entry: &str, role: &str, dir: &Path, arg: u64) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .env(ARG, arg.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

fn role() -> Option<(String, std::path::PathBuf, u64)> {
    let role = std::env::var(ROLE).ok()?;
    let dir = std::env::var_os(DIR)?.into();
    let arg = std::env::var(ARG).ok()?.parse().ok()?;
    Some((role, dir, arg))
}

/// Child entry point: appends batches forever, printing `committed <next seq>` after each commit
/// returns. Batch sizes vary with the seed so kills land at different points. Does nothing when
/// run as an ordinary test.
#[test]
fn crash_child_appender() {
    let Some((role, dir, seed)) = role() else {
        return;
    };
    assert_eq!(role, "append");
    let (mut writer, _) = LogWriter::open(&dir, child_options()).unwrap();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    loop {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let batch = 1 + (state >> 33) % 400;
        for _ in 0..batch {
            let seq = writer.next_seq();
            writer.append(&event(seq)).unwrap();
        }
        writer.commit().unwrap();
        println!("committed {}", writer.next_seq());
    }
}

#[test]
fn sigkill_mid_write_loses_nothing_committed() {
    if role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut committed = 0u64;
    let (mut torn_rounds, mut uncommitted_kept) = (0, 0);
    for round in 0..30u64 {
        // Its stderr says why, should it stop before the kill.
        let mut process = child("crash_child_appender", "append", dir.path(), round)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(process.stdout.take().unwrap());
        // Kill after a varying number of commits, while the child is already in its next batch.
        let wait_for = 1 + round % 7;
        let mut seen = 0;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(next) = line.strip_prefix("committed ") {
                committed = next.parse().unwrap();
                seen += 1;
                if seen == wait_for {
                    break;
                }
            }
        }
        if seen != wait_for {
            let mut stderr = String::new();
            process
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("child stopped early in round {round} after {seen} commits: {stderr}");
        }
        process.kill().unwrap();
        process.wait().unwrap();

        let reader = LogReader::open(dir.path()).unwrap();
        let visible = reader.next_seq();
        assert!(
            visible >= committed,
            "round {round}: {visible} < committed {committed}"
        );
        // Every record present, committed or not, is the one appended at that seq.
        for result in reader.events(0) {
            let found = result.unwrap();
            assert_eq!(found, event_at(found.seq), "round {round}");
        }
        let (_writer, report) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
        assert!(report.next_seq >= committed, "round {round}: {report:?}");
        torn_rounds += u32::from(report.torn_tail.is_some());
        uncommitted_kept += report.next_seq - committed;
        assert!(verify(dir.path()).unwrap().torn_tail.is_none());
        committed = report.next_seq;
    }
    assert!(committed > 30, "the child committed something every round");
    eprintln!(
        "30 kills: {torn_rounds} left a torn tail, {uncommitted_kept} uncommitted records survived"
    );
}

/// Child entry point for rewrites: replaces the log's content with `new_content()`, aborting the
/// process at the point the argument names. Does nothing as an ordinary test.
#[test]
fn crash_child_rewriter() {
    let Some((role, dir, point)) = role() else {
        return;
    };
    assert_eq!(role, "rewrite");
    let events = new_content().inspect(move |event| {
        if point < 1000 && event.seq == point {
            std::process::abort();
        }
    });
    let step = match point {
        1000 => Some(RewriteStep::GenerationWritten),
        1001 => Some(RewriteStep::CurrentTempWritten),
        1002 => Some(RewriteStep::Switched),
        1003 => Some(RewriteStep::OldGenerationRemoved),
        _ => None,
    };
    rewrite_observed(&dir, events, child_options(), Vec::new(), |reached| {
        if Some(reached) == step {
            std::process::abort();
        }
    })
    .unwrap();
}

const OLD_EVENTS: u64 = 500;
const NEW_EVENTS: u64 = 700;

/// The rewritten content: different events (and more of them) than the old one, numbered so the
/// abort points can find them.
fn new_content() -> impl Iterator<Item = cascade_events::Event> {
    (0..NEW_EVENTS).map(|i| cascade_events::Event {
        seq: i,
        ..event(i + 10_000)
    })
}

#[test]
fn a_crashed_rewrite_leaves_old_or_new_content_never_a_mix() {
    if role().is_some() {
        return;
    }
    let old: Vec<Vec<u8>> = (0..OLD_EVENTS)
        .map(|i| cascade_events::encode(&event(i)))
        .collect();
    let new: Vec<Vec<u8>> = new_content().map(|e| cascade_events::encode(&e)).collect();
    // Abort while writing the new generation (first event, mid-way, last), then after each step.
    for (point, expect_new) in [
        (0, false),
        (350, false),
        (NEW_EVENTS - 1, false),
        (1000, false),
        (1001, false),
        (1002, true),
        (1003, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = LogWriter::open(dir.path(), child_options()).unwrap();
        for i in 0..OLD_EVENTS {
            writer.append(&event(i)).unwrap();
        }
        writer.commit().unwrap();
        drop(writer);

        let status = child("crash_child_rewriter", "rewrite", dir.path(), point)
            .status()
            .unwrap();
        assert!(
            !status.success(),
            "point {point}: the child must have aborted"
        );

        let expected = if expect_new { &new } else { &old };
        let read = |dir: &Path| -> Vec<Vec<u8>> {
            LogReader::open(dir)
                .unwrap()
                .records(0)
                .map(|r| r.unwrap().1)
                .collect()
        };
        assert!(
            read(dir.path()) == *expected,
            "point {point}: reader before recovery"
        );
        let (_writer, report) = LogWriter::open(dir.path(), WriterOptions::default()).unwrap();
        assert_eq!(report.next_seq, expected.len() as u64, "point {point}");
        if point < 1003 {
            assert!(
                !report.removed.is_empty(),
                "point {point}: leftovers removed"
            );
        }
        assert!(
            read(dir.path()) == *expected,
            "point {point}: after recovery"
        );
        let generations = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("gen-")
            })
            .count();
        assert_eq!(generations, 1, "point {point}: one generation left");
    }
}
