//! Persisting a new order on MySQL: the shared flow `crate::flows::purchase` on this database's
//! statements, and the steps whose statements differ (a multi-row `VALUES` and an `IN` list
//! built with sqlx's `QueryBuilder`, the customer count).

use sqlx::{MySql, MySqlConnection, MySqlPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{Order, SeatRef, Ticket};
use ticketing_core::ports::NewOrder;

use super::sql;
use crate::codec::stored;
use crate::error::StoreResult;
use crate::flows::purchase::Purchase;
pub(super) use crate::rules::{check, created_on, reserved_event};

impl Purchase for MySql {
    const INSERT_IDEMPOTENCY: &'static str = sql::INSERT_IDEMPOTENCY;
    const SELECT_IDEMPOTENCY: &'static str = sql::SELECT_IDEMPOTENCY;
    const INSERT_ORDER: &'static str = sql::INSERT_ORDER;

    async fn insert_tickets(
        conn: &mut MySqlConnection,
        tickets: &[(&Ticket, Option<u16>)],
    ) -> sqlx::Result<()> {
        insert_tickets(conn, tickets).await
    }

    async fn taken_seats(pool: &MySqlPool, new: &NewOrder) -> StoreResult<Vec<SeatRef>> {
        taken_seats(pool, new).await
    }
}

/// Counts `count` more active tickets of `order`'s customer for its event, or `LimitExceeded`
/// when that would pass `limit` (a purchase, and a late payment taking an order back).
pub(super) async fn raise_usage_within(
    conn: &mut MySqlConnection,
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
        .bind(count)
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .bind(count)
        .bind(limit)
        .execute(&mut *conn)
        .await?;
    if raised.rows_affected() != 1 {
        return Err(Error::LimitExceeded { limit }.into());
    }
    Ok(())
}

/// The seats of `new` that have an active ticket now, read after the failed transaction ended.
async fn taken_seats(pool: &MySqlPool, new: &NewOrder) -> StoreResult<Vec<SeatRef>> {
    let wanted = new
        .order
        .tickets
        .iter()
        .filter_map(|t| t.seat.as_ref().map(SeatRef::key));
    let mut select = sql::select_taken_seats(new.order.event_id.as_uuid(), wanted);
    let rows = select.build().fetch_all(pool).await?;
    let mut taken = Vec::new();
    for row in rows {
        let key: String = row.try_get("active_seat")?;
        taken.push(stored(key.parse::<SeatRef>())?);
    }
    taken.sort();
    Ok(taken)
}

/// Inserts tickets in one multi-row statement (the purchase and the batch writer share it), each
/// with the `zone_usage` shard its place counts in (general admission) or `None` (a seat).
pub(super) async fn insert_tickets(
    conn: &mut MySqlConnection,
    tickets: &[(&Ticket, Option<u16>)],
) -> sqlx::Result<()> {
    sql::insert_tickets(tickets)
        .build()
        .execute(conn)
        .await
        .map(|_| ())
}
