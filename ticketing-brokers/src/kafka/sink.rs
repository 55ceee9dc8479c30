//! [`KafkaEventSink`]: the outbox relay's sink on a Kafka topic.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset};
use ticketing_core::domain::OutboxEntry;
use ticketing_core::ports::EventSink;
use ticketing_core::{Error, Result};

use super::{KAFKA, KafkaTopicConfig, PARTITION, SEQ_HEADER, blocking, client_error, unavailable};
use crate::entry;

/// The [`EventSink`] on a Kafka topic of one partition: one record per entry (key = order id,
/// `seq` header = sequence number), sent by an idempotent, gapless producer, returning once the
/// brokers acknowledged every record (`acks=all`). Entries at or below the partition's last
/// message are left out, so the topic holds every sequence number once however often one relay
/// publishes it (see the [module docs](super)).
///
/// One batch at a time; the producer is made again after a fatal error.
pub struct KafkaEventSink {
    config: KafkaTopicConfig,
    producer: Mutex<Option<FutureProducer>>,
    reader: Arc<Mutex<BaseConsumer>>,
    publishing: tokio::sync::Mutex<()>,
    /// The top as this sink last saw or left it: read again when the watermark moved.
    known: Arc<Mutex<Option<Top>>>,
}

impl std::fmt::Debug for KafkaEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Where the partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Top {
    /// The high watermark: the offset the next record gets.
    high: i64,
    /// The outbox sequence number of the record below `high` (0 when there is none); `None`
    /// when retention removed every record and this sink never saw the last one.
    seq: Option<u64>,
    /// Whether the topic is missing (`high` 0).
    missing: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl KafkaEventSink {
    /// A sink of `config.topic`. [`Error::Config`] for a bad setting; nothing is connected yet
    /// (librdkafka connects in the background).
    pub fn new(config: KafkaTopicConfig) -> Result<Self> {
        config.check()?;
        let reader: BaseConsumer = config
            .client_config()
            // Required by librdkafka to assign partitions; no group is joined and nothing committed.
            .set("group.id", "ticketing.event-sink")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(client_error)?;
        let sink = Self {
            producer: Mutex::new(None),
            reader: Arc::new(Mutex::new(reader)),
            publishing: tokio::sync::Mutex::new(()),
            known: Arc::new(Mutex::new(None)),
            config,
        };
        // Made now, so that a bad setting shows here.
        let _ = sink.producer()?;
        Ok(sink)
    }

    /// A sink of `config.topic`, checking that the topic exists with one partition, so a
    /// failure shows at start-up: [`Error::Unavailable`] when the brokers cannot be reached or
    /// the topic is missing, [`Error::Config`] when it has more partitions.
    pub async fn connect(config: KafkaTopicConfig) -> Result<Self> {
        let sink = Self::new(config)?;
        let (reader, config) = (sink.reader.clone(), sink.config.clone());
        blocking(move || config.check_partitions(lock(&reader).client())).await?;
        Ok(sink)
    }

    /// The topic's settings.
    pub fn config(&self) -> &KafkaTopicConfig {
        &self.config
    }

    /// The current producer, made when there is none.
    fn producer(&self) -> Result<FutureProducer> {
        let mut slot = lock(&self.producer);
        if let Some(producer) = slot.as_ref() {
            return Ok(producer.clone());
        }
        let producer: FutureProducer = self
            .config
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("enable.gapless.guarantee", "true")
            .set("message.timeout.ms", super::millis(self.config.timeout))
            .set("linger.ms", "1")
            .create()
            .map_err(client_error)?;
        *slot = Some(producer.clone());
        Ok(producer)
    }

    /// Where the partition stands, read from the brokers: the high watermark, and the last
    /// record's sequence number when the watermark moved since this sink last knew it.
    async fn top(&self) -> Result<Top> {
        let (reader, config, known) =
            (self.reader.clone(), self.config.clone(), self.known.clone());
        blocking(move || {
            let top = read_top(&lock(&reader), &config, *lock(&known))?;
            *lock(&known) = Some(top);
            Ok(top)
        })
        .await
    }

    /// Sends `entries` in order and waits for every delivery report; the offset of the last.
    async fn send(&self, producer: &FutureProducer, entries: &[&OutboxEntry]) -> Result<i64> {
        let mut deliveries = Vec::with_capacity(entries.len());
        let mut failure = None;
        for entry in entries {
            let body = entry::body(entry)?;
            let key = entry.event.order_id.to_string();
            let seq = entry.seq.to_string();
            let record = FutureRecord::to(&self.config.topic)
                .partition(PARTITION)
                .key(&key)
                .payload(&body)
                .headers(OwnedHeaders::new().insert(Header {
                    key: SEQ_HEADER,
                    value: Some(&seq),
                }));
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push((entry.seq, delivery)),
                Err((e, _)) => {
                    failure = Some(Error::unavailable(
                        KAFKA,
                        format!("seq {} not queued: {e}", entry.seq),
                    ));
                    break;
                }
            }
        }
        // Every report is awaited, so that no record of this batch is left in flight when an
        // earlier one failed.
        let mut last = None;
        for (seq, delivery) in deliveries {
            match delivery.await {
                Ok(Ok(delivery)) => last = Some(delivery.offset),
                Ok(Err((e, _))) => {
                    failure.get_or_insert_with(|| {
                        Error::unavailable(KAFKA, format!("seq {seq} not delivered: {e}"))
                    });
                }
                Err(_) => {
                    failure.get_or_insert_with(|| {
                        Error::unavailable(KAFKA, format!("seq {seq}: the producer closed"))
                    });
                }
            }
        }
        match (failure, last) {
            (Some(e), _) => Err(e),
            (None, Some(offset)) => Ok(offset),
            (None, None) => Err(Error::internal("a batch without records")),
        }
    }
}

