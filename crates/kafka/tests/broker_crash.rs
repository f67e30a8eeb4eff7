//! A broker killed with SIGKILL in the middle of a publish, then restarted on its data directory:
//! the resumed publish leaves every sequence number on the topic exactly once, in order.
//!
//! The test starts its own broker (tests/kafka/kafka.sh on free ports, data in a temporary directory)
//! so killing it cannot disturb the shared broker other tests use. It runs when
//! `CASCADE_KAFKA_BROKERS` is set (the broker jars are then fetched) and `java` is on the PATH.

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod broker;
    pub mod log;
    pub mod sink;
}

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cascade_kafka::{ClientOptions, ConsumeOptions, PublishOptions, consume, publish_log};
use common::broker::{brokers, topic};
use common::log::{build_log, events, log_records};
use common::sink::Collect;

/// A broker of this test's own, stopped when dropped.
struct PrivateBroker {
    dir: PathBuf,
    port: u16,
    controller_port: u16,
}

impl PrivateBroker {
    fn script(&self, command: &str) -> std::process::Output {
        Command::new(repo_root().join("tests/kafka/kafka.sh"))
            .arg(command)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", self.controller_port.to_string())
            .env("KAFKA_DIR", &self.dir)
            .output()
            .unwrap()
    }

    fn run(&self, command: &str) {
        let output = self.script(command);
        assert!(
            output.status.success(),
            "tests/kafka/kafka.sh {command} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn java_available() -> bool {
    Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn broker_killed_mid_publish_then_resumed_leaves_every_seq_once_in_order() {
    if brokers("broker_killed_mid_publish_then_resumed").is_none() {
        return;
    }
    if !java_available() {
        eprintln!("skipping broker_killed_mid_publish_then_resumed: java is not on the PATH");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (port, controller_port) = (free_port(), free_port());
    let broker = PrivateBroker {
        dir: data.path().join("broker"),
        port,
        controller_port,
    };
    broker.run("start");

    let logs = tempfile::tempdir().unwrap();
    let total = 120_000;
    let log = build_log(logs.path(), &events(total));
    let mut client = ClientOptions::new(broker.address());
    client.connect_timeout = Duration::from_secs(10);
    // Give up on a dead broker quickly, so a publish attempt fails instead of waiting it out.
    client.push_setting("message.timeout.ms=8000").unwrap();
    client.push_setting("transaction.timeout.ms=10000").unwrap();
    let mut options = PublishOptions::new(topic("crash"));
    options.transaction_events = 1_000;

    let progress = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (client, options, log, progress) = (
            client.clone(),
            options.clone(),
            log.clone(),
            progress.clone(),
        );
        std::thread::spawn(move || publish_until_done(&client, &options, &log, &progress))
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    while progress.load(Ordering::SeqCst) < 15_000 {
        assert!(Instant::now() < deadline, "publish made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    broker.run("kill9");
    let at_kill = progress.load(Ordering::SeqCst);
    assert!(
        at_kill < total,
        "the broker died mid-publish (at seq {at_kill} of {total})"
    );
    std::thread::sleep(Duration::from_secs(1));
    broker.run("start");

    let attempts = publisher.join().unwrap();
    eprintln!("publish finished after {attempts:?}");

    let mut sink = Collect::default();
    let report = consume(&client, &ConsumeOptions::new(&options.topic), &mut sink).unwrap();
    assert_eq!(report.duplicates, 0, "no seq is on the topic twice");
    assert_eq!(report.applied, total);
    assert_eq!(
        sink.applied,
        log_records(&log),
        "every seq once, in order, same bytes"
    );
}

/// Publishes until the whole log is on the topic, re-running after each failure like a user
/// would; returns the errors seen on the way.
fn publish_until_done(
    client: &ClientOptions,
    options: &PublishOptions,
    log: &Path,
    progress: &AtomicU64,
) -> Vec<String> {
    let mut errors = Vec::new();
    for _ in 0..20 {
        match publish_log(client, options, log, &mut |report| {
            progress.store(report.next_seq, Ordering::SeqCst);
        }) {
            Ok(report) => {
                progress.store(report.next_seq, Ordering::SeqCst);
                return errors;
            }
            Err(error) => {
                errors.push(error.to_string());
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    panic!("publish never completed: {errors:#?}");
}

/// The repository root (for tests/kafka/kafka.sh).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
