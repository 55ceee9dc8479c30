//! [`NatsEventSink`]: the outbox relay's sink on a JetStream stream.

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{DeleteStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use ticketing_core::domain::OutboxEntry;
use ticketing_core::ports::EventSink;
use ticketing_core::{Error, Result};

use super::{NATS, NatsStreamConfig, unavailable};
use crate::entry;

/// The [`EventSink`] on NATS JetStream: one message per entry, `Nats-Msg-Id` = sequence number,
/// published in order and chained with `Nats-Expected-Last-Sequence`, returning once JetStream
/// acknowledged every message (stored). Entries the stream holds already are left out, so the
/// stream holds every sequence number once however often the relay publishes it (see the
/// [module docs](super)).
pub struct NatsEventSink {
    js: jetstream::Context,
    config: NatsStreamConfig,
}

impl std::fmt::Debug for NatsEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsEventSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Where the stream stands: its last sequence (the expectation of the next publish) and the
/// outbox sequence number of its last message (0 when it holds none).
struct Top {
    stream_seq: u64,
    outbox_seq: u64,
}

impl NatsEventSink {
    /// A sink over `client`. [`Error::Config`] for an empty stream name or a subject with
    /// wildcards. The stream is created on first use.
    pub fn new(client: async_nats::Client, config: NatsStreamConfig) -> Result<Self> {
        config.check()?;
        Ok(Self {
            js: jetstream::new(client),
            config,
        })
    }

    /// Connects to `url` and creates the stream if it is missing.
    pub async fn connect(url: &str, config: NatsStreamConfig) -> Result<Self> {
        let sink = Self::new(super::connect(url).await?, config)?;
        sink.config.ensure(&sink.js).await?;
        Ok(sink)
    }

    /// The stream's settings.
    pub fn config(&self) -> &NatsStreamConfig {
        &self.config
    }

    async fn top(&self) -> Result<Top> {
        let stream = self.config.ensure(&self.js).await?;
        let state = &stream.cached_info().state;
        if state.messages == 0 {
            return Ok(Top {
                stream_seq: state.last_sequence,
                outbox_seq: 0,
            });
        }
        let last = match stream
            .get_last_raw_message_by_subject(&self.config.subject)
            .await
        {
            Ok(last) => last,
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                return Ok(Top {
                    stream_seq: state.last_sequence,
                    outbox_seq: 0,
                });
            }
            Err(e) => return Err(unavailable(e)),
        };
        let id = last
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str());
        let seq = entry::parse_seq(NATS, id)?;
        Ok(Top {
            stream_seq: state.last_sequence.max(last.sequence),
            outbox_seq: seq,
        })
    }
}

#[async_trait]
impl EventSink for NatsEventSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let top = self.top().await?;
        let mut acks = Vec::new();
        let fresh = entries.iter().filter(|e| e.seq > top.outbox_seq);
        // Each message expects the stream's last sequence to be the one the previous got.
        for (expected, entry) in (top.stream_seq..).zip(fresh) {
            let message = PublishMessage::build()
                .payload(entry::body(entry)?.into())
                .message_id(entry.seq.to_string())
                .expected_last_sequence(expected);
            let ack = self
                .js
                .send_publish(self.config.subject.clone(), message)
                .await
                .map_err(unavailable)?;
            acks.push((entry.seq, ack));
        }
        let skipped = entries.len() - acks.len();
        if skipped > 0 {
            tracing::debug!(skipped, "the stream held part of the batch already");
        }
        // Every ack is awaited, so that no later publish of this batch is left in flight when
        // an earlier one failed.
        let mut failure = None;
        for (seq, ack) in acks {
            match ack.await {
                Ok(ack) if ack.duplicate => {
                    failure.get_or_insert_with(|| {
                        Error::unavailable(
                            NATS,
                            format!(
                                "seq {seq} was a duplicate within the stream's window: another \
                                 relay published, or the stream was purged"
                            ),
                        )
                    });
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), PublishErrorKind::WrongLastSequence) => {
                    failure.get_or_insert_with(|| {
                        Error::unavailable(
                            NATS,
                            format!("seq {seq}: the stream moved meanwhile (another publisher, or an earlier message was lost): {e}"),
                        )
                    });
                }
                Err(e) => {
                    failure.get_or_insert_with(|| unavailable(e));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn high_water_mark(&self) -> Result<Option<u64>> {
        Ok(Some(self.top().await?.outbox_seq))
    }
}

impl NatsEventSink {
    /// Deletes the stream (and every consumer of it). For tests and for an operator starting
    /// over; the relay's next round sees the loss and publishes everything again.
    pub async fn delete_stream(&self) -> Result<()> {
        match self.js.delete_stream(&self.config.stream).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e.kind(), DeleteStreamErrorKind::JetStream(ref js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The stream's state (message count, first and last sequence).
    pub async fn stream_state(&self) -> Result<stream::State> {
        let stream = self.config.ensure(&self.js).await?;
        Ok(stream.cached_info().state.clone())
    }
}
