//! The waiting room in database tables: a queue, admissions and a policy row per event.
//!
//! Each event's policy row is its lock: an admission step takes it `FOR UPDATE`, drops lapsed
//! admissions, counts the live ones (or the rate's second), moves the head of the queue to
//! admitted and counts the issued ids, all in one transaction; a join takes it in share mode, so
//! joins run side by side and never interleave with a step. The purchase gate is one
//! compare-and-set `UPDATE` of the admission row. Moving the head of the queue differs in shape
//! between the databases (an `IN` list and multi-row `VALUES` built on MySQL, `DELETE …
//! RETURNING` and arrays on PostgreSQL), and so does the count of those ahead in the queue, so
//! each database writes those; the rest is here.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{
    AdmissionMode, AdmissionPolicy, AdmissionRefusal, CustomerId, EventId, QueueOrder,
};
use ticketing_core::ports::{Admission, Gate, Occupancy, Place};
use uuid::Uuid;

use crate::dialect::Dialect;

/// The waiting room on a database: its statements, and the joins, admission steps and purchase
/// gate over them.
pub(crate) trait DatabaseWaitingRoom: Dialect
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    usize: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> bool: Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
{
    /// A queue score or arrival, or an admission id, as stored: `u64` on MySQL, `i64`
    /// (`bigint`) on PostgreSQL.
    type Serial: for<'q> Encode<'q, Self>
        + for<'q> Decode<'q, Self>
        + Type<Self>
        + TryFrom<u64>
        + Copy
        + Send
        + Sync
        + 'static;

    /// A policy's limit or a rate count as stored: `u32` on MySQL, `i32` (`integer`) on
    /// PostgreSQL.
    type Small: for<'q> Encode<'q, Self>
        + for<'q> Decode<'q, Self>
        + Type<Self>
        + Into<i64>
        + Send
        + 'static;

    /// Binds: event. The policy in share mode, for a join or a place read (admission steps
    /// wait for them). Reads: mode, admission_limit, queue_order, window_ms.
    const SHARE_POLICY: &'static str;
    /// Binds: event. The policy with its counters, locked by an admission step. Reads what
    /// [`Self::SHARE_POLICY`] reads, and rate_second, rate_count.
    const LOCK_POLICY: &'static str;
    /// Binds: event. Reads what [`Self::SHARE_POLICY`] reads, without a lock.
    const READ_POLICY: &'static str;
    /// Binds: event, mode, admission_limit, queue_order, window_ms. Inserts or replaces.
    const SET_POLICY: &'static str;
    /// Binds: event. Sets the policy's fields NULL ("no policy"), keeping its counters.
    const CLEAR_POLICY: &'static str;
    /// Binds: event, customer, now. The customer's admission live at `now` (expires after
    /// it). Reads: admission_id, expires_at.
    const LIVE_ADMISSION: &'static str;
    /// Binds: event, customer, score. Queues a customer; a customer already queued keeps the
    /// place.
    const ENQUEUE: &'static str;
    /// Binds: event, customer. Reads: score, arrival.
    const QUEUE_KEY: &'static str;
    /// Binds: event, now. Deletes the admissions that lapsed.
    const DROP_LAPSED: &'static str;
    /// Binds: event. All admissions of the event.
    const COUNT_ADMISSIONS: &'static str;
    /// Binds: event, now. The admissions live at `now`.
    const COUNT_LIVE: &'static str;
    /// Binds: event. The customers queued.
    const COUNT_WAITING: &'static str;
    /// Binds: admitted, rate_second, rate_count, event. Counts the admissions of a step:
    /// `issued + admitted`, and the rate's window.
    const COUNT_STEP: &'static str;
    /// Binds: event, customer, admission, now. Marks the admission in use: the gate's
    /// compare-and-set.
    const TAKE_ADMISSION: &'static str;
    /// Binds: event, customer, admission, now. Whether a refused admission is live but in
    /// use. Reads: in_use.
    const ADMISSION_IN_USE: &'static str;
    /// Binds: event, customer, admission. Deletes an admission in use: its purchase is made.
    const USE_UP: &'static str;
    /// Binds: event, customer, admission. Frees an admission in use for another attempt.
    const GIVE_BACK: &'static str;
    /// Binds: event.
    const FORGET_QUEUE: &'static str;
    /// Binds: event.
    const FORGET_ADMISSIONS: &'static str;
    /// Binds: event.
    const FORGET_POLICY: &'static str;

    /// A score or a count of admissions as bound (a lottery draw above `i64::MAX` wraps on
    /// PostgreSQL).
    fn serial(n: u64) -> Self::Serial;

    /// A stored admission id, or an internal error when it is not one.
    fn admission_id(stored: Self::Serial) -> Result<u64, Self::Error>;

    /// A limit or a rate count as bound.
    fn small(n: u32) -> Self::Small;

    /// How many of the event's queue are ahead of the queue key (score, arrival).
    fn count_ahead(
        conn: &mut Self::Connection,
        event: Uuid,
        score: Self::Serial,
        arrival: Self::Serial,
    ) -> impl Future<Output = Result<i64, Self::Error>> + Send;

    /// Moves the head of the event's queue, up to `room` buyers in exit order (score,
    /// arrival), to admitted, expiring at `expires`, with the ids after the event's issued ones
    /// (the row of [`Self::LOCK_POLICY`] is `policy`). The customers in exit order with their
    /// ids; none when the queue is empty.
    fn admit_head(
        conn: &mut Self::Connection,
        policy: &Self::Row,
        event: Uuid,
        room: u64,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, Self::Error>> + Send;

    /// A policy row's policy, `None` when its mode is NULL.
    fn policy_of(row: &Self::Row) -> Result<Option<AdmissionPolicy>, Self::Error> {
        let mode: Option<String> = row.try_get("mode")?;
        let Some(mode) = mode else {
            return Ok(None);
        };
        let limit: Option<Self::Small> = row.try_get("admission_limit")?;
        let limit = limit.and_then(|l| u32::try_from(l.into()).ok());
        let order: Option<String> = row.try_get("queue_order")?;
        let window: Option<i64> = row.try_get("window_ms")?;
        match (limit, order, window) {
            (Some(limit), Some(order), Some(window)) => Ok(Some(AdmissionPolicy::from_stored(
                &mode, limit, &order, window,
            )?)),
            _ => Err(Error::internal("an incomplete waiting-room policy row").into()),
        }
    }

    /// Sets or (`None`) clears the event's policy.
    async fn set_policy(
        pool: &Pool<Self>,
        event: EventId,
        policy: Option<AdmissionPolicy>,
    ) -> Result<(), Self::Error> {
        let id = event.as_uuid();
        let query = match policy {
            Some(policy) => sqlx::query(Self::SET_POLICY)
                .bind(id)
                .bind(policy.mode().kind())
                .bind(Self::small(policy.mode().limit()))
                .bind(policy.order().name())
                .bind(policy.window_ms()),
            None => sqlx::query(Self::CLEAR_POLICY).bind(id),
        };
        query.execute(pool).await?;
        Ok(())
    }

    /// The event's policy, `None` when it has none.
    async fn policy(
        pool: &Pool<Self>,
        event: EventId,
    ) -> Result<Option<AdmissionPolicy>, Self::Error> {
        let row = sqlx::query(Self::READ_POLICY)
            .bind(event.as_uuid())
            .fetch_optional(pool)
            .await?;
        Ok(row.as_ref().map(Self::policy_of).transpose()?.flatten())
    }

    /// One attempt at a join (`lottery` given) or a place read, in a transaction sharing the
    /// policy row.
    async fn join_or_read(
        pool: &Pool<Self>,
        event: EventId,
        customer: &CustomerId,
        lottery: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Place, Self::Error> {
        let id = event.as_uuid();
        let mut tx = Self::begin(pool).await?;
        let row = sqlx::query(Self::SHARE_POLICY)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(policy) = row.as_ref().map(Self::policy_of).transpose()?.flatten() else {
            tx.commit().await?;
            return Ok(Place::NotRequired);
        };
        if let Some(lottery) = lottery {
            let admitted = sqlx::query(Self::LIVE_ADMISSION)
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
                sqlx::query(Self::ENQUEUE)
                    .bind(id)
                    .bind(customer.as_str())
                    .bind(Self::serial(score))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let place = Self::place_in(&mut tx, id, policy, customer, now).await?;
        tx.commit().await?;
        Ok(place)
    }

    /// The customer's place, read inside a transaction that holds the policy row.
    async fn place_in(
        conn: &mut Self::Connection,
        event: Uuid,
        policy: AdmissionPolicy,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Place, Self::Error> {
        let live = sqlx::query(Self::LIVE_ADMISSION)
            .bind(event)
            .bind(customer.as_str())
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = live {
            return Ok(Place::Admitted(Admission {
                customer: customer.clone(),
                id: Self::admission_id(row.try_get("admission_id")?)?,
                expires: row.try_get("expires_at")?,
            }));
        }
        let key = sqlx::query(Self::QUEUE_KEY)
            .bind(event)
            .bind(customer.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(key) = key else {
            return Ok(Place::Absent);
        };
        let (score, arrival): (Self::Serial, Self::Serial) =
            (key.try_get("score")?, key.try_get("arrival")?);
        let ahead = Self::count_ahead(conn, event, score, arrival).await?;
        Ok(Place::Waiting {
            position: ahead as u64 + 1,
            policy,
        })
    }

    /// One attempt at an admission step: the head of the queue admitted as far as the policy
    /// has room.
    async fn admit(
        pool: &Pool<Self>,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Admission>, Self::Error> {
        let id = event.as_uuid();
        let mut tx = Self::begin(pool).await?;
        let Some(row) = sqlx::query(Self::LOCK_POLICY)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.commit().await?;
            return Ok(Vec::new());
        };
        let Some(policy) = Self::policy_of(&row)? else {
            tx.commit().await?;
            return Ok(Vec::new());
        };
        let rate_second: i64 = row.try_get("rate_second")?;
        let rate_count: Self::Small = row.try_get("rate_count")?;
        sqlx::query(Self::DROP_LAPSED)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let second = now.timestamp_millis().div_euclid(1000);
        let used: i64 = match policy.mode() {
            AdmissionMode::Concurrent(_) => sqlx::query(Self::COUNT_ADMISSIONS)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?,
            AdmissionMode::PerSecond(_) if rate_second == second => rate_count.into(),
            AdmissionMode::PerSecond(_) => 0,
        };
        let room = i64::from(policy.mode().limit()) - used;
        if room <= 0 {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let expires = now + policy.window();
        let admitted = Self::admit_head(&mut tx, &row, id, room as u64, expires).await?;
        if admitted.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let count = match policy.mode() {
            AdmissionMode::PerSecond(_) => used + admitted.len() as i64,
            AdmissionMode::Concurrent(_) => 0,
        };
        sqlx::query(Self::COUNT_STEP)
            .bind(Self::serial(admitted.len() as u64))
            .bind(second)
            .bind(Self::small(count as u32))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        admitted
            .into_iter()
            .map(|(customer, n)| {
                Ok(Admission {
                    customer: CustomerId::new(customer)
                        .map_err(|e| Error::internal(format!("a stored customer id: {e}")))?,
                    id: n,
                    expires,
                })
            })
            .collect()
    }

    /// The purchase gate: takes the customer's admission for a purchase, if the event has a
    /// policy.
    async fn begin_purchase(
        pool: &Pool<Self>,
        event: EventId,
        customer: &CustomerId,
        admission: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Gate, Self::Error> {
        let id = event.as_uuid();
        if Self::policy(pool, event).await?.is_none() {
            return Ok(Gate::NotRequired);
        }
        let Some(admission) = admission else {
            return Ok(Gate::Refused(AdmissionRefusal::Missing));
        };
        let Ok(admission) = Self::Serial::try_from(admission) else {
            return Ok(Gate::Refused(AdmissionRefusal::NotAdmitted));
        };
        let taken = sqlx::query(Self::TAKE_ADMISSION)
            .bind(id)
            .bind(customer.as_str())
            .bind(admission)
            .bind(now)
            .execute(pool)
            .await?;
        if Self::rows_affected(&taken) == 1 {
            return Ok(Gate::Granted);
        }
        let in_use: Option<bool> = sqlx::query(Self::ADMISSION_IN_USE)
            .bind(id)
            .bind(customer.as_str())
            .bind(admission)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        Ok(Gate::Refused(if in_use == Some(true) {
            AdmissionRefusal::InUse
        } else {
            AdmissionRefusal::NotAdmitted
        }))
    }

    /// One attempt at ending a purchase under an admission: used up when `bought`, else given
    /// back.
    async fn finish_purchase(
        pool: &Pool<Self>,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<(), Self::Error> {
        let Ok(admission) = Self::Serial::try_from(admission) else {
            return Ok(());
        };
        let statement = if bought {
            Self::USE_UP
        } else {
            Self::GIVE_BACK
        };
        sqlx::query(statement)
            .bind(event.as_uuid())
            .bind(customer.as_str())
            .bind(admission)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// One attempt at forgetting the event's queue, admissions and policy.
    async fn forget(pool: &Pool<Self>, event: EventId) -> Result<(), Self::Error> {
        let id = event.as_uuid();
        let mut tx = Self::begin(pool).await?;
        for statement in [
            Self::FORGET_QUEUE,
            Self::FORGET_ADMISSIONS,
            Self::FORGET_POLICY,
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many wait and how many are admitted at `now`.
    async fn occupancy(
        pool: &Pool<Self>,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<Occupancy, Self::Error> {
        let id = event.as_uuid();
        let waiting: i64 = sqlx::query(Self::COUNT_WAITING)
            .bind(id)
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        let admitted: i64 = sqlx::query(Self::COUNT_LIVE)
            .bind(id)
            .bind(now)
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        Ok(Occupancy {
            waiting: waiting as u64,
            admitted: admitted as u64,
        })
    }
}
