//! Payments: every notification goes into the ledger with its effect, in one repository call.
//!
//! The decision is made on the order as read ([`PaymentDecision::decide`]) and recorded with the
//! status it was made on; the repository refuses a stale decision and this flow decides again. A
//! reference already in the ledger gets its recorded answer, so a provider's replays, however
//! late or reordered, never change what was decided.

use chrono::{DateTime, Utc};

use crate::domain::{
    Order, Payment, PaymentDecision, PaymentEffect, PaymentNotice, PaymentOutcome, PaymentRecorded,
    PaymentRef, PaymentWrite, TicketAction, refusal,
};
use crate::ports::{HoldOutcome, HoldRequest};
use crate::{Error, Result};

use super::tickets::TicketService;

/// How often a payment decides again after the order changed under it.
const PAYMENT_ATTEMPTS: u32 = 4;

impl TicketService {
    /// Applies a payment notification: records it in the payments ledger with its effect, and
    /// answers the paid order, or the refusal the ledger now holds as a refund due:
    /// [`Error::PaymentMismatch`] (amount or currency differ from the order's total),
    /// [`Error::PaymentTooLate`] (after the deadline, and the late-payment policy or the seats
    /// did not let it pay), [`Error::InvalidTransition`] (cancelled, refunded, or paid under
    /// another reference) or [`Error::NotFound`] (no such order).
    ///
    /// The deadline is judged by the moment the notification arrived. Idempotent per reference:
    /// a replay gets the recorded answer and changes nothing.
    pub async fn pay(&self, notice: PaymentNotice) -> Result<Order> {
        let received_at = self.backends.now();
        let mut forced: Option<PaymentOutcome> = None;
        for _ in 0..PAYMENT_ATTEMPTS {
            let tickets = &self.backends.tickets;
            if let Some(stored) = tickets.payment(&notice.reference).await? {
                return self.answer(&stored).await;
            }
            let order = tickets.order(notice.order).await?;
            let decision = match forced {
                Some(outcome) => PaymentDecision::refuse(outcome),
                None => PaymentDecision::decide(
                    order.as_ref(),
                    &notice,
                    received_at,
                    self.config.late_payment,
                ),
            };
            let payment = Payment {
                reference: notice.reference.clone(),
                order: notice.order,
                amount: notice.amount,
                received_at,
                outcome: decision.outcome,
                refunded_at: None,
            };
            match self.record(order.as_ref(), &payment, decision).await? {
                // A payment's answer is the order as it was read back to update the seat lock.
                Recording::Done(paid) if payment.outcome.paid() => {
                    return answer(&payment, paid.as_ref());
                }
                // A refusal's answer is the entry with the order as the repository holds it now,
                // as a replay's is, not as it was read: a hold extension may have moved the
                // deadline in between (the write's guard made sure the payment is late against
                // the moved one too, and `extend_deadline` moves it no more once the refusal is
                // in the ledger), so `PaymentTooLate` names the deadline the order has.
                Recording::Done(_) => return self.answer(&payment).await,
                Recording::Replayed(stored) => return self.answer(&stored).await,
                Recording::Stale => forced = None,
                Recording::SeatsGone => forced = Some(PaymentOutcome::TooLate),
            }
        }
        Err(Error::unavailable(
            "repository",
            format!("order {} kept changing under its payment", notice.order),
        ))
    }

