//! [`NatsProjection`]: a durable JetStream consumer keeping the sales read model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use ticketing_core::domain::EventId;
use ticketing_core::ports::{Applied, SalesReadModel};
use ticketing_core::{Error, Result};
use tokio::sync::Mutex;

use super::{NATS, NatsStreamConfig, unavailable};
use crate::entry;
use crate::retry::Backoff;

/// Settings of a [`NatsProjection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsProjectionConfig {
    /// The stream read (the sink's).
    pub stream: NatsStreamConfig,
    /// The durable consumer's name; one read model per name.
    pub durable: String,
    /// Most messages fetched per round.
    pub batch_size: usize,
    /// How long a round waits for messages when there are none.
    pub fetch_wait: Duration,
    /// A message delivered but not acknowledged for this long is delivered again (to this or
    /// another instance): its consumer is presumed dead.
    pub ack_wait: Duration,
    /// The retry pauses: after a gap, and after failed rounds (doubling up to `retry.max`).
    pub retry: Backoff,
    /// A gap that lasts this long means the read model is behind what the consumer already
    /// acknowledged (the model lost data, or is new under an old consumer name): the consumer
    /// is replayed from the stream's start, and what the model holds is skipped as duplicates.
    pub replay_after: Duration,
}

impl Default for NatsProjectionConfig {
    fn default() -> Self {
        Self {
            stream: NatsStreamConfig::default(),
            durable: "sales-projection".into(),
            batch_size: 200,
            fetch_wait: Duration::from_secs(1),
            ack_wait: Duration::from_secs(30),
            retry: Backoff::default(),
            replay_after: Duration::from_secs(60),
        }
    }
}

/// What one [`NatsProjection::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatsProjectionRound {
    /// Entries applied to the read model.
    pub applied: u64,
    /// Entries the model held already (acknowledged, nothing changed).
    pub duplicates: u64,
    /// Whether an entry was handed back because an earlier one was not applied yet.
    pub gap: bool,
    /// Whether the consumer was replayed from the stream's start (a gap outlasted
    /// [`NatsProjectionConfig::replay_after`]).
    pub replayed: bool,
}

/// A durable pull consumer of the event stream applying each message to a [`SalesReadModel`],
/// acknowledging it after the model took it.
///
/// The model is idempotent by sequence number and applies strictly in order, so a message
/// delivered again (its acknowledgement was lost, a consumer died holding it, the consumer was
/// replayed) is acknowledged and changes nothing, and one that comes before its predecessor is
/// handed back (`Nak` with a delay) until the predecessor was applied. Several instances may
/// share one durable name; each message goes to one of them.
pub struct NatsProjection {
    js: jetstream::Context,
    model: Arc<dyn SalesReadModel>,
    config: NatsProjectionConfig,
    consumer: Mutex<Option<consumer::PullConsumer>>,
    gap_since: std::sync::Mutex<Option<(u64, Instant)>>,
    failed_rounds: AtomicU64,
}

