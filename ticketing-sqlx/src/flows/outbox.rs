//! The transactional outbox: one row per state change, written by the change's transaction without
//! any shared lock, and numbered in publication order afterwards; and the relay's view of it
//! ([`OutboxStore`](ticketing_core::ports::OutboxStore) on the ticket repositories): the sent
//! cursor and the lease in the one row of `outbox_relay`.
//!
//! Writers insert rows with an id (MySQL's `AUTO_INCREMENT`, PostgreSQL's identity sequence) and
//! no sequence number. [`Outbox::number_committed`] gives the committed, unnumbered rows their
//! numbers in id order, one numbering transaction at a time (they queue on the `outbox_relay`
//! row). Readers that promise sequence order (the relay's `unsent`, `outbox_after`,
//! `outbox_head`) number first. docs/DESIGN.md, "The event stream", argues why no row is skipped
//! and one order's changes keep their order.

use std::future::Future;
use std::ops::Add;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{OutboxEntry, OutboxEvent};

use crate::dialect::Dialect;

/// Rows numbered per numbering transaction.
const NUMBERING_CHUNK: u32 = 1_000;

/// Most rows the relay numbers per batch it reads ([`Outbox::unsent`]), in chunks. Far more
/// than a batch, so numbering never trails the commits while the publishing does: readers that
/// number everything first (a seat-lock rebuild's `outbox_head`, inside the first purchase of an
/// event) then find little left to number. Bounded, so that one relay round stays short even
/// after the relay was off for hours.
const NUMBERING_AHEAD: u32 = 20 * NUMBERING_CHUNK;

