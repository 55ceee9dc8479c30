//! The payments ledger on PostgreSQL: a notification's entry and its effect on the order in one transaction.
//!
//! The entry goes in first: its primary key (the provider's reference) makes a concurrent
//! duplicate wait for us and then find our entry, as the idempotency key does for purchases.
//! Then the order row is locked and compared with the status the decision was made on; then
//! the effect, and the outbox event that reports it.

use sqlx::{PgConnection, PgPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{
    Order, OrderId, OutboxEvent, Payment, PaymentEffect, PaymentRecorded, PaymentRef, PaymentWrite,
    TicketStatus,
};

use super::purchase::{raise_usage_within, shard_bind};
use super::sql;
use super::transition::load_order;
use super::zone_capacity;
use crate::codec::{payment as payment_row, stored};
use crate::postgres::error::{StoreResult, is_unique_violation, violates_unique_key};
use crate::postgres::outbox;
use crate::postgres::pool::begin;

/// One attempt at [`record_payment`](ticketing_core::ports::TicketRepository::record_payment).
pub(super) async fn record_once(pool: &PgPool, w: &PaymentWrite) -> StoreResult<PaymentRecorded> {
    let p = &w.payment;
    let mut tx = begin(pool).await?;
    if !insert_entry(&mut tx, p).await? {
        tx.rollback().await?;
        return match select_payment(pool, &p.reference).await? {
            Some(stored) => Ok(PaymentRecorded::Replayed(stored)),
            None => Err(Error::internal("payment reference is duplicate but has no entry").into()),
        };
    }
    if locked_status(&mut tx, p.order).await? != w.decided_on || !apply(&mut tx, w).await? {
        tx.rollback().await?;
        return Ok(PaymentRecorded::Stale);
    }
    if w.decided_on.is_some() {
        let order = load_order(&mut tx, p.order).await?;
        let event = OutboxEvent::for_payment(&order, p, w.effect, p.received_at);
        outbox::append(&mut tx, &[event]).await?;
    }
    tx.commit().await?;
    Ok(PaymentRecorded::Recorded)
}

/// The ledger entry; `false` when the reference is in the ledger already.
async fn insert_entry(conn: &mut PgConnection, p: &Payment) -> StoreResult<bool> {
    let inserted = sqlx::query(sql::INSERT_PAYMENT)
        .bind(p.reference.as_str())
        .bind(p.order.as_uuid())
        .bind(p.amount.minor)
        .bind(p.amount.currency.as_str())
        .bind(p.received_at)
        .bind(p.outcome.as_str())
        .execute(conn)
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The order's status, locked until the transaction ends; `None` when there is no such order.
async fn locked_status(
    conn: &mut PgConnection,
    order: OrderId,
) -> StoreResult<Option<TicketStatus>> {
    let row = sqlx::query(sql::LOCK_ORDER_STATUS)
        .bind(order.as_uuid())
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        let status: String = r.try_get("status")?;
        Ok(stored(status.parse::<TicketStatus>())?)
    })
    .transpose()
}

/// The decision's effect on the (locked) order; `false` when its guard does not hold.
async fn apply(conn: &mut PgConnection, w: &PaymentWrite) -> StoreResult<bool> {
    let p = &w.payment;
    let (pending, expired, paid) = (
        TicketStatus::PendingPayment.as_str(),
        TicketStatus::Expired.as_str(),
        TicketStatus::Paid.as_str(),
    );
    let moved = match w.effect {
        PaymentEffect::None => return Ok(true),
        PaymentEffect::Pay => sqlx::query(sql::CAS_ORDER_BEFORE_DEADLINE)
            .bind(paid)
            .bind(p.order.as_uuid())
            .bind(pending)
            .bind(p.received_at),
        PaymentEffect::PayLate => sqlx::query(sql::CAS_ORDER)
            .bind(paid)
            .bind(p.order.as_uuid())
            .bind(pending),
        PaymentEffect::Reactivate => sqlx::query(sql::CAS_ORDER)
            .bind(paid)
            .bind(p.order.as_uuid())
            .bind(expired),
        other => {
            return Err(Error::internal(format!("unknown payment effect {other:?}")).into());
        }
    }
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(false);
    }
    let source = if w.effect == PaymentEffect::Reactivate {
        expired
    } else {
        pending
    };
    let before = load_order(&mut *conn, p.order).await?;
    move_tickets(conn, &before, p, source).await?;
    if w.effect == PaymentEffect::Reactivate {
        take_back(conn, &before, w).await?;
    }
    Ok(true)
}

