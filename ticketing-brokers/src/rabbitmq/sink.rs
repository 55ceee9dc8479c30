//! [`RabbitEventSink`]: the outbox relay's sink on a RabbitMQ stream.

use async_trait::async_trait;
use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use ticketing_core::domain::OutboxEntry;
use ticketing_core::ports::EventSink;
use ticketing_core::{Error, Result};
use tokio::sync::Mutex;

use super::{RABBITMQ, RabbitStreamConfig, unavailable};
use crate::entry;

/// The [`EventSink`] on a RabbitMQ stream: one persistent message per entry, message id and
/// `seq` header = sequence number, published with publisher confirms and `mandatory`, returning
/// once the broker confirmed every message (and the high-water mark after them). Repeats are
/// appended and skipped by consumers (see the [module docs](super)).
///
/// Connects lazily and again after any failure, declaring the stream and the high-water queue on
/// every new connection.
pub struct RabbitEventSink {
    url: String,
    config: RabbitStreamConfig,
    link: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for RabbitEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitEventSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The AMQP properties of `seq`'s message: persistent, message id and `seq` header.
pub(crate) fn properties(seq: u64) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "seq".into(),
        AMQPValue::LongLongInt(seq.min(i64::MAX as u64) as i64),
    );
    BasicProperties::default()
        .with_message_id(seq.to_string().into())
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

impl RabbitEventSink {
    /// A sink of the broker at `url`. [`Error::Config`] for a bad stream name; nothing is
    /// connected yet.
    pub fn new(url: &str, config: RabbitStreamConfig) -> Result<Self> {
        config.check()?;
        Ok(Self {
            url: url.into(),
            config,
            link: Mutex::new(None),
        })
    }

    /// Connects to `url` and declares the stream, so a failure shows at start-up.
    pub async fn connect(url: &str, config: RabbitStreamConfig) -> Result<Self> {
        let sink = Self::new(url, config)?;
        sink.channel().await?;
        Ok(sink)
    }

    /// The stream's settings.
    pub fn config(&self) -> &RabbitStreamConfig {
        &self.config
    }

    /// The channel (in confirm mode) of the current connection, connecting and declaring first
    /// when there is none or it closed.
    async fn channel(&self) -> Result<Channel> {
        tokio::time::timeout(CALL_TIMEOUT, self.connect_channel())
            .await
            .unwrap_or_else(|_| Err(timed_out("connecting")))
    }

    async fn connect_channel(&self) -> Result<Channel> {
        let mut link = self.link.lock().await;
        if let Some((conn, channel)) = link.as_ref()
            && conn.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        if let Some((conn, _)) = link.take() {
            super::close(&conn, "reconnecting").await;
        }
        let conn = super::connect(&self.url).await?;
        let channel = conn.create_channel().await.map_err(unavailable)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        self.config.declare(&channel).await.map_err(unavailable)?;
        *link = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// Drops the connection after a failure, so the next call connects and declares again.
    async fn reset(&self) {
        if let Some((conn, _)) = self.link.lock().await.take() {
            super::close(&conn, "failed").await;
        }
    }

    /// Publishes `body` with `properties` to `queue` and waits for the broker's confirm; a
    /// nack or a returned (unroutable: the queue is gone) message is an error.
    async fn confirmed(
        channel: &Channel,
        queue: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<lapin::PublisherConfirm> {
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(unavailable)
    }

    async fn publish_on(&self, channel: &Channel, entries: &[OutboxEntry]) -> Result<()> {
        let mut confirms = Vec::with_capacity(entries.len());
        for e in entries {
            let body = entry::body(e)?;
            confirms.push((
                e.seq,
                Self::confirmed(channel, &self.config.stream, &body, properties(e.seq)).await?,
            ));
        }
        let mut failure = None;
        for (seq, confirm) in confirms {
            if let Err(e) = check(seq, confirm.await) {
                failure.get_or_insert(e);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let mark = Self::confirmed(
            channel,
            &self.config.high_water_queue(),
            last.seq.to_string().as_bytes(),
            properties(last.seq),
        )
        .await?;
        check(last.seq, mark.await)
    }

    async fn read_high_water(&self, channel: &Channel) -> Result<u64> {
        let got = channel
            .basic_get(
                self.config.high_water_queue().as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(unavailable)?;
        let Some(got) = got else {
            return Ok(0);
        };
        let seq = entry::parse_seq(RABBITMQ, std::str::from_utf8(&got.delivery.data).ok());
        got.delivery
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await
            .map_err(unavailable)?;
        seq
    }
}

/// Longest wait for a batch's confirms or the high-water mark: a broker that died may leave a
/// confirm unanswered until the connection notices.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn timed_out(what: &str) -> Error {
    Error::unavailable(
        RABBITMQ,
        format!("no answer within {CALL_TIMEOUT:?} {what}"),
    )
}

/// A confirm's outcome for `seq`: an ack without a returned message is the only success.
fn check(seq: u64, confirm: lapin::Result<lapin::Confirmation>) -> Result<()> {
    let confirm = confirm.map_err(unavailable)?;
    if !confirm.is_ack() {
        return Err(Error::unavailable(
            RABBITMQ,
            format!("the broker refused seq {seq} (nack)"),
        ));
    }
    if confirm.take_message().is_some() {
        return Err(Error::unavailable(
            RABBITMQ,
            format!("seq {seq} was returned unroutable: its queue is gone"),
        ));
    }
    Ok(())
}

#[async_trait]
impl EventSink for RabbitEventSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let channel = self.channel().await?;
        let published = tokio::time::timeout(CALL_TIMEOUT, self.publish_on(&channel, entries))
            .await
            .unwrap_or_else(|_| Err(timed_out("publishing a batch")));
        if published.is_err() {
            self.reset().await;
        }
        published
    }

    /// Read on the current connection; after a failure once more on a new one, which declares
    /// the queues again: a broker that lost them answers 0 instead of "no such queue".
    async fn high_water_mark(&self) -> Result<Option<u64>> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let channel = self.channel().await?;
            let read = tokio::time::timeout(CALL_TIMEOUT, self.read_high_water(&channel))
                .await
                .unwrap_or_else(|_| Err(timed_out("reading the high-water mark")));
            match read {
                Ok(seq) => return Ok(Some(seq)),
                Err(e) => {
                    self.reset().await;
                    if attempts == 2 {
                        return Err(e);
                    }
                }
            }
        }
    }
}
