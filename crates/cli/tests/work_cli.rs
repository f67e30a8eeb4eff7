//! `cascade sweep --brokers`, `cascade worker` and `cascade check-suite` against a real broker
//! (`CASCADE_KAFKA_BROKERS`; without it the tests print a notice and pass vacuously, as the other
//! Kafka tests do, and fail under CI=true): the distributed table is the local one byte for byte,
//! a SIGKILLed worker's point is redone and counted once, a worker without the log answers with an
//! error, and a restarted coordinator resumes from the results topic. Workers are separate
//! `cascade worker` processes of one consumer group.

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod kafka;
}

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::{brokers, cascade, ok};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A name no other test run has used.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-work-{name}-{}-{nanos}", std::process::id())
}

/// A synthetic Maker market of `accounts` vaults at `dir`.
fn market(dir: &Path, accounts: u32) {
    ok(cascade(&[
        "synth",
        "--protocol",
        "maker",
        "--accounts",
        &accounts.to_string(),
        "--seed",
        "4",
        "--out",
        dir.to_str().unwrap(),
    ]));
}

/// Group settings that notice a killed member in seconds instead of the default 45.
const FAST_GROUP: [&str; 4] = [
    "--kafka-config",
    "session.timeout.ms=6000",
    "--kafka-config",
    "heartbeat.interval.ms=1000",
];

