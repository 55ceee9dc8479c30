//! Fault-injecting wrappers around the seat lock and the ticket repository.
//!
//! Every call first waits at one [`yield_point`], so the runner can interleave operations and
//! drop one at any await point. Then a fault may replace the call (it fails, nothing happens) or
//! follow it (it took effect, and the caller still sees an error).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{
    CustomerId, EventId, IdempotencyKey, Order, OrderId, OutboxEntry, Payment, PaymentRecorded,
    PaymentRef, PaymentWrite, TicketAction, TicketId, TicketStatus, VenueId, Zone,
};
use crate::ports::{
    BestAvailableOutcome, BestAvailableRequest, Extension, ExtensionOutcome, HoldItem, HoldOutcome,
    HoldRequest, HoldSource, IdempotencyRecord, InsertOutcome, LockSnapshot, NewOrder, SeatLock,
    TicketRepository, Transition,
};
use crate::{Error, Result};

use super::faults::{FaultKind, Faults, PlantedBug, injected, yield_point};

const LOCK: &str = "sim-seat-lock";
const REPO: &str = "sim-repository";

/// A [`SeatLock`] that injects failures and timeouts into every call of the lock it wraps.
pub struct FaultySeatLock {
    inner: Arc<dyn SeatLock>,
    faults: Arc<Faults>,
    bug: PlantedBug,
}

impl FaultySeatLock {
    /// Wraps `inner`; `bug` plants a deliberate defect (see [`PlantedBug`]).
    pub fn new(inner: Arc<dyn SeatLock>, faults: Arc<Faults>, bug: PlantedBug) -> Self {
        Self { inner, faults, bug }
    }

    async fn before(&self, what: &str) -> Result<()> {
        yield_point().await;
        if self.faults.roll(FaultKind::LockFailed, |c| c.lock_fail) {
            return Err(injected(LOCK, &format!("{what} failed")));
        }
        Ok(())
    }

    async fn after<T>(&self, what: &str, result: Result<T>) -> Result<T> {
        if result.is_ok()
            && self
                .faults
                .roll(FaultKind::LockTimedOut, |c| c.lock_timeout)
        {
            yield_point().await;
            return Err(injected(
                LOCK,
                &format!("{what} timed out after taking effect"),
            ));
        }
        result
    }
}

#[async_trait]
impl SeatLock for FaultySeatLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        self.before("hold").await?;
        let result = match self.bug {
            PlantedBug::SeatOverwrite => Ok(HoldOutcome::Held),
            PlantedBug::EternalHolds => {
                let eternal = HoldRequest {
                    until: request.now + TimeDelta::days(1),
                    ..request.clone()
                };
                self.inner.hold(&eternal).await
            }
            PlantedBug::None | PlantedBug::LostWrite => self.inner.hold(request).await,
        };
        self.after("hold", result).await
    }

    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        self.before("hold_best_available").await?;
        let result = match self.bug {
            PlantedBug::EternalHolds => {
                let eternal = BestAvailableRequest {
                    until: request.now + TimeDelta::days(1),
                    ..request.clone()
                };
                self.inner.hold_best_available(&eternal).await
            }
            _ => self.inner.hold_best_available(request).await,
        };
        self.after("hold_best_available", result).await
    }

    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        yield_point().await;
        if self
            .faults
            .roll(FaultKind::ReleaseFailed, |c| c.release_fail)
        {
            return Err(injected(LOCK, "release failed"));
        }
        let result = self.inner.release(event, order, items).await;
        self.after("release", result).await
    }

    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.before("mark_sold").await?;
        let result = self.inner.mark_sold(event, order, items).await;
        self.after("mark_sold", result).await
    }

    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        self.before("snapshot").await?;
        self.inner.snapshot(event, now).await
    }

    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        self.before("snapshot").await?;
        self.inner.zone_snapshot(event, zone, now).await
    }

    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        self.before("rebuild").await?;
        let result = self.inner.rebuild(event, source).await;
        self.after("rebuild", result).await
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        self.inner.forget(event).await
    }
}

/// A [`TicketRepository`] that injects failures and unknown results into the repository it
/// wraps. Reads fail now and then; writes fail before committing, or commit and still fail.
pub struct FaultyTickets {
    inner: Arc<dyn TicketRepository>,
    faults: Arc<Faults>,
    bug: PlantedBug,
    inserts: AtomicU64,
}

impl FaultyTickets {
    /// Wraps `inner`; `bug` plants a deliberate defect (see [`PlantedBug`]).
    pub fn new(inner: Arc<dyn TicketRepository>, faults: Arc<Faults>, bug: PlantedBug) -> Self {
        Self {
            inner,
            faults,
            bug,
            inserts: AtomicU64::new(0),
        }
    }

    async fn read(&self, what: &str) -> Result<()> {
        yield_point().await;
        if self.faults.roll(FaultKind::ReadFailed, |c| c.read_fail) {
            return Err(injected(REPO, &format!("{what} failed")));
        }
        Ok(())
    }

    async fn write_before(&self, what: &str) -> Result<()> {
        yield_point().await;
        if self
            .faults
            .roll(FaultKind::TransitionFailed, |c| c.transition_fail)
        {
            return Err(injected(REPO, &format!("{what} failed")));
        }
        Ok(())
    }

    async fn write_after<T>(&self, what: &str, result: Result<T>) -> Result<T> {
        if result.is_ok()
            && self
                .faults
                .roll(FaultKind::TransitionUnknown, |c| c.transition_unknown)
        {
            yield_point().await;
            return Err(injected(
                REPO,
                &format!("{what} committed, then the connection broke"),
            ));
        }
        result
    }

