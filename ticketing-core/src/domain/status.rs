//! The ticket state machine. [`TicketStatus::apply`] is the one transition function every caller uses.
//!
//! ```text
//! PENDING_PAYMENT --pay (before expires_at)--> PAID --refund--> REFUNDED
//! PENDING_PAYMENT --expires_at passed-------> EXPIRED
//! PENDING_PAYMENT --customer cancels--------> CANCELLED
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::Error;

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    /// Seat reserved, waiting for payment until the ticket's `expires_at`.
    PendingPayment,
    /// Paid; the seat is sold.
    Paid,
    /// Not paid in time; the seat is free again. Terminal.
    Expired,
    /// Cancelled by the customer before paying; the seat is free again. Terminal.
    Cancelled,
    /// Paid, then refunded; the seat is free again. Terminal.
    Refunded,
}

/// A request to move a ticket (or all tickets of an order) to another status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketAction {
    /// Confirm payment: PENDING_PAYMENT → PAID, only before the deadline.
    Pay,
    /// The deadline passed: PENDING_PAYMENT → EXPIRED, only at or after the deadline.
    Expire,
    /// The customer gives up before paying: PENDING_PAYMENT → CANCELLED.
    Cancel,
    /// Money returned: PAID → REFUNDED.
    Refund,
}

impl TicketAction {
    /// The status a ticket must have for this action to apply.
    pub fn source(self) -> TicketStatus {
        match self {
            TicketAction::Refund => TicketStatus::Paid,
            _ => TicketStatus::PendingPayment,
        }
    }

    /// The status this action leads to when it is allowed.
    pub fn target(self) -> TicketStatus {
        match self {
            TicketAction::Pay => TicketStatus::Paid,
            TicketAction::Expire => TicketStatus::Expired,
            TicketAction::Cancel => TicketStatus::Cancelled,
            TicketAction::Refund => TicketStatus::Refunded,
        }
    }
}

impl TicketStatus {
    /// All statuses, in life-cycle order.
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::PendingPayment,
        TicketStatus::Paid,
        TicketStatus::Expired,
        TicketStatus::Cancelled,
        TicketStatus::Refunded,
    ];

    /// The transition function. `expires_at` is the ticket's payment deadline and `now` the
    /// current time: paying at or after the deadline is [`Error::PaymentTooLate`], expiring before
    /// it is an [`Error::InvalidTransition`], and so is every move the diagram above does not show.
    pub fn apply(
        self,
        action: TicketAction,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TicketStatus, Error> {
        let due = now >= expires_at;
        match (self, action) {
            (TicketStatus::PendingPayment, TicketAction::Pay) if due => {
                Err(Error::PaymentTooLate {
                    deadline: expires_at,
                })
            }
            (TicketStatus::PendingPayment, TicketAction::Pay)
            | (TicketStatus::PendingPayment, TicketAction::Cancel)
            | (TicketStatus::Paid, TicketAction::Refund) => Ok(action.target()),
            (TicketStatus::PendingPayment, TicketAction::Expire) if due => Ok(action.target()),
            // A payment for a ticket that already expired is late, whatever its exact status says.
            (TicketStatus::Expired, TicketAction::Pay) => Err(Error::PaymentTooLate {
                deadline: expires_at,
            }),
            (from, action) => Err(Error::InvalidTransition {
                from,
                to: action.target(),
            }),
        }
    }

    /// Active tickets (PENDING_PAYMENT, PAID) occupy their seat; the others released it.
    pub fn is_active(self) -> bool {
        matches!(self, TicketStatus::PendingPayment | TicketStatus::Paid)
    }

    /// Terminal statuses never change again.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }

    /// The name used in storage and on the wire, e.g. `PENDING_PAYMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::PendingPayment => "PENDING_PAYMENT",
            TicketStatus::Paid => "PAID",
            TicketStatus::Expired => "EXPIRED",
            TicketStatus::Cancelled => "CANCELLED",
            TicketStatus::Refunded => "REFUNDED",
        }
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        TicketStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Error::invalid("status", format!("unknown ticket status {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = TicketAction> {
        prop_oneof![
            Just(TicketAction::Pay),
            Just(TicketAction::Expire),
            Just(TicketAction::Cancel),
            Just(TicketAction::Refund),
        ]
    }

    /// The edges of the diagram in the module docs, and nothing else.
    fn allowed(from: TicketStatus, to: TicketStatus) -> bool {
        use TicketStatus::*;
        matches!(
            (from, to),
            (PendingPayment, Paid)
                | (PendingPayment, Expired)
                | (PendingPayment, Cancelled)
                | (Paid, Refunded)
        )
    }

    proptest! {
        /// Random commands at random times never take a ticket along an edge the diagram lacks,
        /// never pay at or after the deadline, and never move a terminal ticket.
        #[test]
        fn random_commands_never_reach_an_illegal_state(
            steps in proptest::collection::vec((action(), -100i64..100), 1..40)
        ) {
            let deadline = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_000);
            let mut status = TicketStatus::PendingPayment;
            for (action, offset) in steps {
                let now = deadline + TimeDelta::seconds(offset);
                match status.apply(action, deadline, now) {
                    Ok(next) => {
                        prop_assert!(allowed(status, next), "{status} -> {next}");
                        prop_assert_eq!(next, action.target());
                        if next == TicketStatus::Paid {
                            prop_assert!(now < deadline);
                        }
                        if next == TicketStatus::Expired {
                            prop_assert!(now >= deadline);
                        }
                        status = next;
                    }
                    Err(Error::PaymentTooLate { .. }) => {
                        prop_assert_eq!(action, TicketAction::Pay);
                        // Late by the clock, or already expired (clocks can jump backwards).
                        prop_assert!(now >= deadline || status == TicketStatus::Expired);
                    }
                    Err(Error::InvalidTransition { from, to }) => {
                        prop_assert_eq!(from, status);
                        prop_assert_eq!(to, action.target());
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in TicketStatus::ALL {
            assert_eq!(status.as_str().parse::<TicketStatus>().unwrap(), status);
        }
        assert!("SOLD".parse::<TicketStatus>().is_err());
    }

    #[test]
    fn pay_at_the_deadline_is_too_late() {
        let deadline = DateTime::<Utc>::UNIX_EPOCH;
        let pending = TicketStatus::PendingPayment;
        assert!(matches!(
            pending.apply(TicketAction::Pay, deadline, deadline),
            Err(Error::PaymentTooLate { .. })
        ));
        assert_eq!(
            pending
                .apply(TicketAction::Expire, deadline, deadline)
                .unwrap(),
            TicketStatus::Expired
        );
        assert!(
            pending
                .apply(
                    TicketAction::Expire,
                    deadline,
                    deadline - TimeDelta::milliseconds(1)
                )
                .is_err()
        );
    }
}
