//! Criterion benchmarks of the Kafka bridge against a real local broker (`CASCADE_KAFKA_BROKERS`):
//! publish throughput, and consume-and-replay throughput next to a plain rdkafka consumer reading
//! the same topic (the transport limit on this machine).
//!
//! Target (issue #6): consume-and-replay >= half the raw consumer's rate, in events per second.
//! Without `CASCADE_KAFKA_BROKERS` the benchmarks print a notice and measure nothing. Results and
//! method: `docs/benchmarks.md`, section "Kafka".

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cascade_engine::{Engine, EngineConfig, Mode};
use cascade_events::{Event, Protocol, Timestamp};
use cascade_ingest::synth::{self, SynthConfig};
use cascade_kafka::{
    ClientOptions, ConsumeOptions, EngineSink, Packing, PublishOptions, Sink, SinkError, consume,
    publish_log,
};
use cascade_log::LogReader;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Maker vaults of the synthetic market, and user events per vault: about 120 000 events. Few
/// vaults with much activity keep the engine's share of the cost small, so the numbers show what
/// the Kafka path adds (docs/benchmarks.md explains the choice).
const VAULTS: u32 = 2_000;
const EVENTS_PER_VAULT: u32 = 100;

const LAYOUTS: [(&str, usize); 2] = [("single", 1), ("pack256", 256)];

fn brokers() -> Option<String> {
    let brokers = std::env::var("CASCADE_KAFKA_BROKERS").ok()?;
    (!brokers.trim().is_empty()).then_some(brokers)
}

fn client(brokers: &str) -> ClientOptions {
    let mut client = ClientOptions::new(brokers);
    client.connect_timeout = Duration::from_secs(30);
    client
}

fn fresh_topic(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "bench-{name}-{nanos}-{}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn publish_options(topic: &str, pack: usize) -> PublishOptions {
    let mut options = PublishOptions::new(topic);
    options.packing = if pack > 1 {
        Packing::events(pack)
    } else {
        Packing::SINGLE
    };
    options
}

fn publish(brokers: &str, log: &Path, topic: &str, pack: usize) -> u64 {
    publish_log(
        &client(brokers),
        &publish_options(topic, pack),
        log,
        &mut |_| {},
    )
    .expect("publish")
    .events
}

/// Reads the whole topic with a plain consumer, touching every value byte; returns the records.
/// Same end-of-partition and start settings as cascade's consumer (explicit start offset, 100 ms
/// fetch wait), so the two differ only in what they do with each record.
fn raw_consume(brokers: &str, topic: &str) -> u64 {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cascade-bench-raw")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(0))
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let mut records = 0u64;
    let mut bytes = 0u64;
    loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => {
                records += 1;
                bytes += message
                    .payload()
                    .map_or(0, |p| p.iter().map(|&b| u64::from(b)).sum());
            }
            Some(Err(ClientError::PartitionEOF(_))) => break,
            Some(Err(error)) => panic!("raw consume: {error}"),
            None => panic!("raw consume stalled"),
        }
    }
    black_box(bytes);
    records
}

/// A sink that only counts: the cost of the consumer itself (validation, decode, ordering).
#[derive(Default)]
struct Count(u64);

impl Sink for Count {
    fn next_seq(&self) -> u64 {
        self.0
    }
    fn apply(&mut self, _record: &[u8], event: &Event) -> Result<(), SinkError> {
        self.0 = event.seq + 1;
        Ok(())
    }
}

fn bench_kafka(c: &mut Criterion) {
    let Some(brokers) = brokers() else {
        eprintln!(
            "skipping the Kafka benchmarks: CASCADE_KAFKA_BROKERS is not set (tests/kafka/kafka.sh start)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("market");
    // CASCADE_BENCH_SMOKE: a tiny market, so that tests/run.sh's `--test` pass is quick.
    let smoke = std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0");
    let (vaults, per_vault) = if smoke {
        (100, 10)
    } else {
        (VAULTS, EVENTS_PER_VAULT)
    };
    let mut market = SynthConfig::new(Protocol::Maker, vaults, 5);
    market.events_per_account = per_vault;
    synth::write_log(&log, &market, Timestamp(0)).expect("synthetic market");
    let events = LogReader::open(&log).expect("log").next_seq();

    let mut group = c.benchmark_group("kafka_publish");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, pack) in LAYOUTS {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let topic = fresh_topic(name);
                    client(&brokers).ensure_topic(&topic, 1, 1).expect("topic");
                    let started = Instant::now();
                    assert_eq!(publish(&brokers, &log, &topic, pack), events);
                    total += started.elapsed();
                }
                total
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("kafka_consume");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, pack) in LAYOUTS {
        let topic = fresh_topic(name);
        publish(&brokers, &log, &topic, pack);
        group.bench_function(BenchmarkId::new("raw_rdkafka", name), |b| {
            b.iter(|| raw_consume(&brokers, &topic));
        });
        group.bench_function(BenchmarkId::new("validate_and_order", name), |b| {
            b.iter(|| {
                let mut sink = Count::default();
                consume(&client(&brokers), &ConsumeOptions::new(&topic), &mut sink)
                    .expect("consume");
                assert_eq!(sink.0, events);
            });
        });
        group.bench_function(BenchmarkId::new("replay", name), |b| {
            b.iter(|| {
                let mut sink = EngineSink::in_memory(EngineConfig::default());
                consume(&client(&brokers), &ConsumeOptions::new(&topic), &mut sink)
                    .expect("consume");
                black_box(sink.finish().expect("run"))
            });
        });
    }
    group.bench_function("local_replay_reference", |b| {
        b.iter(|| {
            let reader = LogReader::open(&log).expect("log");
            let mut engine = Engine::new(EngineConfig::default(), Mode::Historical);
            for event in reader.events(0) {
                engine.apply(&event.expect("event")).expect("apply");
            }
            black_box(engine.state_hash())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_kafka);
criterion_main!(benches);
