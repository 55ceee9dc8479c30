//! The catalog's statements on MySQL, as the shared flow's [`Catalog`] constants. The
//! multi-row inserts are functions that build them with sqlx's [`QueryBuilder`] and bind their
//! values; each needs at least one row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use ticketing_core::Error;
use ticketing_core::domain::{EventId, Money, Row, ZoneCode};
use uuid::Uuid;

use crate::error::StoreResult;
use crate::flows::catalog::Catalog;

impl Catalog for MySql {
    type Position = u32;

    const INSERT_VENUE: &'static str = "INSERT INTO venues (id, name) VALUES (?, ?)";
    const INSERT_ZONE: &'static str = "INSERT INTO zones (venue_id, code, position, name, kind, capacity) VALUES (?, ?, ?, ?, ?, ?)";
    const SELECT_VENUE: &'static str = "SELECT name FROM venues WHERE id = ?";
    const SELECT_ZONES: &'static str =
        "SELECT code, name, kind, capacity FROM zones WHERE venue_id = ? ORDER BY position";
    const SELECT_SEAT_ROWS: &'static str = "SELECT zone_code, label, seats FROM seat_rows \
     WHERE venue_id = ? ORDER BY zone_code, position";
    const INSERT_EVENT: &'static str = "INSERT INTO events \
     (id, venue_id, name, sale_opens, sale_closes, currency, hold_time_ms, per_customer_limit) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    const SELECT_EVENT: &'static str = "SELECT venue_id, name, sale_opens, sale_closes, currency, \
     hold_time_ms, per_customer_limit FROM events WHERE id = ?";
    const SELECT_PRICES: &'static str =
        "SELECT zone_code, price_minor, hidden FROM event_prices WHERE event_id = ?";
    const HIDE_ZONE: &'static str =
        "UPDATE event_prices SET hidden = TRUE WHERE event_id = ? AND zone_code = ?";
    const INSERT_PRICE_TIER: &'static str = "INSERT INTO event_price_tiers (event_id, zone_code, tier, size, price_minor) \
         VALUES (?, ?, ?, ?, ?)";
    const SELECT_PRICE_TIERS: &'static str = "SELECT zone_code, size, price_minor FROM event_price_tiers \
         WHERE event_id = ? ORDER BY zone_code, tier";
    const INSERT_VOUCHER: &'static str = "INSERT INTO vouchers (event_id, code, effect, \
     amount_minor, basis_points, zone_code, max_uses, max_per_customer, valid_from, valid_until) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const SELECT_VOUCHER: &'static str = "SELECT v.code, v.effect, v.amount_minor, v.basis_points, v.zone_code, v.max_uses, v.max_per_customer, v.valid_from, v.valid_until, e.currency \
     FROM vouchers v JOIN events e ON e.id = v.event_id WHERE v.event_id = ? AND v.code = ?";
    const SELECT_VOUCHERS: &'static str = "SELECT v.code, v.effect, v.amount_minor, v.basis_points, v.zone_code, v.max_uses, v.max_per_customer, v.valid_from, v.valid_until, e.currency \
     FROM vouchers v JOIN events e ON e.id = v.event_id WHERE v.event_id = ? ORDER BY v.code";

    fn position(position: usize) -> u32 {
        position as u32
    }

    fn stored_count(count: u32) -> Result<u32, Error> {
        Ok(count)
    }

    async fn insert_seat_rows(
        conn: &mut MySqlConnection,
        venue: Uuid,
        zone: &str,
        rows: &[Row],
    ) -> sqlx::Result<()> {
        insert_seat_rows(venue, zone, rows)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn insert_prices(
        conn: &mut MySqlConnection,
        event: Uuid,
        prices: &BTreeMap<ZoneCode, Money>,
    ) -> sqlx::Result<()> {
        insert_prices(event, prices)
            .build()
            .execute(conn)
            .await
            .map(drop)
    }

    async fn events_closed(
        pool: &MySqlPool,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<EventId>> {
        let query = match after {
            None => sqlx::query_scalar(SELECT_CLOSED_FIRST).bind(closed_by),
            Some((closes, id)) => sqlx::query_scalar(SELECT_CLOSED_AFTER)
                .bind(closed_by)
                .bind(closes)
                .bind(closes)
                .bind(id.as_uuid()),
        };
        let ids: Vec<Uuid> = query.bind(limit).fetch_all(pool).await?;
        Ok(ids.into_iter().map(EventId::from_uuid).collect())
    }
}

/// The rows of a seated zone, `position` numbering them from 0 in the order given.
fn insert_seat_rows(venue: Uuid, zone: &str, rows: &[Row]) -> QueryBuilder<MySql> {
    let mut insert =
        QueryBuilder::new("INSERT INTO seat_rows (venue_id, zone_code, label, position, seats) ");
    insert.push_values(rows.iter().enumerate(), |mut values, (position, row)| {
        values
            .push_bind(venue)
            .push_bind(zone)
            .push_bind(row.label.as_str())
            .push_bind(position as u32)
            .push_bind(row.seats);
    });
    insert
}

/// An event's price per zone (minor units; the currency is the event's).
fn insert_prices<'a, I>(event: Uuid, prices: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = (&'a ZoneCode, &'a Money)>,
{
    let mut insert =
        QueryBuilder::new("INSERT INTO event_prices (event_id, zone_code, price_minor) ");
    insert.push_values(prices, |mut values, (zone, price)| {
        values
            .push_bind(event)
            .push_bind(zone.as_str())
            .push_bind(price.minor);
    });
    insert
}

/// The first page of events closed by `?`, by (sale_closes, id): a range of `ix_events_closes`.
const SELECT_CLOSED_FIRST: &str = "SELECT id FROM events WHERE sale_closes <= ? \
     ORDER BY sale_closes, id LIMIT ?";

/// The next page, after the key (`?`, `?`) (repeated for the tie on `sale_closes`).
const SELECT_CLOSED_AFTER: &str = "SELECT id FROM events WHERE sale_closes <= ? \
     AND (sale_closes > ? OR (sale_closes = ? AND id > ?)) ORDER BY sale_closes, id LIMIT ?";
