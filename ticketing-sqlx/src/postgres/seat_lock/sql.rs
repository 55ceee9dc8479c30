//! The SQL seat lock's statements on PostgreSQL. A missing seat or zone row means "free";
//! `until` NULL with an order means "sold". Lists are bound as arrays.

/// Binds: event. Shared lock on the marker, failing at once (`55P03`) while a rebuild holds it.
pub(super) const SHARE_MARKER_NOWAIT: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR SHARE NOWAIT";

/// Binds: event. Shared lock on the marker, waiting for a rebuild or a wipe to finish.
pub(super) const SHARE_MARKER: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR SHARE";

pub(super) const ENSURE_MARKER: &str = "INSERT INTO seat_lock_events (event_id, loaded) \
     VALUES ($1, FALSE) ON CONFLICT (event_id) DO NOTHING";

pub(super) const LOCK_MARKER: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR UPDATE";

/// [`LOCK_MARKER`] without queueing: fails at once (`55P03`) when the marker is busy.
pub(super) const LOCK_MARKER_NOWAIT: &str =
    "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR UPDATE NOWAIT";

pub(super) const SET_LOADED: &str = "UPDATE seat_lock_events SET loaded = TRUE WHERE event_id = $1";

/// Binds: event, seat keys (sorted). The rows of these seats, locked in key order.
pub(super) const LOCK_SEATS: &str = "SELECT seat_key, order_id, until FROM seat_lock_seats \
     WHERE event_id = $1 AND seat_key = ANY($2) ORDER BY seat_key FOR UPDATE";

/// Binds: event, seat keys. Runs outside the hold's transaction, so its brief locks end at once.
pub(super) const CREATE_SEATS: &str = "INSERT INTO seat_lock_seats (event_id, seat_key) \
     SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT (event_id, seat_key) DO NOTHING";

/// Binds: event, zone codes (sorted). The rows of these zones, locked in code order.
pub(super) const LOCK_ZONES: &str = "SELECT zone_code FROM seat_lock_zones \
     WHERE event_id = $1 AND zone_code = ANY($2) ORDER BY zone_code FOR UPDATE";

/// Binds: event, zone codes.
pub(super) const CREATE_ZONES: &str = "INSERT INTO seat_lock_zones (event_id, zone_code) \
     SELECT $1, z FROM unnest($2::text[]) AS z ON CONFLICT (event_id, zone_code) DO NOTHING";

/// Binds: event, zone, order, now. Places held or sold by other orders.
pub(super) const TAKEN_BY_OTHERS: &str = "SELECT COALESCE(SUM(quantity), 0)::bigint AS taken \
     FROM seat_lock_zone_holds WHERE event_id = $1 AND zone_code = $2 AND order_id <> $3 \
     AND (until IS NULL OR until > $4)";

/// Binds: order, until, event, seat keys. Holds these seats for the order; a seat this order
/// bought stays sold.
pub(super) const HOLD_SEATS: &str = "UPDATE seat_lock_seats SET order_id = $1, until = $2 \
     WHERE event_id = $3 AND seat_key = ANY($4) \
     AND NOT (order_id IS NOT DISTINCT FROM $1 AND until IS NULL)";

/// Binds: event, zone, now.
pub(super) const DROP_LAPSED_ZONE_HOLDS: &str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = $1 AND zone_code = $2 AND until IS NOT NULL AND until <= $3";

/// Binds: event, zone, order, quantity, until. Replaces the order's earlier hold; a sale stays.
pub(super) const HOLD_ZONE: &str = "INSERT INTO seat_lock_zone_holds AS h \
     (event_id, zone_code, order_id, quantity, until) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (event_id, zone_code, order_id) DO UPDATE SET \
     quantity = CASE WHEN h.until IS NULL THEN h.quantity ELSE EXCLUDED.quantity END, \
     until = CASE WHEN h.until IS NULL THEN NULL ELSE EXCLUDED.until END";

/// Binds: event, seat keys, order. Frees these seats. Fenced: only this order's seats.
pub(super) const RELEASE_SEATS: &str = "UPDATE seat_lock_seats SET order_id = NULL, until = NULL \
     WHERE event_id = $1 AND seat_key = ANY($2) AND order_id = $3";

/// Binds: event, zone codes, order. Drops this order's holds (or sales) in these zones.
pub(super) const RELEASE_ZONES: &str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = $1 AND zone_code = ANY($2) AND order_id = $3";

/// Binds: order, event, seat keys. Sells these seats to the order, whoever holds them; a free
/// seat stays free (a release that overtook this mark, e.g. a refund, must win).
pub(super) const SELL_SEATS: &str = "UPDATE seat_lock_seats SET order_id = $1, until = NULL \
     WHERE event_id = $2 AND seat_key = ANY($3) AND order_id IS NOT NULL";

/// Binds: quantity, event, zone, order. Only the order's own entry turns sold.
pub(super) const SELL_ZONE: &str = "UPDATE seat_lock_zone_holds SET quantity = $1, until = NULL \
     WHERE event_id = $2 AND zone_code = $3 AND order_id = $4";

