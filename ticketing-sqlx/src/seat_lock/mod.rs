//! The seat lock in the database alone: seat inventory rows locked with `SELECT … FOR UPDATE`.

mod hold;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, Row, Transaction};
use ticketing_core::Result;
use ticketing_core::domain::{EventId, OrderId, Zone};
use ticketing_core::ports::{
    ActiveHold, HoldItem, HoldOutcome, HoldRequest, HoldSource, LockSnapshot, SeatLock,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult, code};
use crate::lock_state::{Wanted, group_page, snapshot_of_rows};
use crate::pool::begin;
use crate::retry::{backoff, with_retry};

/// How often a rebuild asks for the marker without queueing before it queues for it.
const MARKER_TAKE_TRIES: u32 = 20;

/// Rows per multi-row INSERT of a rebuild by default (well below the 65 535 placeholders of a
/// statement).
const DEFAULT_REBUILD_CHUNK: usize = 1_000;

/// A [`SeatLock`] kept in MySQL/MariaDB tables, for deployments without Redis and as the
/// benchmark baseline (the design pretix and alf.io use).
///
/// A hold locks the event's marker row in share mode, then the zone and seat rows it wants with
/// `SELECT … FOR UPDATE` in sorted key order (so two holds never deadlock on each other), checks
/// them against the caller's `now` and writes the holds, all in one transaction: all or nothing.
/// Seat and zone rows are created on first use, since the lock knows no venue layout.
///
/// The marker row says the event was loaded; without it a hold answers
/// [`HoldOutcome::NotLoaded`]. [`SeatLock::rebuild`] takes the marker exclusively, replaces the
/// event's rows with the holds from the source (read page by page, written in INSERTs of
/// [`with_rebuild_chunk`](Self::with_rebuild_chunk) rows) and marks it loaded, all in one
/// transaction; holds arriving meanwhile answer `NotLoaded` at once instead of queueing on the
/// marker with a connection each. The marker's row lock is the rebuild's lease: it cannot lapse
/// while the rebuild runs, and ends with its transaction, so a rebuilder that dies (or loses its
/// connection) leaves nothing written and the event not loaded.
#[derive(Debug)]
pub struct MySqlSeatLock {
    pool: MySqlPool,
    /// One rebuild at a time per process; the others wait here without holding a connection.
    rebuilding: Mutex<()>,
    /// Rows per INSERT of a rebuild.
    rebuild_chunk: usize,
}

