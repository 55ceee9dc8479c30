//! RabbitMQ test support: the shared broker, a stream per test, reading a stream back.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use ticketing_core::domain::OutboxEntry;

use super::unique;
use crate::rabbitmq::RabbitStreamConfig;

/// The environment variable naming the shared RabbitMQ broker.
pub const RABBITMQ_URL_VAR: &str = "TICKETING_RABBITMQ_URL";

/// The shared broker when [`RABBITMQ_URL_VAR`] is not set.
pub const RABBITMQ_DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The shared broker's URL.
pub fn rabbitmq_url() -> String {
    std::env::var(RABBITMQ_URL_VAR).unwrap_or_else(|_| RABBITMQ_DEFAULT_URL.into())
}

/// A connection to `url`; panics naming [`RABBITMQ_URL_VAR`] when the broker cannot be reached.
pub async fn rabbitmq_connection(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach RabbitMQ at {url}: {e}. Start rabbitmq-server or point {RABBITMQ_URL_VAR} at one."
            )
        })
}

/// A stream of one test alone.
pub fn test_rabbit_stream() -> RabbitStreamConfig {
    RabbitStreamConfig {
        stream: unique("test.events."),
        max_length_bytes: None,
    }
}

/// Deletes the stream and its high-water queue (missing ones are fine).
pub async fn delete_rabbit_stream(url: &str, config: &RabbitStreamConfig) {
    let conn = rabbitmq_connection(url).await;
    for queue in [config.stream.clone(), config.high_water_queue()] {
        let channel = conn.create_channel().await.expect("a channel");
        // A missing queue closes the channel; the next name gets a new one.
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = conn.close(0, "done".into()).await;
}

/// Every message of the stream from its start, as entries, repeats included: read until none
/// came for `idle`.
pub async fn read_rabbit_stream(
    url: &str,
    config: &RabbitStreamConfig,
    idle: Duration,
) -> Vec<OutboxEntry> {
    let conn = rabbitmq_connection(url).await;
    let channel = conn.create_channel().await.expect("a channel");
    channel
        .basic_qos(1000, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-stream-offset".into(),
        AMQPValue::LongString("first".into()),
    );
    let mut consumer = channel
        .basic_consume(
            config.stream.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            arguments,
        )
        .await
        .expect("consume the stream");
    let mut held = Vec::new();
    while let Ok(Some(delivery)) = tokio::time::timeout(idle, consumer.next()).await {
        let delivery = delivery.expect("a delivery");
        let seq = delivery
            .properties
            .message_id()
            .as_ref()
            .expect("a message id")
            .as_str()
            .parse()
            .expect("the message id is the outbox seq");
        held.push(OutboxEntry {
            seq,
            event: serde_json::from_slice(&delivery.data).expect("an outbox event"),
        });
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    let _ = conn.close(0, "done".into()).await;
    held
}
