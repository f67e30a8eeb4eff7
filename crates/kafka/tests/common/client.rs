//! Client options for the shared test broker.

use std::time::Duration;

use cascade_kafka::ClientOptions;

/// Client options for the test broker, with a 15 s connect timeout.
pub fn client(brokers: &str) -> ClientOptions {
    let mut client = ClientOptions::new(brokers);
    client.connect_timeout = Duration::from_secs(15);
    client
}
