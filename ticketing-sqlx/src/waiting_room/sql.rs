//! The waiting room's statements on MySQL, for the shared flow
//! ([`DatabaseWaitingRoom`]). A policy row with `mode` NULL means "no policy".

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};
use uuid::Uuid;

use crate::codec::push_list;
use crate::error::StoreError;
use crate::flows::waiting_room::DatabaseWaitingRoom;

/// How many are ahead of the queue key (score, arrival) given twice as `?, ?, ?`.
const AHEAD: &str = "SELECT COUNT(*) FROM waiting_room_queue \
     WHERE event_id = ? AND (score < ? OR (score = ? AND arrival < ?))";

/// The head of the queue, `?` buyers, locked.
const HEAD: &str = "SELECT customer_id FROM waiting_room_queue WHERE event_id = ? \
     ORDER BY score, arrival LIMIT ? FOR UPDATE";

const ISSUED: &str = "SELECT issued FROM waiting_room_policies WHERE event_id = ?";

impl DatabaseWaitingRoom for MySql {
    type Serial = u64;
    type Small = u32;

    const SHARE_POLICY: &'static str = "SELECT mode, admission_limit, queue_order, window_ms \
         FROM waiting_room_policies WHERE event_id = ? LOCK IN SHARE MODE";
    const LOCK_POLICY: &'static str = "SELECT mode, admission_limit, queue_order, window_ms, \
         rate_second, rate_count FROM waiting_room_policies WHERE event_id = ? FOR UPDATE";
    const READ_POLICY: &'static str = "SELECT mode, admission_limit, queue_order, window_ms \
         FROM waiting_room_policies WHERE event_id = ?";
    const SET_POLICY: &'static str = "INSERT INTO waiting_room_policies \
         (event_id, mode, admission_limit, queue_order, window_ms) VALUES (?, ?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE mode = VALUES(mode), admission_limit = VALUES(admission_limit), \
         queue_order = VALUES(queue_order), window_ms = VALUES(window_ms)";
    const CLEAR_POLICY: &'static str = "UPDATE waiting_room_policies \
         SET mode = NULL, admission_limit = NULL, queue_order = NULL, window_ms = NULL \
         WHERE event_id = ?";
    const LIVE_ADMISSION: &'static str = "SELECT admission_id, expires_at \
         FROM waiting_room_admissions WHERE event_id = ? AND customer_id = ? AND expires_at > ?";
    const ENQUEUE: &'static str =
        "INSERT IGNORE INTO waiting_room_queue (event_id, customer_id, score) VALUES (?, ?, ?)";
    const QUEUE_KEY: &'static str =
        "SELECT score, arrival FROM waiting_room_queue WHERE event_id = ? AND customer_id = ?";
    const DROP_LAPSED: &'static str =
        "DELETE FROM waiting_room_admissions WHERE event_id = ? AND expires_at <= ?";
    const COUNT_ADMISSIONS: &'static str =
        "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = ?";
    const COUNT_LIVE: &'static str =
        "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = ? AND expires_at > ?";
    const COUNT_WAITING: &'static str =
        "SELECT COUNT(*) FROM waiting_room_queue WHERE event_id = ?";
    const COUNT_STEP: &'static str = "UPDATE waiting_room_policies \
         SET issued = issued + ?, rate_second = ?, rate_count = ? WHERE event_id = ?";
    const TAKE_ADMISSION: &'static str = "UPDATE waiting_room_admissions SET in_use = TRUE \
         WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND expires_at > ? \
         AND NOT in_use";
    const ADMISSION_IN_USE: &'static str = "SELECT in_use FROM waiting_room_admissions \
         WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND expires_at > ?";
    const USE_UP: &'static str = "DELETE FROM waiting_room_admissions \
         WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND in_use";
    const GIVE_BACK: &'static str = "UPDATE waiting_room_admissions SET in_use = FALSE \
         WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND in_use";
    const FORGET_QUEUE: &'static str = "DELETE FROM waiting_room_queue WHERE event_id = ?";
    const FORGET_ADMISSIONS: &'static str =
        "DELETE FROM waiting_room_admissions WHERE event_id = ?";
    const FORGET_POLICY: &'static str = "DELETE FROM waiting_room_policies WHERE event_id = ?";

    fn serial(n: u64) -> u64 {
        n
    }

    fn admission_id(stored: u64) -> Result<u64, StoreError> {
        Ok(stored)
    }

    fn small(n: u32) -> u32 {
        n
    }

    async fn count_ahead(
        conn: &mut MySqlConnection,
        event: Uuid,
        score: u64,
        arrival: u64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(AHEAD)
            .bind(event)
            .bind(score)
            .bind(score)
            .bind(arrival)
            .fetch_one(conn)
            .await?
            .try_get(0)?)
    }

    /// Reads the head, then the issued count, then deletes the head from the queue and writes
    /// its admissions.
    async fn admit_head(
        conn: &mut MySqlConnection,
        _policy: &sqlx::mysql::MySqlRow,
        event: Uuid,
        room: u64,
        expires: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let head: Vec<String> = sqlx::query(HEAD)
            .bind(event)
            .bind(room)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.try_get("customer_id"))
            .collect::<Result<_, _>>()?;
        if head.is_empty() {
            return Ok(Vec::new());
        }
        let issued: u64 = sqlx::query(ISSUED)
            .bind(event)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let admitted: Vec<(String, u64)> = head
            .iter()
            .zip(issued + 1..)
            .map(|(customer, n)| (customer.clone(), n))
            .collect();
        dequeue(event, &head).build().execute(&mut *conn).await?;
        admit(event, &admitted, expires)
            .build()
            .execute(&mut *conn)
            .await?;
        Ok(admitted)
    }
}

/// Deletes these customers from the event's queue.
fn dequeue(event: Uuid, customers: &[String]) -> QueryBuilder<MySql> {
    let mut query = QueryBuilder::new("DELETE FROM waiting_room_queue WHERE event_id = ");
    query.push_bind(event).push(" AND customer_id IN ");
    push_list(&mut query, customers.iter().cloned());
    query
}

/// Writes admissions `(customer, id)` of the event, all expiring at `expires`.
fn admit(event: Uuid, admitted: &[(String, u64)], expires: DateTime<Utc>) -> QueryBuilder<MySql> {
    let mut query = QueryBuilder::new(
        "INSERT INTO waiting_room_admissions \
         (event_id, customer_id, admission_id, expires_at, in_use) ",
    );
    query.push_values(admitted, |mut row, (customer, id)| {
        row.push_bind(event)
            .push_bind(customer.clone())
            .push_bind(*id)
            .push_bind(expires)
            .push_bind(false);
    });
    query.push(
        " ON DUPLICATE KEY UPDATE admission_id = VALUES(admission_id), \
         expires_at = VALUES(expires_at), in_use = FALSE",
    );
    query
}
