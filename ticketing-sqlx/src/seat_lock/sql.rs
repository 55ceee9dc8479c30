//! The SQL seat lock's statements. A missing seat or zone row means "free"; `until` NULL with an
//! order means "sold".
//!
//! Statements with a list of variable length (an `IN` list, the rows of a multi-row `VALUES`)
//! are functions that build them with sqlx's [`QueryBuilder`] and bind their values, in the
//! order the text names them; each needs at least one list entry. The rest are constants.

use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use uuid::Uuid;

use crate::codec::push_list;
use crate::error::{code, number};
use crate::flows::seat_lock::DatabaseSeatLock;
use crate::lock_state::{SeatRow, ZoneRow};

impl DatabaseSeatLock for MySql {
    /// Shared lock on the marker, failing at once (error 1205) while a rebuild holds it exclusively.
    const SHARE_MARKER_NOWAIT: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = ? LOCK IN SHARE MODE NOWAIT";
    /// Shared lock on the marker, waiting for an exclusive holder (a rebuild or a wipe) to finish.
    const SHARE_MARKER: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = ? LOCK IN SHARE MODE";
    const ENSURE_MARKER: &'static str =
        "INSERT IGNORE INTO seat_lock_events (event_id, loaded) VALUES (?, FALSE)";
    const LOCK_MARKER: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = ? FOR UPDATE";
    /// `LOCK_MARKER` without queueing: fails at once (lock wait timeout) when the marker is busy.
    const LOCK_MARKER_NOWAIT: &'static str =
        "SELECT loaded FROM seat_lock_events WHERE event_id = ? FOR UPDATE NOWAIT";
    const SET_LOADED: &'static str = "UPDATE seat_lock_events SET loaded = TRUE WHERE event_id = ?";
    /// Binds: event, zone, order, now. Places held or sold by other orders.
    const TAKEN_BY_OTHERS: &'static str = "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) AS taken \
     FROM seat_lock_zone_holds WHERE event_id = ? AND zone_code = ? AND order_id <> ? \
     AND (until IS NULL OR until > ?)";
    /// The key range's end is `zone;`, the next character after `:` in `ascii_bin` order.
    const LOCK_ZONE_SEATS: &'static str = "SELECT seat_key, order_id, until FROM seat_lock_seats \
     WHERE event_id = ? AND seat_key >= ? AND seat_key < ? AND order_id IS NOT NULL \
     ORDER BY seat_key FOR UPDATE";
    /// Binds: event, zone, now.
    const DROP_LAPSED_ZONE_HOLDS: &'static str = "DELETE FROM seat_lock_zone_holds \
     WHERE event_id = ? AND zone_code = ? AND until IS NOT NULL AND until <= ?";
    /// Binds: event, zone, order, quantity, until. Replaces the order's earlier hold; a sale stays.
    const HOLD_ZONE: &'static str = "INSERT INTO seat_lock_zone_holds \
     (event_id, zone_code, order_id, quantity, until) VALUES (?, ?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE quantity = IF(until IS NULL, quantity, VALUES(quantity)), \
     until = IF(until IS NULL, NULL, VALUES(until))";
    /// Binds: quantity, event, zone, order. Only the order's own entry turns sold; no entry, nothing.
    const SELL_ZONE: &'static str = "UPDATE seat_lock_zone_holds SET quantity = ?, until = NULL \
     WHERE event_id = ? AND zone_code = ? AND order_id = ?";
    const FORGET_SEATS: &'static str = "DELETE FROM seat_lock_seats WHERE event_id = ?";
    const FORGET_ZONE_HOLDS: &'static str = "DELETE FROM seat_lock_zone_holds WHERE event_id = ?";
    const FORGET_ZONES: &'static str = "DELETE FROM seat_lock_zones WHERE event_id = ?";
    const FORGET_MARKER: &'static str = "DELETE FROM seat_lock_events WHERE event_id = ?";
    /// Every event's state, in the order a hold locks it.
    const FORGET_ALL: [&'static str; 4] = [
        "DELETE FROM seat_lock_events",
        "DELETE FROM seat_lock_zones",
        "DELETE FROM seat_lock_seats",
        "DELETE FROM seat_lock_zone_holds",
    ];

    fn is_lock_not_available(e: &sqlx::Error) -> bool {
        number(e) == Some(code::LOCK_WAIT_TIMEOUT)
    }

    async fn lock_zones(
        conn: &mut MySqlConnection,
        event: Uuid,
        zones: &[&str],
    ) -> sqlx::Result<usize> {
        Ok(lock_zones(event, zones)
            .build()
            .fetch_all(conn)
            .await?
            .len())
    }

