//! The waiting room in MySQL/MariaDB tables (`MySqlWaitingRoom`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{MySql, MySqlPool, Row, Transaction};
use ticketing_core::domain::{
    AdmissionMode, AdmissionPolicy, AdmissionRefusal, CustomerId, EventId, QueueOrder,
};
use ticketing_core::ports::{Admission, Gate, Occupancy, Place, WaitingRoom};
use ticketing_core::{Error, Result};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::pool::begin;
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

/// A policy row's policy, `None` when its mode is NULL.
fn policy_of(row: &MySqlRow) -> StoreResult<Option<AdmissionPolicy>> {
    let mode: Option<String> = row.try_get("mode")?;
    let Some(mode) = mode else {
        return Ok(None);
    };
    let limit: Option<u32> = row.try_get("admission_limit")?;
    let order: Option<String> = row.try_get("queue_order")?;
    let window: Option<i64> = row.try_get("window_ms")?;
    match (limit, order, window) {
        (Some(limit), Some(order), Some(window)) => Ok(Some(AdmissionPolicy::from_stored(
            &mode, limit, &order, window,
        )?)),
        _ => Err(Error::internal("an incomplete waiting-room policy row").into()),
    }
}

fn customer_of(text: String) -> StoreResult<CustomerId> {
    CustomerId::new(text)
        .map_err(|e| StoreError::from(Error::internal(format!("a stored customer id: {e}"))))
}

