//! [`RabbitProjection`]: a consumer of the RabbitMQ stream keeping the sales read model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};
use ticketing_core::domain::{EventId, EventTotals};
use ticketing_core::ports::{Applied, SalesReadModel};
use ticketing_core::{Error, Result};
use tokio::sync::Mutex;

use super::{RABBITMQ, RabbitStreamConfig, unavailable};
use crate::Backoff;
use crate::entry;

/// Settings of a [`RabbitProjection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitProjectionConfig {
    /// The stream read (the sink's).
    pub stream: RabbitStreamConfig,
    /// Most messages applied per round, and the consumer's prefetch.
    pub batch_size: u16,
    /// How long a round waits for the first message when there is none.
    pub fetch_wait: Duration,
    /// The pauses after failed rounds (doubling up to `retry.max`) and after a gap (`retry.min`).
    pub retry: Backoff,
    /// A gap that lasts this long means the read model is behind the offset this consumer
    /// reached (the model lost data): the consumer reads the stream again from its start.
    pub replay_after: Duration,
}

impl Default for RabbitProjectionConfig {
    fn default() -> Self {
        Self {
            stream: RabbitStreamConfig::default(),
            batch_size: 200,
            fetch_wait: Duration::from_secs(1),
            retry: Backoff::default(),
            replay_after: Duration::from_secs(60),
        }
    }
}

/// What one [`RabbitProjection::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RabbitProjectionRound {
    /// Entries applied to the read model.
    pub applied: u64,
    /// Entries the model held already (republished, or read again after a restart).
    pub duplicates: u64,
    /// Whether an entry came before one the model still needs (passed over: the stream is a
    /// log, the missing entry comes later if the relay publishes it again).
    pub gap: bool,
    /// Whether the consumer went back to the stream's start (a gap outlasted
    /// [`RabbitProjectionConfig::replay_after`]).
    pub replayed: bool,
}

/// The open consumer and where it reads.
struct Reading {
    conn: Connection,
    _channel: Channel,
    consumer: Consumer,
    /// Sequence numbers up to this the model held when the consumer opened: skipped without
    /// asking the model.
    held: u64,
}

/// A consumer of the RabbitMQ stream applying each message to a [`SalesReadModel`].
///
/// A stream keeps no position for an AMQP consumer, so the projection keeps it: it starts at the
/// stream's first message (skipping, without a model call, what the model holds), resumes after
/// a failure at the offset after the last message it applied, and goes back to the start when
/// the model lost data. The model is idempotent by sequence number and applies in order, so a
/// message read twice, or published twice, changes it once. One instance per read model: two
/// instances would each read every message (harmless, but twice the work).
pub struct RabbitProjection {
    url: String,
    model: Arc<dyn SalesReadModel>,
    config: RabbitProjectionConfig,
    reading: Mutex<Option<Reading>>,
    next_offset: std::sync::Mutex<Option<u64>>,
    gap: crate::gap::GapWatch,
    failed_rounds: AtomicU64,
}

