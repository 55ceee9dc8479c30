//! [`KafkaProjection`]: a consumer of the Kafka topic keeping the sales read model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use ticketing_core::domain::{EventId, EventTotals};
use ticketing_core::ports::{Applied, SalesReadModel};
use ticketing_core::{Error, Result};
use tokio::sync::Mutex;

use super::{KAFKA, KafkaTopicConfig, PARTITION, blocking, client_error, unavailable};
use crate::Backoff;

/// Settings of a [`KafkaProjection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaProjectionConfig {
    /// The topic read (the sink's).
    pub topic: KafkaTopicConfig,
    /// Most records applied per round.
    pub batch_size: u16,
    /// How long a round waits for the first record when there is none.
    pub fetch_wait: Duration,
    /// The pauses after failed rounds (doubling up to `retry.max`) and after a gap (`retry.min`).
    pub retry: Backoff,
    /// A gap that lasts this long means the read model is behind the offset this consumer
    /// reached (the model lost data): the consumer reads the partition again from its start.
    pub replay_after: Duration,
}

impl Default for KafkaProjectionConfig {
    fn default() -> Self {
        Self {
            topic: KafkaTopicConfig::default(),
            batch_size: 200,
            fetch_wait: Duration::from_secs(1),
            retry: Backoff::default(),
            replay_after: Duration::from_secs(60),
        }
    }
}

/// What one [`KafkaProjection::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KafkaProjectionRound {
    /// Entries applied to the read model.
    pub applied: u64,
    /// Entries the model held already (republished, or read again after a restart).
    pub duplicates: u64,
    /// Whether an entry came before one the model still needs (passed over: the topic is a
    /// log, the missing entry comes later if the relay publishes it again).
    pub gap: bool,
    /// Whether the consumer went back to the partition's start (a gap outlasted
    /// [`KafkaProjectionConfig::replay_after`]).
    pub replayed: bool,
}

/// The open consumer and where it reads.
struct Reading {
    consumer: Arc<StreamConsumer>,
    /// Sequence numbers up to this the model held when the consumer opened: skipped without
    /// asking the model.
    held: u64,
}

/// A consumer of the Kafka topic applying each record to a [`SalesReadModel`].
///
/// It uses no consumer group and commits no offsets: the model is the position. The consumer
/// is assigned the topic's one partition, starts at its first record (skipping, without a
/// model call, what the model holds), resumes after a failure at the offset after the last
/// record it applied, and goes back to the start when the model lost data. The model is
/// idempotent by sequence number and applies in order, so a record read twice, or published
/// twice, changes it once. One instance per read model: two would each read every record.
pub struct KafkaProjection {
    model: Arc<dyn SalesReadModel>,
    config: KafkaProjectionConfig,
    reading: Mutex<Option<Reading>>,
    next_offset: std::sync::Mutex<Option<i64>>,
    gap: crate::gap::GapWatch,
    failed_rounds: AtomicU64,
}

