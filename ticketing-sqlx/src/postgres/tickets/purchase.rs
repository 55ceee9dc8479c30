//! Persisting a new order on PostgreSQL: the shared flow `crate::flows::purchase` on this
//! database's statements, and the steps whose statements differ (lists bound as arrays, the
//! customer count).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Row};
use ticketing_core::Error;
use ticketing_core::domain::{Order, SeatRef, Ticket};
use ticketing_core::ports::NewOrder;
use uuid::Uuid;

use super::sql;
use crate::codec::stored;
use crate::flows::purchase::Purchase;
use crate::postgres::error::StoreResult;

impl Purchase for Postgres {
    const INSERT_IDEMPOTENCY: &'static str = sql::INSERT_IDEMPOTENCY;
    const SELECT_IDEMPOTENCY: &'static str = sql::SELECT_IDEMPOTENCY;
    const INSERT_ORDER: &'static str = sql::INSERT_ORDER;

    async fn insert_tickets(
        conn: &mut PgConnection,
        tickets: &[(&Ticket, Option<u16>)],
    ) -> sqlx::Result<()> {
        insert_tickets(conn, tickets).await
    }

    async fn taken_seats(pool: &PgPool, new: &NewOrder) -> StoreResult<Vec<SeatRef>> {
        taken_seats(pool, new).await
    }
}

/// Counts `count` more active tickets of `order`'s customer for its event, or `LimitExceeded`
/// when that would pass `limit` (a purchase, and a late payment taking an order back).
pub(super) async fn raise_usage_within(
    conn: &mut PgConnection,
    order: &Order,
    count: u32,
    limit: u32,
) -> StoreResult<()> {
    sqlx::query(sql::ENSURE_CUSTOMER_USAGE)
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .execute(&mut *conn)
        .await?;
    let raised = sqlx::query(sql::RAISE_CUSTOMER_USAGE)
        .bind(i64::from(count))
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .bind(i64::from(limit))
        .execute(&mut *conn)
        .await?;
    if raised.rows_affected() != 1 {
        return Err(Error::LimitExceeded { limit }.into());
    }
    Ok(())
}

/// The seats of `new` that have an active ticket now, read after the failed transaction ended.
async fn taken_seats(pool: &PgPool, new: &NewOrder) -> StoreResult<Vec<SeatRef>> {
    let wanted: Vec<String> = new
        .order
        .tickets
        .iter()
        .filter_map(|t| t.seat.as_ref().map(SeatRef::key))
        .collect();
    let rows = sqlx::query(sql::SELECT_TAKEN_SEATS)
        .bind(new.order.event_id.as_uuid())
        .bind(wanted)
        .fetch_all(pool)
        .await?;
    let mut taken = Vec::new();
    for row in rows {
        let key: String = row.try_get("seat_key")?;
        taken.push(stored(key.parse::<SeatRef>())?);
    }
    taken.sort();
    Ok(taken)
}

/// Inserts tickets in one statement (arrays, one per column), each with the `zone_usage` shard
/// its place counts in (general admission) or `None` (a seat).
async fn insert_tickets(
    conn: &mut PgConnection,
    tickets: &[(&Ticket, Option<u16>)],
) -> sqlx::Result<()> {
    let column =
        |f: &dyn Fn(&Ticket) -> Uuid| tickets.iter().map(|(t, _)| f(t)).collect::<Vec<_>>();
    let text = |f: &dyn Fn(&Ticket) -> Option<String>| {
        tickets.iter().map(|(t, _)| f(t)).collect::<Vec<_>>()
    };
    let time = |f: &dyn Fn(&Ticket) -> Option<DateTime<Utc>>| {
        tickets.iter().map(|(t, _)| f(t)).collect::<Vec<_>>()
    };
    sqlx::query(sql::INSERT_TICKETS)
        .bind(column(&|t| t.id.as_uuid()))
        .bind(column(&|t| t.order_id.as_uuid()))
        .bind(column(&|t| t.event_id.as_uuid()))
        .bind(column(&|t| t.venue_id.as_uuid()))
        .bind(text(&|t| Some(t.zone.as_str().to_owned())))
        .bind(text(&|t| t.seat.as_ref().map(SeatRef::key)))
        .bind(text(&|t| Some(t.customer.as_str().to_owned())))
        .bind(
            tickets
                .iter()
                .map(|(t, _)| t.price.minor)
                .collect::<Vec<_>>(),
        )
        .bind(text(&|t| Some(t.price.currency.as_str().to_owned())))
        .bind(text(&|t| Some(t.status.as_str().to_owned())))
        .bind(time(&|t| Some(t.created_on)))
        .bind(time(&|t| Some(t.expires_at)))
        .bind(time(&|t| t.paid_at))
        .bind(text(&|t| {
            t.payment_ref.as_ref().map(|p| p.as_str().to_owned())
        }))
        .bind(
            tickets
                .iter()
                .map(|(_, shard)| shard.map(shard_bind))
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await
        .map(|_| ())
}

/// A shard number as stored (`smallint`); shards are below [`crate::shards::MAX_SHARDS`].
pub(super) fn shard_bind(shard: u16) -> i16 {
    i16::try_from(shard).unwrap_or(i16::MAX)
}