/// Moves the order's tickets from `source` to PAID under `p`. For an expired order this puts
/// its seats back under the active-seat key: a seat bought since is `SeatsTaken`.
async fn move_tickets(
    conn: &mut PgConnection,
    order: &Order,
    p: &Payment,
    source: &str,
) -> StoreResult<()> {
    let moved = sqlx::query(sql::MOVE_TICKETS)
        .bind(TicketStatus::Paid.as_str())
        .bind(p.received_at)
        .bind(p.reference.as_str())
        .bind(p.order.as_uuid())
        .bind(source)
        .execute(&mut *conn)
        .await;
    match moved {
        Ok(done) if done.rows_affected() == order.tickets.len() as u64 => Ok(()),
        Ok(done) => Err(Error::internal(format!(
            "order {}: paid {} of {} tickets; order and tickets disagree",
            order.id,
            done.rows_affected(),
            order.tickets.len()
        ))
        .into()),
        Err(e) if violates_unique_key(&e, sql::ACTIVE_SEAT_KEY) => Err(Error::SeatsTaken {
            seats: order
                .tickets
                .iter()
                .filter_map(|t| t.seat.clone())
                .collect(),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Counts a reactivated order in again: its general-admission places (from shards with room,
/// or `SoldOut`) and its customer's tickets (within the limit, or `LimitExceeded`).
async fn take_back(conn: &mut PgConnection, order: &Order, w: &PaymentWrite) -> StoreResult<()> {
    let places: Vec<_> = order.tickets.iter().filter(|t| t.seat.is_none()).collect();
    if let Some(first) = places.first() {
        let capacity = w.zone_capacity.ok_or_else(|| {
            Error::internal(format!(
                "reactivating general-admission order {} without its zone's capacity",
                order.id
            ))
        })?;
        let n = places.len() as u32;
        let start = order.id.as_uuid().as_u128() as u32;
        let Some(shards) =
            zone_capacity::take(conn, order.event_id, &first.zone, capacity, n, start).await?
        else {
            return Err(Error::SoldOut {
                zone: first.zone.clone(),
                requested: n,
            }
            .into());
        };
        for (ticket, shard) in places.iter().zip(shards) {
            sqlx::query(sql::SET_USAGE_SHARD)
                .bind(shard_bind(shard))
                .bind(ticket.id.as_uuid())
                .execute(&mut *conn)
                .await?;
        }
    }
    let count = order.tickets.len() as u32;
    raise_usage_within(conn, order, count, w.per_customer_limit).await
}

/// The ledger entry of `reference`.
pub(super) async fn select_payment(
    pool: &PgPool,
    reference: &PaymentRef,
) -> StoreResult<Option<Payment>> {
    let row = sqlx::query(sql::SELECT_PAYMENT)
        .bind(reference.as_str())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(payment_row).transpose()
}

/// The ledger entries naming `order`, oldest first.
pub(super) async fn payments_of(pool: &PgPool, order: OrderId) -> StoreResult<Vec<Payment>> {
    let rows = sqlx::query(sql::SELECT_PAYMENTS_OF_ORDER)
        .bind(order.as_uuid())
        .fetch_all(pool)
        .await?;
    rows.iter().map(payment_row).collect()
}

/// Up to `limit` refunds owed, oldest first.
pub(super) async fn refunds_due(pool: &PgPool, limit: u32) -> StoreResult<Vec<Payment>> {
    let rows = sqlx::query(sql::SELECT_REFUNDS_DUE)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(payment_row).collect()
}

/// Notes the refund owed under `reference` as sent at `at`.
pub(super) async fn mark_refunded(
    pool: &PgPool,
    reference: &PaymentRef,
    at: chrono::DateTime<chrono::Utc>,
) -> StoreResult<bool> {
    let marked = sqlx::query(sql::MARK_REFUNDED)
        .bind(at)
        .bind(reference.as_str())
        .execute(pool)
        .await?;
    Ok(marked.rows_affected() == 1)
}
