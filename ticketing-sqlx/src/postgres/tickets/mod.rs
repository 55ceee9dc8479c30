//! The ticket repository on PostgreSQL: the source of truth for tickets, orders and the outbox.

mod expiry;
#[cfg(all(test, feature = "testing"))]
mod explain;
mod purchase;
mod sql;
mod transition;
mod zone_capacity;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Row};
use ticketing_core::domain::{
    Channel, ChannelRelease, CustomerId, EventId, IdempotencyKey, Order, OrderId, OutboxEntry,
    Payment, PaymentRecorded, PaymentRef, PaymentWrite, SeatRef, Ticket, TicketId, TicketStatus,
    VenueId, VoucherCode, ZoneCode,
};
use ticketing_core::ports::{
    Extension, ExtensionOutcome, IdempotencyRecord, InsertOutcome, NewOrder, TicketRepository,
    Transition,
};
use ticketing_core::{Error, Result};

use super::error::{StoreResult, with_retry};
use crate::codec::ticket;
use crate::flows::OrderSteps;
use crate::flows::channel::Channels;
use crate::flows::extension::HoldExtensions;
use crate::flows::outbox::Outbox;
use crate::flows::payment::Ledger;
use crate::flows::purchase::Purchase;
use crate::flows::tier::PriceTiers;
use crate::flows::voucher::VoucherUses;

/// The [`TicketRepository`] (and the relay's `OutboxStore`) on PostgreSQL.
///
/// - Invariant 1: a partial unique index on `(event_id, seat_key)` over the tickets that are
///   PENDING_PAYMENT or PAID; a violation becomes [`Error::SeatsTaken`] naming the seats.
/// - Invariants 2 and 6: counter rows raised by a conditional `UPDATE … WHERE active + n <= cap`
///   in the purchase transaction and lowered in the transaction that ends the tickets;
///   general-admission zones are sharded and taken with `FOR UPDATE SKIP LOCKED`.
/// - Transitions: compare-and-set on the order row (`WHERE status = <source> AND expires_at …`,
///   with the caller's `now`), then its tickets, counters and outbox row, in one transaction.
/// - The sweep locks due orders with `FOR UPDATE SKIP LOCKED`: many sweepers, disjoint batches.
/// - Serialization failures, deadlocks and lock timeouts are retried (bounded); connection
///   failures are [`Error::Unavailable`].
#[derive(Debug, Clone)]
pub struct PgTicketRepository {
    pool: PgPool,
}

impl PgTicketRepository {
    /// A repository on `pool` (migrated with [`crate::postgres::migrate`]); every
    /// `insert_order` is its own transaction.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool this repository uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn ticket_once(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        let row = sqlx::query(sql::SELECT_TICKET)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ticket).transpose()
    }

    async fn order_once(&self, id: OrderId) -> StoreResult<Option<Order>> {
        let rows = sqlx::query(sql::SELECT_ORDER_TICKETS)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?;
        let tickets = rows.iter().map(ticket).collect::<StoreResult<Vec<_>>>()?;
        Ok(Order::from_tickets(tickets)?)
    }

    async fn active_tickets_once(&self, event: EventId) -> StoreResult<Vec<Ticket>> {
        sqlx::query(sql::SELECT_ACTIVE_TICKETS)
            .bind(event.as_uuid())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(ticket)
            .collect()
    }

    async fn active_tickets_page_once(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> StoreResult<Vec<Ticket>> {
        let query = match after {
            None => sqlx::query(sql::SELECT_ACTIVE_TICKETS_FIRST_PAGE).bind(event.as_uuid()),
            Some(after) => sqlx::query(sql::SELECT_ACTIVE_TICKETS_PAGE)
                .bind(event.as_uuid())
                .bind(after.as_uuid()),
        };
        query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(ticket)
            .collect()
    }

    async fn count_by_status_once(&self, event: EventId, status: TicketStatus) -> StoreResult<u64> {
        let row = sqlx::query(sql::COUNT_BY_STATUS)
            .bind(event.as_uuid())
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).map_err(|_| Error::internal("negative COUNT(*)"))?)
    }

    async fn revenue_minor_once(&self, venue: VenueId, event: EventId) -> StoreResult<i64> {
        let row = sqlx::query(sql::REVENUE_MINOR)
            .bind(event.as_uuid())
            .bind(TicketStatus::Paid.as_str())
            .bind(venue.as_uuid())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("revenue")?)
    }
}