impl std::fmt::Debug for KafkaProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProjection")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl KafkaProjection {
    /// A projection of `config.topic` into `model`. [`Error::Config`] for a bad topic setting or
    /// a zero batch size; nothing is connected yet.
    pub fn new(model: Arc<dyn SalesReadModel>, config: KafkaProjectionConfig) -> Result<Self> {
        config.topic.check()?;
        if config.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        Ok(Self {
            model,
            config,
            reading: Mutex::new(None),
            next_offset: std::sync::Mutex::new(None),
            gap: crate::gap::GapWatch::default(),
            failed_rounds: AtomicU64::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KafkaProjectionConfig {
        &self.config
    }

    /// The read model this projection keeps.
    pub fn model(&self) -> &Arc<dyn SalesReadModel> {
        &self.model
    }

    /// The read model of `event`.
    pub async fn totals(&self, event: EventId) -> Result<EventTotals> {
        self.model.totals(event).await
    }

    /// How many rounds of [`KafkaProjection::run`] failed so far.
    pub fn failed_rounds(&self) -> u64 {
        self.failed_rounds.load(Ordering::Relaxed)
    }

    /// Reads the partition again from its start at the next round (what the model holds is
    /// skipped).
    pub async fn replay(&self) {
        *self.reading.lock().await = None;
        *lock(&self.next_offset) = None;
        tracing::info!(topic = %self.config.topic.topic, "sales projection replays the topic");
    }

    async fn open(&self) -> Result<Reading> {
        let held = self.model.last_applied().await?;
        let topic = self.config.topic.clone();
        let offset = match *lock(&self.next_offset) {
            Some(offset) => Offset::Offset(offset),
            None => Offset::Beginning,
        };
        let consumer = blocking(move || {
            let consumer: StreamConsumer = topic
                .client_config()
                // Required by librdkafka to assign partitions; no group is joined and nothing committed.
                .set("group.id", "ticketing.sales-projection")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false")
                // An offset retention removed: go on from the oldest record held.
                .set("auto.offset.reset", "earliest")
                .create()
                .map_err(client_error)?;
            topic.check_partitions(consumer.client())?;
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&topic.topic, PARTITION, offset)
                .map_err(unavailable)?;
            consumer.assign(&assignment).map_err(unavailable)?;
            Ok(consumer)
        })
        .await?;
        Ok(Reading {
            consumer: Arc::new(consumer),
            held,
        })
    }

    /// One round: apply up to `batch_size` records, waiting up to `fetch_wait` for the first.
    /// A failure closes the consumer; the next round opens it again where this one stopped.
    pub async fn run_once(&self) -> Result<KafkaProjectionRound> {
        // A broker that died may leave a fetch unanswered until the connection notices.
        let limit = self.config.fetch_wait + self.config.topic.timeout;
        let round = tokio::time::timeout(limit, self.round())
            .await
            .unwrap_or_else(|_| {
                Err(Error::unavailable(
                    KAFKA,
                    format!("a round took longer than {limit:?}"),
                ))
            });
        if round.is_err() {
            *self.reading.lock().await = None;
        }
        round
    }

    async fn round(&self) -> Result<KafkaProjectionRound> {
        let mut slot = self.reading.lock().await;
        if slot.is_none() {
            *slot = Some(self.open().await?);
        }
        let Some(reading) = slot.as_mut() else {
            return Err(Error::internal("the consumer was just opened"));
        };
        let mut round = KafkaProjectionRound::default();
        for i in 0..self.config.batch_size {
            let wait = if i == 0 {
                self.config.fetch_wait
            } else {
                Duration::from_millis(5)
            };
            let message = match tokio::time::timeout(wait, reading.consumer.recv()).await {
                Err(_) => break,
                Ok(message) => message.map_err(unavailable)?,
            };
            let offset = message.offset();
            let seq = super::seq_of(&message)?;
            if seq <= reading.held {
                round.duplicates += 1;
            } else {
                let entry = super::entry_of(&message)?;
                match self.model.apply(&entry).await? {
                    Applied::Applied => round.applied += 1,
                    Applied::Duplicate => round.duplicates += 1,
                    Applied::Gap { expected } => {
                        round.gap = true;
                        self.gap.note(expected);
                    }
                }
            }
            *lock(&self.next_offset) = Some(offset + 1);
        }
        if round.applied > 0 {
            self.gap.clear();
        } else if self.gap.outlasted(self.config.replay_after) {
            // Nothing moved the model for `replay_after` since it last met a gap: what it
            // needs lies behind this consumer's offset.
            drop(slot);
            self.replay().await;
            round.replayed = true;
        }
        Ok(round)
    }

    /// Rounds until `shutdown` completes. A failure (the brokers down) is logged and retried
    /// after a pause that doubles with every failure in a row; a gap waits `retry.min`.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let consumer = format!("kafka topic {}", self.config.topic.topic);
        crate::retry::run_rounds(
            &consumer,
            self.config.retry,
            &self.failed_rounds,
            shutdown,
            || async { self.run_once().await.map(|round| round.gap) },
        )
        .await;
        *self.reading.lock().await = None;
    }
}
