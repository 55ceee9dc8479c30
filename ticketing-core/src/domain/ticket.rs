//! Tickets and orders.

use chrono::{DateTime, Utc};

use super::ids::{CustomerId, EventId, OrderId, PaymentRef, TicketId, VenueId, ZoneCode};
use super::money::Money;
use super::status::TicketStatus;
use super::venue::SeatRef;
use crate::Error;

/// One ticket: one seat (or one general-admission place) of one event for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Time-ordered id (UUID v7).
    pub id: TicketId,
    /// The purchase this ticket belongs to.
    pub order_id: OrderId,
    /// The event.
    pub event_id: EventId,
    /// The event's venue.
    pub venue_id: VenueId,
    /// The zone of the seat or place.
    pub zone: ZoneCode,
    /// The seat; `None` for general admission.
    pub seat: Option<SeatRef>,
    /// The buyer.
    pub customer: CustomerId,
    /// The price when bought (later price changes do not touch sold tickets).
    pub price: Money,
    /// Where the ticket is in its life.
    pub status: TicketStatus,
    /// When the ticket was created.
    pub created_on: DateTime<Utc>,
    /// Payment deadline: unpaid at this instant, the ticket expires.
    pub expires_at: DateTime<Utc>,
    /// When the payment was confirmed.
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment provider's reference.
    pub payment_ref: Option<PaymentRef>,
}

/// The tickets of one purchase. Every transition moves all tickets of an order together, so they
/// always share one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The order id.
    pub id: OrderId,
    /// The event.
    pub event_id: EventId,
    /// The event's venue.
    pub venue_id: VenueId,
    /// The buyer.
    pub customer: CustomerId,
    /// The status shared by all tickets.
    pub status: TicketStatus,
    /// Payment deadline.
    pub expires_at: DateTime<Utc>,
    /// Sum of ticket prices.
    pub total: Money,
    /// The tickets, in seat order.
    pub tickets: Vec<Ticket>,
}

impl Order {
    /// The tickets of `zone`, in seat order and then by id: the order in which a zone's price
    /// tiers are given out, the same on every adapter.
    pub fn zone_tickets_mut(&mut self, zone: &ZoneCode) -> Vec<&mut Ticket> {
        let mut tickets: Vec<&mut Ticket> = self
            .tickets
            .iter_mut()
            .filter(|t| t.zone == *zone)
            .collect();
        tickets.sort_by(|a, b| a.seat.cmp(&b.seat).then(a.id.cmp(&b.id)));
        tickets
    }

    /// Groups the tickets of one order. `None` when `tickets` is empty; an error when they do not
    /// belong to one order (a storage bug).
    pub fn from_tickets(mut tickets: Vec<Ticket>) -> Result<Option<Order>, Error> {
        let Some(first) = tickets.first().cloned() else {
            return Ok(None);
        };
        let mut total = Money::zero(first.price.currency);
        for t in &tickets {
            if t.order_id != first.order_id || t.status != first.status {
                return Err(Error::internal(format!(
                    "order {} has tickets in different orders or statuses",
                    first.order_id
                )));
            }
            total = total.checked_add(t.price)?;
        }
        tickets.sort_by(|a, b| a.seat.cmp(&b.seat).then(a.id.cmp(&b.id)));
        Ok(Some(Order {
            id: first.order_id,
            event_id: first.event_id,
            venue_id: first.venue_id,
            customer: first.customer,
            status: first.status,
            expires_at: first.expires_at,
            total,
            tickets,
        }))
    }
}