/// Reads the partition's watermarks and, unless `known` is still the top, its last record.
/// Blocking.
fn read_top(reader: &BaseConsumer, config: &KafkaTopicConfig, known: Option<Top>) -> Result<Top> {
    let (low, high) = match reader.fetch_watermarks(&config.topic, PARTITION, config.timeout) {
        Ok(marks) => marks,
        Err(e)
            if matches!(
                e.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition
                        | RDKafkaErrorCode::UnknownTopic
                        | RDKafkaErrorCode::UnknownPartition
                )
            ) =>
        {
            return Ok(Top {
                high: 0,
                seq: Some(0),
                missing: true,
            });
        }
        Err(e) => return Err(unavailable(e)),
    };
    let empty = Top {
        high,
        seq: Some(0),
        missing: false,
    };
    if high <= 0 {
        return Ok(empty);
    }
    if let Some(known) = known.filter(|k| k.high == high && !k.missing) {
        return Ok(known);
    }
    if low >= high {
        // Retention removed every record: their numbers are unknown.
        return Ok(Top { seq: None, ..empty });
    }
    let last = high - 1;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&config.topic, PARTITION, Offset::Offset(last))
        .map_err(unavailable)?;
    reader.assign(&assignment).map_err(unavailable)?;
    let read = read_at(reader, config, last);
    let _ = reader.unassign();
    Ok(Top {
        seq: Some(read?),
        ..empty
    })
}

/// The sequence number of the record at `offset` (the consumer is assigned there).
fn read_at(reader: &BaseConsumer, config: &KafkaTopicConfig, offset: i64) -> Result<u64> {
    let deadline = Instant::now() + config.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::unavailable(
                KAFKA,
                format!(
                    "the record at offset {offset} of {} did not come within {:?}",
                    config.topic, config.timeout
                ),
            ));
        }
        match reader.poll(left) {
            Some(Ok(message)) if message.offset() == offset => return super::seq_of(&message),
            Some(Ok(_)) | None => {}
            Some(Err(e)) => return Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl EventSink for KafkaEventSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let _one_batch_at_a_time = self.publishing.lock().await;
        let top = self.top().await?;
        if top.missing {
            let (reader, config) = (self.reader.clone(), self.config.clone());
            // The precise answer: missing, or there with the wrong number of partitions.
            blocking(move || config.check_partitions(lock(&reader).client())).await?;
            return Err(super::missing(&self.config.topic));
        }
        let held = top.seq.unwrap_or(0);
        let fresh: Vec<&OutboxEntry> = entries.iter().filter(|e| e.seq > held).collect();
        let skipped = entries.len() - fresh.len();
        if skipped > 0 {
            tracing::debug!(skipped, "the topic held part of the batch already");
        }
        let Some(last) = fresh.last().map(|e| e.seq) else {
            return Ok(());
        };
        let producer = self.producer()?;
        match self.send(&producer, &fresh).await {
            Ok(offset) => {
                *lock(&self.known) = Some(Top {
                    high: offset + 1,
                    seq: Some(last),
                    missing: false,
                });
                Ok(())
            }
            Err(e) => {
                *lock(&self.known) = None;
                if let Some((code, reason)) = producer.client().fatal_error() {
                    tracing::warn!(%code, reason, "the Kafka producer failed fatally; making a new one");
                    let mut slot = lock(&self.producer);
                    if slot.as_ref().is_some_and(|p| {
                        std::ptr::eq(p.client().native_ptr(), producer.client().native_ptr())
                    }) {
                        *slot = None;
                    }
                }
                Err(e)
            }
        }
    }

    /// The `seq` of the partition's last record, 0 when the topic is empty or missing (deleted:
    /// everything is lost); `None` when retention removed every record.
    async fn high_water_mark(&self) -> Result<Option<u64>> {
        Ok(self.top().await?.seq)
    }
}

impl KafkaEventSink {
    /// The partition's low and high watermark (the first offset held, the next offset).
    pub async fn watermarks(&self) -> Result<(i64, i64)> {
        let (reader, config) = (self.reader.clone(), self.config.clone());
        blocking(move || {
            lock(&reader)
                .fetch_watermarks(&config.topic, PARTITION, config.timeout)
                .map_err(unavailable)
        })
        .await
    }

    /// Waits until every record handed to the producer was delivered or failed, at most the
    /// configured timeout.
    pub async fn flush(&self) -> Result<()> {
        let producer = self.producer()?;
        let timeout = self.config.timeout;
        blocking(move || producer.flush(timeout).map_err(unavailable)).await
    }
}
