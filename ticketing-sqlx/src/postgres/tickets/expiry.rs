//! The expiry sweep on PostgreSQL: due orders in batches, `FOR UPDATE SKIP LOCKED`, safe with
//! many sweepers at once.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{Order, OutboxEvent, OutboxKind, TicketAction};
use uuid::Uuid;

use super::sql;
use super::transition::{load_orders, release_usage};
use crate::flows::outbox::Outbox;
use crate::postgres::error::StoreResult;
use crate::postgres::pool::begin;
use crate::rules::expiry_statuses;
use sqlx::Postgres;

/// Expires up to `limit` due orders. The order rows are locked with `FOR UPDATE SKIP LOCKED`:
/// a concurrent sweeper skips them (and takes the next ones), a concurrent payment waits and then
/// finds the order EXPIRED (its compare-and-set re-checks the new row version). So each order is
/// expired, and returned, by exactly one caller.
pub(super) async fn expire_due_once(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<Order>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (expired, pending) = expiry_statuses();
    let mut tx = begin(pool).await?;
    let ids: Vec<Uuid> = sqlx::query(sql::LOCK_DUE_ORDERS)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get::<Uuid, _>("id"))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }

    let orders_moved = sqlx::query(sql::EXPIRE_ORDERS)
        .bind(expired)
        .bind(&ids)
        .bind(pending)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let tickets_moved = sqlx::query(sql::EXPIRE_TICKETS)
        .bind(expired)
        .bind(&ids)
        .bind(pending)
        .execute(&mut *tx)
        .await?
        .rows_affected();

    let orders = load_orders(&mut tx, &ids).await?;
    let tickets: u64 = orders.iter().map(|o| o.tickets.len() as u64).sum();
    if orders_moved != ids.len() as u64 || tickets_moved != tickets {
        return Err(Error::internal(format!(
            "expiry moved {orders_moved} of {} orders and {tickets_moved} of {tickets} tickets",
            ids.len()
        ))
        .into());
    }
    release_usage(&mut tx, &orders).await?;
    let kind = OutboxKind::for_action(TicketAction::Expire);
    let events: Vec<_> = orders
        .iter()
        .map(|o| OutboxEvent::for_order(kind, o, now))
        .collect();
    Postgres::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(orders)
}
