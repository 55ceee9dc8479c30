//! The SQL seat lock's statements on PostgreSQL. A missing seat or zone row means "free";
//! `until` NULL with an order means "sold". Lists are bound as arrays.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::flows::seat_lock::DatabaseSeatLock;
use crate::lock_state::{SeatRow, ZoneRow};
use crate::postgres::error::{code, sqlstate};

impl DatabaseSeatLock for Postgres {
    /// Binds: event. Shared lock on the marker, failing at once (`55P03`) while a rebuild holds it.
    const SHARE_MARKER_NOWAIT: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR SHARE NOWAIT";
    /// Binds: event. Shared lock on the marker, waiting for a rebuild or a wipe to finish.
    const SHARE_MARKER: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR SHARE";
    const ENSURE_MARKER: &'static str = "INSERT INTO seat_lock_events (event_id, loaded) \
     VALUES ($1, FALSE) ON CONFLICT (event_id) DO NOTHING";
    const LOCK_MARKER: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR UPDATE";
    /// `LOCK_MARKER` without queueing: fails at once (`55P03`) when the marker is busy.
    const LOCK_MARKER_NOWAIT: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = $1 FOR UPDATE NOWAIT";
    const SET_LOADED: &'static str =
        "UPDATE seat_lock_events SET loaded = TRUE WHERE event_id = $1";
    /// Binds: event, zone, order, now. Places held or sold by other orders.
    const TAKEN_BY_OTHERS: &'static str = "SELECT COALESCE(SUM(quantity), 0)::bigint AS taken \
     FROM seat_lock_zone_holds WHERE event_id = $1 AND zone_code = $2 AND order_id <> $3 \
     AND (until IS NULL OR until > $4)";
    /// Binds: event, zone, now.
    const DROP_LAPSED_ZONE_HOLDS: &'static str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = $1 AND zone_code = $2 AND until IS NOT NULL AND until <= $3";
    /// Binds: event, zone, order, quantity, until. Replaces the order's earlier hold; a sale stays.
    const HOLD_ZONE: &'static str = "INSERT INTO seat_lock_zone_holds AS h \
     (event_id, zone_code, order_id, quantity, until) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (event_id, zone_code, order_id) DO UPDATE SET \
     quantity = CASE WHEN h.until IS NULL THEN h.quantity ELSE EXCLUDED.quantity END, \
     until = CASE WHEN h.until IS NULL THEN NULL ELSE EXCLUDED.until END";
    /// Binds: quantity, event, zone, order. Only the order's own entry turns sold.
    const SELL_ZONE: &'static str = "UPDATE seat_lock_zone_holds SET quantity = $1, until = NULL \
     WHERE event_id = $2 AND zone_code = $3 AND order_id = $4";
    /// Binds: event, `zone:`, `zone;` (the zone's key range in the `C` collation of `seat_key`).
    const LOCK_ZONE_SEATS: &'static str = "SELECT seat_key, order_id, until FROM seat_lock_seats \
     WHERE event_id = $1 AND seat_key >= $2 AND seat_key < $3 AND order_id IS NOT NULL \
     ORDER BY seat_key FOR UPDATE";
    const FORGET_SEATS: &'static str = "DELETE FROM seat_lock_seats WHERE event_id = $1";
    const FORGET_ZONE_HOLDS: &'static str = "DELETE FROM seat_lock_zone_holds WHERE event_id = $1";
    const FORGET_ZONES: &'static str = "DELETE FROM seat_lock_zones WHERE event_id = $1";
    const FORGET_MARKER: &'static str = "DELETE FROM seat_lock_events WHERE event_id = $1";
    /// Every event's state, in the order a hold locks it.
    const FORGET_ALL: [&'static str; 4] = [
        "DELETE FROM seat_lock_events",
        "DELETE FROM seat_lock_zones",
        "DELETE FROM seat_lock_seats",
        "DELETE FROM seat_lock_zone_holds",
    ];

    fn is_lock_not_available(e: &sqlx::Error) -> bool {
        sqlstate(e) == Some(code::LOCK_NOT_AVAILABLE)
    }

