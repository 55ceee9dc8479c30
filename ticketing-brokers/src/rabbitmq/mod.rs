//! The event stream on RabbitMQ: [`RabbitEventSink`] (the relay's sink) and
//! [`RabbitProjection`] (a consumer keeping the sales read model), on a **RabbitMQ stream**
//! (a queue declared with `x-queue-type: stream`) over AMQP 0-9-1.
//!
//! **Why a stream, not a classic or quorum queue.** A queue forgets a message once a consumer
//! acknowledged it, so a read model that lost its data (a Redis restart) could never be rebuilt
//! from the broker, and a second read model would need a second queue filled from the start. A
//! stream is an append-only log like a Redis stream or a JetStream stream: every consumer reads
//! it from an offset of its own (`x-stream-offset`), from the start when its model is new or
//! lost. Publishing is the same either way: publisher confirms, message id = sequence number.
//!
//! **Duplicates are the consumers' to skip.** AMQP has no deduplication on publish (the stream
//! protocol's publisher ids are not AMQP), so a republished batch is appended again; each
//! message carries its sequence number (the message id and a `seq` header) and the read model,
//! idempotent by sequence number, skips repeats. The sink never leaves an entry out: with no
//! conditional publish, skipping what "the stream holds" could skip over a message lost half
//! way through a batch.
//!
//! **The high-water mark** is kept beside the stream: after every confirmed batch the sink
//! publishes the batch's last sequence number, confirmed, to a classic queue of length one
//! (`<stream>.high-water`, `x-max-length: 1`, the older message dropped). A broker that lost its
//! data (a node reset, the definitions gone) has that queue missing or empty, the sink answers
//! 0, and the relay publishes everything again. Reading it is `basic.get` and a requeueing
//! `basic.nack`: it stays for the next read.

mod projection;
mod sink;

pub use projection::{RabbitProjection, RabbitProjectionConfig, RabbitProjectionRound};
pub use sink::RabbitEventSink;

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use ticketing_core::{BoxError, Error, Result};

/// The adapter name in errors.
pub(crate) const RABBITMQ: &str = "rabbitmq";

/// Where the event stream lives on the RabbitMQ broker; the sink and its projections use the
/// same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitStreamConfig {
    /// The stream queue's name, e.g. `ticketing.events`.
    pub stream: String,
    /// Retention: the stream keeps at most about this many bytes (`x-max-length-bytes`; whole
    /// segments go). `None` keeps everything. A consumer must stay within it, or it misses
    /// entries and stops at the gap.
    pub max_length_bytes: Option<u64>,
}

impl Default for RabbitStreamConfig {
    fn default() -> Self {
        Self {
            stream: "ticketing.events".into(),
            max_length_bytes: None,
        }
    }
}

impl RabbitStreamConfig {
    /// The queue that keeps the last sequence number published.
    pub fn high_water_queue(&self) -> String {
        format!("{}.high-water", self.stream)
    }

    /// [`Error::Config`] for an empty name or one longer than AMQP allows.
    fn check(&self) -> Result<()> {
        if self.stream.is_empty() || self.high_water_queue().len() > 255 {
            return Err(Error::config(
                "stream",
                "must be a queue name of 1 to 240 characters",
            ));
        }
        Ok(())
    }

    /// Declares the stream and the high-water queue (durable; an existing one is left as it is).
    pub(crate) async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let mut stream = FieldTable::default();
        stream.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("stream".into()),
        );
        if let Some(bytes) = self.max_length_bytes {
            stream.insert(
                "x-max-length-bytes".into(),
                AMQPValue::LongLongInt(bytes.min(i64::MAX as u64) as i64),
            );
        }
        channel
            .queue_declare(self.stream.as_str().into(), durable, stream)
            .await?;
        let mut high_water = FieldTable::default();
        high_water.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
        channel
            .queue_declare(self.high_water_queue().as_str().into(), durable, high_water)
            .await?;
        Ok(())
    }
}

/// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`).
pub(crate) async fn connect(url: &str) -> Result<Connection> {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(unavailable)
}

/// Closes `conn`, waiting at most a second: a connection to a broker that died never hears its
/// close answered, and waiting for it would hang the caller.
pub(crate) async fn close(conn: &Connection, reason: &str) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        conn.close(0, reason.into()),
    )
    .await;
}

/// A RabbitMQ failure the caller may retry: the broker down, a closed channel, a refused
/// publish.
pub(crate) fn unavailable(e: impl Into<BoxError>) -> Error {
    Error::unavailable(RABBITMQ, e)
}
