//! Streaming of recorded events through Kafka.