    async fn lock_zones(
        conn: &mut PgConnection,
        event: Uuid,
        zones: &[&str],
    ) -> sqlx::Result<usize> {
        let rows = sqlx::query(LOCK_ZONES)
            .bind(event)
            .bind(zones)
            .fetch_all(conn)
            .await?;
        Ok(rows.len())
    }

    async fn lock_seats(
        conn: &mut PgConnection,
        event: Uuid,
        keys: &[String],
    ) -> sqlx::Result<Vec<PgRow>> {
        sqlx::query(LOCK_SEATS)
            .bind(event)
            .bind(keys)
            .fetch_all(conn)
            .await
    }

    async fn create_zones(pool: &PgPool, event: Uuid, zones: &[&str]) -> sqlx::Result<()> {
        sqlx::query(CREATE_ZONES)
            .bind(event)
            .bind(zones)
            .execute(pool)
            .await
            .map(drop)
    }

    async fn create_seats(pool: &PgPool, event: Uuid, keys: &[String]) -> sqlx::Result<()> {
        sqlx::query(CREATE_SEATS)
            .bind(event)
            .bind(keys)
            .execute(pool)
            .await
            .map(drop)
    }

    async fn insert_seats(
        conn: &mut PgConnection,
        event: Uuid,
        keys: &[String],
    ) -> sqlx::Result<()> {
        sqlx::query(CREATE_SEATS)
            .bind(event)
            .bind(keys)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn hold_seats(
        conn: &mut PgConnection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
        until: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query(HOLD_SEATS)
            .bind(order)
            .bind(until)
            .bind(event)
            .bind(keys)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn release_seats(
        conn: &mut PgConnection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
    ) -> sqlx::Result<()> {
        sqlx::query(RELEASE_SEATS)
            .bind(event)
            .bind(keys)
            .bind(order)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn release_zones(
        conn: &mut PgConnection,
        event: Uuid,
        zones: &[&str],
        order: Uuid,
    ) -> sqlx::Result<()> {
        sqlx::query(RELEASE_ZONES)
            .bind(event)
            .bind(zones)
            .bind(order)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn sell_seats(
        conn: &mut PgConnection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
    ) -> sqlx::Result<()> {
        sqlx::query(SELL_SEATS)
            .bind(order)
            .bind(event)
            .bind(keys)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn snapshot_rows(
        pool: &PgPool,
        event: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<PgRow>> {
        sqlx::query(SNAPSHOT)
            .bind(event)
            .bind(now)
            .fetch_all(pool)
            .await
    }

    /// The key range's end is `zone;`, the next character after `:` in `COLLATE "C"` order,
    /// so the primary key bounds the read.
    async fn zone_snapshot_rows(
        pool: &PgPool,
        event: Uuid,
        zone: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<PgRow>> {
        sqlx::query(ZONE_SNAPSHOT)
            .bind(event)
            .bind(format!("{zone}:"))
            .bind(format!("{zone};"))
            .bind(now)
            .bind(zone)
            .fetch_all(pool)
            .await
    }

    async fn restore_seats(
        conn: &mut PgConnection,
        event: Uuid,
        rows: &[SeatRow],
    ) -> sqlx::Result<()> {
        let keys: Vec<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
        let orders: Vec<Uuid> = rows.iter().map(|(_, (order, _))| *order).collect();
        let until: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(_, (_, until))| *until).collect();
        sqlx::query(RESTORE_SEATS)
            .bind(event)
            .bind(keys)
            .bind(orders)
            .bind(until)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn restore_zone_holds(
        conn: &mut PgConnection,
        event: Uuid,
        rows: &[ZoneRow],
    ) -> sqlx::Result<()> {
        let codes: Vec<&str> = rows.iter().map(|((zone, _), _)| zone.as_str()).collect();
        let orders: Vec<Uuid> = rows.iter().map(|((_, order), _)| *order).collect();
        let quantities: Vec<i64> = rows.iter().map(|(_, (n, _))| i64::from(*n)).collect();
        let until: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(_, (_, until))| *until).collect();
        sqlx::query(RESTORE_ZONE_HOLDS)
            .bind(event)
            .bind(codes)
            .bind(orders)
            .bind(quantities)
            .bind(until)
            .execute(conn)
            .await
            .map(drop)
    }
}

/// Binds: event, seat keys (sorted). The rows of these seats, locked in key order.
const LOCK_SEATS: &str = "SELECT seat_key, order_id, until FROM seat_lock_seats \
     WHERE event_id = $1 AND seat_key = ANY($2) ORDER BY seat_key FOR UPDATE";

/// Binds: event, seat keys. Runs outside the hold's transaction, so its brief locks end at once.
const CREATE_SEATS: &str = "INSERT INTO seat_lock_seats (event_id, seat_key) \
     SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT (event_id, seat_key) DO NOTHING";

/// Binds: event, zone codes (sorted). The rows of these zones, locked in code order.
const LOCK_ZONES: &str = "SELECT zone_code FROM seat_lock_zones \
     WHERE event_id = $1 AND zone_code = ANY($2) ORDER BY zone_code FOR UPDATE";

/// Binds: event, zone codes.
const CREATE_ZONES: &str = "INSERT INTO seat_lock_zones (event_id, zone_code) \
     SELECT $1, z FROM unnest($2::text[]) AS z ON CONFLICT (event_id, zone_code) DO NOTHING";

/// Binds: order, until, event, seat keys. Holds these seats for the order; a seat this order
/// bought stays sold.
const HOLD_SEATS: &str = "UPDATE seat_lock_seats SET order_id = $1, until = $2 \
     WHERE event_id = $3 AND seat_key = ANY($4) \
     AND NOT (order_id IS NOT DISTINCT FROM $1 AND until IS NULL)";

/// Binds: event, seat keys, order. Frees these seats. Fenced: only this order's seats.
const RELEASE_SEATS: &str = "UPDATE seat_lock_seats SET order_id = NULL, until = NULL \
     WHERE event_id = $1 AND seat_key = ANY($2) AND order_id = $3";

/// Binds: event, zone codes, order. Drops this order's holds (or sales) in these zones.
const RELEASE_ZONES: &str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = $1 AND zone_code = ANY($2) AND order_id = $3";

/// Binds: order, event, seat keys. Sells these seats to the order, whoever holds them; a free
/// seat stays free (a release that overtook this mark, e.g. a refund, must win).
const SELL_SEATS: &str = "UPDATE seat_lock_seats SET order_id = $1, until = NULL \
     WHERE event_id = $2 AND seat_key = ANY($3) AND order_id IS NOT NULL";

/// Binds: event, now. One consistent read (one statement, one snapshot): the marker row ('M'),
/// the held or sold seats ('S') and the taken places per zone ('Z').
const SNAPSHOT: &str = "\
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
const ZONE_SNAPSHOT: &str = "\
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

/// Binds: event, seat keys, orders, deadlines (NULL for a sale). Rows restored by a rebuild. A
/// row a concurrent `mark_sold` wrote meanwhile (sold) is kept: a payment is never downgraded to
/// a hold. Both `CASE`s read the row as it was (PostgreSQL's SET sees the old values).
const RESTORE_SEATS: &str = "INSERT INTO seat_lock_seats AS s \
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
const RESTORE_ZONE_HOLDS: &str = "INSERT INTO seat_lock_zone_holds AS h \
     (event_id, zone_code, order_id, quantity, until) \
     SELECT $1, r.zone_code, r.order_id, r.quantity, r.until \
     FROM unnest($2::text[], $3::uuid[], $4::bigint[], $5::timestamptz[]) \
     AS r(zone_code, order_id, quantity, until) \
     ON CONFLICT (event_id, zone_code, order_id) DO UPDATE SET \
     quantity = h.quantity + EXCLUDED.quantity, \
     until = CASE WHEN h.until IS NULL OR EXCLUDED.until IS NULL THEN NULL \
             ELSE GREATEST(h.until, EXCLUDED.until) END";