/// Binds: event, now. One consistent read (one statement, one snapshot): the marker row ('M'),
/// the held or sold seats ('S') and the taken places per zone ('Z').
pub(super) const SNAPSHOT: &str = "\
    SELECT 'M'::text AS part, NULL::text AS name, NULL::uuid AS order_id, \
           NULL::timestamptz AS until, 0::bigint AS quantity \
      FROM seat_lock_events WHERE event_id = $1 AND loaded \
    UNION ALL \
    SELECT 'S', seat_key, order_id, until, 0 FROM seat_lock_seats \
      WHERE event_id = $1 AND order_id IS NOT NULL AND (until IS NULL OR until > $2) \
    UNION ALL \
    SELECT 'Z', zone_code, NULL, NULL, \
           SUM(CASE WHEN until IS NULL OR until > $2 THEN quantity ELSE 0 END)::bigint \
      FROM seat_lock_zone_holds WHERE event_id = $1 GROUP BY zone_code";

/// Binds: event, key range start, key range end, now, zone. [`SNAPSHOT`] of one zone: seats
/// whose key lies in `[$2, $3)` (the zone's key range) and one zone's holds.
pub(super) const ZONE_SNAPSHOT: &str = "\
    SELECT 'M'::text AS part, NULL::text AS name, NULL::uuid AS order_id, \
           NULL::timestamptz AS until, 0::bigint AS quantity \
      FROM seat_lock_events WHERE event_id = $1 AND loaded \
    UNION ALL \
    SELECT 'S', seat_key, order_id, until, 0 FROM seat_lock_seats \
      WHERE event_id = $1 AND seat_key >= $2 AND seat_key < $3 \
        AND order_id IS NOT NULL AND (until IS NULL OR until > $4) \
    UNION ALL \
    SELECT 'Z', zone_code, NULL, NULL, \
           SUM(CASE WHEN until IS NULL OR until > $4 THEN quantity ELSE 0 END)::bigint \
      FROM seat_lock_zone_holds WHERE event_id = $1 AND zone_code = $5 GROUP BY zone_code";

pub(super) const FORGET_SEATS: &str = "DELETE FROM seat_lock_seats WHERE event_id = $1";
pub(super) const FORGET_ZONE_HOLDS: &str = "DELETE FROM seat_lock_zone_holds WHERE event_id = $1";
pub(super) const FORGET_ZONES: &str = "DELETE FROM seat_lock_zones WHERE event_id = $1";
pub(super) const FORGET_MARKER: &str = "DELETE FROM seat_lock_events WHERE event_id = $1";

/// Every event's state, in the order a hold locks it.
pub(super) const FORGET_ALL: [&str; 4] = [
    "DELETE FROM seat_lock_events",
    "DELETE FROM seat_lock_zones",
    "DELETE FROM seat_lock_seats",
    "DELETE FROM seat_lock_zone_holds",
];

/// Binds: event, seat keys, orders, deadlines (NULL for a sale). Rows restored by a rebuild. A
/// row a concurrent `mark_sold` wrote meanwhile (sold) is kept: a payment is never downgraded to
/// a hold. Both `CASE`s read the row as it was (PostgreSQL's SET sees the old values).
pub(super) const RESTORE_SEATS: &str = "INSERT INTO seat_lock_seats AS s \
     (event_id, seat_key, order_id, until) \
     SELECT $1, r.seat_key, r.order_id, r.until \
     FROM unnest($2::text[], $3::uuid[], $4::timestamptz[]) AS r(seat_key, order_id, until) \
     ON CONFLICT (event_id, seat_key) DO UPDATE SET \
     until = CASE WHEN s.until IS NULL AND s.order_id IS NOT NULL THEN NULL ELSE EXCLUDED.until END, \
     order_id = CASE WHEN s.until IS NULL AND s.order_id IS NOT NULL THEN s.order_id \
                ELSE EXCLUDED.order_id END";

/// Binds: event, zones, orders, quantities, deadlines (NULL for a sale). An order's row that an
/// earlier page of the same rebuild wrote takes the places of this one too: sold if either is,
/// else the later deadline.
pub(super) const RESTORE_ZONE_HOLDS: &str = "INSERT INTO seat_lock_zone_holds AS h \
     (event_id, zone_code, order_id, quantity, until) \
     SELECT $1, r.zone_code, r.order_id, r.quantity, r.until \
     FROM unnest($2::text[], $3::uuid[], $4::bigint[], $5::timestamptz[]) \
     AS r(zone_code, order_id, quantity, until) \
     ON CONFLICT (event_id, zone_code, order_id) DO UPDATE SET \
     quantity = h.quantity + EXCLUDED.quantity, \
     until = CASE WHEN h.until IS NULL OR EXCLUDED.until IS NULL THEN NULL \
             ELSE GREATEST(h.until, EXCLUDED.until) END";
