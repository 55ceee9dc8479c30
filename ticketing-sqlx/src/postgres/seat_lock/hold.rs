//! A hold on PostgreSQL: in one transaction, the event's marker `FOR SHARE`, then the zone and
//! seat rows it wants locked in key order, checked against the caller's `now`, and the holds
//! written; all or nothing.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{SeatRef, ZoneCode};
use ticketing_core::ports::{HoldOutcome, HoldRequest};
use uuid::Uuid;

use super::sql;
use crate::codec::stored;
use crate::lock_state::Wanted;
use crate::postgres::error::{StoreResult, code, sqlstate};
use crate::postgres::pool::begin;
use crate::retry::backoff;

/// How often a hold looks at a busy marker again before answering `NotLoaded`.
const MARKER_BUSY_RETRIES: u32 = 3;

/// How often a hold creates missing seat or zone rows before giving up.
const MAX_ROW_ROUNDS: u32 = 5;

/// The rows one hold locks and writes.
struct Target<'a> {
    event: Uuid,
    order: Uuid,
    wanted: &'a Wanted,
    /// Zone codes, sorted.
    zones: Vec<&'a str>,
    /// Seat keys, sorted.
    keys: Vec<String>,
}

/// What the event's marker row says.
enum Marker {
    Loaded,
    NotLoaded,
    /// Someone holds the marker exclusively: a rebuild, or a rebuilder that is about to find
    /// the event loaded.
    Busy,
}

/// One attempt at `request` (the caller retries it after a deadlock). Inside, it retries on a
/// busy marker (a few times, then `NotLoaded`, so the caller rebuilds, which waits for the
/// running rebuild) and on missing rows (created outside the transaction, then locked again).
pub(super) async fn hold_once(pool: &PgPool, request: &HoldRequest) -> StoreResult<HoldOutcome> {
    let wanted = Wanted::from_items(&request.items)?;
    let target = Target {
        event: request.event.as_uuid(),
        order: request.order.as_uuid(),
        wanted: &wanted,
        zones: wanted.zone_codes(),
        keys: wanted.seat_keys(),
    };
    let (mut rows_created, mut marker_busy) = (0, 0);
    loop {
        let mut tx = begin(pool).await?;
        match share_marker(&mut tx, target.event).await? {
            Marker::Loaded => {}
            Marker::NotLoaded => return Ok(HoldOutcome::NotLoaded),
            Marker::Busy => {
                // Look again a few times without holding a connection.
                tx.rollback().await?;
                marker_busy += 1;
                if marker_busy > MARKER_BUSY_RETRIES {
                    return Ok(HoldOutcome::NotLoaded);
                }
                tokio::time::sleep(backoff(marker_busy)).await;
                continue;
            }
        }
        let Some(seat_rows) = lock_rows(&mut tx, &target).await? else {
            tx.rollback().await?;
            // Rows vanish only when the state is forgotten between our creating and locking
            // them; a few rounds settle that (the marker check then says NotLoaded or the
            // rebuilt state keeps the rows).
            rows_created += 1;
            if rows_created > MAX_ROW_ROUNDS {
                return Err(Error::internal("seat lock rows keep vanishing while holding").into());
            }
            create_rows(pool, &target).await?;
            continue;
        };
        if let Some(taken) = taken(&mut tx, &target, &seat_rows, request.now).await? {
            tx.rollback().await?;
            return Ok(taken);
        }
        write_holds(&mut tx, &target, request).await?;
        tx.commit().await?;
        return Ok(HoldOutcome::Held);
    }
}

/// Reads the marker in share mode without waiting: a rebuild holding it exclusively is
/// [`Marker::Busy`].
async fn share_marker(conn: &mut PgConnection, event: Uuid) -> StoreResult<Marker> {
    let marker = sqlx::query(sql::SHARE_MARKER_NOWAIT)
        .bind(event)
        .fetch_optional(conn)
        .await;
    match marker {
        Ok(Some(row)) if row.try_get::<bool, _>("loaded")? => Ok(Marker::Loaded),
        Ok(_) => Ok(Marker::NotLoaded),
        Err(e) if sqlstate(&e) == Some(code::LOCK_NOT_AVAILABLE) => Ok(Marker::Busy),
        Err(e) => Err(e.into()),
    }
}

