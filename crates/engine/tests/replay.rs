//! Replays of a log directory: determinism, checkpoints and `--from` windows.

mod common;

use cascade_engine::{EngineConfig, Mode, ReplayOptions, replay_log};
use cascade_events::{Event, Timestamp};

/// Both hand-built fixtures in one log: the Cat era in January, the Dog era in June.
fn events() -> Vec<Event> {
    let mut events = common::fixture_events("cat-bite");
    events.extend(common::fixture_events("dog-bark"));
    events
}

fn options(from: Option<Timestamp>, checkpoint_every: Option<u64>, resume: bool) -> ReplayOptions {
    ReplayOptions {
        config: EngineConfig {
            from,
            ..EngineConfig::default()
        },
        checkpoint_every,
        resume,
        totals_only: false,
    }
}

#[test]
fn same_log_gives_byte_identical_runs_and_state_hash() {
    let log = common::build_log(&events());
    let first = replay_log(log.path(), &options(None, None, false), Mode::Historical).unwrap();
    let other = common::build_log(&events());
    let second = replay_log(other.path(), &options(None, None, false), Mode::Historical).unwrap();
    assert_eq!(first.run.to_json(), second.run.to_json());
    assert_eq!(first.run.state_hash, second.run.state_hash);
    // The hash moves with the state: a log one event shorter ends elsewhere.
    let shorter = common::build_log(&events()[..events().len() - 1]);
    let third = replay_log(
        shorter.path(),
        &options(None, None, false),
        Mode::Historical,
    )
    .unwrap();
    assert_ne!(first.run.state_hash, third.run.state_hash);
}

#[test]
fn resuming_from_a_checkpoint_equals_a_replay_from_the_start() {
    let log = common::build_log(&events());
    // 2021-06-01T02:00:00Z: inside the Dog-era fixture, after its setup.
    let from = Timestamp(1_622_512_800);
    let writing = replay_log(log.path(), &options(None, Some(5), false), Mode::Historical).unwrap();
    assert!(
        writing.checkpoints_written >= 8,
        "{}",
        writing.checkpoints_written
    );
    assert_eq!(writing.resumed_from, None);

    let resumed = replay_log(
        log.path(),
        &options(Some(from), Some(5), true),
        Mode::Historical,
    )
    .unwrap();
    let full = replay_log(
        log.path(),
        &options(Some(from), None, false),
        Mode::Historical,
    )
    .unwrap();
    let checkpoint = resumed
        .resumed_from
        .expect("a checkpoint before the window exists");
    assert!(checkpoint > 20, "resumed from seq {checkpoint}");
    assert!(resumed.applied < full.applied);
    assert_eq!(resumed.run.to_json(), full.run.to_json());
    // The window holds only what happened from `from` on, and the whole log's end state.
    assert_eq!(full.run.state_hash, writing.run.state_hash);
    assert!(
        full.run
            .liquidations
            .iter()
            .all(|l| l.time.to_rfc3339().as_str() >= "2021-06-01T02:00:00Z")
    );
    assert_eq!(full.run.liquidations.len(), 4);
    assert_eq!(full.run.totals.liquidations, 4);
}

#[test]
fn a_corrupt_checkpoint_is_an_error_not_a_wrong_run() {
    let log = common::build_log(&events());
    let mut engine = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
    let mut bytes = engine.checkpoint().expect("checkpoints");
    bytes.truncate(bytes.len() - 1);
    let mut fresh = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
    assert!(fresh.restore(&bytes, 0).is_err());
    let mut fresh = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
    let error = fresh
        .restore(&engine.checkpoint().expect("checkpoints"), 7)
        .unwrap_err()
        .to_string();
    assert!(error.contains("stored under seq 7"), "{error}");
    let mut wrong = b"NOTACKPT".to_vec();
    wrong.extend_from_slice(&engine.checkpoint().expect("checkpoints")[8..]);
    let mut fresh = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
    let error = fresh.restore(&wrong, 0).unwrap_err().to_string();
    assert!(error.contains("bad magic"), "{error}");
    drop(log);
}

/// A checkpoint may fall anywhere, also between a recorded liquidation and the end of its second,
/// whose check is still due: resuming at every position ends in the state of an uninterrupted
/// replay (the unsafe tracker included) with the same timeline from there on.
#[test]
fn a_checkpoint_at_any_event_resumes_to_the_same_state() {
    resumes_at_every_event(events(), 4);
}

/// The same with recorded oracle values in the state (the Maker state's last section).
#[test]
fn a_checkpoint_with_recorded_oracle_values_resumes_to_the_same_state() {
    resumes_at_every_event(common::fixture_events("osm-recorded"), 2);
}

fn resumes_at_every_event(events: Vec<Event>, liquidations: usize) {
    // In log order, as a log would number them.
    let events: Vec<Event> = events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| Event {
            seq: seq as u64,
            ..event
        })
        .collect();
    let finish = |engine: cascade_engine::Engine| {
        engine
            .finish(cascade_engine::run::LogInfo::default())
            .expect("the run finishes")
    };
    let mut whole = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
    for event in &events {
        whole.apply(event).expect("event applies");
    }
    let expected = finish(whole);
    let mut after_liquidation = 0;
    for split in 1..events.len() {
        let mut first = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
        for event in &events[..split] {
            first.apply(event).expect("event applies");
        }
        let mut resumed = cascade_engine::Engine::new(EngineConfig::default(), Mode::Historical);
        resumed
            .restore(&first.checkpoint().expect("checkpoints"), split as u64)
            .expect("checkpoint restores");
        for event in &events[split..] {
            resumed.apply(event).expect("event applies");
        }
        let run = finish(resumed);
        assert_eq!(
            run.state_hash, expected.state_hash,
            "resumed before seq {split}"
        );
        // Seconds after the split have the same points. In the split's own second the resumed
        // run lacks the points taken before it, but its last point, the state as the second
        // ends, is the uninterrupted run's; a liquidation just before the split leaves the check
        // that takes it to the resumed engine.
        let split_time = events[split - 1].time;
        let later = |points: &[cascade_engine::run::TimelinePoint]| {
            points
                .iter()
                .filter(|point| point.time > split_time)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            later(&run.timeline),
            later(&expected.timeline),
            "resumed before seq {split}"
        );
        let last_at_split = |points: &[cascade_engine::run::TimelinePoint]| {
            points
                .iter()
                .rfind(|point| point.time == split_time)
                .cloned()
        };
        let liquidation_before = events[split - 1].kind() == cascade_events::EventKind::Liquidation;
        match last_at_split(&run.timeline) {
            Some(point) => assert_eq!(Some(point), last_at_split(&expected.timeline)),
            None => assert!(
                !liquidation_before,
                "no check after the liquidation before seq {split}"
            ),
        }
        after_liquidation += usize::from(liquidation_before);
    }
    assert!(
        after_liquidation >= liquidations,
        "{after_liquidation} splits after a liquidation"
    );
}
