//! Replaying from a topic gives the run a local replay of the same log gives, byte for byte,
//! also when the consumer is killed and restarted with its group (`CASCADE_KAFKA_BROKERS`).

#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod broker;
    pub mod client;
}

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use cascade_engine::run::LogInfo;
use cascade_engine::{Engine, EngineConfig, Mode, ReplayOptions, Run, replay_log};
use cascade_events::{Event, Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use cascade_ingest::{IngestOptions, NoProgress, Source, ingest};
use cascade_kafka::{
    ConsumeOptions, EngineSink, Packing, PublishOptions, Sink, SinkError, consume, publish_log,
};
use cascade_log::LogReader;
use common::broker::{brokers, topic};
use common::client::client;

/// What `cascade replay` computes for a log: every event through a fresh historical engine.
fn local_replay(dir: &Path) -> Run {
    let reader = LogReader::open(dir).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), Mode::Historical);
    for event in reader.events(0) {
        engine.apply(&event.unwrap()).unwrap();
    }
    let identity = reader.identity().unwrap();
    engine
        .finish(LogInfo {
            first_seq: identity.last_seq.map(|_| identity.first_seq),
            last_seq: identity.last_seq,
            content_hash: identity.hash_hex(),
        })
        .unwrap()
}

fn maker_market(dir: &Path, vaults: u32) {
    synth::write_log(
        dir,
        &SynthConfig::new(Protocol::Maker, vaults, 11),
        Timestamp(0),
    )
    .unwrap();
}

#[test]
fn replay_from_a_topic_writes_the_local_run_file() {
    let Some(brokers) = brokers("replay_from_a_topic_writes_the_local_run_file") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    maker_market(dir.path(), 2_000);
    let local = local_replay(dir.path());
    assert!(
        local.totals.liquidations > 0,
        "the market crashes: there is something to compare"
    );

    for packing in [Packing::SINGLE, Packing::events(256)] {
        let mut options = PublishOptions::new(topic("engine"));
        options.packing = packing;
        publish_log(&client(&brokers), &options, dir.path(), &mut |_| {}).unwrap();
        let mut sink = EngineSink::in_memory(EngineConfig::default());
        consume(
            &client(&brokers),
            &ConsumeOptions::new(&options.topic),
            &mut sink,
        )
        .unwrap();
        let streamed = sink.finish().unwrap();
        assert_eq!(streamed.state_hash, local.state_hash, "{packing:?}");
        assert_eq!(
            streamed.to_json(),
            local.to_json(),
            "{packing:?}: the same run file"
        );
    }
}

/// Panics (like a killed process) when asked to apply one seq.
struct Killed<'a> {
    sink: &'a mut EngineSink,
    at: u64,
}

impl Sink for Killed<'_> {
    fn next_seq(&self) -> u64 {
        self.sink.next_seq()
    }
    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        if event.seq == self.at {
            panic!("killed at seq {}", self.at);
        }
        self.sink.apply(record, event)
    }
    fn persist(&mut self) -> Result<(), SinkError> {
        self.sink.persist()
    }
}

#[test]
fn replay_killed_and_restarted_with_its_group_writes_the_same_run() {
    let Some(brokers) = brokers("replay_killed_and_restarted_with_its_group_writes_the_same_run")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    maker_market(dir.path(), 1_000);
    let local = local_replay(dir.path());
    let events = LogReader::open(dir.path()).unwrap().next_seq();
    let options = PublishOptions::new(topic("engine-restart"));
    publish_log(&client(&brokers), &options, dir.path(), &mut |_| {}).unwrap();

    let state = tempfile::tempdir().unwrap();
    let mut consume_options = ConsumeOptions::new(&options.topic);
    consume_options.group = Some(topic("replayer"));
    consume_options.commit_every = 1_000;
    let kill_at = events * 2 / 3;
    {
        let mut sink = EngineSink::with_state(EngineConfig::default(), state.path()).unwrap();
        let mut killed = Killed {
            sink: &mut sink,
            at: kill_at,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            consume(&client(&brokers), &consume_options, &mut killed)
        }));
        assert!(outcome.is_err(), "the consumer was killed");
    }
    let mut sink = EngineSink::with_state(EngineConfig::default(), state.path()).unwrap();
    let restored = sink.restored();
    assert!(
        restored > 0 && restored <= kill_at,
        "resumed from the persisted state ({restored})"
    );
    let report = consume(&client(&brokers), &consume_options, &mut sink).unwrap();
    assert_eq!(report.applied, events - restored, "the rest, each once");
    assert_eq!(report.duplicates, 0);
    assert_eq!(
        sink.finish().unwrap().to_json(),
        local.to_json(),
        "identical to an uninterrupted run"
    );
}

/// `<workspace root>/../shared/data`, or `None` (after a notice) when it is absent.
fn shared_data() -> Option<PathBuf> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if data.join("maker-ethb").is_dir() {
        Some(data)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

#[test]
fn real_maker_ethb_replayed_from_a_topic_matches_cascade_replay() {
    let Some(brokers) = brokers("real_maker_ethb_replayed_from_a_topic_matches_cascade_replay")
    else {
        return;
    };
    let Some(data) = shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sources = vec![
        Source::MakerFlipside {
            folder: data.join("maker-ethb"),
        },
        Source::PriceCsv {
            path: data.join("prices/coingecko-hourly/WETH_usd.csv"),
            options: Default::default(),
        },
    ];
    ingest(dir.path(), sources, &IngestOptions::default(), &NoProgress).unwrap();
    // What `cascade replay DIR --out RUN` writes.
    let local = replay_log(dir.path(), &ReplayOptions::default(), Mode::Historical)
        .unwrap()
        .run;
    assert_eq!(
        local.totals.by_kind.get("liquidation").copied(),
        Some(499),
        "the 499 recorded ETH-B liquidations"
    );

    let mut options = PublishOptions::new(topic("ethb"));
    options.packing = Packing::events(256);
    let published = publish_log(&client(&brokers), &options, dir.path(), &mut |_| {}).unwrap();
    assert_eq!(
        published.next_seq,
        LogReader::open(dir.path()).unwrap().next_seq()
    );
    let mut sink = EngineSink::in_memory(ReplayOptions::default().config);
    consume(
        &client(&brokers),
        &ConsumeOptions::new(&options.topic),
        &mut sink,
    )
    .unwrap();
    let streamed = sink.finish().unwrap();
    assert_eq!(streamed.state_hash, local.state_hash);
    assert_eq!(
        streamed.to_json(),
        local.to_json(),
        "the same run file, byte for byte"
    );
}