/// Locks the wanted zone rows, then the seat rows, each in key order; the seat rows, or `None`
/// when some rows do not exist yet.
async fn lock_rows(
    conn: &mut PgConnection,
    target: &Target<'_>,
) -> StoreResult<Option<Vec<PgRow>>> {
    let mut locked_zones = 0;
    if !target.zones.is_empty() {
        locked_zones = sqlx::query(sql::LOCK_ZONES)
            .bind(target.event)
            .bind(&target.zones)
            .fetch_all(&mut *conn)
            .await?
            .len();
    }
    let mut seat_rows = Vec::new();
    if !target.keys.is_empty() {
        seat_rows = sqlx::query(sql::LOCK_SEATS)
            .bind(target.event)
            .bind(&target.keys)
            .fetch_all(&mut *conn)
            .await?;
    }
    let complete = locked_zones >= target.zones.len() && seat_rows.len() >= target.keys.len();
    Ok(complete.then_some(seat_rows))
}

/// Creates missing seat and zone rows, each statement on its own (autocommit), so the brief
/// locks of the duplicate checks end before the hold's transaction starts.
async fn create_rows(pool: &PgPool, target: &Target<'_>) -> StoreResult<()> {
    if !target.zones.is_empty() {
        sqlx::query(sql::CREATE_ZONES)
            .bind(target.event)
            .bind(&target.zones)
            .execute(pool)
            .await?;
    }
    if !target.keys.is_empty() {
        sqlx::query(sql::CREATE_SEATS)
            .bind(target.event)
            .bind(&target.keys)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// The seats another order holds or bought at `now`, and the zones without room for the wanted
/// places; `None` when everything is free for this order.
async fn taken(
    conn: &mut PgConnection,
    target: &Target<'_>,
    seat_rows: &[PgRow],
    now: DateTime<Utc>,
) -> StoreResult<Option<HoldOutcome>> {
    let mut seats = Vec::new();
    for row in seat_rows {
        let holder: Option<Uuid> = row.try_get("order_id")?;
        let until: Option<DateTime<Utc>> = row.try_get("until")?;
        let live = holder.is_some() && until.is_none_or(|u| u > now);
        if live && holder != Some(target.order) {
            let key: String = row.try_get("seat_key")?;
            seats.push(stored(key.parse::<SeatRef>())?);
        }
    }
    let mut zones: Vec<ZoneCode> = Vec::new();
    for (zone, (quantity, capacity)) in &target.wanted.zones {
        let taken: i64 = sqlx::query(sql::TAKEN_BY_OTHERS)
            .bind(target.event)
            .bind(zone.as_str())
            .bind(target.order)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
            .try_get("taken")?;
        if taken + i64::from(*quantity) > i64::from(*capacity) {
            zones.push(zone.clone());
        }
    }
    if seats.is_empty() && zones.is_empty() {
        return Ok(None);
    }
    seats.sort();
    Ok(Some(HoldOutcome::Taken { seats, zones }))
}

/// Writes the seat holds, then per zone drops lapsed holds and writes (or replaces) this
/// order's hold.
async fn write_holds(
    conn: &mut PgConnection,
    target: &Target<'_>,
    request: &HoldRequest,
) -> StoreResult<()> {
    if !target.keys.is_empty() {
        sqlx::query(sql::HOLD_SEATS)
            .bind(target.order)
            .bind(request.until)
            .bind(target.event)
            .bind(&target.keys)
            .execute(&mut *conn)
            .await?;
    }
    for (zone, (quantity, _)) in &target.wanted.zones {
        sqlx::query(sql::DROP_LAPSED_ZONE_HOLDS)
            .bind(target.event)
            .bind(zone.as_str())
            .bind(request.now)
            .execute(&mut *conn)
            .await?;
        sqlx::query(sql::HOLD_ZONE)
            .bind(target.event)
            .bind(zone.as_str())
            .bind(target.order)
            .bind(i64::from(*quantity))
            .bind(request.until)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
