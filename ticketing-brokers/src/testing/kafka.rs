//! Kafka test support: librdkafka's mock cluster (no Kafka broker is installable here).

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};

use super::unique;
use crate::kafka::KafkaTopicConfig;

/// A mock Kafka cluster of one broker inside librdkafka, listening on a loopback port, with a
/// topic of one partition of its own: a Kafka-protocol broker for tests (produce, fetch,
/// offsets, idempotent producers; see the crate README for what it does not do). Dropped, it
/// stops.
pub struct KafkaMock {
    /// The topic (one partition).
    pub topic: String,
    /// The client that owns the cluster (librdkafka makes it for a client configured with
    /// `test.mock.num.brokers`).
    owner: BaseProducer,
}

impl KafkaMock {
    /// A cluster with a topic of its own.
    pub fn start() -> Self {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("log_level", "3")
            .create()
            .expect("a client owning a mock Kafka cluster");
        let mock = Self {
            topic: unique("test.events."),
            owner,
        };
        mock.cluster()
            .create_topic(&mock.topic, 1, 1)
            .expect("a topic of one partition");
        mock
    }

    /// The mock cluster (broker down/up, request errors, more topics).
    pub fn cluster(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner
            .client()
            .mock_cluster()
            .expect("the client's mock cluster")
    }

    /// The bootstrap servers.
    pub fn brokers(&self) -> String {
        self.cluster().bootstrap_servers()
    }

    /// The topic's settings.
    pub fn topic_config(&self) -> KafkaTopicConfig {
        KafkaTopicConfig::new(self.brokers(), &self.topic)
    }
}
