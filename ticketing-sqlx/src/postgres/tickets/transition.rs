//! Moving orders along the state machine on PostgreSQL: compare-and-set on the order row, then
//! its tickets, the counters and the outbox, all in one transaction.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{Order, OrderId, OutboxEvent, OutboxKind, TicketAction};
use ticketing_core::ports::Transition;
use uuid::Uuid;

use super::sql;
use crate::codec::ticket;
use crate::flows::outbox::Outbox;
use crate::flows::tier::PriceTiers;
use crate::flows::voucher::VoucherUses;
use crate::postgres::error::{StoreError, StoreResult};
use crate::postgres::pool::begin;
use sqlx::Postgres;

/// Applies `t` as a compare-and-set; `true` when every ticket of the order moved.
pub(super) async fn transition_once(pool: &PgPool, t: &Transition) -> StoreResult<bool> {
    let (source, target) = (t.action.source(), t.action.target());
    let mut tx = begin(pool).await?;

    // The guard of `TicketStatus::apply`, checked by the database on the latest committed row.
    let cas = match t.action {
        TicketAction::Pay => sqlx::query(sql::CAS_ORDER_BEFORE_DEADLINE),
        TicketAction::Expire => sqlx::query(sql::CAS_ORDER_AFTER_DEADLINE),
        TicketAction::Cancel | TicketAction::Refund => sqlx::query(sql::CAS_ORDER),
    }
    .bind(target.as_str())
    .bind(t.order.as_uuid())
    .bind(source.as_str());
    let cas = match t.action {
        TicketAction::Pay | TicketAction::Expire => cas.bind(t.now),
        TicketAction::Cancel | TicketAction::Refund => cas,
    };
    if cas.execute(&mut *tx).await?.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }

    let paying = t.action == TicketAction::Pay;
    let moved = sqlx::query(sql::MOVE_TICKETS)
        .bind(target.as_str())
        .bind(paying.then_some(t.now))
        .bind(if paying {
            t.payment_ref.as_ref().map(|p| p.as_str())
        } else {
            None
        })
        .bind(t.order.as_uuid())
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let order = load_order(&mut tx, t.order).await?;
    if moved != order.tickets.len() as u64 {
        return Err(Error::internal(format!(
            "order {}: moved {moved} of {} tickets; order and tickets disagree",
            t.order,
            order.tickets.len()
        ))
        .into());
    }
    if target.is_terminal() {
        release_usage(&mut tx, std::slice::from_ref(&order)).await?;
    }
    let kind = OutboxKind::for_action(t.action);
    Postgres::append(&mut tx, &[OutboxEvent::for_order(kind, &order, t.now)]).await?;
    tx.commit().await?;
    Ok(true)
}

/// Every ticket of `order` as an [`Order`]; an order row without tickets is broken data.
pub(super) async fn load_order(conn: &mut PgConnection, id: OrderId) -> StoreResult<Order> {
    let rows = sqlx::query(sql::SELECT_ORDER_TICKETS)
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await?;
    let tickets = rows.iter().map(ticket).collect::<StoreResult<Vec<_>>>()?;
    Ok(Order::from_tickets(tickets)?
        .ok_or_else(|| Error::internal(format!("order {id} has no tickets")))?)
}

/// Every ticket of the orders `ids`, grouped into orders in the order of `ids`.
pub(super) async fn load_orders(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<Vec<Order>> {
    let rows = sqlx::query(sql::SELECT_TICKETS_OF_ORDERS)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut by_order: BTreeMap<Uuid, Vec<_>> = BTreeMap::new();
    for row in rows {
        let t = ticket::<_, StoreError>(&row)?;
        by_order.entry(t.order_id.as_uuid()).or_default().push(t);
    }
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        let tickets = by_order.remove(id).unwrap_or_default();
        orders.push(
            Order::from_tickets(tickets)?
                .ok_or_else(|| Error::internal(format!("order {id} has no tickets")))?,
        );
    }
    Ok(orders)
}

/// Lowers the counters of invariants 2 and 6 for orders whose tickets just turned terminal: the
/// voucher uses, the customers' counts, and each general-admission place in the shard it was counted in. Rows are
/// updated in key order, the same in every transaction, so sweepers do not deadlock.
pub(super) async fn release_usage(conn: &mut PgConnection, orders: &[Order]) -> StoreResult<()> {
    // Vouchers first: a purchase takes its voucher's use before its customer's count, so
    // both meet those rows in one order.
    Postgres::give_back_vouchers(conn, orders).await?;
    // Then the tiers, in the purchase's order of rows.
    Postgres::give_back_tiers(conn, orders).await?;
    let mut customers: BTreeMap<(Uuid, &str), i64> = BTreeMap::new();
    for order in orders {
        debug_assert!(order.status.is_terminal());
        for t in &order.tickets {
            *customers
                .entry((t.event_id.as_uuid(), t.customer.as_str()))
                .or_default() += 1;
        }
    }
    for ((event, customer), n) in customers {
        let lowered = sqlx::query(sql::LOWER_CUSTOMER_USAGE)
            .bind(n)
            .bind(event)
            .bind(customer)
            .execute(&mut *conn)
            .await?;
        if lowered.rows_affected() != 1 {
            return Err(Error::internal(format!("no usage row for customer {customer}")).into());
        }
    }
    let general: Vec<Uuid> = orders
        .iter()
        .filter(|o| o.tickets.iter().any(|t| t.seat.is_none()))
        .map(|o| o.id.as_uuid())
        .collect();
    if !general.is_empty() {
        release_places(conn, &general).await?;
    }
    Ok(())
}

/// Lowers the `zone_usage` shards the general-admission places of `orders` were counted in.
async fn release_places(conn: &mut PgConnection, orders: &[Uuid]) -> StoreResult<()> {
    let rows = sqlx::query(sql::PLACES_PER_SHARD)
        .bind(orders)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let event: Uuid = row.try_get("event_id")?;
        let zone: String = row.try_get("zone_code")?;
        let shard: i16 = row.try_get("shard")?;
        let n: i64 = row.try_get("n")?;
        let lowered = sqlx::query(sql::LOWER_SHARD)
            .bind(n)
            .bind(event)
            .bind(&zone)
            .bind(shard)
            .execute(&mut *conn)
            .await?;
        if lowered.rows_affected() != 1 {
            return Err(
                Error::internal(format!("no usage row for zone {zone} shard {shard}")).into(),
            );
        }
    }
    Ok(())
}
