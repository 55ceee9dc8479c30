//! [`RedisSalesReadModel`]: the sales read model in Redis hashes, the one [`RedisProjection`]
//! keeps, for consumers of other brokers too.
//!
//! [`RedisProjection`]: super::RedisProjection

use std::collections::BTreeMap;

use async_trait::async_trait;
use redis::RedisResult;
use ticketing_core::domain::{EventId, EventTotals, OutboxEntry, OutboxEvent, ZoneCode};
use ticketing_core::ports::{Applied, SalesReadModel};
use ticketing_core::{Error, Result};

use super::projection::deltas;
use super::{StreamKeys, StreamScripts};
use crate::connection::{RedisConnection, RedisConnectionConfig};
use crate::error::RedisLockError;

/// The [`SalesReadModel`] in Redis: the hashes and the last applied seq under
/// `<prefix>{events}:rm:` (the layout of the stream module), changed by one script per entry that
/// checks and records the seq, so applying is atomic and idempotent by seq. A consumer of NATS
/// JetStream or RabbitMQ keeps here the same model the Redis stream's projection keeps.
pub struct RedisSalesReadModel {
    conn: RedisConnection,
    keys: StreamKeys,
    scripts: StreamScripts,
}

impl std::fmt::Debug for RedisSalesReadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSalesReadModel")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RedisSalesReadModel {
    /// The model under `key_prefix` (no braces, else [`Error::Config`]) over `conn`.
    pub fn new(conn: impl Into<RedisConnection>, key_prefix: &str) -> Result<Self> {
        Ok(Self {
            conn: conn.into(),
            keys: StreamKeys::new(key_prefix)?,
            scripts: StreamScripts::new(),
        })
    }

    /// Connects to `nodes` (one URL, or a cluster's seed nodes separated by commas).
    pub async fn connect(nodes: &str, key_prefix: &str) -> Result<Self> {
        let conn = RedisConnection::connect(nodes, RedisConnectionConfig::default()).await?;
        Self::new(conn, key_prefix)
    }

    /// Applies `event` as entry `seq`; with `ack` = (group, stream entry id) also acknowledges
    /// that entry of the Redis stream in the same script. Answers `applied`, `duplicate` or
    /// `gap`.
    pub(crate) async fn apply_as(
        &self,
        seq: u64,
        event: &OutboxEvent,
        ack: Option<(&str, &str)>,
    ) -> RedisResult<String> {
        let (event_deltas, zone_deltas) = deltas(event);
        let (group, id) = ack.unwrap_or(("", ""));
        let mut call = self.scripts.project.prepare_invoke();
        call.key(self.keys.stream())
            .key(self.keys.last_seq())
            .key(self.keys.event_totals(event.event_id))
            .key(self.keys.zone_totals(event.event_id))
            .arg(group)
            .arg(id)
            .arg(seq)
            .arg(event.amount.currency.as_str())
            .arg(event_deltas.len());
        for (name, delta) in event_deltas {
            call.arg(name).arg(delta);
        }
        for (name, delta) in zone_deltas {
            call.arg(name).arg(delta);
        }
        call.invoke_async(&mut self.conn.clone()).await
    }
}

#[async_trait]
impl SalesReadModel for RedisSalesReadModel {
    async fn apply(&self, entry: &OutboxEntry) -> Result<Applied> {
        let answer = self
            .apply_as(entry.seq, &entry.event, None)
            .await
            .map_err(RedisLockError::from)?;
        match answer.as_str() {
            "applied" => Ok(Applied::Applied),
            "duplicate" => Ok(Applied::Duplicate),
            "gap" => Ok(Applied::Gap {
                expected: self.last_applied().await? + 1,
            }),
            other => Err(Error::internal(format!("project.lua answered {other:?}"))),
        }
    }

    /// The last seq applied to the read model (0 before the first).
    async fn last_applied(&self) -> Result<u64> {
        let last: Option<u64> = redis::cmd("GET")
            .arg(self.keys.last_seq())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(RedisLockError::from)?;
        Ok(last.unwrap_or(0))
    }

    /// The read model of `event` (all zeros when nothing of it was applied).
    async fn totals(&self, event: EventId) -> Result<EventTotals> {
        let mut conn = self.conn.clone();
        let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.event_totals(event))
            .query_async(&mut conn)
            .await
            .map_err(RedisLockError::from)?;
        let zone_fields: BTreeMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.keys.zone_totals(event))
            .query_async(&mut conn)
            .await
            .map_err(RedisLockError::from)?;
        let number = |name: &str| -> Result<i64> {
            fields.get(name).map_or(Ok(0), |v| {
                v.parse()
                    .map_err(|_| Error::internal(format!("read model field {name} = {v:?}")))
            })
        };
        let mut totals = EventTotals {
            pending: number("pending")?,
            sold: number("sold")?,
            revenue_minor: number("revenue")?,
            expired: number("expired")?,
            cancelled: number("cancelled")?,
            refunded: number("refunded")?,
            currency: fields.get("currency").cloned(),
            zones: BTreeMap::new(),
        };
        for (field, value) in zone_fields {
            let Some((zone, what)) = field.rsplit_once(':') else {
                continue;
            };
            let zone: ZoneCode = zone
                .parse()
                .map_err(|_| Error::internal(format!("read model zone field {field:?}")))?;
            let entry = totals.zones.entry(zone).or_default();
            match what {
                "pending" => entry.pending = value,
                "sold" => entry.sold = value,
                "revenue" => entry.revenue_minor = value,
                _ => {}
            }
        }
        Ok(totals)
    }
}
