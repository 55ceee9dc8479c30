//! [`RedisProjection`]: a consumer of the event stream keeping sold counts and revenue per event
//! and per zone in Redis hashes.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{FromRedisValue, RedisError, Value};
use ticketing_core::domain::{EventId, EventTotals, OutboxEvent, SalesChange};
use ticketing_core::ports::SalesReadModel;
use ticketing_core::{Error, Result};

use super::StreamKeys;
use super::read_model::RedisSalesReadModel;
use crate::connection::{RedisConnection, RedisConnectionConfig};
use crate::error::RedisLockError;

/// Settings of a [`RedisProjection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// The sink's key prefix (no braces).
    pub key_prefix: String,
    /// The consumer group; one read model per group.
    pub group: String,
    /// This consumer's name in the group; unique per running consumer.
    pub consumer: String,
    /// Most entries read per call.
    pub batch_size: u32,
    /// How long a read waits for new entries (`XREADGROUP … BLOCK`). The connection's response
    /// timeout must be longer, or every idle read fails as timed out:
    /// [`RedisProjection::connect`] sets it to [`ProjectionConfig::response_timeout`].
    pub block: Duration,
    /// Entries another consumer received but did not acknowledge for this long are claimed
    /// (`XAUTOCLAIM`): that consumer is presumed dead.
    pub claim_min_idle: Duration,
    /// Pause before reading again after a gap (an earlier entry still pending elsewhere), and
    /// after a first failure.
    pub retry_interval: Duration,
    /// Longest pause between failed rounds: the pause doubles from `retry_interval` with every
    /// failure in a row, up to this, so an outage is not hammered (nor logged) many times a
    /// second.
    pub retry_max: Duration,
}

/// How much longer than [`ProjectionConfig::block`] the projection's connection waits for an
/// answer: a blocked read answers after `block` plus a round trip, which under load can take a
/// while.
const RESPONSE_MARGIN: Duration = Duration::from_secs(2);

impl ProjectionConfig {
    /// The response timeout the projection's connection needs: `block` plus a 2 s margin for
    /// the round trip of a read that blocked the whole time.
    pub fn response_timeout(&self) -> Duration {
        self.block + RESPONSE_MARGIN
    }

    /// The pause after `failures` failed rounds in a row (at least 1): `retry_interval`, doubled
    /// per further failure, capped at `retry_max`.
    pub fn failure_pause(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.retry_interval
            .saturating_mul(1 << doublings)
            .min(self.retry_max.max(self.retry_interval))
    }
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            key_prefix: "tkt:".into(),
            group: "sales-projection".into(),
            consumer: format!("projection-{}", uuid::Uuid::new_v4().simple()),
            batch_size: 200,
            block: Duration::from_millis(1000),
            claim_min_idle: Duration::from_secs(30),
            retry_interval: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// What one [`RedisProjection::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionRound {
    /// Entries claimed from consumers idle longer than `claim_min_idle`.
    pub claimed: u64,
    /// Entries applied to the read model.
    pub applied: u64,
    /// Entries already applied before (acknowledged, nothing changed).
    pub duplicates: u64,
    /// Whether an entry was held back because an earlier one was not applied yet.
    pub gap: bool,
}

/// A consumer of the event stream in a consumer group, keeping a read model: per event and per
/// zone, the tickets pending, sold (PAID), expired, cancelled and refunded, and the revenue.
///
/// Each entry is applied by one Lua call that also records the last applied seq and acknowledges
/// the entry (`XACK`), so applying is atomic and idempotent by seq: a redelivered or republished
/// entry is acknowledged and changes nothing. Entries are applied strictly in seq order; an entry
/// that arrives before its predecessor (several consumers split a group's entries) stays pending
/// and is taken up again. A consumer that died with entries pending is relieved of them by
/// `XAUTOCLAIM` once they were idle for [`ProjectionConfig::claim_min_idle`].
pub struct RedisProjection {
    conn: RedisConnection,
    config: ProjectionConfig,
    keys: StreamKeys,
    model: RedisSalesReadModel,
    failed_rounds: AtomicU64,
}