#[async_trait]
impl TicketRepository for PgTicketRepository {
    async fn insert_order(&self, order: &NewOrder) -> Result<InsertOutcome> {
        Ok(Postgres::insert_order(&self.pool, order).await?)
    }

    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(with_retry("idempotency_record", || {
            Postgres::idempotency_record(&self.pool, customer, key)
        })
        .await?)
    }

    /// One `DELETE` of the oldest `limit` records, a range of `ix_idempotency_keys_created`.
    async fn prune_idempotency_keys(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(with_retry("prune_idempotency_keys", || async {
            let done = sqlx::query(sql::PRUNE_IDEMPOTENCY)
                .bind(before)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await?)
    }

    async fn transition(&self, transition: &Transition) -> Result<bool> {
        Ok(with_retry("transition", || {
            transition::transition_once(&self.pool, transition)
        })
        .await?)
    }

    async fn extend_deadline(&self, extension: &Extension) -> Result<ExtensionOutcome> {
        Ok(with_retry("extend_deadline", || {
            Postgres::extend_once(&self.pool, extension)
        })
        .await?)
    }

    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        Ok(with_retry("record_payment", || {
            Postgres::record_once(&self.pool, write)
        })
        .await?)
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        Ok(with_retry("payment", || {
            Postgres::select_payment(&self.pool, reference)
        })
        .await?)
    }

    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>> {
        Ok(with_retry("payments_of", || Postgres::payments_of(&self.pool, order)).await?)
    }

    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        Ok(with_retry("refunds_due", || Postgres::refunds_due(&self.pool, limit)).await?)
    }

    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool> {
        Ok(with_retry("mark_refunded", || {
            Postgres::mark_refunded(&self.pool, reference, at)
        })
        .await?)
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        Ok(with_retry("expire_due", || {
            expiry::expire_due_once(&self.pool, now, limit)
        })
        .await?)
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(with_retry("ticket", || self.ticket_once(id)).await?)
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(with_retry("order", || self.order_once(id)).await?)
    }

    async fn active_tickets(&self, event: EventId) -> Result<Vec<Ticket>> {
        Ok(with_retry("active_tickets", || self.active_tickets_once(event)).await?)
    }

    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64> {
        Ok(with_retry("count_by_status", || {
            self.count_by_status_once(event, status)
        })
        .await?)
    }

    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64> {
        Ok(with_retry("revenue_minor", || self.revenue_minor_once(venue, event)).await?)
    }

    async fn outbox_head(&self) -> Result<Option<u64>> {
        Ok(Some(
            with_retry("outbox_head", || Postgres::head(&self.pool)).await?,
        ))
    }

    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(with_retry("outbox_after", || Postgres::after(&self.pool, after, limit)).await?)
    }

    async fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        Ok(with_retry("active_tickets_page", || {
            self.active_tickets_page_once(event, after, limit)
        })
        .await?)
    }
    async fn voucher_uses(&self, event: EventId) -> Result<Vec<(VoucherCode, u32)>> {
        Ok(with_retry("voucher_uses", || Postgres::voucher_uses(&self.pool, event)).await?)
    }

    async fn tier_sales(&self, event: EventId) -> Result<Vec<(ZoneCode, u16, u32)>> {
        Ok(with_retry("tier_sales", || Postgres::tier_sales(&self.pool, event)).await?)
    }

    async fn insert_channel(&self, channel: &Channel) -> Result<()> {
        Ok(with_retry("insert_channel", || {
            Postgres::insert_channel(&self.pool, channel)
        })
        .await?)
    }

    async fn channels(&self, event: EventId) -> Result<Vec<Channel>> {
        Ok(with_retry("channels", || Postgres::channels(&self.pool, event)).await?)
    }

    async fn release_channel_seats(&self, release: &ChannelRelease) -> Result<Vec<SeatRef>> {
        Ok(with_retry("release_channel_seats", || {
            Postgres::release_once(&self.pool, release)
        })
        .await?)
    }
}

/// The PostgreSQL code of the steps the shared flows take.
impl OrderSteps for Postgres {
    const ACTIVE_SEAT_KEY: &'static str = sql::ACTIVE_SEAT_KEY;

    async fn load_order(conn: &mut PgConnection, id: OrderId) -> StoreResult<Order> {
        transition::load_order(conn, id).await
    }

    async fn take_places(
        conn: &mut PgConnection,
        event: EventId,
        zone: &ZoneCode,
        capacity: u32,
        n: u32,
        start: u32,
    ) -> StoreResult<Option<Vec<u16>>> {
        zone_capacity::take(conn, event, zone, capacity, n, start).await
    }

    async fn raise_usage_within(
        conn: &mut PgConnection,
        order: &Order,
        count: u32,
        limit: u32,
    ) -> StoreResult<()> {
        purchase::raise_usage_within(conn, order, count, limit).await
    }
}
