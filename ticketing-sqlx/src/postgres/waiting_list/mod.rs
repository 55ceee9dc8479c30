//! The waiting list in a PostgreSQL table (`PgWaitingList`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres};
use ticketing_core::Result;
use ticketing_core::domain::{EventId, Order, OrderId, WaitingEntry, WaitingEntryId, WaitingState};
use ticketing_core::ports::{Joined, WaitingList};

use super::error::with_retry;
use crate::flows::waiting_list::DatabaseWaitingList;

/// The [`WaitingList`] in PostgreSQL (migrated with [`migrate`](super::migrate)), on the pool of
/// the ticket repository whose outbox relays its offer events: an offer's entry change and its
/// `WaitingListOffered` outbox row commit in one transaction. One open entry per customer and
/// event is a unique key, every change a conditional `UPDATE`.
#[derive(Debug, Clone)]
pub struct PgWaitingList {
    pool: PgPool,
}

impl PgWaitingList {
    /// A waiting list on `pool` (the ticket repository's database).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl WaitingList for PgWaitingList {
    async fn join(&self, entry: &WaitingEntry) -> Result<Joined> {
        Ok(with_retry("waiting list join", || Postgres::join(&self.pool, entry)).await?)
    }

    async fn entry(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>> {
        Ok(Postgres::one(
            &self.pool,
            <Postgres as DatabaseWaitingList>::BY_ID,
            id.as_uuid(),
        )
        .await?)
    }

    async fn leave(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>> {
        Ok(with_retry("waiting list leave", || Postgres::leave(&self.pool, id)).await?)
    }

    async fn waiting(&self, event: EventId, limit: u32) -> Result<Vec<WaitingEntry>> {
        Ok(Postgres::waiting(&self.pool, event, limit).await?)
    }

    async fn record_offer(
        &self,
        entry: WaitingEntryId,
        order: &Order,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(with_retry("waiting list offer", || {
            Postgres::record_offer(&self.pool, entry, order, at)
        })
        .await?)
    }

    async fn settle_offer(
        &self,
        order: OrderId,
        outcome: WaitingState,
    ) -> Result<Option<WaitingEntry>> {
        Ok(with_retry("waiting list settle", || {
            Postgres::settle_offer(&self.pool, order, outcome)
        })
        .await?)
    }
}
