//! The payments ledger: every payment notification, what it was for and what became of it.
//!
//! A provider has taken the buyer's money by the time it notifies us, so a notification that
//! cannot pay its order is not an error to forget but a refund that is due. Each notification is
//! recorded once per provider reference, in the same transaction as its effect, and its outcome
//! is final: a replay gets the recorded answer.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Money, Order, OrderId, PaymentRef, TicketStatus};
use crate::Error;

/// What the provider told us: this much money was taken for this order under this reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    /// The order the money is for.
    pub order: OrderId,
    /// The provider's reference; the ledger keeps one entry per reference.
    pub reference: PaymentRef,
    /// The amount and currency taken.
    pub amount: Money,
}

impl PaymentNotice {
    /// The notice of `order`'s total paid under `reference`.
    pub fn for_order(order: &Order, reference: PaymentRef) -> Self {
        Self {
            order: order.id,
            reference,
            amount: order.total,
        }
    }
}

/// What became of a payment notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum PaymentOutcome {
    /// It paid the order before its deadline.
    Paid,
    /// It paid the order under [`LatePaymentPolicy::AcceptIfAvailable`] after the deadline, or
    /// after the sweep had expired the order (a payment still under way past the grace): every
    /// seat and place could still be had.
    PaidLate,
    /// Amount or currency differ from the order's total. Refund due.
    AmountMismatch,
    /// It arrived after the deadline, and the policy or the seats did not let it pay. Refund due.
    TooLate,
    /// The order was cancelled, refunded or paid under another reference. Refund due.
    NotPayable,
    /// No such order. Refund due.
    UnknownOrder,
}

impl PaymentOutcome {
    /// Every outcome, for exhaustive tests and parsers.
    pub const ALL: [PaymentOutcome; 6] = [
        PaymentOutcome::Paid,
        PaymentOutcome::PaidLate,
        PaymentOutcome::AmountMismatch,
        PaymentOutcome::TooLate,
        PaymentOutcome::NotPayable,
        PaymentOutcome::UnknownOrder,
    ];

    /// Whether the money paid an order; otherwise it is owed back.
    pub fn paid(self) -> bool {
        matches!(self, PaymentOutcome::Paid | PaymentOutcome::PaidLate)
    }

    /// Whether the money must be returned to the buyer.
    pub fn refund_due(self) -> bool {
        !self.paid()
    }

    /// The name stored in the ledger, e.g. `TOO_LATE`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentOutcome::Paid => "PAID",
            PaymentOutcome::PaidLate => "PAID_LATE",
            PaymentOutcome::AmountMismatch => "AMOUNT_MISMATCH",
            PaymentOutcome::TooLate => "TOO_LATE",
            PaymentOutcome::NotPayable => "NOT_PAYABLE",
            PaymentOutcome::UnknownOrder => "UNKNOWN_ORDER",
        }
    }
}

impl fmt::Display for PaymentOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentOutcome {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        PaymentOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| Error::internal(format!("unknown payment outcome {s:?}")))
    }
}

/// One entry of the payments ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The provider's reference (unique in the ledger).
    pub reference: PaymentRef,
    /// The order it named (which may not exist: [`PaymentOutcome::UnknownOrder`]).
    pub order: OrderId,
    /// The amount taken.
    pub amount: Money,
    /// When the notification arrived; the deadline is judged by this instant.
    pub received_at: DateTime<Utc>,
    /// What became of it.
    pub outcome: PaymentOutcome,
    /// When the refund was reported sent ([`refund_due`](PaymentOutcome::refund_due) outcomes
    /// only); `None` while it is still owed.
    pub refunded_at: Option<DateTime<Utc>>,
}

/// What a payment that arrives after its order's deadline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatePaymentPolicy {
    /// Refused and recorded as a refund due.
    #[default]
    Reject,
    /// Accepted when every seat and place of the order can still be had, atomically: an order
    /// the sweep has not expired yet still has them; an expired one takes them again unless
    /// someone else bought them meanwhile. Otherwise refused and recorded as a refund due.
    AcceptIfAvailable,
}

/// What recording a payment does to its order, besides the ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentEffect {
    /// Nothing: the entry records a refund due, or an order already paid under this reference.
    None,
    /// PENDING_PAYMENT → PAID, guarded by `expires_at > received_at`.
    Pay,
    /// PENDING_PAYMENT → PAID after the deadline (the order still holds its seats).
    PayLate,
    /// EXPIRED → PAID: the order takes its seats and places again. The repository refuses with
    /// [`Error::SeatsTaken`], [`Error::SoldOut`] or [`Error::LimitExceeded`] when it cannot.
    Reactivate,
}

/// The decision on one notification: the outcome to record and the effect that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentDecision {
    /// The ledger outcome.
    pub outcome: PaymentOutcome,
    /// The change to the order.
    pub effect: PaymentEffect,
}

