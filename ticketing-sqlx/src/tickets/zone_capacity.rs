//! Invariant 2 without a hot row: a general-admission zone's capacity split over shard rows of
//! `zone_usage`, each with its own slice, so concurrent purchases in one zone lock different rows.
//!
//! A purchase takes its places from shards with room, skipping shards other transactions hold
//! (`FOR UPDATE SKIP LOCKED`), and only when those do not have enough does it wait for the rest
//! and decide on all of them. Every raise is guarded by `active + n <= capacity` on its shard, and
//! the slices add up to the zone's capacity, so the database alone keeps the zone within it.

use sqlx::{MySqlConnection, Row};
use ticketing_core::Error;
use ticketing_core::domain::{EventId, ZoneCode};

use super::sql;
use crate::error::StoreResult;
use crate::shards::{Rooms, Scan, allocate, slices, total};

/// Takes `n` places of `zone` (of `capacity` places) for the current transaction and returns the
/// shard each place counts in (`n` entries), or `None` when the zone has fewer than `n` places
/// left. `start` spreads purchases over the shards (any number; e.g. from the order id).
///
/// The shards taken stay locked until the transaction ends. `capacity` is used only to create
/// the zone's shards on its first purchase; later calls count against the slices stored then.
pub(super) async fn take(
    conn: &mut MySqlConnection,
    event: EventId,
    zone: &ZoneCode,
    capacity: u32,
    n: u32,
    start: u32,
) -> StoreResult<Option<Vec<u16>>> {
    let mut rooms = free_unlocked(conn, event, zone, n, start).await?;
    if total(&rooms) < n {
        rooms = all_waiting(conn, event, zone).await?;
        if rooms.is_empty() {
            create(conn, event, zone, capacity).await?;
            rooms = all_waiting(conn, event, zone).await?;
        }
    }
    if total(&rooms) < n {
        return Ok(None);
    }
    let plan = allocate(&rooms, n);
    for (&shard, &count) in &plan {
        raise(conn, event, zone, shard, count).await?;
    }
    Ok(Some(
        plan.iter()
            .flat_map(|(&shard, &count)| std::iter::repeat_n(shard, count as usize))
            .collect(),
    ))
}

/// Unlocked shards with room, scanned from `start` until they hold `n` places or none is left
/// ([`Scan`]).
async fn free_unlocked(
    conn: &mut MySqlConnection,
    event: EventId,
    zone: &ZoneCode,
    n: u32,
    start: u32,
) -> StoreResult<Rooms> {
    let mut scan = Scan::new(start, n);
    while let Some(range) = scan.next_read() {
        scan.found(select_rooms(conn, sql::TAKE_FREE_SHARDS, event, zone, Some(range)).await?);
    }
    Ok(scan.rooms())
}

/// Every shard with room, after waiting for the ones other transactions hold.
async fn all_waiting(
    conn: &mut MySqlConnection,
    event: EventId,
    zone: &ZoneCode,
) -> StoreResult<Rooms> {
    select_rooms(conn, sql::LOCK_ALL_SHARDS, event, zone, None).await
}

async fn select_rooms(
    conn: &mut MySqlConnection,
    statement: &'static str,
    event: EventId,
    zone: &ZoneCode,
    range: Option<(u32, u32, u32)>,
) -> StoreResult<Rooms> {
    let mut query = sqlx::query(statement)
        .bind(event.as_uuid())
        .bind(zone.as_str());
    if let Some((from, end, rows)) = range {
        query = query.bind(from).bind(end).bind(rows);
    }
    let mut rooms = Rooms::new();
    for row in query.fetch_all(&mut *conn).await? {
        let shard: u16 = row.try_get("shard")?;
        let room: i64 = row.try_get("room")?;
        if room > 0 {
            rooms.insert(shard, u32::try_from(room).unwrap_or(u32::MAX));
        }
    }
    Ok(rooms)
}

/// Creates the zone's shards with their slices of `capacity` (a no-op for rows that exist).
async fn create(
    conn: &mut MySqlConnection,
    event: EventId,
    zone: &ZoneCode,
    capacity: u32,
) -> StoreResult<()> {
    let slices = slices(capacity);
    sql::create_shards(event.as_uuid(), zone.as_str(), &slices)
        .build()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn raise(
    conn: &mut MySqlConnection,
    event: EventId,
    zone: &ZoneCode,
    shard: u16,
    count: u32,
) -> StoreResult<()> {
    let raised = sqlx::query(sql::RAISE_SHARD)
        .bind(count)
        .bind(event.as_uuid())
        .bind(zone.as_str())
        .bind(shard)
        .bind(count)
        .execute(&mut *conn)
        .await?;
    if raised.rows_affected() != 1 {
        return Err(Error::internal(format!(
            "zone {zone} shard {shard}: no room for {count} though it was locked with room"
        ))
        .into());
    }
    Ok(())
}
