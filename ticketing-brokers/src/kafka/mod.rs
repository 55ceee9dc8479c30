//! The event stream on Kafka: [`KafkaEventSink`] (the relay's sink) and [`KafkaProjection`]
//! (a consumer keeping the sales read model), on librdkafka through `rdkafka`.
//!
//! **One topic of one partition.** Kafka orders messages within a partition only, and the read
//! model applies the outbox strictly in sequence order, so the whole outbox goes to partition 0
//! of one topic. Each record's key is the order id (for downstream consumers that re-key or
//! compact), its value the event as JSON, its `seq` header the outbox sequence number. The topic
//! is the operator's to create (`kafka-topics.sh --create --topic ticketing.events --partitions
//! 1 --replication-factor 3 --config retention.ms=-1`): the sink and the projection check that it
//! exists and has one partition, and never create it.
//!
//! **The producer is idempotent and gapless**: `enable.idempotence=true` (so `acks=all`, and a
//! retried produce request is not stored twice), and `enable.gapless.guarantee=true`: an error
//! that could leave a hole in what one producer wrote is fatal instead, the sink drops that
//! producer and makes a new one. So whatever a failed batch left in the topic is a prefix of
//! that batch.
//!
//! **Exactly one message per sequence number across sessions.** A producer's idempotence only
//! lasts its session (its producer id), and a relay may republish much later (it crashed before
//! marking the batch sent). So the sink reads the partition's last message before each batch
//! (the `seq` header of the message below the high watermark), and leaves out the entries at
//! or below it: since a failed batch leaves a prefix, nothing is skipped over a hole. The same
//! read is the [`high_water_mark`](ticketing_core::ports::EventSink::high_water_mark): a topic
//! deleted and created again, or a broker that lost its log, answers less than the relay marked
//! sent, and the relay rewinds. Two relays publishing at once (a lapsed lease) may both append
//! the same entries; the projection skips repeats by sequence number.

mod projection;
mod sink;

pub use projection::{KafkaProjection, KafkaProjectionConfig, KafkaProjectionRound};
pub use sink::KafkaEventSink;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use ticketing_core::domain::OutboxEntry;
use ticketing_core::{BoxError, Error, Result};

use crate::entry;

/// The adapter name in errors.
pub(crate) const KAFKA: &str = "kafka";

/// The header carrying the outbox sequence number (ASCII decimal).
pub const SEQ_HEADER: &str = "seq";

/// The partition every entry goes to.
pub(crate) const PARTITION: i32 = 0;

/// Where the event stream lives on the Kafka cluster; the sink and its projections use the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTopicConfig {
    /// The bootstrap servers, comma-separated `host:port`, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// The topic, one partition, e.g. `ticketing.events`.
    pub topic: String,
    /// How long a broker call (a produce, a metadata or offsets request) may take before the
    /// sink or the projection answers [`Error::Unavailable`]; also the producer's delivery
    /// timeout (`message.timeout.ms`).
    pub timeout: Duration,
}

impl Default for KafkaTopicConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "ticketing.events".into(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl KafkaTopicConfig {
    /// A topic `topic` on `brokers`, with the default timeout.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            ..Self::default()
        }
    }

    /// [`Error::Config`] for no brokers, a topic name Kafka refuses (1 to 249 of `a-z A-Z 0-9 .
    /// _ -`, not `.` or `..`) or a timeout under a second.
    fn check(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            return Err(Error::config("brokers", "must name at least one host:port"));
        }
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.topic.is_empty()
            || self.topic.len() > 249
            || self.topic == "."
            || self.topic == ".."
            || !self.topic.chars().all(legal)
        {
            return Err(Error::config(
                "topic",
                "must be 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-' (not '.' or '..')",
            ));
        }
        if self.timeout < Duration::from_secs(1) {
            return Err(Error::config("timeout", "must be at least a second"));
        }
        Ok(())
    }

    /// The settings every client of the topic shares.
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", millis(self.timeout))
            // Reconnect soon after a broker came back, not after librdkafka's 10 s backoff.
            .set("reconnect.backoff.max.ms", "1000")
            .set("log_level", "4");
        config
    }

    /// [`Error::Unavailable`] when the topic is missing, [`Error::Config`] when it has other
    /// than one partition. Blocking: call from `spawn_blocking`.
    fn check_partitions<C: ClientContext>(&self, client: &Client<C>) -> Result<()> {
        let metadata = client
            .fetch_metadata(Some(&self.topic), self.timeout)
            .map_err(unavailable)?;
        let Some(topic) = metadata.topics().first() else {
            return Err(missing(&self.topic));
        };
        if let Some(e) = topic.error() {
            let code = RDKafkaErrorCode::from(e);
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                return Err(missing(&self.topic));
            }
            return Err(Error::unavailable(
                KAFKA,
                format!("topic {}: {code}", self.topic),
            ));
        }
        match topic.partitions().len() {
            1 => Ok(()),
            0 => Err(missing(&self.topic)),
            n => Err(Error::config(
                "topic",
                format!(
                    "topic {} has {n} partitions; the event stream needs exactly one (Kafka \
                     orders messages within a partition only)",
                    self.topic
                ),
            )),
        }
    }
}

fn missing(topic: &str) -> Error {
    Error::unavailable(
        KAFKA,
        format!("topic {topic} does not exist: create it with one partition"),
    )
}

fn millis(d: Duration) -> String {
    d.as_millis().min(i32::MAX as u128).to_string()
}

/// The outbox sequence number in `message`'s `seq` header.
pub(crate) fn seq_of(message: &impl Message) -> Result<u64> {
    let header = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == SEQ_HEADER)
            .and_then(|h| h.value)
    });
    entry::parse_seq(KAFKA, header.and_then(|v| std::str::from_utf8(v).ok()))
}

/// The entry `message` carries.
pub(crate) fn entry_of(message: &impl Message) -> Result<OutboxEntry> {
    let seq = seq_of(message)?.to_string();
    entry::parse(KAFKA, Some(&seq), message.payload().unwrap_or_default())
}

/// A Kafka failure the caller may retry: the broker down, a timeout, a refused produce.
pub(crate) fn unavailable(e: impl Into<BoxError>) -> Error {
    Error::unavailable(KAFKA, e)
}

/// A client error as [`Error::Unavailable`], except a bad setting ([`Error::Config`]).
pub(crate) fn client_error(e: KafkaError) -> Error {
    match e {
        KafkaError::ClientConfig(_, ref description, ref key, ref value) => {
            Error::config("kafka", format!("{key} = {value}: {description}"))
        }
        e => unavailable(e),
    }
}

/// Runs the blocking librdkafka call `f` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a Kafka call panicked: {e}")))?
}
