//! The waiting room in MySQL/MariaDB tables (`MySqlWaitingRoom`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool};
use ticketing_core::Result;
use ticketing_core::domain::{AdmissionPolicy, CustomerId, EventId};
use ticketing_core::ports::{Admission, Gate, Occupancy, Place, WaitingRoom};

use crate::flows::waiting_room::DatabaseWaitingRoom;
use crate::retry::with_retry;

/// The [`WaitingRoom`] in MySQL/MariaDB, for deployments without Redis (migrated with
/// [`crate::migrations`]).
///
/// Each event's policy row is its lock: an admission step takes it `FOR UPDATE`, drops lapsed
/// admissions, counts the live ones (or the rate's second), moves the head of the queue to
/// admitted and counts the issued ids, all in one transaction; a join takes it in share mode, so
/// joins run side by side and never interleave with a step. The purchase gate is one
/// compare-and-set `UPDATE` of the admission row. Transactions that lose a deadlock run again.
#[derive(Debug, Clone)]
pub struct MySqlWaitingRoom {
    pool: MySqlPool,
}

impl MySqlWaitingRoom {
    /// A waiting room on `pool`.
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl WaitingRoom for MySqlWaitingRoom {
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        Ok(MySql::set_policy(&self.pool, event, policy).await?)
    }

    async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>> {
        Ok(MySql::policy(&self.pool, event).await?)
    }

    async fn join(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: u64,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        Ok(with_retry("waiting room join", || {
            MySql::join_or_read(&self.pool, event, customer, Some(lottery), now)
        })
        .await?)
    }

    async fn place(
        &self,
        event: EventId,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        Ok(with_retry("waiting room join", || {
            MySql::join_or_read(&self.pool, event, customer, None, now)
        })
        .await?)
    }

    async fn admit(&self, event: EventId, now: DateTime<Utc>) -> Result<Vec<Admission>> {
        Ok(with_retry("waiting room admit", || {
            MySql::admit(&self.pool, event, now)
        })
        .await?)
    }

    async fn begin_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Gate> {
        Ok(MySql::begin_purchase(&self.pool, event, customer, admission, now).await?)
    }

    async fn finish_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<()> {
        Ok(with_retry("waiting room finish purchase", || {
            MySql::finish_purchase(&self.pool, event, customer, admission, bought)
        })
        .await?)
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        Ok(with_retry("waiting room forget", || MySql::forget(&self.pool, event)).await?)
    }

    async fn occupancy(&self, event: EventId, now: DateTime<Utc>) -> Result<Occupancy> {
        Ok(MySql::occupancy(&self.pool, event, now).await?)
    }
}
