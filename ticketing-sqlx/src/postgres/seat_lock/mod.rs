//! The seat lock in PostgreSQL alone: seat inventory rows locked with `SELECT … FOR UPDATE`.

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres};
use ticketing_core::Result;
use ticketing_core::domain::{EventId, OrderId, Zone};
use ticketing_core::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock,
};
use tokio::sync::Mutex;

use crate::flows::seat_lock::DatabaseSeatLock;
use crate::postgres::error::with_retry;

/// Rows per INSERT of a rebuild by default.
const DEFAULT_REBUILD_CHUNK: usize = 1_000;

/// A [`SeatLock`] kept in PostgreSQL tables, for deployments without Redis (the design pretix
/// uses), the same design as [`MySqlSeatLock`](crate::MySqlSeatLock) where that is built.
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
pub struct PgSeatLock {
    pool: PgPool,
    /// One rebuild at a time per process; the others wait here without holding a connection.
    rebuilding: Mutex<()>,
    /// Rows per INSERT of a rebuild.
    rebuild_chunk: usize,
}

impl PgSeatLock {
    /// A seat lock on `pool` (migrated with [`crate::postgres::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            rebuilding: Mutex::new(()),
            rebuild_chunk: DEFAULT_REBUILD_CHUNK,
        }
    }

    /// Writes a rebuild's holds in INSERTs of at most `rows` rows (default 1,000; 0 is taken as
    /// 1, more than 10,000 as 10,000), so one statement stays short.
    #[must_use]
    pub fn with_rebuild_chunk(mut self, rows: usize) -> Self {
        self.rebuild_chunk = rows.clamp(1, 10_000);
        self
    }

    /// Forgets the lock state of `event`: it answers `NotLoaded` until rebuilt.
    pub async fn forget(&self, event: EventId) -> Result<()> {
        Ok(with_retry("forget", || Postgres::forget_once(&self.pool, event)).await?)
    }

    /// Forgets the lock state of every event, as a Redis restart without persistence would; each
    /// event answers `NotLoaded` until rebuilt. The ticket tables are not touched.
    pub async fn forget_all(&self) -> Result<()> {
        Ok(with_retry("forget_all", || Postgres::forget_all_once(&self.pool)).await?)
    }
}

#[async_trait]
impl SeatLock for PgSeatLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        Ok(with_retry("hold", || Postgres::hold_once(&self.pool, request)).await?)
    }

    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        Ok(with_retry("hold best available", || {
            Postgres::hold_best_available_once(&self.pool, request)
        })
        .await?)
    }

    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        Ok(with_retry("release", || {
            Postgres::release_once(&self.pool, event, order, items)
        })
        .await?)
    }

    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        Ok(with_retry("mark_sold", || {
            Postgres::mark_sold_once(&self.pool, event, order, items)
        })
        .await?)
    }

    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        Ok(with_retry("snapshot", || {
            Postgres::snapshot_once(&self.pool, event, now)
        })
        .await?)
    }

    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        Ok(with_retry("zone snapshot", || {
            Postgres::zone_snapshot_once(&self.pool, event, zone, now)
        })
        .await?)
    }

    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        let _one_at_a_time = self.rebuilding.lock().await;
        Ok(with_retry("rebuild", || {
            Postgres::rebuild_once(&self.pool, event, source, self.rebuild_chunk)
        })
        .await?)
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        PgSeatLock::forget(self, event).await
    }
}
