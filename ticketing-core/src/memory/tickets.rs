use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::lock;
use crate::domain::{
    CustomerId, EventId, IdempotencyKey, Order, OrderId, OutboxEntry, OutboxEvent, OutboxKind,
    SeatRef, Ticket, TicketAction, TicketId, TicketStatus, VenueId, ZoneCode,
};
use crate::ports::{
    IdempotencyRecord, InsertOutcome, NewOrder, OutboxStore, TicketRepository, Transition,
};
use crate::{Error, Result};

/// Tickets, idempotency records and the outbox in memory. One mutex makes every call one
/// transaction, so this is the reference model the database adapters are compared with.
///
/// It is also the relay's [`OutboxStore`]: the sent cursor and the relay lease live next to the
/// outbox.
#[derive(Debug, Default)]
pub struct InMemoryTicketRepository {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tickets: HashMap<TicketId, Ticket>,
    orders: HashMap<OrderId, Vec<TicketId>>,
    /// The active ticket of each seat (invariant 1).
    active_seats: HashMap<(EventId, SeatRef), TicketId>,
    /// Active tickets per general-admission zone (invariant 2).
    general_active: HashMap<(EventId, ZoneCode), u32>,
    /// Active tickets per customer (invariant 6).
    customer_active: HashMap<(EventId, CustomerId), u32>,
    idempotency: HashMap<(CustomerId, IdempotencyKey), IdempotencyRecord>,
    outbox: Vec<OutboxEntry>,
    /// Every entry up to this sequence number was published.
    sent_up_to: u64,
    /// The relay lease: holder and valid until.
    lease: Option<(String, DateTime<Utc>)>,
}

impl InMemoryTicketRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    fn holds_lease(&self, relay: &str) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|(holder, _)| holder == relay)
    }

    fn order(&self, id: OrderId) -> Option<Order> {
        let ids = self.orders.get(&id)?;
        let tickets = ids
            .iter()
            .filter_map(|t| self.tickets.get(t).cloned())
            .collect();
        Order::from_tickets(tickets).ok().flatten()
    }

    fn record(&mut self, kind: OutboxKind, order: &Order, at: DateTime<Utc>) {
        let seq = self.outbox.len() as u64 + 1;
        self.outbox.push(OutboxEntry {
            seq,
            event: OutboxEvent::for_order(kind, order, at),
        });
    }

    /// Applies `action` to every ticket of the order if the compare-and-set guard holds.
    fn transition(
        &mut self,
        id: OrderId,
        action: TicketAction,
        now: DateTime<Utc>,
        payment_ref: Option<&crate::domain::PaymentRef>,
    ) -> Option<Order> {
        let order = self.order(id)?;
        let guard = order.tickets.iter().all(|t| {
            t.status == action.source()
                && match action {
                    TicketAction::Pay => t.expires_at > now,
                    TicketAction::Expire => t.expires_at <= now,
                    TicketAction::Cancel | TicketAction::Refund => true,
                }
        });
        if !guard {
            return None;
        }
        let to = action.target();
        for ticket in &order.tickets {
            let stored = self.tickets.get_mut(&ticket.id)?;
            stored.status = to;
            if action == TicketAction::Pay {
                stored.paid_at = Some(now);
                stored.payment_ref = payment_ref.cloned();
            }
            if to.is_terminal() {
                if let Some(seat) = &ticket.seat {
                    self.active_seats.remove(&(ticket.event_id, seat.clone()));
                } else if let Some(n) = self
                    .general_active
                    .get_mut(&(ticket.event_id, ticket.zone.clone()))
                {
                    *n = n.saturating_sub(1);
                }
                if let Some(n) = self
                    .customer_active
                    .get_mut(&(ticket.event_id, ticket.customer.clone()))
                {
                    *n = n.saturating_sub(1);
                }
            }
        }
        let order = self.order(id)?;
        self.record(OutboxKind::for_action(action), &order, now);
        Some(order)
    }
}

