//! The flags that say where a Kafka cluster is and how to talk to it, shared by `cascade stream`,
//! `cascade sweep --brokers`, `cascade worker` and `cascade check-suite --brokers`.

use std::time::Duration;

use cascade_kafka::ClientOptions;

/// Where the cluster is.
#[derive(clap::Args, Clone)]
pub struct Cluster {
    /// Extra Kafka client setting (librdkafka names), repeatable: e.g. security.protocol=SASL_SSL,
    /// sasl.mechanism=PLAIN, sasl.username=..., sasl.password=... (values are never printed).
    #[arg(long = "kafka-config", value_name = "KEY=VALUE")]
    pub kafka_config: Vec<String>,
    /// Seconds to wait for the cluster to answer before giving up.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
}

impl Cluster {
    /// Client options for `brokers` with these settings.
    pub fn client(&self, brokers: &str) -> anyhow::Result<ClientOptions> {
        let mut client = ClientOptions::new(brokers);
        client.connect_timeout = Duration::from_secs(self.connect_timeout.max(1));
        for entry in &self.kafka_config {
            client.push_setting(entry)?;
        }
        Ok(client)
    }
}
