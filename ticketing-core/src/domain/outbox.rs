//! Outbox events: one per state change, written in the same transaction as the change, later
//! relayed to read models.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{
    ChannelCode, CustomerId, EventId, OrderId, PaymentRef, TicketId, VenueId, WaitingEntryId,
    ZoneCode,
};
use super::money::Money;
use super::payment::{Payment, PaymentEffect, PaymentOutcome};
use super::status::TicketAction;
use super::ticket::Order;
use super::venue::SeatRef;

/// The schema version of [`OutboxEvent`] written now; bumped on every change of the schema.
///
/// - 1: the order-level fields.
/// - 2: adds [`OutboxEvent::lines`] (zone, seat and price of each ticket), so read models can
///   aggregate per zone. A version-1 payload still parses, with `lines` empty.
/// - 3: adds [`OutboxEvent::payment`] (the ledger entry behind a `TicketPaid` or
///   `PaymentRejected`) and the kind `PaymentRejected`. Older payloads parse with `payment` empty.
/// - 4: adds the kind `HoldExtended` and [`OutboxEvent::deadline`], the payment deadline it
///   set. Older payloads parse with `deadline` empty.
/// - 5: adds the kinds `ChannelSeatsReleased` with [`OutboxEvent::channel`] and
///   `WaitingListOffered` with [`OutboxEvent::offer`], the waiting-list entry an order was
///   offered to. Older payloads parse with both empty.
pub const OUTBOX_SCHEMA_VERSION: u16 = 5;

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OutboxKind {
    /// Tickets created, PENDING_PAYMENT.
    TicketReserved,
    /// Payment confirmed.
    TicketPaid,
    /// Not paid in time.
    TicketExpired,
    /// Cancelled by the customer.
    TicketCancelled,
    /// Refunded.
    TicketRefunded,
    /// A payment that could not pay the order was recorded: its money is owed back
    /// ([`OutboxEvent::payment`] says which). The order's tickets did not change.
    PaymentRejected,
    /// The holder moved the payment deadline of the unpaid order ([`OutboxEvent::deadline`]
    /// says to when). Still PENDING_PAYMENT; its seats stay held.
    HoldExtended,
    /// Seats kept back for a sales channel ([`OutboxEvent::channel`]) were given to the public.
    /// Not an order's change: `order_id` is the release's own id, `customer` the channel's
    /// code, `seats` the released seats that had no active ticket (now free), `amount` zero.
    ChannelSeatsReleased,
    /// The order was made as a waiting-list offer ([`OutboxEvent::offer`] names the entry,
    /// [`OutboxEvent::deadline`] the end of the offer): its customer may pay it until then.
    /// Written with the entry's change to `OFFERED`; the order's own `TicketReserved` comes
    /// from its purchase.
    WaitingListOffered,
}

impl OutboxKind {
    /// The kind recorded when `action` is applied.
    pub fn for_action(action: TicketAction) -> Self {
        match action {
            TicketAction::Pay => OutboxKind::TicketPaid,
            TicketAction::Expire => OutboxKind::TicketExpired,
            TicketAction::Cancel => OutboxKind::TicketCancelled,
            TicketAction::Refund => OutboxKind::TicketRefunded,
        }
    }

    /// The name stored in the outbox, e.g. `TicketPaid`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::TicketReserved => "TicketReserved",
            OutboxKind::TicketPaid => "TicketPaid",
            OutboxKind::TicketExpired => "TicketExpired",
            OutboxKind::TicketCancelled => "TicketCancelled",
            OutboxKind::TicketRefunded => "TicketRefunded",
            OutboxKind::PaymentRejected => "PaymentRejected",
            OutboxKind::HoldExtended => "HoldExtended",
            OutboxKind::ChannelSeatsReleased => "ChannelSeatsReleased",
            OutboxKind::WaitingListOffered => "WaitingListOffered",
        }
    }
}

/// One state change of one order, as published to read models (serde JSON, versioned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// [`OUTBOX_SCHEMA_VERSION`] when written.
    pub version: u16,
    /// What happened.
    pub kind: OutboxKind,
    /// The order.
    pub order_id: OrderId,
    /// The event.
    pub event_id: EventId,
    /// The venue.
    pub venue_id: VenueId,
    /// The buyer.
    pub customer: CustomerId,
    /// The tickets of the order.
    pub ticket_ids: Vec<TicketId>,
    /// Their seats (empty for general admission).
    pub seats: Vec<SeatRef>,
    /// Sum of the tickets' prices.
    pub amount: Money,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// One line per ticket: its zone, seat and price (schema version 2; empty in version 1).
    #[serde(default)]
    pub lines: Vec<OutboxLine>,
    /// The payment behind a `TicketPaid` or `PaymentRejected` (schema version 3); `None` for
    /// other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<OutboxPayment>,
    /// The payment deadline a `HoldExtended` set (schema version 4); `None` for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// The channel whose seats a `ChannelSeatsReleased` released (schema version 5); `None` for
    /// other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelCode>,
    /// The waiting-list offer a `WaitingListOffered` reports (schema version 5); `None` for
    /// other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OutboxOffer>,
}

/// The waiting-list entry an order was offered to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxOffer {
    /// The entry.
    pub entry: WaitingEntryId,
    /// Which offer of the entry it is (1 for the first).
    pub number: u32,
}

