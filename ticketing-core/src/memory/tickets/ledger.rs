//! The payments ledger of the in-memory repository: one entry per provider reference, written
//! with its effect on the order under the repository's one lock.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::State;
use crate::domain::{
    Order, OrderId, OutboxEvent, Payment, PaymentEffect, PaymentRecorded, PaymentRef, PaymentWrite,
    SeatRef, TicketStatus,
};
use crate::{Error, Result};

/// The ledger and its two indexes.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    by_reference: HashMap<PaymentRef, Payment>,
    /// References per order, in the order they were recorded.
    by_order: HashMap<OrderId, Vec<PaymentRef>>,
    /// (received at, reference) of every refund still owed, oldest first.
    refunds_due: BTreeSet<(DateTime<Utc>, PaymentRef)>,
}

impl Ledger {
    pub(super) fn get(&self, reference: &PaymentRef) -> Option<&Payment> {
        self.by_reference.get(reference)
    }

    /// Oldest first, ties by reference, as the SQL adapter orders them.
    pub(super) fn of_order(&self, order: OrderId) -> Vec<Payment> {
        let mut entries: Vec<Payment> = self
            .by_order
            .get(&order)
            .into_iter()
            .flatten()
            .filter_map(|r| self.by_reference.get(r).cloned())
            .collect();
        entries.sort_by(|a, b| (a.received_at, &a.reference).cmp(&(b.received_at, &b.reference)));
        entries
    }

    pub(super) fn refunds_due(&self, limit: u32) -> Vec<Payment> {
        self.refunds_due
            .iter()
            .take(limit as usize)
            .filter_map(|(_, r)| self.by_reference.get(r).cloned())
            .collect()
    }

    pub(super) fn mark_refunded(&mut self, reference: &PaymentRef, at: DateTime<Utc>) -> bool {
        let Some(payment) = self.by_reference.get_mut(reference) else {
            return false;
        };
        if !self
            .refunds_due
            .remove(&(payment.received_at, reference.clone()))
        {
            return false;
        }
        payment.refunded_at = Some(at);
        true
    }

    fn insert(&mut self, payment: Payment) {
        if payment.outcome.refund_due() && payment.refunded_at.is_none() {
            self.refunds_due
                .insert((payment.received_at, payment.reference.clone()));
        }
        self.by_order
            .entry(payment.order)
            .or_default()
            .push(payment.reference.clone());
        self.by_reference.insert(payment.reference.clone(), payment);
    }
}

impl State {
    /// [`TicketRepository::record_payment`](crate::ports::TicketRepository::record_payment):
    /// every check first, then every write.
    pub(super) fn record_payment(&mut self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        let payment = &write.payment;
        if let Some(stored) = self.ledger.get(&payment.reference) {
            return Ok(PaymentRecorded::Replayed(stored.clone()));
        }
        let order = self.order(payment.order);
        if order.as_ref().map(|o| o.status) != write.decided_on {
            return Ok(PaymentRecorded::Stale);
        }
        if let Some(order) = &order
            && write.judged_late_but_in_time(order.status, order.expires_at)
        {
            return Ok(PaymentRecorded::Stale);
        }
        let after = match (write.effect, order) {
            (PaymentEffect::None, order) => order,
            (PaymentEffect::Pay, Some(order)) if order.expires_at <= payment.received_at => {
                return Ok(PaymentRecorded::Stale);
            }
            (PaymentEffect::Pay | PaymentEffect::PayLate, Some(order))
                if order.status == TicketStatus::PendingPayment =>
            {
                Some(self.mark_paid(&order, payment))
            }
            (PaymentEffect::Reactivate, Some(order)) if order.status == TicketStatus::Expired => {
                self.check_reactivation(&order, write)?;
                let tiers = self.check_tiers_back(&order)?;
                if let Some(claim) = self.order_vouchers.get(&order.id).cloned() {
                    self.check_voucher(&order, &claim)?;
                    self.take_voucher(&order, &claim);
                }
                self.count_tiers(&order, tiers);
                self.take_back(&order);
                Some(self.mark_paid(&order, payment))
            }
            (effect, order) => {
                return Err(Error::internal(format!(
                    "payment {}: effect {effect:?} does not fit order status {:?}",
                    payment.reference,
                    order.map(|o| o.status)
                )));
            }
        };
        self.ledger.insert(payment.clone());
        if let Some(order) = after {
            let event =
                OutboxEvent::for_payment(&order, payment, write.effect, payment.received_at);
            self.append(event);
        }
        Ok(PaymentRecorded::Recorded)
    }

    /// Moves every ticket of `order` to PAID under `payment`; the order as it is now.
    fn mark_paid(&mut self, order: &Order, payment: &Payment) -> Order {
        for ticket in &order.tickets {
            let mut paid = ticket.clone();
            paid.status = TicketStatus::Paid;
            paid.paid_at = Some(payment.received_at);
            paid.payment_ref = Some(payment.reference.clone());
            self.store_ticket(paid);
        }
        self.order(order.id)
            .unwrap_or_else(|| unreachable!("the order was just written"))
    }

    /// Whether the expired `order` can have its seats, places and customer count back.
    fn check_reactivation(&self, order: &Order, write: &PaymentWrite) -> Result<()> {
        let taken: Vec<SeatRef> = order
            .tickets
            .iter()
            .filter_map(|t| t.seat.clone())
            .filter(|seat| {
                self.active_seats
                    .contains_key(&(order.event_id, seat.clone()))
            })
            .collect();
        if !taken.is_empty() {
            return Err(Error::SeatsTaken { seats: taken });
        }
        let count = order.tickets.len() as u32;
        let places = order.tickets.iter().filter(|t| t.seat.is_none()).count() as u32;
        if let (Some(zone), true) = (order.tickets.first().map(|t| &t.zone), places > 0) {
            let capacity = write.zone_capacity.ok_or_else(|| {
                Error::internal(format!(
                    "reactivating general-admission order {} without its zone's capacity",
                    order.id
                ))
            })?;
            let active = self
                .general_active
                .get(&(order.event_id, zone.clone()))
                .copied()
                .unwrap_or(0);
            if active + places > capacity {
                return Err(Error::SoldOut {
                    zone: zone.clone(),
                    requested: places,
                });
            }
        }
        let mine = self
            .customer_active
            .get(&(order.event_id, order.customer.clone()))
            .copied()
            .unwrap_or(0);
        if mine + count > write.per_customer_limit {
            return Err(Error::LimitExceeded {
                limit: write.per_customer_limit,
            });
        }
        Ok(())
    }

    /// Counts the expired `order`'s seats, places and tickets as active again.
    fn take_back(&mut self, order: &Order) {
        for ticket in &order.tickets {
            match &ticket.seat {
                Some(seat) => {
                    self.active_seats
                        .insert((order.event_id, seat.clone()), ticket.id);
                }
                None => {
                    *self
                        .general_active
                        .entry((order.event_id, ticket.zone.clone()))
                        .or_default() += 1;
                }
            }
        }
        *self
            .customer_active
            .entry((order.event_id, order.customer.clone()))
            .or_default() += order.tickets.len() as u32;
    }
}
