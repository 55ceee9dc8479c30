//! The ticket repository on MySQL: the source of truth for tickets, orders and the outbox.

mod batch;
mod expiry;
#[cfg(all(test, feature = "testing"))]
mod explain;
mod purchase;
mod sql;
mod transition;
mod zone_capacity;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, MySqlPool, Row};
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

use crate::codec::ticket;
use crate::error::StoreResult;
use crate::flows::OrderSteps;
use crate::flows::channel::Channels;
use crate::flows::extension::HoldExtensions;
use crate::flows::outbox::Outbox;
use crate::flows::payment::Ledger;
use crate::flows::purchase::Purchase;
use crate::flows::tier::PriceTiers;
use crate::flows::voucher::VoucherUses;
use crate::retry::with_retry;

pub use batch::BatchConfig;
use batch::Batcher;

/// The [`TicketRepository`] on MySQL/MariaDB.
///
/// - Invariant 1: `tickets.active_seat` is a stored generated column (the seat key while the
///   ticket is PENDING_PAYMENT or PAID, NULL otherwise) under `UNIQUE (event_id, active_seat)`; a
///   violation becomes [`Error::SeatsTaken`] naming the seats.
/// - Invariants 2 and 6: counter rows raised by a conditional `UPDATE … WHERE active + n <= cap`
///   in the purchase transaction and lowered in the transaction that ends the tickets.
/// - Transitions: compare-and-set on the order row (`WHERE status = <source> AND expires_at …`,
///   with the caller's `now`), then its tickets, counters and outbox row, in one transaction.
/// - Deadlocks and lock-wait timeouts are retried; connection failures are
///   [`Error::Unavailable`].
/// - Write batching is opt-in ([`MySqlTicketRepository::with_batching`]): concurrent
///   `insert_order` calls then share one transaction, with the same answers per order.
#[derive(Debug, Clone)]
pub struct MySqlTicketRepository {
    pool: MySqlPool,
    batcher: Option<Arc<Batcher>>,
}

impl MySqlTicketRepository {
    /// A repository on `pool` (migrated with [`crate::migrations`]); every `insert_order` is
    /// its own transaction.
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            batcher: None,
        }
    }

    /// A repository on `pool` whose concurrent `insert_order` calls coalesce into one
    /// transaction of multi-row inserts, cut by `config` (bounded size and wait).
    ///
    /// Each order keeps its own answer: an order that hits a taken seat, a full zone, the
    /// customer limit or a used idempotency key is taken out of the batch and answered alone
    /// (`SeatsTaken` with its seats, `SoldOut`, `LimitExceeded`, `DuplicateKey`), while the rest
    /// of the batch commits. Everything else is as with [`MySqlTicketRepository::new`].
    ///
    /// Not the default: it pays off when many purchases arrive at once (a flash sale), and adds
    /// up to `config.max_wait` to a lone purchase. An order handed to the batch is written even
    /// if its caller stops waiting. The batch writer is a Tokio task started by the first
    /// `insert_order`, in that call's runtime. It keeps up to `config.max_in_flight` of the
    /// pool's connections between batches (their prepared statements stay warm) and hands them
    /// back after 100 ms without a batch, so `pool.close()` may wait that long.
    pub fn with_batching(pool: MySqlPool, config: BatchConfig) -> Self {
        Self {
            batcher: Some(Arc::new(Batcher::new(pool.clone(), config))),
            pool,
        }
    }

    /// The batching settings, when batching is on.
    pub fn batching(&self) -> Option<BatchConfig> {
        self.batcher.as_ref().map(|b| b.config())
    }

    /// The pool this repository uses.
    pub fn pool(&self) -> &MySqlPool {
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
            .bind(TicketStatus::PendingPayment.as_str())
            .bind(TicketStatus::Paid.as_str())
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
            .bind(TicketStatus::PendingPayment.as_str())
            .bind(TicketStatus::Paid.as_str())
            .bind(limit)
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
impl TicketRepository for MySqlTicketRepository {
    async fn insert_order(&self, order: &NewOrder) -> Result<InsertOutcome> {
        match &self.batcher {
            Some(batcher) => batcher.insert(order).await,
            None => Ok(MySql::insert_order(&self.pool, order).await?),
        }
    }

    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(with_retry("idempotency_record", || {
            MySql::idempotency_record(&self.pool, customer, key)
        })
        .await?)
    }

    /// One `DELETE … ORDER BY created_at LIMIT n` on `ix_idempotency_keys_created`.
    async fn prune_idempotency_keys(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(with_retry("prune_idempotency_keys", || async {
            let done = sqlx::query(sql::PRUNE_IDEMPOTENCY)
                .bind(before)
                .bind(limit)
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
            MySql::extend_once(&self.pool, extension)
        })
        .await?)
    }

    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        Ok(with_retry("record_payment", || MySql::record_once(&self.pool, write)).await?)
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        Ok(with_retry("payment", || MySql::select_payment(&self.pool, reference)).await?)
    }

    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>> {
        Ok(with_retry("payments_of", || MySql::payments_of(&self.pool, order)).await?)
    }

    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        Ok(with_retry("refunds_due", || MySql::refunds_due(&self.pool, limit)).await?)
    }

    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool> {
        Ok(with_retry("mark_refunded", || {
            MySql::mark_refunded(&self.pool, reference, at)
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
            with_retry("outbox_head", || MySql::head(&self.pool)).await?,
        ))
    }

    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(with_retry("outbox_after", || MySql::after(&self.pool, after, limit)).await?)
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
        Ok(with_retry("voucher_uses", || MySql::voucher_uses(&self.pool, event)).await?)
    }

    async fn tier_sales(&self, event: EventId) -> Result<Vec<(ZoneCode, u16, u32)>> {
        Ok(with_retry("tier_sales", || MySql::tier_sales(&self.pool, event)).await?)
    }

    async fn insert_channel(&self, channel: &Channel) -> Result<()> {
        Ok(with_retry("insert_channel", || {
            MySql::insert_channel(&self.pool, channel)
        })
        .await?)
    }

    async fn channels(&self, event: EventId) -> Result<Vec<Channel>> {
        Ok(with_retry("channels", || MySql::channels(&self.pool, event)).await?)
    }

    async fn release_channel_seats(&self, release: &ChannelRelease) -> Result<Vec<SeatRef>> {
        Ok(with_retry("release_channel_seats", || {
            MySql::release_once(&self.pool, release)
        })
        .await?)
    }
}

/// The MySQL code of the steps the shared flows take.
impl OrderSteps for MySql {
    const ACTIVE_SEAT_KEY: &'static str = sql::ACTIVE_SEAT_KEY;

    async fn load_order(conn: &mut MySqlConnection, id: OrderId) -> StoreResult<Order> {
        transition::load_order(conn, id).await
    }

    async fn take_places(
        conn: &mut MySqlConnection,
        event: EventId,
        zone: &ZoneCode,
        capacity: u32,
        n: u32,
        start: u32,
    ) -> StoreResult<Option<Vec<u16>>> {
        zone_capacity::take(conn, event, zone, capacity, n, start).await
    }

    async fn raise_usage_within(
        conn: &mut MySqlConnection,
        order: &Order,
        count: u32,
        limit: u32,
    ) -> StoreResult<()> {
        purchase::raise_usage_within(conn, order, count, limit).await
    }
}
