//! The waiting room's statements. A policy row with `mode` NULL means "no policy".

use chrono::{DateTime, Utc};
use sqlx::{MySql, QueryBuilder};
use uuid::Uuid;

use crate::codec::push_list;

/// The policy, taken in share mode by a join or a place read (admission steps wait for them).
pub(super) const SHARE_POLICY: &str = "SELECT mode, admission_limit, queue_order, window_ms \
     FROM waiting_room_policies WHERE event_id = ? LOCK IN SHARE MODE";

/// The policy with its counters, taken exclusively by an admission step.
pub(super) const LOCK_POLICY: &str = "SELECT mode, admission_limit, queue_order, window_ms, \
     rate_second, rate_count FROM waiting_room_policies WHERE event_id = ? FOR UPDATE";

pub(super) const READ_POLICY: &str = "SELECT mode, admission_limit, queue_order, window_ms \
     FROM waiting_room_policies WHERE event_id = ?";

pub(super) const SET_POLICY: &str = "INSERT INTO waiting_room_policies \
     (event_id, mode, admission_limit, queue_order, window_ms) VALUES (?, ?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE mode = VALUES(mode), admission_limit = VALUES(admission_limit), \
     queue_order = VALUES(queue_order), window_ms = VALUES(window_ms)";

pub(super) const CLEAR_POLICY: &str = "UPDATE waiting_room_policies \
     SET mode = NULL, admission_limit = NULL, queue_order = NULL, window_ms = NULL \
     WHERE event_id = ?";

/// A customer's admission that is live at `?` (expires after it).
pub(super) const LIVE_ADMISSION: &str = "SELECT admission_id, expires_at \
     FROM waiting_room_admissions WHERE event_id = ? AND customer_id = ? AND expires_at > ?";

/// Queues a customer; a customer already queued keeps the place.
pub(super) const ENQUEUE: &str =
    "INSERT IGNORE INTO waiting_room_queue (event_id, customer_id, score) VALUES (?, ?, ?)";

pub(super) const QUEUE_KEY: &str =
    "SELECT score, arrival FROM waiting_room_queue WHERE event_id = ? AND customer_id = ?";

/// How many are ahead of the queue key (score, arrival) given twice as `?, ?, ?`.
pub(super) const AHEAD: &str = "SELECT COUNT(*) FROM waiting_room_queue \
     WHERE event_id = ? AND (score < ? OR (score = ? AND arrival < ?))";

pub(super) const DROP_LAPSED: &str =
    "DELETE FROM waiting_room_admissions WHERE event_id = ? AND expires_at <= ?";

pub(super) const COUNT_ADMISSIONS: &str =
    "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = ?";

pub(super) const COUNT_LIVE: &str =
    "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = ? AND expires_at > ?";

pub(super) const COUNT_WAITING: &str = "SELECT COUNT(*) FROM waiting_room_queue WHERE event_id = ?";

/// The head of the queue, `?` buyers, locked.
pub(super) const HEAD: &str = "SELECT customer_id FROM waiting_room_queue WHERE event_id = ? \
     ORDER BY score, arrival LIMIT ? FOR UPDATE";

/// Counts the admissions of a step: `issued + ?`, and the rate's window.
pub(super) const COUNT_STEP: &str = "UPDATE waiting_room_policies \
     SET issued = issued + ?, rate_second = ?, rate_count = ? WHERE event_id = ?";

pub(super) const ISSUED: &str = "SELECT issued FROM waiting_room_policies WHERE event_id = ?";

/// Marks the admission in use: the gate's compare-and-set.
pub(super) const TAKE_ADMISSION: &str = "UPDATE waiting_room_admissions SET in_use = TRUE \
     WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND expires_at > ? \
     AND NOT in_use";

/// Whether a refused admission is live but in use.
pub(super) const ADMISSION_IN_USE: &str = "SELECT in_use FROM waiting_room_admissions \
     WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND expires_at > ?";

pub(super) const USE_UP: &str = "DELETE FROM waiting_room_admissions \
     WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND in_use";

pub(super) const GIVE_BACK: &str = "UPDATE waiting_room_admissions SET in_use = FALSE \
     WHERE event_id = ? AND customer_id = ? AND admission_id = ? AND in_use";

pub(super) const FORGET_QUEUE: &str = "DELETE FROM waiting_room_queue WHERE event_id = ?";

pub(super) const FORGET_ADMISSIONS: &str = "DELETE FROM waiting_room_admissions WHERE event_id = ?";

pub(super) const FORGET_POLICY: &str = "DELETE FROM waiting_room_policies WHERE event_id = ?";

/// Deletes these customers from the event's queue.
pub(super) fn dequeue(event: Uuid, customers: &[String]) -> QueryBuilder<MySql> {
    let mut query = QueryBuilder::new("DELETE FROM waiting_room_queue WHERE event_id = ");
    query.push_bind(event).push(" AND customer_id IN ");
    push_list(&mut query, customers.iter().cloned());
    query
}

/// Writes admissions `(customer, id)` of the event, all expiring at `expires`.
pub(super) fn admit(
    event: Uuid,
    admitted: &[(String, u64)],
    expires: DateTime<Utc>,
) -> QueryBuilder<MySql> {
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
