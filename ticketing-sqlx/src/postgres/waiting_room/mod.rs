//! The waiting room in PostgreSQL tables (`PgWaitingRoom`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use ticketing_core::domain::{
    AdmissionMode, AdmissionPolicy, AdmissionRefusal, CustomerId, EventId, QueueOrder,
};
use ticketing_core::ports::{Admission, Gate, Occupancy, Place, WaitingRoom};
use ticketing_core::{Error, Result};
use uuid::Uuid;

use super::error::{StoreError, StoreResult, with_retry};
use super::pool::begin;

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
            let Some(policy) = row.as_ref().map(policy_of).transpose()?.flatten() else {
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
                        QueueOrder::Random => lottery as i64,
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

/// A policy row's policy, `None` when its mode is NULL.
fn policy_of(row: &PgRow) -> StoreResult<Option<AdmissionPolicy>> {
    let mode: Option<String> = row.try_get("mode")?;
    let Some(mode) = mode else {
        return Ok(None);
    };
    let limit: Option<i32> = row.try_get("admission_limit")?;
    let order: Option<String> = row.try_get("queue_order")?;
    let window: Option<i64> = row.try_get("window_ms")?;
    match (limit.and_then(|l| u32::try_from(l).ok()), order, window) {
        (Some(limit), Some(order), Some(window)) => Ok(Some(AdmissionPolicy::from_stored(
            &mode, limit, &order, window,
        )?)),
        _ => Err(Error::internal("an incomplete waiting-room policy row").into()),
    }
}

fn admission_id(stored: i64) -> StoreResult<u64> {
    u64::try_from(stored)
        .map_err(|_| Error::internal(format!("a stored admission id {stored}")).into())
}

/// The customer's place, read inside a transaction that holds the policy row.
async fn place_in(
    tx: &mut Transaction<'static, Postgres>,
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
            id: admission_id(row.try_get("admission_id")?)?,
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
    let (score, arrival): (i64, i64) = (key.try_get("score")?, key.try_get("arrival")?);
    let ahead: i64 = sqlx::query(sql::AHEAD)
        .bind(event)
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

#[async_trait]
impl WaitingRoom for PgWaitingRoom {
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        let id = event.as_uuid();
        let query = match policy {
            Some(policy) => sqlx::query(sql::SET_POLICY)
                .bind(id)
                .bind(policy.mode().kind())
                .bind(policy.mode().limit() as i32)
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
        Ok(row.as_ref().map(policy_of).transpose()?.flatten())
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
            let issued = admission_id(row.try_get("issued")?)?;
            let (rate_second, rate_count): (i64, i32) =
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
                    live
                }
                AdmissionMode::PerSecond(_) if rate_second == second => i64::from(rate_count),
                AdmissionMode::PerSecond(_) => 0,
            };
            let room = i64::from(policy.mode().limit()) - used;
            if room <= 0 {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let mut head: Vec<(i64, i64, String)> = sqlx::query(sql::POP_HEAD)
                .bind(id)
                .bind(room)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>((
                        row.try_get("score")?,
                        row.try_get("arrival")?,
                        row.try_get("customer_id")?,
                    ))
                })
                .collect::<Result<_, _>>()?;
            if head.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            // DELETE … RETURNING has no order: the exit order is (score, arrival).
            head.sort();
            let customers: Vec<String> = head.into_iter().map(|(_, _, c)| c).collect();
            let ids: Vec<i64> = (issued + 1..)
                .take(customers.len())
                .map(|n| n as i64)
                .collect();
            let expires = now + policy.window();
            sqlx::query(sql::ADMIT)
                .bind(id)
                .bind(&customers)
                .bind(&ids)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
            let count = match policy.mode() {
                AdmissionMode::PerSecond(_) => used + customers.len() as i64,
                AdmissionMode::Concurrent(_) => 0,
            };
            sqlx::query(sql::COUNT_STEP)
                .bind(customers.len() as i64)
                .bind(second)
                .bind(count as i32)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            customers
                .into_iter()
                .zip(ids)
                .map(|(customer, n)| {
                    Ok(Admission {
                        customer: CustomerId::new(customer).map_err(|e| {
                            StoreError::from(Error::internal(format!("a stored customer id: {e}")))
                        })?,
                        id: n as u64,
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
        if self.policy(event).await?.is_none() {
            return Ok(Gate::NotRequired);
        }
        let Some(admission) = admission else {
            return Ok(Gate::Refused(AdmissionRefusal::Missing));
        };
        let Ok(admission) = i64::try_from(admission) else {
            return Ok(Gate::Refused(AdmissionRefusal::NotAdmitted));
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
        let Ok(admission) = i64::try_from(admission) else {
            return Ok(());
        };
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
        let waiting: i64 = sqlx::query(sql::COUNT_WAITING)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::from)?;
        let admitted: i64 = sqlx::query(sql::COUNT_LIVE)
            .bind(id)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::from)?;
        Ok(Occupancy {
            waiting: waiting as u64,
            admitted: admitted as u64,
        })
    }
}
