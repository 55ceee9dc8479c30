//! The transactional outbox: one row per state change, written by the change's transaction without
//! any shared lock, and numbered in publication order afterwards; and the relay's view of it
//! ([`OutboxStore`] on [`MySqlTicketRepository`]): the sent cursor and the lease in the one row
//! of `outbox_relay`.
//!
//! Writers insert rows with an `AUTO_INCREMENT` id and no sequence number. [`number_committed`]
//! gives the committed, unnumbered rows their numbers in id order, one numbering transaction at a
//! time (they queue on the `outbox_relay` row). Readers that promise sequence order (the relay's
//! `unsent`, `outbox_after`, `outbox_head`) number first. docs/DESIGN.md, "The event stream",
//! argues why no row is skipped and one order's changes keep their order.

pub(crate) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{MySqlConnection, MySqlPool, Row};
use ticketing_core::domain::{OutboxEntry, OutboxEvent};
use ticketing_core::ports::OutboxStore;
use ticketing_core::{Error, Result};

use crate::MySqlTicketRepository;
use crate::error::StoreResult;
use crate::pool::begin;
use crate::retry::with_retry;

/// Rows numbered per numbering transaction.
const NUMBERING_CHUNK: u32 = 1_000;

/// Most rows the relay numbers per batch it reads ([`OutboxStore::unsent`]), in chunks. Far more
/// than a batch, so numbering never trails the commits while the publishing does: readers that
/// number everything first (a seat-lock rebuild's `outbox_head`, inside the first purchase of an
/// event) then find little left to number. Bounded, so that one relay round stays short even
/// after the relay was off for hours.
const NUMBERING_AHEAD: u32 = 20 * NUMBERING_CHUNK;

