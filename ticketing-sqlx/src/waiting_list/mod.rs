//! The waiting list in a MySQL/MariaDB table (`MySqlWaitingList`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool};
use ticketing_core::Result;
use ticketing_core::domain::{EventId, Order, OrderId, WaitingEntry, WaitingEntryId, WaitingState};
use ticketing_core::ports::{Joined, WaitingList};

use crate::flows::waiting_list::DatabaseWaitingList;
use crate::retry::with_retry;

/// The [`WaitingList`] in MySQL/MariaDB (migrated with [`crate::migrations`]), on the pool of
/// the ticket repository whose outbox relays its offer events: an offer's entry change and its
/// `WaitingListOffered` outbox row commit in one transaction. One open entry per customer and
/// event is a unique key, every change a conditional `UPDATE`.
#[derive(Debug, Clone)]
pub struct MySqlWaitingList {
    pool: MySqlPool,
}

impl MySqlWaitingList {
    /// A waiting list on `pool` (the ticket repository's database).
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl WaitingList for MySqlWaitingList {
    async fn join(&self, entry: &WaitingEntry) -> Result<Joined> {
        Ok(with_retry("waiting list join", || MySql::join(&self.pool, entry)).await?)
    }

    async fn entry(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>> {
        Ok(MySql::one(
            &self.pool,
            <MySql as DatabaseWaitingList>::BY_ID,
            id.as_uuid(),
        )
        .await?)
    }

    async fn leave(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>> {
        Ok(with_retry("waiting list leave", || MySql::leave(&self.pool, id)).await?)
    }

    async fn waiting(&self, event: EventId, limit: u32) -> Result<Vec<WaitingEntry>> {
        Ok(MySql::waiting(&self.pool, event, limit).await?)
    }

    async fn record_offer(
        &self,
        entry: WaitingEntryId,
        order: &Order,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(with_retry("waiting list offer", || {
            MySql::record_offer(&self.pool, entry, order, at)
        })
        .await?)
    }

    async fn settle_offer(
        &self,
        order: OrderId,
        outcome: WaitingState,
    ) -> Result<Option<WaitingEntry>> {
        Ok(with_retry("waiting list settle", || {
            MySql::settle_offer(&self.pool, order, outcome)
        })
        .await?)
    }
}