    /// Records `payment` with `decision`'s effect on `order`. A reactivation holds the order's
    /// seats and places in the seat lock first, so buyers already holding them keep them.
    async fn record(
        &self,
        order: Option<&Order>,
        payment: &Payment,
        decision: PaymentDecision,
    ) -> Result<Recording> {
        let reactivating = decision.effect == PaymentEffect::Reactivate;
        let mut write = PaymentWrite {
            payment: payment.clone(),
            decided_on: order.map(|o| o.status),
            effect: decision.effect,
            per_customer_limit: 0,
            zone_capacity: None,
        };
        let mut held = None;
        if let (true, Some(order)) = (reactivating, order) {
            let info = self
                .events
                .get(&*self.backends.catalog, order.event_id)
                .await?;
            write.per_customer_limit = info.event.per_customer_limit();
            write.zone_capacity = order
                .tickets
                .iter()
                .find(|t| t.seat.is_none())
                .and_then(|t| info.capacities.get(&t.zone).copied());
            let now = self.backends.now();
            let (hold, outcome) = self
                .hold_order(order, &info, now, now + self.config.grace())
                .await?;
            if outcome != HoldOutcome::Held {
                return Ok(Recording::SeatsGone);
            }
            held = Some(hold);
        }
        let recorded = self.backends.tickets.record_payment(&write).await;
        let release = |hold: HoldRequest| async move {
            self.release_quietly(&hold.items, hold.order, hold.event)
                .await;
        };
        match recorded {
            Ok(PaymentRecorded::Recorded) if payment.outcome.paid() => {
                let paid = self.backends.tickets.order(payment.order).await?;
                if let Some(order) = &paid {
                    self.sync_lock(order, TicketAction::Pay).await;
                }
                Ok(Recording::Done(paid))
            }
            Ok(PaymentRecorded::Recorded) => Ok(Recording::Done(None)),
            Ok(other) => {
                if let Some(hold) = held {
                    release(hold).await;
                }
                Ok(match other {
                    PaymentRecorded::Replayed(stored) => Recording::Replayed(stored),
                    _ => Recording::Stale,
                })
            }
            Err(
                Error::SeatsTaken { .. }
                | Error::SoldOut { .. }
                | Error::LimitExceeded { .. }
                | Error::Voucher { .. },
            ) if reactivating => {
                if let Some(hold) = held {
                    release(hold).await;
                }
                Ok(Recording::SeatsGone)
            }
            Err(error) => {
                // An unknown outcome keeps the hold: if the write committed, the relay's mirror
                // marks the seats sold; if not, the hold lapses at its short deadline.
                if let (false, Some(hold)) = (error.is_retryable(), held) {
                    release(hold).await;
                }
                Err(error)
            }
        }
    }

    /// The answer a stored ledger entry stands for, with its order as it is now.
    async fn answer(&self, payment: &Payment) -> Result<Order> {
        let order = self.backends.tickets.order(payment.order).await?;
        answer(payment, order.as_ref())
    }

    /// The ledger entry of a provider's payment reference, if one was recorded.
    pub async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        self.backends.tickets.payment(reference).await
    }

    /// The ledger entries naming `order`, oldest first.
    pub async fn payments_of(&self, order: crate::domain::OrderId) -> Result<Vec<Payment>> {
        self.backends.tickets.payments_of(order).await
    }

    /// Up to `limit` payments whose money is owed back and not yet reported refunded, oldest
    /// first: what the operator (or a job) refunds through the provider.
    pub async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        self.backends.tickets.refunds_due(limit).await
    }

    /// Notes that the refund owed under `reference` was sent, now. `false` when nothing is owed
    /// under it.
    pub async fn mark_refunded(&self, reference: &PaymentRef) -> Result<bool> {
        let at: DateTime<Utc> = self.backends.now();
        self.backends.tickets.mark_refunded(reference, at).await
    }
}

/// The answer a ledger entry stands for: `order` if it paid it, or its refusal.
fn answer(payment: &Payment, order: Option<&Order>) -> Result<Order> {
    match (payment.outcome.paid(), order) {
        (true, Some(order)) => Ok(order.clone()),
        (true, None) => Err(Error::internal(format!(
            "payment {} paid order {}, which is gone",
            payment.reference, payment.order
        ))),
        (false, order) => Err(refusal(payment, order)),
    }
}

/// What recording one decision came to.
enum Recording {
    /// Written; the payment's own outcome is the answer, with the order read back if it paid.
    Done(Option<Order>),
    /// The reference was in the ledger already.
    Replayed(Payment),
    /// The order changed since the decision: decide again.
    Stale,
    /// A reactivation found a seat, place or the customer's limit gone: refuse it as too late.
    SeatsGone,
}