/// Appends `events` in order, without a number and without taking any lock another writer waits
/// for: the rows get theirs from [`number_committed`] once this transaction committed.
pub(crate) async fn append(conn: &mut MySqlConnection, events: &[OutboxEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let payloads = events
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(format!("outbox event does not serialise: {e}")))?;
    sql::insert_rows(events.iter().zip(payloads))
        .build()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Numbers up to `limit` committed, unnumbered rows in id order, continuing from the last number
/// given; returns how many it numbered. Numbering transactions queue on the `outbox_relay` row,
/// so each one sees every row the previous one numbered and numbers strictly after it.
///
/// The transaction runs in a task of its own, so a caller that is cancelled (a relay task
/// aborted, a request dropped) cannot stop it half-way: a future dropped inside `BEGIN` can hand
/// its connection back to the pool with the server's transaction open, and the next `BEGIN` on it
/// then fails with 1568 ("transaction characteristics can't be changed").
pub(crate) async fn number_committed(pool: &MySqlPool, limit: u32) -> StoreResult<u32> {
    let pool = pool.clone();
    tokio::spawn(async move { number_committed_once(&pool, limit).await })
        .await
        .map_err(|e| Error::internal(format!("outbox numbering task failed: {e}")))?
}

async fn number_committed_once(pool: &MySqlPool, limit: u32) -> StoreResult<u32> {
    let mut tx = begin(pool).await?;
    let last: u64 = sqlx::query_scalar(sql::LOCK_NUMBERING)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(relay_row_missing)?;
    let ids: Vec<u64> = sqlx::query_scalar(sql::SELECT_UNNUMBERED)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    if ids.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    // The list is padded to a power of two with the last id (FIELD answers its first position,
    // IN ignores repeats), so a relay numbering batches of every size prepares a handful of
    // statements instead of one per size (see `STATEMENT_CACHE_CAPACITY`).
    let last_id = ids[ids.len() - 1];
    let mut padded = ids.clone();
    padded.resize(ids.len().next_power_of_two(), last_id);
    let numbered = sql::number_rows(last, &padded)
        .build()
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if numbered != ids.len() as u64 {
        return Err(Error::internal(format!(
            "numbered {numbered} of {} outbox rows; another numbering ran unlocked",
            ids.len()
        ))
        .into());
    }
    sqlx::query(sql::SET_NUMBERED)
        .bind(last + ids.len() as u64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len() as u32)
}

/// Numbers every committed row that has no number yet, a chunk per transaction.
pub(crate) async fn number_all_committed(pool: &MySqlPool) -> StoreResult<()> {
    while number_committed(pool, NUMBERING_CHUNK).await? == NUMBERING_CHUNK {}
    Ok(())
}

/// Numbers committed rows, a chunk per transaction, until none is left or at least `rows` are.
async fn number_ahead(pool: &MySqlPool, rows: u32) -> StoreResult<()> {
    let mut numbered = 0;
    while numbered < rows {
        let chunk = number_committed(pool, NUMBERING_CHUNK).await?;
        numbered += chunk;
        if chunk < NUMBERING_CHUNK {
            break;
        }
    }
    Ok(())
}

/// The number of the newest entry, after numbering every committed row: an entry committed
/// after this call returns gets a greater one.
pub(crate) async fn head(pool: &MySqlPool) -> StoreResult<u64> {
    number_all_committed(pool).await?;
    Ok(sqlx::query_scalar(sql::SELECT_HEAD)
        .fetch_optional(pool)
        .await?
        .ok_or_else(relay_row_missing)?)
}

/// Up to `limit` entries after `after`, in sequence order, after numbering every committed row.
pub(crate) async fn after(
    pool: &MySqlPool,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<OutboxEntry>> {
    number_all_committed(pool).await?;
    let rows = sqlx::query(sql::SELECT_AFTER)
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

/// Deletes up to `limit` published entries recorded before `before`, as a prefix by number: it
/// reads the oldest published entries with their time, keeps the leading run older than
/// `before`, and deletes up to its last number. Both statements are ranges of `uq_outbox_seq`.
async fn prune(pool: &MySqlPool, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
    let rows = sqlx::query(sql::SELECT_PRUNABLE)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut up_to = None;
    for row in &rows {
        let recorded: DateTime<Utc> = row.try_get("recorded_at")?;
        if recorded >= before {
            break;
        }
        up_to = Some(row.try_get::<u64, _>("seq")?);
    }
    let Some(up_to) = up_to else {
        return Ok(0);
    };
    let done = sqlx::query(sql::PRUNE_UP_TO)
        .bind(up_to)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
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
    let done = sqlx::query(sql::TAKE_LEASE)
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
    let row = sqlx::query(sql::SELECT_SENT)
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
            sqlx::query(sql::RELEASE_LEASE)
                .bind(relay)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Numbers up to `limit` committed rows first, so a relay publishes every committed change.
    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(with_retry("unsent", || async {
            number_ahead(self.pool(), limit.max(NUMBERING_AHEAD)).await?;
            let rows = sqlx::query(sql::SELECT_UNSENT)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
            entries(&rows)
        })
        .await?)
    }

    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool> {
        Ok(with_retry("mark_sent", || {
            update_cursor(self.pool(), sql::MARK_SENT, relay, up_to)
        })
        .await?)
    }

    async fn rewind(&self, relay: &str, to: u64) -> Result<bool> {
        Ok(with_retry("rewind", || {
            update_cursor(self.pool(), sql::REWIND, relay, to)
        })
        .await?)
    }

    async fn sent_up_to(&self) -> Result<u64> {
        Ok(with_retry("sent_up_to", || sent(self.pool())).await?)
    }

    async fn prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(with_retry("prune", || prune(self.pool(), before, limit)).await?)
    }
}

/// The numbering against real transactions (feature `testing`: needs the test server).
#[cfg(all(test, feature = "testing"))]
mod tests {
    use chrono::TimeZone;
    use ticketing_core::domain::{
        Currency, CustomerId, EventId, Money, OrderId, OutboxKind, VenueId,
    };
    use ticketing_core::ports::TicketRepository;
    use uuid::Uuid;

    use super::*;
    use crate::testing::TestDatabase;

    fn reserved(order: OrderId) -> OutboxEvent {
        OutboxEvent {
            version: ticketing_core::domain::OUTBOX_SCHEMA_VERSION,
            kind: OutboxKind::TicketReserved,
            order_id: order,
            event_id: EventId::from_uuid(Uuid::now_v7()),
            venue_id: VenueId::from_uuid(Uuid::now_v7()),
            customer: CustomerId::new("c").unwrap(),
            ticket_ids: Vec::new(),
            seats: Vec::new(),
            amount: Money::new(100, Currency::new("EUR").unwrap()),
            at: Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap(),
            lines: Vec::new(),
            payment: None,
        }
    }

    fn orders(entries: &[OutboxEntry]) -> Vec<(u64, OrderId)> {
        entries.iter().map(|e| (e.seq, e.event.order_id)).collect()
    }

    /// A transaction that inserted its outbox row before another one and commits after it gets
    /// the lower id but the higher number, and is published once it commits: a relay reading
    /// "ids above the last one published" would skip it for good.
    #[tokio::test]
    async fn a_row_that_commits_late_under_a_lower_id_is_published_after_it_commits() {
        let db = TestDatabase::create(4).await.unwrap();
        let pool = db.pool();
        let repo = MySqlTicketRepository::new(pool.clone());
        let (slow_order, fast_order) = (
            OrderId::from_uuid(Uuid::now_v7()),
            OrderId::from_uuid(Uuid::now_v7()),
        );
        let mut slow = begin(pool).await.unwrap();
        append(&mut slow, &[reserved(slow_order)]).await.unwrap();
        let mut fast = begin(pool).await.unwrap();
        append(&mut fast, &[reserved(fast_order)]).await.unwrap();
        // The fast writer commits while the slow one is still open: no lock makes it wait.
        fast.commit().await.unwrap();

        let now = Utc::now();
        assert!(
            repo.try_acquire_lease("r", now, TimeDelta::seconds(30))
                .await
                .unwrap()
        );
        let first = repo.unsent(100).await.unwrap();
        assert_eq!(orders(&first), [(1, fast_order)], "only committed rows");
        assert!(repo.mark_sent("r", 1).await.unwrap());
        assert!(repo.unsent(100).await.unwrap().is_empty());

        slow.commit().await.unwrap();
        let second = repo.unsent(100).await.unwrap();
        assert_eq!(
            orders(&second),
            [(2, slow_order)],
            "published once committed"
        );
        assert_eq!(repo.outbox_head().await.unwrap(), Some(2));
        assert_eq!(
            orders(&repo.outbox_after(0, 10).await.unwrap()),
            [(1, fast_order), (2, slow_order)]
        );
        db.drop_database().await.unwrap();
    }

    /// A rolled-back writer leaves an id unused and no gap in the numbers.
    #[tokio::test]
    async fn a_rolled_back_row_leaves_no_gap_in_the_numbers() {
        let db = TestDatabase::create(4).await.unwrap();
        let pool = db.pool();
        let ids = [(); 3].map(|_| OrderId::from_uuid(Uuid::now_v7()));
        for (n, id) in ids.iter().enumerate() {
            let mut tx = begin(pool).await.unwrap();
            append(&mut tx, &[reserved(*id)]).await.unwrap();
            if n == 1 {
                tx.rollback().await.unwrap();
            } else {
                tx.commit().await.unwrap();
            }
        }
        assert_eq!(
            orders(&after(pool, 0, 10).await.unwrap()),
            [(1, ids[0]), (2, ids[2])]
        );
        db.drop_database().await.unwrap();
    }
}