/// A `cascade worker` process whose stderr lines are collected as they come.
struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn start(brokers: &str, topic: &str, group: &str, log_dir: &Path, name: &str) -> Worker {
        Worker::start_with(brokers, topic, group, log_dir, name, &[])
    }

    fn start_with(
        brokers: &str,
        topic: &str,
        group: &str,
        log_dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["worker", "--brokers", brokers, "--work-topic", topic])
            .args(["--group", group, "--name", name])
            .arg("--log-dir")
            .arg(log_dir)
            .args(FAST_GROUP)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Worker { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Ids of the tasks this worker finished (result acknowledged, offset committed).
    fn done(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|line| line.split(": done ").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_owned)
            .collect()
    }

    /// Ids of the tasks whose result this worker published, committed or not: a result
    /// published just as a rebalance moved its partition is redone elsewhere, but the
    /// coordinator may already have ended with it.
    fn published(&self) -> Vec<String> {
        let uncommitted = self.lines().into_iter().filter_map(|line| {
            let (head, _) = line.split_once(": result published, offset not committed")?;
            head.rsplit(": ").next().map(str::to_owned)
        });
        let mut published = self.done();
        published.extend(uncommitted);
        published
    }

    /// Waits until a line satisfies `found`; returns it.
    fn wait_for(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| found(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within 240 s: {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cascade sweep LOG AXES EXTRA --out OUT`; returns its output.
fn sweep(log: &Path, axes: &[&str], out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", log.to_str().unwrap()];
    for axis in axes {
        args.extend(["--param", axis]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    cascade(&args)
}

fn distributed<'a>(brokers: &'a str, topic: &'a str, log_topic: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec!["--brokers", brokers, "--work-topic", topic];
    if let Some(log_topic) = log_topic {
        args.extend(["--log-topic", log_topic]);
    }
    args
}

const AXES: [&str; 2] = [
    "maker.ETH-A.mat=1.3..1.75:0.05",
    "maker.ETH-A.chop=0.1..0.13:0.01",
];

#[test]
fn a_distributed_sweep_writes_the_local_table_byte_for_byte() {
    let Some(brokers) = brokers("a_distributed_sweep_writes_the_local_table_byte_for_byte") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("market");
    market(&log, 300);
    let topic = unique("identical");
    let log_topic = format!("{topic}.log");
    // One worker fetches the log from its topic, the other finds it in a shared folder.
    let _fetching = Worker::start(
        &brokers,
        &topic,
        &topic,
        &temp.path().join("w1"),
        "fetching",
    );
    let _sharing = Worker::start_with(
        &brokers,
        &topic,
        &topic,
        &temp.path().join("w2"),
        "sharing",
        &["--shared-logs", temp.path().to_str().unwrap()],
    );
    for extension in ["txt", "csv", "json", "md"] {
        let local_out = temp.path().join(format!("local.{extension}"));
        let remote_out = temp.path().join(format!("remote.{extension}"));
        let local = ok(sweep(&log, &AXES, &local_out, &["--jobs", "2"]));
        let remote = ok(sweep(
            &log,
            &AXES,
            &remote_out,
            &distributed(&brokers, &topic, Some(&log_topic)),
        ));
        assert_eq!(remote.stdout, local.stdout, "the printed table");
        assert_eq!(
            std::fs::read(&remote_out).unwrap(),
            std::fs::read(&local_out).unwrap(),
            "--out {extension}"
        );
        // The first run published the 40 points; every later one finds all their results.
        let expected = if extension == "txt" {
            "40 points, 0 already done before this run, 40 published by this run"
        } else {
            "40 points, 40 already done before this run, 0 published by this run"
        };
        assert!(stderr(&remote).contains(expected), "{}", stderr(&remote));
    }
    assert_eq!(
        std::fs::read(temp.path().join("remote.heatmap.svg")).unwrap(),
        std::fs::read(temp.path().join("local.heatmap.svg")).unwrap()
    );
}

#[test]
fn a_killed_workers_point_is_redone_and_counted_once() {
    let Some(brokers) = brokers("a_killed_workers_point_is_redone_and_counted_once") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("market");
    // Large enough that a point takes a good fraction of a second: the kill lands inside one.
    market(&log, 10_000);
    let axes = ["maker.ETH-A.mat=1.3..1.85:0.05"];
    let local_out = temp.path().join("local.csv");
    let local = ok(sweep(&log, &axes, &local_out, &["--jobs", "2"]));
    let topic = unique("kill");
    let log_topic = format!("{topic}.log");
    let remote_out = temp.path().join("remote.csv");
    let coordinator = {
        let mut args = vec!["sweep".to_owned(), log.to_str().unwrap().to_owned()];
        args.extend(["--param".to_owned(), axes[0].to_owned()]);
        args.extend(["--out".to_owned(), remote_out.to_str().unwrap().to_owned()]);
        args.extend(
            distributed(&brokers, &topic, Some(&log_topic))
                .into_iter()
                .map(str::to_owned),
        );
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The victim is alone in the group at first, so every partition is its own.
    let mut victim = Worker::start(&brokers, &topic, &topic, &temp.path().join("v"), "victim");
    // Killed as soon as it starts a point after its first (which also fetched the log and
    // replayed up to the window): in the middle of that point.
    victim.wait_for("a first point done", |line| line.contains("victim: done"));
    victim.wait_for("a next point started", |_| {
        victim
            .lines()
            .last()
            .is_some_and(|line| line.contains("victim: started"))
    });
    victim.kill();
    let killed = victim
        .lines()
        .last()
        .and_then(|line| line.rsplit(' ').next().map(str::to_owned))
        .unwrap();
    assert!(
        !victim.done().contains(&killed),
        "the victim finished {killed} before the kill landed: {:?}",
        victim.lines()
    );
    let second = Worker::start(&brokers, &topic, &topic, &temp.path().join("b"), "second");
    let third = Worker::start(&brokers, &topic, &topic, &temp.path().join("c"), "third");
    let remote = coordinator.wait_with_output().unwrap();
    let remote = ok(remote);
    assert_eq!(remote.stdout, local.stdout, "the printed table");
    assert_eq!(
        std::fs::read(&remote_out).unwrap(),
        std::fs::read(&local_out).unwrap()
    );
    // A worker prints a point's line after the coordinator has its result, so the coordinator
    // can end before the last lines are printed: wait for them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let published = loop {
        let mut published: Vec<String> = [&victim, &second, &third]
            .iter()
            .flat_map(|worker| worker.published())
            .collect();
        published.sort();
        published.dedup();
        if published.len() == 12 || Instant::now() > deadline {
            break published;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(published.len(), 12, "{published:?}");
    let redone: Vec<String> = second
        .published()
        .into_iter()
        .chain(third.published())
        .collect();
    assert!(
        redone.contains(&killed),
        "{killed} was not redone: {redone:?}"
    );
    // No point was committed twice: by a surviving member and by the victim before the kill, or
    // by two surviving members.
    let mut committed: Vec<String> = [&victim, &second, &third]
        .iter()
        .flat_map(|worker| worker.done())
        .collect();
    committed.sort();
    let before = committed.len();
    committed.dedup();
    assert_eq!(
        before,
        committed.len(),
        "a point committed twice: {committed:?}"
    );
}

#[test]
fn a_worker_without_the_log_answers_with_an_error() {
    let Some(brokers) = brokers("a_worker_without_the_log_answers_with_an_error") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("market");
    market(&log, 100);
    let topic = unique("missing");
    let _worker = Worker::start(&brokers, &topic, &topic, &temp.path().join("w"), "lonely");
    let out = temp.path().join("never.csv");
    // No --log-topic and no shared folder: the worker has no way to the log.
    let output = sweep(
        &log,
        &["maker.ETH-A.mat=1.3..1.4:0.05"],
        &out,
        &distributed(&brokers, &topic, None),
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("failed on worker lonely: cannot get log market (blake3 ")
            && text.contains("the coordinator named no log topic (--log-topic)")
            && text.contains("/0 failed"),
        "{text}"
    );
    assert!(!out.exists(), "nothing is written when a point failed");
    // Given a way to the log, the same command retries the failed points and succeeds.
    let log_topic = format!("{topic}.log");
    let retried = ok(sweep(
        &log,
        &["maker.ETH-A.mat=1.3..1.4:0.05"],
        &out,
        &distributed(&brokers, &topic, Some(&log_topic)),
    ));
    assert!(
        stderr(&retried).contains("0 already done before this run, 3 published by this run"),
        "{}",
        stderr(&retried)
    );
    assert!(out.exists());
}

#[test]
fn a_restarted_coordinator_resumes_from_the_results_topic() {
    let Some(brokers) = brokers("a_restarted_coordinator_resumes_from_the_results_topic") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("market");
    market(&log, 2_000);
    let local_out = temp.path().join("local.txt");
    let local = ok(sweep(&log, &AXES, &local_out, &["--jobs", "2"]));
    let topic = unique("restart");
    let log_topic = format!("{topic}.log");
    let remote_out = temp.path().join("remote.txt");
    let args: Vec<String> = ["sweep", log.to_str().unwrap()]
        .into_iter()
        .chain(AXES.iter().flat_map(|a| ["--param", a]))
        .chain(["--out", remote_out.to_str().unwrap()])
        .chain(distributed(&brokers, &topic, Some(&log_topic)))
        .map(str::to_owned)
        .collect();
    let mut first = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut early = Worker::start(&brokers, &topic, &topic, &temp.path().join("w"), "early");
    early.wait_for("five points", |_| early.done().len() >= 5);
    first.kill().unwrap();
    first.wait().unwrap();
    early.kill();
    let done_before = early.done().len();
    assert!(
        done_before < 40,
        "{done_before} points done before the restart"
    );
    let _late = Worker::start(&brokers, &topic, &topic, &temp.path().join("w"), "late");
    let second = ok(cascade(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let text = stderr(&second);
    let resumed: usize = text
        .split(" already done before this run")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        resumed >= done_before && text.contains("0 published by this run"),
        "{done_before} done by the first workers: {text}"
    );
    assert_eq!(second.stdout, local.stdout);
    assert_eq!(
        std::fs::read(&remote_out).unwrap(),
        std::fs::read(&local_out).unwrap()
    );
}

/// A suite of two cases on one log: one golden matches, the other was made with other flags.
fn suite(dir: &Path) -> PathBuf {
    let log = dir.join("market");
    market(&log, 200);
    let log = log.to_str().unwrap();
    let matching = dir.join("matching.json");
    let other = dir.join("other.json");
    ok(cascade(&[
        "replay",
        log,
        "--out",
        matching.to_str().unwrap(),
    ]));
    ok(cascade(&[
        "replay",
        log,
        "--osm-hop",
        "0",
        "--out",
        other.to_str().unwrap(),
    ]));
    let suite = dir.join("suite.toml");
    std::fs::write(
        &suite,
        "[[case]]\nname = \"matching\"\nlog = \"market\"\nexpect = \"matching.json\"\n\n\
         [[case]]\nname = \"drifted\"\nlog = \"market\"\nexpect = \"other.json\"\n",
    )
    .unwrap();
    suite
}

#[test]
fn check_suite_runs_here_and_through_the_work_topic_with_one_summary() {
    let temp = tempfile::tempdir().unwrap();
    let suite = suite(temp.path());
    let local = cascade(&["check-suite", suite.to_str().unwrap(), "--jobs", "2"]);
    let text = String::from_utf8_lossy(&local.stdout).into_owned();
    assert_eq!(local.status.code(), Some(1), "{text}{}", stderr(&local));
    assert!(
        text.starts_with("PASS  matching\nFAIL  drifted (other.json differs)\n")
            && text.contains("        liquidations: ")
            && text.ends_with("2 cases: 1 passed, 1 failed, 0 could not run\n"),
        "{text}"
    );
    let Some(brokers) = brokers("check_suite_runs_here_and_through_the_work_topic") else {
        return;
    };
    let topic = unique("suite");
    let _worker = Worker::start(&brokers, &topic, &topic, &temp.path().join("w"), "checker");
    let remote = cascade(&[
        "check-suite",
        suite.to_str().unwrap(),
        "--brokers",
        &brokers,
        "--work-topic",
        &topic,
        "--log-topic",
        &format!("{topic}.log"),
    ]);
    assert_eq!(remote.status.code(), Some(1), "{}", stderr(&remote));
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout),
        text,
        "the same summary"
    );
}
