//! A [`TicketRepository`] decorator that counts the calls that reach the repository, so the
//! report can show how much database work each kind of attempt costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use ticketing_core::Result;
use ticketing_core::domain::{
    Channel, ChannelRelease, CustomerId, EventId, IdempotencyKey, Order, OrderId, OutboxEntry,
    Payment, PaymentRecorded, PaymentRef, PaymentWrite, SeatRef, Ticket, TicketId, TicketStatus,
    VenueId, VoucherCode, ZoneCode,
};
use ticketing_core::ports::{
    Extension, ExtensionOutcome, IdempotencyRecord, InsertOutcome, NewOrder, TicketRepository,
    Transition,
};

/// Calls per repository method, since the counter was made.
#[derive(Debug, Default)]
pub struct CallCounts {
    insert_order: AtomicU64,
    idempotency_record: AtomicU64,
    transition: AtomicU64,
    expire_due: AtomicU64,
    reads: AtomicU64,
}

/// A copy of [`CallCounts`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallSnapshot {
    /// `insert_order` calls.
    pub insert_order: u64,
    /// `idempotency_record` calls.
    pub idempotency_record: u64,
    /// `transition` calls.
    pub transition: u64,
    /// `expire_due` calls.
    pub expire_due: u64,
    /// Every read (`ticket`, `order`, `active_tickets`, `count_by_status`, `revenue_minor`,
    /// `outbox_after`).
    pub reads: u64,
}

impl CallSnapshot {
    /// All calls.
    pub fn total(&self) -> u64 {
        self.insert_order + self.idempotency_record + self.transition + self.expire_due + self.reads
    }

    /// The calls made between `earlier` and `self`.
    pub fn since(&self, earlier: &CallSnapshot) -> CallSnapshot {
        CallSnapshot {
            insert_order: self.insert_order - earlier.insert_order,
            idempotency_record: self.idempotency_record - earlier.idempotency_record,
            transition: self.transition - earlier.transition,
            expire_due: self.expire_due - earlier.expire_due,
            reads: self.reads - earlier.reads,
        }
    }
}

impl CallCounts {
    /// The counts now.
    pub fn snapshot(&self) -> CallSnapshot {
        CallSnapshot {
            insert_order: self.insert_order.load(Ordering::Relaxed),
            idempotency_record: self.idempotency_record.load(Ordering::Relaxed),
            transition: self.transition.load(Ordering::Relaxed),
            expire_due: self.expire_due.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts every call, then forwards it to the wrapped repository unchanged.
pub struct CountingRepository {
    inner: Arc<dyn TicketRepository>,
    counts: Arc<CallCounts>,
}

impl CountingRepository {
    /// Wraps `inner`; read the counts through the returned [`CallCounts`].
    pub fn new(inner: Arc<dyn TicketRepository>) -> (Self, Arc<CallCounts>) {
        let counts = Arc::new(CallCounts::default());
        (
            Self {
                inner,
                counts: counts.clone(),
            },
            counts,
        )
    }
}

#[async_trait]
impl TicketRepository for CountingRepository {
    async fn insert_order(&self, order: &NewOrder) -> Result<InsertOutcome> {
        bump(&self.counts.insert_order);
        self.inner.insert_order(order).await
    }

    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        bump(&self.counts.idempotency_record);
        self.inner.idempotency_record(customer, key).await
    }

    async fn prune_idempotency_keys(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64> {
        self.inner.prune_idempotency_keys(before, limit).await
    }

    async fn transition(&self, transition: &Transition) -> Result<bool> {
        bump(&self.counts.transition);
        self.inner.transition(transition).await
    }

    async fn extend_deadline(&self, extension: &Extension) -> Result<ExtensionOutcome> {
        bump(&self.counts.transition);
        self.inner.extend_deadline(extension).await
    }

    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        bump(&self.counts.transition);
        self.inner.record_payment(write).await
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        bump(&self.counts.reads);
        self.inner.payment(reference).await
    }

    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>> {
        bump(&self.counts.reads);
        self.inner.payments_of(order).await
    }

    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        bump(&self.counts.reads);
        self.inner.refunds_due(limit).await
    }

    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool> {
        bump(&self.counts.transition);
        self.inner.mark_refunded(reference, at).await
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        bump(&self.counts.expire_due);
        self.inner.expire_due(now, limit).await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        bump(&self.counts.reads);
        self.inner.ticket(id).await
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        bump(&self.counts.reads);
        self.inner.order(id).await
    }

    async fn active_tickets(&self, event: EventId) -> Result<Vec<Ticket>> {
        bump(&self.counts.reads);
        self.inner.active_tickets(event).await
    }

    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64> {
        bump(&self.counts.reads);
        self.inner.count_by_status(event, status).await
    }

    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64> {
        bump(&self.counts.reads);
        self.inner.revenue_minor(venue, event).await
    }

    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        bump(&self.counts.reads);
        self.inner.outbox_after(after, limit).await
    }

    async fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        bump(&self.counts.reads);
        self.inner.active_tickets_page(event, after, limit).await
    }

    async fn voucher_uses(&self, event: EventId) -> Result<Vec<(VoucherCode, u32)>> {
        bump(&self.counts.reads);
        self.inner.voucher_uses(event).await
    }

    async fn tier_sales(&self, event: EventId) -> Result<Vec<(ZoneCode, u16, u32)>> {
        bump(&self.counts.reads);
        self.inner.tier_sales(event).await
    }

    async fn insert_channel(&self, channel: &Channel) -> Result<()> {
        self.inner.insert_channel(channel).await
    }

    async fn channels(&self, event: EventId) -> Result<Vec<Channel>> {
        bump(&self.counts.reads);
        self.inner.channels(event).await
    }

    async fn release_channel_seats(&self, release: &ChannelRelease) -> Result<Vec<SeatRef>> {
        self.inner.release_channel_seats(release).await
    }

    async fn outbox_head(&self) -> Result<Option<u64>> {
        bump(&self.counts.reads);
        self.inner.outbox_head().await
    }
}