/// The ledger entry an [`OutboxEvent`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxPayment {
    /// The provider's reference.
    pub reference: PaymentRef,
    /// The amount taken.
    pub amount: Money,
    /// What became of it; a refund is due unless it paid the order.
    pub outcome: PaymentOutcome,
    /// Whether it paid an order that had expired (a late payment accepted because its seats
    /// could still be had): the order left EXPIRED, not PENDING_PAYMENT.
    #[serde(default)]
    pub reactivated: bool,
}

impl From<&Payment> for OutboxPayment {
    fn from(p: &Payment) -> Self {
        Self {
            reference: p.reference.clone(),
            amount: p.amount,
            outcome: p.outcome,
            reactivated: false,
        }
    }
}

/// One ticket of an [`OutboxEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLine {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its zone.
    pub zone: ZoneCode,
    /// Its seat; `None` for general admission.
    pub seat: Option<SeatRef>,
    /// Its price snapshot.
    pub price: Money,
}

impl OutboxEvent {
    /// The event recording `kind` for `order` at `at`.
    pub fn for_order(kind: OutboxKind, order: &Order, at: DateTime<Utc>) -> Self {
        Self {
            version: OUTBOX_SCHEMA_VERSION,
            kind,
            order_id: order.id,
            event_id: order.event_id,
            venue_id: order.venue_id,
            customer: order.customer.clone(),
            ticket_ids: order.tickets.iter().map(|t| t.id).collect(),
            seats: order
                .tickets
                .iter()
                .filter_map(|t| t.seat.clone())
                .collect(),
            amount: order.total,
            at,
            lines: order
                .tickets
                .iter()
                .map(|t| OutboxLine {
                    ticket_id: t.id,
                    zone: t.zone.clone(),
                    seat: t.seat.clone(),
                    price: t.price,
                })
                .collect(),
            payment: None,
            deadline: None,
            channel: None,
            offer: None,
        }
    }

    /// The event recording that `order` (as it is after the extension) had its payment
    /// deadline moved to `order.expires_at`.
    pub fn for_extension(order: &Order, at: DateTime<Utc>) -> Self {
        Self {
            deadline: Some(order.expires_at),
            ..Self::for_order(OutboxKind::HoldExtended, order, at)
        }
    }

    /// The event recording that `order` was offered to waiting-list `entry` (its `number`th
    /// offer), payable until the order's deadline.
    pub fn for_offer(order: &Order, entry: WaitingEntryId, number: u32, at: DateTime<Utc>) -> Self {
        Self {
            deadline: Some(order.expires_at),
            offer: Some(OutboxOffer { entry, number }),
            ..Self::for_order(OutboxKind::WaitingListOffered, order, at)
        }
    }

    /// The event recording `payment` of `order` (as it is after `effect`): `TicketPaid` when it
    /// paid the order, `PaymentRejected` when its money is owed back.
    pub fn for_payment(
        order: &Order,
        payment: &Payment,
        effect: PaymentEffect,
        at: DateTime<Utc>,
    ) -> Self {
        let kind = if payment.outcome.paid() {
            OutboxKind::TicketPaid
        } else {
            OutboxKind::PaymentRejected
        };
        Self {
            payment: Some(OutboxPayment {
                reactivated: effect == PaymentEffect::Reactivate,
                ..payment.into()
            }),
            ..Self::for_order(kind, order, at)
        }
    }
}

/// An outbox row: its sequence number (unique, gapless and increasing in publication order per
/// repository; one order's changes in the order they committed) and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Sequence number, unique and increasing.
    pub seq: u64,
    /// The event.
    pub event: OutboxEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-2 payload as the relay stores it, with `seat` put in by the caller.
    fn payload(seat: &str, customer: &str) -> String {
        format!(
            r#"{{"version":2,"kind":"TicketPaid",
                "order_id":"0190f4c4-0000-7000-8000-000000000001",
                "event_id":"0190f4c4-0000-7000-8000-000000000002",
                "venue_id":"0190f4c4-0000-7000-8000-000000000003",
                "customer":"{customer}",
                "ticket_ids":["0190f4c4-0000-7000-8000-000000000004"],
                "seats":[{seat}],
                "amount":{{"minor":1250,"currency":"EUR"}},
                "at":"2026-12-07T10:00:00Z",
                "lines":[]}}"#
        )
    }

    #[test]
    fn a_stored_event_parses_back_to_what_was_written() {
        let seat = r#"{"zone":"STALLS","row":"A","number":12}"#;
        let event: OutboxEvent = serde_json::from_str(&payload(seat, "alice")).unwrap();
        assert_eq!(event.seats, vec!["STALLS:A:12".parse().unwrap()]);
        let again: OutboxEvent =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn a_payload_cannot_deserialise_around_the_domain_checks() {
        let seat_zero = r#"{"zone":"STALLS","row":"A","number":0}"#;
        let err = serde_json::from_str::<OutboxEvent>(&payload(seat_zero, "alice")).unwrap_err();
        assert!(err.to_string().contains("seat numbers start at 1"), "{err}");

        let seat = r#"{"zone":"STALLS","row":"A","number":1}"#;
        let err = serde_json::from_str::<OutboxEvent>(&payload(seat, "a b")).unwrap_err();
        assert!(err.to_string().contains("customer"), "{err}");

        let bad_zone = r#"{"zone":"ST:ALLS","row":"A","number":1}"#;
        assert!(serde_json::from_str::<OutboxEvent>(&payload(bad_zone, "alice")).is_err());
    }
}
