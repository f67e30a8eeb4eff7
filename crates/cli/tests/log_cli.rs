//! `cascade log verify|stats|cat` as a user runs them: exit codes, what they print.

// The helpers below are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use cascade_events::{
    Amount, Event, Fixed, Id, Payload, PositionChange, PriceUpdate, Protocol, Timestamp, U256,
};
use cascade_log::{LogReader, LogWriter, WriterOptions};

fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn event(i: u64) -> Event {
    let payload = if i.is_multiple_of(2) {
        Payload::Price(Box::new(PriceUpdate {
            asset: Id::name("WETH"),
            quote: Id::name("USD"),
            price: Fixed::new(U256::from(2_000u64 + i), 0),
            feed: Id::name("chainlink"),
            round: None,
        }))
    } else {
        Payload::Borrow(Box::new(PositionChange {
            protocol: Protocol::Maker,
            market: Id::name("ETH-A"),
            account: Id::Number(i),
            asset: Id::name("DAI"),
            amount: Amount::from_units(u128::from(i)),
            shares: None,
        }))
    };
    Event {
        seq: 0,
        chain_id: 1,
        block: Some(100 + i),
        time: Timestamp(1_652_313_600 + i as i64 * 60),
        tx_index: None,
        log_index: None,
        tx_hash: None,
        source: 0,
        payload,
    }
}

/// A log of `count` events in segments of about 1 KiB.
fn write_log(dir: &Path, count: u64) {
    let options = WriterOptions {
        segment_bytes: 1024,
        buffer_bytes: 4096,
    };
    let (mut writer, _) = LogWriter::open(dir, options).unwrap();
    for i in 0..count {
        writer.append(&event(i)).unwrap();
    }
    writer.commit().unwrap();
}

#[test]
fn verify_passes_a_clean_log_and_names_the_offset_of_a_flipped_bit() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let log = dir.path().to_str().unwrap();
    let clean = cascade(&["log", "verify", log]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));
    assert!(
        text(&clean.stdout).contains("40 events"),
        "{}",
        text(&clean.stdout)
    );

    let segment = LogReader::open(dir.path()).unwrap().segment_paths()[1].clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    // First record of the segment starts right after the 32-byte header; damage its payload.
    bytes[32 + 12 + 3] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let damaged = cascade(&["log", "verify", log]);
    assert_eq!(damaged.status.code(), Some(1));
    let report = text(&damaged.stdout);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(report.contains(name), "{report}");
    assert!(report.contains("byte offset 32"), "{report}");

    let cat = cascade(&["log", "cat", log]);
    assert_eq!(cat.status.code(), Some(1), "cat stops with a finding");
    assert!(text(&cat.stderr).contains("byte offset 32"));
}

