//! The waiting room in PostgreSQL tables (`PgWaitingRoom`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres};
use ticketing_core::Result;
use ticketing_core::domain::{AdmissionPolicy, CustomerId, EventId};
use ticketing_core::ports::{Admission, Gate, Occupancy, Place, WaitingRoom};

use super::error::with_retry;
use crate::flows::waiting_room::DatabaseWaitingRoom;

/// The [`WaitingRoom`] in PostgreSQL, for deployments without Redis (migrated with
/// [`migrate`](super::migrate)).
///
/// As on MySQL, each event's policy row is its lock: an admission step locks it `FOR UPDATE`,
/// drops lapsed admissions, counts the live ones (or the rate's second), takes the head of the
/// queue and writes the admissions, all in one transaction; a join locks it `FOR SHARE`, so joins
/// run side by side and never interleave with a step. The purchase gate is one compare-and-set
/// `UPDATE`. Transactions that lose a lock race run again.
#[derive(Debug, Clone)]
pub struct PgWaitingRoom {
    pool: PgPool,
}

impl PgWaitingRoom {
    /// A waiting room on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl WaitingRoom for PgWaitingRoom {
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        Ok(Postgres::set_policy(&self.pool, event, policy).await?)
    }

    async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>> {
        Ok(Postgres::policy(&self.pool, event).await?)
    }

    async fn join(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: u64,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        Ok(with_retry("waiting room join", || {
            Postgres::join_or_read(&self.pool, event, customer, Some(lottery), now)
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
            Postgres::join_or_read(&self.pool, event, customer, None, now)
        })
        .await?)
    }

    async fn admit(&self, event: EventId, now: DateTime<Utc>) -> Result<Vec<Admission>> {
        Ok(with_retry("waiting room admit", || {
            Postgres::admit(&self.pool, event, now)
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
        Ok(Postgres::begin_purchase(&self.pool, event, customer, admission, now).await?)
    }

    async fn finish_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<()> {
        Ok(with_retry("waiting room finish purchase", || {
            Postgres::finish_purchase(&self.pool, event, customer, admission, bought)
        })
        .await?)
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        Ok(with_retry("waiting room forget", || {
            Postgres::forget(&self.pool, event)
        })
        .await?)
    }

    async fn occupancy(&self, event: EventId, now: DateTime<Utc>) -> Result<Occupancy> {
        Ok(Postgres::occupancy(&self.pool, event, now).await?)
    }
}