    /// The planted upsert: end whatever active ticket holds a wanted seat, then insert.
    async fn overwrite_seats(&self, new: &NewOrder) -> Result<InsertOutcome> {
        let wanted: Vec<_> = new
            .order
            .tickets
            .iter()
            .filter_map(|t| t.seat.clone())
            .collect();
        let active = self.inner.active_tickets(new.order.event_id).await?;
        let mut victims: Vec<(OrderId, TicketStatus)> = active
            .iter()
            .filter(|t| t.seat.as_ref().is_some_and(|s| wanted.contains(s)))
            .map(|t| (t.order_id, t.status))
            .collect();
        victims.sort_by_key(|(order, _)| *order);
        victims.dedup();
        let now = new
            .order
            .tickets
            .first()
            .map_or(DateTime::UNIX_EPOCH, |t| t.created_on);
        for (order, status) in victims {
            let action = if status == TicketStatus::Paid {
                TicketAction::Refund
            } else {
                TicketAction::Cancel
            };
            let transition = Transition {
                order,
                action,
                now,
                payment_ref: None,
            };
            self.inner.transition(&transition).await?;
        }
        self.inner.insert_order(new).await
    }
}

#[async_trait]
impl TicketRepository for FaultyTickets {
    async fn insert_order(&self, order: &NewOrder) -> Result<InsertOutcome> {
        yield_point().await;
        if self
            .faults
            .roll(FaultKind::PersistFailed, |c| c.persist_fail)
        {
            return Err(injected(REPO, "insert_order failed"));
        }
        let n = self.inserts.fetch_add(1, Ordering::Relaxed);
        let result = match self.bug {
            PlantedBug::LostWrite if n % 5 == 4 => Ok(InsertOutcome::Inserted),
            PlantedBug::SeatOverwrite => match self.inner.insert_order(order).await {
                Err(Error::SeatsTaken { .. }) => self.overwrite_seats(order).await,
                other => other,
            },
            _ => self.inner.insert_order(order).await,
        };
        if result.is_ok()
            && self
                .faults
                .roll(FaultKind::PersistUnknown, |c| c.persist_unknown)
        {
            yield_point().await;
            return Err(injected(
                REPO,
                "insert_order committed, then the connection broke",
            ));
        }
        result
    }

    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        self.read("idempotency_record").await?;
        self.inner.idempotency_record(customer, key).await
    }

    async fn prune_idempotency_keys(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64> {
        self.read("prune_idempotency_keys").await?;
        self.inner.prune_idempotency_keys(before, limit).await
    }

    async fn transition(&self, transition: &Transition) -> Result<bool> {
        self.write_before("transition").await?;
        let result = self.inner.transition(transition).await;
        self.write_after("transition", result).await
    }

    async fn extend_deadline(&self, extension: &Extension) -> Result<ExtensionOutcome> {
        self.write_before("extend_deadline").await?;
        let result = self.inner.extend_deadline(extension).await;
        self.write_after("extend_deadline", result).await
    }

    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        self.write_before("record_payment").await?;
        let result = self.inner.record_payment(write).await;
        self.write_after("record_payment", result).await
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        self.read("payment").await?;
        self.inner.payment(reference).await
    }

    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>> {
        self.read("payments_of").await?;
        self.inner.payments_of(order).await
    }

    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        self.read("refunds_due").await?;
        self.inner.refunds_due(limit).await
    }

    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool> {
        self.write_before("mark_refunded").await?;
        let result = self.inner.mark_refunded(reference, at).await;
        self.write_after("mark_refunded", result).await
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        self.write_before("expire_due").await?;
        let result = self.inner.expire_due(now, limit).await;
        self.write_after("expire_due", result).await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<crate::domain::Ticket>> {
        self.read("ticket").await?;
        self.inner.ticket(id).await
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        self.read("order").await?;
        self.inner.order(id).await
    }

    async fn active_tickets(&self, event: EventId) -> Result<Vec<crate::domain::Ticket>> {
        self.read("active_tickets").await?;
        self.inner.active_tickets(event).await
    }

    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64> {
        self.read("count_by_status").await?;
        self.inner.count_by_status(event, status).await
    }

    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64> {
        self.read("revenue_minor").await?;
        self.inner.revenue_minor(venue, event).await
    }

    async fn outbox_head(&self) -> Result<Option<u64>> {
        self.read("outbox_head").await?;
        self.inner.outbox_head().await
    }

    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        self.read("outbox_after").await?;
        self.inner.outbox_after(after, limit).await
    }

    async fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<crate::domain::Ticket>> {
        self.read("active_tickets_page").await?;
        self.inner.active_tickets_page(event, after, limit).await
    }

    async fn voucher_uses(&self, event: EventId) -> Result<Vec<(crate::domain::VoucherCode, u32)>> {
        self.read("voucher_uses").await?;
        self.inner.voucher_uses(event).await
    }

    async fn tier_sales(&self, event: EventId) -> Result<Vec<(crate::domain::ZoneCode, u16, u32)>> {
        self.read("tier_sales").await?;
        self.inner.tier_sales(event).await
    }

    async fn insert_channel(&self, channel: &crate::domain::Channel) -> Result<()> {
        self.inner.insert_channel(channel).await
    }

    async fn channels(&self, event: EventId) -> Result<Vec<crate::domain::Channel>> {
        self.read("channels").await?;
        self.inner.channels(event).await
    }

    async fn release_channel_seats(
        &self,
        release: &crate::domain::ChannelRelease,
    ) -> Result<Vec<crate::domain::SeatRef>> {
        self.inner.release_channel_seats(release).await
    }
}
