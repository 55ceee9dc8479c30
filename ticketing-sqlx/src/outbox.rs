//! The transactional outbox: one row per state change, numbered in commit order; and the relay's
//! view of it ([`OutboxStore`] on [`MySqlTicketRepository`]): the sent cursor and the lease in the
//! one row of `outbox_relay`.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{MySqlConnection, MySqlPool, Row};
use ticketing_core::domain::{OutboxEntry, OutboxEvent};
use ticketing_core::ports::OutboxStore;
use ticketing_core::{Error, Result};

use crate::MySqlTicketRepository;
use crate::codec::{expand, value_rows};
use crate::error::StoreResult;
use crate::retry::with_retry;

/// Takes `n` sequence numbers; the row stays locked until the transaction ends, so numbers are
/// handed out in commit order. `LAST_INSERT_ID(expr)` returns the new value in the OK packet.
const TAKE_SEQUENCE: &str =
    "UPDATE outbox_sequence SET last_seq = LAST_INSERT_ID(last_seq + ?) WHERE id = 1";

const INSERT_ROWS: &str =
    "INSERT INTO outbox (seq, kind, order_id, recorded_at, payload) VALUES {list}";

/// The last number handed out by a committed transaction (the row is locked until commit).
const SELECT_HEAD: &str = "SELECT last_seq FROM outbox_sequence WHERE id = 1";

const SELECT_AFTER: &str = "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?";

/// The lease as a compare-and-set: taken when free, lapsed at the caller's `now`, or the caller's.
/// The connection reports matched rows (`CLIENT_FOUND_ROWS`), so a renewal that changes nothing
/// still counts 1.
const TAKE_LEASE: &str = "UPDATE outbox_relay SET holder = ?, lease_until = ? \
     WHERE id = 1 AND (holder IS NULL OR holder = ? OR lease_until <= ?)";

const RELEASE_LEASE: &str =
    "UPDATE outbox_relay SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = ?";

/// Entries after the sent cursor. Committed rows only, and numbers are handed out in commit order,
/// so no row can appear later below one read here.
const SELECT_UNSENT: &str = "SELECT seq, payload FROM outbox \
     WHERE seq > (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT ?";

const MARK_SENT: &str =
    "UPDATE outbox_relay SET sent_seq = GREATEST(sent_seq, ?) WHERE id = 1 AND holder = ?";

const REWIND: &str =
    "UPDATE outbox_relay SET sent_seq = LEAST(sent_seq, ?) WHERE id = 1 AND holder = ?";

const SELECT_SENT: &str = "SELECT sent_seq FROM outbox_relay WHERE id = 1";

/// Appends `events` in order. Call it as the last statement before COMMIT: it serialises
/// committing writers on the sequence row, so the shorter it is held the better.
pub(crate) async fn append(conn: &mut MySqlConnection, events: &[OutboxEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    // Everything that needs no number is prepared before the sequence row is locked.
    let payloads = events
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(format!("outbox event does not serialise: {e}")))?;
    let statement = expand(INSERT_ROWS, &value_rows(events.len(), 5));
    let taken = sqlx::query(TAKE_SEQUENCE)
        .bind(events.len() as u64)
        .execute(&mut *conn)
        .await?;
    if taken.rows_affected() != 1 {
        return Err(Error::internal("outbox_sequence has no row; were the migrations run?").into());
    }
    let first = taken.last_insert_id() + 1 - events.len() as u64;
    let mut insert = sqlx::query(statement);
    for (offset, (event, payload)) in events.iter().zip(payloads).enumerate() {
        insert = insert
            .bind(first + offset as u64)
            .bind(event.kind.as_str())
            .bind(event.order_id.as_uuid())
            .bind(event.at)
            .bind(payload);
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// The sequence number of the newest committed entry.
pub(crate) async fn head(pool: &MySqlPool) -> StoreResult<u64> {
    Ok(sqlx::query_scalar(SELECT_HEAD).fetch_one(pool).await?)
}

/// Up to `limit` entries after `after`, in sequence order.
pub(crate) async fn after(
    pool: &MySqlPool,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<OutboxEntry>> {
    let rows = sqlx::query(SELECT_AFTER)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    entries(&rows)
}

fn entries(rows: &[sqlx::mysql::MySqlRow]) -> StoreResult<Vec<OutboxEntry>> {
    rows.iter()
        .map(|row| {
            let payload: String = row.try_get("payload")?;
            let event: OutboxEvent = serde_json::from_str(&payload).map_err(|e| {
                Error::internal(format!("outbox row holds an unreadable event: {e}"))
            })?;
            Ok(OutboxEntry {
                seq: row.try_get("seq")?,
                event,
            })
        })
        .collect()
}

fn relay_row_missing() -> Error {
    Error::internal("outbox_relay has no row; were the migrations run?")
}

async fn take_lease(
    pool: &MySqlPool,
    relay: &str,
    now: DateTime<Utc>,
    ttl: TimeDelta,
) -> StoreResult<bool> {
    let done = sqlx::query(TAKE_LEASE)
        .bind(relay)
        .bind(now + ttl)
        .bind(relay)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn update_cursor(
    pool: &MySqlPool,
    sql: &'static str,
    relay: &str,
    seq: u64,
) -> StoreResult<bool> {
    let done = sqlx::query(sql).bind(seq).bind(relay).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

async fn sent(pool: &MySqlPool) -> StoreResult<u64> {
    let row = sqlx::query(SELECT_SENT)
        .fetch_optional(pool)
        .await?
        .ok_or_else(relay_row_missing)?;
    Ok(row.try_get("sent_seq")?)
}

/// The relay's store on the outbox tables: the cursor and the lease are the one row of
/// `outbox_relay`, each change one compare-and-set `UPDATE` with the caller's clock.
#[async_trait]
impl OutboxStore for MySqlTicketRepository {
    async fn try_acquire_lease(
        &self,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        Ok(with_retry("try_acquire_lease", || {
            take_lease(self.pool(), relay, now, ttl)
        })
        .await?)
    }

    async fn release_lease(&self, relay: &str) -> Result<()> {
        with_retry("release_lease", || async {
            sqlx::query(RELEASE_LEASE)
                .bind(relay)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(with_retry("unsent", || async {
            let rows = sqlx::query(SELECT_UNSENT)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
            entries(&rows)
        })
        .await?)
    }

    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool> {
        Ok(with_retry("mark_sent", || {
            update_cursor(self.pool(), MARK_SENT, relay, up_to)
        })
        .await?)
    }

    async fn rewind(&self, relay: &str, to: u64) -> Result<bool> {
        Ok(with_retry("rewind", || update_cursor(self.pool(), REWIND, relay, to)).await?)
    }

    async fn sent_up_to(&self) -> Result<u64> {
        Ok(with_retry("sent_up_to", || sent(self.pool())).await?)
    }
}
