//! `cascade stream replay` takes the engine flags of `cascade replay` and writes the same run
//! file for the same flags, against a real broker (`CASCADE_KAFKA_BROKERS`; without it the tests
//! print a notice and pass vacuously, as the Kafka crate's tests do).

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod kafka;
}

use std::path::Path;
use std::process::Output;

use common::kafka::{brokers, cascade, ok};

/// A synthetic Maker market published on a new topic; returns the topic.
fn published_market(brokers: &str, log: &Path, name: &str) -> String {
    let log = log.to_str().unwrap();
    ok(cascade(&[
        "synth",
        "--protocol",
        "maker",
        "--accounts",
        "300",
        "--seed",
        "4",
        "--out",
        log,
    ]));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("test-cli-{name}-{}-{nanos}", std::process::id());
    ok(cascade(&[
        "stream",
        "publish",
        log,
        "--brokers",
        brokers,
        "--topic",
        &topic,
    ]));
    topic
}

fn run_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The run file of `cascade replay LOG` without flags, written as `default.json` in `out`.
fn default_run(log: &Path, out: &Path) -> serde_json::Value {
    let path = out.join("default.json");
    ok(cascade(&[
        "replay",
        log.to_str().unwrap(),
        "--out",
        path.to_str().unwrap(),
    ]));
    run_file(&path)
}

/// Runs `cascade replay LOG FLAGS` and `cascade stream replay ... STREAM_ARGS FLAGS`, writing
/// `local.json` and `streamed.json` in `out`, checks the two run files are the same bytes, and
/// returns both outputs.
fn replay_both(
    brokers: &str,
    topic: &str,
    log: &Path,
    out: &Path,
    flags: &[&str],
    stream_args: &[&str],
) -> (Output, Output) {
    let local_out = out.join("local.json");
    let streamed_out = out.join("streamed.json");
    let mut local = vec!["replay", log.to_str().unwrap()];
    local.extend(flags);
    local.extend(["--out", local_out.to_str().unwrap()]);
    let local = ok(cascade(&local));
    let mut streamed = vec!["stream", "replay", "--brokers", brokers, "--topic", topic];
    streamed.extend(stream_args);
    streamed.extend(flags);
    streamed.extend(["--out", streamed_out.to_str().unwrap()]);
    let streamed = ok(cascade(&streamed));
    assert_eq!(
        std::fs::read(&streamed_out).unwrap(),
        std::fs::read(&local_out).unwrap(),
        "same flags {flags:?}, same run file"
    );
    (local, streamed)
}

#[test]
fn stream_replay_with_engine_flags_writes_what_replay_writes() {
    let Some(brokers) = brokers("stream_replay_with_engine_flags_writes_what_replay_writes") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    let topic = published_market(&brokers, &log, "flags");
    let default = default_run(&log, temp.path());
    let flags = ["--osm-hop", "600", "--unsafe-threshold", "120"];
    replay_both(&brokers, &topic, &log, temp.path(), &flags, &[]);
    let flagged = run_file(&temp.path().join("local.json"));
    assert_eq!(flagged["config"]["unsafe_threshold_seconds"], 120);
    assert_ne!(
        flagged["config"], default["config"],
        "the flags changed the run"
    );
}

#[test]
fn stream_replay_stores_checkpoints_in_its_state_log_like_replay() {
    let Some(brokers) = brokers("stream_replay_stores_checkpoints_in_its_state_log_like_replay")
    else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    let topic = published_market(&brokers, &log, "checkpoints");

    // A --from time in the middle of the crash: the time of a liquidation of the full run.
    let full_out = temp.path().join("full.json");
    ok(cascade(&[
        "replay",
        log.to_str().unwrap(),
        "--out",
        full_out.to_str().unwrap(),
    ]));
    let full = run_file(&full_out);
    let liquidations = full["liquidations"].as_array().unwrap();
    assert!(liquidations.len() > 2, "the market crashes");
    let from = liquidations[liquidations.len() / 2]["time"]
        .as_str()
        .unwrap()
        .to_owned();

    let without_state = cascade(&[
        "stream",
        "replay",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--checkpoint-every",
        "500",
    ]);
    assert_eq!(without_state.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&without_state.stderr).contains("--state DIR"));

    let flags = ["--checkpoint-every", "500", "--from", from.as_str()];
    let state = temp.path().join("state");
    let state_args = ["--state", state.to_str().unwrap()];
    let (local, streamed) = replay_both(&brokers, &topic, &log, temp.path(), &flags, &state_args);
    for output in [&local, &streamed] {
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("stored"),
            "checkpoints went into the catalog of the log (the state log for the stream)"
        );
    }
    assert_ne!(
        run_file(&temp.path().join("streamed.json"))["window"],
        full["window"],
        "--from narrowed the window"
    );

    // Again on the same state: nothing new on the topic, the replay resumes from a checkpoint
    // before --from, and the run is still the same.
    let (_, again) = replay_both(&brokers, &topic, &log, temp.path(), &flags, &state_args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("resumed from the checkpoint"), "{stderr}");
}

/// `--params` reaches the streamed replay as it reaches `cascade replay`: the live sink (no
/// checkpoints) and the mirrored replay with checkpoints in the state log both write the run
/// file the local replay writes, and the history changed it (a `mat` of 1.2 for WBTC-A from the
/// day of the crash on leaves WBTC-A vaults safe that the synthetic market's keepers liquidated).
#[test]
fn stream_replay_applies_a_parameter_history_like_replay() {
    let Some(brokers) = brokers("stream_replay_applies_a_parameter_history_like_replay") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("log");
    let topic = published_market(&brokers, &log, "params");
    let history = temp.path().join("history.toml");
    std::fs::write(
        &history,
        "[[change]]\ntime = \"2024-03-02T00:00:00Z\"\nprotocol = \"maker\"\nmarket = \"WBTC-A\"\nparam = \"SPOTTER.ilks.mat\"\nvalue = \"1.2\"\nsource = \"hand-made\"\n",
    )
    .unwrap();
    let default = default_run(&log, temp.path());
    let flags = ["--params", history.to_str().unwrap()];
    replay_both(&brokers, &topic, &log, temp.path(), &flags, &[]);
    let with_history = run_file(&temp.path().join("local.json"));
    assert_eq!(
        with_history["config"]["params"][0]["param"],
        "SPOTTER.ilks.mat"
    );
    let not_liquidatable =
        |run: &serde_json::Value| run["totals"]["verdicts"]["not-liquidatable"].clone();
    assert_ne!(
        not_liquidatable(&with_history),
        not_liquidatable(&default),
        "the history changed the verdicts"
    );

    let state = temp.path().join("state");
    let checkpointed = [
        "--params",
        history.to_str().unwrap(),
        "--checkpoint-every",
        "500",
    ];
    replay_both(
        &brokers,
        &topic,
        &log,
        temp.path(),
        &checkpointed,
        &["--state", state.to_str().unwrap()],
    );
    assert_eq!(
        run_file(&temp.path().join("streamed.json"))["totals"],
        with_history["totals"]
    );
}