impl std::fmt::Debug for NatsProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsProjection")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NatsProjection {
    /// A projection over `client` into `model`. [`Error::Config`] for a bad stream config, an
    /// empty durable name or a zero batch size.
    pub fn new(
        client: async_nats::Client,
        model: Arc<dyn SalesReadModel>,
        config: NatsProjectionConfig,
    ) -> Result<Self> {
        config.stream.check()?;
        if config.durable.is_empty() || config.durable.contains(['.', '*', '>', ' ']) {
            return Err(Error::config(
                "durable",
                "must be a non-empty name without '.', '*', '>' or spaces",
            ));
        }
        if config.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        Ok(Self {
            js: jetstream::new(client),
            model,
            config,
            consumer: Mutex::new(None),
            gap_since: std::sync::Mutex::new(None),
            failed_rounds: AtomicU64::new(0),
        })
    }

    /// Connects to `url`; see [`NatsProjection::new`].
    pub async fn connect(
        url: &str,
        model: Arc<dyn SalesReadModel>,
        config: NatsProjectionConfig,
    ) -> Result<Self> {
        Self::new(super::connect(url).await?, model, config)
    }

    /// The settings.
    pub fn config(&self) -> &NatsProjectionConfig {
        &self.config
    }

    /// The read model this projection keeps.
    pub fn model(&self) -> &Arc<dyn SalesReadModel> {
        &self.model
    }

    /// How many rounds of [`NatsProjection::run`] failed so far.
    pub fn failed_rounds(&self) -> u64 {
        self.failed_rounds.load(Ordering::Relaxed)
    }

    fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.config.durable.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            ..pull::Config::default()
        }
    }

    /// The durable consumer, created (with the stream, if missing) when this projection has none
    /// yet or lost it; an existing one keeps its position.
    pub async fn ensure_consumer(&self) -> Result<consumer::PullConsumer> {
        let mut slot = self.consumer.lock().await;
        if let Some(consumer) = slot.as_ref() {
            return Ok(consumer.clone());
        }
        let stream = self.config.stream.ensure(&self.js).await?;
        let consumer = stream
            .get_or_create_consumer(&self.config.durable, self.consumer_config())
            .await
            .map_err(unavailable)?;
        *slot = Some(consumer.clone());
        Ok(consumer)
    }

    /// Deletes the durable consumer and creates it again at the stream's start: every message
    /// is delivered again, and what the model holds is skipped. For a model that lost data.
    pub async fn replay(&self) -> Result<()> {
        let mut slot = self.consumer.lock().await;
        *slot = None;
        let stream = self.config.stream.ensure(&self.js).await?;
        if let Err(e) = stream.delete_consumer(&self.config.durable).await {
            tracing::debug!(error = %e, "no consumer to delete before the replay");
        }
        let consumer = stream
            .create_consumer(self.consumer_config())
            .await
            .map_err(unavailable)?;
        *slot = Some(consumer);
        tracing::info!(durable = %self.config.durable, "sales projection replays the stream");
        Ok(())
    }

    async fn forget_consumer(&self) {
        *self.consumer.lock().await = None;
    }

    /// One round: fetch up to `batch_size` messages (waiting up to `fetch_wait` for the first)
    /// and apply them in order. A failure forgets the consumer, so the next round finds it again
    /// (or creates it, if the stream was lost and created anew).
    pub async fn run_once(&self) -> Result<NatsProjectionRound> {
        let round = self.round().await;
        if round.is_err() {
            self.forget_consumer().await;
        }
        round
    }

    async fn round(&self) -> Result<NatsProjectionRound> {
        let consumer = self.ensure_consumer().await?;
        let mut batch = consumer
            .batch()
            .max_messages(self.config.batch_size)
            .expires(self.config.fetch_wait)
            .messages()
            .await
            .map_err(unavailable)?;
        let mut round = NatsProjectionRound::default();
        let retry = AckKind::Nak(Some(self.config.retry.min));
        while let Some(message) = batch.next().await {
            let message = message.map_err(unavailable)?;
            if round.gap {
                // Hand the rest back too, so it comes again after the missing entry.
                message.ack_with(retry).await.map_err(unavailable)?;
                continue;
            }
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str());
            let entry = entry::parse(NATS, id, &message.payload)?;
            match self.model.apply(&entry).await? {
                Applied::Applied => round.applied += 1,
                Applied::Duplicate => round.duplicates += 1,
                Applied::Gap { expected } => {
                    round.gap = true;
                    message.ack_with(retry).await.map_err(unavailable)?;
                    if self.gap_outlasted(expected) {
                        drop(batch);
                        self.replay().await?;
                        round.replayed = true;
                        return Ok(round);
                    }
                    continue;
                }
            }
            message.ack().await.map_err(unavailable)?;
        }
        if !round.gap {
            *self.gap_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(round)
    }

    /// Notes a gap before `expected`; `true` once the same gap has lasted `replay_after`.
    fn gap_outlasted(&self, expected: u64) -> bool {
        let mut since = self.gap_since.lock().unwrap_or_else(|e| e.into_inner());
        match *since {
            Some((seq, at)) if seq == expected => {
                if at.elapsed() >= self.config.replay_after {
                    *since = None;
                    true
                } else {
                    false
                }
            }
            _ => {
                *since = Some((expected, Instant::now()));
                false
            }
        }
    }

    /// Rounds until `shutdown` completes. A failure (the server down) is logged and retried
    /// after a pause that doubles with every failure in a row; a gap waits `retry.min`.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let consumer = format!("nats durable {}", self.config.durable);
        crate::retry::run_rounds(
            &consumer,
            self.config.retry,
            &self.failed_rounds,
            shutdown,
            || async { self.run_once().await.map(|round| round.gap) },
        )
        .await;
    }

    /// The read model of `event`.
    pub async fn totals(&self, event: EventId) -> Result<ticketing_core::domain::EventTotals> {
        self.model.totals(event).await
    }
}
