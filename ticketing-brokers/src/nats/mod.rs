//! The event stream on NATS JetStream: [`NatsEventSink`] (the relay's sink) and
//! [`NatsProjection`] (a durable consumer keeping the sales read model).
//!
//! One stream, one subject, one message per outbox entry: the body is the event as JSON, the
//! `Nats-Msg-Id` header the sequence number. The stream is created by whichever side starts
//! first, file-backed, with the server's default duplicate window.
//!
//! **Exactly one message per sequence number.** JetStream's `Nats-Msg-Id` deduplication only
//! lasts the stream's duplicate window (2 minutes by default), and a relay may republish much
//! later (it crashed, its lease lapsed). So the sink also reads the stream's top before each
//! batch (the `Nats-Msg-Id` of its last message), leaves out what the stream holds already,
//! and chains the rest with `Nats-Expected-Last-Sequence`: a message is stored only if the
//! stream's last sequence is the one the previous message got. A publish that lost a message
//! half way (a timeout, a restart) therefore cannot store a later one past the hole, and a
//! second relay publishing at the same time makes one of them fail and try again.

mod projection;
mod sink;

pub use projection::{NatsProjection, NatsProjectionConfig, NatsProjectionRound};
pub use sink::NatsEventSink;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use ticketing_core::{BoxError, Error, Result};

/// The adapter name in errors.
pub(crate) const NATS: &str = "nats";

/// Where the event stream lives on the NATS server; the sink and its projections use the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsStreamConfig {
    /// The JetStream stream's name, e.g. `TICKETING_EVENTS`.
    pub stream: String,
    /// The one subject its messages are published on, e.g. `ticketing.events`.
    pub subject: String,
}

impl Default for NatsStreamConfig {
    fn default() -> Self {
        Self {
            stream: "TICKETING_EVENTS".into(),
            subject: "ticketing.events".into(),
        }
    }
}

impl NatsStreamConfig {
    /// The stream's settings: file storage, one subject, kept until deleted.
    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.subject.clone()],
            storage: stream::StorageType::File,
            ..stream::Config::default()
        }
    }

    /// [`Error::Config`] for an empty name or subject, or a subject with wildcards.
    fn check(&self) -> Result<()> {
        if self.stream.is_empty() || self.stream.contains(['.', '*', '>', ' ']) {
            return Err(Error::config(
                "stream",
                "must be a non-empty name without '.', '*', '>' or spaces",
            ));
        }
        if self.subject.is_empty() || self.subject.contains(['*', '>', ' ']) {
            return Err(Error::config(
                "subject",
                "must be one subject, without wildcards or spaces",
            ));
        }
        Ok(())
    }

    /// The stream, created if missing.
    pub(crate) async fn ensure(&self, js: &jetstream::Context) -> Result<stream::Stream> {
        js.get_or_create_stream(self.stream_config())
            .await
            .map_err(unavailable)
    }
}

/// Connects to the NATS server at `url` (e.g. `nats://127.0.0.1:4222`), failing fast when it
/// cannot be reached and reconnecting for ever afterwards (the client buffers while it does).
pub async fn connect(url: &str) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(unavailable)
}

/// A NATS failure the caller may retry: the server down, a timeout, a refused publish.
pub(crate) fn unavailable(e: impl Into<BoxError>) -> Error {
    Error::unavailable(NATS, e)
}
