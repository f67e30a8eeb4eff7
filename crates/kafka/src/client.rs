//! Connection settings shared by producers and consumers, and the checks every command does first.
//!
//! Users pass extra client settings (`--kafka-config key=value`, e.g. SASL or TLS) straight to
//! librdkafka. Their values may be secrets: this module never puts a value in an error message,
//! and [`ClientOptions`]' `Debug` form redacts every value whose key looks secret.

use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::KafkaError;

/// Substrings of setting keys whose values are never shown.
const SECRET_KEY_PARTS: [&str; 6] = [
    "password",
    "secret",
    "sasl.jaas",
    "sasl.oauthbearer.config",
    "ssl.key.pem",
    "token",
];

/// The group id of consumers that only read (librdkafka wants one to assign partitions); no
/// offsets are ever committed under it.
pub(crate) const READER_GROUP: &str = "cascade-reader";

/// Whether a setting's value must be hidden from output.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// Where the cluster is and how to talk to it.
#[derive(Clone)]
pub struct ClientOptions {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Extra librdkafka settings, applied after cascade's own so they can override them.
    pub settings: Vec<(String, String)>,
    /// How long to wait for the cluster to answer a metadata request before giving up.
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// Options for `brokers` with no extra settings and a 10 s connect timeout.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            settings: Vec::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Adds one `key=value` setting as given on the command line.
    pub fn push_setting(&mut self, entry: &str) -> Result<(), KafkaError> {
        let (key, value) = entry.split_once('=').ok_or_else(|| KafkaError::Config {
            key: entry.split('=').next().unwrap_or_default().to_owned(),
            reason: "expected key=value".into(),
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(KafkaError::Config {
                key: String::new(),
                reason: "empty key".into(),
            });
        }
        if key == "bootstrap.servers" {
            return Err(KafkaError::Config {
                key: key.into(),
                reason: "give the brokers with --brokers".into(),
            });
        }
        self.settings.push((key.to_owned(), value.to_owned()));
        Ok(())
    }

    /// The user's setting for `key`, if any (the last one wins).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A librdkafka configuration: bootstrap servers, then `defaults`, then the user's settings.
    pub(crate) fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.settings {
            config.set(key, value);
        }
        config
    }

    /// Creates a client from `config`, naming the offending key when the client rejects it.
    pub(crate) fn create<T: rdkafka::config::FromClientConfig>(
        &self,
        config: &ClientConfig,
    ) -> Result<T, KafkaError> {
        config.create().map_err(|error| match error {
            rdkafka::error::KafkaError::ClientConfig(_, _, key, _) => KafkaError::Config {
                reason: "rejected by the Kafka client (value not shown)".into(),
                key,
            },
            other => KafkaError::Config {
                key: String::new(),
                reason: other.to_string(),
            },
        })
    }

