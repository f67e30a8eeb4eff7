//! Shared helpers of the Kafka integration tests: the broker address, unique topics, logs built
//! from synthetic events, and a sink that collects what it is given.
//!
//! The tests run against a real broker whose bootstrap address is in `CASCADE_KAFKA_BROKERS`
//! (`tests/kafka/kafka.sh start` prints it). Without it they print a notice and pass vacuously, so a
//! fresh clone without Java still passes `cargo test`.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cascade_events::{
    Amount, Event, Fixed, Id, Liquidation, LiquidationDetail, ParamChange, Payload, PositionChange,
    PriceUpdate, Protocol, Symbol, Timestamp, U256, VaultOpen,
};
use cascade_kafka::{ClientOptions, Sink, SinkError};
use cascade_log::{LogReader, LogWriter, WriterOptions};

/// The broker address, or `None` (after printing why) when the tests should skip.
pub fn brokers(test: &str) -> Option<String> {
    match std::env::var("CASCADE_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.trim().is_empty() => Some(brokers),
        // CI starts a broker before the tests (tests/run.sh): there, a missing address is a
        // broken setup that must fail loudly instead of passing vacuously.
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{test}: CI=true but CASCADE_KAFKA_BROKERS is not set; run tests/run.sh")
        }
        _ => {
            eprintln!(
                "skipping {test}: CASCADE_KAFKA_BROKERS is not set (start a broker with \
                 tests/kafka/kafka.sh start and export CASCADE_KAFKA_BROKERS=127.0.0.1:9092)"
            );
            None
        }
    }
}

/// Client options for the test broker, with a short connect timeout.
pub fn client(brokers: &str) -> ClientOptions {
    let mut client = ClientOptions::new(brokers);
    client.connect_timeout = Duration::from_secs(15);
    client
}

/// A topic name no other test run has used.
pub fn topic(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "test-{name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `count` events of several kinds over a few vaults, one second apart.
pub fn events(count: u64) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let vault = Id::Number(1000 + i % 7);
            let ilk = Id::Name(Symbol::new("ETH-B").expect("valid"));
            let payload = match i % 6 {
                0 => Payload::Price(PriceUpdate {
                    asset: Id::name("ETH"),
                    quote: Id::name("USD"),
                    price: Fixed::new(U256::from(2_000_000 + i), 3),
                    feed: Id::name("pip"),
                    round: Some(u128::from(i)),
                }),
                1 => Payload::VaultOpen(VaultOpen {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    owner: None,
                }),
                2 => Payload::Deposit(PositionChange {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    asset: Id::name("ETH"),
                    amount: Amount::from_units(u128::from(i) * 1_000_000_000_000_000),
                    shares: None,
                }),
                3 => Payload::Borrow(PositionChange {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    asset: Id::name("DAI"),
                    amount: Amount::from_units(u128::from(i) * 7),
                    shares: None,
                }),
                4 => Payload::ParamChange(ParamChange {
                    protocol: Protocol::Maker,
                    market: ilk,
                    param: Symbol::new("SPOTTER.mat").expect("valid"),
                    value: Fixed::new(U256::from(1_300 + i % 5), 3),
                }),
                _ => Payload::Liquidation(Liquidation {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    liquidator: None,
                    collateral_asset: Id::name("ETH"),
                    collateral_seized: Amount::from_units(u128::from(i)),
                    debt_asset: Id::name("DAI"),
                    debt_repaid: Amount::from_units(u128::from(i) * 3),
                    detail: LiquidationDetail::MakerDog {
                        due: None,
                        art: None,
                        auction: Some(i),
                    },
                }),
            };
            Event {
                seq: i,
                chain_id: 1,
                block: Some(12_000_000 + i),
                time: Timestamp(1_621_382_400 + i as i64),
                tx_index: Some((i % 100) as u32),
                log_index: Some((i % 10) as u32),
                tx_hash: None,
                source: 0,
                payload,
            }
        })
        .collect()
}

/// A log at `dir` holding `events`.
pub fn build_log(dir: &Path, events: &[Event]) -> PathBuf {
    let (mut writer, _) = LogWriter::open(dir, WriterOptions::default()).expect("open log");
    for event in events {
        writer.append(event).expect("append");
    }
    writer.commit().expect("commit");
    dir.to_path_buf()
}

/// Every record of a log, as `(seq, bytes)`.
pub fn log_records(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let reader = LogReader::open(dir).expect("open log");
    reader
        .records(0)
        .collect::<Result<_, _>>()
        .expect("read log")
}

/// A sink that keeps everything it is given; optionally fails at one seq, like a crash.
#[derive(Default)]
pub struct Collect {
    /// What was applied: `(seq, record bytes)`.
    pub applied: Vec<(u64, Vec<u8>)>,
    /// Seqs skipped as dead-lettered.
    pub skipped: Vec<u64>,
    /// Fail when asked to apply this seq.
    pub fail_at: Option<u64>,
    /// Times `persist` was called.
    pub persists: u32,
    /// The state as of the last persist (what survives a crash).
    pub persisted: Vec<(u64, Vec<u8>)>,
    /// Next seq as of the last persist.
    pub persisted_next: u64,
    next: u64,
}

impl Collect {
    /// A sink that resumes from what `crashed` had persisted.
    pub fn resume(crashed: &Collect) -> Collect {
        Collect {
            applied: crashed.persisted.clone(),
            persisted: crashed.persisted.clone(),
            persisted_next: crashed.persisted_next,
            next: crashed.persisted_next,
            ..Collect::default()
        }
    }
}

impl Sink for Collect {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn apply(&mut self, record: &[u8], event: &Event) -> Result<(), SinkError> {
        assert_eq!(
            event.seq, self.next,
            "the consumer hands out events in order"
        );
        if self.fail_at == Some(event.seq) {
            return Err(format!("simulated crash at seq {}", event.seq).into());
        }
        self.applied.push((event.seq, record.to_vec()));
        self.next = event.seq + 1;
        Ok(())
    }

    fn skip(&mut self, seq: u64) -> Result<(), SinkError> {
        assert_eq!(seq, self.next);
        self.skipped.push(seq);
        self.next = seq + 1;
        Ok(())
    }

    fn persist(&mut self) -> Result<(), SinkError> {
        self.persists += 1;
        self.persisted = self.applied.clone();
        self.persisted_next = self.next;
        Ok(())
    }
}

/// The repository root (for tests/kafka/kafka.sh).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
