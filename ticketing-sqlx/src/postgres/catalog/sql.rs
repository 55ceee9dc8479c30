//! The catalog's statements on PostgreSQL, as the shared flow's [`Catalog`] constants.
//! Multi-row inserts take their rows as arrays (`unnest`), so each is one prepared statement
//! whatever the number of rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres};
use ticketing_core::Error;
use ticketing_core::domain::{EventId, Money, Row, ZoneCode};
use uuid::Uuid;

use crate::codec::stored;
use crate::flows::catalog::Catalog;
use crate::postgres::error::StoreResult;

impl Catalog for Postgres {
    type Position = i32;

    const INSERT_VENUE: &'static str = "INSERT INTO venues (id, name) VALUES ($1, $2)";
    const INSERT_ZONE: &'static str = "INSERT INTO zones (venue_id, code, position, name, kind, capacity) \
     VALUES ($1, $2, $3, $4, $5, $6)";
    const SELECT_VENUE: &'static str = "SELECT name FROM venues WHERE id = $1";
    const SELECT_ZONES: &'static str =
        "SELECT code, name, kind, capacity FROM zones WHERE venue_id = $1 ORDER BY position";
    const SELECT_SEAT_ROWS: &'static str = "SELECT zone_code, label, seats FROM seat_rows \
     WHERE venue_id = $1 ORDER BY zone_code, position";
    const INSERT_EVENT: &'static str = "INSERT INTO events \
     (id, venue_id, name, sale_opens, sale_closes, currency, hold_time_ms, per_customer_limit) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    const SELECT_EVENT: &'static str = "SELECT venue_id, name, sale_opens, sale_closes, currency, \
     hold_time_ms, per_customer_limit FROM events WHERE id = $1";
    const SELECT_PRICES: &'static str =
        "SELECT zone_code, price_minor, hidden FROM event_prices WHERE event_id = $1";
    const HIDE_ZONE: &'static str =
        "UPDATE event_prices SET hidden = true WHERE event_id = $1 AND zone_code = $2";
    const INSERT_PRICE_TIER: &'static str = "INSERT INTO event_price_tiers (event_id, zone_code, tier, size, price_minor) \
         VALUES ($1, $2, $3, $4, $5)";
    const SELECT_PRICE_TIERS: &'static str = "SELECT zone_code, size, price_minor FROM event_price_tiers \
         WHERE event_id = $1 ORDER BY zone_code, tier";
    const INSERT_VOUCHER: &'static str = "INSERT INTO vouchers (event_id, code, effect, \
     amount_minor, basis_points, zone_code, max_uses, max_per_customer, valid_from, valid_until) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    const SELECT_VOUCHER: &'static str = "SELECT v.code, v.effect, v.amount_minor, v.basis_points, v.zone_code, v.max_uses, v.max_per_customer, v.valid_from, v.valid_until, e.currency \
     FROM vouchers v JOIN events e ON e.id = v.event_id WHERE v.event_id = $1 AND v.code = $2";
    const SELECT_VOUCHERS: &'static str = "SELECT v.code, v.effect, v.amount_minor, v.basis_points, v.zone_code, v.max_uses, v.max_per_customer, v.valid_from, v.valid_until, e.currency \
     FROM vouchers v JOIN events e ON e.id = v.event_id WHERE v.event_id = $1 ORDER BY v.code";

    fn position(position: usize) -> i32 {
        i32::try_from(position).unwrap_or(i32::MAX)
    }

    fn stored_count(count: i64) -> Result<u32, Error> {
        stored(u32::try_from(count))
    }

    /// Binds: venue, zone, labels, seats per row. `position` numbers the rows from 0 in the
    /// order given.
    async fn insert_seat_rows(
        conn: &mut PgConnection,
        venue: Uuid,
        zone: &str,
        rows: &[Row],
    ) -> sqlx::Result<()> {
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        let seats: Vec<i64> = rows.iter().map(|r| i64::from(r.seats)).collect();
        sqlx::query(
            "INSERT INTO seat_rows \
     (venue_id, zone_code, label, position, seats) \
     SELECT $1, $2, r.label, (r.ord - 1)::integer, r.seats \
     FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY AS r(label, seats, ord)",
        )
        .bind(venue)
        .bind(zone)
        .bind(labels)
        .bind(seats)
        .execute(conn)
        .await
        .map(drop)
    }

    /// Binds: event, zone codes, prices.
    async fn insert_prices(
        conn: &mut PgConnection,
        event: Uuid,
        prices: &BTreeMap<ZoneCode, Money>,
    ) -> sqlx::Result<()> {
        let (zones, prices): (Vec<&str>, Vec<i64>) = prices
            .iter()
            .map(|(zone, price)| (zone.as_str(), price.minor))
            .unzip();
        sqlx::query(
            "INSERT INTO event_prices (event_id, zone_code, price_minor) \
     SELECT $1, p.zone, p.price FROM unnest($2::text[], $3::bigint[]) AS p(zone, price)",
        )
        .bind(event)
        .bind(zones)
        .bind(prices)
        .execute(conn)
        .await
        .map(drop)
    }

    async fn events_closed(
        pool: &PgPool,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<EventId>> {
        let query = match after {
            None => sqlx::query_scalar(SELECT_CLOSED_FIRST).bind(closed_by),
            Some((closes, id)) => sqlx::query_scalar(SELECT_CLOSED_AFTER)
                .bind(closed_by)
                .bind(closes)
                .bind(id.as_uuid()),
        };
        let ids: Vec<Uuid> = query.bind(i64::from(limit)).fetch_all(pool).await?;
        Ok(ids.into_iter().map(EventId::from_uuid).collect())
    }
}

/// Binds: closed by, limit. The first page of closed events by (sale_closes, id): a range of
/// `ix_events_closes`.
const SELECT_CLOSED_FIRST: &str = "SELECT id FROM events WHERE sale_closes <= $1 \
     ORDER BY sale_closes, id LIMIT $2";

/// Binds: closed by, the last key (sale_closes, id), limit. The next page, after that key.
const SELECT_CLOSED_AFTER: &str = "SELECT id FROM events WHERE sale_closes <= $1 \
     AND (sale_closes, id) > ($2, $3) ORDER BY sale_closes, id LIMIT $4";
