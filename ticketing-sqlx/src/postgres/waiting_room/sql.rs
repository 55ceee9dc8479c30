//! The PostgreSQL waiting room's statements; lists are bound as arrays, so each is a constant. A
//! policy row with `mode` NULL means "no policy".

/// The policy, locked FOR SHARE by a join or a place read (admission steps wait for them).
pub(super) const SHARE_POLICY: &str = "SELECT mode, admission_limit, queue_order, window_ms \
     FROM waiting_room_policies WHERE event_id = $1 FOR SHARE";

/// The policy with its counters, locked by an admission step.
pub(super) const LOCK_POLICY: &str = "SELECT mode, admission_limit, queue_order, window_ms, \
     issued, rate_second, rate_count FROM waiting_room_policies WHERE event_id = $1 FOR UPDATE";

pub(super) const READ_POLICY: &str = "SELECT mode, admission_limit, queue_order, window_ms \
     FROM waiting_room_policies WHERE event_id = $1";

pub(super) const SET_POLICY: &str = "INSERT INTO waiting_room_policies \
     (event_id, mode, admission_limit, queue_order, window_ms) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (event_id) DO UPDATE SET mode = EXCLUDED.mode, \
     admission_limit = EXCLUDED.admission_limit, queue_order = EXCLUDED.queue_order, \
     window_ms = EXCLUDED.window_ms";

pub(super) const CLEAR_POLICY: &str = "UPDATE waiting_room_policies \
     SET mode = NULL, admission_limit = NULL, queue_order = NULL, window_ms = NULL \
     WHERE event_id = $1";

/// A customer's admission that is live at `$3`.
pub(super) const LIVE_ADMISSION: &str = "SELECT admission_id, expires_at \
     FROM waiting_room_admissions WHERE event_id = $1 AND customer_id = $2 AND expires_at > $3";

/// Queues a customer; a customer already queued keeps the place.
pub(super) const ENQUEUE: &str = "INSERT INTO waiting_room_queue (event_id, customer_id, score) \
     VALUES ($1, $2, $3) ON CONFLICT (event_id, customer_id) DO NOTHING";

pub(super) const QUEUE_KEY: &str =
    "SELECT score, arrival FROM waiting_room_queue WHERE event_id = $1 AND customer_id = $2";

/// How many are ahead of the queue key ($2, $3).
pub(super) const AHEAD: &str = "SELECT COUNT(*) FROM waiting_room_queue \
     WHERE event_id = $1 AND (score, arrival) < ($2, $3)";

pub(super) const DROP_LAPSED: &str =
    "DELETE FROM waiting_room_admissions WHERE event_id = $1 AND expires_at <= $2";

pub(super) const COUNT_ADMISSIONS: &str =
    "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = $1";

pub(super) const COUNT_LIVE: &str =
    "SELECT COUNT(*) FROM waiting_room_admissions WHERE event_id = $1 AND expires_at > $2";

pub(super) const COUNT_WAITING: &str =
    "SELECT COUNT(*) FROM waiting_room_queue WHERE event_id = $1";

/// Takes the head of the queue, `$2` buyers, in exit order.
pub(super) const POP_HEAD: &str = "DELETE FROM waiting_room_queue WHERE event_id = $1 \
     AND customer_id IN (SELECT customer_id FROM waiting_room_queue WHERE event_id = $1 \
     ORDER BY score, arrival LIMIT $2 FOR UPDATE) RETURNING customer_id, score, arrival";

/// Writes admissions `(customer, id)` (arrays `$2`, `$3`) of event `$1`, expiring at `$4`.
pub(super) const ADMIT: &str = "INSERT INTO waiting_room_admissions \
     (event_id, customer_id, admission_id, expires_at, in_use) \
     SELECT $1, c, i, $4, FALSE FROM UNNEST($2::text[], $3::bigint[]) AS t(c, i) \
     ON CONFLICT (event_id, customer_id) DO UPDATE SET admission_id = EXCLUDED.admission_id, \
     expires_at = EXCLUDED.expires_at, in_use = FALSE";

/// Counts the admissions of a step: `issued + $1`, and the rate's window.
pub(super) const COUNT_STEP: &str = "UPDATE waiting_room_policies \
     SET issued = issued + $1, rate_second = $2, rate_count = $3 WHERE event_id = $4";

/// Marks the admission in use: the gate's compare-and-set.
pub(super) const TAKE_ADMISSION: &str = "UPDATE waiting_room_admissions SET in_use = TRUE \
     WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND expires_at > $4 \
     AND NOT in_use";

/// Whether a refused admission is live but in use.
pub(super) const ADMISSION_IN_USE: &str = "SELECT in_use FROM waiting_room_admissions \
     WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND expires_at > $4";

pub(super) const USE_UP: &str = "DELETE FROM waiting_room_admissions \
     WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND in_use";

pub(super) const GIVE_BACK: &str = "UPDATE waiting_room_admissions SET in_use = FALSE \
     WHERE event_id = $1 AND customer_id = $2 AND admission_id = $3 AND in_use";

pub(super) const FORGET_QUEUE: &str = "DELETE FROM waiting_room_queue WHERE event_id = $1";

pub(super) const FORGET_ADMISSIONS: &str =
    "DELETE FROM waiting_room_admissions WHERE event_id = $1";

pub(super) const FORGET_POLICY: &str = "DELETE FROM waiting_room_policies WHERE event_id = $1";
