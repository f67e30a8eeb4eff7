//! The test broker: its address, or a notice that the tests skip without one, and topic names.
//!
//! The tests run against a real broker whose bootstrap address is in `CASCADE_KAFKA_BROKERS`
//! (`tests/kafka/kafka.sh start` prints it). Without it they print a notice and pass vacuously, so a
//! fresh clone without Java still passes `cargo test`.

use std::sync::atomic::{AtomicU32, Ordering};

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
