//! The SQL seat lock's statements. A missing seat or zone row means "free"; `until` NULL with an
//! order means "sold".

/// Shared lock on the marker, failing at once (error 1205) while a rebuild holds it exclusively.
pub(super) const SHARE_MARKER_NOWAIT: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = ? LOCK IN SHARE MODE NOWAIT";

/// Shared lock on the marker, waiting for an exclusive holder (a rebuild or a wipe) to finish.
pub(super) const SHARE_MARKER: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = ? LOCK IN SHARE MODE";

pub(super) const ENSURE_MARKER: &str =
    "INSERT IGNORE INTO seat_lock_events (event_id, loaded) VALUES (?, FALSE)";

pub(super) const LOCK_MARKER: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = ? FOR UPDATE";

/// [`LOCK_MARKER`] without queueing: fails at once (lock wait timeout) when the marker is busy.
pub(super) const LOCK_MARKER_NOWAIT: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = ? FOR UPDATE NOWAIT";

pub(super) const SET_LOADED: &str = "UPDATE seat_lock_events SET loaded = TRUE WHERE event_id = ?";

/// Binds: event, seat keys (sorted). Locks the rows in key order.
pub(super) const LOCK_SEATS: &str = "SELECT seat_key, order_id, until FROM seat_lock_seats \
     WHERE event_id = ? AND seat_key IN ({list}) ORDER BY seat_key FOR UPDATE";

/// Rows `(event, seat_key)`; runs outside the hold's transaction, so its brief locks end at once.
pub(super) const CREATE_SEATS: &str =
    "INSERT IGNORE INTO seat_lock_seats (event_id, seat_key) VALUES {list}";

/// Binds: event, zone codes (sorted).
pub(super) const LOCK_ZONES: &str = "SELECT zone_code FROM seat_lock_zones \
     WHERE event_id = ? AND zone_code IN ({list}) ORDER BY zone_code FOR UPDATE";

/// Rows `(event, zone_code)`.
pub(super) const CREATE_ZONES: &str =
    "INSERT IGNORE INTO seat_lock_zones (event_id, zone_code) VALUES {list}";

/// Binds: event, zone, order, now. Places held or sold by other orders.
pub(super) const TAKEN_BY_OTHERS: &str = "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) AS taken \
     FROM seat_lock_zone_holds WHERE event_id = ? AND zone_code = ? AND order_id <> ? \
     AND (until IS NULL OR until > ?)";

/// Binds: order, until, event, seat keys, order. A seat this order bought stays sold.
pub(super) const HOLD_SEATS: &str = "UPDATE seat_lock_seats SET order_id = ?, until = ? \
     WHERE event_id = ? AND seat_key IN ({list}) AND NOT (order_id <=> ? AND until IS NULL)";

/// Binds: event, zone, now.
pub(super) const DROP_LAPSED_ZONE_HOLDS: &str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = ? AND zone_code = ? AND until IS NOT NULL AND until <= ?";

/// Binds: event, zone, order, quantity, until. Replaces the order's earlier hold; a sale stays.
pub(super) const HOLD_ZONE: &str = "INSERT INTO seat_lock_zone_holds \
     (event_id, zone_code, order_id, quantity, until) VALUES (?, ?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE quantity = IF(until IS NULL, quantity, VALUES(quantity)), \
     until = IF(until IS NULL, NULL, VALUES(until))";

/// Binds: event, seat keys, order. Fenced: only this order's seats.
pub(super) const RELEASE_SEATS: &str = "UPDATE seat_lock_seats SET order_id = NULL, until = NULL \
     WHERE event_id = ? AND seat_key IN ({list}) AND order_id = ?";

/// Binds: event, zone codes, order.
pub(super) const RELEASE_ZONES: &str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = ? AND zone_code IN ({list}) AND order_id = ?";

/// Binds: order, event, seat keys. Sold to the order, whoever holds the seat; a free seat stays
/// free (a release that overtook this mark, e.g. a refund, must win).
pub(super) const SELL_SEATS: &str = "UPDATE seat_lock_seats SET order_id = ?, until = NULL \
     WHERE event_id = ? AND seat_key IN ({list}) AND order_id IS NOT NULL";

/// Binds: quantity, event, zone, order. Only the order's own entry turns sold; no entry, nothing.
pub(super) const SELL_ZONE: &str = "UPDATE seat_lock_zone_holds SET quantity = ?, until = NULL \
     WHERE event_id = ? AND zone_code = ? AND order_id = ?";

/// Binds: event, event, now, now, event. One consistent read: the marker row ('M'), the held or
/// sold seats ('S') and the taken places per zone ('Z').
pub(super) const SNAPSHOT: &str = "\
    SELECT 'M' AS part, NULL AS name, NULL AS order_id, NULL AS until, 0 AS quantity \
      FROM seat_lock_events WHERE event_id = ? AND loaded \
    UNION ALL \
    SELECT 'S', seat_key, order_id, until, 0 FROM seat_lock_seats \
      WHERE event_id = ? AND order_id IS NOT NULL AND (until IS NULL OR until > ?) \
    UNION ALL \
    SELECT 'Z', zone_code, NULL, NULL, \
           CAST(SUM(IF(until IS NULL OR until > ?, quantity, 0)) AS SIGNED) \
      FROM seat_lock_zone_holds WHERE event_id = ? GROUP BY zone_code";

pub(super) const FORGET_SEATS: &str = "DELETE FROM seat_lock_seats WHERE event_id = ?";
pub(super) const FORGET_ZONE_HOLDS: &str = "DELETE FROM seat_lock_zone_holds WHERE event_id = ?";
pub(super) const FORGET_ZONES: &str = "DELETE FROM seat_lock_zones WHERE event_id = ?";
pub(super) const FORGET_MARKER: &str = "DELETE FROM seat_lock_events WHERE event_id = ?";

/// Every event's state, in the order a hold locks it.
pub(super) const FORGET_ALL: [&str; 4] = [
    "DELETE FROM seat_lock_events",
    "DELETE FROM seat_lock_zones",
    "DELETE FROM seat_lock_seats",
    "DELETE FROM seat_lock_zone_holds",
];

/// Rows `(event, seat_key, order, until)` restored by a rebuild. A row a concurrent `mark_sold`
/// wrote meanwhile (sold) is kept: a payment is never downgraded to a hold. MySQL assigns left to
/// right with the new values, so `until` goes first and `order_id` then sees the new `until`.
pub(super) const RESTORE_SEATS: &str = "INSERT INTO seat_lock_seats (event_id, seat_key, order_id, until) \
     VALUES {list} ON DUPLICATE KEY UPDATE \
     until = IF(until IS NULL AND order_id IS NOT NULL, NULL, VALUES(until)), \
     order_id = IF(until IS NULL AND order_id IS NOT NULL, order_id, VALUES(order_id))";

/// Rows `(event, zone, order, quantity, until)`, with the same rule.
pub(super) const RESTORE_ZONE_HOLDS: &str = "INSERT INTO seat_lock_zone_holds \
     (event_id, zone_code, order_id, quantity, until) VALUES {list} ON DUPLICATE KEY UPDATE \
     quantity = IF(until IS NULL, quantity, VALUES(quantity)), \
     until = IF(until IS NULL, NULL, VALUES(until))";