    async fn lock_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        keys: &[String],
    ) -> sqlx::Result<Vec<MySqlRow>> {
        lock_seats(event, keys).build().fetch_all(conn).await
    }

    async fn create_zones(pool: &MySqlPool, event: Uuid, zones: &[&str]) -> sqlx::Result<()> {
        create_zones(event, zones)
            .build()
            .execute(pool)
            .await
            .map(drop)
    }

    async fn create_seats(pool: &MySqlPool, event: Uuid, keys: &[String]) -> sqlx::Result<()> {
        create_seats(event, keys)
            .build()
            .execute(pool)
            .await
            .map(drop)
    }

    async fn insert_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        keys: &[String],
    ) -> sqlx::Result<()> {
        create_seats(event, keys)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn hold_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
        until: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        hold_seats(event, keys, order, until)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn release_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
    ) -> sqlx::Result<()> {
        release_seats(event, keys, order)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn release_zones(
        conn: &mut MySqlConnection,
        event: Uuid,
        zones: &[&str],
        order: Uuid,
    ) -> sqlx::Result<()> {
        release_zones(event, zones, order)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn sell_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
    ) -> sqlx::Result<()> {
        sell_seats(event, keys, order)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn snapshot_rows(
        pool: &MySqlPool,
        event: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<MySqlRow>> {
        sqlx::query(SNAPSHOT)
            .bind(event)
            .bind(event)
            .bind(now)
            .bind(now)
            .bind(event)
            .fetch_all(pool)
            .await
    }

    /// The key range's end is `zone;`, the next character after `:` in `ascii_bin` order, so
    /// the primary key bounds the read.
    async fn zone_snapshot_rows(
        pool: &MySqlPool,
        event: Uuid,
        zone: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<MySqlRow>> {
        sqlx::query(ZONE_SNAPSHOT)
            .bind(event)
            .bind(event)
            .bind(format!("{zone}:"))
            .bind(format!("{zone};"))
            .bind(now)
            .bind(now)
            .bind(event)
            .bind(zone)
            .fetch_all(pool)
            .await
    }

    async fn restore_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        rows: &[SeatRow],
    ) -> sqlx::Result<()> {
        restore_seats(event, rows)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn restore_zone_holds(
        conn: &mut MySqlConnection,
        event: Uuid,
        rows: &[ZoneRow],
    ) -> sqlx::Result<()> {
        restore_zone_holds(event, rows)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }
}

/// The rows of these seats (keys sorted), locked in key order.
fn lock_seats(event: Uuid, keys: &[String]) -> QueryBuilder<MySql> {
    let mut lock = QueryBuilder::new(
        "SELECT seat_key, order_id, until FROM seat_lock_seats WHERE event_id = ",
    );
    lock.push_bind(event).push(" AND seat_key IN ");
    push_list(&mut lock, keys);
    lock.push(" ORDER BY seat_key FOR UPDATE");
    lock
}

/// Rows `(event, seat_key)`; runs outside the hold's transaction, so its brief locks end at once.
fn create_seats(event: Uuid, keys: &[String]) -> QueryBuilder<MySql> {
    let mut create = QueryBuilder::new("INSERT IGNORE INTO seat_lock_seats (event_id, seat_key) ");
    create.push_values(keys, |mut row, key| {
        row.push_bind(event).push_bind(key);
    });
    create
}

/// The rows of these zones (codes sorted), locked in code order.
fn lock_zones(event: Uuid, zones: &[&str]) -> QueryBuilder<MySql> {
    let mut lock = QueryBuilder::new("SELECT zone_code FROM seat_lock_zones WHERE event_id = ");
    lock.push_bind(event).push(" AND zone_code IN ");
    push_list(&mut lock, zones);
    lock.push(" ORDER BY zone_code FOR UPDATE");
    lock
}

/// Rows `(event, zone_code)`.
fn create_zones(event: Uuid, zones: &[&str]) -> QueryBuilder<MySql> {
    let mut create = QueryBuilder::new("INSERT IGNORE INTO seat_lock_zones (event_id, zone_code) ");
    create.push_values(zones, |mut row, zone| {
        row.push_bind(event).push_bind(*zone);
    });
    create
}

/// Holds these seats for `order` until `until`. A seat this order bought stays sold.
fn hold_seats(
    event: Uuid,
    keys: &[String],
    order: Uuid,
    until: DateTime<Utc>,
) -> QueryBuilder<MySql> {
    let mut hold = QueryBuilder::new("UPDATE seat_lock_seats SET order_id = ");
    hold.push_bind(order)
        .push(", until = ")
        .push_bind(until)
        .push(" WHERE event_id = ")
        .push_bind(event)
        .push(" AND seat_key IN ");
    push_list(&mut hold, keys);
    hold.push(" AND NOT (order_id <=> ")
        .push_bind(order)
        .push(" AND until IS NULL)");
    hold
}

/// Frees these seats. Fenced: only this order's seats.
fn release_seats(event: Uuid, keys: &[String], order: Uuid) -> QueryBuilder<MySql> {
    let mut release = QueryBuilder::new(
        "UPDATE seat_lock_seats SET order_id = NULL, until = NULL WHERE event_id = ",
    );
    release.push_bind(event).push(" AND seat_key IN ");
    push_list(&mut release, keys);
    release.push(" AND order_id = ").push_bind(order);
    release
}

/// Drops this order's holds (or sales) in these zones.
fn release_zones(event: Uuid, zones: &[&str], order: Uuid) -> QueryBuilder<MySql> {
    let mut release = QueryBuilder::new("DELETE FROM seat_lock_zone_holds WHERE event_id = ");
    release.push_bind(event).push(" AND zone_code IN ");
    push_list(&mut release, zones);
    release.push(" AND order_id = ").push_bind(order);
    release
}

/// Sells these seats to the order, whoever holds them; a free seat stays free (a release that
/// overtook this mark, e.g. a refund, must win).
fn sell_seats(event: Uuid, keys: &[String], order: Uuid) -> QueryBuilder<MySql> {
    let mut sell = QueryBuilder::new("UPDATE seat_lock_seats SET order_id = ");
    sell.push_bind(order)
        .push(", until = NULL WHERE event_id = ")
        .push_bind(event)
        .push(" AND seat_key IN ");
    push_list(&mut sell, keys);
    sell.push(" AND order_id IS NOT NULL");
    sell
}

/// Binds: event, event, now, now, event. One consistent read: the marker row ('M'), the held or
/// sold seats ('S') and the taken places per zone ('Z').
const SNAPSHOT: &str = "\
    SELECT 'M' AS part, NULL AS name, NULL AS order_id, NULL AS until, 0 AS quantity \
      FROM seat_lock_events WHERE event_id = ? AND loaded \
    UNION ALL \
    SELECT 'S', seat_key, order_id, until, 0 FROM seat_lock_seats \
      WHERE event_id = ? AND order_id IS NOT NULL AND (until IS NULL OR until > ?) \
    UNION ALL \
    SELECT 'Z', zone_code, NULL, NULL, \
           CAST(SUM(IF(until IS NULL OR until > ?, quantity, 0)) AS SIGNED) \
      FROM seat_lock_zone_holds WHERE event_id = ? GROUP BY zone_code";

/// [`SNAPSHOT`] of one zone: seats whose key lies in `[?, ?)` (the zone's key range) and one
/// zone's holds.
const ZONE_SNAPSHOT: &str = "\
    SELECT 'M' AS part, NULL AS name, NULL AS order_id, NULL AS until, 0 AS quantity \
      FROM seat_lock_events WHERE event_id = ? AND loaded \
    UNION ALL \
    SELECT 'S', seat_key, order_id, until, 0 FROM seat_lock_seats \
      WHERE event_id = ? AND seat_key >= ? AND seat_key < ? \
        AND order_id IS NOT NULL AND (until IS NULL OR until > ?) \
    UNION ALL \
    SELECT 'Z', zone_code, NULL, NULL, \
           CAST(SUM(IF(until IS NULL OR until > ?, quantity, 0)) AS SIGNED) \
      FROM seat_lock_zone_holds WHERE event_id = ? AND zone_code = ? GROUP BY zone_code";

/// Rows `(event, seat_key, order, until)` restored by a rebuild. A row a concurrent `mark_sold`
/// wrote meanwhile (sold) is kept: a payment is never downgraded to a hold. MySQL assigns left to
/// right with the new values, so `until` goes first and `order_id` then sees the new `until`.
fn restore_seats(event: Uuid, rows: &[SeatRow]) -> QueryBuilder<MySql> {
    let mut restore =
        QueryBuilder::new("INSERT INTO seat_lock_seats (event_id, seat_key, order_id, until) ");
    restore.push_values(rows, |mut row, (key, (order, until))| {
        row.push_bind(event)
            .push_bind(key)
            .push_bind(*order)
            .push_bind(*until);
    });
    restore.push(
        " ON DUPLICATE KEY UPDATE \
         until = IF(until IS NULL AND order_id IS NOT NULL, NULL, VALUES(until)), \
         order_id = IF(until IS NULL AND order_id IS NOT NULL, order_id, VALUES(order_id))",
    );
    restore
}

/// Rows `(event, zone, order, quantity, until)`. An order's row that an earlier page of the same
/// rebuild wrote (nobody else writes the event's rows while the rebuild holds its marker and its
/// row locks) takes the places of this one too: sold if either is, else the later deadline.
fn restore_zone_holds(event: Uuid, rows: &[ZoneRow]) -> QueryBuilder<MySql> {
    let mut restore = QueryBuilder::new(
        "INSERT INTO seat_lock_zone_holds (event_id, zone_code, order_id, quantity, until) ",
    );
    restore.push_values(rows, |mut row, ((zone, order), (quantity, until))| {
        row.push_bind(event)
            .push_bind(zone)
            .push_bind(*order)
            .push_bind(*quantity)
            .push_bind(*until);
    });
    restore.push(
        " ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity), \
         until = IF(until IS NULL OR VALUES(until) IS NULL, NULL, GREATEST(until, VALUES(until)))",
    );
    restore
}
