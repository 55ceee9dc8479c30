//! Between rows and domain values, and the one helper variable-length SQL on MySQL needs beyond
//! sqlx's `QueryBuilder` (PostgreSQL binds lists as arrays). Shared by both databases: the functions are generic over the row type, and
//! both schemas name and type the columns alike (UUIDs, text, `BIGINT` money, UTC times).

use std::fmt::Display;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, OrderId, Payment, PaymentOutcome, PaymentRef, SeatRef,
    Ticket, TicketId, TicketStatus, VenueId, ZoneCode,
};
use uuid::Uuid;

/// The ticket columns [`ticket`] reads, as a literal for `concat!` in statement constants.
macro_rules! ticket_columns {
    () => {
        "id, order_id, event_id, venue_id, zone_code, seat_key, customer_id, price_minor, \
         currency, status, created_on, expires_at, paid_at, payment_ref"
    };
}
#[allow(unused_imports)] // used by whichever database features are on
pub(crate) use ticket_columns;

/// A row of either database this module can read domain values from: the column types the
/// schemas use decode from it.
pub(crate) trait DomainRow: Row
where
    for<'r> &'r str: ColumnIndex<Self>,
{
}

impl<R> DomainRow for R
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
{
}

/// A ticket from a row selected with [`ticket_columns!`].
pub(crate) fn ticket<R, E>(row: &R) -> Result<Ticket, E>
where
    E: From<sqlx::Error> + From<Error>,
    R: DomainRow,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> Uuid: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
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

/// A `payments` row as a ledger entry.
pub(crate) fn payment<R, E>(row: &R) -> Result<Payment, E>
where
    E: From<sqlx::Error> + From<Error>,
    R: DomainRow,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> Uuid: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    let currency: String = row.try_get("currency")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(Payment {
        reference: stored(PaymentRef::new(row.try_get::<String, _>("reference")?))?,
        order: OrderId::from_uuid(row.try_get::<Uuid, _>("order_id")?),
        amount: Money::new(
            row.try_get("amount_minor")?,
            stored(Currency::new(&currency))?,
        ),
        received_at: row.try_get::<DateTime<Utc>, _>("received_at")?,
        outcome: stored(outcome.parse::<PaymentOutcome>())?,
        refunded_at: row.try_get::<Option<DateTime<Utc>>, _>("refunded_at")?,
    })
}

/// A stored value that no longer parses is broken data: an internal error, never a panic.
pub(crate) fn stored<T, E: Display>(value: Result<T, E>) -> Result<T, Error> {
    value.map_err(|e| Error::internal(format!("invalid value stored in the database: {e}")))
}

/// Pushes `(?, ?, …)` (`($1, $2, …)` on PostgreSQL) with one bound marker per value: the list of
/// an `IN`. The caller makes sure there is at least one value (`IN ()` does not parse).
#[cfg(feature = "mysql")]
pub(crate) fn push_list<'t, DB, T, I>(query: &mut sqlx::QueryBuilder<DB>, values: I)
where
    DB: sqlx::Database,
    I: IntoIterator<Item = T>,
    T: sqlx::Encode<'t, DB> + Type<DB> + 't,
{
    query.push("(");
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    list.push_unseparated(")");
}

#[cfg(all(test, feature = "mysql"))]
mod tests {
    use sqlx::{MySql, QueryBuilder};

    use super::*;

    #[test]
    fn list_has_one_marker_per_value() {
        let mut query = QueryBuilder::<MySql>::new("SELECT 1 WHERE x IN ");
        push_list(&mut query, ["a", "b", "c"]);
        query.push(" AND y = ").push_bind(1u8);
        assert_eq!(
            query.sql().as_str(),
            "SELECT 1 WHERE x IN (?, ?, ?) AND y = ?"
        );
    }
}
