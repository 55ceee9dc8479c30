//! [`RedisEventSink`]: the outbox relay's sink on a Redis stream.

use async_trait::async_trait;
use redis::ScriptInvocation;
use ticketing_core::domain::OutboxEntry;
use ticketing_core::ports::EventSink;
use ticketing_core::{Error, Result};

use super::{StreamKeys, StreamScripts};
use crate::connection::{RedisConnection, RedisConnectionConfig};
use crate::error::RedisLockError;

/// Settings of a [`RedisEventSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisEventSinkConfig {
    /// Put in front of every key (no braces), e.g. `"tkt:"`; the projection must use the same.
    pub key_prefix: String,
    /// Approximate `MAXLEN` the stream is trimmed to after each publish; `None` keeps every entry.
    /// Trim only to a length every consumer group stays well within: a consumer that finds an
    /// entry trimmed before it applied it stops at the gap.
    pub max_len: Option<u64>,
}

impl Default for RedisEventSinkConfig {
    fn default() -> Self {
        Self {
            key_prefix: "tkt:".into(),
            max_len: None,
        }
    }
}

/// The [`EventSink`] on Redis Streams: one `XADD` per entry with the entry id `<seq>-0`, a whole
/// batch in one Lua call. A republished entry is refused by Redis (its id is not above the
/// stream's last generated id) and counted as a duplicate, so the stream holds every sequence
/// number once, in order, however often the relay publishes it.
pub struct RedisEventSink {
    conn: RedisConnection,
    keys: StreamKeys,
    max_len: u64,
    scripts: StreamScripts,
}

impl std::fmt::Debug for RedisEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventSink")
            .field("stream", &self.keys.stream())
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisEventSink {
    /// A sink over an existing connection. [`Error::Config`] for a prefix with braces.
    pub fn new(conn: impl Into<RedisConnection>, config: RedisEventSinkConfig) -> Result<Self> {
        Ok(Self {
            conn: conn.into(),
            keys: StreamKeys::new(&config.key_prefix)?,
            max_len: config.max_len.unwrap_or(0),
            scripts: StreamScripts::new(),
        })
    }

    /// Connects to `nodes` (one URL, or a cluster's seed nodes separated by commas; see
    /// [`RedisConnection::connect`]) with default timeouts.
    pub async fn connect(nodes: &str, config: RedisEventSinkConfig) -> Result<Self> {
        let conn = RedisConnection::connect(nodes, RedisConnectionConfig::default()).await?;
        Self::new(conn, config)
    }

    /// The stream's key.
    pub fn stream_key(&self) -> String {
        self.keys.stream()
    }

    /// Publishes `entries` and answers how many were appended and how many were duplicates.
    pub async fn publish_counted(&self, entries: &[OutboxEntry]) -> Result<(u64, u64)> {
        if entries.is_empty() {
            return Ok((0, 0));
        }
        let mut call: ScriptInvocation<'_> = self.scripts.publish.prepare_invoke();
        call.key(self.keys.stream()).arg(self.max_len);
        for entry in entries {
            let payload = serde_json::to_string(&entry.event)
                .map_err(|e| Error::internal(format!("outbox event does not serialise: {e}")))?;
            call.arg(entry.seq)
                .arg(entry.event.event_id.to_string())
                .arg(entry.event.kind.as_str())
                .arg(payload);
        }
        let (published, duplicates): (u64, u64) = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(RedisLockError::from)?;
        if duplicates > 0 {
            tracing::debug!(duplicates, "event stream refused republished entries");
        }
        Ok((published, duplicates))
    }
}

impl RedisEventSink {
    /// Deletes the entries every consumer group has acknowledged (below each group's lowest
    /// pending entry, or up to its last delivered one when none is pending), and returns how
    /// many. Without a consumer group it deletes nothing (see
    /// [`RedisEventSinkConfig::max_len`] for a stream nobody consumes). One script, run by the
    /// host periodically (the example server: every `--prune-interval`); the cost is the
    /// entries deleted.
    pub async fn trim_acknowledged(&self) -> Result<u64> {
        let trimmed: u64 = self
            .scripts
            .trim
            .key(self.keys.stream())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(RedisLockError::from)?;
        Ok(trimmed)
    }
}

#[async_trait]
impl EventSink for RedisEventSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        self.publish_counted(entries).await.map(|_| ())
    }

    async fn high_water_mark(&self) -> Result<Option<u64>> {
        let seq: String = self
            .scripts
            .high_water
            .key(self.keys.stream())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(RedisLockError::from)?;
        seq.parse()
            .map(Some)
            .map_err(|_| Error::internal(format!("event stream top id {seq:?} is not a seq")))
    }
}