/// The outbox on a database: its statements, and the numbering, the ordered reads and the
/// relay's cursor and lease over them.
pub(crate) trait Outbox: Dialect
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Decode<'q, Self> + Type<Self>,
{
    /// An outbox row id or sequence number as stored: `BIGINT UNSIGNED` (`u64`) on MySQL,
    /// `bigint` (`i64`) on PostgreSQL.
    type Seq: for<'q> Encode<'q, Self>
        + for<'r> Decode<'r, Self>
        + Type<Self>
        + Add<Output = Self::Seq>
        + Copy
        + Send
        + Sync
        + 'static;

    /// No binds. The last number given, under a row lock: one numbering transaction at a time,
    /// each continuing from the last.
    const LOCK_NUMBERING: &'static str;
    /// Binds: limit. Committed rows without a number, oldest id first (`ix_outbox_unnumbered`,
    /// no sort). A plain read at READ COMMITTED: it sees committed rows only and waits for no
    /// writer.
    const SELECT_UNNUMBERED: &'static str;
    /// Binds: the last number given.
    const SET_NUMBERED: &'static str;
    /// No binds. The last number given.
    const SELECT_HEAD: &'static str;
    /// Binds: after, limit. Numbered entries after a number, in order.
    const SELECT_AFTER: &'static str;
    /// Binds: relay. Lets go of the lease if the relay holds it.
    const RELEASE_LEASE: &'static str;
    /// Binds: limit. Numbered entries after the sent cursor. Numbers are given in publication
    /// order, so no entry can appear later below one read here.
    const SELECT_UNSENT: &'static str;
    /// Binds: number, relay. Moves the sent cursor forward, if the relay holds the lease.
    const MARK_SENT: &'static str;
    /// Binds: number, relay. Moves the sent cursor back, if the relay holds the lease.
    const REWIND: &'static str;
    /// No binds. The sent cursor.
    const SELECT_SENT: &'static str;
    /// Binds: limit. The oldest published entries with their time: a range of `uq_outbox_seq`
    /// from its start (unnumbered rows, `seq IS NULL`, are not in it).
    const SELECT_PRUNABLE: &'static str;
    /// Binds: up to, limit. Deletes the entries up to a number, at most `limit` of them: a
    /// range of `uq_outbox_seq`. The bound comes from [`Outbox::SELECT_PRUNABLE`], so it is at
    /// most the sent cursor, and no row can get a number at or below it any more.
    const PRUNE_UP_TO: &'static str;

    /// A sequence number as bound (PostgreSQL clamps numbers past `i64::MAX`, which cannot
    /// exist).
    fn seq_bind(seq: u64) -> Self::Seq;

    /// A stored sequence number (never negative).
    fn seq_number(seq: Self::Seq) -> Result<u64, Error>;

    /// A count of rows as a sequence number.
    fn seq_count(n: usize) -> Self::Seq;

    /// Appends `events` in order, without a number and without taking any lock another writer
    /// waits for: the rows get theirs from [`Outbox::number_committed`] once this transaction
    /// committed.
    fn append(
        conn: &mut Self::Connection,
        events: &[OutboxEvent],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Gives row `ids[i]` the number `last + i + 1`, if it has none yet; how many rows it
    /// numbered.
    fn number_rows(
        conn: &mut Self::Connection,
        last: Self::Seq,
        ids: &[Self::Seq],
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// The lease as a compare-and-set: taken when free, lapsed at the caller's `now`, or the
    /// caller's (a renewal that changes nothing still counts).
    fn take_lease(
        pool: &Pool<Self>,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Numbers up to `limit` committed, unnumbered rows in id order, continuing from the last
    /// number given; returns how many it numbered. Numbering transactions queue on the
    /// `outbox_relay` row, so each one sees every row the previous one numbered and numbers
    /// strictly after it.
    ///
    /// The transaction runs in a task of its own, so a caller that is cancelled (a relay task
    /// aborted, a request dropped) cannot stop it half-way: on MySQL a future dropped inside
    /// `BEGIN` can hand its connection back to the pool with the server's transaction open, and
    /// the next `BEGIN` on it then fails with 1568 ("transaction characteristics can't be
    /// changed").
    async fn number_committed(pool: &Pool<Self>, limit: u32) -> Result<u32, Self::Error> {
        let pool = pool.clone();
        tokio::spawn(Self::number_committed_once(pool, limit))
            .await
            .map_err(|e| Error::internal(format!("outbox numbering task failed: {e}")))?
    }

    /// The numbering transaction of [`Outbox::number_committed`].
    fn number_committed_once(
        pool: Pool<Self>,
        limit: u32,
    ) -> impl Future<Output = Result<u32, Self::Error>> + Send + 'static {
        async move {
            let mut tx = Self::begin(&pool).await?;
            let last: Self::Seq = sqlx::query(Self::LOCK_NUMBERING)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(relay_row_missing)?
                .try_get("numbered_seq")?;
            let ids = sqlx::query(Self::SELECT_UNNUMBERED)
                .bind(Self::count(limit))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<Vec<Self::Seq>, _>>()?;
            if ids.is_empty() {
                tx.rollback().await?;
                return Ok(0);
            }
            let numbered = Self::number_rows(&mut tx, last, &ids).await?;
            if numbered != ids.len() as u64 {
                return Err(Error::internal(format!(
                    "numbered {numbered} of {} outbox rows; another numbering ran unlocked",
                    ids.len()
                ))
                .into());
            }
            sqlx::query(Self::SET_NUMBERED)
                .bind(last + Self::seq_count(ids.len()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ids.len() as u32)
        }
    }

    /// Numbers every committed row that has no number yet, a chunk per transaction.
    async fn number_all_committed(pool: &Pool<Self>) -> Result<(), Self::Error> {
        Self::number_ahead(pool, u32::MAX).await
    }

    /// Numbers committed rows, a chunk per transaction, until none is left or at least `rows`
    /// are.
    async fn number_ahead(pool: &Pool<Self>, rows: u32) -> Result<(), Self::Error> {
        let mut numbered = 0;
        while numbered < rows {
            let chunk = Self::number_committed(pool, NUMBERING_CHUNK).await?;
            numbered = numbered.saturating_add(chunk);
            if chunk < NUMBERING_CHUNK {
                break;
            }
        }
        Ok(())
    }

    /// The number of the newest entry, after numbering every committed row: an entry committed
    /// after this call returns gets a greater one.
    async fn head(pool: &Pool<Self>) -> Result<u64, Self::Error> {
        Self::number_all_committed(pool).await?;
        let head: Self::Seq = sqlx::query(Self::SELECT_HEAD)
            .fetch_optional(pool)
            .await?
            .ok_or_else(relay_row_missing)?
            .try_get("numbered_seq")?;
        Ok(Self::seq_number(head)?)
    }

    /// Up to `limit` entries after `after`, in sequence order, after numbering every committed
    /// row.
    async fn after(
        pool: &Pool<Self>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, Self::Error> {
        Self::number_all_committed(pool).await?;
        let rows = sqlx::query(Self::SELECT_AFTER)
            .bind(Self::seq_bind(after))
            .bind(Self::count(limit))
            .fetch_all(pool)
            .await?;
        Self::entries(&rows)
    }

    /// Numbers committed rows first (up to [`NUMBERING_AHEAD`] of them, or `limit` if more),
    /// then reads up to `limit` entries after the sent cursor, so a relay publishes every
    /// committed change.
    async fn unsent(pool: &Pool<Self>, limit: u32) -> Result<Vec<OutboxEntry>, Self::Error> {
        Self::number_ahead(pool, limit.max(NUMBERING_AHEAD)).await?;
        let rows = sqlx::query(Self::SELECT_UNSENT)
            .bind(Self::count(limit))
            .fetch_all(pool)
            .await?;
        Self::entries(&rows)
    }

    /// Entries from rows of `seq, payload`.
    fn entries(rows: &[Self::Row]) -> Result<Vec<OutboxEntry>, Self::Error> {
        rows.iter()
            .map(|row| {
                let payload: String = row.try_get("payload")?;
                let event: OutboxEvent = serde_json::from_str(&payload).map_err(|e| {
                    Error::internal(format!("outbox row holds an unreadable event: {e}"))
                })?;
                Ok(OutboxEntry {
                    seq: Self::seq_number(row.try_get("seq")?)?,
                    event,
                })
            })
            .collect()
    }

    /// Deletes up to `limit` published entries recorded before `before`, as a prefix by
    /// number: it reads the oldest published entries with their time, keeps the leading run
    /// older than `before`, and deletes up to its last number. Both statements are ranges of
    /// `uq_outbox_seq`.
    async fn prune(
        pool: &Pool<Self>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, Self::Error> {
        let rows = sqlx::query(Self::SELECT_PRUNABLE)
            .bind(Self::count(limit))
            .fetch_all(pool)
            .await?;
        let mut up_to = None;
        for row in &rows {
            let recorded: DateTime<Utc> = row.try_get("recorded_at")?;
            if recorded >= before {
                break;
            }
            up_to = Some(row.try_get::<Self::Seq, _>("seq")?);
        }
        let Some(up_to) = up_to else {
            return Ok(0);
        };
        let done = sqlx::query(Self::PRUNE_UP_TO)
            .bind(up_to)
            .bind(Self::count(limit))
            .execute(pool)
            .await?;
        Ok(Self::rows_affected(&done))
    }

    /// Lets go of the lease if `relay` holds it.
    async fn release_lease(pool: &Pool<Self>, relay: &str) -> Result<(), Self::Error> {
        sqlx::query(Self::RELEASE_LEASE)
            .bind(relay)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Moves the sent cursor with `statement` ([`Outbox::MARK_SENT`] or [`Outbox::REWIND`]) to
    /// `seq`, if `relay` holds the lease.
    async fn update_cursor(
        pool: &Pool<Self>,
        statement: &'static str,
        relay: &str,
        seq: u64,
    ) -> Result<bool, Self::Error> {
        let done = sqlx::query(statement)
            .bind(Self::seq_bind(seq))
            .bind(relay)
            .execute(pool)
            .await?;
        Ok(Self::rows_affected(&done) == 1)
    }

    /// The sent cursor.
    async fn sent(pool: &Pool<Self>) -> Result<u64, Self::Error> {
        let sent: Self::Seq = sqlx::query(Self::SELECT_SENT)
            .fetch_optional(pool)
            .await?
            .ok_or_else(relay_row_missing)?
            .try_get("sent_seq")?;
        Ok(Self::seq_number(sent)?)
    }
}

fn relay_row_missing() -> Error {
    Error::internal("outbox_relay has no row; were the migrations run?")
}
