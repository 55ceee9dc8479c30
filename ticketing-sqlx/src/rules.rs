//! What a write decides before and around its SQL, the same on every database: whether a new
//! order is one well-formed purchase, the outbox event it writes, the statuses an expiry binds.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ticketing_core::Error;
use ticketing_core::domain::{Order, OutboxEvent, OutboxKind, TicketStatus};
use ticketing_core::ports::NewOrder;

/// Rejects orders that are not one well-formed purchase, before touching the database.
pub(crate) fn check(new: &NewOrder) -> Result<(), Error> {
    let order = &new.order;
    if order.tickets.is_empty() {
        return Err(Error::invalid(
            "tickets",
            "an order needs at least one ticket",
        ));
    }
    let mut seats = HashSet::new();
    for t in &order.tickets {
        if t.order_id != order.id
            || t.event_id != order.event_id
            || t.venue_id != order.venue_id
            || t.customer != order.customer
        {
            return Err(Error::invalid(
                "tickets",
                "every ticket must belong to the order",
            ));
        }
        if t.status != TicketStatus::PendingPayment {
            return Err(Error::invalid(
                "tickets",
                "a new ticket must be PENDING_PAYMENT",
            ));
        }
        match (&t.seat, &new.general_admission) {
            (Some(seat), None) => {
                if !seats.insert(seat) {
                    return Err(Error::invalid(
                        "seats",
                        format!("seat {seat} appears twice"),
                    ));
                }
            }
            (None, Some((zone, _))) if *zone == t.zone => {}
            _ => {
                return Err(Error::invalid(
                    "tickets",
                    "an order is either seated or general admission in the zone it names",
                ));
            }
        }
    }
    if order.tickets.len() > new.per_customer_limit as usize {
        return Err(Error::LimitExceeded {
            limit: new.per_customer_limit,
        });
    }
    Ok(())
}

/// The outbox event of a new order (every purchase writer shares it), stamped with
/// the earliest ticket's creation.
pub(crate) fn reserved_event(order: &Order) -> OutboxEvent {
    OutboxEvent::for_order(OutboxKind::TicketReserved, order, created_on(order))
}

/// When `order` was created: its tickets' creation time.
pub(crate) fn created_on(order: &Order) -> DateTime<Utc> {
    order
        .tickets
        .iter()
        .map(|t| t.created_on)
        .min()
        .unwrap_or(order.expires_at)
}

/// The status names bound for an expiry: (EXPIRED, PENDING_PAYMENT).
pub(crate) fn expiry_statuses() -> (&'static str, &'static str) {
    (
        TicketStatus::Expired.as_str(),
        TicketStatus::PendingPayment.as_str(),
    )
}
