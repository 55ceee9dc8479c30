//! Between rows and domain values, and the few helpers that build variable-length SQL.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{AssertSqlSafe, Row};
use ticketing_core::Error;
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, OrderId, PaymentRef, SeatRef, Ticket, TicketId,
    TicketStatus, VenueId, ZoneCode,
};
use uuid::Uuid;

use crate::error::StoreResult;

/// The ticket columns [`ticket`] reads, as a literal for `concat!` in statement constants.
macro_rules! ticket_columns {
    () => {
        "id, order_id, event_id, venue_id, zone_code, seat_key, customer_id, price_minor, \
         currency, status, created_on, expires_at, paid_at, payment_ref"
    };
}
pub(crate) use ticket_columns;

/// A ticket from a row selected with [`ticket_columns!`].
pub(crate) fn ticket(row: &MySqlRow) -> StoreResult<Ticket> {
    let seat: Option<String> = row.try_get("seat_key")?;
    let payment_ref: Option<String> = row.try_get("payment_ref")?;
    let currency: String = row.try_get("currency")?;
    let status: String = row.try_get("status")?;
    Ok(Ticket {
        id: TicketId::from_uuid(row.try_get::<Uuid, _>("id")?),
        order_id: OrderId::from_uuid(row.try_get::<Uuid, _>("order_id")?),
        event_id: EventId::from_uuid(row.try_get::<Uuid, _>("event_id")?),
        venue_id: VenueId::from_uuid(row.try_get::<Uuid, _>("venue_id")?),
        zone: stored(ZoneCode::new(row.try_get::<String, _>("zone_code")?))?,
        seat: seat.map(|s| stored(s.parse::<SeatRef>())).transpose()?,
        customer: stored(CustomerId::new(row.try_get::<String, _>("customer_id")?))?,
        price: Money::new(
            row.try_get("price_minor")?,
            stored(Currency::new(&currency))?,
        ),
        status: stored(status.parse::<TicketStatus>())?,
        created_on: row.try_get::<DateTime<Utc>, _>("created_on")?,
        expires_at: row.try_get::<DateTime<Utc>, _>("expires_at")?,
        paid_at: row.try_get::<Option<DateTime<Utc>>, _>("paid_at")?,
        payment_ref: payment_ref
            .map(|p| stored(PaymentRef::new(p)))
            .transpose()?,
    })
}

/// A stored value that no longer parses is broken data: an internal error, never a panic.
pub(crate) fn stored<T, E: Display>(value: Result<T, E>) -> Result<T, Error> {
    value.map_err(|e| Error::internal(format!("invalid value stored in mysql: {e}")))
}

/// `?, ?, ?` with `n` markers (at least one, so an empty list still parses and matches nothing
/// when bound to a value no row has).
pub(crate) fn markers(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// `(?, ?), (?, ?)`: `rows` tuples of `columns` markers, for a multi-row `VALUES`.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    let row = format!("({})", markers(columns));
    vec![row; rows.max(1)].join(", ")
}

/// A statement template with `{list}` replaced by generated markers. Only `?` and punctuation
/// are ever spliced in, never a value, so the result is as safe as the template.
pub(crate) fn expand(template: &'static str, list: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(template.replace("{list}", list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_rows() {
        assert_eq!(markers(3), "?, ?, ?");
        assert_eq!(markers(0), "?");
        assert_eq!(value_rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(expand("IN ({list})", &markers(2)).0, "IN (?, ?)");
    }
}
