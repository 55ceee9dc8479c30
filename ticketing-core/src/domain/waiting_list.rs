//! The waiting list of a sold-out event (docs/DESIGN.md, "Waiting list"): customers wait for
//! freed seats, in join order, for the event or one zone of it, with a party size.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::ids::{CustomerId, EventId, OrderId, WaitingEntryId, ZoneCode};
use crate::Error;

/// The largest party an entry may have; an event's per-customer limit bounds it further.
pub const MAX_PARTY: u32 = super::MAX_PER_CUSTOMER_LIMIT;

/// Where an entry stands. `Waiting` and `Offered` are open (one open entry per customer and
/// event); the others are final: an entry whose offer lapsed does not join again by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitingState {
    /// In the queue, no offer yet.
    Waiting,
    /// Holds an offer: a pending order on freed seats, to pay before its deadline.
    Offered,
    /// The offer's order was paid.
    Served,
    /// The offer's order expired or was cancelled.
    Lapsed,
    /// The customer left the list.
    Left,
}

impl WaitingState {
    /// The name stored and shown, e.g. `OFFERED`.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingState::Waiting => "WAITING",
            WaitingState::Offered => "OFFERED",
            WaitingState::Served => "SERVED",
            WaitingState::Lapsed => "LAPSED",
            WaitingState::Left => "LEFT",
        }
    }

    /// Whether the entry still waits or holds an offer.
    pub fn is_open(self) -> bool {
        matches!(self, WaitingState::Waiting | WaitingState::Offered)
    }
}

impl fmt::Display for WaitingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WaitingState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "WAITING" => WaitingState::Waiting,
            "OFFERED" => WaitingState::Offered,
            "SERVED" => WaitingState::Served,
            "LAPSED" => WaitingState::Lapsed,
            "LEFT" => WaitingState::Left,
            other => return Err(Error::internal(format!("unknown waiting state {other:?}"))),
        })
    }
}

/// One customer waiting for `party` seats (side by side) or places of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingEntry {
    /// The entry.
    pub id: WaitingEntryId,
    /// The event.
    pub event: EventId,
    /// The customer, who pays the offer.
    pub customer: CustomerId,
    /// The zone waited for; `None` for any zone of the event.
    pub zone: Option<ZoneCode>,
    /// Seats or places wanted together, 1..=[`MAX_PARTY`].
    pub party: u32,
    /// When the customer joined: the list's order (then the id).
    pub joined_at: DateTime<Utc>,
    /// Where it stands.
    pub state: WaitingState,
    /// The order of its offer, once offered.
    pub offer: Option<OrderId>,
    /// How many offers it was made (its offer's idempotency key is derived from the number).
    pub offers: u32,
}

impl WaitingEntry {
    /// A new `Waiting` entry; `party` must be 1..=[`MAX_PARTY`].
    pub fn new(
        id: WaitingEntryId,
        event: EventId,
        customer: CustomerId,
        zone: Option<ZoneCode>,
        party: u32,
        joined_at: DateTime<Utc>,
    ) -> Result<Self, Error> {
        if party == 0 || party > MAX_PARTY {
            return Err(Error::invalid(
                "party_size",
                format!("must be 1 to {MAX_PARTY}"),
            ));
        }
        Ok(Self {
            id,
            event,
            customer,
            zone,
            party,
            joined_at,
            state: WaitingState::Waiting,
            offer: None,
            offers: 0,
        })
    }

    /// The idempotency key of the entry's next offer: the same for every relay that processes
    /// the same freed seats, so they make one order.
    pub fn next_offer_key(&self) -> super::IdempotencyKey {
        super::IdempotencyKey::new(format!("waitlist.{}.{}", self.id, self.offers + 1))
            .expect("a UUID and a number make a valid key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn states_round_trip_and_only_waiting_and_offered_are_open() {
        for state in [
            WaitingState::Waiting,
            WaitingState::Offered,
            WaitingState::Served,
            WaitingState::Lapsed,
            WaitingState::Left,
        ] {
            assert_eq!(state.as_str().parse::<WaitingState>().unwrap(), state);
            assert_eq!(
                state.is_open(),
                matches!(state, WaitingState::Waiting | WaitingState::Offered)
            );
        }
        assert!("waiting".parse::<WaitingState>().is_err());
    }

    #[test]
    fn a_party_out_of_bounds_is_refused() {
        let make = |party| {
            WaitingEntry::new(
                WaitingEntryId::from_uuid(Uuid::nil()),
                EventId::from_uuid(Uuid::nil()),
                CustomerId::new("alice").unwrap(),
                None,
                party,
                DateTime::UNIX_EPOCH,
            )
        };
        assert!(make(0).is_err());
        assert!(make(MAX_PARTY + 1).is_err());
        let entry = make(2).unwrap();
        assert_eq!(
            entry.next_offer_key().as_str(),
            format!("waitlist.{}.1", entry.id)
        );
    }
}