/// The customer's place, read inside a transaction that holds the policy row.
async fn place_in(
    tx: &mut Transaction<'static, MySql>,
    event: Uuid,
    policy: AdmissionPolicy,
    customer: &CustomerId,
    now: DateTime<Utc>,
) -> StoreResult<Place> {
    let live = sqlx::query(sql::LIVE_ADMISSION)
        .bind(event)
        .bind(customer.as_str())
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = live {
        return Ok(Place::Admitted(Admission {
            customer: customer.clone(),
            id: row.try_get("admission_id")?,
            expires: row.try_get("expires_at")?,
        }));
    }
    let key = sqlx::query(sql::QUEUE_KEY)
        .bind(event)
        .bind(customer.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(key) = key else {
        return Ok(Place::Absent);
    };
    let (score, arrival): (u64, u64) = (key.try_get("score")?, key.try_get("arrival")?);
    let ahead: i64 = sqlx::query(sql::AHEAD)
        .bind(event)
        .bind(score)
        .bind(score)
        .bind(arrival)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok(Place::Waiting {
        position: ahead as u64 + 1,
        policy,
    })
}

impl MySqlWaitingRoom {
    /// Joins (`lottery` given) or reads the place, in a transaction sharing the policy row.
    async fn join_or_read(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        let id = event.as_uuid();
        with_retry("waiting room join", || async {
            let mut tx = begin(&self.pool).await?;
            let row = sqlx::query(sql::SHARE_POLICY)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let policy = match row {
                Some(row) => policy_of(&row)?,
                None => None,
            };
            let Some(policy) = policy else {
                tx.commit().await?;
                return Ok(Place::NotRequired);
            };
            if let Some(lottery) = lottery {
                let admitted = sqlx::query(sql::LIVE_ADMISSION)
                    .bind(id)
                    .bind(customer.as_str())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                if admitted.is_none() {
                    let score = match policy.order() {
                        QueueOrder::Random => lottery,
                        QueueOrder::Fifo => 0,
                    };
                    sqlx::query(sql::ENQUEUE)
                        .bind(id)
                        .bind(customer.as_str())
                        .bind(score)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let place = place_in(&mut tx, id, policy, customer, now).await?;
            tx.commit().await?;
            Ok(place)
        })
        .await
        .map_err(Error::from)
    }
}

#[async_trait]
impl WaitingRoom for MySqlWaitingRoom {
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        let id = event.as_uuid();
        let query = match policy {
            Some(policy) => sqlx::query(sql::SET_POLICY)
                .bind(id)
                .bind(policy.mode().kind())
                .bind(policy.mode().limit())
                .bind(policy.order().name())
                .bind(policy.window_ms()),
            None => sqlx::query(sql::CLEAR_POLICY).bind(id),
        };
        query
            .execute(&self.pool)
            .await
            .map_err(|e| Error::from(StoreError::from(e)))?;
        Ok(())
    }

    async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>> {
        let row = sqlx::query(sql::READ_POLICY)
            .bind(event.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(match row {
            Some(row) => policy_of(&row)?,
            None => None,
        })
    }

    async fn join(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: u64,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        self.join_or_read(event, customer, Some(lottery), now).await
    }

    async fn place(
        &self,
        event: EventId,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        self.join_or_read(event, customer, None, now).await
    }

    async fn admit(&self, event: EventId, now: DateTime<Utc>) -> Result<Vec<Admission>> {
        let id = event.as_uuid();
        with_retry("waiting room admit", || async {
            let mut tx = begin(&self.pool).await?;
            let Some(row) = sqlx::query(sql::LOCK_POLICY)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.commit().await?;
                return Ok(Vec::new());
            };
            let Some(policy) = policy_of(&row)? else {
                tx.commit().await?;
                return Ok(Vec::new());
            };
            let (rate_second, rate_count): (i64, u32) =
                (row.try_get("rate_second")?, row.try_get("rate_count")?);
            sqlx::query(sql::DROP_LAPSED)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let second = now.timestamp_millis().div_euclid(1000);
            let used = match policy.mode() {
                AdmissionMode::Concurrent(_) => {
                    let live: i64 = sqlx::query(sql::COUNT_ADMISSIONS)
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                    live as u64
                }
                AdmissionMode::PerSecond(_) if rate_second == second => u64::from(rate_count),
                AdmissionMode::PerSecond(_) => 0,
            };
            let room = u64::from(policy.mode().limit()).saturating_sub(used);
            if room == 0 {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let head: Vec<String> = sqlx::query(sql::HEAD)
                .bind(id)
                .bind(room)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("customer_id"))
                .collect::<Result<_, _>>()?;
            if head.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let issued: u64 = sqlx::query(sql::ISSUED)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            let expires = now + policy.window();
            let admitted: Vec<(String, u64)> = head
                .iter()
                .zip(issued + 1..)
                .map(|(customer, n)| (customer.clone(), n))
                .collect();
            sql::dequeue(id, &head).build().execute(&mut *tx).await?;
            sql::admit(id, &admitted, expires)
                .build()
                .execute(&mut *tx)
                .await?;
            let count = match policy.mode() {
                AdmissionMode::PerSecond(_) => used + head.len() as u64,
                AdmissionMode::Concurrent(_) => 0,
            };
            sqlx::query(sql::COUNT_STEP)
                .bind(head.len() as u64)
                .bind(second)
                .bind(count)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            admitted
                .into_iter()
                .map(|(customer, n)| {
                    Ok(Admission {
                        customer: customer_of(customer)?,
                        id: n,
                        expires,
                    })
                })
                .collect()
        })
        .await
        .map_err(Error::from)
    }

    async fn begin_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Gate> {
        let id = event.as_uuid();
        let policy = self.policy(event).await?;
        if policy.is_none() {
            return Ok(Gate::NotRequired);
        }
        let Some(admission) = admission else {
            return Ok(Gate::Refused(AdmissionRefusal::Missing));
        };
        let taken = sqlx::query(sql::TAKE_ADMISSION)
            .bind(id)
            .bind(customer.as_str())
            .bind(admission)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        if taken == 1 {
            return Ok(Gate::Granted);
        }
        let in_use: Option<bool> = sqlx::query(sql::ADMISSION_IN_USE)
            .bind(id)
            .bind(customer.as_str())
            .bind(admission)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(StoreError::from)?;
        Ok(Gate::Refused(if in_use == Some(true) {
            AdmissionRefusal::InUse
        } else {
            AdmissionRefusal::NotAdmitted
        }))
    }

    async fn finish_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<()> {
        let statement = if bought { sql::USE_UP } else { sql::GIVE_BACK };
        with_retry("waiting room finish purchase", || async {
            sqlx::query(statement)
                .bind(event.as_uuid())
                .bind(customer.as_str())
                .bind(admission)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
        .map_err(Error::from)
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        let id = event.as_uuid();
        with_retry("waiting room forget", || async {
            let mut tx = begin(&self.pool).await?;
            for statement in [
                sql::FORGET_QUEUE,
                sql::FORGET_ADMISSIONS,
                sql::FORGET_POLICY,
            ] {
                sqlx::query(statement).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
        .map_err(Error::from)
    }

    async fn occupancy(&self, event: EventId, now: DateTime<Utc>) -> Result<Occupancy> {
        let id = event.as_uuid();
        let count = |query: sqlx::query::Query<'static, MySql, sqlx::mysql::MySqlArguments>| {
            let pool = self.pool.clone();
            async move {
                let n: i64 = query.fetch_one(&pool).await?.try_get(0)?;
                Ok::<u64, StoreError>(n as u64)
            }
        };
        let waiting = count(sqlx::query(sql::COUNT_WAITING).bind(id)).await?;
        let admitted = count(sqlx::query(sql::COUNT_LIVE).bind(id).bind(now)).await?;
        Ok(Occupancy { waiting, admitted })
    }
}
