//! The payments ledger: a notification's entry and its effect on the order in one transaction.
//!
//! The entry goes in first: its primary key (the provider's reference) makes a concurrent
//! duplicate wait for us and then find our entry, as the idempotency key does for purchases.
//! Then the order row is locked and compared with the status the decision was made on; then
//! the effect, and the outbox event that reports it.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{
    Order, OrderId, OutboxEvent, Payment, PaymentEffect, PaymentRecorded, PaymentRef, PaymentWrite,
    TicketStatus,
};
use uuid::Uuid;

use super::OrderSteps;
use super::outbox::Outbox;
use super::tier::PriceTiers;
use super::voucher::VoucherUses;
use crate::codec::{payment as payment_row, stored};
use crate::dialect::is_unique_violation;

/// The payments ledger on a database: its statements, and the flow of
/// [`record_payment`](ticketing_core::ports::TicketRepository::record_payment) and the ledger
/// reads over them.
pub(crate) trait Ledger: OrderSteps + Outbox + VoucherUses + PriceTiers
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i32: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Self::Count: Decode<'q, Self>,
{
    /// Binds: reference, order, amount, currency, received_at, outcome.
    const INSERT_PAYMENT: &'static str;
    /// Binds: reference.
    const SELECT_PAYMENT: &'static str;
    /// Binds: order. Oldest first.
    const SELECT_PAYMENTS_OF_ORDER: &'static str;
    /// Binds: limit. The refunds owed, oldest first.
    const SELECT_REFUNDS_DUE: &'static str;
    /// Binds: refunded_at, reference. Only an owed refund is marked.
    const MARK_REFUNDED: &'static str;
    /// Binds: order. The order's status and deadline (`expires_at`) under a row lock: the
    /// decision's guard.
    const LOCK_ORDER_STATUS: &'static str;
    /// Binds: target, order, source, now. The compare-and-set of a payment in time.
    const CAS_ORDER_BEFORE_DEADLINE: &'static str;
    /// Binds: target, order, source. The compare-and-set of a late payment or a reactivation.
    const CAS_ORDER: &'static str;
    /// Binds: PAID, paid_at, payment_ref, order, source. The order's tickets move with it.
    const MOVE_TICKETS: &'static str;
    /// Binds: shard, ticket. The `zone_usage` shard a reactivated general-admission place
    /// counts in.
    const SET_USAGE_SHARD: &'static str;

    /// One attempt at
    /// [`record_payment`](ticketing_core::ports::TicketRepository::record_payment).
    async fn record_once(
        pool: &Pool<Self>,
        w: &PaymentWrite,
    ) -> Result<PaymentRecorded, Self::Error> {
        let p = &w.payment;
        let mut tx = Self::begin(pool).await?;
        if !Self::insert_entry(&mut tx, p).await? {
            tx.rollback().await?;
            return match Self::select_payment(pool, &p.reference).await? {
                Some(stored) => Ok(PaymentRecorded::Replayed(stored)),
                None => {
                    Err(Error::internal("payment reference is duplicate but has no entry").into())
                }
            };
        }
        let locked = Self::locked_status(&mut tx, p.order).await?;
        if locked.map(|(status, _)| status) != w.decided_on
            || locked.is_some_and(|(status, deadline)| w.judged_late_but_in_time(status, deadline))
            || !Self::apply(&mut tx, w).await?
        {
            tx.rollback().await?;
            return Ok(PaymentRecorded::Stale);
        }
        if w.decided_on.is_some() {
            let order = Self::load_order(&mut tx, p.order).await?;
            let event = OutboxEvent::for_payment(&order, p, w.effect, p.received_at);
            Self::append(&mut tx, &[event]).await?;
        }
        tx.commit().await?;
        Ok(PaymentRecorded::Recorded)
    }

    /// The ledger entry; `false` when the reference is in the ledger already.
    async fn insert_entry(conn: &mut Self::Connection, p: &Payment) -> Result<bool, Self::Error> {
        let inserted = sqlx::query(Self::INSERT_PAYMENT)
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

    /// The order's status and deadline, locked until the transaction ends; `None` when there
    /// is no such order.
    async fn locked_status(
        conn: &mut Self::Connection,
        order: OrderId,
    ) -> Result<Option<(TicketStatus, DateTime<Utc>)>, Self::Error> {
        let row = sqlx::query(Self::LOCK_ORDER_STATUS)
            .bind(order.as_uuid())
            .fetch_optional(conn)
            .await?;
        row.map(|r| {
            let status: String = r.try_get("status")?;
            let deadline: DateTime<Utc> = r.try_get("expires_at")?;
            Ok((stored(status.parse::<TicketStatus>())?, deadline))
        })
        .transpose()
    }

    /// The decision's effect on the (locked) order; `false` when its guard does not hold.
    async fn apply(conn: &mut Self::Connection, w: &PaymentWrite) -> Result<bool, Self::Error> {
        let p = &w.payment;
        let (pending, expired, paid) = (
            TicketStatus::PendingPayment.as_str(),
            TicketStatus::Expired.as_str(),
            TicketStatus::Paid.as_str(),
        );
        let moved = match w.effect {
            PaymentEffect::None => return Ok(true),
            PaymentEffect::Pay => sqlx::query(Self::CAS_ORDER_BEFORE_DEADLINE)
                .bind(paid)
                .bind(p.order.as_uuid())
                .bind(pending)
                .bind(p.received_at),
            PaymentEffect::PayLate => sqlx::query(Self::CAS_ORDER)
                .bind(paid)
                .bind(p.order.as_uuid())
                .bind(pending),
            PaymentEffect::Reactivate => sqlx::query(Self::CAS_ORDER)
                .bind(paid)
                .bind(p.order.as_uuid())
                .bind(expired),
            other => {
                return Err(Error::internal(format!("unknown payment effect {other:?}")).into());
            }
        }
        .execute(&mut *conn)
        .await?;
        if Self::rows_affected(&moved) == 0 {
            return Ok(false);
        }
        let source = if w.effect == PaymentEffect::Reactivate {
            expired
        } else {
            pending
        };
        let before = Self::load_order(&mut *conn, p.order).await?;
        Self::move_tickets(conn, &before, p, source).await?;
        if w.effect == PaymentEffect::Reactivate {
            Self::take_back(conn, &before, w).await?;
        }
        Ok(true)
    }

    /// Moves the order's tickets from `source` to PAID under `p`. For an expired order this
    /// puts its seats back under the active-seat key: a seat bought since is `SeatsTaken`.
    async fn move_tickets(
        conn: &mut Self::Connection,
        order: &Order,
        p: &Payment,
        source: &str,
    ) -> Result<(), Self::Error> {
        let moved = sqlx::query(Self::MOVE_TICKETS)
            .bind(TicketStatus::Paid.as_str())
            .bind(p.received_at)
            .bind(p.reference.as_str())
            .bind(p.order.as_uuid())
            .bind(source)
            .execute(&mut *conn)
            .await
            .map(|done| Self::rows_affected(&done));
        match moved {
            Ok(n) if n == order.tickets.len() as u64 => Ok(()),
            Ok(n) => Err(Error::internal(format!(
                "order {}: paid {n} of {} tickets; order and tickets disagree",
                order.id,
                order.tickets.len()
            ))
            .into()),
            Err(e) if Self::violates_unique_key(&e, Self::ACTIVE_SEAT_KEY) => {
                Err(Error::SeatsTaken {
                    seats: order
                        .tickets
                        .iter()
                        .filter_map(|t| t.seat.clone())
                        .collect(),
                }
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a reactivated order in again: its voucher's use (within the voucher's limits, or
    /// `Voucher`), its tickets' places in the tiers they were priced in (or `SoldOut`), its
    /// general-admission places (from shards with room, or `SoldOut`) and its customer's
    /// tickets (within the limit, or `LimitExceeded`). In the purchase's order of rows
    /// (voucher, tier shards, zone shards, customer), so a late payment and a purchase never
    /// wait on each other's rows in opposite orders.
    async fn take_back(
        conn: &mut Self::Connection,
        order: &Order,
        w: &PaymentWrite,
    ) -> Result<(), Self::Error> {
        Self::retake_voucher(conn, order).await?;
        Self::retake_tiers(conn, order).await?;
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
                Self::take_places(conn, order.event_id, &first.zone, capacity, n, start).await?
            else {
                return Err(Error::SoldOut {
                    zone: first.zone.clone(),
                    requested: n,
                }
                .into());
            };
            for (ticket, shard) in places.iter().zip(shards) {
                sqlx::query(Self::SET_USAGE_SHARD)
                    .bind(Self::shard(shard))
                    .bind(ticket.id.as_uuid())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        let count = order.tickets.len() as u32;
        Self::raise_usage_within(conn, order, count, w.per_customer_limit).await
    }

    /// The ledger entry of `reference`.
    async fn select_payment(
        pool: &Pool<Self>,
        reference: &PaymentRef,
    ) -> Result<Option<Payment>, Self::Error> {
        let row = sqlx::query(Self::SELECT_PAYMENT)
            .bind(reference.as_str())
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(payment_row).transpose()
    }

    /// The ledger entries naming `order`, oldest first.
    async fn payments_of(pool: &Pool<Self>, order: OrderId) -> Result<Vec<Payment>, Self::Error> {
        let rows = sqlx::query(Self::SELECT_PAYMENTS_OF_ORDER)
            .bind(order.as_uuid())
            .fetch_all(pool)
            .await?;
        rows.iter().map(payment_row).collect()
    }

    /// Up to `limit` refunds owed, oldest first.
    async fn refunds_due(pool: &Pool<Self>, limit: u32) -> Result<Vec<Payment>, Self::Error> {
        let rows = sqlx::query(Self::SELECT_REFUNDS_DUE)
            .bind(Self::count(limit))
            .fetch_all(pool)
            .await?;
        rows.iter().map(payment_row).collect()
    }

    /// Notes the refund owed under `reference` as sent at `at`.
    async fn mark_refunded(
        pool: &Pool<Self>,
        reference: &PaymentRef,
        at: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        let marked = sqlx::query(Self::MARK_REFUNDED)
            .bind(at)
            .bind(reference.as_str())
            .execute(pool)
            .await?;
        Ok(Self::rows_affected(&marked) == 1)
    }
}