impl std::fmt::Debug for RabbitProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitProjection")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RabbitProjection {
    /// A projection of the broker at `url` into `model`. [`Error::Config`] for a bad stream
    /// name or a zero batch size; nothing is connected yet.
    pub fn new(
        url: &str,
        model: Arc<dyn SalesReadModel>,
        config: RabbitProjectionConfig,
    ) -> Result<Self> {
        config.stream.check()?;
        if config.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        Ok(Self {
            url: url.into(),
            model,
            config,
            reading: Mutex::new(None),
            next_offset: std::sync::Mutex::new(None),
            gap: crate::gap::GapWatch::default(),
            failed_rounds: AtomicU64::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RabbitProjectionConfig {
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

    /// How many rounds of [`RabbitProjection::run`] failed so far.
    pub fn failed_rounds(&self) -> u64 {
        self.failed_rounds.load(Ordering::Relaxed)
    }

    /// Reads the stream again from its start at the next round (what the model holds is
    /// skipped).
    pub async fn replay(&self) {
        self.close().await;
        *lock(&self.next_offset) = None;
        tracing::info!(stream = %self.config.stream.stream, "sales projection replays the stream");
    }

    async fn close(&self) {
        if let Some(reading) = self.reading.lock().await.take() {
            super::close(&reading.conn, "closing").await;
        }
    }

    async fn open(&self) -> Result<Reading> {
        let held = self.model.last_applied().await?;
        let conn = super::connect(&self.url).await?;
        let opened = async {
            let channel = conn.create_channel().await?;
            self.config.stream.declare(&channel).await?;
            channel
                .basic_qos(self.config.batch_size, BasicQosOptions::default())
                .await?;
            let offset = match *lock(&self.next_offset) {
                Some(offset) => AMQPValue::LongLongInt(offset.min(i64::MAX as u64) as i64),
                None => AMQPValue::LongString("first".into()),
            };
            let mut arguments = FieldTable::default();
            arguments.insert("x-stream-offset".into(), offset);
            let consumer = channel
                .basic_consume(
                    self.config.stream.stream.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    arguments,
                )
                .await?;
            lapin::Result::Ok((channel, consumer))
        }
        .await;
        match opened {
            Ok((channel, consumer)) => Ok(Reading {
                conn,
                _channel: channel,
                consumer,
                held,
            }),
            Err(e) => {
                super::close(&conn, "failed").await;
                Err(unavailable(e))
            }
        }
    }

    /// One round: apply up to `batch_size` messages, waiting up to `fetch_wait` for the first.
    /// A failure closes the consumer; the next round opens it again where this one stopped.
    pub async fn run_once(&self) -> Result<RabbitProjectionRound> {
        // A broker that died may leave a call unanswered until the connection notices.
        let limit = self.config.fetch_wait + std::time::Duration::from_secs(30);
        let round = tokio::time::timeout(limit, self.round())
            .await
            .unwrap_or_else(|_| {
                Err(Error::unavailable(
                    RABBITMQ,
                    format!("a round took longer than {limit:?}"),
                ))
            });
        if round.is_err() {
            self.close().await;
        }
        round
    }

    async fn round(&self) -> Result<RabbitProjectionRound> {
        let mut slot = self.reading.lock().await;
        if slot.is_none() {
            *slot = Some(self.open().await?);
        }
        let Some(reading) = slot.as_mut() else {
            return Err(Error::internal("the consumer was just opened"));
        };
        let mut round = RabbitProjectionRound::default();
        for i in 0..self.config.batch_size {
            let wait = if i == 0 {
                self.config.fetch_wait
            } else {
                Duration::from_millis(5)
            };
            let delivery = match tokio::time::timeout(wait, reading.consumer.next()).await {
                Err(_) => break,
                Ok(None) => {
                    return Err(Error::unavailable(
                        RABBITMQ,
                        "the broker ended the consumer",
                    ));
                }
                Ok(Some(delivery)) => delivery.map_err(unavailable)?,
            };
            let offset = match delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-stream-offset"))
            {
                Some(AMQPValue::LongLongInt(offset)) => *offset as u64,
                other => {
                    return Err(Error::backend(
                        RABBITMQ,
                        format!("a stream delivery without its offset: {other:?}"),
                    ));
                }
            };
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str());
            let seq = entry::parse_seq(RABBITMQ, id)?;
            if seq <= reading.held {
                round.duplicates += 1;
            } else {
                let entry = entry::parse(RABBITMQ, id, &delivery.data)?;
                match self.model.apply(&entry).await? {
                    Applied::Applied => round.applied += 1,
                    Applied::Duplicate => round.duplicates += 1,
                    Applied::Gap { expected } => {
                        round.gap = true;
                        self.gap.note(expected);
                    }
                }
            }
            delivery
                .ack(BasicAckOptions::default())
                .await
                .map_err(unavailable)?;
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

    /// Rounds until `shutdown` completes. A failure (the broker down) is logged and retried
    /// after a pause that doubles with every failure in a row; a gap waits `retry.min`.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let consumer = format!("rabbitmq stream {}", self.config.stream.stream);
        crate::retry::run_rounds(
            &consumer,
            self.config.retry,
            &self.failed_rounds,
            shutdown,
            || async { self.run_once().await.map(|round| round.gap) },
        )
        .await;
        self.close().await;
    }
}