impl std::fmt::Debug for RedisProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisProjection")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One stream entry: its id and, unless it was deleted meanwhile, its fields.
type RawEntry = (String, Option<Vec<(String, String)>>);

/// The deltas an event makes to the read model: per-event fields and per-zone fields.
type Deltas = (Vec<(&'static str, i64)>, Vec<(String, i64)>);

impl RedisProjection {
    /// A consumer over its own connection (blocking reads hold it), whose response timeout must
    /// be above `config.block` (see [`ProjectionConfig::response_timeout`]). [`Error::Config`]
    /// for a prefix with braces, an empty group or consumer name, or a zero batch size.
    pub fn new(conn: impl Into<RedisConnection>, config: ProjectionConfig) -> Result<Self> {
        if config.group.is_empty() || config.consumer.is_empty() {
            return Err(Error::config("group", "group and consumer must be named"));
        }
        if config.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        let conn = conn.into();
        Ok(Self {
            model: RedisSalesReadModel::new(conn.clone(), &config.key_prefix)?,
            conn,
            keys: StreamKeys::new(&config.key_prefix)?,
            config,
            failed_rounds: AtomicU64::new(0),
        })
    }

    /// Connects to `nodes` (one URL, or a cluster's seed nodes separated by commas; see
    /// [`RedisConnection::connect`]) with a response timeout of
    /// [`ProjectionConfig::response_timeout`], so an idle blocked read is not taken for a failure
    /// (with the default 500 ms and a 1 s `block`, every idle round failed).
    pub async fn connect(nodes: &str, config: ProjectionConfig) -> Result<Self> {
        let timeouts = RedisConnectionConfig {
            response_timeout: config.response_timeout(),
            ..RedisConnectionConfig::default()
        };
        let conn = RedisConnection::connect(nodes, timeouts).await?;
        Self::new(conn, config)
    }

    /// How many rounds of [`RedisProjection::run`] failed so far (for metrics and tests).
    pub fn failed_rounds(&self) -> u64 {
        self.failed_rounds.load(Ordering::Relaxed)
    }

    /// The settings.
    pub fn config(&self) -> &ProjectionConfig {
        &self.config
    }

    /// Creates the consumer group at the start of the stream (and the stream if missing);
    /// an existing group is left as it is.
    pub async fn ensure_group(&self) -> Result<()> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.stream())
            .arg(&self.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other.map_err(RedisLockError::from)?),
        }
    }

    /// One round: claim entries of dead consumers, apply this consumer's pending entries, then
    /// (if none is left) wait up to `block` for new ones and apply them. A missing group (Redis
    /// lost its data) is created again.
    pub async fn run_once(&self) -> Result<ProjectionRound> {
        match self.round().await {
            Err(RoundError::NoGroup) => {
                self.ensure_group().await?;
                Ok(ProjectionRound::default())
            }
            Err(RoundError::Other(e)) => Err(e),
            Ok(round) => Ok(round),
        }
    }

    async fn round(&self) -> Result<ProjectionRound, RoundError> {
        let mut round = ProjectionRound {
            claimed: self.claim_idle().await?,
            ..ProjectionRound::default()
        };
        let pending = self.read("0", None).await?;
        let had_pending = !pending.is_empty();
        self.apply_all(pending, &mut round).await?;
        if !had_pending || (!round.gap && round.applied + round.duplicates > 0) {
            let fresh = self.read(">", Some(self.config.block)).await?;
            self.apply_all(fresh, &mut round).await?;
        }
        Ok(round)
    }

    /// Rounds until `shutdown` completes. A failure (Redis down) is logged and retried after
    /// [`ProjectionConfig::failure_pause`], which grows with every failure in a row; a gap
    /// waits `retry_interval`.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let delay = match self.run_once().await {
                Ok(round) => {
                    failures = 0;
                    if round.gap {
                        self.config.retry_interval
                    } else {
                        Duration::ZERO
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    self.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    let pause = self.config.failure_pause(failures);
                    tracing::warn!(consumer = %self.config.consumer, %error, failures, ?pause, "projection round failed");
                    pause
                }
            };
            if tokio::time::timeout(delay, &mut shutdown).await.is_ok() {
                return;
            }
        }
    }

    /// The last seq applied to the read model (0 before the first).
    pub async fn last_applied(&self) -> Result<u64> {
        self.model.last_applied().await
    }

    /// The read model of `event` (all zeros when nothing of it was applied).
    pub async fn totals(&self, event: EventId) -> Result<EventTotals> {
        self.model.totals(event).await
    }

    /// Takes over entries idle longer than `claim_min_idle` (ids only; they are read next as
    /// this consumer's pending entries).
    async fn claim_idle(&self) -> Result<u64, RoundError> {
        let mut start = "0-0".to_owned();
        let mut claimed = 0;
        // Bounded: at most a few batches per round.
        for _ in 0..10 {
            let reply: Vec<Value> = redis::cmd("XAUTOCLAIM")
                .arg(self.keys.stream())
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg(self.config.claim_min_idle.as_millis() as u64)
                .arg(&start)
                .arg("COUNT")
                .arg(self.config.batch_size)
                .arg("JUSTID")
                .query_async(&mut self.conn.clone())
                .await?;
            let mut parts = reply.into_iter();
            let next: String = match parts.next() {
                Some(v) => String::from_redis_value(v).map_err(RedisError::from)?,
                None => break,
            };
            let ids: Vec<String> = match parts.next() {
                Some(v) => Vec::from_redis_value(v).map_err(RedisError::from)?,
                None => Vec::new(),
            };
            claimed += ids.len() as u64;
            if next == "0-0" {
                break;
            }
            start = next;
        }
        if claimed > 0 {
            tracing::info!(consumer = %self.config.consumer, claimed, "claimed entries of an idle consumer");
        }
        Ok(claimed)
    }

    /// `XREADGROUP` from `id` (`0`: this consumer's pending entries; `>`: new ones).
    async fn read(&self, id: &str, block: Option<Duration>) -> Result<Vec<RawEntry>, RoundError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg("COUNT")
            .arg(self.config.batch_size);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(self.keys.stream()).arg(id);
        let reply: Option<Vec<(String, Vec<RawEntry>)>> =
            cmd.query_async(&mut self.conn.clone()).await?;
        Ok(reply
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .collect())
    }

    async fn apply_all(
        &self,
        entries: Vec<RawEntry>,
        round: &mut ProjectionRound,
    ) -> Result<(), RoundError> {
        for (id, fields) in entries {
            let Some(fields) = fields else {
                // Deleted (trimmed) before it was applied: acknowledge it; the seq it carried is
                // a gap the next entry reports.
                tracing::warn!(%id, "event stream entry was trimmed before it was applied");
                let _: i64 = redis::cmd("XACK")
                    .arg(self.keys.stream())
                    .arg(&self.config.group)
                    .arg(&id)
                    .query_async(&mut self.conn.clone())
                    .await?;
                continue;
            };
            match self.apply(&id, &fields).await?.as_str() {
                "applied" => round.applied += 1,
                "duplicate" => round.duplicates += 1,
                "gap" => {
                    round.gap = true;
                    return Ok(());
                }
                other => {
                    return Err(Error::internal(format!("project.lua answered {other:?}")).into());
                }
            }
        }
        Ok(())
    }

    async fn apply(&self, id: &str, fields: &[(String, String)]) -> Result<String, RoundError> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| Error::internal(format!("stream entry {id} has no {name}")))
        };
        let seq: u64 = field("seq")?
            .parse()
            .map_err(|_| Error::internal(format!("stream entry {id} has a bad seq")))?;
        let event: OutboxEvent = serde_json::from_str(field("payload")?)
            .map_err(|e| Error::internal(format!("stream entry {id} payload: {e}")))?;
        Ok(self
            .model
            .apply_as(seq, &event, Some((&self.config.group, id)))
            .await?)
    }
}