impl MySqlSeatLock {
    /// A seat lock on `pool` (migrated with [`crate::migrations`]).
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            rebuilding: Mutex::new(()),
            rebuild_chunk: DEFAULT_REBUILD_CHUNK,
        }
    }

    /// Writes a rebuild's holds in INSERTs of at most `rows` rows (default 1,000; 0 is taken as
    /// 1, more than 10,000 as 10,000, which keeps a statement within MySQL's 65,535
    /// placeholders).
    #[must_use]
    pub fn with_rebuild_chunk(mut self, rows: usize) -> Self {
        self.rebuild_chunk = rows.clamp(1, 10_000);
        self
    }

    /// Forgets the lock state of `event`: it answers `NotLoaded` until rebuilt.
    pub async fn forget(&self, event: EventId) -> Result<()> {
        Ok(with_retry("forget", || async {
            let mut tx = begin(&self.pool).await?;
            for statement in [
                sql::FORGET_MARKER,
                sql::FORGET_ZONES,
                sql::FORGET_SEATS,
                sql::FORGET_ZONE_HOLDS,
            ] {
                sqlx::query(statement)
                    .bind(event.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await?)
    }

    /// Forgets the lock state of every event, as a Redis restart without persistence would; each
    /// event answers `NotLoaded` until rebuilt. The ticket tables are not touched.
    pub async fn forget_all(&self) -> Result<()> {
        Ok(with_retry("forget_all", || async {
            let mut tx = begin(&self.pool).await?;
            for statement in sql::FORGET_ALL {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await?)
    }

    async fn release_once(
        &self,
        event: EventId,
        order: OrderId,
        items: &[HoldItem],
    ) -> StoreResult<()> {
        let wanted = Wanted::from_items(items)?;
        let (event, order) = (event.as_uuid(), order.as_uuid());
        let (zones, keys) = (wanted.zone_codes(), wanted.seat_keys());
        let mut tx = begin(&self.pool).await?;
        if !zones.is_empty() {
            sql::release_zones(event, &zones, order)
                .build()
                .execute(&mut *tx)
                .await?;
        }
        if !keys.is_empty() {
            sql::release_seats(event, &keys, order)
                .build()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_sold_once(
        &self,
        event: EventId,
        order: OrderId,
        items: &[HoldItem],
    ) -> StoreResult<()> {
        let wanted = Wanted::from_items(items)?;
        let (event, order) = (event.as_uuid(), order.as_uuid());
        let mut tx = begin(&self.pool).await?;
        for (zone, (quantity, _)) in &wanted.zones {
            sqlx::query(sql::SELL_ZONE)
                .bind(*quantity)
                .bind(event)
                .bind(zone.as_str())
                .bind(order)
                .execute(&mut *tx)
                .await?;
        }
        let keys = wanted.seat_keys();
        if !keys.is_empty() {
            sql::sell_seats(event, &keys, order)
                .build()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn snapshot_once(
        &self,
        event: EventId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<LockSnapshot>> {
        let event = event.as_uuid();
        let rows = sqlx::query(sql::SNAPSHOT)
            .bind(event)
            .bind(event)
            .bind(now)
            .bind(now)
            .bind(event)
            .fetch_all(&self.pool)
            .await?;
        snapshot_of_rows::<_, StoreError>(&rows)
    }

    /// One zone of the snapshot: seats by key range (`zone:` up to `zone;`, the next character
    /// in `ascii_bin` order, so the primary key bounds the read) or one zone's places.
    async fn zone_snapshot_once(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<LockSnapshot>> {
        let event = event.as_uuid();
        let code = zone.code.as_str();
        let rows = sqlx::query(sql::ZONE_SNAPSHOT)
            .bind(event)
            .bind(event)
            .bind(format!("{code}:"))
            .bind(format!("{code};"))
            .bind(now)
            .bind(now)
            .bind(event)
            .bind(code)
            .fetch_all(&self.pool)
            .await?;
        snapshot_of_rows::<_, StoreError>(&rows)
    }

    /// Locks the marker of a not-loaded event exclusively and returns the transaction holding
    /// it; `None` when the event is loaded (by whoever we waited for).
    ///
    /// An exclusive lock that is merely *requested* turns every hold away (a hold's `NOWAIT`
    /// share lock conflicts with a waiting exclusive request too), so rebuilders do not queue for
    /// it: they ask with `NOWAIT` and, when the marker is busy, wait with a shared lock for the
    /// running rebuild to finish and look again. Only after [`MARKER_TAKE_TRIES`] busy answers
    /// (a stream of holds keeps sharing it) does a rebuilder queue, so that it cannot starve.
    async fn take_marker(&self, id: Uuid) -> StoreResult<Option<Transaction<'static, MySql>>> {
        let mut busy = 0;
        loop {
            // Loaded already: done, without locking the marker exclusively. The shared lock waits
            // for a rebuild or a wipe that holds the marker right now, so we answer after it.
            let mut tx = begin(&self.pool).await?;
            let loaded: Option<bool> = sqlx::query(sql::SHARE_MARKER)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("loaded"))
                .transpose()?;
            tx.commit().await?;
            if loaded == Some(true) {
                return Ok(None);
            }
            sqlx::query(sql::ENSURE_MARKER)
                .bind(id)
                .execute(&self.pool)
                .await?;
            let queue = busy >= MARKER_TAKE_TRIES;
            let mut tx = begin(&self.pool).await?;
            let locked = sqlx::query(if queue {
                sql::LOCK_MARKER
            } else {
                sql::LOCK_MARKER_NOWAIT
            })
            .bind(id)
            .fetch_one(&mut *tx)
            .await;
            match locked {
                Ok(row) => {
                    if row.try_get::<bool, _>("loaded")? {
                        tx.commit().await?;
                        return Ok(None);
                    }
                    return Ok(Some(tx));
                }
                Err(e) if !queue && crate::error::number(&e) == Some(code::LOCK_WAIT_TIMEOUT) => {
                    tx.rollback().await?;
                    busy += 1;
                    tokio::time::sleep(backoff(busy)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn rebuild_once(&self, event: EventId, source: &dyn HoldSource) -> StoreResult<()> {
        let id = event.as_uuid();
        let Some(mut tx) = self.take_marker(id).await? else {
            return Ok(()); // Someone else rebuilt it while we waited.
        };
        // Clear first, read the source second: a sale recorded before this point is in the
        // source; one marked after it waits for our row locks.
        for statement in [sql::FORGET_SEATS, sql::FORGET_ZONE_HOLDS] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        let mut after = None;
        loop {
            let page = source.active_holds(event, after).await?;
            self.restore_page(&mut tx, id, page.holds).await?;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        sqlx::query(sql::SET_LOADED)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes one page of holds in INSERTs of at most `rebuild_chunk` rows. A zone hold of an
    /// order that an earlier page restored adds its places to it.
    async fn restore_page(
        &self,
        tx: &mut Transaction<'static, MySql>,
        id: Uuid,
        holds: Vec<ActiveHold>,
    ) -> StoreResult<()> {
        let (seats, zones) = group_page(holds);
        for chunk in seats.chunks(self.rebuild_chunk) {
            sql::restore_seats(id, chunk)
                .build()
                .execute(&mut **tx)
                .await?;
        }
        for chunk in zones.chunks(self.rebuild_chunk) {
            sql::restore_zone_holds(id, chunk)
                .build()
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SeatLock for MySqlSeatLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        Ok(with_retry("hold", || hold::hold_once(&self.pool, request)).await?)
    }

    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        Ok(with_retry("release", || self.release_once(event, order, items)).await?)
    }

    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        Ok(with_retry("mark_sold", || self.mark_sold_once(event, order, items)).await?)
    }

    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        Ok(with_retry("snapshot", || self.snapshot_once(event, now)).await?)
    }

    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        Ok(with_retry("zone snapshot", || {
            self.zone_snapshot_once(event, zone, now)
        })
        .await?)
    }

    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        let _one_at_a_time = self.rebuilding.lock().await;
        Ok(with_retry("rebuild", || self.rebuild_once(event, source)).await?)
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        MySqlSeatLock::forget(self, event).await
    }
}
