//! The catalog's statements. The multi-row inserts are functions that build them with sqlx's
//! [`QueryBuilder`] and bind their values; each needs at least one row.

use sqlx::{MySql, QueryBuilder};
use ticketing_core::domain::{Money, Row, ZoneCode};
use uuid::Uuid;

pub(super) const INSERT_VENUE: &str = "INSERT INTO venues (id, name) VALUES (?, ?)";

pub(super) const INSERT_ZONE: &str =
    "INSERT INTO zones (venue_id, code, position, name, kind, capacity) VALUES (?, ?, ?, ?, ?, ?)";

/// The rows of a seated zone, `position` numbering them from 0 in the order given.
pub(super) fn insert_seat_rows(venue: Uuid, zone: &str, rows: &[Row]) -> QueryBuilder<MySql> {
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

pub(super) const SELECT_VENUE: &str = "SELECT name FROM venues WHERE id = ?";

pub(super) const SELECT_ZONES: &str =
    "SELECT code, name, kind, capacity FROM zones WHERE venue_id = ? ORDER BY position";

pub(super) const SELECT_SEAT_ROWS: &str = "SELECT zone_code, label, seats FROM seat_rows \
     WHERE venue_id = ? ORDER BY zone_code, position";

pub(super) const INSERT_EVENT: &str = "INSERT INTO events \
     (id, venue_id, name, sale_opens, sale_closes, currency, hold_time_ms, per_customer_limit) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// An event's price per zone (minor units; the currency is the event's).
pub(super) fn insert_prices<'a, I>(event: Uuid, prices: I) -> QueryBuilder<MySql>
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

pub(super) const SELECT_EVENT: &str = "SELECT venue_id, name, sale_opens, sale_closes, currency, \
     hold_time_ms, per_customer_limit FROM events WHERE id = ?";

/// The first page of events closed by `?`, by (sale_closes, id): a range of `ix_events_closes`.
pub(super) const SELECT_CLOSED_FIRST: &str = "SELECT id FROM events WHERE sale_closes <= ? \
     ORDER BY sale_closes, id LIMIT ?";

/// The next page, after the key (`?`, `?`) (repeated for the tie on `sale_closes`).
pub(super) const SELECT_CLOSED_AFTER: &str = "SELECT id FROM events WHERE sale_closes <= ? \
     AND (sale_closes > ? OR (sale_closes = ? AND id > ?)) ORDER BY sale_closes, id LIMIT ?";

pub(super) const SELECT_PRICES: &str =
    "SELECT zone_code, price_minor FROM event_prices WHERE event_id = ?";

/// Zone kinds as stored.
pub(super) const SEATED: &str = "SEATED";
pub(super) const GENERAL_ADMISSION: &str = "GENERAL_ADMISSION";
