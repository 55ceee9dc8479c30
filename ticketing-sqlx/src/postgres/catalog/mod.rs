//! The catalog on PostgreSQL: venues with zones and seat rows, events with prices.

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres};
use ticketing_core::Result;
use ticketing_core::domain::{Event, EventId, Venue, VenueId, Voucher, VoucherCode};
use ticketing_core::ports::CatalogRepository;

use super::error::with_retry;
use crate::flows::catalog::Catalog;

/// The [`CatalogRepository`] on PostgreSQL.
///
/// Venues and events are written once (by an admin) and read on every purchase, so the services
/// cache them; this adapter simply reads and writes the tables of `migrations/postgres/`.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    pool: PgPool,
}

impl PgCatalog {
    /// A catalog on `pool` (migrated with [`super::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl CatalogRepository for PgCatalog {
    async fn insert_venue(&self, venue: &Venue) -> Result<()> {
        Ok(with_retry("insert_venue", || Postgres::insert_venue(&self.pool, venue)).await?)
    }

    async fn venue(&self, id: VenueId) -> Result<Option<Venue>> {
        Ok(with_retry("venue", || Postgres::venue(&self.pool, id)).await?)
    }

    async fn insert_event(&self, event: &Event) -> Result<()> {
        Ok(with_retry("insert_event", || Postgres::insert_event(&self.pool, event)).await?)
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>> {
        Ok(with_retry("event", || Postgres::event(&self.pool, id)).await?)
    }

    async fn insert_voucher(&self, voucher: &Voucher) -> Result<()> {
        Ok(with_retry("insert_voucher", || {
            Postgres::insert_voucher(&self.pool, voucher)
        })
        .await?)
    }

    async fn voucher(&self, event: EventId, code: &VoucherCode) -> Result<Option<Voucher>> {
        Ok(with_retry("voucher", || Postgres::voucher(&self.pool, event, code)).await?)
    }

    async fn vouchers(&self, event: EventId) -> Result<Vec<Voucher>> {
        Ok(with_retry("vouchers", || Postgres::vouchers(&self.pool, event)).await?)
    }

    async fn events_closed(
        &self,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventId>> {
        Ok(with_retry("events_closed", || {
            Postgres::events_closed(&self.pool, after, closed_by, limit)
        })
        .await?)
    }
}