#[async_trait]
impl TicketRepository for InMemoryTicketRepository {
    async fn insert_order(&self, new: &NewOrder) -> Result<InsertOutcome> {
        let mut state = lock(&self.state);
        let order = &new.order;
        if let Some(idem) = &new.idempotency
            && let Some(stored) = state
                .idempotency
                .get(&(idem.customer.clone(), idem.key.clone()))
        {
            return Ok(InsertOutcome::DuplicateKey(stored.clone()));
        }
        if state.orders.contains_key(&order.id) {
            return Err(Error::internal(format!(
                "order {} exists already",
                order.id
            )));
        }
        let taken: Vec<SeatRef> = order
            .tickets
            .iter()
            .filter_map(|t| t.seat.clone())
            .filter(|seat| {
                state
                    .active_seats
                    .contains_key(&(order.event_id, seat.clone()))
            })
            .collect();
        if !taken.is_empty() {
            return Err(Error::SeatsTaken { seats: taken });
        }
        let count = order.tickets.len() as u32;
        if let Some((zone, capacity)) = &new.general_admission {
            let active = state
                .general_active
                .get(&(order.event_id, zone.clone()))
                .copied()
                .unwrap_or(0);
            if active + count > *capacity {
                return Err(Error::SoldOut {
                    zone: zone.clone(),
                    requested: count,
                });
            }
        }
        let customer_key = (order.event_id, order.customer.clone());
        let mine = state
            .customer_active
            .get(&customer_key)
            .copied()
            .unwrap_or(0);
        if mine + count > new.per_customer_limit {
            return Err(Error::LimitExceeded {
                limit: new.per_customer_limit,
            });
        }
        // Every check passed: write everything.
        for ticket in &order.tickets {
            if let Some(seat) = &ticket.seat {
                state
                    .active_seats
                    .insert((order.event_id, seat.clone()), ticket.id);
            }
            state.tickets.insert(ticket.id, ticket.clone());
        }
        if let Some((zone, _)) = &new.general_admission {
            *state
                .general_active
                .entry((order.event_id, zone.clone()))
                .or_default() += count;
        }
        *state.customer_active.entry(customer_key).or_default() += count;
        state
            .orders
            .insert(order.id, order.tickets.iter().map(|t| t.id).collect());
        if let Some(idem) = &new.idempotency {
            state
                .idempotency
                .insert((idem.customer.clone(), idem.key.clone()), idem.clone());
        }
        let created = order
            .tickets
            .first()
            .map_or_else(Utc::now, |t| t.created_on);
        state.record(OutboxKind::TicketReserved, order, created);
        Ok(InsertOutcome::Inserted)
    }

    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(lock(&self.state)
            .idempotency
            .get(&(customer.clone(), key.clone()))
            .cloned())
    }

    async fn transition(&self, transition: &Transition) -> Result<bool> {
        let mut state = lock(&self.state);
        Ok(state
            .transition(
                transition.order,
                transition.action,
                transition.now,
                transition.payment_ref.as_ref(),
            )
            .is_some())
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        let mut state = lock(&self.state);
        let mut due: Vec<(DateTime<Utc>, OrderId)> = state
            .tickets
            .values()
            .filter(|t| t.status == TicketStatus::PendingPayment && t.expires_at <= now)
            .map(|t| (t.expires_at, t.order_id))
            .collect();
        due.sort();
        due.dedup_by_key(|(_, order)| *order);
        let mut expired = Vec::new();
        for (_, order) in due.into_iter().take(limit as usize) {
            if let Some(order) = state.transition(order, TicketAction::Expire, now, None) {
                expired.push(order);
            }
        }
        Ok(expired)
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(lock(&self.state).tickets.get(&id).cloned())
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(lock(&self.state).order(id))
    }

    async fn active_tickets(&self, event: EventId) -> Result<Vec<Ticket>> {
        Ok(lock(&self.state)
            .tickets
            .values()
            .filter(|t| t.event_id == event && t.status.is_active())
            .cloned()
            .collect())
    }

    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64> {
        Ok(lock(&self.state)
            .tickets
            .values()
            .filter(|t| t.event_id == event && t.status == status)
            .count() as u64)
    }

    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64> {
        Ok(lock(&self.state)
            .tickets
            .values()
            .filter(|t| {
                t.venue_id == venue && t.event_id == event && t.status == TicketStatus::Paid
            })
            .map(|t| t.price.minor)
            .sum())
    }

    async fn outbox_head(&self) -> Result<Option<u64>> {
        Ok(Some(lock(&self.state).outbox.len() as u64))
    }

    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(lock(&self.state)
            .outbox
            .iter()
            .filter(|e| e.seq > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl OutboxStore for InMemoryTicketRepository {
    async fn try_acquire_lease(
        &self,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        let free = match &state.lease {
            None => true,
            Some((holder, until)) => holder == relay || *until <= now,
        };
        if free {
            state.lease = Some((relay.to_owned(), now + ttl));
        }
        Ok(free)
    }

    async fn release_lease(&self, relay: &str) -> Result<()> {
        let mut state = lock(&self.state);
        if state.holds_lease(relay) {
            state.lease = None;
        }
        Ok(())
    }

    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        let state = lock(&self.state);
        Ok(state
            .outbox
            .iter()
            .filter(|e| e.seq > state.sent_up_to)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool> {
        let mut state = lock(&self.state);
        if !state.holds_lease(relay) {
            return Ok(false);
        }
        state.sent_up_to = state.sent_up_to.max(up_to);
        Ok(true)
    }

    async fn rewind(&self, relay: &str, to: u64) -> Result<bool> {
        let mut state = lock(&self.state);
        if !state.holds_lease(relay) {
            return Ok(false);
        }
        state.sent_up_to = state.sent_up_to.min(to);
        Ok(true)
    }

    async fn sent_up_to(&self) -> Result<u64> {
        Ok(lock(&self.state).sent_up_to)
    }
}
