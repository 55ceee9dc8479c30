//! The virtual customers: what they ask for, and the operations in flight.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::Result;
use crate::domain::{
    CustomerId, IdempotencyKey, Money, Order, OrderId, PaymentRef, SeatRef, ZoneCode,
};
use crate::service::{PurchaseRequest, SeatMap, Selection};

/// What an operation was asked to do.
#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    Purchase(PurchaseRequest),
    Pay {
        order: OrderId,
        payment_ref: PaymentRef,
        amount: Money,
    },
    Cancel(OrderId),
    Refund(OrderId),
    /// A hold extension asked for by `customer` (the order's own, or now and then another).
    Extend {
        order: OrderId,
        customer: CustomerId,
    },
    Sweep,
    SeatMap,
}

/// What an operation answered.
pub(crate) enum OpOutput {
    Order(Result<Order>),
    Extended(Result<crate::service::ExtendedHold>),
    Swept(Result<u64>),
    Map(Result<std::sync::Arc<SeatMap>>),
}

/// An operation future (boxed, `'static`, driven by the runner's polls).
pub(crate) type OpFuture = Pin<Box<dyn Future<Output = OpOutput> + Send>>;

/// An operation in flight.
pub(crate) struct InFlight {
    pub id: u64,
    pub kind: OpKind,
    pub future: OpFuture,
    /// The latest clock reading while it ran.
    pub latest: DateTime<Utc>,
}

/// A payment webhook waiting to be delivered.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub seq: u64,
    pub order: OrderId,
    pub payment_ref: PaymentRef,
    /// What the provider took: the order's total, or now and then a wrong amount.
    pub amount: Money,
    pub due: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// Everything the customers remember.
#[derive(Default)]
pub(crate) struct Customers {
    pub next_key: u64,
    pub next_payment: u64,
    pub next_webhook: u64,
    /// Keyed requests each customer made (for retries and conflicting reuse).
    pub keyed: Vec<PurchaseRequest>,
    /// Keyed requests that failed with an unknown result or crashed: to be retried.
    pub retries: Vec<PurchaseRequest>,
    pub webhooks: Vec<Webhook>,
    /// Acknowledged unpaid orders with their deadlines.
    pub unpaid: Vec<(OrderId, DateTime<Utc>)>,
    /// The total of every acknowledged order, which its payments carry.
    pub totals: std::collections::HashMap<OrderId, Money>,
    /// Acknowledged paid orders.
    pub paid: Vec<OrderId>,
    /// The customer of every acknowledged order, who may extend it.
    pub owners: std::collections::HashMap<OrderId, CustomerId>,
}

/// A short, stable rendering of an order id for histories.
pub(crate) fn short(order: OrderId) -> String {
    order.to_string()[..8].to_string()
}

/// A one-line description of a request.
pub(crate) fn describe(kind: &OpKind) -> String {
    match kind {
        OpKind::Purchase(r) => {
            let what = match &r.selection {
                Selection::Seats(seats) => {
                    let names: Vec<String> = seats.iter().map(SeatRef::key).collect();
                    format!("seats [{}]", names.join(","))
                }
                Selection::General { zone, quantity } => format!("{quantity} x {zone}"),
                Selection::BestAvailable(wanted) => {
                    let zone = wanted.zone.as_ref().map_or("any zone", |z| z.as_str());
                    format!("best {} in {zone}", wanted.quantity)
                }
            };
            let key = r
                .idempotency_key
                .as_ref()
                .map_or_else(String::new, |k| format!(" key {k}"));
            format!("purchase {} {what}{key}", r.customer)
        }
        OpKind::Pay {
            order,
            payment_ref,
            amount,
        } => format!("pay {amount} for {} with {payment_ref}", short(*order)),
        OpKind::Cancel(order) => format!("cancel {}", short(*order)),
        OpKind::Refund(order) => format!("refund {}", short(*order)),
        OpKind::Extend { order, customer } => format!("extend {} as {customer}", short(*order)),
        OpKind::Sweep => "expiry sweep".to_string(),
        OpKind::SeatMap => "seat map".to_string(),
    }
}

/// A customer id `c<n>`.
pub(crate) fn customer(n: u64) -> CustomerId {
    CustomerId::new(format!("c{n}")).expect("customer id")
}

/// An idempotency key `k<n>`.
pub(crate) fn key(n: u64) -> IdempotencyKey {
    IdempotencyKey::new(format!("k{n}")).expect("idempotency key")
}

/// A payment reference `pay<n>`.
pub(crate) fn payment(n: u64) -> PaymentRef {
    PaymentRef::new(format!("pay{n}")).expect("payment ref")
}

/// A general-admission selection.
pub(crate) fn general(zone: &ZoneCode, quantity: u32) -> Selection {
    Selection::General {
        zone: zone.clone(),
        quantity,
    }
}