impl PaymentDecision {
    const fn new(outcome: PaymentOutcome, effect: PaymentEffect) -> Self {
        Self { outcome, effect }
    }

    /// A refusal: a refund due, no effect on the order.
    pub const fn refuse(outcome: PaymentOutcome) -> Self {
        Self::new(outcome, PaymentEffect::None)
    }

    /// Decides what a notice received at `received_at` does to `order` (as read now; `None`
    /// when there is no such order) under `policy`. Pure: the repository re-checks the order's
    /// status when it records the decision, and the service decides again if it changed.
    pub fn decide(
        order: Option<&Order>,
        notice: &PaymentNotice,
        received_at: DateTime<Utc>,
        policy: LatePaymentPolicy,
    ) -> Self {
        use PaymentEffect as E;
        use PaymentOutcome as O;
        let Some(order) = order else {
            return Self::refuse(O::UnknownOrder);
        };
        if notice.amount != order.total {
            return Self::refuse(O::AmountMismatch);
        }
        let late = received_at >= order.expires_at;
        let accept_late = policy == LatePaymentPolicy::AcceptIfAvailable;
        match order.status {
            TicketStatus::PendingPayment if !late => Self::new(O::Paid, E::Pay),
            TicketStatus::PendingPayment if accept_late => Self::new(O::PaidLate, E::PayLate),
            TicketStatus::Expired if accept_late => Self::new(O::PaidLate, E::Reactivate),
            TicketStatus::PendingPayment | TicketStatus::Expired => Self::refuse(O::TooLate),
            // Paid before under this reference without a ledger entry (written before the
            // ledger existed): record it as what it was.
            TicketStatus::Paid if paid_with(order, &notice.reference) => {
                Self::new(O::Paid, E::None)
            }
            TicketStatus::Paid | TicketStatus::Cancelled | TicketStatus::Refunded => {
                Self::refuse(O::NotPayable)
            }
        }
    }
}

/// Whether every ticket of `order` carries `reference`.
fn paid_with(order: &Order, reference: &PaymentRef) -> bool {
    order
        .tickets
        .iter()
        .all(|t| t.payment_ref.as_ref() == Some(reference))
}

/// A payment to record with
/// [`TicketRepository::record_payment`](crate::ports::TicketRepository::record_payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentWrite {
    /// The ledger entry, outcome decided.
    pub payment: Payment,
    /// The order's status the decision was made on (`None` for an unknown order). The write is
    /// refused as stale when the order's status is no longer this.
    pub decided_on: Option<TicketStatus>,
    /// The change to the order.
    pub effect: PaymentEffect,
    /// For [`PaymentEffect::Reactivate`]: the event's per-customer limit, which the order's
    /// tickets must fit in again.
    pub per_customer_limit: u32,
    /// For [`PaymentEffect::Reactivate`] of a general-admission order: its zone's capacity.
    pub zone_capacity: Option<u32>,
}

impl PaymentWrite {
    /// Whether this write judged a pending order's payment late although the order's deadline,
    /// as the repository holds it now (`status`, `deadline`), is after the payment's arrival:
    /// a hold extension committed between the decision and the write. Such a write is stale,
    /// so the service decides again on the extended deadline and the payment pays.
    pub fn judged_late_but_in_time(&self, status: TicketStatus, deadline: DateTime<Utc>) -> bool {
        let judged_late = self.payment.outcome == PaymentOutcome::TooLate
            || self.effect == PaymentEffect::PayLate;
        judged_late && status == TicketStatus::PendingPayment && deadline > self.payment.received_at
    }
}

/// The answer of
/// [`TicketRepository::record_payment`](crate::ports::TicketRepository::record_payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRecorded {
    /// The entry and its effect were committed.
    Recorded,
    /// Nothing was written: the reference is in the ledger already; here is its entry.
    Replayed(Payment),
    /// Nothing was written: the order's status is no longer the one decided on.
    Stale,
}

