//! Test support (feature `testing`): the shared brokers' URLs, a stream or queue of a test
//! alone, private broker processes for the chaos tests, and librdkafka's mock Kafka cluster.
//!
//! URLs come from the environment at run time; a test that cannot reach its broker fails with a
//! message naming the variable, it never skips.

#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "rabbitmq")]
mod rabbitmq;

#[cfg(feature = "kafka")]
pub use kafka::KafkaMock;
#[cfg(feature = "nats")]
pub use nats::{NATS_DEFAULT_URL, NATS_URL_VAR, PrivateNats, nats_client, nats_url, test_stream};
#[cfg(feature = "rabbitmq")]
pub use rabbitmq::{
    PrivateRabbit, RABBITMQ_DEFAULT_URL, RABBITMQ_URL_VAR, delete_rabbit_stream,
    rabbitmq_connection, rabbitmq_url, read_rabbit_stream, test_rabbit_stream,
};

use std::net::TcpListener;

use uuid::Uuid;

/// A name no other test uses: `prefix` and a random suffix.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", Uuid::new_v4().simple())
}

/// A port that is free now and outside Linux' ephemeral range (32768–60999), so that no
/// outgoing connection takes it as its source port while its server is down between a kill and
/// a restart on the same port.
pub fn free_port() -> u16 {
    loop {
        let port = 20_000 + (Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
