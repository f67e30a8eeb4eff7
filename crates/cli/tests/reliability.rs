//! Regression tests of issue 12's ingest defects, run as a user runs `cascade`: a partial ingest
//! (write error or kill) must never become permanent, a missing `CURRENT` must not wipe the log, a
//! deleted catalog must not remove duplicate protection, and a full disk must not brick the
//! catalog.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod prices;
    pub mod run;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::prices::price_file;
use common::run::{cascade, fixtures, path, text};

/// `cascade log verify --json`: (exit code, events).
fn verified_events(log: &Path) -> (Option<i32>, Option<u64>) {
    let output = cascade(&["log", "verify", path(log), "--json"]);
    let events = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|json| json["events"].as_u64());
    (output.status.code(), events)
}

fn ingest(log: &Path, kind: &str, source: &Path) -> Output {
    cascade(&["ingest", "--log", path(log), "--source", kind, path(source)])
}

/// A price CSV of `rows` prices a minute apart after the fixture's (so it appends).
fn big_prices(dir: &Path, rows: u64) -> PathBuf {
    price_file(dir, "big.csv", 1_609_470_000_000, 60_000, rows)
}

#[test]
fn partial_append_ingest_is_never_registered() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let first = ingest(&log, "price-csv", &fixtures("ingest/prices.csv"));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let rows = 200_000;
    let big = big_prices(dir.path(), rows);
    // A file size limit (EFBIG, or SIGXFSZ) stops the append part-way.
    let limited = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 2048; exec {} ingest --log {} --source price-csv {}",
            env!("CARGO_BIN_EXE_cascade"),
            path(&log),
            path(&big)
        ))
        .output()
        .unwrap();
    assert_ne!(limited.status.code(), Some(0), "{}", text(&limited));
    // Whatever verify says now, it must not be a clean log holding part of the ingest.
    let (code, events) = verified_events(&log);
    assert!(
        code != Some(0) || events == Some(3),
        "verify passed a partial ingest: {events:?} events"
    );
    let again = ingest(&log, "price-csv", &big);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(
        verified_events(&log),
        (Some(0), Some(3 + rows)),
        "{}",
        text(&again)
    );
    let third = ingest(&log, "price-csv", &big);
    assert!(
        text(&third).contains("already ingested"),
        "{}",
        text(&third)
    );
    assert_eq!(verified_events(&log), (Some(0), Some(3 + rows)));
}

/// A log in `dir` holding the Maker fixture's 15 events; returns it and the fixture.
fn maker_log(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("log");
    let maker = fixtures("ingest/maker-flipside");
    let output = ingest(&log, "maker-flipside", &maker);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    (log, maker)
}

#[test]
fn missing_current_is_refused_with_a_repair_command() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = maker_log(dir.path());
    std::fs::remove_file(log.join("CURRENT")).unwrap();
    let refused = ingest(&log, "price-csv", &fixtures("ingest/prices.csv"));
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(
        text(&refused).contains("cascade log repair"),
        "{}",
        text(&refused)
    );
    let repair = cascade(&["log", "repair", path(&log)]);
    assert_eq!(repair.status.code(), Some(0), "{}", text(&repair));
    assert!(text(&repair).contains("CURRENT"), "{}", text(&repair));
    assert_eq!(verified_events(&log), (Some(0), Some(15)));
}

#[test]
fn deleting_the_catalog_keeps_duplicate_protection() {
    let dir = tempfile::tempdir().unwrap();
    let (log, maker) = maker_log(dir.path());
    std::fs::remove_dir_all(log.join("catalog")).unwrap();
    let again = ingest(&log, "maker-flipside", &maker);
    assert_eq!(
        verified_events(&log),
        (Some(0), Some(15)),
        "{}",
        text(&again)
    );
    assert!(
        text(&again).contains("already ingested"),
        "{}",
        text(&again)
    );
}

/// A small tmpfs mounted for the life of the value (root only; `None` where mount is refused).
struct SmallFilesystem {
    dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(size: &str) -> Option<SmallFilesystem> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallFilesystem { dir })
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn disk_full_leaves_the_log_and_catalog_usable() {
    let Some(small) = SmallFilesystem::mount("3m") else {
        eprintln!(
            "NOTICE: cannot mount a tmpfs here (not root?); the disk-full case is covered by \
             crates/ingest/tests/faults.rs through the fault-injection storage"
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let log = small.dir.path().join("log");
    assert_eq!(
        ingest(&log, "price-csv", &fixtures("ingest/prices.csv"))
            .status
            .code(),
        Some(0)
    );
    let big = big_prices(work.path(), 200_000);
    let full = ingest(&log, "price-csv", &big);
    assert_ne!(full.status.code(), Some(0), "{}", text(&full));
    assert_eq!(verified_events(&log), (Some(0), Some(3)), "{}", text(&full));
    // The catalog still works: a small ingest registers its source.
    let chainlink = fixtures("ingest/eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv");
    let small_ingest = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "chainlink-rounds",
        "--skip-invalid",
        path(&chainlink),
    ]);
    assert_ne!(
        small_ingest.status.code(),
        Some(2),
        "{}",
        text(&small_ingest)
    );
    let stats = cascade(&["log", "stats", path(&log), "--json"]);
    assert_eq!(stats.status.code(), Some(0), "{}", text(&stats));
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(json["sources"].as_array().map(Vec::len), Some(2), "{json}");
}
