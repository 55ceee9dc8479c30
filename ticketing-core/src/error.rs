//! The one error type of the library. Domain answers come first; backend failures last, with the
//! original error kept as `source`.

use chrono::{DateTime, Utc};

use crate::domain::{
    AdmissionRefusal, EventId, ExtensionRefusal, Money, SeatRef, TicketStatus, VoucherProblem,
    ZoneCode,
};

/// A boxed error from an adapter's driver, kept as the `source` of [`Error::Unavailable`] and
/// [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, for every adapter. Match on the variant, not on the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing: `"event"`, `"ticket"`, `"order"`, …
        what: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// Another order holds or bought one or more of the requested seats.
    #[error("seats already taken: {}", seat_list(seats))]
    SeatsTaken {
        /// The seats that are taken (may be a subset of those requested).
        seats: Vec<SeatRef>,
    },
    /// A general-admission zone has fewer free places than requested.
    #[error("zone {zone} has fewer than {requested} free places")]
    SoldOut {
        /// The zone.
        zone: ZoneCode,
        /// How many places were asked for.
        requested: u32,
    },
    /// A best-available request found no `requested` free seats side by side in one row of the
    /// zones and rows it allows.
    #[error("zone {zone} has no {requested} free seats side by side in one row")]
    NoAdjacentSeats {
        /// The (first) zone tried.
        zone: ZoneCode,
        /// How many seats were asked for.
        requested: u32,
    },
    /// The event's sale window is closed (not yet open, or already over).
    #[error("event {event} is not on sale: {reason}")]
    NotOnSale {
        /// The event.
        event: EventId,
        /// Why, in words.
        reason: String,
    },
    /// The purchase would give the customer more active tickets than the event allows.
    #[error("at most {limit} tickets per customer for this event")]
    LimitExceeded {
        /// The event's per-customer limit.
        limit: u32,
    },
    /// The event requires admission through its waiting room, and the purchase showed no
    /// valid, live admission token of this customer for this event.
    #[error("not admitted to event {event}: {reason}")]
    NotAdmitted {
        /// The event.
        event: EventId,
        /// Why the token was refused.
        reason: AdmissionRefusal,
    },
    /// The purchase's voucher cannot be used: unknown, outside its window, used up, or used up
    /// by this customer. A use the repository refused is never half taken.
    #[error("voucher {code}: {problem}")]
    Voucher {
        /// The code as the buyer gave it.
        code: String,
        /// Why it cannot be used.
        problem: VoucherProblem,
    },
    /// The purchase named a sales channel with a key that is not the channel's (or a channel
    /// the event does not have: the two look the same). Nothing was held.
    #[error("channel {channel}: the key is not valid")]
    ChannelKeyInvalid {
        /// The channel code as the buyer gave it.
        channel: String,
    },
    /// The request is malformed: a field is missing, out of range or inconsistent.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The ticket state machine does not allow this move.
    #[error("cannot move a ticket from {from} to {to}")]
    InvalidTransition {
        /// The current status.
        from: TicketStatus,
        /// The status that was asked for.
        to: TicketStatus,
    },
    /// The payment arrived at or after the payment deadline; the tickets are (or will be) expired.
    #[error("payment deadline {deadline} has passed")]
    PaymentTooLate {
        /// The deadline that was missed.
        deadline: DateTime<Utc>,
    },
    /// The payment deadline of an order was not extended, for `reason`; nothing changed. (A
    /// seat someone else holds now is [`Error::SeatsTaken`] instead.)
    #[error("hold not extended: {reason}")]
    HoldNotExtended {
        /// Why.
        reason: ExtensionRefusal,
    },
    /// A payment's amount or currency differs from its order's total; it was recorded as a
    /// refund due and did not pay the order.
    #[error("payment of {received} does not match the order total{}", expected.map(|e| format!(" {e}")).unwrap_or_default())]
    PaymentMismatch {
        /// The order's total, when the order exists.
        expected: Option<Money>,
        /// What the provider took.
        received: Money,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// A backend (Redis, the database) failed or timed out. Retrying may succeed.
    #[error("{adapter} is unavailable: {source}")]
    Unavailable {
        /// Which adapter failed, e.g. `"redis"`, `"mysql"`.
        adapter: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A setting given to an adapter or a service is unusable (a malformed URL, a zero batch
    /// size, a missing adapter): a deployment mistake, found at start-up, not a bad request.
    #[error("invalid setting {setting}: {reason}")]
    Config {
        /// The setting, named as in the configuration struct or command-line flag.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A backend refused the operation for a reason that retrying will not change (a missing
    /// table, a permission denied, a constraint this library does not expect): an operator has
    /// to look. Unlike [`Error::Unavailable`], not retryable, so clients and payment providers
    /// do not retry it forever.
    #[error("{adapter} failed: {source}")]
    Backend {
        /// Which adapter failed, e.g. `"mysql"`.
        adapter: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A bug or broken stored data; not the caller's fault and not retryable.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// An [`Error::InvalidRequest`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    /// An [`Error::Config`].
    pub fn config(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            setting,
            reason: reason.into(),
        }
    }

    /// An [`Error::NotFound`].
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// An [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// An [`Error::Unavailable`] wrapping a driver error.
    pub fn unavailable(adapter: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Unavailable {
            adapter,
            source: source.into(),
        }
    }

    /// An [`Error::Backend`] wrapping a driver error that retrying will not cure.
    pub fn backend(adapter: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            adapter,
            source: source.into(),
        }
    }

    /// A stable, upper-case code for logs and wire formats, e.g. `SEATS_TAKEN`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NOT_FOUND",
            Error::SeatsTaken { .. } => "SEATS_TAKEN",
            Error::SoldOut { .. } => "SOLD_OUT",
            Error::NoAdjacentSeats { .. } => "NO_ADJACENT_SEATS",
            Error::NotOnSale { .. } => "NOT_ON_SALE",
            Error::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            Error::NotAdmitted { .. } => "NOT_ADMITTED",
            Error::Voucher { problem, .. } => problem.code(),
            Error::ChannelKeyInvalid { .. } => "CHANNEL_KEY_INVALID",
            Error::InvalidRequest { .. } => "INVALID_REQUEST",
            Error::InvalidTransition { .. } => "INVALID_TRANSITION",
            Error::PaymentTooLate { .. } => "PAYMENT_TOO_LATE",
            Error::PaymentMismatch { .. } => "PAYMENT_MISMATCH",
            Error::HoldNotExtended { .. } => "HOLD_NOT_EXTENDED",
            Error::IdempotencyConflict { .. } => "IDEMPOTENCY_CONFLICT",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::Config { .. } => "CONFIG",
            Error::Backend { .. } => "BACKEND_FAILED",
            Error::Internal { .. } => "INTERNAL",
        }
    }

    /// Whether the same call may succeed if simply tried again (a backend hiccup).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

fn seat_list(seats: &[SeatRef]) -> String {
    let names: Vec<String> = seats.iter().map(SeatRef::key).collect();
    names.join(", ")
}

/// Short for `Result<T, ticketing_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_failures_are_not_retryable_and_unavailable_ones_are() {
        let backend = Error::backend("mysql", std::io::Error::other("no such table"));
        assert_eq!(backend.code(), "BACKEND_FAILED");
        assert!(!backend.is_retryable());
        assert_eq!(backend.to_string(), "mysql failed: no such table");
        let unavailable = Error::unavailable("mysql", std::io::Error::other("timed out"));
        assert!(unavailable.is_retryable());
    }
}