/// Why a recorded outcome refused the payment, as the caller's error.
pub fn refusal(payment: &Payment, order: Option<&Order>) -> Error {
    match payment.outcome {
        PaymentOutcome::AmountMismatch => Error::PaymentMismatch {
            expected: order.map(|o| o.total),
            received: payment.amount,
        },
        PaymentOutcome::TooLate => Error::PaymentTooLate {
            deadline: order.map_or(payment.received_at, |o| o.expires_at),
        },
        PaymentOutcome::UnknownOrder => Error::not_found("order", payment.order),
        PaymentOutcome::Paid | PaymentOutcome::PaidLate | PaymentOutcome::NotPayable => {
            Error::InvalidTransition {
                from: order.map_or(TicketStatus::Paid, |o| o.status),
                to: TicketStatus::Paid,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::{Currency, CustomerId, EventId, Ticket, TicketId, VenueId};

    /// An order of two tickets at 25 EUR each, in `status`, due at `deadline`.
    fn order_with(status: TicketStatus, deadline: DateTime<Utc>) -> Order {
        let order = OrderId::from_uuid(uuid::Uuid::from_u128(1));
        let ticket = |n: u128, seat: &str| Ticket {
            id: TicketId::from_uuid(uuid::Uuid::from_u128(10 + n)),
            order_id: order,
            event_id: EventId::from_uuid(uuid::Uuid::from_u128(2)),
            venue_id: VenueId::from_uuid(uuid::Uuid::from_u128(3)),
            zone: "STALLS".parse().unwrap(),
            seat: Some(seat.parse().unwrap()),
            customer: CustomerId::new("alice").unwrap(),
            price: Money::new(2_500, Currency::new("EUR").unwrap()),
            status,
            created_on: deadline - TimeDelta::minutes(10),
            expires_at: deadline,
            paid_at: None,
            payment_ref: None,
        };
        Order::from_tickets(vec![ticket(1, "STALLS:A:1"), ticket(2, "STALLS:A:2")])
            .unwrap()
            .unwrap()
    }

    fn notice(order: &Order) -> PaymentNotice {
        PaymentNotice {
            order: order.id,
            reference: PaymentRef::new("pay_1").unwrap(),
            amount: order.total,
        }
    }

    #[test]
    fn outcome_names_round_trip() {
        for outcome in PaymentOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<PaymentOutcome>().unwrap(), outcome);
        }
        assert!("PAYED".parse::<PaymentOutcome>().is_err());
    }

    #[test]
    fn decisions_follow_status_deadline_amount_and_policy() {
        use LatePaymentPolicy::{AcceptIfAvailable, Reject};
        use PaymentEffect as E;
        use PaymentOutcome as O;
        let deadline = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let before = deadline - TimeDelta::milliseconds(1);
        let cases = [
            (
                TicketStatus::PendingPayment,
                before,
                Reject,
                O::Paid,
                E::Pay,
            ),
            (
                TicketStatus::PendingPayment,
                deadline,
                Reject,
                O::TooLate,
                E::None,
            ),
            (
                TicketStatus::PendingPayment,
                deadline,
                AcceptIfAvailable,
                O::PaidLate,
                E::PayLate,
            ),
            (TicketStatus::Expired, deadline, Reject, O::TooLate, E::None),
            (
                TicketStatus::Expired,
                deadline,
                AcceptIfAvailable,
                O::PaidLate,
                E::Reactivate,
            ),
            (
                TicketStatus::Cancelled,
                before,
                AcceptIfAvailable,
                O::NotPayable,
                E::None,
            ),
            (
                TicketStatus::Refunded,
                before,
                AcceptIfAvailable,
                O::NotPayable,
                E::None,
            ),
        ];
        for (status, received, policy, outcome, effect) in cases {
            let order = order_with(status, deadline);
            let decision = PaymentDecision::decide(Some(&order), &notice(&order), received, policy);
            assert_eq!(
                decision,
                PaymentDecision { outcome, effect },
                "{status} received {received} under {policy:?}"
            );
        }
    }

    #[test]
    fn a_wrong_amount_or_currency_never_pays() {
        let deadline = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let order = order_with(TicketStatus::PendingPayment, deadline);
        let early = deadline - TimeDelta::seconds(60);
        let mut short = notice(&order);
        short.amount = Money::new(order.total.minor - 1, order.total.currency);
        let mut other_currency = notice(&order);
        other_currency.amount = Money::new(order.total.minor, Currency::new("USD").unwrap());
        for n in [short, other_currency] {
            let decision =
                PaymentDecision::decide(Some(&order), &n, early, LatePaymentPolicy::Reject);
            assert_eq!(
                decision,
                PaymentDecision::refuse(PaymentOutcome::AmountMismatch)
            );
        }
    }

    #[test]
    fn a_paid_order_takes_only_its_own_reference() {
        let deadline = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut order = order_with(TicketStatus::Paid, deadline);
        for t in &mut order.tickets {
            t.payment_ref = Some(PaymentRef::new("pay_1").unwrap());
        }
        let same = notice(&order);
        let mut other = notice(&order);
        other.reference = PaymentRef::new("pay_2").unwrap();
        let at = deadline - TimeDelta::seconds(1);
        let policy = LatePaymentPolicy::AcceptIfAvailable;
        assert_eq!(
            PaymentDecision::decide(Some(&order), &same, at, policy).outcome,
            PaymentOutcome::Paid
        );
        assert_eq!(
            PaymentDecision::decide(Some(&order), &other, at, policy).outcome,
            PaymentOutcome::NotPayable
        );
        assert_eq!(
            PaymentDecision::decide(None, &other, at, policy).outcome,
            PaymentOutcome::UnknownOrder
        );
    }
}