#[test]
fn verify_of_a_missing_directory_could_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let output = cascade(&["log", "verify", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("nothing-here does not exist"),
        "{}",
        text(&output.stderr)
    );
    // A folder that exists but holds no log is not a log.
    let empty = cascade(&["log", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(
        text(&empty.stderr).contains("not a cascade log"),
        "{}",
        text(&empty.stderr)
    );
}

#[test]
fn stats_json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 11);
    let output = cascade(&["log", "stats", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["events"], 11);
    assert_eq!(json["by_kind"]["price"], 6);
    assert_eq!(json["by_kind"]["borrow"], 5);
    assert_eq!(json["first_seq"], 0);
    assert_eq!(json["last_seq"], 10);
    assert_eq!(json["first_time"], "2022-05-12T00:00:00Z");
    assert_eq!(json["last_time"], "2022-05-12T00:10:00Z");
    assert_eq!(json["protocols"]["maker"], 5);
    assert_eq!(json["assets"], serde_json::json!(["DAI", "WETH"]));
    assert_eq!(json["sources"], serde_json::json!([]));
    assert_eq!(json["identity"]["events"], 11);

    let human = cascade(&["log", "stats", dir.path().to_str().unwrap()]);
    assert!(
        text(&human.stdout).contains("price              6"),
        "{}",
        text(&human.stdout)
    );
}

#[test]
fn stats_by_hour_and_day_count_events_by_kind_per_period() {
    let dir = tempfile::tempdir().unwrap();
    // 150 events a minute apart from 2022-05-12 00:00 UTC, prices and borrows alternating:
    // hours 00 and 01 hold 30 of each, hour 02 holds 15 of each.
    write_log(dir.path(), 150);
    let log = dir.path().to_str().unwrap();
    let periods = |by: &str| {
        let output = cascade(&["log", "stats", log, "--by", by, "--json"]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["by_period"]["period"], by);
        assert_eq!(value["events"], 150);
        value["by_period"]["periods"].clone()
    };
    assert_eq!(
        periods("hour"),
        serde_json::json!([
            { "start": "2022-05-12T00:00:00Z", "events": 60, "by_kind": { "price": 30, "borrow": 30 } },
            { "start": "2022-05-12T01:00:00Z", "events": 60, "by_kind": { "price": 30, "borrow": 30 } },
            { "start": "2022-05-12T02:00:00Z", "events": 30, "by_kind": { "price": 15, "borrow": 15 } },
        ])
    );
    assert_eq!(
        periods("day"),
        serde_json::json!([
            { "start": "2022-05-12T00:00:00Z", "events": 150, "by_kind": { "price": 75, "borrow": 75 } },
        ])
    );
    let human = cascade(&["log", "stats", log, "--by", "hour"]);
    let out = text(&human.stdout);
    assert!(
        out.contains("by hour\n  2022-05-12T00:00:00Z        60 events: price 30, borrow 30\n"),
        "{out}"
    );
    let wrong = cascade(&["log", "stats", log, "--by", "week"]);
    assert_eq!(wrong.status.code(), Some(2));
}

#[test]
fn cat_prints_from_a_seq_with_a_limit_as_text_or_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    let log = dir.path().to_str().unwrap();
    let output = cascade(&["log", "cat", log, "--from", "17", "--limit", "3", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines: Vec<Event> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let expected: Vec<Event> = (17..20).map(|i| Event { seq: i, ..event(i) }).collect();
    assert_eq!(lines, expected);

    let output = cascade(&["log", "cat", log, "--from", "28"]);
    let out = text(&output.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].trim_start().starts_with("28 2022-05-12T00:28:00Z"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("price") && lines[0].contains("WETH/USD 2028"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("borrow") && lines[1].contains("maker ETH-A #29 29 DAI"),
        "{}",
        lines[1]
    );
}

#[test]
fn stats_work_while_another_process_holds_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let held = cascade_log::Catalog::open(dir.path()).unwrap();
    let output = cascade(&["log", "stats", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("in use by another process"),
        "{}",
        text(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["events"], 5);
    assert_eq!(
        json["sources"],
        serde_json::Value::Null,
        "sources unknown without the catalog"
    );
    drop(held);
}

#[test]
fn stats_and_cat_report_a_torn_tail_on_stderr_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let log = dir.path().to_str().unwrap();
    let last = LogReader::open(dir.path())
        .unwrap()
        .segment_paths()
        .pop()
        .unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    // A record header promising more bytes than follow: what a crash mid-append leaves.
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&last, bytes).unwrap();
    for args in [
        ["log", "stats", log, ""],
        ["log", "stats", log, "--json"],
        ["log", "cat", log, ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let output = cascade(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("TORN: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains("torn tail at byte offset"),
            "{args:?}: {stderr}"
        );
    }
    // What is readable is still printed.
    assert_eq!(
        text(&cascade(&["log", "cat", log]).stdout).lines().count(),
        40
    );
}

#[test]
fn stats_report_damage_done_after_the_catalog_stored_them() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let log = dir.path().to_str().unwrap();
    assert_eq!(cascade(&["log", "stats", log]).status.code(), Some(0));
    let segment = LogReader::open(dir.path()).unwrap().segment_paths()[1].clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[32 + 12 + 3] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let output = cascade(&["log", "stats", log]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CORRUPT: "), "{stderr}");
    assert!(stderr.contains("byte offset 32"), "{stderr}");
}
