//! The PostgreSQL waiting room's statements, for the shared flow ([`DatabaseWaitingRoom`]);
//! lists are bound as arrays, so each is a constant. A policy row with `mode` NULL means "no
//! policy".

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};
use ticketing_core::Error;
use uuid::Uuid;

use crate::flows::waiting_room::DatabaseWaitingRoom;
use crate::postgres::error::StoreError;

/// How many are ahead of the queue key ($2, $3).
const AHEAD: &str = "SELECT COUNT(*) FROM waiting_room_queue \
     WHERE event_id = $1 AND (score, arrival) < ($2, $3)";

/// Takes the head of the queue, `$2` buyers, in exit order.
const POP_HEAD: &str = "DELETE FROM waiting_room_queue WHERE event_id = $1 \
     AND customer_id IN (SELECT customer_id FROM waiting_room_queue WHERE event_id = $1 \
     ORDER BY score, arrival LIMIT $2 FOR UPDATE) RETURNING customer_id, score, arrival";

/// Writes admissions `(customer, id)` (arrays `$2`, `$3`) of event `$1`, expiring at `$4`.
const ADMIT: &str = "INSERT INTO waiting_room_admissions \
     (event_id, customer_id, admission_id, expires_at, in_use) \
     SELECT $1, c, i, $4, FALSE FROM UNNEST($2::text[], $3::bigint[]) AS t(c, i) \
     ON CONFLICT (event_id, customer_id) DO UPDATE SET admission_id = EXCLUDED.admission_id, \
     expires_at = EXCLUDED.expires_at, in_use = FALSE";

impl DatabaseWaitingRoom for Postgres {
    type Serial = i64;
    type Small = i32;

    const SHARE_POLICY: &'static str = "SELECT mode, admission_limit, queue_order, window_ms \
         FROM waiting_room_policies WHERE event_id = $1 FOR SHARE";
    /// Also reads `issued`, for [`DatabaseWaitingRoom::admit_head`].
    const LOCK_POLICY: &'static str = "SELECT mode, admission_limit, queue_order, window_ms, \
         issued, rate_second, rate_count FROM waiting_room_policies WHERE event_id = $1 \
         FOR UPDATE";
    const READ_POLICY: &'static str = "SELECT mode, admission_limit, queue_order, window_ms \
         FROM waiting_room_policies WHERE event_id = $1";
    const SET_POLICY: &'static str = "INSERT INTO waiting_room_policies \
         (event_id, mode, admission_limit, queue_order, window_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (event_id) DO UPDATE SET mode = EXCLUDED.mode, \
         admission_limit = EXCLUDED.admission_limit, queue_order = EXCLUDED.queue_order, \
         window_ms = EXCLUDED.window_ms";
    const CLEAR_POLICY: &'static str = "UPDATE waiting_room_policies \
         SET mode = NULL, admission_limit = NULL, queue_order = NULL, window_ms = NULL \
         WHERE event_id = $1";
    const LIVE_ADMISSION: &'static str = "SELECT admission_id, expires_at \
         FROM waiting_room_admissions WHERE event_id = $1 AND customer_id = $2 AND expires_at > $3";
    const ENQUEUE: &'static str = "INSERT INTO waiting_room_queue (event_id, customer_id, score) \
         VALUES ($1, $2, $3) ON CONFLICT (event_id, customer_id) DO NOTHING";
    const QUEUE_KEY: &'static str =
        "SELECT score, arrival FROM waiting_room_queue WHERE event_id = $1 AND customer_id = $2";
    const DROP_LAPSED: &'static str =
        "DELETE FROM waiting_room_admissions WHERE event_id = $1 AND expires_at <= $2";
    const COUNT_ADMISSIONS: &'static str =
        "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = $1";
    const COUNT_LIVE: &'static str =
        "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = $1 AND expires_at > $2";
    const COUNT_WAITING: &'static str =
        "SELECT COUNT(*) FROM waiting_room_queue WHERE event_id = $1";
    const COUNT_STEP: &'static str = "UPDATE waiting_room_policies \
         SET issued = issued + $1, rate_second = $2, rate_count = $3 WHERE event_id = $4";
    const TAKE_ADMISSION: &'static str = "UPDATE waiting_room_admissions SET in_use = TRUE \
         WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND expires_at > $4 \
         AND NOT in_use";
    const ADMISSION_IN_USE: &'static str = "SELECT in_use FROM waiting_room_admissions \
         WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND expires_at > $4";
    const USE_UP: &'static str = "DELETE FROM waiting_room_admissions \
         WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND in_use";
    const GIVE_BACK: &'static str = "UPDATE waiting_room_admissions SET in_use = FALSE \
         WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND in_use";
    const FORGET_QUEUE: &'static str = "DELETE FROM waiting_room_queue WHERE event_id = $1";
    const FORGET_ADMISSIONS: &'static str =
        "DELETE FROM waiting_room_admissions WHERE event_id = $1";
    const FORGET_POLICY: &'static str = "DELETE FROM waiting_room_policies WHERE event_id = $1";

    fn serial(n: u64) -> i64 {
        n as i64
    }

    fn admission_id(stored: i64) -> Result<u64, StoreError> {
        u64::try_from(stored)
            .map_err(|_| Error::internal(format!("a stored admission id {stored}")).into())
    }

    fn small(n: u32) -> i32 {
        n as i32
    }

    async fn count_ahead(
        conn: &mut PgConnection,
        event: Uuid,
        score: i64,
        arrival: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(AHEAD)
            .bind(event)
            .bind(score)
            .bind(arrival)
            .fetch_one(conn)
            .await?
            .try_get(0)?)
    }

    /// Deletes the head from the queue, returning it, and writes its admissions with ids after
    /// the policy row's `issued`.
    async fn admit_head(
        conn: &mut PgConnection,
        policy: &PgRow,
        event: Uuid,
        room: u64,
        expires: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let issued = Self::admission_id(policy.try_get("issued")?)?;
        let mut head: Vec<(i64, i64, String)> = sqlx::query(POP_HEAD)
            .bind(event)
            .bind(room as i64)
            .fetch_all(&mut *conn)
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
            return Ok(Vec::new());
        }
        // DELETE … RETURNING has no order: the exit order is (score, arrival).
        head.sort();
        let customers: Vec<String> = head.into_iter().map(|(_, _, c)| c).collect();
        let ids: Vec<i64> = (issued + 1..)
            .take(customers.len())
            .map(|n| n as i64)
            .collect();
        sqlx::query(ADMIT)
            .bind(event)
            .bind(&customers)
            .bind(&ids)
            .bind(expires)
            .execute(&mut *conn)
            .await?;
        Ok(customers
            .into_iter()
            .zip(ids)
            .map(|(customer, n)| (customer, n as u64))
            .collect())
    }
}