/// The changes `event` makes to the read model, as the fields of its hashes: per-event fields
/// and `<zone>:<field>` fields.
pub(crate) fn deltas(event: &OutboxEvent) -> Deltas {
    let change = SalesChange::of(event);
    (
        change
            .event
            .iter()
            .map(|(counter, delta)| (counter.as_str(), *delta))
            .collect(),
        change
            .zones
            .iter()
            .map(|(zone, counter, delta)| (format!("{zone}:{}", counter.as_str()), *delta))
            .collect(),
    )
}

/// A round's failure: the group is missing (recreate it) or anything else.
enum RoundError {
    NoGroup,
    Other(Error),
}

impl From<Error> for RoundError {
    fn from(e: Error) -> Self {
        RoundError::Other(e)
    }
}

impl From<RedisError> for RoundError {
    fn from(e: RedisError) -> Self {
        if e.code() == Some("NOGROUP") {
            RoundError::NoGroup
        } else {
            RoundError::Other(RedisLockError::from(e).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use ticketing_core::domain::{
        Currency, CustomerId, Money, OUTBOX_SCHEMA_VERSION, OrderId, OutboxKind, OutboxLine,
        TicketId, VenueId,
    };
    use uuid::Uuid;

    fn event(kind: OutboxKind) -> OutboxEvent {
        let eur = Currency::new("EUR").unwrap();
        let line = |zone: &str, minor| OutboxLine {
            ticket_id: TicketId::from_uuid(Uuid::now_v7()),
            zone: zone.parse().unwrap(),
            seat: None,
            price: Money::new(minor, eur),
        };
        let lines = vec![line("A", 100), line("A", 100), line("GA", 30)];
        OutboxEvent {
            version: OUTBOX_SCHEMA_VERSION,
            kind,
            order_id: OrderId::from_uuid(Uuid::now_v7()),
            event_id: EventId::from_uuid(Uuid::now_v7()),
            venue_id: VenueId::from_uuid(Uuid::now_v7()),
            customer: "c".parse::<CustomerId>().unwrap(),
            ticket_ids: lines.iter().map(|l| l.ticket_id).collect(),
            seats: Vec::new(),
            amount: Money::new(230, eur),
            at: Utc::now(),
            lines,
            payment: None,
            deadline: None,
            channel: None,
            offer: None,
        }
    }

    #[test]
    fn failure_pauses_double_up_to_the_cap_and_the_timeout_covers_a_blocked_read() {
        let config = ProjectionConfig {
            retry_interval: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            ..ProjectionConfig::default()
        };
        let pauses: Vec<u64> = (1..=8)
            .map(|n| config.failure_pause(n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(config.failure_pause(u32::MAX), Duration::from_secs(5));
        // A cap below the first pause does not shorten it.
        let small_cap = ProjectionConfig {
            retry_max: Duration::from_millis(10),
            ..config.clone()
        };
        assert_eq!(small_cap.failure_pause(3), Duration::from_millis(200));
        assert!(config.response_timeout() >= config.block + Duration::from_secs(2));
    }

    #[test]
    fn a_payment_moves_pending_to_sold_per_event_and_zone() {
        let (totals, zones) = deltas(&event(OutboxKind::TicketPaid));
        assert_eq!(totals, [("pending", -3), ("sold", 3), ("revenue", 230)]);
        assert_eq!(
            zones,
            [
                ("A:pending".to_owned(), -2),
                ("A:sold".to_owned(), 2),
                ("A:revenue".to_owned(), 200),
                ("GA:pending".to_owned(), -1),
                ("GA:sold".to_owned(), 1),
                ("GA:revenue".to_owned(), 30),
            ]
        );
    }

    #[test]
    fn a_refund_takes_sold_and_revenue_back() {
        let (totals, zones) = deltas(&event(OutboxKind::TicketRefunded));
        assert_eq!(totals, [("sold", -3), ("revenue", -230), ("refunded", 3)]);
        assert!(zones.contains(&("GA:revenue".to_owned(), -30)));
        let (totals, _) = deltas(&event(OutboxKind::TicketExpired));
        assert_eq!(totals, [("pending", -3), ("expired", 3)]);
    }
}
