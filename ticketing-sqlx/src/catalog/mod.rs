//! The catalog on MySQL: venues with zones and seat rows, events with prices.

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool};
use ticketing_core::Result;
use ticketing_core::domain::{Event, EventId, Venue, VenueId, Voucher, VoucherCode};
use ticketing_core::ports::CatalogRepository;

use crate::flows::catalog::Catalog;
use crate::retry::with_retry;

/// The [`CatalogRepository`] on MySQL/MariaDB.
///
/// Venues and events are written once (by an admin) and read on every purchase, so the services
/// cache them; this adapter simply reads and writes the tables of `migrations/`.
#[derive(Debug, Clone)]
pub struct MySqlCatalog {
    pool: MySqlPool,
}

impl MySqlCatalog {
    /// A catalog on `pool` (migrated with [`crate::migrations`]).
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl CatalogRepository for MySqlCatalog {
    async fn insert_venue(&self, venue: &Venue) -> Result<()> {
        Ok(with_retry("insert_venue", || MySql::insert_venue(&self.pool, venue)).await?)
    }

    async fn venue(&self, id: VenueId) -> Result<Option<Venue>> {
        Ok(with_retry("venue", || MySql::venue(&self.pool, id)).await?)
    }

    async fn insert_event(&self, event: &Event) -> Result<()> {
        Ok(with_retry("insert_event", || MySql::insert_event(&self.pool, event)).await?)
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>> {
        Ok(with_retry("event", || MySql::event(&self.pool, id)).await?)
    }

    async fn insert_voucher(&self, voucher: &Voucher) -> Result<()> {
        Ok(with_retry("insert_voucher", || {
            MySql::insert_voucher(&self.pool, voucher)
        })
        .await?)
    }

    async fn voucher(&self, event: EventId, code: &VoucherCode) -> Result<Option<Voucher>> {
        Ok(with_retry("voucher", || MySql::voucher(&self.pool, event, code)).await?)
    }

    async fn vouchers(&self, event: EventId) -> Result<Vec<Voucher>> {
        Ok(with_retry("vouchers", || MySql::vouchers(&self.pool, event)).await?)
    }

    async fn events_closed(
        &self,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventId>> {
        Ok(with_retry("events_closed", || {
            MySql::events_closed(&self.pool, after, closed_by, limit)
        })
        .await?)
    }
}