    /// A transactional producer (so idempotent, with `acks=all`) named `id`, ready: it has fenced
    /// any earlier producer with the same id, which aborts that one's open transaction. Also
    /// returns the timeout to give its transaction calls. `extra` settings come after cascade's.
    pub(crate) fn transactional_producer(
        &self,
        topic: &str,
        id: &str,
        extra: &[(&str, &str)],
    ) -> Result<(BaseProducer, Duration), KafkaError> {
        let timeout = self.connect_timeout.max(Duration::from_secs(30));
        let mut settings = vec![
            ("transactional.id", id),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "60000"),
            ("transaction.timeout.ms", "60000"),
            ("partitioner", "murmur2_random"),
        ];
        settings.extend_from_slice(extra);
        let producer: BaseProducer = self.create(&self.config(&settings))?;
        producer
            .init_transactions(timeout)
            .map_err(|source| KafkaError::Client {
                operation: "initialise transactions",
                topic: topic.to_owned(),
                source,
            })?;
        Ok((producer, timeout))
    }

    /// Asks the cluster for the topic's partitions, failing within [`Self::connect_timeout`] when
    /// no broker answers; `Ok(None)` when the cluster answers but has no such topic.
    pub fn partitions(&self, topic: &str) -> Result<Option<Vec<i32>>, KafkaError> {
        let consumer: BaseConsumer = self.create(&self.config(&[]))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), self.connect_timeout)
            .map_err(|error| self.unreachable(&error))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match found.error() {
            None => {
                let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
                partitions.sort_unstable();
                Ok((!partitions.is_empty()).then_some(partitions))
            }
            Some(code)
                if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition =>
            {
                Ok(None)
            }
            Some(code) => Err(KafkaError::Client {
                operation: "read topic metadata",
                topic: topic.to_owned(),
                source: rdkafka::error::KafkaError::MetadataFetch(code.into()),
            }),
        }
    }

    /// The topic's partitions, or [`KafkaError::TopicMissing`].
    pub fn existing_partitions(&self, topic: &str) -> Result<Vec<i32>, KafkaError> {
        self.partitions(topic)?
            .ok_or_else(|| KafkaError::TopicMissing {
                topic: topic.to_owned(),
                brokers: self.brokers.clone(),
            })
    }

    /// Creates the topic with `partitions` partitions if it does not exist (replication factor
    /// 1 unless the cluster's default is asked for with `replication == -1`), and returns its
    /// partitions.
    pub fn ensure_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<Vec<i32>, KafkaError> {
        if let Some(existing) = self.partitions(topic)? {
            return Ok(existing);
        }
        let admin: AdminClient<DefaultClientContext> = self.create(&self.config(&[]))?;
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        let options = AdminOptions::new().operation_timeout(Some(self.connect_timeout));
        let results = block_on(admin.create_topics([&new], &options)).map_err(|source| {
            KafkaError::Client {
                operation: "create topic",
                topic: topic.to_owned(),
                source,
            }
        })?;
        for result in results {
            if let Err((_, code)) = result
                && code != RDKafkaErrorCode::TopicAlreadyExists
            {
                return Err(KafkaError::Client {
                    operation: "create topic",
                    topic: topic.to_owned(),
                    source: rdkafka::error::KafkaError::AdminOp(code),
                });
            }
        }
        // Creation is asynchronous on the broker: wait until the metadata shows the partitions.
        let deadline = std::time::Instant::now() + self.connect_timeout;
        loop {
            if let Some(found) = self.partitions(topic)? {
                return Ok(found);
            }
            if std::time::Instant::now() >= deadline {
                return Err(KafkaError::TopicMissing {
                    topic: topic.to_owned(),
                    brokers: self.brokers.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn unreachable(&self, error: &rdkafka::error::KafkaError) -> KafkaError {
        KafkaError::Unreachable {
            brokers: self.brokers.clone(),
            after: self.connect_timeout,
            reason: error.to_string(),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(key, value)| {
                if is_secret(key) {
                    format!("{key}=<redacted>")
                } else {
                    format!("{key}={value}")
                }
            })
            .collect();
        f.debug_struct("ClientOptions")
            .field("brokers", &self.brokers)
            .field("settings", &settings)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Runs an rdkafka future to completion on a small current-thread runtime: the admin API is
/// async-only, and the rest of this crate is blocking.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime without I/O drivers builds")
        .block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_secrets_are_redacted() {
        let mut options = ClientOptions::new("127.0.0.1:9092");
        options.push_setting("security.protocol=SASL_SSL").unwrap();
        options.push_setting("sasl.password=hunter2").unwrap();
        options
            .push_setting("sasl.jaas.config=org.Foo required password=\"x=y\";")
            .unwrap();
        assert_eq!(
            options.setting("sasl.jaas.config"),
            Some("org.Foo required password=\"x=y\";")
        );
        let shown = format!("{options:?}");
        assert!(shown.contains("security.protocol=SASL_SSL"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("x=y"),
            "{shown}"
        );
        assert!(shown.contains("sasl.password=<redacted>"), "{shown}");
        assert!(is_secret("ssl.keystore.password") && is_secret("SASL.OAUTHBEARER.CLIENT.SECRET"));
        assert!(!is_secret("acks"));
    }

    #[test]
    fn bad_settings_name_the_key_not_the_value() {
        let mut options = ClientOptions::new("b");
        assert!(
            matches!(options.push_setting("novalue"), Err(KafkaError::Config { key, .. }) if key == "novalue")
        );
        assert!(options.push_setting("=x").is_err());
        assert!(options.push_setting("bootstrap.servers=x").is_err());
        options.push_setting("sasl.password=hunter2").unwrap();
        options.push_setting("no.such.setting=hunter3").unwrap();
        let error = options
            .create::<BaseConsumer>(&options.config(&[]))
            .err()
            .expect("librdkafka rejects an unknown setting");
        let message = error.to_string();
        assert!(message.contains("no.such.setting"), "{message}");
        assert!(!message.contains("hunter"), "{message}");
    }
}
